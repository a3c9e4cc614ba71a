/*
 * Integration (issue 5): the sync worker against the emulator + Kafka + PostgreSQL.
 *  - 20k Accounts / 40k Contacts / 10k Opportunities / 10k Interactions, one full sync:
 *    exact rows, every child linked to the right company, counts in sync.completed, progress;
 *    a second full sync of identical records reports them unchanged and changes no row;
 *  - change 100 / delete 10 / add 50 at the emulator: an incremental sync reads only those
 *    (request log), updates 100, soft-deletes 10, inserts 50;
 *  - no mapping for Interaction: failed with MAPPING_REQUIRED naming object and org, zero
 *    Interaction queries, the other objects still sync;
 *  - children whose parent arrives later are linked when it lands.
 */
#include <sys/wait.h>

#include "it_sync_lib.h"

#define DEMO "tests/demo/mappings.json"

Test(it_sync, full_sync_80k_exact_and_linked, .timeout = 300)
{
    struct it_env env;
    it_env_init(&env);
    struct it_sfsim sim;
    const char *args[] = {"--seed-accounts", "20000", "--seed-contacts", "40000", "--seed-opportunities", "10000",
                          "--seed-interactions", "10000", "--quiet", NULL};
    it_sfsim_start(&env, &sim, args);
    char conn[37], id[37];
    its_connection(&env, &sim, "acme", conn);
    its_import(&env, "acme", DEMO);
    const char *extra[] = {"SFBRIDGE_TOKEN_KEY=" ITS_TOKEN_KEY, NULL};
    pid_t w = it_spawn(&env, "sfbridge-sync", extra, "sync-full");

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    its_request(&env, "acme", conn, "full", NULL, id);
    struct json_object *ev = its_completion(&env, id, 1, 240000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr, "full sync of 80,000 records: %.1f s, %s\n", secs, json_object_to_json_string(ev));
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", json_object_to_json_string(ev));
    cr_assert_str_eq(json_get_str(ev, "mode"), "full");
    const char *objs[] = {"Account", "Contact", "Opportunity", "Interaction"};
    const long long want[] = {20000, 40000, 10000, 10000};
    long long pages = 0;
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(its_count(ev, objs[i], "fetched"), want[i], "%s fetched", objs[i]);
        cr_assert_eq(its_count(ev, objs[i], "inserted"), want[i], "%s inserted", objs[i]);
        cr_assert_eq(its_count(ev, objs[i], "updated"), 0);
        cr_assert_eq(its_count(ev, objs[i], "deleted"), 0);
        cr_assert_eq(its_count(ev, objs[i], "unchanged"), 0);
        pages += (want[i] + 1999) / 2000;
    }
    cr_assert_eq(json_get_int(ev, "api_calls", -1), pages, "REST: one call per 2000-record page, got %lld",
                 (long long)json_get_int(ev, "api_calls", -1));
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM companies WHERE org_id = 'acme' AND deleted_at IS NULL"), 20000);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM contacts"), 40000);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM deals"), 10000);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM activities WHERE sf_object = 'Interaction'"), 10000);
    /* every child linked to the company whose Salesforce id it carries */
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM deals d JOIN companies c ON c.id = d.company_id "
                                   "WHERE c.salesforce_id = d.company_sf_id"),
                 10000);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM contacts d JOIN companies c ON c.id = d.company_id "
                                   "WHERE c.salesforce_id = d.company_sf_id"),
                 40000);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM activities d JOIN companies c ON c.id = d.company_id "
                                   "WHERE c.salesforce_id = d.company_sf_id"),
                 10000);
    /* values match the emulator's, spot check one account */
    char *sid = it_sql(&env, "SELECT salesforce_id FROM companies ORDER BY salesforce_id LIMIT 1");
    char path[128];
    long st;
    snprintf(path, sizeof path, "/__sim/records/Account?where=Id=%s", sid);
    char *rec = its_sim(&sim, "GET", path, NULL, &st);
    struct err e = ERR_INIT;
    struct json_object *ro = json_parse(rec, strlen(rec), &e);
    struct json_object *r0 = json_object_array_get_idx(json_get(ro, "records"), 0);
    char q[256];
    snprintf(q, sizeof q, "SELECT name FROM companies WHERE salesforce_id = '%s'", sid);
    char *name = it_sql(&env, q);
    cr_assert_str_eq(name, json_get_str(r0, "Name"));
    snprintf(q, sizeof q, "SELECT attributes->>'tier' FROM companies WHERE salesforce_id = '%s'", sid);
    char *tier = it_sql(&env, q);
    if (json_get_str(r0, "Tier__c"))
        cr_assert_str_eq(tier, json_get_str(r0, "Tier__c"));
    free(tier);
    free(name);
    json_object_put(ro);
    free(rec);
    free(sid);
    /* the run row and the progress events */
    char rq[256];
    snprintf(rq, sizeof rq, "SELECT status || ':' || fetched FROM sync_runs WHERE request_id = '%s'", id);
    char *run = it_sql(&env, rq);
    cr_assert_str_eq(run, "succeeded:80000");
    free(run);
    struct it_msgs prog;
    it_consume(&env, "sync.progress", (int)pages, 20000, 500, &prog);
    cr_assert_geq(prog.n, pages, "a sync.progress per page: %d of %lld", prog.n, pages);
    it_msgs_free(&prog);
    json_object_put(ev);

    /* identical records again: unchanged, no row touched */
    char *before = it_sql(&env, "SELECT max(updated_at)::text || count(*) FROM companies");
    its_request(&env, "acme", conn, "full", NULL, id);
    ev = its_completion(&env, id, 2, 240000);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", json_object_to_json_string(ev));
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(its_count(ev, objs[i], "unchanged"), want[i], "%s must be unchanged: %s", objs[i],
                     json_object_to_json_string(ev));
        cr_assert_eq(its_count(ev, objs[i], "inserted") + its_count(ev, objs[i], "updated"), 0);
    }
    char *after = it_sql(&env, "SELECT max(updated_at)::text || count(*) FROM companies");
    cr_assert_str_eq(before, after, "a re-sync of identical records must change no row");
    free(before);
    free(after);
    json_object_put(ev);
    cr_assert_eq(it_stop(w, 30000), 0);
    it_sfsim_stop(&sim);
}

