/*
 * token: the token.refresh handler of sfbridge-token.
 *
 * grant authorization_code (the end of the OAuth web-server flow):
 *   BEGIN; lock the oauth_states row (unknown / other org / used / expired ->
 *   INVALID_STATE, nothing changes); exchange the code with the stored PKCE
 *   verifier and redirect_uri; verify the response signature; create or
 *   update the (org, user) connection (a reconnect keeps its connection_id),
 *   store the tokens encrypted, mark the state used, record the message in
 *   processed_messages; COMMIT; emit connection.status connected.
 *   A retriable failure (token endpoint unreachable, PostgreSQL) rolls back,
 *   so the state stays usable for the retry; a permanent one (invalid code,
 *   bad signature) burns the state (the code was spent at Salesforce) and
 *   changes no connection.
 * grant refresh_token: connection gate, then conn_refresh (single-flight);
 *   invalid_grant expires the connection and emits connection.status expired.
 *
 * Tokens, codes and verifiers are never logged.
 */
#include "token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "json.h"
#include "log.h"
#include "pg.h"
#include "sf.h"

struct token_ctx {
    struct sf_client *sf;
};

bool token_init(struct deps *d, struct err *e)
{
    unsigned char key[32];
    if (!conn_key(d->cfg, key, e))
        return false;
    memset(key, 0, sizeof key);
    struct token_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return err_set(e, ERR_NOMEM, false, "could not allocate the token worker state");
    c->sf = worker_sf_client(d, e); /* stops backing off when the worker is asked to stop */
    if (!c->sf) {
        free(c);
        return false;
    }
    d->ctx = c;
    return true;
}

void token_cleanup(struct deps *d)
{
    struct token_ctx *c = d->ctx;
    if (!c)
        return;
    sf_client_free(&c->sf);
    free(c);
    d->ctx = NULL;
}

static struct json_object *error_obj(const struct err *e)
{
    struct json_object *eo = json_object_new_object();
    json_add_str(eo, "code", err_public_code(e));
    json_add_str(eo, "message", e->msg);
    return eo;
}

struct json_object *token_failure_event(const struct job *job, const struct err *e)
{
    struct json_object *ev = worker_event_new(job);
    bool known = job->connection_id && *job->connection_id;
    if (known && e->code == ERR_CONNECTION_EXPIRED) {
        json_add_str(ev, "status", "expired");
        json_add_str(ev, "reason", e->msg[0] ? e->msg : "expired");
    } else if (known && e->code == ERR_CONNECTION_DISABLED) {
        json_add_str(ev, "status", "disabled");
        json_add_str(ev, "reason", e->msg[0] ? e->msg : "disabled");
    } else {
        json_add_str(ev, "status", "failed");
    }
    json_object_object_add(ev, "error", error_obj(e));
    return ev;
}

/* Permanent failure of a code exchange: burn the state (the code is spent at
 * Salesforce) in its own transaction, change nothing else. */
static void burn_state(struct deps *d, const char *state)
{
    struct err e = ERR_INIT;
    if (pg_in_tx(d->pg))
        pg_rollback(d->pg);
    const char *p[1] = {state};
    if (!pg_run(d->pg, "UPDATE oauth_states SET used_at = now() WHERE state = $1 AND used_at IS NULL", 1, p, &e))
        log_warn("could not mark the oauth state as used: %s", e.msg);
}

