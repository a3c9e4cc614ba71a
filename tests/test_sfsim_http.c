/*
 * Unit tests of the emulator over real HTTP: every fault switch of
 * /__sim/faults, OAuth errors, query paging, upsert status codes, collections
 * and composite all-or-none rollback, Bulk 2.0 paging, the request log.
 *
 * Library entry: sim_new() + sim_start() with port 0 start the server in
 * this process (one per test: Criterion forks each test); libcurl talks to
 * it; sim_free() stops it.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sfsim/sim.h"

static struct sim *S;
static char TOK[256];
static char V[] = "/services/data/v60.0";

struct resp {
    long status;
    char *body;
    size_t len;
    char hdrs[4096];
    CURLcode rc;
    double secs;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct resp *r = ud;
    char *nb = realloc(r->body, r->len + sz * n + 1);
    if (!nb)
        return 0;
    r->body = nb;
    memcpy(r->body + r->len, p, sz * n);
    r->len += sz * n;
    r->body[r->len] = '\0';
    return sz * n;
}

static size_t on_hdr(char *p, size_t sz, size_t n, void *ud)
{
    struct resp *r = ud;
    size_t have = strlen(r->hdrs), k = sz * n;
    if (have + k < sizeof r->hdrs) {
        memcpy(r->hdrs + have, p, k);
        r->hdrs[have + k] = '\0';
    }
    return k;
}

/* method, path (appended to the base URL), body or NULL; auth adds the
 * Bearer token; extra is one more header or NULL */
static struct resp req(const char *method, const char *path, const char *body, bool auth,
                       const char *ctype, const char *extra)
{
    struct resp r = {0};
    CURL *c = curl_easy_init();
    char url[4096];
    snprintf(url, sizeof url, "%s%s", sim_base_url(S), path);
    struct curl_slist *h = NULL;
    char ah[400];
    if (auth) {
        snprintf(ah, sizeof ah, "Authorization: Bearer %s", TOK);
        h = curl_slist_append(h, ah);
    }
    if (body) {
        char ct[128];
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype ? ctype : "application/json");
        h = curl_slist_append(h, ct);
    }
    if (extra)
        h = curl_slist_append(h, extra);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_hdr);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    r.rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r.secs);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (!r.body)
        r.body = calloc(1, 1);
    return r;
}

static struct resp api(const char *method, const char *sub, const char *body)
{
    char path[4096];
    snprintf(path, sizeof path, "%s%s", V, sub);
    return req(method, path, body, true, NULL, NULL);
}

