/*
 * err: the one error type of sfbridge.
 *
 * A struct err lives on the caller's stack and is passed last to every
 * function that can fail. The first error set wins: later err_set() calls on
 * an already-set err are ignored, so the innermost, most specific message is
 * the one reported. `retriable` tells the worker loop whether to back off and
 * retry the message (true) or to audit/dead-letter/commit it (false).
 */
#ifndef SFBRIDGE_ERR_H
#define SFBRIDGE_ERR_H

#include <stdbool.h>

enum err_code {
    ERR_OK = 0,
    ERR_INTERNAL,             /* a bug or an impossible state */
    ERR_NOMEM,
    ERR_CONFIG,               /* bad environment / configuration */
    ERR_INVALID_JSON,         /* message is not JSON (or not UTF-8) */
    ERR_INVALID_MESSAGE,      /* JSON, but fails the schema */
    ERR_PG,                   /* PostgreSQL error */
    ERR_KAFKA,                /* Kafka error */
    ERR_HTTP,                 /* transport error talking HTTP */
    ERR_TLS,                  /* TLS verification failed */
    ERR_SALESFORCE,           /* Salesforce returned an error (see sf_code) */
    ERR_AUTH,                 /* OAuth failure (see sf_code, e.g. invalid_grant) */
    ERR_NOT_IMPLEMENTED,
    ERR_NOT_FOUND,            /* unknown org / connection / record */
    ERR_INTEGRATION_DISABLED, /* org has not been enabled by an admin */
    ERR_CONNECTION_EXPIRED,   /* refresh token no longer valid */
    ERR_CONNECTION_DISABLED,
    ERR_MAPPING_REQUIRED,     /* no enabled mapping for an object */
    ERR_DELETE_NOT_SUPPORTED,
    ERR_LIMIT_EXCEEDED,       /* API budget spent: defer */
    ERR_INVALID_STATE,        /* OAuth state unknown/reused/expired */
    ERR_SIGNATURE,            /* token response signature mismatch */
    ERR_FORBIDDEN,            /* tenant isolation: connection of another org */
    ERR_SCHEMA_VERSION,       /* database schema unknown to this build */
    ERR_CODE_COUNT
};

struct err {
    enum err_code code;
    bool retriable;
    char msg[256];
    char sf_code[64]; /* Salesforce errorCode / OAuth error, "" if none */
};

#define ERR_INIT {ERR_OK, false, "", ""}

/* Set the error unless one is already set (first error wins). Returns false so
 * callers can write `return err_set(...)` in bool functions. `e` may be NULL. */
bool err_set(struct err *e, enum err_code code, bool retriable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Same, also recording a Salesforce error code (copied). */
bool err_set_sf(struct err *e, enum err_code code, bool retriable, const char *sf_code,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Reset to ERR_OK. */
void err_clear(struct err *e);

static inline bool err_is_set(const struct err *e) { return e->code != ERR_OK; }

/* Stable upper-case name used in events and DLQ headers, e.g. "MAPPING_REQUIRED".
 * Returned string is static. */
const char *err_code_name(enum err_code code);

/* The code reported to users: sf_code when set (e.g. "REQUIRED_FIELD_MISSING"),
 * otherwise err_code_name(code). Borrowed from `e`. */
const char *err_public_code(const struct err *e);

#endif
