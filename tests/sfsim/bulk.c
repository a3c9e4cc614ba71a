/*
 * bulk: Bulk API 2.0 query jobs (salesforce-api.md section 7): create, poll
 * (UploadComplete -> InProgress for --bulk-delay-ms -> JobComplete/Failed),
 * CSV results paged with Sforce-Locator/maxRecords, abort and delete.
 * The result set is evaluated when the job is created (a snapshot).
 *
 * Threads: the job table is guarded by sim->mu; record data by the store
 * lock (read) while evaluating and writing CSV.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "simint.h"

#define DEFAULT_MAX_RECORDS 50000
#define MAX_JOBS 256

struct sim_job {
    char id[19];
    char op[16];
    char ver[16];
    char state[16];
    char err[256];
    char *soql;
    struct sim_query *q;
    uint32_t *idx;
    size_t n;
    int64_t created;
    bool fail;
    int refs;
};

static void job_release(struct sim *sim, struct sim_job *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&sim->mu);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&sim->mu);
    if (!last)
        return;
    free(j->soql);
    sim_soql_free(j->q);
    free(j->idx);
    free(j);
}

void sim_bulk_free_all(struct sim *sim)
{
    for (size_t i = 0; i < sim->njobs; i++)
        job_release(sim, sim->jobs[i]);
    free(sim->jobs);
    sim->jobs = NULL;
    sim->njobs = sim->capjobs = 0;
}

/* the current state; moves the job along its timeline */
static const char *job_state_locked(struct sim *sim, struct sim_job *j)
{
    if (strcmp(j->state, "Aborted") == 0 || strcmp(j->state, "JobComplete") == 0 ||
        strcmp(j->state, "Failed") == 0)
        return j->state;
    if (sim_now(sim) - j->created >= sim->cfg.bulk_delay_ms)
        snprintf(j->state, sizeof j->state, "%s", j->fail ? "Failed" : "JobComplete");
    else
        snprintf(j->state, sizeof j->state, "InProgress");
    return j->state;
}

static void job_json_locked(struct sim *sim, struct sim_job *j, bool full,
                            struct sim_buf *b)
{
    char cd[32];
    sim_fmt_datetime(j->created, cd);
    const char *st = full ? job_state_locked(sim, j) : j->state;
    sim_buf_printf(b, "{\"id\":\"%s\",\"operation\":\"%s\",\"object\":\"%s\","
                      "\"createdById\":\"%s\",\"createdDate\":\"%s\",\"systemModstamp\":\"%s\","
                      "\"state\":\"%s\",\"concurrencyMode\":\"Parallel\",\"contentType\":\"CSV\","
                      "\"apiVersion\":%s,\"lineEnding\":\"LF\",\"columnDelimiter\":\"COMMA\"",
                   j->id, j->op, sim_objects[sim_soql_object(j->q)].name, sim->user_id, cd, cd,
                   st, j->ver);
    if (full) {
        bool done = strcmp(st, "JobComplete") == 0;
        sim_buf_printf(b, ",\"jobType\":\"V2Query\",\"numberRecordsProcessed\":%zu,"
                          "\"retries\":0,\"totalProcessingTime\":%d,\"isPkChunkingSupported\":true",
                       done ? j->n : 0, done ? sim->cfg.bulk_delay_ms : 0);
        if (strcmp(st, "Failed") == 0) {
            sim_buf_puts(b, ",\"errorMessage\":");
            sim_buf_json_str(b, j->err);
        }
    }
    sim_buf_putc(b, '}');
}

static struct sim_job *job_get(struct sim *sim, const char *id, size_t len)
{
    struct sim_job *j = NULL;
    pthread_mutex_lock(&sim->mu);
    for (size_t i = 0; i < sim->njobs; i++) {
        if (strlen(sim->jobs[i]->id) == len && strncmp(sim->jobs[i]->id, id, len) == 0) {
            j = sim->jobs[i];
            j->refs++;
            break;
        }
    }
    pthread_mutex_unlock(&sim->mu);
    return j;
}

