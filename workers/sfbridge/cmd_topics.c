/*
 * sfbridge topics create: the topics of DESIGN.md, with the configured prefix.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kafka.h"

int cmd_topics(struct cli *cli, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "create") != 0 || cli_flag(argc, argv, "--help")) {
        printf("usage: sfbridge topics create [--partitions N]\n\nCreates sync.requested, record.write, "
               "token.refresh, their .dlq twins and the output topics\n(existing topics are left alone).\n");
        return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 64;
    }
    const char *np = cli_opt(argc, argv, "--partitions");
    int partitions = np ? (int)strtol(np, NULL, 10) : 4;
    if (partitions < 1 || partitions > 1000) {
        cli_fail("invalid --partitions \"%s\"", np);
        return 64;
    }
    char names[16][256];
    const char *list[17];
    int n = 0;
    for (int i = 0; cfg_input_topics[i]; i++) {
        snprintf(names[n], sizeof names[n], "%s%s", cli->cfg.topic_prefix, cfg_input_topics[i]);
        list[n] = names[n];
        n++;
        snprintf(names[n], sizeof names[n], "%s%s.dlq", cli->cfg.topic_prefix, cfg_input_topics[i]);
        list[n] = names[n];
        n++;
    }
    for (int i = 0; cfg_output_topics[i]; i++) {
        snprintf(names[n], sizeof names[n], "%s%s", cli->cfg.topic_prefix, cfg_output_topics[i]);
        list[n] = names[n];
        n++;
    }
    list[n] = NULL;
    struct err e = ERR_INIT;
    if (!kafka_create_topics(cli->cfg.kafka_brokers, list, partitions, 15000, &e)) {
        cli_fail("%s", e.msg);
        return 1;
    }
    for (int i = 0; i < n; i++)
        printf("topic %s ready\n", list[i]);
    return 0;
}
