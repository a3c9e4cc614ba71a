/*
 * plan: a record.write message -> operations mapped through the org's export
 * mappings, with ids resolved (platform id / Salesforce id / local match-key
 * lookup), links resolved (another operation's ref, a platform id or a
 * Salesforce id) and a level per operation (parents before children).
 * Nothing is sent here; nothing is written. See write.h.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "pg.h"
#include "write.h"

void wop_fail(struct wop *o, const char *code, const char *fmt, ...)
{
    if (o->done)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->err_msg, sizeof o->err_msg, fmt, ap);
    va_end(ap);
    snprintf(o->err_code, sizeof o->err_code, "%s", code);
    o->outcome = "failed";
    o->done = true;
}

bool write_is_sfid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n != 15 && n != 18)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]))
            return false;
    return true;
}

void write_msg_cleanup(struct wmsg *m)
{
    for (int i = 0; i < m->nops; i++) {
        json_object_put(m->ops[i].body);
        json_object_put(m->ops[i].err_fields);
        free(m->ops[i].contacts);
    }
    free(m->ops);
    m->ops = NULL;
    m->nops = 0;
    if (m->map_loaded)
        mapping_cleanup(&m->map);
    m->map_loaded = false;
}

static int find_ref(const struct wmsg *m, const char *ref)
{
    for (int i = 0; i < m->nops; i++)
        if (!strcmp(m->ops[i].ref, ref))
            return i;
    return -1;
}

/* Local row by platform id or (18-character) Salesforce id: fills local (id) and sf (salesforce_id or ""). */
static bool local_lookup(struct pg *pg, const char *org, const char *table, const char *id, char *local,
                         size_t lcap, char *sf, size_t scap, bool *found, struct err *e)
{
    char sql[256];
    bool by_uuid = json_is_uuid(id);
    snprintf(sql, sizeof sql,
             "SELECT id::text, salesforce_id FROM %s WHERE org_id = $1 AND %s ORDER BY deleted_at IS NOT NULL LIMIT 1",
             table, by_uuid ? "id = $2::uuid" : "salesforce_id = $2");
    const char *p[2] = {org, id};
    struct pg_res *r = pg_exec(pg, sql, 2, p, e);
    if (!r)
        return false;
    *found = pg_res_rows(r) == 1;
    if (*found) {
        snprintf(local, lcap, "%s", pg_res_get(r, 0, 0));
        snprintf(sf, scap, "%s", pg_res_isnull(r, 0, 1) ? "" : pg_res_get(r, 0, 1));
    }
    pg_res_free(&r);
    return true;
}

/* A platform id as given, a Salesforce id in its 18-character form (stored and sent as such); false
 * when it is neither. */
static bool norm_id(const char *id, char *out, size_t cap)
{
    char sf[19];
    if (json_is_uuid(id)) {
        snprintf(out, cap, "%s", id);
        return true;
    }
    if (!write_is_sfid(id) || !write_sfid18(id, sf))
        return false;
    snprintf(out, cap, "%s", sf);
    return true;
}

/* Upsert by match keys: a local row whose match-key fields equal the given values (case-insensitive). */
static bool match_lookup(struct pg *pg, struct wmsg *m, struct wop *o, struct json_object *match, bool *found,
                         struct err *e)
{
    char sql[2048];
    const char *params[8];
    int np = 0, len;
    params[np++] = m->org_id;
    len = snprintf(sql, sizeof sql, "SELECT id::text, salesforce_id FROM %s WHERE org_id = $1 AND deleted_at IS NULL",
                   o->table);
    json_object_object_foreach(match, key, val)
    {
        if (np >= 7)
            break;
        const char *type = mapping_core_column(o->object, key);
        params[np++] = json_object_get_string(val);
        if (type && strcmp(type, "text[]"))
            len += snprintf(sql + len, sizeof sql - (size_t)len, " AND lower(%s::text) = lower($%d)", key, np);
        else {
            params[np++] = key;
            len += snprintf(sql + len, sizeof sql - (size_t)len, " AND lower(attributes->>$%d) = lower($%d)", np,
                            np - 1);
        }
    }
    snprintf(sql + len, sizeof sql - (size_t)len, " ORDER BY salesforce_id IS NULL, updated_at DESC LIMIT 1");
    struct pg_res *r = pg_exec(pg, sql, np, params, e);
    if (!r)
        return false;
    *found = pg_res_rows(r) == 1;
    if (*found) {
        snprintf(o->local_id, sizeof o->local_id, "%s", pg_res_get(r, 0, 0));
        snprintf(o->sf_id, sizeof o->sf_id, "%s", pg_res_isnull(r, 0, 1) ? "" : pg_res_get(r, 0, 1));
    }
    pg_res_free(&r);
    return true;
}

