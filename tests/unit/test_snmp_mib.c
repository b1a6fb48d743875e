/* SPDX-License-Identifier: GPL-3.0-or-later */
/* NFV-VM-HEALTH-MIB over engine snapshots, without any SNMP transport: the
 * engine is fed directly (its loop registered, not started), and GET /
 * GETNEXT are asked of the MIB layer the agent's handlers wrap.  Also the
 * agent/snmp configuration and its access rules. */
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

#include "config/config.h"
#include "core/engine.h"
#include "core/loop.h"
#include "snmp/snmp.h"
#include "snmp/snmp_mib.h"
#include "util/log.h"

#define UUID_1 "10000000-0000-4000-8000-000000000001"
#define UUID_2 "20000000-0000-4000-8000-000000000002"
#define UUID_3 "30000000-0000-4000-8000-000000000003"

static struct vmh_loop *the_loop;

struct fx {
    struct vmh_engine *engine;
    struct vmh_mib_view view;
};

static struct vmh_config *
config(void)
{
    struct vmh_config *cfg = g_new0(struct vmh_config, 1);
    const char *names[] = {"zeta", "alpha"}; /* index order differs from name order */

    cfg->settings.default_ppt = 60;
    cfg->n_hosts = 2;
    cfg->hosts = g_new0(struct vmh_host_conf, 2);
    for (int i = 0; i < 2; i++) {
        cfg->hosts[i].name = g_strdup(names[i]);
        cfg->hosts[i].uri = g_strdup_printf("test:///%s", names[i]);
        cfg->hosts[i].sysfs_root = g_strdup("/");
    }
    cfg->state_dir = g_strdup("/nonexistent");
    return cfg;
}

static struct vmh_domain_info
dom(const char *uuid, const char *name, enum vmh_power_state power)
{
    struct vmh_domain_info d = {
        .name = g_strdup(name), .power = power, .persistent = true, .memory_kib = 1024, .vcpus = 1};

    snprintf(d.uuid, sizeof d.uuid, "%s", uuid);
    return d;
}

static void
fx_view(struct fx *fx)
{
    vmh_mib_view_clear(&fx->view);
    vmh_engine_publish(fx->engine);
    vmh_mib_view_init(&fx->view, vmh_engine_snapshot(fx->engine));
    fx->view.system_group = true;
    fx->view.sys_descr = "test agent";
    fx->view.sys_name = "box";
    fx->view.uptime_cs = 4200;
}

static int
setup(void **state)
{
    struct fx *fx = g_new0(struct fx, 1);
    struct vmh_domain_info *z = g_new0(struct vmh_domain_info, 2);
    struct vmh_domain_info *a = g_new0(struct vmh_domain_info, 1);

    fx->engine = vmh_engine_new(the_loop, config());
    /* UUIDs deliberately not in host order */
    z[0] = dom(UUID_3, "vm-three", VMH_POWER_RUNNING);
    z[1] = dom(UUID_1, "vm-one", VMH_POWER_SHUTOFF);
    a[0] = dom(UUID_2, "vm-two", VMH_POWER_PAUSED);
    vmh_engine_host_connected(fx->engine, "zeta", z, 2);
    vmh_engine_host_connected(fx->engine, "alpha", a, 1);
    fx_view(fx);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;

    vmh_mib_view_clear(&fx->view);
    vmh_engine_free(fx->engine);
    g_free(fx);
    return 0;
}

/* OID helpers */

struct oidbuf {
    oid o[MAX_OID_LEN];
    size_t len;
};

static struct oidbuf
vm_cell(unsigned col, const char *uuid)
{
    struct oidbuf b = {.o = {VMH_MIB_ROOT, 1, 2, 1, col}, .len = VMH_MIB_ROOT_LEN + 4};

    for (size_t i = 0; uuid && uuid[i]; i++)
        b.o[b.len++] = (unsigned char)uuid[i];
    return b;
}

static struct oidbuf
host_cell(unsigned col, oid index)
{
    struct oidbuf b = {.o = {VMH_MIB_ROOT, 1, 1, 1, col, index}, .len = VMH_MIB_ROOT_LEN + 5};

    return b;
}

