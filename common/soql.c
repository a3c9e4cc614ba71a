/*
 * soql: see soql.h. Every piece of text that reaches a query passes one of
 * the validators here; the builder keeps the first invalid input and refuses
 * to build (so a caller that ignores a void setter still cannot send it).
 */
#include "soql.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define IDENT_MAX 80
#define FIELD_LEVELS 5

static const char *const suffixes[] = {"c",     "r",       "mdt",  "e",           "x",  "b",   "s",
                                       "pc",    "pr",      "kav",  "ka",          "hd", "Tag", "History",
                                       "Share", "Feed",    "ChangeEvent", NULL};

static bool is_suffix(const char *s, size_t n)
{
    for (size_t i = 0; suffixes[i]; i++)
        if (strlen(suffixes[i]) == n && memcmp(suffixes[i], s, n) == 0)
            return true;
    return false;
}

/* one "__"-free segment: letter first, then [A-Za-z0-9_], no trailing '_' */
static bool segment_ok(const char *s, size_t n)
{
    if (n == 0 || !isalpha((unsigned char)s[0]) || s[n - 1] == '_')
        return false;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return false;
    return true;
}

static bool seg_is(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && memcmp(s, w, n) == 0;
}

static bool ident_n_valid(const char *s, size_t n)
{
    const char *seg[8];
    size_t segn[8];
    size_t k = 0;
    if (n == 0 || n > IDENT_MAX || !isalpha((unsigned char)s[0]))
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || (s[i] == '_' && i + 1 < n && s[i + 1] == '_')) {
            if (k == 8)
                return false;
            seg[k] = s + start;
            segn[k] = i - start;
            k++;
            if (i == n)
                break;
            i++; /* skip the second '_' */
            start = i + 1;
        }
    }
    for (size_t j = 0; j < k; j++) {
        if (j > 0 && j == k - 1 && is_suffix(seg[j], segn[j]))
            continue; /* suffixes like "c" are fine as they are */
        if (!segment_ok(seg[j], segn[j]))
            return false;
    }
    switch (k) {
    case 1:
        return true;
    case 2: /* Name__c */
        return is_suffix(seg[1], segn[1]);
    case 3: /* ns__Name__c or Loc__Latitude__s */
        return is_suffix(seg[2], segn[2]);
    case 4: /* ns__Loc__Latitude__s */
        return seg_is(seg[3], segn[3], "s") &&
               (seg_is(seg[2], segn[2], "Latitude") || seg_is(seg[2], segn[2], "Longitude"));
    default:
        return false;
    }
}

bool soql_ident_valid(const char *s)
{
    return s && ident_n_valid(s, strlen(s));
}

bool soql_field_valid(const char *s)
{
    if (!s || !*s)
        return false;
    int levels = 0;
    const char *p = s;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (++levels > FIELD_LEVELS || !ident_n_valid(p, n))
            return false;
        if (!dot)
            return true;
        p = dot + 1;
    }
}

/* Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
static bool utf8_ok(const unsigned char *s)
{
    while (*s) {
        unsigned char c = *s;
        size_t n;
        unsigned int cp;
        if (c < 0x80) {
            s++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (size_t i = 1; i <= n; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i] & 0x3f);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        s += n + 1;
    }
    return true;
}

static char *quote(const char *value, bool like, bool prefix, bool suffix)
{
    if (!value || !utf8_ok((const unsigned char *)value))
        return NULL;
    size_t n = strlen(value);
    char *out = malloc(2 * n + 5);
    if (!out)
        return NULL;
    size_t o = 0;
    out[o++] = '\'';
    if (prefix)
        out[o++] = '%';
    for (size_t i = 0; i < n; i++) {
        char ch = value[i];
        char esc = 0;
        switch (ch) {
        case '\\': esc = '\\'; break;
        case '\'': esc = '\''; break;
        case '"': esc = '"'; break;
        case '\n': esc = 'n'; break;
        case '\r': esc = 'r'; break;
        case '\t': esc = 't'; break;
        case '\b': esc = 'b'; break;
        case '\f': esc = 'f'; break;
        case '%': esc = like ? '%' : 0; break;
        case '_': esc = like ? '_' : 0; break;
        default: break;
        }
        if (esc) {
            out[o++] = '\\';
            out[o++] = esc;
        } else {
            out[o++] = ch;
        }
    }
    if (suffix)
        out[o++] = '%';
    out[o++] = '\'';
    out[o] = '\0';
    return out;
}

char *soql_quote(const char *value)
{
    return quote(value, false, false, false);
}

char *soql_quote_like(const char *value, bool prefix, bool suffix)
{
    return quote(value, true, prefix, suffix);
}

void soql_datetime(long long epoch_ms, char *out, size_t cap)
{
    if (!out || cap == 0)
        return;
    long long secs = epoch_ms / 1000, ms = epoch_ms % 1000;
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        out[0] = '\0';
        return;
    }
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ms);
}

static bool digits(const char **p, int n)
{
    for (int i = 0; i < n; i++, (*p)++)
        if (!isdigit((unsigned char)**p))
            return false;
    return true;
}

static bool date_literal(const char *s)
{
    const char *p = s;
    if (!digits(&p, 4) || *p++ != '-' || !digits(&p, 2) || *p++ != '-' || !digits(&p, 2))
        return false;
    if (!*p)
        return true;
    if (*p++ != 'T' || !digits(&p, 2) || *p++ != ':' || !digits(&p, 2) || *p++ != ':' || !digits(&p, 2))
        return false;
    if (*p == '.') {
        p++;
        int n = 0;
        while (isdigit((unsigned char)*p) && n < 3) {
            p++;
            n++;
        }
        if (n == 0)
            return false;
    }
    if (*p == 'Z')
        return p[1] == '\0';
    if (*p == '+' || *p == '-') {
        p++;
        return digits(&p, 2) && *p++ == ':' && digits(&p, 2) && *p == '\0';
    }
    return false;
}

static bool number_literal(const char *s)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        return false;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return *p == '\0';
}

/* a soql_quote()/soql_quote_like() result: every '\'' inside escaped */
static bool quoted_literal(const char *s)
{
    size_t n = strlen(s);
    if (n < 2 || s[0] != '\'' || s[n - 1] != '\'')
        return false;
    for (size_t i = 1; i < n - 1; i++) {
        if (s[i] == '\\') {
            if (i + 1 >= n - 1 || !strchr("\\'\"nrtbf%_", s[i + 1]))
                return false;
            i++;
        } else if (s[i] == '\'') {
            return false;
        }
    }
    return utf8_ok((const unsigned char *)s);
}

bool soql_literal_valid(const char *lit)
{
    if (!lit || !*lit)
        return false;
    if (lit[0] == '\'')
        return quoted_literal(lit);
    if (strcmp(lit, "true") == 0 || strcmp(lit, "false") == 0 || strcmp(lit, "null") == 0)
        return true;
    return number_literal(lit) || date_literal(lit);
}

static const char *const ops[] = {"=", "!=", "<", "<=", ">", ">=", "LIKE", NULL};

static bool op_valid(const char *op)
{
    for (size_t i = 0; op && ops[i]; i++)
        if (strcmp(op, ops[i]) == 0)
            return true;
    return false;
}

char *soql_cmp(const char *field, const char *op, const char *literal, struct err *e)
{
    if (!soql_field_valid(field)) {
        err_set(e, ERR_INVALID_MESSAGE, false, "cannot build soql: invalid field name \"%.80s\"",
                field ? field : "");
        return NULL;
    }
    if (!op_valid(op)) {
        err_set(e, ERR_INVALID_MESSAGE, false, "cannot build soql: invalid operator \"%.8s\"", op ? op : "");
        return NULL;
    }
    if (!soql_literal_valid(literal)) {
        err_set(e, ERR_INVALID_MESSAGE, false, "cannot build soql: invalid literal for field %s", field);
        return NULL;
    }
    size_t n = strlen(field) + strlen(op) + strlen(literal) + 3;
    char *out = malloc(n);
    if (!out) {
        err_set(e, ERR_NOMEM, true, "could not build soql: out of memory");
        return NULL;
    }
    snprintf(out, n, "%s %s %s", field, op, literal);
    return out;
}