static struct resp query(const char *soql)
{
    CURL *c = curl_easy_init();
    char *e = curl_easy_escape(c, soql, 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/query?q=%s", V, e);
    curl_free(e);
    curl_easy_cleanup(c);
    return req("GET", path, NULL, true, NULL, NULL);
}

static struct resp faults(const char *json) { return req("POST", "/__sim/faults", json, false, NULL, NULL); }

static json_object *J(const struct resp *r)
{
    json_object *o = json_tokener_parse(r->body);
    cr_assert_not_null(o, "not JSON (status %ld): %s", r->status, r->body);
    return o;
}

static const char *sget(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

static int64_t iget(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : -1;
}

/* the errorCode of a REST error array */
static void expect_error(struct resp *r, long status, const char *code)
{
    cr_expect_eq(r->status, status, "status %ld, want %ld: %s", r->status, status, r->body);
    json_object *o = J(r);
    cr_assert(json_object_is_type(o, json_type_array), "error body is an array: %s", r->body);
    cr_expect_str_eq(sget(json_object_array_get_idx(o, 0), "errorCode"), code, "%s", r->body);
    json_object *f;
    cr_expect(json_object_object_get_ex(json_object_array_get_idx(o, 0), "fields", &f));
    json_object_put(o);
}

static void done(struct resp *r) { free(r->body); }

static void start(long accounts, long contacts)
{
    struct sim_config c;
    sim_config_defaults(&c);
    c.seed_accounts = accounts;
    c.seed_contacts = contacts;
    c.seed_opportunities = 20;
    c.bulk_delay_ms = 100;
    c.quiet = true;
    char err[256];
    S = sim_new(&c, err, sizeof err);
    cr_assert_not_null(S, "%s", err);
    cr_assert(sim_start(S, err, sizeof err), "%s", err);
    cr_assert(sim_issue_token(S, TOK, sizeof TOK));
}

static void setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    start(50, 20);
}

static void teardown(void)
{
    sim_free(S);
    S = NULL;
    curl_global_cleanup();
}

TestSuite(sfsim_http, .init = setup, .fini = teardown, .timeout = 60);

Test(sfsim_http, limit_header_and_auth)
{
    struct resp r = query("SELECT Id FROM Account LIMIT 1");
    cr_expect_eq(r.status, 200);
    cr_expect(strstr(r.hdrs, "Sforce-Limit-Info: api-usage=1/100000") != NULL, "%s", r.hdrs);
    done(&r);
    r = req("GET", "/services/data/v60.0/limits", NULL, false, NULL, NULL);
    expect_error(&r, 401, "INVALID_SESSION_ID");
    done(&r);
    r = req("GET", "/services/data/v60.0/limits", NULL, false, NULL,
            "Authorization: Bearer 00Dnope!AQnope");
    expect_error(&r, 401, "INVALID_SESSION_ID");
    done(&r);
    r = api("GET", "/nothing/here", NULL);
    expect_error(&r, 404, "NOT_FOUND");
    done(&r);
}

Test(sfsim_http, fault_expire_sessions)
{
    struct resp r = api("GET", "/limits", NULL);
    cr_expect_eq(r.status, 200);
    done(&r);
    r = faults("{\"expire_sessions\":true}");
    cr_expect_eq(r.status, 200);
    done(&r);
    r = api("GET", "/limits", NULL);
    expect_error(&r, 401, "INVALID_SESSION_ID");
    done(&r);
}

/* the web-server flow by hand; returns the token JSON */
static json_object *oauth_code_flow(const char *verifier, const char *challenge)
{
    char path[1024];
    snprintf(path, sizeof path,
             "/services/oauth2/authorize?response_type=code&client_id=sfbridge-test-client"
             "&redirect_uri=http%%3A%%2F%%2Flocalhost%%2Fcb&state=s1&scope=api%%20refresh_token"
             "%s%s",
             challenge ? "&code_challenge=" : "", challenge ? challenge : "");
    struct resp r = req("GET", path, NULL, false, NULL, NULL);
    cr_assert_eq(r.status, 302, "%s", r.body);
    char *loc = strstr(r.hdrs, "Location: http://localhost/cb?code=");
    cr_assert_not_null(loc, "%s", r.hdrs);
    char code[128];
    cr_assert_eq(sscanf(loc, "Location: http://localhost/cb?code=%127[^&\r\n]", code), 1);
    cr_expect(strstr(loc, "&state=s1") != NULL);
    done(&r);
    char body[1024];
    snprintf(body, sizeof body,
             "grant_type=authorization_code&code=%s&client_id=sfbridge-test-client"
             "&client_secret=sfbridge-test-secret&redirect_uri=http%%3A%%2F%%2Flocalhost%%2Fcb%s%s",
             code, verifier ? "&code_verifier=" : "", verifier ? verifier : "");
    r = req("POST", "/services/oauth2/token", body, false, "application/x-www-form-urlencoded",
            NULL);
    json_object *o = J(&r);
    json_object_object_add(o, "_status", json_object_new_int((int)r.status));
    done(&r);
    return o;
}

Test(sfsim_http, oauth_pkce_and_errors)
{
    /* RFC 7636 appendix B pair */
    json_object *t = oauth_code_flow("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
                                     "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    cr_expect_eq(iget(t, "_status"), 200);
    cr_expect(strncmp(sget(t, "refresh_token"), "5Aep", 4) == 0);
    cr_expect_eq(strlen(sget(t, "issued_at")), 13);
    json_object_put(t);
    t = oauth_code_flow("wrong-verifier-wrong-verifier-wrong-verifier-0000",
                        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    cr_expect_eq(iget(t, "_status"), 400);
    cr_expect_str_eq(sget(t, "error"), "invalid_request");
    json_object_put(t);
    t = oauth_code_flow(NULL, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    cr_expect_str_eq(sget(t, "error"), "invalid_grant");
    json_object_put(t);

    struct resp r = req("POST", "/services/oauth2/token",
                        "grant_type=refresh_token&refresh_token=x&client_id=nope", false,
                        "application/x-www-form-urlencoded", NULL);
    json_object *o = J(&r);
    cr_expect_eq(r.status, 400);
    cr_expect_str_eq(sget(o, "error"), "invalid_client_id");
    cr_expect_str_eq(sget(o, "error_description"), "client identifier invalid");
    json_object_put(o);
    done(&r);
    r = req("POST", "/services/oauth2/token",
            "grant_type=refresh_token&refresh_token=x&client_id=sfbridge-test-client"
            "&client_secret=bad",
            false, "application/x-www-form-urlencoded", NULL);
    o = J(&r);
    cr_expect_str_eq(sget(o, "error"), "invalid_client");
    cr_expect_str_eq(sget(o, "error_description"), "invalid client credentials");
    json_object_put(o);
    done(&r);
}

Test(sfsim_http, fault_revoke_refresh_tokens_and_revoke_endpoint)
{
    json_object *t = oauth_code_flow(NULL, NULL);
    char rt[256], body[512];
    snprintf(rt, sizeof rt, "%s", sget(t, "refresh_token"));
    json_object_put(t);
    snprintf(body, sizeof body,
             "grant_type=refresh_token&refresh_token=%s&client_id=sfbridge-test-client", rt);
    struct resp r = req("POST", "/services/oauth2/token", body, false,
                        "application/x-www-form-urlencoded", NULL);
    cr_expect_eq(r.status, 200, "%s", r.body);
    json_object *o = J(&r);
    cr_expect_null(sget(o, "refresh_token"), "no rotation by default");
    json_object_put(o);
    done(&r);
    r = faults("{\"revoke_refresh_tokens\":true}");
    done(&r);
    r = req("POST", "/services/oauth2/token", body, false, "application/x-www-form-urlencoded",
            NULL);
    o = J(&r);
    cr_expect_eq(r.status, 400);
    cr_expect_str_eq(sget(o, "error"), "invalid_grant");
    cr_expect_str_eq(sget(o, "error_description"), "expired access/refresh token");
    json_object_put(o);
    done(&r);

    /* /revoke on a fresh refresh token kills its access tokens */
    t = oauth_code_flow(NULL, NULL);
    char at[256];
    snprintf(at, sizeof at, "%s", sget(t, "access_token"));
    snprintf(body, sizeof body, "token=%s", sget(t, "refresh_token"));
    json_object_put(t);
    r = req("POST", "/services/oauth2/revoke", body, false, "application/x-www-form-urlencoded",
            NULL);
    cr_expect_eq(r.status, 200);
    done(&r);
    snprintf(TOK, sizeof TOK, "%s", at);
    r = api("GET", "/limits", NULL);
    expect_error(&r, 401, "INVALID_SESSION_ID");
    done(&r);
}

Test(sfsim_http, fault_api_limit)
{
    struct resp r = faults("{\"api_limit\":10,\"api_used\":9}");
    done(&r);
    r = api("GET", "/limits", NULL);
    cr_expect_eq(r.status, 200);
    cr_expect(strstr(r.hdrs, "api-usage=10/10") != NULL, "%s", r.hdrs);
    json_object *o = J(&r), *d;
    cr_assert(json_object_object_get_ex(o, "DailyApiRequests", &d));
    cr_expect_eq(iget(d, "Max"), 10);
    cr_expect_eq(iget(d, "Remaining"), 0);
    json_object_put(o);
    done(&r);
    r = api("GET", "/limits", NULL);
    expect_error(&r, 403, "REQUEST_LIMIT_EXCEEDED");
    cr_expect(strstr(r.hdrs, "Sforce-Limit-Info: api-usage=10/10") != NULL, "%s", r.hdrs);
    done(&r);
    r = req("POST", "/__sim/reset_usage", "{}", false, NULL, NULL);
    done(&r);
    r = api("GET", "/limits", NULL);
    cr_expect_eq(r.status, 200);
    done(&r);
}

Test(sfsim_http, fault_503_next_and_percent)
{
    struct resp r = faults("{\"fail_503_next\":2}");
    done(&r);
    for (int i = 0; i < 2; i++) {
        r = api("GET", "/limits", NULL);
        expect_error(&r, 503, "SERVER_UNAVAILABLE");
        done(&r);
    }
    r = api("GET", "/limits", NULL);
    cr_expect_eq(r.status, 200);
    done(&r);
    r = faults("{\"fail_503_percent\":100}");
    done(&r);
    r = api("GET", "/limits", NULL);
    cr_expect_eq(r.status, 503);
    done(&r);
    r = faults("{\"fail_503_percent\":50}");
    done(&r);
    int fails = 0;
    for (int i = 0; i < 40; i++) {
        r = api("GET", "/limits", NULL);
        fails += r.status == 503;
        done(&r);
    }
    cr_expect(fails > 5 && fails < 35, "about half fail, got %d/40", fails);
    r = req("POST", "/__sim/reset", "{}", false, NULL, NULL);
    done(&r);
    r = api("GET", "/limits", NULL);
    cr_expect_eq(r.status, 200, "reset clears the faults");
    done(&r);
}

Test(sfsim_http, fault_latency)
{
    struct resp r = faults("{\"latency_ms\":300}");
    done(&r);
    r = api("GET", "/limits", NULL);
    cr_expect_eq(r.status, 200);
    cr_expect(r.secs >= 0.29, "took %.3f s", r.secs);
    done(&r);
}

Test(sfsim_http, fault_lock_row)
{
    struct resp r = faults("{\"lock_row_next\":1}");
    done(&r);
    r = api("POST", "/sobjects/Account", "{\"Name\":\"Locked\"}");
    expect_error(&r, 400, "UNABLE_TO_LOCK_ROW");
    done(&r);
    r = api("POST", "/sobjects/Account", "{\"Name\":\"Locked\"}");
    cr_expect_eq(r.status, 201);
    done(&r);
    /* per record in a collection */
    r = faults("{\"lock_row_next\":1}");
    done(&r);
    r = api("POST", "/composite/sobjects",
            "{\"allOrNone\":false,\"records\":[{\"attributes\":{\"type\":\"Account\"},\"Name\":\"a\"},"
            "{\"attributes\":{\"type\":\"Account\"},\"Name\":\"b\"}]}");
    json_object *o = J(&r);
    json_object *e0, *errs;
    cr_assert(json_object_object_get_ex(json_object_array_get_idx(o, 0), "errors", &errs));
    e0 = json_object_array_get_idx(errs, 0);
    cr_expect_str_eq(sget(e0, "statusCode"), "UNABLE_TO_LOCK_ROW");
    cr_expect_str_eq(sget(json_object_array_get_idx(o, 1), "success"), "true");
    json_object_put(o);
    done(&r);
}

Test(sfsim_http, fault_malformed_json)
{
    struct resp r = faults("{\"malformed_json_next\":1}");
    done(&r);
    r = query("SELECT Id, Name FROM Account");
    cr_expect_eq(r.status, 200);
    json_object *o = json_tokener_parse(r.body);
    cr_expect_null(o, "body must not parse: %s", r.body);
    json_object_put(o);
    done(&r);
    r = query("SELECT Id, Name FROM Account");
    o = J(&r);
    json_object_put(o);
    done(&r);
}

Test(sfsim_http, fault_drop_connection)
{
    struct resp r = faults("{\"drop_connection_next\":1}");
    done(&r);
    r = query("SELECT Id, Name FROM Account");
    cr_expect_neq(r.rc, CURLE_OK, "the transfer must fail, got %ld with %zu bytes", r.status, r.len);
    done(&r);
    r = query("SELECT Id, Name FROM Account");
    cr_expect_eq(r.rc, CURLE_OK);
    cr_expect_eq(r.status, 200);
    done(&r);
}

Test(sfsim_http, fault_query_timeout)
{
    struct resp r = faults("{\"query_timeout_above\":10}");
    done(&r);
    r = query("SELECT Id FROM Account");
    expect_error(&r, 400, "QUERY_TIMEOUT");
    done(&r);
    r = query("SELECT Id FROM Account LIMIT 10");
    cr_expect_eq(r.status, 200);
    done(&r);
}

Test(sfsim_http, fault_delay_after_write)
{
    struct resp r = faults("{\"delay_after_write_ms\":400}");
    done(&r);
    r = api("POST", "/sobjects/Account", "{\"Name\":\"Slow Write\",\"Platform_Id__c\":\"slow-1\"}");
    cr_expect_eq(r.status, 201);
    cr_expect(r.secs >= 0.39, "took %.3f s", r.secs);
    done(&r);
    r = req("GET", "/__sim/records/Account?where=Platform_Id__c=slow-1&count=1", NULL, false, NULL, NULL);
    json_object *o = J(&r);
    cr_expect_eq(iget(o, "count"), 1);
    json_object_put(o);
    done(&r);
}

Test(sfsim_http, fault_validation_rule)
{
    struct resp r = faults("{\"validation_rule\":{\"object\":\"Contact\",\"field\":\"Email\","
                           "\"contains\":\"invalid\"}}");
    done(&r);
    r = api("POST", "/sobjects/Contact", "{\"LastName\":\"V\",\"Email\":\"x.invalid@example.com\"}");
    expect_error(&r, 400, "FIELD_CUSTOM_VALIDATION_EXCEPTION");
    json_object *o = J(&r), *f;
    cr_assert(json_object_object_get_ex(json_object_array_get_idx(o, 0), "fields", &f));
    cr_expect_str_eq(json_object_get_string(json_object_array_get_idx(f, 0)), "Email");
    json_object_put(o);
    done(&r);
    r = api("POST", "/sobjects/Contact", "{\"LastName\":\"V\",\"Email\":\"ok@example.com\"}");
    cr_expect_eq(r.status, 201);
    done(&r);
    r = req("GET", "/__sim/faults", NULL, false, NULL, NULL);
    cr_expect(strstr(r.body, "\"contains\":\"invalid\"") != NULL, "%s", r.body);
    done(&r);
}

Test(sfsim_http, fault_bulk_fail_and_bulk_paging)
{
    struct resp r = faults("{\"bulk_fail_next\":1}");
    done(&r);
    r = api("POST", "/jobs/query", "{\"operation\":\"query\",\"query\":\"SELECT Id FROM Account\"}");
    json_object *o = J(&r);
    char id[32];
    snprintf(id, sizeof id, "%s", sget(o, "id"));
    cr_expect_str_eq(sget(o, "state"), "UploadComplete");
    json_object_put(o);
    done(&r);
    usleep(150000);
    char path[256];
    snprintf(path, sizeof path, "/jobs/query/%s", id);
    r = api("GET", path, NULL);
    o = J(&r);
    cr_expect_str_eq(sget(o, "state"), "Failed");
    cr_expect_not_null(sget(o, "errorMessage"));
    json_object_put(o);
    done(&r);

    r = api("POST", "/jobs/query",
            "{\"operation\":\"query\",\"query\":\"SELECT Id, Name, Account.Name FROM Contact\"}");
    o = J(&r);
    snprintf(id, sizeof id, "%s", sget(o, "id"));
    json_object_put(o);
    done(&r);
    snprintf(path, sizeof path, "/jobs/query/%s/results", id);
    r = api("GET", path, NULL);
    expect_error(&r, 412, "JOB_NOT_COMPLETE");
    done(&r);
    usleep(150000);
    snprintf(path, sizeof path, "/jobs/query/%s", id);
    r = api("GET", path, NULL);
    o = J(&r);
    cr_expect_str_eq(sget(o, "state"), "JobComplete");
    cr_expect_eq(iget(o, "numberRecordsProcessed"), 20);
    json_object_put(o);
    done(&r);
    /* 20 contacts in pages of 8: 8, 8, 4 */
    char loc[64] = "";
    int pages = 0, rows = 0;
    for (;;) {
        snprintf(path, sizeof path, "/jobs/query/%s/results?maxRecords=8%s%s", id,
                 loc[0] ? "&locator=" : "", loc);
        r = api("GET", path, NULL);
        cr_assert_eq(r.status, 200, "%s", r.body);
        cr_expect(strncmp(r.body, "\"Id\",\"Name\",\"Account.Name\"\n", 27) == 0, "%s", r.body);
        int lines = 0;
        for (char *p = r.body; *p; p++)
            lines += *p == '\n';
        rows += lines - 1;
        pages++;
        char *h = strstr(r.hdrs, "Sforce-Locator: ");
        cr_assert_not_null(h);
        sscanf(h, "Sforce-Locator: %63[^\r\n]", loc);
        cr_expect(strstr(r.hdrs, "Sforce-NumberOfRecords: ") != NULL);
        done(&r);
        if (strcmp(loc, "null") == 0 || pages > 5)
            break;
    }
    cr_expect_eq(pages, 3);
    cr_expect_eq(rows, 20);
}

Test(sfsim_http, query_paging_with_batch_size)
{
    sim_free(S);
    start(4500, 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/query?q=SELECT+Id+FROM+Account+ORDER+BY+Id", V);
    int pages = 0, total = 0;
    char prev[32] = "";
    for (;;) {
        struct resp r = req("GET", path, NULL, true, NULL, "Sforce-Query-Options: batchSize=1000");
        cr_assert_eq(r.status, 200, "%s", r.body);
        json_object *o = J(&r), *recs, *nx;
        cr_expect_eq(iget(o, "totalSize"), 4500);
        cr_assert(json_object_object_get_ex(o, "records", &recs));
        size_t n = json_object_array_length(recs);
        for (size_t i = 0; i < n; i++) {
            const char *id = sget(json_object_array_get_idx(recs, i), "Id");
            cr_expect(strcmp(prev, id) < 0, "ids ascend across pages");
            snprintf(prev, sizeof prev, "%s", id);
        }
        total += (int)n;
        pages++;
        bool more = json_object_object_get_ex(o, "nextRecordsUrl", &nx);
        cr_expect_eq(more, !json_object_get_boolean(json_object_object_get(o, "done")));
        if (more)
            snprintf(path, sizeof path, "%s", json_object_get_string(nx));
        json_object_put(o);
        done(&r);
        if (!more || pages > 10)
            break;
    }
    cr_expect_eq(pages, 5);
    cr_expect_eq(total, 4500);
    struct resp r = api("GET", "/query/0r8Hs0000000000bogus-2000", NULL);
    expect_error(&r, 400, "INVALID_QUERY_LOCATOR");
    done(&r);
}

Test(sfsim_http, upsert_status_codes)
{
    struct resp r = api("PATCH", "/sobjects/Account/Platform_Id__c/u-1", "{\"Name\":\"U1\"}");
    cr_expect_eq(r.status, 201, "%s", r.body);
    json_object *o = J(&r);
    cr_expect_str_eq(sget(o, "created"), "true");
    char id[32];
    snprintf(id, sizeof id, "%s", sget(o, "id"));
    json_object_put(o);
    done(&r);
    r = api("PATCH", "/sobjects/Account/Platform_Id__c/u-1", "{\"Name\":\"U1b\"}");
    cr_expect_eq(r.status, 200);
    o = J(&r);
    cr_expect_str_eq(sget(o, "created"), "false");
    cr_expect_str_eq(sget(o, "id"), id);
    json_object_put(o);
    done(&r);
    /* two records with one non-unique external id value */
    for (int i = 0; i < 2; i++) {
        r = req("POST", "/__sim/records/Account", "{\"Name\":\"L\",\"Legacy_Id__c\":\"dup\"}",
                false, NULL, NULL);
        cr_expect_eq(r.status, 201);
        done(&r);
    }
    r = api("PATCH", "/sobjects/Account/Legacy_Id__c/dup", "{\"Name\":\"M\"}");
    cr_expect_eq(r.status, 300, "%s", r.body);
    o = J(&r);
    cr_expect(json_object_is_type(o, json_type_array) && json_object_array_length(o) == 2);
    json_object_put(o);
    done(&r);
    r = api("PATCH", "/sobjects/Account/Name/x", "{\"Type\":\"Other\"}");
    expect_error(&r, 404, "NOT_FOUND");
    done(&r);
    r = api("POST", "/sobjects/Account", "{\"Name\":\"D\",\"Platform_Id__c\":\"u-1\"}");
    expect_error(&r, 400, "DUPLICATE_VALUE");
    done(&r);
    r = api("POST", "/sobjects/Contact", "{\"LastName\":\"X\",\"AccountId\":\"001Hs000000zzzzzzz\"}");
    cr_expect_eq(r.status, 400);
    done(&r);
    r = api("POST", "/sobjects/Account", "{\"Name\":\"X\",\"Id\":\"001Hs0000000001IAA\"}");
    expect_error(&r, 400, "INVALID_FIELD");
    done(&r);
    r = api("POST", "/sobjects/Contact", "{\"FirstName\":\"NoLast\"}");
    expect_error(&r, 400, "REQUIRED_FIELD_MISSING");
    done(&r);
}

Test(sfsim_http, collections_all_or_none_rolls_back)
{
    struct resp r = api("POST", "/composite/sobjects",
                        "{\"allOrNone\":true,\"records\":["
                        "{\"attributes\":{\"type\":\"Account\"},\"Name\":\"AON 1\"},"
                        "{\"attributes\":{\"type\":\"Account\"},\"Industry\":\"Banking\"},"
                        "{\"attributes\":{\"type\":\"Account\"},\"Name\":\"AON 3\"}]}");
    cr_expect_eq(r.status, 200);
    json_object *o = J(&r), *errs;
    cr_assert_eq(json_object_array_length(o), 3);
    const char *want[] = {"ALL_OR_NONE_OPERATION_ROLLED_BACK", "REQUIRED_FIELD_MISSING",
                          "ALL_OR_NONE_OPERATION_ROLLED_BACK"};
    for (size_t i = 0; i < 3; i++) {
        json_object *e = json_object_array_get_idx(o, i);
        cr_expect_str_eq(sget(e, "success"), "false");
        cr_assert(json_object_object_get_ex(e, "errors", &errs));
        cr_expect_str_eq(sget(json_object_array_get_idx(errs, 0), "statusCode"), want[i]);
    }
    json_object_put(o);
    done(&r);
    r = query("SELECT COUNT() FROM Account WHERE Name LIKE 'AON%'");
    o = J(&r);
    cr_expect_eq(iget(o, "totalSize"), 0, "nothing was kept");
    json_object_put(o);
    done(&r);
    /* more than 200 records */
    char *big = malloc(201 * 64 + 64);
    size_t n = (size_t)snprintf(big, 64, "{\"records\":[");
    for (int i = 0; i < 201; i++)
        n += (size_t)snprintf(big + n, 64, "%s{\"attributes\":{\"type\":\"Account\"},\"Name\":\"b\"}",
                              i ? "," : "");
    snprintf(big + n, 8, "]}");
    r = api("POST", "/composite/sobjects", big);
    expect_error(&r, 400, "EXCEEDED_ID_LIMIT");
    done(&r);
    free(big);
}

Test(sfsim_http, composite_all_or_none_rolls_back)
{
    struct resp r = api("POST", "/composite",
                        "{\"allOrNone\":true,\"compositeRequest\":["
                        "{\"method\":\"POST\",\"url\":\"/services/data/v60.0/sobjects/Account\","
                        "\"referenceId\":\"acc\",\"body\":{\"Name\":\"Rollback Parent\"}},"
                        "{\"method\":\"POST\",\"url\":\"/services/data/v60.0/sobjects/Contact\","
                        "\"referenceId\":\"con\",\"body\":{\"AccountId\":\"@{acc.id}\"}}]}");
    cr_expect_eq(r.status, 200);
    json_object *o = J(&r), *cr;
    cr_assert(json_object_object_get_ex(o, "compositeResponse", &cr));
    json_object *a = json_object_array_get_idx(cr, 0), *c = json_object_array_get_idx(cr, 1);
    cr_expect_eq(iget(a, "httpStatusCode"), 400);
    cr_expect(strstr(json_object_to_json_string(a), "PROCESSING_HALTED") != NULL);
    cr_expect_eq(iget(c, "httpStatusCode"), 400);
    cr_expect(strstr(json_object_to_json_string(c), "REQUIRED_FIELD_MISSING") != NULL);
    cr_expect_str_eq(sget(c, "referenceId"), "con");
    json_object_put(o);
    done(&r);
    r = query("SELECT COUNT() FROM Account WHERE Name = 'Rollback Parent'");
    o = J(&r);
    cr_expect_eq(iget(o, "totalSize"), 0, "the parent was rolled back");
    json_object_put(o);
    done(&r);
    /* the same without allOrNone keeps the parent, and counts as one call */
    r = req("GET", "/__sim/stats", NULL, false, NULL, NULL);
    o = J(&r);
    int64_t used = iget(o, "api_used");
    json_object_put(o);
    done(&r);
    r = api("POST", "/composite",
            "{\"compositeRequest\":["
            "{\"method\":\"POST\",\"url\":\"/services/data/v60.0/sobjects/Account\","
            "\"referenceId\":\"acc\",\"body\":{\"Name\":\"Kept Parent\"}},"
            "{\"method\":\"POST\",\"url\":\"/services/data/v60.0/sobjects/Contact\","
            "\"referenceId\":\"con\",\"body\":{\"LastName\":\"K\",\"AccountId\":\"@{acc.id}\"}},"
            "{\"method\":\"GET\",\"url\":\"/services/data/v60.0/query?q=SELECT+Id+FROM+Contact+WHERE+AccountId='@{acc.id}'\","
            "\"referenceId\":\"q\"}]}");
    o = J(&r);
    cr_assert(json_object_object_get_ex(o, "compositeResponse", &cr));
    cr_expect_eq(iget(json_object_array_get_idx(cr, 1), "httpStatusCode"), 201);
    json_object *qb;
    cr_assert(json_object_object_get_ex(json_object_array_get_idx(cr, 2), "body", &qb));
    cr_expect_eq(iget(qb, "totalSize"), 1);
    json_object_put(o);
    done(&r);
    r = req("GET", "/__sim/stats", NULL, false, NULL, NULL);
    o = J(&r);
    cr_expect_eq(iget(o, "api_used"), used + 1, "stats reads are free, a composite is one call");
    json_object_put(o);
    done(&r);
}

Test(sfsim_http, control_records_and_request_log)
{
    struct resp r = req("DELETE", "/__sim/requests", NULL, false, NULL, NULL);
    done(&r);
    r = query("SELECT Id FROM Account LIMIT 1");
    done(&r);
    r = req("POST", "/__sim/records/Account", "{\"Name\":\"Direct\",\"Platform_Id__c\":\"d-1\"}",
            false, NULL, NULL);
    json_object *o = J(&r);
    char id[32], path[256];
    snprintf(id, sizeof id, "%s", sget(o, "id"));
    json_object_put(o);
    done(&r);
    /* a direct edit bumps SystemModstamp like a real one */
    r = req("POST", "/__sim/clock", "{\"advance_s\":120}", false, NULL, NULL);
    done(&r);
    snprintf(path, sizeof path, "/__sim/records/Account/%s", id);
    r = req("PATCH", path, "{\"Industry\":\"Energy\"}", false, NULL, NULL);
    cr_expect_eq(r.status, 204);
    done(&r);
    snprintf(path, sizeof path, "/sobjects/Account/%s?fields=CreatedDate,SystemModstamp,Industry", id);
    r = api("GET", path, NULL);
    o = J(&r);
    cr_expect_str_eq(sget(o, "Industry"), "Energy");
    cr_expect(strcmp(sget(o, "SystemModstamp"), sget(o, "CreatedDate")) > 0);
    json_object_put(o);
    done(&r);
    snprintf(path, sizeof path, "/__sim/records/Account/%s", id);
    r = req("DELETE", path, NULL, false, NULL, NULL);
    done(&r);
    r = req("GET", "/__sim/records/Account?where=IsDeleted=true&count=1", NULL, false, NULL, NULL);
    o = J(&r);
    cr_expect_eq(iget(o, "count"), 1);
    json_object_put(o);
    done(&r);
    snprintf(path, sizeof path, "/__sim/records/Account/%s?hard=1", id);
    r = req("DELETE", path, NULL, false, NULL, NULL);
    done(&r);
    r = req("GET", "/__sim/records/Account?where=IsDeleted=true&count=1", NULL, false, NULL, NULL);
    o = J(&r);
    cr_expect_eq(iget(o, "count"), 0, "purged records are gone");
    json_object_put(o);
    done(&r);

    r = req("GET", "/__sim/requests", NULL, false, NULL, NULL);
    o = J(&r);
    cr_assert_eq(json_object_array_length(o), 2, "control calls are not logged: %s", r.body);
    json_object *e = json_object_array_get_idx(o, 0);
    cr_expect_str_eq(sget(e, "method"), "GET");
    cr_expect_str_eq(sget(e, "path"), "/services/data/v60.0/query");
    cr_expect_str_eq(sget(e, "query"), "q=SELECT Id FROM Account LIMIT 1");
    cr_expect_eq(iget(e, "status"), 200);
    int64_t seq = iget(e, "seq");
    json_object_put(o);
    done(&r);
    snprintf(path, sizeof path, "/__sim/requests?since=%lld", (long long)seq);
    r = req("GET", path, NULL, false, NULL, NULL);
    o = J(&r);
    cr_expect_eq(json_object_array_length(o), 1);
    json_object_put(o);
    done(&r);
    r = req("GET", "/__sim/stats", NULL, false, NULL, NULL);
    o = J(&r);
    json_object *be;
    cr_assert(json_object_object_get_ex(o, "by_endpoint", &be));
    cr_expect_eq(iget(be, "query"), 1);
    cr_expect_eq(iget(be, "sobject_retrieve"), 1);
    json_object_put(o);
    done(&r);
}

Test(sfsim_http, formula_fields_follow_their_inputs)
{
    struct resp r = api("POST", "/sobjects/Account", "{\"Name\":\"Rollup\"}");
    json_object *o = J(&r);
    char acc[32], path[256], body[256];
    snprintf(acc, sizeof acc, "%s", sget(o, "id"));
    json_object_put(o);
    done(&r);
    snprintf(body, sizeof body,
             "{\"Name\":\"O\",\"StageName\":\"Prospecting\",\"CloseDate\":\"2030-01-01\","
             "\"Amount\":1234.5,\"AccountId\":\"%s\"}", acc);
    r = api("POST", "/sobjects/Opportunity", body);
    o = J(&r);
    char opp[32];
    snprintf(opp, sizeof opp, "%s", sget(o, "id"));
    json_object_put(o);
    done(&r);
    snprintf(path, sizeof path, "/sobjects/Account/%s?fields=Open_Pipeline__c,SystemModstamp", acc);
    r = api("GET", path, NULL);
    o = J(&r);
    cr_expect_str_eq(sget(o, "Open_Pipeline__c"), "1234.5");
    char stamp[40];
    snprintf(stamp, sizeof stamp, "%s", sget(o, "SystemModstamp"));
    json_object_put(o);
    done(&r);
    snprintf(path, sizeof path, "/sobjects/Opportunity/%s", opp);
    r = req("POST", "/__sim/clock", "{\"advance_s\":60}", false, NULL, NULL);
    done(&r);
    r = api("PATCH", path, "{\"StageName\":\"Closed Won\"}");
    cr_expect_eq(r.status, 204);
    done(&r);
    snprintf(path, sizeof path, "/sobjects/Account/%s?fields=Open_Pipeline__c,SystemModstamp", acc);
    r = api("GET", path, NULL);
    o = J(&r);
    cr_expect_str_eq(sget(o, "Open_Pipeline__c"), "0.0");
    cr_expect_str_eq(sget(o, "SystemModstamp"), stamp, "a roll-up change leaves the stamp alone");
    json_object_put(o);
    done(&r);
    snprintf(path, sizeof path, "/sobjects/Opportunity/%s?fields=Probability,Expected_Revenue__c,IsWon", opp);
    r = api("GET", path, NULL);
    o = J(&r);
    cr_expect_str_eq(sget(o, "Probability"), "100.0");
    cr_expect_str_eq(sget(o, "Expected_Revenue__c"), "1234.5");
    cr_expect_str_eq(sget(o, "IsWon"), "true");
    json_object_put(o);
    done(&r);
}

Test(sfsim_http, session_timeout_follows_the_clock)
{
    struct resp r = api("GET", "/limits", NULL);
    cr_expect_eq(r.status, 200);
    done(&r);
    r = req("POST", "/__sim/clock", "{\"advance_s\":7201}", false, NULL, NULL);
    done(&r);
    r = api("GET", "/limits", NULL);
    expect_error(&r, 401, "INVALID_SESSION_ID");
    done(&r);
}

Test(sfsim_http, rotation_and_introspection)
{
    sim_free(S);
    struct sim_config c;
    sim_config_defaults(&c);
    c.rotate_refresh_tokens = true;
    c.quiet = true;
    char err[256];
    S = sim_new(&c, err, sizeof err);
    cr_assert(S && sim_start(S, err, sizeof err), "%s", err);
    json_object *t = oauth_code_flow(NULL, NULL);
    char rt[256], body[512];
    snprintf(rt, sizeof rt, "%s", sget(t, "refresh_token"));
    snprintf(body, sizeof body,
             "token=%s&client_id=sfbridge-test-client&client_secret=sfbridge-test-secret",
             sget(t, "access_token"));
    json_object_put(t);
    struct resp r = req("POST", "/services/oauth2/introspect", body, false,
                        "application/x-www-form-urlencoded", NULL);
    json_object *o = J(&r);
    cr_expect_str_eq(sget(o, "active"), "true");
    cr_expect_str_eq(sget(o, "token_type"), "access_token");
    cr_expect_str_eq(sget(o, "username"), "demo@example.com");
    json_object_put(o);
    done(&r);
    snprintf(body, sizeof body,
             "grant_type=refresh_token&refresh_token=%s&client_id=sfbridge-test-client", rt);
    r = req("POST", "/services/oauth2/token", body, false, "application/x-www-form-urlencoded",
            NULL);
    o = J(&r);
    cr_expect_eq(r.status, 200);
    cr_assert_not_null(sget(o, "refresh_token"), "rotation returns a new refresh token");
    cr_expect_str_neq(sget(o, "refresh_token"), rt);
    json_object_put(o);
    done(&r);
    r = req("POST", "/services/oauth2/token", body, false, "application/x-www-form-urlencoded",
            NULL);
    o = J(&r);
    cr_expect_eq(r.status, 400, "the rotated-out token is dead");
    cr_expect_str_eq(sget(o, "error"), "invalid_grant");
    json_object_put(o);
    done(&r);
    r = req("GET", "/__sim/stats", NULL, false, NULL, NULL);
    o = J(&r);
    cr_expect_eq(iget(o, "refresh_grants"), 1);
    cr_expect_eq(iget(o, "code_grants"), 1);
    json_object_put(o);
    done(&r);
}

/* HTTPS with a CA from tests/rig/gen-certs (run from the repo root): the
 * right CA verifies, an unrelated one is refused */
Test(sfsim_http, tls_with_the_rig_ca)
{
    sim_free(S);
    S = NULL;
    char dir[] = "/tmp/sfsim-certs-XXXXXX", cmd[256], cert[128], key[128], ca[128], other[128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(cmd, sizeof cmd, "tests/rig/gen-certs %s >/dev/null", dir);
    cr_assert_eq(system(cmd), 0, "tests/rig/gen-certs failed (run from the repo root)");
    snprintf(cert, sizeof cert, "%s/server.pem", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(other, sizeof other, "%s/other-ca.pem", dir);
    struct sim_config c;
    sim_config_defaults(&c);
    c.tls_cert = cert;
    c.tls_key = key;
    c.quiet = true;
    char err[256];
    S = sim_new(&c, err, sizeof err);
    cr_assert(S && sim_start(S, err, sizeof err), "%s", err);
    cr_assert(strncmp(sim_base_url(S), "https://127.0.0.1:", 18) == 0, "%s", sim_base_url(S));
    const char *cas[] = {ca, other};
    for (int i = 0; i < 2; i++) {
        CURL *h = curl_easy_init();
        char url[256];
        struct resp r = {0};
        snprintf(url, sizeof url, "%s/services/data/", sim_base_url(S));
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CAINFO, cas[i]);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
        CURLcode rc = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(h);
        if (i == 0) {
            cr_expect_eq(rc, CURLE_OK, "%s", curl_easy_strerror(rc));
            cr_expect_eq(status, 200);
        } else {
            cr_expect_eq(rc, CURLE_PEER_FAILED_VERIFICATION, "%s", curl_easy_strerror(rc));
        }
        free(r.body);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}

/* ------------------------------------------------------------------------
 * FSC: Interaction.RelatedRecordId/AssociatedRecordId and InteractionAttendee.
 * Seed: 6 accounts, 12 contacts (contact j -> account j % 6), 12 opportunities
 * (same spread), 10 interactions (interaction i -> account i % 6), 20
 * attendees (attendee k -> interaction k % 10).
 */
static void setup_fsc(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct sim_config c;
    sim_config_defaults(&c);
    c.seed_accounts = 6;
    c.seed_contacts = 12;
    c.seed_opportunities = 12;
    c.seed_interactions = 10;
    c.seed_attendees = 20;
    c.bulk_delay_ms = 50;
    c.quiet = true;
    char err[256];
    S = sim_new(&c, err, sizeof err);
    cr_assert_not_null(S, "%s", err);
    cr_assert(sim_start(S, err, sizeof err), "%s", err);
    cr_assert(sim_issue_token(S, TOK, sizeof TOK));
}

TestSuite(sfsim_fsc, .init = setup_fsc, .fini = teardown, .timeout = 60);

static json_object *oget(json_object *o, const char *k)
{
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

/* the first record of a query result, its field k copied into out */
static void first_id(const char *soql, const char *k, char *out, size_t outsz)
{
    struct resp r = query(soql);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_object *o = J(&r);
    json_object *rec = json_object_array_get_idx(oget(o, "records"), 0);
    cr_assert_not_null(rec, "no record for %s", soql);
    snprintf(out, outsz, "%s", sget(rec, k));
    json_object_put(o);
    done(&r);
}

Test(sfsim_fsc, seeded_attendees_and_related_records)
{
    struct resp r = query("SELECT Id, Name, InteractionId, Interaction.Name, Interaction.AccountId, "
                          "ContactId, Contact.Email, Contact.AccountId, UserId, EmailAddress, "
                          "AttendeeType, IsOrganizer FROM InteractionAttendee ORDER BY Id");
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_object *o = J(&r), *recs = oget(o, "records");
    cr_expect_eq(iget(o, "totalSize"), 20);
    int external = 0, organizers = 0;
    for (size_t i = 0; i < json_object_array_length(recs); i++) {
        json_object *a = json_object_array_get_idx(recs, i);
        json_object *in = oget(a, "Interaction"), *ct = oget(a, "Contact");
        cr_assert(json_object_is_type(in, json_type_object), "Interaction is nested: %s",
                  json_object_to_json_string(a));
        cr_expect_str_eq(sget(oget(in, "attributes"), "type"), "Interaction");
        cr_expect_not_null(sget(in, "Name"));
        cr_expect_eq(strncmp(sget(a, "Id"), "0ia", 3), 0);
        if (strcmp(sget(a, "AttendeeType"), "External") == 0) {
            external++;
            cr_assert(json_object_is_type(ct, json_type_object));
            cr_expect_str_eq(sget(ct, "AccountId"), sget(in, "AccountId"),
                             "an attendee is a contact of the interaction's account");
            cr_expect_str_eq(sget(ct, "Email"), sget(a, "EmailAddress"));
            cr_expect_null(sget(a, "UserId"));
        } else {
            cr_expect_str_eq(sget(a, "AttendeeType"), "Internal");
            cr_expect(ct == NULL, "no contact for an internal attendee");
            cr_expect_eq(strncmp(sget(a, "UserId"), "005", 3), 0);
        }
        organizers += json_object_get_boolean(oget(a, "IsOrganizer"));
    }
    /* 2 contacts per account: rounds 0 and 1 are contacts, nothing else */
    cr_expect_eq(external, 20);
    cr_expect_eq(organizers, 0);
    json_object_put(o);
    done(&r);

    r = query("SELECT Id, AccountId, RelatedRecordId, RelatedRecord.AccountId, RelatedRecord.Name, "
              "AssociatedRecordId FROM Interaction");
    cr_assert_eq(r.status, 200, "%s", r.body);
    o = J(&r);
    recs = oget(o, "records");
    int related = 0;
    for (size_t i = 0; i < json_object_array_length(recs); i++) {
        json_object *in = json_object_array_get_idx(recs, i);
        cr_expect(oget(in, "AssociatedRecordId") == NULL);
        if (!sget(in, "RelatedRecordId")) {
            cr_expect(oget(in, "RelatedRecord") == NULL);
            continue;
        }
        related++;
        json_object *rr = oget(in, "RelatedRecord");
        cr_expect_str_eq(sget(oget(rr, "attributes"), "type"), "Opportunity");
        cr_expect_str_eq(sget(rr, "AccountId"), sget(in, "AccountId"),
                         "the related opportunity belongs to the interaction's account");
    }
    cr_expect(related >= 2 && related <= 8, "about half are related: %d of 10", related);
    json_object_put(o);
    done(&r);
    /* filterable, and the parent relationship works in WHERE too */
    r = query("SELECT COUNT() FROM Interaction WHERE RelatedRecordId != null");
    o = J(&r);
    cr_expect_eq(iget(o, "totalSize"), related);
    json_object_put(o);
    done(&r);
    r = query("SELECT COUNT() FROM InteractionAttendee WHERE Interaction.Name != null AND "
              "AttendeeType = 'External' AND IsOrganizer = false");
    o = J(&r);
    cr_expect_eq(iget(o, "totalSize"), 20);
    json_object_put(o);
    done(&r);
}

Test(sfsim_fsc, more_attendees_than_contacts_become_internal)
{
    /* a second emulator: 25 attendees on 10 interactions is 3 rounds, the
     * third one (after both contacts) internal users, the organizers */
    struct sim *keep = S;
    struct sim_config c;
    sim_config_defaults(&c);
    c.seed_accounts = 6;
    c.seed_contacts = 12;
    c.seed_interactions = 10;
    c.seed_attendees = 25;
    c.quiet = true;
    char err[256];
    S = sim_new(&c, err, sizeof err);
    cr_assert(S && sim_start(S, err, sizeof err), "%s", err);
    cr_assert(sim_issue_token(S, TOK, sizeof TOK));
    struct resp r = query("SELECT COUNT() FROM InteractionAttendee WHERE AttendeeType = 'Internal' "
                          "AND IsOrganizer = true AND UserId != null AND ContactId = null");
    json_object *o = J(&r);
    cr_expect_eq(iget(o, "totalSize"), 5);
    json_object_put(o);
    done(&r);
    sim_free(S);
    S = keep;
}

Test(sfsim_fsc, create_update_upsert_and_lookup_validation)
{
    char inter[32], con[32], acc[32], opp[32], path[256], body[512];
    first_id("SELECT Id FROM Interaction ORDER BY Id LIMIT 1", "Id", inter, sizeof inter);
    first_id("SELECT Id FROM Contact ORDER BY Id LIMIT 1", "Id", con, sizeof con);
    first_id("SELECT Id FROM Account ORDER BY Id LIMIT 1", "Id", acc, sizeof acc);
    first_id("SELECT Id FROM Opportunity ORDER BY Id LIMIT 1", "Id", opp, sizeof opp);

    /* unknown ContactId (well-formed 15-char id), wrong type, malformed */
    snprintf(body, sizeof body, "{\"InteractionId\":\"%s\",\"ContactId\":\"003Hs00000zzzzz\"}", inter);
    struct resp r = api("POST", "/sobjects/InteractionAttendee", body);
    expect_error(&r, 400, "INVALID_CROSS_REFERENCE_KEY");
    cr_expect(strstr(r.body, "\"ContactId\"") != NULL, "the field is named: %s", r.body);
    done(&r);
    snprintf(body, sizeof body, "{\"InteractionId\":\"%s\",\"ContactId\":\"%s\"}", inter, acc);
    r = api("POST", "/sobjects/InteractionAttendee", body);
    expect_error(&r, 400, "INVALID_CROSS_REFERENCE_KEY");
    done(&r);
    snprintf(body, sizeof body, "{\"InteractionId\":\"%s\",\"ContactId\":\"nope\"}", inter);
    r = api("POST", "/sobjects/InteractionAttendee", body);
    expect_error(&r, 400, "MALFORMED_ID");
    done(&r);
    snprintf(body, sizeof body, "{\"ContactId\":\"%s\"}", con);
    r = api("POST", "/sobjects/InteractionAttendee", body);
    expect_error(&r, 400, "REQUIRED_FIELD_MISSING");
    cr_expect(strstr(r.body, "InteractionId") != NULL, "%s", r.body);
    done(&r);
    snprintf(body, sizeof body, "{\"InteractionId\":\"%s\",\"AttendeeType\":\"External\",\"Bogus\":1}",
             inter);
    r = api("POST", "/sobjects/InteractionAttendee", body);
    expect_error(&r, 400, "INVALID_FIELD");
    done(&r);

    /* a good one: IsOrganizer defaults to false */
    snprintf(body, sizeof body,
             "{\"InteractionId\":\"%s\",\"ContactId\":\"%s\",\"Name\":\"Guest\","
             "\"EmailAddress\":\"guest@example.org\",\"AttendeeType\":\"External\"}",
             inter, con);
    r = api("POST", "/sobjects/InteractionAttendee", body);
    cr_expect_eq(r.status, 201, "%s", r.body);
    json_object *o = J(&r);
    char att[32];
    snprintf(att, sizeof att, "%s", sget(o, "id"));
    cr_expect_eq(strncmp(att, "0ia", 3), 0, "%s", att);
    json_object_put(o);
    done(&r);
    snprintf(path, sizeof path,
             "/sobjects/InteractionAttendee/%s?fields=IsOrganizer,AttendeeResponse,Name", att);
    r = api("GET", path, NULL);
    o = J(&r);
    cr_expect(json_object_is_type(oget(o, "IsOrganizer"), json_type_boolean));
    cr_expect_not(json_object_get_boolean(oget(o, "IsOrganizer")));
    cr_expect(oget(o, "AttendeeResponse") == NULL);
    json_object_put(o);
    done(&r);
    snprintf(path, sizeof path, "/sobjects/InteractionAttendee/%s", att);
    r = api("PATCH", path, "{\"AttendeeResponse\":\"Accepted\",\"IsOrganizer\":true}");
    cr_expect_eq(r.status, 204, "%s", r.body);
    done(&r);
    r = api("PATCH", path, "{\"InteractionId\":null}");
    expect_error(&r, 400, "REQUIRED_FIELD_MISSING");
    done(&r);
    r = api("PATCH", path, "{\"ContactId\":\"003Hs00000zzzzz\"}");
    expect_error(&r, 400, "INVALID_CROSS_REFERENCE_KEY");
    done(&r);
    snprintf(body, sizeof body, "SELECT AttendeeResponse, IsOrganizer, Contact.Email FROM "
                                "InteractionAttendee WHERE Id = '%s'", att);
    r = query(body);
    o = J(&r);
    json_object *rec = json_object_array_get_idx(oget(o, "records"), 0);
    cr_expect_str_eq(sget(rec, "AttendeeResponse"), "Accepted");
    cr_expect(json_object_get_boolean(oget(rec, "IsOrganizer")));
    cr_expect_not_null(sget(oget(rec, "Contact"), "Email"));
    json_object_put(o);
    done(&r);

    /* upsert by Platform_Id__c: 201 then 200, and a duplicate value refused */
    snprintf(body, sizeof body, "{\"InteractionId\":\"%s\",\"Name\":\"Ext 1\"}", inter);
    r = api("PATCH", "/sobjects/InteractionAttendee/Platform_Id__c/att-1", body);
    cr_expect_eq(r.status, 201, "%s", r.body);
    done(&r);
    r = api("PATCH", "/sobjects/InteractionAttendee/Platform_Id__c/att-1",
            "{\"AttendeeResponse\":\"Declined\"}");
    cr_expect_eq(r.status, 200, "%s", r.body);
    o = J(&r);
    cr_expect_str_eq(sget(o, "created"), "false");
    json_object_put(o);
    done(&r);
    r = api("PATCH", path, "{\"Platform_Id__c\":\"att-1\"}");
    expect_error(&r, 400, "DUPLICATE_VALUE");
    done(&r);

    /* Interaction.RelatedRecordId: an Opportunity, nothing else */
    snprintf(body, sizeof body, "{\"Name\":\"Deal review\",\"RelatedRecordId\":\"%s\"}", acc);
    r = api("POST", "/sobjects/Interaction", body);
    expect_error(&r, 400, "INVALID_CROSS_REFERENCE_KEY");
    done(&r);
    r = api("POST", "/sobjects/Interaction",
            "{\"Name\":\"Deal review\",\"RelatedRecordId\":\"006Hs00000zzzzz\"}");
    expect_error(&r, 400, "INVALID_CROSS_REFERENCE_KEY");
    done(&r);
    snprintf(body, sizeof body,
             "{\"Name\":\"Deal review\",\"AccountId\":\"%s\",\"RelatedRecordId\":\"%s\","
             "\"AssociatedRecordId\":\"%s\"}",
             acc, opp, acc);
    r = api("POST", "/sobjects/Interaction", body);
    cr_expect_eq(r.status, 201, "%s", r.body);
    o = J(&r);
    char ni[32];
    snprintf(ni, sizeof ni, "%s", sget(o, "id"));
    json_object_put(o);
    done(&r);
    snprintf(path, sizeof path, "/sobjects/Interaction/%s", ni);
    r = api("PATCH", path, "{\"RelatedRecordId\":null,\"AssociatedRecordId\":\"006Hs00000zzzzz\"}");
    expect_error(&r, 400, "INVALID_CROSS_REFERENCE_KEY");
    done(&r);
    snprintf(body, sizeof body, "{\"AssociatedRecordId\":\"%s\"}", opp);
    r = api("PATCH", path, body);
    cr_expect_eq(r.status, 204, "%s", r.body);
    done(&r);
    snprintf(body, sizeof body, "SELECT RelatedRecordId, RelatedRecord.Name, AssociatedRecordId, "
                                "AssociatedRecord.Name FROM Interaction WHERE Id = '%s'", ni);
    r = query(body);
    o = J(&r);
    rec = json_object_array_get_idx(oget(o, "records"), 0);
    cr_expect_str_eq(sget(rec, "RelatedRecordId"), opp);
    cr_expect_str_eq(sget(rec, "AssociatedRecordId"), opp);
    cr_expect_not_null(sget(oget(rec, "RelatedRecord"), "Name"));
    cr_expect_str_eq(sget(oget(oget(rec, "AssociatedRecord"), "attributes"), "type"),
                     "Opportunity");
    json_object_put(o);
    done(&r);
}

Test(sfsim_fsc, composite_interaction_with_attendees)
{
    char con[32], con2[32], opp[32], acc[32], body[4096];
    first_id("SELECT Id, AccountId FROM Opportunity ORDER BY Id LIMIT 1", "Id", opp, sizeof opp);
    first_id("SELECT Id, AccountId FROM Opportunity ORDER BY Id LIMIT 1", "AccountId", acc,
             sizeof acc);
    snprintf(body, sizeof body, "SELECT Id FROM Contact WHERE AccountId = '%s' ORDER BY Id", acc);
    first_id(body, "Id", con, sizeof con);
    snprintf(body, sizeof body,
             "SELECT Id FROM Contact WHERE AccountId = '%s' ORDER BY Id DESC", acc);
    first_id(body, "Id", con2, sizeof con2);
    cr_assert_str_neq(con, con2);

    /* all or none: the second attendee has an unknown contact -> nothing kept */
    snprintf(body, sizeof body,
             "{\"allOrNone\":true,\"compositeRequest\":["
             "{\"method\":\"POST\",\"url\":\"/services/data/v60.0/sobjects/Interaction\","
             "\"referenceId\":\"meet\",\"body\":{\"Name\":\"Rolled back meeting\","
             "\"AccountId\":\"%s\",\"RelatedRecordId\":\"%s\"}},"
             "{\"method\":\"POST\",\"url\":\"/services/data/v60.0/sobjects/InteractionAttendee\","
             "\"referenceId\":\"a1\",\"body\":{\"InteractionId\":\"@{meet.id}\",\"ContactId\":\"%s\"}},"
             "{\"method\":\"POST\",\"url\":\"/services/data/v60.0/sobjects/InteractionAttendee\","
             "\"referenceId\":\"a2\",\"body\":{\"InteractionId\":\"@{meet.id}\","
             "\"ContactId\":\"003Hs00000zzzzz\"}}]}",
             acc, opp, con);
    struct resp r = api("POST", "/composite", body);
    cr_expect_eq(r.status, 200, "%s", r.body);
    json_object *o = J(&r), *cr = oget(o, "compositeResponse");
    cr_assert_eq(json_object_array_length(cr), 3, "%s", r.body);
    cr_expect_eq(iget(json_object_array_get_idx(cr, 2), "httpStatusCode"), 400);
    cr_expect(strstr(json_object_to_json_string(json_object_array_get_idx(cr, 2)),
                     "INVALID_CROSS_REFERENCE_KEY") != NULL, "%s", r.body);
    cr_expect(strstr(json_object_to_json_string(json_object_array_get_idx(cr, 0)),
                     "PROCESSING_HALTED") != NULL, "%s", r.body);
    json_object_put(o);
    done(&r);
    r = query("SELECT COUNT() FROM Interaction WHERE Name = 'Rolled back meeting'");
    o = J(&r);
    cr_expect_eq(iget(o, "totalSize"), 0, "the interaction was rolled back");
    json_object_put(o);
    done(&r);
    r = query("SELECT COUNT() FROM InteractionAttendee");
    o = J(&r);
    cr_expect_eq(iget(o, "totalSize"), 20, "so was the first attendee");
    json_object_put(o);
    done(&r);

    /* the good bundle: interaction, two attendees by reference, a query */
    snprintf(body, sizeof body,
             "{\"allOrNone\":true,\"compositeRequest\":["
             "{\"method\":\"POST\",\"url\":\"/services/data/v60.0/sobjects/Interaction\","
             "\"referenceId\":\"meet\",\"body\":{\"Name\":\"Kick-off\",\"AccountId\":\"%s\","
             "\"RelatedRecordId\":\"%s\",\"InteractionType\":\"In Person\","
             "\"StartTime\":\"2024-05-01T09:00:00.000+0000\"}},"
             "{\"method\":\"POST\",\"url\":\"/services/data/v60.0/sobjects/InteractionAttendee\","
             "\"referenceId\":\"a1\",\"body\":{\"InteractionId\":\"@{meet.id}\",\"ContactId\":\"%s\","
             "\"AttendeeType\":\"External\",\"Platform_Id__c\":\"k-1\"}},"
             "{\"method\":\"POST\",\"url\":\"/services/data/v60.0/sobjects/InteractionAttendee\","
             "\"referenceId\":\"a2\",\"body\":{\"InteractionId\":\"@{meet.id}\",\"ContactId\":\"%s\","
             "\"AttendeeType\":\"External\",\"IsOrganizer\":true}},"
             "{\"method\":\"GET\",\"referenceId\":\"q\",\"url\":\"/services/data/v60.0/query?q="
             "SELECT+Id,Interaction.Name,Contact.Email+FROM+InteractionAttendee+WHERE+"
             "InteractionId='@{meet.id}'+ORDER+BY+Id\"}]}",
             acc, opp, con, con2);
    r = api("POST", "/composite", body);
    cr_expect_eq(r.status, 200, "%s", r.body);
    o = J(&r);
    cr = oget(o, "compositeResponse");
    for (int i = 0; i < 3; i++)
        cr_expect_eq(iget(json_object_array_get_idx(cr, (size_t)i), "httpStatusCode"), 201, "%s",
                     r.body);
    char meet[32];
    snprintf(meet, sizeof meet, "%s", sget(oget(json_object_array_get_idx(cr, 0), "body"), "id"));
    json_object *qb = oget(json_object_array_get_idx(cr, 3), "body");
    cr_expect_eq(iget(qb, "totalSize"), 2, "%s", r.body);
    json_object *a0 = json_object_array_get_idx(oget(qb, "records"), 0);
    cr_expect_str_eq(sget(oget(a0, "Interaction"), "Name"), "Kick-off");
    cr_expect_not_null(sget(oget(a0, "Contact"), "Email"));
    json_object_put(o);
    done(&r);
    snprintf(body, sizeof body,
             "SELECT Id, Name, RelatedRecordId FROM Interaction WHERE Id = '%s'", meet);
    r = query(body);
    o = J(&r);
    cr_expect_str_eq(sget(json_object_array_get_idx(oget(o, "records"), 0), "RelatedRecordId"),
                     opp);
    json_object_put(o);
    done(&r);
    r = req("GET", "/__sim/records/InteractionAttendee?where=Platform_Id__c=k-1", NULL, false,
            NULL, NULL);
    o = J(&r);
    json_object *recs = oget(o, "records");
    cr_assert_eq(json_object_array_length(recs), 1, "%s", r.body);
    cr_expect_str_eq(sget(json_object_array_get_idx(recs, 0), "InteractionId"), meet);
    json_object_put(o);
    done(&r);
}

Test(sfsim_fsc, collections_bulk_replication_and_control)
{
    char inter[32], con[32], body[2048], path[512];
    first_id("SELECT Id FROM Interaction ORDER BY Id LIMIT 1", "Id", inter, sizeof inter);
    first_id("SELECT Id FROM Contact ORDER BY Id LIMIT 1", "Id", con, sizeof con);
    snprintf(body, sizeof body,
             "{\"allOrNone\":false,\"records\":["
             "{\"attributes\":{\"type\":\"InteractionAttendee\"},\"InteractionId\":\"%s\","
             "\"ContactId\":\"%s\",\"Platform_Id__c\":\"c-1\"},"
             "{\"attributes\":{\"type\":\"InteractionAttendee\"},\"InteractionId\":\"%s\","
             "\"ContactId\":\"003Hs00000zzzzz\"},"
             "{\"attributes\":{\"type\":\"InteractionAttendee\"},\"InteractionId\":\"%s\","
             "\"AttendeeType\":\"Internal\",\"Platform_Id__c\":\"c-3\"}]}",
             inter, con, inter, inter);
    struct resp r = api("POST", "/composite/sobjects", body);
    cr_expect_eq(r.status, 200, "%s", r.body);
    json_object *o = J(&r);
    cr_assert_eq(json_object_array_length(o), 3);
    cr_expect_str_eq(sget(json_object_array_get_idx(o, 0), "success"), "true");
    cr_expect_str_eq(sget(json_object_array_get_idx(o, 1), "success"), "false");
    cr_expect(strstr(r.body, "INVALID_CROSS_REFERENCE_KEY") != NULL, "%s", r.body);
    cr_expect_str_eq(sget(json_object_array_get_idx(o, 2), "success"), "true");
    char gone[32];
    snprintf(gone, sizeof gone, "%s", sget(json_object_array_get_idx(o, 2), "id"));
    json_object_put(o);
    done(&r);
    /* collection upsert by the external id */
    r = api("PATCH", "/composite/sobjects/InteractionAttendee/Platform_Id__c",
            "{\"records\":[{\"attributes\":{\"type\":\"InteractionAttendee\"},"
            "\"Platform_Id__c\":\"c-1\",\"AttendeeResponse\":\"Accepted\"}]}");
    cr_expect_eq(r.status, 200, "%s", r.body);
    o = J(&r);
    cr_expect_str_eq(sget(json_object_array_get_idx(o, 0), "created"), "false", "%s", r.body);
    json_object_put(o);
    done(&r);

    /* Bulk 2.0 query with parent columns */
    r = api("POST", "/jobs/query",
            "{\"operation\":\"query\",\"query\":\"SELECT Id, Interaction.Name, Contact.Email, "
            "AttendeeType, IsOrganizer FROM InteractionAttendee\"}");
    o = J(&r);
    char job[32];
    snprintf(job, sizeof job, "%s", sget(o, "id"));
    json_object_put(o);
    done(&r);
    usleep(200000);
    snprintf(path, sizeof path, "/jobs/query/%s/results", job);
    r = api("GET", path, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    const char *hdr = "\"Id\",\"Interaction.Name\",\"Contact.Email\",\"AttendeeType\","
                      "\"IsOrganizer\"\n";
    cr_expect(strncmp(r.body, hdr, strlen(hdr)) == 0, "%s", r.body);
    int lines = 0;
    for (char *p = r.body; *p; p++)
        lines += *p == '\n';
    cr_expect_eq(lines, 1 + 22, "%s", r.body);
    done(&r);

    /* describe and describeGlobal */
    r = api("GET", "/sobjects/InteractionAttendee/describe", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    o = J(&r);
    cr_expect_str_eq(sget(o, "keyPrefix"), "0ia");
    json_object *fields = oget(o, "fields");
    bool saw_inter = false, saw_org = false;
    for (size_t i = 0; i < json_object_array_length(fields); i++) {
        json_object *f = json_object_array_get_idx(fields, i);
        if (strcmp(sget(f, "name"), "InteractionId") == 0) {
            saw_inter = true;
            cr_expect_not(json_object_get_boolean(oget(f, "nillable")));
            cr_expect_str_eq(sget(f, "relationshipName"), "Interaction");
            cr_expect_str_eq(json_object_get_string(json_object_array_get_idx(oget(f, "referenceTo"), 0)),
                             "Interaction");
        }
        if (strcmp(sget(f, "name"), "IsOrganizer") == 0) {
            saw_org = true;
            cr_expect(json_object_is_type(oget(f, "defaultValue"), json_type_boolean));
            cr_expect_not(json_object_get_boolean(oget(f, "defaultValue")));
        }
    }
    cr_expect(saw_inter && saw_org);
    json_object_put(o);
    done(&r);
    r = api("GET", "/sobjects/Interaction/describe", NULL);
    cr_expect(strstr(r.body, "\"childSObject\":\"InteractionAttendee\",\"deprecatedAndHidden\":false,"
                             "\"field\":\"InteractionId\",\"junctionIdListNames\":[],"
                             "\"junctionReferenceTo\":[],\"relationshipName\":\"InteractionAttendees\"") != NULL,
              "child relationship");
    cr_expect(strstr(r.body, "\"name\":\"RelatedRecordId\"") != NULL);
    done(&r);
    r = api("GET", "/sobjects/", NULL);
    cr_expect(strstr(r.body, "\"name\":\"InteractionAttendee\"") != NULL);
    done(&r);

    /* getUpdated / getDeleted, queryAll */
    snprintf(path, sizeof path, "/sobjects/InteractionAttendee/%s", gone);
    r = api("DELETE", path, NULL);
    cr_expect_eq(r.status, 204, "%s", r.body);
    done(&r);
    r = req("POST", "/__sim/clock", "{\"advance_s\":120}", false, NULL, NULL);
    done(&r);
    char st[32], en[32];
    time_t now = time(NULL);
    struct tm tm;
    time_t t0 = now - 600, t1 = now + 600;
    gmtime_r(&t0, &tm);
    strftime(st, sizeof st, "%Y-%m-%dT%H:%M:%SZ", &tm);
    gmtime_r(&t1, &tm);
    strftime(en, sizeof en, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(path, sizeof path, "/sobjects/InteractionAttendee/updated/?start=%s&end=%s", st, en);
    r = api("GET", path, NULL);
    cr_expect_eq(r.status, 200, "%s", r.body);
    o = J(&r);
    cr_expect_eq(json_object_array_length(oget(o, "ids")), 1, "the upserted attendee: %s", r.body);
    json_object_put(o);
    done(&r);
    snprintf(path, sizeof path, "/sobjects/InteractionAttendee/deleted/?start=%s&end=%s", st, en);
    r = api("GET", path, NULL);
    cr_expect_eq(r.status, 200, "%s", r.body);
    o = J(&r);
    json_object *dr = oget(o, "deletedRecords");
    cr_assert_eq(json_object_array_length(dr), 1, "%s", r.body);
    cr_expect_str_eq(sget(json_object_array_get_idx(dr, 0), "id"), gone);
    json_object_put(o);
    done(&r);
    CURL *c = curl_easy_init();
    char *e = curl_easy_escape(c, "SELECT Id, IsDeleted FROM InteractionAttendee WHERE IsDeleted = true", 0);
    snprintf(path, sizeof path, "%s/queryAll?q=%s", V, e);
    curl_free(e);
    curl_easy_cleanup(c);
    r = req("GET", path, NULL, true, NULL, NULL);
    o = J(&r);
    cr_expect_eq(iget(o, "totalSize"), 1, "%s", r.body);
    json_object_put(o);
    done(&r);

    /* the control API: direct create, filter, count */
    snprintf(body, sizeof body, "{\"InteractionId\":\"%s\",\"Name\":\"Direct\",\"Platform_Id__c\":\"d-1\"}",
             inter);
    r = req("POST", "/__sim/records/InteractionAttendee", body, false, NULL, NULL);
    cr_expect_eq(r.status, 201, "%s", r.body);
    done(&r);
    r = req("GET", "/__sim/records/InteractionAttendee?count=1", NULL, false, NULL, NULL);
    o = J(&r);
    cr_expect_eq(iget(o, "count"), 23, "20 seeded, 2 from the collection, 1 direct (incl. deleted)");
    json_object_put(o);
    done(&r);
}
