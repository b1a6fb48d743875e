/* SPDX-License-Identifier: GPL-3.0-or-later */
/* NETCONF transports and sessions.  Threads:
 *  - SSH acceptors, each in nc_accept(): libnetconf2 runs key exchange,
 *    authentication and hello synchronously, so whenever every acceptor is
 *    busy with a handshake (seen from the host key callback, which runs
 *    right after the TCP accept) another one is started: a silent client
 *    holds one thread, never the next login;
 *  - the UNIX listener: accepts on sockets it owns and runs each hello in a
 *    short-lived thread of its own;
 *  - the poller: poll(2) on every idle session's descriptor (nc_ps_poll
 *    busy-waits in 100 us steps, about 12 % of a core per idle SSH session)
 *    and hands a readable session to a worker;
 *  - workers (a GThreadPool): one session at a time each, all the I/O of
 *    that session (its RPCs with nc_ps_poll(ps, 0) until nothing is left,
 *    its queued notifications), so no two threads ever write to a session;
 *  - the notifier (notif.c): the engine's events to the subscribed
 *    sessions' queues. */
#include "netconf/netconf_p.h"

#include "config/config.h"
#include "util/log.h"
#include "util/time.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <libnetconf2/log.h>
#include <libnetconf2/messages_server.h>
#include <libnetconf2/session_server.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define VMH_NC_MAX_ACCEPTORS 64
#define VMH_NC_AUTH_TIMEOUT  10 /* s */
#define VMH_NC_HELLO_TIMEOUT 10 /* s */
#define VMH_NC_WORKERS       16
#define VMH_NC_FALLBACK_POLL 50   /* ms, for sessions whose descriptor is unknown */
#define VMH_NC_NOTIF_TIMEOUT 5000 /* ms to write one notification */

#define VMH_NC_ACCEPT_WAIT 100 /* ms an acceptor waits in nc_accept() (a change waits as long) */

/* A listener of agent/netconf as it is bound (srv->endpoints), or as a
 * change would make it (from the configuration, until applied). */
struct vmh_nc_endpoint {
    char *name; /* as configured */
    bool ssh;
    /* SSH: a libnetconf2 endpoint of its own (a new name for each bind),
     * listening; NULL until bound */
    char *nc_name;
    char *address;
    uint16_t port;
    char *host_key;
    /* UNIX: a socket of ours, -1 until bound */
    char *path;
    mode_t mode;
    int fd;
    dev_t dev;
    ino_t ino; /* of the socket file, so that only ours is ever unlinked */
    /* while a change is prepared */
    const struct lyd_node *cfg;   /* its list entry in the change's tree */
    struct vmh_nc_endpoint *from; /* the live endpoint whose listener it takes over */
};

/* --- logging --- */

static void
vmh_nc_log_cb(const struct nc_session *session, NC_VERB_LEVEL level, const char *msg)
{
    uint32_t sid = session ? nc_session_get_id(session) : 0;

    switch (level) {
    case NC_VERB_ERROR:
        /* Clients that go away and failed logins are routine for a server. */
        if (sid)
            log_warn("netconf", "session %u: %s", sid, msg);
        else
            log_warn("netconf", "%s", msg);
        break;
    case NC_VERB_WARNING:
        log_info("netconf", "%s%s", sid ? "session: " : "", msg);
        break;
    default:
        log_debug("netconf", "%s", msg);
        break;
    }
}

/* --- messages --- */

struct vmh_nc_msg *
vmh_nc_msg_ref(struct vmh_nc_msg *m)
{
    g_atomic_int_inc(&m->refs);
    return m;
}

void
vmh_nc_msg_unref(struct vmh_nc_msg *m)
{
    if (!m || !g_atomic_int_dec_and_test(&m->refs))
        return;
    lyd_free_all(m->tree);
    free(m->event_time);
    free(m->vnf_manager);
    free(m);
}

/* --- users --- */

static void
vmh_nc_user_free(void *p)
{
    struct vmh_nc_user *u = p;

    free(u->name);
    g_strfreev(u->keys);
    free(u->hash);
    g_strfreev(u->managers);
    free(u);
}

static struct lyd_node *
vmh_nc_top(const struct lyd_node *config, const char *mod, const char *name)
{
    const struct lyd_node *n;

    LY_LIST_FOR(config, n)
    {
        if (n->schema && !strcmp(n->schema->name, name) && !strcmp(n->schema->module->name, mod))
            return (struct lyd_node *)n;
    }
    return NULL;
}

void
vmh_nc_users_update(struct vmh_nc_server *srv, const struct lyd_node *config)
{
    GPtrArray *users = g_ptr_array_new_with_free_func(vmh_nc_user_free), *old;
    struct lyd_node *agent = vmh_nc_top(config, VHA_MOD, "agent");
    struct lyd_node *vh = vmh_nc_top(config, VMH_MOD, "vm-health");
    struct lyd_node *nc = NULL, *n, *c;

    if (agent)
        nc = vmh_tree_child(agent, "netconf");
    LY_LIST_FOR(nc ? lyd_child(nc) : NULL, n)
    {
        struct vmh_nc_user *u;
        GPtrArray *keys, *mgrs;
        struct lyd_node *m, *mu;

        if (strcmp(n->schema->name, "user"))
            continue;
        keys = g_ptr_array_new();
        mgrs = g_ptr_array_new();
        u = calloc(1, sizeof *u);
        LY_LIST_FOR(lyd_child(n), c)
        {
            if (!strcmp(c->schema->name, "name"))
                u->name = strdup(lyd_get_value(c));
            else if (!strcmp(c->schema->name, "role"))
                u->admin = !strcmp(lyd_get_value(c), "admin");
            else if (!strcmp(c->schema->name, "authorized-key"))
                g_ptr_array_add(keys, g_strdup(lyd_get_value(c)));
            else if (!strcmp(c->schema->name, "password-hash"))
                u->hash = strdup(lyd_get_value(c));
        }
        LY_LIST_FOR(vh ? lyd_child(vh) : NULL, m)
        {
            if (strcmp(m->schema->name, "vnf-manager"))
                continue;
            LY_LIST_FOR(lyd_child(m), mu)
            {
                if (!strcmp(mu->schema->name, "user") && !strcmp(lyd_get_value(mu), u->name))
                    g_ptr_array_add(mgrs, g_strdup(lyd_get_value(lyd_child(m))));
            }
        }
        g_ptr_array_add(keys, NULL);
        g_ptr_array_add(mgrs, NULL);
        u->keys = (char **)g_ptr_array_free(keys, FALSE);
        u->managers = (char **)g_ptr_array_free(mgrs, FALSE);
        g_ptr_array_add(users, u);
    }
    pthread_rwlock_wrlock(&srv->users_lock);
    old = srv->users;
    srv->users = users;
    pthread_rwlock_unlock(&srv->users_lock);
    if (old)
        g_ptr_array_unref(old);
}

/* Under users_lock (read). */
static const struct vmh_nc_user *
vmh_nc_user_find(struct vmh_nc_server *srv, const char *name)
{
    for (guint i = 0; name && i < srv->users->len; i++) {
        const struct vmh_nc_user *u = g_ptr_array_index(srv->users, i);

        if (!strcmp(u->name, name))
            return u;
    }
    return NULL;
}

/* A session's credential (struct vmh_nc_session.cred) for an authorized
 * key: its type and key, not its comment. */
static char *
vmh_nc_key_cred(const char *authorized_key)
{
    char **parts = g_strsplit(authorized_key, " ", 3);
    char *cred = parts[0] && parts[1] ? g_strdup_printf("key %s %s", parts[0], parts[1]) : NULL;

    g_strfreev(parts);
    return cred;
}

/* Whether the user still has the credential cred (NULL: the peer's uid,
 * nothing to check). */
static bool
vmh_nc_cred_valid(const struct vmh_nc_user *u, const char *cred)
{
    bool ok = false;

    if (!cred)
        return true;
    if (g_str_has_prefix(cred, "password "))
        return u->hash && !strcmp(cred + strlen("password "), u->hash);
    for (size_t i = 0; u->keys[i] && !ok; i++) {
        char *k = vmh_nc_key_cred(u->keys[i]);

        ok = k && !strcmp(k, cred);
        g_free(k);
    }
    return ok;
}

/* Closes the sessions that the users as configured now no longer allow
 * (after a configuration change): of a removed user, of a user whose role
 * changed (a session keeps the role it logged in with), and SSH sessions
 * that logged in with a key or password since removed.  Their workers end
 * them: this only marks and schedules, so it is safe from any thread, the
 * session's own worker included (that session then ends after its reply). */
