/* sfbridge config: the environment table (secrets never printed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_config(struct cli *cli, int argc, char **argv)
{
    (void)cli;
    if (cli_flag(argc, argv, "--markdown")) {
        cfg_print_markdown();
        return 0;
    }
    if (cli_flag(argc, argv, "--help")) {
        printf("usage: sfbridge config [--markdown]\n\nShows every configuration variable with its current value "
               "(secrets masked).\n");
        return 0;
    }
    for (const struct cfg_var *v = cfg_table; v->name; v++) {
        const char *cur = getenv(v->name);
        const char *shown = cur && *cur ? cur : (v->dflt && *v->dflt ? v->dflt : "");
        printf("%-24s %s%s\n", v->name, v->secret && *shown ? "(set, hidden)" : shown,
               cur && *cur ? "" : "  (default)");
    }
    return 0;
}
