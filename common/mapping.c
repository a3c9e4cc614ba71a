/*
 * mapping: object/field mappings of an org, core columns, transforms.
 * See mapping.h. No global state beyond the read-only core column tables.
 */
#include "mapping.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pg.h"

struct core_col {
    const char *name;
    const char *type;
};

static const struct core_col company_cols[] = {
    {"name", "text"},           {"website", "text"},         {"industry", "text"},
    {"type", "text"},           {"phone", "text"},           {"billing_city", "text"},
    {"billing_country", "text"}, {"annual_revenue", "numeric"}, {"employees", "integer"},
    {"owner_id", "char18"},     {NULL, NULL},
};
static const struct core_col deal_cols[] = {
    {"company_sf_id", "char18"}, {"name", "text"},    {"stage", "text"},      {"amount", "numeric"},
    {"close_date", "date"},      {"probability", "numeric"}, {"type", "text"}, {"owner_id", "char18"},
    {NULL, NULL},
};
static const struct core_col contact_cols[] = {
    {"company_sf_id", "char18"}, {"first_name", "text"}, {"last_name", "text"}, {"email", "text"},
    {"phone", "text"},           {"title", "text"},      {"owner_id", "char18"}, {NULL, NULL},
};
static const struct core_col activity_cols[] = {
    {"company_sf_id", "char18"}, {"deal_sf_id", "char18"}, {"contact_sf_ids", "text[]"},
    {"subject", "text"},         {"activity_type", "text"}, {"start_time", "timestamptz"},
    {"end_time", "timestamptz"}, {"description", "text"},   {"owner_id", "char18"},
    {NULL, NULL},
};

static const struct {
    const char *platform;
    const char *table;
    const struct core_col *cols;
} platforms[] = {
    {"Company", "companies", company_cols},
    {"Deal", "deals", deal_cols},
    {"Contact", "contacts", contact_cols},
    {"Activity", "activities", activity_cols},
    {NULL, NULL, NULL},
};

const char *mapping_table(const char *platform_object)
{
    if (!platform_object)
        return NULL;
    for (int i = 0; platforms[i].platform; i++)
        if (!strcmp(platforms[i].platform, platform_object))
            return platforms[i].table;
    return NULL;
}

const char *mapping_core_column(const char *platform_object, const char *platform_field)
{
    if (!platform_object || !platform_field)
        return NULL;
    for (int i = 0; platforms[i].platform; i++) {
        if (strcmp(platforms[i].platform, platform_object))
            continue;
        for (const struct core_col *c = platforms[i].cols; c->name; c++)
            if (!strcmp(c->name, platform_field))
                return c->type;
        return NULL;
    }
    return NULL;
}

const char *mapping_core_column_at(const char *platform_object, size_t i, const char **type)
{
    for (int p = 0; platforms[p].platform; p++) {
        if (strcmp(platforms[p].platform, platform_object))
            continue;
        for (size_t k = 0; platforms[p].cols[k].name; k++) {
            if (k == i) {
                if (type)
                    *type = platforms[p].cols[k].type;
                return platforms[p].cols[k].name;
            }
        }
        return NULL;
    }
    return NULL;
}

static void field_cleanup(struct field_map *f)
{
    free(f->sf_field);
    free(f->platform_field);
    free(f->transform);
    memset(f, 0, sizeof *f);
}

static void object_cleanup(struct object_map *o)
{
    for (size_t i = 0; i < o->nfields; i++)
        field_cleanup(&o->fields[i]);
    free(o->fields);
    free(o->sf_object);
    free(o->platform_object);
    free(o->soql_filter);
    memset(o, 0, sizeof *o);
}

void mapping_cleanup(struct mapping_set *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nobjects; i++)
        object_cleanup(&m->objects[i]);
    free(m->objects);
    free(m->org_id);
    free(m->external_id_field);
    memset(m, 0, sizeof *m);
}

