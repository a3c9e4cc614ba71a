/*
 * Integration (issue 5): API budget deferral and the scheduler.
 *  - API limit set low at the emulator: a full sync stops at a page boundary with
 *    everything so far committed, completes `deferred` with retry_at; at the retry
 *    time the scheduler re-requests it, the sync continues where it stopped (it
 *    does not re-read what it has) and the tables end complete;
 *  - schedules: a default schedule is created for a connected connection; two
 *    scheduler instances publish each due request once; when the leader dies the
 *    other takes over within seconds.
 */
#include <sys/wait.h>

#include "it_sync_lib.h"

#define DEMO "tests/demo/mappings.json"

Test(it_sync_defer, low_api_limit_defers_then_resumes, .timeout = 240)
{
    struct it_env env;
    it_env_init(&env);
    struct it_sfsim sim;
    const char *args[] = {"--seed-accounts", "30000", "--api-limit", "20", "--quiet", NULL};
    it_sfsim_start(&env, &sim, args);
    char conn[37], id[37], sql[512];
    its_connection(&env, &sim, "acme", conn);
    its_import(&env, "acme", DEMO);
    /* keep the scheduler's periodic sync out of this test: only the deferred run is re-requested */
    snprintf(sql, sizeof sql, "INSERT INTO schedules (connection_id, kind, enabled) VALUES ('%s', 'incremental', false)",
             conn);
    it_sql_ok(&env, sql);
    const char *extra[] = {"SFBRIDGE_TOKEN_KEY=" ITS_TOKEN_KEY, NULL};
    pid_t w = it_spawn(&env, "sfbridge-sync", extra, "sync-defer");
    its_request(&env, "acme", conn, "full", "[\"Account\"]", id);
    struct json_object *ev = its_completion(&env, id, 1, 120000);
    const char *txt = json_object_to_json_string(ev);
    fprintf(stderr, "deferred: %s\n", txt);
    cr_assert_str_eq(json_get_str(ev, "status"), "deferred", "%s", txt);
    cr_assert(json_get_str(ev, "retry_at"), "a deferred sync names its retry time: %s", txt);
    cr_assert_str_eq(json_get_str(json_get(ev, "error"), "code"), "REQUEST_LIMIT_EXCEEDED", "%s", txt);
    long long first = its_count(ev, "Account", "inserted");
    /* limit 20, share 80%, full syncs may use 70% of it: 11 calls of 2000 records */
    cr_assert_eq(first, 22000, "stops at a page boundary: %lld", first);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM companies"), first, "everything so far is committed");
    snprintf(sql, sizeof sql, "SELECT status FROM sync_runs WHERE request_id = '%s' AND retry_at > now()", id);
    char *status = it_sql(&env, sql);
    cr_assert_str_eq(status, "deferred");
    free(status);
    json_object_put(ev);

    /* a new day at the emulator; time passes (retry_at reached, the usage figure is old) */
    long st;
    free(its_sim(&sim, "POST", "/__sim/reset_usage", "{}", &st));
    free(its_sim(&sim, "POST", "/__sim/faults", "{\"api_limit\":100000}", &st));
    snprintf(sql, sizeof sql, "UPDATE sync_runs SET retry_at = now() WHERE request_id = '%s';"
                              "UPDATE api_usage SET as_of = now() - interval '1 hour'", id);
    it_sql_ok(&env, sql);
    pid_t s = it_spawn(&env, "sfbridge-scheduler", NULL, "sched-defer");
    struct it_msgs reqs;
    it_consume(&env, "sync.requested", 2, 30000, 500, &reqs);
    cr_assert_eq(reqs.n, 2, "the scheduler re-requests the deferred sync once (%d requests)", reqs.n);
    struct err e = ERR_INIT;
    struct json_object *again = json_parse(reqs.m[1].payload, reqs.m[1].len, &e);
    cr_assert_str_eq(json_get_str(again, "requested_by"), "scheduler");
    cr_assert_str_eq(json_get_str(again, "mode"), "full");
    char id2[40];
    snprintf(id2, sizeof id2, "%s", json_get_str(again, "message_id"));
    json_object_put(again);
    it_msgs_free(&reqs);
    ev = its_completion(&env, id2, 2, 120000);
    txt = json_object_to_json_string(ev);
    fprintf(stderr, "resumed: %s\n", txt);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", txt);
    cr_assert_eq(its_count(ev, "Account", "inserted"), 30000 - first, "continues where it stopped: %s", txt);
    cr_assert_eq(its_count(ev, "Account", "fetched"), 30000 - first, "nothing is read twice: %s", txt);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM companies WHERE deleted_at IS NULL"), 30000);
    snprintf(sql, sizeof sql, "SELECT resumed_by::text FROM sync_runs WHERE request_id = '%s'", id);
    char *rb = it_sql(&env, sql);
    cr_assert_str_eq(rb, id2);
    free(rb);
    json_object_put(ev);
    /* the usage figure reached api_usage */
    cr_assert_gt(it_sql_long(&env, "SELECT used FROM api_usage"), 0);
    cr_assert_eq(it_stop(s, 30000), 0);
    cr_assert_eq(it_stop(w, 30000), 0);
    it_sfsim_stop(&sim);
}

