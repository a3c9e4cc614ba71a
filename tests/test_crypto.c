/* test_crypto: token encryption, OAuth helpers, hashes, base64. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

/* 32 bytes 0x00..0x1f */
static const char KEY_B64[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

static void key(unsigned char k[32])
{
    struct err e = ERR_INIT;
    cr_assert(crypto_key_from_b64(KEY_B64, k, &e), "%s", e.msg);
}

Test(crypto, key_must_be_32_bytes)
{
    unsigned char k[32];
    struct err e = ERR_INIT;
    cr_assert(crypto_key_from_b64(KEY_B64, k, &e));
    for (int i = 0; i < 32; i++)
        cr_assert_eq(k[i], i);
    /* unpadded works too */
    cr_assert(crypto_key_from_b64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", k, &e));

    err_clear(&e);
    cr_assert_not(crypto_key_from_b64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd", k, &e)); /* 30 bytes */
    cr_assert_eq(e.code, ERR_CONFIG);
    cr_assert_not(e.retriable);
    cr_assert(strstr(e.msg, "30 bytes"), "%s", e.msg);

    err_clear(&e);
    cr_assert_not(crypto_key_from_b64("not base64 !!", k, &e));
    cr_assert_eq(e.code, ERR_CONFIG);
    err_clear(&e);
    cr_assert_not(crypto_key_from_b64("", k, &e));
    cr_assert_eq(e.code, ERR_CONFIG);
}

Test(crypto, seal_open_roundtrip)
{
    unsigned char k[32];
    struct err e = ERR_INIT;
    key(k);
    const char *tok = "00D7F0000001I8v!ARgAQsecret.token.value";
    char *s1 = crypto_seal(k, "k1", tok, &e);
    char *s2 = crypto_seal(k, "k1", tok, &e);
    cr_assert(s1 && s2, "%s", e.msg);
    cr_assert(strncmp(s1, "v1:", 3) == 0);
    cr_assert_str_neq(s1, s2, "a fresh nonce per seal");
    cr_assert_null(strstr(s1, "ARgAQ"), "ciphertext must not contain the plaintext");
    char *p = crypto_open(k, "k1", s1, &e);
    cr_assert_not_null(p, "%s", e.msg);
    cr_assert_str_eq(p, tok);
    free(p);
    p = crypto_open(k, "k1", s2, &e);
    cr_assert_str_eq(p, tok);
    free(p);

    /* empty plaintext is fine */
    char *s3 = crypto_seal(k, "k1", "", &e);
    p = crypto_open(k, "k1", s3, &e);
    cr_assert_str_eq(p, "");
    free(p);
    free(s3);
    free(s1);
    free(s2);
}

Test(crypto, open_refuses_wrong_key_id_key_and_tampering)
{
    unsigned char k[32], k2[32];
    struct err e = ERR_INIT;
    key(k);
    memcpy(k2, k, 32);
    k2[0] ^= 1;
    char *s = crypto_seal(k, "k1", "refresh-5Aep861", &e);
    cr_assert_not_null(s);

    cr_assert_null(crypto_open(k, "k2", s, &e), "AAD is the key id");
    cr_assert_eq(e.code, ERR_CONFIG);
    cr_assert(strstr(e.msg, "cannot decrypt"), "%s", e.msg);
    err_clear(&e);
    cr_assert_null(crypto_open(k2, "k1", s, &e));
    cr_assert_eq(e.code, ERR_CONFIG);

    /* flip each character of the payload in turn: every change is detected */
    size_t n = strlen(s);
    for (size_t i = 3; i < n; i++) {
        char *t = strdup(s);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        err_clear(&e);
        char *p = crypto_open(k, "k1", t, &e);
        cr_assert_null(p, "tampered byte %zu accepted", i);
        cr_assert_eq(e.code, ERR_CONFIG);
        free(t);
    }
    /* truncation and format */
    char *t = strdup(s);
    t[n - 4] = '\0';
    err_clear(&e);
    cr_assert_null(crypto_open(k, "k1", t, &e));
    free(t);
    err_clear(&e);
    cr_assert_null(crypto_open(k, "k1", "v2:AAAA", &e));
    cr_assert_null(crypto_open(k, "k1", "v1:", &e));
    cr_assert_null(crypto_open(k, "k1", NULL, &e));
    free(s);
}

Test(crypto, known_answers)
{
    char out[128], hex[65];
    crypto_hmac_sha256_b64("Jefe", "what do ya want for nothing?", out, sizeof out); /* RFC 4231 case 2 */
    cr_assert_str_eq(out, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
    crypto_pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWMFEjXk", out, sizeof out); /* value from python hashlib */
    cr_assert_str_eq(out, "mQxqltD5mMCka5QDP3w2VZF5Hc48JZhg8PndCnBmV6E");
    crypto_sha256_hex("abc", 3, hex);
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* too small buffers give "" rather than a truncated value */
    crypto_hmac_sha256_b64("Jefe", "x", out, 44);
    cr_assert_str_eq(out, "");
    crypto_pkce_challenge("x", out, 43);
    cr_assert_str_eq(out, "");
}

Test(crypto, random_b64url)
{
    char a[64], b[64];
    cr_assert(crypto_random_b64url(32, a, sizeof a));
    cr_assert(crypto_random_b64url(32, b, sizeof b));
    cr_assert_eq(strlen(a), 43);
    cr_assert_str_neq(a, b);
    cr_assert_eq(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 43);
    cr_assert_not(crypto_random_b64url(32, a, 43), "cap must hold 43 chars + NUL");
    cr_assert(crypto_random_b64url(32, a, 44));
}

Test(crypto, equal)
{
    cr_assert(crypto_equal("abc", "abc"));
    cr_assert_not(crypto_equal("abc", "abd"));
    cr_assert_not(crypto_equal("abc", "abcd"));
    cr_assert_not(crypto_equal(NULL, "abc"));
    cr_assert(crypto_equal("", ""));
}

Test(crypto, base64_roundtrip_and_strictness)
{
    unsigned char data[40];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(0xf0 + i * 37);
    for (size_t n = 0; n <= sizeof data; n++) {
        for (int url = 0; url < 2; url++) {
            for (int pad = 0; pad < 2; pad++) {
                char *s = crypto_b64_encode(data, n, url, pad);
                unsigned char *d = NULL;
                size_t dn = 0;
                cr_assert(crypto_b64_decode(s, &d, &dn), "n=%zu url=%d pad=%d %s", n, url, pad, s);
                cr_assert_eq(dn, n);
                cr_assert(n == 0 || memcmp(d, data, n) == 0);
                if (url)
                    cr_assert_null(strpbrk(s, "+/"));
                free(d);
                free(s);
            }
        }
    }
    unsigned char *d = NULL;
    size_t dn;
    cr_assert_not(crypto_b64_decode("ab+_", &d, &dn), "mixed alphabets");
    cr_assert_not(crypto_b64_decode("a", &d, &dn));
    cr_assert_not(crypto_b64_decode("ab c", &d, &dn));
    cr_assert_not(crypto_b64_decode("QR==", &d, &dn), "non-canonical trailing bits");
    cr_assert(crypto_b64_decode("QQ==", &d, &dn));
    cr_assert_eq(dn, 1);
    cr_assert_eq(d[0], 'A');
    free(d);
}
