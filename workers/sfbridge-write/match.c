/*
 * match: orgs without an external-id field (organizations.external_id_field
 * = '') cannot make creates idempotent by upserting on the platform id, so
 * before a create the worker asks Salesforce for an existing record with the
 * operation's match keys (its `match`, or else the mapping's is_match_key
 * fields present in its `fields`) and, when one exists, updates it instead.
 * A create that an earlier attempt of the same request may already have sent
 * (intent `sent`) and that has no match key to look for is not sent again:
 * it fails with OUTCOME_UNKNOWN, naming what to check.
 *
 * Operations of one object with the same match fields share a query (at most
 * MATCH_BATCH per query): SELECT Id, f1.. FROM T WHERE (f1 = v1 AND ..) OR ..
 * ORDER BY CreatedDate, Id; the oldest record that matches an operation wins.
 * Identifiers are validated and literals escaped by soql.h. See write.h.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn.h"
#include "json.h"
#include "log.h"
#include "sf.h"
#include "soql.h"
#include "write.h"

#define MATCH_BATCH 40
#define MATCH_FIELDS 8

struct mkey {
    int n;
    const char *field[MATCH_FIELDS];       /* Salesforce fields, borrowed from the mapping */
    struct json_object *val[MATCH_FIELDS]; /* the exported values, borrowed from o->body */
};

static bool add_key(struct mkey *k, const struct wop *o, const struct field_map *f)
{
    struct json_object *v = NULL;
    if (!f || !f->match_key || k->n >= MATCH_FIELDS || strchr(f->sf_field, '.'))
        return true;
    if (!json_object_object_get_ex(o->body, f->sf_field, &v) || !v || json_object_is_type(v, json_type_null))
        return true; /* no value to look for */
    if (json_object_is_type(v, json_type_object) || json_object_is_type(v, json_type_array))
        return true;
    for (int i = 0; i < k->n; i++)
        if (!strcmp(k->field[i], f->sf_field))
            return true;
    k->field[k->n] = f->sf_field;
    k->val[k->n++] = v;
    return true;
}

/* The match keys of an operation: its `match`, or else the mapped match-key fields it sets. */
static void keys_of(const struct wop *o, struct mkey *k)
{
    memset(k, 0, sizeof *k);
    if (o->match) {
        json_object_object_foreach(o->match, key, val)
        {
            (void)val;
            add_key(k, o, mapping_field_by_platform(o->om, key, MAP_EXPORT));
        }
        return;
    }
    json_object_object_foreach(o->fields, key, val)
    {
        (void)val;
        add_key(k, o, mapping_field_by_platform(o->om, key, MAP_EXPORT));
    }
}

static bool same_fields(const struct mkey *a, const struct mkey *b)
{
    if (a->n != b->n)
        return false;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->field[i], b->field[i]))
            return false;
    return true;
}

/* SOQL literal of an exported value (caller frees); NULL when it has none. */
static char *literal(struct json_object *v)
{
    char buf[64];
    switch (json_object_get_type(v)) {
    case json_type_string:
        return soql_quote(json_object_get_string(v));
    case json_type_boolean:
        return strdup(json_object_get_boolean(v) ? "true" : "false");
    case json_type_int:
        snprintf(buf, sizeof buf, "%lld", (long long)json_object_get_int64(v));
        return strdup(buf);
    case json_type_double: {
        double d = json_object_get_double(v);
        if (!isfinite(d))
            return NULL;
        if (d == floor(d) && fabs(d) < 1e15)
            snprintf(buf, sizeof buf, "%.0f", d);
        else
            snprintf(buf, sizeof buf, "%.17g", d);
        return soql_literal_valid(buf) ? strdup(buf) : NULL;
    }
    default:
        return NULL;
    }
}

