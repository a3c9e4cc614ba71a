/*
 * Integration: connections and tokens (issue 4 acceptance), against the real
 * emulator, Kafka and PostgreSQL.
 *  - full connect: `sfbridge org enable`, `connect start` -> emulator authorize
 *    (auto-approve) -> `connect finish` -> sfbridge-token exchanges the code ->
 *    connection.status connected; the tokens are not in the table's raw bytes,
 *    and no log line nor event contains a token;
 *  - wrong, reused and expired state, tampered signature: refused with a clear
 *    error, no connection change;
 *  - sessions expired at the emulator while 3 processes hold the session:
 *    exactly one refresh reaches the emulator, every call completes (rotation on);
 *  - refresh token revoked: connection.status expired once, synced rows kept,
 *    the next jobs fail with CONNECTION_EXPIRED and send nothing to the
 *    emulator; a reconnect restores connected on the same connection id;
 *  - disabled org: refused with INTEGRATION_DISABLED, zero emulator requests;
 *  - `sfbridge status`, `connect revoke`, a token worker without a key (exit 78).
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conn.h"
#include "crypto.h"
#include "itlib.h"
#include "pg.h"
#include "sf.h"

#define ORG "acme"
#define REDIRECT "http://127.0.0.1:9/oauth/callback"

struct ctx {
    struct it_env env;
    struct it_sfsim sim;
    char key[64];
    char key_env[96], login_env[200];
    const char *worker_env[4];
    pid_t token_worker;
};

/* What this test process started, stopped by the suite's fini even when an
 * assertion aborted the test (so no worker or emulator outlives its test).
 * Static storage: the test's own stack frame is gone when fini runs. */
static pid_t tracked[16];
static int ntracked;

static pid_t track(pid_t p)
{
    if (ntracked < 16)
        tracked[ntracked++] = p;
    return p;
}

static void untrack(pid_t p)
{
    for (int i = 0; i < ntracked; i++)
        if (tracked[i] == p)
            tracked[i] = -1;
}

static void stop_all(void)
{
    for (int i = 0; i < ntracked; i++)
        if (tracked[i] > 0)
            it_stop(tracked[i], 10000);
    ntracked = 0;
}

TestSuite(it_token, .fini = stop_all);

static void ctx_init(struct ctx *c, const char *const *sim_args)
{
    memset(c, 0, sizeof *c);
    it_env_init(&c->env);
    unsigned char raw[32];
    cr_assert(crypto_random_bytes(raw, sizeof raw));
    char *b64 = crypto_b64_encode(raw, sizeof raw, false, true);
    snprintf(c->key, sizeof c->key, "%s", b64);
    free(b64);
    it_sfsim_start(&c->env, &c->sim, sim_args);
    track(c->sim.pid);
    snprintf(c->key_env, sizeof c->key_env, "SFBRIDGE_TOKEN_KEY=%s", c->key);
    snprintf(c->login_env, sizeof c->login_env, "SF_LOGIN_URL=%s", c->sim.url);
    c->worker_env[0] = c->key_env;
    c->worker_env[1] = c->login_env;
    c->worker_env[2] = NULL;
    c->token_worker = -1;
}

static void ctx_done(struct ctx *c)
{
    if (c->token_worker > 0) {
        untrack(c->token_worker);
        cr_expect_eq(it_stop(c->token_worker, 20000), 0, "sfbridge-token must exit 0 on SIGTERM");
    }
    c->token_worker = -1;
    untrack(c->sim.pid);
    it_sfsim_stop(&c->sim);
}

static void start_token_worker(struct ctx *c)
{
    c->token_worker = track(it_spawn(&c->env, "sfbridge-token", c->worker_env, "token"));
}

/* Run `sfbridge ARGS...` with the test's environment (plus login_url, key
 * when set); stdout into out. Returns the exit code. */
