/*
 * Security (issue 7 item 6), against the real workers, emulator, Kafka and PostgreSQL:
 *   - no token anywhere: after a full run (OAuth connect through `sfbridge connect` and the
 *     token worker, syncs, writes, a forced session expiry with refresh-token rotation, an
 *     explicit refresh, a dead-lettered message), every access/refresh token the emulator
 *     issued to sfbridge (read back by decrypting the connection row) is searched in every
 *     log of build/test-logs, every event and header of every topic (DLQ copies included),
 *     the CLI's output and the rows of the database; the stored ciphertexts hold no plaintext;
 *   - TLS verification on by default: a worker pointed at the emulator in HTTPS mode with the
 *     wrong CA (SF_CA_FILE) fails with TLS_ERROR and says so; with the right CA it works;
 *   - tenant isolation: jobs naming org A with org B's connection are refused FORBIDDEN by
 *     the sync, write and token workers, with zero requests to Salesforce and nothing stored;
 *   - least privilege: as the sfbridge_worker role, DDL and UPDATE/DELETE/TRUNCATE of
 *     audit_log and writes to admin-owned tables are refused, while the real workers, running
 *     as that role, sync and write successfully;
 *   - the admin CLI never prints secrets (`sfbridge config` masks them, `connect start` never
 *     shows the PKCE verifier, `status` shows no token).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chaos/relib.h"
#include "crypto.h"
#include "itlib.h"
#include "json.h"
#include "kafka.h"

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

/* Run a CLI command line with the test's environment; returns its combined output (caller frees). */
static char *cli(const struct it_env *env, const char *sim_url, const char *args, int *rc)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "SFBRIDGE_PG_DSN='%s' SFBRIDGE_KAFKA_BROKERS='%s' SFBRIDGE_TOPIC_PREFIX='%s' SF_LOGIN_URL='%s' "
             "SFBRIDGE_LOG_LEVEL=info '%s/sfbridge' %s 2>&1",
             env->dsn, env->brokers, env->prefix, sim_url ? sim_url : "http://127.0.0.1:1", env->bindir, args);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    size_t cap = 65536, n = 0;
    char *out = malloc(cap);
    size_t got;
    while ((got = fread(out + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (n + 1 >= cap) {
            cap *= 2;
            out = realloc(out, cap);
        }
    }
    out[n] = '\0';
    int st = pclose(p);
    if (rc)
        *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

/* Wait for an event answering request_id on a (logical) topic; returns it (caller puts) or NULL. */
static struct json_object *wait_event(const struct it_env *env, const char *topic, const char *request_id,
                                      int timeout_ms)
{
    long long start = mono_ms();
    while (mono_ms() - start < timeout_ms) {
        struct it_msgs ms;
        it_consume(env, topic, 1 << 30, 2000, 0, &ms);
        for (int i = 0; i < ms.n; i++) {
            if (!strstr(ms.m[i].payload, request_id))
                continue;
            struct json_object *o = json_tokener_parse(ms.m[i].payload);
            if (o && json_get_str(o, "request_id") && !strcmp(json_get_str(o, "request_id"), request_id)) {
                it_msgs_free(&ms);
                return o;
            }
            json_object_put(o);
        }
        it_msgs_free(&ms);
    }
    return NULL;
}

static void sync_job(struct rel_producer *rp, const char *org, const char *conn, const char *mode, char id[37])
{
    char buf[1024], ts[40];
    it_uuid(id);
    json_now_rfc3339(ts, sizeof ts);
    int len = snprintf(buf, sizeof buf,
                       "{\"message_id\":\"%s\",\"org_id\":\"%s\",\"connection_id\":\"%s\",\"created_at\":\"%s\","
                       "\"mode\":\"%s\",\"objects\":[\"Account\",\"Contact\"],\"requested_by\":\"it-security\"}",
                       id, org, conn, ts, mode);
    rel_produce(rp, "sync.requested", conn, buf, (size_t)len);
    rel_producer_flush(rp);
}

static void write_job(struct rel_producer *rp, const char *org, const char *conn, const char *email, char id[37])
{
    char buf[2048], ts[40];
    it_uuid(id);
    json_now_rfc3339(ts, sizeof ts);
    int len = snprintf(buf, sizeof buf,
                       "{\"message_id\":\"%s\",\"org_id\":\"%s\",\"connection_id\":\"%s\",\"created_at\":\"%s\","
                       "\"actor\":\"user:sec\",\"source\":\"chat\",\"all_or_none\":true,"
                       "\"operations\":[{\"ref\":\"c\",\"object\":\"Contact\",\"action\":\"create\","
                       "\"fields\":{\"first_name\":\"Sec\",\"last_name\":\"Urity\",\"email\":\"%s\"}}]}",
                       id, org, conn, ts, email);
    rel_produce(rp, "record.write", conn, buf, (size_t)len);
    rel_producer_flush(rp);
}

static void refresh_job(struct rel_producer *rp, const char *org, const char *conn, char id[37])
{
    char buf[1024], ts[40];
    it_uuid(id);
    json_now_rfc3339(ts, sizeof ts);
    int len = snprintf(buf, sizeof buf,
                       "{\"message_id\":\"%s\",\"org_id\":\"%s\",\"connection_id\":\"%s\",\"created_at\":\"%s\","
                       "\"grant\":\"refresh_token\",\"requested_by\":\"it-security\"}",
                       id, org, conn, ts);
    rel_produce(rp, "token.refresh", conn, buf, (size_t)len);
    rel_producer_flush(rp);
}

static const char *status_of(struct json_object *ev) { return ev ? json_get_str(ev, "status") : "(none)"; }

static const char *code_of(struct json_object *ev)
{
    struct json_object *er = ev ? json_get(ev, "error") : NULL;
    const char *c = er ? json_get_str(er, "code") : NULL;
    return c ? c : "";
}

/* ---------------------------------------------------------------- token scan */

struct tokset {
    char *t[64];
    int n;
};

static void tok_add(struct tokset *s, const char *t)
{
    if (!t || strlen(t) < 16)
        return;
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->t[i], t))
            return;
    cr_assert(s->n < 64);
    s->t[s->n++] = strdup(t);
}

