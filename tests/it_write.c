/*
 * Integration: the write worker and the audit log (issue 6 acceptance) on the
 * real rig — emulator + Kafka + PostgreSQL. Each test: a fresh database, an
 * enabled org with export mappings, a connection whose token comes from the
 * emulator (stored sealed), the real sfbridge-write binary.
 *   - meeting-notes bundle: one composite call, records and AccountIds at the
 *     emulator, ids in record.written, one audit row per record; the same
 *     message 3 more times and a replay from earliest send nothing;
 *   - CIM: a deal update + 450 contact upserts -> 1 + 3 calls;
 *   - SIGKILL after Salesforce accepted the composite, before the commit:
 *     no duplicate, one audit row per record, one record.written;
 *   - all-or-none with an invalid contact: nothing created, the error names
 *     the ref and the field;
 *   - delete refused, zero requests; audit verify passes, then names a row
 *     edited by a superuser;
 *   - an unmapped field is an error naming it; REQUEST_LIMIT_EXCEEDED defers
 *     and the write completes once the limit is lifted;
 *   - a local mirror that fails (bad cast, salesforce_id held by another row)
 *     keeps the outcome, audit and record.written;
 *   - two replicas with the same request send it once;
 *   - an org without an external-id field looks creates up by match keys,
 *     and a retried create without match keys is OUTCOME_UNKNOWN, not resent;
 *   - 15-character ids become 18; big whole numbers verify in the audit log.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit.h"
#include "crypto.h"
#include "itlib.h"
#include "json.h"
#include "pg.h"
#include "sf.h"

#include "it_write_lib.h"
}

Test(it_write, meeting_notes_bundle_one_composite_and_no_resend, .timeout = 240)
{
    struct wenv w;
    setup(&w);
    char *li = existing_contact(&w, "northwind");
    char id[37], buf[8192];
    it_uuid(id);
    bundle(buf, sizeof buf, id, w.conn, "northwind", false);
    sim_post(&w, "/__sim/reset", "{}");
    w.worker = start_writer(&w, NULL, NULL, "write-bundle");
    produce(&w, buf);
    struct json_object *ev = written(&w, 1, id, NULL);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", json_object_to_json_string(ev));
    cr_assert_eq(json_get_int(ev, "api_calls", -1), 1);
    cr_assert_eq(sim_stat(&w, "composite"), 1, "one composite call");
    cr_assert_eq(sim_stat(&w, NULL), 1, "and nothing else");

    /* the emulator holds exactly those records, linked to the account */
    char acct[40], v[200];
    sim_field(&w, "Account", "Website", "https://northwind.example", "Id", acct, sizeof acct);
    cr_assert_str_eq(json_get_str(result_of(ev, "company"), "salesforce_id"), acct);
    cr_assert_str_eq(json_get_str(result_of(ev, "company"), "outcome"), "created");
    sim_field(&w, "Account", "Website", "https://northwind.example", "Platform_Id__c", v, sizeof v);
    cr_assert_str_eq(v, json_get_str(result_of(ev, "company"), "platform_id"),
                     "creates are upserts on Platform_Id__c valued from the platform id");
    const char *refs[] = {"contact-1", "contact-2", "contact-3"};
    const char *emails[] = {"ana@northwind.example", "kenji@northwind.example", "li.wei@northwind.example"};
    for (int i = 0; i < 3; i++) {
        sim_field(&w, "Contact", "Email", emails[i], "AccountId", v, sizeof v);
        cr_assert_str_eq(v, acct, "%s must belong to the account", refs[i]);
        sim_field(&w, "Contact", "Email", emails[i], "Id", v, sizeof v);
        cr_assert_str_eq(json_get_str(result_of(ev, refs[i]), "salesforce_id"), v);
    }
    cr_assert_str_eq(json_get_str(result_of(ev, "contact-3"), "salesforce_id"), li, "the existing contact by email");
    cr_assert_str_eq(json_get_str(result_of(ev, "contact-3"), "outcome"), "updated");
    sim_field(&w, "Contact", "Email", "li.wei@northwind.example", "Phone", v, sizeof v);
    cr_assert_str_eq(v, "+41 44 555 01 23");
    cr_assert_eq(sim_count(&w, "Contact", "LastName", "Wei"), 1, "no duplicate of the existing contact");
    sim_field(&w, "Opportunity", "Name", "northwind Series B", "AccountId", v, sizeof v);
    cr_assert_str_eq(v, acct);
    sim_field(&w, "Interaction", "Name", "Intro call with northwind", "AccountId", v, sizeof v);
    cr_assert_str_eq(v, acct);
    /* the interaction is linked to the new deal and to every contact (InteractionAttendee), all in the
       one composite call counted above */
    char deal[40], inter[40];
    sim_field(&w, "Opportunity", "Name", "northwind Series B", "Id", deal, sizeof deal);
    cr_assert_str_eq(json_get_str(result_of(ev, "deal"), "salesforce_id"), deal);
    sim_field(&w, "Interaction", "Name", "Intro call with northwind", "RelatedRecordId", v, sizeof v);
    cr_assert_str_eq(v, deal, "Interaction.RelatedRecordId is the new deal");
    sim_field(&w, "Interaction", "Name", "Intro call with northwind", "Id", inter, sizeof inter);
    cr_assert_str_eq(json_get_str(result_of(ev, "meeting"), "salesforce_id"), inter);
    struct json_object *att = sim_records(&w, "InteractionAttendee", "InteractionId", inter);
    cr_assert_eq(json_object_array_length(att), 3, "one attendee per linked contact: %s",
                 json_object_to_json_string(att));
    for (int i = 0; i < 3; i++) {
        const char *cid = json_get_str(result_of(ev, refs[i]), "salesforce_id");
        int hits = 0;
        for (size_t k = 0; k < json_object_array_length(att); k++)
            hits += !strcmp(json_get_str(json_object_array_get_idx(att, k), "ContactId"), cid);
        cr_assert_eq(hits, 1, "%s (%s) must attend exactly once: %s", refs[i], cid, json_object_to_json_string(att));
    }
    json_object_put(att);
    cr_assert_eq(sim_count(&w, "InteractionAttendee", NULL, NULL), 3);
    cr_assert_eq(sim_count(&w, "Account", NULL, NULL), 1);
    cr_assert_eq(sim_count(&w, "Contact", NULL, NULL), 3);

    /* audit: one row per record; local rows mirror the writes */
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM audit_log WHERE request_id = '%s'", id), 6);
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM audit_log WHERE request_id = '%s' AND outcome IN "
                          "('created','updated') AND actor = 'user:5c2e91d0' AND source = 'meeting_notes'",
                      id),
                 6);
    char q[300];
    snprintf(q, sizeof q, "SELECT count(*) FROM contacts WHERE company_id = (SELECT id FROM companies WHERE "
                          "salesforce_id = '%s')",
             acct);
    cr_assert_eq(it_sql_long(&w.env, q), 3, "local contacts linked to the local company");
    snprintf(q, sizeof q, "SELECT count(*) FROM deals d JOIN companies c ON c.id = d.company_id WHERE "
                          "c.salesforce_id = '%s' AND d.amount = 25000000",
             acct);
    cr_assert_eq(it_sql_long(&w.env, q), 1);
    cr_assert_eq(it_sql_long(&w.env, "SELECT count(*) FROM activities WHERE salesforce_id IS NOT NULL AND "
                                     "company_id IS NOT NULL AND sf_modstamp IS NOT NULL"),
                 1, "the created interaction keeps the SystemModstamp read back");
    snprintf(q, sizeof q, "SELECT count(*) FROM activities a JOIN deals d ON d.id = a.deal_id WHERE "
                          "a.deal_sf_id = '%s' AND d.salesforce_id = '%s' AND cardinality(a.contact_ids) = 3 AND "
                          "cardinality(a.contact_sf_ids) = 3",
             deal, deal);
    cr_assert_eq(it_sql_long(&w.env, q), 1, "the local activity is linked to the local deal and the 3 contacts");
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM write_intents WHERE request_id = '%s' AND state = 'succeeded'", id),
                 6);

    /* the same message 3 more times: re-emitted, nothing sent */
    long long before = sim_stat(&w, NULL);
    for (int i = 0; i < 3; i++)
        produce(&w, buf);
    int n = 0;
    json_object_put(written(&w, 4, id, &n));
    cr_assert_eq(n, 4, "each delivery is answered (%d)", n);
    cr_assert_eq(sim_stat(&w, NULL), before, "zero additional requests at the emulator");
    cr_assert_eq(it_stop(w.worker, 30000), 0);

    /* a replay from earliest (a new consumer group) sends nothing either */
    char group[128];
    snprintf(group, sizeof group, "%s-replay", w.env.group);
    w.worker = start_writer(&w, NULL, group, "write-replay");
    json_object_put(written(&w, 8, id, &n));
    cr_assert_eq(n, 8, "the replay re-emits the stored results (%d)", n);
    cr_assert_eq(sim_stat(&w, NULL), before, "zero additional requests after the replay");
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM audit_log WHERE request_id = '%s'", id), 6);
    json_object_put(ev);
    free(li);
    teardown(&w);
}