Test(it_sync, incremental_reads_only_changes, .timeout = 240)
{
    struct it_env env;
    it_env_init(&env);
    struct it_sfsim sim;
    const char *args[] = {"--seed-accounts", "2000", "--seed-contacts", "3000", "--seed-opportunities", "1000",
                          "--seed-interactions", "1000", "--quiet", NULL};
    it_sfsim_start(&env, &sim, args);
    char conn[37], id[37];
    its_connection(&env, &sim, "acme", conn);
    its_import(&env, "acme", DEMO);
    const char *extra[] = {"SFBRIDGE_TOKEN_KEY=" ITS_TOKEN_KEY, NULL};
    pid_t w = it_spawn(&env, "sfbridge-sync", extra, "sync-incr");
    its_request(&env, "acme", conn, "full", NULL, id);
    struct json_object *ev = its_completion(&env, id, 1, 120000);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", json_object_to_json_string(ev));
    json_object_put(ev);
    sleep(3); /* changes land after the watermark + lookback */

    long st;
    char path[160], body[256];
    /* change 40 accounts, 30 contacts, 30 opportunities */
    const char *chg[][3] = {{"Account", "companies", "40"}, {"Contact", "contacts", "30"}, {"Opportunity", "deals", "30"}};
    for (int k = 0; k < 3; k++) {
        char q[200];
        snprintf(q, sizeof q, "SELECT string_agg(salesforce_id, ',' ORDER BY salesforce_id) FROM (SELECT salesforce_id "
                              "FROM %s ORDER BY salesforce_id LIMIT %s) x", chg[k][1], chg[k][2]);
        char *ids = it_sql(&env, q);
        for (char *t = ids, *c; t && *t; t = c ? c + 1 : NULL) {
            if ((c = strchr(t, ',')))
                *c = '\0';
            snprintf(path, sizeof path, "/__sim/records/%s/%s", chg[k][0], t);
            snprintf(body, sizeof body, "{\"Description\":\"changed\",\"%s\":\"Changed %s\"}",
                     k == 1 ? "Title" : "Name", t);
            free(its_sim(&sim, "PATCH", path, body, &st));
            cr_assert(st >= 200 && st < 300, "PATCH %s: %ld", path, st);
        }
        free(ids);
    }
    /* delete 5 contacts and 5 opportunities (not among the changed ones) */
    const char *del[][2] = {{"Contact", "contacts"}, {"Opportunity", "deals"}};
    for (int k = 0; k < 2; k++) {
        char q[200];
        snprintf(q, sizeof q, "SELECT string_agg(salesforce_id, ',') FROM (SELECT salesforce_id FROM %s "
                              "ORDER BY salesforce_id DESC LIMIT 5) x", del[k][1]);
        char *ids = it_sql(&env, q);
        for (char *t = ids, *c; t && *t; t = c ? c + 1 : NULL) {
            if ((c = strchr(t, ',')))
                *c = '\0';
            snprintf(path, sizeof path, "/__sim/records/%s/%s", del[k][0], t);
            free(its_sim(&sim, "DELETE", path, NULL, &st));
            cr_assert(st >= 200 && st < 300, "DELETE %s: %ld", path, st);
        }
        free(ids);
    }
    /* add 20 accounts, 20 contacts (of a new account: arrives in the same run), 10 interactions */
    char *acct = NULL;
    for (int i = 0; i < 20; i++) {
        snprintf(body, sizeof body, "{\"Name\":\"New Co %d\",\"Industry\":\"Banking\"}", i);
        char *r = its_sim(&sim, "POST", "/__sim/records/Account", body, &st);
        cr_assert(st >= 200 && st < 300, "POST Account: %ld %s", st, r);
        if (!acct) {
            struct err e = ERR_INIT;
            struct json_object *o = json_parse(r, strlen(r), &e);
            acct = strdup(json_get_str(o, "id"));
            json_object_put(o);
        }
        free(r);
    }
    for (int i = 0; i < 20; i++) {
        snprintf(body, sizeof body, "{\"LastName\":\"Newman %d\",\"AccountId\":\"%s\",\"Email\":\"NEW%d@Example.com\"}",
                 i, acct, i);
        free(its_sim(&sim, "POST", "/__sim/records/Contact", body, &st));
        cr_assert(st >= 200 && st < 300);
    }
    for (int i = 0; i < 10; i++) {
        snprintf(body, sizeof body, "{\"Name\":\"Call %d\",\"AccountId\":\"%s\",\"InteractionType\":\"Phone Call\"}", i,
                 acct);
        free(its_sim(&sim, "POST", "/__sim/records/Interaction", body, &st));
        cr_assert(st >= 200 && st < 300);
    }
    free(its_sim(&sim, "DELETE", "/__sim/requests", NULL, &st));

    its_request(&env, "acme", conn, "incremental", NULL, id);
    ev = its_completion(&env, id, 2, 120000);
    fprintf(stderr, "incremental: %s\n", json_object_to_json_string(ev));
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", json_object_to_json_string(ev));
    long long upd = 0, ins = 0, dl = 0, fetched = 0, unch = 0;
    const char *objs[] = {"Account", "Contact", "Opportunity", "Interaction"};
    for (int i = 0; i < 4; i++) {
        upd += its_count(ev, objs[i], "updated");
        ins += its_count(ev, objs[i], "inserted");
        dl += its_count(ev, objs[i], "deleted");
        fetched += its_count(ev, objs[i], "fetched");
        unch += its_count(ev, objs[i], "unchanged");
    }
    cr_assert_eq(upd, 100, "updated %lld", upd);
    cr_assert_eq(dl, 10, "deleted %lld", dl);
    cr_assert_eq(ins, 50, "inserted %lld", ins);
    cr_assert_eq(its_count(ev, "Account", "updated"), 40);
    cr_assert_eq(its_count(ev, "Account", "inserted"), 20);
    cr_assert_eq(its_count(ev, "Contact", "deleted"), 5);
    cr_assert_eq(fetched - unch, 160, "the changed records, plus only lookback re-reads (%lld)", unch);
    cr_assert_leq(unch, 10, "lookback re-reads must stay few: %lld", unch);
    /* the request log: only incremental queries, no full read */
    int queries = its_sim_requests(&sim, "/query", NULL);
    int windowed = its_sim_requests(&sim, "/query", "SystemModstamp >=");
    cr_assert_eq(queries, 4, "one query per object (%d)", queries);
    cr_assert_eq(windowed, 4, "every query starts at the watermark (%d of %d)", windowed, queries);
    cr_assert_eq(its_sim_requests(&sim, "/deleted", NULL), 4, "getDeleted once per object");
    /* tables */
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM companies WHERE name LIKE 'Changed %'"), 40);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM contacts WHERE title LIKE 'Changed %'"), 30);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM contacts WHERE deleted_at IS NOT NULL"), 5);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM deals WHERE deleted_at IS NOT NULL"), 5);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM contacts"), 3020, "nothing is hard-deleted");
    char q[300];
    snprintf(q, sizeof q, "SELECT count(*) FROM contacts t JOIN companies c ON c.id = t.company_id "
                          "WHERE c.salesforce_id = '%s' AND t.email LIKE 'new%%@example.com'", acct);
    cr_assert_eq(it_sql_long(&env, q), 20, "new contacts linked to the new company, emails lower-cased");
    snprintf(q, sizeof q, "SELECT count(*) FROM activities t JOIN companies c ON c.id = t.company_id "
                          "WHERE c.salesforce_id = '%s'", acct);
    cr_assert_eq(it_sql_long(&env, q), 10);
    free(acct);
    json_object_put(ev);
    cr_assert_eq(it_stop(w, 30000), 0);
    it_sfsim_stop(&sim);
}

