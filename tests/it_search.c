/*
 * Integration: search over synced data (issue 8 item 6) — migrations/0005_search.sql
 * (sfbridge_search / sfbridge_search_parse) and `sfbridge search`.
 *
 * The rows are inserted with SQL, as the sync worker would leave them (companies, deals
 * linked by company_id or only by company_sf_id, contacts, activities, attributes, one
 * soft-deleted row, a second org), plus a few hundred "noise" companies and deals so
 * ranking and filters are checked against volume. "Today" is pinned to 2026-11-02 so
 * "this quarter" is 2026-10-01..2026-12-31 and "next month" is December 2026.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "itlib.h"

#define TODAY "2026-11-02"

static const char *const seed_sql[] = {
    "INSERT INTO organizations (org_id, name, salesforce_enabled) VALUES ('demo-crm', 'Demo CRM', true), "
    "  ('other-org', 'Other', true);"
    "INSERT INTO connections (connection_id, org_id, user_id, status, instance_url) VALUES "
    "  ('11111111-1111-4111-8111-111111111111', 'demo-crm', 'u1', 'connected', 'https://acme.my.salesforce.com'),"
    "  ('22222222-2222-4222-8222-222222222222', 'other-org', 'u2', 'connected', 'https://other.my.salesforce.com');"
    "INSERT INTO companies (org_id, connection_id, salesforce_id, name, industry, billing_city, billing_country, "
    "  annual_revenue, website, attributes) VALUES "
    "  ('demo-crm', '11111111-1111-4111-8111-111111111111', '001000000000000001', 'Mercy Health Partners', "
    "   'Healthcare', 'Boston', 'US', 900000000, 'https://mercy.example', '{}'),"
    "  ('demo-crm', '11111111-1111-4111-8111-111111111111', '001000000000000002', 'St. Luke''s Medical Group', "
    "   'Healthcare', 'Chicago', 'US', 450000000, NULL, '{}'),"
    "  ('demo-crm', '11111111-1111-4111-8111-111111111111', '001000000000000003', 'Northwind Analytics', "
    "   'Technology', 'Zürich', 'CH', 40000000, 'https://northwind.example', '{\"tier\": \"Gold\"}'),"
    "  ('demo-crm', '11111111-1111-4111-8111-111111111111', '001000000000000004', 'Contoso Pharma', "
    "   'Biotechnology', 'Basel', 'CH', 2000000000, NULL, '{}'),"
    "  ('demo-crm', '11111111-1111-4111-8111-111111111111', '001000000000000005', 'Fabrikam Energy', "
    "   'Energy', 'Houston', 'US', 3000000, NULL, '{}'),"
    "  ('demo-crm', '11111111-1111-4111-8111-111111111111', '001000000000000006', 'Globex Bank', "
    "   'Banking', 'New York', 'US', 7000000000, NULL, '{}'),"
    "  ('demo-crm', '11111111-1111-4111-8111-111111111111', '001000000000000007', 'Initech Software', "
    "   'Technology', 'Austin', 'US', 1200000, NULL, '{}'),"
    "  ('demo-crm', '11111111-1111-4111-8111-111111111111', '001000000000000008', 'Umbrella Logistics', "
    "   'Transportation', 'Rotterdam', 'NL', 80000000, NULL, '{}');",
    "INSERT INTO companies (org_id, connection_id, salesforce_id, name, industry, deleted_at) VALUES "
    "  ('demo-crm', '11111111-1111-4111-8111-111111111111', '001000000000000009', 'Mercy Old Clinic', "
    "   'Healthcare', now());"
    "INSERT INTO companies (org_id, connection_id, salesforce_id, name, industry) VALUES "
    "  ('other-org', '22222222-2222-4222-8222-222222222222', '001000000000000901', 'Mercy Other Org', 'Healthcare');"
    /* noise: 300 companies with one small old deal each */
    "INSERT INTO companies (org_id, connection_id, salesforce_id, name, industry, billing_city) "
    "  SELECT 'demo-crm', '11111111-1111-4111-8111-111111111111', '001' || lpad((1000 + i)::text, 15, '0'), "
    "         'Retailer ' || i, (ARRAY['Retail', 'Manufacturing', 'Other'])[1 + i % 3], 'Springfield' "
    "    FROM generate_series(1, 300) i;"
    "INSERT INTO deals (org_id, connection_id, salesforce_id, company_sf_id, name, stage, amount, close_date) "
    "  SELECT 'demo-crm', '11111111-1111-4111-8111-111111111111', '006' || lpad((1000 + i)::text, 15, '0'), "
    "         '001' || lpad((1000 + i)::text, 15, '0'), 'Renewal ' || i, 'Prospecting', 10000 + i * 500, "
    "         date '2025-01-01' + i "
    "    FROM generate_series(1, 300) i;",
    /* deals: some linked by company_id (resolved), some only by company_sf_id (parent arrived later) */
    "INSERT INTO deals (org_id, connection_id, salesforce_id, company_sf_id, company_id, name, stage, amount, "
    "  close_date, attributes) "
    "  SELECT 'demo-crm', '11111111-1111-4111-8111-111111111111', v.sfid, v.csf, "
    "         CASE WHEN v.linked THEN (SELECT id FROM companies c WHERE c.salesforce_id = v.csf) END, "
    "         v.name, v.stage, v.amount, v.close::date, v.attrs::jsonb "
    "    FROM (VALUES "
    "  ('006000000000000001', '001000000000000001', true, 'Mercy EHR Expansion', 'Negotiation/Review', 7500000, "
    "   '2026-11-15', '{\"owner_name\": \"Jane Doe\"}'),"
    "  ('006000000000000002', '001000000000000001', false, 'Mercy Telehealth Pilot', 'Prospecting', 300000, "
    "   '2026-12-10', '{}'),"
    "  ('006000000000000003', '001000000000000002', true, 'St. Luke''s Imaging Upgrade', 'Proposal/Price Quote', "
    "   12000000, '2026-12-20', '{}'),"
    "  ('006000000000000004', '001000000000000002', false, 'St. Luke''s Staffing Platform', 'Qualification', "
    "   4000000, '2026-10-30', '{}'),"
    "  ('006000000000000005', '001000000000000001', true, 'Mercy Research Grant', 'Qualification', 9000000, "
    "   '2027-02-15', '{}'),"
    "  ('006000000000000006', '001000000000000003', true, 'Northwind Series B', 'Closed Won', 25000000, "
    "   '2026-09-30', '{}'),"
    "  ('006000000000000007', '001000000000000003', false, 'Northwind Data Platform', 'Value Proposition', "
    "   2000000, '2026-12-05', '{}'),"
    "  ('006000000000000008', '001000000000000004', true, 'Contoso Trial Supply', 'Needs Analysis', 1500000, "
    "   '2026-12-15', '{}'),"
    "  ('006000000000000009', '001000000000000005', true, 'Fabrikam Solar Farm', 'Negotiation/Review', 40000000, "
    "   '2027-01-20', '{}'),"
    "  ('006000000000000010', '001000000000000006', true, 'Globex Core Banking', 'Closed Lost', 6000000, "
    "   '2026-08-01', '{}'),"
    "  ('006000000000000011', '001000000000000007', true, 'Initech License Renewal', 'Closed Won', 800000, "
    "   '2026-10-15', '{}'),"
    "  ('006000000000000012', '001000000000000008', false, 'Umbrella Fleet Tracking', 'Prospecting', 450000, "
    "   '2026-11-25', '{\"owner_name\": \"Jane Doe\"}')"
    "  ) AS v(sfid, csf, linked, name, stage, amount, close, attrs);",
    "INSERT INTO deals (org_id, connection_id, salesforce_id, company_sf_id, name, stage, amount, close_date) VALUES "
    "  ('other-org', '22222222-2222-4222-8222-222222222222', '006000000000000901', '001000000000000901', "
    "   'Other Org Healthcare Deal', 'Negotiation/Review', 8000000, '2026-11-20');",
    "INSERT INTO contacts (org_id, connection_id, salesforce_id, company_sf_id, company_id, first_name, last_name, "
    "  email, title) "
    "  SELECT 'demo-crm', '11111111-1111-4111-8111-111111111111', v.sfid, v.csf, "
    "         (SELECT id FROM companies c WHERE c.salesforce_id = v.csf), v.fn, v.ln, v.email, v.title "
    "    FROM (VALUES "
    "  ('003000000000000001', '001000000000000003', 'Ana', 'Müller', 'ana.mueller@northwind.example', 'CFO'),"
    "  ('003000000000000002', '001000000000000003', 'Kenji', 'Sato', 'kenji.sato@northwind.example', "
    "   'Head of Data'),"
    "  ('003000000000000003', '001000000000000004', 'Maria', 'Garcia', 'maria.garcia@contoso.example', 'CEO'),"
    "  ('003000000000000004', '001000000000000001', 'John', 'Smith', 'john.smith@mercy.example', 'CIO')"
    "  ) AS v(sfid, csf, fn, ln, email, title);"
    "INSERT INTO activities (org_id, connection_id, salesforce_id, company_sf_id, company_id, subject, "
    "  activity_type, start_time, description) "
    "  SELECT 'demo-crm', '11111111-1111-4111-8111-111111111111', v.sfid, v.csf, "
    "         (SELECT id FROM companies c WHERE c.salesforce_id = v.csf), v.subject, v.kind, v.at::timestamptz, v.descr "
    "    FROM (VALUES "
    "  ('0rI000000000000001', '001000000000000003', 'Intro call with Northwind', 'Meeting', "
    "   '2026-10-20T14:00:00Z', 'Discussed growth plans; next step: data room access.'),"
    "  ('0rI000000000000002', '001000000000000001', 'Quarterly review', 'Call', '2026-11-01T09:00:00Z', "
    "   'Budget approval for the EHR expansion.')"
    "  ) AS v(sfid, csf, subject, kind, at, descr);",
    NULL};