static int scheduler_requests(const struct it_env *env, int want, int ms)
{
    struct it_msgs m;
    it_consume(env, "sync.requested", want, ms, 800, &m);
    int n = it_msgs_count(&m, "\"requested_by\":\"scheduler\"");
    it_msgs_free(&m);
    return n;
}

Test(it_sync_defer, scheduler_default_schedule_and_leader_takeover, .timeout = 120)
{
    struct it_env env;
    it_env_init(&env);
    char conn[37], sql[512];
    it_uuid(conn);
    snprintf(sql, sizeof sql,
             "INSERT INTO organizations (org_id, salesforce_enabled) VALUES ('acme', true);"
             "INSERT INTO connections (connection_id, org_id, user_id, status) VALUES ('%s', 'acme', 'u1', 'connected');"
             "INSERT INTO connections (connection_id, org_id, user_id, status) VALUES (gen_random_uuid(), 'acme', 'u2', "
             "'expired');",
             conn);
    it_sql_ok(&env, sql);
    pid_t a = it_spawn(&env, "sfbridge-scheduler", NULL, "sched-a");
    pid_t b = it_spawn(&env, "sfbridge-scheduler", NULL, "sched-b");
    cr_assert_eq(scheduler_requests(&env, 1, 20000), 1, "one request for the new default schedule");
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM schedules WHERE kind = 'incremental'"), 1,
                 "only the connected connection");
    cr_assert_eq(it_sql_long(&env, "SELECT interval_seconds FROM schedules WHERE kind = 'incremental'"), 900,
                 "every 15 minutes by default");
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM schedules WHERE kind = 'formulas' AND interval_seconds = 86400 "
                                   "AND next_run_at > now() + interval '23 hours'"),
                 1, "a daily formula refresh, first due a day later");
    /* make it due every 10 s, then see exactly one request per due time with two instances */
    it_sql_ok(&env, "UPDATE schedules SET interval_seconds = 10, next_run_at = now() WHERE kind = 'incremental'");
    sleep(4);
    cr_assert_eq(scheduler_requests(&env, 2, 3000), 2, "two instances, one request per due time");
    /* kill the leader (whichever it is): the other takes over */
    char *la = NULL;
    char path[128];
    snprintf(path, sizeof path, "build/test-logs/sched-a-%d.log", (int)a);
    la = it_read_file(path);
    bool a_leads = la && strstr(la, "scheduler leader");
    free(la);
    it_kill9(a_leads ? a : b);
    it_sql_ok(&env, "UPDATE schedules SET next_run_at = now() + interval '2 seconds' WHERE kind = 'incremental'");
    cr_assert_eq(scheduler_requests(&env, 3, 15000), 3, "the surviving instance publishes the next request");
    cr_assert_eq(it_stop(a_leads ? b : a, 30000), 0);
    if (a_leads)
        it_wait(a, 1000);
    else
        it_wait(b, 1000);
}
