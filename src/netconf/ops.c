/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The NETCONF operations libnetconf2 leaves to the server: get, get-config,
 * edit-config, copy-config, lock, unlock, kill-session, get-schema,
 * create-subscription and the nfv-vm-health RPCs.  They run in the worker
 * that owns the session. */
#include "netconf/netconf_p.h"

#include "config/config.h"
#include "util/log.h"
#include "util/time.h"

#include <errno.h>
#include <inttypes.h>
#include <libnetconf2/messages_server.h>
#include <libnetconf2/session_server.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NC_NS "urn:ietf:params:xml:ns:netconf:base:1.0"

static struct vmh_nc_server *vmh_ops_srv;

/* --- errors --- */

static struct nc_server_reply *vmh_err(NC_ERR tag, NC_ERR_TYPE type, const char *path,
                                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static struct nc_server_reply *
vmh_err(NC_ERR tag, NC_ERR_TYPE type, const char *path, const char *fmt, ...)
{
    struct lyd_node *e;
    char *msg;
    va_list ap;

    switch (tag) {
    case NC_ERR_LOCK_DENIED:
        e = nc_err(vmh_ops_srv->ctx, tag, (uint32_t)0);
        break;
    case NC_ERR_MALFORMED_MSG:
        e = nc_err(vmh_ops_srv->ctx, tag);
        break;
    case NC_ERR_MISSING_ELEM:
    case NC_ERR_BAD_ELEM:
    case NC_ERR_UNKNOWN_ELEM:
        e = nc_err(vmh_ops_srv->ctx, tag, type, path ? path : "");
        break;
    case NC_ERR_DATA_EXISTS:
    case NC_ERR_DATA_MISSING:
        e = nc_err(vmh_ops_srv->ctx, tag);
        break;
    default:
        e = nc_err(vmh_ops_srv->ctx, tag, type);
        break;
    }
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (path)
        nc_err_set_path(e, path);
    nc_err_set_msg(e, msg, "en");
    g_free(msg);
    return nc_server_reply_err(e);
}

static struct nc_server_reply *
vmh_err_lock(uint32_t holder, const char *ds)
{
    struct lyd_node *e = nc_err(vmh_ops_srv->ctx, NC_ERR_LOCK_DENIED, holder);
    char *msg = g_strdup_printf("the %s datastore is locked by session %u", ds, holder);

    nc_err_set_msg(e, msg, "en");
    g_free(msg);
    return nc_server_reply_err(e);
}

static struct nc_server_reply *
vmh_err_in_use(enum vmh_ds_id id, uint32_t holder)
{
    struct lyd_node *e = nc_err(vmh_ops_srv->ctx, NC_ERR_IN_USE, NC_ERR_TYPE_PROT);
    char *msg =
        g_strdup_printf("the %s datastore is locked by session %" PRIu32, vmh_ds_name(id), holder);

    nc_err_set_sid(e, holder);
    nc_err_set_msg(e, msg, "en");
    g_free(msg);
    return nc_server_reply_err(e);
}

static struct vmh_nc_session *
vmh_sess(struct nc_session *nc)
{
    return nc_session_get_data(nc);
}

/* An access-denied reply for the reason access.c gave (both taken over). */
static struct nc_server_reply *
vmh_denied(const struct vmh_nc_session *s, char *why, char *path)
{
    struct nc_server_reply *r = vmh_err(NC_ERR_ACCESS_DENIED, NC_ERR_TYPE_APP, path, "%s", why);

    log_info("netconf", "session %u ('%s'): access denied: %s", s->id, s->user, why);
    g_free(why);
    free(path);
    return r;
}

/* --- helpers --- */

/* A child's value by name (no prefix: any module); NULL when absent.  Not
 * lyd_find_path, which logs a warning for every absent node. */
static const char *
vmh_input(const struct lyd_node *rpc, const char *name)
{
    const struct lyd_node *n;
    const char *colon = strchr(name, ':');

    if (colon)
        name = colon + 1;
    LY_LIST_FOR(lyd_child(rpc), n)
    {
        if (n->schema && !strcmp(n->schema->name, name))
            return (n->schema->nodetype & LYD_NODE_TERM) ? lyd_get_value(n) : "";
    }
    return NULL;
}

static struct lyd_node *
vmh_child(const struct lyd_node *parent, const char *name)
{
    struct lyd_node *n;

    LY_LIST_FOR(lyd_child(parent), n)
    {
        if (n->schema && !strcmp(n->schema->name, name))
            return n;
    }
    return NULL;
}

static int
vmh_datastore_of(const struct lyd_node *rpc, const char *which, enum vmh_ds_id *id)
{
    struct lyd_node *n = vmh_child(rpc, which), *c;

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

static NC_WD_MODE
vmh_wd(const struct lyd_node *rpc)
{
    const char *v = vmh_input(rpc, "ietf-netconf-with-defaults:with-defaults");

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

/* Takes data over.  lists: the snapshot whose vm, fault and statistics
 * nodes data was built without, to print them from (NULL: none). */
static struct nc_server_reply *
vmh_reply_data(const struct lyd_node *rpc, struct lyd_node *data, NC_WD_MODE wd,
               const struct vmh_snapshot *lists)
{
    char *text = vmh_nc_print_data(vmh_ops_srv->ctx, data, lists, wd);
    struct nc_server_reply *r;

    lyd_free_siblings(data);
    r = text ? vmh_nc_reply_text(rpc, text) : NULL;
    return r ? r : vmh_err(NC_ERR_OP_FAILED, NC_ERR_TYPE_APP, NULL, "cannot build the reply");
}

/* Filters data (taken over) as the rpc's <filter> says. */
static struct nc_server_reply *
vmh_apply_filter(const struct lyd_node *rpc, struct lyd_node **data)
{
    struct lyd_node *f = NULL, *out = NULL;
    struct lyd_meta *type, *select;
    int rc;

    if (!(f = vmh_child(rpc, "filter")))
        return NULL;
    type = lyd_find_meta(f->meta, NULL, "ietf-netconf:type");
    if (type && !strcmp(lyd_get_meta_value(type), "xpath")) {
        select = lyd_find_meta(f->meta, NULL, "ietf-netconf:select");
        if (!select)
            return vmh_nc_filter_no_select(vmh_ops_srv->ctx,
                                           "an XPath filter needs the select attribute");
        rc = vmh_nc_filter_xpath(*data, lyd_get_meta_value(select), &out);
        if (rc < 0)
            return vmh_err(NC_ERR_INVALID_VALUE, NC_ERR_TYPE_PROT, NULL, "invalid XPath filter: %s",
                           ly_errmsg(vmh_ops_srv->ctx));
    } else {
        struct lyd_node_any *any = (struct lyd_node_any *)f;
        struct lyd_node *ftree = NULL;

        if (any->value_type == LYD_ANYDATA_DATATREE)
            ftree = any->value.tree;
        else if (any->value.str && any->value.str[0])
            return vmh_err(NC_ERR_INVALID_VALUE, NC_ERR_TYPE_PROT, NULL,
                           "the subtree filter could not be read");
        rc = vmh_nc_filter_subtree(*data, ftree, &out);
        if (rc < 0)
            return vmh_err(NC_ERR_OP_FAILED, NC_ERR_TYPE_APP, NULL, "filtering failed");
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
    const struct lyd_node *f = vmh_child(rpc, "filter"), *t, *c;
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
    const struct lyd_node *f = vmh_child(rpc, "filter"), *t;
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

static struct nc_server_reply *
vmh_op_get(struct lyd_node *rpc, struct nc_session *nc)
{
    struct vmh_nc_server *srv = vmh_ops_srv;
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
    printed = need.vmh && vmh_filter_takes_vm_health_whole(rpc) && vmh_sess(nc)->admin;
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
        return vmh_err(NC_ERR_OP_FAILED, NC_ERR_TYPE_APP, NULL, "cannot build the state data");
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
    vmh_acl_prune(srv, vmh_sess(nc), &data);
    if ((err = vmh_apply_filter(rpc, &data))) {
        lyd_free_siblings(data);
        vmh_snapshot_unref(snap);
        return err;
    }
    r = vmh_reply_data(rpc, data, vmh_wd(rpc), printed ? snap : NULL);
    vmh_snapshot_unref(snap);
    return r;
}

static struct nc_server_reply *
vmh_op_get_config(struct lyd_node *rpc, struct nc_session *nc)
{
    struct vmh_nc_server *srv = vmh_ops_srv;
    struct lyd_node *data = NULL;
    struct nc_server_reply *err;
    enum vmh_ds_id id;
    const struct lyd_node *t;

    if (vmh_datastore_of(rpc, "source", &id) < 0)
        return vmh_err(NC_ERR_OP_NOT_SUPPORTED, NC_ERR_TYPE_PROT, NULL,
                       "only the running and startup datastores exist");
    t = vmh_ds_read_begin(srv->ds, id);
    if (t && lyd_dup_siblings(t, NULL, LYD_DUP_RECURSIVE | LYD_DUP_WITH_FLAGS, &data)) {
        vmh_ds_read_end(srv->ds);
        return vmh_err(NC_ERR_OP_FAILED, NC_ERR_TYPE_APP, NULL, "out of memory");
    }
    vmh_ds_read_end(srv->ds);
    vmh_acl_prune(srv, vmh_sess(nc), &data);
    if ((err = vmh_apply_filter(rpc, &data))) {
        lyd_free_siblings(data);
        return err;
    }
    return vmh_reply_data(rpc, data, vmh_wd(rpc), NULL);
}

/* --- edit-config --- */

enum vmh_edit_op {
    VMH_OP_NONE,
    VMH_OP_MERGE,
    VMH_OP_REPLACE,
    VMH_OP_CREATE,
    VMH_OP_DELETE,
    VMH_OP_REMOVE
};

struct vmh_edit_err {
    NC_ERR tag;
    char *path;
    char *msg;
    char *elem;
};

static enum vmh_edit_op
vmh_edit_op_of(const char *s)
{
    if (!strcmp(s, "merge"))
        return VMH_OP_MERGE;
    if (!strcmp(s, "replace"))
        return VMH_OP_REPLACE;
    if (!strcmp(s, "create"))
        return VMH_OP_CREATE;
    if (!strcmp(s, "delete"))
        return VMH_OP_DELETE;
    if (!strcmp(s, "remove"))
        return VMH_OP_REMOVE;
    return VMH_OP_NONE;
}

static char *
vmh_node_path(const struct lyd_node *parent, const struct lyd_node *n)
{
    char *pp;
    char *s;

    if (n->schema)
        return lyd_path(n, LYD_PATH_STD, NULL, 0);
    pp = parent ? lyd_path(parent, LYD_PATH_STD, NULL, 0) : NULL;
    s = g_strdup_printf("%s/%s", pp ? pp : "", LYD_NAME(n));
    free(pp);
    return s;
}

/* An empty leaf to delete or remove has no value to parse, so it arrives
 * opaque: the schema leaf it names, or NULL. */
static const struct lysc_node *
vmh_edit_opaque_delete(const struct lyd_node *parent, const struct lyd_node *n)
{
    const struct lyd_node_opaq *o = (const struct lyd_node_opaq *)n;
    const struct lysc_node *sn;
    const struct lyd_attr *a;
    bool del = false;

    if (!parent || !parent->schema || lyd_child(n) || (o->value && *o->value))
        return NULL;
    for (a = o->attr; a; a = a->next)
        if (!strcmp(a->name.name, "operation") && a->name.module_ns &&
            !strcmp(a->name.module_ns, NC_NS) && a->value &&
            (!strcmp(a->value, "delete") || !strcmp(a->value, "remove")))
            del = true;
    if (!del)
        return NULL;
    sn = lys_find_child(parent->schema, parent->schema->module, LYD_NAME(n), 0, LYS_LEAF, 0);
    return sn && !lysc_is_key(sn) ? sn : NULL;
}

/* Opaque nodes in <config> are what the parser could not place: an unknown
 * namespace, an unknown element, or a known leaf with an invalid value. */
static int
vmh_edit_check(const struct lyd_node *parent, const struct lyd_node *first, struct vmh_edit_err *e)
{
    const struct lyd_node *n;

    LY_LIST_FOR(first, n)
    {
        if (!n->schema && vmh_edit_opaque_delete(parent, n)) {
            continue;
        } else if (!n->schema) {
            const struct lyd_node_opaq *o = (const struct lyd_node_opaq *)n;
            const char *ns = o->name.module_ns;
            const struct lys_module *mod =
                ns && *ns ? ly_ctx_get_module_implemented_ns(vmh_ops_srv->ctx, ns) : NULL;
            const struct lysc_node *sparent = parent ? parent->schema : NULL;
            const struct lysc_node *sn = NULL;
            char *path = vmh_node_path(parent, n);

            if (!mod && !sparent) {
                e->tag = NC_ERR_UNKNOWN_NS;
                e->msg = g_strdup_printf("unknown namespace \"%s\" of element %s", ns ? ns : "",
                                         LYD_NAME(n));
            } else {
                sn = lys_find_child(sparent, mod ? mod : sparent->module, LYD_NAME(n), 0, 0, 0);
                if (sn && (sn->nodetype & LYD_NODE_TERM)) {
                    e->tag = NC_ERR_INVALID_VALUE;
                    e->msg = g_strdup_printf("invalid value \"%s\" of %s", o->value, path);
                } else if (sn && (sn->flags & LYS_CONFIG_R)) {
                    e->tag = NC_ERR_INVALID_VALUE;
                    e->msg = g_strdup_printf("%s is state data and cannot be configured", path);
                } else if (sn) {
                    e->tag = NC_ERR_MISSING_ELEM;
                    e->msg = g_strdup_printf("%s lacks its key or is misplaced", path);
                } else {
                    e->tag = NC_ERR_UNKNOWN_ELEM;
                    e->msg = g_strdup_printf("unknown element %s", path);
                }
            }
            e->elem = g_strdup(LYD_NAME(n));
            e->path = path;
            return -1;
        }
        if (n->schema->flags & LYS_CONFIG_R) {
            e->tag = NC_ERR_INVALID_VALUE;
            e->path = lyd_path(n, LYD_PATH_STD, NULL, 0);
            e->msg = g_strdup_printf("%s is state data and cannot be configured", e->path);
            return -1;
        }
        if (vmh_edit_check(n, lyd_child(n), e) < 0)
            return -1;
    }
    return 0;
}

static enum vmh_edit_op
vmh_edit_node_op(const struct lyd_node *n, enum vmh_edit_op inherited)
{
    struct lyd_meta *m = lyd_find_meta(n->meta, NULL, "ietf-netconf:operation");

    return m ? vmh_edit_op_of(lyd_get_meta_value(m)) : inherited;
}

static int vmh_edit_apply(struct lyd_node *tparent, struct lyd_node **tfirst,
                          const struct lyd_node *efirst, enum vmh_edit_op dflt,
                          struct vmh_edit_err *e);

static struct lyd_node *
vmh_edit_find(struct lyd_node *tparent, struct lyd_node *tfirst, const struct lyd_node *en)
{
    struct lyd_node *match = NULL;
    struct lyd_node *sib = tparent ? lyd_child(tparent) : tfirst;

    if (!sib)
        return NULL;
    /* An instance of a list by its keys, of a leaf-list by its value; of
     * anything else by its schema alone (lyd_find_sibling_first would
     * compare a leaf's value too, and a merge would add a second leaf). */
    if (en->schema->nodetype & (LYS_LIST | LYS_LEAFLIST)) {
        if (lyd_find_sibling_first(sib, en, &match) != LY_SUCCESS)
            return NULL;
    } else if (lyd_find_sibling_val(sib, en->schema, NULL, 0, &match) != LY_SUCCESS) {
        return NULL;
    }
    return match;
}

static int
vmh_edit_insert(struct lyd_node *tparent, struct lyd_node **tfirst, const struct lyd_node *en,
                bool recursive, struct lyd_node **out)
{
    struct lyd_node *dup = NULL;

    if (lyd_dup_single(en, NULL, (recursive ? LYD_DUP_RECURSIVE : 0) | LYD_DUP_NO_META, &dup) !=
        LY_SUCCESS)
        return -1;
    if (tparent)
        lyd_insert_child(tparent, dup);
    else
        lyd_insert_sibling(*tfirst, dup, tfirst);
    if (out)
        *out = dup;
    return 0;
}

static void
vmh_edit_free(struct lyd_node **tfirst, struct lyd_node *n)
{
    if (n == *tfirst)
        *tfirst = (*tfirst)->next;
    lyd_free_tree(n);
}

static int
vmh_edit_node(struct lyd_node *tparent, struct lyd_node **tfirst, const struct lyd_node *en,
              enum vmh_edit_op inherited, struct vmh_edit_err *e)
{
    enum vmh_edit_op op = vmh_edit_node_op(en, inherited);
    struct lyd_node *match, *shell = NULL;
    bool term = en->schema->nodetype & LYD_NODE_TERM;

    if (lysc_is_key(en->schema))
        return 0; /* matched with its list entry */
    match = vmh_edit_find(tparent, *tfirst, en);
    /* RFC 6243 section 4.5.2, basic-mode explicit: a leaf that only holds
     * its default was set by the server, not by a client; create may set
     * it, delete finds it missing */
    if (match && term && (match->flags & LYD_DEFAULT) &&
        (op == VMH_OP_CREATE || op == VMH_OP_DELETE || op == VMH_OP_REMOVE)) {
        vmh_edit_free(tparent ? &match : tfirst, match);
        match = NULL;
    }
    switch (op) {
    case VMH_OP_CREATE:
        if (match) {
            e->tag = NC_ERR_DATA_EXISTS;
            e->path = lyd_path(match, LYD_PATH_STD, NULL, 0);
            e->msg = g_strdup_printf("%s already exists", e->path);
            return -1;
        }
        return vmh_edit_insert(tparent, tfirst, en, true, NULL);
    case VMH_OP_DELETE:
    case VMH_OP_REMOVE:
        if (!match && op == VMH_OP_DELETE) {
            e->tag = NC_ERR_DATA_MISSING;
            e->path = lyd_path(en, LYD_PATH_STD, NULL, 0);
            e->msg = g_strdup_printf("%s does not exist", e->path);
            return -1;
        }
        if (match)
            vmh_edit_free(tparent ? &match : tfirst, match);
        return 0;
    case VMH_OP_REPLACE:
        if (match)
            vmh_edit_free(tparent ? &match : tfirst, match);
        return vmh_edit_insert(tparent, tfirst, en, true, NULL);
    case VMH_OP_MERGE:
    case VMH_OP_NONE:
        if (term) {
            if (op == VMH_OP_NONE)
                return 0;
            if (!match)
                return vmh_edit_insert(tparent, tfirst, en, false, NULL);
            if (en->schema->nodetype == LYS_LEAF &&
                lyd_change_term(match, lyd_get_value(en)) == LY_EINVAL)
                return -1;
            /* an explicit value is no longer the default */
            match->flags &= ~LYD_DEFAULT;
            return 0;
        }
        if (!match) {
            if (vmh_edit_insert(tparent, tfirst, en, false, &shell) < 0)
                return -1;
            match = shell;
        }
        {
            struct lyd_node *unused = NULL;

            if (vmh_edit_apply(match, &unused, lyd_child(en), op, e) < 0)
                return -1;
        }
        /* under default-operation none, a container that only led to deletes */
        if (shell && op == VMH_OP_NONE && !lyd_child(shell))
            vmh_edit_free(tparent ? &shell : tfirst, shell);
        return 0;
    }
    return 0;
}

static int
vmh_edit_apply(struct lyd_node *tparent, struct lyd_node **tfirst, const struct lyd_node *efirst,
               enum vmh_edit_op dflt, struct vmh_edit_err *e)
{
    const struct lyd_node *en;

    LY_LIST_FOR(efirst, en)
    {
        const struct lysc_node *sn;

        if (!en->schema && (sn = vmh_edit_opaque_delete(lyd_parent(en), en))) {
            struct lyd_node *match = NULL;
            const struct lyd_attr *a;
            bool remove = false;

            for (a = ((const struct lyd_node_opaq *)en)->attr; a; a = a->next)
                remove |= !strcmp(a->name.name, "operation") && !strcmp(a->value, "remove");
            if (tparent)
                lyd_find_sibling_val(lyd_child(tparent), sn, NULL, 0, &match);
            /* the server's default counts as missing (vmh_edit_node) */
            if (match && !(match->flags & LYD_DEFAULT)) {
                lyd_free_tree(match);
            } else if (!remove) {
                char *pp = lyd_path(tparent, LYD_PATH_STD, NULL, 0);

                e->tag = NC_ERR_DATA_MISSING;
                e->path = g_strdup_printf("%s/%s", pp ? pp : "", sn->name);
                e->msg = g_strdup_printf("%s does not exist", e->path);
                free(pp);
                return -1;
            }
            continue;
        }
        if (vmh_edit_node(tparent, tfirst, en, dflt, e) < 0)
            return -1;
    }
    return 0;
}

static struct nc_server_reply *
vmh_edit_err_reply(struct vmh_edit_err *e)
{
    struct nc_server_reply *r;
    NC_ERR_TYPE type = NC_ERR_TYPE_APP;

    if (e->tag == NC_ERR_UNKNOWN_NS) {
        struct lyd_node *err =
            nc_err(vmh_ops_srv->ctx, NC_ERR_UNKNOWN_NS, type, e->elem ? e->elem : "", "");

        nc_err_set_path(err, e->path ? e->path : "/");
        nc_err_set_msg(err, e->msg, "en");
        r = nc_server_reply_err(err);
    } else if (e->tag == NC_ERR_UNKNOWN_ELEM || e->tag == NC_ERR_MISSING_ELEM ||
               e->tag == NC_ERR_BAD_ELEM) {
        struct lyd_node *err = nc_err(vmh_ops_srv->ctx, e->tag, type, e->elem ? e->elem : "");

        if (e->path)
            nc_err_set_path(err, e->path);
        nc_err_set_msg(err, e->msg, "en");
        r = nc_server_reply_err(err);
    } else {
        r = vmh_err(e->tag ? e->tag : NC_ERR_OP_FAILED, type, e->path, "%s",
                    e->msg ? e->msg : "edit failed");
    }
    free(e->path); /* lyd_path and g_strdup both use malloc */
    g_free(e->msg);
    g_free(e->elem);
    return r;
}

/* The libyang validation error as an rpc-error (RFC 7950 section 15). */
static struct nc_server_reply *
vmh_validation_err(const struct lyd_node *tree)
{
    const struct ly_err_item *le = ly_err_last(vmh_ops_srv->ctx);
    struct vmh_edit_err e = {.tag = NC_ERR_INVALID_VALUE};
    const char *msg = le ? le->msg : "validation failed";
    struct nc_server_reply *r;
    struct lyd_node *err;
    const char *apptag = le ? le->apptag : NULL;

    if (strstr(msg, "Mandatory") || strstr(msg, "mandatory"))
        e.tag = NC_ERR_DATA_MISSING, apptag = strstr(msg, "choice") ? "missing-choice" : NULL;
    else if (strstr(msg, "Unique data"))
        e.tag = NC_ERR_OP_FAILED, apptag = "data-not-unique";
    else if (strstr(msg, "leafref") || strstr(msg, "require-instance") ||
             strstr(msg, "instance-required") || strstr(msg, "Invalid leafref"))
        e.tag = NC_ERR_DATA_MISSING, apptag = "instance-required";
    else if (strstr(msg, "Must condition") || (le && le->vecode == LYVE_DATA && apptag))
        e.tag = NC_ERR_OP_FAILED, apptag = apptag ? apptag : "must-violation";
    else if (strstr(msg, "Too many"))
        e.tag = NC_ERR_OP_FAILED, apptag = "too-many-elements";
    else if (strstr(msg, "Too few"))
        e.tag = NC_ERR_OP_FAILED, apptag = "too-few-elements";
    e.path = NULL;
    r = vmh_err(e.tag, NC_ERR_TYPE_APP, NULL, "%s", msg);
    err = (struct lyd_node *)nc_server_reply_get_last_err(r);
    if (le && le->path) {
        /* libyang words it 'Data location "/a/b".' or a schema location */
        const char *dl = strstr(le->path, "ata location \"");
        const char *q1 = dl ? dl + strlen("ata location ") : strchr(le->path, '"');
        const char *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
        char *p = q2 ? g_strndup(q1 + 1, (gsize)(q2 - q1 - 1)) : g_strdup(le->path);
        const char *m1 = strstr(msg, "ode \""), *m2 = m1 ? strchr(m1 + 5, '"') : NULL;

        /* A missing node is reported at its parent's data location. */
        if (dl && m2 && e.tag == NC_ERR_DATA_MISSING && !strstr(msg, "leafref")) {
            char *name = g_strndup(m1 + 5, (gsize)(m2 - m1 - 5));
            const char *slash = strrchr(p, '/');

            if (!slash || strcmp(slash + 1, name)) {
                char *full = g_strdup_printf("%s/%s", p, name);

                g_free(p);
                p = full;
            }
            g_free(name);
        }
        /* libyang gives only the schema location of a missing mandatory
         * node: find the instance of its parent that lacks it. */
        if (!dl && m2 && e.tag == NC_ERR_DATA_MISSING && tree && strrchr(p, '/') &&
            strrchr(p, '/') != p) {
            char *parent = g_strndup(p, (gsize)(strrchr(p, '/') - p));
            const char *last = strrchr(p, '/') + 1;
            char *child = g_strdup(strchr(last, ':') ? strchr(last, ':') + 1 : last);
            struct ly_set *set = NULL;

            if (lyd_find_xpath(tree, parent, &set) == LY_SUCCESS) {
                for (uint32_t i = 0; i < set->count; i++) {
                    struct lyd_node *c;
                    bool has = false;

                    LY_LIST_FOR(lyd_child(set->dnodes[i]), c)
                    has |= c->schema && !strcmp(c->schema->name, child);
                    if (!has) {
                        char *dp = lyd_path(set->dnodes[i], LYD_PATH_STD, NULL, 0);

                        g_free(p);
                        p = g_strdup_printf("%s/%s", dp, child);
                        free(dp);
                        break;
                    }
                }
            }
            g_free(child);
            ly_set_free(set, NULL);
            g_free(parent);
        }
        nc_err_set_path(err, p);
        g_free(p);
    }
    if (apptag)
        nc_err_set_app_tag(err, apptag);
    return r;
}

/* Validates a whole configuration (adding its defaults); NULL when valid,
 * else the rpc-error of libyang's complaint.  *tree stays the caller's. */
static struct nc_server_reply *
vmh_validate(struct lyd_node **tree)
{
    uint32_t prev = ly_log_options(LY_LOSTORE_LAST);
    LY_ERR lyrc;

    ly_err_clean(vmh_ops_srv->ctx, NULL);
    lyrc = lyd_validate_all(tree, vmh_ops_srv->ctx, LYD_VALIDATE_NO_STATE, NULL);
    ly_log_options(prev);
    return lyrc == LY_SUCCESS ? NULL : vmh_validation_err(*tree);
}

/* A change the configuration transaction refused: the subscriber's reason
 * and node, under the error-tag its kind of refusal calls for. */
static struct nc_server_reply *
vmh_txn_err_reply(const struct vmh_txn_error *err)
{
    static const NC_ERR tags[] = {
        [VMH_TXN_INVALID] = NC_ERR_INVALID_VALUE,
        [VMH_TXN_IN_USE] = NC_ERR_IN_USE,
        [VMH_TXN_UNSUPPORTED] = NC_ERR_OP_NOT_SUPPORTED,
        [VMH_TXN_FAILED] = NC_ERR_OP_FAILED,
    };

    return vmh_err(tags[err->refusal], NC_ERR_TYPE_APP, err->path, "%s", err->message);
}

/* Validates tree (taken over) and commits it to running through the
 * configuration transaction; the caller holds the datastore's write
 * transaction.  On any refusal running and every subsystem stay as they
 * were. */
static struct nc_server_reply *
vmh_commit_running(struct vmh_nc_server *srv, struct lyd_node *tree, bool test_only)
{
    struct vmh_txn_error terr;
    struct nc_server_reply *r = vmh_validate(&tree);
    char *err = NULL;
    int rc;

    if (r) {
        lyd_free_siblings(tree);
        return r;
    }
    rc = vmh_txn_commit(srv->txn, vmh_ds_read_begin(srv->ds, VMH_DS_RUNNING), tree,
                        test_only ? VMH_TXN_TEST_ONLY : 0, &terr);
    vmh_ds_read_end(srv->ds);
    if (rc < 0) {
        r = vmh_txn_err_reply(&terr);
        vmh_txn_error_clear(&terr);
        lyd_free_siblings(tree);
        return r;
    }
    if (test_only) {
        lyd_free_siblings(tree);
        return NULL;
    }
    vmh_ds_replace(srv->ds, VMH_DS_RUNNING, tree, &err);
    free(err);
    return NULL;
}

static struct nc_server_reply *
vmh_check_lock(struct vmh_nc_server *srv, enum vmh_ds_id id, uint32_t sid)
{
    uint32_t holder = vmh_ds_lock_holder(srv->ds, id, NULL);

    if (holder && holder != sid)
        return vmh_err_in_use(id, holder);
    return NULL;
}

static struct nc_server_reply *
vmh_op_edit_config(struct lyd_node *rpc, struct nc_session *nc)
{
    struct vmh_nc_server *srv = vmh_ops_srv;
    struct vmh_nc_session *s = vmh_sess(nc);
    struct vmh_edit_err e = {0};
    struct lyd_node *cfgnode = NULL, *edit = NULL, *tree = NULL;
    struct nc_server_reply *r;
    enum vmh_ds_id id;
    const char *v;
    enum vmh_edit_op dflt = VMH_OP_MERGE;
    bool test_only = false;
    const struct lyd_node *run;

    if (vmh_datastore_of(rpc, "target", &id) < 0 || id != VMH_DS_RUNNING)
        return vmh_err(NC_ERR_OP_NOT_SUPPORTED, NC_ERR_TYPE_PROT, NULL,
                       "edit-config changes the running datastore only; "
                       "use copy-config to write startup");
    if ((v = vmh_input(rpc, "default-operation")))
        dflt = vmh_edit_op_of(v);
    if ((v = vmh_input(rpc, "test-option")))
        test_only = !strcmp(v, "test-only");
    if (!(cfgnode = vmh_child(rpc, "config")))
        return vmh_err(NC_ERR_OP_NOT_SUPPORTED, NC_ERR_TYPE_PROT, NULL,
                       "only an inline <config> is supported (no :url)");
    if (((struct lyd_node_any *)cfgnode)->value_type == LYD_ANYDATA_DATATREE)
        edit = ((struct lyd_node_any *)cfgnode)->value.tree;
    else if (((struct lyd_node_any *)cfgnode)->value.str &&
             ((struct lyd_node_any *)cfgnode)->value.str[0])
        return vmh_err(NC_ERR_MALFORMED_MSG, NC_ERR_TYPE_RPC, NULL, "unreadable <config>");
    if (vmh_edit_check(NULL, edit, &e) < 0)
        return vmh_edit_err_reply(&e);

    vmh_ds_write_begin(srv->ds);
    if ((r = vmh_check_lock(srv, id, s->id)))
        goto out;
    run = vmh_ds_read_begin(srv->ds, VMH_DS_RUNNING);
    if (run)
        lyd_dup_siblings(run, NULL, LYD_DUP_RECURSIVE | LYD_DUP_WITH_FLAGS, &tree);
    vmh_ds_read_end(srv->ds);
    /* The edit goes to a copy: on any error running stays as it was. */
    if (vmh_edit_apply(NULL, &tree, edit, dflt, &e) < 0) {
        lyd_free_siblings(tree);
        r = vmh_edit_err_reply(&e);
        goto out;
    }
    {
        char *path = NULL, *why;

        run = vmh_ds_read_begin(srv->ds, VMH_DS_RUNNING);
        why = vmh_acl_edit(srv, s, run, tree, &path);
        vmh_ds_read_end(srv->ds);
        if (why) {
            lyd_free_siblings(tree);
            r = vmh_denied(s, why, path);
            goto out;
        }
    }
    r = vmh_commit_running(srv, tree, test_only);
    if (!r && !test_only)
        log_info("netconf", "session %u ('%s') changed the running configuration", s->id, s->user);
out:
    vmh_ds_write_end(srv->ds);
    return r ? r : nc_server_reply_ok();
}

/* --- copy-config --- */

static struct nc_server_reply *
vmh_op_copy_config(struct lyd_node *rpc, struct nc_session *nc)
{
    struct vmh_nc_server *srv = vmh_ops_srv;
    struct vmh_nc_session *s = vmh_sess(nc);
    struct lyd_node *tree = NULL, *src = NULL;
    struct nc_server_reply *r = NULL;
    enum vmh_ds_id target, source = VMH_DS_COUNT;
    int rc;

    if (vmh_datastore_of(rpc, "target", &target) < 0)
        return vmh_err(NC_ERR_OP_NOT_SUPPORTED, NC_ERR_TYPE_PROT, NULL,
                       "the target must be running or startup");
    rc = vmh_datastore_of(rpc, "source", &source);
    if (rc == -2 && (src = vmh_child(vmh_child(rpc, "source"), "config"))) {
        struct vmh_edit_err e = {0};
        struct lyd_node_any *any = (struct lyd_node_any *)src;

        if (any->value_type == LYD_ANYDATA_DATATREE && any->value.tree) {
            if (vmh_edit_check(NULL, any->value.tree, &e) < 0)
                return vmh_edit_err_reply(&e);
            lyd_dup_siblings(any->value.tree, NULL, LYD_DUP_RECURSIVE | LYD_DUP_NO_META, &tree);
        }
        source = VMH_DS_COUNT;
    } else if (rc < 0) {
        return vmh_err(NC_ERR_OP_NOT_SUPPORTED, NC_ERR_TYPE_PROT, NULL,
                       "the source must be running, startup or an inline config");
    } else if (source == target) {
        return vmh_err(NC_ERR_INVALID_VALUE, NC_ERR_TYPE_PROT, NULL,
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
    if (target == VMH_DS_RUNNING) {
        r = vmh_commit_running(srv, tree, false);
    } else {
        char *err = NULL;

        if ((r = vmh_validate(&tree))) {
            lyd_free_siblings(tree);
        } else if (vmh_ds_replace(srv->ds, VMH_DS_STARTUP, tree, &err) < 0) {
            r = vmh_err(NC_ERR_OP_FAILED, NC_ERR_TYPE_APP, NULL, "%s", err);
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

static struct nc_server_reply *
vmh_op_validate(struct lyd_node *rpc, struct nc_session *nc)
{
    struct lyd_node *src = vmh_child(vmh_child(rpc, "source"), "config"), *tree = NULL;
    struct vmh_edit_err e = {0};
    struct lyd_node_any *any = (struct lyd_node_any *)src;
    struct nc_server_reply *r;

    if (!src)
        return nc_server_reply_ok(); /* running and startup are valid by construction */
    if (any->value_type == LYD_ANYDATA_DATATREE && any->value.tree) {
        if (vmh_edit_check(NULL, any->value.tree, &e) < 0)
            return vmh_edit_err_reply(&e);
        lyd_dup_siblings(any->value.tree, NULL, LYD_DUP_RECURSIVE | LYD_DUP_NO_META, &tree);
    }
    r = vmh_validate(&tree);
    lyd_free_siblings(tree);
    return r ? r : nc_server_reply_ok();
}

/* --- lock, unlock, kill-session --- */

static struct nc_server_reply *
vmh_op_lock(struct lyd_node *rpc, struct nc_session *nc)
{
    struct vmh_nc_session *s = vmh_sess(nc);
    enum vmh_ds_id id;
    uint32_t holder = 0;
    bool unlock = !strcmp(rpc->schema->name, "unlock");
    int rc;

    if (vmh_datastore_of(rpc, "target", &id) < 0)
        return vmh_err(NC_ERR_OP_NOT_SUPPORTED, NC_ERR_TYPE_PROT, NULL,
                       "only running and startup can be locked");
    if (!unlock) {
        if (vmh_ds_lock(vmh_ops_srv->ds, id, s->id, &holder) < 0)
            return vmh_err_lock(holder, vmh_ds_name(id));
        return nc_server_reply_ok();
    }
    rc = vmh_ds_unlock(vmh_ops_srv->ds, id, s->id, &holder);
    if (rc == -ENOENT)
        return vmh_err(NC_ERR_OP_FAILED, NC_ERR_TYPE_PROT, NULL, "the %s datastore is not locked",
                       vmh_ds_name(id));
    if (rc == -EPERM)
        return vmh_err_lock(holder, vmh_ds_name(id));
    return nc_server_reply_ok();
}

static struct nc_server_reply *
vmh_op_kill_session(struct lyd_node *rpc, struct nc_session *nc)
{
    struct vmh_nc_server *srv = vmh_ops_srv;
    struct vmh_nc_session *s = vmh_sess(nc), *victim;
    const char *v = vmh_input(rpc, "session-id");
    uint32_t sid = v ? (uint32_t)strtoul(v, NULL, 10) : 0;

    if (sid == s->id)
        return vmh_err(NC_ERR_INVALID_VALUE, NC_ERR_TYPE_PROT, "/ietf-netconf:session-id",
                       "a session cannot kill itself: use close-session");
    pthread_mutex_lock(&srv->lock);
    victim = g_hash_table_lookup(srv->sessions, GUINT_TO_POINTER(sid));
    if (victim) {
        nc_session_set_term_reason(victim->nc, NC_SESSION_TERM_KILLED);
        nc_session_set_killed_by(victim->nc, s->id);
        nc_session_set_status(victim->nc, NC_STATUS_INVALID);
        vmh_nc_schedule_locked(srv, victim);
    }
    pthread_mutex_unlock(&srv->lock);
    if (!victim)
        return vmh_err(NC_ERR_INVALID_VALUE, NC_ERR_TYPE_PROT, "/ietf-netconf:session-id",
                       "no session %u", sid);
    vmh_ds_unlock_session(srv->ds, sid);
    log_info("netconf", "session %u ('%s') killed session %u", s->id, s->user, sid);
    return nc_server_reply_ok();
}

/* --- get-schema --- */

static struct nc_server_reply *
vmh_op_get_schema(struct lyd_node *rpc, struct nc_session *nc)
{
    const char *id = vmh_input(rpc, "identifier"), *ver = vmh_input(rpc, "version");
    const char *fmt = vmh_input(rpc, "format");
    const struct lys_module *mod;
    const struct lysp_submodule *sub = NULL;
    LYS_OUTFORMAT of = LYS_OUT_YANG;
    struct lyd_node *out = NULL;
    char *text = NULL;

    if (ver && !*ver)
        ver = NULL;
    if (fmt && strstr(fmt, "yin"))
        of = LYS_OUT_YIN;
    else if (fmt && !strstr(fmt, "yang"))
        return vmh_err(NC_ERR_INVALID_VALUE, NC_ERR_TYPE_APP, NULL, "format %s is not supported",
                       fmt);
    mod = ver ? ly_ctx_get_module(vmh_ops_srv->ctx, id, ver)
              : ly_ctx_get_module_latest(vmh_ops_srv->ctx, id);
    if (!mod) {
        sub = ly_ctx_get_submodule(vmh_ops_srv->ctx, id, ver);
        if (!sub)
            return vmh_err(NC_ERR_INVALID_VALUE, NC_ERR_TYPE_APP, NULL, "no schema %s%s%s", id,
                           ver ? "@" : "", ver ? ver : "");
    }
    if (sub) {
        struct ly_out *o = NULL;

        if (ly_out_new_memory(&text, 0, &o) != LY_SUCCESS ||
            lys_print_submodule(o, sub, of, 0, 0) != LY_SUCCESS) {
            ly_out_free(o, NULL, 1);
            return vmh_err(NC_ERR_OP_FAILED, NC_ERR_TYPE_APP, NULL, "cannot print schema %s", id);
        }
        ly_out_free(o, NULL, 0);
    } else if (lys_print_mem(&text, mod, of, 0) != LY_SUCCESS)
        return vmh_err(NC_ERR_OP_FAILED, NC_ERR_TYPE_APP, NULL, "cannot print schema %s", id);
    if (lyd_dup_single(rpc, NULL, 0, &out) != LY_SUCCESS ||
        lyd_new_any(out, NULL, "data", text, 1, LYD_ANYDATA_STRING, 1, NULL) != LY_SUCCESS) {
        free(text);
        lyd_free_all(out);
        return vmh_err(NC_ERR_OP_FAILED, NC_ERR_TYPE_APP, NULL, "cannot build the reply");
    }
    return nc_server_reply_data(out, NC_WD_EXPLICIT, NC_PARAMTYPE_FREE);
}

/* --- create-subscription --- */

static struct nc_server_reply *
vmh_op_subscribe(struct lyd_node *rpc, struct nc_session *nc)
{
    return vmh_nc_subscribe(vmh_ops_srv, vmh_sess(nc), rpc);
}

/* --- the domain RPCs --- */

static struct nc_server_reply *
vmh_rpc_result(struct lyd_node *rpc, const struct vmh_rpc_result *res, const char *path)
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
        if (res->status == VMH_RPC_UNKNOWN_HOST && vmh_input(rpc, "target-host"))
            path = "target-host";
        p = g_strdup_printf("/%s:%s/%s", VMH_MOD, rpc->schema->name, path);
        r = vmh_err(NC_ERR_INVALID_VALUE, NC_ERR_TYPE_APP, p, "%s", res->message);
        g_free(p);
        return r;
    default:
        return vmh_err(NC_ERR_OP_FAILED, NC_ERR_TYPE_APP, NULL, "%s", res->message);
    }
}

static struct nc_server_reply *
vmh_op_domain(struct lyd_node *rpc, struct nc_session *nc)
{
    struct vmh_nc_server *srv = vmh_ops_srv;
    const char *name = rpc->schema->name;
    struct vmh_rpc_result res = {0};
    struct nc_server_reply *r;
    const char *uuid = vmh_input(rpc, "vm-uuid"), *target = vmh_input(rpc, "target-host");
    const char *errpath = "vm-uuid";

    /* Input is parsed, not validated: the mandatory nodes are checked here
     * and the references by the engine, which names what it does not know. */
    if (!strcmp(name, "clear-fault")    ? !vmh_input(rpc, "fault-id")
        : !strcmp(name, "report-fault") ? !uuid && !vmh_input(rpc, "host")
                                        : !uuid) {
        const char *missing = !strcmp(name, "clear-fault")    ? "fault-id"
                              : !strcmp(name, "report-fault") ? "host or vm-uuid"
                                                              : "vm-uuid";
        struct lyd_node *e = nc_err(srv->ctx, NC_ERR_MISSING_ELEM, NC_ERR_TYPE_PROT,
                                    !strcmp(name, "report-fault") ? "vm-uuid" : missing);
        char *msg = g_strdup_printf("%s needs %s", name, missing);

        nc_err_set_msg(e, msg, "en");
        g_free(msg);
        return nc_server_reply_err(e);
    }
    if (!strcmp(name, "migration-ready")) {
        vmh_engine_rpc_migration_ready(srv->engine, uuid, target, &res);
    } else if (!strcmp(name, "migrate-vm")) {
        vmh_engine_rpc_migrate_vm(srv->engine, uuid, target, &res);
    } else if (!strcmp(name, "report-fault")) {
        const char *host = vmh_input(rpc, "host"), *cause = vmh_input(rpc, "cause");
        const char *sev = vmh_input(rpc, "severity"), *desc = vmh_input(rpc, "description");
        int c = cause ? vmh_cause_from_str(cause) : VMH_CAUSE_EXTERNAL;
        int sv = sev ? vmh_severity_from_str(sev) : VMH_SEV_MAJOR;

        if (c < 0 || sv < 0)
            return vmh_err(NC_ERR_INVALID_VALUE, NC_ERR_TYPE_APP, NULL, "unknown %s",
                           c < 0 ? "cause" : "severity");
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
                return vmh_err(NC_ERR_OP_FAILED, NC_ERR_TYPE_APP, NULL, "cannot build the reply");
            }
            return nc_server_reply_data(out, NC_WD_EXPLICIT, NC_PARAMTYPE_FREE);
        }
    } else if (!strcmp(name, "clear-fault")) {
        const char *id = vmh_input(rpc, "fault-id");

        errpath = "fault-id";
        vmh_engine_rpc_clear_fault(srv->engine, strtoull(id, NULL, 10), &res);
    }
    r = vmh_rpc_result(rpc, &res, errpath);
    return r ? r : nc_server_reply_ok();
}

/* --- monitoring (RFC 6022) --- */

static void vmh_mon_path(struct lyd_node *top, const char *fmt, const char *value, ...)
    __attribute__((format(printf, 2, 4)));

static void
vmh_mon_path(struct lyd_node *top, const char *fmt, const char *value, ...)
{
    char *path;
    va_list ap;

    va_start(ap, value);
    path = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    lyd_new_path(top, NULL, path, value, LYD_NEW_PATH_UPDATE, NULL);
    g_free(path);
}

struct lyd_node *
vmh_nc_monitoring_state(struct vmh_nc_server *srv)
{
    struct lyd_node *top = NULL;
    const char **caps = nc_server_get_cpblts(srv->ctx);
    const struct lys_module *mod;
    uint32_t idx = 0;
    char buf[64], t[40];
    GHashTableIter it;
    gpointer v;

    if (lyd_new_path(NULL, srv->ctx, "/ietf-netconf-monitoring:netconf-state", NULL, 0, &top))
        return NULL;
    /* the strings are references in the context's dictionary */
    for (size_t i = 0; caps && caps[i]; i++) {
        lyd_new_path(top, NULL, "capabilities/capability", caps[i], LYD_NEW_PATH_UPDATE, NULL);
        lydict_remove(srv->ctx, caps[i]);
    }
    free(caps);
    for (int d = 0; d < VMH_DS_COUNT; d++) {
        int64_t since = 0;
        uint32_t h = vmh_ds_lock_holder(srv->ds, (enum vmh_ds_id)d, &since);

        vmh_mon_path(top, "datastores/datastore[name='%s']", NULL, vmh_ds_name(d));
        if (h) {
            snprintf(buf, sizeof buf, "%u", h);
            vmh_mon_path(top, "datastores/datastore[name='%s']/locks/global-lock/locked-by-session",
                         buf, vmh_ds_name(d));
            vmh_time_format(since, t, sizeof t);
            vmh_mon_path(top, "datastores/datastore[name='%s']/locks/global-lock/locked-time", t,
                         vmh_ds_name(d));
        }
    }
    while ((mod = ly_ctx_get_module_iter(srv->ctx, &idx))) {
        const char *rev = mod->revision ? mod->revision : "";

        if (!mod->implemented)
            continue;
        vmh_mon_path(top, "schemas/schema[identifier='%s'][version='%s'][format='yang']/namespace",
                     mod->ns, mod->name, rev);
        vmh_mon_path(top, "schemas/schema[identifier='%s'][version='%s'][format='yang']/location",
                     "NETCONF", mod->name, rev);
    }
    pthread_mutex_lock(&srv->lock);
    g_hash_table_iter_init(&it, srv->sessions);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct vmh_nc_session *s = v;
        const char *host = nc_session_get_host(s->nc);

        /* RFC 6022 has no identity for a UNIX socket; the transport leaf is
         * mandatory, so local sessions show the NETCONF framing they use. */
        vmh_mon_path(top, "sessions/session[session-id='%u']/transport",
                     "ietf-netconf-monitoring:netconf-ssh", s->id);
        vmh_mon_path(top, "sessions/session[session-id='%u']/username", s->user, s->id);
        if (host)
            vmh_mon_path(top, "sessions/session[session-id='%u']/source-host", host, s->id);
        vmh_time_format(s->login_ms, t, sizeof t);
        vmh_mon_path(top, "sessions/session[session-id='%u']/login-time", t, s->id);
#define VMH_MON_CNT(leaf, val)                                                                     \
    snprintf(buf, sizeof buf, "%u", (unsigned)(val));                                              \
    vmh_mon_path(top, "sessions/session[session-id='%u']/" leaf, buf, s->id)
        VMH_MON_CNT("in-rpcs", s->in_rpcs);
        VMH_MON_CNT("in-bad-rpcs", s->in_bad_rpcs);
        VMH_MON_CNT("out-rpc-errors", s->out_rpc_errors);
        VMH_MON_CNT("out-notifications", s->out_notifications);
#undef VMH_MON_CNT
    }
    vmh_time_format(srv->start_ms, t, sizeof t);
    lyd_new_path(top, NULL, "statistics/netconf-start-time", t, 0, NULL);
#define VMH_STAT(leaf, val)                                                                        \
    snprintf(buf, sizeof buf, "%" PRIu64, (uint64_t)(val));                                        \
    lyd_new_path(top, NULL, "statistics/" leaf, buf, 0, NULL)
    VMH_STAT("in-bad-hellos", srv->in_bad_hellos);
    VMH_STAT("in-sessions", srv->in_sessions);
    VMH_STAT("dropped-sessions", srv->dropped_sessions);
    VMH_STAT("in-rpcs", srv->in_rpcs);
    VMH_STAT("in-bad-rpcs", srv->in_bad_rpcs);
    VMH_STAT("out-rpc-errors", srv->out_rpc_errors);
    VMH_STAT("out-notifications", srv->out_notifications);
#undef VMH_STAT
    pthread_mutex_unlock(&srv->lock);
    return top;
}

/* --- registration --- */

static const struct {
    const char *path;
    nc_rpc_clb op;
} vmh_ops[] = {
    {"/ietf-netconf:get", vmh_op_get},
    {"/ietf-netconf:get-config", vmh_op_get_config},
    {"/ietf-netconf:edit-config", vmh_op_edit_config},
    {"/ietf-netconf:copy-config", vmh_op_copy_config},
    {"/ietf-netconf:validate", vmh_op_validate},
    {"/ietf-netconf:lock", vmh_op_lock},
    {"/ietf-netconf:unlock", vmh_op_lock},
    {"/ietf-netconf:kill-session", vmh_op_kill_session},
    {"/ietf-netconf-monitoring:get-schema", vmh_op_get_schema},
    {"/notifications:create-subscription", vmh_op_subscribe},
    {"/nfv-vm-health:migration-ready", vmh_op_domain},
    {"/nfv-vm-health:migrate-vm", vmh_op_domain},
    {"/nfv-vm-health:report-fault", vmh_op_domain},
    {"/nfv-vm-health:clear-fault", vmh_op_domain},
};
static const struct lysc_node *vmh_op_nodes[G_N_ELEMENTS(vmh_ops)];

/* Every operation passes here: access control first, then input the
 * schema refused (rpc_input.c), then the operation. */
static struct nc_server_reply *
vmh_op_dispatch(struct lyd_node *rpc, struct nc_session *nc)
{
    struct vmh_nc_session *s = vmh_sess(nc);
    char *why = vmh_acl_rpc(vmh_ops_srv, s, rpc);
    struct nc_server_reply *r;

    if (why)
        return vmh_denied(s, why, NULL);
    if ((r = vmh_nc_refused_input_reply(rpc)))
        return r;
    for (size_t i = 0; i < G_N_ELEMENTS(vmh_ops); i++)
        if (vmh_op_nodes[i] == rpc->schema)
            return vmh_ops[i].op(rpc, nc);
    return vmh_err(NC_ERR_OP_NOT_SUPPORTED, NC_ERR_TYPE_PROT, NULL, "%s is not supported",
                   rpc->schema->name);
}

bool
vmh_nc_ops_dispatched(const struct lysc_node *op)
{
    return op && op->priv == (void *)vmh_op_dispatch;
}

int
vmh_nc_ops_register(struct vmh_nc_server *srv)
{
    vmh_ops_srv = srv;
    for (size_t i = 0; i < G_N_ELEMENTS(vmh_ops); i++) {
        const struct lysc_node *n = lys_find_path(srv->ctx, NULL, vmh_ops[i].path, 0);

        if (!n) {
            log_err("netconf", "schema node %s is missing", vmh_ops[i].path);
            return -1;
        }
        vmh_op_nodes[i] = n;
        ((struct lysc_node *)n)->priv = (void *)vmh_op_dispatch; /* nc_set_rpc_callback() */
    }
    return 0;
}
