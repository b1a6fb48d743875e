/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Children of a libyang data node by schema name, whatever their module:
 * the lookups every parser of a subtree and every RPC handler needs.  Not
 * lyd_find_path, which wants prefixes and logs a warning for every absent
 * node. */
#ifndef VMH_CONFIG_TREE_H
#define VMH_CONFIG_TREE_H

#include <libyang/libyang.h>
#include <stddef.h>

/* The first child of parent named name; NULL when none (or parent NULL). */
struct lyd_node *vmh_tree_child(const struct lyd_node *parent, const char *name);
/* The value of that child; NULL when absent. */
const char *vmh_tree_str(const struct lyd_node *parent, const char *name);
/* How many children of parent are named name (list entries, leaf-list values). */
size_t vmh_tree_count(const struct lyd_node *parent, const char *name);

#endif
