/*
 * sfbridge-scheduler: publishes sync.requested from PostgreSQL.
 *
 * Once a second, the leader:
 *   1. gives every connected connection of an enabled org the default
 *      schedules it lacks: `incremental` every 900 s (due at once) and
 *      `formulas` every 86400 s (first due a day later) — an admin changes
 *      schedules.interval_seconds / enabled per connection and kind;
 *   2. publishes sync.requested (requested_by "scheduler", mode = the
 *      schedule's kind) for each due schedule and moves next_run_at on;
 *   3. re-requests every deferred sync run whose retry_at has come, for the
 *      objects that did not finish, exactly once (sync_runs.resumed_by).
 * Leader election: pg_try_advisory_lock on a dedicated connection; the lock
 * dies with that connection, so a second instance takes over within about a
 * second when the first one dies. A publish is acknowledged by the broker
 * before the row is updated, so a crash in between can only repeat a request
 * (syncs are idempotent), never lose one.
 *
 * One thread. SIGTERM/SIGINT: finish the tick, exit 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "json.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "pg.h"

#define LEADER_KEY "sfbridge-scheduler"

static volatile sig_atomic_t stop;
static void on_signal(int s)
{
    (void)s;
    stop = 1;
}

struct sched {
    struct cfg cfg;
    struct pg *lead; /* holds the advisory lock */
    struct pg *db;
    struct kafka_producer *kp;
    bool leader;
};

