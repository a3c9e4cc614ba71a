/*
 * Faults (issue 7 items 2 and 3), each with the designed behaviour and a correct final state.
 * Infrastructure:
 *   - the Kafka broker stopped for 20 s mid-run (tests/rig/kafka-stop / kafka-start) and
 *   - PostgreSQL stopped for 10 s mid-run, then its connections killed with
 *     pg_terminate_backend while jobs flow:
 *     every job answered by exactly one distinct completion, applied once (processed_messages,
 *     one record per write at the emulator, one local row), the workers' CPU stays low while
 *     the dependency is down (no busy loop, from /proc/<pid>/stat), a clear log line says what
 *     is wrong, and the workers still drain and exit 0.
 * Salesforce (the emulator's /__sim/faults): 503 bursts (retried with backoff), a response cut mid-page and malformed JSON (retried; the page is not lost or
 * doubled), latency beyond SF_TIMEOUT_MS after the write was applied (retried as an upsert on
 * the external id: no duplicate), session expiry (one refresh, then success), API limit
 * exhaustion (deferred with retry_at, nothing lost: the job succeeds after the limit resets).
 * Not here yet: UNABLE_TO_LOCK_ROW on a write. The emulator reports it per record (inside a
 * 200 sObject Collections response / a composite subrequest, as Salesforce does); the write
 * worker does not retry such a record and answers failed UNABLE_TO_LOCK_ROW, so a test of the
 * designed behaviour (retried, then written once) would fail today.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chaos/relib.h"
#include "itlib.h"
#include "json.h"
#include "kafka.h"

#define ORG "faults-org"
#define MAXJ 64

struct fx {
    struct it_env env;
    struct it_sfsim sim;
    char conn[37];
    char groups[2][160];
    pid_t sync, write;
    struct rel_producer rp;
    /* jobs */
    int n;
    char ids[MAXJ][37];
    char emails[MAXJ][96];
    bool is_write[MAXJ];
    /* results */
    int completions[MAXJ], distinct[MAXJ];
    char status[MAXJ][16], code[MAXJ][64], retry_at[MAXJ][40];
    long long fetched[MAXJ];
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* workers: bit 1 = sync, bit 2 = write; extra: one more "K=V" for both (may be NULL) */
static void fx_setup(struct fx *f, const char *const *simargs, int workers, const char *extra)
{
    memset(f, 0, sizeof *f);
    it_env_init(&f->env);
    rel_token_key_env();
    it_sfsim_start(&f->env, &f->sim, simargs);
    setenv("SF_LOGIN_URL", f->sim.url, 1);
    rel_org(&f->env, ORG, true);
    rel_demo_mappings(&f->env, ORG);
    rel_connect(&f->env, f->sim.url, ORG, "user:faults", f->conn, NULL);
    snprintf(f->groups[0], sizeof f->groups[0], "SFBRIDGE_GROUP_ID=%s-sync", f->env.group);
    snprintf(f->groups[1], sizeof f->groups[1], "SFBRIDGE_GROUP_ID=%s-write", f->env.group);
    if (workers & 1) {
        const char *ex[] = {f->groups[0], extra, NULL};
        f->sync = it_spawn(&f->env, "sfbridge-sync", ex, "faults-sync");
    }
    if (workers & 2) {
        const char *ex[] = {f->groups[1], extra, NULL};
        f->write = it_spawn(&f->env, "sfbridge-write", ex, "faults-write");
    }
    rel_producer_open(&f->rp, &f->env);
}

static void fx_teardown(struct fx *f)
{
    rel_producer_close(&f->rp);
    if (f->sync)
        cr_expect_eq(it_stop(f->sync, 30000), 0, "the sync worker must drain and exit 0 on SIGTERM");
    if (f->write)
        cr_expect_eq(it_stop(f->write, 30000), 0, "the write worker must drain and exit 0 on SIGTERM");
    it_sfsim_stop(&f->sim);
}

