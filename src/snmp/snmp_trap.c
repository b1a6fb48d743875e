/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Notifications: every engine event becomes one trap or inform per target,
 * on the net-snmp thread.  Each target has its own session, so a receiver
 * that is down only ever costs its own informs' retransmissions, handled by
 * net-snmp's timers in the same select loop; nothing waits for it. */
#include "snmp/snmp_priv.h"
#include "util/log.h"
#include "util/time.h"

#include <net-snmp/agent/net-snmp-agent-includes.h>

#include <string.h>

#define VMH_SNMP_REOPEN_MS   30000
#define VMH_SNMP_PENDING_MAX 10000

static const oid vmh_snmp_sysuptime_oid[] = {1, 3, 6, 1, 2, 1, 1, 3, 0};
static const oid vmh_snmp_trapoid_oid[] = {1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0};

enum vmh_snmp_notif_object {
    NOTIF_VM_UUID = 1,
    NOTIF_VM_NAME,
    NOTIF_HOST_NAME,
    NOTIF_CAUSE,
    NOTIF_SEVERITY,
    NOTIF_PPT,
    NOTIF_DEADLINE,
    NOTIF_SOURCE_HOST,
    NOTIF_TARGET_HOST,
    NOTIF_DURATION,
    NOTIF_REASON,
    NOTIF_FAULT_ID,
    NOTIF_MIGRATION_CANCELLED,
};

static const char *const vmh_snmp_notif_names[] = {
    [VMH_EV_VM_ABNORMAL] = "vmhVmAbnormal",
    [VMH_EV_MIGRATION_STARTED] = "vmhVmMigrationStarted",
    [VMH_EV_MIGRATION_COMPLETED] = "vmhVmMigrationCompleted",
    [VMH_EV_MIGRATION_FAILED] = "vmhVmMigrationFailed",
    [VMH_EV_FAULT_CLEARED] = "vmhFaultCleared",
};

/* --- sessions --- */

static void
vmh_snmp_target_log_counters(const struct vmh_snmp_target_rt *t, enum vmh_log_level level)
{
    vmh_log(level, "snmp",
            "target %s: %" PRIu64 " sent, %" PRIu64 " acknowledged, %" PRIu64 " failed, %" PRIu64
            " retransmitted, %" PRIu64 " dropped",
            t->conf->name, __atomic_load_n(&t->sent, __ATOMIC_RELAXED),
            __atomic_load_n(&t->acked, __ATOMIC_RELAXED),
            __atomic_load_n(&t->failed, __ATOMIC_RELAXED),
            __atomic_load_n(&t->retried, __ATOMIC_RELAXED),
            __atomic_load_n(&t->dropped, __ATOMIC_RELAXED));
}

