/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Migration cases in the engine: windows, the ready and timer paths,
 * target choice, concurrency, cancel-on-clear, outcomes and the journal.
 * The hypervisor layer is replaced by hooks that record the requests; the test
 * reports their outcome as the worker would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <glib.h>
#include <libvirt/libvirt.h>

#include "core/engine.h"
#include "core/loop.h"
#include "core/policy.h"
#include "util/log.h"
#include "util/time.h"

#define UUID_1 "a0000000-0000-4000-8000-000000000001"
#define UUID_2 "a0000000-0000-4000-8000-000000000002"
#define UUID_3 "a0000000-0000-4000-8000-000000000003"

static struct vmh_loop *the_loop;

struct fx {
    struct vmh_engine *engine;
    GArray *events;   /* enum vmh_event_type */
    GArray *requests; /* struct vmh_migration_request, strings dropped */
    GPtrArray *targets;
    GPtrArray *reasons;
    int recovered;
    char *dir;
    char *journal_at_first_abnormal; /* what the journal held when the first was told */
    GPtrArray *told; /* when recording: the journal as it was at each word about a case */
};

static char *
journal_now(struct fx *fx)
{
    char *path = g_build_filename(fx->dir, "migrations.journal", NULL);
    char *text = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL))
        text = g_strdup("");
    g_free(path);
    return text;
}

static void
capture(const struct vmh_event *ev, void *opaque)
{
    struct fx *fx = opaque;

    g_array_append_val(fx->events, ev->type);
    if (ev->type == VMH_EV_VM_ABNORMAL && fx->dir && !fx->journal_at_first_abnormal) {
        char *path = g_build_filename(fx->dir, "migrations.journal", NULL);

        if (!g_file_get_contents(path, &fx->journal_at_first_abnormal, NULL, NULL))
            fx->journal_at_first_abnormal = g_strdup("");
        g_free(path);
    }
    if (ev->type == VMH_EV_MIGRATION_FAILED)
        g_ptr_array_add(fx->reasons, g_strdup(ev->reason));
    if (fx->told)
        g_ptr_array_add(fx->told, journal_now(fx));
}

/* Log lines about the test's VMs, when recording. */
static void
capture_log(enum vmh_log_level level, const char *token, const char *msg, void *opaque)
{
    struct fx *fx = opaque;

    if (fx->told && !strcmp(token, "core") && (strstr(msg, UUID_1) || strstr(msg, UUID_2)))
        g_ptr_array_add(fx->told, journal_now(fx));
}

static void
run_migration(const struct vmh_migration_request *req, void *opaque)
{
    struct fx *fx = opaque;

    g_array_append_val(fx->requests, *req);
    g_ptr_array_add(fx->targets, g_strdup(req->target));
}

static void
recover_migration(const struct vmh_migration_request *req, void *opaque)
{
    struct fx *fx = opaque;

    fx->recovered++;
    g_array_append_val(fx->requests, *req);
    g_ptr_array_add(fx->targets, g_strdup(req->target));
}

static struct vmh_config *
config(unsigned max_concurrent, uint32_t ppt)
{
    struct vmh_config *cfg = g_new0(struct vmh_config, 1);
    const char *names[] = {"a", "b", "c"};

    cfg->settings.default_ppt = ppt;
    cfg->settings.cancel_on_clear = true;
    cfg->settings.max_concurrent_migrations = (uint16_t)max_concurrent;
    cfg->settings.shutdown_timeout = 5;
    cfg->n_hosts = 3;
    cfg->hosts = g_new0(struct vmh_host_conf, 3);
    for (int i = 0; i < 3; i++) {
        cfg->hosts[i].name = g_strdup(names[i]);
        cfg->hosts[i].uri = g_strdup_printf("test:///%s", names[i]);
        cfg->hosts[i].sysfs_root = g_strdup("/");
        cfg->hosts[i].migration_target = true;
        cfg->hosts[i].priority = 100;
    }
    cfg->hosts[2].priority = 200; /* c is preferred */
    cfg->state_dir = g_strdup("/nonexistent");
    vmh_config_index(cfg);
    return cfg;
}

