/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "core/loop.h"

#include "util/log.h"

#include <errno.h>
#include <glib.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct vmh_loop {
    pthread_t thread;
    bool started;
    volatile bool quit;
    int efd;
    int efd_watch;
    GAsyncQueue *queue;
};

struct vmh_loop_item {
    vmh_loop_fn fn;
    void *data;
    vmh_loop_fn free_fn;
    int timer;
};

static pthread_t vmh_loop_tid;
static bool vmh_loop_tid_set;

static void
vmh_loop_drain(struct vmh_loop *loop)
{
    struct vmh_loop_item *item;

    while ((item = g_async_queue_try_pop(loop->queue))) {
        item->fn(item->data);
        free(item);
    }
}

static void
vmh_loop_efd_cb(int watch, int fd, int events, void *opaque)
{
    struct vmh_loop *loop = opaque;
    uint64_t n;

    if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
        log_warn("loop", "reading the wake-up eventfd: %s", strerror(errno));
    vmh_loop_drain(loop);
}

int
vmh_loop_new(struct vmh_loop **out)
{
    struct vmh_loop *loop;

    if (virEventRegisterDefaultImpl() < 0) {
        log_err("loop", "cannot register libvirt's event loop: %s", virGetLastErrorMessage());
        return -1;
    }
    loop = calloc(1, sizeof *loop);
    if (!loop)
        return -ENOMEM;
    loop->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->efd < 0) {
        log_err("loop", "eventfd: %s", strerror(errno));
        free(loop);
        return -errno;
    }
    loop->queue = g_async_queue_new();
    loop->efd_watch =
        virEventAddHandle(loop->efd, VIR_EVENT_HANDLE_READABLE, vmh_loop_efd_cb, loop, NULL);
    if (loop->efd_watch < 0) {
        log_err("loop", "cannot watch the wake-up eventfd");
        vmh_loop_free(loop);
        return -1;
    }
    *out = loop;
    return 0;
}

static void *
vmh_loop_thread(void *opaque)
{
    struct vmh_loop *loop = opaque;

    while (!loop->quit) {
        if (virEventRunDefaultImpl() < 0)
            log_warn("loop", "event loop iteration failed: %s", virGetLastErrorMessage());
    }
    return NULL;
}

int
vmh_loop_start(struct vmh_loop *loop)
{
    int rc = pthread_create(&loop->thread, NULL, vmh_loop_thread, loop);

    if (rc) {
        log_err("loop", "cannot start the event thread: %s", strerror(rc));
        return -rc;
    }
    vmh_loop_tid = loop->thread;
    vmh_loop_tid_set = true;
    loop->started = true;
    return 0;
}

static void
vmh_loop_noop(void *data)
{
}

void
vmh_loop_stop(struct vmh_loop *loop)
{
    if (!loop || !loop->started)
        return;
    loop->quit = true;
    vmh_loop_post(loop, vmh_loop_noop, NULL);
    pthread_join(loop->thread, NULL);
    loop->started = false;
    vmh_loop_tid_set = false;
    vmh_loop_drain(loop);
}

void
vmh_loop_free(struct vmh_loop *loop)
{
    if (!loop)
        return;
    vmh_loop_stop(loop);
    if (loop->efd_watch >= 0)
        virEventRemoveHandle(loop->efd_watch);
    if (loop->queue)
        g_async_queue_unref(loop->queue);
    if (loop->efd >= 0)
        close(loop->efd);
    free(loop);
}

bool
vmh_loop_on_thread(const struct vmh_loop *loop)
{
    return vmh_loop_tid_set && pthread_equal(pthread_self(), vmh_loop_tid);
}

void
vmh_loop_post(struct vmh_loop *loop, vmh_loop_fn fn, void *data)
{
    struct vmh_loop_item *item = calloc(1, sizeof *item);
    uint64_t one = 1;

    if (!item) {
        log_err("loop", "out of memory posting work to the engine");
        abort();
    }
    item->fn = fn;
    item->data = data;
    g_async_queue_push(loop->queue, item);
    if (write(loop->efd, &one, sizeof one) < 0 && errno != EAGAIN)
        log_warn("loop", "waking the event thread: %s", strerror(errno));
}

