/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Cold migration of one domain, as a job with explicit steps (migrate.h).
 *
 * Threads: vmh_virt_migrate() runs from start to end in the caller's worker
 * thread and keeps no state between calls; the libvirt connections it is
 * given are shared with other threads (libvirt connections are thread-safe,
 * and libvirt's last error is per thread).
 *
 * Each step records in the job what it changed (domain stopped on the
 * source, defined on the target, volumes created on the target), so that the
 * rollback undoes exactly that and nothing else: the domain stays defined on
 * exactly one host, and no disk of the source is ever deleted. */
#include "virt/migrate.h"

#include "util/log.h"

#include <ctype.h>
#include <glib.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define VMH_MIGRATE_POLL_MIN_US  10000
#define VMH_MIGRATE_POLL_MAX_US  200000
#define VMH_MIGRATE_DESTROY_WAIT 5000000
#define VMH_MIGRATE_COPY_CHUNK   (1024 * 1024)

/* One disk that is not shared: its volume on the source, and the copy this
 * job makes of it in the pool of the same name on the target. */
struct vmh_volume_copy {
    xmlNodePtr source_node; /* <source> in job->doc, rewritten to the copy's path */
    bool by_pool;           /* <disk type='volume'>: pool and volume names are kept */
    char *path;             /* otherwise the file or device */
    char *pool;
    char *name;
    virStorageVolPtr src;
    virStoragePoolPtr dst_pool;
    virStorageVolPtr dst; /* created by this job: deleted on rollback */
};

struct vmh_migrate_job {
    const struct vmh_virt_request *req;
    struct vmh_virt_outcome *out;
    const char *src_host;
    const char *dst_host;
    enum vmh_migration_step step;
    bool failed;

    virDomainPtr src;
    virDomainPtr dst;
    char *name;
    char *xml;     /* the inactive migratable definition */
    xmlDocPtr doc; /* parsed xml, when disks are copied */
    bool was_active;
    bool was_running; /* active, or stopped by a crash */
    bool stopped_source;
    bool defined_target;
    struct vmh_volume_copy *vols;
    size_t n_vols;

    uint64_t lv_us;
    unsigned lv_calls;
    uint64_t wait_us;
};

static uint64_t
vmh_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Evaluates a libvirt call and adds its duration to the job's libvirt time. */
#define LV(job, call)                                                                              \
    __extension__({                                                                                \
        uint64_t lv_t0_ = vmh_now_us();                                                            \
        __auto_type lv_r_ = (call);                                                                \
        (job)->lv_us += vmh_now_us() - lv_t0_;                                                     \
        (job)->lv_calls++;                                                                         \
        lv_r_;                                                                                     \
    })

static bool
vmh_job_cancelled(const struct vmh_migrate_job *job)
{
    return job->req->cancel && __atomic_load_n(job->req->cancel, __ATOMIC_ACQUIRE) != 0;
}

static char *
vmh_vasprintf(const char *fmt, va_list ap)
{
    char *s;

    if (vasprintf(&s, fmt, ap) < 0)
        return NULL;
    return s;
}

/* Records the failure of the current step (the first one only) and logs it:
 * "<step>: <what>[: <libvirt's message>]". */
static void vmh_job_fail(struct vmh_migrate_job *job, bool with_libvirt, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
vmh_job_fail(struct vmh_migrate_job *job, bool with_libvirt, const char *fmt, ...)
{
    va_list ap;
    char *what, *msg = NULL;

    if (job->failed)
        return;
    va_start(ap, fmt);
    what = vmh_vasprintf(fmt, ap);
    va_end(ap);
    if (with_libvirt) {
        if (asprintf(&msg, "%s: %s: %s", vmh_migration_step_str(job->step), what ? what : "?",
                     virGetLastErrorMessage()) < 0)
            msg = NULL;
    } else if (asprintf(&msg, "%s: %s", vmh_migration_step_str(job->step), what ? what : "?") < 0) {
        msg = NULL;
    }
    free(what);
    job->failed = true;
    job->out->failed_step = job->step;
    job->out->error = msg ? msg : strdup("out of memory");
    log_err("virt", "migration of %s from %s to %s failed at %s",
            job->name ? job->name : job->req->uuid, job->src_host, job->dst_host, job->out->error);
}

/* Adds a rollback problem to out->error (the failure stays first). */
static void vmh_job_note(struct vmh_migrate_job *job, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
vmh_job_note(struct vmh_migrate_job *job, const char *fmt, ...)
{
    va_list ap;
    char *what, *both;

    va_start(ap, fmt);
    what = vmh_vasprintf(fmt, ap);
    va_end(ap);
    if (!what)
        return;
    log_warn("virt", "migration of %s: rollback: %s", job->name ? job->name : job->req->uuid, what);
    if (job->out->error && asprintf(&both, "%s; rollback: %s", job->out->error, what) >= 0) {
        free(job->out->error);
        job->out->error = both;
    }
    free(what);
}

/* A round trip, not only the local state of the connection: a remote
 * connection whose daemon died or hangs fails here (after keepalive). */
static bool
vmh_conn_reachable(struct vmh_migrate_job *job, virConnectPtr conn)
{
    unsigned long version;

    return conn && LV(job, virConnectIsAlive(conn)) == 1 &&
           LV(job, virConnectGetLibVersion(conn, &version)) == 0;
}

/* virConnectGetType(), one caller at a time.  libvirt 9.0's remote driver
 * caches the answer of its first call on the connection, but drops its
 * lock during the RPC: two first calls at once (concurrent migrations to
 * one host) both store theirs and one string leaks (valgrind, test_flow).
 * Once cached, the call is a lookup. */
static const char *
vmh_conn_type(virConnectPtr conn)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    const char *t;

    pthread_mutex_lock(&lock);
    t = virConnectGetType(conn);
    pthread_mutex_unlock(&lock);
    return t;
}

static bool
vmh_conn_is(struct vmh_migrate_job *job, virConnectPtr conn, const char *type)
{
    const char *t = LV(job, vmh_conn_type(conn));

    return t && !strcasecmp(t, type);
}

static bool
vmh_no_domain_error(void)
{
    return virGetLastErrorCode() == VIR_ERR_NO_DOMAIN;
}

/* The test driver rejects KEEP_NVRAM as an unsupported flag (INVALID_ARG):
 * it has no NVRAM to keep, so a plain undefine is the same there. */
int
vmh_virt_undefine_keep_disks(virDomainPtr dom)
{
    if (virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_KEEP_NVRAM) == 0)
        return 0;
    if (virGetLastErrorCode() != VIR_ERR_INVALID_ARG && virGetLastErrorCode() != VIR_ERR_NO_SUPPORT)
        return -1;
    return virDomainUndefine(dom);
}

static int
vmh_undefine_keep_storage(struct vmh_migrate_job *job, virDomainPtr dom)
{
    return LV(job, vmh_virt_undefine_keep_disks(dom));
}

/* --- the definition --- */

static xmlNodePtr
vmh_xml_child(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr n = parent ? parent->children : NULL; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE && !xmlStrcmp(n->name, BAD_CAST name))
            return n;
    return NULL;
}

