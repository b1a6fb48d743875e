/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Threads: connection attempts run in a GLib thread pool (virConnectOpen of
 * a remote URI can block for seconds), and so do the libvirt calls that an
 * event asks for (re-reading a domain: its info, definition and metadata,
 * one RPC each) and migrations; libvirt's event callbacks and everything
 * else run on the loop thread, which never waits on a host. */
#include "virt/virt.h"

#include "util/log.h"
#include "util/time.h"
#include "virt/migrate.h"
#include <glib.h>
#include <libvirt/virterror.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VMH_VIRT_BACKOFF_MIN_MS   1000
#define VMH_VIRT_BACKOFF_MAX_MS   60000
#define VMH_VIRT_KEEPALIVE_S      5
#define VMH_VIRT_KEEPALIVE_N      3
#define VMH_VIRT_N_EVENTS         5
#define VMH_VIRT_ROOM_INTERVAL_MS 30000

enum vmh_virt_host_state {
    VMH_VIRT_IDLE,       /* waiting for the retry timer */
    VMH_VIRT_CONNECTING, /* a worker is opening the connection */
    VMH_VIRT_CONNECTED,
};

struct vmh_virt_host {
    gint refs; /* the host list, a running worker, libvirt callbacks */
    struct vmh_virt *virt;
    char *name;
    char *uri;
    bool removed;
    enum vmh_virt_host_state state;
    virConnectPtr conn;
    int cb[VMH_VIRT_N_EVENTS]; /* domain event callback ids, -1 when none */
    int retry_timer;
    int backoff_ms;
    bool first_attempt_done;
    /* uuid -> struct vmh_virt_refreshing: domains being re-read (loop thread) */
    GHashTable *refreshing;
};

struct vmh_virt {
    struct vmh_loop *loop;
    struct vmh_engine *engine;
    GPtrArray *hosts; /* struct vmh_virt_host * */
    GThreadPool *connectors;
    GThreadPool *refreshers;
    GThreadPool *migrators;
    int room_timer;
    unsigned tasks_in_flight; /* loop thread */
    /* Recoveries waiting for a connection attempt in flight (loop thread). */
    GPtrArray *deferred; /* struct vmh_virt_task * */
    bool dying;
    void (*first_round_done)(void *);
    void *first_round_opaque;
};

/* What a connection worker hands back to the loop thread. */
struct vmh_virt_connect_result {
    struct vmh_virt_host *host;
    virConnectPtr conn;
    char *error;
    struct vmh_domain_info *doms;
    size_t n_doms;
};

static void vmh_virt_connect_worker(gpointer data, gpointer user_data);
static void vmh_virt_migrate_worker(gpointer data, gpointer user_data);
static void vmh_virt_room_tick(void *opaque);
static void vmh_virt_schedule_retry(struct vmh_virt_host *host);
static void vmh_virt_run_deferred(struct vmh_virt *virt);
struct vmh_virt_task;
static bool vmh_virt_recover_defer(struct vmh_virt *virt, struct vmh_virt_task *t);
static void vmh_virt_task_free(struct vmh_virt_task *t);
static void vmh_virt_refresh_worker(gpointer data, gpointer user_data);

static struct vmh_virt_host *
vmh_virt_host_ref(struct vmh_virt_host *host)
{
    g_atomic_int_inc(&host->refs);
    return host;
}

static void
vmh_virt_host_unref(void *opaque)
{
    struct vmh_virt_host *host = opaque;

    if (!host || !g_atomic_int_dec_and_test(&host->refs))
        return;
    g_hash_table_destroy(host->refreshing);
    g_free(host->name);
    g_free(host->uri);
    g_free(host);
}

struct vmh_virt *
vmh_virt_new(struct vmh_loop *loop, struct vmh_engine *engine)
{
    struct vmh_virt *virt = g_new0(struct vmh_virt, 1);

    virt->loop = loop;
    virt->engine = engine;
    virt->hosts = g_ptr_array_new();
    virt->deferred = g_ptr_array_new();
    virt->connectors = g_thread_pool_new(vmh_virt_connect_worker, virt, 4, FALSE, NULL);
    virt->refreshers = g_thread_pool_new(vmh_virt_refresh_worker, virt, 4, FALSE, NULL);
    virt->migrators = g_thread_pool_new(vmh_virt_migrate_worker, virt, 64, FALSE, NULL);
    virt->room_timer =
        vmh_loop_timer_every(loop, VMH_VIRT_ROOM_INTERVAL_MS, vmh_virt_room_tick, virt);
    return virt;
}

/* --- domains --- */

enum vmh_power_state
vmh_virt_power_state(int state)
{
    switch (state) {
    case VIR_DOMAIN_RUNNING:
        return VMH_POWER_RUNNING;
    case VIR_DOMAIN_BLOCKED:
        return VMH_POWER_BLOCKED;
    case VIR_DOMAIN_PAUSED:
        return VMH_POWER_PAUSED;
    case VIR_DOMAIN_SHUTDOWN:
        return VMH_POWER_SHUTDOWN;
    case VIR_DOMAIN_SHUTOFF:
        return VMH_POWER_SHUTOFF;
    case VIR_DOMAIN_CRASHED:
        return VMH_POWER_CRASHED;
    case VIR_DOMAIN_PMSUSPENDED:
        return VMH_POWER_PMSUSPENDED;
    default:
        return VMH_POWER_NOSTATE;
    }
}

enum vmh_power_state
vmh_virt_event_power_state(int event, int detail)
{
    switch (event) {
    case VIR_DOMAIN_EVENT_STARTED:
    case VIR_DOMAIN_EVENT_RESUMED:
        return VMH_POWER_RUNNING;
    case VIR_DOMAIN_EVENT_SUSPENDED:
        return VMH_POWER_PAUSED;
    case VIR_DOMAIN_EVENT_STOPPED:
        return VMH_POWER_SHUTOFF;
    case VIR_DOMAIN_EVENT_SHUTDOWN:
        return VMH_POWER_SHUTDOWN;
    case VIR_DOMAIN_EVENT_CRASHED:
        return VMH_POWER_CRASHED;
    case VIR_DOMAIN_EVENT_PMSUSPENDED:
        return VMH_POWER_PMSUSPENDED;
    default:
        return VMH_POWER_NOSTATE;
    }
}

