/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Configuration: loading, validation errors that name the node and the
 * reason, the engine's view of a valid tree, and the operational tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <glib.h>

#include "config/config.h"
#include "util/log.h"

#define VH_OPEN  "<vm-health xmlns=\"urn:vmhealth:nfv-vm-health\">"
#define VH_CLOSE "</vm-health>"

static struct ly_ctx *ctx;

static void
load_ok(const char *text, LYD_FORMAT format, struct lyd_node **tree, struct vmh_config **cfg)
{
    char *err = NULL;

    if (vmh_config_load_mem(ctx, text, format, tree, &err) < 0)
        fail_msg("valid configuration refused: %s", err);
    assert_int_equal(vmh_config_build(*tree, cfg), 0);
}

/* Loads text that must be refused; the message must contain every needle. */
static void
load_bad(const char *text, LYD_FORMAT format, const char *needle1, const char *needle2)
{
    struct lyd_node *tree = NULL;
    char *err = NULL;

    assert_true(vmh_config_load_mem(ctx, text, format, &tree, &err) < 0);
    assert_null(tree);
    assert_non_null(err);
    if (!strstr(err, needle1) || (needle2 && !strstr(err, needle2)))
        fail_msg("error message '%s' lacks '%s' / '%s'", err, needle1, needle2 ? needle2 : "");
    assert_null(strchr(err, '\n')); /* one line */
    free(err);
}

static void
test_empty_configuration_gets_yang_defaults(void **state)
{
    struct lyd_node *tree;
    struct vmh_config *cfg;

    load_ok("", LYD_XML, &tree, &cfg);
    assert_int_equal(cfg->settings.default_ppt, 60);
    assert_false(cfg->settings.has_max_ppt);
    assert_int_equal(cfg->settings.poll_interval_ms, 1000);
    assert_int_equal(cfg->settings.shutdown_timeout, 60);
    assert_int_equal(cfg->settings.max_concurrent_migrations, 4);
    assert_true(cfg->settings.cancel_on_clear);
    assert_false(cfg->thresholds.has_temp_high);
    assert_false(cfg->thresholds.has_temp_critical);
    assert_true(cfg->thresholds.temp_hysteresis > 2.99 && cfg->thresholds.temp_hysteresis < 3.01);
    assert_false(cfg->thresholds.has_memory_ce_rate);
    assert_int_equal(cfg->n_hosts, 0);
    assert_string_equal(cfg->state_dir, "/var/lib/vmhealth");
    vmh_config_free(cfg);
    lyd_free_siblings(tree);
}

static const char *full_xml = VH_OPEN
    "<settings><default-preprocessing-time>45</default-preprocessing-time>"
    "<max-preprocessing-time>300</max-preprocessing-time>"
    "<poll-interval>250</poll-interval><cancel-on-clear>false</cancel-on-clear></settings>"
    "<thresholds><temperature-high>80.5</temperature-high>"
    "<temperature-critical>95</temperature-critical>"
    "<memory-ce-rate>100</memory-ce-rate></thresholds>"
    "<host><name>zeta</name><uri>test:///default</uri><priority>10</priority>"
    "<maintenance>true</maintenance></host>"
    "<host><name>alpha</name><uri>qemu+ssh://alpha/system</uri>"
    "<sysfs-root>/srv/alpha</sysfs-root><migration-target>false</migration-target>"
    "<shared-storage>true</shared-storage></host>"
    "<vnf-manager><name>vnfm-ims</name><preprocessing-time>120</preprocessing-time>"
    "<user>ims-ops</user><user>ims-bot</user></vnf-manager>"
    "<vnf-manager><name>vnfm-epc</name></vnf-manager>"
    "<vm-assignment><uuid>6F1C2D3E-0000-4000-8000-00000000000A</uuid>"
    "<vnf-manager>vnfm-epc</vnf-manager><preprocessing-time>10</preprocessing-time>"
    "</vm-assignment>" VH_CLOSE
    "<agent xmlns=\"urn:vmhealth:vmhealth-agent\"><state-dir>/tmp/vmh-state</state-dir></agent>";

