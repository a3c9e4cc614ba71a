/*
 * sfbridge replay --topic T --from <RFC3339 time|earliest> --group G
 * Moves consumer group G on topic T back, so its workers re-drive the topic.
 * The group's consumers must be stopped (or G new). Inbox + idempotent effects
 * make a replay safe: nothing is sent twice to Salesforce.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "kafka.h"

int cmd_replay(struct cli *cli, int argc, char **argv)
{
    const char *topic = cli_opt(argc, argv, "--topic");
    const char *from = cli_opt(argc, argv, "--from");
    const char *group = cli_opt(argc, argv, "--group");
    if (cli_flag(argc, argv, "--help") || !topic || !from || !group) {
        printf("usage: sfbridge replay --topic TOPIC --from <earliest|2026-12-01T00:00:00Z> --group GROUP\n\n"
               "Moves GROUP's offsets on TOPIC (stop its workers first, or use a new group).\n");
        return cli_flag(argc, argv, "--help") ? 0 : 64;
    }
    int64_t from_ms = -1;
    if (strcmp(from, "earliest") != 0) {
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        const char *end = strptime(from, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!end || (*end && *end != 'Z')) {
            cli_fail("invalid --from \"%s\": use earliest or UTC time like 2026-12-01T00:00:00Z", from);
            return 64;
        }
        from_ms = (int64_t)timegm(&tm) * 1000;
    }
    char physical[256];
    cfg_topic(&cli->cfg, topic, physical, sizeof physical);
    struct err e = ERR_INIT;
    int n = kafka_group_rewind(cli->cfg.kafka_brokers, group, physical, from_ms, &e);
    if (n < 0) {
        cli_fail("%s", e.msg);
        return 1;
    }
    printf("group %s moved to %s on %d partitions of %s; start its workers to replay\n", group, from, n, physical);
    return 0;
}