Test(it_write, all_or_none_invalid_contact_creates_nothing, .timeout = 180)
{
    struct wenv w;
    setup(&w);
    char id[37], buf[8192];
    it_uuid(id);
    bundle(buf, sizeof buf, id, w.conn, "contoso", true); /* contact-2 has no last_name */
    w.worker = start_writer(&w, NULL, NULL, "write-aon");
    produce(&w, buf);
    struct json_object *ev = written(&w, 1, id, NULL);
    cr_assert_str_eq(json_get_str(ev, "status"), "failed", "%s", json_object_to_json_string(ev));
    struct json_object *c2 = result_of(ev, "contact-2");
    struct json_object *er = json_get(c2, "error");
    cr_assert_str_eq(json_get_str(er, "code"), "REQUIRED_FIELD_MISSING", "%s", json_object_to_json_string(ev));
    cr_assert(strstr(json_object_to_json_string(json_get(er, "fields")), "LastName"), "%s",
              json_object_to_json_string(c2));
    const char *top = json_get_str(json_get(ev, "error"), "message");
    cr_assert(top && strstr(top, "contact-2"), "the message-level error names the ref: %s", top);
    cr_assert_eq(sim_count(&w, "Account", NULL, NULL), 0, "nothing created");
    cr_assert_eq(sim_count(&w, "Contact", NULL, NULL), 0);
    cr_assert_eq(sim_count(&w, "Opportunity", NULL, NULL), 0);
    cr_assert_eq(sim_count(&w, "Interaction", NULL, NULL), 0);
    cr_assert_eq(sim_count(&w, "InteractionAttendee", NULL, NULL), 0);
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM audit_log WHERE request_id = '%s' AND outcome = 'failed'", id), 6);
    cr_assert_eq(it_sql_long(&w.env, "SELECT count(*) FROM contacts"), 0, "no local rows for a failed write");
    json_object_put(ev);
    teardown(&w);
}

