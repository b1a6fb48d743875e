/* SPDX-License-Identifier: GPL-3.0-or-later */
/* agent/snmp of the validated configuration tree, as the SNMP front end
 * uses it.  libyang has already checked types, ranges and musts; what is
 * left is turning strings into numbers and addresses. */
#include "snmp/snmp.h"

#include "config/tree.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static char *
vmh_snmp_conf_dup(const struct lyd_node *parent, const char *name)
{
    const char *v = vmh_tree_str(parent, name);

    return v ? g_strdup(v) : NULL;
}

static bool
vmh_snmp_conf_is(const struct lyd_node *n, const char *name)
{
    return n->schema && !strcmp(n->schema->name, name);
}

/* "10.0.0.0/24", "2001:db8::/32": family, address bytes, prefix length. */
static int
vmh_snmp_conf_prefix(const char *text, struct vmh_snmp_community *c)
{
    char buf[INET6_ADDRSTRLEN + 8];
    char *slash;
    unsigned long len;

    snprintf(buf, sizeof buf, "%s", text);
    slash = strchr(buf, '/');
    if (!slash)
        return -EINVAL;
    *slash = '\0';
    len = strtoul(slash + 1, NULL, 10);
    if (inet_pton(AF_INET, buf, c->addr) == 1) {
        c->family = AF_INET;
        if (len > 32)
            return -EINVAL;
    } else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
        c->family = AF_INET6;
        if (len > 128)
            return -EINVAL;
    } else {
        return -EINVAL;
    }
    c->prefix_len = (unsigned)len;
    c->has_source = true;
    return 0;
}

static void
vmh_snmp_conf_user(const struct lyd_node *n, struct vmh_snmp_user *u)
{
    const char *auth = vmh_tree_str(n, "auth-protocol");
    const char *priv = vmh_tree_str(n, "priv-protocol");

    u->name = vmh_snmp_conf_dup(n, "name");
    u->auth = !auth || !strcmp(auth, "sha-256") ? VMH_SNMP_AUTH_SHA256
              : !strcmp(auth, "sha-512")        ? VMH_SNMP_AUTH_SHA512
                                                : VMH_SNMP_AUTH_SHA;
    u->auth_pass = vmh_snmp_conf_dup(n, "auth-passphrase");
    u->priv = priv && !strcmp(priv, "aes-256") ? VMH_SNMP_PRIV_AES256 : VMH_SNMP_PRIV_AES;
    u->priv_pass = vmh_snmp_conf_dup(n, "priv-passphrase");
    if (!u->priv_pass)
        u->priv_pass = g_strdup(u->auth_pass);
}

static void
vmh_snmp_conf_target(const struct lyd_node *n, struct vmh_snmp_conf *conf,
                     struct vmh_snmp_target *t)
{
    const char *v;

    t->name = vmh_snmp_conf_dup(n, "name");
    t->address = vmh_snmp_conf_dup(n, "address");
    v = vmh_tree_str(n, "port");
    t->port = v ? (uint16_t)strtoul(v, NULL, 10) : 162;
    v = vmh_tree_str(n, "version");
    t->v3 = v && !strcmp(v, "v3");
    t->community = vmh_snmp_conf_dup(n, "community");
    v = vmh_tree_str(n, "user");
    t->user = v ? vmh_snmp_conf_find_user(conf, v, strlen(v)) : NULL;
    v = vmh_tree_str(n, "security-level");
    t->level = !v || !strcmp(v, "auth-priv") ? VMH_SNMP_AUTHPRIV
               : !strcmp(v, "auth-no-priv")  ? VMH_SNMP_AUTHNOPRIV
                                             : VMH_SNMP_NOAUTH;
    t->engine_id = vmh_snmp_conf_dup(n, "engine-id");
    v = vmh_tree_str(n, "inform");
    t->inform = v && !strcmp(v, "true");
    v = vmh_tree_str(n, "timeout");
    t->timeout_ms = v ? (uint32_t)strtoul(v, NULL, 10) : 1000;
    v = vmh_tree_str(n, "retries");
    t->retries = v ? (uint8_t)strtoul(v, NULL, 10) : 3;
}