/* ---- builder ---- */

struct strv {
    char **v;
    size_t n, cap;
};

static bool strv_push(struct strv *sv, char *s)
{
    if (!s)
        return false;
    if (sv->n == sv->cap) {
        size_t ncap = sv->cap ? sv->cap * 2 : 8;
        char **nv = realloc(sv->v, ncap * sizeof *nv);
        if (!nv) {
            free(s);
            return false;
        }
        sv->v = nv;
        sv->cap = ncap;
    }
    sv->v[sv->n++] = s;
    return true;
}

static void strv_free(struct strv *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        free(sv->v[i]);
    free(sv->v);
    memset(sv, 0, sizeof *sv);
}

struct soql_select {
    char *object;
    struct strv fields;
    struct strv where;
    char *order;
    long limit;
    struct err bad; /* first invalid input, reported by build */
};

struct soql_select *soql_select_new(const char *object, struct err *e)
{
    if (!soql_ident_valid(object)) {
        err_set(e, ERR_INVALID_MESSAGE, false, "cannot build soql: invalid object name \"%.80s\"",
                object ? object : "");
        return NULL;
    }
    struct soql_select *s = calloc(1, sizeof *s);
    if (s)
        s->object = strdup(object);
    if (!s || !s->object) {
        free(s);
        err_set(e, ERR_NOMEM, true, "could not build soql: out of memory");
        return NULL;
    }
    return s;
}

void soql_select_free(struct soql_select **s)
{
    if (!s || !*s)
        return;
    free((*s)->object);
    free((*s)->order);
    strv_free(&(*s)->fields);
    strv_free(&(*s)->where);
    free(*s);
    *s = NULL;
}

bool soql_select_field(struct soql_select *s, const char *field, struct err *e)
{
    if (!s)
        return err_set(e, ERR_INTERNAL, false, "cannot build soql: no builder");
    if (!soql_field_valid(field)) {
        err_set(&s->bad, ERR_INVALID_MESSAGE, false, "cannot build soql: invalid field name \"%.80s\"",
                field ? field : "");
        return err_set(e, ERR_INVALID_MESSAGE, false, "cannot build soql: invalid field name \"%.80s\"",
                       field ? field : "");
    }
    for (size_t i = 0; i < s->fields.n; i++)
        if (strcasecmp(s->fields.v[i], field) == 0)
            return true;
    if (!strv_push(&s->fields, strdup(field))) {
        err_set(&s->bad, ERR_NOMEM, true, "could not build soql: out of memory");
        return err_set(e, ERR_NOMEM, true, "could not build soql: out of memory");
    }
    return true;
}

/* Structural check of a raw clause: balanced parentheses outside quotes,
 * terminated quotes, no ';', no comment-ish bytes, valid UTF-8. */
static bool clause_ok(const char *c)
{
    int depth = 0;
    bool inq = false;
    if (!c || !*c || !utf8_ok((const unsigned char *)c))
        return false;
    for (const char *p = c; *p; p++) {
        if (inq) {
            if (*p == '\\') {
                if (!p[1] || !strchr("\\'\"nrtbf%_", p[1]))
                    return false;
                p++;
            } else if (*p == '\'') {
                inq = false;
            }
            continue;
        }
        if (*p == '\'')
            inq = true;
        else if (*p == '(')
            depth++;
        else if (*p == ')' && --depth < 0)
            return false;
        else if (*p == ';' || *p == '"' || *p == '\\' || *p == '\n' || *p == '\r' || *p == '`')
            return false;
    }
    return !inq && depth == 0;
}

