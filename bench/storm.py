#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""A host fault with N VMs (default 1000): time from the sysfs change to the
last vm-abnormal received by an ncclient subscriber (SSH, TICK = 0.001) and
to the last vmhVmAbnormal logged by snmptrapd (v2c traps).  The host is
libvirt's in-process test driver with N small domains; poll-interval 100 ms.

    /usr/bin/python3 bench/storm.py [N] [--quick] [--json FILE]   (quick: 100 VMs)
Prints a markdown section on stdout (and the figures as JSON with --json).
"""
import argparse
import os
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import vmhtest  # noqa: E402
from vmhtest import Vmhealthd, VMH_NS, VHA_NS  # noqa: E402
import test_netconf  # noqa: E402
from test_snmp import SnmpTrapd  # noqa: E402
import ncclient.transport.ssh  # noqa: E402
import benchlib  # noqa: E402

ncclient.transport.ssh.TICK = 0.001


def main():
    ap = benchlib.add_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    ap.add_argument("n", type=int, nargs="?", help="VMs on the faulty host (1000; quick 100)")
    a = ap.parse_args()
    n = a.n or (100 if a.quick else 1000)
    res = benchlib.Results("storm", a, {"vms": n})
    tmp = tempfile.mkdtemp(prefix="vmh-bench-storm-")
    keys = test_netconf.Keys()
    trapd = SnmpTrapd().start()
    try:
        benchlib.write_test_node(os.path.join(tmp, "a.xml"), n)
        hw = os.path.join(tmp, "sysfs/sys/class/hwmon/hwmon0")
        os.makedirs(hw)
        for name, value in (("temp1_input", "45000"), ("temp1_max", "80000")):
            with open(os.path.join(hw, name), "w") as f:
                f.write(value + "\n")
        port = vmhtest.free_port()
        cfg = ('<vm-health xmlns="%s"><settings><default-preprocessing-time>600'
               '</default-preprocessing-time><poll-interval>100</poll-interval></settings>'
               '<host><name>a</name><uri>test://%s/a.xml</uri><sysfs-root>%s/sysfs'
               '</sysfs-root></host></vm-health>'
               '<agent xmlns="%s"><state-dir>%s/state</state-dir>%s<snmp><target><name>noc'
               '</name><address>127.0.0.1</address><port>%d</port><version>v2c</version>'
               '<community>traps</community></target></snmp></agent>'
               % (VMH_NS, tmp, tmp, VHA_NS, tmp, test_netconf.netconf_xml(keys, port),
                  trapd.port))
        with Vmhealthd(cfg, debug=False, ready_timeout=60) as d:
            m = test_netconf.connect(port, key=keys.admin_key, timeout=60)
            m.create_subscription(stream_name="NETCONF")
            got = {"nc": None, "traps": None}

            def traps():
                while got["traps"] is None:
                    if trapd.text().count("TRAP ") >= n:
                        got["traps"] = time.monotonic()
                    time.sleep(0.005)
            th = threading.Thread(target=traps, daemon=True)
            th.start()
            path = os.path.join(hw, "temp1_input")
            with open(path + ".new", "w") as f:
                f.write("90000\n")
            t0 = time.monotonic()
            os.rename(path + ".new", path)
            count = 0
            while count < n:
                if m.take_notification(timeout=30) is None:
                    raise SystemExit("only %d notifications" % count)
                count += 1
            got["nc"] = time.monotonic()
            th.join(60)
            m.close_session()
            line = d.wait_log(r"VMs notified")
    finally:
        trapd.close()
        keys.close()
        shutil.rmtree(tmp, True)
    if got["traps"] is None:
        raise SystemExit("snmptrapd did not log %d traps" % n)
    nc = res.figure("netconf", "sysfs change → last of %d `vm-abnormal` at an ncclient "
                    "subscriber" % n, "s", value=got["nc"] - t0,
                    goal=benchlib.goal("value", "<=", 1))
    tr = res.figure("traps", "sysfs change → last of %d `vmhVmAbnormal` logged by snmptrapd" % n,
                    "s", value=got["traps"] - t0, goal=benchlib.goal("value", "<=", 1))
    res.table(["figure", "goal", "measured"], [
        [nc["label"], "≤ 1 s", "%.2f s" % nc["value"]],
        [tr["label"], "≤ 1 s", "%.2f s" % tr["value"]],
    ], title="A host fault with %d VMs" % n)
    res.text("Both include up to one poll interval (100 ms) before the fault is seen. "
             "Daemon log: `%s`" % line.split("] ", 1)[-1])
    res.write()


if __name__ == "__main__":
    main()
