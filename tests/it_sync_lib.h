/*
 * Helpers shared by the sync integration tests (tests/it_sync*.c), header-only
 * so each test binary stays one file: org + connected connection against a
 * running emulator, mapping import through the CLI, sync requests, waiting
 * for completions, a checksum over the mapped columns.
 */
#ifndef SFBRIDGE_IT_SYNC_LIB_H
#define SFBRIDGE_IT_SYNC_LIB_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "conn.h"
#include "crypto.h"
#include "itlib.h"
#include "json.h"
#include "pg.h"

#define ITS_TOKEN_KEY "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

static inline void its_setenv(const struct it_sfsim *sim)
{
    setenv("SFBRIDGE_TOKEN_KEY", ITS_TOKEN_KEY, 1);
    setenv("SF_LOGIN_URL", sim->url, 1);
}

/* An enabled org with one connected connection holding a fresh emulator token. */
static inline void its_connection(const struct it_env *env, const struct it_sfsim *sim, const char *org, char conn[37])
{
    its_setenv(sim);
    long st = 0;
    char url[256];
    snprintf(url, sizeof url, "%s/__sim/token", sim->url);
    char *body = it_http("GET", url, NULL, &st);
    cr_assert_eq(st, 200, "emulator token shortcut failed: %ld %s", st, body ? body : "");
    struct err e = ERR_INIT;
    struct json_object *tok = json_parse(body, strlen(body), &e);
    cr_assert(tok, "%s", e.msg);
    const char *access = json_get_str(tok, "access_token");
    cr_assert(access && strchr(access, '!'));
    char sforg[24];
    snprintf(sforg, sizeof sforg, "%.*s", (int)(strchr(access, '!') - access), access);
    it_uuid(conn);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO organizations (org_id, salesforce_enabled, enabled_by, enabled_at) VALUES ('%s', true, 'it', now()) "
             "ON CONFLICT DO NOTHING;"
             "INSERT INTO connections (connection_id, org_id, user_id, status, instance_url, sf_org_id) "
             "VALUES ('%s', '%s', 'u-%s', 'connected', '%s', '%s');",
             org, conn, org, conn, sim->url, sforg);
    it_sql_ok(env, sql);
    struct cfg cfg;
    cr_assert(cfg_load(&cfg));
    /* sealed like conn_store_tokens does (AES-256-GCM, AAD = key id) */
    unsigned char key[32];
    cr_assert(conn_key(&cfg, key, &e), "%s", e.msg);
    char *sealed = crypto_seal(key, "k1", access, &e);
    char *sealed_rt = crypto_seal(key, "k1", "5Aep-not-a-real-refresh-token", &e);
    cr_assert(sealed && sealed_rt, "%s", e.msg);
    struct pg *db = pg_open(env->dsn, 5000, &e);
    cr_assert(db, "%s", e.msg);
    const char *p[3] = {conn, sealed, sealed_rt};
    cr_assert(pg_run(db, "UPDATE connections SET access_token_enc = $2, refresh_token_enc = $3, token_key_id = 'k1', "
                         "token_version = token_version + 1 WHERE connection_id = $1",
                     3, p, &e),
              "%s", e.msg);
    pg_close(&db);
    free(sealed);
    free(sealed_rt);
    json_object_put(tok);
    free(body);
}

