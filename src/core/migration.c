/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Migration cases: one per affected VM, a state machine on the loop thread.
 *   none -> pending (window open) -> migrating -> completed | failed
 *   pending -> cancelled (its faults cleared, cancel-on-clear)
 * The window ends at the deadline or at migration-ready; then the case
 * waits for a slot (max-concurrent-migrations, in deadline order), gets a
 * target, and a worker runs the job.  Every change of a case is journalled
 * so that a restart resumes it. */
#include "core/engine_priv.h"
#include "core/policy.h"
#include "util/file.h"
#include "util/log.h"
#include "util/time.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VMH_RETRY_NO_TARGET_MS 10000
#define VMH_JOURNAL_FILE       "migrations.journal"
#define VMH_JOURNAL_MAGIC      "vmhealth-journal 1"

/* Step numbers as the virt subsystem counts them (vmh_migration_step). */
#define VMH_STEP_CHECK 0

static void vmh_mig_dispatch(struct vmh_engine *engine);

/* --- journal, then telling ---
 * The journal is the agent's promise to its next run: whoever hears of a
 * case (a log line, an event, hence a notification or a trap) must find it
 * on disk if the agent dies the next instant, or the restarted agent would
 * tell it again or contradict it.  So the order is enforced here, in one
 * place: every change of a case marks the journal dirty (vmh_mig_set), and
 * every word about a case goes through vmh_mig_tell_log/_event, which write
 * a dirty journal, durably, before anything leaves.  Under a hold (many
 * cases changed at once) words wait for the release and its single write. */

struct vmh_told {
    enum vmh_log_level level;
    char *line; /* NULL: an event only */
    bool has_event;
    struct vmh_event ev; /* its strings owned here */
};

static void
vmh_told_free(struct vmh_told *t)
{
    g_free(t->line);
    if (t->has_event) {
        g_free((char *)t->ev.vm_uuid);
        g_free((char *)t->ev.vm_name);
        g_free((char *)t->ev.host);
        g_free((char *)t->ev.vnf_manager);
        g_free((char *)t->ev.source_host);
        g_free((char *)t->ev.target_host);
        g_free((char *)t->ev.reason);
    }
    g_free(t);
}

/* Rewrites the whole journal: it holds only the live cases, a few lines. */
static void vmh_mig_journal_put(struct vmh_engine *engine, bool durable);

/* The journal first (when a case changed), then every word waiting. */
static void
vmh_mig_flush(struct vmh_engine *engine)
{
    struct vmh_told *t;

    if (engine->journal_dirty) {
        engine->journal_dirty = false;
        vmh_mig_journal_put(engine, true);
    }
    while ((t = g_queue_pop_head(engine->told))) {
        if (t->line)
            vmh_log(t->level, "core", "%s", t->line);
        if (t->has_event)
            vmh_engine_emit(engine, &t->ev);
        vmh_told_free(t);
    }
}

static void
vmh_mig_told(struct vmh_engine *engine, struct vmh_told *t)
{
    g_queue_push_tail(engine->told, t);
    if (!engine->journal_held)
        vmh_mig_flush(engine);
}

void
vmh_mig_tell_log(struct vmh_engine *engine, enum vmh_log_level level, const char *fmt, ...)
{
    struct vmh_told *t = g_new0(struct vmh_told, 1);
    va_list ap;

    t->level = level;
    va_start(ap, fmt);
    t->line = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    vmh_mig_told(engine, t);
}

void
vmh_mig_tell_event(struct vmh_engine *engine, const struct vmh_event *ev)
{
    struct vmh_told *t = g_new0(struct vmh_told, 1);

    t->has_event = true;
    t->ev = *ev;
    t->ev.vm_uuid = g_strdup(ev->vm_uuid);
    t->ev.vm_name = g_strdup(ev->vm_name);
    t->ev.host = g_strdup(ev->host);
    t->ev.vnf_manager = g_strdup(ev->vnf_manager);
    t->ev.source_host = g_strdup(ev->source_host);
    t->ev.target_host = g_strdup(ev->target_host);
    t->ev.reason = g_strdup(ev->reason);
    vmh_mig_told(engine, t);
}

