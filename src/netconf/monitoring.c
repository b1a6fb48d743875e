/* SPDX-License-Identifier: GPL-3.0-or-later */
/* RFC 6022 ietf-netconf-monitoring: the netconf-state a get reads
 * (capabilities, datastores and their locks, schemas, sessions and
 * statistics, built from the server's own objects when asked for), and
 * get-schema, which replaces libnetconf2's (broken with libyang 2.1). */
#include "netconf/netconf_p.h"

#include "util/time.h"

#include <inttypes.h>
#include <libnetconf2/messages_server.h>
#include <libnetconf2/session_server.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- netconf-state --- */

static void vmh_mon_path(struct lyd_node *top, const char *fmt, const char *value, ...)
    __attribute__((format(printf, 2, 4)));

static void
vmh_mon_path(struct lyd_node *top, const char *fmt, const char *value, ...)
{
    char *path;
    va_list ap;

    va_start(ap, value);
    path = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    lyd_new_path(top, NULL, path, value, LYD_NEW_PATH_UPDATE, NULL);
    g_free(path);
}

struct lyd_node *
vmh_nc_monitoring_state(struct vmh_nc_server *srv)
{
    struct lyd_node *top = NULL;
    const char **caps = nc_server_get_cpblts(srv->ctx);
    const struct lys_module *mod;
    uint32_t idx = 0;
    char buf[64], t[40];
    GHashTableIter it;
    gpointer v;

    if (lyd_new_path(NULL, srv->ctx, "/ietf-netconf-monitoring:netconf-state", NULL, 0, &top))
        return NULL;
    /* the strings are references in the context's dictionary */
    for (size_t i = 0; caps && caps[i]; i++) {
        lyd_new_path(top, NULL, "capabilities/capability", caps[i], LYD_NEW_PATH_UPDATE, NULL);
        lydict_remove(srv->ctx, caps[i]);
    }
    free(caps);
    for (int d = 0; d < VMH_DS_COUNT; d++) {
        int64_t since = 0;
        uint32_t h = vmh_ds_lock_holder(srv->ds, (enum vmh_ds_id)d, &since);

        vmh_mon_path(top, "datastores/datastore[name='%s']", NULL, vmh_ds_name(d));
        if (h) {
            snprintf(buf, sizeof buf, "%u", h);
            vmh_mon_path(top, "datastores/datastore[name='%s']/locks/global-lock/locked-by-session",
                         buf, vmh_ds_name(d));
            vmh_time_format(since, t, sizeof t);
            vmh_mon_path(top, "datastores/datastore[name='%s']/locks/global-lock/locked-time", t,
                         vmh_ds_name(d));
        }
    }
    while ((mod = ly_ctx_get_module_iter(srv->ctx, &idx))) {
        const char *rev = mod->revision ? mod->revision : "";

        if (!mod->implemented)
            continue;
        vmh_mon_path(top, "schemas/schema[identifier='%s'][version='%s'][format='yang']/namespace",
                     mod->ns, mod->name, rev);
        vmh_mon_path(top, "schemas/schema[identifier='%s'][version='%s'][format='yang']/location",
                     "NETCONF", mod->name, rev);
    }
    pthread_mutex_lock(&srv->lock);
    g_hash_table_iter_init(&it, srv->sessions);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct vmh_nc_session *s = v;
        const char *host = nc_session_get_host(s->nc);

        /* RFC 6022 has no identity for a UNIX socket; the transport leaf is
         * mandatory, so local sessions show the NETCONF framing they use. */
        vmh_mon_path(top, "sessions/session[session-id='%u']/transport",
                     "ietf-netconf-monitoring:netconf-ssh", s->id);
        vmh_mon_path(top, "sessions/session[session-id='%u']/username", s->user, s->id);
        if (host)
            vmh_mon_path(top, "sessions/session[session-id='%u']/source-host", host, s->id);
        vmh_time_format(s->login_ms, t, sizeof t);
        vmh_mon_path(top, "sessions/session[session-id='%u']/login-time", t, s->id);
#define VMH_MON_CNT(leaf, val)                                                                     \
    snprintf(buf, sizeof buf, "%u", (unsigned)(val));                                              \
    vmh_mon_path(top, "sessions/session[session-id='%u']/" leaf, buf, s->id)
        VMH_MON_CNT("in-rpcs", s->in_rpcs);
        VMH_MON_CNT("in-bad-rpcs", s->in_bad_rpcs);
        VMH_MON_CNT("out-rpc-errors", s->out_rpc_errors);
        VMH_MON_CNT("out-notifications", s->out_notifications);
#undef VMH_MON_CNT
    }
    vmh_time_format(srv->start_ms, t, sizeof t);
    lyd_new_path(top, NULL, "statistics/netconf-start-time", t, 0, NULL);
