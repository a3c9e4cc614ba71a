/*
 * Integration: the write worker retries records Salesforce refuses with
 * UNABLE_TO_LOCK_ROW inside a 200 answer (statusCode of an sObject
 * Collections record, errorCode of a composite subrequest) — not only the
 * HTTP-level 400 sf_call retries. Real rig: emulator + Kafka + PostgreSQL, the
 * real sfbridge-write binary (SFBRIDGE_MAX_BACKOFF_MS=500). The emulator fault
 * `lock_row_next` K refuses the next K record writes, per record in a
 * collection and per subrequest in a composite.
 *   - 300 contacts (all_or_none false), lock_row_next 3: succeeded; the three
 *     locked records (the first three written) and only they are sent again,
 *     in one extra collection call whose body is exactly three records long;
 *     api_calls 3; every contact once at the emulator; one audit row per
 *     record; attempts 2 on exactly the three intents;
 *   - the same with all_or_none (the default): the lock error rolled the whole
 *     collection back, so those 200 are sent again (and nothing else);
 *   - a meeting-notes bundle (one all-or-none composite), lock_row_next 1: the
 *     whole composite is sent once more and succeeds, nothing duplicated;
 *   - a lock that never clears: 5 calls, then failed UNABLE_TO_LOCK_ROW with
 *     one audit row per record.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
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

#include "it_write_lib.h"
}

/* The emulator's request log entries for an endpoint path prefix, in order (owned array). */
static struct json_object *sim_requests(struct wenv *w, const char *path_prefix)
{
    char url[300];
    snprintf(url, sizeof url, "%s/__sim/requests", w->sim.url);
    struct json_object *all = http_json("GET", url, NULL), *out = json_object_new_array();
    struct json_object *list = json_object_is_type(all, json_type_array) ? all : json_get(all, "requests");
    cr_assert(list && json_object_is_type(list, json_type_array), "request log: %s", json_object_to_json_string(all));
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        struct json_object *r = json_object_array_get_idx(list, i);
        const char *p = json_get_str(r, "path");
        if (p && strstr(p, path_prefix))
            json_object_array_add(out, json_object_get(r));
    }
    json_object_put(all);
    return out;
}

static long long req_size(struct json_object *reqs, size_t i)
{
    return json_get_int(json_object_array_get_idx(reqs, i), "body_size", -1);
}

/* 300 contact creates of equal size (3-digit numbers), linked to the account. */
static char *contacts_message(const char *id, const char *conn, const char *acct, bool aon)
{
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    cr_assert(buf);
    len += (size_t)snprintf(buf + len, cap - len,
                            "{\"message_id\":\"%s\",\"org_id\":\"acme\",\"connection_id\":\"%s\",\"created_at\":"
                            "\"2026-12-03T16:20:00Z\",\"actor\":\"workflow:cim-extract/run-9001\",\"source\":\"cim\","
                            "%s\"operations\":[",
                            id, conn, aon ? "" : "\"all_or_none\":false,");
    for (int i = 0; i < 300; i++)
        len += (size_t)snprintf(buf + len, cap - len,
                                "%s{\"ref\":\"c%03d\",\"object\":\"Contact\",\"action\":\"upsert\",\"match\":{\"email\":"
                                "\"person%03d@fabrikam.example\"},\"fields\":{\"first_name\":\"P%03d\",\"last_name\":"
                                "\"Person %03d\",\"email\":\"person%03d@fabrikam.example\",\"title\":\"VP\"},"
                                "\"links\":{\"company\":\"%s\"}}",
                                i ? "," : "", i, i, i, i, i, acct);
    snprintf(buf + len, cap - len, "]}");
    return buf;
}