int
vmh_snmp_conf_build(const struct lyd_node *tree, struct vmh_snmp_conf **out, char **err)
{
    struct vmh_snmp_conf *conf = g_new0(struct vmh_snmp_conf, 1);
    const struct lyd_node *agent = NULL, *snmp = NULL, *n;
    size_t na = 0, nc = 0, nu = 0, nt = 0;

    *err = NULL;
    LY_LIST_FOR(tree, n)
    {
        if (n->schema && !strcmp(n->schema->name, "agent") &&
            !strcmp(n->schema->module->name, "vmhealth-agent"))
            agent = n;
    }
    if (agent)
        snmp = vmh_tree_child(agent, "snmp");
    if (!snmp) {
        *out = conf;
        return 0;
    }
    LY_LIST_FOR(lyd_child(snmp), n)
    {
        na += vmh_snmp_conf_is(n, "agent-address");
        nc += vmh_snmp_conf_is(n, "community");
        nu += vmh_snmp_conf_is(n, "usm-user");
        nt += vmh_snmp_conf_is(n, "target");
    }
    conf->addresses = g_new0(char *, na + 1);
    conf->communities = g_new0(struct vmh_snmp_community, nc + 1);
    conf->users = g_new0(struct vmh_snmp_user, nu + 1);
    conf->targets = g_new0(struct vmh_snmp_target, nt + 1);
    conf->agentx_socket = vmh_snmp_conf_dup(snmp, "agentx-socket");
    /* Users first: targets point at them. */
    LY_LIST_FOR(lyd_child(snmp), n)
    {
        if (vmh_snmp_conf_is(n, "agent-address"))
            conf->addresses[conf->n_addresses++] = g_strdup(lyd_get_value(n));
        else if (vmh_snmp_conf_is(n, "usm-user"))
            vmh_snmp_conf_user(n, &conf->users[conf->n_users++]);
    }
    LY_LIST_FOR(lyd_child(snmp), n)
    {
        if (vmh_snmp_conf_is(n, "community")) {
            struct vmh_snmp_community *c = &conf->communities[conf->n_communities++];
            const char *src = vmh_tree_str(n, "source");

            c->name = vmh_snmp_conf_dup(n, "name");
            if (src && vmh_snmp_conf_prefix(src, c) < 0) {
                *err = g_strdup_printf("community %s: source %s is not an IP prefix", c->name, src);
                vmh_snmp_conf_free(conf);
                return -EINVAL;
            }
        } else if (vmh_snmp_conf_is(n, "target")) {
            vmh_snmp_conf_target(n, conf, &conf->targets[conf->n_targets++]);
        }
    }
    *out = conf;
    return 0;
}

void
vmh_snmp_conf_free(struct vmh_snmp_conf *conf)
{
    if (!conf)
        return;
    for (size_t i = 0; i < conf->n_addresses; i++)
        g_free(conf->addresses[i]);
    g_free(conf->addresses);
    g_free(conf->agentx_socket);
    for (size_t i = 0; i < conf->n_communities; i++)
        g_free(conf->communities[i].name);
    g_free(conf->communities);
    for (size_t i = 0; i < conf->n_users; i++) {
        struct vmh_snmp_user *u = &conf->users[i];

        g_free(u->name);
        if (u->auth_pass)
            memset(u->auth_pass, 0, strlen(u->auth_pass));
        if (u->priv_pass)
            memset(u->priv_pass, 0, strlen(u->priv_pass));
        g_free(u->auth_pass);
        g_free(u->priv_pass);
    }
    g_free(conf->users);
    for (size_t i = 0; i < conf->n_targets; i++) {
        struct vmh_snmp_target *t = &conf->targets[i];

        g_free(t->name);
        g_free(t->address);
        g_free(t->community);
        g_free(t->engine_id);
    }
    g_free(conf->targets);
    g_free(conf);
}

