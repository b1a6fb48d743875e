/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Replies that carry data (get, get-config), printed here in one piece;
 * error replies are error.c's.
 *
 * libnetconf2 2.0 prints a reply through libyang's callback printer, which
 * hands it every fragment (an element name, a value) in its own call, into
 * a 1 KiB buffer it sends as one chunk each time it fills: one write(2),
 * or one SSH packet encrypted and MACed on its own, per KiB (3 300 of them
 * for 10 000 VMs).  A single call larger than that buffer is sent as one
 * chunk (nc_write_clb() in its io.c), and libyang's printer passes an XML
 * anydata's text on in a single call.  So the data is printed here with
 * the with-defaults mode the client asked for, into one string, and
 * libnetconf2 frames and writes it at once. */
#include "netconf/netconf_p.h"

#include "config/config.h"
#include "util/log.h"

#include <libnetconf2/messages_server.h>
#include <stdio.h>
#include <stdlib.h>

static uint32_t
vmh_nc_wd_print_flag(NC_WD_MODE wd)
{
    switch (wd) {
    case NC_WD_TRIM:
        return LYD_PRINT_WD_TRIM;
    case NC_WD_ALL:
        return LYD_PRINT_WD_ALL;
    case NC_WD_ALL_TAG:
        return LYD_PRINT_WD_ALL_TAG;
    default:
        return LYD_PRINT_WD_EXPLICIT;
    }
}

char *
vmh_nc_print_data(const struct ly_ctx *ctx, const struct lyd_node *data,
                  const struct vmh_snapshot *lists, NC_WD_MODE wd)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f;
    LY_ERR rc = LY_SUCCESS;

    if (lists)
        return vmh_state_print(ctx, data, lists, vmh_nc_wd_print_flag(wd), &text) == 0 ? text
                                                                                       : NULL;
    /* A FILE, not libyang's memory printer, which allocates for every
     * fragment and reallocates its buffer to the exact size each time. */
    f = open_memstream(&text, &len);
    if (!f) {
        log_err("netconf", "cannot print a reply: %m");
        return NULL;
    }
    if (data)
        rc = lyd_print_file(f, lyd_first_sibling(data), LYD_XML,
                            LYD_PRINT_WITHSIBLINGS | LYD_PRINT_SHRINK | vmh_nc_wd_print_flag(wd));
    if (fclose(f) != 0 || rc != LY_SUCCESS) {
        log_err("netconf", "cannot print a reply: %s", rc ? ly_errmsg(ctx) : "out of memory");
        free(text);
        return NULL;
    }
    return text;
}

struct nc_server_reply *
vmh_nc_reply_text(const struct lyd_node *rpc, char *text)
{
    struct lyd_node *out = NULL;

    if (lyd_dup_single(rpc, NULL, 0, &out) != LY_SUCCESS ||
        lyd_new_any(out, NULL, "data", text, 1, LYD_ANYDATA_XML, 1, NULL) != LY_SUCCESS) {
        lyd_free_all(out);
        free(text);
        return NULL;
    }
    /* the with-defaults mode is in the text already */
    return nc_server_reply_data(out, NC_WD_EXPLICIT, NC_PARAMTYPE_FREE);
}

struct nc_server_reply *
vmh_nc_reply_data(const struct lyd_node *rpc, struct lyd_node *data, NC_WD_MODE wd,
                  const struct vmh_snapshot *lists)
{
    char *text = vmh_nc_print_data(LYD_CTX(rpc), data, lists, wd);
    struct nc_server_reply *r;

    lyd_free_siblings(data);
    r = text ? vmh_nc_reply_text(rpc, text) : NULL;
    return r ? r
             : vmh_nc_err(LYD_CTX(rpc), VMH_NC_TAG_OPERATION_FAILED, VMH_NC_APPLICATION, NULL,
                          "cannot build the reply");
}
