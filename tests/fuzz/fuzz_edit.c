/* SPDX-License-Identifier: GPL-3.0-or-later */
/* edit-config application: any bytes as the content of <config> in an
 * edit-config of running, sent to the real server.  The first byte picks
 * the parameters: bits 0-1 default-operation (absent, merge, replace,
 * none), bits 2-3 test-option (absent, test-then-set, set, test-only),
 * bits 4-5 error-option (absent, stop-on-error, continue-on-error,
 * rollback-on-error); '@' is all absent.  After each edit: one reply,
 * well-formed; running changed only by an edit answered <ok/> that was not
 * test-only (an edit is all or nothing); running valid; the server still
 * answers a get.  running goes back to the baseline between inputs. */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "nc_harness.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const dflt[] = {NULL, "merge", "replace", "none"};
    static const char *const test[] = {NULL, "test-then-set", "set", "test-only"};
    static const char *const erropt[] = {NULL, "stop-on-error", "continue-on-error",
                                         "rollback-on-error"};
    static bool ready;
    struct fuzz_nc_conn *c;
    enum fuzz_nc_reply kind = FUZZ_NC_ERROR;
    GString *rpc;
    int replies;
    bool test_only;

    if (!ready) {
        fuzz_nc_init();
        ready = true;
    }
    if (size < 1)
        return 0;
    test_only = ((data[0] >> 2) & 3) == 3;
    rpc = g_string_new("<rpc message-id=\"edit\" xmlns=\"" FUZZ_NC_NS "\"><edit-config>"
                       "<target><running/></target>");
    if (dflt[data[0] & 3])
        g_string_append_printf(rpc, "<default-operation>%s</default-operation>", dflt[data[0] & 3]);
    if (test[(data[0] >> 2) & 3])
        g_string_append_printf(rpc, "<test-option>%s</test-option>", test[(data[0] >> 2) & 3]);
    if (erropt[(data[0] >> 4) & 3])
        g_string_append_printf(rpc, "<error-option>%s</error-option>", erropt[(data[0] >> 4) & 3]);
    g_string_append(rpc, "<config>");
    g_string_append_len(rpc, (const char *)data + 1, (gssize)(size - 1));
    g_string_append(rpc, "</config></edit-config></rpc>");

    c = fuzz_nc_open(false);
    fuzz_nc_send(c, rpc->str, rpc->len);
    replies = fuzz_nc_alive(c, &kind);
    if (replies > 1) {
        fprintf(stderr, "fuzz_edit: %d replies to one edit-config\n", replies);
        abort();
    }
    if (!fuzz_nc_running_is_baseline() && (replies != 1 || kind != FUZZ_NC_OK || test_only)) {
        fprintf(stderr, "fuzz_edit: running changed by an edit that was %s\n",
                test_only ? "test-only" : "refused");
        abort();
    }
    fuzz_nc_close(c);
    fuzz_nc_check_running();
    fuzz_nc_settle();
    g_string_free(rpc, TRUE);
    return 0;
}
