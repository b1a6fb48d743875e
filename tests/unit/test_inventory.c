/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The libvirt inventory, end to end inside one process: the real loop
 * thread, engine and virt subsystem against libvirt's test driver.  The
 * test drives the hypervisor through a connection of its own. */
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
#include <libvirt/virterror.h>

#include "core/engine.h"
#include "core/loop.h"
#include "util/log.h"
#include "virt/virt.h"

#define NS       "urn:vmhealth:nfv-vm-health"
#define NEW_UUID "3d0c5e1a-7b2f-4c55-9a61-0000000000f1"
#define WAIT_MS  10000

struct fixture {
    struct vmh_loop *loop;
    struct vmh_engine *engine;
    struct vmh_virt *virt;
    virConnectPtr conn; /* the test's own */
};

static struct vmh_loop *the_loop;

static struct vmh_config *
one_host_config(const char *uri)
{
    struct vmh_config *cfg = g_new0(struct vmh_config, 1);

    cfg->settings.default_ppt = 60;
    cfg->n_hosts = 1;
    cfg->hosts = g_new0(struct vmh_host_conf, 1);
    cfg->hosts[0].name = strdup("a");
    cfg->hosts[0].uri = strdup(uri);
    cfg->n_managers = 1;
    cfg->managers = g_new0(struct vmh_manager_conf, 1);
    cfg->managers[0].name = strdup("vnfm-ims");
    cfg->managers[0].has_ppt = true;
    cfg->managers[0].ppt = 120;
    cfg->state_dir = strdup("/nonexistent");
    vmh_config_index(cfg);
    return cfg;
}

struct post_call {
    struct fixture *fx;
    const char *uri;
    GMutex lock;
    GCond cond;
    bool done;
};

static void
add_host_on_loop(void *opaque)
{
    struct post_call *call = opaque;

    vmh_virt_add_host(call->fx->virt, "a", call->uri);
    g_mutex_lock(&call->lock);
    call->done = true;
    g_cond_signal(&call->cond);
    g_mutex_unlock(&call->lock);
}

static void
free_virt_on_loop(void *opaque)
{
    struct post_call *call = opaque;

    vmh_virt_free(call->fx->virt);
    call->fx->virt = NULL;
    g_mutex_lock(&call->lock);
    call->done = true;
    g_cond_signal(&call->cond);
    g_mutex_unlock(&call->lock);
}

static void
run_on_loop(struct fixture *fx, vmh_loop_fn fn, const char *uri)
{
    struct post_call call = {.fx = fx, .uri = uri};

    g_mutex_init(&call.lock);
    g_cond_init(&call.cond);
    vmh_loop_post(fx->loop, fn, &call);
    g_mutex_lock(&call.lock);
    while (!call.done)
        g_cond_wait(&call.cond, &call.lock);
    g_mutex_unlock(&call.lock);
    g_mutex_clear(&call.lock);
    g_cond_clear(&call.cond);
}

static struct fixture *
start(const char *uri)
{
    struct fixture *fx = g_new0(struct fixture, 1);

    fx->loop = the_loop;
    fx->engine = vmh_engine_new(fx->loop, one_host_config(uri));
    fx->virt = vmh_virt_new(fx->loop, fx->engine);
    run_on_loop(fx, add_host_on_loop, uri);
    return fx;
}

static void
stop(struct fixture *fx)
{
    run_on_loop(fx, free_virt_on_loop, NULL);
    if (fx->conn)
        virConnectClose(fx->conn);
    vmh_engine_free(fx->engine);
    g_free(fx);
}

typedef bool (*snap_pred)(const struct vmh_snapshot *snap, const void *arg);

/* Polls the published snapshot until pred holds; the engine publishes
 * asynchronously, so this waits, and fails the test after WAIT_MS. */
static void
wait_for(struct fixture *fx, snap_pred pred, const void *arg, const char *what)
{
    for (int waited = 0; waited < WAIT_MS; waited += 10) {
        struct vmh_snapshot *snap = vmh_engine_snapshot(fx->engine);
        bool ok = pred(snap, arg);

        vmh_snapshot_unref(snap);
        if (ok)
            return;
        g_usleep(10000);
    }
    fail_msg("timed out waiting for: %s", what);
}

static bool
host_connected(const struct vmh_snapshot *snap, const void *arg)
{
    return snap->n_hosts == 1 && snap->hosts[0].connection == VMH_CONN_CONNECTED;
}

struct vm_expect {
    const char *uuid;
    enum vmh_power_state power;
    const char *manager;
    uint32_t ppt;
};

static bool
vm_has_power(const struct vmh_snapshot *snap, const void *arg)
{
    const struct vm_expect *e = arg;
    const struct vmh_vm_snap *vm = vmh_snapshot_find_vm(snap, e->uuid);

    return vm && vm->power == e->power;
}

static bool
vm_has_manager(const struct vmh_snapshot *snap, const void *arg)
{
    const struct vm_expect *e = arg;
    const struct vmh_vm_snap *vm = vmh_snapshot_find_vm(snap, e->uuid);

    return vm && g_strcmp0(vm->manager, e->manager) == 0 && vm->ppt == e->ppt;
}