static bool
vmh_snmp_conf_prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned bytes = bits / 8, rest = bits % 8;

    if (memcmp(a, b, bytes))
        return false;
    if (!rest)
        return true;
    return ((a[bytes] ^ b[bytes]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

static bool
vmh_snmp_conf_source_matches(const struct vmh_snmp_community *c, const struct sockaddr *sa)
{
    if (!c->has_source)
        return true;
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET && c->family == AF_INET)
        return vmh_snmp_conf_prefix_match(
            (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr, c->addr, c->prefix_len);
    if (sa->sa_family == AF_INET6) {
        const uint8_t *a6 = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;

        if (c->family == AF_INET6)
            return vmh_snmp_conf_prefix_match(a6, c->addr, c->prefix_len);
        /* An IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d. */
        if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a6))
            return vmh_snmp_conf_prefix_match(a6 + 12, c->addr, c->prefix_len);
    }
    return false;
}

bool
vmh_snmp_conf_community_allows(const struct vmh_snmp_conf *conf, const char *community, size_t len,
                               const void *sockaddr)
{
    for (size_t i = 0; i < conf->n_communities; i++) {
        const struct vmh_snmp_community *c = &conf->communities[i];

        if (strlen(c->name) == len && !memcmp(c->name, community, len) &&
            vmh_snmp_conf_source_matches(c, sockaddr))
            return true;
    }
    return false;
}

const struct vmh_snmp_user *
vmh_snmp_conf_find_user(const struct vmh_snmp_conf *conf, const char *name, size_t len)
{
    for (size_t i = 0; i < conf->n_users; i++) {
        if (strlen(conf->users[i].name) == len && !memcmp(conf->users[i].name, name, len))
            return &conf->users[i];
    }
    return NULL;
}

