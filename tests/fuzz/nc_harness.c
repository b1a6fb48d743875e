/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The in-process NETCONF server and its raw client; see nc_harness.h. */
#include "nc_harness.h"

#include "config/config.h"
#include "config/datastore.h"
#include "config/txn.h"
#include "core/engine.h"
#include "core/loop.h"
#include "netconf/netconf_p.h"
#include "util/log.h"

#include <errno.h>
#include <ftw.h>
#include <glib.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define FUZZ_NC_TIMEOUT_MS 10000 /* a reply later than this is a hang: a finding */
#define FUZZ_UUID_M1       "f0000000-0000-4000-8000-000000000001"
#define FUZZ_UUID_M2       "f0000000-0000-4000-8000-000000000002"

struct fuzz_nc_conn {
    int fd;
    GString *in; /* bytes read and not yet consumed */
};

static struct {
    char dir[64];
    char sock[128];
    struct ly_ctx *ctx;
    struct lyd_node *baseline;     /* running as the harness set it */
    struct lyd_node *manager_view; /* the same with root as m1's user */
    struct vmh_datastore *ds;
    struct vmh_loop *loop;
    struct vmh_engine *engine;
    struct vmh_txn *txn;
    struct vmh_nc_server *srv;
} fz;

static void fuzz_nc_fail(const char *what, const char *detail) __attribute__((noreturn));

static void
fuzz_nc_fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_nc: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void
fuzz_nc_log(enum vmh_log_level level, const char *token, const char *msg, void *opaque)
{
    if (getenv("FUZZ_NC_LOG"))
        fprintf(stderr, "[%s] %s\n", token, msg);
}

static int64_t
fuzz_nc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the inventory a hypervisor layer would report --- */

static struct vmh_domain_info
fuzz_nc_dom(const char *uuid, const char *name, const char *meta_manager)
{
    struct vmh_domain_info d = {.name = g_strdup(name),
                                .power = VMH_POWER_RUNNING,
                                .persistent = true,
                                .memory_kib = 65536,
                                .vcpus = 1};

    snprintf(d.uuid, sizeof d.uuid, "%s", uuid);
    if (meta_manager) {
        d.meta.present = true;
        d.meta.manager = g_strdup(meta_manager);
    }
    return d;
}

/* Loop thread: host a runs two VMs (one assigned to m1 by configuration,
 * one to m2 by its metadata), host b is empty and has room. */
static void
fuzz_nc_inventory(void *unused)
{
    struct vmh_domain_info *a = g_new0(struct vmh_domain_info, 2);

    a[0] = fuzz_nc_dom(FUZZ_UUID_M1, "vm-m1", NULL);
    a[1] = fuzz_nc_dom(FUZZ_UUID_M2, "vm-m2", "m2");
    vmh_engine_host_connected(fz.engine, "a", a, 2);
    vmh_engine_host_connected(fz.engine, "b", g_new0(struct vmh_domain_info, 1), 0);
    vmh_engine_host_room(fz.engine, "b", 1 << 20, 8);
    vmh_engine_publish(fz.engine);
}

/* --- setup --- */

static struct lyd_node *
fuzz_nc_parse(const char *role)
{
    char *text, *err = NULL;
    struct lyd_node *tree = NULL;

    text = g_strdup_printf(
        "<vm-health xmlns=\"urn:vmhealth:nfv-vm-health\">"
        "<settings><max-concurrent-migrations>2</max-concurrent-migrations></settings>"
        "<thresholds><temperature-high>80</temperature-high></thresholds>"
        "<host><name>a</name><uri>test:///default</uri></host>"
        "<host><name>b</name><uri>test:///default</uri><migration-target>true</migration-target>"
        "<priority>5</priority></host>"
        "<vnf-manager><name>m1</name><preprocessing-time>30</preprocessing-time>"
        "<user>root</user></vnf-manager>"
        "<vnf-manager><name>m2</name></vnf-manager>"
        "<vm-assignment><uuid>" FUZZ_UUID_M1 "</uuid><vnf-manager>m1</vnf-manager>"
        "</vm-assignment>"
        "</vm-health>"
        "<agent xmlns=\"urn:vmhealth:vmhealth-agent\"><state-dir>%s/state</state-dir>"
        "<netconf><unix-endpoint><name>fuzz</name><path>%s</path><mode>0600</mode>"
        "</unix-endpoint><user><name>root</name><role>%s</role></user></netconf></agent>",
        fz.dir, fz.sock, role);
    if (vmh_config_load_mem(fz.ctx, text, LYD_XML, &tree, &err) < 0)
        fuzz_nc_fail("the harness configuration is invalid", err);
    g_free(text);
    return tree;
}

