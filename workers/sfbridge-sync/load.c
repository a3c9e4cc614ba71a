/*
 * sfbridge-sync load: rows -> COPY buffer -> one transaction per batch
 * (stage table, stale-guarded merge with exact counts, soft deletes, link
 * fix-ups, cursor, run counters) -> sync.progress. See sync.h.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "json.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "sf.h"
#include "soql.h"
#include "sync.h"

long long sync_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long sync_calls(const struct run *r) { return r->calls_base + sf_client_calls(r->x->sf); }

/* ---- string builder ------------------------------------------------------ */

static void sb(struct pg_buf *b, const char *s) { pg_buf_append(b, s, strlen(s)); }

static void sbf(struct pg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sbf(struct pg_buf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        pg_buf_append(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big)
        abort();
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    pg_buf_append(b, big, (size_t)n);
    free(big);
}

static char *sb_take(struct pg_buf *b)
{
    char *s = b->data ? b->data : strdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return s;
}

static const char *sql_type(const char *core_type)
{
    if (!strcmp(core_type, "char18"))
        return "char(18)";
    return core_type; /* text numeric integer date timestamptz text[] */
}

/* implicit transform so a core column always receives a value of its type */
static const char *implicit_transform(const char *core_type)
{
    if (!core_type)
        return NULL;
    if (!strcmp(core_type, "numeric"))
        return "number";
    if (!strcmp(core_type, "integer"))
        return "integer";
    if (!strcmp(core_type, "date"))
        return "date";
    if (!strcmp(core_type, "timestamptz"))
        return "datetime";
    return NULL;
}

void sync_obj_cleanup(struct obj_run *o)
{
    for (size_t i = 0; i < o->nsel; i++)
        free(o->sel[i]);
    free(o->sel);
    free(o->cols);
    free(o->core);
    free(o->core_type);
    free(o->copy_sql);
    free(o->merge_sql);
    for (size_t i = 0; i < o->ncalc; i++)
        free(o->calc[i]);
    free(o->calc);
    o->calc = NULL;
    o->ncalc = 0;
    o->sel = NULL;
    o->cols = NULL;
    o->core = o->core_type = NULL;
    o->copy_sql = o->merge_sql = NULL;
    o->nsel = o->ncols = o->ncore = 0;
}

static int sel_index(struct obj_run *o, const char *f)
{
    for (size_t i = 0; i < o->nsel; i++)
        if (!strcasecmp(o->sel[i], f))
            return (int)i;
    return -1;
}

bool sync_is_calc(const struct obj_run *o, const char *sf_field)
{
    for (size_t i = 0; i < o->ncalc; i++)
        if (!strcasecmp(o->calc[i], sf_field))
            return true;
    return false;
}

/* formulas: update only the mapped calculated columns/attribute keys of rows that exist, counting those whose
 * values changed; sf_modstamp, deleted_at, links and cursors stay as they are. $1 org, $2 connection, $3 object */
static char *formulas_merge_sql(struct obj_run *o)
{
    struct pg_buf b = {0};
    sbf(&b, "WITH src AS (SELECT DISTINCT ON (salesforce_id) * FROM sfb_stage_%s "
            "WHERE salesforce_id IS NOT NULL AND $2::uuid IS NOT NULL AND $3::text IS NOT NULL), "
            "up AS (UPDATE %s t SET updated_at = now()",
        o->table, o->table);
    for (size_t k = 0; k < o->ncore; k++)
        sbf(&b, ", %s = s.%s", o->core[k], o->core[k]);
    if (o->has_attrs)
        sb(&b, ", attributes = t.attributes || COALESCE(s.attributes, '{}')");
    sb(&b, " FROM src s WHERE t.org_id = $1 AND t.salesforce_id = s.salesforce_id AND t.deleted_at IS NULL AND (false");
    if (o->ncore) {
        sb(&b, " OR ROW(");
        for (size_t k = 0; k < o->ncore; k++)
            sbf(&b, "%st.%s", k ? ", " : "", o->core[k]);
        sb(&b, ") IS DISTINCT FROM ROW(");
        for (size_t k = 0; k < o->ncore; k++)
            sbf(&b, "%ss.%s", k ? ", " : "", o->core[k]);
        sb(&b, ")");
    }
    if (o->has_attrs)
        sb(&b, " OR NOT (t.attributes @> COALESCE(s.attributes, '{}'))");
    sb(&b, ") RETURNING 1) SELECT 0, (SELECT count(*) FROM up), 0");
    return sb_take(&b);
}

bool sync_obj_prepare(struct run *r, struct obj_run *o, struct err *e)
{
    const struct object_map *om = o->om;
    struct pg_buf b = {0};
    size_t n = om->nfields;
    o->sel = calloc(n + 1, sizeof *o->sel);
    o->cols = calloc(n + 1, sizeof *o->cols);
    o->core = calloc(n + 1, sizeof *o->core);
    o->core_type = calloc(n + 1, sizeof *o->core_type);
    if (!o->sel || !o->cols || !o->core || !o->core_type)
        return err_set(e, ERR_NOMEM, true, "out of memory");
    o->table = om->table;
    o->platform = om->platform_object;
    if (!o->table)
        return err_set(e, ERR_INVALID_MESSAGE, false, "cannot sync %s: unknown platform object \"%s\"",
                       o->sf_object, om->platform_object);
    for (size_t i = 0; i < n; i++) {
        const struct field_map *f = &om->fields[i];
        if (!(f->dir & MAP_IMPORT))
            continue;
        if (r->mode == MODE_FORMULAS && !sync_is_calc(o, f->sf_field))
            continue; /* a formula refresh reads and writes only the calculated fields */
        if (!soql_field_valid(f->sf_field))
            return err_set(e, ERR_INVALID_MESSAGE, false, "cannot sync %s: invalid field name \"%.80s\" in the mapping",
                           o->sf_object, f->sf_field);
        int si = sel_index(o, f->sf_field);
        if (si < 0) {
            if (!(o->sel[o->nsel] = strdup(f->sf_field)))
                return err_set(e, ERR_NOMEM, true, "out of memory");
            si = (int)o->nsel++;
        }
        struct col_map *c = &o->cols[o->ncols];
        c->f = f;
        c->sel = si;
        c->core_type = mapping_core_column(o->platform, f->platform_field);
        c->core = -1;
        if (c->core_type) {
            for (size_t k = 0; k < o->ncore; k++)
                if (!strcmp(o->core[k], f->platform_field))
                    c->core = (int)k;
            if (c->core >= 0)
                continue; /* a second mapping onto the same column: the first wins */
            c->core = (int)o->ncore;
            o->core[o->ncore] = f->platform_field;
            o->core_type[o->ncore++] = c->core_type;
        } else {
            bool dup = false;
            for (size_t k = 0; k < o->ncols; k++)
                if (!o->cols[k].core_type && !strcmp(o->cols[k].f->platform_field, f->platform_field))
                    dup = true;
            if (dup)
                continue;
            o->has_attrs = true;
        }
        o->ncols++;
    }

    bool company_link = false, deal_link = false, contacts_link = false;
    for (size_t k = 0; k < o->ncore; k++) {
        if (!strcmp(o->core[k], "company_sf_id"))
            company_link = strcmp(o->platform, "Company") != 0;
        if (!strcmp(o->core[k], "deal_sf_id"))
            deal_link = true;
        if (!strcmp(o->core[k], "contact_sf_ids"))
            contacts_link = true;
    }
    bool is_activity = !strcmp(o->platform, "Activity");

    /* COPY */
    sbf(&b, "COPY sfb_stage_%s (salesforce_id, sf_modstamp, is_deleted", o->table);
    for (size_t k = 0; k < o->ncore; k++)
        sbf(&b, ", %s", o->core[k]);
    sb(&b, ", attributes) FROM STDIN");
    o->copy_sql = sb_take(&b);
    if (r->mode == MODE_FORMULAS) {
        o->merge_sql = formulas_merge_sql(o);
        return true;
    }

    /* merge: $1 org, $2 connection, $3 sf object */
    sbf(&b, "WITH src AS (SELECT DISTINCT ON (salesforce_id) * FROM sfb_stage_%s "
            "WHERE salesforce_id IS NOT NULL AND sf_modstamp IS NOT NULL AND $3::text IS NOT NULL "
            "ORDER BY salesforce_id, sf_modstamp DESC), "
            "up AS (INSERT INTO %s AS t (org_id, connection_id, salesforce_id, sf_modstamp, deleted_at, synced_at, "
            "attributes",
        o->table, o->table);
    if (is_activity)
        sb(&b, ", sf_object");
    for (size_t k = 0; k < o->ncore; k++)
        sbf(&b, ", %s", o->core[k]);
    if (company_link)
        sb(&b, ", company_id");
    if (deal_link)
        sb(&b, ", deal_id");
    if (contacts_link)
        sb(&b, ", contact_ids");
    sb(&b, ") SELECT $1, $2::uuid, s.salesforce_id, s.sf_modstamp, NULL, now(), COALESCE(s.attributes, '{}')");
    if (is_activity)
        sb(&b, ", $3");
    for (size_t k = 0; k < o->ncore; k++) {
        if (!strcmp(o->core[k], "contact_sf_ids"))
            sb(&b, ", COALESCE(s.contact_sf_ids, '{}')");
        else
            sbf(&b, ", s.%s", o->core[k]);
    }
    if (company_link)
        sb(&b, ", (SELECT c.id FROM companies c WHERE c.org_id = $1 AND c.salesforce_id = s.company_sf_id)");
    if (deal_link)
        sb(&b, ", (SELECT x.id FROM deals x WHERE x.org_id = $1 AND x.salesforce_id = s.deal_sf_id)");
    if (contacts_link)
        sb(&b, ", ARRAY(SELECT c.id FROM unnest(s.contact_sf_ids) WITH ORDINALITY u(sf, n) "
               "JOIN contacts c ON c.org_id = $1 AND c.salesforce_id = u.sf::char(18) ORDER BY u.n)");
    sb(&b, " FROM src s WHERE NOT COALESCE(s.is_deleted, false) "
           "ON CONFLICT (org_id, salesforce_id) DO UPDATE SET sf_modstamp = excluded.sf_modstamp, deleted_at = NULL, "
           "synced_at = excluded.synced_at, updated_at = now(), connection_id = excluded.connection_id");
    if (o->has_attrs)
        sb(&b, ", attributes = t.attributes || excluded.attributes");
    if (is_activity)
        sb(&b, ", sf_object = excluded.sf_object");
    for (size_t k = 0; k < o->ncore; k++)
        sbf(&b, ", %s = excluded.%s", o->core[k], o->core[k]);
    if (company_link)
        sb(&b, ", company_id = excluded.company_id");
    if (deal_link)
        sb(&b, ", deal_id = excluded.deal_id");
    if (contacts_link)
        sb(&b, ", contact_ids = excluded.contact_ids");
    /* the stale-version guard, and "something changed" so identical records stay untouched */
    sb(&b, " WHERE (t.sf_modstamp IS NULL OR excluded.sf_modstamp >= t.sf_modstamp) AND (t.deleted_at IS NOT NULL");
    if (o->ncore) {
        sb(&b, " OR ROW(");
        for (size_t k = 0; k < o->ncore; k++)
            sbf(&b, "%st.%s", k ? ", " : "", o->core[k]);
        sb(&b, ") IS DISTINCT FROM ROW(");
        for (size_t k = 0; k < o->ncore; k++)
            sbf(&b, "%sexcluded.%s", k ? ", " : "", o->core[k]);
        sb(&b, ")");
    }
    if (o->has_attrs)
        sb(&b, " OR NOT (t.attributes @> excluded.attributes)");
    sb(&b, ") RETURNING (t.xmax = 0) AS ins), ");
    sbf(&b, "del AS (UPDATE %s t SET deleted_at = s.sf_modstamp, sf_modstamp = s.sf_modstamp, synced_at = now(), "
            "updated_at = now() FROM src s WHERE COALESCE(s.is_deleted, false) AND t.org_id = $1 "
            "AND t.salesforce_id = s.salesforce_id AND t.deleted_at IS NULL "
            "AND (t.sf_modstamp IS NULL OR s.sf_modstamp >= t.sf_modstamp) RETURNING 1) "
            "SELECT (SELECT count(*) FILTER (WHERE ins) FROM up), (SELECT count(*) FILTER (WHERE NOT ins) FROM up), "
            "(SELECT count(*) FROM del)",
        o->table);
    o->merge_sql = sb_take(&b);
    return true;
}

static bool ensure_stage(struct run *r, struct obj_run *o, struct err *e)
{
    struct pg_buf b = {0};
    sbf(&b, "CREATE TEMP TABLE IF NOT EXISTS sfb_stage_%s (salesforce_id char(18), sf_modstamp timestamptz, "
            "is_deleted boolean",
        o->table);
    const char *type;
    const char *name;
    for (size_t i = 0; (name = mapping_core_column_at(o->platform, i, &type)); i++)
        sbf(&b, ", %s %s", name, sql_type(type));
    sb(&b, ", attributes jsonb) ON COMMIT DELETE ROWS");
    bool ok = pg_run(r->d->pg, b.data, 0, NULL, e);
    pg_buf_free(&b);
    return ok;
}

/* ---- rows ---------------------------------------------------------------- */

static void json_str_append(struct pg_buf *b, const char *s)
{
    pg_buf_append(b, "\"", 1);
    const char *run = s;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        const char *rep = NULL;
        if (*p == '"')
            rep = "\\\"";
        else if (*p == '\\')
            rep = "\\\\";
        else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            rep = esc;
        }
        if (rep) {
            pg_buf_append(b, run, (size_t)((const char *)p - run));
            pg_buf_append(b, rep, strlen(rep));
            run = (const char *)p + 1;
        }
    }
    pg_buf_append(b, run, strlen(run));
    pg_buf_append(b, "\"", 1);
}

