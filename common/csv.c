/*
 * csv: see csv.h. A byte-at-a-time state machine; the current row's fields
 * live NUL-separated in one growing buffer, with their start offsets in a
 * second array, so a row costs no per-field allocation and memory stays
 * bounded by the largest row.
 */
#include "csv.h"

#include <stdlib.h>
#include <string.h>

#define CSV_MAX_ROW (64u * 1024 * 1024)
#define CSV_MAX_FIELDS 65536u

enum csv_state {
    ST_ROW_START,   /* nothing of this row yet */
    ST_FIELD_START, /* after a ',' */
    ST_UNQUOTED,
    ST_QUOTED,
    ST_QUOTE_IN_QUOTED, /* a '"' inside a quoted field: doubled quote or the end */
};

struct csv_parser {
    enum csv_state st;
    bool skip_lf; /* last byte was a CR ending a row */
    bool failed;
    char *buf;
    size_t len, cap;
    size_t *starts;
    size_t nfields, fcap;
    const char **ptrs;
    size_t pcap;
    size_t rows;
};

struct csv_parser *csv_parser_new(void)
{
    return calloc(1, sizeof(struct csv_parser));
}

void csv_parser_free(struct csv_parser **p)
{
    if (!p || !*p)
        return;
    free((*p)->buf);
    free((*p)->starts);
    free((void *)(*p)->ptrs);
    free(*p);
    *p = NULL;
}

size_t csv_parser_rows(const struct csv_parser *p)
{
    return p ? p->rows : 0;
}

static bool put(struct csv_parser *p, char ch, struct err *e)
{
    if (p->len + 1 >= p->cap) {
        if (p->cap >= CSV_MAX_ROW)
            return err_set(e, ERR_INVALID_MESSAGE, false, "cannot parse csv: row longer than %u bytes",
                           CSV_MAX_ROW);
        size_t ncap = p->cap ? p->cap * 2 : 1024;
        char *nb = realloc(p->buf, ncap);
        if (!nb)
            return err_set(e, ERR_NOMEM, true, "could not parse csv: out of memory");
        p->buf = nb;
        p->cap = ncap;
    }
    p->buf[p->len++] = ch;
    return true;
}

static bool field_begin(struct csv_parser *p, struct err *e)
{
    if (p->nfields == p->fcap) {
        if (p->fcap >= CSV_MAX_FIELDS)
            return err_set(e, ERR_INVALID_MESSAGE, false, "cannot parse csv: more than %u fields in a row",
                           CSV_MAX_FIELDS);
        size_t ncap = p->fcap ? p->fcap * 2 : 32;
        size_t *ns = realloc(p->starts, ncap * sizeof *ns);
        if (!ns)
            return err_set(e, ERR_NOMEM, true, "could not parse csv: out of memory");
        p->starts = ns;
        p->fcap = ncap;
    }
    p->starts[p->nfields++] = p->len;
    return true;
}

/* terminate the current field */
static bool field_end(struct csv_parser *p, struct err *e)
{
    return put(p, '\0', e);
}

static bool row_emit(struct csv_parser *p, csv_row_fn row, void *ud, struct err *e)
{
    if (p->pcap < p->nfields) {
        const char **np = realloc((void *)p->ptrs, p->fcap * sizeof *np);
        if (!np)
            return err_set(e, ERR_NOMEM, true, "could not parse csv: out of memory");
        p->ptrs = np;
        p->pcap = p->fcap;
    }
    for (size_t i = 0; i < p->nfields; i++)
        p->ptrs[i] = p->buf + p->starts[i];
    size_t n = p->nfields;
    p->nfields = 0;
    p->len = 0;
    p->st = ST_ROW_START;
    p->rows++;
    if (row && row(ud, n, p->ptrs) != 0)
        return err_set(e, ERR_INTERNAL, false, "csv row callback aborted at row %zu", p->rows);
    return true;
}