Test(it_write, delete_refused_and_audit_verify_detects_tampering, .timeout = 180)
{
    struct wenv w;
    setup(&w);
    char *victim = sim_create(&w, "Contact", "{\"LastName\":\"Keep\"}");
    char id[37], id2[37], buf[2048];
    it_uuid(id);
    snprintf(buf, sizeof buf,
             "{\"message_id\":\"%s\",\"org_id\":\"acme\",\"connection_id\":\"%s\",\"created_at\":\"2026-12-03T17:45:00Z\","
             "\"actor\":\"user:77aa01\",\"source\":\"chat\",\"operations\":[{\"ref\":\"old-contact\",\"object\":"
             "\"Contact\",\"action\":\"delete\",\"id\":\"%s\",\"fields\":{}}]}",
             id, w.conn, victim);
    sim_post(&w, "/__sim/reset", "{}");
    w.worker = start_writer(&w, NULL, NULL, "write-delete");
    produce(&w, buf);
    struct json_object *ev = written(&w, 1, id, NULL);
    cr_assert_str_eq(json_get_str(ev, "status"), "failed");
    struct json_object *r = result_of(ev, "old-contact");
    cr_assert_str_eq(json_get_str(r, "outcome"), "refused");
    cr_assert_str_eq(json_get_str(json_get(r, "error"), "code"), "DELETE_NOT_SUPPORTED");
    cr_assert_eq(json_get_int(ev, "api_calls", -1), 0);
    cr_assert_eq(sim_stat(&w, NULL), 0, "zero requests to Salesforce");
    cr_assert_eq(sim_count(&w, "Contact", "LastName", "Keep"), 1);
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM audit_log WHERE request_id = '%s' AND outcome = 'refused' AND "
                          "sf_error_code = 'DELETE_NOT_SUPPORTED'",
                      id),
                 1);

    /* a second write so the chain has a row after the one we edit */
    it_uuid(id2);
    bundle(buf, sizeof buf, id2, w.conn, "fabrikam", false);
    char *li = existing_contact(&w, "fabrikam");
    produce(&w, buf);
    json_object_put(written(&w, 2, id2, NULL));
    long long rows = it_sql_long(&w.env, "SELECT count(*) FROM audit_log");
    cr_assert_eq(rows, 7, "%lld audit rows", rows);

    char cmd[1200], out[4096];
    snprintf(cmd, sizeof cmd, "SFBRIDGE_PG_DSN='%s' %s/sfbridge audit verify 2>&1", w.env.dsn, w.env.bindir);
    FILE *f = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    cr_assert_eq(pclose(f), 0, "verify must pass: %s", out);
    cr_assert(strstr(out, "ok: 7 rows verified"), "%s", out);

    /* the worker cannot change it: the trigger refuses UPDATE and DELETE for everyone */
    struct err e = ERR_INIT;
    struct pg *db = pg_open(w.env.dsn, 5000, &e);
    cr_assert(db);
    cr_assert(!pg_run(db, "UPDATE audit_log SET outcome = 'created'", 0, NULL, &e), "UPDATE must be refused");
    cr_assert(strstr(e.msg, "append-only"), "%s", e.msg);
    pg_close(&db);

    long long victim_row = it_sql_long(&w.env, "SELECT min(audit_id) + 2 FROM audit_log");
    snprintf(cmd, sizeof cmd,
             "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;"
             "UPDATE audit_log SET fields = fields || '{\"Amount\": 1}' WHERE audit_id = %lld;"
             "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only;",
             victim_row);
    it_sql_ok(&w.env, cmd);
    snprintf(cmd, sizeof cmd, "SFBRIDGE_PG_DSN='%s' %s/sfbridge audit verify --org acme 2>&1", w.env.dsn,
             w.env.bindir);
    f = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "verify must fail with exit 2: %s", out);
    char want[64];
    snprintf(want, sizeof want, "audit row %lld", victim_row);
    cr_assert(strstr(out, want), "verify must name the changed row (%s): %s", want, out);

    /* a removed row is named too (the row after the gap) */
    snprintf(cmd, sizeof cmd,
             "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;"
             "DELETE FROM audit_log WHERE audit_id = %lld;"
             "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only;",
             victim_row);
    it_sql_ok(&w.env, cmd);
    snprintf(cmd, sizeof cmd, "SFBRIDGE_PG_DSN='%s' %s/sfbridge audit verify 2>&1", w.env.dsn, w.env.bindir);
    f = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    st = pclose(f);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s", out);
    snprintf(want, sizeof want, "audit row %lld", victim_row + 1);
    cr_assert(strstr(out, want), "verify must name the row after the removed one (%s): %s", want, out);

    json_object_put(ev);
    free(victim);
    free(li);
    teardown(&w);
}

Test(it_write, unmapped_field_is_an_error_naming_it, .timeout = 120)
{
    struct wenv w;
    setup(&w);
    char id[37], buf[2048];
    it_uuid(id);
    snprintf(buf, sizeof buf,
             "{\"message_id\":\"%s\",\"org_id\":\"acme\",\"connection_id\":\"%s\",\"created_at\":\"2026-12-03T17:45:00Z\","
             "\"actor\":\"user:1\",\"source\":\"chat\",\"operations\":[{\"ref\":\"acme\",\"object\":\"Company\","
             "\"action\":\"create\",\"fields\":{\"name\":\"Acme\",\"hq_city\":\"Z\\u00fcrich\"}}]}",
             id, w.conn);
    sim_post(&w, "/__sim/reset", "{}");
    w.worker = start_writer(&w, NULL, NULL, "write-unmapped");
    produce(&w, buf);
    struct json_object *ev = written(&w, 1, id, NULL);
    struct json_object *er = json_get(result_of(ev, "acme"), "error");
    cr_assert_str_eq(json_get_str(er, "code"), "UNMAPPED_FIELD");
    cr_assert(strstr(json_get_str(er, "message"), "\"hq_city\""), "%s", json_get_str(er, "message"));
    cr_assert_eq(sim_stat(&w, NULL), 0, "nothing sent");
    json_object_put(ev);
    teardown(&w);
}

