/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The monitor's decision rules: pure functions of their inputs. */
#include "monitor/monitor.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum vmh_temp_level
vmh_detect_temperature(enum vmh_temp_level prev, double value, bool has_high, double high,
                       bool has_critical, double critical, double hysteresis)
{
    if (has_critical && value > critical)
        return VMH_TEMP_CRITICAL;
    if (prev == VMH_TEMP_CRITICAL && has_critical && value >= critical - hysteresis)
        return VMH_TEMP_CRITICAL;
    if (has_high && value > high)
        return VMH_TEMP_HIGH;
    if (prev != VMH_TEMP_NORMAL && has_high && value >= high - hysteresis)
        return VMH_TEMP_HIGH;
    return VMH_TEMP_NORMAL;
}

double
vmh_detect_ce_rate(struct vmh_ce_window *w, int64_t now_ms, uint64_t count)
{
    int last = (w->head + w->len - 1) % VMH_CE_MAX_SAMPLES;
    int64_t span;

    if (w->len && count < w->count[last])
        w->len = 0; /* the counter was reset: a new baseline, not errors */
    /* Forget samples that left the window, and the oldest when full. */
    while (w->len &&
           (now_ms - w->t_ms[w->head] > VMH_CE_WINDOW_MS || w->len == VMH_CE_MAX_SAMPLES)) {
        w->head = (w->head + 1) % VMH_CE_MAX_SAMPLES;
        w->len--;
    }
    last = (w->head + w->len) % VMH_CE_MAX_SAMPLES;
    w->t_ms[last] = now_ms;
    w->count[last] = count;
    w->len++;
    if (w->len < 2)
        return 0;
    span = now_ms - w->t_ms[w->head];
    if (span < VMH_CE_MIN_SPAN_MS)
        span = VMH_CE_MIN_SPAN_MS;
    return (double)(count - w->count[w->head]) * 3600000.0 / (double)span;
}

int
vmh_sysfs_parse_long(const char *text, long long *value)
{
    const char *p = text;
    char *end = NULL;
    long long v;

    if (!text)
        return -1;
    if (*p == '-' || *p == '+')
        p++;
    if (!isdigit((unsigned char)*p))
        return -1;
    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno)
        return -1;
    if (*end == '\n')
        end++;
    if (*end)
        return -1;
    *value = v;
    return 0;
}