static int
vmh_snmp_target_open(struct vmh_snmp *s, struct vmh_snmp_target_rt *t)
{
    const struct vmh_snmp_target *c = t->conf;
    netsnmp_session in, *sess;
    char *peer;
    u_char engine[64];
    size_t engine_len = 0;

    snmp_sess_init(&in);
    peer = strchr(c->address, ':') ? g_strdup_printf("udp6:[%s]:%u", c->address, c->port)
                                   : g_strdup_printf("udp:%s:%u", c->address, c->port);
    in.peername = peer;
    in.timeout = (long)c->timeout_ms * 1000;
    in.retries = c->retries;
    t->engine_known = true;
    if (!c->v3) {
        in.version = SNMP_VERSION_2c;
        in.community = (u_char *)c->community;
        in.community_len = strlen(c->community);
    } else {
        const struct vmh_snmp_user *u = c->user;
        static const int auth_types[] = {[VMH_SNMP_AUTH_SHA] = NETSNMP_USMAUTH_HMACSHA1,
                                         [VMH_SNMP_AUTH_SHA256] = NETSNMP_USMAUTH_HMAC192SHA256,
                                         [VMH_SNMP_AUTH_SHA512] = NETSNMP_USMAUTH_HMAC384SHA512};
        const netsnmp_priv_alg_info *pai =
            sc_get_priv_alg_bytype(u->priv == VMH_SNMP_PRIV_AES256 ? USM_CREATE_USER_PRIV_AES256
                                                                   : USM_CREATE_USER_PRIV_AES);
        size_t auth_len = 0;
        oid *auth = sc_get_auth_oid(auth_types[u->auth], &auth_len);

        in.version = SNMP_VERSION_3;
        in.securityModel = SNMP_SEC_MODEL_USM;
        in.securityName = u->name;
        in.securityNameLen = strlen(u->name);
        in.securityLevel = c->level == VMH_SNMP_AUTHPRIV     ? SNMP_SEC_LEVEL_AUTHPRIV
                           : c->level == VMH_SNMP_AUTHNOPRIV ? SNMP_SEC_LEVEL_AUTHNOPRIV
                                                             : SNMP_SEC_LEVEL_NOAUTH;
        if (c->level != VMH_SNMP_NOAUTH) {
            if (!auth || !pai) {
                log_err("snmp", "target %s: net-snmp lacks the configured protocols", c->name);
                g_free(peer);
                return -1;
            }
            in.securityAuthProto = auth;
            in.securityAuthProtoLen = auth_len;
            in.securityAuthKeyLen = USM_AUTH_KU_LEN;
            if (generate_Ku(auth, auth_len, (u_char *)u->auth_pass, strlen(u->auth_pass),
                            in.securityAuthKey, &in.securityAuthKeyLen) != SNMPERR_SUCCESS) {
                log_err("snmp", "target %s: cannot derive the authentication key", c->name);
                g_free(peer);
                return -1;
            }
            in.securityPrivProto = pai->alg_oid;
            in.securityPrivProtoLen = pai->oid_len;
            in.securityPrivKeyLen = USM_PRIV_KU_LEN;
            if (generate_Ku(auth, auth_len, (u_char *)u->priv_pass, strlen(u->priv_pass),
                            in.securityPrivKey, &in.securityPrivKeyLen) != SNMPERR_SUCCESS) {
                log_err("snmp", "target %s: cannot derive the privacy key", c->name);
                g_free(peer);
                return -1;
            }
        }
        if (c->engine_id) {
            for (size_t i = 0; c->engine_id[2 * i] && i < sizeof engine; i++) {
                unsigned byte;

                sscanf(c->engine_id + 2 * i, "%2x", &byte);
                engine[engine_len++] = (u_char)byte;
            }
        } else if (!c->inform) {
            /* For a trap this agent is the authoritative engine. */
            engine_len = snmpv3_get_engineID(engine, sizeof engine);
        }
        if (engine_len) {
            in.securityEngineID = engine;
            in.securityEngineIDLen = engine_len;
            in.contextEngineID = engine;
            in.contextEngineIDLen = engine_len;
        }
        /* net-snmp's own discovery of an inform receiver's engine ID is
         * synchronous: it would hold every other target and request for
         * timeout x retries.  vmh_snmp_target_probe() does it asynchronously. */
        in.flags |= SNMP_FLAGS_DONT_PROBE;
        t->engine_known = engine_len > 0 || !c->inform;
    }
    sess = snmp_open(&in);
    g_free(peer);
    if (!sess) {
        int liberr, syserr;
        char *msg = NULL;

        snmp_error(&in, &liberr, &syserr, &msg);
        log_err("snmp", "target %s (%s port %u): cannot open a session: %s", c->name, c->address,
                c->port, msg ? msg : "unknown error");
        free(msg);
        t->retry_open_ms = vmh_time_mono_ms() + VMH_SNMP_REOPEN_MS;
        return -1;
    }
    /* snmp_open() clears the flag; without it every inform would probe. */
    sess->flags |= SNMP_FLAGS_DONT_PROBE;
    t->sess = sess;
    log_debug("snmp", "target %s: %s %s to %s port %u", c->name, c->v3 ? "v3" : "v2c",
              c->inform ? "informs" : "traps", c->address, c->port);
    return 0;
}

static void vmh_snmp_target_send(struct vmh_snmp *s, struct vmh_snmp_target_rt *t,
                                 const struct vmh_snmp_event *ev);
static void vmh_snmp_target_probe(struct vmh_snmp_target_rt *t);

static bool
vmh_snmp_engine_is_ours(const u_char *id, size_t len)
{
    u_char engine[64];
    size_t engine_len = snmpv3_get_engineID(engine, sizeof engine);

    return len == engine_len && !memcmp(id, engine, len);
}

/* Sends what waited for the session (a target whose settings changed, a
 * restarted agent) once the receiver's engine ID is known. */
static void
vmh_snmp_target_resume(struct vmh_snmp *s, struct vmh_snmp_target_rt *t)
{
    struct vmh_snmp_event *ev;

    if (g_queue_is_empty(&t->pending))
        return;
    if (!t->engine_known) {
        if (!t->probing)
            vmh_snmp_target_probe(t);
        return;
    }
    while ((ev = g_queue_pop_head(&t->pending))) {
        vmh_snmp_target_send(s, t, ev);
        vmh_snmp_event_free(ev);
    }
}

