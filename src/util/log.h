/* SPDX-License-Identifier: GPL-3.0-or-later */
/* One log sink for the whole agent: stderr when in the foreground, syslog
 * otherwise.  Every line carries the subsystem token that wrote it ("virt",
 * "config", "libyang", ...); debug lines are shown per token. */
#ifndef VMH_UTIL_LOG_H
#define VMH_UTIL_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum vmh_log_level {
    VMH_LOG_ERR,
    VMH_LOG_WARN,
    VMH_LOG_INFO,
    VMH_LOG_DEBUG,
};

/* A test hook: receives every line the filters let through. */
typedef void (*vmh_log_sink)(enum vmh_log_level level, const char *token, const char *msg,
                             void *opaque);

/* debug_tokens: NULL or "" for no debug, "all" for every token, or a comma
 * separated list such as "virt,config". */
void vmh_log_init(const char *ident, bool foreground, const char *debug_tokens);
void vmh_log_set_sink(vmh_log_sink sink, void *opaque);
bool vmh_log_debug_enabled(const char *token);

void vmh_log(enum vmh_log_level level, const char *token, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void vmh_logv(enum vmh_log_level level, const char *token, const char *fmt, va_list ap);

/* Routes libyang's and libvirt's messages into this sink. */
void vmh_log_route_libyang(void);
void vmh_log_route_libvirt(void);

#define log_err(token, ...)  vmh_log(VMH_LOG_ERR, token, __VA_ARGS__)
#define log_warn(token, ...) vmh_log(VMH_LOG_WARN, token, __VA_ARGS__)
#define log_info(token, ...) vmh_log(VMH_LOG_INFO, token, __VA_ARGS__)
#define log_debug(token, ...)                                                                      \
    do {                                                                                           \
        if (vmh_log_debug_enabled(token))                                                          \
            vmh_log(VMH_LOG_DEBUG, token, __VA_ARGS__);                                            \
    } while (0)

#endif
