/*
 * Integration (issue 5): scaling and replays.
 *  - two sfbridge-sync replicas in one group while 200 sync requests for 4 connections
 *    arrive: every request completes once, tables hold each org's copy exactly;
 *  - rebuild: empty the synced state (the four tables, sync_state, sync_runs, the inbox),
 *    `sfbridge replay --topic sync.requested --from earliest --group NEW` and one replica
 *    of the new group: the checksum over the mapped columns equals the two-replica run's.
 */
#include <sys/wait.h>

#include "it_sync_lib.h"

#define DEMO "tests/demo/mappings.json"
#define NREQ 200

/* distinct request_ids among the completions (a redelivery after a rebalance re-emits the stored
 * result: at-least-once; the inbox guarantees it is the same result) */
static int distinct_requests(const struct it_msgs *m, int *succeeded)
{
    char (*seen)[40] = calloc((size_t)m->n + 1, 40);
    int n = 0;
    *succeeded = 0;
    for (int i = 0; i < m->n; i++) {
        const char *p = strstr(m->m[i].payload, "\"request_id\":\"");
        if (!p)
            continue;
        p += 14;
        bool dup = false;
        for (int k = 0; k < n && !dup; k++)
            dup = !strncmp(seen[k], p, 36);
        if (dup)
            continue;
        memcpy(seen[n], p, 36);
        seen[n++][36] = '\0';
        if (strstr(m->m[i].payload, "\"status\":\"succeeded\""))
            (*succeeded)++;
    }
    free(seen);
    return n;
}

Test(it_sync_replicas, two_replicas_then_replay_rebuilds_identically, .timeout = 400)
{
    struct it_env env;
    it_env_init(&env);
    struct it_sfsim sim;
    const char *args[] = {"--seed-accounts", "300", "--seed-contacts", "600", "--seed-opportunities", "200",
                          "--seed-interactions", "200", "--quiet", NULL};
    it_sfsim_start(&env, &sim, args);
    const char *orgs[4] = {"org-a", "org-b", "org-c", "org-d"};
    char conns[4][37];
    for (int i = 0; i < 4; i++) {
        its_connection(&env, &sim, orgs[i], conns[i]);
        its_import(&env, orgs[i], DEMO);
    }
    const char *extra[] = {"SFBRIDGE_TOKEN_KEY=" ITS_TOKEN_KEY, NULL};
    pid_t w1 = it_spawn(&env, "sfbridge-sync", extra, "sync-rep1");
    pid_t w2 = it_spawn(&env, "sfbridge-sync", extra, "sync-rep2");
    for (int i = 0; i < NREQ; i++) {
        const char *mode = (i < 4 || i % 25 == 0) ? "full" : "incremental";
        its_request(&env, orgs[i % 4], conns[i % 4], mode, NULL, NULL);
    }
    struct it_msgs done;
    int ok = 0, got = 0;
    for (int tries = 0; tries < 60 && got < NREQ; tries++) {
        it_consume(&env, "sync.completed", NREQ, 300000, 2000, &done);
        got = distinct_requests(&done, &ok);
        it_msgs_free(&done);
    }
    cr_assert_eq(got, NREQ, "every request completes (%d)", got);
    cr_assert_eq(ok, NREQ, "all succeeded (%d of %d)", ok, NREQ);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM processed_messages"), NREQ, "each applied once");
    /* both replicas did work */
    char path[128];
    snprintf(path, sizeof path, "build/test-logs/sync-rep1-%d.log", (int)w1);
    char *l1 = it_read_file(path);
    snprintf(path, sizeof path, "build/test-logs/sync-rep2-%d.log", (int)w2);
    char *l2 = it_read_file(path);
    cr_assert(l1 && strstr(l1, "succeeded:"), "replica 1 handled requests");
    cr_assert(l2 && strstr(l2, "succeeded:"), "replica 2 handled requests");
    free(l1);
    free(l2);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM companies"), 4 * 300);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM contacts"), 4 * 600);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM deals"), 4 * 200);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM activities"), 4 * 200);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM contacts t JOIN companies c ON c.id = t.company_id "
                                   "AND c.salesforce_id = t.company_sf_id AND c.org_id = t.org_id"),
                 4 * 600);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"), NREQ);
    char *sum1 = its_checksum(&env);
    cr_assert(sum1 && *sum1);
    cr_assert_eq(it_stop(w1, 30000), 0);
    cr_assert_eq(it_stop(w2, 30000), 0);

    /* rebuild from the topic */
    it_sql_ok(&env, "TRUNCATE activities, deals, contacts, companies, sync_state, sync_runs, processed_messages");
    char group[160], cmd[512], out[2048];
    snprintf(group, sizeof group, "%s-replay", env.group);
    snprintf(cmd, sizeof cmd, "replay --topic sync.requested --from earliest --group %s", group);
    setenv("SFBRIDGE_KAFKA_BROKERS", env.brokers, 1);
    setenv("SFBRIDGE_TOPIC_PREFIX", env.prefix, 1);
    int rc = its_cli(&env, cmd, out, sizeof out);
    cr_assert_eq(rc, 0, "sfbridge replay failed (%d): %s", rc, out);
    char gid[200];
    snprintf(gid, sizeof gid, "SFBRIDGE_GROUP_ID=%s", group);
    const char *extra2[] = {"SFBRIDGE_TOKEN_KEY=" ITS_TOKEN_KEY, gid, NULL};
    pid_t w3 = it_spawn(&env, "sfbridge-sync", extra2, "sync-replay");
    for (int tries = 0; tries < 60; tries++) {
        if (it_sql_long(&env, "SELECT count(*) FROM processed_messages") == NREQ)
            break;
        sleep(2);
    }
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM processed_messages"), NREQ, "every request re-driven");
    it_consume(&env, "sync.completed", 2 * NREQ, 60000, 2000, &done);
    cr_assert_geq(done.n, 2 * NREQ, "every request answered again (%d)", done.n);
    it_msgs_free(&done);
    char *sum2 = its_checksum(&env);
    cr_assert_str_eq(sum1, sum2, "a replay into an empty database rebuilds identical tables");
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM companies"), 4 * 300);
    free(sum1);
    free(sum2);
    cr_assert_eq(it_stop(w3, 30000), 0);
    it_sfsim_stop(&sim);
}
