/*
 * sfbridge status [--org ORG] [--json] [--watch]: one block per connection
 * (status — "connected" in green on a terminal —, instance URL, Salesforce
 * user, connected since, last refresh, last error, API usage from
 * api_usage), then the running syncs with a progress bar (fetched/total)
 * and the deferred syncs with their retry time; then the API budget of each
 * Salesforce org (used/limit, sfbridge's share, the cap of each request
 * class — interactive 100%, workflow 95%, incremental 85%, bulk 70% of the
 * share — and which classes are deferring now) and the writes deferred by
 * the budget (write_intents with error_code LIMIT_EXCEEDED still pending).
 * --watch redraws every 2 s until interrupted. Never prints a token.
 */
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "budget.h"
#include "cli.h"
#include "json.h"
#include "pg.h"

#define TS(col) "COALESCE(to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '')"

static volatile sig_atomic_t stop_watch = 0;
static void on_int(int sig)
{
    (void)sig;
    stop_watch = 1;
}

static const char *nz(const char *s) { return s && *s ? s : NULL; }
static const char *dash(const char *s) { return s && *s ? s : "-"; }

static const char *conn_sql =
    "SELECT c.connection_id::text, c.org_id, c.user_id, c.status, COALESCE(c.instance_url, ''), "
    "COALESCE(c.sf_org_id, ''), COALESCE(c.sf_user_id, ''), COALESCE(c.sf_username, ''), " TS("c.connected_at") ", "
    TS("c.last_refresh_at") ", COALESCE(c.last_error, ''), COALESCE(c.status_reason, ''), "
    "COALESCE(u.used::text, ''), COALESCE(u.api_limit::text, ''), " TS("u.as_of") " "
    "FROM connections c LEFT JOIN api_usage u ON u.sf_org_id = c.sf_org_id "
    "WHERE ($1::text IS NULL OR c.org_id = $1) ORDER BY c.org_id, c.user_id";

static const char *runs_sql =
    "SELECT r.request_id::text, r.connection_id::text, r.org_id, r.mode, r.status, COALESCE(r.current_object, ''), "
    "r.fetched, COALESCE(r.total::text, ''), r.api_calls, " TS("r.started_at") ", " TS("r.retry_at") ", "
    "COALESCE(r.error_code, ''), COALESCE(r.error_message, '') "
    "FROM sync_runs r WHERE r.status IN ('running', 'deferred') AND ($1::text IS NULL OR r.org_id = $1) "
    "AND (r.status = 'running' OR r.finished_at IS NULL OR r.retry_at > now() - interval '1 day') "
    "ORDER BY r.status DESC, r.started_at";

/* one row per (org, Salesforce org) with a usage figure; share NULL = the configured default */
static const char *budget_sql =
    "SELECT DISTINCT c.org_id, c.sf_org_id, u.used, u.api_limit, " TS("u.as_of") ", "
    "COALESCE(o.api_budget_pct::text, '') FROM connections c JOIN api_usage u ON u.sf_org_id = c.sf_org_id "
    "LEFT JOIN organizations o ON o.org_id = c.org_id WHERE ($1::text IS NULL OR c.org_id = $1) "
    "ORDER BY c.org_id, c.sf_org_id";

static const char *writes_sql =
    "SELECT w.request_id::text, w.org_id, w.connection_id::text, count(*), " TS("min(w.created_at)") ", "
    "COALESCE(max(w.error_message), '') FROM write_intents w WHERE w.error_code = 'LIMIT_EXCEEDED' "
    "AND w.state IN ('pending', 'sent') AND ($1::text IS NULL OR w.org_id = $1) "
    "GROUP BY w.request_id, w.org_id, w.connection_id ORDER BY min(w.created_at)";

static const enum budget_class classes[] = {BUDGET_INTERACTIVE, BUDGET_WORKFLOW, BUDGET_INCREMENTAL, BUDGET_BULK};

static int share_of(const struct cli *cli, const char *pct)
{
    if (pct && *pct)
        return (int)strtol(pct, NULL, 10);
    return cli->cfg.api_budget_share > 0 ? cli->cfg.api_budget_share : 80;
}