static void job_create(struct sim *sim, struct sim_req *q, struct sim_resp *r)
{
    json_object *in = json_tokener_parse(q->body ? q->body : ""), *v;
    const char *op = NULL, *soql = NULL;
    struct sim_err e = {0};
    struct sim_query *qq = NULL;
    if (in && json_object_object_get_ex(in, "operation", &v))
        op = json_object_get_string(v);
    if (in && json_object_object_get_ex(in, "query", &v))
        soql = json_object_get_string(v);
    if (!op || (strcmp(op, "query") != 0 && strcmp(op, "queryAll") != 0)) {
        sim_resp_error(r, 400, "INVALIDJOB", "InvalidJob : operation must be query or queryAll");
        goto out;
    }
    if (in && json_object_object_get_ex(in, "columnDelimiter", &v) &&
        strcmp(json_object_get_string(v), "COMMA") != 0) {
        sim_resp_error(r, 400, "INVALIDJOB", "InvalidJob : only COMMA is emulated");
        goto out;
    }
    if (in && json_object_object_get_ex(in, "lineEnding", &v) &&
        strcmp(json_object_get_string(v), "LF") != 0) {
        sim_resp_error(r, 400, "INVALIDJOB", "InvalidJob : only LF is emulated");
        goto out;
    }
    qq = sim_soql_compile(soql, &e);
    if (!qq) {
        sim_resp_err(r, &e);
        goto out;
    }
    if (sim_soql_is_count(qq) || sim_soql_has_offset(qq)) {
        sim_resp_error(r, 400, "INVALIDJOB", "InvalidJob : %s is not supported by Bulk API 2.0 queries",
                       sim_soql_is_count(qq) ? "COUNT()" : "OFFSET");
        goto out;
    }
    struct sim_job *j = calloc(1, sizeof *j);
    if (!j)
        abort();
    snprintf(j->op, sizeof j->op, "%s", op);
    snprintf(j->ver, sizeof j->ver, "%s", q->ver);
    snprintf(j->state, sizeof j->state, "UploadComplete");
    j->soql = strdup(soql);
    if (!j->soql)
        abort();
    j->created = sim_now(sim);
    pthread_rwlock_rdlock(&sim->store.lock);
    sim_soql_run_locked(&sim->store, qq, strcmp(op, "queryAll") == 0, &j->idx, &j->n, &e);
    pthread_rwlock_unlock(&sim->store.lock);
    j->q = qq;
    qq = NULL;
    j->refs = 1;
    struct sim_job *evict = NULL;
    pthread_mutex_lock(&sim->mu);
    if (sim->f.bulk_fail_next > 0) {
        sim->f.bulk_fail_next--;
        j->fail = true;
        snprintf(j->err, sizeof j->err, "InternalServerError : the job failed in the emulator");
    } else if (sim->f.query_timeout_above > 0 && (int64_t)j->n > sim->f.query_timeout_above) {
        j->fail = true;
        snprintf(j->err, sizeof j->err,
                 "QUERY_TIMEOUT : Your query request was running for too long.");
    }
    sim->job_seq++;
    char id15[16];
    snprintf(id15, sizeof id15, "750Hs%010llu", (unsigned long long)sim->job_seq);
    char ck[3];
    sim_id_checksum(id15, ck);
    snprintf(j->id, sizeof j->id, "%s%.3s", id15, ck);
    if (sim->njobs == MAX_JOBS) {
        evict = sim->jobs[0];
        memmove(sim->jobs, sim->jobs + 1, (sim->njobs - 1) * sizeof *sim->jobs);
        sim->njobs--;
    }
    if (sim->njobs == sim->capjobs) {
        sim->capjobs = sim->capjobs ? sim->capjobs * 2 : 16;
        struct sim_job **nj = realloc(sim->jobs, sim->capjobs * sizeof *nj);
        if (!nj)
            abort();
        sim->jobs = nj;
    }
    sim->jobs[sim->njobs++] = j;
    struct sim_buf b = {0};
    job_json_locked(sim, j, false, &b);
    pthread_mutex_unlock(&sim->mu);
    job_release(sim, evict);
    sim_resp_take(r, 200, &b);
out:
    sim_soql_free(qq);
    json_object_put(in);
}

static void job_results(struct sim *sim, struct sim_req *q, struct sim_resp *r,
                        struct sim_job *j)
{
    pthread_mutex_lock(&sim->mu);
    const char *st = job_state_locked(sim, j);
    bool done = strcmp(st, "JobComplete") == 0;
    char state[16];
    snprintf(state, sizeof state, "%s", st);
    pthread_mutex_unlock(&sim->mu);
    if (!done) {
        sim_resp_error(r, 412, "JOB_NOT_COMPLETE",
                       "can only download query results of successfully completed bulk job "
                       "with status: JOB_COMPLETE. Current status: %s",
                       state);
        return;
    }
    const char *ls = sim_req_arg(q, "locator");
    const char *ms = sim_req_arg(q, "maxRecords");
    size_t off = 0, max = DEFAULT_MAX_RECORDS;
    if (ls && *ls && strcmp(ls, "null") != 0) {
        /* locators are base64 of the decimal offset */
        char dec[32] = "";
        static const char t[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        uint32_t acc = 0;
        int bits = 0;
        size_t o = 0;
        for (const char *p = ls; *p && *p != '=' && o + 1 < sizeof dec; p++) {
            const char *k = strchr(t, *p);
            if (!k) {
                o = 0;
                break;
            }
            acc = (acc << 6) | (uint32_t)(k - t);
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                dec[o++] = (char)((acc >> bits) & 0xff);
            }
        }
        dec[o] = '\0';
        char *end;
        long v = strtol(dec, &end, 10);
        if (!o || *end || v < 0 || (size_t)v > j->n) {
            sim_resp_error(r, 400, "INVALID_LOCATOR", "invalid locator %s", ls);
            return;
        }
        off = (size_t)v;
    }
    if (ms) {
        long v = strtol(ms, NULL, 10);
        if (v <= 0) {
            sim_resp_error(r, 400, "INVALIDPARAM", "maxRecords must be a positive integer");
            return;
        }
        max = (size_t)v;
    }
    size_t end = off + max < j->n ? off + max : j->n;
    struct sim_buf b = {0};
    sim_soql_csv_header(j->q, &b);
    pthread_rwlock_rdlock(&sim->store.lock);
    for (size_t i = off; i < end; i++)
        sim_soql_rec_csv(&sim->store, j->q, j->idx[i], &b);
    pthread_rwlock_unlock(&sim->store.lock);
    r->ctype = "text/csv";
    sim_resp_take(r, 200, &b);
    if (end < j->n) {
        char dec[32], loc[64];
        snprintf(dec, sizeof dec, "%zu", end);
        sim_b64((const unsigned char *)dec, strlen(dec), false, loc, sizeof loc);
        char *eq = strchr(loc, '=');
        if (eq)
            *eq = '\0';
        sim_resp_hdr(r, "Sforce-Locator", "%s", loc);
    } else {
        sim_resp_hdr(r, "Sforce-Locator", "null");
    }
    sim_resp_hdr(r, "Sforce-NumberOfRecords", "%zu", end - off);
}

