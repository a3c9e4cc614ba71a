/*
 * Unit tests of common/mapping: core columns, lookups, import/export transforms.
 * mapping_load against PostgreSQL is covered by tests/it_mapping.c.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "mapping.h"

static char *imp(const char *transform, const char *in, struct err *e)
{
    char *t = transform ? strdup(transform) : NULL;
    struct field_map f = {.sf_field = (char[]){"Amount"}, .platform_field = (char[]){"amount"}, .dir = MAP_IMPORT,
                          .transform = t};
    char *out = NULL;
    bool ok = mapping_import_str(&f, in, &out, e);
    free(t);
    return ok ? out : NULL;
}

static void expect(const char *transform, const char *in, const char *want)
{
    struct err e = ERR_INIT;
    char *got = imp(transform, in, &e);
    cr_assert(!err_is_set(&e), "transform %s on \"%s\" failed: %s", transform ? transform : "(none)", in, e.msg);
    if (!want)
        cr_assert_null(got, "transform %s on \"%s\": expected NULL, got \"%s\"", transform, in, got);
    else {
        cr_assert_not_null(got, "transform %s on \"%s\": expected \"%s\", got NULL", transform, in, want);
        cr_assert_str_eq(got, want, "transform %s on \"%s\"", transform, in);
    }
    free(got);
}

static void expect_fail(const char *transform, const char *in, const char *needle)
{
    struct err e = ERR_INIT;
    char *got = imp(transform, in, &e);
    cr_assert_null(got, "transform %s on \"%s\" should fail, got \"%s\"", transform, in, got);
    cr_assert_eq(e.code, ERR_INVALID_MESSAGE);
    cr_assert(strstr(e.msg, "Amount"), "error must name the field: %s", e.msg);
    cr_assert(strstr(e.msg, needle), "error should say %s: %s", needle, e.msg);
}

Test(mapping_unit, tables_and_core_columns)
{
    cr_assert_str_eq(mapping_table("Company"), "companies");
    cr_assert_str_eq(mapping_table("Deal"), "deals");
    cr_assert_str_eq(mapping_table("Contact"), "contacts");
    cr_assert_str_eq(mapping_table("Activity"), "activities");
    cr_assert_null(mapping_table("Lead"));
    cr_assert_null(mapping_table(NULL));
    cr_assert_str_eq(mapping_core_column("Company", "annual_revenue"), "numeric");
    cr_assert_str_eq(mapping_core_column("Company", "employees"), "integer");
    cr_assert_str_eq(mapping_core_column("Deal", "close_date"), "date");
    cr_assert_str_eq(mapping_core_column("Deal", "company_sf_id"), "char18");
    cr_assert_str_eq(mapping_core_column("Activity", "start_time"), "timestamptz");
    cr_assert_str_eq(mapping_core_column("Activity", "contact_sf_ids"), "text[]");
    cr_assert_null(mapping_core_column("Company", "tier"), "non-core fields go to attributes");
    cr_assert_null(mapping_core_column("Company", "id"), "id is not a mappable column");
    cr_assert_null(mapping_core_column("Company", "attributes"));
    cr_assert_null(mapping_core_column("Company", "deleted_at"));
    size_t n = 0;
    const char *type;
    while (mapping_core_column_at("Contact", n, &type))
        n++;
    cr_assert_eq(n, 7);
    cr_assert_str_eq(mapping_core_column_at("Contact", 0, &type), "company_sf_id");
    cr_assert_str_eq(type, "char18");
}

Test(mapping_unit, lookups)
{
    struct field_map af[] = {
        {.sf_field = (char[]){"Name"}, .platform_field = (char[]){"name"}, .dir = MAP_BOTH},
        {.sf_field = (char[]){"Tier__c"}, .platform_field = (char[]){"tier"}, .dir = MAP_IMPORT},
        {.sf_field = (char[]){"Platform_Id__c"}, .platform_field = (char[]){"platform_id"}, .dir = MAP_EXPORT, .match_key = true},
    };
    struct object_map objs[] = {
        {.sf_object = (char[]){"Account"}, .platform_object = (char[]){"Company"}, .table = "companies", .enabled = true,
         .fields = af, .nfields = 3},
        {.sf_object = (char[]){"Task"}, .platform_object = (char[]){"Activity"}, .table = "activities", .enabled = false},
        {.sf_object = (char[]){"Interaction"}, .platform_object = (char[]){"Activity"}, .table = "activities", .enabled = true},
    };
    struct mapping_set m = {.org_id = (char[]){"acme"}, .objects = objs, .nobjects = 3};
    cr_assert_eq(mapping_by_sf(&m, "Account"), &objs[0]);
    cr_assert_eq(mapping_by_sf(&m, "account"), &objs[0], "Salesforce names are case-insensitive");
    cr_assert_null(mapping_by_sf(&m, "Opportunity"));
    cr_assert_eq(mapping_by_platform(&m, "Company"), &objs[0]);
    cr_assert_eq(mapping_by_platform(&m, "Activity"), &objs[2], "an enabled mapping wins");
    cr_assert_null(mapping_by_platform(&m, "Deal"));
    cr_assert_eq(mapping_field_by_platform(&objs[0], "name", MAP_IMPORT), &af[0]);
    cr_assert_eq(mapping_field_by_platform(&objs[0], "name", MAP_EXPORT), &af[0]);
    cr_assert_null(mapping_field_by_platform(&objs[0], "tier", MAP_EXPORT), "import-only field");
    cr_assert_eq(mapping_field_by_platform(&objs[0], "platform_id", MAP_EXPORT), &af[2]);
    cr_assert_null(mapping_field_by_platform(&objs[0], "platform_id", MAP_IMPORT));
    cr_assert_eq(mapping_field_by_sf(&objs[0], "tier__C", 0), &af[1]);
    cr_assert_eq(mapping_dir_parse("both"), MAP_BOTH);
    cr_assert_eq(mapping_dir_parse("sideways"), 0);
    cr_assert_str_eq(mapping_dir_name(MAP_EXPORT), "export");
}

Test(mapping_unit, import_transforms)
{
    expect(NULL, "  as is ", "  as is ");
    expect(NULL, "", "");
    expect("trim", "  Acme  ", "Acme");
    expect("lower", "JANE@Example.COM", "jane@example.com");
    expect("trim|lower", "  JANE@Example.COM ", "jane@example.com");
    expect("number", "1234.50", "1234.50");
    expect("number", " -7 ", "-7");
    expect("number", "1e3", "1e3");
    expect("number", "", NULL);
    expect("integer", "12.0", "12");
    expect("integer", "250", "250");
    expect("date", "2026-09-01", "2026-09-01");
    expect("date", "2026-09-01T10:00:00.000+0000", "2026-09-01");
    expect("date", "", NULL);
    expect("datetime", "2013-05-20T20:49:32.000+0000", "2013-05-20T20:49:32.000+00:00");
    expect("datetime", "2013-05-20T20:49:32Z", "2013-05-20T20:49:32+00:00");
    expect("datetime", "2013-05-20T20:49:32.5-05:30", "2013-05-20T20:49:32.5-05:30");
    expect("boolean", "TRUE", "true");
    expect("boolean", "0", "false");
    expect("boolean", "", NULL);
    expect("picklist:Prospecting=prospect,Closed Won=won", "Closed Won", "won");
    expect("picklist:Prospecting=prospect,Closed Won=won", "Prospecting", "prospect");
    expect("picklist:Prospecting=prospect,Closed Won=won", "Negotiation", "Negotiation");
    expect("trim|picklist:A=a,B=b", " B ", "b");
    struct err e = ERR_INIT;
    cr_assert_null(imp("number", NULL, &e), "NULL stays NULL");
    cr_assert(!err_is_set(&e));
}

Test(mapping_unit, import_errors_name_the_field)
{
    expect_fail("number", "12abc", "not a number");
    expect_fail("integer", "12.5", "not an integer");
    expect_fail("date", "yesterday", "not a date");
    expect_fail("date", "2026-13-01", "not a date");
    expect_fail("datetime", "2013-05-20 nope", "not a datetime");
    expect_fail("boolean", "maybe", "not a boolean");
    expect_fail("rot13", "x", "unknown transform");
}

Test(mapping_unit, import_json_values)
{
    struct field_map f = {.sf_field = (char[]){"NumberOfEmployees"}, .platform_field = (char[]){"employees"}, .dir = MAP_IMPORT,
                          .transform = (char[]){"integer"}};
    struct err e = ERR_INIT;
    char *out = NULL;
    struct json_object *v = json_object_new_int(250);
    cr_assert(mapping_import_value(&f, v, &out, &e));
    cr_assert_str_eq(out, "250");
    free(out);
    json_object_put(v);
    v = json_object_new_double(12.0);
    cr_assert(mapping_import_value(&f, v, &out, &e), "%s", e.msg);
    cr_assert_str_eq(out, "12");
    free(out);
    json_object_put(v);
    v = json_object_new_boolean(1);
    struct field_map b = {.sf_field = (char[]){"IsWon"}, .platform_field = (char[]){"won"}, .dir = MAP_IMPORT};
    cr_assert(mapping_import_value(&b, v, &out, &e));
    cr_assert_str_eq(out, "true");
    free(out);
    json_object_put(v);
    v = json_object_new_null();
    cr_assert(mapping_import_value(&b, v, &out, &e));
    cr_assert_null(out);
    cr_assert(mapping_import_value(&b, NULL, &out, &e));
    cr_assert_null(out);
}

Test(mapping_unit, export_transforms)
{
    struct err e = ERR_INIT;
    struct json_object *out = NULL;
    struct field_map p = {.sf_field = (char[]){"StageName"}, .platform_field = (char[]){"stage"}, .dir = MAP_BOTH,
                          .transform = (char[]){"picklist:Prospecting=prospect,Closed Won=won"}};
    struct json_object *v = json_object_new_string("won");
    cr_assert(mapping_export_value(&p, v, &out, &e));
    cr_assert_str_eq(json_object_get_string(out), "Closed Won", "export reverses the picklist map");
    json_object_put(out);
    json_object_put(v);

    struct field_map n = {.sf_field = (char[]){"Amount"}, .platform_field = (char[]){"amount"}, .dir = MAP_BOTH, .transform = (char[]){"number"}};
    v = json_object_new_string("1500");
    cr_assert(mapping_export_value(&n, v, &out, &e));
    cr_assert(json_object_is_type(out, json_type_int));
    cr_assert_eq(json_object_get_int64(out), 1500);
    json_object_put(out);
    json_object_put(v);
    v = json_object_new_string("12.5");
    cr_assert(mapping_export_value(&n, v, &out, &e));
    cr_assert(json_object_is_type(out, json_type_double));
    json_object_put(out);
    json_object_put(v);
    v = json_object_new_string("lots");
    cr_assert_not(mapping_export_value(&n, v, &out, &e));
    cr_assert(strstr(e.msg, "amount"), "%s", e.msg);
    json_object_put(v);

    struct field_map plain = {.sf_field = (char[]){"Name"}, .platform_field = (char[]){"name"}, .dir = MAP_BOTH};
    v = json_object_new_string("Acme");
    cr_assert(mapping_export_value(&plain, v, &out, &e));
    cr_assert_str_eq(json_object_get_string(out), "Acme");
    json_object_put(out);
    json_object_put(v);
    cr_assert(mapping_export_value(&plain, NULL, &out, &e));
    cr_assert_null(out);
}

Test(mapping_unit, transform_validation)
{
    char why[256];
    cr_assert(mapping_transform_valid(NULL, why, sizeof why));
    cr_assert(mapping_transform_valid("trim|lower", why, sizeof why));
    cr_assert(mapping_transform_valid("picklist:A=a,B=b", why, sizeof why));
    cr_assert(mapping_transform_valid("trim|picklist:A=a", why, sizeof why));
    cr_assert_not(mapping_transform_valid("trim|shout", why, sizeof why));
    cr_assert(strstr(why, "shout"), "%s", why);
    cr_assert_not(mapping_transform_valid("picklist:A", why, sizeof why));
    cr_assert_not(mapping_transform_valid("picklist:", why, sizeof why));
}
