/* SPDX-License-Identifier: GPL-3.0-or-later */
/* libvirt's VM-level events as faults.  The test driver cannot raise
 * watchdog, I/O error or memory failure events, so this calls the
 * translations the event callbacks use, with what libvirt would pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <glib.h>
#include <libvirt/libvirt.h>

#include "core/engine.h"
#include "core/loop.h"
#include "util/log.h"
#include "virt/virt.h"

#define UUID "a0000000-0000-4000-8000-000000000001"

static struct vmh_loop *the_loop;

struct fx {
    struct vmh_engine *engine;
    GArray *events;
};

static void
capture(const struct vmh_event *ev, void *opaque)
{
    struct vmh_event copy = *ev;

    copy.vm_uuid = copy.vm_name = copy.host = copy.vnf_manager = NULL;
    g_array_append_val(((struct fx *)opaque)->events, copy);
}

static int
setup(void **state)
{
    struct fx *fx = g_new0(struct fx, 1);
    struct vmh_config *cfg = g_new0(struct vmh_config, 1);
    struct vmh_domain_info *doms = g_new0(struct vmh_domain_info, 1);

    cfg->settings.default_ppt = 60;
    cfg->n_hosts = 1;
    cfg->hosts = g_new0(struct vmh_host_conf, 1);
    cfg->hosts[0].name = g_strdup("a");
    cfg->hosts[0].uri = g_strdup("test:///a");
    cfg->hosts[0].sysfs_root = g_strdup("/");
    cfg->state_dir = g_strdup("/nonexistent");
    vmh_config_index(cfg);
    fx->events = g_array_new(FALSE, TRUE, sizeof(struct vmh_event));
    fx->engine = vmh_engine_new(the_loop, cfg);
    vmh_engine_observe(fx->engine, capture, fx);
    snprintf(doms[0].uuid, sizeof doms[0].uuid, "%s", UUID);
    doms[0].name = g_strdup("vm-1");
    doms[0].power = VMH_POWER_RUNNING;
    doms[0].persistent = true;
    vmh_engine_host_connected(fx->engine, "a", doms, 1);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;

    vmh_engine_free(fx->engine);
    g_array_free(fx->events, TRUE);
    g_free(fx);
    return 0;
}

static const struct vmh_event *
only(struct fx *fx)
{
    assert_int_equal(fx->events->len, 1);
    return &g_array_index(fx->events, struct vmh_event, 0);
}

static const struct vmh_fault_snap *
active_fault(struct fx *fx, struct vmh_snapshot **snap)
{
    vmh_engine_publish(fx->engine);
    *snap = vmh_engine_snapshot(fx->engine);
    assert_int_equal((*snap)->n_faults, 1);
    return &(*snap)->faults[0];
}

static void
test_watchdog_is_a_critical_vm_fault(void **state)
{
    struct fx *fx = *state;
    struct vmh_snapshot *snap;
    const struct vmh_fault_snap *f;

    vmh_virt_report_watchdog(fx->engine, "a", UUID, VIR_DOMAIN_EVENT_WATCHDOG_RESET);
    assert_int_equal(only(fx)->cause, VMH_CAUSE_WATCHDOG);
    assert_int_equal(only(fx)->severity, VMH_SEV_CRITICAL);
    f = active_fault(fx, &snap);
    assert_string_equal(f->vm_uuid, UUID);
    assert_string_equal(f->value, "reset");
    assert_non_null(strstr(f->description, "watchdog"));
    vmh_snapshot_unref(snap);
    /* The watchdog firing again is the same fault. */
    vmh_virt_report_watchdog(fx->engine, "a", UUID, VIR_DOMAIN_EVENT_WATCHDOG_RESET);
    assert_int_equal(fx->events->len, 1);
}

static void
test_io_error_carries_device_and_reason_and_clears_on_resume(void **state)
{
    struct fx *fx = *state;
    struct vmh_snapshot *snap;
    const struct vmh_fault_snap *f;

    vmh_virt_report_io_error(fx->engine, "a", UUID, "/var/lib/images/vm-1.qcow2", "virtio-disk0",
                             VIR_DOMAIN_EVENT_IO_ERROR_PAUSE, "enospc");
    vmh_engine_domain_power(fx->engine, "a", UUID, VMH_POWER_PAUSED);
    assert_int_equal(only(fx)->cause, VMH_CAUSE_IO_ERROR);
    assert_int_equal(only(fx)->severity, VMH_SEV_CRITICAL);
    f = active_fault(fx, &snap);
    assert_string_equal(f->value, "enospc");
    assert_non_null(strstr(f->description, "virtio-disk0"));
    assert_non_null(strstr(f->description, "/var/lib/images/vm-1.qcow2"));
    vmh_snapshot_unref(snap);
    /* The operator freed space and resumed the guest. */
    vmh_engine_domain_power(fx->engine, "a", UUID, VMH_POWER_RUNNING);
    assert_int_equal(fx->events->len, 2);
    assert_int_equal(g_array_index(fx->events, struct vmh_event, 1).type, VMH_EV_FAULT_CLEARED);
}

static void
test_io_error_without_pause_is_major(void **state)
{
    struct fx *fx = *state;

    vmh_virt_report_io_error(fx->engine, "a", UUID, "", "", VIR_DOMAIN_EVENT_IO_ERROR_REPORT, "");
    assert_int_equal(only(fx)->severity, VMH_SEV_MAJOR);
}

static void
test_memory_failure_severity_follows_the_action(void **state)
{
    struct fx *fx = *state;

    vmh_virt_report_memory_failure(fx->engine, "a", UUID,
                                   VIR_DOMAIN_EVENT_MEMORY_FAILURE_RECIPIENT_GUEST,
                                   VIR_DOMAIN_EVENT_MEMORY_FAILURE_ACTION_INJECT);
    assert_int_equal(only(fx)->cause, VMH_CAUSE_GUEST_MEMORY_FAILURE);
    assert_int_equal(only(fx)->severity, VMH_SEV_MAJOR);
    vmh_virt_report_memory_failure(fx->engine, "a", UUID,
                                   VIR_DOMAIN_EVENT_MEMORY_FAILURE_RECIPIENT_HYPERVISOR,
                                   VIR_DOMAIN_EVENT_MEMORY_FAILURE_ACTION_FATAL);
    assert_int_equal(fx->events->len, 2); /* worse: announced again */
    assert_int_equal(g_array_index(fx->events, struct vmh_event, 1).severity, VMH_SEV_CRITICAL);
}

static void
test_unknown_vm_is_ignored(void **state)
{
    struct fx *fx = *state;
    struct vmh_snapshot *snap;

    vmh_virt_report_watchdog(fx->engine, "a", "ffffffff-0000-4000-8000-000000000000",
                             VIR_DOMAIN_EVENT_WATCHDOG_PAUSE);
    /* An event for a domain the inventory does not know (yet) is dropped. */
    assert_int_equal(fx->events->len, 0);
    vmh_engine_publish(fx->engine);
    snap = vmh_engine_snapshot(fx->engine);
    assert_int_equal(snap->n_faults, 0);
    vmh_snapshot_unref(snap);
}

static int
group_setup(void **state)
{
    vmh_log_init("test", true, getenv("VMH_TEST_DEBUG"));
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
        cmocka_unit_test_setup_teardown(test_watchdog_is_a_critical_vm_fault, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_io_error_carries_device_and_reason_and_clears_on_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_error_without_pause_is_major, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_failure_severity_follows_the_action, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unknown_vm_is_ignored, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