/* Resolve one link value: a ref of this message, a platform id or a Salesforce id. */
static bool resolve_link(struct pg *pg, struct wmsg *m, struct wop *o, const char *what, const char *table,
                         const char *value, struct wlink *l, struct err *e)
{
    l->op = find_ref(m, value);
    l->sf[0] = l->local[0] = '\0';
    if (l->op >= 0) {
        if (l->op == o->idx)
            wop_fail(o, "INVALID_LINK", "operation \"%s\" cannot link to itself", o->ref);
        return true;
    }
    char idbuf[40];
    if (norm_id(value, idbuf, sizeof idbuf)) {
        bool found = false;
        value = idbuf;
        if (!local_lookup(pg, m->org_id, table, value, l->local, sizeof l->local, l->sf, sizeof l->sf, &found, e))
            return false;
        if (!found && json_is_uuid(value))
            wop_fail(o, "NOT_FOUND", "operation \"%s\": %s \"%s\" is not known in org \"%s\"", o->ref, what, value,
                     m->org_id);
        else if (!found)
            snprintf(l->sf, sizeof l->sf, "%s", value);
        else if (!l->sf[0])
            wop_fail(o, "NOT_FOUND", "operation \"%s\": %s \"%s\" has not been written to Salesforce yet", o->ref,
                     what, value);
        return true;
    }
    wop_fail(o, "INVALID_LINK", "operation \"%s\": link \"%s\" is neither a ref of this message nor an id", o->ref,
             value);
    return true;
}

static const char *link_field(struct wop *o, const char *platform_field, const char *what)
{
    const struct field_map *f = mapping_field_by_platform(o->om, platform_field, MAP_EXPORT);
    if (!f) {
        wop_fail(o, "MAPPING_REQUIRED",
                 "cannot link %s \"%s\" to a %s: the org has no export mapping of %s for %s", o->object, o->ref, what,
                 platform_field, o->om->sf_object);
        return NULL;
    }
    return f->sf_field;
}

static bool plan_links(struct pg *pg, struct wmsg *m, struct wop *o, struct json_object *links, struct err *e)
{
    const char *company = json_get_str(links, "company"), *deal = json_get_str(links, "deal");
    struct json_object *contacts = json_get(links, "contacts");
    if (company) {
        o->f_company = link_field(o, "company_sf_id", "company");
        o->has_company = o->f_company != NULL;
        if (o->has_company && !resolve_link(pg, m, o, "Company", "companies", company, &o->company, e))
            return false;
    }
    if (deal) {
        o->f_deal = link_field(o, "deal_sf_id", "deal");
        o->has_deal = o->f_deal != NULL;
        if (o->has_deal && !resolve_link(pg, m, o, "Deal", "deals", deal, &o->deal, e))
            return false;
    }
    if (contacts && json_object_is_type(contacts, json_type_array) && json_object_array_length(contacts) > 0) {
        if (strcmp(o->object, "Activity") != 0) {
            wop_fail(o, "INVALID_LINK", "operation \"%s\": only an Activity links contacts", o->ref);
            return true;
        }
        if (strcmp(o->om->sf_object, "Interaction") != 0) {
            wop_fail(o, "INVALID_LINK",
                     "operation \"%s\": contacts are linked as InteractionAttendee records; %s cannot hold them",
                     o->ref, o->om->sf_object);
            return true;
        }
        size_t n = json_object_array_length(contacts);
        o->contacts = calloc(n, sizeof *o->contacts);
        if (!o->contacts)
            return err_set(e, ERR_NOMEM, true, "out of memory");
        o->ncontacts = (int)n;
        for (size_t i = 0; i < n; i++)
            if (!resolve_link(pg, m, o, "Contact", "contacts",
                              json_object_get_string(json_object_array_get_idx(contacts, i)), &o->contacts[i], e))
                return false;
    }
    return true;
}

