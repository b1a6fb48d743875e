#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The real vmhealthd: command line, configuration errors, readiness (log
line and systemd's READY=1), the libvirt inventory it discovers, lifecycle
changes made by another process, and a hypervisor that goes away and comes
back.  Peers: libvirt's test driver in-process and served by private
libvirtd daemons, python-libvirt as the other client, a real sd_notify
datagram socket."""
import os
import re
import signal
import socket
import subprocess
import tempfile
import unittest

import vmhtest
from vmhtest import Libvirtd, Vmhealthd, DEMO, LIBVIRT_FIXTURES, VMH_NS

VH = '<vm-health xmlns="%s">%%s</vm-health>' % VMH_NS


def host(name, uri, extra=""):
    return "<host><name>%s</name><uri>%s</uri>%s</host>" % (name, uri, extra)


def vms_by_name(state):
    return {v["name"]: v for v in state["nfv-vm-health:vm-health"].get("vm", [])}


def hosts_by_name(state):
    return {h["name"]: h for h in state["nfv-vm-health:vm-health"].get("host", [])}


class CommandLine(unittest.TestCase):
    def run_vmhealthd(self, *args):
        return subprocess.run([vmhtest.vmhealthd_binary(), *args], capture_output=True,
                              text=True, timeout=20)

    def test_version_and_help(self):
        r = self.run_vmhealthd("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^vmhealthd \d+\.\d+\.\d+")
        r = self.run_vmhealthd("--help")
        self.assertEqual(r.returncode, 0)
        for opt in ("--config", "--check-config", "--foreground", "--debug", "--version"):
            self.assertIn(opt, r.stdout)

    def test_help_and_man_page_list_the_same_options(self):
        r = self.run_vmhealthd("--help")
        helped = set(re.findall(r"--([a-z][a-z-]+)", r.stdout))
        with open(os.path.join(vmhtest.REPO, "docs", "vmhealthd.8")) as f:
            manned = set(re.findall(r"\\-\\-([a-z][a-z\\-]+)", f.read()))
        manned = {m.replace("\\-", "-") for m in manned}
        self.assertTrue(helped)
        self.assertEqual(helped, manned)

    def test_unknown_option_is_refused(self):
        r = self.run_vmhealthd("--frobnicate")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Usage", r.stderr)


class ConfigErrors(unittest.TestCase):
    """A bad file: non-zero exit, one line naming the node and the reason,
    and the daemon never starts."""

    CASES = {
        "malformed": (VH % "<host><name>a</name><uri>test:///default</uri>",
                      r"vmhealthd\.xml:\d+: .*tag mismatch"),
        "unknown-node": (VH % "<settings><colour>blue</colour></settings>",
                         r"/nfv-vm-health:vm-health/settings: .*\"colour\""),
        "wrong-type": (VH % "<settings><poll-interval>fast</poll-interval></settings>",
                       r"/nfv-vm-health:vm-health/settings/poll-interval: .*\"fast\""),
        "out-of-range": (VH % "<settings><poll-interval>1</poll-interval></settings>",
                         r"settings/poll-interval: .*range"),
        "missing-mandatory": (VH % "<host><name>a</name></host>",
                              r"/nfv-vm-health:vm-health/host/uri: .*[Mm]andatory"),
        "dangling-leafref": (VH % ("<vm-assignment><uuid>6f1c2d3e-0000-4000-8000-00000000000a"
                                   "</uuid><vnf-manager>nope</vnf-manager></vm-assignment>"),
                             r"vm-assignment\[uuid='6f1c2d3e-0000-4000-8000-00000000000a'\]"
                             r"/vnf-manager: .*\"nope\""),
        "agent-module": ('<agent xmlns="urn:vmhealth:vmhealth-agent"><netconf><ssh-endpoint>'
                         '<name>x</name><port>99999</port><host-key>/k</host-key>'
                         '</ssh-endpoint></netconf></agent>',
                         r"/vmhealth-agent:agent/netconf/ssh-endpoint\[name='x'\]/port"),
    }

    def test_each_bad_file_is_one_clear_error(self):
        for name, (text, pattern) in self.CASES.items():
            with self.subTest(case=name):
                d = Vmhealthd(text, name=name)
                try:
                    r = d.check_config()
                    self.assertNotEqual(r.returncode, 0)
                    lines = [l for l in r.stderr.splitlines() if l.strip()]
                    self.assertEqual(len(lines), 1, r.stderr)
                    self.assertRegex(lines[0], pattern)
                    # Started for real, it refuses the same way and exits.
                    d.start(wait_ready=False)
                    self.assertNotEqual(d.wait_exit(10), 0)
                    self.assertRegex(d.log_text(), pattern)
                    self.assertNotRegex(d.log_text(), r"\bready\b")
                finally:
                    d.close()

    def test_valid_file_passes_check(self):
        text = VH % host("a", "test:///default")
        with Vmhealthd(text, wait_ready=False) as d:
            r = d.check_config()
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("is valid", r.stdout)

    def test_json_configuration(self):
        cfg = {"nfv-vm-health:vm-health": {"host": [{"name": "a", "uri": "test:///default"}]}}
        with Vmhealthd(cfg) as d:
            self.assertIn("a", hosts_by_name(d.dump_state()))


class Inventory(unittest.TestCase):
    def test_demo_hosts_inventory_with_metadata_and_assignment(self):
        text = VH % (host("host-a", "test://%s/host-a.xml" % DEMO)
                     + host("host-b", "test://%s/host-b.xml" % DEMO)
                     + "<vnf-manager><name>vnfm-ims</name>"
                       "<preprocessing-time>45</preprocessing-time></vnf-manager>"
                     + "<vnf-manager><name>vnfm-epc</name></vnf-manager>"
                     + "<vm-assignment><uuid>a0000000-0000-4000-8000-000000000002</uuid>"
                       "<preprocessing-time>90</preprocessing-time></vm-assignment>")
        with Vmhealthd(text) as d:
            d.wait_log(r"ready: 2 of 2 hosts connected, 5 VMs")
            state = d.dump_state()
            hosts = hosts_by_name(state)
            self.assertEqual(hosts["host-a"]["state"]["connection"], "connected")
            self.assertEqual(hosts["host-a"]["state"]["vm-count"], 4)
            self.assertEqual(hosts["host-b"]["state"]["vm-count"], 1)
            vms = vms_by_name(state)
            self.assertEqual(set(vms), {"ims-cscf-1", "ims-cscf-2", "epc-mme-1", "spare-1",
                                        "ops-probe-1"})
            v = vms["ims-cscf-1"]
            self.assertEqual(v["uuid"], "a0000000-0000-4000-8000-000000000001")
            self.assertEqual((v["host"], v["power-state"], v["vnf-manager"]),
                             ("host-a", "running", "vnfm-ims"))
            self.assertEqual((v["preprocessing-time"], v["preprocessing-time-source"]),
                             (30, "metadata"))
            self.assertEqual((int(v["memory"]), v["vcpus"]), (4 * 1024 * 1024, 4))
            v = vms["ims-cscf-2"]  # configuration beats metadata
            self.assertEqual((v["preprocessing-time"], v["preprocessing-time-source"]),
                             (90, "vm-assignment"))
            v = vms["epc-mme-1"]
            self.assertEqual((v["vnf-manager"], v["preprocessing-time"]), ("vnfm-epc", 10))
            v = vms["spare-1"]
            self.assertEqual(v["power-state"], "shutoff")
            self.assertNotIn("vnf-manager", v)
            self.assertEqual((v["preprocessing-time"], v["preprocessing-time-source"]),
                             (60, "default"))

    def test_malformed_metadata_is_logged_and_vm_kept(self):
        text = VH % host("a", "test://%s/metadata-malformed.xml" % LIBVIRT_FIXTURES)
        with Vmhealthd(text) as d:
            d.wait_log(r"warning .*bad-pretime.*preprocessing-time 'soon'")
            d.wait_log(r"warning .*no-vnf-manager.*no vnf-manager")
            vms = vms_by_name(d.dump_state())
            self.assertEqual(vms["bad-pretime"]["preprocessing-time"], 60)
            self.assertEqual(vms["no-vnf-manager"]["preprocessing-time"], 15)

    def test_changes_made_by_another_client_are_followed(self):
        with Libvirtd("lv-a") as lv, \
                Vmhealthd(VH % host("a", lv.uri)) as d:
            c = lv.conn()
            uuid = "3d0c5e1a-7b2f-4c55-9a61-0000000000f1"
            dom = c.defineXML(
                "<domain type='test'><name>late-1</name><uuid>%s</uuid>"
                "<memory unit='MiB'>256</memory><vcpu>1</vcpu><os><type>hvm</type></os>"
                "<metadata><vmh:assignment xmlns:vmh='%s'><vmh:vnf-manager>vnfm-x"
                "</vmh:vnf-manager><vmh:preprocessing-time>12</vmh:preprocessing-time>"
                "</vmh:assignment></metadata></domain>" % (uuid, VMH_NS))
            d.wait_log(r"vm late-1 \(%s\) on a: shutoff" % uuid)
            dom.create()
            d.wait_log(r"vm late-1 .* shutoff -> running")
            v = vms_by_name(d.dump_state())["late-1"]
            self.assertEqual((v["power-state"], v["vnf-manager"], v["preprocessing-time"]),
                             ("running", "vnfm-x", 12))
            dom.destroy()
            dom.undefine()
            d.wait_log(r"vm late-1 .* undefined on a")
            self.assertNotIn("late-1", vms_by_name(d.dump_state()))
            # It followed events; it did not re-list the host for each one.
            self.assertEqual(len(re.findall(r"host a: connected,", d.log_text())), 1)


class HostLoss(unittest.TestCase):
    def test_hypervisor_lost_then_back_with_backoff(self):
        with Libvirtd("lv-a", node_xml=os.path.join(LIBVIRT_FIXTURES, "two-domains.xml")) as lv, \
                Vmhealthd(VH % host("a", lv.uri)) as d:
            d.wait_log(r"host a: connected, 2 domains")
            lv.stop()
            d.wait_log(r"host a: connection to .* lost")
            d.wait_log(r"host a: disconnected .*its 2 VMs are kept")

            def disconnected():
                s = d.dump_state()
                return hosts_by_name(s)["a"]["state"]["connection"] == "disconnected" and s
            state = vmhtest.wait_for(disconnected, what="host a disconnected in the state")
            h = hosts_by_name(state)["a"]["state"]
            self.assertEqual(h["health"], "unreachable")
            self.assertIn("last-error", h)
            for v in vms_by_name(state).values():  # kept as last seen, marked unreachable
                self.assertEqual(v["health"], "unreachable")
            self.assertEqual(len(vms_by_name(state)), 2)

            # Retries back off while the hypervisor stays away ...
            d.wait_log(r"next connection attempt in 2000 ms", timeout=10)
            # ... and it reconnects by itself once it is back.
            lv.start()
            d.wait_log(r"host a: connected, 2 domains", timeout=15,
                       start=d.log_text().rfind("lost"))
            state = d.dump_state()
            self.assertEqual(hosts_by_name(state)["a"]["state"]["connection"], "connected")
            for v in vms_by_name(state).values():
                self.assertEqual(v["health"], "normal")

    def test_unreachable_host_at_start_does_not_block_readiness(self):
        with Libvirtd("lv-b") as lv:
            text = VH % (host("up", lv.uri)
                         + host("down", "test+unix:///default?socket=/nonexistent/sock"))
            with Vmhealthd(text) as d:
                d.wait_log(r"ready: 1 of 2 hosts connected")
                d.wait_log(r"host down: cannot connect")


class Lifecycle(unittest.TestCase):
    def test_ready_is_notified_to_systemd(self):
        sockdir = tempfile.mkdtemp(prefix="vmh-notify-")
        path = os.path.join(sockdir, "notify")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        s.settimeout(15)
        try:
            with Vmhealthd(VH % host("a", "test:///default"), env={"NOTIFY_SOCKET": path}) as d:
                msg = s.recv(4096).decode()
                self.assertIn("READY=1", msg)
                self.assertRegex(d.log_text(), r"\bready\b")
                d.stop()
                self.assertIn("STOPPING=1", s.recv(4096).decode())
        finally:
            s.close()
            os.unlink(path)
            os.rmdir(sockdir)

    def test_sigterm_stops_cleanly_and_state_dir_is_private(self):
        with Vmhealthd(VH % host("a", "test:///default")) as d:
            d.dump_state()
            self.assertEqual(os.stat(d.state_dir).st_mode & 0o777, 0o700)
            self.assertEqual(os.stat(d.operational_path).st_mode & 0o777, 0o600)
            self.assertEqual(d.stop(), 0)
            self.assertRegex(d.log_text(), r"\[agent\] stopped")

    def test_log_lines_are_tagged_with_their_subsystem(self):
        with Vmhealthd(VH % host("a", "test:///default")) as d:
            lines = [l for l in d.log_text().splitlines() if l.strip()]
            self.assertTrue(lines)
            for l in lines:
                self.assertRegex(l, r"^\S+ (error|warning|info|debug)\s+\[[a-z]+\] ")


if __name__ == "__main__":
    vmhtest.main()
