#include "core/engine.h"

#include "core/policy.h"
#include "util/log.h"
#include "util/time.h"

#include <glib.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct vmh_host {
    const struct vmh_host_conf *conf; /* points into engine->cfg */
    enum vmh_connection connection;
    char *last_error;
    uint32_t vm_count;
};

struct vmh_vm {
    struct vmh_domain_info info;
    struct vmh_host *host;
    char *manager; /* effective manager, NULL when none */
    bool manager_configured;
    uint32_t ppt;
    enum vmh_ppt_source ppt_source;
    enum vmh_migration_state migration;
};

struct vmh_engine {
    struct vmh_loop *loop;
    struct vmh_config *cfg;
    struct vmh_host *hosts; /* parallel to cfg->hosts */
    size_t n_hosts;
    GHashTable *vms; /* uuid -> struct vmh_vm */

    pthread_mutex_t snap_lock;
    struct vmh_snapshot *snap;
    uint64_t generation;
    int publish_timer;
};

/* The snapshot and the strings it points to live in one allocation group. */
struct vmh_snapshot_priv {
    struct vmh_snapshot pub;
    gint refs;
    GStringChunk *strings;
};

static struct vmh_host *
vmh_engine_host(struct vmh_engine *engine, const char *name)
{
    const struct vmh_host_conf *conf = vmh_config_find_host(engine->cfg, name);

    return conf ? &engine->hosts[conf - engine->cfg->hosts] : NULL;
}

static void
vmh_vm_free(void *opaque)
{
    struct vmh_vm *vm = opaque;

    vmh_domain_info_clear(&vm->info);
    free(vm->manager);
    free(vm);
}

static void vmh_engine_publish_later(struct vmh_engine *engine);

struct vmh_engine *
vmh_engine_new(struct vmh_loop *loop, struct vmh_config *cfg)
{
    struct vmh_engine *engine = calloc(1, sizeof *engine);

    if (!engine)
        return NULL;
    engine->loop = loop;
    engine->cfg = cfg;
    engine->n_hosts = cfg->n_hosts;
    engine->hosts = calloc(cfg->n_hosts ? cfg->n_hosts : 1, sizeof *engine->hosts);
    engine->vms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, vmh_vm_free);
    pthread_mutex_init(&engine->snap_lock, NULL);
    engine->publish_timer = -1;
    for (size_t i = 0; i < cfg->n_hosts; i++) {
        engine->hosts[i].conf = &cfg->hosts[i];
        engine->hosts[i].connection = VMH_CONN_DISCONNECTED;
    }
    vmh_engine_publish(engine);
    return engine;
}

void
vmh_engine_free(struct vmh_engine *engine)
{
    if (!engine)
        return;
    vmh_loop_timer_cancel(engine->publish_timer);
    g_hash_table_destroy(engine->vms);
    for (size_t i = 0; i < engine->n_hosts; i++)
        free(engine->hosts[i].last_error);
    free(engine->hosts);
    vmh_snapshot_unref(engine->snap);
    pthread_mutex_destroy(&engine->snap_lock);
    vmh_config_free(engine->cfg);
    free(engine);
}

const struct vmh_config *
vmh_engine_config(const struct vmh_engine *engine)
{
    return engine->cfg;
}

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
    free(vm->manager);
    vm->manager = eff.manager ? strdup(eff.manager) : NULL;
    vm->manager_configured = eff.manager_configured;
    vm->ppt = eff.ppt;
    vm->ppt_source = eff.source;
}

static void
vmh_engine_recount(struct vmh_engine *engine)
{
    GHashTableIter it;
    gpointer value;

    for (size_t i = 0; i < engine->n_hosts; i++)
        engine->hosts[i].vm_count = 0;
    g_hash_table_iter_init(&it, engine->vms);
    while (g_hash_table_iter_next(&it, NULL, &value))
        ((struct vmh_vm *)value)->host->vm_count++;
}

