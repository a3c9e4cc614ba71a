/*
 * sf: the Salesforce client, see sf.h. The only file that includes curl.
 *
 * One CURL easy handle per client, reset (which keeps live connections) and
 * configured from scratch for every request, so no option of one request can
 * leak into the next. Every attempt goes through perform(); the retry loop in
 * rest_request() decides what is retried and how failures are classified.
 * Bulk results are streamed through the CSV parser from the write callback,
 * never buffered.
 */
#include "sf.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "crypto.h"
#include "csv.h"
#include "json.h"
#include "cfg.h"
#include "log.h"
#include "metrics.h"

#define SF_MAX_BODY (256u * 1024 * 1024) /* buffered (JSON) responses */
#define SF_BACKOFF_BASE_MS 200
#define SF_SLEEP_STEP_MS 20
#define SF_BULK_POLL_FIRST_MS 250
#define SF_BULK_POLL_MAX_MS 5000

struct sf_client {
    CURL *h;
    char *api_version;
    char *ca_file;
    long timeout_ms, connect_timeout_ms, max_backoff_ms, bulk_timeout_ms;
    int max_retries;
    char *instance_url;
    char *token;
    sf_usage_fn usage_fn;
    void *usage_ud;
    bool have_usage;
    long long used, limit;
    long long calls;
    const volatile sig_atomic_t *cancel;
    uint64_t rng;
    char errbuf[CURL_ERROR_SIZE];
};

/* ---------- module init ---------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---------- small helpers ---------- */

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool cancelled(const struct sf_client *c)
{
    return c->cancel && *c->cancel;
}

/* Sleep ms in small steps; false when the stop flag was raised. */
static bool sleep_ms(const struct sf_client *c, long ms)
{
    long long end = now_ms() + ms;
    for (;;) {
        if (cancelled(c))
            return false;
        long long left = end - now_ms();
        if (left <= 0)
            return true;
        long step = left < SF_SLEEP_STEP_MS ? (long)left : SF_SLEEP_STEP_MS;
        struct timespec ts = {step / 1000, (step % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            if (cancelled(c))
                return false;
    }
}

static uint64_t rng_next(struct sf_client *c)
{
    /* xorshift64*: jitter only, not security */
    uint64_t x = c->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    c->rng = x;
    return x * 2685821657736338717ULL;
}

/* Full jitter in [d/2, d] with d = min(cap, base * 2^attempt); Retry-After
 * (ms, 0 = none) raises it, still capped. */
static long backoff_ms(struct sf_client *c, int attempt, long retry_after_ms)
{
    long d = SF_BACKOFF_BASE_MS;
    for (int i = 0; i < attempt && d < c->max_backoff_ms; i++)
        d *= 2;
    if (d > c->max_backoff_ms)
        d = c->max_backoff_ms;
    long j = d / 2 + (long)(rng_next(c) % (uint64_t)(d / 2 + 1));
    if (retry_after_ms > j)
        j = retry_after_ms < c->max_backoff_ms ? retry_after_ms : c->max_backoff_ms;
    return j;
}

char *sf_urlencode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!s)
        s = "";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
            ch == '.' || ch == '_' || ch == '~') {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
    return out;
}

bool sf_parse_limit_info(const char *value, long long *used, long long *limit)
{
    if (!value)
        return false;
    const char *p = value;
    while ((p = strstr(p, "api-usage")) != NULL) {
        /* must be the bare key, not "per-app-api-usage" */
        bool bare = p == value || p[-1] == ' ' || p[-1] == ';' || p[-1] == ',' || p[-1] == '\t';
        p += 9;
        while (*p == ' ')
            p++;
        if (!bare || *p != '=')
            continue;
        p++;
        while (*p == ' ')
            p++;
        char *end = NULL;
        errno = 0;
        long long u = strtoll(p, &end, 10);
        if (errno || end == p || u < 0)
            return false;
        p = end;
        while (*p == ' ')
            p++;
        if (*p != '/')
            return false;
        p++;
        while (*p == ' ')
            p++;
        long long l = strtoll(p, &end, 10);
        if (errno || end == p || l < 0)
            return false;
        if (used)
            *used = u;
        if (limit)
            *limit = l;
        return true;
    }
    return false;
}

static bool sfid_ok(const char *s, size_t n, const char *prefix)
{
    if (n != 18 || strncmp(s, prefix, 3) != 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
            return false;
    }
    return true;
}

bool sf_parse_identity_url(const char *id_url, char *org_id, char *user_id)
{
    if (!id_url)
        return false;
    const char *p = strstr(id_url, "/id/");
    if (!p)
        return false;
    const char *org = p + 4;
    const char *slash = strchr(org, '/');
    if (!slash)
        return false;
    const char *user = slash + 1;
    size_t un = strcspn(user, "/?#");
    if (user[un] == '/' && user[un + 1] != '\0')
        return false;
    if (!sfid_ok(org, (size_t)(slash - org), "00D") || !sfid_ok(user, un, "005"))
        return false;
    if (org_id) {
        memcpy(org_id, org, 18);
        org_id[18] = '\0';
    }
    if (user_id) {
        memcpy(user_id, user, 18);
        user_id[18] = '\0';
    }
    return true;
}

/* ---------- client ---------- */

void sf_options_init(struct sf_options *o)
{
    memset(o, 0, sizeof *o);
    o->api_version = "60.0";
    o->timeout_ms = 120000;
    o->connect_timeout_ms = 10000;
    o->max_retries = 5;
    o->max_backoff_ms = 30000;
    o->bulk_timeout_ms = 1800000;
}

