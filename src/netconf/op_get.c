/* SPDX-License-Identifier: GPL-3.0-or-later */
/* get and get-config: the data a session may read, filtered (filter.c) and
 * printed with the with-defaults mode it asked for (reply.c).  A get builds
 * only the parts its filter can select; with vm-health asked for whole by
 * an admin, the VM, fault and statistics lists are printed straight from
 * the engine's snapshot rather than built as a tree. */
#include "netconf/netconf_p.h"

#include "config/config.h"

#include <libnetconf2/messages_server.h>
#include <stdlib.h>
#include <string.h>

static NC_WD_MODE
vmh_wd(const struct lyd_node *rpc)
{
    const char *v = vmh_tree_str(rpc, "with-defaults");

    if (!v)
        return NC_WD_EXPLICIT;
    if (!strcmp(v, "report-all"))
        return NC_WD_ALL;
    if (!strcmp(v, "report-all-tagged"))
        return NC_WD_ALL_TAG;
    if (!strcmp(v, "trim"))
        return NC_WD_TRIM;
    return NC_WD_EXPLICIT;
}

/* Filters data (taken over) as the rpc's <filter> says. */
static struct nc_server_reply *
vmh_apply_filter(const struct lyd_node *rpc, struct lyd_node **data)
{
    struct lyd_node *f = NULL, *out = NULL;
    struct lyd_meta *type, *select;
    int rc;

    if (!(f = vmh_tree_child(rpc, "filter")))
        return NULL;
    type = lyd_find_meta(f->meta, NULL, "ietf-netconf:type");
    if (type && !strcmp(lyd_get_meta_value(type), "xpath")) {
        select = lyd_find_meta(f->meta, NULL, "ietf-netconf:select");
        if (!select)
            return vmh_nc_err_no_select(LYD_CTX(rpc), "an XPath filter needs the select attribute");
        rc = vmh_nc_filter_xpath(*data, lyd_get_meta_value(select), &out);
        if (rc < 0)
            return vmh_nc_err(LYD_CTX(rpc), VMH_NC_TAG_INVALID_VALUE, VMH_NC_PROTOCOL, NULL,
                              "invalid XPath filter: %s", ly_errmsg(LYD_CTX(rpc)));
    } else {
        struct lyd_node_any *any = (struct lyd_node_any *)f;
        struct lyd_node *ftree = NULL;

        if (any->value_type == LYD_ANYDATA_DATATREE)
            ftree = any->value.tree;
        else if (any->value.str && any->value.str[0])
            return vmh_nc_err(LYD_CTX(rpc), VMH_NC_TAG_INVALID_VALUE, VMH_NC_PROTOCOL, NULL,
                              "the subtree filter could not be read");
        rc = vmh_nc_filter_subtree(*data, ftree, &out);
        if (rc < 0)
            return vmh_nc_err(LYD_CTX(rpc), VMH_NC_TAG_OPERATION_FAILED, VMH_NC_APPLICATION, NULL,
                              "filtering failed");
    }
    lyd_free_siblings(*data);
    *data = out;
    return NULL;
}

/* --- get, get-config --- */

/* What a get has to build: a filter naming only some subtrees spares the
 * rest (a single leaf of 10 000 VMs need not build the VM list). */
struct vmh_get_needs {
    bool vmh, mon, streams, hosts, vms, faults, yanglib;
};

/* Whether an XPath mentions a node name as a location step. */
static bool
vmh_xpath_step(const char *x, const char *name)
{
    size_t len = strlen(name);

    if (strstr(x, "//") || strstr(x, "*"))
        return true;
    for (const char *p = strstr(x, name); p; p = strstr(p + 1, name)) {
        char before = p == x ? '/' : p[-1], after = p[len];

        if ((before == '/' || before == ':') && (after == '/' || after == '[' || after == ' ' ||
                                                 after == '|' || after == ')' || !after))
            return true;
    }
    return false;
}

/* Whether an XPath may select the node name itself, with everything under
 * it: a step of that name that no step below it follows. */