static void print_budgets(const struct cli *cli, struct pg_res *b, struct pg_res *w)
{
    const char *red = cli->color ? "\033[31m" : "", *reset = cli->color ? "\033[0m" : "";
    if (pg_res_rows(b) > 0)
        printf("\napi budget\n");
    for (int i = 0; i < pg_res_rows(b); i++) {
        long long used = strtoll(pg_res_get(b, i, 2), NULL, 10), lim = strtoll(pg_res_get(b, i, 3), NULL, 10);
        int share = share_of(cli, pg_res_get(b, i, 5));
        printf("  org %s  salesforce org %s  used %lld / %lld as of %s  share %d%% = %lld calls\n", pg_res_get(b, i, 0),
               pg_res_get(b, i, 1), used, lim, pg_res_get(b, i, 4), share, lim * share / 100);
        printf("   ");
        for (size_t k = 0; k < sizeof classes / sizeof classes[0]; k++) {
            long long cap = budget_class_cap(lim, share, classes[k]);
            bool spent = used >= cap;
            printf(" %s %s%lld/%lld%s%s", budget_class_name(classes[k]), spent ? red : "", used < cap ? used : cap,
                   cap, spent ? " deferring" : "", spent ? reset : "");
        }
        printf("\n");
    }
    if (pg_res_rows(w) > 0)
        printf("\ndeferred writes\n");
    for (int i = 0; i < pg_res_rows(w); i++)
        printf("  %s  %s  connection %s  %s operation(s) since %s  (%s)\n", pg_res_get(w, i, 0), pg_res_get(w, i, 1),
               pg_res_get(w, i, 2), pg_res_get(w, i, 3), pg_res_get(w, i, 4), pg_res_get(w, i, 5));
}

static void budgets_json(const struct cli *cli, struct json_object *root, struct pg_res *b, struct pg_res *w)
{
    struct json_object *arr = json_object_new_array(), *writes = json_object_new_array();
    for (int i = 0; i < pg_res_rows(b); i++) {
        long long used = strtoll(pg_res_get(b, i, 2), NULL, 10), lim = strtoll(pg_res_get(b, i, 3), NULL, 10);
        int share = share_of(cli, pg_res_get(b, i, 5));
        struct json_object *o = json_object_new_object(), *caps = json_object_new_object(),
                           *deferring = json_object_new_array();
        json_add_str(o, "org_id", pg_res_get(b, i, 0));
        json_add_str(o, "sf_org_id", pg_res_get(b, i, 1));
        json_add_int(o, "used", used);
        json_add_int(o, "limit", lim);
        json_add_str(o, "as_of", nz(pg_res_get(b, i, 4)));
        json_add_int(o, "share_pct", share);
        json_add_int(o, "budget", lim * share / 100);
        for (size_t k = 0; k < sizeof classes / sizeof classes[0]; k++) {
            long long cap = budget_class_cap(lim, share, classes[k]);
            json_add_int(caps, budget_class_name(classes[k]), cap);
            if (used >= cap)
                json_object_array_add(deferring, json_object_new_string(budget_class_name(classes[k])));
        }
        json_object_object_add(o, "caps", caps);
        json_object_object_add(o, "deferring", deferring);
        json_object_array_add(arr, o);
    }
    for (int i = 0; i < pg_res_rows(w); i++) {
        struct json_object *o = json_object_new_object();
        json_add_str(o, "request_id", pg_res_get(w, i, 0));
        json_add_str(o, "org_id", pg_res_get(w, i, 1));
        json_add_str(o, "connection_id", pg_res_get(w, i, 2));
        json_add_int(o, "operations", strtoll(pg_res_get(w, i, 3), NULL, 10));
        json_add_str(o, "since", nz(pg_res_get(w, i, 4)));
        json_add_str(o, "error_message", nz(pg_res_get(w, i, 5)));
        json_object_array_add(writes, o);
    }
    json_object_object_add(root, "budgets", arr);
    json_object_object_add(root, "deferred_writes", writes);
}

static void bar(char *out, size_t cap, long long done, long long total)
{
    const int width = 30;
    if (total <= 0) {
        snprintf(out, cap, "[%*s] %lld fetched", width, "", done);
        return;
    }
    int fill = (int)((done > total ? total : done) * width / total);
    char b[64];
    for (int i = 0; i < width; i++)
        b[i] = i < fill ? '#' : '.';
    b[width] = '\0';
    snprintf(out, cap, "[%s] %lld/%lld (%lld%%)", b, done, total, done * 100 / total);
}

