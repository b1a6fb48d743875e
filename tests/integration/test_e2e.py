#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The seed's method end to end, through every real peer at once: a host's
sysfs temperature crosses its threshold; its VNF manager hears vm-abnormal
over NETCONF (ncclient) with every leaf, the NOC's snmptrapd gets
vmhVmAbnormal; the manager finishes its preprocessing early and answers
migration-ready, and the VM is cold-migrated at once (placement checked
through the test's own libvirt connections); a fault that clears in the
window cancels and says so; an operator's migrate-vm to a named host is
checked; other monitors feed faults in with report-fault."""
import os
import shutil
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

import libvirt
from ncclient.operations import RPCError
from ncclient.xml_ import to_ele

import vmhtest
from vmhtest import Libvirtd, Vmhealthd, VMH_NS, VHA_NS
import test_netconf
from test_netconf import Keys, connect
import test_snmp
from test_snmp import SnmpTrapd, ROOT, TRAP_OID

NOTIF_OBJ = ROOT + ".1.4.%d.0"
ABNORMAL, STARTED, COMPLETED, FAILED, CLEARED = (ROOT + ".0.%d" % i for i in range(1, 6))
UUID_1 = "e2e00000-0000-4000-8000-000000000001"
UUID_2 = "e2e00000-0000-4000-8000-000000000002"


def domain_xml(name, uuid, manager):
    return ("<domain type='test'><name>%s</name><uuid>%s</uuid>"
            "<memory unit='MiB'>128</memory><vcpu>1</vcpu><os><type>hvm</type></os>"
            "<metadata><vmh:assignment xmlns:vmh='%s'><vmh:vnf-manager>%s</vmh:vnf-manager>"
            "</vmh:assignment></metadata></domain>" % (name, uuid, VMH_NS, manager))


def notif(m, kind, timeout=10):
    """The next notification of that kind, as {leaf: text}."""
    end = time.monotonic() + timeout * vmhtest.SLOWDOWN
    while time.monotonic() < end:
        n = m.take_notification(timeout=0.5)
        if n is None:
            continue
        root = ET.fromstring(n.notification_xml.encode())
        for ev in root:
            if ev.tag == "{%s}%s" % (VMH_NS, kind):
                return {c.tag.split("}")[1]: c.text for c in ev}
    raise AssertionError("no %s notification" % kind)


def rpc(name, **leaves):
    body = "".join("<%s>%s</%s>" % (k.replace("_", "-"), v, k.replace("_", "-"))
                   for k, v in leaves.items())
    return to_ele('<%s xmlns="%s">%s</%s>' % (name, VMH_NS, body, name))


def where(conns, uuid):
    found = {}
    for name, c in conns.items():
        try:
            found[name] = bool(c.lookupByUUIDString(uuid).isActive())
        except libvirt.libvirtError:
            pass
    return found


class EndToEnd(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vmh-e2e-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.keys = Keys()
        self.addCleanup(self.keys.close)
        self.lv = {}
        for h in ("a", "b", "c"):
            lv = Libvirtd("e2e-" + h)
            self.addCleanup(lv.close)
            lv.start()
            c = lv.conn()
            try:
                d = c.lookupByName("test")
                d.destroy()
                d.undefine()
            except libvirt.libvirtError:
                pass
            self.lv[h] = (lv, c)
        self.ca = self.lv["a"][1]
        self.conns = {h: c for h, (lv, c) in self.lv.items()}
        hw = os.path.join(self.tmp, "sysfs-a/sys/class/hwmon/hwmon0")
        os.makedirs(hw)
        for name, value in (("name", "coretemp"), ("temp1_label", "Package id 0"),
                            ("temp1_max", "80000"), ("temp1_crit", "95000"),
                            ("temp1_input", "45000")):
            with open(os.path.join(hw, name), "w") as f:
                f.write(value + "\n")
        self.temp = os.path.join(hw, "temp1_input")
        self.trapd = SnmpTrapd()
        self.addCleanup(self.trapd.close)
        self.trapd.start()
        self.ssh_port = vmhtest.free_port()

    def set_temp(self, milli):
        with open(self.temp + ".new", "w") as f:
            f.write("%d\n" % milli)
        os.rename(self.temp + ".new", self.temp)

    def config(self):
        hosts = ""
        for h, extra in (("a", "<migration-target>false</migration-target>"
                               "<sysfs-root>%s/sysfs-a</sysfs-root>" % self.tmp),
                         ("b", "<sysfs-root>/nonexistent-b</sysfs-root>"),
                         ("c", "<sysfs-root>/nonexistent-c</sysfs-root>"
                               "<maintenance>true</maintenance>")):
            hosts += ("<host><name>%s</name><uri>%s</uri><shared-storage>true</shared-storage>"
                      "%s</host>" % (h, self.lv[h][0].uri, extra))
        vh = ("<settings><default-preprocessing-time>600</default-preprocessing-time>"
              "<poll-interval>100</poll-interval></settings>" + hosts
              + "<vnf-manager><name>m1</name><preprocessing-time>300</preprocessing-time>"
                "<user>vnfm</user></vnf-manager>"
              + "<vnf-manager><name>m2</name><user>other</user></vnf-manager>")
        snmp = ("<snmp><target><name>noc</name><address>127.0.0.1</address><port>%d</port>"
                "<version>v2c</version><community>traps</community></target></snmp>"
                % self.trapd.port)
        netconf = test_netconf.netconf_xml(self.keys, self.ssh_port)
        return ('<vm-health xmlns="%s">%s</vm-health>' % (VMH_NS, vh)
                + '<agent xmlns="%s"><state-dir>%s/state</state-dir>%s%s</agent>'
                % (VHA_NS, self.tmp, netconf, snmp))

    def traps_of(self, oid, uuid):
        return [vbs for _, vbs in self.trapd.notifications()
                if vbs.get(TRAP_OID) == oid and vbs.get(NOTIF_OBJ % 1) == uuid]

    def test_fault_notified_everywhere_ready_migrates_at_once(self):
        self.ca.defineXML(domain_xml("ims-1", UUID_1, "m1")).create()
        self.ca.defineXML(domain_xml("epc-1", UUID_2, "m2")).create()
        with Vmhealthd(self.config()) as d:
            d.wait_log(r"host a: connected, 2 domains")
            vnfm = connect(self.ssh_port, "vnfm", key=self.keys.vnfm_key)
            vnfm.create_subscription(stream_name="NETCONF")
            self.set_temp(85500)

            n = notif(vnfm, "vm-abnormal")
            self.assertEqual(n["vm-uuid"], UUID_1)  # m2's VM is not m1's business
            self.assertEqual((n["vm-name"], n["host"], n["severity"]), ("ims-1", "a", "major"))
            self.assertEqual(n["cause"].split(":")[-1], "high-temperature")
            self.assertEqual(n["preprocessing-time"], "300")
            self.assertTrue(n["migration-deadline"] and n["fault-id"])

            self.trapd.wait_for(lambda _: self.traps_of(ABNORMAL, UUID_1)
                                and self.traps_of(ABNORMAL, UUID_2), what="vmhVmAbnormal x2")
            t = self.traps_of(ABNORMAL, UUID_1)[0]
            self.assertEqual(t[NOTIF_OBJ % 2], "ims-1")
            self.assertEqual(t[NOTIF_OBJ % 3], "a")
            self.assertIn("1", t[NOTIF_OBJ % 4])    # highTemperature(1)
            self.assertIn("2", t[NOTIF_OBJ % 5])    # major(2)
            self.assertIn("300", t[NOTIF_OBJ % 6])

            # The manager's preprocessing is done long before the 300 s.
            t0 = time.monotonic()
            self.assertTrue(vnfm.dispatch(rpc("migration-ready", vm_uuid=UUID_1)).ok)
            started = notif(vnfm, "vm-migration-started")
            self.assertEqual((started["vm-uuid"], started["source-host"], started["target-host"]),
                             (UUID_1, "a", "b"))  # c is in maintenance
            done = notif(vnfm, "vm-migration-completed")
            self.assertLess(time.monotonic() - t0, 30)
            self.assertEqual(done["target-host"], "b")
            self.assertEqual(where(self.conns, UUID_1), {"b": True})
            self.assertEqual(where(self.conns, UUID_2), {"a": True})  # still in its window
            self.trapd.wait_for(lambda _: self.traps_of(COMPLETED, UUID_1),
                                what="vmhVmMigrationCompleted")

            # Not its VM: refused, nothing moves.
            with self.assertRaises(RPCError) as e:
                vnfm.dispatch(rpc("migration-ready", vm_uuid=UUID_2))
            self.assertEqual(e.exception.tag, "access-denied")
            self.assertEqual(where(self.conns, UUID_2), {"a": True})
            vnfm.close_session()

    def test_cooling_in_the_window_cancels_and_says_so(self):
        self.ca.defineXML(domain_xml("ims-1", UUID_1, "m1")).create()
        with Vmhealthd(self.config()) as d:
            d.wait_log(r"host a: connected, 1 domains")
            vnfm = connect(self.ssh_port, "vnfm", key=self.keys.vnfm_key)
            vnfm.create_subscription(stream_name="NETCONF")
            self.set_temp(85500)
            fault = notif(vnfm, "vm-abnormal")["fault-id"]
            self.set_temp(70000)  # below max - hysteresis
            cleared = notif(vnfm, "fault-cleared")
            self.assertEqual((cleared["fault-id"], cleared["vm-uuid"],
                              cleared["migration-cancelled"]), (fault, UUID_1, "true"))
            self.trapd.wait_for(lambda _: self.traps_of(CLEARED, UUID_1), what="vmhFaultCleared")
            self.assertIn("1", self.traps_of(CLEARED, UUID_1)[0][NOTIF_OBJ % 13])  # true(1)
            self.assertEqual(where(self.conns, UUID_1), {"a": True})
            vnfm.close_session()

    def test_operator_migrate_vm_to_a_named_host(self):
        self.ca.defineXML(domain_xml("ims-1", UUID_1, "m1")).create()
        with Vmhealthd(self.config()) as d:
            d.wait_log(r"host a: connected, 1 domains")
            admin = connect(self.ssh_port, "admin", key=self.keys.admin_key)
            admin.create_subscription(stream_name="NETCONF")
            with self.assertRaises(RPCError) as e:  # c is in maintenance
                admin.dispatch(rpc("migrate-vm", vm_uuid=UUID_1, target_host="c"))
            self.assertIn("maintenance", e.exception.message)
            self.assertEqual(where(self.conns, UUID_1), {"a": True})
            self.assertTrue(admin.dispatch(rpc("migrate-vm", vm_uuid=UUID_1,
                                               target_host="b")).ok)
            self.assertEqual(notif(admin, "vm-migration-completed")["target-host"], "b")
            self.assertEqual(where(self.conns, UUID_1), {"b": True})
            admin.close_session()

    def test_report_fault_from_another_monitor(self):
        self.ca.defineXML(domain_xml("ims-1", UUID_1, "m1")).create()
        with Vmhealthd(self.config()) as d:
            d.wait_log(r"host a: connected, 1 domains")
            admin = connect(self.ssh_port, "admin", key=self.keys.admin_key)
            vnfm = connect(self.ssh_port, "vnfm", key=self.keys.vnfm_key)
            vnfm.create_subscription(stream_name="NETCONF")
            reply = admin.dispatch(rpc("report-fault", host="a", severity="critical",
                                       description="IPMI: PSU 2 failed"))
            fid = ET.fromstring(reply.xml.encode()).find(".//{%s}fault-id" % VMH_NS).text
            n = notif(vnfm, "vm-abnormal")
            self.assertEqual((n["fault-id"], n["severity"], n["cause"].split(":")[-1]),
                             (fid, "critical", "external"))
            self.assertTrue(admin.dispatch(rpc("clear-fault", fault_id=fid)).ok)
            self.assertEqual(notif(vnfm, "fault-cleared")["fault-id"], fid)
            admin.close_session()
            vnfm.close_session()


if __name__ == "__main__":
    vmhtest.main()