/* Host a with n VMs (UUID_1, UUID_2, UUID_3 ...), b and c empty. */
static void
connect_hosts_n(struct fx *fx, int n)
{
    struct vmh_domain_info *a = g_new0(struct vmh_domain_info, n);
    const char *uuids[] = {UUID_1, UUID_2, UUID_3};

    assert_true(n <= 3);
    for (int i = 0; i < n; i++) {
        snprintf(a[i].uuid, sizeof a[i].uuid, "%s", uuids[i]);
        a[i].name = g_strdup_printf("vm-%d", i + 1);
        a[i].power = VMH_POWER_RUNNING;
        a[i].persistent = true;
        a[i].memory_kib = 1024 * 1024;
        a[i].vcpus = 2;
    }
    vmh_engine_host_connected(fx->engine, "a", a, n);
    vmh_engine_host_connected(fx->engine, "b", g_new0(struct vmh_domain_info, 1), 0);
    vmh_engine_host_connected(fx->engine, "c", g_new0(struct vmh_domain_info, 1), 0);
}

static void
connect_hosts(struct fx *fx)
{
    connect_hosts_n(fx, 2);
}

static void
remove_dir(const char *dir)
{
    char *cmd = g_strdup_printf("rm -rf '%s'", dir);

    assert_int_equal(system(cmd), 0);
    g_free(cmd);
}

static struct fx *
start_with(struct vmh_config *cfg, const char *dir)
{
    struct fx *fx = g_new0(struct fx, 1);

    fx->events = g_array_new(FALSE, TRUE, sizeof(enum vmh_event_type));
    fx->requests = g_array_new(FALSE, TRUE, sizeof(struct vmh_migration_request));
    fx->targets = g_ptr_array_new_with_free_func(g_free);
    fx->reasons = g_ptr_array_new_with_free_func(g_free);
    fx->dir = dir ? g_strdup(dir) : NULL;
    fx->engine = vmh_engine_new(the_loop, cfg);
    vmh_engine_observe(fx->engine, capture, fx);
    vmh_engine_set_hooks(fx->engine, &(struct vmh_engine_hooks){
                                         .run_migration = run_migration,
                                         .recover_migration = recover_migration,
                                         .opaque = fx,
                                     });
    if (dir)
        assert_int_equal(vmh_engine_journal_open(fx->engine, dir), 0);
    return fx;
}

static void
stop(struct fx *fx)
{
    vmh_engine_free(fx->engine);
    g_array_free(fx->events, TRUE);
    g_array_free(fx->requests, TRUE);
    g_ptr_array_free(fx->targets, TRUE);
    g_ptr_array_free(fx->reasons, TRUE);
    g_free(fx->dir);
    g_free(fx->journal_at_first_abnormal);
    g_free(fx);
}

static void
room(struct fx *fx, const char *host, uint64_t gib)
{
    vmh_engine_host_room(fx->engine, host, gib * 1024 * 1024, 16);
}

static void
fault_on_a(struct fx *fx)
{
    struct vmh_fault_report r = {.host = "a",
                                 .resource = "hwmon0/temp1",
                                 .cause = VMH_CAUSE_HIGH_TEMPERATURE,
                                 .severity = VMH_SEV_MAJOR};

    vmh_engine_raise_fault(fx->engine, &r);
}

static const struct vmh_vm_snap *
vm(struct fx *fx, struct vmh_snapshot **snap, const char *uuid)
{
    vmh_snapshot_unref(*snap);
    vmh_engine_publish(fx->engine);
    *snap = vmh_engine_snapshot(fx->engine);
    return vmh_snapshot_find_vm(*snap, uuid);
}

static int
count(struct fx *fx, enum vmh_event_type type)
{
    int n = 0;

    for (guint i = 0; i < fx->events->len; i++)
        n += g_array_index(fx->events, enum vmh_event_type, i) == type;
    return n;
}

/* Runs the loop on this thread until pred or timeout (the loop thread is
 * not started in this test: the engine lives here). */
static void
spin_until(bool (*pred)(struct fx *), struct fx *fx, int timeout_ms)
{
    int64_t end = vmh_time_mono_ms() + timeout_ms;

    while (!pred(fx)) {
        if (vmh_time_mono_ms() > end)
            fail_msg("timed out");
        virEventRunDefaultImpl();
    }
}

static bool
has_request(struct fx *fx)
{
    return fx->requests->len > 0;
}

