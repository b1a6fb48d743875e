/* SPDX-License-Identifier: GPL-3.0-or-later */
/* RPCs whose input libyang refuses get the error RFC 6241 asks for.
 *
 * libnetconf2 2.0 parses every RPC against the schema before any callback
 * runs, and when libyang refuses it (a malformed UUID, an unknown enum or
 * identity, a non-numeric id, an element the RPC does not have) it answers
 * operation-failed itself, without an error-path
 * (nc_server_recv_rpc_io() in its session_server.c; there is no hook).
 * Our wrapper of lyd_parse_op() (compat.c) gives such a refused RPC a
 * second chance here when it is one our dispatcher answers (the domain
 * RPCs and the NETCONF operations of ops.c; not close-session, which
 * libnetconf2 carries out itself): each input element is parsed alone to
 * find the refused ones, the RPC is parsed without them, and they are put
 * back as opaque nodes (no schema) carrying libyang's reason.  The
 * dispatcher then answers invalid-value (or unknown-element) with the path
 * of the node and a message naming it. */
#include "netconf/netconf_p.h"

#include "config/config.h"

#include <libnetconf2/messages_server.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdlib.h>
#include <string.h>

#define VMH_NC_BASE_NS      "urn:ietf:params:xml:ns:netconf:base:1.0"
#define VMH_NC_REASON       "vmh-refused" /* the attribute holding libyang's reason */
#define VMH_NC_MAX_CHILDREN 32

static xmlNodePtr
vmh_elem(xmlNodePtr n)
{
    while (n && n->type != XML_ELEMENT_NODE)
        n = n->next;
    return n;
}

/* The operation element of an <rpc> document, NULL when it is not an RPC
 * our dispatcher answers. */
static xmlNodePtr
vmh_our_op(const struct ly_ctx *ctx, xmlDocPtr doc)
{
    xmlNodePtr rpc = doc ? xmlDocGetRootElement(doc) : NULL, op;
    const struct lys_module *mod;

    if (!rpc || strcmp((const char *)rpc->name, "rpc") || !rpc->ns ||
        strcmp((const char *)rpc->ns->href, VMH_NC_BASE_NS))
        return NULL;
    op = vmh_elem(rpc->children);
    if (!op || !op->ns ||
        !(mod = ly_ctx_get_module_implemented_ns(ctx, (const char *)op->ns->href)) ||
        !vmh_nc_ops_dispatched(lys_find_child(NULL, mod, (const char *)op->name, 0, LYS_RPC, 0)))
        return NULL;
    return op;
}

/* Parses doc with the real parser; the trees are freed unless wanted. */
static LY_ERR
vmh_parse_doc(const struct ly_ctx *ctx, vmh_parse_op_fn real, xmlDocPtr doc, struct lyd_node **tree,
              struct lyd_node **op)
{
    struct lyd_node *t = NULL, *o = NULL;
    struct ly_in *in = NULL;
    xmlChar *text = NULL;
    int len = 0;
    LY_ERR rc;

    xmlDocDumpMemory(doc, &text, &len);
    if (!text || ly_in_new_memory((const char *)text, &in) != LY_SUCCESS) {
        xmlFree(text);
        return LY_EMEM;
    }
    rc = real(ctx, NULL, in, LYD_XML, LYD_TYPE_RPC_NETCONF, &t, &o);
    ly_in_free(in, 0);
    xmlFree(text);
    if (rc == LY_SUCCESS && tree) {
        *tree = t;
        *op = o;
    } else {
        /* the envelope and the operation are two trees */
        lyd_free_all(t);
        lyd_free_all(o);
    }
    return rc;
}

/* Whether op's idx-th input element alone is refused; *reason then says why. */
static bool
vmh_child_refused(const struct ly_ctx *ctx, vmh_parse_op_fn real, xmlDocPtr doc, int idx,
                  char **reason)
{
    xmlDocPtr copy = xmlCopyDoc(doc, 1);
    xmlNodePtr op = vmh_our_op(ctx, copy), c, next;
    int i = 0;
    bool refused = false;

    if (!op) {
        xmlFreeDoc(copy);
        return false;
    }
    for (c = vmh_elem(op->children); c; c = next, i++) {
        next = vmh_elem(c->next);
        if (i != idx) {
            xmlUnlinkNode(c);
            xmlFreeNode(c);
        }
    }
    if (vmh_parse_doc(ctx, real, copy, NULL, NULL) != LY_SUCCESS) {
        refused = true;
        *reason = strdup(ly_errmsg(ctx) ? ly_errmsg(ctx) : "refused");
    }
    xmlFreeDoc(copy);
    return refused;
}

