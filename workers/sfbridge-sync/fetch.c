/*
 * sfbridge-sync fetch: SOQL from the mapping, REST paging, the switch to a
 * Bulk 2.0 job above the threshold, getDeleted, reconcile. See sync.h.
 *
 * The REST query's first page says how many records the query matches
 * (totalSize, what SELECT COUNT() would return): that page is loaded, and
 * when the total is above SFBRIDGE_BULK_THRESHOLD the rest is read by a Bulk
 * job that continues strictly after the last committed (SystemModstamp, Id).
 * So small objects cost exactly ceil(N/2000) calls and big ones a handful.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "json.h"
#include "log.h"
#include "sf.h"
#include "soql.h"
#include "sync.h"

/* "2024-01-02T03:04:05.123+00:00" -> epoch ms (UTC offsets honoured) */
static long long parse_ts_ms(const char *s)
{
    int y, mo, d, h, mi, sec;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6)
        return -1;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    long long t = (long long)timegm(&tm) * 1000;
    const char *p = s + 19;
    if (*p == '.') {
        int ms = 0, digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++) {
            if (digits < 3) {
                ms = ms * 10 + (*p - '0');
                digits++;
            }
        }
        while (digits++ < 3)
            ms *= 10;
        t += ms;
    }
    if (*p == '+' || *p == '-') {
        int oh = 0, om = 0;
        sscanf(p + 1, "%2d:%2d", &oh, &om);
        long long off = ((long long)oh * 60 + om) * 60000;
        t += *p == '+' ? -off : off;
    }
    return t;
}

/* ---- value access -------------------------------------------------------- */

static const char *json_text(struct json_object *v, char *tmp, size_t cap)
{
    if (!v)
        return NULL;
    switch (json_object_get_type(v)) {
    case json_type_null:
        return NULL;
    case json_type_boolean:
        return json_object_get_boolean(v) ? "true" : "false";
    case json_type_int:
        snprintf(tmp, cap, "%lld", (long long)json_object_get_int64(v));
        return tmp;
    case json_type_string:
        return json_object_get_string(v);
    default:
        /* doubles keep their original text; objects/arrays their JSON */
        return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
    }
}

struct rest_ud {
    struct run *r;
    struct json_object *rec;
};

static const char *get_rest(void *ud, int i, char *tmp, size_t cap)
{
    struct rest_ud *u = ud;
    const char *name = i == -3 ? "Id" : i == -2 ? "SystemModstamp" : i == -1 ? "IsDeleted" : u->r->o->sel[i];
    if (!strchr(name, '.'))
        return json_text(json_get(u->rec, name), tmp, cap);
    /* relationship path Account.Name -> nested objects */
    struct json_object *cur = u->rec;
    char seg[96];
    const char *p = name;
    while (cur && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof seg)
            return NULL;
        memcpy(seg, p, n);
        seg[n] = '\0';
        cur = json_get(cur, seg);
        if (cur && json_object_is_type(cur, json_type_null))
            return NULL;
        p = dot ? dot + 1 : p + n;
    }
    return json_text(cur, tmp, cap);
}

struct bulk_ud {
    struct run *r;
    const char *const *values;
};

static const char *get_bulk(void *ud, int i, char *tmp, size_t cap)
{
    (void)tmp;
    (void)cap;
    struct bulk_ud *u = ud;
    struct run *r = u->r;
    int idx = i == -3 ? r->bulk_id : i == -2 ? r->bulk_mod : i == -1 ? r->bulk_del : r->bulk_idx[i];
    if (idx < 0)
        return NULL;
    const char *v = u->values[idx];
    return *v ? v : NULL; /* Bulk CSV: empty = null */
}

/* ---- budget and errors --------------------------------------------------- */

static void defer(struct run *r, const struct err *why, long long retry_at_ms)
{
    if (r->deferred)
        return;
    r->deferred = true;
    long long defer_s = r->d->cfg->defer_seconds > 0 ? r->d->cfg->defer_seconds : BUDGET_DEFER_S;
    r->retry_at_ms = retry_at_ms > 0 ? retry_at_ms : sync_now_ms() + defer_s * 1000;
    r->defer_err = *why;
    if (r->defer_err.code != ERR_LIMIT_EXCEEDED) {
        struct err x = ERR_INIT;
        err_set(&x, ERR_LIMIT_EXCEEDED, false, "%s", why->msg);
        r->defer_err = x;
    }
    log_info("sync %s: deferring %s until %lld: %s", r->job->message_id, r->o ? r->o->sf_object : "?",
             r->retry_at_ms, why->msg);
}

/* The stored usage figure refused this run before it made any call: it may be old (the day's usage was
 * reset since, or another replica's last figure). One GET /limits refreshes it (its Sforce-Limit-Info, and
 * DailyApiRequests from the body). true when refreshed. */
