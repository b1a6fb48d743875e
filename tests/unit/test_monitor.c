/* SPDX-License-Identifier: GPL-3.0-or-later */
/* hwmon and EDAC monitoring against fixture sysfs trees the test changes
 * step by step: threshold crossings, hysteresis, flapping, flags, counter
 * reset, garbage, disappearing sensors, an unreadable root; and the pure
 * detection rules on their own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "core/engine.h"
#include "core/loop.h"
#include "monitor/monitor.h"
#include "util/log.h"

#define UUID_A1 "a0000000-0000-4000-8000-000000000001"

static struct vmh_loop *the_loop;

struct fx {
    char *root;
    struct vmh_engine *engine;
    struct vmh_monitor *mon;
    GArray *events; /* struct vmh_event copies, strings dropped */
    int warnings;
};

static struct fx *current;

static void
capture(const struct vmh_event *ev, void *opaque)
{
    struct vmh_event copy = *ev;

    copy.vm_uuid = copy.vm_name = copy.host = copy.vnf_manager = NULL;
    g_array_append_val(((struct fx *)opaque)->events, copy);
}

static void
log_sink(enum vmh_log_level level, const char *token, const char *msg, void *opaque)
{
    if (level == VMH_LOG_WARN && current)
        current->warnings++;
    if (getenv("VMH_TEST_DEBUG"))
        fprintf(stderr, "[%s] %s\n", token, msg);
}

static void
put(struct fx *fx, const char *rel, const char *value)
{
    char *path = g_build_filename(fx->root, rel, NULL);
    char *dir = g_path_get_dirname(path);

    g_mkdir_with_parents(dir, 0755);
    assert_true(g_file_set_contents(path, value, -1, NULL));
    g_free(dir);
    g_free(path);
}

static void
drop(struct fx *fx, const char *rel)
{
    char *path = g_build_filename(fx->root, rel, NULL);

    assert_int_equal(unlink(path), 0);
    g_free(path);
}

#define HW "sys/class/hwmon/hwmon0/"
#define MC "sys/devices/system/edac/mc/mc0/"

static struct vmh_config *
config(const char *root, bool thresholds, bool ce_rate)
{
    struct vmh_config *cfg = g_new0(struct vmh_config, 1);

    cfg->settings.default_ppt = 60;
    cfg->settings.poll_interval_ms = 3600000; /* the test polls by hand */
    cfg->thresholds.temp_hysteresis = 3.0;
    if (thresholds) {
        cfg->thresholds.has_temp_high = true;
        cfg->thresholds.temp_high = 70;
        cfg->thresholds.has_temp_critical = true;
        cfg->thresholds.temp_critical = 85;
    }
    if (ce_rate) {
        cfg->thresholds.has_memory_ce_rate = true;
        cfg->thresholds.memory_ce_rate = 100;
    }
    cfg->n_hosts = 1;
    cfg->hosts = g_new0(struct vmh_host_conf, 1);
    cfg->hosts[0].name = g_strdup("a");
    cfg->hosts[0].uri = g_strdup("test:///a");
    cfg->hosts[0].sysfs_root = g_strdup(root);
    cfg->state_dir = g_strdup("/nonexistent");
    vmh_config_index(cfg);
    return cfg;
}

