/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The RFC 6241 edit engine (see edit.h).  libyang has no "apply a NETCONF
 * edit": the edit tree is walked reading each node's ietf-netconf
 * operation metadata, and create, merge, replace, delete and remove are
 * carried out on a copy of the configuration, which is then validated.
 * Pure over libyang trees: no session, datastore or libnetconf2 here, so
 * tests/unit/test_edit.c drives it directly. */
#include "netconf/edit.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

/* --- options --- */

static const char *const vmh_edit_op_names[] = {
    [VMH_EDIT_NONE] = "none",     [VMH_EDIT_MERGE] = "merge",   [VMH_EDIT_REPLACE] = "replace",
    [VMH_EDIT_CREATE] = "create", [VMH_EDIT_DELETE] = "delete", [VMH_EDIT_REMOVE] = "remove",
};

/* The index of value in names[n], or -1. */
static int
vmh_edit_name_index(const char *value, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(value, names[i]))
            return (int)i;
    return -1;
}

/* An option of edit-config: *out keeps its default when value is NULL;
 * -1 and e set when it is none of names (the first max of them). */
static int
vmh_edit_option(const char *leaf, const char *value, const char *const *names, size_t max, int *out,
                struct vmh_nc_error *e)
{
    int i;
    char *path;

    if (!value)
        return 0;
    if ((i = vmh_edit_name_index(value, names, max)) >= 0) {
        *out = i;
        return 0;
    }
    path = g_strdup_printf("/ietf-netconf:edit-config/%s", leaf);
    vmh_nc_error_set(e, VMH_NC_TAG_INVALID_VALUE, VMH_NC_PROTOCOL, path, "invalid %s \"%s\"", leaf,
                     value);
    g_free(path);
    return -1;
}

int
vmh_edit_options_parse(const char *default_op, const char *test_option, const char *error_option,
                       struct vmh_edit_options *opts, struct vmh_nc_error *e)
{
    static const char *const tests[] = {
        [VMH_EDIT_TEST_THEN_SET] = "test-then-set",
        [VMH_EDIT_SET] = "set",
        [VMH_EDIT_TEST_ONLY] = "test-only",
    };
    static const char *const on_error[] = {
        [VMH_EDIT_STOP_ON_ERROR] = "stop-on-error",
        [VMH_EDIT_CONTINUE_ON_ERROR] = "continue-on-error",
        [VMH_EDIT_ROLLBACK_ON_ERROR] = "rollback-on-error",
    };
    int dflt = VMH_EDIT_MERGE, test = VMH_EDIT_TEST_THEN_SET, err = VMH_EDIT_STOP_ON_ERROR;

    /* default-operation is merge, replace or none: the first three */
    if (vmh_edit_option("default-operation", default_op, vmh_edit_op_names, VMH_EDIT_REPLACE + 1,
                        &dflt, e) < 0 ||
        vmh_edit_option("test-option", test_option, tests, G_N_ELEMENTS(tests), &test, e) < 0 ||
        vmh_edit_option("error-option", error_option, on_error, G_N_ELEMENTS(on_error), &err, e) <
            0)
        return -1;
    *opts = (struct vmh_edit_options){.default_op = (enum vmh_edit_op)dflt,
                                      .test = (enum vmh_edit_test)test,
                                      .on_error = (enum vmh_edit_on_error)err};
    return 0;
}

/* --- checking the payload --- */

static char *
vmh_edit_node_path(const struct lyd_node *parent, const struct lyd_node *n)
{
    char *pp;
    char *s;

    if (n->schema)
        return lyd_path(n, LYD_PATH_STD, NULL, 0);
    pp = parent ? lyd_path(parent, LYD_PATH_STD, NULL, 0) : NULL;
    s = g_strdup_printf("%s/%s", pp ? pp : "", LYD_NAME(n));
    free(pp);
    return s;
}

/* An empty leaf to delete or remove has no value to parse, so it arrives
 * opaque: the schema leaf it names, or NULL. */
