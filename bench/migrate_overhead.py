#!/usr/bin/python3
"""The agent's own overhead per cold migration, beyond the libvirt calls.

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
     sockets).

  3. with --qemu: a real QEMU guest (TCG, 64 MiB, diskless, so it ignores
     ACPI and the 1 s graceful shutdown times out) between two qemu:///session
     daemons, 10 migrations.

    /usr/bin/python3 bench/migrate_overhead.py [N] [--qemu]   (default N = 200)
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import vmhtest  # noqa: E402

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


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100.0 * len(values)))]


def report(title, runs):
    total = [r["total_us"] / 1000.0 for r in runs]
    lv = [r["libvirt_us"] / 1000.0 for r in runs]
    own = [(r["total_us"] - r["libvirt_us"] - r["wait_us"]) / 1000.0 for r in runs]
    print("%s (%d migrations, %d libvirt calls each)"
          % (title, len(runs), statistics.median(r["libvirt_calls"] for r in runs)))
    wait = [r["wait_us"] / 1000.0 for r in runs]
    rows = [("total", total), ("libvirt calls", lv)]
    if max(wait) > 0:
        rows.append(("shutdown wait", wait))
    for name, v in rows + [("agent overhead", own)]:
        print("  %-15s median %7.3f ms  p90 %7.3f ms  max %7.3f ms"
              % (name, statistics.median(v), pct(v, 90), max(v)))


def qemu():
    import uuid
    from test_migrate_qemu import QEMU, DOMAIN as QDOMAIN, QemuLibvirtd
    with QemuLibvirtd("bench-qa") as a, QemuLibvirtd("bench-qb") as b:
        a.keeper.defineXML(QDOMAIN.format(name="bench-q", uuid=UUID, qemu=QEMU, disk="")).create()
        try:
            report("QEMU TCG guest, two qemu:///session daemons, native offline migration",
                   run(a.uri, b.uri, 10, "--timeout", "1"))
        finally:
            for lv in (a, b):
                for d in lv.keeper.listAllDomains():
                    if d.isActive():
                        d.destroy()


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 200
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "a.xml"), os.path.join(tmp, "b.xml")
        with open(src, "w") as f:
            f.write(NODE % DOMAIN)
        with open(dst, "w") as f:
            f.write(NODE % "")
        report("in-process test driver", run("test://" + src, "test://" + dst, n))
    with vmhtest.Libvirtd("bench-a") as a, vmhtest.Libvirtd("bench-b") as b:
        for lv in (a, b):
            t = lv.keeper.lookupByName("test")
            t.destroy()
            t.undefine()
        a.keeper.defineXML(DOMAIN).create()
        report("two libvirtd daemons (test driver, remote protocol)", run(a.uri, b.uri, n))
    if "--qemu" in sys.argv:
        qemu()


if __name__ == "__main__":
    main()
