/*
 * Integration: the worker loop on the real rig (issue 2 acceptance).
 *  - not-JSON and schema-invalid messages land on <topic>.dlq with a header naming the error,
 *    a valid one gets exactly one completion, and the worker keeps consuming;
 *  - SIGKILL after the handler's commit but before the offset commit: after a restart the
 *    message's effect is in processed_messages exactly once and one completion is emitted;
 *  - `sfbridge migrate` twice: the second changes nothing; workers refuse an unknown schema;
 *  - bad configuration: every problem printed, exit 78; SIGTERM drains and exits 0.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itlib.h"

static void org_and_connection(const struct it_env *env, bool enabled, char conn[37])
{
    it_uuid(conn);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO organizations (org_id, salesforce_enabled) VALUES ('acme', %s);"
             "INSERT INTO connections (connection_id, org_id, user_id, status) VALUES ('%s', 'acme', 'u1', 'connected');",
             enabled ? "true" : "false", conn);
    it_sql_ok(env, sql);
}

static int sync_request(char *buf, size_t cap, const char *msg_id, const char *conn)
{
    return snprintf(buf, cap,
                    "{\"message_id\":\"%s\",\"org_id\":\"acme\",\"connection_id\":\"%s\","
                    "\"created_at\":\"2026-12-03T10:00:00Z\",\"mode\":\"full\",\"requested_by\":\"it\"}",
                    msg_id, conn);
}

Test(it_foundation, dlq_and_one_completion, .timeout = 120)
{
    struct it_env env;
    it_env_init(&env);
    char conn[37], id1[37], id2[37], buf[1024];
    org_and_connection(&env, false, conn);
    pid_t w = it_spawn(&env, "sfbridge-sync", NULL, "sync-dlq");

    it_produce(&env, "sync.requested", conn, "this is not json{", strlen("this is not json{"));
    const char *invalid = "{\"message_id\":\"not-a-uuid\",\"org_id\":\"acme\",\"mode\":\"sometimes\"}";
    it_produce(&env, "sync.requested", conn, invalid, strlen(invalid));
    it_uuid(id1);
    int n = sync_request(buf, sizeof buf, id1, conn);
    it_produce(&env, "sync.requested", conn, buf, (size_t)n);

    struct it_msgs dlq, done;
    it_consume(&env, "sync.requested.dlq", 2, 60000, 1500, &dlq);
    cr_assert_eq(dlq.n, 2, "expected 2 dead letters, got %d", dlq.n);
    int not_json = 0, invalid_seen = 0;
    for (int i = 0; i < dlq.n; i++) {
        cr_assert(dlq.m[i].error_code, "dead letter without x-error-code header");
        cr_assert(dlq.m[i].error && *dlq.m[i].error, "dead letter without x-error header");
        if (!strcmp(dlq.m[i].payload, "this is not json{")) {
            not_json++;
            cr_assert_str_eq(dlq.m[i].error_code, "INVALID_JSON");
        } else {
            cr_assert_str_eq(dlq.m[i].payload, invalid, "the original bytes must be kept");
            cr_assert_str_eq(dlq.m[i].error_code, "INVALID_MESSAGE");
            invalid_seen++;
        }
    }
    cr_assert_eq(not_json, 1);
    cr_assert_eq(invalid_seen, 1);

    it_consume(&env, "sync.completed", 1, 60000, 2000, &done);
    cr_assert_eq(done.n, 1, "expected exactly one sync.completed, got %d", done.n);
    cr_assert(it_msgs_count(&done, id1) == 1, "the completion must answer %s: %s", id1, done.m[0].payload);
    cr_assert(strstr(done.m[0].payload, "\"failed\"") && strstr(done.m[0].payload, "INTEGRATION_DISABLED"),
              "a disabled org's sync must fail with INTEGRATION_DISABLED: %s", done.m[0].payload);
    it_msgs_free(&done);

    /* still consuming */
    it_uuid(id2);
    n = sync_request(buf, sizeof buf, id2, conn);
    it_produce(&env, "sync.requested", conn, buf, (size_t)n);
    it_consume(&env, "sync.completed", 2, 60000, 1500, &done);
    cr_assert_eq(done.n, 2);
    cr_assert_eq(it_msgs_count(&done, id2), 1);
    it_msgs_free(&done);
    it_msgs_free(&dlq);

    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM processed_messages"), 2);
    cr_assert_eq(it_stop(w, 30000), 0, "SIGTERM must drain and exit 0");
}

Test(it_foundation, sigkill_before_offset_commit_applies_once, .timeout = 120)
{
    struct it_env env;
    it_env_init(&env);
    char conn[37], id[37], buf[1024], q[256];
    org_and_connection(&env, false, conn);
    it_uuid(id);
    int n = sync_request(buf, sizeof buf, id, conn);
    it_produce(&env, "sync.requested", conn, buf, (size_t)n);

    /* the fault point kills the worker right after its transaction committed: no event, no offset */
    const char *fault[] = {"SFBRIDGE_FAULT=after_commit", NULL};
    pid_t w = it_spawn(&env, "sfbridge-sync", fault, "sync-crash");
    int rc = it_wait(w, 60000);
    cr_assert_eq(rc, 128 + SIGKILL, "worker should have been SIGKILLed at the fault point (rc %d)", rc);
    snprintf(q, sizeof q, "SELECT count(*) FROM processed_messages WHERE message_id = '%s'", id);
    cr_assert_eq(it_sql_long(&env, q), 1, "the effect was committed before the kill");

    w = it_spawn(&env, "sfbridge-sync", NULL, "sync-restart");
    struct it_msgs done;
    it_consume(&env, "sync.completed", 1, 60000, 3000, &done);
    cr_assert_eq(done.n, 1, "exactly one completion after the restart, got %d", done.n);
    cr_assert_eq(it_msgs_count(&done, id), 1);
    it_msgs_free(&done);
    cr_assert_eq(it_sql_long(&env, q), 1, "redelivery must not apply the message twice");
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM processed_messages"), 1);
    cr_assert_eq(it_stop(w, 30000), 0);
}

