/* SPDX-License-Identifier: GPL-3.0-or-later */
/* NETCONF subscribers on libnetconf2's C client, for scripts/soak and
 * bench/fanout.py: a peer that costs little CPU per notification, so that
 * on a small machine the latency measured is the daemon's and not the
 * subscribers' own (an ncclient subscriber spends ~180 us of CPU per
 * notification here, libnetconf2's client ~25 us: docs/SOAK.md).
 *
 *   nc_subscriber PORT YANG_DIR ID:USER:KEY [ID:USER:KEY ...]
 *
 * Opens one SSH session per ID:USER:KEY (KEY: the private key, KEY.pub
 * next to it) to 127.0.0.1:PORT, subscribes each to the NETCONF stream and
 * reads it in a thread of its own.  It speaks the soak's worker protocol,
 * one JSON object a line on stdout:
 *   {"k":"up","s":ID,"sid":SESSION_ID,"lport":CLIENT_PORT}  per session
 *   {"k":"started"}                                          all subscribed
 *   {"k":"n","s":ID,"m":MONO,"w":WALL,"n":NAME,"e":EVENT_TIME,
 *    "f":FAULT_ID,"v":VM_UUID,"h":HOST,"c":CAUSE}             per notification
 *   {"k":"hb","alive":[ID,...]}                              every 2 s
 *   {"k":"err","s":ID,"what":"session","msg":TEXT}           a session lost
 *   {"k":"closed","ids":[ID,...]}                            after the stop
 * MONO is CLOCK_MONOTONIC (Python's time.monotonic()), WALL the real time,
 * both in seconds, taken as soon as libnetconf2 has parsed the message.
 * A line on stdin (or its end) closes every session with <close-session>
 * and ends the program. */
#define NC_ENABLED_SSH
#include <libnetconf2/log.h>
#include <libnetconf2/messages_client.h>
#include <libnetconf2/session_client.h>
#include <libssh/libssh.h>
#include <libyang/libyang.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SUB_MAX        64
#define SUB_RECV_MS    200 /* how soon a reader sees the stop */
#define SUB_BEAT_S     2
#define SUB_TIMEOUT_MS 30000

struct sub {
    int id;
    struct nc_session *nc;
    pthread_t reader;
    atomic_bool lost;
};

static struct sub subs[SUB_MAX];
static int nsubs;
static atomic_bool stopping;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void
out(const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&out_lock);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
}

/* A JSON string (or null) of at most 255 characters of v. */
static void
json_str(char *buf, size_t size, const char *v)
{
    size_t n = 0;

    if (!v) {
        snprintf(buf, size, "null");
        return;
    }
    buf[n++] = '"';
    for (; *v && n + 8 < size; v++) {
        if (*v == '"' || *v == '\\')
            n += snprintf(buf + n, size - n, "\\%c", *v);
        else if ((unsigned char)*v < 0x20)
            n += snprintf(buf + n, size - n, "\\u%04x", *v);
        else
            buf[n++] = *v;
    }
    buf[n++] = '"';
    buf[n] = '\0';
}