/* Adds or refreshes a VM from what its hypervisor reported; takes over dom. */
static void
vmh_engine_vm_upsert(struct vmh_engine *engine, struct vmh_host *host, struct vmh_domain_info *dom)
{
    struct vmh_vm *vm = g_hash_table_lookup(engine->vms, dom->uuid);

    if (vm && vm->host != host) {
        if (vm->host->connection == VMH_CONN_CONNECTED) {
            log_warn("core", "vm %s (%s) is defined on both %s and %s; keeping it on %s", dom->name,
                     dom->uuid, vm->host->conf->name, host->conf->name, vm->host->conf->name);
            vmh_domain_info_clear(dom);
            return;
        }
        log_info("core", "vm %s (%s) moved from unreachable host %s to %s", dom->name, dom->uuid,
                 vm->host->conf->name, host->conf->name);
        vm->host->vm_count--;
        vm->host = host;
        host->vm_count++;
    }
    if (!vm) {
        vm = calloc(1, sizeof *vm);
        if (!vm) {
            log_err("core", "out of memory adding vm %s", dom->uuid);
            vmh_domain_info_clear(dom);
            return;
        }
        vm->host = host;
        vm->info = *dom;
        memset(dom, 0, sizeof *dom);
        g_hash_table_insert(engine->vms, vm->info.uuid, vm);
        host->vm_count++;
        vmh_engine_vm_apply_policy(engine, vm);
        log_info(
            "core", "vm %s (%s) on %s: %s, %u MiB, %u vCPU, manager %s, preprocessing %u s (%s)",
            vm->info.name, vm->info.uuid, host->conf->name, vmh_power_state_str(vm->info.power),
            (unsigned)(vm->info.memory_kib / 1024), vm->info.vcpus,
            vm->manager ? vm->manager : "none", vm->ppt, vmh_ppt_source_str(vm->ppt_source));
        if (vm->info.meta.error)
            log_warn("virt", "vm %s (%s): assignment metadata: %s", vm->info.name, vm->info.uuid,
                     vm->info.meta.error);
        return;
    }

    if (dom->meta.error && g_strcmp0(dom->meta.error, vm->info.meta.error) != 0)
        log_warn("virt", "vm %s (%s): assignment metadata: %s", dom->name, dom->uuid,
                 dom->meta.error);
    if (dom->power != vm->info.power)
        log_info("core", "vm %s (%s) on %s: %s -> %s", dom->name, dom->uuid, host->conf->name,
                 vmh_power_state_str(vm->info.power), vmh_power_state_str(dom->power));
    vmh_domain_info_clear(&vm->info);
    vm->info = *dom;
    memset(dom, 0, sizeof *dom);
    vmh_engine_vm_apply_policy(engine, vm);
}

void
vmh_engine_host_connected(struct vmh_engine *engine, const char *name, struct vmh_domain_info *doms,
                          size_t n_doms)
{
    struct vmh_host *host = vmh_engine_host(engine, name);
    GHashTable *seen;
    GHashTableIter it;
    gpointer value;

    if (!host) {
        vmh_domain_info_free_array(doms, n_doms);
        return;
    }
    host->connection = VMH_CONN_CONNECTED;
    free(host->last_error);
    host->last_error = NULL;

    seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (size_t i = 0; i < n_doms; i++) {
        char *uuid = g_strdup(doms[i].uuid);

        vmh_engine_vm_upsert(engine, host, &doms[i]);
        g_hash_table_add(seen, uuid);
    }
    /* What the host no longer has was undefined while we were away. */
    g_hash_table_iter_init(&it, engine->vms);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        struct vmh_vm *vm = value;

        if (vm->host == host && !g_hash_table_contains(seen, vm->info.uuid)) {
            log_info("core", "vm %s (%s) is gone from %s", vm->info.name, vm->info.uuid,
                     host->conf->name);
            g_hash_table_iter_remove(&it);
        }
    }
    g_hash_table_destroy(seen);
    vmh_engine_recount(engine);
    free(doms);
    log_info("core", "host %s: connected, %u domains", host->conf->name, host->vm_count);
    vmh_engine_publish_later(engine);
}

