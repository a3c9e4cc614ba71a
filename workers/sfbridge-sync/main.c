/*
 * sfbridge-sync: consumes sync.requested, produces sync.completed (and
 * sync.progress, connection.status when a refresh finds the refresh token
 * revoked). See sync.h for the data flow.
 *
 * One run per request: mappings are loaded, every requested object (default:
 * every object the org has a mapping for) is synced under an advisory lock on
 * (connection, object), each page committed with its cursor and the run's
 * counters; the last transaction records the completion in sync_runs and
 * processed_messages. A retried message (retriable failure) continues from
 * what was committed: counters come back from sync_runs, objects already done
 * are not read again. Budget/limit deferral stops at a page boundary and
 * completes with status deferred + retry_at; the scheduler re-requests the
 * objects that did not finish.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "log.h"
#include "sf.h"
#include "soql.h"
#include "sync.h"

static bool init(struct deps *d, struct err *e)
{
    struct sync_ctx *x = calloc(1, sizeof *x);
    if (!x)
        return err_set(e, ERR_NOMEM, false, "out of memory");
    x->sf = worker_sf_client(d, e); /* stops backing off when the worker is asked to stop */
    if (!x->sf) {
        free(x);
        return false;
    }
    d->ctx = x;
    /* SFBRIDGE_TOKEN_KEY is checked by conn_open: a sync of a connection fails with a clear
     * configuration error, while the loop (DLQ, gates, inbox) keeps working */
    return true;
}

static void cleanup(struct deps *d)
{
    struct sync_ctx *x = d->ctx;
    if (!x)
        return;
    sf_client_free(&x->sf);
    free(x);
    d->ctx = NULL;
}

/* platform order: parents first, so most children link on insert */
static int platform_rank(const char *p)
{
    if (!p)
        return 9;
    if (!strcmp(p, "Company"))
        return 0;
    if (!strcmp(p, "Contact"))
        return 1;
    if (!strcmp(p, "Deal"))
        return 2;
    return 3;
}

static int cmp_obj(const void *a, const void *b)
{
    const struct obj_run *x = a, *y = b;
    int rx = platform_rank(x->om ? x->om->platform_object : NULL), ry = platform_rank(y->om ? y->om->platform_object : NULL);
    if (rx != ry)
        return rx - ry;
    return strcmp(x->sf_object, y->sf_object);
}

static bool plan_objects(struct run *r, struct err *e)
{
    struct json_object *req = json_get(r->job->msg, "objects");
    size_t n = req ? json_object_array_length(req) : r->ms.nobjects;
    if (n == 0)
        return err_set(e, ERR_MAPPING_REQUIRED, false,
                       "cannot sync org \"%s\": no object has a mapping; an admin must import one "
                       "(sfbridge mappings import)",
                       r->job->org_id);
    r->objs = calloc(n, sizeof *r->objs);
    if (!r->objs)
        return err_set(e, ERR_NOMEM, true, "out of memory");
    for (size_t i = 0; i < n; i++) {
        struct obj_run *o = &r->objs[r->nobjs++];
        const char *name = req ? json_object_get_string(json_object_array_get_idx(req, i)) : r->ms.objects[i].sf_object;
        snprintf(o->sf_object, sizeof o->sf_object, "%s", name);
        o->om = mapping_by_sf(&r->ms, name);
        if (o->om)
            snprintf(o->sf_object, sizeof o->sf_object, "%s", o->om->sf_object); /* canonical case */
        o->total = -1;
        snprintf(o->state, sizeof o->state, "pending");
        if (!o->om || !o->om->enabled) {
            err_set(&o->err, ERR_MAPPING_REQUIRED, false, "cannot sync %s for org \"%s\": no enabled mapping",
                    o->sf_object, r->job->org_id);
            snprintf(o->state, sizeof o->state, "failed");
        } else if (!mapping_table(o->om->platform_object)) {
            err_set(&o->err, ERR_MAPPING_REQUIRED, false, "cannot sync %s for org \"%s\": unknown platform object",
                    o->sf_object, r->job->org_id);
            snprintf(o->state, sizeof o->state, "failed");
        }
    }
    qsort(r->objs, r->nobjs, sizeof *r->objs, cmp_obj);
    return true;
}

