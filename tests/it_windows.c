/*
 * Integration (issue 9, item 2): adaptive SystemModstamp windows.
 *  - a skewed object: 100,000 Accounts created through the REST collections API in a few
 *    seconds (so thousands share each SystemModstamp second, all within one minute);
 *  - the emulator fails every query / Bulk job over QTO records with QUERY_TIMEOUT;
 *  - a full sync splits its window in halves down to one second, reads the seconds that are
 *    still too big in LIMIT pages by (SystemModstamp, Id), and ends with exact counts: every
 *    record once (fetched = inserted = 100,000, no unchanged = no duplicate), no successful
 *    query over QTO records;
 *  - the window that worked is remembered (sync_state.window_seconds) and the next
 *    (incremental) sync starts with a bounded window, updating exactly the changed records.
 */
#include <sys/wait.h>

#include "it_sync_lib.h"
#include "sf.h"

#define N_SKEW 100000
#define QTO 3000

static const char *mapping_json =
    "{\"objects\": [{\"sf_object\": \"Account\", \"platform_object\": \"Company\", \"enabled\": true, \"fields\": ["
    "  {\"sf_field\": \"Name\", \"platform_field\": \"name\", \"direction\": \"both\"},"
    "  {\"sf_field\": \"Tier__c\", \"platform_field\": \"tier\", \"direction\": \"both\"}]}]}";

static char *sim_token(const struct it_sfsim *sim)
{
    long st = 0;
    char *body = its_sim(sim, "GET", "/__sim/token", NULL, &st);
    cr_assert_eq(st, 200);
    struct err e = ERR_INIT;
    struct json_object *o = json_parse(body, strlen(body), &e);
    cr_assert(o, "%s", e.msg);
    char *t = strdup(json_get_str(o, "access_token"));
    json_object_put(o);
    free(body);
    return t;
}

/* n Accounts through POST /composite/sobjects (200 per call): they get SystemModstamp = now */
static void create_accounts(const struct it_sfsim *sim, int n)
{
    struct err e = ERR_INIT;
    struct sf_options o;
    sf_options_init(&o);
    struct sf_client *c = sf_client_new(&o, &e);
    cr_assert(c, "%s", e.msg);
    char *tok = sim_token(sim);
    sf_client_set_session(c, sim->url, tok);
    struct pg_buf b = {0};
    for (int i = 0; i < n; i += 200) {
        b.len = 0;
        const char *head = "{\"allOrNone\":true,\"records\":[";
        pg_buf_append(&b, head, strlen(head));
        for (int j = i; j < i + 200 && j < n; j++) {
            char rec[160];
            int len = snprintf(rec, sizeof rec, "%s{\"attributes\":{\"type\":\"Account\"},\"Name\":\"Skew %06d\"}",
                               j > i ? "," : "", j);
            pg_buf_append(&b, rec, (size_t)len);
        }
        pg_buf_append(&b, "]}", 2);
        struct sf_response r = {.records = -1};
        cr_assert(sf_call(c, "POST", "/composite/sobjects", NULL, b.data, b.len, &r, &e), "create: %s", e.msg);
        cr_assert_eq(r.status, 200);
        sf_response_cleanup(&r);
    }
    pg_buf_free(&b);
    free(tok);
    sf_client_free(&c);
}

struct reqlog {
    int queries, timeouts, over_qto_ok, bounded_first;
};

/* /query requests since `since_seq`: how many, how many timed out, whether the first was bounded */
static void read_log(const struct it_sfsim *sim, struct reqlog *out)
{
    memset(out, 0, sizeof *out);
    long st = 0;
    char *body = its_sim(sim, "GET", "/__sim/requests", NULL, &st);
    cr_assert_eq(st, 200);
    struct err e = ERR_INIT;
    struct json_object *a = json_parse(body, strlen(body), &e);
    cr_assert(a, "%s", e.msg);
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        struct json_object *r = json_object_array_get_idx(a, i);
        const char *p = json_get_str(r, "path"), *q = json_get_str(r, "query");
        if (!p || !strstr(p, "/query") || strstr(p, "/jobs/"))
            continue;
        out->queries++;
        long status = (long)json_get_int(r, "status", 0);
        if (status == 400)
            out->timeouts++;
        if (out->queries == 1 && q && (strstr(q, "%3C") || strstr(q, "<")))
            out->bounded_first = 1;
    }
    json_object_put(a);
    free(body);
}

