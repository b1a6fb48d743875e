/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The one symbol the program takes over from a library: libyang's
 * lyd_parse_op().
 *
 * libnetconf2 2.0.24 reads an <rpc> and parses it in one static function
 * (nc_server_recv_rpc_io() in session_server.c): lyd_parse_op() on the
 * server's context, then its own error reply when that fails, before any
 * callback runs.  It exports no hook between reading and parsing (the
 * global RPC callback, nc_set_global_rpc_clb(), gets the parsed tree), and
 * owns the SSH channel, so the raw message is out of reach.  The parsing
 * the server needs (rpc_parse.c: malformed XML that crashes libnetconf2 or
 * libyang, ncclient's subscription filter, refused input answered with
 * invalid-value) can only run by standing in for lyd_parse_op().  This
 * stand-in does nothing else: the call libnetconf2's server makes (an RPC
 * envelope in XML from memory) goes to vmh_nc_rpc_parse(), every other
 * call to libyang's function unchanged. */
#include "netconf/netconf_p.h"

#include <dlfcn.h>
#include <libyang/libyang.h>

typedef LY_ERR (*vmh_parse_op_fn)(const struct ly_ctx *, struct lyd_node *, struct ly_in *,
                                  LYD_FORMAT, enum lyd_type, struct lyd_node **,
                                  struct lyd_node **);

LY_ERR
vmh_nc_ly_parse_op(const struct ly_ctx *ctx, struct lyd_node *parent, struct ly_in *in,
                   LYD_FORMAT format, enum lyd_type data_type, struct lyd_node **tree,
                   struct lyd_node **op)
{
    static vmh_parse_op_fn real;

    if (!real)
        real = (vmh_parse_op_fn)dlsym(RTLD_NEXT, "lyd_parse_op");
    return real(ctx, parent, in, format, data_type, tree, op);
}

LY_ERR
lyd_parse_op(const struct ly_ctx *ctx, struct lyd_node *parent, struct ly_in *in, LYD_FORMAT format,
             enum lyd_type data_type, struct lyd_node **tree, struct lyd_node **op)
{
    if (data_type == LYD_TYPE_RPC_NETCONF && format == LYD_XML && ly_in_type(in) == LY_IN_MEMORY &&
        !parent && tree && op)
        return vmh_nc_rpc_parse(ctx, ly_in_memory(in, NULL), tree, op);
    return vmh_nc_ly_parse_op(ctx, parent, in, format, data_type, tree, op);
}