/* a canonical JSON number for a validated number text, so REST and Bulk agree */
static void json_num_append(struct pg_buf *b, const char *s)
{
    const char *p = s;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    const char *ip = p;
    while (isdigit((unsigned char)*p))
        p++;
    size_t il = (size_t)(p - ip);
    const char *fp = NULL;
    size_t fl = 0;
    if (*p == '.') {
        fp = ++p;
        while (isdigit((unsigned char)*p))
            p++;
        fl = (size_t)(p - fp);
    }
    if (*p) { /* exponent or anything else: let strtod/printf canonicalise */
        char tmp[64];
        snprintf(tmp, sizeof tmp, "%.17g", strtod(s, NULL));
        sb(b, tmp);
        return;
    }
    while (il > 1 && *ip == '0') {
        ip++;
        il--;
    }
    while (fl > 0 && fp[fl - 1] == '0')
        fl--;
    bool zero = (il == 0 || (il == 1 && *ip == '0')) && fl == 0;
    if (neg && !zero)
        pg_buf_append(b, "-", 1);
    if (il == 0)
        pg_buf_append(b, "0", 1);
    else
        pg_buf_append(b, ip, il);
    if (fl) {
        pg_buf_append(b, ".", 1);
        pg_buf_append(b, fp, fl);
    }
}