/* Every contact once at the emulator, one audit row per record, all created. */
static void assert_300_once(struct wenv *w, const char *id, const char *acct, struct json_object *ev)
{
    struct json_object *recs = sim_records(w, "Contact", "AccountId", acct);
    cr_assert_eq(json_object_array_length(recs), 300, "300 contacts at the emulator, got %zu",
                 json_object_array_length(recs));
    static char seen[300];
    memset(seen, 0, sizeof seen);
    for (size_t i = 0; i < json_object_array_length(recs); i++) {
        const char *em = json_get_str(json_object_array_get_idx(recs, i), "Email");
        int k = -1;
        cr_assert(em && sscanf(em, "person%d@", &k) == 1 && k >= 0 && k < 300, "unexpected contact %s", em);
        cr_assert_eq(seen[k], 0, "contact %s is there twice", em);
        seen[k] = 1;
    }
    json_object_put(recs);
    cr_assert_eq(sim_count(w, "Contact", NULL, NULL), 300, "no other contact");
    struct json_object *rs = json_get(ev, "results");
    cr_assert_eq(json_object_array_length(rs), 300);
    for (size_t i = 0; i < 300; i++) {
        struct json_object *r = json_object_array_get_idx(rs, i);
        cr_assert_str_eq(json_get_str(r, "outcome"), "created", "%s", json_object_to_json_string(r));
        cr_assert(json_get_str(r, "salesforce_id"), "%s", json_object_to_json_string(r));
    }
    cr_assert_eq(sqlv(w, "SELECT count(*) FROM audit_log WHERE request_id = '%s'", id), 300,
                 "one audit row per record, not one per attempt");
    cr_assert_eq(sqlv(w, "SELECT count(DISTINCT ref) FROM audit_log WHERE request_id = '%s' AND outcome = "
                         "'created' AND sf_error_code IS NULL AND salesforce_id IS NOT NULL",
                      id),
                 300, "each with its final outcome");
    cr_assert_eq(sqlv(w, "SELECT count(*) FROM write_intents WHERE request_id = '%s' AND state = 'succeeded'", id),
                 300);
    cr_assert_eq(it_sql_long(&w->env, "SELECT count(*) FROM contacts WHERE salesforce_id IS NOT NULL"), 300,
                 "every contact mirrored locally once");
}

static void audit_chain_ok(struct wenv *w)
{
    struct err e = ERR_INIT;
    struct pg *db = pg_open(w->env.dsn, 5000, &e);
    cr_assert(db, "%s", e.msg);
    long long rows = 0, bad = -1;
    char org[64], reason[512];
    cr_assert(audit_verify(db, "acme", &rows, &bad, org, sizeof org, reason, sizeof reason, &e), "%s", e.msg);
    cr_assert_eq(bad, 0, "audit chain: %s", reason);
    pg_close(&db);
}

Test(it_write_lock, collection_resends_only_the_locked_records, .timeout = 180)
{
    struct wenv w;
    setup(&w);
    char *acct = sim_create(&w, "Account", "{\"Name\":\"Fabrikam\"}");
    char id[37];
    it_uuid(id);
    char *buf = contacts_message(id, w.conn, acct, false);
    sim_post(&w, "/__sim/reset", "{}");
    sim_post(&w, "/__sim/faults", "{\"lock_row_next\":3}");
    w.worker = start_writer(&w, NULL, NULL, "write-lock-coll");
    produce(&w, buf);
    int n = 0;
    struct json_object *ev = written(&w, 1, id, &n);
    cr_assert_eq(n, 1, "one record.written");
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%.3000s", json_object_to_json_string(ev));
    cr_assert_eq(json_get_int(ev, "api_calls", -1), 3, "2 collections + 1 re-send: %lld",
                 (long long)json_get_int(ev, "api_calls", -1));
    cr_assert_eq(sim_stat(&w, "collections"), 3, "200, then the 3 locked ones again, then 100");
    cr_assert_eq(sim_stat(&w, NULL), 3, "and nothing else");

    /* the re-send holds exactly the three locked records: every record body has the same size, so the
       request sizes are overhead + n * (record + comma) - 1 */
    struct json_object *reqs = sim_requests(&w, "/composite/sobjects/Contact/Platform_Id__c");
    cr_assert_eq(json_object_array_length(reqs), 3, "%s", json_object_to_json_string(reqs));
    long long b200 = req_size(reqs, 0), b3 = req_size(reqs, 1), b100 = req_size(reqs, 2);
    long long per = (b200 - b100) / 100;
    cr_assert_eq((b200 - b100) % 100, 0, "equal records: %lld %lld", b200, b100);
    cr_assert_eq(b3, b100 - 97 * per, "the re-send carries 3 records: sizes %lld, %lld, %lld (record %lld)", b200, b3,
                 b100, per);
    json_object_put(reqs);
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM write_intents WHERE request_id = '%s' AND attempts = 2 AND ref IN "
                          "('c000','c001','c002')",
                      id),
                 3, "the three records refused first were sent twice");
    cr_assert_eq(sqlv(&w, "SELECT sum(attempts) FROM write_intents WHERE request_id = '%s'", id), 303,
                 "the others once");
    assert_300_once(&w, id, acct, ev);
    audit_chain_ok(&w);
    json_object_put(ev);
    free(buf);
    free(acct);
    teardown(&w);
}

