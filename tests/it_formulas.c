/*
 * Integration (issue 9, item 1): formula and roll-up freshness.
 *  - full sync; an Opportunity's Amount changes at the emulator (Account.Open_Pipeline__c is
 *    a roll-up computed at read time: the Account's SystemModstamp does not move);
 *  - an incremental sync updates the Opportunity but leaves the Account's open_pipeline stale;
 *  - a `formulas` sync re-reads only Id + the mapped calculated fields and makes it fresh,
 *    counts updated = rows whose formula values changed, and moves no watermark/cursor
 *    (sync_state cursors and the rows' sf_modstamp are untouched).
 */
#include <sys/wait.h>

#include "it_sync_lib.h"

static const char *mapping_json =
    "{\"external_id_field\": \"Platform_Id__c\", \"objects\": ["
    "{\"sf_object\": \"Account\", \"platform_object\": \"Company\", \"enabled\": true, \"fields\": ["
    "  {\"sf_field\": \"Name\", \"platform_field\": \"name\", \"direction\": \"both\"},"
    "  {\"sf_field\": \"Tier__c\", \"platform_field\": \"tier\", \"direction\": \"both\"},"
    "  {\"sf_field\": \"Open_Pipeline__c\", \"platform_field\": \"open_pipeline\", \"direction\": \"import\","
    "   \"transform\": \"number\"}]},"
    "{\"sf_object\": \"Opportunity\", \"platform_object\": \"Deal\", \"enabled\": true, \"fields\": ["
    "  {\"sf_field\": \"AccountId\", \"platform_field\": \"company_sf_id\", \"direction\": \"both\"},"
    "  {\"sf_field\": \"Name\", \"platform_field\": \"name\", \"direction\": \"both\"},"
    "  {\"sf_field\": \"StageName\", \"platform_field\": \"stage\", \"direction\": \"both\"},"
    "  {\"sf_field\": \"Amount\", \"platform_field\": \"amount\", \"direction\": \"both\", \"transform\": \"number\"},"
    "  {\"sf_field\": \"Expected_Revenue__c\", \"platform_field\": \"expected_revenue\", \"direction\": \"import\","
    "   \"transform\": \"number\"}]},"
    "{\"sf_object\": \"Contact\", \"platform_object\": \"Contact\", \"enabled\": true, \"fields\": ["
    "  {\"sf_field\": \"AccountId\", \"platform_field\": \"company_sf_id\", \"direction\": \"both\"},"
    "  {\"sf_field\": \"LastName\", \"platform_field\": \"last_name\", \"direction\": \"both\"}]}]}";

/* Requests to /query whose SOQL contains `has` and not `hasnt` (case-sensitive, on the decoded-ish query) */
static int queries_with(const struct it_sfsim *sim, const char *has, const char *hasnt)
{
    long st = 0;
    char *body = its_sim(sim, "GET", "/__sim/requests", NULL, &st);
    cr_assert_eq(st, 200);
    struct err e = ERR_INIT;
    struct json_object *a = json_parse(body, strlen(body), &e);
    cr_assert(a, "%s", e.msg);
    int n = 0;
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        struct json_object *r = json_object_array_get_idx(a, i);
        const char *p = json_get_str(r, "path"), *q = json_get_str(r, "query");
        if (p && strstr(p, "/query") && q && strstr(q, has) && (!hasnt || !strstr(q, hasnt)))
            n++;
    }
    json_object_put(a);
    free(body);
    return n;
}

static double sim_number(const struct it_sfsim *sim, const char *type, const char *id, const char *field)
{
    char path[256];
    snprintf(path, sizeof path, "/__sim/records/%s?where=Id=%s", type, id);
    long st = 0;
    char *body = its_sim(sim, "GET", path, NULL, &st);
    cr_assert_eq(st, 200, "%s", body ? body : "");
    struct err e = ERR_INIT;
    struct json_object *o = json_parse(body, strlen(body), &e);
    cr_assert(o, "%s", e.msg);
    struct json_object *recs = json_get(o, "records");
    cr_assert_eq(json_object_array_length(recs), 1, "%s", body);
    struct json_object *v = json_get(json_object_array_get_idx(recs, 0), field);
    double d = v ? json_object_get_double(v) : -1;
    json_object_put(o);
    free(body);
    return d;
}

