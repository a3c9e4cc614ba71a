/*
 * fuzz_sfsim_soql: libFuzzer target for the emulator's SOQL parser
 * (sim_soql_compile in tests/sfsim/soql.c, declared in tests/sfsim/simint.h).
 * Input: the query text (NUL-terminated copy). A compiled query is also run
 * against a small seeded store (sim_new without listening; kept for the
 * process) and its first rows rendered as JSON and CSV, so WHERE / ORDER BY /
 * LIMIT evaluation is fuzzed too. Invariants (abort on violation): a refused
 * query sets a 400 error with a code and a message; a compiled query names a
 * known object; a run returns at most the store's records.
 * Also compiled into tests/test_fuzz_regress.c (FUZZ_ENTRY renamed).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../sfsim/simint.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static struct sim *fuzz_sfsim_store(void)
{
    static struct sim *sim = NULL;
    if (!sim) {
        struct sim_config cfg;
        sim_config_defaults(&cfg);
        cfg.quiet = true;
        cfg.seed_accounts = 40;
        cfg.seed_contacts = 40;
        cfg.seed_opportunities = 40;
        cfg.seed_interactions = 10;
        cfg.seed_tasks = 10;
        cfg.seed_events = 10;
        char err[256];
        sim = sim_new(&cfg, err, sizeof err);
        if (!sim)
            abort();
    }
    return sim;
}

static void fuzz_sfsim_run(struct sim_query *c, bool all_rows)
{
    struct sim *sim = fuzz_sfsim_store();
    struct sim_err e;
    memset(&e, 0, sizeof e);
    uint32_t *rows = NULL;
    size_t n = 0;
    pthread_rwlock_rdlock(&sim->store.lock);
    if (sim_soql_run_locked(&sim->store, c, all_rows, &rows, &n, &e)) {
        if (n > 200)
            abort();
        struct sim_buf b;
        memset(&b, 0, sizeof b);
        for (size_t i = 0; i < n && i < 20 && !sim_soql_is_count(c); i++) {
            sim_soql_rec_json(&sim->store, c, rows[i], "60.0", &b);
            sim_soql_rec_csv(&sim->store, c, rows[i], &b);
        }
        sim_buf_free(&b);
    } else if (e.code[0] == '\0') {
        abort();
    }
    pthread_rwlock_unlock(&sim->store.lock);
    free(rows);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    char *q = malloc(size + 1);
    if (!q)
        return 0;
    memcpy(q, data, size);
    q[size] = '\0';
    struct sim_err e;
    memset(&e, 0, sizeof e);
    struct sim_query *c = sim_soql_compile(q, &e);
    if (!c) {
        if (e.status != 400 || e.code[0] == '\0' || memchr(e.msg, '\0', sizeof e.msg) == NULL)
            abort();
    } else {
        if (sim_soql_object(c) < 0)
            abort();
        (void)sim_soql_is_count(c);
        (void)sim_soql_has_offset(c);
        struct sim_buf b;
        memset(&b, 0, sizeof b);
        sim_soql_csv_header(c, &b);
        sim_buf_free(&b);
        fuzz_sfsim_run(c, size & 1);
        sim_soql_free(c);
    }
    free(q);
    return 0;
}
