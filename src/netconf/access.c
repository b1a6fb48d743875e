/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Access control: the one place that decides what a NETCONF user may see
 * and do.  Users with role admin see and do everything.  A vnf-manager
 * user acts for the VNF managers that list it in 'vnf-manager/user' ("its
 * managers"), and:
 *  - sees the VMs of its managers, the faults of those VMs and the host
 *    faults of the hosts they run on, the hosts without their uri and
 *    sysfs-root, its managers' entries, the vm-assignment entries of its
 *    VMs, the settings and statistics; never the agent subtree nor the sessions of others
 *    (ietf-netconf-monitoring);
 *  - is told only about its managers' VMs (replay included);
 *  - may run get, get-config, get-schema, validate, create-subscription,
 *    and migration-ready and migrate-vm on its VMs;
 *  - may edit only its managers' preprocessing-time and the vm-assignment
 *    entries of its VMs, without handing a VM to another manager;
 *  - may not lock: a tenant holding the global lock would stop every
 *    other tenant and the operator.
 * A VM is the user's when the engine says its VNF manager is one of the
 * user's managers.  An unknown VM is nobody's, so an access-denied never
 * tells whether a VM exists. */
#include "netconf/netconf_p.h"

#include "config/config.h"

#include <stdio.h>
#include <string.h>

/* --- whose is what --- */

/* The managers of a user, or an empty set; under no lock. */
static GHashTable *
vmh_acl_managers(struct vmh_nc_server *srv, const char *user)
{
    GHashTable *set = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

    pthread_rwlock_rdlock(&srv->users_lock);
    for (guint i = 0; i < srv->users->len; i++) {
        const struct vmh_nc_user *u = g_ptr_array_index(srv->users, i);

        if (strcmp(u->name, user))
            continue;
        for (size_t j = 0; u->managers[j]; j++)
            g_hash_table_add(set, g_strdup(u->managers[j]));
    }
    pthread_rwlock_unlock(&srv->users_lock);
    return set;
}

bool
vmh_acl_may_see(struct vmh_nc_server *srv, const struct vmh_nc_session *s, const char *manager)
{
    bool ok = false;

    if (s->admin)
        return true;
    if (!manager)
        return false;
    /* once per subscribed session and notification: no set built here */
    pthread_rwlock_rdlock(&srv->users_lock);
    for (guint i = 0; i < srv->users->len && !ok; i++) {
        const struct vmh_nc_user *u = g_ptr_array_index(srv->users, i);

        for (size_t j = 0; !strcmp(u->name, s->user) && u->managers[j] && !ok; j++)
            ok = !strcmp(u->managers[j], manager);
    }
    pthread_rwlock_unlock(&srv->users_lock);
    return ok;
}

static bool
vmh_acl_owns_vm(struct vmh_nc_server *srv, GHashTable *mine, const char *uuid)
{
    struct vmh_snapshot *snap = vmh_engine_snapshot(srv->engine);
    const struct vmh_vm_snap *vm = uuid ? vmh_snapshot_find_vm(snap, uuid) : NULL;
    bool ok = vm && vm->manager && g_hash_table_contains(mine, vm->manager);

    vmh_snapshot_unref(snap);
    return ok;
}

/* --- operations --- */

struct vmh_acl_rule {
    const char *rpc;
    bool manager; /* a vnf-manager user may run it */
    bool per_vm;  /* ... on its own VMs (input vm-uuid) */
};

static const struct vmh_acl_rule vmh_acl_rules[] = {
    {"get", true, false},
    {"get-config", true, false},
    {"get-schema", true, false},
    {"validate", true, false},
    {"create-subscription", true, false},
    {"edit-config", true, false}, /* the change itself: vmh_acl_edit */
    {"migration-ready", true, true},
    {"migrate-vm", true, true},
    {"copy-config", false, false},
    {"lock", false, false},
    {"unlock", false, false},
    {"kill-session", false, false},
    {"report-fault", false, false},
    {"clear-fault", false, false},
};

char *
vmh_acl_rpc(struct vmh_nc_server *srv, const struct vmh_nc_session *s, const struct lyd_node *rpc)
{
    const char *name = rpc->schema->name, *uuid;
    const struct vmh_acl_rule *rule = NULL;
    GHashTable *mine;
    char *why = NULL;

    if (s->admin)
        return NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(vmh_acl_rules); i++)
        if (!strcmp(vmh_acl_rules[i].rpc, name))
            rule = &vmh_acl_rules[i];
    if (!rule || !rule->manager)
        return g_strdup_printf("%s needs the admin role", name);
    if (!rule->per_vm)
        return NULL;
    uuid = vmh_tree_str(rpc, "vm-uuid");
    if (!uuid)
        return NULL; /* the operation reports the missing element */
    mine = vmh_acl_managers(srv, s->user);
    if (!vmh_acl_owns_vm(srv, mine, uuid))
        why = g_strdup_printf("VM %s is not managed by a VNF manager of user '%s'", uuid, s->user);
    g_hash_table_destroy(mine);
    return why;
}

