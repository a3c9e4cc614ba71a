/*
 * oauth: the emulated Salesforce OAuth 2.0 endpoints (salesforce-api.md
 * section 1): authorize (auto-approve, PKCE S256), token (authorization_code,
 * refresh_token, password), revoke, introspect, the identity URL, and the
 * Bearer check used by the REST API.
 *
 * Threads: tokens and codes live in sim->tokens / sim->codes under sim->mu.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "simint.h"

#define CODE_TTL_MS (10 * 60 * 1000)

static struct sim_token *tok_add_locked(struct sim *sim)
{
    if (sim->ntokens == sim->captokens) {
        sim->captokens = sim->captokens ? sim->captokens * 2 : 64;
        struct sim_token *n = realloc(sim->tokens, sim->captokens * sizeof *n);
        if (!n)
            abort();
        sim->tokens = n;
    }
    struct sim_token *t = &sim->tokens[sim->ntokens++];
    memset(t, 0, sizeof *t);
    return t;
}

static struct sim_token *tok_find_locked(struct sim *sim, const char *tok)
{
    if (!tok || !*tok)
        return NULL;
    for (size_t i = sim->ntokens; i-- > 0;)
        if (strcmp(sim->tokens[i].tok, tok) == 0)
            return &sim->tokens[i];
    return NULL;
}

static void make_access(struct sim *sim, char *out, size_t n)
{
    char rnd[100];
    sim_rand_alnum(rnd, 94);
    snprintf(out, n, "%.15s!AQ%s", sim->store.org_id, rnd);
}

static bool access_valid_locked(struct sim *sim, const struct sim_token *t, int64_t now)
{
    return t && !t->is_refresh && !t->revoked &&
           now - t->issued < sim->cfg.session_timeout_s * 1000;
}

bool sim_issue_token(struct sim *sim, char *out, size_t outsz)
{
    if (outsz < 112)
        return false;
    pthread_mutex_lock(&sim->mu);
    struct sim_token *t = tok_add_locked(sim);
    make_access(sim, t->tok, sizeof t->tok);
    t->issued = sim_now(sim);
    snprintf(t->scope, sizeof t->scope, "api refresh_token");
    snprintf(out, outsz, "%s", t->tok);
    pthread_mutex_unlock(&sim->mu);
    return true;
}

static void id_url(struct sim *sim, char *out, size_t n)
{
    snprintf(out, n, "%s/id/%s/%s", sim->base_url, sim->store.org_id, sim->user_id);
}

static void oauth_error(struct sim_resp *r, int status, const char *err, const char *desc)
{
    struct sim_buf b = {0};
    sim_buf_puts(&b, "{\"error\":");
    sim_buf_json_str(&b, err);
    sim_buf_puts(&b, ",\"error_description\":");
    sim_buf_json_str(&b, desc);
    sim_buf_putc(&b, '}');
    r->ctype = "application/json;charset=UTF-8";
    sim_resp_take(r, status, &b);
}

static bool wants_refresh(const char *scope)
{
    return strstr(scope, "refresh_token") || strstr(scope, "offline_access");
}

static void url_enc(struct sim_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            sim_buf_putc(b, (char)c);
        } else {
            sim_buf_putc(b, '%');
            sim_buf_putc(b, hex[c >> 4]);
            sim_buf_putc(b, hex[c & 15]);
        }
    }
}

static void authorize(struct sim *sim, struct sim_req *q, struct sim_resp *r)
{
    r->endpoint = "oauth_authorize";
    const char *rt = sim_req_arg(q, "response_type");
    const char *cid = sim_req_arg(q, "client_id");
    const char *ru = sim_req_arg(q, "redirect_uri");
    const char *state = sim_req_arg(q, "state");
    const char *scope = sim_req_arg(q, "scope");
    const char *cc = sim_req_arg(q, "code_challenge");
    const char *ccm = sim_req_arg(q, "code_challenge_method");
    if (!cid || strcmp(cid, sim->cfg.client_id) != 0) {
        oauth_error(r, 400, "invalid_client_id", "client identifier invalid");
        return;
    }
    if (!ru || !*ru) {
        oauth_error(r, 400, "redirect_uri_mismatch",
                    "redirect_uri must match configuration");
        return;
    }
    struct sim_buf loc = {0};
    sim_buf_puts(&loc, ru);
    sim_buf_putc(&loc, strchr(ru, '?') ? '&' : '?');
    if (!rt || strcmp(rt, "code") != 0) {
        sim_buf_puts(&loc, "error=unsupported_response_type&error_description=");
        url_enc(&loc, "response type not supported");
    } else if (cc && ccm && strcmp(ccm, "S256") != 0) {
        sim_buf_puts(&loc, "error=invalid_request&error_description=");
        url_enc(&loc, "invalid code challenge method");
    } else {
        pthread_mutex_lock(&sim->mu);
        if (sim->ncodes == sim->capcodes) {
            sim->capcodes = sim->capcodes ? sim->capcodes * 2 : 16;
            struct sim_code *n = realloc(sim->codes, sim->capcodes * sizeof *n);
            if (!n)
                abort();
            sim->codes = n;
        }
        struct sim_code *c = &sim->codes[sim->ncodes++];
        memset(c, 0, sizeof *c);
        char rnd[64];
        sim_rand_alnum(rnd, 52);
        snprintf(c->code, sizeof c->code, "aPrx%s==", rnd);
        snprintf(c->challenge, sizeof c->challenge, "%s", cc ? cc : "");
        snprintf(c->redirect, sizeof c->redirect, "%s", ru);
        snprintf(c->scope, sizeof c->scope, "%s", scope && *scope ? scope : "api refresh_token id");
        c->issued = sim_now(sim);
        sim_buf_puts(&loc, "code=");
        url_enc(&loc, c->code);
        pthread_mutex_unlock(&sim->mu);
    }
    if (state) {
        sim_buf_puts(&loc, "&state=");
        url_enc(&loc, state);
    }
    sim_resp_hdr(r, "Location", "%s", loc.p);
    sim_buf_free(&loc);
    struct sim_buf b = {0};
    r->ctype = "text/html;charset=UTF-8";
    sim_buf_puts(&b, "<html><body>Redirecting...</body></html>");
    sim_resp_take(r, 302, &b);
}

/* writes the success JSON; refresh may be NULL */
static void token_ok(struct sim *sim, struct sim_resp *r, const char *access,
                     const char *refresh, const char *scope, int64_t issued)
{
    char id[256], iat[32], sig[64];
    id_url(sim, id, sizeof id);
    snprintf(iat, sizeof iat, "%lld", (long long)issued);
    char msg[300];
    snprintf(msg, sizeof msg, "%s%s", id, iat);
    sim_hmac_b64(sim->cfg.client_secret, msg, sig);
    struct sim_buf b = {0};
    sim_buf_puts(&b, "{\"access_token\":");
    sim_buf_json_str(&b, access);
    if (refresh) {
        sim_buf_puts(&b, ",\"refresh_token\":");
        sim_buf_json_str(&b, refresh);
    }
    sim_buf_puts(&b, ",\"signature\":");
    sim_buf_json_str(&b, sig);
    sim_buf_puts(&b, ",\"scope\":");
    sim_buf_json_str(&b, scope);
    sim_buf_puts(&b, ",\"instance_url\":");
    sim_buf_json_str(&b, sim->base_url);
    sim_buf_puts(&b, ",\"id\":");
    sim_buf_json_str(&b, id);
    sim_buf_puts(&b, ",\"token_type\":\"Bearer\",\"issued_at\":");
    sim_buf_json_str(&b, iat);
    sim_buf_putc(&b, '}');
    r->ctype = "application/json;charset=UTF-8";
    sim_resp_take(r, 200, &b);
}

