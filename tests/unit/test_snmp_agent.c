/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The SNMP front end's thread inside one process: the real loop thread and
 * engine, the agent started with traps to UDP sockets this test holds.
 * Faults raised on the loop thread must come out as one trap per event per
 * target, and the engine must never wait for the SNMP thread, even with a
 * receiver that never answers informs.  (The test thread never calls
 * net-snmp: the agent's thread owns it.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <glib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/engine.h"
#include "core/loop.h"
#include "snmp/snmp.h"
#include "util/log.h"

#define UUID_1 "10000000-0000-4000-8000-000000000001"
#define UUID_2 "20000000-0000-4000-8000-000000000002"

struct fx {
    struct vmh_loop *loop;
    struct vmh_engine *engine;
    struct vmh_snmp *snmp;
    int rx;         /* receives the v2c traps */
    int dead;       /* bound, never answers: informs to it time out */
    char state[64]; /* net-snmp's persistent files */
};

static int
udp_socket(uint16_t *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static struct vmh_config *
config(void)
{
    struct vmh_config *cfg = g_new0(struct vmh_config, 1);

    cfg->settings.default_ppt = 3600;
    cfg->n_hosts = 1;
    cfg->hosts = g_new0(struct vmh_host_conf, 1);
    cfg->hosts[0].name = g_strdup("a");
    cfg->hosts[0].uri = g_strdup("test:///a");
    cfg->hosts[0].sysfs_root = g_strdup("/");
    cfg->state_dir = g_strdup("/nonexistent");
    return cfg;
}

static struct vmh_snmp_conf *
snmp_conf(uint16_t rx_port, uint16_t dead_port)
{
    struct vmh_snmp_conf *c = g_new0(struct vmh_snmp_conf, 1);

    c->n_users = 1;
    c->users = g_new0(struct vmh_snmp_user, 1);
    c->users[0].name = g_strdup("noc");
    c->users[0].auth = VMH_SNMP_AUTH_SHA256;
    c->users[0].auth_pass = g_strdup("authpassphrase");
    c->users[0].priv = VMH_SNMP_PRIV_AES;
    c->users[0].priv_pass = g_strdup("privpassphrase");
    c->n_targets = 2;
    c->targets = g_new0(struct vmh_snmp_target, 2);
    c->targets[0] = (struct vmh_snmp_target){.name = g_strdup("rx"),
                                             .address = g_strdup("127.0.0.1"),
                                             .port = rx_port,
                                             .community = g_strdup("traps"),
                                             .timeout_ms = 1000,
                                             .retries = 3};
    c->targets[1] = (struct vmh_snmp_target){.name = g_strdup("dead"),
                                             .address = g_strdup("127.0.0.1"),
                                             .port = dead_port,
                                             .v3 = true,
                                             .user = &c->users[0],
                                             .level = VMH_SNMP_AUTHPRIV,
                                             .engine_id = g_strdup("800000000102030405"),
                                             .inform = true,
                                             .timeout_ms = 2000,
                                             .retries = 1};
    return c;
}

struct on_loop {
    struct fx *fx;
    int which;
};

/* Loop thread: raise a fault on VM 1 or 2, then clear it (two events). */
static void
raise_and_clear(void *opaque)
{
    struct on_loop *c = opaque;
    const char *uuid = c->which == 1 ? UUID_1 : UUID_2;
    struct vmh_fault_report r = {.host = "a",
                                 .vm_uuid = uuid,
                                 .cause = VMH_CAUSE_WATCHDOG,
                                 .severity = VMH_SEV_MAJOR,
                                 .description = "test"};

    vmh_engine_raise_fault(c->fx->engine, &r);
    vmh_engine_clear_fault_of(c->fx->engine, "a", uuid, NULL, VMH_CAUSE_WATCHDOG);
}

static void
connect_host(void *opaque)
{
    struct fx *fx = opaque;
    struct vmh_domain_info *doms = g_new0(struct vmh_domain_info, 2);

    doms[0].name = g_strdup("vm-one");
    doms[1].name = g_strdup("vm-two");
    snprintf(doms[0].uuid, sizeof doms[0].uuid, "%s", UUID_1);
    snprintf(doms[1].uuid, sizeof doms[1].uuid, "%s", UUID_2);
    doms[0].power = doms[1].power = VMH_POWER_RUNNING;
    vmh_engine_host_connected(fx->engine, "a", doms, 2);
}

static int
setup(void **state)
{
    struct fx *fx = g_new0(struct fx, 1);
    uint16_t rx_port, dead_port;
    struct vmh_snmp_options opts = {.state_dir = fx->state};

    snprintf(fx->state, sizeof fx->state, "/tmp/vmh-test-snmp-XXXXXX");
    assert_non_null(mkdtemp(fx->state));
    fx->rx = udp_socket(&rx_port);
    fx->dead = udp_socket(&dead_port);
    assert_int_equal(vmh_loop_new(&fx->loop), 0);
    fx->engine = vmh_engine_new(fx->loop, config());
    assert_int_equal(vmh_snmp_new(&opts, &fx->snmp), 0);
    vmh_snmp_attach(fx->snmp, fx->engine);
    assert_int_equal(vmh_snmp_configure(fx->snmp, snmp_conf(rx_port, dead_port)), 0);
    assert_int_equal(vmh_loop_start(fx->loop), 0);
    vmh_loop_call(fx->loop, connect_host, fx);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;
    char *cmd = g_strdup_printf("rm -rf '%s'", fx->state);

    vmh_snmp_stop(fx->snmp);
    vmh_loop_stop(fx->loop);
    vmh_snmp_free(fx->snmp);
    vmh_loop_free(fx->loop);
    vmh_engine_free(fx->engine);
    close(fx->rx);
    close(fx->dead);
    assert_int_equal(system(cmd), 0);
    g_free(cmd);
    g_free(fx);
    return 0;
}

/* Reads datagrams for up to ms; returns how many contained needle. */
static int
receive(int fd, const char *needle, int want, int ms)
{
    int found = 0;
    int64_t until = g_get_monotonic_time() + (int64_t)ms * 1000;

    while (found < want && g_get_monotonic_time() < until) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char buf[4096];
        ssize_t n;

        if (poll(&p, 1, 100) <= 0)
            continue;
        n = recv(fd, buf, sizeof buf, 0);
        if (n > 0 && memmem(buf, (size_t)n, needle, strlen(needle)))
            found++;
    }
    return found;
}

static void
test_every_event_becomes_a_trap_and_the_engine_never_waits(void **state)
{
    struct fx *fx = *state;
    struct on_loop c1 = {.fx = fx, .which = 1}, c2 = {.fx = fx, .which = 2};
    struct vmh_snmp_target_stats st;
    char name[VMH_SNMP_TARGET_NAME_MAX + 1];

    /* Two events per call; the inform target never answers (2 s x 2
     * transmissions each), yet the loop thread is back before any of them
     * was given up: it never waits for the SNMP thread. */
    vmh_loop_call(fx->loop, raise_and_clear, &c1);
    vmh_loop_call(fx->loop, raise_and_clear, &c2);
    assert_true(vmh_snmp_target_stats(fx->snmp, 1, name, &st));
    assert_int_equal(st.failed, 0);
    /* vmhVmAbnormal and vmhFaultCleared for each VM, as v2c traps carrying
     * the community and the UUID */
    assert_int_equal(receive(fx->rx, UUID_1, 2, 10000), 2);
    assert_int_equal(receive(fx->rx, UUID_2, 2, 10000), 2);
    /* counted once the send returned, which may be after the datagram
     * arrived here */
    for (int i = 0; i < 100; i++) {
        assert_true(vmh_snmp_target_stats(fx->snmp, 0, name, &st));
        if (st.sent == 4)
            break;
        g_usleep(20000);
    }
    assert_string_equal(name, "rx");
    assert_int_equal(st.sent, 4);
    assert_int_equal(st.failed, 0);
    /* the informs reached the silent receiver (encrypted: no UUID in clear)
     * and are given up after their retries */
    for (int i = 0; i < 300; i++) {
        vmh_snmp_target_stats(fx->snmp, 1, name, &st);
        if (st.failed == 4)
            break;
        g_usleep(50000);
    }
    assert_string_equal(name, "dead");
    assert_int_equal(st.sent, 4);
    assert_int_equal(st.acked, 0);
    assert_int_equal(st.failed, 4);
    assert_int_equal(st.retried, 4);
    assert_int_equal(vmh_snmp_queue_length(fx->snmp), 0);
    assert_false(vmh_snmp_target_stats(fx->snmp, 2, name, &st));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_event_becomes_a_trap_and_the_engine_never_waits,
                                        setup, teardown),
    };

    vmh_log_init("test", true, getenv("VMH_TEST_DEBUG"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
