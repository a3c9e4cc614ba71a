/*
 * sfbridge connect: the OAuth 2.0 web-server flow (PKCE) for operators.
 *   connect start --org ORG --user USER --redirect-uri URI [--json]
 *       records an oauth_states row (random state, PKCE verifier, 10 min
 *       expiry) and prints the authorize URL for the user's browser;
 *   connect finish --code C --state S
 *       publishes token.refresh (grant authorization_code), what the upstream
 *       web app does on the OAuth callback; sfbridge-token does the exchange;
 *   connect revoke --connection ID [--by ADMIN]
 *       revokes the tokens at Salesforce, wipes them and marks the connection
 *       disabled (connection.status disabled is published).
 * The PKCE verifier, codes and tokens are never printed.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "conn.h"
#include "crypto.h"
#include "json.h"
#include "kafka.h"
#include "pg.h"
#include "sf.h"

#define STATE_TTL "10 minutes"

static void usage(FILE *f)
{
    fprintf(f, "usage: sfbridge connect start --org ORG --user USER --redirect-uri URI [--json]\n"
               "       sfbridge connect finish --code CODE --state STATE\n"
               "       sfbridge connect revoke --connection ID [--by ADMIN]\n");
}

static bool redirect_ok(const char *u)
{
    if (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0)
        return false;
    for (const char *p = u; *p; p++)
        if (*p <= ' ' || *p > '~')
            return false;
    return strlen(u) <= 2048;
}

static int start(struct cli *cli, int argc, char **argv)
{
    const char *org = cli_opt(argc, argv, "--org"), *user = cli_opt(argc, argv, "--user");
    const char *redirect = cli_opt(argc, argv, "--redirect-uri");
    if (!org || !user || !*user || !redirect) {
        cli_fail("connect start needs --org, --user and --redirect-uri");
        usage(stderr);
        return 64;
    }
    if (!redirect_ok(redirect)) {
        cli_fail("invalid --redirect-uri \"%s\": must be an http(s) URL without spaces", redirect);
        return 64;
    }
    char state[64], verifier[64], challenge[64];
    if (!crypto_random_b64url(32, state, sizeof state) || !crypto_random_b64url(32, verifier, sizeof verifier)) {
        cli_fail("could not generate random state: the CSPRNG failed");
        return 1;
    }
    crypto_pkce_challenge(verifier, challenge, sizeof challenge);

    struct pg *db = cli_db(cli);
    if (!db)
        return 1;
    struct err e = ERR_INIT;
    int rc = 1;
    char *url = NULL, *enc_client = NULL, *enc_redirect = NULL;
    const char *p1[1] = {org};
    struct pg_res *r = pg_exec(db, "SELECT salesforce_enabled FROM organizations WHERE org_id = $1", 1, p1, &e);
    if (!r) {
        cli_fail("could not look up org \"%s\": %s", org, e.msg);
        goto out;
    }
    if (pg_res_rows(r) == 0) {
        cli_fail("unknown org \"%s\" (a platform admin enables it with `sfbridge org enable`)", org);
        rc = 2;
        goto out;
    }
    if (strcmp(pg_res_get(r, 0, 0), "t") != 0) {
        cli_fail("cannot connect org \"%s\": its Salesforce integration is not enabled (INTEGRATION_DISABLED)", org);
        goto out;
    }
    pg_res_free(&r);
    const char *p[5] = {state, org, user, verifier, redirect};
    r = pg_exec(db,
                "INSERT INTO oauth_states (state, org_id, user_id, code_verifier, redirect_uri, expires_at) "
                "VALUES ($1, $2, $3, $4, $5, now() + interval '" STATE_TTL "') "
                "RETURNING to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
                5, p, &e);
    if (!r || pg_res_rows(r) != 1) {
        cli_fail("could not record the oauth state: %s", e.msg);
        goto out;
    }
    enc_client = sf_urlencode(cli->cfg.sf_client_id);
    enc_redirect = sf_urlencode(redirect);
    if (!enc_client || !enc_redirect) {
        cli_fail("could not build the authorize url: out of memory");
        goto out;
    }
    const char *login = cli->cfg.sf_login_url;
    size_t n = strlen(login);
    while (n > 0 && login[n - 1] == '/')
        n--;
    size_t cap = n + strlen(enc_client) + strlen(enc_redirect) + 512;
    url = malloc(cap);
    if (!url) {
        cli_fail("could not build the authorize url: out of memory");
        goto out;
    }
    snprintf(url, cap,
             "%.*s/services/oauth2/authorize?response_type=code&client_id=%s&redirect_uri=%s"
             "&scope=api%%20refresh_token&code_challenge=%s&code_challenge_method=S256&state=%s",
             (int)n, login, enc_client, enc_redirect, challenge, state);
    if (cli->json) {
        struct json_object *o = json_object_new_object();
        json_add_str(o, "authorize_url", url);
        json_add_str(o, "state", state);
        json_add_str(o, "org_id", org);
        json_add_str(o, "user_id", user);
        json_add_str(o, "expires_at", pg_res_get(r, 0, 0));
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
    } else {
        printf("%s\n", url);
        fprintf(stderr, "open this URL as %s to connect org %s to Salesforce (valid until %s)\n", user, org,
                pg_res_get(r, 0, 0));
    }
    rc = 0;
out:
    memset(verifier, 0, sizeof verifier);
    pg_res_free(&r);
    pg_close(&db);
    free(url);
    free(enc_client);
    free(enc_redirect);
    return rc;
}

static bool publish(struct cli *cli, const char *logical, const char *key, struct json_object *msg, struct err *e)
{
    char topic[256], client[64];
    cfg_topic(&cli->cfg, logical, topic, sizeof topic);
    snprintf(client, sizeof client, "sfbridge-cli-%d", (int)getpid());
    struct kafka_producer *p = kafka_producer_new(cli->cfg.kafka_brokers, client, e);
    if (!p)
        return false;
    const char *payload = json_str(msg);
    bool ok = kafka_produce(p, topic, key, payload, strlen(payload), NULL, 0, 30000, e);
    kafka_producer_free(&p);
    return ok;
}

static int finish(struct cli *cli, int argc, char **argv)
{
    const char *code = cli_opt(argc, argv, "--code"), *state = cli_opt(argc, argv, "--state");
    if (!code || !*code || !state || !*state) {
        cli_fail("connect finish needs --code and --state");
        usage(stderr);
        return 64;
    }
    struct pg *db = cli_db(cli);
    if (!db)
        return 1;
    struct err e = ERR_INIT;
    int rc = 1;
    struct json_object *msg = NULL;
    const char *p[1] = {state};
    /* the message needs the org; the worker does the real checks (used, expired) */
    struct pg_res *r = pg_exec(db, "SELECT org_id FROM oauth_states WHERE state = $1", 1, p, &e);
    if (!r) {
        cli_fail("could not look up the oauth state: %s", e.msg);
        goto out;
    }
    if (pg_res_rows(r) == 0) {
        cli_fail("unknown oauth state (INVALID_STATE): start a new connect with `sfbridge connect start`");
        rc = 2;
        goto out;
    }
    char id[40], ts[40], by[80];
    json_uuid4(id, sizeof id);
    json_now_rfc3339(ts, sizeof ts);
    const char *who = getenv("USER");
    snprintf(by, sizeof by, "cli:%s", who && *who ? who : "operator");
    msg = json_object_new_object();
    json_add_str(msg, "message_id", id);
    json_add_str(msg, "org_id", pg_res_get(r, 0, 0));
    json_add_str(msg, "created_at", ts);
    json_add_str(msg, "grant", "authorization_code");
    json_add_str(msg, "code", code);
    json_add_str(msg, "state", state);
    json_add_str(msg, "requested_by", by);
    if (!publish(cli, "token.refresh", pg_res_get(r, 0, 0), msg, &e)) {
        cli_fail("could not publish token.refresh: %s", e.msg);
        goto out;
    }
    if (cli->json)
        printf("{\"message_id\":\"%s\",\"org_id\":\"%s\"}\n", id, pg_res_get(r, 0, 0));
    else
        printf("published token.refresh %s for org %s; sfbridge-token answers on token.refreshed\n", id,
               pg_res_get(r, 0, 0));
    rc = 0;
