/* The operational view of vm-health: the running configuration with the
 * engine's state added, built straight from a snapshot. */
#include "config/config.h"

#include "util/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static LY_ERR
vmh_state_term(struct lyd_node *parent, const struct lys_module *mod, const char *name,
               const char *value)
{
    if (!value)
        return LY_SUCCESS;
    return lyd_new_term(parent, mod, name, value, 0, NULL);
}

static LY_ERR
vmh_state_u64(struct lyd_node *parent, const struct lys_module *mod, const char *name,
              uint64_t value)
{
    char buf[24];

    snprintf(buf, sizeof buf, "%" PRIu64, value);
    return lyd_new_term(parent, mod, name, buf, 0, NULL);
}

static struct lyd_node *
vmh_state_find_host(struct lyd_node *vh, const char *name)
{
    struct lyd_node *n;

    LY_LIST_FOR(lyd_child(vh), n)
    {
        if (!strcmp(n->schema->name, "host")) {
            struct lyd_node *key = lyd_child(n);

            if (key && !strcmp(lyd_get_value(key), name))
                return n;
        }
    }
    return NULL;
}

static LY_ERR
vmh_state_host(struct lyd_node *vh, const struct lys_module *mod, const struct vmh_host_snap *h)
{
    struct lyd_node *host = vmh_state_find_host(vh, h->name);
    struct lyd_node *state;
    LY_ERR rc = LY_SUCCESS;

    if (!host)
        return LY_SUCCESS; /* removed from the configuration since the snapshot */
    if (lyd_new_inner(host, mod, "state", 0, &state))
        return LY_EMEM;
    rc |= vmh_state_term(state, mod, "connection", vmh_connection_str(h->connection));
    rc |= vmh_state_term(state, mod, "last-error", h->last_error);
    rc |= vmh_state_term(state, mod, "health", vmh_health_str(h->health));
    rc |= vmh_state_u64(state, mod, "vm-count", h->vm_count);
    return rc;
}

static LY_ERR
vmh_state_vm(struct lyd_node *vh, const struct lys_module *mod, const struct vmh_vm_snap *v)
{
    struct lyd_node *vm, *mig;
    LY_ERR rc = LY_SUCCESS;

    if (lyd_new_list(vh, mod, "vm", 0, &vm, v->uuid))
        return LY_EMEM;
    rc |= vmh_state_term(vm, mod, "name", v->name);
    rc |= vmh_state_term(vm, mod, "host", v->host);
    rc |= vmh_state_term(vm, mod, "power-state", vmh_power_state_str(v->power));
    rc |= vmh_state_term(vm, mod, "health", vmh_health_str(v->health));
    rc |= vmh_state_term(vm, mod, "vnf-manager", v->manager);
    rc |= vmh_state_u64(vm, mod, "preprocessing-time", v->ppt);
    rc |= vmh_state_term(vm, mod, "preprocessing-time-source", vmh_ppt_source_str(v->ppt_source));
    rc |= vmh_state_u64(vm, mod, "memory", v->memory_kib);
    rc |= vmh_state_u64(vm, mod, "vcpus", v->vcpus);
    if (lyd_new_inner(vm, mod, "migration", 0, &mig))
        return LY_EMEM;
    rc |= vmh_state_term(mig, mod, "state", vmh_migration_state_str(v->migration));
    return rc;
}

int
vmh_state_build(const struct lyd_node *running, const struct vmh_snapshot *snap,
                struct lyd_node **out)
{
    const struct lyd_node *n;
    struct lyd_node *tree = NULL, *vh = NULL;
    const struct lys_module *mod;
    struct ly_ctx *ctx;
    LY_ERR rc = LY_SUCCESS;

    *out = NULL;
    if (!running)
        return -1;
    ctx = (struct ly_ctx *)LYD_CTX(running);
    mod = ly_ctx_get_module_implemented(ctx, VMH_MOD);
    if (lyd_dup_siblings(running, NULL, LYD_DUP_RECURSIVE | LYD_DUP_WITH_FLAGS, &tree))
        goto error;
    LY_LIST_FOR(tree, n)
    {
        if (n->schema && n->schema->module == mod && !strcmp(n->schema->name, "vm-health"))
            vh = (struct lyd_node *)n;
    }
    if (!vh) {
        if (lyd_new_inner(NULL, mod, "vm-health", 0, &vh))
            goto error;
        lyd_insert_sibling(tree, vh, &tree);
    }
    for (size_t i = 0; i < snap->n_hosts; i++)
        rc |= vmh_state_host(vh, mod, &snap->hosts[i]);
    for (size_t i = 0; i < snap->n_vms; i++)
        rc |= vmh_state_vm(vh, mod, &snap->vms[i]);
    if (rc)
        goto error;
    *out = tree;
    return 0;

error:
    log_err("config", "cannot build the operational data tree: %s", ly_errmsg(ctx));
    lyd_free_siblings(tree);
    return -1;
}
