/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The net-snmp thread.  Debian's net-snmp is built without thread support,
 * so this thread makes every net-snmp call of the process: agent set-up,
 * requests (embedded master or AgentX subagent), USM users, traps and
 * informs, shut-down.  The engine's loop thread only copies events into a
 * queue and writes a byte to a pipe that net-snmp's own select loop watches
 * (register_readfd); nothing here ever blocks the engine. */
#include "snmp/snmp_priv.h"
#include "util/file.h"
#include "util/log.h"
#include "util/time.h"

#include <net-snmp/agent/net-snmp-agent-includes.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define VMH_SNMP_APP           "vmhealthd"
#define VMH_SNMP_STOP_GRACE_MS 2000

/* VACM's access check, which init_agent() installs (net-snmp's libnetsnmpmibs
 * exports it without a header).  This agent has its own. */
int vacm_in_view_callback(int major, int minor, void *serverarg, void *clientarg);

/* net-snmp's state is global and snmp_shutdown() frees the client argument
 * of every callback: the callbacks find the agent here instead. */
static struct vmh_snmp *vmh_snmp_current;
static bool vmh_snmp_agentx_warned;

/* --- net-snmp's log into ours --- */

static int
vmh_snmp_log_cb(int major, int minor, void *serverarg, void *clientarg)
{
    const struct snmp_log_message *m = serverarg;
    enum vmh_log_level level = m->priority <= LOG_ERR       ? VMH_LOG_ERR
                               : m->priority == LOG_WARNING ? VMH_LOG_WARN
                               : m->priority <= LOG_INFO    ? VMH_LOG_INFO
                                                            : VMH_LOG_DEBUG;
    size_t n = strlen(m->msg);

    while (n && (m->msg[n - 1] == '\n' || m->msg[n - 1] == '\r'))
        n--;
    if (!n)
        return 0;
    /* A subagent retries its master every second: one warning per outage. */
    if (strstr(m->msg, "Failed to connect to the agentx master agent")) {
        if (vmh_snmp_agentx_warned)
            level = VMH_LOG_DEBUG;
        vmh_snmp_agentx_warned = true;
    } else if (strstr(m->msg, "AgentX subagent connected")) {
        vmh_snmp_agentx_warned = false;
    }
    /* VACM's warning: this agent does its own access control. */
    if (strstr(m->msg, "no access control information configured") ||
        strstr(m->msg, "It's unlikely this agent can serve") ||
        strstr(m->msg, "snmpconf -g basic_setup") || strstr(m->msg, "Config search path"))
        level = VMH_LOG_DEBUG;
    if (level == VMH_LOG_DEBUG && !vmh_log_debug_enabled("snmp"))
        return 0;
    vmh_log(level, "snmp", "net-snmp: %.*s", (int)n, m->msg);
    return 0;
}

/* --- the MIB handlers --- */

/* The view of the newest snapshot, rebuilt only when the engine published
 * a new one. */
static const struct vmh_mib_view *
vmh_snmp_view(struct vmh_snmp *s)
{
    struct vmh_snapshot *snap = vmh_engine_snapshot(s->engine);

    if (s->have_view && s->view.snap == snap) {
        vmh_snapshot_unref(snap);
    } else {
        if (s->have_view)
            vmh_mib_view_clear(&s->view);
        vmh_mib_view_init(&s->view, snap);
        s->have_view = true;
    }
    s->view.system_group = !s->subagent;
    s->view.uptime_cs = (uint32_t)netsnmp_get_agent_uptime();
    s->view.sys_descr = s->sys_descr;
    s->view.sys_name = s->sys_name;
    return &s->view;
}

static void
vmh_snmp_set_value(netsnmp_variable_list *vb, const struct vmh_mib_value *v)
{
    switch (v->type) {
    case ASN_OCTET_STR:
        snmp_set_var_typed_value(vb, ASN_OCTET_STR, v->str, v->len);
        break;
    case ASN_OBJECT_ID:
        snmp_set_var_typed_value(vb, ASN_OBJECT_ID, v->objid, v->objid_len * sizeof(oid));
        break;
    default:
        snmp_set_var_typed_value(vb, v->type, &v->integer, sizeof v->integer);
        break;
    }
}

static int
vmh_snmp_mib_handler(netsnmp_mib_handler *handler, netsnmp_handler_registration *reginfo,
                     netsnmp_agent_request_info *reqinfo, netsnmp_request_info *requests)
{
    struct vmh_snmp *s = handler->myvoid;
    const struct vmh_mib_view *view = vmh_snmp_view(s);

    for (netsnmp_request_info *r = requests; r; r = r->next) {
        netsnmp_variable_list *vb = r->requestvb;
        struct vmh_mib_value val;
        oid next[MAX_OID_LEN];
        size_t next_len = 0;
        enum vmh_mib_status st;

        if (r->processed)
            continue;
        switch (reqinfo->mode) {
        case MODE_GET:
            st = vmh_mib_get(view, vb->name, vb->name_length, &val);
            if (st == VMH_MIB_FOUND)
                vmh_snmp_set_value(vb, &val);
            else
                netsnmp_set_request_error(reqinfo, r,
                                          st == VMH_MIB_NO_SUCH_INSTANCE ? SNMP_NOSUCHINSTANCE
                                                                         : SNMP_NOSUCHOBJECT);
            break;
        case MODE_GETNEXT:
            if (r->inclusive &&
                vmh_mib_get(view, vb->name, vb->name_length, &val) == VMH_MIB_FOUND) {
                vmh_snmp_set_value(vb, &val);
                break;
            }
            st = vmh_mib_next(view, vb->name, vb->name_length, next, &next_len, &val);
            /* Past this registration: leave the varbind alone and the agent
             * asks the next subtree. */
            if (st != VMH_MIB_FOUND ||
                snmp_oidtree_compare(reginfo->rootoid, reginfo->rootoid_len, next, next_len))
                break;
            snmp_set_var_objid(vb, next, next_len);
            vmh_snmp_set_value(vb, &val);
            break;
        default:
            /* Registered read-only: the agent answers a SET itself; this
             * is for any other mode. */
            netsnmp_set_request_error(reqinfo, r, SNMP_ERR_NOTWRITABLE);
            break;
        }
    }
    return SNMP_ERR_NOERROR;
}