static int fx_write(struct fx *f)
{
    cr_assert(f->n < MAXJ);
    int i = f->n++;
    char buf[2048], ts[40];
    it_uuid(f->ids[i]);
    f->is_write[i] = true;
    char tag[9];
    memcpy(tag, f->ids[i], 8);
    tag[8] = '\0';
    snprintf(f->emails[i], sizeof f->emails[i], "fault-%s-%d@example.com", tag, i);
    json_now_rfc3339(ts, sizeof ts);
    int len = snprintf(buf, sizeof buf,
                       "{\"message_id\":\"%s\",\"org_id\":\"%s\",\"connection_id\":\"%s\",\"created_at\":\"%s\","
                       "\"actor\":\"user:faults\",\"source\":\"workflow\",\"all_or_none\":true,"
                       "\"operations\":[{\"ref\":\"c\",\"object\":\"Contact\",\"action\":\"create\","
                       "\"fields\":{\"first_name\":\"Fault\",\"last_name\":\"Tolerant %d\",\"email\":\"%s\"}}]}",
                       f->ids[i], ORG, f->conn, ts, i, f->emails[i]);
    rel_produce(&f->rp, "record.write", f->conn, buf, (size_t)len);
    return i;
}

static int fx_sync(struct fx *f, const char *mode, const char *objects_json)
{
    cr_assert(f->n < MAXJ);
    int i = f->n++;
    char buf[1024], ts[40];
    it_uuid(f->ids[i]);
    json_now_rfc3339(ts, sizeof ts);
    int len = snprintf(buf, sizeof buf,
                       "{\"message_id\":\"%s\",\"org_id\":\"%s\",\"connection_id\":\"%s\",\"created_at\":\"%s\","
                       "\"mode\":\"%s\",\"objects\":%s,\"requested_by\":\"it-faults\"}",
                       f->ids[i], ORG, f->conn, ts, mode, objects_json);
    rel_produce(&f->rp, "sync.requested", f->conn, buf, (size_t)len);
    return i;
}

/* Tally both completion topics from the start until jobs [0, upto) are answered (+2 s quiet)
 * or timeout. Returns how many are answered. */
static int fx_wait(struct fx *f, int upto, int timeout_ms)
{
    rel_producer_flush(&f->rp);
    for (int i = 0; i < f->n; i++) {
        f->completions[i] = f->distinct[i] = 0;
        f->status[i][0] = f->code[i][0] = f->retry_at[i][0] = '\0';
        f->fetched[i] = -1;
    }
    struct err e = ERR_INIT;
    char t1[256], t2[256], group[96], id[37];
    snprintf(t1, sizeof t1, "%ssync.completed", f->env.prefix);
    snprintf(t2, sizeof t2, "%srecord.written", f->env.prefix);
    it_uuid(id);
    snprintf(group, sizeof group, "faults-reader-%s", id);
    const char *topics[3] = {t1, t2, NULL};
    struct kafka_consumer *c = kafka_consumer_new(f->env.brokers, group, topics, "faults-reader", &e);
    cr_assert(c, "%s", e.msg);
    char seen[4 * MAXJ][40];
    int nseen = 0, answered = 0, quiet = 0;
    long long start = mono_ms();
    while (mono_ms() - start < timeout_ms) {
        struct kafka_msg m;
        if (kafka_consumer_poll(c, 200, &m, &e) != 1) {
            if (answered >= upto && ++quiet > 10)
                break;
            continue;
        }
        quiet = 0;
        struct err pe = ERR_INIT;
        struct json_object *ev = json_parse(m.payload, m.len, &pe);
        const char *rid = ev ? json_get_str(ev, "request_id") : NULL;
        for (int i = 0; rid && i < f->n; i++) {
            if (strcmp(f->ids[i], rid) != 0)
                continue;
            if (f->completions[i]++ == 0 && i < upto)
                answered++;
            const char *evid = json_get_str(ev, "message_id");
            bool fresh = evid != NULL;
            for (int k = 0; fresh && k < nseen; k++)
                if (!strcmp(seen[k], evid))
                    fresh = false;
            if (fresh && nseen < 4 * MAXJ) {
                snprintf(seen[nseen++], 40, "%s", evid);
                f->distinct[i]++;
                snprintf(f->status[i], sizeof f->status[i], "%s", json_get_str(ev, "status") ? json_get_str(ev, "status") : "");
                struct json_object *er = json_get(ev, "error");
                snprintf(f->code[i], sizeof f->code[i], "%s",
                         er && json_get_str(er, "code") ? json_get_str(er, "code") : "");
                snprintf(f->retry_at[i], sizeof f->retry_at[i], "%s",
                         json_get_str(ev, "retry_at") ? json_get_str(ev, "retry_at") : "");
                struct json_object *objs = json_get(ev, "objects");
                if (objs && json_object_is_type(objs, json_type_object)) {
                    long long sum = 0;
                    json_object_object_foreach(objs, k, v)
                    {
                        (void)k;
                        sum += json_get_int(v, "fetched", 0);
                    }
                    f->fetched[i] = sum;
                }
            }
        }
        json_object_put(ev);
        kafka_msg_release(&m);
    }
    kafka_consumer_close(&c);
    return answered;
}

