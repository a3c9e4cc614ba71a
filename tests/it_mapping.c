/*
 * Integration: mapping_load against the real schema (tests/test_mapping.c has the pure parts).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "itlib.h"
#include "mapping.h"
#include "pg.h"

Test(it_mapping, load_objects_fields_and_external_id, .timeout = 60)
{
    struct it_env env;
    it_env_init(&env);
    it_sql_ok(&env,
              "INSERT INTO organizations (org_id, salesforce_enabled, external_id_field) VALUES ('acme', true, 'Ext_Id__c');"
              "INSERT INTO organizations (org_id, salesforce_enabled) VALUES ('other', true);"
              "INSERT INTO object_mappings (org_id, sf_object, platform_object, enabled, soql_filter) VALUES "
              " ('acme', 'Account', 'Company', true, NULL),"
              " ('acme', 'Task', 'Activity', false, 'Status = ''Completed'''),"
              " ('other', 'Contact', 'Contact', true, NULL);"
              "INSERT INTO field_mappings (org_id, sf_object, sf_field, platform_field, direction, transform, is_match_key) VALUES "
              " ('acme', 'Account', 'Name', 'name', 'both', 'trim', false),"
              " ('acme', 'Account', 'Tier__c', 'tier', 'import', NULL, false),"
              " ('acme', 'Account', 'Ext_Id__c', 'platform_id', 'export', NULL, true),"
              " ('acme', 'Task', 'Subject', 'subject', 'import', NULL, false),"
              " ('other', 'Contact', 'Email', 'email', 'both', 'lower', true);");
    struct err e = ERR_INIT;
    struct pg *db = pg_open(env.dsn, 5000, &e);
    cr_assert_not_null(db, "%s", e.msg);
    struct mapping_set m;
    cr_assert(mapping_load(db, "acme", &m, &e), "%s", e.msg);
    cr_assert_str_eq(m.org_id, "acme");
    cr_assert_str_eq(m.external_id_field, "Ext_Id__c");
    cr_assert_eq(m.nobjects, 2, "only acme's mappings, enabled or not");
    const struct object_map *acc = mapping_by_sf(&m, "Account");
    cr_assert_not_null(acc);
    cr_assert_str_eq(acc->platform_object, "Company");
    cr_assert_str_eq(acc->table, "companies");
    cr_assert(acc->enabled);
    cr_assert_null(acc->soql_filter);
    cr_assert_eq(acc->nfields, 3);
    const struct field_map *name = mapping_field_by_platform(acc, "name", MAP_IMPORT);
    cr_assert_not_null(name);
    cr_assert_str_eq(name->sf_field, "Name");
    cr_assert_eq(name->dir, MAP_BOTH);
    cr_assert_str_eq(name->transform, "trim");
    const struct field_map *pid = mapping_field_by_platform(acc, "platform_id", MAP_EXPORT);
    cr_assert_not_null(pid);
    cr_assert(pid->match_key);
    cr_assert_null(mapping_field_by_platform(acc, "tier", MAP_EXPORT));
    cr_assert_null(mapping_field_by_sf(acc, "Tier__c", 0)->transform);
    const struct object_map *task = mapping_by_sf(&m, "Task");
    cr_assert_not_null(task);
    cr_assert_not(task->enabled);
    cr_assert_str_eq(task->soql_filter, "Status = 'Completed'");
    cr_assert_eq(task->nfields, 1);
    cr_assert_null(mapping_by_sf(&m, "Contact"), "another org's mapping must not leak in");
    mapping_cleanup(&m);
    mapping_cleanup(&m); /* idempotent */

    cr_assert(mapping_load(db, "other", &m, &e), "%s", e.msg);
    cr_assert_str_eq(m.external_id_field, "Platform_Id__c", "the schema default");
    cr_assert_eq(m.nobjects, 1);
    mapping_cleanup(&m);

    cr_assert(mapping_load(db, "nobody", &m, &e), "%s", e.msg);
    cr_assert_eq(m.nobjects, 0);
    cr_assert_null(m.external_id_field);
    mapping_cleanup(&m);
    pg_close(&db);
}
