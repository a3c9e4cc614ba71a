/*
 * it_write_lib: the harness shared by the write worker's integration tests
 * (tests/it_write.c, tests/it_write_lock.c): a fresh database + topics, the
 * emulator, an enabled org with a connected connection and export mappings,
 * the real sfbridge-write binary, and helpers to read back what the emulator
 * holds and what the worker answered. Static functions: each test file gets
 * its own copy.
 */
#ifndef SFBRIDGE_IT_WRITE_LIB_H
#define SFBRIDGE_IT_WRITE_LIB_H

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "crypto.h"
#include "itlib.h"
#include "json.h"
#include "pg.h"
#include "sf.h"

struct wenv {
    struct it_env env;
    struct it_sfsim sim;
    char conn[37];
    char key_env[128];
    char login_env[200];
    pid_t worker;
};

static const char *MAPPINGS_SQL =
    "INSERT INTO object_mappings (org_id, sf_object, platform_object) VALUES "
    "('acme','Account','Company'),('acme','Contact','Contact'),('acme','Opportunity','Deal'),"
    "('acme','Interaction','Activity');"
    "INSERT INTO field_mappings (org_id, sf_object, sf_field, platform_field, direction, transform, is_match_key) "
    "VALUES "
    "('acme','Account','Name','name','both','trim',true),"
    "('acme','Account','Website','website','both','trim|lower',true),"
    "('acme','Account','Industry','industry','both',NULL,false),"
    "('acme','Account','NumberOfEmployees','employees','both','integer',false),"
    "('acme','Account','Tier__c','tier','both',NULL,false),"
    "('acme','Contact','AccountId','company_sf_id','both',NULL,false),"
    "('acme','Contact','FirstName','first_name','both','trim',false),"
    "('acme','Contact','LastName','last_name','both','trim',false),"
    "('acme','Contact','Email','email','both','trim|lower',true),"
    "('acme','Contact','Phone','phone','both',NULL,false),"
    "('acme','Contact','Title','title','both',NULL,false),"
    "('acme','Opportunity','AccountId','company_sf_id','both',NULL,false),"
    "('acme','Opportunity','Name','name','both','trim',false),"
    "('acme','Opportunity','StageName','stage','both',NULL,false),"
    "('acme','Opportunity','Amount','amount','both','number',false),"
    "('acme','Opportunity','CloseDate','close_date','both','date',false),"
    "('acme','Opportunity','Probability','probability','both','number',false),"
    "('acme','Interaction','AccountId','company_sf_id','both',NULL,false),"
    "('acme','Interaction','Name','subject','both','trim',false),"
    "('acme','Interaction','InteractionType','activity_type','both',NULL,false),"
    "('acme','Interaction','StartTime','start_time','both','datetime',false),"
    "('acme','Interaction','Description','description','both',NULL,false),"
    "('acme','Interaction','RelatedRecordId','deal_sf_id','both',NULL,false);";

static struct json_object *http_json(const char *method, const char *url, const char *body)
{
    long st = 0;
    char *b = it_http(method, url, body, &st);
    cr_assert(b, "%s %s: no answer", method, url);
    cr_assert(st >= 200 && st < 300, "%s %s -> %ld: %s", method, url, st, b);
    struct err e = ERR_INIT;
    struct json_object *o = json_parse(b, strlen(b), &e);
    cr_assert(o, "%s %s: not JSON: %s", method, url, b);
    free(b);
    return o;
}

static void sim_post(struct wenv *w, const char *path, const char *body)
{
    char url[300];
    long st = 0;
    snprintf(url, sizeof url, "%s%s", w->sim.url, path);
    char *b = it_http("POST", url, body, &st);
    cr_assert(st >= 200 && st < 300, "POST %s -> %ld: %s", url, st, b ? b : "");
    free(b);
}

static long long sim_stat(struct wenv *w, const char *endpoint)
{
    char url[300];
    snprintf(url, sizeof url, "%s/__sim/stats", w->sim.url);
    struct json_object *o = http_json("GET", url, NULL);
    long long v = endpoint ? json_get_int(json_get(o, "by_endpoint"), endpoint, 0) : json_get_int(o, "total", -1);
    json_object_put(o);
    return v;
}

/* Records of a type at the emulator, optionally where Field=value (value url-encoded here). */
static struct json_object *sim_records(struct wenv *w, const char *type, const char *field, const char *value)
{
    char url[600];
    if (field) {
        char *v = sf_urlencode(value);
        snprintf(url, sizeof url, "%s/__sim/records/%s?where=%s=%s", w->sim.url, type, field, v);
        free(v);
    } else {
        snprintf(url, sizeof url, "%s/__sim/records/%s", w->sim.url, type);
    }
    struct json_object *o = http_json("GET", url, NULL);
    struct json_object *recs = NULL;
    json_object_deep_copy(json_get(o, "records"), &recs, NULL);
    json_object_put(o);
    cr_assert(recs);
    return recs;
}

