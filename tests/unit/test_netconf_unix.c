/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The NETCONF server over its UNIX socket, with libnetconf2's own C client
 * against the real vmhealthd (started from the build tree on a private
 * socket, stopped after each group): the peer's uid mapped to a user, an
 * unconfigured local user refused, get/edit-config, locks between two
 * sessions, kill-session, get-schema, a notification after report-fault, a
 * message without any element, sessions that end at once and XPath
 * filters without select, twin elements in no namespace (each once a
 * crash), messages that are not well-formed XML, over a raw socket. */
#include "config/config.h"

#include <errno.h>
#include <glib.h>
#include <fcntl.h>
#include <libgen.h>
#include <libnetconf2/log.h>
#include <libnetconf2/messages_client.h>
#include <libnetconf2/session_client.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

struct fixture {
    char dir[64];
    char sock[128];
    pid_t pid;
    struct ly_ctx *ctx;
};

static struct fixture fx;

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static bool
accepting(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    bool ok;

    if (strlen(path) >= sizeof sa.sun_path)
        return false;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

static int
setup(void **state)
{
    char exe[PATH_MAX], cfg[256], log[256], text[2048];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);

    assert_true(n > 0);
    exe[n] = '\0';
    snprintf(fx.dir, sizeof fx.dir, "/tmp/vmh-nc-unix-XXXXXX");
    assert_non_null(mkdtemp(fx.dir));
    chmod(fx.dir, 0755);
    snprintf(fx.sock, sizeof fx.sock, "%s/nc.sock", fx.dir);
    snprintf(cfg, sizeof cfg, "%s/vmhealthd.xml", fx.dir);
    snprintf(log, sizeof log, "%s/vmhealthd.log", fx.dir);
    /* mode 0666: let a local user that is not configured reach the server */
    snprintf(text, sizeof text,
             "<vm-health xmlns=\"urn:vmhealth:nfv-vm-health\"><host><name>a</name>"
             "<uri>test:///default</uri></host></vm-health>"
             "<agent xmlns=\"urn:vmhealth:vmhealth-agent\"><state-dir>%s/state</state-dir>"
             "<netconf><unix-endpoint><name>local</name><path>%s</path><mode>0666</mode>"
             "</unix-endpoint><user><name>root</name><role>admin</role></user></netconf>"
             "</agent>",
             fx.dir, fx.sock);
    write_file(cfg, text);
    fx.pid = fork();
    assert_true(fx.pid >= 0);
    if (!fx.pid) {
        char bin[PATH_MAX + 16];
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        dup2(fd, 1);
        dup2(fd, 2);
        snprintf(bin, sizeof bin, "%s/vmhealthd", dirname(exe));
        execl(bin, "vmhealthd", "-c", cfg, "-f", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1000 && !accepting(fx.sock); i++)
        usleep(10000);
    assert_true(accepting(fx.sock));
    nc_client_init();
    assert_int_equal(vmh_yang_ctx_new(VMH_TEST_YANG_PATH, &fx.ctx), 0);
    (void)state;
    return 0;
}

static int
teardown(void **state)
{
    int status;
    char cmd[128];

    kill(fx.pid, SIGTERM);
    waitpid(fx.pid, &status, 0);
    nc_client_destroy();
    ly_ctx_destroy(fx.ctx);
    snprintf(cmd, sizeof cmd, "rm -rf %s", fx.dir);
    if (getenv("VMHTEST_KEEP"))
        fprintf(stderr, "kept %s\n", fx.dir);
    else if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", fx.dir);
    (void)state;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Sends rpc and returns the whole reply printed as XML (caller frees). */
static char *
call(struct nc_session *s, struct nc_rpc *rpc)
{
    struct lyd_node *envp = NULL, *op = NULL;
    uint64_t id;
    char *a = NULL, *b = NULL, *out;
    NC_MSG_TYPE r;

    assert_int_equal(nc_send_rpc(s, rpc, 2000, &id), NC_MSG_RPC);
    do {
        r = nc_recv_reply(s, rpc, id, 5000, &envp, &op);
    } while (r == NC_MSG_NOTIF);
    assert_int_equal(r, NC_MSG_REPLY);
    if (envp)
        lyd_print_mem(&a, envp, LYD_XML, LYD_PRINT_WITHSIBLINGS | LYD_PRINT_SHRINK);
    if (op)
        lyd_print_mem(&b, op, LYD_XML, LYD_PRINT_WITHSIBLINGS | LYD_PRINT_SHRINK);
    out = malloc(strlen(a ? a : "") + strlen(b ? b : "") + 1);
    sprintf(out, "%s%s", a ? a : "", b ? b : "");
    free(a);
    free(b);
    lyd_free_all(envp);
    lyd_free_all(op);
    nc_rpc_free(rpc);
    return out;
}

static void
expect(char *reply, const char *needle)
{
    if (!strstr(reply, needle))
        fail_msg("'%s' not in reply: %s", needle, reply);
    free(reply);
}

static struct nc_session *
open_session(void)
{
    struct nc_session *s = nc_connect_unix(fx.sock, fx.ctx);

    assert_non_null(s);
    return s;
}

static void
test_peer_uid_is_the_user_name(void **state)
{
    struct nc_session *s = open_session();
    char sid[64];

    snprintf(sid, sizeof sid, "<session-id>%u</session-id><transport", nc_session_get_id(s));
    expect(call(s, nc_rpc_get("/ietf-netconf-monitoring:netconf-state/sessions", NC_WD_UNKNOWN,
                              NC_PARAMTYPE_CONST)),
           sid);
    expect(call(s, nc_rpc_get("/ietf-netconf-monitoring:netconf-state/sessions", NC_WD_UNKNOWN,
                              NC_PARAMTYPE_CONST)),
           "<username>root</username>");
    nc_session_free(s, NULL);
    (void)state;
}

static void
test_unconfigured_local_user_is_refused(void **state)
{
    pid_t pid = fork();
    int status;

    assert_true(pid >= 0);
    if (!pid) {
        struct nc_session *s;

        if (setgid(65534) < 0 || setuid(65534) < 0)
            _exit(2);
        nc_verbosity(NC_VERB_ERROR);
        s = nc_connect_unix(fx.sock, fx.ctx);
        _exit(s ? 1 : 0);
    }
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    (void)state;
}

static void
test_edit_then_get_config(void **state)
{
    struct nc_session *s = open_session();

    expect(call(s, nc_rpc_edit(NC_DATASTORE_RUNNING, NC_RPC_EDIT_DFLTOP_MERGE,
                               NC_RPC_EDIT_TESTOPT_TESTSET, NC_RPC_EDIT_ERROPT_ROLLBACK,
                               "<vm-health xmlns=\"urn:vmhealth:nfv-vm-health\"><settings>"
                               "<poll-interval>1750</poll-interval></settings></vm-health>",
                               NC_PARAMTYPE_CONST)),
           "<ok");
    expect(call(s, nc_rpc_getconfig(NC_DATASTORE_RUNNING, "/nfv-vm-health:vm-health/settings",
                                    NC_WD_UNKNOWN, NC_PARAMTYPE_CONST)),
           "<poll-interval>1750</poll-interval>");
    expect(call(s, nc_rpc_edit(NC_DATASTORE_RUNNING, NC_RPC_EDIT_DFLTOP_MERGE,
                               NC_RPC_EDIT_TESTOPT_TESTSET, NC_RPC_EDIT_ERROPT_ROLLBACK,
                               "<vm-health xmlns=\"urn:vmhealth:nfv-vm-health\"><settings>"
                               "<poll-interval>x</poll-interval></settings></vm-health>",
                               NC_PARAMTYPE_CONST)),
           "<error-tag>invalid-value</error-tag>");
    nc_session_free(s, NULL);
    (void)state;
}

/* A merge changes the value of a leaf of any type; for a leafref and an
 * enumeration it once added a second instance ("Duplicate instance"). */
static void
test_merge_changes_a_leafref_and_an_enumeration(void **state)
{
    struct nc_session *s = open_session();

#define EDIT(xml)                                                                                  \
    nc_rpc_edit(NC_DATASTORE_RUNNING, NC_RPC_EDIT_DFLTOP_MERGE, NC_RPC_EDIT_TESTOPT_TESTSET,       \
                NC_RPC_EDIT_ERROPT_ROLLBACK, xml, NC_PARAMTYPE_CONST)
    expect(call(s, EDIT("<vm-health xmlns=\"urn:vmhealth:nfv-vm-health\">"
                        "<vnf-manager><name>m1</name></vnf-manager>"
                        "<vnf-manager><name>m2</name></vnf-manager><vm-assignment>"
                        "<uuid>f0000000-0000-4000-8000-000000000001</uuid>"
                        "<vnf-manager>m1</vnf-manager></vm-assignment></vm-health>"
                        "<agent xmlns=\"urn:vmhealth:vmhealth-agent\"><netconf><user>"
                        "<name>x</name><role>admin</role></user></netconf></agent>")),
           "<ok");
    expect(call(s, EDIT("<vm-health xmlns=\"urn:vmhealth:nfv-vm-health\"><vm-assignment>"
                        "<uuid>f0000000-0000-4000-8000-000000000001</uuid>"
                        "<vnf-manager>m2</vnf-manager></vm-assignment></vm-health>"
                        "<agent xmlns=\"urn:vmhealth:vmhealth-agent\"><netconf><user>"
                        "<name>x</name><role>vnf-manager</role></user></netconf></agent>")),
           "<ok");
#undef EDIT
    expect(call(s, nc_rpc_getconfig(NC_DATASTORE_RUNNING, "/nfv-vm-health:vm-health/vm-assignment",
                                    NC_WD_UNKNOWN, NC_PARAMTYPE_CONST)),
           "<vnf-manager>m2</vnf-manager>");
    expect(call(s, nc_rpc_getconfig(NC_DATASTORE_RUNNING,
                                    "/vmhealth-agent:agent/netconf/user[name='x']", NC_WD_UNKNOWN,
                                    NC_PARAMTYPE_CONST)),
           "<role>vnf-manager</role>");
    nc_session_free(s, NULL);
    (void)state;
}

static void
test_lock_denied_names_the_holder_and_kill_frees_it(void **state)
{
    struct nc_session *a = open_session(), *b = open_session();
    char holder[64];

    expect(call(a, nc_rpc_lock(NC_DATASTORE_RUNNING)), "<ok");
    snprintf(holder, sizeof holder, "<session-id>%u</session-id>", nc_session_get_id(a));
    {
        char *r = call(b, nc_rpc_lock(NC_DATASTORE_RUNNING));

        assert_non_null(strstr(r, "<error-tag>lock-denied</error-tag>"));
        expect(r, holder);
    }
    expect(call(b, nc_rpc_kill(nc_session_get_id(a))), "<ok");
    expect(call(b, nc_rpc_lock(NC_DATASTORE_RUNNING)), "<ok");
    expect(call(b, nc_rpc_unlock(NC_DATASTORE_RUNNING)), "<ok");
    nc_session_free(a, NULL);
    nc_session_free(b, NULL);
    (void)state;
}

static void
test_get_schema_returns_the_module(void **state)
{
    struct nc_session *s = open_session();

    expect(call(s, nc_rpc_getschema("nfv-vm-health", NULL, "yang", NC_PARAMTYPE_CONST)),
           "module nfv-vm-health");
    nc_session_free(s, NULL);
    (void)state;
}

static void
test_notification_after_report_fault(void **state)
{
    struct nc_session *s = open_session();
    struct lyd_node *envp = NULL, *op = NULL;
    char *xml = NULL;
    NC_MSG_TYPE r;

    expect(call(s, nc_rpc_subscribe(NULL, NULL, NULL, NULL, NC_PARAMTYPE_CONST)), "<ok");
    expect(call(s, nc_rpc_act_generic_xml("<report-fault xmlns=\"urn:vmhealth:nfv-vm-health\">"
                                          "<host>a</host><description>unix</description>"
                                          "</report-fault>",
                                          NC_PARAMTYPE_CONST)),
           "fault-id");
    r = nc_recv_notif(s, 5000, &envp, &op);
    assert_int_equal(r, NC_MSG_NOTIF);
    lyd_print_mem(&xml, op, LYD_XML, 0);
    assert_non_null(strstr(xml, "<vm-abnormal"));
    assert_non_null(strstr(xml, "<host>a</host>"));
    free(xml);
    lyd_free_all(envp);
    lyd_free_all(op);
    nc_session_free(s, NULL);
    (void)state;
}

/* Reads from fd until end appears in buf (5 s at most). */
static void
read_until(int fd, const char *end, char *buf, size_t size)
{
    struct timeval tv = {.tv_sec = 5};
    size_t len = 0;

    buf[0] = '\0';
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (!strstr(buf, end)) {
        ssize_t n = read(fd, buf + len, size - 1 - len);

        assert_true(n > 0);
        len += (size_t)n;
        buf[len] = '\0';
    }
}

/* A raw NETCONF 1.1 connection: the hello is sent, not yet read. */
static int
raw_connect(void)
{
    static const char hello[] =
        "<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><capabilities><capability>"
        "urn:ietf:params:netconf:base:1.1</capability></capabilities></hello>]]>]]>";
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    memcpy(sa.sun_path, fx.sock, strlen(fx.sock) + 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(write(fd, hello, sizeof hello - 1), sizeof hello - 1);
    return fd;
}

/* Sends body as one chunked message on a raw session and reads the
 * reply into buf. */
static void
raw_call(int fd, const char *body, char *buf, size_t size)
{
    char *msg = g_strdup_printf("\n#%zu\n%s\n##\n", strlen(body), body);

    assert_int_equal(write(fd, msg, strlen(msg)), strlen(msg));
    g_free(msg);
    read_until(fd, "\n##\n", buf, size);
}

/* A raw session past the hellos; buf is scratch. */
static int
raw_session(char *buf, size_t size)
{
    int fd = raw_connect();

    read_until(fd, "]]>]]>", buf, size);
    return fd;
}

/* Sends each body in turn on a raw session; every reply must hold needle
 * (left in buf: the last reply). */
static void
raw_expect_each(int fd, const char *const *bodies, size_t n, const char *needle, char *buf,
                size_t size)
{
    for (size_t i = 0; i < n; i++) {
        raw_call(fd, bodies[i], buf, size);
        assert_non_null(strstr(buf, needle));
    }
}

static void
test_message_without_an_element_is_malformed_not_a_crash(void **state)
{
    static const char *const bodies[] = {" ", "<!-- nothing -->", "<?xml version=\"1.0\"?>"};
    static char buf[65536];
    int fd = raw_session(buf, sizeof buf);
    struct nc_session *s;

    raw_expect_each(fd, bodies, G_N_ELEMENTS(bodies), "<error-tag>malformed-message</error-tag>",
                    buf, sizeof buf);
    close(fd);
    s = open_session();
    expect(call(s, nc_rpc_get("/nfv-vm-health:vm-health/statistics", NC_WD_UNKNOWN,
                              NC_PARAMTYPE_CONST)),
           "<faults-detected>");
    nc_session_free(s, NULL);
    (void)state;
}

/* A message that is not well-formed XML is malformed: libyang's error
 * message used to quote a character XML forbids into the reply, and
 * duplicate attributes of <rpc> were copied into it, so that the reply
 * was no longer XML. */
static void
test_message_not_well_formed_is_malformed(void **state)
{
    /* deep in the RPC, where libnetconf2 answers with libyang's message */
    static const char *const bodies[] = {
        "<rpc message-id=\"1\" xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><get><filter "
        "type=\"subtree\"><vm-health xmlns=\x02\"urn:vmhealth:nfv-vm-health\"/></filter></get>"
        "</rpc>",
        "<rpc message-id=\"1\" xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><get><filter "
        "type=\"subtree\"><vm-health xmlns=\"urn:vmhealth:nfv-vm-health\"><\xff\xfe/></vm-health>"
        "</filter></get></rpc>",
        "<rpc message-id=\"1\" message-id=\"1\" xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">"
        "<get><filt/></get></rpc>"};
    static char buf[65536];
    int fd = raw_session(buf, sizeof buf);

    for (size_t i = 0; i < G_N_ELEMENTS(bodies); i++) {
        raw_expect_each(fd, &bodies[i], 1, "<error-tag>malformed-message</error-tag>", buf,
                        sizeof buf);
        assert_true(g_utf8_validate(buf, -1, NULL));
        for (const char *p = buf; *p; p++)
            assert_false((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t' && *p != '\r');
    }
    close(fd);
    (void)state;
}

/* An XPath filter without select, in get and in create-subscription: the
 * error-info names the attribute (building it with too few arguments for
 * nc_err() once crashed the server). */
static void
test_xpath_filter_without_select_is_missing_attribute(void **state)
{
    static const char *const rpcs[] = {
        "<rpc message-id=\"1\" xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><get>"
        "<filter type=\"xpath\"/></get></rpc>",
        "<rpc message-id=\"2\" xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">"
        "<create-subscription xmlns=\"urn:ietf:params:xml:ns:netconf:notification:1.0\">"
        "<filter xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\" nc:type=\"xpath\"/>"
        "</create-subscription></rpc>"};
    static char buf[65536];
    int fd = raw_session(buf, sizeof buf);

    for (size_t i = 0; i < G_N_ELEMENTS(rpcs); i++) {
        raw_expect_each(fd, &rpcs[i], 1, "<error-tag>missing-attribute</error-tag>", buf,
                        sizeof buf);
        assert_non_null(strstr(buf, "<bad-attribute>select</bad-attribute>"));
    }
    close(fd);
    (void)state;
}

/* An element in no namespace is the subtree filter's namespace wildcard
 * (RFC 6241 section 6.2.1); two such siblings of one name crashed libyang
 * 2.1.30's parser, and so the server: they are refused. */
static void
test_unqualified_filter_twins_are_refused_not_a_crash(void **state)
{
    static char buf[65536];
    int fd = raw_session(buf, sizeof buf);

    raw_call(fd,
             "<rpc message-id=\"1\" xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><get>"
             "<filter type=\"subtree\"><vm-health xmlns=\"\"><host><uri/></host></vm-health>"
             "</filter></get></rpc>",
             buf, sizeof buf);
    assert_non_null(strstr(buf, "<uri>test:///default</uri>"));
    raw_call(fd,
             "<rpc message-id=\"2\" xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><get>"
             "<filter type=\"subtree\"><vm-health xmlns=\"\"/><vm-health xmlns=\"\"/></filter>"
             "</get></rpc>",
             buf, sizeof buf);
    assert_non_null(strstr(buf, "<error-tag>malformed-message</error-tag>"));
    close(fd);
    (void)state;
}

/* A session that ends as soon as it starts (hello, close-session and the
 * end of input in one go) may be freed by its worker while the thread
 * that accepted it is still finishing: that was a use-after-free, seen
 * under AddressSanitizer. */
static void
test_sessions_that_end_at_once(void **state)
{
    static const char rpc[] =
        "<rpc message-id=\"1\" xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">"
        "<close-session/></rpc>";
    struct nc_session *s;
    char msg[256], buf[8192];
    int n = snprintf(msg, sizeof msg, "\n#%zu\n%s\n##\n", strlen(rpc), rpc);

    for (int i = 0; i < 200; i++) {
        int fd = raw_connect();

        assert_int_equal(write(fd, msg, (size_t)n), n);
        shutdown(fd, SHUT_WR);
        while (read(fd, buf, sizeof buf) > 0)
            ;
        close(fd);
    }
    s = open_session();
    expect(call(s, nc_rpc_get("/nfv-vm-health:vm-health/statistics", NC_WD_UNKNOWN,
                              NC_PARAMTYPE_CONST)),
           "<faults-detected>");
    nc_session_free(s, NULL);
    (void)state;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_uid_is_the_user_name),
        cmocka_unit_test(test_unconfigured_local_user_is_refused),
        cmocka_unit_test(test_edit_then_get_config),
        cmocka_unit_test(test_merge_changes_a_leafref_and_an_enumeration),
        cmocka_unit_test(test_lock_denied_names_the_holder_and_kill_frees_it),
        cmocka_unit_test(test_get_schema_returns_the_module),
        cmocka_unit_test(test_notification_after_report_fault),
        cmocka_unit_test(test_message_without_an_element_is_malformed_not_a_crash),
        cmocka_unit_test(test_sessions_that_end_at_once),
        cmocka_unit_test(test_xpath_filter_without_select_is_missing_attribute),
        cmocka_unit_test(test_message_not_well_formed_is_malformed),
        cmocka_unit_test(test_unqualified_filter_twins_are_refused_not_a_crash),
    };

    if (geteuid() != 0) {
        fprintf(stderr, "test_netconf_unix: needs root (the socket's peer is mapped to "
                        "the configured user root)\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, setup, teardown);
}
