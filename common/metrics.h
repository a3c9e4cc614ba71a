/*
 * metrics: Prometheus text exposition plus /healthz and /readyz, served by a
 * libmicrohttpd thread on SFBRIDGE_METRICS_ADDR. Counters, gauges and one
 * latency histogram family, each with a single label value (topic, org or
 * error code). Thread-safe (one mutex); all names and labels are copied.
 * When no address is configured the functions still count (cheaply) and
 * nothing is served.
 */
#ifndef SFBRIDGE_METRICS_H
#define SFBRIDGE_METRICS_H

#include <stdbool.h>

/* Start serving on "host:port" (empty/NULL = don't serve). `proc` is borrowed. */
bool metrics_start(const char *addr, const char *proc);
void metrics_stop(void);
void metrics_set_ready(bool ready);

/* name{label="value"} += n. The label name is chosen from the metric name:
 * *_by_code -> code, *org* -> org, otherwise topic. */
void metrics_count(const char *name, const char *label, double n);
void metrics_gauge(const char *name, const char *label, double value);
/* Histogram (seconds) observation, given in milliseconds. */
void metrics_observe_ms(const char *name, const char *label, long long ms);

/* The same with an explicit label name, e.g.
 *   metrics_count_l("sfbridge_sf_calls_total", "endpoint", "query", 1);
 *   metrics_gauge_l("sfbridge_api_usage_ratio", "sf_org", "00D...", 0.42);
 * One metric name should always be used with the same label name. */
void metrics_count_l(const char *name, const char *label_name, const char *label, double n);
void metrics_gauge_l(const char *name, const char *label_name, const char *label, double value);
void metrics_observe_ms_l(const char *name, const char *label_name, const char *label, long long ms);

/* Current value of a counter/gauge (a histogram's count); 0 when absent. For tests. */
double metrics_value(const char *name, const char *label);

/* Render the exposition text into a new string (caller frees). For tests. */
char *metrics_render(void);

#endif