int
vmh_virt_domain_info(virDomainPtr dom, struct vmh_domain_info *info)
{
    virDomainInfo di;
    char *meta_xml;
    const char *name = NULL;
    int persistent;

    memset(info, 0, sizeof *info);
    if (virDomainGetUUIDString(dom, info->uuid) < 0 || !(name = virDomainGetName(dom)) ||
        virDomainGetInfo(dom, &di) < 0) {
        /* Not virDomainGetName() here: it resets (frees) the last error. */
        log_warn("virt", "cannot read domain %s: %s", name ? name : info->uuid,
                 virGetLastErrorMessage());
        return -1;
    }
    info->name = strdup(name);
    info->power = vmh_virt_power_state(di.state);
    info->memory_kib = di.maxMem;
    info->vcpus = (uint16_t)di.nrVirtCpu;
    persistent = virDomainIsPersistent(dom);
    info->persistent = persistent != 0;

    /* Kept for evacuation: if this host dies, this is what moves. */
    info->definition = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_INACTIVE |
                                                    VIR_DOMAIN_XML_MIGRATABLE);
    if (!info->definition)
        info->definition =
            virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_MIGRATABLE);
    meta_xml =
        virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, VMH_NS, VIR_DOMAIN_AFFECT_CURRENT);
    if (meta_xml) {
        vmh_virt_parse_assignment(meta_xml, &info->meta);
        free(meta_xml);
    } else if (virGetLastErrorCode() != VIR_ERR_NO_DOMAIN_METADATA) {
        log_warn("virt", "domain %s: cannot read its metadata: %s", name, virGetLastErrorMessage());
    }
    return 0;
}

/* Re-reading a domain, in a worker.  Events for it that arrive meanwhile
 * make the result stale ('dirty'): it is then read again, or dropped when
 * the domain was undefined in between. */
struct vmh_virt_refreshing {
    bool dirty;
    bool undefined;
};

struct vmh_virt_refresh {
    struct vmh_virt_host *host; /* referenced */
    virConnectPtr conn;         /* referenced */
    char uuid[VIR_UUID_STRING_BUFLEN];
    int rc; /* 0: info read; -1: failed or gone */
    struct vmh_domain_info info;
};

static void
vmh_virt_refresh_push(struct vmh_virt_host *host, const char *uuid)
{
    struct vmh_virt_refresh *r;

    if (!host->conn || virConnectRef(host->conn) < 0)
        return;
    r = g_new0(struct vmh_virt_refresh, 1);
    r->host = vmh_virt_host_ref(host);
    r->conn = host->conn;
    g_strlcpy(r->uuid, uuid, sizeof r->uuid);
    g_hash_table_insert(host->refreshing, g_strdup(uuid), g_new0(struct vmh_virt_refreshing, 1));
    host->virt->tasks_in_flight++;
    g_thread_pool_push(host->virt->refreshers, r, NULL);
}

/* An event about a domain: re-read it (or mark the read in flight stale). */
static void
vmh_virt_domain_refresh(struct vmh_virt_host *host, const char *uuid)
{
    struct vmh_virt_refreshing *f = g_hash_table_lookup(host->refreshing, uuid);

    if (f)
        f->dirty = true, f->undefined = false;
    else
        vmh_virt_refresh_push(host, uuid);
}

/* Any other event about a domain: a read in flight is stale. */
static void
vmh_virt_domain_touched(struct vmh_virt_host *host, const char *uuid, bool undefined)
{
    struct vmh_virt_refreshing *f = g_hash_table_lookup(host->refreshing, uuid);

    if (f)
        f->dirty = true, f->undefined = undefined;
}

static void
vmh_virt_refresh_done_cb(void *opaque)
{
    struct vmh_virt_refresh *r = opaque;
    struct vmh_virt_host *host = r->host;
    struct vmh_virt_refreshing *f;
    struct vmh_virt *virt = host->virt;

    virt->tasks_in_flight--;
    if (virt->dying || host->removed || host->conn != r->conn) {
        /* reconnected meanwhile: the inventory was read anew */
        g_hash_table_remove(host->refreshing, r->uuid);
        vmh_domain_info_clear(&r->info);
    } else if ((f = g_hash_table_lookup(host->refreshing, r->uuid)) && f->dirty) {
        bool again = !f->undefined;

        g_hash_table_remove(host->refreshing, r->uuid);
        vmh_domain_info_clear(&r->info);
        if (again)
            vmh_virt_refresh_push(host, r->uuid);
    } else {
        g_hash_table_remove(host->refreshing, r->uuid);
        if (r->rc == 0)
            vmh_engine_domain_update(virt->engine, host->name, &r->info);
    }
    virConnectClose(r->conn);
    vmh_virt_host_unref(host);
    g_free(r);
    if (virt->dying && !virt->tasks_in_flight)
        g_free(virt);
}

static void
vmh_virt_refresh_worker(gpointer data, gpointer user_data)
{
    struct vmh_virt_refresh *r = data;
    virDomainPtr dom = virDomainLookupByUUIDString(r->conn, r->uuid);

    r->rc = dom ? vmh_virt_domain_info(dom, &r->info) : -1;
    if (dom)
        virDomainFree(dom);
    else if (virGetLastErrorCode() != VIR_ERR_NO_DOMAIN)
        log_warn("virt", "host %s: cannot look up domain %s: %s", r->host->name, r->uuid,
                 virGetLastErrorMessage());
    vmh_loop_post(((struct vmh_virt *)user_data)->loop, vmh_virt_refresh_done_cb, r);
}

