/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The assignment a VIM writes into a domain's metadata at creation:
 *   <assignment xmlns="urn:vmhealth:nfv-vm-health">
 *     <vnf-manager>vnfm-ims</vnf-manager>
 *     <preprocessing-time>30</preprocessing-time>
 *   </assignment>                                                          */
#include "virt/virt.h"

#include <ctype.h>
#include <errno.h>
#include <glib.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdlib.h>
#include <string.h>

#define VMH_META_PPT_MAX  86400
#define VMH_META_NAME_MAX 64

static void vmh_meta_error(struct vmh_vm_meta *meta, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
vmh_meta_error(struct vmh_vm_meta *meta, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (meta->error) {
        char *both = g_strdup_printf("%s; %s", meta->error, msg);

        g_free(meta->error);
        g_free(msg);
        msg = both;
    }
    meta->error = msg;
}

static char *
vmh_meta_text(xmlNodePtr node)
{
    xmlChar *raw = xmlNodeGetContent(node);
    char *text = g_strstrip(g_strdup(raw ? (const char *)raw : ""));

    xmlFree(raw);
    return text;
}

/* virDomainGetMetadata returns the element stripped of its namespace (the
 * namespace is the key it was looked up by); accept that form and the
 * qualified one, nothing else. */
static bool
vmh_meta_is_ours(xmlNodePtr node, const char *name)
{
    return node->type == XML_ELEMENT_NODE &&
           (!node->ns || (node->ns->href && !strcmp((const char *)node->ns->href, VMH_NS))) &&
           !strcmp((const char *)node->name, name);
}

static void
vmh_meta_manager(xmlNodePtr node, struct vmh_vm_meta *meta)
{
    char *text = vmh_meta_text(node);
    size_t len = strlen(text);

    if (!len)
        vmh_meta_error(meta, "vnf-manager is empty");
    else if (len > VMH_META_NAME_MAX)
        vmh_meta_error(meta, "vnf-manager is longer than %d characters", VMH_META_NAME_MAX);
    else if (meta->manager)
        vmh_meta_error(meta, "vnf-manager given twice; the first one is used");
    else {
        meta->manager = text;
        return;
    }
    g_free(text);
}

static void
vmh_meta_ppt(xmlNodePtr node, struct vmh_vm_meta *meta)
{
    char *text = vmh_meta_text(node);
    char *end = NULL;
    unsigned long v;

    errno = 0;
    v = strtoul(text, &end, 10);
    if (!*text || !isdigit((unsigned char)*text) || *end || errno)
        vmh_meta_error(meta, "preprocessing-time '%s' is not a number of seconds; ignored", text);
    else if (v > VMH_META_PPT_MAX)
        vmh_meta_error(meta, "preprocessing-time %lu is above %d seconds; ignored", v,
                       VMH_META_PPT_MAX);
    else {
        meta->has_ppt = true;
        meta->ppt = (uint32_t)v;
    }
    g_free(text);
}

void
vmh_virt_parse_assignment(const char *xml, struct vmh_vm_meta *meta)
{
    xmlDocPtr doc;
    xmlNodePtr root;

    memset(meta, 0, sizeof *meta);
    if (!xml || !*xml)
        return;
    meta->present = true;
    doc = xmlReadMemory(xml, (int)strlen(xml), "assignment.xml", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) {
        const xmlError *e = xmlGetLastError();
        char *why = g_strstrip(g_strdup(e && e->message ? e->message : "parse error"));

        vmh_meta_error(meta, "not well-formed XML: %s", why);
        g_free(why);
        return;
    }
    root = xmlDocGetRootElement(doc);
    if (!root || !vmh_meta_is_ours(root, "assignment")) {
        vmh_meta_error(meta, "the element is not {%s}assignment", VMH_NS);
        xmlFreeDoc(doc);
        return;
    }
    for (xmlNodePtr c = root->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (vmh_meta_is_ours(c, "vnf-manager"))
            vmh_meta_manager(c, meta);
        else if (vmh_meta_is_ours(c, "preprocessing-time"))
            vmh_meta_ppt(c, meta);
        else
            vmh_meta_error(meta, "unknown element '%s' ignored", (const char *)c->name);
    }
    if (!meta->manager)
        vmh_meta_error(meta, "no vnf-manager: the VM belongs to no manager");
    xmlFreeDoc(doc);
}
