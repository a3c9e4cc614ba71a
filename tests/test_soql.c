/* test_soql: identifier validation, literal escaping and the SELECT builder. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "soql.h"

Test(soql, identifiers)
{
    const char *good[] = {"Account", "Id", "SystemModstamp", "Platform_Id__c", "Dealer__r", "ns__Field__c",
                          "Setting__mdt", "Loc__Latitude__s", "ns__Loc__Longitude__s", "Account__History",
                          "Interaction", "A", "a1_b2", "Foo__ChangeEvent", NULL};
    const char *bad[] = {"", "1Account", "_Name", "Name_", "__c", "Name__", "Name___c", "Name__zz",
                         "a__b__c__d", "Na me", "Name;", "Name'--", "Name__c__r__c", "Ünïcode", "Account.Name",
                         "x__Latitude__c__s", NULL};
    for (int i = 0; good[i]; i++)
        cr_assert(soql_ident_valid(good[i]), "%s should be valid", good[i]);
    for (int i = 0; bad[i]; i++)
        cr_assert_not(soql_ident_valid(bad[i]), "%s should be invalid", bad[i]);
    char longname[82];
    memset(longname, 'a', 80);
    longname[80] = '\0';
    cr_assert(soql_ident_valid(longname));
    longname[80] = 'a';
    longname[81] = '\0';
    cr_assert_not(soql_ident_valid(longname), "81 chars");
    cr_assert_not(soql_ident_valid(NULL));
}

Test(soql, fields)
{
    cr_assert(soql_field_valid("Account.Name"));
    cr_assert(soql_field_valid("Account.Owner.Manager.Profile.Name"));
    cr_assert_not(soql_field_valid("A.B.C.D.E.F"), "6 levels");
    cr_assert_not(soql_field_valid("Account..Name"));
    cr_assert_not(soql_field_valid("Account."));
    cr_assert_not(soql_field_valid(".Name"));
    cr_assert(soql_field_valid("Dealer__r.Name"));
}

Test(soql, quote_escapes)
{
    char *q = soql_quote("O'Brien \\ \"x\"\n\r\t\b\f");
    cr_assert_str_eq(q, "'O\\'Brien \\\\ \\\"x\\\"\\n\\r\\t\\b\\f'");
    cr_assert(soql_literal_valid(q));
    free(q);
    q = soql_quote("");
    cr_assert_str_eq(q, "''");
    free(q);
    q = soql_quote("Zürich 東京");
    cr_assert_str_eq(q, "'Zürich 東京'");
    free(q);
    q = soql_quote("50%_off");
    cr_assert_str_eq(q, "'50%_off'", "no LIKE escaping for =");
    free(q);
    cr_assert_null(soql_quote("\xc3\x28"), "invalid UTF-8");
    cr_assert_null(soql_quote("\xed\xa0\x80"), "surrogate");
    cr_assert_null(soql_quote("\xc0\xaf"), "overlong");
    cr_assert_null(soql_quote(NULL));
    /* injection attempt stays inside the literal */
    q = soql_quote("x' OR Name != '");
    cr_assert_str_eq(q, "'x\\' OR Name != \\''");
    cr_assert(soql_literal_valid(q));
    free(q);
}

Test(soql, quote_like)
{
    char *q = soql_quote_like("50%_off", true, true);
    cr_assert_str_eq(q, "'%50\\%\\_off%'");
    cr_assert(soql_literal_valid(q));
    free(q);
    q = soql_quote_like("abc", false, true);
    cr_assert_str_eq(q, "'abc%'");
    free(q);
}

Test(soql, datetime)
{
    char buf[40];
    soql_datetime(1704164645000LL, buf, sizeof buf);
    cr_assert_str_eq(buf, "2024-01-02T03:04:05.000Z");
    soql_datetime(1704164645123LL, buf, sizeof buf);
    cr_assert_str_eq(buf, "2024-01-02T03:04:05.123Z");
    soql_datetime(0, buf, sizeof buf);
    cr_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
    soql_datetime(-1, buf, sizeof buf);
    cr_assert_str_eq(buf, "1969-12-31T23:59:59.999Z");
    cr_assert(soql_literal_valid(buf));
}

Test(soql, literals)
{
    const char *good[] = {"1", "-12.5", "true", "false", "null", "2024-01-02", "2024-01-02T03:04:05Z",
                          "2024-01-02T03:04:05.000Z", "2024-01-02T03:04:05+02:00", "'x'", "'a\\'b'", NULL};
    const char *bad[] = {"", "1e5", "x", "'unterminated", "'a'b'", "'bad\\q'", "2024-01-02T03:04Z",
                         "1; DELETE", "TRUE OR 1=1", "'a' OR 'b'", "-", "1.", NULL};
    for (int i = 0; good[i]; i++)
        cr_assert(soql_literal_valid(good[i]), "%s", good[i]);
    for (int i = 0; bad[i]; i++)
        cr_assert_not(soql_literal_valid(bad[i]), "%s", bad[i]);
}

