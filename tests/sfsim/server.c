/*
 * server: the HTTP side of the emulator (libmicrohttpd, one thread per
 * connection), request routing, the request log and counters, run-time
 * faults and the /__sim/ control API. Also the sim_new/sim_start/sim_free
 * lifecycle.
 *
 * Threads: each connection runs in its own MHD thread; shared state is
 * guarded by sim->mu (see simint.h for the lock order).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "simint.h"

const char *const sim_stat_names[SIM_NSTATS] = {
    "oauth_token", "oauth_authorize", "query", "queryAll", "query_more",
    "sobject_create", "sobject_update", "sobject_upsert", "sobject_retrieve",
    "sobject_delete", "collections", "composite", "describe", "limits", "bulk",
    "updated", "deleted", "oauth_revoke", "oauth_introspect", "identity",
    "versions", "resources", "not_found", "rejected"};

int64_t sim_now(struct sim *sim)
{
    return sim_wall_ms() + __atomic_load_n(&sim->clock_offset_ms, __ATOMIC_RELAXED);
}

void sim_stat(struct sim *sim, const char *name)
{
    if (!name)
        return;
    pthread_mutex_lock(&sim->mu);
    for (int i = 0; i < SIM_NSTATS; i++) {
        if (strcmp(sim_stat_names[i], name) == 0) {
            sim->stats[i]++;
            break;
        }
    }
    pthread_mutex_unlock(&sim->mu);
}

bool sim_fault_lock_row(struct sim *sim)
{
    bool hit = false;
    pthread_mutex_lock(&sim->mu);
    if (sim->f.lock_row_next > 0) {
        sim->f.lock_row_next--;
        hit = true;
    }
    pthread_mutex_unlock(&sim->mu);
    return hit;
}

/* ---------------------------------------------------------------- responses */
void sim_resp_hdr(struct sim_resp *r, const char *name, const char *fmt, ...)
{
    if (r->nh >= (int)(sizeof r->h / sizeof r->h[0]))
        return;
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    r->h[r->nh].name = name;
    r->h[r->nh].value = strdup(tmp);
    if (!r->h[r->nh].value)
        abort();
    r->nh++;
}

void sim_resp_take(struct sim_resp *r, int status, struct sim_buf *b)
{
    free(r->body);
    r->status = status;
    r->body = sim_buf_take(b, &r->len);
    if (!r->ctype)
        r->ctype = "application/json;charset=UTF-8";
    r->json = strncmp(r->ctype, "application/json", 16) == 0;
}