static int
vmh_virt_lifecycle_cb(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
    struct vmh_virt_host *host = opaque;
    struct vmh_engine *engine = host->virt->engine;
    char uuid[VIR_UUID_STRING_BUFLEN];

    if (host->removed || host->conn != conn || virDomainGetUUIDString(dom, uuid) < 0)
        return 0;
    log_debug("virt", "host %s: domain %s event %d detail %d", host->name, virDomainGetName(dom),
              event, detail);
    if (event == VIR_DOMAIN_EVENT_CRASHED)
        vmh_virt_report_crash(engine, host->name, uuid,
                              detail == VIR_DOMAIN_EVENT_CRASHED_CRASHLOADED
                                  ? "crashed and loaded a crash kernel"
                                  : "panicked");
    else if (event == VIR_DOMAIN_EVENT_STOPPED && (detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED ||
                                                   detail == VIR_DOMAIN_EVENT_STOPPED_FAILED))
        vmh_virt_report_crash(engine, host->name, uuid,
                              detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED
                                  ? "crashed and stopped"
                                  : "stopped: its emulator failed");
    switch (event) {
    case VIR_DOMAIN_EVENT_DEFINED:
        vmh_virt_domain_refresh(host, uuid);
        break;
    case VIR_DOMAIN_EVENT_UNDEFINED:
        vmh_virt_domain_touched(host, uuid, true);
        vmh_engine_domain_removed(engine, host->name, uuid);
        break;
    case VIR_DOMAIN_EVENT_STARTED:
        /* At once for the state; the re-read brings in a transient domain,
         * which is announced by its start alone. */
        vmh_engine_domain_power(engine, host->name, uuid, VMH_POWER_RUNNING);
        vmh_virt_domain_refresh(host, uuid);
        break;
    default: {
        enum vmh_power_state power = vmh_virt_event_power_state(event, detail);

        vmh_virt_domain_touched(host, uuid, false);
        if (power != VMH_POWER_NOSTATE)
            vmh_engine_domain_power(engine, host->name, uuid, power);
        break;
    }
    }
    return 0;
}

static void
vmh_virt_metadata_cb(virConnectPtr conn, virDomainPtr dom, int type, const char *nsuri,
                     void *opaque)
{
    struct vmh_virt_host *host = opaque;
    char uuid[VIR_UUID_STRING_BUFLEN];

    if (host->removed || host->conn != conn || virDomainGetUUIDString(dom, uuid) < 0)
        return;
    if (type == VIR_DOMAIN_METADATA_ELEMENT && nsuri && !strcmp(nsuri, VMH_NS))
        vmh_virt_domain_refresh(host, uuid);
}

/* --- VM faults from libvirt events --- */

static void
vmh_virt_vm_fault(struct vmh_engine *engine, const char *host, const char *uuid,
                  enum vmh_cause cause, enum vmh_severity severity, const char *value,
                  const char *description)
{
    struct vmh_fault_report r = {
        .host = host,
        .vm_uuid = uuid,
        .cause = cause,
        .severity = severity,
        .value = value,
        .description = description,
    };

    vmh_engine_raise_fault(engine, &r);
}

void
vmh_virt_report_crash(struct vmh_engine *engine, const char *host, const char *uuid,
                      const char *how)
{
    char *desc = g_strdup_printf("the guest %s", how);

    vmh_virt_vm_fault(engine, host, uuid, VMH_CAUSE_VM_CRASHED, VMH_SEV_CRITICAL, how, desc);
    g_free(desc);
}

void
vmh_virt_report_watchdog(struct vmh_engine *engine, const char *host, const char *uuid, int action)
{
    static const char *const actions[] = {"none",     "pause", "reset",     "poweroff",
                                          "shutdown", "debug", "inject-nmi"};
    const char *name =
        action >= 0 && action < (int)G_N_ELEMENTS(actions) ? actions[action] : "unknown";
    char *desc = g_strdup_printf("the guest watchdog fired (action %s)", name);

    vmh_virt_vm_fault(engine, host, uuid, VMH_CAUSE_WATCHDOG, VMH_SEV_CRITICAL, name, desc);
    g_free(desc);
}

void
vmh_virt_report_io_error(struct vmh_engine *engine, const char *host, const char *uuid,
                         const char *src_path, const char *dev_alias, int action,
                         const char *reason)
{
    static const char *const actions[] = {"none", "pause", "report"};
    const char *name =
        action >= 0 && action < (int)G_N_ELEMENTS(actions) ? actions[action] : "unknown";
    char *desc = g_strdup_printf("I/O error on %s (%s): %s; action %s",
                                 dev_alias && *dev_alias ? dev_alias : "a disk",
                                 src_path && *src_path ? src_path : "no source",
                                 reason && *reason ? reason : "unknown reason", name);

    /* A guest paused on an I/O error has stopped serving. */
    vmh_virt_vm_fault(engine, host, uuid, VMH_CAUSE_IO_ERROR,
                      action == VIR_DOMAIN_EVENT_IO_ERROR_PAUSE ? VMH_SEV_CRITICAL : VMH_SEV_MAJOR,
                      reason, desc);
    g_free(desc);
}

void
vmh_virt_report_memory_failure(struct vmh_engine *engine, const char *host, const char *uuid,
                               int recipient, int action)
{
    static const char *const actions[] = {"ignore", "inject", "fatal", "reset"};
    const char *name =
        action >= 0 && action < (int)G_N_ELEMENTS(actions) ? actions[action] : "unknown";
    enum vmh_severity sev = action == VIR_DOMAIN_EVENT_MEMORY_FAILURE_ACTION_FATAL ||
                                    action == VIR_DOMAIN_EVENT_MEMORY_FAILURE_ACTION_RESET
                                ? VMH_SEV_CRITICAL
                            : action == VIR_DOMAIN_EVENT_MEMORY_FAILURE_ACTION_INJECT
                                ? VMH_SEV_MAJOR
                                : VMH_SEV_MINOR;
    char *desc = g_strdup_printf(
        "hardware memory error in the %s (action %s)",
        recipient == VIR_DOMAIN_EVENT_MEMORY_FAILURE_RECIPIENT_GUEST ? "guest" : "hypervisor",
        name);

    vmh_virt_vm_fault(engine, host, uuid, VMH_CAUSE_GUEST_MEMORY_FAILURE, sev, name, desc);
    g_free(desc);
}

