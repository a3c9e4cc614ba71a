/*
 * audit: append-only, hash-chained audit rows. See audit.h for the chain and
 * the canonical serialisation. One thread per audit_writer.
 */
#include "audit.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "json.h"
#include "pg.h"

/* ---- canonical serialisation ---------------------------------------------------------- */

struct sbuf {
    char *d;
    size_t len, cap;
    bool oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->d, cap);
        if (!d) {
            b->oom = true;
            return;
        }
        b->d = d;
        b->cap = cap;
    }
    memcpy(b->d + b->len, s, n);
    b->len += n;
    b->d[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_str(struct sbuf *b, const char *s)
{
    if (!s) {
        sb_puts(b, "null");
        return;
    }
    sb_put(b, "\"", 1);
    const char *run = s;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\' || c < 0x20) {
            char esc[8];
            if (c == '"' || c == '\\')
                snprintf(esc, sizeof esc, "\\%c", c);
            else
                snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_put(b, run, (size_t)(p - run));
            sb_puts(b, esc);
            run = p + 1;
        }
    }
    sb_puts(b, run);
    sb_put(b, "\"", 1);
}

/* Lower-case copy for uuids (PostgreSQL prints them lower case). */
static void sb_lower(struct sbuf *b, const char *s)
{
    if (!s) {
        sb_puts(b, "null");
        return;
    }
    char tmp[80];
    size_t n = strlen(s);
    if (n >= sizeof tmp) {
        sb_str(b, s);
        return;
    }
    for (size_t i = 0; i <= n; i++)
        tmp[i] = (char)tolower((unsigned char)s[i]);
    sb_str(b, tmp);
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void sb_json(struct sbuf *b, struct json_object *v, int depth)
{
    char num[64];
    if (depth > 64) { /* json_parse refuses deeper documents; keep the walk bounded anyway */
        sb_puts(b, "null");
        return;
    }
    switch (json_object_get_type(v)) {
    case json_type_null:
        sb_puts(b, "null");
        break;
    case json_type_boolean:
        sb_puts(b, json_object_get_boolean(v) ? "true" : "false");
        break;
    case json_type_int: {
        /* json-c keeps integers above INT64_MAX as uint64 (get_int64 would clamp them) */
        int64_t i = json_object_get_int64(v);
        if (i == INT64_MAX)
            snprintf(num, sizeof num, "%" PRIu64, json_object_get_uint64(v));
        else
            snprintf(num, sizeof num, "%" PRId64, i);
        sb_puts(b, num);
        break;
    }
    case json_type_double: {
        /* a whole number is written out in full ("%.0f" is exact for a double), so that the digits
           jsonb prints back (it never uses an exponent) read as the same value, whether json-c then
           holds them as int64, uint64 or double; anything else as %.17g (below 2^53, round-trips) */
        double d = json_object_get_double(v);
        if (!isfinite(d))
            sb_puts(b, "null");
        else if (d == 0)
            sb_puts(b, "0"); /* also -0: jsonb prints it as 0 */
        else if (d == floor(d)) {
            char big[400];
            snprintf(big, sizeof big, "%.0f", d);
            sb_puts(b, big);
        } else {
            snprintf(num, sizeof num, "%.17g", d);
            sb_puts(b, num);
        }
        break;
    }
    case json_type_string:
        sb_str(b, json_object_get_string(v));
        break;
    case json_type_array: {
        size_t n = json_object_array_length(v);
        sb_put(b, "[", 1);
        for (size_t i = 0; i < n; i++) {
            if (i)
                sb_put(b, ",", 1);
            sb_json(b, json_object_array_get_idx(v, i), depth + 1);
        }
        sb_put(b, "]", 1);
        break;
    }
    case json_type_object: {
        size_t n = (size_t)json_object_object_length(v), k = 0;
        const char **keys = n ? calloc(n, sizeof *keys) : NULL;
        if (n && !keys) {
            b->oom = true;
            return;
        }
        json_object_object_foreach(v, key, val)
        {
            (void)val;
            if (k < n)
                keys[k++] = key;
        }
        if (k)
            qsort(keys, k, sizeof *keys, key_cmp);
        sb_put(b, "{", 1);
        for (size_t i = 0; i < k; i++) {
            if (i)
                sb_put(b, ",", 1);
            sb_str(b, keys[i]);
            sb_put(b, ":", 1);
            sb_json(b, json_object_object_get(v, keys[i]), depth + 1);
        }
        sb_put(b, "}", 1);
        free(keys);
        break;
    }
    }
}

char *audit_canonical_json(struct json_object *v)
{
    struct sbuf b = {0};
    if (v)
        sb_json(&b, v, 0);
    else
        sb_puts(&b, "null");
    if (b.oom) {
        free(b.d);
        return NULL;
    }
    return b.d;
}

/* Is the integer literal [p, p+n) (optional '-', digits) outside what json-c holds exactly (int64 for
 * negatives, uint64 otherwise)? json-c clamps such literals; read as doubles they keep their value. */
static bool int_out_of_range(const char *p, size_t n)
{
    bool neg = *p == '-';
    const char *d = p + neg;
    size_t nd = n - neg;
    const char *lim = neg ? "9223372036854775808" : "18446744073709551615";
    size_t nl = strlen(lim);
    return nd > nl || (nd == nl && memcmp(d, lim, nl) > 0);
}

struct json_object *audit_parse_stored(const char *text, struct err *e)
{
    struct sbuf b = {0};
    bool in_str = false, esc = false;
    const char *p = text;
    while (*p) {
        char c = *p;
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
            sb_put(&b, p++, 1);
            continue;
        }
        if (c == '"') {
            in_str = true;
            sb_put(&b, p++, 1);
            continue;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            const char *q = p + (c == '-');
            while (*q >= '0' && *q <= '9')
                q++;
            bool integral = *q != '.' && *q != 'e' && *q != 'E';
            while ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' || *q == 'E' || *q == '+' || *q == '-')
                q++;
            sb_put(&b, p, (size_t)(q - p));
            if (integral && int_out_of_range(p, (size_t)(q - p)))
                sb_puts(&b, ".0");
            p = q;
            continue;
        }
        sb_put(&b, p++, 1);
    }
    if (b.oom) {
        free(b.d);
        err_set(e, ERR_NOMEM, false, "could not read stored audit fields");
        return NULL;
    }
    struct json_object *o = json_parse(b.d ? b.d : "", b.len, e);
    free(b.d);
    return o;
}

