/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "core/engine.h"
#include "core/engine_priv.h"

#include "core/policy.h"
#include "util/log.h"
#include "util/time.h"

#include <glib.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The snapshot and the strings it points to live and die together. */
struct vmh_snapshot_priv {
    struct vmh_snapshot pub;
    gint refs;
    GStringChunk *strings;
    struct vmh_sensor_snap *sensors;
};

/* --- small helpers --- */

static void
vmh_host_free(void *opaque)
{
    struct vmh_host *host = opaque;

    for (size_t i = 0; i < host->n_sensors; i++)
        g_free((char *)host->sensors[i].name);
    g_free(host->sensors);
    g_free(host->name);
    g_free(host->last_error);
    g_free(host);
}

static void
vmh_vm_free(void *opaque)
{
    struct vmh_vm *vm = opaque;

    vmh_domain_info_clear(&vm->info);
    g_free(vm->manager);
    g_free(vm->target_host);
    g_free(vm->migration_error);
    g_free(vm->requested_target);
    g_free(vm);
}

static void
vmh_fault_free(void *opaque)
{
    struct vmh_fault *f = opaque;

    if (!f)
        return;
    g_free(f->key);
    g_free(f->host);
    g_free(f->vm_uuid);
    g_free(f->value);
    g_free(f->description);
    g_free(f);
}

struct vmh_host *
vmh_engine_host(struct vmh_engine *engine, const char *name)
{
    return name ? g_hash_table_lookup(engine->hosts, name) : NULL;
}

void
vmh_engine_emit(struct vmh_engine *engine, const struct vmh_event *ev)
{
    for (guint i = 0; i < engine->observers->len; i++) {
        const struct vmh_observer *o = &g_array_index(engine->observers, struct vmh_observer, i);

        o->fn(ev, o->opaque);
    }
}

static void
vmh_engine_host_add(struct vmh_engine *engine, const struct vmh_host_conf *conf)
{
    struct vmh_host *host = g_new0(struct vmh_host, 1);

    host->name = g_strdup(conf->name);
    host->conf = conf;
    host->index = ++engine->next_host_index;
    host->connection = VMH_CONN_DISCONNECTED;
    g_hash_table_insert(engine->hosts, host->name, host);
}

/* --- life --- */

struct vmh_engine *
vmh_engine_new(struct vmh_loop *loop, struct vmh_config *cfg)
{
    struct vmh_engine *engine = g_new0(struct vmh_engine, 1);

    engine->loop = loop;
    engine->cfg = cfg;
    engine->hosts = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, vmh_host_free);
    engine->vms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, vmh_vm_free);
    engine->faults = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, vmh_fault_free);
    engine->faults_by_id = g_hash_table_new(g_int64_hash, g_int64_equal);
    engine->history = g_queue_new();
    engine->observers = g_array_new(FALSE, FALSE, sizeof(struct vmh_observer));
    pthread_mutex_init(&engine->snap_lock, NULL);
    engine->publish_timer = -1;
    vmh_mig_init(engine);
    for (size_t i = 0; i < cfg->n_hosts; i++)
        vmh_engine_host_add(engine, &cfg->hosts[i]);
    vmh_engine_publish(engine);
    return engine;
}

static void
vmh_engine_vm_cancel_timer(gpointer key, gpointer value, gpointer unused)
{
    vmh_window_end(value);
}

void
vmh_engine_free(struct vmh_engine *engine)
{
    if (!engine)
        return;
    vmh_loop_timer_cancel(engine->publish_timer);
    g_hash_table_foreach(engine->vms, vmh_engine_vm_cancel_timer, NULL);
    vmh_mig_fini(engine);
    g_hash_table_destroy(engine->vms);
    g_hash_table_destroy(engine->faults_by_id);
    g_hash_table_destroy(engine->faults);
    g_queue_free_full(engine->history, vmh_fault_free);
    g_hash_table_destroy(engine->hosts);
    g_array_free(engine->observers, TRUE);
    vmh_snapshot_unref(engine->snap);
    pthread_mutex_destroy(&engine->snap_lock);
    vmh_config_free(engine->cfg);
    g_free(engine);
}

const struct vmh_config *
vmh_engine_config(const struct vmh_engine *engine)
{
    return engine->cfg;
}

struct vmh_loop *
vmh_engine_loop(const struct vmh_engine *engine)
{
    return engine->loop;
}

int
vmh_engine_observe(struct vmh_engine *engine, vmh_event_fn fn, void *opaque)
{
    struct vmh_observer o = {.fn = fn, .opaque = opaque};

    g_array_append_val(engine->observers, o);
    return 0;
}

void
vmh_engine_set_hooks(struct vmh_engine *engine, const struct vmh_engine_hooks *hooks)
{
    engine->hooks = *hooks;
}

/* --- policy --- */

/* Recomputes a VM's manager and preprocessing time; logs when they change. */
static void
vmh_engine_vm_apply_policy(struct vmh_engine *engine, struct vmh_vm *vm)
{
    struct vmh_effective eff;
    bool changed;

    vmh_policy_effective(engine->cfg, vm->info.uuid, &vm->info.meta, &eff);
    changed = eff.ppt != vm->ppt || eff.source != vm->ppt_source ||
              g_strcmp0(eff.manager, vm->manager) != 0;
    if (eff.manager && !eff.manager_configured && g_strcmp0(eff.manager, vm->manager) != 0)
        log_warn("core",
                 "vm %s (%s): vnf-manager '%s' from its domain metadata is not configured; "
                 "it gets the default preprocessing time",
                 vm->info.name, vm->info.uuid, eff.manager);
    if (eff.clamped && changed)
        log_info("core", "vm %s (%s): preprocessing time clamped to max-preprocessing-time %u s",
                 vm->info.name, vm->info.uuid, eff.ppt);
    g_free(vm->manager);
    vm->manager = g_strdup(eff.manager);
    vm->manager_configured = eff.manager_configured;
    vm->ppt = eff.ppt;
    vm->ppt_source = eff.source;
}

