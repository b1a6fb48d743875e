/* SPDX-License-Identifier: GPL-3.0-or-later */
/* RFC 5277 notifications: the engine's events become nfv-vm-health
 * notifications, kept in a bounded replay log (persisted in the state
 * directory, so that a replay works across a restart) and queued to every
 * subscribed session allowed to see them.  The engine's observer only
 * copies the event onto a queue; the notifier thread does the rest. */
#include "netconf/netconf_p.h"

#include "config/config.h"
#include "util/file.h"
#include "util/log.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libnetconf2/messages_server.h>
#include <libnetconf2/session_server.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VMH_REPLAY_CAPACITY 1000
#define VMH_REPLAY_FILE     "netconf-replay.log"
#define VMH_REPLAY_MAGIC    "vmhealth-netconf-replay 1"

struct vmh_replay_entry {
    int64_t ms;
    char *manager; /* NULL: none */
    char *xml;     /* one line */
};

struct vmh_nc_replay {
    GQueue entries; /* oldest first */
    char *path;
    int64_t created_ms;
    size_t file_entries;
};

struct vmh_ev_copy {
    struct vmh_event ev;
    char *strs[7];
};

static struct vmh_ev_copy vmh_stop_marker, vmh_rearm_marker;

/* --- the replay log --- */

static void
vmh_replay_entry_free(void *p)
{
    struct vmh_replay_entry *e = p;

    free(e->manager);
    free(e->xml);
    free(e);
}

static char *
vmh_replay_line(const struct vmh_replay_entry *e)
{
    return g_strdup_printf("%" PRId64 "\t%s\t%s\n", e->ms, e->manager ? e->manager : "-", e->xml);
}

static int
vmh_replay_rewrite(struct vmh_nc_replay *r)
{
    GString *s = g_string_new(NULL);
    int rc;

    g_string_append_printf(s, VMH_REPLAY_MAGIC " %" PRId64 "\n", r->created_ms);
    for (GList *l = r->entries.head; l; l = l->next) {
        char *line = vmh_replay_line(l->data);

        g_string_append(s, line);
        g_free(line);
    }
    rc = vmh_file_write_atomic(r->path, s->str, s->len, 0600);
    g_string_free(s, TRUE);
    r->file_entries = r->entries.length;
    return rc;
}

static void
vmh_replay_load(struct vmh_nc_replay *r)
{
    char *text = NULL, **lines;
    gsize len;

    r->created_ms = vmh_time_real_ms();
    if (!g_file_get_contents(r->path, &text, &len, NULL)) {
        vmh_replay_rewrite(r);
        return;
    }
    lines = g_strsplit(text, "\n", -1);
    if (lines[0] && g_str_has_prefix(lines[0], VMH_REPLAY_MAGIC " "))
        r->created_ms = strtoll(lines[0] + strlen(VMH_REPLAY_MAGIC " "), NULL, 10);
    for (size_t i = 1; lines[0] && lines[i]; i++) {
        char **f = g_strsplit(lines[i], "\t", 3);

        if (f[0] && f[1] && f[2]) {
            struct vmh_replay_entry *e = calloc(1, sizeof *e);

            e->ms = strtoll(f[0], NULL, 10);
            e->manager = strcmp(f[1], "-") ? strdup(f[1]) : NULL;
            e->xml = strdup(f[2]);
            g_queue_push_tail(&r->entries, e);
        }
        g_strfreev(f);
    }
    while (r->entries.length > VMH_REPLAY_CAPACITY)
        vmh_replay_entry_free(g_queue_pop_head(&r->entries));
    g_strfreev(lines);
    g_free(text);
    vmh_replay_rewrite(r);
    log_info("netconf", "replay log %s: %u notifications", r->path, r->entries.length);
}