/* sync_runs row: created, or on a retried message, the counters committed so far */
static bool start_run(struct run *r, struct err *e)
{
    struct json_object *objs = json_object_new_array();
    struct json_object *req = json_get(r->job->msg, "objects");
    if (req)
        json_object_put(objs), objs = json_object_get(req);
    const char *p[6] = {r->job->message_id, r->job->org_id, r->job->connection_id, r->mode_name,
                        json_get_str(r->job->msg, "requested_by"), NULL};
    (void)objs;
    struct pg_res *res = pg_exec(r->d->pg,
                                 "INSERT INTO sync_runs (request_id, org_id, connection_id, mode, requested_by) "
                                 "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (request_id) DO UPDATE SET "
                                 "status = 'running', updated_at = now() RETURNING objects::text, api_calls",
                                 5, p, e);
    json_object_put(objs);
    if (!res)
        return false;
    struct err je = ERR_INIT;
    const char *txt = pg_res_get(res, 0, 0);
    struct json_object *prev = txt ? json_parse(txt, strlen(txt), &je) : NULL;
    r->calls_base = strtoll(pg_res_get(res, 0, 1), NULL, 10);
    pg_res_free(&res);
    for (size_t i = 0; prev && i < r->nobjs; i++) {
        struct obj_run *o = &r->objs[i];
        struct json_object *c = json_get(prev, o->sf_object);
        if (!c || err_is_set(&o->err))
            continue;
        o->fetched = json_get_int(c, "fetched", 0);
        o->inserted = json_get_int(c, "inserted", 0);
        o->updated = json_get_int(c, "updated", 0);
        o->deleted = json_get_int(c, "deleted", 0);
        o->unchanged = json_get_int(c, "unchanged", 0);
        const char *st = json_get_str(c, "state");
        if (st && !strcmp(st, "done"))
            snprintf(o->state, sizeof o->state, "done");
    }
    json_object_put(prev);
    return true;
}

static bool lock_object(struct run *r, const char *obj, struct err *e)
{
    char key[160];
    snprintf(key, sizeof key, "sfbridge-sync:%s:%s", r->job->connection_id, obj);
    const char *p[1] = {key};
    long long waited = 0;
    for (;;) {
        struct pg_res *res = pg_exec(r->d->pg, "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", 1, p, e);
        if (!res)
            return false;
        bool got = !strcmp(pg_res_get(res, 0, 0), "t");
        pg_res_free(&res);
        if (got)
            return true;
        if (waited == 0)
            log_info("sync %s: %s of connection %s is being synced by another request; waiting", r->job->message_id,
                     obj, r->job->connection_id);
        if (waited > 15 * 60 * 1000)
            return err_set(e, ERR_INTERNAL, true, "could not lock %s of connection %s: busy for 15 minutes", obj,
                           r->job->connection_id);
        if (!worker_sleep_ms(200))
            return err_set(e, ERR_INTERNAL, true, "stopping while waiting for the lock of %s", obj);
        waited += 200;
    }
}

static void unlock_object(struct run *r, const char *obj)
{
    char key[160];
    snprintf(key, sizeof key, "sfbridge-sync:%s:%s", r->job->connection_id, obj);
    const char *p[1] = {key};
    struct err e = ERR_INIT;
    if (!pg_run(r->d->pg, "SELECT pg_advisory_unlock(hashtextextended($1, 0))", 1, p, &e))
        log_warn("could not release the lock of %s: %s", obj, e.msg);
}

static void free_scratch(struct run *r)
{
    free(r->slot);
    free(r->bulk_idx);
    r->slot = NULL;
    r->bulk_idx = NULL;
}