static void
test_ready_starts_at_once_to_the_preferred_target(void **state)
{
    struct fx *fx = start_with(config(4, 600), NULL);
    struct vmh_snapshot *snap = NULL;
    struct vmh_rpc_result res;
    struct vmh_migration_outcome done = {.ok = true, .started = true};

    connect_hosts(fx);
    room(fx, "b", 8);
    room(fx, "c", 8);
    fault_on_a(fx);
    assert_int_equal(vm(fx, &snap, UUID_1)->migration, VMH_MIG_PENDING);
    assert_int_equal(fx->requests->len, 0); /* the window runs: 600 s */
    vmh_engine_rpc_migration_ready(fx->engine, UUID_1, NULL, &res);
    assert_int_equal(res.status, VMH_RPC_OK);
    assert_int_equal(fx->requests->len, 1);
    assert_string_equal(g_ptr_array_index(fx->targets, 0), "c"); /* priority 200 */
    assert_int_equal(count(fx, VMH_EV_MIGRATION_STARTED), 1);
    assert_int_equal(vm(fx, &snap, UUID_1)->migration, VMH_MIG_MIGRATING);
    assert_string_equal(vm(fx, &snap, UUID_1)->target_host, "c");
    assert_int_equal(vm(fx, &snap, UUID_2)->migration, VMH_MIG_PENDING); /* still waiting */

    vmh_engine_migration_done(
        fx->engine, g_array_index(fx->requests, struct vmh_migration_request, 0).id, &done);
    assert_int_equal(count(fx, VMH_EV_MIGRATION_COMPLETED), 1);
    assert_int_equal(vm(fx, &snap, UUID_1)->migration, VMH_MIG_COMPLETED);
    assert_string_equal(vm(fx, &snap, UUID_1)->host, "c");
    assert_int_equal(vmh_snapshot_find_host(snap, "c")->vm_count, 1);
    assert_int_equal(snap->stats.migrations_started, 1);
    assert_int_equal(snap->stats.migrations_completed, 1);
    vmh_snapshot_unref(snap);
    stop(fx);
}

static void
test_timer_path_starts_at_the_deadline_not_before(void **state)
{
    struct fx *fx = start_with(config(4, 1), NULL);
    int64_t raised;
    struct vmh_snapshot *snap = NULL;
    int64_t deadline;

    connect_hosts(fx);
    room(fx, "b", 8);
    raised = vmh_time_real_ms();
    fault_on_a(fx);
    deadline = vm(fx, &snap, UUID_1)->deadline_ms;
    assert_true(deadline >= raised + 1000);
    assert_int_equal(fx->requests->len, 0);
    spin_until(has_request, fx, 5000);
    assert_true(vmh_time_real_ms() >= deadline);
    vmh_snapshot_unref(snap);
    stop(fx);
}

static void
test_no_target_fails_then_retries_when_one_appears(void **state)
{
    struct fx *fx = start_with(config(4, 600), NULL);
    struct vmh_snapshot *snap = NULL;
    struct vmh_rpc_result res;

    connect_hosts(fx);
    room(fx, "b", 0); /* full */
    fault_on_a(fx);
    vmh_engine_rpc_migrate_vm(fx->engine, UUID_1, NULL, &res);
    assert_int_equal(res.status, VMH_RPC_OK);
    assert_int_equal(fx->requests->len, 0);
    assert_int_equal(count(fx, VMH_EV_MIGRATION_FAILED), 1);
    assert_non_null(strstr(g_ptr_array_index(fx->reasons, 0), "no target host"));
    assert_int_equal(vm(fx, &snap, UUID_1)->migration, VMH_MIG_FAILED);
    room(fx, "b", 8); /* a target appears */
    assert_int_equal(fx->requests->len, 1);
    assert_string_equal(g_ptr_array_index(fx->targets, 0), "b");
    assert_int_equal(count(fx, VMH_EV_MIGRATION_FAILED), 1); /* told once */
    vmh_snapshot_unref(snap);
    stop(fx);
}