static void
vmh_nc_sessions_recheck(struct vmh_nc_server *srv)
{
    GHashTableIter it;
    gpointer v;

    pthread_rwlock_rdlock(&srv->users_lock);
    pthread_mutex_lock(&srv->lock);
    g_hash_table_iter_init(&it, srv->sessions);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct vmh_nc_session *s = v;
        const struct vmh_nc_user *u = vmh_nc_user_find(srv, s->user);
        const char *why = !u                               ? "its user was removed"
                          : u->admin != s->admin           ? "its user's role changed"
                          : !vmh_nc_cred_valid(u, s->cred) ? "the key or password it logged in "
                                                             "with was removed"
                                                           : NULL;

        if (!why || s->close_why)
            continue;
        s->close_why = why;
        log_info("netconf", "session %u of '%s' is closed: %s", s->id, s->user, why);
        vmh_nc_schedule_locked(srv, s);
    }
    pthread_mutex_unlock(&srv->lock);
    pthread_rwlock_unlock(&srv->users_lock);
}

static bool
vmh_nc_user_role(struct vmh_nc_server *srv, const char *name, bool *admin)
{
    const struct vmh_nc_user *u;

    pthread_rwlock_rdlock(&srv->users_lock);
    u = vmh_nc_user_find(srv, name);
    if (u)
        *admin = u->admin;
    pthread_rwlock_unlock(&srv->users_lock);
    return u != NULL;
}

/* --- failed logins --- */

/* Failures from one address beyond the first VMH_NC_AUTH_FREE make every
 * later attempt from it wait 1 s, 2 s, 4 s... up to VMH_NC_AUTH_MAX_DELAY
 * before it is checked; a success or VMH_NC_AUTH_FORGET of quiet starts the
 * address afresh.  The wait holds only that connection's acceptor: another
 * acceptor takes the next login. */
#define VMH_NC_AUTH_FREE      5
#define VMH_NC_AUTH_MAX_DELAY 8000   /* ms, below the authentication timeout */
#define VMH_NC_AUTH_FORGET    900000 /* ms */
#define VMH_NC_AUTH_PEERS     4096   /* addresses remembered at most */

struct vmh_nc_auth_peer {
    unsigned failures;
    int64_t last_ms;
};

static void
vmh_nc_auth_forget_old_locked(struct vmh_nc_server *srv, int64_t now)
{
    GHashTableIter it;
    gpointer v;

    g_hash_table_iter_init(&it, srv->auth_peers);
    while (g_hash_table_iter_next(&it, NULL, &v))
        if (now - ((struct vmh_nc_auth_peer *)v)->last_ms > VMH_NC_AUTH_FORGET)
            g_hash_table_iter_remove(&it);
}

/* Before a check: waits as long as the address has earned. */
static void
vmh_nc_auth_throttle(struct vmh_nc_server *srv, const char *host, const char *user)
{
    struct vmh_nc_auth_peer *p;
    int64_t delay = 0, now = vmh_time_mono_ms();
    unsigned failures = 0;
    bool stopping = false;

    if (!host)
        return;
    pthread_mutex_lock(&srv->acc_lock);
    p = g_hash_table_lookup(srv->auth_peers, host);
    if (p && now - p->last_ms > VMH_NC_AUTH_FORGET)
        p->failures = 0;
    if (p && p->failures >= VMH_NC_AUTH_FREE) {
        failures = p->failures;
        delay = MIN((int64_t)1000 << MIN(failures - VMH_NC_AUTH_FREE, 13u),
                    (int64_t)VMH_NC_AUTH_MAX_DELAY);
    }
    pthread_mutex_unlock(&srv->acc_lock);
    if (!delay)
        return;
    log_warn("netconf", "%u failed logins from %s: the login of '%s' waits %" PRId64 " ms",
             failures, host, user ? user : "?", delay);
    for (int64_t end = now + delay; vmh_time_mono_ms() < end && !stopping;) {
        g_usleep(50000);
        pthread_mutex_lock(&srv->acc_lock);
        stopping = srv->stopping;
        pthread_mutex_unlock(&srv->acc_lock);
    }
}

static void
vmh_nc_auth_result(struct vmh_nc_server *srv, const char *host, bool ok)
{
    struct vmh_nc_auth_peer *p;
    int64_t now = vmh_time_mono_ms();

    if (!host)
        return;
    pthread_mutex_lock(&srv->acc_lock);
    if (ok) {
        g_hash_table_remove(srv->auth_peers, host);
    } else {
        p = g_hash_table_lookup(srv->auth_peers, host);
        if (!p && g_hash_table_size(srv->auth_peers) >= VMH_NC_AUTH_PEERS)
            vmh_nc_auth_forget_old_locked(srv, now);
        if (!p && g_hash_table_size(srv->auth_peers) < VMH_NC_AUTH_PEERS) {
            p = g_new0(struct vmh_nc_auth_peer, 1);
            g_hash_table_insert(srv->auth_peers, g_strdup(host), p);
        }
        if (p) {
            if (now - p->last_ms > VMH_NC_AUTH_FORGET)
                p->failures = 0;
            p->failures++;
            p->last_ms = now;
        }
    }
    pthread_mutex_unlock(&srv->acc_lock);
}

/* What the login in this acceptor thread authenticated with (a session's
 * cred), set by the callbacks below. */
static __thread char *vmh_nc_login_cred;

/* Only configured users: libnetconf2 would otherwise try the system's. */
static int
vmh_nc_passwd_cb(const struct nc_session *session, const char *password, void *data)
{
    struct vmh_nc_server *srv = data;
    const char *name = nc_session_get_username(session);
    const char *host = nc_session_get_host(session);
    const struct vmh_nc_user *u;
    struct crypt_data *cd = calloc(1, sizeof *cd);
    int rc = 1;

    vmh_nc_auth_throttle(srv, host, name);
    pthread_rwlock_rdlock(&srv->users_lock);
    u = vmh_nc_user_find(srv, name);
    if (u && u->hash && cd) {
        const char *h = crypt_r(password, u->hash, cd);

        rc = !(h && h[0] != '*' && !strcmp(h, u->hash));
        if (!rc) {
            g_free(vmh_nc_login_cred);
            vmh_nc_login_cred = g_strdup_printf("password %s", u->hash);
        }
    }
    pthread_rwlock_unlock(&srv->users_lock);
    free(cd);
    vmh_nc_auth_result(srv, host, !rc);
    if (rc)
        log_warn("netconf", "password of '%s' from %s refused%s", name ? name : "?",
                 host ? host : "?", u ? "" : " (no such NETCONF user)");
    return rc;
}

static int
vmh_nc_pubkey_cb(const struct nc_session *session, ssh_key key, void *data)
{
    struct vmh_nc_server *srv = data;
    const char *name = nc_session_get_username(session);
    const char *host = nc_session_get_host(session);
    const struct vmh_nc_user *u;
    int rc = 1;

    vmh_nc_auth_throttle(srv, host, name);
    pthread_rwlock_rdlock(&srv->users_lock);
    u = vmh_nc_user_find(srv, name);
    for (size_t i = 0; u && u->keys[i] && rc; i++) {
        char **parts = g_strsplit(u->keys[i], " ", 3);
        ssh_key k = NULL;

        if (parts[0] && parts[1] &&
            ssh_pki_import_pubkey_base64(parts[1], ssh_key_type_from_name(parts[0]), &k) ==
                SSH_OK &&
            !ssh_key_cmp(k, key, SSH_KEY_CMP_PUBLIC)) {
            rc = 0;
            g_free(vmh_nc_login_cred);
            vmh_nc_login_cred = vmh_nc_key_cred(u->keys[i]);
        }
        ssh_key_free(k);
        g_strfreev(parts);
    }
    pthread_rwlock_unlock(&srv->users_lock);
    vmh_nc_auth_result(srv, host, !rc);
    if (rc)
        log_warn("netconf", "public key of '%s' from %s refused%s", name ? name : "?",
                 host ? host : "?", u ? "" : " (no such NETCONF user)");
    return rc;
}

/* --- sessions --- */

