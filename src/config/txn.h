/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Configuration as transactions.  Every way the configuration changes (the
 * startup load, edit-config, copy-config to running) ends in one call,
 * vmh_txn_commit(), that runs the subscribers of the changed subtrees
 * against the libyang diff of the old and the new tree:
 *
 *   validate  every changed subscriber checks what libyang cannot (may fail)
 *   prepare   every changed subscriber takes what the change needs: builds
 *             its view, binds a new port (may fail)
 *   abort     on any failure, the subscribers prepared so far release it,
 *             in reverse order: nothing has changed anywhere
 *   apply     otherwise every prepared subscriber switches to the new
 *             configuration; apply cannot fail
 *
 * The model is FRR's northbound layer (validate, prepare, abort/apply per
 * data path) and netopeer2's per-subtree change subscriptions.  Subsystems
 * register at start; each owns the one parser of its subtree. */
#ifndef VMH_CONFIG_TXN_H
#define VMH_CONFIG_TXN_H

#include <libyang/libyang.h>
#include <stdbool.h>

/* How a refused change is answered (the NETCONF error-tag it becomes). */
enum vmh_txn_refusal {
    VMH_TXN_INVALID,     /* invalid-value: the value cannot work */
    VMH_TXN_IN_USE,      /* in-use: a resource it needs is taken (an address) */
    VMH_TXN_UNSUPPORTED, /* operation-not-supported: it takes a restart */
    VMH_TXN_FAILED,      /* operation-failed: anything else */
};

/* One subscriber's view of the commit in progress. */
struct vmh_txn_change {
    const struct lyd_node *old_tree; /* the whole configuration before; NULL at startup */
    const struct lyd_node *new_tree; /* the whole configuration after, validated */
    const struct lyd_node *diff;     /* lyd_diff_siblings(old, new), defaults included */
    bool startup;                    /* the startup load: every subscriber runs */
    void *resource;                  /* set by prepare, handed to apply or abort */
    struct vmh_txn_error *error;     /* private: where vmh_txn_refuse() writes */
};

struct vmh_txn_subscriber {
    const char *name;         /* for the log: "engine", "snmp", ... */
    const char *const *paths; /* NULL-terminated schema paths of its subtrees */
    /* On failure these call vmh_txn_refuse() and return a negative value. */
    int (*validate)(struct vmh_txn_change *c, void *opaque);
    int (*prepare)(struct vmh_txn_change *c, void *opaque);
    void (*abort)(struct vmh_txn_change *c, void *opaque);
    void (*apply)(struct vmh_txn_change *c, void *opaque);
    void *opaque;
};

/* Why a commit was refused: the node and the reason. */
struct vmh_txn_error {
    enum vmh_txn_refusal refusal;
    char *path;     /* data path of the node refused, may be NULL */
    char *message;  /* one sentence */
    const char *by; /* the subscriber that refused */
};

struct vmh_txn;

struct vmh_txn *vmh_txn_new(void);
void vmh_txn_free(struct vmh_txn *txn);
/* Subscribers run in the order they registered (abort in reverse).  The
 * struct is copied; its strings must outlive txn. */
void vmh_txn_subscribe(struct vmh_txn *txn, const struct vmh_txn_subscriber *sub);

/* Memory for a subscriber's opaque state, zeroed, freed with txn. */
void *vmh_txn_keep(struct vmh_txn *txn, size_t size);

/* For validate/prepare: records why the change is refused (the first
 * refusal of a commit wins). */
void vmh_txn_refuse(struct vmh_txn_change *c, enum vmh_txn_refusal refusal, const char *path,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

enum vmh_txn_flags {
    VMH_TXN_STARTUP = 1 << 0,   /* the startup load: every subscriber runs */
    VMH_TXN_TEST_ONLY = 1 << 1, /* validate only (edit-config's test-only) */
};

/* Commits new_tree (validated by libyang, by the caller) over old_tree
 * (NULL: empty).  0 when applied (or valid, with VMH_TXN_TEST_ONLY);
 * otherwise negative with *err filled (free it with vmh_txn_error_clear)
 * and nothing changed.  Commits must not overlap: the caller serializes
 * them (the datastore's write lock). */
int vmh_txn_commit(struct vmh_txn *txn, const struct lyd_node *old_tree,
                   const struct lyd_node *new_tree, unsigned flags, struct vmh_txn_error *err);
void vmh_txn_error_clear(struct vmh_txn_error *err);
const char *vmh_txn_refusal_str(enum vmh_txn_refusal refusal);

/* Whether the diff of a change touches the subtree at schema path. */
bool vmh_txn_changed(const struct vmh_txn_change *c, const char *path);

#endif
