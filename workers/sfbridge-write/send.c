/*
 * send: the Salesforce calls of a write. A bundle goes as one `composite`
 * request (referenceIds op<i>, links as @{op<i>.id}, contacts of an
 * Interaction as InteractionAttendee subrequests, SystemModstamp of created
 * records read back with GET subrequests when there is room); a set of one
 * object and kind goes as one sObject Collections call (at most 200 records).
 * Per-record errors land in the operations; only a failure of the call as a
 * whole is returned. See write.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "json.h"
#include "log.h"
#include "sf.h"
#include "write.h"

#define COMPOSITE_MAX 25

/* The value a link takes in a request: a known Salesforce id or a composite reference. */
static void link_value(const struct wmsg *m, const struct wlink *l, bool composite, char *out, size_t cap)
{
    if (l->op < 0) {
        snprintf(out, cap, "%s", l->sf);
        return;
    }
    const struct wop *t = &m->ops[l->op];
    if (t->sf_id[0] && (t->kind == K_BYID || t->done))
        snprintf(out, cap, "%s", t->sf_id);
    else if (composite)
        snprintf(out, cap, "@{op%d.id}", t->idx);
    else
        out[0] = '\0';
}

static struct json_object *record_body(const struct wmsg *m, const struct wop *o, bool composite)
{
    struct json_object *b = NULL;
    json_object_deep_copy(o->body, &b, NULL);
    char v[40];
    if (o->has_company) {
        link_value(m, &o->company, composite, v, sizeof v);
        json_add_str(b, o->f_company, v);
    }
    if (o->has_deal) {
        link_value(m, &o->deal, composite, v, sizeof v);
        json_add_str(b, o->f_deal, v);
    }
    return b;
}

static void set_error_from(struct wop *o, struct json_object *errs, const char *code_key, const char *prefix)
{
    struct json_object *e0 = errs && json_object_is_type(errs, json_type_array) && json_object_array_length(errs)
                                 ? json_object_array_get_idx(errs, 0)
                                 : NULL;
    const char *code = e0 ? json_get_str(e0, code_key) : NULL;
    if (!code && e0)
        code = json_get_str(e0, "errorCode") ? json_get_str(e0, "errorCode") : json_get_str(e0, "statusCode");
    const char *msg = e0 ? json_get_str(e0, "message") : NULL;
    wop_fail(o, code ? code : "UNKNOWN_ERROR", "%s%s", prefix ? prefix : "", msg ? msg : "Salesforce gave no message");
    struct json_object *fields = e0 ? json_get(e0, "fields") : NULL;
    if (fields && json_object_is_type(fields, json_type_array)) {
        json_object_put(o->err_fields);
        o->err_fields = NULL;
        json_object_deep_copy(fields, &o->err_fields, NULL);
    }
}

static void set_success(struct wop *o, const char *id, bool created_known, bool created)
{
    if (id && *id)
        snprintf(o->sf_id, sizeof o->sf_id, "%s", id);
    if (o->kind == K_BYID)
        /* a create found by its match keys after an earlier attempt of this very request was sent: most
           likely that attempt created it */
        o->outcome = o->matched_remote && o->prior_attempt && !o->local_id[0] ? "created" : "updated";
    else if (o->kind == K_CREATE)
        o->outcome = "created";
    else if (created_known && created)
        o->outcome = "created";
    else
        /* created:false for a new record (no local row) means an earlier attempt of this very request
           created it */
        o->outcome = o->prior_attempt && !o->local_id[0] && o->act != ACT_UPDATE ? "created" : "updated";
    o->done = true;
}

static void sobject_url(char *out, size_t cap, const char *ver, const struct wmsg *m, const struct wop *o)
{
    if (o->kind == K_EXTID)
        snprintf(out, cap, "/services/data/v%s/sobjects/%s/%s/%s", ver, o->om->sf_object, m->ext_field,
                 o->platform_id);
    else if (o->kind == K_BYID)
        snprintf(out, cap, "/services/data/v%s/sobjects/%s/%s", ver, o->om->sf_object, o->sf_id);
    else
        snprintf(out, cap, "/services/data/v%s/sobjects/%s", ver, o->om->sf_object);
}

static struct json_object *subrequest(const char *method, const char *url, const char *ref, struct json_object *body)
{
    struct json_object *r = json_object_new_object();
    json_add_str(r, "method", method);
    json_add_str(r, "url", url);
    json_add_str(r, "referenceId", ref);
    if (body)
        json_object_object_add(r, "body", body);
    return r;
}