/* "a,b;c d" -> "{a,b,c}" (ids are alphanumeric) */
static char *id_array(const char *s, struct err *e)
{
    struct pg_buf b = {0};
    pg_buf_append(&b, "{", 1);
    bool first = true;
    const char *p = s;
    while (*p) {
        while (*p && (*p == ',' || *p == ';' || isspace((unsigned char)*p)))
            p++;
        const char *st = p;
        while (*p && isalnum((unsigned char)*p))
            p++;
        if (p == st) {
            if (*p) {
                pg_buf_free(&b);
                err_set(e, ERR_INVALID_MESSAGE, false, "cannot import \"%.40s\" as a list of Salesforce ids", s);
                return NULL;
            }
            break;
        }
        if (!first)
            pg_buf_append(&b, ",", 1);
        pg_buf_append(&b, st, (size_t)(p - st));
        first = false;
    }
    pg_buf_append(&b, "}", 1);
    return sb_take(&b);
}

static bool valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n != 15 && n != 18)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]))
            return false;
    return true;
}

static const struct field_map dt_map = {.sf_field = (char[]){"SystemModstamp"},
                                        .platform_field = (char[]){"sf_modstamp"},
                                        .dir = MAP_IMPORT,
                                        .transform = (char[]){"datetime"}};

static bool transform_value(const struct col_map *c, const char *in, char **out, struct err *e)
{
    *out = NULL;
    char *v = NULL;
    if (c->f->transform) {
        if (!mapping_import_str(c->f, in, &v, e))
            return false;
    } else if (!(v = strdup(in))) {
        return err_set(e, ERR_NOMEM, true, "out of memory");
    }
    if (!v)
        return true;
    const char *it = implicit_transform(c->core_type);
    if (it && *v) {
        struct field_map im = *c->f;
        char tbuf[16];
        snprintf(tbuf, sizeof tbuf, "%s", it);
        im.transform = tbuf;
        char *w = NULL;
        bool ok = mapping_import_str(&im, v, &w, e);
        free(v);
        if (!ok)
            return false;
        v = w;
    } else if (c->core_type && !strcmp(c->core_type, "char18") && *v && !valid_id(v)) {
        err_set(e, ERR_INVALID_MESSAGE, false, "cannot import field \"%s\": \"%.40s\" is not a Salesforce id",
                c->f->sf_field, v);
        free(v);
        return false;
    } else if (c->core_type && !strcmp(c->core_type, "text[]")) {
        char *w = id_array(v, e);
        free(v);
        if (!w)
            return false;
        v = w;
    }
    *out = v;
    return true;
}