static void
assert_str(const struct vmh_mib_value *v, const char *s)
{
    assert_int_equal(v->type, ASN_OCTET_STR);
    assert_int_equal(v->len, strlen(s));
    assert_memory_equal(v->str, s, v->len);
}

static void
test_vm_columns_are_read_by_uuid_index(void **state)
{
    struct fx *fx = *state;
    struct vmh_mib_value v;
    struct oidbuf o;

    o = vm_cell(2, UUID_2);
    assert_int_equal(vmh_mib_get(&fx->view, o.o, o.len, &v), VMH_MIB_FOUND);
    assert_str(&v, "vm-two");
    o = vm_cell(3, UUID_2);
    assert_int_equal(vmh_mib_get(&fx->view, o.o, o.len, &v), VMH_MIB_FOUND);
    assert_str(&v, "alpha");
    o = vm_cell(4, UUID_2);
    assert_int_equal(vmh_mib_get(&fx->view, o.o, o.len, &v), VMH_MIB_FOUND);
    assert_int_equal(v.type, ASN_INTEGER);
    assert_int_equal(v.integer, 3); /* paused(3), libvirt's number */
    o = vm_cell(5, UUID_1);
    assert_int_equal(vmh_mib_get(&fx->view, o.o, o.len, &v), VMH_MIB_FOUND);
    assert_int_equal(v.integer, 1); /* normal(1) */
    o = vm_cell(7, UUID_1);
    assert_int_equal(vmh_mib_get(&fx->view, o.o, o.len, &v), VMH_MIB_FOUND);
    assert_str(&v, ""); /* no VNF manager */
    o = vm_cell(8, UUID_1);
    assert_int_equal(vmh_mib_get(&fx->view, o.o, o.len, &v), VMH_MIB_FOUND);
    assert_int_equal(v.type, ASN_UNSIGNED);
    assert_int_equal(v.integer, 60);
    o = vm_cell(9, UUID_1);
    assert_int_equal(vmh_mib_get(&fx->view, o.o, o.len, &v), VMH_MIB_FOUND);
    assert_int_equal(v.integer, 1); /* none(1) */
}

static void
test_unknown_instances_and_objects_are_told_apart(void **state)
{
    struct fx *fx = *state;
    struct vmh_mib_value v;
    struct oidbuf o;

    o = vm_cell(2, "40000000-0000-4000-8000-000000000004");
    assert_int_equal(vmh_mib_get(&fx->view, o.o, o.len, &v), VMH_MIB_NO_SUCH_INSTANCE);
    o = vm_cell(2, "1000"); /* a partial index is no instance */
    assert_int_equal(vmh_mib_get(&fx->view, o.o, o.len, &v), VMH_MIB_NO_SUCH_INSTANCE);
    o = vm_cell(1, UUID_1); /* the index column is not-accessible */
    assert_int_equal(vmh_mib_get(&fx->view, o.o, o.len, &v), VMH_MIB_NO_SUCH_OBJECT);
    o = vm_cell(11, UUID_1);
    assert_int_equal(vmh_mib_get(&fx->view, o.o, o.len, &v), VMH_MIB_NO_SUCH_OBJECT);
    o = host_cell(2, 99);
    assert_int_equal(vmh_mib_get(&fx->view, o.o, o.len, &v), VMH_MIB_NO_SUCH_INSTANCE);
    {
        const oid stat_no_zero[] = {VMH_MIB_ROOT, 1, 3, 1};
        const oid notif_obj[] = {VMH_MIB_ROOT, 1, 4, 1, 0};

        assert_int_equal(vmh_mib_get(&fx->view, stat_no_zero, G_N_ELEMENTS(stat_no_zero), &v),
                         VMH_MIB_NO_SUCH_INSTANCE);
        /* accessible-for-notify objects are never read */
        assert_int_equal(vmh_mib_get(&fx->view, notif_obj, G_N_ELEMENTS(notif_obj), &v),
                         VMH_MIB_NO_SUCH_OBJECT);
    }
}

