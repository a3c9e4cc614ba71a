/* sfbridge org: not implemented yet (placeholder until its issue lands). */
#include <stdio.h>

#include "cli.h"

int cmd_org(struct cli *cli, int argc, char **argv)
{
    (void)cli;
    (void)argc;
    (void)argv;
    fprintf(stderr, "sfbridge: \"org\" is not implemented yet\n");
    return 1;
}