enum mapping_dir mapping_dir_parse(const char *s)
{
    if (!s)
        return 0;
    if (!strcmp(s, "import"))
        return MAP_IMPORT;
    if (!strcmp(s, "export"))
        return MAP_EXPORT;
    if (!strcmp(s, "both"))
        return MAP_BOTH;
    return 0;
}

const char *mapping_dir_name(enum mapping_dir d)
{
    switch (d) {
    case MAP_IMPORT:
        return "import";
    case MAP_EXPORT:
        return "export";
    case MAP_BOTH:
        return "both";
    }
    return "?";
}

bool mapping_load(struct pg *pg, const char *org_id, struct mapping_set *out, struct err *e)
{
    struct pg_res *r = NULL;
    bool ok = false;
    memset(out, 0, sizeof *out);
    const char *p[1] = {org_id};

    if (!(out->org_id = strdup(org_id))) {
        err_set(e, ERR_NOMEM, true, "out of memory");
        goto out;
    }
    r = pg_exec(pg, "SELECT external_id_field FROM organizations WHERE org_id = $1", 1, p, e);
    if (!r)
        goto out;
    if (pg_res_rows(r) == 1 && !pg_res_isnull(r, 0, 0) && *pg_res_get(r, 0, 0))
        out->external_id_field = strdup(pg_res_get(r, 0, 0));
    pg_res_free(&r);

    r = pg_exec(pg,
                "SELECT sf_object, platform_object, enabled, soql_filter FROM object_mappings "
                "WHERE org_id = $1 ORDER BY sf_object",
                1, p, e);
    if (!r)
        goto out;
    int n = pg_res_rows(r);
    if (n > 0) {
        out->objects = calloc((size_t)n, sizeof *out->objects);
        if (!out->objects) {
            err_set(e, ERR_NOMEM, true, "out of memory");
            goto out;
        }
    }
    for (int i = 0; i < n; i++) {
        struct object_map *o = &out->objects[out->nobjects++];
        o->sf_object = strdup(pg_res_get(r, i, 0));
        o->platform_object = strdup(pg_res_get(r, i, 1));
        o->enabled = !strcmp(pg_res_get(r, i, 2), "t");
        o->soql_filter = pg_res_isnull(r, i, 3) ? NULL : strdup(pg_res_get(r, i, 3));
        o->table = mapping_table(o->platform_object);
        if (!o->sf_object || !o->platform_object) {
            err_set(e, ERR_NOMEM, true, "out of memory");
            goto out;
        }
    }
    pg_res_free(&r);

    r = pg_exec(pg,
                "SELECT sf_object, sf_field, platform_field, direction, transform, is_match_key "
                "FROM field_mappings WHERE org_id = $1 ORDER BY sf_object, platform_field, sf_field",
                1, p, e);
    if (!r)
        goto out;
    n = pg_res_rows(r);
    /* rows are grouped by sf_object: size each object's array first */
    for (size_t k = 0; k < out->nobjects; k++) {
        struct object_map *o = &out->objects[k];
        size_t cnt = 0;
        for (int i = 0; i < n; i++)
            if (!strcmp(pg_res_get(r, i, 0), o->sf_object))
                cnt++;
        if (!cnt)
            continue;
        o->fields = calloc(cnt, sizeof *o->fields);
        if (!o->fields) {
            err_set(e, ERR_NOMEM, true, "out of memory");
            goto out;
        }
        for (int i = 0; i < n; i++) {
            if (strcmp(pg_res_get(r, i, 0), o->sf_object))
                continue;
            struct field_map *f = &o->fields[o->nfields++];
            f->sf_field = strdup(pg_res_get(r, i, 1));
            f->platform_field = strdup(pg_res_get(r, i, 2));
            f->dir = mapping_dir_parse(pg_res_get(r, i, 3));
            f->transform = pg_res_isnull(r, i, 4) || !*pg_res_get(r, i, 4) ? NULL : strdup(pg_res_get(r, i, 4));
            f->match_key = !strcmp(pg_res_get(r, i, 5), "t");
            if (!f->sf_field || !f->platform_field) {
                err_set(e, ERR_NOMEM, true, "out of memory");
                goto out;
            }
        }
    }
    ok = true;
out:
    pg_res_free(&r);
    if (!ok)
        mapping_cleanup(out);
    return ok;
}

