/*
 * test_sf: the Salesforce client against a scripted libmicrohttpd server on
 * 127.0.0.1 (free port) started inside each test. Every test asserts what the
 * server received (request count, paths, headers, bodies) and how the client
 * classified the outcome. Each Criterion test runs in its own process, so the
 * one server below is per test.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "json.h"
#include "sf.h"

#define MAXREQ 64
#define TOKEN "00DTEST000000000!ARsecretaccesstoken"

struct rec {
    char method[16];
    char path[512];
    char q[1024];       /* decoded ?q= */
    char locator[64];   /* decoded ?locator= */
    char maxrec[32];    /* ?maxRecords= */
    char auth[256];
    char accept[128];
    char accept_enc[128];
    char ctype[128];
    char qopt[128];     /* Sforce-Query-Options */
    char body[8192];
    size_t body_len;
};

struct reply {
    int status;
    const char *ctype;
    char body[16384];
    size_t len;
    const char *hdr[4][2];
    int delay_ms;
    size_t partial; /* > 0: announce len bytes, send only this many, then fail */
    long gen_rows;  /* > 0: body is a generated CSV of this many rows (chunked) */
};

typedef void (*handler_fn)(int n, const struct rec *r, struct reply *out);

static struct {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    int nreq;
    int nconn;
    struct rec reqs[MAXREQ];
    handler_fn handler;
    volatile int stopping;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

struct conn_ctx {
    char body[8192];
    size_t len;
};

static void copy_hdr(struct MHD_Connection *c, enum MHD_ValueKind kind, const char *name, char *dst, size_t cap)
{
    const char *v = MHD_lookup_connection_value(c, kind, name);
    snprintf(dst, cap, "%s", v ? v : "");
}

struct partial_ctx {
    char *data;
    size_t partial;
};

static ssize_t partial_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct partial_ctx *p = cls;
    if (pos >= p->partial) {
        /* give the bytes already queued time to reach the client, then break */
        usleep(300000);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = p->partial - pos < max ? p->partial - (size_t)pos : max;
    memcpy(buf, p->data + pos, n);
    return (ssize_t)n;
}

static void partial_free(void *cls)
{
    struct partial_ctx *p = cls;
    free(p->data);
    free(p);
}

struct gen_ctx {
    long rows, next;
    char line[160];
    size_t len, off;
};

static ssize_t gen_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct gen_ctx *g = cls;
    size_t o = 0;
    while (o < max) {
        if (g->off == g->len) {
            if (g->next > g->rows)
                break;
            if (g->next == 0)
                g->len = (size_t)snprintf(g->line, sizeof g->line, "\"Id\",\"Name\",\"Account.Name\"\n");
            else
                g->len = (size_t)snprintf(g->line, sizeof g->line,
                                          "\"003%015ld\",\"Contact number %ld with a longish name\",\"Acme\"\n",
                                          g->next, g->next);
            g->next++;
            g->off = 0;
        }
        size_t n = g->len - g->off < max - o ? g->len - g->off : max - o;
        memcpy(buf + o, g->line + g->off, n);
        g->off += n;
        o += n;
    }
    return o ? (ssize_t)o : MHD_CONTENT_READER_END_OF_STREAM;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)version;
    struct conn_ctx *cc = *con_cls;
    if (!cc) {
        cc = calloc(1, sizeof *cc);
        *con_cls = cc;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        if (cc->len + n > sizeof cc->body - 1)
            n = sizeof cc->body - 1 - cc->len;
        memcpy(cc->body + cc->len, upload, n);
        cc->len += n;
        *upload_size = 0;
        return MHD_YES;
    }
    struct rec r;
    memset(&r, 0, sizeof r);
    snprintf(r.method, sizeof r.method, "%s", method);
    snprintf(r.path, sizeof r.path, "%s", url);
    copy_hdr(conn, MHD_GET_ARGUMENT_KIND, "q", r.q, sizeof r.q);
    copy_hdr(conn, MHD_GET_ARGUMENT_KIND, "locator", r.locator, sizeof r.locator);
    copy_hdr(conn, MHD_GET_ARGUMENT_KIND, "maxRecords", r.maxrec, sizeof r.maxrec);
    copy_hdr(conn, MHD_HEADER_KIND, "Authorization", r.auth, sizeof r.auth);
    copy_hdr(conn, MHD_HEADER_KIND, "Accept", r.accept, sizeof r.accept);
    copy_hdr(conn, MHD_HEADER_KIND, "Accept-Encoding", r.accept_enc, sizeof r.accept_enc);
    copy_hdr(conn, MHD_HEADER_KIND, "Content-Type", r.ctype, sizeof r.ctype);
    copy_hdr(conn, MHD_HEADER_KIND, "Sforce-Query-Options", r.qopt, sizeof r.qopt);
    memcpy(r.body, cc->body, cc->len);
    r.body_len = cc->len;

    pthread_mutex_lock(&S.mu);
    int n = S.nreq++;
    if (n < MAXREQ)
        S.reqs[n] = r;
    pthread_mutex_unlock(&S.mu);

    struct reply *out = calloc(1, sizeof *out);
    out->status = 200;
    S.handler(n, &r, out);
    for (int waited = 0; waited < out->delay_ms && !S.stopping; waited += 10)
        usleep(10000);
    if (!out->len)
        out->len = strlen(out->body);
    struct MHD_Response *resp;
    if (out->gen_rows) {
        struct gen_ctx *g = calloc(1, sizeof *g);
        g->rows = out->gen_rows;
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 65536, gen_reader, g, free);
    } else if (out->partial) {
        struct partial_ctx *p = calloc(1, sizeof *p);
        p->data = malloc(out->len);
        memcpy(p->data, out->body, out->len);
        p->partial = out->partial;
        resp = MHD_create_response_from_callback(out->len, 1024, partial_reader, p, partial_free);
    } else {
        resp = MHD_create_response_from_buffer(out->len, out->body, MHD_RESPMEM_MUST_COPY);
    }
    MHD_add_response_header(resp, "Content-Type", out->ctype ? out->ctype : "application/json;charset=UTF-8");
    for (int i = 0; i < 4 && out->hdr[i][0]; i++)
        MHD_add_response_header(resp, out->hdr[i][0], out->hdr[i][1]);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)out->status, resp);
    MHD_destroy_response(resp);
    free(out);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
    (void)cls;
    (void)c;
    (void)t;
    free(*con_cls);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **sock_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    (void)c;
    (void)sock_ctx;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        pthread_mutex_lock(&S.mu);
        S.nconn++;
        pthread_mutex_unlock(&S.mu);
    }
}