static char *
vmh_xml_text(xmlNodePtr node)
{
    xmlChar *t = node ? xmlNodeGetContent(node) : NULL;
    char *s = t ? strdup((const char *)t) : NULL;

    xmlFree(t);
    return s;
}

static char *
vmh_xml_prop(xmlNodePtr node, const char *name)
{
    xmlChar *t = node ? xmlGetProp(node, BAD_CAST name) : NULL;
    char *s = t ? strdup((const char *)t) : NULL;

    xmlFree(t);
    return s;
}

/* A libvirt scaled integer (docs/formatdomain "unit") in KiB: bytes by
 * default for volumes, KiB for domain memory (the caller's default). */
static bool
vmh_unit_to_kib(const char *unit, uint64_t value, uint64_t *kib)
{
    static const char powers[] = "kmgtpe";
    const char *p;
    uint64_t base, bytes = value;

    if (!unit || !*unit) {
        *kib = value;
        return true;
    }
    if (!strcasecmp(unit, "b") || !strcasecmp(unit, "byte") || !strcasecmp(unit, "bytes")) {
        *kib = value / 1024;
        return true;
    }
    p = strchr(powers, tolower((unsigned char)unit[0]));
    if (!p || !*p)
        return false;
    if (!unit[1] || !strcasecmp(unit + 1, "ib"))
        base = 1024;
    else if (!strcasecmp(unit + 1, "b"))
        base = 1000;
    else
        return false;
    for (long i = 0; i <= p - powers; i++)
        bytes *= base;
    *kib = bytes / 1024;
    return true;
}

/* What the definition says of the domain's identity and size. */
static int
vmh_xml_identity(const char *xml, char uuid[VIR_UUID_STRING_BUFLEN], char **name,
                 uint64_t *memory_kib, unsigned *vcpus)
{
    xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    char *u, *mem, *unit, *vcpu;
    int ret = -1;

    if (!root || xmlStrcmp(root->name, BAD_CAST "domain")) {
        xmlFreeDoc(doc);
        return -1;
    }
    u = vmh_xml_text(vmh_xml_child(root, "uuid"));
    *name = vmh_xml_text(vmh_xml_child(root, "name"));
    mem = vmh_xml_text(vmh_xml_child(root, "memory"));
    unit = vmh_xml_prop(vmh_xml_child(root, "memory"), "unit");
    vcpu = vmh_xml_text(vmh_xml_child(root, "vcpu"));
    if (u && strlen(u) < VIR_UUID_STRING_BUFLEN && *name && mem) {
        snprintf(uuid, VIR_UUID_STRING_BUFLEN, "%s", u);
        *vcpus = vcpu ? (unsigned)strtoul(vcpu, NULL, 10) : 1;
        if (vmh_unit_to_kib(unit, strtoull(mem, NULL, 10), memory_kib))
            ret = 0;
    }
    if (ret < 0) {
        free(*name);
        *name = NULL;
    }
    free(u);
    free(mem);
    free(unit);
    free(vcpu);
    xmlFreeDoc(doc);
    return ret;
}

/* --- storage --- */

