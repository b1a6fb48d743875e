/* SPDX-License-Identifier: GPL-3.0-or-later */
/* vmhealthd: wires the subsystems together.  The main thread parses the
 * command line, loads the configuration, starts the loop thread and then
 * only waits for a signal to stop. */
#include "config/config.h"
#include "config/datastore.h"
#include "config/txn.h"
#include "core/engine.h"
#include "core/loop.h"
#include "monitor/monitor.h"
#include "netconf/netconf.h"
#include "snmp/snmp.h"
#include "util/file.h"
#include "util/log.h"
#include "virt/virt.h"

#include <errno.h>
#include <getopt.h>
#include <glib.h>
#include <pthread.h>
#include <libxml/parser.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#ifndef VMH_VERSION
#define VMH_VERSION "unknown"
#endif
#define VMH_DEFAULT_CONFIG "/etc/vmhealth/vmhealth.xml"

struct vmh_agent {
    const char *config_path;
    struct ly_ctx *ctx;
    struct lyd_node *running; /* until the datastores take it over */
    struct vmh_datastore *ds;
    struct vmh_txn *txn;
    struct vmh_nc_server *netconf;
    struct vmh_loop *loop;
    struct vmh_engine *engine;
    struct vmh_virt *virt;
    struct vmh_snmp *snmp;
    struct vmh_monitor *monitor;
    char *state_dir;
    int sigfd;
    int sig_watch;
    int quit_pipe[2];
};

static void
vmh_usage(FILE *out)
{
    fprintf(out,
            "Usage: vmhealthd [OPTION]...\n"
            "NFV infrastructure agent: watches hypervisor hosts and their VMs, tells the VNF\n"
            "managers when something is abnormal, and cold-migrates the affected VMs.\n"
            "\n"
            "  -c, --config FILE    startup configuration (YANG instance data of nfv-vm-health\n"
            "                       and vmhealth-agent; .xml or .json), default " VMH_DEFAULT_CONFIG
            "\n"
            "      --check-config   validate the configuration and exit (0 when valid)\n"
            "  -f, --foreground     stay in the foreground and log to stderr\n"
            "  -d, --debug          log debug messages of every subsystem\n"
            "  -D, --debug-only T   log debug messages of the comma separated subsystems T\n"
            "                       (core, config, virt, loop, libyang, libvirt, ...)\n"
            "  -V, --version        print the version and exit\n"
            "  -h, --help           print this help and exit\n"
            "\n"
            "Signals: SIGTERM/SIGINT stop; SIGUSR1 writes the operational state as JSON to\n"
            "STATE-DIR/operational.json.\n");
}

/* The state contributor of the operational tree (the SIGUSR1 dump and the
 * NETCONF get): what the front ends add to the core's state. */
static int
vmh_agent_state_add(void *opaque, struct lyd_node *tree)
{
    struct vmh_agent *agent = opaque;

    return vmh_snmp_state_add(agent->snmp, tree);
}

static int
vmh_agent_dump_state(struct vmh_agent *agent)
{
    struct vmh_snapshot *snap;
    struct lyd_node *tree = NULL;
    char *json = NULL, *path = NULL;
    int rc = -1;

    vmh_engine_publish(agent->engine);
    snap = vmh_engine_snapshot(agent->engine);
    rc = vmh_state_build(vmh_ds_read_begin(agent->ds, VMH_DS_RUNNING), snap, &tree);
    vmh_ds_read_end(agent->ds);
    if (rc < 0 || (rc = vmh_agent_state_add(agent, tree)) < 0)
        goto cleanup;
    rc = -1;
    if (lyd_print_mem(&json, tree, LYD_JSON, LYD_PRINT_WITHSIBLINGS) != LY_SUCCESS) {
        log_err("config", "cannot print the operational state: %s", ly_errmsg(agent->ctx));
        goto cleanup;
    }
    path = g_strdup_printf("%s/operational.json", agent->state_dir);
    rc = vmh_file_write_atomic(path, json, strlen(json), 0600);
    if (rc == 0)
        log_info("agent", "operational state written to %s (%zu hosts, %zu VMs)", path,
                 snap->n_hosts, snap->n_vms);
    /* the SNMP targets' retransmissions and drops are only in the log */
    vmh_snmp_log_target_stats(agent->snmp);

cleanup:
    g_free(path);
    free(json);
    lyd_free_siblings(tree);
    vmh_snapshot_unref(snap);
    return rc;
}