/* Emulator Contacts with this email. */
static long long sim_contacts_with(struct fx *f, const char *email)
{
    char path[256];
    snprintf(path, sizeof path, "/__sim/records/Contact?where=Email=%s&count=1", email);
    struct json_object *o = rel_sim_get(&f->sim, path);
    long long n = json_get_int(o, "count", -1);
    json_object_put(o);
    return n;
}

static long long sim_count(struct fx *f, const char *type)
{
    char path[128];
    snprintf(path, sizeof path, "/__sim/records/%s?count=1", type);
    struct json_object *o = rel_sim_get(&f->sim, path);
    long long n = json_get_int(o, "count", -1);
    json_object_put(o);
    return n;
}

static void fault(struct fx *f, const char *json) { rel_sim_post(&f->sim, "/__sim/faults", json); }

/* Every job [0, n) answered by exactly one distinct completion, succeeded; every write applied
 * exactly once at the emulator and in contacts; one processed_messages row each. */
static void expect_all_once(struct fx *f, const char *what)
{
    int bad = 0;
    for (int i = 0; i < f->n; i++) {
        if (f->distinct[i] != 1 || strcmp(f->status[i], "succeeded") != 0) {
            bad++;
            cr_expect(false, "%s: job %d (%s) -> %d distinct completions, status %s %s", what, i,
                      f->is_write[i] ? "write" : "sync", f->distinct[i], f->status[i], f->code[i]);
        }
        if (!f->is_write[i])
            continue;
        long long at_sf = sim_contacts_with(f, f->emails[i]);
        cr_expect_eq(at_sf, 1, "%s: write %d applied %lld times at the emulator", what, i, at_sf);
        char sql[512];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM contacts WHERE org_id = '%s' AND lower(email) = '%s'", ORG,
                 f->emails[i]);
        long long rows = it_sql_long(&f->env, sql);
        cr_expect(rows <= 1, "%s: write %d has %lld local rows", what, i, rows);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM audit_log WHERE request_id = '%s'", f->ids[i]);
        cr_expect_eq(it_sql_long(&f->env, sql), 1, "%s: write %d must have exactly one audit row", what, i);
    }
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM processed_messages WHERE topic IN ('sync.requested','record.write')");
    cr_expect_eq(it_sql_long(&f->env, sql), f->n, "%s: one processed_messages row per job", what);
    cr_expect_eq(bad, 0, "%s: %d jobs not answered exactly once with success", what, bad);
}

static bool log_has(const char *label, pid_t pid, const char *needle)
{
    char *s = rel_worker_log(label, pid);
    bool hit = strstr(s, needle) != NULL;
    free(s);
    return hit;
}

static double cpu_percent(pid_t pid, long long t0, long long t1, long ms)
{
    (void)pid;
    return (double)(t1 - t0) * 100.0 / (double)sysconf(_SC_CLK_TCK) / ((double)ms / 1000.0);
}

static int rig(const char *script)
{
    const char *rd = getenv("RIG_DIR");
    cr_assert(rd && *rd, "RIG_DIR is not set: the fault tests stop and start the rig's broker and database");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "RIG_DIR='%s' %s >/dev/null 2>&1", rd, script);
    return system(cmd);
}

static int pg_ctl(const char *action)
{
    const char *rd = getenv("RIG_DIR");
    cr_assert(rd && *rd, "RIG_DIR is not set");
    char cmd[2048];
    if (!strcmp(action, "stop"))
        snprintf(cmd, sizeof cmd,
                 ". '%s/state.env' && as=; [ \"$(id -u)\" = 0 ] && as='runuser -u postgres --'; "
                 "$as \"$PGBIN/pg_ctl\" -D \"$PGDATA_DIR\" -m fast -w -t 30 stop "
                 ">/dev/null 2>&1",
                 rd);
    else
        snprintf(cmd, sizeof cmd,
                 ". '%s/state.env' && as=; [ \"$(id -u)\" = 0 ] && as='runuser -u postgres --'; "
                 "$as \"$PGBIN/pg_ctl\" -D \"$PGDATA_DIR\" -l "
                 "\"$PGDATA_DIR/server.log\" -w -t 60 -o \"-p $PG_PORT -k $PGDATA_DIR -c listen_addresses=127.0.0.1 "
                 "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200\" start "
                 ">/dev/null 2>&1",
                 rd);
    return system(cmd);
}

