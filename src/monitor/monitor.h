/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Host sensors read from sysfs: hwmon temperatures and alarm/fault flags,
 * EDAC memory error counters.  Polled on the loop thread every
 * settings/poll-interval (local sysfs reads do not block); every host is read
 * under its own sysfs-root, so tests and the demo use fixture trees.  What
 * crosses a threshold becomes an engine fault. */
#ifndef VMH_MONITOR_MONITOR_H
#define VMH_MONITOR_MONITOR_H

#include "core/engine.h"
#include "core/loop.h"

#include <stdbool.h>
#include <stdint.h>

struct vmh_monitor;

/* Loop thread.  Starts polling at once, then every poll-interval, following
 * configuration changes (hosts, roots, thresholds, interval) by itself. */
struct vmh_monitor *vmh_monitor_new(struct vmh_loop *loop, struct vmh_engine *engine);
void vmh_monitor_free(struct vmh_monitor *mon);
void vmh_monitor_poll(struct vmh_monitor *mon);

/* --- detection rules, pure, unit-tested alone --- */

enum vmh_temp_level {
    VMH_TEMP_NORMAL,
    VMH_TEMP_HIGH,
    VMH_TEMP_CRITICAL,
};

/* Raised above a threshold, cleared only below the threshold minus the
 * hysteresis, so that a value hovering at a threshold raises and clears
 * once. */
enum vmh_temp_level vmh_detect_temperature(enum vmh_temp_level prev, double value, bool has_high,
                                           double high, bool has_critical, double critical,
                                           double hysteresis);

/* Correctable-error rate over a sliding window of up to one hour. */
#define VMH_CE_WINDOW_MS   (3600 * 1000LL)
#define VMH_CE_MIN_SPAN_MS (60 * 1000LL)
#define VMH_CE_MAX_SAMPLES 512

struct vmh_ce_window {
    int64_t t_ms[VMH_CE_MAX_SAMPLES];
    uint64_t count[VMH_CE_MAX_SAMPLES];
    int head, len;
};

/* Adds a sample and returns the rate in errors per hour.  The span is taken
 * as at least VMH_CE_MIN_SPAN_MS so that one burst right after start does
 * not extrapolate to an absurd rate.  A counter that went down (driver
 * reload) restarts the window and reads as 0. */
double vmh_detect_ce_rate(struct vmh_ce_window *w, int64_t now_ms, uint64_t count);

/* Parses a sysfs value: an optionally signed decimal integer, optionally
 * followed by a newline.  Returns 0, or -1 for anything else (empty,
 * garbage, out of range). */
int vmh_sysfs_parse_long(const char *text, long long *value);

#endif