void
vmh_snmp_traps_open(struct vmh_snmp *s)
{
    for (guint i = 0; i < s->targets->len; i++) {
        struct vmh_snmp_target_rt *t = s->targets->pdata[i];

        if (t->sess) {
            /* Its receiver's user may have been dropped with another
             * target's session to the same engine: localized again (a
             * no-op when present). */
            if (t->sess->version == SNMP_VERSION_3 && t->sess->securityEngineIDLen &&
                !vmh_snmp_engine_is_ours(t->sess->securityEngineID, t->sess->securityEngineIDLen)) {
                t->sess->flags &= ~SNMP_FLAGS_USER_CREATED;
                usm_create_user_from_session(t->sess);
            }
            continue;
        }
        t->closing = false;
        t->probing = false;
        if (vmh_snmp_target_open(s, t) == 0)
            vmh_snmp_target_resume(s, t);
    }
}

/* Closes the session of t: its informs still unanswered are counted
 * failed (net-snmp times them out), the user localized to its receiver
 * is forgotten so that a new session derives its keys anew. */
static void
vmh_snmp_target_close(struct vmh_snmp_target_rt *t, const char *why)
{
    u_char engine[64];
    size_t engine_len = 0;
    char user[256] = "";

    if (t->outstanding)
        log_warn("snmp", "target %s: %" PRIu64 " informs unacknowledged %s", t->conf->name,
                 t->outstanding, why);
    t->closing = true;
    if (t->sess) {
        if (t->sess->version == SNMP_VERSION_3 && t->sess->securityEngineIDLen &&
            t->sess->securityEngineIDLen <= sizeof engine &&
            !vmh_snmp_engine_is_ours(t->sess->securityEngineID, t->sess->securityEngineIDLen)) {
            engine_len = t->sess->securityEngineIDLen;
            memcpy(engine, t->sess->securityEngineID, engine_len);
            g_strlcpy(user, t->sess->securityName ? t->sess->securityName : "", sizeof user);
        }
        snmp_close(t->sess);
    }
    t->sess = NULL;
    t->probing = false;
    t->retry_open_ms = 0;
    if (engine_len && user[0]) {
        struct usmUser *u = usm_get_user(engine, engine_len, user);

        if (u) {
            usm_remove_user(u);
            usm_free_user(u);
        }
    }
}

static void
vmh_snmp_target_fail_pending(struct vmh_snmp_target_rt *t)
{
    if (g_queue_is_empty(&t->pending))
        return;
    __atomic_add_fetch(&t->failed, g_queue_get_length(&t->pending), __ATOMIC_RELAXED);
    g_queue_clear_full(&t->pending, (GDestroyNotify)vmh_snmp_event_free);
}

void
vmh_snmp_traps_close(struct vmh_snmp *s)
{
    for (guint i = 0; i < s->targets->len; i++) {
        struct vmh_snmp_target_rt *t = s->targets->pdata[i];

        vmh_snmp_target_fail_pending(t);
        vmh_snmp_target_close(t, "at shutdown");
    }
}

void
vmh_snmp_target_rt_free(struct vmh_snmp_target_rt *t)
{
    if (!t)
        return;
    g_queue_clear_full(&t->pending, (GDestroyNotify)vmh_snmp_event_free);
    g_free(t);
}

