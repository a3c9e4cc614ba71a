/*
 * sfsim: the Salesforce emulator as a program. Parses the command line
 * (see tests/sfsim/README.md), seeds the data, serves until SIGTERM/SIGINT
 * and exits 0.
 *
 * Threads: signals are blocked before the server threads start and taken
 * with sigwait() here, so no handler runs inside a server thread.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static void usage(FILE *f)
{
    fputs("usage: sfsim [--port N] [--host 127.0.0.1] [--ready-file PATH]\n"
          "             [--client-id ID] [--client-secret S] [--user USERNAME]\n"
          "             [--session-timeout SECONDS] [--rotate-refresh-tokens]\n"
          "             [--api-limit N] [--seed N] [--seed-accounts N] [--seed-contacts N]\n"
          "             [--seed-opportunities N] [--seed-interactions N] [--seed-tasks N]\n"
          "             [--seed-events N] [--seed-attendees N] [--bulk-delay-ms N]\n"
          "             [--tls-cert PEM --tls-key PEM] [--quiet]\n",
          f);
}

static bool num_arg(const char *name, const char *v, long long *out)
{
    char *end;
    errno = 0;
    long long n = v ? strtoll(v, &end, 10) : 0;
    if (!v || errno || *end || n < 0) {
        fprintf(stderr, "sfsim: cannot use %s \"%s\": not a non-negative integer\n", name,
                v ? v : "");
        return false;
    }
    *out = n;
    return true;
}

int main(int argc, char **argv)
{
    struct sim_config c;
    sim_config_defaults(&c);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long n = 0;
#define NUM(flag, field)                                                         \
    if (strcmp(a, flag) == 0) {                                                  \
        if (!num_arg(flag, v, &n))                                               \
            return 2;                                                            \
        c.field = n;                                                             \
        i++;                                                                     \
        continue;                                                                \
    }
#define STR(flag, field)                                                         \
    if (strcmp(a, flag) == 0) {                                                  \
        if (!v) {                                                                \
            fprintf(stderr, "sfsim: %s needs a value\n", flag);                  \
            return 2;                                                            \
        }                                                                        \
        c.field = v;                                                             \
        i++;                                                                     \
        continue;                                                                \
    }
        NUM("--port", port)
        STR("--host", host)
        STR("--ready-file", ready_file)
        STR("--client-id", client_id)
        STR("--client-secret", client_secret)
        STR("--user", user)
        NUM("--session-timeout", session_timeout_s)
        NUM("--api-limit", api_limit)
        NUM("--seed", seed)
        NUM("--seed-accounts", seed_accounts)
        NUM("--seed-contacts", seed_contacts)
        NUM("--seed-opportunities", seed_opportunities)
        NUM("--seed-interactions", seed_interactions)
        NUM("--seed-tasks", seed_tasks)
        NUM("--seed-events", seed_events)
        NUM("--seed-attendees", seed_attendees)
        NUM("--bulk-delay-ms", bulk_delay_ms)
        STR("--tls-cert", tls_cert)
        STR("--tls-key", tls_key)
#undef NUM
#undef STR
        if (strcmp(a, "--rotate-refresh-tokens") == 0) {
            c.rotate_refresh_tokens = true;
        } else if (strcmp(a, "--quiet") == 0) {
            c.quiet = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "sfsim: unknown option \"%s\"\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (c.port > 65535 || (!c.tls_cert != !c.tls_key)) {
        fprintf(stderr, "sfsim: cannot start: %s\n",
                c.port > 65535 ? "port out of range" : "--tls-cert and --tls-key go together");
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[512];
    struct sim *s = sim_new(&c, err, sizeof err);
    if (!s || !sim_start(s, err, sizeof err)) {
        fprintf(stderr, "sfsim: %s\n", err);
        sim_free(s);
        return 1;
    }
    printf("sfsim listening on %s\n", sim_base_url(s));
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    if (!c.quiet)
        fprintf(stderr, "sfsim: stopping on signal %d\n", sig);
    sim_free(s);
    return 0;
}
