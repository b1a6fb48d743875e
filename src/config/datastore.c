/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config/datastore.h"

#include "util/file.h"
#include "util/log.h"
#include "util/time.h"

#include <errno.h>
#include <glib.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct vmh_datastore {
    pthread_rwlock_t rw;   /* the tree pointers */
    pthread_mutex_t txn;   /* one change at a time */
    pthread_mutex_t locks; /* holders */
    struct lyd_node *trees[VMH_DS_COUNT];
    uint32_t holders[VMH_DS_COUNT];
    int64_t locked_ms[VMH_DS_COUNT];
    char *startup_path;
};

const char *
vmh_ds_name(enum vmh_ds_id id)
{
    return id == VMH_DS_RUNNING ? "running" : "startup";
}

int
vmh_ds_new(struct lyd_node *running, const char *startup_path, struct vmh_datastore **out)
{
    struct vmh_datastore *ds = calloc(1, sizeof *ds);

    if (!ds)
        return -ENOMEM;
    pthread_rwlock_init(&ds->rw, NULL);
    pthread_mutex_init(&ds->txn, NULL);
    pthread_mutex_init(&ds->locks, NULL);
    ds->trees[VMH_DS_RUNNING] = running;
    if (running && lyd_dup_siblings(running, NULL, LYD_DUP_RECURSIVE | LYD_DUP_WITH_FLAGS,
                                    &ds->trees[VMH_DS_STARTUP]) != LY_SUCCESS) {
        ds->trees[VMH_DS_RUNNING] = NULL;
        vmh_ds_free(ds);
        return -ENOMEM;
    }
    ds->startup_path = strdup(startup_path);
    *out = ds;
    return 0;
}

void
vmh_ds_free(struct vmh_datastore *ds)
{
    if (!ds)
        return;
    for (int i = 0; i < VMH_DS_COUNT; i++)
        lyd_free_siblings(ds->trees[i]);
    pthread_rwlock_destroy(&ds->rw);
    pthread_mutex_destroy(&ds->txn);
    pthread_mutex_destroy(&ds->locks);
    free(ds->startup_path);
    free(ds);
}

const struct lyd_node *
vmh_ds_read_begin(struct vmh_datastore *ds, enum vmh_ds_id id)
{
    pthread_rwlock_rdlock(&ds->rw);
    return ds->trees[id];
}

void
vmh_ds_read_end(struct vmh_datastore *ds)
{
    pthread_rwlock_unlock(&ds->rw);
}

void
vmh_ds_write_begin(struct vmh_datastore *ds)
{
    pthread_mutex_lock(&ds->txn);
}

void
vmh_ds_write_end(struct vmh_datastore *ds)
{
    pthread_mutex_unlock(&ds->txn);
}

static int
vmh_ds_write_startup(struct vmh_datastore *ds, const struct lyd_node *tree, char **err)
{
    const char *dot = strrchr(ds->startup_path, '.');
    LYD_FORMAT format = dot && !strcasecmp(dot, ".json") ? LYD_JSON : LYD_XML;
    char *text = NULL;
    int rc;

    if (lyd_print_mem(&text, tree, format, LYD_PRINT_WITHSIBLINGS) != LY_SUCCESS) {
        *err = g_strdup_printf("cannot print the startup configuration");
        return -ENOMEM;
    }
    rc = vmh_file_write_atomic(ds->startup_path, text ? text : "", text ? strlen(text) : 0, 0600);
    if (rc < 0)
        *err = g_strdup_printf("cannot write %s: %s", ds->startup_path, strerror(-rc));
    free(text);
    return rc;
}

int
vmh_ds_replace(struct vmh_datastore *ds, enum vmh_ds_id id, struct lyd_node *tree, char **err)
{
    struct lyd_node *old;
    int rc;

    *err = NULL;
    if (id == VMH_DS_STARTUP && (rc = vmh_ds_write_startup(ds, tree, err)) < 0) {
        lyd_free_siblings(tree);
        return rc;
    }
    pthread_rwlock_wrlock(&ds->rw);
    old = ds->trees[id];
    ds->trees[id] = tree;
    pthread_rwlock_unlock(&ds->rw);
    lyd_free_siblings(old);
    if (id == VMH_DS_STARTUP)
        log_info("config", "startup configuration written to %s", ds->startup_path);
    return 0;
}

int
vmh_ds_lock(struct vmh_datastore *ds, enum vmh_ds_id id, uint32_t sid, uint32_t *holder)
{
    int rc = 0;

    pthread_mutex_lock(&ds->locks);
    if (ds->holders[id]) {
        *holder = ds->holders[id];
        rc = -EBUSY;
    } else {
        ds->holders[id] = sid;
        ds->locked_ms[id] = vmh_time_real_ms();
    }
    pthread_mutex_unlock(&ds->locks);
    return rc;
}

int
vmh_ds_unlock(struct vmh_datastore *ds, enum vmh_ds_id id, uint32_t sid, uint32_t *holder)
{
    int rc = 0;

    pthread_mutex_lock(&ds->locks);
    if (!ds->holders[id]) {
        rc = -ENOENT;
    } else if (ds->holders[id] != sid) {
        *holder = ds->holders[id];
        rc = -EPERM;
    } else {
        ds->holders[id] = 0;
    }
    pthread_mutex_unlock(&ds->locks);
    return rc;
}

uint32_t
vmh_ds_lock_holder(struct vmh_datastore *ds, enum vmh_ds_id id, int64_t *since_ms)
{
    uint32_t h;

    pthread_mutex_lock(&ds->locks);
    h = ds->holders[id];
    if (since_ms)
        *since_ms = ds->locked_ms[id];
    pthread_mutex_unlock(&ds->locks);
    return h;
}

void
vmh_ds_unlock_session(struct vmh_datastore *ds, uint32_t sid)
{
    pthread_mutex_lock(&ds->locks);
    for (int i = 0; i < VMH_DS_COUNT; i++)
        if (ds->holders[i] == sid)
            ds->holders[i] = 0;
    pthread_mutex_unlock(&ds->locks);
}
