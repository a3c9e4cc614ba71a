/*
 * rest: the REST API under /services/data/vNN.N/ — auth and API usage,
 * query/queryAll with cursors, sObject rows, upsert, collections, composite,
 * describe, limits, getUpdated/getDeleted (salesforce-api.md sections 2-6).
 *
 * Threads: handlers take the store lock themselves unless called from a
 * composite request, which holds the write lock for its whole transaction
 * (ctx.locked). Cursors are refcounted under sim->mu.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "simint.h"

struct ctx {
    struct sim *sim;
    struct sim_req *q;
    struct sim_resp *r;
    bool locked; /* store write lock held by the caller */
};

static void rdlock(struct ctx *c)
{
    if (!c->locked)
        pthread_rwlock_rdlock(&c->sim->store.lock);
}
static void wrlock(struct ctx *c)
{
    if (!c->locked)
        pthread_rwlock_wrlock(&c->sim->store.lock);
}
static void unlock(struct ctx *c)
{
    if (!c->locked)
        pthread_rwlock_unlock(&c->sim->store.lock);
}

static void not_found(struct sim_resp *r)
{
    sim_resp_error(r, 404, "NOT_FOUND", "The requested resource does not exist");
}

static void method_not_allowed(struct sim_resp *r, const char *method, const char *allowed)
{
    sim_resp_error(r, 405, "METHOD_NOT_ALLOWED",
                   "HTTP Method '%s' not allowed. Allowed are %s", method, allowed);
}

/* ---------------------------------------------------------------- cursors */
void sim_cursor_release(struct sim *sim, struct sim_cursor *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&sim->mu);
    bool last = --c->refs == 0;
    pthread_mutex_unlock(&sim->mu);
    if (last) {
        sim_soql_free(c->q);
        free(c->idx);
        free(c);
    }
}

void sim_cursors_free(struct sim *sim)
{
    for (size_t i = 0; i < sizeof sim->cursors / sizeof sim->cursors[0]; i++) {
        struct sim_cursor *c = sim->cursors[i];
        sim->cursors[i] = NULL;
        sim_cursor_release(sim, c);
    }
}

/* stores c (taking ownership); the caller keeps one reference to release */
static void cursor_put(struct sim *sim, struct sim_cursor *c)
{
    struct sim_cursor *evict = NULL;
    pthread_mutex_lock(&sim->mu);
    size_t n = sizeof sim->cursors / sizeof sim->cursors[0], slot = 0;
    for (size_t i = 0; i < n; i++) {
        if (!sim->cursors[i]) {
            slot = i;
            break;
        }
        if (sim->cursors[i]->last_used < sim->cursors[slot]->last_used)
            slot = i;
    }
    evict = sim->cursors[slot];
    sim->cursor_seq++;
    char l15[16];
    snprintf(l15, sizeof l15, "0r8Hs0%09llu", (unsigned long long)(sim->cursor_seq % 1000000000ULL));
    char ck[3];
    sim_id_checksum(l15, ck);
    snprintf(c->loc, sizeof c->loc, "%s%.3s", l15, ck);
    c->refs = 2;
    sim->cursors[slot] = c;
    pthread_mutex_unlock(&sim->mu);
    sim_cursor_release(sim, evict);
}

static struct sim_cursor *cursor_get(struct sim *sim, const char *loc, size_t len)
{
    struct sim_cursor *c = NULL;
    pthread_mutex_lock(&sim->mu);
    for (size_t i = 0; i < sizeof sim->cursors / sizeof sim->cursors[0]; i++) {
        struct sim_cursor *k = sim->cursors[i];
        if (k && strlen(k->loc) == len && strncmp(k->loc, loc, len) == 0) {
            c = k;
            c->refs++;
            c->last_used = sim_now(sim);
            break;
        }
    }
    pthread_mutex_unlock(&sim->mu);
    return c;
}

/* ---------------------------------------------------------------- query */
static int batch_size(struct ctx *c)
{
    const char *h = sim_req_header(c->q, "Sforce-Query-Options");
    int bs = 2000;
    const char *p = h ? strstr(h, "batchSize=") : NULL;
    if (p) {
        long v = strtol(p + 10, NULL, 10);
        if (v > 0)
            bs = v < 200 ? 200 : v > 2000 ? 2000 : (int)v;
    }
    return bs;
}

static void page_out(struct ctx *c, const struct sim_query *qq, const uint32_t *idx,
                     size_t total, size_t off, int bs, const char *loc)
{
    struct sim_buf b = {0};
    size_t end = off + (size_t)bs < total ? off + (size_t)bs : total;
    bool done = end >= total;
    sim_buf_printf(&b, "{\"totalSize\":%zu,\"done\":%s,", total, done ? "true" : "false");
    if (!done)
        sim_buf_printf(&b, "\"nextRecordsUrl\":\"/services/data/v%s/query/%s-%zu\",",
                       c->q->ver, loc, end);
    sim_buf_puts(&b, "\"records\":[");
    for (size_t i = off; i < end; i++) {
        if (i > off)
            sim_buf_putc(&b, ',');
        sim_soql_rec_json(&c->sim->store, qq, idx[i], c->q->ver, &b);
    }
    sim_buf_puts(&b, "]}");
    sim_resp_take(c->r, 200, &b);
}

static bool query_timeout(struct sim *sim, size_t n)
{
    pthread_mutex_lock(&sim->mu);
    int64_t lim = sim->f.query_timeout_above;
    pthread_mutex_unlock(&sim->mu);
    return lim > 0 && (int64_t)n > lim;
}

static void do_query(struct ctx *c, const char *soql, bool all)
{
    struct sim_err e = {0};
    c->r->endpoint = all ? "queryAll" : "query";
    if (!soql) {
        sim_resp_error(c->r, 400, "MALFORMED_QUERY", "A query string has to be specified");
        return;
    }
    struct sim_query *qq = sim_soql_compile(soql, &e);
    if (!qq) {
        sim_resp_err(c->r, &e);
        return;
    }
    uint32_t *idx = NULL;
    size_t n = 0;
    rdlock(c);
    sim_soql_run_locked(&c->sim->store, qq, all, &idx, &n, &e);
    if (query_timeout(c->sim, n)) {
        unlock(c);
        sim_resp_error(c->r, 400, "QUERY_TIMEOUT",
                       "Your query request was running for too long.");
        goto out;
    }
    if (sim_soql_is_count(qq)) {
        unlock(c);
        struct sim_buf b = {0};
        sim_buf_printf(&b, "{\"totalSize\":%zu,\"done\":true,\"records\":[]}", n);
        sim_resp_take(c->r, 200, &b);
        goto out;
    }
    int bs = batch_size(c);
    if (n <= (size_t)bs) {
        page_out(c, qq, idx, n, 0, bs, "");
        unlock(c);
        goto out;
    }
    struct sim_cursor *cur = calloc(1, sizeof *cur);
    if (!cur)
        abort();
    cur->q = qq;
    cur->idx = idx;
    cur->n = n;
    cur->batch = bs;
    cur->last_used = sim_now(c->sim);
    qq = NULL;
    idx = NULL;
    cursor_put(c->sim, cur);
    page_out(c, cur->q, cur->idx, cur->n, 0, bs, cur->loc);
    unlock(c);
    sim_cursor_release(c->sim, cur);
out:
    free(idx);
    sim_soql_free(qq);
}

