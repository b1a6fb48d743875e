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

/* A target's sending state, kept across configuration changes while the
 * target stays (its counters always; its session and queue when its
 * settings did not change). */
struct vmh_snmp_target_rt {
    struct vmh_snmp *snmp;
    const struct vmh_snmp_target *conf; /* in snmp->conf */
    netsnmp_session *sess;              /* NULL until opened */
    int64_t retry_open_ms;              /* monotonic: when to try opening again */
    uint64_t outstanding;               /* informs waiting for an answer */
    /* informs to a receiver whose engine ID is not configured: discovered
     * by an asynchronous probe, events waiting meanwhile */
    bool engine_known;
    bool probing;
    bool closing; /* snmp_close() times out what is outstanding */
    GQueue pending;
    /* read from any thread */
    uint64_t sent, acked, failed, retried, dropped;
};

/* A listening address of the embedded master: bound by prepare, answering
 * once apply registered it with the agent. */
struct vmh_snmp_listener {
    char *address;
    netsnmp_transport *transport; /* bound, not registered yet */
    int handle;                   /* netsnmp_register_agent_nsap(); 0: not registered */
};

/* A prepared configuration change (vmh_snmp_prepare). */
struct vmh_snmp_change {
    struct vmh_snmp_conf *conf;
    enum vmh_snmp_role role;
    GPtrArray *bound;     /* struct vmh_snmp_listener: the new addresses, bound */
    bool started;         /* prepare started the net-snmp thread (the agent was off) */
    bool restart;         /* apply restarts the net-snmp thread in the new role */
    char *failed_address; /* why prepare failed */
    int failed_errno;
};

/* A function run on the net-snmp thread for another thread, which waits. */
struct vmh_snmp_call {
    int (*fn)(struct vmh_snmp *s, void *arg);
    void *arg;
    int rc;
    bool done;
};

struct vmh_snmp {
    struct vmh_engine *engine;
    /* replaced on the net-snmp thread (or while it is not running) under
     * lock: other threads read them under lock */
    struct vmh_snmp_conf *conf;
    GPtrArray *targets; /* struct vmh_snmp_target_rt, in the order of conf->targets */
    size_t n_targets;   /* atomic: the loop thread's fast path */
    enum vmh_snmp_role role;
    char *persist_dir;
    char *conf_dir;
    char *sys_descr;
    char *sys_name;

    pthread_t thread;
    bool thread_started;
    bool running;       /* net-snmp thread only */
    bool flush_on_stop; /* the last stop sends what is queued; a switch-over keeps it */
    int pipe[2];
    int drain_timer;  /* timerfd: the next burst of a long queue (net-snmp thread) */
    bool drain_armed; /* net-snmp thread only */

    GMutex lock; /* queue, stopping, conf, targets */
    GQueue queue;
    bool stopping;

    GMutex start_lock;
    GCond start_cond;
    bool start_done;
    int start_rc;
    struct vmh_snmp_change *starting; /* what the thread starts with */

    GMutex call_lock;
    GCond call_cond;
    struct vmh_snmp_call *call;

    /* net-snmp thread only */
    bool live;       /* listeners, users and targets set up: the queue drains */
    bool snmp_ready; /* init_snmp() done */
    bool subagent;
    GPtrArray *listeners; /* struct vmh_snmp_listener, registered */
    struct vmh_mib_view view;
    bool have_view;
    netsnmp_handler_registration *reg_objects;
    netsnmp_handler_registration *reg_system;
};

#define VMH_SNMP_QUEUE_MAX 100000

void vmh_snmp_event_free(struct vmh_snmp_event *ev);
struct vmh_snmp_event *vmh_snmp_event_copy(const struct vmh_snmp_event *ev);

/* snmp_trap.c, net-snmp thread */
/* Opens the session of every target without one. */
void vmh_snmp_traps_open(struct vmh_snmp *s);
/* The targets of conf (not yet s->conf), in its order: a target that stays
 * the same keeps everything, a changed one its counters and queue with its
 * session closed (apply opens a new one), a removed one is closed (its
 * pending informs counted failed) and put into removed, to be freed once
 * no other thread can see it. */
GPtrArray *vmh_snmp_traps_update(struct vmh_snmp *s, const struct vmh_snmp_conf *conf,
                                 GPtrArray *removed);
void vmh_snmp_target_rt_free(struct vmh_snmp_target_rt *t);
void vmh_snmp_traps_send(struct vmh_snmp *s, const struct vmh_snmp_event *ev);
bool vmh_snmp_traps_outstanding(const struct vmh_snmp *s);
void vmh_snmp_traps_close(struct vmh_snmp *s);

#endif
