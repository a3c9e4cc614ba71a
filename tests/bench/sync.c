/*
 * bench-sync: a full sync of BENCH_N Accounts (default 1,000,000; 20 fields) from the
 * emulator into PostgreSQL by the real sfbridge-sync worker, next to PostgreSQL COPY of
 * the same rows into the same table in the same run. Prints JSON lines:
 *   {"name":"sync.records_per_s",...,"baseline":"copy.records_per_s","baseline_value":..,"ratio":..}
 *   {"name":"sync.api_calls",...} {"name":"sync.peak_rss_mb",...} {"name":"copy.records_per_s",...}
 * Needs a rig: SFBRIDGE_PG_DSN (a migrated database "sfbridge", used as a template),
 * SFBRIDGE_KAFKA_BROKERS; binaries from SFBRIDGE_BIN_DIR (default build/bin). Everything it
 * creates (database, topics) is private to the run. Progress goes to stderr.
 */
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "json.h"
#include "kafka.h"
#include "pg.h"

#define TOKEN_KEY "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench-sync: %s: %s\n", what, why ? why : "");
    exit(1);
}

struct membuf {
    char *p;
    size_t n;
};
static size_t on_body(char *d, size_t s, size_t n, void *ud)
{
    struct membuf *b = ud;
    char *np = realloc(b->p, b->n + s * n + 1);
    if (!np)
        return 0;
    b->p = np;
    memcpy(b->p + b->n, d, s * n);
    b->n += s * n;
    b->p[b->n] = '\0';
    return s * n;
}

static char *http_get(const char *url)
{
    struct membuf b = {0};
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK)
        die("http", curl_easy_strerror(rc));
    return b.p;
}

static long vm_hwm_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6))
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

static void sql(struct pg *db, const char *q)
{
    struct err e = ERR_INIT;
    if (!pg_run(db, q, 0, NULL, &e))
        die(q, e.msg);
}

static const char *const fields[][3] = {
    /* sf field, platform field, transform: 17 mapped + Id, SystemModstamp, IsDeleted = 20 */
    {"Name", "name", "trim"},
    {"Type", "type", NULL},
    {"Industry", "industry", NULL},
    {"Phone", "phone", NULL},
    {"Website", "website", NULL},
    {"BillingCity", "billing_city", NULL},
    {"BillingCountry", "billing_country", NULL},
    {"AnnualRevenue", "annual_revenue", "number"},
    {"NumberOfEmployees", "employees", "integer"},
    {"OwnerId", "owner_id", NULL},
    {"Tier__c", "tier", NULL},
    {"AccountSource", "source", NULL},
    {"BillingState", "billing_state", NULL},
    {"BillingStreet", "billing_street", NULL},
    {"BillingPostalCode", "billing_postal_code", NULL},
    {"ShippingCity", "shipping_city", NULL},
    {"Platform_Id__c", "platform_id", NULL},
};

