/*
 * pg: libpq wrapper. See pg.h. One connection per thread; not thread-safe.
 */
#include "pg.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

struct pg {
    PGconn *conn;
    char *dsn;
    bool in_tx;
};

struct pg_res {
    PGresult *res;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void notice_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static PGconn *connect_once(const char *dsn, struct err *e)
{
    PGconn *c = PQconnectdb(dsn);
    if (!c) {
        err_set(e, ERR_NOMEM, true, "could not allocate a database connection");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(c));
        msg[strcspn(msg, "\n")] = '\0';
        err_set(e, ERR_PG, true, "could not connect to database: %s", msg);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, notice_quiet, NULL);
    return c;
}

struct pg *pg_open(const char *dsn, int wait_ms, struct err *e)
{
    struct pg *db = calloc(1, sizeof *db);
    if (!db || !(db->dsn = strdup(dsn))) {
        free(db);
        err_set(e, ERR_NOMEM, true, "out of memory");
        return NULL;
    }
    long backoff = 100, waited = 0;
    for (;;) {
        struct err tmp = ERR_INIT;
        db->conn = connect_once(dsn, &tmp);
        if (db->conn)
            return db;
        if (waited >= wait_ms) {
            err_set(e, tmp.code, tmp.retriable, "%s", tmp.msg);
            break;
        }
        if (waited == 0 || backoff >= 2000)
            log_warn("%s; retrying", tmp.msg);
        sleep_ms(backoff);
        waited += backoff;
        backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
    }
    free(db->dsn);
    free(db);
    return NULL;
}

void pg_close(struct pg **db)
{
    if (!db || !*db)
        return;
    if ((*db)->conn)
        PQfinish((*db)->conn);
    free((*db)->dsn);
    free(*db);
    *db = NULL;
}

bool pg_ensure(struct pg *db, struct err *e)
{
    if (db->conn && PQstatus(db->conn) == CONNECTION_OK)
        return true;
    if (db->conn)
        PQfinish(db->conn);
    db->in_tx = false;
    db->conn = connect_once(db->dsn, e);
    if (db->conn)
        log_info("reconnected to database");
    return db->conn != NULL;
}

/* Map a failed result to struct err. */
static void set_pg_error(struct pg *db, PGresult *res, struct err *e)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char msg[200];
    snprintf(msg, sizeof msg, "%s", primary ? primary : PQerrorMessage(db->conn));
    msg[strcspn(msg, "\n")] = '\0';
    bool lost = PQstatus(db->conn) != CONNECTION_OK;
    bool retriable = lost;
    if (state && strlen(state) == 5) {
        if (!strncmp(state, "08", 2) || !strncmp(state, "40", 2) || !strncmp(state, "53", 2) ||
            !strncmp(state, "57", 2))
            retriable = true;
    } else if (!state) {
        retriable = true; /* no SQLSTATE: the connection went away */
    }
    /* the SQLSTATE stays in the message: the public code of a database failure is DATABASE_ERROR */
    err_set(e, ERR_PG, retriable, "database error%s%s: %s", state ? " " : "", state ? state : "", msg);
}

struct pg_res *pg_exec(struct pg *db, const char *sql, int nparams, const char *const *params, struct err *e)
{
    if (!db->in_tx && !pg_ensure(db, e))
        return NULL;
    if (!db->conn) {
        err_set(e, ERR_PG, true, "database connection lost");
        return NULL;
    }
    PGresult *res = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        set_pg_error(db, res, e);
        PQclear(res);
        return NULL;
    }
    struct pg_res *r = malloc(sizeof *r);
    if (!r) {
        PQclear(res);
        err_set(e, ERR_NOMEM, true, "out of memory");
        return NULL;
    }
    r->res = res;
    return r;
}

bool pg_run(struct pg *db, const char *sql, int nparams, const char *const *params, struct err *e)
{
    struct pg_res *r = pg_exec(db, sql, nparams, params, e);
    if (!r)
        return false;
    pg_res_free(&r);
    return true;
}