static void
vmh_replay_append(struct vmh_nc_replay *r, int64_t ms, const char *manager,
                  const struct lyd_node *tree)
{
    struct vmh_replay_entry *e = calloc(1, sizeof *e);
    char *xml = NULL, *line;
    GString *esc;
    FILE *f;
    int fd;

    if (lyd_print_mem(&xml, tree, LYD_XML, LYD_PRINT_SHRINK) != LY_SUCCESS || !e) {
        free(xml);
        free(e);
        return;
    }
    /* One entry per line: line breaks in values become character references. */
    esc = g_string_new(NULL);
    for (const char *p = xml; *p; p++) {
        if (*p == '\n')
            g_string_append(esc, "&#10;");
        else if (*p == '\t')
            g_string_append(esc, "&#9;");
        else if (*p == '\r')
            g_string_append(esc, "&#13;");
        else
            g_string_append_c(esc, *p);
    }
    free(xml);
    e->ms = ms;
    e->manager = manager ? strdup(manager) : NULL;
    e->xml = g_string_free(esc, FALSE);
    g_queue_push_tail(&r->entries, e);
    while (r->entries.length > VMH_REPLAY_CAPACITY)
        vmh_replay_entry_free(g_queue_pop_head(&r->entries));
    if (r->file_entries >= 2 * VMH_REPLAY_CAPACITY) {
        vmh_replay_rewrite(r);
        return;
    }
    line = vmh_replay_line(e);
    fd = open(r->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    f = fd >= 0 ? fdopen(fd, "a") : NULL;
    if (!f && fd >= 0)
        close(fd);
    if (!f || fputs(line, f) < 0)
        log_warn("netconf", "cannot append to %s: %s", r->path, strerror(errno));
    if (f)
        fclose(f);
    g_free(line);
    r->file_entries++;
}

/* --- events to notifications --- */

static void
vmh_ev_free(struct vmh_ev_copy *c)
{
    for (size_t i = 0; i < G_N_ELEMENTS(c->strs); i++)
        g_free(c->strs[i]);
    free(c);
}

/* The engine has no way to unregister an observer, and the server stops
 * before the loop does: events then find no server and are dropped. */
static pthread_mutex_t vmh_relay_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vmh_nc_server *vmh_relay_srv;

void
vmh_nc_notif_event(const struct vmh_event *ev, void *opaque)
{
    struct vmh_ev_copy *c;

    pthread_mutex_lock(&vmh_relay_lock);
    if (!vmh_relay_srv) {
        pthread_mutex_unlock(&vmh_relay_lock);
        return;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        pthread_mutex_unlock(&vmh_relay_lock);
        return;
    }
    c->ev = *ev;
    c->ev.vm_uuid = c->strs[0] = g_strdup(ev->vm_uuid);
    c->ev.vm_name = c->strs[1] = g_strdup(ev->vm_name);
    c->ev.host = c->strs[2] = g_strdup(ev->host);
    c->ev.vnf_manager = c->strs[3] = g_strdup(ev->vnf_manager);
    c->ev.source_host = c->strs[4] = g_strdup(ev->source_host);
    c->ev.target_host = c->strs[5] = g_strdup(ev->target_host);
    c->ev.reason = c->strs[6] = g_strdup(ev->reason);
    g_async_queue_push(vmh_relay_srv->events, c);
    pthread_mutex_unlock(&vmh_relay_lock);
}

static void
vmh_term(struct lyd_node *n, const char *name, const char *value)
{
    if (value)
        lyd_new_term(n, NULL, name, value, 0, NULL);
}

static void
vmh_term_u64(struct lyd_node *n, const char *name, uint64_t v)
{
    char buf[24];

    snprintf(buf, sizeof buf, "%" PRIu64, v);
    lyd_new_term(n, NULL, name, buf, 0, NULL);
}

static struct lyd_node *
vmh_ev_tree(struct vmh_nc_server *srv, const struct vmh_event *ev)
{
    static const char *names[] = {
        [VMH_EV_VM_ABNORMAL] = "vm-abnormal",
        [VMH_EV_MIGRATION_STARTED] = "vm-migration-started",
        [VMH_EV_MIGRATION_COMPLETED] = "vm-migration-completed",
        [VMH_EV_MIGRATION_FAILED] = "vm-migration-failed",
        [VMH_EV_FAULT_CLEARED] = "fault-cleared",
    };
    const struct lys_module *mod = ly_ctx_get_module_implemented(srv->ctx, VMH_MOD);
    struct lyd_node *n = NULL;
    char t[40];

    if (lyd_new_inner(NULL, mod, names[ev->type], 0, &n) != LY_SUCCESS)
        return NULL;
    switch (ev->type) {
    case VMH_EV_VM_ABNORMAL:
        vmh_term(n, "vm-uuid", ev->vm_uuid);
        vmh_term(n, "vm-name", ev->vm_name);
        vmh_term(n, "host", ev->host);
        vmh_term(n, "cause", vmh_cause_str(ev->cause));
        vmh_term(n, "severity", vmh_severity_str(ev->severity));
        vmh_term_u64(n, "preprocessing-time", ev->ppt);
        if (ev->deadline_ms) {
            vmh_time_format(ev->deadline_ms, t, sizeof t);
            vmh_term(n, "migration-deadline", t);
        }
        vmh_term_u64(n, "fault-id", ev->fault_id);
        break;
    case VMH_EV_MIGRATION_STARTED:
    case VMH_EV_MIGRATION_COMPLETED:
        vmh_term(n, "vm-uuid", ev->vm_uuid);
        vmh_term(n, "source-host", ev->source_host);
        vmh_term(n, "target-host", ev->target_host);
        if (ev->type == VMH_EV_MIGRATION_COMPLETED)
            vmh_term_u64(n, "duration", ev->duration_ms);
        break;
    case VMH_EV_MIGRATION_FAILED:
        vmh_term(n, "vm-uuid", ev->vm_uuid);
        vmh_term(n, "host", ev->host);
        vmh_term(n, "reason", ev->reason);
        break;
    case VMH_EV_FAULT_CLEARED:
        vmh_term_u64(n, "fault-id", ev->fault_id);
        vmh_term(n, "host", ev->host);
        vmh_term(n, "vm-uuid", ev->vm_uuid);
        vmh_term(n, "migration-cancelled", ev->migration_cancelled ? "true" : "false");
        break;
    }
    return n;
}

static struct vmh_nc_msg *
vmh_msg_new(struct lyd_node *tree, int64_t ms, const char *manager)
{
    struct vmh_nc_msg *m = calloc(1, sizeof *m);
    char t[40];

    m->refs = 1;
    m->tree = tree;
    m->time_ms = ms;
    vmh_time_format(ms, t, sizeof t);
    m->event_time = strdup(t);
    m->vnf_manager = manager ? strdup(manager) : NULL;
    return m;
}

static struct vmh_nc_msg *
vmh_msg_special(struct vmh_nc_server *srv, const char *name, bool complete)
{
    struct lyd_node *n = NULL;
    char *path = g_strdup_printf("/nc-notifications:%s", name);
    struct vmh_nc_msg *m;

    lyd_new_path(NULL, srv->ctx, path, NULL, 0, &n);
    g_free(path);
    m = vmh_msg_new(n, vmh_time_real_ms(), NULL);
    m->complete = complete;
    return m;
}

/* Under srv->lock: subscriptions whose stopTime passed get their
 * notificationComplete.  Returns the ms until the next stopTime (-1: none). */
static int64_t
vmh_expire(struct vmh_nc_server *srv, int64_t now)
{
    GHashTableIter it;
    gpointer v;
    int64_t next = -1;

    g_hash_table_iter_init(&it, srv->sessions);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct vmh_nc_session *s = v;

        if (!s->subscribed || !s->stop_ms)
            continue;
        if (s->stop_ms <= now) {
            g_queue_push_tail(&s->notifs, vmh_msg_special(srv, "notificationComplete", true));
            s->subscribed = false;
            vmh_nc_schedule_locked(srv, s);
        } else if (next < 0 || s->stop_ms - now < next) {
            next = s->stop_ms - now;
        }
    }
    return next;
}

