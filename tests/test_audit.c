/*
 * Unit tests of the audit chain's canonical serialisation and hashing
 * (common/audit.c). The database side (append, verify, tampering) is covered
 * by tests/it_write*.c.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "crypto.h"
#include "json.h"

static struct json_object *parse(const char *s)
{
    struct err e = ERR_INIT;
    struct json_object *o = json_parse(s, strlen(s), &e);
    cr_assert(o, "parse %s: %s", s, e.msg);
    return o;
}

static char *canon(const char *json)
{
    struct json_object *o = parse(json);
    char *c = audit_canonical_json(o);
    json_object_put(o);
    cr_assert(c);
    return c;
}

Test(audit_canon, keys_sorted_no_whitespace)
{
    char *c = canon("{ \"b\" : 1, \"a\" : {\"z\": true, \"y\": null}, \"A\": [3, 2, \"x\"] }");
    cr_assert_str_eq(c, "{\"A\":[3,2,\"x\"],\"a\":{\"y\":null,\"z\":true},\"b\":1}");
    free(c);
}

Test(audit_canon, numbers_by_value)
{
    /* what PostgreSQL's jsonb may print for the same value must hash the same */
    char *a = canon("{\"n\": 100, \"d\": 0.2, \"big\": 1250000000.0}");
    char *b = canon("{\"n\": 1e2, \"d\": 0.20, \"big\": 1250000000}");
    cr_assert_str_eq(a, b);
    cr_assert_str_eq(a, "{\"big\":1250000000,\"d\":0.20000000000000001,\"n\":100}");
    free(a);
    free(b);
    char *c = canon("{\"n\": 100.5}");
    cr_assert_str_eq(c, "{\"n\":100.5}");
    free(c);
}

/* What audit verify computes from the stored (jsonb) text. */
static char *stored_canon(const char *text)
{
    struct err e = ERR_INIT;
    struct json_object *o = audit_parse_stored(text, &e);
    cr_assert(o, "parse stored %s: %s", text, e.msg);
    char *c = audit_canonical_json(o);
    json_object_put(o);
    cr_assert(c);
    return c;
}

/* The canonical text of a value must read back (as jsonb prints it: plain digits, no exponent) to the
 * same canonical text, or `audit verify` reports a change that never happened. */
static void round_trip(const char *in, const char *as_jsonb, const char *want)
{
    char *c = canon(in);
    cr_assert_str_eq(c, want, "canonical form of %s", in);
    char *again = stored_canon(c);
    cr_assert_str_eq(again, c, "re-reading the canonical form of %s", in);
    char *pg = stored_canon(as_jsonb);
    cr_assert_str_eq(pg, c, "what jsonb prints for %s", in);
    free(c);
    free(again);
    free(pg);
}

Test(audit_canon, big_whole_numbers_round_trip)
{
    round_trip("{\"n\": 1e19}", "{\"n\": 10000000000000000000}", "{\"n\":10000000000000000000}");
    round_trip("{\"n\": 12345678901234567890}", "{\"n\": 12345678901234567890}",
               "{\"n\":12345678901234567890}");
    /* above uint64: json-c holds the digits as a double, written out exactly */
    round_trip("{\"n\": 1e20}", "{\"n\": 100000000000000000000}", "{\"n\":100000000000000000000}");
    round_trip("{\"n\": -1e19}", "{\"n\": -10000000000000000000}", "{\"n\":-10000000000000000000}");
    round_trip("{\"n\": 9223372036854775807}", "{\"n\": 9223372036854775807}", "{\"n\":9223372036854775807}");
    round_trip("{\"n\": -9223372036854775808}", "{\"n\": -9223372036854775808}",
               "{\"n\":-9223372036854775808}");
    round_trip("{\"n\": 9.3e18}", "{\"n\": 9300000000000000000}", "{\"n\":9300000000000000000}");
    round_trip("{\"n\": -0.0}", "{\"n\": 0}", "{\"n\":0}");
    round_trip("{\"n\": 1.5e-7}", "{\"n\": 0.00000014999999999999999}", "{\"n\":1.4999999999999999e-07}");
    /* a huge whole double keeps every digit, and still reads back the same */
    char *c = canon("[1e300]");
    cr_assert_eq(strlen(c), 303, "%s", c);
    char *again = stored_canon(c);
    cr_assert_str_eq(again, c);
    free(c);
    free(again);
    /* strings that look like big numbers are left alone */
    c = stored_canon("{\"s\":\"100000000000000000000\",\"t\":\"a\\\"1e400\"}");
    cr_assert_str_eq(c, "{\"s\":\"100000000000000000000\",\"t\":\"a\\\"1e400\"}");
    free(c);
}

