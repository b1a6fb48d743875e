/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Internals of the NETCONF server shared by its files. */
#ifndef VMH_NETCONF_NETCONF_P_H
#define VMH_NETCONF_NETCONF_P_H

#include "config/tree.h"
#include "netconf/netconf.h"
#include "netconf/protocol.h"

#include <glib.h>
#include <libnetconf2/netconf.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

/* A notification ready to be sent, shared by every session it goes to. */
struct vmh_nc_msg {
    gint refs;
    struct lyd_node *tree; /* the notification, NULL for none */
    char *event_time;      /* yang:date-and-time */
    int64_t time_ms;
    char *vnf_manager; /* for access control, NULL: admin only */
    bool complete;     /* notificationComplete: the subscription ends after it */
};

struct vmh_nc_session {
    struct vmh_nc_server *srv;
    struct nc_session *nc;
    struct nc_pollsession *ps;
    int fd; /* -1 when unknown: polled on a timer */
    bool own_fd;
    uint32_t id;
    char *user;
    bool admin;
    char *transport;
    char *cred; /* what it logged in with ("key TYPE BASE64", "password HASH"), NULL: peer uid */
    int64_t login_ms;
    /* under srv->lock */
    bool busy;             /* a worker owns it */
    bool scheduled;        /* a worker must pass over it */
    const char *close_why; /* set: its worker ends it (static text, for the log) */
    uint32_t killed_by;    /* with close_why: the session whose kill-session it was */
    GQueue notifs;         /* struct vmh_nc_msg * */
    bool subscribed;
    struct lyd_node *filter_tree; /* subtree filter of the subscription */
    char *filter_xpath;
    int64_t stop_ms; /* 0: none */
    /* counters (the session's worker only) */
    uint32_t in_rpcs, in_bad_rpcs, out_rpc_errors, out_notifications;
};

struct vmh_nc_user {
    char *name;
    bool admin;
    char **keys; /* "type base64" */
    char *hash;
    char **managers; /* VNF managers this user acts for */
};

struct vmh_nc_replay;

struct vmh_nc_server {
    struct ly_ctx *ctx;
    struct vmh_datastore *ds;
    struct vmh_engine *engine;
    struct vmh_txn *txn;
    int (*state_add)(void *opaque, struct lyd_node *tree);
    void *state_opaque;
    int64_t start_ms;

    pthread_mutex_t lock; /* sessions, scheduling, subscriptions */
    GHashTable *sessions; /* id -> struct vmh_nc_session */
    uint32_t next_unix_id;
    int wake_fd; /* eventfd: the poller rebuilds its set */
    bool stopping;

    pthread_rwlock_t users_lock;
    GPtrArray *users; /* struct vmh_nc_user */

    GThreadPool *workers;
    pthread_t poller;
    bool poller_started;

    /* endpoints (server.c): changed by the commit thread only, under
     * acc_lock (where other threads read them) and with acc_gate held for
     * writing when an SSH one changes */
    GPtrArray *endpoints; /* struct vmh_nc_endpoint */
    int n_ssh_endpoints;
    unsigned endpt_seq; /* for libnetconf2's endpoint names */
    /* SSH acceptors (grow when every one is in a handshake) hold acc_gate
     * for reading in nc_accept() until a connection comes (the host key
     * callback); a change to the SSH endpoints holds it for writing, so
     * that libnetconf2's listeners change while no acceptor polls them
     * (writers first) */
    pthread_rwlock_t acc_gate;
    pthread_mutex_t acc_lock;
    pthread_cond_t acc_cond;
    int acc_total, acc_idle;
    GHashTable *auth_peers; /* address -> failed logins, under acc_lock */

    /* the UNIX listener: polls the UNIX endpoints' sockets */
    pthread_t unix_thread;
    bool unix_started;
    int unix_wake_fd;             /* eventfd: the listener rebuilds its set */
    uint64_t unix_gen, unix_seen; /* under acc_lock: set changes, and seen */
    int unix_handshakes;

    /* notifications */
    GAsyncQueue *events; /* struct vmh_nc_event_copy * */
    pthread_t notifier;
    bool notifier_started;
    struct vmh_nc_replay *replay;