/* --- faults --- */

static bool
vmh_fault_affects(const struct vmh_fault *f, const struct vmh_vm *vm)
{
    if (f->vm_uuid)
        return !strcmp(f->vm_uuid, vm->info.uuid);
    return !strcmp(f->host, vm->host->name);
}

/* The worst active fault affecting a VM, NULL when none. */
const struct vmh_fault *
vmh_engine_vm_worst_fault(struct vmh_engine *engine, const struct vmh_vm *vm)
{
    const struct vmh_fault *worst = NULL;
    GHashTableIter it;
    gpointer value;

    g_hash_table_iter_init(&it, engine->faults);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        const struct vmh_fault *f = value;

        if (vmh_fault_affects(f, vm) && (!worst || f->severity < worst->severity))
            worst = f;
    }
    return worst;
}

static enum vmh_health
vmh_health_of_severity(enum vmh_severity s)
{
    return s == VMH_SEV_WARNING ? VMH_HEALTH_SUB_HEALTH : VMH_HEALTH_FAULTY;
}

enum vmh_health
vmh_engine_host_health(struct vmh_engine *engine, const struct vmh_host *host)
{
    enum vmh_health health = VMH_HEALTH_NORMAL;
    GHashTableIter it;
    gpointer value;

    if (host->connection != VMH_CONN_CONNECTED)
        return VMH_HEALTH_UNREACHABLE;
    g_hash_table_iter_init(&it, engine->faults);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        const struct vmh_fault *f = value;
        enum vmh_health h;

        if (f->vm_uuid || strcmp(f->host, host->name))
            continue;
        h = vmh_health_of_severity(f->severity);
        if (h > health)
            health = h;
    }
    return health;
}

static enum vmh_health
vmh_engine_vm_health(struct vmh_engine *engine, const struct vmh_vm *vm, enum vmh_cause *cause)
{
    const struct vmh_fault *worst = vmh_engine_vm_worst_fault(engine, vm);
    enum vmh_health health = VMH_HEALTH_NORMAL;

    *cause = worst ? worst->cause : VMH_CAUSE_NONE;
    if (vm->host->connection != VMH_CONN_CONNECTED)
        return VMH_HEALTH_UNREACHABLE;
    if (worst)
        health = vmh_health_of_severity(worst->severity);
    return health;
}

static void
vmh_engine_vm_event(struct vmh_engine *engine, enum vmh_event_type type, const struct vmh_vm *vm,
                    const struct vmh_fault *f, bool cancelled)
{
    struct vmh_event ev = {
        .type = type,
        .time_ms = vmh_time_real_ms(),
        .vm_uuid = vm ? vm->info.uuid : NULL,
        .vm_name = vm ? vm->info.name : NULL,
        .host = vm ? vm->host->name : f->host,
        .vnf_manager = vm ? vm->manager : NULL,
        .fault_id = f->id,
        .cause = f->cause,
        .severity = f->severity,
        .ppt = vm ? vm->ppt : 0,
        .deadline_ms = vm ? vm->deadline_ms : 0,
        .migration_cancelled = cancelled,
    };

    vmh_journal_tell_event(engine, &ev);
}

/* Tells the VNF managers: one vm-abnormal per VM the fault affects.  A VM
 * gets its window when the first fault touches it; later faults keep it.
 * The windows of all its VMs reach the journal in one write, before the
 * first notification leaves (a host fault with 125 VMs took one fsync per
 * VM, up to 0.7 s, before the last VM was told). */
static void
vmh_engine_notify_abnormal(struct vmh_engine *engine, const struct vmh_fault *f)
{
    GHashTableIter it;
    gpointer value;
    size_t n = 0;

    vmh_journal_hold(engine);
    g_hash_table_iter_init(&it, engine->vms);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        struct vmh_vm *vm = value;

        if (!vmh_fault_affects(f, vm))
            continue;
        vmh_window_open(engine, vm);
        vmh_engine_vm_event(engine, VMH_EV_VM_ABNORMAL, vm, f, false);
        n++;
    }
    vmh_journal_release(engine);
    log_info("core", "fault %" PRIu64 " %s (%s) on %s%s%s: %zu VMs notified", f->id,
             vmh_cause_str(f->cause), vmh_severity_str(f->severity), f->host,
             f->vm_uuid ? " vm " : "", f->vm_uuid ? f->vm_uuid : "", n);
}

static char *
vmh_fault_key(const char *host, const char *vm_uuid, const char *resource, enum vmh_cause cause)
{
    return g_strdup_printf("%s|%s|%s|%d", host ? host : "", vm_uuid ? vm_uuid : "",
                           resource ? resource : "", (int)cause);
}

