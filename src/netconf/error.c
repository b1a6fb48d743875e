/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Every rpc-error the server answers is built here, from a description
 * (struct vmh_nc_error, protocol.h) that the rest fills in without
 * libnetconf2.  nc_err() takes different arguments per error-tag, and
 * too few corrupt the reply: this is the one place that calls it.  The
 * elements come in the order of RFC 6241's XSD: error-type, error-tag,
 * error-severity, error-app-tag, error-path, error-message, error-info. */
#include "netconf/netconf_p.h"

#include "util/log.h"

#include <libnetconf2/messages_server.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void
vmh_nc_error_set(struct vmh_nc_error *e, enum vmh_nc_tag tag, enum vmh_nc_etype type,
                 const char *path, const char *fmt, ...)
{
    va_list ap;

    e->tag = tag;
    e->type = type;
    g_free(e->path);
    e->path = g_strdup(path);
    g_free(e->message);
    va_start(ap, fmt);
    e->message = g_strdup_vprintf(fmt, ap);
    va_end(ap);
}

void
vmh_nc_error_clear(struct vmh_nc_error *e)
{
    if (!e)
        return;
    g_free(e->path);
    g_free(e->message);
    g_free(e->app_tag);
    g_free(e->element);
    g_free(e->attribute);
    g_free(e->ns);
    *e = (struct vmh_nc_error){0};
}

static NC_ERR
vmh_nc_tag_of(enum vmh_nc_tag tag)
{
    static const NC_ERR tags[] = {
        [VMH_NC_TAG_OPERATION_FAILED] = NC_ERR_OP_FAILED,
        [VMH_NC_TAG_IN_USE] = NC_ERR_IN_USE,
        [VMH_NC_TAG_INVALID_VALUE] = NC_ERR_INVALID_VALUE,
        [VMH_NC_TAG_TOO_BIG] = NC_ERR_TOO_BIG,
        [VMH_NC_TAG_MISSING_ATTRIBUTE] = NC_ERR_MISSING_ATTR,
        [VMH_NC_TAG_BAD_ATTRIBUTE] = NC_ERR_BAD_ATTR,
        [VMH_NC_TAG_UNKNOWN_ATTRIBUTE] = NC_ERR_UNKNOWN_ATTR,
        [VMH_NC_TAG_MISSING_ELEMENT] = NC_ERR_MISSING_ELEM,
        [VMH_NC_TAG_BAD_ELEMENT] = NC_ERR_BAD_ELEM,
        [VMH_NC_TAG_UNKNOWN_ELEMENT] = NC_ERR_UNKNOWN_ELEM,
        [VMH_NC_TAG_UNKNOWN_NAMESPACE] = NC_ERR_UNKNOWN_NS,
        [VMH_NC_TAG_ACCESS_DENIED] = NC_ERR_ACCESS_DENIED,
        [VMH_NC_TAG_LOCK_DENIED] = NC_ERR_LOCK_DENIED,
        [VMH_NC_TAG_RESOURCE_DENIED] = NC_ERR_RES_DENIED,
        [VMH_NC_TAG_ROLLBACK_FAILED] = NC_ERR_ROLLBACK_FAILED,
        [VMH_NC_TAG_DATA_EXISTS] = NC_ERR_DATA_EXISTS,
        [VMH_NC_TAG_DATA_MISSING] = NC_ERR_DATA_MISSING,
        [VMH_NC_TAG_OPERATION_NOT_SUPPORTED] = NC_ERR_OP_NOT_SUPPORTED,
        [VMH_NC_TAG_MALFORMED_MESSAGE] = NC_ERR_MALFORMED_MSG,
    };

    return (size_t)tag < G_N_ELEMENTS(tags) ? tags[tag] : NC_ERR_OP_FAILED;
}

static NC_ERR_TYPE
vmh_nc_type_of(enum vmh_nc_etype type)
{
    switch (type) {
    case VMH_NC_PROTOCOL:
        return NC_ERR_TYPE_PROT;
    case VMH_NC_RPC:
        return NC_ERR_TYPE_RPC;
    case VMH_NC_TRANSPORT:
        return NC_ERR_TYPE_TRAN;
    default:
        return NC_ERR_TYPE_APP;
    }
}

/* nc_err() with the arguments its tag reads, NULL when it refuses them
 * (a type RFC 6241 does not allow for the tag). */