static void query_more(struct ctx *c, const char *tail)
{
    c->r->endpoint = "query_more";
    const char *dash = strrchr(tail, '-');
    if (!dash) {
        sim_resp_error(c->r, 400, "INVALID_QUERY_LOCATOR", "invalid query locator");
        return;
    }
    struct sim_cursor *cur = cursor_get(c->sim, tail, (size_t)(dash - tail));
    char *end;
    long off = strtol(dash + 1, &end, 10);
    if (!cur || *end || off < 0 || (size_t)off > cur->n) {
        sim_cursor_release(c->sim, cur);
        sim_resp_error(c->r, 400, "INVALID_QUERY_LOCATOR", "invalid query locator");
        return;
    }
    int bs = sim_req_header(c->q, "Sforce-Query-Options") ? batch_size(c) : cur->batch;
    rdlock(c);
    page_out(c, cur->q, cur->idx, cur->n, (size_t)off, bs, cur->loc);
    unlock(c);
    sim_cursor_release(c->sim, cur);
}

/* ---------------------------------------------------------------- rows */
static void rec_json_fields(struct sim *sim, int obj, const struct sim_rec *rec,
                            const char *ver, const int *fl, int nf, struct sim_buf *b)
{
    const struct sim_object *o = &sim_objects[obj];
    sim_buf_printf(b, "{\"attributes\":{\"type\":\"%s\",\"url\":\"/services/data/v%s/sobjects/%s/%s\"}",
                   o->name, ver, o->name, rec->id);
    for (int i = 0; i < (fl ? nf : o->nfields); i++) {
        int f = fl ? fl[i] : i;
        sim_buf_putc(b, ',');
        sim_buf_json_str(b, o->fields[f].name);
        sim_buf_putc(b, ':');
        sim_val_json(&sim->store, obj, rec, f, b);
    }
    sim_buf_putc(b, '}');
}

static void write_delay(struct sim *sim)
{
    pthread_mutex_lock(&sim->mu);
    int ms = sim->f.delay_after_write_ms;
    pthread_mutex_unlock(&sim->mu);
    if (ms > 0) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void ok_body(struct sim_resp *r, int status, const char *id, int created)
{
    struct sim_buf b = {0};
    sim_buf_printf(&b, "{\"id\":\"%s\",\"success\":true,\"errors\":[]", id);
    if (created >= 0)
        sim_buf_printf(&b, ",\"created\":%s", created ? "true" : "false");
    sim_buf_putc(&b, '}');
    sim_resp_take(r, status, &b);
}

static json_object *parse_body(struct ctx *c)
{
    json_object *o = json_tokener_parse(c->q->body ? c->q->body : "");
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        sim_resp_error(c->r, 400, "JSON_PARSER_ERROR",
                       "Unexpected character: was expecting a JSON object at [line:1, "
                       "column:1]");
        return NULL;
    }
    return o;
}

static void sobject_create(struct ctx *c, int obj)
{
    c->r->endpoint = "sobject_create";
    json_object *in = parse_body(c);
    if (!in)
        return;
    struct sim_err e = {0};
    uint32_t idx;
    char id[19] = "";
    wrlock(c);
    bool ok = sim_store_write_locked(c->sim, obj, &idx, in, SIM_W_INSERT, NULL, &e);
    if (ok)
        memcpy(id, sim_rec_at(&c->sim->store, obj, idx)->id, sizeof id);
    unlock(c);
    json_object_put(in);
    if (!ok) {
        sim_resp_err(c->r, &e);
        return;
    }
    ok_body(c->r, 201, id, -1);
    sim_resp_hdr(c->r, "Location", "/services/data/v%s/sobjects/%s/%s", c->q->ver,
                 sim_objects[obj].name, id);
}

static bool parse_field_list(struct ctx *c, int obj, const char *list, int *fl, int *nf)
{
    const struct sim_object *o = &sim_objects[obj];
    *nf = 0;
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *s = p;
        while (*p && *p != ',' && *p != ' ')
            p++;
        int f = sim_field_find_n(o, s, (size_t)(p - s));
        if (f < 0) {
            sim_resp_error(c->r, 400, "INVALID_FIELD",
                           "\nselect %.*s from %s\n^\nERROR at Row:1:Column:8\nNo such "
                           "column '%.*s' on entity '%s'. If you are attempting to use a "
                           "custom field, be sure to append the '__c' after the custom "
                           "field name. Please reference your WSDL or the describe call "
                           "for the appropriate names.",
                           (int)(p - s), s, o->name, (int)(p - s), s, o->name);
            return false;
        }
        if (*nf < 64)
            fl[(*nf)++] = f;
    }
    return true;
}

static void sobject_row(struct ctx *c, int obj, const char *idtxt)
{
    struct sim_store *s = &c->sim->store;
    const char *m = c->q->method;
    int fobj;
    uint32_t idx;
    struct sim_err e = {0};
    if (strcmp(m, "GET") == 0) {
        c->r->endpoint = "sobject_retrieve";
        int fl[64], nf = 0;
        const char *fields = sim_req_arg(c->q, "fields");
        if (fields && !parse_field_list(c, obj, fields, fl, &nf))
            return;
        rdlock(c);
        struct sim_rec *rec = sim_store_find(s, idtxt, &fobj, &idx);
        if (!rec || fobj != obj || sim_rec_deleted(s, obj, rec)) {
            unlock(c);
            not_found(c->r);
            return;
        }
        struct sim_buf b = {0};
        rec_json_fields(c->sim, obj, rec, c->q->ver, fields ? fl : NULL, nf, &b);
        unlock(c);
        sim_resp_take(c->r, 200, &b);
        return;
    }
    bool patch = strcmp(m, "PATCH") == 0, del = strcmp(m, "DELETE") == 0;
    if (!patch && !del) {
        method_not_allowed(c->r, m, "GET,PATCH,DELETE");
        return;
    }
    c->r->endpoint = patch ? "sobject_update" : "sobject_delete";
    json_object *in = NULL;
    if (patch && !(in = parse_body(c)))
        return;
    wrlock(c);
    struct sim_rec *rec = sim_store_find(s, idtxt, &fobj, &idx);
    bool ok = false;
    if (!rec || fobj != obj) {
        sim_err_set(&e, 404, "NOT_FOUND", NULL, "The requested resource does not exist");
    } else if (patch) {
        ok = sim_store_write_locked(c->sim, obj, &idx, in, SIM_W_UPDATE, NULL, &e);
    } else {
        if (sim_fault_lock_row(c->sim))
            sim_err_set(&e, 400, "UNABLE_TO_LOCK_ROW", NULL,
                        "unable to obtain exclusive access to this record or 1 records: %s",
                        rec->id);
        else
            ok = sim_store_delete_locked(c->sim, obj, idx, false, &e);
    }
    unlock(c);
    json_object_put(in);
    if (!ok) {
        sim_resp_err(c->r, &e);
        return;
    }
    c->r->status = 204;
}

static double ver_num(const char *ver) { return strtod(ver, NULL); }

/* upsert of one record by ext-id value; on success fills id/created and
 * returns the HTTP status (201/200), else sets e (300 for several matches:
 * matches listed in *multi) */
