/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Polling of hwmon and EDAC under each host's sysfs-root.  Runs on the loop
 * thread: reading a few small sysfs files does not block. */
#include "monitor/monitor.h"

#include "util/log.h"
#include "util/time.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define VMH_SYSFS_VALUE_MAX 64

struct vmh_mon_sensor {
    enum vmh_temp_level level;
    bool seen;    /* in the last poll */
    bool missing; /* said to have disappeared */
};

struct vmh_mon_mc {
    bool has_prev;
    unsigned long long prev_ue;
    struct vmh_ce_window ce;
    bool ce_raised;
    bool seen;
};

struct vmh_mon_host {
    char *root;
    bool available;
    bool said_unavailable;
    GHashTable *sensors; /* "hwmon0/temp1" -> struct vmh_mon_sensor */
    GHashTable *flags;   /* "hwmon0/fan1_fault" -> raised (GINT_TO_POINTER) */
    GHashTable *mcs;     /* "mc0" -> struct vmh_mon_mc */
    GHashTable *warned;  /* paths already complained about */
    GArray *readings;    /* struct vmh_sensor_snap of this poll (names owned) */
    GPtrArray *dirs;     /* struct vmh_mon_dir: the hwmon layout */
    struct timespec base_mtime;
    bool have_layout;
    bool rescan;
};

struct vmh_monitor {
    struct vmh_loop *loop;
    struct vmh_engine *engine;
    GHashTable *hosts; /* name -> struct vmh_mon_host */
    int timer;
    uint32_t interval_ms;
};

static void vmh_mon_dir_free(void *p);

static void
vmh_mon_host_free(void *opaque)
{
    struct vmh_mon_host *mh = opaque;

    g_free(mh->root);
    g_hash_table_destroy(mh->sensors);
    g_hash_table_destroy(mh->flags);
    g_hash_table_destroy(mh->mcs);
    g_hash_table_destroy(mh->warned);
    g_array_free(mh->readings, TRUE);
    g_ptr_array_free(mh->dirs, TRUE);
    g_free(mh);
}

static void
vmh_mon_reading_clear(void *p)
{
    g_free((char *)((struct vmh_sensor_snap *)p)->name);
}

static struct vmh_mon_host *
vmh_mon_host_new(const char *root)
{
    struct vmh_mon_host *mh = g_new0(struct vmh_mon_host, 1);

    mh->root = g_strdup(root);
    mh->available = true;
    mh->sensors = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    mh->flags = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    mh->mcs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    mh->warned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    mh->readings = g_array_new(FALSE, TRUE, sizeof(struct vmh_sensor_snap));
    g_array_set_clear_func(mh->readings, vmh_mon_reading_clear);
    mh->dirs = g_ptr_array_new_with_free_func(vmh_mon_dir_free);
    return mh;
}

/* Says once per path what is wrong with it; a later good read re-arms. */
static void
vmh_mon_warn_once(struct vmh_mon_host *mh, const char *host, const char *path, const char *why)
{
    if (g_hash_table_contains(mh->warned, path))
        return;
    g_hash_table_add(mh->warned, g_strdup(path));
    log_warn("monitor", "host %s: %s: %s; ignored", host, path, why);
}

/* Reads a numeric sysfs attribute.  1: read; 0: absent; -1: unusable
 * (logged once). */
static int
vmh_mon_read(struct vmh_mon_host *mh, const char *host, const char *path, long long *value)
{
    char buf[VMH_SYSFS_VALUE_MAX + 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        vmh_mon_warn_once(mh, host, path, strerror(errno));
        return -1;
    }
    n = read(fd, buf, VMH_SYSFS_VALUE_MAX);
    if (n < 0) {
        /* hwmon drivers answer EIO/ENODATA for a sensor that is not there */
        vmh_mon_warn_once(mh, host, path, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    buf[n] = '\0';
    if (vmh_sysfs_parse_long(buf, value) < 0) {
        char *shown = g_strescape(g_strchomp(buf), NULL);
        char *why = g_strdup_printf("not a number: \"%s\"", shown);

        vmh_mon_warn_once(mh, host, path, why);
        g_free(why);
        g_free(shown);
        return -1;
    }
    if (g_hash_table_remove(mh->warned, path))
        log_info("monitor", "host %s: %s reads again", host, path);
    return 1;
}

static char *
vmh_mon_read_text(const char *path)
{
    char *text = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL))
        return NULL;
    return g_strstrip(text);
}