static bool refresh_usage(struct run *r)
{
    struct sf_response resp = {.records = -1};
    struct err ce = ERR_INIT;
    bool ok = false;
    if (!conn_call(&r->cs, "GET", "/limits", NULL, NULL, 0, &resp, &ce)) {
        log_info("sync %s: could not refresh the API usage: %s", r->job->message_id, ce.msg);
        goto out;
    }
    struct json_object *d = resp.json ? json_get(resp.json, "DailyApiRequests") : NULL;
    long long max = d ? json_get_int(d, "Max", -1) : -1, rem = d ? json_get_int(d, "Remaining", -1) : -1;
    struct err fe = ERR_INIT;
    if (!conn_flush_usage(&r->cs, &fe))
        log_warn("could not record api usage: %s", fe.msg);
    long long used = -1, lim = -1;
    if (!sf_client_last_usage(r->x->sf, &used, &lim) && max > 0 && rem >= 0 &&
        !budget_record(r->d->pg, r->cs.sf_org_id, max - rem, max, &fe))
        log_warn("could not record api usage: %s", fe.msg);
    log_info("sync %s: refreshed the API usage of org %s from /limits", r->job->message_id, r->cs.sf_org_id);
    ok = true;
out:
    sf_response_cleanup(&resp);
    return ok;
}

/* true = go; false + r->deferred = stop here; false + e = error */
static bool budget_ok(struct run *r, long long calls, struct err *e)
{
    struct err fe = ERR_INIT;
    if (!conn_flush_usage(&r->cs, &fe))
        log_warn("could not record api usage: %s", fe.msg);
    long long retry = 0;
    struct err be = ERR_INIT;
    if (budget_check(r->d->pg, r->d->cfg, r->job->org_id, r->cs.sf_org_id, r->cls, calls, &retry, &be))
        return true;
    if (be.code == ERR_LIMIT_EXCEEDED && !r->usage_refreshed && sf_client_calls(r->x->sf) == 0) {
        r->usage_refreshed = true;
        if (refresh_usage(r)) {
            err_clear(&be);
            retry = 0;
            if (budget_check(r->d->pg, r->d->cfg, r->job->org_id, r->cs.sf_org_id, r->cls, calls, &retry, &be))
                return true;
        }
    }
    if (be.code == ERR_LIMIT_EXCEEDED) {
        struct err why = ERR_INIT;
        err_set(&why, ERR_LIMIT_EXCEEDED, false, "could not sync %s: %s", r->o->sf_object, be.msg);
        defer(r, &why, retry);
        return false;
    }
    *e = be;
    return false;
}

/* Salesforce said REQUEST_LIMIT_EXCEEDED: defer instead of retrying. */
static bool limit_hit(struct run *r, struct err *se)
{
    if (se->code != ERR_LIMIT_EXCEEDED)
        return false;
    struct err why = ERR_INIT;
    err_set(&why, ERR_LIMIT_EXCEEDED, false, "could not sync %s: Salesforce refused the request (%s)",
            r->o->sf_object, se->msg);
    defer(r, &why, 0);
    return true;
}

/* ---- SOQL ---------------------------------------------------------------- */

enum where_kind { W_NONE, W_SINCE, W_AFTER };

/* one query: lower bound (none, SystemModstamp >= since, or strictly after (SystemModstamp, Id) / after Id),
 * optional upper bound SystemModstamp < upper (a window), optional LIMIT, SystemModstamp/Id or Id order */
struct qspec {
    enum where_kind wk;
    long long since_ms;
    const char *amod, *aid;
    long long upper_ms; /* exclusive; 0 = none */
    long limit;         /* 0 = none */
    bool by_id;         /* order by Id (reconcile, formulas); reconcile selects Id only */
};

static char *soql_for(struct run *r, struct obj_run *o, const struct qspec *qs, struct err *e)
{
    char *out = NULL, *q = NULL, *c1 = NULL, *c2 = NULL, *c3 = NULL;
    struct soql_select *s = soql_select_new(o->sf_object, e);
    if (!s)
        return NULL;
    soql_select_field(s, "Id", e);
    if (!qs->by_id) {
        soql_select_field(s, "SystemModstamp", e);
        soql_select_field(s, "IsDeleted", e);
    }
    if (!qs->by_id || r->mode == MODE_FORMULAS)
        for (size_t i = 0; i < o->nsel; i++)
            soql_select_field(s, o->sel[i], e);
    if (err_is_set(e))
        goto out;
    if (o->om->soql_filter && *o->om->soql_filter && !soql_select_where_raw(s, o->om->soql_filter)) {
        err_set(e, ERR_INVALID_MESSAGE, false, "cannot sync %s: the mapping's SOQL filter is not acceptable",
                o->sf_object);
        goto out;
    }
    char lit[40];
    if (qs->wk == W_SINCE) {
        soql_datetime(qs->since_ms, lit, sizeof lit);
        if (!soql_where_cmp(s, "SystemModstamp", ">=", lit, e))
            goto out;
    } else if (qs->wk == W_AFTER && qs->by_id) {
        if (!(q = soql_quote(qs->aid)) || !soql_where_cmp(s, "Id", ">", q, e))
            goto out;
    } else if (qs->wk == W_AFTER) {
        soql_datetime(parse_ts_ms(qs->amod), lit, sizeof lit);
        if (!(q = soql_quote(qs->aid)) || !(c1 = soql_cmp("SystemModstamp", ">", lit, e)) ||
            !(c2 = soql_cmp("SystemModstamp", "=", lit, e)) || !(c3 = soql_cmp("Id", ">", q, e)))
            goto out;
        char clause[512];
        snprintf(clause, sizeof clause, "%s OR (%s AND %s)", c1, c2, c3);
        if (!soql_select_where_raw(s, clause)) {
            err_set(e, ERR_INTERNAL, false, "could not build the cursor condition");
            goto out;
        }
    }
    if (qs->upper_ms > 0) {
        soql_datetime(qs->upper_ms, lit, sizeof lit);
        if (!soql_where_cmp(s, "SystemModstamp", "<", lit, e))
            goto out;
    }
    soql_select_order(s, qs->by_id ? "Id ASC" : "SystemModstamp ASC, Id ASC");
    if (qs->limit > 0)
        soql_select_limit(s, qs->limit);
    out = soql_select_build(s, e);
out:
    free(q);
    free(c1);
    free(c2);
    free(c3);
    soql_select_free(&s);
    return out;
}