static int cmp_level(const void *a, const void *b)
{
    const struct wop *x = *(const struct wop *const *)a, *y = *(const struct wop *const *)b;
    return x->level != y->level ? x->level - y->level : x->idx - y->idx;
}

bool write_send_composite(struct conn_session *s, struct wmsg *m, struct err *e)
{
    const char *ver = sf_client_api_version(s->sf);
    struct wop **calls = calloc((size_t)m->nops, sizeof *calls);
    struct json_object *req = json_object_new_object(), *list = json_object_new_array();
    struct sf_response resp = {0};
    bool ok = false;
    int n = 0, subs = 0;
    char url[512], ref[48], v[40];
    if (!calls) {
        err_set(e, ERR_NOMEM, true, "out of memory");
        goto out;
    }
    for (int i = 0; i < m->nops; i++)
        if (m->ops[i].in_call) {
            calls[n++] = &m->ops[i];
            subs += 1 + m->ops[i].ncontacts;
        }
    qsort(calls, (size_t)n, sizeof *calls, cmp_level);
    int creates = 0;
    for (int i = 0; i < n; i++)
        creates += calls[i]->kind != K_BYID;
    bool readback = subs + creates <= COMPOSITE_MAX;
    for (int i = 0; i < n; i++) {
        struct wop *o = calls[i];
        sobject_url(url, sizeof url, ver, m, o);
        snprintf(ref, sizeof ref, "op%d", o->idx);
        json_object_array_add(list, subrequest(o->kind == K_CREATE ? "POST" : "PATCH", url, ref, record_body(m, o, true)));
        for (int k = 0; k < o->ncontacts; k++) {
            struct json_object *b = json_object_new_object();
            snprintf(v, sizeof v, "@{op%d.id}", o->idx);
            json_add_str(b, "InteractionId", v);
            link_value(m, &o->contacts[k], true, v, sizeof v);
            json_add_str(b, "ContactId", v);
            if (m->ext_field)
                snprintf(url, sizeof url, "/services/data/v%s/sobjects/InteractionAttendee/%s/%s-a%d", ver,
                         m->ext_field, o->platform_id, k);
            else
                snprintf(url, sizeof url, "/services/data/v%s/sobjects/InteractionAttendee", ver);
            snprintf(ref, sizeof ref, "att%d_%d", o->idx, k);
            json_object_array_add(list, subrequest(m->ext_field ? "PATCH" : "POST", url, ref, b));
        }
    }
    if (readback)
        for (int i = 0; i < n; i++) {
            struct wop *o = calls[i];
            if (o->kind == K_BYID)
                continue;
            snprintf(url, sizeof url, "/services/data/v%s/sobjects/%s/@{op%d.id}?fields=SystemModstamp", ver,
                     o->om->sf_object, o->idx);
            snprintf(ref, sizeof ref, "ms%d", o->idx);
            json_object_array_add(list, subrequest("GET", url, ref, NULL));
        }
    json_object_object_add(req, "allOrNone", json_object_new_boolean(m->all_or_none));
    json_object_object_add(req, "collateSubrequests", json_object_new_boolean(0));
    json_object_object_add(req, "compositeRequest", list);
    list = NULL;
    const char *body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    m->api_calls++;
    if (!conn_call(s, "POST", "/composite", NULL, body, strlen(body), &resp, e))
        goto out;
    struct json_object *cr = resp.json ? json_get(resp.json, "compositeResponse") : NULL;
    if (!cr || !json_object_is_type(cr, json_type_array)) {
        err_set(e, ERR_SALESFORCE, true, "could not read the composite response: no compositeResponse");
        goto out;
    }
    size_t nr = json_object_array_length(cr);
    /* first the records, then attendees and read-backs (they refer to the records) */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < nr; i++) {
            struct json_object *r = json_object_array_get_idx(cr, i);
            const char *rid = json_get_str(r, "referenceId");
            long st = (long)json_get_int(r, "httpStatusCode", 0);
            struct json_object *b = json_get(r, "body");
            int a = -1, k = -1;
            if (!rid)
                continue;
            if (pass == 0 && sscanf(rid, "op%d", &a) == 1 && a >= 0 && a < m->nops && m->ops[a].in_call) {
                struct wop *o = &m->ops[a];
                if (st >= 200 && st < 300) {
                    bool has_created = b && json_object_is_type(b, json_type_object) && json_get(b, "created");
                    set_success(o, b && json_object_is_type(b, json_type_object) ? json_get_str(b, "id") : NULL,
                                has_created, has_created && json_get_bool(b, "created", false));
                } else {
                    set_error_from(o, b, "errorCode", NULL);
                }
            } else if (pass == 1 && sscanf(rid, "att%d_%d", &a, &k) == 2 && a >= 0 && a < m->nops) {
                struct wop *o = &m->ops[a];
                if ((st < 200 || st >= 300) && o->outcome && strcmp(o->outcome, "failed") != 0) {
                    char prefix[160];
                    snprintf(prefix, sizeof prefix, "InteractionAttendee of contact %d: ", k + 1);
                    o->done = false; /* replace the success by the attendee's error */
                    set_error_from(o, b, "errorCode", prefix);
                }
            } else if (pass == 1 && sscanf(rid, "ms%d", &a) == 1 && a >= 0 && a < m->nops && st == 200) {
                const char *ms = json_get_str(b, "SystemModstamp");
                if (ms)
                    snprintf(m->ops[a].modstamp, sizeof m->ops[a].modstamp, "%s", ms);
            }
        }
    for (int i = 0; i < n; i++)
        if (!calls[i]->done)
            wop_fail(calls[i], "UNKNOWN_ERROR", "Salesforce returned no result for operation \"%s\"", calls[i]->ref);
    ok = true;