uint64_t
vmh_engine_raise_fault(struct vmh_engine *engine, const struct vmh_fault_report *r)
{
    char *key = vmh_fault_key(r->host, r->vm_uuid, r->resource, r->cause);
    struct vmh_fault *f = g_hash_table_lookup(engine->faults, key);

    if (!f && r->vm_uuid && !g_hash_table_contains(engine->vms, r->vm_uuid)) {
        log_debug("core", "fault %s on unknown vm %s ignored", vmh_cause_str(r->cause), r->vm_uuid);
        g_free(key);
        return 0;
    }
    if (f) {
        bool worse = r->severity < f->severity;

        g_free(key);
        if (g_strcmp0(f->value, r->value)) {
            g_free(f->value);
            f->value = g_strdup(r->value);
            vmh_engine_publish_later(engine);
        }
        if (worse) {
            /* The same fault grown worse is news to the managers. */
            f->severity = r->severity;
            vmh_engine_notify_abnormal(engine, f);
        }
        return f->id;
    }
    f = g_new0(struct vmh_fault, 1);
    f->id = ++engine->next_fault_id;
    f->key = key;
    f->host = g_strdup(r->host);
    f->vm_uuid = g_strdup(r->vm_uuid);
    f->cause = r->cause;
    f->severity = r->severity;
    f->detected_ms = vmh_time_real_ms();
    f->value = g_strdup(r->value);
    f->description = g_strdup(r->description);
    g_hash_table_insert(engine->faults, f->key, f);
    g_hash_table_insert(engine->faults_by_id, &f->id, f);
    engine->faults_detected++;
    vmh_engine_notify_abnormal(engine, f);
    vmh_engine_publish_later(engine);
    return f->id;
}

static void
vmh_engine_clear(struct vmh_engine *engine, struct vmh_fault *f)
{
    GHashTableIter it;
    gpointer value;

    g_hash_table_steal(engine->faults, f->key);
    g_hash_table_remove(engine->faults_by_id, &f->id);
    f->cleared_ms = vmh_time_real_ms();
    log_info("core", "fault %" PRIu64 " %s on %s cleared", f->id, vmh_cause_str(f->cause), f->host);
    /* As for a new fault: the cancelled cases leave the journal in one
     * write, before anyone is told. */
    vmh_journal_hold(engine);
    g_hash_table_iter_init(&it, engine->vms);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        struct vmh_vm *vm = value;
        bool cancelled = false;

        if (!vmh_fault_affects(f, vm))
            continue;
        if (!vmh_engine_vm_worst_fault(engine, vm)) {
            cancelled = vmh_window_faults_cleared(engine, vm);
        }
        vmh_engine_vm_event(engine, VMH_EV_FAULT_CLEARED, vm, f, cancelled);
    }
    vmh_journal_release(engine);
    g_queue_push_tail(engine->history, f);
    while (g_queue_get_length(engine->history) > VMH_FAULT_HISTORY)
        vmh_fault_free(g_queue_pop_head(engine->history));
    vmh_engine_publish_later(engine);
}

void
vmh_engine_clear_fault_of(struct vmh_engine *engine, const char *host, const char *vm_uuid,
                          const char *resource, enum vmh_cause cause)
{
    char *key = vmh_fault_key(host, vm_uuid, resource, cause);
    struct vmh_fault *f = g_hash_table_lookup(engine->faults, key);

    g_free(key);
    if (f)
        vmh_engine_clear(engine, f);
}

/* --- inventory --- */

static void
vmh_engine_recount(struct vmh_engine *engine)
{
    GHashTableIter it;
    gpointer value;

    g_hash_table_iter_init(&it, engine->hosts);
    while (g_hash_table_iter_next(&it, NULL, &value))
        ((struct vmh_host *)value)->vm_count = 0;
    g_hash_table_iter_init(&it, engine->vms);
    while (g_hash_table_iter_next(&it, NULL, &value))
        ((struct vmh_vm *)value)->host->vm_count++;
}

/* Adds or refreshes a VM from what its hypervisor reported; takes over dom. */
static void
vmh_engine_vm_upsert(struct vmh_engine *engine, struct vmh_host *host, struct vmh_domain_info *dom)
{
    struct vmh_vm *vm = g_hash_table_lookup(engine->vms, dom->uuid);

    if (vm && vm->migration == VMH_MIG_MIGRATING) {
        /* The migration defines and undefines it on both ends; its outcome
         * says where it is. */
        log_debug("core", "vm %s: inventory change on %s during its migration ignored", dom->uuid,
                  host->name);
        vmh_domain_info_clear(dom);
        return;
    }
    if (vm && vm->host != host) {
        if (vm->host->connection == VMH_CONN_CONNECTED) {
            if (dom->power == VMH_POWER_SHUTOFF && engine->hooks.remove_stale) {
                /* What an evacuation or an interrupted undefine left behind:
                 * the VM lives on, elsewhere. */
                log_warn("core",
                         "vm %s (%s): removing the stale shut-off copy on %s; it lives on %s",
                         dom->name, dom->uuid, host->name, vm->host->name);
                engine->hooks.remove_stale(host->name, dom->uuid, engine->hooks.opaque);
            } else {
                log_err("core",
                        "vm %s (%s) is %s on %s and defined on %s: left alone, an "
                        "operator must decide",
                        dom->name, dom->uuid, vmh_power_state_str(dom->power), host->name,
                        vm->host->name);
            }
            vmh_domain_info_clear(dom);
            return;
        }
        log_info("core", "vm %s (%s) moved from unreachable host %s to %s", dom->name, dom->uuid,
                 vm->host->name, host->name);
        vm->host->vm_count--;
        vm->host = host;
        host->vm_count++;
    }
    if (!vm) {
        vm = g_new0(struct vmh_vm, 1);
        vm->window_timer = -1;
        vm->host = host;
        vm->info = *dom;
        memset(dom, 0, sizeof *dom);
        g_hash_table_insert(engine->vms, vm->info.uuid, vm);
        host->vm_count++;
        vmh_engine_vm_apply_policy(engine, vm);
        log_info("core",
                 "vm %s (%s) on %s: %s, %u MiB, %u vCPU, manager %s, preprocessing %u s (%s)",
                 vm->info.name, vm->info.uuid, host->name, vmh_power_state_str(vm->info.power),
                 (unsigned)(vm->info.memory_kib / 1024), vm->info.vcpus,
                 vm->manager ? vm->manager : "none", vm->ppt, vmh_ppt_source_str(vm->ppt_source));
        if (vm->info.meta.error)
            log_warn("virt", "vm %s (%s): assignment metadata: %s", vm->info.name, vm->info.uuid,
                     vm->info.meta.error);
        vmh_mig_vm_appeared(engine, vm);
        return;
    }

    if (dom->meta.error && g_strcmp0(dom->meta.error, vm->info.meta.error) != 0)
        log_warn("virt", "vm %s (%s): assignment metadata: %s", dom->name, dom->uuid,
                 dom->meta.error);
    if (dom->power != vm->info.power)
        log_info("core", "vm %s (%s) on %s: %s -> %s", dom->name, dom->uuid, host->name,
                 vmh_power_state_str(vm->info.power), vmh_power_state_str(dom->power));
    vmh_domain_info_clear(&vm->info);
    vm->info = *dom;
    memset(dom, 0, sizeof *dom);
    vmh_engine_vm_apply_policy(engine, vm);
}

