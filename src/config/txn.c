/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The configuration transaction (txn.h): the subscribers, and the commit
 * that runs them against the libyang diff. */
#include "config/txn.h"
#include "util/log.h"

#include <glib.h>
#include <stdarg.h>
#include <stdlib.h>

struct vmh_txn {
    GArray *subs;    /* struct vmh_txn_subscriber */
    GPtrArray *kept; /* vmh_txn_keep() */
};

struct vmh_txn *
vmh_txn_new(void)
{
    struct vmh_txn *txn = g_new0(struct vmh_txn, 1);

    txn->subs = g_array_new(FALSE, TRUE, sizeof(struct vmh_txn_subscriber));
    txn->kept = g_ptr_array_new_with_free_func(g_free);
    return txn;
}

void
vmh_txn_free(struct vmh_txn *txn)
{
    if (!txn)
        return;
    g_array_free(txn->subs, TRUE);
    g_ptr_array_free(txn->kept, TRUE);
    g_free(txn);
}

void *
vmh_txn_keep(struct vmh_txn *txn, size_t size)
{
    void *p = g_malloc0(size);

    g_ptr_array_add(txn->kept, p);
    return p;
}

void
vmh_txn_subscribe(struct vmh_txn *txn, const struct vmh_txn_subscriber *sub)
{
    g_array_append_val(txn->subs, *sub);
}

const char *
vmh_txn_refusal_str(enum vmh_txn_refusal refusal)
{
    switch (refusal) {
    case VMH_TXN_INVALID:
        return "invalid-value";
    case VMH_TXN_IN_USE:
        return "in-use";
    case VMH_TXN_UNSUPPORTED:
        return "operation-not-supported";
    case VMH_TXN_FAILED:
        break;
    }
    return "operation-failed";
}

void
vmh_txn_refuse(struct vmh_txn_change *c, enum vmh_txn_refusal refusal, const char *path,
               const char *fmt, ...)
{
    va_list ap;

    if (!c->error || c->error->message)
        return;
    c->error->refusal = refusal;
    c->error->path = g_strdup(path);
    va_start(ap, fmt);
    c->error->message = g_strdup_vprintf(fmt, ap);
    va_end(ap);
}

void
vmh_txn_error_clear(struct vmh_txn_error *err)
{
    g_free(err->path);
    g_free(err->message);
    *err = (struct vmh_txn_error){0};
}

bool
vmh_txn_changed(const struct vmh_txn_change *c, const char *path)
{
    struct ly_set *set = NULL;
    bool changed;

    if (!c->diff)
        return false;
    if (lyd_find_xpath(c->diff, path, &set) != LY_SUCCESS)
        return false;
    changed = set->count > 0;
    ly_set_free(set, NULL);
    return changed;
}

static bool
vmh_txn_concerns(const struct vmh_txn_subscriber *sub, const struct vmh_txn_change *c)
{
    if (c->startup)
        return true;
    for (const char *const *p = sub->paths; p && *p; p++)
        if (vmh_txn_changed(c, *p))
            return true;
    return false;
}

/* A subscriber failed without saying why: still a refusal with a reason. */
static void
vmh_txn_refused(struct vmh_txn_change *c, const struct vmh_txn_subscriber *sub, const char *phase)
{
    vmh_txn_refuse(c, VMH_TXN_FAILED, NULL, "the %s subsystem could not %s the change", sub->name,
                   phase);
    if (!c->error->by)
        c->error->by = sub->name;
}

int
vmh_txn_commit(struct vmh_txn *txn, const struct lyd_node *old_tree,
               const struct lyd_node *new_tree, unsigned flags, struct vmh_txn_error *err)
{
    guint n = txn->subs->len, i, prepared = 0;
    struct vmh_txn_change *changes = g_new0(struct vmh_txn_change, n);
    bool *concerned = g_new0(bool, n);
    struct lyd_node *diff = NULL;
    int rc = 0;

    *err = (struct vmh_txn_error){0};
    if (lyd_diff_siblings(old_tree, new_tree, LYD_DIFF_DEFAULTS, &diff) != LY_SUCCESS) {
        err->refusal = VMH_TXN_FAILED;
        err->message = g_strdup("the change could not be computed (libyang diff failed)");
        rc = -1;
        goto out;
    }
    for (i = 0; i < n; i++) {
        changes[i] = (struct vmh_txn_change){.old_tree = old_tree,
                                             .new_tree = new_tree,
                                             .diff = diff,
                                             .startup = flags & VMH_TXN_STARTUP,
                                             .error = err};
        concerned[i] =
            vmh_txn_concerns(&g_array_index(txn->subs, struct vmh_txn_subscriber, i), &changes[i]);
    }
    /* validate: nothing is taken yet */
    for (i = 0; i < n && !rc; i++) {
        const struct vmh_txn_subscriber *sub =
            &g_array_index(txn->subs, struct vmh_txn_subscriber, i);

        if (concerned[i] && sub->validate && sub->validate(&changes[i], sub->opaque) < 0) {
            vmh_txn_refused(&changes[i], sub, "validate");
            rc = -1;
        }
    }
    if (rc || (flags & VMH_TXN_TEST_ONLY))
        goto out;
    /* prepare, in order; on a failure abort those prepared, in reverse */
    for (i = 0; i < n && !rc; i++) {
        const struct vmh_txn_subscriber *sub =
            &g_array_index(txn->subs, struct vmh_txn_subscriber, i);

        if (!concerned[i])
            continue;
        if (sub->prepare && sub->prepare(&changes[i], sub->opaque) < 0) {
            vmh_txn_refused(&changes[i], sub, "prepare");
            rc = -1;
            break;
        }
        prepared = i + 1;
    }
    if (rc) {
        for (i = prepared; i-- > 0;) {
            const struct vmh_txn_subscriber *sub =
                &g_array_index(txn->subs, struct vmh_txn_subscriber, i);

            if (concerned[i] && sub->abort)
                sub->abort(&changes[i], sub->opaque);
        }
        goto out;
    }
    for (i = 0; i < n; i++) {
        const struct vmh_txn_subscriber *sub =
            &g_array_index(txn->subs, struct vmh_txn_subscriber, i);

        if (concerned[i] && sub->apply)
            sub->apply(&changes[i], sub->opaque);
    }

out:
    if (rc)
        log_info("config", "configuration change refused by %s: %s%s%s", err->by ? err->by : "?",
                 err->path ? err->path : "", err->path ? ": " : "", err->message);
    lyd_free_siblings(diff);
    g_free(changes);
    g_free(concerned);
    return rc;
}