static void seed(struct it_env *env)
{
    it_env_init(env);
    for (int i = 0; seed_sql[i]; i++)
        it_sql_ok(env, seed_sql[i]);
}

/* The names of the top results, "|"-separated, best first ("" when none). */
static char *top(const struct it_env *env, const char *org, const char *query, int n)
{
    char sql[2048];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(string_agg(s.name, '|' ORDER BY s.ordinality), '') FROM "
             "sfbridge_search('%s', $q$%s$q$, %d, '" TODAY "') WITH ORDINALITY s",
             org, query, n);
    char *out = it_sql(env, sql);
    return out ? out : strdup("");
}

static void expect_top(const struct it_env *env, const char *query, int n, const char *want)
{
    char *got = top(env, "demo-crm", query, n);
    cr_expect_str_eq(got, want, "search \"%s\": expected top %d \"%s\", got \"%s\"", query, n, want, got);
    free(got);
}

Test(it_search, filters_from_plain_language, .timeout = 120)
{
    struct it_env env;
    seed(&env);
    /* the example: industry + object + amount + close-date range; biggest first */
    expect_top(&env, "healthcare deals over 5M closing this quarter", 10,
               "St. Luke's Imaging Upgrade|Mercy EHR Expansion");
    expect_top(&env, "deals between 1M and 3M next month", 10, "Northwind Data Platform|Contoso Trial Supply");
    expect_top(&env, "closed won deals", 10, "Northwind Series B|Initech License Renewal");
    expect_top(&env, "tech deals under 1M", 10, "Initech License Renewal");
    expect_top(&env, "open deals over $10,000,000", 10, "Fabrikam Solar Farm|St. Luke's Imaging Upgrade");
    expect_top(&env, "negotiation", 10, "Fabrikam Solar Farm|Mercy EHR Expansion");
    expect_top(&env, "deals closing in q1 2027", 10, "Fabrikam Solar Farm|Mercy Research Grant");
    expect_top(&env, "lost deals", 10, "Globex Core Banking");
    expect_top(&env, "deals owned by jane", 10, "Mercy EHR Expansion|Umbrella Fleet Tracking");
    expect_top(&env, "energy companies", 10, "Fabrikam Energy");
    expect_top(&env, "companies over 1B", 10, "Globex Bank|Contoso Pharma");
    expect_top(&env, "healthcare deals after 2026-12-01", 10,
               "St. Luke's Imaging Upgrade|Mercy Research Grant|Mercy Telehealth Pilot");

    /* how it was understood, as the platform would read it */
    char *f = it_sql(&env, "SELECT sfbridge_search_parse('demo-crm', 'Healthcare deals over 5M closing this "
                           "quarter', '" TODAY "')::text");
    cr_assert(f);
    cr_expect(strstr(f, "\"types\": [\"Deal\"]"), "types: %s", f);
    cr_expect(strstr(f, "\"industries\": [\"Healthcare\"]"), "industries: %s", f);
    cr_expect(strstr(f, "\"amount_min\": 5000000"), "amount: %s", f);
    cr_expect(strstr(f, "\"date_from\": \"2026-10-01\"") && strstr(f, "\"date_to\": \"2026-12-31\""), "dates: %s", f);
    free(f);
}