/* --- reading --- */

void
vmh_acl_prune(struct vmh_nc_server *srv, const struct vmh_nc_session *s, struct lyd_node **tree)
{
    struct lyd_node *n, *next, *vh = NULL;
    GHashTable *mine, *vms, *hosts;

    if (s->admin)
        return;
    mine = vmh_acl_managers(srv, s->user);
    vms = g_hash_table_new(g_str_hash, g_str_equal);   /* values live in the tree */
    hosts = g_hash_table_new(g_str_hash, g_str_equal); /* hosts of those VMs */
    LY_LIST_FOR_SAFE(*tree, next, n)
    {
        if (!n->schema)
            continue;
        /* the agent's settings hold secrets; sessions show other users */
        if (!strcmp(n->schema->module->name, VHA_MOD) ||
            !strcmp(n->schema->module->name, "ietf-netconf-monitoring")) {
            if (n == *tree)
                *tree = next;
            lyd_free_tree(n);
        } else if (!strcmp(n->schema->module->name, VMH_MOD)) {
            vh = n;
        }
    }
    if (!vh)
        goto done;
    /* VMs first, so that faults and assignments can be judged */
    LY_LIST_FOR_SAFE(lyd_child(vh), next, n)
    {
        const char *m, *host;

        if (strcmp(n->schema->name, "vm"))
            continue;
        m = vmh_tree_str(n, "vnf-manager");
        if (m && g_hash_table_contains(mine, m)) {
            g_hash_table_add(vms, (gpointer)lyd_get_value(lyd_child(n)));
            if ((host = vmh_tree_str(n, "host")))
                g_hash_table_add(hosts, (gpointer)host);
        } else {
            lyd_free_tree(n);
        }
    }
    LY_LIST_FOR_SAFE(lyd_child(vh), next, n)
    {
        const char *name = n->schema->name;
        bool keep = true;

        if (!strcmp(name, "fault")) {
            const char *vm = vmh_tree_str(n, "vm"), *host = vmh_tree_str(n, "host");

            keep = vm ? g_hash_table_contains(vms, vm) : host && g_hash_table_contains(hosts, host);
        } else if (!strcmp(name, "vm-assignment")) {
            const char *m = vmh_tree_str(n, "vnf-manager");
            const char *uuid = lyd_get_value(lyd_child(n));

            keep = m ? g_hash_table_contains(mine, m)
                     : g_hash_table_contains(vms, uuid) || vmh_acl_owns_vm(srv, mine, uuid);
        } else if (!strcmp(name, "vnf-manager")) {
            keep = g_hash_table_contains(mine, lyd_get_value(lyd_child(n)));
        } else if (!strcmp(name, "host")) {
            struct lyd_node *c, *cn;

            /* a URI can name a key file; a path is the operator's business */
            LY_LIST_FOR_SAFE(lyd_child(n), cn, c)
            {
                if (!strcmp(c->schema->name, "uri") || !strcmp(c->schema->name, "sysfs-root"))
                    lyd_free_tree(c);
            }
        }
        if (!keep)
            lyd_free_tree(n);
    }
done:
    g_hash_table_destroy(mine);
    g_hash_table_destroy(vms);
    g_hash_table_destroy(hosts);
}

/* --- writing --- */

struct vmh_acl_edit {
    struct vmh_nc_server *srv;
    const struct vmh_nc_session *s;
    GHashTable *mine;
    const struct lyd_node *before, *after; /* vm-health containers, or NULL */
    char *why, *path;
};

static const char *
vmh_acl_op(const struct lyd_node *n, const char *inherited)
{
    struct lyd_meta *m = lyd_find_meta(n->meta, NULL, "yang:operation");

    return m ? lyd_get_meta_value(m) : inherited;
}

static const struct lyd_node *
vmh_acl_match(const struct lyd_node *container, const struct lyd_node *entry)
{
    struct lyd_node *match = NULL;

    if (!container || !lyd_child(container))
        return NULL;
    return lyd_find_sibling_first(lyd_child(container), entry, &match) == LY_SUCCESS ? match : NULL;
}