Test(it_write_lock, all_or_none_collection_resends_what_the_lock_rolled_back, .timeout = 180)
{
    struct wenv w;
    setup(&w);
    char *acct = sim_create(&w, "Account", "{\"Name\":\"Fabrikam\"}");
    char id[37];
    it_uuid(id);
    char *buf = contacts_message(id, w.conn, acct, true);
    sim_post(&w, "/__sim/reset", "{}");
    sim_post(&w, "/__sim/faults", "{\"lock_row_next\":3}");
    w.worker = start_writer(&w, NULL, NULL, "write-lock-aon");
    produce(&w, buf);
    struct json_object *ev = written(&w, 1, id, NULL);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%.3000s", json_object_to_json_string(ev));
    cr_assert_eq(json_get_int(ev, "api_calls", -1), 3);
    cr_assert_eq(sim_stat(&w, NULL), 3);
    struct json_object *reqs = sim_requests(&w, "/composite/sobjects/Contact/Platform_Id__c");
    cr_assert_eq(json_object_array_length(reqs), 3, "%s", json_object_to_json_string(reqs));
    cr_assert_eq(req_size(reqs, 1), req_size(reqs, 0), "the rolled-back 200 are sent again as they were");
    cr_assert_lt(req_size(reqs, 2), req_size(reqs, 0));
    json_object_put(reqs);
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM write_intents WHERE request_id = '%s' AND attempts = 2", id), 200);
    assert_300_once(&w, id, acct, ev);
    json_object_put(ev);
    free(buf);
    free(acct);
    teardown(&w);
}