/* Decrypt the connection's stored tokens and add them to the set; also checks that the
 * ciphertexts do not contain them. */
static void collect_tokens(const struct it_env *env, const char *conn, struct tokset *s)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT access_token_enc FROM connections WHERE connection_id = '%s'", conn);
    char *aenc = it_sql(env, sql);
    snprintf(sql, sizeof sql, "SELECT refresh_token_enc FROM connections WHERE connection_id = '%s'", conn);
    char *renc = it_sql(env, sql);
    snprintf(sql, sizeof sql, "SELECT token_key_id FROM connections WHERE connection_id = '%s'", conn);
    char *kid = it_sql(env, sql);
    cr_assert(aenc && kid, "the connection has no stored access token");
    unsigned char key[32];
    struct err e = ERR_INIT;
    cr_assert(crypto_key_from_b64(getenv("SFBRIDGE_TOKEN_KEY"), key, &e), "%s", e.msg);
    char *a = crypto_open(key, kid, aenc, &e);
    cr_assert(a, "cannot decrypt the stored access token: %s", e.msg);
    cr_expect(!strstr(aenc, a), "the stored access token is not encrypted");
    tok_add(s, a);
    free(a);
    if (renc) {
        char *r = crypto_open(key, kid, renc, &e);
        cr_assert(r, "cannot decrypt the stored refresh token: %s", e.msg);
        cr_expect(!strstr(renc, r), "the stored refresh token is not encrypted");
        tok_add(s, r);
        free(r);
    }
    free(aenc);
    free(renc);
    free(kid);
}

/* Occurrences of any token in buf[0..len). */
static int scan_buf(const struct tokset *s, const char *buf, size_t len, const char *where, char *first, size_t cap)
{
    int hits = 0;
    for (int i = 0; i < s->n; i++) {
        if (memmem(buf, len, s->t[i], strlen(s->t[i]))) {
            hits++;
            if (!first[0])
                snprintf(first, cap, "token %d in %s", i, where);
        }
    }
    return hits;
}