static netsnmp_handler_registration *
vmh_snmp_register(struct vmh_snmp *s, const char *name, const oid *root, size_t len)
{
    netsnmp_handler_registration *reg = netsnmp_create_handler_registration(
        name, vmh_snmp_mib_handler, root, len, HANDLER_CAN_RONLY);

    if (!reg)
        return NULL;
    reg->handler->myvoid = s;
    if (netsnmp_register_handler(reg) != MIB_REGISTERED_OK) {
        log_err("snmp", "cannot register the %s subtree", name);
        return NULL;
    }
    return reg;
}

/* --- access control of the embedded master --- */

/* Where a request came from.  net-snmp 5.9.3's transports disagree on what
 * they attach: UDP over IPv4 an address pair, UDP over IPv6 a bare
 * sockaddr_in6.  NULL when unknown (then only communities without a source
 * prefix match). */
static const struct sockaddr *
vmh_snmp_pdu_source(const netsnmp_pdu *pdu)
{
    const struct sockaddr *sa;

    if (!pdu->transport_data)
        return NULL;
    if (pdu->transport_data_length == (int)sizeof(netsnmp_indexed_addr_pair))
        return (const struct sockaddr *)&((const netsnmp_indexed_addr_pair *)pdu->transport_data)
            ->remote_addr;
    sa = pdu->transport_data;
    if ((pdu->transport_data_length == (int)sizeof(struct sockaddr_in6) &&
         sa->sa_family == AF_INET6) ||
        (pdu->transport_data_length == (int)sizeof(struct sockaddr_in) && sa->sa_family == AF_INET))
        return sa;
    return NULL;
}

/* Every request passes here first: v2c needs one of the configured
 * communities from its source prefix, v3 a configured USM user at
 * authPriv.  A refused v2c request gets no answer, a v3 one an
 * authorizationError (RFC 3415). */
static int
vmh_snmp_acm_initial(int major, int minor, void *serverarg, void *clientarg)
{
    struct view_parameters *vp = serverarg;
    struct vmh_snmp *s = vmh_snmp_current;
    netsnmp_pdu *pdu = vp->pdu;

    switch (pdu->version) {
    case SNMP_VERSION_2c:
        if (!vmh_snmp_conf_community_allows(s->conf, (const char *)pdu->community,
                                            pdu->community_len, vmh_snmp_pdu_source(pdu))) {
            vp->errorcode = VACM_NOSECNAME;
            log_debug("snmp", "v2c request with an unknown community or from a source it "
                              "does not allow: dropped");
        }
        break;
    case SNMP_VERSION_3:
        if (pdu->securityModel != SNMP_SEC_MODEL_USM ||
            !vmh_snmp_conf_find_user(s->conf, pdu->securityName, pdu->securityNameLen) ||
            pdu->securityLevel < SNMP_SEC_LEVEL_AUTHPRIV) {
            vp->errorcode = VACM_NOACCESS;
            log_debug("snmp", "v3 request of user %.*s at security level %d refused",
                      (int)pdu->securityNameLen, pdu->securityName ? pdu->securityName : "",
                      pdu->securityLevel);
        }
        break;
    default:
        vp->errorcode = VACM_NOSECNAME;
        break;
    }
    return SNMP_ERR_NOERROR;
}

/* --- USM users --- */

/* A createUser argument, quoted the way net-snmp's config parser reads it. */
static void
vmh_snmp_quote(GString *out, const char *s)
{
    g_string_append_c(out, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            g_string_append_c(out, '\\');
        g_string_append_c(out, *s);
    }
    g_string_append_c(out, '"');
}

/* Users are localized to this agent's engine ID and never stored: the
 * configuration is their only source.  net-snmp keeps users in its
 * persistent file, reloaded by init_snmp(); those are dropped first, or a
 * passphrase changed in the configuration would leave the old one valid.
 * Users localized to another engine (the receivers of the targets) belong
 * to the targets' sessions and stay. */
static void
vmh_snmp_create_users(struct vmh_snmp *s)
{
    static const char *const auth[] = {[VMH_SNMP_AUTH_SHA] = "SHA",
                                       [VMH_SNMP_AUTH_SHA256] = "SHA-256",
                                       [VMH_SNMP_AUTH_SHA512] = "SHA-512"};
    static const char *const priv[] = {
        [VMH_SNMP_PRIV_AES] = "AES", [VMH_SNMP_PRIV_AES256] = "AES-256"};
    u_char engine[64];
    size_t engine_len = snmpv3_get_engineID(engine, sizeof engine);
    struct usmUser *u, *next;

    for (u = usm_get_userList(); u; u = next) {
        next = u->next;
        if (u->engineIDLen == engine_len && !memcmp(u->engineID, engine, engine_len)) {
            usm_remove_user(u);
            usm_free_user(u);
        }
    }
    for (size_t i = 0; i < s->conf->n_users; i++) {
        const struct vmh_snmp_user *cu = &s->conf->users[i];
        GString *line = g_string_new(NULL);

        vmh_snmp_quote(line, cu->name);
        g_string_append_printf(line, " %s ", auth[cu->auth]);
        vmh_snmp_quote(line, cu->auth_pass);
        g_string_append_printf(line, " %s ", priv[cu->priv]);
        vmh_snmp_quote(line, cu->priv_pass);
        usm_parse_create_usmUser("createUser", line->str);
        memset(line->str, 0, line->len);
        g_string_free(line, TRUE);
        u = usm_get_user(engine, engine_len, cu->name);
        if (!u) {
            log_err("snmp", "USM user %s could not be created", cu->name);
            continue;
        }
        u->userStorageType = ST_VOLATILE;
        log_debug("snmp", "USM user %s (%s, %s)", cu->name, auth[cu->auth], priv[cu->priv]);
    }
}

