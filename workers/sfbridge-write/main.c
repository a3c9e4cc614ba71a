/*
 * sfbridge-write: consumes record.write, produces record.written.
 *
 * Per message (the worker loop has already validated it, checked the inbox
 * and the org/connection gates):
 *   1. plan (plan.c): every operation mapped through the org's export
 *      mappings; unmapped fields, unknown ids and deletes fail or are refused
 *      per operation before anything is sent; with all_or_none (the default)
 *      one such failure stops the whole message (PROCESSING_HALTED);
 *   2. write_intents for every operation, committed before the first call
 *      (an operation that will be created gets its platform id here, and a
 *      retry reuses it: creates are upserts on the org's external-id field
 *      valued from the platform id, so a retry after a crash finds the record
 *      instead of duplicating it);
 *   3. calls: the whole message as ONE composite request when it fits (25
 *      subrequests: operations plus InteractionAttendee records), otherwise
 *      sObject Collections of 200 records per (level, object, kind), parents
 *      before children; each call is preceded by a budget check and by
 *      marking its intents `sent`, and followed by ONE transaction with the
 *      intents' outcome, the local rows and the audit rows — plus, after the
 *      last call, processed_messages with the record.written event;
 *   3b. an org without an external-id field: before the creates, one query
 *      per object and match fields looks for existing records by the match
 *      keys; a found one is updated instead, and a create an earlier attempt
 *      already sent with no match key to look for fails OUTCOME_UNKNOWN
 *      (match.c) — so a retry never re-POSTs blindly;
 *   4. deferral: budget exhausted or 403 REQUEST_LIMIT_EXCEEDED -> a
 *      record.written `deferred` with retry_at is emitted (once per request)
 *      and the handler returns ERR_LIMIT_EXCEEDED with job->retry_at_ms: the
 *      loop keeps the message (offset not stored), pauses and rewinds only
 *      its partition and redelivers it at retry_at, while other partitions
 *      keep flowing; calls already made are not repeated (their intents are
 *      final), so nothing is lost or sent twice, and the connection's later
 *      writes stay behind it in order.
 *   5. lock errors per record: Salesforce answers UNABLE_TO_LOCK_ROW inside a
 *      200 response too (statusCode of a collection record, errorCode of a
 *      composite subrequest), which sf_call cannot see. After such a call the
 *      outcomes of the other records are committed and only the locked records
 *      are sent again (with all_or_none, the records their failure rolled back
 *      or halted too: for a composite that is the whole composite), after a
 *      jittered exponential backoff (base 200 ms, doubling, capped at
 *      SFBRIDGE_MAX_BACKOFF_MS, in [d/2, d]), at most LOCK_ATTEMPTS calls in
 *      all; each re-send is budget-checked, marks its intents sent again
 *      (attempts + 1) and counts in api_calls. They are external-id upserts
 *      (or creates Salesforce has just refused), so a re-send creates no
 *      duplicate. After the last attempt they fail with UNABLE_TO_LOCK_ROW.
 *      One audit row per record, with its final outcome.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "budget.h"
#include "conn.h"
#include "json.h"
#include "log.h"
#include "pg.h"
#include "sf.h"
#include "worker.h"
#include "write.h"

#define COLLECTION_MAX 200
#define COMPOSITE_MAX 25
#define LOCK_ATTEMPTS 5       /* calls in all for records refused with UNABLE_TO_LOCK_ROW */
#define LOCK_BACKOFF_BASE_MS 200

struct write_ctx {
    struct sf_client *sf;
};

static bool wi_init(struct deps *d, struct err *e)
{
    struct write_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return err_set(e, ERR_NOMEM, false, "out of memory");
    unsigned char key[32];
    if (!conn_key(d->cfg, key, e)) {
        free(c);
        return false;
    }
    c->sf = worker_sf_client(d, e); /* stops backing off when the worker is asked to stop */
    if (!c->sf) {
        free(c);
        return false;
    }
    d->ctx = c;
    return true;
}

static void wi_cleanup(struct deps *d)
{
    struct write_ctx *c = d->ctx;
    if (!c)
        return;
    sf_client_free(&c->sf);
    free(c);
    d->ctx = NULL;
}