static void
test_full_configuration_is_read(void **state)
{
    struct lyd_node *tree;
    struct vmh_config *cfg;
    const struct vmh_host_conf *h;
    const struct vmh_manager_conf *m;
    const struct vmh_assignment_conf *a;

    load_ok(full_xml, LYD_XML, &tree, &cfg);
    assert_int_equal(cfg->settings.default_ppt, 45);
    assert_true(cfg->settings.has_max_ppt);
    assert_int_equal(cfg->settings.max_ppt, 300);
    assert_int_equal(cfg->settings.poll_interval_ms, 250);
    assert_false(cfg->settings.cancel_on_clear);
    assert_true(cfg->thresholds.has_temp_high);
    assert_true(cfg->thresholds.temp_high > 80.49 && cfg->thresholds.temp_high < 80.51);
    assert_true(cfg->thresholds.has_temp_critical);
    assert_int_equal(cfg->thresholds.memory_ce_rate, 100);

    assert_int_equal(cfg->n_hosts, 2);
    assert_string_equal(cfg->hosts[0].name, "alpha"); /* sorted */
    h = vmh_config_find_host(cfg, "alpha");
    assert_string_equal(h->uri, "qemu+ssh://alpha/system");
    assert_string_equal(h->sysfs_root, "/srv/alpha");
    assert_false(h->migration_target);
    assert_true(h->shared_storage);
    assert_int_equal(h->priority, 100);
    h = vmh_config_find_host(cfg, "zeta");
    assert_string_equal(h->sysfs_root, "/");
    assert_true(h->migration_target);
    assert_true(h->maintenance);
    assert_int_equal(h->priority, 10);

    m = vmh_config_find_manager(cfg, "vnfm-ims");
    assert_non_null(m);
    assert_true(m->has_ppt);
    assert_int_equal(m->ppt, 120);
    assert_false(vmh_config_find_manager(cfg, "vnfm-epc")->has_ppt);

    a = vmh_config_find_assignment(cfg, "6f1c2d3e-0000-4000-8000-00000000000a");
    assert_non_null(a); /* upper case in the file, found in lower case */
    assert_string_equal(a->manager, "vnfm-epc");
    assert_int_equal(a->ppt, 10);
    assert_string_equal(cfg->state_dir, "/tmp/vmh-state");
    vmh_config_free(cfg);
    lyd_free_siblings(tree);
}

static void
test_json_configuration_is_read(void **state)
{
    struct lyd_node *tree;
    struct vmh_config *cfg;

    load_ok("{\"nfv-vm-health:vm-health\":{\"settings\":{\"poll-interval\":500},"
            "\"host\":[{\"name\":\"a\",\"uri\":\"test:///default\"}]}}",
            LYD_JSON, &tree, &cfg);
    assert_int_equal(cfg->settings.poll_interval_ms, 500);
    assert_int_equal(cfg->n_hosts, 1);
    vmh_config_free(cfg);
    lyd_free_siblings(tree);
}

static void
test_malformed_xml_names_the_line(void **state)
{
    load_bad(VH_OPEN "\n<host><name>a</name><uri>test:///default</uri>\n" VH_CLOSE, LYD_XML,
             "configuration:3:", "tag mismatch");
}

static void
test_unknown_node_is_named(void **state)
{
    load_bad(VH_OPEN "<settings><colour>blue</colour></settings>" VH_CLOSE, LYD_XML,
             "/nfv-vm-health:vm-health/settings", "\"colour\" not found");
}

static void
test_unknown_namespace_is_refused(void **state)
{
    load_bad("<vm-health xmlns=\"urn:elsewhere\"/>", LYD_XML, "configuration:1:", "urn:elsewhere");
}

