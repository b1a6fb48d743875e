/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Migration cases: one per affected VM, a state machine on the loop thread.
 *
 *   none -> pending -> migrating -> completed | failed
 *   pending -> cancelled               (its faults cleared, cancel-on-clear)
 *   failed -> pending                  (no target yet: retried, or a restart)
 *
 * The words, used the same way in every file:
 *   case     the engine's record of one VM's migration (struct vmh_vm's case
 *            fields, engine_priv.h), from its window to its outcome;
 *   window   the preprocessing time before the case asks to migrate
 *            (window.c: opens, re-armed, ends early, cancelled, times out);
 *   request  what a case asks of the hypervisor layer once its window is
 *            over (struct vmh_migration_request, engine.h): it waits for a
 *            slot (max-concurrent-migrations, in deadline order), gets a
 *            target, and runs in a worker, or settles a case a restart
 *            interrupted;
 *   step     how far the request got (enum vmh_migration_step, model.h);
 *   outcome  what the hypervisor layer reports at the end
 *            (struct vmh_migration_outcome, engine.h): completed or failed.
 * Every change of a case is journalled before anyone hears of it
 * (journal.c), so that a restart resumes it. */
#include "core/engine_priv.h"
#include "core/policy.h"
#include "util/log.h"
#include "util/time.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VMH_RETRY_NO_TARGET_MS 10000

static void vmh_mig_dispatch(struct vmh_engine *engine);

void
vmh_mig_set(struct vmh_engine *engine, struct vmh_vm *vm, enum vmh_migration_state state)
{
    vm->migration = state;
    engine->journal_dirty = true;
}

/* --- cases --- */

static void
vmh_mig_set_error(struct vmh_vm *vm, const char *error)
{
    g_free(vm->migration_error);
    vm->migration_error = g_strdup(error);
}

static void
vmh_mig_event(struct vmh_engine *engine, enum vmh_event_type type, struct vmh_vm *vm,
              const char *source, const char *target, const char *reason, uint64_t duration)
{
    struct vmh_event ev = {
        .type = type,
        .time_ms = vmh_time_real_ms(),
        .vm_uuid = vm->info.uuid,
        .vm_name = vm->info.name,
        .host = vm->host->name,
        .vnf_manager = vm->manager,
        .ppt = vm->ppt,
        .deadline_ms = vm->deadline_ms,
        .source_host = source,
        .target_host = target,
        .duration_ms = duration,
        .reason = reason,
    };

    vmh_journal_tell_event(engine, &ev);
}

static void
vmh_mig_unqueue(struct vmh_engine *engine, struct vmh_vm *vm)
{
    if (vm->queued)
        g_queue_remove(engine->ready, vm);
    vm->queued = false;
    vmh_window_end(vm);
}

static gint
vmh_mig_by_deadline(gconstpointer a, gconstpointer b, gpointer unused)
{
    const struct vmh_vm *x = a, *y = b;

    return x->deadline_ms < y->deadline_ms ? -1 : x->deadline_ms > y->deadline_ms;
}

/* The case asks for its migration: its window is over (deadline,
 * migration-ready, migrate-vm, or a retry after no target was found).  It
 * waits for a slot, in deadline order. */
void
vmh_mig_request(struct vmh_engine *engine, struct vmh_vm *vm, const char *target)
{
    vmh_window_end(vm);
    g_free(vm->requested_target);
    vm->requested_target = g_strdup(target);
    if (!vm->queued) {
        g_queue_insert_sorted(engine->ready, vm, vmh_mig_by_deadline, NULL);
        vm->queued = true;
    }
    vmh_mig_dispatch(engine);
}

void
vmh_mig_case_open(struct vmh_engine *engine, struct vmh_vm *vm)
{
    vmh_mig_set(engine, vm, VMH_MIG_PENDING);
    vm->waiting_target = false;
    g_free(vm->target_host);
    vm->target_host = NULL;
    vmh_mig_set_error(vm, NULL);
}

void
vmh_mig_cancel(struct vmh_engine *engine, struct vmh_vm *vm)
{
    vmh_mig_unqueue(engine, vm);
    vmh_mig_set(engine, vm, VMH_MIG_CANCELLED);
    vm->waiting_target = false;
    vmh_journal_tell_log(engine, VMH_LOG_INFO,
                         "vm %s (%s): its faults cleared, pending migration cancelled",
                         vm->info.name, vm->info.uuid);
}