/* The row with its fields already in canonical JSON (NULL = {}). */
static char *canonical_row(const struct audit_record *r, const char *fields_canon)
{
    struct sbuf b = {0};
    char num[32];
    const struct audit_entry *a = &r->e;
    sb_puts(&b, "[\"sfbridge-audit-v1\",");
    snprintf(num, sizeof num, "%lld", r->audit_id);
    sb_puts(&b, num);
    sb_put(&b, ",", 1);
    sb_str(&b, r->org_id);
    sb_put(&b, ",", 1);
    sb_lower(&b, a->connection_id);
    sb_put(&b, ",", 1);
    sb_lower(&b, a->request_id);
    const char *mid[] = {a->actor, a->source, a->action, a->sf_object, a->platform_object, a->ref, a->salesforce_id};
    for (size_t i = 0; i < sizeof mid / sizeof *mid; i++) {
        sb_put(&b, ",", 1);
        sb_str(&b, mid[i]);
    }
    sb_put(&b, ",", 1);
    sb_puts(&b, fields_canon ? fields_canon : "{}");
    const char *tail[] = {a->outcome, a->sf_error_code, a->sf_error_message, r->created_at, r->prev_hash};
    for (size_t i = 0; i < sizeof tail / sizeof *tail; i++) {
        sb_put(&b, ",", 1);
        sb_str(&b, tail[i]);
    }
    sb_put(&b, "]", 1);
    if (b.oom) {
        free(b.d);
        return NULL;
    }
    return b.d;
}

char *audit_canonical(const struct audit_record *r)
{
    char *f = r->e.fields ? audit_canonical_json(r->e.fields) : NULL;
    if (r->e.fields && !f)
        return NULL;
    char *c = canonical_row(r, f);
    free(f);
    return c;
}

