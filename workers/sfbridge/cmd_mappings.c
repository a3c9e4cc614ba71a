/*
 * sfbridge mappings: import, show and validate an org's object/field mappings.
 *
 *   sfbridge mappings import --org ORG --by ADMIN FILE   (JSON or CSV, see below)
 *   sfbridge mappings show --org ORG [--json]
 *   sfbridge mappings validate --org ORG [--connection ID]
 *
 * JSON (tests/demo/mappings.json is an example):
 *   {"external_id_field": "Platform_Id__c",            (optional: organizations.external_id_field)
 *    "objects": [{"sf_object": "Account", "platform_object": "Company", "enabled": true,
 *                 "soql_filter": null,
 *                 "fields": [{"sf_field": "Name", "platform_field": "name", "direction": "both",
 *                             "transform": "trim", "match_key": false}, ...]}]}
 * CSV: a header line, then one field mapping per line, columns in this order:
 *   sf_object,platform_object,sf_field,platform_field,direction,transform,match_key,enabled,soql_filter
 * (direction import|export|both, default import; match_key and enabled true|false, defaults false
 * and true; enabled and soql_filter are taken from the first line of each object.)
 *
 * An import replaces, in one transaction, the mappings of every object named in the file; objects
 * not in the file are left alone. Nothing is written when any line is invalid.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "conn.h"
#include "csv.h"
#include "json.h"
#include "mapping.h"
#include "pg.h"
#include "sf.h"
#include "soql.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: sfbridge mappings import --org ORG --by ADMIN FILE   (JSON or CSV)\n"
               "       sfbridge mappings show --org ORG [--json]\n"
               "       sfbridge mappings validate --org ORG [--connection ID]\n\n"
               "CSV columns: sf_object,platform_object,sf_field,platform_field,direction,transform,match_key,"
               "enabled,soql_filter\n");
}

static bool platform_field_ok(const char *s)
{
    if (!s || !(*s >= 'a' && *s <= 'z'))
        return false;
    size_t n = strlen(s);
    if (n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

static const char *const reserved[] = {"id", "org_id", "connection_id", "salesforce_id", "company_id", "deal_id",
                                       "contact_ids", "attributes", "sf_modstamp", "deleted_at", "synced_at",
                                       "created_at", "updated_at", "sf_object", NULL};

/* check one field mapping; *why set on failure */
static bool check_field(const char *obj, const char *sf_field, const char *platform_field, const char *dir,
                        const char *transform, char *why, size_t cap)
{
    if (!sf_field || !soql_field_valid(sf_field)) {
        snprintf(why, cap, "%s: invalid Salesforce field name \"%.80s\"", obj, sf_field ? sf_field : "");
        return false;
    }
    if (!platform_field_ok(platform_field)) {
        snprintf(why, cap, "%s.%s: invalid platform field \"%.80s\" (lower case letters, digits, _)", obj, sf_field,
                 platform_field ? platform_field : "");
        return false;
    }
    for (int i = 0; reserved[i]; i++) {
        if (!strcmp(reserved[i], platform_field)) {
            snprintf(why, cap, "%s.%s: platform field \"%s\" is managed by sfbridge and cannot be mapped", obj,
                     sf_field, platform_field);
            return false;
        }
    }
    if (dir && *dir && !mapping_dir_parse(dir)) {
        snprintf(why, cap, "%s.%s: direction must be import, export or both, not \"%.40s\"", obj, sf_field, dir);
        return false;
    }
    char tw[200];
    if (transform && *transform && !mapping_transform_valid(transform, tw, sizeof tw)) {
        snprintf(why, cap, "%s.%s: %s", obj, sf_field, tw);
        return false;
    }
    return true;
}

static bool check_object(const char *obj, const char *platform, const char *filter, char *why, size_t cap)
{
    if (!obj || !soql_ident_valid(obj)) {
        snprintf(why, cap, "invalid Salesforce object name \"%.80s\"", obj ? obj : "");
        return false;
    }
    if (!mapping_table(platform)) {
        snprintf(why, cap, "%s: platform object must be Company, Deal, Contact or Activity, not \"%.40s\"", obj,
                 platform ? platform : "");
        return false;
    }
    if (filter && *filter) {
        struct err e = ERR_INIT;
        struct soql_select *s = soql_select_new(obj, &e);
        bool ok = s && soql_select_field(s, "Id", &e) && soql_select_where_raw(s, filter);
        char *q = ok ? soql_select_build(s, &e) : NULL;
        soql_select_free(&s);
        if (!q) {
            snprintf(why, cap, "%s: the SOQL filter is not acceptable (no ';', balanced quotes and parentheses)", obj);
            return false;
        }
        free(q);
    }
    return true;
}