static void
vmh_dispatch(struct vmh_nc_server *srv, const struct vmh_event *ev)
{
    struct lyd_node *tree = vmh_ev_tree(srv, ev);
    struct vmh_nc_msg *m;
    GHashTableIter it;
    gpointer v;

    if (!tree)
        return;
    m = vmh_msg_new(tree, ev->time_ms ? ev->time_ms : vmh_time_real_ms(), ev->vnf_manager);
    pthread_mutex_lock(&srv->lock);
    /* Logged and dispatched under one lock: a new subscription sees an
     * event either in its replay or live, never both nor neither. */
    vmh_replay_append(srv->replay, m->time_ms, m->vnf_manager, tree);
    g_hash_table_iter_init(&it, srv->sessions);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct vmh_nc_session *s = v;

        if (!s->subscribed || !vmh_acl_may_see(srv, s, m->vnf_manager) ||
            !vmh_nc_filter_notif(tree, s->filter_tree, s->filter_xpath))
            continue;
        g_queue_push_tail(&s->notifs, vmh_nc_msg_ref(m));
        vmh_nc_schedule_locked(srv, s);
    }
    pthread_mutex_unlock(&srv->lock);
    vmh_nc_msg_unref(m);
}

static void *
vmh_notifier(void *data)
{
    struct vmh_nc_server *srv = data;
    int64_t next = -1;

    for (;;) {
        struct vmh_ev_copy *c;

        if (next < 0)
            c = g_async_queue_pop(srv->events);
        else
            c = g_async_queue_timeout_pop(srv->events, (guint64)next * 1000 + 1000);
        if (c == &vmh_stop_marker)
            break;
        if (c && c != &vmh_rearm_marker) {
            vmh_dispatch(srv, &c->ev);
            vmh_ev_free(c);
        }
        pthread_mutex_lock(&srv->lock);
        next = vmh_expire(srv, vmh_time_real_ms());
        pthread_mutex_unlock(&srv->lock);
    }
    return NULL;
}