/* --- listening addresses --- */

static struct vmh_snmp_listener *
vmh_snmp_listener_find(GPtrArray *listeners, const char *address)
{
    for (guint i = 0; i < listeners->len; i++) {
        struct vmh_snmp_listener *l = listeners->pdata[i];

        if (!strcmp(l->address, address))
            return l;
    }
    return NULL;
}

static bool
vmh_snmp_conf_has_address(const struct vmh_snmp_conf *conf, const char *address)
{
    for (size_t i = 0; i < conf->n_addresses; i++)
        if (!strcmp(conf->addresses[i], address))
            return true;
    return false;
}

/* Releases the addresses bound for ch and not registered (net-snmp
 * thread). */
static void
vmh_snmp_unbind(struct vmh_snmp_change *ch)
{
    for (guint i = 0; i < ch->bound->len; i++) {
        struct vmh_snmp_listener *l = ch->bound->pdata[i];

        if (l->transport) {
            if (l->transport->f_close)
                l->transport->f_close(l->transport);
            netsnmp_transport_free(l->transport);
        }
        log_debug("snmp", "%s released", l->address);
        g_free(l->address);
        g_free(l);
    }
    g_ptr_array_set_size(ch->bound, 0);
}

/* Binds every address of ch->conf that is not bound yet: the socket is
 * open and bound, not yet read by the agent (net-snmp thread).  On a
 * failure nothing stays bound and ch says which address and why. */
static int
vmh_snmp_bind(struct vmh_snmp *s, struct vmh_snmp_change *ch)
{
    for (size_t i = 0; i < ch->conf->n_addresses; i++) {
        const char *address = ch->conf->addresses[i];
        struct vmh_snmp_listener *l;
        netsnmp_transport *t;

        if (vmh_snmp_listener_find(s->listeners, address) ||
            vmh_snmp_listener_find(ch->bound, address))
            continue;
        errno = 0;
        t = netsnmp_transport_open_server("snmp", address);
        if (!t) {
            ch->failed_errno = errno ? errno : EINVAL;
            ch->failed_address = g_strdup(address);
            log_err("snmp", "cannot listen on %s: %s", address, strerror(ch->failed_errno));
            vmh_snmp_unbind(ch);
            return -ch->failed_errno;
        }
        l = g_new0(struct vmh_snmp_listener, 1);
        l->address = g_strdup(address);
        l->transport = t;
        g_ptr_array_add(ch->bound, l);
        log_debug("snmp", "%s bound", address);
    }
    return 0;
}

static void
vmh_snmp_listener_release(struct vmh_snmp_listener *l)
{
    netsnmp_deregister_agent_nsap(l->handle);
    g_free(l->address);
    g_free(l);
}

/* The agent answers on the addresses of ch->conf from now on: those no
 * longer configured are closed, those bound by prepare registered
 * (net-snmp thread). */
static void
vmh_snmp_listen(struct vmh_snmp *s, struct vmh_snmp_change *ch)
{
    for (guint i = s->listeners->len; i-- > 0;) {
        struct vmh_snmp_listener *l = s->listeners->pdata[i];

        if (vmh_snmp_conf_has_address(ch->conf, l->address))
            continue;
        log_info("snmp", "SNMP agent no longer listening on %s", l->address);
        g_ptr_array_remove_index(s->listeners, i);
        vmh_snmp_listener_release(l);
    }
    for (guint i = 0; i < ch->bound->len; i++) {
        struct vmh_snmp_listener *l = ch->bound->pdata[i];

        l->handle = netsnmp_register_agent_nsap(l->transport);
        if (l->handle <= 0) {
            /* net-snmp may have freed the transport already: it is lost */
            log_err("snmp", "cannot serve requests on %s", l->address);
            g_free(l->address);
            g_free(l);
            continue;
        }
        l->transport = NULL; /* the agent's session owns it */
        g_ptr_array_add(s->listeners, l);
        log_info("snmp", "SNMP agent listening on %s", l->address);
    }
    g_ptr_array_set_size(ch->bound, 0);
}

/* --- calls from other threads --- */

/* Runs fn on the net-snmp thread and waits for its result (any other
 * thread, the net-snmp thread running). */
static int
vmh_snmp_call(struct vmh_snmp *s, int (*fn)(struct vmh_snmp *s, void *arg), void *arg)
{
    struct vmh_snmp_call c = {.fn = fn, .arg = arg};

    g_mutex_lock(&s->call_lock);
    while (s->call)
        g_cond_wait(&s->call_cond, &s->call_lock);
    s->call = &c;
    g_mutex_unlock(&s->call_lock);
    /* A full pipe already holds a wake-up. */
    if (write(s->pipe[1], "c", 1) < 0 && errno != EAGAIN)
        log_err("snmp", "cannot wake the SNMP thread: %s", strerror(errno));
    g_mutex_lock(&s->call_lock);
    while (!c.done)
        g_cond_wait(&s->call_cond, &s->call_lock);
    g_mutex_unlock(&s->call_lock);
    return c.rc;
}