static int run_cli(const struct ctx *c, const char *login_url, char *out, size_t cap, const char *const *args)
{
    int pfd[2];
    cr_assert(pipe(pfd) == 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        char logpath[200];
        snprintf(logpath, sizeof logpath, "build/test-logs/cli-%d.log", (int)getpid());
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        setenv("SFBRIDGE_PG_DSN", c->env.dsn, 1);
        setenv("SFBRIDGE_KAFKA_BROKERS", c->env.brokers, 1);
        setenv("SFBRIDGE_TOPIC_PREFIX", c->env.prefix, 1);
        setenv("SFBRIDGE_TOKEN_KEY", c->key, 1);
        setenv("SF_LOGIN_URL", login_url ? login_url : c->sim.url, 1);
        setenv("NO_COLOR", "1", 1);
        char path[700];
        snprintf(path, sizeof path, "%s/sfbridge", c->env.bindir);
        const char *argv[32];
        int n = 0;
        argv[n++] = "sfbridge";
        for (int i = 0; args[i] && n < 31; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        execv(path, (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(pfd[1]);
    size_t len = 0;
    for (;;) {
        ssize_t k = read(pfd[0], out + len, cap - 1 - len);
        if (k <= 0)
            break;
        len += (size_t)k;
        if (len >= cap - 1)
            break;
    }
    out[len] = '\0';
    close(pfd[0]);
    int rc = it_wait(pid, 60000);
    cr_assert(rc != -1, "sfbridge %s did not finish", args[0]);
    return rc;
}

static struct json_object *parse(const char *s)
{
    struct json_object *j = json_tokener_parse(s);
    cr_assert(j, "not JSON: %s", s);
    return j;
}

static const char *jstr(struct json_object *o, const char *k)
{
    struct json_object *v;
    return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                                                           : NULL;
}

static void enable_org(struct ctx *c, const char *org)
{
    char out[512];
    const char *a[] = {"org", "enable", org, "--by", "admin@platform", "--name", "Acme Capital", NULL};
    cr_assert_eq(run_cli(c, NULL, out, sizeof out, a), 0, "org enable failed: %s", out);
    cr_assert(strstr(out, "enabled"), "org enable output: %s", out);
}

/* `connect start` + the browser step at the emulator: fills state and code. */
static void authorize(struct ctx *c, const char *user, char state[128], char code[512])
{
    char out[4096];
    const char *a[] = {"connect", "start", "--org", ORG, "--user", user, "--redirect-uri", REDIRECT, "--json", NULL};
    cr_assert_eq(run_cli(c, NULL, out, sizeof out, a), 0, "connect start failed: %s", out);
    struct json_object *j = parse(out);
    const char *url = jstr(j, "authorize_url");
    cr_assert(url && jstr(j, "state"), "connect start --json: %s", out);
    snprintf(state, 128, "%s", jstr(j, "state"));
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s/services/oauth2/authorize?", c->sim.url);
    cr_assert(!strncmp(url, prefix, strlen(prefix)), "authorize url must start with SF_LOGIN_URL: %s", url);
    cr_assert(strstr(url, "response_type=code") && strstr(url, "client_id=sfbridge-test-client") &&
                  strstr(url, "scope=api%20refresh_token") && strstr(url, "code_challenge_method=S256") &&
                  strstr(url, "code_challenge=") && strstr(url, "redirect_uri=http%3A%2F%2F127.0.0.1%3A9"),
              "authorize url lacks a parameter: %s", url);
    /* the verifier never leaves the database */
    char sql[300];
    snprintf(sql, sizeof sql, "SELECT code_verifier FROM oauth_states WHERE state = '%s'", state);
    char *verifier = it_sql(&c->env, sql);
    cr_assert(verifier && strlen(verifier) >= 43);
    cr_assert(!strstr(out, verifier), "connect start must not print the PKCE verifier");
    free(verifier);

    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fwrite);
    FILE *devnull = fopen("/dev/null", "w");
    curl_easy_setopt(h, CURLOPT_WRITEDATA, devnull);
    cr_assert_eq(curl_easy_perform(h), CURLE_OK);
    long st = 0;
    char *loc = NULL;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
    curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &loc);
    cr_assert_eq(st, 302, "authorize must redirect, got %ld", st);
    cr_assert(loc && !strncmp(loc, REDIRECT "?", strlen(REDIRECT) + 1), "redirect to the callback: %s", loc);
    const char *cp = strstr(loc, "code="), *sp = strstr(loc, "state=");
    cr_assert(cp && sp, "callback without code/state: %s", loc);
    cp += 5;
    sp += 6;
    size_t cn = strcspn(cp, "&"), sn = strcspn(sp, "&");
    char *dc = curl_easy_unescape(h, cp, (int)cn, NULL);
    snprintf(code, 512, "%s", dc);
    curl_free(dc);
    cr_assert(sn == strlen(state) && !strncmp(sp, state, sn), "the callback must carry our state");
    curl_easy_cleanup(h);
    fclose(devnull);
    json_object_put(j);
}

static void finish(struct ctx *c, const char *code, const char *state)
{
    char out[1024];
    const char *a[] = {"connect", "finish", "--code", code, "--state", state, NULL};
    cr_assert_eq(run_cli(c, NULL, out, sizeof out, a), 0, "connect finish failed: %s", out);
}

/* Produce a token.refresh by hand; returns its message id in id. */
static void publish_refresh(struct ctx *c, const char *org, const char *grant, const char *conn, const char *code,
                            const char *state, char id[37])
{
    char buf[2048];
    it_uuid(id);
    int n;
    if (!strcmp(grant, "refresh_token"))
        n = snprintf(buf, sizeof buf,
                     "{\"message_id\":\"%s\",\"org_id\":\"%s\",\"connection_id\":\"%s\","
                     "\"created_at\":\"2026-12-03T10:00:00Z\",\"grant\":\"refresh_token\",\"requested_by\":\"it\"}",
                     id, org, conn);
    else
        n = snprintf(buf, sizeof buf,
                     "{\"message_id\":\"%s\",\"org_id\":\"%s\",\"created_at\":\"2026-12-03T10:00:00Z\","
                     "\"grant\":\"authorization_code\",\"code\":\"%s\",\"state\":\"%s\"}",
                     id, org, code, state);
    it_produce(&c->env, "token.refresh", conn ? conn : org, buf, (size_t)n);
}

/* The token.refreshed answering request_id (waits); caller frees. */
static struct json_object *answer(struct ctx *c, const char *request_id, int total_expected)
{
    struct it_msgs m;
    struct json_object *found = NULL;
    for (int attempt = 0; attempt < 3 && !found; attempt++) {
        it_consume(&c->env, "token.refreshed", total_expected, 60000, 500, &m);
        for (int i = 0; i < m.n && !found; i++)
            if (strstr(m.m[i].payload, request_id))
                found = parse(m.m[i].payload);
        it_msgs_free(&m);
    }
    cr_assert(found, "no token.refreshed answers %s", request_id);
    return found;
}

static const char *error_code(struct json_object *ev)
{
    struct json_object *e;
    return json_object_object_get_ex(ev, "error", &e) ? jstr(e, "code") : NULL;
}

/* Full connect; returns the connection id. */
static void connect_user(struct ctx *c, const char *user, char conn[40], int status_events_expected)
{
    char state[128], code[512];
    authorize(c, user, state, code);
    finish(c, code, state);
    struct it_msgs m;
    it_consume(&c->env, "connection.status", status_events_expected, 60000, 300, &m);
    cr_assert(m.n >= status_events_expected, "expected %d connection.status events, got %d", status_events_expected,
              m.n);
    struct json_object *ev = parse(m.m[status_events_expected - 1].payload);
    cr_assert_str_eq(jstr(ev, "status"), "connected", "%s", m.m[status_events_expected - 1].payload);
    cr_assert_str_eq(jstr(ev, "org_id"), ORG);
    cr_assert_str_eq(jstr(ev, "instance_url"), c->sim.url);
    snprintf(conn, 40, "%s", jstr(ev, "connection_id"));
    json_object_put(ev);
    it_msgs_free(&m);
}

/* A figure of /__sim/stats; "by_endpoint.oauth_token" reaches into the object. */
static long long sim_stat(struct ctx *c, const char *key)
{
    char url[256];
    long st;
    snprintf(url, sizeof url, "%s/__sim/stats", c->sim.url);
    char *body = it_http("GET", url, NULL, &st);
    cr_assert_eq(st, 200);
    struct json_object *j = parse(body), *v = NULL, *o = j;
    long long n = -1;
    const char *dot = strchr(key, '.');
    if (dot) {
        char outer[64];
        snprintf(outer, sizeof outer, "%.*s", (int)(dot - key), key);
        if (!json_object_object_get_ex(j, outer, &o))
            o = NULL;
        key = dot + 1;
    }
    if (o && json_object_object_get_ex(o, key, &v))
        n = json_object_get_int64(v);
    json_object_put(j);
    free(body);
    cr_assert(n >= 0, "emulator stats lack %s", key);
    return n;
}

static int sim_requests(struct ctx *c)
{
    char url[256];
    long st;
    snprintf(url, sizeof url, "%s/__sim/requests", c->sim.url);
    char *body = it_http("GET", url, NULL, &st);
    cr_assert_eq(st, 200);
    struct json_object *j = parse(body);
    int n = json_object_is_type(j, json_type_array) ? (int)json_object_array_length(j) : -1;
    json_object_put(j);
    free(body);
    return n;
}

static void sim_post(struct ctx *c, const char *path, const char *body)
{
    char url[256];
    long st;
    snprintf(url, sizeof url, "%s%s", c->sim.url, path);
    free(it_http(!strcmp(path, "/__sim/requests") ? "DELETE" : "POST", url, body, &st));
    cr_assert(st >= 200 && st < 300, "%s -> %ld", path, st);
}

static char *decrypt_col(struct ctx *c, const char *conn, const char *col)
{
    char sql[300];
    snprintf(sql, sizeof sql, "SELECT %s FROM connections WHERE connection_id = '%s'", col, conn);
    char *sealed = it_sql(&c->env, sql);
    cr_assert(sealed, "%s is NULL", col);
    unsigned char key[32];
    struct err e = ERR_INIT;
    cr_assert(crypto_key_from_b64(c->key, key, &e));
    char *plain = crypto_open(key, "k1", sealed, &e);
    cr_assert(plain, "stored %s does not decrypt with the key and key id k1: %s", col, e.msg);
    free(sealed);
    return plain;
}

/* Does any file in build/test-logs contain needle? Names the first one. */
static bool logs_contain(const char *needle, char *which, size_t cap)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "grep -rlF -- '%s' build/test-logs 2>/dev/null | head -1", needle);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    which[0] = '\0';
    bool hit = fgets(which, (int)cap, p) != NULL;
    pclose(p);
    return hit;
}