Test(it_windows, skewed_100k_in_one_minute_exact_counts, .timeout = 300)
{
    struct it_env env;
    it_env_init(&env);
    struct it_sfsim sim;
    const char *args[] = {"--api-limit", "1000000", "--quiet", NULL};
    it_sfsim_start(&env, &sim, args);
    char conn[37], id[37], sql[512], file[128];
    its_connection(&env, &sim, "acme", conn);
    snprintf(file, sizeof file, "/tmp/it_windows_%d.json", (int)getpid());
    FILE *f = fopen(file, "w");
    cr_assert(f);
    fputs(mapping_json, f);
    fclose(f);
    its_import(&env, "acme", file);
    unlink(file);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    create_accounts(&sim, N_SKEW);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double create_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr, "created %d accounts in %.1f s\n", N_SKEW, create_s);
    cr_assert_lt(create_s, 55.0, "the skew must fit in one minute of SystemModstamp");

    long st = 0;
    free(its_sim(&sim, "DELETE", "/__sim/requests", NULL, &st));
    snprintf(sql, sizeof sql, "{\"query_timeout_above\": %d}", QTO);
    free(its_sim(&sim, "POST", "/__sim/faults", sql, &st));
    cr_assert_eq(st, 200);

    const char *extra[] = {"SFBRIDGE_TOKEN_KEY=" ITS_TOKEN_KEY, NULL};
    pid_t w = it_spawn(&env, "sfbridge-sync", extra, "sync-windows");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    its_request(&env, "acme", conn, "full", NULL, id);
    struct json_object *ev = its_completion(&env, id, 1, 240000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double sync_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    const char *txt = json_object_to_json_string(ev);
    struct reqlog lg;
    read_log(&sim, &lg);
    fprintf(stderr, "full sync of the skewed object: %.1f s, %d queries (%d QUERY_TIMEOUT), %s\n", sync_s, lg.queries,
            lg.timeouts, txt);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", txt);
    cr_assert_eq(its_count(ev, "Account", "fetched"), N_SKEW, "every record read once: %s", txt);
    cr_assert_eq(its_count(ev, "Account", "inserted"), N_SKEW, "%s", txt);
    cr_assert_eq(its_count(ev, "Account", "unchanged"), 0, "no record read twice: %s", txt);
    cr_assert_eq(its_count(ev, "Account", "updated"), 0, "%s", txt);
    cr_assert_gt(lg.timeouts, 0, "the emulator did time out the big windows");
    cr_assert_eq(it_sql_long(&env, "SELECT count(DISTINCT salesforce_id) FROM companies WHERE deleted_at IS NULL"),
                 N_SKEW);
    cr_assert_eq(it_sql_long(&env, "SELECT count(DISTINCT name) FROM companies"), N_SKEW);
    long long span = it_sql_long(&env, "SELECT extract(epoch FROM max(sf_modstamp) - min(sf_modstamp))::bigint "
                                       "FROM companies");
    long long top = it_sql_long(&env, "SELECT max(n) FROM (SELECT count(*) n FROM companies GROUP BY sf_modstamp) x");
    fprintf(stderr, "SystemModstamp span %lld s, up to %lld records share one second\n", span, top);
    cr_assert_lt(span, 60, "skewed: all in one minute");
    cr_assert_gt(top, QTO, "some second holds more than the timeout threshold: paged by Id within the instant");
    snprintf(sql, sizeof sql,
             "SELECT COALESCE(window_seconds, 0) FROM sync_state WHERE connection_id = '%s' AND sf_object = 'Account'",
             conn);
    long long ws = it_sql_long(&env, sql);
    fprintf(stderr, "remembered window: %lld s\n", ws);
    cr_assert_gt(ws, 0, "a good window size is remembered");
    cr_assert_lt(ws, 60);
    json_object_put(ev);

    /* change 5 records; the next (incremental) sync starts with the remembered window */
    char *ids = it_sql(&env, "SELECT string_agg(salesforce_id, ' ') FROM (SELECT salesforce_id FROM companies "
                             "ORDER BY name LIMIT 5) x");
    sleep(1);
    for (char *tok = ids; tok && *tok;) {
        char *sp = strchr(tok, ' ');
        if (sp)
            *sp = '\0';
        char path[128];
        snprintf(path, sizeof path, "/__sim/records/Account/%s", tok);
        tok = sp ? sp + 1 : NULL;
        free(its_sim(&sim, "PATCH", path, "{\"Tier__c\": \"Gold\"}", &st));
        cr_assert(st == 200 || st == 204, "PATCH: %ld", st);
    }
    free(ids);
    free(its_sim(&sim, "DELETE", "/__sim/requests", NULL, &st));
    its_request(&env, "acme", conn, "incremental", NULL, id);
    ev = its_completion(&env, id, 2, 120000);
    txt = json_object_to_json_string(ev);
    read_log(&sim, &lg);
    fprintf(stderr, "incremental: %d queries (%d QUERY_TIMEOUT), first bounded %d, %s\n", lg.queries, lg.timeouts,
            lg.bounded_first, txt);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", txt);
    cr_assert_eq(its_count(ev, "Account", "updated"), 5, "%s", txt);
    cr_assert_eq(its_count(ev, "Account", "inserted"), 0, "%s", txt);
    cr_assert_eq(lg.bounded_first, 1, "the first query of the next run uses the remembered window");
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM companies WHERE attributes->>'tier' = 'Gold'"), 5);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM companies"), N_SKEW);
    json_object_put(ev);
    cr_assert_eq(it_stop(w, 30000), 0);
    it_sfsim_stop(&sim);
}

