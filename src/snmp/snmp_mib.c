/* SPDX-License-Identifier: GPL-3.0-or-later */
/* NFV-VM-HEALTH-MIB over one snapshot: see snmp_mib.h.  Four subtrees, in
 * OID order: the system group, vmhHostTable, vmhVmTable, vmhStatistics. */
#include "snmp/snmp_mib.h"

#include <glib.h>
#include <math.h>
#include <string.h>
#include <time.h>

const oid vmh_mib_root[VMH_MIB_ROOT_LEN] = {VMH_MIB_ROOT};
const oid vmh_mib_objects[VMH_MIB_ROOT_LEN + 1] = {VMH_MIB_ROOT, 1};
const oid vmh_mib_system[VMH_MIB_SYSTEM_LEN] = {VMH_MIB_SYSTEM};

static const oid mib_host_entry[] = {VMH_MIB_ROOT, 1, 1, 1};
static const oid mib_vm_entry[] = {VMH_MIB_ROOT, 1, 2, 1};
static const oid mib_statistics[] = {VMH_MIB_ROOT, 1, 3};

#define MIB_TEMPERATURE_UNKNOWN (-2147483647L - 1)

/* --- values --- */

size_t
vmh_mib_utf8_len(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n <= 255)
        return n;
    n = 255;
    /* Back off continuation bytes so that no character is cut in two. */
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    return n;
}

