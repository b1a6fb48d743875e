/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Cold migration executor against libvirt's in-process test driver: every
 * connection to a test:///PATH node XML is a private hypervisor, so two
 * connections are two hosts.  Failures that need a real daemon to die (target
 * stopped mid-way, source unreachable) are in
 * tests/integration/test_migrate.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "util/log.h"
#include "virt/migrate.h"

#include <libvirt/virterror.h>

#define UUID_WEB   "a1000000-0000-4000-8000-000000000001"
#define UUID_IDLE  "a1000000-0000-4000-8000-000000000002"
#define UUID_DISKY "a1000000-0000-4000-8000-000000000003"
#define UUID_OTHER "a1000000-0000-4000-8000-0000000000ff"

#define NODE_HEAD                                                                                  \
    "<node xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>"                               \
    "<cpu><mhz>2000</mhz><model>i686</model><nodes>1</nodes><sockets>1</sockets>"                  \
    "<cores>4</cores><threads>2</threads><active>8</active></cpu>"

/* The source: 8 GiB, 8 CPUs; web (running, 1 GiB, 2 vCPUs), idle (shut
 * off), disky (running, one file disk). */
static const char source_node[] =
    NODE_HEAD "<memory>8388608</memory>"
              "<domain type='test'><name>web</name><uuid>" UUID_WEB "</uuid>"
              "<memory unit='GiB'>1</memory><vcpu>2</vcpu><os><type>hvm</type></os></domain>"
              "<domain type='test'><name>idle</name><uuid>" UUID_IDLE "</uuid>"
              "<memory unit='MiB'>512</memory><vcpu>1</vcpu><os><type>hvm</type></os>"
              "<test:runstate>5</test:runstate></domain>"
              "<domain type='test'><name>disky</name><uuid>" UUID_DISKY "</uuid>"
              "<memory unit='MiB'>512</memory><vcpu>1</vcpu><os><type>hvm</type></os>"
              "<devices><disk type='file' device='disk'><source file='/var/lib/x/disky.img'/>"
              "<target dev='vda' bus='virtio'/></disk></devices></domain>"
              "</node>";

/* The target: 2 GiB, 8 CPUs, no domain. */
static const char target_node[] = NODE_HEAD "<memory>2097152</memory></node>";

struct fixture {
    char dir[64];
    char src_uri[160];
    char dst_uri[160];
    virConnectPtr src;
    virConnectPtr dst;
    /* what on_step saw, and what it does */
    enum vmh_migration_step steps[16];
    int n_steps;
    enum vmh_migration_step act_at;
    void (*act)(struct fixture *f);
    int cancel;
    int errors_logged;
};

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void
count_errors(enum vmh_log_level level, const char *token, const char *msg, void *opaque)
{
    struct fixture *f = opaque;

    if (level == VMH_LOG_ERR && !strcmp(token, "virt"))
        f->errors_logged++;
}

