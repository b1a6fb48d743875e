/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The assignment element of domain metadata: present, absent, malformed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "virt/virt.h"

#define NS "urn:vmhealth:nfv-vm-health"

static void
test_full_assignment_is_read(void **state)
{
    struct vmh_vm_meta m;

    /* The form virDomainGetMetadata returns: a prefix bound on the root. */
    vmh_virt_parse_assignment("<vmh:assignment xmlns:vmh=\"" NS "\">\n"
                              "  <vmh:vnf-manager> vnfm-ims </vmh:vnf-manager>\n"
                              "  <vmh:preprocessing-time>30</vmh:preprocessing-time>\n"
                              "</vmh:assignment>",
                              &m);
    assert_true(m.present);
    assert_string_equal(m.manager, "vnfm-ims");
    assert_true(m.has_ppt);
    assert_int_equal(m.ppt, 30);
    assert_null(m.error);
    vmh_vm_meta_clear(&m);
}

static void
test_unqualified_form_from_libvirt_is_read(void **state)
{
    struct vmh_vm_meta m;

    /* What virDomainGetMetadata really returns: no prefix, no xmlns. */
    vmh_virt_parse_assignment("<assignment>\n  <vnf-manager>vnfm-test</vnf-manager>\n"
                              "  <preprocessing-time>20</preprocessing-time>\n</assignment>",
                              &m);
    assert_string_equal(m.manager, "vnfm-test");
    assert_int_equal(m.ppt, 20);
    assert_null(m.error);
    vmh_vm_meta_clear(&m);
}

static void
test_default_namespace_form_is_read(void **state)
{
    struct vmh_vm_meta m;

    vmh_virt_parse_assignment("<assignment xmlns=\"" NS "\"><vnf-manager>a</vnf-manager>"
                              "</assignment>",
                              &m);
    assert_string_equal(m.manager, "a");
    assert_false(m.has_ppt);
    assert_null(m.error);
    vmh_vm_meta_clear(&m);
}

static void
test_absent_metadata_is_not_an_error(void **state)
{
    struct vmh_vm_meta m;

    vmh_virt_parse_assignment(NULL, &m);
    assert_false(m.present);
    assert_null(m.manager);
    assert_null(m.error);
    vmh_virt_parse_assignment("", &m);
    assert_false(m.present);
}

static void
test_non_numeric_time_is_ignored_and_manager_kept(void **state)
{
    struct vmh_vm_meta m;

    vmh_virt_parse_assignment("<assignment xmlns=\"" NS "\"><vnf-manager>a</vnf-manager>"
                              "<preprocessing-time>soon</preprocessing-time></assignment>",
                              &m);
    assert_string_equal(m.manager, "a");
    assert_false(m.has_ppt);
    assert_non_null(strstr(m.error, "preprocessing-time 'soon'"));
    vmh_vm_meta_clear(&m);
}

static void
test_out_of_range_and_negative_times_are_ignored(void **state)
{
    struct vmh_vm_meta m;

    vmh_virt_parse_assignment("<assignment xmlns=\"" NS "\"><vnf-manager>a</vnf-manager>"
                              "<preprocessing-time>86401</preprocessing-time></assignment>",
                              &m);
    assert_false(m.has_ppt);
    assert_non_null(strstr(m.error, "above"));
    vmh_vm_meta_clear(&m);

    vmh_virt_parse_assignment("<assignment xmlns=\"" NS "\"><vnf-manager>a</vnf-manager>"
                              "<preprocessing-time>-5</preprocessing-time></assignment>",
                              &m);
    assert_false(m.has_ppt);
    assert_non_null(m.error);
    vmh_vm_meta_clear(&m);

    vmh_virt_parse_assignment("<assignment xmlns=\"" NS "\"><vnf-manager>a</vnf-manager>"
                              "<preprocessing-time>99999999999999999999</preprocessing-time>"
                              "</assignment>",
                              &m);
    assert_false(m.has_ppt);
    assert_non_null(m.error);
    vmh_vm_meta_clear(&m);
}

static void
test_missing_manager_is_reported_time_kept(void **state)
{
    struct vmh_vm_meta m;

    vmh_virt_parse_assignment("<assignment xmlns=\"" NS "\">"
                              "<preprocessing-time>45</preprocessing-time></assignment>",
                              &m);
    assert_true(m.present);
    assert_null(m.manager);
    assert_true(m.has_ppt);
    assert_int_equal(m.ppt, 45);
    assert_non_null(strstr(m.error, "no vnf-manager"));
    vmh_vm_meta_clear(&m);
}

static void
test_malformed_xml_is_reported(void **state)
{
    struct vmh_vm_meta m;

    vmh_virt_parse_assignment("<assignment xmlns=\"" NS "\"><vnf-manager>a</assignment>", &m);
    assert_true(m.present);
    assert_null(m.manager);
    assert_false(m.has_ppt);
    assert_non_null(strstr(m.error, "not well-formed"));
    vmh_vm_meta_clear(&m);
}

static void
test_wrong_namespace_is_rejected(void **state)
{
    struct vmh_vm_meta m;

    vmh_virt_parse_assignment("<assignment xmlns=\"urn:other\"><vnf-manager>a</vnf-manager>"
                              "</assignment>",
                              &m);
    assert_null(m.manager);
    assert_non_null(strstr(m.error, "is not"));
    vmh_vm_meta_clear(&m);
}

static void
test_empty_and_unknown_children_are_reported(void **state)
{
    struct vmh_vm_meta m;

    vmh_virt_parse_assignment("<assignment xmlns=\"" NS "\"><vnf-manager>  </vnf-manager>"
                              "<colour>blue</colour></assignment>",
                              &m);
    assert_null(m.manager);
    assert_non_null(strstr(m.error, "vnf-manager is empty"));
    assert_non_null(strstr(m.error, "unknown element 'colour'"));
    vmh_vm_meta_clear(&m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_assignment_is_read),
        cmocka_unit_test(test_unqualified_form_from_libvirt_is_read),
        cmocka_unit_test(test_default_namespace_form_is_read),
        cmocka_unit_test(test_absent_metadata_is_not_an_error),
        cmocka_unit_test(test_non_numeric_time_is_ignored_and_manager_kept),
        cmocka_unit_test(test_out_of_range_and_negative_times_are_ignored),
        cmocka_unit_test(test_missing_manager_is_reported_time_kept),
        cmocka_unit_test(test_malformed_xml_is_reported),
        cmocka_unit_test(test_wrong_namespace_is_rejected),
        cmocka_unit_test(test_empty_and_unknown_children_are_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
