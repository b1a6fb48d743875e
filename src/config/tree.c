/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config/tree.h"

#include <string.h>

struct lyd_node *
vmh_tree_child(const struct lyd_node *parent, const char *name)
{
    struct lyd_node *n;

    LY_LIST_FOR(lyd_child(parent), n)
    {
        if (n->schema && !strcmp(n->schema->name, name))
            return n;
    }
    return NULL;
}

const char *
vmh_tree_str(const struct lyd_node *parent, const char *name)
{
    const struct lyd_node *n = vmh_tree_child(parent, name);

    return n ? lyd_get_value(n) : NULL;
}

size_t
vmh_tree_count(const struct lyd_node *parent, const char *name)
{
    const struct lyd_node *n;
    size_t count = 0;

    LY_LIST_FOR(lyd_child(parent), n)
    {
        if (n->schema && !strcmp(n->schema->name, name))
            count++;
    }
    return count;
}