struct sf_client *sf_client_new(const struct sf_options *o, struct err *e)
{
    struct sf_options d;
    struct sf_client *c = NULL;
    sf_options_init(&d);
    if (!o)
        o = &d;
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK) {
        err_set(e, ERR_HTTP, false, "cannot start curl: %s", curl_easy_strerror(curl_init_rc));
        goto fail;
    }
    c = calloc(1, sizeof *c);
    if (!c)
        goto nomem;
    c->api_version = strdup(o->api_version && *o->api_version ? o->api_version : "60.0");
    c->ca_file = o->ca_file && *o->ca_file ? strdup(o->ca_file) : NULL;
    c->instance_url = strdup("");
    if (!c->api_version || !c->instance_url || (o->ca_file && *o->ca_file && !c->ca_file))
        goto nomem;
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : d.timeout_ms;
    c->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : d.connect_timeout_ms;
    c->max_retries = o->max_retries >= 0 ? o->max_retries : d.max_retries;
    c->max_backoff_ms = o->max_backoff_ms > 0 ? o->max_backoff_ms : d.max_backoff_ms;
    if (c->max_backoff_ms < 2)
        c->max_backoff_ms = 2;
    c->bulk_timeout_ms = o->bulk_timeout_ms > 0 ? o->bulk_timeout_ms : d.bulk_timeout_ms;
    if (!crypto_random_bytes(&c->rng, sizeof c->rng))
        c->rng = (uint64_t)now_ms() ^ (uint64_t)(uintptr_t)c;
    c->rng |= 1;
    c->h = curl_easy_init();
    if (!c->h) {
        err_set(e, ERR_HTTP, false, "cannot start curl: curl_easy_init failed");
        goto fail;
    }
    return c;
nomem:
    err_set(e, ERR_NOMEM, true, "could not create salesforce client: out of memory");
fail:
    sf_client_free(&c);
    return NULL;
}

static void free_secret(char **s)
{
    if (*s) {
        memset(*s, 0, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

void sf_client_free(struct sf_client **cp)
{
    if (!cp || !*cp)
        return;
    struct sf_client *c = *cp;
    if (c->h)
        curl_easy_cleanup(c->h);
    free(c->api_version);
    free(c->ca_file);
    free(c->instance_url);
    free_secret(&c->token);
    free(c);
    *cp = NULL;
}

void sf_client_set_session(struct sf_client *c, const char *instance_url, const char *access_token)
{
    if (!c)
        return;
    char *u = strdup(instance_url ? instance_url : "");
    if (u) {
        size_t n = strlen(u);
        while (n > 0 && u[n - 1] == '/')
            u[--n] = '\0';
        free(c->instance_url);
        c->instance_url = u;
    }
    free_secret(&c->token);
    c->token = xstrdup(access_token);
}

const char *sf_client_instance_url(const struct sf_client *c)
{
    return c && c->instance_url ? c->instance_url : "";
}

const char *sf_client_api_version(const struct sf_client *c)
{
    return c ? c->api_version : "";
}

void sf_client_on_usage(struct sf_client *c, sf_usage_fn fn, void *ud)
{
    if (!c)
        return;
    c->usage_fn = fn;
    c->usage_ud = ud;
}

bool sf_client_last_usage(const struct sf_client *c, long long *used, long long *limit)
{
    if (!c || !c->have_usage)
        return false;
    if (used)
        *used = c->used;
    if (limit)
        *limit = c->limit;
    return true;
}

long long sf_client_calls(const struct sf_client *c)
{
    return c ? c->calls : 0;
}

void sf_client_reset_calls(struct sf_client *c)
{
    if (c)
        c->calls = 0;
}

void sf_client_set_cancel(struct sf_client *c, const volatile sig_atomic_t *flag)
{
    if (c)
        c->cancel = flag;
}

void sf_response_cleanup(struct sf_response *r)
{
    if (!r)
        return;
    free(r->body);
    if (r->json)
        json_object_put(r->json);
    free(r->locator);
    memset(r, 0, sizeof *r);
    r->records = -1;
}

/* ---------- one HTTP exchange ---------- */

/* Streaming sink for 2xx bodies: returns false to abort the transfer. */
typedef bool (*sink_fn)(void *ud, const char *buf, size_t n);

struct req {
    const char *method;
    const char *url;
    const char *content_type; /* for the body; NULL -> application/json */
    const char *accept;       /* NULL -> application/json */
    const char *body;
    size_t len;
    const char *extra_header; /* one "Name: value" or NULL */
    bool auth;                /* send the bearer token */
    bool follow;              /* follow redirects (revoke only) */
    bool api_call;            /* counts in sf_client_calls */
    sink_fn sink;
    void *sink_ud;
    void (*on_attempt)(void *sink_ud); /* before each attempt, to rewind the sink */
};

struct xfer {
    struct sf_client *c;
    const struct req *rq;
    struct sf_response *out;
    size_t cap;
    bool too_big;
    bool sink_failed;
    long retry_after_ms;
    char *limit_info;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    long status = 0;
    if (x->rq->sink) {
        curl_easy_getinfo(x->c->h, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300) {
            if (!x->rq->sink(x->rq->sink_ud, ptr, n)) {
                x->sink_failed = true;
                return 0;
            }
            return n;
        }
    }
    struct sf_response *r = x->out;
    if (r->len + n + 1 > x->cap) {
        if (r->len + n + 1 > SF_MAX_BODY) {
            x->too_big = true;
            return 0;
        }
        size_t ncap = x->cap ? x->cap : 4096;
        while (ncap < r->len + n + 1)
            ncap *= 2;
        char *nb = realloc(r->body, ncap);
        if (!nb) {
            x->too_big = true;
            return 0;
        }
        r->body = nb;
        x->cap = ncap;
    }
    memcpy(r->body + r->len, ptr, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

/* header value copy without surrounding blanks/CRLF */
static char *header_value(const char *v, size_t n)
{
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, v, n);
        s[n] = '\0';
    }
    return s;
}

static bool header_is(const char *line, size_t n, const char *name, const char **val, size_t *vn)
{
    size_t k = strlen(name);
    if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
        return false;
    *val = line + k + 1;
    *vn = n - k - 1;
    return true;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    const char *v;
    size_t vn;
    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        /* a new response (redirect, 100-continue): forget the previous headers */
        free(x->out->locator);
        x->out->locator = NULL;
        x->out->records = -1;
        x->retry_after_ms = 0;
    } else if (header_is(ptr, n, "Sforce-Limit-Info", &v, &vn)) {
        free(x->limit_info);
        x->limit_info = header_value(v, vn);
    } else if (header_is(ptr, n, "Sforce-Locator", &v, &vn)) {
        free(x->out->locator);
        x->out->locator = header_value(v, vn);
    } else if (header_is(ptr, n, "Sforce-NumberOfRecords", &v, &vn)) {
        char *s = header_value(v, vn);
        if (s) {
            char *end = NULL;
            long long r = strtoll(s, &end, 10);
            if (end != s && *end == '\0')
                x->out->records = r;
            free(s);
        }
    } else if (header_is(ptr, n, "Retry-After", &v, &vn)) {
        char *s = header_value(v, vn);
        if (s) {
            char *end = NULL;
            long secs = strtol(s, &end, 10);
            if (end != s && *end == '\0' && secs > 0 && secs < 86400)
                x->retry_after_ms = secs * 1000;
            free(s);
        }
    }
    return n;
}

static bool is_tls_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return true;
    default:
        return false;
    }
}