int main(void)
{
    const char *dsn = getenv("SFBRIDGE_PG_DSN"), *brokers = getenv("SFBRIDGE_KAFKA_BROKERS");
    const char *bindir = getenv("SFBRIDGE_BIN_DIR") ? getenv("SFBRIDGE_BIN_DIR") : "build/bin";
    long n = getenv("BENCH_N") ? strtol(getenv("BENCH_N"), NULL, 10) : 1000000;
    if (!dsn || !brokers)
        die("configuration", "needs SFBRIDGE_PG_DSN and SFBRIDGE_KAFKA_BROKERS (a running rig)");
    if (n < 1)
        n = 1000000;
    struct err e = ERR_INIT;
    char tag[16], dbname[64], url[1024], buf[4096];
    snprintf(tag, sizeof tag, "%d", (int)getpid());
    snprintf(dbname, sizeof dbname, "bench_sync_%s", tag);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    /* emulator */
    char ready[128], nstr[24];
    snprintf(ready, sizeof ready, "/tmp/bench-sync-%s.url", tag);
    snprintf(nstr, sizeof nstr, "%ld", n);
    unlink(ready);
    pid_t sim = fork();
    if (sim == 0) {
        char bin[600];
        snprintf(bin, sizeof bin, "%s/sfsim", bindir);
        execl(bin, bin, "--seed-accounts", nstr, "--quiet", "--ready-file", ready, "--bulk-delay-ms", "50",
              (char *)NULL);
        _exit(127);
    }
    char base[128] = "";
    for (int i = 0; i < 1200 && !base[0]; i++) {
        FILE *f = fopen(ready, "r");
        if (f) {
            if (fgets(base, sizeof base, f))
                base[strcspn(base, "\r\n")] = '\0';
            fclose(f);
        }
        if (!base[0])
            usleep(100000);
    }
    if (!base[0])
        die("emulator", "did not start");
    fprintf(stderr, "bench-sync: emulator at %s with %ld Accounts\n", base, n);

    /* database */
    struct pg *admin = pg_open(dsn, 10000, &e);
    if (!admin)
        die("postgres", e.msg);
    snprintf(buf, sizeof buf, "CREATE DATABASE %s TEMPLATE sfbridge", dbname);
    sql(admin, buf);
    char bdsn[600];
    const char *slash = strrchr(dsn, '/');
    snprintf(bdsn, sizeof bdsn, "%.*s/%s", (int)(slash - dsn), dsn, dbname);
    struct pg *db = pg_open(bdsn, 10000, &e);
    if (!db)
        die("postgres", e.msg);

    /* org, connection with the emulator's token, mapping */
    snprintf(url, sizeof url, "%s/__sim/token", base);
    char *tok = http_get(url);
    struct json_object *tj = json_parse(tok, strlen(tok), &e);
    const char *access = tj ? json_get_str(tj, "access_token") : NULL;
    if (!access || !strchr(access, '!'))
        die("token", tok);
    unsigned char key[32];
    if (!crypto_key_from_b64(TOKEN_KEY, key, &e))
        die("token key", e.msg);
    char *sealed = crypto_seal(key, "k1", access, &e);
    char conn[40], sforg[24];
    json_uuid4(conn, sizeof conn);
    snprintf(sforg, sizeof sforg, "%.*s", (int)(strchr(access, '!') - access), access);
    sql(db, "INSERT INTO organizations (org_id, salesforce_enabled) VALUES ('bench', true)");
    const char *cp[4] = {conn, base, sforg, sealed};
    if (!pg_run(db,
                "INSERT INTO connections (connection_id, org_id, user_id, status, instance_url, sf_org_id, "
                "access_token_enc, token_key_id) VALUES ($1, 'bench', 'bench', 'connected', $2, $3, $4, 'k1')",
                4, cp, &e))
        die("connection", e.msg);
    free(sealed);
    json_object_put(tj);
    free(tok);
    sql(db, "INSERT INTO object_mappings (org_id, sf_object, platform_object) VALUES ('bench', 'Account', 'Company')");
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *fp[3] = {fields[i][0], fields[i][1], fields[i][2]};
        if (!pg_run(db,
                    "INSERT INTO field_mappings (org_id, sf_object, sf_field, platform_field, direction, transform) "
                    "VALUES ('bench', 'Account', $1, $2, 'import', $3)",
                    3, fp, &e))
            die("mapping", e.msg);
    }

    /* topics */
    char prefix[64], t_req[128], t_done[128];
    snprintf(prefix, sizeof prefix, "bench-%s-", tag);
    const char *logical[] = {"sync.requested", "sync.requested.dlq", "sync.completed", "sync.progress",
                             "connection.status"};
    char phys[5][128];
    const char *list[6];
    for (int i = 0; i < 5; i++) {
        snprintf(phys[i], sizeof phys[i], "%s%s", prefix, logical[i]);
        list[i] = phys[i];
    }
    list[5] = NULL;
    if (!kafka_create_topics(brokers, list, 1, 30000, &e))
        die("topics", e.msg);
    snprintf(t_req, sizeof t_req, "%ssync.requested", prefix);
    snprintf(t_done, sizeof t_done, "%ssync.completed", prefix);

    /* the worker */
    pid_t w = fork();
    if (w == 0) {
        char bin[600];
        snprintf(bin, sizeof bin, "%s/sfbridge-sync", bindir);
        setenv("SFBRIDGE_PG_DSN", bdsn, 1);
        setenv("SFBRIDGE_TOPIC_PREFIX", prefix, 1);
        setenv("SFBRIDGE_GROUP_ID", prefix, 1);
        setenv("SFBRIDGE_TOKEN_KEY", TOKEN_KEY, 1);
        setenv("SF_LOGIN_URL", base, 1);
        setenv("SFBRIDGE_LOG_LEVEL", "warn", 0);
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    struct kafka_producer *kp = kafka_producer_new(brokers, "bench-sync", &e);
    const char *topics[2] = {t_done, NULL};
    char group[96];
    snprintf(group, sizeof group, "%sreader", prefix);
    struct kafka_consumer *kc = kafka_consumer_new(brokers, group, topics, "bench-sync", &e);
    if (!kp || !kc)
        die("kafka", e.msg);
    char mid[40], ts[40];
    json_uuid4(mid, sizeof mid);
    json_now_rfc3339(ts, sizeof ts);
    int len = snprintf(buf, sizeof buf,
                       "{\"message_id\":\"%s\",\"org_id\":\"bench\",\"connection_id\":\"%s\",\"created_at\":\"%s\","
                       "\"mode\":\"full\",\"objects\":[\"Account\"],\"requested_by\":\"bench\"}",
                       mid, conn, ts);
    double t0 = now_s();
    if (!kafka_produce(kp, t_req, conn, buf, (size_t)len, NULL, 0, 30000, &e))
        die("produce", e.msg);
    struct json_object *done = NULL;
    long hwm = 0;
    while (!done) {
        struct kafka_msg m;
        int got = kafka_consumer_poll(kc, 500, &m, &e);
        long h = vm_hwm_kb(w);
        if (h > hwm)
            hwm = h;
        if (got < 0)
            die("consume", e.msg);
        if (got == 0) {
            int st;
            if (waitpid(w, &st, WNOHANG) == w)
                die("worker", "exited before completing");
            if (now_s() - t0 > 3600)
                die("sync", "no completion within an hour");
            continue;
        }
        if (strstr(m.payload, mid))
            done = json_parse(m.payload, m.len, &e);
        kafka_msg_release(&m);
    }
    double wall_s = now_s() - t0;
    /* the worker's own measure (from picking the request up to its completion): excludes the
     * consumer-group join of a freshly started process */
    double sync_s = (double)json_get_int(done, "duration_ms", (int64_t)(wall_s * 1000)) / 1000.0;
    if (sync_s <= 0)
        sync_s = wall_s;
    long h = vm_hwm_kb(w);
    if (h > hwm)
        hwm = h;
    kill(w, SIGTERM);
    waitpid(w, NULL, 0);
    const char *status = json_get_str(done, "status");
    long long calls = json_get_int(done, "api_calls", -1);
    long long fetched = json_get_int(json_get(json_get(done, "objects"), "Account"), "fetched", -1);
    fprintf(stderr, "bench-sync: sync %s in %.2f s (%.2f s wall incl. worker start), %lld records, %lld api calls, worker VmHWM %ld kB\n",
            status ? status : "?", sync_s, wall_s, fetched, calls, hwm);
    if (!status || strcmp(status, "succeeded") || fetched != n)
        die("sync", json_object_to_json_string(done));

    /* baseline: COPY the same rows into the same table (dumped to a file first, then timed) */
    char dump[128];
    snprintf(dump, sizeof dump, "/tmp/bench-sync-%s.copy", tag);
    FILE *df = fopen(dump, "w");
    if (!df)
        die("dump", strerror(errno));
    char last[40] = "";
    for (;;) {
        const char *p[1] = {last};
        struct pg_res *r = pg_exec(db,
                                   "SELECT org_id, connection_id, salesforce_id, name, type, industry, phone, website, "
                                   "billing_city, billing_country, annual_revenue, employees, owner_id, attributes, "
                                   "sf_modstamp, synced_at FROM companies WHERE salesforce_id > $1 "
                                   "ORDER BY salesforce_id LIMIT 50000",
                                   1, p, &e);
        if (!r)
            die("dump", e.msg);
        int rows = pg_res_rows(r);
        struct pg_buf b = {0};
        for (int i = 0; i < rows; i++) {
            for (int c = 0; c < 16; c++) {
                if (c)
                    pg_buf_append(&b, "\t", 1);
                pg_buf_copy_field(&b, pg_res_get(r, i, c));
            }
            pg_buf_append(&b, "\n", 1);
        }
        if (rows)
            snprintf(last, sizeof last, "%s", pg_res_get(r, rows - 1, 2));
        if (b.len)
            fwrite(b.data, 1, b.len, df);
        pg_buf_free(&b);
        pg_res_free(&r);
        if (rows < 50000)
            break;
    }
    fclose(df);
    sql(db, "TRUNCATE companies CASCADE");
    sql(db, "CHECKPOINT");
    df = fopen(dump, "r");
    double c0 = now_s();
    if (!pg_copy_start(db,
                       "COPY companies (org_id, connection_id, salesforce_id, name, type, industry, phone, website, "
                       "billing_city, billing_country, annual_revenue, employees, owner_id, attributes, sf_modstamp, "
                       "synced_at) FROM STDIN",
                       &e))
        die("copy", e.msg);
    static char chunk[1 << 20];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, df)) > 0)
        if (!pg_copy_put(db, chunk, got, &e))
            die("copy", e.msg);
    if (!pg_copy_end(db, &e))
        die("copy", e.msg);
    double copy_s = now_s() - c0;
    fclose(df);
    unlink(dump);

    double sync_rps = (double)n / sync_s, copy_rps = (double)n / copy_s;
    printf("{\"name\":\"sync.records_per_s\",\"value\":%.0f,\"unit\":\"records/s\",\"baseline\":\"copy.records_per_s\","
           "\"baseline_value\":%.0f,\"ratio\":%.3f,\"n\":%ld}\n",
           sync_rps, copy_rps, sync_rps / copy_rps, n);
    printf("{\"name\":\"sync.api_calls\",\"value\":%lld,\"unit\":\"calls\",\"baseline\":\"rest.pages\","
           "\"baseline_value\":%ld,\"ratio\":%.3f,\"n\":%ld}\n",
           calls, (n + 1999) / 2000, (double)calls / (double)((n + 1999) / 2000), n);
    printf("{\"name\":\"sync.peak_rss_mb\",\"value\":%.1f,\"unit\":\"MB\",\"n\":%ld}\n", (double)hwm / 1024.0, n);
    printf("{\"name\":\"copy.records_per_s\",\"value\":%.0f,\"unit\":\"records/s\",\"n\":%ld}\n", copy_rps, n);
    fflush(stdout);

    json_object_put(done);
    kafka_consumer_close(&kc);
    kafka_producer_free(&kp);
    pg_close(&db);
    snprintf(buf, sizeof buf, "DROP DATABASE IF EXISTS %s", dbname);
    struct err de = ERR_INIT;
    for (int i = 0; i < 20 && !pg_run(admin, buf, 0, NULL, &de); i++) {
        err_clear(&de);
        usleep(200000);
    }
    pg_close(&admin);
    kill(sim, SIGTERM);
    waitpid(sim, NULL, 0);
    unlink(ready);
    curl_global_cleanup();
    return 0;
}
