/* test_csv: the streaming RFC-4180 parser, fed whole and byte by byte. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

/* rows collected as "f1|f2|f3\n" lines */
struct sink {
    char buf[8192];
    size_t len;
    size_t rows;
    size_t stop_at; /* return non-zero at this row (1-based), 0 = never */
};

static int collect(void *ud, size_t n, const char *const *fields)
{
    struct sink *s = ud;
    s->rows++;
    for (size_t i = 0; i < n; i++)
        s->len += (size_t)snprintf(s->buf + s->len, sizeof s->buf - s->len, "%s%s", i ? "|" : "", fields[i]);
    s->len += (size_t)snprintf(s->buf + s->len, sizeof s->buf - s->len, "\n");
    return s->stop_at && s->rows == s->stop_at;
}

/* parse `in` in chunks of `chunk` bytes (0 = all at once) */
static bool parse(const char *in, size_t len, size_t chunk, struct sink *s, struct err *e)
{
    struct csv_parser *p = csv_parser_new();
    cr_assert_not_null(p);
    bool ok = true;
    if (!chunk)
        chunk = len ? len : 1;
    for (size_t off = 0; ok && off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        ok = csv_parser_feed(p, in + off, n, collect, s, e);
    }
    if (ok)
        ok = csv_parser_finish(p, collect, s, e);
    csv_parser_free(&p);
    cr_assert_null(p);
    return ok;
}

static void check(const char *in, size_t len, const char *expect)
{
    static const size_t chunks[] = {0, 1, 2, 3, 7};
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        struct sink s = {0};
        struct err e = ERR_INIT;
        cr_assert(parse(in, len, chunks[i], &s, &e), "chunk %zu: %s", chunks[i], e.msg);
        cr_assert_str_eq(s.buf, expect, "chunk %zu: got [%s]", chunks[i], s.buf);
    }
}

Test(csv, simple_and_line_endings)
{
    const char lf[] = "\"Id\",\"Name\"\n\"001\",\"Acme\"\n\"002\",\"Beta\"\n";
    check(lf, sizeof lf - 1, "Id|Name\n001|Acme\n002|Beta\n");
    const char crlf[] = "Id,Name\r\n001,Acme\r\n002,Beta\r\n";
    check(crlf, sizeof crlf - 1, "Id|Name\n001|Acme\n002|Beta\n");
    const char noeol[] = "Id,Name\n001,Acme";
    check(noeol, sizeof noeol - 1, "Id|Name\n001|Acme\n");
    const char cr[] = "a,b\rc,d\r";
    check(cr, sizeof cr - 1, "a|b\nc|d\n");
}

Test(csv, quotes_empty_fields_and_embedded_newlines)
{
    const char in[] = "\"a\",\"\",c,\n"
                      "\"say \"\"hi\"\"\",\"line1\nline2\",\"x,y\"\n"
                      "\"cr\r\nlf\",,\n"
                      "\n"
                      ",\n";
    check(in, sizeof in - 1, "a||c|\n"
                             "say \"hi\"|line1\nline2|x,y\n"
                             "cr\r\nlf||\n"
                             "|\n");
    const char trail[] = "a,";
    check(trail, sizeof trail - 1, "a|\n");
    const char quoted_empty[] = "\"\"";
    check(quoted_empty, sizeof quoted_empty - 1, "\n");
}

Test(csv, nul_bytes_dropped_and_utf8_kept)
{
    const char in[] = "na\0me,\"Zü\0rich\"\n";
    check(in, sizeof in - 1, "name|Zürich\n");
}

Test(csv, errors)
{
    struct sink s = {0};
    struct err e = ERR_INIT;
    const char unterminated[] = "a,\"open\nnever closed";
    cr_assert_not(parse(unterminated, sizeof unterminated - 1, 0, &s, &e));
    cr_assert_eq(e.code, ERR_INVALID_MESSAGE);
    cr_assert(strstr(e.msg, "unterminated"), "%s", e.msg);

    err_clear(&e);
    memset(&s, 0, sizeof s);
    const char junk[] = "\"a\"x,b\n";
    cr_assert_not(parse(junk, sizeof junk - 1, 1, &s, &e));
    cr_assert_eq(e.code, ERR_INVALID_MESSAGE);

    /* callback abort */
    err_clear(&e);
    memset(&s, 0, sizeof s);
    s.stop_at = 2;
    const char rows[] = "1\n2\n3\n";
    cr_assert_not(parse(rows, sizeof rows - 1, 0, &s, &e));
    cr_assert_eq(e.code, ERR_INTERNAL);
    cr_assert_eq(s.rows, 2, "stops at the aborting row");

    /* a failed parser refuses more input */
    struct csv_parser *p = csv_parser_new();
    err_clear(&e);
    cr_assert_not(csv_parser_feed(p, "\"a\"b", 4, collect, &s, &e));
    err_clear(&e);
    cr_assert_not(csv_parser_feed(p, "\n", 1, collect, &s, &e));
    csv_parser_free(&p);
}

static int count_rows(void *ud, size_t n, const char *const *fields)
{
    (void)fields;
    size_t *c = ud;
    if (n != 3)
        return 1;
    (*c)++;
    return 0;
}

Test(csv, many_rows_bounded_memory)
{
    /* 200k rows fed in 4 KiB chunks: the parser only keeps one row */
    struct csv_parser *p = csv_parser_new();
    struct err e = ERR_INIT;
    char chunk[4096];
    size_t used = 0, rows = 0, want = 200000;
    for (size_t i = 0; i < want; i++) {
        char line[64];
        int n = snprintf(line, sizeof line, "\"%zu\",\"name %zu\",\"x\"\n", i, i);
        if (used + (size_t)n > sizeof chunk) {
            cr_assert(csv_parser_feed(p, chunk, used, count_rows, &rows, &e), "%s", e.msg);
            used = 0;
        }
        memcpy(chunk + used, line, (size_t)n);
        used += (size_t)n;
    }
    cr_assert(csv_parser_feed(p, chunk, used, count_rows, &rows, &e));
    cr_assert(csv_parser_finish(p, count_rows, &rows, &e));
    cr_assert_eq(rows, want);
    csv_parser_free(&p);
}
