/* SPDX-License-Identifier: GPL-3.0-or-later */
/* An <rpc> message parsed as the server needs it.  libnetconf2 2.0 reads a
 * message and parses it with libyang's lyd_parse_op() before any callback
 * runs, and answers a refusal itself (nc_server_recv_rpc_io() in its
 * session_server.c has no hook); compat.c routes that call here.
 *
 * - A message that is not well-formed UTF-8 XML (RFC 6241 section 3) is
 *   refused, checked with libxml2: libyang's parser is not strict, and what
 *   it let through broke the server: a message without any element (only
 *   whitespace, a comment or an XML declaration) gave no operation, which
 *   libnetconf2 2.0.24 dereferences (a crash); a control character or
 *   invalid UTF-8 was quoted by libyang's error message into the reply,
 *   and duplicate attributes of <rpc> were copied into it, so that the
 *   reply was no longer XML.
 * - So is one well-formed case libyang 2.1.30 crashes on: an element in no
 *   namespace (xmlns="", the subtree filter's namespace wildcard) followed
 *   by a sibling of the same name (see vmh_nc_unqualified_twin).
 *   Refused, libnetconf2 answers malformed-message.
 * - ncclient (and other RFC 5277 clients following its XSD literally) send
 *   create-subscription's <filter> in the NETCONF base namespace, while
 *   the notifications YANG module that libyang parses against defines it
 *   in its own: such a filter is moved into the notifications namespace
 *   before parsing.
 * - An RPC our dispatcher answers (the domain RPCs and the NETCONF
 *   operations of ops.c; not close-session, which libnetconf2 carries out
 *   itself) whose input libyang refuses (a malformed UUID, an unknown enum
 *   or identity, a non-numeric id, an element the RPC does not have) would
 *   get operation-failed without an error-path from libnetconf2.  It gets
 *   a second chance: each input element is parsed alone to find the
 *   refused ones, the RPC is parsed without them, and they are put back as
 *   opaque nodes (no schema) carrying libyang's reason.  The dispatcher
 *   then answers invalid-value (or unknown-element) with the path of the
 *   node and a message naming it (vmh_nc_refused_input_reply). */
#include "netconf/netconf_p.h"

#include "config/config.h"

#include <libnetconf2/messages_server.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdlib.h>
#include <string.h>

#define VMH_NC_REASON       "vmh-refused" /* the attribute holding libyang's reason */
#define VMH_NC_MAX_CHILDREN 32

/* libyang's parser on text, quietly or not. */
static LY_ERR
vmh_ly_parse_text(const struct ly_ctx *ctx, const char *text, bool quiet, struct lyd_node **tree,
                  struct lyd_node **op)
{
    struct ly_in *in = NULL;
    uint32_t lo = LY_LOSTORE_LAST;
    LY_ERR rc;

    if (ly_in_new_memory(text, &in) != LY_SUCCESS)
        return LY_EMEM;
    if (quiet)
        ly_temp_log_options(&lo);
    rc = vmh_nc_ly_parse_op(ctx, NULL, in, LYD_XML, LYD_TYPE_RPC_NETCONF, tree, op);
    if (quiet)
        ly_temp_log_options(NULL);
    ly_in_free(in, 0);
    return rc;
}

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

/* Parses doc with libyang's parser; the trees are freed unless wanted. */
static LY_ERR
vmh_parse_doc(const struct ly_ctx *ctx, xmlDocPtr doc, struct lyd_node **tree, struct lyd_node **op)
{
    struct lyd_node *t = NULL, *o = NULL;
    xmlChar *text = NULL;
    int len = 0;
    LY_ERR rc;

    xmlDocDumpMemory(doc, &text, &len);
    if (!text)
        return LY_EMEM;
    rc = vmh_ly_parse_text(ctx, (const char *)text, false, &t, &o);
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
vmh_child_refused(const struct ly_ctx *ctx, xmlDocPtr doc, int idx, char **reason)
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
    if (vmh_parse_doc(ctx, copy, NULL, NULL) != LY_SUCCESS) {
        refused = true;
        *reason = strdup(ly_errmsg(ctx) ? ly_errmsg(ctx) : "refused");
    }
    xmlFreeDoc(copy);
    return refused;
}

/* An RPC (text) of ours that libyang refused, parsed without its refused
 * input elements, which are added to *op as opaque nodes with the reason;
 * LY_SUCCESS, or an error and nothing set. */
static LY_ERR
vmh_parse_refused_input(const struct ly_ctx *ctx, const char *text, struct lyd_node **tree,
                        struct lyd_node **op)
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

        if (vmh_child_refused(ctx, doc, i, &why)) {
            refused[n_refused] = c;
            reasons[n_refused++] = why;
        }
    }
    for (i = 0; i < n_refused; i++)
        xmlUnlinkNode(refused[i]);
    if (n_refused && vmh_parse_doc(ctx, doc, tree, op) == LY_SUCCESS) {
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

/* --- the parser --- */

static bool
vmh_is(const xmlNode *n, const char *name, const char *ns)
{
    return n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name) && n->ns &&
           !strcmp((const char *)n->ns->href, ns);
}