struct vmh_loop_call {
    vmh_loop_fn fn;
    void *data;
    GMutex lock;
    GCond cond;
    bool done;
};

static void
vmh_loop_call_cb(void *opaque)
{
    struct vmh_loop_call *call = opaque;

    call->fn(call->data);
    g_mutex_lock(&call->lock);
    call->done = true;
    g_cond_signal(&call->cond);
    g_mutex_unlock(&call->lock);
}

void
vmh_loop_call(struct vmh_loop *loop, vmh_loop_fn fn, void *data)
{
    struct vmh_loop_call call = {.fn = fn, .data = data};

    if (vmh_loop_on_thread(loop) || !loop->started) {
        fn(data);
        return;
    }
    g_mutex_init(&call.lock);
    g_cond_init(&call.cond);
    vmh_loop_post(loop, vmh_loop_call_cb, &call);
    g_mutex_lock(&call.lock);
    while (!call.done)
        g_cond_wait(&call.cond, &call.lock);
    g_mutex_unlock(&call.lock);
    g_mutex_clear(&call.lock);
    g_cond_clear(&call.cond);
}

static void
vmh_loop_timer_once_cb(int timer, void *opaque)
{
    struct vmh_loop_item *item = opaque;
    vmh_loop_fn fn = item->fn;
    vmh_loop_fn free_fn = item->free_fn;
    void *data = item->data;

    /* Removing the timer frees item, now or later: take what is needed and
     * keep its free function from releasing data before fn has run. */
    item->free_fn = NULL;
    virEventRemoveTimeout(timer);
    fn(data);
    if (free_fn)
        free_fn(data);
}

static void
vmh_loop_item_free(void *opaque)
{
    struct vmh_loop_item *item = opaque;

    if (item->free_fn)
        item->free_fn(item->data);
    free(item);
}

int
vmh_loop_timer_once(struct vmh_loop *loop, int ms, vmh_loop_fn fn, void *data, vmh_loop_fn free_fn)
{
    struct vmh_loop_item *item = calloc(1, sizeof *item);
    int id;

    if (!item)
        return -ENOMEM;
    item->fn = fn;
    item->data = data;
    item->free_fn = free_fn;
    id = virEventAddTimeout(ms < 0 ? 0 : ms, vmh_loop_timer_once_cb, item, vmh_loop_item_free);
    if (id < 0) {
        log_err("loop", "cannot add a timer");
        free(item);
    }
    return id;
}

static void
vmh_loop_timer_every_cb(int timer, void *opaque)
{
    struct vmh_loop_item *item = opaque;

    item->fn(item->data);
}

int
vmh_loop_timer_every(struct vmh_loop *loop, int ms, vmh_loop_fn fn, void *data)
{
    struct vmh_loop_item *item = calloc(1, sizeof *item);
    int id;

    if (!item)
        return -ENOMEM;
    item->fn = fn;
    item->data = data;
    id = virEventAddTimeout(ms, vmh_loop_timer_every_cb, item, free);
    if (id < 0) {
        log_err("loop", "cannot add a timer");
        free(item);
    }
    return id;
}

void
vmh_loop_timer_cancel(int id)
{
    if (id >= 0)
        virEventRemoveTimeout(id);
}

static void
vmh_loop_fd_cb(int watch, int fd, int events, void *opaque)
{
    struct vmh_loop_item *item = opaque;

    item->fn(item->data);
}

int
vmh_loop_watch_fd(struct vmh_loop *loop, int fd, vmh_loop_fn fn, void *data)
{
    struct vmh_loop_item *item = calloc(1, sizeof *item);
    int id;

    if (!item)
        return -ENOMEM;
    item->fn = fn;
    item->data = data;
    id = virEventAddHandle(fd, VIR_EVENT_HANDLE_READABLE, vmh_loop_fd_cb, item, free);
    if (id < 0) {
        log_err("loop", "cannot watch descriptor %d", fd);
        free(item);
    }
    return id;
}

void
vmh_loop_unwatch_fd(int watch)
{
    if (watch >= 0)
        virEventRemoveHandle(watch);
}
