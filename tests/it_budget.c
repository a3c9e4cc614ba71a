/*
 * Integration (issue 9, item 3): one API budget per Salesforce org, drawn by class.
 * The emulator's daily limit is 60 calls; sfbridge's share is 80% (48 calls), so the class caps are
 * interactive 48, workflow 45, incremental 40, bulk 33.
 *  1. a full sync of 70,000 Accounts (35 REST pages, class bulk) spends 33 calls and is deferred at a
 *     page boundary with retry_at, 66,000 rows committed;
 *  2. an incremental sync of Opportunity (class incremental) still runs;
 *  3. a chat record.write (class interactive, the real sfbridge-write worker) still succeeds at once;
 *  4. `sfbridge status` shows the budget (used/limit, share, caps, which classes defer) and the
 *     deferred sync;
 *  5. the emulator's usage resets (a new day): at the retry time the scheduler re-requests the sync,
 *     which refreshes the stale usage figure (GET /limits), resumes where it stopped and completes
 *     with exact table counts.
 * Printed: the API calls each class got (emulator request log by path/object) and the order in
 * which work completed.
 */
#include <sys/wait.h>

#include "it_sync_lib.h"

#define N_ACC 70000
#define N_OPP 300

static const char *mapping_json =
    "{\"external_id_field\": \"Platform_Id__c\", \"objects\": ["
    "{\"sf_object\": \"Account\", \"platform_object\": \"Company\", \"enabled\": true, \"fields\": ["
    "  {\"sf_field\": \"Name\", \"platform_field\": \"name\", \"direction\": \"both\"},"
    "  {\"sf_field\": \"Industry\", \"platform_field\": \"industry\", \"direction\": \"both\"}]},"
    "{\"sf_object\": \"Opportunity\", \"platform_object\": \"Deal\", \"enabled\": true, \"fields\": ["
    "  {\"sf_field\": \"AccountId\", \"platform_field\": \"company_sf_id\", \"direction\": \"both\"},"
    "  {\"sf_field\": \"Name\", \"platform_field\": \"name\", \"direction\": \"both\"},"
    "  {\"sf_field\": \"StageName\", \"platform_field\": \"stage\", \"direction\": \"both\"},"
    "  {\"sf_field\": \"CloseDate\", \"platform_field\": \"close_date\", \"direction\": \"both\","
    "   \"transform\": \"date\"}]}]}";

static struct timespec t_start;
static double elapsed(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t_start.tv_sec) + (double)(t.tv_nsec - t_start.tv_nsec) / 1e9;
}

static char order_log[2048];
static int order_n;
static void completed(const char *what)
{
    size_t len = strlen(order_log);
    snprintf(order_log + len, sizeof order_log - len, "  %d. %6.1f s  %s\n", ++order_n, elapsed(), what);
}

/* Salesforce API requests in the emulator's log after `since` (OAuth is not counted): total, by path kind;
 * *last = the highest seq seen */
struct calls {
    int total, query, cursor, limits, write, other;
};

static void calls_since(const struct it_sfsim *sim, long long since, long long *last, struct calls *c)
{
    memset(c, 0, sizeof *c);
    long st = 0;
    char *body = its_sim(sim, "GET", "/__sim/requests", NULL, &st);
    cr_assert_eq(st, 200);
    struct err e = ERR_INIT;
    struct json_object *a = json_parse(body, strlen(body), &e);
    cr_assert(a, "%s", e.msg);
    *last = since;
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        struct json_object *r = json_object_array_get_idx(a, i);
        long long seq = json_get_int(r, "seq", 0);
        const char *p = json_get_str(r, "path");
        if (seq > *last)
            *last = seq;
        if (seq <= since || !p || !strstr(p, "/services/data/"))
            continue;
        c->total++;
        if (strstr(p, "/query/"))
            c->cursor++;
        else if (strstr(p, "/query"))
            c->query++;
        else if (strstr(p, "/limits"))
            c->limits++;
        else if (strstr(p, "/sobjects") || strstr(p, "/composite"))
            c->write++;
        else
            c->other++;
    }
    json_object_put(a);
    free(body);
}

