/*
 * worker: the consume -> parse -> validate -> handle -> commit loop shared by
 * every worker binary.
 *
 * For each message of the input topic:
 *   1. parse + validate against the topic's schema (msg.h); a message that
 *      fails goes to <topic>.dlq with its original bytes and headers naming
 *      the error (x-error-code, x-error, x-original-topic/partition/offset),
 *      then its offset is stored: one bad message never stops a partition;
 *   2. inbox: when processed_messages already has its message_id, the stored
 *      result is re-emitted and nothing else happens;
 *   3. gates (when the worker asks for them): unknown org -> NOT_FOUND, org not
 *      enabled -> INTEGRATION_DISABLED, connection of another org -> FORBIDDEN,
 *      expired -> CONNECTION_EXPIRED, disabled -> CONNECTION_DISABLED;
 *   4. handler; it commits its effects and calls worker_mark_processed() in
 *      its last transaction;
 *      - retriable error: roll back, back off (jittered, capped), retry the
 *        same message; the offset is not stored;
 *      - permanent error: a `failed` completion event is built, recorded in
 *        processed_messages and emitted;
 *      - ERR_LIMIT_EXCEEDED with job->retry_at_ms set: the message is kept
 *        (offset not stored), its partition is paused and rewound, and it is
 *        redelivered at retry_at (re-checked at least every 15 min); other
 *        partitions keep flowing;
 *   5. the output event is produced (waiting for the broker's ack), then the
 *      offset is stored.
 * SIGTERM/SIGINT: finish the current message, commit, close, exit 0.
 *
 * One thread; the deps are owned by the loop.
 */
#ifndef SFBRIDGE_WORKER_H
#define SFBRIDGE_WORKER_H

#include <json-c/json.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "cfg.h"
#include "err.h"

struct pg;
struct kafka_producer;

struct job {
    const char *topic; /* logical input topic, e.g. "sync.requested" */
    int32_t partition;
    int64_t offset;
    const char *payload; /* original bytes, borrowed for the handler call */
    size_t len;
    struct json_object *msg; /* validated message, borrowed */
    const char *message_id;
    const char *org_id;
    const char *connection_id; /* NULL when the message has none */
    int64_t received_ms;
    bool marked; /* set by worker_mark_processed */
    /* Set by a handler that fails with ERR_LIMIT_EXCEEDED to keep the message
     * for later: the loop pauses only this partition (others keep flowing),
     * rewinds it, and redelivers the message at this time (epoch ms). */
    int64_t retry_at_ms;
    /* events queued with worker_queue_event (owned by the loop) */
    struct json_object *extras;
};

struct deps {
    const struct cfg *cfg;
    struct pg *pg;
    struct kafka_producer *producer;
    const char *worker_name;
    void *ctx; /* the worker's own state (e.g. its Salesforce client), from init */
};

/* Handler contract: on success set *event (a new object; the loop takes it)
 * to the output event for def->output_topic, having committed every effect
 * and called worker_mark_processed() in the same transaction as the last of
 * them. On failure set e (retriable or not) and leave nothing half-committed
 * that a retry would duplicate. */
typedef bool (*worker_handle_fn)(struct job *job, struct deps *d, struct json_object **event, struct err *e);

struct worker_def {
    const char *name;         /* "sfbridge-sync" */
    const char *input_topic;  /* "sync.requested" */
    const char *output_topic; /* "sync.completed" */
    bool gate_org;            /* check the org exists and is enabled */
    bool gate_connection;     /* check the connection belongs to the org and is connected */
    worker_handle_fn handle;
    bool (*init)(struct deps *d, struct err *e); /* may be NULL */
    void (*cleanup)(struct deps *d);             /* may be NULL */
    /* Build the failed completion event for a permanent error; NULL = generic. */
    struct json_object *(*failure_event)(const struct job *job, const struct err *e);
};

/* Parse argv (--help, --once for tests), load cfg, connect, check the schema,
 * run until SIGTERM. Returns the process exit code. */
int worker_run(const struct worker_def *def, int argc, char **argv);

/* Queue an extra event (e.g. connection.status) for a logical topic, keyed by
 * `key`; takes a reference to `event`. Queued events are stored with the result
 * by worker_mark_processed (call this first), emitted after the commit, and
 * re-emitted on redelivery, so a crash cannot lose them. Queued events are
 * dropped when the handler's attempt is retried. */
void worker_queue_event(struct job *job, const char *logical_topic, const char *key, struct json_object *event);

/* Insert (message_id, topic, result) into processed_messages in the caller's
 * open transaction. Returns false with ERR_PG on error. */
bool worker_mark_processed(struct deps *d, struct job *job, const char *result_topic, struct json_object *event,
                           struct err *e);

/* Gate checks as described above (exposed for handlers that gate themselves). */
bool worker_gate(struct deps *d, const struct job *job, bool need_connection, struct err *e);

/* A new output event envelope answering `job`: message_id, request_id, org_id,
 * connection_id, created_at. Caller owns it. */
struct json_object *worker_event_new(const struct job *job);

/* Generic failure event for `topic` ("sync.completed", "record.written", ...). */
struct json_object *worker_failure_event(const char *output_topic, const struct job *job, const struct err *e);

/* Produce an extra event (e.g. connection.status, sync.progress) to a
 * logical topic, keyed by `key`, waiting for the broker's ack. The event is
 * borrowed. */
bool worker_emit(struct deps *d, const char *logical_topic, const char *key, struct json_object *event,
                 struct err *e);

/* Physical (prefixed) name of a logical topic such as "sync.progress". Returns buf. */
const char *worker_topic(const struct deps *d, const char *logical, char *buf, size_t cap);

/* true once SIGTERM/SIGINT was received. */
bool worker_stopping(void);
/* The flag itself, for sf_client_set_cancel(): a Salesforce backoff or Bulk poll
 * ends early when the worker is asked to stop. Borrowed for the process lifetime. */
const volatile sig_atomic_t *worker_stop_flag(void);

/* Sleep up to ms, returning early (false) when stopping. */
bool worker_sleep_ms(long ms);

/* A Salesforce client configured from the environment (timeouts, CA file,
 * retries, backoff cap) whose backoff sleeps and Bulk polls end early when
 * the worker is asked to stop. Caller frees with sf_client_free. */
struct sf_client;
struct sf_client *worker_sf_client(const struct deps *d, struct err *e);

/* Test fault points: when env SFBRIDGE_FAULT equals `point`, the process
 * SIGKILLs itself (used by crash tests: "after_commit", "after_sf_write"...). */
void worker_fault_point(const char *point);

#endif
