/*
 * cfg: the environment table. See cfg.h.
 * cfg_table is the single source of truth for names, defaults and help; the
 * README's configuration table is generated from it.
 */
#include "cfg.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

/* Defaults that work on one machine (the rig and the demo). */
const struct cfg_var cfg_table[] = {
    {"SFBRIDGE_PG_DSN", "postgresql://sfbridge@127.0.0.1:5432/sfbridge", "PostgreSQL connection string (libpq URI or key=value)", true},
    {"SFBRIDGE_KAFKA_BROKERS", "127.0.0.1:9092", "Kafka bootstrap servers, comma separated", false},
    {"SFBRIDGE_GROUP_ID", "", "Kafka consumer group; default sfbridge-<worker>, e.g. sfbridge-sync", false},
    {"SFBRIDGE_TOKEN_KEY", "", "base64 of 32 random bytes: AES-256-GCM key for stored OAuth tokens (required by workers that touch tokens)", true},
    {"SFBRIDGE_TOKEN_KEY_ID", "k1", "identifier stored with each encrypted token, for key rotation", false},
    {"SF_CLIENT_ID", "sfbridge-test-client", "Salesforce connected app consumer key", false},
    {"SF_CLIENT_SECRET", "sfbridge-test-secret", "Salesforce connected app consumer secret", true},
    {"SF_LOGIN_URL", "https://login.salesforce.com", "OAuth login host (test.salesforce.com for sandboxes, the emulator in tests)", false},
    {"SF_API_VERSION", "60.0", "Salesforce REST API version", false},
    {"SF_CA_FILE", "", "extra CA bundle (PEM) trusted for Salesforce TLS; empty = system CAs. Verification is always on", false},
    {"SF_TIMEOUT_MS", "60000", "timeout of one Salesforce request, in milliseconds", false},
    {"SFBRIDGE_BULK_THRESHOLD", "50000", "records above which a sync uses a Bulk API 2.0 query job instead of REST query", false},
    {"SFBRIDGE_API_BUDGET_PCT", "80", "percent of an org's daily API limit sfbridge may use before deferring work", false},
    {"SFBRIDGE_DEFER_SECONDS", "900", "how long work deferred by the API budget waits before it is tried again", false},
    {"SFBRIDGE_MAX_BACKOFF_MS", "30000", "cap of the exponential backoff on retriable errors, in milliseconds", false},
    {"SFBRIDGE_LOG_LEVEL", "info", "debug, info, warn or error; logs are JSON lines on stderr", false},
    {"SFBRIDGE_METRICS_ADDR", "", "host:port for /metrics, /healthz, /readyz; empty = off", false},
    {"SFBRIDGE_TOPIC_PREFIX", "", "prefix for every Kafka topic name (several environments on one cluster)", false},
    {NULL, NULL, NULL, false},
};

static const char *env_or_default(const char *name)
{
    const char *v = getenv(name);
    if (v && *v)
        return v;
    for (const struct cfg_var *cv = cfg_table; cv->name; cv++)
        if (strcmp(cv->name, name) == 0)
            return cv->dflt;
    return "";
}

bool cfg_url_allowed(const char *url)
{
    if (!url)
        return false;
    if (strncasecmp(url, "https://", 8) == 0)
        return url[8] != '\0';
    if (strncasecmp(url, "http://", 7) != 0)
        return false;
    const char *h = url + 7;
    size_t n;
    if (*h == '[') {
        n = strcspn(h, "]");
        if (h[n] != ']')
            return false;
        n++;
    } else {
        n = strcspn(h, ":/?#");
    }
    static const char *const loopback[] = {"127.0.0.1", "localhost", "[::1]", NULL};
    for (int i = 0; loopback[i]; i++)
        if (strlen(loopback[i]) == n && strncasecmp(h, loopback[i], n) == 0)
            return h[n] == '\0' || h[n] == ':' || h[n] == '/';
    return false;
}

static bool parse_int(const char *name, int lo, int hi, int *out, int *problems)
{
    const char *v = env_or_default(name);
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || !end || *end || end == v || n < lo || n > hi) {
        log_error("invalid configuration %s=\"%s\": must be an integer between %d and %d", name, v, lo, hi);
        (*problems)++;
        return false;
    }
    *out = (int)n;
    return true;
}

