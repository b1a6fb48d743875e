/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "util/file.h"

#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int
vmh_file_sync_dir(const char *path)
{
    char *copy = strdup(path);
    int fd, rc = 0;

    if (!copy)
        return -ENOMEM;
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        if (fsync(fd) < 0)
            rc = -errno;
        close(fd);
    }
    free(copy);
    return rc;
}

static int
vmh_file_write(const char *path, const char *data, size_t len, mode_t mode, bool durable)
{
    size_t tlen = strlen(path) + 16;
    char *tmp = malloc(tlen);
    int fd = -1, rc = 0;

    if (!tmp)
        return -ENOMEM;
    snprintf(tmp, tlen, "%s.tmpXXXXXX", path);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        log_err("file", "cannot create a temporary file for %s: %s", path, strerror(errno));
        goto cleanup;
    }
    if (fchmod(fd, mode) < 0) {
        rc = -errno;
        log_err("file", "chmod %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, data + off, len - off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = -errno;
            log_err("file", "writing %s: %s", tmp, strerror(errno));
            goto cleanup;
        }
        off += (size_t)w;
    }
    if ((durable && fsync(fd) < 0) || close(fd) < 0) {
        rc = -errno;
        fd = -1;
        log_err("file", "syncing %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        rc = -errno;
        log_err("file", "renaming %s to %s: %s", tmp, path, strerror(errno));
        goto cleanup;
    }
    if (durable)
        vmh_file_sync_dir(path);

cleanup:
    if (fd >= 0)
        close(fd);
    if (rc)
        unlink(tmp);
    free(tmp);
    return rc;
}

int
vmh_file_write_atomic(const char *path, const char *data, size_t len, mode_t mode)
{
    return vmh_file_write(path, data, len, mode, true);
}

int
vmh_file_replace(const char *path, const char *data, size_t len, mode_t mode)
{
    return vmh_file_write(path, data, len, mode, false);
}

int
vmh_file_mkdir_p(const char *dir, mode_t mode)
{
    char *copy = strdup(dir);
    int rc = 0;

    if (!copy)
        return -ENOMEM;
    for (char *p = copy + 1;; p++) {
        bool last = *p == '\0';

        if (*p != '/' && !last)
            continue;
        *p = '\0';
        if (mkdir(copy, mode) < 0 && errno != EEXIST) {
            rc = -errno;
            log_err("file", "cannot create directory %s: %s", copy, strerror(errno));
            break;
        }
        if (last)
            break;
        *p = '/';
    }
    free(copy);
    return rc;
}
