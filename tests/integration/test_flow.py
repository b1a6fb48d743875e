#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The whole fault-to-migration flow on the real daemon: a host's sysfs
temperature crosses its threshold, the affected VMs get their windows, and
when the windows are over they are cold-migrated to the other host.  Two
private libvirtd daemons serve the test driver; placement is checked through
the test's own libvirt connections, not only through the agent's state."""
import os
import shutil
import tempfile
import time
import unittest

import libvirt

import vmhtest
from vmhtest import Libvirtd, Vmhealthd, VMH_NS

VH = '<vm-health xmlns="%s">%%s</vm-health>' % VMH_NS


def domain_xml(name, uuid, manager=None, ppt=None):
    meta = ""
    if manager:
        meta = ("<metadata><vmh:assignment xmlns:vmh='%s'><vmh:vnf-manager>%s"
                "</vmh:vnf-manager>%s</vmh:assignment></metadata>"
                % (VMH_NS, manager,
                   "<vmh:preprocessing-time>%d</vmh:preprocessing-time>" % ppt
                   if ppt is not None else ""))
    return ("<domain type='test'><name>%s</name><uuid>%s</uuid>"
            "<memory unit='MiB'>256</memory><vcpu>1</vcpu><os><type>hvm</type></os>%s"
            "</domain>" % (name, uuid, meta))


def sysfs_tree(root, temp_milli=45000):
    hw = os.path.join(root, "sys/class/hwmon/hwmon0")
    os.makedirs(hw, exist_ok=True)
    for name, value in (("name", "coretemp"), ("temp1_label", "Package id 0"),
                        ("temp1_max", "80000"), ("temp1_crit", "95000"),
                        ("temp1_input", str(temp_milli))):
        with open(os.path.join(hw, name), "w") as f:
            f.write(value + "\n")
    return os.path.join(hw, "temp1_input")


def set_temp(path, milli):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write("%d\n" % milli)
    os.rename(tmp, path)


def where(conns, uuid):
    """{host: running} for every host that has the domain defined."""
    found = {}
    for name, c in conns.items():
        try:
            d = c.lookupByUUIDString(uuid)
            found[name] = bool(d.isActive())
        except libvirt.libvirtError:
            pass
    return found


class Flow(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vmh-flow-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.lv_a = Libvirtd("flow-a")
        self.lv_b = Libvirtd("flow-b")
        self.addCleanup(self.lv_a.close)
        self.addCleanup(self.lv_b.close)
        self.lv_a.start()
        self.lv_b.start()
        self.ca = self.lv_a.conn()
        self.cb = self.lv_b.conn()
        for c in (self.ca, self.cb):
            try:  # the built-in domain would only be in the way
                d = c.lookupByName("test")
                d.destroy()
                d.undefine()
            except libvirt.libvirtError:
                pass
        self.temp_a = sysfs_tree(os.path.join(self.tmp, "sysfs-a"))
        sysfs_tree(os.path.join(self.tmp, "sysfs-b"))

    def config(self, default_ppt=2, extra=""):
        return VH % (
            "<settings><default-preprocessing-time>%d</default-preprocessing-time>"
            "<poll-interval>100</poll-interval><shutdown-timeout>2</shutdown-timeout>"
            "</settings>" % default_ppt
            + "<host><name>a</name><uri>%s</uri><sysfs-root>%s</sysfs-root>"
              "<migration-target>false</migration-target><shared-storage>true</shared-storage>"
              "</host>" % (self.lv_a.uri, os.path.join(self.tmp, "sysfs-a"))
            + "<host><name>b</name><uri>%s</uri><sysfs-root>%s</sysfs-root>"
              "<shared-storage>true</shared-storage></host>"
              % (self.lv_b.uri, os.path.join(self.tmp, "sysfs-b"))
            + "<vnf-manager><name>vnfm-ims</name><preprocessing-time>3</preprocessing-time>"
              "</vnf-manager>"
            + extra)

    def define(self, name, uuid, running=True, **meta):
        d = self.ca.defineXML(domain_xml(name, uuid, **meta))
        if running:
            d.create()
        return d

    def test_hot_host_is_evacuated_after_each_window(self):
        u1 = "11111111-0000-4000-8000-000000000001"  # vnfm-ims: 3 s
        u2 = "11111111-0000-4000-8000-000000000002"  # metadata override: 1 s
        u3 = "11111111-0000-4000-8000-000000000003"  # shut off, default 2 s
        self.define("ims-1", u1, manager="vnfm-ims")
        self.define("ims-2", u2, manager="vnfm-ims", ppt=1)
        self.define("spare", u3, running=False)
        with Vmhealthd(self.config()) as d:
            d.wait_log(r"host a: connected, 3 domains")
            raised = time.monotonic()
            set_temp(self.temp_a, 85000)
            d.wait_log(r"fault \d+ high-temperature \(major\) on a: 3 VMs notified")
            state = d.dump_state()
            vms = {v["uuid"]: v for v in state["nfv-vm-health:vm-health"]["vm"]}
            self.assertEqual(vms[u1]["migration"]["state"], "pending")
            self.assertIn("deadline", vms[u1]["migration"])

            d.wait_log(r"vm ims-2 .*migrated from a to b", timeout=20)
            first = time.monotonic() - raised
            d.wait_log(r"vm spare .*migrated from a to b", timeout=20)
            d.wait_log(r"vm ims-1 .*migrated from a to b", timeout=20)
            last = time.monotonic() - raised
            # Each waited its own window, the longest (3 s) last.
            self.assertGreaterEqual(first, 1.0)
            self.assertGreaterEqual(last, 3.0)

            conns = {"a": self.ca, "b": self.cb}
            self.assertEqual(where(conns, u1), {"b": True})
            self.assertEqual(where(conns, u2), {"b": True})
            self.assertEqual(where(conns, u3), {"b": False})  # shut off stays off

            state = d.dump_state()
            vh = state["nfv-vm-health:vm-health"]
            vms = {v["uuid"]: v for v in vh["vm"]}
            for u in (u1, u2, u3):
                self.assertEqual(vms[u]["host"], "b")
                self.assertEqual(vms[u]["migration"]["state"], "completed")
                self.assertEqual(vms[u]["migration"]["target-host"], "b")
            self.assertEqual(int(vh["statistics"]["migrations-completed"]), 3)
            self.assertEqual(int(vh["statistics"]["migrations-failed"]), 0)

    def test_concurrency_limit_one_migration_at_a_time(self):
        uuids = ["66666666-0000-4000-8000-00000000000%d" % i for i in range(1, 6)]
        for i, u in enumerate(uuids):
            self.define("vm-%d" % i, u, manager="vnfm-ims", ppt=0)
        cfg = self.config().replace(
            "<shutdown-timeout>2</shutdown-timeout>",
            "<shutdown-timeout>2</shutdown-timeout>"
            "<max-concurrent-migrations>1</max-concurrent-migrations>")
        with Vmhealthd(cfg) as d:
            d.wait_log(r"host a: connected, 5 domains")
            set_temp(self.temp_a, 85000)
            vmhtest.wait_for(lambda: d.log_text().count("[core] vm vm-") and len(
                [l for l in d.log_text().splitlines()
                 if "[core] vm vm-" in l and "migrated from a to b" in l]) == 5,
                timeout=30, what="five migrations")
            # With one slot, each migration ends before the next begins.
            running = 0
            for line in d.log_text().splitlines():
                if "[core] vm vm-" in line and "migrating from a to b" in line:
                    running += 1
                    self.assertEqual(running, 1, line)
                elif "[core] vm vm-" in line and "migrated from a to b" in line:
                    running -= 1
            conns = {"a": self.ca, "b": self.cb}
            for u in uuids:
                self.assertEqual(where(conns, u), {"b": True})

    def test_cooling_down_in_the_window_cancels(self):
        u1 = "22222222-0000-4000-8000-000000000001"
        self.define("ims-1", u1, manager="vnfm-ims")
        with Vmhealthd(self.config(default_ppt=30,
                                   extra="")) as d:
            d.wait_log(r"host a: connected, 1 domains")
            set_temp(self.temp_a, 85000)
            d.wait_log(r"high-temperature \(major\) on a: 1 VMs notified")
            set_temp(self.temp_a, 50000)
            d.wait_log(r"pending migration cancelled")
            time.sleep(3.5)  # past the 3 s window: nothing may move now
            self.assertEqual(where({"a": self.ca, "b": self.cb}, u1), {"a": True})
            vms = {v["uuid"]: v for v in
                   d.dump_state()["nfv-vm-health:vm-health"]["vm"]}
            self.assertEqual(vms[u1]["migration"]["state"], "cancelled")

    def test_no_target_is_reported_and_the_vm_stays(self):
        u1 = "33333333-0000-4000-8000-000000000001"
        self.define("ims-1", u1, manager="vnfm-ims", ppt=0)
        cfg = self.config()
        i = cfg.rindex("<shared-storage>true</shared-storage></host>")  # host b's
        cfg = cfg[:i] + "<maintenance>true</maintenance>" + cfg[i:]
        with Vmhealthd(cfg) as d:
            d.wait_log(r"host a: connected, 1 domains")
            set_temp(self.temp_a, 85000)
            d.wait_log(r"ims-1 .*no target host.*retried when a target appears")
            self.assertEqual(where({"a": self.ca, "b": self.cb}, u1), {"a": True})
            vms = {v["uuid"]: v for v in
                   d.dump_state()["nfv-vm-health:vm-health"]["vm"]}
            self.assertEqual(vms[u1]["migration"]["state"], "failed")
            self.assertIn("no target host", vms[u1]["migration"]["last-error"])

    def test_dead_host_is_evacuated_from_its_last_definition(self):
        u1 = "55555555-0000-4000-8000-000000000001"
        self.define("ims-1", u1, manager="vnfm-ims", ppt=1)
        with Vmhealthd(self.config()) as d:
            d.wait_log(r"host a: connected, 1 domains")
            self.lv_a.kill()  # the hypervisor host dies
            d.wait_log(r"host-unreachable \(critical\) on a: 1 VMs notified")
            d.wait_log(r"evacuating from its last known definition", timeout=15)
            d.wait_log(r"vm ims-1 .*migrated from a to b", timeout=15)
            self.assertEqual(where({"b": self.cb}, u1), {"b": True})
            vms = {v["uuid"]: v for v in d.dump_state()["nfv-vm-health:vm-health"]["vm"]}
            self.assertEqual(vms[u1]["host"], "b")
            self.assertEqual(vms[u1]["health"], "normal")
            # The dead host comes back with its old (shut-off) definition of
            # the VM: the stale copy goes, its disks stay, the VM lives on b.
            self.lv_a.start()
            ca = self.lv_a.conn()
            ca.defineXML(domain_xml("ims-1", u1, manager="vnfm-ims", ppt=1))
            d.wait_log(r"stale copy on a undefined", timeout=20)
            self.assertEqual(where({"a": ca, "b": self.cb}, u1), {"b": True})

    def test_kill9_in_the_window_keeps_the_deadline(self):
        u1 = "44444444-0000-4000-8000-000000000001"
        self.define("ims-1", u1, manager="vnfm-ims", ppt=4)
        with Vmhealthd(self.config()) as d:
            d.wait_log(r"host a: connected, 1 domains")
            set_temp(self.temp_a, 85000)
            d.wait_log(r"1 VMs notified")
            deadline = {v["uuid"]: v for v in d.dump_state()["nfv-vm-health:vm-health"]["vm"]}[
                u1]["migration"]["deadline"]
            d.kill9()
            d.start()
            d.wait_log(r"pending migration resumed from the journal")
            vms = {v["uuid"]: v for v in d.dump_state()["nfv-vm-health:vm-health"]["vm"]}
            self.assertEqual(vms[u1]["migration"]["deadline"], deadline)
            d.wait_log(r"vm ims-1 .*migrated from a to b", timeout=20)
            self.assertEqual(where({"a": self.ca, "b": self.cb}, u1), {"b": True})
            # Migrated once: one start, one completion across both runs.
            self.assertEqual(len([l for l in d.log_text(start=0).splitlines()                                  if "[core] vm ims-1" in l and "migrated from a to b" in l]),
                             1)


if __name__ == "__main__":
    vmhtest.main()