int
vmh_nc_notif_start(struct vmh_nc_server *srv, const char *state_dir)
{
    srv->replay = calloc(1, sizeof *srv->replay);
    g_queue_init(&srv->replay->entries);
    srv->replay->path = g_strdup_printf("%s/%s", state_dir, VMH_REPLAY_FILE);
    vmh_replay_load(srv->replay);
    srv->events = g_async_queue_new();
    if (pthread_create(&srv->notifier, NULL, vmh_notifier, srv) != 0)
        return -1;
    srv->notifier_started = true;
    pthread_mutex_lock(&vmh_relay_lock);
    vmh_relay_srv = srv;
    pthread_mutex_unlock(&vmh_relay_lock);
    return 0;
}

void
vmh_nc_notif_stop(struct vmh_nc_server *srv)
{
    struct vmh_ev_copy *c;

    pthread_mutex_lock(&vmh_relay_lock);
    if (vmh_relay_srv == srv)
        vmh_relay_srv = NULL;
    pthread_mutex_unlock(&vmh_relay_lock);
    if (srv->notifier_started) {
        g_async_queue_push(srv->events, &vmh_stop_marker);
        pthread_join(srv->notifier, NULL);
        srv->notifier_started = false;
    }
    if (srv->events) {
        while ((c = g_async_queue_try_pop(srv->events)))
            if (c != &vmh_stop_marker && c != &vmh_rearm_marker)
                vmh_ev_free(c);
        g_async_queue_unref(srv->events);
        srv->events = NULL;
    }
    if (srv->replay) {
        g_queue_clear_full(&srv->replay->entries, vmh_replay_entry_free);
        g_free(srv->replay->path);
        free(srv->replay);
        srv->replay = NULL;
    }
}

/* --- create-subscription --- */

static int
vmh_parse_time(const char *v, int64_t *ms)
{
    time_t t;
    char *frac = NULL;

    if (ly_time_str2time(v, &t, &frac) != LY_SUCCESS)
        return -1;
    *ms = (int64_t)t * 1000;
    if (frac) {
        char buf[4] = "000";

        memcpy(buf, frac, strnlen(frac, 3));
        *ms += atoi(buf);
        free(frac);
    }
    return 0;
}

static struct nc_server_reply *
vmh_sub_err(struct vmh_nc_server *srv, enum vmh_nc_tag tag, const char *elem, const char *msg)
{
    struct vmh_nc_error e = {.tag = tag, .message = g_strdup(msg)};

    if (tag == VMH_NC_TAG_BAD_ELEMENT || tag == VMH_NC_TAG_MISSING_ELEMENT) {
        e.type = VMH_NC_PROTOCOL;
        e.element = g_strdup(elem);
    }
    return vmh_nc_error_reply(srv->ctx, &e);
}

