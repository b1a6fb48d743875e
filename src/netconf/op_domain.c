/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The nfv-vm-health RPCs (migration-ready, migrate-vm, report-fault,
 * clear-fault): input read here, carried out by the engine, whose refusal
 * is answered with the input element it names. */
#include "netconf/netconf_p.h"

#include "config/config.h"

#include <inttypes.h>
#include <libnetconf2/messages_server.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct nc_server_reply *
vmh_rpc_result(const struct ly_ctx *ctx, struct lyd_node *rpc, const struct vmh_rpc_result *res,
               const char *path)
{
    char *p;
    struct nc_server_reply *r;

    switch (res->status) {
    case VMH_RPC_OK:
        return NULL;
    case VMH_RPC_UNKNOWN_VM:
    case VMH_RPC_UNKNOWN_HOST:
    case VMH_RPC_UNKNOWN_FAULT:
    case VMH_RPC_INVALID:
        if (res->status == VMH_RPC_UNKNOWN_HOST && vmh_tree_str(rpc, "target-host"))
            path = "target-host";
        p = g_strdup_printf("/%s:%s/%s", VMH_MOD, rpc->schema->name, path);
        r = vmh_nc_err(ctx, VMH_NC_TAG_INVALID_VALUE, VMH_NC_APPLICATION, p, "%s", res->message);
        g_free(p);
        return r;
    default:
        return vmh_nc_err(ctx, VMH_NC_TAG_OPERATION_FAILED, VMH_NC_APPLICATION, NULL, "%s",
                          res->message);
    }
}

struct nc_server_reply *
vmh_nc_op_domain(struct vmh_nc_server *srv, struct vmh_nc_session *s, struct lyd_node *rpc)
{
    const char *name = rpc->schema->name;
    struct vmh_rpc_result res = {0};
    struct nc_server_reply *r;
    const char *uuid = vmh_tree_str(rpc, "vm-uuid"), *target = vmh_tree_str(rpc, "target-host");
    const char *errpath = "vm-uuid";

    /* Input is parsed, not validated: the mandatory nodes are checked here
     * and the references by the engine, which names what it does not know. */
    if (!strcmp(name, "clear-fault")    ? !vmh_tree_str(rpc, "fault-id")
        : !strcmp(name, "report-fault") ? !uuid && !vmh_tree_str(rpc, "host")
                                        : !uuid) {
        const char *missing = !strcmp(name, "clear-fault")    ? "fault-id"
                              : !strcmp(name, "report-fault") ? "host or vm-uuid"
                                                              : "vm-uuid";
        struct vmh_nc_error e = {
            .tag = VMH_NC_TAG_MISSING_ELEMENT,
            .type = VMH_NC_PROTOCOL,
            .element = g_strdup(!strcmp(name, "report-fault") ? "vm-uuid" : missing),
            .message = g_strdup_printf("%s needs %s", name, missing),
        };

        return vmh_nc_error_reply(srv->ctx, &e);
    }
    if (!strcmp(name, "migration-ready")) {
        vmh_engine_rpc_migration_ready(srv->engine, uuid, target, &res);
    } else if (!strcmp(name, "migrate-vm")) {
        vmh_engine_rpc_migrate_vm(srv->engine, uuid, target, &res);
    } else if (!strcmp(name, "report-fault")) {
        const char *host = vmh_tree_str(rpc, "host"), *cause = vmh_tree_str(rpc, "cause");
        const char *sev = vmh_tree_str(rpc, "severity"), *desc = vmh_tree_str(rpc, "description");
        int c = cause ? vmh_cause_from_str(cause) : VMH_CAUSE_EXTERNAL;
        int sv = sev ? vmh_severity_from_str(sev) : VMH_SEV_MAJOR;

        if (c < 0 || sv < 0)
            return vmh_nc_err(srv->ctx, VMH_NC_TAG_INVALID_VALUE, VMH_NC_APPLICATION, NULL,
                              "unknown %s", c < 0 ? "cause" : "severity");
        errpath = host ? "host" : "vm-uuid";
        vmh_engine_rpc_report_fault(srv->engine, host, uuid, (enum vmh_cause)c,
                                    (enum vmh_severity)sv, desc, &res);
        if (res.status == VMH_RPC_OK) {
            struct lyd_node *out = NULL;
            char id[24];

            snprintf(id, sizeof id, "%" PRIu64, res.fault_id);
            if (lyd_dup_single(rpc, NULL, 0, &out) != LY_SUCCESS ||
                lyd_new_term(out, NULL, "fault-id", id, 1, NULL) != LY_SUCCESS) {
                lyd_free_all(out);
                return vmh_nc_err(srv->ctx, VMH_NC_TAG_OPERATION_FAILED, VMH_NC_APPLICATION, NULL,
                                  "cannot build the reply");
            }
            return nc_server_reply_data(out, NC_WD_EXPLICIT, NC_PARAMTYPE_FREE);
        }
    } else if (!strcmp(name, "clear-fault")) {
        const char *id = vmh_tree_str(rpc, "fault-id");

        errpath = "fault-id";
        vmh_engine_rpc_clear_fault(srv->engine, strtoull(id, NULL, 10), &res);
    }
    r = vmh_rpc_result(srv->ctx, rpc, &res, errpath);
    return r ? r : nc_server_reply_ok();
}
