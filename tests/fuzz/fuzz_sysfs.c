/* SPDX-License-Identifier: GPL-3.0-or-later */
/* sysfs value parsing and the detection rules fed from it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/monitor.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[80];
    long long v;
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    static struct vmh_ce_window w;
    static int64_t t;

    memcpy(text, data, n);
    text[n] = '\0';
    if (vmh_sysfs_parse_long(text, &v) == 0) {
        double rate = vmh_detect_ce_rate(&w, t += 1000, (uint64_t)v);

        if (rate < 0)
            abort();
        vmh_detect_temperature(VMH_TEMP_HIGH, (double)v / 1000.0, true, 80, true, 95, 3);
    }
    return 0;
}