struct nc_server_reply *
vmh_nc_subscribe(struct vmh_nc_server *srv, struct vmh_nc_session *s, struct lyd_node *rpc)
{
    const char *stream = vmh_tree_str(rpc, "stream");
    const char *start = vmh_tree_str(rpc, "startTime"), *stop = vmh_tree_str(rpc, "stopTime");
    int64_t start_ms = 0, stop_ms = 0, now = vmh_time_real_ms();
    struct lyd_node *f = NULL, *ftree = NULL;
    char *xpath = NULL;
    unsigned replayed = 0;

    if (stream && strcmp(stream, "NETCONF"))
        return vmh_sub_err(srv, VMH_NC_TAG_INVALID_VALUE, NULL, "no such stream (only NETCONF)");
    if (stop && !start)
        return vmh_sub_err(srv, VMH_NC_TAG_MISSING_ELEMENT, "startTime",
                           "stopTime without startTime");
    if (start && (vmh_parse_time(start, &start_ms) < 0 || start_ms > now))
        return vmh_sub_err(srv, VMH_NC_TAG_BAD_ELEMENT, "startTime", "startTime is in the future");
    if (stop && (vmh_parse_time(stop, &stop_ms) < 0 || stop_ms < start_ms))
        return vmh_sub_err(srv, VMH_NC_TAG_BAD_ELEMENT, "stopTime", "stopTime is before startTime");
    if ((f = vmh_tree_child(rpc, "filter"))) {
        struct lyd_meta *type = lyd_find_meta(f->meta, NULL, "ietf-netconf:type");
        struct lyd_node_any *any = (struct lyd_node_any *)f;
        const char *tv = type ? lyd_get_meta_value(type) : NULL, *sel = NULL;
        struct lyd_meta *m = lyd_find_meta(f->meta, NULL, "ietf-netconf:select");

        sel = m ? lyd_get_meta_value(m) : NULL;
        if (tv && !strcmp(tv, "xpath")) {
            if (!sel)
                return vmh_nc_err_no_select(srv->ctx, "xpath filter without select");
            xpath = strdup(sel);
        } else if (any->value_type == LYD_ANYDATA_DATATREE && any->value.tree) {
            lyd_dup_siblings(any->value.tree, NULL, LYD_DUP_RECURSIVE, &ftree);
        }
    }

    pthread_mutex_lock(&srv->lock);
    if (s->subscribed) {
        pthread_mutex_unlock(&srv->lock);
        free(xpath);
        lyd_free_siblings(ftree);
        return vmh_sub_err(srv, VMH_NC_TAG_IN_USE, NULL, "the session already has a subscription");
    }
    lyd_free_siblings(s->filter_tree);
    free(s->filter_xpath);
    s->filter_tree = ftree;
    s->filter_xpath = xpath;
    nc_session_inc_notif_status(s->nc);
    if (start) {
        for (GList *l = srv->replay->entries.head; l; l = l->next) {
            struct vmh_replay_entry *e = l->data;
            struct lyd_node *tree = NULL, *op = NULL;
            struct ly_in *in = NULL;

            if (e->ms < start_ms || (stop && e->ms > stop_ms) ||
                !vmh_acl_may_see(srv, s, e->manager))
                continue;
            ly_in_new_memory(e->xml, &in);
            if (lyd_parse_op(srv->ctx, NULL, in, LYD_XML, LYD_TYPE_NOTIF_YANG, &tree, &op) ==
                    LY_SUCCESS &&
                vmh_nc_filter_notif(tree, s->filter_tree, s->filter_xpath)) {
                g_queue_push_tail(&s->notifs, vmh_msg_new(tree, e->ms, e->manager));
                tree = NULL;
                replayed++;
            }
            lyd_free_all(tree);
            ly_in_free(in, 0);
        }
        g_queue_push_tail(&s->notifs, vmh_msg_special(srv, "replayComplete", false));
    }
    if (stop && stop_ms <= now) {
        g_queue_push_tail(&s->notifs, vmh_msg_special(srv, "notificationComplete", true));
    } else {
        s->subscribed = true;
        s->stop_ms = stop ? stop_ms : 0;
    }
    vmh_nc_schedule_locked(srv, s);
    pthread_mutex_unlock(&srv->lock);
    if (stop)
        g_async_queue_push(srv->events, &vmh_rearm_marker); /* a new stopTime to watch */
    log_info("netconf", "session %u ('%s') subscribed to NETCONF%s (%u replayed)", s->id, s->user,
             xpath   ? " with an XPath filter"
             : ftree ? " with a subtree filter"
                     : "",
             replayed);
    return nc_server_reply_ok();
}

void
vmh_nc_streams_state(struct vmh_nc_server *srv, struct lyd_node **tree)
{
    struct lyd_node *top = NULL;
    char t[40];

    if (lyd_new_path(NULL, srv->ctx, "/nc-notifications:netconf/streams/stream[name='NETCONF']",
                     NULL, 0, &top) != LY_SUCCESS)
        return;
    lyd_new_path(top, NULL, "/nc-notifications:netconf/streams/stream[name='NETCONF']/description",
                 "vmhealth events: vm-abnormal, vm-migration-*, fault-cleared", 0, NULL);
    lyd_new_path(top, NULL,
                 "/nc-notifications:netconf/streams/stream[name='NETCONF']/replaySupport", "true",
                 0, NULL);
    vmh_time_format(srv->replay ? srv->replay->created_ms : srv->start_ms, t, sizeof t);
    lyd_new_path(top, NULL,
                 "/nc-notifications:netconf/streams/stream[name='NETCONF']/replayLogCreationTime",
                 t, 0, NULL);
    lyd_insert_sibling(*tree, top, tree);
}