/* Run the admin CLI with the test database; returns its exit code, output in out. */
static inline int its_cli(const struct it_env *env, const char *args, char *out, size_t cap)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "SFBRIDGE_PG_DSN='%s' SFBRIDGE_TOKEN_KEY='%s' %s/sfbridge %s 2>&1", env->dsn,
             ITS_TOKEN_KEY, env->bindir, args);
    FILE *f = popen(cmd, "r");
    cr_assert(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    int rc = pclose(f);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static inline void its_import(const struct it_env *env, const char *org, const char *file)
{
    char args[512], out[4096];
    snprintf(args, sizeof args, "mappings import --org %s --by it-admin %s", org, file);
    int rc = its_cli(env, args, out, sizeof out);
    cr_assert_eq(rc, 0, "mappings import failed (%d): %s", rc, out);
}

/* Produce a sync.requested; objects is a JSON array text or NULL. id_out gets its message_id. */
static inline void its_request(const struct it_env *env, const char *org, const char *conn, const char *mode,
                               const char *objects, char id_out[37])
{
    char id[37], buf[1024];
    it_uuid(id);
    int n = snprintf(buf, sizeof buf,
                     "{\"message_id\":\"%s\",\"org_id\":\"%s\",\"connection_id\":\"%s\",\"created_at\":\"2026-12-03T10:00:00Z\","
                     "\"mode\":\"%s\",%s%s%s\"requested_by\":\"it\"}",
                     id, org, conn, mode, objects ? "\"objects\":" : "", objects ? objects : "", objects ? "," : "");
    it_produce(env, "sync.requested", conn, buf, (size_t)n);
    if (id_out)
        memcpy(id_out, id, 37);
}

/* Wait until `total` sync.completed exist and one answers `id`; returns it (caller frees). */
static inline struct json_object *its_completion(const struct it_env *env, const char *id, int total, int timeout_ms)
{
    struct it_msgs m;
    char needle[64];
    snprintf(needle, sizeof needle, "\"request_id\":\"%s\"", id);
    long long deadline = (long long)time(NULL) * 1000 + timeout_ms;
    for (;;) {
        it_consume(env, "sync.completed", total, 5000, 300, &m);
        for (int i = 0; i < m.n; i++) {
            if (strstr(m.m[i].payload, needle)) {
                struct err e = ERR_INIT;
                struct json_object *o = json_parse(m.m[i].payload, m.m[i].len, &e);
                it_msgs_free(&m);
                cr_assert(o, "%s", e.msg);
                return o;
            }
        }
        it_msgs_free(&m);
        cr_assert((long long)time(NULL) * 1000 < deadline, "no sync.completed for %s within %d ms", id, timeout_ms);
    }
}

static inline long long its_count(struct json_object *ev, const char *obj, const char *what)
{
    struct json_object *o = json_get(json_get(ev, "objects"), obj);
    cr_assert(o, "no counts for %s in %s", obj, json_object_to_json_string(ev));
    return json_get_int(o, what, -1);
}

/* md5 over the mapped columns of the four tables (links by Salesforce id, never by uuid) */
static inline char *its_checksum(const struct it_env *env)
{
    return it_sql(env,
                  "SELECT md5(concat("
                  "(SELECT string_agg(concat_ws('|', org_id, salesforce_id, name, website, industry, type, phone, "
                  "  billing_city, billing_country, annual_revenue, employees, owner_id, attributes::text, sf_modstamp, "
                  "  deleted_at IS NULL), E'\\n' ORDER BY org_id, salesforce_id) FROM companies),"
                  "(SELECT string_agg(concat_ws('|', d.org_id, d.salesforce_id, d.company_sf_id, c.salesforce_id, d.name, "
                  "  d.stage, d.amount, d.close_date, d.probability, d.type, d.owner_id, d.attributes::text, d.sf_modstamp, "
                  "  d.deleted_at IS NULL), E'\\n' ORDER BY d.org_id, d.salesforce_id) FROM deals d "
                  "  LEFT JOIN companies c ON c.id = d.company_id),"
                  "(SELECT string_agg(concat_ws('|', t.org_id, t.salesforce_id, t.company_sf_id, c.salesforce_id, "
                  "  t.first_name, t.last_name, t.email, t.phone, t.title, t.owner_id, t.attributes::text, t.sf_modstamp, "
                  "  t.deleted_at IS NULL), E'\\n' ORDER BY t.org_id, t.salesforce_id) FROM contacts t "
                  "  LEFT JOIN companies c ON c.id = t.company_id),"
                  "(SELECT string_agg(concat_ws('|', a.org_id, a.salesforce_id, a.sf_object, a.company_sf_id, "
                  "  c.salesforce_id, a.subject, a.activity_type, a.start_time, a.end_time, a.description, a.owner_id, "
                  "  a.attributes::text, a.sf_modstamp, a.deleted_at IS NULL), E'\\n' ORDER BY a.org_id, a.salesforce_id) "
                  "  FROM activities a LEFT JOIN companies c ON c.id = a.company_id)))");
}

/* number of emulator requests whose path contains `path_part` and query contains `q_part` */
static inline int its_sim_requests(const struct it_sfsim *sim, const char *path_part, const char *q_part)
{
    char url[256];
    snprintf(url, sizeof url, "%s/__sim/requests", sim->url);
    long st = 0;
    char *body = it_http("GET", url, NULL, &st);
    cr_assert_eq(st, 200);
    struct err e = ERR_INIT;
    struct json_object *a = json_parse(body, strlen(body), &e);
    cr_assert(a, "%s", e.msg);
    int n = 0;
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        struct json_object *r = json_object_array_get_idx(a, i);
        const char *p = json_get_str(r, "path"), *q = json_get_str(r, "query");
        if (p && strstr(p, path_part) && (!q_part || (q && strstr(q, q_part))))
            n++;
    }
    json_object_put(a);
    free(body);
    return n;
}

static inline char *its_sim(const struct it_sfsim *sim, const char *method, const char *path, const char *body,
                            long *status)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", sim->url, path);
    return it_http(method, url, body, status);
}

#endif