static void
vmh_engine_vm_forget(struct vmh_engine *engine, struct vmh_vm *vm)
{
    GList *keys = g_hash_table_get_values(engine->faults);

    /* Its own faults go with it; host-level ones stay with the host. */
    for (GList *l = keys; l; l = l->next) {
        struct vmh_fault *f = l->data;

        if (f->vm_uuid && !strcmp(f->vm_uuid, vm->info.uuid))
            vmh_engine_clear(engine, f);
    }
    g_list_free(keys);
    vmh_mig_vm_gone(engine, vm);
    vm->host->vm_count--;
    g_hash_table_remove(engine->vms, vm->info.uuid);
}

void
vmh_engine_host_connected(struct vmh_engine *engine, const char *name, struct vmh_domain_info *doms,
                          size_t n_doms)
{
    struct vmh_host *host = vmh_engine_host(engine, name);
    GHashTable *seen;
    GList *vms;

    if (!host) {
        vmh_domain_info_free_array(doms, n_doms);
        return;
    }
    host->connection = VMH_CONN_CONNECTED;
    g_free(host->last_error);
    host->last_error = NULL;

    seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (size_t i = 0; i < n_doms; i++) {
        char *uuid = g_strdup(doms[i].uuid);

        vmh_engine_vm_upsert(engine, host, &doms[i]);
        g_hash_table_add(seen, uuid);
    }
    /* What the host no longer has was undefined while we were away. */
    vms = g_hash_table_get_values(engine->vms);
    for (GList *l = vms; l; l = l->next) {
        struct vmh_vm *vm = l->data;
        if (vm->host == host && vm->migration != VMH_MIG_MIGRATING &&
            !g_hash_table_contains(seen, vm->info.uuid)) {
            log_info("core", "vm %s (%s) is gone from %s", vm->info.name, vm->info.uuid,
                     host->name);
            vmh_engine_vm_forget(engine, vm);
        }
    }
    g_list_free(vms);
    g_hash_table_destroy(seen);
    vmh_engine_recount(engine);
    free(doms);
    log_info("core", "host %s: connected, %u domains", host->name, host->vm_count);
    vmh_engine_clear_fault_of(engine, host->name, NULL, NULL, VMH_CAUSE_HOST_UNREACHABLE);
    vmh_mig_hosts_changed(engine);
    vmh_engine_publish_later(engine);
}

void
vmh_engine_host_disconnected(struct vmh_engine *engine, const char *name, const char *reason)
{
    struct vmh_host *host = vmh_engine_host(engine, name);
    bool was_connected;

    if (!host)
        return;
    was_connected = host->connection == VMH_CONN_CONNECTED;
    host->connection = VMH_CONN_DISCONNECTED;
    if (g_strcmp0(host->last_error, reason) != 0) {
        g_free(host->last_error);
        host->last_error = g_strdup(reason);
    }
    if (was_connected) {
        struct vmh_fault_report r = {
            .host = name,
            .cause = VMH_CAUSE_HOST_UNREACHABLE,
            .severity = VMH_SEV_CRITICAL,
            .value = reason,
            .description = "the hypervisor connection was lost",
        };

        log_warn("core", "host %s: disconnected (%s); its %u VMs are kept as last seen", name,
                 reason ? reason : "unknown reason", host->vm_count);
        vmh_engine_raise_fault(engine, &r);
    }
    vmh_engine_publish_later(engine);
}

void
vmh_engine_domain_update(struct vmh_engine *engine, const char *name, struct vmh_domain_info *dom)
{
    struct vmh_host *host = vmh_engine_host(engine, name);

    if (!host) {
        vmh_domain_info_clear(dom);
        return;
    }
    vmh_engine_vm_upsert(engine, host, dom);
    vmh_engine_publish_later(engine);
}

static struct vmh_vm *
vmh_engine_vm_on(struct vmh_engine *engine, const char *host, const char *uuid)
{
    struct vmh_vm *vm = g_hash_table_lookup(engine->vms, uuid);
    if (vm && vm->migration == VMH_MIG_MIGRATING)
        return NULL; /* its outcome, not the events of the move, tells */
    return vm && !strcmp(vm->host->name, host) ? vm : NULL;
}

void
vmh_engine_domain_power(struct vmh_engine *engine, const char *name, const char *uuid,
                        enum vmh_power_state power)
{
    struct vmh_vm *vm = vmh_engine_vm_on(engine, name, uuid);

