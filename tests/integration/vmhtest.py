# SPDX-License-Identifier: GPL-3.0-or-later
"""Test harness for vmhealth integration tests.

Run the tests with Debian's interpreter, which has python3-libvirt and
ncclient:  /usr/bin/python3 tests/integration/test_<subsystem>.py

Every test file is a plain unittest module next to this one:

    import vmhtest
    class T(unittest.TestCase): ...
    if __name__ == "__main__":
        vmhtest.main()

What is here:

  free_port(kind)            a free TCP/UDP port on 127.0.0.1, chosen now
  wait_for(pred, ...)        poll until pred() is truthy or raise
  event_loop()               libvirt's default event loop in a thread (once)
  CloseWatch(conn)           libvirt close callback -> threading.Event
  libvirt_connection_error(e)  a libvirtError of the connection, not an answer
  Libvirtd                   a private libvirtd serving the test driver
  agent_config(state_dir)    <agent><state-dir>..</state-dir></agent>
  Vmhealthd                  the daemon under test
  main(), run_checks()       unittest entry points

Everything a test starts is torn down by the context managers, and again at
interpreter exit (atexit) for whatever a failing test left behind.  Child
processes are started through `setpriv --pdeathsig SIGKILL`, so they die with
the test process even when it is SIGKILLed (only its temp dirs remain then);
libvirtd also exits after `idle_timeout` s without clients (--timeout).
Set VMHTEST_KEEP=1 to keep the temp dirs (logs) for a post-mortem.

How the private libvirtd runs (measured on Debian 12, libvirt 9.0.0, root):

    setpriv --pdeathsig SIGKILL --reuid=nobody --regid=65534 --clear-groups \
      /usr/sbin/libvirtd --config DIR/libvirtd.conf --pid-file DIR/libvirtd.pid \
                         --timeout 120
    env: PATH, HOME=DIR/home, XDG_RUNTIME_DIR=DIR/run, XDG_CONFIG_HOME,
         XDG_CACHE_HOME, XDG_DATA_HOME under DIR, LIBVIRT_DRIVER_DIR=DIR/drivers
         (empty), DIR owned by nobody
    conf: listen_tcp/listen_tls 0, unix_sock_dir DIR, auth_unix_rw/ro "none",
          log_outputs "3:file:DIR/libvirtd.log"
    client: test+unix:///default?socket=DIR/libvirt-sock  (virsh -c, python,
            the C agent; root clients may use the nobody-owned socket)

  * start to accepting socket ~16-25 ms, SIGTERM to exit ~3 ms, the client's
    close callback (reason EOF) fires ~3 ms after the SIGTERM; keepalive
    (1 s, 1) reports a SIGSTOPped daemon after ~2 s (reason KEEPALIVE).
  * A root libvirtd always creates /run/libvirt/common/system.token, whatever
    its config says: hence the unprivileged session daemon (or root inside
    `unshare -m` with a tmpfs on /run, which works but needs CAP_SYS_ADMIN).
  * Without LIBVIRT_DRIVER_DIR pointing at an empty dir the daemon loads the
    qemu, network, storage, nodedev, secret... drivers (in session mode they
    stay inside XDG dirs, as root they would populate /var/lib/libvirt and
    /run/libvirt).  The test driver is built into libvirt.so and needs no
    module, nor virtlogd/virtlockd.
  * The session daemon logs two harmless errors (no D-Bus session/system bus).
  * test:///default lives as long as one client is connected; a restart of
    the daemon is a reboot of that host (back to its single domain "test").
  * test:///PATH.xml served by a daemon: every connection gets a private copy
    (nothing shared), and PATH must be readable by nobody (not in a 0700
    mkdtemp dir).  Share state through test:///default instead.
  * After SIGKILL the socket and pid files stay; a new libvirtd replaces them.
  * Close callbacks and events need virEventRegisterDefaultImpl() before the
    connection is opened and a thread in virEventRunDefaultImpl().
"""

import atexit
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import xml.etree.ElementTree as ET

