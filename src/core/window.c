/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The preprocessing window of a VM: the lead time its VNF manager chose
 * (the VM's effective preprocessing time, config.c and policy.c) between
 * the first word of a fault (vm-abnormal) and the start of its cold
 * migration, during which the manager moves the VM's traffic away.
 *
 * Everything a window goes through is here:
 *   opens      on the first fault that touches the VM (vmh_window_open): the
 *              deadline is now + its preprocessing time, its case becomes
 *              pending; later faults keep the window as it is;
 *   re-armed   after a restart, from the journal, with its original deadline
 *              (vmh_window_resume); a changed preprocessing time applies to
 *              windows not yet opened, a running window keeps its deadline;
 *   ends early on migration-ready from its manager or migrate-vm from an
 *              operator (vmh_window_end, from vmh_mig_request);
 *   cancelled  when its faults clear and cancel-on-clear is set
 *              (vmh_window_faults_cleared);
 *   times out  at the deadline (vmh_window_timeout): the case asks for its
 *              migration (vmh_mig_request).
 * A migrate-vm on a VM without a fault gets a case whose window is over
 * before it began (vmh_window_skip). */
#include "core/engine_priv.h"
#include "util/log.h"
#include "util/time.h"

#include <string.h>

struct vmh_window_timer {
    struct vmh_engine *engine;
    char uuid[VMH_UUID_LEN + 1]; /* the VM may be gone when it fires */
};

static void
vmh_window_timeout(void *opaque)
{
    struct vmh_window_timer *t = opaque;
    struct vmh_vm *vm = g_hash_table_lookup(t->engine->vms, t->uuid);

    if (!vm || vm->migration != VMH_MIG_PENDING)
        return;
    vm->window_timer = -1;
    log_info("core", "vm %s (%s): preprocessing window over, migrating", vm->info.name,
             vm->info.uuid);
    vmh_mig_request(t->engine, vm, NULL);
}

static void
vmh_window_arm(struct vmh_engine *engine, struct vmh_vm *vm)
{
    struct vmh_window_timer *t = g_new0(struct vmh_window_timer, 1);
    int64_t left = vm->deadline_ms - vmh_time_real_ms();

    t->engine = engine;
    memcpy(t->uuid, vm->info.uuid, sizeof t->uuid);
    vmh_loop_timer_cancel(vm->window_timer);
    vm->window_timer =
        vmh_loop_timer_once(engine->loop, left > 0 ? (int)left : 0, vmh_window_timeout, t, g_free);
}

void
vmh_window_open(struct vmh_engine *engine, struct vmh_vm *vm)
{
    if (vm->deadline_ms)
        return; /* its window runs, or its case went on without one */
    vm->deadline_ms = vmh_time_real_ms() + (int64_t)vm->ppt * 1000;
    if (vm->migration == VMH_MIG_PENDING || vm->migration == VMH_MIG_MIGRATING)
        return;
    vmh_mig_case_open(engine, vm);
    vmh_window_arm(engine, vm);
    vmh_journal_write(engine);
}

void
vmh_window_resume(struct vmh_engine *engine, struct vmh_vm *vm, int64_t deadline_ms)
{
    /* The window keeps its original deadline; past it, migrate now. */
    vm->deadline_ms = deadline_ms ? deadline_ms : vmh_time_real_ms();
    vmh_mig_set(engine, vm, VMH_MIG_PENDING);
    vmh_window_arm(engine, vm);
}

void
vmh_window_skip(struct vmh_engine *engine, struct vmh_vm *vm)
{
    vm->deadline_ms = vmh_time_real_ms();
    vmh_mig_set(engine, vm, VMH_MIG_PENDING);
}

void
vmh_window_end(struct vmh_vm *vm)
{
    vmh_loop_timer_cancel(vm->window_timer);
    vm->window_timer = -1;
}

bool
vmh_window_faults_cleared(struct vmh_engine *engine, struct vmh_vm *vm)
{
    bool waiting = vm->migration == VMH_MIG_PENDING || vm->waiting_target;
    bool cancelled = false;

    if (waiting && engine->cfg->settings.cancel_on_clear) {
        vmh_mig_cancel(engine, vm);
        cancelled = true;
    }
    /* Without cancel-on-clear a pending case goes on to its deadline. */
    if (vm->migration != VMH_MIG_PENDING && vm->migration != VMH_MIG_MIGRATING)
        vm->deadline_ms = 0;
    return cancelled;
}