static struct vmh_virt_host *
vmh_virt_event_host(virConnectPtr conn, virDomainPtr dom, void *opaque, char *uuid)
{
    struct vmh_virt_host *host = opaque;

    if (host->removed || host->conn != conn || virDomainGetUUIDString(dom, uuid) < 0)
        return NULL;
    return host;
}

static void
vmh_virt_watchdog_cb(virConnectPtr conn, virDomainPtr dom, int action, void *opaque)
{
    char uuid[VIR_UUID_STRING_BUFLEN];
    struct vmh_virt_host *host = vmh_virt_event_host(conn, dom, opaque, uuid);

    if (host)
        vmh_virt_report_watchdog(host->virt->engine, host->name, uuid, action);
}

static void
vmh_virt_io_error_cb(virConnectPtr conn, virDomainPtr dom, const char *src_path,
                     const char *dev_alias, int action, const char *reason, void *opaque)
{
    char uuid[VIR_UUID_STRING_BUFLEN];
    struct vmh_virt_host *host = vmh_virt_event_host(conn, dom, opaque, uuid);

    if (host)
        vmh_virt_report_io_error(host->virt->engine, host->name, uuid, src_path, dev_alias, action,
                                 reason);
}

static void
vmh_virt_memory_failure_cb(virConnectPtr conn, virDomainPtr dom, int recipient, int action,
                           unsigned int flags, void *opaque)
{
    char uuid[VIR_UUID_STRING_BUFLEN];
    struct vmh_virt_host *host = vmh_virt_event_host(conn, dom, opaque, uuid);

    if (host)
        vmh_virt_report_memory_failure(host->virt->engine, host->name, uuid, recipient, action);
}

static const struct {
    int id;
    virConnectDomainEventGenericCallback cb;
} vmh_virt_events[VMH_VIRT_N_EVENTS] = {
    {VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(vmh_virt_lifecycle_cb)},
    {VIR_DOMAIN_EVENT_ID_METADATA_CHANGE, VIR_DOMAIN_EVENT_CALLBACK(vmh_virt_metadata_cb)},
    {VIR_DOMAIN_EVENT_ID_WATCHDOG, VIR_DOMAIN_EVENT_CALLBACK(vmh_virt_watchdog_cb)},
    {VIR_DOMAIN_EVENT_ID_IO_ERROR_REASON, VIR_DOMAIN_EVENT_CALLBACK(vmh_virt_io_error_cb)},
    {VIR_DOMAIN_EVENT_ID_MEMORY_FAILURE, VIR_DOMAIN_EVENT_CALLBACK(vmh_virt_memory_failure_cb)},
};

/* --- connections --- */

static void vmh_virt_close_cb(virConnectPtr conn, int reason, void *opaque);

static void
vmh_virt_release_conn(struct vmh_virt_host *host, virConnectPtr conn)
{
    if (!conn)
        return;
    for (int i = 0; i < VMH_VIRT_N_EVENTS; i++) {
        if (host->cb[i] >= 0)
            virConnectDomainEventDeregisterAny(conn, host->cb[i]);
        host->cb[i] = -1;
    }
    virConnectUnregisterCloseCallback(conn, vmh_virt_close_cb);
    virConnectClose(conn);
}

static void
vmh_virt_first_round_check(struct vmh_virt *virt)
{
    void (*done)(void *) = virt->first_round_done;

    if (!done)
        return;
    for (guint i = 0; i < virt->hosts->len; i++) {
        if (!((struct vmh_virt_host *)g_ptr_array_index(virt->hosts, i))->first_attempt_done)
            return;
    }
    virt->first_round_done = NULL;
    done(virt->first_round_opaque);
}

void
vmh_virt_on_first_round(struct vmh_virt *virt, void (*done)(void *), void *opaque)
{
    virt->first_round_done = done;
    virt->first_round_opaque = opaque;
    vmh_virt_first_round_check(virt);
}

static void
vmh_virt_lost(struct vmh_virt_host *host, const char *why)
{
    virConnectPtr conn = host->conn;

    host->conn = NULL;
    host->state = VMH_VIRT_IDLE;
    vmh_virt_release_conn(host, conn);
    vmh_engine_host_disconnected(host->virt->engine, host->name, why);
    vmh_virt_schedule_retry(host);
}

static void
vmh_virt_lost_later(void *opaque)
{
    struct vmh_virt_host *host = opaque;

    if (!host->removed && host->state == VMH_VIRT_CONNECTED)
        vmh_virt_lost(host, "connection closed");
}

static void
vmh_virt_close_cb(virConnectPtr conn, int reason, void *opaque)
{
    struct vmh_virt_host *host = opaque;
    static const char *const reasons[] = {"error", "end of file", "keepalive timeout",
                                          "client closed"};
    const char *why = reason >= 0 && reason < 4 ? reasons[reason] : "unknown";

    log_warn("virt", "host %s: connection to %s lost (%s)", host->name, host->uri, why);
    /* Closing a connection from inside its own close callback is not safe;
     * let libvirt unwind first. */
    if (vmh_loop_timer_once(host->virt->loop, 0, vmh_virt_lost_later, vmh_virt_host_ref(host),
                            vmh_virt_host_unref) < 0)
        vmh_virt_host_unref(host);
}

/* Worker thread: opens the connection, subscribes to its events and reads
 * the inventory, then hands everything to the loop thread. */
static void vmh_virt_connect_done(void *opaque);

