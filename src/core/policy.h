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

#endif