    /* statistics (ietf-netconf-monitoring) */
    uint32_t in_bad_hellos, in_sessions, dropped_sessions;
    uint64_t in_rpcs, in_bad_rpcs, out_rpc_errors, out_notifications;
};

/* server.c */
void vmh_nc_schedule_locked(struct vmh_nc_server *srv, struct vmh_nc_session *s);
void vmh_nc_users_update(struct vmh_nc_server *srv, const struct lyd_node *config);
struct vmh_nc_msg *vmh_nc_msg_ref(struct vmh_nc_msg *m);
void vmh_nc_msg_unref(struct vmh_nc_msg *m);

/* access.c: what a user may see and do, decided in one place.  The
 * functions returning char * return NULL when allowed, else the reason
 * (g_free). */
bool vmh_acl_may_see(struct vmh_nc_server *srv, const struct vmh_nc_session *s,
                     const char *manager);
char *vmh_acl_rpc(struct vmh_nc_server *srv, const struct vmh_nc_session *s,
                  const struct lyd_node *rpc);
/* Removes from data (siblings) what the session may not read. */
void vmh_acl_prune(struct vmh_nc_server *srv, const struct vmh_nc_session *s,
                   struct lyd_node **tree);
/* Whether the session may turn configuration before into after; *path
 * (free) names the first node it may not change. */
char *vmh_acl_edit(struct vmh_nc_server *srv, const struct vmh_nc_session *s,
                   const struct lyd_node *before, const struct lyd_node *after, char **path);

/* ops.c: the dispatch table.  An operation's handler runs in the worker
 * that owns the session; it returns the reply (NULL: libnetconf2 answers
 * operation-failed). */
typedef struct nc_server_reply *(*vmh_nc_op_fn)(struct vmh_nc_server *srv, struct vmh_nc_session *s,
                                                struct lyd_node *rpc);
int vmh_nc_ops_register(struct vmh_nc_server *srv);
/* Whether op (an RPC's schema node) is answered by the dispatcher, not by
 * libnetconf2 itself (close-session). */
bool vmh_nc_ops_dispatched(const struct lysc_node *op);

/* The handlers, by file. */
/* op_get.c */
struct nc_server_reply *vmh_nc_op_get(struct vmh_nc_server *srv, struct vmh_nc_session *s,
                                      struct lyd_node *rpc);
struct nc_server_reply *vmh_nc_op_get_config(struct vmh_nc_server *srv, struct vmh_nc_session *s,
                                             struct lyd_node *rpc);
/* op_config.c */
struct nc_server_reply *vmh_nc_op_edit_config(struct vmh_nc_server *srv, struct vmh_nc_session *s,
                                              struct lyd_node *rpc);
struct nc_server_reply *vmh_nc_op_copy_config(struct vmh_nc_server *srv, struct vmh_nc_session *s,
                                              struct lyd_node *rpc);
struct nc_server_reply *vmh_nc_op_validate(struct vmh_nc_server *srv, struct vmh_nc_session *s,
                                           struct lyd_node *rpc);
/* The datastore an input's container (source, target) names: 0; -1 when
 * it names none, -2 for one that does not exist here (candidate, url,
 * config). */
int vmh_nc_datastore_of(const struct lyd_node *rpc, const char *which, enum vmh_ds_id *id);
/* op_session.c */
struct nc_server_reply *vmh_nc_op_lock(struct vmh_nc_server *srv, struct vmh_nc_session *s,
                                       struct lyd_node *rpc); /* and unlock */
struct nc_server_reply *vmh_nc_op_kill_session(struct vmh_nc_server *srv, struct vmh_nc_session *s,
                                               struct lyd_node *rpc);
/* op_domain.c: the nfv-vm-health RPCs */
struct nc_server_reply *vmh_nc_op_domain(struct vmh_nc_server *srv, struct vmh_nc_session *s,
                                         struct lyd_node *rpc);
/* monitoring.c: RFC 6022 */
struct nc_server_reply *vmh_nc_op_get_schema(struct vmh_nc_server *srv, struct vmh_nc_session *s,
                                             struct lyd_node *rpc);
/* The netconf-state tree, NULL on failure. */
struct lyd_node *vmh_nc_monitoring_state(struct vmh_nc_server *srv);