static int upsert_one(struct sim *sim, int obj, int f, const char *value,
                      json_object *body, bool update_only, char id[19], bool *created,
                      struct sim_err *e, struct sim_buf *multi, const char *ver)
{
    struct sim_store *s = &sim->store;
    const struct sim_object *o = &sim_objects[obj];
    uint32_t hits[8];
    size_t n;
    if (f == o->f_id) {
        uint32_t idx;
        int fobj;
        n = 0;
        if (sim_store_find(s, value, &fobj, &idx) && fobj == obj) {
            hits[0] = idx;
            n = 1;
        }
    } else {
        n = sim_store_lookup_locked(s, obj, f, value, hits, 8);
    }
    if (n > 1) {
        sim_err_set(e, 300, "MULTIPLE_CHOICES", NULL, "multiple records match %s = %s",
                    o->fields[f].name, value);
        if (multi) {
            sim_buf_putc(multi, '[');
            for (size_t i = 0; i < n && i < 8; i++)
                sim_buf_printf(multi, "%s\"/services/data/v%s/sobjects/%s/%s\"", i ? "," : "",
                               ver, o->name, sim_rec_at(s, obj, hits[i])->id);
            sim_buf_putc(multi, ']');
        }
        return 300;
    }
    if (n == 1) {
        uint32_t idx = hits[0];
        if (!sim_store_write_locked(sim, obj, &idx, body, SIM_W_UPDATE, o->fields[f].name, e))
            return e->status;
        memcpy(id, sim_rec_at(s, obj, idx)->id, 19);
        *created = false;
        return 200;
    }
    if (update_only || f == o->f_id) {
        sim_err_set(e, 404, "NOT_FOUND", NULL, "The requested resource does not exist");
        return 404;
    }
    json_object *copy = NULL;
    json_object_deep_copy(body, &copy, NULL);
    json_object_object_del(copy, o->fields[f].name);
    /* drop any other casing of the ext-id key too */
    json_object_object_foreach(body, k, v)
    {
        (void)v;
        if (sim_strieq(k, o->fields[f].name))
            json_object_object_del(copy, k);
    }
    json_object_object_add(copy, o->fields[f].name, json_object_new_string(value));
    uint32_t idx;
    bool ok = sim_store_write_locked(sim, obj, &idx, copy, SIM_W_INSERT, NULL, e);
    json_object_put(copy);
    if (!ok)
        return e->status;
    memcpy(id, sim_rec_at(s, obj, idx)->id, 19);
    *created = true;
    return 201;
}

static void sobject_upsert(struct ctx *c, int obj, const char *field, const char *value)
{
    const struct sim_object *o = &sim_objects[obj];
    int f = sim_field_find(o, field);
    c->r->endpoint = "sobject_upsert";
    if (f < 0 || (!(o->fields[f].flags & SIM_F_EXTID) && f != o->f_id)) {
        sim_resp_error(c->r, 404, "NOT_FOUND",
                       "Provided external ID field does not exist or is not accessible: %s",
                       field);
        return;
    }
    if (strcmp(c->q->method, "GET") == 0) {
        c->r->endpoint = "sobject_retrieve";
        rdlock(c);
        uint32_t hits[2];
        size_t n = sim_store_lookup_locked(&c->sim->store, obj, f, value, hits, 2);
        if (n != 1) {
            unlock(c);
            if (n > 1)
                sim_resp_error(c->r, 300, "MULTIPLE_CHOICES", "multiple records match");
            else
                not_found(c->r);
            return;
        }
        struct sim_buf b = {0};
        rec_json_fields(c->sim, obj, sim_rec_at(&c->sim->store, obj, hits[0]), c->q->ver,
                        NULL, 0, &b);
        unlock(c);
        sim_resp_take(c->r, 200, &b);
        return;
    }
    if (strcmp(c->q->method, "PATCH") != 0 && strcmp(c->q->method, "POST") != 0) {
        method_not_allowed(c->r, c->q->method, "GET,PATCH,POST");
        return;
    }
    json_object *in = parse_body(c);
    if (!in)
        return;
    json_object *jv;
    if (json_object_object_get_ex(in, o->fields[f].name, &jv) &&
        strcmp(json_object_get_string(jv), value) != 0) {
        json_object_put(in);
        sim_resp_error(c->r, 400, "INVALID_FIELD",
                       "The value of the external ID field in the request body does not "
                       "match the value in the URL");
        return;
    }
    const char *uo = sim_req_arg(c->q, "updateOnly");
    struct sim_err e = {0};
    struct sim_buf multi = {0};
    char id[19] = "";
    bool created = false;
    wrlock(c);
    int st = upsert_one(c->sim, obj, f, value, in, uo && sim_strieq(uo, "true"), id,
                        &created, &e, &multi, c->q->ver);
    unlock(c);
    json_object_put(in);
    if (st == 300) {
        sim_resp_take(c->r, 300, &multi);
        return;
    }
    sim_buf_free(&multi);
    if (st >= 400) {
        sim_resp_err(c->r, &e);
        return;
    }
    if (st == 200 && ver_num(c->q->ver) < 46.0) {
        c->r->status = 204;
        return;
    }
    ok_body(c->r, st, id, ver_num(c->q->ver) >= 46.0 ? created : -1);
    if (st == 201)
        sim_resp_hdr(c->r, "Location", "/services/data/v%s/sobjects/%s/%s", c->q->ver,
                     o->name, id);
}

/* ---------------------------------------------------------------- describe */
static const char *soap_type(enum sim_ftype t)
{
    switch (t) {
    case SIM_T_ID:
    case SIM_T_REFERENCE:
        return "tns:ID";
    case SIM_T_CURRENCY:
    case SIM_T_DOUBLE:
    case SIM_T_PERCENT:
        return "xsd:double";
    case SIM_T_INT:
        return "xsd:int";
    case SIM_T_BOOLEAN:
        return "xsd:boolean";
    case SIM_T_DATE:
        return "xsd:date";
    case SIM_T_DATETIME:
        return "xsd:dateTime";
    default:
        return "xsd:string";
    }
}

static void jbool(struct sim_buf *b, const char *k, bool v)
{
    sim_buf_printf(b, "\"%s\":%s,", k, v ? "true" : "false");
}

static void global_entry(struct sim_buf *b, int obj, const char *ver)
{
    const struct sim_object *o = &sim_objects[obj];
    sim_buf_printf(b,
                   "{\"activateable\":false,\"createable\":%s,\"custom\":false,"
                   "\"customSetting\":false,\"deepCloneable\":false,\"deletable\":true,"
                   "\"deprecatedAndHidden\":false,\"feedEnabled\":true,\"hasSubtypes\":false,"
                   "\"isInterface\":false,\"isSubtype\":false,\"keyPrefix\":\"%s\","
                   "\"label\":\"%s\",\"labelPlural\":\"%s\",\"layoutable\":true,"
                   "\"mergeable\":%s,\"mruEnabled\":true,\"name\":\"%s\",\"queryable\":true,"
                   "\"replicateable\":true,\"retrieveable\":true,\"searchable\":true,"
                   "\"triggerable\":true,\"undeletable\":true,\"updateable\":true,"
                   "\"urls\":{\"compactLayouts\":\"/services/data/v%s/sobjects/%s/describe/compactLayouts\","
                   "\"rowTemplate\":\"/services/data/v%s/sobjects/%s/{ID}\","
                   "\"describe\":\"/services/data/v%s/sobjects/%s/describe\","
                   "\"sobject\":\"/services/data/v%s/sobjects/%s\"}}",
                   obj == SIM_USER ? "false" : "true", o->prefix, o->label, o->plural,
                   obj == SIM_ACCOUNT || obj == SIM_CONTACT ? "true" : "false", o->name, ver,
                   o->name, ver, o->name, ver, o->name, ver, o->name);
}

