/* sfbridge status: not implemented yet (placeholder until its issue lands). */
#include <stdio.h>

#include "cli.h"

int cmd_status(struct cli *cli, int argc, char **argv)
{
    (void)cli;
    (void)argc;
    (void)argv;
    fprintf(stderr, "sfbridge: \"status\" is not implemented yet\n");
    return 1;
}
