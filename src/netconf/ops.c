/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The NETCONF operations libnetconf2 leaves to the server: which handler
 * answers which RPC, and the checks every one passes first.
 *
 * The files of src/netconf:
 *   server.c      transports, sessions, users, threads (the top of it)
 *   rpc_parse.c   an <rpc> message parsed as the server needs it
 *   compat.c      the lyd_parse_op() through which libnetconf2 reaches it
 *   ops.c         this table and dispatcher
 *   op_get.c      get, get-config
 *   op_config.c   edit-config, copy-config, validate
 *   op_session.c  lock, unlock, kill-session
 *   op_domain.c   the nfv-vm-health RPCs
 *   monitoring.c  RFC 6022: netconf-state, get-schema
 *   notif.c       RFC 5277: create-subscription, replay, streams
 *   edit.c        the RFC 6241 edit engine, pure over libyang trees
 *   access.c      what a user may see and do
 *   filter.c      subtree and XPath filters
 *   reply.c       data replies printed in one piece
 *   error.c       every rpc-error
 * Handlers run in the worker that owns the session and find the server
 * through it (nc_session_get_data()); nothing here is per process. */
#include "netconf/netconf_p.h"

#include "util/log.h"

#include <libnetconf2/session_server.h>
#include <string.h>

static const struct {
    const char *module, *name;
    vmh_nc_op_fn op;
} vmh_ops[] = {
    {"ietf-netconf", "get", vmh_nc_op_get},
    {"ietf-netconf", "get-config", vmh_nc_op_get_config},
    {"ietf-netconf", "edit-config", vmh_nc_op_edit_config},
    {"ietf-netconf", "copy-config", vmh_nc_op_copy_config},
    {"ietf-netconf", "validate", vmh_nc_op_validate},
    {"ietf-netconf", "lock", vmh_nc_op_lock},
    {"ietf-netconf", "unlock", vmh_nc_op_lock},
    {"ietf-netconf", "kill-session", vmh_nc_op_kill_session},
    {"ietf-netconf-monitoring", "get-schema", vmh_nc_op_get_schema},
    {"notifications", "create-subscription", vmh_nc_subscribe},
    {"nfv-vm-health", "migration-ready", vmh_nc_op_domain},
    {"nfv-vm-health", "migrate-vm", vmh_nc_op_domain},
    {"nfv-vm-health", "report-fault", vmh_nc_op_domain},
    {"nfv-vm-health", "clear-fault", vmh_nc_op_domain},
};

/* libnetconf2's callback of every operation above: access control first,
 * then input the schema refused (rpc_parse.c), then the operation. */
static struct nc_server_reply *
vmh_op_dispatch(struct lyd_node *rpc, struct nc_session *nc)
{
    struct vmh_nc_session *s = nc_session_get_data(nc); /* set by server.c before any RPC */
    const struct lysc_node *op = rpc->schema;
    struct nc_server_reply *r;
    char *why;

    if ((why = vmh_acl_rpc(s->srv, s, rpc)))
        return vmh_nc_err_denied(s->srv->ctx, s, why, NULL);
    if ((r = vmh_nc_refused_input_reply(rpc)))
        return r;
    for (size_t i = 0; i < G_N_ELEMENTS(vmh_ops); i++)
        if (!strcmp(vmh_ops[i].name, op->name) && !strcmp(vmh_ops[i].module, op->module->name))
            return vmh_ops[i].op(s->srv, s, rpc);
    return vmh_nc_err(s->srv->ctx, VMH_NC_TAG_OPERATION_NOT_SUPPORTED, VMH_NC_PROTOCOL, NULL,
                      "%s is not supported", op->name);
}

bool
vmh_nc_ops_dispatched(const struct lysc_node *op)
{
    return op && op->priv == (void *)vmh_op_dispatch;
}

int
vmh_nc_ops_register(struct vmh_nc_server *srv)
{
    for (size_t i = 0; i < G_N_ELEMENTS(vmh_ops); i++) {
        char *path = g_strdup_printf("/%s:%s", vmh_ops[i].module, vmh_ops[i].name);
        const struct lysc_node *n = lys_find_path(srv->ctx, NULL, path, 0);

        if (!n) {
            log_err("netconf", "schema node %s is missing", path);
            g_free(path);
            return -1;
        }
        g_free(path);
        ((struct lysc_node *)n)->priv = (void *)vmh_op_dispatch; /* nc_set_rpc_callback() */
    }
    return 0;
}
