/*
 * Bad-input corpus (issue 7 item 4): the 1,300 messages of tests/corpus/gen.mjs (not JSON,
 * truncated, wrong types, missing fields, unknown enums, invalid UUIDs, 5 MB strings, invalid
 * UTF-8, deep nesting, unknown org/connection, another org's connection, SOQL/SQL injection in
 * match values and field names, deletes) are batch-produced to sync.requested, record.write and
 * token.refresh, with the sync, write and token workers and the emulator running. Each message
 * gets a fresh message_id (the generator reuses the examples' ids), so every one is handled on
 * its own. Then:
 *   - every message the generator marks "dlq" is on <topic>.dlq, byte for byte, with
 *     x-error-code and x-error headers, and gets no completion;
 *   - every "completion" message gets exactly one completion event; a failed one carries an
 *     error code and message; tenant violations fail NOT_FOUND / INTEGRATION_DISABLED /
 *     FORBIDDEN, deletes DELETE_NOT_SUPPORTED with an audit row (outcome refused);
 *   - nothing reaches the emulator that should not: no DELETE, no query the emulator cannot
 *     parse (a broken-out literal), no query of an unmapped object or of an injected field;
 *   - 12 valid jobs interleaved with the corpus (same partition) and one sent after it are each
 *     answered within CORPUS_BOUND_S (30) seconds; the workers are still running and SIGTERM
 *     still drains and exits 0.
 * The input topics and their DLQs accept 8 MB messages here, so the 5 MB ones reach the
 * workers (the broker's 1 MiB default would refuse them at produce time).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chaos/relib.h"
#include "itlib.h"
#include "json.h"
#include "kafka.h"

#define ACME "org_acme-capital"
#define ACME_CONN "6f1c2a9e-3b7d-4c58-9e21-7a4d0b3c8f15"

struct entry {
    const char *topic, *category, *description, *expect, *file;
    char *bytes;
    size_t len;
    char id[37]; /* the fresh message_id, "" when the message has none we could replace */
    int dlq_seen, completions;
    char status[16], code[64], emsg[160];
    bool op_delete_refused;
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool is_uuid_at(const char *p, size_t left)
{
    if (left < 36)
        return false;
    for (int i = 0; i < 36; i++) {
        char c = p[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

/* Replace the value of every "message_id":"<uuid>" in the raw bytes by one fresh id. */
static void fresh_id(struct entry *en)
{
    static const char key[] = "\"message_id\":\"";
    const size_t kl = sizeof key - 1;
    char id[37];
    it_uuid(id);
    for (size_t i = 0; en->len >= kl && i + kl <= en->len; i++) {
        if (memcmp(en->bytes + i, key, kl) != 0 || !is_uuid_at(en->bytes + i + kl, en->len - i - kl))
            continue;
        memcpy(en->bytes + i + kl, id, 36);
        memcpy(en->id, id, 37);
    }
}

static struct entry *by_id(struct entry *es, int n, const char *id)
{
    for (int i = 0; id && i < n; i++)
        if (es[i].id[0] && !strcmp(es[i].id, id))
            return &es[i];
    return NULL;
}

static bool worker_alive(pid_t p) { return waitpid(p, NULL, WNOHANG) == 0; }

Test(it_corpus, every_bad_message_is_dead_lettered_or_failed, .timeout = 600)
{
    struct it_env env;
    it_env_init(&env);
    rel_token_key_env();
    struct it_sfsim sim;
    const char *simargs[] = {"--seed-accounts", "20", "--seed-contacts", "20", "--quiet", NULL};
    it_sfsim_start(&env, &sim, simargs);
    setenv("SF_LOGIN_URL", sim.url, 1);
    rel_org(&env, ACME, true);
    rel_demo_mappings(&env, ACME);
    char acme_conn[37] = ACME_CONN, other_conn[37] = "";
    rel_connect(&env, sim.url, ACME, "user:5c2e91d0", acme_conn, NULL);
    rel_org(&env, "org_other", true);
    rel_connect(&env, sim.url, "org_other", "user:other", other_conn, NULL);

    const char *big[] = {"sync.requested", "record.write", "token.refresh", "sync.requested.dlq", "record.write.dlq",
                         "token.refresh.dlq", NULL};
    rel_topic_max_bytes(&env, big, 8000000);

    /* the corpus */
    char dir[128], cmd[512];
    snprintf(dir, sizeof dir, "build/corpus-%.8s", env.prefix + 3);
    snprintf(cmd, sizeof cmd, "node tests/corpus/gen.mjs --out %s >/dev/null", dir);
    cr_assert_eq(system(cmd), 0, "tests/corpus/gen.mjs failed");
    char ipath[256];
    snprintf(ipath, sizeof ipath, "%s/index.json", dir);
    struct json_object *index = json_object_from_file(ipath);
    cr_assert(index, "cannot read %s", ipath);
    struct json_object *arr = json_get(index, "entries");
    int n = (int)json_object_array_length(arr);
    cr_assert(n >= 1000, "the corpus must have at least 1,000 messages, it has %d", n);
    struct entry *es = calloc((size_t)n, sizeof *es);
    int want_dlq = 0, want_done = 0;
    for (int i = 0; i < n; i++) {
        struct json_object *o = json_object_array_get_idx(arr, i);
        es[i].topic = json_get_str(o, "topic");
        es[i].category = json_get_str(o, "category");
        es[i].description = json_get_str(o, "description");
        es[i].expect = json_get_str(o, "expect");
        es[i].file = json_get_str(o, "file");
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, es[i].file);
        FILE *f = fopen(path, "rb");
        cr_assert(f, "cannot open %s", path);
        fseek(f, 0, SEEK_END);
        es[i].len = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        es[i].bytes = malloc(es[i].len + 1);
        cr_assert_eq(fread(es[i].bytes, 1, es[i].len, f), es[i].len);
        fclose(f);
        fresh_id(&es[i]);
        if (!strcmp(es[i].expect, "dlq"))
            want_dlq++;
        else {
            want_done++;
            cr_assert(es[i].id[0], "completion entry %s has no message_id to refresh", es[i].file);
        }
    }

    pid_t ws[3];
    /* one consumer group per worker kind, as deployed (a shared group would rebalance all kinds together) */
    char g[3][128];
    const char *bins[3] = {"sfbridge-sync", "sfbridge-write", "sfbridge-token"};
    const char *labels[3] = {"corpus-sync", "corpus-write", "corpus-token"};
    for (int i = 0; i < 3; i++) {
        snprintf(g[i], sizeof g[i], "SFBRIDGE_GROUP_ID=%s-%s", env.group, bins[i]);
        const char *extra[] = {g[i], NULL};
        ws[i] = it_spawn(&env, bins[i], extra, labels[i]);
    }
    rel_sim_post(&sim, "/__sim/reset", "{}");

    long long t0 = mono_ms();
    struct rel_producer rp;
    rel_producer_open(&rp, &env);
    /* valid jobs interleaved with the corpus on the same partitions: how long do they wait? */
    enum { NV = 12 };
    char vids[NV][37];
    long long vsent[NV], vdone[NV];
    int nv = 0;
    for (int i = 0; i < n; i++) {
        rel_produce(&rp, es[i].topic, ACME_CONN, es[i].bytes, es[i].len);
        if (nv < NV && i % (n / NV) == n / NV / 2) {
            char vb[1024], vts[40];
            it_uuid(vids[nv]);
            json_now_rfc3339(vts, sizeof vts);
            int vl = snprintf(vb, sizeof vb,
                              "{\"message_id\":\"%s\",\"org_id\":\"%s\",\"connection_id\":\"%s\",\"created_at\":\"%s\","
                              "\"mode\":\"incremental\",\"objects\":[\"Account\"],\"requested_by\":\"it-corpus\"}",
                              vids[nv], ACME, ACME_CONN, vts);
            vsent[nv] = mono_ms();
            vdone[nv] = -1;
            rel_produce(&rp, "sync.requested", ACME_CONN, vb, (size_t)vl);
            nv++;
        }
    }
    rel_producer_flush(&rp);
    long long produced_ms = mono_ms() - t0;

    /* read the DLQs and the completions until everything is accounted for */
    struct err e = ERR_INIT;
    char tn[8][256];
    const char *logical[7] = {"sync.requested.dlq", "record.write.dlq", "token.refresh.dlq", "sync.completed",
                              "record.written",     "token.refreshed",  NULL};
    const char *topics[8];
    for (int i = 0; logical[i]; i++) {
        snprintf(tn[i], sizeof tn[i], "%s%s", env.prefix, logical[i]);
        topics[i] = tn[i];
        topics[i + 1] = NULL;
    }
    char group[96], rid[37];
    it_uuid(rid);
    snprintf(group, sizeof group, "corpus-reader-%s", rid);
    struct kafka_consumer *c = kafka_consumer_new(env.brokers, group, topics, "corpus-reader", &e);
    cr_assert(c, "%s", e.msg);
    int dlq_total = 0, dlq_dups = 0, done_total = 0, dlq_unmatched = 0, done_unmatched = 0, dlq_no_headers = 0;
    long long start = mono_ms();
    int vanswered = 0;
    while (mono_ms() - start < 300000 && (dlq_total - dlq_dups < want_dlq || done_total - vanswered < want_done ||
                                          vanswered < nv)) {
        struct kafka_msg m;
        if (kafka_consumer_poll(c, 200, &m, &e) != 1)
            continue;
        bool is_dlq = strstr(m.topic, ".dlq") != NULL;
        if (is_dlq) {
            dlq_total++;
            char h1[300], h2[600];
            if (!kafka_msg_header(&m, "x-error-code", h1, sizeof h1) || !h1[0] ||
                !kafka_msg_header(&m, "x-error", h2, sizeof h2) || !h2[0])
                dlq_no_headers++;
            struct entry *hit = NULL, *again = NULL;
            for (int i = 0; i < n && !hit; i++) {
                if (es[i].len != m.len || strncmp(m.topic + strlen(env.prefix), es[i].topic, strlen(es[i].topic)) ||
                    (m.len && memcmp(es[i].bytes, m.payload, m.len) != 0))
                    continue;
                if (es[i].dlq_seen == 0)
                    hit = &es[i];
                else
                    again = &es[i];
            }
            if (hit) {
                hit->dlq_seen++;
            } else if (again) {
                dlq_dups++; /* at-least-once: the same bytes dead-lettered again (after a rebalance) */
            } else {
                dlq_unmatched++;
                fprintf(stderr, "corpus: unmatched dead letter on %s, %zu bytes, x-error-code %s: %.120s\n", m.topic,
                        m.len, kafka_msg_header(&m, "x-error-code", h1, sizeof h1) ? h1 : "-",
                        m.len ? m.payload : "");
            }
        } else {
            done_total++;
            struct err pe = ERR_INIT;
            struct json_object *ev = json_parse(m.payload, m.len, &pe);
            struct entry *hit = ev ? by_id(es, n, json_get_str(ev, "request_id")) : NULL;
            const char *vr = ev ? json_get_str(ev, "request_id") : NULL;
            int vk = -1;
            for (int k = 0; vr && k < nv; k++)
                if (!strcmp(vids[k], vr))
                    vk = k;
            if (vk >= 0) {
                if (vdone[vk] < 0) {
                    vdone[vk] = mono_ms();
                    vanswered++;
                } else {
                    vanswered++; /* an identical re-emit: counted so the totals stay right */
                }
            } else if (!hit) {
                done_unmatched++;
            } else if (hit->completions++ == 0) {
                const char *st = json_get_str(ev, "status");
                snprintf(hit->status, sizeof hit->status, "%s", st ? st : "");
                struct json_object *er = json_get(ev, "error");
                snprintf(hit->code, sizeof hit->code, "%s", er && json_get_str(er, "code") ? json_get_str(er, "code") : "");
                snprintf(hit->emsg, sizeof hit->emsg, "%s",
                         er && json_get_str(er, "message") ? json_get_str(er, "message") : "");
                /* a refused delete inside a bundle shows in its operation's result */
                struct json_object *res = json_get(ev, "results");
                for (size_t k = 0; res && json_object_is_type(res, json_type_array) &&
                                   k < json_object_array_length(res);
                     k++) {
                    struct json_object *re = json_get(json_object_array_get_idx(res, k), "error");
                    const char *rc = re ? json_get_str(re, "code") : NULL;
                    if (rc && !strcmp(rc, "DELETE_NOT_SUPPORTED"))
                        hit->op_delete_refused = true;
                }
            }
            json_object_put(ev);
        }
        kafka_msg_release(&m);
    }
    long long drained_ms = mono_ms() - t0;
    int bound_s = 30;
    const char *b = getenv("CORPUS_BOUND_S");
    if (b && strtol(b, NULL, 10) > 0)
        bound_s = (int)strtol(b, NULL, 10);
    long long vmax = -1;
    int vlate = 0;
    for (int k = 0; k < nv; k++) {
        if (vdone[k] < 0) {
            vlate++;
            continue;
        }
        if (vdone[k] - vsent[k] > vmax)
            vmax = vdone[k] - vsent[k];
    }
    kafka_consumer_close(&c);

    /* per-entry verdicts */
    int dlq_missing = 0, dlq_but_completed = 0, done_missing = 0, done_twice = 0, done_dlq = 0, unclear = 0,
        tenant_bad = 0, delete_bad = 0, failed = 0, succeeded = 0;
    char first_problem[1024] = "";
#define PROBLEM(...)                                                                                                  \
    do {                                                                                                              \
        if (!first_problem[0])                                                                                        \
            snprintf(first_problem, sizeof first_problem, __VA_ARGS__);                                               \
    } while (0)
    for (int i = 0; i < n; i++) {
        struct entry *x = &es[i];
        if (!strcmp(x->expect, "dlq")) {
            if (x->dlq_seen != 1) {
                dlq_missing++;
                PROBLEM("%s (%s: %s) not dead-lettered", x->file, x->category, x->description);
            }
            if (x->completions) {
                dlq_but_completed++;
                PROBLEM("%s (%s) dead-letter expected but completed %s %s", x->file, x->description, x->status, x->code);
            }
            continue;
        }
        if (x->dlq_seen) {
            done_dlq++;
            PROBLEM("%s (%s: %s) is schema-valid but was dead-lettered", x->file, x->category, x->description);
        }
        if (x->completions == 0) {
            done_missing++;
            PROBLEM("%s (%s: %s) got no completion", x->file, x->category, x->description);
            continue;
        }
        if (x->completions > 1) {
            done_twice++;
            PROBLEM("%s (%s) got %d completions", x->file, x->description, x->completions);
        }
        if (!strcmp(x->status, "failed")) {
            failed++;
            if (!x->code[0] || !x->emsg[0]) {
                unclear++;
                PROBLEM("%s (%s) failed without a clear error", x->file, x->description);
            }
        } else if (!strcmp(x->status, "succeeded")) {
            succeeded++;
        }
        if (!strcmp(x->category, "tenant") &&
            (strcmp(x->status, "failed") != 0 ||
             (strcmp(x->code, "NOT_FOUND") && strcmp(x->code, "INTEGRATION_DISABLED") && strcmp(x->code, "FORBIDDEN")))) {
            tenant_bad++;
            PROBLEM("%s (%s) -> %s %s, expected a tenant refusal", x->file, x->description, x->status, x->code);
        }
        if (!strcmp(x->category, "tenant") && strstr(x->description, "another org") && strcmp(x->code, "FORBIDDEN")) {
            tenant_bad++;
            PROBLEM("%s (%s) -> %s, expected FORBIDDEN", x->file, x->description, x->code);
        }
        if (!strcmp(x->category, "delete") &&
            (strcmp(x->status, "failed") != 0 || (strcmp(x->code, "DELETE_NOT_SUPPORTED") && !x->op_delete_refused))) {
            delete_bad++;
            PROBLEM("%s (%s) -> %s %s, expected DELETE_NOT_SUPPORTED", x->file, x->description, x->status, x->code);
        }
    }

    /* every refused delete is audited (outcome refused) */
    int delete_unaudited = 0;
    for (int i = 0; i < n; i++) {
        struct entry *x = &es[i];
        if (strcmp(x->category, "delete") != 0 || (strcmp(x->code, "DELETE_NOT_SUPPORTED") && !x->op_delete_refused))
            continue;
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM audit_log WHERE request_id = '%s' AND outcome = 'refused'",
                 x->id);
        if (it_sql_long(&env, sql) < 1) {
            delete_unaudited++;
            PROBLEM("%s (%s): refused delete without an audit row", x->file, x->description);
        }
    }

    /* what reached the emulator */
    struct json_object *reqs = rel_sim_get(&sim, "/__sim/requests");
    int nreq = json_object_is_type(reqs, json_type_array) ? (int)json_object_array_length(reqs) : -1;
    int bad_req = 0;
    char bad_req_text[512] = "";
    for (int i = 0; i < nreq; i++) {
        struct json_object *r = json_object_array_get_idx(reqs, i);
        const char *method = json_get_str(r, "method"), *path = json_get_str(r, "path"), *q = json_get_str(r, "query");
        long long st = json_get_int(r, "status", 0);
        bool bad = method && !strcmp(method, "DELETE");
        if (q && (strstr(q, "Password__c") || strstr(q, "FROM User") || strstr(q, "LoginHistory") ||
                  strstr(q, "__History") || strstr(q, "DROP TABLE")))
            bad = true;
        if (st == 400 && path && strstr(path, "/query"))
            bad = true; /* a query the emulator could not parse: something broke out of a literal */
        if (bad) {
            bad_req++;
            if (!bad_req_text[0])
                snprintf(bad_req_text, sizeof bad_req_text, "%s %s?%s -> %lld", method, path, q ? q : "", st);
        }
    }
    json_object_put(reqs);

    int alive = 0;
    for (int i = 0; i < 3; i++)
        alive += worker_alive(ws[i]);

    /* a valid job after the corpus: answered within the bound */
    char vid[37], buf[1024], ts[40];
    it_uuid(vid);
    json_now_rfc3339(ts, sizeof ts);
    int len = snprintf(buf, sizeof buf,
                       "{\"message_id\":\"%s\",\"org_id\":\"%s\",\"connection_id\":\"%s\",\"created_at\":\"%s\","
                       "\"mode\":\"incremental\",\"objects\":[\"Account\"],\"requested_by\":\"it-corpus\"}",
                       vid, ACME, ACME_CONN, ts);
    long long v0 = mono_ms();
    rel_produce(&rp, "sync.requested", ACME_CONN, buf, (size_t)len);
    rel_producer_flush(&rp);
    rel_producer_close(&rp);
    struct it_msgs after;
    long long valid_ms = -1;
    while (mono_ms() - v0 < bound_s * 1000LL) {
        it_consume(&env, "sync.completed", 1 << 30, 3000, 0, &after);
        int hit = it_msgs_count(&after, vid);
        it_msgs_free(&after);
        if (hit) {
            valid_ms = mono_ms() - v0;
            break;
        }
    }

    int exits_bad = 0;
    for (int i = 0; i < 3; i++)
        if (it_stop(ws[i], 30000) != 0)
            exits_bad++;

    fprintf(stderr,
            "corpus: %d messages (%d dlq expected, %d completion expected), produced in %lld ms, all handled in %lld ms\n"
            "corpus: dead-lettered %d (missing %d, without error headers %d, unmatched %d, also completed %d, "
            "identical copies %d)\n"
            "corpus: completions %d (missing %d, more than one %d, dead-lettered instead %d, failed %d, succeeded %d, "
            "failed without a clear error %d, unmatched %d)\n"
            "corpus: tenant refusals wrong %d, deletes not refused %d, refused deletes not audited %d; emulator requests %d, forbidden ones %d%s%s\n"
            "corpus: %d valid jobs interleaved: slowest answered in %lld ms, %d unanswered; "
            "workers alive after the corpus %d of 3; valid job afterwards answered in %lld ms (bound %d s); "
            "workers not exiting 0 %d\n",
            n, want_dlq, want_done, produced_ms, drained_ms, dlq_total, dlq_missing, dlq_no_headers, dlq_unmatched,
            dlq_but_completed, dlq_dups, done_total, done_missing, done_twice, done_dlq, failed, succeeded, unclear,
            done_unmatched, tenant_bad, delete_bad, delete_unaudited, nreq, bad_req, bad_req_text[0] ? ": " : "", bad_req_text, nv,
            vmax, vlate, alive,
            valid_ms, bound_s, exits_bad);
    if (first_problem[0])
        fprintf(stderr, "corpus: first problem: %s\n", first_problem);

    cr_expect_eq(dlq_missing, 0, "dead letters missing: %d (%s)", dlq_missing, first_problem);
    cr_expect_eq(dlq_no_headers, 0, "dead letters without x-error-code/x-error");
    cr_expect_eq(dlq_unmatched, 0, "dead letters that match no corpus message byte for byte: %d", dlq_unmatched);
    cr_expect_eq(dlq_but_completed, 0, "invalid messages that were also answered: %d", dlq_but_completed);
    cr_expect_eq(done_missing + done_twice + done_dlq, 0, "schema-valid messages without exactly one completion (%s)",
                 first_problem);
    cr_expect_eq(unclear, 0, "failed completions without a clear error");
    cr_expect_eq(tenant_bad, 0, "tenant violations not refused (%s)", first_problem);
    cr_expect_eq(delete_bad, 0, "deletes not refused (%s)", first_problem);
    cr_expect_eq(delete_unaudited, 0, "refused deletes without an audit row (%s)", first_problem);
    cr_expect_eq(bad_req, 0, "forbidden requests reached the emulator: %s", bad_req_text);
    cr_expect_eq(alive, 3, "a worker died during the corpus");
    cr_expect(nv == NV && vlate == 0 && vmax <= bound_s * 1000LL,
              "valid jobs among the corpus: %d of %d unanswered, slowest %lld ms (bound %d s)", vlate, nv, vmax, bound_s);
    cr_expect(valid_ms >= 0, "a valid job after the corpus was not answered within %d s", bound_s);
    cr_expect_eq(exits_bad, 0, "workers must still drain and exit 0 on SIGTERM");

    for (int i = 0; i < n; i++)
        free(es[i].bytes);
    free(es);
    json_object_put(index);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    it_sfsim_stop(&sim);
}