static void
vmh_virt_connect_worker(gpointer data, gpointer user_data)
{
    struct vmh_virt_connect_result *res = data;
    struct vmh_virt_host *host = res->host;
    virDomainPtr *doms = NULL;
    int n;

    res->conn = virConnectOpen(host->uri);
    if (!res->conn) {
        res->error = g_strdup(virGetLastErrorMessage());
        goto done;
    }
    if (virConnectSetKeepAlive(res->conn, VMH_VIRT_KEEPALIVE_S, VMH_VIRT_KEEPALIVE_N) < 0)
        log_debug("virt", "host %s: no keepalive on this connection: %s", host->name,
                  virGetLastErrorMessage());
    /* Subscribe before listing so that nothing falls between the two; the
     * callbacks ignore events until the loop thread installed conn. */
    for (int i = 0; i < VMH_VIRT_N_EVENTS; i++) {
        host->cb[i] = virConnectDomainEventRegisterAny(
            res->conn, NULL, vmh_virt_events[i].id, vmh_virt_events[i].cb, vmh_virt_host_ref(host),
            vmh_virt_host_unref);
        if (host->cb[i] < 0) {
            res->error =
                g_strdup_printf("cannot subscribe to domain events: %s", virGetLastErrorMessage());
            goto done;
        }
    }
    /* No reference for the close callback: drivers without close callbacks
     * (the test driver) accept the registration but never call its free
     * function; it is unregistered before the host goes anyway. */
    if (virConnectRegisterCloseCallback(res->conn, vmh_virt_close_cb, host, NULL) < 0) {
        res->error = g_strdup_printf("cannot watch the connection: %s", virGetLastErrorMessage());
        goto done;
    }
    n = virConnectListAllDomains(res->conn, &doms, 0);
    if (n < 0) {
        res->error = g_strdup_printf("cannot list domains: %s", virGetLastErrorMessage());
        goto done;
    }
    res->doms = g_new0(struct vmh_domain_info, n + 1);
    for (int i = 0; i < n; i++) {
        if (vmh_virt_domain_info(doms[i], &res->doms[res->n_doms]) == 0)
            res->n_doms++;
        virDomainFree(doms[i]);
    }
    free(doms);

done:
    vmh_loop_post(host->virt->loop, vmh_virt_connect_done, res);
}

static void
vmh_virt_connect_done(void *opaque)
{
    struct vmh_virt_connect_result *res = opaque;
    struct vmh_virt_host *host = res->host;
    struct vmh_virt *virt = host->virt;

    if (host->removed) {
        /* virt may be gone already: touch nothing but what res holds. */
        vmh_virt_release_conn(host, res->conn);
        vmh_domain_info_free_array(res->doms, res->n_doms);
        g_free(res->error);
        g_free(res);
        vmh_virt_host_unref(host);
        return;
    }
    if (res->error) {
        /* Said once per outage; the retries behind it are debug lines. */
        if (host->backoff_ms == 0)
            log_warn("virt", "host %s: cannot connect to %s: %s", host->name, host->uri,
                     res->error);
        else
            log_debug("virt", "host %s: still cannot connect: %s", host->name, res->error);
        vmh_virt_release_conn(host, res->conn);
        vmh_domain_info_free_array(res->doms, res->n_doms);
        host->state = VMH_VIRT_IDLE;
        vmh_engine_host_disconnected(virt->engine, host->name, res->error);
        vmh_virt_schedule_retry(host);
    } else {
        host->conn = res->conn;
        host->state = VMH_VIRT_CONNECTED;
        host->backoff_ms = 0;
        log_info("virt", "host %s: connected to %s", host->name, host->uri);
        vmh_engine_host_connected(virt->engine, host->name, res->doms, res->n_doms);
        vmh_virt_measure_room(virt, host->name);
    }
    host->first_attempt_done = true;
    g_free(res->error);
    g_free(res);
    vmh_virt_host_unref(host);
    vmh_virt_run_deferred(virt);
    vmh_virt_first_round_check(virt);
}

static void
vmh_virt_connect(struct vmh_virt_host *host)
{
    struct vmh_virt_connect_result *res = g_new0(struct vmh_virt_connect_result, 1);

    host->state = VMH_VIRT_CONNECTING;
    res->host = vmh_virt_host_ref(host);
    g_thread_pool_push(host->virt->connectors, res, NULL);
}

static void
vmh_virt_retry_cb(void *opaque)
{
    struct vmh_virt_host *host = opaque;

    host->retry_timer = -1;
    if (!host->removed && host->state == VMH_VIRT_IDLE)
        vmh_virt_connect(host);
}

static void
vmh_virt_schedule_retry(struct vmh_virt_host *host)
{
    host->backoff_ms = host->backoff_ms ? host->backoff_ms * 2 : VMH_VIRT_BACKOFF_MIN_MS;
    if (host->backoff_ms > VMH_VIRT_BACKOFF_MAX_MS)
        host->backoff_ms = VMH_VIRT_BACKOFF_MAX_MS;
    log_debug("virt", "host %s: next connection attempt in %d ms", host->name, host->backoff_ms);
    host->retry_timer =
        vmh_loop_timer_once(host->virt->loop, host->backoff_ms, vmh_virt_retry_cb, host, NULL);
}

int
vmh_virt_add_host(struct vmh_virt *virt, const char *name, const char *uri)
{
    struct vmh_virt_host *host = g_new0(struct vmh_virt_host, 1);

    host->refs = 1;
    host->virt = virt;
    host->name = g_strdup(name);
    host->uri = g_strdup(uri);
    for (int i = 0; i < VMH_VIRT_N_EVENTS; i++)
        host->cb[i] = -1;
    host->retry_timer = -1;
    host->refreshing = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_ptr_array_add(virt->hosts, host);
    vmh_virt_connect(host);
    return 0;
}

static void
vmh_virt_host_release(struct vmh_virt_host *host)
{
    host->removed = true;
    vmh_loop_timer_cancel(host->retry_timer);
    host->retry_timer = -1;
    if (host->conn) {
        virConnectPtr conn = host->conn;

        host->conn = NULL;
        vmh_virt_release_conn(host, conn);
    }
    vmh_virt_host_unref(host);
}