void
vmh_engine_host_disconnected(struct vmh_engine *engine, const char *name, const char *reason)
{
    struct vmh_host *host = vmh_engine_host(engine, name);

    if (!host)
        return;
    if (host->connection == VMH_CONN_CONNECTED)
        log_warn("core", "host %s: disconnected (%s); its %u VMs are kept as last seen", name,
                 reason ? reason : "unknown reason", host->vm_count);
    host->connection = VMH_CONN_DISCONNECTED;
    if (g_strcmp0(host->last_error, reason) != 0) {
        free(host->last_error);
        host->last_error = reason ? strdup(reason) : NULL;
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

void
vmh_engine_domain_power(struct vmh_engine *engine, const char *name, const char *uuid,
                        enum vmh_power_state power)
{
    struct vmh_vm *vm = g_hash_table_lookup(engine->vms, uuid);

    if (!vm || strcmp(vm->host->conf->name, name) != 0)
        return;
    if (power == VMH_POWER_SHUTOFF && !vm->info.persistent) {
        /* A transient domain ceases to exist when it stops. */
        vmh_engine_domain_removed(engine, name, uuid);
        return;
    }
    if (vm->info.power != power)
        log_info("core", "vm %s (%s) on %s: %s -> %s", vm->info.name, uuid, name,
                 vmh_power_state_str(vm->info.power), vmh_power_state_str(power));
    vm->info.power = power;
    vmh_engine_publish_later(engine);
}

void
vmh_engine_domain_removed(struct vmh_engine *engine, const char *name, const char *uuid)
{
    struct vmh_vm *vm = g_hash_table_lookup(engine->vms, uuid);

    if (!vm || strcmp(vm->host->conf->name, name) != 0)
        return;
    log_info("core", "vm %s (%s) undefined on %s", vm->info.name, uuid, name);
    vm->host->vm_count--;
    g_hash_table_remove(engine->vms, uuid);
    vmh_engine_publish_later(engine);
}

/* --- snapshots --- */

static enum vmh_health
vmh_engine_host_health(const struct vmh_host *host)
{
    return host->connection == VMH_CONN_CONNECTED ? VMH_HEALTH_NORMAL : VMH_HEALTH_UNREACHABLE;
}

static int
vmh_vm_snap_cmp(const void *a, const void *b)
{
    return strcmp(((const struct vmh_vm_snap *)a)->uuid, ((const struct vmh_vm_snap *)b)->uuid);
}

static const char *
vmh_snap_str(GStringChunk *chunk, const char *s)
{
    return s ? g_string_chunk_insert_const(chunk, s) : NULL;
}

static struct vmh_snapshot *
vmh_engine_build_snapshot(struct vmh_engine *engine)
{
    struct vmh_snapshot_priv *priv = calloc(1, sizeof *priv);
    struct vmh_snapshot *snap;
    GHashTableIter it;
    gpointer value;
    size_t i = 0;

    if (!priv)
        return NULL;
    snap = &priv->pub;
    priv->refs = 1;
    priv->strings = g_string_chunk_new(4096);
    snap->generation = ++engine->generation;
    snap->taken_at_ms = vmh_time_real_ms();
    snap->n_hosts = engine->n_hosts;
    snap->hosts = calloc(engine->n_hosts ? engine->n_hosts : 1, sizeof *snap->hosts);
    snap->n_vms = g_hash_table_size(engine->vms);
    snap->vms = calloc(snap->n_vms ? snap->n_vms : 1, sizeof *snap->vms);
    if (!snap->hosts || !snap->vms) {
        vmh_snapshot_unref(snap);
        return NULL;
    }
    for (size_t h = 0; h < engine->n_hosts; h++) {
        const struct vmh_host *host = &engine->hosts[h];
        struct vmh_host_snap *hs = &snap->hosts[h];

        hs->name = vmh_snap_str(priv->strings, host->conf->name);
        hs->uri = vmh_snap_str(priv->strings, host->conf->uri);
        hs->connection = host->connection;
        hs->last_error = vmh_snap_str(priv->strings, host->last_error);
        hs->health = vmh_engine_host_health(host);
        hs->vm_count = host->vm_count;
    }
    g_hash_table_iter_init(&it, engine->vms);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        const struct vmh_vm *vm = value;
        struct vmh_vm_snap *vs = &snap->vms[i++];

        memcpy(vs->uuid, vm->info.uuid, sizeof vs->uuid);
        vs->name = vmh_snap_str(priv->strings, vm->info.name);
        vs->host = vmh_snap_str(priv->strings, vm->host->conf->name);
        vs->power = vm->info.power;
        vs->health = vmh_engine_host_health(vm->host);
        vs->manager = vmh_snap_str(priv->strings, vm->manager);
        vs->manager_configured = vm->manager_configured;
        vs->ppt = vm->ppt;
        vs->ppt_source = vm->ppt_source;
        vs->memory_kib = vm->info.memory_kib;
        vs->vcpus = vm->info.vcpus;
        vs->migration = vm->migration;
    }
    qsort(snap->vms, snap->n_vms, sizeof *snap->vms, vmh_vm_snap_cmp);
    return snap;
}

void
vmh_engine_publish(struct vmh_engine *engine)
{
    struct vmh_snapshot *snap = vmh_engine_build_snapshot(engine);
    struct vmh_snapshot *old;

    if (!snap) {
        log_err("core", "out of memory building a state snapshot; readers keep the previous one");
        return;
    }
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
static void
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
    free(snap->hosts);
    free(snap->vms);
    free(priv);
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
