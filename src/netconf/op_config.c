/* SPDX-License-Identifier: GPL-3.0-or-later */
/* edit-config, copy-config and validate: the glue between a session, the
 * datastores and the edit engine (edit.c).  A write holds the datastore's
 * write transaction, respects the other sessions' locks, lets access
 * control judge the change before validation can say anything of the rest
 * of the configuration, and commits running through the configuration
 * transaction, so that on any refusal running and every subsystem stay as
 * they were. */
#include "netconf/edit.h"
#include "netconf/netconf_p.h"

#include "util/log.h"

#include <inttypes.h>
#include <libnetconf2/messages_server.h>
#include <stdlib.h>
#include <string.h>

int
vmh_nc_datastore_of(const struct lyd_node *rpc, const char *which, enum vmh_ds_id *id)
{
    struct lyd_node *n = vmh_tree_child(rpc, which), *c;

    if (!n)
        return -1;
    c = lyd_child(n);
    if (!c || !c->schema)
        return -1;
    if (!strcmp(c->schema->name, "running"))
        *id = VMH_DS_RUNNING;
    else if (!strcmp(c->schema->name, "startup"))
        *id = VMH_DS_STARTUP;
    else
        return -2; /* candidate, url, config */
    return 0;
}

/* Under the write transaction: in-use when another session holds the lock. */
static struct nc_server_reply *
vmh_check_lock(struct vmh_nc_server *srv, enum vmh_ds_id id, uint32_t sid)
{
    uint32_t holder = vmh_ds_lock_holder(srv->ds, id, NULL);
    struct vmh_nc_error e = {.tag = VMH_NC_TAG_IN_USE, .type = VMH_NC_PROTOCOL, .sid = holder};

    if (!holder || holder == sid)
        return NULL;
    e.message =
        g_strdup_printf("the %s datastore is locked by session %" PRIu32, vmh_ds_name(id), holder);
    return vmh_nc_error_reply(srv->ctx, &e);
}

/* Commits a validated tree (taken over) to running through the
 * configuration transaction; the caller holds the datastore's write
 * transaction. */
static struct nc_server_reply *
vmh_commit_running(struct vmh_nc_server *srv, struct lyd_node *tree, bool test_only)
{
    struct vmh_txn_error terr;
    char *err = NULL;
    int rc;

    rc = vmh_txn_commit(srv->txn, vmh_ds_read_begin(srv->ds, VMH_DS_RUNNING), tree,
                        test_only ? VMH_TXN_TEST_ONLY : 0, &terr);
    vmh_ds_read_end(srv->ds);
    if (rc < 0) {
        lyd_free_siblings(tree);
        return vmh_nc_err_txn(srv->ctx, &terr);
    }
    if (test_only) {
        lyd_free_siblings(tree);
        return NULL;
    }
    vmh_ds_replace(srv->ds, VMH_DS_RUNNING, tree, &err);
    free(err);
    return NULL;
}

/* The payload of a <config> (anydata): *tree is its first node (NULL:
 * empty); -1 when it is text libyang could not read as data. */
static int
vmh_config_payload(const struct lyd_node *config, const struct lyd_node **tree)
{
    const struct lyd_node_any *any = (const struct lyd_node_any *)config;

    *tree = NULL;
    if (any->value_type == LYD_ANYDATA_DATATREE)
        *tree = any->value.tree;
    else if (any->value.str && any->value.str[0])
        return -1;
    return 0;
}

/* An inline <config> checked and copied; NULL on success (*tree: the copy,
 * NULL when empty), else the error reply. */
static struct nc_server_reply *
vmh_inline_config(struct vmh_nc_server *srv, const struct lyd_node *config, struct lyd_node **tree)
{
    const struct lyd_node_any *any = (const struct lyd_node_any *)config;
    struct vmh_nc_error e = {0};

    *tree = NULL;
    if (any->value_type != LYD_ANYDATA_DATATREE || !any->value.tree)
        return NULL;
    if (vmh_edit_check(srv->ctx, any->value.tree, &e) < 0)
        return vmh_nc_error_reply(srv->ctx, &e);
    lyd_dup_siblings(any->value.tree, NULL, LYD_DUP_RECURSIVE | LYD_DUP_NO_META, tree);
    return NULL;
}