bool sync_add_row(struct run *r, sync_get_fn get, void *ud, struct err *e)
{
    struct obj_run *o = r->o;
    char tmp[64], mod[64];
    bool ok = false;
    const char *id = get(ud, -3, tmp, sizeof tmp);
    if (!id || !*id)
        return err_set(e, ERR_SALESFORCE, false, "could not sync %s: a record without Id", o->sf_object);
    if (!valid_id(id))
        return err_set(e, ERR_SALESFORCE, false, "could not sync %s: malformed Id \"%.40s\"", o->sf_object, id);
    char idc[20];
    snprintf(idc, sizeof idc, "%s", id);
    bool deleted = false;
    mod[0] = '\0';
    if (r->mode != MODE_FORMULAS) { /* a formula refresh reads Id + the calculated fields only */
        const char *m = get(ud, -2, tmp, sizeof tmp);
        char *nm = NULL;
        if (!m || !*m || !mapping_import_str(&dt_map, m, &nm, e) || !nm) {
            free(nm);
            err_clear(e);
            return err_set(e, ERR_SALESFORCE, false, "could not sync %s: record %s has no valid SystemModstamp",
                           o->sf_object, idc);
        }
        snprintf(mod, sizeof mod, "%s", nm);
        free(nm);
        const char *dv = get(ud, -1, tmp, sizeof tmp);
        deleted = dv && (!strcasecmp(dv, "true") || !strcmp(dv, "1"));
    }

    for (size_t k = 0; k < o->ncore; k++)
        r->slot[k] = NULL;
    r->attrs.len = 0;
    pg_buf_append(&r->attrs, "{", 1);
    bool first_attr = true;
    for (size_t i = 0; i < o->ncols; i++) {
        const struct col_map *c = &o->cols[i];
        const char *v = get(ud, c->sel, tmp, sizeof tmp);
        char *out = NULL;
        if (v && *v && !transform_value(c, v, &out, e)) {
            /* name the record too: the first error wins, so prefix by re-setting is not possible */
            log_warn("record %s of %s: %s", idc, o->sf_object, e->msg);
            goto out;
        }
        if (c->core_type) {
            if (!r->slot[c->core])
                r->slot[c->core] = out;
            else
                free(out);
            continue;
        }
        if (!first_attr)
            pg_buf_append(&r->attrs, ",", 1);
        first_attr = false;
        json_str_append(&r->attrs, c->f->platform_field);
        pg_buf_append(&r->attrs, ":", 1);
        const char *last = c->f->transform ? strrchr(c->f->transform, '|') : NULL;
        last = last ? last + 1 : c->f->transform;
        if (!out)
            pg_buf_append(&r->attrs, "null", 4);
        else if (last && (!strcmp(last, "number") || !strcmp(last, "integer")))
            json_num_append(&r->attrs, out);
        else if (last && !strcmp(last, "boolean"))
            sb(&r->attrs, out);
        else
            json_str_append(&r->attrs, out);
        free(out);
    }
    pg_buf_append(&r->attrs, "}", 1);

    pg_buf_copy_field(&r->buf, idc);
    pg_buf_append(&r->buf, "\t", 1);
    pg_buf_copy_field(&r->buf, mod[0] ? mod : NULL);
    pg_buf_append(&r->buf, deleted ? "\tt" : "\tf", 2);
    for (size_t k = 0; k < o->ncore; k++) {
        pg_buf_append(&r->buf, "\t", 1);
        pg_buf_copy_field(&r->buf, r->slot[k]);
    }
    pg_buf_append(&r->buf, "\t", 1);
    pg_buf_copy_field(&r->buf, r->attrs.data);
    pg_buf_append(&r->buf, "\n", 1);
    r->rows++;
    o->fetched++;
    metrics_count_l("sfbridge_sync_records_total", "object", o->sf_object, 1); /* rate() = records/s */
    snprintf(r->last_mod, sizeof r->last_mod, "%s", mod);
    snprintf(r->last_id, sizeof r->last_id, "%s", idc);
    ok = true;
out:
    for (size_t k = 0; k < o->ncore; k++) {
        free(r->slot[k]);
        r->slot[k] = NULL;
    }
    return ok;
}

