/*
 * metrics: see metrics.h. A fixed-size table guarded by one mutex; the HTTP
 * thread renders it on each scrape.
 */
#include "metrics.h"

#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define METRICS_MAX 256
#define NBUCKETS 12

enum kind { K_COUNTER, K_GAUGE, K_HIST };

struct series {
    enum kind kind;
    char name[96];
    char lname[32]; /* label name; "" = chosen from the metric name */
    char label[96];
    double value;
    double sum;
    unsigned long long count;
    unsigned long long buckets[NBUCKETS];
};

static const double bucket_le[NBUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct series table[METRICS_MAX];
static int nseries;
static struct MHD_Daemon *daemon_h;
static volatile int ready_flag;
static const char *proc_name = "sfbridge";

static struct series *find(enum kind k, const char *name, const char *lname, const char *label)
{
    if (!label)
        label = "";
    if (!lname)
        lname = "";
    for (int i = 0; i < nseries; i++)
        if (table[i].kind == k && !strcmp(table[i].name, name) && !strcmp(table[i].label, label) &&
            !strcmp(table[i].lname, lname))
            return &table[i];
    if (nseries == METRICS_MAX)
        return NULL;
    struct series *s = &table[nseries++];
    memset(s, 0, sizeof *s);
    s->kind = k;
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->lname, sizeof s->lname, "%s", lname);
    snprintf(s->label, sizeof s->label, "%s", label);
    return s;
}

void metrics_count_l(const char *name, const char *label_name, const char *label, double n)
{
    pthread_mutex_lock(&mu);
    struct series *s = find(K_COUNTER, name, label_name, label);
    if (s)
        s->value += n;
    pthread_mutex_unlock(&mu);
}

void metrics_gauge_l(const char *name, const char *label_name, const char *label, double value)
{
    pthread_mutex_lock(&mu);
    struct series *s = find(K_GAUGE, name, label_name, label);
    if (s)
        s->value = value;
    pthread_mutex_unlock(&mu);
}

void metrics_observe_ms_l(const char *name, const char *label_name, const char *label, long long ms)
{
    double sec = (double)ms / 1000.0;
    pthread_mutex_lock(&mu);
    struct series *s = find(K_HIST, name, label_name, label);
    if (s) {
        s->sum += sec;
        s->count++;
        for (int b = 0; b < NBUCKETS; b++)
            if (sec <= bucket_le[b])
                s->buckets[b]++;
    }
    pthread_mutex_unlock(&mu);
}

void metrics_count(const char *name, const char *label, double n) { metrics_count_l(name, NULL, label, n); }

void metrics_gauge(const char *name, const char *label, double value) { metrics_gauge_l(name, NULL, label, value); }

void metrics_observe_ms(const char *name, const char *label, long long ms)
{
    metrics_observe_ms_l(name, NULL, label, ms);
}

double metrics_value(const char *name, const char *label)
{
    double v = 0;
    if (!label)
        label = "";
    pthread_mutex_lock(&mu);
    for (int i = 0; i < nseries; i++)
        if (!strcmp(table[i].name, name) && !strcmp(table[i].label, label)) {
            v = table[i].kind == K_HIST ? (double)table[i].count : table[i].value;
            break;
        }
    pthread_mutex_unlock(&mu);
    return v;
}

static const char *label_name(const char *metric)
{
    if (strstr(metric, "_by_code"))
        return "code";
    if (strstr(metric, "org"))
        return "org";
    return "topic";
}

struct sbuf {
    char *d;
    size_t len, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->d + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n + 1;
        char *d = realloc(b->d, cap);
        if (!d)
            return;
        b->d = d;
        b->cap = cap;
    }
}

/* label value escaped as the text format wants: \\, \" and \n */
static void sb_label(struct sbuf *b, const char *v)
{
    char esc[200];
    size_t o = 0;
    for (; *v && o + 3 < sizeof esc; v++) {
        if (*v == '\\' || *v == '"') {
            esc[o++] = '\\';
            esc[o++] = *v;
        } else if (*v == '\n') {
            esc[o++] = '\\';
            esc[o++] = 'n';
        } else {
            esc[o++] = *v;
        }
    }
    esc[o] = '\0';
    sb_printf(b, "%s", esc);
}

