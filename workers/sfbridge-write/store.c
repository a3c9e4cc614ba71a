/*
 * store: what the write worker keeps in PostgreSQL — write_intents (committed
 * before each Salesforce call, outcome after), the local Company / Deal /
 * Contact / Activity rows that mirror what was written, the audit rows, and
 * the record.written event. See write.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "json.h"
#include "log.h"
#include "pg.h"
#include "worker.h"
#include "write.h"

/* ---- PostgreSQL array literals -------------------------------------------------------- */

static void arr_add(struct pg_buf *b, const char *s)
{
    pg_buf_append(b, b->len ? "," : "{", 1);
    if (!s) {
        pg_buf_append(b, "NULL", 4);
        return;
    }
    pg_buf_append(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            pg_buf_append(b, "\\", 1);
        pg_buf_append(b, p, 1);
    }
    pg_buf_append(b, "\"", 1);
}

static const char *arr_end(struct pg_buf *b)
{
    if (!b->len)
        pg_buf_append(b, "{", 1);
    pg_buf_append(b, "}", 1);
    return b->data;
}

/* ---- intents -------------------------------------------------------------------------- */

static struct wop *op_by_ref(struct wmsg *m, const char *ref)
{
    for (int i = 0; i < m->nops; i++)
        if (!strcmp(m->ops[i].ref, ref))
            return &m->ops[i];
    return NULL;
}

bool write_intents_load(struct pg *pg, struct wmsg *m, struct err *e)
{
    const char *p[1] = {m->request_id};
    struct pg_res *r = pg_exec(pg,
                               "SELECT ref, platform_id::text, state, salesforce_id, outcome, error_code, "
                               "error_message FROM write_intents WHERE request_id = $1::uuid",
                               1, p, e);
    if (!r)
        return false;
    for (int i = 0; i < pg_res_rows(r); i++) {
        struct wop *o = op_by_ref(m, pg_res_get(r, i, 0));
        if (!o)
            continue;
        const char *state = pg_res_get(r, i, 2);
        snprintf(o->platform_id, sizeof o->platform_id, "%s", pg_res_get(r, i, 1));
        o->from_intent = true;
        if (!strcmp(state, "sent"))
            o->prior_attempt = true;
        if (!strcmp(state, "succeeded") || !strcmp(state, "failed") || !strcmp(state, "refused")) {
            /* finished by an earlier attempt of this request (a multi-call write that was interrupted) */
            o->done = o->recorded = true;
            if (!pg_res_isnull(r, i, 3))
                snprintf(o->sf_id, sizeof o->sf_id, "%s", pg_res_get(r, i, 3));
            const char *oc = pg_res_get(r, i, 4);
            o->outcome = !oc ? "failed" : !strcmp(oc, "created") ? "created" : !strcmp(oc, "updated") ? "updated"
                                                                   : !strcmp(oc, "refused")           ? "refused"
                                                                                                      : "failed";
            snprintf(o->err_code, sizeof o->err_code, "%s", pg_res_isnull(r, i, 5) ? "" : pg_res_get(r, i, 5));
            snprintf(o->err_msg, sizeof o->err_msg, "%s", pg_res_isnull(r, i, 6) ? "" : pg_res_get(r, i, 6));
        }
    }
    pg_res_free(&r);
    return true;
}

