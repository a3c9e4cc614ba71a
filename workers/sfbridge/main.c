/*
 * sfbridge: the admin CLI. Dispatches to cmd_<group>() (one file per group).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "pg.h"

struct command {
    const char *name;
    int (*fn)(struct cli *, int, char **);
    const char *summary;
};

static const struct command commands[] = {
    {"migrate", cmd_migrate, "apply pending database migrations (safe to run twice or concurrently)"},
    {"topics", cmd_topics, "create the Kafka topics (inputs, .dlq twins, outputs)"},
    {"org", cmd_org, "enable or disable an org's Salesforce integration"},
    {"connect", cmd_connect, "OAuth connect flow: start, finish, revoke"},
    {"mappings", cmd_mappings, "import, show and validate object/field mappings"},
    {"status", cmd_status, "connections, API usage, running syncs"},
    {"audit", cmd_audit, "list and verify the audit log"},
    {"replay", cmd_replay, "move a consumer group back to re-drive a topic"},
    {"search", cmd_search, "full-text search over synced data"},
    {"config", cmd_config, "show the configuration table (--markdown for the README)"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: sfbridge [--json] <command> [args]\n\ncommands:\n");
    for (const struct command *c = commands; c->name; c++)
        fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fprintf(f, "\n`sfbridge <command> --help` (or `sfbridge help <command>`) for a command's options.\n"
               "--json (before or after the command) prints machine-readable output on read commands.\n"
               "Configuration comes from the environment (`sfbridge config`).\n"
               "Exit codes: 0 ok, 1 failure, 2 not found / verification failed, 64 usage, 78 configuration.\n");
}

void cli_fail(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_redact(buf, sizeof buf);
    fprintf(stderr, "sfbridge: %s\n", buf);
}

struct pg *cli_db(struct cli *cli)
{
    struct err e = ERR_INIT;
    struct pg *db = pg_open(cli->cfg.pg_dsn, 10000, &e);
    if (!db)
        cli_fail("%s", e.msg);
    return db;
}

const char *cli_opt(int argc, char **argv, const char *name)
{
    size_t n = strlen(name);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], name) && i + 1 < argc)
            return argv[i + 1];
        if (!strncmp(argv[i], name, n) && argv[i][n] == '=')
            return argv[i] + n + 1;
    }
    return NULL;
}

bool cli_flag(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], name))
            return true;
    return false;
}

int main(int argc, char **argv)
{
    struct cli cli;
    memset(&cli, 0, sizeof cli);
    log_init("sfbridge", getenv("SFBRIDGE_LOG_LEVEL") ? getenv("SFBRIDGE_LOG_LEVEL") : "warn");
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--json"))
            cli.json = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            cli_fail("unknown option \"%s\"", argv[i]);
            usage(stderr);
            return 64;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 64;
    }
    /* `sfbridge help [command]` = `sfbridge [command] --help` */
    if (!strcmp(argv[i], "help")) {
        if (i + 1 >= argc) {
            usage(stdout);
            return 0;
        }
        for (const struct command *c = commands; c->name; c++)
            if (!strcmp(c->name, argv[i + 1])) {
                char *hargv[3] = {argv[i + 1], (char *)(uintptr_t) "--help", NULL};
                if (!cfg_load(&cli.cfg))
                    return 78;
                return c->fn(&cli, 2, hargv);
            }
        cli_fail("unknown command \"%s\"", argv[i + 1]);
        usage(stderr);
        return 64;
    }
    if (!cfg_load(&cli.cfg))
        return 78;
    if (!getenv("SFBRIDGE_LOG_LEVEL"))
        log_init(NULL, "warn");
    cli.color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
    /* --json may also follow the command */
    for (int k = i + 1; k < argc; k++)
        if (!strcmp(argv[k], "--json"))
            cli.json = true;
    for (const struct command *c = commands; c->name; c++)
        if (!strcmp(c->name, argv[i]))
            return c->fn(&cli, argc - i, argv + i);
    cli_fail("unknown command \"%s\"", argv[i]);
    usage(stderr);
    return 64;
}