bool soql_select_where_raw(struct soql_select *s, const char *clause)
{
    if (!s)
        return false;
    if (!clause_ok(clause))
        return err_set(&s->bad, ERR_INVALID_MESSAGE, false, "cannot build soql: malformed where clause");
    size_t n = strlen(clause) + 3;
    char *w = malloc(n);
    if (w)
        snprintf(w, n, "(%s)", clause);
    if (!strv_push(&s->where, w))
        return err_set(&s->bad, ERR_NOMEM, true, "could not build soql: out of memory");
    return true;
}

bool soql_where_cmp(struct soql_select *s, const char *field, const char *op, const char *literal,
                    struct err *e)
{
    struct err local = ERR_INIT;
    if (!s)
        return err_set(e, ERR_INTERNAL, false, "cannot build soql: no builder");
    char *c = soql_cmp(field, op, literal, &local);
    if (!c) {
        err_set(&s->bad, local.code, local.retriable, "%s", local.msg);
        return err_set(e, local.code, local.retriable, "%s", local.msg);
    }
    bool ok = soql_select_where_raw(s, c);
    free(c);
    if (!ok)
        return err_set(e, s->bad.code, s->bad.retriable, "%s", s->bad.msg);
    return true;
}

bool soql_where_in(struct soql_select *s, const char *field, const char *const *literals, size_t n,
                   struct err *e)
{
    if (!s)
        return err_set(e, ERR_INTERNAL, false, "cannot build soql: no builder");
    if (!soql_field_valid(field) || n == 0 || !literals) {
        err_set(&s->bad, ERR_INVALID_MESSAGE, false, "cannot build soql: invalid IN clause");
        return err_set(e, ERR_INVALID_MESSAGE, false, "cannot build soql: invalid IN clause");
    }
    size_t len = strlen(field) + 8;
    for (size_t i = 0; i < n; i++) {
        if (!soql_literal_valid(literals[i])) {
            err_set(&s->bad, ERR_INVALID_MESSAGE, false, "cannot build soql: invalid literal in IN for %s",
                    field);
            return err_set(e, ERR_INVALID_MESSAGE, false, "cannot build soql: invalid literal in IN for %s",
                           field);
        }
        len += strlen(literals[i]) + 2;
    }
    char *w = malloc(len);
    if (!w) {
        err_set(&s->bad, ERR_NOMEM, true, "could not build soql: out of memory");
        return err_set(e, ERR_NOMEM, true, "could not build soql: out of memory");
    }
    size_t o = (size_t)snprintf(w, len, "%s IN (", field);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(literals[i]);
        if (i) {
            w[o++] = ',';
            w[o++] = ' ';
        }
        memcpy(w + o, literals[i], l);
        o += l;
    }
    w[o++] = ')';
    w[o] = '\0';
    bool ok = soql_select_where_raw(s, w);
    free(w);
    if (!ok)
        return err_set(e, s->bad.code, s->bad.retriable, "%s", s->bad.msg);
    return true;
}

/* split `in` at `sep` chars into words (in place, up to max); returns count or -1 */
static int split(char *in, const char *sep, char **words, int max)
{
    int n = 0;
    char *p = in;
    for (;;) {
        while (*p && strchr(sep, *p))
            p++;
        if (!*p)
            return n;
        if (n == max)
            return -1;
        words[n++] = p;
        while (*p && !strchr(sep, *p))
            p++;
        if (!*p)
            return n;
        *p++ = '\0';
    }
}

