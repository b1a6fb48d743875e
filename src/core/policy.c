/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "core/policy.h"

#include <stdio.h>
#include <string.h>

void
vmh_policy_effective(const struct vmh_config *cfg, const char *uuid, const struct vmh_vm_meta *meta,
                     struct vmh_effective *out)
{
    const struct vmh_assignment_conf *asg = vmh_config_find_assignment(cfg, uuid);
    const struct vmh_manager_conf *mgr;
    bool meta_ok = meta && meta->present;

    out->manager = NULL;
    if (asg && asg->manager)
        out->manager = asg->manager;
    else if (meta_ok && meta->manager)
        out->manager = meta->manager;
    mgr = vmh_config_find_manager(cfg, out->manager);
    out->manager_configured = mgr != NULL;

    if (asg && asg->has_ppt) {
        out->ppt = asg->ppt;
        out->source = VMH_PPT_VM_ASSIGNMENT;
    } else if (meta_ok && meta->has_ppt) {
        out->ppt = meta->ppt;
        out->source = VMH_PPT_METADATA;
    } else if (mgr && mgr->has_ppt) {
        out->ppt = mgr->ppt;
        out->source = VMH_PPT_VNF_MANAGER;
    } else {
        out->ppt = cfg->settings.default_ppt;
        out->source = VMH_PPT_DEFAULT;
    }

    out->clamped = cfg->settings.has_max_ppt && out->ppt > cfg->settings.max_ppt;
    if (out->clamped)
        out->ppt = cfg->settings.max_ppt;
}

/* Why a candidate cannot take the VM; NULL when it can. */
static const char *
vmh_policy_unfit(const struct vmh_target_candidate *c, const char *source, uint64_t need_kib,
                 unsigned need_vcpus, bool explicit_target)
{
    if (source && !strcmp(c->name, source))
        return "it is the VM's own host";
    if (!c->migration_target && !explicit_target)
        return "it is not a migration target";
    if (!c->connected)
        return "it is not connected";
    if (!c->healthy)
        return "it is not healthy";
    if (c->maintenance)
        return "it is in maintenance";
    if (!c->room_known)
        return "its free memory and CPUs are not known yet";
    if (c->free_kib < need_kib)
        return "it has not enough free memory";
    /* vCPUs are overcommitted on every cloud host: memory is the limit. */
    return NULL;
}

int
vmh_policy_choose_target(const struct vmh_target_candidate *c, size_t n, const char *source,
                         const char *explicit_target, uint64_t need_kib, unsigned need_vcpus,
                         char *why, size_t why_len)
{
    int best = -1;

    if (explicit_target) {
        for (size_t i = 0; i < n; i++) {
            const char *unfit;

            if (strcmp(c[i].name, explicit_target))
                continue;
            /* An operator may name a host that is not a default target. */
            unfit = vmh_policy_unfit(&c[i], source, need_kib, need_vcpus, true);
            if (!unfit)
                return (int)i;
            snprintf(why, why_len, "target host %s cannot take the VM: %s", explicit_target, unfit);
            return -1;
        }
        snprintf(why, why_len, "target host %s is not configured", explicit_target);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (vmh_policy_unfit(&c[i], source, need_kib, need_vcpus, false))
            continue;
        if (best < 0 || c[i].priority > c[best].priority ||
            (c[i].priority == c[best].priority && c[i].free_kib > c[best].free_kib))
            best = (int)i;
    }
    if (best < 0)
        snprintf(why, why_len,
                 "no target host: none is a connected, healthy migration target out of "
                 "maintenance with %llu KiB of memory free",
                 (unsigned long long)need_kib);
    return best;
}
