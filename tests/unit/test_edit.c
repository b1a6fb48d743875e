/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The RFC 6241 edit engine on its own, over the project's YANG modules and
 * without a server: merge, replace, create, delete and remove, the
 * default-operation, nested list entries, the rpc-error each refusal
 * describes and the node it names, validation, the judge between applying
 * and validating, and a target that never changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <glib.h>

#include "config/config.h"
#include "netconf/edit.h"
#include "util/log.h"

#define NC_ATTR           "xmlns:nc=\"" VMH_NC_BASE_NS "\" "
#define VH(body)          "<vm-health xmlns=\"urn:vmhealth:nfv-vm-health\" " NC_ATTR ">" body "</vm-health>"
#define VHA(body)         "<agent xmlns=\"urn:vmhealth:vmhealth-agent\" " NC_ATTR ">" body "</agent>"
#define HOST(name, extra) "<host><name>" name "</name><uri>test:///" name "</uri>" extra "</host>"
#define HOSTS_PATH        "/nfv-vm-health:vm-health/host"

static struct ly_ctx *ctx;

/* The running configuration the edits apply to: hosts a (priority 3) and
 * b, manager m1 with users root and ops, user root with one key. */
static const char *running_xml = VH(HOST("a", "<priority>3</priority>") HOST(
    "b", "") "<vnf-manager><name>m1</name><user>root</user><user>ops</user></vnf-manager>")
    VHA("<netconf><user><name>root</name><role>admin</role>"
        "<authorized-key>ssh-ed25519 AAAA root@a</authorized-key></user></netconf>");

struct fx {
    struct lyd_node *target;
    char *target_text;    /* as printed before the edit */
    struct lyd_node *rpc; /* the parsed edit-config holding the payload */
    struct lyd_node *result;
    struct vmh_nc_error err;
};

static char *
print(const struct lyd_node *t)
{
    char *s = NULL;

    if (!t)
        return g_strdup("");
    assert_int_equal(lyd_print_mem(&s, t, LYD_XML, LYD_PRINT_WITHSIBLINGS | LYD_PRINT_SHRINK),
                     LY_SUCCESS);
    return s;
}

static struct fx *
fx_new(const char *running)
{
    struct fx *fx = g_new0(struct fx, 1);
    char *err = NULL;

    if (vmh_config_load_mem(ctx, running, LYD_XML, &fx->target, &err) < 0)
        fail_msg("running refused: %s", err);
    fx->target_text = print(fx->target);
    return fx;
}

static void
fx_free(struct fx *fx)
{
    char *now = print(fx->target);

    /* whatever happened, the engine left the target as it was */
    assert_string_equal(now, fx->target_text);
    free(now);
    free(fx->target_text);
    lyd_free_siblings(fx->target);
    lyd_free_siblings(fx->result);
    lyd_free_all(fx->rpc);
    vmh_nc_error_clear(&fx->err);
    g_free(fx);
}

/* The payload of <config>config</config>, parsed as libnetconf2 parses an
 * edit-config's (anydata, operation attributes as metadata). */
static const struct lyd_node *
payload(struct fx *fx, const char *config)
{
    char *xml = g_strdup_printf("<edit-config xmlns=\"%s\"><target><running/></target>"
                                "<config>%s</config></edit-config>",
                                VMH_NC_BASE_NS, config);
    struct lyd_node *tree = NULL, *op = NULL, *n;
    struct ly_in *in = NULL;

    assert_int_equal(ly_in_new_memory(xml, &in), LY_SUCCESS);
    assert_int_equal(lyd_parse_op(ctx, NULL, in, LYD_XML, LYD_TYPE_RPC_YANG, &tree, &op),
                     LY_SUCCESS);
    ly_in_free(in, 0);
    g_free(xml);
    fx->rpc = tree;
    LY_LIST_FOR(lyd_child(op), n)
    {
        if (!strcmp(LYD_NAME(n), "config")) {
            const struct lyd_node_any *any = (const struct lyd_node_any *)n;

            assert_int_equal(any->value_type, LYD_ANYDATA_DATATREE);
            return any->value.tree;
        }
    }
    fail_msg("no <config>");
    return NULL;
}