#define VMH_STAT(leaf, val)                                                                        \
    snprintf(buf, sizeof buf, "%" PRIu64, (uint64_t)(val));                                        \
    lyd_new_path(top, NULL, "statistics/" leaf, buf, 0, NULL)
    VMH_STAT("in-bad-hellos", srv->in_bad_hellos);
    VMH_STAT("in-sessions", srv->in_sessions);
    VMH_STAT("dropped-sessions", srv->dropped_sessions);
    VMH_STAT("in-rpcs", srv->in_rpcs);
    VMH_STAT("in-bad-rpcs", srv->in_bad_rpcs);
    VMH_STAT("out-rpc-errors", srv->out_rpc_errors);
    VMH_STAT("out-notifications", srv->out_notifications);
#undef VMH_STAT
    pthread_mutex_unlock(&srv->lock);
    return top;
}

/* --- get-schema --- */

struct nc_server_reply *
vmh_nc_op_get_schema(struct vmh_nc_server *srv, struct vmh_nc_session *s, struct lyd_node *rpc)
{
    const char *id = vmh_tree_str(rpc, "identifier"), *ver = vmh_tree_str(rpc, "version");
    const char *fmt = vmh_tree_str(rpc, "format");
    const struct lys_module *mod;
    const struct lysp_submodule *sub = NULL;
    LYS_OUTFORMAT of = LYS_OUT_YANG;
    struct lyd_node *out = NULL;
    char *text = NULL;

    if (ver && !*ver)
        ver = NULL;
    if (fmt && strstr(fmt, "yin"))
        of = LYS_OUT_YIN;
    else if (fmt && !strstr(fmt, "yang"))
        return vmh_nc_err(srv->ctx, VMH_NC_TAG_INVALID_VALUE, VMH_NC_APPLICATION, NULL,
                          "format %s is not supported", fmt);
    mod = ver ? ly_ctx_get_module(srv->ctx, id, ver) : ly_ctx_get_module_latest(srv->ctx, id);
    if (!mod) {
        sub = ly_ctx_get_submodule(srv->ctx, id, ver);
        if (!sub)
            return vmh_nc_err(srv->ctx, VMH_NC_TAG_INVALID_VALUE, VMH_NC_APPLICATION, NULL,
                              "no schema %s%s%s", id, ver ? "@" : "", ver ? ver : "");
    }
    if (sub) {
        struct ly_out *o = NULL;

        if (ly_out_new_memory(&text, 0, &o) != LY_SUCCESS ||
            lys_print_submodule(o, sub, of, 0, 0) != LY_SUCCESS) {
            ly_out_free(o, NULL, 1);
            return vmh_nc_err(srv->ctx, VMH_NC_TAG_OPERATION_FAILED, VMH_NC_APPLICATION, NULL,
                              "cannot print schema %s", id);
        }
        ly_out_free(o, NULL, 0);
    } else if (lys_print_mem(&text, mod, of, 0) != LY_SUCCESS)
        return vmh_nc_err(srv->ctx, VMH_NC_TAG_OPERATION_FAILED, VMH_NC_APPLICATION, NULL,
                          "cannot print schema %s", id);
    if (lyd_dup_single(rpc, NULL, 0, &out) != LY_SUCCESS ||
        lyd_new_any(out, NULL, "data", text, 1, LYD_ANYDATA_STRING, 1, NULL) != LY_SUCCESS) {
        free(text);
        lyd_free_all(out);
        return vmh_nc_err(srv->ctx, VMH_NC_TAG_OPERATION_FAILED, VMH_NC_APPLICATION, NULL,
                          "cannot build the reply");
    }
    return nc_server_reply_data(out, NC_WD_EXPLICIT, NC_PARAMTYPE_FREE);
}
