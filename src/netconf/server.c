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
        nc = vmh_nc_child(agent, "netconf");
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
            !ssh_key_cmp(k, key, SSH_KEY_CMP_PUBLIC))
            rc = 0;
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
    free(s);
}

static void
vmh_nc_session_end(struct vmh_nc_session *s)
{
    struct vmh_nc_server *srv = s->srv;
    NC_SESSION_TERM_REASON why = nc_session_get_term_reason(s->nc);

    pthread_mutex_lock(&srv->lock);
    g_hash_table_remove(srv->sessions, GUINT_TO_POINTER(s->id));
    if (why != NC_SESSION_TERM_CLOSED && why != NC_SESSION_TERM_KILLED)
        srv->dropped_sessions++;
    pthread_mutex_unlock(&srv->lock);
    vmh_ds_unlock_session(srv->ds, s->id);
    log_info("netconf", "session %u of '%s' ended (%s)", s->id, s->user,
             why == NC_SESSION_TERM_CLOSED   ? "closed"
             : why == NC_SESSION_TERM_KILLED ? "killed"
                                             : "dropped");
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
        int r;

        pthread_mutex_lock(&srv->lock);
        s->scheduled = false;
        pthread_mutex_unlock(&srv->lock);

        vmh_nc_send_notifs(s);
        do {
            r = nc_ps_poll(s->ps, 0, NULL);
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
                pthread_mutex_unlock(&srv->lock);
            }
        } while ((r & (NC_PSPOLL_RPC | NC_PSPOLL_BAD_RPC | NC_PSPOLL_SSH_MSG)) &&
                 !(r & (NC_PSPOLL_SESSION_TERM | NC_PSPOLL_ERROR)));
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
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int found = -1;

    if (!d)
        return -1;
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
        for (guint i = 0; i < srv->ssh_ports->len; i++)
            ours |= g_array_index(srv->ssh_ports, uint16_t, i) == lport;
        if (ours && pport == port && host && !strcmp(addr, host))
            found = fd;
    }
    closedir(d);
    return found;
}

/* user: NULL for the transport's (SSH); nc_accept_inout() ignores the
 * name it is given, so a UNIX socket's user is passed here.  own_fd: the
 * descriptor is ours to close (libnetconf2 leaves those of
 * nc_accept_inout() open). */