static void
test_wrong_type_is_named(void **state)
{
    load_bad(VH_OPEN "<settings><poll-interval>fast</poll-interval></settings>" VH_CLOSE, LYD_XML,
             "/nfv-vm-health:vm-health/settings/poll-interval", "\"fast\"");
}

static void
test_out_of_range_is_named(void **state)
{
    load_bad(VH_OPEN "<settings><poll-interval>5</poll-interval></settings>" VH_CLOSE, LYD_XML,
             "/nfv-vm-health:vm-health/settings/poll-interval", "range");
    load_bad(VH_OPEN "<vnf-manager><name>m</name><preprocessing-time>90000</preprocessing-time>"
                     "</vnf-manager>" VH_CLOSE,
             LYD_XML, "preprocessing-time", "range");
}

static void
test_missing_mandatory_leaf_is_named(void **state)
{
    load_bad(VH_OPEN "<host><name>a</name></host>" VH_CLOSE, LYD_XML,
             "/nfv-vm-health:vm-health/host/uri", "Mandatory");
}

static void
test_dangling_leafref_is_named(void **state)
{
    load_bad(VH_OPEN "<vm-assignment><uuid>6f1c2d3e-0000-4000-8000-00000000000a</uuid>"
                     "<vnf-manager>nope</vnf-manager></vm-assignment>" VH_CLOSE,
             LYD_XML, "vm-assignment[uuid='6f1c2d3e-0000-4000-8000-00000000000a']/vnf-manager",
             "\"nope\"");
}

static void
test_bad_uuid_is_named(void **state)
{
    load_bad(VH_OPEN "<vm-assignment><uuid>not-a-uuid</uuid></vm-assignment>" VH_CLOSE, LYD_XML,
             "uuid", "not-a-uuid");
}

static void
test_assignments_differing_only_in_case_are_refused(void **state)
{
    load_bad(VH_OPEN "<vm-assignment><uuid>6f1c2d3e-0000-4000-8000-00000000000a</uuid>"
                     "</vm-assignment><vm-assignment>"
                     "<uuid>6F1C2D3E-0000-4000-8000-00000000000A</uuid></vm-assignment>" VH_CLOSE,
             LYD_XML, "vm-assignment[uuid='6F1C2D3E-0000-4000-8000-00000000000A']", "duplicates");
}

static void
test_state_data_in_configuration_is_refused(void **state)
{
    load_bad(VH_OPEN "<vm><uuid>6f1c2d3e-0000-4000-8000-00000000000a</uuid></vm>" VH_CLOSE, LYD_XML,
             "vm", NULL);
}

static void
test_json_type_error_is_named(void **state)
{
    load_bad("{\"nfv-vm-health:vm-health\":{\"settings\":{\"poll-interval\":\"x\"}}}", LYD_JSON,
             "/nfv-vm-health:vm-health/settings/poll-interval", "\"x\"");
}

static void
test_error_quoting_a_newline_stays_one_line(void **state)
{
    /* libyang quotes the input it choked on, newline included (found by
     * fuzz_config). */
    load_bad("{\"nfv-vm-health:vm-health\":{\"settings\":{\"poll-iault\"}]}}\n", LYD_JSON,
             "configuration:1:", "\\n");
}

static void
test_file_errors_name_the_file(void **state)
{
    struct lyd_node *tree = NULL;
    char *err = NULL;
    char *path = g_strdup_printf("/tmp/vmh-test-config-%d.yaml", (int)getpid());

    assert_true(vmh_config_load_file(ctx, "/nonexistent/vmh.xml", &tree, &err) < 0);
    assert_non_null(strstr(err, "/nonexistent/vmh.xml: cannot read"));
    free(err);
    g_file_set_contents(path, "x", 1, NULL);
    assert_true(vmh_config_load_file(ctx, path, &tree, &err) < 0);
    assert_non_null(strstr(err, "must end in .xml or .json"));
    free(err);
    unlink(path);
    g_free(path);
}