GPtrArray *
vmh_snmp_traps_update(struct vmh_snmp *s, const struct vmh_snmp_conf *conf, GPtrArray *removed)
{
    size_t n = conf->n_targets;
    ssize_t *match = g_new(ssize_t, n + 1);
    bool *changed = g_new(bool, n + 1);
    bool *kept = g_new0(bool, s->targets->len + 1);
    GPtrArray *out = g_ptr_array_new();
    size_t queued;

    g_mutex_lock(&s->lock);
    queued = g_queue_get_length(&s->queue);
    g_mutex_unlock(&s->lock);
    vmh_snmp_conf_match_targets(s->conf, conf, match, changed);
    for (size_t j = 0; j < n; j++) {
        struct vmh_snmp_target_rt *t;

        if (match[j] >= 0) {
            t = s->targets->pdata[match[j]];
            kept[match[j]] = true;
            if (changed[j]) {
                vmh_snmp_target_close(t, "when its configuration changed");
                log_info("snmp", "target %s: changed, a new session follows", t->conf->name);
            }
        } else {
            t = g_new0(struct vmh_snmp_target_rt, 1);
            t->snmp = s;
            g_queue_init(&t->pending);
            log_info("snmp", "target %s: added", conf->targets[j].name);
        }
        t->conf = &conf->targets[j];
        g_ptr_array_add(out, t);
    }
    for (guint i = 0; i < s->targets->len; i++) {
        struct vmh_snmp_target_rt *t = s->targets->pdata[i];

        if (kept[i])
            continue;
        /* what it was still to get: the events queued, the informs
         * waiting for its engine ID or for an answer */
        __atomic_add_fetch(&t->dropped, queued, __ATOMIC_RELAXED);
        vmh_snmp_target_fail_pending(t);
        vmh_snmp_target_close(t, "when it was removed");
        log_info("snmp", "target %s: removed", t->conf->name);
        vmh_snmp_target_log_counters(t, VMH_LOG_INFO);
        g_ptr_array_add(removed, t);
    }
    g_free(match);
    g_free(changed);
    g_free(kept);
    return out;
}

bool
vmh_snmp_traps_outstanding(const struct vmh_snmp *s)
{
    for (guint i = 0; i < s->targets->len; i++) {
        const struct vmh_snmp_target_rt *t = s->targets->pdata[i];

        if (t->outstanding || t->probing)
            return true;
    }
    return false;
}

/* --- PDUs --- */

static void
vmh_snmp_add_obj(netsnmp_pdu *pdu, enum vmh_snmp_notif_object obj, u_char type, const void *value,
                 size_t len)
{
    const oid name[] = {VMH_MIB_ROOT, 1, 4, obj, 0};

    snmp_pdu_add_variable(pdu, name, G_N_ELEMENTS(name), type, value, len);
}

static void
vmh_snmp_add_str(netsnmp_pdu *pdu, enum vmh_snmp_notif_object obj, const char *s)
{
    s = s ? s : "";
    vmh_snmp_add_obj(pdu, obj, ASN_OCTET_STR, s, vmh_mib_utf8_len(s));
}

static void
vmh_snmp_add_int(netsnmp_pdu *pdu, enum vmh_snmp_notif_object obj, u_char type, long v)
{
    vmh_snmp_add_obj(pdu, obj, type, &v, sizeof v);
}

static netsnmp_pdu *
vmh_snmp_build_pdu(const struct vmh_snmp_event *ev, bool inform)
{
    netsnmp_pdu *pdu = snmp_pdu_create(inform ? SNMP_MSG_INFORM : SNMP_MSG_TRAP2);
    const oid trap_oid[] = {VMH_MIB_ROOT, 0, (oid)ev->type + 1};
    long uptime = (long)netsnmp_get_agent_uptime();
    uint8_t deadline[11];

    snmp_pdu_add_variable(pdu, vmh_snmp_sysuptime_oid, G_N_ELEMENTS(vmh_snmp_sysuptime_oid),
                          ASN_TIMETICKS, &uptime, sizeof uptime);
    snmp_pdu_add_variable(pdu, vmh_snmp_trapoid_oid, G_N_ELEMENTS(vmh_snmp_trapoid_oid),
                          ASN_OBJECT_ID, trap_oid, sizeof trap_oid);
    vmh_snmp_add_str(pdu, NOTIF_VM_UUID, ev->vm_uuid);
    vmh_snmp_add_str(pdu, NOTIF_VM_NAME, ev->vm_name);
    switch (ev->type) {
    case VMH_EV_VM_ABNORMAL:
        vmh_snmp_add_str(pdu, NOTIF_HOST_NAME, ev->host);
        vmh_snmp_add_int(pdu, NOTIF_CAUSE, ASN_INTEGER, (long)ev->cause);
        vmh_snmp_add_int(pdu, NOTIF_SEVERITY, ASN_INTEGER, (long)ev->severity + 1);
        vmh_snmp_add_int(pdu, NOTIF_PPT, ASN_UNSIGNED, (long)ev->ppt);
        vmh_mib_date_and_time(ev->deadline_ms, deadline);
        vmh_snmp_add_obj(pdu, NOTIF_DEADLINE, ASN_OCTET_STR, deadline, sizeof deadline);
        vmh_snmp_add_int(pdu, NOTIF_FAULT_ID, ASN_UNSIGNED, (long)(ev->fault_id & 0xffffffffu));
        break;
    case VMH_EV_MIGRATION_STARTED:
        vmh_snmp_add_str(pdu, NOTIF_HOST_NAME, ev->source_host ? ev->source_host : ev->host);
        vmh_snmp_add_str(pdu, NOTIF_SOURCE_HOST, ev->source_host);
        vmh_snmp_add_str(pdu, NOTIF_TARGET_HOST, ev->target_host);
        break;
    case VMH_EV_MIGRATION_COMPLETED:
        vmh_snmp_add_str(pdu, NOTIF_HOST_NAME, ev->target_host ? ev->target_host : ev->host);
        vmh_snmp_add_str(pdu, NOTIF_SOURCE_HOST, ev->source_host);
        vmh_snmp_add_str(pdu, NOTIF_TARGET_HOST, ev->target_host);
        vmh_snmp_add_int(pdu, NOTIF_DURATION, ASN_UNSIGNED,
                         (long)(ev->duration_ms > 0xffffffffu ? 0xffffffffu : ev->duration_ms));
        break;
    case VMH_EV_MIGRATION_FAILED:
        vmh_snmp_add_str(pdu, NOTIF_HOST_NAME, ev->host);
        vmh_snmp_add_str(pdu, NOTIF_REASON, ev->reason);
        break;
    case VMH_EV_FAULT_CLEARED:
        vmh_snmp_add_str(pdu, NOTIF_HOST_NAME, ev->host);
        vmh_snmp_add_int(pdu, NOTIF_FAULT_ID, ASN_UNSIGNED, (long)(ev->fault_id & 0xffffffffu));
        vmh_snmp_add_int(pdu, NOTIF_MIGRATION_CANCELLED, ASN_INTEGER,
                         ev->migration_cancelled ? 1 : 2);
        break;
    }
    return pdu;
}

