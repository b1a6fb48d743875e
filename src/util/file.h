/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Files that must never be seen half-written. */
#ifndef VMH_UTIL_FILE_H
#define VMH_UTIL_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* Writes data to a temporary file beside path, syncs it and renames it over
 * path, so that readers see the old or the new content, never a mix.
 * Returns 0 or a negative errno after logging. */
int vmh_file_write_atomic(const char *path, const char *data, size_t len, mode_t mode);

/* The same without the syncs: readers still see old or new content, never a
 * mix, and the new content survives the process being killed, but not
 * necessarily the machine losing power.  For state that is also recorded
 * durably elsewhere. */
int vmh_file_replace(const char *path, const char *data, size_t len, mode_t mode);

/* Creates dir (and its parents) with mode when missing; 0 or -errno. */
int vmh_file_mkdir_p(const char *dir, mode_t mode);

#endif
