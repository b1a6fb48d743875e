/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Cold migration of one domain between two libvirt hosts, as a job with
 * explicit steps, each undone on failure so that the domain stays defined on
 * exactly one host and no disk is deleted before the move succeeded.  The
 * functions here block (shutdown waits, storage copies): run them in worker
 * threads, never on the loop thread. */
#ifndef VMH_VIRT_MIGRATE_H
#define VMH_VIRT_MIGRATE_H

#include "core/model.h"

#include <libvirt/libvirt.h>
#include <stdbool.h>
#include <stdint.h>

struct vmh_virt_request {
    char uuid[37];
    const char *source_name;
    virConnectPtr source; /* NULL: the source host is unreachable (evacuation) */
    const char *target_name;
    virConnectPtr target;
    bool shared_storage;         /* disks are visible from the target as they are */
    unsigned shutdown_timeout_s; /* graceful shutdown, then destroy */
    /* The last inactive, migratable XML known of the domain: required when
     * source is NULL (only with shared storage), otherwise unused. */
    const char *last_known_xml;
    /* Called from the worker thread as each step begins (may be NULL), so
     * that the caller can journal the step before it happens. */
    void (*on_step)(enum vmh_migration_step step, void *opaque);
    void *opaque;

    /* Additions to the lead's contract. */
    /* Evacuation only: the domain was shut off on purpose when last seen, so
     * it is defined on the target without being started. */
    bool last_known_shutoff;
    /* Skip the check that the target has the domain's memory left
     * (vmh_virt_host_room; vCPUs are not checked: overcommit runs). */
    bool ignore_room;
    /* Never use virDomainMigrate3(OFFLINE); always define from the XML. */
    bool manual_only;
    /* May be NULL.  Read atomically before each step and inside the
     * shutdown wait and storage copy: nonzero stops the job there and rolls
     * it back (failed_step is the step it stopped at, error "cancelled"). */
    const int *cancel;
};

struct vmh_virt_outcome {
    bool ok;
    enum vmh_migration_step failed_step; /* when !ok */
    char *error;                         /* when !ok: the step and libvirt's message; free() it */
    bool was_running;    /* active before, or stopped by a crash: started on the target */
    bool started;        /* it runs on the target now */
    bool rolled_back;    /* !ok and the source was restored as it was */
    uint64_t libvirt_ms; /* time spent inside libvirt calls */

    /* Additions to the lead's contract. */
    bool forced_off; /* the guest ignored the graceful shutdown: destroyed */
    bool native;     /* defined on the target by virDomainMigrate3(OFFLINE) */
    /* The target may still hold a definition this job made but could not
     * undefine (the target became unreachable during the rollback): undefine
     * it there when the host is back (vmh_virt_domain_presence tells). */
    bool target_leftover;
    /* ok, but the source still holds the (shut off) definition because the
     * source was unreachable at undefine-source (or is the crashed host of an
     * evacuation): undefine it there when the host is back, never start it. */
    bool source_leftover;
    uint64_t libvirt_us;    /* libvirt_ms in microseconds */
    unsigned libvirt_calls; /* how many libvirt calls were timed */
    uint64_t wait_us;       /* waiting for the guest to shut down (not in libvirt_us) */
    uint64_t total_us;      /* the whole job, on_step callbacks included */
};

/* Migrates; fills out.  Returns 0 when the domain is on the target, -1 when
 * it is not (out says which step failed and whether the rollback restored
 * the source).  on_step is called for every step in order, DONE included on
 * success, even for steps that have nothing to do (shutdown of a shut off
 * domain, storage when shared).  "Was running" means active, or stopped by a
 * crash (shut off with reason crashed or failed): such a domain is started on
 * the target.  A rollback restarts the source domain only when it was active
 * before (a crashed one is left as it was).  An unreachable source at
 * undefine-source does not undo a finished move: ok with source_leftover. */
int vmh_virt_migrate(const struct vmh_virt_request *req, struct vmh_virt_outcome *out);

/* Room left on a host for new domains: memory (KiB) and vCPUs not yet
 * promised to defined domains (node memory and CPUs minus what every defined
 * domain, running or not, takes), the memory capped by the node's free
 * memory where the driver can tell it (not the test driver, whose answer is
 * 0 or a fixed figure).  Returns 0 or -1 with a logged libvirt error. */
int vmh_virt_host_room(virConnectPtr conn, uint64_t *free_kib, unsigned *free_vcpus);

/* Recovery after a restart: where is the domain now, and in what state?
 * Returns 1 when defined on conn (running set accordingly), 0 when not,
 * -1 when conn cannot tell. */
int vmh_virt_domain_presence(virConnectPtr conn, const char *uuid, bool *running);

/* Undefines dom keeping its disks and NVRAM (KEEP_NVRAM, or a plain
 * undefine on drivers without NVRAM that reject the flag, like the test
 * driver).  Returns 0, or -1 with libvirt's error set (not logged). */
int vmh_virt_undefine_keep_disks(virDomainPtr dom);

#endif