Test(it_security, no_token_in_logs_events_dlq_cli_or_rows, .timeout = 300)
{
    struct it_env env;
    it_env_init(&env);
    rel_token_key_env();
    struct it_sfsim sim;
    const char *simargs[] = {"--seed-accounts", "30", "--seed-contacts", "30", "--rotate-refresh-tokens", "--quiet", NULL};
    it_sfsim_start(&env, &sim, simargs);
    setenv("SF_LOGIN_URL", sim.url, 1);
    rel_org(&env, "sec-org", true);
    rel_demo_mappings(&env, "sec-org");

    char g[3][160];
    const char *bins[3] = {"sfbridge-token", "sfbridge-sync", "sfbridge-write"};
    const char *labels[3] = {"sec-token", "sec-sync", "sec-write"};
    pid_t ws[3];
    for (int i = 0; i < 3; i++) {
        snprintf(g[i], sizeof g[i], "SFBRIDGE_GROUP_ID=%s-%s", env.group, bins[i]);
        const char *ex[] = {g[i], NULL};
        ws[i] = it_spawn(&env, bins[i], ex, labels[i]);
    }

    /* connect like a user: connect start -> authorize -> connect finish -> token worker */
    size_t outcap = 1 << 20, outlen = 0;
    char *cli_out = calloc(1, outcap);
    int rc = 0;
    char *o = cli(&env, sim.url, "connect start --org sec-org --user user:sec --redirect-uri http://127.0.0.1:1/cb --json",
                  &rc);
    cr_assert_eq(rc, 0, "connect start: %s", o);
    outlen += (size_t)snprintf(cli_out + outlen, outcap - outlen, "%s\n", o);
    const char *brace = strchr(o, '{');
    struct json_object *js = brace ? json_tokener_parse(brace) : NULL;
    cr_assert(js, "connect start --json printed no JSON: %s", o);
    const char *url = json_get_str(js, "url") ? json_get_str(js, "url") : json_get_str(js, "authorize_url");
    const char *state = json_get_str(js, "state");
    cr_assert(url && state, "connect start --json: no url/state: %s", o);
    char *code = rel_code_from_authorize_url(url);
    char args[1024];
    snprintf(args, sizeof args, "connect finish --code '%s' --state '%s'", code, state);
    json_object_put(js);
    free(o);
    o = cli(&env, sim.url, args, &rc);
    cr_assert_eq(rc, 0, "connect finish: %s", o);
    outlen += (size_t)snprintf(cli_out + outlen, outcap - outlen, "%s\n", o);
    free(o);
    free(code);
    char conn[37] = "";
    for (int i = 0; i < 150 && !conn[0]; i++) {
        char *c = it_sql(&env, "SELECT connection_id FROM connections WHERE org_id = 'sec-org' AND status = 'connected' "
                               "AND access_token_enc IS NOT NULL");
        if (c)
            snprintf(conn, sizeof conn, "%s", c);
        free(c);
        if (!conn[0])
            sleep_ms(200);
    }
    cr_assert(conn[0], "the token worker did not create the connection");
    struct tokset toks = {0};
    collect_tokens(&env, conn, &toks);

    /* a full run: sync, write, expired session (refresh with rotation), explicit refresh */
    struct rel_producer rp;
    rel_producer_open(&rp, &env);
    char id[37];
    sync_job(&rp, "sec-org", conn, "full", id);
    struct json_object *ev = wait_event(&env, "sync.completed", id, 90000);
    cr_assert(ev && !strcmp(status_of(ev), "succeeded"), "sync: %s %s", status_of(ev), code_of(ev));
    json_object_put(ev);
    write_job(&rp, "sec-org", conn, "sec-1@example.com", id);
    ev = wait_event(&env, "record.written", id, 90000);
    cr_assert(ev && !strcmp(status_of(ev), "succeeded"), "write: %s %s", status_of(ev), code_of(ev));
    json_object_put(ev);
    rel_sim_post(&sim, "/__sim/faults", "{\"expire_sessions\":true}");
    sync_job(&rp, "sec-org", conn, "incremental", id);
    ev = wait_event(&env, "sync.completed", id, 90000);
    cr_assert(ev && !strcmp(status_of(ev), "succeeded"), "sync after expiry: %s %s", status_of(ev), code_of(ev));
    json_object_put(ev);
    collect_tokens(&env, conn, &toks);
    refresh_job(&rp, "sec-org", conn, id);
    ev = wait_event(&env, "token.refreshed", id, 60000);
    cr_assert(ev, "no token.refreshed for the explicit refresh");
    json_object_put(ev);
    collect_tokens(&env, conn, &toks);
    /* something for the DLQ too */
    rel_produce(&rp, "token.refresh", conn, "{\"grant\":\"refresh_token\",\"oops\":", 33);
    rel_producer_flush(&rp);
    rel_producer_close(&rp);
    sleep_ms(2000);
    cr_assert(toks.n >= 4, "expected at least 4 distinct tokens (initial, refreshed, rotated), got %d", toks.n);

    o = cli(&env, sim.url, "status --org sec-org", &rc);
    outlen += (size_t)snprintf(cli_out + outlen, outcap - outlen, "%s\n", o);
    free(o);
    o = cli(&env, sim.url, "status --org sec-org --json", &rc);
    outlen += (size_t)snprintf(cli_out + outlen, outcap - outlen, "%s\n", o);
    free(o);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(it_stop(ws[i], 30000), 0, "%s must drain and exit 0", bins[i]);

    /* 1. every log */
    char first[512] = "";
    int hits = 0, files = 0, sim_hits = 0;
    DIR *d = opendir("build/test-logs");
    cr_assert(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[600];
        snprintf(path, sizeof path, "build/test-logs/%s", de->d_name);
        char *text = it_read_file(path);
        if (!text)
            continue;
        files++;
        /* the emulator is a test tool, not sfbridge: reported, not failed */
        if (!strncmp(de->d_name, "sfsim-", 6))
            sim_hits += scan_buf(&toks, text, strlen(text), path, (char[2]){0}, 1);
        else
            hits += scan_buf(&toks, text, strlen(text), path, first, sizeof first);
        free(text);
    }
    closedir(d);
    /* 2. every event and header of every topic, DLQs included */
    int events = 0;
    for (int k = 0; k < 2; k++) {
        const char *const *list = k == 0 ? cfg_input_topics : cfg_output_topics;
        for (int i = 0; list[i]; i++) {
            for (int dlq = 0; dlq < (k == 0 ? 2 : 1); dlq++) {
                char t[128];
                snprintf(t, sizeof t, "%s%s", list[i], dlq ? ".dlq" : "");
                struct it_msgs ms;
                it_consume(&env, t, 1 << 30, 3000, 0, &ms);
                for (int m = 0; m < ms.n; m++) {
                    events++;
                    hits += scan_buf(&toks, ms.m[m].payload, ms.m[m].len, t, first, sizeof first);
                    if (ms.m[m].error)
                        hits += scan_buf(&toks, ms.m[m].error, strlen(ms.m[m].error), t, first, sizeof first);
                }
                it_msgs_free(&ms);
            }
        }
    }
    /* 3. the CLI's output */
    hits += scan_buf(&toks, cli_out, outlen, "CLI output", first, sizeof first);
    /* 4. the rows of the database (tokens only as ciphertext) */
    char *rows = it_sql(&env,
                        "SELECT concat_ws(' ', (SELECT string_agg(row_to_json(c)::text, ' ') FROM connections c), "
                        "(SELECT string_agg(row_to_json(p)::text, ' ') FROM processed_messages p), "
                        "(SELECT string_agg(row_to_json(a)::text, ' ') FROM audit_log a), "
                        "(SELECT string_agg(row_to_json(s)::text, ' ') FROM sync_runs s), "
                        "(SELECT string_agg(row_to_json(w)::text, ' ') FROM write_intents w), "
                        "(SELECT string_agg(row_to_json(o)::text, ' ') FROM oauth_states o))");
    cr_assert(rows);
    hits += scan_buf(&toks, rows, strlen(rows), "database rows", first, sizeof first);
    free(rows);
    fprintf(stderr,
            "security: %d tokens searched in %d log files, %d events (all topics and DLQs), %zu bytes of CLI output "
            "and the database rows: %d found%s%s (emulator's own log: %d)\n",
            toks.n, files, events, outlen, hits, first[0] ? ", first: " : "", first, sim_hits);
    cr_expect_eq(hits, 0, "a token leaked: %s", first);
    cr_expect(events > 5 && files > 3, "the scan saw too little to mean anything");
    for (int i = 0; i < toks.n; i++)
        free(toks.t[i]);
    free(cli_out);
    it_sfsim_stop(&sim);
}

