/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The configuration transaction: which subscribers a change concerns, the
 * order of validate, prepare, apply and abort, refusals that name the node
 * and the reason, test-only, and the startup load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <glib.h>

#include "config/config.h"
#include "config/txn.h"
#include "util/log.h"

#define VH(body)  "<vm-health xmlns=\"urn:vmhealth:nfv-vm-health\">" body "</vm-health>"
#define VHA(body) "<agent xmlns=\"urn:vmhealth:vmhealth-agent\">" body "</agent>"

static struct ly_ctx *ctx;

/* A subscriber that records what it was asked, and refuses on demand. */
struct rec {
    const char *name;
    GString *log; /* shared: "name:phase " in call order */
    bool refuse_validate;
    bool refuse_prepare;
    int resources; /* taken in prepare, given back in apply or abort */
};

static int
rec_validate(struct vmh_txn_change *c, void *opaque)
{
    struct rec *r = opaque;

    g_string_append_printf(r->log, "%s:validate ", r->name);
    if (!r->refuse_validate)
        return 0;
    vmh_txn_refuse(c, VMH_TXN_INVALID, "/nfv-vm-health:vm-health/settings/poll-interval",
                   "%s does not like it", r->name);
    return -1;
}

static int
rec_prepare(struct vmh_txn_change *c, void *opaque)
{
    struct rec *r = opaque;

    g_string_append_printf(r->log, "%s:prepare ", r->name);
    if (r->refuse_prepare)
        return -1; /* without a reason: the commit still gives one */
    r->resources++;
    c->resource = r;
    return 0;
}

static void
rec_abort(struct vmh_txn_change *c, void *opaque)
{
    struct rec *r = opaque;

    assert_ptr_equal(c->resource, r);
    r->resources--;
    g_string_append_printf(r->log, "%s:abort ", r->name);
}

static void
rec_apply(struct vmh_txn_change *c, void *opaque)
{
    struct rec *r = opaque;

    assert_ptr_equal(c->resource, r);
    r->resources--;
    g_string_append_printf(r->log, "%s:apply ", r->name);
}

static struct lyd_node *
tree_of(const char *xml)
{
    struct lyd_node *tree = NULL;
    char *err = NULL;

    if (vmh_config_load_mem(ctx, xml, LYD_XML, &tree, &err) < 0)
        fail_msg("configuration refused: %s", err);
    return tree;
}

struct fx {
    struct vmh_txn *txn;
    GString *log;
    struct rec settings, snmp, netconf;
};

static struct fx *
fx_new(void)
{
    static const char *const settings_paths[] = {"/nfv-vm-health:vm-health/settings", NULL};
    static const char *const snmp_paths[] = {"/vmhealth-agent:agent/snmp", NULL};
    static const char *const netconf_paths[] = {"/vmhealth-agent:agent/netconf",
                                                "/nfv-vm-health:vm-health/vnf-manager/user", NULL};
    struct fx *fx = g_new0(struct fx, 1);
    struct {
        struct rec *r;
        const char *name;
        const char *const *paths;
    } subs[] = {{&fx->settings, "settings", settings_paths},
                {&fx->snmp, "snmp", snmp_paths},
                {&fx->netconf, "netconf", netconf_paths}};

    fx->txn = vmh_txn_new();
    fx->log = g_string_new("");
    for (size_t i = 0; i < G_N_ELEMENTS(subs); i++) {
        *subs[i].r = (struct rec){.name = subs[i].name, .log = fx->log};
        vmh_txn_subscribe(fx->txn, &(struct vmh_txn_subscriber){.name = subs[i].name,
                                                                .paths = subs[i].paths,
                                                                .validate = rec_validate,
                                                                .prepare = rec_prepare,
                                                                .abort = rec_abort,
                                                                .apply = rec_apply,
                                                                .opaque = subs[i].r});
    }
    return fx;
}

static void
fx_free(struct fx *fx)
{
    assert_int_equal(fx->settings.resources, 0);
    assert_int_equal(fx->snmp.resources, 0);
    assert_int_equal(fx->netconf.resources, 0);
    vmh_txn_free(fx->txn);
    g_string_free(fx->log, TRUE);
    g_free(fx);
}

static const char *
commit(struct fx *fx, const char *old_xml, const char *new_xml, unsigned flags,
       struct vmh_txn_error *err)
{
    struct lyd_node *old = old_xml ? tree_of(old_xml) : NULL, *new = tree_of(new_xml);
    struct vmh_txn_error ignored;
    int rc;

    g_string_truncate(fx->log, 0);
    rc = vmh_txn_commit(fx->txn, old, new, flags, err ? err : &ignored);
    if (!err && rc < 0)
        fail_msg("commit refused: %s", ignored.message);
    assert_true(err ? rc < 0 : rc == 0);
    lyd_free_siblings(old);
    lyd_free_siblings(new);
    return fx->log->str;
}