Test(it_write, request_limit_exceeded_defers_without_losing_the_write, .timeout = 180)
{
    struct wenv w;
    setup(&w);
    char id[37], buf[2048];
    it_uuid(id);
    snprintf(buf, sizeof buf,
             "{\"message_id\":\"%s\",\"org_id\":\"acme\",\"connection_id\":\"%s\",\"created_at\":\"2026-12-03T17:45:00Z\","
             "\"actor\":\"workflow:1\",\"source\":\"workflow\",\"operations\":[{\"ref\":\"acme\",\"object\":"
             "\"Company\",\"action\":\"create\",\"fields\":{\"name\":\"Deferred Corp\"}}]}",
             id, w.conn);
    sim_post(&w, "/__sim/faults", "{\"api_limit\":1000,\"api_used\":1000}");
    w.worker = start_writer(&w, NULL, NULL, "write-defer");
    produce(&w, buf);
    struct json_object *ev = written(&w, 1, id, NULL);
    cr_assert_str_eq(json_get_str(ev, "status"), "deferred", "%s", json_object_to_json_string(ev));
    cr_assert(json_get_str(ev, "retry_at"));
    json_object_put(ev);
    cr_assert_eq(sim_count(&w, "Account", "Name", "Deferred Corp"), 0);
    sleep(2);
    sim_post(&w, "/__sim/reset_usage", "{}");
    /* the kept message goes through: one deferred event, then the result */
    int n = 0;
    ev = written(&w, 2, id, &n);
    cr_assert_eq(n, 2, "deferred once, then the outcome");
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", json_object_to_json_string(ev));
    cr_assert_eq(sim_count(&w, "Account", "Name", "Deferred Corp"), 1);
    json_object_put(ev);
    teardown(&w);
}

Test(it_write, cim_deal_update_and_450_contacts_in_1_plus_3_calls, .timeout = 240)
{
    struct wenv w;
    setup(&w);
    char *acct = sim_create(&w, "Account", "{\"Name\":\"Contoso\"}");
    char f[400];
    snprintf(f, sizeof f,
             "{\"Name\":\"Contoso Buyout\",\"StageName\":\"Prospecting\",\"CloseDate\":\"2027-01-31\",\"Amount\":1000,"
             "\"AccountId\":\"%s\"}",
             acct);
    char *deal = sim_create(&w, "Opportunity", f);
    char id[37];
    it_uuid(id);
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    len += (size_t)snprintf(buf + len, cap - len,
                            "{\"message_id\":\"%s\",\"org_id\":\"acme\",\"connection_id\":\"%s\",\"created_at\":"
                            "\"2026-12-03T16:20:00Z\",\"actor\":\"workflow:cim-extract/run-8812\",\"source\":\"cim\","
                            "\"operations\":[{\"ref\":\"deal\",\"object\":\"Deal\",\"action\":\"update\",\"id\":\"%s\","
                            "\"fields\":{\"amount\":41500000.5,\"stage\":\"Negotiation/Review\"}}",
                            id, w.conn, deal);
    for (int i = 0; i < 450; i++)
        len += (size_t)snprintf(buf + len, cap - len,
                                ",{\"ref\":\"c%d\",\"object\":\"Contact\",\"action\":\"upsert\",\"match\":{\"email\":"
                                "\"person%d@contoso.example\"},\"fields\":{\"first_name\":\"P%d\",\"last_name\":"
                                "\"Person %d\",\"title\":\"VP\"},\"links\":{\"company\":\"%s\"}}",
                                i, i, i, i, acct);
    snprintf(buf + len, cap - len, "]}");
    sim_post(&w, "/__sim/reset", "{}");
    w.worker = start_writer(&w, NULL, NULL, "write-cim");
    produce(&w, buf);
    struct json_object *ev = written(&w, 1, id, NULL);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%.2000s", json_object_to_json_string(ev));
    cr_assert_eq(json_get_int(ev, "api_calls", -1), 4);
    cr_assert_eq(sim_stat(&w, NULL), 4, "1 + 3 calls at the emulator");
    cr_assert_eq(sim_stat(&w, "collections"), 4, "the deal update and 3 collections of at most 200 contacts");
    char v[64];
    sim_field(&w, "Opportunity", "Id", deal, "StageName", v, sizeof v);
    cr_assert_str_eq(v, "Negotiation/Review");
    struct json_object *d = sim_records(&w, "Opportunity", "Id", deal);
    cr_assert_float_eq(json_object_get_double(json_get(json_object_array_get_idx(d, 0), "Amount")), 41500000.5, 0.001);
    json_object_put(d);
    cr_assert_eq(sim_count(&w, "Contact", "AccountId", acct), 450);
    sim_field(&w, "Contact", "Email", "person449@contoso.example", "LastName", v, sizeof v);
    cr_assert_str_eq(v, "Person 449");
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM audit_log WHERE request_id = '%s'", id), 451);
    cr_assert_eq(it_sql_long(&w.env, "SELECT count(*) FROM contacts WHERE salesforce_id IS NOT NULL"), 450);
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM deals WHERE salesforce_id = '%s' AND amount = 41500000.5", deal), 1,
                 "the updated deal is mirrored locally");
    json_object_put(ev);
    free(buf);
    free(acct);
    free(deal);
    teardown(&w);
}

