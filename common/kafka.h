/*
 * kafka: the only module that includes rdkafka.h.
 *
 * Consumer: group member with enable.auto.offset.store=false; an offset is
 * stored (kafka_consumer_store) only after the handler's transaction committed
 * and its output event was acknowledged; stored offsets are committed by the
 * auto-commit timer and on close. Producer: idempotent (acks=all, ordered
 * retries); kafka_produce() waits for the delivery report.
 * Each handle belongs to one thread.
 */
#ifndef SFBRIDGE_KAFKA_H
#define SFBRIDGE_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct kafka_consumer;
struct kafka_producer;

struct kafka_header {
    const char *name;
    const char *value; /* NUL-terminated */
};

/* A consumed message. Pointers are borrowed until kafka_msg_release(). */
struct kafka_msg {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    const char *key;
    size_t key_len;
    const char *payload;
    size_t len;
    void *rkm; /* internal */
};

/* `topics` is NULL-terminated; all strings are copied. */
struct kafka_consumer *kafka_consumer_new(const char *brokers, const char *group, const char *const *topics,
                                          const char *client_id, struct err *e);
/* 1 = a message in *m (release it), 0 = nothing within timeout, -1 = error (e set;
 * fatal errors are not retriable). */
int kafka_consumer_poll(struct kafka_consumer *c, int timeout_ms, struct kafka_msg *m, struct err *e);
/* Store m->offset+1 for commit. */
bool kafka_consumer_store(struct kafka_consumer *c, const struct kafka_msg *m, struct err *e);
void kafka_msg_release(struct kafka_msg *m);
/* Messages after `m` in its partition, from the locally cached high watermark
 * (no broker round trip); -1 when unknown. */
long long kafka_consumer_lag(struct kafka_consumer *c, const struct kafka_msg *m);
/* Copy the last header `name` of m into buf (NUL-terminated); false when absent. */
bool kafka_msg_header(const struct kafka_msg *m, const char *name, char *buf, size_t cap);
/* Deferral: stop fetching m's partition and rewind it to m (so m is delivered
 * again after kafka_consumer_resume); other partitions keep flowing. */
bool kafka_consumer_pause(struct kafka_consumer *c, const struct kafka_msg *m, struct err *e);
bool kafka_consumer_resume(struct kafka_consumer *c, const char *topic, int32_t partition, int64_t offset,
                           struct err *e);
/* Commit stored offsets, leave the group, destroy. NULL-safe, nulls *c. */
void kafka_consumer_close(struct kafka_consumer **c);

struct kafka_producer *kafka_producer_new(const char *brokers, const char *client_id, struct err *e);
/* Produce and wait up to timeout_ms for the delivery report. key may be NULL. */
bool kafka_produce(struct kafka_producer *p, const char *topic, const char *key, const void *val, size_t len,
                   const struct kafka_header *hdrs, size_t nhdrs, int timeout_ms, struct err *e);
/* Produce without waiting (e.g. progress events); kafka_producer_flush waits for all. */
bool kafka_produce_async(struct kafka_producer *p, const char *topic, const char *key, const void *val,
                         size_t len, struct err *e);
bool kafka_producer_flush(struct kafka_producer *p, int timeout_ms, struct err *e);
void kafka_producer_free(struct kafka_producer **p); /* flushes; NULL-safe */

/* Admin: create topics (existing ones are fine), wait until all have leaders. */
bool kafka_create_topics(const char *brokers, const char *const *topics, int partitions, int timeout_ms,
                         struct err *e);
/* Move consumer group `group` on `topic` to the earliest offsets (from_ms < 0) or to the first offset
 * at/after from_ms. The group must have no active members. Prints nothing; returns partitions moved. */
int kafka_group_rewind(const char *brokers, const char *group, const char *topic, int64_t from_ms,
                       struct err *e);

#endif
