#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""A host that stops answering in the middle of an event does not hold up
the others.  vmhealthd reaches host a through a UNIX-socket relay the test
controls, host b directly (both private libvirtds on the test driver).  The
relay stops passing requests to a; then a domain is defined on a (through
the test's own connection), so a sends vmhealthd a DEFINED event and
vmhealthd's re-read of that domain hangs.  Meanwhile a VM on b crashes: its
fault must be raised at once, not after a's keepalive gives up.  When the
relay lets requests through again, the new domain on a is read and shows
up."""
import os
import shutil
import socket
import tempfile
import threading
import unittest

import libvirt

import vmhtest
from vmhtest import Libvirtd, Vmhealthd, VMH_NS

NEW_VM = "51040000-0000-4000-8000-000000000001"
B_VM = "51040000-0000-4000-8000-000000000002"


def domain_xml(name, uuid):
    return ("<domain type='test'><name>%s</name><uuid>%s</uuid><memory unit='MiB'>64</memory>"
            "<vcpu>1</vcpu><os><type>hvm</type></os></domain>" % (name, uuid))


class Relay:
    """Listens on a UNIX socket and relays each connection to target.  While
    `hold` is set, bytes from clients wait in the relay (replies and events
    from the server still flow)."""

    def __init__(self, path, target):
        self.path, self.target = path, target
        self.hold = threading.Event()
        self.released = threading.Event()
        self.released.set()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.target)
            self.conns += [c, s]
            threading.Thread(target=self._pipe, args=(c, s, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(s, c, False), daemon=True).start()

    def _pipe(self, src, dst, upstream):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                for x in (src, dst):
                    try:
                        x.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            if upstream:
                self.released.wait()
            try:
                dst.sendall(data)
            except OSError:
                return

    def pause(self):
        self.released.clear()

    def resume(self):
        self.released.set()

    def close(self):
        self.resume()
        self.sock.close()
        for c in self.conns:
            c.close()


class SlowHost(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vmh-slow-")
        os.chmod(self.tmp, 0o755)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.lv = {}
        for h in ("a", "b"):
            lv = Libvirtd("slow-" + h)
            self.addCleanup(lv.close)
            lv.start()
            self.lv[h] = lv
        self.ca, self.cb = self.lv["a"].conn(), self.lv["b"].conn()
        for c in (self.ca, self.cb):  # test:///default's own domain, same UUID on both
            d = c.lookupByName("test")
            d.destroy()
            d.undefine()
        self.cb.defineXML(domain_xml("b-vm", B_VM)).create()
        relay_path = os.path.join(self.tmp, "relay-a")
        self.relay = Relay(relay_path, self.lv["a"].sock)
        self.addCleanup(self.relay.close)
        self.uri_a = "test+unix:///default?socket=%s" % relay_path

    def test_hung_refresh_on_one_host_does_not_delay_another(self):
        vh = ("<host><name>a</name><uri>%s</uri><sysfs-root>/nonexistent</sysfs-root></host>"
              "<host><name>b</name><uri>%s</uri><sysfs-root>/nonexistent</sysfs-root></host>"
              % (self.uri_a, self.lv["b"].uri))
        with Vmhealthd('<vm-health xmlns="%s">%s</vm-health>' % (VMH_NS, vh), name="slow") as d:
            d.wait_log(r"host a: connected, 0 domains")
            d.wait_log(r"host b: connected, 1 domains")
            self.relay.pause()
            mark = d.mark()
            self.ca.defineXML(domain_xml("new-on-a", NEW_VM))
            d.wait_log(r"host a: domain new-on-a event 0 ", start=mark)  # DEFINED arrived
            with tempfile.TemporaryDirectory() as tmp:
                os.chmod(tmp, 0o777)
                self.cb.lookupByUUIDString(B_VM).coreDump(os.path.join(tmp, "core"),
                                                          libvirt.VIR_DUMP_CRASH)
            # a's keepalive would take 15 s to give up; b is heard at once
            d.wait_log(r"vm b-vm .* on b: running -> (crashed|shutoff)", start=mark,
                       timeout=5)
            self.assertNotRegex(d.log_text(start=mark), r"host a: (connection lost|closed)")
            self.relay.resume()
            vms = vmhtest.wait_for(
                lambda: {v["uuid"]: v for v in
                         d.dump_state()["nfv-vm-health:vm-health"].get("vm", [])
                         if v["uuid"] == NEW_VM},
                timeout=10, what="the new domain of a in the state")
            self.assertEqual(vms[NEW_VM]["host"], "a")


if __name__ == "__main__":
    vmhtest.main()