char *metrics_render(void)
{
    struct sbuf b = {malloc(8192), 0, 8192};
    if (!b.d)
        return NULL;
    b.d[0] = '\0';
    pthread_mutex_lock(&mu);
    /* one family at a time (the text format wants a family's lines together), in order of first use */
    for (int f = 0; f < nseries; f++) {
        bool first = true;
        for (int j = 0; j < f; j++)
            if (!strcmp(table[j].name, table[f].name))
                first = false;
        if (!first)
            continue;
        sb_printf(&b, "# TYPE %s %s\n", table[f].name,
                  table[f].kind == K_COUNTER ? "counter" : table[f].kind == K_GAUGE ? "gauge" : "histogram");
        for (int i = f; i < nseries; i++) {
            struct series *s = &table[i];
            if (strcmp(s->name, table[f].name) != 0 || s->kind != table[f].kind)
                continue;
            const char *ln = s->lname[0] ? s->lname : label_name(s->name);
            if (s->kind == K_HIST) {
                for (int k = 0; k < NBUCKETS; k++) {
                    sb_printf(&b, "%s_bucket{%s=\"", s->name, ln);
                    sb_label(&b, s->label);
                    sb_printf(&b, "\",le=\"%g\"} %llu\n", bucket_le[k], s->buckets[k]);
                }
                sb_printf(&b, "%s_bucket{%s=\"", s->name, ln);
                sb_label(&b, s->label);
                sb_printf(&b, "\",le=\"+Inf\"} %llu\n", s->count);
                sb_printf(&b, "%s_sum{%s=\"", s->name, ln);
                sb_label(&b, s->label);
                sb_printf(&b, "\"} %.6f\n", s->sum);
                sb_printf(&b, "%s_count{%s=\"", s->name, ln);
                sb_label(&b, s->label);
                sb_printf(&b, "\"} %llu\n", s->count);
            } else if (s->label[0]) {
                sb_printf(&b, "%s{%s=\"", s->name, ln);
                sb_label(&b, s->label);
                sb_printf(&b, "\"} %.17g\n", s->value);
            } else {
                sb_printf(&b, "%s %.17g\n", s->name, s->value);
            }
        }
    }
    pthread_mutex_unlock(&mu);
    sb_printf(&b, "# TYPE sfbridge_up gauge\nsfbridge_up{proc=\"%s\"} 1\n", proc_name);
    return b.d;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_data_size,
                               void **con_cls)
{
    (void)cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    struct MHD_Response *resp;
    unsigned int status = MHD_HTTP_OK;
    if (strcmp(method, "GET") != 0) {
        resp = MHD_create_response_from_buffer(0, (void *)(uintptr_t) "", MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
    } else if (!strcmp(url, "/metrics")) {
        char *text = metrics_render();
        resp = MHD_create_response_from_buffer(text ? strlen(text) : 0, text ? text : (void *)(uintptr_t) "",
                                               text ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
    } else if (!strcmp(url, "/healthz")) {
        resp = MHD_create_response_from_buffer(3, (void *)(uintptr_t) "ok\n", MHD_RESPMEM_PERSISTENT);
    } else if (!strcmp(url, "/readyz")) {
        status = ready_flag ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
        const char *t = ready_flag ? "ready\n" : "not ready\n";
        resp = MHD_create_response_from_buffer(strlen(t), (void *)(uintptr_t)t, MHD_RESPMEM_PERSISTENT);
    } else {
        status = MHD_HTTP_NOT_FOUND;
        resp = MHD_create_response_from_buffer(10, (void *)(uintptr_t) "not found\n", MHD_RESPMEM_PERSISTENT);
    }
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

bool metrics_start(const char *addr, const char *proc)
{
    if (proc)
        proc_name = proc;
    if (!addr || !*addr)
        return true;
    const char *colon = strrchr(addr, ':');
    if (!colon)
        return false;
    char host[64];
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof host)
        return false;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    long port = strtol(colon + 1, NULL, 10);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, hl ? host : "0.0.0.0", &sin.sin_addr) != 1) {
        log_error("could not serve metrics: bad address \"%s\"", addr);
        return false;
    }
    daemon_h = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL,
                                handler, NULL, MHD_OPTION_SOCK_ADDR, &sin, MHD_OPTION_END);
    if (!daemon_h) {
        log_error("could not serve metrics on %s", addr);
        return false;
    }
    log_info("serving /metrics, /healthz and /readyz on %s", addr);
    return true;
}

void metrics_stop(void)
{
    if (daemon_h) {
        MHD_stop_daemon(daemon_h);
        daemon_h = NULL;
    }
}

void metrics_set_ready(bool ready) { ready_flag = ready; }