void sim_resp_json(struct sim_resp *r, int status, json_object *o)
{
    struct sim_buf b = {0};
    sim_buf_puts(&b, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
    r->ctype = "application/json;charset=UTF-8";
    sim_resp_take(r, status, &b);
}

void sim_resp_error(struct sim_resp *r, int status, const char *code,
                    const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct sim_buf b = {0};
    sim_buf_puts(&b, "[{\"message\":");
    sim_buf_json_str(&b, msg);
    sim_buf_puts(&b, ",\"errorCode\":");
    sim_buf_json_str(&b, code);
    sim_buf_puts(&b, ",\"fields\":[]}]");
    r->ctype = "application/json;charset=UTF-8";
    sim_resp_take(r, status, &b);
}

void sim_resp_err(struct sim_resp *r, const struct sim_err *e)
{
    struct sim_buf b = {0};
    sim_buf_puts(&b, "[{\"message\":");
    sim_buf_json_str(&b, e->msg);
    sim_buf_puts(&b, ",\"errorCode\":");
    sim_buf_json_str(&b, e->code);
    sim_buf_puts(&b, ",\"fields\":[");
    for (int i = 0; i < e->nfields; i++) {
        if (i)
            sim_buf_putc(&b, ',');
        sim_buf_json_str(&b, e->fields[i]);
    }
    sim_buf_puts(&b, "]}]");
    r->ctype = "application/json;charset=UTF-8";
    sim_resp_take(r, e->status ? e->status : 400, &b);
}

const char *sim_req_arg(struct sim_req *q, const char *key)
{
    if (!q->conn) {
        /* a composite subrequest: decode from its own query string */
        char *v = sim_form_get(q->raw_query, key);
        if (v && q->nowned < (int)(sizeof q->owned / sizeof q->owned[0]))
            q->owned[q->nowned++] = v;
        else if (v) {
            free(v);
            v = NULL;
        }
        return v;
    }
    return MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *sim_req_header(const struct sim_req *q, const char *key)
{
    if (!q->conn)
        return NULL;
    return MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, key);
}

/* ---------------------------------------------------------------- log */
static void log_add(struct sim *sim, const struct sim_req *q, int status)
{
    pthread_mutex_lock(&sim->mu);
    if (sim->nlog >= 200000) {
        /* keep the newest half; tests read recent entries */
        size_t drop = sim->nlog / 2;
        for (size_t i = 0; i < drop; i++) {
            free(sim->log[i].path);
            free(sim->log[i].query);
        }
        memmove(sim->log, sim->log + drop, (sim->nlog - drop) * sizeof *sim->log);
        sim->nlog -= drop;
    }
    if (sim->nlog == sim->caplog) {
        sim->caplog = sim->caplog ? sim->caplog * 2 : 256;
        struct sim_logent *nl = realloc(sim->log, sim->caplog * sizeof *nl);
        if (!nl)
            abort();
        sim->log = nl;
    }
    struct sim_logent *e = &sim->log[sim->nlog++];
    e->seq = ++sim->seq;
    snprintf(e->method, sizeof e->method, "%s", q->method);
    e->path = strdup(q->path);
    e->query = strdup(q->query ? q->query : "");
    if (!e->path || !e->query)
        abort();
    e->status = status;
    e->at_ms = q->now;
    e->body_size = q->body_len;
    sim->total++;
    pthread_mutex_unlock(&sim->mu);
}

static void log_clear_locked(struct sim *sim)
{
    for (size_t i = 0; i < sim->nlog; i++) {
        free(sim->log[i].path);
        free(sim->log[i].query);
    }
    sim->nlog = 0;
}

/* ---------------------------------------------------------------- control */
static void faults_defaults(struct sim *sim)
{
    memset(&sim->f, 0, sizeof sim->f);
    sim->f.api_limit = sim->cfg.api_limit;
}

static json_object *faults_json(struct sim *sim)
{
    struct sim_faults *f = &sim->f;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "api_limit", json_object_new_int64(f->api_limit));
    json_object_object_add(o, "api_used", json_object_new_int64(f->api_used));
    json_object_object_add(o, "fail_503_next", json_object_new_int(f->fail_503_next));
    json_object_object_add(o, "fail_503_percent", json_object_new_int(f->fail_503_percent));
    json_object_object_add(o, "latency_ms", json_object_new_int(f->latency_ms));
    json_object_object_add(o, "lock_row_next", json_object_new_int(f->lock_row_next));
    json_object_object_add(o, "malformed_json_next",
                           json_object_new_int(f->malformed_json_next));
    json_object_object_add(o, "drop_connection_next",
                           json_object_new_int(f->drop_connection_next));
    json_object_object_add(o, "query_timeout_above",
                           json_object_new_int64(f->query_timeout_above));
    json_object_object_add(o, "bulk_fail_next", json_object_new_int(f->bulk_fail_next));
    json_object_object_add(o, "delay_after_write_ms",
                           json_object_new_int(f->delay_after_write_ms));
    if (f->vr_object[0]) {
        json_object *vr = json_object_new_object();
        json_object_object_add(vr, "object", json_object_new_string(f->vr_object));
        json_object_object_add(vr, "field", json_object_new_string(f->vr_field));
        json_object_object_add(vr, "contains", json_object_new_string(f->vr_contains));
        json_object_object_add(o, "validation_rule", vr);
    } else {
        json_object_object_add(o, "validation_rule", NULL);
    }
    return o;
}

static void expire_tokens_locked(struct sim *sim, bool refresh)
{
    for (size_t i = 0; i < sim->ntokens; i++) {
        struct sim_token *t = &sim->tokens[i];
        if (refresh || !t->is_refresh)
            t->revoked = true;
    }
}

static bool get_int(json_object *o, const char *k, int64_t *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v))
        return false;
    *out = json_object_get_int64(v);
    return true;
}

