/*
 * Unit tests of the emulator's SOQL subset (tests/sfsim/soql.c): valid and
 * invalid queries, error codes and messages, and evaluation over a small
 * seeded store (no HTTP). Library entry: sim_new() seeds the store; the tests
 * reach the compiled-query API through the internal header.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "sfsim/simint.h"

static struct sim *S;

static void setup(void)
{
    struct sim_config c;
    sim_config_defaults(&c);
    c.seed_accounts = 300;
    c.seed_contacts = 200;
    c.seed_opportunities = 100;
    c.seed_tasks = 20;
    c.quiet = true;
    char err[256];
    S = sim_new(&c, err, sizeof err);
    cr_assert_not_null(S, "%s", err);
}

static void teardown(void)
{
    sim_free(S);
    S = NULL;
}

TestSuite(sfsim_soql, .init = setup, .fini = teardown);

static size_t run(const char *q, bool all)
{
    struct sim_err e = {0};
    struct sim_query *qq = sim_soql_compile(q, &e);
    cr_assert_not_null(qq, "query %s failed: %s %s", q, e.code, e.msg);
    uint32_t *idx = NULL;
    size_t n = 0;
    pthread_rwlock_rdlock(&S->store.lock);
    sim_soql_run_locked(&S->store, qq, all, &idx, &n, &e);
    pthread_rwlock_unlock(&S->store.lock);
    free(idx);
    sim_soql_free(qq);
    return n;
}

static void bad(const char *q, const char *code, const char *needle)
{
    struct sim_err e = {0};
    struct sim_query *qq = sim_soql_compile(q, &e);
    cr_expect_null(qq, "query should fail: %s", q);
    sim_soql_free(qq);
    cr_expect_str_eq(e.code, code, "query %s: %s", q, e.msg);
    cr_expect_eq(e.status, 400);
    if (needle)
        cr_expect(strstr(e.msg, needle) != NULL, "message of %s lacks \"%s\": %s", q, needle,
                  e.msg);
}

Test(sfsim_soql, valid_queries_compile)
{
    static const char *const ok[] = {
        "SELECT Id FROM Account",
        "select id, name from account",
        "SELECT COUNT() FROM Contact",
        "SELECT Id, Account.Name, Account.Owner.Name FROM Contact",
        "SELECT Id FROM Account WHERE Name = 'x' AND Industry != null",
        "SELECT Id FROM Account WHERE (Name = 'x' OR Name = 'y') AND NOT Type = 'Other'",
        "SELECT Id FROM Account WHERE Industry IN ('Banking', 'Retail')",
        "SELECT Id FROM Account WHERE Industry NOT IN ('Banking')",
        "SELECT Id FROM Account WHERE Name LIKE 'Sum%' ORDER BY Name DESC NULLS LAST, Id",
        "SELECT Id FROM Account WHERE SystemModstamp >= 2024-01-02T03:04:05Z",
        "SELECT Id FROM Account WHERE SystemModstamp < 2024-01-02T03:04:05.000+01:00",
        "SELECT Id FROM Account WHERE SystemModstamp > 2024-01-02T03:04:05-05:00",
        "SELECT Id FROM Opportunity WHERE CloseDate > 2024-01-01 AND Amount >= 100.5",
        "SELECT Id FROM Account WHERE Name = 'it\\'s \\\\ \\n'",
        "SELECT Id FROM Opportunity WHERE IsClosed = false LIMIT 10 OFFSET 5",
        "SELECT Id, What.Name FROM Task WHERE What.Name != null",
        "SELECT Id FROM Account WHERE Id = '001Hs0000000001'",
        "SELECT Id, Interaction.Name, Contact.Email, User.Name FROM InteractionAttendee",
        "SELECT Id FROM InteractionAttendee WHERE Interaction.Account.Name LIKE 'S%' "
        "ORDER BY Interaction.StartTime DESC NULLS LAST",
        "SELECT Id, RelatedRecord.StageName, AssociatedRecord.Name FROM Interaction "
        "WHERE RelatedRecordId != null",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct sim_err e = {0};
        struct sim_query *q = sim_soql_compile(ok[i], &e);
        cr_expect_not_null(q, "%s: %s %s", ok[i], e.code, e.msg);
        sim_soql_free(q);
    }
}

Test(sfsim_soql, invalid_queries)
{
    bad("SELECT Id, Foo FROM Account", "INVALID_FIELD", "No such column 'Foo' on entity 'Account'");
    bad("SELECT Id FROM Nope", "INVALID_TYPE", "sObject type 'Nope' is not supported");
    bad("SELECT Id FROM Contact WHERE Acct.Name = 'x'", "INVALID_FIELD", "Didn't understand relationship 'Acct'");
    bad("SELECT Id FROM Account WHERE", "MALFORMED_QUERY", "unexpected token: <EOF>");
    bad("SELECT FROM Account", "MALFORMED_QUERY", "unexpected token: 'FROM'");
    bad("SELECT Id Account", "MALFORMED_QUERY", NULL);
    bad("SELECT Id FROM Account WHERE Name = 'a' AND Type = 'b' OR Type = 'c'", "MALFORMED_QUERY",
        "unexpected token: 'OR'");
    bad("SELECT Id FROM Account WHERE Name = 'unterminated", "MALFORMED_QUERY", NULL);
    bad("SELECT Id FROM Account WHERE Name = 'bad \\q escape'", "MALFORMED_QUERY", "Illegal character sequence");
    bad("SELECT Id FROM Account WHERE CreatedDate > '2024-01-01'", "INVALID_FIELD", "must be of type dateTime");
    bad("SELECT Id FROM Account WHERE CreatedDate > 2024-01-01", "INVALID_FIELD", NULL);
    bad("SELECT Id FROM Opportunity WHERE CloseDate > 2024-01-01T00:00:00Z", "INVALID_FIELD", NULL);
    bad("SELECT Id FROM Account WHERE NumberOfEmployees = 'ten'", "INVALID_FIELD", NULL);
    bad("SELECT Id FROM Account GROUP BY Name", "MALFORMED_QUERY", NULL);
    bad("SELECT Id, Id FROM Account", "MALFORMED_QUERY", "duplicate field selected");
    bad("SELECT Id FROM Account OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE", NULL);
    bad("SELECT Id FROM Account WHERE Id = 'nope'", "INVALID_QUERY_FILTER_OPERATOR", NULL);
    bad("SELECT COUNT(Id) FROM Account", "MALFORMED_QUERY", NULL);
    bad("SELECT Id FROM Account WHERE Name < null", "MALFORMED_QUERY", NULL);
    bad("", "MALFORMED_QUERY", NULL);
    bad("SELECT Id, Interaction.Bogus FROM InteractionAttendee", "INVALID_FIELD",
        "No such column 'Bogus'");
    bad("SELECT Id, Related.Name FROM Interaction", "INVALID_FIELD",
        "Didn't understand relationship 'Related'");
    bad("SELECT Id, Contact.Email FROM Interaction", "INVALID_FIELD", NULL);
}

Test(sfsim_soql, error_message_points_at_the_column)
{
    struct sim_err e = {0};
    cr_assert_null(sim_soql_compile("SELECT Id, Bogus FROM Account", &e));
    cr_expect(strstr(e.msg, "ERROR at Row:1:Column:12") != NULL, "%s", e.msg);
    cr_expect(strncmp(e.msg, "\nSELECT Id, Bogus FROM Account\n           ^\n", 43) == 0, "%s", e.msg);
}

Test(sfsim_soql, evaluation)
{
    cr_expect_eq(run("SELECT Id FROM Account", false), 300);
    cr_expect_eq(run("SELECT COUNT() FROM Contact", false), 200);
    size_t banking = run("SELECT Id FROM Account WHERE Industry = 'Banking'", false);
    size_t other = run("SELECT Id FROM Account WHERE Industry != 'Banking'", false);
    cr_expect_eq(banking + other, 300);
    cr_expect_eq(run("SELECT Id FROM Account WHERE Industry = 'banking'", false), banking,
                 "text equality is case-insensitive");
    cr_expect_eq(run("SELECT Id FROM Account WHERE NOT Industry = 'Banking'", false), other);
    size_t in2 = run("SELECT Id FROM Account WHERE Industry IN ('Banking','Retail')", false);
    size_t retail = run("SELECT Id FROM Account WHERE Industry = 'Retail'", false);
    cr_expect_eq(in2, banking + retail);
    cr_expect_eq(run("SELECT Id FROM Account WHERE Industry NOT IN ('Banking','Retail')", false),
                 300 - in2);
    cr_expect_eq(run("SELECT Id FROM Account LIMIT 7", false), 7);
    cr_expect_eq(run("SELECT Id FROM Account LIMIT 7 OFFSET 296", false), 4);
    cr_expect_eq(run("SELECT Id FROM Account WHERE Website LIKE '%example.com'", false), 300);
    cr_expect_eq(run("SELECT Id FROM Account WHERE Website LIKE 'nope%'", false), 0);
    cr_expect_eq(run("SELECT Id FROM Account WHERE Description = null", false), 300);
    cr_expect_eq(run("SELECT Id FROM Account WHERE Description != null", false), 0);
    cr_expect_eq(run("SELECT Id FROM Contact WHERE Account.Name != null", false), 200);
    cr_expect_eq(run("SELECT Id FROM Account WHERE SystemModstamp > 2000-01-01T00:00:00Z", false), 300);
    cr_expect_eq(run("SELECT Id FROM Account WHERE SystemModstamp < 2000-01-01T00:00:00Z", false), 0);
    cr_expect_eq(run("SELECT Id FROM Opportunity WHERE IsClosed = true OR IsClosed = false", false), 100);
}

Test(sfsim_soql, order_by_and_deleted_rows)
{
    struct sim_err e = {0};
    struct sim_query *q = sim_soql_compile(
        "SELECT Id, Name FROM Account ORDER BY Name DESC, Id ASC", &e);
    cr_assert_not_null(q);
    uint32_t *idx;
    size_t n;
    pthread_rwlock_rdlock(&S->store.lock);
    sim_soql_run_locked(&S->store, q, false, &idx, &n, &e);
    for (size_t i = 1; i < n; i++) {
        struct sim_val a = sim_get(&S->store, SIM_ACCOUNT, sim_rec_at(&S->store, SIM_ACCOUNT, idx[i - 1]), 8);
        struct sim_val b = sim_get(&S->store, SIM_ACCOUNT, sim_rec_at(&S->store, SIM_ACCOUNT, idx[i]), 8);
        int d = strcasecmp(a.u.s, b.u.s);
        cr_expect(d > 0 || (d == 0 && idx[i - 1] < idx[i]), "order broken at %zu", i);
    }
    pthread_rwlock_unlock(&S->store.lock);
    free(idx);
    sim_soql_free(q);

    pthread_rwlock_wrlock(&S->store.lock);
    cr_assert(sim_store_delete_locked(S, SIM_ACCOUNT, 0, false, &e));
    cr_assert(sim_store_delete_locked(S, SIM_ACCOUNT, 1, true, &e));
    pthread_rwlock_unlock(&S->store.lock);
    cr_expect_eq(run("SELECT Id FROM Account", false), 298);
    cr_expect_eq(run("SELECT Id FROM Account", true), 299, "queryAll keeps soft-deleted, not purged");
    cr_expect_eq(run("SELECT Id FROM Account WHERE IsDeleted = true", true), 1);
}

Test(sfsim_soql, seeding_is_deterministic)
{
    struct sim_config c;
    sim_config_defaults(&c);
    c.seed_accounts = 300;
    c.seed_contacts = 200;
    c.seed_opportunities = 100;
    c.seed_tasks = 20;
    c.quiet = true;
    char err[256];
    struct sim *t = sim_new(&c, err, sizeof err);
    cr_assert_not_null(t);
    const struct sim_object *o = &sim_objects[SIM_CONTACT];
    int email = sim_field_find(o, "Email");
    for (uint32_t i = 0; i < 200; i++) {
        struct sim_rec *a = sim_rec_at(&S->store, SIM_CONTACT, i);
        struct sim_rec *b = sim_rec_at(&t->store, SIM_CONTACT, i);
        cr_expect_str_eq(a->id, b->id);
        cr_expect_str_eq(sim_get(&S->store, SIM_CONTACT, a, email).u.s,
                         sim_get(&t->store, SIM_CONTACT, b, email).u.s);
        /* stamps differ only by the start time of the two runs */
        int64_t da = a->v[o->f_sysmod].i - b->v[o->f_sysmod].i;
        cr_expect(da > -5000 && da < 5000);
    }
    sim_free(t);
}