static void token(struct sim *sim, struct sim_req *q, struct sim_resp *r)
{
    r->endpoint = "oauth_token";
    char *gt = sim_form_get(q->body, "grant_type");
    char *cid = sim_form_get(q->body, "client_id");
    char *secret = sim_form_get(q->body, "client_secret");
    char *code = sim_form_get(q->body, "code");
    char *ru = sim_form_get(q->body, "redirect_uri");
    char *ver = sim_form_get(q->body, "code_verifier");
    char *rtok = sim_form_get(q->body, "refresh_token");
    char *user = sim_form_get(q->body, "username");
    int64_t now = sim_now(sim);
    if (!gt || (strcmp(gt, "authorization_code") != 0 && strcmp(gt, "refresh_token") != 0 &&
                strcmp(gt, "password") != 0)) {
        oauth_error(r, 400, "unsupported_grant_type", "grant type not supported");
        goto out;
    }
    if (!cid || strcmp(cid, sim->cfg.client_id) != 0) {
        oauth_error(r, 400, "invalid_client_id", "client identifier invalid");
        goto out;
    }
    bool need_secret = strcmp(gt, "refresh_token") != 0;
    if ((need_secret && !secret) || (secret && strcmp(secret, sim->cfg.client_secret) != 0)) {
        oauth_error(r, 400, "invalid_client", "invalid client credentials");
        goto out;
    }
    char access[128], refresh[128], scope[128];
    bool with_refresh = false;
    pthread_mutex_lock(&sim->mu);
    if (strcmp(gt, "authorization_code") == 0) {
        struct sim_code *c = NULL;
        for (size_t i = 0; code && i < sim->ncodes; i++)
            if (strcmp(sim->codes[i].code, code) == 0)
                c = &sim->codes[i];
        const char *fail = NULL, *fail_err = "invalid_grant";
        if (!c)
            fail = "invalid authorization code";
        else if (c->used || now - c->issued > CODE_TTL_MS)
            fail = "expired authorization code";
        else if (!ru || strcmp(ru, c->redirect) != 0)
            fail = "redirect_uri must match configuration";
        else if (c->challenge[0] && !ver)
            fail = "invalid code verifier";
        else if (c->challenge[0]) {
            char s256[64];
            sim_s256_b64url(ver, s256);
            if (strcmp(s256, c->challenge) != 0) {
                fail = "invalid code verifier";
                fail_err = "invalid_request";
            }
        }
        if (fail) {
            pthread_mutex_unlock(&sim->mu);
            oauth_error(r, 400, fail_err, fail);
            goto out;
        }
        c->used = true;
        snprintf(scope, sizeof scope, "%s", c->scope);
        with_refresh = wants_refresh(scope);
        sim->code_grants++;
    } else if (strcmp(gt, "password") == 0) {
        if (!user || strcmp(user, sim->cfg.user) != 0) {
            pthread_mutex_unlock(&sim->mu);
            oauth_error(r, 400, "invalid_grant", "authentication failure");
            goto out;
        }
        snprintf(scope, sizeof scope, "api id");
    } else {
        struct sim_token *t = tok_find_locked(sim, rtok);
        if (!t || !t->is_refresh || t->revoked) {
            pthread_mutex_unlock(&sim->mu);
            oauth_error(r, 400, "invalid_grant", "expired access/refresh token");
            goto out;
        }
        snprintf(scope, sizeof scope, "%s", t->scope);
        snprintf(refresh, sizeof refresh, "%s", t->tok);
        sim->refresh_grants++;
        if (sim->cfg.rotate_refresh_tokens) {
            t->revoked = true;
            with_refresh = true;
        }
    }
    struct sim_token *parent = NULL;
    if (with_refresh) {
        parent = tok_add_locked(sim);
        parent->is_refresh = true;
        char rnd[100];
        sim_rand_alnum(rnd, 80);
        snprintf(parent->tok, sizeof parent->tok, "5Aep861%s", rnd);
        parent->issued = now;
        snprintf(parent->scope, sizeof parent->scope, "%s", scope);
        snprintf(refresh, sizeof refresh, "%s", parent->tok);
    }
    struct sim_token *a = tok_add_locked(sim);
    make_access(sim, a->tok, sizeof a->tok);
    a->issued = now;
    snprintf(a->scope, sizeof a->scope, "%s", scope);
    if (strcmp(gt, "password") != 0)
        snprintf(a->refresh, sizeof a->refresh, "%s", refresh);
    snprintf(access, sizeof access, "%s", a->tok);
    pthread_mutex_unlock(&sim->mu);
    token_ok(sim, r, access, with_refresh ? refresh : NULL, scope, now);
out:
    free(gt);
    free(cid);
    free(secret);
    free(code);
    free(ru);
    free(ver);
    free(rtok);
    free(user);
}