static char *build_soql(struct run *r, struct obj_run *o, enum where_kind wk, long long since_ms,
                        const char *after_mod, const char *after_id, bool ids_only, struct err *e)
{
    struct qspec qs = {wk, since_ms, after_mod, after_id, 0, 0, ids_only};
    return soql_for(r, o, &qs, e);
}

/* the query ran too long (REST QUERY_TIMEOUT) or its Bulk job failed: split the window */
static bool is_timeout(const struct err *e)
{
    return !strcmp(e->sf_code, "QUERY_TIMEOUT") || strstr(e->msg, "QUERY_TIMEOUT") != NULL;
}

/* ---- Bulk ---------------------------------------------------------------- */

static int bulk_row(void *ud, size_t ncols, const char *const *names, const char *const *values)
{
    struct run *r = ud;
    struct obj_run *o = r->o;
    if (!r->bulk_mapped) {
        r->bulk_id = r->bulk_mod = r->bulk_del = -1;
        for (size_t i = 0; i < o->nsel; i++)
            r->bulk_idx[i] = -1;
        for (size_t c = 0; c < ncols; c++) {
            if (!strcasecmp(names[c], "Id"))
                r->bulk_id = (int)c;
            else if (!strcasecmp(names[c], "SystemModstamp"))
                r->bulk_mod = (int)c;
            else if (!strcasecmp(names[c], "IsDeleted"))
                r->bulk_del = (int)c;
            for (size_t i = 0; i < o->nsel; i++)
                if (!strcasecmp(names[c], o->sel[i]))
                    r->bulk_idx[i] = (int)c;
        }
        r->bulk_mapped = true;
    }
    struct bulk_ud u = {r, values};
    if (!sync_add_row(r, get_bulk, &u, &r->cb_err))
        return 1;
    if (r->rows >= SYNC_BULK_BATCH && !sync_flush(r, r->mode == MODE_FULL, &r->cb_err))
        return 1;
    return 0;
}

/* *split (may be NULL): set instead of failing when the job failed (Failed state, QUERY_TIMEOUT) */
static bool run_bulk(struct run *r, struct obj_run *o, const char *soql, bool all, bool *split, struct err *e)
{
    for (int attempt = 0;; attempt++) {
        struct err be = ERR_INIT;
        long long rows = 0;
        r->bulk_mapped = false;
        err_clear(&r->cb_err);
        bool ok = sf_bulk_query(r->x->sf, soql, all, SYNC_BULK_PAGE, bulk_row, r, &rows, &be);
        if (ok) {
            return sync_flush(r, r->mode == MODE_FULL, e);
        }
        if (err_is_set(&r->cb_err)) {
            *e = r->cb_err;
            return false;
        }
        /* keep what was delivered: it is in the batch, ordered, so the cursor stays exact */
        struct err fe = ERR_INIT;
        if (r->rows > 0 && !sync_flush(r, r->mode == MODE_FULL, &fe)) {
            *e = fe;
            return false;
        }
        if (limit_hit(r, &be))
            return true;
        if (attempt == 0 && conn_retry_after_auth_error(&r->cs, &be)) {
            if (rows > 0)
                return err_set(e, ERR_SALESFORCE, true, "bulk results of %s interrupted by a new session; resuming",
                               o->sf_object);
            continue;
        }
        if (split && (is_timeout(&be) || (be.code == ERR_SALESFORCE && !be.retriable))) {
            log_info("sync %s: the Bulk job for %s failed (%s): splitting the window", r->job->message_id,
                     o->sf_object, be.msg);
            *split = true;
            return true;
        }
        *e = be;
        return false;
    }
}

/* ---- incremental / full -------------------------------------------------- */

struct state {
    bool exists;
    long long wm_ms; /* -1 none */
    bool full_in_progress;
    char full_mod[40], full_id[20];
    long long window_ms; /* remembered window, 0 = none */
};

