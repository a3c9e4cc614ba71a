/*
 * The admin CLI `sfbridge`: one file per command group (cmd_<group>.c), each
 * exposing `int cmd_<group>(struct cli *cli, int argc, char **argv)` where
 * argv[0] is the group name. Exit codes: 0 ok, 1 failure, 2 verification
 * failed / not found, 64 usage, 78 configuration.
 */
#ifndef SFBRIDGE_CLI_H
#define SFBRIDGE_CLI_H

#include <stdbool.h>

#include "cfg.h"
#include "err.h"

struct pg;

struct cli {
    struct cfg cfg;
    bool json;  /* --json: machine-readable output on read commands */
    bool color; /* stdout is a terminal */
};

/* Open the database (waits up to 10 s) or print the error and return NULL. */
struct pg *cli_db(struct cli *cli);
/* Value of "--name VALUE" / "--name=VALUE" in argv, or NULL. */
const char *cli_opt(int argc, char **argv, const char *name);
bool cli_flag(int argc, char **argv, const char *name);
/* Print "sfbridge: <msg>" to stderr. */
void cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int cmd_migrate(struct cli *cli, int argc, char **argv);
int cmd_topics(struct cli *cli, int argc, char **argv);
int cmd_config(struct cli *cli, int argc, char **argv);
int cmd_replay(struct cli *cli, int argc, char **argv);
int cmd_org(struct cli *cli, int argc, char **argv);
int cmd_connect(struct cli *cli, int argc, char **argv);
int cmd_mappings(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_audit(struct cli *cli, int argc, char **argv);
int cmd_search(struct cli *cli, int argc, char **argv);

#endif