static int
vmh_nc_session_add(struct vmh_nc_server *srv, struct nc_session *nc, int fd, const char *transport,
                   const char *user, bool own_fd)
{
    struct vmh_nc_session *s = calloc(1, sizeof *s);
    bool admin = false;

    if (!user)
        user = nc_session_get_username(nc);
    if (!s || !vmh_nc_user_role(srv, user, &admin)) {
        log_warn("netconf", "'%s' is not a configured NETCONF user: session refused",
                 user ? user : "?");
        free(s);
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
    s->admin = admin;
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
        NC_MSG_TYPE r = nc_accept(500, &nc);

        if (r == NC_MSG_HELLO) {
            vmh_nc_session_add(
                srv, nc, vmh_nc_find_ssh_fd(srv, nc_session_get_host(nc), nc_session_get_port(nc)),
                "SSH", NULL, false);
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
            vmh_nc_session_add(srv, nc, c->fd, "UNIX socket", pw.pw_name, true);
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

static void *
vmh_nc_unix_listener(void *data)
{
    struct vmh_nc_server *srv = data;
    guint n = srv->unix_fds->len;
    struct pollfd *p = calloc(n + 1, sizeof *p);

    p[0].fd = srv->wake_fd; /* only written to for stopping while this runs */
    for (guint i = 0; i < n; i++) {
        p[i + 1].fd = g_array_index(srv->unix_fds, int, i);
        p[i + 1].events = POLLIN;
    }
    for (;;) {
        bool stop;

        if (poll(p + 1, n, 500) < 0 && errno != EINTR)
            break;
        pthread_mutex_lock(&srv->lock);
        stop = srv->stopping;
        pthread_mutex_unlock(&srv->lock);
        if (stop)
            break;
        for (guint i = 1; i <= n; i++) {
            struct vmh_nc_unix_conn *c;
            pthread_t t;
            int fd;

            if (!(p[i].revents & POLLIN))
                continue;
            fd = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0)
                continue;
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
                continue;
            }
            pthread_detach(t);
        }
    }
    free(p);
    return NULL;
}

static int
vmh_nc_unix_listen(struct vmh_nc_server *srv, const char *name, const char *path, mode_t mode)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(path) >= sizeof sa.sun_path) {
        log_err("netconf", "unix-endpoint %s: path %s is too long", name, path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    unlink(path);
    /* The permissions hold from the first instant the socket exists. */
    if (fchmod(fd, mode) < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        chmod(path, mode) < 0 || listen(fd, 64) < 0) {
        log_err("netconf", "unix-endpoint %s: cannot listen on %s: %s", name, path,
                strerror(errno));
        close(fd);
        return -1;
    }
    g_array_append_val(srv->unix_fds, fd);
    g_ptr_array_add(srv->unix_paths, g_strdup(path));
    log_info("netconf", "unix-endpoint %s listening on %s (mode %04o)", name, path, mode);
    return 0;
}

/* --- setup --- */

static int
vmh_nc_endpoints(struct vmh_nc_server *srv, const struct lyd_node *config)
{
    struct lyd_node *agent = vmh_nc_top(config, VHA_MOD, "agent"), *nc = NULL, *n;

    if (agent)
        nc = vmh_nc_child(agent, "netconf");
    LY_LIST_FOR(nc ? lyd_child(nc) : NULL, n)
    {
        const char *name = vmh_nc_leaf(n, "name");

        if (!strcmp(n->schema->name, "ssh-endpoint")) {
            const char *addr = vmh_nc_leaf(n, "address"), *key = vmh_nc_leaf(n, "host-key");
            uint16_t port = (uint16_t)atoi(vmh_nc_leaf(n, "port"));

            if (access(key, R_OK) < 0) {
                log_err("netconf", "ssh-endpoint %s: host key %s: %s", name, key, strerror(errno));
                return -1;
            }
            if (nc_server_add_endpt(name, NC_TI_LIBSSH) ||
                nc_server_endpt_set_address(name, addr) || nc_server_endpt_set_port(name, port)) {
                log_err("netconf", "ssh-endpoint %s: cannot listen on %s port %u", name, addr,
                        port);
                return -1;
            }
            nc_server_ssh_endpt_add_hostkey(name, key, -1);
            nc_server_ssh_endpt_set_auth_methods(name,
                                                 NC_SSH_AUTH_PUBLICKEY | NC_SSH_AUTH_PASSWORD);
            nc_server_ssh_endpt_set_auth_timeout(name, VMH_NC_AUTH_TIMEOUT);
            nc_server_ssh_endpt_set_auth_attempts(name, 3);
            g_array_append_val(srv->ssh_ports, port);
            srv->n_ssh_endpoints++;
            log_info("netconf", "ssh-endpoint %s listening on %s port %u", name, addr, port);
        } else if (!strcmp(n->schema->name, "unix-endpoint")) {
            const char *mode = vmh_nc_leaf(n, "mode");

            if (vmh_nc_unix_listen(srv, name, vmh_nc_leaf(n, "path"),
                                   (mode_t)strtoul(mode ? mode : "0600", NULL, 8)) < 0)
                return -1;
        }
    }
    return 0;
}

/* --- the server's subscriber of the configuration transaction ---
 * agent/netconf and the managers' user lists.  Users and keys apply at
 * once; endpoints are bound at start only, so a change to them is refused
 * as taking a restart rather than accepted and ignored. */

static int
vmh_nc_txn_validate(struct vmh_txn_change *c, void *opaque)
{
    static const char *const endpoints[] = {"/vmhealth-agent:agent/netconf/ssh-endpoint",
                                            "/vmhealth-agent:agent/netconf/unix-endpoint"};

    (void)opaque;
    for (size_t i = 0; i < G_N_ELEMENTS(endpoints); i++) {
        if (!vmh_txn_changed(c, endpoints[i]))
            continue;
        vmh_txn_refuse(c, VMH_TXN_UNSUPPORTED, endpoints[i],
                       "NETCONF endpoints are bound when vmhealthd starts: changing them takes a "
                       "restart (write the change to startup with copy-config, then restart)");
        return -1;
    }
    return 0;
}

static void
vmh_nc_txn_apply(struct vmh_txn_change *c, void *opaque)
{
    vmh_nc_users_update(opaque, c->new_tree);
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
                                                             .apply = vmh_nc_txn_apply,
                                                             .opaque = srv});
}

