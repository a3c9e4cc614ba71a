/*
 * json: small helpers over json-c.
 * Getters borrow: the returned pointers live as long as the object they came
 * from. Nothing here takes ownership unless it says so.
 */
#ifndef SFBRIDGE_JSON_H
#define SFBRIDGE_JSON_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Parse `len` bytes. Checks UTF-8 validity first and refuses nesting deeper
 * than 64. Returns a new object (caller frees with json_object_put) or NULL
 * with err set (ERR_INVALID_JSON, not retriable). */
struct json_object *json_parse(const char *buf, size_t len, struct err *e);

/* true when `buf[0..len)` is valid UTF-8 with no NUL bytes. */
bool json_utf8_valid(const char *buf, size_t len);

/* Borrowed string member, or NULL when absent or not a string. */
const char *json_get_str(struct json_object *o, const char *key);
/* Member of any type (borrowed) or NULL. */
struct json_object *json_get(struct json_object *o, const char *key);
/* Integer/bool member with a default when absent or of the wrong type. */
int64_t json_get_int(struct json_object *o, const char *key, int64_t dflt);
bool json_get_bool(struct json_object *o, const char *key, bool dflt);

/* Add helpers: add a copy of `v` (NULL adds JSON null). */
void json_add_str(struct json_object *o, const char *key, const char *v);
void json_add_int(struct json_object *o, const char *key, int64_t v);
void json_add_bool(struct json_object *o, const char *key, bool v);

/* Compact serialisation, borrowed from `o` until it changes or is freed. */
const char *json_str(struct json_object *o);

/* RFC 3339 UTC timestamp with milliseconds of now, into buf (>= 32 bytes). */
void json_now_rfc3339(char *buf, size_t cap);

/* A fresh random UUID v4, lower case, into buf (>= 37 bytes). */
void json_uuid4(char *buf, size_t cap);

/* true when `s` is a canonical 8-4-4-4-12 hex UUID. */
bool json_is_uuid(const char *s);

#endif