static const struct lysc_node *
vmh_edit_opaque_delete(const struct lyd_node *parent, const struct lyd_node *n)
{
    const struct lyd_node_opaq *o = (const struct lyd_node_opaq *)n;
    const struct lysc_node *sn;
    const struct lyd_attr *a;
    bool del = false;

    if (!parent || !parent->schema || lyd_child(n) || (o->value && *o->value))
        return NULL;
    for (a = o->attr; a; a = a->next)
        if (!strcmp(a->name.name, "operation") && a->name.module_ns &&
            !strcmp(a->name.module_ns, VMH_NC_BASE_NS) && a->value &&
            (!strcmp(a->value, "delete") || !strcmp(a->value, "remove")))
            del = true;
    if (!del)
        return NULL;
    sn = lys_find_child(parent->schema, parent->schema->module, LYD_NAME(n), 0, LYS_LEAF, 0);
    return sn && !lysc_is_key(sn) ? sn : NULL;
}

/* What an opaque node of the payload is: the error it calls for. */
static void
vmh_edit_opaque_error(const struct ly_ctx *ctx, const struct lyd_node *parent,
                      const struct lyd_node *n, struct vmh_nc_error *e)
{
    const struct lyd_node_opaq *o = (const struct lyd_node_opaq *)n;
    const char *ns = o->name.module_ns;
    const struct lys_module *mod = ns && *ns ? ly_ctx_get_module_implemented_ns(ctx, ns) : NULL;
    const struct lysc_node *sparent = parent ? parent->schema : NULL;
    const struct lysc_node *sn = NULL;
    char *path = vmh_edit_node_path(parent, n);

    if (!mod && !sparent) {
        vmh_nc_error_set(e, VMH_NC_TAG_UNKNOWN_NAMESPACE, VMH_NC_APPLICATION, path,
                         "unknown namespace \"%s\" of element %s", ns ? ns : "", LYD_NAME(n));
        /* bad-namespace has always been sent empty; the message names it */
        e->ns = g_strdup("");
    } else {
        sn = lys_find_child(sparent, mod ? mod : sparent->module, LYD_NAME(n), 0, 0, 0);
        if (sn && (sn->nodetype & LYD_NODE_TERM))
            vmh_nc_error_set(e, VMH_NC_TAG_INVALID_VALUE, VMH_NC_APPLICATION, path,
                             "invalid value \"%s\" of %s", o->value, path);
        else if (sn && (sn->flags & LYS_CONFIG_R))
            vmh_nc_error_set(e, VMH_NC_TAG_INVALID_VALUE, VMH_NC_APPLICATION, path,
                             "%s is state data and cannot be configured", path);
        else if (sn)
            vmh_nc_error_set(e, VMH_NC_TAG_MISSING_ELEMENT, VMH_NC_APPLICATION, path,
                             "%s lacks its key or is misplaced", path);
        else
            vmh_nc_error_set(e, VMH_NC_TAG_UNKNOWN_ELEMENT, VMH_NC_APPLICATION, path,
                             "unknown element %s", path);
    }
    e->element = g_strdup(LYD_NAME(n));
    free(path);
}

static int
vmh_edit_check_siblings(const struct ly_ctx *ctx, const struct lyd_node *parent,
                        const struct lyd_node *first, struct vmh_nc_error *e)
{
    const struct lyd_node *n;

    LY_LIST_FOR(first, n)
    {
        if (!n->schema && vmh_edit_opaque_delete(parent, n))
            continue;
        if (!n->schema) {
            vmh_edit_opaque_error(ctx, parent, n, e);
            return -1;
        }
        if (n->schema->flags & LYS_CONFIG_R) {
            char *path = lyd_path(n, LYD_PATH_STD, NULL, 0);

            vmh_nc_error_set(e, VMH_NC_TAG_INVALID_VALUE, VMH_NC_APPLICATION, path,
                             "%s is state data and cannot be configured", path);
            free(path);
            return -1;
        }
        if (vmh_edit_check_siblings(ctx, n, lyd_child(n), e) < 0)
            return -1;
    }
    return 0;
}

int
vmh_edit_check(const struct ly_ctx *ctx, const struct lyd_node *config, struct vmh_nc_error *e)
{
    return vmh_edit_check_siblings(ctx, NULL, config, e);
}

/* --- applying --- */

static enum vmh_edit_op
vmh_edit_node_op(const struct lyd_node *n, enum vmh_edit_op inherited)
{
    struct lyd_meta *m = lyd_find_meta(n->meta, NULL, "ietf-netconf:operation");
    int op;

    if (!m)
        return inherited;
    /* libyang checked the value against the attribute's enumeration */
    op = vmh_edit_name_index(lyd_get_meta_value(m), vmh_edit_op_names,
                             G_N_ELEMENTS(vmh_edit_op_names));
    return op < 0 ? VMH_EDIT_NONE : (enum vmh_edit_op)op;
}

