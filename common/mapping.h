/*
 * mapping: the admin-owned object and field mappings of an org (tables
 * object_mappings, field_mappings), the platform's core columns, and field
 * transforms. Workers only read mappings; `sfbridge mappings import` writes
 * them.
 *
 * Platform objects and their tables: Company -> companies, Deal -> deals,
 * Contact -> contacts, Activity -> activities. A field mapping's
 * platform_field is either a core column of that table (mapping_core_column)
 * or a key of the row's `attributes` jsonb. Link fields use the platform
 * fields `company_sf_id`, `deal_sf_id` (and for activities `contact_sf_ids`)
 * and are resolved to foreign keys by the sync.
 *
 * Ownership: a mapping_set owns all its strings; lookups return borrowed
 * pointers valid until mapping_cleanup.
 */
#ifndef SFBRIDGE_MAPPING_H
#define SFBRIDGE_MAPPING_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct pg;

enum mapping_dir { MAP_IMPORT = 1, MAP_EXPORT = 2, MAP_BOTH = 3 };

struct field_map {
    char *sf_field;       /* e.g. "Name", "AccountId", "Account.Name" */
    char *platform_field; /* e.g. "name", "company_sf_id", "tier" */
    enum mapping_dir dir;
    char *transform;      /* NULL or e.g. "number", "date", "datetime", "boolean", "trim", "lower",
                             "picklist:Prospecting=prospect,Closed Won=won" */
    bool match_key;
};

struct object_map {
    char *sf_object;       /* "Account" */
    char *platform_object; /* "Company" */
    const char *table;     /* "companies" (static) */
    bool enabled;
    char *soql_filter;     /* NULL or an admin-written SOQL condition (validated at import) */
    struct field_map *fields;
    size_t nfields;
};

struct mapping_set {
    char *org_id;
    char *external_id_field; /* organizations.external_id_field, e.g. "Platform_Id__c"; NULL = none */
    struct object_map *objects;
    size_t nobjects;
};

/* Load every object mapping (enabled or not) of the org with its fields. */
bool mapping_load(struct pg *pg, const char *org_id, struct mapping_set *out, struct err *e);
void mapping_cleanup(struct mapping_set *m);

/* Lookups (borrowed results, NULL when absent). */
const struct object_map *mapping_by_sf(const struct mapping_set *m, const char *sf_object);
const struct object_map *mapping_by_platform(const struct mapping_set *m, const char *platform_object);
const struct field_map *mapping_field_by_platform(const struct object_map *o, const char *platform_field,
                                                  enum mapping_dir dir);

/* "companies" for "Company", NULL for an unknown platform object. */
const char *mapping_table(const char *platform_object);

/* Core column of a platform table: returns its SQL type ("text", "numeric", "date", "timestamptz",
 * "integer", "char18") or NULL when `platform_field` is not a core column (-> attributes). */
const char *mapping_core_column(const char *platform_object, const char *platform_field);

/* Apply an import transform to a Salesforce value (json null/string/number/bool, borrowed) and return
 * the text to store (caller frees; NULL = SQL NULL). Errors name the field. */
bool mapping_import_value(const struct field_map *f, struct json_object *v, char **out, struct err *e);

/* Apply an export transform to a platform value (borrowed) and return a new json value for Salesforce
 * (caller owns; NULL = JSON null). */
bool mapping_export_value(const struct field_map *f, struct json_object *v, struct json_object **out,
                          struct err *e);

/* ---- additions (compatible extensions) ---- */

/* Same as mapping_import_value for a value already in text form (Bulk CSV,
 * or a JSON scalar rendered as text); `in` NULL = SQL NULL, borrowed. An
 * empty string stays "" except for number/integer/date/datetime/boolean
 * transforms, where it becomes NULL. Caller frees *out. */
bool mapping_import_str(const struct field_map *f, const char *in, char **out, struct err *e);

/* Case-insensitive lookup by Salesforce field; dir 0 = any direction. */
const struct field_map *mapping_field_by_sf(const struct object_map *o, const char *sf_field, enum mapping_dir dir);

/* i-th core column of a platform object (NULL past the end); *type as in
 * mapping_core_column ("text[]" for activities.contact_sf_ids). Static strings. */
const char *mapping_core_column_at(const char *platform_object, size_t i, const char **type);

/* "import"/"export"/"both" <-> enum (0 when unknown). */
enum mapping_dir mapping_dir_parse(const char *s);
const char *mapping_dir_name(enum mapping_dir d);

/* Transforms are a '|'-separated chain of number, integer, date, datetime,
 * boolean, trim, lower, upper, and optionally a final picklist:A=a,B=b.
 * false with a reason in `why` when `transform` is not such a chain. */
bool mapping_transform_valid(const char *transform, char *why, size_t cap);

#endif