/* errors that retrying cannot fix */
static bool is_permanent_transport(CURLcode rc)
{
    switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_TOO_MANY_REDIRECTS:
        return true;
    default:
        return is_tls_error(rc);
    }
}

/* "GET /services/data/v60.0/query" from a full URL: no host, no query string */
static void describe_request(const char *method, const char *url, char *out, size_t cap)
{
    const char *p = strstr(url, "://");
    p = p ? strchr(p + 3, '/') : url;
    if (!p)
        p = "/";
    int n = (int)strcspn(p, "?#");
    if (n > 160)
        n = 160;
    snprintf(out, cap, "%s %.*s", method, n, p);
}

/* One attempt. Fills out->status/body/locator/records; returns the curl code.
 * x->sink_failed / x->too_big tell why a write error happened. */
static CURLcode perform(struct sf_client *c, const struct req *rq, struct sf_response *out, struct xfer *x)
{
    struct curl_slist *hdrs = NULL, *tmp;
    char auth[4096 + 32];
    char line[256];
    CURLcode rc = CURLE_OUT_OF_MEMORY;
    CURL *h = c->h;

    memset(x, 0, sizeof *x);
    x->c = c;
    x->rq = rq;
    x->out = out;
    out->records = -1;

    curl_easy_reset(h);
    c->errbuf[0] = '\0';
    if (!cfg_url_allowed(rq->url)) {
        /* a token or secret must never travel in clear beyond this machine */
        snprintf(c->errbuf, CURL_ERROR_SIZE, "plain http is only allowed to 127.0.0.1/localhost; use https");
        return CURLE_UNSUPPORTED_PROTOCOL;
    }

    snprintf(line, sizeof line, "Accept: %s", rq->accept ? rq->accept : "application/json");
    if (!(tmp = curl_slist_append(hdrs, line)))
        goto out;
    hdrs = tmp;
    if (rq->body || strcmp(rq->method, "POST") == 0 || strcmp(rq->method, "PATCH") == 0 ||
        strcmp(rq->method, "PUT") == 0) {
        snprintf(line, sizeof line, "Content-Type: %s", rq->content_type ? rq->content_type : "application/json");
        if (!(tmp = curl_slist_append(hdrs, line)))
            goto out;
        hdrs = tmp;
    }
    if (!(tmp = curl_slist_append(hdrs, "Expect:")))
        goto out;
    hdrs = tmp;
    if (rq->extra_header) {
        if (!(tmp = curl_slist_append(hdrs, rq->extra_header)))
            goto out;
        hdrs = tmp;
    }
    if (rq->auth && c->token) {
        if (strlen(c->token) > 4096) {
            rc = CURLE_BAD_FUNCTION_ARGUMENT;
            goto out;
        }
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
        tmp = curl_slist_append(hdrs, auth);
        memset(auth, 0, sizeof auth);
        if (!tmp)
            goto out;
        hdrs = tmp;
    }

    curl_easy_setopt(h, CURLOPT_URL, rq->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "sfbridge/1.0");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    if (rq->follow) {
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, 3L);
    }
    if (strcmp(rq->method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(rq->method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
        if (rq->body || strcmp(rq->method, "POST") == 0) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(rq->body ? rq->len : 0));
        }
    }

    if (rq->api_call)
        c->calls++;
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    if (!out->body) {
        out->body = calloc(1, 1);
        if (!out->body && rc == CURLE_OK)
            rc = CURLE_OUT_OF_MEMORY;
    }
    if (x->limit_info) {
        long long used = 0, limit = 0;
        if (sf_parse_limit_info(x->limit_info, &used, &limit)) {
            c->have_usage = true;
            c->used = used;
            c->limit = limit;
            if (c->usage_fn)
                c->usage_fn(c->usage_ud, used, limit);
        }
    }
out:
    free(x->limit_info);
    x->limit_info = NULL;
    /* the handle keeps a pointer to the header list until the next reset */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    return rc;
}

/* First REST error of a body: [{"errorCode","message","fields"}] or one object.
 * code/msg point into buffers of the caller. */
