/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The NETCONF vocabulary the server's files and the edit engine share,
 * without libnetconf2: the protocol's namespaces and an rpc-error
 * (RFC 6241 section 4.3) described as data.  error.c turns a description
 * into libnetconf2's reply; nothing else builds one. */
#ifndef VMH_NETCONF_PROTOCOL_H
#define VMH_NETCONF_PROTOCOL_H

#include <stdint.h>

#define VMH_NC_BASE_NS  "urn:ietf:params:xml:ns:netconf:base:1.0"
#define VMH_NC_NOTIF_NS "urn:ietf:params:xml:ns:netconf:notification:1.0"

/* error-tag, RFC 6241 appendix A */
enum vmh_nc_tag {
    VMH_NC_TAG_OPERATION_FAILED, /* the zero value: a failure nobody described */
    VMH_NC_TAG_IN_USE,
    VMH_NC_TAG_INVALID_VALUE,
    VMH_NC_TAG_TOO_BIG,
    VMH_NC_TAG_MISSING_ATTRIBUTE,
    VMH_NC_TAG_BAD_ATTRIBUTE,
    VMH_NC_TAG_UNKNOWN_ATTRIBUTE,
    VMH_NC_TAG_MISSING_ELEMENT,
    VMH_NC_TAG_BAD_ELEMENT,
    VMH_NC_TAG_UNKNOWN_ELEMENT,
    VMH_NC_TAG_UNKNOWN_NAMESPACE,
    VMH_NC_TAG_ACCESS_DENIED,
    VMH_NC_TAG_LOCK_DENIED,
    VMH_NC_TAG_RESOURCE_DENIED,
    VMH_NC_TAG_ROLLBACK_FAILED,
    VMH_NC_TAG_DATA_EXISTS,
    VMH_NC_TAG_DATA_MISSING,
    VMH_NC_TAG_OPERATION_NOT_SUPPORTED,
    VMH_NC_TAG_MALFORMED_MESSAGE,
};

/* error-type; lock-denied, data-exists, data-missing and malformed-message
 * have the one RFC 6241 gives them whatever is set. */
enum vmh_nc_etype {
    VMH_NC_APPLICATION, /* the zero value */
    VMH_NC_PROTOCOL,
    VMH_NC_RPC,
    VMH_NC_TRANSPORT,
};

/* Every string is owned (g_free); NULL: absent. */
struct vmh_nc_error {
    enum vmh_nc_tag tag;
    enum vmh_nc_etype type;
    char *path;      /* error-path */
    char *message;   /* error-message (en); NULL: libnetconf2's text for the tag */
    char *app_tag;   /* error-app-tag */
    char *element;   /* bad-element of the *-element, *-attribute and unknown-namespace tags */
    char *attribute; /* bad-attribute of the *-attribute tags */
    char *ns;        /* bad-namespace of unknown-namespace */
    uint32_t sid;    /* session-id of lock-denied (always) and in-use (when not 0) */
};

/* Sets tag, type, path (copied) and the message; the other fields stay. */
void vmh_nc_error_set(struct vmh_nc_error *e, enum vmh_nc_tag tag, enum vmh_nc_etype type,
                      const char *path, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Frees the strings and zeroes e; NULL-safe. */
void vmh_nc_error_clear(struct vmh_nc_error *e);

#endif