static bool handle_code(struct job *job, struct deps *d, struct json_object **event, struct err *e)
{
    struct token_ctx *c = d->ctx;
    struct pg_res *r = NULL;
    struct sf_token t;
    bool ok = false, burn = false;
    char conn_id[40] = "", sf_org[24], sf_user[24];
    char *verifier = NULL;
    memset(&t, 0, sizeof t);
    const char *state = json_get_str(job->msg, "state");
    const char *code = json_get_str(job->msg, "code");
    const char *msg_redirect = json_get_str(job->msg, "redirect_uri");
    if (!state || !code)
        return err_set(e, ERR_INVALID_MESSAGE, false, "a code exchange needs \"code\" and \"state\"");

    if (!pg_begin(d->pg, e))
        goto out;
    const char *p[1] = {state};
    r = pg_exec(d->pg,
                "SELECT org_id, user_id, code_verifier, redirect_uri, expires_at <= now(), used_at IS NOT NULL, "
                "to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                "FROM oauth_states WHERE state = $1 FOR UPDATE",
                1, p, e);
    if (!r)
        goto out;
    if (pg_res_rows(r) == 0) {
        err_set(e, ERR_INVALID_STATE, false,
                "cannot finish connect for org \"%s\": unknown oauth state (not issued by `sfbridge connect start`)",
                job->org_id);
        goto out;
    }
    if (strcmp(pg_res_get(r, 0, 0), job->org_id) != 0) {
        err_set(e, ERR_INVALID_STATE, false, "cannot finish connect for org \"%s\": the oauth state was issued for "
                                             "another org",
                job->org_id);
        goto out;
    }
    if (!strcmp(pg_res_get(r, 0, 5), "t")) {
        err_set(e, ERR_INVALID_STATE, false,
                "cannot finish connect for org \"%s\": the oauth state was already used; start a new connect",
                job->org_id);
        goto out;
    }
    if (!strcmp(pg_res_get(r, 0, 4), "t")) {
        err_set(e, ERR_INVALID_STATE, false,
                "cannot finish connect for org \"%s\": the oauth state expired at %s; start a new connect",
                job->org_id, pg_res_get(r, 0, 6));
        goto out;
    }
    const char *redirect = pg_res_get(r, 0, 3);
    if (msg_redirect && strcmp(msg_redirect, redirect) != 0) {
        err_set(e, ERR_INVALID_STATE, false,
                "cannot finish connect for org \"%s\": redirect_uri differs from the one the state was issued for",
                job->org_id);
        goto out;
    }
    char user_id[256];
    snprintf(user_id, sizeof user_id, "%s", pg_res_get(r, 0, 1));
    char redirect_uri[2100];
    snprintf(redirect_uri, sizeof redirect_uri, "%s", redirect);
    verifier = strdup(pg_res_get(r, 0, 2));
    pg_res_free(&r);
    if (!verifier) {
        err_set(e, ERR_NOMEM, true, "could not finish connect: out of memory");
        goto out;
    }

    const char *kv[] = {"grant_type",    "authorization_code",      "code",         code,
                        "client_id",     d->cfg->sf_client_id,      "client_secret", d->cfg->sf_client_secret,
                        "redirect_uri",  redirect_uri,              "code_verifier", verifier,
                        "format",        "json",                    NULL};
    struct err xe = ERR_INIT;
    if (!sf_oauth_token(c->sf, d->cfg->sf_login_url, kv, &t, &xe)) {
        err_set_sf(e, xe.code, xe.retriable, xe.sf_code[0] ? xe.sf_code : NULL,
                   "%s exchange the authorization code for org \"%s\": %s", xe.retriable ? "could not" : "cannot",
                   job->org_id, xe.msg);
        burn = !xe.retriable;
        goto out;
    }
    if (!sf_token_verify(&t, d->cfg->sf_client_secret, e)) {
        burn = true;
        goto out;
    }
    if (!t.id || !sf_parse_identity_url(t.id, sf_org, sf_user)) {
        err_set(e, ERR_AUTH, false,
                "cannot finish connect for org \"%s\": the token response has no valid identity url", job->org_id);
        burn = true;
        goto out;
    }
    if (!t.refresh_token)
        log_warn("connect of org \"%s\": Salesforce returned no refresh token (is the refresh_token scope granted?)",
                 job->org_id);

    /* one connection per (org, user): a reconnect keeps its connection_id */
    const char *u[5] = {job->org_id, user_id, t.instance_url, sf_org, sf_user};
    r = pg_exec(d->pg,
                "INSERT INTO connections (org_id, user_id, status, instance_url, sf_org_id, sf_user_id, connected_at) "
                "VALUES ($1, $2, 'connected', $3, $4, $5, now()) "
                "ON CONFLICT (org_id, user_id) DO UPDATE SET status = 'connected', "
                "instance_url = excluded.instance_url, "
                "sf_org_id = excluded.sf_org_id, sf_user_id = excluded.sf_user_id, connected_at = now(), "
                "status_reason = NULL, last_error = NULL, updated_at = now() "
                "RETURNING connection_id::text, (xmax = 0)",
                5, u, e);
    if (!r || pg_res_rows(r) != 1)
        goto out;
    snprintf(conn_id, sizeof conn_id, "%s", pg_res_get(r, 0, 0));
    bool created = !strcmp(pg_res_get(r, 0, 1), "t");
    pg_res_free(&r);
    if (!conn_store_tokens(d->pg, d->cfg, conn_id, t.access_token, t.refresh_token, t.instance_url, t.issued_at, e))
        goto out;
    if (!pg_run(d->pg, "UPDATE oauth_states SET used_at = now() WHERE state = $1", 1, p, e))
        goto out;

    *event = worker_event_new(job);
    json_add_str(*event, "connection_id", conn_id);
    json_add_str(*event, "status", "connected");
    json_add_str(*event, "instance_url", t.instance_url);
    /* connection.status goes into the inbox with the result: emitted after the commit, again on redelivery */
    struct json_object *st =
        conn_status_event(job->org_id, conn_id, job->message_id, "connected", NULL, t.instance_url);
    worker_queue_event(job, "connection.status", conn_id, st);
    json_object_put(st);
    if (!worker_mark_processed(d, job, "token.refreshed", *event, e) || !pg_commit(d->pg, e))
        goto out;
    log_info("org \"%s\" user \"%s\": connection %s %s (salesforce org %s, user %s)", job->org_id, user_id, conn_id,
             created ? "created" : "reconnected", sf_org, sf_user);
    ok = true;
out:
    if (!ok) {
        if (pg_in_tx(d->pg))
            pg_rollback(d->pg);
        if (burn)
            burn_state(d, state);
        if (*event) {
            json_object_put(*event);
            *event = NULL;
        }
    }
    pg_res_free(&r);
    if (verifier) {
        memset(verifier, 0, strlen(verifier));
        free(verifier);
    }
    sf_token_cleanup(&t);
    return ok;
}

