/*
 * sfbridge search --org ORG [--limit N] [--today YYYY-MM-DD] [--json] WORDS...
 *
 * Full-text search over the synced companies, deals, contacts and activities of
 * one org, with the simple filters a chat layer produces ("healthcare deals over
 * 5M closing this quarter"). The understanding and the ranking live in SQL
 * (migrations/0005_search.sql: sfbridge_search / sfbridge_search_parse), so the
 * platform calling the function and this command always agree; this file only
 * prints. Exit codes: 0 results found, 2 no results, 64 usage, 1 failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pg.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sfbridge search --org ORG [--limit N] [--today YYYY-MM-DD] [--json] WORDS...\n\n"
            "Searches the synced companies, deals, contacts and activities of ORG. Plain words are\n"
            "matched by prefix full-text search (name first, then stage/industry/title, then other text);\n"
            "these phrases become filters:\n"
            "  deals | companies | contacts | activities (meetings, calls)   the kind of record\n"
            "  over 5M, under 500k, between 1M and 3M                     deal amount (company revenue)\n"
            "  this|next|last week|month|quarter|year, q3 2027, next 30 days, in 2027,\n"
            "  before|after 2027-03-31, closing ...                        deal close date / activity start\n"
            "  open, closed, won, lost, negotiation, stage <word>          deal stage (the org's own stages)\n"
            "  healthcare, tech, ... (the org's industries)                company industry\n"
            "  owned by <name|user id>                                     record owner\n"
            "Prints a table with each record's Salesforce link; --json for scripts. The same search is\n"
            "available to the platform as SQL: SELECT * FROM sfbridge_search('ORG', 'words', 20).\n"
            "Exit 0 when something was found, 2 when nothing was.\n");
}

/* 7500000 -> "7.5M" */
static void fmt_amount(const char *s, char *out, size_t cap)
{
    if (!s || !*s) {
        snprintf(out, cap, "-");
        return;
    }
    double v = strtod(s, NULL);
    double a = fabs(v);
    if (a >= 1e9)
        snprintf(out, cap, "%.3gB", v / 1e9);
    else if (a >= 1e6)
        snprintf(out, cap, "%.3gM", v / 1e6);
    else if (a >= 1e3)
        snprintf(out, cap, "%.3gk", v / 1e3);
    else
        snprintf(out, cap, "%.0f", v);
}

/* Copy at most `width` characters (UTF-8 aware) of s, with "…" when cut. */
static void fit(const char *s, int width, char *out, size_t cap)
{
    if (!s)
        s = "";
    size_t i = 0, o = 0;
    int cols = 0;
    while (s[i] && o + 4 < cap) {
        size_t n = 1;
        unsigned char c = (unsigned char)s[i];
        if (c >= 0xf0)
            n = 4;
        else if (c >= 0xe0)
            n = 3;
        else if (c >= 0xc0)
            n = 2;
        if (cols == width - 1 && s[i + n]) {
            memcpy(out + o, "\xe2\x80\xa6", 3); /* … */
            o += 3;
            cols++;
            break;
        }
        for (size_t k = 0; k < n && s[i]; k++)
            out[o++] = s[i++];
        cols++;
    }
    out[o] = '\0';
    /* pad to width */
    while (cols < width && o + 1 < cap) {
        out[o++] = ' ';
        out[o] = '\0';
        cols++;
    }
}

static void print_interpretation(struct pg *db, const char *org, const char *query, const char *today)
{
    const char *p[3] = {org, query, today};
    struct err e = ERR_INIT;
    struct pg_res *r = pg_exec(
        db,
        "WITH f AS (SELECT sfbridge_search_parse($1, $2, coalesce($3::date, current_date)) AS j) "
        "SELECT concat_ws(' · ', "
        " CASE WHEN jsonb_array_length(j->'types') > 0 THEN "
        "   (SELECT string_agg(lower(t) || 's', '+') FROM jsonb_array_elements_text(j->'types') t) END, "
        " CASE WHEN jsonb_array_length(j->'industries') > 0 THEN 'industry ' || "
        "   (SELECT string_agg(t, ' or ') FROM jsonb_array_elements_text(j->'industries') t) END, "
        " CASE WHEN jsonb_array_length(j->'stages') > 0 THEN 'stage ' || "
        "   (SELECT string_agg(t, ' or ') FROM jsonb_array_elements_text(j->'stages') t) END, "
        " CASE WHEN (j->>'open_only')::boolean THEN 'open' END, "
        " CASE WHEN j->>'amount_min' IS NOT NULL AND j->>'amount_max' IS NOT NULL THEN 'amount ' || "
        "        to_char((j->>'amount_min')::numeric, 'FM999,999,999,999') || '..' || "
        "        to_char((j->>'amount_max')::numeric, 'FM999,999,999,999') "
        "      WHEN j->>'amount_min' IS NOT NULL THEN 'amount >= ' || "
        "        to_char((j->>'amount_min')::numeric, 'FM999,999,999,999') "
        "      WHEN j->>'amount_max' IS NOT NULL THEN 'amount <= ' || "
        "        to_char((j->>'amount_max')::numeric, 'FM999,999,999,999') END, "
        " CASE WHEN j->>'date_from' IS NOT NULL OR j->>'date_to' IS NOT NULL THEN 'dates ' || "
        "   coalesce(j->>'date_from', '…') || '..' || coalesce(j->>'date_to', '…') || "
        "   coalesce(' (' || (j->>'date_phrase') || ')', '') END, "
        " CASE WHEN j->>'owner' IS NOT NULL THEN 'owner ' || (j->>'owner') END, "
        " CASE WHEN j->>'text' <> '' THEN 'words \"' || (j->>'text') || '\"' END) FROM f",
        3, p, &e);
    if (r && pg_res_rows(r) == 1 && pg_res_get(r, 0, 0) && *pg_res_get(r, 0, 0))
        printf("understood: %s\n\n", pg_res_get(r, 0, 0));
    pg_res_free(&r);
}

