/*
 * fuzz_limit_info: libFuzzer target for sf_parse_limit_info (the
 * Sforce-Limit-Info response header, e.g. "api-usage=10018/100000").
 * Invariants: no crash or over-read on any header value; on success both
 * figures are >= 0 and the value contains "api-usage"; outputs are untouched
 * on failure.
 * Also compiled into tests/test_fuzz_regress.c (FUZZ_ENTRY renamed).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sf.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    char *v = malloc(size + 1);
    if (!v)
        return 0;
    memcpy(v, data, size);
    v[size] = '\0';
    long long used = -7, limit = -7;
    if (sf_parse_limit_info(v, &used, &limit)) {
        if (used < 0 || limit < 0 || !strstr(v, "api-usage"))
            abort();
    } else if (used != -7 || limit != -7) {
        abort();
    }
    (void)sf_parse_limit_info(v, NULL, NULL);
    free(v);
    return 0;
}