/* ---- CSV -> the JSON shape ---------------------------------------------- */

struct csv_ctx {
    struct json_object *objects; /* array */
    size_t line;
    bool header_seen;
    char why[400];
};

static struct json_object *find_obj(struct json_object *arr, const char *name)
{
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        struct json_object *o = json_object_array_get_idx(arr, i);
        if (!strcasecmp(json_get_str(o, "sf_object"), name))
            return o;
    }
    return NULL;
}

static bool truthy(const char *s, bool dflt)
{
    if (!s || !*s)
        return dflt;
    return !strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "yes") || !strcasecmp(s, "t");
}

static int csv_row(void *ud, size_t n, const char *const *f)
{
    struct csv_ctx *c = ud;
    c->line++;
    if (!c->header_seen) {
        c->header_seen = true;
        if (n < 4 || strcasecmp(f[0], "sf_object")) {
            snprintf(c->why, sizeof c->why,
                     "line 1: expected the header sf_object,platform_object,sf_field,platform_field,direction,"
                     "transform,match_key,enabled,soql_filter");
            return 1;
        }
        return 0;
    }
    if (n < 4) {
        snprintf(c->why, sizeof c->why, "line %zu: expected at least 4 columns, got %zu", c->line, n);
        return 1;
    }
    struct json_object *o = find_obj(c->objects, f[0]);
    if (!o) {
        o = json_object_new_object();
        json_add_str(o, "sf_object", f[0]);
        json_add_str(o, "platform_object", f[1]);
        json_add_bool(o, "enabled", truthy(n > 7 ? f[7] : NULL, true));
        if (n > 8 && *f[8])
            json_add_str(o, "soql_filter", f[8]);
        json_object_object_add(o, "fields", json_object_new_array());
        json_object_array_add(c->objects, o);
    } else if (strcmp(json_get_str(o, "platform_object"), f[1])) {
        snprintf(c->why, sizeof c->why, "line %zu: %s is mapped to %s above, not %s", c->line, f[0],
                 json_get_str(o, "platform_object"), f[1]);
        return 1;
    }
    struct json_object *fld = json_object_new_object();
    json_add_str(fld, "sf_field", f[2]);
    json_add_str(fld, "platform_field", f[3]);
    json_add_str(fld, "direction", n > 4 && *f[4] ? f[4] : "import");
    if (n > 5 && *f[5])
        json_add_str(fld, "transform", f[5]);
    json_add_bool(fld, "match_key", truthy(n > 6 ? f[6] : NULL, false));
    json_object_array_add(json_get(o, "fields"), fld);
    return 0;
}

static struct json_object *parse_file(const char *path, char *why, size_t cap)
{
    char *text = NULL;
    size_t len = 0;
    struct json_object *doc = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(why, cap, "cannot read \"%s\"", path);
        return NULL;
    }
    size_t capb = 0;
    for (;;) {
        if (len + 4096 > capb) {
            capb = capb ? capb * 2 : 65536;
            char *nt = realloc(text, capb);
            if (!nt) {
                snprintf(why, cap, "out of memory");
                free(text);
                fclose(fp);
                return NULL;
            }
            text = nt;
        }
        size_t got = fread(text + len, 1, capb - len - 1, fp);
        len += got;
        if (got == 0)
            break;
    }
    fclose(fp);
    text[len] = '\0';
    const char *p = text;
    while (*p && isspace((unsigned char)*p))
        p++;
    struct err e = ERR_INIT;
    if (*p == '{') {
        doc = json_parse(text, len, &e);
        if (!doc)
            snprintf(why, cap, "\"%s\" is not valid JSON: %s", path, e.msg);
    } else {
        struct csv_ctx c = {.objects = json_object_new_array()};
        struct csv_parser *cp = csv_parser_new();
        bool ok = cp && csv_parser_feed(cp, text, len, csv_row, &c, &e) && csv_parser_finish(cp, csv_row, &c, &e);
        csv_parser_free(&cp);
        if (!ok) {
            snprintf(why, cap, "\"%s\": %s", path, c.why[0] ? c.why : e.msg);
            json_object_put(c.objects);
        } else {
            doc = json_object_new_object();
            json_object_object_add(doc, "objects", c.objects);
        }
    }
    free(text);
    return doc;
}

