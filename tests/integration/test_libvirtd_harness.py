#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Proves the harness in vmhtest.py: private libvirtd daemons serving the
test driver (two hosts, cross-connection and cross-process visibility,
events, stop/restart/kill noticed through the close callback, keepalive),
the node-XML fixtures, and the Vmhealthd wrapper against a stand-in daemon.

    /usr/bin/python3 tests/integration/test_libvirtd_harness.py
"""

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmhtest  # noqa: E402
from vmhtest import Libvirtd, CloseWatch, Vmhealthd  # noqa: E402

import libvirt  # noqa: E402

SMALL = """<domain type='test'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type>hvm</type></os>
</domain>"""

SYSTEM_PATHS = ["/run/libvirt", "/var/run/libvirt", "/var/lib/libvirt", "/var/cache/libvirt",
                "/var/log/libvirt", "/run/libvirtd.pid", "/etc/libvirt/libvirtd.conf",
                os.path.expanduser("~/.config/libvirt"), os.path.expanduser("~/.cache/libvirt")]
ABSENT_AT_START = [p for p in SYSTEM_PATHS if not os.path.lexists(p)]


def virsh(uri, *cmd):
    """virsh in a separate process: a second client of the same daemon."""
    r = subprocess.run(["virsh", "-q", "-c", uri] + list(cmd), capture_output=True, text=True,
                       timeout=30)
    if r.returncode != 0:
        raise AssertionError("virsh %s failed: %s" % (" ".join(cmd), r.stderr))
    return r.stdout


class TwoDaemons(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.a = Libvirtd("a")
        cls.b = Libvirtd("b")
        cls.a.start()
        try:
            cls.b.start()
        except BaseException:
            cls.a.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.a.close()
        cls.b.close()

    def test_separate_sockets_and_processes(self):
        self.assertNotEqual(self.a.sock, self.b.sock)
        self.assertNotEqual(self.a.pid, self.b.pid)
        self.assertTrue(self.a.running and self.b.running)
        self.assertTrue(self.a.uri.startswith("test+unix:///default?socket=/"))

    def test_define_visible_from_other_connection_and_process(self):
        c1, c2 = self.a.conn(), self.a.conn()
        c1.defineXML(SMALL.format(name="shared-1"))
        self.assertIn("shared-1", [d.name() for d in c2.listAllDomains()])
        self.assertIn("shared-1", virsh(self.a.uri, "list", "--all", "--name"))
        # ... and not on the other host
        self.assertNotIn("shared-1", [d.name() for d in self.b.conn().listAllDomains()])
        c1.lookupByName("shared-1").undefine()

    def test_state_survives_client_disconnect(self):
        c = self.a.conn()
        c.defineXML(SMALL.format(name="kept-1"))
        c.close()
        # the keeper connection keeps test:///default alive
        self.assertIn("kept-1", virsh(self.a.uri, "list", "--all", "--name"))
        virsh(self.a.uri, "undefine", "kept-1")

    def test_lifecycle_event_across_connections(self):
        actor, watcher = self.b.conn(), self.b.conn()
        got = []
        ev = threading.Event()

        def cb(conn, dom, event, detail, opaque):
            got.append((dom.name(), event, detail))
            if dom.name() == "ev-1" and event == libvirt.VIR_DOMAIN_EVENT_STOPPED:
                ev.set()

        cid = watcher.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, cb,
                                             None)
        try:
            d = actor.defineXML(SMALL.format(name="ev-1"))
            d.create()
            d.destroy()
            self.assertTrue(ev.wait(5), "no STOPPED event, got %r" % got)
            self.assertIn(("ev-1", libvirt.VIR_DOMAIN_EVENT_DEFINED,
                           libvirt.VIR_DOMAIN_EVENT_DEFINED_ADDED), got)
            self.assertIn(("ev-1", libvirt.VIR_DOMAIN_EVENT_STARTED,
                           libvirt.VIR_DOMAIN_EVENT_STARTED_BOOTED), got)
            d.undefine()
        finally:
            watcher.domainEventDeregisterAny(cid)


class Restart(unittest.TestCase):
    def test_stop_start_same_socket_close_callback(self):
        with Libvirtd("r") as lv:
            c = lv.conn()
            c.defineXML(SMALL.format(name="gone-after-restart"))
            w = CloseWatch(c)
            t0 = time.monotonic()
            self.assertEqual(lv.stop(), 0)
            self.assertEqual(w.wait(5), libvirt.VIR_CONNECT_CLOSE_REASON_EOF)
            self.assertLess(time.monotonic() - t0, 5)
            self.assertFalse(os.path.exists(lv.sock))
            with self.assertRaises(libvirt.libvirtError):
                c.listAllDomains()
            sock = lv.sock
            lv.start()
            self.assertEqual(lv.sock, sock)
            c2 = lv.conn()
            # a restart is a reboot of the fake host: test:///default is fresh
            self.assertEqual([d.name() for d in c2.listAllDomains()], ["test"])

    def test_kill9_then_start_over_stale_socket(self):
        with Libvirtd("k") as lv:
            c = lv.conn()
            w = CloseWatch(c)
            self.assertEqual(lv.kill(), -signal.SIGKILL)
            self.assertEqual(w.wait(5), libvirt.VIR_CONNECT_CLOSE_REASON_EOF)
            self.assertTrue(os.path.exists(lv.sock))  # stale socket file
            lv.start()
            self.assertTrue(lv.conn().listAllDomains())

    def test_keepalive_notices_hung_daemon(self):
        with Libvirtd("h") as lv:
            c = lv.conn(keepalive=(1, 1))
            w = CloseWatch(c)
            os.kill(lv.pid, signal.SIGSTOP)
            try:
                self.assertEqual(w.wait(10), libvirt.VIR_CONNECT_CLOSE_REASON_KEEPALIVE)
            finally:
                os.kill(lv.pid, signal.SIGCONT)

    def test_failed_start_raises_with_log(self):
        lv = Libvirtd("bad", extra_conf="this is not = valid")
        try:
            with self.assertRaises(vmhtest.LibvirtdError) as cm:
                lv.start()
            self.assertIn("libvirtd exited", str(cm.exception))
        finally:
            lv.close()
        self.assertFalse(os.path.exists(lv.dir))


class NodeXml(unittest.TestCase):
    def check_host_a(self, c):
        doms = {d.name(): d for d in c.listAllDomains()}
        self.assertEqual(sorted(doms), ["epc-mme-1", "ims-cscf-1", "ims-cscf-2", "spare-1"])
        for n in ("ims-cscf-1", "ims-cscf-2", "epc-mme-1"):
            self.assertEqual(doms[n].state()[0], libvirt.VIR_DOMAIN_RUNNING, n)
        self.assertEqual(doms["spare-1"].state()[0], libvirt.VIR_DOMAIN_SHUTOFF)
        self.assertEqual(doms["ims-cscf-1"].UUIDString(), "a0000000-0000-4000-8000-000000000001")
        md = doms["ims-cscf-1"].metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, vmhtest.VMH_NS)
        # returned without prefix or xmlns, whitespace as in the source
        self.assertTrue(md.startswith("<assignment>"), md)
        self.assertIn("<vnf-manager>vnfm-ims</vnf-manager>", md)
        self.assertIn("<preprocessing-time>30</preprocessing-time>", md)
        with self.assertRaises(libvirt.libvirtError) as cm:
            doms["spare-1"].metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, vmhtest.VMH_NS)
        self.assertEqual(cm.exception.get_error_code(), libvirt.VIR_ERR_NO_DOMAIN_METADATA)

    def test_demo_host_a_direct(self):
        c = libvirt.open("test://" + os.path.join(vmhtest.DEMO, "host-a.xml"))
        try:
            self.check_host_a(c)
            info = c.getInfo()
            self.assertEqual((info[1], info[2]), (65536, 16))
        finally:
            c.close()

    def test_demo_host_a_loaded_into_daemon_and_reloaded(self):
        with Libvirtd("na", node_xml=os.path.join(vmhtest.DEMO, "host-a.xml")) as lv:
            self.check_host_a(lv.conn())
            self.assertIn("spare-1", virsh(lv.uri, "list", "--all", "--name"))
            lv.restart()
            self.check_host_a(lv.conn())

    def test_demo_host_b(self):
        c = libvirt.open("test://" + os.path.join(vmhtest.DEMO, "host-b.xml"))
        try:
            self.assertEqual([(d.name(), d.state()[0]) for d in c.listAllDomains()],
                             [("ops-probe-1", libvirt.VIR_DOMAIN_RUNNING)])
            self.assertEqual(c.getInfo()[1:3], [131072, 32])
        finally:
            c.close()

    def test_fixture_files(self):
        c = libvirt.open("test://" + os.path.join(vmhtest.LIBVIRT_FIXTURES, "two-domains.xml"))
        try:
            st = {d.name(): d.state()[0] for d in c.listAllDomains()}
            self.assertEqual(st, {"vm-with-meta": libvirt.VIR_DOMAIN_RUNNING,
                                  "vm-plain-off": libvirt.VIR_DOMAIN_SHUTOFF})
        finally:
            c.close()
        c = libvirt.open("test://" + os.path.join(vmhtest.LIBVIRT_FIXTURES,
                                                  "metadata-malformed.xml"))
        try:
            md = {d.name(): d.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, vmhtest.VMH_NS)
                  for d in c.listAllDomains()}
            self.assertIn("<preprocessing-time>soon</preprocessing-time>", md["bad-pretime"])
            self.assertNotIn("vnf-manager", md["no-vnf-manager"])
        finally:
            c.close()

    def test_file_uri_through_daemon_is_private_per_connection(self):
        path = os.path.join(vmhtest.DEMO, "host-b.xml")
        with Libvirtd("f") as lv:
            c1, c2 = lv.conn(uri=lv.uri_for(path)), lv.conn(uri=lv.uri_for(path))
            c1.lookupByName("ops-probe-1").destroy()
            self.assertEqual(c2.lookupByName("ops-probe-1").state()[0],
                             libvirt.VIR_DOMAIN_RUNNING)


class SystemUntouched(unittest.TestCase):
    def test_zz_no_system_paths_created(self):
        with Libvirtd("sys") as lv:
            lv.conn().listAllDomains()
        created = [p for p in ABSENT_AT_START if os.path.lexists(p)]
        self.assertEqual(created, [])


def tearDownModule():
    # after every test of this file: nothing of libvirt's system instance
    # was created, no daemon is left running
    created = [p for p in ABSENT_AT_START if os.path.lexists(p)]
    if created:
        raise AssertionError("system paths created: %s" % created)
    left = [o for o in list(vmhtest._LIVE) if getattr(o, "running", False)]
    if left:
        raise AssertionError("processes left running: %s" % left)


class Helpers(unittest.TestCase):
    def test_free_port(self):
        import socket
        for kind, st in (("tcp", socket.SOCK_STREAM), ("udp", socket.SOCK_DGRAM)):
            p = vmhtest.free_port(kind)
            s = socket.socket(socket.AF_INET, st)
            s.bind(("127.0.0.1", p))
            s.close()
        self.assertGreater(vmhtest.free_port("both"), 0)

    def test_with_state_dir(self):
        vh = '<vm-health xmlns="urn:vmhealth:nfv-vm-health"/>'
        text, sd = vmhtest.with_state_dir(vh, "/x/state")
        self.assertEqual(sd, "/x/state")
        self.assertIn(vmhtest.agent_config("/x/state"), text)
        own = vh + '<agent xmlns="urn:vmhealth:vmhealth-agent"><state-dir>/own</state-dir></agent>'
        self.assertEqual(vmhtest.with_state_dir(own, "/x"), (own, "/own"))
        ag = vh + '<agent xmlns="urn:vmhealth:vmhealth-agent"><netconf/></agent>'
        text, _ = vmhtest.with_state_dir(ag, "/x")
        self.assertIn('<agent xmlns="urn:vmhealth:vmhealth-agent"><state-dir>/x</state-dir>'
                      '<netconf/></agent>', text)
        text, _ = vmhtest.with_state_dir('<a:agent xmlns:a="urn:vmhealth:vmhealth-agent"/>', "/x")
        self.assertEqual(text, '<a:agent xmlns:a="urn:vmhealth:vmhealth-agent">'
                               '<a:state-dir>/x</a:state-dir></a:agent>')


# A stand-in with vmhealthd's command line and signal contract, to test the
# wrapper before the real daemon exists.
FAKE_DAEMON = r'''#!/usr/bin/python3
import json, os, re, signal, sys, time
cfg = open(sys.argv[sys.argv.index("-c") + 1]).read()
state = re.search(r"<state-dir>([^<]*)</state-dir>", cfg).group(1)
n = [0]
def dump(*_):
    n[0] += 1
    tmp = os.path.join(state, ".operational.json.tmp")
    with open(tmp, "w") as f:
        json.dump({"dumps": n[0], "pid": os.getpid()}, f)
    os.rename(tmp, os.path.join(state, "operational.json"))
    print("state dumped", n[0], flush=True)
signal.signal(signal.SIGUSR1, dump)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("debug: starting", " ".join(sys.argv[1:]), flush=True)
print("debug: registered migration-ready RPC", flush=True)
if "<exit-now/>" in cfg:
    print("error: /vm-health: bad configuration", flush=True)
    sys.exit(2)
print("vmhealthd ready", flush=True)
while True:
    time.sleep(1)
'''


class VmhealthdWrapper(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vmh-fake-")
        cls.fake = os.path.join(cls.tmp, "fake-vmhealthd")
        with open(cls.fake, "w") as f:
            f.write(FAKE_DAEMON)
        os.chmod(cls.fake, 0o755)

    @classmethod
    def tearDownClass(cls):
        import shutil
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_lifecycle_and_dump_state(self):
        cfg = '<vm-health xmlns="urn:vmhealth:nfv-vm-health"/>'
        with Vmhealthd(cfg, binary=self.fake) as d:
            self.assertTrue(d.state_dir.startswith(d.dir))
            self.assertIn("-f -d", d.wait_log(r"starting"))
            self.assertEqual(d.dump_state()["dumps"], 1)
            self.assertEqual(d.dump_state()["dumps"], 2)
            m = d.mark()
            d.signal(signal.SIGUSR1)
            self.assertIn("dumped 3", d.wait_log(r"state dumped", start=m))
            pid = d.pid
            d.restart()
            self.assertNotEqual(d.pid, pid)
            self.assertEqual(d.dump_state()["dumps"], 1)
            with self.assertRaises(AssertionError):
                d.wait_log(r"never logged", timeout=0.3)
            self.assertEqual(d.kill9(), -signal.SIGKILL)
            d.start()
            self.assertEqual(d.stop(), 0)
            self.assertIn("=== vmhtest: restart ===", d.log_text(0))
        self.assertFalse(os.path.exists(d.dir))

    def test_wait_ready_skips_migration_ready_and_failed_start(self):
        d = Vmhealthd("<vm-health/>", binary=self.fake, wait_ready=False)
        try:
            d.start()
            self.assertEqual(d.wait_ready(), "vmhealthd ready")
        finally:
            d.close()
        d = Vmhealthd("<vm-health><exit-now/></vm-health>", binary=self.fake, wait_ready=False)
        try:
            d.start()
            self.assertEqual(d.wait_exit(5), 2)
            with self.assertRaises(vmhtest.VmhealthdError) as cm:
                d.wait_ready()
            self.assertIn("bad configuration", str(cm.exception))
        finally:
            d.close()

    def test_missing_binary_is_a_clear_error(self):
        d = Vmhealthd("<x/>", binary="/nonexistent/vmhealthd")
        try:
            with self.assertRaises(vmhtest.VmhealthdError) as cm:
                d.start()
            self.assertIn("VMHEALTHD", str(cm.exception))
        finally:
            d.close()


if __name__ == "__main__":
    vmhtest.main()