/* RelatedRecordId and InteractionAttendee seeding: the same seed gives the
 * same links; no attendees unless asked; attendees never without an
 * interaction */
Test(sfsim_soql, fsc_seeding_is_deterministic)
{
    struct sim_config c;
    sim_config_defaults(&c);
    c.seed_accounts = 40;
    c.seed_contacts = 100;
    c.seed_opportunities = 60;
    c.seed_interactions = 50;
    c.seed_attendees = 120;
    c.quiet = true;
    char err[256];
    struct sim *a = sim_new(&c, err, sizeof err), *b = sim_new(&c, err, sizeof err);
    cr_assert(a && b, "%s", err);
    const struct sim_object *io = &sim_objects[SIM_INTERACTION];
    const struct sim_object *ao = &sim_objects[SIM_INTERACTION_ATTENDEE];
    int rel = sim_field_find(io, "RelatedRecordId"), con = sim_field_find(ao, "ContactId"),
        inter = sim_field_find(ao, "InteractionId");
    cr_assert(rel > 0 && con > 0 && inter > 0);
    cr_expect_eq(a->store.t[SIM_INTERACTION_ATTENDEE].n, 120);
    int related = 0;
    for (uint32_t i = 0; i < 50; i++) {
        struct sim_val x = sim_get(&a->store, SIM_INTERACTION,
                                   sim_rec_at(&a->store, SIM_INTERACTION, i), rel);
        struct sim_val y = sim_get(&b->store, SIM_INTERACTION,
                                   sim_rec_at(&b->store, SIM_INTERACTION, i), rel);
        cr_expect_eq(x.null, y.null);
        if (!x.null) {
            cr_expect_str_eq(x.u.s, y.u.s);
            related++;
        }
    }
    cr_expect(related > 12 && related < 38, "about half: %d of 50", related);
    for (uint32_t i = 0; i < 120; i++) {
        struct sim_rec *ra = sim_rec_at(&a->store, SIM_INTERACTION_ATTENDEE, i);
        struct sim_rec *rb = sim_rec_at(&b->store, SIM_INTERACTION_ATTENDEE, i);
        cr_expect_str_eq(ra->id, rb->id);
        cr_expect_str_eq(sim_get(&a->store, SIM_INTERACTION_ATTENDEE, ra, inter).u.s,
                         sim_get(&b->store, SIM_INTERACTION_ATTENDEE, rb, inter).u.s);
        struct sim_val x = sim_get(&a->store, SIM_INTERACTION_ATTENDEE, ra, con);
        struct sim_val y = sim_get(&b->store, SIM_INTERACTION_ATTENDEE, rb, con);
        cr_expect_eq(x.null, y.null);
        if (!x.null)
            cr_expect_str_eq(x.u.s, y.u.s);
    }
    sim_free(a);
    sim_free(b);

    /* the default: none; and none without interactions to attend */
    cr_expect_eq(S->store.t[SIM_INTERACTION_ATTENDEE].n, 0);
    sim_config_defaults(&c);
    c.seed_accounts = 5;
    c.seed_attendees = 10;
    c.quiet = true;
    a = sim_new(&c, err, sizeof err);
    cr_assert_not_null(a, "%s", err);
    cr_expect_eq(a->store.t[SIM_INTERACTION_ATTENDEE].n, 0);
    sim_free(a);
}