Test(it_sync, mapping_required_names_object_and_org, .timeout = 180)
{
    struct it_env env;
    it_env_init(&env);
    struct it_sfsim sim;
    const char *args[] = {"--seed-accounts", "300", "--seed-contacts", "300", "--seed-opportunities", "100",
                          "--seed-interactions", "100", "--quiet", NULL};
    it_sfsim_start(&env, &sim, args);
    char conn[37], id[37];
    its_connection(&env, &sim, "beta", conn);
    /* the demo mappings without Interaction, as CSV */
    const char *csv = "/tmp/it_sync_no_interaction.csv";
    FILE *f = fopen(csv, "w");
    cr_assert(f);
    fprintf(f, "sf_object,platform_object,sf_field,platform_field,direction,transform,match_key,enabled,soql_filter\n"
               "Account,Company,Name,name,both,trim,true,true,\n"
               "Account,Company,Industry,industry,both,,,,\n"
               "Contact,Contact,AccountId,company_sf_id,both,,,,\n"
               "Contact,Contact,LastName,last_name,both,,,,\n"
               "Contact,Contact,Email,email,both,trim|lower,true,,\n"
               "Opportunity,Deal,AccountId,company_sf_id,both,,,,\n"
               "Opportunity,Deal,Name,name,both,,,,\n"
               "Opportunity,Deal,Amount,amount,both,number,,,\n"
               "Opportunity,Deal,StageName,stage,both,\"picklist:Closed Won=won,Closed Lost=lost\",,,\n");
    fclose(f);
    its_import(&env, "beta", csv);
    char out[8192];
    cr_assert_eq(its_cli(&env, "mappings show --org beta", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "Opportunity -> Deal") && strstr(out, "picklist:Closed Won=won"), "%s", out);
    const char *extra[] = {"SFBRIDGE_TOKEN_KEY=" ITS_TOKEN_KEY, NULL};
    pid_t w = it_spawn(&env, "sfbridge-sync", extra, "sync-mapreq");
    free(its_sim(&sim, "DELETE", "/__sim/requests", NULL, NULL));
    its_request(&env, "beta", conn, "full", "[\"Account\",\"Contact\",\"Opportunity\",\"Interaction\"]", id);
    struct json_object *ev = its_completion(&env, id, 1, 120000);
    const char *txt = json_object_to_json_string(ev);
    cr_assert_str_eq(json_get_str(ev, "status"), "failed", "%s", txt);
    struct json_object *er = json_get(ev, "error");
    cr_assert_str_eq(json_get_str(er, "code"), "MAPPING_REQUIRED", "%s", txt);
    cr_assert(strstr(json_get_str(er, "message"), "Interaction") && strstr(json_get_str(er, "message"), "beta"), "%s",
              txt);
    struct json_object *io = json_get(json_get(ev, "objects"), "Interaction");
    cr_assert_str_eq(json_get_str(json_get(io, "error"), "code"), "MAPPING_REQUIRED");
    cr_assert_eq(its_count(ev, "Account", "inserted"), 300);
    cr_assert_eq(its_count(ev, "Contact", "inserted"), 300);
    cr_assert_eq(its_count(ev, "Opportunity", "inserted"), 100);
    cr_assert_eq(its_sim_requests(&sim, "/query", "Interaction"), 0, "no query for the unmapped object");
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM activities"), 0);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM deals WHERE stage IN ('won', 'lost') OR stage NOT LIKE 'Closed%'"),
                 100, "picklist transform applied");
    /* an org with no mapping at all */
    char c2[37];
    its_connection(&env, &sim, "gamma", c2);
    its_request(&env, "gamma", c2, "incremental", NULL, id);
    ev = (json_object_put(ev), its_completion(&env, id, 2, 60000));
    cr_assert_str_eq(json_get_str(json_get(ev, "error"), "code"), "MAPPING_REQUIRED", "%s", json_object_to_json_string(ev));
    cr_assert(strstr(json_get_str(json_get(ev, "error"), "message"), "gamma"));
    json_object_put(ev);
    cr_assert_eq(it_stop(w, 30000), 0);
    it_sfsim_stop(&sim);
}