static void
vmh_mon_raise(struct vmh_monitor *mon, const char *host, const char *resource, enum vmh_cause cause,
              enum vmh_severity severity, const char *value, const char *description)
{
    struct vmh_fault_report r = {
        .host = host,
        .resource = resource,
        .cause = cause,
        .severity = severity,
        .value = value,
        .description = description,
    };

    vmh_engine_raise_fault(mon->engine, &r);
}

/* --- hwmon --- */

/* What a hwmon directory holds, read again only when the directory changes
 * (its mtime moves when attributes appear, vanish or are replaced): each
 * poll then reads one file per sensor. */
struct vmh_mon_temp_attr {
    char *key;   /* "hwmon0/temp1": the fault's resource */
    char *input; /* path of temp1_input */
    char *name;  /* "coretemp/Package id 0" */
    bool has_max, has_crit;
    double max, crit;
};

struct vmh_mon_dir {
    char *name; /* hwmon0 */
    char *path;
    struct timespec mtime;
    GPtrArray *temps; /* struct vmh_mon_temp_attr */
    GPtrArray *flags; /* file names ending in _alarm / _fault */
};

static void
vmh_mon_temp_attr_free(void *p)
{
    struct vmh_mon_temp_attr *a = p;

    g_free(a->key);
    g_free(a->input);
    g_free(a->name);
    g_free(a);
}

static void
vmh_mon_dir_free(void *p)
{
    struct vmh_mon_dir *d = p;

    g_free(d->name);
    g_free(d->path);
    g_ptr_array_free(d->temps, TRUE);
    g_ptr_array_free(d->flags, TRUE);
    g_free(d);
}

static bool
vmh_mon_mtime(const char *path, struct timespec *ts)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return false;
    *ts = st.st_mtim;
    return true;
}

