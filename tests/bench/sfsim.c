/*
 * bench-sfsim: how fast the emulator serves REST query pages.
 *
 * Seeds BENCH_N Accounts (default 200000) in-process (sim_new/sim_start on a
 * free port), then fetches SELECT <20 fields> FROM Account page by page over
 * real HTTP with libcurl (one keep-alive handle, 2000 records per page) and
 * prints one JSON line to stdout:
 *   {"name":"sfsim.records_per_s","value":...,"unit":"records/s"}
 * Seeding time and page count go to stderr.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../sfsim/sim.h"

struct page {
    char *p;
    size_t len;
};

static size_t on_body(char *d, size_t sz, size_t n, void *ud)
{
    struct page *pg = ud;
    char *np = realloc(pg->p, pg->len + sz * n + 1);
    if (!np)
        return 0;
    pg->p = np;
    memcpy(pg->p + pg->len, d, sz * n);
    pg->len += sz * n;
    pg->p[pg->len] = '\0';
    return sz * n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
    const char *ns = getenv("BENCH_N");
    long n = ns ? strtol(ns, NULL, 10) : 200000;
    if (n <= 0)
        n = 200000;
    struct sim_config c;
    sim_config_defaults(&c);
    c.seed_accounts = n;
    c.quiet = true;
    char err[256], tok[256];
    double t0 = now_s();
    struct sim *s = sim_new(&c, err, sizeof err);
    if (!s || !sim_start(s, err, sizeof err) || !sim_issue_token(s, tok, sizeof tok)) {
        fprintf(stderr, "bench-sfsim: cannot start the emulator: %s\n", err);
        sim_free(s);
        return 1;
    }
    double seeded = now_s() - t0;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *h = curl_easy_init();
    char auth[300], url[4096];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
    struct curl_slist *hd = curl_slist_append(NULL, auth);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    snprintf(url, sizeof url,
             "%s/services/data/v60.0/query?q=SELECT+Id,Name,Type,Industry,Phone,Website,"
             "BillingStreet,BillingCity,BillingState,BillingPostalCode,BillingCountry,"
             "AnnualRevenue,NumberOfEmployees,AccountSource,Tier__c,OwnerId,CreatedDate,"
             "LastModifiedDate,SystemModstamp,IsDeleted+FROM+Account",
             sim_base_url(s));
    long records = 0, pages = 0;
    int rc = 0;
    double t1 = now_s();
    for (;;) {
        struct page pg = {0};
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &pg);
        long status = 0;
        CURLcode cc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (cc != CURLE_OK || status != 200) {
            fprintf(stderr, "bench-sfsim: page %ld failed: %s %ld\n", pages,
                    curl_easy_strerror(cc), status);
            free(pg.p);
            rc = 1;
            break;
        }
        pages++;
        for (const char *p = pg.p; (p = strstr(p, "{\"attributes\"")); p++)
            records++;
        const char *nx = strstr(pg.p, "\"nextRecordsUrl\":\"");
        if (!nx) {
            free(pg.p);
            break;
        }
        nx += 18;
        size_t l = strcspn(nx, "\"");
        snprintf(url, sizeof url, "%s%.*s", sim_base_url(s), (int)l, nx);
        free(pg.p);
    }
    double secs = now_s() - t1;
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    curl_global_cleanup();
    sim_free(s);
    if (rc == 0 && records != n) {
        fprintf(stderr, "bench-sfsim: fetched %ld records, expected %ld\n", records, n);
        rc = 1;
    }
    fprintf(stderr, "bench-sfsim: seeded %ld accounts in %.2f s; %ld pages in %.2f s\n", n,
            seeded, pages, secs);
    if (rc == 0)
        printf("{\"name\":\"sfsim.records_per_s\",\"value\":%.0f,\"unit\":\"records/s\"}\n",
               secs > 0 ? (double)records / secs : 0.0);
    return rc;
}
