/*
 * crypto: see crypto.h. OpenSSL EVP for AES-256-GCM, SHA-256 and HMAC;
 * base64 is done here (both alphabets, strict decoding). No state.
 */
#include "crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SEAL_PREFIX "v1:"
#define NONCE_LEN 12
#define TAG_LEN 16

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64_len(size_t n, bool pad)
{
    return pad ? (n + 2) / 3 * 4 : (n * 4 + 2) / 3;
}

/* Encode into out (cap >= b64_len + 1). */
static void b64_encode_to(const unsigned char *in, size_t n, bool url, bool pad, char *out)
{
    const char *al = url ? b64_url : b64_std;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
        out[o++] = al[v >> 6 & 63];
        out[o++] = al[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
        if (pad) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
        out[o++] = al[v >> 6 & 63];
        if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
}

char *crypto_b64_encode(const void *data, size_t len, bool url, bool pad)
{
    char *out = malloc(b64_len(len, pad) + 1);
    if (!out)
        return NULL;
    b64_encode_to(data, len, url, pad, out);
    return out;
}

static int b64_val(char ch, int *alphabet)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    /* alphabet: 0 unknown yet, 1 standard, 2 url; mixing is refused */
    if (ch == '+' || ch == '/') {
        if (*alphabet == 2)
            return -1;
        *alphabet = 1;
        return ch == '+' ? 62 : 63;
    }
    if (ch == '-' || ch == '_') {
        if (*alphabet == 1)
            return -1;
        *alphabet = 2;
        return ch == '-' ? 62 : 63;
    }
    return -1;
}

bool crypto_b64_decode(const char *s, unsigned char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (!s)
        return false;
    size_t n = strlen(s);
    if (n % 4 == 0 && n >= 1 && s[n - 1] == '=')
        n--;
    if (n % 4 == 3 && n >= 1 && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return false;
    unsigned char *buf = malloc(n / 4 * 3 + 3);
    if (!buf)
        return false;
    int alphabet = 0;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val(s[i], &alphabet);
        if (v < 0) {
            free(buf);
            return false;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits & 0xff);
        }
    }
    /* leftover bits must be zero (canonical encoding) */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        free(buf);
        return false;
    }
    buf[o] = '\0';
    *out = buf;
    *outlen = o;
    return true;
}

bool crypto_key_from_b64(const char *b64, unsigned char key[32], struct err *e)
{
    unsigned char *raw = NULL;
    size_t n = 0;
    if (!b64 || !*b64)
        return err_set(e, ERR_CONFIG, false, "cannot use token key: empty");
    if (!crypto_b64_decode(b64, &raw, &n))
        return err_set(e, ERR_CONFIG, false, "cannot use token key: not valid base64");
    bool ok = n == 32;
    if (ok)
        memcpy(key, raw, 32);
    OPENSSL_cleanse(raw, n);
    free(raw);
    if (!ok)
        return err_set(e, ERR_CONFIG, false, "cannot use token key: decodes to %zu bytes, need 32", n);
    return true;
}

bool crypto_random_bytes(void *buf, size_t n)
{
    if (n > INT32_MAX)
        return false;
    return RAND_bytes(buf, (int)n) == 1;
}

char *crypto_seal(const unsigned char key[32], const char *key_id, const char *plaintext, struct err *e)
{
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *raw = NULL;
    char *out = NULL, *b64 = NULL;
    const char *aad = key_id ? key_id : "";
    size_t plen = plaintext ? strlen(plaintext) : 0;
    int len = 0;

    if (!plaintext || plen > INT32_MAX - 64) {
        err_set(e, ERR_INTERNAL, false, "cannot encrypt: no plaintext or too long");
        goto out;
    }
    raw = malloc(NONCE_LEN + plen + TAG_LEN);
    ctx = EVP_CIPHER_CTX_new();
    if (!raw || !ctx) {
        err_set(e, ERR_NOMEM, true, "could not encrypt: out of memory");
        goto out;
    }
    if (!crypto_random_bytes(raw, NONCE_LEN)) {
        err_set(e, ERR_INTERNAL, true, "could not encrypt: random generator failed");
        goto out;
    }
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, key, raw) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
        EVP_EncryptUpdate(ctx, raw + NONCE_LEN, &len, (const unsigned char *)plaintext, (int)plen) != 1 ||
        EVP_EncryptFinal_ex(ctx, raw + NONCE_LEN + len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, raw + NONCE_LEN + plen) != 1) {
        err_set(e, ERR_INTERNAL, false, "could not encrypt: openssl failure");
        goto out;
    }
    b64 = crypto_b64_encode(raw, NONCE_LEN + plen + TAG_LEN, false, true);
    if (!b64) {
        err_set(e, ERR_NOMEM, true, "could not encrypt: out of memory");
        goto out;
    }
    size_t blen = strlen(b64);
    out = malloc(sizeof SEAL_PREFIX + blen);
    if (!out) {
        err_set(e, ERR_NOMEM, true, "could not encrypt: out of memory");
        goto out;
    }
    memcpy(out, SEAL_PREFIX, sizeof SEAL_PREFIX - 1);
    memcpy(out + sizeof SEAL_PREFIX - 1, b64, blen + 1);
