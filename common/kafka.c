/*
 * kafka: librdkafka wrapper. See kafka.h. Handles are per thread.
 */
#include "kafka.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

struct kafka_consumer {
    rd_kafka_t *rk;
};

struct kafka_producer {
    rd_kafka_t *rk;
};

/* Delivery state shared between a produce call and its delivery report. */
struct delivery {
    int done;
    rd_kafka_resp_err_t err;
};

static bool conf_set(rd_kafka_conf_t *conf, const char *k, const char *v, struct err *e)
{
    char errstr[256];
    if (rd_kafka_conf_set(conf, k, v, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        return err_set(e, ERR_CONFIG, false, "could not set kafka option %s: %s", k, errstr);
    return true;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 3)
        log_error("kafka %s: %s", fac, buf);
    else if (level <= 4)
        log_warn("kafka %s: %s", fac, buf);
    else if (level <= 6)
        log_debug("kafka %s: %s", fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    /* transport errors while the broker is down are expected; say so once per event, clearly */
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        log_warn("kafka: all brokers are down, waiting for them to come back: %s", reason);
    else if (err == RD_KAFKA_RESP_ERR__TRANSPORT)
        log_debug("kafka: transport: %s", reason);
    else
        log_warn("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

struct kafka_consumer *kafka_consumer_new(const char *brokers, const char *group, const char *const *topics,
                                          const char *client_id, struct err *e)
{
    char errstr[512];
    struct kafka_consumer *c = NULL;
    rd_kafka_topic_partition_list_t *subs = NULL;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf_set(conf, "bootstrap.servers", brokers, e) || !conf_set(conf, "group.id", group, e) ||
        !conf_set(conf, "client.id", client_id ? client_id : "sfbridge", e) ||
        !conf_set(conf, "enable.auto.offset.store", "false", e) ||
        !conf_set(conf, "enable.auto.commit", "true", e) ||
        !conf_set(conf, "auto.commit.interval.ms", "1000", e) ||
        !conf_set(conf, "auto.offset.reset", "earliest", e) ||
        !conf_set(conf, "partition.assignment.strategy", "range", e) ||
        !conf_set(conf, "session.timeout.ms", "10000", e) ||
        !conf_set(conf, "heartbeat.interval.ms", "1000", e) ||
        !conf_set(conf, "max.poll.interval.ms", "900000", e) ||
        !conf_set(conf, "reconnect.backoff.max.ms", "5000", e) ||
        !conf_set(conf, "isolation.level", "read_committed", e))
        goto fail;
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);

    c = calloc(1, sizeof *c);
    if (!c) {
        err_set(e, ERR_NOMEM, true, "out of memory");
        goto fail;
    }
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!c->rk) {
        err_set(e, ERR_KAFKA, false, "could not create kafka consumer: %s", errstr);
        goto fail;
    }
    conf = NULL; /* owned by rk now */
    rd_kafka_poll_set_consumer(c->rk);

    int n = 0;
    while (topics[n])
        n++;
    subs = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(subs, topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t rerr = rd_kafka_subscribe(c->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (rerr) {
        err_set(e, ERR_KAFKA, false, "could not subscribe: %s", rd_kafka_err2str(rerr));
        goto fail;
    }
    return c;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (c && c->rk)
        rd_kafka_destroy(c->rk);
    free(c);
    return NULL;
}

int kafka_consumer_poll(struct kafka_consumer *c, int timeout_ms, struct kafka_msg *m, struct err *e)
{
    memset(m, 0, sizeof *m);
    rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, timeout_ms);
    if (!rkm)
        return 0;
    if (rkm->err) {
        rd_kafka_resp_err_t err = rkm->err;
        bool fatal = err == RD_KAFKA_RESP_ERR__FATAL;
        if (err == RD_KAFKA_RESP_ERR__PARTITION_EOF || err == RD_KAFKA_RESP_ERR__MAX_POLL_EXCEEDED ||
            err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
            if (err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_warn("kafka consumer: %s", rd_kafka_message_errstr(rkm));
            rd_kafka_message_destroy(rkm);
            return 0;
        }
        err_set(e, ERR_KAFKA, !fatal, "kafka consumer error: %s", rd_kafka_message_errstr(rkm));
        rd_kafka_message_destroy(rkm);
        return -1;
    }
    m->topic = rd_kafka_topic_name(rkm->rkt);
    m->partition = rkm->partition;
    m->offset = rkm->offset;
    m->key = rkm->key;
    m->key_len = rkm->key_len;
    m->payload = rkm->payload;
    m->len = rkm->len;
    rd_kafka_timestamp_type_t tt;
    m->timestamp_ms = rd_kafka_message_timestamp(rkm, &tt);
    m->rkm = rkm;
    return 1;
}

bool kafka_consumer_store(struct kafka_consumer *c, const struct kafka_msg *m, struct err *e)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, m->topic, m->partition)->offset = m->offset + 1;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        /* The partition was revoked meanwhile: its new owner will redeliver; the inbox makes that safe. */
        return err_set(e, ERR_KAFKA, true, "could not store offset %s[%d]@%lld: %s", m->topic,
                       (int)m->partition, (long long)m->offset, rd_kafka_err2str(err));
    }
    return true;
}