LY_ERR
vmh_nc_parse_refused_input(const struct ly_ctx *ctx, vmh_parse_op_fn real, const char *text,
                           struct lyd_node **tree, struct lyd_node **op)
{
    xmlDocPtr doc = xmlReadMemory(text, (int)strlen(text), NULL, NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNodePtr opel = vmh_our_op(ctx, doc), c;
    xmlNodePtr refused[VMH_NC_MAX_CHILDREN];
    char *reasons[VMH_NC_MAX_CHILDREN];
    uint32_t quiet = LY_LOSTORE_LAST;
    int n = 0, n_refused = 0, i = 0;
    LY_ERR rc = LY_EVALID;

    if (!opel) {
        xmlFreeDoc(doc);
        return LY_EVALID;
    }
    for (c = vmh_elem(opel->children); c; c = vmh_elem(c->next))
        n++;
    if (n > VMH_NC_MAX_CHILDREN) {
        xmlFreeDoc(doc);
        return LY_EVALID;
    }
    /* the parser already logged why it refused the RPC */
    ly_temp_log_options(&quiet);
    for (c = vmh_elem(opel->children); c; c = vmh_elem(c->next), i++) {
        char *why = NULL;

        if (vmh_child_refused(ctx, real, doc, i, &why)) {
            refused[n_refused] = c;
            reasons[n_refused++] = why;
        }
    }
    for (i = 0; i < n_refused; i++)
        xmlUnlinkNode(refused[i]);
    if (n_refused && vmh_parse_doc(ctx, real, doc, tree, op) == LY_SUCCESS) {
        rc = LY_SUCCESS;
        for (i = 0; i < n_refused; i++) {
            xmlChar *value = xmlNodeGetContent(refused[i]);
            struct lyd_node *node = NULL;

            c = refused[i];
            if (lyd_new_opaq2(*op, NULL, (const char *)c->name, (const char *)value,
                              c->ns ? (const char *)c->ns->prefix : NULL,
                              c->ns ? (const char *)c->ns->href : "", &node) != LY_SUCCESS ||
                lyd_new_attr2(node, NULL, VMH_NC_REASON, reasons[i], NULL) != LY_SUCCESS)
                rc = LY_EMEM;
            xmlFree(value);
        }
        if (rc != LY_SUCCESS) {
            lyd_free_all(*tree);
            lyd_free_all(*op);
            *tree = *op = NULL;
        }
    }
    ly_temp_log_options(NULL);
    for (i = 0; i < n_refused; i++) {
        xmlFreeNode(refused[i]);
        free(reasons[i]);
    }
    xmlFreeDoc(doc);
    return rc;
}

struct nc_server_reply *
vmh_nc_refused_input_reply(const struct lyd_node *rpc)
{
    const struct ly_ctx *ctx = LYD_CTX(rpc);
    const struct lyd_node *n;

    LY_LIST_FOR(lyd_child(rpc), n)
    {
        const struct lyd_node_opaq *o = (const struct lyd_node_opaq *)n;
        const struct lysc_node *schema = NULL;
        const struct lys_module *mod;
        const struct lyd_attr *a;
        const char *reason = NULL, *name;
        struct lyd_node *e;
        char *path, *msg;

        if (n->schema)
            continue;
        for (a = o->attr; a; a = a->next)
            if (!strcmp(a->name.name, VMH_NC_REASON))
                reason = a->value;
        if (!reason)
            continue;
        name = o->name.name;
        path = g_strdup_printf("/%s:%s", rpc->schema->module->name, rpc->schema->name);
        /* an input element may come from another module (with-defaults) */
        if ((mod = ly_ctx_get_module_implemented_ns(ctx, o->name.module_ns)))
            schema = lys_find_child(rpc->schema, mod, name, 0, 0, 0);
        if (!schema) {
            e = nc_err(ctx, NC_ERR_UNKNOWN_ELEM, NC_ERR_TYPE_PROT, name);
            msg = g_strdup_printf("%s has no input element %s", rpc->schema->name, name);
        } else {
            char *p = mod == rpc->schema->module
                          ? g_strdup_printf("%s/%s", path, name)
                          : g_strdup_printf("%s/%s:%s", path, mod->name, name);

            g_free(path);
            path = p;
            e = nc_err(ctx, NC_ERR_INVALID_VALUE, NC_ERR_TYPE_APP);
            msg = g_strdup_printf("invalid %s \"%.64s%s\": %s", name, o->value,
                                  strlen(o->value) > 64 ? "..." : "", reason);
        }
        nc_err_set_path(e, path);
        nc_err_set_msg(e, msg, "en");
        g_free(path);
        g_free(msg);
        return nc_server_reply_err(e);
    }
    return NULL;
}