static void
test_explicit_target_is_checked(void **state)
{
    struct fx *fx = start_with(config(4, 600), NULL);
    struct vmh_rpc_result res;

    connect_hosts(fx);
    room(fx, "b", 0);
    room(fx, "c", 8);
    fault_on_a(fx);
    vmh_engine_rpc_migration_ready(fx->engine, UUID_1, "b", &res);
    assert_int_equal(res.status, VMH_RPC_INVALID);
    assert_non_null(strstr(res.message, "not enough free memory"));
    vmh_engine_rpc_migration_ready(fx->engine, UUID_1, "a", &res);
    assert_int_equal(res.status, VMH_RPC_INVALID);
    assert_non_null(strstr(res.message, "own host"));
    assert_int_equal(fx->requests->len, 0);
    vmh_engine_rpc_migration_ready(fx->engine, UUID_1, "c", &res);
    assert_int_equal(res.status, VMH_RPC_OK);
    assert_string_equal(g_ptr_array_index(fx->targets, 0), "c");
    vmh_engine_rpc_migration_ready(fx->engine, UUID_1, NULL, &res);
    assert_int_equal(res.status, VMH_RPC_INVALID); /* already migrating */
    stop(fx);
}

static void
test_concurrency_limit_queues_in_deadline_order(void **state)
{
    struct fx *fx = start_with(config(1, 600), NULL);
    struct vmh_rpc_result res;
    struct vmh_migration_outcome fail = {.error = "define: refused"};

    connect_hosts(fx);
    room(fx, "b", 8);
    fault_on_a(fx);
    vmh_engine_rpc_migrate_vm(fx->engine, UUID_2, NULL, &res);
    vmh_engine_rpc_migrate_vm(fx->engine, UUID_1, NULL, &res);
    assert_int_equal(fx->requests->len, 1); /* one slot */
    assert_string_equal(g_array_index(fx->requests, struct vmh_migration_request, 0).uuid, UUID_2);
    vmh_engine_migration_done(
        fx->engine, g_array_index(fx->requests, struct vmh_migration_request, 0).id, &fail);
    assert_int_equal(count(fx, VMH_EV_MIGRATION_FAILED), 1);
    assert_string_equal(g_ptr_array_index(fx->reasons, 0), "define: refused");
    assert_int_equal(fx->requests->len, 2); /* the slot went to the next */
    assert_string_equal(g_array_index(fx->requests, struct vmh_migration_request, 1).uuid, UUID_1);
    stop(fx);
}

static void
test_a_request_whose_host_leaves_frees_its_slot(void **state)
{
    struct fx *fx = start_with(config(1, 600), NULL);
    struct vmh_domain_info *c = g_new0(struct vmh_domain_info, 1);
    struct vmh_config *cfg = config(1, 600);
    struct vmh_rpc_result res;

    connect_hosts(fx);
    snprintf(c[0].uuid, sizeof c[0].uuid, "%s", "c0000000-0000-4000-8000-000000000001");
    c[0].name = g_strdup("vm-on-c");
    c[0].power = VMH_POWER_RUNNING;
    c[0].persistent = true;
    c[0].memory_kib = 1024;
    vmh_engine_host_connected(fx->engine, "c", c, 1);
    room(fx, "b", 8);
    room(fx, "c", 8);
    vmh_engine_rpc_migrate_vm(fx->engine, UUID_1, NULL, &res);
    assert_int_equal(fx->requests->len, 1); /* the only slot */
    /* Host a leaves the configuration in the middle of the request. */
    g_free(cfg->hosts[0].name);
    cfg->hosts[0].name = g_strdup("z");
    vmh_config_index(cfg);
    vmh_engine_apply_config(fx->engine, cfg);
    vmh_engine_rpc_migrate_vm(fx->engine, "c0000000-0000-4000-8000-000000000001", NULL, &res);
    assert_int_equal(res.status, VMH_RPC_OK);
    assert_int_equal(fx->requests->len, 2); /* the slot came back */
    stop(fx);
}

static void
test_clearing_cancels_a_pending_case(void **state)
{
    struct fx *fx = start_with(config(4, 600), NULL);
    struct vmh_snapshot *snap = NULL;

    connect_hosts(fx);
    room(fx, "b", 8);
    fault_on_a(fx);
    vmh_engine_clear_fault_of(fx->engine, "a", NULL, "hwmon0/temp1", VMH_CAUSE_HIGH_TEMPERATURE);
    assert_int_equal(vm(fx, &snap, UUID_1)->migration, VMH_MIG_CANCELLED);
    assert_int_equal(vm(fx, &snap, UUID_1)->deadline_ms, 0);
    assert_int_equal(fx->requests->len, 0);
    vmh_snapshot_unref(snap);
    stop(fx);
}