static void
test_host_table_is_ordered_by_index_not_name(void **state)
{
    struct fx *fx = *state;
    struct vmh_mib_value v;
    struct oidbuf o = host_cell(2, 0), next;

    o.len--; /* vmhHostName */
    assert_int_equal(vmh_mib_next(&fx->view, o.o, o.len, next.o, &next.len, &v), VMH_MIB_FOUND);
    assert_int_equal(next.len, VMH_MIB_ROOT_LEN + 5);
    assert_int_equal(next.o[next.len - 1], 1);
    assert_str(&v, "zeta"); /* configured first: index 1 */
    assert_int_equal(vmh_mib_next(&fx->view, next.o, next.len, next.o, &next.len, &v),
                     VMH_MIB_FOUND);
    assert_int_equal(next.o[next.len - 1], 2);
    assert_str(&v, "alpha");
    o = host_cell(8, 1);
    assert_int_equal(vmh_mib_get(&fx->view, o.o, o.len, &v), VMH_MIB_FOUND);
    assert_int_equal(v.type, ASN_GAUGE);
    assert_int_equal(v.integer, 2);
    o = host_cell(5, 1);
    assert_int_equal(vmh_mib_get(&fx->view, o.o, o.len, &v), VMH_MIB_FOUND);
    assert_int_equal(v.integer, -2147483647L - 1); /* no sensor */
}

/* Walks everything and returns the number of instances; checks strict
 * increase on the way. */
static size_t
walk(const struct vmh_mib_view *view, const oid *from, size_t from_len, GPtrArray *names)
{
    struct oidbuf cur = {.len = from_len}, next;
    struct vmh_mib_value v;
    size_t n = 0;

    memcpy(cur.o, from, from_len * sizeof(oid));
    while (vmh_mib_next(view, cur.o, cur.len, next.o, &next.len, &v) == VMH_MIB_FOUND) {
        assert_true(snmp_oid_compare(next.o, next.len, cur.o, cur.len) > 0);
        if (names && v.type == ASN_OCTET_STR)
            g_ptr_array_add(names, g_strndup(v.str, v.len));
        cur = next;
        n++;
    }
    return n;
}

static void
test_walk_visits_every_instance_once_in_oid_order(void **state)
{
    struct fx *fx = *state;
    const oid iso[] = {1};
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);

    /* system 7 + hosts 2 x 8 + VMs 3 x 9 + statistics 6 */
    assert_int_equal(walk(&fx->view, iso, 1, names), 7 + 16 + 27 + 6);
    /* vmhVmName column: rows in UUID order */
    for (guint i = 0; i + 2 < names->len; i++) {
        if (!strcmp(names->pdata[i], "vm-one")) {
            assert_string_equal(names->pdata[i + 1], "vm-two");
            assert_string_equal(names->pdata[i + 2], "vm-three");
        }
    }
    g_ptr_array_free(names, TRUE);
    /* an AgentX subagent leaves the system group to its master */
    fx->view.system_group = false;
    assert_int_equal(walk(&fx->view, iso, 1, NULL), 16 + 27 + 6);
}

static void
test_getnext_from_a_partial_or_odd_index(void **state)
{
    struct fx *fx = *state;
    struct vmh_mib_value v;
    struct oidbuf o, next;

    /* "2" sorts after UUID_1, before UUID_2 */
    o = vm_cell(2, "2");
    assert_int_equal(vmh_mib_next(&fx->view, o.o, o.len, next.o, &next.len, &v), VMH_MIB_FOUND);
    assert_str(&v, "vm-two");
    /* past the last row of a column: the first row of the next column */
    o = vm_cell(2, "9");
    assert_int_equal(vmh_mib_next(&fx->view, o.o, o.len, next.o, &next.len, &v), VMH_MIB_FOUND);
    assert_int_equal(next.o[VMH_MIB_ROOT_LEN + 3], 3);
    assert_str(&v, "zeta"); /* vm-one is on zeta */
    /* a sub-identifier beyond any character */
    o = vm_cell(2, NULL);
    o.o[o.len++] = 100000;
    assert_int_equal(vmh_mib_next(&fx->view, o.o, o.len, next.o, &next.len, &v), VMH_MIB_FOUND);
    assert_int_equal(next.o[VMH_MIB_ROOT_LEN + 3], 3);
    /* the last column's last row: on to the statistics */
    o = vm_cell(10, UUID_3);
    assert_int_equal(vmh_mib_next(&fx->view, o.o, o.len, next.o, &next.len, &v), VMH_MIB_FOUND);
    assert_int_equal(next.len, VMH_MIB_ROOT_LEN + 4);
    assert_int_equal(next.o[VMH_MIB_ROOT_LEN + 1], 3);
    assert_int_equal(v.type, ASN_COUNTER);
    /* the last statistic: the end */
    {
        const oid last[] = {VMH_MIB_ROOT, 1, 3, 6, 0};

        assert_int_equal(vmh_mib_next(&fx->view, last, G_N_ELEMENTS(last), next.o, &next.len, &v),
                         VMH_MIB_END);
    }
}