static void
vmh_nc_wake(struct vmh_nc_server *srv)
{
    uint64_t one = 1;

    if (write(srv->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        log_err("netconf", "cannot wake the poller: %s", strerror(errno));
}

/* Under srv->lock: make sure a worker passes over s soon. */
void
vmh_nc_schedule_locked(struct vmh_nc_server *srv, struct vmh_nc_session *s)
{
    s->scheduled = true;
    if (s->busy)
        return; /* its worker looks again before letting it go */
    s->busy = true;
    g_thread_pool_push(srv->workers, s, NULL);
    vmh_nc_wake(srv); /* take its descriptor out of the poll set */
}

static void
vmh_nc_session_free(struct vmh_nc_session *s)
{
    struct vmh_nc_msg *m;

    while ((m = g_queue_pop_head(&s->notifs)))
        vmh_nc_msg_unref(m);
    if (s->ps) {
        nc_ps_del_session(s->ps, s->nc);
        nc_ps_free(s->ps);
    }
    nc_session_free(s->nc, NULL);
    if (s->own_fd)
        close(s->fd);
    lyd_free_all(s->filter_tree);
    free(s->filter_xpath);
    free(s->user);
    free(s->transport);
    g_free(s->cred);
    free(s);
}

static void
vmh_nc_session_end(struct vmh_nc_session *s)
{
    struct vmh_nc_server *srv = s->srv;
    NC_SESSION_TERM_REASON why = nc_session_get_term_reason(s->nc);
    const char *closed_by_us;

    pthread_mutex_lock(&srv->lock);
    g_hash_table_remove(srv->sessions, GUINT_TO_POINTER(s->id));
    if (why != NC_SESSION_TERM_CLOSED && why != NC_SESSION_TERM_KILLED)
        srv->dropped_sessions++;
    closed_by_us = s->killed_by ? NULL : s->close_why; /* a kill is logged as one */
    pthread_mutex_unlock(&srv->lock);
    vmh_ds_unlock_session(srv->ds, s->id);
    log_info("netconf", "session %u of '%s' ended (%s%s)", s->id, s->user,
             closed_by_us                    ? "closed by the server: "
             : why == NC_SESSION_TERM_CLOSED ? "closed"
             : why == NC_SESSION_TERM_KILLED ? "killed"
                                             : "dropped",
             closed_by_us ? closed_by_us : "");
    vmh_nc_session_free(s);
}

static void
vmh_nc_send_notifs(struct vmh_nc_session *s)
{
    struct vmh_nc_server *srv = s->srv;
    struct vmh_nc_msg *m;

    for (;;) {
        struct nc_server_notif *n;
        NC_MSG_TYPE r;

        pthread_mutex_lock(&srv->lock);
        m = g_queue_pop_head(&s->notifs);
        pthread_mutex_unlock(&srv->lock);
        if (!m)
            return;
        if (nc_session_get_status(s->nc) == NC_STATUS_RUNNING) {
            n = nc_server_notif_new(m->tree, m->event_time, NC_PARAMTYPE_CONST);
            r = n ? nc_server_notif_send(s->nc, n, VMH_NC_NOTIF_TIMEOUT) : NC_MSG_ERROR;
            nc_server_notif_free(n);
            if (r == NC_MSG_NOTIF) {
                s->out_notifications++;
                pthread_mutex_lock(&srv->lock);
                srv->out_notifications++;
                pthread_mutex_unlock(&srv->lock);
                if (m->tree && strcmp(LYD_NAME(m->tree), "replayComplete") &&
                    strcmp(LYD_NAME(m->tree), "notificationComplete"))
                    vmh_engine_count(srv->engine, VMH_STAT_NOTIFICATIONS_SENT, 1);
            } else {
                log_warn("netconf", "session %u: cannot send a notification", s->id);
            }
        }
        if (m->complete)
            nc_session_dec_notif_status(s->nc);
        vmh_nc_msg_unref(m);
    }
}

/* The client's next request must not wait for our delayed ACK.  A client
 * that leaves Nagle's algorithm on (paramiko, hence ncclient) sends its
 * SSH window adjustments while reading a long reply; once the reply is
 * out, the server has nothing to send that would carry the ACK of the
 * last one, the kernel delays it (40 ms), and Nagle holds the client's
 * next RPC until it comes: a full get through ncclient took ~40 ms more
 * than the work.  Quick-ACK mode, asked for once the session is quiet,
 * acknowledges what came in and what comes next at once. */
static void
vmh_nc_quickack(struct vmh_nc_session *s)
{
    int one = 1;

    if (s->fd >= 0 && !s->own_fd) /* an SSH session's TCP socket */
        setsockopt(s->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

/* A worker's pass over one session: its notifications, then every RPC it
 * has sent, until it is quiet. */
static void
vmh_nc_worker(gpointer data, gpointer user_data)
{
    struct vmh_nc_session *s = data;
    struct vmh_nc_server *srv = s->srv;

    for (;;) {
        bool closing;
        int r;

        pthread_mutex_lock(&srv->lock);
        s->scheduled = false;
        closing = s->close_why != NULL;
        pthread_mutex_unlock(&srv->lock);

        if (!closing)
            vmh_nc_send_notifs(s);
        do {
            r = closing ? 0 : nc_ps_poll(s->ps, 0, NULL);
            if (r & NC_PSPOLL_RPC) {
                s->in_rpcs++;
                if (r & NC_PSPOLL_BAD_RPC)
                    s->in_bad_rpcs++;
                if (r & NC_PSPOLL_REPLY_ERROR)
                    s->out_rpc_errors++;
                pthread_mutex_lock(&srv->lock);
                srv->in_rpcs++;
                srv->in_bad_rpcs += !!(r & NC_PSPOLL_BAD_RPC);
                srv->out_rpc_errors += !!(r & NC_PSPOLL_REPLY_ERROR);
                /* the RPC may have been the edit that closes it */
                closing = s->close_why != NULL;
                pthread_mutex_unlock(&srv->lock);
            }
        } while ((r & (NC_PSPOLL_RPC | NC_PSPOLL_BAD_RPC | NC_PSPOLL_SSH_MSG)) &&
                 !(r & (NC_PSPOLL_SESSION_TERM | NC_PSPOLL_ERROR)) && !closing);
        if (closing) {
            /* Here, in the one thread that does the session's I/O. */
            nc_session_set_term_reason(s->nc, s->killed_by ? NC_SESSION_TERM_KILLED
                                                           : NC_SESSION_TERM_OTHER);
            if (s->killed_by)
                nc_session_set_killed_by(s->nc, s->killed_by);
            nc_session_set_status(s->nc, NC_STATUS_INVALID);
        }
        vmh_nc_quickack(s);
        if ((r & (NC_PSPOLL_SESSION_TERM | NC_PSPOLL_NOSESSIONS)) ||
            nc_session_get_status(s->nc) != NC_STATUS_RUNNING) {
            vmh_nc_session_end(s);
            return;
        }
        pthread_mutex_lock(&srv->lock);
        if (!s->scheduled && g_queue_is_empty(&s->notifs)) {
            s->busy = false;
            pthread_mutex_unlock(&srv->lock);
            vmh_nc_wake(srv);
            return;
        }
        pthread_mutex_unlock(&srv->lock);
    }
}

/* libnetconf2 keeps an SSH session's socket to itself; find it by the
 * peer's address so the poller can watch it. */
static int
vmh_nc_find_ssh_fd(struct vmh_nc_server *srv, const char *host, uint16_t port)
{
    GArray *ports = g_array_new(FALSE, FALSE, sizeof(uint16_t));
    DIR *d;
    struct dirent *e;
    int found = -1;

    pthread_mutex_lock(&srv->acc_lock);
    for (guint i = 0; i < srv->endpoints->len; i++) {
        const struct vmh_nc_endpoint *ep = g_ptr_array_index(srv->endpoints, i);

        if (ep->ssh)
            g_array_append_val(ports, ep->port);
    }
    pthread_mutex_unlock(&srv->acc_lock);
    d = opendir("/proc/self/fd");
    if (!d) {
        g_array_free(ports, TRUE);
        return -1;
    }
    while ((e = readdir(d)) && found < 0) {
        struct sockaddr_storage peer, local;
        socklen_t plen = sizeof peer, llen = sizeof local;
        char addr[INET6_ADDRSTRLEN] = "";
        uint16_t pport, lport;
        int fd = atoi(e->d_name);
        bool ours = false;

        if (e->d_name[0] == '.' || getpeername(fd, (struct sockaddr *)&peer, &plen) < 0 ||
            getsockname(fd, (struct sockaddr *)&local, &llen) < 0)
            continue;
        if (peer.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&peer)->sin_addr, addr, sizeof addr);
            pport = ntohs(((struct sockaddr_in *)&peer)->sin_port);
            lport = ntohs(((struct sockaddr_in *)&local)->sin_port);
        } else if (peer.ss_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&peer)->sin6_addr, addr, sizeof addr);
            pport = ntohs(((struct sockaddr_in6 *)&peer)->sin6_port);
            lport = ntohs(((struct sockaddr_in6 *)&local)->sin6_port);
        } else {
            continue;
        }
        for (guint i = 0; i < ports->len; i++)
            ours |= g_array_index(ports, uint16_t, i) == lport;
        if (ours && pport == port && host && !strcmp(addr, host))
            found = fd;
    }
    closedir(d);
    g_array_free(ports, TRUE);
    return found;
}

