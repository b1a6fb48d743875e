/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The NETCONF server of vmhealth, in process, for the fuzz targets: the
 * real server (vmh_nc_server_start) on a UNIX endpoint in a private
 * directory, the real datastores and engine on their loop, and a raw
 * NETCONF client over the socket (hello, then RFC 6242 chunked framing).
 * No hypervisor layer is wired: the engine's hooks are unset, so a host
 * in any configuration, fuzzed or not, is never connected; two hosts and
 * two VMs are fed to the engine through its public functions, as the
 * hypervisor layer would.  Anything unexpected aborts (a finding). */
#ifndef VMH_FUZZ_NC_HARNESS_H
#define VMH_FUZZ_NC_HARNESS_H

#include <stdbool.h>
#include <stddef.h>

#define FUZZ_NC_NS "urn:ietf:params:xml:ns:netconf:base:1.0"

struct fuzz_nc_conn;

enum fuzz_nc_reply {
    FUZZ_NC_OK,    /* <ok/> */
    FUZZ_NC_DATA,  /* <data> or an RPC's output */
    FUZZ_NC_ERROR, /* one or more well-formed <rpc-error> */
};

/* Once per process. */
void fuzz_nc_init(void);

/* A session over the UNIX endpoint with the hello exchanged; the local
 * user (root) acts as admin, or as the user of VNF manager m1. */
struct fuzz_nc_conn *fuzz_nc_open(bool manager);
/* Sends msg as one chunked message. */
void fuzz_nc_send(struct fuzz_nc_conn *c, const void *msg, size_t len);
/* Sends a get of one state leaf and reads until its answer, which must
 * hold the leaf, from the server that must still be answering (on a new
 * session when c was closed).  Every reply read on the way is checked:
 * well-formed, one rpc-reply of ok, data or rpc-errors, each rpc-error with
 * RFC 6241 types and tags.  Returns how many replies came before, the
 * kind of the first in *first. */
int fuzz_nc_alive(struct fuzz_nc_conn *c, enum fuzz_nc_reply *first);
/* Closes c and waits until the server has ended the session and released
 * its locks. */
void fuzz_nc_close(struct fuzz_nc_conn *c);

/* Whether running (and startup) are still the baseline configuration. */
bool fuzz_nc_running_is_baseline(void);
/* running passes libyang's validation. */
void fuzz_nc_check_running(void);
/* Back to the baseline configuration, users and inventory. */
void fuzz_nc_settle(void);

#endif