static void print_text(const struct cli *cli, struct pg_res *c, struct pg_res *r)
{
    const char *green = cli->color ? "\033[32m" : "", *red = cli->color ? "\033[31m" : "",
               *yellow = cli->color ? "\033[33m" : "", *reset = cli->color ? "\033[0m" : "";
    if (pg_res_rows(c) == 0)
        printf("no connections\n");
    for (int i = 0; i < pg_res_rows(c); i++) {
        const char *st = pg_res_get(c, i, 3);
        const char *col = !strcmp(st, "connected") ? green : !strcmp(st, "expired") ? red : yellow;
        const char *label = !strcmp(st, "connected") ? "Connected" : !strcmp(st, "expired") ? "Expired" : "Disabled";
        printf("%s  org %s  user %s\n", pg_res_get(c, i, 0), pg_res_get(c, i, 1), pg_res_get(c, i, 2));
        printf("  status           %s%s%s%s%s\n", col, label, reset, pg_res_get(c, i, 11)[0] ? ": " : "",
               pg_res_get(c, i, 11));
        printf("  instance         %s\n", dash(pg_res_get(c, i, 4)));
        const char *sfu = pg_res_get(c, i, 7)[0] ? pg_res_get(c, i, 7) : pg_res_get(c, i, 6);
        printf("  salesforce user  %s%s%s\n", dash(sfu), pg_res_get(c, i, 5)[0] ? " in org " : "",
               pg_res_get(c, i, 5));
        printf("  connected since  %s\n", dash(pg_res_get(c, i, 8)));
        printf("  last refresh     %s\n", dash(pg_res_get(c, i, 9)));
        printf("  last error       %s\n", dash(pg_res_get(c, i, 10)));
        if (pg_res_get(c, i, 12)[0]) {
            long long used = strtoll(pg_res_get(c, i, 12), NULL, 10), lim = strtoll(pg_res_get(c, i, 13), NULL, 10);
            printf("  api usage        %lld / %lld (%.1f%%) as of %s\n", used, lim,
                   lim > 0 ? 100.0 * (double)used / (double)lim : 0.0, pg_res_get(c, i, 14));
        } else {
            printf("  api usage        -\n");
        }
    }
    int running = 0, deferred = 0;
    for (int i = 0; i < pg_res_rows(r); i++)
        if (!strcmp(pg_res_get(r, i, 4), "running"))
            running++;
        else
            deferred++;
    if (running) {
        printf("\nrunning syncs\n");
        for (int i = 0; i < pg_res_rows(r); i++) {
            if (strcmp(pg_res_get(r, i, 4), "running") != 0)
                continue;
            char b[128];
            long long total = pg_res_get(r, i, 7)[0] ? strtoll(pg_res_get(r, i, 7), NULL, 10) : 0;
            bar(b, sizeof b, strtoll(pg_res_get(r, i, 6), NULL, 10), total);
            printf("  %s  %s %s %s  %s  api calls %s  since %s\n", pg_res_get(r, i, 0), pg_res_get(r, i, 2),
                   pg_res_get(r, i, 3), dash(pg_res_get(r, i, 5)), b, pg_res_get(r, i, 8), pg_res_get(r, i, 9));
        }
    }
    if (deferred) {
        printf("\ndeferred syncs\n");
        for (int i = 0; i < pg_res_rows(r); i++) {
            if (strcmp(pg_res_get(r, i, 4), "deferred") != 0)
                continue;
            printf("  %s  %s %s  retry at %s%s%s%s\n", pg_res_get(r, i, 0), pg_res_get(r, i, 2), pg_res_get(r, i, 3),
                   dash(pg_res_get(r, i, 10)), pg_res_get(r, i, 11)[0] ? "  (" : "", pg_res_get(r, i, 11),
                   pg_res_get(r, i, 11)[0] ? ")" : "");
        }
    }
}

