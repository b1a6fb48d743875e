/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The NETCONF server (RFC 6241, 6242, 5277, 6243, 6022) on libnetconf2:
 * SSH and UNIX-socket endpoints from vmhealth-agent:agent/netconf, the
 * running and startup datastores, the domain RPCs, and the engine's events
 * as notifications.  It runs in threads of its own and never blocks the
 * engine's loop. */
#ifndef VMH_NETCONF_NETCONF_H
#define VMH_NETCONF_NETCONF_H

#include "config/datastore.h"
#include "config/txn.h"
#include "core/engine.h"

#include <libyang/libyang.h>

struct vmh_nc_server;

struct vmh_nc_options {
    struct ly_ctx *ctx; /* with every module loaded (vmh_yang_ctx_new) */
    struct vmh_datastore *ds;
    struct vmh_engine *engine;
    struct vmh_txn *txn;   /* the configuration transaction: the server subscribes */
    const char *state_dir; /* where the notification replay log is kept */
    /* A state contributor: adds state data the server knows nothing of
     * (another front end's) under the nodes of the operational tree a get
     * builds; 0 or negative.  Called from the server's threads; NULL: none. */
    int (*state_add)(void *opaque, struct lyd_node *tree);
    void *state_opaque;
};

/* Reads the endpoints and users from running, binds every listener (a
 * listener that cannot bind is an error, logged) and starts the threads,
 * so that every listener accepts when it returns 0.  Registers the engine
 * observer: call before the loop starts.  *out is NULL when no endpoint is
 * configured. */
int vmh_nc_server_start(const struct vmh_nc_options *opts, struct vmh_nc_server **out);
/* Closes every session and listener and joins the threads; NULL-safe. */
void vmh_nc_server_stop(struct vmh_nc_server *srv);

#endif
