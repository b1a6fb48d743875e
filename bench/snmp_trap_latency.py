#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Event -> notification logged by snmptrapd, on the real daemon.

A private libvirtd serves N running test-driver domains; the driver
crashes them one at a time (virDomainCoreDump with VIR_DUMP_CRASH: a
Stopped/Crashed lifecycle event, a vm-crashed fault, one vmhVmAbnormal)
and waits for snmptrapd to print it.  Two times per event:

- agent's own: from the engine handing the event to the SNMP front end to
  the notification written to the socket (the daemon's debug line "... us
  after the event", monotonic clock, microseconds);
- end to end: from just before the crash call to snmptrapd printing the
  notification on its stderr (read by this script as it arrives): libvirt's
  RPC and event delivery, the engine, the agent and snmptrapd.

Run once with a v2c trap target and once with a v3 authPriv inform target
(SHA-512/AES-256, receiver's engine ID configured), the same snmptrapd
answering both.

Then a storm: a host with M VMs lost at once (its libvirtd stopped), M
vmhVmAbnormal in one burst.

    /usr/bin/python3 bench/snmp_trap_latency.py [N [M]] [--quick] [--json FILE]
        (default N 200, M 1000; quick: 20, 100)
Prints a markdown section on stdout (and the figures as JSON with --json).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import vmhtest  # noqa: E402
from vmhtest import Libvirtd, Vmhealthd  # noqa: E402
from test_snmp import SnmpTrapd, TRAPD_ENGINE, target, config as snmp_config  # noqa: E402

import libvirt  # noqa: E402
import benchlib  # noqa: E402


class LiveTrapd(SnmpTrapd):
    """snmptrapd printing to stderr, each line time-stamped on arrival."""

    def start(self):
        self.arrivals = {}
        self.proc = subprocess.Popen(
            ["setpriv", "--pdeathsig", "SIGKILL", "snmptrapd", "-f", "-C", "-c", self.conf,
             "-Le", "-On", "-F", "TRAP %V|%v\n", "--doNotRetainNotificationLogs=yes"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ready = threading.Event()

        def reader():
            for raw in self.proc.stderr:
                now = time.monotonic()
                line = raw.decode(errors="replace")
                if "NET-SNMP version" in line:
                    ready.set()
                m = re.search(r'7801\.1\.4\.1\.0 = STRING: "([0-9a-f-]{36})"', line)
                if m and line.startswith("TRAP"):
                    self.arrivals.setdefault(m.group(1), now)
        threading.Thread(target=reader, daemon=True).start()
        if not ready.wait(10):
            raise RuntimeError("snmptrapd did not start")
        return self


def node_xml(path, n):
    with open(path, "w") as f:
        f.write("<node>\n")
        for i in range(n):
            f.write("<domain type='test'><name>lat-%04d</name>"
                    "<uuid>e0000000-0000-4000-8000-%012d</uuid><memory>65536</memory>"
                    "<vcpu>1</vcpu><os><type>hvm</type></os></domain>\n" % (i, i))
        f.write("</node>\n")


def agent_times(d, n):
    """The agent's own time of each of the n notifications, in ms, from its
    debug lines (written just after the send: snmptrapd may print the
    notification before the daemon logs it, so wait for all n)."""
    def times():
        found = re.findall(r"vmhVmAbnormal for \S+ sent to 1 targets, (\d+) us after the event",
                           d.log_text())
        return found if len(found) >= n else None
    return [int(us) / 1000.0 for us in vmhtest.wait_for(times, timeout=10,
                                                          what="%d agent timings" % n)]


def run(n, kind):
    work = tempfile.mkdtemp(prefix="vmh-bench-lat-")
    os.chmod(work, 0o777)
    path = os.path.join(work, "node.xml")
    node_xml(path, n)
    with LiveTrapd() as trapd, Libvirtd("bench-lat", node_xml=path) as lv:
        if kind == "v2c trap":
            t = target("bench", trapd.port)
        else:
            t = target("bench", trapd.port, "v3", inform=True, engine_id=TRAPD_ENGINE)
        cfg = snmp_config(lv.uri, targets=t).replace(
            '<host>', '<settings><default-preprocessing-time>3600</default-preprocessing-time>'
            '</settings><host>', 1)
        with Vmhealthd(cfg, name="bench-lat") as d:
            d.wait_log(r"host a: connected, %d domains" % n, timeout=60)
            conn = lv.conn()
            e2e = []
            for i in range(n):
                uuid = "e0000000-0000-4000-8000-%012d" % i
                dom = conn.lookupByUUIDString(uuid)
                t0 = time.monotonic()
                dom.coreDump(os.path.join(work, "core-%d" % i), libvirt.VIR_DUMP_CRASH)
                vmhtest.wait_for(lambda: uuid in trapd.arrivals, timeout=10,
                                 interval=0.0005, what="trap for %s" % uuid)
                e2e.append((trapd.arrivals[uuid] - t0) * 1000.0)
                os.unlink(os.path.join(work, "core-%d" % i))
            conn.close()
            own = agent_times(d, n)
    subprocess.run(["rm", "-rf", work])
    return own, e2e


def storm(n):
    """A host with n VMs lost at once: n vmhVmAbnormal in one burst."""
    work = tempfile.mkdtemp(prefix="vmh-bench-storm-")
    os.chmod(work, 0o777)
    path = os.path.join(work, "node.xml")
    node_xml(path, n)
    with LiveTrapd() as trapd, Libvirtd("bench-storm", node_xml=path) as lv:
        cfg = snmp_config(lv.uri, targets=target("bench", trapd.port)).replace(
            '<host>', '<settings><default-preprocessing-time>3600</default-preprocessing-time>'
            '</settings><host>', 1)
        with Vmhealthd(cfg, name="bench-storm") as d:
            d.wait_log(r"host a: connected, %d domains" % n, timeout=60)
            t0 = time.monotonic()
            lv.stop()
            vmhtest.wait_for(lambda: len(trapd.arrivals) >= n, timeout=60,
                             what="%d traps" % n)
            last = (max(trapd.arrivals.values()) - t0) * 1000.0
            first = (min(trapd.arrivals.values()) - t0) * 1000.0
            own = agent_times(d, n)
    subprocess.run(["rm", "-rf", work])
    return first, last, own


def main():
    ap = benchlib.add_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    ap.add_argument("n", type=int, nargs="?", help="VMs crashed one at a time (200; quick 20)")
    ap.add_argument("m", type=int, nargs="?", help="VMs of the storm (1000; quick 100)")
    a = ap.parse_args()
    n = a.n or (20 if a.quick else 200)
    m = a.m or (100 if a.quick else 1000)
    res = benchlib.Results("snmp_trap_latency", a, {"events": n, "storm_vms": m})
    rows = []
    for key, kind in (("v2c", "v2c trap"), ("v3inform", "v3 inform (authPriv)")):
        own, e2e = run(n, kind)
        if len(own) != n:
            raise RuntimeError("%d agent timings for %d events" % (len(own), n))
        fo = res.figure("own_%s" % key, "event → %s written, the agent's own time" % kind, "ms",
                        samples=own, goal=benchlib.goal("p99", "<=", 10))
        fe = res.figure("e2e_%s" % key, "crash call → %s printed by snmptrapd" % kind, "ms",
                        samples=e2e)
        rows.append([kind, "%.3f ms" % fo["median"], "%.3f ms" % fo["p99"], "%.3f ms" % fo["max"],
                     "%.2f ms" % fe["median"], "%.2f ms" % fe["p99"]])
    res.table(["target", "agent's own p50", "p99", "max", "crash call → snmptrapd p50", "p99"],
              rows, title="Event → notification (%d vmhVmAbnormal, one at a time)" % n)
    first, last, own = storm(m)
    res.figure("storm_first", "host with %d VMs lost → first trap at snmptrapd" % m, "ms",
               value=first, section="storm")
    res.figure("storm_last", "host with %d VMs lost → last trap at snmptrapd" % m, "ms",
               value=last, section="storm")
    fo = res.figure("storm_own", "storm of %d traps: the agent's own time per trap" % m, "ms",
                    samples=own, section="storm")
    res.text("Storm: a host with %d VMs lost (libvirtd stopped): first trap at snmptrapd "
             "%.1f ms after the stop, last %.1f ms; agent's own time per trap p50 %.3f ms, "
             "p99 %.3f ms, max %.3f ms (queueing behind the burst included)."
             % (m, first, last, fo["median"], fo["p99"], fo["max"]))
    res.write()


if __name__ == "__main__":
    main()