bool csv_parser_feed(struct csv_parser *p, const char *buf, size_t len, csv_row_fn row, void *ud,
                     struct err *e)
{
    if (!p)
        return err_set(e, ERR_INTERNAL, false, "cannot parse csv: no parser");
    if (p->failed)
        return err_set(e, ERR_INVALID_MESSAGE, false, "cannot parse csv: parser failed earlier");
    for (size_t i = 0; i < len; i++) {
        char ch = buf[i];
        bool ok = true;
        if (ch == '\0')
            continue;
        if (p->skip_lf) {
            p->skip_lf = false;
            if (ch == '\n')
                continue;
        }
        switch (p->st) {
        case ST_ROW_START:
            if (ch == '\r' || ch == '\n') {
                /* empty line */
                p->skip_lf = ch == '\r';
                break;
            }
            /* a row starts like a field */
            ok = field_begin(p, e);
            if (!ok)
                break;
            goto field_start;
        case ST_FIELD_START:
            ok = field_begin(p, e);
            if (!ok)
                break;
        field_start:
            if (ch == '"') {
                p->st = ST_QUOTED;
            } else if (ch == ',') {
                ok = field_end(p, e);
                p->st = ST_FIELD_START;
            } else if (ch == '\r' || ch == '\n') {
                /* only reachable after a ',': the row ends with an empty field */
                ok = field_end(p, e) && row_emit(p, row, ud, e);
                p->skip_lf = ch == '\r';
            } else {
                ok = put(p, ch, e);
                p->st = ST_UNQUOTED;
            }
            break;
        case ST_UNQUOTED:
            if (ch == ',') {
                ok = field_end(p, e);
                p->st = ST_FIELD_START;
            } else if (ch == '\r' || ch == '\n') {
                ok = field_end(p, e) && row_emit(p, row, ud, e);
                p->skip_lf = ch == '\r';
            } else {
                ok = put(p, ch, e);
            }
            break;
        case ST_QUOTED:
            if (ch == '"')
                p->st = ST_QUOTE_IN_QUOTED;
            else
                ok = put(p, ch, e);
            break;
        case ST_QUOTE_IN_QUOTED:
            if (ch == '"') {
                ok = put(p, '"', e);
                p->st = ST_QUOTED;
            } else if (ch == ',') {
                ok = field_end(p, e);
                p->st = ST_FIELD_START;
            } else if (ch == '\r' || ch == '\n') {
                ok = field_end(p, e) && row_emit(p, row, ud, e);
                p->skip_lf = ch == '\r';
            } else {
                ok = err_set(e, ERR_INVALID_MESSAGE, false,
                             "cannot parse csv: unexpected character after closing quote in row %zu",
                             p->rows + 1);
            }
            break;
        }
        if (!ok) {
            p->failed = true;
            return false;
        }
    }
    return true;
}

bool csv_parser_finish(struct csv_parser *p, csv_row_fn row, void *ud, struct err *e)
{
    bool ok = true;
    if (!p)
        return err_set(e, ERR_INTERNAL, false, "cannot parse csv: no parser");
    if (p->failed) {
        ok = err_set(e, ERR_INVALID_MESSAGE, false, "cannot parse csv: parser failed earlier");
        goto out;
    }
    switch (p->st) {
    case ST_ROW_START:
        break;
    case ST_QUOTED:
        ok = err_set(e, ERR_INVALID_MESSAGE, false, "cannot parse csv: unterminated quoted field in row %zu",
                     p->rows + 1);
        break;
    case ST_FIELD_START:
        /* "a," at end of input: a last empty field */
        ok = field_begin(p, e) && field_end(p, e) && row_emit(p, row, ud, e);
        break;
    case ST_UNQUOTED:
    case ST_QUOTE_IN_QUOTED:
        ok = field_end(p, e) && row_emit(p, row, ud, e);
        break;
    }
out:
    p->st = ST_ROW_START;
    p->skip_lf = false;
    p->failed = false;
    p->len = 0;
    p->nfields = 0;
    p->rows = 0;
    return ok;
}