static void field_json(struct sim_buf *b, const struct sim_object *o, int f)
{
    const struct sim_field *fd = &o->fields[f];
    bool text = sim_is_text(fd->type) && fd->type != SIM_T_ID && fd->type != SIM_T_REFERENCE;
    bool longtext = fd->type == SIM_T_TEXTAREA && fd->length > 255;
    bool num = sim_sclass(fd->type) == SIM_S_NUM;
    bool nillable = (fd->flags & SIM_F_NILLABLE) && !(fd->flags & SIM_F_REQUIRED) &&
                    fd->type != SIM_T_BOOLEAN;
    int length = text || fd->type == SIM_T_ID || fd->type == SIM_T_REFERENCE ? fd->length : 0;
    sim_buf_putc(b, '{');
    jbool(b, "aggregatable", !longtext);
    jbool(b, "aiPredictionField", false);
    jbool(b, "autoNumber", false);
    sim_buf_printf(b, "\"byteLength\":%d,", length * 3);
    jbool(b, "calculated", fd->flags & SIM_F_CALC);
    sim_buf_puts(b, "\"calculatedFormula\":");
    sim_buf_json_str(b, fd->formula);
    sim_buf_putc(b, ',');
    jbool(b, "cascadeDelete", false);
    jbool(b, "caseSensitive", false);
    sim_buf_puts(b, "\"compoundFieldName\":null,\"controllerName\":null,");
    jbool(b, "createable", fd->flags & SIM_F_CREATE);
    jbool(b, "custom", fd->flags & SIM_F_CUSTOM);
    /* checkboxes have a default (User.IsActive true, the others false) */
    if (fd->type == SIM_T_BOOLEAN && (fd->flags & SIM_F_CREATE))
        sim_buf_printf(b, "\"defaultValue\":%s,\"defaultValueFormula\":null,",
                       strcmp(o->name, "User") == 0 ? "true" : "false");
    else
        sim_buf_puts(b, "\"defaultValue\":null,\"defaultValueFormula\":null,");
    jbool(b, "defaultedOnCreate", fd->flags & SIM_F_DEFAULTED);
    jbool(b, "dependentPicklist", false);
    jbool(b, "deprecatedAndHidden", false);
    sim_buf_printf(b, "\"digits\":%d,", fd->type == SIM_T_INT ? fd->length : 0);
    jbool(b, "displayLocationInDecimal", false);
    jbool(b, "encrypted", false);
    jbool(b, "externalId", fd->flags & SIM_F_EXTID);
    sim_buf_puts(b, "\"extraTypeInfo\":null,");
    jbool(b, "filterable", !longtext);
    sim_buf_puts(b, "\"filteredLookupInfo\":null,");
    jbool(b, "formulaTreatNullNumberAsZero", false);
    jbool(b, "groupable", !longtext && !num && fd->type != SIM_T_DATETIME);
    jbool(b, "highScaleNumber", false);
    jbool(b, "htmlFormatted", false);
    jbool(b, "idLookup", f == o->f_id || (fd->flags & SIM_F_EXTID) || f == o->f_name);
    sim_buf_puts(b, "\"inlineHelpText\":null,\"label\":");
    sim_buf_json_str(b, fd->label);
    sim_buf_printf(b, ",\"length\":%d,\"mask\":null,\"maskType\":null,\"name\":", length);
    sim_buf_json_str(b, fd->name);
    sim_buf_putc(b, ',');
    jbool(b, "nameField", f == o->f_name);
    jbool(b, "namePointing", fd->ref2 != NULL);
    jbool(b, "nillable", nillable);
    jbool(b, "permissionable", nillable && !(fd->flags & SIM_F_CALC));
    sim_buf_puts(b, "\"picklistValues\":[");
    for (int i = 0; fd->pick && fd->pick[i]; i++) {
        sim_buf_printf(b, "%s{\"active\":true,\"defaultValue\":false,\"label\":", i ? "," : "");
        sim_buf_json_str(b, fd->pick[i]);
        sim_buf_puts(b, ",\"validFor\":null,\"value\":");
        sim_buf_json_str(b, fd->pick[i]);
        sim_buf_putc(b, '}');
    }
    sim_buf_puts(b, "],");
    jbool(b, "polymorphicForeignKey", fd->ref2 != NULL);
    sim_buf_printf(b, "\"precision\":%d,", num ? fd->length : 0);
    jbool(b, "queryByDistance", false);
    sim_buf_puts(b, "\"referenceTargetField\":null,\"referenceTo\":[");
    if (fd->ref1) {
        sim_buf_json_str(b, fd->ref1);
        if (fd->ref2) {
            sim_buf_putc(b, ',');
            sim_buf_json_str(b, fd->ref2);
        }
    }
    sim_buf_puts(b, "],\"relationshipName\":");
    sim_buf_json_str(b, fd->rel);
    sim_buf_puts(b, ",\"relationshipOrder\":null,");
    jbool(b, "restrictedDelete", false);
    jbool(b, "restrictedPicklist", false);
    sim_buf_printf(b, "\"scale\":%d,", num ? fd->scale : 0);
    jbool(b, "searchPrefilterable", false);
    sim_buf_printf(b, "\"soapType\":\"%s\",", soap_type(fd->type));
    jbool(b, "sortable", !longtext);
    sim_buf_printf(b, "\"type\":\"%s\",", sim_type_name(fd->type));
    jbool(b, "unique", fd->flags & SIM_F_UNIQUE);
    jbool(b, "updateable", fd->flags & SIM_F_UPDATE);
    sim_buf_puts(b, "\"writeRequiresMasterRead\":false}");
}

static void describe(struct ctx *c, int obj)
{
    c->r->endpoint = "describe";
    const struct sim_object *o = &sim_objects[obj];
    const char *ver = c->q->ver;
    struct sim_buf b = {0};
    sim_buf_puts(&b, "{\"actionOverrides\":[],\"activateable\":false,\"childRelationships\":[");
    bool first = true;
    for (int k = 0; k < SIM_NOBJ; k++) {
        const struct sim_object *ch = &sim_objects[k];
        bool named = false;
        for (int f = 0; f < ch->nfields; f++) {
            const struct sim_field *fd = &ch->fields[f];
            if (fd->type != SIM_T_REFERENCE || f <= ch->f_sysmod ||
                !((fd->ref1 && strcmp(fd->ref1, o->name) == 0) ||
                  (fd->ref2 && strcmp(fd->ref2, o->name) == 0)))
                continue;
            char rel[64];
            if (k == obj)
                snprintf(rel, sizeof rel, "Child%s", ch->plural);
            else
                snprintf(rel, sizeof rel, "%s", ch->plural);
            /* "Interaction Attendees" -> "InteractionAttendees" */
            size_t w = 0;
            for (size_t i = 0; rel[i]; i++)
                if (rel[i] != ' ')
                    rel[w++] = rel[i];
            rel[w] = '\0';
            sim_buf_printf(&b,
                           "%s{\"cascadeDelete\":false,\"childSObject\":\"%s\","
                           "\"deprecatedAndHidden\":false,\"field\":\"%s\","
                           "\"junctionIdListNames\":[],\"junctionReferenceTo\":[],"
                           "\"relationshipName\":",
                           first ? "" : ",", ch->name, fd->name);
            sim_buf_json_str(&b, named || obj == SIM_USER ? NULL : rel);
            sim_buf_puts(&b, ",\"restrictedDelete\":false}");
            named = true;
            first = false;
        }
    }
    sim_buf_printf(&b, "],\"compactLayoutable\":true,\"createable\":%s,\"custom\":false,"
                       "\"customSetting\":false,\"deepCloneable\":false,\"defaultImplementation\":null,"
                       "\"deletable\":true,\"deprecatedAndHidden\":false,\"extendedBy\":null,"
                       "\"extendsInterfaces\":null,\"feedEnabled\":true,\"fields\":[",
                   obj == SIM_USER ? "false" : "true");
    for (int f = 0; f < o->nfields; f++) {
        if (f)
            sim_buf_putc(&b, ',');
        field_json(&b, o, f);
    }
    sim_buf_printf(&b,
                   "],\"hasSubtypes\":false,\"implementedBy\":null,\"implementsInterfaces\":null,"
                   "\"isInterface\":false,\"isSubtype\":false,\"keyPrefix\":\"%s\",\"label\":\"%s\","
                   "\"labelPlural\":\"%s\",\"layoutable\":true,\"listviewable\":null,"
                   "\"lookupLayoutable\":null,\"mergeable\":false,\"mruEnabled\":true,\"name\":\"%s\","
                   "\"namedLayoutInfos\":[],\"networkScopeFieldName\":null,\"queryable\":true,"
                   "\"recordTypeInfos\":[],\"replicateable\":true,\"retrieveable\":true,"
                   "\"searchLayoutable\":true,\"searchable\":true,\"sobjectDescribeOption\":\"FULL\","
                   "\"supportedScopes\":[{\"label\":\"All\",\"name\":\"everything\"}],"
                   "\"triggerable\":true,\"undeletable\":true,\"updateable\":true,\"urls\":{"
                   "\"uiEditTemplate\":null,\"sobject\":\"/services/data/v%s/sobjects/%s\","
                   "\"describe\":\"/services/data/v%s/sobjects/%s/describe\","
                   "\"rowTemplate\":\"/services/data/v%s/sobjects/%s/{ID}\"}}",
                   o->prefix, o->label, o->plural, o->name, ver, o->name, ver, o->name, ver,
                   o->name);
    sim_resp_take(c->r, 200, &b);
}

