/*
 * csv: streaming RFC-4180 parser (comma delimiter, quoted fields, doubled
 * quotes, CRLF / LF / CR line endings, embedded newlines), fed in arbitrary
 * chunks. Memory is bounded by one row (a row over 64 MiB or with more than
 * 65536 fields is an error). Empty lines are skipped; NUL bytes are dropped.
 * After a closing quote only ',' or a line ending may follow.
 * One parser per thread; no global state.
 */
#ifndef SFBRIDGE_CSV_H
#define SFBRIDGE_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

typedef int (*csv_row_fn)(void *ud, size_t n, const char *const *fields);

struct csv_parser;
/* NULL on ENOMEM. Caller frees with csv_parser_free. */
struct csv_parser *csv_parser_new(void);
/* Feed bytes (borrowed for the call); calls row(ud, n, fields) for each
 * complete row (fields NUL-terminated, borrowed for the call). A non-zero
 * return from row stops with ERR_INTERNAL "csv row callback aborted";
 * malformed input -> ERR_INVALID_MESSAGE. After an error the parser refuses
 * further input. */
bool csv_parser_feed(struct csv_parser *p, const char *buf, size_t len, csv_row_fn row, void *ud,
                     struct err *e);
/* End of input: emits a last row without a line ending; an open quote is an
 * error. The parser is then reset for a new document. */
bool csv_parser_finish(struct csv_parser *p, csv_row_fn row, void *ud, struct err *e);
/* Rows emitted so far (since new/finish). */
size_t csv_parser_rows(const struct csv_parser *p);
void csv_parser_free(struct csv_parser **p); /* NULL-safe; nulls *p */

#endif
