/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "util/log.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libyang/libyang.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#define VMH_LOG_MAX_TOKENS 16

static struct {
    pthread_mutex_t lock;
    bool foreground;
    bool debug_all;
    char tokens[VMH_LOG_MAX_TOKENS][16];
    int n_tokens;
    vmh_log_sink sink;
    void *sink_opaque;
} vmh_log_state = {.lock = PTHREAD_MUTEX_INITIALIZER, .foreground = true};

static const char *const vmh_log_level_names[] = {
    [VMH_LOG_ERR] = "error",
    [VMH_LOG_WARN] = "warning",
    [VMH_LOG_INFO] = "info",
    [VMH_LOG_DEBUG] = "debug",
};

static const int vmh_log_syslog_prio[] = {
    [VMH_LOG_ERR] = LOG_ERR,
    [VMH_LOG_WARN] = LOG_WARNING,
    [VMH_LOG_INFO] = LOG_INFO,
    [VMH_LOG_DEBUG] = LOG_DEBUG,
};

void
vmh_log_init(const char *ident, bool foreground, const char *debug_tokens)
{
    pthread_mutex_lock(&vmh_log_state.lock);
    vmh_log_state.foreground = foreground;
    vmh_log_state.debug_all = false;
    vmh_log_state.n_tokens = 0;
    if (debug_tokens && *debug_tokens) {
        char buf[256];
        char *save = NULL;

        snprintf(buf, sizeof buf, "%s", debug_tokens);
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (!strcmp(t, "all"))
                vmh_log_state.debug_all = true;
            else if (vmh_log_state.n_tokens < VMH_LOG_MAX_TOKENS)
                snprintf(vmh_log_state.tokens[vmh_log_state.n_tokens++],
                         sizeof vmh_log_state.tokens[0], "%s", t);
        }
    }
    pthread_mutex_unlock(&vmh_log_state.lock);
    if (!foreground)
        openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
vmh_log_set_sink(vmh_log_sink sink, void *opaque)
{
    pthread_mutex_lock(&vmh_log_state.lock);
    vmh_log_state.sink = sink;
    vmh_log_state.sink_opaque = opaque;
    pthread_mutex_unlock(&vmh_log_state.lock);
}

bool
vmh_log_debug_enabled(const char *token)
{
    if (vmh_log_state.debug_all)
        return true;
    for (int i = 0; i < vmh_log_state.n_tokens; i++)
        if (!strcmp(vmh_log_state.tokens[i], token))
            return true;
    return false;
}

void
vmh_logv(enum vmh_log_level level, const char *token, const char *fmt, va_list ap)
{
    char msg[2048];

    if (level == VMH_LOG_DEBUG && !vmh_log_debug_enabled(token))
        return;
    vsnprintf(msg, sizeof msg, fmt, ap);

    pthread_mutex_lock(&vmh_log_state.lock);
    if (vmh_log_state.sink) {
        vmh_log_state.sink(level, token, msg, vmh_log_state.sink_opaque);
    } else if (vmh_log_state.foreground) {
        struct timespec ts;
        struct tm tm;
        char stamp[32];

        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ld %-7s [%s] %s\n", stamp, ts.tv_nsec / 1000000,
                vmh_log_level_names[level], token, msg);
        fflush(stderr);
    } else {
        syslog(vmh_log_syslog_prio[level], "%s [%s] %s", vmh_log_level_names[level], token, msg);
    }
    pthread_mutex_unlock(&vmh_log_state.lock);
}

void
vmh_log(enum vmh_log_level level, const char *token, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vmh_logv(level, token, fmt, ap);
    va_end(ap);
}

static void
vmh_log_libyang_cb(LY_LOG_LEVEL level, const char *msg, const char *path)
{
    enum vmh_log_level l = level == LY_LLERR   ? VMH_LOG_ERR
                           : level == LY_LLWRN ? VMH_LOG_WARN
                           : level == LY_LLVRB ? VMH_LOG_INFO
                                               : VMH_LOG_DEBUG;

    /* libyang reports errors to its caller too; the caller logs them once
     * with context, so libyang's own copy is debug output. */
    if (l == VMH_LOG_ERR)
        l = VMH_LOG_DEBUG;
    if (path)
        vmh_log(l, "libyang", "%s (%s)", msg, path);
    else
        vmh_log(l, "libyang", "%s", msg);
}

void
vmh_log_route_libyang(void)
{
    ly_set_log_clb(vmh_log_libyang_cb, 1);
    ly_log_level(vmh_log_debug_enabled("libyang") ? LY_LLVRB : LY_LLWRN);
}

static void
vmh_log_libvirt_cb(void *opaque, virErrorPtr err)
{
    /* Call sites log libvirt failures once, with virGetLastErrorMessage();
     * this only keeps libvirt from printing on stderr behind our back. */
    if (err && err->message)
        log_debug("libvirt", "%s", err->message);
}

void
vmh_log_route_libvirt(void)
{
    virSetErrorFunc(NULL, vmh_log_libvirt_cb);
}