const struct object_map *mapping_by_sf(const struct mapping_set *m, const char *sf_object)
{
    if (!m || !sf_object)
        return NULL;
    for (size_t i = 0; i < m->nobjects; i++)
        if (!strcasecmp(m->objects[i].sf_object, sf_object))
            return &m->objects[i];
    return NULL;
}

const struct object_map *mapping_by_platform(const struct mapping_set *m, const char *platform_object)
{
    if (!m || !platform_object)
        return NULL;
    /* prefer an enabled mapping when several Salesforce objects map to one platform object */
    const struct object_map *any = NULL;
    for (size_t i = 0; i < m->nobjects; i++) {
        if (strcmp(m->objects[i].platform_object, platform_object))
            continue;
        if (m->objects[i].enabled)
            return &m->objects[i];
        if (!any)
            any = &m->objects[i];
    }
    return any;
}

const struct field_map *mapping_field_by_platform(const struct object_map *o, const char *platform_field,
                                                  enum mapping_dir dir)
{
    if (!o || !platform_field)
        return NULL;
    for (size_t i = 0; i < o->nfields; i++) {
        const struct field_map *f = &o->fields[i];
        if (strcmp(f->platform_field, platform_field))
            continue;
        if (!dir || (f->dir & dir))
            return f;
    }
    return NULL;
}

const struct field_map *mapping_field_by_sf(const struct object_map *o, const char *sf_field, enum mapping_dir dir)
{
    if (!o || !sf_field)
        return NULL;
    for (size_t i = 0; i < o->nfields; i++) {
        const struct field_map *f = &o->fields[i];
        if (strcasecmp(f->sf_field, sf_field))
            continue;
        if (!dir || (f->dir & dir))
            return f;
    }
    return NULL;
}

/* ---- transforms ---------------------------------------------------------- */

/* One step of a transform chain ("trim|lower"), [s, s+n). */
static bool step_is(const char *s, size_t n, const char *name)
{
    return strlen(name) == n && !strncmp(s, name, n);
}

static bool valid_number(const char *s)
{
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    bool digits = false;
    while (isdigit((unsigned char)*p)) {
        p++;
        digits = true;
    }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            p++;
            digits = true;
        }
    }
    if (digits && (*p == 'e' || *p == 'E')) {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return digits && *p == '\0';
}

static bool valid_date(const char *s)
{
    /* YYYY-MM-DD */
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7) {
            if (s[i] != '-')
                return false;
        } else if (!isdigit((unsigned char)s[i])) {
            return false;
        }
    }
    int mo = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
    return mo >= 1 && mo <= 12 && d >= 1 && d <= 31;
}

/* Salesforce datetime "2013-05-20T20:49:32.000+0000" (or with Z / +hh:mm, or
 * a space separator) -> "2013-05-20T20:49:32.000+00:00". false when garbled. */
