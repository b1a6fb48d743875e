/* SPDX-License-Identifier: GPL-3.0-or-later */
/* RPC input handling: any bytes as NETCONF messages to the real server on
 * a fresh session.  The first byte picks the session's role: 'm' the user
 * of VNF manager m1, anything else admin.  The rest is split at "]]>]]>"
 * into up to 8 messages, each sent in base:1.1 chunked framing (so that a
 * message is exactly the bytes between separators) and all pipelined:
 * a lock before an edit, a subscription before the fault that it should
 * hear of.  After them the server must still answer a get of one leaf on
 * the same session (or a new one when a message ended it), with no more
 * replies than messages; every reply must be a well-formed rpc-reply; the
 * session must end and release its locks when closed; running must stay
 * valid. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nc_harness.h"

#define FUZZ_RPC_MAX_MESSAGES 8

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    const char *msg = (const char *)data + 1, *end = (const char *)data + size;
    struct fuzz_nc_conn *c;
    enum fuzz_nc_reply kind;
    int sent = 0;

    if (!ready) {
        fuzz_nc_init();
        ready = true;
    }
    if (size < 2)
        return 0;
    c = fuzz_nc_open(data[0] == 'm');
    while (msg < end && sent < FUZZ_RPC_MAX_MESSAGES) {
        const char *sep = memmem(msg, (size_t)(end - msg), "]]>]]>", 6);
        size_t len = (size_t)((sep ? sep : end) - msg);

        if (len) {
            fuzz_nc_send(c, msg, len);
            sent++;
        }
        msg = sep ? sep + 6 : end;
    }
    if (fuzz_nc_alive(c, &kind) > sent)
        abort(); /* more replies than messages */
    fuzz_nc_close(c);
    fuzz_nc_check_running();
    fuzz_nc_settle();
    return 0;
}