static bool sync_one(struct run *r, struct obj_run *o, struct err *e)
{
    bool ok = false, locked = false;
    if (!lock_object(r, o->sf_object, e))
        return false;
    locked = true;
    r->o = o;
    if (r->mode == MODE_FORMULAS) {
        /* only the mapped calculated fields are re-read; an object without any costs the describe only */
        if (!sync_describe_calc(r, o, e))
            goto out;
        if (r->deferred) {
            ok = true;
            goto out;
        }
        if (o->ncalc == 0) {
            log_info("sync %s: %s has no mapped formula field: nothing to refresh", r->job->message_id,
                     o->sf_object);
            snprintf(o->state, sizeof o->state, "done");
            ok = true;
            goto out;
        }
    }
    if (!sync_obj_prepare(r, o, e))
        goto out;
    free_scratch(r);
    r->slot = calloc(o->ncore + 1, sizeof *r->slot);
    r->bulk_idx = calloc(o->nsel + 1, sizeof *r->bulk_idx);
    if (!r->slot || !r->bulk_idx) {
        err_set(e, ERR_NOMEM, true, "out of memory");
        goto out;
    }
    snprintf(o->state, sizeof o->state, "running");
    r->o = o;
    r->buf.len = 0;
    r->rows = 0;
    ok = r->mode == MODE_RECONCILE ? sync_reconcile_object(r, o, e)
         : r->mode == MODE_FORMULAS ? sync_formulas_object(r, o, e)
                                    : sync_fetch_object(r, o, e);
    if (ok && !r->deferred) {
        snprintf(o->state, sizeof o->state, "done");
        log_info("sync %s: %s done: fetched %lld, inserted %lld, updated %lld, deleted %lld, unchanged %lld",
                 r->job->message_id, o->sf_object, o->fetched, o->inserted, o->updated, o->deleted, o->unchanged);
    }
out:
    if (pg_in_tx(r->d->pg))
        pg_rollback(r->d->pg);
    if (locked)
        unlock_object(r, o->sf_object);
    sync_obj_cleanup(o);
    return ok;
}

static struct json_object *completion(struct run *r, const char *status, const struct err *run_err)
{
    struct json_object *ev = worker_event_new(r->job);
    json_add_str(ev, "mode", r->mode_name);
    json_add_str(ev, "status", status);
    json_object_object_add(ev, "objects", sync_objects_json(r, false));
    json_add_int(ev, "api_calls", sync_calls(r));
    json_add_int(ev, "duration_ms", sync_now_ms() - r->job->received_ms);
    const struct err *fe = run_err && err_is_set(run_err) ? run_err : NULL;
    if (!strcmp(status, "deferred"))
        fe = &r->defer_err;
    for (size_t i = 0; !fe && i < r->nobjs; i++)
        if (err_is_set(&r->objs[i].err))
            fe = &r->objs[i].err;
    if (fe) {
        struct json_object *er = json_object_new_object();
        json_add_str(er, "code", err_public_code(fe));
        json_add_str(er, "message", fe->msg);
        json_object_object_add(ev, "error", er);
    }
    if (!strcmp(status, "deferred")) {
        char ts[40];
        soql_datetime(r->retry_at_ms, ts, sizeof ts);
        json_add_str(ev, "retry_at", ts);
    }
    return ev;
}

static bool finish(struct run *r, const struct err *run_err, struct json_object **event, struct err *e)
{
    const char *status = "succeeded";
    bool failed = run_err && err_is_set(run_err);
    for (size_t i = 0; i < r->nobjs; i++)
        if (err_is_set(&r->objs[i].err))
            failed = true;
    if (r->deferred)
        status = "deferred";
    else if (failed)
        status = "failed";
    if (run_err && err_is_set(run_err)) {
        /* name the run's error on the objects that did not finish */
        for (size_t i = 0; i < r->nobjs; i++)
            if (strcmp(r->objs[i].state, "done") && !err_is_set(&r->objs[i].err))
                snprintf(r->objs[i].state, sizeof r->objs[i].state, "failed");
    }
    for (size_t i = 0; r->deferred && i < r->nobjs; i++)
        if (!strcmp(r->objs[i].state, "pending") || !strcmp(r->objs[i].state, "running"))
            snprintf(r->objs[i].state, sizeof r->objs[i].state, "deferred");
    struct json_object *ev = completion(r, status, run_err);
    struct pg *pg = r->d->pg;
    if (!pg_begin(pg, e) || !sync_save_run(r, status, e)) {
        pg_rollback(pg);
        json_object_put(ev);
        return false;
    }
    if (run_err && err_is_set(run_err)) {
        const char *p[3] = {r->job->message_id, err_public_code(run_err), run_err->msg};
        if (!pg_run(pg, "UPDATE sync_runs SET error_code = $2, error_message = $3 WHERE request_id = $1", 3, p, e)) {
            pg_rollback(pg);
            json_object_put(ev);
            return false;
        }
    }
    if (!worker_mark_processed(r->d, r->job, "sync.completed", ev, e) || !pg_commit(pg, e)) {
        pg_rollback(pg);
        json_object_put(ev);
        return false;
    }
    log_info("sync %s (%s) %s: %lld api calls", r->job->message_id, r->mode_name, status, sync_calls(r));
    *event = ev;
    return true;
}