static bool norm_datetime(const char *s, char *out, size_t cap)
{
    size_t n = strlen(s);
    if (n < 19 || n > 40 || !valid_date(s) || (s[10] != 'T' && s[10] != 't' && s[10] != ' '))
        return false;
    for (int i = 11; i < 19; i++) {
        if (i == 13 || i == 16) {
            if (s[i] != ':')
                return false;
        } else if (!isdigit((unsigned char)s[i])) {
            return false;
        }
    }
    const char *p = s + 19;
    char frac[16] = "";
    if (*p == '.') {
        size_t k = 0;
        frac[k++] = '.';
        p++;
        while (isdigit((unsigned char)*p)) {
            if (k < sizeof frac - 1)
                frac[k++] = *p;
            p++;
        }
        frac[k] = '\0';
        if (k == 1)
            return false;
    }
    char tz[8];
    if (*p == '\0' || ((*p == 'Z' || *p == 'z') && p[1] == '\0')) {
        snprintf(tz, sizeof tz, "+00:00");
    } else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2])) {
        if (p[3] == ':' && isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5]) && p[6] == '\0')
            snprintf(tz, sizeof tz, "%c%c%c:%c%c", p[0], p[1], p[2], p[4], p[5]);
        else if (isdigit((unsigned char)p[3]) && isdigit((unsigned char)p[4]) && p[5] == '\0')
            snprintf(tz, sizeof tz, "%c%c%c:%c%c", p[0], p[1], p[2], p[3], p[4]);
        else if (p[3] == '\0')
            snprintf(tz, sizeof tz, "%c%c%c:00", p[0], p[1], p[2]);
        else
            return false;
    } else {
        return false;
    }
    int w = snprintf(out, cap, "%.10sT%.8s%s%s", s, s + 11, frac, tz);
    return w > 0 && (size_t)w < cap;
}

static char *trim_dup(const char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    return strndup(s, n);
}

/* "picklist:A=a,B=b": the mapped value for `v`, or a copy of v when unmapped. */
static char *picklist_map(const char *spec, size_t n, const char *v)
{
    const char *p = spec, *end = spec + n;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma ? comma : end;
        const char *eq = memchr(p, '=', (size_t)(item_end - p));
        if (eq) {
            size_t kl = (size_t)(eq - p);
            if (strlen(v) == kl && !strncmp(v, p, kl))
                return strndup(eq + 1, (size_t)(item_end - eq - 1));
        }
        p = comma ? comma + 1 : end;
    }
    return strdup(v);
}

bool mapping_transform_valid(const char *transform, char *why, size_t cap)
{
    if (!transform || !*transform)
        return true;
    const char *p = transform;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n >= 9 && !strncmp(p, "picklist:", 9)) {
            /* picklist is last in a chain: its values may contain anything but ',' and '=' */
            const char *q = p + 9, *end = p + strlen(p);
            if (q == end) {
                snprintf(why, cap, "picklist transform without values");
                return false;
            }
            while (q < end) {
                const char *comma = memchr(q, ',', (size_t)(end - q));
                const char *ie = comma ? comma : end;
                if (!memchr(q, '=', (size_t)(ie - q))) {
                    snprintf(why, cap, "picklist item \"%.*s\" has no '='", (int)(ie - q), q);
                    return false;
                }
                q = comma ? comma + 1 : end;
            }
            return true;
        }
        if (!(step_is(p, n, "number") || step_is(p, n, "integer") || step_is(p, n, "date") ||
              step_is(p, n, "datetime") || step_is(p, n, "boolean") || step_is(p, n, "trim") ||
              step_is(p, n, "lower") || step_is(p, n, "upper"))) {
            snprintf(why, cap,
                     "unknown transform \"%.*s\" (number, integer, date, datetime, boolean, trim, lower, upper, "
                     "picklist:A=a,...)",
                     (int)n, p);
            return false;
        }
        p = bar ? bar + 1 : p + n;
    }
    return true;
}

