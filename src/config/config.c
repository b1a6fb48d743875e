/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config/config.h"
#include "config/tree.h"
#include "config/txn.h"

#include "util/log.h"

#include <ctype.h>
#include <glib.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef VMH_YANG_SEARCH_PATH
#define VMH_YANG_SEARCH_PATH "yang"
#endif

/* What the NETCONF server implements of ietf-netconf; libnetconf2 derives
 * the advertised capabilities from these features. */
static const char *vmh_netconf_features[] = {
    "writable-running", "rollback-on-error", "validate", "startup", "xpath", NULL};

int
vmh_yang_ctx_new(const char *search_path, struct ly_ctx **out)
{
    struct ly_ctx *ctx = NULL;
    const char *path = search_path;
    char *dirs, *save = NULL;

    if (!path)
        path = getenv("VMH_YANG_PATH");
    if (!path)
        path = VMH_YANG_SEARCH_PATH;
    if (ly_ctx_new(NULL, LY_CTX_DISABLE_SEARCHDIR_CWD, &ctx) != LY_SUCCESS) {
        log_err("config", "cannot create a libyang context");
        return -1;
    }
    dirs = strdup(path);
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save))
        ly_ctx_set_searchdir(ctx, d); /* a missing directory is not an error */
    free(dirs);

    /* The NETCONF server's modules are loaded here, before any data tree
     * exists: loading a module later recompiles the context, which
     * invalidates trees and drops libnetconf2's RPC callbacks. */
    if (!ly_ctx_load_module(ctx, VMH_MOD, NULL, NULL) ||
        !ly_ctx_load_module(ctx, VHA_MOD, NULL, NULL) ||
        !ly_ctx_load_module(ctx, "ietf-netconf", NULL, vmh_netconf_features) ||
        !ly_ctx_load_module(ctx, "ietf-netconf-with-defaults", NULL, NULL) ||
        !ly_ctx_load_module(ctx, "ietf-netconf-monitoring", NULL, NULL) ||
        !ly_ctx_load_module(ctx, "notifications", NULL, NULL) ||
        !ly_ctx_load_module(ctx, "nc-notifications", NULL, NULL)) {
        char *err = vmh_config_ly_error(ctx, "loading the YANG modules");

        log_err("config", "%s (search path %s)", err, path);
        free(err);
        ly_ctx_destroy(ctx);
        return -1;
    }
    *out = ctx;
    return 0;
}

/* libyang words its locations as 'Data location "/path", line number 3.';
 * an operator reads 'FILE:3: /path: reason' faster, as from a compiler. */
static void
vmh_config_split_location(const char *loc, char **path, long *line)
{
    const char *q1 = strchr(loc, '"');
    const char *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
    const char *ln = strcasestr(loc, "line number ");

    *path = q2 ? g_strndup(q1 + 1, (gsize)(q2 - q1 - 1)) : NULL;
    *line = ln ? strtol(ln + strlen("line number "), NULL, 10) : 0;
    if (!*path && !*line)
        *path = g_strdup(loc);
}

/* libyang quotes the offending input, newlines and all: an operator's
 * error is one line. */
static char *
vmh_config_one_line(char *s)
{
    GString *out = g_string_sized_new(strlen(s) + 8);

    for (const char *p = s; *p; p++) {
        if (*p == '\n')
            g_string_append(out, "\\n");
        else if ((unsigned char)*p < 0x20 || *p == 0x7f)
            g_string_append_c(out, '?');
        else
            g_string_append_c(out, *p);
    }
    g_free(s);
    return g_string_free(out, FALSE);
}

char *
vmh_config_ly_error(const struct ly_ctx *ctx, const char *what)
{
    const struct ly_err_item *e = ly_err_last(ctx);
    char *path, *s;
    long line;

    if (!e)
        return g_strdup_printf("%s: unknown error", what);
    if (!e->path)
        return vmh_config_one_line(g_strdup_printf("%s: %s", what, e->msg));
    vmh_config_split_location(e->path, &path, &line);
    if (line > 0 && path)
        s = g_strdup_printf("%s:%ld: %s: %s", what, line, path, e->msg);
    else if (line > 0)
        s = g_strdup_printf("%s:%ld: %s", what, line, e->msg);
    else
        s = g_strdup_printf("%s: %s: %s", what, path, e->msg);
    g_free(path);
    return vmh_config_one_line(s);
}