static void
test_without_cancel_on_clear_the_case_goes_on(void **state)
{
    struct vmh_config *cfg = config(4, 600);
    struct fx *fx;
    struct vmh_snapshot *snap = NULL;

    cfg->settings.cancel_on_clear = false;
    fx = start_with(cfg, NULL);
    connect_hosts(fx);
    fault_on_a(fx);
    vmh_engine_clear_fault_of(fx->engine, "a", NULL, "hwmon0/temp1", VMH_CAUSE_HIGH_TEMPERATURE);
    assert_int_equal(vm(fx, &snap, UUID_1)->migration, VMH_MIG_PENDING);
    assert_true(vm(fx, &snap, UUID_1)->deadline_ms > 0);
    vmh_snapshot_unref(snap);
    stop(fx);
}

static void
test_journal_resumes_pending_and_recovers_migrating(void **state)
{
    char *dir = g_dir_make_tmp("vmh-journal-XXXXXX", NULL);
    struct fx *fx = start_with(config(4, 600), dir);
    struct vmh_snapshot *snap = NULL;
    struct vmh_rpc_result res;
    int64_t deadline;

    connect_hosts(fx);
    room(fx, "b", 8);
    fault_on_a(fx);
    /* Every window of the host fault was on disk before the first VM was
     * told (in one write, not one per VM). */
    assert_non_null(fx->journal_at_first_abnormal);
    assert_non_null(strstr(fx->journal_at_first_abnormal, UUID_1));
    assert_non_null(strstr(fx->journal_at_first_abnormal, UUID_2));
    deadline = vm(fx, &snap, UUID_2)->deadline_ms;
    vmh_engine_rpc_migration_ready(fx->engine, UUID_1, NULL, &res);
    vmh_engine_migration_step(fx->engine,
                              g_array_index(fx->requests, struct vmh_migration_request, 0).id,
                              VMH_STEP_DEFINE);
    vmh_snapshot_unref(snap);
    snap = NULL;
    stop(fx); /* as if killed: nothing finished */

    fx = start_with(config(4, 600), dir);
    connect_hosts(fx);
    /* The pending case keeps its original deadline, without a new fault. */
    assert_int_equal(vm(fx, &snap, UUID_2)->migration, VMH_MIG_PENDING);
    assert_int_equal(vm(fx, &snap, UUID_2)->deadline_ms, deadline);
    /* The interrupted one is handed to the hypervisor layer to settle. */
    assert_int_equal(fx->recovered, 1);
    assert_string_equal(g_array_index(fx->requests, struct vmh_migration_request, 0).uuid, UUID_1);
    assert_true(g_array_index(fx->requests, struct vmh_migration_request, 0).was_running);
    assert_int_equal(g_array_index(fx->requests, struct vmh_migration_request, 0).step,
                     VMH_STEP_DEFINE);
    assert_string_equal(g_ptr_array_index(fx->targets, 0), "b");
    assert_int_equal(vm(fx, &snap, UUID_1)->migration, VMH_MIG_MIGRATING);
    vmh_snapshot_unref(snap);
    stop(fx);
    remove_dir(dir);
    g_free(dir);
}

/* A journal written by the release before steps were stored by name
 * (tests/fixtures/journal/migrations.journal.v1, made by that release's
 * engine: vm-1 migrating a -> b at step 4, vm-2 failed for want of a
 * target, vm-3 pending) is read after the upgrade, and rewritten in the
 * current format. */