void sim_bulk_handle(struct sim *sim, struct sim_req *q, struct sim_resp *r,
                     const char *sub)
{
    r->endpoint = "bulk";
    const char *m = q->method;
    if (!*sub || strcmp(sub, "/") == 0) {
        if (strcmp(m, "POST") == 0) {
            job_create(sim, q, r);
        } else if (strcmp(m, "GET") == 0) {
            struct sim_buf b = {0};
            sim_buf_puts(&b, "{\"done\":true,\"records\":[");
            pthread_mutex_lock(&sim->mu);
            for (size_t i = 0; i < sim->njobs; i++) {
                if (i)
                    sim_buf_putc(&b, ',');
                job_json_locked(sim, sim->jobs[i], false, &b);
            }
            pthread_mutex_unlock(&sim->mu);
            sim_buf_puts(&b, "],\"nextRecordsUrl\":null}");
            sim_resp_take(r, 200, &b);
        } else {
            sim_resp_error(r, 405, "METHOD_NOT_ALLOWED", "HTTP Method '%s' not allowed", m);
        }
        return;
    }
    const char *id = sub + 1;
    size_t idl = strcspn(id, "/");
    const char *tail = id + idl;
    struct sim_job *j = job_get(sim, id, idl);
    if (!j) {
        sim_resp_error(r, 404, "NOT_FOUND", "The requested resource does not exist");
        return;
    }
    if (strcmp(tail, "/results") == 0 || strcmp(tail, "/results/") == 0) {
        if (strcmp(m, "GET") == 0)
            job_results(sim, q, r, j);
        else
            sim_resp_error(r, 405, "METHOD_NOT_ALLOWED", "HTTP Method '%s' not allowed", m);
    } else if (*tail && strcmp(tail, "/") != 0) {
        sim_resp_error(r, 404, "NOT_FOUND", "The requested resource does not exist");
    } else if (strcmp(m, "GET") == 0) {
        struct sim_buf b = {0};
        pthread_mutex_lock(&sim->mu);
        job_json_locked(sim, j, true, &b);
        pthread_mutex_unlock(&sim->mu);
        sim_resp_take(r, 200, &b);
    } else if (strcmp(m, "PATCH") == 0) {
        json_object *in = json_tokener_parse(q->body ? q->body : ""), *v;
        const char *st = in && json_object_object_get_ex(in, "state", &v) ? json_object_get_string(v) : "";
        if (strcmp(st, "Aborted") != 0) {
            sim_resp_error(r, 400, "INVALIDJOBSTATE", "only the state Aborted can be set");
        } else {
            struct sim_buf b = {0};
            pthread_mutex_lock(&sim->mu);
            const char *cur = job_state_locked(sim, j);
            if (strcmp(cur, "JobComplete") == 0 || strcmp(cur, "Failed") == 0) {
                pthread_mutex_unlock(&sim->mu);
                sim_resp_error(r, 400, "INVALIDJOBSTATE", "Job is already in a final state");
            } else {
                snprintf(j->state, sizeof j->state, "Aborted");
                job_json_locked(sim, j, false, &b);
                pthread_mutex_unlock(&sim->mu);
                sim_resp_take(r, 200, &b);
            }
        }
        json_object_put(in);
    } else if (strcmp(m, "DELETE") == 0) {
        pthread_mutex_lock(&sim->mu);
        for (size_t i = 0; i < sim->njobs; i++) {
            if (sim->jobs[i] == j) {
                memmove(sim->jobs + i, sim->jobs + i + 1, (sim->njobs - i - 1) * sizeof *sim->jobs);
                sim->njobs--;
                j->refs--; /* the table's reference; ours is released below */
                break;
            }
        }
        pthread_mutex_unlock(&sim->mu);
        r->status = 204;
    } else {
        sim_resp_error(r, 405, "METHOD_NOT_ALLOWED", "HTTP Method '%s' not allowed", m);
    }
    job_release(sim, j);
}