void
vmh_mig_set(struct vmh_engine *engine, struct vmh_vm *vm, enum vmh_migration_state state)
{
    vm->migration = state;
    engine->journal_dirty = true;
}

/* A case changed outside any hold: on disk now, and what waited is told. */
static void
vmh_mig_journal_write(struct vmh_engine *engine)
{
    engine->journal_dirty = true;
    if (!engine->journal_held)
        vmh_mig_flush(engine);
}

void
vmh_mig_journal_hold(struct vmh_engine *engine)
{
    engine->journal_held++;
}

void
vmh_mig_journal_release(struct vmh_engine *engine)
{
    if (--engine->journal_held)
        return;
    vmh_mig_flush(engine);
}

static void
vmh_mig_journal_put(struct vmh_engine *engine, bool durable)
{
    GString *out;
    GHashTableIter it;
    gpointer value;

    if (!engine->journal_path)
        return;
    out = g_string_new(VMH_JOURNAL_MAGIC "\n");
    g_hash_table_iter_init(&it, engine->vms);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        const struct vmh_vm *vm = value;

        if (vm->migration != VMH_MIG_PENDING && vm->migration != VMH_MIG_MIGRATING &&
            !vm->waiting_target)
            continue;
        g_string_append_printf(out, "%s %s %d %" PRId64 " %s %s %d\n", vm->info.uuid,
                               vmh_migration_state_str(vm->migration), vm->step, vm->deadline_ms,
                               vm->source ? vm->source->name : vm->host->name,
                               vm->target_host ? vm->target_host : "-", vm->was_running);
    }
    /* Cases of the last run whose VM has not reappeared yet are kept. */
    g_hash_table_iter_init(&it, engine->recovered);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        const struct vmh_journal_entry *e = value;
        g_string_append_printf(out, "%s %s %d %" PRId64 " %s %s %d\n", e->uuid,
                               vmh_migration_state_str(e->state), e->step, e->deadline_ms,
                               e->source, e->target, e->was_running);
    }
    if ((durable ? vmh_file_write_atomic : vmh_file_replace)(engine->journal_path, out->str,
                                                             out->len, 0600) < 0)
        log_err("core", "migration journal %s not written: a restart now could forget cases",
                engine->journal_path);
    g_string_free(out, TRUE);
}

int
vmh_engine_journal_open(struct vmh_engine *engine, const char *dir)
{
    char *text = NULL;
    GError *err = NULL;
    char **lines;

    g_free(engine->journal_path);
    engine->journal_path = g_build_filename(dir, VMH_JOURNAL_FILE, NULL);
    if (!g_file_get_contents(engine->journal_path, &text, NULL, &err)) {
        bool missing = g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT);

        if (!missing)
            log_err("core", "cannot read the migration journal: %s", err->message);
        g_error_free(err);
        return missing ? 0 : -1;
    }
    lines = g_strsplit(text, "\n", -1);
    if (!lines[0] || strcmp(lines[0], VMH_JOURNAL_MAGIC)) {
        log_err("core", "%s is not a vmhealth migration journal; ignored", engine->journal_path);
    } else {
        for (char **l = lines + 1; *l; l++) {
            struct vmh_journal_entry e = {0};
            char state[16];

            if (!**l)
                continue;
            if (sscanf(*l, "%36s %15s %d %" SCNd64 " %64s %64s %d", e.uuid, state, &e.step,
                       &e.deadline_ms, e.source, e.target, &e.was_running) != 7) {
                log_warn("core", "migration journal: unreadable line '%s' ignored", *l);
                continue;
            }
            e.state = !strcmp(state, "migrating") ? VMH_MIG_MIGRATING
                      : !strcmp(state, "pending") ? VMH_MIG_PENDING
                                                  : VMH_MIG_FAILED;
            g_hash_table_insert(engine->recovered, g_strdup(e.uuid), g_memdup2(&e, sizeof e));
        }
        if (g_hash_table_size(engine->recovered))
            log_info("core", "migration journal: %u cases to resume",
                     g_hash_table_size(engine->recovered));
    }
    g_strfreev(lines);
    g_free(text);
    return 0;
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

    vmh_mig_tell_event(engine, &ev);
}