static void
vmh_snmp_run_call(struct vmh_snmp *s)
{
    struct vmh_snmp_call *c;
    int rc;

    g_mutex_lock(&s->call_lock);
    c = s->call;
    g_mutex_unlock(&s->call_lock);
    if (!c)
        return;
    rc = c->fn(s, c->arg);
    g_mutex_lock(&s->call_lock);
    c->rc = rc;
    c->done = true;
    s->call = NULL;
    g_cond_broadcast(&s->call_cond);
    g_mutex_unlock(&s->call_lock);
}

/* --- the event pipe --- */

void
vmh_snmp_event_free(struct vmh_snmp_event *ev)
{
    if (!ev)
        return;
    g_free(ev->vm_uuid);
    g_free(ev->vm_name);
    g_free(ev->host);
    g_free(ev->source_host);
    g_free(ev->target_host);
    g_free(ev->reason);
    g_free(ev);
}

struct vmh_snmp_event *
vmh_snmp_event_copy(const struct vmh_snmp_event *ev)
{
    struct vmh_snmp_event *c = g_memdup2(ev, sizeof *ev);

    c->vm_uuid = g_strdup(ev->vm_uuid);
    c->vm_name = g_strdup(ev->vm_name);
    c->host = g_strdup(ev->host);
    c->source_host = g_strdup(ev->source_host);
    c->target_host = g_strdup(ev->target_host);
    c->reason = g_strdup(ev->reason);
    return c;
}

/* Loop thread: copy and hand over, never wait. */
static void
vmh_snmp_observe(const struct vmh_event *e, void *opaque)
{
    struct vmh_snmp *s = opaque;
    struct vmh_snmp_event *ev;
    bool wake;

    if (!__atomic_load_n(&s->n_targets, __ATOMIC_RELAXED) || !e->vm_uuid)
        return;
    ev = g_new0(struct vmh_snmp_event, 1);
    ev->type = e->type;
    ev->time_ms = e->time_ms;
    ev->queued_us = g_get_monotonic_time();
    ev->vm_uuid = g_strdup(e->vm_uuid);
    ev->vm_name = g_strdup(e->vm_name);
    ev->host = g_strdup(e->host);
    ev->fault_id = e->fault_id;
    ev->cause = e->cause;
    ev->severity = e->severity;
    ev->ppt = e->ppt;
    ev->deadline_ms = e->deadline_ms;
    ev->migration_cancelled = e->migration_cancelled;
    ev->source_host = g_strdup(e->source_host);
    ev->target_host = g_strdup(e->target_host);
    ev->duration_ms = e->duration_ms;
    ev->reason = g_strdup(e->reason);

    g_mutex_lock(&s->lock);
    if (g_queue_get_length(&s->queue) >= VMH_SNMP_QUEUE_MAX) {
        for (guint i = 0; i < s->targets->len; i++) {
            struct vmh_snmp_target_rt *t = s->targets->pdata[i];

            __atomic_add_fetch(&t->dropped, 1, __ATOMIC_RELAXED);
        }
        g_mutex_unlock(&s->lock);
        log_warn("snmp", "notification queue full: event for %s dropped", e->vm_uuid);
        vmh_snmp_event_free(ev);
        return;
    }
    wake = g_queue_is_empty(&s->queue);
    g_queue_push_tail(&s->queue, ev);
    g_mutex_unlock(&s->lock);
    /* A full pipe already holds a wake-up. */
    if (wake && write(s->pipe[1], "e", 1) < 0 && errno != EAGAIN)
        log_err("snmp", "cannot wake the SNMP thread: %s", strerror(errno));
}

/* Notifications leave in bursts of VMH_SNMP_BURST, VMH_SNMP_BURST_GAP_MS apart
 * (about 6 400 a second): a host fault over 1 000 VMs sent at once
 * overflowed the UDP receive buffer of snmptrapd (a few hundred traps) and
 * most traps were lost.  On the way out the queue is flushed at once. */
#define VMH_SNMP_BURST        32
#define VMH_SNMP_BURST_GAP_MS 5

static void
vmh_snmp_drain(struct vmh_snmp *s, bool all)
{
    bool more;

    for (int n = 0;; n++) {
        struct vmh_snmp_event *ev;

        g_mutex_lock(&s->lock);
        ev = n < VMH_SNMP_BURST || all ? g_queue_pop_head(&s->queue) : NULL;
        more = !g_queue_is_empty(&s->queue);
        g_mutex_unlock(&s->lock);
        if (!ev)
            break;
        vmh_snmp_traps_send(s, ev);
        vmh_snmp_event_free(ev);
    }
    if (more && !all) {
        struct itimerspec its = {.it_value.tv_nsec = VMH_SNMP_BURST_GAP_MS * 1000000L};

        if (timerfd_settime(s->drain_timer, 0, &its, NULL) == 0)
            s->drain_armed = true;
        else
            log_err("snmp", "cannot pace notifications: %s", strerror(errno));
    }
}

static void
vmh_snmp_pipe_cb(int fd, void *opaque)
{
    struct vmh_snmp *s = opaque;
    char buf[64];
    bool stopping, flush;

    while (read(fd, buf, sizeof buf) > 0)
        ;
    vmh_snmp_run_call(s);
    g_mutex_lock(&s->lock);
    stopping = s->stopping;
    flush = s->flush_on_stop;
    g_mutex_unlock(&s->lock);
    if (stopping) {
        /* the way out flushes at once; a switch-over keeps the queue for
         * the agent that follows */
        if (flush && s->live)
            vmh_snmp_drain(s, true);
        s->running = false;
        return;
    }
    /* the next burst is due on the timer */
    if (s->live && !s->drain_armed)
        vmh_snmp_drain(s, false);
}