static void revoke(struct sim *sim, struct sim_req *q, struct sim_resp *r)
{
    r->endpoint = "oauth_revoke";
    char *tok = sim_form_get(q->body, "token");
    if (!tok && sim_req_arg(q, "token")) {
        tok = strdup(sim_req_arg(q, "token"));
        if (!tok)
            abort();
    }
    pthread_mutex_lock(&sim->mu);
    struct sim_token *t = tok_find_locked(sim, tok);
    bool found = t != NULL;
    if (t) {
        t->revoked = true;
        if (t->is_refresh)
            for (size_t i = 0; i < sim->ntokens; i++)
                if (strcmp(sim->tokens[i].refresh, t->tok) == 0)
                    sim->tokens[i].revoked = true;
    }
    pthread_mutex_unlock(&sim->mu);
    free(tok);
    if (!found) {
        oauth_error(r, 400, "invalid_token", "invalid token");
        return;
    }
    r->status = 200;
}

static void introspect(struct sim *sim, struct sim_req *q, struct sim_resp *r)
{
    r->endpoint = "oauth_introspect";
    char *tok = sim_form_get(q->body, "token");
    char *cid = sim_form_get(q->body, "client_id");
    char *secret = sim_form_get(q->body, "client_secret");
    const char *auth = sim_req_header(q, "Authorization");
    bool client_ok = cid && secret && strcmp(cid, sim->cfg.client_id) == 0 &&
                     strcmp(secret, sim->cfg.client_secret) == 0;
    if (!client_ok && auth && strncasecmp(auth, "Basic ", 6) == 0) {
        char want[512], enc[700];
        snprintf(want, sizeof want, "%s:%s", sim->cfg.client_id, sim->cfg.client_secret);
        sim_b64((const unsigned char *)want, strlen(want), false, enc, sizeof enc);
        client_ok = strcmp(auth + 6, enc) == 0;
    }
    if (!client_ok) {
        oauth_error(r, 401, "invalid_client", "invalid client credentials");
        goto out;
    }
    int64_t now = sim_now(sim);
    pthread_mutex_lock(&sim->mu);
    struct sim_token *t = tok_find_locked(sim, tok);
    bool active = t && !t->revoked && (t->is_refresh || access_valid_locked(sim, t, now));
    struct sim_buf b = {0};
    if (!active) {
        sim_buf_puts(&b, "{\"active\":false}");
    } else {
        char id[256];
        id_url(sim, id, sizeof id);
        int64_t exp = t->is_refresh ? t->issued + 90LL * 86400000
                                    : t->issued + sim->cfg.session_timeout_s * 1000;
        sim_buf_puts(&b, "{\"active\":true,\"scope\":");
        sim_buf_json_str(&b, t->scope);
        sim_buf_puts(&b, ",\"client_id\":");
        sim_buf_json_str(&b, sim->cfg.client_id);
        sim_buf_puts(&b, ",\"username\":");
        sim_buf_json_str(&b, sim->cfg.user);
        sim_buf_puts(&b, ",\"sub\":");
        sim_buf_json_str(&b, id);
        sim_buf_printf(&b, ",\"token_type\":\"%s\",\"exp\":%lld,\"iat\":%lld,\"nbf\":%lld}",
                       t->is_refresh ? "refresh_token" : "access_token",
                       (long long)(exp / 1000), (long long)(t->issued / 1000),
                       (long long)(t->issued / 1000));
    }
    pthread_mutex_unlock(&sim->mu);
    sim_resp_take(r, 200, &b);
out:
    free(tok);
    free(cid);
    free(secret);
}