static bool load_state(struct run *r, struct obj_run *o, struct state *st, struct err *e)
{
    memset(st, 0, sizeof *st);
    st->wm_ms = -1;
    const char *p[2] = {r->job->connection_id, o->sf_object};
    struct pg_res *res =
        pg_exec(r->d->pg,
                "SELECT (extract(epoch FROM watermark) * 1000)::bigint, full_in_progress, "
                "to_char(full_watermark AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"+00:00\"'), full_last_id, "
                "COALESCE(window_seconds, 0) "
                "FROM sync_state WHERE connection_id = $1 AND sf_object = $2",
                2, p, e);
    if (!res)
        return false;
    if (pg_res_rows(res) == 1) {
        st->exists = true;
        if (!pg_res_isnull(res, 0, 0))
            st->wm_ms = strtoll(pg_res_get(res, 0, 0), NULL, 10);
        st->full_in_progress = !strcmp(pg_res_get(res, 0, 1), "t");
        if (!pg_res_isnull(res, 0, 2) && !pg_res_isnull(res, 0, 3)) {
            snprintf(st->full_mod, sizeof st->full_mod, "%s", pg_res_get(res, 0, 2));
            snprintf(st->full_id, sizeof st->full_id, "%s", pg_res_get(res, 0, 3));
        }
        st->window_ms = strtoll(pg_res_get(res, 0, 4), NULL, 10) * 1000;
    }
    pg_res_free(&res);
    return true;
}

static bool get_deleted(struct run *r, struct obj_run *o, long long start_ms, struct err *e)
{
    long long end_ms = sync_now_ms();
    if (start_ms >= end_ms - 60000)
        start_ms = end_ms - 60000; /* getDeleted has minute granularity: ask for at least one minute */
    if (!budget_ok(r, 1, e))
        return !err_is_set(e);
    char s1[40], s2[40];
    soql_datetime(start_ms, s1, sizeof s1);
    soql_datetime(end_ms, s2, sizeof s2);
    char *e1 = sf_urlencode(s1), *e2 = sf_urlencode(s2);
    char path[512];
    bool ok = false;
    struct sf_response resp = {.records = -1};
    if (!e1 || !e2) {
        err_set(e, ERR_NOMEM, true, "out of memory");
        goto out;
    }
    snprintf(path, sizeof path, "/sobjects/%s/deleted/?start=%s&end=%s", o->sf_object, e1, e2);
    struct err ce = ERR_INIT;
    if (!conn_call(&r->cs, "GET", path, NULL, NULL, 0, &resp, &ce)) {
        if (limit_hit(r, &ce)) {
            ok = true;
            goto out;
        }
        *e = ce;
        goto out;
    }
    ok = sync_soft_delete_ids(r, o, resp.json ? json_get(resp.json, "deletedRecords") : NULL, e);
out:
    sf_response_cleanup(&resp);
    free(e1);
    free(e2);
    return ok;
}

/* One query over a window (rows committed page by page, cursor included). Above the Bulk threshold the rest
 * of the window is read by a Bulk job strictly after the committed cursor. *split: the query timed out or the
 * Bulk job failed (what was delivered before is committed). *rows: records this query delivered. */
static bool run_window(struct run *r, struct obj_run *o, const struct qspec *qs, bool full, bool set_total,
                       bool *split, long long *rows, struct err *e)
{
    struct sf_query *q = NULL;
    char *soql = NULL;
    bool ok = false, to_bulk = false;
    long long f0 = o->fetched, win_total = -1;
    *split = false;
    if (!(soql = soql_for(r, o, qs, e)))
        return false;
    if (!sf_query_open(r->x->sf, soql, true, 0, &q, e))
        goto out;
    for (long pageno = 0;;) {
        if (worker_stopping()) {
            err_set(e, ERR_INTERNAL, true, "stopping: the sync of %s resumes after the restart", o->sf_object);
            goto out;
        }
        if (!budget_ok(r, 1, e)) {
            ok = !err_is_set(e);
            goto out;
        }
        struct json_object *recs = NULL;
        bool done = false;
        struct err qe = ERR_INIT;
        if (!sf_query_next(q, &recs, &done, &qe)) {
            if (conn_retry_after_auth_error(&r->cs, &qe))
                continue; /* the same page again, with the new session */
            if (limit_hit(r, &qe)) {
                ok = true;
                goto out;
            }
            if (is_timeout(&qe)) {
                *split = true;
                ok = true;
                goto out;
            }
            *e = qe;
            goto out;
        }
        if (pageno++ == 0) {
            long long t = sf_query_total(q);
            win_total = t;
            if (set_total)
                o->total = o->fetched + (t >= 0 ? t : 0);
            if (qs->limit == 0 && t > r->d->cfg->bulk_threshold && !done)
                to_bulk = true;
        }
        size_t n = json_object_array_length(recs);
        for (size_t i = 0; i < n; i++) {
            struct rest_ud u = {r, json_object_array_get_idx(recs, i)};
            if (!sync_add_row(r, get_rest, &u, e))
                goto out;
        }
        if (!sync_flush(r, full, e))
            goto out;
        if (done || to_bulk)
            break;
    }
    sf_query_free(&q);
    if (to_bulk && !r->deferred) {
        free(soql);
        struct qspec b = *qs;
        if (o->fetched > f0) { /* continue strictly after what is committed */
            b.wk = W_AFTER;
            b.amod = o->cur_mod;
            b.aid = o->cur_id;
        }
        if (!(soql = soql_for(r, o, &b, e)))
            goto out;
        log_info("sync %s: %s: %lld records in this window (threshold %d): reading the rest with a Bulk API 2.0 "
                 "job",
                 r->job->message_id, o->sf_object, win_total, r->d->cfg->bulk_threshold);
        if (!budget_ok(r, 5, e)) {
            ok = !err_is_set(e);
            goto out;
        }
        if (!run_bulk(r, o, soql, true, split, e))
            goto out;
    }
    ok = true;
out:
    *rows = o->fetched - f0;
    sf_query_free(&q);
    free(soql);
    return ok;
}