int
vmh_nc_server_start(const struct vmh_nc_options *opts, struct vmh_nc_server **out)
{
    struct vmh_nc_server *srv;
    const struct lyd_node *running;
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
    pthread_mutex_init(&srv->acc_lock, NULL);
    srv->auth_peers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    pthread_cond_init(&srv->acc_cond, NULL);
    srv->sessions = g_hash_table_new(g_direct_hash, g_direct_equal);
    srv->ssh_ports = g_array_new(FALSE, FALSE, sizeof(uint16_t));
    srv->unix_fds = g_array_new(FALSE, FALSE, sizeof(int));
    srv->unix_paths = g_ptr_array_new_with_free_func(g_free);
    srv->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

    nc_set_print_clb_session(vmh_nc_log_cb);
    nc_verbosity(vmh_log_debug_enabled("netconf") ? NC_VERB_DEBUG : NC_VERB_WARNING);
    if (nc_server_init(srv->ctx)) {
        log_err("netconf", "cannot initialise libnetconf2");
        free(srv);
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
    rc = vmh_nc_endpoints(srv, running);
    vmh_ds_read_end(srv->ds);
    if (rc < 0)
        goto error;
    if (!srv->n_ssh_endpoints && !srv->unix_fds->len) {
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
    if (srv->unix_fds->len) {
        if (pthread_create(&srv->unix_thread, NULL, vmh_nc_unix_listener, srv) != 0)
            goto error;
        srv->unix_started = true;
    }
    if (srv->n_ssh_endpoints) {
        pthread_mutex_lock(&srv->acc_lock);
        vmh_nc_spawn_acceptor_locked(srv);
        pthread_mutex_unlock(&srv->acc_lock);
    }
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

    if (!srv)
        return;
    pthread_mutex_lock(&srv->lock);
    srv->stopping = true;
    pthread_mutex_unlock(&srv->lock);
    pthread_mutex_lock(&srv->acc_lock);
    srv->stopping = true;
    while (srv->acc_total > 0 || srv->unix_handshakes > 0)
        pthread_cond_wait(&srv->acc_cond, &srv->acc_lock);
    pthread_mutex_unlock(&srv->acc_lock);
    if (srv->unix_started)
        pthread_join(srv->unix_thread, NULL);
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
    for (guint i = 0; i < srv->unix_fds->len; i++) {
        close(g_array_index(srv->unix_fds, int, i));
        unlink(g_ptr_array_index(srv->unix_paths, i));
    }
    g_array_free(srv->unix_fds, TRUE);
    g_ptr_array_free(srv->unix_paths, TRUE);
    g_array_free(srv->ssh_ports, TRUE);
    if (srv->users)
        g_ptr_array_unref(srv->users);
    nc_server_destroy();
    close(srv->wake_fd);
    pthread_mutex_destroy(&srv->lock);
    pthread_rwlock_destroy(&srv->users_lock);
    pthread_mutex_destroy(&srv->acc_lock);
    g_hash_table_destroy(srv->auth_peers);
    pthread_cond_destroy(&srv->acc_cond);
    free(srv);
}