static void
test_fault_shows_in_health_cause_and_statistics(void **state)
{
    struct fx *fx = *state;
    struct vmh_fault_report r = {.host = "zeta",
                                 .cause = VMH_CAUSE_HIGH_TEMPERATURE,
                                 .severity = VMH_SEV_CRITICAL,
                                 .resource = "hwmon0/temp1",
                                 .value = "95.0"};
    struct vmh_mib_value v;
    struct oidbuf o;
    const oid faults[] = {VMH_MIB_ROOT, 1, 3, 1, 0};

    vmh_engine_raise_fault(fx->engine, &r);
    fx_view(fx);
    o = vm_cell(5, UUID_3);
    assert_int_equal(vmh_mib_get(&fx->view, o.o, o.len, &v), VMH_MIB_FOUND);
    assert_int_equal(v.integer, 3); /* faulty(3) */
    o = vm_cell(6, UUID_3);
    assert_int_equal(vmh_mib_get(&fx->view, o.o, o.len, &v), VMH_MIB_FOUND);
    assert_int_equal(v.integer, 1); /* highTemperature(1) */
    o = vm_cell(9, UUID_3);
    assert_int_equal(vmh_mib_get(&fx->view, o.o, o.len, &v), VMH_MIB_FOUND);
    assert_int_equal(v.integer, 2); /* pending(2) */
    o = vm_cell(6, UUID_2);         /* on the other host */
    assert_int_equal(vmh_mib_get(&fx->view, o.o, o.len, &v), VMH_MIB_FOUND);
    assert_int_equal(v.integer, 0);
    o = host_cell(4, 1);
    assert_int_equal(vmh_mib_get(&fx->view, o.o, o.len, &v), VMH_MIB_FOUND);
    assert_int_equal(v.integer, 3);
    assert_int_equal(vmh_mib_get(&fx->view, faults, G_N_ELEMENTS(faults), &v), VMH_MIB_FOUND);
    assert_int_equal(v.integer, 1);
}

static void
test_system_group(void **state)
{
    struct fx *fx = *state;
    struct vmh_mib_value v;
    const oid descr[] = {1, 3, 6, 1, 2, 1, 1, 1, 0}, objid[] = {1, 3, 6, 1, 2, 1, 1, 2, 0},
              uptime[] = {1, 3, 6, 1, 2, 1, 1, 3, 0};

    assert_int_equal(vmh_mib_get(&fx->view, descr, 9, &v), VMH_MIB_FOUND);
    assert_str(&v, "test agent");
    assert_int_equal(vmh_mib_get(&fx->view, objid, 9, &v), VMH_MIB_FOUND);
    assert_int_equal(v.type, ASN_OBJECT_ID);
    assert_int_equal(v.objid_len, VMH_MIB_ROOT_LEN);
    assert_memory_equal(v.objid, vmh_mib_root, sizeof vmh_mib_root);
    assert_int_equal(vmh_mib_get(&fx->view, uptime, 9, &v), VMH_MIB_FOUND);
    assert_int_equal(v.type, ASN_TIMETICKS);
    assert_int_equal(v.integer, 4200);
}