/* Where the next window starts (epoch ms): the lower bound's time; with no lower bound the oldest record's
 * SystemModstamp (one LIMIT 1 query). -2 when the object has no record at all. -1 on error / deferral. */
static long long window_start(struct run *r, struct obj_run *o, struct qspec *qs, char *lo_mod, size_t cap,
                              struct err *e)
{
    if (qs->wk == W_SINCE)
        return qs->since_ms;
    if (qs->wk == W_AFTER)
        return parse_ts_ms(qs->amod);
    struct qspec p = *qs;
    p.limit = 1;
    p.upper_ms = 0;
    struct sf_query *q = NULL;
    char *soql = soql_for(r, o, &p, e);
    long long start = -1;
    if (!soql)
        return -1;
    if (!budget_ok(r, 1, e))
        goto out;
    if (!sf_query_open(r->x->sf, soql, true, 0, &q, e))
        goto out;
    struct json_object *recs = NULL;
    bool done = false;
    struct err qe = ERR_INIT;
    if (!sf_query_next(q, &recs, &done, &qe)) {
        if (!limit_hit(r, &qe))
            *e = qe;
        goto out;
    }
    if (json_object_array_length(recs) == 0) {
        start = -2;
        goto out;
    }
    const char *m = json_get_str(json_object_array_get_idx(recs, 0), "SystemModstamp");
    start = parse_ts_ms(m);
    if (start < 0) {
        err_set(e, ERR_SALESFORCE, false, "could not sync %s: the oldest record has no valid SystemModstamp",
                o->sf_object);
        goto out;
    }
    /* the oldest record's instant is an exact inclusive lower bound */
    snprintf(lo_mod, cap, "%s", m);
    qs->wk = W_SINCE;
    qs->since_ms = start;
out:
    sf_query_free(&q);
    free(soql);
    return start;
}

static bool save_window(struct run *r, struct obj_run *o, long long w_ms, struct err *e)
{
    char ws[24];
    snprintf(ws, sizeof ws, "%lld", w_ms > 0 ? (w_ms + 999) / 1000 : 0);
    const char *p[3] = {r->job->connection_id, o->sf_object, w_ms > 0 ? ws : NULL};
    return pg_run(r->d->pg,
                  "INSERT INTO sync_state (connection_id, sf_object, window_seconds) VALUES ($1, $2, $3) "
                  "ON CONFLICT (connection_id, sf_object) DO UPDATE SET window_seconds = excluded.window_seconds, "
                  "updated_at = now()",
                  3, p, e);
}

/*
 * Incremental / full fetch in SystemModstamp windows. The first query covers everything from the lower bound
 * (or the remembered window_seconds of this connection and object). On QUERY_TIMEOUT or a failed Bulk job
 * the window is halved (down to one second) and the fetch continues strictly after the committed
 * (SystemModstamp, Id); a one-second window that still times out is read in LIMIT pages ordered by
 * (SystemModstamp, Id), i.e. by Id within the instant. A window that completes moves the lower bound to its
 * upper edge (inclusive), so no record is skipped or read twice. Sparse windows grow again; the window that
 * worked after the last split is remembered in sync_state.window_seconds for the next run.
 */
