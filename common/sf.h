/*
 * sf: the Salesforce client (REST, OAuth token endpoint, Bulk API 2.0 query).
 * The only file of sfbridge that includes <curl/curl.h>.
 *
 * Threads: one struct sf_client per thread (it owns one CURL easy handle, so
 * connections are reused between calls). The client is not thread-safe; the
 * module is (curl_global_init runs once, under pthread_once).
 *
 * Retry policy (inside sf_call, sf_query_*, sf_bulk_query): transport errors,
 * timeouts, HTTP 5xx, 429 and 400 UNABLE_TO_LOCK_ROW are retried with jittered
 * exponential backoff (base 200 ms, doubling, capped at max_backoff_ms, full
 * jitter in [d/2, d], Retry-After honoured up to the cap) up to max_retries
 * extra attempts. The OAuth endpoints are never retried inside (a retried
 * refresh with rotation or a retried code exchange would burn a single-use
 * credential); their transport/5xx failures come back retriable=true.
 *
 * Tokens: never logged. Retry warnings name the method and the path without
 * its query string.
 *
 * URLs: http:// is accepted (the emulator on loopback); https:// always
 * verifies the peer and the host name.
 */
#ifndef SFBRIDGE_SF_H
#define SFBRIDGE_SF_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct json_object;

struct sf_options {
    const char *api_version;  /* "60.0"; NULL -> "60.0". Copied by sf_client_new */
    long timeout_ms;          /* whole request; <= 0 -> 120000 */
    long connect_timeout_ms;  /* <= 0 -> 10000 */
    const char *ca_file;      /* NULL/"" = system CAs; TLS verification is ALWAYS on. Copied */
    int max_retries;          /* for retriable failures; < 0 -> 5 (0 means no retry) */
    long max_backoff_ms;      /* cap; <= 0 -> 30000 */
    long bulk_timeout_ms;     /* how long sf_bulk_query waits for a job; <= 0 -> 1800000 */
};

/* Defaults as above: {"60.0", 120000, 10000, NULL, 5, 30000, 1800000}. */
void sf_options_init(struct sf_options *o);

struct sf_client;

/* New client (caller frees with sf_client_free). `o` is read, not kept; NULL
 * means defaults. Fails with ERR_NOMEM / ERR_HTTP when curl cannot start. */
struct sf_client *sf_client_new(const struct sf_options *o, struct err *e);
void sf_client_free(struct sf_client **c); /* NULL-safe; nulls *c */

/* Set the REST endpoint and the bearer token; both are copied (a trailing '/'
 * on instance_url is dropped). Call again after a refresh. */
void sf_client_set_session(struct sf_client *c, const char *instance_url, const char *access_token);
/* Borrowed from `c` until the next sf_client_set_session; "" when unset. */
const char *sf_client_instance_url(const struct sf_client *c);
/* "60.0"; borrowed from `c` for its lifetime. */
const char *sf_client_api_version(const struct sf_client *c);

/* Called after every response carrying Sforce-Limit-Info (error and retried
 * responses included). `ud` is borrowed until replaced or the client is freed. */
typedef void (*sf_usage_fn)(void *ud, long long used, long long limit);
void sf_client_on_usage(struct sf_client *c, sf_usage_fn fn, void *ud);
/* Last Sforce-Limit-Info seen by this client; false when none yet. */
bool sf_client_last_usage(const struct sf_client *c, long long *used, long long *limit);

/* REST/API requests sent (retries count; OAuth requests do not). */
long long sf_client_calls(const struct sf_client *c);
void sf_client_reset_calls(struct sf_client *c);

/* Optional stop flag (borrowed for the client's lifetime, typically the
 * process's SIGTERM flag): when it becomes non-zero, a backoff sleep or a Bulk
 * poll ends early and the call fails with a retriable ERR_HTTP "... interrupted". */
void sf_client_set_cancel(struct sf_client *c, const volatile sig_atomic_t *flag);

struct sf_response {
    long status;
    char *body;               /* NUL-terminated (len excludes it); owned, "" when empty */
    size_t len;
    struct json_object *json; /* parsed body or NULL (empty body, or not JSON); owned */
    char *locator;            /* Sforce-Locator header or NULL; owned */
    long long records;        /* Sforce-NumberOfRecords, -1 when absent */
};
void sf_response_cleanup(struct sf_response *r); /* frees members, zeroes (records = -1); NULL-safe */

/* One REST call. `path` is relative to /services/data/v{API} (e.g.
 * "/query?q=...", "/composite") or absolute when it starts with "/services/".
 * `body` (may be NULL with len 0) is sent as given, borrowed for the call;
 * content_type NULL -> application/json. Accept is application/json.
 * Final failures: 401 -> ERR_AUTH sf_code "INVALID_SESSION_ID" not retriable
 * (the caller refreshes once and retries once); 403 REQUEST_LIMIT_EXCEEDED ->
 * ERR_LIMIT_EXCEEDED sf_code "REQUEST_LIMIT_EXCEEDED" retriable=true (defer,
 * never dead-letter); other 4xx -> ERR_SALESFORCE, sf_code = first errorCode,
 * msg = its message (fields appended), not retriable; retries exhausted ->
 * ERR_HTTP (transport) / ERR_SALESFORCE (HTTP status) retriable; malformed
 * JSON in a 2xx -> ERR_SALESFORCE retriable; TLS verification failure ->
 * ERR_TLS, not retriable. 2xx/300 -> true with `out` filled (caller cleans up
 * with sf_response_cleanup, also after a failure). `out` must be zeroed or
 * cleaned before the call. */