/* The message with the filter moved, or NULL when there is nothing to do. */
static xmlChar *
vmh_nc_fix_subscription(xmlDocPtr doc)
{
    xmlNodePtr rpc = xmlDocGetRootElement(doc), op, f;
    xmlChar *out = NULL;
    int len = 0;
    bool changed = false;

    for (op = rpc ? rpc->children : NULL; op; op = op->next) {
        if (!vmh_is(op, "create-subscription", VMH_NC_NOTIF_NS))
            continue;
        for (f = op->children; f; f = f->next) {
            if (vmh_is(f, "filter", VMH_NC_BASE_NS)) {
                /* a prefixed declaration: the filter's content keeps the
                 * default namespace it had */
                xmlSetNs(f, xmlNewNs(f, BAD_CAST VMH_NC_NOTIF_NS, BAD_CAST "vmhncn"));
                changed = true;
            }
        }
    }
    if (changed)
        xmlDocDumpMemory(doc, &out, &len);
    return out;
}

/* libyang 2.1.30 (parser_xml.c, lydxml_get_hints_opaq) looks for an earlier
 * opaque sibling of an element's name and compares their namespaces with
 * strcmp(), which is NULL for an element in no namespace: two such
 * siblings, in any anydata (a filter, a config), crashed the server.
 * Whether first, its siblings or their descendants hold that pattern. */
static bool
vmh_nc_unqualified_twin(const xmlNode *first)
{
    GHashTable *unqualified = NULL; /* names of the siblings so far in no namespace */
    bool found = false;

    for (const xmlNode *n = first; n && !found; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (unqualified && g_hash_table_contains(unqualified, n->name)) {
            found = true;
        } else if (!n->ns || !n->ns->href || !*n->ns->href) {
            if (!unqualified)
                unqualified = g_hash_table_new(g_str_hash, g_str_equal);
            g_hash_table_add(unqualified, (gpointer)n->name);
        }
        found = found || vmh_nc_unqualified_twin(n->children);
    }
    if (unqualified)
        g_hash_table_destroy(unqualified);
    return found;
}

LY_ERR
vmh_nc_rpc_parse(const struct ly_ctx *ctx, const char *text, struct lyd_node **envp,
                 struct lyd_node **op)
{
    /* UTF-8 whatever the declaration says; never from the network */
    xmlDocPtr doc = xmlReadMemory(text, (int)strlen(text), NULL, "UTF-8",
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlChar *fixed = NULL;
    LY_ERR rc;

    *envp = *op = NULL;
    if (doc && vmh_nc_unqualified_twin(xmlDocGetRootElement(doc))) {
        xmlFreeDoc(doc);
        doc = NULL;
    }
    if (!doc)
        return LY_EVALID;
    fixed = vmh_nc_fix_subscription(doc);
    xmlFreeDoc(doc);
    if (fixed)
        text = (const char *)fixed;
    rc = vmh_ly_parse_text(ctx, text, false, envp, op);
    if (rc != LY_SUCCESS) {
        /* the envelope and the operation are two trees */
        lyd_free_all(*envp);
        lyd_free_all(*op);
        *envp = *op = NULL;
        if (vmh_parse_refused_input(ctx, text, envp, op) == LY_SUCCESS)
            rc = LY_SUCCESS;
        else /* reproduced, quietly (it was logged), for libyang's error message */
            rc = vmh_ly_parse_text(ctx, text, true, envp, op);
    }
    xmlFree(fixed);
    if (rc == LY_SUCCESS && !*op) {
        lyd_free_all(*envp);
        *envp = NULL;
        rc = LY_EVALID;
    }
    return rc;
}

/* --- the reply to refused input --- */

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
        struct vmh_nc_error e = {0};
        char *path;

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
            vmh_nc_error_set(&e, VMH_NC_TAG_UNKNOWN_ELEMENT, VMH_NC_PROTOCOL, path,
                             "%s has no input element %s", rpc->schema->name, name);
            e.element = g_strdup(name);
        } else {
            char *p = mod == rpc->schema->module
                          ? g_strdup_printf("%s/%s", path, name)
                          : g_strdup_printf("%s/%s:%s", path, mod->name, name);

            vmh_nc_error_set(&e, VMH_NC_TAG_INVALID_VALUE, VMH_NC_APPLICATION, p,
                             "invalid %s \"%.64s%s\": %s", name, o->value,
                             strlen(o->value) > 64 ? "..." : "", reason);
            g_free(p);
        }
        g_free(path);
        return vmh_nc_error_reply(ctx, &e);
    }
    return NULL;
}