static int run_capture(const struct it_env *env, const char *bin, const char *const *extra, char *out, size_t cap)
{
    pid_t p = it_spawn(env, bin, extra, "capture");
    int rc = it_wait(p, 60000);
    /* find the log it_spawn wrote */
    char path[128];
    snprintf(path, sizeof path, "build/test-logs/capture-%d.log", (int)p);
    char *text = it_read_file(path);
    snprintf(out, cap, "%s", text ? text : "");
    free(text);
    return rc;
}

Test(it_foundation, migrate_twice_and_schema_check, .timeout = 120)
{
    struct it_env env;
    it_env_init(&env);
    char out[8192];
    const char *args_env[] = {NULL};
    (void)args_env;
    /* the template is already migrated: migrate again must change nothing */
    long long before = it_sql_long(&env, "SELECT count(*) FROM schema_migrations");
    char *tables_before = it_sql(&env, "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname='public'");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "SFBRIDGE_PG_DSN='%s' %s/sfbridge migrate 2>&1", env.dsn, env.bindir);
    for (int i = 0; i < 2; i++) {
        FILE *f = popen(cmd, "r");
        size_t n = fread(out, 1, sizeof out - 1, f);
        out[n] = '\0';
        cr_assert_eq(pclose(f), 0, "migrate failed: %s", out);
        cr_assert(strstr(out, "nothing to do"), "second migrate must say it changed nothing: %s", out);
    }
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM schema_migrations"), before);
    char *tables_after = it_sql(&env, "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname='public'");
    cr_assert_str_eq(tables_before, tables_after);
    free(tables_before);
    free(tables_after);

    /* a schema version this build does not know */
    it_sql_ok(&env, "INSERT INTO schema_migrations (version, name) VALUES (999, '0999_future.sql')");
    int rc = run_capture(&env, "sfbridge-write", NULL, out, sizeof out);
    cr_assert_eq(rc, 78, "worker must refuse an unknown schema (rc %d): %s", rc, out);
    cr_assert(strstr(out, "newer than this build"), "clear message expected: %s", out);
}

Test(it_foundation, bad_config_prints_every_problem, .timeout = 60)
{
    struct it_env env;
    it_env_init(&env);
    char out[8192];
    const char *bad[] = {"SF_TIMEOUT_MS=soon", "SFBRIDGE_LOG_LEVEL=chatty", "SF_LOGIN_URL=ftp://x", NULL};
    int rc = run_capture(&env, "sfbridge-token", bad, out, sizeof out);
    cr_assert_eq(rc, 78, "exit 78 expected, got %d: %s", rc, out);
    cr_assert(strstr(out, "SF_TIMEOUT_MS"), "%s", out);
    cr_assert(strstr(out, "SFBRIDGE_LOG_LEVEL"), "%s", out);
    cr_assert(strstr(out, "SF_LOGIN_URL"), "%s", out);
}

/* An input just under the broker's size limit whose DLQ copy (plus error headers) is over it: the
 * worker dead-letters its first 64 KiB with x-truncated / x-original-size instead of retrying forever,
 * and the partition keeps moving (found by the reliability harness). */
Test(it_foundation, oversized_dead_letter_is_truncated_not_stuck, .timeout = 120)
{
    struct it_env env;
    it_env_init(&env);
    char conn[37], id[37], buf[1024];
    org_and_connection(&env, false, conn);
    size_t big = 1048400;
    char *payload = malloc(big);
    cr_assert(payload);
    memset(payload, 'x', big);
    payload[0] = '{';
    it_produce(&env, "sync.requested", conn, payload, big);
    free(payload);
    it_uuid(id);
    int n = sync_request(buf, sizeof buf, id, conn);
    it_produce(&env, "sync.requested", conn, buf, (size_t)n);
    pid_t w = it_spawn(&env, "sfbridge-sync", NULL, "sync-bigdlq");

    struct it_msgs done, dlq;
    it_consume(&env, "sync.completed", 1, 60000, 1000, &done);
    cr_assert_eq(done.n, 1, "the message after the oversized one must be answered, got %d", done.n);
    cr_assert_eq(it_msgs_count(&done, id), 1);
    it_msgs_free(&done);
    it_consume(&env, "sync.requested.dlq", 1, 30000, 1000, &dlq);
    cr_assert_eq(dlq.n, 1, "one (truncated) dead letter, got %d", dlq.n);
    cr_assert_eq(dlq.m[0].len, 65536, "the copy keeps the first 64 KiB, got %zu bytes", dlq.m[0].len);
    cr_assert(dlq.m[0].error_code, "the truncated copy still names the error");
    it_msgs_free(&dlq);
    cr_assert_eq(it_stop(w, 30000), 0);
}