out:
    json_object_put(list);
    json_object_put(req);
    sf_response_cleanup(&resp);
    free(calls);
    return ok;
}

bool write_send_collection(struct conn_session *s, struct wmsg *m, const char *sf_object, enum wkind kind,
                           struct err *e)
{
    struct json_object *req = json_object_new_object(), *recs = json_object_new_array();
    struct sf_response resp = {0};
    struct wop **calls = calloc((size_t)m->nops, sizeof *calls);
    char path[300];
    int n = 0;
    bool ok = false;
    if (!calls) {
        err_set(e, ERR_NOMEM, true, "out of memory");
        goto out;
    }
    for (int i = 0; i < m->nops; i++) {
        struct wop *o = &m->ops[i];
        if (!o->in_call)
            continue;
        calls[n++] = o;
        struct json_object *b = record_body(m, o, false);
        struct json_object *attr = json_object_new_object();
        json_add_str(attr, "type", sf_object);
        json_object_object_add(b, "attributes", attr);
        if (kind == K_EXTID)
            json_add_str(b, m->ext_field, o->platform_id);
        else if (kind == K_BYID)
            json_add_str(b, "id", o->sf_id);
        json_object_array_add(recs, b);
    }
    json_object_object_add(req, "allOrNone", json_object_new_boolean(m->all_or_none));
    json_object_object_add(req, "records", recs);
    recs = NULL;
    if (kind == K_EXTID)
        snprintf(path, sizeof path, "/composite/sobjects/%s/%s", sf_object, m->ext_field);
    else
        snprintf(path, sizeof path, "/composite/sobjects");
    const char *body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    m->api_calls++;
    if (!conn_call(s, kind == K_CREATE ? "POST" : "PATCH", path, NULL, body, strlen(body), &resp, e))
        goto out;
    if (!resp.json || !json_object_is_type(resp.json, json_type_array)) {
        err_set(e, ERR_SALESFORCE, true, "could not read the sObject Collections response: not an array");
        goto out;
    }
    size_t nr = json_object_array_length(resp.json);
    for (int i = 0; i < n; i++) {
        struct wop *o = calls[i];
        struct json_object *r = (size_t)i < nr ? json_object_array_get_idx(resp.json, (size_t)i) : NULL;
        if (!r) {
            wop_fail(o, "UNKNOWN_ERROR", "Salesforce returned no result for operation \"%s\"", o->ref);
            continue;
        }
        if (json_get_bool(r, "success", false)) {
            bool has_created = json_get(r, "created") != NULL;
            set_success(o, json_get_str(r, "id"), has_created, json_get_bool(r, "created", false));
        } else {
            set_error_from(o, json_get(r, "errors"), "statusCode", NULL);
        }
    }
    ok = true;
out:
    json_object_put(recs);
    json_object_put(req);
    sf_response_cleanup(&resp);
    free(calls);
    return ok;
}