/* "f [ASC|DESC] [NULLS FIRST|LAST], ..." -> normalised copy or NULL */
static char *order_normalise(const char *in)
{
    size_t cap = strlen(in) * 2 + 16;
    char *out = malloc(cap);
    char *dup = strdup(in);
    size_t o = 0;
    bool ok = out && dup;
    char *items[64];
    int ni = ok ? split(dup, ",", items, 64) : -1;
    ok = ok && ni > 0;
    for (int k = 0; ok && k < ni; k++) {
        char *words[5];
        int nw = split(items[k], " \t", words, 5);
        if (nw <= 0 || !soql_field_valid(words[0])) {
            ok = false;
            break;
        }
        int i = 1;
        const char *dir = NULL, *nulls = NULL;
        if (i < nw && (strcasecmp(words[i], "ASC") == 0 || strcasecmp(words[i], "DESC") == 0))
            dir = strcasecmp(words[i++], "ASC") == 0 ? "ASC" : "DESC";
        if (i + 1 < nw && strcasecmp(words[i], "NULLS") == 0 &&
            (strcasecmp(words[i + 1], "FIRST") == 0 || strcasecmp(words[i + 1], "LAST") == 0)) {
            nulls = strcasecmp(words[i + 1], "FIRST") == 0 ? "FIRST" : "LAST";
            i += 2;
        }
        if (i != nw) {
            ok = false;
            break;
        }
        int w = snprintf(out + o, cap - o, "%s%s%s%s%s%s", o ? ", " : "", words[0], dir ? " " : "",
                         dir ? dir : "", nulls ? " NULLS " : "", nulls ? nulls : "");
        if (w < 0 || (size_t)w >= cap - o)
            ok = false;
        else
            o += (size_t)w;
    }
    free(dup);
    if (!ok) {
        free(out);
        return NULL;
    }
    return out;
}

void soql_select_order(struct soql_select *s, const char *order_by)
{
    if (!s)
        return;
    free(s->order);
    s->order = NULL;
    if (!order_by || !*order_by)
        return;
    s->order = order_normalise(order_by);
    if (!s->order)
        err_set(&s->bad, ERR_INVALID_MESSAGE, false, "cannot build soql: invalid ORDER BY \"%.80s\"",
                order_by);
}

void soql_select_limit(struct soql_select *s, long limit)
{
    if (!s)
        return;
    if (limit < 0)
        err_set(&s->bad, ERR_INVALID_MESSAGE, false, "cannot build soql: negative LIMIT %ld", limit);
    else
        s->limit = limit;
}

char *soql_select_build(struct soql_select *s, struct err *e)
{
    if (!s) {
        err_set(e, ERR_INTERNAL, false, "cannot build soql: no builder");
        return NULL;
    }
    if (err_is_set(&s->bad)) {
        err_set(e, s->bad.code, s->bad.retriable, "%s", s->bad.msg);
        return NULL;
    }
    if (s->fields.n == 0) {
        err_set(e, ERR_INVALID_MESSAGE, false, "cannot build soql: no field selected from %s", s->object);
        return NULL;
    }
    size_t cap = strlen(s->object) + 64 + (s->order ? strlen(s->order) : 0);
    for (size_t i = 0; i < s->fields.n; i++)
        cap += strlen(s->fields.v[i]) + 2;
    for (size_t i = 0; i < s->where.n; i++)
        cap += strlen(s->where.v[i]) + 5;
    char *q = malloc(cap);
    if (!q) {
        err_set(e, ERR_NOMEM, true, "could not build soql: out of memory");
        return NULL;
    }
    size_t o = 0;
    o += (size_t)snprintf(q + o, cap - o, "SELECT ");
    for (size_t i = 0; i < s->fields.n; i++)
        o += (size_t)snprintf(q + o, cap - o, "%s%s", i ? ", " : "", s->fields.v[i]);
    o += (size_t)snprintf(q + o, cap - o, " FROM %s", s->object);
    for (size_t i = 0; i < s->where.n; i++)
        o += (size_t)snprintf(q + o, cap - o, "%s%s", i ? " AND " : " WHERE ", s->where.v[i]);
    if (s->order)
        o += (size_t)snprintf(q + o, cap - o, " ORDER BY %s", s->order);
    if (s->limit > 0)
        snprintf(q + o, cap - o, " LIMIT %ld", s->limit);
    return q;
}
