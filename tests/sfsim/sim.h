/*
 * sim: the Salesforce emulator as a library (libsfsim.a), used by
 * build/bin/sfsim (tests/sfsim/main.c), the unit tests and bench-sfsim.
 *
 * Entry point used by the tests:
 *
 *     struct sim_config cfg;
 *     sim_config_defaults(&cfg);
 *     cfg.seed_accounts = 100;
 *     char err[256];
 *     struct sim *s = sim_new(&cfg, err, sizeof err);  // seeds the data
 *     sim_start(s, err, sizeof err);                   // listens (cfg.port 0 = free port)
 *     const char *url = sim_base_url(s);               // "http://127.0.0.1:40123"
 *     const char *tok = ...; sim_issue_token(s, tok_buf, sizeof tok_buf);
 *     ...
 *     sim_free(s);                                     // stops and frees
 *
 * Threads: sim_start runs libmicrohttpd with one thread per connection; all
 * state is locked inside. sim_new/sim_free must not race with each other.
 * Ownership: the config's strings are copied by sim_new.
 */
#ifndef SFSIM_SIM_H
#define SFSIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sim_config {
    unsigned port; /* 0 = pick a free one */
    const char *host;
    const char *ready_file;
    const char *client_id, *client_secret, *user;
    int64_t session_timeout_s;
    bool rotate_refresh_tokens;
    int64_t api_limit;
    uint64_t seed;
    long seed_accounts, seed_contacts, seed_opportunities, seed_interactions,
        seed_tasks, seed_events;
    long seed_attendees; /* InteractionAttendees of the seeded interactions */
    int bulk_delay_ms;
    const char *tls_cert, *tls_key; /* PEM file paths; both set = HTTPS */
    bool quiet;
};

struct sim;

void sim_config_defaults(struct sim_config *c);
/* creates the emulator and seeds its data; NULL on failure (err filled) */
struct sim *sim_new(const struct sim_config *c, char *err, size_t errsz);
/* starts listening; false on failure (err filled) */
bool sim_start(struct sim *s, char *err, size_t errsz);
/* base URL (login URL = instance URL), valid after sim_start; borrowed */
const char *sim_base_url(const struct sim *s);
unsigned sim_port(const struct sim *s);
/* issues a fresh access token for the test user directly (no HTTP), for
 * tests that do not exercise OAuth; false if out is too small */
bool sim_issue_token(struct sim *s, char *out, size_t outsz);
/* stops listening and frees everything; NULL is fine */
void sim_free(struct sim *s);

#endif