bool cfg_load(struct cfg *c)
{
    int problems = 0;
    memset(c, 0, sizeof *c);
    c->pg_dsn = env_or_default("SFBRIDGE_PG_DSN");
    c->kafka_brokers = env_or_default("SFBRIDGE_KAFKA_BROKERS");
    c->group_id = env_or_default("SFBRIDGE_GROUP_ID");
    c->token_key = env_or_default("SFBRIDGE_TOKEN_KEY");
    c->token_key_id = env_or_default("SFBRIDGE_TOKEN_KEY_ID");
    c->sf_client_id = env_or_default("SF_CLIENT_ID");
    c->sf_client_secret = env_or_default("SF_CLIENT_SECRET");
    c->sf_login_url = env_or_default("SF_LOGIN_URL");
    c->sf_api_version = env_or_default("SF_API_VERSION");
    c->sf_ca_file = env_or_default("SF_CA_FILE");
    c->log_level = env_or_default("SFBRIDGE_LOG_LEVEL");
    c->metrics_addr = env_or_default("SFBRIDGE_METRICS_ADDR");
    c->topic_prefix = env_or_default("SFBRIDGE_TOPIC_PREFIX");
    parse_int("SF_TIMEOUT_MS", 100, 600000, &c->sf_timeout_ms, &problems);
    parse_int("SFBRIDGE_BULK_THRESHOLD", 1, INT_MAX, &c->bulk_threshold, &problems);
    parse_int("SFBRIDGE_API_BUDGET_PCT", 1, 100, &c->api_budget_share, &problems);
    parse_int("SFBRIDGE_MAX_BACKOFF_MS", 10, 3600000, &c->max_retry_backoff_ms, &problems);
    parse_int("SFBRIDGE_DEFER_SECONDS", 1, 86400, &c->defer_seconds, &problems);

    if (log_level_parse(c->log_level) < 0) {
        log_error("invalid configuration SFBRIDGE_LOG_LEVEL=\"%s\": must be debug, info, warn or error",
                  c->log_level);
        problems++;
    }
    if (!*c->kafka_brokers) {
        log_error("invalid configuration SFBRIDGE_KAFKA_BROKERS: must not be empty");
        problems++;
    }
    if (!cfg_url_allowed(c->sf_login_url)) {
        log_error("invalid configuration SF_LOGIN_URL=\"%s\": must be https:// (plain http only for a "
                  "local emulator on 127.0.0.1/localhost)",
                  c->sf_login_url);
        problems++;
    }
    const char *v = c->sf_api_version;
    char *end = NULL;
    double ver = strtod(v, &end);
    if (!end || *end || ver < 40.0 || ver > 99.0 || !strchr(v, '.')) {
        log_error("invalid configuration SF_API_VERSION=\"%s\": must look like 60.0", v);
        problems++;
    }
    if (*c->metrics_addr && !strchr(c->metrics_addr, ':')) {
        log_error("invalid configuration SFBRIDGE_METRICS_ADDR=\"%s\": must be host:port", c->metrics_addr);
        problems++;
    }
    return problems == 0;
}

const char *const cfg_input_topics[] = {"sync.requested", "record.write", "token.refresh", NULL};
const char *const cfg_output_topics[] = {"sync.completed", "sync.progress", "record.written", "token.refreshed",
                                         "connection.status", NULL};

const char *cfg_topic(const struct cfg *c, const char *logical, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s", c && c->topic_prefix ? c->topic_prefix : "", logical);
    return buf;
}

void cfg_load_or_exit(struct cfg *c)
{
    if (!cfg_load(c)) {
        log_error("cannot start: fix the configuration problems above");
        exit(78);
    }
    log_init(NULL, c->log_level);
}

void cfg_print_markdown(void)
{
    printf("| Variable | Default | Description |\n|---|---|---|\n");
    for (const struct cfg_var *cv = cfg_table; cv->name; cv++) {
        const char *d = cv->dflt && *cv->dflt ? cv->dflt : "(empty)";
        if (cv->secret && strcmp(cv->name, "SFBRIDGE_PG_DSN") != 0 && *cv->dflt)
            d = "(test value; set in production)";
        printf("| `%s` | `%s` | %s |\n", cv->name, d, cv->description);
    }
}
