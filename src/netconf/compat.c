/* A wrapper of libyang's lyd_parse_op() (it takes the place of the
 * library's for the whole program and calls it) for the RPCs libnetconf2
 * parses before any callback runs, which it answers itself when libyang
 * refuses them:
 *  - ncclient (and other RFC 5277 clients following its XSD literally)
 *    send create-subscription's <filter> in the NETCONF base namespace,
 *    while the notifications YANG module defines it in its own: such a
 *    filter is moved into the notifications namespace before parsing;
 *  - an nfv-vm-health RPC refused for its input gets a second chance in
 *    rpc_input.c, so that its callback can answer invalid-value;
 *  - a message without any element (whitespace, a comment or an XML
 *    declaration only) is refused: libyang parses it into no operation,
 *    which libnetconf2 2.0.24 dereferences (one such message crashed the
 *    server); refused, libnetconf2 answers it with malformed-message.
 * Nothing else is touched. */
#include "netconf/netconf_p.h"

#include "config/config.h"

#include <dlfcn.h>
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
vmh_nc_fix_subscription(const char *text)
{
    xmlDocPtr doc;
    xmlNodePtr rpc, op, f;
    xmlChar *out = NULL;
    int len = 0;
    bool changed = false;

    if (!strstr(text, "create-subscription") || !strstr(text, "filter"))
        return NULL;
    doc = xmlReadMemory(text, (int)strlen(text), NULL, NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    rpc = doc ? xmlDocGetRootElement(doc) : NULL;
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
    xmlFreeDoc(doc);
    return out;
}

/* The real parser refused text: a domain RPC may parse without its refused
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
    if (data_type != LYD_TYPE_RPC_NETCONF || format != LYD_XML || parent || !tree || !op ||
        ly_in_type(in) != LY_IN_MEMORY)
        return real(ctx, parent, in, format, data_type, tree, op);
    text = ly_in_memory(in, NULL);
    fixed = vmh_nc_fix_subscription(text);
    if (fixed && ly_in_new_memory((const char *)fixed, &fixed_in) == LY_SUCCESS) {
        text = (const char *)fixed;
        in = fixed_in;
    }
    rc = real(ctx, parent, in, format, data_type, tree, op);
    if (rc != LY_SUCCESS && strstr(text, VMH_NS))
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