/* Checks and applies config with opts (NULL: merge), as edit-config does. */
static int
edit_with(struct fx *fx, const char *config, const struct vmh_edit_options *opts)
{
    const struct vmh_edit_options merge = {.default_op = VMH_EDIT_MERGE};
    const struct lyd_node *p = payload(fx, config);

    if (vmh_edit_check(ctx, p, &fx->err) < 0)
        return -1;
    return vmh_edit_config(ctx, fx->target, p, opts ? opts : &merge, &fx->result, &fx->err);
}

static int
edit(struct fx *fx, const char *config)
{
    return edit_with(fx, config, NULL);
}

/* The value of the node at path in the result, NULL when absent. */
static const char *
value(struct fx *fx, const char *path)
{
    struct ly_set *set = NULL;
    const char *v = NULL;

    assert_int_equal(lyd_find_xpath(fx->result, path, &set), LY_SUCCESS);
    if (set->count)
        v = lyd_get_value(set->dnodes[0]);
    ly_set_free(set, NULL);
    return v;
}

static unsigned
count(struct fx *fx, const char *path)
{
    struct ly_set *set = NULL;
    unsigned n;

    assert_int_equal(lyd_find_xpath(fx->result, path, &set), LY_SUCCESS);
    n = set->count;
    ly_set_free(set, NULL);
    return n;
}

static void
assert_refused(struct fx *fx, enum vmh_nc_tag tag, const char *path)
{
    assert_null(fx->result);
    assert_int_equal(fx->err.tag, tag);
    assert_non_null(fx->err.message);
    if (path)
        assert_string_equal(fx->err.path, path);
    else
        assert_null(fx->err.path);
}

/* --- the operations --- */

static void
test_merge_changes_a_leaf_adds_an_entry_and_keeps_the_rest(void **state)
{
    struct fx *fx = fx_new(running_xml);

    assert_int_equal(
        edit(fx, VH("<host><name>a</name><priority>7</priority></host>" HOST("c", ""))), 0);
    assert_string_equal(value(fx, HOSTS_PATH "[name='a']/priority"), "7");
    assert_string_equal(value(fx, HOSTS_PATH "[name='a']/uri"), "test:///a");
    assert_string_equal(value(fx, HOSTS_PATH "[name='c']/uri"), "test:///c");
    assert_int_equal(count(fx, HOSTS_PATH), 3);
    assert_int_equal(count(fx, "/nfv-vm-health:vm-health/vnf-manager[name='m1']/user"), 2);
    fx_free(fx);
}

static void
test_merge_of_a_default_leaf_makes_it_explicit(void **state)
{
    struct fx *fx = fx_new(running_xml);
    struct ly_set *set = NULL;

    assert_int_equal(edit(fx, VH("<settings><poll-interval>1000</poll-interval></settings>")), 0);
    assert_int_equal(
        lyd_find_xpath(fx->result, "/nfv-vm-health:vm-health/settings/poll-interval", &set),
        LY_SUCCESS);
    assert_int_equal(set->count, 1);
    assert_false(set->dnodes[0]->flags & LYD_DEFAULT);
    ly_set_free(set, NULL);
    fx_free(fx);
}

static void
test_replace_puts_the_entry_in_place_of_the_old_one(void **state)
{
    struct fx *fx = fx_new(running_xml);

    assert_int_equal(
        edit(fx, VH("<host nc:operation=\"replace\"><name>a</name><uri>test:///new</uri></host>")),
        0);
    assert_string_equal(value(fx, HOSTS_PATH "[name='a']/uri"), "test:///new");
    /* the priority it had is gone: the default again */
    assert_string_equal(value(fx, HOSTS_PATH "[name='a']/priority"), "100");
    assert_string_equal(value(fx, HOSTS_PATH "[name='b']/uri"), "test:///b");
    fx_free(fx);
}

static void
test_create_of_a_new_entry_adds_it(void **state)
{
    struct fx *fx = fx_new(running_xml);

    assert_int_equal(edit(fx, VH("<host nc:operation=\"create\"><name>c</name>"
                                 "<uri>test:///c</uri></host>")),
                     0);
    assert_string_equal(value(fx, HOSTS_PATH "[name='c']/uri"), "test:///c");
    fx_free(fx);
}

static void
test_create_of_an_existing_entry_is_data_exists_naming_it(void **state)
{
    struct fx *fx = fx_new(running_xml);

    assert_int_equal(edit(fx, VH("<host nc:operation=\"create\"><name>a</name>"
                                 "<uri>test:///a</uri></host>")),
                     -1);
    assert_refused(fx, VMH_NC_TAG_DATA_EXISTS, HOSTS_PATH "[name='a']");
    fx_free(fx);
}