static void
vmh_mig_unqueue(struct vmh_engine *engine, struct vmh_vm *vm)
{
    if (vm->queued)
        g_queue_remove(engine->ready, vm);
    vm->queued = false;
    vmh_loop_timer_cancel(vm->window_timer);
    vm->window_timer = -1;
}

static gint
vmh_mig_by_deadline(gconstpointer a, gconstpointer b, gpointer unused)
{
    const struct vmh_vm *x = a, *y = b;

    return x->deadline_ms < y->deadline_ms ? -1 : x->deadline_ms > y->deadline_ms;
}

/* The window is over (deadline, migration-ready, migrate-vm): wait for a
 * slot, in deadline order. */
void
vmh_mig_request_start(struct vmh_engine *engine, struct vmh_vm *vm, const char *target)
{
    vmh_loop_timer_cancel(vm->window_timer);
    vm->window_timer = -1;
    g_free(vm->requested_target);
    vm->requested_target = g_strdup(target);
    if (!vm->queued) {
        g_queue_insert_sorted(engine->ready, vm, vmh_mig_by_deadline, NULL);
        vm->queued = true;
    }
    vmh_mig_dispatch(engine);
}

struct vmh_mig_timer {
    struct vmh_engine *engine;
    char uuid[VMH_UUID_LEN + 1];
};

static void
vmh_mig_deadline_cb(void *opaque)
{
    struct vmh_mig_timer *t = opaque;
    struct vmh_vm *vm = g_hash_table_lookup(t->engine->vms, t->uuid);

    if (!vm || vm->migration != VMH_MIG_PENDING)
        return;
    vm->window_timer = -1;
    log_info("core", "vm %s (%s): preprocessing window over, migrating", vm->info.name,
             vm->info.uuid);
    vmh_mig_request_start(t->engine, vm, NULL);
}

static void
vmh_mig_arm(struct vmh_engine *engine, struct vmh_vm *vm)
{
    struct vmh_mig_timer *t = g_new0(struct vmh_mig_timer, 1);
    int64_t left = vm->deadline_ms - vmh_time_real_ms();

    t->engine = engine;
    memcpy(t->uuid, vm->info.uuid, sizeof t->uuid);
    vmh_loop_timer_cancel(vm->window_timer);
    vm->window_timer =
        vmh_loop_timer_once(engine->loop, left > 0 ? (int)left : 0, vmh_mig_deadline_cb, t, g_free);
}

void
vmh_mig_window_open(struct vmh_engine *engine, struct vmh_vm *vm)
{
    if (vm->migration == VMH_MIG_PENDING || vm->migration == VMH_MIG_MIGRATING)
        return;
    vmh_mig_set(engine, vm, VMH_MIG_PENDING);
    vm->waiting_target = false;
    g_free(vm->target_host);
    vm->target_host = NULL;
    vmh_mig_set_error(vm, NULL);
    vmh_mig_arm(engine, vm);
    vmh_mig_journal_write(engine);
}

bool
vmh_mig_fault_gone(struct vmh_engine *engine, struct vmh_vm *vm)
{
    bool waiting = vm->migration == VMH_MIG_PENDING || vm->waiting_target;

    if (!waiting || !engine->cfg->settings.cancel_on_clear)
        return false;
    vmh_mig_unqueue(engine, vm);
    vmh_mig_set(engine, vm, VMH_MIG_CANCELLED);
    vm->waiting_target = false;
    vmh_mig_tell_log(engine, VMH_LOG_INFO,
                     "vm %s (%s): its faults cleared, pending migration cancelled", vm->info.name,
                     vm->info.uuid);
    return true;
}

/* The job is over, whatever its outcome: its slot and what it claimed of
 * its target are free again. */