static void print_json(const struct cli *cli, struct pg_res *c, struct pg_res *r, struct pg_res *b, struct pg_res *w)
{
    struct json_object *root = json_object_new_object(), *conns = json_object_new_array(),
                       *runs = json_object_new_array();
    for (int i = 0; i < pg_res_rows(c); i++) {
        struct json_object *o = json_object_new_object();
        json_add_str(o, "connection_id", pg_res_get(c, i, 0));
        json_add_str(o, "org_id", pg_res_get(c, i, 1));
        json_add_str(o, "user_id", pg_res_get(c, i, 2));
        json_add_str(o, "status", pg_res_get(c, i, 3));
        json_add_str(o, "status_reason", nz(pg_res_get(c, i, 11)));
        json_add_str(o, "instance_url", nz(pg_res_get(c, i, 4)));
        json_add_str(o, "sf_org_id", nz(pg_res_get(c, i, 5)));
        json_add_str(o, "sf_user_id", nz(pg_res_get(c, i, 6)));
        json_add_str(o, "sf_username", nz(pg_res_get(c, i, 7)));
        json_add_str(o, "connected_at", nz(pg_res_get(c, i, 8)));
        json_add_str(o, "last_refresh_at", nz(pg_res_get(c, i, 9)));
        json_add_str(o, "last_error", nz(pg_res_get(c, i, 10)));
        if (pg_res_get(c, i, 12)[0]) {
            struct json_object *u = json_object_new_object();
            json_add_int(u, "used", strtoll(pg_res_get(c, i, 12), NULL, 10));
            json_add_int(u, "limit", strtoll(pg_res_get(c, i, 13), NULL, 10));
            json_add_str(u, "as_of", nz(pg_res_get(c, i, 14)));
            json_object_object_add(o, "api_usage", u);
        } else {
            json_object_object_add(o, "api_usage", NULL);
        }
        json_object_array_add(conns, o);
    }
    for (int i = 0; i < pg_res_rows(r); i++) {
        struct json_object *o = json_object_new_object();
        json_add_str(o, "request_id", pg_res_get(r, i, 0));
        json_add_str(o, "connection_id", pg_res_get(r, i, 1));
        json_add_str(o, "org_id", pg_res_get(r, i, 2));
        json_add_str(o, "mode", pg_res_get(r, i, 3));
        json_add_str(o, "status", pg_res_get(r, i, 4));
        json_add_str(o, "current_object", nz(pg_res_get(r, i, 5)));
        json_add_int(o, "fetched", strtoll(pg_res_get(r, i, 6), NULL, 10));
        if (pg_res_get(r, i, 7)[0])
            json_add_int(o, "total", strtoll(pg_res_get(r, i, 7), NULL, 10));
        else
            json_object_object_add(o, "total", NULL);
        json_add_int(o, "api_calls", strtoll(pg_res_get(r, i, 8), NULL, 10));
        json_add_str(o, "started_at", nz(pg_res_get(r, i, 9)));
        json_add_str(o, "retry_at", nz(pg_res_get(r, i, 10)));
        json_add_str(o, "error_code", nz(pg_res_get(r, i, 11)));
        json_object_array_add(runs, o);
    }
    json_object_object_add(root, "connections", conns);
    json_object_object_add(root, "syncs", runs);
    budgets_json(cli, root, b, w);
    printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
}

static int show(struct cli *cli, struct pg *db, const char *org)
{
    struct err e = ERR_INIT;
    const char *p[1] = {org};
    int rc = 1;
    struct pg_res *r = NULL, *b = NULL, *w = NULL, *c = pg_exec(db, conn_sql, 1, p, &e);
    if (!c) {
        cli_fail("could not read connections: %s", e.msg);
        goto out;
    }
    r = pg_exec(db, runs_sql, 1, p, &e);
    if (!r) {
        cli_fail("could not read sync runs: %s", e.msg);
        goto out;
    }
    b = pg_exec(db, budget_sql, 1, p, &e);
    if (!b) {
        cli_fail("could not read the api budgets: %s", e.msg);
        goto out;
    }
    w = pg_exec(db, writes_sql, 1, p, &e);
    if (!w) {
        cli_fail("could not read deferred writes: %s", e.msg);
        goto out;
    }
    if (cli->json) {
        print_json(cli, c, r, b, w);
    } else {
        print_text(cli, c, r);
        print_budgets(cli, b, w);
    }
    rc = org && pg_res_rows(c) == 0 ? 2 : 0;
out:
    pg_res_free(&c);
    pg_res_free(&r);
    pg_res_free(&b);
    pg_res_free(&w);
    return rc;
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
    if (cli_flag(argc, argv, "--help") || cli_flag(argc, argv, "-h")) {
        printf("usage: sfbridge status [--org ORG] [--json] [--watch]\n");
        return 0;
    }
    const char *org = cli_opt(argc, argv, "--org");
    bool watch = cli_flag(argc, argv, "--watch");
    struct pg *db = cli_db(cli);
    if (!db)
        return 1;
    int rc;
    if (!watch) {
        rc = show(cli, db, org);
    } else {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_int;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        rc = 0;
        while (!stop_watch) {
            struct err e = ERR_INIT;
            if (!pg_ensure(db, &e)) {
                cli_fail("%s", e.msg);
            } else {
                if (cli->color)
                    printf("\033[H\033[2J");
                rc = show(cli, db, org);
            }
            fflush(stdout);
            for (int i = 0; i < 20 && !stop_watch; i++)
                usleep(100000);
        }
    }
    pg_close(&db);
    return rc;
}
