/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The engine's vocabulary: the configuration it acts on, what it knows of
 * hosts and VMs, and the string names of its enumerations (generated here,
 * once, from one table each).  Nothing in here knows a protocol or a file
 * format. */
#ifndef VMH_CORE_MODEL_H
#define VMH_CORE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMH_UUID_LEN 36

/* The nfv-vm-health YANG module's namespace, which is also the namespace of
 * the <assignment> element in a libvirt domain's metadata. */
#define VMH_NS "urn:vmhealth:nfv-vm-health"

#define VMH_POWER_STATES(X)                                                                        \
    X(VMH_POWER_NOSTATE, "nostate")                                                                \
    X(VMH_POWER_RUNNING, "running")                                                                \
    X(VMH_POWER_BLOCKED, "blocked")                                                                \
    X(VMH_POWER_PAUSED, "paused")                                                                  \
    X(VMH_POWER_SHUTDOWN, "shutdown")                                                              \
    X(VMH_POWER_SHUTOFF, "shutoff")                                                                \
    X(VMH_POWER_CRASHED, "crashed")                                                                \
    X(VMH_POWER_PMSUSPENDED, "pmsuspended")

#define VMH_HEALTHS(X)                                                                             \
    X(VMH_HEALTH_NORMAL, "normal")                                                                 \
    X(VMH_HEALTH_SUB_HEALTH, "sub-health")                                                         \
    X(VMH_HEALTH_FAULTY, "faulty")                                                                 \
    X(VMH_HEALTH_UNREACHABLE, "unreachable")

#define VMH_CONNECTIONS(X)                                                                         \
    X(VMH_CONN_DISCONNECTED, "disconnected")                                                       \
    X(VMH_CONN_CONNECTED, "connected")

#define VMH_MIGRATION_STATES(X)                                                                    \
    X(VMH_MIG_NONE, "none")                                                                        \
    X(VMH_MIG_PENDING, "pending")                                                                  \
    X(VMH_MIG_MIGRATING, "migrating")                                                              \
    X(VMH_MIG_COMPLETED, "completed")                                                              \
    X(VMH_MIG_FAILED, "failed")                                                                    \
    X(VMH_MIG_CANCELLED, "cancelled")

/* The steps of one cold migration, in the order the executor
 * (src/virt/migrate.c) runs them.  The journal stores them by name. */
#define VMH_MIGRATION_STEPS(X)                                                                     \
    X(VMH_STEP_CHECK, "check")                                                                     \
    X(VMH_STEP_SHUTDOWN, "shutdown")                                                               \
    X(VMH_STEP_EXPORT, "export")                                                                   \
    X(VMH_STEP_STORAGE, "storage")                                                                 \
    X(VMH_STEP_DEFINE, "define")                                                                   \
    X(VMH_STEP_START, "start")                                                                     \
    X(VMH_STEP_UNDEFINE_SOURCE, "undefine-source")                                                 \
    X(VMH_STEP_DONE, "done")

/* Where a VM's effective preprocessing time came from, strongest first. */
#define VMH_PPT_SOURCES(X)                                                                         \
    X(VMH_PPT_VM_ASSIGNMENT, "vm-assignment")                                                      \
    X(VMH_PPT_METADATA, "metadata")                                                                \
    X(VMH_PPT_VNF_MANAGER, "vnf-manager")                                                          \
    X(VMH_PPT_DEFAULT, "default")

/* Identities derived from nfv-vm-health:fault-cause; the MIB's
 * VmhFaultCause numbers them from 1 in this order. */
#define VMH_CAUSES(X)                                                                              \
    X(VMH_CAUSE_NONE, "none")                                                                      \
    X(VMH_CAUSE_HIGH_TEMPERATURE, "high-temperature")                                              \
    X(VMH_CAUSE_MEMORY_UE, "memory-uncorrectable-error")                                           \
    X(VMH_CAUSE_MEMORY_CE_RATE, "memory-correctable-error-rate")                                   \
    X(VMH_CAUSE_HARDWARE_FAILURE, "hardware-failure")                                              \
    X(VMH_CAUSE_HOST_UNREACHABLE, "host-unreachable")                                              \
    X(VMH_CAUSE_VM_CRASHED, "vm-crashed")                                                          \
    X(VMH_CAUSE_WATCHDOG, "watchdog")                                                              \
    X(VMH_CAUSE_IO_ERROR, "io-error")                                                              \
    X(VMH_CAUSE_GUEST_MEMORY_FAILURE, "guest-memory-failure")                                      \
    X(VMH_CAUSE_EXTERNAL, "external")

/* X.733 order, most severe first; the MIB's VmhSeverity numbers from 1. */
#define VMH_SEVERITIES(X)                                                                          \
    X(VMH_SEV_CRITICAL, "critical")                                                                \
    X(VMH_SEV_MAJOR, "major")                                                                      \
    X(VMH_SEV_MINOR, "minor")                                                                      \
    X(VMH_SEV_WARNING, "warning")