static void
test_a_journal_of_the_previous_release_is_resumed(void **state)
{
    char *dir = g_dir_make_tmp("vmh-journal-XXXXXX", NULL);
    char *text = NULL, *path = g_build_filename(dir, "migrations.journal", NULL);
    struct vmh_snapshot *snap = NULL;
    struct fx *fx;

    assert_true(
        g_file_get_contents(VMH_TEST_FIXTURES "/journal/migrations.journal.v1", &text, NULL, NULL));
    assert_true(g_str_has_prefix(text, "vmhealth-journal 1\n"));
    assert_true(g_file_set_contents(path, text, -1, NULL));
    g_free(text);
    fx = start_with(config(4, 600), dir);
    connect_hosts_n(fx, 3);
    /* vm-1: its interrupted request is settled, from the step by its name */
    assert_int_equal(fx->recovered, 1);
    assert_string_equal(g_array_index(fx->requests, struct vmh_migration_request, 0).uuid, UUID_1);
    assert_int_equal(g_array_index(fx->requests, struct vmh_migration_request, 0).step,
                     VMH_STEP_DEFINE);
    assert_true(g_array_index(fx->requests, struct vmh_migration_request, 0).was_running);
    assert_string_equal(g_ptr_array_index(fx->targets, 0), "b");
    assert_int_equal(vm(fx, &snap, UUID_1)->migration, VMH_MIG_MIGRATING);
    /* vm-2 (failed, no target) and vm-3 (pending) keep their deadline */
    assert_int_equal(vm(fx, &snap, UUID_2)->migration, VMH_MIG_PENDING);
    assert_int_equal(vm(fx, &snap, UUID_2)->deadline_ms, INT64_C(1796473574896));
    assert_int_equal(vm(fx, &snap, UUID_3)->migration, VMH_MIG_PENDING);
    assert_int_equal(vm(fx, &snap, UUID_3)->deadline_ms, INT64_C(1796473574896));
    /* rewritten in the current format, steps by name */
    text = journal_now(fx);
    assert_true(g_str_has_prefix(text, "vmhealth-journal 2\n"));
    assert_non_null(strstr(text, UUID_1 " migrating define 1796473574896 a b 1\n"));
    assert_non_null(strstr(text, UUID_3 " pending check 1796473574896 a - 0\n"));
    g_free(text);
    vmh_snapshot_unref(snap);
    stop(fx);
    remove_dir(dir);
    g_free(path);
    g_free(dir);
}

/* Lines the release cannot read are logged and skipped, the rest kept; a
 * journal of an unknown version is ignored as a whole. */
static void
test_an_unreadable_journal_line_is_skipped(void **state)
{
    char *dir = g_dir_make_tmp("vmh-journal-XXXXXX", NULL);
    char *path = g_build_filename(dir, "migrations.journal", NULL);
    struct vmh_snapshot *snap = NULL;
    struct fx *fx;

    assert_true(g_file_set_contents(path,
                                    "vmhealth-journal 2\n" UUID_1
                                    " migrating teleport 1796473574896 a b 1\n" UUID_2
                                    " pending check 1796473574896 a - 0\n",
                                    -1, NULL));
    fx = start_with(config(4, 600), dir);
    connect_hosts(fx);
    assert_int_equal(fx->recovered, 0); /* no step "teleport" */
    assert_int_equal(vm(fx, &snap, UUID_1)->migration, VMH_MIG_NONE);
    assert_int_equal(vm(fx, &snap, UUID_2)->migration, VMH_MIG_PENDING);
    vmh_snapshot_unref(snap);
    snap = NULL;
    stop(fx);

    assert_true(g_file_set_contents(
        path, "vmhealth-journal 3\n" UUID_2 " pending check 1796473574896 a - 0\n", -1, NULL));
    fx = start_with(config(4, 600), dir);
    connect_hosts(fx);
    assert_int_equal(vm(fx, &snap, UUID_2)->migration, VMH_MIG_NONE);
    vmh_snapshot_unref(snap);
    stop(fx);
    remove_dir(dir);
    g_free(path);
    g_free(dir);
}

/* Every word about a case that a call let out (events, log lines) came
 * after the journal write of that call: what the journal held then is what
 * it holds now.  Returns how many words there were. */
static guint
told_after_the_journal(struct fx *fx)
{
    char *now = journal_now(fx);
    guint n = fx->told->len;

    for (guint i = 0; i < n; i++)
        assert_string_equal(g_ptr_array_index(fx->told, i), now);
    g_ptr_array_set_size(fx->told, 0);
    g_free(now);
    return n;
}

/* A fixture that records the journal at every word about a case; the
 * words of the steps before the one under test are dropped. */