/* user: NULL for the transport's (SSH); nc_accept_inout() ignores the
 * name it is given, so a UNIX socket's user is passed here.  own_fd: the
 * descriptor is ours to close (libnetconf2 leaves those of
 * nc_accept_inout() open).  cred: what the login authenticated with
 * (taken over), NULL for a UNIX socket's peer.  The user is checked and
 * the session filed under users_lock, so that a configuration change
 * either sees the session (vmh_nc_sessions_recheck) or is seen here. */
static int
vmh_nc_session_add(struct vmh_nc_server *srv, struct nc_session *nc, int fd, const char *transport,
                   const char *user, bool own_fd, char *cred)
{
    struct vmh_nc_session *s = calloc(1, sizeof *s);
    const struct vmh_nc_user *u;
    const char *why = NULL;

    if (!user)
        user = nc_session_get_username(nc);
    pthread_rwlock_rdlock(&srv->users_lock);
    u = vmh_nc_user_find(srv, user);
    if (!u)
        why = "is not a configured NETCONF user";
    else if (!vmh_nc_cred_valid(u, cred))
        why = "logged in with a key or password removed meanwhile";
    if (!s || why) {
        pthread_rwlock_unlock(&srv->users_lock);
        log_warn("netconf", "'%s' %s: session refused", user ? user : "?",
                 why ? why : "cannot be filed");
        free(s);
        g_free(cred);
        nc_session_free(nc, NULL);
        if (own_fd)
            close(fd);
        return -1;
    }
    s->own_fd = own_fd;
    s->srv = srv;
    s->nc = nc;
    s->fd = fd;
    s->id = nc_session_get_id(nc);
    s->user = strdup(user);
    s->admin = u->admin;
    s->cred = cred;
    s->transport = strdup(transport);
    s->login_ms = vmh_time_real_ms();
    g_queue_init(&s->notifs);
    s->ps = nc_ps_new();
    nc_ps_add_session(s->ps, nc);
    nc_session_set_data(nc, s);
    /* Before it is scheduled: from then on a worker may end and free it. */
    log_info("netconf", "session %u: '%s' logged in over %s%s", s->id, s->user, transport,
             fd < 0 ? " (descriptor unknown: polled)" : "");
    pthread_mutex_lock(&srv->lock);
    g_hash_table_insert(srv->sessions, GUINT_TO_POINTER(s->id), s);
    srv->in_sessions++;
    /* The client may have sent its first RPC with its hello. */
    vmh_nc_schedule_locked(srv, s);
    pthread_mutex_unlock(&srv->lock);
    pthread_rwlock_unlock(&srv->users_lock);
    return 0;
}

/* --- the poller --- */

static void *
vmh_nc_poller(void *data)
{
    struct vmh_nc_server *srv = data;
    GArray *pfds = g_array_new(FALSE, FALSE, sizeof(struct pollfd));
    GArray *owners = g_array_new(FALSE, FALSE, sizeof(uint32_t)); /* session ids */

    for (;;) {
        GHashTableIter it;
        gpointer v;
        bool fallback = false;
        struct pollfd wake = {.fd = srv->wake_fd, .events = POLLIN};
        int n;

        uint32_t none = 0;

        g_array_set_size(pfds, 0);
        g_array_set_size(owners, 0);
        g_array_append_val(pfds, wake);
        g_array_append_val(owners, none);
        pthread_mutex_lock(&srv->lock);
        if (srv->stopping) {
            pthread_mutex_unlock(&srv->lock);
            break;
        }
        g_hash_table_iter_init(&it, srv->sessions);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
            struct vmh_nc_session *s = v;
            struct pollfd p = {.fd = s->fd, .events = POLLIN};

            if (s->busy)
                continue;
            if (s->fd < 0) {
                fallback = true;
                continue;
            }
            g_array_append_val(pfds, p);
            g_array_append_val(owners, s->id);
        }
        pthread_mutex_unlock(&srv->lock);

        n = poll((struct pollfd *)pfds->data, pfds->len, fallback ? VMH_NC_FALLBACK_POLL : -1);
        if (n < 0 && errno != EINTR) {
            log_err("netconf", "poll: %s", strerror(errno));
            break;
        }
        if (g_array_index(pfds, struct pollfd, 0).revents) {
            uint64_t cnt;

            if (read(srv->wake_fd, &cnt, sizeof cnt) < 0 && errno != EAGAIN)
                log_err("netconf", "wake-up: %s", strerror(errno));
        }
        pthread_mutex_lock(&srv->lock);
        for (guint i = 1; i < pfds->len; i++) {
            /* By id: the session may have ended while the lock was dropped. */
            struct vmh_nc_session *s = g_hash_table_lookup(
                srv->sessions, GUINT_TO_POINTER(g_array_index(owners, uint32_t, i)));

            if (g_array_index(pfds, struct pollfd, i).revents && s && !s->busy &&
                s->fd == g_array_index(pfds, struct pollfd, i).fd)
                vmh_nc_schedule_locked(srv, s);
        }
        if (fallback) {
            g_hash_table_iter_init(&it, srv->sessions);
            while (g_hash_table_iter_next(&it, NULL, &v)) {
                struct vmh_nc_session *s = v;

                if (s->fd < 0 && !s->busy)
                    vmh_nc_schedule_locked(srv, s);
            }
        }
        pthread_mutex_unlock(&srv->lock);
    }
    g_array_free(pfds, TRUE);
    g_array_free(owners, TRUE);
    return NULL;
}

/* --- SSH acceptors --- */

static __thread bool vmh_nc_in_handshake;
static __thread bool vmh_nc_holds_gate; /* this acceptor holds acc_gate for reading */
static void *vmh_nc_acceptor(void *data);

static void
vmh_nc_spawn_acceptor_locked(struct vmh_nc_server *srv)
{
    pthread_t t;

    if (srv->acc_total >= VMH_NC_MAX_ACCEPTORS)
        return;
    if (pthread_create(&t, NULL, vmh_nc_acceptor, srv) != 0) {
        log_err("netconf", "cannot start an SSH acceptor: %s", strerror(errno));
        return;
    }
    pthread_detach(t);
    srv->acc_total++;
    srv->acc_idle++;
}

/* Runs in the accepting thread right after the TCP accept: the host key
 * path is the key's name; and if no other acceptor waits, one is added. */
static int
vmh_nc_hostkey_cb(const char *name, void *data, char **privkey_path, char **privkey_data,
                  NC_SSH_KEY_TYPE *privkey_type)
{
    struct vmh_nc_server *srv = data;

    *privkey_path = strdup(name);
    *privkey_data = NULL;
    /* libnetconf2's own lock covers the rest of the SSH handshake (a
     * change to its endpoints waits for it); the NETCONF hello after it,
     * up to VMH_NC_HELLO_TIMEOUT, need not hold a change up. */
    if (vmh_nc_holds_gate) {
        vmh_nc_holds_gate = false;
        pthread_rwlock_unlock(&srv->acc_gate);
    }
    if (!vmh_nc_in_handshake) {
        vmh_nc_in_handshake = true;
        pthread_mutex_lock(&srv->acc_lock);
        srv->acc_idle--;
        if (srv->acc_idle <= 0 && !srv->stopping)
            vmh_nc_spawn_acceptor_locked(srv);
        pthread_mutex_unlock(&srv->acc_lock);
    }
    return *privkey_path ? 0 : 1;
}

static void *
vmh_nc_acceptor(void *data)
{
    struct vmh_nc_server *srv = data;
    bool quit = false;

    while (!quit) {
        struct nc_session *nc = NULL;
        NC_MSG_TYPE r = NC_MSG_WOULDBLOCK;
        int fd = -1, n_ssh;

        pthread_rwlock_rdlock(&srv->acc_gate);
        pthread_mutex_lock(&srv->acc_lock);
        n_ssh = srv->n_ssh_endpoints; /* cannot change while the gate is held */
        pthread_mutex_unlock(&srv->acc_lock);
        if (n_ssh > 0) {
            g_free(vmh_nc_login_cred);
            vmh_nc_login_cred = NULL;
            vmh_nc_holds_gate = true; /* until the host key callback, or the end */
            r = nc_accept(VMH_NC_ACCEPT_WAIT, &nc);
            if (vmh_nc_holds_gate)
                pthread_rwlock_unlock(&srv->acc_gate);
            vmh_nc_holds_gate = false;
            if (r == NC_MSG_HELLO)
                fd = vmh_nc_find_ssh_fd(srv, nc_session_get_host(nc), nc_session_get_port(nc));
        } else {
            /* nc_accept() would fail at once: wait for an SSH endpoint */
            pthread_rwlock_unlock(&srv->acc_gate);
            pthread_mutex_lock(&srv->acc_lock);
            while (!srv->n_ssh_endpoints && !srv->stopping)
                pthread_cond_wait(&srv->acc_cond, &srv->acc_lock);
            pthread_mutex_unlock(&srv->acc_lock);
        }
        if (r == NC_MSG_HELLO) {
            vmh_nc_session_add(srv, nc, fd, "SSH", NULL, false, vmh_nc_login_cred);
            vmh_nc_login_cred = NULL;
        } else if (r == NC_MSG_BAD_HELLO) {
            pthread_mutex_lock(&srv->lock);
            srv->in_bad_hellos++;
            pthread_mutex_unlock(&srv->lock);
        }
        pthread_mutex_lock(&srv->acc_lock);
        if (vmh_nc_in_handshake) {
            vmh_nc_in_handshake = false;
            srv->acc_idle++;
        }
        /* Keep one idle acceptor; the others were extra for a busy time. */
        if (srv->stopping || srv->acc_idle > 1) {
            srv->acc_idle--;
            srv->acc_total--;
            quit = true;
            pthread_cond_broadcast(&srv->acc_cond);
        }
        pthread_mutex_unlock(&srv->acc_lock);
    }
    g_free(vmh_nc_login_cred);
    vmh_nc_login_cred = NULL;
    nc_thread_destroy();
    return NULL;
}

