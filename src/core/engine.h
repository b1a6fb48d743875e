/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The engine owns hosts and VMs and every decision about them.  It runs on
 * the loop thread only; other threads read immutable snapshots it publishes.
 * It knows no protocol: monitors and hypervisor connections report facts
 * through the functions below, front ends read snapshots. */
#ifndef VMH_CORE_ENGINE_H
#define VMH_CORE_ENGINE_H

#include "core/loop.h"
#include "core/model.h"

struct vmh_engine;

/* --- snapshots: what readers see --- */

struct vmh_sensor_snap {
    const char *name; /* e.g. "coretemp/Package id 0" */
    double value;     /* degrees Celsius */
    bool has_high;
    double high;
    bool has_critical;
    double critical;
};

struct vmh_host_snap {
    uint32_t index; /* stable for the life of the process (vmhHostIndex) */
    const char *name;
    const char *uri;
    enum vmh_connection connection;
    const char *last_error; /* NULL when none */
    enum vmh_health health;
    uint32_t vm_count;
    bool sysfs_monitoring; /* hwmon/EDAC readable under sysfs-root */
    struct vmh_sensor_snap *sensors;
    size_t n_sensors;
    uint64_t mem_corrected;
    uint64_t mem_uncorrected;
};

struct vmh_vm_snap {
    char uuid[VMH_UUID_LEN + 1];
    const char *name;
    const char *host;
    enum vmh_power_state power;
    enum vmh_health health;
    enum vmh_cause cause; /* of the worst active fault affecting the VM */
    const char *manager;  /* NULL: no manager */
    bool manager_configured;
    uint32_t ppt;
    enum vmh_ppt_source ppt_source;
    uint64_t memory_kib;
    uint16_t vcpus;
    enum vmh_migration_state migration;
    int64_t deadline_ms; /* real time; 0 when no window runs */
    const char *target_host;
    const char *migration_error;
};

struct vmh_fault_snap {
    uint64_t id;
    const char *host;
    const char *vm_uuid; /* NULL for a host-level fault */
    enum vmh_cause cause;
    enum vmh_severity severity;
    int64_t detected_ms; /* real time */
    int64_t cleared_ms;  /* 0 while active */
    const char *value;
    const char *description;
};

/* What the front ends count themselves, as they send (atomics). */
struct vmh_sent_counters {
    uint64_t notifications;
    uint64_t traps;
};

struct vmh_stats {
    uint64_t faults_detected;
    uint64_t notifications_sent;
    uint64_t traps_sent;
    uint64_t migrations_started;
    uint64_t migrations_completed;
    uint64_t migrations_failed;
};

/* An immutable picture of the engine's state at one instant.  Readers take
 * a reference, use it as long as they like, and drop it. */
struct vmh_snapshot {
    uint64_t generation;
    int64_t taken_at_ms;         /* real time */
    struct vmh_host_snap *hosts; /* sorted by name */
    size_t n_hosts;
    struct vmh_vm_snap *vms; /* sorted by uuid */
    size_t n_vms;
    struct vmh_fault_snap *faults; /* active and recently cleared, by id */
    size_t n_faults;
    struct vmh_stats stats;
    /* The engine's sent counters, read live by vmh_snapshot_stats(): they
     * change with every notification and trap, too often to publish a
     * snapshot for each.  NULL (a snapshot made by hand): stats alone. */
    const struct vmh_sent_counters *sent;
};

/* snap's statistics, with the sent counters as they are now. */
void vmh_snapshot_stats(const struct vmh_snapshot *snap, struct vmh_stats *out);

/* --- events: what the engine tells front ends --- */

enum vmh_event_type {
    VMH_EV_VM_ABNORMAL,
    VMH_EV_MIGRATION_STARTED,
    VMH_EV_MIGRATION_COMPLETED,
    VMH_EV_MIGRATION_FAILED,
    VMH_EV_FAULT_CLEARED,
};

/* One event per affected VM.  Strings live as long as the callback runs. */
struct vmh_event {
    enum vmh_event_type type;
    int64_t time_ms;     /* real time */
    const char *vm_uuid; /* NULL only for a fault-cleared of a fault that affected no VM */
    const char *vm_name;
    const char *host;        /* the VM's host; for migration-failed the host it stays on */
    const char *vnf_manager; /* the VM's manager, NULL when none: for access control */
    /* vm-abnormal, fault-cleared */
    uint64_t fault_id;
    enum vmh_cause cause;
    enum vmh_severity severity;
    uint32_t ppt;
    int64_t deadline_ms;
    bool migration_cancelled;
    /* migration-started/-completed */
    const char *source_host;
    const char *target_host;
    uint64_t duration_ms;
    /* migration-failed */
    const char *reason;
};