/* ---- run bookkeeping ----------------------------------------------------- */

static struct json_object *objects_json(struct run *r, bool with_state)
{
    struct json_object *objs = json_object_new_object();
    for (size_t i = 0; i < r->nobjs; i++) {
        struct obj_run *o = &r->objs[i];
        struct json_object *c = json_object_new_object();
        json_add_int(c, "fetched", o->fetched);
        json_add_int(c, "inserted", o->inserted);
        json_add_int(c, "updated", o->updated);
        json_add_int(c, "deleted", o->deleted);
        json_add_int(c, "unchanged", o->unchanged);
        if (err_is_set(&o->err)) {
            struct json_object *er = json_object_new_object();
            json_add_str(er, "code", err_public_code(&o->err));
            json_add_str(er, "message", o->err.msg);
            json_object_object_add(c, "error", er);
        }
        if (with_state) {
            json_add_str(c, "state", o->state);
            if (o->total >= 0)
                json_add_int(c, "total", o->total);
        }
        json_object_object_add(objs, o->sf_object, c);
    }
    return objs;
}

struct json_object *sync_objects_json(struct run *r, bool with_state) { return objects_json(r, with_state); }

bool sync_save_run(struct run *r, const char *status, struct err *e)
{
    struct json_object *objs = objects_json(r, true);
    long long fetched = 0, total = 0;
    bool total_known = false;
    const char *current = NULL;
    for (size_t i = 0; i < r->nobjs; i++) {
        fetched += r->objs[i].fetched;
        if (r->objs[i].total >= 0) {
            total += r->objs[i].total;
            total_known = true;
        }
        if (!strcmp(r->objs[i].state, "running"))
            current = r->objs[i].sf_object;
    }
    char f[24], t[24], calls[24], retry[40] = "";
    snprintf(f, sizeof f, "%lld", fetched);
    snprintf(t, sizeof t, "%lld", total);
    snprintf(calls, sizeof calls, "%lld", sync_calls(r));
    bool final = strcmp(status, "running") != 0;
    if (!strcmp(status, "deferred") && r->retry_at_ms > 0)
        snprintf(retry, sizeof retry, "%lld", r->retry_at_ms);
    const struct err *fe = NULL;
    if (final && !strcmp(status, "deferred"))
        fe = &r->defer_err;
    for (size_t i = 0; final && !fe && i < r->nobjs; i++)
        if (err_is_set(&r->objs[i].err))
            fe = &r->objs[i].err;
    const char *p[10] = {r->job->message_id,
                         status,
                         current,
                         json_str(objs),
                         f,
                         total_known ? t : NULL,
                         calls,
                         final ? "t" : "f",
                         retry[0] ? retry : NULL,
                         fe && err_is_set(fe) ? err_public_code(fe) : NULL};
    const char *msg = fe && err_is_set(fe) ? fe->msg : NULL;
    const char *pp[11];
    memcpy(pp, p, sizeof p);
    pp[10] = msg;
    bool ok = pg_run(r->d->pg,
                     "UPDATE sync_runs SET status = $2, current_object = $3, objects = $4::jsonb, fetched = $5, "
                     "total = $6, api_calls = $7, updated_at = now(), "
                     "finished_at = CASE WHEN $8 THEN now() ELSE NULL END, "
                     "retry_at = CASE WHEN $9::bigint IS NULL THEN NULL ELSE to_timestamp($9::bigint / 1000.0) END, "
                     "error_code = $10, error_message = $11 WHERE request_id = $1",
                     11, pp, e);
    json_object_put(objs);
    return ok;
}