static void
vmh_agent_signal_cb(void *opaque)
{
    struct vmh_agent *agent = opaque;
    struct signalfd_siginfo si;
    char c = 'q';

    while (read(agent->sigfd, &si, sizeof si) == sizeof si) {
        switch (si.ssi_signo) {
        case SIGUSR1:
            vmh_agent_dump_state(agent);
            break;
        case SIGHUP:
            log_info("agent", "SIGHUP ignored: configuration changes are not reloaded from "
                              "the file while running");
            break;
        default:
            log_info("agent", "signal %d: stopping", (int)si.ssi_signo);
            if (write(agent->quit_pipe[1], &c, 1) < 0)
                log_err("agent", "cannot wake the main thread: %s", strerror(errno));
            break;
        }
    }
}

static void
vmh_agent_ready(void *opaque)
{
    struct vmh_agent *agent = opaque;
    struct vmh_snapshot *snap;
    size_t connected = 0;

    vmh_engine_publish(agent->engine);
    snap = vmh_engine_snapshot(agent->engine);
    for (size_t i = 0; i < snap->n_hosts; i++)
        connected += snap->hosts[i].connection == VMH_CONN_CONNECTED;
    log_info("agent", "vmhealthd %s ready: %zu of %zu hosts connected, %zu VMs", VMH_VERSION,
             connected, snap->n_hosts, snap->n_vms);
    vmh_snapshot_unref(snap);
    sd_notify(0, "READY=1");
}

static void
vmh_agent_host_added(const struct vmh_host_conf *host, void *opaque)
{
    struct vmh_agent *agent = opaque;

    vmh_virt_add_host(agent->virt, host->name, host->uri);
}

static void
vmh_agent_run_migration(const struct vmh_migration_request *req, void *opaque)
{
    struct vmh_agent *agent = opaque;

    vmh_virt_run_migration(agent->virt, req);
}

static void
vmh_agent_recover_migration(const struct vmh_migration_request *req, void *opaque)
{
    struct vmh_agent *agent = opaque;

    vmh_virt_recover_migration(agent->virt, req);
}

static void
vmh_agent_remove_stale(const char *host, const char *uuid, void *opaque)
{
    struct vmh_agent *agent = opaque;

    vmh_virt_remove_stale(agent->virt, host, uuid);
}

static void
vmh_agent_host_removed(const char *name, void *opaque)
{
    struct vmh_agent *agent = opaque;

    vmh_virt_remove_host(agent->virt, name);
}

/* glibc keeps what a storm freed inside its arenas (only the top of a heap
 * goes back on its own); the live heap stays flat (heaptrack, docs/SOAK.md)
 * while the RSS creeps up by the fragments.  Handing free pages back now
 * and then keeps the RSS what the daemon uses.  0.2-0.35 ms on the engine
 * thread (uprobes on malloc_trim during a soak). */
#define VMH_AGENT_TRIM_MS 30000

static void
vmh_agent_trim(void *opaque)
{
    (void)opaque;
    malloc_trim(0);
}

static void
vmh_agent_start_hosts(void *opaque)
{
    struct vmh_agent *agent = opaque;
    const struct vmh_config *cfg = vmh_engine_config(agent->engine);

    if (!cfg->n_hosts)
        log_warn("agent", "no host is configured: there is nothing to watch");
    for (size_t i = 0; i < cfg->n_hosts; i++)
        vmh_virt_add_host(agent->virt, cfg->hosts[i].name, cfg->hosts[i].uri);
    agent->monitor = vmh_monitor_new(agent->loop, agent->engine);
    vmh_virt_on_first_round(agent->virt, vmh_agent_ready, agent);
}

