#!/usr/bin/python3
"""NETCONF benchmarks of the real vmhealthd (see docs/PERFORMANCE.md):

  idle      server CPU with 0, 1 and 10 idle SSH sessions
  get       single-leaf get and full get, ncclient (TICK = 0.001) over SSH,
            with the VMs of a test-driver node XML (1 000 / 10 000 VMs)
  notif     report-fault RPC -> vm-abnormal at the client, p50/p99

Usage: bench/netconf_bench.py [idle|get|notif ...] [--vms N]"""
import argparse
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import vmhtest  # noqa: E402
import test_netconf as T  # noqa: E402
from ncclient.xml_ import to_ele  # noqa: E402

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
    d = vmhtest.Vmhealthd(T.daemon_config(keys, port, state, unix_path, vm_health),
                          name="bench", debug=False, ready_timeout=120)
    d.start()
    return d


def bench_idle(keys, seconds):
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
    lat.sort()
    return statistics.median(lat), lat[int(len(lat) * 0.9)], lat[min(len(lat) - 1,
                                                                     int(len(lat) * 0.99))]


def c_client():
    """Builds bench/netconf_bench_client.c (libnetconf2's client) once."""
    out = os.path.join(tempfile.gettempdir(), "vmh-netconf-bench-client")
    src = os.path.join(HERE, "netconf_bench_client.c")
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libnetconf2", "libyang"],
                               check=True, capture_output=True, text=True).stdout.split()
        subprocess.run(["cc", "-O2", "-o", out, src] + flags, check=True)
    return out


def bench_get(keys, vms, rounds):
    port = vmhtest.free_port()
    tmp = tempfile.mkdtemp(prefix="vmh-bench-node-")
    os.chmod(tmp, 0o755)
    node = os.path.join(tmp, "node.xml")
    node_xml(node, vms)
    sock = os.path.join(tmp, "nc.sock")
    d = daemon(keys, port, "<host><name>a</name><uri>test://%s</uri></host>" % node, sock)
    try:
        client = c_client()
        # libnetconf2's client stores the schemas it fetches with get-schema
        # in its search path: a scratch directory, never the source tree
        yang = os.path.join(tmp, "yang")
        os.mkdir(yang)
        for what, n in (("leaf", rounds), ("full", max(5, rounds // 10))):
            p = subprocess.run([client, sock, what, str(n), yang], capture_output=True, text=True)
            if p.returncode:
                raise RuntimeError("C client: %s" % p.stderr)
            r = p.stdout.split()
            print("C client over UNIX socket, %s get, %d VMs: median %.2f ms, p90 %.2f ms"
                  % ("one-leaf" if what == "leaf" else "full", vms, float(r[0]), float(r[1])))
        m = T.connect(port, key=keys.admin_key)
        leaf = ("subtree", T.vmh("<statistics><faults-detected/></statistics>"))
        r = m.get(filter=("subtree", T.vmh("<host><name>a</name><state><vm-count/></state>"
                                           "</host>")))
        assert ">%d<" % vms in r.xml, r.xml[:500]
        med, p90, _ = timeit(lambda: m.get(filter=leaf), rounds)
        print("ncclient over SSH, one-leaf get, %d VMs: median %.2f ms, p90 %.2f ms"
              % (vms, med, p90))
        nfull = max(5, rounds // 10)
        c0 = cpu_seconds(d.pid)
        fmed, fp90, _ = timeit(lambda: m.get(), nfull)
        cpu = (cpu_seconds(d.pid) - c0) * 1000 / nfull
        print("ncclient over SSH, full get, %d VMs: median %.1f ms, p90 %.1f ms (%d bytes; "
              "server CPU %.0f ms per get)" % (vms, fmed, fp90, len(m.get().xml), cpu))
        m.close_session()
        return med, p90, fmed, fp90
    finally:
        d.close()
        shutil.rmtree(tmp, ignore_errors=True)


def bench_notif(keys, rounds):
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
            while sub.take_notification(timeout=0.2):
                pass
        tot = sorted(x[0] for x in lat)
        evl = sorted(x[2] for x in lat)
        print("report-fault sent -> vm-abnormal received (%d rounds): p50 %.2f ms, p99 %.2f ms"
              " (the RPC reply alone: p50 %.2f ms)"
              % (rounds, statistics.median(tot), tot[int(len(tot) * 0.99) - 1],
                 statistics.median(x[1] for x in lat)))
        print("engine event (eventTime, 1 ms resolution) -> received: p50 %.1f ms, p99 %.1f ms"
              % (statistics.median(evl), evl[int(len(evl) * 0.99) - 1]))
        return tot
    finally:
        d.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", nargs="*", default=["idle", "get", "notif"])
    ap.add_argument("--vms", type=int, nargs="*", default=[1000, 10000])
    ap.add_argument("--idle-seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=200)
    a = ap.parse_args()
    keys = T.Keys()
    try:
        if "idle" in a.what:
            bench_idle(keys, a.idle_seconds)
        if "get" in a.what:
            for n in a.vms:
                bench_get(keys, n, a.rounds)
        if "notif" in a.what:
            bench_notif(keys, a.rounds)
    finally:
        keys.close()


if __name__ == "__main__":
    main()