void sync_emit_progress(struct run *r)
{
    struct obj_run *o = r->o;
    struct json_object *ev = worker_event_new(r->job);
    json_add_str(ev, "object", o->sf_object);
    json_add_int(ev, "fetched", o->fetched);
    if (o->total >= 0)
        json_add_int(ev, "total", o->total);
    else
        json_object_object_add(ev, "total", NULL);
    json_add_int(ev, "pages", o->pages);
    char topic[256];
    worker_topic(r->d, "sync.progress", topic, sizeof topic);
    const char *payload = json_str(ev);
    struct err e = ERR_INIT;
    if (!kafka_produce_async(r->d->producer, topic, r->job->connection_id, payload, strlen(payload), &e))
        log_warn("could not emit sync.progress: %s", e.msg);
    json_object_put(ev);
}

static bool fixups(struct run *r, struct obj_run *o, struct err *e)
{
    const char *p[1] = {r->job->org_id};
    struct pg *pg = r->d->pg;
    if (!strcmp(o->platform, "Company")) {
        static const char *const children[] = {"deals", "contacts", "activities"};
        for (int i = 0; i < 3; i++) {
            char sql[512];
            snprintf(sql, sizeof sql,
                     "UPDATE %s d SET company_id = c.id FROM sfb_stage_companies s "
                     "JOIN companies c ON c.org_id = $1 AND c.salesforce_id = s.salesforce_id "
                     "WHERE d.org_id = $1 AND d.company_id IS NULL AND d.company_sf_id = s.salesforce_id",
                     children[i]);
            if (!pg_run(pg, sql, 1, p, e))
                return false;
        }
    } else if (!strcmp(o->platform, "Deal")) {
        if (!pg_run(pg,
                    "UPDATE activities a SET deal_id = x.id FROM sfb_stage_deals s "
                    "JOIN deals x ON x.org_id = $1 AND x.salesforce_id = s.salesforce_id "
                    "WHERE a.org_id = $1 AND a.deal_id IS NULL AND a.deal_sf_id = s.salesforce_id",
                    1, p, e))
            return false;
    } else if (!strcmp(o->platform, "Contact")) {
        if (!pg_run(pg,
                    "UPDATE activities a SET contact_ids = ARRAY(SELECT c.id FROM unnest(a.contact_sf_ids) "
                    "WITH ORDINALITY u(sf, n) JOIN contacts c ON c.org_id = $1 AND c.salesforce_id = u.sf::char(18) "
                    "ORDER BY u.n) WHERE a.org_id = $1 AND cardinality(a.contact_ids) < cardinality(a.contact_sf_ids) "
                    "AND a.contact_sf_ids && ARRAY(SELECT salesforce_id::text FROM sfb_stage_contacts)",
                    1, p, e))
            return false;
    }
    return true;
}