static bool
vmh_mon_same_time(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static void
vmh_mon_scan_dir(struct vmh_mon_host *mh, const char *host, struct vmh_mon_dir *d)
{
    char *name_path = g_build_filename(d->path, "name", NULL);
    char *chip = vmh_mon_read_text(name_path);
    GDir *attrs = g_dir_open(d->path, 0, NULL);
    const char *file;

    g_free(name_path);
    g_ptr_array_set_size(d->temps, 0);
    g_ptr_array_set_size(d->flags, 0);
    vmh_mon_mtime(d->path, &d->mtime);
    while (attrs && (file = g_dir_read_name(attrs))) {
        int idx;
        char tail[16];

        if (sscanf(file, "temp%d_%15s", &idx, tail) == 2 && !strcmp(tail, "input")) {
            struct vmh_mon_temp_attr *a = g_new0(struct vmh_mon_temp_attr, 1);
            char *path, *label;
            long long v;

            a->key = g_strdup_printf("%s/temp%d", d->name, idx);
            a->input = g_build_filename(d->path, file, NULL);
            path = g_strdup_printf("%s/temp%d_max", d->path, idx);
            if (vmh_mon_read(mh, host, path, &v) > 0 && v > 0) {
                a->has_max = true;
                a->max = (double)v / 1000.0;
            }
            g_free(path);
            path = g_strdup_printf("%s/temp%d_crit", d->path, idx);
            if (vmh_mon_read(mh, host, path, &v) > 0 && v > 0) {
                a->has_crit = true;
                a->crit = (double)v / 1000.0;
            }
            g_free(path);
            path = g_strdup_printf("%s/temp%d_label", d->path, idx);
            label = vmh_mon_read_text(path);
            g_free(path);
            if (label && *label)
                a->name = g_strdup_printf("%s/%s", chip ? chip : d->name, label);
            else
                a->name = g_strdup_printf("%s/temp%d", chip ? chip : d->name, idx);
            g_free(label);
            g_ptr_array_add(d->temps, a);
        } else if (g_str_has_suffix(file, "_alarm") || g_str_has_suffix(file, "_fault")) {
            g_ptr_array_add(d->flags, g_strdup(file));
        }
    }
    if (attrs)
        g_dir_close(attrs);
    g_free(chip);
}

static void
vmh_mon_temp(struct vmh_monitor *mon, const struct vmh_config *cfg, struct vmh_mon_host *mh,
             const char *host, const struct vmh_mon_temp_attr *a, const char *hwmon)
{
    const struct vmh_thresholds *th = &cfg->thresholds;
    struct vmh_sensor_snap reading = {0};
    struct vmh_mon_sensor *st;
    enum vmh_temp_level level;
    long long milli;
    int got;

    st = g_hash_table_lookup(mh->sensors, a->key);
    if (!st) {
        st = g_new0(struct vmh_mon_sensor, 1);
        g_hash_table_insert(mh->sensors, g_strdup(a->key), st);
    }
    got = vmh_mon_read(mh, host, a->input, &milli);
    if (got == 0)
        mh->rescan = true; /* the attribute went away under us */
    if (got <= 0) {
        /* Present but unreadable is not gone: keep its state as it is. */
        st->seen = got < 0;
        return;
    }
    reading.value = (double)milli / 1000.0;
    reading.has_high = th->has_temp_high || a->has_max;
    reading.high = th->has_temp_high ? th->temp_high : a->max;
    reading.has_critical = th->has_temp_critical || a->has_crit;
    reading.critical = th->has_temp_critical ? th->temp_critical : a->crit;
    reading.name = g_strdup(a->name);
    /* Two chips of one driver may both say "coretemp/Core 0". */
    for (guint i = 0; i < mh->readings->len; i++) {
        if (!strcmp(g_array_index(mh->readings, struct vmh_sensor_snap, i).name, reading.name)) {
            char *unique = g_strdup_printf("%s (%s)", reading.name, hwmon);

            g_free((char *)reading.name);
            reading.name = unique;
            break;
        }
    }
    g_array_append_val(mh->readings, reading);

    st->seen = true;
    if (st->missing)
        log_info("monitor", "host %s: sensor %s is back", host, a->key);
    st->missing = false;
    level = vmh_detect_temperature(st->level, reading.value, reading.has_high, reading.high,
                                   reading.has_critical, reading.critical, th->temp_hysteresis);
    if (level != st->level) {
        char *value_text = g_strdup_printf("%.1f", reading.value);

        if (level == VMH_TEMP_NORMAL) {
            vmh_engine_clear_fault_of(mon->engine, host, NULL, a->key, VMH_CAUSE_HIGH_TEMPERATURE);
        } else {
            char *desc =
                g_strdup_printf("%s at %.1f C, above %s threshold %.1f C", reading.name,
                                reading.value, level == VMH_TEMP_CRITICAL ? "critical" : "high",
                                level == VMH_TEMP_CRITICAL ? reading.critical : reading.high);

            vmh_mon_raise(mon, host, a->key, VMH_CAUSE_HIGH_TEMPERATURE,
                          level == VMH_TEMP_CRITICAL ? VMH_SEV_CRITICAL : VMH_SEV_MAJOR, value_text,
                          desc);
            g_free(desc);
        }
        g_free(value_text);
        st->level = level;
    }
}

/* Any "<channel>_alarm" or "<channel>_fault" attribute set to 1 is a
 * hardware fault; 0 clears it. */
static void
vmh_mon_flag(struct vmh_monitor *mon, struct vmh_mon_host *mh, const char *host,
             const struct vmh_mon_dir *d, const char *file, GHashTable *seen)
{
    bool is_fault = g_str_has_suffix(file, "_fault");
    char *path = g_build_filename(d->path, file, NULL);
    char *key = g_strdup_printf("%s/%s", d->name, file);
    bool raised = g_hash_table_contains(mh->flags, key);
    long long v;

    g_hash_table_add(seen, g_strdup(key));
    if (vmh_mon_read(mh, host, path, &v) > 0) {
        if (v && !raised) {
            char *desc = g_strdup_printf("hwmon flag %s is set", key);

            vmh_mon_raise(mon, host, key, VMH_CAUSE_HARDWARE_FAILURE,
                          is_fault ? VMH_SEV_CRITICAL : VMH_SEV_MAJOR, "1", desc);
            g_free(desc);
            g_hash_table_add(mh->flags, g_strdup(key));
        } else if (!v && raised) {
            vmh_engine_clear_fault_of(mon->engine, host, NULL, key, VMH_CAUSE_HARDWARE_FAILURE);
            g_hash_table_remove(mh->flags, key);
        }
    }
    g_free(key);
    g_free(path);
}

/* Re-reads the list of hwmon directories, and the contents of those that
 * changed, when anything changed. */
static bool
vmh_mon_hwmon_layout(struct vmh_mon_host *mh, const char *host)
{
    char *base = g_build_filename(mh->root, "sys/class/hwmon", NULL);
    struct timespec now;
    bool ok = vmh_mon_mtime(base, &now);

    if (!ok) {
        g_ptr_array_set_size(mh->dirs, 0);
        mh->have_layout = false;
        g_free(base);
        return false;
    }
    if (mh->rescan || !mh->have_layout || !vmh_mon_same_time(&now, &mh->base_mtime)) {
        GDir *d = g_dir_open(base, 0, NULL);
        const char *entry;

        g_ptr_array_set_size(mh->dirs, 0);
        while (d && (entry = g_dir_read_name(d))) {
            struct vmh_mon_dir *dir = g_new0(struct vmh_mon_dir, 1);

            dir->name = g_strdup(entry);
            dir->path = g_build_filename(base, entry, NULL);
            dir->temps = g_ptr_array_new_with_free_func(vmh_mon_temp_attr_free);
            dir->flags = g_ptr_array_new_with_free_func(g_free);
            vmh_mon_scan_dir(mh, host, dir);
            g_ptr_array_add(mh->dirs, dir);
        }
        if (d)
            g_dir_close(d);
        mh->base_mtime = now;
        mh->have_layout = true;
        mh->rescan = false;
    } else {
        for (guint i = 0; i < mh->dirs->len; i++) {
            struct vmh_mon_dir *dir = g_ptr_array_index(mh->dirs, i);
            struct timespec t;

            if (vmh_mon_mtime(dir->path, &t) && !vmh_mon_same_time(&t, &dir->mtime))
                vmh_mon_scan_dir(mh, host, dir);
        }
    }
    g_free(base);
    return true;
}

static bool
vmh_mon_hwmon(struct vmh_monitor *mon, const struct vmh_config *cfg, struct vmh_mon_host *mh,
              const char *host)
{
    GHashTable *flags_seen;
    GHashTableIter it;
    gpointer key;

    if (!vmh_mon_hwmon_layout(mh, host))
        return false;
    flags_seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (guint i = 0; i < mh->dirs->len; i++) {
        struct vmh_mon_dir *dir = g_ptr_array_index(mh->dirs, i);

        for (guint t = 0; t < dir->temps->len; t++)
            vmh_mon_temp(mon, cfg, mh, host, g_ptr_array_index(dir->temps, t), dir->name);
        for (guint f = 0; f < dir->flags->len; f++)
            vmh_mon_flag(mon, mh, host, dir, g_ptr_array_index(dir->flags, f), flags_seen);
    }
    /* A flag whose file vanished says nothing any more: keep its fault, it
     * was real when raised, but stop tracking it. */
    g_hash_table_iter_init(&it, mh->flags);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        if (!g_hash_table_contains(flags_seen, key)) {
            log_warn("monitor", "host %s: hwmon flag %s disappeared", host, (char *)key);
            g_hash_table_iter_remove(&it);
        }
    }
    g_hash_table_destroy(flags_seen);
    return true;
}