bool sync_fetch_object(struct run *r, struct obj_run *o, struct err *e)
{
    struct state st;
    bool ok = false;
    bool full = r->mode == MODE_FULL;
    r->o = o;
    if (!load_state(r, o, &st, e))
        return false;

    struct qspec qs = {W_NONE, 0, NULL, NULL, 0, 0, false};
    char lo_mod[40] = "", lo_id[20] = "";
    if (full) {
        if (!st.full_in_progress) {
            const char *p[2] = {r->job->connection_id, o->sf_object};
            if (!pg_run(r->d->pg,
                        "INSERT INTO sync_state (connection_id, sf_object, full_in_progress) VALUES ($1, $2, true) "
                        "ON CONFLICT (connection_id, sf_object) DO UPDATE SET full_in_progress = true, "
                        "full_watermark = NULL, full_last_id = NULL, updated_at = now()",
                        2, p, e))
                return false;
        } else if (st.full_mod[0]) {
            qs.wk = W_AFTER;
            snprintf(lo_mod, sizeof lo_mod, "%s", st.full_mod);
            snprintf(lo_id, sizeof lo_id, "%s", st.full_id);
            o->full_resume = true;
            log_info("sync %s: resuming the full sync of %s after %s %s", r->job->message_id, o->sf_object, lo_mod,
                     lo_id);
        }
    } else if (st.wm_ms >= 0) {
        qs.wk = W_SINCE;
        qs.since_ms = st.wm_ms - SYNC_LOOKBACK_MS;
    }
    qs.amod = lo_mod;
    qs.aid = lo_id;

    long long t0 = sync_now_ms();
    long long w = st.window_ms; /* 0: one open window */
    long k = 0, k_good = SYNC_WINDOW_LIMIT;
    bool split_seen = false, after_split = false;
    long long good_w = 0;
    long long windows = 0, splits = 0;
    for (;;) {
        qs.upper_ms = 0;
        if (w > 0) {
            long long start = window_start(r, o, &qs, lo_mod, sizeof lo_mod, e);
            if (start == -2)
                break; /* no record at all */
            if (start < 0) {
                if (r->deferred)
                    break;
                goto out;
            }
            if (start + w < t0)
                qs.upper_ms = start + w; /* else: the last window is open-ended */
        }
        qs.limit = k;
        bool split = false;
        long long rows = 0;
        windows++;
        if (!run_window(r, o, &qs, full, w == 0 && !split_seen, &split, &rows, e))
            goto out;
        if (r->deferred)
            break;
        if (rows > 0) { /* the lower bound moves strictly after what is committed */
            qs.wk = W_AFTER;
            snprintf(lo_mod, sizeof lo_mod, "%s", o->cur_mod);
            snprintf(lo_id, sizeof lo_id, "%s", o->cur_id);
        }
        if (split) {
            splits++;
            split_seen = after_split = true;
            if (k > 0) {
                if (k == 1) {
                    err_set(e, ERR_SALESFORCE, false,
                            "could not sync %s: a query for a single record times out (QUERY_TIMEOUT)", o->sf_object);
                    goto out;
                }
                k /= 2;
                k_good = k;
            } else if (w == 0) {
                long long start = window_start(r, o, &qs, lo_mod, sizeof lo_mod, e);
                if (start == -2)
                    break;
                if (start < 0) {
                    if (r->deferred)
                        break;
                    goto out;
                }
                w = (t0 - start) / 2;
                if (w < SYNC_WINDOW_MIN_MS)
                    w = SYNC_WINDOW_MIN_MS;
            } else if (w > SYNC_WINDOW_MIN_MS) {
                w = w / 2 < SYNC_WINDOW_MIN_MS ? SYNC_WINDOW_MIN_MS : w / 2;
            } else {
                k = k_good; /* one second still too much: by (SystemModstamp, Id) in LIMIT pages */
            }
            if (k > 0)
                log_info("sync %s: %s: the query timed out or its Bulk job failed%s: one-second window, LIMIT %ld "
                         "pages",
                         r->job->message_id, o->sf_object, rows > 0 ? " after some rows" : "", k);
            else
                log_info("sync %s: %s: the query timed out or its Bulk job failed%s: window split to %lld ms",
                         r->job->message_id, o->sf_object, rows > 0 ? " after some rows" : "", w);
            continue;
        }
        if (after_split) {
            good_w = w;
            after_split = false;
        }
        if (k > 0 && rows >= k)
            continue; /* more records in this window: the next LIMIT page after the cursor */
        if (qs.upper_ms == 0)
            break; /* the open window was the last one */
        /* everything below the upper edge is read */
        qs.wk = W_SINCE;
        qs.since_ms = qs.upper_ms;
        k = 0;
        if (rows < SYNC_WINDOW_SPARSE)
            w *= 2;
    }
    /* also when deferred: the resumed run starts with the window that worked */
    if (split_seen || windows > 1)
        log_info("sync %s: %s read in %lld windows (%lld splits)%s; remembering a window of %lld ms",
                 r->job->message_id, o->sf_object, windows, splits, r->deferred ? " before the deferral" : "",
                 split_seen ? (good_w > 0 ? good_w : w) : st.window_ms);
    if (split_seen && !save_window(r, o, good_w > 0 ? good_w : w, e))
        goto out;
    if (r->deferred) {
        ok = true;
        goto out;
    }
    if (!full && st.wm_ms >= 0 && sync_now_ms() - st.wm_ms < (long long)SYNC_GETDELETED_DAYS * 86400000LL) {
        if (!get_deleted(r, o, st.wm_ms - SYNC_LOOKBACK_MS, e))
            goto out;
        if (r->deferred) {
            ok = true;
            goto out;
        }
    }
    if (full) {
        const char *p[2] = {r->job->connection_id, o->sf_object};
        if (!pg_run(r->d->pg,
                    "UPDATE sync_state SET full_in_progress = false, last_full_at = now(), "
                    "last_id = CASE WHEN watermark IS NULL OR full_watermark >= watermark THEN full_last_id "
                    "ELSE last_id END, watermark = GREATEST(watermark, full_watermark), updated_at = now() "
                    "WHERE connection_id = $1 AND sf_object = $2",
                    2, p, e))
            goto out;
    }
    ok = true;
out:
    return ok;
}

/* ---- formulas ------------------------------------------------------------ */