/* error.c: every rpc-error; each takes e over (clears it). */
struct nc_server_reply *vmh_nc_error_reply(const struct ly_ctx *ctx, struct vmh_nc_error *e);
struct nc_server_reply *vmh_nc_err(const struct ly_ctx *ctx, enum vmh_nc_tag tag,
                                   enum vmh_nc_etype type, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* access-denied for the reason access.c gave (why and path taken over),
 * logged. */
struct nc_server_reply *vmh_nc_err_denied(const struct ly_ctx *ctx, const struct vmh_nc_session *s,
                                          char *why, char *path);
/* An XPath filter without select (get, create-subscription):
 * missing-attribute naming select and filter. */
struct nc_server_reply *vmh_nc_err_no_select(const struct ly_ctx *ctx, const char *msg);
/* A change the configuration transaction refused (err cleared): the
 * subscriber's reason and node, under the error-tag its kind of refusal
 * calls for. */
struct nc_server_reply *vmh_nc_err_txn(const struct ly_ctx *ctx, struct vmh_txn_error *err);

/* reply.c: data printed in one piece (with the with-defaults mode; with the
 * vm, fault and statistics nodes of lists, see vmh_state_print(), unless
 * NULL), NULL on failure (logged); a reply with that text as its <data>,
 * taking text over, NULL on failure. */
char *vmh_nc_print_data(const struct ly_ctx *ctx, const struct lyd_node *data,
                        const struct vmh_snapshot *lists, NC_WD_MODE wd);
struct nc_server_reply *vmh_nc_reply_text(const struct lyd_node *rpc, char *text);
/* Both: the reply to rpc with data (taken over) as its <data>, or an
 * operation-failed. */
struct nc_server_reply *vmh_nc_reply_data(const struct lyd_node *rpc, struct lyd_node *data,
                                          NC_WD_MODE wd, const struct vmh_snapshot *lists);

/* rpc_parse.c: an <rpc> message parsed as the server needs it (the
 * reasons are at the top of rpc_parse.c): LY_SUCCESS with the envelope
 * and the operation, or an error and both NULL.  The interposed
 * lyd_parse_op() (compat.c) calls it for libnetconf2. */
LY_ERR vmh_nc_rpc_parse(const struct ly_ctx *ctx, const char *text, struct lyd_node **envp,
                        struct lyd_node **op);
/* For the dispatcher: the error reply (invalid-value, or unknown-element)
 * for the first input element of rpc that libyang refused, NULL when
 * there is none. */
struct nc_server_reply *vmh_nc_refused_input_reply(const struct lyd_node *rpc);
/* compat.c: libyang's own lyd_parse_op(), which the program's replaces. */
LY_ERR vmh_nc_ly_parse_op(const struct ly_ctx *ctx, struct lyd_node *parent, struct ly_in *in,
                          LYD_FORMAT format, enum lyd_type data_type, struct lyd_node **tree,
                          struct lyd_node **op);

/* filter.c: RFC 6241 subtree filtering of data (siblings): 0 and a new
 * tree in *out (NULL when nothing matches), or -1. */
int vmh_nc_filter_subtree(const struct lyd_node *data, const struct lyd_node *filter,
                          struct lyd_node **out);
/* XPath filter: the selected nodes with their parents and descendants. */
int vmh_nc_filter_xpath(const struct lyd_node *data, const char *xpath, struct lyd_node **out);
/* Whether a notification passes a subscription's filter. */
bool vmh_nc_filter_notif(const struct lyd_node *notif, const struct lyd_node *subtree,
                         const char *xpath);

/* notif.c */
int vmh_nc_notif_start(struct vmh_nc_server *srv, const char *state_dir);
void vmh_nc_notif_stop(struct vmh_nc_server *srv);
void vmh_nc_notif_event(const struct vmh_event *ev, void *opaque);
/* create-subscription: under srv->lock, queues the replay then marks the
 * session subscribed.  Returns an error reply or NULL. */
struct nc_server_reply *vmh_nc_subscribe(struct vmh_nc_server *srv, struct vmh_nc_session *s,
                                         struct lyd_node *rpc);
void vmh_nc_streams_state(struct vmh_nc_server *srv, struct lyd_node **tree);

#endif
