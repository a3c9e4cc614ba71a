/*
 * conn: a connection's Salesforce session and the single-flight refresh.
 * See conn.h for the protocol.
 *
 * Threads: a conn_session belongs to one thread (it borrows that thread's pg
 * and sf handles). Plaintext tokens live only in heap buffers owned here or
 * in the sf client; they are wiped before being freed and never logged.
 */
#include "conn.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "pg.h"
#include "sf.h"

/* api_usage is written at most this often from conn_call (and always on close) */
#define CONN_USAGE_FLUSH_MS 1000

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wipe_free(char **s)
{
    if (!*s)
        return;
    memset(*s, 0, strlen(*s));
    free(*s);
    *s = NULL;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* Replace *dst with *src (first error wins only inside one err; here the
 * newer, more specific error must replace the caller's). */
static void err_replace(struct err *dst, const struct err *src)
{
    if (dst)
        *dst = *src;
}

bool conn_key(const struct cfg *cfg, unsigned char key[32], struct err *e)
{
    if (!cfg || !cfg->token_key || !*cfg->token_key)
        return err_set(e, ERR_CONFIG, false,
                       "cannot use stored tokens: SFBRIDGE_TOKEN_KEY is not set (base64 of 32 random bytes, "
                       "e.g. `openssl rand -base64 32`)");
    struct err ke = ERR_INIT;
    if (!crypto_key_from_b64(cfg->token_key, key, &ke))
        return err_set(e, ERR_CONFIG, false, "cannot use SFBRIDGE_TOKEN_KEY: %s", ke.msg);
    return true;
}

static const char *key_id(const struct cfg *cfg)
{
    return cfg && cfg->token_key_id && *cfg->token_key_id ? cfg->token_key_id : "k1";
}

/* Decrypt a stored token; stored_key_id is the row's token_key_id. */
static char *open_token(const struct cfg *cfg, const char *connection_id, const char *what, const char *sealed,
                        const char *stored_key_id, struct err *e)
{
    unsigned char key[32];
    char *plain = NULL;
    if (!conn_key(cfg, key, e))
        return NULL;
    const char *kid = stored_key_id && *stored_key_id ? stored_key_id : key_id(cfg);
    struct err ce = ERR_INIT;
    plain = crypto_open(key, kid, sealed, &ce);
    memset(key, 0, sizeof key);
    if (!plain) {
        if (strcmp(kid, key_id(cfg)) != 0)
            err_set(e, ERR_CONFIG, false,
                    "cannot decrypt the %s of connection \"%s\": it was stored with key id \"%s\" but the "
                    "configured key is \"%s\" (SFBRIDGE_TOKEN_KEY_ID)",
                    what, connection_id, kid, key_id(cfg));
        else
            err_set(e, ERR_CONFIG, false,
                    "cannot decrypt the %s of connection \"%s\": wrong SFBRIDGE_TOKEN_KEY or damaged ciphertext",
                    what, connection_id);
    }
    return plain;
}

static void on_usage(void *ud, long long used, long long limit)
{
    struct conn_session *s = ud;
    s->usage_used = used;
    s->usage_limit = limit;
    s->usage_dirty = true;
}

static bool status_error(const char *connection_id, const char *status, const char *reason, struct err *e)
{
    if (!strcmp(status, "expired"))
        return err_set(e, ERR_CONNECTION_EXPIRED, false,
                       "connection \"%s\" has expired (%s); the user must reconnect to Salesforce", connection_id,
                       reason && *reason ? reason : "refresh token no longer valid");
    if (!strcmp(status, "disabled"))
        return err_set(e, ERR_CONNECTION_DISABLED, false, "connection \"%s\" is disabled%s%s%s", connection_id,
                       reason && *reason ? " (" : "", reason && *reason ? reason : "",
                       reason && *reason ? ")" : "");
    return err_set(e, ERR_INTERNAL, false, "connection \"%s\" has unknown status \"%s\"", connection_id, status);
}

static void apply_session(struct conn_session *s)
{
    if (s->sf) {
        sf_client_set_session(s->sf, s->instance_url, s->access_token);
        sf_client_on_usage(s->sf, on_usage, s);
    }
}

bool conn_open(struct conn_session *s, struct pg *pg, const struct cfg *cfg, struct sf_client *sf,
               const char *connection_id, struct err *e)
{
    struct pg_res *r = NULL;
    bool ok = false;
    if (!s)
        return err_set(e, ERR_INTERNAL, false, "cannot open connection: missing session");
    memset(s, 0, sizeof *s);
    s->pg = pg;
    s->cfg = cfg;
    s->sf = sf;
    if (!pg || !cfg || !connection_id) {
        err_set(e, ERR_INTERNAL, false, "cannot open connection: missing argument");
        goto out;
    }
    if (!json_is_uuid(connection_id)) {
        err_set(e, ERR_NOT_FOUND, false, "unknown connection \"%.60s\": not a uuid", connection_id);
        goto out;
    }
    const char *p[1] = {connection_id};
    r = pg_exec(pg,
                "SELECT connection_id::text, org_id, user_id, status, COALESCE(instance_url, ''), "
                "COALESCE(sf_org_id, ''), COALESCE(sf_user_id, ''), token_version, access_token_enc, "
                "refresh_token_enc IS NOT NULL, COALESCE(token_key_id, ''), COALESCE(status_reason, '') "
                "FROM connections WHERE connection_id = $1",
                1, p, e);
    if (!r)
        goto out;
    if (pg_res_rows(r) == 0) {
        err_set(e, ERR_NOT_FOUND, false, "unknown connection \"%s\"", connection_id);
        goto out;
    }
    copy_str(s->connection_id, sizeof s->connection_id, pg_res_get(r, 0, 0));
    copy_str(s->org_id, sizeof s->org_id, pg_res_get(r, 0, 1));
    copy_str(s->user_id, sizeof s->user_id, pg_res_get(r, 0, 2));
    copy_str(s->status, sizeof s->status, pg_res_get(r, 0, 3));
    copy_str(s->instance_url, sizeof s->instance_url, pg_res_get(r, 0, 4));
    copy_str(s->sf_org_id, sizeof s->sf_org_id, pg_res_get(r, 0, 5));
    copy_str(s->sf_user_id, sizeof s->sf_user_id, pg_res_get(r, 0, 6));
    s->token_version = strtoll(pg_res_get(r, 0, 7), NULL, 10);
    if (strcmp(s->status, "connected") != 0) {
        status_error(s->connection_id, s->status, pg_res_get(r, 0, 11), e);
        goto out;
    }
    bool has_refresh = !strcmp(pg_res_get(r, 0, 9), "t");
    if (pg_res_isnull(r, 0, 8)) {
        if (!has_refresh) {
            err_set(e, ERR_CONNECTION_EXPIRED, false,
                    "connection \"%s\" has no stored tokens; the user must connect to Salesforce", s->connection_id);
            goto out;
        }
        /* a refresh token only (e.g. imported): get an access token now */
        pg_res_free(&r);
        if (!s->instance_url[0]) {
            err_set(e, ERR_CONNECTION_EXPIRED, false,
                    "connection \"%s\" has no instance url; the user must connect to Salesforce", s->connection_id);
            goto out;
        }
        ok = conn_refresh(s, e);
        goto out;
    }
    if (!s->instance_url[0]) {
        err_set(e, ERR_CONNECTION_EXPIRED, false,
                "connection \"%s\" has no instance url; the user must connect to Salesforce", s->connection_id);
        goto out;
    }
    s->access_token =
        open_token(cfg, s->connection_id, "access token", pg_res_get(r, 0, 8), pg_res_get(r, 0, 10), e);
    if (!s->access_token)
        goto out;
    apply_session(s);
    ok = true;
out:
    pg_res_free(&r);
    if (!ok)
        wipe_free(&s->access_token);
    return ok;
}

void conn_close(struct conn_session *s)
{
    if (!s)
        return;
    if (s->usage_dirty && s->pg && !pg_in_tx(s->pg)) {
        struct err e = ERR_INIT;
        if (!conn_flush_usage(s, &e))
            log_warn("could not record api usage of connection \"%s\": %s", s->connection_id, e.msg);
    }
    if (s->sf)
        sf_client_on_usage(s->sf, NULL, NULL);
    wipe_free(&s->access_token);
    s->sf = NULL;
    s->pg = NULL;
}

bool conn_store_tokens(struct pg *pg, const struct cfg *cfg, const char *connection_id, const char *access_token,
                       const char *refresh_token, const char *instance_url, const char *issued_at_ms,
                       struct err *e)
{
    unsigned char key[32];
    char *access_enc = NULL, *refresh_enc = NULL;
    struct pg_res *r = NULL;
    bool ok = false;
    if (!pg || !cfg || !connection_id || !access_token || !*access_token)
        return err_set(e, ERR_INTERNAL, false, "cannot store tokens: missing argument");
    if (!conn_key(cfg, key, e))
        return false;
    const char *kid = key_id(cfg);
    access_enc = crypto_seal(key, kid, access_token, e);
    if (!access_enc)
        goto out;
    if (refresh_token && *refresh_token) {
        refresh_enc = crypto_seal(key, kid, refresh_token, e);
        if (!refresh_enc)
            goto out;
    }
    /* issued_at: Salesforce sends milliseconds since the epoch as a string */
    const char *issued = NULL;
    if (issued_at_ms && *issued_at_ms && strspn(issued_at_ms, "0123456789") == strlen(issued_at_ms) &&
        strlen(issued_at_ms) <= 15)
        issued = issued_at_ms;
    const char *p[6] = {connection_id, access_enc, refresh_enc, kid,
                        instance_url && *instance_url ? instance_url : NULL, issued};
    /* Keeping the stored refresh token is only sound when it was sealed with
     * the same key id (one token_key_id column covers both ciphertexts). */
    r = pg_exec(pg,
                "UPDATE connections SET access_token_enc = $2::text, "
                "refresh_token_enc = COALESCE($3::text, refresh_token_enc), token_key_id = $4::text, "
                "instance_url = COALESCE($5::text, instance_url), "
                "issued_at = COALESCE(to_timestamp($6::bigint / 1000.0), now()), "
                "token_version = token_version + 1, last_refresh_at = now(), last_error = NULL, "
                "updated_at = now() "
                "WHERE connection_id = $1::uuid AND ($3::text IS NOT NULL OR refresh_token_enc IS NULL "
                "OR token_key_id IS NULL OR token_key_id = $4::text) "
                "RETURNING token_version",
                6, p, e);
    if (!r)
        goto out;
    if (pg_res_rows(r) != 1) {
        struct pg_res *c = pg_exec(pg, "SELECT COALESCE(token_key_id, '') FROM connections WHERE connection_id = $1",
                                   1, p, e);
        if (c && pg_res_rows(c) == 1)
            err_set(e, ERR_CONFIG, false,
                    "cannot store the access token of connection \"%s\": its refresh token is sealed with key id "
                    "\"%s\", not \"%s\"; the user must reconnect",
                    connection_id, pg_res_get(c, 0, 0), kid);
        else if (c)
            err_set(e, ERR_NOT_FOUND, false, "cannot store tokens: unknown connection \"%s\"", connection_id);
        pg_res_free(&c);
        goto out;
    }
    ok = true;
out:
    memset(key, 0, sizeof key);
    pg_res_free(&r);
    free(access_enc);
    free(refresh_enc);
    return ok;
}

/* Outside any transaction: remember the last refresh failure for `sfbridge status`. */
static void note_error(struct conn_session *s, const struct err *why)
{
    char msg[400];
    snprintf(msg, sizeof msg, "%s: %s", err_public_code(why), why->msg);
    log_redact(msg, sizeof msg);
    const char *p[2] = {s->connection_id, msg};
    struct err e = ERR_INIT;
    if (!pg_run(s->pg, "UPDATE connections SET last_error = $2, updated_at = now() WHERE connection_id = $1", 2, p,
                &e))
        log_warn("could not record the refresh error of connection \"%s\": %s", s->connection_id, e.msg);
}

bool conn_refresh(struct conn_session *s, struct err *e)
{
    struct pg_res *r = NULL;
    char *refresh = NULL, *adopted = NULL;
    struct sf_token t;
    struct err re = ERR_INIT;
    bool ok = false, in_tx = false, note = false;
    memset(&t, 0, sizeof t);

    if (!s || !s->pg || !s->cfg || !s->connection_id[0])
        return err_set(e, ERR_INTERNAL, false, "cannot refresh: session not open");
    if (pg_in_tx(s->pg))
        return err_set(e, ERR_INTERNAL, false, "cannot refresh connection \"%s\" inside a transaction",
                       s->connection_id);
    s->refreshed = true;
    if (!pg_begin(s->pg, e))
        goto out;
    in_tx = true;
    const char *p[1] = {s->connection_id};
    /* the row lock is the single flight: every other refresher of this
     * connection, in any process, waits here */
    r = pg_exec(s->pg,
                "SELECT status, token_version, access_token_enc, refresh_token_enc, COALESCE(token_key_id, ''), "
                "COALESCE(instance_url, ''), COALESCE(status_reason, '') "
                "FROM connections WHERE connection_id = $1 FOR UPDATE",
                1, p, e);
    if (!r)
        goto out;
    if (pg_res_rows(r) == 0) {
        err_set(e, ERR_NOT_FOUND, false, "unknown connection \"%s\"", s->connection_id);
        goto out;
    }
    const char *status = pg_res_get(r, 0, 0);
    copy_str(s->status, sizeof s->status, status);
    if (strcmp(status, "connected") != 0) {
        /* somebody else flipped it (expired by a concurrent refresh, or revoked) */
        status_error(s->connection_id, status, pg_res_get(r, 0, 6), e);
        goto out;
    }
    long long version = strtoll(pg_res_get(r, 0, 1), NULL, 10);
    const char *kid = pg_res_get(r, 0, 4);
    if (pg_res_get(r, 0, 5)[0])
        copy_str(s->instance_url, sizeof s->instance_url, pg_res_get(r, 0, 5));
    if (version != s->token_version && !pg_res_isnull(r, 0, 2)) {
        /* another process refreshed while we waited: use its token */
        adopted = open_token(s->cfg, s->connection_id, "access token", pg_res_get(r, 0, 2), kid, e);
        if (!adopted)
            goto out;
        if (!pg_commit(s->pg, e))
            goto out;
        in_tx = false;
        wipe_free(&s->access_token);
        s->access_token = adopted;
        adopted = NULL;
        s->token_version = version;
        apply_session(s);
        log_info("connection \"%s\": using the token another process refreshed (version %lld)", s->connection_id,
                 version);
        ok = true;
        goto out;
    }
    if (pg_res_isnull(r, 0, 3)) {
        err_set(e, ERR_CONNECTION_EXPIRED, false,
                "connection \"%s\" has no refresh token; the user must reconnect to Salesforce", s->connection_id);
        goto out;
    }
    if (!s->sf) {
        err_set(e, ERR_INTERNAL, false, "cannot refresh connection \"%s\": no salesforce client", s->connection_id);
        goto out;
    }
    refresh = open_token(s->cfg, s->connection_id, "refresh token", pg_res_get(r, 0, 3), kid, e);
    if (!refresh)
        goto out;
    pg_res_free(&r);

    const char *kv[] = {"grant_type",    "refresh_token",         "refresh_token", refresh,
                        "client_id",     s->cfg->sf_client_id,    "client_secret", s->cfg->sf_client_secret,
                        "format",        "json",                  NULL};
    if (!sf_oauth_token(s->sf, s->cfg->sf_login_url, kv, &t, &re)) {
        if (re.code == ERR_AUTH && !strcmp(re.sf_code, "invalid_grant")) {
            /* the refresh token is dead: expire the connection (data stays) */
            char reason[256];
            snprintf(reason, sizeof reason, "invalid_grant: %s", re.msg[0] ? re.msg : "refresh token rejected");
            log_redact(reason, sizeof reason);
            const char *u[2] = {s->connection_id, reason};
            if (!pg_run(s->pg,
                        "UPDATE connections SET status = 'expired', status_reason = $2, last_error = $2, "
                        "updated_at = now() WHERE connection_id = $1",
                        2, u, e))
                goto out;
            if (!pg_commit(s->pg, e))
                goto out;
            in_tx = false;
            copy_str(s->status, sizeof s->status, "expired");
            s->became_expired = true;
            copy_str(s->expired_reason, sizeof s->expired_reason, reason);
            wipe_free(&s->access_token);
            log_warn("connection \"%s\" expired: %s", s->connection_id, reason);
            err_set(e, ERR_CONNECTION_EXPIRED, false,
                    "connection \"%s\" has expired (%s); the user must reconnect to Salesforce", s->connection_id,
                    reason);
            goto out;
        }
        err_replace(e, &re);
        note = true;
        goto out;
    }
    if (t.signature && !sf_token_verify(&t, s->cfg->sf_client_secret, e)) {
        note = true;
        goto out;
    }
    /* with rotation the new refresh token goes in the same UPDATE as the access token */
    if (!conn_store_tokens(s->pg, s->cfg, s->connection_id, t.access_token, t.refresh_token, t.instance_url,
                           t.issued_at, e))
        goto out;
    const char *v[1] = {s->connection_id};
    r = pg_exec(s->pg, "SELECT token_version FROM connections WHERE connection_id = $1", 1, v, e);
    if (!r || pg_res_rows(r) != 1)
        goto out;
    long long nv = strtoll(pg_res_get(r, 0, 0), NULL, 10);
    if (!pg_commit(s->pg, e))
        goto out;
    in_tx = false;
    wipe_free(&s->access_token);
    s->access_token = t.access_token;
    t.access_token = NULL;
    s->token_version = nv;
    if (t.instance_url && *t.instance_url)
        copy_str(s->instance_url, sizeof s->instance_url, t.instance_url);
    apply_session(s);
    log_info("connection \"%s\": access token refreshed (version %lld%s)", s->connection_id, nv,
             t.refresh_token ? ", refresh token rotated" : "");
    ok = true;
out:
    if (in_tx)
        pg_rollback(s->pg);
    if (note && err_is_set(e))
        note_error(s, e);
    pg_res_free(&r);
    wipe_free(&refresh);
    wipe_free(&adopted);
    sf_token_cleanup(&t);
    return ok;
}

bool conn_retry_after_auth_error(struct conn_session *s, struct err *e)
{
    if (!s || !e || e->code != ERR_AUTH || strcmp(e->sf_code, "INVALID_SESSION_ID") != 0 || s->refreshed)
        return false;
    struct err re = ERR_INIT;
    log_info("connection \"%s\": session rejected (INVALID_SESSION_ID); refreshing once", s->connection_id);
    if (!conn_refresh(s, &re)) {
        err_replace(e, &re);
        return false;
    }
    err_clear(e);
    return true;
}

static void maybe_flush(struct conn_session *s)
{
    if (!s->usage_dirty || !s->pg || pg_in_tx(s->pg))
        return;
    long long now = mono_ms();
    if (s->usage_flushed_ms && now - s->usage_flushed_ms < CONN_USAGE_FLUSH_MS)
        return;
    struct err e = ERR_INIT;
    if (!conn_flush_usage(s, &e))
        log_warn("could not record api usage of connection \"%s\": %s", s->connection_id, e.msg);
}

bool conn_call(struct conn_session *s, const char *method, const char *path, const char *content_type,
               const char *body, size_t len, struct sf_response *out, struct err *e)
{
    if (!s || !s->sf)
        return err_set(e, ERR_INTERNAL, false, "cannot call salesforce: session not open");
    struct err ce = ERR_INIT;
    bool ok = sf_call(s->sf, method, path, content_type, body, len, out, &ce);
    if (!ok && conn_retry_after_auth_error(s, &ce)) {
        sf_response_cleanup(out);
        ok = sf_call(s->sf, method, path, content_type, body, len, out, &ce);
    }
    maybe_flush(s);
    if (!ok)
        err_replace(e, &ce);
    return ok;
}

bool conn_flush_usage(struct conn_session *s, struct err *e)
{
    if (!s || !s->pg)
        return err_set(e, ERR_INTERNAL, false, "cannot record api usage: session not open");
    if (!s->usage_dirty)
        return true;
    if (!s->sf_org_id[0]) {
        s->usage_dirty = false; /* nothing to key it by */
        return true;
    }
    char used[24], limit[24];
    snprintf(used, sizeof used, "%lld", s->usage_used);
    snprintf(limit, sizeof limit, "%lld", s->usage_limit);
    const char *p[3] = {s->sf_org_id, used, limit};
    if (!pg_run(s->pg,
                "INSERT INTO api_usage (sf_org_id, used, api_limit, as_of) VALUES ($1, $2, $3, now()) "
                "ON CONFLICT (sf_org_id) DO UPDATE SET used = excluded.used, api_limit = excluded.api_limit, "
                "as_of = excluded.as_of WHERE api_usage.as_of <= excluded.as_of",
                3, p, e))
        return false;
    s->usage_dirty = false;
    s->usage_flushed_ms = mono_ms();
    if (s->usage_limit > 0)
        metrics_gauge_l("sfbridge_api_usage_ratio", "sf_org", s->sf_org_id,
                        (double)s->usage_used / (double)s->usage_limit);
    return true;
}

void conn_sf_options(const struct cfg *cfg, struct sf_options *o)
{
    sf_options_init(o);
    if (!cfg)
        return;
    if (cfg->sf_api_version && *cfg->sf_api_version)
        o->api_version = cfg->sf_api_version;
    if (cfg->sf_timeout_ms > 0)
        o->timeout_ms = cfg->sf_timeout_ms;
    if (cfg->sf_ca_file && *cfg->sf_ca_file)
        o->ca_file = cfg->sf_ca_file;
    if (cfg->max_retry_backoff_ms > 0)
        o->max_backoff_ms = cfg->max_retry_backoff_ms;
}

struct json_object *conn_status_event(const char *org_id, const char *connection_id, const char *request_id,
                                      const char *status, const char *reason, const char *instance_url)
{
    char id[40], ts[40];
    json_uuid4(id, sizeof id);
    json_now_rfc3339(ts, sizeof ts);
    struct json_object *ev = json_object_new_object();
    json_add_str(ev, "message_id", id);
    if (request_id && *request_id)
        json_add_str(ev, "request_id", request_id);
    json_add_str(ev, "org_id", org_id);
    json_add_str(ev, "connection_id", connection_id);
    json_add_str(ev, "created_at", ts);
    json_add_str(ev, "status", status);
    if (reason && *reason) {
        char r[1025];
        snprintf(r, sizeof r, "%s", reason);
        json_add_str(ev, "reason", r);
    } else if (strcmp(status, "connected") != 0) {
        json_add_str(ev, "reason", status);
    }
    if (instance_url && *instance_url)
        json_add_str(ev, "instance_url", instance_url);
    return ev;
}
