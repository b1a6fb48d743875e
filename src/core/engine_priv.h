/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The engine's own structures, shared by its files (engine.c: inventory,
 * faults, snapshots; migration.c: migration cases; window.c: their
 * preprocessing windows; journal.c: the journal and the order of telling).
 * Nothing outside src/core includes this. */
#ifndef VMH_CORE_ENGINE_PRIV_H
#define VMH_CORE_ENGINE_PRIV_H

#include "core/engine.h"
#include "util/log.h"

#include <glib.h>
#include <pthread.h>

/* Cleared faults kept for the state data and SNMP/NETCONF readers. */
#define VMH_FAULT_HISTORY 256

struct vmh_host {
    char *name;
    const struct vmh_host_conf *conf; /* points into engine->cfg */
    uint32_t index;
    enum vmh_connection connection;
    char *last_error;
    uint32_t vm_count;
    bool sysfs_monitoring;
    struct vmh_sensor_snap *sensors; /* names owned here */
    size_t n_sensors;
    uint64_t mem_corrected;
    uint64_t mem_uncorrected;
    /* Room for new VMs as last measured, and what migrations heading here
     * have already claimed of it. */
    bool room_known;
    uint64_t room_kib;
    unsigned room_vcpus;
    uint64_t reserved_kib;
    unsigned reserved_vcpus;
};

struct vmh_vm {
    struct vmh_domain_info info;
    struct vmh_host *host;
    char *manager; /* effective manager, NULL when none */
    bool manager_configured;
    uint32_t ppt;
    enum vmh_ppt_source ppt_source;
    /* its migration case (migration.c), its window (window.c) */
    enum vmh_migration_state migration;
    int64_t deadline_ms; /* the window's end (real time), 0 when no window */
    int window_timer;    /* fires at the deadline, -1 when none */
    char *target_host;
    char *migration_error;
    bool queued;                  /* its request waits for a slot */
    bool waiting_target;          /* failed for want of a target, retried */
    char *requested_target;       /* named by migration-ready / migrate-vm */
    uint64_t request_id;          /* while its request runs */
    enum vmh_migration_step step; /* how far its request got */
    int64_t started_ms;           /* monotonic */
    struct vmh_host *source;      /* while migrating */
    bool was_running;             /* before the migration began */
};

struct vmh_fault {
    uint64_t id;
    char *key; /* host|vm|resource|cause: one active fault per key */
    char *host;
    char *vm_uuid; /* NULL: host-level */
    enum vmh_cause cause;
    enum vmh_severity severity;
    int64_t detected_ms;
    int64_t cleared_ms;
    char *value;
    char *description;
};

struct vmh_observer {
    vmh_event_fn fn;
    void *opaque;
};

struct vmh_engine {
    struct vmh_loop *loop;
    struct vmh_config *cfg;
    GHashTable *hosts; /* name -> struct vmh_host */
    uint32_t next_host_index;
    GHashTable *vms;          /* uuid -> struct vmh_vm */
    GHashTable *faults;       /* key -> active struct vmh_fault */
    GHashTable *faults_by_id; /* id -> active struct vmh_fault (not owned) */
    GQueue *history;          /* cleared struct vmh_fault, oldest first */
    uint64_t next_fault_id;
    GArray *observers;
    struct vmh_engine_hooks hooks;

    uint64_t faults_detected;
    uint64_t migrations_started;
    uint64_t migrations_completed;
    uint64_t migrations_failed;
    struct vmh_sent_counters sent; /* atomics: front ends count */

    /* migration cases */
    GQueue *ready;         /* struct vmh_vm * waiting for a slot, by deadline */
    unsigned running;      /* migrations in progress */
    GHashTable *in_flight; /* request id -> struct vmh_vm, while its request runs */
    uint64_t next_request_id;
    int retry_timer;       /* retries cases that found no target */
    char *journal_path;    /* NULL: no journal */
    unsigned journal_held; /* > 0: writes wait for vmh_journal_release */
    bool journal_dirty;    /* a case changed since the last write */
    GQueue *told;          /* struct vmh_told: words waiting for the journal */
    GHashTable *recovered; /* uuid -> struct vmh_journal_entry, from the last run */

    pthread_mutex_t snap_lock;
    struct vmh_snapshot *snap;
    uint64_t generation;
    int publish_timer;
    int64_t sensors_published_ms;
};