/* --- sending --- */

struct vmh_snmp_inform {
    struct vmh_snmp_target_rt *target;
    enum vmh_event_type type;
    char uuid[VMH_UUID_LEN + 1];
};

static int
vmh_snmp_inform_cb(int op, netsnmp_session *sess, int reqid, netsnmp_pdu *pdu, void *magic)
{
    struct vmh_snmp_inform *inf = magic;
    struct vmh_snmp_target_rt *t = inf->target;

    switch (op) {
    case NETSNMP_CALLBACK_OP_RESEND:
        __atomic_add_fetch(&t->retried, 1, __ATOMIC_RELAXED);
        return 1;
    case NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE:
        if (pdu && pdu->command == SNMP_MSG_RESPONSE) {
            __atomic_add_fetch(&t->acked, 1, __ATOMIC_RELAXED);
            log_debug("snmp", "target %s: %s for %s acknowledged", t->conf->name,
                      vmh_snmp_notif_names[inf->type], inf->uuid);
        } else {
            __atomic_add_fetch(&t->failed, 1, __ATOMIC_RELAXED);
            log_warn("snmp", "target %s: %s for %s answered by a report, not acknowledged",
                     t->conf->name, vmh_snmp_notif_names[inf->type], inf->uuid);
        }
        break;
    case NETSNMP_CALLBACK_OP_TIMED_OUT:
        __atomic_add_fetch(&t->failed, 1, __ATOMIC_RELAXED);
        if (t->closing)
            break;
        log_warn("snmp", "target %s: %s for %s not acknowledged after %d retries", t->conf->name,
                 vmh_snmp_notif_names[inf->type], inf->uuid, sess->retries);
        vmh_snmp_target_log_counters(t, VMH_LOG_INFO);
        break;
    default:
        /* Disconnect, or anything else: the session is going away. */
        return 1;
    }
    if (t->outstanding)
        t->outstanding--;
    g_free(inf);
    return 1;
}

/* The answer to an engine ID probe: a report carrying the receiver's
 * engine ID, which net-snmp has put into the session; the user's keys are
 * localized to it and the informs that waited are sent. */