static enum budget_class class_of(const char *source)
{
    return source && (!strcmp(source, "chat") || !strcmp(source, "meeting_notes")) ? BUDGET_INTERACTIVE
                                                                                   : BUDGET_WORKFLOW;
}

static bool pending(const struct wop *o) { return !o->done && o->kind != K_NONE; }

static int count_pending(const struct wmsg *m, int *subrequests)
{
    int n = 0, subs = 0;
    for (int i = 0; i < m->nops; i++)
        if (pending(&m->ops[i])) {
            n++;
            subs += 1 + m->ops[i].ncontacts;
        }
    if (subrequests)
        *subrequests = subs;
    return n;
}

/* all_or_none: once one operation failed, nothing else is sent. */
static void halt_rest(struct wmsg *m, const struct wop *cause)
{
    for (int i = 0; i < m->nops; i++) {
        struct wop *o = &m->ops[i];
        if (pending(o))
            wop_fail(o, "PROCESSING_HALTED", "not sent: operation \"%s\" of this all-or-none request failed (%s)",
                     cause->ref, cause->err_code);
    }
}

static const struct wop *first_failure(const struct wmsg *m)
{
    for (int i = 0; i < m->nops; i++)
        if (m->ops[i].done && m->ops[i].outcome && strcmp(m->ops[i].outcome, "created") &&
            strcmp(m->ops[i].outcome, "updated"))
            return &m->ops[i];
    return NULL;
}

/* An operation whose parent failed (or was never written) cannot be linked to it. */
static void fail_orphans(struct wmsg *m)
{
    for (int i = 0; i < m->nops; i++) {
        struct wop *o = &m->ops[i];
        if (!pending(o))
            continue;
        struct wlink *ls[2] = {o->has_company ? &o->company : NULL, o->has_deal ? &o->deal : NULL};
        for (int k = 0; k < 2 + o->ncontacts; k++) {
            struct wlink *l = k < 2 ? ls[k] : &o->contacts[k - 2];
            if (!l || l->op < 0)
                continue;
            const struct wop *t = &m->ops[l->op];
            if (t->done && !t->sf_id[0])
                wop_fail(o, "INVALID_LINK", "not sent: the linked operation \"%s\" failed", t->ref);
        }
    }
}

/* Choose the next collection call: the lowest level with pending operations whose parents are done,
 * first (object, kind) group there, at most 200. */
static bool select_collection(struct wmsg *m, const char **sf_object, enum wkind *kind)
{
    int level = -1;
    for (int i = 0; i < m->nops; i++)
        if (pending(&m->ops[i]) && (level < 0 || m->ops[i].level < level))
            level = m->ops[i].level;
    if (level < 0)
        return false;
    const struct wop *lead = NULL;
    int n = 0;
    for (int i = 0; i < m->nops; i++) {
        struct wop *o = &m->ops[i];
        o->in_call = false;
        if (!pending(o) || o->level != level)
            continue;
        if (o->ncontacts) {
            wop_fail(o, "TOO_LARGE",
                     "operation \"%s\": an Activity with contacts is written in a bundle of at most %d "
                     "subrequests; split this message",
                     o->ref, COMPOSITE_MAX);
            continue;
        }
        if (!lead)
            lead = o;
        if (n < COLLECTION_MAX && o->kind == lead->kind && !strcmp(o->om->sf_object, lead->om->sf_object)) {
            o->in_call = true;
            n++;
        }
    }
    if (!lead)
        return select_collection(m, sf_object, kind);
    *sf_object = lead->om->sf_object;
    *kind = lead->kind;
    return true;
}

static bool is_lock(const struct wop *o) { return o->done && !strcmp(o->err_code, "UNABLE_TO_LOCK_ROW"); }

static bool is_rolled_back(const struct wop *o)
{
    return o->done && (!strcmp(o->err_code, "ALL_OR_NONE_OPERATION_ROLLED_BACK") ||
                       !strcmp(o->err_code, "PROCESSING_HALTED"));
}