/* --- UNIX endpoints --- */

struct vmh_nc_unix_conn {
    struct vmh_nc_server *srv;
    int fd;
};

static void *
vmh_nc_unix_handshake(void *data)
{
    struct vmh_nc_unix_conn *c = data;
    struct vmh_nc_server *srv = c->srv;
    struct ucred cred;
    socklen_t len = sizeof cred;
    struct passwd pw, *pwp = NULL;
    char buf[4096];
    struct nc_session *nc = NULL;
    bool admin;

    if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
        getpwuid_r(cred.uid, &pw, buf, sizeof buf, &pwp) != 0 || !pwp) {
        log_warn("netconf", "UNIX socket peer without a user name: refused");
        close(c->fd);
    } else if (!vmh_nc_user_role(srv, pw.pw_name, &admin)) {
        log_warn("netconf", "local user '%s' is not a configured NETCONF user: refused",
                 pw.pw_name);
        close(c->fd);
    } else {
        NC_MSG_TYPE r = nc_accept_inout(c->fd, c->fd, pw.pw_name, &nc);

        if (r == NC_MSG_HELLO) {
            vmh_nc_session_add(srv, nc, c->fd, "UNIX socket", pw.pw_name, true, NULL);
        } else {
            pthread_mutex_lock(&srv->lock);
            srv->in_bad_hellos += r == NC_MSG_BAD_HELLO;
            pthread_mutex_unlock(&srv->lock);
            nc_session_free(nc, NULL);
            close(c->fd);
        }
    }
    pthread_mutex_lock(&srv->acc_lock);
    srv->unix_handshakes--;
    pthread_cond_broadcast(&srv->acc_cond);
    pthread_mutex_unlock(&srv->acc_lock);
    free(c);
    nc_thread_destroy();
    return NULL;
}

static void
vmh_nc_unix_accept(struct vmh_nc_server *srv, int lfd)
{
    struct vmh_nc_unix_conn *c;
    pthread_t t;
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

    if (fd < 0)
        return;
    c = malloc(sizeof *c);
    c->srv = srv;
    c->fd = fd;
    pthread_mutex_lock(&srv->acc_lock);
    srv->unix_handshakes++;
    pthread_mutex_unlock(&srv->acc_lock);
    if (pthread_create(&t, NULL, vmh_nc_unix_handshake, c) != 0) {
        close(fd);
        free(c);
        pthread_mutex_lock(&srv->acc_lock);
        srv->unix_handshakes--;
        pthread_mutex_unlock(&srv->acc_lock);
        return;
    }
    pthread_detach(t);
}

/* Polls the sockets of the UNIX endpoints of the moment: each pass takes
 * the set anew and says so (unix_seen), so that a socket removed from the
 * list is closed only once this thread no longer polls it. */
static void *
vmh_nc_unix_listener(void *data)
{
    struct vmh_nc_server *srv = data;
    GArray *p = g_array_new(FALSE, FALSE, sizeof(struct pollfd));

    for (;;) {
        struct pollfd wake = {.fd = srv->unix_wake_fd, .events = POLLIN};
        uint64_t cnt;

        g_array_set_size(p, 0);
        g_array_append_val(p, wake);
        pthread_mutex_lock(&srv->acc_lock);
        if (srv->stopping) {
            pthread_mutex_unlock(&srv->acc_lock);
            break;
        }
        for (guint i = 0; i < srv->endpoints->len; i++) {
            const struct vmh_nc_endpoint *e = g_ptr_array_index(srv->endpoints, i);
            struct pollfd l = {.fd = e->fd, .events = POLLIN};

            if (!e->ssh && e->fd >= 0)
                g_array_append_val(p, l);
        }
        srv->unix_seen = srv->unix_gen;
        pthread_cond_broadcast(&srv->acc_cond);
        pthread_mutex_unlock(&srv->acc_lock);

        if (poll((struct pollfd *)p->data, p->len, -1) < 0 && errno != EINTR) {
            log_err("netconf", "UNIX listener: poll: %s", strerror(errno));
            break;
        }
        if (g_array_index(p, struct pollfd, 0).revents &&
            read(srv->unix_wake_fd, &cnt, sizeof cnt) < 0 && errno != EAGAIN)
            log_err("netconf", "UNIX listener wake-up: %s", strerror(errno));
        for (guint i = 1; i < p->len; i++)
            if (g_array_index(p, struct pollfd, i).revents & POLLIN)
                vmh_nc_unix_accept(srv, g_array_index(p, struct pollfd, i).fd);
    }
    g_array_free(p, TRUE);
    return NULL;
}

/* Returns once the UNIX listener polls the sockets of srv->endpoints as
 * they are now (and no longer any other). */