static int do_import(struct cli *cli, const char *org, const char *by, const char *path)
{
    char why[512] = "";
    int rc = 1;
    struct pg *db = NULL;
    struct err e = ERR_INIT;
    struct json_object *doc = parse_file(path, why, sizeof why);
    if (!doc) {
        cli_fail("%s", why);
        return 1;
    }
    struct json_object *objs = json_get(doc, "objects");
    if (!objs || !json_object_is_type(objs, json_type_array) || json_object_array_length(objs) == 0) {
        cli_fail("\"%s\": no objects to import (expected {\"objects\": [...]})", path);
        goto out;
    }
    const char *ext = json_get_str(doc, "external_id_field");
    if (ext && !soql_ident_valid(ext)) {
        cli_fail("invalid external_id_field \"%.80s\"", ext);
        goto out;
    }
    size_t nfields = 0;
    /* validate everything before writing anything */
    for (size_t i = 0; i < json_object_array_length(objs); i++) {
        struct json_object *o = json_object_array_get_idx(objs, i);
        const char *name = json_get_str(o, "sf_object");
        if (!check_object(name, json_get_str(o, "platform_object"), json_get_str(o, "soql_filter"), why,
                          sizeof why)) {
            cli_fail("cannot import: %s", why);
            goto out;
        }
        struct json_object *fl = json_get(o, "fields");
        if (!fl || !json_object_is_type(fl, json_type_array) || json_object_array_length(fl) == 0) {
            cli_fail("cannot import: %s has no fields", name);
            goto out;
        }
        for (size_t k = 0; k < json_object_array_length(fl); k++) {
            struct json_object *f = json_object_array_get_idx(fl, k);
            if (!check_field(name, json_get_str(f, "sf_field"), json_get_str(f, "platform_field"),
                             json_get_str(f, "direction"), json_get_str(f, "transform"), why, sizeof why)) {
                cli_fail("cannot import: %s", why);
                goto out;
            }
            nfields++;
        }
    }
    db = cli_db(cli);
    if (!db)
        goto out;
    const char *po[1] = {org};
    struct pg_res *r = pg_exec(db, "SELECT 1 FROM organizations WHERE org_id = $1", 1, po, &e);
    if (!r)
        goto fail;
    int found = pg_res_rows(r);
    pg_res_free(&r);
    if (!found) {
        cli_fail("unknown org \"%s\" (create it with sfbridge org enable)", org);
        rc = 2;
        goto out;
    }
    if (!pg_begin(db, &e))
        goto fail;
    if (ext) {
        const char *p[2] = {org, ext};
        if (!pg_run(db, "UPDATE organizations SET external_id_field = $2 WHERE org_id = $1", 2, p, &e))
            goto fail;
    }
    for (size_t i = 0; i < json_object_array_length(objs); i++) {
        struct json_object *o = json_object_array_get_idx(objs, i);
        const char *name = json_get_str(o, "sf_object");
        const char *p[6] = {org, name, json_get_str(o, "platform_object"),
                            json_get_bool(o, "enabled", true) ? "t" : "f", json_get_str(o, "soql_filter"), by};
        if (!pg_run(db, "DELETE FROM field_mappings WHERE org_id = $1 AND lower(sf_object) = lower($2)", 2, p, &e) ||
            !pg_run(db, "DELETE FROM object_mappings WHERE org_id = $1 AND lower(sf_object) = lower($2)", 2, p, &e) ||
            !pg_run(db,
                    "INSERT INTO object_mappings (org_id, sf_object, platform_object, enabled, soql_filter, "
                    "updated_by, updated_at) VALUES ($1, $2, $3, $4, NULLIF($5, ''), $6, now())",
                    6, p, &e))
            goto fail;
        struct json_object *fl = json_get(o, "fields");
        for (size_t k = 0; k < json_object_array_length(fl); k++) {
            struct json_object *f = json_object_array_get_idx(fl, k);
            const char *dir = json_get_str(f, "direction");
            const char *fp[7] = {org,
                                 name,
                                 json_get_str(f, "sf_field"),
                                 json_get_str(f, "platform_field"),
                                 dir && *dir ? dir : "import",
                                 json_get_str(f, "transform"),
                                 json_get_bool(f, "match_key", false) ? "t" : "f"};
            if (!pg_run(db,
                        "INSERT INTO field_mappings (org_id, sf_object, sf_field, platform_field, direction, "
                        "transform, is_match_key) VALUES ($1, $2, $3, $4, $5, NULLIF($6, ''), $7) "
                        "ON CONFLICT (org_id, sf_object, sf_field, platform_field) DO UPDATE SET "
                        "direction = excluded.direction, transform = excluded.transform, "
                        "is_match_key = excluded.is_match_key",
                        7, fp, &e))
                goto fail;
        }
    }
    if (!pg_commit(db, &e))
        goto fail;
    printf("imported %zu object mapping%s with %zu field mapping%s for org %s (by %s)\n",
           json_object_array_length(objs), json_object_array_length(objs) == 1 ? "" : "s", nfields,
           nfields == 1 ? "" : "s", org, by);
    rc = 0;
    goto out;
fail:
    pg_rollback(db);
    cli_fail("could not import mappings: %s", e.msg);
out:
    pg_close(&db);
    json_object_put(doc);
    return rc;
}