void sim_oauth_handle(struct sim *sim, struct sim_req *q, struct sim_resp *r)
{
    const char *sub = q->path + strlen("/services/oauth2/");
    if (strcmp(sub, "authorize") == 0 && strcmp(q->method, "GET") == 0)
        authorize(sim, q, r);
    else if (strcmp(sub, "token") == 0 && strcmp(q->method, "POST") == 0)
        token(sim, q, r);
    else if (strcmp(sub, "revoke") == 0)
        revoke(sim, q, r);
    else if (strcmp(sub, "introspect") == 0 && strcmp(q->method, "POST") == 0)
        introspect(sim, q, r);
    else {
        r->endpoint = "not_found";
        sim_resp_error(r, 404, "NOT_FOUND", "The requested resource does not exist");
    }
}

static const char *bearer(const struct sim_req *q)
{
    const char *auth = sim_req_header(q, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
        return auth + 7;
    if (auth && strncasecmp(auth, "OAuth ", 6) == 0)
        return auth + 6;
    return NULL;
}

bool sim_oauth_check(struct sim *sim, struct sim_req *q, struct sim_resp *r)
{
    const char *tok = bearer(q);
    int64_t now = sim_now(sim);
    pthread_mutex_lock(&sim->mu);
    bool ok = access_valid_locked(sim, tok_find_locked(sim, tok), now);
    pthread_mutex_unlock(&sim->mu);
    if (!ok) {
        sim_resp_error(r, 401, "INVALID_SESSION_ID", "Session expired or invalid");
        sim_resp_hdr(r, "WWW-Authenticate", "Token");
    }
    return ok;
}

void sim_identity_handle(struct sim *sim, struct sim_req *q, struct sim_resp *r)
{
    r->endpoint = "identity";
    char want[64];
    snprintf(want, sizeof want, "/id/%s/%s", sim->store.org_id, sim->user_id);
    if (!sim_oauth_check(sim, q, r)) {
        free(r->body);
        r->body = NULL;
        struct sim_buf b = {0};
        r->ctype = "text/plain;charset=UTF-8";
        sim_buf_puts(&b, "Bad_OAuth_Token");
        sim_resp_take(r, 403, &b);
        return;
    }
    if (strcmp(q->path, want) != 0) {
        struct sim_buf b = {0};
        r->ctype = "text/plain;charset=UTF-8";
        sim_buf_puts(&b, "Bad_Id");
        sim_resp_take(r, 404, &b);
        return;
    }
    char id[256];
    id_url(sim, id, sizeof id);
    const char *u = sim->base_url;
    struct sim_buf b = {0};
    sim_buf_puts(&b, "{\"id\":");
    sim_buf_json_str(&b, id);
    sim_buf_printf(&b, ",\"asserted_user\":true,\"user_id\":\"%s\",\"organization_id\":\"%s\"",
                   sim->user_id, sim->store.org_id);
    sim_buf_puts(&b, ",\"username\":");
    sim_buf_json_str(&b, sim->cfg.user);
    sim_buf_puts(&b, ",\"nick_name\":\"demo\",\"display_name\":\"Demo User\",\"email\":");
    sim_buf_json_str(&b, sim->cfg.user);
    sim_buf_puts(&b, ",\"email_verified\":true,\"first_name\":\"Demo\",\"last_name\":\"User\","
                     "\"timezone\":\"Etc/UTC\",\"photos\":{},\"addr_street\":null,"
                     "\"addr_city\":null,\"addr_state\":null,\"addr_country\":null,"
                     "\"addr_zip\":null,\"mobile_phone\":null,\"mobile_phone_verified\":false,"
                     "\"is_lightning_login_user\":false,"
                     "\"status\":{\"created_date\":null,\"body\":null},\"urls\":{");
    sim_buf_printf(&b,
                   "\"enterprise\":\"%s/services/Soap/c/{version}/%s\","
                   "\"metadata\":\"%s/services/Soap/m/{version}/%s\","
                   "\"partner\":\"%s/services/Soap/u/{version}/%s\","
                   "\"rest\":\"%s/services/data/v{version}/\","
                   "\"sobjects\":\"%s/services/data/v{version}/sobjects/\","
                   "\"search\":\"%s/services/data/v{version}/search/\","
                   "\"query\":\"%s/services/data/v{version}/query/\","
                   "\"recent\":\"%s/services/data/v{version}/recent/\","
                   "\"profile\":\"%s/%s\",\"custom_domain\":\"%s\"},",
                   u, sim->store.org_id, u, sim->store.org_id, u, sim->store.org_id, u, u, u,
                   u, u, u, sim->user_id, u);
    sim_buf_puts(&b, "\"active\":true,\"user_type\":\"STANDARD\",\"language\":\"en_US\","
                     "\"locale\":\"en_US\",\"utcOffset\":0,"
                     "\"last_modified_date\":\"2024-01-01T00:00:00Z\",\"is_app_installed\":true}");
    sim_resp_take(r, 200, &b);
}
