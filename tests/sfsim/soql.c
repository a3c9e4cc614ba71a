/*
 * soql: a SOQL subset (what syncs send) compiled against the schema and run
 * over the store.
 *
 *   SELECT COUNT() | path, path... FROM Object
 *     [WHERE cond] [ORDER BY path [ASC|DESC] [NULLS FIRST|LAST], ...]
 *     [LIMIT n] [OFFSET n]
 *   path: Field | Rel.Field | Rel.Rel.Field (parent relationships, up to 3 hops)
 *   cond: AND / OR (not mixed without parentheses, as in Salesforce), NOT,
 *         ( ), = != <> < <= > >=, [NOT] IN (...), LIKE, = null, != null
 *   literals: 'strings' with \' \" \\ \n \r \t \b \f \% \_, numbers,
 *         true/false/null, dates 2024-01-02, datetimes 2024-01-02T03:04:05Z
 *         (.fff and +hh:mm offsets allowed), unquoted.
 * Anything else is MALFORMED_QUERY; unknown names INVALID_FIELD / INVALID_TYPE.
 * A compiled query is immutable and may be shared by threads.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "simint.h"

#define MAXHOPS 3

/* ---------------------------------------------------------------- lexer */
enum tk { T_END, T_IDENT, T_STR, T_NUM, T_DATE, T_DT, T_LP, T_RP, T_COMMA, T_OP, T_DOT };

struct tok {
    enum tk t;
    const char *p;
    size_t len;
    int col;
    char *str; /* T_STR decoded (LIKE escapes \% \_ kept) */
    double num;
    int64_t iv;
};

struct path {
    int nh;
    short hop[MAXHOPS][SIM_NOBJ]; /* ref field per object at each hop */
    short fin[SIM_NOBJ];          /* final field per object */
    enum sim_ftype type;
    char name[160]; /* canonical dotted name */
};

enum lk { L_NULL, L_STR, L_NUM, L_BOOL, L_DATE, L_DT };
struct lit {
    enum lk k;
    char *s; /* strings: decoded; ids: 18-char */
    double d;
    int64_t i;
};

enum ck { C_AND, C_OR, C_NOT, C_CMP, C_IN, C_LIKE };
enum op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };

struct cond {
    enum ck k;
    struct cond *a, *b;
    struct path p;
    enum op op;
    bool neg; /* NOT IN */
    struct lit lit;
    struct lit *list;
    int nlist;
};

struct ord {
    struct path p;
    bool desc, nulls_first;
};

struct sel_node {
    char name[64];
    bool rel;
    short f[SIM_NOBJ]; /* field (or ref field for rel) per object at this level */
    struct sel_node *kids;
    int nkids;
};

struct sim_query {
    int obj;
    bool count;
    struct path *sel;
    int nsel;
    struct sel_node *tree;
    int ntree;
    struct cond *where;
    struct ord *ord;
    int nord;
    long limit, offset;
    bool has_offset;
    char *text;
};

struct parser {
    const char *q;
    struct tok *t;
    int n, i;
    struct sim_err *e;
    struct sim_query *qq;
};

