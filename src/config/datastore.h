/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The configuration datastores (running, startup) shared by main and the
 * NETCONF server: their trees behind a reader/writer lock, a transaction
 * mutex that serializes read-modify-write changes, the NETCONF <lock>
 * holders, and the write-back of startup to the configuration file. */
#ifndef VMH_CONFIG_DATASTORE_H
#define VMH_CONFIG_DATASTORE_H

#include <libyang/libyang.h>
#include <stdint.h>

enum vmh_ds_id {
    VMH_DS_RUNNING,
    VMH_DS_STARTUP,
    VMH_DS_COUNT,
};

struct vmh_datastore;

/* running is taken over; startup starts as a copy of it (both come from
 * startup_path at boot). */
int vmh_ds_new(struct lyd_node *running, const char *startup_path, struct vmh_datastore **out);
void vmh_ds_free(struct vmh_datastore *ds);
const char *vmh_ds_name(enum vmh_ds_id id);

/* Reading: the tree (may be NULL when empty) stays valid until
 * vmh_ds_read_end; readers do not block each other. */
const struct lyd_node *vmh_ds_read_begin(struct vmh_datastore *ds, enum vmh_ds_id id);
void vmh_ds_read_end(struct vmh_datastore *ds);

/* A change: begin, read and build the new tree, replace, end.  Only one
 * change runs at a time, so nothing is lost between reading and replacing. */
void vmh_ds_write_begin(struct vmh_datastore *ds);
void vmh_ds_write_end(struct vmh_datastore *ds);
/* Takes tree over.  For startup, the file is written atomically first
 * (0600); on failure nothing changes, -errno is returned and *err (freed
 * by the caller) says why. */
int vmh_ds_replace(struct vmh_datastore *ds, enum vmh_ds_id id, struct lyd_node *tree, char **err);

/* NETCONF locks, by session id.  lock: 0, or -EBUSY with *holder set.
 * unlock: 0, -ENOENT when not locked, -EPERM when another session holds it
 * (*holder set). */
int vmh_ds_lock(struct vmh_datastore *ds, enum vmh_ds_id id, uint32_t sid, uint32_t *holder);
int vmh_ds_unlock(struct vmh_datastore *ds, enum vmh_ds_id id, uint32_t sid, uint32_t *holder);
/* 0 when unlocked; *since_ms (may be NULL): when it was locked, real time. */
uint32_t vmh_ds_lock_holder(struct vmh_datastore *ds, enum vmh_ds_id id, int64_t *since_ms);
/* Releases every lock of a session that ended. */
void vmh_ds_unlock_session(struct vmh_datastore *ds, uint32_t sid);

#endif
