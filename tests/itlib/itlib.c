/* itlib: see itlib.h. */
#include "itlib.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "json.h"
#include "kafka.h"
#include "pg.h"

static const char *need_env(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v && *v, "integration test needs %s: run it through `make test` (tests/run starts the rig)", name);
    return v;
}

void it_uuid(char out[37]) { json_uuid4(out, 37); }

void it_env_init(struct it_env *env)
{
    memset(env, 0, sizeof *env);
    const char *base = need_env("SFBRIDGE_PG_DSN");
    snprintf(env->brokers, sizeof env->brokers, "%s", need_env("SFBRIDGE_KAFKA_BROKERS"));
    snprintf(env->bindir, sizeof env->bindir, "%s", getenv("SFBRIDGE_BIN_DIR") ? getenv("SFBRIDGE_BIN_DIR") : "build/bin");
    char id[37];
    it_uuid(id);
    char tag[16];
    memcpy(tag, id, 8);
    tag[8] = '\0';
    snprintf(env->prefix, sizeof env->prefix, "it-%s-", tag);
    snprintf(env->group, sizeof env->group, "it-%s", tag);

    struct err e = ERR_INIT;
    struct pg *db = pg_open(base, 5000, &e);
    cr_assert(db, "cannot reach the rig's PostgreSQL: %s", e.msg);
    char sql[200];
    snprintf(sql, sizeof sql, "CREATE DATABASE \"it_%s\" TEMPLATE sfbridge", tag);
    bool ok = false;
    for (int i = 0; i < 50 && !ok; i++) { /* the template may be busy for a moment */
        err_clear(&e);
        ok = pg_run(db, sql, 0, NULL, &e);
        if (!ok)
            usleep(100000);
    }
    cr_assert(ok, "could not create test database: %s", e.msg);
    pg_close(&db);
    /* same server, other database */
    const char *slash = strrchr(base, '/');
    cr_assert(slash, "SFBRIDGE_PG_DSN must be a URI");
    snprintf(env->dsn, sizeof env->dsn, "%.*s/it_%s", (int)(slash - base), base, tag);

    struct cfg c;
    memset(&c, 0, sizeof c);
    c.topic_prefix = env->prefix;
    char names[16][256];
    const char *list[17];
    int n = 0;
    for (int i = 0; cfg_input_topics[i]; i++) {
        cfg_topic(&c, cfg_input_topics[i], names[n], sizeof names[n]);
        list[n] = names[n];
        n++;
        snprintf(names[n], sizeof names[n], "%s%s.dlq", env->prefix, cfg_input_topics[i]);
        list[n] = names[n];
        n++;
    }
    for (int i = 0; cfg_output_topics[i]; i++) {
        cfg_topic(&c, cfg_output_topics[i], names[n], sizeof names[n]);
        list[n] = names[n];
        n++;
    }
    list[n] = NULL;
    err_clear(&e);
    cr_assert(kafka_create_topics(env->brokers, list, 4, 20000, &e), "cannot create test topics: %s", e.msg);
}

static struct pg *open_db(const struct it_env *env)
{
    struct err e = ERR_INIT;
    struct pg *db = pg_open(env->dsn, 5000, &e);
    cr_assert(db, "cannot open test database: %s", e.msg);
    return db;
}

char *it_sql(const struct it_env *env, const char *sql)
{
    struct err e = ERR_INIT;
    struct pg *db = open_db(env);
    struct pg_res *r = pg_exec(db, sql, 0, NULL, &e);
    cr_assert(r, "SQL failed: %s: %s", sql, e.msg);
    char *out = NULL;
    if (pg_res_rows(r) > 0 && pg_res_cols(r) > 0 && pg_res_get(r, 0, 0))
        out = strdup(pg_res_get(r, 0, 0));
    pg_res_free(&r);
    pg_close(&db);
    return out;
}

long long it_sql_long(const struct it_env *env, const char *sql)
{
    char *s = it_sql(env, sql);
    long long v = s ? strtoll(s, NULL, 10) : -1;
    free(s);
    return v;
}

void it_sql_ok(const struct it_env *env, const char *sql)
{
    struct err e = ERR_INIT;
    struct pg *db = open_db(env);
    bool ok = pg_run_script(db, sql, &e);
    pg_close(&db);
    cr_assert(ok, "SQL failed: %s: %s", sql, e.msg);
}

