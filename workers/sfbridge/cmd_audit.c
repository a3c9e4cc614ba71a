/* sfbridge audit: not implemented yet (placeholder until its issue lands). */
#include <stdio.h>

#include "cli.h"

int cmd_audit(struct cli *cli, int argc, char **argv)
{
    (void)cli;
    (void)argc;
    (void)argv;
    fprintf(stderr, "sfbridge: \"audit\" is not implemented yet\n");
    return 1;
}
