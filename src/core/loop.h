/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The engine's thread: libvirt's default event loop (GLib based in libvirt
 * 9) runs in one thread and carries libvirt's events, the engine's timers
 * and work posted from other threads.  Everything that touches engine state
 * runs here. */
#ifndef VMH_CORE_LOOP_H
#define VMH_CORE_LOOP_H

#include <stdbool.h>

struct vmh_loop;
typedef void (*vmh_loop_fn)(void *data);

/* Registers libvirt's default event implementation; must come before the
 * first libvirt connection is opened. */
int vmh_loop_new(struct vmh_loop **loop);
int vmh_loop_start(struct vmh_loop *loop);
/* Stops the thread and runs what is still queued; callable from any thread
 * but the loop's. */
void vmh_loop_stop(struct vmh_loop *loop);
void vmh_loop_free(struct vmh_loop *loop);
bool vmh_loop_on_thread(const struct vmh_loop *loop);

/* Runs fn(data) on the loop thread, in posting order.  Thread-safe. */
void vmh_loop_post(struct vmh_loop *loop, vmh_loop_fn fn, void *data);

/* Runs fn(data) on the loop thread and waits until it returned.  Must not
 * be called from the loop thread. */
void vmh_loop_call(struct vmh_loop *loop, vmh_loop_fn fn, void *data);

/* Timers, added and removed on the loop thread.  A one-shot timer removes
 * itself before fn runs; free_fn (may be NULL) releases data either when the
 * timer has fired or when it is cancelled. */
int vmh_loop_timer_once(struct vmh_loop *loop, int ms, vmh_loop_fn fn, void *data,
                        vmh_loop_fn free_fn);
int vmh_loop_timer_every(struct vmh_loop *loop, int ms, vmh_loop_fn fn, void *data);
void vmh_loop_timer_cancel(int id);

/* Watches a file descriptor for input on the loop thread. */
int vmh_loop_watch_fd(struct vmh_loop *loop, int fd, vmh_loop_fn fn, void *data);
void vmh_loop_unwatch_fd(int watch);

#endif
