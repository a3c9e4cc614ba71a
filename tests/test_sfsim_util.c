/*
 * Unit tests of the emulator's helpers (tests/sfsim/util.c): the 18-char id
 * checksum, the token signature, base64, date/time parsing and formatting,
 * form decoding.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "sfsim/simint.h"

TestSuite(sfsim_util);

Test(sfsim_util, id_checksum_known_values)
{
    /* public examples of 15 -> 18 character ids */
    static const char *const pairs[][2] = {
        {"001D000000IqhSL", "001D000000IqhSLIAZ"},
        {"0015D00000d0ew9", "0015D00000d0ew9QAA"},
        {"00190000001pPvH", "00190000001pPvHAAU"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char out[19];
        cr_assert(sim_id_to18(pairs[i][0], out));
        cr_expect_str_eq(out, pairs[i][1]);
        cr_assert(sim_id_to18(pairs[i][1], out), "an 18-char id validates");
        cr_expect_str_eq(out, pairs[i][1]);
    }
    char out[19];
    cr_expect_not(sim_id_to18("001D000000IqhSLIAA", out), "a wrong suffix is refused");
    cr_expect(sim_id_to18("001D000000IqhSLiaz", out), "the suffix is case-insensitive");
    cr_expect_not(sim_id_to18("001D000000IqhS", out));
    cr_expect_not(sim_id_to18("001D000000Iqh-L", out));
}

Test(sfsim_util, generated_ids_roundtrip)
{
    char id[19], pfx[4];
    uint64_t n;
    sim_id_make("001", 123456789, id);
    cr_expect_eq(strlen(id), 18);
    cr_expect(strncmp(id, "001", 3) == 0);
    char again[19];
    cr_expect(sim_id_to18(id, again));
    cr_expect_str_eq(again, id);
    cr_assert(sim_id_decode(id, pfx, &n));
    cr_expect_str_eq(pfx, "001");
    cr_expect_eq(n, 123456789);
}

Test(sfsim_util, signature_is_base64_hmac_sha256_of_id_and_issued_at)
{
    /* RFC 4231 test case 2 (key "Jefe"), base64 of the MAC; checked with
     * `openssl dgst -sha256 -hmac Jefe -binary | base64` */
    char out[64];
    sim_hmac_b64("Jefe", "what do ya want for nothing?", out);
    cr_expect_str_eq(out, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
    /* the emulator's token signature for a fixed id + issued_at */
    sim_hmac_b64("sfbridge-test-secret",
                 "http://127.0.0.1:1/id/00DHs0000000001IAA/005Hs0000000001IAA1700000000000", out);
    cr_expect_str_eq(out, "XG96Q2j9XHc6MzSS3y9MXN+WzTMOiVtnULMq7c6zVTs=");
}

Test(sfsim_util, pkce_s256)
{
    /* RFC 7636 appendix B */
    char out[64];
    sim_s256_b64url("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", out);
    cr_expect_str_eq(out, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

Test(sfsim_util, datetimes)
{
    int64_t ms;
    size_t used;
    cr_assert(sim_parse_datetime("2013-05-20T20:49:32Z", 20, &ms, &used));
    char buf[32];
    sim_fmt_datetime(ms, buf);
    cr_expect_str_eq(buf, "2013-05-20T20:49:32.000+0000");
    cr_assert(sim_parse_datetime("2013-05-20T22:49:32.123+02:00", 29, &ms, &used));
    sim_fmt_datetime(ms, buf);
    cr_expect_str_eq(buf, "2013-05-20T20:49:32.123+0000");
    cr_assert(sim_parse_datetime("2013-05-20T15:49:32.000-0500", 28, &ms, &used));
    sim_fmt_datetime(ms, buf);
    cr_expect_str_eq(buf, "2013-05-20T20:49:32.000+0000");
    cr_expect_not(sim_parse_datetime("2013-05-20T20:49:32", 19, &ms, &used), "a zone is required");
    cr_expect_not(sim_parse_datetime("2013-13-20T20:49:32Z", 20, &ms, &used));
    int64_t d;
    cr_assert(sim_parse_date("1970-01-02", 10, &d, &used));
    cr_expect_eq(d, 1);
    sim_fmt_date(sim_days_from_civil(2024, 2, 29), buf);
    cr_expect_str_eq(buf, "2024-02-29");
    sim_fmt_datetime(-1, buf);
    cr_expect_str_eq(buf, "1969-12-31T23:59:59.999+0000");
}

Test(sfsim_util, form_and_numbers)
{
    char *v = sim_form_get("grant_type=refresh_token&refresh_token=5Aep%2Bx%3D&x", "refresh_token");
    cr_assert_not_null(v);
    cr_expect_str_eq(v, "5Aep+x=");
    free(v);
    v = sim_form_get("a=hello+world", "a");
    cr_expect_str_eq(v, "hello world");
    free(v);
    cr_expect_null(sim_form_get("a=1", "b"));
    struct sim_buf b = {0};
    sim_buf_num(&b, 1500);
    sim_buf_putc(&b, ' ');
    sim_buf_num(&b, 0.1);
    sim_buf_putc(&b, ' ');
    sim_buf_json_str(&b, "a\"b\n\x01");
    cr_expect_str_eq(b.p, "1500.0 0.1 \"a\\\"b\\n\\u0001\"");
    sim_buf_free(&b);
}
