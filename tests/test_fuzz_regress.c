/*
 * Fuzz regressions (issue 7 item 5): every input kept in tests/fuzz/regress/<target>/
 * (crashes found by `make fuzz`, after their fix, plus hand-made edge cases) and
 * every seed of tests/fuzz/corpus/<target>/ is run through the same entry point
 * as the libFuzzer target (tests/fuzz/fuzz_<target>.c, compiled in here with
 * FUZZ_ENTRY renamed), without libFuzzer, under ASan/UBSan in `make test`.
 * The targets abort() on any broken invariant, so a regression crashes the test. Linked with
 * libsfbridge and libsfsim (a rule of its own in the Makefile).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FUZZ_ENTRY fuzz_msg_one
#include "fuzz/fuzz_msg.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_soql_one
#include "fuzz/fuzz_soql.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_limit_info_one
#include "fuzz/fuzz_limit_info.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_csv_one
#include "fuzz/fuzz_csv.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_sfsim_soql_one
#include "fuzz/fuzz_sfsim_soql.c"
#undef FUZZ_ENTRY

typedef int (*fuzz_fn)(const uint8_t *data, size_t size);

/* Run every regular file of dir through fn; returns the number of files. */
static int replay_dir(const char *dir, fuzz_fn fn)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || !strcmp(de->d_name, "README.md"))
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        FILE *f = fopen(path, "rb");
        cr_assert(f, "cannot open %s", path);
        uint8_t *buf = malloc((size_t)st.st_size + 1);
        cr_assert(buf);
        size_t got = fread(buf, 1, (size_t)st.st_size, f);
        fclose(f);
        cr_assert_eq(got, (size_t)st.st_size, "short read of %s", path);
        /* an exact-size copy so an over-read is caught like under libFuzzer */
        uint8_t *exact = malloc(got ? got : 1);
        cr_assert(exact);
        memcpy(exact, buf, got);
        free(buf);
        fn(exact, got);
        free(exact);
        n++;
    }
    closedir(d);
    return n;
}

static void replay(const char *target, fuzz_fn fn)
{
    char dir[256];
    snprintf(dir, sizeof dir, "tests/fuzz/regress/%s", target);
    int regress = replay_dir(dir, fn);
    snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", target);
    int seeds = replay_dir(dir, fn);
    cr_assert(regress + seeds > 0,
              "no input for fuzz target %s in tests/fuzz/regress or tests/fuzz/corpus (run from the repo root)",
              target);
    cr_log_info("%s: %d regression inputs, %d seeds replayed", target, regress, seeds);
}

Test(fuzz_regress, msg, .timeout = 120)
{
    replay("msg", fuzz_msg_one);
    msg_cleanup();
}
Test(fuzz_regress, soql, .timeout = 120) { replay("soql", fuzz_soql_one); }
Test(fuzz_regress, limit_info, .timeout = 60) { replay("limit_info", fuzz_limit_info_one); }
Test(fuzz_regress, csv, .timeout = 120) { replay("csv", fuzz_csv_one); }
Test(fuzz_regress, sfsim_soql, .timeout = 120) { replay("sfsim_soql", fuzz_sfsim_soql_one); }
