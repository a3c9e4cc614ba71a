/* err: see err.h. No state, thread-safe. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const names[ERR_CODE_COUNT] = {
    [ERR_OK] = "OK",
    [ERR_INTERNAL] = "INTERNAL",
    [ERR_NOMEM] = "OUT_OF_MEMORY",
    [ERR_CONFIG] = "CONFIG",
    [ERR_INVALID_JSON] = "INVALID_JSON",
    [ERR_INVALID_MESSAGE] = "INVALID_MESSAGE",
    [ERR_PG] = "DATABASE_ERROR",
    [ERR_KAFKA] = "KAFKA_ERROR",
    [ERR_HTTP] = "HTTP_ERROR",
    [ERR_TLS] = "TLS_ERROR",
    [ERR_SALESFORCE] = "SALESFORCE_ERROR",
    [ERR_AUTH] = "AUTH_ERROR",
    [ERR_NOT_IMPLEMENTED] = "NOT_IMPLEMENTED",
    [ERR_NOT_FOUND] = "NOT_FOUND",
    [ERR_INTEGRATION_DISABLED] = "INTEGRATION_DISABLED",
    [ERR_CONNECTION_EXPIRED] = "CONNECTION_EXPIRED",
    [ERR_CONNECTION_DISABLED] = "CONNECTION_DISABLED",
    [ERR_MAPPING_REQUIRED] = "MAPPING_REQUIRED",
    [ERR_DELETE_NOT_SUPPORTED] = "DELETE_NOT_SUPPORTED",
    [ERR_LIMIT_EXCEEDED] = "REQUEST_LIMIT_EXCEEDED",
    [ERR_INVALID_STATE] = "INVALID_STATE",
    [ERR_SIGNATURE] = "INVALID_SIGNATURE",
    [ERR_FORBIDDEN] = "FORBIDDEN",
    [ERR_SCHEMA_VERSION] = "SCHEMA_VERSION",
};

/* Cut `s` back to the last complete UTF-8 sequence: a truncated message must stay valid text
 * (PostgreSQL and the JSON schemas refuse anything else). */
static void utf8_trim(char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return;
    size_t i = n;
    /* walk back over continuation bytes to the lead byte of the last sequence */
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0) {
        s[0] = '\0';
        return;
    }
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead < 0x80 ? 1 : (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : (lead & 0xF8) == 0xF0 ? 4 : 0;
    if (need == 0 || n - (i - 1) < need)
        s[i - 1] = '\0';
}

static bool vset(struct err *e, enum err_code code, bool retriable, const char *sf_code,
                 const char *fmt, va_list ap)
{
    if (!e || e->code != ERR_OK)
        return false;
    e->code = code == ERR_OK ? ERR_INTERNAL : code;
    e->retriable = retriable;
    int n = vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    if (n >= (int)sizeof e->msg)
        utf8_trim(e->msg);
    snprintf(e->sf_code, sizeof e->sf_code, "%s", sf_code ? sf_code : "");
    utf8_trim(e->sf_code);
    return false;
}

bool err_set(struct err *e, enum err_code code, bool retriable, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(e, code, retriable, NULL, fmt, ap);
    va_end(ap);
    return false;
}

bool err_set_sf(struct err *e, enum err_code code, bool retriable, const char *sf_code,
                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(e, code, retriable, sf_code, fmt, ap);
    va_end(ap);
    return false;
}

void err_clear(struct err *e)
{
    if (!e)
        return;
    memset(e, 0, sizeof *e);
}

const char *err_code_name(enum err_code code)
{
    if ((int)code < 0 || code >= ERR_CODE_COUNT || !names[code])
        return "INTERNAL";
    return names[code];
}

const char *err_public_code(const struct err *e)
{
    if (e->sf_code[0])
        return e->sf_code;
    return err_code_name(e->code);
}