static char calls_log[2048];
static long long seq_mark;
/* the calls since the previous phase belong to `cls` */
static struct calls phase(const struct it_sfsim *sim, const char *cls, const char *what)
{
    struct calls c;
    calls_since(sim, seq_mark, &seq_mark, &c);
    size_t len = strlen(calls_log);
    snprintf(calls_log + len, sizeof calls_log - len,
             "  %-11s %3d calls  (%s: query %d, query cursor pages %d, limits %d, sobjects/composite %d, other %d)\n",
             cls, c.total, what, c.query, c.cursor, c.limits, c.write, c.other);
    return c;
}

static struct json_object *written(const struct it_env *env, const char *id, int timeout_ms)
{
    char needle[64];
    snprintf(needle, sizeof needle, "\"request_id\":\"%s\"", id);
    long long deadline = (long long)time(NULL) * 1000 + timeout_ms;
    for (;;) {
        struct it_msgs m;
        it_consume(env, "record.written", 1, 3000, 200, &m);
        for (int i = 0; i < m.n; i++) {
            if (strstr(m.m[i].payload, needle)) {
                struct err e = ERR_INIT;
                struct json_object *o = json_parse(m.m[i].payload, m.m[i].len, &e);
                it_msgs_free(&m);
                cr_assert(o, "%s", e.msg);
                return o;
            }
        }
        it_msgs_free(&m);
        cr_assert((long long)time(NULL) * 1000 < deadline, "no record.written for %s", id);
    }
}