Test(it_search, words_rank_names_first, .timeout = 120)
{
    struct it_env env;
    seed(&env);
    /* a company's name: the company itself first, then its deals */
    expect_top(&env, "northwind", 1, "Northwind Analytics");
    char *got = top(&env, "demo-crm", "northwind", 10);
    cr_expect(strstr(got, "Northwind Series B") && strstr(got, "Northwind Data Platform") &&
                  strstr(got, "Ana Müller") && strstr(got, "Intro call with Northwind"),
              "every Northwind record (deals, contacts, activities through their company): %s", got);
    free(got);
    expect_top(&env, "Ana Müller", 1, "Ana Müller");
    expect_top(&env, "cfo", 1, "Ana Müller");
    expect_top(&env, "contacts at contoso", 10, "Maria Garcia");
    expect_top(&env, "meetings with northwind", 10, "Intro call with Northwind");
    expect_top(&env, "data room", 10, "Intro call with Northwind");
    /* prefix matching and stemming */
    expect_top(&env, "fabri", 1, "Fabrikam Energy");
    expect_top(&env, "imaging upgrades", 1, "St. Luke's Imaging Upgrade");
    /* all words must match when some record matches them all */
    expect_top(&env, "mercy telehealth", 10, "Mercy Telehealth Pilot");
    /* otherwise any word, best first */
    got = top(&env, "demo-crm", "telehealth globex", 10);
    cr_expect(strstr(got, "Mercy Telehealth Pilot") && strstr(got, "Globex Bank"), "any-word fallback: %s", got);
    free(got);
    /* a deal whose parent company arrived later (only company_sf_id) still shows its company */
    char *company = it_sql(&env, "SELECT company FROM sfbridge_search('demo-crm', 'telehealth', 5, '" TODAY "')");
    cr_expect_str_eq(company, "Mercy Health Partners");
    free(company);
    /* the Salesforce link */
    char *url = it_sql(&env, "SELECT url FROM sfbridge_search('demo-crm', 'fabrikam solar', 1, '" TODAY "')");
    cr_expect_str_eq(url, "https://acme.my.salesforce.com/006000000000000009");
    free(url);
}