static int sim_count(struct wenv *w, const char *type, const char *field, const char *value)
{
    struct json_object *r = sim_records(w, type, field, value);
    int n = (int)json_object_array_length(r);
    json_object_put(r);
    return n;
}

/* One record's field (copied into out) by Field=value; asserts exactly one record. */
static void sim_field(struct wenv *w, const char *type, const char *where, const char *value, const char *field,
                      char *out, size_t cap)
{
    struct json_object *r = sim_records(w, type, where, value);
    cr_assert_eq(json_object_array_length(r), 1, "expected one %s with %s=%s, got %zu", type, where, value,
                 json_object_array_length(r));
    const char *v = json_get_str(json_object_array_get_idx(r, 0), field);
    snprintf(out, cap, "%s", v ? v : "");
    json_object_put(r);
}

static char *sim_create(struct wenv *w, const char *type, const char *fields_json)
{
    char url[300];
    snprintf(url, sizeof url, "%s/__sim/records/%s", w->sim.url, type);
    struct json_object *o = http_json("POST", url, fields_json);
    char *id = strdup(json_get_str(o, "id"));
    json_object_put(o);
    return id;
}

static void setup(struct wenv *w)
{
    memset(w, 0, sizeof *w);
    it_env_init(&w->env);
    it_sfsim_start(&w->env, &w->sim, NULL);
    it_sql_ok(&w->env, "INSERT INTO organizations (org_id, salesforce_enabled, enabled_by, enabled_at) "
                       "VALUES ('acme', true, 'admin', now())");
    it_sql_ok(&w->env, MAPPINGS_SQL);

    unsigned char key[32];
    cr_assert(crypto_random_bytes(key, sizeof key));
    char *b64 = crypto_b64_encode(key, sizeof key, false, true);
    snprintf(w->key_env, sizeof w->key_env, "SFBRIDGE_TOKEN_KEY=%s", b64);
    free(b64);
    snprintf(w->login_env, sizeof w->login_env, "SF_LOGIN_URL=%s", w->sim.url);

    char url[300];
    snprintf(url, sizeof url, "%s/__sim/token", w->sim.url);
    struct json_object *t = http_json("GET", url, NULL);
    struct err e = ERR_INIT;
    char *sealed = crypto_seal(key, "k1", json_get_str(t, "access_token"), &e);
    cr_assert(sealed, "%s", e.msg);
    it_uuid(w->conn);
    struct pg *db = pg_open(w->env.dsn, 5000, &e);
    cr_assert(db, "%s", e.msg);
    const char *p[4] = {w->conn, json_get_str(t, "instance_url"), sealed, "k1"};
    cr_assert(pg_run(db,
                     "INSERT INTO connections (connection_id, org_id, user_id, instance_url, status, "
                     "access_token_enc, token_key_id, token_version, issued_at, connected_at) "
                     "VALUES ($1, 'acme', 'u1', $2, 'connected', $3, $4, 1, now(), now())",
                     4, p, &e),
              "%s", e.msg);
    pg_close(&db);
    free(sealed);
    json_object_put(t);
}

static pid_t start_writer(struct wenv *w, const char *fault, const char *group, const char *label)
{
    char fault_env[100], group_env[160];
    const char *extra[8] = {w->key_env, "SFBRIDGE_TOKEN_KEY_ID=k1", w->login_env, "SFBRIDGE_MAX_BACKOFF_MS=500"};
    int n = 4;
    if (fault) {
        snprintf(fault_env, sizeof fault_env, "SFBRIDGE_FAULT=%s", fault);
        extra[n++] = fault_env;
    }
    if (group) {
        snprintf(group_env, sizeof group_env, "SFBRIDGE_GROUP_ID=%s", group);
        extra[n++] = group_env;
    }
    extra[n] = NULL;
    return it_spawn(&w->env, "sfbridge-write", extra, label);
}

static void teardown(struct wenv *w)
{
    if (w->worker > 0)
        cr_assert_eq(it_stop(w->worker, 30000), 0, "SIGTERM must drain and exit 0");
    it_sfsim_stop(&w->sim);
}

static void produce(struct wenv *w, const char *msg)
{
    it_produce(&w->env, "record.write", w->conn, msg, strlen(msg));
}

