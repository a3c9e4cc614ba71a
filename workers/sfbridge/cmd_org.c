/*
 * sfbridge org: a platform admin enables or disables an org's Salesforce
 * integration. Until enabled, every job of the org is refused with
 * INTEGRATION_DISABLED (the worker loop's gate) and nothing reaches Salesforce.
 *   sfbridge org enable ORG --by ADMIN [--name NAME]
 *   sfbridge org disable ORG --by ADMIN
 *   sfbridge org list [--json]
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "pg.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: sfbridge org enable ORG --by ADMIN [--name NAME]\n"
               "       sfbridge org disable ORG --by ADMIN\n"
               "       sfbridge org list [--json]\n");
}

/* The first argument after the subcommand that is not an option or an option's value. */
static const char *positional(int argc, char **argv, int from)
{
    for (int i = from; i < argc; i++) {
        if (argv[i][0] == '-') {
            if (!strchr(argv[i], '=') && strcmp(argv[i], "--json") != 0)
                i++; /* skip the option's value */
            continue;
        }
        return argv[i];
    }
    return NULL;
}

static int set_enabled(struct cli *cli, int argc, char **argv, bool enable)
{
    const char *org = positional(argc, argv, 2);
    const char *by = cli_opt(argc, argv, "--by");
    const char *name = cli_opt(argc, argv, "--name");
    if (!org || !by || !*by) {
        cli_fail("org %s needs ORG and --by ADMIN", enable ? "enable" : "disable");
        usage(stderr);
        return 64;
    }
    struct pg *db = cli_db(cli);
    if (!db)
        return 1;
    struct err e = ERR_INIT;
    int rc = 1;
    struct pg_res *r = NULL;
    const char *p[4] = {org, enable ? "true" : "false", by, name};
    if (enable)
        r = pg_exec(db,
                    "INSERT INTO organizations (org_id, name, salesforce_enabled, enabled_by, enabled_at) "
                    "VALUES ($1, $4, $2::boolean, $3, now()) "
                    "ON CONFLICT (org_id) DO UPDATE SET salesforce_enabled = true, enabled_by = $3, "
                    "enabled_at = now(), name = COALESCE($4, organizations.name) RETURNING org_id",
                    4, p, &e);
    else
        r = pg_exec(db,
                    "UPDATE organizations SET salesforce_enabled = $2::boolean, enabled_by = $3, enabled_at = now(), "
                    "name = COALESCE($4, name) WHERE org_id = $1 RETURNING org_id",
                    4, p, &e);
    if (!r) {
        if (strstr(e.msg, "organizations_org_id_check"))
            cli_fail("cannot enable org \"%s\": an org id is 1 to 64 of A-Z a-z 0-9 _ . : -", org);
        else
            cli_fail("could not %s org \"%s\": %s", enable ? "enable" : "disable", org, e.msg);
        goto out;
    }
    if (pg_res_rows(r) == 0) {
        cli_fail("unknown org \"%s\"", org);
        rc = 2;
        goto out;
    }
    printf("org %s: Salesforce integration %s by %s\n", org, enable ? "enabled" : "disabled", by);
    rc = 0;
out:
    pg_res_free(&r);
    pg_close(&db);
    return rc;
}

static int list(struct cli *cli)
{
    struct pg *db = cli_db(cli);
    if (!db)
        return 1;
    struct err e = ERR_INIT;
    int rc = 1;
    struct pg_res *r =
        pg_exec(db,
                "SELECT o.org_id, COALESCE(o.name, ''), o.salesforce_enabled, COALESCE(o.enabled_by, ''), "
                "COALESCE(to_char(o.enabled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), "
                "(SELECT count(*) FROM connections c WHERE c.org_id = o.org_id) "
                "FROM organizations o ORDER BY o.org_id",
                0, NULL, &e);
    if (!r) {
        cli_fail("could not list orgs: %s", e.msg);
        goto out;
    }
    if (cli->json) {
        struct json_object *a = json_object_new_array();
        for (int i = 0; i < pg_res_rows(r); i++) {
            struct json_object *o = json_object_new_object();
            json_add_str(o, "org_id", pg_res_get(r, i, 0));
            json_add_str(o, "name", pg_res_get(r, i, 1)[0] ? pg_res_get(r, i, 1) : NULL);
            json_add_bool(o, "salesforce_enabled", !strcmp(pg_res_get(r, i, 2), "t"));
            json_add_str(o, "enabled_by", pg_res_get(r, i, 3)[0] ? pg_res_get(r, i, 3) : NULL);
            json_add_str(o, "enabled_at", pg_res_get(r, i, 4)[0] ? pg_res_get(r, i, 4) : NULL);
            json_add_int(o, "connections", strtoll(pg_res_get(r, i, 5), NULL, 10));
            json_object_array_add(a, o);
        }
        printf("%s\n", json_object_to_json_string_ext(a, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(a);
    } else {
        printf("%-24s %-20s %-9s %-16s %-21s %s\n", "ORG", "NAME", "ENABLED", "BY", "SINCE", "CONNECTIONS");
        for (int i = 0; i < pg_res_rows(r); i++)
            printf("%-24s %-20s %-9s %-16s %-21s %s\n", pg_res_get(r, i, 0), pg_res_get(r, i, 1),
                   !strcmp(pg_res_get(r, i, 2), "t") ? "yes" : "no", pg_res_get(r, i, 3), pg_res_get(r, i, 4),
                   pg_res_get(r, i, 5));
    }
    rc = 0;
out:
    pg_res_free(&r);
    pg_close(&db);
    return rc;
}

int cmd_org(struct cli *cli, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : NULL;
    if (!sub || !strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        usage(sub ? stdout : stderr);
        return sub ? 0 : 64;
    }
    if (!strcmp(sub, "enable"))
        return set_enabled(cli, argc, argv, true);
    if (!strcmp(sub, "disable"))
        return set_enabled(cli, argc, argv, false);
    if (!strcmp(sub, "list"))
        return list(cli);
    cli_fail("unknown org command \"%s\"", sub);
    usage(stderr);
    return 64;
}