Test(it_budget, chat_write_goes_first_while_full_sync_defers_then_resumes, .timeout = 300)
{
    struct it_env env;
    it_env_init(&env);
    struct it_sfsim sim;
    char nacc[16], nopp[16];
    snprintf(nacc, sizeof nacc, "%d", N_ACC);
    snprintf(nopp, sizeof nopp, "%d", N_OPP);
    const char *args[] = {"--seed-accounts", nacc, "--seed-opportunities", nopp, "--api-limit", "60", "--quiet", NULL};
    it_sfsim_start(&env, &sim, args);
    char conn[37], id[37], sql[1024], file[128], out[16384];
    its_connection(&env, &sim, "acme", conn);
    snprintf(file, sizeof file, "/tmp/it_budget_%d.json", (int)getpid());
    FILE *f = fopen(file, "w");
    cr_assert(f);
    fputs(mapping_json, f);
    fclose(f);
    its_import(&env, "acme", file);
    unlink(file);
    /* only the deferred run is re-requested by the scheduler in this test */
    snprintf(sql, sizeof sql,
             "INSERT INTO schedules (connection_id, kind, enabled) VALUES ('%s', 'incremental', false), "
             "('%s', 'formulas', false)",
             conn, conn);
    it_sql_ok(&env, sql);
    long st = 0;
    free(its_sim(&sim, "DELETE", "/__sim/requests", NULL, &st));

    /* REST pages only (no Bulk job), so that the full sync needs more calls than its class may spend */
    const char *extra[] = {"SFBRIDGE_TOKEN_KEY=" ITS_TOKEN_KEY, "SFBRIDGE_DEFER_SECONDS=6",
                           "SFBRIDGE_BULK_THRESHOLD=10000000", NULL};
    pid_t sw = it_spawn(&env, "sfbridge-sync", extra, "sync-budget");
    pid_t ww = it_spawn(&env, "sfbridge-write", extra, "write-budget");
    clock_gettime(CLOCK_MONOTONIC, &t_start);

    /* 1. full sync (bulk class): deferred at 33 calls */
    char full_id[37];
    its_request(&env, "acme", conn, "full", "[\"Account\"]", full_id);
    struct json_object *ev = its_completion(&env, full_id, 1, 120000);
    const char *txt = json_object_to_json_string(ev);
    fprintf(stderr, "full sync: %s\n", txt);
    cr_assert_str_eq(json_get_str(ev, "status"), "deferred", "%s", txt);
    cr_assert(json_get_str(ev, "retry_at"), "%s", txt);
    long long first = its_count(ev, "Account", "inserted");
    cr_assert_eq(first, 33 * 2000, "bulk class cap 33 calls (60 x 80%% x 70%%): %s", txt);
    cr_assert_eq(json_get_int(ev, "api_calls", -1), 33, "%s", txt);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM companies"), first, "everything so far committed");
    snprintf(sql, sizeof sql, "full sync of Account: deferred after %lld rows, 33 calls (bulk cap reached)", first);
    completed(sql);
    cr_assert_eq(phase(&sim, "bulk", "full sync until deferred").total, 33);
    json_object_put(ev);

    /* 2. incremental sync (incremental class, cap 40): still runs */
    its_request(&env, "acme", conn, "incremental", "[\"Opportunity\"]", id);
    ev = its_completion(&env, id, 2, 60000);
    txt = json_object_to_json_string(ev);
    fprintf(stderr, "incremental sync: %s\n", txt);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", txt);
    cr_assert_eq(its_count(ev, "Opportunity", "inserted"), N_OPP, "%s", txt);
    snprintf(sql, sizeof sql, "incremental sync of Opportunity: succeeded, %d rows, %lld call(s)", N_OPP,
             (long long)json_get_int(ev, "api_calls", -1));
    completed(sql);
    cr_assert_eq(phase(&sim, "incremental", "incremental sync").total, 1);
    json_object_put(ev);

    /* 3. chat write (interactive class, cap 48): succeeds at once */
    char wid[37], msg[1024];
    it_uuid(wid);
    int n = snprintf(msg, sizeof msg,
                     "{\"message_id\":\"%s\",\"org_id\":\"acme\",\"connection_id\":\"%s\","
                     "\"created_at\":\"2026-12-03T10:00:00Z\",\"actor\":\"user:it\",\"source\":\"chat\","
                     "\"operations\":[{\"ref\":\"co\",\"object\":\"Company\",\"action\":\"create\","
                     "\"fields\":{\"name\":\"BudgetChatCo\",\"industry\":\"Technology\"}}]}",
                     wid, conn);
    double tw = elapsed();
    it_produce(&env, "record.write", conn, msg, (size_t)n);
    ev = written(&env, wid, 60000);
    double write_s = elapsed() - tw;
    txt = json_object_to_json_string(ev);
    fprintf(stderr, "chat write (%.2f s): %s\n", write_s, txt);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", txt);
    cr_assert_lt(write_s, 15.0, "the interactive write is not held behind the deferred sync");
    char wbuf[160];
    snprintf(wbuf, sizeof wbuf, "chat record.write: succeeded in %.2f s, %lld call(s)", write_s,
             (long long)json_get_int(ev, "api_calls", -1));
    completed(wbuf);
    cr_assert_eq(phase(&sim, "interactive", "chat write").total, json_get_int(ev, "api_calls", -1));
    json_object_put(ev);
    char *cnt = its_sim(&sim, "GET", "/__sim/records/Account?where=Name=BudgetChatCo&count=1", NULL, &st);
    cr_assert(cnt && strstr(cnt, "\"count\":1"), "the account exists at the emulator: %s", cnt ? cnt : "");
    free(cnt);

    /* 4. status: budget, caps, deferring classes, the deferred sync */
    char args_s[64];
    snprintf(args_s, sizeof args_s, "status --org acme --json");
    cr_assert_eq(its_cli(&env, args_s, out, sizeof out), 0, "%s", out);
    struct err e = ERR_INIT;
    struct json_object *js = json_parse(out, strlen(out), &e);
    cr_assert(js, "status --json: %s: %s", e.msg, out);
    struct json_object *b = json_object_array_get_idx(json_get(js, "budgets"), 0);
    cr_assert(b, "a budget for the org: %s", out);
    cr_assert_eq(json_get_int(b, "limit", -1), 60, "%s", out);
    cr_assert_eq(json_get_int(b, "share_pct", -1), 80, "%s", out);
    cr_assert_eq(json_get_int(json_get(b, "caps"), "interactive", -1), 48, "%s", out);
    cr_assert_eq(json_get_int(json_get(b, "caps"), "workflow", -1), 45, "%s", out);
    cr_assert_eq(json_get_int(json_get(b, "caps"), "incremental", -1), 40, "%s", out);
    cr_assert_eq(json_get_int(json_get(b, "caps"), "bulk", -1), 33, "%s", out);
    const char *deferring = json_object_to_json_string(json_get(b, "deferring"));
    cr_assert(strstr(deferring, "bulk") && !strstr(deferring, "interactive"), "%s", out);
    cr_assert(strstr(out, full_id) && strstr(out, "\"deferred\""), "the deferred sync is listed: %s", out);
    json_object_put(js);
    cr_assert_eq(its_cli(&env, "status --org acme", out, sizeof out), 0, "%s", out);
    fprintf(stderr, "sfbridge status:\n%s", out);
    cr_assert(strstr(out, "api budget") && strstr(out, "bulk 33/33 deferring") && strstr(out, "deferred syncs"),
              "%s", out);

    /* 5. a new day at the emulator; the scheduler re-requests the deferred sync at its retry time */
    free(its_sim(&sim, "POST", "/__sim/reset_usage", "{}", &st));
    cr_assert(st == 200 || st == 204, "reset_usage: %ld", st);
    pid_t sc = it_spawn(&env, "sfbridge-scheduler", NULL, "sched-budget");
    struct it_msgs reqs;
    char again_id[40] = "";
    long long deadline = (long long)time(NULL) + 60;
    while (!again_id[0]) {
        it_consume(&env, "sync.requested", 3, 3000, 300, &reqs);
        for (int i = 0; i < reqs.n; i++)
            if (strstr(reqs.m[i].payload, "\"requested_by\":\"scheduler\"")) {
                struct json_object *o = json_parse(reqs.m[i].payload, reqs.m[i].len, &e);
                snprintf(again_id, sizeof again_id, "%s", json_get_str(o, "message_id"));
                json_object_put(o);
            }
        it_msgs_free(&reqs);
        cr_assert((long long)time(NULL) < deadline, "the scheduler re-requests the deferred sync");
    }
    ev = its_completion(&env, again_id, 3, 120000);
    txt = json_object_to_json_string(ev);
    fprintf(stderr, "resumed full sync: %s\n", txt);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", txt);
    /* the rest of the seeded accounts, plus the one the chat write created (newest SystemModstamp, already
     * local from the write: unchanged) */
    cr_assert_eq(its_count(ev, "Account", "inserted"), N_ACC - first, "continues where it stopped: %s", txt);
    cr_assert_eq(its_count(ev, "Account", "fetched"), N_ACC - first + 1, "nothing read twice: %s", txt);
    cr_assert_eq(its_count(ev, "Account", "unchanged"), 1, "the chat-created account: %s", txt);
    long long resumed_pages = (N_ACC - first + 1 + 1999) / 2000;
    cr_assert_eq(json_get_int(ev, "api_calls", -1), 1 + resumed_pages, "GET /limits + the pages: %s", txt);
    snprintf(sql, sizeof sql, "full sync of Account, re-requested by the scheduler: succeeded, %lld rows, %lld call(s)",
             N_ACC - first, (long long)json_get_int(ev, "api_calls", -1));
    completed(sql);
    json_object_put(ev);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM companies WHERE deleted_at IS NULL"), N_ACC + 1,
                 "70,000 synced + the chat-created company");
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM companies WHERE salesforce_id IS NOT NULL"), N_ACC + 1);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM deals"), N_OPP);

    struct calls rc = phase(&sim, "bulk", "resumed full sync");
    cr_assert_eq(rc.total, 1 + resumed_pages, "GET /limits + the pages after the reset");
    cr_assert_eq(rc.limits, 1);
    fprintf(stderr, "\nAPI calls by class (emulator request log, by phase and path):\n%s"
                    "order in which work completed:\n%s\n",
            calls_log, order_log);
    cr_assert_eq(it_stop(sc, 30000), 0);
    cr_assert_eq(it_stop(ww, 30000), 0);
    cr_assert_eq(it_stop(sw, 30000), 0);
    it_sfsim_stop(&sim);
}
