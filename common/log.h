/*
 * log: JSON lines on stderr, one object per line:
 *   {"ts":"2026-12-03T19:30:00.123Z","level":"info","proc":"sfbridge-sync","msg":"..."}
 * Level from SFBRIDGE_LOG_LEVEL (debug|info|warn|error; default info).
 * Every message goes through log_redact() first, so access tokens, refresh
 * tokens, bearer headers, client secrets and authorization codes never reach
 * the log even if a caller passes them by mistake.
 * Thread-safe (one fputs per line). No allocation on the hot path.
 */
#ifndef SFBRIDGE_LOG_H
#define SFBRIDGE_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Set the process name and level. `proc` is borrowed for the process lifetime.
 * `level` may be NULL (keeps info). Unknown level names fall back to info. */
void log_init(const char *proc, const char *level);

/* Parse a level name; returns -1 when unknown. */
int log_level_parse(const char *name);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Replace secrets in `s` (NUL-terminated, modified in place) with "[REDACTED]"
 * or a mask of the same length when shorter. Recognised: Salesforce access
 * tokens (00D...!...), refresh tokens (5Aep...), "Bearer <x>", and values of
 * access_token / refresh_token / client_secret / code / code_verifier /
 * password in JSON ("k":"v") or form (k=v) shape. Exposed for tests. */
void log_redact(char *s, size_t cap);

#endif