bool mapping_import_str(const struct field_map *f, const char *in, char **out, struct err *e)
{
    *out = NULL;
    if (!in)
        return true;
    char *v = strdup(in);
    if (!v)
        return err_set(e, ERR_NOMEM, true, "out of memory");
    const char *t = f->transform;
    while (t && *t && v) {
        const char *bar = strchr(t, '|');
        bool picklist = !strncmp(t, "picklist:", 9);
        size_t n = picklist ? strlen(t) : bar ? (size_t)(bar - t) : strlen(t);
        char *nv = NULL;
        if (step_is(t, n, "trim")) {
            nv = trim_dup(v);
        } else if (step_is(t, n, "lower") || step_is(t, n, "upper")) {
            bool lower = t[0] == 'l';
            for (char *c = v; *c; c++)
                *c = (char)(lower ? tolower((unsigned char)*c) : toupper((unsigned char)*c));
            nv = v;
            v = NULL;
        } else if (step_is(t, n, "number") || step_is(t, n, "integer")) {
            char *s = trim_dup(v);
            if (!s) {
                free(v);
                return err_set(e, ERR_NOMEM, true, "out of memory");
            }
            if (!*s) { /* empty -> NULL */
                free(s);
                free(v);
                return true;
            }
            if (!valid_number(s)) {
                err_set(e, ERR_INVALID_MESSAGE, false, "cannot import field \"%s\": \"%.40s\" is not a number",
                        f->sf_field, s);
                free(s);
                free(v);
                return false;
            }
            char *dot = t[0] == 'i' ? strchr(s, '.') : NULL;
            if (dot) {
                /* integer: accept a fractional part of zeros ("12.0" -> "12") */
                for (char *z = dot + 1; *z; z++) {
                    if (*z != '0') {
                        err_set(e, ERR_INVALID_MESSAGE, false,
                                "cannot import field \"%s\": \"%.40s\" is not an integer", f->sf_field, s);
                        free(s);
                        free(v);
                        return false;
                    }
                }
                *dot = '\0';
            }
            nv = s;
        } else if (step_is(t, n, "date")) {
            if (!*v) {
                free(v);
                return true;
            }
            if (strlen(v) < 10 || !valid_date(v) || (v[10] && v[10] != 'T' && v[10] != ' ')) {
                err_set(e, ERR_INVALID_MESSAGE, false, "cannot import field \"%s\": \"%.40s\" is not a date",
                        f->sf_field, v);
                free(v);
                return false;
            }
            nv = strndup(v, 10);
        } else if (step_is(t, n, "datetime")) {
            if (!*v) {
                free(v);
                return true;
            }
            char buf[64];
            if (!norm_datetime(v, buf, sizeof buf)) {
                err_set(e, ERR_INVALID_MESSAGE, false, "cannot import field \"%s\": \"%.40s\" is not a datetime",
                        f->sf_field, v);
                free(v);
                return false;
            }
            nv = strdup(buf);
        } else if (step_is(t, n, "boolean")) {
            if (!*v) {
                free(v);
                return true;
            }
            if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes"))
                nv = strdup("true");
            else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no"))
                nv = strdup("false");
            else {
                err_set(e, ERR_INVALID_MESSAGE, false, "cannot import field \"%s\": \"%.40s\" is not a boolean",
                        f->sf_field, v);
                free(v);
                return false;
            }
        } else if (picklist) {
            nv = picklist_map(t + 9, n - 9, v);
        } else {
            err_set(e, ERR_INVALID_MESSAGE, false, "cannot import field \"%s\": unknown transform \"%.*s\"",
                    f->sf_field, (int)n, t);
            free(v);
            return false;
        }
        free(v);
        v = nv;
        if (!v)
            return err_set(e, ERR_NOMEM, true, "out of memory");
        if (picklist)
            break;
        t = bar ? bar + 1 : t + n;
    }
    *out = v;
    return true;
}

bool mapping_import_value(const struct field_map *f, struct json_object *v, char **out, struct err *e)
{
    *out = NULL;
    if (!v)
        return true;
    char buf[64];
    const char *s;
    switch (json_object_get_type(v)) {
    case json_type_null:
        return true;
    case json_type_boolean:
        s = json_object_get_boolean(v) ? "true" : "false";
        break;
    case json_type_int:
        snprintf(buf, sizeof buf, "%lld", (long long)json_object_get_int64(v));
        s = buf;
        break;
    case json_type_double:
        s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
        break;
    case json_type_string:
        s = json_object_get_string(v);
        break;
    default:
        /* an object/array (e.g. a compound address): keep its JSON text */
        s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
        break;
    }
    return mapping_import_str(f, s, out, e);
}