static char *sync_state_text(const struct it_env *env, const char *conn)
{
    char sql[600];
    snprintf(sql, sizeof sql,
             "SELECT string_agg(concat_ws('|', sf_object, watermark, last_id, full_in_progress, full_watermark, "
             "full_last_id, window_seconds, last_full_at), E'\\n' ORDER BY sf_object) FROM sync_state "
             "WHERE connection_id = '%s'",
             conn);
    return it_sql(env, sql);
}

Test(it_formulas, formula_refresh_makes_stale_rollup_fresh, .timeout = 180)
{
    struct it_env env;
    it_env_init(&env);
    struct it_sfsim sim;
    const char *args[] = {"--seed-accounts", "20", "--seed-opportunities", "80", "--seed-contacts", "40", "--quiet",
                          NULL};
    it_sfsim_start(&env, &sim, args);
    char conn[37], id[37], sql[1024], file[128];
    its_connection(&env, &sim, "acme", conn);
    snprintf(file, sizeof file, "/tmp/it_formulas_%d.json", (int)getpid());
    FILE *f = fopen(file, "w");
    cr_assert(f);
    fputs(mapping_json, f);
    fclose(f);
    its_import(&env, "acme", file);
    unlink(file);
    const char *extra[] = {"SFBRIDGE_TOKEN_KEY=" ITS_TOKEN_KEY, NULL};
    pid_t w = it_spawn(&env, "sfbridge-sync", extra, "sync-formulas");

    its_request(&env, "acme", conn, "full", NULL, id);
    struct json_object *ev = its_completion(&env, id, 1, 60000);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", json_object_to_json_string(ev));
    json_object_put(ev);
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM companies WHERE attributes ? 'open_pipeline'"), 20);

    /* an open opportunity of an account: change its amount at the emulator */
    char *opp = it_sql(&env, "SELECT d.salesforce_id || ' ' || d.company_sf_id || ' ' || d.amount FROM deals d "
                             "WHERE d.stage NOT IN ('Closed Won', 'Closed Lost') AND d.amount IS NOT NULL "
                             "ORDER BY d.salesforce_id LIMIT 1");
    cr_assert(opp && *opp, "an open opportunity with an amount");
    char opp_id[19], acc_id[19];
    double amount = 0;
    cr_assert_eq(sscanf(opp, "%18s %18s %lf", opp_id, acc_id, &amount), 3, "%s", opp);
    free(opp);
    double before = sim_number(&sim, "Account", acc_id, "Open_Pipeline__c");
    snprintf(sql, sizeof sql,
             "SELECT (attributes->>'open_pipeline')::numeric = %.2f FROM companies WHERE salesforce_id = '%s'", before,
             acc_id);
    char *eq = it_sql(&env, sql);
    cr_assert_str_eq(eq, "t", "after the full sync the roll-up is fresh (%.2f)", before);
    free(eq);
    snprintf(sql, sizeof sql, "SELECT sf_modstamp::text FROM companies WHERE salesforce_id = '%s'", acc_id);
    char *acc_mod = it_sql(&env, sql);

    char path[128], body[64];
    snprintf(path, sizeof path, "/__sim/records/Opportunity/%s", opp_id);
    snprintf(body, sizeof body, "{\"Amount\": %.2f}", amount + 1000.0);
    long st = 0;
    sleep(1); /* a new SystemModstamp second for the opportunity */
    free(its_sim(&sim, "PATCH", path, body, &st));
    cr_assert(st == 200 || st == 204, "PATCH opportunity: %ld", st);
    double after = sim_number(&sim, "Account", acc_id, "Open_Pipeline__c");
    cr_assert(after > before + 999.0 && after < before + 1001.0, "emulator roll-up %.2f -> %.2f", before, after);

    /* incremental: the opportunity is read, the account is not (its SystemModstamp did not move) */
    its_request(&env, "acme", conn, "incremental", NULL, id);
    ev = its_completion(&env, id, 2, 60000);
    fprintf(stderr, "incremental: %s\n", json_object_to_json_string(ev));
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", json_object_to_json_string(ev));
    cr_assert_eq(its_count(ev, "Opportunity", "updated"), 1);
    cr_assert_eq(its_count(ev, "Account", "updated"), 0);
    json_object_put(ev);
    snprintf(sql, sizeof sql, "SELECT (attributes->>'open_pipeline')::numeric FROM companies WHERE salesforce_id = '%s'",
             acc_id);
    char *stale = it_sql(&env, sql);
    cr_assert(strtod(stale, NULL) > before - 0.005 && strtod(stale, NULL) < before + 0.005,
              "after an incremental sync the roll-up is stale: local %s, Salesforce %.2f", stale, after);
    free(stale);

    char *state_before = sync_state_text(&env, conn);
    free(its_sim(&sim, "DELETE", "/__sim/requests", NULL, &st));

    /* formulas: fresh */
    its_request(&env, "acme", conn, "formulas", NULL, id);
    ev = its_completion(&env, id, 3, 60000);
    const char *txt = json_object_to_json_string(ev);
    fprintf(stderr, "formulas: %s\n", txt);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", txt);
    cr_assert_str_eq(json_get_str(ev, "mode"), "formulas");
    cr_assert_eq(its_count(ev, "Account", "fetched"), 20, "%s", txt);
    cr_assert_eq(its_count(ev, "Account", "updated"), 1, "only the account whose roll-up changed: %s", txt);
    cr_assert_eq(its_count(ev, "Account", "unchanged"), 19, "%s", txt);
    cr_assert_eq(its_count(ev, "Account", "inserted"), 0, "%s", txt);
    cr_assert_eq(its_count(ev, "Opportunity", "fetched"), 80, "%s", txt);
    cr_assert_eq(its_count(ev, "Opportunity", "updated"), 0, "the incremental sync refreshed it already: %s", txt);
    cr_assert_eq(its_count(ev, "Opportunity", "unchanged"), 80, "%s", txt);
    cr_assert_eq(its_count(ev, "Contact", "fetched"), 0, "no formula field mapped on Contact: %s", txt);
    /* describe Account + Opportunity + Contact, one query page each for the two with formulas */
    cr_assert_eq(json_get_int(ev, "api_calls", -1), 5, "%s", txt);
    json_object_put(ev);
    snprintf(sql, sizeof sql,
             "SELECT (attributes->>'open_pipeline')::numeric = %.2f FROM companies WHERE salesforce_id = '%s'", after,
             acc_id);
    eq = it_sql(&env, sql);
    cr_assert_str_eq(eq, "t", "after the formulas sync the roll-up is fresh (%.2f)", after);
    free(eq);
    /* only Id + the calculated fields were read */
    cr_assert_eq(queries_with(&sim, "Open_Pipeline__c", NULL), 1);
    cr_assert_eq(queries_with(&sim, "Open_Pipeline__c", "Name"), 1, "Account: Id + Open_Pipeline__c only");
    cr_assert_eq(queries_with(&sim, "Expected_Revenue__c", "Amount"), 1, "Opportunity: Id + Expected_Revenue__c only");
    cr_assert_eq(queries_with(&sim, "Contact", NULL), 0, "nothing to refresh on Contact");
    cr_assert_eq(queries_with(&sim, "SystemModstamp", NULL), 0);
    /* no watermark or cursor moved; the account's sf_modstamp is the same */
    char *state_after = sync_state_text(&env, conn);
    cr_assert_str_eq(state_after, state_before, "sync_state cursors untouched");
    cr_assert_eq(it_sql_long(&env, "SELECT count(*) FROM sync_state WHERE last_formulas_at IS NOT NULL"), 2,
                 "last_formulas_at for the two objects with formulas");
    snprintf(sql, sizeof sql, "SELECT sf_modstamp::text FROM companies WHERE salesforce_id = '%s'", acc_id);
    char *acc_mod2 = it_sql(&env, sql);
    cr_assert_str_eq(acc_mod2, acc_mod, "sf_modstamp untouched");
    free(acc_mod);
    free(acc_mod2);
    free(state_before);
    free(state_after);

    /* a second refresh finds nothing changed */
    its_request(&env, "acme", conn, "formulas", "[\"Account\"]", id);
    ev = its_completion(&env, id, 4, 60000);
    cr_assert_eq(its_count(ev, "Account", "updated"), 0, "%s", json_object_to_json_string(ev));
    cr_assert_eq(its_count(ev, "Account", "unchanged"), 20, "%s", json_object_to_json_string(ev));
    json_object_put(ev);
    cr_assert_eq(it_stop(w, 30000), 0);
    it_sfsim_stop(&sim);
}

