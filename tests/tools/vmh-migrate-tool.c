/* SPDX-License-Identifier: GPL-3.0-or-later */
/* vmh-migrate-tool: runs the agent's cold-migration executor
 * (vmh_virt_migrate) once, or back and forth for a benchmark, between two
 * libvirt URIs, so that integration tests and benchmarks drive the real code
 * against real daemons and check the result through their own connections.
 *
 *   vmh-migrate-tool [options] SRC_URI|- DST_URI UUID
 *     --shared          the storage is shared
 *     --timeout S       graceful shutdown timeout (default 5)
 *     --pause-at STEP   before STEP, print "step STEP" and wait for a line on
 *                       stdin (the test provokes a failure meanwhile); repeatable
 *     --cancel-at STEP  cancel the job as STEP begins
 *     --xml FILE        evacuation (SRC_URI "-"): the last known definition
 *     --shutoff         evacuation: it was shut off when last seen
 *     --manual          never virDomainMigrate3
 *     --ignore-room     skip the target room check
 *     --repeat N        migrate N times, back and forth (benchmark)
 *
 * Prints one JSON object per migration on stdout; exit 0 when every
 * migration succeeded, 1 when one failed, 2 on usage or connection errors.
 * Remote connections get keepalive (1 s, 2) so that a hung daemon is noticed.
 * SIGPIPE is ignored as in vmhealthd: libvirt writes to its sockets with
 * write(2), and a daemon that closes a stream or connection first must give
 * the executor an error to handle, not kill the process. */
#include "util/log.h"
#include "virt/migrate.h"

#include <getopt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tool {
    bool pause_at[VMH_STEP_DONE + 1];
    int cancel_at;
    int cancel;
    char steps[256];
};

static void
tool_on_step(enum vmh_migration_step step, void *opaque)
{
    struct tool *t = opaque;
    char line[64];

    if (t->steps[0])
        strncat(t->steps, ",", sizeof t->steps - strlen(t->steps) - 1);
    strncat(t->steps, "\"", sizeof t->steps - strlen(t->steps) - 1);
    strncat(t->steps, vmh_migration_step_str(step), sizeof t->steps - strlen(t->steps) - 1);
    strncat(t->steps, "\"", sizeof t->steps - strlen(t->steps) - 1);
    if ((int)step == t->cancel_at)
        __atomic_store_n(&t->cancel, 1, __ATOMIC_RELEASE);
    if (t->pause_at[step]) {
        printf("step %s\n", vmh_migration_step_str(step));
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin))
            fprintf(stderr, "vmh-migrate-tool: stdin closed while paused\n");
    }
}

static void *
tool_event_loop(void *arg)
{
    for (;;)
        virEventRunDefaultImpl();
    return NULL;
}