bool write_intents_insert(struct pg *pg, struct wmsg *m, struct err *e)
{
    struct pg_buf a[8] = {{0}};
    bool any = false, ok;
    for (int i = 0; i < m->nops; i++) {
        struct wop *o = &m->ops[i];
        if (o->from_intent)
            continue;
        if (!o->platform_id[0])
            json_uuid4(o->platform_id, sizeof o->platform_id);
        arr_add(&a[0], o->ref);
        arr_add(&a[1], o->object);
        arr_add(&a[2], o->om ? o->om->sf_object : o->object);
        arr_add(&a[3], o->action);
        arr_add(&a[4], o->platform_id);
        arr_add(&a[5], o->kind == K_EXTID ? o->platform_id : NULL);
        arr_add(&a[6], o->body ? json_object_to_json_string_ext(o->body, JSON_C_TO_STRING_PLAIN) : "{}");
        arr_add(&a[7], o->done ? (strcmp(o->outcome, "refused") ? "failed" : "refused") : "pending");
        o->from_intent = true;
        any = true;
    }
    if (!any)
        return true;
    const char *p[11] = {m->request_id, m->org_id, m->connection_id};
    for (int k = 0; k < 8; k++)
        p[3 + k] = arr_end(&a[k]);
    ok = pg_run(pg,
                "INSERT INTO write_intents (request_id, ref, org_id, connection_id, platform_object, sf_object, "
                "action, platform_id, external_id, payload, state) "
                "SELECT $1::uuid, t.r, $2, $3::uuid, t.po, t.so, t.a, t.pid::uuid, t.ext, t.pl::jsonb, t.st "
                "FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], "
                "$11::text[]) AS t(r, po, so, a, pid, ext, pl, st) ON CONFLICT (request_id, ref) DO NOTHING",
                11, p, e);
    for (int k = 0; k < 8; k++)
        pg_buf_free(&a[k]);
    /* what is stored wins: an intent that already existed (another worker's, or an earlier attempt's)
       keeps its platform id, and the external id the record is upserted on must be that one */
    if (!ok)
        return false;
    const char *q[1] = {m->request_id};
    struct pg_res *r = pg_exec(pg, "SELECT ref, platform_id::text FROM write_intents WHERE request_id = $1::uuid", 1,
                               q, e);
    if (!r)
        return false;
    for (int i = 0; i < pg_res_rows(r); i++) {
        struct wop *o = op_by_ref(m, pg_res_get(r, i, 0));
        if (o && !pg_res_isnull(r, i, 1))
            snprintf(o->platform_id, sizeof o->platform_id, "%s", pg_res_get(r, i, 1));
    }
    pg_res_free(&r);
    return true;
}

bool write_intents_mark_sent(struct pg *pg, struct wmsg *m, struct err *e)
{
    struct pg_buf refs = {0};
    for (int i = 0; i < m->nops; i++)
        if (m->ops[i].in_call)
            arr_add(&refs, m->ops[i].ref);
    const char *p[2] = {m->request_id, arr_end(&refs)};
    bool ok = pg_run(pg,
                     "UPDATE write_intents SET state = 'sent', attempts = attempts + 1, updated_at = now() "
                     "WHERE request_id = $1::uuid AND ref = ANY($2::text[])",
                     2, p, e);
    pg_buf_free(&refs);
    return ok;
}

/* ---- local rows ----------------------------------------------------------------------- */

static const char *link_sf(const struct wmsg *m, const struct wlink *l)
{
    if (l->op >= 0)
        return m->ops[l->op].sf_id[0] ? m->ops[l->op].sf_id : NULL;
    return l->sf[0] ? l->sf : NULL;
}

static const char *sql_type(const char *t)
{
    return !strcmp(t, "char18") ? "text" : t;
}

struct stmt {
    char sql[8192];
    size_t len;
    const char *p[64];
    char *owned[64];
    int np, nowned;
};

static int st_param(struct stmt *s, const char *v)
{
    if (s->np >= 64)
        return 0;
    s->p[s->np++] = v;
    return s->np;
}

/* Same, taking ownership of v. */
static int st_own(struct stmt *s, char *v)
{
    if (s->np >= 64 || s->nowned >= 64) {
        free(v);
        return 0;
    }
    s->owned[s->nowned++] = v;
    s->p[s->np++] = v;
    return s->np;
}