static void
test_operational_tree_carries_snapshot_and_validates(void **state)
{
    struct lyd_node *tree, *op = NULL, *n = NULL;
    struct vmh_config *cfg;
    struct vmh_host_snap hosts[] = {
        {.name = "alpha",
         .uri = "x",
         .connection = VMH_CONN_DISCONNECTED,
         .last_error = "no route",
         .health = VMH_HEALTH_UNREACHABLE,
         .vm_count = 1},
        {.name = "zeta", .uri = "y", .connection = VMH_CONN_CONNECTED, .health = VMH_HEALTH_NORMAL},
    };
    struct vmh_vm_snap vms[] = {{.uuid = "6f1c2d3e-0000-4000-8000-00000000000a",
                                 .name = "web-1",
                                 .host = "alpha",
                                 .power = VMH_POWER_RUNNING,
                                 .health = VMH_HEALTH_UNREACHABLE,
                                 .manager = "vnfm-epc",
                                 .ppt = 10,
                                 .ppt_source = VMH_PPT_VM_ASSIGNMENT,
                                 .memory_kib = 1024,
                                 .vcpus = 1}};
    struct vmh_fault_snap faults[] = {{.id = 7,
                                       .host = "alpha",
                                       .cause = VMH_CAUSE_HIGH_TEMPERATURE,
                                       .severity = VMH_SEV_MAJOR,
                                       .detected_ms = 1700000000123,
                                       .value = "91.0"},
                                      {.id = 9,
                                       .host = "alpha",
                                       .vm_uuid = "6f1c2d3e-0000-4000-8000-00000000000a",
                                       .cause = VMH_CAUSE_WATCHDOG,
                                       .severity = VMH_SEV_CRITICAL,
                                       .detected_ms = 1700000000000,
                                       .cleared_ms = 1700000005000}};
    struct vmh_sensor_snap sensors[] = {
        {.name = "coretemp/Core 0", .value = 91, .has_high = true, .high = 80}};
    struct vmh_snapshot snap = {.hosts = hosts,
                                .n_hosts = 2,
                                .vms = vms,
                                .n_vms = 1,
                                .faults = faults,
                                .n_faults = 2,
                                .stats = {.faults_detected = 2, .traps_sent = 5}};

    hosts[0].sensors = sensors;
    hosts[0].n_sensors = 1;
    hosts[0].mem_uncorrected = 3;
    vms[0].deadline_ms = 1700000060123;
    vms[0].cause = VMH_CAUSE_HIGH_TEMPERATURE;

    load_ok(full_xml, LYD_XML, &tree, &cfg);
    assert_int_equal(vmh_state_build(tree, &snap, &op), 0);
    /* The built state is valid instance data of the module, state included. */
    assert_int_equal(lyd_validate_all(&op, NULL, LYD_VALIDATE_PRESENT, NULL), LY_SUCCESS);
    assert_int_equal(lyd_find_path(op,
                                   "/nfv-vm-health:vm-health/host[name='alpha']/state/"
                                   "last-error",
                                   0, &n),
                     LY_SUCCESS);
    assert_string_equal(lyd_get_value(n), "no route");
    assert_int_equal(lyd_find_path(op,
                                   "/nfv-vm-health:vm-health/vm[uuid="
                                   "'6f1c2d3e-0000-4000-8000-00000000000a']/"
                                   "preprocessing-time-source",
                                   0, &n),
                     LY_SUCCESS);
    assert_string_equal(lyd_get_value(n), "vm-assignment");
    assert_int_equal(lyd_find_path(op,
                                   "/nfv-vm-health:vm-health/vm[uuid="
                                   "'6f1c2d3e-0000-4000-8000-00000000000a']/power-state",
                                   0, &n),
                     LY_SUCCESS);
    assert_string_equal(lyd_get_value(n), "running");
    assert_int_equal(lyd_find_path(op, "/nfv-vm-health:vm-health/fault[id='7']/cause", 0, &n),
                     LY_SUCCESS);
    assert_string_equal(lyd_get_value(n), "nfv-vm-health:high-temperature");
    assert_int_equal(lyd_find_path(op, "/nfv-vm-health:vm-health/fault[id='9']/cleared-at", 0, &n),
                     LY_SUCCESS);
    assert_string_equal(lyd_get_value(n), "2023-11-14T22:13:25.000+00:00");
    assert_int_equal(lyd_find_path(op,
                                   "/nfv-vm-health:vm-health/host[name='alpha']/state/"
                                   "temperature[name='coretemp/Core 0']/value",
                                   0, &n),
                     LY_SUCCESS);
    assert_string_equal(lyd_get_value(n), "91.0");
    assert_int_equal(lyd_find_path(op, "/nfv-vm-health:vm-health/statistics/traps-sent", 0, &n),
                     LY_SUCCESS);
    assert_string_equal(lyd_get_value(n), "5");
    /* Configuration is carried along unchanged. */
    assert_int_equal(
        lyd_find_path(op, "/nfv-vm-health:vm-health/host[name='zeta']/priority", 0, &n),
        LY_SUCCESS);
    assert_string_equal(lyd_get_value(n), "10");
    lyd_free_siblings(op);
    vmh_config_free(cfg);
    lyd_free_siblings(tree);
}

