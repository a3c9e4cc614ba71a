/*
 * sfbridge audit: read and verify the append-only audit log.
 *   sfbridge audit list [--org ORG] [--since TIME] [--object OBJ] [--limit N] [--json]
 *   sfbridge audit verify [--org ORG]
 * list prints the newest N rows (default 200) oldest first; --object matches the
 * Salesforce or the platform object name; TIME is anything PostgreSQL reads as a
 * timestamptz ("2026-12-03", "2026-12-03T15:00:00Z", "1 hour ago" is not). verify
 * walks each org's hash chain: exit 0 "ok: N rows verified", exit 2 naming the
 * first changed or removed row.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "cli.h"
#include "json.h"
#include "pg.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: sfbridge audit list [--org ORG] [--since TIME] [--object OBJECT] [--limit N] [--json]\n"
               "       sfbridge audit verify [--org ORG]\n");
}

static const char *dash(const char *s) { return s && *s ? s : "-"; }

static int cmd_list(struct cli *cli, int argc, char **argv)
{
    const char *org = cli_opt(argc, argv, "--org");
    const char *since = cli_opt(argc, argv, "--since");
    const char *object = cli_opt(argc, argv, "--object");
    const char *limit = cli_opt(argc, argv, "--limit");
    char *endp = NULL;
    long n = limit ? strtol(limit, &endp, 10) : 200;
    if (limit && (!*limit || *endp || n < 1 || n > 1000000)) {
        cli_fail("--limit must be a number between 1 and 1000000");
        return 64;
    }
    char nbuf[24];
    snprintf(nbuf, sizeof nbuf, "%ld", n);
    struct pg *db = cli_db(cli);
    if (!db)
        return 1;
    struct err e = ERR_INIT;
    const char *p[4] = {org, since, object, nbuf};
    struct pg_res *r = pg_exec(
        db,
        "SELECT * FROM (SELECT audit_id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
        "org_id, actor, source, action, sf_object, platform_object, ref, salesforce_id, outcome, sf_error_code, "
        "sf_error_message, fields::text, request_id::text, connection_id::text FROM audit_log "
        "WHERE ($1::text IS NULL OR org_id = $1) AND ($2::timestamptz IS NULL OR created_at >= $2::timestamptz) "
        "AND ($3::text IS NULL OR sf_object = $3 OR platform_object = $3) "
        "ORDER BY audit_id DESC LIMIT $4::int) t ORDER BY audit_id",
        4, p, &e);
    if (!r) {
        cli_fail("could not list the audit log: %s", e.msg);
        pg_close(&db);
        return 1;
    }
    int rows = pg_res_rows(r);
    if (cli->json) {
        struct json_object *arr = json_object_new_array();
        static const char *const names[] = {"audit_id", "created_at", "org_id", "actor", "source", "action",
                                            "sf_object", "platform_object", "ref", "salesforce_id", "outcome",
                                            "sf_error_code", "sf_error_message", "fields", "request_id",
                                            "connection_id"};
        for (int i = 0; i < rows; i++) {
            struct json_object *o = json_object_new_object();
            for (int c = 0; c < 16; c++) {
                const char *v = pg_res_get(r, i, c);
                if (c == 0)
                    json_add_int(o, names[c], strtoll(v, NULL, 10));
                else if (c == 13) {
                    struct err je = ERR_INIT;
                    struct json_object *f = json_parse(v, strlen(v), &je);
                    json_object_object_add(o, names[c], f);
                } else
                    json_add_str(o, names[c], v);
            }
            json_object_array_add(arr, o);
        }
        printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(arr);
    } else {
        printf("%-8s %-24s %-16s %-20s %-13s %-7s %-12s %-14s %-18s %-9s %s\n", "ID", "TIME (UTC)", "ORG", "ACTOR",
               "SOURCE", "ACTION", "OBJECT", "REF", "SALESFORCE ID", "OUTCOME", "ERROR");
        for (int i = 0; i < rows; i++) {
            char err[300] = "";
            if (pg_res_get(r, i, 11))
                snprintf(err, sizeof err, "%s: %.200s", pg_res_get(r, i, 11), dash(pg_res_get(r, i, 12)));
            printf("%-8s %-24s %-16.16s %-20.20s %-13s %-7s %-12.12s %-14.14s %-18s %-9s %s\n", pg_res_get(r, i, 0),
                   pg_res_get(r, i, 1), pg_res_get(r, i, 2), pg_res_get(r, i, 3), dash(pg_res_get(r, i, 4)),
                   pg_res_get(r, i, 5), dash(pg_res_get(r, i, 6)), dash(pg_res_get(r, i, 8)),
                   dash(pg_res_get(r, i, 9)), pg_res_get(r, i, 10), dash(err));
        }
        if (rows == 0)
            printf("(no audit rows match)\n");
    }
    pg_res_free(&r);
    pg_close(&db);
    return 0;
}

static int cmd_verify(struct cli *cli, int argc, char **argv)
{
    const char *org = cli_opt(argc, argv, "--org");
    struct pg *db = cli_db(cli);
    if (!db)
        return 1;
    struct err e = ERR_INIT;
    long long rows = 0, bad = 0;
    char bad_org[80], reason[512];
    int rc = 1;
    if (!audit_verify(db, org, &rows, &bad, bad_org, sizeof bad_org, reason, sizeof reason, &e)) {
        cli_fail("could not verify the audit log: %s", e.msg);
        goto out;
    }
    if (bad) {
        printf("FAILED: %s\n", reason);
        printf("%lld rows verified before audit row %lld of org \"%s\"\n", rows, bad, bad_org);
        rc = 2;
        goto out;
    }
    printf("ok: %lld rows verified\n", rows);
    rc = 0;
out:
    pg_close(&db);
    return rc;
}

int cmd_audit(struct cli *cli, int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 64 : 0;
    }
    if (!strcmp(argv[1], "list"))
        return cmd_list(cli, argc - 1, argv + 1);
    if (!strcmp(argv[1], "verify"))
        return cmd_verify(cli, argc - 1, argv + 1);
    cli_fail("unknown audit command \"%s\"", argv[1]);
    usage(stderr);
    return 64;
}