static void st_cat(struct stmt *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void st_cat(struct stmt *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (s->len < sizeof s->sql) {
        int n = vsnprintf(s->sql + s->len, sizeof s->sql - s->len, fmt, ap);
        if (n > 0)
            s->len += (size_t)n;
    }
    va_end(ap);
}

static void st_free(struct stmt *s)
{
    for (int i = 0; i < s->nowned; i++)
        free(s->owned[i]);
}

/* The text a core column gets: what a later import of the written value would store. */
static char *column_value(const struct wop *o, const struct field_map *f, struct json_object *platform_value)
{
    struct json_object *sent = json_get(o->body, f->sf_field);
    char *out = NULL;
    struct err e = ERR_INIT;
    if ((f->dir & MAP_IMPORT) && mapping_import_value(f, sent, &out, &e))
        return out;
    if (!platform_value || json_object_is_type(platform_value, json_type_null))
        return NULL;
    return strdup(json_object_get_string(platform_value));
}

static bool local_row(struct pg *pg, struct wmsg *m, struct wop *o, struct err *e)
{
    struct stmt s;
    memset(&s, 0, sizeof s);
    const char *cols[40];
    char *vals[40];
    int ncols = 0;
    struct json_object *attrs = json_object_new_object();
    char buf[256];
    bool ok = false;

    int p_org = st_param(&s, m->org_id);
    json_object_object_foreach(o->fields, key, val)
    {
        const struct field_map *f = mapping_field_by_platform(o->om, key, MAP_EXPORT);
        const char *type = f ? mapping_core_column(o->object, key) : NULL;
        if (!f)
            continue;
        if (!type) {
            json_object_object_add(attrs, key, json_object_get(val));
            continue;
        }
        if (ncols >= 30)
            continue;
        char *v = column_value(o, f, val);
        int k = st_own(&s, v);
        snprintf(buf, sizeof buf, "$%d::%s", k, sql_type(type));
        cols[ncols] = key;
        vals[ncols++] = strdup(buf);
    }
    /* a record this write created holds nothing but what was sent: the attributes it did not get are
       null, as a later import of it would store them (so that import finds the row unchanged) */
    if (!o->local_id[0] && !strcmp(o->outcome, "created"))
        for (size_t i = 0; i < o->om->nfields; i++) {
            const struct field_map *f = &o->om->fields[i];
            if ((f->dir & MAP_IMPORT) && !strchr(f->sf_field, '.') &&
                !mapping_core_column(o->object, f->platform_field) &&
                !json_object_object_get_ex(attrs, f->platform_field, NULL))
                json_object_object_add(attrs, f->platform_field, NULL);
        }
    /* links */
    char lv[3][96];
    int nl = 0;
    if (o->has_company && link_sf(m, &o->company)) {
        int k = st_param(&s, link_sf(m, &o->company));
        snprintf(lv[nl], sizeof lv[nl], "$%d::text", k);
        cols[ncols] = "company_sf_id";
        vals[ncols++] = strdup(lv[nl]);
        snprintf(buf, sizeof buf, "(SELECT id FROM companies WHERE org_id = $%d AND salesforce_id = $%d LIMIT 1)",
                 p_org, k);
        cols[ncols] = "company_id";
        vals[ncols++] = strdup(buf);
        nl++;
    }
    if (o->has_deal && link_sf(m, &o->deal)) {
        int k = st_param(&s, link_sf(m, &o->deal));
        snprintf(lv[nl], sizeof lv[nl], "$%d::text", k);
        cols[ncols] = "deal_sf_id";
        vals[ncols++] = strdup(lv[nl]);
        snprintf(buf, sizeof buf, "(SELECT id FROM deals WHERE org_id = $%d AND salesforce_id = $%d LIMIT 1)", p_org,
                 k);
        cols[ncols] = "deal_id";
        vals[ncols++] = strdup(buf);
        nl++;
    }
    if (o->ncontacts) {
        struct pg_buf arr = {0};
        for (int i = 0; i < o->ncontacts; i++)
            if (link_sf(m, &o->contacts[i]))
                arr_add(&arr, link_sf(m, &o->contacts[i]));
        int k = st_own(&s, strdup(arr_end(&arr)));
        pg_buf_free(&arr);
        snprintf(buf, sizeof buf, "$%d::text[]", k);
        cols[ncols] = "contact_sf_ids";
        vals[ncols++] = strdup(buf);
        char big[200];
        snprintf(big, sizeof big,
                 "ARRAY(SELECT id FROM contacts WHERE org_id = $%d AND salesforce_id = ANY($%d::text[]))", p_org, k);
        cols[ncols] = "contact_ids";
        vals[ncols++] = strdup(big);
    }
    int p_attr = st_own(&s, strdup(json_object_to_json_string_ext(attrs, JSON_C_TO_STRING_PLAIN)));
    int p_sf = st_param(&s, o->sf_id);
    /* the SystemModstamp read back for a record this write created: a later sync of it is `unchanged`;
       after an update it stays as it was, so the next sync imports the record (it may hold other changes) */
    int p_ms = st_param(&s, !strcmp(o->outcome, "created") && o->modstamp[0] ? o->modstamp : NULL);
    int p_conn = st_param(&s, m->connection_id);
    if (o->local_id[0]) {
        int p_id = st_param(&s, o->local_id);
        st_cat(&s, "UPDATE %s SET ", o->table);
        for (int i = 0; i < ncols; i++)
            st_cat(&s, "%s = %s, ", cols[i], vals[i]);
        st_cat(&s,
               "attributes = attributes || $%d::jsonb, salesforce_id = $%d, sf_modstamp = COALESCE($%d::timestamptz, "
               "sf_modstamp), connection_id = $%d::uuid, deleted_at = NULL, updated_at = now() WHERE id = $%d::uuid "
               "AND org_id = $%d",
               p_attr, p_sf, p_ms, p_conn, p_id, p_org);
    } else {
        int p_id = st_param(&s, o->platform_id);
        st_cat(&s, "INSERT INTO %s (id, org_id, connection_id, salesforce_id, attributes, sf_modstamp", o->table);
        for (int i = 0; i < ncols; i++)
            st_cat(&s, ", %s", cols[i]);
        st_cat(&s, ") VALUES ($%d::uuid, $%d, $%d::uuid, $%d, $%d::jsonb, $%d::timestamptz", p_id, p_org, p_conn, p_sf,
               p_attr, p_ms);
        for (int i = 0; i < ncols; i++)
            st_cat(&s, ", %s", vals[i]);
        st_cat(&s, ") ON CONFLICT (org_id, salesforce_id) DO UPDATE SET attributes = %s.attributes || "
                   "EXCLUDED.attributes, deleted_at = NULL, updated_at = now()",
               o->table);
        for (int i = 0; i < ncols; i++)
            st_cat(&s, ", %s = EXCLUDED.%s", cols[i], cols[i]);
    }
    if (s.len >= sizeof s.sql) {
        err_set(e, ERR_INTERNAL, false, "cannot mirror %s \"%s\": too many fields", o->object, o->ref);
        goto out;
    }
    struct pg_res *r = pg_exec(pg, s.sql, s.np, s.p, e);
    if (!r)
        goto out;
    /* the local row may already exist under another id (synced before): report that id */
    pg_res_free(&r);
    ok = true;
out:
    for (int i = 0; i < ncols; i++)
        free(vals[i]);
    json_object_put(attrs);
    st_free(&s);
    return ok;
}

/* After an upsert the platform id is the id of the local row (which may be a synced row). */
static bool local_id_of(struct pg *pg, struct wmsg *m, struct wop *o, struct err *e)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT id::text FROM %s WHERE org_id = $1 AND salesforce_id = $2", o->table);
    const char *p[2] = {m->org_id, o->sf_id};
    struct pg_res *r = pg_exec(pg, sql, 2, p, e);
    if (!r)
        return false;
    if (pg_res_rows(r) == 1)
        snprintf(o->platform_id, sizeof o->platform_id, "%s", pg_res_get(r, 0, 0));
    pg_res_free(&r);
    return true;
}

