/*
 * sfbridge-sync internals: one sync.requested = one struct run; each
 * Salesforce object of the request = one struct obj_run.
 *
 * Data flow per object: SOQL built from the mapping (soql.h) -> REST pages
 * (query/queryAll, nextRecordsUrl) or a Bulk 2.0 job above the threshold ->
 * rows rendered into a COPY buffer (batch) -> one transaction per batch:
 * COPY into a temp stage table, one INSERT ... ON CONFLICT DO UPDATE ...
 * WHERE <stale guard and "something changed"> plus the soft deletes, link
 * fix-ups for children that arrived before their parent, the cursor in
 * sync_state and the counters in sync_runs -> COMMIT -> sync.progress.
 *
 * Threads: one (the worker loop's). Ownership: everything in a run is owned
 * by it and freed by run_cleanup.
 */
#ifndef SFBRIDGE_SYNC_H
#define SFBRIDGE_SYNC_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "budget.h"
#include "conn.h"
#include "err.h"
#include "mapping.h"
#include "pg.h"
#include "worker.h"

/* re-read this much before the stored watermark on an incremental sync (late commits) */
#define SYNC_LOOKBACK_MS 2000
/* rows per transaction for Bulk results (REST: one page per transaction) */
#define SYNC_BULK_BATCH 10000
/* Bulk results page (maxRecords): few calls; the CSV is streamed, so this does not cost memory here */
#define SYNC_BULK_PAGE 1000000
/* adaptive windows: the smallest SystemModstamp window (stamps have whole seconds), the first LIMIT page
 * inside a one-second window that still times out, and "sparse" (a window this small grows again) */
#define SYNC_WINDOW_MIN_MS 1000
#define SYNC_WINDOW_LIMIT 2000
#define SYNC_WINDOW_SPARSE 1000
/* getDeleted covers 15 days; stay a little inside */
#define SYNC_GETDELETED_DAYS 14

struct sync_ctx {
    struct sf_client *sf;
};

enum sync_mode { MODE_INCREMENTAL, MODE_FULL, MODE_RECONCILE, MODE_FORMULAS };

struct col_map {
    const struct field_map *f;
    int sel;               /* index into obj_run.sel */
    const char *core_type; /* NULL: attribute */
    int core;              /* index into obj_run.core when core_type */
};

struct obj_run {
    char sf_object[96];
    const struct object_map *om; /* NULL: no mapping at all */
    const char *table, *platform;
    char **sel; /* Salesforce fields after Id, SystemModstamp, IsDeleted */
    size_t nsel;
    struct col_map *cols;
    size_t ncols;
    const char **core, **core_type; /* distinct mapped core columns */
    size_t ncore;
    bool has_attrs;
    char *copy_sql, *merge_sql;
    long long fetched, inserted, updated, deleted, unchanged;
    long long total; /* -1 unknown */
    long long pages;
    char state[16]; /* pending | running | done | deferred | failed */
    struct err err;
    /* cursor of the current fetch: last committed (SystemModstamp, Id) */
    char cur_mod[40], cur_id[20];
    bool full_resume;
    /* formulas: the mapped calculated fields (from the org's describe) */
    char **calc;
    size_t ncalc;
    bool described;
};

struct run {
    struct job *job;
    struct deps *d;
    struct sync_ctx *x;
    struct conn_session cs;
    bool cs_open;
    struct mapping_set ms;
    enum sync_mode mode;
    const char *mode_name;
    enum budget_class cls;
    struct obj_run *objs;
    size_t nobjs;
    long long calls_base;
    int64_t t0;
    bool deferred;
    bool usage_refreshed; /* GET /limits once when an old figure refuses the run's first call */
    long long retry_at_ms;
    struct err defer_err;
    /* current batch */
    struct obj_run *o;
    struct pg_buf buf;
    size_t rows;
    char last_mod[40], last_id[20];
    /* scratch for one row */
    char **slot;         /* per core column, owned strings */
    struct pg_buf attrs; /* JSON object text */
    /* bulk column map */
    int *bulk_idx;
    int bulk_id, bulk_mod, bulk_del;
    bool bulk_mapped;
    struct err cb_err;
};

/* load.c */
bool sync_obj_prepare(struct run *r, struct obj_run *o, struct err *e);
bool sync_is_calc(const struct obj_run *o, const char *sf_field);
void sync_obj_cleanup(struct obj_run *o);
/* Render one record into the batch. `get(ud, i)` returns the text of select
 * column i (-3 Id, -2 SystemModstamp, -1 IsDeleted, 0.. sel) or NULL. */
typedef const char *(*sync_get_fn)(void *ud, int i, char *tmp, size_t cap);
bool sync_add_row(struct run *r, sync_get_fn get, void *ud, struct err *e);
/* Commit the batch (may be empty: then only the cursor/counters), emit progress. */
bool sync_flush(struct run *r, bool full_cursor, struct err *e);
bool sync_save_run(struct run *r, const char *status, struct err *e);
bool sync_soft_delete_ids(struct run *r, struct obj_run *o, struct json_object *deleted, struct err *e);
void sync_emit_progress(struct run *r);
/* {object: {fetched, inserted, updated, deleted, unchanged[, error][, state, total]}}; caller owns */
struct json_object *sync_objects_json(struct run *r, bool with_state);
long long sync_now_ms(void);
long long sync_calls(const struct run *r);

/* fetch.c */
bool sync_fetch_object(struct run *r, struct obj_run *o, struct err *e);
bool sync_reconcile_object(struct run *r, struct obj_run *o, struct err *e);
/* formulas: the object's describe -> o->calc (mapped import fields with calculated: true) */
bool sync_describe_calc(struct run *r, struct obj_run *o, struct err *e);
bool sync_formulas_object(struct run *r, struct obj_run *o, struct err *e);

#endif