static void rest_error(const struct sf_response *r, char *code, size_t ccap, char *msg, size_t mcap)
{
    struct json_object *j = r->json, *first = NULL, *owned = NULL;
    code[0] = msg[0] = '\0';
    if (!j && r->len > 0) {
        struct err ignore = ERR_INIT;
        owned = j = json_parse(r->body, r->len, &ignore);
    }
    if (j && json_object_is_type(j, json_type_array) && json_object_array_length(j) > 0)
        first = json_object_array_get_idx(j, 0);
    else if (j && json_object_is_type(j, json_type_object))
        first = j;
    if (first && json_object_is_type(first, json_type_object)) {
        const char *ec = json_get_str(first, "errorCode");
        const char *m = json_get_str(first, "message");
        if (!ec)
            ec = json_get_str(first, "error");
        if (!m)
            m = json_get_str(first, "error_description");
        snprintf(code, ccap, "%s", ec ? ec : "");
        size_t o = (size_t)snprintf(msg, mcap, "%s", m ? m : "");
        struct json_object *fields = json_get(first, "fields");
        if (fields && json_object_is_type(fields, json_type_array) && json_object_array_length(fields) > 0 &&
            o < mcap) {
            o += (size_t)snprintf(msg + o, mcap - o, " (fields: ");
            for (size_t i = 0; i < json_object_array_length(fields) && o < mcap; i++) {
                const char *f = json_object_get_string(json_object_array_get_idx(fields, i));
                o += (size_t)snprintf(msg + o, mcap - o, "%s%s", i ? ", " : "", f ? f : "");
            }
            if (o < mcap)
                snprintf(msg + o, mcap - o, ")");
        }
    }
    if (owned)
        json_object_put(owned);
    if (!msg[0] && r->len > 0) {
        /* not JSON: a short, printable excerpt */
        size_t n = 0;
        for (size_t i = 0; i < r->len && n + 1 < mcap && n < 120; i++) {
            unsigned char ch = (unsigned char)r->body[i];
            msg[n++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : ' ';
        }
        msg[n] = '\0';
    }
}

static bool body_blank(const struct sf_response *r)
{
    for (size_t i = 0; i < r->len; i++)
        if (r->body[i] != ' ' && r->body[i] != '\n' && r->body[i] != '\r' && r->body[i] != '\t')
            return false;
    return true;
}

static char *rest_url(const struct sf_client *c, const char *path)
{
    if (!path)
        return NULL;
    size_t n = strlen(c->instance_url) + strlen(c->api_version) + strlen(path) + 32;
    char *u = malloc(n);
    if (!u)
        return NULL;
    if (strncmp(path, "/services/", 10) == 0)
        snprintf(u, n, "%s%s", c->instance_url, path);
    else
        snprintf(u, n, "%s/services/data/v%s%s%s", c->instance_url, c->api_version, path[0] == '/' ? "" : "/",
                 path);
    return u;
}

/* The REST retry loop (see sf.h for the policy). `sink_err` carries the
 * sink's own error (row callback abort, CSV error) when it stops a transfer. */
static bool rest_request_inner(struct sf_client *c, const struct req *rq, struct sf_response *out,
                               struct err *sink_err, struct err *e)
{
    char what[200];
    char reason[CURL_ERROR_SIZE + 64];
    char code[64], msg[200];
    describe_request(rq->method, rq->url, what, sizeof what);

    for (int attempt = 0;; attempt++) {
        struct xfer x;
        bool http_status_failure = false;
        sf_response_cleanup(out);
        if (rq->on_attempt)
            rq->on_attempt(rq->sink_ud);
        CURLcode rc = perform(c, rq, out, &x);
        if (x.sink_failed) {
            if (sink_err && err_is_set(sink_err))
                return err_set(e, sink_err->code, sink_err->retriable, "%s", sink_err->msg);
            return err_set(e, ERR_INTERNAL, false, "could not process response of %s", what);
        }
        if (rc != CURLE_OK) {
            if (x.too_big)
                return err_set(e, ERR_SALESFORCE, false, "cannot read response of %s: larger than %u bytes",
                               what, SF_MAX_BODY);
            const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
            if (is_tls_error(rc))
                return err_set(e, ERR_TLS, false, "cannot verify tls peer for %s: %s", what, detail);
            if (is_permanent_transport(rc))
                return err_set(e, ERR_HTTP, false, "cannot send %s: %s", what, detail);
            snprintf(reason, sizeof reason, "%s", detail);
        } else if ((out->status >= 200 && out->status < 300) || out->status == 300) {
            if (rq->sink || body_blank(out))
                return true;
            struct err je = ERR_INIT;
            out->json = json_parse(out->body, out->len, &je);
            if (!out->json)
                return err_set(e, ERR_SALESFORCE, true, "could not parse response of %s: %s", what, je.msg);
            return true;
        } else {
            rest_error(out, code, sizeof code, msg, sizeof msg);
            if (out->status == 401)
                return err_set_sf(e, ERR_AUTH, false, "INVALID_SESSION_ID", "%s",
                                  msg[0] ? msg : "Session expired or invalid");
            if (out->status == 403 && strcmp(code, "REQUEST_LIMIT_EXCEEDED") == 0)
                return err_set_sf(e, ERR_LIMIT_EXCEEDED, true, code, "%s", msg[0] ? msg : "request limit exceeded");
            bool retry = out->status >= 500 || out->status == 429 ||
                         (out->status == 400 && strcmp(code, "UNABLE_TO_LOCK_ROW") == 0);
            if (!retry)
                return err_set_sf(e, ERR_SALESFORCE, false, code[0] ? code : NULL, "%s",
                                  msg[0] ? msg : "salesforce returned an error");
            http_status_failure = true;
            snprintf(reason, sizeof reason, "HTTP %ld%s%s", out->status, code[0] ? " " : "", code);
        }
        if (attempt >= c->max_retries) {
            if (http_status_failure)
                return err_set_sf(e, ERR_SALESFORCE, true, code[0] ? code : NULL,
                                  "could not complete %s after %d attempts: %s%s%s", what, attempt + 1, reason,
                                  msg[0] ? ": " : "", msg);
            return err_set(e, ERR_HTTP, true, "could not complete %s after %d attempts: %s", what, attempt + 1,
                           reason);
        }
        long d = backoff_ms(c, attempt, x.retry_after_ms);
        log_warn("retrying %s in %ld ms (attempt %d of %d): %s", what, d, attempt + 2, c->max_retries + 1,
                 reason);
        if (!sleep_ms(c, d))
            return err_set(e, ERR_HTTP, true, "could not complete %s: interrupted", what);
    }
}

/* The endpoint family of a REST URL for metrics: "query", "sobjects", "composite", "jobs", ... */
static void endpoint_of(const char *url, char *out, size_t cap)
{
    const char *p = strstr(url, "/services/data/v");
    snprintf(out, cap, "other");
    if (!p)
        return;
    p = strchr(p + 16, '/');
    if (!p)
        return;
    p++;
    size_t n = strcspn(p, "/?");
    if (n == 0 || n >= cap)
        return;
    memcpy(out, p, n);
    out[n] = '\0';
}

/* rest_request_inner plus metrics: calls and latency by endpoint, errors by code. */
static bool rest_request(struct sf_client *c, const struct req *rq, struct sf_response *out,
                         struct err *sink_err, struct err *e)
{
    char ep[32];
    endpoint_of(rq->url, ep, sizeof ep);
    long long t0 = now_ms();
    bool ok = rest_request_inner(c, rq, out, sink_err, e);
    metrics_count_l("sfbridge_sf_calls_total", "endpoint", ep, 1);
    metrics_observe_ms_l("sfbridge_sf_call_duration_seconds", "endpoint", ep, now_ms() - t0);
    if (!ok && e)
        metrics_count_l("sfbridge_sf_errors_by_code_total", "code", err_public_code(e), 1);
    return ok;
}

bool sf_call(struct sf_client *c, const char *method, const char *path, const char *content_type,
             const char *body, size_t len, struct sf_response *out, struct err *e)
{
    if (!c || !method || !path || !out)
        return err_set(e, ERR_INTERNAL, false, "cannot call salesforce: missing argument");
    if (!c->instance_url[0])
        return err_set(e, ERR_INTERNAL, false, "cannot call salesforce: no session set");
    char *url = rest_url(c, path);
    if (!url)
        return err_set(e, ERR_NOMEM, true, "could not call salesforce: out of memory");
    struct req rq = {.method = method, .url = url, .content_type = content_type, .body = body,
                     .len = body ? len : 0, .auth = true, .api_call = true};
    bool ok = rest_request(c, &rq, out, NULL, e);
    free(url);
    return ok;
}

/* ---------- query cursor ---------- */

struct sf_query {
    struct sf_client *c;
    char *soql;
    bool all;
    int batch_size;
    bool started, done;
    char *next;
    long long total;
    struct json_object *page;  /* owned; records borrowed from it */
    struct json_object *empty; /* owned empty array for calls after done */
};

bool sf_query_open(struct sf_client *c, const char *soql, bool all, int batch_size, struct sf_query **out,
                   struct err *e)
{
    *out = NULL;
    if (!c || !soql || !*soql)
        return err_set(e, ERR_INTERNAL, false, "cannot open query: missing argument");
    struct sf_query *q = calloc(1, sizeof *q);
    if (!q || !(q->soql = strdup(soql))) {
        free(q);
        return err_set(e, ERR_NOMEM, true, "could not open query: out of memory");
    }
    q->c = c;
    q->all = all;
    q->batch_size = batch_size > 0 ? batch_size : 0;
    q->total = -1;
    *out = q;
    return true;
}

void sf_query_free(struct sf_query **qp)
{
    if (!qp || !*qp)
        return;
    struct sf_query *q = *qp;
    free(q->soql);
    free(q->next);
    if (q->page)
        json_object_put(q->page);
    if (q->empty)
        json_object_put(q->empty);
    free(q);
    *qp = NULL;
}

long long sf_query_total(const struct sf_query *q)
{
    return q ? q->total : -1;
}

bool sf_query_next(struct sf_query *q, struct json_object **records, bool *done, struct err *e)
{
    struct sf_response r = {.records = -1};
    char *path = NULL, *enc = NULL;
    char opt[64];
    bool ok = false;
    *records = NULL;
    *done = false;
    if (!q)
        return err_set(e, ERR_INTERNAL, false, "cannot read query: no cursor");
    if (q->done) {
        if (!q->empty && !(q->empty = json_object_new_array()))
            return err_set(e, ERR_NOMEM, true, "could not read query: out of memory");
        *records = q->empty;
        *done = true;
        return true;
    }
    if (!q->c->instance_url[0])
        return err_set(e, ERR_INTERNAL, false, "cannot call salesforce: no session set");
    if (!q->started) {
        enc = sf_urlencode(q->soql);
        size_t n = enc ? strlen(enc) + 16 : 0;
        path = enc ? malloc(n) : NULL;
        if (path)
            snprintf(path, n, "/%s?q=%s", q->all ? "queryAll" : "query", enc);
    } else {
        path = xstrdup(q->next);
    }
    char *url = path ? rest_url(q->c, path) : NULL;
    if (!url) {
        err_set(e, ERR_NOMEM, true, "could not read query: out of memory");
        goto out;
    }
    snprintf(opt, sizeof opt, "Sforce-Query-Options: batchSize=%d", q->batch_size);
    struct req rq = {.method = "GET", .url = url, .auth = true, .api_call = true,
                     .extra_header = q->batch_size ? opt : NULL};
    ok = rest_request(q->c, &rq, &r, NULL, e);
    free(url);
    if (!ok)
        goto out;
    ok = false;
    struct json_object *recs = r.json ? json_get(r.json, "records") : NULL;
    if (!recs || !json_object_is_type(recs, json_type_array)) {
        err_set(e, ERR_SALESFORCE, true, "could not read query page: no records array");
        goto out;
    }
    bool is_done = json_get_bool(r.json, "done", true);
    const char *next = json_get_str(r.json, "nextRecordsUrl");
    if (!is_done && (!next || strncmp(next, "/services/", 10) != 0)) {
        err_set(e, ERR_SALESFORCE, true, "could not read query page: done is false without a nextRecordsUrl");
        goto out;
    }
    char *nnext = is_done ? NULL : strdup(next);
    if (!is_done && !nnext) {
        err_set(e, ERR_NOMEM, true, "could not read query: out of memory");
        goto out;
    }
    free(q->next);
    q->next = nnext;
    q->total = json_get_int(r.json, "totalSize", q->total);
    if (q->page)
        json_object_put(q->page);
    q->page = r.json; /* take */
    r.json = NULL;
    q->started = true;
    q->done = is_done;
    *records = recs;
    *done = is_done;
    ok = true;
out:
    sf_response_cleanup(&r);
    free(enc);
    free(path);
    return ok;
}

bool sf_query_count(struct sf_client *c, const char *soql, long long *n, struct err *e)
{
    struct sf_query *q = NULL;
    struct json_object *recs;
    bool done;
    bool ok = sf_query_open(c, soql, false, 0, &q, e) && sf_query_next(q, &recs, &done, e);
    if (ok) {
        if (q->total < 0)
            ok = err_set(e, ERR_SALESFORCE, true, "could not count: no totalSize in response");
        else if (n)
            *n = q->total;
    }
    sf_query_free(&q);
    return ok;
}

/* ---------- Bulk API 2.0 query ---------- */

struct bulk_page {
    struct csv_parser *csv;
    sf_row_fn row;
    void *ud;
    struct err err;          /* first error inside the sink */
    char **names;            /* header of the first page (owned) */
    size_t nnames;
    bool header_seen;        /* in this attempt */
    long long page_delivered; /* rows of this page delivered, across attempts */
    long long skip;          /* rows to skip in this attempt (already delivered) */
    long long total;         /* rows delivered over all pages */
};

static int bulk_row(void *ud, size_t n, const char *const *fields)
{
    struct bulk_page *b = ud;
    if (!b->header_seen) {
        b->header_seen = true;
        if (!b->names) {
            b->names = calloc(n ? n : 1, sizeof *b->names);
            if (!b->names) {
                err_set(&b->err, ERR_NOMEM, true, "could not read bulk results: out of memory");
                return 1;
            }
            b->nnames = n;
            for (size_t i = 0; i < n; i++)
                if (!(b->names[i] = strdup(fields[i]))) {
                    err_set(&b->err, ERR_NOMEM, true, "could not read bulk results: out of memory");
                    return 1;
                }
        } else if (n != b->nnames) {
            err_set(&b->err, ERR_SALESFORCE, false, "cannot read bulk results: header changed between pages");
            return 1;
        }
        return 0;
    }
    if (b->skip > 0) {
        b->skip--;
        return 0;
    }
    if (n != b->nnames) {
        err_set(&b->err, ERR_SALESFORCE, false, "cannot read bulk results: row %lld has %zu fields, header has %zu",
                b->total + 1, n, b->nnames);
        return 1;
    }
    b->page_delivered++;
    b->total++;
    if (b->row(b->ud, n, (const char *const *)b->names, fields) != 0) {
        err_set(&b->err, ERR_INTERNAL, false, "bulk row callback aborted at row %lld", b->total);
        return 1;
    }
    return 0;
}

static bool bulk_sink(void *ud, const char *buf, size_t n)
{
    struct bulk_page *b = ud;
    struct err pe = ERR_INIT;
    if (csv_parser_feed(b->csv, buf, n, bulk_row, b, &pe))
        return true;
    if (!err_is_set(&b->err))
        err_set(&b->err, pe.code == ERR_INTERNAL ? ERR_INTERNAL : ERR_SALESFORCE, false, "%s", pe.msg);
    return false;
}

static void bulk_attempt(void *ud)
{
    struct bulk_page *b = ud;
    struct err ignore = ERR_INIT;
    csv_parser_finish(b->csv, NULL, NULL, &ignore); /* reset */
    b->header_seen = false;
    b->skip = b->page_delivered;
}

static bool job_id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 40)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= 'A' && id[i] <= 'Z') || (id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9')))
            return false;
    return true;
}

