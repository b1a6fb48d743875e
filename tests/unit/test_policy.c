/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Effective manager and preprocessing time: every precedence case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/policy.h"

#define UUID_A "6f1c2d3e-0000-4000-8000-00000000000a"
#define UUID_B "6f1c2d3e-0000-4000-8000-00000000000b"

static struct vmh_manager_conf managers[] = {
    {.name = "vnfm-epc"},
    {.name = "vnfm-ims", .has_ppt = true, .ppt = 120},
};

static struct vmh_config
base_config(void)
{
    struct vmh_config cfg = {
        .settings = {.default_ppt = 60},
        .managers = managers,
        .n_managers = 2,
    };
    return cfg;
}

static void
test_no_manager_no_assignment_uses_default(void **state)
{
    struct vmh_config cfg = base_config();
    struct vmh_effective eff;

    vmh_policy_effective(&cfg, UUID_A, NULL, &eff);
    assert_null(eff.manager);
    assert_int_equal(eff.ppt, 60);
    assert_int_equal(eff.source, VMH_PPT_DEFAULT);
    assert_false(eff.clamped);
}

static void
test_metadata_manager_gives_manager_time(void **state)
{
    struct vmh_config cfg = base_config();
    struct vmh_vm_meta meta = {.present = true, .manager = "vnfm-ims"};
    struct vmh_effective eff;

    vmh_policy_effective(&cfg, UUID_A, &meta, &eff);
    assert_string_equal(eff.manager, "vnfm-ims");
    assert_true(eff.manager_configured);
    assert_int_equal(eff.ppt, 120);
    assert_int_equal(eff.source, VMH_PPT_VNF_MANAGER);
}

static void
test_manager_without_time_falls_back_to_default(void **state)
{
    struct vmh_config cfg = base_config();
    struct vmh_vm_meta meta = {.present = true, .manager = "vnfm-epc"};
    struct vmh_effective eff;

    vmh_policy_effective(&cfg, UUID_A, &meta, &eff);
    assert_string_equal(eff.manager, "vnfm-epc");
    assert_int_equal(eff.ppt, 60);
    assert_int_equal(eff.source, VMH_PPT_DEFAULT);
}

static void
test_metadata_time_beats_manager_time(void **state)
{
    struct vmh_config cfg = base_config();
    struct vmh_vm_meta meta = {.present = true, .manager = "vnfm-ims", .has_ppt = true, .ppt = 30};
    struct vmh_effective eff;

    vmh_policy_effective(&cfg, UUID_A, &meta, &eff);
    assert_int_equal(eff.ppt, 30);
    assert_int_equal(eff.source, VMH_PPT_METADATA);
}

static void
test_assignment_time_beats_metadata_time(void **state)
{
    struct vmh_config cfg = base_config();
    struct vmh_assignment_conf asg = {.uuid = UUID_A, .has_ppt = true, .ppt = 5};
    struct vmh_vm_meta meta = {.present = true, .manager = "vnfm-ims", .has_ppt = true, .ppt = 30};
    struct vmh_effective eff;

    cfg.assignments = &asg;
    cfg.n_assignments = 1;
    vmh_policy_effective(&cfg, UUID_A, &meta, &eff);
    assert_int_equal(eff.ppt, 5);
    assert_int_equal(eff.source, VMH_PPT_VM_ASSIGNMENT);
    /* The assignment sets no manager: the metadata's stays. */
    assert_string_equal(eff.manager, "vnfm-ims");
}

static void
test_assignment_manager_beats_metadata_manager(void **state)
{
    struct vmh_config cfg = base_config();
    struct vmh_assignment_conf asg = {.uuid = UUID_A, .manager = "vnfm-ims"};
    struct vmh_vm_meta meta = {.present = true, .manager = "vnfm-epc"};
    struct vmh_effective eff;

    cfg.assignments = &asg;
    cfg.n_assignments = 1;
    vmh_policy_effective(&cfg, UUID_A, &meta, &eff);
    assert_string_equal(eff.manager, "vnfm-ims");
    assert_int_equal(eff.ppt, 120);
    assert_int_equal(eff.source, VMH_PPT_VNF_MANAGER);
}