static void
test_create_of_a_leaf_holding_its_default_sets_it(void **state)
{
    struct fx *fx = fx_new(running_xml);

    /* RFC 6243 4.5.2: a default was set by the server, not by a client */
    assert_int_equal(edit(fx, VH("<settings><poll-interval nc:operation=\"create\">2000"
                                 "</poll-interval></settings>")),
                     0);
    assert_string_equal(value(fx, "/nfv-vm-health:vm-health/settings/poll-interval"), "2000");
    fx_free(fx);
}

static void
test_delete_removes_an_entry(void **state)
{
    struct fx *fx = fx_new(running_xml);

    assert_int_equal(edit(fx, VH("<host nc:operation=\"delete\"><name>b</name></host>")), 0);
    assert_int_equal(count(fx, HOSTS_PATH), 1);
    assert_int_equal(count(fx, HOSTS_PATH "[name='b']"), 0);
    fx_free(fx);
}

static void
test_delete_of_a_missing_entry_is_data_missing_naming_it(void **state)
{
    struct fx *fx = fx_new(running_xml);

    assert_int_equal(edit(fx, VH("<host nc:operation=\"delete\"><name>zz</name></host>")), -1);
    assert_refused(fx, VMH_NC_TAG_DATA_MISSING, HOSTS_PATH "[name='zz']");
    fx_free(fx);
}

static void
test_delete_of_a_leaf_holding_its_default_is_data_missing(void **state)
{
    struct fx *fx = fx_new(running_xml);

    /* an empty leaf to delete arrives opaque: the engine places it */
    assert_int_equal(edit(fx, VH("<settings><poll-interval nc:operation=\"delete\"/></settings>")),
                     -1);
    assert_refused(fx, VMH_NC_TAG_DATA_MISSING, "/nfv-vm-health:vm-health/settings/poll-interval");
    fx_free(fx);
}

static void
test_delete_of_a_set_leaf_removes_it(void **state)
{
    struct fx *fx = fx_new(running_xml);

    assert_int_equal(edit(fx, VH("<host><name>a</name><priority nc:operation=\"delete\"/></host>")),
                     0);
    assert_string_equal(value(fx, HOSTS_PATH "[name='a']/priority"), "100");
    fx_free(fx);
}

static void
test_remove_of_a_missing_entry_or_leaf_is_no_error_and_no_change(void **state)
{
    struct fx *fx = fx_new(running_xml);
    char *after;

    assert_int_equal(edit(fx, VH("<host nc:operation=\"remove\"><name>zz</name></host>"
                                 "<thresholds><temperature-high nc:operation=\"remove\"/>"
                                 "</thresholds>")),
                     0);
    after = print(fx->result);
    assert_string_equal(after, fx->target_text);
    free(after);
    fx_free(fx);
}

/* --- default-operation --- */

static void
test_default_operation_none_changes_only_what_is_marked(void **state)
{
    const struct vmh_edit_options none = {.default_op = VMH_EDIT_NONE};
    struct fx *fx = fx_new(running_xml);

    assert_int_equal(edit_with(fx,
                               VH("<host><name>a</name><priority>9</priority></host>"
                                  "<settings><poll-interval nc:operation=\"merge\">1500"
                                  "</poll-interval></settings>"),
                               &none),
                     0);
    assert_string_equal(value(fx, HOSTS_PATH "[name='a']/priority"), "3");
    assert_string_equal(value(fx, "/nfv-vm-health:vm-health/settings/poll-interval"), "1500");
    fx_free(fx);
}

static void
test_default_operation_none_does_not_create_what_only_leads_to_a_delete(void **state)
{
    const struct vmh_edit_options none = {.default_op = VMH_EDIT_NONE};
    struct fx *fx = fx_new(running_xml);
    char *after;

    /* agent/snmp holds nothing: the remove passing through it leaves the
     * configuration as it was */
    assert_int_equal(
        edit_with(fx, VHA("<snmp><agentx-socket nc:operation=\"remove\"/></snmp>"), &none), 0);
    after = print(fx->result);
    assert_string_equal(after, fx->target_text);
    free(after);
    fx_free(fx);
}