static bool bulk_abort(struct sf_client *c, const char *id)
{
    char path[128];
    struct sf_response r = {.records = -1};
    struct err e = ERR_INIT;
    static const char body[] = "{\"state\":\"Aborted\"}";
    snprintf(path, sizeof path, "/jobs/query/%s", id);
    bool ok = sf_call(c, "PATCH", path, NULL, body, sizeof body - 1, &r, &e);
    sf_response_cleanup(&r);
    return ok;
}

bool sf_bulk_query(struct sf_client *c, const char *soql, bool all, long max_records, sf_row_fn row, void *ud,
                   long long *rows_out, struct err *e)
{
    struct sf_response r = {.records = -1};
    struct json_object *jb = NULL;
    struct bulk_page b = {0};
    char *id = NULL, *locator = NULL, *url = NULL;
    char path[512];
    bool ok = false;

    if (rows_out)
        *rows_out = 0;
    if (!c || !soql || !row)
        return err_set(e, ERR_INTERNAL, false, "cannot run bulk query: missing argument");

    /* 1. create the job */
    jb = json_object_new_object();
    if (!jb) {
        err_set(e, ERR_NOMEM, true, "could not run bulk query: out of memory");
        goto out;
    }
    json_add_str(jb, "operation", all ? "queryAll" : "query");
    json_add_str(jb, "query", soql);
    json_add_str(jb, "contentType", "CSV");
    json_add_str(jb, "columnDelimiter", "COMMA");
    json_add_str(jb, "lineEnding", "LF");
    const char *body = json_str(jb);
    if (!sf_call(c, "POST", "/jobs/query", NULL, body, strlen(body), &r, e))
        goto out;
    const char *jid = r.json ? json_get_str(r.json, "id") : NULL;
    if (!job_id_ok(jid)) {
        err_set(e, ERR_SALESFORCE, true, "could not create bulk query job: no valid job id in response");
        goto out;
    }
    if (!(id = strdup(jid))) {
        err_set(e, ERR_NOMEM, true, "could not run bulk query: out of memory");
        goto out;
    }

    /* 2. poll until the job is done */
    long long deadline = now_ms() + c->bulk_timeout_ms;
    long wait = SF_BULK_POLL_FIRST_MS;
    long wait_cap = c->max_backoff_ms < SF_BULK_POLL_MAX_MS ? c->max_backoff_ms : SF_BULK_POLL_MAX_MS;
    snprintf(path, sizeof path, "/jobs/query/%s", id);
    for (;;) {
        const char *state = r.json ? json_get_str(r.json, "state") : NULL;
        if (state && strcmp(state, "JobComplete") == 0)
            break;
        if (state && (strcmp(state, "Failed") == 0 || strcmp(state, "Aborted") == 0)) {
            const char *em = json_get_str(r.json, "errorMessage");
            err_set(e, ERR_SALESFORCE, false, "bulk query job %s %s: %s", id,
                    strcmp(state, "Failed") == 0 ? "failed" : "was aborted", em ? em : "no error message");
            goto out;
        }
        if (now_ms() + wait > deadline) {
            bulk_abort(c, id);
            err_set(e, ERR_SALESFORCE, true, "could not finish bulk query job %s within %ld ms (state %s)", id,
                    c->bulk_timeout_ms, state ? state : "unknown");
            goto out;
        }
        if (!sleep_ms(c, wait)) {
            err_set(e, ERR_HTTP, true, "could not finish bulk query job %s: interrupted", id);
            goto out;
        }
        wait = wait * 2 > wait_cap ? wait_cap : wait * 2;
        if (!sf_call(c, "GET", path, NULL, NULL, 0, &r, e))
            goto out;
    }

    /* 3. stream the result pages */
    if (!(b.csv = csv_parser_new())) {
        err_set(e, ERR_NOMEM, true, "could not run bulk query: out of memory");
        goto out;
    }
    b.row = row;
    b.ud = ud;
    for (;;) {
        int n;
        if (locator) {
            char *enc = sf_urlencode(locator);
            if (!enc) {
                err_set(e, ERR_NOMEM, true, "could not run bulk query: out of memory");
                goto out;
            }
            if (max_records > 0)
                n = snprintf(path, sizeof path, "/jobs/query/%s/results?locator=%s&maxRecords=%ld", id, enc,
                             max_records);
            else
                n = snprintf(path, sizeof path, "/jobs/query/%s/results?locator=%s", id, enc);
            free(enc);
        } else if (max_records > 0) {
            n = snprintf(path, sizeof path, "/jobs/query/%s/results?maxRecords=%ld", id, max_records);
        } else {
            n = snprintf(path, sizeof path, "/jobs/query/%s/results", id);
        }
        if (n < 0 || (size_t)n >= sizeof path) {
            err_set(e, ERR_SALESFORCE, false, "cannot read bulk results: locator too long");
            goto out;
        }
        free(url);
        if (!(url = rest_url(c, path))) {
            err_set(e, ERR_NOMEM, true, "could not run bulk query: out of memory");
            goto out;
        }
        b.page_delivered = 0;
        struct req rq = {.method = "GET", .url = url, .accept = "text/csv", .auth = true, .api_call = true,
                         .sink = bulk_sink, .sink_ud = &b, .on_attempt = bulk_attempt};
        if (!rest_request(c, &rq, &r, &b.err, e))
            goto out;
        struct err fe = ERR_INIT;
        if (!csv_parser_finish(b.csv, bulk_row, &b, &fe)) {
            if (err_is_set(&b.err))
                err_set(e, b.err.code, b.err.retriable, "%s", b.err.msg);
            else
                err_set(e, ERR_SALESFORCE, false, "%s", fe.msg);
            goto out;
        }
        free(locator);
        locator = NULL;
        if (!r.locator || !*r.locator || strcmp(r.locator, "null") == 0)
            break;
        locator = r.locator; /* take */
        r.locator = NULL;
    }
    ok = true;
out:
    if (rows_out)
        *rows_out = b.total;
    if (b.names) {
        for (size_t i = 0; i < b.nnames; i++)
            free(b.names[i]);
        free((void *)b.names);
    }
    csv_parser_free(&b.csv);
    sf_response_cleanup(&r);
    if (jb)
        json_object_put(jb);
    free(id);
    free(locator);
    free(url);
    return ok;
}