/* vmh_state_print() writes vm, fault and statistics itself: its text must be
 * what libyang prints for the nodes vmh_state_build() makes, in every
 * with-defaults mode, with characters to escape, absent leaves, a leaf at
 * its YANG default (migration/state none) and local time not UTC. */
static void
test_printed_lists_match_libyang(void **state)
{
    struct lyd_node *tree, *full, *part;
    struct vmh_config *cfg;
    struct vmh_vm_snap vms[] = {{.uuid = "6f1c2d3e-0000-4000-8000-00000000000a",
                                 .name = "web <1> & \"co\" 'x'",
                                 .host = "alpha",
                                 .power = VMH_POWER_RUNNING,
                                 .health = VMH_HEALTH_FAULTY,
                                 .manager = "vnfm-epc",
                                 .ppt = 10,
                                 .ppt_source = VMH_PPT_VM_ASSIGNMENT,
                                 .memory_kib = 1024,
                                 .vcpus = 1,
                                 .migration = VMH_MIG_PENDING,
                                 .deadline_ms = 1700000060123,
                                 .target_host = "zeta",
                                 .migration_error = "a]]>b\n<c>"},
                                {.uuid = "6f1c2d3e-0000-4000-8000-00000000000b",
                                 .name = "",
                                 .host = "zeta",
                                 .power = VMH_POWER_SHUTOFF,
                                 .health = VMH_HEALTH_NORMAL,
                                 .ppt_source = VMH_PPT_DEFAULT}};
    struct vmh_fault_snap faults[] = {{.id = 7,
                                       .host = "alpha",
                                       .cause = VMH_CAUSE_HIGH_TEMPERATURE,
                                       .severity = VMH_SEV_MAJOR,
                                       .detected_ms = 1700000000123,
                                       .value = "91.0",
                                       .description = "é & <ü>"},
                                      {.id = 18446744073709551615ULL,
                                       .host = "alpha",
                                       .vm_uuid = "6f1c2d3e-0000-4000-8000-00000000000a",
                                       .cause = VMH_CAUSE_EXTERNAL,
                                       .severity = VMH_SEV_CRITICAL,
                                       .detected_ms = 1700000000005,
                                       .cleared_ms = 1700000005000}};
    struct vmh_host_snap hosts[] = {
        {.name = "alpha", .uri = "x", .connection = VMH_CONN_CONNECTED, .vm_count = 1}};
    struct vmh_snapshot snap = {.hosts = hosts,
                                .n_hosts = 1,
                                .vms = vms,
                                .n_vms = 2,
                                .faults = faults,
                                .n_faults = 2,
                                .stats = {.faults_detected = 2, .migrations_failed = 1}};
    const uint32_t modes[] = {LYD_PRINT_WD_EXPLICIT, LYD_PRINT_WD_TRIM, LYD_PRINT_WD_ALL,
                              LYD_PRINT_WD_ALL_TAG};
    char *tz = getenv("TZ") ? strdup(getenv("TZ")) : NULL;

    /* the default="true" tag needs the with-defaults module */
    assert_non_null(ly_ctx_load_module(ctx, "ietf-netconf-with-defaults", NULL, NULL));
    setenv("TZ", "EST5EDT", 1);
    load_ok(full_xml, LYD_XML, &tree, &cfg);
    assert_int_equal(vmh_state_build(tree, &snap, &full), 0);
    assert_int_equal(vmh_state_build_parts(tree, &snap, VMH_STATE_HOSTS, &part), 0);
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        char *want = NULL, *got = NULL;

        assert_int_equal(lyd_print_mem(&want, full, LYD_XML,
                                       LYD_PRINT_WITHSIBLINGS | LYD_PRINT_SHRINK | modes[i]),
                         LY_SUCCESS);
        assert_int_equal(vmh_state_print(ctx, part, &snap, modes[i], &got), 0);
        assert_string_equal(got, want);
        if (modes[i] == LYD_PRINT_WD_ALL_TAG)
            assert_non_null(strstr(got, "<state xmlns:ncwd="));
        if (modes[i] == LYD_PRINT_WD_TRIM)
            assert_non_null(strstr(got, "<migration/>"));
        free(want);
        free(got);
    }
    /* nothing but vm-health and its lists */
    {
        char *got = NULL;

        assert_int_equal(vmh_state_print(ctx, NULL, &snap, 0, &got), 0);
        assert_non_null(strstr(got, VH_OPEN "<vm><uuid>6f1c2d3e-0000-4000-8000-00000000000a<"));
        assert_non_null(strstr(got, "</statistics>" VH_CLOSE));
        free(got);
    }
    if (tz)
        setenv("TZ", tz, 1);
    else
        unsetenv("TZ");
    free(tz);
    lyd_free_siblings(full);
    lyd_free_siblings(part);
    vmh_config_free(cfg);
    lyd_free_siblings(tree);
}