static LYD_FORMAT
vmh_config_format(const char *path)
{
    const char *dot = strrchr(path, '.');

    if (dot && !strcasecmp(dot, ".xml"))
        return LYD_XML;
    if (dot && !strcasecmp(dot, ".json"))
        return LYD_JSON;
    return LYD_UNKNOWN;
}

/* What YANG cannot say cheaply: a UUID names one VM whatever its case, so
 * two vm-assignment entries that differ only in case are one VM twice. */
static int
vmh_config_check(const struct lyd_node *tree, const char *what, char **err)
{
    const struct lyd_node *vh = NULL, *n;
    GHashTable *seen;
    int rc = 0;

    LY_LIST_FOR(tree, n)
    {
        if (n->schema && !strcmp(n->schema->name, "vm-health") &&
            !strcmp(n->schema->module->name, VMH_MOD))
            vh = n;
    }
    if (!vh)
        return 0;
    seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    LY_LIST_FOR(lyd_child(vh), n)
    {
        const char *uuid;
        char *lower;

        if (strcmp(n->schema->name, "vm-assignment"))
            continue;
        uuid = lyd_get_value(lyd_child(n));
        lower = g_ascii_strdown(uuid, -1);
        if (g_hash_table_contains(seen, lower)) {
            *err = g_strdup_printf("%s: /%s:vm-health/vm-assignment[uuid='%s']: duplicates the "
                                   "assignment of VM %s (UUIDs are not case-sensitive)",
                                   what, VMH_MOD, uuid, lower);
            g_free(lower);
            rc = -1;
            break;
        }
        g_hash_table_add(seen, lower);
    }
    g_hash_table_destroy(seen);
    return rc;
}

static int
vmh_config_parse(struct ly_ctx *ctx, struct ly_in *in, LYD_FORMAT format, const char *what,
                 struct lyd_node **tree, char **err)
{
    LY_ERR rc;
    uint32_t prev = ly_log_options(LY_LOSTORE_LAST);

    ly_err_clean(ctx, NULL);
    rc = lyd_parse_data(ctx, NULL, in, format, LYD_PARSE_STRICT | LYD_PARSE_NO_STATE,
                        LYD_VALIDATE_NO_STATE, tree);
    ly_log_options(prev);
    if (rc != LY_SUCCESS) {
        *err = vmh_config_ly_error(ctx, what);
        *tree = NULL;
        return -1;
    }
    if (vmh_config_check(*tree, what, err) < 0) {
        lyd_free_siblings(*tree);
        *tree = NULL;
        return -1;
    }
    return 0;
}

int
vmh_config_load_file(struct ly_ctx *ctx, const char *path, struct lyd_node **tree, char **err)
{
    LYD_FORMAT format = vmh_config_format(path);
    struct ly_in *in = NULL;
    int rc;

    *err = NULL;
    if (format == LYD_UNKNOWN) {
        *err = g_strdup_printf("%s: unknown format: the file name must end in .xml or .json", path);
        return -EINVAL;
    }
    if (ly_in_new_filepath(path, 0, &in) != LY_SUCCESS) {
        *err = g_strdup_printf("%s: cannot read: %s", path, strerror(errno));
        return -errno;
    }
    rc = vmh_config_parse(ctx, in, format, path, tree, err);
    ly_in_free(in, 0);
    return rc;
}

int
vmh_config_load_mem(struct ly_ctx *ctx, const char *data, LYD_FORMAT format, struct lyd_node **tree,
                    char **err)
{
    struct ly_in *in = NULL;
    int rc;

    *err = NULL;
    if (ly_in_new_memory(data, &in) != LY_SUCCESS) {
        *err = g_strdup("configuration: out of memory");
        return -ENOMEM;
    }
    rc = vmh_config_parse(ctx, in, format, "configuration", tree, err);
    ly_in_free(in, 0);
    return rc;
}

/* --- the engine's view --- */

static bool
vmh_u32(const struct lyd_node *parent, const char *name, uint32_t *out)
{
    const char *v = vmh_tree_str(parent, name);

    if (!v)
        return false;
    *out = (uint32_t)strtoul(v, NULL, 10);
    return true;
}

static bool
vmh_dec(const struct lyd_node *parent, const char *name, double *out)
{
    const char *v = vmh_tree_str(parent, name);

    if (!v)
        return false;
    *out = strtod(v, NULL);
    return true;
}

static bool
vmh_bool(const struct lyd_node *parent, const char *name, bool dflt)
{
    const char *v = vmh_tree_str(parent, name);

    return v ? !strcmp(v, "true") : dflt;
}

