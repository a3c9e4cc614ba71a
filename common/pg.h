/*
 * pg: the only module that includes libpq-fe.h.
 *
 * A struct pg is one connection, owned by one thread. Every query is
 * parameterised (text parameters; NULL pointer = SQL NULL). Errors are mapped
 * once here: SQLSTATE classes 08 (connection), 40 (serialization/deadlock),
 * 53 (resources), 57 (operator intervention, e.g. admin shutdown) and a lost
 * connection are retriable; everything else (22 data, 23 constraint, ...) is
 * not. After a retriable connection failure the next call reconnects.
 */
#ifndef SFBRIDGE_PG_H
#define SFBRIDGE_PG_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct pg;
struct pg_res;

/* Connect, retrying with backoff for up to `wait_ms` (0 = one try). The DSN is
 * copied. Returns NULL with e set. */
struct pg *pg_open(const char *dsn, int wait_ms, struct err *e);
void pg_close(struct pg **db); /* NULL-safe, nulls *db */

/* Reconnect if the connection is bad; true when usable. */
bool pg_ensure(struct pg *db, struct err *e);

/* Run one statement with text parameters. Returns a result (caller frees with
 * pg_res_free) for commands and queries, or NULL with e set. */
struct pg_res *pg_exec(struct pg *db, const char *sql, int nparams, const char *const *params, struct err *e);
/* Same, discarding the result. */
bool pg_run(struct pg *db, const char *sql, int nparams, const char *const *params, struct err *e);

/* Run a trusted multi-statement script (a migration compiled into the binary;
 * never anything built from input). */
bool pg_run_script(struct pg *db, const char *sql, struct err *e);

bool pg_begin(struct pg *db, struct err *e);
bool pg_commit(struct pg *db, struct err *e);
void pg_rollback(struct pg *db); /* best effort, never fails */
bool pg_in_tx(const struct pg *db);

int pg_res_rows(const struct pg_res *r);
int pg_res_cols(const struct pg_res *r);
/* Borrowed until pg_res_free; NULL for SQL NULL. */
const char *pg_res_get(const struct pg_res *r, int row, int col);
bool pg_res_isnull(const struct pg_res *r, int row, int col);
int pg_res_col(const struct pg_res *r, const char *name); /* -1 when absent */
long long pg_res_affected(const struct pg_res *r);         /* rows affected by INSERT/UPDATE */
void pg_res_free(struct pg_res **r);

/* COPY ... FROM STDIN in text format. Between start and end only pg_copy_put. */
bool pg_copy_start(struct pg *db, const char *copy_sql, struct err *e);
bool pg_copy_put(struct pg *db, const char *buf, size_t len, struct err *e);
bool pg_copy_end(struct pg *db, struct err *e);
/* Append `s` escaped for COPY text format to buf (a growing buffer); s == NULL -> \N. */
struct pg_buf {
    char *data;
    size_t len, cap;
};
void pg_buf_copy_field(struct pg_buf *b, const char *s);
void pg_buf_append(struct pg_buf *b, const char *s, size_t n);
void pg_buf_free(struct pg_buf *b);

/* The schema version recorded by `sfbridge migrate` (0 when none). */
bool pg_schema_version(struct pg *db, int *version, struct err *e);
/* Refuse to run against a schema this build does not know: false + clear message. */
bool pg_check_schema(struct pg *db, int expected, struct err *e);

/* Session id of the backend (for tests that pg_terminate_backend it). */
int pg_backend_pid(const struct pg *db);

#endif