static void
vmh_nc_unix_sync(struct vmh_nc_server *srv)
{
    uint64_t one = 1;

    if (!srv->unix_started)
        return;
    if (write(srv->unix_wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        log_err("netconf", "cannot wake the UNIX listener: %s", strerror(errno));
    pthread_mutex_lock(&srv->acc_lock);
    while (srv->unix_seen != srv->unix_gen && !srv->stopping)
        pthread_cond_wait(&srv->acc_cond, &srv->acc_lock);
    pthread_mutex_unlock(&srv->acc_lock);
}

/* --- endpoints ---
 * The listeners of agent/netconf, changed live by the configuration
 * transaction.  An endpoint is known by what it listens on (SSH: address
 * and port; UNIX: path): one that keeps it keeps its listener, even
 * renamed, with its host key or mode changed in place.  Any other is new:
 * prepare binds it (libnetconf2's own SSH listener, whose bind fails
 * cleanly and leaves the others alone; our own UNIX socket), and apply
 * makes the acceptors take it and closes the listeners of those gone.
 * libnetconf2's listeners change only while acc_gate is held for writing,
 * from prepare to apply or abort: no nc_accept() runs meanwhile, so what
 * prepare bound accepts from apply on, and a removed endpoint stops
 * listening before the edit is answered.  Sessions that came in through a
 * removed endpoint stay: they are the users', not the listener's (the
 * edit that moves a port may well come through it). */

static void
vmh_nc_endpoint_free(gpointer p)
{
    struct vmh_nc_endpoint *e = p;

    g_free(e->name);
    g_free(e->nc_name);
    g_free(e->address);
    g_free(e->host_key);
    g_free(e->path);
    g_free(e);
}

/* The endpoints configured in config, nothing bound. */
static GPtrArray *
vmh_nc_endpoints_parse(const struct lyd_node *config)
{
    GPtrArray *want = g_ptr_array_new_with_free_func(vmh_nc_endpoint_free);
    struct lyd_node *agent = vmh_nc_top(config, VHA_MOD, "agent"), *nc = NULL, *n;

    if (agent)
        nc = vmh_tree_child(agent, "netconf");
    LY_LIST_FOR(nc ? lyd_child(nc) : NULL, n)
    {
        struct vmh_nc_endpoint *e;
        const char *v;

        if (strcmp(n->schema->name, "ssh-endpoint") && strcmp(n->schema->name, "unix-endpoint"))
            continue;
        e = g_new0(struct vmh_nc_endpoint, 1);
        e->cfg = n;
        e->fd = -1;
        e->name = g_strdup(vmh_tree_str(n, "name"));
        e->ssh = !strcmp(n->schema->name, "ssh-endpoint");
        if (e->ssh) {
            e->address = g_strdup((v = vmh_tree_str(n, "address")) ? v : "127.0.0.1");
            e->port = (uint16_t)atoi((v = vmh_tree_str(n, "port")) ? v : "830");
            e->host_key = g_strdup(vmh_tree_str(n, "host-key"));
        } else {
            e->path = g_strdup(vmh_tree_str(n, "path"));
            e->mode = (mode_t)strtoul((v = vmh_tree_str(n, "mode")) ? v : "0600", NULL, 8);
        }
        g_ptr_array_add(want, e);
    }
    return want;
}

/* The live endpoint listening where w would. */
static struct vmh_nc_endpoint *
vmh_nc_endpoint_live(struct vmh_nc_server *srv, const struct vmh_nc_endpoint *w)
{
    for (guint i = 0; srv->endpoints && i < srv->endpoints->len; i++) {
        struct vmh_nc_endpoint *e = g_ptr_array_index(srv->endpoints, i);

        if (e->ssh == w->ssh && (e->ssh ? !strcmp(e->address, w->address) && e->port == w->port
                                        : !strcmp(e->path, w->path)))
            return e;
    }
    return NULL;
}

/* The data path of an endpoint's leaf, for an error (g_free). */
static char *
vmh_nc_endpoint_path(const struct vmh_nc_endpoint *e, const char *leaf)
{
    const struct lyd_node *n = vmh_tree_child(e->cfg, leaf);
    char *path = lyd_path(n ? n : e->cfg, LYD_PATH_STD, NULL, 0);
    char *copy = g_strdup(path);

    free(path);
    return copy;
}

static void
vmh_nc_refuse_at(struct vmh_txn_change *c, enum vmh_txn_refusal refusal,
                 const struct vmh_nc_endpoint *e, const char *leaf, const char *message)
{
    char *path = vmh_nc_endpoint_path(e, leaf);

    vmh_txn_refuse(c, refusal, path, "%s", message);
    g_free(path);
}

/* What validation can tell: every new host key is a private key. */
static int
vmh_nc_endpoints_check(struct vmh_nc_server *srv, struct vmh_txn_change *c, GPtrArray *want)
{
    for (guint i = 0; i < want->len; i++) {
        const struct vmh_nc_endpoint *w = g_ptr_array_index(want, i);
        const struct vmh_nc_endpoint *live = w->ssh ? vmh_nc_endpoint_live(srv, w) : NULL;
        ssh_key k = NULL;
        char *msg;

        if (!w->ssh || (live && !strcmp(live->host_key, w->host_key)))
            continue;
        if (ssh_pki_import_privkey_file(w->host_key, NULL, NULL, NULL, &k) == SSH_OK) {
            ssh_key_free(k);
            continue;
        }
        msg = g_strdup_printf("ssh-endpoint %s: host key %s is not a readable private key%s%s",
                              w->name, w->host_key, access(w->host_key, R_OK) < 0 ? ": " : "",
                              access(w->host_key, R_OK) < 0 ? strerror(errno) : "");
        vmh_nc_refuse_at(c, VMH_TXN_INVALID, w, "host-key", msg);
        g_free(msg);
        return -1;
    }
    return 0;
}

/* Whether address port can be bound for listening, as libnetconf2 binds
 * it (SO_REUSEADDR): 0 or the errno.  libnetconf2 does not say why its
 * bind failed; this does. */
static int
vmh_nc_probe_inet(const char *address, uint16_t port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    bool v6 = strchr(address, ':') != NULL;
    int fd, one = 1, err = 0;

    if (v6 ? inet_pton(AF_INET6, address, &sin6.sin6_addr) != 1
           : inet_pton(AF_INET, address, &sin.sin_addr) != 1)
        return EINVAL;
    fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, v6 ? (struct sockaddr *)&sin6 : (struct sockaddr *)&sin,
             v6 ? sizeof sin6 : sizeof sin) < 0)
        err = errno;
    close(fd);
    return err;
}

/* Whether two addresses overlap for a bind (equal, or either a wildcard). */
static bool
vmh_nc_addr_overlap(const char *a, const char *b)
{
    return !strcmp(a, b) || !strcmp(a, "0.0.0.0") || !strcmp(b, "0.0.0.0") || !strcmp(a, "::") ||
           !strcmp(b, "::");
}

static int
vmh_nc_ssh_bind(struct vmh_nc_server *srv, struct vmh_txn_change *c, struct vmh_nc_endpoint *w)
{
    int err = vmh_nc_probe_inet(w->address, w->port);
    char *msg = NULL;

    if (!err) {
        w->nc_name = g_strdup_printf("%s#%u", w->name, ++srv->endpt_seq);
        if (nc_server_add_endpt(w->nc_name, NC_TI_LIBSSH) == 0 &&
            nc_server_ssh_endpt_add_hostkey(w->nc_name, w->host_key, -1) == 0 &&
            nc_server_ssh_endpt_set_auth_methods(w->nc_name, NC_SSH_AUTH_PUBLICKEY |
                                                                 NC_SSH_AUTH_PASSWORD) == 0 &&
            nc_server_ssh_endpt_set_auth_timeout(w->nc_name, VMH_NC_AUTH_TIMEOUT) == 0 &&
            nc_server_ssh_endpt_set_auth_attempts(w->nc_name, 3) == 0 &&
            nc_server_endpt_set_address(w->nc_name, w->address) == 0 &&
            nc_server_endpt_set_port(w->nc_name, w->port) == 0)
            return 0;
        nc_server_del_endpt(w->nc_name, 0);
        g_clear_pointer(&w->nc_name, g_free);
        err = EADDRINUSE; /* taken since the probe, most likely */
    }
    if (err == EADDRINUSE) {
        const struct vmh_nc_endpoint *holder = NULL;

        for (guint i = 0; srv->endpoints && i < srv->endpoints->len && !holder; i++) {
            const struct vmh_nc_endpoint *e = g_ptr_array_index(srv->endpoints, i);

            if (e->ssh && e->port == w->port && vmh_nc_addr_overlap(e->address, w->address))
                holder = e;
        }
        msg = g_strdup_printf(
            "ssh-endpoint %s: cannot listen on %s port %u: the address is in use%s%s%s", w->name,
            w->address, w->port, holder ? " by ssh-endpoint " : "", holder ? holder->name : "",
            holder ? ", which listens there until this change is applied: free the port in "
                     "one edit, take it in the next"
                   : "");
        vmh_nc_refuse_at(c, VMH_TXN_IN_USE, w, "port", msg);
    } else if (err == EADDRNOTAVAIL || err == EINVAL) {
        msg = g_strdup_printf("ssh-endpoint %s: cannot listen on %s port %u: %s is not an "
                              "address of this host",
                              w->name, w->address, w->port, w->address);
        vmh_nc_refuse_at(c, VMH_TXN_INVALID, w, "address", msg);
    } else {
        msg = g_strdup_printf("ssh-endpoint %s: cannot listen on %s port %u: %s", w->name,
                              w->address, w->port, strerror(err));
        vmh_nc_refuse_at(c, VMH_TXN_FAILED, w, "port", msg);
    }
    g_free(msg);
    return -1;
}

/* Whether a server answers on the UNIX socket at sa. */
static bool
vmh_nc_unix_live(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    bool live;

    if (fd < 0)
        return true; /* cannot tell: not taken over */
    live = connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0 ||
           (errno != ECONNREFUSED && errno != ENOENT);
    close(fd);
    return live;
}