int cmd_search(struct cli *cli, int argc, char **argv)
{
    const char *org = cli_opt(argc, argv, "--org");
    const char *lim_s = cli_opt(argc, argv, "--limit");
    const char *today = cli_opt(argc, argv, "--today");
    char query[2048] = "";
    size_t qlen = 0;
    int rc = 1;
    struct pg *db = NULL;
    struct pg_res *r = NULL;
    struct err e = ERR_INIT;

    if (cli_flag(argc, argv, "--help") || cli_flag(argc, argv, "-h")) {
        usage(stdout);
        return 0;
    }
    /* the words: every argument that is not an option or an option's value */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--org") || !strcmp(argv[i], "--limit") || !strcmp(argv[i], "--today")) {
            i++;
            continue;
        }
        if (!strncmp(argv[i], "--", 2))
            continue; /* --json, --org=X, ... */
        size_t n = strlen(argv[i]);
        if (qlen + n + 2 >= sizeof query) {
            cli_fail("the search query is too long (at most %zu characters)", sizeof query - 2);
            return 64;
        }
        if (qlen)
            query[qlen++] = ' ';
        memcpy(query + qlen, argv[i], n);
        qlen += n;
        query[qlen] = '\0';
    }
    if (!org || !*org || !qlen) {
        cli_fail(!org || !*org ? "--org is required" : "what should I search for? (give some words)");
        usage(stderr);
        return 64;
    }
    long lim = 20;
    if (lim_s) {
        char *end = NULL;
        lim = strtol(lim_s, &end, 10);
        if (!end || *end || lim < 1 || lim > 1000) {
            cli_fail("invalid --limit \"%s\": must be between 1 and 1000", lim_s);
            return 64;
        }
    }
    if (today) {
        int y, m, d;
        char extra;
        if (sscanf(today, "%4d-%2d-%2d%c", &y, &m, &d, &extra) != 3) {
            cli_fail("invalid --today \"%s\": use YYYY-MM-DD", today);
            return 64;
        }
    }
    char lim_buf[16];
    snprintf(lim_buf, sizeof lim_buf, "%ld", lim);

    db = cli_db(cli);
    if (!db)
        goto out;
    const char *p[4] = {org, query, lim_buf, today};
    if (cli->json) {
        r = pg_exec(db,
                    "SELECT json_build_object('org', $1::text, 'query', $2::text, "
                    " 'understood', sfbridge_search_parse($1, $2, coalesce($4::date, current_date)), "
                    " 'results', coalesce((SELECT json_agg(s) FROM sfbridge_search($1, $2, $3::int, "
                    "   coalesce($4::date, current_date)) s), '[]'::json))::text, "
                    " (SELECT count(*) FROM sfbridge_search($1, $2, $3::int, coalesce($4::date, current_date)))",
                    4, p, &e);
        if (!r) {
            cli_fail("could not search: %s", e.msg);
            goto out;
        }
        printf("%s\n", pg_res_get(r, 0, 0));
        rc = strcmp(pg_res_get(r, 0, 1), "0") == 0 ? 2 : 0;
        goto out;
    }
    r = pg_exec(db,
                "SELECT object, name, company, amount::text, stage, "
                " coalesce(close_date::text, to_char(starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), ''), "
                " coalesce(url, salesforce_id, ''), industry, email "
                "FROM sfbridge_search($1, $2, $3::int, coalesce($4::date, current_date))",
                4, p, &e);
    if (!r) {
        cli_fail("could not search: %s", e.msg);
        goto out;
    }
    print_interpretation(db, org, query, today);
    int n = pg_res_rows(r);
    if (n == 0) {
        printf("no results for \"%s\" in org %s\n", query, org);
        rc = 2;
        goto out;
    }
    char c1[64], c2[160], c3[120], c4[32], c5[80], c6[40];
    fit("TYPE", 8, c1, sizeof c1);
    fit("NAME", 32, c2, sizeof c2);
    fit("COMPANY", 24, c3, sizeof c3);
    fit("AMOUNT", 7, c4, sizeof c4);
    fit("STAGE / DETAIL", 20, c5, sizeof c5);
    fit("DATE", 16, c6, sizeof c6);
    printf("%s%s %s %s %s %s %s %s%s\n", cli->color ? "\033[1m" : "", c1, c2, c3, c4, c5, c6, "LINK",
           cli->color ? "\033[0m" : "");
    for (int i = 0; i < n; i++) {
        char amount[32];
        fmt_amount(pg_res_get(r, i, 3), amount, sizeof amount);
        const char *detail = pg_res_get(r, i, 4);
        if (!detail || !*detail)
            detail = pg_res_get(r, i, 8); /* contact email */
        if (!detail || !*detail)
            detail = pg_res_get(r, i, 7); /* company industry */
        fit(pg_res_get(r, i, 0), 8, c1, sizeof c1);
        fit(pg_res_get(r, i, 1), 32, c2, sizeof c2);
        fit(pg_res_get(r, i, 2), 24, c3, sizeof c3);
        fit(amount, 7, c4, sizeof c4);
        fit(detail, 20, c5, sizeof c5);
        fit(pg_res_get(r, i, 5), 16, c6, sizeof c6);
        printf("%s %s %s %s %s %s %s\n", c1, c2, c3, c4, c5, c6, pg_res_get(r, i, 6));
    }
    printf("\n%d result%s\n", n, n == 1 ? "" : "s");
    rc = 0;
out:
    pg_res_free(&r);
    pg_close(&db);
    return rc;
}