static double
clock_s(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *
child_value(const struct lyd_node *op, const char *name)
{
    for (const struct lyd_node *c = lyd_child(op); c; c = c->next)
        if (!strcmp(LYD_NAME(c), name))
            return lyd_get_value(c);
    return NULL;
}

static void
report(const struct sub *s, double mono, double wall, const struct lyd_node *envp,
       const struct lyd_node *op)
{
    char name[64], et[64], fid[64], vm[128], host[128], cause[128];
    const char *event_time = NULL, *c = child_value(op, "cause");

    for (const struct lyd_node *n = lyd_child(envp); n; n = n->next)
        if (!strcmp(LYD_NAME(n), "eventTime"))
            event_time = ((const struct lyd_node_opaq *)n)->value;
    if (c && strchr(c, ':'))
        c = strchr(c, ':') + 1; /* an identityref: the identity's name */
    json_str(name, sizeof name, LYD_NAME(op));
    json_str(et, sizeof et, event_time);
    json_str(fid, sizeof fid, child_value(op, "fault-id"));
    json_str(vm, sizeof vm, child_value(op, "vm-uuid"));
    json_str(host, sizeof host, child_value(op, "host"));
    json_str(cause, sizeof cause, c);
    out("{\"k\":\"n\",\"s\":%d,\"m\":%.6f,\"w\":%.6f,\"n\":%s,\"e\":%s,\"f\":%s,\"v\":%s,"
        "\"h\":%s,\"c\":%s}",
        s->id, mono, wall, name, et, fid, vm, host, cause);
}

/* libnetconf2's own nc_recv_notif_dispatch() sleeps 10 ms after every
 * notification: at most 100 a second per session.  This reader does not. */
static void *
reader(void *arg)
{
    struct sub *s = arg;

    while (!atomic_load(&stopping)) {
        struct lyd_node *envp = NULL, *op = NULL;
        NC_MSG_TYPE t = nc_recv_notif(s->nc, SUB_RECV_MS, &envp, &op);

        if (t == NC_MSG_NOTIF && op)
            report(s, clock_s(CLOCK_MONOTONIC), clock_s(CLOCK_REALTIME), envp, op);
        lyd_free_all(envp);
        lyd_free_all(op);
        if (t == NC_MSG_ERROR && nc_session_get_status(s->nc) != NC_STATUS_RUNNING) {
            if (!atomic_load(&stopping))
                out("{\"k\":\"err\",\"s\":%d,\"what\":\"session\",\"msg\":\"session ended\"}",
                    s->id);
            atomic_store(&s->lost, true);
            break;
        }
    }
    return NULL;
}

static void *
heartbeat(void *arg)
{
    (void)arg;
    while (!atomic_load(&stopping)) {
        char buf[SUB_MAX * 8] = "";
        size_t n = 0;

        for (int i = 0; i < nsubs; i++)
            if (!atomic_load(&subs[i].lost) &&
                nc_session_get_status(subs[i].nc) == NC_STATUS_RUNNING)
                n += snprintf(buf + n, sizeof buf - n, "%s%d", n ? "," : "", subs[i].id);
        out("{\"k\":\"hb\",\"alive\":[%s]}", buf);
        for (int i = 0; i < SUB_BEAT_S * 10 && !atomic_load(&stopping); i++)
            usleep(100000);
    }
    return NULL;
}

/* libnetconf2's client asks every server for ietf-netconf-nmda while it
 * connects and logs the refusal of a server without it as an error. */
static void
print_clb(const struct nc_session *session, NC_VERB_LEVEL level, const char *msg)
{
    (void)session;
    if (strstr(msg, "reply to <get-schema>"))
        return;
    fprintf(stderr, "nc_subscriber: libnetconf2 %s: %s\n",
            level == NC_VERB_ERROR ? "error" : "warning", msg);
}

static int
accept_host_key(const char *hostname, ssh_session session, void *priv)
{
    (void)hostname, (void)session, (void)priv;
    return 0; /* 127.0.0.1 and a key made for the run */
}

/* The client's TCP port, for matching a session in a packet capture. */
static int
local_port(void)
{
    /* libnetconf2 does not give the socket: the newest connected TCP
     * socket of this process is the session's. */
    for (int fd = 1023; fd > 2; fd--) {
        struct sockaddr_in a;
        socklen_t len = sizeof a;

        if (getsockname(fd, (struct sockaddr *)&a, &len) == 0 && a.sin_family == AF_INET) {
            struct sockaddr_in p;
            socklen_t plen = sizeof p;

            if (getpeername(fd, (struct sockaddr *)&p, &plen) == 0)
                return ntohs(a.sin_port);
        }
    }
    return -1;
}

static struct nc_session *
open_session(int port, const char *user, const char *key)
{
    char pub[4096];
    struct nc_session *nc = NULL;

    snprintf(pub, sizeof pub, "%s.pub", key);
    /* one key at a time: the others would count as failed logins */
    while (nc_client_ssh_get_keypair_count() > 0)
        nc_client_ssh_del_keypair(0);
    nc_client_ssh_add_keypair(pub, key);
    nc_client_ssh_set_username(user);
    for (int attempt = 0; attempt < 5 && !nc; attempt++) {
        nc = nc_connect_ssh("127.0.0.1", port, NULL);
        if (!nc)
            sleep(1 + attempt); /* a busy machine */
    }
    return nc;
}

static int
subscribe(struct nc_session *nc)
{
    struct nc_rpc *rpc = nc_rpc_subscribe("NETCONF", NULL, NULL, NULL, NC_PARAMTYPE_CONST);
    struct lyd_node *envp = NULL, *op = NULL;
    uint64_t id;
    NC_MSG_TYPE t = NC_MSG_ERROR;
    int rc = -1;

    if (rpc && nc_send_rpc(nc, rpc, SUB_TIMEOUT_MS, &id) == NC_MSG_RPC)
        t = nc_recv_reply(nc, rpc, id, SUB_TIMEOUT_MS, &envp, &op);
    /* the reply's envelope holds <ok/> or the rpc-errors */
    if (t == NC_MSG_REPLY && envp && lyd_child(envp) && !strcmp(LYD_NAME(lyd_child(envp)), "ok"))
        rc = 0;
    lyd_free_all(envp);
    lyd_free_all(op);
    nc_rpc_free(rpc);
    return rc;
}

int
main(int argc, char **argv)
{
    char line[64], closed[SUB_MAX * 8] = "";
    pthread_t beat;
    size_t n = 0;
    int port;

    if (argc < 4 || argc - 3 > SUB_MAX) {
        fprintf(stderr, "usage: %s PORT YANG_DIR ID:USER:KEY [ID:USER:KEY ...] (at most %d)\n",
                argv[0], SUB_MAX);
        return 2;
    }
    port = atoi(argv[1]);
    nc_client_init();
    nc_verbosity(NC_VERB_WARNING);
    nc_set_print_clb_session(print_clb);
    nc_client_set_schema_searchpath(argv[2]);
    nc_client_ssh_set_auth_hostkey_check_clb(accept_host_key, NULL);
    nc_client_ssh_set_auth_pref(NC_SSH_AUTH_PASSWORD, -1);
    nc_client_ssh_set_auth_pref(NC_SSH_AUTH_INTERACTIVE, -1);
    nc_client_ssh_set_auth_pref(NC_SSH_AUTH_PUBLICKEY, 1);
    for (int i = 3; i < argc; i++) {
        char *spec = strdup(argv[i]), *user = strchr(spec, ':'),
             *key = user ? strchr(user + 1, ':') : NULL;
        struct sub *s = &subs[nsubs];

        if (!key) {
            fprintf(stderr, "bad session %s: ID:USER:KEY\n", argv[i]);
            return 2;
        }
        *user++ = '\0';
        *key++ = '\0';
        s->id = atoi(spec);
        s->nc = open_session(port, user, key);
        if (!s->nc || subscribe(s->nc)) {
            fprintf(stderr, "session %d of '%s': cannot %s\n", s->id, user,
                    s->nc ? "subscribe" : "connect");
            return 1;
        }
        out("{\"k\":\"up\",\"s\":%d,\"sid\":%u,\"lport\":%d}", s->id, nc_session_get_id(s->nc),
            local_port());
        nsubs++;
        free(spec);
    }
    for (int i = 0; i < nsubs; i++)
        pthread_create(&subs[i].reader, NULL, reader, &subs[i]);
    pthread_create(&beat, NULL, heartbeat, NULL);
    out("{\"k\":\"started\"}");

    if (!fgets(line, sizeof line, stdin)) {
        /* stdin closed: stop as well */
    }
    atomic_store(&stopping, true);
    pthread_join(beat, NULL);
    for (int i = 0; i < nsubs; i++) {
        pthread_join(subs[i].reader, NULL);
        if (!atomic_load(&subs[i].lost))
            n += snprintf(closed + n, sizeof closed - n, "%s%d", n ? "," : "", subs[i].id);
        nc_session_free(subs[i].nc, NULL); /* sends <close-session> */
    }
    out("{\"k\":\"closed\",\"ids\":[%s]}", closed);
    nc_client_destroy();
    return 0;
}