static void
vmh_snmp_drain_timer_cb(int fd, void *opaque)
{
    struct vmh_snmp *s = opaque;
    uint64_t expirations;

    while (read(fd, &expirations, sizeof expirations) > 0)
        ;
    s->drain_armed = false;
    if (s->live)
        vmh_snmp_drain(s, false);
}

/* --- the thread --- */

/* Sets net-snmp up in the role of s->starting, its addresses bound but not
 * answering yet; the first apply makes it live. */
static int
vmh_snmp_thread_init(struct vmh_snmp *s)
{
    struct vmh_snmp_change *ch = s->starting;
    int rc = -EIO;

    s->subagent = ch->role == VMH_SNMP_SUBAGENT;
    snmp_disable_log();
    snmp_enable_calllog();
    vmh_snmp_current = s;
    snmp_register_callback(SNMP_CALLBACK_LIBRARY, SNMP_CALLBACK_LOGGING, vmh_snmp_log_cb, NULL);

    netsnmp_ds_set_string(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_CONFIGURATION_DIR, s->conf_dir);
    netsnmp_ds_set_string(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_PERSISTENT_DIR, s->persist_dir);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 0);
    netsnmp_ds_set_boolean(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_ROLE, s->subagent);
    if (s->subagent)
        netsnmp_ds_set_string(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_X_SOCKET,
                              ch->conf->agentx_socket);
    netsnmp_ds_set_boolean(NETSNMP_DS_APPLICATION_ID,
                           NETSNMP_DS_AGENT_DONT_LOG_TCPWRAPPERS_CONNECTS, 1);
    add_to_init_list("-smux");
    if (init_agent(VMH_SNMP_APP) != 0) {
        log_err("snmp", "net-snmp's agent library failed to initialise");
        goto cleanup;
    }
    /* Reconnects within a second when the master (re)starts; init_agent()
     * has just set net-snmp's default of 15 s. */
    if (s->subagent)
        netsnmp_ds_set_int(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_AGENTX_PING_INTERVAL, 1);
    s->reg_objects =
        vmh_snmp_register(s, "nfvVmHealthMIB", vmh_mib_objects, G_N_ELEMENTS(vmh_mib_objects));
    if (!s->reg_objects)
        goto cleanup;
    if (!s->subagent) {
        s->reg_system = vmh_snmp_register(s, "system", vmh_mib_system, VMH_MIB_SYSTEM_LEN);
        if (!s->reg_system)
            goto cleanup;
        /* VACM would refuse everything (it has no configuration): ours
         * replaces it, once per request. */
        snmp_unregister_callback(SNMP_CALLBACK_APPLICATION, SNMPD_CALLBACK_ACM_CHECK,
                                 vacm_in_view_callback, NULL, 1);
        snmp_unregister_callback(SNMP_CALLBACK_APPLICATION, SNMPD_CALLBACK_ACM_CHECK_INITIAL,
                                 vacm_in_view_callback, NULL, 1);
        snmp_unregister_callback(SNMP_CALLBACK_APPLICATION, SNMPD_CALLBACK_ACM_CHECK_SUBTREE,
                                 vacm_in_view_callback, NULL, 1);
        snmp_register_callback(SNMP_CALLBACK_APPLICATION, SNMPD_CALLBACK_ACM_CHECK_INITIAL,
                               vmh_snmp_acm_initial, NULL);
        /* A subagent connects to its master in init_snmp(): that waits for
         * apply.  A master only reads its files there. */
        init_snmp(VMH_SNMP_APP);
        s->snmp_ready = true;
        /* what init_master_agent() would do: the registry's lookup cache */
        netsnmp_set_lookup_cache_size(-1);
        rc = vmh_snmp_bind(s, ch);
        if (rc < 0)
            goto cleanup;
        rc = -EIO;
    }
    if (register_readfd(s->pipe[0], vmh_snmp_pipe_cb, s) != FD_REGISTERED_OK ||
        register_readfd(s->drain_timer, vmh_snmp_drain_timer_cb, s) != FD_REGISTERED_OK) {
        log_err("snmp", "cannot watch the event pipe");
        goto cleanup;
    }
    rc = 0;

cleanup:
    if (rc < 0)
        vmh_snmp_unbind(ch);
    return rc;
}

static void
vmh_snmp_thread_shutdown(struct vmh_snmp *s)
{
    unregister_readfd(s->pipe[0]);
    unregister_readfd(s->drain_timer);
    vmh_snmp_traps_close(s);
    if (s->flush_on_stop)
        vmh_snmp_log_target_stats(s);
    while (s->listeners->len) {
        struct vmh_snmp_listener *l = g_ptr_array_steal_index(s->listeners, s->listeners->len - 1);

        vmh_snmp_listener_release(l);
    }
    snmp_shutdown(VMH_SNMP_APP);
    shutdown_agent();
    if (s->have_view)
        vmh_mib_view_clear(&s->view);
    s->have_view = false;
    s->live = false;
    s->snmp_ready = false;
    s->reg_objects = s->reg_system = NULL;
    s->drain_armed = false;
}

