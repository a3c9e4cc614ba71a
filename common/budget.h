/*
 * budget: one API budget per Salesforce org, shared by every replica and
 * worker through the api_usage table (latest Sforce-Limit-Info figures).
 *
 * The budget is limit x share (organizations.api_budget_pct, else
 * SFBRIDGE_API_BUDGET_PCT, default 80%). Requests draw from it by class;
 * each class may spend up to its own fraction of the budget, so that when the
 * budget is tight lower classes defer first and higher ones still go through:
 *   BUDGET_INTERACTIVE (chat, meeting_notes writes)   100% of the budget
 *   BUDGET_WORKFLOW    (workflow, cim writes)            95%
 *   BUDGET_INCREMENTAL (incremental syncs)               85%
 *   BUDGET_BULK        (full syncs, formula refreshes,   70%
 *                       reconcile)
 * A deferred request gets a retry time (the usage window is a rolling 24 h,
 * so retry after SFBRIDGE-configured defer interval, default 15 min).
 */
#ifndef SFBRIDGE_BUDGET_H
#define SFBRIDGE_BUDGET_H

#include <stdbool.h>

#include "cfg.h"
#include "err.h"

struct pg;

enum budget_class { BUDGET_INTERACTIVE = 0, BUDGET_WORKFLOW, BUDGET_INCREMENTAL, BUDGET_BULK };

const char *budget_class_name(enum budget_class c);

/* Record the latest figures for an org (upsert, keeps the newest as_of). */
bool budget_record(struct pg *pg, const char *sf_org_id, long long used, long long limit, struct err *e);

/* May `calls` more requests of class `cls` be made for this org now? true = go.
 * false with ERR_LIMIT_EXCEEDED (retriable=false: the caller defers, it does
 * not retry in a loop) and *retry_at_ms (epoch ms) when it must defer.
 * Unknown usage (no api_usage row yet) = allowed. */
bool budget_check(struct pg *pg, const struct cfg *cfg, const char *org_id, const char *sf_org_id,
                  enum budget_class cls, long long calls, long long *retry_at_ms, struct err *e);

/* ---- additions (compatible extensions) ---- */

/* A deferred request's retry time is now + SFBRIDGE_DEFER_SECONDS (default BUDGET_DEFER_S). A usage figure
 * older than BUDGET_STALE_S does not block (no replica has called Salesforce
 * for that org since, so the first call of the resumed work refreshes it). */
#define BUDGET_DEFER_S 900
#define BUDGET_STALE_S 600

/* The class's fraction of the budget in percent (100, 95, 85, 70). */
int budget_class_pct(enum budget_class c);

/* Pure rule behind budget_check: may `calls` more requests of `cls` run when
 * `used` of `limit` are spent and sfbridge's share is share_pct%? limit <= 0
 * (unknown) = yes. */
bool budget_allows(long long used, long long limit, int share_pct, enum budget_class cls, long long calls);

/* The class's cap in calls: limit x share% x class% (rounded down, at least 1); 0 when limit <= 0.
 * budget_allows(used, limit, share, cls, calls) == (used + calls <= cap). */
long long budget_class_cap(long long limit, int share_pct, enum budget_class cls);

#endif
