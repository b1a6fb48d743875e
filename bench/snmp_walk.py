#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""SNMP walk cost and memory per row on the real daemon, and net-snmp's own
snmpd walking a native table of the same size for comparison.

1. `snmpbulkwalk` of vmhVmTable (9 columns) at 1 000 and 10 000 VMs, with
   max-repetitions 10 (the tool's default) and 50, 5 runs each (wall time
   of the tool, its start included; output to /dev/null):
   - embedded: the daemon's own master agent on 127.0.0.1;
   - AgentX: a private snmpd on 127.0.0.1, the daemon its subagent over a
     UNIX socket.
2. Memory per row: the daemon's RSS (VmRSS) watching 10 000 VMs minus
   watching 1 VM, over 9 999, after a full walk.
3. The peer: a private snmpd (its own config and persistent directory in a
   temp dir, -C, never /etc/snmp or /var/lib/snmp) in a private network
   namespace (unshare -n) whose main routing table holds as many routes as
   the largest vmhVmTable walked; the same snmpbulkwalk of IP-FORWARD-MIB's
   inetCidrRouteTable (11 columns), run in that namespace through nsenter,
   each walk right after one of the largest vmhVmTable's embedded walks, so
   that both see the same load (snmpd's cache of the table is filled by an
   untimed walk first).
   Without a network namespace (no CAP_SYS_ADMIN, or no iproute2), the
   whole tree snmpd serves natively is walked instead, and the results say
   so.