static void *
vmh_snmp_thread(void *opaque)
{
    struct vmh_snmp *s = opaque;
    int rc = vmh_snmp_thread_init(s);

    s->running = rc == 0;
    g_mutex_lock(&s->start_lock);
    s->start_rc = rc;
    s->start_done = true;
    g_cond_signal(&s->start_cond);
    g_mutex_unlock(&s->start_lock);
    if (rc == 0) {
        while (s->running)
            agent_check_and_process(1);
        /* The last informs (the queue was flushed on the way out) get a
         * moment to be acknowledged. */
        int64_t until = vmh_time_mono_ms() + VMH_SNMP_STOP_GRACE_MS;

        while (s->flush_on_stop && vmh_snmp_traps_outstanding(s) && vmh_time_mono_ms() < until)
            agent_check_and_process(1);
    }
    vmh_snmp_thread_shutdown(s);
    return NULL;
}

/* Starts the net-snmp thread in the role of ch and returns once it is set
 * up (not answering yet). */
static int
vmh_snmp_thread_start(struct vmh_snmp *s, struct vmh_snmp_change *ch)
{
    int rc;

    if (vmh_file_mkdir_p(s->conf_dir, 0700) < 0) {
        rc = -errno;
        log_err("snmp", "cannot create %s: %s", s->conf_dir, strerror(errno));
        return rc;
    }
    g_mutex_lock(&s->lock);
    s->stopping = false;
    s->flush_on_stop = false;
    g_mutex_unlock(&s->lock);
    s->starting = ch;
    s->start_done = false;
    rc = pthread_create(&s->thread, NULL, vmh_snmp_thread, s);
    if (rc != 0) {
        log_err("snmp", "cannot start the SNMP thread: %s", strerror(rc));
        s->starting = NULL;
        return -rc;
    }
    s->thread_started = true;
    g_mutex_lock(&s->start_lock);
    while (!s->start_done)
        g_cond_wait(&s->start_cond, &s->start_lock);
    rc = s->start_rc;
    g_mutex_unlock(&s->start_lock);
    s->starting = NULL;
    if (rc < 0) {
        pthread_join(s->thread, NULL);
        s->thread_started = false;
    }
    return rc;
}

/* flush: send what is queued first (the daemon stops); otherwise the
 * queue stays for the agent that follows (a switch-over). */
static void
vmh_snmp_thread_stop(struct vmh_snmp *s, bool flush)
{
    if (!s->thread_started)
        return;
    g_mutex_lock(&s->lock);
    s->stopping = true;
    s->flush_on_stop = flush;
    g_mutex_unlock(&s->lock);
    if (write(s->pipe[1], "q", 1) < 0 && errno != EAGAIN)
        log_err("snmp", "cannot wake the SNMP thread: %s", strerror(errno));
    pthread_join(s->thread, NULL);
    s->thread_started = false;
    g_mutex_lock(&s->lock);
    s->stopping = false;
    g_mutex_unlock(&s->lock);
}

/* --- configuration changes --- */

static void
vmh_snmp_change_free(struct vmh_snmp_change *ch)
{
    if (!ch)
        return;
    vmh_snmp_conf_free(ch->conf);
    if (ch->bound)
        g_ptr_array_free(ch->bound, TRUE);
    g_free(ch->failed_address);
    g_free(ch);
}

static int
vmh_snmp_do_bind(struct vmh_snmp *s, void *arg)
{
    return vmh_snmp_bind(s, arg);
}

static int
vmh_snmp_do_unbind(struct vmh_snmp *s, void *arg)
{
    (void)s;
    vmh_snmp_unbind(arg);
    return 0;
}

/* Switches to ch->conf: the targets first (so that removed ones are
 * closed while their settings exist), then configuration and targets
 * swapped for the other threads' readers.  On the net-snmp thread, or on
 * the caller's while it does not run (no session is open then). */
static void
vmh_snmp_switch(struct vmh_snmp *s, struct vmh_snmp_change *ch)
{
    GPtrArray *removed = g_ptr_array_new_with_free_func((GDestroyNotify)vmh_snmp_target_rt_free);
    GPtrArray *targets = vmh_snmp_traps_update(s, ch->conf, removed);
    GPtrArray *old_targets;
    struct vmh_snmp_conf *old;

    g_mutex_lock(&s->lock);
    old = s->conf;
    old_targets = s->targets;
    s->conf = ch->conf;
    s->targets = targets;
    s->role = ch->role;
    __atomic_store_n(&s->n_targets, s->conf->n_targets, __ATOMIC_RELAXED);
    g_mutex_unlock(&s->lock);
    ch->conf = NULL;
    g_ptr_array_free(old_targets, TRUE);
    g_ptr_array_free(removed, TRUE);
    vmh_snmp_conf_free(old);
}

static int
vmh_snmp_do_apply(struct vmh_snmp *s, void *arg)
{
    struct vmh_snmp_change *ch = arg;

    if (!s->snmp_ready) {
        /* a subagent connects to its master here */
        init_snmp(VMH_SNMP_APP);
        s->snmp_ready = true;
    }
    vmh_snmp_listen(s, ch);
    vmh_snmp_switch(s, ch);
    vmh_snmp_create_users(s);
    vmh_snmp_traps_open(s);
    if (!s->live) {
        if (s->subagent)
            log_info("snmp", "SNMP AgentX subagent of %s", s->conf->agentx_socket);
        else if (!s->listeners->len)
            log_info("snmp", "SNMP agent sending notifications only (no agent-address)");
    }
    s->live = true;
    if (!s->drain_armed)
        vmh_snmp_drain(s, false);
    return 0;
}