struct vmh_journal_entry {
    char uuid[VMH_UUID_LEN + 1];
    enum vmh_migration_state state;
    enum vmh_migration_step step;
    int64_t deadline_ms;
    char source[65];
    char target[65];
    int was_running;
};

/* engine.c */
void vmh_engine_publish_later(struct vmh_engine *engine);
struct vmh_host *vmh_engine_host(struct vmh_engine *engine, const char *name);
const struct vmh_fault *vmh_engine_vm_worst_fault(struct vmh_engine *engine,
                                                  const struct vmh_vm *vm);
void vmh_engine_emit(struct vmh_engine *engine, const struct vmh_event *ev);
enum vmh_health vmh_engine_host_health(struct vmh_engine *engine, const struct vmh_host *host);

/* migration.c: cases (the words: migration.c's opening comment) */
void vmh_mig_init(struct vmh_engine *engine);
void vmh_mig_fini(struct vmh_engine *engine);
/* Every change of a case's state goes through vmh_mig_set, and every log
 * line or event about a case through vmh_journal_tell_*: nothing about a
 * case leaves before the journal has it (journal.c explains). */
void vmh_mig_set(struct vmh_engine *engine, struct vmh_vm *vm, enum vmh_migration_state state);
/* A window opened: the VM's case becomes pending (window.c calls it). */
void vmh_mig_case_open(struct vmh_engine *engine, struct vmh_vm *vm);
/* Its faults cleared with cancel-on-clear: the case is cancelled. */
void vmh_mig_cancel(struct vmh_engine *engine, struct vmh_vm *vm);
/* The case asks for its migration now (its window is over), to target or
 * to the policy's choice; checks are the caller's. */
void vmh_mig_request(struct vmh_engine *engine, struct vmh_vm *vm, const char *target);
/* The VM leaves the inventory. */
void vmh_mig_vm_gone(struct vmh_engine *engine, struct vmh_vm *vm);
/* A VM entered the inventory: resume what the journal says of it. */
void vmh_mig_vm_appeared(struct vmh_engine *engine, struct vmh_vm *vm);
/* Hosts changed (connected, configuration): retry cases without target. */
void vmh_mig_hosts_changed(struct vmh_engine *engine);
int vmh_mig_choose(struct vmh_engine *engine, struct vmh_vm *vm, const char *explicit_target,
                   struct vmh_host **target, char *why, size_t why_len);

/* window.c: the preprocessing window (the file's comment lists its life) */
/* The VM's first fault: deadline = now + its preprocessing time, the case
 * pending.  A window that runs (or a case without one) is kept. */
void vmh_window_open(struct vmh_engine *engine, struct vmh_vm *vm);
/* After a restart: pending again with the journal's deadline (0: now). */
void vmh_window_resume(struct vmh_engine *engine, struct vmh_vm *vm, int64_t deadline_ms);
/* An operator's migrate-vm on a VM without a case: pending, window over. */
void vmh_window_skip(struct vmh_engine *engine, struct vmh_vm *vm);
/* The window ends before its deadline, or its case leaves: timer stopped. */
void vmh_window_end(struct vmh_vm *vm);
/* The VM's last fault cleared; returns whether its case was cancelled
 * (cancel-on-clear).  A VM without a case forgets its deadline. */
bool vmh_window_faults_cleared(struct vmh_engine *engine, struct vmh_vm *vm);

/* journal.c: the journal, and telling only after it (the file explains) */
void vmh_journal_init(struct vmh_engine *engine);
void vmh_journal_fini(struct vmh_engine *engine);
/* Rewrites the journal now (durable: fsync'd and renamed into place). */
void vmh_journal_put(struct vmh_engine *engine, bool durable);
/* A case changed: on disk now, unless held; then what waited is told. */
void vmh_journal_write(struct vmh_engine *engine);
/* The journal when dirty, then every word waiting, even under a hold. */
void vmh_journal_flush(struct vmh_engine *engine);
/* Around a change of many cases at once (a host fault opens a window for
 * each of its VMs): one durable journal write at the release, not one per
 * case; words about the cases wait for it. */
void vmh_journal_hold(struct vmh_engine *engine);
void vmh_journal_release(struct vmh_engine *engine);
void vmh_journal_tell_log(struct vmh_engine *engine, enum vmh_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void vmh_journal_tell_event(struct vmh_engine *engine, const struct vmh_event *ev);

#endif