Test(soql, builder_full_query)
{
    struct err e = ERR_INIT;
    struct soql_select *s = soql_select_new("Account", &e);
    cr_assert_not_null(s);
    cr_assert(soql_select_field(s, "Id", &e));
    cr_assert(soql_select_field(s, "Name", &e));
    cr_assert(soql_select_field(s, "name", &e), "duplicate is accepted");
    cr_assert(soql_select_field(s, "Owner.Name", &e));
    cr_assert(soql_select_field(s, "SystemModstamp", &e));
    char ts[40];
    soql_datetime(1704164645000LL, ts, sizeof ts);
    cr_assert(soql_where_cmp(s, "SystemModstamp", ">=", ts, &e), "%s", e.msg);
    char *q = soql_quote("Acme's");
    cr_assert(soql_where_cmp(s, "Name", "!=", q, &e));
    free(q);
    char *c1 = soql_cmp("SystemModstamp", ">", ts, &e);
    char *c2 = soql_cmp("Id", ">", "'001000000000001AAA'", &e);
    char raw[256];
    snprintf(raw, sizeof raw, "%s OR (%s)", c1, c2);
    cr_assert(soql_select_where_raw(s, raw));
    free(c1);
    free(c2);
    const char *ids[] = {"'001A'", "'001B'"};
    cr_assert(soql_where_in(s, "Id", ids, 2, &e));
    soql_select_order(s, "SystemModstamp asc, Id DESC NULLS last");
    soql_select_limit(s, 2000);
    char *sql = soql_select_build(s, &e);
    cr_assert_not_null(sql, "%s", e.msg);
    cr_assert_str_eq(sql, "SELECT Id, Name, Owner.Name, SystemModstamp FROM Account"
                          " WHERE (SystemModstamp >= 2024-01-02T03:04:05.000Z) AND (Name != 'Acme\\'s')"
                          " AND (SystemModstamp > 2024-01-02T03:04:05.000Z OR (Id > '001000000000001AAA'))"
                          " AND (Id IN ('001A', '001B'))"
                          " ORDER BY SystemModstamp ASC, Id DESC NULLS LAST LIMIT 2000");
    free(sql);
    soql_select_free(&s);
    cr_assert_null(s);
    soql_select_free(&s);
}

Test(soql, builder_refuses_bad_input)
{
    struct err e = ERR_INIT;
    cr_assert_null(soql_select_new("Account; DELETE", &e));
    cr_assert_eq(e.code, ERR_INVALID_MESSAGE);
    cr_assert_not(e.retriable);

    struct soql_select *s = soql_select_new("Contact", &e);
    err_clear(&e);
    char *sql = soql_select_build(s, &e);
    cr_assert_null(sql, "no fields");
    cr_assert(strstr(e.msg, "no field"), "%s", e.msg);

    err_clear(&e);
    cr_assert_not(soql_select_field(s, "Email, (SELECT Id FROM Cases)", &e));
    cr_assert_eq(e.code, ERR_INVALID_MESSAGE);
    err_clear(&e);
    cr_assert(soql_select_field(s, "Email", &e));
    sql = soql_select_build(s, &e);
    cr_assert_null(sql, "an earlier invalid field poisons the builder");
    soql_select_free(&s);

    const char *ops_bad[] = {"==", "IN", "; --", NULL};
    for (int i = 0; ops_bad[i]; i++) {
        s = soql_select_new("Contact", &e);
        soql_select_field(s, "Id", &e);
        err_clear(&e);
        cr_assert_not(soql_where_cmp(s, "Email", ops_bad[i], "'x'", &e), "%s", ops_bad[i]);
        soql_select_free(&s);
    }

    s = soql_select_new("Contact", &e);
    soql_select_field(s, "Id", &e);
    err_clear(&e);
    cr_assert_not(soql_where_cmp(s, "Email", "=", "'x' OR Id != null", &e), "unquoted tail");
    cr_assert_not(soql_where_cmp(s, "Email", "=", "x", &e));
    soql_select_free(&s);

    const char *raw_bad[] = {"a = 'x'; DELETE", "(a = 1", "a = 1)", "a = 'x", "a = \"x\"", "", NULL};
    for (int i = 0; raw_bad[i]; i++) {
        s = soql_select_new("Contact", &e);
        soql_select_field(s, "Id", &e);
        cr_assert_not(soql_select_where_raw(s, raw_bad[i]), "%s", raw_bad[i]);
        err_clear(&e);
        cr_assert_null(soql_select_build(s, &e));
        soql_select_free(&s);
    }

    const char *order_bad[] = {"Id ASC DESC", "Id; DROP", "Id NULLS", "Id, ", "Id ASC NULLS MIDDLE", NULL};
    for (int i = 0; order_bad[i]; i++) {
        s = soql_select_new("Contact", &e);
        soql_select_field(s, "Id", &e);
        soql_select_order(s, order_bad[i]);
        err_clear(&e);
        char *b = soql_select_build(s, &e);
        cr_assert_null(b, "%s", order_bad[i]);
        cr_assert_eq(e.code, ERR_INVALID_MESSAGE);
        soql_select_free(&s);
    }

    s = soql_select_new("Contact", &e);
    soql_select_field(s, "Id", &e);
    soql_select_limit(s, -1);
    err_clear(&e);
    cr_assert_null(soql_select_build(s, &e));
    soql_select_free(&s);
}
