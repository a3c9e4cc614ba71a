/*
 * conn: a connection's Salesforce session inside a worker, with the
 * single-flight token refresh of DESIGN.md.
 *
 * Tokens are stored encrypted (crypto_seal, AES-256-GCM, AAD = key id) in
 * connections.access_token_enc / refresh_token_enc with token_key_id;
 * connections.token_version is bumped on every store, which is how a process
 * that waited on the row lock knows somebody else already refreshed.
 *
 * Refresh protocol (conn_refresh): BEGIN; SELECT ... FOR UPDATE the row;
 * if token_version differs from the one this session used, another process
 * refreshed meanwhile: adopt its token, COMMIT, done (no call to Salesforce).
 * Otherwise call the token endpoint (grant_type=refresh_token); on success
 * store the new access token and, with rotation, the new refresh token in the
 * same UPDATE (atomically), bump token_version, COMMIT. On invalid_grant mark
 * the connection expired (status_reason, last_error), COMMIT, report
 * ERR_CONNECTION_EXPIRED and set *became_expired for the one process that
 * flipped it (so connection.status `expired` is emitted exactly once).
 *
 * Threads: a struct conn_session belongs to one thread. The pg connection
 * must not be inside a transaction when conn_* functions are called (except
 * conn_store_tokens, which runs in the caller's transaction).
 *
 * Errors (all not retriable unless said): NOT_FOUND (unknown / malformed
 * connection id), CONNECTION_EXPIRED (status expired, no stored tokens, or
 * invalid_grant on refresh), CONNECTION_DISABLED, ERR_CONFIG (no or wrong
 * SFBRIDGE_TOKEN_KEY, token sealed with another key id), ERR_PG (retriable
 * per pg.h), the refresh's ERR_AUTH / ERR_HTTP (retriable on transport or
 * 5xx at the token endpoint), ERR_SIGNATURE (token response signature
 * mismatch) and, from conn_call, sf_call's own errors.
 */
#ifndef SFBRIDGE_CONN_H
#define SFBRIDGE_CONN_H

#include <stdbool.h>

#include "cfg.h"
#include "err.h"

struct pg;
struct sf_client;
struct sf_response;

struct conn_session {
    /* borrowed for the session's lifetime */
    struct pg *pg;
    const struct cfg *cfg;
    struct sf_client *sf; /* REST client the session is applied to */
    /* loaded by conn_open */
    char connection_id[40];
    char org_id[72];
    char user_id[256];
    char status[16];
    char instance_url[512];
    char sf_org_id[24];
    char sf_user_id[24];
    long long token_version;
    char *access_token; /* decrypted, owned; never logged */
    bool refreshed;     /* conn_refresh already ran once in this session */
    /* latest Sforce-Limit-Info seen (conn_flush_usage writes it to api_usage) */
    long long usage_used, usage_limit;
    bool usage_dirty;
    long long usage_flushed_ms; /* monotonic time of the last flush (conn_call flushes at most once a second) */
    /* set when this session flipped the connection to expired */
    bool became_expired;
    char expired_reason[256];
};

/* Decode SFBRIDGE_TOKEN_KEY; false with ERR_CONFIG when missing or not 32 bytes. */
bool conn_key(const struct cfg *cfg, unsigned char key[32], struct err *e);

/* Load the connection (must be `connected`), decrypt its access token and apply
 * it to `sf` (sf_client_set_session + usage callback). Errors: NOT_FOUND,
 * CONNECTION_EXPIRED / CONNECTION_DISABLED (not retriable), ERR_PG. */
bool conn_open(struct conn_session *s, struct pg *pg, const struct cfg *cfg, struct sf_client *sf,
               const char *connection_id, struct err *e);
void conn_close(struct conn_session *s); /* frees the token, writes pending usage; NULL-safe */

/* The single-flight refresh described above. On success the new token is
 * applied to s->sf. */
bool conn_refresh(struct conn_session *s, struct err *e);

/* After a failed Salesforce call: when `e` is 401 INVALID_SESSION_ID and this
 * session has not refreshed yet, refresh (single-flight), clear `e` and return
 * true: the caller retries its call once. Otherwise false (e untouched, or
 * replaced by the refresh's error, e.g. CONNECTION_EXPIRED). */
bool conn_retry_after_auth_error(struct conn_session *s, struct err *e);

/* sf_call with the 401 -> refresh once -> retry once rule. */
bool conn_call(struct conn_session *s, const char *method, const char *path, const char *content_type,
               const char *body, size_t len, struct sf_response *out, struct err *e);

/* Upsert api_usage for s->sf_org_id with the latest figures (only if newer). */
bool conn_flush_usage(struct conn_session *s, struct err *e);

/* Store a token response for a connection (used by the token worker after a
 * code exchange, and by conn_refresh): encrypts, bumps token_version. The
 * caller owns the transaction. refresh_token NULL keeps the stored one. */
bool conn_store_tokens(struct pg *pg, const struct cfg *cfg, const char *connection_id, const char *access_token,
                       const char *refresh_token, const char *instance_url, const char *issued_at_ms,
                       struct err *e);

/* Build the sf_options from the configuration. */
struct sf_options;
void conn_sf_options(const struct cfg *cfg, struct sf_options *o);

/* A connection.status event (schemas/connection.status.schema.json):
 * message_id, request_id (omitted when NULL/""), org_id, connection_id,
 * created_at, status ("connected" | "expired" | "disabled"), reason (when
 * given; the status name when absent and status is not connected: the schema
 * requires one), instance_url (when given). All arguments are copied; the
 * caller owns the result (json_object_put). Typical use after a session
 * flipped the connection to expired:
 *   if (s.became_expired) { ev = conn_status_event(job->org_id, s.connection_id, job->message_id,
 *       "expired", s.expired_reason, NULL); worker_emit(d, "connection.status", s.connection_id, ev, &e2); } */
struct json_object;
struct json_object *conn_status_event(const char *org_id, const char *connection_id, const char *request_id,
                                      const char *status, const char *reason, const char *instance_url);

#endif