static bool
vmh_snmp_conf_str_eq(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

static bool
vmh_snmp_user_equal(const struct vmh_snmp_user *a, const struct vmh_snmp_user *b)
{
    if (!a || !b)
        return a == b;
    return !strcmp(a->name, b->name) && a->auth == b->auth && a->priv == b->priv &&
           vmh_snmp_conf_str_eq(a->auth_pass, b->auth_pass) &&
           vmh_snmp_conf_str_eq(a->priv_pass, b->priv_pass);
}

bool
vmh_snmp_target_equal(const struct vmh_snmp_target *a, const struct vmh_snmp_target *b)
{
    if (strcmp(a->address, b->address) || a->port != b->port || a->v3 != b->v3 ||
        a->inform != b->inform || a->timeout_ms != b->timeout_ms || a->retries != b->retries)
        return false;
    if (!a->v3)
        return vmh_snmp_conf_str_eq(a->community, b->community);
    return a->level == b->level && vmh_snmp_conf_str_eq(a->engine_id, b->engine_id) &&
           vmh_snmp_user_equal(a->user, b->user);
}

void
vmh_snmp_conf_match_targets(const struct vmh_snmp_conf *from, const struct vmh_snmp_conf *to,
                            ssize_t *match, bool *changed)
{
    for (size_t j = 0; j < to->n_targets; j++) {
        match[j] = -1;
        changed[j] = false;
        for (size_t i = 0; from && i < from->n_targets; i++) {
            if (strcmp(from->targets[i].name, to->targets[j].name))
                continue;
            match[j] = (ssize_t)i;
            changed[j] = !vmh_snmp_target_equal(&from->targets[i], &to->targets[j]);
            break;
        }
    }
}

enum vmh_snmp_role
vmh_snmp_conf_role(const struct vmh_snmp_conf *conf)
{
    if (!conf)
        return VMH_SNMP_OFF;
    if (conf->agentx_socket)
        return VMH_SNMP_SUBAGENT;
    return conf->n_addresses || conf->n_targets ? VMH_SNMP_MASTER : VMH_SNMP_OFF;
}

/* --- the SNMP subscriber of the configuration transaction ---
 * agent/snmp is read here and only here, at startup and at every change,
 * and applied live: the new listening addresses are bound in prepare (a
 * taken address refuses the change, in-use, naming the address), the
 * rest switches over in apply. */

struct vmh_snmp_sub {
    struct vmh_snmp *snmp;
    struct vmh_engine **engine;
};

static int
vmh_snmp_txn_validate(struct vmh_txn_change *c, void *opaque)
{
    struct vmh_snmp_conf *conf = NULL;
    char *err = NULL;

    (void)opaque;
    if (vmh_snmp_conf_build(c->new_tree, &conf, &err) < 0) {
        vmh_txn_refuse(c, VMH_TXN_INVALID, "/vmhealth-agent:agent/snmp", "%s", err);
        g_free(err);
        return -1;
    }
    vmh_snmp_conf_free(conf);
    return 0;
}

static int
vmh_snmp_txn_prepare(struct vmh_txn_change *c, void *opaque)
{
    struct vmh_snmp_sub *sub = opaque;
    struct vmh_snmp_conf *conf = NULL;
    struct vmh_snmp_change *change = NULL;
    char *err = NULL, *address = NULL, *path;
    int rc;

    if (vmh_snmp_conf_build(c->new_tree, &conf, &err) < 0) {
        vmh_txn_refuse(c, VMH_TXN_INVALID, "/vmhealth-agent:agent/snmp", "%s", err);
        g_free(err);
        return -1;
    }
    rc = vmh_snmp_prepare(sub->snmp, conf, &change, &address);
    if (rc == 0) {
        c->resource = change;
        return 0;
    }
    if (address) {
        path = g_strdup_printf("/vmhealth-agent:agent/snmp/agent-address[.='%s']", address);
        vmh_txn_refuse(c,
                       rc == -EADDRINUSE                       ? VMH_TXN_IN_USE
                       : rc == -EADDRNOTAVAIL || rc == -EINVAL ? VMH_TXN_INVALID
                                                               : VMH_TXN_FAILED,
                       path, "cannot listen on %s: %s", address, g_strerror(-rc));
        g_free(path);
    } else {
        vmh_txn_refuse(c, VMH_TXN_FAILED, "/vmhealth-agent:agent/snmp",
                       "the SNMP agent cannot start: %s (see the log)", g_strerror(-rc));
    }
    g_free(address);
    return -1;
}

static void
vmh_snmp_txn_abort(struct vmh_txn_change *c, void *opaque)
{
    struct vmh_snmp_sub *sub = opaque;

    vmh_snmp_abort(sub->snmp, c->resource);
}

static void
vmh_snmp_txn_apply(struct vmh_txn_change *c, void *opaque)
{
    struct vmh_snmp_sub *sub = opaque;

    /* The engine subscriber, registered first, has just created it. */
    if (c->startup)
        vmh_snmp_attach(sub->snmp, *sub->engine);
    vmh_snmp_apply(sub->snmp, c->resource);
}

void
vmh_snmp_subscribe(struct vmh_txn *txn, struct vmh_snmp *snmp, struct vmh_engine **engine)
{
    static const char *const paths[] = {"/vmhealth-agent:agent/snmp", NULL};
    struct vmh_snmp_sub *sub = vmh_txn_keep(txn, sizeof *sub);

    sub->snmp = snmp;
    sub->engine = engine;
    vmh_txn_subscribe(txn, &(struct vmh_txn_subscriber){.name = "snmp",
                                                        .paths = paths,
                                                        .validate = vmh_snmp_txn_validate,
                                                        .prepare = vmh_snmp_txn_prepare,
                                                        .abort = vmh_snmp_txn_abort,
                                                        .apply = vmh_snmp_txn_apply,
                                                        .opaque = sub});
}