static int
vmh_agent_signals(struct vmh_agent *agent)
{
    sigset_t set;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    /* Blocked before any thread starts, so that every thread inherits it and
     * the signals reach only the signalfd. */
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    agent->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (agent->sigfd < 0 || pipe(agent->quit_pipe) < 0) {
        log_err("agent", "cannot set up signal handling: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int
vmh_agent_commit_startup(struct vmh_agent *agent)
{
    struct vmh_txn_error err;

    if (vmh_txn_commit(agent->txn, NULL, agent->running, VMH_TXN_STARTUP, &err) == 0)
        return 0;
    fprintf(stderr, "vmhealthd: invalid configuration: %s%s%s\n", err.path ? err.path : "",
            err.path ? ": " : "", err.message);
    log_err("config", "invalid configuration: %s%s%s", err.path ? err.path : "",
            err.path ? ": " : "", err.message);
    vmh_txn_error_clear(&err);
    return -1;
}

static void
vmh_agent_stop(void *opaque)
{
    struct vmh_agent *agent = opaque;

    vmh_loop_unwatch_fd(agent->sig_watch);
    vmh_monitor_free(agent->monitor);
    agent->monitor = NULL;
    vmh_virt_free(agent->virt);
    agent->virt = NULL;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'C'},
        {"foreground", no_argument, NULL, 'f'},
        {"debug", no_argument, NULL, 'd'},
        {"debug-only", required_argument, NULL, 'D'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct vmh_agent agent = {
        .config_path = VMH_DEFAULT_CONFIG, .sigfd = -1, .sig_watch = -1, .quit_pipe = {-1, -1}};
    struct vmh_config *cfg = NULL;
    bool check_only = false, foreground = false;
    const char *debug = NULL;
    char *err = NULL;
    int opt, rc = EXIT_FAILURE;
    char c;

    while ((opt = getopt_long(argc, argv, "c:fdD:Vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            agent.config_path = optarg;
            break;
        case 'C':
            check_only = true;
            break;
        case 'f':
            foreground = true;
            break;
        case 'd':
            debug = "all";
            break;
        case 'D':
            debug = optarg;
            break;
        case 'V':
            printf("vmhealthd %s\n", VMH_VERSION);
            return EXIT_SUCCESS;
        case 'h':
            vmh_usage(stdout);
            return EXIT_SUCCESS;
        default:
            vmh_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vmhealthd: unexpected argument '%s'\n", argv[optind]);
        vmh_usage(stderr);
        return 2;
    }

    /* Whatever the daemon creates (state, journals, startup file, sockets
     * before their configured mode) is its own alone. */
    umask(077);
    /* Threads come and go (NETCONF workers, migration and libvirt workers);
     * with glibc's default of 8 arenas per core each keeps what it once
     * held, and the RSS of a long run creeps up with no live data behind
     * it (the soak, docs/SOAK.md).  Two arenas keep it flat. */
    mallopt(M_ARENA_MAX, 2);
    vmh_log_init("vmhealthd", foreground || check_only, debug);
    vmh_log_route_libyang();
    vmh_log_route_libvirt();
    xmlInitParser();

    if (vmh_yang_ctx_new(NULL, &agent.ctx) < 0)
        goto cleanup;
    if (vmh_config_load_file(agent.ctx, agent.config_path, &agent.running, &err) < 0) {
        /* One line, on stderr even when daemonizing: the operator runs this. */
        fprintf(stderr, "vmhealthd: invalid configuration: %s\n", err);
        if (!foreground && !check_only)
            log_err("config", "invalid configuration: %s", err);
        goto cleanup;
    }
    if (vmh_config_build(agent.running, &cfg) < 0) {
        log_err("config", "out of memory reading the configuration");
        goto cleanup;
    }
    if (check_only) {
        printf("vmhealthd: configuration %s is valid (%zu hosts, %zu VNF managers, "
               "%zu VM assignments)\n",
               agent.config_path, cfg->n_hosts, cfg->n_managers, cfg->n_assignments);
        rc = EXIT_SUCCESS;
        goto cleanup;
    }
    agent.state_dir = strdup(cfg->state_dir);
    vmh_config_free(cfg);
    cfg = NULL;
    /* The journal and state kept here are the operator's business only. */
    if (vmh_file_mkdir_p(agent.state_dir, 0700) < 0 || chmod(agent.state_dir, 0700) < 0) {
        fprintf(stderr, "vmhealthd: state directory %s: %s\n", agent.state_dir, strerror(errno));
        goto cleanup;
    }

    if (!foreground && daemon(0, 0) < 0) {
        fprintf(stderr, "vmhealthd: cannot go to the background: %s\n", strerror(errno));
        goto cleanup;
    }
    if (vmh_agent_signals(&agent) < 0 || vmh_loop_new(&agent.loop) < 0)
        goto cleanup;
    if (vmh_snmp_new(&(struct vmh_snmp_options){.state_dir = agent.state_dir}, &agent.snmp) < 0)
        goto cleanup;
    /* The startup load is the first configuration transaction: it creates
     * the engine and starts the SNMP agent (its listeners bound before the
     * ready line); the NETCONF server subscribes when it starts. */
    agent.txn = vmh_txn_new();
    vmh_config_subscribe(agent.txn, agent.loop, &agent.engine);
    vmh_snmp_subscribe(agent.txn, agent.snmp, &agent.engine);
    if (vmh_agent_commit_startup(&agent) < 0)
        goto cleanup;
    agent.virt = vmh_virt_new(agent.loop, agent.engine);
    vmh_engine_set_hooks(agent.engine, &(struct vmh_engine_hooks){
                                           .host_added = vmh_agent_host_added,
                                           .host_removed = vmh_agent_host_removed,
                                           .run_migration = vmh_agent_run_migration,
                                           .recover_migration = vmh_agent_recover_migration,
                                           .remove_stale = vmh_agent_remove_stale,
                                           .opaque = &agent,
                                       });
    if (vmh_engine_journal_open(agent.engine, agent.state_dir) < 0)
        goto cleanup;
    agent.sig_watch = vmh_loop_watch_fd(agent.loop, agent.sigfd, vmh_agent_signal_cb, &agent);
    log_info("agent", "vmhealthd %s starting with %s", VMH_VERSION, agent.config_path);
    if (vmh_ds_new(agent.running, agent.config_path, &agent.ds) < 0)
        goto cleanup;
    agent.running = NULL;
    /* Listening before the loop starts, so that the ready line implies it. */
    if (vmh_nc_server_start(&(struct vmh_nc_options){.ctx = agent.ctx,
                                                     .ds = agent.ds,
                                                     .engine = agent.engine,
                                                     .txn = agent.txn,
                                                     .state_dir = agent.state_dir,
                                                     .state_add = vmh_agent_state_add,
                                                     .state_opaque = &agent},
                            &agent.netconf) < 0) {
        fprintf(stderr, "vmhealthd: the NETCONF server cannot start (see the log above)\n");
        goto cleanup;
    }
    if (vmh_loop_start(agent.loop) < 0)
        goto cleanup;
    vmh_loop_post(agent.loop, vmh_agent_start_hosts, &agent);
    vmh_loop_timer_every(agent.loop, VMH_AGENT_TRIM_MS, vmh_agent_trim, NULL);

    while (read(agent.quit_pipe[0], &c, 1) < 0 && errno == EINTR)
        ;
    sd_notify(0, "STOPPING=1");
    /* Before the loop stops: a session may be waiting on the engine. */
    vmh_nc_server_stop(agent.netconf);
    agent.netconf = NULL;
    vmh_snmp_stop(agent.snmp);
    vmh_loop_post(agent.loop, vmh_agent_stop, &agent);
    vmh_loop_stop(agent.loop);
    log_info("agent", "stopped");
    rc = EXIT_SUCCESS;

cleanup:
    vmh_nc_server_stop(agent.netconf);
    vmh_virt_free(agent.virt);
    vmh_loop_free(agent.loop);
    vmh_snmp_free(agent.snmp);
    vmh_engine_free(agent.engine);
    vmh_config_free(cfg);
    lyd_free_siblings(agent.running);
    vmh_ds_free(agent.ds);
    vmh_txn_free(agent.txn);
    ly_ctx_destroy(agent.ctx);
    free(agent.state_dir);
    free(err);
    if (agent.sigfd >= 0)
        close(agent.sigfd);
    for (int i = 0; i < 2; i++)
        if (agent.quit_pipe[i] >= 0)
            close(agent.quit_pipe[i]);
    return rc;
}
