/*
 * crypto: token encryption at rest (AES-256-GCM), OAuth helpers (state, PKCE,
 * HMAC signature check), hashes and base64. OpenSSL 3 underneath.
 * Thread-safe, no state. Key material is never logged.
 */
#ifndef SFBRIDGE_CRYPTO_H
#define SFBRIDGE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/* `b64` (standard alphabet, padding optional) must decode to exactly 32
 * bytes, else ERR_CONFIG not retriable. The message never contains the key. */
bool crypto_key_from_b64(const char *b64, unsigned char key[32], struct err *e);

/* AES-256-GCM, random 12-byte nonce, AAD = key_id (NULL = ""); returns
 * "v1:" + base64(nonce||ciphertext||tag) (caller frees) or NULL with err. */
char *crypto_seal(const unsigned char key[32], const char *key_id, const char *plaintext, struct err *e);
/* Inverse of crypto_seal; returns the plaintext (caller frees). A wrong key,
 * wrong key_id, bad format or any tampering -> NULL with ERR_CONFIG
 * "cannot decrypt ..." (not retriable). */
char *crypto_open(const unsigned char key[32], const char *key_id, const char *sealed, struct err *e);

/* RAND_bytes into `buf`; false if the CSPRNG fails. */
bool crypto_random_bytes(void *buf, size_t n);
/* nbytes random bytes, base64url without padding, into out (needs
 * ceil(nbytes*4/3)+1 bytes); false when cap is too small or RAND fails.
 * For OAuth state and the PKCE verifier (32 bytes -> 43 chars). */
bool crypto_random_b64url(size_t nbytes, char *out, size_t cap);
/* base64url(SHA-256(verifier)), no padding (43 chars; cap >= 44). "" if cap too small. */
void crypto_pkce_challenge(const char *verifier, char *out, size_t cap);
/* standard base64 with padding of HMAC-SHA256(key, msg) (44 chars; cap >= 45). "" if cap too small. */
void crypto_hmac_sha256_b64(const char *key, const char *msg, char *out, size_t cap);
/* lower-case hex SHA-256 */
void crypto_sha256_hex(const void *data, size_t len, char out[65]);
/* Constant time in the contents (lengths may leak); NULL equals nothing. */
bool crypto_equal(const char *a, const char *b);

/* Base64 encode `len` bytes; url = url alphabet, pad = '=' padding.
 * Returns a new NUL-terminated string (caller frees) or NULL on ENOMEM. */
char *crypto_b64_encode(const void *data, size_t len, bool url, bool pad);
/* Decode standard or url alphabet (not mixed), padding optional, no
 * whitespace. *out is a new buffer (caller frees, NUL-terminated for
 * convenience, *outlen excludes it). false on invalid input or ENOMEM. */
bool crypto_b64_decode(const char *s, unsigned char **out, size_t *outlen);

#endif
