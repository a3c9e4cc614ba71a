/*
 * sfbridge migrate: apply the embedded migrations in order. A session-level
 * advisory lock serialises concurrent runs; each migration runs in its own
 * transaction together with its schema_migrations row, so a second run (or a
 * second process) finds nothing to do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "embed.h"
#include "pg.h"

#define MIGRATE_LOCK "7364627267" /* arbitrary constant: "sfbrg" */

int cmd_migrate(struct cli *cli, int argc, char **argv)
{
    if (cli_flag(argc, argv, "--help")) {
        printf("usage: sfbridge migrate\n\nApplies pending migrations (compiled into this binary) in order and\n"
               "records them in schema_migrations. Safe to run twice or from two processes at once.\n");
        return 0;
    }
    struct err e = ERR_INIT;
    int rc = 1, applied = 0;
    struct pg *db = cli_db(cli);
    if (!db)
        return 1;
    if (!pg_run(db, "SELECT pg_advisory_lock(" MIGRATE_LOCK ")", 0, NULL, &e) ||
        !pg_run(db,
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())",
                0, NULL, &e))
        goto out;
    for (const struct embedded_file *f = sfbridge_migrations; f->name; f++) {
        char ver[16];
        long v = strtol(f->name, NULL, 10);
        snprintf(ver, sizeof ver, "%ld", v);
        const char *p[2] = {ver, f->name};
        struct pg_res *r = pg_exec(db, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, p, &e);
        if (!r)
            goto out;
        bool done = pg_res_rows(r) == 1;
        pg_res_free(&r);
        if (done)
            continue;
        if (!pg_begin(db, &e) || !pg_run_script(db, f->text, &e) ||
            !pg_run(db, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, p, &e) ||
            !pg_commit(db, &e)) {
            pg_rollback(db);
            cli_fail("could not apply migration %s: %s", f->name, e.msg);
            goto unlock;
        }
        printf("applied %s\n", f->name);
        applied++;
    }
    int version = 0;
    if (!pg_schema_version(db, &version, &e))
        goto out;
    if (applied == 0)
        printf("database is up to date (schema version %d); nothing to do\n", version);
    else
        printf("database migrated to schema version %d (%d applied)\n", version, applied);
    rc = 0;
unlock:
    pg_run(db, "SELECT pg_advisory_unlock(" MIGRATE_LOCK ")", 0, NULL, NULL);
out:
    if (rc && err_is_set(&e) && !strstr(e.msg, "migration"))
        cli_fail("could not migrate: %s", e.msg);
    pg_close(&db);
    return rc;
}
