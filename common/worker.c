/*
 * worker: the shared consume/handle/commit loop. See worker.h.
 * Single-threaded; the only global state is the stop flag.
 */
#include "worker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "pg.h"
#include "sf.h"
#include "conn.h"

static volatile sig_atomic_t stop_flag = 0;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

bool worker_stopping(void) { return stop_flag != 0; }

const volatile sig_atomic_t *worker_stop_flag(void) { return &stop_flag; }

const char *worker_topic(const struct deps *d, const char *logical, char *buf, size_t cap)
{
    return cfg_topic(d->cfg, logical, buf, cap);
}

bool worker_sleep_ms(long ms)
{
    while (ms > 0 && !stop_flag) {
        long step = ms > 100 ? 100 : ms;
        struct timespec ts = {0, step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return !stop_flag;
}

struct sf_client *worker_sf_client(const struct deps *d, struct err *e)
{
    struct sf_options o;
    conn_sf_options(d->cfg, &o);
    struct sf_client *c = sf_client_new(&o, e);
    if (c)
        sf_client_set_cancel(c, &stop_flag);
    return c;
}

void worker_fault_point(const char *point)
{
    const char *f = getenv("SFBRIDGE_FAULT");
    if (f && strcmp(f, point) == 0) {
        log_warn("fault point %s reached: killing this process", point);
        kill(getpid(), SIGKILL);
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct json_object *worker_event_new(const struct job *job)
{
    char id[40], ts[40];
    json_uuid4(id, sizeof id);
    json_now_rfc3339(ts, sizeof ts);
    struct json_object *ev = json_object_new_object();
    json_add_str(ev, "message_id", id);
    json_add_str(ev, "request_id", job->message_id);
    json_add_str(ev, "org_id", job->org_id);
    if (job->connection_id)
        json_add_str(ev, "connection_id", job->connection_id);
    json_add_str(ev, "created_at", ts);
    return ev;
}

static struct json_object *error_obj(const struct err *e)
{
    struct json_object *eo = json_object_new_object();
    json_add_str(eo, "code", err_public_code(e));
    json_add_str(eo, "message", e->msg);
    return eo;
}

struct json_object *worker_failure_event(const char *output_topic, const struct job *job, const struct err *e)
{
    struct json_object *ev = worker_event_new(job);
    if (!strcmp(output_topic, "sync.completed")) {
        json_add_str(ev, "status", "failed");
        json_object_object_add(ev, "objects", json_object_new_object());
        json_add_int(ev, "api_calls", 0);
        json_add_int(ev, "duration_ms", now_ms() - job->received_ms);
    } else if (!strcmp(output_topic, "record.written")) {
        json_add_str(ev, "status", "failed");
        struct json_object *results = json_object_new_array();
        struct json_object *ops = json_get(job->msg, "operations");
        size_t n = ops && json_object_is_type(ops, json_type_array) ? json_object_array_length(ops) : 0;
        for (size_t i = 0; i < n; i++) {
            struct json_object *op = json_object_array_get_idx(ops, i);
            struct json_object *r = json_object_new_object();
            json_add_str(r, "ref", json_get_str(op, "ref"));
            json_add_str(r, "object", json_get_str(op, "object"));
            json_add_str(r, "salesforce_id", NULL);
            json_add_str(r, "platform_id", NULL);
            json_add_str(r, "outcome", e->code == ERR_DELETE_NOT_SUPPORTED ? "refused" : "failed");
            json_object_object_add(r, "error", error_obj(e));
            json_object_array_add(results, r);
        }
        json_object_object_add(ev, "results", results);
        json_add_int(ev, "api_calls", 0);
    } else {
        /* token.refreshed: the request failed; the connection's own state travels on connection.status */
        json_add_str(ev, "status", "failed");
        json_add_str(ev, "reason", e->msg);
        json_add_str(ev, "instance_url", NULL);
    }
    json_object_object_add(ev, "error", error_obj(e));
    return ev;
}

void worker_queue_event(struct job *job, const char *logical_topic, const char *key, struct json_object *event)
{
    if (!job->extras)
        job->extras = json_object_new_array();
    struct json_object *x = json_object_new_object();
    json_add_str(x, "topic", logical_topic);
    json_add_str(x, "key", key);
    json_object_object_add(x, "event", json_object_get(event));
    json_object_array_add(job->extras, x);
}

bool worker_mark_processed(struct deps *d, struct job *job, const char *result_topic, struct json_object *event,
                           struct err *e)
{
    const char *p[7] = {job->message_id, job->topic, job->org_id, job->connection_id, result_topic,
                        event ? json_str(event) : NULL, job->extras ? json_str(job->extras) : "[]"};
    if (!pg_run(d->pg,
                "INSERT INTO processed_messages (message_id, topic, org_id, connection_id, result_topic, result, "
                "extra_events) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb)",
                7, p, e))
        return false;
    job->marked = true;
    return true;
}

bool worker_gate(struct deps *d, const struct job *job, bool need_connection, struct err *e)
{
    const char *p[1] = {job->org_id};
    bool ok = false;
    struct pg_res *r = pg_exec(d->pg, "SELECT salesforce_enabled FROM organizations WHERE org_id = $1", 1, p, e);
    if (!r)
        return false;
    if (pg_res_rows(r) == 0) {
        err_set(e, ERR_NOT_FOUND, false, "unknown org \"%s\"", job->org_id);
        goto out;
    }
    if (strcmp(pg_res_get(r, 0, 0), "t") != 0) {
        err_set(e, ERR_INTEGRATION_DISABLED, false,
                "the Salesforce integration of org \"%s\" is not enabled; a platform admin must enable it",
                job->org_id);
        goto out;
    }
    pg_res_free(&r);
    if (!need_connection) {
        ok = true;
        goto out;
    }
    if (!job->connection_id) {
        err_set(e, ERR_INVALID_MESSAGE, false, "field \"connection_id\": required");
        goto out;
    }
    const char *p2[1] = {job->connection_id};
    r = pg_exec(d->pg, "SELECT org_id, status, COALESCE(status_reason, '') FROM connections WHERE connection_id = $1",
                1, p2, e);
    if (!r)
        goto out;
    if (pg_res_rows(r) == 0) {
        err_set(e, ERR_NOT_FOUND, false, "unknown connection \"%s\"", job->connection_id);
        goto out;
    }
    if (strcmp(pg_res_get(r, 0, 0), job->org_id) != 0) {
        /* never reveal which org owns it */
        err_set(e, ERR_FORBIDDEN, false, "connection \"%s\" does not belong to org \"%s\"", job->connection_id,
                job->org_id);
        goto out;
    }
    const char *status = pg_res_get(r, 0, 1);
    if (!strcmp(status, "expired")) {
        err_set(e, ERR_CONNECTION_EXPIRED, false,
                "connection \"%s\" has expired (%s); the user must reconnect to Salesforce", job->connection_id,
                pg_res_get(r, 0, 2));
        goto out;
    }
    if (!strcmp(status, "disabled")) {
        err_set(e, ERR_CONNECTION_DISABLED, false, "connection \"%s\" is disabled", job->connection_id);
        goto out;
    }
    ok = true;
out:
    pg_res_free(&r);
    return ok;
}

/* Look the message up in the inbox: true + *stored (caller frees) when already processed.
 * A message id recorded for another org or topic is a forgery or a producer bug: it must not
 * see that result, so it is refused (ERR_FORBIDDEN, permanent; the caller dead-letters it). */
static bool inbox_lookup(struct deps *d, const struct job *job, char **topic, char **stored, char **extras,
                         struct err *e)
{
    *topic = *stored = *extras = NULL;
    const char *p[1] = {job->message_id};
    struct pg_res *r = pg_exec(d->pg,
                               "SELECT result_topic, result::text, org_id, topic, extra_events::text "
                               "FROM processed_messages "
                               "WHERE message_id = $1",
                               1, p, e);
    if (!r)
        return false;
    bool found = pg_res_rows(r) == 1;
    if (found) {
        const char *org = pg_res_get(r, 0, 2), *tp = pg_res_get(r, 0, 3);
        if (!org || strcmp(org, job->org_id) != 0 || !tp || strcmp(tp, job->topic) != 0) {
            err_set(e, ERR_FORBIDDEN, false, "message id %s was already used by another org or topic",
                    job->message_id);
            pg_res_free(&r);
            return false;
        }
        const char *t = pg_res_get(r, 0, 0), *s = pg_res_get(r, 0, 1), *x = pg_res_get(r, 0, 4);
        *topic = t ? strdup(t) : NULL;
        *stored = s ? strdup(s) : NULL;
        *extras = x ? strdup(x) : NULL;
    }
    pg_res_free(&r);
    return found;
}

static void dead_letter(struct deps *d, const struct kafka_msg *m, const struct err *why)
{
    char dlq[300], part[16], off[24], size[24];
    snprintf(dlq, sizeof dlq, "%s.dlq", m->topic);
    snprintf(part, sizeof part, "%d", (int)m->partition);
    snprintf(off, sizeof off, "%lld", (long long)m->offset);
    snprintf(size, sizeof size, "%zu", m->len);
    struct kafka_header h[7] = {{"x-error-code", err_public_code(why)},
                                {"x-error", why->msg},
                                {"x-original-topic", m->topic},
                                {"x-original-partition", part},
                                {"x-original-offset", off},
                                {"x-original-size", size},
                                {"x-truncated", "true"}};
    char key[256] = "";
    if (m->key && m->key_len < sizeof key) {
        memcpy(key, m->key, m->key_len);
        key[m->key_len] = '\0';
    }
    const char *payload = m->payload;
    size_t len = m->len, nh = 5;
    long backoff = 200;
    for (;;) {
        struct err e = ERR_INIT;
        if (kafka_produce(d->producer, dlq, key[0] ? key : NULL, payload, len, h, nh, 30000, &e))
            break;
        if (!e.retriable && len > 65536) {
            /* the copy plus its headers is over the broker's size limit: keep the first 64 KiB, say so in
             * the headers, and the original stays readable on the input topic at the offset named there */
            log_error("could not dead-letter message %s[%d]@%lld whole: %s; dead-lettering its first 64 KiB",
                      m->topic, (int)m->partition, (long long)m->offset, e.msg);
            len = 65536;
            nh = 7;
            continue;
        }
        if (!e.retriable) {
            log_error("cannot dead-letter message %s[%d]@%lld: %s; it stays on %s at that offset", m->topic,
                      (int)m->partition, (long long)m->offset, e.msg, m->topic);
            break;
        }
        log_error("could not dead-letter message %s[%d]@%lld: %s; retrying", m->topic, (int)m->partition,
                  (long long)m->offset, e.msg);
        if (!worker_sleep_ms(backoff))
            return;
        backoff = backoff * 2 > 10000 ? 10000 : backoff * 2;
    }
    metrics_count("sfbridge_messages_dead_lettered_total", m->topic, 1);
    log_warn("dead-lettered %s[%d]@%lld to %s: %s: %s", m->topic, (int)m->partition, (long long)m->offset, dlq,
             err_public_code(why), why->msg);
}

/* Produce the output event (logical topic name), retrying until acknowledged or stopping. */
static bool emit(struct deps *d, const char *logical, const char *key, const char *payload)
{
    char topic[256];
    worker_topic(d, logical, topic, sizeof topic);
    long backoff = 200;
    for (;;) {
        struct err e = ERR_INIT;
        if (kafka_produce(d->producer, topic, key, payload, strlen(payload), NULL, 0, 30000, &e))
            return true;
        log_error("could not emit %s event: %s; retrying", topic, e.msg);
        if (!worker_sleep_ms(backoff))
            return false;
        backoff = backoff * 2 > 10000 ? 10000 : backoff * 2;
    }
}

/* Emit queued/stored extra events ([{topic,key,event}], as text or object). */
static bool emit_extras(struct deps *d, struct json_object *extras);

bool worker_emit(struct deps *d, const char *logical_topic, const char *key, struct json_object *event,
                 struct err *e)
{
    char topic[256];
    worker_topic(d, logical_topic, topic, sizeof topic);
    const char *payload = json_str(event);
    return kafka_produce(d->producer, topic, key, payload, strlen(payload), NULL, 0, 30000, e);
}

static bool emit_extras(struct deps *d, struct json_object *extras)
{
    size_t n = extras && json_object_is_type(extras, json_type_array) ? json_object_array_length(extras) : 0;
    for (size_t i = 0; i < n; i++) {
        struct json_object *x = json_object_array_get_idx(extras, i);
        const char *topic = json_get_str(x, "topic"), *key = json_get_str(x, "key");
        struct json_object *ev = json_get(x, "event");
        if (topic && ev && !emit(d, topic, key, json_str(ev)))
            return false;
    }
    return true;
}

static long jitter(long ms)
{
    return ms / 2 + (long)(random() % (ms / 2 + 1));
}

/* One message is handled by one process at a time: after a rebalance the partition's new owner can be
 * handed a message its old owner is still working on. A session advisory lock on the message id makes
 * the second wait; it then finds the result in the inbox and re-emits it instead of racing the first
 * (which would otherwise fail on processed_messages and could leave a half-updated run behind). */
static bool message_lock(struct deps *d, const char *message_id, struct err *e)
{
    const char *p[1] = {message_id};
    for (int waited = 0;; waited++) {
        struct pg_res *r = pg_exec(d->pg, "SELECT pg_try_advisory_lock(hashtextextended('sfbridge-msg:' || $1, 0))",
                                   1, p, e);
        if (!r)
            return false;
        bool got = pg_res_get(r, 0, 0) && !strcmp(pg_res_get(r, 0, 0), "t");
        pg_res_free(&r);
        if (got)
            return true;
        if (waited == 0)
            log_info("message %s is being handled by another process; waiting for it", message_id);
        if (!worker_sleep_ms(100))
            return err_set(e, ERR_INTERNAL, true, "stopping while waiting for message %s", message_id);
    }
}

static void message_unlock(struct deps *d, const char *message_id)
{
    const char *p[1] = {message_id};
    if (pg_in_tx(d->pg))
        pg_rollback(d->pg);
    pg_run(d->pg, "SELECT pg_advisory_unlock(hashtextextended('sfbridge-msg:' || $1, 0))", 1, p, NULL);
}

/* Handle one message to completion. Returns true when its offset may be stored; false with
 * *defer_until_ms > 0 when the handler deferred it (budget exhausted). */
static bool process(const struct worker_def *def, struct deps *d, const struct kafka_msg *m,
                    int64_t *defer_until_ms)
{
    struct err e = ERR_INIT;
    struct json_object *doc = NULL, *event = NULL;
    char *stored_topic = NULL, *stored = NULL, *stored_extras = NULL;
    bool done = false;
    int64_t t0 = now_ms();

    metrics_count("sfbridge_messages_consumed_total", m->topic, 1);
    if (!msg_parse(def->input_topic, m->payload, m->len, &doc, &e)) {
        dead_letter(d, m, &e);
        metrics_count("sfbridge_messages_failed_total", m->topic, 1);
        return !worker_stopping();
    }

    char key[128];
    struct job job = {0};
    job.topic = def->input_topic;
    job.partition = m->partition;
    job.offset = m->offset;
    job.payload = m->payload;
    job.len = m->len;
    job.msg = doc;
    job.message_id = json_get_str(doc, "message_id");
    job.org_id = json_get_str(doc, "org_id");
    job.connection_id = json_get_str(doc, "connection_id");
    job.received_ms = t0;
    snprintf(key, sizeof key, "%s", job.connection_id ? job.connection_id : job.org_id);

    long backoff = 200;
    bool locked = false;
    for (int attempt = 1;; attempt++) {
        err_clear(&e);
        if (!pg_ensure(d->pg, &e))
            goto retry;
        /* (re)taken each attempt: a lost connection releases a session lock */
        if (locked)
            message_unlock(d, job.message_id);
        locked = false;
        if (!message_lock(d, job.message_id, &e))
            goto retry;
        locked = true;
        if (inbox_lookup(d, &job, &stored_topic, &stored, &stored_extras, &e)) {
            log_info("message %s was already processed; re-emitting its result", job.message_id);
            done = !stored || emit(d, stored_topic ? stored_topic : def->output_topic, key, stored);
            if (done && stored_extras) {
                struct err xe = ERR_INIT;
                struct json_object *x = json_parse(stored_extras, strlen(stored_extras), &xe);
                done = emit_extras(d, x);
                json_object_put(x);
            }
            goto out;
        }
        if (err_is_set(&e) && !e.retriable) {
            dead_letter(d, m, &e);
            done = !worker_stopping();
            goto out;
        }
        if (err_is_set(&e))
            goto retry;
        if ((def->gate_org || def->gate_connection) && !worker_gate(d, &job, def->gate_connection, &e)) {
            if (e.retriable)
                goto retry;
            goto permanent;
        }
        job.marked = false;
        json_object_put(job.extras); /* a retried attempt queues its own */
        job.extras = NULL;
        if (def->handle(&job, d, &event, &e)) {
            if (!job.marked) {
                /* handler did not record itself: record now (its effects are idempotent) */
                struct err me = ERR_INIT;
                if (!pg_begin(d->pg, &me) || !worker_mark_processed(d, &job, def->output_topic, event, &me) ||
                    !pg_commit(d->pg, &me)) {
                    pg_rollback(d->pg);
                    json_object_put(event);
                    event = NULL;
                    e = me;
                    goto retry;
                }
            }
            worker_fault_point("after_commit");
            done = emit(d, def->output_topic, key, json_str(event)) && emit_extras(d, job.extras);
            goto out;
        }
        if (pg_in_tx(d->pg))
            pg_rollback(d->pg);
        if (event) {
            json_object_put(event);
            event = NULL;
        }
        if (e.code == ERR_LIMIT_EXCEEDED && job.retry_at_ms > 0) {
            int64_t cap = now_ms() + 15 * 60 * 1000;
            *defer_until_ms = job.retry_at_ms < cap ? job.retry_at_ms : cap;
            log_info("message %s deferred until %lld: %s", job.message_id, (long long)*defer_until_ms, e.msg);
            metrics_count("sfbridge_messages_deferred_total", m->topic, 1);
            goto out;
        }
        if (e.retriable)
            goto retry;
    permanent:
        if (pg_in_tx(d->pg))
            pg_rollback(d->pg);
        log_warn("message %s on %s failed: %s: %s", job.message_id, m->topic, err_public_code(&e), e.msg);
        metrics_count("sfbridge_messages_failed_total", m->topic, 1);
        event = def->failure_event ? def->failure_event(&job, &e) : worker_failure_event(def->output_topic, &job, &e);
        {
            struct err me = ERR_INIT;
            if (!pg_begin(d->pg, &me) || !worker_mark_processed(d, &job, def->output_topic, event, &me) ||
                !pg_commit(d->pg, &me)) {
                pg_rollback(d->pg);
                json_object_put(event);
                event = NULL;
                if (!me.retriable) {
                    /* the failure cannot even be recorded (a bug or bad data): keep the original on the
                     * DLQ with both reasons rather than retrying forever */
                    log_error("could not record the failure of message %s: %s", job.message_id, me.msg);
                    dead_letter(d, m, &e);
                    done = !worker_stopping();
                    goto out;
                }
                e = me;
                goto retry;
            }
        }
        worker_fault_point("after_commit");
        done = emit(d, def->output_topic, key, json_str(event)) && emit_extras(d, job.extras);
        goto out;
    retry:
        if (pg_in_tx(d->pg))
            pg_rollback(d->pg);
        log_warn("message %s: retriable failure (attempt %d): %s; retrying in about %ld ms", job.message_id, attempt,
                 e.msg, backoff);
        metrics_count("sfbridge_retries_total", m->topic, 1);
        if (!worker_sleep_ms(jitter(backoff)))
            goto out; /* stopping: leave the offset, the message will be redelivered */
        long cap = d->cfg->max_retry_backoff_ms;
        backoff = backoff * 2 > cap ? cap : backoff * 2;
        free(stored_topic);
        free(stored);
        free(stored_extras);
        stored_topic = stored = stored_extras = NULL;
    }
out:
    if (locked)
        message_unlock(d, job.message_id);
    metrics_observe_ms("sfbridge_handler_duration_seconds", m->topic, now_ms() - t0);
    free(stored_topic);
    free(stored);
    free(stored_extras);
    json_object_put(job.extras);
    json_object_put(event);
    json_object_put(doc);
    return done;
}

static void usage(const struct worker_def *def)
{
    printf("usage: %s [--help]\n\n"
           "Consumes %s, produces %s. Configuration comes from the environment\n"
           "(see `sfbridge config`). Logs are JSON lines on stderr. SIGTERM drains and exits 0.\n",
           def->name, def->input_topic, def->output_topic);
}

int worker_run(const struct worker_def *def, int argc, char **argv)
{
    struct cfg cfg;
    struct deps d = {0};
    struct kafka_consumer *consumer = NULL;
    struct err e = ERR_INIT;
    int rc = 1;
    char group[256], client_id[300], host[128] = "host";

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(def);
            return 0;
        }
        fprintf(stderr, "%s: unknown argument \"%s\" (try --help)\n", def->name, argv[i]);
        return 64;
    }
    log_init(def->name, getenv("SFBRIDGE_LOG_LEVEL"));
    cfg_load_or_exit(&cfg);
    srandom((unsigned)(getpid() ^ time(NULL)));

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    d.cfg = &cfg;
    d.worker_name = def->name;
    if (!msg_init(&e)) {
        log_error("cannot start: %s", e.msg);
        return 70;
    }
    d.pg = pg_open(cfg.pg_dsn, 60000, &e);
    if (!d.pg) {
        log_error("cannot start: %s", e.msg);
        goto out;
    }
    if (!pg_check_schema(d.pg, SFBRIDGE_SCHEMA_VERSION, &e)) {
        log_error("%s", e.msg);
        rc = 78;
        goto out;
    }
    metrics_start(cfg.metrics_addr, def->name);
    gethostname(host, sizeof host - 1);
    snprintf(client_id, sizeof client_id, "%s-%s-%d", def->name, host, (int)getpid());
    d.producer = kafka_producer_new(cfg.kafka_brokers, client_id, &e);
    if (!d.producer) {
        log_error("cannot start: %s", e.msg);
        goto out;
    }
    if (def->init && !def->init(&d, &e)) {
        log_error("cannot start: %s", e.msg);
        rc = e.code == ERR_CONFIG ? 78 : 1;
        goto out;
    }
    if (*cfg.group_id)
        snprintf(group, sizeof group, "%s", cfg.group_id);
    else
        snprintf(group, sizeof group, "%s", def->name);
    char in_topic[256];
    cfg_topic(&cfg, def->input_topic, in_topic, sizeof in_topic);
    const char *topics[2] = {in_topic, NULL};
    consumer = kafka_consumer_new(cfg.kafka_brokers, group, topics, client_id, &e);
    if (!consumer) {
        log_error("cannot start: %s", e.msg);
        goto out;
    }
    metrics_set_ready(true);
    log_info("consuming %s as group %s", in_topic, group);

    struct deferred {
        char topic[256];
        int32_t partition;
        int64_t offset;
        int64_t resume_at;
    } deferred[64];
    int ndeferred = 0;
    while (!worker_stopping()) {
        struct kafka_msg m;
        struct err pe = ERR_INIT;
        for (int i = 0; i < ndeferred; i++) {
            if (deferred[i].resume_at > now_ms())
                continue;
            struct err re = ERR_INIT;
            if (!kafka_consumer_resume(consumer, deferred[i].topic, deferred[i].partition, deferred[i].offset, &re))
                log_warn("%s", re.msg);
            else
                log_info("resuming %s[%d] at offset %lld", deferred[i].topic, (int)deferred[i].partition,
                         (long long)deferred[i].offset);
            deferred[i--] = deferred[--ndeferred];
        }
        int got = kafka_consumer_poll(consumer, 500, &m, &pe);
        if (got < 0) {
            log_error("%s", pe.msg);
            if (!pe.retriable)
                goto out;
            worker_sleep_ms(1000);
            continue;
        }
        if (got == 0)
            continue;
        long long lag = kafka_consumer_lag(consumer, &m);
        if (lag >= 0) {
            char tp[300];
            snprintf(tp, sizeof tp, "%s:%d", m.topic, (int)m.partition);
            metrics_gauge_l("sfbridge_consumer_lag_messages", "partition", tp, (double)lag);
        }
        bool paused = false;
        for (int i = 0; i < ndeferred && !paused; i++)
            paused = deferred[i].partition == m.partition && !strcmp(deferred[i].topic, m.topic);
        if (paused) {
            /* fetched before the pause took effect: it comes again after the rewind */
            kafka_msg_release(&m);
            continue;
        }
        int64_t defer_until = 0;
        if (process(def, &d, &m, &defer_until)) {
            struct err se = ERR_INIT;
            if (!kafka_consumer_store(consumer, &m, &se))
                log_warn("%s", se.msg);
        } else if (defer_until > 0 && ndeferred < (int)(sizeof deferred / sizeof deferred[0])) {
            struct err pe2 = ERR_INIT;
            struct deferred *df = &deferred[ndeferred];
            snprintf(df->topic, sizeof df->topic, "%s", m.topic);
            df->partition = m.partition;
            df->offset = m.offset;
            df->resume_at = defer_until;
            if (kafka_consumer_pause(consumer, &m, &pe2))
                ndeferred++;
            else
                log_warn("%s; the message will be retried in place", pe2.msg);
        }
        kafka_msg_release(&m);
    }
    log_info("stopping: draining and committing offsets");
    rc = 0;
out:
    metrics_set_ready(false);
    kafka_consumer_close(&consumer);
    if (def->cleanup)
        def->cleanup(&d);
    kafka_producer_free(&d.producer);
    pg_close(&d.pg);
    metrics_stop();
    msg_cleanup();
    if (rc == 0)
        log_info("stopped");
    return rc;
}