/* ---------- OAuth ---------- */

static char *form_encode(const char *const *kv)
{
    size_t cap = 1, o = 0;
    char *out = NULL;
    for (size_t i = 0; kv && kv[i] && kv[i + 1]; i += 2)
        cap += 3 * (strlen(kv[i]) + strlen(kv[i + 1])) + 2;
    out = malloc(cap);
    if (!out)
        return NULL;
    out[0] = '\0';
    for (size_t i = 0; kv && kv[i] && kv[i + 1]; i += 2) {
        char *k = sf_urlencode(kv[i]), *v = sf_urlencode(kv[i + 1]);
        if (!k || !v) {
            free(k);
            free_secret(&v);
            free_secret(&out);
            return NULL;
        }
        o += (size_t)snprintf(out + o, cap - o, "%s%s=%s", o ? "&" : "", k, v);
        free(k);
        free_secret(&v);
    }
    return out;
}

static char *login_endpoint(const char *login_url, const char *suffix)
{
    if (!login_url || !*login_url)
        return NULL;
    size_t n = strlen(login_url);
    while (n > 0 && login_url[n - 1] == '/')
        n--;
    size_t cap = n + strlen(suffix) + 1;
    char *u = malloc(cap);
    if (u)
        snprintf(u, cap, "%.*s%s", (int)n, login_url, suffix);
    return u;
}