static void
test_walk_of_ten_thousand_rows(void **state)
{
    struct fx *fx = *state;
    struct vmh_domain_info *doms = g_new0(struct vmh_domain_info, 10000);
    const oid table[] = {VMH_MIB_ROOT, 1, 2};
    struct oidbuf cur = {.len = G_N_ELEMENTS(table)}, next;
    struct vmh_mib_value v;
    size_t n = 0;

    for (int i = 0; i < 10000; i++) {
        char uuid[VMH_UUID_LEN + 1], name[32];

        snprintf(uuid, sizeof uuid, "%08x-0000-4000-8000-%012d", (unsigned)(i * 2654435761u), i);
        snprintf(name, sizeof name, "vm-%d", i);
        doms[i] = dom(uuid, name, VMH_POWER_RUNNING);
    }
    vmh_engine_host_connected(fx->engine, "alpha", doms, 10000);
    fx_view(fx);
    memcpy(cur.o, table, sizeof table);
    while (vmh_mib_next(&fx->view, cur.o, cur.len, next.o, &next.len, &v) == VMH_MIB_FOUND &&
           next.o[VMH_MIB_ROOT_LEN + 1] == 2) {
        cur = next;
        n++;
    }
    /* zeta's 2 VMs and alpha's 10 000, 9 columns */
    assert_int_equal(n, 10002 * 9);
}

static void
test_strings_are_cut_at_a_character_boundary(void **state)
{
    char s[300];
    uint8_t dt[11];

    memset(s, 'a', 254);
    strcpy(s + 254, "\xc3\xa9tail"); /* é straddles octet 255 */
    assert_int_equal(vmh_mib_utf8_len(s), 254);
    assert_int_equal(vmh_mib_utf8_len("short"), 5);
    vmh_mib_date_and_time(1795740330123LL, dt); /* 2026-11-27T00:45:30.123Z */
    assert_int_equal((dt[0] << 8) | dt[1], 2026);
    assert_int_equal(dt[2], 11);
    assert_int_equal(dt[3], 27);
    assert_int_equal(dt[6], 30);
    assert_int_equal(dt[7], 1);
    assert_int_equal(dt[8], '+');
}

/* --- configuration --- */

static const char *conf_xml =
    "<agent xmlns=\"urn:vmhealth:vmhealth-agent\"><snmp>"
    "<agent-address>udp:127.0.0.1:1161</agent-address>"
    "<community><name>lan</name><source>10.1.0.0/16</source></community>"
    "<community><name>v6</name><source>2001:db8::/32</source></community>"
    "<community><name>any</name></community>"
    "<usm-user><name>noc</name><auth-protocol>sha-512</auth-protocol>"
    "<auth-passphrase>passphrase1</auth-passphrase><priv-protocol>aes-256</priv-protocol>"
    "</usm-user>"
    "<target><name>t</name><address>192.0.2.1</address><version>v3</version><user>noc</user>"
    "<inform>true</inform><engine-id>8000000001020304</engine-id></target>"
    "</snmp></agent>";