/* The n-th record.written answering request `id` (waits for `want` events on the topic in total). */
static struct json_object *written(struct wenv *w, int want, const char *id, int *count)
{
    struct it_msgs ms;
    it_consume(&w->env, "record.written", want, 90000, 2000, &ms);
    struct json_object *found = NULL;
    int n = 0;
    for (int i = 0; i < ms.n; i++) {
        if (!strstr(ms.m[i].payload, id))
            continue;
        struct err e = ERR_INIT;
        struct json_object *o = json_parse(ms.m[i].payload, ms.m[i].len, &e);
        cr_assert(o, "record.written is not JSON: %s", ms.m[i].payload);
        if (strcmp(json_get_str(o, "request_id"), id) != 0) {
            json_object_put(o);
            continue;
        }
        n++;
        json_object_put(found);
        found = o;
    }
    it_msgs_free(&ms);
    if (count)
        *count = n;
    cr_assert(found, "no record.written for %s", id);
    return found;
}

static struct json_object *result_of(struct json_object *ev, const char *ref)
{
    struct json_object *rs = json_get(ev, "results");
    for (size_t i = 0; i < json_object_array_length(rs); i++)
        if (!strcmp(json_get_str(json_object_array_get_idx(rs, i), "ref"), ref))
            return json_object_array_get_idx(rs, i);
    cr_assert_fail("no result for ref %s in %s", ref, json_object_to_json_string(ev));
    return NULL;
}

static long long sqlv(struct wenv *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static long long sqlv(struct wenv *w, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    return it_sql_long(&w->env, sql);
}

/* The meeting-notes bundle: new company, 2 new contacts + 1 existing by email, new deal, interaction. */
static int bundle(char *buf, size_t cap, const char *id, const char *conn, const char *company, bool aon_bad)
{
    return snprintf(
        buf, cap,
        "{\"message_id\":\"%s\",\"org_id\":\"acme\",\"connection_id\":\"%s\",\"created_at\":\"2026-12-03T15:02:11Z\","
        "\"actor\":\"user:5c2e91d0\",\"source\":\"meeting_notes\",\"all_or_none\":true,\"operations\":["
        "{\"ref\":\"company\",\"object\":\"Company\",\"action\":\"upsert\",\"match\":{\"website\":\"https://%s.example\"},"
        "\"fields\":{\"name\":\"%s Analytics\",\"website\":\"https://%s.example\",\"industry\":\"Technology\","
        "\"employees\":240}},"
        "{\"ref\":\"contact-1\",\"object\":\"Contact\",\"action\":\"create\",\"fields\":{\"first_name\":\"Ana\","
        "\"last_name\":\"M\\u00fcller\",\"email\":\"ana@%s.example\",\"title\":\"CFO\"},\"links\":{\"company\":\"company\"}},"
        "{\"ref\":\"contact-2\",\"object\":\"Contact\",\"action\":\"create\",\"fields\":{\"first_name\":\"Kenji\","
        "%s\"email\":\"kenji@%s.example\",\"title\":\"Head of Data\"},\"links\":{\"company\":\"company\"}},"
        "{\"ref\":\"contact-3\",\"object\":\"Contact\",\"action\":\"upsert\",\"match\":{\"email\":\"li.wei@%s.example\"},"
        "\"fields\":{\"first_name\":\"Li\",\"last_name\":\"Wei\",\"phone\":\"+41 44 555 01 23\"},"
        "\"links\":{\"company\":\"company\"}},"
        "{\"ref\":\"deal\",\"object\":\"Deal\",\"action\":\"create\",\"fields\":{\"name\":\"%s Series B\","
        "\"stage\":\"Qualification\",\"amount\":25000000,\"close_date\":\"2027-03-31\",\"probability\":20},"
        "\"links\":{\"company\":\"company\"}},"
        "{\"ref\":\"meeting\",\"object\":\"Activity\",\"action\":\"create\",\"fields\":{\"subject\":\"Intro call with "
        "%s\",\"activity_type\":\"Phone Call\",\"start_time\":\"2026-12-03T14:00:00Z\",\"description\":\"Next step: "
        "data room.\"},\"links\":{\"company\":\"company\",\"deal\":\"deal\",\"contacts\":[\"contact-1\","
        "\"contact-2\",\"contact-3\"]}}]}",
        id, conn, company, company, company, company, aon_bad ? "" : "\"last_name\":\"Sato\",", company, company,
        company, company);
}

/* Li Wei exists at the emulator and was synced before (a local row with her Salesforce id). */
static char *existing_contact(struct wenv *w, const char *company)
{
    char f[300];
    snprintf(f, sizeof f, "{\"FirstName\":\"Li\",\"LastName\":\"Wei\",\"Email\":\"li.wei@%s.example\"}", company);
    char *id = sim_create(w, "Contact", f);
    char sql[600];
    snprintf(sql, sizeof sql,
             "INSERT INTO contacts (org_id, connection_id, salesforce_id, first_name, last_name, email) VALUES "
             "('acme', '%s', '%s', 'Li', 'Wei', 'li.wei@%s.example')",
             w->conn, id, company);
    it_sql_ok(&w->env, sql);
    return id;

#endif