static int vmh_edit_siblings(struct lyd_node *tparent, struct lyd_node **tfirst,
                             const struct lyd_node *efirst, enum vmh_edit_op dflt,
                             struct vmh_nc_error *e);

static struct lyd_node *
vmh_edit_find(struct lyd_node *tparent, struct lyd_node *tfirst, const struct lyd_node *en)
{
    struct lyd_node *match = NULL;
    struct lyd_node *sib = tparent ? lyd_child(tparent) : tfirst;

    if (!sib)
        return NULL;
    /* An instance of a list by its keys, of a leaf-list by its value; of
     * anything else by its schema alone (lyd_find_sibling_first would
     * compare a leaf's value too, and a merge would add a second leaf). */
    if (en->schema->nodetype & (LYS_LIST | LYS_LEAFLIST)) {
        if (lyd_find_sibling_first(sib, en, &match) != LY_SUCCESS)
            return NULL;
    } else if (lyd_find_sibling_val(sib, en->schema, NULL, 0, &match) != LY_SUCCESS) {
        return NULL;
    }
    return match;
}

static int
vmh_edit_insert(struct lyd_node *tparent, struct lyd_node **tfirst, const struct lyd_node *en,
                bool recursive, struct lyd_node **out)
{
    struct lyd_node *dup = NULL;

    if (lyd_dup_single(en, NULL, (recursive ? LYD_DUP_RECURSIVE : 0) | LYD_DUP_NO_META, &dup) !=
        LY_SUCCESS)
        return -1;
    if (tparent)
        lyd_insert_child(tparent, dup);
    else
        lyd_insert_sibling(*tfirst, dup, tfirst);
    if (out)
        *out = dup;
    return 0;
}

static void
vmh_edit_free(struct lyd_node **tfirst, struct lyd_node *n)
{
    if (n == *tfirst)
        *tfirst = (*tfirst)->next;
    lyd_free_tree(n);
}

static int
vmh_edit_node(struct lyd_node *tparent, struct lyd_node **tfirst, const struct lyd_node *en,
              enum vmh_edit_op inherited, struct vmh_nc_error *e)
{
    enum vmh_edit_op op = vmh_edit_node_op(en, inherited);
    struct lyd_node *match, *shell = NULL;
    bool term = en->schema->nodetype & LYD_NODE_TERM;
    char *path;

    if (lysc_is_key(en->schema))
        return 0; /* matched with its list entry */
    match = vmh_edit_find(tparent, *tfirst, en);
    /* RFC 6243 section 4.5.2, basic-mode explicit: a leaf that only holds
     * its default was set by the server, not by a client; create may set
     * it, delete finds it missing */
    if (match && term && (match->flags & LYD_DEFAULT) &&
        (op == VMH_EDIT_CREATE || op == VMH_EDIT_DELETE || op == VMH_EDIT_REMOVE)) {
        vmh_edit_free(tparent ? &match : tfirst, match);
        match = NULL;
    }
    switch (op) {
    case VMH_EDIT_CREATE:
        if (match) {
            path = lyd_path(match, LYD_PATH_STD, NULL, 0);
            vmh_nc_error_set(e, VMH_NC_TAG_DATA_EXISTS, VMH_NC_APPLICATION, path,
                             "%s already exists", path);
            free(path);
            return -1;
        }
        return vmh_edit_insert(tparent, tfirst, en, true, NULL);
    case VMH_EDIT_DELETE:
    case VMH_EDIT_REMOVE:
        if (!match && op == VMH_EDIT_DELETE) {
            path = lyd_path(en, LYD_PATH_STD, NULL, 0);
            vmh_nc_error_set(e, VMH_NC_TAG_DATA_MISSING, VMH_NC_APPLICATION, path,
                             "%s does not exist", path);
            free(path);
            return -1;
        }
        if (match)
            vmh_edit_free(tparent ? &match : tfirst, match);
        return 0;
    case VMH_EDIT_REPLACE:
        if (match)
            vmh_edit_free(tparent ? &match : tfirst, match);
        return vmh_edit_insert(tparent, tfirst, en, true, NULL);
    case VMH_EDIT_MERGE:
    case VMH_EDIT_NONE:
        if (term) {
            if (op == VMH_EDIT_NONE)
                return 0;
            if (!match)
                return vmh_edit_insert(tparent, tfirst, en, false, NULL);
            if (en->schema->nodetype == LYS_LEAF &&
                lyd_change_term(match, lyd_get_value(en)) == LY_EINVAL)
                return -1;
            /* an explicit value is no longer the default */
            match->flags &= ~LYD_DEFAULT;
            return 0;
        }
        if (!match) {
            if (vmh_edit_insert(tparent, tfirst, en, false, &shell) < 0)
                return -1;
            match = shell;
        }
        {
            struct lyd_node *unused = NULL;

            if (vmh_edit_siblings(match, &unused, lyd_child(en), op, e) < 0)
                return -1;
        }
        /* under default-operation none, a container that only led to deletes */
        if (shell && op == VMH_EDIT_NONE && !lyd_child(shell))
            vmh_edit_free(tparent ? &shell : tfirst, shell);
        return 0;
    }
    return 0;
}