static bool vmh_acl_deny(struct vmh_acl_edit *a, const struct lyd_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool
vmh_acl_deny(struct vmh_acl_edit *a, const struct lyd_node *n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    a->why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    a->path = lyd_path(n, LYD_PATH_STD, NULL, 0);
    return false;
}

/* A vm-assignment entry may change when the VM is the user's before, and
 * names none but the user's managers before and after. */
static bool
vmh_acl_assignment(struct vmh_acl_edit *a, const struct lyd_node *entry)
{
    const char *uuid = lyd_get_value(lyd_child(entry));
    const struct lyd_node *b = vmh_acl_match(a->before, entry);
    const struct lyd_node *af = vmh_acl_match(a->after, entry);
    const char *bm = b ? vmh_tree_str(b, "vnf-manager") : NULL;
    const char *am = af ? vmh_tree_str(af, "vnf-manager") : NULL;

    if (bm ? !g_hash_table_contains(a->mine, bm) : !vmh_acl_owns_vm(a->srv, a->mine, uuid))
        return vmh_acl_deny(a, entry, "VM %s is not managed by a VNF manager of user '%s'", uuid,
                            a->s->user);
    if (am && !g_hash_table_contains(a->mine, am))
        return vmh_acl_deny(a, entry,
                            "user '%s' may assign VM %s only to its own VNF managers, not '%s'",
                            a->s->user, uuid, am);
    return true;
}

static bool
vmh_acl_manager(struct vmh_acl_edit *a, const struct lyd_node *entry, const char *op)
{
    const char *name = lyd_get_value(lyd_child(entry));
    const struct lyd_node *c;

    if (strcmp(op, "none"))
        return vmh_acl_deny(a, entry, "creating or deleting a VNF manager needs the admin role");
    if (!g_hash_table_contains(a->mine, name))
        return vmh_acl_deny(a, entry, "VNF manager '%s' is not one of user '%s'", name, a->s->user);
    LY_LIST_FOR(lyd_child(entry), c)
    {
        if (lysc_is_key(c->schema))
            continue;
        if (strcmp(c->schema->name, "preprocessing-time"))
            return vmh_acl_deny(a, c,
                                "only the preprocessing-time of a VNF manager is open to "
                                "its users");
    }
    return true;
}

static bool
vmh_acl_walk(struct vmh_acl_edit *a, const struct lyd_node *first, const char *inherited)
{
    const struct lyd_node *n;

    LY_LIST_FOR(first, n)
    {
        const char *op = vmh_acl_op(n, inherited);
        const struct lysc_node *sn = n->schema;
        bool top_vmh =
            lyd_parent(n) && !lyd_parent(lyd_parent(n)) && !strcmp(sn->module->name, VMH_MOD);

        if (top_vmh && sn->nodetype == LYS_LIST && !strcmp(sn->name, "vm-assignment")) {
            if (!vmh_acl_assignment(a, n))
                return false;
        } else if (top_vmh && sn->nodetype == LYS_LIST && !strcmp(sn->name, "vnf-manager")) {
            if (!vmh_acl_manager(a, n, op))
                return false;
        } else if (sn->nodetype == LYS_CONTAINER && !(sn->flags & LYS_PRESENCE) && lyd_child(n)) {
            /* judged by what changes inside */
            if (!vmh_acl_walk(a, lyd_child(n), op))
                return false;
        } else {
            return vmh_acl_deny(a, n, "changing %s needs the admin role", sn->name);
        }
    }
    return true;
}

static const struct lyd_node *
vmh_acl_top(const struct lyd_node *tree)
{
    const struct lyd_node *n;

    LY_LIST_FOR(tree, n)
    {
        if (n->schema && !strcmp(n->schema->module->name, VMH_MOD) &&
            !strcmp(n->schema->name, "vm-health"))
            return n;
    }
    return NULL;
}

char *
vmh_acl_edit(struct vmh_nc_server *srv, const struct vmh_nc_session *s,
             const struct lyd_node *before, const struct lyd_node *after, char **path)
{
    struct vmh_acl_edit a = {.srv = srv, .s = s};
    struct lyd_node *diff = NULL;

    *path = NULL;
    if (s->admin)
        return NULL;
    if (lyd_diff_siblings(before, after, 0, &diff) != LY_SUCCESS)
        return g_strdup("cannot compare the edit with the running configuration");
    a.mine = vmh_acl_managers(srv, s->user);
    a.before = vmh_acl_top(before);
    a.after = vmh_acl_top(after);
    vmh_acl_walk(&a, diff, "none");
    g_hash_table_destroy(a.mine);
    lyd_free_siblings(diff);
    *path = a.path;
    return a.why;
}
