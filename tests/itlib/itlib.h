/*
 * itlib: helpers for the integration tests (tests/it_*.c). They run against
 * the real rig started by tests/run: PostgreSQL (SFBRIDGE_PG_DSN, migrated
 * database "sfbridge" used as a template), Kafka (SFBRIDGE_KAFKA_BROKERS) and
 * the emulator binary (SFBRIDGE_BIN_DIR/sfsim). Every test gets its own
 * database and its own topic prefix, so tests never see each other's data.
 * Helpers abort the test (cr_assert) when the rig is not usable: integration
 * tests never skip.
 */
#ifndef SFBRIDGE_ITLIB_H
#define SFBRIDGE_ITLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct it_env {
    char dsn[512];      /* this test's fresh database */
    char prefix[64];    /* topic prefix, e.g. "it-3f2a1c-" */
    char brokers[256];
    char bindir[512];
    char group[96];     /* a consumer group id unique to this test */
};

/* Fresh database (clone of the migrated template) + topics under a new prefix. */
void it_env_init(struct it_env *env);

/* Run SQL on the test database; returns the first column of the first row
 * (caller frees) or NULL. it_sql_long parses it (-1 when NULL). */
char *it_sql(const struct it_env *env, const char *sql);
long long it_sql_long(const struct it_env *env, const char *sql);
void it_sql_ok(const struct it_env *env, const char *sql); /* asserts success */

/* Start a binary from bindir with the test environment (DSN, brokers, prefix,
 * group "<env group>-<bin>", one per worker kind) plus `extra` ("K=V", NULL-terminated, may be NULL). stderr/stdout go
 * to build/test-logs/<label>-<pid>.log. */
pid_t it_spawn(const struct it_env *env, const char *bin, const char *const *extra, const char *label);
/* SIGTERM and wait; returns the exit code, 128+signal when killed, -1 on timeout. */
int it_stop(pid_t pid, int timeout_ms);
/* Wait for exit without signalling; same return values. */
int it_wait(pid_t pid, int timeout_ms);
void it_kill9(pid_t pid);

/* Produce to the prefixed topic. */
void it_produce(const struct it_env *env, const char *topic, const char *key, const char *payload, size_t len);

struct it_msg {
    char *payload;
    size_t len;
    char *error_code; /* x-error-code header or NULL */
    char *error;      /* x-error header or NULL */
};
struct it_msgs {
    int n;
    struct it_msg *m;
};
/* Read the prefixed topic from the beginning until `want` messages (or more
 * arrived and `settle_ms` passed without new ones) or timeout. */
int it_consume(const struct it_env *env, const char *topic, int want, int timeout_ms, int settle_ms,
               struct it_msgs *out);
void it_msgs_free(struct it_msgs *m);
/* Count messages whose payload contains `needle`. */
int it_msgs_count(const struct it_msgs *m, const char *needle);

/* A fresh UUID v4. */
void it_uuid(char out[37]);

/* Read a whole file (caller frees), NULL if absent. */
char *it_read_file(const char *path);

/* The emulator. */
struct it_sfsim {
    pid_t pid;
    char url[128];
};
void it_sfsim_start(const struct it_env *env, struct it_sfsim *s, const char *const *args);
void it_sfsim_stop(struct it_sfsim *s);
/* HTTP to the emulator's control API or anything else on loopback; returns
 * the body (caller frees) and sets *status. */
char *it_http(const char *method, const char *url, const char *body, long *status);

#endif