/* Applies the edit siblings efirst under tparent (NULL: at the top, whose
 * first sibling is *tfirst). */
static int
vmh_edit_siblings(struct lyd_node *tparent, struct lyd_node **tfirst, const struct lyd_node *efirst,
                  enum vmh_edit_op dflt, struct vmh_nc_error *e)
{
    const struct lyd_node *en;

    LY_LIST_FOR(efirst, en)
    {
        const struct lysc_node *sn;

        if (!en->schema && (sn = vmh_edit_opaque_delete(lyd_parent(en), en))) {
            struct lyd_node *match = NULL;
            const struct lyd_attr *a;
            bool remove = false;

            for (a = ((const struct lyd_node_opaq *)en)->attr; a; a = a->next)
                remove |= !strcmp(a->name.name, "operation") && !strcmp(a->value, "remove");
            if (tparent)
                lyd_find_sibling_val(lyd_child(tparent), sn, NULL, 0, &match);
            /* the server's default counts as missing (vmh_edit_node) */
            if (match && !(match->flags & LYD_DEFAULT)) {
                lyd_free_tree(match);
            } else if (!remove) {
                char *pp = lyd_path(tparent, LYD_PATH_STD, NULL, 0);
                char *path = g_strdup_printf("%s/%s", pp ? pp : "", sn->name);

                vmh_nc_error_set(e, VMH_NC_TAG_DATA_MISSING, VMH_NC_APPLICATION, path,
                                 "%s does not exist", path);
                g_free(path);
                free(pp);
                return -1;
            }
            continue;
        }
        if (vmh_edit_node(tparent, tfirst, en, dflt, e) < 0)
            return -1;
    }
    return 0;
}

int
vmh_edit_config(const struct ly_ctx *ctx, const struct lyd_node *target,
                const struct lyd_node *config, const struct vmh_edit_options *opts,
                struct lyd_node **result, struct vmh_nc_error *e)
{
    struct lyd_node *tree = NULL;

    *result = NULL;
    if (target && lyd_dup_siblings(target, NULL, LYD_DUP_RECURSIVE | LYD_DUP_WITH_FLAGS, &tree)) {
        vmh_nc_error_set(e, VMH_NC_TAG_OPERATION_FAILED, VMH_NC_APPLICATION, NULL, "out of memory");
        return -1;
    }
    if (vmh_edit_siblings(NULL, &tree, config, opts->default_op, e) < 0) {
        /* a failure of libyang's that did not say what */
        if (!e->message)
            vmh_nc_error_set(e, VMH_NC_TAG_OPERATION_FAILED, VMH_NC_APPLICATION, NULL,
                             "edit failed");
        goto error;
    }
    if (opts->judge && opts->judge(opts->judge_opaque, target, tree, e) < 0)
        goto error;
    if (vmh_edit_validate(ctx, &tree, e) < 0)
        goto error;
    *result = tree;
    return 0;

error:
    lyd_free_siblings(tree);
    return -1;
}

/* --- validating --- */

/* libyang gives only the schema location of a missing mandatory node: the
 * path of the first instance of its parent that lacks it, or NULL. */
static char *
vmh_edit_missing_instance(const struct lyd_node *tree, const char *schema_path)
{
    const char *slash = strrchr(schema_path, '/');
    char *parent = g_strndup(schema_path, (gsize)(slash - schema_path));
    const char *last = slash + 1;
    char *child = g_strdup(strchr(last, ':') ? strchr(last, ':') + 1 : last);
    struct ly_set *set = NULL;
    char *found = NULL;

    if (lyd_find_xpath(tree, parent, &set) == LY_SUCCESS) {
        for (uint32_t i = 0; i < set->count && !found; i++) {
            struct lyd_node *c;
            bool has = false;

            LY_LIST_FOR(lyd_child(set->dnodes[i]), c)
            {
                has |= c->schema && !strcmp(c->schema->name, child);
            }
            if (!has) {
                char *dp = lyd_path(set->dnodes[i], LYD_PATH_STD, NULL, 0);

                found = g_strdup_printf("%s/%s", dp, child);
                free(dp);
            }
        }
    }
    g_free(child);
    ly_set_free(set, NULL);
    g_free(parent);
    return found;
}