/* Map a failed OAuth exchange (no internal retry, see sf.h). */
static bool oauth_fail(struct sf_client *c, CURLcode rc, const struct xfer *x, const struct sf_response *r,
                       const char *what, struct err *e)
{
    char code[64], msg[200];
    if (rc != CURLE_OK) {
        const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
        if (x->too_big)
            return err_set(e, ERR_AUTH, false, "cannot read %s response: too large", what);
        if (is_tls_error(rc))
            return err_set(e, ERR_TLS, false, "cannot verify tls peer for %s: %s", what, detail);
        return err_set(e, ERR_HTTP, !is_permanent_transport(rc), "could not reach %s: %s", what, detail);
    }
    rest_error(r, code, sizeof code, msg, sizeof msg);
    if (r->status >= 500 || r->status == 429)
        return err_set_sf(e, ERR_AUTH, true, code[0] ? code : NULL, "could not complete %s: HTTP %ld%s%s", what,
                          r->status, msg[0] ? ": " : "", msg);
    return err_set_sf(e, ERR_AUTH, false, code[0] ? code : NULL, "%s", msg[0] ? msg : "token endpoint refused the request");
}

void sf_token_cleanup(struct sf_token *t)
{
    if (!t)
        return;
    free_secret(&t->access_token);
    free_secret(&t->refresh_token);
    free(t->instance_url);
    free(t->id);
    free(t->issued_at);
    free(t->signature);
    free(t->scope);
    free(t->token_type);
    memset(t, 0, sizeof *t);
}

