/*
 * msg: validation of topic messages against the JSON Schemas in schemas/.
 *
 * The schemas (schemas/<topic>.schema.json, JSON Schema 2020-12) are compiled
 * into libsfbridge (embed.h: sfbridge_schemas[]) and interpreted here at run
 * time, so the C workers and every other consumer (ajv in tests/node) check
 * exactly the same rules. msg_init() compiles them once; a keyword this
 * validator does not implement is a start-up error, so a rule can never be
 * skipped silently.
 *
 * Supported subset: type (also arrays of types), enum, const, minLength and
 * maxLength (counted in code points), pattern (POSIX ERE, anchors as written;
 * a string holding a NUL byte never matches), format "uuid" (8-4-4-4-12 hex,
 * either case) and "date-time" (strict RFC 3339: T separator, mandatory Z or
 * +HH:MM offset, real calendar days, second 60 only at 23:59 UTC), minimum,
 * maximum, minItems, maxItems, uniqueItems, items, minProperties,
 * maxProperties, required, properties, additionalProperties, propertyNames,
 * $ref to "#/$defs/<name>" of the same file, allOf, if/then/else, boolean
 * schemas; annotations ($schema, $id, $defs, $comment, title, description,
 * default) are accepted and ignored (so `default` is NOT applied: the reader
 * applies it). Numbers must be finite (1e400 is refused); 1.0 is an integer.
 *
 * Validation stops at the first violation and reports it as ERR_INVALID_MESSAGE
 * (not retriable) with a message that starts with the JSON path in quotes:
 *   field "operations[0].action": must be one of create, update, upsert, delete
 *   field "(root)": must be an object
 * Paths use `.name` for plain names, `[i]` for array items and `['...']` for
 * other names (non-printable bytes escaped as \xHH, long names cut). Values of
 * the message are never copied into the error (they may be secrets).
 *
 * Threads: call msg_init() once before starting threads; afterwards every
 * function here is thread-safe (the compiled schemas are read-only).
 */
#ifndef SFBRIDGE_MSG_H
#define SFBRIDGE_MSG_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "embed.h"
#include "err.h"

/* Largest message msg_parse() accepts, in bytes. */
#define MSG_MAX_BYTES (1024 * 1024)

/* Compile every embedded schema (sfbridge_schemas[]) once, caching regexes.
 * Calling it again after success is a no-op returning true. On failure
 * (a schema is not JSON, uses an unsupported keyword, a bad $ref or pattern)
 * returns false with ERR_INTERNAL naming the file and the schema location, and
 * nothing stays loaded. */
bool msg_init(struct err *e);

/* Same from another table (ends with a NULL name; topic = name without
 * ".schema.json"). The table's texts are only read during the call. For tests;
 * fails if schemas are already loaded. */
bool msg_init_files(const struct embedded_file *files, struct err *e);

/* Free everything msg_init*() loaded; msg_init() may be called again after. */
void msg_cleanup(void);

/* true when a schema for `topic` (e.g. "record.write") is loaded. */
bool msg_has_schema(const char *topic);

/* Validate `doc` (borrowed, not modified) against the schema of `topic`.
 * On a violation: false, ERR_INVALID_MESSAGE, not retriable, message as above.
 * Unknown topic or msg_init() not called: false, ERR_INTERNAL. */
bool msg_validate(const char *topic, struct json_object *doc, struct err *e);

/* Size check (more than MSG_MAX_BYTES -> ERR_INVALID_MESSAGE "message too
 * large ..."), json_parse() (UTF-8 and nesting checks, ERR_INVALID_JSON), a
 * check that no string or key holds an escaped NUL (\u0000: json-c cuts keys
 * there and PostgreSQL cannot store it; ERR_INVALID_MESSAGE), then
 * msg_validate(). On success *out is a new object the caller frees with
 * json_object_put(); on failure *out is NULL. `buf` is borrowed. */
bool msg_parse(const char *topic, const char *buf, size_t len, struct json_object **out,
               struct err *e);

#endif