/* Above SFBRIDGE_BULK_THRESHOLD the refresh reads the rest with a Bulk job (Id + calculated fields, by Id) */
Test(it_formulas, formula_refresh_through_bulk, .timeout = 180)
{
    struct it_env env;
    it_env_init(&env);
    struct it_sfsim sim;
    const char *args[] = {"--seed-accounts", "3000", "--seed-opportunities", "100", "--quiet", NULL};
    it_sfsim_start(&env, &sim, args);
    char conn[37], id[37], sql[512], file[128];
    its_connection(&env, &sim, "acme", conn);
    snprintf(file, sizeof file, "/tmp/it_formulas_b_%d.json", (int)getpid());
    FILE *f = fopen(file, "w");
    cr_assert(f);
    fputs(mapping_json, f);
    fclose(f);
    its_import(&env, "acme", file);
    unlink(file);
    const char *extra[] = {"SFBRIDGE_TOKEN_KEY=" ITS_TOKEN_KEY, "SFBRIDGE_BULK_THRESHOLD=1000", NULL};
    pid_t w = it_spawn(&env, "sfbridge-sync", extra, "sync-formulas-bulk");
    its_request(&env, "acme", conn, "full", "[\"Account\", \"Opportunity\"]", id);
    struct json_object *ev = its_completion(&env, id, 1, 60000);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", json_object_to_json_string(ev));
    json_object_put(ev);
    /* the account with the highest Id (read by the Bulk part) gets a new open opportunity */
    char *last = it_sql(&env, "SELECT max(salesforce_id) FROM companies");
    char body[256];
    snprintf(body, sizeof body,
             "{\"Name\": \"Late deal\", \"StageName\": \"Prospecting\", \"CloseDate\": \"2027-06-30\", "
             "\"Amount\": 777000, \"AccountId\": \"%s\"}",
             last);
    long st = 0;
    free(its_sim(&sim, "POST", "/__sim/records/Opportunity", body, &st));
    cr_assert(st == 200 || st == 201, "create opportunity: %ld", st);
    double fresh = sim_number(&sim, "Account", last, "Open_Pipeline__c");
    free(its_sim(&sim, "DELETE", "/__sim/requests", NULL, &st));
    its_request(&env, "acme", conn, "formulas", "[\"Account\"]", id);
    ev = its_completion(&env, id, 2, 60000);
    const char *txt = json_object_to_json_string(ev);
    fprintf(stderr, "formulas through bulk: %s\n", txt);
    cr_assert_str_eq(json_get_str(ev, "status"), "succeeded", "%s", txt);
    cr_assert_eq(its_count(ev, "Account", "fetched"), 3000, "%s", txt);
    cr_assert_eq(its_count(ev, "Account", "updated"), 1, "%s", txt);
    cr_assert_eq(its_count(ev, "Account", "unchanged"), 2999, "%s", txt);
    json_object_put(ev);
    cr_assert_eq(its_sim_requests(&sim, "/jobs/query", NULL) > 0, 1, "a Bulk query job was used");
    snprintf(sql, sizeof sql,
             "SELECT (attributes->>'open_pipeline')::numeric = %.2f FROM companies WHERE salesforce_id = '%s'", fresh,
             last);
    char *eq = it_sql(&env, sql);
    cr_assert_str_eq(eq, "t", "fresh through the Bulk part (%.2f)", fresh);
    free(eq);
    free(last);
    cr_assert_eq(it_stop(w, 30000), 0);
    it_sfsim_stop(&sim);
}