/* ---------------------------------------------------------------- TLS */

Test(it_security, tls_wrong_ca_refused_right_ca_works, .timeout = 180)
{
    struct it_env env;
    it_env_init(&env);
    rel_token_key_env();
    char dir[256], cmd[600];
    snprintf(dir, sizeof dir, "%s/build/test-certs", getenv("PWD") ? getenv("PWD") : ".");
    snprintf(cmd, sizeof cmd, "tests/rig/gen-certs '%s' >/dev/null 2>&1", dir);
    cr_assert_eq(system(cmd), 0, "tests/rig/gen-certs failed");
    char cert[300], key[300], ca[300], other[300];
    snprintf(cert, sizeof cert, "%s/server.pem", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(other, sizeof other, "%s/other-ca.pem", dir);
    struct it_sfsim sim;
    const char *simargs[] = {"--tls-cert", cert, "--tls-key", key, "--seed-accounts", "10", "--seed-contacts", "10",
                             "--quiet", NULL};
    it_sfsim_start(&env, &sim, simargs);
    cr_assert(!strncmp(sim.url, "https://", 8), "the emulator is not serving HTTPS: %s", sim.url);
    setenv("SF_LOGIN_URL", sim.url, 1);
    rel_org(&env, "tls-org", true);
    rel_demo_mappings(&env, "tls-org");
    snprintf(rel_ca_file, sizeof rel_ca_file, "%s", ca);
    char conn[37] = "";
    rel_connect(&env, sim.url, "tls-org", "user:tls", conn, NULL);

    struct rel_producer rp;
    rel_producer_open(&rp, &env);
    char gs[160], cabad[400], cagood[400], id[37];
    snprintf(gs, sizeof gs, "SFBRIDGE_GROUP_ID=%s-sync", env.group);
    snprintf(cabad, sizeof cabad, "SF_CA_FILE=%s", other);
    snprintf(cagood, sizeof cagood, "SF_CA_FILE=%s", ca);

    /* the wrong CA: refused, and said so */
    const char *ex1[] = {gs, cabad, NULL};
    pid_t w = it_spawn(&env, "sfbridge-sync", ex1, "tls-wrongca");
    long long before = rel_sim_total(&sim);
    sync_job(&rp, "tls-org", conn, "full", id);
    struct json_object *ev = wait_event(&env, "sync.completed", id, 90000);
    cr_expect(ev && !strcmp(status_of(ev), "failed") && !strcmp(code_of(ev), "TLS_ERROR"),
              "a wrong CA must fail the sync with TLS_ERROR: %s %s", status_of(ev), code_of(ev));
    const char *msg = ev && json_get(ev, "error") ? json_get_str(json_get(ev, "error"), "message") : NULL;
    cr_expect(msg && (strcasestr(msg, "certificate") || strcasestr(msg, "tls") || strcasestr(msg, "ssl")),
              "the error must say it is about TLS: %s", msg ? msg : "(none)");
    json_object_put(ev);
    cr_expect_eq(rel_sim_total(&sim), before, "no request may complete over an unverified connection");
    cr_expect_eq(it_stop(w, 30000), 0);
    char *log = rel_worker_log("tls-wrongca", w);
    cr_expect(strcasestr(log, "certificate") || strcasestr(log, "tls"), "the worker log must name the TLS problem");
    free(log);

    /* the right CA: works */
    const char *ex2[] = {gs, cagood, NULL};
    w = it_spawn(&env, "sfbridge-sync", ex2, "tls-rightca");
    sync_job(&rp, "tls-org", conn, "full", id);
    ev = wait_event(&env, "sync.completed", id, 90000);
    cr_expect(ev && !strcmp(status_of(ev), "succeeded"), "with SF_CA_FILE = the right CA the sync must work: %s %s",
              status_of(ev), code_of(ev));
    json_object_put(ev);
    cr_expect_eq(it_stop(w, 30000), 0);
    rel_producer_close(&rp);
    it_sfsim_stop(&sim);
}

/* ---------------------------------------------------------------- tenants */

Test(it_security, another_orgs_connection_is_forbidden, .timeout = 180)
{
    struct it_env env;
    it_env_init(&env);
    rel_token_key_env();
    struct it_sfsim sim;
    const char *simargs[] = {"--seed-accounts", "10", "--seed-contacts", "10", "--quiet", NULL};
    it_sfsim_start(&env, &sim, simargs);
    setenv("SF_LOGIN_URL", sim.url, 1);
    char ca[37] = "", cb[37] = "";
    rel_org(&env, "tenant-a", true);
    rel_demo_mappings(&env, "tenant-a");
    rel_connect(&env, sim.url, "tenant-a", "user:a", ca, NULL);
    rel_org(&env, "tenant-b", true);
    rel_demo_mappings(&env, "tenant-b");
    rel_connect(&env, sim.url, "tenant-b", "user:b", cb, NULL);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT token_version FROM connections WHERE connection_id = '%s'", cb);
    long long version_b = it_sql_long(&env, sql);

    char g[3][160];
    const char *bins[3] = {"sfbridge-token", "sfbridge-sync", "sfbridge-write"};
    pid_t ws[3];
    for (int i = 0; i < 3; i++) {
        snprintf(g[i], sizeof g[i], "SFBRIDGE_GROUP_ID=%s-%s", env.group, bins[i]);
        const char *ex[] = {g[i], NULL};
        ws[i] = it_spawn(&env, bins[i], ex, "tenant");
    }
    rel_sim_post(&sim, "/__sim/reset", "{}");
    struct rel_producer rp;
    rel_producer_open(&rp, &env);
    char s_id[37], w_id[37], t_id[37];
    sync_job(&rp, "tenant-a", cb, "full", s_id);
    write_job(&rp, "tenant-a", cb, "intruder@example.com", w_id);
    refresh_job(&rp, "tenant-a", cb, t_id);
    struct json_object *se = wait_event(&env, "sync.completed", s_id, 60000);
    struct json_object *we = wait_event(&env, "record.written", w_id, 60000);
    struct json_object *te = wait_event(&env, "token.refreshed", t_id, 60000);
    cr_expect(se && !strcmp(code_of(se), "FORBIDDEN"), "sync with another org's connection: %s %s", status_of(se),
              code_of(se));
    cr_expect(we && !strcmp(code_of(we), "FORBIDDEN"), "write with another org's connection: %s %s", status_of(we),
              code_of(we));
    cr_expect(te && !strcmp(code_of(te), "FORBIDDEN"), "refresh with another org's connection: %s %s", status_of(te),
              code_of(te));
    const char *m = se && json_get(se, "error") ? json_get_str(json_get(se, "error"), "message") : "";
    cr_expect(!strstr(m ? m : "", "tenant-b"), "the refusal must not reveal which org owns the connection: %s", m);
    json_object_put(se);
    json_object_put(we);
    json_object_put(te);
    cr_expect_eq(rel_sim_total(&sim), 0, "a refused job sent requests to Salesforce");
    cr_expect_eq(it_sql_long(&env, "SELECT count(*) FROM companies WHERE org_id = 'tenant-a'"), 0);
    cr_expect_eq(it_sql_long(&env, "SELECT count(*) FROM contacts WHERE email = 'intruder@example.com'"), 0);
    cr_expect_eq(it_sql_long(&env, sql), version_b, "org B's tokens must not be touched");

    /* and B's own sync stays inside B */
    sync_job(&rp, "tenant-b", cb, "full", s_id);
    se = wait_event(&env, "sync.completed", s_id, 90000);
    cr_expect(se && !strcmp(status_of(se), "succeeded"), "B's own sync: %s %s", status_of(se), code_of(se));
    json_object_put(se);
    cr_expect(it_sql_long(&env, "SELECT count(*) FROM companies WHERE org_id = 'tenant-b'") > 0);
    cr_expect_eq(it_sql_long(&env, "SELECT count(*) FROM companies WHERE org_id <> 'tenant-b'"), 0,
                 "B's sync wrote rows of another org");
    rel_producer_close(&rp);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(it_stop(ws[i], 30000), 0);
    it_sfsim_stop(&sim);
}

/* ---------------------------------------------------------------- least privilege */

static void worker_dsn(const struct it_env *env, char *out, size_t cap)
{
    const char *at = strstr(env->dsn, "sfbridge@");
    cr_assert(at, "unexpected DSN %s", env->dsn);
    snprintf(out, cap, "%.*ssfbridge_worker@%s", (int)(at - env->dsn), env->dsn, at + strlen("sfbridge@"));
}

Test(it_security, worker_role_has_only_the_privileges_it_needs, .timeout = 240)
{
    struct it_env env;
    it_env_init(&env);
    rel_token_key_env();
    it_sql_ok(&env, "ALTER ROLE sfbridge_worker LOGIN");
    char dsn[600];
    worker_dsn(&env, dsn, sizeof dsn);
    struct err e = ERR_INIT;
    struct pg *db = pg_open(dsn, 5000, &e);
    cr_assert(db, "cannot connect as sfbridge_worker: %s", e.msg);
    /* an audit row to aim at */
    it_sql_ok(&env, "INSERT INTO organizations (org_id, salesforce_enabled) VALUES ('priv-org', true);"
                    "INSERT INTO audit_log (org_id, actor, action, outcome, prev_hash, hash) "
                    "VALUES ('priv-org', 'it', 'create', 'created', '', 'x')");
    static const char *const refused[] = {
        "CREATE TABLE evil (a int)",
        "DROP TABLE companies",
        "ALTER TABLE companies ADD COLUMN evil int",
        "CREATE INDEX evil_idx ON companies (name)",
        "DROP TRIGGER audit_log_append_only ON audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
        "UPDATE audit_log SET outcome = 'tampered'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "UPDATE organizations SET salesforce_enabled = true",
        "INSERT INTO organizations (org_id) VALUES ('evil-org')",
        "DELETE FROM companies",
        "INSERT INTO field_mappings (org_id, sf_object, sf_field, platform_field) VALUES ('priv-org','Account','Name','name')",
        "DELETE FROM processed_messages",
        "CREATE FUNCTION evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE SCHEMA evil",
        NULL};
    int allowed = 0;
    for (int i = 0; refused[i]; i++) {
        err_clear(&e);
        bool ok = pg_run(db, refused[i], 0, NULL, &e);
        if (ok) {
            allowed++;
            cr_expect(false, "sfbridge_worker may run: %s", refused[i]);
        } else {
            cr_expect(strstr(e.msg, "42501") || strstr(e.msg, "permission denied") || strstr(e.msg, "must be owner") ||
                          strstr(e.msg, "append-only"),
                      "%s refused for another reason: %s", refused[i], e.msg);
        }
    }
    /* a GRANT without grant option "succeeds" with a warning and grants nothing: check that */
    err_clear(&e);
    pg_run(db, "GRANT ALL ON companies TO PUBLIC", 0, NULL, &e);
    pg_close(&db);
    cr_expect_eq(it_sql_long(&env, "SELECT count(*) FROM information_schema.role_table_grants "
                                   "WHERE grantee = 'PUBLIC' AND table_name = 'companies'"),
                 0, "sfbridge_worker could grant privileges to PUBLIC");
    cr_expect_eq(it_sql_long(&env, "SELECT count(*) FROM audit_log WHERE outcome = 'tampered'"), 0);

    /* the real workers, connected as sfbridge_worker, do their job */
    struct it_sfsim sim;
    const char *simargs[] = {"--seed-accounts", "20", "--seed-contacts", "20", "--rotate-refresh-tokens", "--quiet",
                             NULL};
    it_sfsim_start(&env, &sim, simargs);
    setenv("SF_LOGIN_URL", sim.url, 1);
    rel_demo_mappings(&env, "priv-org");
    char conn[37] = "";
    rel_connect(&env, sim.url, "priv-org", "user:priv", conn, NULL);
    char dsnenv[700], g[3][160];
    snprintf(dsnenv, sizeof dsnenv, "SFBRIDGE_PG_DSN=%s", dsn);
    const char *bins[3] = {"sfbridge-token", "sfbridge-sync", "sfbridge-write"};
    pid_t ws[3];
    for (int i = 0; i < 3; i++) {
        snprintf(g[i], sizeof g[i], "SFBRIDGE_GROUP_ID=%s-%s", env.group, bins[i]);
        const char *ex[] = {g[i], dsnenv, NULL};
        ws[i] = it_spawn(&env, bins[i], ex, "priv");
    }
    struct rel_producer rp;
    rel_producer_open(&rp, &env);
    char id[37];
    sync_job(&rp, "priv-org", conn, "full", id);
    struct json_object *ev = wait_event(&env, "sync.completed", id, 90000);
    cr_expect(ev && !strcmp(status_of(ev), "succeeded"), "sync as sfbridge_worker: %s %s %s", status_of(ev),
              code_of(ev), ev && json_get(ev, "error") ? json_get_str(json_get(ev, "error"), "message") : "");
    json_object_put(ev);
    write_job(&rp, "priv-org", conn, "priv-1@example.com", id);
    ev = wait_event(&env, "record.written", id, 90000);
    cr_expect(ev && !strcmp(status_of(ev), "succeeded"), "write as sfbridge_worker: %s %s", status_of(ev), code_of(ev));
    json_object_put(ev);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM audit_log WHERE request_id = '%s'", id);
    cr_expect_eq(it_sql_long(&env, sql), 1, "the write's audit row, inserted as sfbridge_worker");
    rel_sim_post(&sim, "/__sim/faults", "{\"expire_sessions\":true}");
    refresh_job(&rp, "priv-org", conn, id);
    ev = wait_event(&env, "token.refreshed", id, 60000);
    cr_expect(ev && !strcmp(status_of(ev), "connected"), "refresh as sfbridge_worker: %s %s", status_of(ev),
              code_of(ev));
    json_object_put(ev);
    rel_producer_close(&rp);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(it_stop(ws[i], 30000), 0, "%s as sfbridge_worker must start, work and exit 0", bins[i]);
    it_sfsim_stop(&sim);
}

/* ---------------------------------------------------------------- CLI */

Test(it_security, admin_cli_never_prints_secrets, .timeout = 120)
{
    struct it_env env;
    it_env_init(&env);
    struct it_sfsim sim;
    const char *simargs[] = {"--quiet", NULL};
    it_sfsim_start(&env, &sim, simargs);
    rel_org(&env, "cli-org", true);
    unsigned char k[32];
    cr_assert(crypto_random_bytes(k, sizeof k));
    char *key = crypto_b64_encode(k, sizeof k, false, true);
    char args[1024];
    snprintf(args, sizeof args, "config");
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "SFBRIDGE_TOKEN_KEY='%s' SF_CLIENT_SECRET='client-secret-3f9a71c2' SFBRIDGE_PG_DSN='%s' "
             "'%s/sfbridge' config 2>&1",
             key, env.dsn, env.bindir);
    FILE *p = popen(cmd, "r");
    char out[16384];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    cr_expect_eq(pclose(p), 0);
    cr_expect(!strstr(out, key), "sfbridge config printed SFBRIDGE_TOKEN_KEY: %s", out);
    cr_expect(!strstr(out, "client-secret-3f9a71c2"), "sfbridge config printed SF_CLIENT_SECRET: %s", out);
    cr_expect(strstr(out, "SFBRIDGE_TOKEN_KEY") && strstr(out, "SF_CLIENT_SECRET"), "config must list them: %s", out);
    free(key);

    int rc = 0;
    char *o = cli(&env, sim.url, "connect start --org cli-org --user user:cli --redirect-uri http://127.0.0.1:1/cb",
                  &rc);
    cr_expect_eq(rc, 0, "%s", o);
    char *verifier = it_sql(&env, "SELECT code_verifier FROM oauth_states WHERE org_id = 'cli-org'");
    cr_assert(verifier, "connect start stored no state");
    cr_expect(!strstr(o, verifier), "connect start printed the PKCE verifier: %s", o);
    free(o);
    o = cli(&env, sim.url, "connect start --org cli-org --user user:cli --redirect-uri http://127.0.0.1:1/cb --json",
            &rc);
    char *verifiers = it_sql(&env, "SELECT string_agg(code_verifier, ' ') FROM oauth_states WHERE org_id = 'cli-org'");
    char *save = NULL;
    for (char *v = strtok_r(verifiers, " ", &save); v; v = strtok_r(NULL, " ", &save))
        cr_expect(!strstr(o, v), "connect start --json printed a PKCE verifier: %s", o);
    free(verifiers);
    free(verifier);
    free(o);
    it_sfsim_stop(&sim);
}
