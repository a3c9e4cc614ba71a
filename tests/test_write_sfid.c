/*
 * Unit tests of the write worker's Salesforce id helper
 * (workers/sfbridge-write/sfid.c, compiled in here: the worker's files are
 * not in libsfbridge).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "../workers/sfbridge-write/sfid.c"

static void to18(const char *in, const char *want)
{
    char out[19];
    cr_assert(write_sfid18(in, out), "%s must be accepted", in);
    cr_assert_str_eq(out, want, "%s", in);
}

Test(write_sfid, fifteen_gets_the_checksum_suffix)
{
    to18("001A0000006Vm9r", "001A0000006Vm9rIAC");
    to18("00300000003T2PG", "00300000003T2PGAA0");
    to18("003000000000001", "003000000000001AAA");
    to18("0rIZZZZZZZZZZZZ", "0rIZZZZZZZZZZZZ255");
    to18("a0B5e00000AbCdE", "a0B5e00000AbCdEEAV");
}

Test(write_sfid, eighteen_is_kept_and_its_case_restored)
{
    to18("001A0000006Vm9rIAC", "001A0000006Vm9rIAC");
    to18("001A0000006Vm9riac", "001A0000006Vm9rIAC"); /* suffix case does not matter */
    to18("001a0000006vm9riac", "001A0000006Vm9rIAC"); /* lower-cased id: the suffix says which were upper */
    to18("00300000003T2PGAA0", "00300000003T2PGAA0");
}

Test(write_sfid, not_an_id)
{
    char out[19];
    const char *bad[] = {NULL, "", "001A0000006Vm9", "001A0000006Vm9rI", "001A0000006Vm9rIACX", "001A0000006Vm9-",
                         "001A0000006Vm9rIA9", /* 9 is no suffix character */
                         "001A0000006Vm9rIA1" /* suffix marks a digit as upper case */};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert(!write_sfid18(bad[i], out), "%s must be refused", bad[i] ? bad[i] : "(null)");
}