static void
vmh_volume_copy_clear(struct vmh_volume_copy *v)
{
    free(v->path);
    free(v->pool);
    free(v->name);
    if (v->src)
        virStorageVolFree(v->src);
    if (v->dst)
        virStorageVolFree(v->dst);
    if (v->dst_pool)
        virStoragePoolFree(v->dst_pool);
}

/* The disks that have to be copied: every disk with a local source (file,
 * block device, pool volume).  Network disks (rbd, iscsi, nbd...) are
 * reachable from the target as they are. */
static int
vmh_plan_storage(struct vmh_migrate_job *job)
{
    const struct vmh_virt_request *req = job->req;
    xmlXPathContextPtr ctx = NULL;
    xmlXPathObjectPtr disks = NULL;
    int ret = -1;

    job->doc = xmlReadMemory(job->xml, (int)strlen(job->xml), "domain.xml", NULL,
                             XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!job->doc || !(ctx = xmlXPathNewContext(job->doc)) ||
        !(disks = xmlXPathEvalExpression(BAD_CAST "/domain/devices/disk[source]", ctx))) {
        vmh_job_fail(job, false, "cannot parse the definition of %s", job->name);
        goto cleanup;
    }
    for (int i = 0; disks->nodesetval && i < disks->nodesetval->nodeNr; i++) {
        xmlNodePtr disk = disks->nodesetval->nodeTab[i];
        xmlNodePtr source = vmh_xml_child(disk, "source");
        char *type = vmh_xml_prop(disk, "type");
        char *path = NULL, *pool = NULL, *vol = NULL;
        struct vmh_volume_copy *v;

        if (type && !strcmp(type, "network")) {
            free(type);
            continue;
        }
        if (type && !strcmp(type, "volume")) {
            pool = vmh_xml_prop(source, "pool");
            vol = vmh_xml_prop(source, "volume");
        } else {
            path = vmh_xml_prop(source, type && !strcmp(type, "block") ? "dev" : "file");
        }
        free(type);
        if (!path && !(pool && vol)) { /* an empty drive */
            free(pool);
            free(vol);
            continue;
        }
        job->vols = realloc(job->vols, (job->n_vols + 1) * sizeof *job->vols);
        v = &job->vols[job->n_vols++];
        memset(v, 0, sizeof *v);
        v->source_node = source;
        v->by_pool = !path;
        v->pool = pool;
        v->name = vol;
        v->path = path;
    }
    if (job->n_vols == 0) {
        ret = 0;
        goto cleanup;
    }
    /* The test driver has no virStorageVolDownload/Upload: say so now,
     * before the domain is touched, rather than fail half-way. */
    if (vmh_conn_is(job, req->source, "TEST") || vmh_conn_is(job, req->target, "TEST")) {
        vmh_job_fail(job, false,
                     "%s has %zu disk(s) on storage that is not shared, and the libvirt test "
                     "driver cannot stream storage volumes (no virStorageVolDownload/Upload)",
                     job->name, job->n_vols);
        goto cleanup;
    }
    for (size_t i = 0; i < job->n_vols; i++) {
        struct vmh_volume_copy *v = &job->vols[i];
        virStoragePoolPtr sp;
        virStorageVolPtr clash;

        if (!v->by_pool) {
            v->src = LV(job, virStorageVolLookupByPath(req->source, v->path));
            if (!v->src) {
                vmh_job_fail(job, true,
                             "disk %s of %s is not a volume of a storage pool on %s, so it "
                             "cannot be copied (shared storage is not declared)",
                             v->path, job->name, job->src_host);
                goto cleanup;
            }
        }
        if (v->by_pool) {
            sp = LV(job, virStoragePoolLookupByName(req->source, v->pool));
            v->src = sp ? LV(job, virStorageVolLookupByName(sp, v->name)) : NULL;
            if (sp)
                virStoragePoolFree(sp);
            if (!v->src) {
                vmh_job_fail(job, true, "volume %s/%s of %s not found on %s", v->pool, v->name,
                             job->name, job->src_host);
                goto cleanup;
            }
        } else {
            const char *n = LV(job, virStorageVolGetName(v->src));

            sp = LV(job, virStoragePoolLookupByVolume(v->src));
            v->name = n ? strdup(n) : NULL;
            v->pool = sp ? strdup(virStoragePoolGetName(sp)) : NULL;
            if (sp)
                virStoragePoolFree(sp);
            if (!v->name || !v->pool) {
                vmh_job_fail(job, true, "cannot tell the pool of a disk of %s on %s", job->name,
                             job->src_host);
                goto cleanup;
            }
        }
        v->dst_pool = LV(job, virStoragePoolLookupByName(req->target, v->pool));
        if (!v->dst_pool || LV(job, virStoragePoolIsActive(v->dst_pool)) != 1) {
            vmh_job_fail(job, true, "no active storage pool %s on %s for the disks of %s", v->pool,
                         job->dst_host, job->name);
            goto cleanup;
        }
        clash = LV(job, virStorageVolLookupByName(v->dst_pool, v->name));
        if (clash) {
            virStorageVolFree(clash);
            vmh_job_fail(job, false, "volume %s already exists in pool %s on %s: not overwritten",
                         v->name, v->pool, job->dst_host);
            goto cleanup;
        }
    }
    ret = 0;

cleanup:
    xmlXPathFreeObject(disks);
    xmlXPathFreeContext(ctx);
    return ret;
}