static void ctl_faults(struct sim *sim, struct sim_req *q, struct sim_resp *r)
{
    if (strcmp(q->method, "GET") == 0) {
        pthread_mutex_lock(&sim->mu);
        json_object *o = faults_json(sim);
        pthread_mutex_unlock(&sim->mu);
        sim_resp_json(r, 200, o);
        json_object_put(o);
        return;
    }
    json_object *in = json_tokener_parse(q->body ? q->body : "");
    if (!in || !json_object_is_type(in, json_type_object)) {
        json_object_put(in);
        sim_resp_error(r, 400, "JSON_PARSER_ERROR", "body must be a JSON object");
        return;
    }
    pthread_mutex_lock(&sim->mu);
    struct sim_faults *f = &sim->f;
    json_object *v;
    int64_t n;
    if (json_object_object_get_ex(in, "expire_sessions", &v) && json_object_get_boolean(v))
        expire_tokens_locked(sim, false);
    if (json_object_object_get_ex(in, "revoke_refresh_tokens", &v) &&
        json_object_get_boolean(v))
        expire_tokens_locked(sim, true);
    if (get_int(in, "api_limit", &n))
        f->api_limit = n;
    if (get_int(in, "api_used", &n))
        f->api_used = n;
#define INTF(name)                                                               \
    if (get_int(in, #name, &n))                                                  \
        f->name = (int)n;
    INTF(fail_503_next)
    INTF(fail_503_percent)
    INTF(latency_ms)
    INTF(lock_row_next)
    INTF(malformed_json_next)
    INTF(drop_connection_next)
    INTF(bulk_fail_next)
    INTF(delay_after_write_ms)
#undef INTF
    if (get_int(in, "query_timeout_above", &n))
        f->query_timeout_above = n;
    if (json_object_object_get_ex(in, "validation_rule", &v)) {
        json_object *a, *b, *c;
        f->vr_object[0] = f->vr_field[0] = f->vr_contains[0] = '\0';
        if (json_object_is_type(v, json_type_object) &&
            json_object_object_get_ex(v, "object", &a) &&
            json_object_object_get_ex(v, "field", &b) &&
            json_object_object_get_ex(v, "contains", &c)) {
            snprintf(f->vr_object, sizeof f->vr_object, "%s", json_object_get_string(a));
            snprintf(f->vr_field, sizeof f->vr_field, "%s", json_object_get_string(b));
            snprintf(f->vr_contains, sizeof f->vr_contains, "%s", json_object_get_string(c));
        }
    }
    json_object *o = faults_json(sim);
    pthread_mutex_unlock(&sim->mu);
    json_object_put(in);
    sim_resp_json(r, 200, o);
    json_object_put(o);
}

static void ctl_requests(struct sim *sim, struct sim_req *q, struct sim_resp *r)
{
    if (strcmp(q->method, "DELETE") == 0) {
        pthread_mutex_lock(&sim->mu);
        log_clear_locked(sim);
        pthread_mutex_unlock(&sim->mu);
        r->status = 204;
        return;
    }
    const char *since_s = sim_req_arg(q, "since");
    int64_t since = since_s ? strtoll(since_s, NULL, 10) : 0;
    struct sim_buf b = {0};
    sim_buf_putc(&b, '[');
    pthread_mutex_lock(&sim->mu);
    bool first = true;
    for (size_t i = 0; i < sim->nlog; i++) {
        struct sim_logent *e = &sim->log[i];
        if (e->seq <= since)
            continue;
        if (!first)
            sim_buf_putc(&b, ',');
        first = false;
        sim_buf_printf(&b, "{\"seq\":%lld,\"method\":", (long long)e->seq);
        sim_buf_json_str(&b, e->method);
        sim_buf_puts(&b, ",\"path\":");
        sim_buf_json_str(&b, e->path);
        sim_buf_puts(&b, ",\"query\":");
        sim_buf_json_str(&b, e->query);
        sim_buf_printf(&b, ",\"status\":%d,\"at_ms\":%lld,\"body_size\":%zu}", e->status,
                       (long long)e->at_ms, e->body_size);
    }
    pthread_mutex_unlock(&sim->mu);
    sim_buf_putc(&b, ']');
    sim_resp_take(r, 200, &b);
}

static void ctl_stats(struct sim *sim, struct sim_resp *r)
{
    struct sim_buf b = {0};
    pthread_mutex_lock(&sim->mu);
    sim_buf_printf(&b, "{\"total\":%lld,\"by_endpoint\":{", (long long)sim->total);
    for (int i = 0; i < SIM_NSTATS; i++)
        sim_buf_printf(&b, "%s\"%s\":%lld", i ? "," : "", sim_stat_names[i],
                       (long long)sim->stats[i]);
    sim_buf_printf(&b,
                   "},\"refresh_grants\":%lld,\"code_grants\":%lld,\"api_used\":%lld,"
                   "\"api_limit\":%lld}",
                   (long long)sim->refresh_grants, (long long)sim->code_grants,
                   (long long)sim->f.api_used, (long long)sim->f.api_limit);
    pthread_mutex_unlock(&sim->mu);
    sim_resp_take(r, 200, &b);
}

static void rec_full_json(struct sim *sim, int obj, const struct sim_rec *rec,
                          struct sim_buf *b)
{
    const struct sim_object *o = &sim_objects[obj];
    sim_buf_printf(b, "{\"attributes\":{\"type\":\"%s\",\"url\":\"/services/data/v60.0/sobjects/%s/%s\"}",
                   o->name, o->name, rec->id);
    for (int f = 0; f < o->nfields; f++) {
        sim_buf_putc(b, ',');
        sim_buf_json_str(b, o->fields[f].name);
        sim_buf_putc(b, ':');
        sim_val_json(&sim->store, obj, rec, f, b);
    }
    sim_buf_putc(b, '}');
}

/* the text form of a field used by ?where=Field=value */
static bool field_text_eq(struct sim *sim, int obj, const struct sim_rec *rec, int f,
                          const char *want)
{
    struct sim_val v = sim_get(&sim->store, obj, rec, f);
    if (v.null)
        return *want == '\0' || strcmp(want, "null") == 0;
    char tmp[40];
    switch (v.sc) {
    case SIM_S_STR:
        return strcmp(v.u.s, want) == 0;
    case SIM_S_NUM:
        return strtod(want, NULL) == v.u.d;
    case SIM_S_INT:
        return strtoll(want, NULL, 10) == v.u.i;
    case SIM_S_BOOL:
        return (strcmp(want, "true") == 0) == (v.u.i != 0);
    case SIM_S_DATE:
        sim_fmt_date(v.u.i, tmp);
        return strcmp(tmp, want) == 0;
    case SIM_S_DT:
        sim_fmt_datetime(v.u.i, tmp);
        return strcmp(tmp, want) == 0;
    }
    return false;
}

static void ctl_records(struct sim *sim, struct sim_req *q, struct sim_resp *r,
                        const char *sub)
{
    char type[64];
    const char *slash = strchr(sub, '/');
    size_t tl = slash ? (size_t)(slash - sub) : strlen(sub);
    snprintf(type, sizeof type, "%.*s", (int)(tl < 63 ? tl : 63), sub);
    int obj = sim_object_find(type);
    const char *id = slash ? slash + 1 : NULL;
    if (obj < 0) {
        sim_resp_error(r, 404, "NOT_FOUND", "unknown sobject type %s", type);
        return;
    }
    struct sim_store *s = &sim->store;
    struct sim_err e = {0};
    if (!id && strcmp(q->method, "GET") == 0) {
        const char *where = sim_req_arg(q, "where");
        const char *count = sim_req_arg(q, "count");
        int wf = -1;
        const char *wv = NULL;
        if (where) {
            const char *eq = strchr(where, '=');
            if (eq) {
                wf = sim_field_find_n(&sim_objects[obj], where, (size_t)(eq - where));
                wv = eq + 1;
            }
            if (wf < 0) {
                sim_resp_error(r, 400, "INVALID_FIELD", "bad where filter %s", where);
                return;
            }
        }
        struct sim_buf b = {0};
        size_t n = 0;
        pthread_rwlock_rdlock(&s->lock);
        if (!count)
            sim_buf_puts(&b, "{\"records\":[");
        for (uint32_t i = 0; i < s->t[obj].n; i++) {
            const struct sim_rec *rec = sim_rec_at(s, obj, i);
            if (rec->purged || (wf >= 0 && !field_text_eq(sim, obj, rec, wf, wv)))
                continue;
            if (!count) {
                if (n)
                    sim_buf_putc(&b, ',');
                rec_full_json(sim, obj, rec, &b);
            }
            n++;
        }
        pthread_rwlock_unlock(&s->lock);
        if (count)
            sim_buf_printf(&b, "{\"count\":%zu}", n);
        else
            sim_buf_puts(&b, "]}");
        sim_resp_take(r, 200, &b);
        return;
    }
    if (!id && strcmp(q->method, "POST") == 0) {
        json_object *in = json_tokener_parse(q->body ? q->body : "");
        uint32_t idx = 0;
        pthread_rwlock_wrlock(&s->lock);
        bool ok = in && sim_store_write_locked(sim, obj, &idx, in, SIM_W_DIRECT_INSERT,
                                               NULL, &e);
        if (!in)
            sim_err_set(&e, 400, "JSON_PARSER_ERROR", NULL, "body must be a JSON object");
        char idbuf[19] = "";
        if (ok)
            snprintf(idbuf, sizeof idbuf, "%s", sim_rec_at(s, obj, idx)->id);
        pthread_rwlock_unlock(&s->lock);
        json_object_put(in);
        if (!ok) {
            sim_resp_err(r, &e);
            return;
        }
        struct sim_buf b = {0};
        sim_buf_printf(&b, "{\"id\":\"%s\",\"success\":true,\"errors\":[]}", idbuf);
        sim_resp_take(r, 201, &b);
        return;
    }
    if (!id) {
        sim_resp_error(r, 405, "METHOD_NOT_ALLOWED", "method not allowed");
        return;
    }
    int fobj;
    uint32_t idx;
    pthread_rwlock_wrlock(&s->lock);
    struct sim_rec *rec = sim_store_find(s, id, &fobj, &idx);
    if (!rec || fobj != obj) {
        pthread_rwlock_unlock(&s->lock);
        sim_resp_error(r, 404, "NOT_FOUND", "The requested resource does not exist");
        return;
    }
    if (strcmp(q->method, "GET") == 0) {
        struct sim_buf b = {0};
        rec_full_json(sim, obj, rec, &b);
        pthread_rwlock_unlock(&s->lock);
        sim_resp_take(r, 200, &b);
        return;
    }
    bool ok = false;
    json_object *in = NULL;
    if (strcmp(q->method, "PATCH") == 0) {
        in = json_tokener_parse(q->body ? q->body : "");
        if (!in)
            sim_err_set(&e, 400, "JSON_PARSER_ERROR", NULL, "body must be a JSON object");
        else
            ok = sim_store_write_locked(sim, obj, &idx, in, SIM_W_DIRECT_UPDATE, NULL, &e);
    } else if (strcmp(q->method, "DELETE") == 0) {
        const char *hard = sim_req_arg(q, "hard");
        ok = sim_store_delete_locked(sim, obj, idx, hard && strcmp(hard, "0") != 0, &e);
    } else {
        sim_err_set(&e, 405, "METHOD_NOT_ALLOWED", NULL, "method not allowed");
    }
    pthread_rwlock_unlock(&s->lock);
    json_object_put(in);
    if (!ok) {
        sim_resp_err(r, &e);
        return;
    }
    r->status = 204;
}

static void ctl_token(struct sim *sim, struct sim_resp *r)
{
    char tok[128];
    sim_issue_token(sim, tok, sizeof tok);
    struct sim_buf b = {0};
    sim_buf_puts(&b, "{\"access_token\":");
    sim_buf_json_str(&b, tok);
    sim_buf_puts(&b, ",\"instance_url\":");
    sim_buf_json_str(&b, sim->base_url);
    sim_buf_putc(&b, '}');
    sim_resp_take(r, 200, &b);
}

void sim_control_handle(struct sim *sim, struct sim_req *q, struct sim_resp *r)
{
    const char *sub = q->path + strlen("/__sim/");
    bool post = strcmp(q->method, "POST") == 0;
    if (strcmp(sub, "requests") == 0) {
        ctl_requests(sim, q, r);
    } else if (strcmp(sub, "stats") == 0) {
        ctl_stats(sim, r);
    } else if (strcmp(sub, "faults") == 0) {
        ctl_faults(sim, q, r);
    } else if (strcmp(sub, "reset") == 0 && post) {
        pthread_mutex_lock(&sim->mu);
        faults_defaults(sim);
        log_clear_locked(sim);
        memset(sim->stats, 0, sizeof sim->stats);
        sim->total = sim->refresh_grants = sim->code_grants = 0;
        pthread_mutex_unlock(&sim->mu);
        struct sim_buf b = {0};
        sim_buf_puts(&b, "{\"ok\":true}");
        sim_resp_take(r, 200, &b);
    } else if (strcmp(sub, "reset_usage") == 0 && post) {
        pthread_mutex_lock(&sim->mu);
        sim->f.api_used = 0;
        sim->usage_day_start = sim_now(sim);
        pthread_mutex_unlock(&sim->mu);
        r->status = 204;
    } else if (strcmp(sub, "clock") == 0 && post) {
        json_object *in = json_tokener_parse(q->body ? q->body : ""), *v;
        int64_t adv = 0;
        if (in && json_object_object_get_ex(in, "advance_s", &v))
            adv = json_object_get_int64(v);
        json_object_put(in);
        __atomic_add_fetch(&sim->clock_offset_ms, adv * 1000, __ATOMIC_RELAXED);
        char ts[32];
        sim_fmt_datetime(sim_now(sim), ts);
        struct sim_buf b = {0};
        sim_buf_printf(&b, "{\"now\":\"%s\",\"offset_s\":%lld}", ts,
                       (long long)(__atomic_load_n(&sim->clock_offset_ms, __ATOMIC_RELAXED) /
                                   1000));
        sim_resp_take(r, 200, &b);
    } else if (strcmp(sub, "token") == 0) {
        ctl_token(sim, r);
    } else if (strncmp(sub, "records/", 8) == 0) {
        ctl_records(sim, q, r, sub + 8);
    } else {
        sim_resp_error(r, 404, "NOT_FOUND", "unknown control resource %s", q->path);
    }
}

/* ---------------------------------------------------------------- routing */
static void versions(struct sim *sim, struct sim_resp *r)
{
    (void)sim;
    struct sim_buf b = {0};
    sim_buf_putc(&b, '[');
    for (int v = 31; v <= 62; v++) {
        static const char *const rel[] = {"Summer", "Winter", "Spring"};
        sim_buf_printf(&b, "%s{\"label\":\"%s '%02d\",\"url\":\"/services/data/v%d.0\",\"version\":\"%d.0\"}",
                       v > 31 ? "," : "", rel[v % 3], (v + 2) / 3 + 4, v, v);
    }
    sim_buf_putc(&b, ']');
    sim_resp_take(r, 200, &b);
}

struct conn_ctx {
    struct sim_buf body;
};

static enum MHD_Result arg_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                              const char *value)
{
    (void)kind;
    struct sim_buf *b = cls;
    if (b->len)
        sim_buf_putc(b, '&');
    sim_buf_puts(b, key);
    if (value) {
        sim_buf_putc(b, '=');
        sim_buf_puts(b, value);
    }
    return MHD_YES;
}

struct drop_ctx {
    char *body;
    size_t len, sent;
};

static ssize_t drop_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct drop_ctx *d = cls;
    size_t half = d->len / 2;
    if (pos >= half)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = half - (size_t)pos;
    if (n > max)
        n = max;
    memcpy(buf, d->body + pos, n);
    return (ssize_t)n;
}

