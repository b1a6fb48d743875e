#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Notification fan-out: a host fault over N VMs (default 125) heard by S
admin subscribers (default 8, in 3 client processes, SSH), so S x N
vm-abnormal notifications at once; latency at the subscribers from the
fault's detection (the earliest eventTime) to each arrival, and the CPU the
daemon and the subscribers spend per notification.  Run twice: subscribers
on libnetconf2's C client (bench/nc_subscriber.c) and on ncclient.  On a
small machine the subscribers share the cores with the daemon, and their
own CPU per notification decides much of the latency (docs/SOAK.md).

    /usr/bin/python3 bench/fanout.py [--vms N] [--subscribers S] [--rounds R]
                                     [--quick] [--json FILE]
"""
import argparse
import datetime
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import vmhtest  # noqa: E402
from vmhtest import Vmhealthd, VMH_NS, VHA_NS  # noqa: E402
import test_netconf  # noqa: E402
import benchlib  # noqa: E402

PROCS = 3


def parse_et(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def ncclient_worker(port, key, k, n):
    """A client process of K ncclient subscribers: prints "ready", then,
    once they have K x N vm-abnormal, a JSON line [cpu s, [[wall, eventTime]...]]."""
    import ncclient.transport.ssh
    from ncclient.transport.session import SessionListener, NotificationHandler
    ncclient.transport.ssh.TICK = 0.001
    got, done, lock = [], threading.Event(), threading.Lock()

    class Listener(SessionListener):
        def callback(self, root, raw):
            wall = time.time()
            if "vm-abnormal" not in raw:
                return
            et = raw.split("<eventTime>", 1)[1].split("<", 1)[0]
            with lock:
                got.append((wall, et))
                if len(got) >= k * n:
                    done.set()

        def errback(self, ex):
            pass

    sessions = []
    for _ in range(k):
        m = test_netconf.connect(port, key=key, timeout=60)
        s = m._session
        # ncclient's own handler parses each notification again for
        # take_notification(), which nobody calls here
        for lst in list(s._listeners):
            if isinstance(lst, NotificationHandler):
                s.remove_listener(lst)
        s.add_listener(Listener())
        m.create_subscription(stream_name="NETCONF")
        sessions.append(m)
    print("ready", flush=True)
    c0 = time.process_time()
    done.wait(120)
    cpu = time.process_time() - c0
    print(json.dumps([cpu, got]), flush=True)
    sys.stdin.readline()
    for m in sessions:
        m.close_session()


class Clients:
    """S subscribers in PROCS processes of one kind."""

    def __init__(self, kind, port, keys, subs, n, yang):
        self.kind, self.n = kind, n
        per = [subs // PROCS + (1 if i < subs % PROCS else 0) for i in range(PROCS)]
        per = [k for k in per if k]
        self.procs = []
        sid = 0
        for k in per:
            if kind == "c":
                ids = list(range(sid + 1, sid + k + 1))
                cmd = [benchlib.c_tool("nc_subscriber", ("libnetconf2", "libyang", "libssh")),
                       str(port), yang] + ["%d:admin:%s" % (i, keys.admin_key) for i in ids]
            else:
                cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(port),
                       keys.admin_key, str(k), str(n)]
            sid += k
            p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                 bufsize=1)
            # a reader per process drains its output to the end: a client
            # blocked on a full pipe would not stop
            p.lines = queue.Queue()
            threading.Thread(target=self._drain, args=(p,), daemon=True).start()
            self.procs.append((p, k))
        for p, k in self.procs:
            self._wait_ready(p)

    @staticmethod
    def _drain(p):
        for line in p.stdout:
            p.lines.put(line)
        p.lines.put(None)

    def _line(self, p):
        line = p.lines.get(timeout=120)
        if line is None:
            raise SystemExit("a %s subscriber process ended early" % self.kind)
        return line

    def _wait_ready(self, p):
        while True:
            line = self._line(p)
            if line.strip() == "ready" or '"k":"started"' in line:
                return

    def collect(self):
        """[(wall, eventTime)] of every vm-abnormal, and the clients' CPU (s)
        from the fault to the last arrival."""
        got, cpu = [], 0.0
        for p, k in self.procs:
            if self.kind == "c":
                mine = []
                while len(mine) < k * self.n:
                    x = json.loads(self._line(p))
                    if x["k"] == "n" and x["n"] == "vm-abnormal":
                        mine.append((x["w"], x["e"]))
                got += mine
                cpu += cpu_since(p.pid, self.c_base[p.pid])
            else:
                c, mine = json.loads(self._line(p))
                got += mine
                cpu += c
        return got, cpu

    def mark(self):
        """Before the fault: the C clients' CPU so far (theirs is read from
        /proc; the ncclient workers count their own)."""
        self.c_base = {p.pid: cpu_threads(p.pid) for p, _ in self.procs} if self.kind == "c" else {}

    def close(self):
        for p, _ in self.procs:
            try:
                p.stdin.write("stop\n")
                p.stdin.flush()
            except OSError:
                pass
        for p, _ in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def cpu_threads(pid):
    """tid -> its time on a CPU so far (ns, /proc/PID/task/TID/schedstat:
    finer than /proc/PID/stat's clock ticks)."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                out[tid] = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # the thread ended
    return out


def cpu_since(pid, before):
    """CPU seconds of pid's threads since cpu_threads() gave before; a
    thread that ended in between (an idle pool thread) counts for nothing."""
    now = cpu_threads(pid)
    return sum(v - before.get(t, 0) for t, v in now.items()) / 1e9


def set_temp(path, value):
    with open(path + ".new", "w") as f:
        f.write("%d\n" % value)
    os.rename(path + ".new", path)


def run_kind(kind, d, port, keys, a, temp, yang):
    lat, delivery, cl_cpu, d_cpu, count = [], [], 0.0, 0.0, 0
    for r in range(a.rounds):
        cl = Clients(kind, port, keys, a.subscribers, a.vms, yang)
        try:
            time.sleep(0.5)
            cl.mark()
            d0 = cpu_threads(d.pid)
            set_temp(temp, 90000)
            got, cpu = cl.collect()
            d_cpu += cpu_since(d.pid, d0)
            cl_cpu += cpu
            det = min(parse_et(e) for _, e in got)
            lat += [(w - det) * 1000 for w, _ in got]
            delivery += [(w - parse_et(e)) * 1000 for w, e in got]
            count += len(got)
            set_temp(temp, 45000)
            time.sleep(1.0)  # the fault clears; its notifications go too
        finally:
            cl.close()
    return lat, delivery, cl_cpu, d_cpu, count


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        return ncclient_worker(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]),
                               int(sys.argv[5]))
    ap = benchlib.add_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    ap.add_argument("--vms", type=int, help="VMs on the faulty host (125; quick 20)")
    ap.add_argument("--subscribers", type=int, default=8)
    ap.add_argument("--rounds", type=int, help="faults per client kind (5; quick 1)")
    a = ap.parse_args()
    a.vms = a.vms or (20 if a.quick else 125)
    a.rounds = a.rounds or (1 if a.quick else 5)
    res = benchlib.Results("fanout", a, {"vms": a.vms, "subscribers": a.subscribers,
                                         "rounds": a.rounds, "processes": PROCS})
    tmp = tempfile.mkdtemp(prefix="vmh-bench-fanout-")
    os.chmod(tmp, 0o755)
    keys = test_netconf.Keys()
    rows = []
    try:
        benchlib.write_test_node(os.path.join(tmp, "a.xml"), a.vms)
        hw = os.path.join(tmp, "sysfs/sys/class/hwmon/hwmon0")
        os.makedirs(hw)
        set_temp(os.path.join(hw, "temp1_input"), 45000)
        set_temp(os.path.join(hw, "temp1_max"), 80000)
        yang = os.path.join(tmp, "client-yang")
        os.mkdir(yang)
        port = vmhtest.free_port()
        cfg = ('<vm-health xmlns="%s"><settings><default-preprocessing-time>600'
               '</default-preprocessing-time><poll-interval>100</poll-interval></settings>'
               '<host><name>a</name><uri>test://%s/a.xml</uri><sysfs-root>%s/sysfs'
               '</sysfs-root></host></vm-health>'
               '<agent xmlns="%s"><state-dir>%s/state</state-dir>%s</agent>'
               % (VMH_NS, tmp, tmp, VHA_NS, tmp, test_netconf.netconf_xml(keys, port)))
        with Vmhealthd(cfg, debug=False, ready_timeout=60) as d:
            for kind, label in (("c", "libnetconf2's C client"), ("ncclient", "ncclient")):
                lat, dl, ccpu, dcpu, count = run_kind(kind, d, port, keys, a,
                                                      os.path.join(hw, "temp1_input"), yang)
                f = res.figure("latency_%s" % kind, "host fault over %d VMs → each of %d "
                               "`vm-abnormal` at %d subscribers (%s), from detection"
                               % (a.vms, a.vms * a.subscribers, a.subscribers, label), "ms",
                               samples=lat,
                               goal=benchlib.goal("p99", "<=", 100) if kind == "c" else None,
                               section="fanout")
                res.figure("client_cpu_%s" % kind, "subscribers' CPU per notification (%s)"
                           % label, "µs", value=ccpu * 1e6 / count, section="fanout",
                           summary=False)
                res.figure("daemon_cpu_%s" % kind, "daemon CPU per notification (%s "
                           "subscribers)" % label, "µs", value=dcpu * 1e6 / count,
                           section="fanout", summary=False)
                rows.append([label, "%d" % count, "%.1f" % f["median"], "%.1f" % f["p99"],
                             "%.1f" % f["max"], "%.1f" % max(dl),
                             "%.0f µs" % (dcpu * 1e6 / count), "%.0f µs" % (ccpu * 1e6 / count)])
    finally:
        keys.close()
        shutil.rmtree(tmp, True)
    res.table(["subscribers", "notifications", "p50 ms", "p99 ms", "max ms",
               "eventTime → arrival max ms", "daemon CPU / notif", "subscribers' CPU / notif"],
              rows, title="A host fault over %d VMs, %d admin subscribers in %d processes "
              "(%d rounds each)" % (a.vms, a.subscribers, PROCS, a.rounds))
    res.text("Latency: from the fault's detection (the earliest `eventTime` of its "
             "notifications, 1 ms resolution) to each `vm-abnormal`'s arrival at a subscriber "
             "(the real-time clock when the client has parsed it). CPU: the threads' time on a "
             "CPU from /proc/PID/task/*/schedstat (daemon, C clients) or the client's own "
             "process time (ncclient), from the "
             "sysfs change to the last arrival, divided by the notifications. The daemon, "
             "the subscribers and their SSH share the machine's cores.")
    res.write()


if __name__ == "__main__":
    main()
