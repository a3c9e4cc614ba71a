/*
 * bench-write: write throughput of the real sfbridge-write worker against the
 * emulator — BENCH_N contact upserts (default 10,000) in record.write
 * messages of 1,000 operations (the schema's maximum), each sent as sObject
 * Collections upserts of 200 on Platform_Id__c.
 *
 * Needs a rig in the environment (SFBRIDGE_PG_DSN of a migrated database,
 * SFBRIDGE_KAFKA_BROKERS; tests/bench/run provides one) and the binaries in
 * SFBRIDGE_BIN_DIR (default build/bin). The emulator runs in this process
 * (libsfsim). A fresh org and topic prefix per run keep runs apart.
 *
 * Prints JSON lines to stdout:
 *   {"name":"write.records_per_s",...}           records / wall second, first
 *                                                produce to the last record.written
 *   {"name":"write.api_calls_per_1000",...,"baseline":"ceil(N/200) per 1000","baseline_value":5,...}
 * Details go to stderr.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../sfsim/sim.h"
#include "crypto.h"
#include "json.h"
#include "kafka.h"
#include "pg.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what, const char *why)
{
    fprintf(stderr, "bench-write: %s: %s\n", what, why);
    return 1;
}

static bool sql(struct pg *db, const char *q, int n, const char *const *p)
{
    struct err e = ERR_INIT;
    if (!pg_run(db, q, n, p, &e)) {
        fprintf(stderr, "bench-write: %s: %s\n", q, e.msg);
        return false;
    }
    return true;
}

int main(void)
{
    const char *ns = getenv("BENCH_N"), *dsn = getenv("SFBRIDGE_PG_DSN"), *brokers = getenv("SFBRIDGE_KAFKA_BROKERS");
    const char *bindir = getenv("SFBRIDGE_BIN_DIR") ? getenv("SFBRIDGE_BIN_DIR") : "build/bin";
    long n = ns ? strtol(ns, NULL, 10) : 10000;
    if (n <= 0)
        n = 10000;
    if (!dsn || !brokers)
        return fail("cannot start", "SFBRIDGE_PG_DSN and SFBRIDGE_KAFKA_BROKERS must name a rig (make bench)");
    signal(SIGPIPE, SIG_IGN);

    struct sim_config c;
    sim_config_defaults(&c);
    c.quiet = true;
    c.api_limit = 100000000;
    char err[256], tok[512];
    struct sim *s = sim_new(&c, err, sizeof err);
    if (!s || !sim_start(s, err, sizeof err) || !sim_issue_token(s, tok, sizeof tok))
        return fail("cannot start the emulator", err);

    struct err e = ERR_INIT;
    struct pg *db = pg_open(dsn, 10000, &e);
    if (!db)
        return fail("cannot connect to PostgreSQL", e.msg);
    char org[64], conn[40], prefix[64], keyenv[128], run[12];
    json_uuid4(conn, sizeof conn);
    snprintf(run, sizeof run, "%.8s", conn);
    snprintf(org, sizeof org, "bench-write-%s", run);
    snprintf(prefix, sizeof prefix, "bench-%s-", run);
    unsigned char key[32];
    crypto_random_bytes(key, sizeof key);
    char *b64 = crypto_b64_encode(key, sizeof key, false, true);
    snprintf(keyenv, sizeof keyenv, "%s", b64);
    free(b64);
    char *sealed = crypto_seal(key, "k1", tok, &e);
    const char *p[4] = {org, conn, sim_base_url(s), sealed};
    bool ok = sql(db, "INSERT INTO organizations (org_id, salesforce_enabled, enabled_by, enabled_at) "
                      "VALUES ($1, true, 'bench', now())",
                  1, p) &&
              sql(db, "INSERT INTO object_mappings (org_id, sf_object, platform_object) VALUES ($1, 'Contact', 'Contact')",
                  1, p) &&
              sql(db,
                  "INSERT INTO field_mappings (org_id, sf_object, sf_field, platform_field, direction, transform, "
                  "is_match_key) VALUES ($1,'Contact','FirstName','first_name','both','trim',false),"
                  "($1,'Contact','LastName','last_name','both','trim',false),"
                  "($1,'Contact','Email','email','both','trim|lower',true),"
                  "($1,'Contact','Title','title','both',NULL,false)",
                  1, p) &&
              sql(db,
                  "INSERT INTO connections (connection_id, org_id, user_id, instance_url, status, access_token_enc, "
                  "token_key_id, token_version, issued_at, connected_at) "
                  "VALUES ($2::uuid, $1, 'bench', $3, 'connected', $4, 'k1', 1, now(), now())",
                  4, p);
    free(sealed);
    if (!ok)
        return 1;

    /* topics, then the worker */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "SFBRIDGE_TOPIC_PREFIX=%s %s/sfbridge topics create >&2", prefix, bindir);
    if (system(cmd) != 0)
        return fail("cannot create topics", cmd);
    fflush(NULL);
    pid_t w = fork();
    if (w == 0) {
        char path[600];
        snprintf(path, sizeof path, "%s/sfbridge-write", bindir);
        setenv("SFBRIDGE_TOPIC_PREFIX", prefix, 1);
        setenv("SFBRIDGE_GROUP_ID", prefix, 1);
        setenv("SFBRIDGE_TOKEN_KEY", keyenv, 1);
        setenv("SFBRIDGE_TOKEN_KEY_ID", "k1", 1);
        setenv("SF_LOGIN_URL", sim_base_url(s), 1);
        if (!getenv("SFBRIDGE_LOG_LEVEL"))
            setenv("SFBRIDGE_LOG_LEVEL", "warn", 1);
        execl(path, "sfbridge-write", (char *)NULL);
        _exit(127);
    }

    char in[128], outt[128], client[64];
    snprintf(in, sizeof in, "%srecord.write", prefix);
    snprintf(outt, sizeof outt, "%srecord.written", prefix);
    snprintf(client, sizeof client, "bench-write-%s", run);
    struct kafka_producer *prod = kafka_producer_new(brokers, client, &e);
    const char *topics[2] = {outt, NULL};
    char group[96];
    snprintf(group, sizeof group, "%sreader", prefix);
    struct kafka_consumer *cons = prod ? kafka_consumer_new(brokers, group, topics, client, &e) : NULL;
    if (!cons) {
        kill(w, SIGTERM);
        return fail("cannot start kafka clients", e.msg);
    }

    long per = 1000, msgs = (n + per - 1) / per;
    size_t cap = (size_t)per * 400 + 1024;
    char *buf = malloc(cap);
    double t0 = now_s();
    for (long m = 0; m < msgs; m++) {
        char id[40];
        json_uuid4(id, sizeof id);
        size_t len = (size_t)snprintf(buf, cap,
                                      "{\"message_id\":\"%s\",\"org_id\":\"%s\",\"connection_id\":\"%s\","
                                      "\"created_at\":\"2026-12-03T16:20:00Z\",\"actor\":\"bench\",\"source\":\"cim\","
                                      "\"all_or_none\":false,\"operations\":[",
                                      id, org, conn);
        for (long i = m * per; i < n && i < (m + 1) * per; i++)
            len += (size_t)snprintf(buf + len, cap - len,
                                    "%s{\"ref\":\"c%ld\",\"object\":\"Contact\",\"action\":\"upsert\",\"match\":"
                                    "{\"email\":\"p%ld.%s@bench.example\"},\"fields\":{\"first_name\":\"P%ld\","
                                    "\"last_name\":\"Person %ld\",\"title\":\"Analyst\"}}",
                                    i == m * per ? "" : ",", i, i, run, i, i);
        len += (size_t)snprintf(buf + len, cap - len, "]}");
        if (!kafka_produce(prod, in, conn, buf, len, NULL, 0, 30000, &e))
            return fail("cannot produce", e.msg);
    }
    long got = 0, failed_ops = 0;
    double deadline = now_s() + 900;
    while (got < msgs && now_s() < deadline) {
        struct kafka_msg km;
        int r = kafka_consumer_poll(cons, 500, &km, &e);
        if (r < 0)
            return fail("cannot consume", e.msg);
        if (r == 0) {
            int st;
            if (waitpid(w, &st, WNOHANG) == w)
                return fail("the worker died", "see its stderr");
            continue;
        }
        struct err je = ERR_INIT;
        struct json_object *ev = json_parse(km.payload, km.len, &je);
        const char *status = ev ? json_get_str(ev, "status") : NULL;
        if (status && strcmp(status, "deferred") != 0) {
            got++;
            struct json_object *rs = json_get(ev, "results");
            for (size_t i = 0; rs && i < json_object_array_length(rs); i++)
                if (strcmp(json_get_str(json_object_array_get_idx(rs, i), "outcome"), "created"))
                    failed_ops++;
        }
        json_object_put(ev);
        kafka_msg_release(&km);
    }
    double secs = now_s() - t0;
    kill(w, SIGTERM);
    int st = 0;
    waitpid(w, &st, 0);

    /* the calls the emulator received (api usage of its org) */
    long long calls = -1;
    {
        char url[300];
        snprintf(cmd, sizeof cmd, "curl -s %s/__sim/stats", sim_base_url(s));
        (void)url;
        FILE *f = popen(cmd, "r");
        char out[8192];
        size_t k = f ? fread(out, 1, sizeof out - 1, f) : 0;
        out[k] = '\0';
        if (f)
            pclose(f);
        struct err je = ERR_INIT;
        struct json_object *o = json_parse(out, k, &je);
        calls = o ? json_get_int(o, "total", -1) : -1;
        json_object_put(o);
    }
    if (got < msgs)
        return fail("timed out", "not every record.written arrived");
    double rps = (double)n / secs, per1000 = (double)calls * 1000.0 / (double)n;
    double base = ceil((double)n / 200.0) * 1000.0 / (double)n;
    fprintf(stderr, "bench-write: %ld contacts in %ld messages, %.2f s, %lld calls, %ld not created\n", n, msgs, secs,
            calls, failed_ops);
    printf("{\"name\":\"write.records_per_s\",\"value\":%.1f,\"unit\":\"records/s\"}\n", rps);
    printf("{\"name\":\"write.api_calls_per_1000\",\"value\":%.3f,\"unit\":\"calls\",\"baseline\":\"ceil(N/200) per "
           "1000\",\"baseline_value\":%.3f,\"ratio\":%.3f}\n",
           per1000, base, per1000 / base);
    free(buf);
    kafka_consumer_close(&cons);
    kafka_producer_free(&prod);
    pg_close(&db);
    sim_free(s);
    return failed_ops ? 1 : 0;
}