/* The error-path of libyang's complaint le about tree. */
static char *
vmh_edit_error_path(const struct ly_err_item *le, const char *msg, enum vmh_nc_tag tag,
                    const struct lyd_node *tree)
{
    /* libyang words it 'Data location "/a/b".' or a schema location */
    const char *dl = strstr(le->path, "ata location \"");
    const char *q1 = dl ? dl + strlen("ata location ") : strchr(le->path, '"');
    const char *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
    char *p = q2 ? g_strndup(q1 + 1, (gsize)(q2 - q1 - 1)) : g_strdup(le->path);
    const char *m1 = strstr(msg, "ode \""), *m2 = m1 ? strchr(m1 + 5, '"') : NULL;

    /* A missing node is reported at its parent's data location. */
    if (dl && m2 && tag == VMH_NC_TAG_DATA_MISSING && !strstr(msg, "leafref")) {
        char *name = g_strndup(m1 + 5, (gsize)(m2 - m1 - 5));
        const char *slash = strrchr(p, '/');

        if (!slash || strcmp(slash + 1, name)) {
            char *full = g_strdup_printf("%s/%s", p, name);

            g_free(p);
            p = full;
        }
        g_free(name);
    }
    if (!dl && m2 && tag == VMH_NC_TAG_DATA_MISSING && tree && strrchr(p, '/') &&
        strrchr(p, '/') != p) {
        char *instance = vmh_edit_missing_instance(tree, p);

        if (instance) {
            g_free(p);
            p = instance;
        }
    }
    return p;
}

int
vmh_edit_validate(const struct ly_ctx *ctx, struct lyd_node **tree, struct vmh_nc_error *e)
{
    uint32_t prev = ly_log_options(LY_LOSTORE_LAST);
    const struct ly_err_item *le;
    enum vmh_nc_tag tag = VMH_NC_TAG_INVALID_VALUE;
    const char *msg, *apptag;
    char *path;
    LY_ERR lyrc;

    ly_err_clean((struct ly_ctx *)ctx, NULL);
    lyrc = lyd_validate_all(tree, ctx, LYD_VALIDATE_NO_STATE, NULL);
    ly_log_options(prev);
    if (lyrc == LY_SUCCESS)
        return 0;
    le = ly_err_last(ctx);
    msg = le ? le->msg : "validation failed";
    apptag = le ? le->apptag : NULL;
    /* RFC 7950 section 15: the error-tag and error-app-tag of each kind */
    if (strstr(msg, "Mandatory") || strstr(msg, "mandatory"))
        tag = VMH_NC_TAG_DATA_MISSING, apptag = strstr(msg, "choice") ? "missing-choice" : NULL;
    else if (strstr(msg, "Unique data"))
        tag = VMH_NC_TAG_OPERATION_FAILED, apptag = "data-not-unique";
    else if (strstr(msg, "leafref") || strstr(msg, "require-instance") ||
             strstr(msg, "instance-required") || strstr(msg, "Invalid leafref"))
        tag = VMH_NC_TAG_DATA_MISSING, apptag = "instance-required";
    else if (strstr(msg, "Must condition") || (le && le->vecode == LYVE_DATA && apptag))
        tag = VMH_NC_TAG_OPERATION_FAILED, apptag = apptag ? apptag : "must-violation";
    else if (strstr(msg, "Too many"))
        tag = VMH_NC_TAG_OPERATION_FAILED, apptag = "too-many-elements";
    else if (strstr(msg, "Too few"))
        tag = VMH_NC_TAG_OPERATION_FAILED, apptag = "too-few-elements";
    path = le && le->path ? vmh_edit_error_path(le, msg, tag, *tree) : NULL;
    vmh_nc_error_set(e, tag, VMH_NC_APPLICATION, path, "%s", msg);
    g_free(path);
    if (apptag)
        e->app_tag = g_strdup(apptag);
    return -1;
}
