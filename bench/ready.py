#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""migration-ready -> migration started, through the real daemon.

One host with N running domains on libvirt's test driver (in-process) and a
second, empty target host; every VM gets a 600 s window when the first host's
sysfs temperature crosses its maximum.  An ncclient session (TICK = 0.001)
subscribed to the NETCONF stream then sends migration-ready for each VM in
turn and measures:
  - RPC sent -> its <ok/> received;
  - RPC sent -> vm-migration-started notification received (the client's
    view, SSH both ways included);
  - the daemon's own time from the RPC's log line to "migrating from" (ms).

    /usr/bin/python3 bench/ready.py [N] [--quick] [--json FILE]   (default 50; quick 10)
Prints a markdown section on stdout (and the figures as JSON with --json).
"""
import argparse
import datetime
import os
import re
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import vmhtest  # noqa: E402
from vmhtest import Vmhealthd, VMH_NS  # noqa: E402
import test_netconf  # noqa: E402
import ncclient.transport.ssh  # noqa: E402
from ncclient.xml_ import to_ele  # noqa: E402
import benchlib  # noqa: E402

ncclient.transport.ssh.TICK = 0.001


def main():
    ap = benchlib.add_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    ap.add_argument("n", type=int, nargs="?", help="VMs, one migration-ready each (50; quick 10)")
    a = ap.parse_args()
    n = a.n or (10 if a.quick else 50)
    res = benchlib.Results("ready", a, {"vms": n})
    tmp = tempfile.mkdtemp(prefix="vmh-bench-ready-")
    keys = test_netconf.Keys()
    try:
        benchlib.write_test_node(os.path.join(tmp, "a.xml"), n, "vm-%03d")
        benchlib.write_test_node(os.path.join(tmp, "b.xml"), 0, "vm-%03d")
        hw = os.path.join(tmp, "sysfs-a/sys/class/hwmon/hwmon0")
        os.makedirs(hw)
        for name, value in (("temp1_input", "45000"), ("temp1_max", "80000")):
            with open(os.path.join(hw, name), "w") as f:
                f.write(value + "\n")
        port = vmhtest.free_port()
        vh = ("<settings><default-preprocessing-time>600</default-preprocessing-time>"
              "<poll-interval>100</poll-interval></settings>"
              "<host><name>a</name><uri>test://%s/a.xml</uri><sysfs-root>%s/sysfs-a"
              "</sysfs-root><migration-target>false</migration-target><shared-storage>true"
              "</shared-storage></host>"
              "<host><name>b</name><uri>test://%s/b.xml</uri><sysfs-root>/nonexistent"
              "</sysfs-root><shared-storage>true</shared-storage></host>" % (tmp, tmp, tmp))
        cfg = test_netconf.daemon_config(keys, port, os.path.join(tmp, "state"), vm_health=vh)
        with Vmhealthd(cfg, debug=False) as d:
            m = test_netconf.connect(port, key=keys.admin_key)
            m.create_subscription(stream_name="NETCONF")
            with open(os.path.join(hw, "temp1_input.new"), "w") as f:
                f.write("90000\n")
            os.rename(os.path.join(hw, "temp1_input.new"), os.path.join(hw, "temp1_input"))
            seen = 0
            while seen < n:  # drain the n vm-abnormal notifications
                if m.take_notification(timeout=10) is None:
                    raise SystemExit("vm-abnormal notifications missing")
                seen += 1
            rpc_ms, started_ms = [], []
            for i in range(n):
                uuid = "%08x-0000-4000-8000-%012x" % (i, i)
                t0 = time.perf_counter()
                reply = m.dispatch(to_ele(
                    '<migration-ready xmlns="%s"><vm-uuid>%s</vm-uuid></migration-ready>'
                    % (VMH_NS, uuid)))
                rpc_ms.append((time.perf_counter() - t0) * 1000)
                assert reply.ok, reply
                while True:
                    note = m.take_notification(timeout=10)
                    assert note is not None, "no vm-migration-started for %s" % uuid
                    if "vm-migration-started" in note.notification_xml and uuid in \
                            note.notification_xml:
                        started_ms.append((time.perf_counter() - t0) * 1000)
                        break
            m.close_session()
            log = d.log_text()
        engine_ms = []
        times = {}
        for line in log.splitlines():
            stamp = datetime.datetime.fromisoformat(line.split()[0]).timestamp() * 1000
            r = re.search(r"vm (\S+) \((\S+)\): migration-ready from its manager", line)
            if r:
                times[r.group(2)] = stamp
            s = re.search(r"vm (\S+) \((\S+)\): migrating from", line)
            if s and s.group(2) in times:
                engine_ms.append(stamp - times.pop(s.group(2)))
    finally:
        keys.close()
        shutil.rmtree(tmp, True)

    rpc = res.figure("rpc", "`migration-ready` sent → `<ok/>` received (ncclient, SSH)", "ms",
                     samples=rpc_ms)
    st = res.figure("started", "`migration-ready` sent → `vm-migration-started` received "
                    "(ncclient, SSH)", "ms", samples=started_ms,
                    goal=benchlib.goal("p99", "<=", 10))
    en = res.figure("engine", "daemon: `migration-ready` logged → migration started logged "
                    "(1 ms resolution)", "ms", samples=engine_ms)
    res.table(["figure", "p50", "p99", "goal"], [
        ["RPC sent → `<ok/>` received", "%.1f ms" % rpc["median"], "%.1f ms" % rpc["p99"], ""],
        ["RPC sent → `vm-migration-started` received", "%.1f ms" % st["median"],
         "%.1f ms" % st["p99"], "≤ 10 ms"],
        ["daemon: RPC logged → migration started logged (1 ms resolution)",
         "%.0f ms" % en["median"], "%.0f ms" % en["p99"], ""],
    ], title="migration-ready → migration started (n=%d, ncclient TICK=0.001, SSH)" % n)
    res.write()


if __name__ == "__main__":
    main()