static void
ignore_libvirt_errors(void *opaque, virErrorPtr err)
{
}

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char path[128];

    snprintf(f->dir, sizeof f->dir, "/tmp/vmh-test-migrate-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(path, sizeof path, "%s/source.xml", f->dir);
    write_file(path, source_node);
    snprintf(f->src_uri, sizeof f->src_uri, "test://%s", path);
    snprintf(path, sizeof path, "%s/target.xml", f->dir);
    write_file(path, target_node);
    snprintf(f->dst_uri, sizeof f->dst_uri, "test://%s", path);
    virSetErrorFunc(NULL, ignore_libvirt_errors);
    f->src = virConnectOpen(f->src_uri);
    f->dst = virConnectOpen(f->dst_uri);
    assert_non_null(f->src);
    assert_non_null(f->dst);
    f->act_at = VMH_STEP_DONE + 1;
    vmh_log_set_sink(count_errors, f);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    char path[128];

    vmh_log_set_sink(NULL, NULL);
    virConnectClose(f->src);
    virConnectClose(f->dst);
    snprintf(path, sizeof path, "%s/source.xml", f->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/target.xml", f->dir);
    unlink(path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void
on_step(enum vmh_migration_step step, void *opaque)
{
    struct fixture *f = opaque;

    if (f->n_steps < 16)
        f->steps[f->n_steps++] = step;
    if (step == f->act_at && f->act)
        f->act(f);
}

static struct vmh_virt_request
request(struct fixture *f, const char *uuid)
{
    struct vmh_virt_request req = {
        .source_name = "host-a",
        .source = f->src,
        .target_name = "host-b",
        .target = f->dst,
        .shared_storage = true,
        .shutdown_timeout_s = 2,
        .on_step = on_step,
        .opaque = f,
        .cancel = &f->cancel,
    };

    snprintf(req.uuid, sizeof req.uuid, "%s", uuid);
    return req;
}

/* 1 running, 0 defined and off, -1 not defined. */
static int
where(virConnectPtr conn, const char *uuid)
{
    bool running;
    int r = vmh_virt_domain_presence(conn, uuid, &running);

    assert_int_not_equal(r, -1);
    return r == 0 ? -1 : running;
}

static void
test_running_domain_moves_and_starts_on_target(void **state)
{
    struct fixture *f = *state;
    struct vmh_virt_request req = request(f, UUID_WEB);
    struct vmh_virt_outcome out;

    assert_int_equal(vmh_virt_migrate(&req, &out), 0);
    assert_true(out.ok);
    assert_true(out.was_running);
    assert_true(out.started);
    assert_false(out.native || out.source_leftover || out.target_leftover);
    assert_false(out.forced_off); /* the test driver's guests obey a shutdown */
    assert_null(out.error);
    assert_int_equal(where(f->src, UUID_WEB), -1);
    assert_int_equal(where(f->dst, UUID_WEB), 1);
    assert_true(out.total_us >= out.libvirt_us + out.wait_us);
    assert_int_equal(f->errors_logged, 0);
}

static void
test_every_step_is_announced_in_order(void **state)
{
    struct fixture *f = *state;
    struct vmh_virt_request req = request(f, UUID_WEB);
    struct vmh_virt_outcome out;

    assert_int_equal(vmh_virt_migrate(&req, &out), 0);
    assert_int_equal(f->n_steps, VMH_STEP_DONE + 1);
    for (int i = 0; i <= VMH_STEP_DONE; i++)
        assert_int_equal(f->steps[i], i);
    assert_string_equal(vmh_migration_step_str(VMH_STEP_UNDEFINE_SOURCE), "undefine-source");
    assert_string_equal(vmh_migration_step_str(VMH_STEP_CHECK), "check");
    assert_string_equal(vmh_migration_step_str(99), "invalid");
}

static void
test_shut_off_domain_is_defined_but_not_started(void **state)
{
    struct fixture *f = *state;
    struct vmh_virt_request req = request(f, UUID_IDLE);
    struct vmh_virt_outcome out;

    assert_int_equal(vmh_virt_migrate(&req, &out), 0);
    assert_false(out.was_running);
    assert_false(out.started);
    assert_int_equal(where(f->src, UUID_IDLE), -1);
    assert_int_equal(where(f->dst, UUID_IDLE), 0);
}

static void
test_crashed_domain_counts_as_running_and_is_started(void **state)
{
    struct fixture *f = *state;
    struct vmh_virt_request req = request(f, UUID_WEB);
    struct vmh_virt_outcome out;
    virDomainPtr dom = virDomainLookupByUUIDString(f->src, UUID_WEB);
    char core[128];
    int st, reason;

    snprintf(core, sizeof core, "%s/core", f->dir);
    assert_int_equal(virDomainCoreDump(dom, core, VIR_DUMP_CRASH), 0);
    unlink(core);
    assert_int_equal(virDomainGetState(dom, &st, &reason, 0), 0);
    assert_int_equal(st, VIR_DOMAIN_SHUTOFF);
    assert_int_equal(reason, VIR_DOMAIN_SHUTOFF_CRASHED);
    virDomainFree(dom);

    assert_int_equal(vmh_virt_migrate(&req, &out), 0);
    assert_true(out.was_running);
    assert_true(out.started);
    assert_int_equal(where(f->dst, UUID_WEB), 1);
    assert_int_equal(where(f->src, UUID_WEB), -1);
}

static void
test_unshared_disk_is_refused_before_the_domain_is_touched(void **state)
{
    struct fixture *f = *state;
    struct vmh_virt_request req = request(f, UUID_DISKY);
    struct vmh_virt_outcome out;

    req.shared_storage = false;
    assert_int_equal(vmh_virt_migrate(&req, &out), -1);
    assert_int_equal(out.failed_step, VMH_STEP_CHECK);
    assert_non_null(strstr(out.error, "cannot stream storage volumes"));
    assert_true(out.rolled_back);
    assert_int_equal(f->n_steps, 1);
    assert_int_equal(where(f->src, UUID_DISKY), 1);
    assert_int_equal(where(f->dst, UUID_DISKY), -1);
    assert_int_equal(f->errors_logged, 1);
    free(out.error);

    /* A diskless domain needs no storage: it moves without shared storage. */
    req = request(f, UUID_WEB);
    req.shared_storage = false;
    assert_int_equal(vmh_virt_migrate(&req, &out), 0);
}

static void
test_same_uuid_on_target_is_refused(void **state)
{
    struct fixture *f = *state;
    struct vmh_virt_request req;
    struct vmh_virt_outcome out;
    virConnectPtr twin;

    /* A second connection to the same node XML is another private host that
     * already holds every domain of the source. */
    twin = virConnectOpen(f->src_uri);
    assert_non_null(twin);
    assert_int_equal(where(twin, UUID_WEB), 1);
    req = request(f, UUID_WEB);
    req.target = twin;
    assert_int_equal(vmh_virt_migrate(&req, &out), -1);
    assert_int_equal(out.failed_step, VMH_STEP_CHECK);
    assert_non_null(strstr(out.error, "already defined"));
    assert_int_equal(where(f->src, UUID_WEB), 1);
    /* what happens on one private host is not seen on the other */
    assert_int_equal(where(twin, UUID_WEB), 1);
    free(out.error);
    virConnectClose(twin);
}

static void
define_same_name(struct fixture *f)
{
    virDomainPtr d =
        virDomainDefineXML(f->dst, "<domain type='test'><name>web</name><uuid>" UUID_OTHER
                                   "</uuid><memory>1024</memory><os><type>hvm</type>"
                                   "</os></domain>");

    assert_non_null(d);
    virDomainFree(d);
}

static void
test_define_refused_rolls_back_and_restarts_the_source(void **state)
{
    struct fixture *f = *state;
    struct vmh_virt_request req = request(f, UUID_WEB);
    struct vmh_virt_outcome out;

    f->act_at = VMH_STEP_DEFINE;
    f->act = define_same_name;
    assert_int_equal(vmh_virt_migrate(&req, &out), -1);
    assert_int_equal(out.failed_step, VMH_STEP_DEFINE);
    assert_non_null(strstr(out.error, "define: cannot define web on host-b: "));
    assert_non_null(strstr(out.error, "already exists")); /* libvirt's words */
    assert_true(out.rolled_back);
    assert_true(out.was_running);
    assert_int_equal(where(f->src, UUID_WEB), 1);
    assert_int_equal(where(f->dst, UUID_WEB), -1);
    assert_int_equal(f->errors_logged, 1);
    free(out.error);
}

static void
cancel(struct fixture *f)
{
    __atomic_store_n(&f->cancel, 1, __ATOMIC_RELEASE);
}

static void
test_cancel_after_define_undefines_the_target(void **state)
{
    struct fixture *f = *state;
    struct vmh_virt_request req = request(f, UUID_WEB);
    struct vmh_virt_outcome out;

    f->act_at = VMH_STEP_UNDEFINE_SOURCE;
    f->act = cancel;
    assert_int_equal(vmh_virt_migrate(&req, &out), -1);
    assert_int_equal(out.failed_step, VMH_STEP_UNDEFINE_SOURCE);
    assert_string_equal(out.error, "undefine-source: cancelled");
    assert_true(out.rolled_back);
    assert_int_equal(where(f->src, UUID_WEB), 1);
    assert_int_equal(where(f->dst, UUID_WEB), -1);
    free(out.error);
}

static void
test_no_memory_left_on_target_is_refused(void **state)
{
    struct fixture *f = *state;
    struct vmh_virt_request req = request(f, UUID_WEB);
    struct vmh_virt_outcome out;
    virDomainPtr big = virDomainDefineXML(f->dst, "<domain type='test'><name>big</name>"
                                                  "<memory unit='MiB'>1800</memory>"
                                                  "<os><type>hvm</type></os></domain>");

    assert_non_null(big);
    assert_int_equal(vmh_virt_migrate(&req, &out), -1);
    assert_int_equal(out.failed_step, VMH_STEP_CHECK);
    assert_non_null(strstr(out.error, "needs 1048576 KiB of memory; host-b has 253952 KiB left"));
    free(out.error);
    req.ignore_room = true;
    assert_int_equal(vmh_virt_migrate(&req, &out), 0);
    virDomainFree(big);
}

static void
test_host_room_is_node_memory_minus_defined_domains(void **state)
{
    struct fixture *f = *state;
    uint64_t kib;
    unsigned vcpus;

    /* 8 GiB - (1 GiB + 512 MiB + 512 MiB), running or not; 8 - 4 vCPUs */
    assert_int_equal(vmh_virt_host_room(f->src, &kib, &vcpus), 0);
    assert_int_equal(kib, 8388608 - 2097152);
    assert_int_equal(vcpus, 4);
    assert_int_equal(vmh_virt_host_room(f->dst, &kib, &vcpus), 0);
    assert_int_equal(kib, 2097152);
    assert_int_equal(vcpus, 8);
}

static char *
inactive_xml(virConnectPtr conn, const char *uuid)
{
    virDomainPtr d = virDomainLookupByUUIDString(conn, uuid);
    char *xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_INACTIVE |
                                           VIR_DOMAIN_XML_MIGRATABLE);

    virDomainFree(d);
    return xml;
}

static void
test_evacuation_defines_the_last_known_xml(void **state)
{
    struct fixture *f = *state;
    struct vmh_virt_request req = request(f, UUID_WEB);
    struct vmh_virt_outcome out;
    char *xml = inactive_xml(f->src, UUID_WEB);

    req.source = NULL; /* the host crashed */
    req.last_known_xml = xml;
    req.shared_storage = false;
    assert_int_equal(vmh_virt_migrate(&req, &out), -1);
    assert_non_null(strstr(out.error, "not shared"));
    free(out.error);

    req.shared_storage = true;
    assert_int_equal(vmh_virt_migrate(&req, &out), 0);
    assert_true(out.started);
    assert_true(out.source_leftover); /* the crashed host still has it */
    assert_int_equal(where(f->dst, UUID_WEB), 1);
    free(xml);
}

static void
test_evacuation_of_a_shut_off_domain_does_not_start_it(void **state)
{
    struct fixture *f = *state;
    struct vmh_virt_request req = request(f, UUID_IDLE);
    struct vmh_virt_outcome out;
    char *xml = inactive_xml(f->src, UUID_IDLE);

    req.source = NULL;
    req.last_known_xml = xml;
    req.last_known_shutoff = true;
    assert_int_equal(vmh_virt_migrate(&req, &out), 0);
    assert_false(out.started);
    assert_int_equal(where(f->dst, UUID_IDLE), 0);
    free(xml);
}

static void
test_evacuation_refuses_a_definition_of_another_domain(void **state)
{
    struct fixture *f = *state;
    struct vmh_virt_request req = request(f, UUID_IDLE);
    struct vmh_virt_outcome out;
    char *xml = inactive_xml(f->src, UUID_WEB);

    req.source = NULL;
    req.last_known_xml = xml;
    assert_int_equal(vmh_virt_migrate(&req, &out), -1);
    assert_int_equal(out.failed_step, VMH_STEP_CHECK);
    assert_non_null(strstr(out.error, "not " UUID_IDLE));
    assert_int_equal(where(f->dst, UUID_WEB), -1);
    free(out.error);
    free(xml);
}

static void
test_missing_domain_and_missing_target(void **state)
{
    struct fixture *f = *state;
    struct vmh_virt_request req = request(f, UUID_OTHER);
    struct vmh_virt_outcome out;

    assert_int_equal(vmh_virt_migrate(&req, &out), -1);
    assert_non_null(strstr(out.error, "not found on host-a"));
    free(out.error);
    req = request(f, UUID_WEB);
    req.target = NULL;
    assert_int_equal(vmh_virt_migrate(&req, &out), -1);
    assert_string_equal(out.error, "check: target host host-b is not reachable");
    assert_int_equal(where(f->src, UUID_WEB), 1);
    free(out.error);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_running_domain_moves_and_starts_on_target),
        T(test_every_step_is_announced_in_order),
        T(test_shut_off_domain_is_defined_but_not_started),
        T(test_crashed_domain_counts_as_running_and_is_started),
        T(test_unshared_disk_is_refused_before_the_domain_is_touched),
        T(test_same_uuid_on_target_is_refused),
        T(test_define_refused_rolls_back_and_restarts_the_source),
        T(test_cancel_after_define_undefines_the_target),
        T(test_no_memory_left_on_target_is_refused),
        T(test_host_room_is_node_memory_minus_defined_domains),
        T(test_evacuation_defines_the_last_known_xml),
        T(test_evacuation_of_a_shut_off_domain_does_not_start_it),
        T(test_evacuation_refuses_a_definition_of_another_domain),
        T(test_missing_domain_and_missing_target),
#undef T
    };

    vmh_log_init("test_migrate", true, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