static bool handle_refresh(struct job *job, struct deps *d, struct json_object **event, struct err *e)
{
    struct token_ctx *c = d->ctx;
    struct conn_session s;
    bool ok = false, opened = false;
    memset(&s, 0, sizeof s);
    /* fail fast (no Salesforce call) for another org's, an expired or a disabled connection */
    if (!worker_gate(d, job, true, e))
        return false;
    if (!conn_open(&s, d->pg, d->cfg, c->sf, job->connection_id, e))
        goto out;
    opened = true;
    if (!s.refreshed && !conn_refresh(&s, e))
        goto out;
    *event = worker_event_new(job);
    json_add_str(*event, "status", "connected");
    json_add_str(*event, "instance_url", s.instance_url);
    ok = true;
out:
    if (s.became_expired) {
        /* the job fails permanently (CONNECTION_EXPIRED): the loop records its failure with this event queued */
        struct json_object *st =
            conn_status_event(job->org_id, s.connection_id, job->message_id, "expired", s.expired_reason, NULL);
        worker_queue_event(job, "connection.status", s.connection_id, st);
        json_object_put(st);
    }
    if (opened || s.pg)
        conn_close(&s);
    return ok;
}

bool token_handle(struct job *job, struct deps *d, struct json_object **event, struct err *e)
{
    const char *grant = json_get_str(job->msg, "grant");
    if (grant && !strcmp(grant, "authorization_code"))
        return handle_code(job, d, event, e);
    if (grant && !strcmp(grant, "refresh_token"))
        return handle_refresh(job, d, event, e);
    return err_set(e, ERR_INVALID_MESSAGE, false, "unknown grant \"%s\"", grant ? grant : "");
}
