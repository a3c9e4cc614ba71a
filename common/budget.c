/*
 * budget: the API budget per Salesforce org, by request class. See budget.h.
 * Stateless; every figure lives in api_usage (shared by all replicas).
 */
#include "budget.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pg.h"

const char *budget_class_name(enum budget_class c)
{
    switch (c) {
    case BUDGET_INTERACTIVE:
        return "interactive";
    case BUDGET_WORKFLOW:
        return "workflow";
    case BUDGET_INCREMENTAL:
        return "incremental";
    case BUDGET_BULK:
        return "bulk";
    }
    return "unknown";
}

int budget_class_pct(enum budget_class c)
{
    switch (c) {
    case BUDGET_INTERACTIVE:
        return 100;
    case BUDGET_WORKFLOW:
        return 95;
    case BUDGET_INCREMENTAL:
        return 85;
    case BUDGET_BULK:
        return 70;
    }
    return 70;
}

bool budget_allows(long long used, long long limit, int share_pct, enum budget_class cls, long long calls)
{
    if (limit <= 0)
        return true; /* no figure yet */
    if (share_pct < 1 || share_pct > 100)
        share_pct = 80;
    if (calls < 0)
        calls = 0;
    return used + calls <= budget_class_cap(limit, share_pct, cls);
}

long long budget_class_cap(long long limit, int share_pct, enum budget_class cls)
{
    if (limit <= 0)
        return 0;
    if (share_pct < 1 || share_pct > 100)
        share_pct = 80;
    /* integer arithmetic: cap = limit * share% * class% (rounded down), at least 1 call */
    long long cap = limit * share_pct / 100 * budget_class_pct(cls) / 100;
    return cap < 1 ? 1 : cap;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool budget_record(struct pg *pg, const char *sf_org_id, long long used, long long limit, struct err *e)
{
    if (!sf_org_id || !*sf_org_id || limit <= 0 || used < 0)
        return true; /* nothing meaningful to record */
    char u[24], l[24];
    snprintf(u, sizeof u, "%lld", used);
    snprintf(l, sizeof l, "%lld", limit);
    const char *p[3] = {sf_org_id, u, l};
    return pg_run(pg,
                  "INSERT INTO api_usage (sf_org_id, used, api_limit, as_of) VALUES ($1, $2, $3, clock_timestamp()) "
                  "ON CONFLICT (sf_org_id) DO UPDATE SET used = excluded.used, api_limit = excluded.api_limit, "
                  "as_of = excluded.as_of WHERE api_usage.as_of <= excluded.as_of",
                  3, p, e);
}

bool budget_check(struct pg *pg, const struct cfg *cfg, const char *org_id, const char *sf_org_id,
                  enum budget_class cls, long long calls, long long *retry_at_ms, struct err *e)
{
    struct pg_res *r = NULL;
    bool ok = false;
    if (retry_at_ms)
        *retry_at_ms = 0;
    const char *p[2] = {org_id ? org_id : "", sf_org_id ? sf_org_id : ""};
    /* age in seconds of the figure: a figure older than the usage window step is stale and
     * does not block (the next call refreshes it) */
    r = pg_exec(pg,
                "SELECT (SELECT api_budget_pct FROM organizations WHERE org_id = $1), "
                "       u.used, u.api_limit, extract(epoch FROM clock_timestamp() - u.as_of)::bigint "
                "FROM (SELECT 1) one LEFT JOIN api_usage u ON u.sf_org_id = $2",
                2, p, e);
    if (!r)
        goto out;
    int share = cfg && cfg->api_budget_share > 0 ? cfg->api_budget_share : 80;
    if (!pg_res_isnull(r, 0, 0))
        share = (int)strtol(pg_res_get(r, 0, 0), NULL, 10);
    if (pg_res_isnull(r, 0, 1)) {
        ok = true; /* unknown usage: allowed */
        goto out;
    }
    long long used = strtoll(pg_res_get(r, 0, 1), NULL, 10);
    long long limit = strtoll(pg_res_get(r, 0, 2), NULL, 10);
    long long age_s = strtoll(pg_res_get(r, 0, 3), NULL, 10);
    if (age_s > BUDGET_STALE_S || budget_allows(used, limit, share, cls, calls)) {
        ok = true;
        goto out;
    }
    if (retry_at_ms)
        *retry_at_ms = now_ms() + (long long)(cfg && cfg->defer_seconds > 0 ? cfg->defer_seconds : BUDGET_DEFER_S) * 1000;
    err_set(e, ERR_LIMIT_EXCEEDED, false,
            "org %s has used %lld of its %lld daily API calls; %s work may use %d%% of its %d%% share",
            sf_org_id, used, limit, budget_class_name(cls), budget_class_pct(cls), share);
out:
    pg_res_free(&r);
    return ok;
}