Test(it_sync, children_before_parents_link_later, .timeout = 120)
{
    struct it_env env;
    it_env_init(&env);
    struct it_sfsim sim;
    const char *args[] = {"--seed-accounts", "50", "--seed-contacts", "200", "--seed-opportunities", "100",
                          "--seed-interactions", "100", "--quiet", NULL};
    it_sfsim_start(&env, &sim, args);
    char conn[37], id[37];
    its_connection(&env, &sim, "acme", conn);
    its_import(&env, "acme", DEMO);
    const char *extra[] = {"SFBRIDGE_TOKEN_KEY=" ITS_TOKEN_KEY, NULL};
    pid_t w = it_spawn(&env, "sfbridge-sync", extra, "sync-order");
    its_request(&env, "acme", conn, "full", "[\"Contact\",\"Opportunity\",\"Interaction\"]", id);
    struct json_object *ev = its_completion(&env, id, 1, 60000);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", json_object_to_json_string(ev));
    json_object_put(ev);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM contacts WHERE company_id IS NULL AND company_sf_id IS NOT NULL"),
                 200, "no parent yet: the Salesforce id is kept");
    its_request(&env, "acme", conn, "full", "[\"Account\"]", id);
    ev = its_completion(&env, id, 2, 60000);
    json_object_put(ev);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM contacts t JOIN companies c ON c.id = t.company_id "
                                   "AND c.salesforce_id = t.company_sf_id"),
                 200, "linked when the parent landed");
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM deals t JOIN companies c ON c.id = t.company_id "
                                   "AND c.salesforce_id = t.company_sf_id"),
                 100);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM activities t JOIN companies c ON c.id = t.company_id "
                                   "AND c.salesforce_id = t.company_sf_id"),
                 100);
    cr_assert_eq(it_stop(w, 30000), 0);
    it_sfsim_stop(&sim);
}