static struct fx *
start(bool thresholds, bool ce_rate, const char *root_override)
{
    struct fx *fx = g_new0(struct fx, 1);
    struct vmh_domain_info *doms = g_new0(struct vmh_domain_info, 1);

    current = fx;
    fx->root = g_dir_make_tmp("vmh-sysfs-XXXXXX", NULL);
    put(fx, HW "name", "coretemp\n");
    put(fx, HW "temp1_label", "Package id 0\n");
    put(fx, HW "temp1_input", "45000\n");
    put(fx, HW "temp1_max", "80000\n");
    put(fx, HW "temp1_crit", "95000\n");
    put(fx, HW "temp1_alarm", "0\n");
    put(fx, MC "ue_count", "0\n");
    put(fx, MC "ce_count", "0\n");
    fx->events = g_array_new(FALSE, TRUE, sizeof(struct vmh_event));
    fx->engine = vmh_engine_new(
        the_loop, config(root_override ? root_override : fx->root, thresholds, ce_rate));
    vmh_engine_observe(fx->engine, capture, fx);
    snprintf(doms[0].uuid, sizeof doms[0].uuid, "%s", UUID_A1);
    doms[0].name = g_strdup("vm-1");
    doms[0].persistent = true;
    vmh_engine_host_connected(fx->engine, "a", doms, 1);
    fx->mon = vmh_monitor_new(the_loop, fx->engine); /* polls once */
    return fx;
}

static void
stop(struct fx *fx)
{
    char *cmd = g_strdup_printf("rm -rf '%s'", fx->root);

    vmh_monitor_free(fx->mon);
    vmh_engine_free(fx->engine);
    g_array_free(fx->events, TRUE);
    assert_int_equal(system(cmd), 0);
    g_free(cmd);
    g_free(fx->root);
    g_free(fx);
    current = NULL;
}

static const struct vmh_event *
last(struct fx *fx)
{
    assert_true(fx->events->len > 0);
    return &g_array_index(fx->events, struct vmh_event, fx->events->len - 1);
}

/* Sets temp1_input and polls; returns the number of new events. */
static guint
temp(struct fx *fx, const char *milli)
{
    guint before = fx->events->len;
    char *v = g_strdup_printf("%s\n", milli);

    put(fx, HW "temp1_input", v);
    g_free(v);
    vmh_monitor_poll(fx->mon);
    return fx->events->len - before;
}

static void
test_crossing_sensor_max_raises_major_then_critical_then_clears_with_hysteresis(void **state)
{
    struct fx *fx = start(false, false, NULL);

    assert_int_equal(fx->events->len, 0);
    assert_int_equal(temp(fx, "80000"), 0); /* at the threshold is not above it */
    assert_int_equal(temp(fx, "80500"), 1);
    assert_int_equal(last(fx)->type, VMH_EV_VM_ABNORMAL);
    assert_int_equal(last(fx)->cause, VMH_CAUSE_HIGH_TEMPERATURE);
    assert_int_equal(last(fx)->severity, VMH_SEV_MAJOR);
    assert_int_equal(temp(fx, "90000"), 0); /* still the same fault */
    assert_int_equal(temp(fx, "95500"), 1); /* worse */
    assert_int_equal(last(fx)->severity, VMH_SEV_CRITICAL);
    assert_int_equal(temp(fx, "93000"), 0); /* within hysteresis of crit */
    assert_int_equal(temp(fx, "78000"), 0); /* within hysteresis of max */
    assert_int_equal(temp(fx, "76900"), 1); /* below max - 3 */
    assert_int_equal(last(fx)->type, VMH_EV_FAULT_CLEARED);
    stop(fx);
}

static void
test_value_hovering_at_threshold_raises_and_clears_once(void **state)
{
    struct fx *fx = start(false, false, NULL);
    const char *values[] = {"80100", "79900", "80200", "79000", "80300", "78000", "80100"};

    for (size_t i = 0; i < G_N_ELEMENTS(values); i++)
        temp(fx, values[i]);
    assert_int_equal(fx->events->len, 1);
    assert_int_equal(temp(fx, "70000"), 1);
    assert_int_equal(fx->events->len, 2);
    stop(fx);
}