static struct fx *
recording(void)
{
    char *dir = g_dir_make_tmp("vmh-journal-XXXXXX", NULL);
    struct fx *fx = start_with(config(4, 600), dir);

    g_free(dir);
    connect_hosts(fx);
    room(fx, "b", 8);
    fx->told = g_ptr_array_new_with_free_func(g_free);
    vmh_log_set_sink(capture_log, fx);
    return fx;
}

static void
recording_stop(struct fx *fx)
{
    char *cmd = g_strdup_printf("rm -rf '%s'", fx->dir);

    vmh_log_set_sink(NULL, NULL);
    g_ptr_array_free(fx->told, TRUE);
    fx->told = NULL;
    assert_int_equal(system(cmd), 0);
    g_free(cmd);
    stop(fx);
}

static uint64_t
started(struct fx *fx)
{
    struct vmh_rpc_result res;

    fault_on_a(fx);
    vmh_engine_rpc_migration_ready(fx->engine, UUID_1, NULL, &res);
    assert_int_equal(fx->requests->len, 1);
    g_ptr_array_set_size(fx->told, 0);
    return g_array_index(fx->requests, struct vmh_migration_request, 0).id;
}

static void
test_windows_are_journalled_before_vm_abnormal(void **state)
{
    struct fx *fx = recording();

    fault_on_a(fx);
    assert_int_equal(count(fx, VMH_EV_VM_ABNORMAL), 2);
    assert_true(told_after_the_journal(fx) >= 2);
    recording_stop(fx);
}

static void
test_a_start_is_journalled_before_it_is_told(void **state)
{
    struct fx *fx = recording();
    struct vmh_rpc_result res;

    fault_on_a(fx);
    g_ptr_array_set_size(fx->told, 0);
    vmh_engine_rpc_migration_ready(fx->engine, UUID_1, NULL, &res);
    assert_int_equal(count(fx, VMH_EV_MIGRATION_STARTED), 1);
    assert_true(told_after_the_journal(fx) >= 2);
    recording_stop(fx);
}

static void
test_a_failed_migration_is_journalled_before_it_is_told(void **state)
{
    struct fx *fx = recording();
    struct vmh_migration_outcome failed = {.error = "define on b failed", .rolled_back = true};

    vmh_engine_migration_done(fx->engine, started(fx), &failed);
    assert_int_equal(count(fx, VMH_EV_MIGRATION_FAILED), 1);
    assert_true(told_after_the_journal(fx) >= 2);
    recording_stop(fx);
}

static void
test_a_completed_migration_is_journalled_before_it_is_told(void **state)
{
    struct fx *fx = recording();
    struct vmh_migration_outcome done = {.ok = true, .started = true};

    vmh_engine_migration_done(fx->engine, started(fx), &done);
    assert_int_equal(count(fx, VMH_EV_MIGRATION_COMPLETED), 1);
    assert_true(told_after_the_journal(fx) >= 2);
    recording_stop(fx);
}

static void
test_no_target_is_journalled_before_it_is_told(void **state)
{
    struct fx *fx = recording();
    struct vmh_rpc_result res;

    room(fx, "b", 0);
    fault_on_a(fx);
    g_ptr_array_set_size(fx->told, 0);
    vmh_engine_rpc_migration_ready(fx->engine, UUID_1, NULL, &res);
    assert_int_equal(res.status, VMH_RPC_OK);
    assert_int_equal(count(fx, VMH_EV_MIGRATION_FAILED), 1);
    assert_true(told_after_the_journal(fx) >= 2);
    recording_stop(fx);
}

static void
test_a_cancelled_case_is_journalled_before_it_is_told(void **state)
{
    struct fx *fx = recording();
    struct vmh_snapshot *snap = NULL;

    fault_on_a(fx);
    g_ptr_array_set_size(fx->told, 0);
    vmh_engine_clear_fault_of(fx->engine, "a", NULL, "hwmon0/temp1", VMH_CAUSE_HIGH_TEMPERATURE);
    assert_int_equal(vm(fx, &snap, UUID_1)->migration, VMH_MIG_CANCELLED);
    assert_int_equal(count(fx, VMH_EV_FAULT_CLEARED), 2);
    assert_true(told_after_the_journal(fx) >= 4); /* two cancelled, two fault-cleared */
    vmh_snapshot_unref(snap);
    recording_stop(fx);
}