Test(it_write, sigkill_after_salesforce_accepted_before_commit, .timeout = 240)
{
    struct wenv w;
    setup(&w);
    char *li = existing_contact(&w, "adatum");
    char id[37], buf[8192];
    it_uuid(id);
    bundle(buf, sizeof buf, id, w.conn, "adatum", false);
    produce(&w, buf);
    /* the fault point kills the worker right after the emulator answered the composite */
    pid_t p = start_writer(&w, "after_sf_write", NULL, "write-crash");
    int rc = it_wait(p, 90000);
    cr_assert_eq(rc, 128 + SIGKILL, "the worker must die at the fault point (rc %d)", rc);
    cr_assert_eq(sim_count(&w, "Account", "Website", "https://adatum.example"), 1, "Salesforce accepted the write");
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM audit_log WHERE request_id = '%s'", id), 0, "nothing committed");
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM write_intents WHERE request_id = '%s' AND state = 'sent'", id), 6,
                 "the intents were committed before the call");

    w.worker = start_writer(&w, NULL, NULL, "write-crash-restart");
    int n = 0;
    struct json_object *ev = written(&w, 1, id, &n);
    cr_assert_eq(n, 1, "one record.written");
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", json_object_to_json_string(ev));
    cr_assert_str_eq(json_get_str(result_of(ev, "company"), "outcome"), "created",
                     "the retry reports what the first attempt did");
    cr_assert_eq(sim_count(&w, "Account", "Website", "https://adatum.example"), 1, "no duplicate account");
    cr_assert_eq(sim_count(&w, "Contact", NULL, NULL), 3, "no duplicate contacts");
    cr_assert_eq(sim_count(&w, "Opportunity", NULL, NULL), 1);
    cr_assert_eq(sim_count(&w, "Interaction", NULL, NULL), 1);
    cr_assert_eq(sim_count(&w, "InteractionAttendee", NULL, NULL), 3, "no duplicate attendees");
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM audit_log WHERE request_id = '%s'", id), 6, "one audit row per record");
    cr_assert_eq(it_sql_long(&w.env, "SELECT count(*) FROM companies"), 1);
    json_object_put(ev);
    free(li);
    teardown(&w);
}

Test(it_write, later_sync_of_written_records_is_unchanged, .timeout = 240)
{
    struct wenv w;
    setup(&w);
    char *li = existing_contact(&w, "litware");
    char id[37], buf[8192];
    it_uuid(id);
    bundle(buf, sizeof buf, id, w.conn, "litware", false);
    w.worker = start_writer(&w, NULL, NULL, "write-then-sync");
    produce(&w, buf);
    struct json_object *ev = written(&w, 1, id, NULL);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", json_object_to_json_string(ev));
    json_object_put(ev);

    char sid[37], req[1024];
    it_uuid(sid);
    snprintf(req, sizeof req,
             "{\"message_id\":\"%s\",\"org_id\":\"acme\",\"connection_id\":\"%s\",\"created_at\":"
             "\"2026-12-03T16:00:00Z\",\"mode\":\"full\",\"requested_by\":\"it\"}",
             sid, w.conn);
    const char *extra[] = {w.key_env, "SFBRIDGE_TOKEN_KEY_ID=k1", w.login_env, NULL};
    pid_t sync = it_spawn(&w.env, "sfbridge-sync", extra, "write-sync");
    it_produce(&w.env, "sync.requested", w.conn, req, strlen(req));
    struct it_msgs ms;
    it_consume(&w.env, "sync.completed", 1, 90000, 1000, &ms);
    cr_assert_eq(ms.n, 1);
    struct err e = ERR_INIT;
    struct json_object *done = json_parse(ms.m[0].payload, ms.m[0].len, &e);
    cr_assert(done);
    cr_assert_str_eq(json_get_str(done, "status"), "succeeded", "%s", ms.m[0].payload);
    struct json_object *objs = json_get(done, "objects");
    const char *names[] = {"Account", "Opportunity", "Interaction"};
    for (int i = 0; i < 3; i++) {
        struct json_object *c = json_get(objs, names[i]);
        cr_assert(c, "no counts for %s: %s", names[i], ms.m[0].payload);
        cr_assert_eq(json_get_int(c, "inserted", -1), 0, "%s: %s", names[i], ms.m[0].payload);
        cr_assert_eq(json_get_int(c, "updated", -1), 0, "%s: %s", names[i], ms.m[0].payload);
        cr_assert_eq(json_get_int(c, "unchanged", -1), 1, "%s: %s", names[i], ms.m[0].payload);
    }
    /* the existing contact (synced before, then updated by the write) too: its local row holds what was written */
    struct json_object *ct = json_get(objs, "Contact");
    cr_assert_eq(json_get_int(ct, "inserted", -1), 0, "%s", ms.m[0].payload);
    cr_assert_eq(json_get_int(ct, "updated", -1), 0, "%s", ms.m[0].payload);
    cr_assert_eq(json_get_int(ct, "unchanged", -1), 3, "%s", ms.m[0].payload);
    json_object_put(done);
    it_msgs_free(&ms);
    cr_assert_eq(it_stop(sync, 30000), 0);
    free(li);
    teardown(&w);
}

/* A value that does not fit its local column, and a Salesforce id another local row already holds: the
 * writes were accepted by Salesforce, so the outcome, the audit rows, the intents and record.written
 * commit and say so; only the local mirror of those records is skipped (logged). */
