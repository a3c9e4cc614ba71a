/*
 * test_msg: the C message validator (common/msg.c) against the embedded
 * schemas and the examples in schemas/examples/ (read from disk; run with the
 * repo root as cwd), plus the tricky rules: code-point lengths, RFC 3339
 * edge cases, if/then/else, numbers, paths, start-up errors, threads.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "msg.h"

#define VALID_DIR "schemas/examples/valid"
#define INVALID_DIR "schemas/examples/invalid"

static void setup(void)
{
    struct err e = ERR_INIT;
    cr_assert(msg_init(&e), "msg_init: %s", e.msg);
}

static void teardown(void) { msg_cleanup(); }

TestSuite(msg, .init = setup, .fini = teardown);
TestSuite(msg_init, .fini = teardown);

/* ------------------------------------------------------------- helpers */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s: %s", path, strerror(errno));
    cr_assert(fseek(f, 0, SEEK_END) == 0);
    long n = ftell(f);
    cr_assert(n >= 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    cr_assert(buf);
    cr_assert(fread(buf, 1, (size_t)n, f) == (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* topic of an example file: the longest loaded topic the name starts with + "." */
static bool topic_of(const char *file, char *topic, size_t cap)
{
    size_t best = 0;
    for (const char *dot = strchr(file, '.'); dot; dot = strchr(dot + 1, '.')) {
        size_t n = (size_t)(dot - file);
        if (n >= cap)
            break;
        memcpy(topic, file, n);
        topic[n] = '\0';
        if (msg_has_schema(topic))
            best = n;
    }
    if (!best)
        return false;
    memcpy(topic, file, best);
    topic[best] = '\0';
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* names of *.json files in dir, sorted; returns count */
static size_t list_json(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    cr_assert(d, "cannot open %s (run from the repo root): %s", dir, strerror(errno));
    size_t n = 0, cap = 16;
    char **names = malloc(cap * sizeof *names);
    cr_assert(names);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!ends_with(de->d_name, ".json"))
            continue;
        if (n == cap) {
            cap *= 2;
            names = realloc(names, cap * sizeof *names);
            cr_assert(names);
        }
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    *out = names;
    return n;
}

static void free_list(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* validate a JSON text; returns true when valid; e gets the error */
static bool check(const char *topic, const char *text, struct err *e)
{
    struct json_object *doc = NULL;
    err_clear(e);
    bool ok = msg_parse(topic, text, strlen(text), &doc, e);
    if (ok)
        cr_assert(doc != NULL);
    else
        cr_assert(doc == NULL);
    json_object_put(doc);
    return ok;
}

#define ASSERT_VALID(topic, text)                                                                 \
    do {                                                                                          \
        struct err e_ = ERR_INIT;                                                                 \
        cr_expect(check(topic, text, &e_), "%s should be valid, got: %s", #text, e_.msg);        \
    } while (0)

#define ASSERT_INVALID(topic, text, needle)                                                       \
    do {                                                                                          \
        struct err e_ = ERR_INIT;                                                                 \
        cr_expect(!check(topic, text, &e_), "%s should be invalid", #text);                       \
        cr_expect(strstr(e_.msg, needle) != NULL, "error \"%s\" should contain \"%s\"", e_.msg,   \
                  needle);                                                                        \
    } while (0)

/* A valid envelope for sync.requested with `created_at` replaced */
static void sync_requested_at(char *buf, size_t cap, const char *created_at)
{
    snprintf(buf, cap,
             "{\"message_id\":\"8d3f6b2a-1c4e-4a9b-b7d5-2e8f0a6c1b93\",\"org_id\":\"org1\","
             "\"connection_id\":\"6f1c2a9e-3b7d-4c58-9e21-7a4d0b3c8f15\",\"created_at\":\"%s\","
             "\"mode\":\"full\",\"requested_by\":\"t\"}",
             created_at);
}

#define ENVELOPE                                                                                  \
    "\"message_id\":\"8d3f6b2a-1c4e-4a9b-b7d5-2e8f0a6c1b93\",\"org_id\":\"org1\","                \
    "\"created_at\":\"2026-12-03T19:30:00Z\""
#define CONN "\"connection_id\":\"6f1c2a9e-3b7d-4c58-9e21-7a4d0b3c8f15\""

#define WRITE_FMT \
    "{" ENVELOPE "," CONN ",\"actor\":\"u1\",\"source\":\"chat\",\"operations\":" \
    "[{\"ref\":\"r1\",\"object\":\"Company\",\"action\":\"create\",\"fields\":%s}]}"

/* record.write with one create operation whose fields are `fields` */
static char *write_with_fields(const char *fields)
{
    size_t cap = strlen(WRITE_FMT) + strlen(fields) + 1;
    char *buf = malloc(cap);
    cr_assert(buf);
    snprintf(buf, cap, WRITE_FMT, fields);
    return buf;
}

/* a JSON string literal of `n` copies of the UTF-8 sequence `unit` */
static char *repeat_str(const char *unit, size_t n)
{
    size_t ul = strlen(unit);
    char *buf = malloc(ul * n + 3);
    cr_assert(buf);
    buf[0] = '"';
    for (size_t i = 0; i < n; i++)
        memcpy(buf + 1 + i * ul, unit, ul);
    buf[1 + ul * n] = '"';
    buf[2 + ul * n] = '\0';
    return buf;
}

/* ------------------------------------------------------------ examples */

Test(msg, valid_examples_are_accepted)
{
    char **names;
    size_t n = list_json(VALID_DIR, &names);
    cr_assert(n > 0, "no examples in " VALID_DIR);
    for (size_t i = 0; i < n; i++) {
        char path[512], topic[64];
        size_t len;
        snprintf(path, sizeof path, "%s/%s", VALID_DIR, names[i]);
        cr_expect(topic_of(names[i], topic, sizeof topic), "%s: no schema for its topic", names[i]);
        char *buf = slurp(path, &len);
        struct json_object *doc = NULL;
        struct err e = ERR_INIT;
        cr_expect(msg_parse(topic, buf, len, &doc, &e), "%s rejected: %s", names[i], e.msg);
        json_object_put(doc);
        free(buf);
    }
    free_list(names, n);
}

Test(msg, invalid_examples_are_rejected_naming_the_field)
{
    char **names;
    size_t n = list_json(INVALID_DIR, &names);
    cr_assert(n > 0, "no examples in " INVALID_DIR);
    for (size_t i = 0; i < n; i++) {
        char path[512], topic[64], want[600];
        size_t len, elen;
        snprintf(path, sizeof path, "%s/%s", INVALID_DIR, names[i]);
        cr_expect(topic_of(names[i], topic, sizeof topic), "%s: no schema for its topic", names[i]);
        char *buf = slurp(path, &len);
        /* the sidecar: same name, .expect instead of .json */
        snprintf(path + strlen(path) - 5, sizeof path - strlen(path) + 5, ".expect");
        char *expect = slurp(path, &elen);
        while (elen && (expect[elen - 1] == '\n' || expect[elen - 1] == '\r'))
            expect[--elen] = '\0';
        cr_expect(elen > 0, "%s is empty", path);
        snprintf(want, sizeof want, "field \"%s\"", expect);

        struct json_object *doc = NULL;
        struct err e = ERR_INIT;
        bool ok = msg_parse(topic, buf, len, &doc, &e);
        cr_expect(!ok, "%s accepted", names[i]);
        cr_expect(doc == NULL);
        cr_expect(e.code == ERR_INVALID_MESSAGE, "%s: code %s", names[i], err_code_name(e.code));
        cr_expect(!e.retriable, "%s: a schema violation is never retriable", names[i]);
        cr_expect(strncmp(e.msg, want, strlen(want)) == 0, "%s: error \"%s\" should start with %s",
                  names[i], e.msg, want);
        json_object_put(doc);
        free(expect);
        free(buf);
    }
    free_list(names, n);
}

Test(msg, every_topic_has_a_schema)
{
    const char *topics[] = {"sync.requested", "sync.completed",  "sync.progress",
                            "record.write",   "record.written",  "token.refresh",
                            "token.refreshed", "connection.status"};
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++)
        cr_expect(msg_has_schema(topics[i]), "no schema for %s", topics[i]);
    cr_expect(!msg_has_schema("sync"));
    cr_expect(!msg_has_schema("sync.requested.dlq"));
    cr_expect(!msg_has_schema(NULL));
}

/* ------------------------------------------------------------- messages */

Test(msg, error_message_shape)
{
    struct err e = ERR_INIT;
    char *doc = write_with_fields("{}");
    char *p = strstr(doc, "\"create\"");
    memcpy(p, "\"merge\" ", 8);
    cr_assert(!check("record.write", doc, &e));
    cr_expect_str_eq(e.msg,
                     "field \"operations[0].action\": must be one of create, update, upsert, delete");
    cr_expect_eq(e.code, ERR_INVALID_MESSAGE);
    free(doc);

    cr_assert(!check("record.write", "[]", &e));
    cr_expect_str_eq(e.msg, "field \"(root)\": must be an object");
    cr_assert(!check("record.write", "null ", &e));
    cr_expect_str_eq(e.msg, "field \"(root)\": must be an object");
    cr_assert(!check("sync.requested", "{}", &e));
    cr_expect_str_eq(e.msg, "field \"message_id\": is required");
}

Test(msg, values_are_not_copied_into_errors)
{
    struct err e = ERR_INIT;
    cr_assert(!check("token.refresh",
                     "{" ENVELOPE ",\"grant\":\"authorization_code\",\"state\":\"s1\","
                     "\"code\":\"aPrxSECRETcode\",\"code_verifier\":\"short-SECRET\"}",
                     &e));
    cr_expect(strstr(e.msg, "code_verifier"), "%s", e.msg);
    cr_expect(!strstr(e.msg, "SECRET"), "%s", e.msg);
}

Test(msg, not_json_and_too_large)
{
    struct err e = ERR_INIT;
    struct json_object *doc = NULL;
    cr_expect(!msg_parse("sync.requested", "{\"message_id\":", 14, &doc, &e));
    cr_expect_eq(e.code, ERR_INVALID_JSON, "%s", e.msg);
    cr_expect(doc == NULL);

    err_clear(&e);
    cr_expect(!msg_parse("sync.requested", "{\"a\":\"\xc3\x28\"}", 9, &doc, &e));
    cr_expect_eq(e.code, ERR_INVALID_JSON, "%s", e.msg);

    size_t big = MSG_MAX_BYTES + 1;
    char *buf = malloc(big);
    cr_assert(buf);
    memset(buf, ' ', big);
    buf[0] = '{';
    buf[big - 1] = '}';
    err_clear(&e);
    cr_expect(!msg_parse("sync.requested", buf, big, &doc, &e));
    cr_expect_eq(e.code, ERR_INVALID_MESSAGE);
    cr_expect(strstr(e.msg, "message too large"), "%s", e.msg);
    cr_expect(!e.retriable);
    /* exactly the limit is parsed (and then fails the schema, not the size check) */
    err_clear(&e);
    cr_expect(!msg_parse("sync.requested", buf, MSG_MAX_BYTES, &doc, &e));
    cr_expect(!strstr(e.msg, "too large"), "%s", e.msg);
    free(buf);
}

Test(msg, unknown_topic_is_an_internal_error)
{
    struct err e = ERR_INIT;
    struct json_object *o = json_object_new_object();
    cr_expect(!msg_validate("sync.requestd", o, &e));
    cr_expect_eq(e.code, ERR_INTERNAL);
    cr_expect(strstr(e.msg, "sync.requestd"), "%s", e.msg);
    json_object_put(o);
}

/* ------------------------------------------------------ lengths, unicode */

Test(msg, max_length_counts_code_points)
{
    /* actor: maxLength 255. "é" is 2 bytes, "😀" 4 bytes, "a" 1 byte */
    const char *units[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    for (size_t u = 0; u < 4; u++) {
        for (size_t n = 254; n <= 256; n++) {
            char *s = repeat_str(units[u], n);
            size_t cap = strlen(s) + 512;
            char *doc = malloc(cap);
            cr_assert(doc);
            snprintf(doc, cap,
                     "{" ENVELOPE "," CONN ",\"actor\":%s,\"source\":\"chat\",\"operations\":"
                     "[{\"ref\":\"r\",\"object\":\"Deal\",\"action\":\"create\",\"fields\":{}}]}",
                     s);
            struct err e = ERR_INIT;
            bool ok = check("record.write", doc, &e);
            if (n <= 255)
                cr_expect(ok, "%zu x unit %zu should fit: %s", n, u, e.msg);
            else
                cr_expect(!ok && strstr(e.msg, "field \"actor\": must be at most 255 characters"),
                          "%zu x unit %zu: %s", n, u, e.msg);
            free(doc);
            free(s);
        }
    }
}

Test(msg, escaped_characters_count_once)
{
    /* \u00e9 and a surrogate pair are one code point each after parsing */
    char doc[4096], actor[1800] = "\"";
    size_t used = 1;
    for (int i = 0; i < 254; i++)
        used += (size_t)snprintf(actor + used, sizeof actor - used, "%s", i % 2 ? "\\u00e9" : "x");
    snprintf(actor + used, sizeof actor - used, "\\ud83d\\ude00\"");
    snprintf(doc, sizeof doc,
             "{" ENVELOPE "," CONN ",\"actor\":%s,\"source\":\"chat\",\"operations\":"
             "[{\"ref\":\"r\",\"object\":\"Deal\",\"action\":\"create\",\"fields\":{}}]}",
             actor);
    ASSERT_VALID("record.write", doc);
}

Test(msg, field_value_limit_is_32768_code_points)
{
    char *v = repeat_str("\xc3\xa9", 32768), *fields = malloc(strlen(v) + 16);
    cr_assert(fields);
    snprintf(fields, strlen(v) + 16, "{\"notes\":%s}", v);
    char *doc = write_with_fields(fields);
    ASSERT_VALID("record.write", doc);
    free(doc);
    free(fields);
    free(v);

    v = repeat_str("a", 32769);
    fields = malloc(strlen(v) + 16);
    cr_assert(fields);
    snprintf(fields, strlen(v) + 16, "{\"notes\":%s}", v);
    doc = write_with_fields(fields);
    ASSERT_INVALID("record.write", doc, "field \"operations[0].fields.notes\": must be at most 32768");
    free(doc);
    free(fields);
    free(v);
}

Test(msg, min_length_and_empty_strings)
{
    char doc[1024];
    snprintf(doc, sizeof doc,
             "{\"message_id\":\"8d3f6b2a-1c4e-4a9b-b7d5-2e8f0a6c1b93\",\"org_id\":\"\","
             "\"connection_id\":\"6f1c2a9e-3b7d-4c58-9e21-7a4d0b3c8f15\","
             "\"created_at\":\"2026-12-03T19:30:00Z\",\"mode\":\"full\",\"requested_by\":\"t\"}");
    ASSERT_INVALID("sync.requested", doc, "field \"org_id\": must be at least 1 character long");
}

/* -------------------------------------------------------------- formats */

Test(msg, date_time_edge_cases)
{
    const char *good[] = {
        "2026-12-03T19:30:00Z",         "2026-12-03T19:30:00.1Z",
        "2026-12-03T19:30:00.123456789+14:00", "2024-02-29T00:00:00Z",
        "2000-02-29T12:00:00-00:00",    "2026-06-30t12:00:00z",
        "2016-12-31T23:59:60Z",         "2016-12-31T18:59:60-05:00",
        "2017-01-01T00:29:60+00:30",    "0001-01-01T00:00:00Z",
        "2026-01-31T23:59:59+23:59",
    };
    const char *bad[] = {
        "2023-02-29T00:00:00Z",  /* not a leap year */
        "1900-02-29T00:00:00Z",  /* century, not a leap year */
        "2026-04-31T00:00:00Z",  /* April has 30 days */
        "2026-13-01T00:00:00Z",  "2026-00-10T00:00:00Z", "2026-12-00T00:00:00Z",
        "2026-12-03T24:00:00Z",  "2026-12-03T12:60:00Z",
        "2026-12-03T12:00:60Z",  /* leap second not at 23:59 UTC */
        "2016-12-31T23:59:60+01:00", /* 22:59:60 UTC */
        "2026-12-03T12:00:61Z",  "2026-12-03 12:00:00Z",  "2026-12-03T12:00:00",
        "2026-12-03T12:00:00+0100", "2026-12-03T12:00:00+01", "2026-12-03T12:00:00.Z",
        "2026-12-03T12:00:00+24:00", "2026-12-03T12:00:00+01:60", "2026-12-03",
        "2026-12-03T12:00Z",     "2026-12-03T12:00:00ZZ", " 2026-12-03T12:00:00Z",
        "2026-12-03T12:00:00Z ", "26-12-03T12:00:00Z",    "2026-1-03T12:00:00Z",
        "+2026-12-03T12:00:00Z", "2026-12-03T12:00:00,5Z", "",
        "\xef\xbc\x92\xef\xbc\x90\xef\xbc\x92\xef\xbc\x96-12-03T12:00:00Z", /* fullwidth digits */
    };
    char doc[1024];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct err e = ERR_INIT;
        sync_requested_at(doc, sizeof doc, good[i]);
        cr_expect(check("sync.requested", doc, &e), "%s should be valid: %s", good[i], e.msg);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct err e = ERR_INIT;
        sync_requested_at(doc, sizeof doc, bad[i]);
        cr_expect(!check("sync.requested", doc, &e), "\"%s\" should be invalid", bad[i]);
        cr_expect(strstr(e.msg, "field \"created_at\": must be an RFC 3339 date-time"),
                  "\"%s\": %s", bad[i], e.msg);
    }
}

Test(msg, uuid_edge_cases)
{
    const char *good[] = {"8d3f6b2a-1c4e-4a9b-b7d5-2e8f0a6c1b93",
                          "8D3F6B2A-1C4E-4A9B-B7D5-2E8F0A6C1B93",
                          "00000000-0000-0000-0000-000000000000"};
    const char *bad[] = {"8d3f6b2a1c4e4a9bb7d52e8f0a6c1b93",
                         "{8d3f6b2a-1c4e-4a9b-b7d5-2e8f0a6c1b93}",
                         "urn:uuid:8d3f6b2a-1c4e-4a9b-b7d5-2e8f0a6c1b93",
                         "8d3f6b2a-1c4e-4a9b-b7d5-2e8f0a6c1b9",
                         "8d3f6b2a-1c4e-4a9b-b7d5-2e8f0a6c1b933",
                         "8d3f6b2a-1c4e-4a9b-b7d5_2e8f0a6c1b93",
                         "8d3f6b2g-1c4e-4a9b-b7d5-2e8f0a6c1b93",
                         "8d3f6b2a-1c4e-4a9b-b7d5-2e8f0a6c1b93\\n",
                         "8d3f6b2a-1c4e-4a9b-b7d5-2e8f0a6c1b9\\u0067"};
    char doc[1024];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(doc, sizeof doc, "{\"message_id\":\"%s\",\"org_id\":\"o\"," CONN
                 ",\"created_at\":\"2026-12-03T19:30:00Z\",\"grant\":\"refresh_token\"}", good[i]);
        ASSERT_VALID("token.refresh", doc);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(doc, sizeof doc, "{\"message_id\":\"%s\",\"org_id\":\"o\"," CONN
                 ",\"created_at\":\"2026-12-03T19:30:00Z\",\"grant\":\"refresh_token\"}", bad[i]);
        ASSERT_INVALID("token.refresh", doc, "field \"message_id\": must be a UUID");
    }
}

/* --------------------------------------------------------- conditionals */

Test(msg, if_then_else_on_grant)
{
    /* a code exchange needs code and state, not a connection_id */
    ASSERT_VALID("token.refresh", "{" ENVELOPE ",\"grant\":\"authorization_code\","
                                  "\"code\":\"aPrx1\",\"state\":\"st-1\"}");
    ASSERT_INVALID("token.refresh", "{" ENVELOPE ",\"grant\":\"authorization_code\",\"state\":\"s\"}",
                   "field \"code\": is required (when grant is authorization_code)");
    ASSERT_INVALID("token.refresh", "{" ENVELOPE ",\"grant\":\"authorization_code\",\"code\":\"c\"}",
                   "field \"state\": is required (when grant is authorization_code)");
    /* a refresh needs a connection_id and must not carry code-exchange fields */
    ASSERT_VALID("token.refresh", "{" ENVELOPE "," CONN ",\"grant\":\"refresh_token\"}");
    ASSERT_INVALID("token.refresh", "{" ENVELOPE ",\"grant\":\"refresh_token\"}",
                   "field \"connection_id\": is required (when grant is not authorization_code)");
    ASSERT_INVALID("token.refresh", "{" ENVELOPE "," CONN ",\"grant\":\"refresh_token\",\"state\":\"s\"}",
                   "field \"state\": is not allowed (when grant is not authorization_code)");
    /* a missing grant is reported as such, not as a branch error */
    ASSERT_INVALID("token.refresh", "{" ENVELOPE "," CONN "}", "field \"grant\": is required");
}

#define UPDATE_FMT \
    "{" ENVELOPE "," CONN ",\"actor\":\"u\",\"source\":\"workflow\",\"operations\":[" \
    "{\"ref\":\"a\",\"object\":\"Deal\",\"action\":\"create\",\"fields\":{}}," \
    "{\"ref\":\"b\",\"object\":\"Deal\",\"action\":\"update\",\"fields\":{}%s}]}"

Test(msg, if_then_inside_array_items)
{
    char doc[1024];
    snprintf(doc, sizeof doc, UPDATE_FMT, ",\"id\":\"006Hs00001AbCdEIAZ\"");
    ASSERT_VALID("record.write", doc);
    snprintf(doc, sizeof doc, UPDATE_FMT, "");
    ASSERT_INVALID("record.write", doc, "field \"operations[1].id\": is required (when action is update)");
}

#define WRITTEN_FMT \
    "{" ENVELOPE "," CONN ",\"request_id\":\"4cf9b5d1-6a8c-4e2f-b017-4d5f9abe8c6c\"," \
    "\"status\":\"failed\",\"api_calls\":0,\"results\":[{\"ref\":\"x\",\"object\":\"Contact\"," \
    "\"salesforce_id\":null,\"platform_id\":null,\"outcome\":\"%s\"%s}]}"

Test(msg, if_then_with_enum_condition)
{
    char doc[2048];
    snprintf(doc, sizeof doc, WRITTEN_FMT, "refused", "");
    ASSERT_INVALID("record.written", doc,
                   "field \"results[0].error\": is required (when outcome is one of failed, refused)");
    snprintf(doc, sizeof doc, WRITTEN_FMT, "refused",
             ",\"error\":{\"code\":\"DELETE_NOT_SUPPORTED\",\"message\":\"cannot delete\"}");
    ASSERT_VALID("record.written", doc);
    snprintf(doc, sizeof doc, WRITTEN_FMT, "unchanged", "");
    ASSERT_VALID("record.written", doc);
}

/* -------------------------------------------------------------- numbers */

#define COMPLETED_FMT \
    "{" ENVELOPE "," CONN ",\"request_id\":\"4cf9b5d1-6a8c-4e2f-b017-4d5f9abe8c6c\"," \
    "\"status\":\"succeeded\",\"objects\":{},\"duration_ms\":1,\"api_calls\":%s}"

Test(msg, numbers)
{
    char doc[1024];
    snprintf(doc, sizeof doc, COMPLETED_FMT, "1.0"); /* an integer in JSON Schema */
    ASSERT_VALID("sync.completed", doc);
    snprintf(doc, sizeof doc, COMPLETED_FMT, "9007199254740991");
    ASSERT_VALID("sync.completed", doc);
    snprintf(doc, sizeof doc, COMPLETED_FMT, "1e2");
    ASSERT_VALID("sync.completed", doc);
    snprintf(doc, sizeof doc, COMPLETED_FMT, "1.5");
    ASSERT_INVALID("sync.completed", doc, "field \"api_calls\": must be an integer");
    snprintf(doc, sizeof doc, COMPLETED_FMT, "9007199254740992");
    ASSERT_INVALID("sync.completed", doc, "field \"api_calls\": must be at most 9007199254740991");
    snprintf(doc, sizeof doc, COMPLETED_FMT, "99999999999999999999999");
    ASSERT_INVALID("sync.completed", doc, "field \"api_calls\": must be at most");
    snprintf(doc, sizeof doc, COMPLETED_FMT, "-1");
    ASSERT_INVALID("sync.completed", doc, "field \"api_calls\": must be at least 0");
    snprintf(doc, sizeof doc, COMPLETED_FMT, "-0.0");
    ASSERT_VALID("sync.completed", doc);
    snprintf(doc, sizeof doc, COMPLETED_FMT, "1e400");
    ASSERT_INVALID("sync.completed", doc, "field \"api_calls\": must be a finite number");
    snprintf(doc, sizeof doc, COMPLETED_FMT, "true");
    ASSERT_INVALID("sync.completed", doc, "field \"api_calls\": must be an integer");
    snprintf(doc, sizeof doc, COMPLETED_FMT, "\"1\"");
    ASSERT_INVALID("sync.completed", doc, "field \"api_calls\": must be an integer");

    char *w = write_with_fields("{\"amount\":-1e400}");
    ASSERT_INVALID("record.write", w, "field \"operations[0].fields.amount\": must be a finite number");
    free(w);
    w = write_with_fields("{\"amount\":1.5e300,\"n\":null,\"b\":false,\"s\":\"\"}");
    ASSERT_VALID("record.write", w);
    free(w);
}

/* ------------------------------------------------------ names and paths */

Test(msg, field_names_and_odd_paths)
{
    char *w = write_with_fields("{\"a\\nb\":1}");
    ASSERT_INVALID("record.write", w,
                   "field \"operations[0].fields['a\\x0ab']\": invalid property name: must match pattern");
    free(w);
    w = write_with_fields("{\"Name\":\"x\",\"Name__c\":1,\"x\":2}");
    ASSERT_VALID("record.write", w);
    free(w);
    /* 80 characters is the longest name */
    char fields[256], name[96];
    memset(name, 'f', 81);
    name[81] = '\0';
    snprintf(fields, sizeof fields, "{\"%.80s\":1}", name);
    w = write_with_fields(fields);
    ASSERT_VALID("record.write", w);
    free(w);
    snprintf(fields, sizeof fields, "{\"%s\":1}", name);
    w = write_with_fields(fields);
    ASSERT_INVALID("record.write", w, "invalid property name");
    free(w);
    /* non-ASCII letters are not identifiers, whatever the locale */
    w = write_with_fields("{\"Stra\xc3\x9f" "e\":1}");
    ASSERT_INVALID("record.write", w, "['Stra\\xc3\\x9fe']\": invalid property name");
    free(w);
}

Test(msg, nul_characters)
{
    /* msg_parse refuses any \u0000: json-c would cut the key "name\u0000x" to "name" */
    char *w = write_with_fields("{\"name\\u0000; DROP TABLE companies\":\"x\"}");
    ASSERT_INVALID("record.write", w, "message contains a NUL character");
    free(w);
    w = write_with_fields("{\"name\":\"a\\u0000b\"}");
    ASSERT_INVALID("record.write", w, "message contains a NUL character");
    free(w);
    /* an escaped backslash followed by the text u0000 is not a NUL */
    w = write_with_fields("{\"name\":\"C:\\\\u0000\",\"path\":\"\\\\\\\\u0000\"}");
    ASSERT_VALID("record.write", w);
    free(w);
    w = write_with_fields("{\"name\":\"\\\\\\u0000\"}"); /* \\ then \u0000 */
    ASSERT_INVALID("record.write", w, "message contains a NUL character");
    free(w);

    /* msg_validate on a document built in C: a NUL inside a pattern-checked
     * string never matches the pattern */
    struct err e = ERR_INIT;
    char *text = write_with_fields("{}");
    struct json_object *doc = json_parse(text, strlen(text), &e);
    cr_assert(doc, "%s", e.msg);
    struct json_object *op = json_object_array_get_idx(json_get(doc, "operations"), 0);
    json_object_object_add(op, "ref", json_object_new_string_len("a\0b", 3));
    cr_expect(!msg_validate("record.write", doc, &e));
    cr_expect(strstr(e.msg, "field \"operations[0].ref\": must match pattern"), "%s", e.msg);
    json_object_put(doc);
    free(text);
}

Test(msg, nesting_and_collections)
{
    char *w = write_with_fields("{\"x\":{\"y\":1}}");
    ASSERT_INVALID("record.write", w,
                   "field \"operations[0].fields.x\": must be a string, number, boolean or null");
    free(w);
    /* deeper than json_parse allows: not JSON for us */
    char deep[400];
    memcpy(deep, "{\"x\":", 5);
    memset(deep + 5, '[', 70);
    memset(deep + 75, ']', 70);
    memcpy(deep + 145, "}", 2);
    w = write_with_fields(deep);
    struct err e = ERR_INIT;
    cr_expect(!check("record.write", w, &e));
    cr_expect_eq(e.code, ERR_INVALID_JSON, "%s", e.msg);
    free(w);

    /* 500 fields fit, 501 do not */
    char *fields = malloc(16 * 501 + 8);
    cr_assert(fields);
    for (int n = 500; n <= 501; n++) {
        size_t used = 0;
        fields[used++] = '{';
        for (int i = 0; i < n; i++)
            used += (size_t)snprintf(fields + used, 16, "%s\"f%d\":%d", i ? "," : "", i, i);
        fields[used++] = '}';
        fields[used] = '\0';
        w = write_with_fields(fields);
        if (n == 500)
            ASSERT_VALID("record.write", w);
        else
            ASSERT_INVALID("record.write", w,
                           "field \"operations[0].fields\": must have at most 500 properties");
        free(w);
    }
    free(fields);
}

#define OBJECTS_FMT \
    "{\"message_id\":\"8d3f6b2a-1c4e-4a9b-b7d5-2e8f0a6c1b93\",\"org_id\":\"o\"," CONN \
    ",\"created_at\":\"2026-12-03T19:30:00Z\",\"mode\":\"full\",\"requested_by\":\"t\"," \
    "\"objects\":[%s]}"

Test(msg, unique_items)
{
    char doc[1024];
    snprintf(doc, sizeof doc, OBJECTS_FMT, "\"Account\",\"Contact\",\"account\"");
    ASSERT_VALID("sync.requested", doc);
    snprintf(doc, sizeof doc, OBJECTS_FMT, "\"Contact\",\"Account\",\"Deal\",\"Account\"");
    ASSERT_INVALID("sync.requested", doc,
                   "field \"objects\": must not contain duplicates (items 1 and 3 are equal)");
}

/* ------------------------------------------------------------- threads */

struct thread_arg {
    char **bufs;
    size_t *lens;
    char (*topics)[64];
    size_t n;
    int failures;
};

static void *validate_many(void *p)
{
    struct thread_arg *a = p;
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < a->n; i++) {
            struct json_object *doc = NULL;
            struct err e = ERR_INIT;
            if (!msg_parse(a->topics[i], a->bufs[i], a->lens[i], &doc, &e))
                a->failures++;
            json_object_put(doc);
        }
    }
    return NULL;
}

Test(msg, concurrent_validation)
{
    char **names;
    size_t n = list_json(VALID_DIR, &names);
    cr_assert(n > 0);
    char **bufs = calloc(n, sizeof *bufs);
    size_t *lens = calloc(n, sizeof *lens);
    char(*topics)[64] = calloc(n, sizeof *topics);
    cr_assert(bufs && lens && topics);
    for (size_t i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", VALID_DIR, names[i]);
        bufs[i] = slurp(path, &lens[i]);
        cr_assert(topic_of(names[i], topics[i], sizeof topics[i]));
    }
    pthread_t th[4];
    struct thread_arg args[4];
    for (int t = 0; t < 4; t++) {
        args[t] = (struct thread_arg){bufs, lens, topics, n, 0};
        cr_assert(pthread_create(&th[t], NULL, validate_many, &args[t]) == 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        cr_expect_eq(args[t].failures, 0, "thread %d: %d failures", t, args[t].failures);
    }
    for (size_t i = 0; i < n; i++)
        free(bufs[i]);
    free(bufs);
    free(lens);
    free(topics);
    free_list(names, n);
}

/* ------------------------------------------------------ start-up errors */

static bool init_one(const char *text, struct err *e)
{
    struct embedded_file files[] = {{"t.schema.json", text, strlen(text)}, {NULL, NULL, 0}};
    err_clear(e);
    return msg_init_files(files, e);
}

Test(msg_init, embedded_schemas_load_twice_and_reload)
{
    struct err e = ERR_INIT;
    cr_assert(msg_init(&e), "%s", e.msg);
    cr_assert(msg_init(&e), "a second msg_init is a no-op");
    msg_cleanup();
    cr_expect(!msg_has_schema("record.write"));
    cr_assert(msg_init(&e), "%s", e.msg);
    cr_expect(msg_has_schema("record.write"));
}

Test(msg_init, validate_before_init_fails)
{
    struct err e = ERR_INIT;
    struct json_object *doc = NULL;
    cr_expect(!msg_parse("record.write", "{}", 2, &doc, &e));
    cr_expect_eq(e.code, ERR_INTERNAL);
}

Test(msg_init, unknown_keywords_are_refused)
{
    struct err e = ERR_INIT;
    /* a typo, a keyword we do not implement, an unsupported format, a remote $ref */
    cr_expect(!init_one("{\"type\":\"object\",\"properties\":{\"a\":{\"maxLenght\":3}}}", &e));
    cr_expect(strstr(e.msg, "unsupported keyword \"maxLenght\" at #/properties/a/maxLenght"), "%s",
              e.msg);
    cr_expect_eq(e.code, ERR_INTERNAL);
    cr_expect(!msg_has_schema("t"), "nothing stays loaded after a failure");

    cr_expect(!init_one("{\"anyOf\":[{\"type\":\"string\"}]}", &e));
    cr_expect(strstr(e.msg, "unsupported keyword \"anyOf\""), "%s", e.msg);
    cr_expect(!init_one("{\"type\":\"string\",\"format\":\"email\"}", &e));
    cr_expect(strstr(e.msg, "unsupported format \"email\""), "%s", e.msg);
    cr_expect(!init_one("{\"$ref\":\"other.schema.json#/$defs/x\"}", &e));
    cr_expect(strstr(e.msg, "references are supported"), "%s", e.msg);
    cr_expect(!init_one("{\"$ref\":\"#/$defs/missing\",\"$defs\":{\"x\":true}}", &e));
    cr_expect(strstr(e.msg, "unknown \"#/$defs/missing\""), "%s", e.msg);
    cr_expect(!init_one("{\"type\":\"string\",\"pattern\":\"[a-\"}", &e));
    cr_expect(strstr(e.msg, "bad pattern"), "%s", e.msg);
    cr_expect(!init_one("{\"type\":\"strin\"}", &e));
    cr_expect(strstr(e.msg, "unknown type \"strin\""), "%s", e.msg);
    cr_expect(!init_one("{\"then\":{\"required\":[\"a\"]}}", &e));
    cr_expect(strstr(e.msg, "then/else without if"), "%s", e.msg);
    cr_expect(!init_one("{\"type\":\"object\",", &e));
    cr_expect(strstr(e.msg, "not a JSON object"), "%s", e.msg);
    cr_expect(!init_one("{\"properties\":{\"a\":{\"$defs\":{}}}}", &e));
    cr_expect(strstr(e.msg, "only supported at the top"), "%s", e.msg);
    cr_expect(!init_one("{\"maxLength\":-1}", &e));
    cr_expect(strstr(e.msg, "non-negative integer"), "%s", e.msg);

    cr_expect(init_one("{\"$comment\":\"ok\",\"title\":\"t\",\"type\":\"object\"}", &e), "%s", e.msg);
    msg_cleanup();
}

Test(msg_init, custom_schema_rules)
{
    struct err e = ERR_INIT;
    cr_assert(init_one("{\"type\":\"object\",\"properties\":{"
                       "\"xs\":{\"type\":\"array\",\"uniqueItems\":true},"
                       "\"s\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":3},"
                       "\"c\":{\"const\":{\"a\":[1,2]}}}}",
                       &e),
              "%s", e.msg);
    ASSERT_VALID("t", "{\"xs\":[1,\"1\",true,null,{\"a\":1},[1]]}");
    ASSERT_INVALID("t", "{\"xs\":[1,2,1.0]}", "items 0 and 2 are equal");
    ASSERT_INVALID("t", "{\"xs\":[{\"a\":1,\"b\":2},{\"b\":2,\"a\":1}]}", "items 0 and 1 are equal");
    ASSERT_INVALID("t", "{\"xs\":[null,false,null]}", "items 0 and 2 are equal");
    ASSERT_VALID("t", "{\"s\":\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\"}");
    ASSERT_INVALID("t", "{\"s\":\"\xf0\x9f\x98\x80\"}", "must be at least 2 characters long");
    ASSERT_VALID("t", "{\"c\":{\"a\":[1,2.0]}}");
    ASSERT_INVALID("t", "{\"c\":{\"a\":[2,1]}}", "field \"c\": must be {");
    ASSERT_VALID("t", "{\"other\":{}}");
    msg_cleanup();
}

/* ------------------------------------------- the bad-input corpus vs ajv */

/* tests/corpus/gen.mjs (run by tests/node/schemas.test.mjs, before the unit
 * tests in tests/run) writes build/corpus with ajv's verdict for every
 * message; the C validator must agree on every one: rejected <=> "dlq". */
Test(msg, corpus_verdicts_match_ajv, .timeout = 120)
{
    size_t len;
    FILE *probe = fopen("build/corpus/index.json", "rb");
    if (!probe)
        cr_skip_test("no build/corpus: run node tests/corpus/gen.mjs first");
    fclose(probe);
    char *text = slurp("build/corpus/index.json", &len);
    struct err e = ERR_INIT;
    struct json_object *index = json_parse(text, len, &e);
    cr_assert(index, "index.json: %s", e.msg);
    struct json_object *entries = json_get(index, "entries");
    size_t n = json_object_array_length(entries), mismatches = 0;
    cr_assert(n >= 1000, "only %zu corpus messages", n);
    for (size_t i = 0; i < n; i++) {
        struct json_object *ent = json_object_array_get_idx(entries, i);
        char path[512];
        snprintf(path, sizeof path, "build/corpus/%s", json_get_str(ent, "file"));
        size_t blen;
        char *buf = slurp(path, &blen);
        struct json_object *doc = NULL;
        err_clear(&e);
        bool ok = msg_parse(json_get_str(ent, "topic"), buf, blen, &doc, &e);
        bool want_ok = strcmp(json_get_str(ent, "expect"), "completion") == 0;
        if (ok != want_ok && mismatches++ < 20)
            cr_expect(ok == want_ok, "%s (%s): ajv says %s (%s), C says %s", path,
                      json_get_str(ent, "description"), json_get_str(ent, "expect"),
                      json_get_str(ent, "reason"), ok ? "valid" : e.msg);
        json_object_put(doc);
        free(buf);
    }
    cr_expect_eq(mismatches, 0, "%zu of %zu corpus verdicts differ", mismatches, n);
    json_object_put(index);
    free(text);
}