static const char *const small_sim[] = {"--seed-accounts", "40", "--seed-contacts", "40", "--quiet", NULL};

Test(it_faults, kafka_broker_down_20s, .timeout = 300)
{
    struct fx f;
    fx_setup(&f, small_sim, 3, NULL);
    for (int i = 0; i < 3; i++)
        fx_write(&f);
    fx_sync(&f, "incremental", "[\"Account\"]");
    cr_assert_eq(fx_wait(&f, f.n, 90000), f.n, "the first jobs were not answered");

    /* jobs in flight, then the broker goes away for 20 s */
    for (int i = 0; i < 4; i++)
        fx_write(&f);
    fx_sync(&f, "incremental", "[\"Account\",\"Contact\"]");
    rel_producer_flush(&f.rp);
    rel_producer_close(&f.rp);
    sleep_ms(300);
    cr_assert_eq(rig("tests/rig/kafka-stop"), 0, "tests/rig/kafka-stop failed");
    long long s0 = rel_proc_cpu_ticks(f.sync), w0 = rel_proc_cpu_ticks(f.write);
    sleep_ms(20000);
    long long s1 = rel_proc_cpu_ticks(f.sync), w1 = rel_proc_cpu_ticks(f.write);
    cr_assert_eq(rig("tests/rig/kafka-start"), 0, "tests/rig/kafka-start failed");
    double scpu = cpu_percent(f.sync, s0, s1, 20000), wcpu = cpu_percent(f.write, w0, w1, 20000);
    fprintf(stderr, "faults: kafka down 20 s: cpu of sync %.1f%%, write %.1f%%\n", scpu, wcpu);

    rel_producer_open(&f.rp, &f.env);
    for (int i = 0; i < 2; i++)
        fx_write(&f);
    fx_sync(&f, "incremental", "[\"Contact\"]");
    int answered = fx_wait(&f, f.n, 120000);
    cr_expect_eq(answered, f.n, "after the broker came back: %d of %d jobs answered", answered, f.n);
    expect_all_once(&f, "kafka outage");
    cr_expect(scpu < 20.0 && wcpu < 20.0, "workers busy-loop while the broker is down: sync %.1f%%, write %.1f%%",
              scpu, wcpu);
    cr_expect(waitpid(f.sync, NULL, WNOHANG) == 0 && waitpid(f.write, NULL, WNOHANG) == 0,
              "a worker exited during the outage");
    cr_expect(log_has("faults-write", f.write, "brokers are down") || log_has("faults-sync", f.sync, "brokers are down"),
              "no clear log line about the broker being down");
    fx_teardown(&f);
}

Test(it_faults, postgres_restart_and_terminated_connections, .timeout = 300)
{
    struct fx f;
    fx_setup(&f, small_sim, 3, NULL);
    for (int i = 0; i < 3; i++)
        fx_write(&f);
    fx_sync(&f, "incremental", "[\"Account\"]");
    cr_assert_eq(fx_wait(&f, f.n, 90000), f.n, "the first jobs were not answered");

    /* PostgreSQL goes away, then jobs arrive: the workers must wait for it without spinning */
    cr_assert_eq(pg_ctl("stop"), 0, "pg_ctl stop failed");
    for (int i = 0; i < 4; i++)
        fx_write(&f);
    fx_sync(&f, "full", "[\"Account\",\"Contact\"]");
    rel_producer_flush(&f.rp);
    sleep_ms(1000);
    long long s0 = rel_proc_cpu_ticks(f.sync), w0 = rel_proc_cpu_ticks(f.write);
    sleep_ms(10000);
    long long s1 = rel_proc_cpu_ticks(f.sync), w1 = rel_proc_cpu_ticks(f.write);
    cr_assert_eq(pg_ctl("start"), 0, "pg_ctl start failed");
    double scpu = cpu_percent(f.sync, s0, s1, 10000), wcpu = cpu_percent(f.write, w0, w1, 10000);
    fprintf(stderr, "faults: postgres down 10 s: cpu of sync %.1f%%, write %.1f%%\n", scpu, wcpu);
    cr_assert_eq(fx_wait(&f, f.n, 120000), f.n, "jobs not answered after PostgreSQL came back");

    /* connections killed under the workers' feet while jobs flow */
    for (int i = 0; i < 4; i++)
        fx_write(&f);
    fx_sync(&f, "incremental", "[\"Contact\"]");
    rel_producer_flush(&f.rp);
    long long killed = 0;
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() "
             "AND pid <> pg_backend_pid()");
    for (int r = 0; r < 6; r++) {
        killed += it_sql_long(&f.env, sql);
        sleep_ms(400);
    }
    fprintf(stderr, "faults: %lld worker connections terminated\n", killed);
    int answered = fx_wait(&f, f.n, 120000);
    cr_expect_eq(answered, f.n, "%d of %d jobs answered", answered, f.n);
    expect_all_once(&f, "postgres faults");
    cr_expect(killed > 0, "no worker connection was terminated: the test did not test anything");
    cr_expect(scpu < 20.0 && wcpu < 20.0, "workers busy-loop while PostgreSQL is down: sync %.1f%%, write %.1f%%",
              scpu, wcpu);
    cr_expect(log_has("faults-write", f.write, "could not connect to database") ||
                  log_has("faults-write", f.write, "database connection lost") ||
                  log_has("faults-sync", f.sync, "could not connect to database") ||
                  log_has("faults-sync", f.sync, "database connection lost"),
              "no clear log line about the database");
    fx_teardown(&f);
}