Test(it_write, mirror_failure_keeps_what_salesforce_did, .timeout = 180)
{
    struct wenv w;
    setup(&w);
    /* an admin mapped the integer column `employees` to a text field: Salesforce takes any text */
    it_sql_ok(&w.env, "UPDATE field_mappings SET sf_field = 'Description', transform = NULL, direction = 'export' "
                      "WHERE org_id = 'acme' AND sf_object = 'Account' AND platform_field = 'employees'");
    /* a local contact A not yet in Salesforce, whose platform id a Salesforce record X already carries,
       and X synced before as another local row B */
    char a[37], x_fields[300], sql[800];
    it_uuid(a);
    snprintf(x_fields, sizeof x_fields,
             "{\"LastName\":\"Twin\",\"Email\":\"b@mirror.example\",\"Platform_Id__c\":\"%s\"}", a);
    char *x = sim_create(&w, "Contact", x_fields);
    /* and a synced contact Y whose update mirrors fine (no links: the plain UPDATE of a local row) */
    char *y = sim_create(&w, "Contact", "{\"LastName\":\"Plain\",\"Email\":\"y@mirror.example\"}");
    char ysql[400];
    snprintf(ysql, sizeof ysql,
             "INSERT INTO contacts (org_id, connection_id, salesforce_id, last_name, email) VALUES "
             "('acme', '%s', '%s', 'Plain', 'y@mirror.example')",
             w.conn, y);
    it_sql_ok(&w.env, ysql);
    snprintf(sql, sizeof sql,
             "INSERT INTO contacts (id, org_id, last_name, email) VALUES ('%s', 'acme', 'Twin', 'a@mirror.example');"
             "INSERT INTO contacts (org_id, connection_id, salesforce_id, last_name, email) VALUES "
             "('acme', '%s', '%s', 'Twin', 'b@mirror.example')",
             a, w.conn, x);
    it_sql_ok(&w.env, sql);

    char id[37], buf[2048];
    it_uuid(id);
    snprintf(buf, sizeof buf,
             "{\"message_id\":\"%s\",\"org_id\":\"acme\",\"connection_id\":\"%s\",\"created_at\":\"2026-12-03T17:45:00Z\","
             "\"actor\":\"user:1\",\"source\":\"chat\",\"operations\":["
             "{\"ref\":\"co\",\"object\":\"Company\",\"action\":\"create\",\"fields\":{\"name\":\"Mirror Corp\","
             "\"employees\":\"about 240\"}},"
             "{\"ref\":\"ct\",\"object\":\"Contact\",\"action\":\"upsert\",\"match\":{\"email\":\"a@mirror.example\"},"
             "\"fields\":{\"title\":\"CFO\"}},"
             "{\"ref\":\"y\",\"object\":\"Contact\",\"action\":\"update\",\"id\":\"%s\",\"fields\":{\"title\":"
             "\"CTO\"}}]}",
             id, w.conn, y);
    w.worker = start_writer(&w, NULL, NULL, "write-mirror");
    produce(&w, buf);
    struct json_object *ev = written(&w, 1, id, NULL);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", json_object_to_json_string(ev));
    char acct[40], v[200];
    sim_field(&w, "Account", "Name", "Mirror Corp", "Id", acct, sizeof acct);
    sim_field(&w, "Account", "Name", "Mirror Corp", "Description", v, sizeof v);
    cr_assert_str_eq(v, "about 240");
    cr_assert_str_eq(json_get_str(result_of(ev, "co"), "salesforce_id"), acct);
    cr_assert_str_eq(json_get_str(result_of(ev, "co"), "outcome"), "created");
    cr_assert_str_eq(json_get_str(result_of(ev, "ct"), "salesforce_id"), x);
    cr_assert_str_eq(json_get_str(result_of(ev, "ct"), "outcome"), "updated");
    sim_field(&w, "Contact", "Id", x, "Title", v, sizeof v);
    cr_assert_str_eq(v, "CFO");
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM audit_log WHERE request_id = '%s' AND outcome IN ('created', "
                          "'updated') AND salesforce_id IS NOT NULL",
                      id),
                 3, "the audit says what Salesforce did");
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM write_intents WHERE request_id = '%s' AND state = 'succeeded' AND "
                          "salesforce_id IS NOT NULL",
                      id),
                 3);
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM contacts WHERE salesforce_id = '%s' AND title = 'CTO'", y), 1,
                 "the other record of the same transaction is mirrored");
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM processed_messages WHERE message_id = '%s'", id), 1);
    /* the mirror was skipped: no company row, A untouched, B unchanged */
    cr_assert_eq(it_sql_long(&w.env, "SELECT count(*) FROM companies"), 0);
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM contacts WHERE id = '%s' AND salesforce_id IS NULL", a), 1);
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM contacts WHERE salesforce_id = '%s'", x), 1);
    cr_assert_eq(it_stop(w.worker, 30000), 0);
    char path[200];
    snprintf(path, sizeof path, "build/test-logs/write-mirror-%d.log", (int)w.worker);
    w.worker = 0;
    char *log = it_read_file(path);
    cr_assert(log, "no log %s", path);
    cr_assert(strstr(log, "could not mirror Company \\\"co\\\""), "the skipped mirror is logged: %s", path);
    cr_assert(strstr(log, "could not mirror Contact \\\"ct\\\""), "the skipped mirror is logged: %s", path);
    cr_assert(strstr(log, "22P02"), "the company failed its integer cast: %s", path);
    cr_assert(strstr(log, "23505"), "the contact met the unique salesforce_id of another row: %s", path);
    cr_assert(!strstr(log, "could not mirror Contact \\\"y\\\""), "%s", path);
    free(log);
    json_object_put(ev);
    free(x);
    free(y);
    teardown(&w);
}

/* Two replicas get the same request at once (after a rebalance; here two consumer groups): one sends
 * it, the other waits for it and re-emits its result. One composite call, no duplicate. */