void kafka_msg_release(struct kafka_msg *m)
{
    if (m && m->rkm) {
        rd_kafka_message_destroy(m->rkm);
        m->rkm = NULL;
    }
}

static bool seek_pause(struct kafka_consumer *c, const char *topic, int32_t partition, int64_t offset, bool pause,
                       struct err *e)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
    rd_kafka_resp_err_t err = pause ? rd_kafka_pause_partitions(c->rk, l) : RD_KAFKA_RESP_ERR_NO_ERROR;
    if (!err) {
        /* timeout 0: asynchronous (2.0.2's blocking seek timeout is broken, librdkafka #4230) */
        rd_kafka_error_t *se = rd_kafka_seek_partitions(c->rk, l, 0);
        if (se) {
            err = rd_kafka_error_code(se);
            rd_kafka_error_destroy(se);
        }
    }
    if (!err && !pause)
        err = rd_kafka_resume_partitions(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err)
        return err_set(e, ERR_KAFKA, true, "could not %s %s[%d]: %s", pause ? "pause" : "resume", topic,
                       (int)partition, rd_kafka_err2str(err));
    return true;
}

bool kafka_consumer_pause(struct kafka_consumer *c, const struct kafka_msg *m, struct err *e)
{
    return seek_pause(c, m->topic, m->partition, m->offset, true, e);
}

bool kafka_consumer_resume(struct kafka_consumer *c, const char *topic, int32_t partition, int64_t offset,
                           struct err *e)
{
    return seek_pause(c, topic, partition, offset, false, e);
}

long long kafka_consumer_lag(struct kafka_consumer *c, const struct kafka_msg *m)
{
    int64_t lo = -1, hi = -1;
    if (rd_kafka_get_watermark_offsets(c->rk, m->topic, m->partition, &lo, &hi) || hi < 0)
        return -1;
    long long lag = (long long)hi - (long long)(m->offset + 1);
    return lag < 0 ? 0 : lag;
}

bool kafka_msg_header(const struct kafka_msg *m, const char *name, char *buf, size_t cap)
{
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t sz = 0;
    if (!m->rkm || rd_kafka_message_headers(m->rkm, &h) || !h)
        return false;
    if (rd_kafka_header_get_last(h, name, &v, &sz))
        return false;
    if (sz >= cap)
        sz = cap - 1;
    memcpy(buf, v, sz);
    buf[sz] = '\0';
    return true;
}

void kafka_consumer_close(struct kafka_consumer **c)
{
    if (!c || !*c)
        return;
    rd_kafka_consumer_close((*c)->rk);
    rd_kafka_destroy((*c)->rk);
    free(*c);
    *c = NULL;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    (void)opaque;
    struct delivery *d = rkm->_private;
    if (d) {
        d->err = rkm->err;
        d->done = 1;
    } else if (rkm->err) {
        log_error("could not deliver event to %s: %s", rd_kafka_topic_name(rkm->rkt),
                  rd_kafka_err2str(rkm->err));
    }
}

struct kafka_producer *kafka_producer_new(const char *brokers, const char *client_id, struct err *e)
{
    char errstr[512];
    struct kafka_producer *p = NULL;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf_set(conf, "bootstrap.servers", brokers, e) ||
        !conf_set(conf, "client.id", client_id ? client_id : "sfbridge", e) ||
        !conf_set(conf, "enable.idempotence", "true", e) || !conf_set(conf, "linger.ms", "2", e) ||
        !conf_set(conf, "message.timeout.ms", "30000", e) ||
        !conf_set(conf, "partitioner", "murmur2_random", e) ||
        !conf_set(conf, "message.max.bytes", "8000000", e) ||
        !conf_set(conf, "reconnect.backoff.max.ms", "5000", e))
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    p = calloc(1, sizeof *p);
    if (!p) {
        err_set(e, ERR_NOMEM, true, "out of memory");
        goto fail;
    }
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!p->rk) {
        err_set(e, ERR_KAFKA, false, "could not create kafka producer: %s", errstr);
        goto fail;
    }
    return p;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    free(p);
    return NULL;
}