bool sf_call(struct sf_client *c, const char *method, const char *path, const char *content_type,
             const char *body, size_t len, struct sf_response *out, struct err *e);

/* Query cursor over query/queryAll with nextRecordsUrl paging; batch_size 0 =
 * default (header Sforce-Query-Options: batchSize=N otherwise). `soql` is
 * copied. The first request is sent by the first sf_query_next. Caller frees
 * *out with sf_query_free. The cursor borrows `c` until freed. */
struct sf_query;
bool sf_query_open(struct sf_client *c, const char *soql, bool all, int batch_size,
                   struct sf_query **out, struct err *e);
/* Next page: *records is a borrowed json array valid until the next call/free;
 * *done true after the last page (the first call returns the first page).
 * Calling again after done returns an empty array with done true and sends
 * nothing. totalSize available after the first page. */
bool sf_query_next(struct sf_query *q, struct json_object **records, bool *done, struct err *e);
long long sf_query_total(const struct sf_query *q); /* -1 before the first page */
void sf_query_free(struct sf_query **q);            /* NULL-safe; nulls *q */
/* SELECT COUNT() ... -> totalSize */
bool sf_query_count(struct sf_client *c, const char *soql, long long *n, struct err *e);

/* Bulk API 2.0 query job: create, poll (backoff 250 ms doubling to 5 s,
 * bounded by bulk_timeout_ms; on timeout the job is aborted and the error is
 * retriable), stream results page by page (maxRecords per page, 0 = server
 * default; Sforce-Locator) through the CSV parser; memory stays bounded by one
 * row whatever the result size. `row` is called once per data row with the
 * header names and the values (NUL-terminated, borrowed for the call; "" for
 * an empty field; NUL bytes stripped). A page retried after a transport error
 * skips the rows already delivered, so no row is delivered twice. A non-zero
 * return from `row` aborts with ERR_INTERNAL. Failed/Aborted job ->
 * ERR_SALESFORCE not retriable with the job's errorMessage. *rows_out (may be
 * NULL) = data rows delivered, also on failure. */
typedef int (*sf_row_fn)(void *ud, size_t ncols, const char *const *names, const char *const *values);
bool sf_bulk_query(struct sf_client *c, const char *soql, bool all, long max_records, sf_row_fn row,
                   void *ud, long long *rows_out, struct err *e);

/* OAuth token endpoint: POST {login_url}/services/oauth2/token,
 * form-urlencoded from kv pairs (key, value, ..., NULL), values url-encoded
 * here; all borrowed for the call. 200 -> fills `t` (caller cleans up with
 * sf_token_cleanup; `t` is zeroed first). 400/401 {error, error_description}
 * -> ERR_AUTH with sf_code = error (e.g. "invalid_grant") and msg =
 * error_description, not retriable; transport/5xx -> retriable (ERR_HTTP /
 * ERR_AUTH). A 200 without access_token or instance_url -> ERR_AUTH not
 * retriable. Not counted in sf_client_calls; not retried inside. */
struct sf_token {
    char *access_token, *refresh_token /* NULL if absent */, *instance_url, *id, *issued_at,
        *signature, *scope, *token_type; /* each owned; NULL when absent */
};
bool sf_oauth_token(struct sf_client *c, const char *login_url, const char *const *kv,
                    struct sf_token *t, struct err *e);
/* POST {login_url}/services/oauth2/revoke token=...; 200 (or a redirect to a
 * 200) -> true; 400 -> ERR_AUTH sf_code = error. */
bool sf_oauth_revoke(struct sf_client *c, const char *login_url, const char *token, struct err *e);
/* signature == base64(HMAC-SHA256(client_secret, id + issued_at)), constant-time
 * compare -> else ERR_SIGNATURE (not retriable). */
bool sf_token_verify(const struct sf_token *t, const char *client_secret, struct err *e);
void sf_token_cleanup(struct sf_token *t); /* frees members, zeroes; NULL-safe */

/* Parse "api-usage=10018/100000" (tolerates "; per-app-api-usage=..." and
 * "; api-bursts=..." suffixes, spaces, any order). false when absent/garbled. */
bool sf_parse_limit_info(const char *value, long long *used, long long *limit);
/* "https://host/id/00D.../005..." -> org id / user id (18 alphanumerics each,
 * prefixes 00D and 005) into out buffers (>= 19 bytes). false otherwise. */
bool sf_parse_identity_url(const char *id_url, char *org_id, char *user_id);
/* RFC 3986 percent-encoding (unreserved kept) into a new string (caller
 * frees); NULL on out of memory. */
char *sf_urlencode(const char *s);

#endif