static void sleep_ms(long ms)
{
    while (ms > 0 && !stop) {
        long step = ms > 100 ? 100 : ms;
        struct timespec ts = {0, step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

/* Build, validate and publish one sync.requested; id_out gets its message_id. */
static bool publish(struct sched *s, const char *org, const char *conn, const char *mode, struct json_object *objects,
                    char id_out[40], struct err *e)
{
    char ts[40], topic[256];
    json_uuid4(id_out, 40);
    json_now_rfc3339(ts, sizeof ts);
    struct json_object *m = json_object_new_object();
    json_add_str(m, "message_id", id_out);
    json_add_str(m, "org_id", org);
    json_add_str(m, "connection_id", conn);
    json_add_str(m, "created_at", ts);
    json_add_str(m, "mode", mode);
    if (objects && json_object_array_length(objects) > 0)
        json_object_object_add(m, "objects", json_object_get(objects));
    json_add_str(m, "requested_by", "scheduler");
    bool ok = msg_validate("sync.requested", m, e);
    if (ok) {
        const char *payload = json_str(m);
        cfg_topic(&s->cfg, "sync.requested", topic, sizeof topic);
        ok = kafka_produce(s->kp, topic, conn, payload, strlen(payload), NULL, 0, 30000, e);
    }
    json_object_put(m);
    return ok;
}

/* every connected connection of an enabled org gets the default schedules it lacks: incremental every 15 min
 * (due now), formulas daily (first due a day later: the first syncs read fresh formula values anyway) */
static void ensure_schedules(struct sched *s)
{
    struct err e = ERR_INIT;
    struct pg_res *r = pg_exec(s->db,
                               "INSERT INTO schedules (connection_id, kind, interval_seconds, next_run_at) "
                               "SELECT c.connection_id, k.kind, k.secs, now() + make_interval(secs => k.first) "
                               "FROM connections c JOIN organizations o ON o.org_id = c.org_id "
                               "CROSS JOIN (VALUES ('incremental', 900, 0), ('formulas', 86400, 86400)) k(kind, secs, first) "
                               "WHERE c.status = 'connected' AND o.salesforce_enabled "
                               "AND NOT EXISTS (SELECT 1 FROM schedules x WHERE x.connection_id = c.connection_id "
                               "AND x.kind = k.kind) "
                               "ON CONFLICT DO NOTHING RETURNING connection_id, kind, interval_seconds",
                               0, NULL, &e);
    if (!r) {
        log_warn("could not create default schedules: %s", e.msg);
        return;
    }
    for (int i = 0; i < pg_res_rows(r); i++)
        log_info("connection %s: created the default %s schedule (every %s s)", pg_res_get(r, i, 0),
                 pg_res_get(r, i, 1), pg_res_get(r, i, 2));
    pg_res_free(&r);
}

static void run_due(struct sched *s)
{
    struct err e = ERR_INIT;
    struct pg_res *r = pg_exec(s->db,
                               "SELECT s.connection_id::text, s.kind, c.org_id FROM schedules s "
                               "JOIN connections c ON c.connection_id = s.connection_id "
                               "JOIN organizations o ON o.org_id = c.org_id "
                               "WHERE s.enabled AND s.next_run_at <= now() AND c.status = 'connected' "
                               "AND o.salesforce_enabled ORDER BY s.next_run_at LIMIT 200",
                               0, NULL, &e);
    if (!r) {
        log_warn("could not read due schedules: %s", e.msg);
        return;
    }
    for (int i = 0; i < pg_res_rows(r) && !stop; i++) {
        const char *conn = pg_res_get(r, i, 0), *kind = pg_res_get(r, i, 1), *org = pg_res_get(r, i, 2);
        char id[40];
        struct err pe = ERR_INIT;
        if (!publish(s, org, conn, kind, NULL, id, &pe)) {
            log_warn("could not publish the %s sync of connection %s: %s", kind, conn, pe.msg);
            continue;
        }
        const char *p[3] = {conn, kind, id};
        if (!pg_run(s->db,
                    "UPDATE schedules SET last_run_at = now(), last_request_id = $3, "
                    "next_run_at = now() + make_interval(secs => interval_seconds) "
                    "WHERE connection_id = $1 AND kind = $2",
                    3, p, &pe))
            log_warn("could not advance the schedule of connection %s: %s", conn, pe.msg);
        else
            log_info("requested %s sync %s of connection %s", kind, id, conn);
    }
    pg_res_free(&r);
}

static void resume_deferred(struct sched *s)
{
    struct err e = ERR_INIT;
    struct pg_res *r = pg_exec(s->db,
                               "SELECT request_id::text, org_id, connection_id::text, mode, objects::text FROM sync_runs "
                               "WHERE status = 'deferred' AND resumed_by IS NULL AND retry_at <= now() "
                               "ORDER BY retry_at LIMIT 100",
                               0, NULL, &e);
    if (!r) {
        log_warn("could not read deferred syncs: %s", e.msg);
        return;
    }
    for (int i = 0; i < pg_res_rows(r) && !stop; i++) {
        const char *req = pg_res_get(r, i, 0), *org = pg_res_get(r, i, 1), *conn = pg_res_get(r, i, 2),
                   *mode = pg_res_get(r, i, 3), *objs = pg_res_get(r, i, 4);
        struct err pe = ERR_INIT;
        struct json_object *o = json_parse(objs, strlen(objs), &pe);
        struct json_object *todo = json_object_new_array();
        if (o) {
            json_object_object_foreach(o, name, c)
            {
                const char *st = json_get_str(c, "state");
                if (!st || (strcmp(st, "done") && strcmp(st, "failed")))
                    json_object_array_add(todo, json_object_new_string(name));
            }
        }
        json_object_put(o);
        char id[40] = "";
        bool sent = json_object_array_length(todo) == 0 || publish(s, org, conn, mode, todo, id, &pe);
        json_object_put(todo);
        if (!sent) {
            log_warn("could not re-request deferred sync %s: %s", req, pe.msg);
            continue;
        }
        const char *p[2] = {req, id[0] ? id : req};
        if (!pg_run(s->db, "UPDATE sync_runs SET resumed_by = $2 WHERE request_id = $1", 2, p, &pe))
            log_warn("could not mark deferred sync %s resumed: %s", req, pe.msg);
        else
            log_info("re-requested deferred sync %s as %s", req, id);
    }
    pg_res_free(&r);
}

static void tick(struct sched *s)
{
    struct err e = ERR_INIT;
    if (s->leader) {
        /* still holding the lock? (it dies with the connection) */
        if (!pg_run(s->lead, "SELECT 1", 0, NULL, &e)) {
            log_warn("lost the leader connection: %s", e.msg);
            s->leader = false;
            return;
        }
    } else {
        if (!pg_ensure(s->lead, &e))
            return;
        const char *p[1] = {LEADER_KEY};
        struct pg_res *r = pg_exec(s->lead, "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", 1, p, &e);
        if (!r)
            return;
        s->leader = !strcmp(pg_res_get(r, 0, 0), "t");
        pg_res_free(&r);
        if (!s->leader)
            return;
        log_info("this instance is the scheduler leader");
    }
    if (!pg_ensure(s->db, &e)) {
        log_warn("%s", e.msg);
        return;
    }
    ensure_schedules(s);
    run_due(s);
    resume_deferred(s);
}

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: sfbridge-scheduler\n\n"
               "Publishes sync.requested for due schedules (table schedules; every connected connection gets an\n"
               "incremental one every 15 minutes and a formulas refresh daily by default) and re-requests deferred\n"
               "syncs at their retry time.\n"
               "Any number of instances may run: one leader (PostgreSQL advisory lock) acts at a time.\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "sfbridge-scheduler: unknown argument \"%s\" (try --help)\n", argv[1]);
        return 64;
    }
    struct sched s;
    memset(&s, 0, sizeof s);
    struct err e = ERR_INIT;
    int rc = 1;
    log_init("sfbridge-scheduler", getenv("SFBRIDGE_LOG_LEVEL"));
    cfg_load_or_exit(&s.cfg);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (!msg_init(&e)) {
        log_error("cannot start: %s", e.msg);
        return 70;
    }
    s.db = pg_open(s.cfg.pg_dsn, 60000, &e);
    if (!s.db) {
        log_error("cannot start: %s", e.msg);
        goto out;
    }
    if (!pg_check_schema(s.db, SFBRIDGE_SCHEMA_VERSION, &e)) {
        log_error("%s", e.msg);
        rc = 78;
        goto out;
    }
    s.lead = pg_open(s.cfg.pg_dsn, 60000, &e);
    if (!s.lead) {
        log_error("cannot start: %s", e.msg);
        goto out;
    }
    char host[128] = "host", client_id[300];
    gethostname(host, sizeof host - 1);
    snprintf(client_id, sizeof client_id, "sfbridge-scheduler-%s-%d", host, (int)getpid());
    s.kp = kafka_producer_new(s.cfg.kafka_brokers, client_id, &e);
    if (!s.kp) {
        log_error("cannot start: %s", e.msg);
        goto out;
    }
    metrics_start(s.cfg.metrics_addr, "sfbridge-scheduler");
    metrics_set_ready(true);
    log_info("scheduler started; waiting to become leader");
    while (!stop) {
        tick(&s);
        metrics_gauge("sfbridge_scheduler_leader", "", s.leader ? 1 : 0);
        sleep_ms(1000);
    }
    log_info("stopping");
    rc = 0;
out:
    metrics_set_ready(false);
    metrics_stop();
    kafka_producer_free(&s.kp);
    pg_close(&s.lead);
    pg_close(&s.db);
    msg_cleanup();
    return rc;
}