/* Called on the loop thread for every event.  It must return at once: copy
 * what is needed and hand it to the front end's own thread. */
typedef void (*vmh_event_fn)(const struct vmh_event *ev, void *opaque);

/* The vocabulary of migrations (src/core/migration.c explains the whole):
 *   case     the engine's record of one VM's migration, from the window that
 *            opens on its first fault to its outcome (struct vmh_vm's case
 *            fields, src/core/migration.c; its window: src/core/window.c);
 *   request  what the engine asks the hypervisor layer to do for a case:
 *            migrate it, or settle one a restart interrupted;
 *   step     how far a request got (enum vmh_migration_step, model.h); the
 *            journal records each step, by name, before it begins;
 *   outcome  what the hypervisor layer reports when the request is over. */
struct vmh_migration_request {
    uint64_t id;
    char uuid[VMH_UUID_LEN + 1];
    const char *vm_name;
    const char *source;
    const char *target;
    bool shared_storage; /* the source's and the target's storage is shared */
    unsigned shutdown_timeout_s;
    enum vmh_migration_step step; /* recovery: the step the journal recorded */
    bool was_running;             /* recovery: the VM ran before the migration */
    const char *last_known_xml;   /* the VM's last definition, for evacuating a dead host */
};

/* Hooks the engine calls on the loop thread; they must not block. */
struct vmh_engine_hooks {
    void (*host_added)(const struct vmh_host_conf *host, void *opaque);
    void (*host_removed)(const char *name, void *opaque);
    /* Run the request in a worker; report with vmh_engine_migration_step and
     * vmh_engine_migration_done (loop thread). */
    void (*run_migration)(const struct vmh_migration_request *req, void *opaque);
    /* Find out where a request interrupted by a restart left the VM and
     * finish or roll it back; report with vmh_engine_migration_done. */
    void (*recover_migration)(const struct vmh_migration_request *req, void *opaque);
    /* Undefine (keeping its disks) a shut-off copy of a VM left on a host
     * the VM has since moved away from (an evacuated host that came back). */
    void (*remove_stale)(const char *host, const char *uuid, void *opaque);
    void *opaque;
};

/* Reports from the hypervisor layer on a request (loop thread). */
void vmh_engine_migration_step(struct vmh_engine *engine, uint64_t request_id,
                               enum vmh_migration_step step);
struct vmh_migration_outcome {
    bool ok;           /* the VM is on the target */
    bool started;      /* and runs there */
    bool rolled_back;  /* !ok: restored on the source as it was */
    const char *error; /* !ok: the step and libvirt's message */
    uint64_t libvirt_ms;
};
void vmh_engine_migration_done(struct vmh_engine *engine, uint64_t request_id,
                               const struct vmh_migration_outcome *res);
/* How much room a host has for new VMs, as measured (loop thread). */
void vmh_engine_host_room(struct vmh_engine *engine, const char *host, uint64_t free_kib,
                          unsigned free_vcpus);
/* Journal migration cases in dir (loop thread, before hosts connect); the
 * cases of the previous run are resumed as their VMs reappear. */
int vmh_engine_journal_open(struct vmh_engine *engine, const char *dir);

/* cfg is taken over by the engine. */
struct vmh_engine *vmh_engine_new(struct vmh_loop *loop, struct vmh_config *cfg);
void vmh_engine_free(struct vmh_engine *engine);
const struct vmh_config *vmh_engine_config(const struct vmh_engine *engine);
struct vmh_loop *vmh_engine_loop(const struct vmh_engine *engine);

/* Before the loop starts. */
int vmh_engine_observe(struct vmh_engine *engine, vmh_event_fn fn, void *opaque);
void vmh_engine_set_hooks(struct vmh_engine *engine, const struct vmh_engine_hooks *hooks);

/* A new configuration (loop thread; cfg is taken over): hosts added or
 * removed through the hooks, every VM's manager and preprocessing time
 * recomputed.  A window already running keeps its deadline. */
void vmh_engine_apply_config(struct vmh_engine *engine, struct vmh_config *cfg);