static void
test_only_the_subscribers_of_a_changed_subtree_run(void **state)
{
    struct fx *fx = fx_new();

    assert_string_equal(commit(fx, VH("<settings><poll-interval>2000</poll-interval></settings>"),
                               VH("<settings><poll-interval>3000</poll-interval></settings>"), 0,
                               NULL),
                        "settings:validate settings:prepare settings:apply ");
    /* a manager's user list is the NETCONF server's business too */
    assert_string_equal(commit(fx, VH("<vnf-manager><name>m</name></vnf-manager>"),
                               VH("<vnf-manager><name>m</name><user>u</user></vnf-manager>"), 0,
                               NULL),
                        "netconf:validate netconf:prepare netconf:apply ");
    /* nothing changed: nobody runs */
    assert_string_equal(commit(fx, VH(""), VH(""), 0, NULL), "");
    fx_free(fx);
}

static void
test_startup_runs_every_subscriber_in_order(void **state)
{
    struct fx *fx = fx_new();

    assert_string_equal(commit(fx, NULL, VH(""), VMH_TXN_STARTUP, NULL),
                        "settings:validate snmp:validate netconf:validate "
                        "settings:prepare snmp:prepare netconf:prepare "
                        "settings:apply snmp:apply netconf:apply ");
    fx_free(fx);
}

static void
test_a_failed_prepare_aborts_those_prepared_in_reverse(void **state)
{
    struct fx *fx = fx_new();
    struct vmh_txn_error err;

    fx->netconf.refuse_prepare = true;
    assert_string_equal(commit(fx, NULL, VH(""), VMH_TXN_STARTUP, &err),
                        "settings:validate snmp:validate netconf:validate "
                        "settings:prepare snmp:prepare netconf:prepare "
                        "snmp:abort settings:abort ");
    /* a subscriber that gave no reason still gets one, with its name */
    assert_int_equal(err.refusal, VMH_TXN_FAILED);
    assert_string_equal(err.by, "netconf");
    assert_non_null(strstr(err.message, "netconf"));
    vmh_txn_error_clear(&err);
    fx_free(fx);
}

static void
test_a_refusal_names_the_node_and_the_reason_and_nothing_is_prepared(void **state)
{
    struct fx *fx = fx_new();
    struct vmh_txn_error err;

    fx->settings.refuse_validate = true;
    assert_string_equal(commit(fx, VH(""),
                               VH("<settings><poll-interval>3000</poll-interval></settings>")
                                   VHA("<snmp><agent-address>udp:127.0.0.1:1161</agent-address>"
                                       "</snmp>"),
                               0, &err),
                        "settings:validate ");
    assert_int_equal(err.refusal, VMH_TXN_INVALID);
    assert_string_equal(err.path, "/nfv-vm-health:vm-health/settings/poll-interval");
    assert_string_equal(err.message, "settings does not like it");
    assert_string_equal(err.by, "settings");
    assert_string_equal(vmh_txn_refusal_str(err.refusal), "invalid-value");
    vmh_txn_error_clear(&err);
    fx_free(fx);
}

static void
test_test_only_validates_and_takes_nothing(void **state)
{
    struct fx *fx = fx_new();

    assert_string_equal(commit(fx, VH(""),
                               VHA("<snmp><agent-address>udp:127.0.0.1:1161</agent-address>"
                                   "</snmp>"),
                               VMH_TXN_TEST_ONLY, NULL),
                        "snmp:validate ");
    fx_free(fx);
}

static void
test_state_dir_changes_are_refused_as_taking_a_restart(void **state)
{
    struct vmh_txn *txn = vmh_txn_new();
    struct vmh_engine *engine = NULL;
    struct lyd_node *a = tree_of(VHA("<state-dir>/tmp/a</state-dir>")),
                    *b = tree_of(VHA("<state-dir>/tmp/b</state-dir>"));
    struct vmh_txn_error err;

    vmh_config_subscribe(txn, NULL, &engine);
    assert_int_equal(vmh_txn_commit(txn, a, b, VMH_TXN_TEST_ONLY, &err), -1);
    assert_int_equal(err.refusal, VMH_TXN_UNSUPPORTED);
    assert_string_equal(err.path, "/vmhealth-agent:agent/state-dir");
    assert_non_null(strstr(err.message, "takes a restart"));
    assert_string_equal(err.by, "agent");
    vmh_txn_error_clear(&err);
    /* the same directory is no change */
    assert_int_equal(vmh_txn_commit(txn, a, a, VMH_TXN_TEST_ONLY, &err), 0);
    assert_null(engine);
    lyd_free_siblings(a);
    lyd_free_siblings(b);
    vmh_txn_free(txn);
}

static int
group_setup(void **state)
{
    vmh_log_init("test", true, getenv("VMH_TEST_DEBUG"));
    return vmh_yang_ctx_new(VMH_TEST_YANG_PATH, &ctx);
}

static int
group_teardown(void **state)
{
    ly_ctx_destroy(ctx);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_only_the_subscribers_of_a_changed_subtree_run),
        cmocka_unit_test(test_startup_runs_every_subscriber_in_order),
        cmocka_unit_test(test_a_failed_prepare_aborts_those_prepared_in_reverse),
        cmocka_unit_test(test_a_refusal_names_the_node_and_the_reason_and_nothing_is_prepared),
        cmocka_unit_test(test_test_only_validates_and_takes_nothing),
        cmocka_unit_test(test_state_dir_changes_are_refused_as_taking_a_restart),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
