/*
 * audit: the append-only, hash-chained audit log (table audit_log).
 *
 * One row per record sent to Salesforce or refused. Rows of one org form a
 * chain ordered by audit_id: prev_hash is the hash of the org's previous row
 * ("0" x 64 for the first), hash = SHA-256 (lower-case hex) of the row's
 * canonical serialisation (audit_canonical), which includes prev_hash. A
 * changed row no longer matches its hash; a removed row breaks the next
 * row's prev_hash. (Removing the newest rows of an org leaves a shorter but
 * valid chain: a hash chain without an external anchor cannot see that.)
 *
 * Canonical serialisation (version 1), a compact JSON array:
 *   ["sfbridge-audit-v1", audit_id, org_id, connection_id, request_id, actor,
 *    source, action, sf_object, platform_object, ref, salesforce_id, fields,
 *    outcome, sf_error_code, sf_error_message, created_at, prev_hash]
 * audit_id is a JSON number, absent values are null, uuids lower case,
 * created_at "YYYY-MM-DDTHH:MM:SS.ffffffZ" (UTC, microseconds, what
 * PostgreSQL stores), fields in canonical JSON: object keys sorted bytewise,
 * no whitespace, strings with only '"', '\\' and control characters escaped
 * (\uXXXX, lower-case hex), numbers by value (a whole number written out in
 * full decimal digits without exponent, whatever its size — int64, uint64 or
 * a whole double — and -0 as 0; anything else as %.17g), so the jsonb round
 * trip (which prints plain digits) does not change the hash.
 *
 * Appends of one org are serialised by pg_advisory_xact_lock on the org
 * (taken by audit_writer_open inside the caller's transaction and held to
 * its end), so concurrent workers never fork a chain.
 *
 * Threads: a struct audit_writer belongs to one thread and one transaction.
 */
#ifndef SFBRIDGE_AUDIT_H
#define SFBRIDGE_AUDIT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct pg;

/* What the caller records; every pointer is borrowed for the call. */
struct audit_entry {
    const char *connection_id;   /* uuid or NULL */
    const char *request_id;      /* uuid or NULL */
    const char *actor;           /* required */
    const char *source;          /* chat / workflow / meeting_notes / cim, or NULL */
    const char *action;          /* create / update / upsert / delete, required */
    const char *sf_object;       /* NULL when unknown */
    const char *platform_object;
    const char *ref;
    const char *salesforce_id;
    struct json_object *fields;  /* the exported Salesforce fields and values; NULL = {} */
    const char *outcome;         /* created / updated / unchanged / failed / refused, required */
    const char *sf_error_code;   /* NULL when none */
    const char *sf_error_message;
};

/* A stored row, as hashed (all strings borrowed). */
struct audit_record {
    long long audit_id;
    const char *org_id;
    struct audit_entry e;
    const char *created_at; /* canonical form, see above */
    const char *prev_hash;
};

#define AUDIT_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"

/* Canonical JSON of a value (see above); caller frees. NULL value = "null". */
char *audit_canonical_json(struct json_object *v);
/* Parse stored fields text (what PostgreSQL prints for the jsonb column) for
 * hashing: like json_parse, but integer literals outside int64/uint64 (which
 * json-c would clamp) are read as doubles, so they keep their value. Caller
 * owns the result; NULL with e set on invalid JSON. */
struct json_object *audit_parse_stored(const char *text, struct err *e);
/* Canonical serialisation of a row; caller frees. */
char *audit_canonical(const struct audit_record *r);
/* SHA-256 hex of audit_canonical(r). */
void audit_hash(const struct audit_record *r, char out[65]);

/* Batch appender for one org inside the caller's open transaction: opening
 * takes the org's advisory lock and reads the chain head; audit_writer_add
 * hashes and buffers; audit_writer_flush writes the buffered rows (COPY).
 * Caller frees with audit_writer_free (after flush, or to discard). */
struct audit_writer;
bool audit_writer_open(struct pg *pg, const char *org_id, struct audit_writer **out, struct err *e);
bool audit_writer_add(struct audit_writer *w, const struct audit_entry *a, struct err *e);
bool audit_writer_flush(struct audit_writer *w, struct err *e);
void audit_writer_free(struct audit_writer **w); /* NULL-safe, nulls *w */
long long audit_writer_count(const struct audit_writer *w); /* rows added so far */

/* One row, in the caller's open transaction. */
bool audit_append(struct pg *pg, const char *org_id, const struct audit_entry *a, struct err *e);

/* Walk the chain of one org (org_id) or of every org (NULL). *rows = rows
 * checked. When a row is bad: *bad_audit_id = its audit_id, bad_org and
 * reason filled (lower case, names the row); otherwise *bad_audit_id = 0.
 * Returns false only when the walk itself failed (e set). */
bool audit_verify(struct pg *pg, const char *org_id, long long *rows, long long *bad_audit_id, char *bad_org,
                  size_t bad_org_cap, char *reason, size_t reason_cap, struct err *e);

#endif