static bool
vm_absent(const struct vmh_snapshot *snap, const void *arg)
{
    return vmh_snapshot_find_vm(snap, arg) == NULL;
}

static const struct vmh_vm_snap *
find_by_name(const struct vmh_snapshot *snap, const char *name)
{
    for (size_t i = 0; i < snap->n_vms; i++)
        if (!strcmp(snap->vms[i].name, name))
            return &snap->vms[i];
    return NULL;
}

static void
test_inventory_from_node_xml_with_metadata(void **state)
{
    char *uri = g_strdup_printf("test://%s/libvirt/two-domains.xml", VMH_TEST_FIXTURES);
    struct fixture *fx = start(uri);
    struct vmh_snapshot *snap;
    const struct vmh_vm_snap *web, *spare;

    wait_for(fx, host_connected, NULL, "host a connected");
    snap = vmh_engine_snapshot(fx->engine);
    assert_int_equal(snap->n_vms, 2);
    assert_int_equal(snap->hosts[0].vm_count, 2);
    web = find_by_name(snap, "vm-with-meta");
    spare = find_by_name(snap, "vm-plain-off");
    assert_non_null(web);
    assert_non_null(spare);
    assert_string_equal(web->uuid, "c0000000-0000-4000-8000-000000000001");
    assert_int_equal(web->power, VMH_POWER_RUNNING);
    assert_string_equal(web->host, "a");
    assert_string_equal(web->manager, "vnfm-test");
    assert_int_equal(web->ppt, 20);
    assert_int_equal(web->ppt_source, VMH_PPT_METADATA);
    assert_int_equal(web->memory_kib, 2097152);
    assert_int_equal(web->vcpus, 2);
    assert_int_equal(spare->power, VMH_POWER_SHUTOFF);
    assert_null(spare->manager);
    assert_int_equal(spare->ppt, 60);
    assert_int_equal(spare->ppt_source, VMH_PPT_DEFAULT);
    vmh_snapshot_unref(snap);
    stop(fx);
    g_free(uri);
}

static void
test_malformed_metadata_is_ignored_not_fatal(void **state)
{
    char *uri = g_strdup_printf("test://%s/libvirt/metadata-malformed.xml", VMH_TEST_FIXTURES);
    struct fixture *fx = start(uri);
    struct vmh_snapshot *snap;
    const struct vmh_vm_snap *vm;

    wait_for(fx, host_connected, NULL, "host a connected");
    snap = vmh_engine_snapshot(fx->engine);
    assert_int_equal(snap->n_vms, 2);
    /* A non-numeric time is dropped; the (unconfigured) manager is kept and
     * the VM gets the default time. */
    vm = vmh_snapshot_find_vm(snap, "d0000000-0000-4000-8000-000000000001");
    assert_non_null(vm);
    assert_string_equal(vm->manager, "vnfm-test");
    assert_false(vm->manager_configured);
    assert_int_equal(vm->ppt, 60);
    assert_int_equal(vm->ppt_source, VMH_PPT_DEFAULT);
    /* No manager: the valid time still applies to the VM. */
    vm = vmh_snapshot_find_vm(snap, "d0000000-0000-4000-8000-000000000002");
    assert_non_null(vm);
    assert_null(vm->manager);
    assert_int_equal(vm->ppt, 15);
    assert_int_equal(vm->ppt_source, VMH_PPT_METADATA);
    vmh_snapshot_unref(snap);
    stop(fx);
    g_free(uri);
}

static const char *new_domain_xml =
    "<domain type='test'><name>runtime-1</name><uuid>" NEW_UUID "</uuid>"
    "<memory unit='MiB'>512</memory><vcpu>1</vcpu><os><type>hvm</type></os>"
    "<metadata><vmh:assignment xmlns:vmh='" NS "'><vmh:vnf-manager>vnfm-ims</vmh:vnf-manager>"
    "</vmh:assignment></metadata></domain>";