void audit_hash(const struct audit_record *r, char out[65])
{
    char *c = audit_canonical(r);
    if (!c) {
        out[0] = '\0';
        return;
    }
    crypto_sha256_hex(c, strlen(c), out);
    free(c);
}

/* ---- appending ------------------------------------------------------------------------ */

/* One buffered row: copies of the entry's strings, fields already canonical. */
struct pending_row {
    char *s[12]; /* connection_id, request_id, actor, source, action, sf_object, platform_object, ref,
                    salesforce_id, outcome, sf_error_code, sf_error_message */
    char *fields;
};

struct audit_writer {
    struct pg *pg;
    char *org_id;
    char head[65];
    char created_at[40];
    long long added;
    struct pending_row *rows;
    size_t nrows, cap;
};

#define AUDIT_LOCK_SQL "SELECT pg_advisory_xact_lock(hashtextextended('sfbridge.audit:' || $1, 0))"

static void now_canonical(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
}

bool audit_writer_open(struct pg *pg, const char *org_id, struct audit_writer **out, struct err *e)
{
    struct audit_writer *w = NULL;
    struct pg_res *r = NULL;
    *out = NULL;
    if (!pg_in_tx(pg))
        return err_set(e, ERR_INTERNAL, false, "cannot append to the audit log outside a transaction");
    w = calloc(1, sizeof *w);
    if (!w || !(w->org_id = strdup(org_id))) {
        err_set(e, ERR_NOMEM, false, "could not allocate an audit writer");
        goto fail;
    }
    w->pg = pg;
    const char *p[1] = {org_id};
    if (!pg_run(pg, AUDIT_LOCK_SQL, 1, p, e))
        goto fail;
    r = pg_exec(pg, "SELECT hash FROM audit_log WHERE org_id = $1 ORDER BY audit_id DESC LIMIT 1", 1, p, e);
    if (!r)
        goto fail;
    snprintf(w->head, sizeof w->head, "%s", pg_res_rows(r) == 1 ? pg_res_get(r, 0, 0) : AUDIT_GENESIS);
    pg_res_free(&r);
    /* one timestamp per batch keeps rows of one transaction together and is what was hashed */
    now_canonical(w->created_at, sizeof w->created_at);
    *out = w;
    return true;
fail:
    pg_res_free(&r);
    audit_writer_free(&w);
    return false;
}

long long audit_writer_count(const struct audit_writer *w) { return w ? w->added : 0; }

static char *dup_lower(const char *s, bool lower)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (d && lower)
        for (char *p = d; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    return d;
}

static void pending_free(struct pending_row *p)
{
    for (size_t i = 0; i < 12; i++)
        free(p->s[i]);
    free(p->fields);
    memset(p, 0, sizeof *p);
}

bool audit_writer_add(struct audit_writer *w, const struct audit_entry *a, struct err *e)
{
    if (!a->actor || !a->action || !a->outcome)
        return err_set(e, ERR_INTERNAL, false, "cannot audit a row without actor, action and outcome");
    if (w->nrows == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        struct pending_row *r = realloc(w->rows, cap * sizeof *r);
        if (!r)
            return err_set(e, ERR_NOMEM, false, "could not buffer an audit row");
        w->rows = r;
        w->cap = cap;
    }
    struct pending_row *p = &w->rows[w->nrows];
    memset(p, 0, sizeof *p);
    const char *src[12] = {a->connection_id, a->request_id, a->actor, a->source, a->action, a->sf_object,
                           a->platform_object, a->ref, a->salesforce_id, a->outcome, a->sf_error_code,
                           a->sf_error_message};
    bool oom = false;
    for (size_t i = 0; i < 12; i++) {
        p->s[i] = dup_lower(src[i], i < 2);
        oom |= src[i] && !p->s[i];
    }
    p->fields = a->fields ? audit_canonical_json(a->fields) : strdup("{}");
    if (oom || !p->fields) {
        pending_free(p);
        return err_set(e, ERR_NOMEM, false, "could not buffer an audit row");
    }
    w->nrows++;
    w->added++;
    return true;
}

