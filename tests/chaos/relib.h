/*
 * relib: helpers shared by the reliability tests (tests/it_chaos.c, it_faults.c,
 * it_corpus.c, it_security.c). Header-only (static inline) so each integration
 * binary takes what it uses; everything aborts the test (cr_assert) when the rig
 * is not usable.
 *
 *   rel_token_key_env()     a fresh SFBRIDGE_TOKEN_KEY/_ID in this process's
 *                           environment (it_spawn passes it on to workers)
 *   rel_org()               an enabled org
 *   rel_demo_mappings()     tests/demo/mappings.json as SQL rows for an org
 *   rel_connect()           a connection whose tokens come from a real OAuth code
 *                           flow against the emulator, stored encrypted
 *                           (conn_store_tokens); returns the tokens (caller frees)
 *   rel_producer_*          one producer for many messages (batch produce)
 *   rel_sim_*               emulator control API helpers
 *   rel_proc_cpu_ticks()    utime+stime of a process from /proc
 */
#ifndef SFBRIDGE_RELIB_H
#define SFBRIDGE_RELIB_H

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "conn.h"
#include "crypto.h"
#include "itlib.h"
#include "json.h"
#include "kafka.h"
#include "pg.h"
#include "sf.h"

static inline void rel_token_key_env(void)
{
    unsigned char k[32];
    cr_assert(crypto_random_bytes(k, sizeof k));
    char *b64 = crypto_b64_encode(k, sizeof k, false, true);
    cr_assert(b64);
    setenv("SFBRIDGE_TOKEN_KEY", b64, 1);
    setenv("SFBRIDGE_TOKEN_KEY_ID", "rel1", 1);
    free(b64);
}

/* SQL literal quoting for trusted test data. Returns a static buffer rotated over 8 slots. */
static inline const char *rel_q(const char *s)
{
    static char slots[8][2048];
    static int next = 0;
    char *o = slots[next++ % 8];
    size_t n = 0;
    if (!s)
        return "NULL";
    o[n++] = '\'';
    for (; *s && n < sizeof slots[0] - 3; s++) {
        if (*s == '\'')
            o[n++] = '\'';
        o[n++] = *s;
    }
    o[n++] = '\'';
    o[n] = '\0';
    return o;
}

static inline void rel_org(const struct it_env *env, const char *org, bool enabled)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO organizations (org_id, name, salesforce_enabled, enabled_by, enabled_at) "
             "VALUES (%s, %s, %s, 'it-admin', now())",
             rel_q(org), rel_q(org), enabled ? "true" : "false");
    it_sql_ok(env, sql);
}

/* The demo mapping file (what an admin imports), inserted as rows for `org`. */
static inline void rel_demo_mappings(const struct it_env *env, const char *org)
{
    struct json_object *m = json_object_from_file("tests/demo/mappings.json");
    cr_assert(m, "cannot read tests/demo/mappings.json (run from the repo root)");
    struct json_object *objs = json_get(m, "objects");
    cr_assert(objs && json_object_is_type(objs, json_type_array));
    size_t cap = 65536, len = 0;
    char *sql = malloc(cap);
    cr_assert(sql);
    sql[0] = '\0';
    for (size_t i = 0; i < json_object_array_length(objs); i++) {
        struct json_object *o = json_object_array_get_idx(objs, i);
        const char *sfo = json_get_str(o, "sf_object");
        len += (size_t)snprintf(sql + len, cap - len,
                                "INSERT INTO object_mappings (org_id, sf_object, platform_object, enabled, updated_by) "
                                "VALUES (%s, %s, %s, %s, 'it-admin');",
                                rel_q(org), rel_q(sfo), rel_q(json_get_str(o, "platform_object")),
                                json_get_bool(o, "enabled", true) ? "true" : "false");
        struct json_object *fs = json_get(o, "fields");
        for (size_t j = 0; fs && j < json_object_array_length(fs); j++) {
            struct json_object *f = json_object_array_get_idx(fs, j);
            const char *tr = json_get_str(f, "transform");
            len += (size_t)snprintf(sql + len, cap - len,
                                    "INSERT INTO field_mappings (org_id, sf_object, sf_field, platform_field, direction, "
                                    "transform, is_match_key) VALUES (%s, %s, %s, %s, %s, %s, %s);",
                                    rel_q(org), rel_q(sfo), rel_q(json_get_str(f, "sf_field")),
                                    rel_q(json_get_str(f, "platform_field")),
                                    rel_q(json_get_str(f, "direction") ? json_get_str(f, "direction") : "import"),
                                    tr ? rel_q(tr) : "NULL", json_get_bool(f, "match_key", false) ? "true" : "false");
            cr_assert(len < cap - 1024, "mapping SQL too long");
        }
    }
    it_sql_ok(env, sql);
    free(sql);
    json_object_put(m);
}