void
vmh_virt_remove_host(struct vmh_virt *virt, const char *name)
{
    for (guint i = 0; i < virt->hosts->len; i++) {
        struct vmh_virt_host *host = g_ptr_array_index(virt->hosts, i);

        if (!strcmp(host->name, name)) {
            g_ptr_array_remove_index(virt->hosts, i);
            log_info("virt", "host %s: released", name);
            vmh_virt_host_release(host);
            vmh_virt_run_deferred(virt);
            vmh_virt_first_round_check(virt);
            return;
        }
    }
}

virConnectPtr
vmh_virt_host_conn(struct vmh_virt *virt, const char *name)
{
    for (guint i = 0; i < virt->hosts->len; i++) {
        struct vmh_virt_host *host = g_ptr_array_index(virt->hosts, i);

        if (!strcmp(host->name, name) && host->conn && virConnectRef(host->conn) == 0)
            return host->conn;
    }
    return NULL;
}

void
vmh_virt_free(struct vmh_virt *virt)
{
    if (!virt)
        return;
    /* Running connection attempts finish first; their results are dropped. */
    for (guint i = 0; i < virt->hosts->len; i++)
        ((struct vmh_virt_host *)g_ptr_array_index(virt->hosts, i))->removed = true;
    vmh_loop_timer_cancel(virt->room_timer);
    /* Recoveries that never ran: the journal still has them for next time. */
    for (guint i = 0; i < virt->deferred->len; i++) {
        vmh_virt_task_free(g_ptr_array_index(virt->deferred, i));
        virt->tasks_in_flight--;
    }
    g_ptr_array_free(virt->deferred, TRUE);
    virt->deferred = NULL;
    g_thread_pool_free(virt->migrators, FALSE, TRUE);
    g_thread_pool_free(virt->connectors, FALSE, TRUE);
    g_thread_pool_free(virt->refreshers, FALSE, TRUE);
    for (guint i = 0; i < virt->hosts->len; i++)
        vmh_virt_host_release(g_ptr_array_index(virt->hosts, i));
    g_ptr_array_free(virt->hosts, TRUE);
    virt->hosts = NULL;
    /* Workers that finished have posted their reports to the loop; the last
     * of those frees what is left. */
    virt->dying = true;
    if (!virt->tasks_in_flight)
        g_free(virt);
}

/* --- migration requests of the engine --- */

enum vmh_virt_task_kind {
    VMH_TASK_MIGRATE,
    VMH_TASK_RECOVER,
    VMH_TASK_ROOM,
    VMH_TASK_STALE,
};

/* One piece of blocking work for a worker, and what it reports back. */
struct vmh_virt_task {
    enum vmh_virt_task_kind kind;
    struct vmh_virt *virt;
    uint64_t request_id;
    char uuid[VMH_UUID_LEN + 1];
    char *source_name;
    char *target_name;
    virConnectPtr source; /* referenced, may be NULL */
    virConnectPtr target; /* referenced, may be NULL */
    bool shared_storage;
    unsigned shutdown_timeout_s;
    bool was_running;
    enum vmh_migration_step step; /* a recovery: the step the interrupted migration had begun */
    char *last_known_xml;
    char *wait_for; /* a recovery that needs this host to answer first */
    /* results */
    struct vmh_migration_outcome res;
    char *error;
    uint64_t room_kib;
    unsigned room_vcpus;
    bool room_ok;
};

struct vmh_virt_step_report {
    struct vmh_virt *virt;
    uint64_t request_id;
    enum vmh_migration_step step;
};

static void
vmh_virt_task_free(struct vmh_virt_task *t)
{
    if (t->source)
        virConnectClose(t->source);
    if (t->target)
        virConnectClose(t->target);
    g_free(t->source_name);
    g_free(t->target_name);
    g_free(t->last_known_xml);
    g_free(t->wait_for);
    g_free(t->error);
    g_free(t);
}

static void
vmh_virt_step_report_cb(void *opaque)
{
    struct vmh_virt_step_report *r = opaque;

    vmh_engine_migration_step(r->virt->engine, r->request_id, r->step);
    g_free(r);
}

/* Worker thread: journal the step through the engine before it happens. */
static void
vmh_virt_on_step(enum vmh_migration_step step, void *opaque)
{
    struct vmh_virt_task *t = opaque;
    struct vmh_virt_step_report *r = g_new0(struct vmh_virt_step_report, 1);

    r->virt = t->virt;
    r->request_id = t->request_id;
    r->step = step;
    vmh_loop_post(t->virt->loop, vmh_virt_step_report_cb, r);
}

static void
vmh_virt_task_done_cb(void *opaque)
{
    struct vmh_virt_task *t = opaque;
    struct vmh_virt *virt = t->virt;

    virt->tasks_in_flight--;
    if (virt->dying) {
        vmh_virt_task_free(t);
        if (!virt->tasks_in_flight)
            g_free(virt);
        return;
    }
    if (t->kind == VMH_TASK_RECOVER && t->wait_for && vmh_virt_recover_defer(virt, t))
        return;
    if (t->kind == VMH_TASK_STALE) {
        vmh_virt_measure_room(virt, t->source_name);
    } else if (t->kind == VMH_TASK_ROOM) {
        if (t->room_ok)
            vmh_engine_host_room(virt->engine, t->source_name, t->room_kib, t->room_vcpus);
    } else {
        t->res.error = t->error;
        vmh_engine_migration_done(virt->engine, t->request_id, &t->res);
        /* Both ends have changed: measure again. */
        vmh_virt_measure_room(virt, t->source_name);
        vmh_virt_measure_room(virt, t->target_name);
    }
    vmh_virt_task_free(t);
}

