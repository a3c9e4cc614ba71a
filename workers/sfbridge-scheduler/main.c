/*
 * sfbridge-scheduler: publishes sync.requested from the schedules table.
 * Placeholder until the sync issue lands: validates configuration and the
 * schema, then idles until SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cfg.h"
#include "log.h"
#include "pg.h"

static volatile sig_atomic_t stop;
static void on_signal(int s)
{
    (void)s;
    stop = 1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--help")) {
        printf("usage: sfbridge-scheduler\n\nPublishes sync.requested for due schedules (one leader at a time).\n");
        return 0;
    }
    struct cfg cfg;
    struct err e = ERR_INIT;
    log_init("sfbridge-scheduler", NULL);
    cfg_load_or_exit(&cfg);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    struct pg *db = pg_open(cfg.pg_dsn, 60000, &e);
    if (!db || !pg_check_schema(db, SFBRIDGE_SCHEMA_VERSION, &e)) {
        log_error("cannot start: %s", e.msg);
        pg_close(&db);
        return 1;
    }
    log_warn("scheduling is not implemented yet; idling");
    while (!stop) {
        struct timespec ts = {0, 200000000L};
        nanosleep(&ts, NULL);
    }
    pg_close(&db);
    return 0;
}