static bool bytes_contain(const char *hay, size_t n, const char *needle)
{
    return memmem(hay, n, needle, strlen(needle)) != NULL;
}

/* Raw bytes of the connections table's heap file after a checkpoint. */
static char *table_bytes(struct ctx *c, size_t *len)
{
    char *rel = it_sql(&c->env, "SELECT pg_relation_filepath('connections')");
    cr_assert(rel);
    free(it_sql(&c->env, "CHECKPOINT"));
    const char *rig = getenv("SFBRIDGE_RIG_DIR");
    cr_assert(rig, "SFBRIDGE_RIG_DIR is not set: the rig exports it");
    char state[600];
    snprintf(state, sizeof state, "%s/state.env", rig);
    char *s = it_read_file(state);
    cr_assert(s, "cannot read %s", state);
    char *pd = strstr(s, "PGDATA_DIR=");
    cr_assert(pd);
    pd += strlen("PGDATA_DIR=");
    pd[strcspn(pd, "\r\n")] = '\0';
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", pd, rel);
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open the table file %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    free(s);
    free(rel);
    *len = (size_t)n;
    return buf;
}

Test(it_token, full_connect, .timeout = 180)
{
    struct ctx c;
    ctx_init(&c, NULL);
    enable_org(&c, ORG);
    start_token_worker(&c);
    char conn[40];
    connect_user(&c, "u1", conn, 1);

    /* the row: connected, ids from the identity URL, instance URL, connected_at */
    char sql[600];
    snprintf(sql, sizeof sql,
             "SELECT status || '|' || instance_url || '|' || length(sf_org_id) || left(sf_org_id, 3) || '|' || "
             "length(sf_user_id) || left(sf_user_id, 3) || '|' || (connected_at IS NOT NULL) || '|' || token_key_id "
             "|| '|' || (issued_at IS NOT NULL) FROM connections WHERE connection_id = '%s'",
             conn);
    char *row = it_sql(&c.env, sql);
    char want[300];
    snprintf(want, sizeof want, "connected|%s|1800D|18005|true|k1|true", c.sim.url);
    cr_assert(row && !strcmp(row, want), "connection row: %s, want %s", row ? row : "(none)", want);
    free(row);
    cr_assert_eq(it_sql_long(&c.env, "SELECT count(*) FROM oauth_states WHERE used_at IS NOT NULL"), 1,
                 "the state must be marked used");

    /* the stored tokens are real (they work at the emulator) and not plaintext */
    char *access = decrypt_col(&c, conn, "access_token_enc");
    char *refresh = decrypt_col(&c, conn, "refresh_token_enc");
    cr_assert(strlen(access) > 20 && strlen(refresh) > 20);
    {
        CURL *h = curl_easy_init();
        char url[256], auth[600];
        snprintf(url, sizeof url, "%s/services/data/v60.0/limits", c.sim.url);
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", access);
        struct curl_slist *hd = curl_slist_append(NULL, auth);
        FILE *devnull = fopen("/dev/null", "w");
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fwrite);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, devnull);
        cr_assert_eq(curl_easy_perform(h), CURLE_OK);
        long st = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
        cr_assert_eq(st, 200, "the stored access token must work at the emulator (HTTP %ld)", st);
        curl_slist_free_all(hd);
        curl_easy_cleanup(h);
        fclose(devnull);
    }
    size_t n;
    char *raw = table_bytes(&c, &n);
    char *sealed = it_sql(&c.env, "SELECT access_token_enc FROM connections");
    cr_assert(bytes_contain(raw, n, sealed), "the table file must hold the ciphertext (the grep would be void)");
    cr_assert(!bytes_contain(raw, n, access), "the access token is stored in plaintext");
    cr_assert(!bytes_contain(raw, n, refresh), "the refresh token is stored in plaintext");
    free(sealed);
    free(raw);

    /* answers: token.refreshed connected */
    struct it_msgs m;
    it_consume(&c.env, "token.refreshed", 1, 30000, 300, &m);
    cr_assert_eq(m.n, 1);
    struct json_object *ev = parse(m.m[0].payload);
    cr_assert_str_eq(jstr(ev, "status"), "connected");
    cr_assert_str_eq(jstr(ev, "connection_id"), conn);
    json_object_put(ev);

    /* stop the worker so its log is complete, then: no token anywhere */
    untrack(c.token_worker);
    cr_assert_eq(it_stop(c.token_worker, 20000), 0);
    c.token_worker = -1;
    const char *topics[] = {"token.refreshed", "connection.status", "token.refresh.dlq", NULL};
    for (int t = 0; topics[t]; t++) {
        struct it_msgs all;
        it_consume(&c.env, topics[t], 0, 3000, 500, &all);
        for (int i = 0; i < all.n; i++) {
            cr_assert(!strstr(all.m[i].payload, access), "%s carries the access token", topics[t]);
            cr_assert(!strstr(all.m[i].payload, refresh), "%s carries the refresh token", topics[t]);
        }
        it_msgs_free(&all);
    }
    char which[512];
    cr_assert(!logs_contain(access, which, sizeof which), "a log contains the access token: %s", which);
    cr_assert(!logs_contain(refresh, which, sizeof which), "a log contains the refresh token: %s", which);
    it_msgs_free(&m);
    free(access);
    free(refresh);
    ctx_done(&c);
}

/* A fake token endpoint whose responses carry a tampered signature. */
struct fake {
    struct MHD_Daemon *d;
    char url[64];
    char instance[128];
    int calls;
};

static enum MHD_Result fake_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                    const char *version, const char *upload, size_t *upload_size, void **state)
{
    (void)version;
    (void)upload;
    struct fake *f = cls;
    if (!*state) {
        *state = (void *)1;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    char body[1024];
    int st = 404;
    body[0] = '\0';
    if (!strcmp(method, "POST") && !strcmp(url, "/services/oauth2/token")) {
        __atomic_add_fetch(&f->calls, 1, __ATOMIC_SEQ_CST);
        st = 200;
        snprintf(body, sizeof body,
                 "{\"access_token\":\"00D000000000001EAA!AR.fake.access.token.value\","
                 "\"refresh_token\":\"5Aep861fakerefreshtokenvalue\",\"instance_url\":\"%s\","
                 "\"id\":\"%s/id/00D000000000001EAA/005000000000001AAA\",\"token_type\":\"Bearer\","
                 "\"issued_at\":\"1764781200000\",\"signature\":\"dGFtcGVyZWQgc2lnbmF0dXJlIHRoYXQgZG9lcyBub3Q=\"}",
                 f->instance, f->instance);
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)st, r);
    MHD_destroy_response(r);
    return ret;
}