struct rel_tokens {
    char *access_token, *refresh_token, *instance_url;
};

static inline void rel_tokens_free(struct rel_tokens *t)
{
    free(t->access_token);
    free(t->refresh_token);
    free(t->instance_url);
    memset(t, 0, sizeof *t);
}

/* CA bundle the helpers below verify the emulator with when it serves HTTPS ("" = none set). */
static char rel_ca_file[512];

struct rel_body {
    char *d;
    size_t n;
};

static inline size_t rel_on_data(char *p, size_t sz, size_t nm, void *ud)
{
    struct rel_body *b = ud;
    size_t n = sz * nm;
    char *nd = realloc(b->d, b->n + n + 1);
    if (!nd)
        return 0;
    b->d = nd;
    memcpy(b->d + b->n, p, n);
    b->n += n;
    b->d[b->n] = '\0';
    return n;
}

/* POST a form (application/x-www-form-urlencoded); returns the body (caller frees), sets *status. */
static inline char *rel_http_form(const char *url, const char *form, long *status)
{
    CURL *c = curl_easy_init();
    cr_assert(c);
    struct rel_body b = {calloc(1, 1), 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, rel_on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    if (rel_ca_file[0])
        curl_easy_setopt(c, CURLOPT_CAINFO, rel_ca_file);
    CURLcode rc = curl_easy_perform(c);
    cr_assert_eq(rc, CURLE_OK, "POST %s: %s", url, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    return b.d;
}

/* The code an authorize URL redirects with (no redirect followed). */
static inline char *rel_code_from_authorize_url(const char *url)
{
    CURL *c = curl_easy_init();
    cr_assert(c);
    FILE *sink = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    if (rel_ca_file[0])
        curl_easy_setopt(c, CURLOPT_CAINFO, rel_ca_file);
    CURLcode rc = curl_easy_perform(c);
    cr_assert_eq(rc, CURLE_OK, "authorize: %s", curl_easy_strerror(rc));
    char *loc = NULL;
    curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc);
    cr_assert(loc, "authorize did not redirect");
    const char *p = strstr(loc, "code=");
    cr_assert(p, "no code in %s", loc);
    p += 5;
    size_t n = strcspn(p, "&");
    char *enc = strndup(p, n);
    int outlen = 0;
    char *dec = curl_easy_unescape(c, enc, 0, &outlen);
    char *code = strdup(dec);
    curl_free(dec);
    free(enc);
    fclose(sink);
    curl_easy_cleanup(c);
    return code;
}

/* The code the emulator's authorize endpoint redirects with (no redirect followed). */
static inline char *rel_authorize_code(const char *base, const char *redirect, const char *challenge)
{
    char url[1024];
    snprintf(url, sizeof url,
             "%s/services/oauth2/authorize?response_type=code&client_id=sfbridge-test-client&redirect_uri=%s"
             "&state=rel&scope=api%%20refresh_token%%20id&code_challenge=%s&code_challenge_method=S256",
             base, redirect, challenge);
    return rel_code_from_authorize_url(url);
}

/* A `connected` connection for (org, user) with tokens from a real code exchange at the
 * emulator, stored encrypted with the key of rel_token_key_env(). conn_id: in/out; when it is
 * "" a new id is made. */
static inline void rel_connect(const struct it_env *env, const char *sim_url, const char *org, const char *user,
                               char conn_id[37], struct rel_tokens *out)
{
    struct err e = ERR_INIT;
    char verifier[64], challenge[64];
    cr_assert(crypto_random_b64url(32, verifier, sizeof verifier));
    crypto_pkce_challenge(verifier, challenge, sizeof challenge);
    const char *redirect = "http://127.0.0.1:1/callback";
    char *code = rel_authorize_code(sim_url, redirect, challenge);
    /* The code exchange, by hand (not through sf.c: the setup must not depend on the code under
     * test), verifying the emulator with rel_ca_file when it serves HTTPS. */
    char tokurl[512], form[2048];
    snprintf(tokurl, sizeof tokurl, "%s/services/oauth2/token", sim_url);
    char *ecode = sf_urlencode(code), *ever = sf_urlencode(verifier), *ered = sf_urlencode(redirect);
    snprintf(form, sizeof form,
             "grant_type=authorization_code&code=%s&client_id=sfbridge-test-client&client_secret=sfbridge-test-secret"
             "&redirect_uri=%s&code_verifier=%s",
             ecode, ered, ever);
    free(ecode);
    free(ever);
    free(ered);
    free(code);
    long st = 0;
    char *body = rel_http_form(tokurl, form, &st);
    cr_assert_eq(st, 200, "code exchange at the emulator: %ld %s", st, body);
    struct json_object *tj = json_tokener_parse(body);
    free(body);
    cr_assert(tj, "token response is not JSON");
    struct sf_token t;
    memset(&t, 0, sizeof t);
    t.access_token = strdup(json_get_str(tj, "access_token"));
    t.refresh_token = json_get_str(tj, "refresh_token") ? strdup(json_get_str(tj, "refresh_token")) : NULL;
    t.instance_url = strdup(json_get_str(tj, "instance_url"));
    t.id = json_get_str(tj, "id") ? strdup(json_get_str(tj, "id")) : NULL;
    t.issued_at = json_get_str(tj, "issued_at") ? strdup(json_get_str(tj, "issued_at")) : NULL;
    json_object_put(tj);
    char sforg[24] = "", sfuser[24] = "";
    sf_parse_identity_url(t.id, sforg, sfuser);

    if (!conn_id[0])
        it_uuid(conn_id);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO connections (connection_id, org_id, user_id, status, instance_url, sf_org_id, sf_user_id, "
             "connected_at) VALUES ('%s', %s, %s, 'connected', %s, %s, %s, now())",
             conn_id, rel_q(org), rel_q(user), rel_q(t.instance_url), sforg[0] ? rel_q(sforg) : "NULL",
             sfuser[0] ? rel_q(sfuser) : "NULL");
    it_sql_ok(env, sql);

    /* sealed like conn_store_tokens does (AES-256-GCM, AAD = key id); written here directly so the
     * setup does not depend on the code under test */
    unsigned char key[32];
    cr_assert(crypto_key_from_b64(getenv("SFBRIDGE_TOKEN_KEY"), key, &e), "%s", e.msg);
    const char *kid = getenv("SFBRIDGE_TOKEN_KEY_ID");
    char *aenc = crypto_seal(key, kid, t.access_token, &e);
    char *renc = t.refresh_token ? crypto_seal(key, kid, t.refresh_token, &e) : NULL;
    cr_assert(aenc, "%s", e.msg);
    struct pg *db = pg_open(env->dsn, 5000, &e);
    cr_assert(db, "%s", e.msg);
    const char *p[4] = {conn_id, aenc, renc, kid};
    cr_assert(pg_run(db,
                     "UPDATE connections SET access_token_enc = $2, refresh_token_enc = $3, token_key_id = $4, "
                     "token_version = token_version + 1, issued_at = now(), last_refresh_at = now() "
                     "WHERE connection_id = $1",
                     4, p, &e),
              "store tokens: %s", e.msg);
    pg_close(&db);
    free(aenc);
    free(renc);
    if (out) {
        out->access_token = strdup(t.access_token);
        out->refresh_token = t.refresh_token ? strdup(t.refresh_token) : NULL;
        out->instance_url = strdup(t.instance_url);
    }
    sf_token_cleanup(&t);
}

struct rel_producer {
    struct kafka_producer *p;
    const struct it_env *env;
};

/* Raise max.message.bytes of prefixed topics (so a 5 MB message reaches the worker, which must
 * refuse it itself): kafka.admin.ConfigCommand from the rig's jars. */
static inline void rel_topic_max_bytes(const struct it_env *env, const char *const *topics, long bytes)
{
    for (int i = 0; topics[i]; i++) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd,
                 "java -Xmx256m -XX:TieredStopAtLevel=1 -cp '.cache/kafka-libs/*' kafka.admin.ConfigCommand "
                 "--bootstrap-server %s --alter --entity-type topics --entity-name '%s%s' "
                 "--add-config max.message.bytes=%ld >/dev/null 2>&1",
                 env->brokers, env->prefix, topics[i], bytes);
        cr_assert_eq(system(cmd), 0, "could not raise max.message.bytes of %s%s", env->prefix, topics[i]);
    }
}