Test(it_search, isolation_deleted_and_index, .timeout = 120)
{
    struct it_env env;
    seed(&env);
    /* soft-deleted rows never come back */
    expect_top(&env, "old clinic", 10, "");
    /* other orgs' rows never come back, and the other org sees only its own */
    char *got = top(&env, "demo-crm", "mercy", 20);
    cr_expect(!strstr(got, "Other Org"), "another org's rows leaked: %s", got);
    free(got);
    got = top(&env, "other-org", "healthcare deals", 20);
    cr_expect_str_eq(got, "Other Org Healthcare Deal");
    free(got);
    /* nothing understood, nothing found: no rows (not "everything") */
    expect_top(&env, "the of and", 10, "");
    expect_top(&env, "zebra", 10, "");
    /* limit */
    got = top(&env, "demo-crm", "renewal", 5);
    int bars = 0;
    for (const char *p = got; *p; p++)
        bars += *p == '|';
    cr_expect_eq(bars, 4, "limit 5: %s", got);
    free(got);
    /* the full-text index is there and usable */
    it_sql_ok(&env, "CREATE FUNCTION plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$ "
                    "DECLARE l text; r text := ''; BEGIN SET LOCAL enable_seqscan = off; "
                    "FOR l IN EXECUTE 'EXPLAIN ' || q LOOP r := r || l || ' '; END LOOP; RETURN r; END $$;");
    char *plan = it_sql(&env, "SELECT plan_of($x$SELECT id FROM companies WHERE sfbridge_company_tsv(name, "
                              "industry, type, website, billing_city, billing_country, attributes) @@ "
                              "to_tsquery('simple', 'northwind:*')$x$)");
    cr_expect(plan && strstr(plan, "companies_search"), "the GIN index serves the search: %s", plan);
    free(plan);
    long long n = it_sql_long(&env, "SELECT count(*) FROM pg_indexes WHERE indexname IN ('companies_search', "
                                    "'deals_search', 'contacts_search', 'activities_search')");
    cr_expect_eq(n, 4, "the four full-text indexes exist");
}