/* Does a Salesforce value equal what the operation looks for (text case-insensitively, as SOQL '=')? */
static bool value_eq(struct json_object *sf, struct json_object *want)
{
    if (!sf || json_object_is_type(sf, json_type_null))
        return false;
    bool sfn = json_object_is_type(sf, json_type_int) || json_object_is_type(sf, json_type_double);
    bool wn = json_object_is_type(want, json_type_int) || json_object_is_type(want, json_type_double);
    if (sfn && wn)
        return json_object_get_double(sf) == json_object_get_double(want);
    return !strcasecmp(json_object_get_string(sf), json_object_get_string(want));
}

struct sbuf {
    char *d;
    size_t len, cap;
    bool oom;
};

static void sb_cat(struct sbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 512;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->d, cap);
        if (!d) {
            b->oom = true;
            return;
        }
        b->d = d;
        b->cap = cap;
    }
    memcpy(b->d + b->len, s, n + 1);
    b->len += n;
}

/* The query for ops[0..n) (same object, same match fields). Caller frees; NULL with e set. */
static char *build_query(struct wop **ops, const struct mkey *keys, int n, struct err *e)
{
    struct soql_select *q = soql_select_new(ops[0]->om->sf_object, e);
    struct sbuf w = {0};
    char *out = NULL;
    if (!q)
        return NULL;
    if (!soql_select_field(q, "Id", e))
        goto out;
    for (int i = 0; i < keys[0].n; i++)
        if (!soql_select_field(q, keys[0].field[i], e))
            goto out;
    for (int j = 0; j < n; j++) {
        sb_cat(&w, j ? " OR (" : "(");
        for (int i = 0; i < keys[j].n; i++) {
            char *lit = literal(keys[j].val[i]);
            char *c = lit ? soql_cmp(keys[j].field[i], "=", lit, e) : NULL;
            free(lit);
            if (!c) {
                if (!err_is_set(e))
                    err_set(e, ERR_INVALID_MESSAGE, false, "cannot look up %s \"%s\": a match value of %s cannot be "
                                                           "queried",
                            ops[j]->object, ops[j]->ref, keys[j].field[i]);
                goto out;
            }
            if (i)
                sb_cat(&w, " AND ");
            sb_cat(&w, c);
            free(c);
        }
        sb_cat(&w, ")");
    }
    if (w.oom) {
        err_set(e, ERR_NOMEM, true, "out of memory");
        goto out;
    }
    if (!soql_select_where_raw(q, w.d)) {
        err_set(e, ERR_INVALID_MESSAGE, false, "cannot look up %s records: the match values do not form a query",
                ops[0]->om->sf_object);
        goto out;
    }
    soql_select_order(q, "CreatedDate ASC, Id ASC");
    out = soql_select_build(q, e);
out:
    free(w.d);
    soql_select_free(&q);
    return out;
}

int write_match_queries(const struct wmsg *m)
{
    int groups = 0;
    for (int i = 0; i < m->nops; i++) {
        const struct wop *o = &m->ops[i];
        struct mkey k;
        if (o->done || o->kind != K_CREATE)
            continue;
        keys_of(o, &k);
        if (k.n)
            groups++; /* an upper bound: operations sharing a query are counted once each */
    }
    return groups;
}