static void
test_default_operation_replace_replaces_the_subtrees_it_names(void **state)
{
    const struct vmh_edit_options replace = {.default_op = VMH_EDIT_REPLACE};
    struct fx *fx = fx_new(running_xml);

    assert_int_equal(edit_with(fx, VH(HOST("c", "")), &replace), 0);
    assert_int_equal(count(fx, HOSTS_PATH), 1);
    assert_string_equal(value(fx, HOSTS_PATH "[name='c']/uri"), "test:///c");
    assert_int_equal(count(fx, "/nfv-vm-health:vm-health/vnf-manager"), 0);
    fx_free(fx);
}

/* --- nested list entries --- */

static void
test_nested_list_entries_are_matched_by_their_keys(void **state)
{
    struct fx *fx = fx_new(running_xml);

    assert_int_equal(
        edit(fx, VH("<vnf-manager><name>m1</name>"
                    "<user nc:operation=\"delete\">ops</user><user>dev</user>"
                    "</vnf-manager>") VHA("<netconf><user><name>root</name>"
                                          "<authorized-key>ssh-ed25519 BBBB root@b</authorized-key>"
                                          "</user><user nc:operation=\"create\"><name>dev</name>"
                                          "</user></netconf>")),
        0);
    assert_int_equal(count(fx, "/nfv-vm-health:vm-health/vnf-manager[name='m1']/user"), 2);
    assert_int_equal(count(fx, "/nfv-vm-health:vm-health/vnf-manager[name='m1']/user[.='ops']"), 0);
    assert_int_equal(count(fx, "/vmhealth-agent:agent/netconf/user[name='root']/authorized-key"),
                     2);
    assert_string_equal(value(fx, "/vmhealth-agent:agent/netconf/user[name='root']/role"), "admin");
    assert_string_equal(value(fx, "/vmhealth-agent:agent/netconf/user[name='dev']/role"),
                        "vnf-manager");
    fx_free(fx);
}

static void
test_a_refusal_deep_in_a_nested_entry_names_that_entry(void **state)
{
    struct fx *fx = fx_new(running_xml);

    assert_int_equal(edit(fx, VHA("<netconf><user nc:operation=\"create\"><name>root</name>"
                                  "</user></netconf>")),
                     -1);
    assert_refused(fx, VMH_NC_TAG_DATA_EXISTS, "/vmhealth-agent:agent/netconf/user[name='root']");
    vmh_nc_error_clear(&fx->err);
    lyd_free_all(fx->rpc);
    fx->rpc = NULL;
    assert_int_equal(edit(fx, VH("<vnf-manager><name>m1</name>"
                                 "<user nc:operation=\"delete\">nobody</user></vnf-manager>")),
                     -1);
    assert_refused(fx, VMH_NC_TAG_DATA_MISSING,
                   "/nfv-vm-health:vm-health/vnf-manager[name='m1']/user[.='nobody']");
    fx_free(fx);
}

/* --- the payload --- */

static void
test_an_unknown_element_is_unknown_element_naming_it(void **state)
{
    struct fx *fx = fx_new(running_xml);

    assert_int_equal(edit(fx, VH("<frobnicate>1</frobnicate>")), -1);
    assert_refused(fx, VMH_NC_TAG_UNKNOWN_ELEMENT, "/nfv-vm-health:vm-health/frobnicate");
    assert_string_equal(fx->err.element, "frobnicate");
    fx_free(fx);
}

static void
test_an_invalid_value_is_invalid_value_naming_the_leaf(void **state)
{
    struct fx *fx = fx_new(running_xml);

    assert_int_equal(edit(fx, VH("<settings><poll-interval>fast</poll-interval></settings>")), -1);
    assert_refused(fx, VMH_NC_TAG_INVALID_VALUE, "/nfv-vm-health:vm-health/settings/poll-interval");
    assert_non_null(strstr(fx->err.message, "fast"));
    fx_free(fx);
}

static void
test_state_data_cannot_be_configured(void **state)
{
    struct fx *fx = fx_new(running_xml);

    assert_int_equal(edit(fx, VH("<host><name>a</name><state><vm-count>3</vm-count></state>"
                                 "</host>")),
                     -1);
    assert_int_equal(fx->err.tag, VMH_NC_TAG_INVALID_VALUE);
    assert_non_null(strstr(fx->err.message, "state data"));
    fx_free(fx);
}

