/*
 * simint: internal declarations shared by the sfsim sources (not for clients;
 * clients use sim.h).
 *
 * Threads: the HTTP layer runs one thread per connection. Record data lives in
 * struct sim_store behind a rwlock (readers: query/retrieve/describe; writers:
 * every DML). Everything else (tokens, faults, request log, cursors, jobs) is
 * behind sim->mu. Lock order: store lock first, then sim->mu; never the
 * reverse. Functions named *_locked expect the store lock to be held.
 */
#ifndef SFSIM_SIMINT_H
#define SFSIM_SIMINT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "sim.h"

/* ---------------------------------------------------------------- buffer */
struct sim_buf {
    char *p;
    size_t len, cap;
};
void sim_buf_put(struct sim_buf *b, const void *data, size_t n);
void sim_buf_puts(struct sim_buf *b, const char *s);
void sim_buf_putc(struct sim_buf *b, char c);
void sim_buf_printf(struct sim_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* appends s as a quoted JSON string (NULL -> null) */
void sim_buf_json_str(struct sim_buf *b, const char *s);
/* appends a double the shortest way that round-trips */
void sim_buf_num(struct sim_buf *b, double d);
/* the NUL-terminated contents, never NULL; ownership moves to the caller */
char *sim_buf_take(struct sim_buf *b, size_t *len);
void sim_buf_free(struct sim_buf *b);

/* ---------------------------------------------------------------- time */
int64_t sim_days_from_civil(int y, int m, int d);
void sim_civil_from_days(int64_t z, int *y, int *m, int *d);
/* "2013-05-20T20:49:32.000+0000" */
void sim_fmt_datetime(int64_t ms, char out[32]);
/* "2013-05-20" */
void sim_fmt_date(int64_t days, char out[16]);
/* ISO date-time: YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm|-hh:mm|+hhmm); also
 * accepts a space instead of T; consumed length in *used (may be NULL) */
bool sim_parse_datetime(const char *s, size_t len, int64_t *ms, size_t *used);
bool sim_parse_date(const char *s, size_t len, int64_t *days, size_t *used);
int64_t sim_wall_ms(void);

/* ---------------------------------------------------------------- ids */
/* 15-char id: prefix(3) "Hs0" base62(n, 9) + 3-char case-safe checksum */
void sim_id_make(const char *prefix, uint64_t n, char out[19]);
void sim_id_checksum(const char *id15, char out[3]);
/* validates a 15- or 18-char id (checksum checked for 18) -> 18 chars */
bool sim_id_to18(const char *in, char out[19]);
/* decodes the counter of an id made by sim_id_make; false if not ours */
bool sim_id_decode(const char *id18, char prefix[4], uint64_t *n);

/* ---------------------------------------------------------------- misc */
/* base64(HMAC-SHA256(key, msg)) with padding, 44 chars */
void sim_hmac_b64(const char *key, const char *msg, char out[64]);
/* base64url(SHA-256(in)) without padding */
void sim_s256_b64url(const char *in, char out[64]);
void sim_b64(const unsigned char *in, size_t n, bool url, char *out, size_t outsz);
/* random alphanumeric text of n chars from the OS RNG */
void sim_rand_alnum(char *out, size_t n);
uint64_t sim_rng(uint64_t *state);
/* decodes %XX and '+' in place; returns new length */
size_t sim_url_decode(char *s);
/* finds key in an x-www-form-urlencoded body; returns malloc'd decoded
 * value or NULL */
char *sim_form_get(const char *body, const char *key);
bool sim_strieq(const char *a, const char *b);
bool sim_strnieq(const char *a, const char *b, size_t n);

/* ---------------------------------------------------------------- schema */
enum sim_ftype {
    SIM_T_ID,
    SIM_T_STRING,
    SIM_T_REFERENCE,
    SIM_T_PICKLIST,
    SIM_T_CURRENCY,
    SIM_T_DOUBLE,
    SIM_T_PERCENT,
    SIM_T_DATE,
    SIM_T_DATETIME,
    SIM_T_BOOLEAN,
    SIM_T_TEXTAREA,
    SIM_T_EMAIL,
    SIM_T_PHONE,
    SIM_T_URL,
    SIM_T_INT,
};
/* storage class of a type */
enum sim_sclass { SIM_S_STR, SIM_S_NUM, SIM_S_INT, SIM_S_BOOL, SIM_S_DATE, SIM_S_DT };

#define SIM_F_NILLABLE 0x001u
#define SIM_F_CREATE 0x002u
#define SIM_F_UPDATE 0x004u
#define SIM_F_CALC 0x008u
#define SIM_F_EXTID 0x010u
#define SIM_F_UNIQUE 0x020u
#define SIM_F_REQUIRED 0x040u
#define SIM_F_NAME 0x080u
#define SIM_F_CUSTOM 0x100u
#define SIM_F_DEFAULTED 0x200u

#define SIM_W (SIM_F_NILLABLE | SIM_F_CREATE | SIM_F_UPDATE)

struct sim_field {
    const char *name;
    const char *label;
    enum sim_ftype type;
    int length; /* strings; precision for numbers */
    int scale;
    unsigned flags;
    const char *ref1, *ref2; /* referenceTo (up to two) */
    const char *rel;         /* relationshipName */
    const char *const *pick; /* NULL-terminated picklist values */
    const char *formula;     /* calculatedFormula text */
};

enum sim_obj {
    SIM_ACCOUNT,
    SIM_CONTACT,
    SIM_OPPORTUNITY,
    SIM_INTERACTION,
    SIM_TASK,
    SIM_EVENT,
    SIM_USER,
    SIM_INTERACTION_ATTENDEE,
    SIM_NOBJ
};

struct sim_object {
    const char *name, *label, *plural, *prefix;
    const struct sim_field *fields;
    int nfields;
    int f_id, f_isdeleted, f_created, f_createdby, f_lastmod, f_lastmodby,
        f_sysmod, f_name, f_owner;
};

extern const struct sim_object sim_objects[SIM_NOBJ];
/* case-insensitive; -1 when unknown */
int sim_object_find(const char *name);
int sim_object_by_prefix(const char *prefix3);
int sim_field_find(const struct sim_object *o, const char *name);
int sim_field_find_n(const struct sim_object *o, const char *name, size_t n);
int sim_rel_find_n(const struct sim_object *o, const char *rel, size_t n);
enum sim_sclass sim_sclass(enum sim_ftype t);
const char *sim_type_name(enum sim_ftype t);
bool sim_is_text(enum sim_ftype t);

/* ---------------------------------------------------------------- store */
union sim_slot {
    int64_t i;
    double d;
    const char *s;
};

struct sim_rec {
    char id[19];
    uint8_t purged;
    uint64_t nulls; /* bit f set: field f is null */
    double agg;     /* Account: open pipeline roll-up */
    union sim_slot v[];
};

struct sim_val {
    enum sim_sclass sc;
    bool null;
    union sim_slot u;
};

struct sim_hidx; /* hash index of an external-id field */

struct sim_table {
    int obj;
    size_t stride;
    char **slabs;
    size_t nslabs;
    uint32_t n;
    struct sim_hidx *hidx[64];
};

struct sim_undo_ent {
    int obj;
    uint32_t idx;
    bool created;
    char *copy;
};

struct sim_undo {
    struct sim_undo_ent *e;
    size_t n, cap;
};

struct sim_arena_chunk;

struct sim_store {
    pthread_rwlock_t lock;
    struct sim_table t[SIM_NOBJ];
    struct sim_arena_chunk *arena;
    struct sim_undo *undo; /* non-NULL while a transaction records undo */
    char org_id[19];
};

/* a DML error, Salesforce style */
struct sim_err {
    int status;
    char code[48];
    char msg[512];
    char fields[4][64];
    int nfields;
};
void sim_err_set(struct sim_err *e, int status, const char *code,
                 const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

int sim_store_init(struct sim_store *s);
void sim_store_cleanup(struct sim_store *s);
struct sim_rec *sim_rec_at(const struct sim_store *s, int obj, uint32_t idx);
/* resolves any of our ids; NULL when unknown or purged */
struct sim_rec *sim_store_find(const struct sim_store *s, const char *id,
                               int *obj, uint32_t *idx);
struct sim_val sim_get(const struct sim_store *s, int obj,
                       const struct sim_rec *r, int f);
bool sim_rec_deleted(const struct sim_store *s, int obj, const struct sim_rec *r);
const char *sim_arena_strdup(struct sim_store *s, const char *str, size_t n);

enum sim_wmode { SIM_W_INSERT, SIM_W_UPDATE, SIM_W_DIRECT_INSERT, SIM_W_DIRECT_UPDATE };
/* validates and applies a JSON object of fields to a new record (the new
 * index is returned in *idx) or to record *idx. DIRECT modes are the
 * control API: any non-calculated, non-system field is writable and faults
 * do not apply.
 * Keys "attributes" are ignored; skip_field (may be NULL) is ignored too.
 * On failure nothing is changed and e is set. */
bool sim_store_write_locked(struct sim *sim, int obj, uint32_t *idx,
                            json_object *fields, enum sim_wmode mode,
                            const char *skip_field, struct sim_err *e);
bool sim_store_delete_locked(struct sim *sim, int obj, uint32_t idx, bool hard,
                             struct sim_err *e);
/* records whose ext-id field f equals value (not deleted); returns count,
 * fills up to max indexes */
size_t sim_store_lookup_locked(const struct sim_store *s, int obj, int f,
                               const char *value, uint32_t *out, size_t max);
void sim_undo_begin(struct sim_store *s, struct sim_undo *u);
void sim_undo_rollback(struct sim_store *s, struct sim_undo *u);
void sim_undo_end(struct sim_store *s, struct sim_undo *u);
void sim_store_seed(struct sim *sim);

/* ---------------------------------------------------------------- soql */
struct sim_query; /* compiled SOQL */
/* compiles q; on failure returns NULL and sets e (400 MALFORMED_QUERY,
 * INVALID_FIELD or INVALID_TYPE) */
struct sim_query *sim_soql_compile(const char *q, struct sim_err *e);
void sim_soql_free(struct sim_query *q);
int sim_soql_object(const struct sim_query *q);
bool sim_soql_is_count(const struct sim_query *q);
bool sim_soql_has_offset(const struct sim_query *q);
/* evaluates: matching, sorted, offset/limit applied. *out malloc'd. */
bool sim_soql_run_locked(const struct sim_store *s, const struct sim_query *q,
                         bool all_rows, uint32_t **out, size_t *n,
                         struct sim_err *e);
/* appends the JSON of one record in query-result shape */
void sim_soql_rec_json(const struct sim_store *s, const struct sim_query *q,
                       uint32_t idx, const char *ver, struct sim_buf *b);
/* CSV: header row; one record row */
void sim_soql_csv_header(const struct sim_query *q, struct sim_buf *b);
void sim_soql_rec_csv(const struct sim_store *s, const struct sim_query *q,
                      uint32_t idx, struct sim_buf *b);
/* the JSON value of field f of a record (retrieve/describe shapes) */
void sim_val_json(const struct sim_store *s, int obj, const struct sim_rec *r,
                  int f, struct sim_buf *b);

/* ---------------------------------------------------------------- server */
struct sim_hdr {
    const char *name;
    char *value; /* owned */
};

struct sim_req {
    const char *method;
    const char *path; /* decoded, without query string */
    char *query;      /* decoded "k=v&k=v" (the request log's form) */
    const char *raw_query; /* composite subrequests (conn NULL): encoded */
    char *owned[16];       /* decoded args of a subrequest; freed by its maker */
    int nowned;
    const char *body;
    size_t body_len;
    void *conn; /* struct MHD_Connection */
    const char *ver; /* "60.0" when under /services/data/vNN.N */
    const char *rest; /* path after /services/data/vNN.N */
    int64_t now;
};

struct sim_resp {
    int status;
    const char *ctype;
    char *body;
    size_t len;
    struct sim_hdr h[8];
    int nh;
    const char *endpoint; /* stats key */
    bool json;
};

void sim_resp_hdr(struct sim_resp *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sim_resp_take(struct sim_resp *r, int status, struct sim_buf *b);
void sim_resp_json(struct sim_resp *r, int status, json_object *o);
/* the JSON-array error [{"message","errorCode","fields"}] */
void sim_resp_error(struct sim_resp *r, int status, const char *code,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void sim_resp_err(struct sim_resp *r, const struct sim_err *e);
const char *sim_req_arg(struct sim_req *q, const char *key);
const char *sim_req_header(const struct sim_req *q, const char *key);

struct sim_token {
    char tok[128];
    char refresh[128]; /* parent refresh token for access tokens */
    bool is_refresh;
    bool revoked;
    int64_t issued;
    char scope[128];
};

struct sim_code {
    char code[64];
    char challenge[128];
    char redirect[512];
    char scope[128];
    int64_t issued;
    bool used;
};

struct sim_cursor {
    char loc[19];
    struct sim_query *q;
    uint32_t *idx;
    size_t n;
    int batch;
    int refs;
    int64_t last_used;
};

struct sim_job;

struct sim_faults {
    bool expire_sessions_pending;
    int64_t api_limit, api_used;
    int fail_503_next, fail_503_percent, latency_ms, lock_row_next,
        malformed_json_next, drop_connection_next, bulk_fail_next,
        delay_after_write_ms;
    int64_t query_timeout_above;
    char vr_object[64], vr_field[64], vr_contains[128];
};

struct sim_logent {
    int64_t seq;
    char method[8];
    char *path;
    char *query;
    int status;
    int64_t at_ms;
    size_t body_size;
};

#define SIM_NSTATS 24

struct sim {
    struct sim_config cfg;
    struct sim_store store;
    pthread_mutex_t mu;
    void *daemon; /* struct MHD_Daemon */
    char base_url[128];
    unsigned port;
    int64_t clock_offset_ms;
    uint64_t rng;
    struct sim_faults f;
    int64_t usage_day_start;
    /* tokens */
    struct sim_token *tokens;
    size_t ntokens, captokens;
    struct sim_code *codes;
    size_t ncodes, capcodes;
    /* cursors */
    struct sim_cursor *cursors[256];
    uint64_t cursor_seq;
    /* jobs */
    struct sim_job **jobs;
    size_t njobs, capjobs;
    uint64_t job_seq;
    /* log and stats */
    struct sim_logent *log;
    size_t nlog, caplog;
    int64_t seq;
    int64_t stats[SIM_NSTATS];
    int64_t total, refresh_grants, code_grants;
    char user_id[19];
    char *tls_cert, *tls_key;
};

extern const char *const sim_stat_names[SIM_NSTATS];
void sim_stat(struct sim *sim, const char *name); /* takes mu */
int64_t sim_now(struct sim *sim);
/* takes mu; true when this write must fail with UNABLE_TO_LOCK_ROW */
bool sim_fault_lock_row(struct sim *sim);

/* endpoint handlers (server.c dispatches) */
void sim_oauth_handle(struct sim *sim, struct sim_req *q, struct sim_resp *r);
void sim_identity_handle(struct sim *sim, struct sim_req *q, struct sim_resp *r);
/* checks a Bearer token; false -> r is the 401 */
bool sim_oauth_check(struct sim *sim, struct sim_req *q, struct sim_resp *r);
void sim_rest_handle(struct sim *sim, struct sim_req *q, struct sim_resp *r);
/* sub: the path after /jobs/query */
void sim_bulk_handle(struct sim *sim, struct sim_req *q, struct sim_resp *r,
                     const char *sub);
void sim_bulk_free_all(struct sim *sim);
void sim_cursor_release(struct sim *sim, struct sim_cursor *c);
void sim_cursors_free(struct sim *sim);
void sim_control_handle(struct sim *sim, struct sim_req *q, struct sim_resp *r);

#endif
