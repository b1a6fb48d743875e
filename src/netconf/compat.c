/* SPDX-License-Identifier: GPL-3.0-or-later */
/* A wrapper of libyang's lyd_parse_op() (it takes the place of the
 * library's for the whole program and calls it) for the RPCs libnetconf2
 * parses before any callback runs, which it answers itself when libyang
 * refuses them.
 * ncclient (and other RFC 5277 clients following its XSD literally) send
 * create-subscription's <filter> in the NETCONF base namespace, while the
 * notifications YANG module that libyang parses against defines it in its
 * own: such a filter is moved into the notifications namespace before
 * parsing.
 * An RPC of ours refused for its input gets a second chance in
 * rpc_input.c, so that the dispatcher can answer invalid-value.
 * It also refuses a message that is not well-formed UTF-8 XML (RFC 6241
 * section 3), checked with libxml2: libyang's parser is not strict, and
 * what it let through broke the server: a message without any element
 * (only whitespace, a comment or an XML declaration) gave no operation,
 * which libnetconf2 2.0.24 dereferences (a crash); a control character or
 * invalid UTF-8 was quoted by libyang's error message into the reply, and
 * duplicate attributes of <rpc> were copied into it, so that the reply was
 * no longer XML.  Last, it refuses one well-formed case libyang 2.1.30
 * crashes on: an element in no namespace (xmlns="", the subtree filter's
 * namespace wildcard) followed by a sibling of the same name (see
 * vmh_nc_unqualified_twin).  Refused, libnetconf2 answers
 * malformed-message. */
#include "netconf/netconf_p.h"

#include "config/config.h"

#include <dlfcn.h>
#include <glib.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libyang/libyang.h>
#include <string.h>

#define VMH_NC_BASE_NS  "urn:ietf:params:xml:ns:netconf:base:1.0"
#define VMH_NC_NOTIF_NS "urn:ietf:params:xml:ns:netconf:notification:1.0"

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

/* The real parser refused text: an RPC of ours may parse without its refused
 * input (rpc_input.c); otherwise the refusal is reproduced, quietly (it was
 * logged), so that the caller sees the trees and error it would have. */
static LY_ERR
vmh_nc_refused(const struct ly_ctx *ctx, vmh_parse_op_fn real, const char *text, LY_ERR rc,
               struct lyd_node **tree, struct lyd_node **op)
{
    struct ly_in *in = NULL;
    uint32_t quiet = LY_LOSTORE_LAST;

    lyd_free_all(*tree); /* the envelope; the operation is a tree of its own */
    lyd_free_all(*op);
    *tree = *op = NULL;
    if (vmh_nc_parse_refused_input(ctx, real, text, tree, op) == LY_SUCCESS)
        return LY_SUCCESS;
    if (ly_in_new_memory(text, &in) != LY_SUCCESS)
        return rc;
    ly_temp_log_options(&quiet);
    rc = real(ctx, NULL, in, LYD_XML, LYD_TYPE_RPC_NETCONF, tree, op);
    ly_temp_log_options(NULL);
    ly_in_free(in, 0);
    return rc;
}

LY_ERR
lyd_parse_op(const struct ly_ctx *ctx, struct lyd_node *parent, struct ly_in *in, LYD_FORMAT format,
             enum lyd_type data_type, struct lyd_node **tree, struct lyd_node **op)
{
    static vmh_parse_op_fn real;
    struct ly_in *fixed_in = NULL;
    xmlChar *fixed = NULL;
    const char *text = NULL;
    LY_ERR rc;

    if (!real)
        real = (vmh_parse_op_fn)dlsym(RTLD_NEXT, "lyd_parse_op");
    if (data_type == LYD_TYPE_RPC_NETCONF && format == LYD_XML && ly_in_type(in) == LY_IN_MEMORY) {
        text = ly_in_memory(in, NULL);
        /* UTF-8 whatever the declaration says; never from the network */
        xmlDocPtr doc = xmlReadMemory(text, (int)strlen(text), NULL, "UTF-8",
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);

        if (doc && vmh_nc_unqualified_twin(xmlDocGetRootElement(doc))) {
            xmlFreeDoc(doc);
            doc = NULL;
        }
        if (!doc) {
            if (tree)
                *tree = NULL;
            if (op)
                *op = NULL;
            return LY_EVALID;
        }
        fixed = vmh_nc_fix_subscription(doc);
        xmlFreeDoc(doc);
    }
    if (fixed && ly_in_new_memory((const char *)fixed, &fixed_in) == LY_SUCCESS) {
        text = (const char *)fixed;
        in = fixed_in;
    }
    rc = real(ctx, parent, in, format, data_type, tree, op);
    if (rc != LY_SUCCESS && text && !parent && tree && op)
        rc = vmh_nc_refused(ctx, real, text, rc, tree, op);
    ly_in_free(fixed_in, 0);
    xmlFree(fixed);
    if (rc == LY_SUCCESS && data_type == LYD_TYPE_RPC_NETCONF && op && !*op) {
        if (tree) {
            lyd_free_all(*tree);
            *tree = NULL;
        }
        rc = LY_EVALID;
    }
    return rc;
}