static char *
vmh_dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static const struct lyd_node *
vmh_top(const struct lyd_node *tree, const char *module, const char *name)
{
    const struct lyd_node *n;

    LY_LIST_FOR(tree, n)
    {
        if (n->schema && !strcmp(n->schema->name, name) && !strcmp(n->schema->module->name, module))
            return n;
    }
    return NULL;
}

static void
vmh_config_build_settings(const struct lyd_node *vh, struct vmh_config *cfg)
{
    const struct lyd_node *s = vh ? vmh_tree_child(vh, "settings") : NULL;
    const struct lyd_node *t = vh ? vmh_tree_child(vh, "thresholds") : NULL;
    uint32_t v;

    /* Validation added every default, so each leaf with one is present. */
    vmh_u32(s, "default-preprocessing-time", &cfg->settings.default_ppt);
    cfg->settings.has_max_ppt = vmh_u32(s, "max-preprocessing-time", &cfg->settings.max_ppt);
    vmh_u32(s, "poll-interval", &cfg->settings.poll_interval_ms);
    vmh_u32(s, "shutdown-timeout", &cfg->settings.shutdown_timeout);
    if (vmh_u32(s, "max-concurrent-migrations", &v))
        cfg->settings.max_concurrent_migrations = (uint16_t)v;
    cfg->settings.cancel_on_clear = vmh_bool(s, "cancel-on-clear", true);

    cfg->thresholds.has_temp_high = vmh_dec(t, "temperature-high", &cfg->thresholds.temp_high);
    cfg->thresholds.has_temp_critical =
        vmh_dec(t, "temperature-critical", &cfg->thresholds.temp_critical);
    vmh_dec(t, "temperature-hysteresis", &cfg->thresholds.temp_hysteresis);
    cfg->thresholds.has_memory_ce_rate =
        vmh_u32(t, "memory-ce-rate", &cfg->thresholds.memory_ce_rate);
}

static int
vmh_config_build_lists(const struct lyd_node *vh, struct vmh_config *cfg)
{
    const struct lyd_node *n;
    size_t nh = 0, nm = 0, na = 0;

    cfg->hosts = calloc(vmh_tree_count(vh, "host") + 1, sizeof *cfg->hosts);
    cfg->managers = calloc(vmh_tree_count(vh, "vnf-manager") + 1, sizeof *cfg->managers);
    cfg->assignments = calloc(vmh_tree_count(vh, "vm-assignment") + 1, sizeof *cfg->assignments);
    if (!cfg->hosts || !cfg->managers || !cfg->assignments)
        return -ENOMEM;

    LY_LIST_FOR(lyd_child(vh), n)
    {
        const char *name = n->schema->name;
        uint32_t v;

        if (!strcmp(name, "host")) {
            struct vmh_host_conf *h = &cfg->hosts[nh++];

            h->name = vmh_dup(vmh_tree_str(n, "name"));
            h->uri = vmh_dup(vmh_tree_str(n, "uri"));
            h->sysfs_root = vmh_dup(vmh_tree_str(n, "sysfs-root"));
            h->migration_target = vmh_bool(n, "migration-target", true);
            h->maintenance = vmh_bool(n, "maintenance", false);
            h->shared_storage = vmh_bool(n, "shared-storage", false);
            if (vmh_u32(n, "priority", &v))
                h->priority = (uint16_t)v;
        } else if (!strcmp(name, "vnf-manager")) {
            struct vmh_manager_conf *m = &cfg->managers[nm++];

            /* Its users are NETCONF's business (src/netconf/access.c reads
             * them from the configuration tree). */
            m->name = vmh_dup(vmh_tree_str(n, "name"));
            m->has_ppt = vmh_u32(n, "preprocessing-time", &m->ppt);
        } else if (!strcmp(name, "vm-assignment")) {
            struct vmh_assignment_conf *a = &cfg->assignments[na++];
            const char *uuid = vmh_tree_str(n, "uuid");

            for (size_t i = 0; i < VMH_UUID_LEN && uuid[i]; i++)
                a->uuid[i] = (char)tolower((unsigned char)uuid[i]);
            a->manager = vmh_dup(vmh_tree_str(n, "vnf-manager"));
            a->has_ppt = vmh_u32(n, "preprocessing-time", &a->ppt);
        }
    }
    cfg->n_hosts = nh;
    cfg->n_managers = nm;
    cfg->n_assignments = na;
    return 0;
}

