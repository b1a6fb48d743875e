/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The migration journal, and the order "journal, then tell".
 *
 * The journal is the agent's promise to its next run: every live migration
 * case (pending, migrating, or failed and waiting for a target), one line
 * each, rewritten whole when a case changes.  Whoever hears of a case (a log
 * line, an event, hence a notification or a trap) must find it on disk if
 * the agent dies the next instant, or the restarted agent would tell it
 * again or contradict it.  So the order is enforced here, in one place:
 * every change of a case marks the journal dirty (vmh_mig_set), and every
 * word about a case goes through vmh_journal_tell_log/_event, which write a
 * dirty journal, durably, before anything leaves.  Under a hold (many cases
 * changed at once) words wait for the release and its single write.
 *
 * Format, version 2 (one case per line, fields separated by one space):
 *
 *   vmhealth-journal 2
 *   UUID STATE STEP DEADLINE_MS SOURCE TARGET WAS_RUNNING
 *
 * STATE is pending, migrating or failed; STEP the name of the step its
 * request had begun (model.h, "check" when none); DEADLINE_MS the window's
 * end in real milliseconds; TARGET "-" when none; WAS_RUNNING 0 or 1.
 * Version 1 (releases up to 2026-12) wrote STEP as the ordinal of the
 * executor's step enum of the time: it is still read, through the table
 * below that keeps those ordinals whatever the enum becomes
 * (tests/fixtures/journal/ holds a journal written by that release). */
#include "core/engine_priv.h"
#include "util/file.h"
#include "util/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VMH_JOURNAL_FILE    "migrations.journal"
#define VMH_JOURNAL_MAGIC   "vmhealth-journal "
#define VMH_JOURNAL_VERSION 2

/* Version 1's step ordinals, frozen. */
static const char *const vmh_journal_v1_steps[] = {
    "check", "shutdown", "export", "storage", "define", "start", "undefine-source", "done",
};

struct vmh_told {
    enum vmh_log_level level;
    char *line; /* NULL: an event only */
    bool has_event;
    struct vmh_event ev; /* its strings owned here */
};

static void
vmh_told_free(struct vmh_told *t)
{
    g_free(t->line);
    if (t->has_event) {
        g_free((char *)t->ev.vm_uuid);
        g_free((char *)t->ev.vm_name);
        g_free((char *)t->ev.host);
        g_free((char *)t->ev.vnf_manager);
        g_free((char *)t->ev.source_host);
        g_free((char *)t->ev.target_host);
        g_free((char *)t->ev.reason);
    }
    g_free(t);
}

static void
vmh_journal_line(GString *out, const char *uuid, enum vmh_migration_state state,
                 enum vmh_migration_step step, int64_t deadline_ms, const char *source,
                 const char *target, bool was_running)
{
    g_string_append_printf(out, "%s %s %s %" PRId64 " %s %s %d\n", uuid,
                           vmh_migration_state_str(state), vmh_migration_step_str(step),
                           deadline_ms, source, target && *target ? target : "-",
                           was_running ? 1 : 0);
}

/* Rewrites the whole journal: it holds only the live cases, a few lines. */
void
vmh_journal_put(struct vmh_engine *engine, bool durable)
{
    GString *out;
    GHashTableIter it;
    gpointer value;

    if (!engine->journal_path)
        return;
    out = g_string_new(NULL);
    g_string_append_printf(out, VMH_JOURNAL_MAGIC "%d\n", VMH_JOURNAL_VERSION);
    g_hash_table_iter_init(&it, engine->vms);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        const struct vmh_vm *vm = value;

        if (vm->migration != VMH_MIG_PENDING && vm->migration != VMH_MIG_MIGRATING &&
            !vm->waiting_target)
            continue;
        vmh_journal_line(out, vm->info.uuid, vm->migration, vm->step, vm->deadline_ms,
                         vm->source ? vm->source->name : vm->host->name, vm->target_host,
                         vm->was_running);
    }
    /* Cases of the last run whose VM has not reappeared yet are kept. */
    g_hash_table_iter_init(&it, engine->recovered);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        const struct vmh_journal_entry *e = value;

        vmh_journal_line(out, e->uuid, e->state, e->step, e->deadline_ms, e->source, e->target,
                         e->was_running);
    }
    if ((durable ? vmh_file_write_atomic : vmh_file_replace)(engine->journal_path, out->str,
                                                             out->len, 0600) < 0)
        log_err("core", "migration journal %s not written: a restart now could forget cases",
                engine->journal_path);
    g_string_free(out, TRUE);
}

