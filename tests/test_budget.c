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