static void copy_field(struct pg_buf *b, const char *s, bool last)
{
    pg_buf_copy_field(b, s);
    pg_buf_append(b, last ? "\n" : "\t", 1);
}

bool audit_writer_flush(struct audit_writer *w, struct err *e)
{
    if (!w->nrows)
        return true;
    struct pg_buf b = {0};
    struct pg_res *r = NULL;
    bool ok = false;
    char n[24];
    snprintf(n, sizeof n, "%zu", w->nrows);
    const char *p[1] = {n};
    /* ids in chain order: we hold the org's lock, so nobody else appends to this chain meanwhile */
    r = pg_exec(w->pg, "SELECT nextval('audit_log_audit_id_seq') FROM generate_series(1, $1::int) ORDER BY 1", 1, p,
                e);
    if (!r)
        goto out;
    if ((size_t)pg_res_rows(r) != w->nrows) {
        err_set(e, ERR_INTERNAL, false, "could not reserve %zu audit ids", w->nrows);
        goto out;
    }
    for (size_t i = 0; i < w->nrows; i++) {
        struct pending_row *row = &w->rows[i];
        const char *id = pg_res_get(r, (int)i, 0);
        struct audit_record rec = {strtoll(id, NULL, 10),
                                   w->org_id,
                                   {row->s[0], row->s[1], row->s[2], row->s[3], row->s[4], row->s[5], row->s[6],
                                    row->s[7], row->s[8], NULL, row->s[9], row->s[10], row->s[11]},
                                   w->created_at,
                                   w->head};
        char *canon = canonical_row(&rec, row->fields);
        if (!canon) {
            err_set(e, ERR_NOMEM, false, "could not serialise an audit row");
            goto out;
        }
        char hash[65];
        crypto_sha256_hex(canon, strlen(canon), hash);
        free(canon);
        copy_field(&b, id, false);
        copy_field(&b, w->org_id, false);
        for (size_t k = 0; k < 9; k++)
            copy_field(&b, row->s[k], false);
        copy_field(&b, row->fields, false);
        for (size_t k = 9; k < 12; k++)
            copy_field(&b, row->s[k], false);
        copy_field(&b, w->created_at, false);
        copy_field(&b, w->head, false);
        copy_field(&b, hash, true);
        memcpy(w->head, hash, sizeof w->head);
    }
    ok = pg_copy_start(w->pg,
                       "COPY audit_log (audit_id, org_id, connection_id, request_id, actor, source, action, "
                       "sf_object, platform_object, ref, salesforce_id, fields, outcome, sf_error_code, "
                       "sf_error_message, created_at, prev_hash, hash) FROM STDIN",
                       e) &&
         pg_copy_put(w->pg, b.data, b.len, e);
    /* always end the COPY so the connection is usable again */
    ok = pg_copy_end(w->pg, e) && ok;
out:
    for (size_t i = 0; i < w->nrows; i++)
        pending_free(&w->rows[i]);
    w->nrows = 0;
    pg_res_free(&r);
    pg_buf_free(&b);
    return ok;
}

void audit_writer_free(struct audit_writer **w)
{
    if (!w || !*w)
        return;
    for (size_t i = 0; i < (*w)->nrows; i++)
        pending_free(&(*w)->rows[i]);
    free((*w)->rows);
    free((*w)->org_id);
    free(*w);
    *w = NULL;
}

bool audit_append(struct pg *pg, const char *org_id, const struct audit_entry *a, struct err *e)
{
    struct audit_writer *w = NULL;
    bool ok = audit_writer_open(pg, org_id, &w, e) && audit_writer_add(w, a, e) && audit_writer_flush(w, e);
    audit_writer_free(&w);
    return ok;
}

/* ---- verification --------------------------------------------------------------------- */

#define VERIFY_PAGE "2000"