try:
    import libvirt
except ImportError:  # pragma: no cover - wrong interpreter
    libvirt = None

if libvirt is not None and not os.environ.get("VMHTEST_LIBVIRT_ERRORS"):
    # python-libvirt prints every error to stderr besides raising it (and
    # prints "An error occurred, but the cause is unknown" for calls that
    # merely return 0, e.g. getFreeMemory() on a node XML without cells).
    libvirt.registerErrorHandler(lambda ctx, err: None, None)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(REPO, "tests", "fixtures")
LIBVIRT_FIXTURES = os.path.join(FIXTURES, "libvirt")
DEMO = os.path.join(REPO, "examples", "demo")

VMH_NS = "urn:vmhealth:nfv-vm-health"
VHA_NS = "urn:vmhealth:vmhealth-agent"
TEST_DRIVER_NS = "http://libvirt.org/schemas/domain/test/1.0"

LIBVIRTD = os.environ.get("VMHTEST_LIBVIRTD", "/usr/sbin/libvirtd")
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"


def vmhealthd_binary():
    """Path of the daemon under test: $VMHEALTHD or <repo>/build/bin/vmhealthd."""
    return os.environ.get("VMHEALTHD") or os.path.join(REPO, "build", "bin", "vmhealthd")


# ---------------------------------------------------------------------------
# small helpers