/* --- EDAC --- */

static bool
vmh_mon_edac(struct vmh_monitor *mon, const struct vmh_config *cfg, struct vmh_mon_host *mh,
             const char *host, uint64_t *corrected, uint64_t *uncorrected)
{
    char *base = g_build_filename(mh->root, "sys/devices/system/edac/mc", NULL);
    GDir *d = g_dir_open(base, 0, NULL);
    const char *mc;
    int64_t now = vmh_time_mono_ms();

    if (!d) {
        g_free(base);
        return false;
    }
    while ((mc = g_dir_read_name(d))) {
        char *dir, *path;
        long long ue, ce;
        struct vmh_mon_mc *st;
        bool ue_ok, ce_ok;

        if (strncmp(mc, "mc", 2) || !g_ascii_isdigit(mc[2]))
            continue;
        dir = g_build_filename(base, mc, NULL);
        path = g_build_filename(dir, "ue_count", NULL);
        ue_ok = vmh_mon_read(mh, host, path, &ue) > 0 && ue >= 0;
        g_free(path);
        path = g_build_filename(dir, "ce_count", NULL);
        ce_ok = vmh_mon_read(mh, host, path, &ce) > 0 && ce >= 0;
        g_free(path);
        g_free(dir);

        st = g_hash_table_lookup(mh->mcs, mc);
        if (!st) {
            st = g_new0(struct vmh_mon_mc, 1);
            g_hash_table_insert(mh->mcs, g_strdup(mc), st);
        }
        st->seen = true;
        if (ue_ok) {
            *uncorrected += (uint64_t)ue;
            if (st->has_prev && (unsigned long long)ue > st->prev_ue) {
                char *value = g_strdup_printf("%lld", ue);
                char *desc = g_strdup_printf("%s: %llu new uncorrectable (multi-bit) memory "
                                             "errors, %lld in all",
                                             mc, (unsigned long long)ue - st->prev_ue, ue);

                /* A multi-bit error does not heal: the fault stays until an
                 * operator clears it. */
                vmh_mon_raise(mon, host, mc, VMH_CAUSE_MEMORY_UE, VMH_SEV_CRITICAL, value, desc);
                g_free(desc);
                g_free(value);
            } else if (st->has_prev && (unsigned long long)ue < st->prev_ue) {
                log_info("monitor",
                         "host %s: %s ue_count went from %llu to %lld (driver "
                         "reload?): new baseline",
                         host, mc, st->prev_ue, ue);
            }
            st->prev_ue = (unsigned long long)ue;
            st->has_prev = true;
        }
        if (ce_ok) {
            double rate = vmh_detect_ce_rate(&st->ce, now, (uint64_t)ce);
            const struct vmh_thresholds *th = &cfg->thresholds;

            *corrected += (uint64_t)ce;
            if (th->has_memory_ce_rate && rate > th->memory_ce_rate && !st->ce_raised) {
                char *value = g_strdup_printf("%.0f/h", rate);
                char *desc = g_strdup_printf("%s: correctable memory errors at %.0f per hour, "
                                             "above %u",
                                             mc, rate, th->memory_ce_rate);

                vmh_mon_raise(mon, host, mc, VMH_CAUSE_MEMORY_CE_RATE, VMH_SEV_WARNING, value,
                              desc);
                g_free(desc);
                g_free(value);
                st->ce_raised = true;
            } else if (st->ce_raised && (!th->has_memory_ce_rate || rate <= th->memory_ce_rate)) {
                vmh_engine_clear_fault_of(mon->engine, host, NULL, mc, VMH_CAUSE_MEMORY_CE_RATE);
                st->ce_raised = false;
            }
        }
    }
    g_dir_close(d);
    g_free(base);
    return true;
}