Test(it_write, two_replicas_send_one_request_once, .timeout = 240)
{
    struct wenv w;
    setup(&w);
    char *li = existing_contact(&w, "tailspin");
    char id[37], buf[8192], group[128];
    it_uuid(id);
    bundle(buf, sizeof buf, id, w.conn, "tailspin", false);
    sim_post(&w, "/__sim/reset", "{}");
    sim_post(&w, "/__sim/faults", "{\"latency_ms\":2500}"); /* both are in the handler at the same time */
    produce(&w, buf);
    snprintf(group, sizeof group, "%s-other", w.env.group);
    pid_t other = start_writer(&w, NULL, group, "write-replica-b");
    w.worker = start_writer(&w, NULL, NULL, "write-replica-a");
    int n = 0;
    struct json_object *ev = written(&w, 2, id, &n);
    cr_assert_eq(n, 2, "each replica answers (%d)", n);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", json_object_to_json_string(ev));
    cr_assert_eq(sim_stat(&w, "composite"), 1, "the request was sent once");
    cr_assert_eq(sim_count(&w, "Account", NULL, NULL), 1, "no duplicate account");
    cr_assert_eq(sim_count(&w, "Contact", NULL, NULL), 3, "no duplicate contacts");
    cr_assert_eq(sim_count(&w, "Opportunity", NULL, NULL), 1);
    cr_assert_eq(sim_count(&w, "Interaction", NULL, NULL), 1);
    cr_assert_eq(sim_count(&w, "InteractionAttendee", NULL, NULL), 3);
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM audit_log WHERE request_id = '%s'", id), 6);
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM write_intents WHERE request_id = '%s' AND state = 'succeeded'", id),
                 6);
    char v[40];
    sim_field(&w, "Account", "Website", "https://tailspin.example", "Platform_Id__c", v, sizeof v);
    cr_assert_str_eq(v, json_get_str(result_of(ev, "company"), "platform_id"));
    cr_assert_eq(it_stop(other, 30000), 0);
    json_object_put(ev);
    free(li);
    teardown(&w);
}

/* An org without an external-id field: creates look for the record by their match keys first (an
 * existing one is updated), and a retried create with no match key is not sent again. */
Test(it_write, no_external_id_field_matches_before_create, .timeout = 240)
{
    struct wenv w;
    setup(&w);
    it_sql_ok(&w.env, "UPDATE organizations SET external_id_field = '' WHERE org_id = 'acme'");
    char *li = sim_create(&w, "Contact", "{\"FirstName\":\"Li\",\"LastName\":\"Wei\",\"Email\":\"Li.Wei@Wingtip.example\"}");
    char id[37], buf[4096];
    it_uuid(id);
    snprintf(buf, sizeof buf,
             "{\"message_id\":\"%s\",\"org_id\":\"acme\",\"connection_id\":\"%s\",\"created_at\":\"2026-12-03T17:45:00Z\","
             "\"actor\":\"user:1\",\"source\":\"chat\",\"all_or_none\":false,\"operations\":["
             "{\"ref\":\"li\",\"object\":\"Contact\",\"action\":\"create\",\"fields\":{\"last_name\":\"Wei\","
             "\"email\":\"li.wei@wingtip.example\",\"title\":\"COO\"}},"
             "{\"ref\":\"ana\",\"object\":\"Contact\",\"action\":\"create\",\"fields\":{\"last_name\":\"Ana\","
             "\"email\":\"ana@wingtip.example\"}},"
             "{\"ref\":\"co\",\"object\":\"Company\",\"action\":\"upsert\",\"match\":{\"website\":"
             "\"https://wingtip.example\"},\"fields\":{\"name\":\"Wingtip\"}}]}",
             id, w.conn);
    sim_post(&w, "/__sim/reset", "{}");
    w.worker = start_writer(&w, NULL, NULL, "write-noext");
    produce(&w, buf);
    struct json_object *ev = written(&w, 1, id, NULL);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", json_object_to_json_string(ev));
    cr_assert_str_eq(json_get_str(result_of(ev, "li"), "salesforce_id"), li, "the existing contact, by email");
    cr_assert_str_eq(json_get_str(result_of(ev, "li"), "outcome"), "updated");
    cr_assert_str_eq(json_get_str(result_of(ev, "ana"), "outcome"), "created");
    cr_assert_str_eq(json_get_str(result_of(ev, "co"), "outcome"), "created");
    cr_assert_eq(sim_count(&w, "Contact", NULL, NULL), 2, "no duplicate of the existing contact");
    char v[64];
    sim_field(&w, "Contact", "Id", li, "Title", v, sizeof v);
    cr_assert_str_eq(v, "COO");
    /* one query per object and match fields, then the write */
    cr_assert_eq(json_get_int(ev, "api_calls", -1), 3, "%s", json_object_to_json_string(ev));
    cr_assert_eq(sim_stat(&w, "query"), 2);
    cr_assert_eq(sim_stat(&w, NULL), 3);
    json_object_put(ev);
    cr_assert_eq(it_stop(w.worker, 30000), 0);
    w.worker = 0;

    /* killed right after Salesforce accepted the creates: the retry finds the company by its match key
       and does not re-POST the interaction (it has none) */
    char id2[37];
    it_uuid(id2);
    snprintf(buf, sizeof buf,
             "{\"message_id\":\"%s\",\"org_id\":\"acme\",\"connection_id\":\"%s\",\"created_at\":\"2026-12-03T17:45:00Z\","
             "\"actor\":\"user:1\",\"source\":\"chat\",\"all_or_none\":false,\"operations\":["
             "{\"ref\":\"co2\",\"object\":\"Company\",\"action\":\"create\",\"fields\":{\"name\":\"Crashco\"}},"
             "{\"ref\":\"call\",\"object\":\"Activity\",\"action\":\"create\",\"fields\":{\"subject\":\"Crash call\"},"
             "\"links\":{\"company\":\"co2\"}}]}",
             id2, w.conn);
    produce(&w, buf);
    pid_t p = start_writer(&w, "after_sf_write", NULL, "write-noext-crash");
    int rc = it_wait(p, 90000);
    cr_assert_eq(rc, 128 + SIGKILL, "the worker must die at the fault point (rc %d)", rc);
    cr_assert_eq(sim_count(&w, "Account", "Name", "Crashco"), 1, "Salesforce accepted the write");
    cr_assert_eq(sim_count(&w, "Interaction", "Name", "Crash call"), 1);
    w.worker = start_writer(&w, NULL, NULL, "write-noext-restart");
    int n = 0;
    ev = written(&w, 2, id2, &n);
    cr_assert_eq(n, 1, "one record.written");
    cr_assert_str_eq(json_get_str(ev, "status"), "partial", "%s", json_object_to_json_string(ev));
    struct json_object *co2 = result_of(ev, "co2");
    cr_assert_str_eq(json_get_str(co2, "outcome"), "created", "%s", json_object_to_json_string(ev));
    sim_field(&w, "Account", "Name", "Crashco", "Id", v, sizeof v);
    cr_assert_str_eq(json_get_str(co2, "salesforce_id"), v);
    struct json_object *call = result_of(ev, "call");
    cr_assert_str_eq(json_get_str(call, "outcome"), "failed");
    cr_assert_str_eq(json_get_str(json_get(call, "error"), "code"), "OUTCOME_UNKNOWN");
    cr_assert(strstr(json_get_str(json_get(call, "error"), "message"), "not sent again"), "%s",
              json_object_to_json_string(call));
    cr_assert_eq(sim_count(&w, "Account", "Name", "Crashco"), 1, "no duplicate account");
    cr_assert_eq(sim_count(&w, "Interaction", "Name", "Crash call"), 1, "no duplicate interaction");
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM audit_log WHERE request_id = '%s'", id2), 2);
    json_object_put(ev);
    free(li);
    teardown(&w);
}