/* A minimal volume of the same name, capacity and format as v->src. */
static char *
vmh_volume_xml(struct vmh_migrate_job *job, struct vmh_volume_copy *v)
{
    virStorageVolInfo info;
    char *src_xml = LV(job, virStorageVolGetXMLDesc(v->src, 0));
    xmlDocPtr doc;
    xmlNodePtr target;
    char *format = NULL, *xml = NULL;

    if (!src_xml || LV(job, virStorageVolGetInfo(v->src, &info)) < 0) {
        free(src_xml);
        return NULL;
    }
    doc = xmlReadMemory(src_xml, (int)strlen(src_xml), "volume.xml", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    target = doc ? vmh_xml_child(xmlDocGetRootElement(doc), "target") : NULL;
    format = vmh_xml_prop(vmh_xml_child(target, "format"), "type");
    if (asprintf(&xml,
                 "<volume><name>%s</name><capacity unit='bytes'>%llu</capacity>"
                 "<allocation unit='bytes'>0</allocation>%s%s%s</volume>",
                 v->name, info.capacity, format ? "<target><format type='" : "",
                 format ? format : "", format ? "'/></target>" : "") < 0)
        xml = NULL;
    free(format);
    xmlFreeDoc(doc);
    free(src_xml);
    return xml;
}

/* Streams one volume from the source to its new copy, holes kept holes. */
static int
vmh_copy_volume(struct vmh_migrate_job *job, struct vmh_volume_copy *v)
{
    const struct vmh_virt_request *req = job->req;
    virStreamPtr in = LV(job, virStreamNew(req->source, 0));
    virStreamPtr out = LV(job, virStreamNew(req->target, 0));
    char *buf = malloc(VMH_MIGRATE_COPY_CHUNK);
    bool in_open = false, out_open = false;
    int ret = -1;

    if (!in || !out || !buf) {
        vmh_job_fail(job, true, "cannot open streams for volume %s", v->name);
        goto cleanup;
    }
    if (LV(job, virStorageVolDownload(v->src, in, 0, 0, VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM)) <
        0) {
        vmh_job_fail(job, true, "cannot download volume %s from %s", v->name, job->src_host);
        goto cleanup;
    }
    in_open = true;
    if (LV(job, virStorageVolUpload(v->dst, out, 0, 0, VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM)) < 0) {
        vmh_job_fail(job, true, "cannot upload volume %s to %s", v->name, job->dst_host);
        goto cleanup;
    }
    out_open = true;
    for (;;) {
        int n = LV(
            job, virStreamRecvFlags(in, buf, VMH_MIGRATE_COPY_CHUNK, VIR_STREAM_RECV_STOP_AT_HOLE));

        if (vmh_job_cancelled(job)) {
            vmh_job_fail(job, false, "cancelled while copying volume %s", v->name);
            goto cleanup;
        }
        if (n == -3) {
            long long hole;

            if (LV(job, virStreamRecvHole(in, &hole, 0)) < 0 ||
                LV(job, virStreamSendHole(out, hole, 0)) < 0) {
                vmh_job_fail(job, true, "cannot copy a hole of volume %s", v->name);
                goto cleanup;
            }
            continue;
        }
        if (n < 0) {
            vmh_job_fail(job, true, "cannot read volume %s from %s", v->name, job->src_host);
            goto cleanup;
        }
        if (n == 0)
            break;
        for (int off = 0; off < n;) {
            int w = LV(job, virStreamSend(out, buf + off, (size_t)(n - off)));

            if (w < 0) {
                vmh_job_fail(job, true, "cannot write volume %s to %s", v->name, job->dst_host);
                goto cleanup;
            }
            off += w;
        }
    }
    in_open = false;
    if (LV(job, virStreamFinish(in)) < 0) {
        vmh_job_fail(job, true, "reading volume %s from %s did not finish", v->name, job->src_host);
        goto cleanup;
    }
    out_open = false;
    if (LV(job, virStreamFinish(out)) < 0) {
        vmh_job_fail(job, true, "writing volume %s to %s did not finish", v->name, job->dst_host);
        goto cleanup;
    }
    ret = 0;

cleanup:
    if (in_open)
        virStreamAbort(in);
    if (out_open)
        virStreamAbort(out);
    if (in)
        virStreamFree(in);
    if (out)
        virStreamFree(out);
    free(buf);
    return ret;
}

/* --- the steps --- */

static int
vmh_step_check(struct vmh_migrate_job *job)
{
    const struct vmh_virt_request *req = job->req;
    char uuid[VIR_UUID_STRING_BUFLEN];
    uint64_t mem_kib = 0;
    unsigned vcpus = 0;
    virDomainPtr clash;

    if (!req->target || !vmh_conn_reachable(job, req->target)) {
        vmh_job_fail(job, req->target != NULL, "target host %s is not reachable", job->dst_host);
        return -1;
    }
    if (req->source) {
        int state, reason;

        if (!vmh_conn_reachable(job, req->source)) {
            vmh_job_fail(job, true, "source host %s is not reachable", job->src_host);
            return -1;
        }
        job->src = LV(job, virDomainLookupByUUIDString(req->source, req->uuid));
        if (!job->src) {
            vmh_job_fail(job, true, "domain %s not found on %s", req->uuid, job->src_host);
            return -1;
        }
        job->name = strdup(virDomainGetName(job->src));
        if (LV(job, virDomainIsPersistent(job->src)) != 1) {
            vmh_job_fail(job, false, "%s is a transient domain on %s: nothing to define elsewhere",
                         job->name, job->src_host);
            return -1;
        }
        if (LV(job, virDomainHasManagedSaveImage(job->src, 0)) > 0) {
            vmh_job_fail(job, false,
                         "%s has a managed save image on %s, which a cold migration would lose",
                         job->name, job->src_host);
            return -1;
        }
        if (LV(job, virDomainSnapshotNum(job->src, 0)) > 0) {
            vmh_job_fail(job, false,
                         "%s has snapshots on %s, whose metadata a cold migration would lose",
                         job->name, job->src_host);
            return -1;
        }
        if (LV(job, virDomainGetState(job->src, &state, &reason, 0)) < 0) {
            vmh_job_fail(job, true, "cannot read the state of %s", job->name);
            return -1;
        }
        job->was_active = state != VIR_DOMAIN_SHUTOFF && state != VIR_DOMAIN_NOSTATE;
        job->was_running = job->was_active ||
                           (state == VIR_DOMAIN_SHUTOFF && (reason == VIR_DOMAIN_SHUTOFF_CRASHED ||
                                                            reason == VIR_DOMAIN_SHUTOFF_FAILED));
        job->xml =
            LV(job, virDomainGetXMLDesc(job->src, VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_INACTIVE |
                                                      VIR_DOMAIN_XML_MIGRATABLE));
        if (!job->xml) {
            vmh_job_fail(job, true, "cannot read the definition of %s", job->name);
            return -1;
        }
    } else {
        if (!req->last_known_xml) {
            vmh_job_fail(job, false, "source host %s is unreachable and no definition is known",
                         job->src_host);
            return -1;
        }
        if (!req->shared_storage) {
            vmh_job_fail(job, false,
                         "source host %s is unreachable and the storage is not shared: the "
                         "disks cannot be recovered",
                         job->src_host);
            return -1;
        }
        job->xml = strdup(req->last_known_xml);
        job->was_running = !req->last_known_shutoff;
    }
    free(job->name);
    job->name = NULL;
    if (vmh_xml_identity(job->xml, uuid, &job->name, &mem_kib, &vcpus) < 0) {
        vmh_job_fail(job, false, "the definition of %s cannot be read", req->uuid);
        return -1;
    }
    if (strcasecmp(uuid, req->uuid)) {
        vmh_job_fail(job, false, "the definition is of domain %s, not %s", uuid, req->uuid);
        return -1;
    }

    clash = LV(job, virDomainLookupByUUIDString(req->target, req->uuid));
    if (clash || !vmh_no_domain_error()) {
        if (clash)
            virDomainFree(clash);
        vmh_job_fail(job, !clash, "%s %s on %s", job->name,
                     clash ? "is already defined" : "cannot be looked up", job->dst_host);
        return -1;
    }
    clash = LV(job, virDomainLookupByName(req->target, job->name));
    if (clash) {
        char other[VIR_UUID_STRING_BUFLEN] = "?";

        virDomainGetUUIDString(clash, other);
        virDomainFree(clash);
        vmh_job_fail(job, false, "another domain named %s (%s) is defined on %s", job->name, other,
                     job->dst_host);
        return -1;
    }
    if (!req->ignore_room) {
        uint64_t free_kib;
        unsigned free_vcpus;

        if (LV(job, vmh_virt_host_room(req->target, &free_kib, &free_vcpus)) < 0) {
            vmh_job_fail(job, true, "cannot tell the room left on %s", job->dst_host);
            return -1;
        }
        /* Memory only: vCPUs can be overcommitted and still run; how many
         * are promised is the caller's policy (vmh_virt_host_room). */
        if (mem_kib > free_kib) {
            vmh_job_fail(job, false, "%s needs %llu KiB of memory; %s has %llu KiB left", job->name,
                         (unsigned long long)mem_kib, job->dst_host, (unsigned long long)free_kib);
            return -1;
        }
    }
    if (req->source && !req->shared_storage)
        return vmh_plan_storage(job);
    return 0;
}

/* Waits until the source domain is inactive, up to timeout_us. */
static int
vmh_wait_inactive(struct vmh_migrate_job *job, uint64_t timeout_us)
{
    uint64_t start = vmh_now_us(), poll_us = VMH_MIGRATE_POLL_MIN_US;

    for (;;) {
        int active = LV(job, virDomainIsActive(job->src));
        uint64_t t0 = vmh_now_us();

        if (active <= 0)
            return active;
        if (t0 - start >= timeout_us || vmh_job_cancelled(job))
            return 1;
        g_usleep(MIN(poll_us, start + timeout_us - t0));
        job->wait_us += vmh_now_us() - t0;
        poll_us = MIN(poll_us * 2, VMH_MIGRATE_POLL_MAX_US);
    }
}

static int
vmh_step_shutdown(struct vmh_migrate_job *job)
{
    int state, reason, active;

    if (!job->req->source || !job->was_active)
        return 0;
    if (LV(job, virDomainGetState(job->src, &state, &reason, 0)) < 0) {
        vmh_job_fail(job, true, "cannot read the state of %s on %s", job->name, job->src_host);
        return -1;
    }
    job->stopped_source = true;
    /* A paused or crashed guest cannot answer ACPI: no point waiting. */
    if (state != VIR_DOMAIN_PAUSED && state != VIR_DOMAIN_CRASHED &&
        state != VIR_DOMAIN_PMSUSPENDED) {
        if (LV(job, virDomainShutdown(job->src)) < 0)
            log_warn("virt", "graceful shutdown of %s on %s refused, destroying it: %s", job->name,
                     job->src_host, virGetLastErrorMessage());
        else if ((active = vmh_wait_inactive(job, (uint64_t)job->req->shutdown_timeout_s *
                                                      1000000u)) <= 0)
            goto done;
        if (vmh_job_cancelled(job)) {
            vmh_job_fail(job, false, "cancelled while %s was shutting down", job->name);
            return -1;
        }
        log_info("virt", "%s did not shut down within %u s on %s: destroying it", job->name,
                 job->req->shutdown_timeout_s, job->src_host);
    }
    job->out->forced_off = true;
    if (LV(job, virDomainDestroy(job->src)) < 0 && LV(job, virDomainIsActive(job->src)) != 0) {
        vmh_job_fail(job, true, "cannot destroy %s on %s", job->name, job->src_host);
        return -1;
    }
    active = vmh_wait_inactive(job, VMH_MIGRATE_DESTROY_WAIT);
done:
    if (active < 0) {
        vmh_job_fail(job, true, "cannot tell whether %s stopped on %s", job->name, job->src_host);
        return -1;
    }
    if (active > 0) {
        vmh_job_fail(job, false, "%s is still running on %s after destroy", job->name,
                     job->src_host);
        return -1;
    }
    return 0;
}

static int
vmh_step_export(struct vmh_migrate_job *job)
{
    char *xml;

    if (!job->req->source)
        return 0; /* the last known definition, read at check */
    /* Again now that the domain is off: what the guest changed is in it. */
    xml = LV(job, virDomainGetXMLDesc(job->src, VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_INACTIVE |
                                                    VIR_DOMAIN_XML_MIGRATABLE));
    if (!xml) {
        vmh_job_fail(job, true, "cannot read the definition of %s on %s", job->name, job->src_host);
        return -1;
    }
    if (job->doc && strcmp(xml, job->xml)) {
        xmlFreeDoc(job->doc);
        job->doc = NULL;
        free(job->xml);
        job->xml = xml;
        for (size_t i = 0; i < job->n_vols; i++)
            vmh_volume_copy_clear(&job->vols[i]);
        free(job->vols);
        job->vols = NULL;
        job->n_vols = 0;
        return vmh_plan_storage(job);
    }
    free(job->xml);
    job->xml = xml;
    return 0;
}

static int
vmh_step_storage(struct vmh_migrate_job *job)
{
    xmlChar *out = NULL;
    int len = 0;

    if (job->n_vols == 0)
        return 0;
    for (size_t i = 0; i < job->n_vols; i++) {
        struct vmh_volume_copy *v = &job->vols[i];
        char *vol_xml = vmh_volume_xml(job, v);
        char *path;

        if (!vol_xml) {
            vmh_job_fail(job, true, "cannot read volume %s on %s", v->name, job->src_host);
            return -1;
        }
        v->dst = LV(job, virStorageVolCreateXML(v->dst_pool, vol_xml, 0));
        free(vol_xml);
        if (!v->dst) {
            vmh_job_fail(job, true, "cannot create volume %s in pool %s on %s", v->name, v->pool,
                         job->dst_host);
            return -1;
        }
        if (vmh_copy_volume(job, v) < 0)
            return -1;
        if (!v->by_pool) {
            if (!(path = LV(job, virStorageVolGetPath(v->dst)))) {
                vmh_job_fail(job, true, "cannot read the path of volume %s on %s", v->name,
                             job->dst_host);
                return -1;
            }
            xmlSetProp(v->source_node,
                       BAD_CAST(xmlHasProp(v->source_node, BAD_CAST "dev") ? "dev" : "file"),
                       BAD_CAST path);
            free(path);
        }
    }
    xmlDocDumpMemory(job->doc, &out, &len);
    if (!out) {
        vmh_job_fail(job, false, "out of memory");
        return -1;
    }
    free(job->xml);
    job->xml = strdup((const char *)out);
    xmlFree(out);
    return 0;
}

static int
vmh_step_define(struct vmh_migrate_job *job)
{
    const struct vmh_virt_request *req = job->req;
    virDomainPtr clash;

    /* The check was a while ago: defining over a domain of the same UUID
     * would silently replace a definition this job does not own. */
    clash = LV(job, virDomainLookupByUUIDString(req->target, req->uuid));
    if (clash || !vmh_no_domain_error()) {
        if (clash)
            virDomainFree(clash);
        vmh_job_fail(job, !clash, "%s %s on %s", job->name,
                     clash ? "appeared meanwhile" : "cannot be looked up", job->dst_host);
        return -1;
    }
    if (req->source && !req->manual_only && job->n_vols == 0 &&
        vmh_conn_is(job, req->source, "QEMU") && vmh_conn_is(job, req->target, "QEMU")) {
        job->dst = LV(job, virDomainMigrate3(job->src, req->target, NULL, 0,
                                             VIR_MIGRATE_OFFLINE | VIR_MIGRATE_PERSIST_DEST));
        if (!job->dst) {
            vmh_job_fail(job, true, "offline migration of %s to %s refused", job->name,
                         job->dst_host);
            return -1;
        }
        job->out->native = true;
    } else {
        job->dst = LV(job, virDomainDefineXML(req->target, job->xml));
        if (!job->dst) {
            vmh_job_fail(job, true, "cannot define %s on %s", job->name, job->dst_host);
            return -1;
        }
    }
    job->defined_target = true;
    return 0;
}

/* The source domain must stay off once the target has it: two running
 * copies would share (or fork) the same disks. */
static int
vmh_source_still_off(struct vmh_migrate_job *job)
{
    int active;

    if (!job->req->source || !job->src)
        return 0;
    active = LV(job, virDomainIsActive(job->src));
    if (active == 1) {
        vmh_job_fail(job, false, "%s was started again on %s during the migration", job->name,
                     job->src_host);
        return -1;
    }
    return active < 0 ? -2 : 0;
}

static int
vmh_step_start(struct vmh_migrate_job *job)
{
    if (!job->was_running)
        return 0;
    if (vmh_source_still_off(job) == -1)
        return -1;
    if (LV(job, virDomainCreate(job->dst)) < 0) {
        vmh_job_fail(job, true, "cannot start %s on %s", job->name, job->dst_host);
        return -1;
    }
    job->out->started = true;
    return 0;
}

static int
vmh_step_undefine_source(struct vmh_migrate_job *job)
{
    int still_off;
    char *msg;

    if (!job->req->source) {
        job->out->source_leftover = true;
        return 0;
    }
    still_off = vmh_source_still_off(job);
    if (still_off == -1)
        return -1;
    if (still_off == 0 && vmh_undefine_keep_storage(job, job->src) == 0)
        return 0;
    msg = strdup(virGetLastErrorMessage());
    if (vmh_conn_reachable(job, job->req->source)) {
        vmh_job_fail(job, false, "cannot undefine %s on %s: %s", job->name, job->src_host,
                     msg ? msg : "?");
        free(msg);
        return -1;
    }
    /* The domain runs (or is defined) on the target and is off on a source
     * we cannot reach: undoing a finished move would only take it down. */
    log_warn("virt",
             "%s moved to %s, but %s is unreachable and keeps its shut off definition: "
             "undefine it there when the host is back (%s)",
             job->name, job->dst_host, job->src_host, msg ? msg : "?");
    free(msg);
    job->out->source_leftover = true;
    return 0;
}

static void
vmh_rollback(struct vmh_migrate_job *job)
{
    const struct vmh_virt_request *req = job->req;
    bool restored = true;

    if (job->dst && job->defined_target) {
        if (LV(job, virDomainIsActive(job->dst)) == 1 && LV(job, virDomainDestroy(job->dst)) < 0)
            vmh_job_note(job, "cannot destroy %s on %s: %s", job->name, job->dst_host,
                         virGetLastErrorMessage());
        if (vmh_undefine_keep_storage(job, job->dst) < 0 && !vmh_no_domain_error()) {
            vmh_job_note(job, "cannot undefine %s on %s: %s", job->name, job->dst_host,
                         virGetLastErrorMessage());
            job->out->target_leftover = true;
        }
    }
    /* Only the copies this job made on the target; never a source disk. */
    for (size_t i = 0; i < job->n_vols; i++) {
        struct vmh_volume_copy *v = &job->vols[i];

        if (v->dst && LV(job, virStorageVolDelete(v->dst, 0)) < 0)
            vmh_job_note(job, "cannot delete the partial copy %s in pool %s on %s: %s", v->name,
                         v->pool, job->dst_host, virGetLastErrorMessage());
    }
    if (req->source && job->src && job->was_active && job->stopped_source) {
        int active = LV(job, virDomainIsActive(job->src));

        if (active < 0 || (active == 0 && LV(job, virDomainCreate(job->src)) < 0)) {
            vmh_job_note(job, "cannot restart %s on %s: %s", job->name, job->src_host,
                         virGetLastErrorMessage());
            restored = false;
        }
    } else if (req->source && job->src && LV(job, virDomainIsActive(job->src)) < 0) {
        restored = false; /* cannot even tell: the source is gone */
    }
    job->out->rolled_back = restored && !job->out->target_leftover;
    log_info("virt", "migration of %s rolled back: %s", job->name ? job->name : req->uuid,
             job->out->rolled_back ? "left as it was on the source" : "NOT fully restored");
}

typedef int (*vmh_step_fn)(struct vmh_migrate_job *job);

int
vmh_virt_migrate(const struct vmh_virt_request *req, struct vmh_virt_outcome *out)
{
    static const vmh_step_fn steps[] = {
        [VMH_STEP_CHECK] = vmh_step_check,
        [VMH_STEP_SHUTDOWN] = vmh_step_shutdown,
        [VMH_STEP_EXPORT] = vmh_step_export,
        [VMH_STEP_STORAGE] = vmh_step_storage,
        [VMH_STEP_DEFINE] = vmh_step_define,
        [VMH_STEP_START] = vmh_step_start,
        [VMH_STEP_UNDEFINE_SOURCE] = vmh_step_undefine_source,
    };
    struct vmh_migrate_job job = {
        .req = req,
        .out = out,
        .src_host = req->source_name ? req->source_name : "the source",
        .dst_host = req->target_name ? req->target_name : "the target",
    };
    static pthread_once_t xml_once = PTHREAD_ONCE_INIT;
    uint64_t t0 = vmh_now_us();

    /* libxml2 wants its first initialisation done once, not raced by the
     * first two migration workers. */
    pthread_once(&xml_once, xmlInitParser);
    memset(out, 0, sizeof *out);
    for (job.step = VMH_STEP_CHECK; job.step < VMH_STEP_DONE; job.step++) {
        if (req->on_step)
            req->on_step(job.step, req->opaque);
        if (vmh_job_cancelled(&job)) {
            vmh_job_fail(&job, false, "cancelled");
            break;
        }
        log_debug("virt", "migration of %s: %s", job.name ? job.name : req->uuid,
                  vmh_migration_step_str(job.step));
        if (steps[job.step](&job) < 0)
            break;
    }
    out->was_running = job.was_running;
    if (job.failed) {
        vmh_rollback(&job);
    } else {
        out->ok = true;
        if (req->on_step)
            req->on_step(VMH_STEP_DONE, req->opaque);
    }
    out->libvirt_us = job.lv_us;
    out->libvirt_calls = job.lv_calls;
    out->libvirt_ms = job.lv_us / 1000;
    out->wait_us = job.wait_us;
    out->total_us = vmh_now_us() - t0;
    if (out->ok)
        log_info("virt", "%s migrated from %s to %s%s in %llu ms (libvirt %llu ms)", job.name,
                 job.src_host, job.dst_host, out->started ? " and started" : "",
                 (unsigned long long)(out->total_us / 1000), (unsigned long long)out->libvirt_ms);

    for (size_t i = 0; i < job.n_vols; i++)
        vmh_volume_copy_clear(&job.vols[i]);
    free(job.vols);
    xmlFreeDoc(job.doc);
    if (job.src)
        virDomainFree(job.src);
    if (job.dst)
        virDomainFree(job.dst);
    free(job.xml);
    free(job.name);
    return out->ok ? 0 : -1;
}

/* --- capacity and presence --- */

int
vmh_virt_host_room(virConnectPtr conn, uint64_t *free_kib, unsigned *free_vcpus)
{
    virNodeInfo node;
    virDomainPtr *doms = NULL;
    uint64_t used_kib = 0, promised;
    unsigned long long node_free;
    unsigned used_vcpus = 0;
    const char *type;
    int n;

    if (virNodeGetInfo(conn, &node) < 0 || (n = virConnectListAllDomains(conn, &doms, 0)) < 0) {
        log_warn("virt", "cannot read the capacity of a host: %s", virGetLastErrorMessage());
        return -1;
    }
    for (int i = 0; i < n; i++) {
        virDomainInfo info;

        /* A domain undefined since the listing takes nothing. */
        if (virDomainGetInfo(doms[i], &info) == 0) {
            used_kib += info.maxMem;
            used_vcpus += info.nrVirtCpu;
        }
        virDomainFree(doms[i]);
    }
    free(doms);
    promised = node.memory > used_kib ? node.memory - used_kib : 0;
    *free_kib = promised;
    /* The test driver reports a fixed (or zero) free memory whatever its
     * domains take: only what is promised to them counts there. */
    type = vmh_conn_type(conn);
    if (!(type && !strcasecmp(type, "TEST"))) {
        node_free = virNodeGetFreeMemory(conn);
        if (node_free > 0 && node_free / 1024 < promised)
            *free_kib = node_free / 1024;
    }
    *free_vcpus = node.cpus > used_vcpus ? node.cpus - used_vcpus : 0;
    return 0;
}

int
vmh_virt_domain_presence(virConnectPtr conn, const char *uuid, bool *running)
{
    virDomainPtr dom = virDomainLookupByUUIDString(conn, uuid);
    int active;

    *running = false;
    if (!dom) {
        if (vmh_no_domain_error())
            return 0;
        log_warn("virt", "cannot look up domain %s: %s", uuid, virGetLastErrorMessage());
        return -1;
    }
    active = virDomainIsActive(dom);
    virDomainFree(dom);
    if (active < 0) {
        if (vmh_no_domain_error())
            return 0;
        log_warn("virt", "cannot read the state of domain %s: %s", uuid, virGetLastErrorMessage());
        return -1;
    }
    *running = active == 1;
    return 1;
}