Test(it_token, refused_states_and_signature, .timeout = 180)
{
    struct ctx c;
    ctx_init(&c, NULL);
    enable_org(&c, ORG);
    start_token_worker(&c);
    char conn[40], id[37];
    connect_user(&c, "u1", conn, 1);
    char snap_sql[300];
    snprintf(snap_sql, sizeof snap_sql,
             "SELECT string_agg(connection_id || status || token_version || access_token_enc || updated_at, ',') "
             "FROM connections");
    char *before = it_sql(&c.env, snap_sql);
    int answers = 1;

    /* unknown state */
    publish_refresh(&c, ORG, "authorization_code", NULL, "some-code", "no-such-state-issued", id);
    struct json_object *ev = answer(&c, id, ++answers);
    cr_assert_str_eq(jstr(ev, "status"), "failed");
    cr_assert_str_eq(error_code(ev), "INVALID_STATE", "%s", json_object_to_json_string(ev));
    json_object_put(ev);

    /* reused state: the state of the successful connect, a fresh message */
    char *used = it_sql(&c.env, "SELECT state FROM oauth_states WHERE used_at IS NOT NULL");
    publish_refresh(&c, ORG, "authorization_code", NULL, "another-code", used, id);
    ev = answer(&c, id, ++answers);
    cr_assert_str_eq(jstr(ev, "status"), "failed");
    cr_assert_str_eq(error_code(ev), "INVALID_STATE");
    struct json_object *eo;
    json_object_object_get_ex(ev, "error", &eo);
    cr_assert(strstr(jstr(eo, "message"), "already used"), "reuse must be named: %s", jstr(eo, "message"));
    json_object_put(ev);
    free(used);

    /* expired state: a real authorize, then the state's 10 minutes pass */
    char state[128], code[512];
    authorize(&c, "u2", state, code);
    char sql[300];
    snprintf(sql, sizeof sql, "UPDATE oauth_states SET expires_at = now() - interval '1 second' WHERE state = '%s'",
             state);
    it_sql_ok(&c.env, sql);
    sim_post(&c, "/__sim/requests", NULL);
    publish_refresh(&c, ORG, "authorization_code", NULL, code, state, id);
    ev = answer(&c, id, ++answers);
    cr_assert_str_eq(error_code(ev), "INVALID_STATE");
    json_object_object_get_ex(ev, "error", &eo);
    cr_assert(strstr(jstr(eo, "message"), "expired"), "expiry must be named: %s", jstr(eo, "message"));
    json_object_put(ev);
    cr_assert_eq(sim_requests(&c), 0, "a refused state must not reach Salesforce");

    char *after = it_sql(&c.env, snap_sql);
    cr_assert_str_eq(after, before, "refused requests must not change any connection");
    free(after);
    untrack(c.token_worker);
    cr_assert_eq(it_stop(c.token_worker, 20000), 0);
    c.token_worker = -1;

    /* tampered signature: a token endpoint that answers with a bad signature */
    struct fake f = {0};
    snprintf(f.instance, sizeof f.instance, "%s", c.sim.url);
    f.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, fake_handler, &f, MHD_OPTION_END);
    cr_assert(f.d);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(f.d, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(f.url, sizeof f.url, "http://127.0.0.1:%u", (unsigned)info->port);
    char login[120];
    snprintf(login, sizeof login, "SF_LOGIN_URL=%s", f.url);
    const char *fenv[] = {c.key_env, login, NULL};
    pid_t w = track(it_spawn(&c.env, "sfbridge-token", fenv, "token-fake"));
    authorize(&c, "u3", state, code);
    publish_refresh(&c, ORG, "authorization_code", NULL, code, state, id);
    ev = answer(&c, id, ++answers);
    cr_assert_str_eq(jstr(ev, "status"), "failed");
    cr_assert_str_eq(error_code(ev), "INVALID_SIGNATURE", "%s", json_object_to_json_string(ev));
    json_object_object_get_ex(ev, "error", &eo);
    cr_assert(strstr(jstr(eo, "message"), "signature"), "%s", jstr(eo, "message"));
    json_object_put(ev);
    cr_assert_eq(__atomic_load_n(&f.calls, __ATOMIC_SEQ_CST), 1, "the exchange must have been attempted once");
    after = it_sql(&c.env, snap_sql);
    cr_assert_str_eq(after, before, "a bad signature must not change any connection");
    cr_assert_eq(it_sql_long(&c.env, "SELECT count(*) FROM connections"), 1);
    free(after);
    untrack(w);
    cr_assert_eq(it_stop(w, 20000), 0);
    MHD_stop_daemon(f.d);

    /* no connection.status besides the first connect */
    struct it_msgs m;
    it_consume(&c.env, "connection.status", 1, 5000, 1000, &m);
    cr_assert_eq(m.n, 1, "refused requests must not emit connection.status");
    it_msgs_free(&m);
    free(before);
    ctx_done(&c);
}

/* A child process holding a session: waits for `go`, then calls the API once. */
static void session_child(struct ctx *c, const char *conn, const char *go, int wfd)
{
    struct err e = ERR_INIT;
    struct cfg cfg;
    setenv("SFBRIDGE_PG_DSN", c->env.dsn, 1);
    setenv("SFBRIDGE_TOKEN_KEY", c->key, 1);
    setenv("SF_LOGIN_URL", c->sim.url, 1);
    setenv("SFBRIDGE_LOG_LEVEL", "warn", 1);
    char result[300] = "";
    if (!cfg_load(&cfg))
        _exit(3);
    struct pg *db = pg_open(cfg.pg_dsn, 10000, &e);
    struct sf_options o;
    conn_sf_options(&cfg, &o);
    struct sf_client *sf = sf_client_new(&o, &e);
    struct conn_session s;
    if (!db || !sf || !conn_open(&s, db, &cfg, sf, conn, &e)) {
        snprintf(result, sizeof result, "open %s %s\n", err_public_code(&e), e.msg);
        goto out;
    }
    for (int i = 0; i < 600 && access(go, F_OK) != 0; i++)
        usleep(10000);
    struct sf_response r = {.records = -1};
    if (conn_call(&s, "GET", "/limits", NULL, NULL, 0, &r, &e))
        snprintf(result, sizeof result, "ok %ld %d\n", r.status, s.became_expired ? 1 : 0);
    else
        snprintf(result, sizeof result, "fail %s %d\n", err_public_code(&e), s.became_expired ? 1 : 0);
    sf_response_cleanup(&r);
    conn_close(&s);
out:
    if (write(wfd, result, strlen(result)) < 0)
        _exit(4);
    sf_client_free(&sf);
    pg_close(&db);
    _exit(0);
}

