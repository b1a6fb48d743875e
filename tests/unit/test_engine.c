/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The engine's faults, events, health and RPCs, without hypervisors: the
 * inventory is fed directly, events are captured by an observer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <glib.h>

#include "core/engine.h"
#include "core/loop.h"
#include "util/log.h"
#include "util/time.h"

#define UUID_A1 "a0000000-0000-4000-8000-000000000001"
#define UUID_A2 "a0000000-0000-4000-8000-000000000002"
#define UUID_B1 "b0000000-0000-4000-8000-000000000001"

static struct vmh_loop *the_loop;

struct captured {
    enum vmh_event_type type;
    char uuid[40];
    char manager[32];
    uint64_t fault_id;
    enum vmh_cause cause;
    enum vmh_severity severity;
    uint32_t ppt;
    int64_t deadline_ms;
    int64_t time_ms;
};

struct fx {
    struct vmh_engine *engine;
    GArray *events;
    int added, removed;
};

static void
capture(const struct vmh_event *ev, void *opaque)
{
    struct fx *fx = opaque;
    struct captured c = {.type = ev->type,
                         .fault_id = ev->fault_id,
                         .cause = ev->cause,
                         .severity = ev->severity,
                         .ppt = ev->ppt,
                         .deadline_ms = ev->deadline_ms,
                         .time_ms = ev->time_ms};

    snprintf(c.uuid, sizeof c.uuid, "%s", ev->vm_uuid ? ev->vm_uuid : "");
    snprintf(c.manager, sizeof c.manager, "%s", ev->vnf_manager ? ev->vnf_manager : "");
    g_array_append_val(fx->events, c);
}

static struct vmh_config *
config(uint32_t ims_ppt)
{
    struct vmh_config *cfg = g_new0(struct vmh_config, 1);

    cfg->settings.default_ppt = 60;
    cfg->settings.cancel_on_clear = true;
    cfg->settings.max_concurrent_migrations = 4;
    cfg->settings.shutdown_timeout = 5;
    cfg->n_hosts = 2;
    cfg->hosts = g_new0(struct vmh_host_conf, 2);
    cfg->hosts[0].name = g_strdup("a");
    cfg->hosts[0].uri = g_strdup("test:///a");
    cfg->hosts[0].sysfs_root = g_strdup("/");
    cfg->hosts[1].name = g_strdup("b");
    cfg->hosts[1].uri = g_strdup("test:///b");
    cfg->hosts[1].sysfs_root = g_strdup("/");
    cfg->n_managers = 1;
    cfg->managers = g_new0(struct vmh_manager_conf, 1);
    cfg->managers[0].name = g_strdup("vnfm-ims");
    cfg->managers[0].has_ppt = true;
    cfg->managers[0].ppt = ims_ppt;
    cfg->state_dir = g_strdup("/nonexistent");
    vmh_config_index(cfg);
    return cfg;
}

static struct vmh_domain_info
dom(const char *uuid, const char *name, const char *manager)
{
    struct vmh_domain_info d = {.name = g_strdup(name),
                                .power = VMH_POWER_RUNNING,
                                .persistent = true,
                                .memory_kib = 1024,
                                .vcpus = 1};

    snprintf(d.uuid, sizeof d.uuid, "%s", uuid);
    if (manager) {
        d.meta.present = true;
        d.meta.manager = g_strdup(manager);
    }
    return d;
}

static void
hook_added(const struct vmh_host_conf *h, void *opaque)
{
    ((struct fx *)opaque)->added++;
}

static void
hook_removed(const char *name, void *opaque)
{
    ((struct fx *)opaque)->removed++;
}