static void
test_configuration_and_community_sources(void **state)
{
    struct ly_ctx *ctx = NULL;
    struct lyd_node *tree = NULL;
    struct vmh_snmp_conf *conf = NULL;
    char *err = NULL;
    struct sockaddr_in in4 = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};

    assert_int_equal(vmh_yang_ctx_new(VMH_TEST_YANG_PATH, &ctx), 0);
    assert_int_equal(vmh_config_load_mem(ctx, conf_xml, LYD_XML, &tree, &err), 0);
    assert_int_equal(vmh_snmp_conf_build(tree, &conf, &err), 0);
    assert_int_equal(conf->n_addresses, 1);
    assert_int_equal(conf->n_communities, 3);
    assert_int_equal(conf->n_users, 1);
    assert_int_equal(conf->users[0].auth, VMH_SNMP_AUTH_SHA512);
    assert_int_equal(conf->users[0].priv, VMH_SNMP_PRIV_AES256);
    assert_string_equal(conf->users[0].priv_pass, "passphrase1"); /* defaults to auth */
    assert_int_equal(conf->n_targets, 1);
    assert_ptr_equal(conf->targets[0].user, &conf->users[0]);
    assert_true(conf->targets[0].inform);
    assert_int_equal(conf->targets[0].port, 162);
    assert_int_equal(conf->targets[0].timeout_ms, 1000);
    assert_int_equal(conf->targets[0].retries, 3);
    assert_int_equal(conf->targets[0].level, VMH_SNMP_AUTHPRIV);

    inet_pton(AF_INET, "10.1.200.3", &in4.sin_addr);
    assert_true(vmh_snmp_conf_community_allows(conf, "lan", 3, &in4));
    assert_false(vmh_snmp_conf_community_allows(conf, "la", 2, &in4));
    assert_false(vmh_snmp_conf_community_allows(conf, "v6", 2, &in4));
    inet_pton(AF_INET, "10.2.0.1", &in4.sin_addr);
    assert_false(vmh_snmp_conf_community_allows(conf, "lan", 3, &in4));
    assert_true(vmh_snmp_conf_community_allows(conf, "any", 3, &in4));
    assert_false(vmh_snmp_conf_community_allows(conf, "lan", 3, NULL));
    inet_pton(AF_INET6, "::ffff:10.1.0.9", &in6.sin6_addr); /* dual-stack socket */
    assert_true(vmh_snmp_conf_community_allows(conf, "lan", 3, &in6));
    inet_pton(AF_INET6, "2001:db8:ffff::1", &in6.sin6_addr);
    assert_true(vmh_snmp_conf_community_allows(conf, "v6", 2, &in6));
    inet_pton(AF_INET6, "2001:db9::1", &in6.sin6_addr);
    assert_false(vmh_snmp_conf_community_allows(conf, "v6", 2, &in6));
    assert_non_null(vmh_snmp_conf_find_user(conf, "noc", 3));
    assert_null(vmh_snmp_conf_find_user(conf, "nocx", 4));

    vmh_snmp_conf_free(conf);
    lyd_free_siblings(tree);
    ly_ctx_destroy(ctx);
}

static void
test_no_snmp_section_is_an_empty_configuration(void **state)
{
    struct vmh_snmp_conf *conf = NULL;
    char *err = NULL;

    assert_int_equal(vmh_snmp_conf_build(NULL, &conf, &err), 0);
    assert_int_equal(conf->n_addresses + conf->n_targets + conf->n_communities, 0);
    assert_null(conf->agentx_socket);
    vmh_snmp_conf_free(conf);
}

/* The agent/snmp of `body` (children of snmp; NULL: no snmp at all). */
static struct vmh_snmp_conf *
conf_of(struct ly_ctx *ctx, const char *body)
{
    char *xml = body ? g_strdup_printf("<agent xmlns=\"urn:vmhealth:vmhealth-agent\"><snmp>%s"
                                       "</snmp></agent>",
                                       body)
                     : NULL;
    struct lyd_node *tree = NULL;
    struct vmh_snmp_conf *conf = NULL;
    char *err = NULL;

    if (xml)
        assert_int_equal(vmh_config_load_mem(ctx, xml, LYD_XML, &tree, &err), 0);
    assert_int_equal(vmh_snmp_conf_build(tree, &conf, &err), 0);
    lyd_free_siblings(tree);
    g_free(xml);
    return conf;
}

#define USER(pass)                                                                                 \
    "<usm-user><name>noc</name><auth-passphrase>" pass "</auth-passphrase></usm-user>"
#define V2C(name, port)                                                                            \
    "<target><name>" name "</name><address>192.0.2.1</address><port>" port "</port>"               \
    "<community>traps</community></target>"
#define V3(name)                                                                                   \
    "<target><name>" name "</name><address>192.0.2.2</address><version>v3</version>"               \
    "<user>noc</user><inform>true</inform></target>"

