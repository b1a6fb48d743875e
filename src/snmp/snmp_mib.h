/* SPDX-License-Identifier: GPL-3.0-or-later */
/* NFV-VM-HEALTH-MIB (and the system group an NMS asks for first) computed
 * from one engine snapshot, without net-snmp's agent machinery: exact GET
 * and GETNEXT over object identifiers.  Rows are found by binary search in
 * the snapshot's sorted arrays, so a walk costs linear time in the rows.
 * The agent's handlers are thin wrappers; the unit tests call this
 * directly. */
#ifndef VMH_SNMP_SNMP_MIB_H
#define VMH_SNMP_SNMP_MIB_H

#include "core/engine.h"

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>

#define VMH_MIB_ROOT       1, 3, 6, 1, 4, 1, 8072, 9999, 9999, 7801
#define VMH_MIB_ROOT_LEN   10
#define VMH_MIB_SYSTEM     1, 3, 6, 1, 2, 1, 1
#define VMH_MIB_SYSTEM_LEN 7

extern const oid vmh_mib_root[VMH_MIB_ROOT_LEN];
extern const oid vmh_mib_objects[VMH_MIB_ROOT_LEN + 1];
extern const oid vmh_mib_system[VMH_MIB_SYSTEM_LEN];

/* The snapshot as the MIB shows it; build one per request (cheap: hosts are
 * few). */
struct vmh_mib_view {
    struct vmh_snapshot *snap; /* referenced by the view */
    const struct vmh_host_snap **hosts_by_index;
    bool system_group; /* serve the system group (not as an AgentX subagent) */
    uint32_t uptime_cs;
    const char *sys_descr;
    const char *sys_name;
};

void vmh_mib_view_init(struct vmh_mib_view *view, struct vmh_snapshot *snap);
void vmh_mib_view_clear(struct vmh_mib_view *view);

struct vmh_mib_value {
    u_char type;  /* ASN_INTEGER, ASN_OCTET_STR, ... */
    long integer; /* INTEGER, Counter32, Gauge32, Unsigned32, TimeTicks */
    const char *str;
    size_t len;
    oid objid[MAX_OID_LEN];
    size_t objid_len;
};

enum vmh_mib_status {
    VMH_MIB_FOUND = 0,
    VMH_MIB_NO_SUCH_OBJECT = -1,
    VMH_MIB_NO_SUCH_INSTANCE = -2,
    VMH_MIB_END = -3, /* getnext: nothing after name */
};

enum vmh_mib_status vmh_mib_get(const struct vmh_mib_view *view, const oid *name, size_t len,
                                struct vmh_mib_value *val);
/* The first instance strictly after name: its OID in out/out_len
 * (MAX_OID_LEN long) and its value. */
enum vmh_mib_status vmh_mib_next(const struct vmh_mib_view *view, const oid *name, size_t len,
                                 oid *out, size_t *out_len, struct vmh_mib_value *val);

/* DateAndTime, 11-octet form in UTC. */
void vmh_mib_date_and_time(int64_t real_ms, uint8_t out[11]);
/* At most 255 octets, cut at a UTF-8 character boundary. */
size_t vmh_mib_utf8_len(const char *s);

#endif