int
vmh_config_build(const struct lyd_node *tree, struct vmh_config **out)
{
    const struct lyd_node *vh = vmh_top(tree, VMH_MOD, "vm-health");
    const struct lyd_node *agent = vmh_top(tree, VHA_MOD, "agent");
    struct vmh_config *cfg = calloc(1, sizeof *cfg);
    const char *state_dir = agent ? vmh_tree_str(agent, "state-dir") : NULL;

    if (!cfg)
        return -ENOMEM;
    vmh_config_build_settings(vh, cfg);
    if (vh && vmh_config_build_lists(vh, cfg) < 0) {
        vmh_config_free(cfg);
        return -ENOMEM;
    }
    cfg->state_dir = strdup(state_dir ? state_dir : VMH_STATE_DIR_DEFAULT);
    vmh_config_index(cfg);
    *out = cfg;
    return 0;
}

/* --- the subscribers of the configuration transaction --- */

/* /nfv-vm-health:vm-health: the engine's view, built in prepare (the only
 * step that can fail: memory), handed over in apply. */
static int
vmh_config_txn_prepare(struct vmh_txn_change *c, void *opaque)
{
    struct vmh_config *cfg;

    (void)opaque;
    if (vmh_config_build(c->new_tree, &cfg) < 0) {
        vmh_txn_refuse(c, VMH_TXN_FAILED, NULL, "out of memory building the configuration");
        return -1;
    }
    c->resource = cfg;
    return 0;
}

static void
vmh_config_txn_abort(struct vmh_txn_change *c, void *opaque)
{
    (void)opaque;
    vmh_config_free(c->resource);
}

struct vmh_config_sub {
    struct vmh_loop *loop;
    struct vmh_engine **engine;
};

static void
vmh_config_txn_apply(struct vmh_txn_change *c, void *opaque)
{
    struct vmh_config_sub *sub = opaque;

    /* The startup load creates the engine; later the engine applies each
     * change as a diff: hosts added and removed, managers and
     * preprocessing times recomputed. */
    if (!*sub->engine)
        *sub->engine = vmh_engine_new(sub->loop, c->resource);
    else
        vmh_engine_rpc_apply_config(*sub->engine, c->resource);
}

static const char *
vmh_config_state_dir(const struct lyd_node *tree)
{
    const struct lyd_node *agent = vmh_top(tree, VHA_MOD, "agent");
    const char *dir = agent ? vmh_tree_str(agent, "state-dir") : NULL;

    return dir ? dir : VMH_STATE_DIR_DEFAULT;
}

/* /vmhealth-agent:agent/state-dir: the journal, the replay log and the
 * SNMP persistent files are open there; moving them while running could
 * split a journal in two.  It takes a restart, and says so. */
static int
vmh_config_txn_state_dir(struct vmh_txn_change *c, void *opaque)
{
    const char *old = vmh_config_state_dir(c->old_tree), *new = vmh_config_state_dir(c->new_tree);

    (void)opaque;
    if (c->startup || !strcmp(old, new))
        return 0;
    vmh_txn_refuse(c, VMH_TXN_UNSUPPORTED, "/vmhealth-agent:agent/state-dir",
                   "the state directory is %s until vmhealthd restarts: changing it to %s takes "
                   "a restart (write it to startup with copy-config, then restart)",
                   old, new);
    return -1;
}

void
vmh_config_subscribe(struct vmh_txn *txn, struct vmh_loop *loop, struct vmh_engine **engine)
{
    static const char *const engine_paths[] = {"/nfv-vm-health:vm-health", NULL};
    static const char *const state_dir_paths[] = {"/vmhealth-agent:agent/state-dir", NULL};
    struct vmh_config_sub *sub = vmh_txn_keep(txn, sizeof *sub);

    sub->loop = loop;
    sub->engine = engine;
    vmh_txn_subscribe(txn, &(struct vmh_txn_subscriber){.name = "engine",
                                                        .paths = engine_paths,
                                                        .prepare = vmh_config_txn_prepare,
                                                        .abort = vmh_config_txn_abort,
                                                        .apply = vmh_config_txn_apply,
                                                        .opaque = sub});
    vmh_txn_subscribe(txn, &(struct vmh_txn_subscriber){.name = "agent",
                                                        .paths = state_dir_paths,
                                                        .validate = vmh_config_txn_state_dir});
}