static void
test_target_policy(void **state)
{
    struct vmh_target_candidate c[] = {
        {.name = "src",
         .migration_target = true,
         .connected = true,
         .healthy = true,
         .room_known = true,
         .free_kib = 100,
         .free_vcpus = 8,
         .priority = 900},
        {.name = "small",
         .migration_target = true,
         .connected = true,
         .healthy = true,
         .room_known = true,
         .free_kib = 10,
         .free_vcpus = 8,
         .priority = 500},
        {.name = "sick",
         .migration_target = true,
         .connected = true,
         .healthy = false,
         .room_known = true,
         .free_kib = 100,
         .free_vcpus = 8,
         .priority = 500},
        {.name = "maint",
         .migration_target = true,
         .connected = true,
         .healthy = true,
         .maintenance = true,
         .room_known = true,
         .free_kib = 100,
         .free_vcpus = 8,
         .priority = 500},
        {.name = "p100-big",
         .migration_target = true,
         .connected = true,
         .healthy = true,
         .room_known = true,
         .free_kib = 90,
         .free_vcpus = 8,
         .priority = 100},
        {.name = "p100-small",
         .migration_target = true,
         .connected = true,
         .healthy = true,
         .room_known = true,
         .free_kib = 60,
         .free_vcpus = 8,
         .priority = 100},
        {.name = "not-target",
         .migration_target = false,
         .connected = true,
         .healthy = true,
         .room_known = true,
         .free_kib = 100,
         .free_vcpus = 8,
         .priority = 999},
    };
    char why[256];

    assert_int_equal(vmh_policy_choose_target(c, 7, "src", NULL, 50, 2, why, sizeof why), 4);
    assert_int_equal(vmh_policy_choose_target(c, 7, "src", NULL, 95, 2, why, sizeof why), -1);
    assert_non_null(strstr(why, "no target host"));
    /* vCPUs are overcommitted: more than a host has is no reason to refuse. */
    assert_int_equal(vmh_policy_choose_target(c, 7, "src", NULL, 50, 64, why, sizeof why), 4);
    /* Named explicitly, a non-default target is fine; an unfit one is not. */
    assert_int_equal(vmh_policy_choose_target(c, 7, "src", "not-target", 50, 2, why, sizeof why),
                     6);
    assert_int_equal(vmh_policy_choose_target(c, 7, "src", "maint", 50, 2, why, sizeof why), -1);
    assert_non_null(strstr(why, "maintenance"));
    assert_int_equal(vmh_policy_choose_target(c, 7, "src", "sick", 50, 2, why, sizeof why), -1);
    assert_non_null(strstr(why, "not healthy"));
    assert_int_equal(vmh_policy_choose_target(c, 7, "src", "zzz", 50, 2, why, sizeof why), -1);
    assert_non_null(strstr(why, "not configured"));
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
        cmocka_unit_test(test_ready_starts_at_once_to_the_preferred_target),
        cmocka_unit_test(test_timer_path_starts_at_the_deadline_not_before),
        cmocka_unit_test(test_no_target_fails_then_retries_when_one_appears),
        cmocka_unit_test(test_explicit_target_is_checked),
        cmocka_unit_test(test_concurrency_limit_queues_in_deadline_order),
        cmocka_unit_test(test_a_request_whose_host_leaves_frees_its_slot),
        cmocka_unit_test(test_clearing_cancels_a_pending_case),
        cmocka_unit_test(test_without_cancel_on_clear_the_case_goes_on),
        cmocka_unit_test(test_journal_resumes_pending_and_recovers_migrating),
        cmocka_unit_test(test_a_journal_of_the_previous_release_is_resumed),
        cmocka_unit_test(test_an_unreadable_journal_line_is_skipped),
        cmocka_unit_test(test_windows_are_journalled_before_vm_abnormal),
        cmocka_unit_test(test_a_start_is_journalled_before_it_is_told),
        cmocka_unit_test(test_a_failed_migration_is_journalled_before_it_is_told),
        cmocka_unit_test(test_a_completed_migration_is_journalled_before_it_is_told),
        cmocka_unit_test(test_no_target_is_journalled_before_it_is_told),
        cmocka_unit_test(test_a_cancelled_case_is_journalled_before_it_is_told),
        cmocka_unit_test(test_target_policy),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