/* Hard deletes (purged from the recycle bin, older than getDeleted's window) are invisible to an
 * incremental sync; `reconcile` compares every Salesforce Id with the local ones and soft-deletes
 * the missing rows, keeping them in place. */
Test(it_sync, reconcile_catches_hard_deletes, .timeout = 180)
{
    struct it_env env;
    it_env_init(&env);
    struct it_sfsim sim;
    const char *args[] = {"--seed-accounts", "300", "--seed-contacts", "0", "--seed-opportunities", "0",
                          "--seed-interactions", "0", "--quiet", NULL};
    it_sfsim_start(&env, &sim, args);
    char conn[37], id[37];
    its_connection(&env, &sim, "acme", conn);
    its_import(&env, "acme", DEMO);
    const char *extra[] = {"SFBRIDGE_TOKEN_KEY=" ITS_TOKEN_KEY, NULL};
    pid_t w = it_spawn(&env, "sfbridge-sync", extra, "sync-reconcile");
    its_request(&env, "acme", conn, "full", "[\"Account\"]", id);
    struct json_object *ev = its_completion(&env, id, 1, 120000);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", json_object_to_json_string(ev));
    json_object_put(ev);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM companies WHERE deleted_at IS NULL"), 300);

    /* purge 7 accounts at "Salesforce": gone even from queryAll and getDeleted */
    char *ids = it_sql(&env, "SELECT string_agg(salesforce_id, ',') FROM (SELECT salesforce_id FROM companies "
                             "ORDER BY salesforce_id LIMIT 7) x");
    long st;
    char path[160];
    for (char *t = ids, *c; t && *t; t = c ? c + 1 : NULL) {
        if ((c = strchr(t, ',')))
            *c = '\0';
        snprintf(path, sizeof path, "/__sim/records/Account/%s?hard=1", t);
        free(its_sim(&sim, "DELETE", path, NULL, &st));
        cr_assert(st >= 200 && st < 300, "DELETE %s: %ld", path, st);
    }
    free(ids);

    its_request(&env, "acme", conn, "incremental", "[\"Account\"]", id);
    ev = its_completion(&env, id, 2, 120000);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", json_object_to_json_string(ev));
    cr_assert_eq(its_count(ev, "Account", "deleted"), 0, "an incremental sync cannot see a purged record");
    json_object_put(ev);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM companies WHERE deleted_at IS NOT NULL"), 0);

    its_request(&env, "acme", conn, "reconcile", "[\"Account\"]", id);
    ev = its_completion(&env, id, 3, 120000);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", json_object_to_json_string(ev));
    cr_assert_eq(its_count(ev, "Account", "deleted"), 7, "%s", json_object_to_json_string(ev));
    json_object_put(ev);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM companies WHERE deleted_at IS NOT NULL"), 7);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM companies"), 300, "nothing is hard-deleted locally");

    /* a second reconcile finds nothing new */
    its_request(&env, "acme", conn, "reconcile", "[\"Account\"]", id);
    ev = its_completion(&env, id, 4, 120000);
    cr_assert_eq(its_count(ev, "Account", "deleted"), 0, "%s", json_object_to_json_string(ev));
    json_object_put(ev);
    cr_assert_eq(it_stop(w, 30000), 0);
    it_sfsim_stop(&sim);
}