static int
vmh_nc_unix_bind(struct vmh_txn_change *c, struct vmh_nc_endpoint *w)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    char *msg = NULL;
    int fd;

    if (strlen(w->path) >= sizeof sa.sun_path) {
        msg = g_strdup_printf("unix-endpoint %s: path %s is too long", w->name, w->path);
        vmh_nc_refuse_at(c, VMH_TXN_INVALID, w, "path", msg);
        g_free(msg);
        return -1;
    }
    strcpy(sa.sun_path, w->path);
    if (lstat(w->path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            msg = g_strdup_printf("unix-endpoint %s: %s exists and is not a socket", w->name,
                                  w->path);
        else if (vmh_nc_unix_live(&sa))
            msg = g_strdup_printf("unix-endpoint %s: %s is the socket of a running server", w->name,
                                  w->path);
        if (msg) {
            vmh_nc_refuse_at(c, S_ISSOCK(st.st_mode) ? VMH_TXN_IN_USE : VMH_TXN_INVALID, w, "path",
                             msg);
            g_free(msg);
            return -1;
        }
        unlink(w->path); /* a server gone left it */
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    /* The permissions hold from the first instant the socket exists. */
    if (fd < 0 || fchmod(fd, w->mode) < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        chmod(w->path, w->mode) < 0 || listen(fd, 64) < 0 || stat(w->path, &st) < 0) {
        int err = errno;

        msg = g_strdup_printf("unix-endpoint %s: cannot listen on %s: %s", w->name, w->path,
                              strerror(err));
        vmh_nc_refuse_at(c, err == EADDRINUSE ? VMH_TXN_IN_USE : VMH_TXN_FAILED, w, "path", msg);
        g_free(msg);
        if (fd >= 0) {
            close(fd);
            if (err != EADDRINUSE)
                unlink(w->path);
        }
        return -1;
    }
    w->fd = fd;
    w->dev = st.st_dev;
    w->ino = st.st_ino;
    return 0;
}

/* Closes e's listener: libnetconf2's SSH endpoint (under acc_gate), or the
 * UNIX socket (the listener must not poll it) and its file. */
static void
vmh_nc_endpoint_close(struct vmh_nc_endpoint *e)
{
    struct stat st;

    if (e->nc_name) {
        nc_server_del_endpt(e->nc_name, 0);
        g_clear_pointer(&e->nc_name, g_free);
    }
    if (e->fd >= 0) {
        close(e->fd);
        e->fd = -1;
        /* not a socket put there since by someone else */
        if (lstat(e->path, &st) == 0 && st.st_dev == e->dev && st.st_ino == e->ino)
            unlink(e->path);
    }
}

/* Binds every endpoint of want that no live one already listens for
 * (w->from: the live one it takes over).  Takes acc_gate for writing when
 * an SSH endpoint changes (*gate), for apply or abort to release.  On
 * failure refuses the change, closes what it bound, releases the gate. */
static int
vmh_nc_endpoints_prepare(struct vmh_nc_server *srv, struct vmh_txn_change *c, GPtrArray *want,
                         bool *gate)
{
    bool ssh_change = false;
    guint i;
    int kept_ssh = 0;

    *gate = false;
    for (i = 0; i < want->len; i++) {
        struct vmh_nc_endpoint *w = g_ptr_array_index(want, i);

        w->from = vmh_nc_endpoint_live(srv, w);
        if (w->ssh && (!w->from || strcmp(w->from->host_key, w->host_key)))
            ssh_change = true;
        kept_ssh += w->ssh && w->from;
    }
    for (i = 0; srv->endpoints && i < srv->endpoints->len; i++) {
        const struct vmh_nc_endpoint *e = g_ptr_array_index(srv->endpoints, i);

        kept_ssh -= e->ssh;
    }
    if (ssh_change || kept_ssh != 0) { /* kept_ssh < 0: an SSH endpoint goes */
        pthread_rwlock_wrlock(&srv->acc_gate);
        *gate = true;
    }
    for (i = 0; i < want->len; i++) {
        struct vmh_nc_endpoint *w = g_ptr_array_index(want, i);

        if (!w->from && (w->ssh ? vmh_nc_ssh_bind(srv, c, w) : vmh_nc_unix_bind(c, w)) < 0)
            break;
    }
    if (i == want->len)
        return 0;
    while (i-- > 0) {
        struct vmh_nc_endpoint *w = g_ptr_array_index(want, i);

        if (!w->from)
            vmh_nc_endpoint_close(w);
    }
    if (*gate)
        pthread_rwlock_unlock(&srv->acc_gate);
    *gate = false;
    return -1;
}

static void
vmh_nc_endpoints_abort(struct vmh_nc_server *srv, GPtrArray *want, bool gate)
{
    for (guint i = 0; i < want->len; i++) {
        struct vmh_nc_endpoint *w = g_ptr_array_index(want, i);

        if (!w->from)
            vmh_nc_endpoint_close(w);
    }
    if (gate)
        pthread_rwlock_unlock(&srv->acc_gate);
}

static void
vmh_nc_endpoint_log(const struct vmh_nc_endpoint *e, const char *what)
{
    if (e->ssh)
        log_info("netconf", "ssh-endpoint %s %s %s port %u", e->name, what, e->address, e->port);
    else
        log_info("netconf", "unix-endpoint %s %s %s (mode %04o)", e->name, what, e->path,
                 (unsigned)e->mode);
}

/* Makes want (prepared, taken over) the endpoints: the acceptors take the
 * new listeners, the listeners of the endpoints gone are closed. */
static void
vmh_nc_endpoints_apply(struct vmh_nc_server *srv, GPtrArray *want, bool gate)
{
    GPtrArray *old = srv->endpoints, *gone = g_ptr_array_new();
    int n_ssh = 0;

    for (guint i = 0; i < want->len; i++) {
        struct vmh_nc_endpoint *w = g_ptr_array_index(want, i), *f = w->from;

        n_ssh += w->ssh;
        if (!f)
            continue;
        w->nc_name = g_steal_pointer(&f->nc_name);
        w->fd = f->fd;
        f->fd = -1;
        w->dev = f->dev;
        w->ino = f->ino;
        if (w->ssh && strcmp(f->host_key, w->host_key)) {
            /* acc_gate is held: the next handshake uses it */
            if (nc_server_ssh_endpt_del_hostkey(w->nc_name, NULL, -1) ||
                nc_server_ssh_endpt_add_hostkey(w->nc_name, w->host_key, -1))
                log_err("netconf", "ssh-endpoint %s: libnetconf2 refused the host key %s", w->name,
                        w->host_key);
            else
                log_info("netconf", "ssh-endpoint %s: host key %s", w->name, w->host_key);
        }
        if (!w->ssh && f->mode != w->mode) {
            if (chmod(w->path, w->mode) < 0)
                log_err("netconf", "unix-endpoint %s: cannot set the mode of %s: %s", w->name,
                        w->path, strerror(errno));
            else
                vmh_nc_endpoint_log(w, "now listening on");
        }
        if (strcmp(f->name, w->name))
            log_info("netconf", "%s-endpoint %s is now named %s", w->ssh ? "ssh" : "unix", f->name,
                     w->name);
    }
    for (guint i = 0; old && i < old->len; i++) {
        struct vmh_nc_endpoint *e = g_ptr_array_index(old, i);

        if (e->nc_name || e->fd >= 0)
            g_ptr_array_add(gone, e);
    }
    pthread_mutex_lock(&srv->acc_lock);
    srv->endpoints = want;
    srv->n_ssh_endpoints = n_ssh;
    srv->unix_gen++;
    pthread_cond_broadcast(&srv->acc_cond);
    pthread_mutex_unlock(&srv->acc_lock);
    for (guint i = 0; i < gone->len; i++) {
        struct vmh_nc_endpoint *e = g_ptr_array_index(gone, i);

        if (e->ssh) {
            vmh_nc_endpoint_close(e);
            vmh_nc_endpoint_log(e, "no longer listening on");
        }
    }
    if (gate)
        pthread_rwlock_unlock(&srv->acc_gate);
    vmh_nc_unix_sync(srv);
    for (guint i = 0; i < gone->len; i++) {
        struct vmh_nc_endpoint *e = g_ptr_array_index(gone, i);

        if (!e->ssh) {
            vmh_nc_endpoint_close(e);
            vmh_nc_endpoint_log(e, "no longer listening on");
        }
    }
    for (guint i = 0; i < want->len; i++) {
        struct vmh_nc_endpoint *w = g_ptr_array_index(want, i);

        if (!w->from)
            vmh_nc_endpoint_log(w, "listening on");
        w->from = NULL;
        w->cfg = NULL;
    }
    g_ptr_array_free(gone, TRUE);
    if (old)
        g_ptr_array_unref(old);
}

/* --- the server's subscriber of the configuration transaction ---
 * agent/netconf and the managers' user lists, all live: endpoints as
 * above; users and keys at once, closing the sessions they no longer
 * allow (vmh_nc_sessions_recheck). */

struct vmh_nc_plan {
    GPtrArray *want;
    bool gate;
};

static int
vmh_nc_txn_validate(struct vmh_txn_change *c, void *opaque)
{
    GPtrArray *want = vmh_nc_endpoints_parse(c->new_tree);
    int rc = vmh_nc_endpoints_check(opaque, c, want);

    g_ptr_array_unref(want);
    return rc;
}

static int
vmh_nc_txn_prepare(struct vmh_txn_change *c, void *opaque)
{
    struct vmh_nc_plan *plan = g_new0(struct vmh_nc_plan, 1);

    plan->want = vmh_nc_endpoints_parse(c->new_tree);
    if (vmh_nc_endpoints_prepare(opaque, c, plan->want, &plan->gate) < 0) {
        g_ptr_array_unref(plan->want);
        g_free(plan);
        return -1;
    }
    c->resource = plan;
    return 0;
}

static void
vmh_nc_txn_abort(struct vmh_txn_change *c, void *opaque)
{
    struct vmh_nc_plan *plan = c->resource;

    vmh_nc_endpoints_abort(opaque, plan->want, plan->gate);
    g_ptr_array_unref(plan->want);
    g_free(plan);
    c->resource = NULL;
}

static void
vmh_nc_txn_apply(struct vmh_txn_change *c, void *opaque)
{
    struct vmh_nc_plan *plan = c->resource;

    vmh_nc_endpoints_apply(opaque, plan->want, plan->gate);
    g_free(plan);
    c->resource = NULL;
    vmh_nc_users_update(opaque, c->new_tree);
    vmh_nc_sessions_recheck(opaque);
}

static void
vmh_nc_txn_subscribe(struct vmh_nc_server *srv)
{
    static const char *const paths[] = {"/vmhealth-agent:agent/netconf",
                                        "/nfv-vm-health:vm-health/vnf-manager/user", NULL};

    if (!srv->txn)
        return;
    vmh_txn_subscribe(srv->txn, &(struct vmh_txn_subscriber){.name = "netconf",
                                                             .paths = paths,
                                                             .validate = vmh_nc_txn_validate,
                                                             .prepare = vmh_nc_txn_prepare,
                                                             .abort = vmh_nc_txn_abort,
                                                             .apply = vmh_nc_txn_apply,
                                                             .opaque = srv});
}

/* The endpoints of running when the server starts, as a commit would
 * make them; a listener that cannot be had is an error. */
static int
vmh_nc_endpoints_start(struct vmh_nc_server *srv, const struct lyd_node *running)
{
    struct vmh_txn_error err = {0};
    struct vmh_txn_change c = {.new_tree = running, .startup = true, .error = &err};
    GPtrArray *want = vmh_nc_endpoints_parse(running);
    bool gate = false;

    if (vmh_nc_endpoints_check(srv, &c, want) < 0 ||
        vmh_nc_endpoints_prepare(srv, &c, want, &gate) < 0) {
        log_err("netconf", "%s", err.message ? err.message : "cannot set up the endpoints");
        vmh_txn_error_clear(&err);
        g_ptr_array_unref(want);
        return -1;
    }
    vmh_nc_endpoints_apply(srv, want, gate);
    return 0;
}

int
vmh_nc_server_start(const struct vmh_nc_options *opts, struct vmh_nc_server **out)
{
    struct vmh_nc_server *srv;
    const struct lyd_node *running;
    pthread_rwlockattr_t gate_attr;
    int rc;

    *out = NULL;
    srv = calloc(1, sizeof *srv);
    if (!srv)
        return -1;
    srv->ctx = opts->ctx;
    srv->ds = opts->ds;
    srv->engine = opts->engine;
    srv->txn = opts->txn;
    srv->state_add = opts->state_add;
    srv->state_opaque = opts->state_opaque;
    srv->start_ms = vmh_time_real_ms();
    pthread_mutex_init(&srv->lock, NULL);
    pthread_rwlock_init(&srv->users_lock, NULL);
    /* Writers first: acceptors come back every VMH_NC_ACCEPT_WAIT and
     * would otherwise keep a change waiting. */
    pthread_rwlockattr_init(&gate_attr);
    pthread_rwlockattr_setkind_np(&gate_attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&srv->acc_gate, &gate_attr);
    pthread_rwlockattr_destroy(&gate_attr);
    pthread_mutex_init(&srv->acc_lock, NULL);
    srv->auth_peers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    pthread_cond_init(&srv->acc_cond, NULL);
    srv->sessions = g_hash_table_new(g_direct_hash, g_direct_equal);
    srv->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    srv->unix_wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

    nc_set_print_clb_session(vmh_nc_log_cb);
    nc_verbosity(vmh_log_debug_enabled("netconf") ? NC_VERB_DEBUG : NC_VERB_WARNING);
    if (nc_server_init(srv->ctx)) {
        log_err("netconf", "cannot initialise libnetconf2");
        srv->ctx = NULL;
        vmh_nc_server_stop(srv);
        return -1;
    }
    nc_server_set_capab_withdefaults(NC_WD_EXPLICIT,
                                     NC_WD_ALL | NC_WD_ALL_TAG | NC_WD_TRIM | NC_WD_EXPLICIT);
    nc_server_set_capability("urn:ietf:params:netconf:capability:notification:1.0");
    nc_server_set_capability("urn:ietf:params:netconf:capability:interleave:1.0");
    nc_server_set_hello_timeout(VMH_NC_HELLO_TIMEOUT);
    nc_server_set_idle_timeout(0);
    nc_server_ssh_set_hostkey_clb(vmh_nc_hostkey_cb, srv, NULL);
    nc_server_ssh_set_passwd_auth_clb(vmh_nc_passwd_cb, srv, NULL);
    nc_server_ssh_set_pubkey_auth_clb(vmh_nc_pubkey_cb, srv, NULL);
    if (vmh_nc_ops_register(srv) < 0)
        goto error;

    running = vmh_ds_read_begin(srv->ds, VMH_DS_RUNNING);
    vmh_nc_users_update(srv, running);
    rc = vmh_nc_endpoints_start(srv, running);
    vmh_ds_read_end(srv->ds);
    if (rc < 0)
        goto error;
    if (!srv->endpoints->len) {
        /* Nothing could then change the endpoints: no NETCONF at all. */
        log_info("netconf", "no NETCONF endpoint configured: no NETCONF server");
        vmh_nc_server_stop(srv);
        return 0;
    }
    if (vmh_nc_notif_start(srv, opts->state_dir) < 0)
        goto error;
    srv->workers = g_thread_pool_new(vmh_nc_worker, srv, VMH_NC_WORKERS, FALSE, NULL);
    if (pthread_create(&srv->poller, NULL, vmh_nc_poller, srv) != 0)
        goto error;
    srv->poller_started = true;
    /* Both run with no endpoint of theirs too: one may be added live. */
    if (pthread_create(&srv->unix_thread, NULL, vmh_nc_unix_listener, srv) != 0)
        goto error;
    srv->unix_started = true;
    pthread_mutex_lock(&srv->acc_lock);
    vmh_nc_spawn_acceptor_locked(srv);
    pthread_mutex_unlock(&srv->acc_lock);
    if (!srv->acc_total)
        goto error;
    vmh_engine_observe(srv->engine, vmh_nc_notif_event, srv);
    vmh_nc_txn_subscribe(srv);
    *out = srv;
    return 0;

error:
    vmh_nc_server_stop(srv);
    return -1;
}

void
vmh_nc_server_stop(struct vmh_nc_server *srv)
{
    GHashTableIter it;
    gpointer v;
    uint64_t one = 1;

    if (!srv)
        return;
    pthread_mutex_lock(&srv->lock);
    srv->stopping = true;
    pthread_mutex_unlock(&srv->lock);
    pthread_mutex_lock(&srv->acc_lock);
    srv->stopping = true;
    pthread_cond_broadcast(&srv->acc_cond);
    while (srv->acc_total > 0 || srv->unix_handshakes > 0)
        pthread_cond_wait(&srv->acc_cond, &srv->acc_lock);
    pthread_mutex_unlock(&srv->acc_lock);
    if (srv->unix_started) {
        if (write(srv->unix_wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
            log_err("netconf", "cannot wake the UNIX listener: %s", strerror(errno));
        pthread_join(srv->unix_thread, NULL);
    }
    vmh_nc_wake(srv);
    if (srv->poller_started)
        pthread_join(srv->poller, NULL);
    if (srv->workers)
        g_thread_pool_free(srv->workers, FALSE, TRUE);
    vmh_nc_notif_stop(srv);
    /* Everyone else is gone: the sessions left are idle. */
    g_hash_table_iter_init(&it, srv->sessions);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct vmh_nc_session *s = v;

        nc_session_set_term_reason(s->nc, NC_SESSION_TERM_OTHER);
        vmh_nc_session_free(s);
    }
    g_hash_table_destroy(srv->sessions);
    /* libnetconf2's SSH listeners go with nc_server_destroy() */
    for (guint i = 0; srv->endpoints && i < srv->endpoints->len; i++) {
        struct vmh_nc_endpoint *e = g_ptr_array_index(srv->endpoints, i);

        if (!e->ssh)
            vmh_nc_endpoint_close(e);
    }
    if (srv->endpoints)
        g_ptr_array_unref(srv->endpoints);
    if (srv->users)
        g_ptr_array_unref(srv->users);
    if (srv->ctx)
        nc_server_destroy();
    close(srv->wake_fd);
    close(srv->unix_wake_fd);
    pthread_mutex_destroy(&srv->lock);
    pthread_rwlock_destroy(&srv->users_lock);
    pthread_rwlock_destroy(&srv->acc_gate);
    pthread_mutex_destroy(&srv->acc_lock);
    g_hash_table_destroy(srv->auth_peers);
    pthread_cond_destroy(&srv->acc_cond);
    free(srv);
}