bool sync_describe_calc(struct run *r, struct obj_run *o, struct err *e)
{
    struct sf_response resp = {.records = -1};
    bool ok = false;
    r->o = o;
    if (!soql_ident_valid(o->sf_object))
        return err_set(e, ERR_INVALID_MESSAGE, false, "cannot describe \"%.80s\": not an object name", o->sf_object);
    if (!budget_ok(r, 1, e))
        return !err_is_set(e);
    char path[160];
    snprintf(path, sizeof path, "/sobjects/%s/describe", o->sf_object);
    struct err ce = ERR_INIT;
    if (!conn_call(&r->cs, "GET", path, NULL, NULL, 0, &resp, &ce)) {
        if (limit_hit(r, &ce)) {
            ok = true;
            goto out;
        }
        *e = ce;
        goto out;
    }
    struct json_object *fields = resp.json ? json_get(resp.json, "fields") : NULL;
    size_t n = fields && json_object_is_type(fields, json_type_array) ? json_object_array_length(fields) : 0;
    o->calc = calloc(n + 1, sizeof *o->calc);
    if (!o->calc) {
        err_set(e, ERR_NOMEM, true, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct json_object *f = json_object_array_get_idx(fields, i);
        const char *name = json_get_str(f, "name");
        if (!name || !json_get_bool(f, "calculated", false))
            continue;
        const struct field_map *fm = mapping_field_by_sf(o->om, name, MAP_IMPORT);
        if (!fm || !(fm->dir & MAP_IMPORT))
            continue;
        if (!(o->calc[o->ncalc] = strdup(fm->sf_field))) {
            err_set(e, ERR_NOMEM, true, "out of memory");
            goto out;
        }
        o->ncalc++;
    }
    o->described = true;
    ok = true;
out:
    sf_response_cleanup(&resp);
    return ok;
}

/* Id + the calculated fields, by Id; REST pages, a Bulk job above the threshold (after the last Id read). */
bool sync_formulas_object(struct run *r, struct obj_run *o, struct err *e)
{
    struct sf_query *q = NULL;
    char *soql = NULL;
    bool ok = false, to_bulk = false;
    struct qspec qs = {W_NONE, 0, NULL, NULL, 0, 0, true};
    r->o = o;
    if (!(soql = soql_for(r, o, &qs, e)))
        return false;
    if (!sf_query_open(r->x->sf, soql, false, 0, &q, e))
        goto out;
    for (long pageno = 0;;) {
        if (worker_stopping()) {
            err_set(e, ERR_INTERNAL, true, "stopping: the formula refresh of %s restarts after the restart",
                    o->sf_object);
            goto out;
        }
        if (!budget_ok(r, 1, e)) {
            ok = !err_is_set(e);
            goto out;
        }
        struct json_object *recs = NULL;
        bool done = false;
        struct err qe = ERR_INIT;
        if (!sf_query_next(q, &recs, &done, &qe)) {
            if (conn_retry_after_auth_error(&r->cs, &qe))
                continue;
            if (limit_hit(r, &qe)) {
                ok = true;
                goto out;
            }
            *e = qe;
            goto out;
        }
        if (pageno++ == 0) {
            long long t = sf_query_total(q);
            o->total = o->fetched + (t >= 0 ? t : 0);
            to_bulk = t > r->d->cfg->bulk_threshold && !done;
        }
        size_t n = json_object_array_length(recs);
        for (size_t i = 0; i < n; i++) {
            struct rest_ud u = {r, json_object_array_get_idx(recs, i)};
            if (!sync_add_row(r, get_rest, &u, e))
                goto out;
        }
        if (!sync_flush(r, false, e))
            goto out;
        if (done || to_bulk)
            break;
    }
    sf_query_free(&q);
    if (to_bulk && !r->deferred) {
        free(soql);
        qs.wk = o->cur_id[0] ? W_AFTER : W_NONE;
        qs.aid = o->cur_id;
        if (!(soql = soql_for(r, o, &qs, e)))
            goto out;
        log_info("sync %s: formulas of %s: %lld records (threshold %d): a Bulk API 2.0 job", r->job->message_id,
                 o->sf_object, o->total, r->d->cfg->bulk_threshold);
        if (!budget_ok(r, 5, e)) {
            ok = !err_is_set(e);
            goto out;
        }
        if (!run_bulk(r, o, soql, false, NULL, e))
            goto out;
    }
    if (!r->deferred) {
        const char *p[2] = {r->job->connection_id, o->sf_object};
        if (!pg_run(r->d->pg,
                    "UPDATE sync_state SET last_formulas_at = now() WHERE connection_id = $1 AND sf_object = $2", 2,
                    p, e))
            goto out;
    }
    ok = true;
out:
    sf_query_free(&q);
    free(soql);
    return ok;
}

/* ---- reconcile ----------------------------------------------------------- */

static bool reconcile_put(struct run *r, struct pg_buf *b, struct err *e)
{
    if (b->len == 0)
        return true;
    bool ok = pg_copy_start(r->d->pg, "COPY sfb_reconcile (salesforce_id) FROM STDIN", e);
    if (ok) {
        bool put = pg_copy_put(r->d->pg, b->data, b->len, e);
        ok = pg_copy_end(r->d->pg, e) && put;
    }
    b->len = 0;
    return ok;
}

struct rec_ud {
    struct run *r;
    struct pg_buf *b;
    long long n;
};

static int reconcile_row(void *ud, size_t ncols, const char *const *names, const char *const *values)
{
    struct rec_ud *u = ud;
    for (size_t c = 0; c < ncols; c++) {
        if (strcasecmp(names[c], "Id"))
            continue;
        pg_buf_copy_field(u->b, values[c]);
        pg_buf_append(u->b, "\n", 1);
        u->n++;
        snprintf(u->r->last_id, sizeof u->r->last_id, "%s", values[c]);
    }
    if (u->b->len > (1 << 20) && !reconcile_put(u->r, u->b, &u->r->cb_err))
        return 1;
    return 0;
}

bool sync_reconcile_object(struct run *r, struct obj_run *o, struct err *e)
{
    struct sf_query *q = NULL;
    char *soql = NULL;
    struct pg_buf b = {0};
    struct pg_res *res = NULL;
    bool ok = false;
    r->o = o;
    r->last_id[0] = '\0';
    if (!pg_run(r->d->pg, "CREATE TEMP TABLE IF NOT EXISTS sfb_reconcile (salesforce_id char(18))", 0, NULL, e) ||
        !pg_run(r->d->pg, "TRUNCATE sfb_reconcile", 0, NULL, e))
        return false;
    if (!(soql = build_soql(r, o, W_NONE, 0, NULL, NULL, true, e)))
        return false;
    if (!sf_query_open(r->x->sf, soql, false, 0, &q, e))
        goto out;
    long long seen = 0;
    bool to_bulk = false;
    for (long pageno = 0;;) {
        if (worker_stopping()) {
            err_set(e, ERR_INTERNAL, true, "stopping: the reconcile of %s restarts after the restart", o->sf_object);
            goto out;
        }
        if (!budget_ok(r, 1, e)) {
            ok = !err_is_set(e);
            goto out;
        }
        struct json_object *recs = NULL;
        bool done = false;
        struct err qe = ERR_INIT;
        if (!sf_query_next(q, &recs, &done, &qe)) {
            if (conn_retry_after_auth_error(&r->cs, &qe))
                continue;
            if (limit_hit(r, &qe)) {
                ok = true;
                goto out;
            }
            *e = qe;
            goto out;
        }
        if (pageno++ == 0) {
            o->total = sf_query_total(q);
            to_bulk = o->total > r->d->cfg->bulk_threshold && !done;
        }
        size_t n = json_object_array_length(recs);
        for (size_t i = 0; i < n; i++) {
            const char *id = json_get_str(json_object_array_get_idx(recs, i), "Id");
            if (!id)
                continue;
            pg_buf_copy_field(&b, id);
            pg_buf_append(&b, "\n", 1);
            snprintf(r->last_id, sizeof r->last_id, "%s", id);
            seen++;
        }
        if (!reconcile_put(r, &b, e))
            goto out;
        o->pages++;
        o->fetched = seen;
        sync_emit_progress(r);
        if (done || to_bulk)
            break;
    }
    sf_query_free(&q);
    if (to_bulk) {
        free(soql);
        if (!(soql = build_soql(r, o, r->last_id[0] ? W_AFTER : W_NONE, 0, NULL, r->last_id, true, e)))
            goto out;
        if (!budget_ok(r, 5, e)) {
            ok = !err_is_set(e);
            goto out;
        }
        struct rec_ud u = {r, &b, 0};
        struct err be = ERR_INIT;
        err_clear(&r->cb_err);
        if (!sf_bulk_query(r->x->sf, soql, false, 0, reconcile_row, &u, NULL, &be)) {
            if (err_is_set(&r->cb_err))
                *e = r->cb_err;
            else if (!limit_hit(r, &be))
                *e = be;
            ok = r->deferred;
            goto out;
        }
        if (!reconcile_put(r, &b, e))
            goto out;
        seen += u.n;
    }
    /* every local row of this object that Salesforce no longer has was hard-deleted there */
    char sql[700];
    snprintf(sql, sizeof sql,
             "WITH d AS (UPDATE %s t SET deleted_at = now(), synced_at = now(), updated_at = now() "
             "WHERE t.org_id = $1 AND t.deleted_at IS NULL AND t.salesforce_id IS NOT NULL %s "
             "AND NOT EXISTS (SELECT 1 FROM sfb_reconcile x WHERE x.salesforce_id = t.salesforce_id) RETURNING 1) "
             "SELECT count(*) FROM d",
             o->table, !strcmp(o->platform, "Activity") ? "AND t.sf_object = $2" : "AND $2::text IS NOT NULL");
    const char *p[2] = {r->job->org_id, o->sf_object};
    if (!pg_begin(r->d->pg, e))
        goto out;
    res = pg_exec(r->d->pg, sql, 2, p, e);
    if (!res)
        goto out;
    long long del = strtoll(pg_res_get(res, 0, 0), NULL, 10);
    o->fetched = seen;
    o->deleted += del;
    o->unchanged = seen;
    if (!sync_save_run(r, "running", e) || !pg_commit(r->d->pg, e))
        goto out;
    ok = true;
out:
    if (pg_in_tx(r->d->pg))
        pg_rollback(r->d->pg);
    pg_res_free(&res);
    sf_query_free(&q);
    free(soql);
    pg_buf_free(&b);
    if (r->deferred)
        ok = true;
    struct err te = ERR_INIT;
    pg_run(r->d->pg, "TRUNCATE sfb_reconcile", 0, NULL, &te);
    return ok;
}
