/*
 * cfg: the table of environment variables, read once at start-up.
 * The table (cfg_table) is the single source of truth: the README's
 * configuration section is generated from it (`sfbridge config --markdown`).
 * The struct is read-only after cfg_load(); strings are borrowed from the
 * environment or from static defaults for the process lifetime.
 */
#ifndef SFBRIDGE_CFG_H
#define SFBRIDGE_CFG_H

#include <stdbool.h>
#include <stddef.h>

struct cfg {
    const char *pg_dsn;
    const char *kafka_brokers;
    const char *group_id;
    const char *token_key;      /* base64 of 32 bytes */
    const char *token_key_id;   /* id stored next to ciphertexts, for rotation */
    const char *sf_client_id;
    const char *sf_client_secret;
    const char *sf_login_url;
    const char *sf_api_version; /* e.g. "60.0" */
    const char *sf_ca_file;     /* extra CA bundle for TLS verification, "" = system */
    const char *log_level;
    const char *metrics_addr;   /* host:port, "" = no metrics server */
    const char *topic_prefix;   /* prepended to every topic name, "" by default */
    int sf_timeout_ms;
    int bulk_threshold;         /* records above which a sync uses Bulk 2.0 */
    int api_budget_share;       /* percent of the org's daily limit sfbridge may use */
    int max_retry_backoff_ms;
    int defer_seconds;          /* how long budget-deferred work waits before it is tried again */
};

struct cfg_var {
    const char *name;        /* environment variable */
    const char *dflt;        /* default value as text */
    const char *description; /* one line, for --help and the README */
    bool secret;             /* never printed */
};

/* The table, terminated by an entry with name == NULL. */
extern const struct cfg_var cfg_table[];

/* Read the environment into `c`. On any invalid value, prints every problem
 * to stderr (one JSON log line each) and returns false. */
bool cfg_load(struct cfg *c);

/* cfg_load() or exit(78) (EX_CONFIG). */
void cfg_load_or_exit(struct cfg *c);

/* The physical name of a logical topic ("sync.requested") with the prefix, into buf. Returns buf. */
const char *cfg_topic(const struct cfg *c, const char *logical, char *buf, size_t cap);

/* The topics of DESIGN.md: inputs (each with a .dlq twin) and outputs, NULL-terminated. */
extern const char *const cfg_input_topics[];
extern const char *const cfg_output_topics[];

/* true for https:// URLs, and for plain http:// only when the host is exactly 127.0.0.1, localhost
 * or [::1] (the emulator): credentials never travel in clear over a network. */
bool cfg_url_allowed(const char *url);

/* Print the table as a Markdown table (for the README). */
void cfg_print_markdown(void);

#endif