static void drop_free(void *cls)
{
    struct drop_ctx *d = cls;
    free(d->body);
    free(d);
}

static void route(struct sim *sim, struct sim_req *q, struct sim_resp *r)
{
    const char *p = q->path;
    if (strncmp(p, "/services/oauth2/", 17) == 0) {
        sim_oauth_handle(sim, q, r);
    } else if (strncmp(p, "/id/", 4) == 0) {
        sim_identity_handle(sim, q, r);
    } else if (strcmp(p, "/services/data") == 0 || strcmp(p, "/services/data/") == 0) {
        r->endpoint = "versions";
        versions(sim, r);
    } else if (strncmp(p, "/services/data/v", 16) == 0) {
        const char *v = p + 16;
        size_t n = strspn(v, "0123456789.");
        static __thread char ver[16];
        if (n == 0 || n >= sizeof ver || !strchr(v, '.') ||
            (v[n] != '/' && v[n] != '\0')) {
            r->endpoint = "not_found";
            sim_resp_error(r, 404, "NOT_FOUND", "The requested resource does not exist");
            return;
        }
        memcpy(ver, v, n);
        ver[n] = '\0';
        q->ver = ver;
        q->rest = v + n;
        sim_rest_handle(sim, q, r);
    } else {
        r->endpoint = "not_found";
        sim_resp_error(r, 404, "NOT_FOUND", "The requested resource does not exist");
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct sim *sim = cls;
    struct conn_ctx *cx = *con_cls;
    if (!cx) {
        cx = calloc(1, sizeof *cx);
        if (!cx)
            return MHD_NO;
        *con_cls = cx;
        return MHD_YES;
    }
    if (*upload_size) {
        if (cx->body.len + *upload_size > (size_t)256 << 20)
            return MHD_NO;
        sim_buf_put(&cx->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    struct sim_buf qs = {0};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, arg_cb, &qs);
    struct sim_req q = {
        .method = method,
        .path = url,
        .query = sim_buf_take(&qs, NULL),
        .body = cx->body.p ? cx->body.p : "",
        .body_len = cx->body.len,
        .conn = conn,
        .now = sim_now(sim),
    };
    struct sim_resp r = {0};
    bool control = strncmp(url, "/__sim/", 7) == 0;
    bool drop = false, malformed = false, fail = false;
    int latency = 0;
    if (!control) {
        pthread_mutex_lock(&sim->mu);
        latency = sim->f.latency_ms;
        if (sim->f.drop_connection_next > 0) {
            sim->f.drop_connection_next--;
            drop = true;
        }
        if (sim->f.fail_503_next > 0) {
            sim->f.fail_503_next--;
            fail = true;
        } else if (sim->f.fail_503_percent > 0 &&
                   (int)(sim_rng(&sim->rng) % 100) < sim->f.fail_503_percent) {
            fail = true;
        }
        pthread_mutex_unlock(&sim->mu);
        if (latency > 0) {
            struct timespec ts = {latency / 1000, (long)(latency % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (control) {
        sim_control_handle(sim, &q, &r);
    } else if (fail) {
        r.endpoint = "rejected";
        sim_resp_error(&r, 503, "SERVER_UNAVAILABLE", "Server too busy");
    } else {
        route(sim, &q, &r);
    }
    if (!control) {
        sim_stat(sim, r.endpoint);
        if (r.json && r.len > 2) {
            pthread_mutex_lock(&sim->mu);
            if (sim->f.malformed_json_next > 0) {
                sim->f.malformed_json_next--;
                malformed = true;
            }
            pthread_mutex_unlock(&sim->mu);
        }
        if (malformed) {
            /* cut the document and leave a dangling token */
            r.len = r.len / 2;
            r.body[r.len] = '\0';
            struct sim_buf b = {0};
            sim_buf_put(&b, r.body, r.len);
            sim_buf_puts(&b, "\"<!-- truncated");
            free(r.body);
            r.body = sim_buf_take(&b, &r.len);
        }
        log_add(sim, &q, r.status ? r.status : 200);
    }
    free(q.query);
    if (drop && (!r.body || r.len < 2)) {
        free(r.body);
        for (int i = 0; i < r.nh; i++)
            free(r.h[i].value);
        return MHD_NO;
    }
    struct MHD_Response *mr;
    if (drop) {
        struct drop_ctx *d = calloc(1, sizeof *d);
        if (!d)
            abort();
        d->body = r.body;
        d->len = r.len;
        mr = MHD_create_response_from_callback(r.len, 4096, drop_reader, d, drop_free);
    } else {
        static char empty[1];
        mr = MHD_create_response_from_buffer(r.len, r.body ? r.body : empty,
                                             r.body ? MHD_RESPMEM_MUST_FREE
                                                    : MHD_RESPMEM_PERSISTENT);
    }
    if (!mr) {
        free(r.body);
        return MHD_NO;
    }
    if (r.body && r.ctype)
        MHD_add_response_header(mr, "Content-Type", r.ctype);
    for (int i = 0; i < r.nh; i++) {
        MHD_add_response_header(mr, r.h[i].name, r.h[i].value);
        free(r.h[i].value);
    }
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)(r.status ? r.status : 200), mr);
    MHD_destroy_response(mr);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct conn_ctx *cx = *con_cls;
    if (!cx)
        return;
    sim_buf_free(&cx->body);
    free(cx);
    *con_cls = NULL;
}

/* ---------------------------------------------------------------- lifecycle */
void sim_config_defaults(struct sim_config *c)
{
    memset(c, 0, sizeof *c);
    c->host = "127.0.0.1";
    c->client_id = "sfbridge-test-client";
    c->client_secret = "sfbridge-test-secret";
    c->user = "demo@example.com";
    c->session_timeout_s = 7200;
    c->api_limit = 100000;
    c->seed = 1;
    c->bulk_delay_ms = 200;
}

static char *dup_or_null(const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct sim_buf b = {0};
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        sim_buf_put(&b, tmp, n);
    fclose(f);
    return sim_buf_take(&b, NULL);
}

struct sim *sim_new(const struct sim_config *c, char *err, size_t errsz)
{
    struct sim *sim = calloc(1, sizeof *sim);
    if (!sim) {
        snprintf(err, errsz, "cannot allocate the emulator");
        return NULL;
    }
    sim->cfg = *c;
    sim->cfg.host = dup_or_null(c->host ? c->host : "127.0.0.1");
    sim->cfg.ready_file = dup_or_null(c->ready_file);
    sim->cfg.client_id = dup_or_null(c->client_id ? c->client_id : "sfbridge-test-client");
    sim->cfg.client_secret =
        dup_or_null(c->client_secret ? c->client_secret : "sfbridge-test-secret");
    sim->cfg.user = dup_or_null(c->user ? c->user : "demo@example.com");
    sim->cfg.tls_cert = dup_or_null(c->tls_cert);
    sim->cfg.tls_key = dup_or_null(c->tls_key);
    if (sim->cfg.session_timeout_s <= 0)
        sim->cfg.session_timeout_s = 7200;
    pthread_mutex_init(&sim->mu, NULL);
    sim->rng = c->seed ^ 0x5f5f5f5fULL;
    if (sim_store_init(&sim->store) != 0) {
        snprintf(err, errsz, "cannot initialize the record store");
        sim_free(sim);
        return NULL;
    }
    faults_defaults(sim);
    sim->usage_day_start = sim_now(sim);
    if (sim->cfg.tls_cert || sim->cfg.tls_key) {
        sim->tls_cert = sim->cfg.tls_cert ? slurp(sim->cfg.tls_cert) : NULL;
        sim->tls_key = sim->cfg.tls_key ? slurp(sim->cfg.tls_key) : NULL;
        if (!sim->tls_cert || !sim->tls_key) {
            snprintf(err, errsz, "could not read TLS certificate/key \"%s\" / \"%s\"",
                     sim->cfg.tls_cert ? sim->cfg.tls_cert : "",
                     sim->cfg.tls_key ? sim->cfg.tls_key : "");
            sim_free(sim);
            return NULL;
        }
    }
    sim_store_seed(sim);
    return sim;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct sim *sim = cls;
    if (sim->cfg.quiet)
        return;
    fputs("sfsim: ", stderr);
    vfprintf(stderr, fmt, ap);
}

bool sim_start(struct sim *sim, char *err, size_t errsz)
{
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)sim->cfg.port);
    if (inet_pton(AF_INET, sim->cfg.host, &sa.sin_addr) != 1) {
        snprintf(err, errsz, "cannot use host \"%s\": not an IPv4 address", sim->cfg.host);
        return false;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    bool tls = sim->tls_cert && sim->tls_key;
    if (tls)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, sim},
        {MHD_OPTION_SOCK_ADDR, 0, &sa},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, 120, NULL},
        {MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL},
        {tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, sim->tls_key},
        {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, sim->tls_cert},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)sim->cfg.port, NULL, NULL,
                                            on_request, sim, MHD_OPTION_ARRAY, opts,
                                            MHD_OPTION_END);
    if (!d) {
        snprintf(err, errsz, "could not listen on %s:%u%s", sim->cfg.host, sim->cfg.port,
                 tls ? " (TLS: check the certificate and key)" : "");
        return false;
    }
    sim->daemon = d;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    sim->port = di ? di->port : sim->cfg.port;
    snprintf(sim->base_url, sizeof sim->base_url, "%s://%s:%u", tls ? "https" : "http",
             sim->cfg.host, sim->port);
    if (sim->cfg.ready_file) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp.%d", sim->cfg.ready_file, (int)getpid());
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%s\n", sim->base_url) < 0 || fclose(f) != 0 ||
            rename(tmp, sim->cfg.ready_file) != 0) {
            snprintf(err, errsz, "could not write ready file \"%s\": %s",
                     sim->cfg.ready_file, strerror(errno));
            return false;
        }
    }
    return true;
}

const char *sim_base_url(const struct sim *s) { return s->base_url; }
unsigned sim_port(const struct sim *s) { return s->port; }

void sim_free(struct sim *sim)
{
    if (!sim)
        return;
    if (sim->daemon)
        MHD_stop_daemon(sim->daemon);
    sim_cursors_free(sim);
    sim_bulk_free_all(sim);
    log_clear_locked(sim);
    free(sim->log);
    free(sim->tokens);
    free(sim->codes);
    sim_store_cleanup(&sim->store);
    free((char *)(uintptr_t)sim->cfg.host);
    free((char *)(uintptr_t)sim->cfg.ready_file);
    free((char *)(uintptr_t)sim->cfg.client_id);
    free((char *)(uintptr_t)sim->cfg.client_secret);
    free((char *)(uintptr_t)sim->cfg.user);
    free((char *)(uintptr_t)sim->cfg.tls_cert);
    free((char *)(uintptr_t)sim->cfg.tls_key);
    free(sim->tls_cert);
    free(sim->tls_key);
    pthread_mutex_destroy(&sim->mu);
    free(sim);
}