static inline void rel_producer_open(struct rel_producer *rp, const struct it_env *env)
{
    struct err e = ERR_INIT;
    rp->env = env;
    rp->p = kafka_producer_new(env->brokers, "rel-producer", &e);
    cr_assert(rp->p, "producer: %s", e.msg);
}

/* Asynchronous produce to the prefixed topic; rel_producer_flush waits for all. */
static inline void rel_produce(struct rel_producer *rp, const char *topic, const char *key, const void *val,
                               size_t len)
{
    struct err e = ERR_INIT;
    char t[256];
    snprintf(t, sizeof t, "%s%s", rp->env->prefix, topic);
    for (int i = 0; i < 100; i++) {
        err_clear(&e);
        if (kafka_produce_async(rp->p, t, key, val, len, &e))
            return;
        /* local queue full: drain it */
        kafka_producer_flush(rp->p, 1000, &e);
    }
    cr_assert_fail("produce to %s: %s", t, e.msg);
}

static inline void rel_producer_flush(struct rel_producer *rp)
{
    struct err e = ERR_INIT;
    cr_assert(kafka_producer_flush(rp->p, 60000, &e), "flush: %s", e.msg);
}

static inline void rel_producer_close(struct rel_producer *rp) { kafka_producer_free(&rp->p); }