static void
json_str(const char *key, const char *s)
{
    printf("\"%s\":", key);
    if (!s) {
        printf("null,");
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    printf("\",");
}

static void
print_outcome(const struct tool *t, const struct vmh_virt_outcome *o)
{
    printf("{\"ok\":%s,", o->ok ? "true" : "false");
    json_str("failed_step", o->ok ? NULL : vmh_migration_step_str(o->failed_step));
    json_str("error", o->error);
    printf("\"was_running\":%s,\"started\":%s,\"rolled_back\":%s,\"forced_off\":%s,"
           "\"native\":%s,\"target_leftover\":%s,\"source_leftover\":%s,",
           o->was_running ? "true" : "false", o->started ? "true" : "false",
           o->rolled_back ? "true" : "false", o->forced_off ? "true" : "false",
           o->native ? "true" : "false", o->target_leftover ? "true" : "false",
           o->source_leftover ? "true" : "false");
    printf("\"libvirt_calls\":%u,", o->libvirt_calls);
    printf("\"libvirt_ms\":%llu,\"libvirt_us\":%llu,\"wait_us\":%llu,\"total_us\":%llu,"
           "\"steps\":[%s]}\n",
           (unsigned long long)o->libvirt_ms, (unsigned long long)o->libvirt_us,
           (unsigned long long)o->wait_us, (unsigned long long)o->total_us, t->steps);
    fflush(stdout);
}

static int
step_by_name(const char *name)
{
    for (int s = VMH_STEP_CHECK; s <= VMH_STEP_DONE; s++)
        if (!strcmp(name, vmh_migration_step_str(s)))
            return s;
    fprintf(stderr, "vmh-migrate-tool: no step %s\n", name);
    exit(2);
}

static virConnectPtr
open_conn(const char *uri)
{
    virConnectPtr c = virConnectOpen(uri);

    if (!c) {
        fprintf(stderr, "vmh-migrate-tool: cannot connect to %s: %s\n", uri,
                virGetLastErrorMessage());
        exit(2);
    }
    virConnectSetKeepAlive(c, 1, 2); /* 1: not a remote connection */
    return c;
}

static char *
read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0;

    if (!f || getdelim(&buf, &len, '\0', f) < 0) {
        fprintf(stderr, "vmh-migrate-tool: cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    return buf;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"shared", no_argument, NULL, 's'},         {"timeout", required_argument, NULL, 't'},
        {"pause-at", required_argument, NULL, 'p'}, {"cancel-at", required_argument, NULL, 'c'},
        {"xml", required_argument, NULL, 'x'},      {"shutoff", no_argument, NULL, 'o'},
        {"manual", no_argument, NULL, 'm'},         {"ignore-room", no_argument, NULL, 'i'},
        {"repeat", required_argument, NULL, 'r'},   {NULL, 0, NULL, 0},
    };
    struct tool t = {.cancel_at = -1};
    struct vmh_virt_request req = {
        .shutdown_timeout_s = 5, .on_step = tool_on_step, .opaque = &t, .cancel = &t.cancel};
    virConnectPtr a = NULL, b;
    char *xml = NULL;
    pthread_t loop;
    int repeat = 1, rc = 0, opt;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            req.shared_storage = true;
            break;
        case 't':
            req.shutdown_timeout_s = (unsigned)atoi(optarg);
            break;
        case 'p':
            t.pause_at[step_by_name(optarg)] = true;
            break;
        case 'c':
            t.cancel_at = step_by_name(optarg);
            break;
        case 'x':
            xml = read_file(optarg);
            break;
        case 'o':
            req.last_known_shutoff = true;
            break;
        case 'm':
            req.manual_only = true;
            break;
        case 'i':
            req.ignore_room = true;
            break;
        case 'r':
            repeat = atoi(optarg);
            break;
        default:
            return 2;
        }
    }
    if (argc - optind != 3 || strlen(argv[optind + 2]) >= sizeof req.uuid) {
        fprintf(stderr, "usage: vmh-migrate-tool [options] SRC_URI|- DST_URI UUID\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    vmh_log_init("vmh-migrate-tool", true, getenv("VMH_DEBUG"));
    vmh_log_route_libvirt();
    virEventRegisterDefaultImpl();
    pthread_create(&loop, NULL, tool_event_loop, NULL);
    pthread_detach(loop);

    if (strcmp(argv[optind], "-"))
        a = open_conn(argv[optind]);
    b = open_conn(argv[optind + 1]);
    snprintf(req.uuid, sizeof req.uuid, "%s", argv[optind + 2]);
    req.last_known_xml = xml;
    for (int i = 0; i < repeat; i++) {
        struct vmh_virt_outcome out;

        req.source = i % 2 ? b : a;
        req.target = i % 2 ? a : b;
        req.source_name = i % 2 ? "B" : "A";
        req.target_name = i % 2 ? "A" : "B";
        t.steps[0] = '\0';
        if (vmh_virt_migrate(&req, &out) < 0)
            rc = 1;
        print_outcome(&t, &out);
        free(out.error);
        if (rc)
            break;
    }
    if (a)
        virConnectClose(a);
    virConnectClose(b);
    free(xml);
    return rc;
}
