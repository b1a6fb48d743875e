/* SPDX-License-Identifier: GPL-3.0-or-later */
/* What the SNMP front end's files share: the agent object, the event queue
 * between the engine and the net-snmp thread, and the trap targets. */
#ifndef VMH_SNMP_SNMP_PRIV_H
#define VMH_SNMP_SNMP_PRIV_H

#include "snmp/snmp.h"
#include "snmp/snmp_mib.h"

#include <glib.h>
#include <pthread.h>

#include <net-snmp/agent/net-snmp-agent-includes.h>
#include <net-snmp/agent/agent_callbacks.h>

/* An engine event, copied on the loop thread for the net-snmp thread. */
struct vmh_snmp_event {
    enum vmh_event_type type;
    int64_t time_ms;
    int64_t queued_us; /* monotonic, for the latency log */
    char *vm_uuid;
    char *vm_name;
    char *host;
    uint64_t fault_id;
    enum vmh_cause cause;
    enum vmh_severity severity;
    uint32_t ppt;
    int64_t deadline_ms;
    bool migration_cancelled;
    char *source_host;
    char *target_host;
    uint64_t duration_ms;
    char *reason;
};

struct vmh_snmp_target_rt {
    struct vmh_snmp *snmp;
    const struct vmh_snmp_target *conf;
    netsnmp_session *sess; /* NULL until opened */
    int64_t retry_open_ms; /* monotonic: when to try opening again */
    uint64_t outstanding;  /* informs waiting for an answer */
    /* informs to a receiver whose engine ID is not configured: discovered
     * by an asynchronous probe, events waiting meanwhile */
    bool engine_known;
    bool probing;
    bool closing; /* snmp_close() times out what is outstanding */
    GQueue pending;
    /* read from any thread */
    uint64_t sent, acked, failed, retried, dropped;
};

struct vmh_snmp {
    struct vmh_engine *engine;
    struct vmh_snmp_conf *conf;
    char *persist_dir;
    char *conf_dir;
    char *sys_descr;
    char *sys_name;
    bool subagent;
    bool listening; /* embedded master with at least one address */

    pthread_t thread;
    bool thread_started;
    bool running; /* net-snmp thread only */
    int pipe[2];
    int drain_timer;  /* timerfd: the next burst of a long queue (net-snmp thread) */
    bool drain_armed; /* net-snmp thread only */

    GMutex lock; /* queue, stopping */
    GQueue queue;
    bool stopping;

    GMutex start_lock;
    GCond start_cond;
    bool start_done;
    int start_rc;

    /* net-snmp thread only */
    struct vmh_mib_view view;
    bool have_view;
    netsnmp_handler_registration *reg_objects;
    netsnmp_handler_registration *reg_system;

    struct vmh_snmp_target_rt *targets;
};

#define VMH_SNMP_QUEUE_MAX 100000

void vmh_snmp_event_free(struct vmh_snmp_event *ev);
struct vmh_snmp_event *vmh_snmp_event_copy(const struct vmh_snmp_event *ev);

/* snmp_trap.c, net-snmp thread */
void vmh_snmp_traps_open(struct vmh_snmp *s);
void vmh_snmp_traps_send(struct vmh_snmp *s, const struct vmh_snmp_event *ev);
bool vmh_snmp_traps_outstanding(const struct vmh_snmp *s);
void vmh_snmp_traps_close(struct vmh_snmp *s);
void vmh_snmp_traps_log_counters(struct vmh_snmp *s);

#endif
