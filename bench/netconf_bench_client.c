/* SPDX-License-Identifier: GPL-3.0-or-later */
/* libnetconf2's C client for bench/netconf_bench.py: ROUNDS gets over the
 * UNIX socket.  Once connected it prints "ready" and waits for a line on
 * stdin, so that the caller can count the server's CPU over the gets alone;
 * then it prints each get's latency in ms, one a line, and last "cpu MS",
 * its own CPU time (getrusage, user + system) per get in ms, before it
 * closes the session.
 *   netconf_bench_client SOCKET leaf|full ROUNDS YANG_SEARCH_PATH */
#include <libnetconf2/log.h>
#include <libnetconf2/messages_client.h>
#include <libnetconf2/session_client.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double
cpu_ms(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

int
main(int argc, char **argv)
{
    struct nc_session *s;
    int rounds = argc > 3 ? atoi(argv[3]) : 100;
    double *lat = calloc(rounds, sizeof *lat), cpu;
    char line[16];
    const char *filter =
        strcmp(argv[2], "leaf") ? NULL : "/nfv-vm-health:vm-health/statistics/faults-detected";

    nc_client_init();
    nc_verbosity(NC_VERB_ERROR);
    if (argc > 4)
        nc_client_set_schema_searchpath(argv[4]);
    s = nc_connect_unix(argv[1], NULL);
    if (!s) {
        fprintf(stderr, "cannot connect to %s\n", argv[1]);
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin))
        return 1;
    cpu = cpu_ms();
    for (int i = 0; i < rounds; i++) {
        struct nc_rpc *rpc = nc_rpc_get(filter, NC_WD_UNKNOWN, NC_PARAMTYPE_CONST);
        struct lyd_node *envp = NULL, *op = NULL;
        uint64_t id;
        double t = now_ms();

        if (nc_send_rpc(s, rpc, 5000, &id) != NC_MSG_RPC ||
            nc_recv_reply(s, rpc, id, 20000, &envp, &op) != NC_MSG_REPLY || !op) {
            fprintf(stderr, "get failed\n");
            return 1;
        }
        lat[i] = now_ms() - t;
        lyd_free_all(envp);
        lyd_free_all(op);
        nc_rpc_free(rpc);
    }
    cpu = (cpu_ms() - cpu) / rounds;
    for (int i = 0; i < rounds; i++)
        printf("%.3f\n", lat[i]);
    printf("cpu %.3f\n", cpu);
    fflush(stdout);
    nc_session_free(s, NULL);
    nc_client_destroy();
    free(lat);
    return 0;
}