/* --- edit-config --- */

struct vmh_edit_judge {
    struct vmh_nc_server *srv;
    struct vmh_nc_session *s;
};

/* The edit engine's judge: access control (access.c). */
static int
vmh_edit_judge(void *opaque, const struct lyd_node *before, const struct lyd_node *after,
               struct vmh_nc_error *e)
{
    struct vmh_edit_judge *j = opaque;
    char *path = NULL;
    char *why = vmh_acl_edit(j->srv, j->s, before, after, &path);

    if (!why)
        return 0;
    log_info("netconf", "session %u ('%s'): access denied: %s", j->s->id, j->s->user, why);
    vmh_nc_error_set(e, VMH_NC_TAG_ACCESS_DENIED, VMH_NC_APPLICATION, path, "%s", why);
    g_free(why);
    free(path);
    return -1;
}

struct nc_server_reply *
vmh_nc_op_edit_config(struct vmh_nc_server *srv, struct vmh_nc_session *s, struct lyd_node *rpc)
{
    struct vmh_edit_judge judge = {srv, s};
    struct vmh_edit_options opts;
    struct vmh_nc_error e = {0};
    const struct lyd_node *cfgnode, *edit, *run;
    struct lyd_node *tree = NULL;
    struct nc_server_reply *r = NULL;
    enum vmh_ds_id id;
    int rc;

    if (vmh_nc_datastore_of(rpc, "target", &id) < 0 || id != VMH_DS_RUNNING)
        return vmh_nc_err(srv->ctx, VMH_NC_TAG_OPERATION_NOT_SUPPORTED, VMH_NC_PROTOCOL, NULL,
                          "edit-config changes the running datastore only; "
                          "use copy-config to write startup");
    if (vmh_edit_options_parse(vmh_tree_str(rpc, "default-operation"),
                               vmh_tree_str(rpc, "test-option"), vmh_tree_str(rpc, "error-option"),
                               &opts, &e) < 0)
        return vmh_nc_error_reply(srv->ctx, &e);
    opts.judge = vmh_edit_judge;
    opts.judge_opaque = &judge;
    if (!(cfgnode = vmh_tree_child(rpc, "config")))
        return vmh_nc_err(srv->ctx, VMH_NC_TAG_OPERATION_NOT_SUPPORTED, VMH_NC_PROTOCOL, NULL,
                          "only an inline <config> is supported (no :url)");
    if (vmh_config_payload(cfgnode, &edit) < 0)
        return vmh_nc_err(srv->ctx, VMH_NC_TAG_MALFORMED_MESSAGE, VMH_NC_RPC, NULL,
                          "unreadable <config>");
    if (vmh_edit_check(srv->ctx, edit, &e) < 0)
        return vmh_nc_error_reply(srv->ctx, &e);

    vmh_ds_write_begin(srv->ds);
    if ((r = vmh_check_lock(srv, id, s->id)))
        goto out;
    /* The edit goes to a copy: on any error running stays as it was. */
    run = vmh_ds_read_begin(srv->ds, VMH_DS_RUNNING);
    rc = vmh_edit_config(srv->ctx, run, edit, &opts, &tree, &e);
    vmh_ds_read_end(srv->ds);
    if (rc < 0) {
        r = vmh_nc_error_reply(srv->ctx, &e);
        goto out;
    }
    r = vmh_commit_running(srv, tree, opts.test == VMH_EDIT_TEST_ONLY);
    if (!r && opts.test != VMH_EDIT_TEST_ONLY)
        log_info("netconf", "session %u ('%s') changed the running configuration", s->id, s->user);
out:
    vmh_ds_write_end(srv->ds);
    return r ? r : nc_server_reply_ok();
}

