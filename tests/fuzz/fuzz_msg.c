/*
 * fuzz_msg: libFuzzer target for the message parser (msg_parse: size check,
 * UTF-8 and nesting checks, JSON, schema validation) of every topic.
 *
 * Input: byte 0 selects the topic (modulo the number of topics), the rest is
 * the message. Invariants checked (abort on violation):
 *   - success <=> *out is set, failure <=> *out is NULL and an error code is set;
 *   - failures are never retriable and are INVALID_JSON or INVALID_MESSAGE;
 *   - the error message is NUL-terminated and non-empty;
 *   - an accepted message re-serialised by json-c is accepted again.
 * Also compiled into tests/test_fuzz_regress.c (FUZZ_ENTRY renamed) so crash
 * inputs in tests/fuzz/regress/msg/ are replayed by `make test`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "msg.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static const char *const fuzz_msg_topics[] = {"sync.requested", "sync.completed", "sync.progress",
                                              "record.write",   "record.written", "token.refresh",
                                              "token.refreshed", "connection.status"};

static void fuzz_msg_check_err(const struct err *e)
{
    if (e->code != ERR_INVALID_JSON && e->code != ERR_INVALID_MESSAGE)
        abort();
    if (e->retriable)
        abort();
    if (memchr(e->msg, '\0', sizeof e->msg) == NULL || e->msg[0] == '\0')
        abort();
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    static int ready = 0;
    if (!ready) {
        struct err ie = ERR_INIT;
        if (!msg_init(&ie))
            abort();
        ready = 1;
    }
    if (size < 1)
        return 0;
    const char *topic = fuzz_msg_topics[data[0] % (sizeof fuzz_msg_topics / sizeof fuzz_msg_topics[0])];
    /* an exact-size heap copy, so ASan sees any read past the end */
    size_t len = size - 1;
    char *buf = malloc(len ? len : 1);
    if (!buf)
        return 0;
    if (len)
        memcpy(buf, data + 1, len);

    struct err e = ERR_INIT;
    struct json_object *doc = NULL;
    bool ok = msg_parse(topic, buf, len, &doc, &e);
    if (ok) {
        if (!doc || err_is_set(&e))
            abort();
        /* round trip: what we accepted, serialised, is accepted again */
        const char *again = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN);
        struct err e2 = ERR_INIT;
        struct json_object *doc2 = NULL;
        if (!msg_parse(topic, again, strlen(again), &doc2, &e2))
            abort();
        json_object_put(doc2);
        json_object_put(doc);
    } else {
        if (doc)
            abort();
        fuzz_msg_check_err(&e);
    }
    free(buf);
    return 0;
}