    if (!vm)
        return;
    if (power == VMH_POWER_SHUTOFF && !vm->info.persistent) {
        /* A transient domain ceases to exist when it stops. */
        vmh_engine_domain_removed(engine, name, uuid);
        return;
    }
    if (vm->info.power != power)
        log_info("core", "vm %s (%s) on %s: %s -> %s", vm->info.name, uuid, name,
                 vmh_power_state_str(vm->info.power), vmh_power_state_str(power));
    if (power == VMH_POWER_RUNNING && vm->info.power != VMH_POWER_RUNNING) {
        /* Started again or resumed: what libvirt reported of its last run
         * is over. */
        static const enum vmh_cause over[] = {VMH_CAUSE_VM_CRASHED, VMH_CAUSE_WATCHDOG,
                                              VMH_CAUSE_IO_ERROR, VMH_CAUSE_GUEST_MEMORY_FAILURE};

        for (size_t i = 0; i < G_N_ELEMENTS(over); i++)
            vmh_engine_clear_fault_of(engine, name, uuid, NULL, over[i]);
    }
    vm->info.power = power;
    vmh_engine_publish_later(engine);
}

void
vmh_engine_domain_removed(struct vmh_engine *engine, const char *name, const char *uuid)
{
    struct vmh_vm *vm = vmh_engine_vm_on(engine, name, uuid);

    if (!vm)
        return;
    log_info("core", "vm %s (%s) undefined on %s", vm->info.name, uuid, name);
    vmh_engine_vm_forget(engine, vm);
    vmh_engine_publish_later(engine);
}

void
vmh_engine_host_sensors(struct vmh_engine *engine, const char *name, bool available,
                        const struct vmh_sensor_snap *sensors, size_t n_sensors,
                        uint64_t mem_corrected, uint64_t mem_uncorrected)
{
    struct vmh_host *host = vmh_engine_host(engine, name);

    if (!host)
        return;
    for (size_t i = 0; i < host->n_sensors; i++)
        g_free((char *)host->sensors[i].name);
    g_free(host->sensors);
    host->sensors = g_new0(struct vmh_sensor_snap, n_sensors + 1);
    for (size_t i = 0; i < n_sensors; i++) {
        host->sensors[i] = sensors[i];
        host->sensors[i].name = g_strdup(sensors[i].name);
    }
    host->n_sensors = n_sensors;
    host->sysfs_monitoring = available;
    host->mem_corrected = mem_corrected;
    host->mem_uncorrected = mem_uncorrected;
    /* Readings change at every poll on real hardware: readers see them at
     * most once a second, faults (published at once) are not held back. */
    if (vmh_time_mono_ms() - engine->sensors_published_ms >= 1000) {
        engine->sensors_published_ms = vmh_time_mono_ms();
        vmh_engine_publish_later(engine);
    }
}

/* --- configuration --- */

void
vmh_engine_apply_config(struct vmh_engine *engine, struct vmh_config *cfg)
{
    struct vmh_config *old = engine->cfg;
    GList *hosts = g_hash_table_get_values(engine->hosts);
    GHashTableIter it;
    gpointer value;

    engine->cfg = cfg;
    /* Hosts gone, or whose URI changed, are released with their VMs. */
    for (GList *l = hosts; l; l = l->next) {
        struct vmh_host *host = l->data;
        const struct vmh_host_conf *conf = vmh_config_find_host(cfg, host->name);
        GList *vms, *faults;

        if (conf && !strcmp(conf->uri, host->conf->uri)) {
            host->conf = conf;
            continue;
        }
        log_info("core", "host %s: %s", host->name,
                 conf ? "URI changed, reconnecting" : "removed from the configuration");
        if (engine->hooks.host_removed)
            engine->hooks.host_removed(host->name, engine->hooks.opaque);
        vms = g_hash_table_get_values(engine->vms);
        for (GList *v = vms; v; v = v->next)
            if (((struct vmh_vm *)v->data)->host == host)
                vmh_engine_vm_forget(engine, v->data);
        g_list_free(vms);
        faults = g_hash_table_get_values(engine->faults);
        for (GList *f = faults; f; f = f->next)
            if (!strcmp(((struct vmh_fault *)f->data)->host, host->name))
                vmh_engine_clear(engine, f->data);
        g_list_free(faults);
        g_hash_table_remove(engine->hosts, host->name);
    }
    g_list_free(hosts);
    for (size_t i = 0; i < cfg->n_hosts; i++) {
        if (vmh_engine_host(engine, cfg->hosts[i].name))
            continue;
        vmh_engine_host_add(engine, &cfg->hosts[i]);
        log_info("core", "host %s: added (%s)", cfg->hosts[i].name, cfg->hosts[i].uri);
        if (engine->hooks.host_added)
            engine->hooks.host_added(&cfg->hosts[i], engine->hooks.opaque);
    }
    /* Managers and times may have changed; a running window keeps its
     * deadline, the new time applies to windows not yet started. */
    g_hash_table_iter_init(&it, engine->vms);
    while (g_hash_table_iter_next(&it, NULL, &value))
        vmh_engine_vm_apply_policy(engine, value);
    vmh_config_free(old);
    vmh_mig_hosts_changed(engine);
    vmh_engine_publish_later(engine);
}

/* --- commands from front ends --- */

struct vmh_engine_call {
    struct vmh_engine *engine;
    const char *host;
    const char *vm_uuid;
    const char *target;
    enum vmh_cause cause;
    enum vmh_severity severity;
    const char *description;
    uint64_t fault_id;
    struct vmh_config *cfg;
    bool ready; /* migration-ready rather than migrate-vm */
    struct vmh_rpc_result *res;
};

