/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Policy: pure functions that decide from configuration and observed facts,
 * with no state of their own, so that every rule is unit-tested alone. */
#ifndef VMH_CORE_POLICY_H
#define VMH_CORE_POLICY_H

#include "core/model.h"

struct vmh_effective {
    const char *manager;        /* NULL: the VM belongs to no manager */
    bool manager_configured;    /* the manager is a configured vnf-manager */
    uint32_t ppt;               /* effective preprocessing time, seconds */
    enum vmh_ppt_source source; /* where ppt came from */
    bool clamped;               /* cut down to max-preprocessing-time */
};

/* A VM's manager and effective preprocessing time.  The manager is the
 * vm-assignment's, else the domain metadata's.  The time is the
 * vm-assignment's, else the metadata's, else the manager's, else
 * default-preprocessing-time; then clamped to max-preprocessing-time.
 * out->manager points into cfg or meta. */
void vmh_policy_effective(const struct vmh_config *cfg, const char *uuid,
                          const struct vmh_vm_meta *meta, struct vmh_effective *out);

/* A host that could receive a migrating VM, as the engine sees it. */
struct vmh_target_candidate {
    const char *name;
    bool migration_target; /* configured as a target */
    bool connected;
    bool healthy; /* health normal */
    bool maintenance;
    bool room_known;
    uint64_t free_kib; /* measured room minus what is already promised */
    int64_t free_vcpus;
    uint16_t priority; /* higher first */
};

/* Chooses where a VM needing need_kib goes from source (need_vcpus is
 * reported, not enforced: vCPUs are overcommitted, memory is not):
 * the explicit target when given (checked the same way), else the fit
 * candidate of highest priority, then most free memory.  Returns its index,
 * or -1 with why (a sentence naming what is wrong) filled in. */
int vmh_policy_choose_target(const struct vmh_target_candidate *c, size_t n, const char *source,
                             const char *explicit_target, uint64_t need_kib, unsigned need_vcpus,
                             char *why, size_t why_len);

#endif