bool pg_run_script(struct pg *db, const char *sql, struct err *e)
{
    PGresult *res = PQexec(db->conn, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;
    if (!ok)
        set_pg_error(db, res, e);
    PQclear(res);
    return ok;
}

bool pg_begin(struct pg *db, struct err *e)
{
    if (!pg_ensure(db, e))
        return false;
    if (!pg_run(db, "BEGIN", 0, NULL, e))
        return false;
    db->in_tx = true;
    return true;
}

bool pg_commit(struct pg *db, struct err *e)
{
    bool ok = pg_run(db, "COMMIT", 0, NULL, e);
    db->in_tx = false;
    return ok;
}

void pg_rollback(struct pg *db)
{
    if (db->conn && PQstatus(db->conn) == CONNECTION_OK) {
        PGresult *r = PQexec(db->conn, "ROLLBACK");
        PQclear(r);
    }
    db->in_tx = false;
}

bool pg_in_tx(const struct pg *db) { return db->in_tx; }

int pg_res_rows(const struct pg_res *r) { return r ? PQntuples(r->res) : 0; }
int pg_res_cols(const struct pg_res *r) { return r ? PQnfields(r->res) : 0; }

const char *pg_res_get(const struct pg_res *r, int row, int col)
{
    if (!r || row >= PQntuples(r->res) || col < 0 || col >= PQnfields(r->res) ||
        PQgetisnull(r->res, row, col))
        return NULL;
    return PQgetvalue(r->res, row, col);
}

bool pg_res_isnull(const struct pg_res *r, int row, int col)
{
    return pg_res_get(r, row, col) == NULL;
}

int pg_res_col(const struct pg_res *r, const char *name) { return r ? PQfnumber(r->res, name) : -1; }

long long pg_res_affected(const struct pg_res *r)
{
    const char *t = r ? PQcmdTuples(r->res) : "";
    return *t ? strtoll(t, NULL, 10) : 0;
}

void pg_res_free(struct pg_res **r)
{
    if (!r || !*r)
        return;
    PQclear((*r)->res);
    free(*r);
    *r = NULL;
}

bool pg_copy_start(struct pg *db, const char *copy_sql, struct err *e)
{
    PGresult *res = PQexec(db->conn, copy_sql);
    if (!res || PQresultStatus(res) != PGRES_COPY_IN) {
        set_pg_error(db, res, e);
        PQclear(res);
        return false;
    }
    PQclear(res);
    return true;
}

bool pg_copy_put(struct pg *db, const char *buf, size_t len, struct err *e)
{
    while (len > 0) {
        int chunk = len > (1 << 30) ? (1 << 30) : (int)len;
        if (PQputCopyData(db->conn, buf, chunk) != 1) {
            set_pg_error(db, NULL, e);
            return false;
        }
        buf += chunk;
        len -= (size_t)chunk;
    }
    return true;
}

bool pg_copy_end(struct pg *db, struct err *e)
{
    if (PQputCopyEnd(db->conn, NULL) != 1) {
        set_pg_error(db, NULL, e);
        return false;
    }
    bool ok = true;
    PGresult *res;
    while ((res = PQgetResult(db->conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && ok) {
            set_pg_error(db, res, e);
            ok = false;
        }
        PQclear(res);
    }
    return ok;
}

void pg_buf_append(struct pg_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            abort(); /* out of memory while building a COPY buffer: nothing sane to do */
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void pg_buf_copy_field(struct pg_buf *b, const char *s)
{
    if (!s) {
        pg_buf_append(b, "\\N", 2);
        return;
    }
    const char *run = s;
    for (const char *p = s; *p; p++) {
        const char *rep = NULL;
        switch (*p) {
        case '\\': rep = "\\\\"; break;
        case '\n': rep = "\\n"; break;
        case '\r': rep = "\\r"; break;
        case '\t': rep = "\\t"; break;
        default: break;
        }
        if (rep) {
            pg_buf_append(b, run, (size_t)(p - run));
            pg_buf_append(b, rep, 2);
            run = p + 1;
        }
    }
    pg_buf_append(b, run, strlen(run));
}

void pg_buf_free(struct pg_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

bool pg_schema_version(struct pg *db, int *version, struct err *e)
{
    *version = 0;
    struct pg_res *r = pg_exec(db,
                               "SELECT COALESCE((SELECT max(version) FROM schema_migrations), 0) "
                               "WHERE to_regclass('schema_migrations') IS NOT NULL",
                               0, NULL, e);
    if (!r)
        return false;
    if (pg_res_rows(r) == 1 && pg_res_get(r, 0, 0))
        *version = (int)strtol(pg_res_get(r, 0, 0), NULL, 10);
    pg_res_free(&r);
    return true;
}

bool pg_check_schema(struct pg *db, int expected, struct err *e)
{
    int v = 0;
    if (!pg_schema_version(db, &v, e))
        return false;
    if (v == expected)
        return true;
    if (v < expected)
        return err_set(e, ERR_SCHEMA_VERSION, false,
                       "cannot start: database schema version is %d, this build needs %d; run \"sfbridge migrate\"",
                       v, expected);
    return err_set(e, ERR_SCHEMA_VERSION, false,
                   "cannot start: database schema version %d is newer than this build knows (%d); upgrade sfbridge",
                   v, expected);
}

int pg_backend_pid(const struct pg *db) { return db->conn ? PQbackendPID(db->conn) : 0; }
