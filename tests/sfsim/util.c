/*
 * util: growable buffers, date/time, Salesforce ids, HMAC/base64 and small
 * string helpers for the emulator. No shared state; all thread-safe.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "simint.h"

/* ---------------------------------------------------------------- buffer */
static void buf_grow(struct sim_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        abort(); /* a test tool: out of memory is fatal */
    b->p = p;
    b->cap = cap;
}

void sim_buf_put(struct sim_buf *b, const void *data, size_t n)
{
    buf_grow(b, n);
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void sim_buf_puts(struct sim_buf *b, const char *s) { sim_buf_put(b, s, strlen(s)); }

void sim_buf_putc(struct sim_buf *b, char c)
{
    buf_grow(b, 1);
    b->p[b->len++] = c;
    b->p[b->len] = '\0';
}

void sim_buf_printf(struct sim_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        sim_buf_put(b, tmp, (size_t)n);
        return;
    }
    buf_grow(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sim_buf_json_str(struct sim_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (!s) {
        sim_buf_put(b, "null", 4);
        return;
    }
    size_t n = strlen(s);
    buf_grow(b, n + 2);
    b->p[b->len++] = '"';
    const char *run = s;
    for (const char *c = s; *c; c++) {
        unsigned char u = (unsigned char)*c;
        if (u >= 0x20 && u != '"' && u != '\\')
            continue;
        sim_buf_put(b, run, (size_t)(c - run));
        run = c + 1;
        char esc[8] = {'\\', 0};
        size_t el = 2;
        switch (u) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[u >> 4];
            esc[5] = hex[u & 15];
            el = 6;
        }
        sim_buf_put(b, esc, el);
    }
    sim_buf_put(b, run, strlen(run));
    sim_buf_putc(b, '"');
}

void sim_buf_num(struct sim_buf *b, double d)
{
    char tmp[40];
    if (!isfinite(d)) {
        sim_buf_puts(b, "null");
        return;
    }
    if (d == floor(d) && fabs(d) < 1e15) {
        snprintf(tmp, sizeof tmp, "%.1f", d);
    } else {
        snprintf(tmp, sizeof tmp, "%.15g", d);
        if (strtod(tmp, NULL) != d)
            snprintf(tmp, sizeof tmp, "%.17g", d);
    }
    sim_buf_puts(b, tmp);
}

char *sim_buf_take(struct sim_buf *b, size_t *len)
{
    buf_grow(b, 0);
    b->p[b->len] = '\0'; /* a never-written buffer has no terminator yet */
    char *p = b->p;
    if (len)
        *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

void sim_buf_free(struct sim_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---------------------------------------------------------------- time */
int64_t sim_days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void sim_civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yy + (*m <= 2));
}

static int64_t floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

void sim_fmt_datetime(int64_t ms, char out[32])
{
    int64_t days = floordiv(ms, 86400000);
    int64_t rem = ms - days * 86400000;
    int y, m, d;
    sim_civil_from_days(days, &y, &m, &d);
    int hh = (int)(rem / 3600000), mi = (int)(rem / 60000 % 60),
        ss = (int)(rem / 1000 % 60), mss = (int)(rem % 1000);
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03d+0000", y, m, d, hh, mi,
             ss, mss);
}

void sim_fmt_date(int64_t days, char out[16])
{
    int y, m, d;
    sim_civil_from_days(days, &y, &m, &d);
    snprintf(out, 16, "%04d-%02d-%02d", y, m, d);
}

static bool digits(const char *s, size_t len, size_t at, size_t n, int *v)
{
    if (at + n > len)
        return false;
    int x = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[at + i]))
            return false;
        x = x * 10 + (s[at + i] - '0');
    }
    *v = x;
    return true;
}

bool sim_parse_date(const char *s, size_t len, int64_t *days, size_t *used)
{
    int y, m, d;
    if (!digits(s, len, 0, 4, &y) || len < 10 || s[4] != '-' ||
        !digits(s, len, 5, 2, &m) || s[7] != '-' || !digits(s, len, 8, 2, &d))
        return false;
    if (m < 1 || m > 12 || d < 1 || d > 31)
        return false;
    *days = sim_days_from_civil(y, m, d);
    if (used)
        *used = 10;
    return true;
}

bool sim_parse_datetime(const char *s, size_t len, int64_t *ms, size_t *used)
{
    int64_t days;
    int hh, mi, ss = 0, frac = 0;
    if (!sim_parse_date(s, len, &days, NULL) || len < 16 ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' '))
        return false;
    if (!digits(s, len, 11, 2, &hh) || s[13] != ':' || !digits(s, len, 14, 2, &mi))
        return false;
    size_t p = 16;
    if (p < len && s[p] == ':') {
        if (!digits(s, len, p + 1, 2, &ss))
            return false;
        p += 3;
        if (p < len && s[p] == '.') {
            p++;
            int nd = 0;
            while (p < len && isdigit((unsigned char)s[p])) {
                if (nd < 3)
                    frac = frac * 10 + (s[p] - '0');
                nd++;
                p++;
            }
            if (nd == 0)
                return false;
            for (; nd < 3; nd++)
                frac *= 10;
        }
    }
    if (hh > 23 || mi > 59 || ss > 60)
        return false;
    int64_t off = 0;
    if (p < len && (s[p] == 'Z' || s[p] == 'z')) {
        p++;
    } else if (p < len && (s[p] == '+' || s[p] == '-')) {
        int oh, om;
        int sign = s[p] == '-' ? -1 : 1;
        if (!digits(s, len, p + 1, 2, &oh))
            return false;
        p += 3;
        if (p < len && s[p] == ':')
            p++;
        if (!digits(s, len, p, 2, &om))
            return false;
        p += 2;
        off = sign * (oh * 3600000LL + om * 60000LL);
    } else {
        return false; /* SOQL and the REST API want an explicit zone */
    }
    *ms = days * 86400000LL + hh * 3600000LL + mi * 60000LL + ss * 1000LL + frac -
          off;
    if (used)
        *used = p;
    return true;
}

