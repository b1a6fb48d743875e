/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Configuration modelled in YANG: the libyang context with vmhealth's
 * modules, loading and validating a configuration file, turning a validated
 * tree into the engine's view (struct vmh_config), and building the
 * operational data tree from an engine snapshot. */
#ifndef VMH_CONFIG_CONFIG_H
#define VMH_CONFIG_CONFIG_H

#include "core/engine.h"
#include "core/model.h"

#include <libyang/libyang.h>

#define VMH_MOD "nfv-vm-health"
#define VHA_MOD "vmhealth-agent"
/* agent/state-dir's default in vmhealth-agent.yang */
#define VMH_STATE_DIR_DEFAULT "/var/lib/vmhealth"

struct vmh_txn;
struct vmh_loop;

/* A libyang context holding nfv-vm-health and vmhealth-agent.  search_path
 * is a colon separated list of directories; NULL means the built-in one
 * (the source tree, the fetched standard modules, the installed location),
 * which the environment variable VMH_YANG_PATH replaces when set. */
int vmh_yang_ctx_new(const char *search_path, struct ly_ctx **ctx);

/* Parses and validates a configuration file (XML or JSON by extension) as
 * configuration data of every module in ctx.  On failure returns a negative
 * value and *err holds one line naming the file, the node (path and/or line)
 * and the reason; the caller frees it. */
int vmh_config_load_file(struct ly_ctx *ctx, const char *path, struct lyd_node **tree, char **err);

/* Same, for text already in memory (used by the fuzzers and tests). */
int vmh_config_load_mem(struct ly_ctx *ctx, const char *data, LYD_FORMAT format,
                        struct lyd_node **tree, char **err);

/* One line describing the last libyang error of ctx, prefixed with what. */
char *vmh_config_ly_error(const struct ly_ctx *ctx, const char *what);

/* The engine's view of a validated configuration tree. */
int vmh_config_build(const struct lyd_node *tree, struct vmh_config **cfg);

/* Registers the configuration transaction's subscribers of this module:
 * "engine" (/nfv-vm-health:vm-health: the startup load creates the engine
 * on loop into *engine, later changes are applied to it) and "agent"
 * (agent/state-dir, which takes a restart to change). */
void vmh_config_subscribe(struct vmh_txn *txn, struct vmh_loop *loop, struct vmh_engine **engine);

/* The operational view: a copy of the configuration (with defaults) with the
 * state of a snapshot added under vm-health. */
int vmh_state_build(const struct lyd_node *running, const struct vmh_snapshot *snap,
                    struct lyd_node **out);

/* What vmh_state_build_parts() adds to the configuration (vmh_state_build():
 * all of it). */
enum vmh_state_part {
    VMH_STATE_HOSTS = 1 << 0, /* host/state */
    VMH_STATE_VMS = 1 << 1,
    VMH_STATE_FAULTS = 1 << 2,
    VMH_STATE_STATS = 1 << 3,
    VMH_STATE_ALL = 0xf,
    VMH_STATE_PRINTED = VMH_STATE_VMS | VMH_STATE_FAULTS | VMH_STATE_STATS,
};
int vmh_state_build_parts(const struct lyd_node *running, const struct vmh_snapshot *snap,
                          unsigned parts, struct lyd_node **out);

/* data (siblings, NULL for none) printed as XML with opts (LYD_PRINT_WD_*;
 * always shrunk) and with vm-health's VMH_STATE_PRINTED parts written
 * from snap: for data built without them, the same text as libyang prints
 * for data built with them, without building ~15 nodes per VM.  *out is
 * freed with free(). */
int vmh_state_print(const struct ly_ctx *ctx, const struct lyd_node *data,
                    const struct vmh_snapshot *snap, uint32_t opts, char **out);

#endif