/* --- copy-config --- */

struct nc_server_reply *
vmh_nc_op_copy_config(struct vmh_nc_server *srv, struct vmh_nc_session *s, struct lyd_node *rpc)
{
    struct lyd_node *tree = NULL, *src = NULL;
    struct nc_server_reply *r = NULL;
    struct vmh_nc_error e = {0};
    enum vmh_ds_id target, source = VMH_DS_COUNT;
    int rc;

    if (vmh_nc_datastore_of(rpc, "target", &target) < 0)
        return vmh_nc_err(srv->ctx, VMH_NC_TAG_OPERATION_NOT_SUPPORTED, VMH_NC_PROTOCOL, NULL,
                          "the target must be running or startup");
    rc = vmh_nc_datastore_of(rpc, "source", &source);
    if (rc == -2 && (src = vmh_tree_child(vmh_tree_child(rpc, "source"), "config"))) {
        if ((r = vmh_inline_config(srv, src, &tree)))
            return r;
        source = VMH_DS_COUNT;
    } else if (rc < 0) {
        return vmh_nc_err(srv->ctx, VMH_NC_TAG_OPERATION_NOT_SUPPORTED, VMH_NC_PROTOCOL, NULL,
                          "the source must be running, startup or an inline config");
    } else if (source == target) {
        return vmh_nc_err(srv->ctx, VMH_NC_TAG_INVALID_VALUE, VMH_NC_PROTOCOL, NULL,
                          "source and target are the same datastore");
    }

    vmh_ds_write_begin(srv->ds);
    if ((r = vmh_check_lock(srv, target, s->id))) {
        lyd_free_siblings(tree);
        goto out;
    }
    if (source != VMH_DS_COUNT) {
        const struct lyd_node *t = vmh_ds_read_begin(srv->ds, source);

        if (t)
            lyd_dup_siblings(t, NULL, LYD_DUP_RECURSIVE | LYD_DUP_WITH_FLAGS, &tree);
        vmh_ds_read_end(srv->ds);
    }
    if (vmh_edit_validate(srv->ctx, &tree, &e) < 0) {
        lyd_free_siblings(tree);
        r = vmh_nc_error_reply(srv->ctx, &e);
    } else if (target == VMH_DS_RUNNING) {
        r = vmh_commit_running(srv, tree, false);
    } else {
        char *err = NULL;

        if (vmh_ds_replace(srv->ds, VMH_DS_STARTUP, tree, &err) < 0) {
            r = vmh_nc_err(srv->ctx, VMH_NC_TAG_OPERATION_FAILED, VMH_NC_APPLICATION, NULL, "%s",
                           err);
            free(err);
        }
    }
    if (!r)
        log_info("netconf", "session %u ('%s') copied %s to %s", s->id, s->user,
                 source == VMH_DS_COUNT ? "a configuration" : vmh_ds_name(source),
                 vmh_ds_name(target));
out:
    vmh_ds_write_end(srv->ds);
    return r ? r : nc_server_reply_ok();
}

/* --- validate (:validate:1.1) --- */

struct nc_server_reply *
vmh_nc_op_validate(struct vmh_nc_server *srv, struct vmh_nc_session *s, struct lyd_node *rpc)
{
    struct lyd_node *src = vmh_tree_child(vmh_tree_child(rpc, "source"), "config"), *tree = NULL;
    struct nc_server_reply *r;
    struct vmh_nc_error e = {0};

    if (!src)
        return nc_server_reply_ok(); /* running and startup are valid by construction */
    if ((r = vmh_inline_config(srv, src, &tree)))
        return r;
    if (vmh_edit_validate(srv->ctx, &tree, &e) < 0)
        r = vmh_nc_error_reply(srv->ctx, &e);
    lyd_free_siblings(tree);
    return r ? r : nc_server_reply_ok();
}