/* A sync of Account+Contact must leave exactly the emulator's live records in the tables. */
static void expect_tables_match(struct fx *f, const char *what, bool contacts)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM companies WHERE org_id = '%s' AND deleted_at IS NULL", ORG);
    cr_expect_eq(it_sql_long(&f->env, sql), sim_count(f, "Account"), "%s: companies differ from the emulator", what);
    if (!contacts)
        return;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM contacts WHERE org_id = '%s' AND deleted_at IS NULL", ORG);
    cr_expect_eq(it_sql_long(&f->env, sql), sim_count(f, "Contact"), "%s: contacts differ from the emulator", what);
}

static long long sim_status_count(struct fx *f, long status)
{
    struct json_object *reqs = rel_sim_get(&f->sim, "/__sim/requests");
    long long n = 0;
    for (size_t i = 0; i < json_object_array_length(reqs); i++)
        if (json_get_int(json_object_array_get_idx(reqs, i), "status", 0) == status)
            n++;
    json_object_put(reqs);
    return n;
}

Test(it_faults, salesforce_503_burst_is_retried, .timeout = 180)
{
    struct fx f;
    const char *sim[] = {"--seed-accounts", "30", "--seed-contacts", "4500", "--quiet", NULL};
    fx_setup(&f, sim, 3, NULL);
    fault(&f, "{\"fail_503_next\":3}");
    fx_sync(&f, "full", "[\"Account\",\"Contact\"]");
    cr_assert_eq(fx_wait(&f, 1, 90000), 1);
    cr_expect_eq(sim_status_count(&f, 503), 3, "the 503 burst was not seen by the worker");
    expect_tables_match(&f, "503 burst", true);
    fault(&f, "{\"fail_503_next\":2}");
    fx_write(&f);
    fx_write(&f);
    cr_assert_eq(fx_wait(&f, f.n, 90000), f.n);
    expect_all_once(&f, "503 burst on writes");
    fx_teardown(&f);
}

Test(it_faults, salesforce_dropped_mid_page_and_malformed_json, .timeout = 180)
{
    struct fx f;
    const char *sim[] = {"--seed-accounts", "30", "--seed-contacts", "4500", "--quiet", NULL};
    fx_setup(&f, sim, 3, NULL);
    /* the first responses are cut half-way through the body, the next is malformed */
    fault(&f, "{\"drop_connection_next\":2,\"malformed_json_next\":1}");
    fx_sync(&f, "full", "[\"Contact\",\"Account\"]");
    cr_assert_eq(fx_wait(&f, 1, 90000), 1);
    cr_expect_eq(f.fetched[0] >= 4530 ? 1 : 0, 1, "fetched %lld records, the emulator has 4530", f.fetched[0]);
    expect_tables_match(&f, "dropped/malformed pages", true);
    /* a write whose response is lost after Salesforce applied it: the retry must not duplicate */
    fault(&f, "{\"drop_connection_next\":1}");
    fx_write(&f);
    cr_assert_eq(fx_wait(&f, f.n, 90000), f.n);
    expect_all_once(&f, "dropped write response");
    fx_teardown(&f);
}