static void
test_an_unknown_namespace_is_unknown_namespace(void **state)
{
    struct fx *fx = fx_new(running_xml);

    assert_int_equal(edit(fx, "<thing xmlns=\"urn:example:nope\"/>"), -1);
    assert_refused(fx, VMH_NC_TAG_UNKNOWN_NAMESPACE, "/thing");
    assert_non_null(strstr(fx->err.message, "urn:example:nope"));
    fx_free(fx);
}

/* --- validation --- */

static void
test_a_missing_mandatory_leaf_is_data_missing_at_its_instance(void **state)
{
    struct fx *fx = fx_new(running_xml);

    assert_int_equal(edit(fx, VH("<host><name>c</name></host>")), -1);
    assert_refused(fx, VMH_NC_TAG_DATA_MISSING, HOSTS_PATH "[name='c']/uri");
    fx_free(fx);
}

static void
test_a_dangling_leafref_is_data_missing_instance_required(void **state)
{
    struct fx *fx = fx_new(running_xml);

    assert_int_equal(edit(fx, VH("<vm-assignment><uuid>f0000000-0000-4000-8000-000000000001</uuid>"
                                 "<vnf-manager>nope</vnf-manager></vm-assignment>")),
                     -1);
    assert_int_equal(fx->err.tag, VMH_NC_TAG_DATA_MISSING);
    assert_string_equal(fx->err.app_tag, "instance-required");
    assert_non_null(fx->err.path);
    fx_free(fx);
}

static void
test_a_must_violation_is_operation_failed_with_its_app_tag(void **state)
{
    struct fx *fx = fx_new(running_xml);

    assert_int_equal(edit(fx, VH("<settings><default-preprocessing-time>90"
                                 "</default-preprocessing-time><max-preprocessing-time>30"
                                 "</max-preprocessing-time></settings>")),
                     -1);
    assert_int_equal(fx->err.tag, VMH_NC_TAG_OPERATION_FAILED);
    assert_non_null(fx->err.app_tag);
    fx_free(fx);
}

/* --- options, the judge, test-only --- */

static void
test_options_default_to_merge_test_then_set_stop_on_error(void **state)
{
    struct vmh_edit_options o;
    struct vmh_nc_error e = {0};

    assert_int_equal(vmh_edit_options_parse(NULL, NULL, NULL, &o, &e), 0);
    assert_int_equal(o.default_op, VMH_EDIT_MERGE);
    assert_int_equal(o.test, VMH_EDIT_TEST_THEN_SET);
    assert_int_equal(o.on_error, VMH_EDIT_STOP_ON_ERROR);
    assert_int_equal(vmh_edit_options_parse("none", "test-only", "rollback-on-error", &o, &e), 0);
    assert_int_equal(o.default_op, VMH_EDIT_NONE);
    assert_int_equal(o.test, VMH_EDIT_TEST_ONLY);
    assert_int_equal(o.on_error, VMH_EDIT_ROLLBACK_ON_ERROR);
    assert_int_equal(vmh_edit_options_parse("create", NULL, NULL, &o, &e), -1);
    assert_int_equal(e.tag, VMH_NC_TAG_INVALID_VALUE);
    assert_string_equal(e.path, "/ietf-netconf:edit-config/default-operation");
    vmh_nc_error_clear(&e);
}

struct judged {
    int calls;
    bool refuse;
    unsigned hosts_before, hosts_after;
};

static unsigned
hosts_in(const struct lyd_node *tree)
{
    struct ly_set *set = NULL;
    unsigned n;

    assert_int_equal(lyd_find_xpath(tree, HOSTS_PATH, &set), LY_SUCCESS);
    n = set->count;
    ly_set_free(set, NULL);
    return n;
}

static int
judge(void *opaque, const struct lyd_node *before, const struct lyd_node *after,
      struct vmh_nc_error *e)
{
    struct judged *j = opaque;

    j->calls++;
    j->hosts_before = hosts_in(before);
    j->hosts_after = hosts_in(after);
    if (!j->refuse)
        return 0;
    vmh_nc_error_set(e, VMH_NC_TAG_ACCESS_DENIED, VMH_NC_APPLICATION, HOSTS_PATH "[name='c']",
                     "not yours");
    return -1;
}

