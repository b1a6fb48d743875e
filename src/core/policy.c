#include "core/policy.h"

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