static void expired_event(struct run *r)
{
    if (!r->cs.became_expired)
        return;
    struct json_object *ev = conn_status_event(r->job->org_id, r->job->connection_id, r->job->message_id, "expired",
                                               r->cs.expired_reason[0] ? r->cs.expired_reason : NULL, NULL);
    /* stored with the run's result in the inbox: emitted after its commit, again on redelivery */
    worker_queue_event(r->job, "connection.status", r->job->connection_id, ev);
    json_object_put(ev);
    r->cs.became_expired = false;
}

static bool fatal_for_run(const struct err *e)
{
    return e->code == ERR_CONNECTION_EXPIRED || e->code == ERR_CONNECTION_DISABLED || e->code == ERR_AUTH ||
           e->code == ERR_NOT_FOUND || e->code == ERR_CONFIG || e->code == ERR_TLS || e->code == ERR_SIGNATURE;
}

static bool handle(struct job *job, struct deps *d, struct json_object **event, struct err *e)
{
    struct run r;
    memset(&r, 0, sizeof r);
    r.job = job;
    r.d = d;
    r.x = d->ctx;
    bool ok = false;
    struct err run_err = ERR_INIT;
    const char *mode = json_get_str(job->msg, "mode");
    r.mode_name = mode ? mode : "incremental";
    if (!strcmp(r.mode_name, "full"))
        r.mode = MODE_FULL;
    else if (!strcmp(r.mode_name, "reconcile"))
        r.mode = MODE_RECONCILE;
    else if (!strcmp(r.mode_name, "formulas"))
        r.mode = MODE_FORMULAS;
    else
        r.mode = MODE_INCREMENTAL;
    r.cls = r.mode == MODE_INCREMENTAL ? BUDGET_INCREMENTAL : BUDGET_BULK;
    sf_client_reset_calls(r.x->sf);

    if (!mapping_load(d->pg, job->org_id, &r.ms, e))
        goto out;
    if (!plan_objects(&r, e))
        goto out;
    if (!start_run(&r, e))
        goto out;

    bool any = false;
    for (size_t i = 0; i < r.nobjs; i++)
        if (!strcmp(r.objs[i].state, "pending"))
            any = true;
    if (any) {
        struct err ce = ERR_INIT;
        if (!conn_open(&r.cs, d->pg, d->cfg, r.x->sf, job->connection_id, &ce)) {
            expired_event(&r);
            if (ce.retriable) {
                *e = ce;
                goto out;
            }
            run_err = ce;
        } else {
            r.cs_open = true;
            sf_client_reset_calls(r.x->sf); /* a refresh inside conn_open is not a data call */
        }
    }
    for (size_t i = 0; r.cs_open && !r.deferred && i < r.nobjs; i++) {
        struct obj_run *o = &r.objs[i];
        if (strcmp(o->state, "pending"))
            continue;
        struct err oe = ERR_INIT;
        if (sync_one(&r, o, &oe))
            continue;
        expired_event(&r);
        if (oe.retriable) {
            *e = oe;
            goto out;
        }
        log_warn("sync %s: %s failed: %s: %s", job->message_id, o->sf_object, err_public_code(&oe), oe.msg);
        if (fatal_for_run(&oe)) {
            run_err = oe;
            snprintf(o->state, sizeof o->state, "failed");
            break;
        }
        o->err = oe;
        snprintf(o->state, sizeof o->state, "failed");
    }
    ok = finish(&r, &run_err, event, e);
out:
    if (pg_in_tx(d->pg))
        pg_rollback(d->pg);
    if (r.cs_open)
        conn_close(&r.cs);
    free_scratch(&r);
    for (size_t i = 0; i < r.nobjs; i++)
        sync_obj_cleanup(&r.objs[i]);
    free(r.objs);
    pg_buf_free(&r.buf);
    pg_buf_free(&r.attrs);
    mapping_cleanup(&r.ms);
    return ok;
}

static const struct worker_def def = {
    .name = "sfbridge-sync",
    .input_topic = "sync.requested",
    .output_topic = "sync.completed",
    .gate_org = true,
    .gate_connection = true,
    .handle = handle,
    .init = init,
    .cleanup = cleanup,
};

int main(int argc, char **argv) { return worker_run(&def, argc, argv); }