static bool produce(struct kafka_producer *p, const char *topic, const char *key, const void *val, size_t len,
                    const struct kafka_header *hdrs, size_t nhdrs, struct delivery *d, struct err *e)
{
    rd_kafka_headers_t *h = NULL;
    if (nhdrs) {
        h = rd_kafka_headers_new(nhdrs);
        for (size_t i = 0; i < nhdrs; i++)
            rd_kafka_header_add(h, hdrs[i].name, -1, hdrs[i].value, -1);
    }
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
            RD_KAFKA_V_VALUE((void *)(uintptr_t)val, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(p->rk, 100);
            continue;
        }
        if (err) {
            if (h)
                rd_kafka_headers_destroy(h);
            return err_set(e, ERR_KAFKA, err != RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
                           "could not produce to %s: %s", topic, rd_kafka_err2str(err));
        }
        return true; /* headers owned by the message now */
    }
}

bool kafka_produce(struct kafka_producer *p, const char *topic, const char *key, const void *val, size_t len,
                   const struct kafka_header *hdrs, size_t nhdrs, int timeout_ms, struct err *e)
{
    struct delivery d = {0, RD_KAFKA_RESP_ERR_NO_ERROR};
    if (!produce(p, topic, key, val, len, hdrs, nhdrs, &d, e))
        return false;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!d.done) {
        rd_kafka_poll(p->rk, 50);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long el = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (!d.done && el > timeout_ms) {
            /* The delivery report refers to &d: wait for it (message.timeout.ms bounds this). */
            while (!d.done)
                rd_kafka_poll(p->rk, 100);
        }
    }
    if (d.err) {
        /* a message the broker will never take (too large) is a permanent failure, not a retry */
        bool permanent = d.err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
                         d.err == RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE ||
                         d.err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
        return err_set(e, ERR_KAFKA, !permanent, "could not deliver to %s: %s", topic, rd_kafka_err2str(d.err));
    }
    return true;
}

bool kafka_produce_async(struct kafka_producer *p, const char *topic, const char *key, const void *val,
                         size_t len, struct err *e)
{
    bool ok = produce(p, topic, key, val, len, NULL, 0, NULL, e);
    rd_kafka_poll(p->rk, 0);
    return ok;
}

bool kafka_producer_flush(struct kafka_producer *p, int timeout_ms, struct err *e)
{
    rd_kafka_resp_err_t err = rd_kafka_flush(p->rk, timeout_ms);
    if (err)
        return err_set(e, ERR_KAFKA, true, "could not flush events: %s", rd_kafka_err2str(err));
    return true;
}

void kafka_producer_free(struct kafka_producer **p)
{
    if (!p || !*p)
        return;
    rd_kafka_flush((*p)->rk, 10000);
    rd_kafka_destroy((*p)->rk);
    free(*p);
    *p = NULL;
}

