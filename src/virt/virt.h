/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The hypervisors: one libvirt connection per configured host, shared by
 * every thread that needs it, kept open and current.  Connecting runs in a
 * worker thread; libvirt's events arrive on the loop thread and are turned
 * into engine facts there. */
#ifndef VMH_VIRT_VIRT_H
#define VMH_VIRT_VIRT_H

#include "core/engine.h"
#include "core/loop.h"

#include <libvirt/libvirt.h>

struct vmh_virt;

struct vmh_virt *vmh_virt_new(struct vmh_loop *loop, struct vmh_engine *engine);
/* Releases every connection; loop thread, or after the loop stopped. */
void vmh_virt_free(struct vmh_virt *virt);

/* Loop thread.  Starts connecting at once; reconnects with backoff. */
int vmh_virt_add_host(struct vmh_virt *virt, const char *name, const char *uri);
void vmh_virt_remove_host(struct vmh_virt *virt, const char *name);

/* The host's libvirt connection with a reference taken (virConnectClose it
 * when done), or NULL when the host is not connected.  Loop thread; the
 * connection itself may then be used from any thread. */
virConnectPtr vmh_virt_host_conn(struct vmh_virt *virt, const char *name);

/* The engine's migration hooks (loop thread): the request runs in a worker
 * thread and reports back through the loop. */
void vmh_virt_run_migration(struct vmh_virt *virt, const struct vmh_migration_request *req);
void vmh_virt_recover_migration(struct vmh_virt *virt, const struct vmh_migration_request *req);
/* Measures the room of a connected host (NULL: of all) in a worker and
 * reports it to the engine. */
void vmh_virt_measure_room(struct vmh_virt *virt, const char *name);
/* Undefines, keeping its disks, a shut-off domain the engine found on a host
 * the VM no longer lives on. */
void vmh_virt_remove_stale(struct vmh_virt *virt, const char *name, const char *uuid);

/* Calls done(opaque) on the loop thread once every host has finished its
 * first connection attempt, successful or not. */
void vmh_virt_on_first_round(struct vmh_virt *virt, void (*done)(void *), void *opaque);

/* Reads what the agent needs of a domain: identity, power state, size and
 * the assignment metadata.  Any thread.  Returns 0, or -1 after logging. */
int vmh_virt_domain_info(virDomainPtr dom, struct vmh_domain_info *info);

/* Parses the assignment metadata element (as virDomainGetMetadata returns
 * it).  Never fails: what is wrong is described in meta->error and the
 * valid parts are kept. */
void vmh_virt_parse_assignment(const char *xml, struct vmh_vm_meta *meta);

/* What libvirt's VM events mean as faults (called by the event callbacks;
 * the test driver cannot raise watchdog, I/O error or memory failure
 * events, so unit tests call these directly).  Loop thread. */
void vmh_virt_report_crash(struct vmh_engine *engine, const char *host, const char *uuid,
                           const char *how);
void vmh_virt_report_watchdog(struct vmh_engine *engine, const char *host, const char *uuid,
                              int action);
void vmh_virt_report_io_error(struct vmh_engine *engine, const char *host, const char *uuid,
                              const char *src_path, const char *dev_alias, int action,
                              const char *reason);
void vmh_virt_report_memory_failure(struct vmh_engine *engine, const char *host, const char *uuid,
                                    int recipient, int action);

enum vmh_power_state vmh_virt_power_state(int libvirt_state);
/* The power state a lifecycle event leaves a domain in. */
enum vmh_power_state vmh_virt_event_power_state(int event, int detail);

#endif