static void
test_configured_thresholds_win_over_the_sensor(void **state)
{
    struct fx *fx = start(true, false, NULL);
    struct vmh_snapshot *snap;
    const struct vmh_host_snap *h;

    assert_int_equal(temp(fx, "71000"), 1); /* above 70, below the sensor's 80 */
    assert_int_equal(last(fx)->severity, VMH_SEV_MAJOR);
    assert_int_equal(temp(fx, "86000"), 1); /* above 85, below the sensor's 95 */
    assert_int_equal(last(fx)->severity, VMH_SEV_CRITICAL);
    vmh_engine_publish(fx->engine);
    snap = vmh_engine_snapshot(fx->engine);
    h = vmh_snapshot_find_host(snap, "a");
    assert_true(h->sysfs_monitoring);
    assert_int_equal(h->n_sensors, 1);
    assert_string_equal(h->sensors[0].name, "coretemp/Package id 0");
    assert_true(h->sensors[0].value > 85.9 && h->sensors[0].value < 86.1);
    assert_true(h->sensors[0].has_high && h->sensors[0].high == 70);
    assert_int_equal(h->health, VMH_HEALTH_FAULTY);
    vmh_snapshot_unref(snap);
    stop(fx);
}

static void
test_garbage_is_logged_once_and_raises_nothing(void **state)
{
    struct fx *fx = start(false, false, NULL);
    int warnings = fx->warnings;

    assert_int_equal(temp(fx, "hot"), 0);
    assert_int_equal(temp(fx, "hot"), 0);
    assert_int_equal(temp(fx, ""), 0);
    assert_int_equal(temp(fx, "99999999999999999999999"), 0);
    assert_int_equal(temp(fx, "12abc"), 0);
    assert_int_equal(fx->warnings - warnings, 1); /* one complaint per sensor */
    assert_int_equal(temp(fx, "81000"), 1);       /* good values count again */
    stop(fx);
}

static void
test_disappearing_sensor_is_no_fault_and_keeps_its_fault(void **state)
{
    struct fx *fx = start(false, false, NULL);

    drop(fx, HW "temp1_input");
    vmh_monitor_poll(fx->mon);
    vmh_monitor_poll(fx->mon);
    assert_int_equal(fx->events->len, 0);
    assert_int_equal(temp(fx, "82000"), 1); /* back, and hot */
    drop(fx, HW "temp1_input");
    vmh_monitor_poll(fx->mon);
    assert_int_equal(fx->events->len, 1);   /* gone: its fault stays */
    assert_int_equal(temp(fx, "50000"), 1); /* back and cool: cleared */
    assert_int_equal(last(fx)->type, VMH_EV_FAULT_CLEARED);
    stop(fx);
}

static void
test_alarm_and_fault_flags_are_hardware_failures(void **state)
{
    struct fx *fx = start(false, false, NULL);

    put(fx, HW "temp1_alarm", "1\n");
    vmh_monitor_poll(fx->mon);
    assert_int_equal(fx->events->len, 1);
    assert_int_equal(last(fx)->cause, VMH_CAUSE_HARDWARE_FAILURE);
    assert_int_equal(last(fx)->severity, VMH_SEV_MAJOR);
    put(fx, HW "fan1_fault", "1\n");
    vmh_monitor_poll(fx->mon);
    assert_int_equal(fx->events->len, 2);
    assert_int_equal(last(fx)->severity, VMH_SEV_CRITICAL);
    vmh_monitor_poll(fx->mon);
    assert_int_equal(fx->events->len, 2);
    put(fx, HW "temp1_alarm", "0\n");
    vmh_monitor_poll(fx->mon);
    assert_int_equal(fx->events->len, 3);
    assert_int_equal(last(fx)->type, VMH_EV_FAULT_CLEARED);
    stop(fx);
}