static int
setup(void **state)
{
    struct fx *fx = g_new0(struct fx, 1);
    struct vmh_domain_info *a = g_new0(struct vmh_domain_info, 2);
    struct vmh_domain_info *b = g_new0(struct vmh_domain_info, 1);

    fx->events = g_array_new(FALSE, TRUE, sizeof(struct captured));
    fx->engine = vmh_engine_new(the_loop, config(120));
    vmh_engine_observe(fx->engine, capture, fx);
    vmh_engine_set_hooks(fx->engine, &(struct vmh_engine_hooks){.host_added = hook_added,
                                                                .host_removed = hook_removed,
                                                                .opaque = fx});
    a[0] = dom(UUID_A1, "ims-1", "vnfm-ims");
    a[1] = dom(UUID_A2, "plain-1", NULL);
    b[0] = dom(UUID_B1, "ims-2", "vnfm-ims");
    vmh_engine_host_connected(fx->engine, "a", a, 2);
    vmh_engine_host_connected(fx->engine, "b", b, 1);
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

static struct captured *
ev(struct fx *fx, guint i)
{
    assert_true(i < fx->events->len);
    return &g_array_index(fx->events, struct captured, i);
}

static const struct vmh_vm_snap *
vm_now(struct fx *fx, struct vmh_snapshot **snap, const char *uuid)
{
    vmh_snapshot_unref(*snap);
    vmh_engine_publish(fx->engine);
    *snap = vmh_engine_snapshot(fx->engine);
    return vmh_snapshot_find_vm(*snap, uuid);
}

static uint64_t
raise_host(struct fx *fx, const char *host, const char *resource, enum vmh_cause cause,
           enum vmh_severity sev)
{
    struct vmh_fault_report r = {
        .host = host, .resource = resource, .cause = cause, .severity = sev, .value = "x"};

    return vmh_engine_raise_fault(fx->engine, &r);
}

static void
test_host_fault_notifies_every_vm_on_that_host_once(void **state)
{
    struct fx *fx = *state;
    int64_t before = vmh_time_real_ms();
    uint64_t id = raise_host(fx, "a", "hwmon0/temp1", VMH_CAUSE_HIGH_TEMPERATURE, VMH_SEV_MAJOR);
    bool seen1 = false, seen2 = false;

    assert_int_equal(fx->events->len, 2); /* both VMs on a, none on b */
    for (guint i = 0; i < 2; i++) {
        struct captured *c = ev(fx, i);

        assert_int_equal(c->type, VMH_EV_VM_ABNORMAL);
        assert_int_equal(c->fault_id, id);
        assert_int_equal(c->cause, VMH_CAUSE_HIGH_TEMPERATURE);
        assert_int_equal(c->severity, VMH_SEV_MAJOR);
        if (!strcmp(c->uuid, UUID_A1)) {
            seen1 = true;
            assert_string_equal(c->manager, "vnfm-ims");
            assert_int_equal(c->ppt, 120);
        } else {
            seen2 = !strcmp(c->uuid, UUID_A2);
            assert_int_equal(c->ppt, 60);
        }
        /* The deadline is the notification time plus the window. */
        assert_true(c->deadline_ms >= before + (int64_t)c->ppt * 1000);
        assert_true(c->deadline_ms <= c->time_ms + (int64_t)c->ppt * 1000);
    }
    assert_true(seen1 && seen2);

    /* The same fault again: no news. */
    assert_int_equal(raise_host(fx, "a", "hwmon0/temp1", VMH_CAUSE_HIGH_TEMPERATURE, VMH_SEV_MAJOR),
                     id);
    assert_int_equal(fx->events->len, 2);
}

static void
test_worse_severity_is_announced_and_keeps_the_deadline(void **state)
{
    struct fx *fx = *state;
    uint64_t id = raise_host(fx, "a", "hwmon0/temp1", VMH_CAUSE_HIGH_TEMPERATURE, VMH_SEV_MAJOR);
    int64_t deadline = ev(fx, 0)->deadline_ms;

    raise_host(fx, "a", "hwmon0/temp1", VMH_CAUSE_HIGH_TEMPERATURE, VMH_SEV_CRITICAL);
    assert_int_equal(fx->events->len, 4);
    assert_int_equal(ev(fx, 2)->severity, VMH_SEV_CRITICAL);
    assert_int_equal(ev(fx, 2)->fault_id, id);
    for (guint i = 2; i < 4; i++)
        if (!strcmp(ev(fx, i)->uuid, ev(fx, 0)->uuid))
            assert_int_equal(ev(fx, i)->deadline_ms, deadline);
    /* Better again is not news. */
    raise_host(fx, "a", "hwmon0/temp1", VMH_CAUSE_HIGH_TEMPERATURE, VMH_SEV_MAJOR);
    assert_int_equal(fx->events->len, 4);
}

static void
test_new_cause_on_same_vm_is_notified_window_not_restarted(void **state)
{
    struct fx *fx = *state;
    struct vmh_fault_report r = {
        .host = "a", .vm_uuid = UUID_A1, .cause = VMH_CAUSE_WATCHDOG, .severity = VMH_SEV_CRITICAL};
    struct vmh_snapshot *snap = NULL;
    int64_t deadline;

    raise_host(fx, "a", "hwmon0/temp1", VMH_CAUSE_HIGH_TEMPERATURE, VMH_SEV_MAJOR);
    deadline = vm_now(fx, &snap, UUID_A1)->deadline_ms;
    assert_true(deadline > 0);
    g_usleep(5000);
    vmh_engine_raise_fault(fx->engine, &r);
    assert_int_equal(fx->events->len, 3); /* only the VM it touches */
    assert_string_equal(ev(fx, 2)->uuid, UUID_A1);
    assert_int_equal(ev(fx, 2)->cause, VMH_CAUSE_WATCHDOG);
    assert_int_equal(ev(fx, 2)->deadline_ms, deadline);
    assert_int_equal(vm_now(fx, &snap, UUID_A1)->cause, VMH_CAUSE_WATCHDOG); /* the worst */
    vmh_snapshot_unref(snap);
}

static void
test_clear_notifies_and_ends_the_window(void **state)
{
    struct fx *fx = *state;
    struct vmh_snapshot *snap = NULL;
    uint64_t id = raise_host(fx, "a", "mc0", VMH_CAUSE_MEMORY_UE, VMH_SEV_CRITICAL);
    const struct vmh_vm_snap *vm = vm_now(fx, &snap, UUID_A1);

    assert_int_equal(vm->health, VMH_HEALTH_FAULTY);
    assert_int_equal(vm->cause, VMH_CAUSE_MEMORY_UE);
    assert_int_equal(vmh_snapshot_find_host(snap, "a")->health, VMH_HEALTH_FAULTY);
    assert_int_equal(vmh_snapshot_find_host(snap, "b")->health, VMH_HEALTH_NORMAL);

    vmh_engine_clear_fault_of(fx->engine, "a", NULL, "mc0", VMH_CAUSE_MEMORY_UE);
    assert_int_equal(fx->events->len, 4);
    assert_int_equal(ev(fx, 2)->type, VMH_EV_FAULT_CLEARED);
    assert_int_equal(ev(fx, 2)->fault_id, id);
    vm = vm_now(fx, &snap, UUID_A1);
    assert_int_equal(vm->health, VMH_HEALTH_NORMAL);
    assert_int_equal(vm->cause, VMH_CAUSE_NONE);
    assert_int_equal(vm->deadline_ms, 0);
    /* Kept in the history, cleared. */
    assert_int_equal(snap->n_faults, 1);
    assert_int_equal(snap->faults[0].id, id);
    assert_true(snap->faults[0].cleared_ms >= snap->faults[0].detected_ms);
    /* Clearing what is not active does nothing. */
    vmh_engine_clear_fault_of(fx->engine, "a", NULL, "mc0", VMH_CAUSE_MEMORY_UE);
    assert_int_equal(fx->events->len, 4);
    vmh_snapshot_unref(snap);
}

static void
test_warning_is_sub_health(void **state)
{
    struct fx *fx = *state;
    struct vmh_snapshot *snap = NULL;

    raise_host(fx, "b", "mc0", VMH_CAUSE_MEMORY_CE_RATE, VMH_SEV_WARNING);
    assert_int_equal(vm_now(fx, &snap, UUID_B1)->health, VMH_HEALTH_SUB_HEALTH);
    assert_int_equal(vmh_snapshot_find_host(snap, "b")->health, VMH_HEALTH_SUB_HEALTH);
    vmh_snapshot_unref(snap);
}

static void
test_lost_hypervisor_is_a_host_unreachable_fault(void **state)
{
    struct fx *fx = *state;
    struct vmh_snapshot *snap = NULL;
    struct vmh_domain_info *again = g_new0(struct vmh_domain_info, 1);

    vmh_engine_host_disconnected(fx->engine, "b", "end of file");
    assert_int_equal(fx->events->len, 1);
    assert_int_equal(ev(fx, 0)->cause, VMH_CAUSE_HOST_UNREACHABLE);
    assert_int_equal(ev(fx, 0)->severity, VMH_SEV_CRITICAL);
    assert_string_equal(ev(fx, 0)->uuid, UUID_B1);
    assert_int_equal(vm_now(fx, &snap, UUID_B1)->health, VMH_HEALTH_UNREACHABLE);
    /* Failed reconnection attempts are not new faults. */
    vmh_engine_host_disconnected(fx->engine, "b", "connection refused");
    assert_int_equal(fx->events->len, 1);
    again[0] = dom(UUID_B1, "ims-2", "vnfm-ims");
    vmh_engine_host_connected(fx->engine, "b", again, 1);
    assert_int_equal(fx->events->len, 2);
    assert_int_equal(ev(fx, 1)->type, VMH_EV_FAULT_CLEARED);
    assert_int_equal(vm_now(fx, &snap, UUID_B1)->health, VMH_HEALTH_NORMAL);
    vmh_snapshot_unref(snap);
}

static void
test_rpcs_check_their_arguments(void **state)
{
    struct fx *fx = *state;
    struct vmh_rpc_result res;

    vmh_engine_rpc_report_fault(fx->engine, NULL, "00000000-0000-4000-8000-000000000000",
                                VMH_CAUSE_EXTERNAL, VMH_SEV_MAJOR, "x", &res);
    assert_int_equal(res.status, VMH_RPC_UNKNOWN_VM);
    vmh_engine_rpc_report_fault(fx->engine, "nowhere", NULL, VMH_CAUSE_EXTERNAL, VMH_SEV_MAJOR, "x",
                                &res);
    assert_int_equal(res.status, VMH_RPC_UNKNOWN_HOST);
    vmh_engine_rpc_report_fault(fx->engine, "a", UUID_A1, VMH_CAUSE_EXTERNAL, VMH_SEV_MAJOR, "x",
                                &res);
    assert_int_equal(res.status, VMH_RPC_INVALID);
    /* Upper-case UUIDs name the same VM. */
    vmh_engine_rpc_report_fault(fx->engine, NULL, "A0000000-0000-4000-8000-000000000001",
                                VMH_CAUSE_EXTERNAL, VMH_SEV_MINOR, "IPMI: PSU 2 lost", &res);
    assert_int_equal(res.status, VMH_RPC_OK);
    assert_true(res.fault_id > 0);
    assert_int_equal(fx->events->len, 1);
    assert_string_equal(ev(fx, 0)->uuid, UUID_A1);
    vmh_engine_rpc_clear_fault(fx->engine, res.fault_id + 100, &res);
    assert_int_equal(res.status, VMH_RPC_UNKNOWN_FAULT);
    vmh_engine_rpc_clear_fault(fx->engine, ev(fx, 0)->fault_id, &res);
    assert_int_equal(res.status, VMH_RPC_OK);
    assert_int_equal(ev(fx, 1)->type, VMH_EV_FAULT_CLEARED);
    vmh_engine_rpc_migration_ready(fx->engine, UUID_A1, NULL, &res);
    assert_int_equal(res.status, VMH_RPC_INVALID); /* nothing pending */
    assert_non_null(strstr(res.message, "no migration is pending"));
    vmh_engine_rpc_migrate_vm(fx->engine, UUID_A1, "nowhere", &res);
    assert_int_equal(res.status, VMH_RPC_UNKNOWN_HOST);
}

static void
test_fault_history_is_bounded(void **state)
{
    struct fx *fx = *state;
    struct vmh_snapshot *snap;

    for (int i = 0; i < 300; i++) {
        char res[16];

        snprintf(res, sizeof res, "r%d", i);
        raise_host(fx, "b", res, VMH_CAUSE_EXTERNAL, VMH_SEV_MINOR);
        vmh_engine_clear_fault_of(fx->engine, "b", NULL, res, VMH_CAUSE_EXTERNAL);
    }
    vmh_engine_publish(fx->engine);
    snap = vmh_engine_snapshot(fx->engine);
    assert_int_equal(snap->n_faults, 256);
    assert_int_equal(snap->stats.faults_detected, 300);
    vmh_snapshot_unref(snap);
}

static void
test_sent_counters_are_read_live_without_a_new_snapshot(void **state)
{
    struct fx *fx = *state;
    struct vmh_snapshot *snap, by_hand = {.stats = {.notifications_sent = 7, .traps_sent = 8}};
    struct vmh_stats st;

    vmh_engine_publish(fx->engine);
    snap = vmh_engine_snapshot(fx->engine);
    vmh_engine_count(fx->engine, VMH_STAT_NOTIFICATIONS_SENT, 3);
    vmh_engine_count(fx->engine, VMH_STAT_TRAPS_SENT, 2);
    vmh_snapshot_stats(snap, &st);
    assert_int_equal(st.notifications_sent, snap->stats.notifications_sent + 3);
    assert_int_equal(st.traps_sent, snap->stats.traps_sent + 2);
    assert_int_equal(st.faults_detected, snap->stats.faults_detected);
    vmh_snapshot_unref(snap);
    vmh_snapshot_stats(&by_hand, &st);
    assert_int_equal(st.notifications_sent, 7);
    assert_int_equal(st.traps_sent, 8);
}

static void
test_new_configuration_changes_hosts_and_future_windows_only(void **state)
{
    struct fx *fx = *state;
    struct vmh_snapshot *snap = NULL;
    struct vmh_config *cfg = config(30);
    int64_t deadline;

    raise_host(fx, "a", "x", VMH_CAUSE_EXTERNAL, VMH_SEV_MAJOR);
    deadline = vm_now(fx, &snap, UUID_A1)->deadline_ms;
    /* Host b goes, host c comes, vnfm-ims asks for 30 s instead of 120. */
    g_free(cfg->hosts[1].name);
    g_free(cfg->hosts[1].uri);
    cfg->hosts[1].name = g_strdup("c");
    cfg->hosts[1].uri = g_strdup("test:///c");
    vmh_config_index(cfg);
    vmh_engine_apply_config(fx->engine, cfg);
    assert_int_equal(fx->added, 1);
    assert_int_equal(fx->removed, 1);
    assert_null(vm_now(fx, &snap, UUID_B1)); /* went with its host */
    assert_non_null(vmh_snapshot_find_host(snap, "c"));
    assert_null(vmh_snapshot_find_host(snap, "b"));
    assert_int_equal(vm_now(fx, &snap, UUID_A1)->ppt, 30);
    assert_int_equal(vm_now(fx, &snap, UUID_A1)->deadline_ms, deadline); /* running window */
    vmh_snapshot_unref(snap);
}

static int
group_setup(void **state)
{
    vmh_log_init("test", true, getenv("VMH_TEST_DEBUG"));
    /* The loop is registered but not started: the engine runs on this
     * thread and snapshots are published explicitly. */
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
        cmocka_unit_test_setup_teardown(test_host_fault_notifies_every_vm_on_that_host_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_worse_severity_is_announced_and_keeps_the_deadline,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_cause_on_same_vm_is_notified_window_not_restarted,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_clear_notifies_and_ends_the_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sent_counters_are_read_live_without_a_new_snapshot,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_warning_is_sub_health, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_hypervisor_is_a_host_unreachable_fault, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rpcs_check_their_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_history_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_new_configuration_changes_hosts_and_future_windows_only, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