/* run the CLI, capture stdout, return the exit code */
static int cli(const struct it_env *env, const char *args, char *out, size_t cap)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "SFBRIDGE_PG_DSN='%s' NO_COLOR=1 %s/sfbridge %s 2>&1", env->dsn, env->bindir, args);
    FILE *f = popen(cmd, "r");
    cr_assert(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(it_search, cli_table_json_and_exit_codes, .timeout = 120)
{
    struct it_env env;
    seed(&env);
    char out[16384];
    int rc = cli(&env, "search --org demo-crm --today " TODAY " healthcare deals over 5M closing this quarter", out,
                 sizeof out);
    cr_assert_eq(rc, 0, "exit 0 when found: %s", out);
    cr_expect(strstr(out, "understood: deals · industry Healthcare · amount >= 5,000,000 · dates "
                          "2026-10-01..2026-12-31 (this quarter)"),
              "the interpretation line: %s", out);
    cr_expect(strstr(out, "St. Luke's Imaging Upgrade") && strstr(out, "Mercy EHR Expansion"), "%s", out);
    cr_expect(strstr(out, "https://acme.my.salesforce.com/006000000000000003"), "Salesforce links: %s", out);
    cr_expect(strstr(out, "2 results"), "%s", out);
    char *a = strstr(out, "St. Luke's Imaging Upgrade"), *b = strstr(out, "Mercy EHR Expansion");
    cr_expect(a && b && a < b, "biggest deal first: %s", out);

    rc = cli(&env, "search --org demo-crm --json --today " TODAY " \"Northwind\"", out, sizeof out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_expect(!strncmp(out, "{", 1), "--json prints one JSON document: %s", out);
    cr_expect(strstr(out, "\"results\"") && strstr(out, "\"understood\"") &&
                  strstr(out, "\"url\":\"https://acme.my.salesforce.com/001000000000000003\""),
              "%s", out);

    rc = cli(&env, "search --org demo-crm zebra", out, sizeof out);
    cr_expect_eq(rc, 2, "exit 2 when nothing is found: %s", out);
    cr_expect(strstr(out, "no results"), "%s", out);

    rc = cli(&env, "search deals", out, sizeof out);
    cr_expect_eq(rc, 64, "--org missing is a usage error: %s", out);
    rc = cli(&env, "search --org demo-crm --limit 0 deals", out, sizeof out);
    cr_expect_eq(rc, 64, "bad --limit is a usage error: %s", out);
    rc = cli(&env, "search --help", out, sizeof out);
    cr_expect_eq(rc, 0);
    cr_expect(strstr(out, "sfbridge_search("), "help names the SQL function: %s", out);
    rc = cli(&env, "help search", out, sizeof out);
    cr_expect_eq(rc, 0, "sfbridge help search: %s", out);
    cr_expect(strstr(out, "usage: sfbridge search"), "%s", out);
}