static void perr(struct parser *ps, const char *code, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void perr(struct parser *ps, const char *code, int col, const char *fmt, ...)
{
    char text[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    char caret[256];
    int c = col < 1 ? 1 : col > 250 ? 250 : col;
    memset(caret, ' ', (size_t)(c - 1));
    caret[c - 1] = '^';
    caret[c] = '\0';
    sim_err_set(ps->e, 400, code, NULL, "\n%.180s\n%s\nERROR at Row:1:Column:%d\n%s",
                ps->q, strlen(ps->q) <= 180 ? caret : "^", col, text);
}

static bool lex(struct parser *ps)
{
    const char *q = ps->q;
    size_t cap = 16;
    ps->t = calloc(cap, sizeof *ps->t);
    if (!ps->t)
        abort();
    size_t i = 0, len = strlen(q);
    for (;;) {
        while (i < len && isspace((unsigned char)q[i]))
            i++;
        if ((size_t)ps->n + 1 >= cap) {
            cap *= 2;
            struct tok *nt = realloc(ps->t, cap * sizeof *nt);
            if (!nt)
                abort();
            ps->t = nt;
        }
        struct tok *t = &ps->t[ps->n];
        memset(t, 0, sizeof *t);
        t->p = q + i;
        t->col = (int)i + 1;
        if (i >= len) {
            t->t = T_END;
            ps->n++;
            return true;
        }
        char c = q[i];
        size_t used;
        if (isdigit((unsigned char)c) && i + 10 <= len && q[i + 4] == '-' &&
            isdigit((unsigned char)q[i + 1])) {
            if (sim_parse_datetime(q + i, len - i, &t->iv, &used)) {
                t->t = T_DT;
            } else if (sim_parse_date(q + i, len - i, &t->iv, &used) &&
                       (i + used >= len || !isalnum((unsigned char)q[i + used]))) {
                t->t = T_DATE;
            } else {
                ps->n++;
                perr(ps, "MALFORMED_QUERY", t->col, "line 1:%d no viable alternative at character '%c'",
                     t->col, c);
                return false;
            }
            t->len = used;
        } else if (isdigit((unsigned char)c) ||
                   ((c == '-' || c == '+' || c == '.') && i + 1 < len &&
                    (isdigit((unsigned char)q[i + 1]) || q[i + 1] == '.'))) {
            char *end;
            t->num = strtod(q + i, &end);
            t->t = T_NUM;
            t->len = (size_t)(end - (q + i));
            if (t->len == 0 || (end < q + len && (isalpha((unsigned char)*end) || *end == '_'))) {
                ps->n++;
                perr(ps, "MALFORMED_QUERY", t->col, "unexpected token: '%.*s'",
                     (int)(t->len + 1), t->p);
                return false;
            }
        } else if (isalpha((unsigned char)c) || c == '_') {
            size_t j = i;
            while (j < len && (isalnum((unsigned char)q[j]) || q[j] == '_'))
                j++;
            t->t = T_IDENT;
            t->len = j - i;
        } else if (c == '\'') {
            struct sim_buf b = {0};
            size_t j = i + 1;
            bool closed = false;
            while (j < len) {
                char ch = q[j];
                if (ch == '\'') {
                    closed = true;
                    j++;
                    break;
                }
                if (ch == '\\') {
                    char nx = j + 1 < len ? q[j + 1] : '\0';
                    const char *map = NULL;
                    switch (nx) {
                    case 'n': map = "\n"; break;
                    case 'r': map = "\r"; break;
                    case 't': map = "\t"; break;
                    case 'b': map = "\b"; break;
                    case 'f': map = "\f"; break;
                    case '"': map = "\""; break;
                    case '\'': map = "'"; break;
                    case '\\': map = "\\\\"; break; /* stays escaped for LIKE */
                    case '%': map = "\\%"; break;
                    case '_': map = "\\_"; break;
                    default: break;
                    }
                    if (!map) {
                        sim_buf_free(&b);
                        ps->n++;
                        perr(ps, "MALFORMED_QUERY", (int)j + 1,
                             "Invalid string literal '%.*s'. Illegal character sequence "
                             "'\\%c' in string literal.",
                             (int)(j + 2 - i), q + i, nx ? nx : ' ');
                        return false;
                    }
                    sim_buf_puts(&b, map);
                    j += 2;
                    continue;
                }
                sim_buf_putc(&b, ch);
                j++;
            }
            if (!closed) {
                sim_buf_free(&b);
                ps->n++;
                perr(ps, "MALFORMED_QUERY", t->col, "line 1:%d mismatched character '<EOF>' expecting '''",
                     (int)len + 1);
                return false;
            }
            t->t = T_STR;
            t->str = sim_buf_take(&b, NULL);
            t->len = j - i;
        } else if (c == '(' || c == ')' || c == ',' || c == '.') {
            t->t = c == '(' ? T_LP : c == ')' ? T_RP : c == ',' ? T_COMMA : T_DOT;
            t->len = 1;
        } else if (c == '=' || c == '<' || c == '>' || c == '!') {
            t->t = T_OP;
            t->len = 1;
            if (i + 1 < len && (q[i + 1] == '=' || (c == '<' && q[i + 1] == '>')))
                t->len = 2;
            if (c == '!' && t->len != 2) {
                ps->n++;
                perr(ps, "MALFORMED_QUERY", t->col, "unexpected token: '!'");
                return false;
            }
        } else {
            ps->n++;
            perr(ps, "MALFORMED_QUERY", t->col,
                 "line 1:%d no viable alternative at character '%c'", t->col, c);
            return false;
        }
        i += t->len;
        ps->n++;
    }
}

static struct tok *cur(struct parser *ps) { return &ps->t[ps->i]; }

static bool kw_is(const struct tok *t, const char *kw)
{
    return t->t == T_IDENT && strlen(kw) == t->len && strncasecmp(t->p, kw, t->len) == 0;
}

static bool accept_kw(struct parser *ps, const char *kw)
{
    if (kw_is(cur(ps), kw)) {
        ps->i++;
        return true;
    }
    return false;
}

static void unexpected(struct parser *ps)
{
    struct tok *t = cur(ps);
    if (t->t == T_END)
        perr(ps, "MALFORMED_QUERY", t->col, "unexpected token: <EOF>");
    else
        perr(ps, "MALFORMED_QUERY", t->col, "unexpected token: '%.*s'", (int)t->len, t->p);
}

static bool expect_kw(struct parser *ps, const char *kw)
{
    if (accept_kw(ps, kw))
        return true;
    unexpected(ps);
    return false;
}

static const char *const reserved[] = {
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY",
    "ASC", "DESC", "NULLS", "LIMIT", "OFFSET", "NULL", "TRUE", "FALSE", "GROUP",
    "HAVING", "FOR", "WITH", "USING", "TYPEOF", "INCLUDES", "EXCLUDES", NULL};

static bool is_reserved(const struct tok *t)
{
    for (int i = 0; reserved[i]; i++)
        if (kw_is(t, reserved[i]))
            return true;
    return false;
}

/* ---------------------------------------------------------------- paths */
static bool parse_path(struct parser *ps, int obj, struct path *p)
{
    struct tok *parts[MAXHOPS + 1];
    int np = 0;
    struct tok *first = cur(ps);
    if (first->t != T_IDENT || is_reserved(first)) {
        unexpected(ps);
        return false;
    }
    for (;;) {
        struct tok *t = cur(ps);
        if (t->t != T_IDENT) {
            unexpected(ps);
            return false;
        }
        if (np == MAXHOPS + 1) {
            perr(ps, "MALFORMED_QUERY", t->col, "too many relationship levels");
            return false;
        }
        parts[np++] = t;
        ps->i++;
        if (cur(ps)->t != T_DOT)
            break;
        ps->i++;
    }
    memset(p, 0, sizeof *p);
    p->nh = np - 1;
    bool set[SIM_NOBJ] = {0};
    set[obj] = true;
    size_t nl = 0;
    for (int h = 0; h < np; h++) {
        struct tok *t = parts[h];
        bool last = h == np - 1, any = false;
        bool next[SIM_NOBJ] = {0};
        const char *canon = NULL;
        for (int o = 0; o < SIM_NOBJ; o++) {
            short *slot = last ? &p->fin[o] : &p->hop[h][o];
            *slot = -1;
            if (!set[o])
                continue;
            const struct sim_object *ob = &sim_objects[o];
            int f = last ? sim_field_find_n(ob, t->p, t->len)
                         : sim_rel_find_n(ob, t->p, t->len);
            if (f < 0)
                continue;
            *slot = (short)f;
            const struct sim_field *fd = &ob->fields[f];
            if (!any) {
                canon = last ? fd->name : fd->rel;
                if (last)
                    p->type = fd->type;
            }
            any = true;
            if (!last) {
                int t1 = sim_object_find(fd->ref1);
                if (t1 >= 0)
                    next[t1] = true;
                if (fd->ref2 && sim_object_find(fd->ref2) >= 0)
                    next[sim_object_find(fd->ref2)] = true;
            }
        }
        if (!any) {
            const char *ent = sim_objects[obj].name;
            if (h == 0 && !last)
                perr(ps, "INVALID_FIELD", t->col,
                     "Didn't understand relationship '%.*s' in field path. If you are "
                     "attempting to use a custom relationship, be sure to append the "
                     "'__r' after the custom relationship name. Please reference your "
                     "WSDL or the describe call for the appropriate names.",
                     (int)t->len, t->p);
            else
                perr(ps, "INVALID_FIELD", first->col,
                     "No such column '%.*s' on entity '%s'. If you are attempting to use "
                     "a custom field, be sure to append the '__c' after the custom field "
                     "name. Please reference your WSDL or the describe call for the "
                     "appropriate names.",
                     (int)t->len, t->p, h == 0 ? ent : "Name");
            return false;
        }
        int w = snprintf(p->name + nl, sizeof p->name - nl, "%s%s", h ? "." : "", canon);
        if (w > 0)
            nl += (size_t)w;
        if (nl >= sizeof p->name)
            nl = sizeof p->name - 1;
        memcpy(set, next, sizeof set);
    }
    return true;
}

/* follows the path from a record; returns the value (null when any hop is
 * empty) */
static struct sim_val path_get(const struct sim_store *s, const struct path *p,
                               int obj, const struct sim_rec *r)
{
    struct sim_val nul = {.sc = sim_sclass(p->type), .null = true};
    for (int h = 0; h < p->nh; h++) {
        int f = p->hop[h][obj];
        if (f < 0)
            return nul;
        struct sim_val v = sim_get(s, obj, r, f);
        if (v.null)
            return nul;
        int o2;
        r = sim_store_find(s, v.u.s, &o2, NULL);
        if (!r)
            return nul;
        obj = o2;
    }
    int f = p->fin[obj];
    if (f < 0)
        return nul;
    return sim_get(s, obj, r, f);
}

/* ---------------------------------------------------------------- where */
static void cond_free(struct cond *c)
{
    if (!c)
        return;
    cond_free(c->a);
    cond_free(c->b);
    free(c->lit.s);
    for (int i = 0; i < c->nlist; i++)
        free(c->list[i].s);
    free(c->list);
    free(c);
}

static char *unescape_like(const char *s)
{
    /* outside LIKE the kept escapes \% \_ \\ are plain characters */
    char *o = strdup(s), *w = o;
    if (!o)
        abort();
    for (const char *p = s; *p; p++) {
        if (*p == '\\' && (p[1] == '%' || p[1] == '_' || p[1] == '\\'))
            p++;
        *w++ = *p;
    }
    *w = '\0';
    return o;
}

static bool parse_lit(struct parser *ps, const struct path *p, struct lit *l,
                      bool like)
{
    struct tok *t = cur(ps);
    enum sim_sclass sc = sim_sclass(p->type);
    memset(l, 0, sizeof *l);
    const char *want = NULL;
    if (kw_is(t, "null")) {
        l->k = L_NULL;
    } else if (kw_is(t, "true") || kw_is(t, "false")) {
        l->k = L_BOOL;
        l->i = kw_is(t, "true");
        if (sc != SIM_S_BOOL)
            want = sc == SIM_S_STR ? "string" : "a different type";
    } else if (t->t == T_STR) {
        l->k = L_STR;
        if (sc != SIM_S_STR) {
            want = sc == SIM_S_DT ? "dateTime" : sc == SIM_S_DATE ? "date" : NULL;
            if (want) {
                perr(ps, "INVALID_FIELD", t->col,
                     "value of filter criterion for field '%s' must be of type %s and "
                     "should not be enclosed in quotes",
                     p->name, want);
                return false;
            }
            want = sc == SIM_S_BOOL ? "boolean" : "double";
        } else if (like) {
            l->s = strdup(t->str);
            if (!l->s)
                abort();
        } else if (p->type == SIM_T_ID || p->type == SIM_T_REFERENCE) {
            char id18[19];
            if (!sim_id_to18(t->str, id18)) {
                perr(ps, "INVALID_QUERY_FILTER_OPERATOR", t->col, "invalid ID field: %s",
                     t->str);
                return false;
            }
            l->s = strdup(id18);
            if (!l->s)
                abort();
        } else {
            l->s = unescape_like(t->str);
        }
    } else if (t->t == T_NUM) {
        l->k = L_NUM;
        l->d = t->num;
        if (sc != SIM_S_NUM && sc != SIM_S_INT)
            want = sc == SIM_S_STR ? "string" : sc == SIM_S_BOOL ? "boolean" : sc == SIM_S_DT ? "dateTime" : "date";
    } else if (t->t == T_DATE) {
        l->k = L_DATE;
        l->i = t->iv;
        if (sc != SIM_S_DATE)
            want = sc == SIM_S_DT ? "dateTime" : "a non-date type";
    } else if (t->t == T_DT) {
        l->k = L_DT;
        l->i = t->iv;
        if (sc != SIM_S_DT)
            want = sc == SIM_S_DATE ? "date" : "a non-dateTime type";
    } else {
        unexpected(ps);
        return false;
    }
    if (want) {
        perr(ps, "INVALID_FIELD", t->col,
             "value of filter criterion for field '%s' must be of type %s", p->name, want);
        return false;
    }
    ps->i++;
    return true;
}

static struct cond *parse_or(struct parser *ps);

static struct cond *new_cond(enum ck k)
{
    struct cond *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->k = k;
    return c;
}

static struct cond *parse_primary(struct parser *ps)
{
    struct tok *t = cur(ps);
    if (accept_kw(ps, "NOT")) {
        struct cond *inner = parse_primary(ps);
        if (!inner)
            return NULL;
        struct cond *c = new_cond(C_NOT);
        c->a = inner;
        return c;
    }
    if (t->t == T_LP) {
        ps->i++;
        struct cond *c = parse_or(ps);
        if (!c)
            return NULL;
        if (cur(ps)->t != T_RP) {
            unexpected(ps);
            cond_free(c);
            return NULL;
        }
        ps->i++;
        return c;
    }
    struct cond *c = new_cond(C_CMP);
    if (!parse_path(ps, ps->qq->obj, &c->p))
        goto fail;
    t = cur(ps);
    bool neg = false;
    if (kw_is(t, "NOT") && kw_is(&ps->t[ps->i + 1], "IN")) {
        neg = true;
        ps->i++;
        t = cur(ps);
    }
    if (accept_kw(ps, "IN")) {
        c->k = C_IN;
        c->neg = neg;
        if (cur(ps)->t != T_LP) {
            unexpected(ps);
            goto fail;
        }
        ps->i++;
        for (;;) {
            struct lit l;
            if (!parse_lit(ps, &c->p, &l, false))
                goto fail;
            struct lit *nl = realloc(c->list, (size_t)(c->nlist + 1) * sizeof *nl);
            if (!nl)
                abort();
            c->list = nl;
            c->list[c->nlist++] = l;
            if (cur(ps)->t == T_COMMA) {
                ps->i++;
                continue;
            }
            if (cur(ps)->t == T_RP) {
                ps->i++;
                break;
            }
            unexpected(ps);
            goto fail;
        }
        return c;
    }
    if (accept_kw(ps, "LIKE")) {
        c->k = C_LIKE;
        if (!sim_is_text(c->p.type)) {
            perr(ps, "INVALID_FIELD", t->col, "invalid operator on %s field: LIKE",
                 sim_type_name(c->p.type));
            goto fail;
        }
        if (cur(ps)->t != T_STR) {
            unexpected(ps);
            goto fail;
        }
        if (!parse_lit(ps, &c->p, &c->lit, true))
            goto fail;
        return c;
    }
    if (t->t != T_OP) {
        unexpected(ps);
        goto fail;
    }
    if (t->len == 1)
        c->op = t->p[0] == '=' ? OP_EQ : t->p[0] == '<' ? OP_LT : OP_GT;
    else
        c->op = t->p[0] == '!' || t->p[1] == '>' ? OP_NE : t->p[0] == '<' ? OP_LE : OP_GE;
    ps->i++;
    if (!parse_lit(ps, &c->p, &c->lit, false))
        goto fail;
    if (c->lit.k == L_NULL && c->op != OP_EQ && c->op != OP_NE) {
        perr(ps, "MALFORMED_QUERY", t->col, "invalid operator on null: %.*s",
             (int)t->len, t->p);
        goto fail;
    }
    if (sim_sclass(c->p.type) == SIM_S_BOOL && c->op != OP_EQ && c->op != OP_NE) {
        perr(ps, "INVALID_FIELD", t->col, "invalid operator on boolean field: %.*s",
             (int)t->len, t->p);
        goto fail;
    }
    return c;
fail:
    cond_free(c);
    return NULL;
}

static struct cond *parse_or(struct parser *ps)
{
    struct cond *left = parse_primary(ps);
    if (!left)
        return NULL;
    int mode = -1; /* C_AND or C_OR once chosen */
    for (;;) {
        struct tok *t = cur(ps);
        int k = kw_is(t, "AND") ? C_AND : kw_is(t, "OR") ? C_OR : -1;
        if (k < 0)
            return left;
        if (mode >= 0 && mode != k) {
            /* Salesforce wants parentheses when AND and OR are mixed */
            unexpected(ps);
            cond_free(left);
            return NULL;
        }
        mode = k;
        ps->i++;
        struct cond *right = parse_primary(ps);
        if (!right) {
            cond_free(left);
            return NULL;
        }
        struct cond *c = new_cond((enum ck)k);
        c->a = left;
        c->b = right;
        left = c;
    }
}

static bool like_match(const char *pat, const char *s)
{
    for (; *pat; pat++) {
        if (*pat == '%') {
            while (pat[1] == '%')
                pat++;
            if (!pat[1])
                return true;
            for (const char *k = s; *k; k++)
                if (like_match(pat + 1, k))
                    return true;
            return like_match(pat + 1, s + strlen(s));
        }
        if (!*s)
            return false;
        if (*pat == '_') {
            s++;
            continue;
        }
        char pc = *pat;
        if (pc == '\\' && pat[1])
            pc = *++pat;
        if (tolower((unsigned char)pc) != tolower((unsigned char)*s))
            return false;
        s++;
    }
    return *s == '\0';
}

static int cmp_val(const struct sim_val *v, enum sim_ftype type, const struct lit *l)
{
    switch (v->sc) {
    case SIM_S_STR:
        if (type == SIM_T_ID || type == SIM_T_REFERENCE)
            return strcmp(v->u.s, l->s);
        return strcasecmp(v->u.s, l->s);
    case SIM_S_NUM:
        return v->u.d < l->d ? -1 : v->u.d > l->d;
    case SIM_S_INT:
        return (double)v->u.i < l->d ? -1 : (double)v->u.i > l->d;
    default:
        return v->u.i < l->i ? -1 : v->u.i > l->i;
    }
}

static bool eval(const struct sim_store *s, const struct cond *c, int obj,
                 const struct sim_rec *r)
{
    switch (c->k) {
    case C_AND:
        return eval(s, c->a, obj, r) && eval(s, c->b, obj, r);
    case C_OR:
        return eval(s, c->a, obj, r) || eval(s, c->b, obj, r);
    case C_NOT:
        return !eval(s, c->a, obj, r);
    case C_LIKE: {
        struct sim_val v = path_get(s, &c->p, obj, r);
        return !v.null && like_match(c->lit.s, v.u.s);
    }
    case C_IN: {
        struct sim_val v = path_get(s, &c->p, obj, r);
        bool hit = false;
        for (int i = 0; i < c->nlist && !hit; i++) {
            if (c->list[i].k == L_NULL)
                hit = v.null;
            else if (!v.null)
                hit = cmp_val(&v, c->p.type, &c->list[i]) == 0;
        }
        return c->neg ? !hit : hit;
    }
    case C_CMP: {
        struct sim_val v = path_get(s, &c->p, obj, r);
        if (c->lit.k == L_NULL)
            return c->op == OP_EQ ? v.null : !v.null;
        if (v.null)
            return c->op == OP_NE;
        int d = cmp_val(&v, c->p.type, &c->lit);
        switch (c->op) {
        case OP_EQ: return d == 0;
        case OP_NE: return d != 0;
        case OP_LT: return d < 0;
        case OP_LE: return d <= 0;
        case OP_GT: return d > 0;
        case OP_GE: return d >= 0;
        }
    }
    }
    return false;
}

/* ---------------------------------------------------------------- select tree */
static void tree_free(struct sel_node *n, int cnt)
{
    for (int i = 0; i < cnt; i++)
        tree_free(n[i].kids, n[i].nkids);
    free(n);
}

static struct sel_node *tree_child(struct sel_node **arr, int *n, const char *name,
                                   bool rel)
{
    for (int i = 0; i < *n; i++)
        if ((*arr)[i].rel == rel && strcmp((*arr)[i].name, name) == 0)
            return &(*arr)[i];
    struct sel_node *na = realloc(*arr, (size_t)(*n + 1) * sizeof *na);
    if (!na)
        abort();
    *arr = na;
    struct sel_node *c = &na[(*n)++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->rel = rel;
    return c;
}

static void tree_add(struct sim_query *q, const struct path *p)
{
    struct sel_node **arr = &q->tree;
    int *cnt = &q->ntree;
    char names[MAXHOPS + 1][64];
    /* split the canonical name into parts */
    const char *s = p->name;
    for (int h = 0; h <= p->nh; h++) {
        const char *dot = strchr(s, '.');
        size_t l = dot && h < p->nh ? (size_t)(dot - s) : strlen(s);
        snprintf(names[h], sizeof names[h], "%.*s", (int)l, s);
        s += l + (dot && h < p->nh ? 1 : 0);
    }
    for (int h = 0; h < p->nh; h++) {
        struct sel_node *n = tree_child(arr, cnt, names[h], true);
        memcpy(n->f, p->hop[h], sizeof n->f);
        arr = &n->kids;
        cnt = &n->nkids;
    }
    struct sel_node *leaf = tree_child(arr, cnt, names[p->nh], false);
    memcpy(leaf->f, p->fin, sizeof leaf->f);
}

/* ---------------------------------------------------------------- compile */
void sim_soql_free(struct sim_query *q)
{
    if (!q)
        return;
    free(q->sel);
    tree_free(q->tree, q->ntree);
    cond_free(q->where);
    free(q->ord);
    free(q->text);
    free(q);
}

static bool parse_int(struct parser *ps, long *out)
{
    struct tok *t = cur(ps);
    /* also refuse values a long cannot hold (found by fuzzing: UB in the conversion) */
    if (t->t != T_NUM || t->num < 0 || t->num != floor(t->num) || t->num >= 9.0e18) {
        unexpected(ps);
        return false;
    }
    *out = (long)t->num;
    ps->i++;
    return true;
}

struct sim_query *sim_soql_compile(const char *text, struct sim_err *e)
{
    struct parser ps = {.q = text ? text : "", .e = e};
    struct sim_query *q = calloc(1, sizeof *q);
    bool ok = false;
    if (!q)
        abort();
    q->limit = -1;
    q->text = strdup(ps.q);
    if (!q->text)
        abort();
    ps.qq = q;
    if (!lex(&ps))
        goto out;
    if (!expect_kw(&ps, "SELECT"))
        goto out;
    /* remember the select list; resolve it once FROM is known */
    int sel_start = ps.i;
    if (kw_is(cur(&ps), "COUNT") && ps.t[ps.i + 1].t == T_LP &&
        ps.t[ps.i + 2].t == T_RP) {
        q->count = true;
        ps.i += 3;
    } else {
        for (;;) {
            struct tok *t = cur(&ps);
            if (t->t != T_IDENT || is_reserved(t)) {
                unexpected(&ps);
                goto out;
            }
            if (ps.t[ps.i + 1].t == T_LP) {
                perr(&ps, "MALFORMED_QUERY", t->col, "unexpected token: '%.*s'",
                     (int)t->len, t->p);
                goto out;
            }
            ps.i++;
            while (cur(&ps)->t == T_DOT && ps.t[ps.i + 1].t == T_IDENT)
                ps.i += 2;
            if (cur(&ps)->t != T_COMMA)
                break;
            ps.i++;
        }
    }
    if (!expect_kw(&ps, "FROM"))
        goto out;
    struct tok *ot = cur(&ps);
    if (ot->t != T_IDENT || is_reserved(ot)) {
        unexpected(&ps);
        goto out;
    }
    char oname[64];
    snprintf(oname, sizeof oname, "%.*s", (int)(ot->len < 63 ? ot->len : 63), ot->p);
    q->obj = sim_object_find(oname);
    if (q->obj < 0) {
        perr(&ps, "INVALID_TYPE", ot->col,
             "sObject type '%s' is not supported. If you are attempting to use a custom "
             "object, be sure to append the '__c' after the entity name. Please "
             "reference your WSDL or the describe call for the appropriate names.",
             oname);
        goto out;
    }
    ps.i++;
    int after_from = ps.i;
    if (!q->count) {
        ps.i = sel_start;
        for (;;) {
            struct path p;
            if (!parse_path(&ps, q->obj, &p))
                goto out;
            for (int k = 0; k < q->nsel; k++) {
                if (sim_strieq(q->sel[k].name, p.name)) {
                    perr(&ps, "MALFORMED_QUERY", ps.t[ps.i - 1].col,
                         "duplicate field selected: %s", p.name);
                    goto out;
                }
            }
            struct path *ns = realloc(q->sel, (size_t)(q->nsel + 1) * sizeof *ns);
            if (!ns)
                abort();
            q->sel = ns;
            q->sel[q->nsel++] = p;
            tree_add(q, &p);
            if (cur(&ps)->t != T_COMMA)
                break;
            ps.i++;
        }
    }
    ps.i = after_from;
    if (accept_kw(&ps, "WHERE")) {
        q->where = parse_or(&ps);
        if (!q->where)
            goto out;
    }
    if (accept_kw(&ps, "ORDER")) {
        if (!expect_kw(&ps, "BY"))
            goto out;
        for (;;) {
            struct ord o = {0};
            if (!parse_path(&ps, q->obj, &o.p))
                goto out;
            if (accept_kw(&ps, "DESC"))
                o.desc = true;
            else
                accept_kw(&ps, "ASC");
            o.nulls_first = !o.desc;
            if (accept_kw(&ps, "NULLS")) {
                if (accept_kw(&ps, "FIRST"))
                    o.nulls_first = true;
                else if (expect_kw(&ps, "LAST"))
                    o.nulls_first = false;
                else
                    goto out;
            }
            struct ord *no = realloc(q->ord, (size_t)(q->nord + 1) * sizeof *no);
            if (!no)
                abort();
            q->ord = no;
            q->ord[q->nord++] = o;
            if (cur(&ps)->t != T_COMMA)
                break;
            ps.i++;
        }
    }
    if (accept_kw(&ps, "LIMIT") && !parse_int(&ps, &q->limit))
        goto out;
    if (accept_kw(&ps, "OFFSET")) {
        if (!parse_int(&ps, &q->offset))
            goto out;
        q->has_offset = true;
        if (q->offset > 2000) {
            perr(&ps, "NUMBER_OUTSIDE_VALID_RANGE", ps.t[ps.i - 1].col,
                 "Maximum SOQL offset allowed is 2000");
            goto out;
        }
    }
    if (cur(&ps)->t != T_END) {
        unexpected(&ps);
        goto out;
    }
    ok = true;
out:
    for (int i = 0; i < ps.n; i++)
        free(ps.t[i].str);
    free(ps.t);
    if (!ok) {
        sim_soql_free(q);
        return NULL;
    }
    return q;
}

int sim_soql_object(const struct sim_query *q) { return q->obj; }
bool sim_soql_is_count(const struct sim_query *q) { return q->count; }
bool sim_soql_has_offset(const struct sim_query *q) { return q->has_offset; }

/* ---------------------------------------------------------------- run */
struct sortctx {
    const struct sim_store *s;
    const struct sim_query *q;
};

static int cmp_vals(const struct sim_val *a, const struct sim_val *b,
                    enum sim_ftype type)
{
    switch (a->sc) {
    case SIM_S_STR:
        if (type == SIM_T_ID || type == SIM_T_REFERENCE)
            return strcmp(a->u.s, b->u.s);
        return strcasecmp(a->u.s, b->u.s);
    case SIM_S_NUM:
        return a->u.d < b->u.d ? -1 : a->u.d > b->u.d;
    default:
        return a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
    }
}

static int rec_cmp(const void *pa, const void *pb, void *arg)
{
    const struct sortctx *c = arg;
    uint32_t ia = *(const uint32_t *)pa, ib = *(const uint32_t *)pb;
    int obj = c->q->obj;
    const struct sim_rec *ra = sim_rec_at(c->s, obj, ia), *rb = sim_rec_at(c->s, obj, ib);
    for (int k = 0; k < c->q->nord; k++) {
        const struct ord *o = &c->q->ord[k];
        struct sim_val va = path_get(c->s, &o->p, obj, ra);
        struct sim_val vb = path_get(c->s, &o->p, obj, rb);
        int d;
        if (va.null || vb.null) {
            if (va.null && vb.null)
                continue;
            d = va.null ? -1 : 1;
            if (!o->nulls_first)
                d = -d;
            return d;
        }
        d = cmp_vals(&va, &vb, o->p.type);
        if (d)
            return o->desc ? -d : d;
    }
    return ia < ib ? -1 : ia > ib;
}

bool sim_soql_run_locked(const struct sim_store *s, const struct sim_query *q,
                         bool all_rows, uint32_t **out, size_t *n, struct sim_err *e)
{
    (void)e;
    const struct sim_table *t = &s->t[q->obj];
    size_t cap = 1024, cnt = 0;
    uint32_t *v = malloc(cap * sizeof *v);
    if (!v)
        abort();
    for (uint32_t i = 0; i < t->n; i++) {
        const struct sim_rec *r = sim_rec_at(s, q->obj, i);
        if (r->purged || (!all_rows && sim_rec_deleted(s, q->obj, r)))
            continue;
        if (q->where && !eval(s, q->where, q->obj, r))
            continue;
        if (cnt == cap) {
            cap *= 2;
            uint32_t *nv = realloc(v, cap * sizeof *nv);
            if (!nv)
                abort();
            v = nv;
        }
        v[cnt++] = i;
    }
    if (q->nord) {
        struct sortctx c = {s, q};
        qsort_r(v, cnt, sizeof *v, rec_cmp, &c);
    }
    size_t off = q->offset > 0 ? (size_t)q->offset : 0;
    if (off > cnt)
        off = cnt;
    if (off)
        memmove(v, v + off, (cnt - off) * sizeof *v);
    cnt -= off;
    if (q->limit >= 0 && (size_t)q->limit < cnt)
        cnt = (size_t)q->limit;
    *out = v;
    *n = cnt;
    return true;
}

/* ---------------------------------------------------------------- output */
static void val_out(const struct sim_val *v, enum sim_ftype type, struct sim_buf *b,
                    bool csv)
{
    char tmp[40];
    if (v->null) {
        sim_buf_puts(b, csv ? "" : "null");
        return;
    }
    switch (v->sc) {
    case SIM_S_STR:
        if (csv) {
            for (const char *c = v->u.s; *c; c++) {
                if (*c == '"')
                    sim_buf_putc(b, '"');
                sim_buf_putc(b, *c);
            }
        } else {
            sim_buf_json_str(b, v->u.s);
        }
        return;
    case SIM_S_NUM:
        (void)type;
        sim_buf_num(b, v->u.d);
        return;
    case SIM_S_INT:
        sim_buf_printf(b, "%lld", (long long)v->u.i);
        return;
    case SIM_S_BOOL:
        sim_buf_puts(b, v->u.i ? "true" : "false");
        return;
    case SIM_S_DATE:
        sim_fmt_date(v->u.i, tmp);
        break;
    case SIM_S_DT:
        sim_fmt_datetime(v->u.i, tmp);
        break;
    }
    if (csv) {
        sim_buf_puts(b, tmp);
    } else {
        sim_buf_putc(b, '"');
        sim_buf_puts(b, tmp);
        sim_buf_putc(b, '"');
    }
}

void sim_val_json(const struct sim_store *s, int obj, const struct sim_rec *r,
                  int f, struct sim_buf *b)
{
    struct sim_val v = sim_get(s, obj, r, f);
    val_out(&v, sim_objects[obj].fields[f].type, b, false);
}

static void attrs(struct sim_buf *b, int obj, const char *id, const char *ver)
{
    sim_buf_puts(b, "{\"attributes\":{\"type\":\"");
    sim_buf_puts(b, sim_objects[obj].name);
    sim_buf_printf(b, "\",\"url\":\"/services/data/v%s/sobjects/%s/%s\"}", ver,
                   sim_objects[obj].name, id);
}

static void tree_json(const struct sim_store *s, const struct sel_node *nodes, int n,
                      int obj, const struct sim_rec *r, const char *ver,
                      struct sim_buf *b)
{
    attrs(b, obj, r->id, ver);
    for (int i = 0; i < n; i++) {
        const struct sel_node *nd = &nodes[i];
        sim_buf_putc(b, ',');
        sim_buf_json_str(b, nd->name);
        sim_buf_putc(b, ':');
        int f = nd->f[obj];
        if (!nd->rel) {
            if (f < 0) {
                sim_buf_puts(b, "null");
                continue;
            }
            struct sim_val v = sim_get(s, obj, r, f);
            val_out(&v, sim_objects[obj].fields[f].type, b, false);
            continue;
        }
        struct sim_val v = f >= 0 ? sim_get(s, obj, r, f) : (struct sim_val){.null = true};
        int o2;
        const struct sim_rec *t = v.null ? NULL : sim_store_find(s, v.u.s, &o2, NULL);
        if (!t) {
            sim_buf_puts(b, "null");
            continue;
        }
        tree_json(s, nd->kids, nd->nkids, o2, t, ver, b);
    }
    sim_buf_putc(b, '}');
}

void sim_soql_rec_json(const struct sim_store *s, const struct sim_query *q,
                       uint32_t idx, const char *ver, struct sim_buf *b)
{
    const struct sim_rec *r = sim_rec_at(s, q->obj, idx);
    tree_json(s, q->tree, q->ntree, q->obj, r, ver, b);
}

void sim_soql_csv_header(const struct sim_query *q, struct sim_buf *b)
{
    for (int i = 0; i < q->nsel; i++) {
        if (i)
            sim_buf_putc(b, ',');
        sim_buf_putc(b, '"');
        sim_buf_puts(b, q->sel[i].name);
        sim_buf_putc(b, '"');
    }
    sim_buf_putc(b, '\n');
}

void sim_soql_rec_csv(const struct sim_store *s, const struct sim_query *q,
                      uint32_t idx, struct sim_buf *b)
{
    const struct sim_rec *r = sim_rec_at(s, q->obj, idx);
    for (int i = 0; i < q->nsel; i++) {
        if (i)
            sim_buf_putc(b, ',');
        struct sim_val v = path_get(s, &q->sel[i], q->obj, r);
        sim_buf_putc(b, '"');
        val_out(&v, q->sel[i].type, b, true);
        sim_buf_putc(b, '"');
    }
    sim_buf_putc(b, '\n');
}