int
vmh_snmp_prepare(struct vmh_snmp *s, struct vmh_snmp_conf *conf, struct vmh_snmp_change **out,
                 char **address)
{
    struct vmh_snmp_change *ch = g_new0(struct vmh_snmp_change, 1);
    bool same;
    int rc = 0;

    *out = NULL;
    *address = NULL;
    ch->conf = conf;
    ch->role = vmh_snmp_conf_role(conf);
    ch->bound = g_ptr_array_new();
    same = ch->role == s->role && (ch->role != VMH_SNMP_SUBAGENT ||
                                   !strcmp(ch->conf->agentx_socket, s->conf->agentx_socket));
    /* net-snmp is one per process: a new role takes a new start in apply,
     * the addresses bound meanwhile by the agent still running. */
    ch->restart = !same && s->role != VMH_SNMP_OFF && ch->role != VMH_SNMP_OFF;
    if (ch->role != VMH_SNMP_OFF && !s->thread_started) {
        rc = vmh_snmp_thread_start(s, ch);
        ch->started = rc == 0;
    } else if (ch->role == VMH_SNMP_MASTER && s->thread_started) {
        rc = vmh_snmp_call(s, vmh_snmp_do_bind, ch);
    }
    if (rc < 0) {
        *address = g_steal_pointer(&ch->failed_address);
        if (*address && ch->failed_errno)
            rc = -ch->failed_errno;
        vmh_snmp_change_free(ch);
        return rc;
    }
    *out = ch;
    return 0;
}

void
vmh_snmp_abort(struct vmh_snmp *s, struct vmh_snmp_change *ch)
{
    if (!ch)
        return;
    if (ch->bound->len && s->thread_started)
        vmh_snmp_call(s, vmh_snmp_do_unbind, ch);
    if (ch->started)
        vmh_snmp_thread_stop(s, false);
    vmh_snmp_change_free(ch);
}

void
vmh_snmp_apply(struct vmh_snmp *s, struct vmh_snmp_change *ch)
{
    if (!ch)
        return;
    if (s->thread_started && (ch->restart || ch->role == VMH_SNMP_OFF)) {
        log_info("snmp",
                 ch->role == VMH_SNMP_OFF
                     ? "SNMP agent stopping: agent/snmp configures nothing any more"
                     : "SNMP agent restarting as %s",
                 ch->role == VMH_SNMP_SUBAGENT ? "an AgentX subagent" : "its own master agent");
        vmh_snmp_thread_stop(s, false);
    }
    if (ch->role != VMH_SNMP_OFF && !s->thread_started && vmh_snmp_thread_start(s, ch) < 0)
        log_err("snmp", "the SNMP agent could not start in its new role: it does not answer "
                        "and sends nothing until agent/snmp changes again");
    if (s->thread_started)
        vmh_snmp_call(s, vmh_snmp_do_apply, ch);
    else
        vmh_snmp_switch(s, ch);
    vmh_snmp_change_free(ch);
}

int
vmh_snmp_configure(struct vmh_snmp *s, struct vmh_snmp_conf *conf)
{
    struct vmh_snmp_change *ch;
    char *address = NULL;
    int rc = vmh_snmp_prepare(s, conf, &ch, &address);

    g_free(address);
    if (rc < 0)
        return rc;
    vmh_snmp_apply(s, ch);
    return 0;
}

/* --- public --- */