/* After a call: when operations of it were refused with UNABLE_TO_LOCK_ROW, make them pending again
 * for a re-send — together with the ones their failure rolled back or halted (all-or-none, or a
 * composite subrequest that referred to them). With all_or_none, only when nothing else of the call
 * failed (the message fails anyway). Leaves in_call set on exactly those; returns their number. */
static int lock_resend_set(struct wmsg *m)
{
    int lock = 0, other = 0, n = 0;
    for (int i = 0; i < m->nops; i++) {
        const struct wop *o = &m->ops[i];
        if (!o->in_call || !o->done || !strcmp(o->outcome, "created") || !strcmp(o->outcome, "updated"))
            continue;
        if (is_lock(o))
            lock++;
        else if (!is_rolled_back(o))
            other++;
    }
    if (!lock || (m->all_or_none && other))
        return 0;
    for (int i = 0; i < m->nops; i++) {
        struct wop *o = &m->ops[i];
        if (o->in_call && (is_lock(o) || is_rolled_back(o))) {
            o->done = false;
            o->outcome = NULL;
            o->err_code[0] = o->err_msg[0] = '\0';
            json_object_put(o->err_fields);
            o->err_fields = NULL;
            n++;
        } else {
            o->in_call = false;
        }
    }
    return n;
}

/* Jittered exponential backoff before the re-send after `attempt` calls: d = min(cap, base * 2^(attempt-1)),
 * a wait in [d/2, d]. */
static long lock_backoff_ms(const struct deps *d, int attempt)
{
    static unsigned long long rng;
    long cap = d->cfg->max_retry_backoff_ms > 0 ? d->cfg->max_retry_backoff_ms : 30000, b = LOCK_BACKOFF_BASE_MS;
    for (int i = 1; i < attempt && b < cap; i++)
        b *= 2;
    if (b > cap)
        b = cap;
    if (!rng) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        rng = ((unsigned long long)ts.tv_nsec << 20) ^ (unsigned long long)ts.tv_sec ^
              ((unsigned long long)getpid() << 40) ^ 0x9e3779b97f4a7c15ULL;
    }
    rng ^= rng >> 12; /* xorshift64*: jitter only */
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return b / 2 + (long)((rng * 2685821657736338717ULL) % (unsigned long long)(b / 2 + 1));
}

