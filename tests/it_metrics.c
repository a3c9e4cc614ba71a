/*
 * Integration: metrics and health (issue 8 item 4). Real workers (sfbridge-sync, sfbridge-write) serve
 * /metrics, /healthz and /readyz on SFBRIDGE_METRICS_ADDR; the test scrapes it while it
 * works and checks the numbers move as they should:
 *   - /healthz answers at once, /readyz once the consumer is subscribed;
 *   - two undecodable messages: consumed +2, failed +2, dead-lettered +2 (and they are on .dlq);
 *   - three valid jobs for a disabled org: consumed +3, failed +3, not dead-lettered, and the
 *     handler latency histogram counts exactly the three (cumulative buckets, +Inf = count);
 *   - one more job moves consumed/failed by one: counters never reset between scrapes;
 *   - the exposition is valid Prometheus text (one TYPE per family, a family's lines together).
 * Plus the renderer on its own: explicit label names and label escaping.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "itlib.h"
#include "metrics.h"

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    int port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

struct buf {
    char *d;
    size_t n;
};

static size_t on_data(char *p, size_t sz, size_t nm, void *ud)
{
    struct buf *b = ud;
    size_t n = sz * nm;
    char *d = realloc(b->d, b->n + n + 1);
    cr_assert(d);
    b->d = d;
    memcpy(b->d + b->n, p, n);
    b->n += n;
    b->d[b->n] = '\0';
    return n;
}

/* HTTP to the worker; *status = 0 when nothing listens. Returns the body (caller frees). */
static char *http(const char *method, const char *url, long *status)
{
    CURL *c = curl_easy_init();
    cr_assert(c);
    struct buf b = {calloc(1, 1), 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (!strcmp(method, "POST"))
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x");
    *status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    return b.d;
}

/* Value of the sample line "name{labels} value" (exact name+labels), -1 when absent. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        if (!strncmp(p, series, n) && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = eol ? eol + 1 : NULL;
    }
    return -1;
}

static char *scrape(const char *base)
{
    char url[160];
    long status = 0;
    snprintf(url, sizeof url, "%s/metrics", base);
    char *body = http("GET", url, &status);
    cr_assert_eq(status, 200, "GET /metrics: %ld", status);
    cr_assert(body);
    return body;
}

/* every line is a "# TYPE name kind" comment or "name[{...}] number"; a family's lines are contiguous */
static void check_exposition(const char *text)
{
    char families[64][96];
    int nf = 0;
    char current[96] = "";
    for (const char *p = text; *p;) {
        const char *eol = strchr(p, '\n');
        cr_assert(eol, "the exposition ends with a newline");
        char line[512];
        size_t len = (size_t)(eol - p) < sizeof line - 1 ? (size_t)(eol - p) : sizeof line - 1;
        memcpy(line, p, len);
        line[len] = '\0';
        p = eol + 1;
        if (!strncmp(line, "# TYPE ", 7)) {
            char name[96], kind[32];
            cr_assert_eq(sscanf(line + 7, "%95s %31s", name, kind), 2, "bad TYPE line: %s", line);
            cr_assert(!strcmp(kind, "counter") || !strcmp(kind, "gauge") || !strcmp(kind, "histogram"), "%s",
                      line);
            for (int i = 0; i < nf; i++)
                cr_assert(strcmp(families[i], name) != 0, "family %s declared twice", name);
            cr_assert(nf < 64);
            snprintf(families[nf++], sizeof families[0], "%s", name);
            snprintf(current, sizeof current, "%s", name);
            continue;
        }
        cr_assert(line[0] != '#' && line[0], "unexpected line: \"%s\"", line);
        cr_assert(!strncmp(line, current, strlen(current)), "sample outside its family %s: %s", current, line);
        const char *sp = strrchr(line, ' ');
        cr_assert(sp, "no value: %s", line);
        char *end = NULL;
        strtod(sp + 1, &end);
        cr_assert(end && *end == '\0', "value is not a number: %s", line);
    }
}

static const char *token_key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

typedef int (*make_msg_fn)(char *buf, size_t cap, const char *id, const char *variant);

static int sync_job(char *buf, size_t cap, const char *id, const char *variant)
{
    return snprintf(buf, cap,
                    "{\"message_id\":\"%s\",\"org_id\":\"acme\",\"connection_id\":"
                    "\"7d6b0c1e-9f1a-4a53-8a0e-3c2f4b5a6d7e\",\"created_at\":\"2026-12-03T10:00:00Z\","
                    "\"mode\":\"%s\",\"requested_by\":\"it\"}",
                    id, variant);
}

static int write_job(char *buf, size_t cap, const char *id, const char *variant)
{
    return snprintf(buf, cap,
                    "{\"message_id\":\"%s\",\"org_id\":\"acme\",\"connection_id\":"
                    "\"7d6b0c1e-9f1a-4a53-8a0e-3c2f4b5a6d7e\",\"created_at\":\"2026-12-03T10:00:00Z\","
                    "\"actor\":\"user:it\",\"source\":\"chat\",\"operations\":[{\"ref\":\"c1\","
                    "\"object\":\"Contact\",\"action\":\"create\",\"fields\":{\"last_name\":\"%s\"}}]}",
                    id, variant);
}

static void scrape_during_a_run(const char *bin, const char *in_topic, const char *out_topic, make_msg_fn make)
{
    struct it_env env;
    it_env_init(&env);
    it_sql_ok(&env, "INSERT INTO organizations (org_id, salesforce_enabled) VALUES ('acme', false);"
                    "INSERT INTO connections (connection_id, org_id, user_id, status) VALUES "
                    "('7d6b0c1e-9f1a-4a53-8a0e-3c2f4b5a6d7e', 'acme', 'u1', 'connected');");
    int port = free_port();
    char addr_env[64], base[64], key_env[128];
    snprintf(addr_env, sizeof addr_env, "SFBRIDGE_METRICS_ADDR=127.0.0.1:%d", port);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    snprintf(key_env, sizeof key_env, "SFBRIDGE_TOKEN_KEY=%s", token_key);
    const char *extra[] = {addr_env, key_env, NULL};
    char label[64];
    snprintf(label, sizeof label, "metrics-%s", bin);
    pid_t w = it_spawn(&env, bin, extra, label);

    /* health at once, ready once consuming */
    char url[160];
    long status = 0;
    char *body = NULL;
    snprintf(url, sizeof url, "%s/healthz", base);
    for (int i = 0; i < 200; i++) {
        body = http("GET", url, &status);
        if (status == 200)
            break;
        free(body);
        body = NULL;
        sleep_ms(100);
    }
    cr_assert_eq(status, 200, "/healthz never answered 200 on %s", base);
    cr_assert(body && !strncmp(body, "ok", 2));
    free(body);
    snprintf(url, sizeof url, "%s/readyz", base);
    for (int i = 0; i < 300; i++) {
        body = http("GET", url, &status);
        free(body);
        if (status == 200)
            break;
        cr_assert(status == 503, "/readyz answers 503 until ready, got %ld", status);
        sleep_ms(100);
    }
    cr_assert_eq(status, 200, "/readyz never became ready");
    snprintf(url, sizeof url, "%s/nope", base);
    free(http("GET", url, &status));
    cr_expect_eq(status, 404);
    snprintf(url, sizeof url, "%s/metrics", base);
    free(http("POST", url, &status));
    cr_expect_eq(status, 405);

    char s_consumed[256], s_failed[256], s_dlq[256], s_hcount[256], s_hinf[256], s_hsum[256], topic[128];
    snprintf(topic, sizeof topic, "%s%s", env.prefix, in_topic);
    snprintf(s_consumed, sizeof s_consumed, "sfbridge_messages_consumed_total{topic=\"%s\"}", topic);
    snprintf(s_failed, sizeof s_failed, "sfbridge_messages_failed_total{topic=\"%s\"}", topic);
    snprintf(s_dlq, sizeof s_dlq, "sfbridge_messages_dead_lettered_total{topic=\"%s\"}", topic);
    snprintf(s_hcount, sizeof s_hcount, "sfbridge_handler_duration_seconds_count{topic=\"%s\"}", topic);
    snprintf(s_hinf, sizeof s_hinf, "sfbridge_handler_duration_seconds_bucket{topic=\"%s\",le=\"+Inf\"}", topic);
    snprintf(s_hsum, sizeof s_hsum, "sfbridge_handler_duration_seconds_sum{topic=\"%s\"}", topic);

    char *m0 = scrape(base);
    check_exposition(m0);
    char up[96];
    snprintf(up, sizeof up, "sfbridge_up{proc=\"%s\"}", bin);
    cr_expect(sample(m0, up) == 1, "sfbridge_up names the process:\n%s", m0);
    cr_expect(sample(m0, s_consumed) <= 0, "nothing consumed yet:\n%s", m0);
    free(m0);

    /* two undecodable messages -> DLQ */
    char dlq_topic[96];
    snprintf(dlq_topic, sizeof dlq_topic, "%s.dlq", in_topic);
    it_produce(&env, in_topic, "k", "not json{", 9);
    it_produce(&env, in_topic, "k", "{\"message_id\":\"nope\"}", 21);
    struct it_msgs dlq;
    it_consume(&env, dlq_topic, 2, 60000, 500, &dlq);
    cr_assert_eq(dlq.n, 2, "two dead letters, got %d", dlq.n);
    it_msgs_free(&dlq);
    char *m1 = NULL;
    for (int i = 0; i < 50; i++) { /* the counter moves right after the DLQ ack */
        free(m1);
        m1 = scrape(base);
        if (sample(m1, s_dlq) == 2)
            break;
        sleep_ms(100);
    }
    check_exposition(m1);
    cr_expect_eq(sample(m1, s_consumed), 2, "consumed after 2 bad messages:\n%s", m1);
    cr_expect_eq(sample(m1, s_failed), 2, "failed after 2 bad messages:\n%s", m1);
    cr_expect_eq(sample(m1, s_dlq), 2, "dead-lettered after 2 bad messages:\n%s", m1);
    cr_expect(sample(m1, s_hcount) <= 0, "undecodable messages never reach the handler:\n%s", m1);
    free(m1);

    /* three valid jobs of a disabled org -> permanent failures, not dead letters */
    for (int i = 0; i < 3; i++) {
        char id[37], msg[512];
        it_uuid(id);
        int n = make(msg, sizeof msg, id, "full");
        it_produce(&env, in_topic, "7d6b0c1e-9f1a-4a53-8a0e-3c2f4b5a6d7e", msg, (size_t)n);
    }
    struct it_msgs done;
    it_consume(&env, out_topic, 3, 60000, 500, &done);
    cr_assert_eq(done.n, 3, "three completions, got %d", done.n);
    it_msgs_free(&done);
    char *m2 = NULL;
    for (int i = 0; i < 50; i++) {
        free(m2);
        m2 = scrape(base);
        if (sample(m2, s_hcount) == 3)
            break;
        sleep_ms(100);
    }
    check_exposition(m2);
    cr_expect_eq(sample(m2, s_consumed), 5, "consumed:\n%s", m2);
    cr_expect_eq(sample(m2, s_failed), 5, "failed:\n%s", m2);
    cr_expect_eq(sample(m2, s_dlq), 2, "valid messages are not dead-lettered:\n%s", m2);
    cr_expect_eq(sample(m2, s_hcount), 3, "the latency histogram counts the three handled jobs:\n%s", m2);
    cr_expect_eq(sample(m2, s_hinf), 3, "+Inf bucket = count:\n%s", m2);
    cr_expect(sample(m2, s_hsum) >= 0, "histogram sum:\n%s", m2);
    /* cumulative buckets never decrease */
    double prev = 0;
    static const char *const les[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
                                      "1", "2.5", "5", "10", "30"};
    for (size_t i = 0; i < sizeof les / sizeof les[0]; i++) {
        char b[300];
        snprintf(b, sizeof b, "sfbridge_handler_duration_seconds_bucket{topic=\"%s\",le=\"%s\"}", topic, les[i]);
        double v = sample(m2, b);
        cr_expect(v >= prev && v <= 3, "bucket le=%s = %g after %g:\n%s", les[i], v, prev, m2);
        prev = v;
    }
    free(m2);

    /* one more: the numbers keep moving, nothing resets */
    {
        char id[37], msg[512];
        it_uuid(id);
        int n = make(msg, sizeof msg, id, "incremental");
        it_produce(&env, in_topic, "7d6b0c1e-9f1a-4a53-8a0e-3c2f4b5a6d7e", msg, (size_t)n);
    }
    it_consume(&env, out_topic, 4, 60000, 300, &done);
    cr_assert_eq(done.n, 4);
    it_msgs_free(&done);
    char *m3 = NULL;
    for (int i = 0; i < 50; i++) {
        free(m3);
        m3 = scrape(base);
        if (sample(m3, s_hcount) == 4)
            break;
        sleep_ms(100);
    }
    cr_expect_eq(sample(m3, s_consumed), 6, "consumed:\n%s", m3);
    cr_expect_eq(sample(m3, s_failed), 6, "failed:\n%s", m3);
    cr_expect_eq(sample(m3, s_hcount), 4, "handled:\n%s", m3);
    free(m3);

    cr_assert_eq(it_stop(w, 30000), 0, "SIGTERM drains and exits 0");
    /* after the stop nothing listens any more */
    snprintf(url, sizeof url, "%s/healthz", base);
    body = http("GET", url, &status);
    free(body);
    cr_expect(status != 200, "the metrics server stops with the worker");
}

Test(it_metrics, sync_worker_scrape_during_a_run, .timeout = 180)
{
    scrape_during_a_run("sfbridge-sync", "sync.requested", "sync.completed", sync_job);
}

Test(it_metrics, write_worker_scrape_during_a_run, .timeout = 180)
{
    scrape_during_a_run("sfbridge-write", "record.write", "record.written", write_job);
}

Test(it_metrics, renderer_labels_and_escaping)
{
    metrics_count_l("sfbridge_sf_calls_total", "endpoint", "query", 2);
    metrics_count("sfbridge_sf_errors_by_code_total", "REQUEST_LIMIT_EXCEEDED", 1);
    metrics_count_l("sfbridge_sf_calls_total", "endpoint", "composite", 1);
    metrics_gauge_l("sfbridge_api_usage_ratio", "sf_org", "00D000000000001AAA", 0.25);
    metrics_gauge_l("sfbridge_api_usage_ratio", "sf_org", "00D000000000001AAA", 0.5);
    metrics_count("sfbridge_messages_consumed_total", "we\"ird\\topic", 1);
    metrics_observe_ms_l("sfbridge_sf_call_duration_seconds", "endpoint", "query", 30);
    char *t = metrics_render();
    cr_assert(t);
    check_exposition(t);
    cr_expect_eq(sample(t, "sfbridge_sf_calls_total{endpoint=\"query\"}"), 2, "%s", t);
    cr_expect_eq(sample(t, "sfbridge_sf_calls_total{endpoint=\"composite\"}"), 1, "%s", t);
    cr_expect_eq(sample(t, "sfbridge_sf_errors_by_code_total{code=\"REQUEST_LIMIT_EXCEEDED\"}"), 1, "%s", t);
    cr_expect_eq(sample(t, "sfbridge_api_usage_ratio{sf_org=\"00D000000000001AAA\"}"), 0.5, "gauges replace: %s", t);
    cr_expect_eq(sample(t, "sfbridge_messages_consumed_total{topic=\"we\\\"ird\\\\topic\"}"), 1,
                 "label values are escaped: %s", t);
    cr_expect_eq(sample(t, "sfbridge_sf_call_duration_seconds_bucket{endpoint=\"query\",le=\"0.05\"}"), 1, "%s", t);
    cr_expect_eq(sample(t, "sfbridge_sf_call_duration_seconds_bucket{endpoint=\"query\",le=\"0.025\"}"), 0, "%s", t);
    cr_expect_eq(metrics_value("sfbridge_sf_calls_total", "query"), 2);
    free(t);
}

#include "it_sync_lib.h"

/* A real sync against the emulator: the Salesforce, sync and budget metrics move with the run. */
Test(it_metrics, real_sync_moves_salesforce_and_sync_metrics, .timeout = 180)
{
    struct it_env env;
    it_env_init(&env);
    struct it_sfsim sim;
    const char *args[] = {"--seed-accounts", "50", "--seed-contacts", "0", "--seed-opportunities", "0",
                          "--seed-interactions", "0", "--quiet", NULL};
    it_sfsim_start(&env, &sim, args);
    char conn[37], id[37], addr[64], base[96], key_env[120], login_env[200], metrics_env[96];
    its_connection(&env, &sim, "acme", conn);
    its_import(&env, "acme", "tests/demo/mappings.json");
    int port = free_port();
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    snprintf(base, sizeof base, "http://%s", addr);
    snprintf(key_env, sizeof key_env, "SFBRIDGE_TOKEN_KEY=%s", ITS_TOKEN_KEY);
    snprintf(login_env, sizeof login_env, "SF_LOGIN_URL=%s", sim.url);
    snprintf(metrics_env, sizeof metrics_env, "SFBRIDGE_METRICS_ADDR=%s", addr);
    const char *extra[] = {key_env, login_env, metrics_env, NULL};
    pid_t w = it_spawn(&env, "sfbridge-sync", extra, "metrics-real-sync");
    its_request(&env, "acme", conn, "full", "[\"Account\"]", id);
    struct json_object *ev = its_completion(&env, id, 1, 120000);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", json_object_to_json_string(ev));
    json_object_put(ev);
    char *t = scrape(base);
    check_exposition(t);
    cr_expect_eq(sample(t, "sfbridge_sync_records_total{object=\"Account\"}"), 50, "%s", t);
    cr_expect_geq(sample(t, "sfbridge_sf_calls_total{endpoint=\"queryAll\"}"), 1, "%s", t);
    cr_expect(strstr(t, "sfbridge_sf_call_duration_seconds_count{endpoint=\"queryAll\"}"), "%s", t);
    cr_expect(strstr(t, "sfbridge_api_usage_ratio{sf_org=\"00D"), "%s", t);
    cr_expect(strstr(t, "sfbridge_consumer_lag_messages{partition="), "%s", t);
    free(t);
    cr_assert_eq(it_stop(w, 30000), 0);
    it_sfsim_stop(&sim);
}