static bool plan_fields(struct wmsg *m, struct wop *o, struct json_object *match)
{
    o->body = json_object_new_object();
    json_object_object_foreach(o->fields, key, val)
    {
        const struct field_map *f = mapping_field_by_platform(o->om, key, MAP_EXPORT);
        if (!f) {
            wop_fail(o, "UNMAPPED_FIELD",
                     "operation \"%s\": field \"%s\" of %s is not mapped for export in org \"%s\" (an admin maps "
                     "it with sfbridge mappings import)",
                     o->ref, key, o->object, m->org_id);
            return false;
        }
        if (strchr(f->sf_field, '.')) {
            wop_fail(o, "UNMAPPED_FIELD", "operation \"%s\": field \"%s\" maps to %s, which cannot be written",
                     o->ref, key, f->sf_field);
            return false;
        }
        struct json_object *out = NULL;
        struct err xe = ERR_INIT;
        if (!mapping_export_value(f, val, &out, &xe)) {
            wop_fail(o, "INVALID_FIELD_VALUE", "operation \"%s\": %s", o->ref, xe.msg);
            return false;
        }
        json_object_object_add(o->body, f->sf_field, out);
    }
    if (match) {
        json_object_object_foreach(match, mkey, mval)
        {
            const struct field_map *f = mapping_field_by_platform(o->om, mkey, MAP_EXPORT);
            if (!f || !f->match_key) {
                wop_fail(o, "INVALID_MATCH_KEY",
                         "operation \"%s\": \"%s\" is not a match key of %s in org \"%s\" (the mapping marks "
                         "match keys)",
                         o->ref, mkey, o->object, m->org_id);
                return false;
            }
            if (!json_object_object_get_ex(o->body, f->sf_field, NULL)) {
                struct json_object *out = NULL;
                struct err xe = ERR_INIT;
                if (!mapping_export_value(f, mval, &out, &xe)) {
                    wop_fail(o, "INVALID_FIELD_VALUE", "operation \"%s\": %s", o->ref, xe.msg);
                    return false;
                }
                json_object_object_add(o->body, f->sf_field, out);
            }
        }
    }
    return true;
}

/* The id of an update / upsert: a platform id or a Salesforce id. */
static bool plan_id(struct pg *pg, struct wmsg *m, struct wop *o, const char *id, struct err *e)
{
    char local[40] = "", sf[19] = "", idbuf[40];
    bool found = false;
    if (!norm_id(id, idbuf, sizeof idbuf)) {
        wop_fail(o, "INVALID_ID", "operation \"%s\": id \"%s\" is neither a platform id nor a Salesforce id", o->ref,
                 id);
        return true;
    }
    id = idbuf;
    if (!local_lookup(pg, m->org_id, o->table, id, local, sizeof local, sf, sizeof sf, &found, e))
        return false;
    if (json_is_uuid(id)) {
        if (!found) {
            wop_fail(o, "NOT_FOUND", "operation \"%s\": %s \"%s\" is not known in org \"%s\"", o->ref, o->object, id,
                     m->org_id);
            return true;
        }
        snprintf(o->local_id, sizeof o->local_id, "%s", local);
        snprintf(o->platform_id, sizeof o->platform_id, "%s", local);
        if (sf[0]) {
            snprintf(o->sf_id, sizeof o->sf_id, "%s", sf);
            o->kind = K_BYID;
        } else if (m->ext_field) {
            o->kind = K_EXTID; /* written before under its platform id, or never: the upsert finds it */
        } else {
            wop_fail(o, "NOT_FOUND", "operation \"%s\": %s \"%s\" has no Salesforce id yet", o->ref, o->object, id);
        }
        return true;
    }
    snprintf(o->sf_id, sizeof o->sf_id, "%s", found ? sf : id);
    if (found) {
        snprintf(o->local_id, sizeof o->local_id, "%s", local);
        snprintf(o->platform_id, sizeof o->platform_id, "%s", local);
    }
    o->kind = K_BYID;
    return true;
}

