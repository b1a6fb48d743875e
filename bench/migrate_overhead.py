#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The agent's own overhead per cold migration, beyond the libvirt calls, and
the same libvirt calls made bare, side by side.

Runs the real executor (vmh_virt_migrate, through build/bin/vmh-migrate-tool
--repeat N) moving one running domain back and forth between two hosts, and
reports per migration: total time, time inside libvirt calls, time waiting
for the guest to shut down, and the rest (the agent's own work: step
bookkeeping, XML parsing, error and log handling, on_step callbacks).

  1. in-process test driver: two test:///PATH node XML connections (each a
     private host), so libvirt's own cost is as small as it gets and the
     agent's share is most visible;
  2. two private libvirtd daemons serving the test driver (vmhtest.Libvirtd),
     the way the agent talks to real hosts (remote protocol over UNIX
     sockets);
  3. unless --quick or --no-qemu: a real QEMU guest (TCG, 64 MiB, diskless,
     so it ignores ACPI and the 1 s graceful shutdown times out) between two
     qemu:///session daemons, 10 migrations.

The peer, on the same hosts: the bare libvirt calls of such a cold
migration, made in the executor's order from libvirt's Python binding
(class Bare below: reachability, lookups, checks, room, shutdown with
the same polling, definition, define or virDomainMigrate3(OFFLINE), start,
undefine), the same number of times back and forth, alternating with the
executor in chunks (a quarter of N; 2 for QEMU) so that a change of load
hits both alike.

    /usr/bin/python3 bench/migrate_overhead.py [N] [--no-qemu] [--quick] [--json FILE]
        (default N = 200; quick: 20 and no QEMU)
Prints a markdown section on stdout (and the figures as JSON with --json).
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import vmhtest  # noqa: E402
import benchlib  # noqa: E402
import libvirt  # noqa: E402

TOOL = os.path.join(os.path.dirname(vmhtest.vmhealthd_binary()), "vmh-migrate-tool")
UUID = "b0000000-0000-4000-8000-000000000001"
DOMAIN = ("<domain type='test'><name>bench-vm</name><uuid>%s</uuid>"
          "<memory unit='MiB'>256</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>"
          % UUID)
NODE = ("<node><cpu><mhz>2000</mhz><model>i686</model><nodes>1</nodes><sockets>1</sockets>"
        "<cores>4</cores><threads>2</threads><active>8</active></cpu>"
        "<memory>8388608</memory>%s</node>")


def run(src, dst, n, *extra):
    r = subprocess.run([TOOL, "--shared", "--repeat", str(n), *extra, src, dst, UUID],
                       capture_output=True, text=True, check=False)
    runs = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    if r.returncode != 0 or len(runs) != n:
        raise SystemExit("vmh-migrate-tool failed (%s):\n%s" % (r.returncode, r.stderr))
    return runs