static void iso_ms(long long ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Emit `deferred` once per request (marked on its pending intents), then ask the loop to retry later. */
static bool defer(struct job *job, struct deps *d, struct wmsg *m, long long retry_at_ms, const char *why,
                  struct err *e)
{
    char at[40];
    struct err de = ERR_INIT;
    iso_ms(retry_at_ms, at, sizeof at);
    const char *p[2] = {m->request_id, why};
    struct pg_res *r = pg_exec(d->pg,
                               "UPDATE write_intents SET error_code = 'LIMIT_EXCEEDED', error_message = $2, "
                               "updated_at = now() WHERE request_id = $1::uuid AND state IN ('pending', 'sent') "
                               "AND error_code IS DISTINCT FROM 'LIMIT_EXCEEDED'",
                               2, p, &de);
    bool first = r && pg_res_affected(r) > 0;
    pg_res_free(&r);
    if (first) {
        struct json_object *ev = worker_event_new(job), *er = json_object_new_object();
        json_add_str(ev, "status", "deferred");
        json_object_object_add(ev, "results", json_object_new_array());
        json_add_int(ev, "api_calls", m->api_calls);
        json_add_str(ev, "retry_at", at);
        json_add_str(er, "code", "LIMIT_EXCEEDED");
        json_add_str(er, "message", why);
        json_object_object_add(ev, "error", er);
        if (!worker_emit(d, "record.written", job->connection_id, ev, &de))
            log_warn("could not emit the deferred record.written of %s: %s", m->request_id, de.msg);
        json_object_put(ev);
    }
    log_info("write %s deferred until %s: %s", m->request_id, at, why);
    job->retry_at_ms = retry_at_ms; /* the loop pauses this partition until then, others keep flowing */
    return err_set(e, ERR_LIMIT_EXCEEDED, true, "%s; the write is kept and retried (not before %s)", why, at);
}

static bool commit_outcomes(struct job *job, struct deps *d, struct wmsg *m, bool last, struct json_object **event,
                            struct err *e)
{
    bool *was = calloc((size_t)m->nops + 1, sizeof *was);
    if (!was)
        return err_set(e, ERR_NOMEM, true, "out of memory");
    for (int i = 0; i < m->nops; i++)
        was[i] = m->ops[i].recorded;
    if (!pg_begin(d->pg, e))
        goto fail;
    if (!write_record_outcomes(d->pg, m, NULL, e))
        goto fail;
    if (last) {
        *event = write_event(job, m);
        if (!worker_mark_processed(d, job, "record.written", *event, e))
            goto fail;
    }
    if (!pg_commit(d->pg, e))
        goto fail;
    free(was);
    return true;
fail:
    pg_rollback(d->pg);
    if (last) {
        json_object_put(*event);
        *event = NULL;
    }
    /* nothing of this transaction was stored */
    for (int i = 0; i < m->nops; i++)
        m->ops[i].recorded = was[i];
    free(was);
    return false;
}

/* One call for the operations with in_call set — and its re-sends for the records Salesforce refused with
 * UNABLE_TO_LOCK_ROW inside its answer (see 5. above). false with e: the handler stops (deferred, retriable,
 * or a commit failed). */
static bool send_call(struct job *job, struct deps *d, struct wmsg *m, struct conn_session *s, bool composite,
                      const char *sf_object, enum wkind kind, struct json_object **event, struct err *e)
{
    for (int attempt = 1;; attempt++) {
        long long retry_at = 0;
        struct err be = ERR_INIT;
        if (!budget_check(d->pg, d->cfg, m->org_id, s->sf_org_id[0] ? s->sf_org_id : NULL, class_of(m->source), 1,
                          &retry_at, &be)) {
            if (be.code == ERR_LIMIT_EXCEEDED)
                return defer(job, d, m, retry_at, be.msg, e);
            *e = be;
            return false;
        }
        if (!pg_begin(d->pg, e) || !write_intents_mark_sent(d->pg, m, e) || !pg_commit(d->pg, e))
            return false;
        struct err ce = ERR_INIT;
        bool sent = composite ? write_send_composite(s, m, &ce) : write_send_collection(s, m, sf_object, kind, &ce);
        worker_fault_point("after_sf_write");
        if (s->became_expired) {
            struct err xe = ERR_INIT;
            struct json_object *st =
                conn_status_event(job->org_id, s->connection_id, job->message_id, "expired", s->expired_reason, NULL);
            if (!worker_emit(d, "connection.status", s->connection_id, st, &xe))
                log_warn("could not emit connection.status: %s", xe.msg);
            json_object_put(st);
            s->became_expired = false;
        }
        if (!sent) {
            if (ce.code == ERR_LIMIT_EXCEEDED)
                return defer(job, d, m, (long long)time(NULL) * 1000 + (long long)d->cfg->defer_seconds * 1000,
                             "Salesforce answered REQUEST_LIMIT_EXCEEDED", e);
            if (ce.retriable) {
                *e = ce;
                return false;
            }
            /* the call as a whole was refused: its operations failed with that error */
            for (int i = 0; i < m->nops; i++)
                if (m->ops[i].in_call && pending(&m->ops[i]))
                    wop_fail(&m->ops[i], err_public_code(&ce), "%s", ce.msg);
        }
        if (attempt >= LOCK_ATTEMPTS)
            return true; /* the locked records keep UNABLE_TO_LOCK_ROW */
        int nlock = 0;
        for (int i = 0; i < m->nops; i++)
            nlock += m->ops[i].in_call && is_lock(&m->ops[i]);
        if (!lock_resend_set(m))
            return true;
        /* a re-sent record linked to one that failed otherwise cannot be written */
        fail_orphans(m);
        int again = 0;
        for (int i = 0; i < m->nops; i++) {
            if (m->ops[i].in_call && !pending(&m->ops[i]))
                m->ops[i].in_call = false;
            again += m->ops[i].in_call;
        }
        /* what Salesforce did with the others is committed before the wait */
        if (!commit_outcomes(job, d, m, false, event, e))
            return false;
        if (!again)
            return true;
        long ms = lock_backoff_ms(d, attempt);
        log_warn("write %s: %d records refused with UNABLE_TO_LOCK_ROW; sending %d again in %ld ms (call %d of %d)",
                 m->request_id, nlock, again, ms, attempt + 1, LOCK_ATTEMPTS);
        if (!worker_sleep_ms(ms))
            return err_set(e, ERR_INTERNAL, true, "stopping before re-sending %d records of request %s", again,
                           m->request_id);
    }
}

/* One request is handled by one worker at a time: two replicas that both got it (a rebalance, a replay
 * group) would otherwise both send it. A session advisory lock on the request id, taken before anything
 * is read and released on every exit (a crash releases it with the connection). Waits while another
 * worker holds it; a stop request ends the wait (retriable: the message is redelivered). */
#define REQUEST_LOCK_SQL "SELECT pg_try_advisory_lock(hashtextextended($1, 0))"
#define REQUEST_UNLOCK_SQL "SELECT pg_advisory_unlock(hashtextextended($1, 0))"

static bool lock_request(struct pg *pg, const char *request_id, struct err *e)
{
    const char *p[1] = {request_id};
    for (int tries = 0;; tries++) {
        struct pg_res *r = pg_exec(pg, REQUEST_LOCK_SQL, 1, p, e);
        if (!r)
            return false;
        bool got = pg_res_rows(r) == 1 && !strcmp(pg_res_get(r, 0, 0), "t");
        pg_res_free(&r);
        if (got)
            return true;
        if (tries == 0)
            log_info("record.write %s is being handled by another worker; waiting for it", request_id);
        if (!worker_sleep_ms(100))
            return err_set(e, ERR_INTERNAL, true, "stopping while waiting for request %s", request_id);
    }
}

static void unlock_request(struct pg *pg, const char *request_id)
{
    struct err e = ERR_INIT;
    const char *p[1] = {request_id};
    if (pg_in_tx(pg))
        pg_rollback(pg); /* an error path may leave an aborted transaction behind */
    if (!pg_run(pg, REQUEST_UNLOCK_SQL, 1, p, &e))
        log_warn("could not release the lock of request %s: %s", request_id, e.msg);
}

/* The worker that held the lock may have finished the request meanwhile: its stored result is ours. */
static bool finished_meanwhile(struct job *job, struct deps *d, struct json_object **event, bool *found,
                               struct err *e)
{
    const char *p[2] = {job->message_id, job->org_id};
    *found = false;
    struct pg_res *r = pg_exec(d->pg,
                               "SELECT result::text FROM processed_messages WHERE message_id = $1 AND org_id = $2 "
                               "AND topic = 'record.write'",
                               2, p, e);
    if (!r)
        return false;
    if (pg_res_rows(r) == 1 && !pg_res_isnull(r, 0, 0)) {
        const char *t = pg_res_get(r, 0, 0);
        *event = json_parse(t, strlen(t), e);
        if (!*event) {
            pg_res_free(&r);
            return false;
        }
        *found = true;
        job->marked = true; /* already recorded by the other worker */
        log_info("record.write %s was finished by another worker; re-emitting its result", job->message_id);
    }
    pg_res_free(&r);
    return true;
}

static bool handle(struct job *job, struct deps *d, struct json_object **event, struct err *e)
{
    struct write_ctx *ctx = d->ctx;
    struct wmsg m;
    struct conn_session s;
    bool opened = false, ok = false, locked = false;
    memset(&m, 0, sizeof m);
    memset(&s, 0, sizeof s);
    m.msg = job->msg;
    m.request_id = job->message_id;
    m.org_id = job->org_id;
    m.connection_id = job->connection_id;
    m.actor = json_get_str(job->msg, "actor");
    m.source = json_get_str(job->msg, "source");
    m.all_or_none = json_get_bool(job->msg, "all_or_none", true);

    if (!lock_request(d->pg, m.request_id, e))
        goto out;
    locked = true;
    bool finished = false;
    if (!finished_meanwhile(job, d, event, &finished, e))
        goto out;
    if (finished) {
        ok = true;
        goto out;
    }
    if (!write_plan(d->pg, &m, e) || !write_intents_load(d->pg, &m, e))
        goto out;
    const struct wop *bad = first_failure(&m);
    if (m.all_or_none && bad)
        halt_rest(&m, bad);

    if (count_pending(&m, NULL) > 0) {
        /* the intents (and the platform ids of new records) exist before anything reaches Salesforce */
        if (!pg_begin(d->pg, e) || !write_intents_insert(d->pg, &m, e) || !pg_commit(d->pg, e))
            goto out;
        if (!conn_open(&s, d->pg, d->cfg, ctx->sf, job->connection_id, e))
            goto out;
        opened = true;
        sf_client_reset_calls(ctx->sf);
    }
    int nq = m.ext_field ? 0 : write_match_queries(&m);
    if (nq > 0) {
        /* no external-id field: look for the records before creating them (match.c) */
        long long retry_at = 0;
        struct err be = ERR_INIT, qe = ERR_INIT;
        if (!budget_check(d->pg, d->cfg, m.org_id, s.sf_org_id[0] ? s.sf_org_id : NULL, class_of(m.source), nq,
                          &retry_at, &be)) {
            if (be.code == ERR_LIMIT_EXCEEDED)
                defer(job, d, &m, retry_at, be.msg, e);
            else
                *e = be;
            goto out;
        }
        if (!write_match_remote(&s, &m, &qe)) {
            if (qe.code == ERR_LIMIT_EXCEEDED)
                defer(job, d, &m, (long long)time(NULL) * 1000 + (long long)d->cfg->defer_seconds * 1000,
                      "Salesforce answered REQUEST_LIMIT_EXCEEDED", e);
            else
                *e = qe;
            goto out;
        }
        bad = first_failure(&m);
        if (m.all_or_none && bad)
            halt_rest(&m, bad);
    }
    bool first_call = true;
    while (count_pending(&m, NULL) > 0) {
        int subs = 0;
        int n = count_pending(&m, &subs);
        bool composite = first_call && n > 0 && subs <= COMPOSITE_MAX;
        const char *sf_object = NULL;
        enum wkind kind = K_NONE;
        fail_orphans(&m);
        if (composite) {
            for (int i = 0; i < m.nops; i++)
                m.ops[i].in_call = pending(&m.ops[i]);
        } else if (!select_collection(&m, &sf_object, &kind)) {
            break;
        }
        first_call = false;
        int in_call = 0;
        for (int i = 0; i < m.nops; i++)
            in_call += m.ops[i].in_call && pending(&m.ops[i]);
        if (!in_call)
            continue;
        if (!send_call(job, d, &m, &s, composite, sf_object, kind, event, e))
            goto out;
        for (int i = 0; i < m.nops; i++)
            m.ops[i].in_call = false;
        bad = first_failure(&m);
        if (m.all_or_none && bad)
            halt_rest(&m, bad);
        fail_orphans(&m);
        bool last = count_pending(&m, NULL) == 0;
        if (!commit_outcomes(job, d, &m, last, event, e))
            goto out;
        if (last)
            break;
    }
    if (!*event && !commit_outcomes(job, d, &m, true, event, e))
        goto out;
    log_info("record.write %s: %d operations, %lld Salesforce calls", m.request_id, m.nops, m.api_calls);
    ok = true;
out:
    if (opened) {
        struct err fe = ERR_INIT;
        if (!conn_flush_usage(&s, &fe))
            log_warn("could not record api usage: %s", fe.msg);
        conn_close(&s);
    }
    if (locked)
        unlock_request(d->pg, m.request_id);
    write_msg_cleanup(&m);
    return ok;
}

static const struct worker_def def = {
    .name = "sfbridge-write",
    .input_topic = "record.write",
    .output_topic = "record.written",
    .gate_org = true,
    .gate_connection = true,
    .handle = handle,
    .init = wi_init,
    .cleanup = wi_cleanup,
};

int main(int argc, char **argv) { return worker_run(&def, argc, argv); }
