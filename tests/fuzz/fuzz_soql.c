/*
 * fuzz_soql: libFuzzer target for the SOQL escaper and builder (common/soql.h).
 *
 * Input: lines separated by '\n'. Line 0 is the value to quote; line 1 the
 * object; lines 2.. are field names / operators / order / limit for the
 * builder. Invariants checked (abort on violation):
 *   - soql_quote(v) is NULL only for invalid UTF-8 (or v holding a NUL);
 *     otherwise it starts and ends with a quote, has no unescaped quote in
 *     between (so a value can never close the literal and inject SOQL), and
 *     soql_literal_valid() accepts it; the same for soql_quote_like;
 *   - a field accepted by soql_field_valid matches the documented pattern
 *     (letters, digits, '_' and '.' only, starting with a letter);
 *   - a built SELECT contains no ';', balanced quotes and parentheses, and
 *     starts with "SELECT ".
 * Also compiled into tests/test_fuzz_regress.c (FUZZ_ENTRY renamed).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "json.h"
#include "soql.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

/* true when q is '...' with every inner quote escaped by a backslash */
static bool fuzz_soql_literal_closed_once(const char *q)
{
    size_t n = strlen(q);
    if (n < 2 || q[0] != '\'' || q[n - 1] != '\'')
        return false;
    for (size_t i = 1; i < n - 1; i++) {
        if (q[i] == '\\') {
            if (i + 1 >= n - 1)
                return false; /* the closing quote would be escaped */
            i++;
            continue;
        }
        if (q[i] == '\'' || q[i] == '\n' || q[i] == '\r')
            return false;
    }
    return true;
}

static void fuzz_soql_check_field(const char *f)
{
    if (!soql_field_valid(f))
        return;
    if (!((f[0] >= 'A' && f[0] <= 'Z') || (f[0] >= 'a' && f[0] <= 'z')))
        abort();
    for (const char *p = f; *p; p++) {
        char c = *p;
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
        if (!ok)
            abort();
    }
    if (strlen(f) > 5 * 81)
        abort();
}

/* outside quoted literals: no ';', parentheses balanced */
static void fuzz_soql_check_built(const char *s)
{
    if (strncmp(s, "SELECT ", 7) != 0)
        abort();
    int depth = 0;
    bool in_q = false;
    for (const char *p = s; *p; p++) {
        if (in_q) {
            if (*p == '\\' && p[1]) {
                p++;
                continue;
            }
            if (*p == '\'')
                in_q = false;
            continue;
        }
        if (*p == '\'')
            in_q = true;
        else if (*p == ';')
            abort();
        else if (*p == '(')
            depth++;
        else if (*p == ')' && --depth < 0)
            abort();
    }
    if (in_q || depth != 0)
        abort();
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    bool has_nul = memchr(data, '\0', size) != NULL;

    /* split into lines (at most 16) */
    char *lines[16];
    int nl = 0;
    char *p = buf;
    while (nl < 16) {
        lines[nl++] = p;
        char *nlp = strchr(p, '\n');
        if (!nlp)
            break;
        *nlp = '\0';
        p = nlp + 1;
    }

    /* 1. the escaper, on the first line and on the whole input */
    const char *values[2] = {lines[0], NULL};
    char *whole = malloc(size + 1);
    if (whole) {
        memcpy(whole, data, size);
        whole[size] = '\0';
        values[1] = whole;
    }
    for (int i = 0; i < 2 && values[i]; i++) {
        const char *v = values[i];
        char *q = soql_quote(v);
        if (!q) {
            if (!has_nul && json_utf8_valid(v, strlen(v)))
                abort(); /* a valid UTF-8 value must be quotable */
        } else {
            if (!fuzz_soql_literal_closed_once(q) || !soql_literal_valid(q))
                abort();
            struct err e = ERR_INIT;
            char *cmp = soql_cmp("Name", "=", q, &e);
            if (!cmp)
                abort();
            free(cmp);
        }
        free(q);
        for (int m = 0; m < 4; m++) {
            char *l = soql_quote_like(v, m & 1, m & 2);
            if (l && (!fuzz_soql_literal_closed_once(l) || !soql_literal_valid(l)))
                abort();
            free(l);
        }
    }
    free(whole);

    /* 2. identifiers */
    for (int i = 0; i < nl; i++) {
        fuzz_soql_check_field(lines[i]);
        (void)soql_ident_valid(lines[i]);
        (void)soql_literal_valid(lines[i]);
    }

    /* 3. the builder */
    if (nl >= 2) {
        struct err e = ERR_INIT;
        struct soql_select *s = soql_select_new(lines[1], &e);
        if (s) {
            for (int i = 2; i < nl; i++) {
                const char *l = lines[i];
                struct err fe = ERR_INIT;
                switch (l[0]) {
                case 'O': /* order */
                    soql_select_order(s, l + 1);
                    break;
                case 'L': /* limit */
                    soql_select_limit(s, strtol(l + 1, NULL, 10));
                    break;
                case 'W': { /* where Field op literal(from line 0) */
                    char *q = soql_quote(lines[0]);
                    soql_where_cmp(s, l + 1, "=", q ? q : l + 1, &fe);
                    free(q);
                    break;
                }
                case 'I': { /* IN (raw literals) */
                    const char *lits[2] = {lines[0], l + 1};
                    soql_where_in(s, "Id", lits, 2, &fe);
                    break;
                }
                case 'R': /* raw clause: must be refused when unsafe */
                    soql_select_where_raw(s, l + 1);
                    break;
                default:
                    soql_select_field(s, l, &fe);
                    break;
                }
            }
            struct err be = ERR_INIT;
            char *soql = soql_select_build(s, &be);
            if (soql)
                fuzz_soql_check_built(soql);
            else if (!err_is_set(&be))
                abort();
            free(soql);
            soql_select_free(&s);
            if (s)
                abort();
        } else if (!err_is_set(&e)) {
            abort();
        }
    }
    free(buf);
    return 0;
}