/* Start n children on conn, let them go at once, collect their one-line results. */
static void run_children(struct ctx *c, const char *conn, int n, char results[][300], void (*before_go)(struct ctx *))
{
    char go[128];
    char id[37];
    it_uuid(id);
    snprintf(go, sizeof go, "/tmp/it-token-go-%.8s", id);
    unlink(go);
    int fds[8][2];
    pid_t pids[8];
    fflush(NULL);
    for (int i = 0; i < n; i++) {
        cr_assert(pipe(fds[i]) == 0);
        pids[i] = fork();
        cr_assert(pids[i] >= 0);
        if (pids[i] == 0) {
            close(fds[i][0]);
            session_child(c, conn, go, fds[i][1]);
        }
        close(fds[i][1]);
    }
    usleep(1500000); /* every child has opened its session */
    before_go(c);
    int fd = open(go, O_CREAT | O_WRONLY, 0600);
    cr_assert(fd >= 0);
    close(fd);
    for (int i = 0; i < n; i++) {
        ssize_t k = read(fds[i][0], results[i], 299);
        results[i][k > 0 ? k : 0] = '\0';
        close(fds[i][0]);
        cr_assert_eq(it_wait(pids[i], 60000), 0, "child %d did not finish cleanly", i);
    }
    unlink(go);
}

static void expire_sessions(struct ctx *c)
{
    sim_post(c, "/__sim/reset", NULL);
    sim_post(c, "/__sim/faults", "{\"expire_sessions\":true}");
}

static void revoke_everything(struct ctx *c)
{
    sim_post(c, "/__sim/reset", NULL);
    sim_post(c, "/__sim/faults", "{\"expire_sessions\":true,\"revoke_refresh_tokens\":true}");
}

Test(it_token, single_flight_refresh, .timeout = 180)
{
    struct ctx c;
    const char *args[] = {"--rotate-refresh-tokens", NULL};
    ctx_init(&c, args);
    enable_org(&c, ORG);
    start_token_worker(&c);
    char conn[40];
    connect_user(&c, "u1", conn, 1);
    long long v0 = 0;
    {
        char sql[200];
        snprintf(sql, sizeof sql, "SELECT token_version FROM connections WHERE connection_id = '%s'", conn);
        v0 = it_sql_long(&c.env, sql);
    }
    char *refresh0 = decrypt_col(&c, conn, "refresh_token_enc");

    char results[3][300];
    run_children(&c, conn, 3, results, expire_sessions);
    for (int i = 0; i < 3; i++)
        cr_assert(!strncmp(results[i], "ok 200", 6), "process %d: the call must complete after one refresh: %s", i,
                  results[i]);
    cr_assert_eq(sim_stat(&c, "by_endpoint.oauth_token"), 1,
                 "exactly one refresh call must reach the emulator (got %lld)",
                 sim_stat(&c, "by_endpoint.oauth_token"));
    cr_assert_eq(sim_stat(&c, "refresh_grants"), 1);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT token_version FROM connections WHERE connection_id = '%s'", conn);
    cr_assert_eq(it_sql_long(&c.env, sql), v0 + 1, "one refresh = one new token version");
    char *refresh1 = decrypt_col(&c, conn, "refresh_token_enc");
    cr_assert_str_neq(refresh1, refresh0, "with rotation the new refresh token must be stored");

    /* the rotated refresh token is the one in use: an explicit refresh succeeds */
    char id[37];
    publish_refresh(&c, ORG, "refresh_token", conn, NULL, NULL, id);
    struct json_object *ev = answer(&c, id, 2);
    cr_assert_str_eq(jstr(ev, "status"), "connected", "%s", json_object_to_json_string(ev));
    cr_assert_str_eq(jstr(ev, "instance_url"), c.sim.url);
    json_object_put(ev);
    cr_assert_eq(sim_stat(&c, "refresh_grants"), 2);
    snprintf(sql, sizeof sql, "SELECT last_refresh_at > connected_at FROM connections WHERE connection_id = '%s'",
             conn);
    char *t = it_sql(&c.env, sql);
    cr_assert_str_eq(t, "t");
    free(t);
    free(refresh0);
    free(refresh1);
    ctx_done(&c);
}

/* The producer's partitioner (kafka.c sets murmur2_random, Java's murmur2):
 * partition = (murmur2(key) & 0x7fffffff) % partitions. */