int64_t sim_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------- ids */
static const char b62[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

void sim_id_checksum(const char *id15, char out[3])
{
    static const char map[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    for (int c = 0; c < 3; c++) {
        int v = 0;
        for (int i = 0; i < 5; i++) {
            char ch = id15[c * 5 + i];
            if (ch >= 'A' && ch <= 'Z')
                v |= 1 << i;
        }
        out[c] = map[v];
    }
}

void sim_id_make(const char *prefix, uint64_t n, char out[19])
{
    memcpy(out, prefix, 3);
    memcpy(out + 3, "Hs0", 3);
    for (int i = 14; i >= 6; i--) {
        out[i] = b62[n % 62];
        n /= 62;
    }
    sim_id_checksum(out, out + 15);
    out[18] = '\0';
}

bool sim_id_to18(const char *in, char out[19])
{
    size_t n = in ? strlen(in) : 0;
    if (n != 15 && n != 18)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)in[i]))
            return false;
    char ck[3];
    sim_id_checksum(in, ck);
    if (n == 18) {
        /* the suffix is case-insensitive in Salesforce */
        for (int i = 0; i < 3; i++)
            if (toupper((unsigned char)in[15 + i]) != ck[i])
                return false;
    }
    memcpy(out, in, 15);
    memcpy(out + 15, ck, 3);
    out[18] = '\0';
    return true;
}

bool sim_id_decode(const char *id18, char prefix[4], uint64_t *n)
{
    if (strlen(id18) != 18 || memcmp(id18 + 3, "Hs0", 3) != 0)
        return false;
    uint64_t v = 0;
    for (int i = 6; i < 15; i++) {
        const char *p = strchr(b62, id18[i]);
        if (!p || !*p)
            return false;
        v = v * 62 + (uint64_t)(p - b62);
    }
    memcpy(prefix, id18, 3);
    prefix[3] = '\0';
    *n = v;
    return true;
}

/* ---------------------------------------------------------------- misc */
void sim_b64(const unsigned char *in, size_t n, bool url, char *out, size_t outsz)
{
    static const char std[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char urls[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *t = url ? urls : std;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        char q[4] = {t[(v >> 18) & 63], t[(v >> 12) & 63], t[(v >> 6) & 63], t[v & 63]};
        size_t k = 4;
        if (i + 1 >= n) {
            q[2] = q[3] = '=';
            k = url ? 2 : 4;
        } else if (i + 2 >= n) {
            q[3] = '=';
            k = url ? 3 : 4;
        }
        for (size_t j = 0; j < k && o + 1 < outsz; j++)
            out[o++] = q[j];
    }
    if (outsz)
        out[o < outsz ? o : outsz - 1] = '\0';
}

void sim_hmac_b64(const char *key, const char *msg, char out[64])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)msg,
         strlen(msg), mac, &ml);
    sim_b64(mac, ml, false, out, 64);
}

void sim_s256_b64url(const char *in, char out[64])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)in, strlen(in), md);
    sim_b64(md, sizeof md, true, out, 64);
}

void sim_rand_alnum(char *out, size_t n)
{
    unsigned char r[256];
    size_t done = 0;
    while (done < n) {
        size_t k = n - done < sizeof r ? n - done : sizeof r;
        if (RAND_bytes(r, (int)k) != 1)
            abort();
        for (size_t i = 0; i < k; i++)
            out[done + i] = b62[r[i] % 62];
        done += k;
    }
    out[n] = '\0';
}

uint64_t sim_rng(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

size_t sim_url_decode(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '+') {
            *o++ = ' ';
        } else if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
            *o++ = (char)(hexval(p[1]) * 16 + hexval(p[2]));
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return (size_t)(o - s);
}

char *sim_form_get(const char *body, const char *key)
{
    if (!body)
        return NULL;
    size_t kl = strlen(key);
    const char *p = body;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t seg = amp ? (size_t)(amp - p) : strlen(p);
        if (seg > kl && memcmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t vl = seg - kl - 1;
            char *v = malloc(vl + 1);
            if (!v)
                abort();
            memcpy(v, p + kl + 1, vl);
            v[vl] = '\0';
            sim_url_decode(v);
            return v;
        }
        if (seg == kl && memcmp(p, key, kl) == 0) {
            char *v = calloc(1, 1);
            if (!v)
                abort();
            return v;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return NULL;
}

bool sim_strieq(const char *a, const char *b) { return strcasecmp(a, b) == 0; }

bool sim_strnieq(const char *a, const char *b, size_t n)
{
    return strncasecmp(a, b, n) == 0;
}

void sim_err_set(struct sim_err *e, int status, const char *code,
                 const char *field, const char *fmt, ...)
{
    if (e->status)
        return;
    e->status = status;
    snprintf(e->code, sizeof e->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->nfields = 0;
    if (field) {
        snprintf(e->fields[0], sizeof e->fields[0], "%s", field);
        e->nfields = 1;
    }
}
