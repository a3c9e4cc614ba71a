/*
 * log: JSON lines on stderr with secret redaction. See log.h.
 * The level and process name are set once at start-up (read-only after).
 */
#include "log.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *log_proc = "sfbridge";
static int log_threshold = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int log_level_parse(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    if (strcasecmp(name, "warning") == 0)
        return LOG_WARN;
    return -1;
}

void log_init(const char *proc, const char *level)
{
    if (proc)
        log_proc = proc;
    int l = log_level_parse(level);
    if (l >= 0)
        log_threshold = l;
}

static void mask(char *p, size_t n)
{
    static const char tag[] = "[REDACTED]";
    size_t tl = sizeof tag - 1;
    if (n >= tl) {
        memcpy(p, tag, tl);
        memmove(p + tl, p + n, strlen(p + n) + 1);
    } else {
        memset(p, '*', n);
    }
}

static bool tokchar(char c)
{
    return isalnum((unsigned char)c) || c == '!' || c == '.' || c == '_' || c == '-' || c == '+' ||
           c == '/' || c == '=' || c == '%';
}

/* Mask the value following `key` in "key":"value", key=value or key: value. */
static void redact_key(char *s, const char *key)
{
    size_t kl = strlen(key);
    char *p = s;
    while ((p = strcasestr(p, key)) != NULL) {
        char *v = p + kl;
        if (*v == '"' || *v == '\\')
            v++;
        while (*v == '\\' || *v == '"')
            v++;
        while (*v == ' ')
            v++;
        if (*v != ':' && *v != '=') {
            p += kl;
            continue;
        }
        v++;
        while (*v == ' ' || *v == '"' || *v == '\\')
            v++;
        char *end = v;
        while (*end && tokchar(*end))
            end++;
        if (end > v)
            mask(v, (size_t)(end - v));
        p = v + 1;
        if (!*v)
            break;
    }
}

void log_redact(char *s, size_t cap)
{
    (void)cap;
    static const char *const keys[] = {"access_token", "refresh_token", "client_secret", "code_verifier",
                                       "password", "authorization", "token", "\"code", "&code", "?code",
                                       NULL};
    for (int i = 0; keys[i]; i++)
        redact_key(s, keys[i]);
    /* Bearer <token> */
    char *p = s;
    while ((p = strcasestr(p, "bearer ")) != NULL) {
        char *v = p + 7;
        char *end = v;
        while (*end && tokchar(*end))
            end++;
        if (end > v)
            mask(v, (size_t)(end - v));
        p = v;
    }
    /* Salesforce access tokens: 15 or 18 char org id starting 00D, then '!' */
    for (p = s; *p; p++) {
        if (p[0] == '0' && p[1] == '0' && p[2] == 'D') {
            char *bang = p + 3;
            while (isalnum((unsigned char)*bang) && bang - p < 18)
                bang++;
            if (*bang == '!') {
                char *end = bang + 1;
                while (*end && tokchar(*end))
                    end++;
                mask(p, (size_t)(end - p));
            }
        }
        /* refresh tokens start with 5Aep */
        if (strncmp(p, "5Aep", 4) == 0 && (p == s || !tokchar(p[-1]))) {
            char *end = p;
            while (*end && tokchar(*end))
                end++;
            if (end - p > 12)
                mask(p, (size_t)(end - p));
        }
    }
}

static void json_escape_into(char *out, size_t cap, const char *in)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 7 < cap; p++) {
        switch (*p) {
        case '"':
            out[o++] = '\\';
            out[o++] = '"';
            break;
        case '\\':
            out[o++] = '\\';
            out[o++] = '\\';
            break;
        case '\n':
            out[o++] = '\\';
            out[o++] = 'n';
            break;
        case '\r':
            out[o++] = '\\';
            out[o++] = 'r';
            break;
        case '\t':
            out[o++] = '\\';
            out[o++] = 't';
            break;
        default:
            if (*p < 0x20)
                o += (size_t)snprintf(out + o, cap - o, "\\u%04x", *p);
            else
                out[o++] = (char)*p;
        }
    }
    out[o] = '\0';
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    if ((int)lvl < log_threshold)
        return;
    char msg[2048], esc[4200], line[4400], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_redact(msg, sizeof msg);
    json_escape_into(esc, sizeof esc, msg);

    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", now.tv_nsec / 1000000);
    snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"proc\":\"%s\",\"msg\":\"%s\"}\n", ts,
             level_names[lvl], log_proc, esc);
    fputs(line, stderr);
}