int
vmh_snmp_new(const struct vmh_snmp_options *opts, struct vmh_snmp **out)
{
    struct vmh_snmp *s = g_new0(struct vmh_snmp, 1);
    char host[256] = "";
    char *path;

    s->conf = g_new0(struct vmh_snmp_conf, 1);
    s->role = VMH_SNMP_OFF;
    s->targets = g_ptr_array_new();
    s->listeners = g_ptr_array_new();
    s->pipe[0] = s->pipe[1] = -1;
    s->drain_timer = -1;
    g_mutex_init(&s->lock);
    g_mutex_init(&s->start_lock);
    g_cond_init(&s->start_cond);
    g_mutex_init(&s->call_lock);
    g_cond_init(&s->call_cond);
    g_queue_init(&s->queue);
    s->persist_dir = g_build_filename(opts->state_dir, "snmp", NULL);
    s->conf_dir = g_build_filename(s->persist_dir, "conf", NULL);
    gethostname(host, sizeof host - 1);
    s->sys_name = g_strdup(host);
    s->sys_descr = g_strdup(opts->sys_descr ? opts->sys_descr
                                            : "vmhealth NFV infrastructure agent (hypervisor and "
                                              "VM health, fault notification, cold migration)");
    if (pipe2(s->pipe, O_NONBLOCK | O_CLOEXEC) < 0 ||
        (s->drain_timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0) {
        int err = errno;

        log_err("snmp", "cannot create the event pipe: %s", strerror(err));
        vmh_snmp_free(s);
        return -err;
    }
    /* net-snmp reads SNMPCONFPATH and SNMP_PERSISTENT_DIR before its own
     * settings: point both at folders of ours so that /etc/snmp is never
     * read and /var/lib/snmp never written.  With SNMPCONFPATH set it reads
     * only that path, so the persistent folder (engine ID, boots) is in it.
     * Set here, before any thread of the daemon runs. */
    path = g_strdup_printf("%s:%s", s->conf_dir, s->persist_dir);
    setenv("SNMPCONFPATH", path, 1);
    g_free(path);
    setenv("SNMP_PERSISTENT_DIR", s->persist_dir, 1);
    /* The agent needs no MIB file: none is parsed, no folder scanned. */
    setenv("MIBS", "", 1);
    setenv("MIBDIRS", s->conf_dir, 1);
    *out = s;
    return 0;
}

void
vmh_snmp_attach(struct vmh_snmp *s, struct vmh_engine *engine)
{
    s->engine = engine;
    vmh_engine_observe(engine, vmh_snmp_observe, s);
}

void
vmh_snmp_stop(struct vmh_snmp *s)
{
    if (s)
        vmh_snmp_thread_stop(s, true);
}

void
vmh_snmp_free(struct vmh_snmp *s)
{
    struct vmh_snmp_event *ev;

    if (!s)
        return;
    vmh_snmp_stop(s);
    while ((ev = g_queue_pop_head(&s->queue)))
        vmh_snmp_event_free(ev);
    for (int i = 0; i < 2; i++)
        if (s->pipe[i] >= 0)
            close(s->pipe[i]);
    if (s->drain_timer >= 0)
        close(s->drain_timer);
    g_mutex_clear(&s->lock);
    g_mutex_clear(&s->start_lock);
    g_cond_clear(&s->start_cond);
    g_mutex_clear(&s->call_lock);
    g_cond_clear(&s->call_cond);
    g_ptr_array_set_free_func(s->targets, (GDestroyNotify)vmh_snmp_target_rt_free);
    g_ptr_array_free(s->targets, TRUE);
    g_ptr_array_free(s->listeners, TRUE);
    vmh_snmp_conf_free(s->conf);
    g_free(s->persist_dir);
    g_free(s->conf_dir);
    g_free(s->sys_name);
    g_free(s->sys_descr);
    g_free(s);
}

/* The counters of target i, s->lock held. */
static bool
vmh_snmp_target_stats_locked(struct vmh_snmp *s, size_t i, char *name,
                             struct vmh_snmp_target_stats *out)
{
    const struct vmh_snmp_target_rt *t;

    if (i >= s->targets->len)
        return false;
    t = s->targets->pdata[i];
    g_strlcpy(name, t->conf->name, VMH_SNMP_TARGET_NAME_MAX + 1);
    out->sent = __atomic_load_n(&t->sent, __ATOMIC_RELAXED);
    out->acked = __atomic_load_n(&t->acked, __ATOMIC_RELAXED);
    out->failed = __atomic_load_n(&t->failed, __ATOMIC_RELAXED);
    out->retried = __atomic_load_n(&t->retried, __ATOMIC_RELAXED);
    out->dropped = __atomic_load_n(&t->dropped, __ATOMIC_RELAXED);
    return true;
}

bool
vmh_snmp_target_stats(struct vmh_snmp *s, size_t i, char name[VMH_SNMP_TARGET_NAME_MAX + 1],
                      struct vmh_snmp_target_stats *out)
{
    bool found;

    if (!s)
        return false;
    g_mutex_lock(&s->lock);
    found = vmh_snmp_target_stats_locked(s, i, name, out);
    g_mutex_unlock(&s->lock);
    return found;
}

void
vmh_snmp_log_target_stats(struct vmh_snmp *s)
{
    struct vmh_snmp_target_stats st;
    char name[VMH_SNMP_TARGET_NAME_MAX + 1];

    for (size_t i = 0; vmh_snmp_target_stats(s, i, name, &st); i++)
        log_info("snmp",
                 "target %s: %" PRIu64 " sent, %" PRIu64 " acknowledged, %" PRIu64
                 " failed, %" PRIu64 " retransmitted, %" PRIu64 " dropped",
                 name, st.sent, st.acked, st.failed, st.retried, st.dropped);
}

static const struct lyd_node *
vmh_snmp_state_child(const struct lyd_node *first, const char *name)
{
    const struct lyd_node *n;

    LY_LIST_FOR(first, n)
    {
        if (n->schema && !strcmp(n->schema->name, name) &&
            !strcmp(n->schema->module->name, "vmhealth-agent"))
            return n;
    }
    return NULL;
}

static LY_ERR
vmh_snmp_state_u64(struct lyd_node *parent, const char *name, uint64_t v)
{
    char buf[24];

    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return lyd_new_term(parent, NULL, name, buf, 0, NULL);
}

int
vmh_snmp_state_add(struct vmh_snmp *s, struct lyd_node *tree)
{
    const struct lyd_node *snmp;
    struct lyd_node *t, *state;
    struct vmh_snmp_target_stats st;
    char name[VMH_SNMP_TARGET_NAME_MAX + 1];
    LY_ERR rc = LY_SUCCESS;

    if (!s || !tree)
        return 0;
    snmp = vmh_snmp_state_child(lyd_first_sibling(tree), "agent");
    snmp = snmp ? vmh_snmp_state_child(lyd_child(snmp), "snmp") : NULL;
    if (!snmp)
        return 0;
    /* held across: a configuration change may replace the targets */
    g_mutex_lock(&s->lock);
    LY_LIST_FOR(lyd_child(snmp), t)
    {
        const char *key;

        if (!t->schema || strcmp(t->schema->name, "target") || !lyd_child(t))
            continue;
        key = lyd_get_value(lyd_child(t));
        for (size_t i = 0; vmh_snmp_target_stats_locked(s, i, name, &st); i++) {
            if (strcmp(name, key))
                continue;
            if (lyd_new_inner(t, NULL, "state", 0, &state)) {
                rc = LY_EMEM;
                break;
            }
            rc |= vmh_snmp_state_u64(state, "sent", st.sent);
            rc |= vmh_snmp_state_u64(state, "acknowledged", st.acked);
            rc |= vmh_snmp_state_u64(state, "failed", st.failed);
            break;
        }
    }
    g_mutex_unlock(&s->lock);
    if (rc) {
        log_err("snmp", "cannot add the targets' state: %s", ly_errmsg(LYD_CTX(tree)));
        return -ENOMEM;
    }
    return 0;
}

size_t
vmh_snmp_queue_length(struct vmh_snmp *s)
{
    size_t n;

    g_mutex_lock(&s->lock);
    n = g_queue_get_length(&s->queue);
    g_mutex_unlock(&s->lock);
    return n;
}