static void
test_uncorrectable_error_rise_is_critical_and_reset_is_not(void **state)
{
    struct fx *fx = start(false, false, NULL);
    struct vmh_snapshot *snap;

    put(fx, MC "ue_count", "2\n");
    vmh_monitor_poll(fx->mon);
    assert_int_equal(fx->events->len, 1);
    assert_int_equal(last(fx)->cause, VMH_CAUSE_MEMORY_UE);
    assert_int_equal(last(fx)->severity, VMH_SEV_CRITICAL);
    vmh_monitor_poll(fx->mon); /* no rise: nothing new, the fault stays */
    assert_int_equal(fx->events->len, 1);
    put(fx, MC "ue_count", "0\n"); /* driver reload */
    vmh_monitor_poll(fx->mon);
    assert_int_equal(fx->events->len, 1);
    put(fx, MC "ue_count", "1\n"); /* a rise from the new baseline, same fault */
    vmh_monitor_poll(fx->mon);
    assert_int_equal(fx->events->len, 1);
    vmh_engine_publish(fx->engine);
    snap = vmh_engine_snapshot(fx->engine);
    assert_int_equal(vmh_snapshot_find_host(snap, "a")->mem_uncorrected, 1);
    assert_int_equal(snap->n_faults, 1);
    assert_int_equal(snap->faults[0].cleared_ms, 0);
    vmh_snapshot_unref(snap);
    stop(fx);
}

static void
test_correctable_error_rate_is_a_sub_health_warning(void **state)
{
    struct fx *fx = start(false, true, NULL);
    struct vmh_snapshot *snap;

    put(fx, MC "ce_count", "1\n"); /* 1 in a minute: 60 per hour, under 100 */
    vmh_monitor_poll(fx->mon);
    assert_int_equal(fx->events->len, 0);
    put(fx, MC "ce_count", "5\n"); /* 5 in a minute: 300 per hour */
    vmh_monitor_poll(fx->mon);
    assert_int_equal(fx->events->len, 1);
    assert_int_equal(last(fx)->cause, VMH_CAUSE_MEMORY_CE_RATE);
    assert_int_equal(last(fx)->severity, VMH_SEV_WARNING);
    vmh_engine_publish(fx->engine);
    snap = vmh_engine_snapshot(fx->engine);
    assert_int_equal(vmh_snapshot_find_host(snap, "a")->health, VMH_HEALTH_SUB_HEALTH);
    assert_int_equal(vmh_snapshot_find_host(snap, "a")->mem_corrected, 5);
    vmh_snapshot_unref(snap);
    stop(fx);
}

static void
test_unreadable_root_means_no_monitoring_not_a_fault(void **state)
{
    struct fx *fx = start(false, false, "/nonexistent/remote-host");
    struct vmh_snapshot *snap;

    vmh_monitor_poll(fx->mon);
    assert_int_equal(fx->events->len, 0);
    assert_int_equal(fx->warnings, 1); /* said once */
    vmh_engine_publish(fx->engine);
    snap = vmh_engine_snapshot(fx->engine);
    assert_false(vmh_snapshot_find_host(snap, "a")->sysfs_monitoring);
    assert_int_equal(vmh_snapshot_find_host(snap, "a")->health, VMH_HEALTH_NORMAL);
    vmh_snapshot_unref(snap);
    stop(fx);
}

static void
test_temperature_rule(void **state)
{
    /* high 80, critical 95, hysteresis 3 */
#define T(prev, v) vmh_detect_temperature(prev, v, true, 80, true, 95, 3)
    assert_int_equal(T(VMH_TEMP_NORMAL, 80), VMH_TEMP_NORMAL);
    assert_int_equal(T(VMH_TEMP_NORMAL, 80.1), VMH_TEMP_HIGH);
    assert_int_equal(T(VMH_TEMP_NORMAL, 96), VMH_TEMP_CRITICAL);
    assert_int_equal(T(VMH_TEMP_HIGH, 77), VMH_TEMP_HIGH);
    assert_int_equal(T(VMH_TEMP_HIGH, 76.9), VMH_TEMP_NORMAL);
    assert_int_equal(T(VMH_TEMP_CRITICAL, 92), VMH_TEMP_CRITICAL);
    assert_int_equal(T(VMH_TEMP_CRITICAL, 91.9), VMH_TEMP_HIGH);
    assert_int_equal(T(VMH_TEMP_CRITICAL, 50), VMH_TEMP_NORMAL);
#undef T
    /* No thresholds at all: never raised. */
    assert_int_equal(vmh_detect_temperature(VMH_TEMP_NORMAL, 500, false, 0, false, 0, 3),
                     VMH_TEMP_NORMAL);
    /* Only a critical threshold. */
    assert_int_equal(vmh_detect_temperature(VMH_TEMP_NORMAL, 96, false, 0, true, 95, 3),
                     VMH_TEMP_CRITICAL);
    assert_int_equal(vmh_detect_temperature(VMH_TEMP_CRITICAL, 91, false, 0, true, 95, 3),
                     VMH_TEMP_NORMAL);
}