class Bare:
    """The libvirt calls of one cold migration with shared storage, in
    vmh_virt_migrate()'s order (src/virt/migrate.c), each one timed.  Only
    what the calls need is done between them."""

    XML_FLAGS = (libvirt.VIR_DOMAIN_XML_SECURE | libvirt.VIR_DOMAIN_XML_INACTIVE
                 | libvirt.VIR_DOMAIN_XML_MIGRATABLE)

    def __init__(self):
        self.lv_ns = 0
        self.calls = 0
        self.wait_ns = 0

    def call(self, fn, *args):
        t0 = time.perf_counter_ns()
        try:
            return fn(*args)
        finally:
            self.lv_ns += time.perf_counter_ns() - t0
            self.calls += 1

    def absent(self, fn, *args):
        """A lookup that must fail with VIR_ERR_NO_DOMAIN."""
        try:
            self.call(fn, *args)
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return
            raise
        raise RuntimeError("the domain is already on the target")

    def wait_inactive(self, dom, timeout_s):
        """vmh_wait_inactive(): True once inactive, False at the timeout."""
        start = time.monotonic()
        poll = 0.010
        while True:
            if not self.call(dom.isActive):
                return True
            t0 = time.monotonic()
            if t0 - start >= timeout_s:
                return False
            time.sleep(min(poll, start + timeout_s - t0))
            self.wait_ns += int((time.monotonic() - t0) * 1e9)
            if poll < 0.2:
                poll *= 2

    def room(self, conn):  # vmh_virt_host_room()
        node = self.call(conn.getInfo)
        used = sum(self.call(d.info)[1] for d in self.call(conn.listAllDomains, 0))
        if self.call(conn.getType).upper() != "TEST":
            self.call(conn.getFreeMemory)
        return node[1] * 1024 - used

    def migrate(self, src, dst, uuid, shutdown_timeout):
        c = self.call
        for conn in (dst, src):
            if c(conn.isAlive) != 1:
                raise RuntimeError("host not reachable")
            c(conn.getLibVersion)
        dom = c(src.lookupByUUIDString, uuid)
        name = dom.name()  # local, not a call (as in the executor)
        if c(dom.isPersistent) != 1 or c(dom.hasManagedSaveImage, 0) > 0 or \
                c(dom.snapshotNum, 0) > 0:
            raise RuntimeError("not migratable")
        state, _ = c(dom.state, 0)
        was_active = state not in (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_NOSTATE)
        xml = c(dom.XMLDesc, self.XML_FLAGS)
        mem_kib = int(re.search(r"<memory unit='KiB'>(\d+)<", xml).group(1))
        self.absent(dst.lookupByUUIDString, uuid)
        self.absent(dst.lookupByName, name)
        if mem_kib > self.room(dst):
            raise RuntimeError("no room")
        if was_active:  # shutdown: graceful, then destroy
            state, _ = c(dom.state, 0)
            stopped = False
            if state not in (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_CRASHED,
                             libvirt.VIR_DOMAIN_PMSUSPENDED):
                c(dom.shutdown)
                stopped = self.wait_inactive(dom, shutdown_timeout)
            if not stopped:
                c(dom.destroy)
                if not self.wait_inactive(dom, 5):
                    raise RuntimeError("still running after destroy")
        xml = c(dom.XMLDesc, self.XML_FLAGS)  # export
        self.absent(dst.lookupByUUIDString, uuid)  # define
        if c(src.getType) == "QEMU" and c(dst.getType) == "QEMU":
            ddom = c(dom.migrate3, dst, {}, libvirt.VIR_MIGRATE_OFFLINE
                     | libvirt.VIR_MIGRATE_PERSIST_DEST)
        else:
            ddom = c(dst.defineXML, xml)
        if was_active:  # start
            if c(dom.isActive):
                raise RuntimeError("source started again")
            c(ddom.create)
        if c(dom.isActive):  # undefine the source
            raise RuntimeError("source started again")
        try:
            c(dom.undefineFlags, libvirt.VIR_DOMAIN_UNDEFINE_KEEP_NVRAM)
        except libvirt.libvirtError as e:
            if e.get_error_code() not in (libvirt.VIR_ERR_INVALID_ARG,
                                          libvirt.VIR_ERR_NO_SUPPORT):
                raise
            c(dom.undefine)


def open_conn(uri):
    """As vmh-migrate-tool opens its connections: event loop, keepalive."""
    vmhtest.event_loop()
    c = libvirt.open(uri)
    try:
        c.setKeepAlive(1, 2)
    except libvirt.libvirtError:
        pass  # not a remote connection
    return c


def run_bare(src_uri, dst_uri, n, timeout=5):
    """n bare migrations back and forth: [{total_us, libvirt_us, wait_us, calls}]."""
    a, b = open_conn(src_uri), open_conn(dst_uri)
    out = []
    try:
        for i in range(n):
            src, dst = (b, a) if i % 2 else (a, b)
            bare = Bare()
            t0 = time.perf_counter_ns()
            bare.migrate(src, dst, UUID, timeout)
            total = time.perf_counter_ns() - t0
            out.append({"total_us": total / 1000.0, "libvirt_us": bare.lv_ns / 1000.0,
                        "wait_us": bare.wait_ns / 1000.0, "calls": bare.calls})
    finally:
        a.close()
        b.close()
    return out


