/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The NETCONF server's pieces that need no network: RFC 6241 subtree
 * filtering (selection, containment, content match, keys), XPath filters,
 * notification filters, and the datastores' locks and startup write-back. */
#include "config/config.h"
#include "config/datastore.h"
#include "netconf/netconf_p.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static struct ly_ctx *ctx;

static const char *data_xml =
    "<vm-health xmlns=\"urn:vmhealth:nfv-vm-health\">"
    "<host><name>a</name><uri>test:///a</uri><priority>3</priority></host>"
    "<host><name>b</name><uri>test:///b</uri><priority>5</priority></host>"
    "<vnf-manager><name>m1</name><preprocessing-time>30</preprocessing-time></vnf-manager>"
    "</vm-health>";

static struct lyd_node *
parse(const char *xml)
{
    struct lyd_node *t = NULL;

    assert_int_equal(lyd_parse_data_mem(ctx, xml, LYD_XML, LYD_PARSE_ONLY | LYD_PARSE_OPAQ, 0, &t),
                     LY_SUCCESS);
    return t;
}

static char *
print(const struct lyd_node *t)
{
    char *s = NULL;

    if (!t)
        return strdup("");
    lyd_print_mem(&s, t, LYD_XML, LYD_PRINT_WITHSIBLINGS | LYD_PRINT_SHRINK);
    return s;
}

static char *
subtree(const char *filter)
{
    struct lyd_node *data = parse(data_xml), *f = parse(filter), *out = NULL;
    char *s;

    assert_int_equal(vmh_nc_filter_subtree(data, f, &out), 0);
    s = print(out);
    lyd_free_siblings(out);
    lyd_free_siblings(f);
    lyd_free_siblings(data);
    return s;
}

static int
setup(void **state)
{
    (void)state;
    return vmh_yang_ctx_new(VMH_TEST_YANG_PATH, &ctx);
}

static int
teardown(void **state)
{
    (void)state;
    ly_ctx_destroy(ctx);
    return 0;
}

static void
test_selection_node_selects_the_whole_subtree(void **state)
{
    char *s = subtree("<vm-health xmlns=\"urn:vmhealth:nfv-vm-health\"><vnf-manager/></vm-health>");

    assert_non_null(strstr(s, "<preprocessing-time>30</preprocessing-time>"));
    assert_null(strstr(s, "<host>"));
    free(s);
    (void)state;
}

static void
test_content_match_selects_one_entry_with_its_key(void **state)
{
    char *s = subtree("<vm-health xmlns=\"urn:vmhealth:nfv-vm-health\"><host><name>b</name>"
                      "<priority/></host></vm-health>");

    assert_string_equal(s, "<vm-health xmlns=\"urn:vmhealth:nfv-vm-health\"><host><name>b</name>"
                           "<priority>5</priority></host></vm-health>");
    free(s);
    (void)state;
}

static void
test_content_match_only_returns_the_whole_entry(void **state)
{
    char *s = subtree("<vm-health xmlns=\"urn:vmhealth:nfv-vm-health\"><host><name>a</name>"
                      "</host></vm-health>");

    assert_non_null(strstr(s, "<uri>test:///a</uri>"));
    assert_null(strstr(s, "test:///b"));
    free(s);
    (void)state;
}

/* A key as the only selection node (RFC 6241 6.2.5) gives every entry with
 * just its key (it gave nothing). */
static void
test_selecting_a_key_gives_every_entry_with_its_key(void **state)
{
    char *s = subtree("<vm-health xmlns=\"urn:vmhealth:nfv-vm-health\"><host><name/></host>"
                      "</vm-health>");

    assert_string_equal(s, "<vm-health xmlns=\"urn:vmhealth:nfv-vm-health\"><host><name>a</name>"
                           "</host><host><name>b</name></host></vm-health>");
    free(s);
    (void)state;
}