static void vmh_rpc_fail(struct vmh_rpc_result *res, enum vmh_rpc_status status, const char *fmt,
                         ...) G_GNUC_PRINTF(3, 4);

static void
vmh_rpc_fail(struct vmh_rpc_result *res, enum vmh_rpc_status status, const char *fmt, ...)
{
    va_list ap;

    res->status = status;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof res->message, fmt, ap);
    va_end(ap);
}

static void
vmh_engine_report_fault_cb(void *opaque)
{
    struct vmh_engine_call *c = opaque;
    struct vmh_engine *engine = c->engine;
    struct vmh_fault_report r = {
        .cause = c->cause,
        .severity = c->severity,
        .description = c->description,
        .resource = "report-fault",
    };
    char *vm_uuid = NULL;

    if (c->vm_uuid) {
        struct vmh_vm *vm;

        vm_uuid = g_ascii_strdown(c->vm_uuid, -1);
        vm = g_hash_table_lookup(engine->vms, vm_uuid);
        if (!vm) {
            vmh_rpc_fail(c->res, VMH_RPC_UNKNOWN_VM, "no VM with UUID %s is known", vm_uuid);
            g_free(vm_uuid);
            return;
        }
        r.host = vm->host->name;
        r.vm_uuid = vm_uuid;
    } else {
        if (!vmh_engine_host(engine, c->host)) {
            vmh_rpc_fail(c->res, VMH_RPC_UNKNOWN_HOST, "no host %s is configured", c->host);
            return;
        }
        r.host = c->host;
    }
    c->res->status = VMH_RPC_OK;
    c->res->fault_id = vmh_engine_raise_fault(engine, &r);
    g_free(vm_uuid);
}

void
vmh_engine_rpc_report_fault(struct vmh_engine *engine, const char *host, const char *vm_uuid,
                            enum vmh_cause cause, enum vmh_severity severity,
                            const char *description, struct vmh_rpc_result *res)
{
    struct vmh_engine_call c = {.engine = engine,
                                .host = host,
                                .vm_uuid = vm_uuid,
                                .cause = cause,
                                .severity = severity,
                                .description = description,
                                .res = res};

    memset(res, 0, sizeof *res);
    if (!host == !vm_uuid) {
        vmh_rpc_fail(res, VMH_RPC_INVALID, "name either a host or a VM");
        return;
    }
    if (cause == VMH_CAUSE_NONE || cause >= VMH_CAUSE_COUNT) {
        vmh_rpc_fail(res, VMH_RPC_INVALID, "unknown cause");
        return;
    }
    vmh_loop_call(engine->loop, vmh_engine_report_fault_cb, &c);
}

static void
vmh_engine_clear_fault_cb(void *opaque)
{
    struct vmh_engine_call *c = opaque;
    struct vmh_fault *f = g_hash_table_lookup(c->engine->faults_by_id, &c->fault_id);

    if (!f) {
        vmh_rpc_fail(c->res, VMH_RPC_UNKNOWN_FAULT, "no active fault has id %" PRIu64, c->fault_id);
        return;
    }
    c->res->status = VMH_RPC_OK;
    vmh_engine_clear(c->engine, f);
}

void
vmh_engine_rpc_clear_fault(struct vmh_engine *engine, uint64_t fault_id, struct vmh_rpc_result *res)
{
    struct vmh_engine_call c = {.engine = engine, .fault_id = fault_id, .res = res};

    memset(res, 0, sizeof *res);
    vmh_loop_call(engine->loop, vmh_engine_clear_fault_cb, &c);
}

static void
vmh_engine_migrate_cb(void *opaque)
{
    struct vmh_engine_call *c = opaque;
    char *uuid = g_ascii_strdown(c->vm_uuid, -1);
    struct vmh_vm *vm = g_hash_table_lookup(c->engine->vms, uuid);
    struct vmh_host *target;
    char why[256];

    c->res->status = VMH_RPC_OK;
    if (!vm) {
        vmh_rpc_fail(c->res, VMH_RPC_UNKNOWN_VM, "no VM with UUID %s is known", uuid);
    } else if (c->target && !vmh_engine_host(c->engine, c->target)) {
        vmh_rpc_fail(c->res, VMH_RPC_UNKNOWN_HOST, "no host %s is configured", c->target);
    } else if (vm->migration == VMH_MIG_MIGRATING) {
        vmh_rpc_fail(c->res, VMH_RPC_INVALID, "VM %s is already migrating to %s", uuid,
                     vm->target_host);
    } else if (c->ready && vm->migration != VMH_MIG_PENDING && !vm->waiting_target) {
        vmh_rpc_fail(c->res, VMH_RPC_INVALID, "no migration is pending for VM %s (it is %s)", uuid,
                     vmh_migration_state_str(vm->migration));
    } else if (c->target &&
               vmh_mig_choose(c->engine, vm, c->target, &target, why, sizeof why) < 0) {
        vmh_rpc_fail(c->res, VMH_RPC_INVALID, "%s", why);
    } else {
        if (vm->migration != VMH_MIG_PENDING && !vm->waiting_target)
            vmh_window_skip(c->engine, vm); /* an operator's migrate-vm */
        /* The request is told with what it started, after the journal. */
        vmh_journal_hold(c->engine);
        vmh_journal_tell_log(c->engine, VMH_LOG_INFO, "vm %s (%s): %s%s%s", vm->info.name, uuid,
                             c->ready ? "migration-ready from its manager"
                                      : "migrate-vm from an operator",
                             c->target ? ", target " : "", c->target ? c->target : "");
        vmh_mig_request(c->engine, vm, c->target);
        vmh_journal_release(c->engine);
    }
    g_free(uuid);
}