def free_port(kind="tcp"):
    """A port on 127.0.0.1 that is free right now.

    kind: "tcp", "udp" or "both" (free for TCP and UDP, e.g. for SNMP over
    either).  The port is released before returning: bind it soon.
    """
    for _ in range(100):
        s = socket.socket(socket.AF_INET,
                          socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if kind != "both":
            return port
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
    raise RuntimeError("no free %s port on 127.0.0.1" % kind)


def wait_for(pred, timeout=10.0, interval=0.02, what=None):
    """Call pred() until it returns a truthy value, which is returned.
    Raises AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s"
                                 % (timeout, what or getattr(pred, "__name__", "condition")))
        time.sleep(interval)


def tail(text, lines=40):
    return "\n".join(text.splitlines()[-lines:])


def _pdeathsig_prefix():
    """setpriv --pdeathsig: the child is SIGKILLed when the thread that
    started it dies (start daemons from the main thread or a thread that
    outlives them).  Done by setpriv rather than a preexec_fn, which is not
    safe once libvirt's event-loop thread runs."""
    return [SETPRIV, "--pdeathsig", "SIGKILL"]


def _wait_pid(proc, timeout):
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


# Everything still running at interpreter exit gets killed.
_LIVE = set()
_LIVE_LOCK = threading.Lock()


def _register(obj):
    with _LIVE_LOCK:
        _LIVE.add(obj)


def _unregister(obj):
    with _LIVE_LOCK:
        _LIVE.discard(obj)


@atexit.register
def _cleanup_all():
    with _LIVE_LOCK:
        objs = list(_LIVE)
    for o in objs:
        try:
            o.close()
        except Exception:
            pass


# ---------------------------------------------------------------------------
# libvirt client side

_loop_lock = threading.Lock()
_loop_thread = None


def event_loop():
    """Register libvirt's default event implementation and run it in a daemon
    thread (idempotent).  Must happen BEFORE a connection is opened, or that
    connection never delivers events or its close callback.  Libvirtd.conn()
    calls it for you."""
    global _loop_thread
    with _loop_lock:
        if _loop_thread is not None:
            return
        libvirt.virEventRegisterDefaultImpl()

        def run():
            while True:
                libvirt.virEventRunDefaultImpl()

        _loop_thread = threading.Thread(target=run, name="libvirt-event-loop", daemon=True)
        _loop_thread.start()


class CloseWatch:
    """Watches one libvirt connection's close callback.

        w = CloseWatch(conn)
        ... daemon stops ...
        reason = w.wait(5)   # libvirt.VIR_CONNECT_CLOSE_REASON_*, raises on timeout
    """

    REASONS = {0: "error", 1: "eof", 2: "keepalive", 3: "client"}

    def __init__(self, conn):
        self.conn = conn
        self.event = threading.Event()
        self.reasons = []
        conn.registerCloseCallback(self._cb, None)

    def _cb(self, conn, reason, opaque):
        self.reasons.append(reason)
        self.event.set()

    def wait(self, timeout=10):
        if not self.event.wait(timeout):
            raise AssertionError("libvirt close callback did not fire within %ss" % timeout)
        return self.reasons[0]

    @property
    def fired(self):
        return self.event.is_set()


def node_domains(node_xml):
    """The <domain> elements of a test-driver node XML as
    [(domain_xml_text, runstate)], runstate a libvirt.VIR_DOMAIN_* number
    (RUNNING unless <test:runstate> says otherwise), the test:runstate
    element removed."""
    ET.register_namespace("vmh", VMH_NS)
    ET.register_namespace("test", TEST_DRIVER_NS)
    root = ET.parse(node_xml).getroot()
    out = []
    for dom in root.findall("domain"):
        state = 1
        for rs in dom.findall("{%s}runstate" % TEST_DRIVER_NS):
            state = int(rs.text.strip())
            dom.remove(rs)
        out.append((ET.tostring(dom, encoding="unicode"), state))
    return out


def libvirt_connection_error(e):
    """True for a libvirtError of the connection itself (EOF, a reset, no
    connection, an RPC failure) rather than an answer of the daemon."""
    return (e.get_error_domain() in (libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE)
            or e.get_error_code() in (libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_NO_CONNECT,
                                      libvirt.VIR_ERR_RPC, libvirt.VIR_ERR_INVALID_CONN))


# ---------------------------------------------------------------------------
# a private libvirtd

class LibvirtdError(RuntimeError):
    pass


class Libvirtd:
    """A private libvirtd serving libvirt's test driver on a UNIX socket in
    its own temp dir.  Nothing under /etc/libvirt, /run/libvirt,
    /var/lib/libvirt or ~/.config is written (checked by
    test_libvirtd_harness.py).

        with Libvirtd("host-a") as lv:
            c = lv.conn()                      # python-libvirt connection
            subprocess.run(["virsh", "-c", lv.uri, "list"])

    How it runs (details and measurements in the module docstring):
      * as root, the daemon is started as `nobody` through setpriv (a session
        daemon): a root libvirtd always writes /run/libvirt/common/system.token;
        root clients may connect to the nobody-owned socket;
      * LIBVIRT_DRIVER_DIR points at an empty dir: no qemu/network/storage
        driver is loaded; the test driver is built into libvirt.so;
      * HOME and XDG_* point into the temp dir;
      * --timeout idle_timeout, setpriv --pdeathsig: no leaks.

    State: test:///default lives while at least one client is connected; the
    harness keeps one connection open (`keeper`) from start() to stop(), so
    domains defined by a test survive between connections.  A stop()/start()
    or kill()/start() is a host reboot: test:///default comes back with only
    its built-in domain "test" (or with the domains of `node_xml`, reloaded on
    every start).  test:///default is a 16-CPU, 3 GiB host with 2 NUMA cells.

    `node_xml`: a test-driver node XML whose <domain>s are loaded into
    test:///default at every start (defined, and started unless
    <test:runstate>5</test:runstate>); the built-in domain "test" is removed.
    The node's <cpu>/<memory> are NOT applied (test:///default keeps its own).
    A URI to the file itself (uri_for(path)) works too, but then every
    connection gets its own private copy: nothing is shared.
    """

    def __init__(self, name="host", node_xml=None, user=None, idle_timeout=120,
                 keep_default=True, log_level=3, extra_conf="", start_timeout=10):
        if libvirt is None:
            raise LibvirtdError("python3-libvirt not importable: run with /usr/bin/python3")
        self.name = name
        self.node_xml = os.path.abspath(node_xml) if node_xml else None
        self.idle_timeout = idle_timeout
        self.keep_default = keep_default
        self.log_level = log_level
        self.extra_conf = extra_conf
        self.start_timeout = start_timeout
        if user is None and os.geteuid() == 0:
            user = "nobody"
        self.user = user or None
        self.proc = None
        self.keeper = None
        self._conns = []
        self._closed = False
        self.dir = tempfile.mkdtemp(prefix="vmh-lv-%s-" % name)
        # AF_UNIX paths are limited to 107 bytes
        if len(self.dir) > 80:
            raise LibvirtdError("temp dir path too long for a UNIX socket: " + self.dir)
        self.sock = os.path.join(self.dir, "libvirt-sock")
        self.conf_path = os.path.join(self.dir, "libvirtd.conf")
        self.pid_path = os.path.join(self.dir, "libvirtd.pid")
        self.log_path = os.path.join(self.dir, "libvirtd.log")
        self.out_path = os.path.join(self.dir, "libvirtd.out")
        for sub in ("drivers", "home", "run", "config", "cache", "data"):
            os.mkdir(os.path.join(self.dir, sub), 0o700)
        self._write_conf()
        if self.user:
            pw = pwd.getpwnam(self.user)
            for root, dirs, files in os.walk(self.dir):
                for p in [root] + [os.path.join(root, f) for f in files]:
                    os.chown(p, pw.pw_uid, pw.pw_gid)
            os.chmod(self.dir, 0o755)
        _register(self)

    # -- URIs
    @property
    def uri(self):
        """Client URI of the shared test:///default hypervisor."""
        return "test+unix:///default?socket=%s" % self.sock

    def uri_for(self, node_xml):
        """Client URI of a node XML file served by this daemon (the file must
        be readable by the daemon's user).  Private copy per connection."""
        return "test+unix://%s?socket=%s" % (os.path.abspath(node_xml), self.sock)

    # -- lifecycle
    def _write_conf(self):
        d = self.dir
        conf = """\
# written by vmhtest.Libvirtd
listen_tls = 0
listen_tcp = 0
unix_sock_dir = "{d}"
unix_sock_rw_perms = "0770"
unix_sock_ro_perms = "0770"
unix_sock_admin_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_level = {lvl}
log_outputs = "{lvl}:file:{d}/libvirtd.log"
log_filters = "3:object 3:event 3:rpc 3:util"
keepalive_interval = 5
keepalive_count = 5
{extra}
""".format(d=d, lvl=self.log_level, extra=self.extra_conf)
        with open(self.conf_path, "w") as f:
            f.write(conf)

    def _env(self):
        d = self.dir
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": os.path.join(d, "home"),
            "XDG_RUNTIME_DIR": os.path.join(d, "run"),
            "XDG_CONFIG_HOME": os.path.join(d, "config"),
            "XDG_CACHE_HOME": os.path.join(d, "cache"),
            "XDG_DATA_HOME": os.path.join(d, "data"),
            "LIBVIRT_DRIVER_DIR": os.path.join(d, "drivers"),
            "LC_ALL": "C",
        }

    def _argv(self):
        argv = [LIBVIRTD, "--config", self.conf_path, "--pid-file", self.pid_path]
        if self.idle_timeout:
            argv += ["--timeout", str(int(self.idle_timeout))]
        if self.user:
            return _pdeathsig_prefix() + [
                "--reuid=" + self.user, "--regid=" + str(pwd.getpwnam(self.user).pw_gid),
                "--clear-groups"] + argv
        return _pdeathsig_prefix() + argv

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def log_text(self):
        out = []
        for p in (self.out_path, self.log_path):
            try:
                with open(p, errors="replace") as f:
                    out.append(f.read())
            except OSError:
                pass
        return "\n".join(out)

    def _accepting(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.sock)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def start(self):
        """Start the daemon and return once the socket accepts and (with
        keep_default) the keeper connection is open and node_xml loaded."""
        if self.running:
            raise LibvirtdError("%s: already running" % self.name)
        if self._closed:
            raise LibvirtdError("%s: closed" % self.name)
        t0 = time.monotonic()
        out = open(self.out_path, "ab")
        try:
            self.proc = subprocess.Popen(
                self._argv(), env=self._env(), cwd=self.dir, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            out.close()
        deadline = t0 + self.start_timeout
        while not self._accepting():
            if self.proc.poll() is not None:
                raise LibvirtdError("%s: libvirtd exited with %s during start\n%s"
                                    % (self.name, self.proc.returncode, tail(self.log_text())))
            if time.monotonic() > deadline:
                self.kill()
                raise LibvirtdError("%s: socket %s not accepting after %ss\n%s"
                                    % (self.name, self.sock, self.start_timeout,
                                       tail(self.log_text())))
            time.sleep(0.005)
        try:
            if self.keep_default:
                self.keeper = libvirt.open(self.uri)
            if self.node_xml:
                self.load_node_xml(self.node_xml)
        except libvirt.libvirtError as e:
            self.kill()
            raise LibvirtdError("%s: %s\n%s" % (self.name, e, tail(self.log_text())))
        self.start_seconds = time.monotonic() - t0
        return self

    def wait_answering(self, timeout=10):
        """Wait until the daemon answers a call on a new connection (after a
        start, or a SIGCONT that thawed it: its first answers may still be
        an "End of file" while it catches up).  Raises on timeout."""
        last = []

        def answers():
            try:
                c = libvirt.open(self.uri)
            except libvirt.libvirtError as e:
                last[:] = [e]
                return False
            try:
                c.getLibVersion()
                return True
            except libvirt.libvirtError as e:
                last[:] = [e]
                return False
            finally:
                try:
                    c.close()
                except libvirt.libvirtError:
                    pass
        try:
            wait_for(answers, timeout=timeout, interval=0.05, what="%s answering" % self.name)
        except AssertionError as e:
            raise AssertionError("%s (last error: %s)" % (e, last[0] if last else None))

    def domain_state(self, uuid, timeout=10):
        """None when no domain has that UUID on this host, else whether it is
        active; asked on a connection opened for the question.  Errors of
        the connection itself (a daemon just thawed or restarted answering
        "End of file") are retried until `timeout`; any other error raises."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                c = libvirt.open(self.uri)
                try:
                    return bool(c.lookupByUUIDString(uuid).isActive())
                finally:
                    try:
                        c.close()
                    except libvirt.libvirtError:
                        pass
            except libvirt.libvirtError as e:
                if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    return None
                if not libvirt_connection_error(e) or time.monotonic() >= deadline:
                    raise
            time.sleep(0.05)

    def load_node_xml(self, node_xml, remove_builtin=True):
        """Define the <domain>s of a test-driver node XML on test:///default
        and start those whose runstate is not shut off (5)."""
        c = self.keeper or self.conn()
        if remove_builtin:
            try:
                d = c.lookupByName("test")
                if d.isActive():
                    d.destroy()
                d.undefine()
            except libvirt.libvirtError:
                pass
        for xml, state in node_domains(node_xml):
            d = c.defineXML(xml)
            if state != libvirt.VIR_DOMAIN_SHUTOFF:
                d.create()
                if state == libvirt.VIR_DOMAIN_PAUSED:
                    d.suspend()

    def conn(self, keepalive=None, uri=None):
        """A new python-libvirt connection to test:///default on this daemon
        (or `uri`).  The event loop is started first, so close callbacks and
        domain events work.  keepalive=(interval_s, count) enables keepalive.
        Closed by close() unless the test closes it first."""
        event_loop()
        c = libvirt.open(uri or self.uri)
        if keepalive:
            c.setKeepAlive(*keepalive)
        self._conns.append(c)
        return c

    def _close_keeper(self):
        if self.keeper is not None:
            try:
                self.keeper.close()
            except libvirt.libvirtError:
                pass
            self.keeper = None

    def stop(self, timeout=10):
        """SIGTERM, wait (SIGKILL after `timeout`); returns the exit code.
        Clients see EOF on their connections (close callback reason 1)."""
        if self.proc is None:
            return None
        self._close_keeper()
        if self.proc.poll() is None:
            t0 = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)
            if _wait_pid(self.proc, timeout) is None:
                self.proc.kill()
                self.proc.wait()
            self.stop_seconds = time.monotonic() - t0
        return self.proc.returncode

    def kill(self):
        """SIGKILL (a host crash).  The socket file stays behind; start()
        works anyway (libvirtd replaces it)."""
        if self.proc is None:
            return None
        self._close_keeper()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode

    def restart(self):
        self.stop()
        return self.start()

    def close(self):
        """Kill the daemon, close every connection, remove the temp dir."""
        if self._closed:
            return
        try:
            self.kill()
        finally:
            for c in self._conns:
                try:
                    c.close()
                except Exception:
                    pass
            self._conns = []
            if os.environ.get("VMHTEST_KEEP"):
                sys.stderr.write("vmhtest: kept %s\n" % self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
            self._closed = True
            _unregister(self)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()
        return False


# ---------------------------------------------------------------------------
# the daemon under test

def agent_config(state_dir, extra=""):
    """The vmhealth-agent container with a state dir (and `extra` XML
    children, e.g. a <netconf> block)."""
    return ('<agent xmlns="%s"><state-dir>%s</state-dir>%s</agent>'
            % (VHA_NS, _xml_escape(state_dir), extra))


def _xml_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_STATE_DIR_RE = re.compile(r"<(?:[\w.-]+:)?state-dir\s*>\s*([^<]*?)\s*</", re.S)
_AGENT_OPEN_RE = re.compile(r"<([\w.-]+:)?agent\b[^>]*?(/?)>", re.S)
_WRAPPER_CLOSE_RE = re.compile(r"</(?:[\w.-]+:)?(config|data)\s*>\s*$", re.S)


def with_state_dir(config_text, state_dir):
    """Returns (config_text, state_dir): the text unchanged and its own
    state-dir when it has one, else the text with `state_dir` added (inside
    an existing <agent>, or as a new agent container)."""
    m = _STATE_DIR_RE.search(config_text)
    if m:
        return config_text, m.group(1)
    m = _AGENT_OPEN_RE.search(config_text)
    if m:
        prefix = m.group(1) or ""
        leaf = "<%sstate-dir>%s</%sstate-dir>" % (prefix, _xml_escape(state_dir), prefix)
        if m.group(2):  # <agent .../>
            tag = m.group(0)[:-2].rstrip() + ">"
            new = tag + leaf + "</%sagent>" % prefix
        else:
            new = m.group(0) + leaf
        return config_text[:m.start()] + new + config_text[m.end():], state_dir
    m = _WRAPPER_CLOSE_RE.search(config_text)
    if m:
        return (config_text[:m.start()] + agent_config(state_dir) + "\n"
                + config_text[m.start():], state_dir)
    return config_text.rstrip() + "\n" + agent_config(state_dir) + "\n", state_dir


# VMHTEST_VALGRIND=1 runs the daemon under valgrind (memcheck): every wait
# is SLOWDOWN times longer, and a daemon that stops with errors or definite
# leaks fails the test when it is closed.
VALGRIND_ERROR = 99
VALGRIND = (["valgrind", "--quiet", "--leak-check=full", "--errors-for-leak-kinds=definite",
             "--error-exitcode=%d" % VALGRIND_ERROR, "--num-callers=30",
             "--suppressions=" + os.path.join(REPO, "tests", "valgrind.supp")]
            if os.environ.get("VMHTEST_VALGRIND") else [])
SLOWDOWN = 10 if VALGRIND else 1


class VmhealthdError(AssertionError):
    pass


class Vmhealthd:
    """The daemon under test, started as `vmhealthd -c FILE -f -d`.

        with Vmhealthd(config_xml) as d:      # starts, waits for "ready"
            d.wait_log(r"vm-abnormal.*ims-cscf-1")
            state = d.dump_state()

    config: XML text (YANG instance data; several top-level elements are
    fine) or a dict (written as JSON).  Unless it has a <state-dir>, the
    harness adds <agent><state-dir>DIR/state</state-dir></agent> (see
    agent_config()).  The file is DIR/vmhealthd.xml (or .json); stdout and
    stderr go to DIR/vmhealthd.log, appended across restarts.
    wait_log() searches the output of the current run only, unless given
    `start` (an offset from mark()).
    """

    def __init__(self, config, name="vmhealthd", binary=None, args=(), env=None,
                 wait_ready=True, ready_timeout=15, debug=True):
        self.binary = binary or vmhealthd_binary()
        self.name = name
        self.args = list(args)
        self.env = dict(os.environ)
        if env:
            self.env.update(env)
        self.wait_ready_default = wait_ready
        self.ready_timeout = ready_timeout * SLOWDOWN
        self.debug = debug
        self.proc = None
        self._closed = False
        self._run_start = 0
        self.dir = tempfile.mkdtemp(prefix="vmh-d-%s-" % name)
        self.log_path = os.path.join(self.dir, "vmhealthd.log")
        default_state = os.path.join(self.dir, "state")
        if isinstance(config, dict):
            cfg = dict(config)
            agent = dict(cfg.get("vmhealth-agent:agent", {}))
            agent.setdefault("state-dir", default_state)
            cfg["vmhealth-agent:agent"] = agent
            self.state_dir = agent["state-dir"]
            self.config_path = os.path.join(self.dir, "vmhealthd.json")
            text = json.dumps(cfg, indent=2)
        else:
            text, self.state_dir = with_state_dir(config, default_state)
            self.config_path = os.path.join(self.dir, "vmhealthd.xml")
        if self.state_dir == default_state:
            os.makedirs(default_state, exist_ok=True)
        with open(self.config_path, "w") as f:
            f.write(text)
        _register(self)

    @property
    def operational_path(self):
        return os.path.join(self.state_dir, "operational.json")

    def argv(self):
        a = VALGRIND + [self.binary, "-c", self.config_path, "-f"]
        if self.debug:
            a.append("-d")
        return a + self.args

    def check_config(self, timeout=20):
        """Runs `vmhealthd -c FILE --check-config`; CompletedProcess (text)."""
        return subprocess.run([self.binary, "-c", self.config_path, "--check-config"],
                              env=self.env, cwd=self.dir, capture_output=True, text=True,
                              timeout=timeout)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def returncode(self):
        return self.proc.returncode if self.proc else None

    def start(self, wait_ready=None):
        if self.running:
            raise VmhealthdError("%s: already running" % self.name)
        if not os.access(self.binary, os.X_OK):
            raise VmhealthdError("vmhealthd binary not found at %s (build it, or set VMHEALTHD)"
                                 % self.binary)
        with open(self.log_path, "ab") as log:
            if log.tell():
                log.write(b"=== vmhtest: restart ===\n")
                log.flush()
            self._run_start = log.tell()
            self.proc = subprocess.Popen(_pdeathsig_prefix() + self.argv(), env=self.env,
                                         cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        if wait_ready if wait_ready is not None else self.wait_ready_default:
            self.wait_ready()
        return self

    # -- log
    def log_text(self, start=None):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._run_start if start is None else start)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def mark(self):
        """Current end of the log: pass as wait_log(..., start=mark) to see
        only lines logged after this point."""
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def wait_log(self, regex, timeout=10, start=None):
        """The first (complete) log line of this run matching regex (re.search),
        after `start` when given.  Raises with the log tail on timeout or when
        the daemon exits first."""
        rx = re.compile(regex)
        deadline = time.monotonic() + timeout * SLOWDOWN
        while True:
            exited = self.proc is not None and self.proc.poll() is not None
            text = self.log_text(start)
            lines = text.split("\n")
            if not exited:
                lines = lines[:-1]  # the last one may be incomplete
            for line in lines:
                if rx.search(line):
                    return line
            if exited:
                raise VmhealthdError("%s exited (%s) before logging /%s/; log tail:\n%s"
                                     % (self.name, self.proc.returncode, regex,
                                        tail(self.log_text(0))))
            if time.monotonic() >= deadline:
                raise VmhealthdError("%s: no log line /%s/ within %ss; log tail:\n%s"
                                     % (self.name, regex, timeout, tail(self.log_text(0))))
            time.sleep(0.02)

    READY_RE = r"(?<![\w-])ready\b"

    def wait_ready(self, timeout=None):
        """Wait for the readiness line: the word `ready` (not part of
        "migration-ready" or "already", which debug lines may contain)."""
        return self.wait_log(self.READY_RE, timeout or self.ready_timeout)

    def wait_exit(self, timeout=10):
        """Wait for the daemon to exit on its own (e.g. a bad configuration);
        returns the exit code, raises with the log tail on timeout."""
        if _wait_pid(self.proc, timeout) is None:
            raise VmhealthdError("%s still running after %ss; log tail:\n%s"
                                 % (self.name, timeout, tail(self.log_text(0))))
        return self.proc.returncode

    # -- signals and lifecycle
    def signal(self, sig):
        if not self.running:
            raise VmhealthdError("%s is not running (rc %s); log tail:\n%s"
                                 % (self.name, self.returncode, tail(self.log_text(0))))
        self.proc.send_signal(sig)

    def stop(self, timeout=10):
        """SIGTERM, wait up to `timeout` s, then SIGKILL; returns the exit
        code (negative: killed by that signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if _wait_pid(self.proc, timeout) is None:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill9(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode

    def restart(self, wait_ready=None):
        """stop() (clean) then start() with the same config and state dir."""
        self.stop()
        return self.start(wait_ready)

    def _op_sig(self):
        try:
            st = os.stat(self.operational_path)
            return (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            return None

    def dump_state(self, timeout=10):
        """SIGUSR1, wait until <state-dir>/operational.json is rewritten,
        return it parsed."""
        before = self._op_sig()
        self.signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        last_err = None
        while True:
            now = self._op_sig()
            if now is not None and now != before:
                try:
                    with open(self.operational_path) as f:
                        return json.load(f)
                except ValueError as e:  # caught mid-write: read again
                    last_err = e
            if not self.running:
                raise VmhealthdError("%s exited (%s) during dump_state; log tail:\n%s"
                                     % (self.name, self.returncode, tail(self.log_text(0))))
            if time.monotonic() >= deadline:
                raise VmhealthdError("%s: %s not rewritten within %ss after SIGUSR1 (%s);"
                                     " log tail:\n%s" % (self.name, self.operational_path,
                                                         timeout, last_err,
                                                         tail(self.log_text(0))))
            time.sleep(0.01)

    def close(self):
        if self._closed:
            return
        try:
            code = self.stop(timeout=5 * SLOWDOWN)
            if VALGRIND and code == VALGRIND_ERROR:
                raise VmhealthdError("%s: valgrind found errors or definite leaks:\n%s"
                                     % (self.name, tail(self.log_text(start=0), 80)))
        finally:
            if os.environ.get("VMHTEST_KEEP"):
                sys.stderr.write("vmhtest: kept %s\n" % self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
            self._closed = True
            _unregister(self)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()
        return False


# ---------------------------------------------------------------------------
# entry points

def main():
    """Entry point of every integration test file."""
    unittest.main(verbosity=2)


def run_checks(*cases, verbosity=2):
    """Run the given TestCase classes (or all of __main__ when none) and
    return True when everything passed."""
    loader = unittest.defaultTestLoader
    if cases:
        suite = unittest.TestSuite(loader.loadTestsFromTestCase(c) for c in cases)
    else:
        suite = loader.loadTestsFromModule(sys.modules["__main__"])
    return unittest.TextTestRunner(verbosity=verbosity).run(suite).wasSuccessful()