bool kafka_create_topics(const char *brokers, const char *const *topics, int partitions, int timeout_ms,
                         struct err *e)
{
    char errstr[512];
    bool ok = false;
    rd_kafka_t *rk = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    int n = 0;
    while (topics[n])
        n++;
    rd_kafka_NewTopic_t **nts = calloc((size_t)n, sizeof *nts);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!nts || !conf_set(conf, "bootstrap.servers", brokers, e))
        goto out;
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        err_set(e, ERR_KAFKA, false, "could not create kafka admin client: %s", errstr);
        goto out;
    }
    conf = NULL;
    for (int i = 0; i < n; i++) {
        nts[i] = rd_kafka_NewTopic_new(topics[i], partitions, 1, errstr, sizeof errstr);
        /* inputs are kept forever so a replay can rebuild everything */
        rd_kafka_NewTopic_set_config(nts[i], "retention.ms", "-1");
    }
    q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(opt, timeout_ms, errstr, sizeof errstr);
    rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, errstr, sizeof errstr);
    rd_kafka_CreateTopics(rk, nts, (size_t)n, opt, q);
    rd_kafka_AdminOptions_destroy(opt);
    ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
    if (!ev) {
        err_set(e, ERR_KAFKA, true, "could not create topics: timed out");
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        err_set(e, ERR_KAFKA, true, "could not create topics: %s", rd_kafka_event_error_string(ev));
        goto out;
    }
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t cnt;
    const rd_kafka_topic_result_t **trs = rd_kafka_CreateTopics_result_topics(res, &cnt);
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t te = rd_kafka_topic_result_error(trs[i]);
        if (te && te != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            err_set(e, ERR_KAFKA, false, "could not create topic %s: %s", rd_kafka_topic_result_name(trs[i]),
                    rd_kafka_topic_result_error_string(trs[i]));
            goto out;
        }
    }
    /* wait until every partition has a leader */
    for (int tries = 0; tries < timeout_ms / 200 + 1; tries++) {
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(rk, 1, NULL, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            int ready = 0;
            for (int t = 0; t < md->topic_cnt; t++)
                for (int i = 0; i < n; i++)
                    if (!strcmp(md->topics[t].topic, topics[i]) && md->topics[t].partition_cnt > 0) {
                        bool all = true;
                        for (int pi = 0; pi < md->topics[t].partition_cnt; pi++)
                            if (md->topics[t].partitions[pi].leader < 0)
                                all = false;
                        if (all)
                            ready++;
                    }
            rd_kafka_metadata_destroy(md);
            if (ready == n) {
                ok = true;
                goto out;
            }
        }
        struct timespec ts = {0, 200000000L};
        nanosleep(&ts, NULL);
    }
    err_set(e, ERR_KAFKA, true, "could not create topics: partitions have no leader");
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (q)
        rd_kafka_queue_destroy(q);
    if (nts) {
        for (int i = 0; i < n; i++)
            if (nts[i])
                rd_kafka_NewTopic_destroy(nts[i]);
        free(nts);
    }
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (rk)
        rd_kafka_destroy(rk);
    return ok;
}

int kafka_group_rewind(const char *brokers, const char *group, const char *topic, int64_t from_ms, struct err *e)
{
    char errstr[512];
    int moved = -1;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *l = NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf_set(conf, "bootstrap.servers", brokers, e) || !conf_set(conf, "group.id", group, e) ||
        !conf_set(conf, "enable.auto.commit", "false", e))
        goto out;
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        err_set(e, ERR_KAFKA, false, "could not create kafka client: %s", errstr);
        goto out;
    }
    conf = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (err || md->topic_cnt != 1 || md->topics[0].err) {
        err_set(e, ERR_KAFKA, true, "could not read metadata of topic %s: %s", topic,
                rd_kafka_err2str(err ? err : (md && md->topic_cnt ? md->topics[0].err : err)));
        goto out;
    }
    int np = md->topics[0].partition_cnt;
    l = rd_kafka_topic_partition_list_new(np);
    for (int i = 0; i < np; i++) {
        int64_t lo = 0, hi = 0;
        err = rd_kafka_query_watermark_offsets(rk, topic, md->topics[0].partitions[i].id, &lo, &hi, 10000);
        if (err) {
            err_set(e, ERR_KAFKA, true, "could not read offsets of %s[%d]: %s", topic, i, rd_kafka_err2str(err));
            goto out;
        }
        rd_kafka_topic_partition_list_add(l, topic, md->topics[0].partitions[i].id)->offset =
            from_ms < 0 ? lo : from_ms;
    }
    if (from_ms >= 0) {
        err = rd_kafka_offsets_for_times(rk, l, 10000);
        if (err) {
            err_set(e, ERR_KAFKA, true, "could not look up offsets by time: %s", rd_kafka_err2str(err));
            goto out;
        }
        /* partitions with nothing after from_ms: start at their end */
        for (int i = 0; i < l->cnt; i++)
            if (l->elems[i].offset < 0) {
                int64_t lo = 0, hi = 0;
                rd_kafka_query_watermark_offsets(rk, topic, l->elems[i].partition, &lo, &hi, 10000);
                l->elems[i].offset = hi;
            }
    }
    err = rd_kafka_commit(rk, l, 0);
    if (err) {
        err_set(e, ERR_KAFKA, err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS,
                "could not move group %s (stop its consumers first): %s", group, rd_kafka_err2str(err));
        goto out;
    }
    moved = l->cnt;
out:
    if (md)
        rd_kafka_metadata_destroy(md);
    if (l)
        rd_kafka_topic_partition_list_destroy(l);
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (rk)
        rd_kafka_destroy(rk);
    return moved;
}