pid_t it_spawn(const struct it_env *env, const char *bin, const char *const *extra, const char *label)
{
    char path[700], logdir[] = "build/test-logs", logpath[800];
    snprintf(path, sizeof path, "%s/%s", env->bindir, bin);
    mkdir("build", 0755);
    mkdir(logdir, 0755);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork failed");
    if (pid == 0) {
        snprintf(logpath, sizeof logpath, "%s/%s-%d.log", logdir, label ? label : bin, (int)getpid());
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        setenv("SFBRIDGE_PG_DSN", env->dsn, 1);
        setenv("SFBRIDGE_KAFKA_BROKERS", env->brokers, 1);
        setenv("SFBRIDGE_TOPIC_PREFIX", env->prefix, 1);
        /* one consumer group per worker kind, as in production: kinds never rebalance each other */
        char group[160];
        snprintf(group, sizeof group, "%s-%s", env->group, bin);
        setenv("SFBRIDGE_GROUP_ID", group, 1);
        setenv("SFBRIDGE_MAX_BACKOFF_MS", "2000", 0);
        setenv("SFBRIDGE_DEFER_SECONDS", "3", 0);
        for (int i = 0; extra && extra[i]; i++) {
            char kv[1024];
            snprintf(kv, sizeof kv, "%s", extra[i]);
            char *eq = strchr(kv, '=');
            if (!eq)
                continue;
            *eq = '\0';
            setenv(kv, eq + 1, 1);
        }
        execl(path, bin, (char *)NULL);
        fprintf(stderr, "could not exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    return pid;
}

int it_wait(pid_t pid, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(20000);
    }
    return -1;
}

int it_stop(pid_t pid, int timeout_ms)
{
    kill(pid, SIGTERM);
    int rc = it_wait(pid, timeout_ms);
    if (rc == -1) {
        kill(pid, SIGKILL);
        it_wait(pid, 5000);
    }
    return rc;
}

void it_kill9(pid_t pid)
{
    kill(pid, SIGKILL);
    it_wait(pid, 5000);
}

void it_produce(const struct it_env *env, const char *topic, const char *key, const char *payload, size_t len)
{
    struct err e = ERR_INIT;
    char t[256];
    snprintf(t, sizeof t, "%s%s", env->prefix, topic);
    struct kafka_producer *p = kafka_producer_new(env->brokers, "it-producer", &e);
    cr_assert(p, "producer: %s", e.msg);
    cr_assert(kafka_produce(p, t, key, payload, len, NULL, 0, 20000, &e), "produce to %s: %s", t, e.msg);
    kafka_producer_free(&p);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int it_consume(const struct it_env *env, const char *topic, int want, int timeout_ms, int settle_ms,
               struct it_msgs *out)
{
    struct err e = ERR_INIT;
    char t[256], group[128], id[37];
    snprintf(t, sizeof t, "%s%s", env->prefix, topic);
    it_uuid(id);
    snprintf(group, sizeof group, "it-reader-%s", id);
    const char *topics[2] = {t, NULL};
    struct kafka_consumer *c = kafka_consumer_new(env->brokers, group, topics, "it-reader", &e);
    cr_assert(c, "consumer: %s", e.msg);
    memset(out, 0, sizeof *out);
    long long start = mono_ms(), last = 0;
    while (mono_ms() - start < timeout_ms) {
        if (out->n >= want && (settle_ms == 0 || mono_ms() - last >= settle_ms))
            break;
        struct kafka_msg m;
        int got = kafka_consumer_poll(c, 100, &m, &e);
        if (got != 1)
            continue;
        out->m = realloc(out->m, sizeof *out->m * (size_t)(out->n + 1));
        struct it_msg *im = &out->m[out->n++];
        memset(im, 0, sizeof *im);
        im->payload = malloc(m.len + 1);
        memcpy(im->payload, m.payload, m.len);
        im->payload[m.len] = '\0';
        im->len = m.len;
        char buf[512];
        if (kafka_msg_header(&m, "x-error-code", buf, sizeof buf))
            im->error_code = strdup(buf);
        if (kafka_msg_header(&m, "x-error", buf, sizeof buf))
            im->error = strdup(buf);
        kafka_msg_release(&m);
        last = mono_ms();
    }
    kafka_consumer_close(&c);
    return out->n;
}

void it_msgs_free(struct it_msgs *m)
{
    for (int i = 0; i < m->n; i++) {
        free(m->m[i].payload);
        free(m->m[i].error_code);
        free(m->m[i].error);
    }
    free(m->m);
    memset(m, 0, sizeof *m);
}

int it_msgs_count(const struct it_msgs *m, const char *needle)
{
    int n = 0;
    for (int i = 0; i < m->n; i++)
        if (strstr(m->m[i].payload, needle))
            n++;
    return n;
}

char *it_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

void it_sfsim_start(const struct it_env *env, struct it_sfsim *s, const char *const *args)
{
    char path[700], ready[128], id[37];
    snprintf(path, sizeof path, "%s/sfsim", env->bindir);
    it_uuid(id);
    snprintf(ready, sizeof ready, "/tmp/sfsim-ready-%.8s", id);
    unlink(ready);
    mkdir("build", 0755);
    mkdir("build/test-logs", 0755);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        char logpath[200];
        snprintf(logpath, sizeof logpath, "build/test-logs/sfsim-%d.log", (int)getpid());
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        const char *argv[64];
        int n = 0;
        argv[n++] = "sfsim";
        argv[n++] = "--ready-file";
        argv[n++] = ready;
        for (int i = 0; args && args[i] && n < 62; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        execv(path, (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    s->pid = pid;
    char *url = NULL;
    for (int i = 0; i < 600 && !url; i++) {
        url = it_read_file(ready);
        if (url && !*url) {
            free(url);
            url = NULL;
        }
        if (!url)
            usleep(50000);
    }
    cr_assert(url, "the Salesforce emulator %s did not start within 30 s", path);
    url[strcspn(url, "\r\n")] = '\0';
    snprintf(s->url, sizeof s->url, "%s", url);
    free(url);
    unlink(ready);
}

void it_sfsim_stop(struct it_sfsim *s)
{
    if (s->pid > 0)
        it_stop(s->pid, 10000);
    s->pid = 0;
}

struct body {
    char *d;
    size_t n;
};

static size_t on_data(char *p, size_t sz, size_t nm, void *ud)
{
    struct body *b = ud;
    size_t n = sz * nm;
    b->d = realloc(b->d, b->n + n + 1);
    memcpy(b->d + b->n, p, n);
    b->n += n;
    b->d[b->n] = '\0';
    return n;
}

char *it_http(const char *method, const char *url, const char *body, long *status)
{
    CURL *c = curl_easy_init();
    struct body b = {calloc(1, 1), 0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(c);
    long st = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    cr_assert(rc == CURLE_OK, "HTTP %s %s failed: %s", method, url, curl_easy_strerror(rc));
    if (status)
        *status = st;
    return b.d;
}
