/* sfbridge mappings: not implemented yet (placeholder until its issue lands). */
#include <stdio.h>

#include "cli.h"

int cmd_mappings(struct cli *cli, int argc, char **argv)
{
    (void)cli;
    (void)argc;
    (void)argv;
    fprintf(stderr, "sfbridge: \"mappings\" is not implemented yet\n");
    return 1;
}
