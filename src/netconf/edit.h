/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The RFC 6241 edit engine: edit-config's <config> applied to a
 * configuration, and a whole configuration validated, as pure functions
 * over libyang trees.  It knows nothing of sessions, datastores, locks or
 * access control (ops glue them around it); its errors are descriptions
 * of the rpc-error to answer. */
#ifndef VMH_NETCONF_EDIT_H
#define VMH_NETCONF_EDIT_H

#include "netconf/protocol.h"

#include <libyang/libyang.h>
#include <stdbool.h>

/* The operation attribute and default-operation (RFC 6241 7.2). */
enum vmh_edit_op {
    VMH_EDIT_NONE,
    VMH_EDIT_MERGE,
    VMH_EDIT_REPLACE,
    VMH_EDIT_CREATE,
    VMH_EDIT_DELETE,
    VMH_EDIT_REMOVE,
};

/* test-option (:validate:1.1) */
enum vmh_edit_test {
    VMH_EDIT_TEST_THEN_SET, /* the default */
    VMH_EDIT_SET,
    VMH_EDIT_TEST_ONLY,
};

/* error-option.  Every one behaves as rollback-on-error: the edit goes to
 * a copy, so after the first error nothing of it is left (which
 * stop-on-error allows); continue-on-error stops at the first error too. */
enum vmh_edit_on_error {
    VMH_EDIT_STOP_ON_ERROR, /* the default */
    VMH_EDIT_CONTINUE_ON_ERROR,
    VMH_EDIT_ROLLBACK_ON_ERROR,
};

/* test-option: every value validates the result (running is never left
 * invalid, which "set" allows); test-only is for the caller not to commit. */
struct vmh_edit_options {
    enum vmh_edit_op default_op; /* VMH_EDIT_MERGE unless the client says */
    enum vmh_edit_test test;
    enum vmh_edit_on_error on_error;
    /* Called between applying and validating, NULL: none.  Access control
     * judges the change before validation can tell anything of the rest
     * of the configuration; 0, or -1 and e set. */
    int (*judge)(void *opaque, const struct lyd_node *before, const struct lyd_node *after,
                 struct vmh_nc_error *e);
    void *judge_opaque;
};

/* The options of an edit-config, from its input values (NULL: absent;
 * libyang has checked them against ietf-netconf).  -1 and e set
 * (invalid-value naming the leaf) for a value RFC 6241 does not define. */
int vmh_edit_options_parse(const char *default_op, const char *test_option,
                           const char *error_option, struct vmh_edit_options *opts,
                           struct vmh_nc_error *e);

/* Whether a <config> payload (the siblings first, parsed against ctx as
 * anydata) is configuration of known nodes: its opaque nodes are what the
 * parser could not place (an unknown namespace or element, an invalid
 * value, a list entry without its key), and state data cannot be
 * configured.  0, or -1 and e set. */
int vmh_edit_check(const struct ly_ctx *ctx, const struct lyd_node *config, struct vmh_nc_error *e);

/* The edit-config itself: config (checked with vmh_edit_check) applied to
 * a copy of target (siblings, NULL: empty), which stays as it was, then
 * judged (opts->judge), then validated.  *result is the new configuration
 * (NULL when empty); committing it is the caller's, and under test-only
 * the caller does not.  0, or -1 with e set and *result NULL:
 * data-exists for a create of what exists, data-missing for a delete of
 * what does not (a default counts as absent, RFC 6243 4.5.2), with the
 * node's path; or what the judge or vmh_edit_validate() said. */
int vmh_edit_config(const struct ly_ctx *ctx, const struct lyd_node *target,
                    const struct lyd_node *config, const struct vmh_edit_options *opts,
                    struct lyd_node **result, struct vmh_nc_error *e);

/* Validates a whole configuration (siblings, adding its defaults) as
 * running must be (RFC 7950 section 8); 0, or -1 and e set to the
 * rpc-error RFC 7950 section 15 gives libyang's complaint, with the
 * instance's path.  *tree stays the caller's. */
int vmh_edit_validate(const struct ly_ctx *ctx, struct lyd_node **tree, struct vmh_nc_error *e);

#endif
