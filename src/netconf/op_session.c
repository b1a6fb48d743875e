/* SPDX-License-Identifier: GPL-3.0-or-later */
/* What a session holds and how one ends another: lock and unlock of the
 * running and startup datastores, and kill-session (which also releases
 * the victim's locks; server.c ends it on its worker). */
#include "netconf/netconf_p.h"

#include "util/log.h"

#include <errno.h>
#include <libnetconf2/messages_server.h>
#include <libnetconf2/session_server.h>
#include <stdlib.h>
#include <string.h>

/* lock-denied naming the holder. */
static struct nc_server_reply *
vmh_err_lock(const struct ly_ctx *ctx, uint32_t holder, enum vmh_ds_id id)
{
    struct vmh_nc_error e = {.tag = VMH_NC_TAG_LOCK_DENIED, .sid = holder};

    e.message =
        g_strdup_printf("the %s datastore is locked by session %u", vmh_ds_name(id), holder);
    return vmh_nc_error_reply(ctx, &e);
}

struct nc_server_reply *
vmh_nc_op_lock(struct vmh_nc_server *srv, struct vmh_nc_session *s, struct lyd_node *rpc)
{
    enum vmh_ds_id id;
    uint32_t holder = 0;
    bool unlock = !strcmp(rpc->schema->name, "unlock");
    int rc;

    if (vmh_nc_datastore_of(rpc, "target", &id) < 0)
        return vmh_nc_err(srv->ctx, VMH_NC_TAG_OPERATION_NOT_SUPPORTED, VMH_NC_PROTOCOL, NULL,
                          "only running and startup can be locked");
    if (!unlock) {
        if (vmh_ds_lock(srv->ds, id, s->id, &holder) < 0)
            return vmh_err_lock(srv->ctx, holder, id);
        return nc_server_reply_ok();
    }
    rc = vmh_ds_unlock(srv->ds, id, s->id, &holder);
    if (rc == -ENOENT)
        return vmh_nc_err(srv->ctx, VMH_NC_TAG_OPERATION_FAILED, VMH_NC_PROTOCOL, NULL,
                          "the %s datastore is not locked", vmh_ds_name(id));
    if (rc == -EPERM)
        return vmh_err_lock(srv->ctx, holder, id);
    return nc_server_reply_ok();
}

struct nc_server_reply *
vmh_nc_op_kill_session(struct vmh_nc_server *srv, struct vmh_nc_session *s, struct lyd_node *rpc)
{
    struct vmh_nc_session *victim;
    const char *v = vmh_tree_str(rpc, "session-id");
    uint32_t sid = v ? (uint32_t)strtoul(v, NULL, 10) : 0;

    if (sid == s->id)
        return vmh_nc_err(srv->ctx, VMH_NC_TAG_INVALID_VALUE, VMH_NC_PROTOCOL,
                          "/ietf-netconf:session-id",
                          "a session cannot kill itself: use close-session");
    pthread_mutex_lock(&srv->lock);
    victim = g_hash_table_lookup(srv->sessions, GUINT_TO_POINTER(sid));
    if (victim && !victim->close_why) {
        /* Ended by its own worker, the one thread that does its I/O. */
        victim->close_why = "killed";
        victim->killed_by = s->id;
        vmh_nc_schedule_locked(srv, victim);
    }
    pthread_mutex_unlock(&srv->lock);
    if (!victim)
        return vmh_nc_err(srv->ctx, VMH_NC_TAG_INVALID_VALUE, VMH_NC_PROTOCOL,
                          "/ietf-netconf:session-id", "no session %u", sid);
    vmh_ds_unlock_session(srv->ds, sid);
    log_info("netconf", "session %u ('%s') killed session %u", s->id, s->user, sid);
    return nc_server_reply_ok();
}