static int
group_setup(void **state)
{
    vmh_log_init("test", true, getenv("VMH_TEST_DEBUG"));
    vmh_log_route_libyang();
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
        cmocka_unit_test(test_empty_configuration_gets_yang_defaults),
        cmocka_unit_test(test_full_configuration_is_read),
        cmocka_unit_test(test_json_configuration_is_read),
        cmocka_unit_test(test_malformed_xml_names_the_line),
        cmocka_unit_test(test_unknown_node_is_named),
        cmocka_unit_test(test_unknown_namespace_is_refused),
        cmocka_unit_test(test_wrong_type_is_named),
        cmocka_unit_test(test_out_of_range_is_named),
        cmocka_unit_test(test_missing_mandatory_leaf_is_named),
        cmocka_unit_test(test_dangling_leafref_is_named),
        cmocka_unit_test(test_bad_uuid_is_named),
        cmocka_unit_test(test_assignments_differing_only_in_case_are_refused),
        cmocka_unit_test(test_state_data_in_configuration_is_refused),
        cmocka_unit_test(test_json_type_error_is_named),
        cmocka_unit_test(test_error_quoting_a_newline_stays_one_line),
        cmocka_unit_test(test_file_errors_name_the_file),
        cmocka_unit_test(test_operational_tree_carries_snapshot_and_validates),
        cmocka_unit_test(test_printed_lists_match_libyang),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