static void describe_global(struct ctx *c)
{
    c->r->endpoint = "describe";
    struct sim_buf b = {0};
    sim_buf_puts(&b, "{\"encoding\":\"UTF-8\",\"maxBatchSize\":200,\"sobjects\":[");
    for (int o = 0; o < SIM_NOBJ; o++) {
        if (o)
            sim_buf_putc(&b, ',');
        global_entry(&b, o, c->q->ver);
    }
    sim_buf_puts(&b, "]}");
    sim_resp_take(c->r, 200, &b);
}

static void sobject_basic(struct ctx *c, int obj)
{
    c->r->endpoint = "describe";
    struct sim_buf b = {0};
    sim_buf_puts(&b, "{\"objectDescribe\":");
    global_entry(&b, obj, c->q->ver);
    sim_buf_puts(&b, ",\"recentItems\":[]}");
    sim_resp_take(c->r, 200, &b);
}

/* ---------------------------------------------------------------- replication */
static bool repl_date(struct sim_req *q, const char *key, int64_t *out)
{
    const char *v = sim_req_arg(q, key);
    if (!v)
        return false;
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s", v);
    /* an unencoded '+' in the offset arrives as a space */
    for (char *p = tmp + (strlen(tmp) > 10 ? 10 : 0); *p; p++)
        if (*p == ' ')
            *p = '+';
    size_t used;
    if (!sim_parse_datetime(tmp, strlen(tmp), out, &used) || used != strlen(tmp))
        return false;
    *out -= ((*out % 60000) + 60000) % 60000; /* minute granularity */
    return true;
}

static void replication(struct ctx *c, int obj, bool deleted)
{
    c->r->endpoint = deleted ? "deleted" : "updated";
    int64_t start, end, now = sim_now(c->sim);
    if (!repl_date(c->q, "start", &start) || !repl_date(c->q, "end", &end)) {
        sim_resp_error(c->r, 400, "INVALID_REPLICATION_DATE",
                       "start and end must be valid dateTime values");
        return;
    }
    if (start >= end) {
        sim_resp_error(c->r, 400, "INVALID_REPLICATION_DATE",
                       "startDate must chronologically precede endDate by more than one "
                       "minute");
        return;
    }
    int64_t nowmin = now - now % 60000;
    if (!deleted && start < nowmin - 30LL * 86400000) {
        sim_resp_error(c->r, 400, "INVALID_REPLICATION_DATE",
                       "startDate cannot be more than 30 days ago");
        return;
    }
    int64_t covered = end < nowmin ? end : nowmin;
    struct sim_store *s = &c->sim->store;
    const struct sim_object *o = &sim_objects[obj];
    struct sim_buf b = {0};
    size_t n = 0;
    sim_buf_puts(&b, deleted ? "{\"deletedRecords\":[" : "{\"ids\":[");
    rdlock(c);
    for (uint32_t i = 0; i < s->t[obj].n; i++) {
        const struct sim_rec *r = sim_rec_at(s, obj, i);
        if (r->purged || sim_rec_deleted(s, obj, r) != deleted)
            continue;
        int64_t ts = r->v[o->f_sysmod].i;
        if (ts < start || ts >= end)
            continue;
        if (n)
            sim_buf_putc(&b, ',');
        if (deleted) {
            char dt[32];
            sim_fmt_datetime(ts, dt);
            sim_buf_printf(&b, "{\"deletedDate\":\"%s\",\"id\":\"%s\"}", dt, r->id);
        } else {
            sim_buf_printf(&b, "\"%s\"", r->id);
        }
        n++;
    }
    unlock(c);
    if (n > 600000) {
        sim_buf_free(&b);
        sim_resp_error(c->r, 400, "EXCEEDED_ID_LIMIT",
                       "too many ids: more than 600000 records in the time range");
        return;
    }
    char dt[32];
    sim_fmt_datetime(covered, dt);
    if (deleted) {
        char ea[32];
        sim_fmt_datetime(nowmin - 15LL * 86400000, ea);
        sim_buf_printf(&b, "],\"earliestDateAvailable\":\"%s\",\"latestDateCovered\":\"%s\"}",
                       ea, dt);
    } else {
        sim_buf_printf(&b, "],\"latestDateCovered\":\"%s\"}", dt);
    }
    sim_resp_take(c->r, 200, &b);
}

/* ---------------------------------------------------------------- collections */
static void rec_err_json(struct sim_buf *b, const struct sim_err *e)
{
    sim_buf_puts(b, "{\"success\":false,\"errors\":[{\"statusCode\":");
    sim_buf_json_str(b, e->code);
    sim_buf_puts(b, ",\"message\":");
    sim_buf_json_str(b, e->msg);
    sim_buf_puts(b, ",\"fields\":[");
    for (int i = 0; i < e->nfields; i++) {
        if (i)
            sim_buf_putc(b, ',');
        sim_buf_json_str(b, e->fields[i]);
    }
    sim_buf_puts(b, "]}]}");
}

static int rec_type(json_object *rec, const char *deflt)
{
    json_object *a, *t;
    if (json_object_object_get_ex(rec, "attributes", &a) &&
        json_object_object_get_ex(a, "type", &t))
        return sim_object_find(json_object_get_string(t));
    return deflt ? sim_object_find(deflt) : -1;
}