static bool plan_op(struct pg *pg, struct wmsg *m, struct wop *o, struct json_object *op, struct err *e)
{
    const char *id = json_get_str(op, "id");
    struct json_object *match = json_get(op, "match"), *links = json_get(op, "links");
    if (o->act == ACT_DELETE) {
        o->kind = K_NONE;
        char sf[19];
        if (id && write_is_sfid(id) && write_sfid18(id, sf))
            snprintf(o->sf_id, sizeof o->sf_id, "%s", sf);
        wop_fail(o, "DELETE_NOT_SUPPORTED", "cannot delete %s \"%s\": sfbridge never deletes records in Salesforce",
                 o->object, id ? id : o->ref);
        o->outcome = "refused";
        return true;
    }
    o->om = mapping_by_platform(&m->map, o->object);
    if (!o->om || !o->om->enabled || !o->table) {
        wop_fail(o, "MAPPING_REQUIRED",
                 "cannot write %s \"%s\": org \"%s\" has no enabled mapping for %s; an admin must configure it",
                 o->object, o->ref, m->org_id, o->object);
        return true;
    }
    if (!plan_fields(m, o, o->act == ACT_UPSERT ? match : NULL))
        return true;
    json_uuid4(o->platform_id, sizeof o->platform_id);
    if (o->act == ACT_UPDATE || (o->act == ACT_UPSERT && id)) {
        if (!plan_id(pg, m, o, id, e))
            return false;
    } else if (o->act == ACT_UPSERT && match) {
        bool found = false;
        if (!match_lookup(pg, m, o, match, &found, e))
            return false;
        if (found && o->sf_id[0]) {
            o->kind = K_BYID;
            snprintf(o->platform_id, sizeof o->platform_id, "%s", o->local_id);
        } else if (found) {
            snprintf(o->platform_id, sizeof o->platform_id, "%s", o->local_id);
            o->kind = m->ext_field ? K_EXTID : K_CREATE;
        } else {
            o->kind = m->ext_field ? K_EXTID : K_CREATE;
        }
    } else {
        o->kind = m->ext_field ? K_EXTID : K_CREATE;
    }
    if (!o->done && links && !plan_links(pg, m, o, links, e))
        return false;
    return true;
}

static int link_level(const struct wmsg *m, const struct wlink *l)
{
    return l->op >= 0 ? m->ops[l->op].level : -1;
}

bool write_plan(struct pg *pg, struct wmsg *m, struct err *e)
{
    struct json_object *ops = json_get(m->msg, "operations");
    size_t n = ops ? json_object_array_length(ops) : 0;
    if (!mapping_load(pg, m->org_id, &m->map, e))
        return false;
    m->map_loaded = true;
    m->ext_field = m->map.external_id_field && *m->map.external_id_field ? m->map.external_id_field : NULL;
    m->ops = calloc(n ? n : 1, sizeof *m->ops);
    if (!m->ops)
        return err_set(e, ERR_NOMEM, true, "out of memory");
    m->nops = (int)n;
    for (size_t i = 0; i < n; i++) {
        struct json_object *op = json_object_array_get_idx(ops, i);
        struct wop *o = &m->ops[i];
        o->idx = (int)i;
        o->ref = json_get_str(op, "ref");
        o->object = json_get_str(op, "object");
        o->action = json_get_str(op, "action");
        o->fields = json_get(op, "fields");
        o->table = mapping_table(o->object);
        o->company.op = o->deal.op = -1;
        o->act = !strcmp(o->action, "create")   ? ACT_CREATE
                 : !strcmp(o->action, "update") ? ACT_UPDATE
                 : !strcmp(o->action, "upsert") ? ACT_UPSERT
                                                : ACT_DELETE;
        o->match = o->act == ACT_UPSERT ? json_get(op, "match") : NULL;
    }
    for (int i = 0; i < m->nops; i++)
        if (find_ref(m, m->ops[i].ref) != i)
            wop_fail(&m->ops[i], "INVALID_MESSAGE", "ref \"%s\" is used by more than one operation", m->ops[i].ref);
    for (size_t i = 0; i < n; i++)
        if (!m->ops[i].done && !plan_op(pg, m, &m->ops[i], json_object_array_get_idx(ops, i), e))
            return false;
    /* levels: a child one above its deepest parent; a cycle never settles */
    for (int pass = 0; pass <= m->nops; pass++) {
        bool changed = false;
        for (int i = 0; i < m->nops; i++) {
            struct wop *o = &m->ops[i];
            int lv = 0, l;
            if (o->has_company && (l = link_level(m, &o->company)) >= lv)
                lv = l + 1;
            if (o->has_deal && (l = link_level(m, &o->deal)) >= lv)
                lv = l + 1;
            for (int k = 0; k < o->ncontacts; k++)
                if ((l = link_level(m, &o->contacts[k])) >= lv)
                    lv = l + 1;
            if (lv != o->level) {
                o->level = lv;
                changed = true;
            }
        }
        if (!changed)
            break;
        if (pass == m->nops)
            for (int i = 0; i < m->nops; i++)
                wop_fail(&m->ops[i], "INVALID_LINK", "the links of this message form a cycle");
    }
    return true;
}