/* A failed Bulk job splits the window too; the records it would have read come in smaller windows */
Test(it_windows, failed_bulk_job_splits_the_window, .timeout = 180)
{
    struct it_env env;
    it_env_init(&env);
    struct it_sfsim sim;
    const char *args[] = {"--seed-accounts", "6000", "--quiet", NULL};
    it_sfsim_start(&env, &sim, args);
    char conn[37], id[37], sql[512], file[128];
    its_connection(&env, &sim, "acme", conn);
    snprintf(file, sizeof file, "/tmp/it_windows_b_%d.json", (int)getpid());
    FILE *f = fopen(file, "w");
    cr_assert(f);
    fputs(mapping_json, f);
    fclose(f);
    its_import(&env, "acme", file);
    unlink(file);
    long st = 0;
    free(its_sim(&sim, "POST", "/__sim/faults", "{\"bulk_fail_next\": 1}", &st));
    cr_assert_eq(st, 200);
    const char *extra[] = {"SFBRIDGE_TOKEN_KEY=" ITS_TOKEN_KEY, "SFBRIDGE_BULK_THRESHOLD=1000", NULL};
    pid_t w = it_spawn(&env, "sfbridge-sync", extra, "sync-windows-bulk");
    its_request(&env, "acme", conn, "full", NULL, id);
    struct json_object *ev = its_completion(&env, id, 1, 120000);
    const char *txt = json_object_to_json_string(ev);
    fprintf(stderr, "full sync with a failed Bulk job: %d bulk job requests, %s\n",
            its_sim_requests(&sim, "/jobs/query", NULL), txt);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", txt);
    cr_assert_eq(its_count(ev, "Account", "fetched"), 6000, "%s", txt);
    cr_assert_eq(its_count(ev, "Account", "inserted"), 6000, "%s", txt);
    cr_assert_eq(its_count(ev, "Account", "unchanged"), 0, "%s", txt);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM companies"), 6000);
    snprintf(sql, sizeof sql,
             "SELECT COALESCE(window_seconds, 0) FROM sync_state WHERE connection_id = '%s' AND sf_object = 'Account'",
             conn);
    cr_assert_gt(it_sql_long(&env, sql), 0, "the window that worked is remembered");
    json_object_put(ev);
    cr_assert_eq(it_stop(w, 30000), 0);
    it_sfsim_stop(&sim);
}