static void
vmh_virt_do_migrate(struct vmh_virt_task *t)
{
    struct vmh_virt_request req = {
        .source_name = t->source_name,
        .source = t->source,
        .target_name = t->target_name,
        .target = t->target,
        .shared_storage = t->shared_storage,
        .shutdown_timeout_s = t->shutdown_timeout_s,
        .on_step = vmh_virt_on_step,
        .opaque = t,
    };
    struct vmh_virt_outcome out = {0};

    memcpy(req.uuid, t->uuid, sizeof req.uuid);
    if (!t->target) {
        t->error = g_strdup_printf("check: target host %s is not connected", t->target_name);
        return;
    }
    if (!t->source) {
        /* The host is gone: evacuate from its last known definition (the
         * executor refuses unless the storage is shared). */
        log_warn("virt", "%s: host %s is unreachable; evacuating from its last known definition",
                 t->uuid, t->source_name);
        req.last_known_xml = t->last_known_xml;
        req.last_known_shutoff = !t->was_running;
    }
    vmh_virt_migrate(&req, &out);
    t->res.ok = out.ok;
    t->res.started = out.started;
    t->res.rolled_back = out.rolled_back;
    t->res.libvirt_ms = out.libvirt_ms;
    if (!out.ok)
        t->error = g_strdup(out.error ? out.error : "migration failed");
    free(out.error);
}

/* After a restart in the middle of a migration: finish it when the target
 * has the domain and the source no longer runs it, else roll it back.  An
 * unreachable host is waited for (t->wait_for), except a target that cannot
 * have started the VM yet: then the source takes it back at once and the
 * target's copy is removed as stale when that host returns. */
static void
vmh_virt_do_recover(struct vmh_virt_task *t)
{
    bool on_src_running = false, on_dst_running = false;
    int on_src = t->source ? vmh_virt_domain_presence(t->source, t->uuid, &on_src_running) : -1;
    int on_dst = t->target ? vmh_virt_domain_presence(t->target, t->uuid, &on_dst_running) : -1;
    virDomainPtr dom;

    g_clear_pointer(&t->wait_for, g_free);
    if (on_dst < 0 && on_src == 1 && t->step < VMH_STEP_START) {
        log_warn("virt",
                 "recovery: %s: target %s unreachable before the VM could start there: "
                 "rolling back to %s",
                 t->uuid, t->target_name, t->source_name);
    } else if (on_dst < 0 || (on_src < 0 && on_dst == 0)) {
        t->wait_for = g_strdup(on_dst < 0 ? t->target_name : t->source_name);
        return;
    }
    if (on_dst == 1 && !on_src_running) {
        /* Finish: start on the target if it ran, drop the source definition (disks kept). */
        if (t->was_running && !on_dst_running &&
            (dom = virDomainLookupByUUIDString(t->target, t->uuid))) {
            if (virDomainCreate(dom) == 0)
                on_dst_running = true;
            else
                log_warn("virt", "recovery: cannot start %s on %s: %s", t->uuid, t->target_name,
                         virGetLastErrorMessage());
            virDomainFree(dom);
        }
        if (on_src == 1 && (dom = virDomainLookupByUUIDString(t->source, t->uuid))) {
            if (vmh_virt_undefine_keep_disks(dom) < 0)
                log_warn("virt", "recovery: cannot undefine %s on %s: %s", t->uuid, t->source_name,
                         virGetLastErrorMessage());
            virDomainFree(dom);
        }
        t->res.ok = true;
        t->res.started = on_dst_running;
        return;
    }
    /* Roll back: the source keeps it; the target's copy goes if it is there. */
    if (on_dst == 1 && (dom = virDomainLookupByUUIDString(t->target, t->uuid))) {
        if (on_dst_running)
            virDomainDestroy(dom);
        if (vmh_virt_undefine_keep_disks(dom) < 0)
            log_warn("virt", "recovery: cannot undefine %s on %s: %s", t->uuid, t->target_name,
                     virGetLastErrorMessage());
        virDomainFree(dom);
    }
    if (on_src == 1 && t->was_running && !on_src_running &&
        (dom = virDomainLookupByUUIDString(t->source, t->uuid))) {
        if (virDomainCreate(dom) < 0)
            log_warn("virt", "recovery: cannot restart %s on %s: %s", t->uuid, t->source_name,
                     virGetLastErrorMessage());
        virDomainFree(dom);
    }
    t->res.rolled_back = true;
    t->error = g_strdup("interrupted by a restart of vmhealthd; rolled back to the source");
}

/* Only ever a shut-off copy, checked again here: a running one is an
 * operator's problem, not something to remove. */
static void
vmh_virt_do_remove_stale(struct vmh_virt_task *t)
{
    virDomainPtr dom = t->source ? virDomainLookupByUUIDString(t->source, t->uuid) : NULL;

    if (!dom)
        return;
    if (virDomainIsActive(dom) == 0) {
        if (vmh_virt_undefine_keep_disks(dom) == 0)
            log_info("virt", "%s: stale copy on %s undefined (its disks kept)", t->uuid,
                     t->source_name);
        else
            log_warn("virt", "%s: cannot undefine the stale copy on %s: %s", t->uuid,
                     t->source_name, virGetLastErrorMessage());
    }
    virDomainFree(dom);
}

static void
vmh_virt_migrate_worker(gpointer data, gpointer user_data)
{
    struct vmh_virt_task *t = data;

    switch (t->kind) {
    case VMH_TASK_MIGRATE:
        vmh_virt_do_migrate(t);
        break;
    case VMH_TASK_RECOVER:
        vmh_virt_do_recover(t);
        break;
    case VMH_TASK_ROOM:
        t->room_ok = vmh_virt_host_room(t->source, &t->room_kib, &t->room_vcpus) == 0;
        break;
    case VMH_TASK_STALE:
        vmh_virt_do_remove_stale(t);
        break;
    }
    vmh_loop_post(t->virt->loop, vmh_virt_task_done_cb, t);
}

static struct vmh_virt_task *
vmh_virt_task_new(struct vmh_virt *virt, enum vmh_virt_task_kind kind,
                  const struct vmh_migration_request *req)
{
    struct vmh_virt_task *t = g_new0(struct vmh_virt_task, 1);

    t->kind = kind;
    t->virt = virt;
    t->request_id = req->id;
    memcpy(t->uuid, req->uuid, sizeof t->uuid);
    t->source_name = g_strdup(req->source);
    t->target_name = g_strdup(req->target);
    t->source = vmh_virt_host_conn(virt, req->source);
    t->target = vmh_virt_host_conn(virt, req->target);
    t->shared_storage = req->shared_storage;
    t->shutdown_timeout_s = req->shutdown_timeout_s;
    t->was_running = req->was_running;
    t->step = req->step;
    t->last_known_xml = g_strdup(req->last_known_xml);
    return t;
}