static bool
vmh_xpath_whole(const char *x, const char *name)
{
    size_t len = strlen(name);

    for (const char *p = strstr(x, name); p; p = strstr(p + 1, name)) {
        char before = p == x ? '/' : p[-1], after = p[len];

        if ((before == '/' || before == ':') && after != '/' && !g_ascii_isalnum(after) &&
            after != '-' && after != '_' && after != '.')
            return true;
    }
    return false;
}

static void
vmh_get_needs_of(const struct lyd_node *rpc, struct vmh_get_needs *need)
{
    const struct lyd_node *f = vmh_tree_child(rpc, "filter"), *t, *c;
    struct lyd_meta *type;
    const char *x;
    bool all;

    *need = (struct vmh_get_needs){true, true, true, true, true, true, true};
    if (!f)
        return;
    type = lyd_find_meta(f->meta, NULL, "ietf-netconf:type");
    if (type && !strcmp(lyd_get_meta_value(type), "xpath")) {
        struct lyd_meta *sel = lyd_find_meta(f->meta, NULL, "ietf-netconf:select");

        x = sel ? lyd_get_meta_value(sel) : "";
        all = vmh_xpath_whole(x, "vm-health");
        need->hosts = all || vmh_xpath_step(x, "host");
        need->vms = all || vmh_xpath_step(x, "vm");
        need->faults = all || vmh_xpath_step(x, "fault");
        /* a conservative look at the names the expression mentions */
        need->mon = strstr(x, "netconf-state") || strstr(x, "*");
        need->streams = strstr(x, "streams") || strstr(x, "nc-notifications") || strstr(x, "*");
        need->yanglib = strstr(x, "yang-library") || strstr(x, "modules-state") || strstr(x, "*");
        return;
    }
    if (((const struct lyd_node_any *)f)->value_type != LYD_ANYDATA_DATATREE)
        return;
    *need = (struct vmh_get_needs){0};
    LY_LIST_FOR(((const struct lyd_node_any *)f)->value.tree, t)
    {
        const char *name = LYD_NAME(t);

        if (!strcmp(name, "vm-health")) {
            need->vmh = true;
            if (!lyd_child(t))
                need->hosts = need->vms = need->faults = true;
            LY_LIST_FOR(lyd_child(t), c)
            {
                need->hosts |= !strcmp(LYD_NAME(c), "host");
                need->vms |= !strcmp(LYD_NAME(c), "vm");
                need->faults |= !strcmp(LYD_NAME(c), "fault");
            }
        } else if (!strcmp(name, "netconf-state")) {
            need->mon = true;
        } else if (!strcmp(name, "netconf")) {
            need->streams = true;
        } else if (!strcmp(name, "yang-library") || !strcmp(name, "modules-state")) {
            need->yanglib = true;
        } else {
            need->vmh = true; /* the agent's settings come with the config */
        }
    }
}

/* Whether the get has no filter, or a subtree filter whose vm-health nodes
 * are all bare selection nodes: the filtered tree then holds vm-health
 * whole, and filtering it without its lists leaves the rest of it as is. */
static bool
vmh_filter_takes_vm_health_whole(const struct lyd_node *rpc)
{
    const struct lyd_node *f = vmh_tree_child(rpc, "filter"), *t;
    const struct lyd_node_any *any = (const struct lyd_node_any *)f;
    struct lyd_meta *type;
    bool found = false;

    if (!f)
        return true;
    type = lyd_find_meta(f->meta, NULL, "ietf-netconf:type");
    if ((type && strcmp(lyd_get_meta_value(type), "subtree")) ||
        any->value_type != LYD_ANYDATA_DATATREE)
        return false;
    LY_LIST_FOR(any->value.tree, t)
    {
        const struct lyd_node_opaq *o = (const struct lyd_node_opaq *)t;
        const char *ns = t->schema ? t->schema->module->ns : o->name.module_ns;

        if (strcmp(LYD_NAME(t), "vm-health"))
            continue;
        /* no namespace (xmlns=""): a wildcard, so not the fast path */
        if (!ns || strcmp(ns, VMH_NS) || lyd_child(t) || t->meta ||
            (!t->schema && (o->attr || (o->value && o->value[0]))))
            return false;
        found = true;
    }
    return found;
}

