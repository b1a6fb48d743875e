/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Subtree (RFC 6241 section 6) and XPath filters over data trees.  The
 * filter arrives as anyxml content: its nodes may be schema nodes or opaque
 * ones, so names, namespaces and values are read either way. */
#include "netconf/netconf_p.h"

#include <ctype.h>
#include <string.h>

static const char *
vmh_f_ns(const struct lyd_node *f)
{
    if (f->schema)
        return f->schema->module->ns;
    return ((const struct lyd_node_opaq *)f)->name.module_ns;
}

static const char *
vmh_f_value(const struct lyd_node *f)
{
    const char *v;

    if (!f->schema)
        v = ((const struct lyd_node_opaq *)f)->value;
    else if (f->schema->nodetype & LYD_NODE_TERM)
        v = lyd_get_value(f);
    else
        return NULL;
    while (v && isspace((unsigned char)*v))
        v++;
    return v && *v ? v : NULL;
}

static bool
vmh_f_is_content(const struct lyd_node *f)
{
    return !lyd_child(f) && vmh_f_value(f);
}

static bool
vmh_f_same(const struct lyd_node *d, const struct lyd_node *f)
{
    const char *ns = vmh_f_ns(f);

    return d->schema && !strcmp(d->schema->name, LYD_NAME(f)) &&
           (!ns || !*ns || !strcmp(d->schema->module->ns, ns));
}

static bool
vmh_f_value_eq(const struct lyd_node *d, const struct lyd_node *f)
{
    const char *fv = vmh_f_value(f), *dv;
    size_t len;

    if (!(d->schema->nodetype & LYD_NODE_TERM))
        return false;
    dv = lyd_get_value(d);
    len = strlen(fv);
    while (len && isspace((unsigned char)fv[len - 1]))
        len--;
    /* identityref values may carry a prefix in the filter */
    if (strlen(dv) == len && !strncmp(dv, fv, len))
        return true;
    {
        const char *colon = memchr(fv, ':', len), *dcolon = strchr(dv, ':');
        const char *a = dcolon ? dcolon + 1 : dv, *b = colon ? colon + 1 : fv;
        size_t blen = len - (size_t)(b - fv);

        return (colon || dcolon) && strlen(a) == blen && !strncmp(a, b, blen);
    }
}

static int
vmh_f_add(struct lyd_node *out, struct lyd_node **first, const struct lyd_node *d, bool recursive,
          struct lyd_node **dup)
{
    struct lyd_node *n = NULL;
    uint32_t flags = LYD_DUP_WITH_FLAGS | (recursive ? LYD_DUP_RECURSIVE : 0);

    if (lyd_dup_single(d, NULL, flags, &n) != LY_SUCCESS)
        return -1;
    if (out)
        lyd_insert_child(out, n);
    else
        lyd_insert_sibling(*first, n, first);
    if (dup)
        *dup = n;
    return 0;
}

/* Applies the filter children f to the data children d of one parent whose
 * copy is out (NULL with *first for the top level).  Returns 0: the parent
 * does not match; 1: it matches with what was added to out; 2: it matches
 * whole (only content match nodes). */
static int
vmh_f_level(const struct lyd_node *dfirst, const struct lyd_node *ffirst, struct lyd_node *out,
            struct lyd_node **first)
{
    const struct lyd_node *f, *d;
    bool other = false, selected = false;

    LY_LIST_FOR(ffirst, f)
    {
        bool found = false;

        if (!vmh_f_is_content(f)) {
            other = true;
            continue;
        }
        LY_LIST_FOR(dfirst, d)
        {
            if (vmh_f_same(d, f) && vmh_f_value_eq(d, f))
                found = true;
        }
        if (!found)
            return 0;
    }
    if (!other)
        return 2;
    LY_LIST_FOR(ffirst, f)
    {
        LY_LIST_FOR(dfirst, d)
        {
            if (!vmh_f_same(d, f))
                continue;
            if (vmh_f_is_content(f)) {
                if (vmh_f_value_eq(d, f) && !lysc_is_key(d->schema))
                    vmh_f_add(out, first, d, false, NULL);
                continue;
            }
            if (!lyd_child(f)) {
                /* a key is in the copy of its list entry already */
                if (!lysc_is_key(d->schema))
                    vmh_f_add(out, first, d, true, NULL);
                selected = true;
            } else if (d->schema->nodetype & LYD_NODE_INNER) {
                struct lyd_node *shell = NULL;
                int r;

                if (lyd_dup_single(d, NULL, LYD_DUP_WITH_FLAGS, &shell) != LY_SUCCESS)
                    return -1;
                r = vmh_f_level(lyd_child(d), lyd_child(f), shell, NULL);
                if (r == 2) {
                    lyd_free_tree(shell);
                    vmh_f_add(out, first, d, true, NULL);
                    selected = true;
                } else if (r == 1) {
                    if (out)
                        lyd_insert_child(out, shell);
                    else
                        lyd_insert_sibling(*first, shell, first);
                    selected = true;
                } else {
                    lyd_free_tree(shell);
                }
            }
        }
    }
    return selected ? 1 : 0;
}

