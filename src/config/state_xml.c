/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The operational view printed as XML with its big lists (vm, fault) and
 * its statistics written straight from a snapshot.
 *
 * Building them as libyang nodes costs ~15 nodes per VM (a full get of
 * 10 000 VMs: ~40 ms to build, ~30 ms to print, ~15 ms to free, most of the
 * server's time).  Here they are written as the text libyang's XML printer
 * would make of the nodes vmh_state_build() creates, byte for byte (the
 * unit test compares both for every with-defaults mode), and spliced into
 * the printed vm-health container.  The rest of the tree (configuration,
 * host state, other modules) is printed by libyang as before. */
#include "config/config.h"

#include "util/log.h"

#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { VMH_XML_VM_LEAVES = 10, VMH_XML_MIG_LEAVES = 4, VMH_XML_FAULT_LEAVES = 9 };

/* In schema order, which is the order libyang keeps and prints them in. */
static const char *const vmh_xml_vm[VMH_XML_VM_LEAVES] = {"uuid",
                                                          "name",
                                                          "host",
                                                          "power-state",
                                                          "health",
                                                          "vnf-manager",
                                                          "preprocessing-time",
                                                          "preprocessing-time-source",
                                                          "memory",
                                                          "vcpus"};
static const char *const vmh_xml_mig[VMH_XML_MIG_LEAVES] = {"state", "deadline", "target-host",
                                                            "last-error"};
static const char *const vmh_xml_fault[VMH_XML_FAULT_LEAVES] = {
    "id", "host", "vm", "cause", "severity", "detected-at", "cleared-at", "value", "description"};
static const char *const vmh_xml_stats[] = {"faults-detected",      "notifications-sent",
                                            "traps-sent",           "migrations-started",
                                            "migrations-completed", "migrations-failed"};

struct vmh_xml {
    GString *s;
    uint32_t opts;
    const struct lys_module *mod, *wd; /* wd: ietf-netconf-with-defaults, may be NULL */
    /* the YANG defaults (canonical) of the leaves above, NULL for none */
    const char *vm_dflt[VMH_XML_VM_LEAVES], *mig_dflt[VMH_XML_MIG_LEAVES],
        *fault_dflt[VMH_XML_FAULT_LEAVES];
};

static void
vmh_xml_defaults(const struct lys_module *mod, const struct lysc_node *parent,
                 const char *const *names, size_t n, const char **dflt)
{
    for (size_t i = 0; i < n; i++) {
        const struct lysc_node *leaf = lys_find_child(parent, mod, names[i], 0, LYS_LEAF, 0);

        dflt[i] = NULL;
        if (leaf && ((const struct lysc_node_leaf *)leaf)->dflt)
            dflt[i] = ((const struct lysc_node_leaf *)leaf)->dflt->_canonical;
    }
}

static int
vmh_xml_init(struct vmh_xml *x, const struct ly_ctx *ctx, uint32_t opts, GString *s)
{
    const struct lysc_node *vm, *mig, *fault;

    memset(x, 0, sizeof *x);
    x->s = s;
    x->opts = opts;
    x->mod = ly_ctx_get_module_implemented(ctx, VMH_MOD);
    x->wd = ly_ctx_get_module_latest(ctx, "ietf-netconf-with-defaults");
    vm = lys_find_path(ctx, NULL, "/" VMH_MOD ":vm-health/vm", 0);
    mig = vm ? lys_find_child(vm, x->mod, "migration", 0, LYS_CONTAINER, 0) : NULL;
    fault = lys_find_path(ctx, NULL, "/" VMH_MOD ":vm-health/fault", 0);
    if (!x->mod || !mig || !fault)
        return -1;
    vmh_xml_defaults(x->mod, vm, vmh_xml_vm, VMH_XML_VM_LEAVES, x->vm_dflt);
    vmh_xml_defaults(x->mod, mig, vmh_xml_mig, VMH_XML_MIG_LEAVES, x->mig_dflt);
    vmh_xml_defaults(x->mod, fault, vmh_xml_fault, VMH_XML_FAULT_LEAVES, x->fault_dflt);
    return 0;
}

/* Element text as lyxml_dump_text() escapes it. */
static void
vmh_xml_text(GString *s, const char *t)
{
    const char *p;

    for (p = t; *p; p++) {
        const char *esc = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : NULL;

        if (esc) {
            g_string_append_len(s, t, p - t);
            g_string_append(s, esc);
            t = p + 1;
        }
    }
    g_string_append_len(s, t, p - t);
}

static bool
vmh_xml_should_print(const struct vmh_xml *x, const char *value, const char *dflt)
{
    return value && !((x->opts & LYD_PRINT_WD_TRIM) && dflt && !strcmp(value, dflt));
}

/* A leaf as xml_print_term() prints it; prefix: the identityref's module
 * prefix, whose namespace is declared on the element. */
static void
vmh_xml_leaf(struct vmh_xml *x, const char *name, const char *value, const char *dflt,
             const char *prefix)
{
    GString *s = x->s;

    if (!vmh_xml_should_print(x, value, dflt))
        return;
    g_string_append_c(s, '<');
    g_string_append(s, name);
    if ((x->opts & LYD_PRINT_WD_ALL_TAG) && dflt && x->wd && !strcmp(value, dflt))
        g_string_append_printf(s, " xmlns:%s=\"%s\" %s:default=\"true\"", x->wd->prefix, x->wd->ns,
                               x->wd->prefix);
    if (prefix)
        g_string_append_printf(s, " xmlns:%s=\"%s\"", x->mod->prefix, x->mod->ns);
    if (!*value) {
        g_string_append(s, "/>");
        return;
    }
    g_string_append_c(s, '>');
    if (prefix) {
        g_string_append(s, prefix);
        g_string_append_c(s, ':');
    }
    vmh_xml_text(s, value);
    g_string_append(s, "</");
    g_string_append(s, name);
    g_string_append_c(s, '>');
}

static void
vmh_xml_u64(char buf[24], uint64_t v)
{
    snprintf(buf, 24, "%" PRIu64, v);
}

/* yang:date-and-time as libyang prints the value vmh_time_format() gives. */
static char *
vmh_xml_time(int64_t real_ms)
{
    char frac[8], *out = NULL;

    if (!real_ms)
        return NULL;
    snprintf(frac, sizeof frac, "%03d", (int)(real_ms % 1000));
    if (ly_time_time2str((time_t)(real_ms / 1000), frac, &out) != LY_SUCCESS)
        return NULL;
    return out;
}

static void
vmh_xml_vm_entry(struct vmh_xml *x, const struct vmh_vm_snap *v)
{
    char ppt[24], mem[24], cpus[24], *deadline = vmh_xml_time(v->deadline_ms);
    const char *val[VMH_XML_VM_LEAVES] = {v->uuid,
                                          v->name,
                                          v->host,
                                          vmh_power_state_str(v->power),
                                          vmh_health_str(v->health),
                                          v->manager,
                                          ppt,
                                          vmh_ppt_source_str(v->ppt_source),
                                          mem,
                                          cpus};
    const char *mig[VMH_XML_MIG_LEAVES] = {vmh_migration_state_str(v->migration), deadline,
                                           v->target_host, v->migration_error};
    size_t printed = 0;

    vmh_xml_u64(ppt, v->ppt);
    vmh_xml_u64(mem, v->memory_kib);
    vmh_xml_u64(cpus, v->vcpus);
    g_string_append(x->s, "<vm>");
    for (size_t i = 0; i < VMH_XML_VM_LEAVES; i++)
        vmh_xml_leaf(x, vmh_xml_vm[i], val[i], x->vm_dflt[i], NULL);
    /* a container none of whose children is printed is <migration/> */
    for (size_t i = 0; i < VMH_XML_MIG_LEAVES; i++)
        printed += vmh_xml_should_print(x, mig[i], x->mig_dflt[i]);
    if (!printed) {
        g_string_append(x->s, "<migration/>");
    } else {
        g_string_append(x->s, "<migration>");
        for (size_t i = 0; i < VMH_XML_MIG_LEAVES; i++)
            vmh_xml_leaf(x, vmh_xml_mig[i], mig[i], x->mig_dflt[i], NULL);
        g_string_append(x->s, "</migration>");
    }
    g_string_append(x->s, "</vm>");
    free(deadline);
}

static void
vmh_xml_fault_entry(struct vmh_xml *x, const struct vmh_fault_snap *f)
{
    char id[24], *detected = vmh_xml_time(f->detected_ms), *cleared = vmh_xml_time(f->cleared_ms);
    const char *val[VMH_XML_FAULT_LEAVES] = {
        id,       f->host, f->vm_uuid, vmh_cause_str(f->cause), vmh_severity_str(f->severity),
        detected, cleared, f->value,   f->description};

    vmh_xml_u64(id, f->id);
    g_string_append(x->s, "<fault>");
    for (size_t i = 0; i < VMH_XML_FAULT_LEAVES; i++)
        vmh_xml_leaf(x, vmh_xml_fault[i], val[i], x->fault_dflt[i],
                     !strcmp(vmh_xml_fault[i], "cause") ? x->mod->prefix : NULL);
    g_string_append(x->s, "</fault>");
    free(detected);
    free(cleared);
}

static void
vmh_xml_statistics(struct vmh_xml *x, const struct vmh_stats *st)
{
    const uint64_t val[] = {st->faults_detected,      st->notifications_sent,
                            st->traps_sent,           st->migrations_started,
                            st->migrations_completed, st->migrations_failed};
    char buf[24];

    g_string_append(x->s, "<statistics>");
    for (size_t i = 0; i < G_N_ELEMENTS(val); i++) {
        vmh_xml_u64(buf, val[i]);
        vmh_xml_leaf(x, vmh_xml_stats[i], buf, NULL, NULL);
    }
    g_string_append(x->s, "</statistics>");
}

/* One node printed by libyang.  Into a FILE: libyang's memory printer
 * allocates for every fragment and reallocates its buffer each time. */
static int
vmh_xml_print_node(const struct lyd_node *n, uint32_t opts, char **text, size_t *len)
{
    FILE *f = open_memstream(text, len);
    LY_ERR rc;

    if (!f)
        return -1;
    rc = lyd_print_file(f, n, LYD_XML, opts);
    if (fclose(f) != 0 || rc != LY_SUCCESS) {
        free(*text);
        *text = NULL;
        return -1;
    }
    return 0;
}

/* vm-health printed by libyang (without the lists) with the lists added
 * at its end, where they are in schema order. */
static int
vmh_xml_vm_health(const struct lyd_node *vh, const struct vmh_xml *lists, GString *out)
{
    const char *tag = "</vm-health>";
    char *text = NULL;
    size_t len = 0;

    if (vh && vmh_xml_print_node(vh, lists->opts, &text, &len) < 0)
        return -1;
    if (len >= strlen(tag) && !strcmp(text + len - strlen(tag), tag)) {
        g_string_append_len(out, text, len - strlen(tag));
    } else if (len >= 2 && !strcmp(text + len - 2, "/>")) {
        g_string_append_len(out, text, len - 2); /* it had no children */
        g_string_append_c(out, '>');
    } else {
        /* not printed: only defaults in it, which this mode leaves out */
        g_string_append_printf(out, "<vm-health xmlns=\"%s\">", lists->mod->ns);
    }
    free(text);
    g_string_append_len(out, lists->s->str, lists->s->len);
    g_string_append(out, tag);
    return 0;
}

int
vmh_state_print(const struct ly_ctx *ctx, const struct lyd_node *data,
                const struct vmh_snapshot *snap, uint32_t opts, char **out)
{
    GString *text = g_string_sized_new(4096), *lists;
    struct vmh_stats stats;
    struct vmh_xml x;
    const struct lyd_node *n;
    bool vh_done = false;
    int rc = 0;

    *out = NULL;
    opts = (opts | LYD_PRINT_SHRINK) & ~LYD_PRINT_WITHSIBLINGS;
    /* ~350 bytes per VM */
    lists = g_string_sized_new(4096 + 400 * (snap->n_vms + snap->n_faults));
    if (vmh_xml_init(&x, ctx, opts, lists) < 0) {
        log_err("config", "the schema has no vm or fault list");
        g_string_free(lists, TRUE);
        g_string_free(text, TRUE);
        return -1;
    }
    for (size_t i = 0; i < snap->n_vms; i++)
        vmh_xml_vm_entry(&x, &snap->vms[i]);
    for (size_t i = 0; i < snap->n_faults; i++)
        vmh_xml_fault_entry(&x, &snap->faults[i]);
    vmh_snapshot_stats(snap, &stats);
    vmh_xml_statistics(&x, &stats);

    for (n = lyd_first_sibling(data); n && rc == 0; n = n->next) {
        char *t = NULL;
        size_t len = 0;

        if (n->schema && n->schema->module == x.mod && !strcmp(n->schema->name, "vm-health")) {
            rc = vmh_xml_vm_health(n, &x, text);
            vh_done = true;
        } else if ((rc = vmh_xml_print_node(n, opts, &t, &len)) == 0) {
            g_string_append_len(text, t, len);
        }
        free(t);
    }
    if (!vh_done && rc == 0)
        rc = vmh_xml_vm_health(NULL, &x, text);
    g_string_free(lists, TRUE);
    if (rc < 0) {
        log_err("config", "cannot print the operational data: %s", ly_errmsg(ctx));
        g_string_free(text, TRUE);
        return -1;
    }
    *out = g_string_free(text, FALSE);
    return 0;
}