static void
test_lifecycle_events_keep_inventory_current(void **state)
{
    struct fixture *fx = start("test:///default");
    struct vm_expect e = {.uuid = NEW_UUID};
    virDomainPtr dom;

    fx->conn = virConnectOpen("test:///default");
    assert_non_null(fx->conn);
    wait_for(fx, host_connected, NULL, "host a connected");

    dom = virDomainDefineXML(fx->conn, new_domain_xml);
    assert_non_null(dom);
    e.power = VMH_POWER_SHUTOFF;
    wait_for(fx, vm_has_power, &e, "defined domain appears shut off");
    e.manager = "vnfm-ims";
    e.ppt = 120;
    wait_for(fx, vm_has_manager, &e, "defined domain has its metadata manager");

    assert_int_equal(virDomainCreate(dom), 0);
    e.power = VMH_POWER_RUNNING;
    wait_for(fx, vm_has_power, &e, "started");
    assert_int_equal(virDomainSuspend(dom), 0);
    e.power = VMH_POWER_PAUSED;
    wait_for(fx, vm_has_power, &e, "suspended");
    assert_int_equal(virDomainResume(dom), 0);
    e.power = VMH_POWER_RUNNING;
    wait_for(fx, vm_has_power, &e, "resumed");

    /* The VIM re-assigns the VM: a metadata change event, no re-listing. */
    assert_int_equal(virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT,
                                          "<assignment><vnf-manager>vnfm-epc</vnf-manager>"
                                          "<preprocessing-time>15</preprocessing-time>"
                                          "</assignment>",
                                          "vmh", NS, VIR_DOMAIN_AFFECT_LIVE),
                     0);
    e.manager = "vnfm-epc";
    e.ppt = 15;
    wait_for(fx, vm_has_manager, &e, "metadata change applied");

    assert_int_equal(virDomainDestroy(dom), 0);
    e.power = VMH_POWER_SHUTOFF;
    wait_for(fx, vm_has_power, &e, "destroyed");
    assert_int_equal(virDomainUndefine(dom), 0);
    wait_for(fx, vm_absent, NEW_UUID, "undefined domain removed");
    virDomainFree(dom);
    stop(fx);
}

static bool
has_crash_fault(const struct vmh_snapshot *snap, const void *arg)
{
    for (size_t i = 0; i < snap->n_faults; i++)
        if (snap->faults[i].cause == VMH_CAUSE_VM_CRASHED && snap->faults[i].vm_uuid &&
            !strcmp(snap->faults[i].vm_uuid, arg) && !snap->faults[i].cleared_ms &&
            snap->faults[i].severity == VMH_SEV_CRITICAL)
            return true;
    return false;
}

static void
test_crash_is_a_vm_crashed_fault_and_leaves_domain_shut_off(void **state)
{
    struct fixture *fx = start("test:///default");
    struct vm_expect e = {.uuid = NEW_UUID};
    char *dump = g_strdup_printf("/tmp/vmh-test-dump-%d", (int)getpid());
    virDomainPtr dom;

    fx->conn = virConnectOpen("test:///default");
    wait_for(fx, host_connected, NULL, "host a connected");
    dom = virDomainDefineXML(fx->conn, new_domain_xml);
    assert_non_null(dom);
    assert_int_equal(virDomainCreate(dom), 0);
    e.power = VMH_POWER_RUNNING;
    wait_for(fx, vm_has_power, &e, "started");
    assert_int_equal(virDomainCoreDump(dom, dump, VIR_DUMP_CRASH), 0);
    e.power = VMH_POWER_SHUTOFF;
    wait_for(fx, vm_has_power, &e, "crashed domain is shut off");
    wait_for(fx, has_crash_fault, NEW_UUID, "a vm-crashed fault for it");
    unlink(dump);
    virDomainUndefine(dom);
    wait_for(fx, vm_absent, NEW_UUID, "undefined");
    virDomainFree(dom);
    g_free(dump);
    stop(fx);
}

static void
test_transient_domain_appears_and_vanishes(void **state)
{
    struct fixture *fx = start("test:///default");
    struct vm_expect e = {.uuid = NEW_UUID, .power = VMH_POWER_RUNNING};
    virDomainPtr dom;

    fx->conn = virConnectOpen("test:///default");
    wait_for(fx, host_connected, NULL, "host a connected");
    dom = virDomainCreateXML(fx->conn, new_domain_xml, 0);
    assert_non_null(dom);
    wait_for(fx, vm_has_power, &e, "transient domain appears running");
    assert_int_equal(virDomainDestroy(dom), 0);
    wait_for(fx, vm_absent, NEW_UUID, "transient domain gone once stopped");
    virDomainFree(dom);
    stop(fx);
}

static bool
host_disconnected_with_error(const struct vmh_snapshot *snap, const void *arg)
{
    return snap->n_hosts == 1 && snap->hosts[0].connection == VMH_CONN_DISCONNECTED &&
           snap->hosts[0].last_error != NULL;
}

static void
test_unreachable_uri_marks_host_disconnected(void **state)
{
    struct fixture *fx = start("test:///nonexistent/node.xml");

    wait_for(fx, host_disconnected_with_error, NULL, "host a disconnected with an error");
    stop(fx);
}

static int
group_setup(void **state)
{
    vmh_log_init("test", true, getenv("VMH_TEST_DEBUG"));
    vmh_log_route_libvirt();
    if (vmh_loop_new(&the_loop) < 0 || vmh_loop_start(the_loop) < 0)
        return -1;
    return 0;
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
        cmocka_unit_test(test_inventory_from_node_xml_with_metadata),
        cmocka_unit_test(test_malformed_metadata_is_ignored_not_fatal),
        cmocka_unit_test(test_lifecycle_events_keep_inventory_current),
        cmocka_unit_test(test_crash_is_a_vm_crashed_fault_and_leaves_domain_shut_off),
        cmocka_unit_test(test_transient_domain_appears_and_vanishes),
        cmocka_unit_test(test_unreachable_uri_marks_host_disconnected),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