static void
test_ce_rate_rule(void **state)
{
    struct vmh_ce_window w = {0};
    int64_t t = 1000000;

    assert_true(vmh_detect_ce_rate(&w, t, 10) == 0);                      /* baseline */
    assert_true(vmh_detect_ce_rate(&w, t + 1000, 12) == 120);             /* 2 per minute floor */
    assert_true(vmh_detect_ce_rate(&w, t + 600000, 22) == 72);            /* 12 in 10 min */
    assert_true(vmh_detect_ce_rate(&w, t + 600000 + 1, 3) == 0);          /* reset */
    assert_true(vmh_detect_ce_rate(&w, t + 4 * 3600000LL, 3) == 0);       /* old samples gone */
    assert_true(vmh_detect_ce_rate(&w, t + 5 * 3600000LL, 1003) == 1000); /* 1000 in 1 h */
}

static void
test_sysfs_values_parse_strictly(void **state)
{
    long long v;

    assert_int_equal(vmh_sysfs_parse_long("45000\n", &v), 0);
    assert_int_equal(v, 45000);
    assert_int_equal(vmh_sysfs_parse_long("-5", &v), 0);
    assert_int_equal(v, -5);
    assert_int_equal(vmh_sysfs_parse_long("", &v), -1);
    assert_int_equal(vmh_sysfs_parse_long("\n", &v), -1);
    assert_int_equal(vmh_sysfs_parse_long(" 1", &v), -1);
    assert_int_equal(vmh_sysfs_parse_long("1 2", &v), -1);
    assert_int_equal(vmh_sysfs_parse_long("1\n\n", &v), -1);
    assert_int_equal(vmh_sysfs_parse_long("0x10", &v), -1);
    assert_int_equal(vmh_sysfs_parse_long("99999999999999999999", &v), -1);
    assert_int_equal(vmh_sysfs_parse_long(NULL, &v), -1);
}

static int
group_setup(void **state)
{
    vmh_log_init("test", true, NULL);
    vmh_log_set_sink(log_sink, NULL);
    return vmh_loop_new(&the_loop);
}

static int
group_teardown(void **state)
{
    vmh_loop_free(the_loop);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_crossing_sensor_max_raises_major_then_critical_then_clears_with_hysteresis),
        cmocka_unit_test(test_value_hovering_at_threshold_raises_and_clears_once),
        cmocka_unit_test(test_configured_thresholds_win_over_the_sensor),
        cmocka_unit_test(test_garbage_is_logged_once_and_raises_nothing),
        cmocka_unit_test(test_disappearing_sensor_is_no_fault_and_keeps_its_fault),
        cmocka_unit_test(test_alarm_and_fault_flags_are_hardware_failures),
        cmocka_unit_test(test_uncorrectable_error_rise_is_critical_and_reset_is_not),
        cmocka_unit_test(test_correctable_error_rate_is_a_sub_health_warning),
        cmocka_unit_test(test_unreadable_root_means_no_monitoring_not_a_fault),
        cmocka_unit_test(test_temperature_rule),
        cmocka_unit_test(test_ce_rate_rule),
        cmocka_unit_test(test_sysfs_values_parse_strictly),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