/* Facts from the hypervisors (loop thread).  Domain infos are taken over. */
void vmh_engine_host_connected(struct vmh_engine *engine, const char *host,
                               struct vmh_domain_info *doms, size_t n_doms);
void vmh_engine_host_disconnected(struct vmh_engine *engine, const char *host, const char *reason);
void vmh_engine_domain_update(struct vmh_engine *engine, const char *host,
                              struct vmh_domain_info *dom);
void vmh_engine_domain_power(struct vmh_engine *engine, const char *host, const char *uuid,
                             enum vmh_power_state power);
void vmh_engine_domain_removed(struct vmh_engine *engine, const char *host, const char *uuid);

/* What the host's sensors read (loop thread).  sensors are copied;
 * available false: sysfs-root could not be read, no sensor monitoring. */
void vmh_engine_host_sensors(struct vmh_engine *engine, const char *host, bool available,
                             const struct vmh_sensor_snap *sensors, size_t n_sensors,
                             uint64_t mem_corrected, uint64_t mem_uncorrected);

/* Faults (loop thread).  A fault is identified by its resource key (a host
 * sensor, a VM, an external report) and cause: raising an active one again
 * only updates its value and, when worse, its severity; clearing an absent
 * one does nothing.  vm_uuid NULL: host-level, affecting every VM on host. */
struct vmh_fault_report {
    const char *host;
    const char *vm_uuid;
    const char *resource; /* e.g. "hwmon0/temp1"; NULL: the host or VM itself */
    enum vmh_cause cause;
    enum vmh_severity severity;
    const char *value;
    const char *description;
};
uint64_t vmh_engine_raise_fault(struct vmh_engine *engine, const struct vmh_fault_report *r);
void vmh_engine_clear_fault_of(struct vmh_engine *engine, const char *host, const char *vm_uuid,
                               const char *resource, enum vmh_cause cause);

/* --- commands from front ends (any thread but the loop's; they block until
 * the engine has answered) --- */

enum vmh_rpc_status {
    VMH_RPC_OK,
    VMH_RPC_UNKNOWN_VM,
    VMH_RPC_UNKNOWN_HOST,
    VMH_RPC_UNKNOWN_FAULT,
    VMH_RPC_INVALID,       /* a value the engine refuses, message says why */
    VMH_RPC_NOT_SUPPORTED, /* the capability is not there (yet) */
    VMH_RPC_FAILED,
};

struct vmh_rpc_result {
    enum vmh_rpc_status status;
    char message[256]; /* why, when not OK */
    uint64_t fault_id; /* report-fault */
};

void vmh_engine_rpc_report_fault(struct vmh_engine *engine, const char *host, const char *vm_uuid,
                                 enum vmh_cause cause, enum vmh_severity severity,
                                 const char *description, struct vmh_rpc_result *res);
void vmh_engine_rpc_clear_fault(struct vmh_engine *engine, uint64_t fault_id,
                                struct vmh_rpc_result *res);
void vmh_engine_rpc_migration_ready(struct vmh_engine *engine, const char *vm_uuid,
                                    const char *target_host, struct vmh_rpc_result *res);
void vmh_engine_rpc_migrate_vm(struct vmh_engine *engine, const char *vm_uuid,
                               const char *target_host, struct vmh_rpc_result *res);
/* Takes cfg over; runs vmh_engine_apply_config on the loop thread. */
void vmh_engine_rpc_apply_config(struct vmh_engine *engine, struct vmh_config *cfg);

/* Counters kept by front ends (any thread). */
enum vmh_stat { VMH_STAT_NOTIFICATIONS_SENT, VMH_STAT_TRAPS_SENT };
void vmh_engine_count(struct vmh_engine *engine, enum vmh_stat stat, uint64_t n);

/* Readers (any thread).  The snapshot is at most one loop iteration old;
 * vmh_engine_publish (loop thread) makes it current at once. */
struct vmh_snapshot *vmh_engine_snapshot(struct vmh_engine *engine);
void vmh_engine_publish(struct vmh_engine *engine);
void vmh_snapshot_unref(struct vmh_snapshot *snap);
const struct vmh_vm_snap *vmh_snapshot_find_vm(const struct vmh_snapshot *snap, const char *uuid);
const struct vmh_host_snap *vmh_snapshot_find_host(const struct vmh_snapshot *snap,
                                                   const char *name);

#endif
