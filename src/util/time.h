/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Clocks and timestamps. */
#ifndef VMH_UTIL_TIME_H
#define VMH_UTIL_TIME_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds on the monotonic clock, for timers and durations. */
int64_t vmh_time_mono_ms(void);
/* Milliseconds since the epoch, for timestamps that cross restarts. */
int64_t vmh_time_real_ms(void);
/* RFC 3339 / yang:date-and-time in UTC with milliseconds. */
void vmh_time_format(int64_t real_ms, char *buf, size_t len);

#endif
