/*
 * Unit tests of the pure budget rule (budget_allows); budget_check and
 * budget_record against PostgreSQL are covered by tests/it_sync_budget.c.
 */
#include <criterion/criterion.h>

#include "budget.h"

Test(budget_unit, classes_defer_in_priority_order)
{
    /* limit 1000, share 80% -> budget 800: bulk 560, incremental 680, workflow 760, interactive 800 */
    cr_assert(budget_allows(559, 1000, 80, BUDGET_BULK, 1));
    cr_assert_not(budget_allows(560, 1000, 80, BUDGET_BULK, 1));
    cr_assert(budget_allows(560, 1000, 80, BUDGET_INCREMENTAL, 1));
    cr_assert_not(budget_allows(680, 1000, 80, BUDGET_INCREMENTAL, 1));
    cr_assert(budget_allows(680, 1000, 80, BUDGET_WORKFLOW, 1));
    cr_assert_not(budget_allows(760, 1000, 80, BUDGET_WORKFLOW, 1));
    cr_assert(budget_allows(760, 1000, 80, BUDGET_INTERACTIVE, 40));
    cr_assert_not(budget_allows(760, 1000, 80, BUDGET_INTERACTIVE, 41));
    cr_assert_not(budget_allows(800, 1000, 80, BUDGET_INTERACTIVE, 1), "nobody goes past the share");
}

Test(budget_unit, unknown_and_edge_figures)
{
    cr_assert(budget_allows(999999, 0, 80, BUDGET_BULK, 1), "no figure yet: allowed");
    cr_assert(budget_allows(0, 1, 80, BUDGET_BULK, 1), "a tiny limit still allows one call");
    cr_assert_not(budget_allows(1, 1, 80, BUDGET_BULK, 1));
    cr_assert(budget_allows(79, 100, 0, BUDGET_INTERACTIVE, 1), "invalid share falls back to 80%");
    cr_assert_not(budget_allows(80, 100, 0, BUDGET_INTERACTIVE, 1));
    cr_assert(budget_allows(99, 100, 100, BUDGET_INTERACTIVE, 1));
    cr_assert_eq(budget_class_pct(BUDGET_BULK), 70);
    cr_assert_str_eq(budget_class_name(BUDGET_INCREMENTAL), "incremental");
}

Test(budget_unit, class_caps_match_the_rule)
{
    /* the it_budget figures: limit 60, share 80% -> 48 / 45 / 40 / 33 */
    cr_assert_eq(budget_class_cap(60, 80, BUDGET_INTERACTIVE), 48);
    cr_assert_eq(budget_class_cap(60, 80, BUDGET_WORKFLOW), 45);
    cr_assert_eq(budget_class_cap(60, 80, BUDGET_INCREMENTAL), 40);
    cr_assert_eq(budget_class_cap(60, 80, BUDGET_BULK), 33);
    cr_assert_eq(budget_class_cap(0, 80, BUDGET_BULK), 0, "unknown limit");
    cr_assert_eq(budget_class_cap(1, 80, BUDGET_BULK), 1, "at least one call");
    cr_assert_eq(budget_class_cap(1000, 0, BUDGET_INTERACTIVE), 800, "an invalid share falls back to 80%%");
    const enum budget_class cls[] = {BUDGET_INTERACTIVE, BUDGET_WORKFLOW, BUDGET_INCREMENTAL, BUDGET_BULK};
    for (long long lim = 1; lim < 400; lim += 7)
        for (int k = 0; k < 4; k++) {
            long long cap = budget_class_cap(lim, 75, cls[k]);
            cr_assert(budget_allows(cap - 1, lim, 75, cls[k], 1), "limit %lld class %d", lim, k);
            cr_assert_not(budget_allows(cap, lim, 75, cls[k], 1), "limit %lld class %d", lim, k);
            if (k > 0)
                cr_assert_leq(cap, budget_class_cap(lim, 75, cls[k - 1]), "higher classes never get less");
        }
}
