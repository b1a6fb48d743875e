/* ncclient (and other RFC 5277 clients following its XSD literally) send
 * create-subscription's <filter> in the NETCONF base namespace, while the
 * notifications YANG module that libyang parses against defines it in its
 * own: libnetconf2 then refuses the RPC before any callback runs.  This
 * wrapper of libyang's lyd_parse_op() (it takes the place of the library's
 * for the whole program and calls it) moves such a filter into the
 * notifications namespace before parsing.
 * It also refuses a message without any element (whitespace, a comment or
 * an XML declaration only): libyang parses it into no operation, which
 * libnetconf2 2.0.24 dereferences; one such message crashed the server.
 * And it refuses a message holding a character XML does not allow
 * (invalid UTF-8, control characters): libyang quotes such bytes in its
 * error messages, which libnetconf2 put in a reply that was no longer
 * XML.  Refused, libnetconf2 answers both with malformed-message. */
#include <dlfcn.h>
#include <glib.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libyang/libyang.h>
#include <string.h>

#define VMH_NC_BASE_NS  "urn:ietf:params:xml:ns:netconf:base:1.0"
#define VMH_NC_NOTIF_NS "urn:ietf:params:xml:ns:netconf:notification:1.0"

typedef LY_ERR (*vmh_parse_op_fn)(const struct ly_ctx *, struct lyd_node *, struct ly_in *,
                                  LYD_FORMAT, enum lyd_type, struct lyd_node **,
                                  struct lyd_node **);

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

/* Whether text holds only characters of XML 1.0 (section 2.2). */
static bool
vmh_xml_chars(const char *text)
{
    const unsigned char *p;

    if (!g_utf8_validate(text, -1, NULL))
        return false;
    for (p = (const unsigned char *)text; *p; p++) {
        if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r')
            return false;
        if (p[0] == 0xEF && p[1] == 0xBF && (p[2] == 0xBE || p[2] == 0xBF))
            return false; /* U+FFFE, U+FFFF */
    }
    return true;
}

LY_ERR
lyd_parse_op(const struct ly_ctx *ctx, struct lyd_node *parent, struct ly_in *in, LYD_FORMAT format,
             enum lyd_type data_type, struct lyd_node **tree, struct lyd_node **op)
{
    static vmh_parse_op_fn real;
    struct ly_in *fixed_in = NULL;
    xmlChar *fixed = NULL;
    LY_ERR rc;

    if (!real)
        real = (vmh_parse_op_fn)dlsym(RTLD_NEXT, "lyd_parse_op");
    if (data_type == LYD_TYPE_RPC_NETCONF && format == LYD_XML && ly_in_type(in) == LY_IN_MEMORY) {
        if (!vmh_xml_chars(ly_in_memory(in, NULL))) {
            if (tree)
                *tree = NULL;
            if (op)
                *op = NULL;
            return LY_EVALID;
        }
        fixed = vmh_nc_fix_subscription(ly_in_memory(in, NULL));
    }
    if (!fixed || ly_in_new_memory((const char *)fixed, &fixed_in) != LY_SUCCESS) {
        rc = real(ctx, parent, in, format, data_type, tree, op);
    } else {
        rc = real(ctx, parent, fixed_in, format, data_type, tree, op);
        ly_in_free(fixed_in, 0);
    }
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