/* Salesforce ids pasted in their 15-character form are used and stored as 18 characters. */
Test(it_write, fifteen_character_ids_become_18, .timeout = 120)
{
    struct wenv w;
    setup(&w);
    char *acct = sim_create(&w, "Account", "{\"Name\":\"Fifteen Corp\"}");
    cr_assert_eq(strlen(acct), 18);
    char short_id[16];
    memcpy(short_id, acct, 15);
    short_id[15] = '\0';
    char id[37], buf[2048];
    it_uuid(id);
    snprintf(buf, sizeof buf,
             "{\"message_id\":\"%s\",\"org_id\":\"acme\",\"connection_id\":\"%s\",\"created_at\":\"2026-12-03T17:45:00Z\","
             "\"actor\":\"user:1\",\"source\":\"chat\",\"operations\":["
             "{\"ref\":\"co\",\"object\":\"Company\",\"action\":\"update\",\"id\":\"%s\",\"fields\":{\"industry\":"
             "\"Technology\"}},"
             "{\"ref\":\"ct\",\"object\":\"Contact\",\"action\":\"create\",\"fields\":{\"last_name\":\"Fifteen\"},"
             "\"links\":{\"company\":\"%s\"}}]}",
             id, w.conn, short_id, short_id);
    w.worker = start_writer(&w, NULL, NULL, "write-15");
    produce(&w, buf);
    struct json_object *ev = written(&w, 1, id, NULL);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", json_object_to_json_string(ev));
    cr_assert_str_eq(json_get_str(result_of(ev, "co"), "salesforce_id"), acct, "reported in the 18-character form");
    char v[64];
    sim_field(&w, "Contact", "LastName", "Fifteen", "AccountId", v, sizeof v);
    cr_assert_str_eq(v, acct);
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM companies WHERE salesforce_id = '%s' AND industry = 'Technology'",
                      acct),
                 1, "the local row holds the 18-character id");
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM contacts WHERE company_sf_id = '%s' AND company_id IS NOT NULL", acct),
                 1);
    cr_assert_eq(sqlv(&w, "SELECT count(*) FROM audit_log WHERE request_id = '%s' AND length(salesforce_id) = 18", id),
                 2);
    json_object_put(ev);
    free(acct);
    teardown(&w);
}

/* Whole numbers beyond int64 survive the jsonb round trip of the audit log: verify passes. */
Test(it_write, audit_verify_big_numbers, .timeout = 60)
{
    struct it_env env;
    it_env_init(&env);
    struct err e = ERR_INIT;
    struct pg *db = pg_open(env.dsn, 5000, &e);
    cr_assert(db, "%s", e.msg);
    const char *docs[] = {"{\"Amount\":1e19,\"Big\":12345678901234567890,\"Huge\":1e20,\"Neg\":-1e19,\"Z\":-0.0}",
                          "{\"Amount\":9.3e18,\"Small\":1.5e-7,\"List\":[1e19,12345678901234567890]}"};
    for (int i = 0; i < 2; i++) {
        struct json_object *f = json_parse(docs[i], strlen(docs[i]), &e);
        cr_assert(f, "%s", e.msg);
        struct audit_entry a = {NULL, NULL, "user:1", "chat", "update", "Opportunity", "Deal", "d", "006000000000001AAA",
                                f, "updated", NULL, NULL};
        cr_assert(pg_begin(db, &e) && audit_append(db, "acme", &a, &e) && pg_commit(db, &e), "%s", e.msg);
        json_object_put(f);
    }
    pg_close(&db);
    char cmd[1200], out[4096];
    snprintf(cmd, sizeof cmd, "SFBRIDGE_PG_DSN='%s' %s/sfbridge audit verify 2>&1", env.dsn, env.bindir);
    FILE *f = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    cr_assert_eq(pclose(f), 0, "verify must pass: %s", out);
    cr_assert(strstr(out, "ok: 2 rows verified"), "%s", out);
}