/* POST a JSON body to the emulator's control API; asserts 2xx. */
static inline void rel_sim_post(const struct it_sfsim *s, const char *path, const char *body)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", s->url, path);
    long st = 0;
    char *r = it_http("POST", url, body, &st);
    cr_assert(st >= 200 && st < 300, "POST %s -> %ld %s", path, st, r);
    free(r);
}

/* GET from the emulator (verifying with rel_ca_file when it serves HTTPS); returns parsed JSON
 * (caller puts). */
static inline struct json_object *rel_sim_get(const struct it_sfsim *s, const char *path)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", s->url, path);
    CURL *c = curl_easy_init();
    cr_assert(c);
    struct rel_body b = {calloc(1, 1), 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, rel_on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (rel_ca_file[0])
        curl_easy_setopt(c, CURLOPT_CAINFO, rel_ca_file);
    CURLcode rc = curl_easy_perform(c);
    long st = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    curl_easy_cleanup(c);
    cr_assert_eq(rc, CURLE_OK, "GET %s: %s", url, curl_easy_strerror(rc));
    cr_assert(st == 200, "GET %s -> %ld %s", path, st, b.d);
    struct json_object *o = json_tokener_parse(b.d);
    cr_assert(o, "GET %s: not JSON: %.200s", path, b.d);
    free(b.d);
    return o;
}

/* Number of REST requests the emulator logged (GET /__sim/stats total). */
static inline long long rel_sim_total(const struct it_sfsim *s)
{
    struct json_object *o = rel_sim_get(s, "/__sim/stats");
    long long n = json_get_int(o, "total", -1);
    json_object_put(o);
    return n;
}

/* utime + stime of pid in clock ticks, -1 when unknown. */
static inline long long rel_proc_cpu_ticks(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    /* fields after ")": state(3) ... utime(14) stime(15) */
    long long ut = 0, st = 0;
    int field = 2;
    for (char *tok = p + 2; *tok && field < 15;) {
        field++;
        char *end = strchr(tok, ' ');
        if (field == 14)
            ut = strtoll(tok, NULL, 10);
        if (field == 15)
            st = strtoll(tok, NULL, 10);
        if (!end)
            break;
        tok = end + 1;
    }
    return ut + st;
}

/* Read a whole worker log (build/test-logs/<label>-<pid>.log); caller frees; "" when absent. */
static inline char *rel_worker_log(const char *label, pid_t pid)
{
    char path[256];
    snprintf(path, sizeof path, "build/test-logs/%s-%d.log", label, (int)pid);
    char *s = it_read_file(path);
    return s ? s : strdup("");
}

#endif