/* ---- outcomes ------------------------------------------------------------------------- */

/* The local row of a written record, best effort: Salesforce has accepted the write, so a row that
 * cannot be mirrored (a value that does not fit its core column, a salesforce_id another local row
 * already holds, ...) is logged and skipped — inside a savepoint, so the intents, audit rows and
 * record.written of this transaction still commit and say what Salesforce did; the next sync brings
 * the record in. Only an error that spoils the transaction itself (a lost connection: retriable) is
 * returned. */
static bool mirror(struct pg *pg, struct wmsg *m, struct wop *o, struct err *e)
{
    struct err me = ERR_INIT;
    if (!pg_run(pg, "SAVEPOINT sfbridge_mirror", 0, NULL, e))
        return false;
    if (local_row(pg, m, o, &me) && local_id_of(pg, m, o, &me))
        return pg_run(pg, "RELEASE SAVEPOINT sfbridge_mirror", 0, NULL, e);
    if (me.retriable) {
        *e = me;
        return false;
    }
    log_warn("could not mirror %s \"%s\" (Salesforce id %s) of request %s in %s: %s; the write stands, the next "
             "sync brings the record in",
             o->object, o->ref, o->sf_id[0] ? o->sf_id : "-", m->request_id, o->table, me.msg);
    return pg_run(pg, "ROLLBACK TO SAVEPOINT sfbridge_mirror", 0, NULL, e) &&
           pg_run(pg, "RELEASE SAVEPOINT sfbridge_mirror", 0, NULL, e);
}