/* The request is over, whatever its outcome: its slot and what it claimed
 * of its target are free again. */
static void
vmh_mig_end_request(struct vmh_engine *engine, struct vmh_vm *vm)
{
    struct vmh_host *target = vmh_engine_host(engine, vm->target_host);

    if (!vm->request_id)
        return;
    g_hash_table_remove(engine->in_flight, &vm->request_id);
    if (target) {
        target->reserved_kib -= MIN(target->reserved_kib, vm->info.memory_kib);
        target->reserved_vcpus -= MIN(target->reserved_vcpus, vm->info.vcpus);
    }
    if (engine->running)
        engine->running--;
    vm->request_id = 0;
    vm->source = NULL;
}

void
vmh_mig_vm_gone(struct vmh_engine *engine, struct vmh_vm *vm)
{
    vmh_mig_unqueue(engine, vm);
    vmh_mig_end_request(engine, vm);
    g_free(vm->requested_target);
    vm->requested_target = NULL;
}

/* --- dispatch --- */

int
vmh_mig_choose(struct vmh_engine *engine, struct vmh_vm *vm, const char *explicit_target,
               struct vmh_host **target, char *why, size_t why_len)
{
    size_t n = g_hash_table_size(engine->hosts), i = 0;
    struct vmh_target_candidate *c = g_new0(struct vmh_target_candidate, n + 1);
    struct vmh_host **hosts = g_new0(struct vmh_host *, n + 1);
    GHashTableIter it;
    gpointer value;
    int pick;

    g_hash_table_iter_init(&it, engine->hosts);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        struct vmh_host *h = value;

        hosts[i] = h;
        c[i].name = h->name;
        c[i].migration_target = h->conf->migration_target;
        c[i].connected = h->connection == VMH_CONN_CONNECTED;
        c[i].healthy = vmh_engine_host_health(engine, h) == VMH_HEALTH_NORMAL;
        c[i].maintenance = h->conf->maintenance;
        c[i].room_known = h->room_known;
        c[i].free_kib = h->room_kib > h->reserved_kib ? h->room_kib - h->reserved_kib : 0;
        c[i].free_vcpus = (int64_t)h->room_vcpus - (int64_t)h->reserved_vcpus;
        c[i].priority = h->conf->priority;
        i++;
    }
    pick = vmh_policy_choose_target(c, n, vm->host->name, explicit_target, vm->info.memory_kib,
                                    vm->info.vcpus, why, why_len);
    *target = pick >= 0 ? hosts[pick] : NULL;
    g_free(c);
    g_free(hosts);
    return pick;
}

static void
vmh_mig_retry_cb(void *opaque)
{
    struct vmh_engine *engine = opaque;

    engine->retry_timer = -1;
    vmh_mig_hosts_changed(engine);
}

void
vmh_mig_hosts_changed(struct vmh_engine *engine)
{
    GHashTableIter it;
    gpointer value;

    g_hash_table_iter_init(&it, engine->vms);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        struct vmh_vm *vm = value;

        if (vm->waiting_target && !vm->queued)
            vmh_mig_request(engine, vm, NULL);
    }
}

static void
vmh_mig_no_target(struct vmh_engine *engine, struct vmh_vm *vm, const char *why)
{
    bool first = !vm->waiting_target;

    vmh_mig_set(engine, vm, VMH_MIG_FAILED);
    vm->waiting_target = true;
    vmh_mig_set_error(vm, why);
    if (first) {
        engine->migrations_failed++;
        vmh_journal_tell_log(engine, VMH_LOG_WARN, "vm %s (%s): %s; retried when a target appears",
                             vm->info.name, vm->info.uuid, why);
        vmh_mig_event(engine, VMH_EV_MIGRATION_FAILED, vm, NULL, NULL, why, 0);
    }
    if (engine->retry_timer < 0)
        engine->retry_timer = vmh_loop_timer_once(engine->loop, VMH_RETRY_NO_TARGET_MS,
                                                  vmh_mig_retry_cb, engine, NULL);
}