static bool token_field(struct json_object *j, const char *key, char **dst)
{
    const char *v = json_get_str(j, key);
    if (!v)
        return true;
    *dst = strdup(v);
    return *dst != NULL;
}

bool sf_oauth_token(struct sf_client *c, const char *login_url, const char *const *kv, struct sf_token *t,
                    struct err *e)
{
    struct sf_response r = {.records = -1};
    struct xfer x;
    char *form = NULL, *url = NULL;
    bool ok = false;
    if (t)
        memset(t, 0, sizeof *t);
    if (!c || !t || !kv) {
        err_set(e, ERR_INTERNAL, false, "cannot request token: missing argument");
        goto out;
    }
    url = login_endpoint(login_url, "/services/oauth2/token");
    form = form_encode(kv);
    if (!url || !form) {
        err_set(e, url ? ERR_NOMEM : ERR_CONFIG, url != NULL, "cannot request token: %s",
                url ? "out of memory" : "no login url");
        goto out;
    }
    struct req rq = {.method = "POST", .url = url, .content_type = "application/x-www-form-urlencoded",
                     .body = form, .len = strlen(form)};
    CURLcode rc = perform(c, &rq, &r, &x);
    if (rc != CURLE_OK || r.status != 200) {
        oauth_fail(c, rc, &x, &r, "token request", e);
        goto out;
    }
    struct err je = ERR_INIT;
    r.json = json_parse(r.body, r.len, &je);
    if (!r.json || !json_object_is_type(r.json, json_type_object)) {
        err_set(e, ERR_AUTH, true, "could not parse token response: %s", je.msg[0] ? je.msg : "not an object");
        goto out;
    }
    if (!token_field(r.json, "access_token", &t->access_token) ||
        !token_field(r.json, "refresh_token", &t->refresh_token) ||
        !token_field(r.json, "instance_url", &t->instance_url) || !token_field(r.json, "id", &t->id) ||
        !token_field(r.json, "issued_at", &t->issued_at) || !token_field(r.json, "signature", &t->signature) ||
        !token_field(r.json, "scope", &t->scope) || !token_field(r.json, "token_type", &t->token_type)) {
        err_set(e, ERR_NOMEM, true, "could not read token response: out of memory");
        goto out;
    }
    if (!t->access_token || !t->access_token[0] || !t->instance_url || !t->instance_url[0]) {
        err_set(e, ERR_AUTH, false, "cannot use token response: access_token or instance_url missing");
        goto out;
    }
    ok = true;
out:
    if (!ok)
        sf_token_cleanup(t);
    /* the body holds tokens */
    if (r.body)
        memset(r.body, 0, r.len);
    sf_response_cleanup(&r);
    free_secret(&form);
    free(url);
    return ok;
}

bool sf_oauth_revoke(struct sf_client *c, const char *login_url, const char *token, struct err *e)
{
    struct sf_response r = {.records = -1};
    struct xfer x;
    char *form = NULL, *url = NULL;
    bool ok = false;
    const char *kv[] = {"token", token, NULL};
    if (!c || !token || !*token) {
        err_set(e, ERR_INTERNAL, false, "cannot revoke token: missing argument");
        goto out;
    }
    url = login_endpoint(login_url, "/services/oauth2/revoke");
    form = form_encode(kv);
    if (!url || !form) {
        err_set(e, url ? ERR_NOMEM : ERR_CONFIG, url != NULL, "cannot revoke token: %s",
                url ? "out of memory" : "no login url");
        goto out;
    }
    struct req rq = {.method = "POST", .url = url, .content_type = "application/x-www-form-urlencoded",
                     .body = form, .len = strlen(form), .follow = true};
    CURLcode rc = perform(c, &rq, &r, &x);
    if (rc != CURLE_OK || r.status != 200) {
        oauth_fail(c, rc, &x, &r, "token revocation", e);
        goto out;
    }
    ok = true;
out:
    sf_response_cleanup(&r);
    free_secret(&form);
    free(url);
    return ok;
}

bool sf_token_verify(const struct sf_token *t, const char *client_secret, struct err *e)
{
    char expect[64];
    if (!t || !t->id || !t->issued_at || !t->signature || !client_secret)
        return err_set(e, ERR_SIGNATURE, false, "cannot verify token response: id, issued_at or signature missing");
    size_t n = strlen(t->id) + strlen(t->issued_at) + 1;
    char *msg = malloc(n);
    if (!msg)
        return err_set(e, ERR_NOMEM, true, "could not verify token response: out of memory");
    snprintf(msg, n, "%s%s", t->id, t->issued_at);
    crypto_hmac_sha256_b64(client_secret, msg, expect, sizeof expect);
    free(msg);
    bool ok = expect[0] && crypto_equal(expect, t->signature);
    memset(expect, 0, sizeof expect);
    if (!ok)
        return err_set(e, ERR_SIGNATURE, false, "cannot accept token response: signature does not match");
    return true;
}