Test(it_write_lock, composite_resent_whole_after_a_lock, .timeout = 180)
{
    struct wenv w;
    setup(&w);
    char *li = existing_contact(&w, "litware");
    char id[37], buf[8192];
    it_uuid(id);
    bundle(buf, sizeof buf, id, w.conn, "litware", false);
    sim_post(&w, "/__sim/reset", "{}");
    sim_post(&w, "/__sim/faults", "{\"lock_row_next\":1}");
    w.worker = start_writer(&w, NULL, NULL, "write-lock-composite");
    produce(&w, buf);
    struct json_object *ev = written(&w, 1, id, NULL);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", json_object_to_json_string(ev));
    cr_assert_eq(json_get_int(ev, "api_calls", -1), 2, "the composite and its one re-send");
    cr_assert_eq(sim_stat(&w, "composite"), 2);
    cr_assert_eq(sim_stat(&w, NULL), 2, "and nothing else");
    struct json_object *reqs = sim_requests(&w, "/composite");
    cr_assert_eq(json_object_array_length(reqs), 2);
    cr_assert_eq(req_size(reqs, 1), req_size(reqs, 0), "the whole composite is sent again");
    json_object_put(reqs);
    cr_assert_str_eq(json_get_str(result_of(ev, "company"), "outcome"), "created");
    cr_assert_str_eq(json_get_str(result_of(ev, "contact-3"), "salesforce_id"), li);
    cr_assert_str_eq(json_get_str(result_of(ev, "contact-3"), "outcome"), "updated");
    cr_assert_eq(sim_count(&w, "Account", NULL, NULL), 1, "no duplicate");
    cr_assert_eq(sim_count(&w, "Contact", NULL, NULL), 3);
    cr_assert_eq(sim_count(&w, "Opportunity", NULL, NULL), 1);
    cr_assert_eq(sim_count(&w, "Interaction", NULL, NULL), 1);
    cr_assert_eq(sim_count(&w, "InteractionAttendee", NULL, NULL), 3);
    char acct[40], v[64];
    sim_field(&w, "Account", "Website", "https://litware.example", "Id", acct, sizeof acct);
    cr_assert_str_eq(json_get_str(result_of(ev, "company"), "salesforce_id"), acct);
    sim_field(&w, "Contact", "Email", "ana@litware.example", "AccountId", v, sizeof v);
    cr_assert_str_eq(v, acct);
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM audit_log WHERE request_id = '%s'", id), 6, "one audit row per record");
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM audit_log WHERE request_id = '%s' AND outcome IN ('created','updated') "
                          "AND sf_error_code IS NULL",
                      id),
                 6);
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM write_intents WHERE request_id = '%s' AND state = 'succeeded' AND "
                          "attempts = 2",
                      id),
                 6);
    cr_assert_eq(it_sql_long(&w.env, "SELECT count(*) FROM companies"), 1);
    cr_assert_eq(it_sql_long(&w.env, "SELECT count(*) FROM activities WHERE cardinality(contact_ids) = 3"), 1);
    audit_chain_ok(&w);
    json_object_put(ev);
    free(li);
    teardown(&w);
}

Test(it_write_lock, lock_that_never_clears_fails_after_5_calls, .timeout = 120)
{
    struct wenv w;
    setup(&w);
    char id[37], buf[2048];
    it_uuid(id);
    snprintf(buf, sizeof buf,
             "{\"message_id\":\"%s\",\"org_id\":\"acme\",\"connection_id\":\"%s\",\"created_at\":"
             "\"2026-12-03T16:20:00Z\",\"actor\":\"user:1\",\"source\":\"chat\",\"all_or_none\":false,"
             "\"operations\":[{\"ref\":\"a\",\"object\":\"Contact\",\"action\":\"create\",\"fields\":{\"last_name\":"
             "\"Stuck\",\"email\":\"stuck@x.example\"}},{\"ref\":\"b\",\"object\":\"Contact\",\"action\":\"create\","
             "\"fields\":{\"last_name\":\"Stuck Too\",\"email\":\"stuck2@x.example\"}}]}",
             id, w.conn);
    sim_post(&w, "/__sim/reset", "{}");
    sim_post(&w, "/__sim/faults", "{\"lock_row_next\":1000}");
    w.worker = start_writer(&w, NULL, NULL, "write-lock-stuck");
    produce(&w, buf);
    struct json_object *ev = written(&w, 1, id, NULL);
    cr_assert_str_eq(json_get_str(ev, "status"), "failed", "%s", json_object_to_json_string(ev));
    cr_assert_str_eq(json_get_str(json_get(ev, "error"), "code"), "UNABLE_TO_LOCK_ROW");
    cr_assert_str_eq(json_get_str(json_get(result_of(ev, "b"), "error"), "code"), "UNABLE_TO_LOCK_ROW");
    cr_assert_eq(json_get_int(ev, "api_calls", -1), 5, "bounded: 5 calls");
    cr_assert_eq(sim_stat(&w, NULL), 5);
    cr_assert_eq(sim_count(&w, "Contact", NULL, NULL), 0);
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM audit_log WHERE request_id = '%s' AND outcome = 'failed' AND "
                          "sf_error_code = 'UNABLE_TO_LOCK_ROW'",
                      id),
                 2, "one audit row per record with its final outcome");
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM audit_log WHERE request_id = '%s'", id), 2);
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM write_intents WHERE request_id = '%s' AND state = 'failed' AND "
                          "attempts = 5",
                      id),
                 2);
    json_object_put(ev);
    teardown(&w);
}