def interleaved(src_uri, dst_uri, n, chunk, timeout=5):
    """n migrations by the executor and n bare ones, alternating in chunks
    (an even number, so the domain is back on the source after each), so
    that a change of load on the machine hits both alike."""
    runs, bare = [], []
    extra = ("--timeout", str(timeout))
    while len(runs) < n:
        k = min(chunk, n - len(runs))
        runs += run(src_uri, dst_uri, k, *extra)
        bare += run_bare(src_uri, dst_uri, k, timeout)
    return runs, bare


def ms(runs, field):
    return [r[field] / 1000.0 for r in runs]


def dur(x, signed=False):
    """x ms, in s from 1 s up."""
    if abs(x) >= 1000:
        return ("%+.2f s" if signed else "%.2f s") % (x / 1000.0)
    return ("%+.3f ms" if signed else "%.3f ms") % x


def report(res, key, title, short, runs, bare, tables):
    """Records one setup's figures (labelled with `short`); tables collects
    its rows (labelled with `title`)."""
    own = [(r["total_us"] - r["libvirt_us"] - r["wait_us"]) / 1000.0 for r in runs]
    calls = statistics.median(r["libvirt_calls"] for r in runs)
    total = res.figure(key + "_total", "cold migration, the executor: total (%s)" % short, "ms",
                       samples=ms(runs, "total_us"), section=key)
    lv = res.figure(key + "_libvirt", "cold migration, the executor: inside libvirt calls (%s)"
                    % short, "ms", samples=ms(runs, "libvirt_us"), section=key,
                    summary=False)
    wait = res.figure(key + "_wait", "cold migration, the executor: waiting for the guest to "
                      "shut down (%s)" % short, "ms", samples=ms(runs, "wait_us"), section=key,
                      summary=False)
    ov = res.figure(key + "_overhead", "the executor's own overhead per migration (%s)" % short,
                    "ms", samples=own, goal=benchlib.goal("p99", "<=", 5), section=key)
    btotal = res.figure(key + "_bare_total", "the bare libvirt calls of a cold migration, "
                        "Python binding: total (%s)" % short, "ms",
                        samples=ms(bare, "total_us"), section=key)
    blv = res.figure(key + "_bare_libvirt", "the bare libvirt calls of a cold migration: inside "
                     "the calls (%s)" % short, "ms", samples=ms(bare, "libvirt_us"), section=key,
                     summary=False)
    ratio = res.figure(key + "_ratio", "executor ÷ bare libvirt calls, median total per "
                       "migration (%s)" % short, "×", value=total["median"] / btotal["median"],
                       section=key)
    bcalls = statistics.median(r["calls"] for r in bare)
    print("%s (%d migrations, %d libvirt calls each)" % (title, len(runs), calls))
    for name, f in (("total", total), ("libvirt calls", lv), ("shutdown wait", wait),
                    ("agent overhead", ov), ("bare: total", btotal),
                    ("bare: in calls", blv)):
        print("  %-15s median %9.3f ms  p99 %9.3f ms  max %9.3f ms"
              % (name, f["median"], f["p99"], f["max"]))
    print()
    tables["own"].append([
        title, "%d" % len(runs), "%s (%s)" % (dur(total["median"]), dur(total["p99"])),
        "%s (%d calls)" % (dur(lv["median"]), calls),
        dur(wait["median"]) if wait["max"] > 0 else "0",
        "**%.3f ms** (%.3f, %.3f)" % (ov["median"], ov["p99"], ov["max"])])
    tables["peer"].append([
        title, "%s (%s)" % (dur(total["median"]), dur(total["p99"])),
        "%s (%s)" % (dur(btotal["median"]), dur(btotal["p99"])),
        "%s / %s" % (dur(lv["median"]), dur(blv["median"])), "%d / %d" % (calls, bcalls),
        "%.2f×" % ratio["value"], dur(total["median"] - btotal["median"], signed=True)])