void
vmh_engine_rpc_migration_ready(struct vmh_engine *engine, const char *vm_uuid,
                               const char *target_host, struct vmh_rpc_result *res)
{
    struct vmh_engine_call c = {
        .engine = engine, .vm_uuid = vm_uuid, .target = target_host, .ready = true, .res = res};

    memset(res, 0, sizeof *res);
    vmh_loop_call(engine->loop, vmh_engine_migrate_cb, &c);
}

void
vmh_engine_rpc_migrate_vm(struct vmh_engine *engine, const char *vm_uuid, const char *target_host,
                          struct vmh_rpc_result *res)
{
    struct vmh_engine_call c = {
        .engine = engine, .vm_uuid = vm_uuid, .target = target_host, .res = res};

    memset(res, 0, sizeof *res);
    vmh_loop_call(engine->loop, vmh_engine_migrate_cb, &c);
}

static void
vmh_engine_apply_config_cb(void *opaque)
{
    struct vmh_engine_call *c = opaque;

    vmh_engine_apply_config(c->engine, c->cfg);
}

void
vmh_engine_rpc_apply_config(struct vmh_engine *engine, struct vmh_config *cfg)
{
    struct vmh_engine_call c = {.engine = engine, .cfg = cfg};

    vmh_loop_call(engine->loop, vmh_engine_apply_config_cb, &c);
}

/* Called by front-end threads for every notification and trap: the
 * snapshots read these counters live (vmh_snapshot_stats()).  Publishing a
 * snapshot for each, as this once did, woke the engine and rebuilt the
 * whole picture up to a thousand times in a storm, on the cores the
 * notifications were waiting for. */
void
vmh_engine_count(struct vmh_engine *engine, enum vmh_stat stat, uint64_t n)
{
    uint64_t *counter =
        stat == VMH_STAT_TRAPS_SENT ? &engine->sent.traps : &engine->sent.notifications;

    __atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}

void
vmh_snapshot_stats(const struct vmh_snapshot *snap, struct vmh_stats *out)
{
    *out = snap->stats;
    if (snap->sent) {
        out->notifications_sent = __atomic_load_n(&snap->sent->notifications, __ATOMIC_RELAXED);
        out->traps_sent = __atomic_load_n(&snap->sent->traps, __ATOMIC_RELAXED);
    }
}

/* --- snapshots --- */

static int
vmh_vm_snap_cmp(const void *a, const void *b)
{
    return strcmp(((const struct vmh_vm_snap *)a)->uuid, ((const struct vmh_vm_snap *)b)->uuid);
}

static int
vmh_host_snap_cmp(const void *a, const void *b)
{
    return strcmp(((const struct vmh_host_snap *)a)->name, ((const struct vmh_host_snap *)b)->name);
}

static int
vmh_fault_snap_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct vmh_fault_snap *)a)->id, y = ((const struct vmh_fault_snap *)b)->id;

    return x < y ? -1 : x > y;
}

static const char *
vmh_snap_str(GStringChunk *chunk, const char *s)
{
    return s ? g_string_chunk_insert_const(chunk, s) : NULL;
}

static void
vmh_snap_fault(struct vmh_snapshot_priv *priv, struct vmh_fault_snap *fs, const struct vmh_fault *f)
{
    fs->id = f->id;
    fs->host = vmh_snap_str(priv->strings, f->host);
    fs->vm_uuid = vmh_snap_str(priv->strings, f->vm_uuid);
    fs->cause = f->cause;
    fs->severity = f->severity;
    fs->detected_ms = f->detected_ms;
    fs->cleared_ms = f->cleared_ms;
    fs->value = vmh_snap_str(priv->strings, f->value);
    fs->description = vmh_snap_str(priv->strings, f->description);
}