static void collections(struct ctx *c, const char *tail)
{
    c->r->endpoint = "collections";
    const char *m = c->q->method;
    struct sim *sim = c->sim;
    bool del = strcmp(m, "DELETE") == 0;
    json_object *in = NULL, *recs = NULL;
    char **ids = NULL;
    size_t n = 0;
    bool all_or_none = false;
    int up_obj = -1, up_field = -1;
    if (*tail) {
        /* PATCH /composite/sobjects/{Type}/{ExtIdField} */
        char type[64];
        const char *sl = strchr(tail + 1, '/');
        if (strcmp(m, "PATCH") != 0 || !sl) {
            not_found(c->r);
            return;
        }
        snprintf(type, sizeof type, "%.*s", (int)(sl - tail - 1 < 63 ? sl - tail - 1 : 63),
                 tail + 1);
        up_obj = sim_object_find(type);
        if (up_obj < 0) {
            not_found(c->r);
            return;
        }
        up_field = sim_field_find(&sim_objects[up_obj], sl + 1);
        if (up_field < 0 || !(sim_objects[up_obj].fields[up_field].flags & SIM_F_EXTID)) {
            sim_resp_error(c->r, 404, "NOT_FOUND",
                           "Provided external ID field does not exist or is not accessible: %s",
                           sl + 1);
            return;
        }
    } else if (strcmp(m, "POST") != 0 && strcmp(m, "PATCH") != 0 && !del) {
        method_not_allowed(c->r, m, "POST,PATCH,DELETE");
        return;
    }
    if (del) {
        const char *idl = sim_req_arg(c->q, "ids");
        const char *aon = sim_req_arg(c->q, "allOrNone");
        all_or_none = aon && sim_strieq(aon, "true");
        if (!idl || !*idl) {
            sim_resp_error(c->r, 400, "MISSING_ARGUMENT", "ids parameter is required");
            return;
        }
        char *copy = strdup(idl), *save = NULL;
        if (!copy)
            abort();
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            char **ni = realloc(ids, (n + 1) * sizeof *ni);
            if (!ni)
                abort();
            ids = ni;
            ids[n] = strdup(t);
            if (!ids[n])
                abort();
            n++;
        }
        free(copy);
    } else {
        if (!(in = parse_body(c)))
            return;
        json_object *a;
        if (json_object_object_get_ex(in, "allOrNone", &a))
            all_or_none = json_object_get_boolean(a);
        if (!json_object_object_get_ex(in, "records", &recs) ||
            !json_object_is_type(recs, json_type_array)) {
            json_object_put(in);
            sim_resp_error(c->r, 400, "JSON_PARSER_ERROR", "records must be an array");
            return;
        }
        n = json_object_array_length(recs);
    }
    if (n > 200) {
        sim_resp_error(c->r, 400, "EXCEEDED_ID_LIMIT",
                       "record limit reached. cannot submit more than 200 records into this "
                       "call");
        goto out;
    }
    struct sim_buf *res = calloc(n ? n : 1, sizeof *res);
    bool *failed = calloc(n ? n : 1, sizeof *failed);
    if (!res || !failed)
        abort();
    bool any_fail = false;
    struct sim_undo undo;
    wrlock(c);
    struct sim_undo *outer = sim->store.undo;
    if (all_or_none && !outer)
        sim_undo_begin(&sim->store, &undo);
    for (size_t i = 0; i < n; i++) {
        struct sim_err e = {0};
        char id[19] = "";
        int created = -1;
        bool ok = false;
        if (del) {
            int obj;
            uint32_t idx;
            if (!sim_store_find(&sim->store, ids[i], &obj, &idx))
                sim_err_set(&e, 404, "ENTITY_IS_DELETED", NULL, "entity is deleted");
            else if (sim_fault_lock_row(sim))
                sim_err_set(&e, 400, "UNABLE_TO_LOCK_ROW", NULL,
                            "unable to obtain exclusive access to this record");
            else
                ok = sim_store_delete_locked(sim, obj, idx, false, &e);
            snprintf(id, sizeof id, "%s", ids[i]);
        } else {
            json_object *rec = json_object_array_get_idx(recs, i);
            int obj = rec_type(rec, up_obj >= 0 ? sim_objects[up_obj].name : NULL);
            if (!json_object_is_type(rec, json_type_object) || obj < 0) {
                sim_err_set(&e, 400, "INVALID_TYPE", NULL,
                            "sObject type is required in the attributes of each record");
            } else if (up_obj >= 0) {
                json_object *kv;
                const char *fname = sim_objects[up_obj].fields[up_field].name;
                if (obj != up_obj || !json_object_object_get_ex(rec, fname, &kv) ||
                    json_object_is_type(kv, json_type_null)) {
                    sim_err_set(&e, 400, "MISSING_ARGUMENT", fname,
                                "%s not specified", fname);
                } else {
                    bool cr = false;
                    int st = upsert_one(sim, obj, up_field, json_object_get_string(kv), rec,
                                        false, id, &cr, &e, NULL, c->q->ver);
                    ok = st == 200 || st == 201;
                    created = cr;
                }
            } else if (strcmp(m, "POST") == 0) {
                json_object *idv;
                uint32_t idx;
                if (json_object_object_get_ex(rec, "id", &idv) ||
                    json_object_object_get_ex(rec, "Id", &idv)) {
                    sim_err_set(&e, 400, "INVALID_FIELD", NULL,
                                "cannot specify Id in an insert call");
                } else {
                    ok = sim_store_write_locked(sim, obj, &idx, rec, SIM_W_INSERT, NULL, &e);
                    if (ok)
                        memcpy(id, sim_rec_at(&sim->store, obj, idx)->id, sizeof id);
                }
            } else {
                json_object *idv;
                int fobj;
                uint32_t idx;
                const char *key = json_object_object_get_ex(rec, "id", &idv) ? "id" : "Id";
                if (!json_object_object_get_ex(rec, key, &idv)) {
                    sim_err_set(&e, 400, "MISSING_ARGUMENT", "Id", "Id not specified in an update call");
                } else if (!sim_store_find(&sim->store, json_object_get_string(idv), &fobj,
                                           &idx) ||
                           fobj != obj) {
                    sim_err_set(&e, 400, "INVALID_CROSS_REFERENCE_KEY", NULL,
                                "invalid cross reference id");
                } else {
                    ok = sim_store_write_locked(sim, obj, &idx, rec, SIM_W_UPDATE, key, &e);
                    if (ok)
                        memcpy(id, sim_rec_at(&sim->store, obj, idx)->id, sizeof id);
                }
            }
        }
        if (ok) {
            sim_buf_printf(&res[i], "{\"id\":\"%s\",\"success\":true,\"errors\":[]", id);
            if (created >= 0)
                sim_buf_printf(&res[i], ",\"created\":%s", created ? "true" : "false");
            sim_buf_putc(&res[i], '}');
        } else {
            rec_err_json(&res[i], &e);
            failed[i] = true;
            any_fail = true;
        }
    }
    if (all_or_none && !outer) {
        if (any_fail)
            sim_undo_rollback(&sim->store, &undo);
        else
            sim_undo_end(&sim->store, &undo);
    }
    unlock(c);
    struct sim_buf b = {0};
    sim_buf_putc(&b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            sim_buf_putc(&b, ',');
        if (all_or_none && any_fail && !failed[i]) {
            sim_buf_puts(&b, "{\"success\":false,\"errors\":[{\"statusCode\":"
                             "\"ALL_OR_NONE_OPERATION_ROLLED_BACK\",\"message\":\"Record rolled "
                             "back because not all records were valid and the request was using "
                             "AllOrNone header\",\"fields\":[]}]}");
        } else {
            sim_buf_put(&b, res[i].p, res[i].len);
        }
        sim_buf_free(&res[i]);
    }
    sim_buf_putc(&b, ']');
    free(res);
    free(failed);
    sim_resp_take(c->r, 200, &b);
out:
    json_object_put(in);
    for (size_t i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
}

/* ---------------------------------------------------------------- composite */
static void dispatch(struct ctx *c);

/* resolves "ref.a.b[0].c" against the earlier results; NULL when absent */
static json_object *ref_lookup(json_object **bodies, char **refs, int *status, int n,
                               const char *expr, size_t len, bool *failed_ref)
{
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%.*s", (int)(len < 255 ? len : 255), expr);
    char *dot = strpbrk(tmp, ".[");
    char sep = dot ? *dot : '\0';
    if (dot)
        *dot = '\0';
    json_object *cur = NULL;
    for (int i = 0; i < n; i++) {
        if (refs[i] && strcmp(refs[i], tmp) == 0) {
            cur = bodies[i];
            if (status[i] >= 400)
                *failed_ref = true;
        }
    }
    if (!cur || !dot)
        return cur;
    char *p = dot + 1;
    if (sep == '[')
        p = dot; /* let the loop parse the index */
    if (sep == '[')
        *p = '[';
    while (cur && *p) {
        if (*p == '.') {
            p++;
            continue;
        }
        if (*p == '[') {
            long i = strtol(p + 1, &p, 10);
            if (*p != ']')
                return NULL;
            p++;
            cur = json_object_is_type(cur, json_type_array) ? json_object_array_get_idx(cur, (size_t)i)
                                                            : NULL;
            continue;
        }
        size_t k = strcspn(p, ".[");
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)(k < 127 ? k : 127), p);
        json_object *nx = NULL;
        if (!json_object_is_type(cur, json_type_object) ||
            !json_object_object_get_ex(cur, key, &nx))
            return NULL;
        cur = nx;
        p += k;
    }
    return cur;
}

/* replaces @{...} in text; false (with the bad reference in *bad) when a
 * reference cannot be resolved */