static void
test_assignment_of_another_vm_does_not_apply(void **state)
{
    struct vmh_config cfg = base_config();
    struct vmh_assignment_conf asg = {
        .uuid = UUID_B, .manager = "vnfm-ims", .has_ppt = true, .ppt = 5};
    struct vmh_effective eff;

    cfg.assignments = &asg;
    cfg.n_assignments = 1;
    vmh_policy_effective(&cfg, UUID_A, NULL, &eff);
    assert_null(eff.manager);
    assert_int_equal(eff.source, VMH_PPT_DEFAULT);
}

static void
test_unconfigured_metadata_manager_gets_default(void **state)
{
    struct vmh_config cfg = base_config();
    struct vmh_vm_meta meta = {.present = true, .manager = "vnfm-unknown"};
    struct vmh_effective eff;

    vmh_policy_effective(&cfg, UUID_A, &meta, &eff);
    assert_string_equal(eff.manager, "vnfm-unknown");
    assert_false(eff.manager_configured);
    assert_int_equal(eff.ppt, 60);
    assert_int_equal(eff.source, VMH_PPT_DEFAULT);
}

static void
test_every_source_is_clamped_to_max(void **state)
{
    struct vmh_config cfg = base_config();
    struct vmh_assignment_conf asg = {.uuid = UUID_A, .has_ppt = true, .ppt = 500};
    struct vmh_vm_meta meta = {.present = true, .manager = "vnfm-ims"};
    struct vmh_effective eff;

    cfg.settings.has_max_ppt = true;
    cfg.settings.max_ppt = 90;
    vmh_policy_effective(&cfg, UUID_A, &meta, &eff); /* manager: 120 */
    assert_int_equal(eff.ppt, 90);
    assert_true(eff.clamped);
    assert_int_equal(eff.source, VMH_PPT_VNF_MANAGER);

    cfg.assignments = &asg;
    cfg.n_assignments = 1;
    vmh_policy_effective(&cfg, UUID_A, &meta, &eff); /* assignment: 500 */
    assert_int_equal(eff.ppt, 90);
    assert_int_equal(eff.source, VMH_PPT_VM_ASSIGNMENT);

    cfg.settings.default_ppt = 200; /* default above max */
    vmh_policy_effective(&cfg, UUID_B, NULL, &eff);
    assert_int_equal(eff.ppt, 90);
    assert_true(eff.clamped);
}

static void
test_time_under_max_is_not_clamped(void **state)
{
    struct vmh_config cfg = base_config();
    struct vmh_vm_meta meta = {.present = true, .has_ppt = true, .ppt = 90};
    struct vmh_effective eff;

    cfg.settings.has_max_ppt = true;
    cfg.settings.max_ppt = 90;
    vmh_policy_effective(&cfg, UUID_A, &meta, &eff);
    assert_int_equal(eff.ppt, 90);
    assert_false(eff.clamped);
}

static void
test_zero_time_is_a_valid_choice(void **state)
{
    struct vmh_config cfg = base_config();
    struct vmh_vm_meta meta = {.present = true, .manager = "vnfm-ims", .has_ppt = true, .ppt = 0};
    struct vmh_effective eff;

    vmh_policy_effective(&cfg, UUID_A, &meta, &eff);
    assert_int_equal(eff.ppt, 0);
    assert_int_equal(eff.source, VMH_PPT_METADATA);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_manager_no_assignment_uses_default),
        cmocka_unit_test(test_metadata_manager_gives_manager_time),
        cmocka_unit_test(test_manager_without_time_falls_back_to_default),
        cmocka_unit_test(test_metadata_time_beats_manager_time),
        cmocka_unit_test(test_assignment_time_beats_metadata_time),
        cmocka_unit_test(test_assignment_manager_beats_metadata_manager),
        cmocka_unit_test(test_assignment_of_another_vm_does_not_apply),
        cmocka_unit_test(test_unconfigured_metadata_manager_gets_default),
        cmocka_unit_test(test_every_source_is_clamped_to_max),
        cmocka_unit_test(test_time_under_max_is_not_clamped),
        cmocka_unit_test(test_zero_time_is_a_valid_choice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