/* --- polling --- */

static void
vmh_mon_poll_host(struct vmh_monitor *mon, const struct vmh_config *cfg,
                  const struct vmh_host_conf *conf, struct vmh_mon_host *mh)
{
    uint64_t corrected = 0, uncorrected = 0;
    bool hwmon, edac;
    GHashTableIter it;
    gpointer key, value;

    g_array_set_size(mh->readings, 0);
    g_hash_table_iter_init(&it, mh->sensors);
    while (g_hash_table_iter_next(&it, NULL, &value))
        ((struct vmh_mon_sensor *)value)->seen = false;

    hwmon = vmh_mon_hwmon(mon, cfg, mh, conf->name);
    edac = vmh_mon_edac(mon, cfg, mh, conf->name, &corrected, &uncorrected);

    /* A sensor that vanished keeps its state, and a fault it raised stays
     * (it was real) until the sensor is back and reads cool. */
    g_hash_table_iter_init(&it, mh->sensors);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        struct vmh_mon_sensor *st = value;

        if (!st->seen && !st->missing) {
            log_warn("monitor", "host %s: sensor %s disappeared", conf->name, (char *)key);
            st->missing = true;
        }
    }

    mh->available = hwmon || edac;
    if (!mh->available && !mh->said_unavailable)
        log_warn("monitor",
                 "host %s: neither sys/class/hwmon nor sys/devices/system/edac/mc is readable "
                 "under %s: no sensor monitoring for this host",
                 conf->name, mh->root);
    else if (mh->available && mh->said_unavailable)
        log_info("monitor", "host %s: sensor monitoring under %s is available again", conf->name,
                 mh->root);
    mh->said_unavailable = !mh->available;
    vmh_engine_host_sensors(mon->engine, conf->name, mh->available,
                            (const struct vmh_sensor_snap *)mh->readings->data, mh->readings->len,
                            corrected, uncorrected);
}