static unsigned murmur2_of(const char *key)
{
    const unsigned char *d = (const unsigned char *)key;
    uint32_t len = (uint32_t)strlen(key), m = 0x5bd1e995u, h = 0x9747b28cu ^ len;
    uint32_t n4 = len / 4;
    for (uint32_t i = 0; i < n4; i++) {
        uint32_t k = (uint32_t)d[i * 4] | (uint32_t)d[i * 4 + 1] << 8 | (uint32_t)d[i * 4 + 2] << 16 |
                     (uint32_t)d[i * 4 + 3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    uint32_t rest = len % 4, base = len & ~3u;
    if (rest == 3)
        h ^= (uint32_t)d[base + 2] << 16;
    if (rest >= 2)
        h ^= (uint32_t)d[base + 1] << 8;
    if (rest >= 1) {
        h ^= d[base];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h & 0x7fffffffu;
}

/* A key that lands on partition p of a 4-partition topic. */
static void key_for_partition(int p, char out[64])
{
    for (int i = 0;; i++) {
        snprintf(out, 64, "spread-%d", i);
        if ((int)(murmur2_of(out) % 4) == p)
            return;
    }
}

Test(it_token, three_sync_workers_one_refresh, .timeout = 240)
{
    struct ctx c;
    const char *args[] = {"--seed-accounts", "300", "--seed-contacts", "300", "--seed-opportunities", "150",
                          "--rotate-refresh-tokens", "--quiet", NULL};
    ctx_init(&c, args);
    enable_org(&c, ORG);
    start_token_worker(&c);
    char conn[40], out[4096];
    connect_user(&c, "u1", conn, 1);
    const char *imp[] = {"mappings", "import", "--org", ORG, "--by", "it-admin", "tests/demo/mappings.json", NULL};
    cr_assert_eq(run_cli(&c, NULL, out, sizeof out, imp), 0, "mappings import: %s", out);
    pid_t w[3];
    for (int i = 0; i < 3; i++)
        w[i] = track(it_spawn(&c.env, "sfbridge-sync", c.worker_env, "sync-401"));
    /* all three join the group (range assignment: partitions 0-1, 2, 3); if
     * one is late the jobs still complete, only fewer of them meet the 401 */
    sleep(4);
    expire_sessions(&c);
    /* slow answers, so that the three first calls are all in flight before the refresh lands */
    sim_post(&c, "/__sim/faults", "{\"latency_ms\":300}");

    /* jobs of one connection on every partition (keys chosen per partition), so
     * each of the three group members gets at least one */
    const char *objects[4] = {"[\"Account\"]", "[\"Contact\"]", "[\"Opportunity\"]", "[\"Contact\"]"};
    char ids[4][37];
    for (int i = 0; i < 4; i++) {
        char key[64], buf[1024];
        key_for_partition(i, key);
        it_uuid(ids[i]);
        int n = snprintf(buf, sizeof buf,
                         "{\"message_id\":\"%s\",\"org_id\":\"" ORG "\",\"connection_id\":\"%s\","
                         "\"created_at\":\"2026-12-03T10:00:00Z\",\"mode\":\"full\",\"objects\":%s,"
                         "\"requested_by\":\"it\"}",
                         ids[i], conn, objects[i]);
        it_produce(&c.env, "sync.requested", key, buf, (size_t)n);
    }
    struct it_msgs m;
    it_consume(&c.env, "sync.completed", 4, 120000, 500, &m);
    cr_assert_eq(m.n, 4, "every job must complete (got %d)", m.n);
    for (int i = 0; i < m.n; i++)
        cr_assert(strstr(m.m[i].payload, "\"succeeded\""), "a job did not succeed: %s", m.m[i].payload);
    it_msgs_free(&m);
    cr_assert_eq(sim_stat(&c, "by_endpoint.oauth_token"), 1, "exactly one refresh must reach the emulator (got %lld)",
                 sim_stat(&c, "by_endpoint.oauth_token"));

    /* how many workers met the expired session (3 when they all started at once) */
    char url[256];
    long st;
    snprintf(url, sizeof url, "%s/__sim/requests", c.sim.url);
    char *body = it_http("GET", url, NULL, &st);
    struct json_object *reqs = parse(body);
    int unauthorized = 0;
    for (size_t i = 0; i < json_object_array_length(reqs); i++) {
        struct json_object *r = json_object_array_get_idx(reqs, i), *sv;
        if (json_object_object_get_ex(r, "status", &sv) && json_object_get_int(sv) == 401)
            unauthorized++;
    }
    json_object_put(reqs);
    free(body);
    cr_assert(unauthorized >= 1, "the expired session must have been met");
    cr_log_info("three_sync_workers_one_refresh: %d worker calls met 401, 1 refresh", unauthorized);
    for (int i = 0; i < 3; i++) {
        untrack(w[i]);
        cr_assert_eq(it_stop(w[i], 20000), 0, "sfbridge-sync must exit 0 on SIGTERM");
    }
    ctx_done(&c);
}

Test(it_token, revoked_refresh_token_expires_once, .timeout = 180)
{
    struct ctx c;
    ctx_init(&c, NULL);
    enable_org(&c, ORG);
    start_token_worker(&c);
    char conn[40];
    connect_user(&c, "u1", conn, 1);
    char sql[600];
    snprintf(sql, sizeof sql,
             "INSERT INTO companies (org_id, connection_id, salesforce_id, name, sf_modstamp, synced_at) VALUES "
             "('" ORG "', '%s', '001000000000001AAA', 'Kept One', now(), now()), "
             "('" ORG "', '%s', '001000000000002AAA', 'Kept Two', now(), now())",
             conn, conn);
    it_sql_ok(&c.env, sql);
    const char *rows_sql = "SELECT string_agg(id || name || sf_modstamp || synced_at || coalesce(deleted_at::text, "
                           "'-'), ',' ORDER BY id) FROM companies";
    char *rows_before = it_sql(&c.env, rows_sql);

    /* three processes holding the session all meet the revoked refresh token */
    char results[3][300];
    run_children(&c, conn, 3, results, revoke_everything);
    int flipped = 0;
    for (int i = 0; i < 3; i++) {
        cr_assert(!strncmp(results[i], "fail CONNECTION_EXPIRED", 23), "process %d: %s", i, results[i]);
        flipped += results[i][strlen(results[i]) - 2] == '1';
    }
    cr_assert_eq(flipped, 1, "exactly one process flips the connection to expired");
    cr_assert_eq(sim_stat(&c, "by_endpoint.oauth_token"), 1, "one refresh attempt reaches the emulator (got %lld)",
                 sim_stat(&c, "by_endpoint.oauth_token"));
    snprintf(sql, sizeof sql, "SELECT status || '|' || status_reason FROM connections WHERE connection_id = '%s'",
             conn);
    char *st = it_sql(&c.env, sql);
    cr_assert(st && !strncmp(st, "expired|invalid_grant", 21), "connection after revocation: %s", st);
    free(st);

    /* the connection was expired by in-line refreshes; now the token worker
     * meets it: through a fresh connection (re-enabled) we check it emits
     * connection.status expired exactly once */
    it_sql_ok(&c.env, "UPDATE connections SET status = 'connected', status_reason = NULL");
    sim_post(&c, "/__sim/reset", NULL);
    char id1[37], id2[37];
    publish_refresh(&c, ORG, "refresh_token", conn, NULL, NULL, id1);
    publish_refresh(&c, ORG, "refresh_token", conn, NULL, NULL, id2);
    struct json_object *e1 = answer(&c, id1, 3), *e2 = answer(&c, id2, 3);
    cr_assert_str_eq(jstr(e1, "status"), "expired", "%s", json_object_to_json_string(e1));
    cr_assert(jstr(e1, "reason") && strstr(jstr(e1, "reason"), "invalid_grant"), "%s", json_object_to_json_string(e1));
    cr_assert_str_eq(jstr(e2, "status"), "expired");
    cr_assert_str_eq(error_code(e2), "CONNECTION_EXPIRED");
    json_object_put(e1);
    json_object_put(e2);
    struct it_msgs m;
    it_consume(&c.env, "connection.status", 2, 30000, 1500, &m);
    cr_assert_eq(m.n, 2, "connected once, expired once (got %d events)", m.n);
    struct json_object *ev = parse(m.m[1].payload);
    cr_assert_str_eq(jstr(ev, "status"), "expired");
    cr_assert_str_eq(jstr(ev, "connection_id"), conn);
    cr_assert_str_eq(jstr(ev, "request_id"), id1);
    json_object_put(ev);
    it_msgs_free(&m);
    cr_assert_eq(sim_stat(&c, "by_endpoint.oauth_token"), 1, "the second request must not reach the emulator");

    char *rows_after = it_sql(&c.env, rows_sql);
    cr_assert_str_eq(rows_after, rows_before, "synced rows must stay untouched");
    free(rows_after);

    /* the next sync job fails fast with CONNECTION_EXPIRED and sends nothing */
    sim_post(&c, "/__sim/requests", NULL);
    pid_t sync = track(it_spawn(&c.env, "sfbridge-sync", c.worker_env, "sync-expired"));
    char sid[37], buf[1024];
    it_uuid(sid);
    int n = snprintf(buf, sizeof buf,
                     "{\"message_id\":\"%s\",\"org_id\":\"" ORG "\",\"connection_id\":\"%s\","
                     "\"created_at\":\"2026-12-03T10:00:00Z\",\"mode\":\"incremental\",\"requested_by\":\"it\"}",
                     sid, conn);
    it_produce(&c.env, "sync.requested", conn, buf, (size_t)n);
    it_consume(&c.env, "sync.completed", 1, 60000, 300, &m);
    cr_assert_eq(m.n, 1);
    cr_assert(strstr(m.m[0].payload, "CONNECTION_EXPIRED") && strstr(m.m[0].payload, "\"failed\""),
              "a sync of an expired connection must fail with CONNECTION_EXPIRED: %s", m.m[0].payload);
    it_msgs_free(&m);
    untrack(sync);
    cr_assert_eq(it_stop(sync, 20000), 0);
    cr_assert_eq(sim_requests(&c), 0, "an expired connection must send zero requests");

    /* reconnect: connected again, same connection id */
    char again[40];
    connect_user(&c, "u1", again, 3);
    cr_assert_str_eq(again, conn, "a reconnect must keep the connection id");
    snprintf(sql, sizeof sql, "SELECT status FROM connections WHERE connection_id = '%s'", conn);
    st = it_sql(&c.env, sql);
    cr_assert_str_eq(st, "connected");
    free(st);
    cr_assert_eq(it_sql_long(&c.env, "SELECT count(*) FROM connections"), 1);
    free(rows_before);
    ctx_done(&c);
}

Test(it_token, revoked_with_sync_workers_expires_once, .timeout = 240)
{
    struct ctx c;
    const char *args[] = {"--seed-accounts", "50", "--seed-contacts", "50", "--seed-opportunities", "20", "--quiet",
                          NULL};
    ctx_init(&c, args);
    enable_org(&c, ORG);
    start_token_worker(&c);
    char conn[40], out[4096];
    connect_user(&c, "u1", conn, 1);
    const char *imp[] = {"mappings", "import", "--org", ORG, "--by", "it-admin", "tests/demo/mappings.json", NULL};
    cr_assert_eq(run_cli(&c, NULL, out, sizeof out, imp), 0, "mappings import: %s", out);
    char sql[600];
    snprintf(sql, sizeof sql,
             "INSERT INTO companies (org_id, connection_id, salesforce_id, name, sf_modstamp, synced_at) VALUES "
             "('" ORG "', '%s', '001000000000001AAA', 'Kept One', now(), now())",
             conn);
    it_sql_ok(&c.env, sql);
    const char *rows_sql = "SELECT string_agg(id || name || sf_modstamp || synced_at || coalesce(deleted_at::text, "
                           "'-'), ',' ORDER BY id) FROM companies";
    char *rows_before = it_sql(&c.env, rows_sql);
    pid_t w[3];
    for (int i = 0; i < 3; i++)
        w[i] = track(it_spawn(&c.env, "sfbridge-sync", c.worker_env, "sync-revoked"));
    sleep(4);
    revoke_everything(&c);
    sim_post(&c, "/__sim/faults", "{\"latency_ms\":300}");
    const char *objects[4] = {"[\"Account\"]", "[\"Contact\"]", "[\"Opportunity\"]", "[\"Contact\"]"};
    for (int i = 0; i < 4; i++) {
        char key[64], buf[1024], id[37];
        key_for_partition(i, key);
        it_uuid(id);
        int n = snprintf(buf, sizeof buf,
                         "{\"message_id\":\"%s\",\"org_id\":\"" ORG "\",\"connection_id\":\"%s\","
                         "\"created_at\":\"2026-12-03T10:00:00Z\",\"mode\":\"incremental\",\"objects\":%s,"
                         "\"requested_by\":\"it\"}",
                         id, conn, objects[i]);
        it_produce(&c.env, "sync.requested", key, buf, (size_t)n);
    }
    struct it_msgs m;
    it_consume(&c.env, "sync.completed", 4, 120000, 500, &m);
    cr_assert_eq(m.n, 4, "every job must be answered (got %d)", m.n);
    for (int i = 0; i < m.n; i++)
        cr_assert(strstr(m.m[i].payload, "\"failed\"") && strstr(m.m[i].payload, "CONNECTION_EXPIRED"),
                  "a sync of a connection whose refresh token was revoked: %s", m.m[i].payload);
    it_msgs_free(&m);
    it_consume(&c.env, "connection.status", 2, 30000, 2000, &m);
    cr_assert_eq(m.n, 2, "connected once, then expired exactly once (got %d events)", m.n);
    struct json_object *ev = parse(m.m[1].payload);
    cr_assert_str_eq(jstr(ev, "status"), "expired");
    cr_assert_str_eq(jstr(ev, "connection_id"), conn);
    cr_assert(jstr(ev, "reason") && strstr(jstr(ev, "reason"), "invalid_grant"), "%s", m.m[1].payload);
    json_object_put(ev);
    it_msgs_free(&m);
    cr_assert_eq(sim_stat(&c, "by_endpoint.oauth_token"), 1, "one refresh attempt reaches the emulator (got %lld)",
                 sim_stat(&c, "by_endpoint.oauth_token"));
    char *rows_after = it_sql(&c.env, rows_sql);
    cr_assert_str_eq(rows_after, rows_before, "synced rows must stay untouched");
    free(rows_after);
    free(rows_before);
    for (int i = 0; i < 3; i++) {
        untrack(w[i]);
        cr_assert_eq(it_stop(w[i], 20000), 0, "sfbridge-sync must exit 0 on SIGTERM");
    }
    ctx_done(&c);
}

Test(it_token, disabled_org_refused, .timeout = 180)
{
    struct ctx c;
    ctx_init(&c, NULL);
    enable_org(&c, ORG);
    start_token_worker(&c);
    char conn[40], state[128], code[512], out[512], id1[37], id2[37];
    connect_user(&c, "u1", conn, 1);
    authorize(&c, "u2", state, code);
    const char *a[] = {"org", "disable", ORG, "--by", "admin@platform", NULL};
    cr_assert_eq(run_cli(&c, NULL, out, sizeof out, a), 0, "%s", out);
    sim_post(&c, "/__sim/requests", NULL);

    publish_refresh(&c, ORG, "authorization_code", NULL, code, state, id1);
    publish_refresh(&c, ORG, "refresh_token", conn, NULL, NULL, id2);
    struct json_object *e1 = answer(&c, id1, 3), *e2 = answer(&c, id2, 3);
    cr_assert_str_eq(jstr(e1, "status"), "failed");
    cr_assert_str_eq(error_code(e1), "INTEGRATION_DISABLED", "%s", json_object_to_json_string(e1));
    cr_assert_str_eq(error_code(e2), "INTEGRATION_DISABLED", "%s", json_object_to_json_string(e2));
    json_object_put(e1);
    json_object_put(e2);
    cr_assert_eq(sim_requests(&c), 0, "a disabled org must send zero requests to the emulator");
    cr_assert_eq(it_sql_long(&c.env, "SELECT count(*) FROM connections"), 1);

    /* connect start is refused too */
    const char *s[] = {"connect", "start", "--org", ORG, "--user", "u9", "--redirect-uri", REDIRECT, NULL};
    cr_assert_neq(run_cli(&c, NULL, out, sizeof out, s), 0, "connect start for a disabled org must fail");
    ctx_done(&c);
}

Test(it_token, status_and_revoke, .timeout = 180)
{
    struct ctx c;
    ctx_init(&c, NULL);
    enable_org(&c, ORG);
    start_token_worker(&c);
    char conn[40], out[8192];
    connect_user(&c, "u1", conn, 1);
    it_sql_ok(&c.env,
              "INSERT INTO api_usage (sf_org_id, used, api_limit) SELECT sf_org_id, 1234, 100000 FROM connections");

    char sql0[800];
    snprintf(sql0, sizeof sql0,
             "INSERT INTO sync_runs (request_id, org_id, connection_id, mode, status, current_object, fetched, total) "
             "VALUES (gen_random_uuid(), '" ORG "', '%s', 'full', 'running', 'Account', 250, 1000);"
             "INSERT INTO sync_runs (request_id, org_id, connection_id, mode, status, retry_at, error_code) "
             "VALUES (gen_random_uuid(), '" ORG "', '%s', 'incremental', 'deferred', '2031-01-02T03:04:05Z', "
             "'REQUEST_LIMIT_EXCEEDED');",
             conn, conn);
    it_sql_ok(&c.env, sql0);
    const char *st[] = {"status", "--org", ORG, NULL};
    cr_assert_eq(run_cli(&c, NULL, out, sizeof out, st), 0, "%s", out);
    cr_assert(strstr(out, conn) && strstr(out, "Connected") && strstr(out, c.sim.url) && strstr(out, "1234 / 100000"),
              "status output: %s", out);
    cr_assert(strstr(out, "running syncs") && strstr(out, "[#######.......................] 250/1000 (25%)"),
              "a running sync with its progress bar: %s", out);
    cr_assert(strstr(out, "deferred syncs") && strstr(out, "retry at 2031-01-02T03:04:05Z"),
              "a deferred sync with its retry time: %s", out);
    const char *other[] = {"status", "--org", "nobody", NULL};
    cr_assert_eq(run_cli(&c, NULL, out, sizeof out, other), 2, "status of an org without connections: %s", out);
    const char *ol[] = {"org", "list", "--json", NULL};
    cr_assert_eq(run_cli(&c, NULL, out, sizeof out, ol), 0, "%s", out);
    cr_assert(strstr(out, "\"salesforce_enabled\":true") && strstr(out, "\"enabled_by\":\"admin@platform\""),
              "org list: %s", out);
    const char *od[] = {"org", "disable", "nobody", "--by", "admin", NULL};
    cr_assert_eq(run_cli(&c, NULL, out, sizeof out, od), 2, "disabling an unknown org must fail with 2");
    cr_assert(!strstr(out, "\033["), "no colour when stdout is not a terminal");
    const char *sj[] = {"status", "--json", NULL};
    cr_assert_eq(run_cli(&c, NULL, out, sizeof out, sj), 0, "%s", out);
    struct json_object *j = parse(out), *arr, *c0;
    cr_assert(json_object_object_get_ex(j, "connections", &arr) && json_object_array_length(arr) == 1);
    c0 = json_object_array_get_idx(arr, 0);
    cr_assert_str_eq(jstr(c0, "status"), "connected");
    cr_assert_str_eq(jstr(c0, "connection_id"), conn);
    cr_assert(jstr(c0, "connected_at") && jstr(c0, "last_refresh_at") && jstr(c0, "sf_user_id"));
    json_object_put(j);

    sim_post(&c, "/__sim/reset", NULL);
    const char *rv[] = {"connect", "revoke", "--connection", conn, "--by", "admin@platform", NULL};
    cr_assert_eq(run_cli(&c, NULL, out, sizeof out, rv), 0, "%s", out);
    char url[256];
    long code;
    snprintf(url, sizeof url, "%s/__sim/stats", c.sim.url);
    char *stats = it_http("GET", url, NULL, &code);
    cr_assert(strstr(stats, "\"total\":1"), "revoke must make one call at the emulator: %s", stats);
    free(stats);
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT status || '|' || (access_token_enc IS NULL) || (refresh_token_enc IS NULL) FROM connections "
             "WHERE connection_id = '%s'",
             conn);
    char *row = it_sql(&c.env, sql);
    cr_assert_str_eq(row, "disabled|truetrue", "revoked connection: %s", row);
    free(row);
    struct it_msgs m;
    it_consume(&c.env, "connection.status", 2, 30000, 300, &m);
    cr_assert_eq(m.n, 2);
    cr_assert(strstr(m.m[1].payload, "\"disabled\"") && strstr(m.m[1].payload, "revoked by admin@platform"), "%s",
              m.m[1].payload);
    it_msgs_free(&m);

    char id[37];
    publish_refresh(&c, ORG, "refresh_token", conn, NULL, NULL, id);
    struct json_object *ev = answer(&c, id, 2);
    cr_assert_str_eq(jstr(ev, "status"), "disabled");
    cr_assert_str_eq(error_code(ev), "CONNECTION_DISABLED");
    json_object_put(ev);
    ctx_done(&c);
}

Test(it_token, worker_without_key_refuses_to_start, .timeout = 60)
{
    struct it_env env;
    it_env_init(&env);
    const char *extra[] = {"SFBRIDGE_TOKEN_KEY=", NULL};
    pid_t w = it_spawn(&env, "sfbridge-token", extra, "token-nokey");
    int rc = it_wait(w, 30000);
    if (rc == -1)
        it_kill9(w);
    cr_assert_eq(rc, 78, "a token worker without SFBRIDGE_TOKEN_KEY must exit 78, got %d", rc);
    char path[200];
    snprintf(path, sizeof path, "build/test-logs/token-nokey-%d.log", (int)w);
    char *log = it_read_file(path);
    cr_assert(log && strstr(log, "SFBRIDGE_TOKEN_KEY is not set"), "the refusal must say why: %s", log ? log : "");
    free(log);
    const char *bad[] = {"SFBRIDGE_TOKEN_KEY=c2hvcnQ=", NULL};
    w = it_spawn(&env, "sfbridge-token", bad, "token-badkey");
    rc = it_wait(w, 30000);
    if (rc == -1)
        it_kill9(w);
    cr_assert_eq(rc, 78, "a key that is not 32 bytes must exit 78, got %d", rc);
}

/* A crash between the commit of a code exchange and the emission of its events must not lose
 * connection.status: it is stored with the result in the inbox and re-emitted on redelivery. */
Test(it_token, connected_status_survives_a_crash_after_commit, .timeout = 180)
{
    struct ctx c;
    ctx_init(&c, NULL);
    enable_org(&c, ORG);
    char state[128], code[512];
    authorize(&c, "crash-user", state, code);
    const char *fault_env[] = {c.key_env, c.login_env, "SFBRIDGE_FAULT=after_commit", NULL};
    pid_t w = track(it_spawn(&c.env, "sfbridge-token", fault_env, "token-crash"));
    finish(&c, code, state);
    int rc = it_wait(w, 60000);
    untrack(w);
    cr_assert_eq(rc, 128 + 9, "the worker must die at the fault point (rc %d)", rc);
    cr_assert_eq(it_sql_long(&c.env, "SELECT count(*) FROM connections WHERE status = 'connected'"), 1,
                 "the exchange was committed before the crash");
    struct it_msgs m;
    it_consume(&c.env, "connection.status", 0, 3000, 0, &m);
    cr_assert_eq(m.n, 0, "nothing was emitted before the crash");
    it_msgs_free(&m);

    start_token_worker(&c);
    it_consume(&c.env, "connection.status", 1, 60000, 3000, &m);
    cr_assert_eq(m.n, 1, "connection.status connected exactly once after the restart, got %d", m.n);
    struct json_object *ev = parse(m.m[0].payload);
    cr_assert_str_eq(jstr(ev, "status"), "connected");
    json_object_put(ev);
    it_msgs_free(&m);
    it_consume(&c.env, "token.refreshed", 1, 30000, 2000, &m);
    cr_assert_eq(m.n, 1, "one token.refreshed, got %d", m.n);
    it_msgs_free(&m);
    cr_assert_eq(sim_stat(&c, "code_grants"), 1, "the code was exchanged once");
    ctx_done(&c);
}