static bool verify_org(struct pg *pg, const char *org, long long *rows, long long *bad, char *reason, size_t cap,
                       struct err *e)
{
    char prev[65] = AUDIT_GENESIS, after[24] = "0";
    long long prev_id = 0;
    for (;;) {
        const char *p[3] = {org, after, VERIFY_PAGE};
        struct pg_res *r = pg_exec(
            pg,
            "SELECT audit_id, org_id, connection_id::text, request_id::text, actor, source, action, sf_object, "
            "platform_object, ref, salesforce_id, fields::text, outcome, sf_error_code, sf_error_message, "
            "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), prev_hash, hash "
            "FROM audit_log WHERE org_id = $1 AND audit_id > $2::bigint ORDER BY audit_id LIMIT $3::int",
            3, p, e);
        if (!r)
            return false;
        int n = pg_res_rows(r);
        for (int i = 0; i < n && !*bad; i++) {
            long long id = strtoll(pg_res_get(r, i, 0), NULL, 10);
            struct err je = ERR_INIT;
            const char *ftext = pg_res_get(r, i, 11);
            struct json_object *fields = audit_parse_stored(ftext, &je);
            struct audit_record rec = {
                id,
                pg_res_get(r, i, 1),
                {pg_res_get(r, i, 2), pg_res_get(r, i, 3), pg_res_get(r, i, 4), pg_res_get(r, i, 5),
                 pg_res_get(r, i, 6), pg_res_get(r, i, 7), pg_res_get(r, i, 8), pg_res_get(r, i, 9),
                 pg_res_get(r, i, 10), fields, pg_res_get(r, i, 12), pg_res_get(r, i, 13), pg_res_get(r, i, 14)},
                pg_res_get(r, i, 15),
                pg_res_get(r, i, 16)};
            const char *stored = pg_res_get(r, i, 17);
            char hash[65];
            audit_hash(&rec, hash);
            json_object_put(fields);
            if (strcmp(rec.prev_hash, prev) != 0) {
                *bad = id;
                if (prev_id)
                    snprintf(reason, cap,
                             "audit row %lld of org \"%s\" does not follow row %lld (prev_hash mismatch): a row "
                             "between them was removed, or row %lld was changed",
                             id, org, prev_id, prev_id);
                else
                    snprintf(reason, cap,
                             "audit row %lld, the first of org \"%s\", does not start the chain (prev_hash "
                             "mismatch): an earlier row was removed",
                             id, org);
            } else if (strcmp(hash, stored) != 0) {
                *bad = id;
                snprintf(reason, cap, "audit row %lld of org \"%s\" was changed: its contents do not match its hash",
                         id, org);
            } else {
                (*rows)++;
                snprintf(prev, sizeof prev, "%s", stored);
                prev_id = id;
            }
        }
        if (n > 0)
            snprintf(after, sizeof after, "%s", pg_res_get(r, n - 1, 0));
        pg_res_free(&r);
        if (*bad || n < (int)strtol(VERIFY_PAGE, NULL, 10))
            return true;
    }
}

bool audit_verify(struct pg *pg, const char *org_id, long long *rows, long long *bad_audit_id, char *bad_org,
                  size_t bad_org_cap, char *reason, size_t reason_cap, struct err *e)
{
    *rows = 0;
    *bad_audit_id = 0;
    if (reason_cap)
        reason[0] = '\0';
    if (bad_org_cap)
        bad_org[0] = '\0';
    struct pg_res *orgs = NULL;
    if (org_id) {
        const char *p[1] = {org_id};
        orgs = pg_exec(pg, "SELECT $1::text", 1, p, e);
    } else {
        orgs = pg_exec(pg, "SELECT DISTINCT org_id FROM audit_log ORDER BY 1", 0, NULL, e);
    }
    if (!orgs)
        return false;
    bool ok = true;
    for (int i = 0; i < pg_res_rows(orgs) && ok && !*bad_audit_id; i++) {
        const char *org = pg_res_get(orgs, i, 0);
        ok = verify_org(pg, org, rows, bad_audit_id, reason, reason_cap, e);
        if (*bad_audit_id && bad_org_cap)
            snprintf(bad_org, bad_org_cap, "%s", org);
    }
    pg_res_free(&orgs);
    return ok;
}
