/*
 * fuzz_csv: libFuzzer target for the streaming CSV parser (common/csv.h)
 * used on Bulk 2.0 results.
 *
 * Input: byte 0 seeds the chunk sizes; the rest is the CSV document. The
 * document is parsed twice: in one piece and in chunks of 1..32 bytes.
 * Invariants (abort on violation): both parses agree on success/failure, on
 * the number of rows and on every field (a digest of the rows); no row
 * callback sees a NULL field; csv_parser_rows matches the rows delivered.
 * Also compiled into tests/test_fuzz_regress.c (FUZZ_ENTRY renamed).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "err.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

struct fuzz_csv_digest {
    uint64_t h;
    size_t rows;
};

static void fuzz_csv_mix(struct fuzz_csv_digest *d, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        d->h = (d->h ^ b[i]) * 1099511628211ULL; /* FNV-1a */
}

static int fuzz_csv_row(void *ud, size_t n, const char *const *fields)
{
    struct fuzz_csv_digest *d = ud;
    d->rows++;
    fuzz_csv_mix(d, &n, sizeof n);
    for (size_t i = 0; i < n; i++) {
        if (!fields[i])
            abort();
        size_t l = strlen(fields[i]);
        fuzz_csv_mix(d, &l, sizeof l);
        fuzz_csv_mix(d, fields[i], l);
    }
    return 0;
}

/* returns 1 on success, 0 on a parse error */
static int fuzz_csv_parse(const uint8_t *doc, size_t len, unsigned seed, struct fuzz_csv_digest *d)
{
    struct csv_parser *p = csv_parser_new();
    if (!p)
        abort();
    struct err e = ERR_INIT;
    int ok = 1;
    size_t off = 0;
    unsigned s = seed;
    while (off < len) {
        size_t n = len - off;
        if (seed) {
            s = s * 1103515245u + 12345u;
            size_t c = 1 + (s >> 16) % 32;
            if (c < n)
                n = c;
        }
        /* an exact-size heap copy per chunk so ASan sees over-reads */
        char *chunk = malloc(n);
        if (!chunk)
            abort();
        memcpy(chunk, doc + off, n);
        bool fed = csv_parser_feed(p, chunk, n, fuzz_csv_row, d, &e);
        free(chunk);
        if (!fed) {
            ok = 0;
            break;
        }
        if (csv_parser_rows(p) != d->rows)
            abort();
        off += n;
    }
    if (ok && !csv_parser_finish(p, fuzz_csv_row, d, &e))
        ok = 0;
    if (!ok && (e.code != ERR_INVALID_MESSAGE || e.msg[0] == '\0'))
        abort();
    csv_parser_free(&p);
    if (p)
        abort();
    return ok;
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned seed = data[0] | 1u;
    struct fuzz_csv_digest whole = {1469598103934665603ULL, 0}, chunked = {1469598103934665603ULL, 0};
    int ok1 = fuzz_csv_parse(data + 1, size - 1, 0, &whole);
    int ok2 = fuzz_csv_parse(data + 1, size - 1, seed, &chunked);
    if (ok1 != ok2)
        abort();
    if (ok1 && (whole.rows != chunked.rows || whole.h != chunked.h))
        abort();
    return 0;
}