static struct json_object *audit_fields(const struct wmsg *m, const struct wop *o)
{
    struct json_object *f = NULL;
    if (!o->body)
        return json_object_new_object();
    json_object_deep_copy(o->body, &f, NULL);
    if (o->has_company && o->f_company)
        json_add_str(f, o->f_company, link_sf(m, &o->company));
    if (o->has_deal && o->f_deal)
        json_add_str(f, o->f_deal, link_sf(m, &o->deal));
    if (o->ncontacts) {
        struct json_object *arr = json_object_new_array();
        for (int i = 0; i < o->ncontacts; i++) {
            const char *v = link_sf(m, &o->contacts[i]);
            json_object_array_add(arr, v ? json_object_new_string(v) : NULL);
        }
        json_object_object_add(f, "InteractionAttendee.ContactId", arr);
    }
    if (o->kind == K_EXTID && m->ext_field)
        json_add_str(f, m->ext_field, o->platform_id);
    return f;
}

static int cmp_level(const void *a, const void *b)
{
    const struct wop *x = *(const struct wop *const *)a, *y = *(const struct wop *const *)b;
    return x->level != y->level ? x->level - y->level : x->idx - y->idx;
}

bool write_record_outcomes(struct pg *pg, struct wmsg *m, bool (*selected)(const struct wop *), struct err *e)
{
    struct pg_buf a[6] = {{0}};
    struct audit_writer *aw = NULL;
    struct wop **todo = calloc((size_t)m->nops + 1, sizeof *todo);
    int n = 0;
    bool ok = false;
    if (!todo)
        return err_set(e, ERR_NOMEM, true, "out of memory");
    for (int i = 0; i < m->nops; i++)
        if (m->ops[i].done && !m->ops[i].recorded && (!selected || selected(&m->ops[i])))
            todo[n++] = &m->ops[i];
    if (!n) {
        ok = true;
        goto out;
    }
    qsort(todo, (size_t)n, sizeof *todo, cmp_level);
    for (int i = 0; i < n; i++) {
        struct wop *o = todo[i];
        bool good = strcmp(o->outcome, "failed") && strcmp(o->outcome, "refused");
        if (good && !mirror(pg, m, o, e))
            goto out;
    }
    for (int i = 0; i < n; i++) {
        struct wop *o = todo[i];
        bool good = strcmp(o->outcome, "failed") && strcmp(o->outcome, "refused");
        arr_add(&a[0], o->ref);
        arr_add(&a[1], good ? "succeeded" : o->outcome);
        arr_add(&a[2], o->sf_id[0] ? o->sf_id : NULL);
        arr_add(&a[3], o->outcome);
        arr_add(&a[4], o->err_code[0] ? o->err_code : NULL);
        arr_add(&a[5], o->err_code[0] ? o->err_msg : NULL);
    }
    const char *p[8] = {m->request_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    for (int k = 0; k < 6; k++)
        p[1 + k] = arr_end(&a[k]);
    if (!pg_run(pg,
                "UPDATE write_intents w SET state = t.st, salesforce_id = t.sf, outcome = t.oc, error_code = t.ec, "
                "error_message = t.em, updated_at = now() FROM unnest($2::text[], $3::text[], $4::text[], "
                "$5::text[], $6::text[], $7::text[]) AS t(ref, st, sf, oc, ec, em) "
                "WHERE w.request_id = $1::uuid AND w.ref = t.ref",
                7, p, e))
        goto out;
    if (!audit_writer_open(pg, m->org_id, &aw, e))
        goto out;
    for (int i = 0; i < n; i++) {
        struct wop *o = todo[i];
        struct json_object *f = audit_fields(m, o);
        struct audit_entry ae = {m->connection_id,
                                 m->request_id,
                                 m->actor,
                                 m->source,
                                 o->action,
                                 o->om ? o->om->sf_object : NULL,
                                 o->object,
                                 o->ref,
                                 o->sf_id[0] ? o->sf_id : NULL,
                                 f,
                                 o->outcome,
                                 o->err_code[0] ? o->err_code : NULL,
                                 o->err_code[0] ? o->err_msg : NULL};
        bool added = audit_writer_add(aw, &ae, e);
        json_object_put(f);
        if (!added)
            goto out;
    }
    if (!audit_writer_flush(aw, e))
        goto out;
    for (int i = 0; i < n; i++)
        todo[i]->recorded = true;
    ok = true;
out:
    audit_writer_free(&aw);
    for (int k = 0; k < 6; k++)
        pg_buf_free(&a[k]);
    free(todo);
    return ok;
}

/* ---- record.written ------------------------------------------------------------------- */

struct json_object *write_event(const struct job *job, struct wmsg *m)
{
    struct json_object *ev = worker_event_new(job), *results = json_object_new_array();
    int good = 0, bad = 0;
    const struct wop *first_bad = NULL;
    for (int i = 0; i < m->nops; i++) {
        const struct wop *o = &m->ops[i];
        bool ok = o->outcome && strcmp(o->outcome, "failed") && strcmp(o->outcome, "refused");
        struct json_object *r = json_object_new_object();
        json_add_str(r, "ref", o->ref);
        json_add_str(r, "object", o->object);
        json_add_str(r, "salesforce_id", o->sf_id[0] ? o->sf_id : NULL);
        json_add_str(r, "platform_id", ok && o->platform_id[0] ? o->platform_id : NULL);
        json_add_str(r, "outcome", o->outcome ? o->outcome : "failed");
        if (!ok) {
            struct json_object *er = json_object_new_object();
            json_add_str(er, "code", o->err_code[0] ? o->err_code : "UNKNOWN_ERROR");
            json_add_str(er, "message", o->err_msg);
            if (o->err_fields)
                json_object_object_add(er, "fields", json_object_get(o->err_fields));
            json_object_object_add(r, "error", er);
            bad++;
            /* the root cause, not the operations rolled back or halted because of it */
            if (!first_bad || (!strcmp(first_bad->err_code, "PROCESSING_HALTED") ||
                               !strcmp(first_bad->err_code, "ALL_OR_NONE_OPERATION_ROLLED_BACK")))
                if (!first_bad || (strcmp(o->err_code, "PROCESSING_HALTED") &&
                                   strcmp(o->err_code, "ALL_OR_NONE_OPERATION_ROLLED_BACK")))
                    first_bad = o;
        } else {
            good++;
        }
        json_object_array_add(results, r);
    }
    json_add_str(ev, "status", bad == 0 ? "succeeded" : good == 0 ? "failed" : "partial");
    json_object_object_add(ev, "results", results);
    json_add_int(ev, "api_calls", m->api_calls);
    if (first_bad) {
        struct json_object *er = json_object_new_object();
        char msg[1400];
        snprintf(msg, sizeof msg, "operation \"%s\" (%s) failed: %s", first_bad->ref, first_bad->object,
                 first_bad->err_msg);
        json_add_str(er, "code", first_bad->err_code[0] ? first_bad->err_code : "UNKNOWN_ERROR");
        json_add_str(er, "message", msg);
        json_object_object_add(ev, "error", er);
    }
    return ev;
}