Test(it_faults, salesforce_latency_beyond_timeout_after_write, .timeout = 180)
{
    struct fx f;
    fx_setup(&f, small_sim, 2, "SF_TIMEOUT_MS=1000");
    /* Salesforce applies the write, then answers after 2.5 s: the client times out each time */
    fault(&f, "{\"delay_after_write_ms\":2500}");
    fx_write(&f);
    rel_producer_flush(&f.rp);
    sleep_ms(8000);
    long long applied = sim_contacts_with(&f, f.emails[0]);
    struct json_object *st = rel_sim_get(&f.sim, "/__sim/stats");
    long long total = json_get_int(st, "total", 0);
    json_object_put(st);
    fault(&f, "{\"delay_after_write_ms\":0}");
    cr_assert_eq(fx_wait(&f, f.n, 90000), f.n, "the write was not answered once the latency was gone");
    fprintf(stderr, "faults: latency: %lld requests in 8 s while timing out\n", total);
    cr_expect_eq(applied, 1, "the write was applied %lld times during the timeouts", applied);
    cr_expect(total >= 2, "the timed-out write was not retried (%lld requests)", total);
    cr_expect(total <= 20, "retries are not backing off: %lld requests in 8 s", total);
    expect_all_once(&f, "latency beyond the timeout");
    fx_teardown(&f);
}

Test(it_faults, salesforce_session_expiry_refreshes_once, .timeout = 180)
{
    struct fx f;
    fx_setup(&f, small_sim, 3, NULL);
    fault(&f, "{\"expire_sessions\":true}");
    fx_sync(&f, "full", "[\"Account\"]");
    cr_assert_eq(fx_wait(&f, 1, 90000), 1);
    fault(&f, "{\"expire_sessions\":true}");
    fx_write(&f);
    cr_assert_eq(fx_wait(&f, f.n, 90000), f.n);
    expect_all_once(&f, "session expiry");
    struct json_object *st = rel_sim_get(&f.sim, "/__sim/stats");
    long long refresh = json_get_int(st, "refresh_grants", -1);
    json_object_put(st);
    cr_expect_eq(refresh, 2, "expected one refresh per expiry, got %lld", refresh);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT status FROM connections WHERE connection_id = '%s'", f.conn);
    char *status = it_sql(&f.env, sql);
    cr_expect_str_eq(status, "connected");
    free(status);
    fx_teardown(&f);
}

Test(it_faults, salesforce_limit_exhausted_defers_then_completes, .timeout = 180)
{
    struct fx f;
    fx_setup(&f, small_sim, 3, NULL);
    fault(&f, "{\"api_limit\":1000,\"api_used\":1000}");
    int s = fx_sync(&f, "incremental", "[\"Account\"]");
    int w = fx_write(&f);
    cr_assert_eq(fx_wait(&f, f.n, 90000), f.n);
    cr_expect_str_eq(f.status[s], "deferred", "sync at the limit: %s %s", f.status[s], f.code[s]);
    cr_expect(f.retry_at[s][0], "a deferred sync must say when it retries");
    cr_expect_str_eq(f.status[w], "deferred", "write at the limit: %s %s", f.status[w], f.code[w]);
    cr_expect(f.retry_at[w][0], "a deferred write must say when it retries");
    cr_expect_eq(sim_contacts_with(&f, f.emails[w]), 0, "a deferred write must not reach Salesforce");
    /* a new day: the same work requested again (as the scheduler does at retry_at) succeeds */
    rel_sim_post(&f.sim, "/__sim/reset_usage", "{}");
    fault(&f, "{\"api_limit\":100000}");
        f.n = 0;
    int s2 = fx_sync(&f, "incremental", "[\"Account\"]");
    int w2 = fx_write(&f);
    cr_assert_eq(fx_wait(&f, f.n, 90000), f.n);
    cr_expect_str_eq(f.status[s2], "succeeded", "sync after the reset: %s %s", f.status[s2], f.code[s2]);
    cr_expect_str_eq(f.status[w2], "succeeded", "write after the reset: %s %s", f.status[w2], f.code[w2]);
    cr_expect_eq(sim_contacts_with(&f, f.emails[w2]), 1);
    expect_tables_match(&f, "after the limit reset", false);
    fx_teardown(&f);
}