bool sync_flush(struct run *r, bool full_cursor, struct err *e)
{
    struct obj_run *o = r->o;
    struct pg *pg = r->d->pg;
    struct pg_res *res = NULL;
    bool ok = false;
    if (!pg_begin(pg, e))
        return false;
    if (r->rows > 0) {
        if (!ensure_stage(r, o, e) || !pg_copy_start(pg, o->copy_sql, e))
            goto out;
        bool put = pg_copy_put(pg, r->buf.data, r->buf.len, e);
        if (!pg_copy_end(pg, e) || !put)
            goto out;
        /* a temp table has no statistics: without them the planner may rescan the batch once per
         * row of the target table (minutes at 10k rows); ANALYZE of one batch costs a few ms */
        char an[96];
        snprintf(an, sizeof an, "ANALYZE sfb_stage_%s", o->table);
        if (!pg_run(pg, an, 0, NULL, e))
            goto out;
        const char *p[3] = {r->job->org_id, r->job->connection_id, o->sf_object};
        long long t_copy = sync_now_ms();
        res = pg_exec(pg, o->merge_sql, 3, p, e);
        if (!res)
            goto out;
        long long t_merge = sync_now_ms();
        long long ins = strtoll(pg_res_get(res, 0, 0), NULL, 10);
        long long upd = strtoll(pg_res_get(res, 0, 1), NULL, 10);
        long long del = strtoll(pg_res_get(res, 0, 2), NULL, 10);
        pg_res_free(&res);
        if (r->mode != MODE_FORMULAS && !fixups(r, o, e))
            goto out;
        log_debug("%s batch of %zu: merge %lld ms, links %lld ms", o->sf_object, r->rows, t_merge - t_copy,
                  sync_now_ms() - t_merge);
        const char *cp[4] = {r->job->connection_id, o->sf_object, r->last_mod, r->last_id};
        if (r->mode == MODE_FORMULAS) {
            /* no cursor: a formula refresh never moves watermarks */
        } else if (full_cursor) {
            if (!pg_run(pg,
                        "UPDATE sync_state SET full_watermark = $3, full_last_id = $4, updated_at = now() "
                        "WHERE connection_id = $1 AND sf_object = $2",
                        4, cp, e))
                goto out;
        } else if (!pg_run(pg,
                           "INSERT INTO sync_state (connection_id, sf_object, watermark, last_id) "
                           "VALUES ($1, $2, $3, $4) ON CONFLICT (connection_id, sf_object) DO UPDATE SET "
                           "last_id = CASE WHEN sync_state.watermark IS NULL OR excluded.watermark >= "
                           "sync_state.watermark THEN excluded.last_id ELSE sync_state.last_id END, "
                           "watermark = GREATEST(sync_state.watermark, excluded.watermark), updated_at = now()",
                           4, cp, e)) {
            goto out;
        }
        o->inserted += ins;
        o->updated += upd;
        o->deleted += del;
        o->unchanged += (long long)r->rows - ins - upd - del;
        snprintf(o->cur_mod, sizeof o->cur_mod, "%s", r->last_mod);
        snprintf(o->cur_id, sizeof o->cur_id, "%s", r->last_id);
    }
    if (!sync_save_run(r, "running", e))
        goto out;
    if (!pg_commit(pg, e))
        goto out;
    ok = true;
    if (r->rows > 0) {
        o->pages++;
        sync_emit_progress(r);
    }
out:
    pg_res_free(&res);
    if (!ok) {
        pg_rollback(pg);
        /* counters were not applied (they are added only after the merge succeeded) */
    }
    r->buf.len = 0;
    r->rows = 0;
    return ok;
}