static bool substitute(const char *text, json_object **bodies, char **refs, int *status,
                       int n, struct sim_buf *out, char *bad, size_t badsz)
{
    const char *p = text;
    for (;;) {
        const char *at = strstr(p, "@{");
        if (!at) {
            sim_buf_puts(out, p);
            return true;
        }
        const char *close = strchr(at, '}');
        if (!close) {
            sim_buf_puts(out, p);
            return true;
        }
        sim_buf_put(out, p, (size_t)(at - p));
        bool failed_ref = false;
        json_object *v = ref_lookup(bodies, refs, status, n, at + 2,
                                    (size_t)(close - at - 2), &failed_ref);
        if (!v || failed_ref || json_object_is_type(v, json_type_object) ||
            json_object_is_type(v, json_type_array)) {
            snprintf(bad, badsz, "%.*s", (int)(close - at - 2), at + 2);
            return false;
        }
        sim_buf_puts(out, json_object_get_string(v));
        p = close + 1;
    }
}

static void composite(struct ctx *c)
{
    c->r->endpoint = "composite";
    struct sim *sim = c->sim;
    if (strcmp(c->q->method, "POST") != 0) {
        method_not_allowed(c->r, c->q->method, "POST");
        return;
    }
    json_object *in = parse_body(c), *reqs, *a;
    if (!in)
        return;
    bool all_or_none = json_object_object_get_ex(in, "allOrNone", &a) && json_object_get_boolean(a);
    if (!json_object_object_get_ex(in, "compositeRequest", &reqs) ||
        !json_object_is_type(reqs, json_type_array)) {
        json_object_put(in);
        sim_resp_error(c->r, 400, "JSON_PARSER_ERROR", "compositeRequest must be an array");
        return;
    }
    int n = (int)json_object_array_length(reqs);
    if (n > 25 || n == 0) {
        json_object_put(in);
        sim_resp_error(c->r, 400, "INVALID_REQUEST",
                       n ? "Maximum number of subrequests allowed is 25"
                         : "compositeRequest must contain at least one subrequest");
        return;
    }
    json_object **bodies = calloc((size_t)n, sizeof *bodies);
    char **refs = calloc((size_t)n, sizeof *refs);
    int *status = calloc((size_t)n, sizeof *status);
    char **loc = calloc((size_t)n, sizeof *loc);
    if (!bodies || !refs || !status || !loc)
        abort();
    struct sim_undo undo;
    pthread_rwlock_wrlock(&sim->store.lock);
    if (all_or_none)
        sim_undo_begin(&sim->store, &undo);
    int failed_at = -1;
    for (int i = 0; i < n; i++) {
        json_object *sr = json_object_array_get_idx(reqs, (size_t)i), *v;
        const char *method = json_object_object_get_ex(sr, "method", &v) ? json_object_get_string(v) : "GET";
        const char *url = json_object_object_get_ex(sr, "url", &v) ? json_object_get_string(v) : "";
        if (json_object_object_get_ex(sr, "referenceId", &v)) {
            refs[i] = strdup(json_object_get_string(v));
            if (!refs[i])
                abort();
        }
        if (failed_at >= 0 && all_or_none) {
            status[i] = 400;
            bodies[i] = json_tokener_parse(
                "[{\"errorCode\":\"PROCESSING_HALTED\",\"message\":\"The transaction was "
                "rolled back since another operation in the same transaction failed.\"}]");
            continue;
        }
        struct sim_buf ub = {0}, bb = {0};
        char bad[128] = "";
        bool sub_ok = substitute(url, bodies, refs, status, i, &ub, bad, sizeof bad);
        json_object *body = NULL;
        if (sub_ok && json_object_object_get_ex(sr, "body", &v)) {
            const char *bt = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
            sub_ok = substitute(bt, bodies, refs, status, i, &bb, bad, sizeof bad);
        }
        if (!sub_ok) {
            char msg[400];
            snprintf(msg, sizeof msg,
                     "Invalid reference specified. No value for %s found in a previous "
                     "subrequest.",
                     bad);
            json_object *arr = json_object_new_array(), *e = json_object_new_object();
            json_object_object_add(e, "errorCode", json_object_new_string("PROCESSING_HALTED"));
            json_object_object_add(e, "message", json_object_new_string(msg));
            json_object_array_add(arr, e);
            bodies[i] = arr;
            status[i] = 400;
            sim_buf_free(&ub);
            sim_buf_free(&bb);
            if (failed_at < 0)
                failed_at = i;
            continue;
        }
        (void)body;
        char *urlp = sim_buf_take(&ub, NULL);
        char *qs = strchr(urlp, '?');
        if (qs)
            *qs++ = '\0';
        struct sim_req sq = {
            .method = method,
            .path = urlp,
            .query = NULL,
            .raw_query = qs ? qs : "",
            .body = bb.p ? bb.p : "",
            .body_len = bb.len,
            .conn = NULL,
            .now = c->q->now,
        };
        struct sim_resp srr = {0};
        const char *vp = urlp + 16;
        size_t vn = strspn(vp, "0123456789.");
        char ver[16];
        if (strncmp(urlp, "/services/data/v", 16) != 0 || vn == 0 || vn >= sizeof ver) {
            not_found(&srr);
        } else {
            memcpy(ver, vp, vn);
            ver[vn] = '\0';
            sq.ver = ver;
            sq.rest = vp + vn;
            struct ctx sc = {.sim = sim, .q = &sq, .r = &srr, .locked = true};
            dispatch(&sc);
        }
        status[i] = srr.status ? srr.status : 200;
        bodies[i] = srr.body && srr.len ? json_tokener_parse(srr.body) : NULL;
        for (int h = 0; h < srr.nh; h++) {
            if (strcmp(srr.h[h].name, "Location") == 0 && !loc[i])
                loc[i] = srr.h[h].value;
            else
                free(srr.h[h].value);
        }
        free(srr.body);
        for (int k = 0; k < sq.nowned; k++)
            free(sq.owned[k]);
        free(urlp);
        sim_buf_free(&bb);
        if (status[i] >= 400 && failed_at < 0)
            failed_at = i;
    }
    if (all_or_none) {
        if (failed_at >= 0)
            sim_undo_rollback(&sim->store, &undo);
        else
            sim_undo_end(&sim->store, &undo);
    }
    pthread_rwlock_unlock(&sim->store.lock);
    struct sim_buf b = {0};
    sim_buf_puts(&b, "{\"compositeResponse\":[");
    for (int i = 0; i < n; i++) {
        if (i)
            sim_buf_putc(&b, ',');
        if (all_or_none && failed_at >= 0 && i < failed_at) {
            sim_buf_puts(&b, "{\"body\":[{\"errorCode\":\"PROCESSING_HALTED\",\"message\":"
                             "\"The transaction was rolled back since another operation in "
                             "the same transaction failed.\"}],\"httpHeaders\":{},"
                             "\"httpStatusCode\":400,\"referenceId\":");
        } else {
            sim_buf_puts(&b, "{\"body\":");
            sim_buf_puts(&b, bodies[i] ? json_object_to_json_string_ext(
                                             bodies[i], JSON_C_TO_STRING_PLAIN |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE)
                                       : "null");
            sim_buf_puts(&b, ",\"httpHeaders\":{");
            if (loc[i]) {
                sim_buf_puts(&b, "\"Location\":");
                sim_buf_json_str(&b, loc[i]);
            }
            sim_buf_printf(&b, "},\"httpStatusCode\":%d,\"referenceId\":", status[i]);
        }
        sim_buf_json_str(&b, refs[i]);
        sim_buf_putc(&b, '}');
    }
    sim_buf_puts(&b, "]}");
    for (int i = 0; i < n; i++) {
        json_object_put(bodies[i]);
        free(refs[i]);
        free(loc[i]);
    }
    free(bodies);
    free(refs);
    free(status);
    free(loc);
    json_object_put(in);
    sim_resp_take(c->r, 200, &b);
}

