/* json: helpers over json-c. See json.h. Stateless, thread-safe. */
#include "json.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

bool json_utf8_valid(const char *buf, size_t len)
{
    const unsigned char *s = (const unsigned char *)buf;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned int cp;
        if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= len)
            return false; /* truncated sequence */
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        /* overlong, surrogates, out of range */
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return false;
        i += n + 1;
    }
    return true;
}

struct json_object *json_parse(const char *buf, size_t len, struct err *e)
{
    if (!buf || len == 0) {
        err_set(e, ERR_INVALID_JSON, false, "message is empty");
        return NULL;
    }
    if (!json_utf8_valid(buf, len)) {
        err_set(e, ERR_INVALID_JSON, false, "message is not valid UTF-8");
        return NULL;
    }
    if (len > (size_t)INT32_MAX) {
        err_set(e, ERR_INVALID_JSON, false, "message too large");
        return NULL;
    }
    struct json_tokener *tok = json_tokener_new_ex(64);
    if (!tok) {
        err_set(e, ERR_NOMEM, true, "could not allocate json tokener");
        return NULL;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    struct json_object *o = json_tokener_parse_ex(tok, buf, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue) {
        /* a bare top-level scalar (e.g. 123) is only complete once json-c sees a delimiter */
        o = json_tokener_parse_ex(tok, " ", 1);
        jerr = json_tokener_get_error(tok);
        end = len; /* the first call consumed the whole buffer */
    }
    if (jerr == json_tokener_success && !o) {
        err_set(e, ERR_INVALID_MESSAGE, false, "field \"(root)\": must be an object");
    } else if (jerr == json_tokener_success) {
        for (size_t i = end; i < len; i++) {
            if (buf[i] != ' ' && buf[i] != '\n' && buf[i] != '\r' && buf[i] != '\t') {
                json_object_put(o);
                o = NULL;
                err_set(e, ERR_INVALID_JSON, false, "message is not JSON: trailing data at offset %zu", i);
                break;
            }
        }
    } else {
        json_object_put(o);
        o = NULL;
        if (jerr == json_tokener_continue)
            err_set(e, ERR_INVALID_JSON, false, "message is not JSON: unexpected end of input");
        else
            err_set(e, ERR_INVALID_JSON, false, "message is not JSON: %s", json_tokener_error_desc(jerr));
    }
    json_tokener_free(tok);
    return o;
}

struct json_object *json_get(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;
    if (!o || !json_object_is_type(o, json_type_object))
        return NULL;
    if (!json_object_object_get_ex(o, key, &v))
        return NULL;
    return v;
}

const char *json_get_str(struct json_object *o, const char *key)
{
    struct json_object *v = json_get(o, key);
    if (!v || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

int64_t json_get_int(struct json_object *o, const char *key, int64_t dflt)
{
    struct json_object *v = json_get(o, key);
    if (!v || !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
        return dflt;
    return json_object_get_int64(v);
}

bool json_get_bool(struct json_object *o, const char *key, bool dflt)
{
    struct json_object *v = json_get(o, key);
    if (!v || !json_object_is_type(v, json_type_boolean))
        return dflt;
    return json_object_get_boolean(v);
}

void json_add_str(struct json_object *o, const char *key, const char *v)
{
    json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

void json_add_int(struct json_object *o, const char *key, int64_t v)
{
    json_object_object_add(o, key, json_object_new_int64(v));
}

void json_add_bool(struct json_object *o, const char *key, bool v)
{
    json_object_object_add(o, key, json_object_new_boolean(v));
}

const char *json_str(struct json_object *o)
{
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

void json_now_rfc3339(char *buf, size_t cap)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, cap - n, ".%03ldZ", now.tv_nsec / 1000000);
}

void json_uuid4(char *buf, size_t cap)
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1) {
        /* no entropy source: a guessable or repeated id would merge records at Salesforce */
        fprintf(stderr, "fatal: could not generate a random id (no entropy)\n");
        abort();
    }
    b[6] = (unsigned char)((b[6] & 0x0F) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80);
    snprintf(buf, cap,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

bool json_is_uuid(const char *s)
{
    if (!s || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}