bool sync_soft_delete_ids(struct run *r, struct obj_run *o, struct json_object *deleted, struct err *e)
{
    size_t n = deleted && json_object_is_type(deleted, json_type_array) ? json_object_array_length(deleted) : 0;
    if (n == 0)
        return true;
    struct pg_buf ids = {0}, dates = {0};
    pg_buf_append(&ids, "{", 1);
    pg_buf_append(&dates, "{", 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        struct json_object *d = json_object_array_get_idx(deleted, i);
        const char *id = json_get_str(d, "id");
        const char *when = json_get_str(d, "deletedDate");
        char *nd = NULL;
        if (!id || !valid_id(id) || !when || !mapping_import_str(&dt_map, when, &nd, e) || !nd) {
            free(nd);
            err_clear(e);
            continue;
        }
        if (k++) {
            pg_buf_append(&ids, ",", 1);
            pg_buf_append(&dates, ",", 1);
        }
        sb(&ids, id);
        sb(&dates, "\"");
        sb(&dates, nd);
        sb(&dates, "\"");
        free(nd);
    }
    pg_buf_append(&ids, "}", 1);
    pg_buf_append(&dates, "}", 1);
    bool ok = false;
    struct pg_res *res = NULL;
    char sql[600];
    snprintf(sql, sizeof sql,
             "WITH d AS (UPDATE %s t SET deleted_at = x.dt, sf_modstamp = GREATEST(t.sf_modstamp, x.dt), "
             "synced_at = now(), updated_at = now() FROM unnest($2::text[], $3::timestamptz[]) x(id, dt) "
             "WHERE t.org_id = $1 AND t.salesforce_id = x.id::char(18) AND t.deleted_at IS NULL RETURNING 1) "
             "SELECT count(*) FROM d",
             o->table);
    const char *p[3] = {r->job->org_id, ids.data, dates.data};
    if (!pg_begin(r->d->pg, e))
        goto out;
    res = pg_exec(r->d->pg, sql, 3, p, e);
    if (!res)
        goto out;
    long long cnt = strtoll(pg_res_get(res, 0, 0), NULL, 10);
    o->deleted += cnt;
    if (!sync_save_run(r, "running", e) || !pg_commit(r->d->pg, e)) {
        o->deleted -= cnt;
        goto out;
    }
    ok = true;
out:
    if (!ok)
        pg_rollback(r->d->pg);
    pg_res_free(&res);
    pg_buf_free(&ids);
    pg_buf_free(&dates);
    return ok;
}