out:
    if (raw) {
        OPENSSL_cleanse(raw, NONCE_LEN + plen + TAG_LEN);
        free(raw);
    }
    free(b64);
    EVP_CIPHER_CTX_free(ctx);
    return out;
}

char *crypto_open(const unsigned char key[32], const char *key_id, const char *sealed, struct err *e)
{
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *raw = NULL;
    char *plain = NULL;
    size_t n = 0, clen = 0;
    const char *aad = key_id ? key_id : "";
    int len = 0, len2 = 0;

    if (!sealed || strncmp(sealed, SEAL_PREFIX, sizeof SEAL_PREFIX - 1) != 0) {
        err_set(e, ERR_CONFIG, false, "cannot decrypt token: unknown format");
        goto out;
    }
    if (!crypto_b64_decode(sealed + sizeof SEAL_PREFIX - 1, &raw, &n) || n < NONCE_LEN + TAG_LEN ||
        n > INT32_MAX) {
        err_set(e, ERR_CONFIG, false, "cannot decrypt token: malformed ciphertext");
        goto out;
    }
    clen = n - NONCE_LEN - TAG_LEN;
    plain = malloc(clen + 1);
    ctx = EVP_CIPHER_CTX_new();
    if (!plain || !ctx) {
        err_set(e, ERR_NOMEM, true, "could not decrypt token: out of memory");
        goto out;
    }
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, key, raw) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
        EVP_DecryptUpdate(ctx, (unsigned char *)plain, &len, raw + NONCE_LEN, (int)clen) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, raw + NONCE_LEN + clen) != 1 ||
        EVP_DecryptFinal_ex(ctx, (unsigned char *)plain + len, &len2) != 1) {
        err_set(e, ERR_CONFIG, false,
                "cannot decrypt token: authentication failed (wrong key, wrong key id or tampered)");
        goto out;
    }
    plain[clen] = '\0';
    if (strlen(plain) != clen) {
        err_set(e, ERR_CONFIG, false, "cannot decrypt token: plaintext contains NUL");
        goto out;
    }
    EVP_CIPHER_CTX_free(ctx);
    OPENSSL_cleanse(raw, n);
    free(raw);
    return plain;
out:
    if (plain) {
        OPENSSL_cleanse(plain, clen + 1);
        free(plain);
    }
    if (raw) {
        OPENSSL_cleanse(raw, n);
        free(raw);
    }
    EVP_CIPHER_CTX_free(ctx);
    return NULL;
}

bool crypto_random_b64url(size_t nbytes, char *out, size_t cap)
{
    unsigned char buf[256];
    if (!out || cap == 0)
        return false;
    out[0] = '\0';
    if (nbytes == 0 || nbytes > sizeof buf || cap < b64_len(nbytes, false) + 1)
        return false;
    if (!crypto_random_bytes(buf, nbytes))
        return false;
    b64_encode_to(buf, nbytes, true, false, out);
    OPENSSL_cleanse(buf, sizeof buf);
    return true;
}

void crypto_pkce_challenge(const char *verifier, char *out, size_t cap)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    if (!out || cap == 0)
        return;
    out[0] = '\0';
    if (!verifier || cap < b64_len(sizeof md, false) + 1)
        return;
    SHA256((const unsigned char *)verifier, strlen(verifier), md);
    b64_encode_to(md, sizeof md, true, false, out);
}

void crypto_hmac_sha256_b64(const char *key, const char *msg, char *out, size_t cap)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!out || cap == 0)
        return;
    out[0] = '\0';
    if (!key || !msg || cap < b64_len(SHA256_DIGEST_LENGTH, true) + 1)
        return;
    if (!HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)msg, strlen(msg), md, &mdlen))
        return;
    b64_encode_to(md, mdlen, false, true, out);
}

void crypto_sha256_hex(const void *data, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data, len, md);
    for (size_t i = 0; i < sizeof md; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

bool crypto_equal(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return false;
    return CRYPTO_memcmp(a, b, la) == 0;
}