/* Query ops[0..n) and turn the matched ones into updates of the found records. */
static bool match_batch(struct conn_session *s, struct wmsg *m, struct wop **ops, struct mkey *keys, int n,
                        struct err *e)
{
    struct err qe = ERR_INIT;
    struct sf_response resp = {0};
    char *soql = build_query(ops, keys, n, &qe), *enc = NULL, *path = NULL;
    bool ok = false;
    if (!soql)
        goto refused;
    enc = sf_urlencode(soql);
    size_t cap = strlen(enc) + 16;
    path = malloc(cap);
    if (!enc || !path) {
        err_set(e, ERR_NOMEM, true, "out of memory");
        goto out;
    }
    snprintf(path, cap, "/query?q=%s", enc);
    m->api_calls++;
    if (!conn_call(s, "GET", path, NULL, NULL, 0, &resp, &qe)) {
        if (qe.retriable || qe.code == ERR_LIMIT_EXCEEDED) {
            *e = qe;
            goto out;
        }
        goto refused;
    }
    struct json_object *recs = resp.json ? json_get(resp.json, "records") : NULL;
    size_t nr = recs && json_object_is_type(recs, json_type_array) ? json_object_array_length(recs) : 0;
    for (size_t r = 0; r < nr; r++) {
        struct json_object *rec = json_object_array_get_idx(recs, r);
        const char *id = json_get_str(rec, "Id");
        if (!id || strlen(id) >= sizeof ops[0]->sf_id)
            continue;
        for (int j = 0; j < n; j++) {
            struct wop *o = ops[j];
            if (o->kind != K_CREATE)
                continue; /* already matched by an older record */
            bool all = true;
            for (int i = 0; i < keys[j].n && all; i++)
                all = value_eq(json_get(rec, keys[j].field[i]), keys[j].val[i]);
            if (!all)
                continue;
            snprintf(o->sf_id, sizeof o->sf_id, "%s", id);
            o->kind = K_BYID;
            o->matched_remote = true;
            log_info("write %s: %s \"%s\" matches %s %s by its match keys (the org has no external-id field); "
                     "updating it instead of creating",
                     m->request_id, o->object, o->ref, o->om->sf_object, id);
        }
    }
    for (int j = 0; j < n; j++)
        if (ops[j]->kind == K_CREATE && ops[j]->prior_attempt)
            /* an earlier attempt sent it, yet Salesforce has no such record: it did not get there */
            log_info("write %s: %s \"%s\" was sent before but is not in Salesforce; creating it", m->request_id,
                     ops[j]->object, ops[j]->ref);
    ok = true;
    goto out;
refused:
    /* the lookup itself was refused (a field that cannot be queried, ...): creating blindly could duplicate */
    for (int j = 0; j < n; j++)
        wop_fail(ops[j], err_public_code(&qe),
                 "operation \"%s\": could not look for an existing %s by its match keys before creating it (the org "
                 "has no external-id field): %s",
                 ops[j]->ref, ops[j]->om->sf_object, qe.msg);
    ok = true;
out:
    sf_response_cleanup(&resp);
    free(soql);
    free(enc);
    free(path);
    return ok;
}

bool write_match_remote(struct conn_session *s, struct wmsg *m, struct err *e)
{
    struct wop **ops = calloc((size_t)m->nops + 1, sizeof *ops);
    struct mkey *keys = calloc((size_t)m->nops + 1, sizeof *keys);
    bool *taken = calloc((size_t)m->nops + 1, sizeof *taken);
    bool ok = false;
    if (!ops || !keys || !taken) {
        err_set(e, ERR_NOMEM, true, "out of memory");
        goto out;
    }
    for (int i = 0; i < m->nops; i++) {
        struct wop *o = &m->ops[i];
        if (o->done || o->kind != K_CREATE || taken[i])
            continue;
        struct mkey k;
        keys_of(o, &k);
        if (!k.n) {
            taken[i] = true;
            if (o->prior_attempt)
                wop_fail(o, "OUTCOME_UNKNOWN",
                         "operation \"%s\": an earlier attempt of this request sent this %s create and may have "
                         "created it; the org has no external-id field and the operation no match key to look for "
                         "it, so it is not sent again (check Salesforce, then write it by its id)",
                         o->ref, o->om->sf_object);
            continue;
        }
        /* this operation and the next ones of the same object with the same match fields */
        int n = 0;
        for (int j = i; j < m->nops && n < MATCH_BATCH; j++) {
            struct wop *p = &m->ops[j];
            struct mkey pk;
            if (taken[j] || p->done || p->kind != K_CREATE || strcmp(p->om->sf_object, o->om->sf_object))
                continue;
            keys_of(p, &pk);
            if (!same_fields(&k, &pk))
                continue;
            taken[j] = true;
            ops[n] = p;
            keys[n++] = pk;
        }
        if (!match_batch(s, m, ops, keys, n, e))
            goto out;
    }
    ok = true;
out:
    free(ops);
    free(keys);
    free(taken);
    return ok;
}