/* One line of a journal of the given version; false when unreadable. */
static bool
vmh_journal_parse(const char *line, int version, struct vmh_journal_entry *e)
{
    char state[16], step[32], target[65];
    int was_running, n;

    if (sscanf(line, "%36s %15s %31s %" SCNd64 " %64s %64s %d", e->uuid, state, step,
               &e->deadline_ms, e->source, target, &was_running) != 7)
        return false;
    if (!strcmp(state, "migrating"))
        e->state = VMH_MIG_MIGRATING;
    else if (!strcmp(state, "pending"))
        e->state = VMH_MIG_PENDING;
    else if (!strcmp(state, "failed"))
        e->state = VMH_MIG_FAILED;
    else
        return false;
    if (version == 1) {
        char *end;
        long i = strtol(step, &end, 10);

        if (*end || i < 0 || i >= (long)G_N_ELEMENTS(vmh_journal_v1_steps))
            return false;
        n = vmh_migration_step_from_str(vmh_journal_v1_steps[i]);
    } else {
        n = vmh_migration_step_from_str(step);
    }
    if (n < 0)
        return false;
    e->step = (enum vmh_migration_step)n;
    snprintf(e->target, sizeof e->target, "%s", strcmp(target, "-") ? target : "");
    e->was_running = was_running != 0;
    return true;
}

int
vmh_engine_journal_open(struct vmh_engine *engine, const char *dir)
{
    char *text = NULL;
    GError *err = NULL;
    char **lines;
    int version = 0;

    g_free(engine->journal_path);
    engine->journal_path = g_build_filename(dir, VMH_JOURNAL_FILE, NULL);
    if (!g_file_get_contents(engine->journal_path, &text, NULL, &err)) {
        bool missing = g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT);

        if (!missing)
            log_err("core", "cannot read the migration journal: %s", err->message);
        g_error_free(err);
        return missing ? 0 : -1;
    }
    lines = g_strsplit(text, "\n", -1);
    if (!lines[0] || !g_str_has_prefix(lines[0], VMH_JOURNAL_MAGIC) ||
        sscanf(lines[0] + strlen(VMH_JOURNAL_MAGIC), "%d", &version) != 1 || version < 1 ||
        version > VMH_JOURNAL_VERSION) {
        log_err("core", "%s is not a vmhealth migration journal this release reads; ignored",
                engine->journal_path);
    } else {
        for (char **l = lines + 1; *l; l++) {
            struct vmh_journal_entry e = {0};

            if (!**l)
                continue;
            if (!vmh_journal_parse(*l, version, &e)) {
                log_warn("core", "migration journal: unreadable line '%s' ignored", *l);
                continue;
            }
            g_hash_table_insert(engine->recovered, g_strdup(e.uuid), g_memdup2(&e, sizeof e));
        }
        if (g_hash_table_size(engine->recovered))
            log_info("core", "migration journal (version %d): %u cases to resume", version,
                     g_hash_table_size(engine->recovered));
    }
    g_strfreev(lines);
    g_free(text);
    return 0;
}

/* --- journal, then tell --- */

void
vmh_journal_flush(struct vmh_engine *engine)
{
    struct vmh_told *t;

    if (engine->journal_dirty) {
        engine->journal_dirty = false;
        vmh_journal_put(engine, true);
    }
    while ((t = g_queue_pop_head(engine->told))) {
        if (t->line)
            vmh_log(t->level, "core", "%s", t->line);
        if (t->has_event)
            vmh_engine_emit(engine, &t->ev);
        vmh_told_free(t);
    }
}

static void
vmh_journal_told(struct vmh_engine *engine, struct vmh_told *t)
{
    g_queue_push_tail(engine->told, t);
    if (!engine->journal_held)
        vmh_journal_flush(engine);
}

void
vmh_journal_tell_log(struct vmh_engine *engine, enum vmh_log_level level, const char *fmt, ...)
{
    struct vmh_told *t = g_new0(struct vmh_told, 1);
    va_list ap;

    t->level = level;
    va_start(ap, fmt);
    t->line = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    vmh_journal_told(engine, t);
}

void
vmh_journal_tell_event(struct vmh_engine *engine, const struct vmh_event *ev)
{
    struct vmh_told *t = g_new0(struct vmh_told, 1);

    t->has_event = true;
    t->ev = *ev;
    t->ev.vm_uuid = g_strdup(ev->vm_uuid);
    t->ev.vm_name = g_strdup(ev->vm_name);
    t->ev.host = g_strdup(ev->host);
    t->ev.vnf_manager = g_strdup(ev->vnf_manager);
    t->ev.source_host = g_strdup(ev->source_host);
    t->ev.target_host = g_strdup(ev->target_host);
    t->ev.reason = g_strdup(ev->reason);
    vmh_journal_told(engine, t);
}

void
vmh_journal_write(struct vmh_engine *engine)
{
    engine->journal_dirty = true;
    if (!engine->journal_held)
        vmh_journal_flush(engine);
}

void
vmh_journal_hold(struct vmh_engine *engine)
{
    engine->journal_held++;
}

void
vmh_journal_release(struct vmh_engine *engine)
{
    if (--engine->journal_held)
        return;
    vmh_journal_flush(engine);
}

void
vmh_journal_init(struct vmh_engine *engine)
{
    engine->recovered = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    engine->told = g_queue_new();
}

void
vmh_journal_fini(struct vmh_engine *engine)
{
    g_hash_table_destroy(engine->recovered);
    g_queue_free_full(engine->told, (GDestroyNotify)vmh_told_free);
    g_free(engine->journal_path);
}
