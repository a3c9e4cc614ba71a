/*
 * Unit tests of common/conn (the parts that need no database; the refresh
 * protocol is exercised end to end in tests/it_token.c): the token key
 * checks, the connection.status event against its schema, argument errors.
 */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <string.h>

#include "conn.h"
#include "json.h"
#include "msg.h"
#include "sf.h"

static struct cfg cfg_with_key(const char *key)
{
    struct cfg c;
    memset(&c, 0, sizeof c);
    c.token_key = key;
    c.token_key_id = "k1";
    return c;
}

Test(conn_unit, key_missing_is_a_config_error_naming_the_variable)
{
    struct cfg c = cfg_with_key("");
    unsigned char key[32];
    struct err e = ERR_INIT;
    cr_assert_not(conn_key(&c, key, &e));
    cr_assert_eq(e.code, ERR_CONFIG);
    cr_assert_not(e.retriable);
    cr_assert(strstr(e.msg, "SFBRIDGE_TOKEN_KEY is not set"), "%s", e.msg);
}

Test(conn_unit, key_of_wrong_length_is_refused_without_echoing_it)
{
    struct cfg c = cfg_with_key("c2hvcnRrZXlzaG9ydGtleQ==");
    unsigned char key[32];
    struct err e = ERR_INIT;
    cr_assert_not(conn_key(&c, key, &e));
    cr_assert_eq(e.code, ERR_CONFIG);
    cr_assert(strstr(e.msg, "SFBRIDGE_TOKEN_KEY"), "%s", e.msg);
    cr_assert_null(strstr(e.msg, "c2hvcnRrZXlzaG9ydGtleQ"), "the key must not appear in the message: %s", e.msg);
}

Test(conn_unit, key_of_32_bytes_is_accepted)
{
    struct cfg c = cfg_with_key("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");
    unsigned char key[32];
    struct err e = ERR_INIT;
    cr_assert(conn_key(&c, key, &e), "%s", e.msg);
    cr_assert_eq(memcmp(key, "0123456789abcdef0123456789abcdef", 32), 0);
}

static void valid_status(struct json_object *ev)
{
    struct err e = ERR_INIT;
    cr_assert(msg_init(&e), "%s", e.msg);
    bool ok = msg_validate("connection.status", ev, &e);
    cr_assert(ok, "connection.status event fails its schema: %s: %s", e.msg, json_object_to_json_string(ev));
    msg_cleanup();
}

Test(conn_unit, status_events_follow_the_schema)
{
    const char *conn = "7b0e7c43-56a7-4ab3-a0b3-3c2d27a0b2ad", *req = "0c8d1f0e-7f1e-4a5b-8a65-0d5d3a8f2b11";
    struct json_object *ev = conn_status_event("acme", conn, req, "connected", NULL, "https://na1.my.salesforce.com");
    valid_status(ev);
    cr_assert_str_eq(json_get_str(ev, "instance_url"), "https://na1.my.salesforce.com");
    cr_assert_str_eq(json_get_str(ev, "request_id"), req);
    cr_assert_null(json_get(ev, "reason"));
    json_object_put(ev);

    ev = conn_status_event("acme", conn, NULL, "expired", "invalid_grant: expired access/refresh token", NULL);
    valid_status(ev);
    cr_assert_null(json_get(ev, "request_id"), "an operator's change has no request_id");
    cr_assert_str_eq(json_get_str(ev, "reason"), "invalid_grant: expired access/refresh token");
    json_object_put(ev);

    /* the schema requires a reason for expired/disabled: one is supplied */
    ev = conn_status_event("acme", conn, "", "disabled", NULL, NULL);
    valid_status(ev);
    cr_assert_str_eq(json_get_str(ev, "reason"), "disabled");
    json_object_put(ev);

    /* an over-long reason is cut to the schema's 1024 */
    char reason[3000];
    memset(reason, 'r', sizeof reason - 1);
    reason[sizeof reason - 1] = '\0';
    ev = conn_status_event("acme", conn, req, "expired", reason, NULL);
    valid_status(ev);
    cr_assert_eq(strlen(json_get_str(ev, "reason")), 1024);
    json_object_put(ev);
}

Test(conn_unit, open_and_store_check_their_arguments)
{
    struct conn_session s;
    struct err e = ERR_INIT;
    struct cfg c = cfg_with_key("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");
    cr_assert_not(conn_open(&s, NULL, &c, NULL, "7b0e7c43-56a7-4ab3-a0b3-3c2d27a0b2ad", &e));
    cr_assert_eq(e.code, ERR_INTERNAL);
    conn_close(&s);
    conn_close(NULL);
    err_clear(&e);
    cr_assert_not(conn_store_tokens(NULL, &c, "x", "tok", NULL, NULL, NULL, &e));
    cr_assert_eq(e.code, ERR_INTERNAL);
    err_clear(&e);
    struct conn_session z;
    memset(&z, 0, sizeof z);
    cr_assert_not(conn_refresh(&z, &e));
    cr_assert_eq(e.code, ERR_INTERNAL);
    err_clear(&e);
    struct sf_response r = {.records = -1};
    cr_assert_not(conn_call(&z, "GET", "/limits", NULL, NULL, 0, &r, &e));
    cr_assert_eq(e.code, ERR_INTERNAL);
}

Test(conn_unit, retry_only_on_invalid_session_and_only_once)
{
    struct conn_session s;
    memset(&s, 0, sizeof s);
    struct err e = ERR_INIT;
    err_set_sf(&e, ERR_SALESFORCE, false, "MALFORMED_QUERY", "bad query");
    cr_assert_not(conn_retry_after_auth_error(&s, &e));
    cr_assert_str_eq(e.sf_code, "MALFORMED_QUERY", "other errors are left untouched");
    struct err a = ERR_INIT;
    err_set_sf(&a, ERR_AUTH, false, "INVALID_SESSION_ID", "Session expired or invalid");
    s.refreshed = true;
    cr_assert_not(conn_retry_after_auth_error(&s, &a), "a session refreshes at most once");
    cr_assert_str_eq(a.sf_code, "INVALID_SESSION_ID");
}

Test(conn_unit, sf_options_follow_the_configuration)
{
    struct cfg c = cfg_with_key("");
    c.sf_api_version = "61.0";
    c.sf_timeout_ms = 5000;
    c.max_retry_backoff_ms = 700;
    c.sf_ca_file = "";
    struct sf_options o;
    conn_sf_options(&c, &o);
    cr_assert_str_eq(o.api_version, "61.0");
    cr_assert_eq(o.timeout_ms, 5000);
    cr_assert_eq(o.max_backoff_ms, 700);
    cr_assert_null(o.ca_file);
}