int
vmh_nc_filter_subtree(const struct lyd_node *data, const struct lyd_node *filter,
                      struct lyd_node **out)
{
    struct lyd_node *first = NULL;
    const struct lyd_node *f, *d;

    *out = NULL;
    if (!filter)
        return 0; /* an empty filter selects nothing */
    /* At the top there is no parent to condition: each filter node stands
     * on its own. */
    LY_LIST_FOR(filter, f){LY_LIST_FOR(data, d){struct lyd_node *shell = NULL;
    int r;

    if (!vmh_f_same(d, f))
        continue;
    if (!lyd_child(f) || !(d->schema->nodetype & LYD_NODE_INNER)) {
        if (!vmh_f_is_content(f) || vmh_f_value_eq(d, f))
            vmh_f_add(NULL, &first, d, true, NULL);
        continue;
    }
    if (lyd_dup_single(d, NULL, LYD_DUP_WITH_FLAGS, &shell) != LY_SUCCESS)
        goto error;
    r = vmh_f_level(lyd_child(d), lyd_child(f), shell, NULL);
    if (r == 2) {
        lyd_free_tree(shell);
        vmh_f_add(NULL, &first, d, true, NULL);
    } else if (r == 1) {
        lyd_insert_sibling(first, shell, &first);
    } else {
        lyd_free_tree(shell);
        if (r < 0)
            goto error;
    }
}
}
*out = first;
return 0;

error : lyd_free_siblings(first);
return -1;
}

int
vmh_nc_filter_xpath(const struct lyd_node *data, const char *xpath, struct lyd_node **out)
{
    struct ly_set *set = NULL;
    struct lyd_node *result = NULL;

    *out = NULL;
    if (!data)
        return 0;
    if (lyd_find_xpath(data, xpath, &set) != LY_SUCCESS)
        return -1;
    for (uint32_t i = 0; i < set->count; i++) {
        struct lyd_node *dup = NULL, *top;
        const struct lyd_node *p;
        bool covered = false;

        if (!set->dnodes[i]->schema)
            continue;
        /* A node under another selected one is already there. */
        for (p = lyd_parent(set->dnodes[i]); p && !covered; p = lyd_parent(p))
            covered = ly_set_contains(set, (void *)p, NULL);
        if (covered)
            continue;
        if (lyd_dup_single(set->dnodes[i], NULL,
                           LYD_DUP_RECURSIVE | LYD_DUP_WITH_PARENTS | LYD_DUP_WITH_FLAGS,
                           &dup) != LY_SUCCESS)
            continue;
        for (top = dup; lyd_parent(top); top = lyd_parent(top))
            ;
        if (!result)
            result = top;
        else if (lyd_merge_siblings(&result, top, LYD_MERGE_DESTRUCT | LYD_MERGE_WITH_FLAGS) !=
                 LY_SUCCESS)
            lyd_free_tree(top);
    }
    ly_set_free(set, NULL);
    *out = result;
    return 0;
}

bool
vmh_nc_filter_notif(const struct lyd_node *notif, const struct lyd_node *subtree, const char *xpath)
{
    struct lyd_node *out = NULL;
    bool match;

    if (xpath) {
        struct ly_set *set = NULL;

        if (lyd_find_xpath(notif, xpath, &set) != LY_SUCCESS)
            return false;
        match = set->count > 0;
        ly_set_free(set, NULL);
        return match;
    }
    if (!subtree)
        return true;
    if (vmh_nc_filter_subtree(notif, subtree, &out) < 0)
        return false;
    match = out != NULL;
    lyd_free_siblings(out);
    return match;
}