bool mapping_export_value(const struct field_map *f, struct json_object *v, struct json_object **out,
                          struct err *e)
{
    *out = NULL;
    if (!v || json_object_get_type(v) == json_type_null)
        return true;
    const char *t = f->transform;
    enum json_type ty = json_object_get_type(v);
    if (!t || !*t) {
        *out = json_object_get(v);
        return true;
    }
    /* picklist maps platform values back to Salesforce values (reverse of import) */
    if (!strncmp(t, "picklist:", 9) && ty == json_type_string) {
        const char *sv = json_object_get_string(v), *p = t + 9, *end = t + strlen(t);
        while (p < end) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *ie = comma ? comma : end;
            const char *eq = memchr(p, '=', (size_t)(ie - p));
            if (eq && strlen(sv) == (size_t)(ie - eq - 1) && !strncmp(sv, eq + 1, (size_t)(ie - eq - 1))) {
                char *k = strndup(p, (size_t)(eq - p));
                if (!k)
                    return err_set(e, ERR_NOMEM, true, "out of memory");
                *out = json_object_new_string(k);
                free(k);
                return true;
            }
            p = comma ? comma + 1 : end;
        }
        *out = json_object_get(v);
        return true;
    }
    const char *last = strrchr(t, '|');
    last = last ? last + 1 : t;
    if ((!strcmp(last, "number") || !strcmp(last, "integer")) && ty == json_type_string) {
        const char *s = json_object_get_string(v);
        if (!*s)
            return true;
        if (!valid_number(s))
            return err_set(e, ERR_INVALID_MESSAGE, false, "cannot export field \"%s\": \"%.40s\" is not a number",
                           f->platform_field, s);
        errno = 0;
        char *endp = NULL;
        if (!strchr(s, '.') && !strchr(s, 'e') && !strchr(s, 'E')) {
            long long n = strtoll(s, &endp, 10);
            if (!errno && endp && !*endp) {
                *out = json_object_new_int64(n);
                return true;
            }
        }
        double d = strtod(s, &endp);
        *out = json_object_new_double(d);
        return true;
    }
    if (!strcmp(last, "boolean") && ty == json_type_string) {
        const char *s = json_object_get_string(v);
        if (!strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "yes"))
            *out = json_object_new_boolean(1);
        else if (!strcasecmp(s, "false") || !strcmp(s, "0") || !strcasecmp(s, "no"))
            *out = json_object_new_boolean(0);
        else
            return err_set(e, ERR_INVALID_MESSAGE, false, "cannot export field \"%s\": \"%.40s\" is not a boolean",
                           f->platform_field, s);
        return true;
    }
    if ((!strcmp(last, "date") || !strcmp(last, "datetime")) && ty == json_type_string) {
        const char *s = json_object_get_string(v);
        if (!*s)
            return true;
        if (!strcmp(last, "date")) {
            if (strlen(s) < 10 || !valid_date(s))
                return err_set(e, ERR_INVALID_MESSAGE, false, "cannot export field \"%s\": \"%.40s\" is not a date",
                               f->platform_field, s);
            char d[11];
            memcpy(d, s, 10);
            d[10] = '\0';
            *out = json_object_new_string(d);
        } else {
            char buf[64];
            if (!norm_datetime(s, buf, sizeof buf))
                return err_set(e, ERR_INVALID_MESSAGE, false,
                               "cannot export field \"%s\": \"%.40s\" is not a datetime", f->platform_field, s);
            *out = json_object_new_string(buf);
        }
        return true;
    }
    if (ty == json_type_string && (strstr(t, "trim") || strstr(t, "lower") || strstr(t, "upper"))) {
        char *s = NULL;
        struct field_map tmp = *f;
        if (!mapping_import_str(&tmp, json_object_get_string(v), &s, e))
            return false;
        *out = s ? json_object_new_string(s) : NULL;
        free(s);
        return true;
    }
    *out = json_object_get(v);
    return true;
}