#define VMH_ENUM_MEMBER(id, name) id,
enum vmh_power_state { VMH_POWER_STATES(VMH_ENUM_MEMBER) };
enum vmh_health { VMH_HEALTHS(VMH_ENUM_MEMBER) };
enum vmh_connection { VMH_CONNECTIONS(VMH_ENUM_MEMBER) };
enum vmh_migration_state { VMH_MIGRATION_STATES(VMH_ENUM_MEMBER) };
enum vmh_migration_step { VMH_MIGRATION_STEPS(VMH_ENUM_MEMBER) };
enum vmh_ppt_source { VMH_PPT_SOURCES(VMH_ENUM_MEMBER) };
enum vmh_cause { VMH_CAUSES(VMH_ENUM_MEMBER) VMH_CAUSE_COUNT };
enum vmh_severity { VMH_SEVERITIES(VMH_ENUM_MEMBER) };
#undef VMH_ENUM_MEMBER

const char *vmh_power_state_str(enum vmh_power_state s);
const char *vmh_health_str(enum vmh_health h);
const char *vmh_connection_str(enum vmh_connection c);
const char *vmh_migration_state_str(enum vmh_migration_state m);
const char *vmh_migration_step_str(enum vmh_migration_step s);
const char *vmh_ppt_source_str(enum vmh_ppt_source s);
const char *vmh_cause_str(enum vmh_cause c);
const char *vmh_severity_str(enum vmh_severity s);
/* Parse the names above; -1 when unknown.  A cause may carry a module
 * prefix ("nfv-vm-health:watchdog", "vmh:watchdog"). */
int vmh_cause_from_str(const char *name);
int vmh_severity_from_str(const char *name);
int vmh_migration_step_from_str(const char *name);

/* --- configuration, as the engine sees it (built by src/config/) --- */

struct vmh_settings {
    uint32_t default_ppt; /* seconds */
    bool has_max_ppt;
    uint32_t max_ppt; /* seconds */
    uint32_t poll_interval_ms;
    uint32_t shutdown_timeout; /* seconds */
    uint16_t max_concurrent_migrations;
    bool cancel_on_clear;
};

struct vmh_thresholds {
    bool has_temp_high;
    double temp_high; /* degrees Celsius */
    bool has_temp_critical;
    double temp_critical;
    double temp_hysteresis;
    bool has_memory_ce_rate;
    uint32_t memory_ce_rate; /* per hour */
};

struct vmh_host_conf {
    char *name;
    char *uri;
    char *sysfs_root;
    bool migration_target;
    uint16_t priority;
    bool maintenance;
    bool shared_storage;
};

struct vmh_manager_conf {
    char *name;
    bool has_ppt;
    uint32_t ppt;
};

struct vmh_assignment_conf {
    char uuid[VMH_UUID_LEN + 1]; /* lower case */
    char *manager;               /* NULL: not set here */
    bool has_ppt;
    uint32_t ppt;
};

struct vmh_config {
    struct vmh_settings settings;
    struct vmh_thresholds thresholds;
    struct vmh_host_conf *hosts; /* sorted by name */
    size_t n_hosts;
    struct vmh_manager_conf *managers; /* sorted by name */
    size_t n_managers;
    struct vmh_assignment_conf *assignments; /* sorted by uuid */
    size_t n_assignments;
    char *state_dir;
};

void vmh_config_free(struct vmh_config *cfg);
const struct vmh_host_conf *vmh_config_find_host(const struct vmh_config *cfg, const char *name);
const struct vmh_manager_conf *vmh_config_find_manager(const struct vmh_config *cfg,
                                                       const char *name);
const struct vmh_assignment_conf *vmh_config_find_assignment(const struct vmh_config *cfg,
                                                             const char *uuid);
/* Sorts the arrays so that the find functions work; config builders call it. */
void vmh_config_index(struct vmh_config *cfg);

/* --- what a hypervisor tells about a domain --- */

/* The assignment a VIM wrote into the domain's metadata when it created the
 * VM (element "assignment" in namespace urn:vmhealth:nfv-vm-health). */
struct vmh_vm_meta {
    bool present;
    char *manager; /* NULL when absent or invalid */
    bool has_ppt;
    uint32_t ppt;
    char *error; /* why (part of) the element was ignored; NULL when clean */
};

struct vmh_domain_info {
    char uuid[VMH_UUID_LEN + 1];
    char *name;
    enum vmh_power_state power;
    uint64_t memory_kib;
    uint16_t vcpus;
    bool persistent;
    struct vmh_vm_meta meta;
    /* The inactive, migratable definition as last read: what an evacuation
     * defines on the target when the host itself is gone.  Opaque here. */
    char *definition;
};

void vmh_vm_meta_clear(struct vmh_vm_meta *meta);
void vmh_domain_info_clear(struct vmh_domain_info *info);
void vmh_domain_info_free_array(struct vmh_domain_info *infos, size_t n);

#endif