static struct lyd_node *
fuzz_nc_dup(const struct lyd_node *tree)
{
    struct lyd_node *dup = NULL;

    if (lyd_dup_siblings(tree, NULL, LYD_DUP_RECURSIVE | LYD_DUP_WITH_FLAGS, &dup) != LY_SUCCESS)
        fuzz_nc_fail("cannot copy a tree", NULL);
    return dup;
}

static int
fuzz_nc_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* At the end of a run (not after a crash: the directory is then kept).
 * Nothing is stopped: everything stays reachable and goes with the
 * process.  LeakSanitizer's check at exit must not catch a thread on its
 * way out (its per-thread data, no longer reachable and not yet freed,
 * looks leaked): the server's pool threads never exit (see init), and the
 * thread of the last UNIX handshake is given time to finish. */
static void
fuzz_nc_cleanup(void)
{
    usleep(100000);
    nftw(fz.dir, fuzz_nc_rm, 8, FTW_DEPTH | FTW_PHYS);
}

void
fuzz_nc_init(void)
{
    struct vmh_txn_error txn_err;
    char state[96];

    signal(SIGPIPE, SIG_IGN);
    /* GLib's pool threads beyond two idle ones, or idle 15 s, exit; keep
     * them instead, for the leak check at exit (see fuzz_nc_cleanup). */
    g_thread_pool_set_max_unused_threads(-1);
    g_thread_pool_set_max_idle_time(0);
    vmh_log_init("fuzz", true, getenv("FUZZ_NC_LOG") ? "all" : NULL);
    vmh_log_set_sink(fuzz_nc_log, NULL);
    vmh_log_route_libyang();
    xmlInitParser();
    snprintf(fz.dir, sizeof fz.dir, "%s/vmh-fuzz-nc-XXXXXX",
             getenv("TMPDIR") && strlen(getenv("TMPDIR")) < 30 ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(fz.dir))
        fuzz_nc_fail("mkdtemp", strerror(errno));
    snprintf(fz.sock, sizeof fz.sock, "%s/nc.sock", fz.dir);
    snprintf(state, sizeof state, "%s/state", fz.dir);
    if (mkdir(state, 0700) < 0)
        fuzz_nc_fail("mkdir", strerror(errno));
    if (vmh_yang_ctx_new(VMH_TEST_YANG_PATH, &fz.ctx) < 0)
        fuzz_nc_fail("no YANG context", NULL);
    fz.baseline = fuzz_nc_parse("admin");
    fz.manager_view = fuzz_nc_parse("vnf-manager");
    if (vmh_loop_new(&fz.loop) < 0)
        fuzz_nc_fail("cannot set up the loop", NULL);
    /* As vmhealthd does: the startup load is the first transaction. */
    fz.txn = vmh_txn_new();
    vmh_config_subscribe(fz.txn, fz.loop, &fz.engine);
    if (vmh_txn_commit(fz.txn, NULL, fz.baseline, VMH_TXN_STARTUP, &txn_err) < 0)
        fuzz_nc_fail("the startup configuration is refused", txn_err.message);
    snprintf(state, sizeof state, "%s/startup.xml", fz.dir);
    if (vmh_ds_new(fuzz_nc_dup(fz.baseline), state, &fz.ds) < 0)
        fuzz_nc_fail("cannot set up the datastores", NULL);
    snprintf(state, sizeof state, "%s/state", fz.dir);
    if (vmh_nc_server_start(
            &(struct vmh_nc_options){
                .ctx = fz.ctx, .ds = fz.ds, .engine = fz.engine, .txn = fz.txn, .state_dir = state},
            &fz.srv) < 0 ||
        !fz.srv)
        fuzz_nc_fail("the NETCONF server does not start", NULL);
    if (vmh_loop_start(fz.loop) < 0)
        fuzz_nc_fail("the loop does not start", NULL);
    vmh_loop_call(fz.loop, fuzz_nc_inventory, NULL);
    atexit(fuzz_nc_cleanup);
}

/* --- the client --- */