static struct json_object *mapping_to_json(const struct mapping_set *m)
{
    struct json_object *doc = json_object_new_object();
    if (m->external_id_field)
        json_add_str(doc, "external_id_field", m->external_id_field);
    struct json_object *objs = json_object_new_array();
    for (size_t i = 0; i < m->nobjects; i++) {
        const struct object_map *o = &m->objects[i];
        struct json_object *jo = json_object_new_object();
        json_add_str(jo, "sf_object", o->sf_object);
        json_add_str(jo, "platform_object", o->platform_object);
        json_add_bool(jo, "enabled", o->enabled);
        if (o->soql_filter)
            json_add_str(jo, "soql_filter", o->soql_filter);
        struct json_object *fl = json_object_new_array();
        for (size_t k = 0; k < o->nfields; k++) {
            const struct field_map *f = &o->fields[k];
            struct json_object *jf = json_object_new_object();
            json_add_str(jf, "sf_field", f->sf_field);
            json_add_str(jf, "platform_field", f->platform_field);
            json_add_str(jf, "direction", mapping_dir_name(f->dir));
            if (f->transform)
                json_add_str(jf, "transform", f->transform);
            json_add_bool(jf, "match_key", f->match_key);
            json_object_array_add(fl, jf);
        }
        json_object_object_add(jo, "fields", fl);
        json_object_array_add(objs, jo);
    }
    json_object_object_add(doc, "objects", objs);
    return doc;
}

