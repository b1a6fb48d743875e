#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""NETCONF benchmarks of the real vmhealthd (see docs/PERFORMANCE.md):

  idle      server CPU with 0, 1 and 10 idle SSH sessions
  get       single-leaf get and full get, ncclient (TICK = 0.001) over SSH,
            with the VMs of a test-driver node XML (1 000 / 10 000 VMs)
  notif     report-fault RPC -> vm-abnormal at the client, p50/p99

Usage: bench/netconf_bench.py [idle|get|notif ...] [--vms N ...] [--rounds R]
           [--idle-seconds S] [--quick] [--json FILE]
Prints what it measures as it goes, then a markdown table (and the figures as
JSON with --json)."""
import argparse
import atexit
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import vmhtest  # noqa: E402
import test_netconf as T  # noqa: E402
from ncclient.xml_ import to_ele  # noqa: E402
import benchlib  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def node_xml(path, n):
    with open(path, "w") as f:
        f.write("<node><cpu><mode>fixed</mode><nodes>1</nodes><sockets>1</sockets>"
                "<cores>64</cores><threads>1</threads><mhz>2000</mhz></cpu>"
                "<memory>1073741824</memory>\n")
        for i in range(n):
            f.write("<domain type='test'><name>vm%05d</name>"
                    "<uuid>6f1c2d3e-0000-4000-8000-%012d</uuid>"
                    "<memory>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>\n"
                    % (i, i))
        f.write("</node>\n")


def daemon(keys, port, vm_health=None, unix_path=None):
    state = tempfile.mkdtemp(prefix="vmh-bench-")
    atexit.register(shutil.rmtree, state, ignore_errors=True)
    d = vmhtest.Vmhealthd(T.daemon_config(keys, port, state, unix_path, vm_health),
                          name="bench", debug=False, ready_timeout=120)
    d.start()
    return d


def bench_idle(keys, seconds, res):
    port = vmhtest.free_port()
    d = daemon(keys, port)
    try:
        sessions = []
        out = {}
        for n in (0, 1, 10):
            while len(sessions) < n:
                sessions.append(T.connect(port, key=keys.admin_key))
            time.sleep(1)
            c0, t0 = cpu_seconds(d.pid), time.monotonic()
            time.sleep(seconds)
            c1, t1 = cpu_seconds(d.pid), time.monotonic()
            out[n] = 100.0 * (c1 - c0) / (t1 - t0)
            res.figure("idle_%d" % n, "idle daemon CPU, %d idle SSH sessions" % n, "% of a core",
                       value=out[n], goal=benchlib.goal("value", "<=", 1) if n == 10 else None,
                       section="idle")
            print("idle: %2d SSH sessions: %.2f %% of one core over %d s" % (n, out[n], seconds))
        for m in sessions:
            m.close_session()
        return out
    finally:
        d.close()


def timeit(fn, n):
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        lat.append((time.perf_counter() - t) * 1000)
    return lat


def c_client():
    return benchlib.c_tool("netconf_bench_client")


def run_c_client(client, sock, what, n, yang, pid):
    """Runs the C client for n gets: (latencies in ms, the daemon's CPU ms
    per get, the client's own CPU ms per get).  The client connects, says
    "ready" and waits to be told to go, and prints its results before it
    closes the session, so the daemon's CPU is counted over the gets only."""
    p = subprocess.Popen([client, sock, what, str(n), yang], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if p.stdout.readline().strip() != "ready":
            raise RuntimeError("C client: %s" % p.communicate()[1])
        c0 = cpu_seconds(pid)
        p.stdin.write("go\n")
        p.stdin.close()
        lat = []
        for line in p.stdout:
            if line.startswith("cpu "):
                server = (cpu_seconds(pid) - c0) * 1000 / n
                client = float(line.split()[1])
                break
            lat.append(float(line))
        else:
            raise RuntimeError("C client: %s" % p.communicate()[1])
        if p.wait(30):
            raise RuntimeError("C client: %s" % p.stderr.read())
        assert len(lat) == n, (len(lat), n)
        return lat, server, client
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def cpu_figures(res, what, vms, peer, server, client):
    """The daemon's and the client's CPU per get, as two figures."""
    for side, ms in (("server", server), ("client", client)):
        res.figure("get_%s_%d_%s_%s_cpu" % (what, vms, peer, side),
                   CPU_LABEL[side] % (GET_LABEL[what] % vms, PEER_LABEL[peer]),
                   "ms", value=ms, section="get")


def bench_get(keys, vms, rounds, res):
    port = vmhtest.free_port()
    tmp = tempfile.mkdtemp(prefix="vmh-bench-node-")
    os.chmod(tmp, 0o755)
    node = os.path.join(tmp, "node.xml")
    node_xml(node, vms)
    sock = os.path.join(tmp, "nc.sock")
    d = daemon(keys, port, "<host><name>a</name><uri>test://%s</uri></host>" % node, sock)
    nfull = max(5, rounds // 10)
    try:
        client = c_client()
        # libnetconf2's client stores the schemas it fetches with get-schema
        # in its search path: a scratch directory, never the source tree
        yang = os.path.join(tmp, "yang")
        os.mkdir(yang)
        # what the daemon spends with no request, for reading the server CPU
        # per get (which includes it)
        time.sleep(1)
        c0, t0 = cpu_seconds(d.pid), time.monotonic()
        time.sleep(BACKGROUND_SECONDS)
        bg = 100.0 * (cpu_seconds(d.pid) - c0) / (time.monotonic() - t0)
        res.figure("background_%d" % vms, "daemon CPU with %d VMs and no request" % vms,
                   "% of a core", value=bg, section="get", summary=False)
        print("%d VMs, no request: daemon CPU %.2f %% of one core over %g s"
              % (vms, bg, BACKGROUND_SECONDS))
        for what, n in (("leaf", rounds), ("full", nfull)):
            lat, server, cl = run_c_client(client, sock, what, n, yang, d.pid)
            f = res.figure("get_%s_%d_c" % (what, vms), GET_LABEL[what] % vms
                           + ", " + PEER_LABEL["c"], "ms", samples=lat,
                           goal=GET_GOAL[what], section="get")
            cpu_figures(res, what, vms, "c", server, cl)
            print("C client over UNIX socket, %s get, %d VMs: median %.2f ms, p99 %.2f ms "
                  "(CPU per get: server %.2f ms, client %.2f ms)"
                  % ("one-leaf" if what == "leaf" else "full", vms, f["median"], f["p99"],
                     server, cl))
        m = T.connect(port, key=keys.admin_key)
        leaf = ("subtree", T.vmh("<statistics><faults-detected/></statistics>"))
        r = m.get(filter=("subtree", T.vmh("<host><name>a</name><state><vm-count/></state>"
                                           "</host>")))
        assert ">%d<" % vms in r.xml, r.xml[:500]
        size = len(m.get().xml)
        for what, n, get in (("leaf", rounds, lambda: m.get(filter=leaf)),
                             ("full", nfull, lambda: m.get())):
            c0, p0 = cpu_seconds(d.pid), time.process_time()
            lat = timeit(get, n)
            # the bench process's CPU: ncclient and its transport threads
            cl = (time.process_time() - p0) * 1000 / n
            server = (cpu_seconds(d.pid) - c0) * 1000 / n
            f = res.figure("get_%s_%d_ncclient" % (what, vms), GET_LABEL[what] % vms
                           + ", " + PEER_LABEL["ncclient"], "ms", samples=lat,
                           goal=GET_GOAL[what], section="get")
            cpu_figures(res, what, vms, "ncclient", server, cl)
            if what == "full":
                f["bytes"] = size
            print("ncclient over SSH, %s get, %d VMs: median %.2f ms, p99 %.2f ms%s "
                  "(CPU per get: server %.2f ms, client %.2f ms)"
                  % ("one-leaf" if what == "leaf" else "full", vms, f["median"], f["p99"],
                     " (%d bytes)" % size if what == "full" else "", server, cl))
        m.close_session()
    finally:
        d.close()
        shutil.rmtree(tmp, ignore_errors=True)


def bench_notif(keys, rounds, res):
    port = vmhtest.free_port()
    d = daemon(keys, port)
    try:
        sub = T.connect(port, key=keys.admin_key)
        sub.create_subscription()
        ctl = T.connect(port, key=keys.admin_key)
        lat = []
        for i in range(rounds):
            t = time.perf_counter()
            ctl.dispatch(to_ele('<report-fault xmlns="%s"><host>a</host><description>b%d'
                                '</description></report-fault>' % (T.VMH_NS, i)))
            t_reply = time.perf_counter()
            n = sub.take_notification(timeout=5)
            assert n is not None and "vm-abnormal" in n.notification_xml
            t_notif = time.perf_counter()
            wall = time.time()
            ev = n.notification_xml.split("<eventTime>")[1].split("<")[0]
            ev_s = datetime.datetime.strptime(ev.replace("Z", "+00:00"),
                                              "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
            lat.append(((t_notif - t) * 1000, (t_reply - t) * 1000, (wall - ev_s) * 1000))
            fid = n.notification_xml.split("<fault-id>")[1].split("<")[0]
            ctl.dispatch(to_ele('<clear-fault xmlns="%s"><fault-id>%s</fault-id></clear-fault>'
                                % (T.VMH_NS, fid)))
            # the fault's clearing ends the round: wait for its notification
            while True:
                n = sub.take_notification(timeout=5)
                assert n is not None, "no fault-cleared for fault %s" % fid
                if "fault-cleared" in n.notification_xml:
                    break
        tot = res.figure("notif_rpc", "`report-fault` sent → `vm-abnormal` received (ncclient, "
                         "SSH)", "ms", samples=[x[0] for x in lat], section="notif")
        rep = res.figure("notif_reply", "`report-fault` sent → its reply received (ncclient, "
                         "SSH)", "ms", samples=[x[1] for x in lat], section="notif")
        ev = res.figure("notif_event", "engine event (`eventTime`, 1 ms resolution) → "
                        "`vm-abnormal` received (ncclient, SSH)", "ms",
                        samples=[x[2] for x in lat], goal=benchlib.goal("p99", "<=", 10),
                        section="notif")
        print("report-fault sent -> vm-abnormal received (%d rounds): p50 %.2f ms, p99 %.2f ms"
              " (the RPC reply alone: p50 %.2f ms)"
              % (rounds, tot["median"], tot["p99"], rep["median"]))
        print("engine event (eventTime, 1 ms resolution) -> received: p50 %.1f ms, p99 %.1f ms"
              % (ev["median"], ev["p99"]))
    finally:
        d.close()


GET_LABEL = {"leaf": "`get` of one leaf (`statistics/faults-detected`), %d VMs",
             "full": "full `get`, %d VMs"}
PEER_LABEL = {"c": "libnetconf2 C client, UNIX socket", "ncclient": "ncclient over SSH"}
CPU_LABEL = {"server": "%s, %s: daemon CPU per get",
             "client": "%s, %s: client CPU per get"}
BACKGROUND_SECONDS = 3
GET_GOAL = {"leaf": benchlib.goal("median", "<=", 2),
            "full": benchlib.goal("median", "<=", 150)}


def summary(res, vms, idle_seconds):
    fig = {f["key"]: f for f in res.figures}

    def dist(key, digits):
        f = fig.get(key)
        if not f:
            return ""
        return "%.*f ms median, p99 %.*f" % (digits, f["median"], digits, f["p99"])
    rows = []
    for n in vms:
        for what, digits in (("leaf", 2), ("full", 1)):
            c, nc = "get_%s_%d_c" % (what, n), "get_%s_%d_ncclient" % (what, n)
            if c not in fig:
                continue
            extra = ""
            if "bytes" in fig.get(nc, {}):
                extra = " (%.0f kB)" % (fig[nc]["bytes"] / 1000.0)
            g = GET_GOAL[what]
            rows.append([GET_LABEL[what] % n, dist(c, digits), dist(nc, digits) + extra,
                         "median ≤ %g ms" % g["value"]])
    if "notif_rpc" in fig:
        rows.append(["`report-fault` sent → `vm-abnormal` received", "",
                     dist("notif_rpc", 1) + " (the RPC's own reply: median %.1f ms)"
                     % fig["notif_reply"]["median"], ""])
        rows.append(["engine event (`eventTime`) → `vm-abnormal` received", "",
                     dist("notif_event", 1) + " (1 ms resolution)", "p99 ≤ 10 ms"])
    if "idle_0" in fig:
        rows.append(["idle daemon, 0 / 1 / 10 idle SSH sessions (%g s each)" % idle_seconds, "",
                     " / ".join("%.2f %%" % fig["idle_%d" % n]["value"] for n in (0, 1, 10))
                     + " of one core", "≤ 1 % with 10"])
    res.table(["measurement", "C client, UNIX socket", "ncclient, SSH", "goal"], rows,
              title="NETCONF")

    def cpu(key, digits):
        f = fig.get(key)
        return "%.*f ms" % (digits, f["value"]) if f else ""
    rows = []
    for n in vms:
        for what, digits in (("leaf", 2), ("full", 1)):
            k = "get_%s_%d_%%s_%%s_cpu" % (what, n)
            if k % ("c", "server") in fig or k % ("ncclient", "server") in fig:
                rows.append([GET_LABEL[what] % n] + [cpu(k % (p, side), digits)
                                                     for p in ("c", "ncclient")
                                                     for side in ("server", "client")])
    if rows:
        res.table(["measurement", "C client: server", "C client: client", "ncclient: server",
                   "ncclient: client"], rows, title="NETCONF: CPU per get")
    bg = [(n, fig["background_%d" % n]["value"]) for n in vms if "background_%d" % n in fig]
    if bg:
        res.text("The daemon's CPU with no request (which the server CPU per get includes): %s."
                 % ", ".join("%.2f %% of one core with %d VMs" % (v, n) for n, v in bg))


def main():
    ap = benchlib.add_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    ap.add_argument("what", nargs="*", default=["idle", "get", "notif"])
    ap.add_argument("--vms", type=int, nargs="*", help="VMs for get (1000 10000; quick 100)")
    ap.add_argument("--idle-seconds", type=float, help="each idle measurement (30; quick 2)")
    ap.add_argument("--rounds", type=int, help="requests per measurement (200; quick 20)")
    a = ap.parse_args()
    vms = a.vms or ([100] if a.quick else [1000, 10000])
    idle = a.idle_seconds or (2 if a.quick else 30)
    rounds = a.rounds or (20 if a.quick else 200)
    res = benchlib.Results("netconf_bench", a, {"what": a.what, "vms": vms,
                                                "idle_seconds": idle, "rounds": rounds,
                                                "full_get_rounds": max(5, rounds // 10)})
    keys = T.Keys()
    try:
        if "idle" in a.what:
            bench_idle(keys, idle, res)
        if "get" in a.what:
            for n in vms:
                bench_get(keys, n, rounds, res)
        if "notif" in a.what:
            bench_notif(keys, rounds, res)
    finally:
        keys.close()
    print()
    summary(res, vms, idle)
    res.write()


if __name__ == "__main__":
    main()