static struct vmh_snapshot *
vmh_engine_build_snapshot(struct vmh_engine *engine)
{
    struct vmh_snapshot_priv *priv = g_new0(struct vmh_snapshot_priv, 1);
    struct vmh_snapshot *snap = &priv->pub;
    GHashTableIter it;
    gpointer value;
    size_t i = 0, n_sensors = 0, s = 0;

    priv->refs = 1;
    priv->strings = g_string_chunk_new(4096);
    snap->generation = ++engine->generation;
    snap->taken_at_ms = vmh_time_real_ms();

    snap->n_hosts = g_hash_table_size(engine->hosts);
    snap->hosts = g_new0(struct vmh_host_snap, snap->n_hosts + 1);
    g_hash_table_iter_init(&it, engine->hosts);
    while (g_hash_table_iter_next(&it, NULL, &value))
        n_sensors += ((struct vmh_host *)value)->n_sensors;
    priv->sensors = g_new0(struct vmh_sensor_snap, n_sensors + 1);
    g_hash_table_iter_init(&it, engine->hosts);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        const struct vmh_host *host = value;
        struct vmh_host_snap *hs = &snap->hosts[i++];

        hs->index = host->index;
        hs->name = vmh_snap_str(priv->strings, host->name);
        hs->uri = vmh_snap_str(priv->strings, host->conf->uri);
        hs->connection = host->connection;
        hs->last_error = vmh_snap_str(priv->strings, host->last_error);
        hs->health = vmh_engine_host_health(engine, host);
        hs->vm_count = host->vm_count;
        hs->sysfs_monitoring = host->sysfs_monitoring;
        hs->sensors = &priv->sensors[s];
        hs->n_sensors = host->n_sensors;
        for (size_t k = 0; k < host->n_sensors; k++, s++) {
            priv->sensors[s] = host->sensors[k];
            priv->sensors[s].name = vmh_snap_str(priv->strings, host->sensors[k].name);
        }
        hs->mem_corrected = host->mem_corrected;
        hs->mem_uncorrected = host->mem_uncorrected;
    }
    qsort(snap->hosts, snap->n_hosts, sizeof *snap->hosts, vmh_host_snap_cmp);

    snap->n_vms = g_hash_table_size(engine->vms);
    snap->vms = g_new0(struct vmh_vm_snap, snap->n_vms + 1);
    i = 0;
    g_hash_table_iter_init(&it, engine->vms);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        const struct vmh_vm *vm = value;
        struct vmh_vm_snap *vs = &snap->vms[i++];

        memcpy(vs->uuid, vm->info.uuid, sizeof vs->uuid);
        vs->name = vmh_snap_str(priv->strings, vm->info.name);
        vs->host = vmh_snap_str(priv->strings, vm->host->name);
        vs->power = vm->info.power;
        vs->health = vmh_engine_vm_health(engine, vm, &vs->cause);
        vs->manager = vmh_snap_str(priv->strings, vm->manager);
        vs->manager_configured = vm->manager_configured;
        vs->ppt = vm->ppt;
        vs->ppt_source = vm->ppt_source;
        vs->memory_kib = vm->info.memory_kib;
        vs->vcpus = vm->info.vcpus;
        vs->migration = vm->migration;
        vs->deadline_ms = vm->deadline_ms;
        vs->target_host = vmh_snap_str(priv->strings, vm->target_host);
        vs->migration_error = vmh_snap_str(priv->strings, vm->migration_error);
    }
    qsort(snap->vms, snap->n_vms, sizeof *snap->vms, vmh_vm_snap_cmp);

    snap->n_faults = g_hash_table_size(engine->faults) + g_queue_get_length(engine->history);
    snap->faults = g_new0(struct vmh_fault_snap, snap->n_faults + 1);
    i = 0;
    g_hash_table_iter_init(&it, engine->faults);
    while (g_hash_table_iter_next(&it, NULL, &value))
        vmh_snap_fault(priv, &snap->faults[i++], value);
    for (GList *l = engine->history->head; l; l = l->next)
        vmh_snap_fault(priv, &snap->faults[i++], l->data);
    qsort(snap->faults, snap->n_faults, sizeof *snap->faults, vmh_fault_snap_cmp);

    snap->stats.faults_detected = engine->faults_detected;
    snap->stats.migrations_started = engine->migrations_started;
    snap->stats.migrations_completed = engine->migrations_completed;
    snap->stats.migrations_failed = engine->migrations_failed;
    snap->sent = &engine->sent;
    vmh_snapshot_stats(snap, &snap->stats);
    return snap;
}

void
vmh_engine_publish(struct vmh_engine *engine)
{
    struct vmh_snapshot *snap = vmh_engine_build_snapshot(engine);
    struct vmh_snapshot *old;

    pthread_mutex_lock(&engine->snap_lock);
    old = engine->snap;
    engine->snap = snap;
    pthread_mutex_unlock(&engine->snap_lock);
    vmh_snapshot_unref(old);
}

static void
vmh_engine_publish_cb(void *opaque)
{
    struct vmh_engine *engine = opaque;

    engine->publish_timer = -1;
    vmh_engine_publish(engine);
}

/* Coalesces a burst of changes (a host's whole inventory, an event storm)
 * into one snapshot at the end of the loop iteration. */
void
vmh_engine_publish_later(struct vmh_engine *engine)
{
    if (engine->publish_timer >= 0)
        return;
    engine->publish_timer =
        vmh_loop_timer_once(engine->loop, 0, vmh_engine_publish_cb, engine, NULL);
    if (engine->publish_timer < 0)
        vmh_engine_publish(engine);
}

struct vmh_snapshot *
vmh_engine_snapshot(struct vmh_engine *engine)
{
    struct vmh_snapshot_priv *priv;

    pthread_mutex_lock(&engine->snap_lock);
    priv = (struct vmh_snapshot_priv *)engine->snap;
    if (priv)
        g_atomic_int_inc(&priv->refs);
    pthread_mutex_unlock(&engine->snap_lock);
    return priv ? &priv->pub : NULL;
}

void
vmh_snapshot_unref(struct vmh_snapshot *snap)
{
    struct vmh_snapshot_priv *priv = (struct vmh_snapshot_priv *)snap;

    if (!priv || !g_atomic_int_dec_and_test(&priv->refs))
        return;
    g_string_chunk_free(priv->strings);
    g_free(priv->sensors);
    g_free(snap->hosts);
    g_free(snap->vms);
    g_free(snap->faults);
    g_free(priv);
}

const struct vmh_vm_snap *
vmh_snapshot_find_vm(const struct vmh_snapshot *snap, const char *uuid)
{
    struct vmh_vm_snap key;

    if (!snap->n_vms || strlen(uuid) != VMH_UUID_LEN)
        return NULL;
    memcpy(key.uuid, uuid, sizeof key.uuid);
    return bsearch(&key, snap->vms, snap->n_vms, sizeof key, vmh_vm_snap_cmp);
}

const struct vmh_host_snap *
vmh_snapshot_find_host(const struct vmh_snapshot *snap, const char *name)
{
    struct vmh_host_snap key = {.name = name};

    if (!snap->n_hosts || !name)
        return NULL;
    return bsearch(&key, snap->hosts, snap->n_hosts, sizeof key, vmh_host_snap_cmp);
}