static int do_show(struct cli *cli, const char *org, bool as_json)
{
    struct err e = ERR_INIT;
    struct mapping_set m;
    struct pg *db = cli_db(cli);
    if (!db)
        return 1;
    if (!mapping_load(db, org, &m, &e)) {
        cli_fail("could not load the mappings of org \"%s\": %s", org, e.msg);
        pg_close(&db);
        return 1;
    }
    pg_close(&db);
    if (as_json) {
        struct json_object *doc = mapping_to_json(&m);
        printf("%s\n", json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(doc);
        mapping_cleanup(&m);
        return 0;
    }
    if (m.nobjects == 0) {
        printf("org %s has no mappings (import them with: sfbridge mappings import --org %s --by ADMIN FILE)\n", org,
               org);
        mapping_cleanup(&m);
        return 0;
    }
    printf("org %s, external id field %s\n", org, m.external_id_field ? m.external_id_field : "(none)");
    for (size_t i = 0; i < m.nobjects; i++) {
        const struct object_map *o = &m.objects[i];
        printf("\n%s -> %s (%s)%s%s\n", o->sf_object, o->platform_object, o->enabled ? "enabled" : "DISABLED",
               o->soql_filter ? "  filter: " : "", o->soql_filter ? o->soql_filter : "");
        printf("  %-28s %-22s %-9s %-5s %s\n", "SALESFORCE FIELD", "PLATFORM FIELD", "DIRECTION", "MATCH",
               "TRANSFORM");
        for (size_t k = 0; k < o->nfields; k++) {
            const struct field_map *f = &o->fields[k];
            const char *core = mapping_core_column(o->platform_object, f->platform_field);
            char pf[80];
            snprintf(pf, sizeof pf, "%s%s", f->platform_field, core ? "" : " (attr)");
            printf("  %-28s %-22s %-9s %-5s %s\n", f->sf_field, pf, mapping_dir_name(f->dir),
                   f->match_key ? "yes" : "", f->transform ? f->transform : "");
        }
    }
    mapping_cleanup(&m);
    return 0;
}

/* ---- validate against describe ------------------------------------------- */

static struct json_object *describe_field(struct json_object *fields, const char *name)
{
    for (size_t i = 0; fields && i < json_object_array_length(fields); i++) {
        struct json_object *f = json_object_array_get_idx(fields, i);
        const char *n = json_get_str(f, "name");
        if (n && !strcasecmp(n, name))
            return f;
    }
    return NULL;
}

static struct json_object *describe_relationship(struct json_object *fields, const char *rel)
{
    for (size_t i = 0; fields && i < json_object_array_length(fields); i++) {
        struct json_object *f = json_object_array_get_idx(fields, i);
        const char *n = json_get_str(f, "relationshipName");
        if (n && !strcasecmp(n, rel))
            return f;
    }
    return NULL;
}

static bool type_fits(const char *core_type, const char *sf_type)
{
    if (!core_type || !strcmp(core_type, "text"))
        return strcmp(sf_type, "address") && strcmp(sf_type, "location") && strcmp(sf_type, "base64");
    if (!strcmp(core_type, "numeric"))
        return !strcmp(sf_type, "double") || !strcmp(sf_type, "currency") || !strcmp(sf_type, "percent") ||
               !strcmp(sf_type, "int") || !strcmp(sf_type, "long");
    if (!strcmp(core_type, "integer"))
        return !strcmp(sf_type, "int") || !strcmp(sf_type, "long") || !strcmp(sf_type, "double");
    if (!strcmp(core_type, "date"))
        return !strcmp(sf_type, "date") || !strcmp(sf_type, "datetime");
    if (!strcmp(core_type, "timestamptz"))
        return !strcmp(sf_type, "datetime");
    if (!strcmp(core_type, "char18") || !strcmp(core_type, "text[]"))
        return !strcmp(sf_type, "id") || !strcmp(sf_type, "reference");
    return true;
}

static int do_validate(struct cli *cli, const char *org, const char *connection)
{
    struct err e = ERR_INIT;
    struct mapping_set m;
    memset(&m, 0, sizeof m);
    struct conn_session s;
    memset(&s, 0, sizeof s);
    bool s_open = false;
    struct sf_client *sf = NULL;
    int errors = 0, warnings = 0, rc = 1;
    char conn_id[64] = "";
    struct pg *db = cli_db(cli);
    if (!db)
        return 1;
    if (!mapping_load(db, org, &m, &e)) {
        cli_fail("could not load the mappings of org \"%s\": %s", org, e.msg);
        goto out;
    }
    if (m.nobjects == 0) {
        printf("org %s has no mappings: nothing will sync (sfbridge mappings import)\n", org);
        rc = 2;
        goto out;
    }
    if (connection) {
        snprintf(conn_id, sizeof conn_id, "%s", connection);
    } else {
        const char *p[1] = {org};
        struct pg_res *r = pg_exec(db,
                                   "SELECT connection_id::text FROM connections WHERE org_id = $1 AND status = "
                                   "'connected' ORDER BY updated_at DESC LIMIT 1",
                                   1, p, &e);
        if (!r) {
            cli_fail("%s", e.msg);
            goto out;
        }
        if (pg_res_rows(r) == 1)
            snprintf(conn_id, sizeof conn_id, "%s", pg_res_get(r, 0, 0));
        pg_res_free(&r);
        if (!conn_id[0]) {
            cli_fail("org \"%s\" has no connected Salesforce connection to validate against", org);
            goto out;
        }
    }
    struct sf_options o;
    conn_sf_options(&cli->cfg, &o);
    if (!(sf = sf_client_new(&o, &e)) || !conn_open(&s, db, &cli->cfg, sf, conn_id, &e)) {
        cli_fail("cannot open connection %s: %s", conn_id, e.msg);
        goto out;
    }
    s_open = true;
    for (size_t i = 0; i < m.nobjects; i++) {
        const struct object_map *om = &m.objects[i];
        char path[200];
        snprintf(path, sizeof path, "/sobjects/%s/describe/", om->sf_object);
        struct sf_response resp = {.records = -1};
        struct err ce = ERR_INIT;
        printf("%s -> %s%s\n", om->sf_object, om->platform_object, om->enabled ? "" : " (disabled)");
        if (!conn_call(&s, "GET", path, NULL, NULL, 0, &resp, &ce)) {
            printf("  ERROR  object %s: %s\n", om->sf_object,
                   !strcmp(ce.sf_code, "NOT_FOUND") || !strcmp(ce.sf_code, "INVALID_TYPE")
                       ? "does not exist in this Salesforce org"
                       : ce.msg);
            errors++;
            sf_response_cleanup(&resp);
            continue;
        }
        struct json_object *fields = json_get(resp.json, "fields");
        if (!json_get_bool(resp.json, "queryable", true)) {
            printf("  ERROR  object %s is not queryable\n", om->sf_object);
            errors++;
        }
        for (size_t k = 0; k < om->nfields; k++) {
            const struct field_map *f = &om->fields[k];
            struct json_object *df = NULL;
            const char *dot = strchr(f->sf_field, '.');
            if (dot) {
                char rel[96];
                snprintf(rel, sizeof rel, "%.*s", (int)(dot - f->sf_field), f->sf_field);
                if (!describe_relationship(fields, rel)) {
                    printf("  ERROR  %s.%s: unknown relationship \"%s\"\n", om->sf_object, f->sf_field, rel);
                    errors++;
                } else if (f->dir & MAP_EXPORT) {
                    printf("  ERROR  %s.%s: a relationship field cannot be exported\n", om->sf_object, f->sf_field);
                    errors++;
                }
                continue;
            }
            df = describe_field(fields, f->sf_field);
            if (!df) {
                printf("  ERROR  %s.%s: unknown field (not in the object's describe)\n", om->sf_object, f->sf_field);
                errors++;
                continue;
            }
            const char *type = json_get_str(df, "type");
            type = type ? type : "?";
            const char *core = mapping_core_column(om->platform_object, f->platform_field);
            if ((f->dir & MAP_IMPORT) && !type_fits(core, type)) {
                printf("  ERROR  %s.%s: wrong type: Salesforce type %s cannot fill %s column %s\n", om->sf_object,
                       f->sf_field, type, core ? core : "text", f->platform_field);
                errors++;
            }
            if (json_get_bool(df, "calculated", false)) {
                printf("  FORMULA %s.%s: a formula (calculated) field; its value changes without SystemModstamp, "
                       "so incremental syncs leave it stale%s\n",
                       om->sf_object, f->sf_field, (f->dir & MAP_EXPORT) ? "; it cannot be exported" : "");
                warnings++;
                if (f->dir & MAP_EXPORT)
                    errors++;
            } else if ((f->dir & MAP_EXPORT) && !json_get_bool(df, "createable", false) &&
                       !json_get_bool(df, "updateable", false)) {
                printf("  ERROR  %s.%s: read-only in Salesforce; it cannot be exported\n", om->sf_object, f->sf_field);
                errors++;
            }
        }
        if (!m.external_id_field) {
            printf("  ERROR  no external-id field is configured for org %s: writes cannot be made idempotent\n", org);
            errors++;
        } else {
            struct json_object *x = describe_field(fields, m.external_id_field);
            if (!x) {
                printf("  ERROR  %s has no external-id field %s (organizations.external_id_field): create it in "
                       "Salesforce or configure another\n",
                       om->sf_object, m.external_id_field);
                errors++;
            } else if (!json_get_bool(x, "externalId", false)) {
                printf("  ERROR  %s.%s is not marked as an External ID in Salesforce\n", om->sf_object,
                       m.external_id_field);
                errors++;
            }
        }
        sf_response_cleanup(&resp);
    }
    printf("\n%d error%s, %d formula field%s\n", errors, errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s");
    rc = errors ? 2 : 0;
out:
    if (s_open)
        conn_close(&s);
    sf_client_free(&sf);
    mapping_cleanup(&m);
    pg_close(&db);
    return rc;
}

int cmd_mappings(struct cli *cli, int argc, char **argv)
{
    if (argc < 2 || cli_flag(argc, argv, "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 64 : 0;
    }
    const char *sub = argv[1];
    const char *org = cli_opt(argc, argv, "--org");
    if (!org) {
        usage(stderr);
        return 64;
    }
    if (!strcmp(sub, "import")) {
        const char *by = cli_opt(argc, argv, "--by");
        const char *file = NULL;
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--org") || !strcmp(argv[i], "--by")) {
                i++;
                continue;
            }
            if (!strncmp(argv[i], "--", 2))
                continue;
            file = argv[i];
        }
        if (!by || !file) {
            usage(stderr);
            return 64;
        }
        return do_import(cli, org, by, file);
    }
    if (!strcmp(sub, "show"))
        return do_show(cli, org, cli->json || cli_flag(argc, argv, "--json"));
    if (!strcmp(sub, "validate"))
        return do_validate(cli, org, cli_opt(argc, argv, "--connection"));
    usage(stderr);
    return 64;
}