static struct lyd_node *
vmh_nc_err_new(const struct ly_ctx *ctx, const struct vmh_nc_error *e)
{
    NC_ERR tag = vmh_nc_tag_of(e->tag);
    NC_ERR_TYPE type = vmh_nc_type_of(e->type);
    const char *elem = e->element ? e->element : "";

    switch (tag) {
    case NC_ERR_LOCK_DENIED:
        return nc_err(ctx, tag, e->sid);
    case NC_ERR_DATA_EXISTS:
    case NC_ERR_DATA_MISSING:
    case NC_ERR_MALFORMED_MSG:
        return nc_err(ctx, tag);
    case NC_ERR_MISSING_ELEM:
    case NC_ERR_BAD_ELEM:
    case NC_ERR_UNKNOWN_ELEM:
        return nc_err(ctx, tag, type, elem);
    case NC_ERR_MISSING_ATTR:
    case NC_ERR_BAD_ATTR:
    case NC_ERR_UNKNOWN_ATTR:
        return nc_err(ctx, tag, type, e->attribute ? e->attribute : "", elem);
    case NC_ERR_UNKNOWN_NS:
        return nc_err(ctx, tag, type, elem, e->ns ? e->ns : "");
    default:
        return nc_err(ctx, tag, type);
    }
}

struct nc_server_reply *
vmh_nc_error_reply(const struct ly_ctx *ctx, struct vmh_nc_error *e)
{
    struct lyd_node *err = vmh_nc_err_new(ctx, e), *info = NULL;
    char *msg;

    if (!err) {
        log_err("netconf",
                "libnetconf2 refused an rpc-error (tag %d, type %d): answering "
                "operation-failed",
                e->tag, e->type);
        err = nc_err(ctx, NC_ERR_OP_FAILED, NC_ERR_TYPE_APP);
    }
    if (!err) {
        vmh_nc_error_clear(e);
        return NULL; /* libnetconf2 answers operation-failed itself */
    }
    if (e->tag == VMH_NC_TAG_IN_USE && e->sid)
        nc_err_set_sid(err, e->sid);
    if (e->app_tag)
        nc_err_set_app_tag(err, e->app_tag);
    if (e->path)
        nc_err_set_path(err, e->path);
    /* set again when not given, to come after the path */
    msg = strdup(e->message ? e->message : nc_err_get_msg(err));
    if (msg)
        nc_err_set_msg(err, msg, "en");
    free(msg);
    lyd_find_sibling_opaq_next(lyd_child(err), "error-info", &info);
    if (info) {
        lyd_unlink_tree(info);
        lyd_insert_child(err, info);
    }
    vmh_nc_error_clear(e);
    return nc_server_reply_err(err);
}

struct nc_server_reply *
vmh_nc_err(const struct ly_ctx *ctx, enum vmh_nc_tag tag, enum vmh_nc_etype type, const char *path,
           const char *fmt, ...)
{
    struct vmh_nc_error e = {.tag = tag, .type = type, .path = g_strdup(path)};
    va_list ap;

    va_start(ap, fmt);
    e.message = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    return vmh_nc_error_reply(ctx, &e);
}

struct nc_server_reply *
vmh_nc_err_denied(const struct ly_ctx *ctx, const struct vmh_nc_session *s, char *why, char *path)
{
    struct nc_server_reply *r;

    log_info("netconf", "session %u ('%s'): access denied: %s", s->id, s->user, why);
    r = vmh_nc_err(ctx, VMH_NC_TAG_ACCESS_DENIED, VMH_NC_APPLICATION, path, "%s", why);
    g_free(why);
    free(path);
    return r;
}

struct nc_server_reply *
vmh_nc_err_txn(const struct ly_ctx *ctx, struct vmh_txn_error *err)
{
    static const enum vmh_nc_tag tags[] = {
        [VMH_TXN_INVALID] = VMH_NC_TAG_INVALID_VALUE,
        [VMH_TXN_IN_USE] = VMH_NC_TAG_IN_USE,
        [VMH_TXN_UNSUPPORTED] = VMH_NC_TAG_OPERATION_NOT_SUPPORTED,
        [VMH_TXN_FAILED] = VMH_NC_TAG_OPERATION_FAILED,
    };
    struct nc_server_reply *r =
        vmh_nc_err(ctx, tags[err->refusal], VMH_NC_APPLICATION, err->path, "%s", err->message);

    vmh_txn_error_clear(err);
    return r;
}

struct nc_server_reply *
vmh_nc_err_no_select(const struct ly_ctx *ctx, const char *msg)
{
    struct vmh_nc_error e = {.tag = VMH_NC_TAG_MISSING_ATTRIBUTE,
                             .type = VMH_NC_PROTOCOL,
                             .attribute = g_strdup("select"),
                             .element = g_strdup("filter"),
                             .message = g_strdup(msg)};

    return vmh_nc_error_reply(ctx, &e);
}