Test(audit_canon, string_escapes_only_what_json_needs)
{
    char *c = canon("{\"s\": \"Z\\u00fcrich \\\"q\\\" back\\\\slash\\nline\\ttab\\u0001 \\ud83d\\ude80\"}");
    cr_assert_str_eq(c, "{\"s\":\"Z\xc3\xbcrich \\\"q\\\" back\\\\slash\\u000aline\\u0009tab\\u0001 \xf0\x9f\x9a\x80\"}");
    free(c);
}

static struct audit_record sample(struct json_object *fields)
{
    struct audit_record r = {
        42,
        "org_acme",
        {"6F1C2A9E-3B7D-4C58-9E21-7A4D0B3C8F15", "2ad7f3b9-4e6a-4c0d-98f5-2b3d7e9c6f4a", "user:5c2e91d0",
         "meeting_notes", "create", "Contact", "Contact", "contact-1", "003000000000001AAA", fields, "created", NULL,
         NULL},
        "2026-12-03T15:02:11.480123Z",
        AUDIT_GENESIS};
    return r;
}

Test(audit_canon, row_format_is_frozen)
{
    struct json_object *f = parse("{\"LastName\":\"M\\u00fcller\",\"Email\":\"ana@x.example\"}");
    struct audit_record r = sample(f);
    char *c = audit_canonical(&r);
    const char *want = "[\"sfbridge-audit-v1\",42,\"org_acme\",\"6f1c2a9e-3b7d-4c58-9e21-7a4d0b3c8f15\","
                       "\"2ad7f3b9-4e6a-4c0d-98f5-2b3d7e9c6f4a\",\"user:5c2e91d0\",\"meeting_notes\",\"create\","
                       "\"Contact\",\"Contact\",\"contact-1\",\"003000000000001AAA\","
                       "{\"Email\":\"ana@x.example\",\"LastName\":\"M\xc3\xbcller\"},\"created\",null,null,"
                       "\"2026-12-03T15:02:11.480123Z\","
                       "\"0000000000000000000000000000000000000000000000000000000000000000\"]";
    cr_assert_str_eq(c, want);
    char h[65], h2[65];
    audit_hash(&r, h);
    crypto_sha256_hex(want, strlen(want), h2);
    cr_assert_str_eq(h, h2);
    cr_assert_eq(strlen(h), 64);
    free(c);
    json_object_put(f);
}

Test(audit_canon, every_column_changes_the_hash)
{
    struct json_object *f = parse("{\"Amount\":25000000}");
    struct audit_record base = sample(f);
    char h0[65];
    audit_hash(&base, h0);

    struct json_object *f2 = parse("{\"Amount\":25000001}");
    struct audit_record variants[8];
    for (int i = 0; i < 8; i++)
        variants[i] = base;
    variants[0].audit_id = 43;
    variants[1].org_id = "org_other";
    variants[2].e.actor = "user:mallory";
    variants[3].e.outcome = "failed";
    variants[4].e.salesforce_id = NULL;
    variants[5].e.fields = f2;
    variants[6].created_at = "2026-12-03T15:02:11.480124Z";
    variants[7].prev_hash = "1111111111111111111111111111111111111111111111111111111111111111";
    for (int i = 0; i < 8; i++) {
        char h[65];
        audit_hash(&variants[i], h);
        cr_assert_str_neq(h, h0, "variant %d must change the hash", i);
    }
    /* uuids are compared case-insensitively (PostgreSQL prints them lower case) */
    struct audit_record lower = base;
    lower.e.connection_id = "6f1c2a9e-3b7d-4c58-9e21-7a4d0b3c8f15";
    char hl[65];
    audit_hash(&lower, hl);
    cr_assert_str_eq(hl, h0);
    /* NULL fields hash like {} (what the table stores) */
    struct json_object *empty = parse("{}");
    struct audit_record a = base, b = base;
    a.e.fields = NULL;
    b.e.fields = empty;
    char ha[65], hb[65];
    audit_hash(&a, ha);
    audit_hash(&b, hb);
    cr_assert_str_eq(ha, hb);
    json_object_put(empty);
    json_object_put(f);
    json_object_put(f2);
}

Test(audit_canon, null_and_absent_differ_from_empty_string)
{
    struct audit_record a = sample(NULL), b = sample(NULL);
    a.e.sf_error_code = NULL;
    b.e.sf_error_code = "";
    char ha[65], hb[65];
    audit_hash(&a, ha);
    audit_hash(&b, hb);
    cr_assert_str_neq(ha, hb);
}