/* ---------------------------------------------------------------- misc */
static void resources(struct ctx *c)
{
    c->r->endpoint = "resources";
    const char *v = c->q->ver;
    struct sim_buf b = {0};
    sim_buf_printf(&b,
                   "{\"tooling\":\"/services/data/v%s/tooling\",\"metadata\":\"/services/data/v%s/metadata\","
                   "\"jobs\":\"/services/data/v%s/jobs\",\"query\":\"/services/data/v%s/query\","
                   "\"queryAll\":\"/services/data/v%s/queryAll\",\"sobjects\":\"/services/data/v%s/sobjects\","
                   "\"composite\":\"/services/data/v%s/composite\",\"limits\":\"/services/data/v%s/limits\","
                   "\"identity\":\"%s/id/%s/%s\"}",
                   v, v, v, v, v, v, v, v, c->sim->base_url, c->sim->store.org_id,
                   c->sim->user_id);
    sim_resp_take(c->r, 200, &b);
}

static void limits(struct ctx *c)
{
    c->r->endpoint = "limits";
    pthread_mutex_lock(&c->sim->mu);
    long long max = c->sim->f.api_limit, used = c->sim->f.api_used;
    pthread_mutex_unlock(&c->sim->mu);
    long long rem = max - used < 0 ? 0 : max - used;
    struct sim_buf b = {0};
    sim_buf_printf(&b,
                   "{\"ConcurrentAsyncGetReportInstances\":{\"Max\":200,\"Remaining\":200},"
                   "\"ConcurrentSyncReportRuns\":{\"Max\":20,\"Remaining\":20},"
                   "\"DailyApiRequests\":{\"Max\":%lld,\"Remaining\":%lld},"
                   "\"DailyAsyncApexExecutions\":{\"Max\":250000,\"Remaining\":250000},"
                   "\"DailyBulkApiBatches\":{\"Max\":15000,\"Remaining\":15000},"
                   "\"DailyBulkApiRequests\":{\"Max\":15000,\"Remaining\":15000},"
                   "\"DailyBulkV2QueryFileStorageMB\":{\"Max\":976562,\"Remaining\":976562},"
                   "\"DailyBulkV2QueryJobs\":{\"Max\":10000,\"Remaining\":10000},"
                   "\"DataStorageMB\":{\"Max\":5,\"Remaining\":5},"
                   "\"FileStorageMB\":{\"Max\":20,\"Remaining\":20},"
                   "\"HourlyPublishedPlatformEvents\":{\"Max\":50000,\"Remaining\":50000},"
                   "\"SingleEmail\":{\"Max\":15,\"Remaining\":15}}",
                   max, rem);
    sim_resp_take(c->r, 200, &b);
}

static const char *seg(const char *p, char *out, size_t n)
{
    if (*p == '/')
        p++;
    size_t k = strcspn(p, "/");
    snprintf(out, n, "%.*s", (int)(k < n - 1 ? k : n - 1), p);
    return p + k;
}

static void dispatch(struct ctx *c)
{
    const char *rest = c->q->rest;
    const char *m = c->q->method;
    char a[128], b2[128], c3[512];
    if (!*rest || strcmp(rest, "/") == 0) {
        resources(c);
        return;
    }
    const char *p = seg(rest, a, sizeof a);
    if (strcmp(a, "query") == 0 || strcmp(a, "queryAll") == 0) {
        if (strcmp(m, "GET") != 0) {
            method_not_allowed(c->r, m, "GET,HEAD");
            return;
        }
        if (*p == '/' && p[1]) {
            query_more(c, p + 1);
            return;
        }
        do_query(c, sim_req_arg(c->q, "q"), strcmp(a, "queryAll") == 0);
        return;
    }
    if (strcmp(a, "limits") == 0) {
        limits(c);
        return;
    }
    if (strcmp(a, "composite") == 0) {
        if (strncmp(p, "/sobjects", 9) == 0 && (p[9] == '\0' || p[9] == '/')) {
            collections(c, p + 9);
            return;
        }
        if (!*p || strcmp(p, "/") == 0) {
            if (c->locked) {
                sim_resp_error(c->r, 400, "INVALID_REQUEST", "composite cannot be nested");
                return;
            }
            composite(c);
            return;
        }
        c->r->endpoint = "not_found";
        not_found(c->r);
        return;
    }
    if (strcmp(a, "jobs") == 0 && strncmp(p, "/query", 6) == 0 && !c->locked) {
        sim_bulk_handle(c->sim, c->q, c->r, p + 6);
        return;
    }
    if (strcmp(a, "sobjects") != 0) {
        c->r->endpoint = "not_found";
        not_found(c->r);
        return;
    }
    if (!*p || strcmp(p, "/") == 0) {
        describe_global(c);
        return;
    }
    p = seg(p, b2, sizeof b2);
    int obj = sim_object_find(b2);
    if (obj < 0) {
        c->r->endpoint = "not_found";
        not_found(c->r);
        return;
    }
    if (!*p || strcmp(p, "/") == 0) {
        if (strcmp(m, "POST") == 0)
            sobject_create(c, obj);
        else if (strcmp(m, "GET") == 0)
            sobject_basic(c, obj);
        else
            method_not_allowed(c->r, m, "GET,HEAD,POST");
        return;
    }
    p = seg(p, c3, sizeof c3);
    if (strcmp(c3, "describe") == 0 && (!*p || strcmp(p, "/") == 0)) {
        describe(c, obj);
        return;
    }
    if ((strcmp(c3, "updated") == 0 || strcmp(c3, "deleted") == 0) &&
        (!*p || strcmp(p, "/") == 0)) {
        replication(c, obj, c3[0] == 'd');
        return;
    }
    if (!*p) {
        sobject_row(c, obj, c3);
        return;
    }
    /* {ExtIdField}/{value}: the value is the rest of the path */
    sobject_upsert(c, obj, c3, p + 1);
}

static bool is_write(const char *ep)
{
    return ep && (strncmp(ep, "sobject_c", 9) == 0 || strcmp(ep, "sobject_update") == 0 ||
                  strcmp(ep, "sobject_upsert") == 0 || strcmp(ep, "sobject_delete") == 0 ||
                  strcmp(ep, "collections") == 0 || strcmp(ep, "composite") == 0);
}

void sim_rest_handle(struct sim *sim, struct sim_req *q, struct sim_resp *r)
{
    struct ctx c = {.sim = sim, .q = q, .r = r, .locked = false};
    if (!sim_oauth_check(sim, q, r)) {
        r->endpoint = "rejected";
        pthread_mutex_lock(&sim->mu);
        long long u = sim->f.api_used, l = sim->f.api_limit;
        pthread_mutex_unlock(&sim->mu);
        sim_resp_hdr(r, "Sforce-Limit-Info", "api-usage=%lld/%lld", u, l);
        return;
    }
    pthread_mutex_lock(&sim->mu);
    if (q->now - sim->usage_day_start >= 86400000LL) {
        /* the rolling 24 h window moved on */
        sim->f.api_used = 0;
        sim->usage_day_start = q->now;
    }
    bool over = sim->f.api_used >= sim->f.api_limit;
    if (!over)
        sim->f.api_used++;
    long long used = sim->f.api_used, lim = sim->f.api_limit;
    pthread_mutex_unlock(&sim->mu);
    if (over) {
        r->endpoint = "rejected";
        sim_resp_error(r, 403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.");
    } else {
        dispatch(&c);
        if (is_write(r->endpoint) && r->status < 400)
            write_delay(sim);
    }
    sim_resp_hdr(r, "Sforce-Limit-Info", "api-usage=%lld/%lld", used, lim);
}