static int
vmh_snmp_probe_cb(int op, netsnmp_session *sess, int reqid, netsnmp_pdu *pdu, void *magic)
{
    struct vmh_snmp_target_rt *t = magic;
    struct vmh_snmp_event *ev;

    if (op != NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE && op != NETSNMP_CALLBACK_OP_TIMED_OUT)
        return 1;
    t->probing = false;
    if (t->closing)
        return 1;
    if (op == NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE && sess->securityEngineIDLen &&
        usm_create_user_from_session(sess) == SNMPERR_SUCCESS) {
        char hex[2 * 32 + 1] = "";

        for (size_t i = 0; i < sess->securityEngineIDLen && i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", sess->securityEngineID[i]);
        log_info("snmp", "target %s: receiver's engine ID %s discovered", t->conf->name, hex);
        t->engine_known = true;
        while ((ev = g_queue_pop_head(&t->pending))) {
            vmh_snmp_target_send(t->snmp, t, ev);
            vmh_snmp_event_free(ev);
        }
        return 1;
    }
    log_warn("snmp",
             "target %s: the receiver's engine ID could not be discovered (%s): %u "
             "informs failed; configure engine-id to avoid the discovery",
             t->conf->name, op == NETSNMP_CALLBACK_OP_TIMED_OUT ? "no answer" : "no report",
             g_queue_get_length(&t->pending));
    __atomic_add_fetch(&t->failed, g_queue_get_length(&t->pending), __ATOMIC_RELAXED);
    g_queue_clear_full(&t->pending, (GDestroyNotify)vmh_snmp_event_free);
    return 1;
}

/* RFC 3414 discovery: an unauthenticated request with an empty user, which
 * the receiver answers with a report naming its engine ID. */
static void
vmh_snmp_target_probe(struct vmh_snmp_target_rt *t)
{
    netsnmp_pdu *pdu = snmp_pdu_create(SNMP_MSG_GET);

    pdu->version = SNMP_VERSION_3;
    pdu->securityName = strdup("");
    pdu->securityNameLen = 0;
    pdu->securityLevel = SNMP_SEC_LEVEL_NOAUTH;
    pdu->securityModel = SNMP_SEC_MODEL_USM;
    if (!snmp_async_send(t->sess, pdu, vmh_snmp_probe_cb, t)) {
        log_warn("snmp", "target %s: cannot send an engine ID probe: %s", t->conf->name,
                 snmp_api_errstring(t->sess->s_snmp_errno));
        snmp_free_pdu(pdu);
        return;
    }
    t->probing = true;
}

static void
vmh_snmp_target_send(struct vmh_snmp *s, struct vmh_snmp_target_rt *t,
                     const struct vmh_snmp_event *ev)
{
    netsnmp_pdu *pdu;

    if (!t->sess && (vmh_time_mono_ms() < t->retry_open_ms || vmh_snmp_target_open(s, t) < 0)) {
        __atomic_add_fetch(&t->dropped, 1, __ATOMIC_RELAXED);
        return;
    }
    if (!t->engine_known) {
        if (g_queue_get_length(&t->pending) >= VMH_SNMP_PENDING_MAX) {
            __atomic_add_fetch(&t->dropped, 1, __ATOMIC_RELAXED);
            return;
        }
        g_queue_push_tail(&t->pending, vmh_snmp_event_copy(ev));
        if (!t->probing)
            vmh_snmp_target_probe(t);
        return;
    }
    pdu = vmh_snmp_build_pdu(ev, t->conf->inform);
    if (t->conf->inform) {
        struct vmh_snmp_inform *inf = g_new0(struct vmh_snmp_inform, 1);

        inf->target = t;
        inf->type = ev->type;
        g_strlcpy(inf->uuid, ev->vm_uuid, sizeof inf->uuid);
        if (!snmp_async_send(t->sess, pdu, vmh_snmp_inform_cb, inf)) {
            g_free(inf);
            goto failed;
        }
        t->outstanding++;
    } else if (!snmp_send(t->sess, pdu)) {
        goto failed;
    }
    __atomic_add_fetch(&t->sent, 1, __ATOMIC_RELAXED);
    vmh_engine_count(s->engine, VMH_STAT_TRAPS_SENT, 1);
    return;

failed:
    __atomic_add_fetch(&t->failed, 1, __ATOMIC_RELAXED);
    log_warn("snmp", "target %s: cannot send %s for %s: %s", t->conf->name,
             vmh_snmp_notif_names[ev->type], ev->vm_uuid,
             snmp_api_errstring(t->sess->s_snmp_errno));
    snmp_free_pdu(pdu);
}

void
vmh_snmp_traps_send(struct vmh_snmp *s, const struct vmh_snmp_event *ev)
{
    for (guint i = 0; i < s->targets->len; i++)
        vmh_snmp_target_send(s, s->targets->pdata[i], ev);
    log_debug("snmp", "%s for %s sent to %u targets, %" PRId64 " us after the event",
              vmh_snmp_notif_names[ev->type], ev->vm_uuid, s->targets->len,
              g_get_monotonic_time() - ev->queued_us);
}
