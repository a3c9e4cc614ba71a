/*
 * soql: SOQL built only from validated identifiers and escaped literals.
 * No state, thread-safe; a struct soql_select belongs to one thread.
 *
 * Identifiers: ^[A-Za-z][A-Za-z0-9_]{0,79}$, no "__" except as the separators
 * of Salesforce API names: name__c/__r/__mdt/__e/__x/__b/__s/__pc/__pr/__kav/
 * __History/__Share/__Feed/__ChangeEvent, ns__name__c, name__Latitude__s,
 * ns__name__Longitude__s. No leading/trailing '_', no "___".
 */
#ifndef SFBRIDGE_SOQL_H
#define SFBRIDGE_SOQL_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

bool soql_ident_valid(const char *s);
/* ident or ident.ident... (max 5 levels) for relationship fields */
bool soql_field_valid(const char *s);

/* 'escaped' with \\ \' \" \n \r \t \b \f escapes; caller frees; NULL on
 * invalid UTF-8 (or NULL input / ENOMEM). */
char *soql_quote(const char *value);
/* For the right-hand side of LIKE: like soql_quote, also escapes % and _ so
 * they match literally, then adds an unescaped % wildcard at the start
 * (prefix) and/or the end (suffix). Caller frees; NULL on invalid UTF-8. */
char *soql_quote_like(const char *value, bool prefix, bool suffix);

/* 2024-01-02T03:04:05.000Z (UTC, unquoted SOQL dateTime literal). */
void soql_datetime(long long epoch_ms, char *out, size_t cap);

/* true when `lit` is a literal a builder accepts: a soql_quote() result, a
 * number (-?digits[.digits]), true/false/null, a date YYYY-MM-DD or a
 * dateTime YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm|-hh:mm). */
bool soql_literal_valid(const char *lit);

/* "field op literal" after validation (op in = != < <= > >= LIKE); caller
 * frees; NULL with ERR_INVALID_MESSAGE when something is invalid. For
 * composing OR clauses passed to soql_select_where_raw. */
char *soql_cmp(const char *field, const char *op, const char *literal, struct err *e);

struct soql_select; /* builder */
/* Validates object (ERR_INVALID_MESSAGE not retriable). Caller frees. */
struct soql_select *soql_select_new(const char *object, struct err *e);
/* Validates (soql_field_valid), dedupes case-insensitively; copied. */
bool soql_select_field(struct soql_select *s, const char *field, struct err *e);
/* Appends "(clause)" ANDed with the others; only from soql_* generated
 * pieces (soql_cmp). Copied. Rejects ';' and unbalanced quotes/parentheses. */
bool soql_select_where_raw(struct soql_select *s, const char *clause);
/* Appends "field op literal" ANDed; literal already formatted by soql_quote /
 * soql_datetime or a number (checked with soql_literal_valid). */
bool soql_where_cmp(struct soql_select *s, const char *field, const char *op, const char *literal,
                    struct err *e);
/* Appends "field IN (l1, l2, ...)"; n >= 1, every literal checked. */
bool soql_where_in(struct soql_select *s, const char *field, const char *const *literals, size_t n,
                   struct err *e);
/* "SystemModstamp ASC, Id ASC": comma-separated validated fields, each with
 * optional ASC|DESC and NULLS FIRST|LAST. An invalid value is reported by
 * soql_select_build. Copied; replaces a previous order. */
void soql_select_order(struct soql_select *s, const char *order_by);
/* limit > 0; 0 removes the limit; negative is reported by build. */
void soql_select_limit(struct soql_select *s, long limit);
/* "SELECT f1, f2 FROM Obj [WHERE (..) AND (..)] [ORDER BY ..] [LIMIT n]";
 * caller frees. Fails (ERR_INVALID_MESSAGE) with no field or after any
 * earlier invalid input to the builder. */
char *soql_select_build(struct soql_select *s, struct err *e);
void soql_select_free(struct soql_select **s); /* NULL-safe; nulls *s */

#endif