void
vmh_virt_run_migration(struct vmh_virt *virt, const struct vmh_migration_request *req)
{
    virt->tasks_in_flight++;
    g_thread_pool_push(virt->migrators, vmh_virt_task_new(virt, VMH_TASK_MIGRATE, req), NULL);
}

static bool
vmh_virt_host_connecting(struct vmh_virt *virt, const char *name)
{
    for (guint i = 0; i < virt->hosts->len; i++) {
        struct vmh_virt_host *host = g_ptr_array_index(virt->hosts, i);

        if (name && !strcmp(host->name, name))
            return host->state == VMH_VIRT_CONNECTING;
    }
    return false;
}

static bool
vmh_virt_host_configured(struct vmh_virt *virt, const char *name, bool *connected)
{
    for (guint i = 0; i < virt->hosts->len; i++) {
        struct vmh_virt_host *host = g_ptr_array_index(virt->hosts, i);

        if (name && !strcmp(host->name, name)) {
            *connected = host->state == VMH_VIRT_CONNECTED;
            return true;
        }
    }
    return false;
}

/* A recovery decides from what both ends hold: one whose connection attempt
 * is still in flight (after a restart, whichever host answers first brings
 * the VM in) is not "unreachable" yet, so wait for that attempt's outcome;
 * and one that found a host it needs unreachable waits until that host
 * connects again or leaves the configuration. */
static bool
vmh_virt_recover_waits(struct vmh_virt *virt, struct vmh_virt_task *t)
{
    bool connected = false;

    if (vmh_virt_host_connecting(virt, t->source_name) ||
        vmh_virt_host_connecting(virt, t->target_name))
        return true;
    return t->wait_for && vmh_virt_host_configured(virt, t->wait_for, &connected) && !connected;
}

static void
vmh_virt_recover_push(struct vmh_virt *virt, struct vmh_virt_task *t)
{
    /* the connections of now: a host may have reconnected meanwhile */
    g_clear_pointer(&t->source, virConnectClose);
    g_clear_pointer(&t->target, virConnectClose);
    t->source = vmh_virt_host_conn(virt, t->source_name);
    t->target = vmh_virt_host_conn(virt, t->target_name);
    g_thread_pool_push(virt->migrators, t, NULL);
}

/* On the loop thread, when a recovery found a host it needs unreachable:
 * back to waiting (true), or, when that host is no longer configured, the
 * case ends with the VM left where it is (false). */
static bool
vmh_virt_recover_defer(struct vmh_virt *virt, struct vmh_virt_task *t)
{
    bool connected = false;

    if (!vmh_virt_host_configured(virt, t->wait_for, &connected)) {
        t->error = g_strdup_printf("recovery: host %s is no longer configured; the VM was left "
                                   "where it is",
                                   t->wait_for);
        return false;
    }
    log_warn("virt",
             "%s: the recovery of its interrupted migration %s -> %s waits for host %s, "
             "which does not answer; the VM stays as it is until then",
             t->uuid, t->source_name, t->target_name, t->wait_for);
    virt->tasks_in_flight++;
    g_ptr_array_add(virt->deferred, t);
    vmh_virt_run_deferred(virt); /* it may have connected meanwhile */
    return true;
}

void
vmh_virt_recover_migration(struct vmh_virt *virt, const struct vmh_migration_request *req)
{
    struct vmh_virt_task *t = vmh_virt_task_new(virt, VMH_TASK_RECOVER, req);

    virt->tasks_in_flight++;
    if (vmh_virt_recover_waits(virt, t)) {
        log_info("virt", "%s: recovery waits for the connection attempt to %s", t->uuid,
                 vmh_virt_host_connecting(virt, t->target_name) ? t->target_name : t->source_name);
        g_ptr_array_add(virt->deferred, t);
        return;
    }
    vmh_virt_recover_push(virt, t);
}

/* After each connection attempt's outcome (or a host's removal). */
static void
vmh_virt_run_deferred(struct vmh_virt *virt)
{
    for (guint i = 0; i < virt->deferred->len;) {
        struct vmh_virt_task *t = g_ptr_array_index(virt->deferred, i);

        if (vmh_virt_recover_waits(virt, t)) {
            i++;
            continue;
        }
        g_ptr_array_remove_index(virt->deferred, i);
        vmh_virt_recover_push(virt, t);
    }
}

void
vmh_virt_measure_room(struct vmh_virt *virt, const char *name)
{
    for (guint i = 0; i < virt->hosts->len; i++) {
        struct vmh_virt_host *host = g_ptr_array_index(virt->hosts, i);
        struct vmh_virt_task *t;

        if ((name && strcmp(host->name, name)) || !host->conn)
            continue;
        t = g_new0(struct vmh_virt_task, 1);
        t->kind = VMH_TASK_ROOM;
        t->virt = virt;
        t->source_name = g_strdup(host->name);
        t->source = vmh_virt_host_conn(virt, host->name);
        virt->tasks_in_flight++;
        g_thread_pool_push(virt->migrators, t, NULL);
    }
}

void
vmh_virt_remove_stale(struct vmh_virt *virt, const char *name, const char *uuid)
{
    struct vmh_virt_task *t = g_new0(struct vmh_virt_task, 1);

    t->kind = VMH_TASK_STALE;
    t->virt = virt;
    snprintf(t->uuid, sizeof t->uuid, "%s", uuid);
    t->source_name = g_strdup(name);
    t->source = vmh_virt_host_conn(virt, name);
    virt->tasks_in_flight++;
    g_thread_pool_push(virt->migrators, t, NULL);
}

static void
vmh_virt_room_tick(void *opaque)
{
    vmh_virt_measure_room(opaque, NULL);
}