static void
vmh_mig_end_job(struct vmh_engine *engine, struct vmh_vm *vm)
{
    struct vmh_host *target = vmh_engine_host(engine, vm->target_host);

    if (!vm->job_id)
        return;
    g_hash_table_remove(engine->jobs, &vm->job_id);
    if (target) {
        target->reserved_kib -= MIN(target->reserved_kib, vm->info.memory_kib);
        target->reserved_vcpus -= MIN(target->reserved_vcpus, vm->info.vcpus);
    }
    if (engine->running)
        engine->running--;
    vm->job_id = 0;
    vm->source = NULL;
}

void
vmh_mig_vm_gone(struct vmh_engine *engine, struct vmh_vm *vm)
{
    vmh_mig_unqueue(engine, vm);
    vmh_mig_end_job(engine, vm);
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
            vmh_mig_request_start(engine, vm, NULL);
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
        vmh_mig_tell_log(engine, VMH_LOG_WARN, "vm %s (%s): %s; retried when a target appears",
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
    struct vmh_migration_job job = {
        .id = ++engine->next_job_id,
        .vm_name = vm->info.name,
        .source = vm->host->name,
        .target = target->name,
        .shared_storage = vm->host->conf->shared_storage && target->conf->shared_storage,
        .shutdown_timeout_s = engine->cfg->settings.shutdown_timeout,
        .step = VMH_STEP_CHECK,
        .was_running = vm->info.power != VMH_POWER_SHUTOFF,
        .last_known_xml = vm->info.definition,
    };

    memcpy(job.uuid, vm->info.uuid, sizeof job.uuid);
    vm->was_running = job.was_running;
    vmh_mig_set(engine, vm, VMH_MIG_MIGRATING);
    vm->waiting_target = false;
    vm->job_id = job.id;
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
    g_hash_table_insert(engine->jobs, &vm->job_id, vm);
    vmh_mig_tell_log(engine, VMH_LOG_INFO, "vm %s (%s): migrating from %s to %s (job %" PRIu64 ")",
                     vm->info.name, vm->info.uuid, vm->host->name, target->name, job.id);
    vmh_mig_event(engine, VMH_EV_MIGRATION_STARTED, vm, vm->host->name, target->name, NULL, 0);
    /* Even under a hold: no job begins before the journal says migrating. */
    vmh_mig_flush(engine);
    vmh_engine_publish_later(engine);
    if (engine->hooks.run_migration) {
        engine->hooks.run_migration(&job, engine->hooks.opaque);
    } else {
        struct vmh_migration_result res = {.error = "no hypervisor layer is wired to migrate"};

        vmh_engine_migration_done(engine, job.id, &res);
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
vmh_engine_migration_step(struct vmh_engine *engine, uint64_t job_id, int step)
{
    struct vmh_vm *vm = g_hash_table_lookup(engine->jobs, &job_id);

    if (!vm)
        return;
    /* Journalled without a sync: after a restart, where libvirt shows the
     * VM decides whether the job is finished or rolled back; the step tells
     * the operator how far it got. */
    vm->step = step;
    vmh_mig_journal_put(engine, false);
}

void
vmh_engine_migration_done(struct vmh_engine *engine, uint64_t job_id,
                          const struct vmh_migration_result *res)
{
    struct vmh_vm *vm = g_hash_table_lookup(engine->jobs, &job_id);
    struct vmh_host *target;
    char *source;
    uint64_t ms;

    if (!vm)
        return;
    target = vmh_engine_host(engine, vm->target_host);
    ms = (uint64_t)(vmh_time_mono_ms() - vm->started_ms);
    source = g_strdup(vm->source ? vm->source->name : vm->host->name);
    vmh_mig_journal_hold(engine);
    vmh_mig_end_job(engine, vm);
    if (res->ok && target) {
        vm->host->vm_count--;
        vm->host = target;
        target->vm_count++;
        vm->info.power = res->started ? VMH_POWER_RUNNING : VMH_POWER_SHUTOFF;
        vmh_mig_set(engine, vm, VMH_MIG_COMPLETED);
        vm->deadline_ms = 0;
        engine->migrations_completed++;
        vmh_mig_tell_log(engine, VMH_LOG_INFO,
                         "vm %s (%s): migrated from %s to %s in %" PRIu64 " ms (libvirt %" PRIu64
                         " ms)%s",
                         vm->info.name, vm->info.uuid, source, target->name, ms, res->libvirt_ms,
                         res->started ? ", running" : "");
        vmh_mig_event(engine, VMH_EV_MIGRATION_COMPLETED, vm, source, target->name, NULL, ms);
    } else {
        const char *why = res->error ? res->error : "the target host is gone";

        vmh_mig_set(engine, vm, VMH_MIG_FAILED);
        vm->deadline_ms = 0;
        vmh_mig_set_error(vm, why);
        engine->migrations_failed++;
        vmh_mig_tell_log(engine, VMH_LOG_WARN, "vm %s (%s): migration to %s failed: %s%s",
                         vm->info.name, vm->info.uuid, vm->target_host ? vm->target_host : "?", why,
                         res->rolled_back ? " (rolled back)" : "");
        vmh_mig_event(engine, VMH_EV_MIGRATION_FAILED, vm, NULL, NULL, why, 0);
    }
    g_free(source);
    vmh_mig_journal_release(engine);
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
    struct vmh_migration_job job = {0};

    if (!e)
        return;
    if (e->state == VMH_MIG_PENDING || e->state == VMH_MIG_FAILED) {
        /* The window keeps its original deadline; past it, migrate now. */
        vm->deadline_ms = e->deadline_ms ? e->deadline_ms : vmh_time_real_ms();
        vmh_mig_set(engine, vm, VMH_MIG_PENDING);
        g_hash_table_remove(engine->recovered, vm->info.uuid);
        vmh_mig_arm(engine, vm);
        vmh_mig_tell_log(engine, VMH_LOG_INFO,
                         "vm %s (%s): pending migration resumed from the journal", vm->info.name,
                         vm->info.uuid);
        return;
    }
    /* Half done: let the hypervisor layer find where it stands. */
    job.id = ++engine->next_job_id;
    memcpy(job.uuid, vm->info.uuid, sizeof job.uuid);
    job.vm_name = vm->info.name;
    job.source = e->source;
    job.target = e->target;
    job.step = e->step;
    job.was_running = e->was_running != 0;
    vm->was_running = job.was_running;
    job.shutdown_timeout_s = engine->cfg->settings.shutdown_timeout;
    vmh_mig_set(engine, vm, VMH_MIG_MIGRATING);
    vm->job_id = job.id;
    vm->step = e->step;
    vm->source = vmh_engine_host(engine, e->source);
    if (!vm->source)
        vm->source = vm->host;
    vm->started_ms = vmh_time_mono_ms();
    g_free(vm->target_host);
    vm->target_host = g_strdup(e->target);
    engine->running++;
    g_hash_table_insert(engine->jobs, &vm->job_id, vm);
    /* The journal already holds this case as migrating: telling is safe. */
    log_info("core", "vm %s (%s): migration %s -> %s was interrupted at step %d; recovering",
             vm->info.name, vm->info.uuid, e->source, e->target, e->step);
    if (engine->hooks.recover_migration) {
        engine->hooks.recover_migration(&job, engine->hooks.opaque);
    } else {
        struct vmh_migration_result res = {.error = "no hypervisor layer to recover with"};

        vmh_engine_migration_done(engine, job.id, &res);
    }
    /* Last: the job's names point into the entry. */
    g_hash_table_remove(engine->recovered, vm->info.uuid);
}

void
vmh_mig_init(struct vmh_engine *engine)
{
    engine->ready = g_queue_new();
    engine->jobs = g_hash_table_new(g_int64_hash, g_int64_equal);
    engine->recovered = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    engine->told = g_queue_new();
    engine->retry_timer = -1;
}

void
vmh_mig_fini(struct vmh_engine *engine)
{
    vmh_loop_timer_cancel(engine->retry_timer);
    g_queue_free(engine->ready);
    g_hash_table_destroy(engine->jobs);
    g_hash_table_destroy(engine->recovered);
    g_queue_free_full(engine->told, (GDestroyNotify)vmh_told_free);
    g_free(engine->journal_path);
}