The VMs are shut-off domains of a test-driver node XML served by a private
libvirtd (so that libvirt's own domain objects are not in the daemon).

    /usr/bin/python3 bench/snmp_walk.py [ROWS ...] [--runs R] [--mem-rows M]
                                        [--quick] [--json FILE]
        (default ROWS 1000 10000, R 5, M 10000; quick: ROWS 300, R 2, M 1000)
Prints a markdown section on stdout (and the figures as JSON with --json).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import vmhtest  # noqa: E402
from vmhtest import Libvirtd, Vmhealthd  # noqa: E402
from test_snmp import Snmpd, TOOLS, VM_ENTRY, config  # noqa: E402
import benchlib  # noqa: E402

VM_COLUMNS = 9
INET_CIDR_ROUTE_ENTRY = ".1.3.6.1.2.1.4.24.7.1"  # IP-FORWARD-MIB::inetCidrRouteEntry
INET_CIDR_ROUTE_COLUMNS = 11


def node_xml(path, n):
    with open(path, "w") as f:
        f.write("<node><cpu><mhz>2000</mhz><model>x86</model><active>64</active><nodes>1</nodes>"
                "<sockets>1</sockets><cores>64</cores><threads>1</threads></cpu>"
                "<memory>1073741824</memory>\n")
        for i in range(n):
            f.write("<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>"
                    "<name>bench-vm-%05d</name><uuid>%s</uuid><memory>65536</memory>"
                    "<vcpu>1</vcpu><os><type>hvm</type></os>"
                    "<test:runstate>5</test:runstate></domain>\n"
                    % (i, uuid.UUID(int=(i * 0x9E3779B97F4A7C15 + 7) % (1 << 128), version=4)))
        f.write("</node>\n")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def walk(agent, reps, oid=VM_ENTRY, prefix=(), env=None):
    t0 = time.monotonic()
    r = subprocess.run([*prefix, "snmpbulkwalk", "-v2c", "-c", "public", "-On", "-Oq", "-t", "10",
                        "-Cr%d" % reps, agent, oid], env=env or TOOLS.env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dt = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return dt, r.stdout.count("\n")


def timed(agent, reps, varbinds, runs, **kw):
    """runs walks; the wall time of each, in s.  Each must return `varbinds`."""
    times = []
    for _ in range(runs):
        dt, n = walk(agent, reps, **kw)
        if n != varbinds:
            raise RuntimeError("walk returned %d varbinds, expected %d" % (n, varbinds))
        times.append(dt)
    return times


class NativeSnmpd:
    """net-snmp's snmpd serving what it serves natively, in a private network
    namespace whose routing table holds `routes` routes (so that
    inetCidrRouteTable has that many rows), on 127.0.0.1 of that namespace.
    Its configuration and persistent directory are in a temp dir.  Falls
    back to the host's namespace (and then the routes are not made) when a
    namespace cannot be created; `netns` says which."""

    def __init__(self, routes):
        self.routes = routes
        self.dir = tempfile.mkdtemp(prefix="vmh-bench-snmpd-")
        self.port = vmhtest.free_port("udp")
        self.env = dict(os.environ, SNMPCONFPATH=self.dir,
                        SNMP_PERSISTENT_DIR=os.path.join(self.dir, "persist"), MIBS="")
        with open(os.path.join(self.dir, "snmpd.conf"), "w") as f:
            f.write("rocommunity public 127.0.0.1\n")
        with open(os.path.join(self.dir, "routes"), "w") as f:
            for i in range(routes):
                f.write("route add 10.%d.%d.0/24 dev lo\n" % (i // 256 % 256, i % 256))
        self.proc = None
        self.netns = False

    def _snmpd(self):
        return ["snmpd", "-f", "-C", "-c", os.path.join(self.dir, "snmpd.conf"), "-Lf",
                os.path.join(self.dir, "snmpd.log"), "-I", "-smux", "-p",
                os.path.join(self.dir, "pid"), "udp:127.0.0.1:%d" % self.port]

    def start(self):
        probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
        self.netns = probe.returncode == 0 and shutil.which("ip") is not None
        if self.netns:
            # setpriv, unshare and sh each exec the next: proc.pid is snmpd's
            script = ('ip link set lo up && ip -batch "$1" && shift && exec "$@"')
            argv = ["setpriv", "--pdeathsig", "SIGKILL", "unshare", "-n", "sh", "-c", script,
                    "sh", os.path.join(self.dir, "routes")] + self._snmpd()
        else:
            argv = ["setpriv", "--pdeathsig", "SIGKILL"] + self._snmpd()
        self.proc = subprocess.Popen(argv, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
        vmhtest.wait_for(lambda: self._answers(), timeout=30, interval=0.1,
                         what="the native snmpd answering")
        return self

    @property
    def prefix(self):
        """What runs a tool inside snmpd's network namespace."""
        if not self.netns:
            return ()
        return ("nsenter", "--net=/proc/%d/ns/net" % self.proc.pid)

    @property
    def agent(self):
        return "127.0.0.1:%d" % self.port

    def _answers(self):
        if self.proc.poll() is not None:
            with open(os.path.join(self.dir, "snmpd.log"), errors="replace") as f:
                raise RuntimeError("snmpd exited:\n" + f.read()[-2000:])
        r = subprocess.run([*self.prefix, "snmpget", "-v2c", "-c", "public", "-t", "0.2", "-r",
                            "0", self.agent, ".1.3.6.1.2.1.1.3.0"], env=self.env,
                           capture_output=True)
        return r.returncode == 0

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
        return False


class Native:
    """The peer's walks, taken alternately with vmhealth's (walk_after())
    so that a change of load on the machine hits both alike."""

    def __init__(self, rows):
        self.snmpd = NativeSnmpd(rows)
        self.times = {10: [], 50: []}

    def start(self):
        s = self.snmpd.start()
        self.kw = dict(prefix=s.prefix, env=s.env)
        if s.netns:
            self.oid, self.table, self.columns = INET_CIDR_ROUTE_ENTRY, "inetCidrRouteTable", \
                INET_CIDR_ROUTE_COLUMNS
        else:
            self.oid, self.table, self.columns = \
                ".1", "everything snmpd serves (no network namespace)", None
        self.warm()
        return self

    def warm(self):
        """An untimed walk: snmpd (re)fills its cache of the table."""
        _, self.varbinds = walk(self.snmpd.agent, 50, oid=self.oid, **self.kw)

    def walk_after(self, reps):
        self.times[reps] += timed(self.snmpd.agent, reps, self.varbinds, 1, oid=self.oid,
                                  **self.kw)

    def close(self):
        self.snmpd.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
        return False


def daemon(lv_uri, rows, port=None, agentx=None):
    d = Vmhealthd(config(lv_uri, port=port, agentx=agentx), name="bench-snmp", debug=False,
                  ready_timeout=120)
    d.start()
    d.wait_log(r"host a: connected, %d domains" % rows, timeout=120)
    return d


def alternate(agent, reps, varbinds, runs, peer):
    """runs walks of vmhVmTable, each followed by one of the peer's (when
    there is a peer)."""
    times = []
    if peer:
        peer.warm()
    for _ in range(runs):
        times += timed(agent, reps, varbinds, 1)
        if peer:
            peer.walk_after(reps)
    return times


def main():
    ap = benchlib.add_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    ap.add_argument("rows", type=int, nargs="*", help="VMs walked (1000 10000; quick 300)")
    ap.add_argument("--runs", type=int, help="walks per figure (5; quick 2)")
    ap.add_argument("--mem-rows", type=int, help="VMs for the memory figure (10000; quick 1000)")
    a = ap.parse_args()
    sizes = a.rows or ([300] if a.quick else [1000, 10000])
    runs = a.runs or (2 if a.quick else 5)
    mem_rows = a.mem_rows or (1000 if a.quick else 10000)
    res = benchlib.Results("snmp_walk", a, {"rows": sizes, "runs": runs, "mem_rows": mem_rows})
    work = tempfile.mkdtemp(prefix="vmh-bench-snmp-")
    os.chmod(work, 0o755)  # libvirtd runs as nobody and reads the node XML
    walks = {}  # (rows, kind, reps) -> [s]
    mem = {}
    big = max(sizes)
    with Libvirtd("bench-snmp", idle_timeout=0) as lv, Native(big) as peer:
        for rows in sorted(set(sizes + [1, mem_rows])):
            path = os.path.join(work, "node-%d.xml" % rows)
            node_xml(path, rows)
            os.chmod(path, 0o644)
            port = vmhtest.free_port("udp")
            d = daemon(lv.uri_for(path), rows, port=port)
            try:
                agent = "127.0.0.1:%d" % port
                walk(agent, 50)  # warm: first snapshot view
                mem[rows] = rss_kib(d.pid)
                if rows in sizes:
                    for reps in (10, 50):
                        walks[rows, "embedded", reps] = alternate(
                            agent, reps, rows * VM_COLUMNS, runs, peer if rows == big else None)
            finally:
                d.close()
            if rows not in sizes:
                continue
            with Snmpd() as snmpd:
                d = daemon(lv.uri_for(path), rows, agentx=snmpd.socket)
                try:
                    agent = "127.0.0.1:%d" % snmpd.port
                    vmhtest.wait_for(lambda: walk(agent, 50)[1] == rows * VM_COLUMNS, timeout=30,
                                     what="subagent registered")
                    for reps in (10, 50):
                        walks[rows, "agentx", reps] = timed(agent, reps, rows * VM_COLUMNS, runs)
                finally:
                    d.close()
    subprocess.run(["rm", "-rf", work])

    kinds = {"embedded": "embedded", "agentx": "AgentX (snmpd)"}
    rows_out = []
    fig = {}
    for rows in sizes:
        for kind in ("embedded", "agentx"):
            for reps in (10, 50):
                g = None
                if rows == 10000 and kind == "embedded" and reps == 50:
                    g = benchlib.goal("median", "<=", 0.5)
                fig[rows, kind, reps] = res.figure(
                    "walk_%d_%s_r%d" % (rows, kind, reps),
                    "snmpbulkwalk -Cr%d of vmhVmTable, %d rows, %s" % (reps, rows, kinds[kind]),
                    "s", samples=walks[rows, kind, reps], goal=g, section="walk",
                    summary=reps == 50)
            t10, t50 = fig[rows, kind, 10]["median"], fig[rows, kind, 50]["median"]
            rows_out.append(["%d" % rows, kinds[kind], "%.3f s" % t10, "%.3f s" % t50,
                             "%.0fk" % (rows * VM_COLUMNS / t50 / 1000)])
        ratio = fig[rows, "agentx", 50]["median"] / fig[rows, "embedded", 50]["median"]
        res.figure("agentx_ratio_%d" % rows, "AgentX walk time ÷ embedded, -Cr50, %d rows" % rows,
                   "×", value=ratio,
                   goal=benchlib.goal("value", "<=", 3) if rows == 10000 else None,
                   section="walk")
    res.table(["rows", "agent", "snmpbulkwalk -Cr10 (median)", "-Cr50 (median)",
               "varbinds/s (-Cr50)"], rows_out,
              title="snmpbulkwalk of vmhVmTable (9 columns), median of %d runs" % runs)
    per_row = (mem[mem_rows] - mem[1]) * 1024.0 / (mem_rows - 1)
    res.figure("rss_per_vm", "daemon RSS per VM watched (%d VMs minus 1)" % mem_rows, "bytes",
               value=per_row, section="memory")
    res.text("Daemon RSS: %.1f MiB with 1 VM, %.1f MiB with %d VMs: %.0f bytes per VM "
             "(engine state, snapshot and its strings; the MIB keeps no copy)."
             % (mem[1] / 1024.0, mem[mem_rows] / 1024.0, mem_rows, per_row))

    # the peer, side by side
    vb = peer.varbinds
    rate = {}
    for reps in (10, 50):
        f = res.figure("snmpd_native_r%d" % reps, "snmpbulkwalk -Cr%d of snmpd's %s, %d varbinds"
                       % (reps, peer.table, vb), "s", samples=peer.times[reps],
                       section="peer", summary=reps == 50)
        rate["snmpd", reps] = vb / f["median"]
        for kind in ("embedded", "agentx"):
            rate[kind, reps] = big * VM_COLUMNS / fig[big, kind, reps]["median"]
    res.figure("peer_ratio_embedded", "embedded walk rate ÷ snmpd's native walk rate "
               "(varbinds/s, -Cr50, %d rows)" % big, "×",
               value=rate["embedded", 50] / rate["snmpd", 50],
               goal=benchlib.goal("value", ">=", 1) if big == 10000 else None, section="peer")
    res.figure("peer_ratio_agentx", "AgentX walk rate ÷ snmpd's native walk rate "
               "(varbinds/s, -Cr50, %d rows)" % big, "×",
               value=rate["agentx", 50] / rate["snmpd", 50], section="peer")
    peer_rows = []
    cols = peer.columns
    for who, table, n_vb, n_rows, ncols in (
            ("snmpd %s, native" % version("snmpd"), peer.table, vb,
             vb // cols if cols else None, cols),
            ("vmhealthd, embedded", "vmhVmTable", big * VM_COLUMNS, big, VM_COLUMNS),
            ("vmhealthd, AgentX subagent of snmpd", "vmhVmTable", big * VM_COLUMNS, big,
             VM_COLUMNS)):
        key = "snmpd" if who.startswith("snmpd") else (
            "embedded" if "embedded" in who else "agentx")
        cells = [who, table, "%d" % n_rows if n_rows else "—", "%d" % ncols if ncols else "—",
                 "%d" % n_vb]
        for reps in (10, 50):
            cells.append("%.0fk" % (rate[key, reps] / 1000))
        if n_rows:
            cells.append("%.0fk" % (rate[key, 50] / ncols / 1000))
        else:
            cells.append("—")
        cells.append("%.2f×" % (rate[key, 50] / rate["snmpd", 50]))
        peer_rows.append(cells)
    res.table(["agent", "table", "rows", "columns", "varbinds", "varbinds/s -Cr10",
               "varbinds/s -Cr50", "rows/s -Cr50", "rate ÷ snmpd (-Cr50)"], peer_rows,
              title="Side by side: net-snmp's snmpd walking a native table", peer=True)
    if not peer.snmpd.netns:
        res.text("**No network namespace could be created here**, so snmpd could not be given "
                 "%d routes: the snmpd row is a walk of everything it serves natively on this "
                 "machine (%d varbinds), not a table of comparable size." % (big, vb), peer=True)
    res.write()


def version(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True,
                       text=True)
    return r.stdout.split("+")[0] if r.returncode == 0 else ""


if __name__ == "__main__":
    try:
        main()
    finally:
        TOOLS.close()
