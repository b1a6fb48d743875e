/* RPC input handling: any bytes as one NETCONF message (in base:1.1
 * chunked framing, so that the input is always exactly one message) to the
 * real server, on a fresh session: every operation, filter and domain RPC
 * as libnetconf2 parses it and vmhealth answers it.  The first byte picks
 * the session's role: 'm' the user of VNF manager m1, anything else admin.
 * After each message the server must still answer a get of one leaf on
 * the same session (or a new one when the message ended it), every reply
 * must be a well-formed rpc-reply, the session must end and release its
 * locks when closed, and running must stay valid. */
#include <stdint.h>
#include <stdlib.h>

#include "nc_harness.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    struct fuzz_nc_conn *c;
    enum fuzz_nc_reply kind;

    if (!ready) {
        fuzz_nc_init();
        ready = true;
    }
    if (size < 2)
        return 0;
    c = fuzz_nc_open(data[0] == 'm');
    fuzz_nc_send(c, data + 1, size - 1);
    if (fuzz_nc_alive(c, &kind) > 1)
        abort(); /* two replies to one message */
    fuzz_nc_close(c);
    fuzz_nc_check_running();
    fuzz_nc_settle();
    return 0;
}