static void
vmh_mig_start(struct vmh_engine *engine, struct vmh_vm *vm, struct vmh_host *target)
{
    struct vmh_migration_request req = {
        .id = ++engine->next_request_id,
        .vm_name = vm->info.name,
        .source = vm->host->name,
        .target = target->name,
        .shared_storage = vm->host->conf->shared_storage && target->conf->shared_storage,
        .shutdown_timeout_s = engine->cfg->settings.shutdown_timeout,
        .step = VMH_STEP_CHECK,
        .was_running = vm->info.power != VMH_POWER_SHUTOFF,
        .last_known_xml = vm->info.definition,
    };

    memcpy(req.uuid, vm->info.uuid, sizeof req.uuid);
    vm->was_running = req.was_running;
    vmh_mig_set(engine, vm, VMH_MIG_MIGRATING);
    vm->waiting_target = false;
    vm->request_id = req.id;
    vm->step = VMH_STEP_CHECK;
    vm->source = vm->host;
    vm->started_ms = vmh_time_mono_ms();
    g_free(vm->target_host);
    vm->target_host = g_strdup(target->name);
    vmh_mig_set_error(vm, NULL);
    target->reserved_kib += vm->info.memory_kib;
    target->reserved_vcpus += vm->info.vcpus;
    engine->running++;
    engine->migrations_started++;
    g_hash_table_insert(engine->in_flight, &vm->request_id, vm);
    vmh_journal_tell_log(engine, VMH_LOG_INFO,
                         "vm %s (%s): migrating from %s to %s (request %" PRIu64 ")", vm->info.name,
                         vm->info.uuid, vm->host->name, target->name, req.id);
    vmh_mig_event(engine, VMH_EV_MIGRATION_STARTED, vm, vm->host->name, target->name, NULL, 0);
    /* Even under a hold: no request begins before the journal says migrating. */
    vmh_journal_flush(engine);
    vmh_engine_publish_later(engine);
    if (engine->hooks.run_migration) {
        engine->hooks.run_migration(&req, engine->hooks.opaque);
    } else {
        struct vmh_migration_outcome out = {.error = "no hypervisor layer is wired to migrate"};

        vmh_engine_migration_done(engine, req.id, &out);
    }
}

static void
vmh_mig_dispatch(struct vmh_engine *engine)
{
    unsigned limit = engine->cfg->settings.max_concurrent_migrations;

    if (!limit)
        limit = 1;
    while (engine->running < limit && !g_queue_is_empty(engine->ready)) {
        struct vmh_vm *vm = g_queue_pop_head(engine->ready);
        struct vmh_host *target;
        char why[256];

        vm->queued = false;
        if (vmh_mig_choose(engine, vm, vm->requested_target, &target, why, sizeof why) < 0)
            vmh_mig_no_target(engine, vm, why);
        else
            vmh_mig_start(engine, vm, target);
    }
    vmh_engine_publish_later(engine);
}

/* --- reports from the worker --- */

void
vmh_engine_migration_step(struct vmh_engine *engine, uint64_t request_id,
                          enum vmh_migration_step step)
{
    struct vmh_vm *vm = g_hash_table_lookup(engine->in_flight, &request_id);

    if (!vm)
        return;
    /* Journalled without a sync: after a restart, where libvirt shows the
     * VM decides whether the request is finished or rolled back; the step tells
     * the operator how far it got. */
    vm->step = step;
    vmh_journal_put(engine, false);
}

void
vmh_engine_migration_done(struct vmh_engine *engine, uint64_t request_id,
                          const struct vmh_migration_outcome *out)
{
    struct vmh_vm *vm = g_hash_table_lookup(engine->in_flight, &request_id);
    struct vmh_host *target;
    char *source;
    uint64_t ms;

    if (!vm)
        return;
    target = vmh_engine_host(engine, vm->target_host);
    ms = (uint64_t)(vmh_time_mono_ms() - vm->started_ms);
    source = g_strdup(vm->source ? vm->source->name : vm->host->name);
    vmh_journal_hold(engine);
    vmh_mig_end_request(engine, vm);
    if (out->ok && target) {
        vm->host->vm_count--;
        vm->host = target;
        target->vm_count++;
        vm->info.power = out->started ? VMH_POWER_RUNNING : VMH_POWER_SHUTOFF;
        vmh_mig_set(engine, vm, VMH_MIG_COMPLETED);
        vm->deadline_ms = 0;
        engine->migrations_completed++;
        vmh_journal_tell_log(engine, VMH_LOG_INFO,
                             "vm %s (%s): migrated from %s to %s in %" PRIu64
                             " ms (libvirt %" PRIu64 " ms)%s",
                             vm->info.name, vm->info.uuid, source, target->name, ms,
                             out->libvirt_ms, out->started ? ", running" : "");
        vmh_mig_event(engine, VMH_EV_MIGRATION_COMPLETED, vm, source, target->name, NULL, ms);
    } else {
        const char *why = out->error ? out->error : "the target host is gone";

        vmh_mig_set(engine, vm, VMH_MIG_FAILED);
        vm->deadline_ms = 0;
        vmh_mig_set_error(vm, why);
        engine->migrations_failed++;
        vmh_journal_tell_log(engine, VMH_LOG_WARN, "vm %s (%s): migration to %s failed: %s%s",
                             vm->info.name, vm->info.uuid, vm->target_host ? vm->target_host : "?",
                             why, out->rolled_back ? " (rolled back)" : "");
        vmh_mig_event(engine, VMH_EV_MIGRATION_FAILED, vm, NULL, NULL, why, 0);
    }
    g_free(source);
    vmh_journal_release(engine);
    vmh_mig_dispatch(engine);
    vmh_engine_publish_later(engine);
}