def qemu(n, res, tables):
    from test_migrate_qemu import QEMU, DOMAIN as QDOMAIN, QemuLibvirtd
    with QemuLibvirtd("bench-qa") as a, QemuLibvirtd("bench-qb") as b:
        a.keeper.defineXML(QDOMAIN.format(name="bench-q", uuid=UUID, qemu=QEMU, disk="")).create()
        try:
            runs, bare = interleaved(a.uri, b.uri, n, 2, timeout=1)
            report(res, "qemu", "real QEMU TCG guest (64 MiB, diskless), two qemu:///session "
                   "daemons, virDomainMigrate3(OFFLINE)", "real QEMU TCG guest", runs, bare, tables)
        finally:
            for lv in (a, b):
                for d in lv.keeper.listAllDomains():
                    if d.isActive():
                        d.destroy()


def qemu_available():
    from test_migrate_qemu import QEMU, QEMU_DRIVER
    return bool(QEMU) and os.path.exists(QEMU_DRIVER)


def main():
    ap = benchlib.add_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    ap.add_argument("n", type=int, nargs="?", help="migrations per setup (200; quick 20)")
    ap.add_argument("--qemu-n", type=int, default=10, help="migrations of the QEMU guest (10)")
    ap.add_argument("--no-qemu", action="store_true", help="skip the real QEMU guest")
    ap.add_argument("--qemu", action="store_true", help=argparse.SUPPRESS)  # the default now
    args = ap.parse_args()
    n = args.n or (20 if args.quick else 200)
    n += n % 2  # back and forth: the domain ends where it started
    chunk = max(2, n // 4 + n // 4 % 2)
    with_qemu = not (args.quick or args.no_qemu)
    if with_qemu and not qemu_available():
        print("(no qemu-system-x86_64 or libvirt QEMU driver: the QEMU setup is skipped)\n")
        with_qemu = False
    res = benchlib.Results("migrate_overhead", args, {"migrations": n, "qemu": with_qemu,
                                                   "qemu_migrations": args.qemu_n})
    tables = {"own": [], "peer": []}
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "a.xml"), os.path.join(tmp, "b.xml")
        with open(src, "w") as f:
            f.write(NODE % DOMAIN)
        with open(dst, "w") as f:
            f.write(NODE % "")
        # fresh connections to test:///PATH are fresh hosts: the domain is on a again
        runs, bare = interleaved("test://" + src, "test://" + dst, n, chunk)
        report(res, "inproc", "in-process test driver, two `test:///PATH` node XMLs",
               "in-process test driver", runs, bare, tables)
    with vmhtest.Libvirtd("bench-a") as a, vmhtest.Libvirtd("bench-b") as b:
        for lv in (a, b):
            t = lv.keeper.lookupByName("test")
            t.destroy()
            t.undefine()
        a.keeper.defineXML(DOMAIN).create()
        runs, bare = interleaved(a.uri, b.uri, n, chunk)
        report(res, "libvirtd", "two private `libvirtd` serving the test driver (remote "
               "protocol)", "two libvirtd, test driver", runs, bare, tables)
    if with_qemu:
        qemu(args.qemu_n + args.qemu_n % 2, res, tables)
    res.table(["hosts", "migrations", "total median (p99)", "libvirt calls median",
               "guest shutdown wait", "agent overhead median (p99, max)"], tables["own"],
              title="The executor's own overhead per migration (goal ≤ 5 ms)")
    res.table(["hosts", "executor: total median (p99)", "bare calls: total median (p99)",
               "inside the calls (executor / bare)", "libvirt calls (executor / bare)",
               "executor ÷ bare",
               "executor − bare"], tables["peer"],
              title="Side by side: the bare libvirt calls of the same migrations", peer=True)
    res.write()


if __name__ == "__main__":
    main()
