/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The operational view of vm-health: the running configuration with the
 * engine's state added, built straight from a snapshot. */
#include "config/config.h"

#include "util/log.h"
#include "util/time.h"

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
vmh_state_dec(struct lyd_node *parent, const struct lys_module *mod, const char *name, double value)
{
    char buf[32];

    snprintf(buf, sizeof buf, "%.1f", value);
    return lyd_new_term(parent, mod, name, buf, 0, NULL);
}

static LY_ERR
vmh_state_time(struct lyd_node *parent, const struct lys_module *mod, const char *name,
               int64_t real_ms)
{
    char buf[40];

    if (!real_ms)
        return LY_SUCCESS;
    vmh_time_format(real_ms, buf, sizeof buf);
    return lyd_new_term(parent, mod, name, buf, 0, NULL);
}

static LY_ERR
vmh_state_host(struct lyd_node *vh, const struct lys_module *mod, const struct vmh_host_snap *h)
{
    struct lyd_node *host = vmh_state_find_host(vh, h->name);
    struct lyd_node *state, *mem;
    LY_ERR rc = LY_SUCCESS;

    if (!host)
        return LY_SUCCESS; /* removed from the configuration since the snapshot */
    if (lyd_new_inner(host, mod, "state", 0, &state))
        return LY_EMEM;
    rc |= vmh_state_term(state, mod, "connection", vmh_connection_str(h->connection));
    rc |= vmh_state_term(state, mod, "last-error", h->last_error);
    rc |= vmh_state_term(state, mod, "health", vmh_health_str(h->health));
    rc |= vmh_state_term(state, mod, "sysfs-monitoring",
                         h->sysfs_monitoring ? "active" : "unavailable");
    for (size_t i = 0; i < h->n_sensors; i++) {
        const struct vmh_sensor_snap *t = &h->sensors[i];
        struct lyd_node *temp;

        if (lyd_new_list(state, mod, "temperature", 0, &temp, t->name))
            return LY_EMEM;
        rc |= vmh_state_dec(temp, mod, "value", t->value);
        if (t->has_high)
            rc |= vmh_state_dec(temp, mod, "high", t->high);
        if (t->has_critical)
            rc |= vmh_state_dec(temp, mod, "critical", t->critical);
    }
    if (lyd_new_inner(state, mod, "memory-errors", 0, &mem))
        return LY_EMEM;
    rc |= vmh_state_u64(mem, mod, "corrected", h->mem_corrected);
    rc |= vmh_state_u64(mem, mod, "uncorrected", h->mem_uncorrected);
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
    rc |= vmh_state_time(mig, mod, "deadline", v->deadline_ms);
    rc |= vmh_state_term(mig, mod, "target-host", v->target_host);
    rc |= vmh_state_term(mig, mod, "last-error", v->migration_error);
    return rc;
}

static LY_ERR
vmh_state_fault(struct lyd_node *vh, const struct lys_module *mod, const struct vmh_fault_snap *f)
{
    struct lyd_node *fault;
    char id[24], cause[96];
    LY_ERR rc = LY_SUCCESS;

    snprintf(id, sizeof id, "%" PRIu64, f->id);
    snprintf(cause, sizeof cause, "%s:%s", VMH_MOD, vmh_cause_str(f->cause));
    if (lyd_new_list(vh, mod, "fault", 0, &fault, id))
        return LY_EMEM;
    rc |= vmh_state_term(fault, mod, "host", f->host);
    rc |= vmh_state_term(fault, mod, "vm", f->vm_uuid);
    rc |= vmh_state_term(fault, mod, "cause", cause);
    rc |= vmh_state_term(fault, mod, "severity", vmh_severity_str(f->severity));
    rc |= vmh_state_time(fault, mod, "detected-at", f->detected_ms);
    rc |= vmh_state_time(fault, mod, "cleared-at", f->cleared_ms);
    rc |= vmh_state_term(fault, mod, "value", f->value);
    rc |= vmh_state_term(fault, mod, "description", f->description);
    return rc;
}

static LY_ERR
vmh_state_stats(struct lyd_node *vh, const struct lys_module *mod, const struct vmh_stats *st)
{
    struct lyd_node *stats;
    LY_ERR rc = LY_SUCCESS;

    if (lyd_new_inner(vh, mod, "statistics", 0, &stats))
        return LY_EMEM;
    rc |= vmh_state_u64(stats, mod, "faults-detected", st->faults_detected);
    rc |= vmh_state_u64(stats, mod, "notifications-sent", st->notifications_sent);
    rc |= vmh_state_u64(stats, mod, "traps-sent", st->traps_sent);
    rc |= vmh_state_u64(stats, mod, "migrations-started", st->migrations_started);
    rc |= vmh_state_u64(stats, mod, "migrations-completed", st->migrations_completed);
    rc |= vmh_state_u64(stats, mod, "migrations-failed", st->migrations_failed);
    return rc;
}

int
vmh_state_build(const struct lyd_node *running, const struct vmh_snapshot *snap,
                struct lyd_node **out)
{
    return vmh_state_build_parts(running, snap, VMH_STATE_ALL, out);
}

int
vmh_state_build_parts(const struct lyd_node *running, const struct vmh_snapshot *snap,
                      unsigned parts, struct lyd_node **out)
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
    for (size_t i = 0; (parts & VMH_STATE_HOSTS) && i < snap->n_hosts; i++)
        rc |= vmh_state_host(vh, mod, &snap->hosts[i]);
    for (size_t i = 0; (parts & VMH_STATE_VMS) && i < snap->n_vms; i++)
        rc |= vmh_state_vm(vh, mod, &snap->vms[i]);
    for (size_t i = 0; (parts & VMH_STATE_FAULTS) && i < snap->n_faults; i++)
        rc |= vmh_state_fault(vh, mod, &snap->faults[i]);
    if (parts & VMH_STATE_STATS) {
        struct vmh_stats stats;

        vmh_snapshot_stats(snap, &stats);
        rc |= vmh_state_stats(vh, mod, &stats);
    }
    if (rc)
        goto error;
    *out = tree;
    return 0;

error:
    log_err("config", "cannot build the operational data tree: %s", ly_errmsg(ctx));
    lyd_free_siblings(tree);
    return -1;
}