static void
test_nothing_matches_gives_nothing(void **state)
{
    char *s = subtree("<vm-health xmlns=\"urn:vmhealth:nfv-vm-health\"><host><name>zz</name>"
                      "</host></vm-health>");

    assert_string_equal(s, "");
    free(s);
    s = subtree("<vm-health xmlns=\"urn:example:other\"/>");
    assert_string_equal(s, "");
    free(s);
    (void)state;
}

static void
test_xpath_filter_keeps_parents(void **state)
{
    struct lyd_node *data = parse(data_xml), *out = NULL;
    char *s;

    assert_int_equal(
        vmh_nc_filter_xpath(data, "/nfv-vm-health:vm-health/host[name='a']/priority", &out), 0);
    s = print(out);
    assert_string_equal(s, "<vm-health xmlns=\"urn:vmhealth:nfv-vm-health\"><host><name>a</name>"
                           "<priority>3</priority></host></vm-health>");
    free(s);
    lyd_free_siblings(out);
    assert_int_equal(vmh_nc_filter_xpath(data, "/nfv-vm-health:vm-health/[", &out), -1);
    lyd_free_siblings(data);
    (void)state;
}

static void
test_datastore_locks_name_the_holder(void **state)
{
    struct vmh_datastore *ds = NULL;
    uint32_t holder = 0;

    assert_int_equal(vmh_ds_new(parse(data_xml), "/nonexistent/x.xml", &ds), 0);
    assert_int_equal(vmh_ds_lock(ds, VMH_DS_RUNNING, 7, &holder), 0);
    assert_int_equal(vmh_ds_lock(ds, VMH_DS_RUNNING, 8, &holder), -EBUSY);
    assert_int_equal(holder, 7);
    assert_int_equal(vmh_ds_unlock(ds, VMH_DS_RUNNING, 8, &holder), -EPERM);
    assert_int_equal(vmh_ds_unlock(ds, VMH_DS_STARTUP, 8, &holder), -ENOENT);
    vmh_ds_unlock_session(ds, 7);
    assert_int_equal(vmh_ds_lock_holder(ds, VMH_DS_RUNNING, NULL), 0);
    vmh_ds_free(ds);
    (void)state;
}

static void
test_startup_is_written_atomically_or_not_at_all(void **state)
{
    char dir[] = "/tmp/vmh-ds-XXXXXX", path[64], *err = NULL, buf[4096];
    struct vmh_datastore *ds = NULL;
    struct stat st;
    FILE *f;
    size_t n;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/startup.xml", dir);
    assert_int_equal(vmh_ds_new(parse(data_xml), path, &ds), 0);
    assert_int_equal(vmh_ds_replace(ds, VMH_DS_STARTUP, parse(data_xml), &err), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    f = fopen(path, "r");
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_non_null(strstr(buf, "<priority>5</priority>"));
    vmh_ds_free(ds);
    /* an unwritable place: an error, and startup stays as it was */
    assert_int_equal(vmh_ds_new(parse(data_xml), "/nonexistent-dir/x.xml", &ds), 0);
    assert_true(vmh_ds_replace(ds, VMH_DS_STARTUP, parse(data_xml), &err) < 0);
    assert_non_null(err);
    free(err);
    assert_non_null(vmh_ds_read_begin(ds, VMH_DS_STARTUP));
    vmh_ds_read_end(ds);
    vmh_ds_free(ds);
    unlink(path);
    rmdir(dir);
    (void)state;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selection_node_selects_the_whole_subtree),
        cmocka_unit_test(test_content_match_selects_one_entry_with_its_key),
        cmocka_unit_test(test_content_match_only_returns_the_whole_entry),
        cmocka_unit_test(test_selecting_a_key_gives_every_entry_with_its_key),
        cmocka_unit_test(test_nothing_matches_gives_nothing),
        cmocka_unit_test(test_xpath_filter_keeps_parents),
        cmocka_unit_test(test_datastore_locks_name_the_holder),
        cmocka_unit_test(test_startup_is_written_atomically_or_not_at_all),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
