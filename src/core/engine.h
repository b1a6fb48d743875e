/* The engine owns hosts and VMs and every decision about them.  It runs on
 * the loop thread only; other threads read immutable snapshots it publishes.
 * It knows no protocol: monitors and hypervisor connections report facts
 * through the functions below, front ends read snapshots. */
#ifndef VMH_CORE_ENGINE_H
#define VMH_CORE_ENGINE_H

#include "core/loop.h"
#include "core/model.h"

struct vmh_engine;

struct vmh_host_snap {
    const char *name;
    const char *uri;
    enum vmh_connection connection;
    const char *last_error; /* NULL when none */
    enum vmh_health health;
    uint32_t vm_count;
};

struct vmh_vm_snap {
    char uuid[VMH_UUID_LEN + 1];
    const char *name;
    const char *host;
    enum vmh_power_state power;
    enum vmh_health health;
    const char *manager; /* NULL: no manager */
    bool manager_configured;
    uint32_t ppt;
    enum vmh_ppt_source ppt_source;
    uint64_t memory_kib;
    uint16_t vcpus;
    enum vmh_migration_state migration;
};

/* An immutable picture of the engine's state at one instant.  Readers take
 * a reference, use it as long as they like, and drop it. */
struct vmh_snapshot {
    uint64_t generation;
    int64_t taken_at_ms;         /* real time */
    struct vmh_host_snap *hosts; /* in configuration order (by name) */
    size_t n_hosts;
    struct vmh_vm_snap *vms; /* sorted by uuid */
    size_t n_vms;
};

/* cfg is taken over by the engine. */
struct vmh_engine *vmh_engine_new(struct vmh_loop *loop, struct vmh_config *cfg);
void vmh_engine_free(struct vmh_engine *engine);
const struct vmh_config *vmh_engine_config(const struct vmh_engine *engine);

/* Facts from the hypervisors (loop thread).  Domain infos are taken over. */
void vmh_engine_host_connected(struct vmh_engine *engine, const char *host,
                               struct vmh_domain_info *doms, size_t n_doms);
void vmh_engine_host_disconnected(struct vmh_engine *engine, const char *host, const char *reason);
void vmh_engine_domain_update(struct vmh_engine *engine, const char *host,
                              struct vmh_domain_info *dom);
void vmh_engine_domain_power(struct vmh_engine *engine, const char *host, const char *uuid,
                             enum vmh_power_state power);
void vmh_engine_domain_removed(struct vmh_engine *engine, const char *host, const char *uuid);

/* Readers (any thread).  The snapshot is at most one loop iteration old;
 * vmh_engine_publish (loop thread) makes it current at once. */
struct vmh_snapshot *vmh_engine_snapshot(struct vmh_engine *engine);
void vmh_engine_publish(struct vmh_engine *engine);
void vmh_snapshot_unref(struct vmh_snapshot *snap);
const struct vmh_vm_snap *vmh_snapshot_find_vm(const struct vmh_snapshot *snap, const char *uuid);

#endif