out:
    json_object_put(msg);
    pg_res_free(&r);
    pg_close(&db);
    return rc;
}

static int revoke_cmd(struct cli *cli, int argc, char **argv)
{
    const char *id = cli_opt(argc, argv, "--connection");
    const char *by = cli_opt(argc, argv, "--by");
    if (!id || !*id) {
        cli_fail("connect revoke needs --connection ID");
        usage(stderr);
        return 64;
    }
    if (!json_is_uuid(id)) {
        cli_fail("unknown connection \"%s\": not a uuid", id);
        return 2;
    }
    unsigned char key[32];
    struct err e = ERR_INIT;
    if (!conn_key(&cli->cfg, key, &e)) {
        cli_fail("%s", e.msg);
        return 78;
    }
    struct pg *db = cli_db(cli);
    if (!db) {
        memset(key, 0, sizeof key);
        return 1;
    }
    int rc = 1;
    char *token = NULL;
    struct sf_client *sf = NULL;
    struct json_object *ev = NULL;
    const char *p[1] = {id};
    struct pg_res *r = pg_exec(db,
                               "SELECT org_id, status, refresh_token_enc, access_token_enc, "
                               "COALESCE(token_key_id, ''), COALESCE(instance_url, '') "
                               "FROM connections WHERE connection_id = $1",
                               1, p, &e);
    if (!r) {
        cli_fail("could not look up connection \"%s\": %s", id, e.msg);
        goto out;
    }
    if (pg_res_rows(r) == 0) {
        cli_fail("unknown connection \"%s\"", id);
        rc = 2;
        goto out;
    }
    char org[80];
    snprintf(org, sizeof org, "%s", pg_res_get(r, 0, 0));
    /* revoking the refresh token kills its access tokens too */
    int col = !pg_res_isnull(r, 0, 2) ? 2 : !pg_res_isnull(r, 0, 3) ? 3 : -1;
    if (col >= 0) {
        const char *kid = pg_res_get(r, 0, 4)[0] ? pg_res_get(r, 0, 4) : cli->cfg.token_key_id;
        token = crypto_open(key, kid, pg_res_get(r, 0, col), &e);
        if (!token) {
            cli_fail("cannot decrypt the tokens of connection \"%s\": %s", id, e.msg);
            rc = 78;
            goto out;
        }
        struct sf_options o;
        conn_sf_options(&cli->cfg, &o);
        sf = sf_client_new(&o, &e);
        if (!sf) {
            cli_fail("%s", e.msg);
            goto out;
        }
        if (!sf_oauth_revoke(sf, cli->cfg.sf_login_url, token, &e)) {
            if (e.code == ERR_AUTH && !e.retriable) {
                /* already revoked or expired at Salesforce: nothing left to revoke */
                fprintf(stderr, "sfbridge: note: Salesforce says %s: %s; disabling anyway\n", err_public_code(&e),
                        e.msg);
            } else {
                cli_fail("could not revoke the tokens of connection \"%s\" at Salesforce: %s; nothing changed", id,
                         e.msg);
                goto out;
            }
        }
    }
    pg_res_free(&r);
    char reason[200];
    snprintf(reason, sizeof reason, "revoked by %s", by && *by ? by : "an operator");
    const char *u[2] = {id, reason};
    if (!pg_run(db,
                "UPDATE connections SET status = 'disabled', status_reason = $2, access_token_enc = NULL, "
                "refresh_token_enc = NULL, token_version = token_version + 1, updated_at = now() "
                "WHERE connection_id = $1",
                2, u, &e)) {
        cli_fail("could not mark connection \"%s\" disabled: %s", id, e.msg);
        goto out;
    }
    ev = conn_status_event(org, id, NULL, "disabled", reason, NULL);
    struct err ke = ERR_INIT;
    if (!publish(cli, "connection.status", id, ev, &ke))
        fprintf(stderr, "sfbridge: warning: could not publish connection.status: %s\n", ke.msg);
    printf("connection %s revoked at Salesforce and disabled\n", id);
    rc = 0;
out:
    memset(key, 0, sizeof key);
    if (token) {
        memset(token, 0, strlen(token));
        free(token);
    }
    json_object_put(ev);
    sf_client_free(&sf);
    pg_res_free(&r);
    pg_close(&db);
    return rc;
}

int cmd_connect(struct cli *cli, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : NULL;
    if (!sub || !strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        usage(sub ? stdout : stderr);
        return sub ? 0 : 64;
    }
    if (!strcmp(sub, "start"))
        return start(cli, argc, argv);
    if (!strcmp(sub, "finish"))
        return finish(cli, argc, argv);
    if (!strcmp(sub, "revoke"))
        return revoke_cmd(cli, argc, argv);
    cli_fail("unknown connect command \"%s\"", sub);
    usage(stderr);
    return 64;
}
