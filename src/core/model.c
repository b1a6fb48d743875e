/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "core/model.h"

#include <stdlib.h>
#include <string.h>

#define VMH_ENUM_NAME(id, name) [id] = name,
static const char *const vmh_power_state_names[] = {VMH_POWER_STATES(VMH_ENUM_NAME)};
static const char *const vmh_health_names[] = {VMH_HEALTHS(VMH_ENUM_NAME)};
static const char *const vmh_connection_names[] = {VMH_CONNECTIONS(VMH_ENUM_NAME)};
static const char *const vmh_migration_state_names[] = {VMH_MIGRATION_STATES(VMH_ENUM_NAME)};
static const char *const vmh_migration_step_names[] = {VMH_MIGRATION_STEPS(VMH_ENUM_NAME)};
static const char *const vmh_ppt_source_names[] = {VMH_PPT_SOURCES(VMH_ENUM_NAME)};
static const char *const vmh_cause_names[] = {VMH_CAUSES(VMH_ENUM_NAME)};
static const char *const vmh_severity_names[] = {VMH_SEVERITIES(VMH_ENUM_NAME)};
#undef VMH_ENUM_NAME

#define VMH_ENUM_STR(table, v)                                                                     \
    ((size_t)(v) < sizeof(table) / sizeof((table)[0]) ? (table)[v] : "invalid")

const char *
vmh_power_state_str(enum vmh_power_state s)
{
    return VMH_ENUM_STR(vmh_power_state_names, s);
}

const char *
vmh_health_str(enum vmh_health h)
{
    return VMH_ENUM_STR(vmh_health_names, h);
}

const char *
vmh_connection_str(enum vmh_connection c)
{
    return VMH_ENUM_STR(vmh_connection_names, c);
}

const char *
vmh_migration_state_str(enum vmh_migration_state m)
{
    return VMH_ENUM_STR(vmh_migration_state_names, m);
}

const char *
vmh_migration_step_str(enum vmh_migration_step s)
{
    return VMH_ENUM_STR(vmh_migration_step_names, s);
}

const char *
vmh_ppt_source_str(enum vmh_ppt_source s)
{
    return VMH_ENUM_STR(vmh_ppt_source_names, s);
}

const char *
vmh_cause_str(enum vmh_cause c)
{
    return VMH_ENUM_STR(vmh_cause_names, c);
}

const char *
vmh_severity_str(enum vmh_severity s)
{
    return VMH_ENUM_STR(vmh_severity_names, s);
}

int
vmh_cause_from_str(const char *name)
{
    const char *colon = name ? strchr(name, ':') : NULL;

    if (!name)
        return -1;
    if (colon)
        name = colon + 1;
    /* "none" is the absence of a cause, not one a client may name. */
    for (size_t i = 1; i < sizeof vmh_cause_names / sizeof *vmh_cause_names; i++)
        if (!strcmp(vmh_cause_names[i], name))
            return (int)i;
    return -1;
}

int
vmh_severity_from_str(const char *name)
{
    for (size_t i = 0; name && i < sizeof vmh_severity_names / sizeof *vmh_severity_names; i++)
        if (!strcmp(vmh_severity_names[i], name))
            return (int)i;
    return -1;
}

void
vmh_config_free(struct vmh_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_hosts; i++) {
        free(cfg->hosts[i].name);
        free(cfg->hosts[i].uri);
        free(cfg->hosts[i].sysfs_root);
    }
    free(cfg->hosts);
    for (size_t i = 0; i < cfg->n_managers; i++)
        free(cfg->managers[i].name);
    free(cfg->managers);
    for (size_t i = 0; i < cfg->n_assignments; i++)
        free(cfg->assignments[i].manager);
    free(cfg->assignments);
    free(cfg->state_dir);
    free(cfg);
}

static int
vmh_host_conf_cmp(const void *a, const void *b)
{
    return strcmp(((const struct vmh_host_conf *)a)->name, ((const struct vmh_host_conf *)b)->name);
}

static int
vmh_manager_conf_cmp(const void *a, const void *b)
{
    return strcmp(((const struct vmh_manager_conf *)a)->name,
                  ((const struct vmh_manager_conf *)b)->name);
}

static int
vmh_assignment_conf_cmp(const void *a, const void *b)
{
    return strcmp(((const struct vmh_assignment_conf *)a)->uuid,
                  ((const struct vmh_assignment_conf *)b)->uuid);
}

void
vmh_config_index(struct vmh_config *cfg)
{
    if (cfg->n_hosts)
        qsort(cfg->hosts, cfg->n_hosts, sizeof *cfg->hosts, vmh_host_conf_cmp);
    if (cfg->n_managers)
        qsort(cfg->managers, cfg->n_managers, sizeof *cfg->managers, vmh_manager_conf_cmp);
    if (cfg->n_assignments)
        qsort(cfg->assignments, cfg->n_assignments, sizeof *cfg->assignments,
              vmh_assignment_conf_cmp);
}

const struct vmh_host_conf *
vmh_config_find_host(const struct vmh_config *cfg, const char *name)
{
    struct vmh_host_conf key = {.name = (char *)name};

    if (!cfg->n_hosts)
        return NULL;
    return bsearch(&key, cfg->hosts, cfg->n_hosts, sizeof key, vmh_host_conf_cmp);
}

const struct vmh_manager_conf *
vmh_config_find_manager(const struct vmh_config *cfg, const char *name)
{
    struct vmh_manager_conf key = {.name = (char *)name};

    if (!cfg->n_managers || !name)
        return NULL;
    return bsearch(&key, cfg->managers, cfg->n_managers, sizeof key, vmh_manager_conf_cmp);
}

const struct vmh_assignment_conf *
vmh_config_find_assignment(const struct vmh_config *cfg, const char *uuid)
{
    struct vmh_assignment_conf key;

    if (!cfg->n_assignments || strlen(uuid) != VMH_UUID_LEN)
        return NULL;
    memcpy(key.uuid, uuid, sizeof key.uuid);
    return bsearch(&key, cfg->assignments, cfg->n_assignments, sizeof key, vmh_assignment_conf_cmp);
}

void
vmh_vm_meta_clear(struct vmh_vm_meta *meta)
{
    free(meta->manager);
    free(meta->error);
    memset(meta, 0, sizeof *meta);
}

void
vmh_domain_info_clear(struct vmh_domain_info *info)
{
    free(info->name);
    free(info->definition);
    vmh_vm_meta_clear(&info->meta);
    memset(info, 0, sizeof *info);
}

void
vmh_domain_info_free_array(struct vmh_domain_info *infos, size_t n)
{
    for (size_t i = 0; i < n; i++)
        vmh_domain_info_clear(&infos[i]);
    free(infos);
}

int
vmh_migration_step_from_str(const char *name)
{
    for (size_t i = 0;
         name && i < sizeof vmh_migration_step_names / sizeof *vmh_migration_step_names; i++)
        if (!strcmp(vmh_migration_step_names[i], name))
            return (int)i;
    return -1;
}