/* More bytes from the server; false when it closed the connection. */
static bool
fuzz_nc_fill(struct fuzz_nc_conn *c, int64_t deadline)
{
    char buf[16384];
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    ssize_t n;

    for (;;) {
        int left = (int)(deadline - fuzz_nc_now_ms());

        if (left <= 0)
            fuzz_nc_fail("the server did not answer in time", c->in->str);
        if (poll(&p, 1, left) < 0 && errno != EINTR)
            fuzz_nc_fail("poll", strerror(errno));
        if (!p.revents)
            continue;
        n = read(c->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        g_string_append_len(c->in, buf, n);
        return true;
    }
}

/* One message in RFC 6242 chunked framing; false when the server closed
 * the session between messages. */
static bool
fuzz_nc_read_msg(struct fuzz_nc_conn *c, GString *msg)
{
    int64_t deadline = fuzz_nc_now_ms() + FUZZ_NC_TIMEOUT_MS;
    size_t pos = 0;

    g_string_truncate(msg, 0);
    for (;;) {
        const char *p = c->in->str + pos;
        size_t avail = c->in->len - pos;

        if (avail >= 2 && (p[0] != '\n' || p[1] != '#'))
            fuzz_nc_fail("the server broke the chunked framing", c->in->str);
        if (avail >= 4 && p[2] == '#') {
            if (p[3] != '\n')
                fuzz_nc_fail("the server broke the end of chunks", c->in->str);
            g_string_erase(c->in, 0, (gssize)(pos + 4));
            return true;
        }
        if (avail >= 3 && p[2] != '#') {
            const char *nl = memchr(p + 2, '\n', avail - 2);

            if (p[2] < '1' || p[2] > '9')
                fuzz_nc_fail("the server sent a bad chunk size", c->in->str);
            if (nl) {
                char *end;
                unsigned long size = strtoul(p + 2, &end, 10);
                size_t hdr = (size_t)(nl + 1 - p);

                if (end != nl)
                    fuzz_nc_fail("the server sent a bad chunk header", c->in->str);
                if (avail - hdr >= size) {
                    g_string_append_len(msg, nl + 1, (gssize)size);
                    pos += hdr + size;
                    continue;
                }
            }
        }
        if (!fuzz_nc_fill(c, deadline)) {
            if (c->in->len)
                fuzz_nc_fail("the server closed the session in the middle of a message",
                             c->in->str);
            close(c->fd);
            c->fd = -1;
            return false;
        }
    }
}

static bool
fuzz_nc_write(int fd, const char *buf, size_t len)
{
    size_t off = 0;

    while (off < len) {
        ssize_t n = write(fd, buf + off, len - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return false;
        off += (size_t)n;
    }
    return true;
}

struct fuzz_nc_conn *
fuzz_nc_open(bool manager)
{
    static const char hello[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><hello xmlns=\"" FUZZ_NC_NS "\">"
        "<capabilities><capability>urn:ietf:params:netconf:base:1.0</capability>"
        "<capability>urn:ietf:params:netconf:base:1.1</capability></capabilities>"
        "</hello>]]>]]>";
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct fuzz_nc_conn *c = g_new0(struct fuzz_nc_conn, 1);
    int64_t deadline = fuzz_nc_now_ms() + FUZZ_NC_TIMEOUT_MS;
    const char *eom;

    /* The role is read when the server files the session. */
    vmh_nc_users_update(fz.srv, manager ? fz.manager_view : fz.baseline);
    strcpy(sa.sun_path, fz.sock);
    c->in = g_string_new(NULL);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        fuzz_nc_fail("cannot connect to the server", strerror(errno));
    if (!fuzz_nc_write(c->fd, hello, sizeof hello - 1))
        fuzz_nc_fail("cannot send the hello", strerror(errno));
    while (!(eom = strstr(c->in->str, "]]>]]>")))
        if (!fuzz_nc_fill(c, deadline))
            fuzz_nc_fail("the server refused the session", c->in->str);
    if (!strstr(c->in->str, "urn:ietf:params:netconf:base:1.1") ||
        !strstr(c->in->str, "<session-id>"))
        fuzz_nc_fail("the server's hello lacks base:1.1 or a session-id", c->in->str);
    g_string_erase(c->in, 0, eom + 6 - c->in->str);
    return c;
}

void
fuzz_nc_send(struct fuzz_nc_conn *c, const void *msg, size_t len)
{
    GString *out = g_string_new(NULL);

    if (len)
        g_string_printf(out, "\n#%zu\n", len);
    g_string_append_len(out, msg, (gssize)len);
    g_string_append(out, "\n##\n");
    /* a failure means the server closed the session: reading tells */
    if (c->fd >= 0)
        fuzz_nc_write(c->fd, out->str, out->len);
    g_string_free(out, TRUE);
}

static bool
fuzz_nc_is(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name) && n->ns &&
           !strcmp((const char *)n->ns->href, FUZZ_NC_NS);
}

/* Whether v is one of the words of set (" a b c "). */
static bool
fuzz_nc_one_of(const xmlChar *v, const char *set)
{
    char *word = g_strdup_printf(" %s ", v ? (const char *)v : "");
    bool found = v && *v && !strchr((const char *)v, ' ') && strstr(set, word);

    g_free(word);
    return found;
}

/* An rpc-error carries a known type, tag and severity (RFC 6241 4.3 and
 * appendix A). */
static void
fuzz_nc_check_error(const xmlNode *e, const char *reply)
{
    static const char types[] = " transport rpc protocol application ";
    static const char tags[] =
        " in-use invalid-value too-big missing-attribute bad-attribute unknown-attribute"
        " missing-element bad-element unknown-element unknown-namespace access-denied"
        " lock-denied resource-denied rollback-failed data-exists data-missing"
        " operation-not-supported operation-failed partial-operation malformed-message ";
    static const char severities[] = " error warning ";
    bool type = false, tag = false, sev = false;

    for (const xmlNode *f = e->children; f; f = f->next) {
        xmlChar *v;
        bool ok = true;

        if (f->type != XML_ELEMENT_NODE)
            continue;
        v = xmlNodeGetContent(f);
        if (fuzz_nc_is(f, "error-type"))
            ok = type = fuzz_nc_one_of(v, types);
        else if (fuzz_nc_is(f, "error-tag"))
            ok = tag = fuzz_nc_one_of(v, tags);
        else if (fuzz_nc_is(f, "error-severity"))
            ok = sev = fuzz_nc_one_of(v, severities);
        xmlFree(v);
        if (!ok)
            fuzz_nc_fail("an rpc-error with an unknown type, tag or severity", reply);
    }
    if (!type || !tag || !sev)
        fuzz_nc_fail("an rpc-error lacks its type, tag or severity", reply);
}

/* Checks a reply; *id: its message-id (g_free), NULL when it has none. */
static enum fuzz_nc_reply
fuzz_nc_check_reply(const GString *msg, char **id)
{
    xmlDocPtr doc = xmlReadMemory(msg->str, (int)msg->len, NULL, NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    enum fuzz_nc_reply kind = FUZZ_NC_DATA;
    bool ok = false, errors = false, other = false;
    xmlChar *mid;

    if (!root || !fuzz_nc_is(root, "rpc-reply"))
        fuzz_nc_fail("a reply that is not a well-formed rpc-reply", msg->str);
    mid = xmlGetProp(root, BAD_CAST "message-id");
    *id = mid ? g_strdup((const char *)mid) : NULL;
    xmlFree(mid);
    for (xmlNodePtr n = root->children; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (fuzz_nc_is(n, "ok")) {
            ok = true;
        } else if (fuzz_nc_is(n, "rpc-error")) {
            errors = true;
            fuzz_nc_check_error(n, msg->str);
        } else {
            other = true;
        }
    }
    if (ok + errors + other != 1)
        fuzz_nc_fail("a reply that is none or more than one of ok, data and errors", msg->str);
    if (ok)
        kind = FUZZ_NC_OK;
    else if (errors)
        kind = FUZZ_NC_ERROR;
    xmlFreeDoc(doc);
    return kind;
}

/* The next message that is not a notification; false when the server
 * closed the session. */
static bool
fuzz_nc_next_reply(struct fuzz_nc_conn *c, GString *msg)
{
    while (c->fd >= 0 && fuzz_nc_read_msg(c, msg)) {
        const char *p = msg->str;

        while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
            p++;
        if (!strncmp(p, "<?xml", 5) && strstr(p, "?>"))
            p = strstr(p, "?>") + 2;
        if (strncmp(p, "<notification", 13))
            return true;
    }
    return false;
}

#define FUZZ_NC_ALIVE_ID "vmh-fuzz-alive"

int
fuzz_nc_alive(struct fuzz_nc_conn *c, enum fuzz_nc_reply *first)
{
    static const char get[] =
        "<rpc message-id=\"" FUZZ_NC_ALIVE_ID "\" xmlns=\"" FUZZ_NC_NS "\"><get>"
        "<filter type=\"subtree\"><vm-health xmlns=\"urn:vmhealth:nfv-vm-health\"><statistics>"
        "<faults-detected/></statistics></vm-health></filter></get></rpc>";
    struct fuzz_nc_conn *own = NULL;
    GString *reply = g_string_new(NULL);
    int others = 0;

    fuzz_nc_send(c, get, sizeof get - 1);
    for (;;) {
        enum fuzz_nc_reply kind;
        char *id = NULL;
        bool alive;

        if (!fuzz_nc_next_reply(c, reply)) {
            if (own)
                fuzz_nc_fail("a new session closed instead of answering a get", NULL);
            /* the message closed the session (close-session, or libnetconf2
             * gave up on it): ask on a new one */
            c = own = fuzz_nc_open(false);
            fuzz_nc_send(c, get, sizeof get - 1);
            continue;
        }
        kind = fuzz_nc_check_reply(reply, &id);
        alive = !g_strcmp0(id, FUZZ_NC_ALIVE_ID);
        g_free(id);
        if (alive) {
            if (kind != FUZZ_NC_DATA || !strstr(reply->str, "faults-detected>"))
                fuzz_nc_fail("a get of one state leaf did not return it", reply->str);
            break;
        }
        if (own)
            fuzz_nc_fail("a reply on a new session to no request of its", reply->str);
        if (!others++)
            *first = kind;
    }
    g_string_free(reply, TRUE);
    if (own)
        fuzz_nc_close(own);
    return others;
}

void
fuzz_nc_close(struct fuzz_nc_conn *c)
{
    int64_t deadline = fuzz_nc_now_ms() + FUZZ_NC_TIMEOUT_MS;

    if (c->fd >= 0)
        close(c->fd);
    g_string_free(c->in, TRUE);
    g_free(c);
    for (;;) {
        guint sessions;
        int handshakes;

        pthread_mutex_lock(&fz.srv->lock);
        sessions = g_hash_table_size(fz.srv->sessions);
        pthread_mutex_unlock(&fz.srv->lock);
        pthread_mutex_lock(&fz.srv->acc_lock);
        handshakes = fz.srv->unix_handshakes;
        pthread_mutex_unlock(&fz.srv->acc_lock);
        if (!sessions && !handshakes)
            break;
        if (fuzz_nc_now_ms() > deadline)
            fuzz_nc_fail("a closed session is still in the server's table", NULL);
        usleep(200);
    }
    for (int d = 0; d < VMH_DS_COUNT; d++)
        if (vmh_ds_lock_holder(fz.ds, (enum vmh_ds_id)d, NULL))
            fuzz_nc_fail("a datastore lock outlived its session", vmh_ds_name(d));
}

/* --- the datastores --- */

static bool
fuzz_nc_same(enum vmh_ds_id id)
{
    const struct lyd_node *t = vmh_ds_read_begin(fz.ds, id);
    bool same =
        lyd_compare_siblings(t, fz.baseline, LYD_COMPARE_FULL_RECURSION | LYD_COMPARE_DEFAULTS) ==
        LY_SUCCESS;

    vmh_ds_read_end(fz.ds);
    return same;
}

bool
fuzz_nc_running_is_baseline(void)
{
    return fuzz_nc_same(VMH_DS_RUNNING);
}

void
fuzz_nc_check_running(void)
{
    struct lyd_node *copy = NULL;
    const struct lyd_node *t = vmh_ds_read_begin(fz.ds, VMH_DS_RUNNING);
    char *text = NULL;

    if (t)
        copy = fuzz_nc_dup(t);
    vmh_ds_read_end(fz.ds);
    if (lyd_validate_all(&copy, fz.ctx, LYD_VALIDATE_NO_STATE, NULL) != LY_SUCCESS) {
        lyd_print_mem(&text, copy, LYD_XML, LYD_PRINT_WITHSIBLINGS);
        fuzz_nc_fail("running is not valid", text);
    }
    lyd_free_siblings(copy);
}

void
fuzz_nc_settle(void)
{
    bool running = fuzz_nc_same(VMH_DS_RUNNING), startup = fuzz_nc_same(VMH_DS_STARTUP);
    char *err = NULL;

    if (!running) {
        struct lyd_node *tree = fuzz_nc_dup(fz.baseline);
        struct vmh_txn_error txn_err;

        /* as a commit of the server does it */
        vmh_ds_write_begin(fz.ds);
        if (vmh_txn_commit(fz.txn, vmh_ds_read_begin(fz.ds, VMH_DS_RUNNING), tree, 0, &txn_err) < 0)
            fuzz_nc_fail("cannot reset running", txn_err.message);
        vmh_ds_read_end(fz.ds);
        if (vmh_ds_replace(fz.ds, VMH_DS_RUNNING, tree, &err))
            fuzz_nc_fail("cannot reset running", err);
        vmh_ds_write_end(fz.ds);
        vmh_loop_call(fz.loop, fuzz_nc_inventory, NULL);
    }
    if (!startup && vmh_ds_replace(fz.ds, VMH_DS_STARTUP, fuzz_nc_dup(fz.baseline), &err) < 0)
        fuzz_nc_fail("cannot reset startup", err);
    vmh_nc_users_update(fz.srv, fz.baseline);
}