void
vmh_engine_host_room(struct vmh_engine *engine, const char *name, uint64_t free_kib,
                     unsigned free_vcpus)
{
    struct vmh_host *host = vmh_engine_host(engine, name);
    bool news;

    if (!host)
        return;
    news = !host->room_known || free_kib > host->room_kib;
    host->room_known = true;
    host->room_kib = free_kib;
    host->room_vcpus = free_vcpus;
    if (news)
        vmh_mig_hosts_changed(engine);
}

/* --- restart --- */

void
vmh_mig_vm_appeared(struct vmh_engine *engine, struct vmh_vm *vm)
{
    struct vmh_journal_entry *e = g_hash_table_lookup(engine->recovered, vm->info.uuid);
    struct vmh_migration_request req = {0};

    if (!e)
        return;
    if (e->state == VMH_MIG_PENDING || e->state == VMH_MIG_FAILED) {
        vmh_window_resume(engine, vm, e->deadline_ms);
        g_hash_table_remove(engine->recovered, vm->info.uuid);
        vmh_journal_tell_log(engine, VMH_LOG_INFO,
                             "vm %s (%s): pending migration resumed from the journal",
                             vm->info.name, vm->info.uuid);
        return;
    }
    /* Half done: let the hypervisor layer find where it stands. */
    req.id = ++engine->next_request_id;
    memcpy(req.uuid, vm->info.uuid, sizeof req.uuid);
    req.vm_name = vm->info.name;
    req.source = e->source;
    req.target = e->target;
    req.step = e->step;
    req.was_running = e->was_running != 0;
    vm->was_running = req.was_running;
    req.shutdown_timeout_s = engine->cfg->settings.shutdown_timeout;
    vmh_mig_set(engine, vm, VMH_MIG_MIGRATING);
    vm->deadline_ms = e->deadline_ms;
    vm->request_id = req.id;
    vm->step = e->step;
    vm->source = vmh_engine_host(engine, e->source);
    if (!vm->source)
        vm->source = vm->host;
    vm->started_ms = vmh_time_mono_ms();
    g_free(vm->target_host);
    vm->target_host = g_strdup(e->target);
    engine->running++;
    g_hash_table_insert(engine->in_flight, &vm->request_id, vm);
    /* The journal already holds this case as migrating: telling is safe. */
    log_info("core", "vm %s (%s): migration %s -> %s was interrupted at step %s; recovering",
             vm->info.name, vm->info.uuid, e->source, e->target, vmh_migration_step_str(e->step));
    if (engine->hooks.recover_migration) {
        engine->hooks.recover_migration(&req, engine->hooks.opaque);
    } else {
        struct vmh_migration_outcome out = {.error = "no hypervisor layer to recover with"};

        vmh_engine_migration_done(engine, req.id, &out);
    }
    /* Last: the req's names point into the entry. */
    g_hash_table_remove(engine->recovered, vm->info.uuid);
}

void
vmh_mig_init(struct vmh_engine *engine)
{
    engine->ready = g_queue_new();
    engine->in_flight = g_hash_table_new(g_int64_hash, g_int64_equal);
    engine->retry_timer = -1;
    vmh_journal_init(engine);
}

void
vmh_mig_fini(struct vmh_engine *engine)
{
    vmh_loop_timer_cancel(engine->retry_timer);
    g_queue_free(engine->ready);
    g_hash_table_destroy(engine->in_flight);
    vmh_journal_fini(engine);
}