static void
test_targets_matched_by_name_and_compared_by_settings(void **state)
{
    struct ly_ctx *ctx = NULL;
    struct vmh_snmp_conf *from, *to;
    ssize_t match[4];
    bool changed[4];

    assert_int_equal(vmh_yang_ctx_new(VMH_TEST_YANG_PATH, &ctx), 0);
    from = conf_of(ctx, USER("passphrase1") V2C("a", "162") V2C("b", "162") V3("c"));
    /* b kept as it was, a moved to another port, c's user got another
     * passphrase, d new; in another order */
    to = conf_of(ctx, USER("passphrase2") V2C("d", "162") V2C("b", "162") V2C("a", "1162") V3("c"));
    vmh_snmp_conf_match_targets(from, to, match, changed);
    assert_int_equal(match[0], -1); /* d */
    assert_int_equal(match[1], 1);  /* b */
    assert_false(changed[1]);
    assert_int_equal(match[2], 0); /* a */
    assert_true(changed[2]);
    assert_int_equal(match[3], 2); /* c: its user's keys changed */
    assert_true(changed[3]);
    assert_true(vmh_snmp_target_equal(&from->targets[1], &to->targets[1]));
    vmh_snmp_conf_free(to);

    /* the same configuration again: nothing changed */
    to = conf_of(ctx, USER("passphrase1") V2C("a", "162") V2C("b", "162") V3("c"));
    vmh_snmp_conf_match_targets(from, to, match, changed);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(match[i], i);
        assert_false(changed[i]);
    }
    vmh_snmp_conf_free(to);
    /* from nothing: everything new */
    to = conf_of(ctx, USER("passphrase1") V3("c"));
    vmh_snmp_conf_match_targets(NULL, to, match, changed);
    assert_int_equal(match[0], -1);
    vmh_snmp_conf_free(to);
    vmh_snmp_conf_free(from);
    ly_ctx_destroy(ctx);
}

static void
test_role_follows_what_is_configured(void **state)
{
    struct ly_ctx *ctx = NULL;
    struct vmh_snmp_conf *conf;

    assert_int_equal(vmh_yang_ctx_new(VMH_TEST_YANG_PATH, &ctx), 0);
    assert_int_equal(vmh_snmp_conf_role(NULL), VMH_SNMP_OFF);
    conf = conf_of(ctx, NULL);
    assert_int_equal(vmh_snmp_conf_role(conf), VMH_SNMP_OFF);
    vmh_snmp_conf_free(conf);
    /* communities alone neither listen nor send */
    conf = conf_of(ctx, "<community><name>public</name></community>");
    assert_int_equal(vmh_snmp_conf_role(conf), VMH_SNMP_OFF);
    vmh_snmp_conf_free(conf);
    conf = conf_of(ctx, V2C("a", "162"));
    assert_int_equal(vmh_snmp_conf_role(conf), VMH_SNMP_MASTER);
    vmh_snmp_conf_free(conf);
    conf = conf_of(ctx, "<agent-address>udp:127.0.0.1:1161</agent-address>");
    assert_int_equal(vmh_snmp_conf_role(conf), VMH_SNMP_MASTER);
    vmh_snmp_conf_free(conf);
    conf = conf_of(ctx, "<agentx-socket>/run/agentx</agentx-socket>" V2C("a", "162"));
    assert_int_equal(vmh_snmp_conf_role(conf), VMH_SNMP_SUBAGENT);
    vmh_snmp_conf_free(conf);
    ly_ctx_destroy(ctx);
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
        cmocka_unit_test_setup_teardown(test_vm_columns_are_read_by_uuid_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_instances_and_objects_are_told_apart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_host_table_is_ordered_by_index_not_name, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_walk_visits_every_instance_once_in_oid_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_getnext_from_a_partial_or_odd_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_shows_in_health_cause_and_statistics, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_system_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_walk_of_ten_thousand_rows, setup, teardown),
        cmocka_unit_test(test_strings_are_cut_at_a_character_boundary),
        cmocka_unit_test(test_configuration_and_community_sources),
        cmocka_unit_test(test_no_snmp_section_is_an_empty_configuration),
        cmocka_unit_test(test_targets_matched_by_name_and_compared_by_settings),
        cmocka_unit_test(test_role_follows_what_is_configured),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