static void
test_the_judge_sees_before_and_after_and_its_refusal_comes_before_validation(void **state)
{
    struct judged j = {0};
    struct vmh_edit_options o = {.default_op = VMH_EDIT_MERGE, .judge = judge, .judge_opaque = &j};
    struct fx *fx = fx_new(running_xml);

    assert_int_equal(edit_with(fx, VH(HOST("c", "")), &o), 0);
    assert_int_equal(j.calls, 1);
    assert_int_equal(j.hosts_before, 2);
    assert_int_equal(j.hosts_after, 3);
    fx_free(fx);

    /* host c without its uri is invalid too: the judge speaks first */
    j = (struct judged){.refuse = true};
    fx = fx_new(running_xml);
    assert_int_equal(edit_with(fx, VH("<host><name>c</name></host>"), &o), -1);
    assert_refused(fx, VMH_NC_TAG_ACCESS_DENIED, HOSTS_PATH "[name='c']");
    fx_free(fx);
}

static void
test_test_only_leaves_the_target_as_it_was(void **state)
{
    struct vmh_edit_options o;
    struct vmh_nc_error e = {0};
    struct fx *fx = fx_new(running_xml);

    assert_int_equal(vmh_edit_options_parse(NULL, "test-only", NULL, &o, &e), 0);
    /* a valid edit: the result is for the caller not to commit */
    assert_int_equal(edit_with(fx, VH("<host nc:operation=\"delete\"><name>a</name></host>"), &o),
                     0);
    assert_int_equal(count(fx, HOSTS_PATH), 1);
    fx_free(fx); /* checks the target */

    fx = fx_new(running_xml);
    assert_int_equal(edit_with(fx, VH("<host><name>c</name></host>"), &o), -1);
    assert_refused(fx, VMH_NC_TAG_DATA_MISSING, HOSTS_PATH "[name='c']/uri");
    fx_free(fx);
}

static int
group_setup(void **state)
{
    vmh_log_init("test", true, getenv("VMH_TEST_DEBUG"));
    return vmh_yang_ctx_new(VMH_TEST_YANG_PATH, &ctx) == 0 ? 0 : -1;
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
        cmocka_unit_test(test_merge_changes_a_leaf_adds_an_entry_and_keeps_the_rest),
        cmocka_unit_test(test_merge_of_a_default_leaf_makes_it_explicit),
        cmocka_unit_test(test_replace_puts_the_entry_in_place_of_the_old_one),
        cmocka_unit_test(test_create_of_a_new_entry_adds_it),
        cmocka_unit_test(test_create_of_an_existing_entry_is_data_exists_naming_it),
        cmocka_unit_test(test_create_of_a_leaf_holding_its_default_sets_it),
        cmocka_unit_test(test_delete_removes_an_entry),
        cmocka_unit_test(test_delete_of_a_missing_entry_is_data_missing_naming_it),
        cmocka_unit_test(test_delete_of_a_leaf_holding_its_default_is_data_missing),
        cmocka_unit_test(test_delete_of_a_set_leaf_removes_it),
        cmocka_unit_test(test_remove_of_a_missing_entry_or_leaf_is_no_error_and_no_change),
        cmocka_unit_test(test_default_operation_none_changes_only_what_is_marked),
        cmocka_unit_test(test_default_operation_none_does_not_create_what_only_leads_to_a_delete),
        cmocka_unit_test(test_default_operation_replace_replaces_the_subtrees_it_names),
        cmocka_unit_test(test_nested_list_entries_are_matched_by_their_keys),
        cmocka_unit_test(test_a_refusal_deep_in_a_nested_entry_names_that_entry),
        cmocka_unit_test(test_an_unknown_element_is_unknown_element_naming_it),
        cmocka_unit_test(test_an_invalid_value_is_invalid_value_naming_the_leaf),
        cmocka_unit_test(test_state_data_cannot_be_configured),
        cmocka_unit_test(test_an_unknown_namespace_is_unknown_namespace),
        cmocka_unit_test(test_a_missing_mandatory_leaf_is_data_missing_at_its_instance),
        cmocka_unit_test(test_a_dangling_leafref_is_data_missing_instance_required),
        cmocka_unit_test(test_a_must_violation_is_operation_failed_with_its_app_tag),
        cmocka_unit_test(test_options_default_to_merge_test_then_set_stop_on_error),
        cmocka_unit_test(
            test_the_judge_sees_before_and_after_and_its_refusal_comes_before_validation),
        cmocka_unit_test(test_test_only_leaves_the_target_as_it_was),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
