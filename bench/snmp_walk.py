#!/usr/bin/python3
"""SNMP walk cost and memory per row on the real daemon.

1. `snmpbulkwalk` of vmhVmTable (9 columns) at 1 000 and 10 000 VMs, with
   max-repetitions 10 (the tool's default) and 50, median of 5 runs (wall
   time of the tool, its start included; output to /dev/null):
   - embedded: the daemon's own master agent on 127.0.0.1;
   - AgentX: a private snmpd on 127.0.0.1, the daemon its subagent over a
     UNIX socket.
2. Memory per row: the daemon's RSS (VmRSS) watching 10 000 VMs minus
   watching 1 VM, over 9 999, after a full walk.

The VMs are shut-off domains of a test-driver node XML served by a private
libvirtd (so that libvirt's own domain objects are not in the daemon).

    /usr/bin/python3 bench/snmp_walk.py [ROWS ...]
Prints a markdown section on stdout.
"""
import os
import statistics
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

RUNS = 5


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


def walk(agent, reps):
    t0 = time.monotonic()
    r = subprocess.run(["snmpbulkwalk", "-v2c", "-c", "public", "-On", "-Oq", "-t", "10",
                        "-Cr%d" % reps, agent, VM_ENTRY], env=TOOLS.env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dt = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return dt, r.stdout.count("\n")


def timed(agent, reps, rows):
    times = []
    for _ in range(RUNS):
        dt, n = walk(agent, reps)
        if n != rows * 9:
            raise RuntimeError("walk returned %d varbinds, expected %d" % (n, rows * 9))
        times.append(dt)
    return statistics.median(times)


def daemon(lv_uri, rows, port=None, agentx=None):
    d = Vmhealthd(config(lv_uri, port=port, agentx=agentx), name="bench-snmp", debug=False,
                  ready_timeout=120)
    d.start()
    d.wait_log(r"host a: connected, %d domains" % rows, timeout=120)
    return d


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [1000, 10000]
    work = tempfile.mkdtemp(prefix="vmh-bench-snmp-")
    os.chmod(work, 0o755)  # libvirtd runs as nobody and reads the node XML
    results = []
    mem = {}
    with Libvirtd("bench-snmp", idle_timeout=0) as lv:
        for rows in sorted(set(sizes + [1, 10000])):
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
                    results.append((rows, "embedded", timed(agent, 10, rows),
                                    timed(agent, 50, rows)))
            finally:
                d.close()
            if rows not in sizes:
                continue
            with Snmpd() as snmpd:
                d = daemon(lv.uri_for(path), rows, agentx=snmpd.socket)
                try:
                    agent = "127.0.0.1:%d" % snmpd.port
                    vmhtest.wait_for(lambda: walk(agent, 50)[1] == rows * 9, timeout=30,
                                     what="subagent registered")
                    results.append((rows, "AgentX (snmpd)", timed(agent, 10, rows),
                                    timed(agent, 50, rows)))
                finally:
                    d.close()
    per_row = (mem[10000] - mem[1]) * 1024.0 / 9999

    print("### snmpbulkwalk of vmhVmTable (9 columns)\n")
    print("| rows | agent | snmpbulkwalk -Cr10 | -Cr50 | varbinds/s (-Cr50) |")
    print("| ---: | --- | ---: | ---: | ---: |")
    for rows, kind, t10, t50 in results:
        print("| %d | %s | %.3f s | %.3f s | %.0fk |"
              % (rows, kind, t10, t50, rows * 9 / t50 / 1000))
    print("\nDaemon RSS: %.1f MiB with 1 VM, %.1f MiB with 10 000 VMs: %.0f bytes per VM "
          "(engine state, snapshot and its strings; the MIB keeps no copy)."
          % (mem[1] / 1024.0, mem[10000] / 1024.0, per_row))
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    try:
        main()
    finally:
        TOOLS.close()
