/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Atomic file writes and directory creation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <glib.h>

#include "util/file.h"

static void
test_write_atomic_replaces_content_with_mode(void **state)
{
    char *dir = g_dir_make_tmp("vmh-file-XXXXXX", NULL);
    char *path = g_build_filename(dir, "a.json", NULL);
    char *text = NULL;
    struct stat st;

    assert_int_equal(vmh_file_write_atomic(path, "old", 3, 0600), 0);
    assert_int_equal(vmh_file_write_atomic(path, "new content", 11, 0600), 0);
    assert_true(g_file_get_contents(path, &text, NULL, NULL));
    assert_string_equal(text, "new content");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* No temporary file is left behind. */
    GDir *d = g_dir_open(dir, 0, NULL);
    int n = 0;
    while (g_dir_read_name(d))
        n++;
    g_dir_close(d);
    assert_int_equal(n, 1);
    g_free(text);
    unlink(path);
    rmdir(dir);
    g_free(path);
    g_free(dir);
}

static void
test_write_atomic_into_missing_dir_fails_cleanly(void **state)
{
    assert_true(vmh_file_write_atomic("/nonexistent-vmh/x/a", "x", 1, 0600) < 0);
}

static void
test_mkdir_p_creates_parents_with_mode(void **state)
{
    char *dir = g_dir_make_tmp("vmh-file-XXXXXX", NULL);
    char *deep = g_build_filename(dir, "a", "b", "c", NULL);
    struct stat st;

    assert_int_equal(vmh_file_mkdir_p(deep, 0700), 0);
    assert_int_equal(stat(deep, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(vmh_file_mkdir_p(deep, 0700), 0); /* exists: fine */
    char *cmd = g_strdup_printf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    g_free(cmd);
    g_free(deep);
    g_free(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_atomic_replaces_content_with_mode),
        cmocka_unit_test(test_write_atomic_into_missing_dir_fails_cleanly),
        cmocka_unit_test(test_mkdir_p_creates_parents_with_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