struct nc_server_reply *
vmh_nc_op_get(struct vmh_nc_server *srv, struct vmh_nc_session *s, struct lyd_node *rpc)
{
    struct vmh_snapshot *snap = NULL, part;
    const struct lyd_node *running;
    struct lyd_node *data = NULL, *mon;
    struct nc_server_reply *err, *r;
    struct vmh_get_needs need;
    bool printed;
    int rc = 0;

    vmh_get_needs_of(rpc, &need);
    /* vm-health asked for whole and seen whole (nothing to prune): the
     * VMs, faults and statistics are printed straight from the snapshot,
     * not built. */
    printed = need.vmh && vmh_filter_takes_vm_health_whole(rpc) && s->admin;
    if (need.vmh) {
        snap = vmh_engine_snapshot(srv->engine);
        part = *snap;
        part.n_hosts = need.hosts ? part.n_hosts : 0;
        part.n_vms = need.vms ? part.n_vms : 0;
        part.n_faults = need.faults ? part.n_faults : 0;
        running = vmh_ds_read_begin(srv->ds, VMH_DS_RUNNING);
        rc = vmh_state_build_parts(
            running, &part, printed ? VMH_STATE_ALL & ~VMH_STATE_PRINTED : VMH_STATE_ALL, &data);
        vmh_ds_read_end(srv->ds);
        if (rc == 0 && srv->state_add && srv->state_add(srv->state_opaque, data) < 0) {
            lyd_free_siblings(data);
            rc = -1;
        }
    }
    if (rc < 0) {
        vmh_snapshot_unref(snap);
        return vmh_nc_err(LYD_CTX(rpc), VMH_NC_TAG_OPERATION_FAILED, VMH_NC_APPLICATION, NULL,
                          "cannot build the state data");
    }
    if (need.mon) {
        mon = vmh_nc_monitoring_state(srv);
        if (mon)
            lyd_insert_sibling(data, mon, &data);
    }
    if (need.streams)
        vmh_nc_streams_state(srv, &data);
    if (need.yanglib) {
        struct lyd_node *lib = NULL;

        /* the content-id libnetconf2 advertises in the yang-library capability */
        if (ly_ctx_get_yanglib_data(srv->ctx, &lib, "%u", ly_ctx_get_change_count(srv->ctx)) ==
            LY_SUCCESS)
            lyd_insert_sibling(data, lib, &data);
    }
    vmh_acl_prune(srv, s, &data);
    if ((err = vmh_apply_filter(rpc, &data))) {
        lyd_free_siblings(data);
        vmh_snapshot_unref(snap);
        return err;
    }
    r = vmh_nc_reply_data(rpc, data, vmh_wd(rpc), printed ? snap : NULL);
    vmh_snapshot_unref(snap);
    return r;
}

struct nc_server_reply *
vmh_nc_op_get_config(struct vmh_nc_server *srv, struct vmh_nc_session *s, struct lyd_node *rpc)
{
    struct lyd_node *data = NULL;
    struct nc_server_reply *err;
    enum vmh_ds_id id;
    const struct lyd_node *t;

    if (vmh_nc_datastore_of(rpc, "source", &id) < 0)
        return vmh_nc_err(LYD_CTX(rpc), VMH_NC_TAG_OPERATION_NOT_SUPPORTED, VMH_NC_PROTOCOL, NULL,
                          "only the running and startup datastores exist");
    t = vmh_ds_read_begin(srv->ds, id);
    if (t && lyd_dup_siblings(t, NULL, LYD_DUP_RECURSIVE | LYD_DUP_WITH_FLAGS, &data)) {
        vmh_ds_read_end(srv->ds);
        return vmh_nc_err(LYD_CTX(rpc), VMH_NC_TAG_OPERATION_FAILED, VMH_NC_APPLICATION, NULL,
                          "out of memory");
    }
    vmh_ds_read_end(srv->ds);
    vmh_acl_prune(srv, s, &data);
    if ((err = vmh_apply_filter(rpc, &data))) {
        lyd_free_siblings(data);
        return err;
    }
    return vmh_nc_reply_data(rpc, data, vmh_wd(rpc), NULL);
}