static void srv_start_opts(handler_fn h, const char *tls_key, const char *tls_cert)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    S.handler = h;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (tls_key)
        flags |= MHD_USE_TLS;
    if (tls_key)
        S.d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &sa,
                               MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION,
                               on_connection, NULL, MHD_OPTION_HTTPS_MEM_KEY, tls_key, MHD_OPTION_HTTPS_MEM_CERT,
                               tls_cert, MHD_OPTION_END);
    else
        S.d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &sa,
                               MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION,
                               on_connection, NULL, MHD_OPTION_END);
    cr_assert_not_null(S.d, "could not start the test server");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(S.d, MHD_DAEMON_INFO_BIND_PORT);
    S.port = info->port;
    cr_assert_gt(S.port, 0);
}

static void srv_start(handler_fn h)
{
    srv_start_opts(h, NULL, NULL);
}

static void srv_stop(void)
{
    S.stopping = 1;
    if (S.d)
        MHD_stop_daemon(S.d);
    S.d = NULL;
}

static int nreq(void)
{
    pthread_mutex_lock(&S.mu);
    int n = S.nreq;
    pthread_mutex_unlock(&S.mu);
    return n;
}

static void reply_set(struct reply *out, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void reply_set(struct reply *out, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    out->status = status;
    vsnprintf(out->body, sizeof out->body, fmt, ap);
    va_end(ap);
}

static char base_url[64];

static struct sf_client *client(int max_retries, long timeout_ms)
{
    struct sf_options o;
    struct err e = ERR_INIT;
    sf_options_init(&o);
    o.max_retries = max_retries;
    if (timeout_ms)
        o.timeout_ms = timeout_ms;
    struct sf_client *c = sf_client_new(&o, &e);
    cr_assert_not_null(c, "%s", e.msg);
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d/", S.port);
    sf_client_set_session(c, base_url, TOKEN);
    return c;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct usage {
    int calls;
    long long used, limit;
};

static void on_usage(void *ud, long long used, long long limit)
{
    struct usage *u = ud;
    u->calls++;
    u->used = used;
    u->limit = limit;
}

/* ---------------- plain REST ---------------- */

static void h_ok(int n, const struct rec *r, struct reply *out)
{
    (void)r;
    static char li[64];
    snprintf(li, sizeof li, "api-usage=%d/15000; per-app-api-usage=3/250(appName=x)", 100 + n);
    out->hdr[0][0] = "Sforce-Limit-Info";
    out->hdr[0][1] = li;
    reply_set(out, 200, "{\"encoding\":\"UTF-8\",\"maxBatchSize\":200,\"n\":%d}", n);
}

Test(sf_client, get_sends_auth_reuses_connection_and_reports_usage)
{
    srv_start(h_ok);
    struct sf_client *c = client(5, 0);
    struct usage u = {0};
    sf_client_on_usage(c, on_usage, &u);
    struct err e = ERR_INIT;
    struct sf_response r = {0};
    for (int i = 0; i < 3; i++) {
        cr_assert(sf_call(c, "GET", "/sobjects", NULL, NULL, 0, &r, &e), "%s", e.msg);
        cr_assert_eq(r.status, 200);
        cr_assert_not_null(r.json);
        cr_assert_eq(json_get_int(r.json, "n", -1), i);
        cr_assert_eq(r.records, -1);
        cr_assert_null(r.locator);
    }
    sf_response_cleanup(&r);
    cr_assert_eq(nreq(), 3);
    cr_assert_str_eq(S.reqs[0].method, "GET");
    cr_assert_str_eq(S.reqs[0].path, "/services/data/v60.0/sobjects");
    cr_assert_str_eq(S.reqs[0].auth, "Bearer " TOKEN);
    cr_assert(strstr(S.reqs[0].accept, "application/json"));
    cr_assert(strstr(S.reqs[0].accept_enc, "gzip"), "gzip offered: %s", S.reqs[0].accept_enc);
    cr_assert_eq(S.nconn, 1, "one TCP connection for 3 calls, got %d", S.nconn);
    cr_assert_eq(sf_client_calls(c), 3);
    cr_assert_eq(u.calls, 3);
    cr_assert_eq(u.used, 102);
    cr_assert_eq(u.limit, 15000);
    long long used, limit;
    cr_assert(sf_client_last_usage(c, &used, &limit));
    cr_assert_eq(used, 102);
    sf_client_reset_calls(c);
    cr_assert_eq(sf_client_calls(c), 0);

    /* absolute path is used as given */
    cr_assert(sf_call(c, "GET", "/services/apexrest/ping", NULL, NULL, 0, &r, &e));
    cr_assert_str_eq(S.reqs[3].path, "/services/apexrest/ping");
    sf_response_cleanup(&r);
    sf_client_free(&c);
    cr_assert_null(c);
    sf_client_free(&c);
    srv_stop();
}

static void h_echo(int n, const struct rec *r, struct reply *out)
{
    (void)n;
    if (strcmp(r->method, "PATCH") == 0) {
        out->status = 204;
        return;
    }
    reply_set(out, 201, "{\"id\":\"001000000000001AAA\",\"success\":true,\"errors\":[]}");
}

Test(sf_client, post_and_patch_send_body_as_given)
{
    srv_start(h_echo);
    struct sf_client *c = client(5, 0);
    struct err e = ERR_INIT;
    struct sf_response r = {0};
    const char body[] = "{\"Name\":\"Zürich \\\"AG\\\"\"}";
    cr_assert(sf_call(c, "POST", "/sobjects/Account", NULL, body, sizeof body - 1, &r, &e), "%s", e.msg);
    cr_assert_eq(r.status, 201);
    cr_assert_str_eq(json_get_str(r.json, "id"), "001000000000001AAA");
    cr_assert_str_eq(S.reqs[0].method, "POST");
    cr_assert_str_eq(S.reqs[0].body, body);
    cr_assert(strstr(S.reqs[0].ctype, "application/json"));

    cr_assert(sf_call(c, "PATCH", "/sobjects/Account/001000000000001AAA", "application/json", "{}", 2, &r, &e));
    cr_assert_eq(r.status, 204);
    cr_assert_null(r.json, "no body, no json");
    cr_assert_eq(r.len, 0);
    cr_assert_str_eq(S.reqs[1].method, "PATCH");
    cr_assert_str_eq(S.reqs[1].body, "{}");
    sf_response_cleanup(&r);
    sf_client_free(&c);
    srv_stop();
}

static void h_401(int n, const struct rec *r, struct reply *out)
{
    (void)n;
    (void)r;
    reply_set(out, 401, "[{\"message\":\"Session expired or invalid\",\"errorCode\":\"INVALID_SESSION_ID\"}]");
}

Test(sf_client, unauthorized_is_not_retried)
{
    srv_start(h_401);
    struct sf_client *c = client(5, 0);
    struct err e = ERR_INIT;
    struct sf_response r = {0};
    cr_assert_not(sf_call(c, "GET", "/limits", NULL, NULL, 0, &r, &e));
    cr_assert_eq(e.code, ERR_AUTH);
    cr_assert_str_eq(e.sf_code, "INVALID_SESSION_ID");
    cr_assert_not(e.retriable);
    cr_assert_str_eq(e.msg, "Session expired or invalid");
    cr_assert_eq(r.status, 401);
    cr_assert_eq(nreq(), 1, "the caller refreshes; the client does not retry");
    sf_response_cleanup(&r);
    sf_client_free(&c);
    srv_stop();
}

static void h_503_then_ok(int n, const struct rec *r, struct reply *out)
{
    (void)r;
    if (n == 0)
        reply_set(out, 503, "[{\"message\":\"Server too busy\",\"errorCode\":\"SERVER_UNAVAILABLE\"}]");
    else
        reply_set(out, 200, "{\"ok\":true}");
}

Test(sf_client, server_unavailable_backs_off_and_retries_without_leaking_secrets_to_logs)
{
    srv_start(h_503_then_ok);
    struct sf_client *c = client(5, 0);
    struct err e = ERR_INIT;
    struct sf_response r = {0};
    /* capture stderr (the log) */
    char path[] = "/tmp/test_sf_logXXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    long long t0 = mono_ms();
    bool ok = sf_call(c, "GET", "/query?q=SELECT+Id+FROM+Account+WHERE+Secret__c='hunter2'", NULL, NULL, 0, &r,
                      &e);
    long long dt = mono_ms() - t0;
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    cr_assert(ok, "%s", e.msg);
    cr_assert_eq(nreq(), 2);
    cr_assert_eq(sf_client_calls(c), 2, "retries count as calls");
    cr_assert_geq(dt, 100, "first backoff is 100..200 ms, took %lld", dt);
    cr_assert_lt(dt, 2000);
    char logbuf[4096] = {0};
    lseek(fd, 0, SEEK_SET);
    ssize_t ln = read(fd, logbuf, sizeof logbuf - 1);
    close(fd);
    unlink(path);
    cr_assert_gt(ln, 0, "a retry is logged");
    cr_assert(strstr(logbuf, "retrying GET /services/data/v60.0/query"), "%s", logbuf);
    cr_assert_null(strstr(logbuf, "ARsecret"), "token in log: %s", logbuf);
    cr_assert_null(strstr(logbuf, "hunter2"), "query string in log: %s", logbuf);
    sf_response_cleanup(&r);
    sf_client_free(&c);
    srv_stop();
}

static void h_503(int n, const struct rec *r, struct reply *out)
{
    (void)n;
    (void)r;
    reply_set(out, 503, "[{\"message\":\"Server too busy\",\"errorCode\":\"SERVER_UNAVAILABLE\"}]");
}

Test(sf_client, retries_are_bounded)
{
    srv_start(h_503);
    struct sf_client *c = client(2, 0);
    struct err e = ERR_INIT;
    struct sf_response r = {0};
    long long t0 = mono_ms();
    cr_assert_not(sf_call(c, "GET", "/limits", NULL, NULL, 0, &r, &e));
    long long dt = mono_ms() - t0;
    cr_assert_eq(nreq(), 3, "1 + max_retries attempts");
    cr_assert_eq(e.code, ERR_SALESFORCE);
    cr_assert(e.retriable);
    cr_assert_str_eq(e.sf_code, "SERVER_UNAVAILABLE");
    cr_assert(strstr(e.msg, "after 3 attempts"), "%s", e.msg);
    cr_assert_geq(dt, 100 + 200, "two backoffs: >= 100 + 200 ms, took %lld", dt);
    sf_response_cleanup(&r);
    sf_client_free(&c);
    srv_stop();
}

Test(sf_client, cancel_flag_interrupts_backoff)
{
    srv_start(h_503);
    struct sf_client *c = client(5, 0);
    volatile sig_atomic_t stop = 1;
    sf_client_set_cancel(c, &stop);
    struct err e = ERR_INIT;
    struct sf_response r = {0};
    cr_assert_not(sf_call(c, "GET", "/limits", NULL, NULL, 0, &r, &e));
    cr_assert_eq(nreq(), 1);
    cr_assert_eq(e.code, ERR_HTTP);
    cr_assert(e.retriable);
    cr_assert(strstr(e.msg, "interrupted"), "%s", e.msg);
    sf_response_cleanup(&r);
    sf_client_free(&c);
    srv_stop();
}

static void h_lock_then_ok(int n, const struct rec *r, struct reply *out)
{
    (void)r;
    if (n == 0)
        reply_set(out, 400,
                  "[{\"message\":\"unable to obtain exclusive access to this record or 1 records: "
                  "001000000000001AAA\",\"errorCode\":\"UNABLE_TO_LOCK_ROW\",\"fields\":[]}]");
    else
        reply_set(out, 200, "[{\"id\":\"001000000000001AAA\",\"success\":true,\"errors\":[]}]");
}

Test(sf_client, unable_to_lock_row_is_retried)
{
    srv_start(h_lock_then_ok);
    struct sf_client *c = client(5, 0);
    struct err e = ERR_INIT;
    struct sf_response r = {0};
    cr_assert(sf_call(c, "PATCH", "/composite/sobjects", NULL, "{\"records\":[]}", 14, &r, &e), "%s", e.msg);
    cr_assert_eq(nreq(), 2);
    cr_assert(json_object_is_type(r.json, json_type_array));
    cr_assert_str_eq(S.reqs[1].body, "{\"records\":[]}", "the body is re-sent");
    sf_response_cleanup(&r);
    sf_client_free(&c);
    srv_stop();
}

static void h_required(int n, const struct rec *r, struct reply *out)
{
    (void)n;
    (void)r;
    reply_set(out, 400,
              "[{\"message\":\"Required fields are missing: [LastName, Email]\",\"errorCode\":"
              "\"REQUIRED_FIELD_MISSING\",\"fields\":[\"LastName\",\"Email\"]}]");
}

Test(sf_client, other_4xx_is_permanent_with_salesforce_code_and_message)
{
    srv_start(h_required);
    struct sf_client *c = client(5, 0);
    struct err e = ERR_INIT;
    struct sf_response r = {0};
    cr_assert_not(sf_call(c, "POST", "/sobjects/Contact", NULL, "{}", 2, &r, &e));
    cr_assert_eq(nreq(), 1);
    cr_assert_eq(e.code, ERR_SALESFORCE);
    cr_assert_not(e.retriable);
    cr_assert_str_eq(e.sf_code, "REQUIRED_FIELD_MISSING");
    cr_assert_str_eq(e.msg, "Required fields are missing: [LastName, Email] (fields: LastName, Email)");
    cr_assert_eq(r.status, 400);
    cr_assert_not_null(strstr(r.body, "REQUIRED_FIELD_MISSING"), "the body stays available to the caller");
    sf_response_cleanup(&r);
    sf_client_free(&c);
    srv_stop();
}

static void h_limit(int n, const struct rec *r, struct reply *out)
{
    (void)n;
    (void)r;
    out->hdr[0][0] = "Sforce-Limit-Info";
    out->hdr[0][1] = "api-usage=15001/15000";
    reply_set(out, 403, "[{\"message\":\"TotalRequests Limit exceeded.\",\"errorCode\":\"REQUEST_LIMIT_EXCEEDED\"}]");
}

Test(sf_client, request_limit_exceeded_defers)
{
    srv_start(h_limit);
    struct sf_client *c = client(5, 0);
    struct usage u = {0};
    sf_client_on_usage(c, on_usage, &u);
    struct err e = ERR_INIT;
    struct sf_response r = {0};
    cr_assert_not(sf_call(c, "GET", "/query?q=x", NULL, NULL, 0, &r, &e));
    cr_assert_eq(nreq(), 1, "no retry on an exhausted limit");
    cr_assert_eq(e.code, ERR_LIMIT_EXCEEDED);
    cr_assert_str_eq(e.sf_code, "REQUEST_LIMIT_EXCEEDED");
    cr_assert_eq(u.calls, 1, "usage is reported from error responses too");
    cr_assert_eq(u.used, 15001);
    sf_response_cleanup(&r);
    sf_client_free(&c);
    srv_stop();
}

static void h_403_other(int n, const struct rec *r, struct reply *out)
{
    (void)n;
    (void)r;
    reply_set(out, 403, "[{\"message\":\"no access\",\"errorCode\":\"INSUFFICIENT_ACCESS\"}]");
}

Test(sf_client, forbidden_other_than_limit_is_permanent)
{
    srv_start(h_403_other);
    struct sf_client *c = client(5, 0);
    struct err e = ERR_INIT;
    struct sf_response r = {0};
    cr_assert_not(sf_call(c, "GET", "/sobjects/Secret__c", NULL, NULL, 0, &r, &e));
    cr_assert_eq(nreq(), 1);
    cr_assert_eq(e.code, ERR_SALESFORCE);
    cr_assert_not(e.retriable);
    cr_assert_str_eq(e.sf_code, "INSUFFICIENT_ACCESS");
    sf_response_cleanup(&r);
    sf_client_free(&c);
    srv_stop();
}

static void h_429(int n, const struct rec *r, struct reply *out)
{
    (void)r;
    if (n == 0) {
        out->hdr[0][0] = "Retry-After";
        out->hdr[0][1] = "1";
        reply_set(out, 429, "too many");
        out->ctype = "text/plain";
    } else {
        reply_set(out, 200, "{}");
    }
}

Test(sf_client, too_many_requests_honours_retry_after)
{
    srv_start(h_429);
    struct sf_client *c = client(5, 0);
    struct err e = ERR_INIT;
    struct sf_response r = {0};
    long long t0 = mono_ms();
    cr_assert(sf_call(c, "GET", "/limits", NULL, NULL, 0, &r, &e), "%s", e.msg);
    long long dt = mono_ms() - t0;
    cr_assert_eq(nreq(), 2);
    cr_assert_geq(dt, 950, "Retry-After: 1 waited only %lld ms", dt);
    sf_response_cleanup(&r);
    sf_client_free(&c);
    srv_stop();
}

static void h_hang(int n, const struct rec *r, struct reply *out)
{
    (void)n;
    (void)r;
    out->delay_ms = 3000;
    reply_set(out, 200, "{}");
}

Test(sf_client, hang_beyond_timeout_is_retried_then_retriable, .timeout = 20)
{
    srv_start(h_hang);
    struct sf_client *c = client(1, 300);
    struct err e = ERR_INIT;
    struct sf_response r = {0};
    long long t0 = mono_ms();
    cr_assert_not(sf_call(c, "GET", "/limits", NULL, NULL, 0, &r, &e));
    long long dt = mono_ms() - t0;
    cr_assert_eq(nreq(), 2, "timed out once, retried once");
    cr_assert_eq(e.code, ERR_HTTP);
    cr_assert(e.retriable);
    cr_assert(strstr(e.msg, "after 2 attempts"), "%s", e.msg);
    cr_assert_geq(dt, 600);
    cr_assert_lt(dt, 2000, "the whole-request timeout bounds the call, took %lld", dt);
    sf_response_cleanup(&r);
    sf_client_free(&c);
    srv_stop();
}

static void h_malformed(int n, const struct rec *r, struct reply *out)
{
    (void)n;
    (void)r;
    reply_set(out, 200, "{\"totalSize\": 3, \"records\": [");
}

Test(sf_client, malformed_json_is_retriable_salesforce_error)
{
    srv_start(h_malformed);
    struct sf_client *c = client(5, 0);
    struct err e = ERR_INIT;
    struct sf_response r = {0};
    cr_assert_not(sf_call(c, "GET", "/query?q=x", NULL, NULL, 0, &r, &e));
    cr_assert_eq(e.code, ERR_SALESFORCE);
    cr_assert(e.retriable);
    cr_assert_eq(nreq(), 1);
    sf_response_cleanup(&r);
    sf_client_free(&c);
    srv_stop();
}

Test(sf_client, transport_error_when_nobody_listens)
{
    /* a port that was free a moment ago */
    srv_start(h_ok);
    int port = S.port;
    srv_stop();
    struct sf_options o;
    sf_options_init(&o);
    o.max_retries = 1;
    struct err e = ERR_INIT;
    struct sf_client *c = sf_client_new(&o, &e);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    sf_client_set_session(c, url, TOKEN);
    struct sf_response r = {0};
    cr_assert_not(sf_call(c, "GET", "/limits", NULL, NULL, 0, &r, &e));
    cr_assert_eq(e.code, ERR_HTTP);
    cr_assert(e.retriable);
    cr_assert_eq(sf_client_calls(c), 2);
    sf_response_cleanup(&r);
    sf_client_free(&c);
}

/* ---------------- query paging ---------------- */

static void h_query(int n, const struct rec *r, struct reply *out)
{
    (void)r;
    if (n == 0)
        reply_set(out, 200,
                  "{\"totalSize\":5,\"done\":false,\"nextRecordsUrl\":\"/services/data/v60.0/query/01gXX-2\","
                  "\"records\":[{\"attributes\":{\"type\":\"Account\"},\"Id\":\"001A\"},{\"Id\":\"001B\"}]}");
    else if (n == 1)
        reply_set(out, 200,
                  "{\"totalSize\":5,\"done\":false,\"nextRecordsUrl\":\"/services/data/v60.0/query/01gXX-4\","
                  "\"records\":[{\"Id\":\"001C\"},{\"Id\":\"001D\"}]}");
    else
        reply_set(out, 200, "{\"totalSize\":5,\"done\":true,\"records\":[{\"Id\":\"001E\"}]}");
}

Test(sf_client, query_follows_next_records_url)
{
    srv_start(h_query);
    struct sf_client *c = client(5, 0);
    struct err e = ERR_INIT;
    struct sf_query *q = NULL;
    const char *soql = "SELECT Id, Name FROM Account WHERE Name = 'A&B+C' ORDER BY Id";
    cr_assert(sf_query_open(c, soql, true, 200, &q, &e));
    cr_assert_eq(sf_query_total(q), -1);
    cr_assert_eq(nreq(), 0, "open sends nothing");
    char ids[64] = "";
    bool done = false;
    int pages = 0;
    while (!done) {
        struct json_object *recs;
        cr_assert(sf_query_next(q, &recs, &done, &e), "%s", e.msg);
        pages++;
        for (size_t i = 0; i < json_object_array_length(recs); i++) {
            const char *id = json_get_str(json_object_array_get_idx(recs, i), "Id");
            size_t l = strlen(ids);
            snprintf(ids + l, sizeof ids - l, "%s", id + 3);
        }
    }
    cr_assert_eq(pages, 3);
    cr_assert_str_eq(ids, "ABCDE");
    cr_assert_eq(sf_query_total(q), 5);
    cr_assert_eq(nreq(), 3);
    cr_assert_str_eq(S.reqs[0].path, "/services/data/v60.0/queryAll");
    cr_assert_str_eq(S.reqs[0].q, soql, "SOQL url-encoded and decoded intact");
    cr_assert_str_eq(S.reqs[1].path, "/services/data/v60.0/query/01gXX-2");
    cr_assert_str_eq(S.reqs[2].path, "/services/data/v60.0/query/01gXX-4");
    for (int i = 0; i < 3; i++)
        cr_assert_str_eq(S.reqs[i].qopt, "batchSize=200");
    /* after the end: empty, done, nothing sent */
    struct json_object *recs;
    cr_assert(sf_query_next(q, &recs, &done, &e));
    cr_assert(done);
    cr_assert_eq(json_object_array_length(recs), 0);
    cr_assert_eq(nreq(), 3);
    sf_query_free(&q);
    cr_assert_null(q);
    sf_client_free(&c);
    srv_stop();
}

static void h_count(int n, const struct rec *r, struct reply *out)
{
    (void)n;
    (void)r;
    reply_set(out, 200, "{\"totalSize\":42,\"done\":true,\"records\":[]}");
}

Test(sf_client, count)
{
    srv_start(h_count);
    struct sf_client *c = client(5, 0);
    struct err e = ERR_INIT;
    long long n = 0;
    cr_assert(sf_query_count(c, "SELECT COUNT() FROM Contact", &n, &e), "%s", e.msg);
    cr_assert_eq(n, 42);
    cr_assert_str_eq(S.reqs[0].path, "/services/data/v60.0/query");
    cr_assert_str_eq(S.reqs[0].q, "SELECT COUNT() FROM Contact");
    cr_assert_str_eq(S.reqs[0].qopt, "", "no batch header by default");
    sf_client_free(&c);
    srv_stop();
}

static void h_query_broken(int n, const struct rec *r, struct reply *out)
{
    (void)n;
    (void)r;
    reply_set(out, 200, "{\"totalSize\":5,\"done\":false,\"records\":[]}");
}

Test(sf_client, query_page_without_next_url_is_an_error)
{
    srv_start(h_query_broken);
    struct sf_client *c = client(5, 0);
    struct err e = ERR_INIT;
    struct sf_query *q = NULL;
    struct json_object *recs;
    bool done;
    cr_assert(sf_query_open(c, "SELECT Id FROM Account", false, 0, &q, &e));
    cr_assert_not(sf_query_next(q, &recs, &done, &e));
    cr_assert_eq(e.code, ERR_SALESFORCE);
    sf_query_free(&q);
    sf_client_free(&c);
    srv_stop();
}

/* ---------------- OAuth ---------------- */

static void h_token(int n, const struct rec *r, struct reply *out)
{
    (void)n;
    if (strcmp(r->path, "/services/oauth2/token") != 0) {
        reply_set(out, 404, "[]");
        return;
    }
    reply_set(out, 200,
              "{\"access_token\":\"00D000000000001!ARnew\",\"signature\":\"xMgIfxKITQgOrZJJ5kekujIZWjdehcFYnZ12T7rGgCk=\","
              "\"scope\":\"refresh_token api\",\"instance_url\":\"https://x.my.salesforce.com\","
              "\"id\":\"https://login.salesforce.com/id/00D000000000001AAA/005000000000001AAA\","
              "\"token_type\":\"Bearer\",\"issued_at\":\"1589009375588\"}");
}

Test(sf_client, oauth_refresh_grant)
{
    srv_start(h_token);
    struct sf_client *c = client(5, 0);
    struct err e = ERR_INIT;
    struct sf_token t;
    char login[64];
    snprintf(login, sizeof login, "http://127.0.0.1:%d/", S.port);
    const char *kv[] = {"grant_type", "refresh_token", "refresh_token", "5Aep/x+y=z&w", "client_id", "cid",
                        NULL};
    cr_assert(sf_oauth_token(c, login, kv, &t, &e), "%s", e.msg);
    cr_assert_str_eq(t.access_token, "00D000000000001!ARnew");
    cr_assert_null(t.refresh_token, "no rotation: absent");
    cr_assert_str_eq(t.instance_url, "https://x.my.salesforce.com");
    cr_assert_str_eq(t.issued_at, "1589009375588");
    cr_assert_str_eq(t.token_type, "Bearer");
    cr_assert_str_eq(t.scope, "refresh_token api");
    cr_assert_eq(nreq(), 1);
    cr_assert_str_eq(S.reqs[0].method, "POST");
    cr_assert_str_eq(S.reqs[0].body, "grant_type=refresh_token&refresh_token=5Aep%2Fx%2By%3Dz%26w&client_id=cid");
    cr_assert(strstr(S.reqs[0].ctype, "application/x-www-form-urlencoded"));
    cr_assert_str_eq(S.reqs[0].auth, "", "no bearer on the token endpoint");
    cr_assert_eq(sf_client_calls(c), 0, "OAuth is not an API call");

    cr_assert(sf_token_verify(&t, "secret123", &e), "%s", e.msg);
    cr_assert_not(sf_token_verify(&t, "secret124", &e));
    cr_assert_eq(e.code, ERR_SIGNATURE);
    err_clear(&e);
    t.issued_at[0] = '2';
    cr_assert_not(sf_token_verify(&t, "secret123", &e), "issued_at is signed");
    cr_assert_eq(e.code, ERR_SIGNATURE);
    char org[19], user[19];
    cr_assert(sf_parse_identity_url(t.id, org, user));
    cr_assert_str_eq(org, "00D000000000001AAA");
    cr_assert_str_eq(user, "005000000000001AAA");
    sf_token_cleanup(&t);
    cr_assert_null(t.access_token);
    sf_client_free(&c);
    srv_stop();
}

static void h_token_err(int n, const struct rec *r, struct reply *out)
{
    (void)n;
    (void)r;
    reply_set(out, 400, "{\"error\":\"invalid_grant\",\"error_description\":\"expired access/refresh token\"}");
}

Test(sf_client, oauth_invalid_grant)
{
    srv_start(h_token_err);
    struct sf_client *c = client(5, 0);
    struct err e = ERR_INIT;
    struct sf_token t;
    char login[64];
    snprintf(login, sizeof login, "http://127.0.0.1:%d", S.port);
    const char *kv[] = {"grant_type", "refresh_token", "refresh_token", "5Aepold", NULL};
    cr_assert_not(sf_oauth_token(c, login, kv, &t, &e));
    cr_assert_eq(e.code, ERR_AUTH);
    cr_assert_str_eq(e.sf_code, "invalid_grant");
    cr_assert_str_eq(e.msg, "expired access/refresh token");
    cr_assert_not(e.retriable);
    cr_assert_eq(nreq(), 1);
    cr_assert_null(t.access_token);
    sf_client_free(&c);
    srv_stop();
}

static void h_token_503(int n, const struct rec *r, struct reply *out)
{
    (void)n;
    (void)r;
    reply_set(out, 503, "busy");
    out->ctype = "text/plain";
}

Test(sf_client, oauth_5xx_retriable_but_not_retried_inside)
{
    srv_start(h_token_503);
    struct sf_client *c = client(5, 0);
    struct err e = ERR_INIT;
    struct sf_token t;
    char login[64];
    snprintf(login, sizeof login, "http://127.0.0.1:%d", S.port);
    const char *kv[] = {"grant_type", "authorization_code", "code", "aPrx==", NULL};
    cr_assert_not(sf_oauth_token(c, login, kv, &t, &e));
    cr_assert(e.retriable);
    cr_assert_eq(nreq(), 1, "a single-use credential is never re-sent by the client");
    sf_client_free(&c);
    srv_stop();
}

static void h_revoke(int n, const struct rec *r, struct reply *out)
{
    (void)n;
    if (strcmp(r->path, "/services/oauth2/revoke") == 0 && strcmp(r->body, "token=5Aep%2Babc") == 0)
        out->status = 200;
    else
        reply_set(out, 400, "{\"error\":\"unsupported_token_type\",\"error_description\":\"bad token\"}");
}

Test(sf_client, oauth_revoke)
{
    srv_start(h_revoke);
    struct sf_client *c = client(5, 0);
    struct err e = ERR_INIT;
    char login[64];
    snprintf(login, sizeof login, "http://127.0.0.1:%d", S.port);
    cr_assert(sf_oauth_revoke(c, login, "5Aep+abc", &e), "%s", e.msg);
    cr_assert_not(sf_oauth_revoke(c, login, "other", &e));
    cr_assert_eq(e.code, ERR_AUTH);
    cr_assert_str_eq(e.sf_code, "unsupported_token_type");
    cr_assert_eq(nreq(), 2);
    sf_client_free(&c);
    srv_stop();
}

/* ---------------- Bulk 2.0 query ---------------- */

#define JOB "7505g00000AbCdEAAZ"

static int job_polls;

static void h_bulk(int n, const struct rec *r, struct reply *out)
{
    (void)n;
    if (strcmp(r->method, "POST") == 0 && strcmp(r->path, "/services/data/v60.0/jobs/query") == 0) {
        reply_set(out, 200, "{\"id\":\"" JOB "\",\"operation\":\"query\",\"state\":\"UploadComplete\"}");
    } else if (strcmp(r->path, "/services/data/v60.0/jobs/query/" JOB) == 0) {
        job_polls++;
        reply_set(out, 200, "{\"id\":\"" JOB "\",\"state\":\"%s\"}", job_polls < 2 ? "InProgress" : "JobComplete");
    } else if (strcmp(r->path, "/services/data/v60.0/jobs/query/" JOB "/results") == 0) {
        out->ctype = "text/csv";
        out->hdr[0][0] = "Sforce-NumberOfRecords";
        if (r->locator[0] == '\0') {
            out->hdr[0][1] = "2";
            out->hdr[1][0] = "Sforce-Locator";
            out->hdr[1][1] = "MTAw";
            reply_set(out, 200, "\"Id\",\"Name\",\"Account.Name\"\n"
                                "\"003A\",\"O'Brien, \"\"Pat\"\"\",\"Acme\"\n"
                                "\"003B\",\"multi\nline\",\"\"\n");
        } else {
            out->hdr[0][1] = "1";
            out->hdr[1][0] = "Sforce-Locator";
            out->hdr[1][1] = "null";
            reply_set(out, 200, "\"Id\",\"Name\",\"Account.Name\"\n\"003C\",\"Zoë\",\"Beta\"\n");
        }
    } else {
        reply_set(out, 404, "[{\"errorCode\":\"NOT_FOUND\",\"message\":\"no such path\"}]");
    }
}

struct rows {
    int n;
    char all[1024];
    int stop_at;
};

static int on_row(void *ud, size_t ncols, const char *const *names, const char *const *values)
{
    struct rows *rs = ud;
    rs->n++;
    cr_assert_eq(ncols, 3);
    cr_assert_str_eq(names[0], "Id");
    cr_assert_str_eq(names[2], "Account.Name");
    size_t l = strlen(rs->all);
    snprintf(rs->all + l, sizeof rs->all - l, "%s|%s|%s;", values[0], values[1], values[2]);
    return rs->stop_at && rs->n == rs->stop_at;
}

Test(sf_client, bulk_query_polls_and_streams_pages, .timeout = 20)
{
    srv_start(h_bulk);
    struct sf_client *c = client(5, 0);
    struct err e = ERR_INIT;
    struct rows rs = {0};
    long long n = 0;
    cr_assert(sf_bulk_query(c, "SELECT Id, Name, Account.Name FROM Contact", false, 2, on_row, &rs, &n, &e),
              "%s", e.msg);
    cr_assert_eq(n, 3);
    cr_assert_eq(rs.n, 3);
    cr_assert_str_eq(rs.all, "003A|O'Brien, \"Pat\"|Acme;003B|multi\nline|;003C|Zoë|Beta;");
    /* create, 2 polls, 2 result pages */
    cr_assert_eq(nreq(), 5, "got %d requests", nreq());
    struct json_object *jb = json_tokener_parse(S.reqs[0].body);
    cr_assert_str_eq(json_get_str(jb, "operation"), "query");
    cr_assert_str_eq(json_get_str(jb, "query"), "SELECT Id, Name, Account.Name FROM Contact");
    cr_assert_str_eq(json_get_str(jb, "contentType"), "CSV");
    json_object_put(jb);
    cr_assert_str_eq(S.reqs[3].maxrec, "2");
    cr_assert_str_eq(S.reqs[3].locator, "");
    cr_assert(strstr(S.reqs[3].accept, "text/csv"));
    cr_assert_str_eq(S.reqs[4].locator, "MTAw");
    cr_assert_str_eq(S.reqs[4].maxrec, "2");
    cr_assert_eq(sf_client_calls(c), 5);
    sf_client_free(&c);
    srv_stop();
}

Test(sf_client, bulk_row_callback_abort, .timeout = 20)
{
    srv_start(h_bulk);
    struct sf_client *c = client(5, 0);
    struct err e = ERR_INIT;
    struct rows rs = {.stop_at = 1};
    long long n = 0;
    cr_assert_not(sf_bulk_query(c, "SELECT Id, Name, Account.Name FROM Contact", true, 0, on_row, &rs, &n, &e));
    cr_assert_eq(e.code, ERR_INTERNAL);
    cr_assert_eq(rs.n, 1);
    cr_assert_eq(n, 1);
    cr_assert_eq(nreq(), 4, "no second page after the abort");
    struct json_object *jb = json_tokener_parse(S.reqs[0].body);
    cr_assert_str_eq(json_get_str(jb, "operation"), "queryAll");
    json_object_put(jb);
    cr_assert_str_eq(S.reqs[3].maxrec, "", "0 = server default, no maxRecords");
    sf_client_free(&c);
    srv_stop();
}

static void h_bulk_failed(int n, const struct rec *r, struct reply *out)
{
    (void)n;
    if (strcmp(r->method, "POST") == 0)
        reply_set(out, 200, "{\"id\":\"" JOB "\",\"state\":\"UploadComplete\"}");
    else
        reply_set(out, 200, "{\"id\":\"" JOB "\",\"state\":\"Failed\",\"errorMessage\":\"INVALID_FIELD: No such column 'Foo__c'\"}");
}

Test(sf_client, bulk_failed_job, .timeout = 20)
{
    srv_start(h_bulk_failed);
    struct sf_client *c = client(5, 0);
    struct err e = ERR_INIT;
    struct rows rs = {0};
    cr_assert_not(sf_bulk_query(c, "SELECT Foo__c FROM Contact", false, 0, on_row, &rs, NULL, &e));
    cr_assert_eq(e.code, ERR_SALESFORCE);
    cr_assert_not(e.retriable);
    cr_assert(strstr(e.msg, "No such column 'Foo__c'"), "%s", e.msg);
    cr_assert_eq(rs.n, 0);
    sf_client_free(&c);
    srv_stop();
}

/* first results page breaks after the first data row, the retry sends it whole */
static int results_calls;
static struct rows *live_rows;   /* the client's row sink, read by the server thread */
static volatile int rows_before_retry = -1;

static void h_bulk_partial(int n, const struct rec *r, struct reply *out)
{
    (void)n;
    if (strcmp(r->method, "POST") == 0) {
        reply_set(out, 200, "{\"id\":\"" JOB "\",\"state\":\"JobComplete\"}");
        return;
    }
    out->ctype = "text/csv";
    out->hdr[0][0] = "Sforce-Locator";
    out->hdr[0][1] = "null";
    reply_set(out, 200, "\"Id\",\"Name\",\"Account.Name\"\n\"003A\",\"a\",\"x\"\n\"003B\",\"b\",\"y\"\n\"003C\",\"c\",\"z\"\n");
    if (results_calls == 1)
        rows_before_retry = live_rows->n;
    if (results_calls++ == 0)
        out->partial = strlen("\"Id\",\"Name\",\"Account.Name\"\n\"003A\",\"a\",\"x\"\n\"003B\",\"b");
}

Test(sf_client, bulk_page_retry_delivers_no_row_twice, .timeout = 20)
{
    srv_start(h_bulk_partial);
    struct sf_client *c = client(5, 0);
    struct err e = ERR_INIT;
    struct rows rs = {0};
    long long n = 0;
    live_rows = &rs;
    cr_assert(sf_bulk_query(c, "SELECT Id, Name, Account.Name FROM Contact", false, 0, on_row, &rs, &n, &e), "%s",
              e.msg);
    cr_assert_eq(nreq(), 3, "create + broken page + retried page");
    cr_assert_eq(rows_before_retry, 1, "the broken page delivered its first row before breaking");
    cr_assert_str_eq(rs.all, "003A|a|x;003B|b|y;003C|c|z;");
    cr_assert_eq(n, 3);
    sf_client_free(&c);
    srv_stop();
}

static void h_bulk_big(int n, const struct rec *r, struct reply *out)
{
    (void)n;
    if (strcmp(r->method, "POST") == 0) {
        reply_set(out, 200, "{\"id\":\"" JOB "\",\"state\":\"JobComplete\"}");
        return;
    }
    out->ctype = "text/csv";
    out->hdr[0][0] = "Sforce-Locator";
    out->hdr[0][1] = "null";
    out->gen_rows = 400000;
}

static int count_row(void *ud, size_t ncols, const char *const *names, const char *const *values)
{
    (void)names;
    long *n = ud;
    if (ncols != 3 || strncmp(values[0], "003", 3) != 0)
        return 1;
    (*n)++;
    return 0;
}

static long max_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

Test(sf_client, bulk_results_stream_in_bounded_memory, .timeout = 60)
{
    srv_start(h_bulk_big);
    struct sf_client *c = client(0, 60000);
    struct err e = ERR_INIT;
    long rows = 0;
    long long n = 0;
    long before = max_rss_kb();
    long long t0 = mono_ms();
    cr_assert(sf_bulk_query(c, "SELECT Id, Name, Account.Name FROM Contact", false, 0, count_row, &rows, &n, &e),
              "%s", e.msg);
    long long dt = mono_ms() - t0;
    long grown = max_rss_kb() - before;
    cr_assert_eq(rows, 400000);
    cr_assert_eq(n, 400000);
    /* ~28 MB of CSV went through; a buffering client would grow by at least that */
    cr_assert_lt(grown, 12 * 1024, "peak RSS grew by %ld KiB", grown);
    cr_log_info("bulk stream: %ld rows (~28 MB) in %lld ms, peak RSS +%ld KiB", rows, dt, grown);
    sf_client_free(&c);
    srv_stop();
}

/* ---------------- TLS ---------------- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

Test(sf_client, tls_verification_is_always_on, .timeout = 30)
{
    if (!MHD_is_feature_supported(MHD_FEATURE_TLS))
        cr_skip_test("libmicrohttpd without TLS");
    char dir[] = "/tmp/test_sf_tlsXXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s/key.pem -out %s/cert.pem -days 1 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
             dir, dir);
    if (system(cmd) != 0)
        cr_skip_test("openssl command not available");
    char kp[256], cp[256];
    snprintf(kp, sizeof kp, "%s/key.pem", dir);
    snprintf(cp, sizeof cp, "%s/cert.pem", dir);
    char *key = slurp(kp), *cert = slurp(cp);
    cr_assert(key && cert);
    srv_start_opts(h_ok, key, cert);

    struct err e = ERR_INIT;
    struct sf_options o;
    sf_options_init(&o);
    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d", S.port);
    struct sf_response r = {0};

    /* system CAs: the self-signed certificate is refused, not retried */
    struct sf_client *c = sf_client_new(&o, &e);
    sf_client_set_session(c, url, TOKEN);
    cr_assert_not(sf_call(c, "GET", "/limits", NULL, NULL, 0, &r, &e));
    cr_assert_eq(e.code, ERR_TLS, "%s", e.msg);
    cr_assert_not(e.retriable);
    cr_assert_eq(sf_client_calls(c), 1);
    cr_assert_eq(nreq(), 0, "no request reached the server");
    sf_client_free(&c);

    /* the certificate as CA: accepted */
    o.ca_file = cp;
    err_clear(&e);
    c = sf_client_new(&o, &e);
    sf_client_set_session(c, url, TOKEN);
    cr_assert(sf_call(c, "GET", "/limits", NULL, NULL, 0, &r, &e), "%s", e.msg);
    cr_assert_eq(r.status, 200);
    sf_client_free(&c);

    /* right CA, wrong host name (localhost is not in the certificate) */
    snprintf(url, sizeof url, "https://localhost:%d", S.port);
    err_clear(&e);
    c = sf_client_new(&o, &e);
    sf_client_set_session(c, url, TOKEN);
    cr_assert_not(sf_call(c, "GET", "/limits", NULL, NULL, 0, &r, &e));
    cr_assert_eq(e.code, ERR_TLS, "%s", e.msg);
    sf_client_free(&c);

    sf_response_cleanup(&r);
    srv_stop();
    free(key);
    free(cert);
    unlink(kp);
    unlink(cp);
    rmdir(dir);
}

/* ---------------- helpers ---------------- */

Test(sf_client, parse_limit_info)
{
    long long u = 0, l = 0;
    cr_assert(sf_parse_limit_info("api-usage=10018/100000", &u, &l));
    cr_assert_eq(u, 10018);
    cr_assert_eq(l, 100000);
    cr_assert(sf_parse_limit_info(" api-usage = 5 / 15000 ; per-app-api-usage=17/250(appName=sample)", &u, &l));
    cr_assert_eq(u, 5);
    cr_assert_eq(l, 15000);
    cr_assert(sf_parse_limit_info("per-app-api-usage=17/250(appName=x); api-usage=7/9", &u, &l));
    cr_assert_eq(u, 7, "per-app figure is not the org figure");
    cr_assert_eq(l, 9);
    cr_assert(sf_parse_limit_info("api-usage=1/750; api-bursts=1/750", &u, &l));
    cr_assert_not(sf_parse_limit_info("per-app-api-usage=17/250", &u, &l));
    cr_assert_not(sf_parse_limit_info("api-usage=abc", &u, &l));
    cr_assert_not(sf_parse_limit_info("api-usage=1", &u, &l));
    cr_assert_not(sf_parse_limit_info("", &u, &l));
    cr_assert_not(sf_parse_limit_info(NULL, &u, &l));
}

Test(sf_client, parse_identity_url)
{
    char org[19], user[19];
    cr_assert(sf_parse_identity_url("https://login.salesforce.com/id/00D7F0000001I8vUAE/0057F000001abcdQAA", org,
                                    user));
    cr_assert_str_eq(org, "00D7F0000001I8vUAE");
    cr_assert_str_eq(user, "0057F000001abcdQAA");
    cr_assert_not(sf_parse_identity_url("https://x/id/00D7F0000001I8v/0057F000001abcd", org, user), "15 chars");
    cr_assert_not(sf_parse_identity_url("https://x/id/0057F000001abcdQAA/00D7F0000001I8vUAE", org, user),
                  "swapped");
    cr_assert_not(sf_parse_identity_url("https://x/id/00D7F0000001I8vUAE", org, user));
    cr_assert_not(sf_parse_identity_url("https://x/00D7F0000001I8vUAE/0057F000001abcdQAA", org, user));
    cr_assert_not(sf_parse_identity_url(NULL, org, user));
}

Test(sf_client, urlencode)
{
    char *s = sf_urlencode("SELECT Id FROM A WHERE N = 'a&b+c/d?é'");
    cr_assert_str_eq(s, "SELECT%20Id%20FROM%20A%20WHERE%20N%20%3D%20%27a%26b%2Bc%2Fd%3F%C3%A9%27");
    free(s);
    s = sf_urlencode("AZaz09-._~");
    cr_assert_str_eq(s, "AZaz09-._~");
    free(s);
}

Test(sf_client, call_without_session_fails_cleanly)
{
    struct err e = ERR_INIT;
    struct sf_client *c = sf_client_new(NULL, &e);
    cr_assert_not_null(c);
    struct sf_response r = {0};
    cr_assert_not(sf_call(c, "GET", "/limits", NULL, NULL, 0, &r, &e));
    cr_assert_eq(e.code, ERR_INTERNAL);
    cr_assert_eq(sf_client_calls(c), 0);
    cr_assert_str_eq(sf_client_api_version(c), "60.0");
    sf_response_cleanup(&r);
    sf_client_free(&c);
}