void
vmh_mib_date_and_time(int64_t real_ms, uint8_t out[11])
{
    time_t t = (time_t)(real_ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    out[0] = (uint8_t)((tm.tm_year + 1900) >> 8);
    out[1] = (uint8_t)((tm.tm_year + 1900) & 0xff);
    out[2] = (uint8_t)(tm.tm_mon + 1);
    out[3] = (uint8_t)tm.tm_mday;
    out[4] = (uint8_t)tm.tm_hour;
    out[5] = (uint8_t)tm.tm_min;
    out[6] = (uint8_t)tm.tm_sec;
    out[7] = (uint8_t)((real_ms % 1000) / 100);
    out[8] = '+';
    out[9] = 0;
    out[10] = 0;
}

static void
mib_str(struct vmh_mib_value *val, const char *s)
{
    val->type = ASN_OCTET_STR;
    val->str = s ? s : "";
    val->len = vmh_mib_utf8_len(val->str);
}

static void
mib_int(struct vmh_mib_value *val, u_char type, long v)
{
    val->type = type;
    val->integer = v;
}

static long
mib_counter32(uint64_t v)
{
    return (long)(v & 0xffffffffu);
}

static long
mib_temperature(const struct vmh_host_snap *h)
{
    double best = -INFINITY;

    for (size_t i = 0; i < h->n_sensors; i++)
        if (h->sensors[i].value > best)
            best = h->sensors[i].value;
    if (!h->n_sensors || !isfinite(best))
        return MIB_TEMPERATURE_UNKNOWN;
    return lround(best * 10.0);
}

static bool
mib_system_value(const struct vmh_mib_view *view, unsigned id, struct vmh_mib_value *val)
{
    switch (id) {
    case 1:
        mib_str(val, view->sys_descr);
        return true;
    case 2:
        val->type = ASN_OBJECT_ID;
        memcpy(val->objid, vmh_mib_root, sizeof vmh_mib_root);
        val->objid_len = VMH_MIB_ROOT_LEN;
        return true;
    case 3:
        mib_int(val, ASN_TIMETICKS, (long)view->uptime_cs);
        return true;
    case 4:
    case 6:
        mib_str(val, "");
        return true;
    case 5:
        mib_str(val, view->sys_name);
        return true;
    case 7:
        /* applications (layer 7) and end-to-end (layer 4) */
        mib_int(val, ASN_INTEGER, 72);
        return true;
    }
    return false;
}

static bool
mib_stat_value(const struct vmh_mib_view *view, unsigned id, struct vmh_mib_value *val)
{
    struct vmh_stats s;

    vmh_snapshot_stats(view->snap, &s);
    const uint64_t v[] = {s.faults_detected,    s.notifications_sent,   s.traps_sent,
                          s.migrations_started, s.migrations_completed, s.migrations_failed};

    if (id < 1 || id > G_N_ELEMENTS(v))
        return false;
    mib_int(val, ASN_COUNTER, mib_counter32(v[id - 1]));
    return true;
}

static void
mib_host_value(const struct vmh_mib_view *view, size_t row, unsigned col, struct vmh_mib_value *val)
{
    const struct vmh_host_snap *h = view->hosts_by_index[row];

    switch (col) {
    case 2:
        mib_str(val, h->name);
        break;
    case 3:
        mib_str(val, h->uri);
        break;
    case 4:
        mib_int(val, ASN_INTEGER, (long)h->health + 1);
        break;
    case 5:
        mib_int(val, ASN_INTEGER, mib_temperature(h));
        break;
    case 6:
        mib_int(val, ASN_COUNTER, mib_counter32(h->mem_uncorrected));
        break;
    case 7:
        mib_int(val, ASN_COUNTER, mib_counter32(h->mem_corrected));
        break;
    case 8:
        mib_int(val, ASN_GAUGE, (long)h->vm_count);
        break;
    default:
        mib_int(val, ASN_INTEGER, h->connection == VMH_CONN_CONNECTED ? 1 : 2);
        break;
    }
}

static void
mib_vm_value(const struct vmh_mib_view *view, size_t row, unsigned col, struct vmh_mib_value *val)
{
    const struct vmh_vm_snap *vm = &view->snap->vms[row];

    switch (col) {
    case 2:
        mib_str(val, vm->name);
        break;
    case 3:
        mib_str(val, vm->host);
        break;
    case 4:
        mib_int(val, ASN_INTEGER, (long)vm->power);
        break;
    case 5:
        mib_int(val, ASN_INTEGER, (long)vm->health + 1);
        break;
    case 6:
        mib_int(val, ASN_INTEGER, (long)vm->cause);
        break;
    case 7:
        mib_str(val, vm->manager);
        break;
    case 8:
        mib_int(val, ASN_UNSIGNED, (long)vm->ppt);
        break;
    case 9:
        mib_int(val, ASN_INTEGER, (long)vm->migration + 1);
        break;
    default:
        mib_str(val, vm->target_host);
        break;
    }
}

/* --- rows: the index part of instance OIDs --- */

static size_t
mib_host_rows(const struct vmh_mib_view *view)
{
    return view->snap->n_hosts;
}

static size_t
mib_host_index(const struct vmh_mib_view *view, size_t row, oid *buf)
{
    buf[0] = view->hosts_by_index[row]->index;
    return 1;
}

static size_t
mib_vm_rows(const struct vmh_mib_view *view)
{
    return view->snap->n_vms;
}

/* A fixed-size string index: one sub-identifier per character, no length. */
static size_t
mib_vm_index(const struct vmh_mib_view *view, size_t row, oid *buf)
{
    const char *uuid = view->snap->vms[row].uuid;

    for (size_t i = 0; i < VMH_UUID_LEN; i++)
        buf[i] = (unsigned char)uuid[i];
    return VMH_UUID_LEN;
}

/* --- the subtrees --- */

struct mib_subtree {
    const oid *prefix;
    size_t prefix_len;
    bool table;
    unsigned first, last; /* scalar ids, or table columns */
    bool (*scalar)(const struct vmh_mib_view *, unsigned, struct vmh_mib_value *);
    size_t (*rows)(const struct vmh_mib_view *);
    size_t (*index)(const struct vmh_mib_view *, size_t, oid *);
    void (*cell)(const struct vmh_mib_view *, size_t, unsigned, struct vmh_mib_value *);
};

static const struct mib_subtree mib_subtrees[] = {
    {vmh_mib_system, VMH_MIB_SYSTEM_LEN, false, 1, 7, mib_system_value, NULL, NULL, NULL},
    {mib_host_entry, G_N_ELEMENTS(mib_host_entry), true, 2, 9, NULL, mib_host_rows, mib_host_index,
     mib_host_value},
    {mib_vm_entry, G_N_ELEMENTS(mib_vm_entry), true, 2, 10, NULL, mib_vm_rows, mib_vm_index,
     mib_vm_value},
    {mib_statistics, G_N_ELEMENTS(mib_statistics), false, 1, 6, mib_stat_value, NULL, NULL, NULL},
};

static int
mib_oid_cmp(const oid *a, size_t alen, const oid *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;

    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return alen < blen ? -1 : alen > blen;
}

/* The first row whose index is greater than (or, with equal, equal to) the
 * given index: binary search, rows being in index order. */
static size_t
mib_row_search(const struct vmh_mib_view *view, const struct mib_subtree *t, const oid *idx,
               size_t idx_len, bool equal)
{
    size_t lo = 0, hi = t->rows(view);
    oid buf[VMH_UUID_LEN];

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        size_t n = t->index(view, mid, buf);
        int c = mib_oid_cmp(buf, n, idx, idx_len);

        if (c < 0 || (c == 0 && !equal))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool
mib_subtree_enabled(const struct vmh_mib_view *view, const struct mib_subtree *t)
{
    return t->prefix != vmh_mib_system || view->system_group;
}

static enum vmh_mib_status
mib_make_instance(const struct vmh_mib_view *view, const struct mib_subtree *t, unsigned col,
                  size_t row, oid *out, size_t *out_len, struct vmh_mib_value *val)
{
    memcpy(out, t->prefix, t->prefix_len * sizeof(oid));
    out[t->prefix_len] = col;
    if (t->table) {
        *out_len = t->prefix_len + 1 + t->index(view, row, out + t->prefix_len + 1);
        t->cell(view, row, col, val);
        return VMH_MIB_FOUND;
    }
    out[t->prefix_len + 1] = 0;
    *out_len = t->prefix_len + 2;
    return t->scalar(view, col, val) ? VMH_MIB_FOUND : VMH_MIB_END;
}

/* The first instance of t after name, name being inside t or before it. */
static enum vmh_mib_status
mib_subtree_next(const struct vmh_mib_view *view, const struct mib_subtree *t, const oid *name,
                 size_t len, oid *out, size_t *out_len, struct vmh_mib_value *val)
{
    size_t n = t->prefix_len, rows = t->table ? t->rows(view) : 1;
    int c = mib_oid_cmp(name, len < n ? len : n, t->prefix, n);
    unsigned col;
    size_t row = 0;

    if (c > 0 || !rows)
        return VMH_MIB_END;
    if (c < 0 || len <= n || name[n] < t->first)
        return mib_make_instance(view, t, t->first, 0, out, out_len, val);
    if (name[n] > t->last)
        return VMH_MIB_END;
    col = (unsigned)name[n];
    if (len > n + 1) {
        if (t->table)
            row = mib_row_search(view, t, name + n + 1, len - n - 1, false);
        else
            row = 1; /* name is at or after col.0 */
        if (row >= rows) {
            if (col == t->last)
                return VMH_MIB_END;
            col++;
            row = 0;
        }
    }
    return mib_make_instance(view, t, col, row, out, out_len, val);
}

enum vmh_mib_status
vmh_mib_next(const struct vmh_mib_view *view, const oid *name, size_t len, oid *out,
             size_t *out_len, struct vmh_mib_value *val)
{
    for (size_t i = 0; i < G_N_ELEMENTS(mib_subtrees); i++) {
        const struct mib_subtree *t = &mib_subtrees[i];

        if (!mib_subtree_enabled(view, t))
            continue;
        if (mib_subtree_next(view, t, name, len, out, out_len, val) == VMH_MIB_FOUND)
            return VMH_MIB_FOUND;
    }
    return VMH_MIB_END;
}

enum vmh_mib_status
vmh_mib_get(const struct vmh_mib_view *view, const oid *name, size_t len, struct vmh_mib_value *val)
{
    for (size_t i = 0; i < G_N_ELEMENTS(mib_subtrees); i++) {
        const struct mib_subtree *t = &mib_subtrees[i];
        size_t n = t->prefix_len, row;

        if (!mib_subtree_enabled(view, t) || len <= n || mib_oid_cmp(name, n, t->prefix, n))
            continue;
        if (name[n] < t->first || name[n] > t->last)
            return VMH_MIB_NO_SUCH_OBJECT;
        if (!t->table) {
            if (len != n + 2 || name[n + 1] != 0)
                return VMH_MIB_NO_SUCH_INSTANCE;
            return t->scalar(view, (unsigned)name[n], val) ? VMH_MIB_FOUND : VMH_MIB_NO_SUCH_OBJECT;
        }
        row = mib_row_search(view, t, name + n + 1, len - n - 1, true);
        if (row < t->rows(view)) {
            oid buf[VMH_UUID_LEN];
            size_t il = t->index(view, row, buf);

            if (!mib_oid_cmp(buf, il, name + n + 1, len - n - 1)) {
                t->cell(view, row, (unsigned)name[n], val);
                return VMH_MIB_FOUND;
            }
        }
        return VMH_MIB_NO_SUCH_INSTANCE;
    }
    return VMH_MIB_NO_SUCH_OBJECT;
}

/* --- the view --- */

static int
mib_host_index_cmp(const void *a, const void *b)
{
    uint32_t x = (*(const struct vmh_host_snap *const *)a)->index;
    uint32_t y = (*(const struct vmh_host_snap *const *)b)->index;

    return x < y ? -1 : x > y;
}

void
vmh_mib_view_init(struct vmh_mib_view *view, struct vmh_snapshot *snap)
{
    memset(view, 0, sizeof *view);
    view->snap = snap;
    view->hosts_by_index = g_new0(const struct vmh_host_snap *, snap->n_hosts + 1);
    for (size_t i = 0; i < snap->n_hosts; i++)
        view->hosts_by_index[i] = &snap->hosts[i];
    qsort(view->hosts_by_index, snap->n_hosts, sizeof *view->hosts_by_index, mib_host_index_cmp);
    view->sys_descr = "";
    view->sys_name = "";
}

void
vmh_mib_view_clear(struct vmh_mib_view *view)
{
    g_free(view->hosts_by_index);
    vmh_snapshot_unref(view->snap);
    memset(view, 0, sizeof *view);
}