static void vmh_monitor_tick(void *opaque);

static void
vmh_monitor_arm(struct vmh_monitor *mon, uint32_t interval_ms)
{
    if (mon->timer >= 0 && interval_ms == mon->interval_ms)
        return;
    vmh_loop_timer_cancel(mon->timer);
    mon->interval_ms = interval_ms;
    mon->timer = vmh_loop_timer_every(mon->loop, (int)interval_ms, vmh_monitor_tick, mon);
}

void
vmh_monitor_poll(struct vmh_monitor *mon)
{
    const struct vmh_config *cfg = vmh_engine_config(mon->engine);
    GHashTableIter it;
    gpointer key;

    /* Follow the configuration: hosts gone, roots changed, interval. */
    g_hash_table_iter_init(&it, mon->hosts);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        const struct vmh_host_conf *conf = vmh_config_find_host(cfg, key);
        struct vmh_mon_host *mh = g_hash_table_lookup(mon->hosts, key);

        if (!conf || strcmp(conf->sysfs_root, mh->root))
            g_hash_table_iter_remove(&it);
    }
    for (size_t i = 0; i < cfg->n_hosts; i++) {
        const struct vmh_host_conf *conf = &cfg->hosts[i];
        struct vmh_mon_host *mh = g_hash_table_lookup(mon->hosts, conf->name);

        if (!mh) {
            mh = vmh_mon_host_new(conf->sysfs_root);
            g_hash_table_insert(mon->hosts, g_strdup(conf->name), mh);
        }
        vmh_mon_poll_host(mon, cfg, conf, mh);
    }
    vmh_monitor_arm(mon, cfg->settings.poll_interval_ms);
}

static void
vmh_monitor_tick(void *opaque)
{
    vmh_monitor_poll(opaque);
}

struct vmh_monitor *
vmh_monitor_new(struct vmh_loop *loop, struct vmh_engine *engine)
{
    struct vmh_monitor *mon = g_new0(struct vmh_monitor, 1);

    mon->loop = loop;
    mon->engine = engine;
    mon->timer = -1;
    mon->hosts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, vmh_mon_host_free);
    vmh_monitor_poll(mon);
    return mon;
}

void
vmh_monitor_free(struct vmh_monitor *mon)
{
    if (!mon)
        return;
    vmh_loop_timer_cancel(mon->timer);
    g_hash_table_destroy(mon->hosts);
    g_free(mon);
}
