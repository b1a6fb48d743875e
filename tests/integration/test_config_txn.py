#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Configuration as transactions, against the real vmhealthd over ncclient:
every configuration node that changes is either applied live or refused
with an rpc-error naming the node and the reason, and a refused change
leaves running (and every subsystem) as it was.  edit-config and
copy-config (inline and startup -> running) end in the same commit.

agent/netconf applies live: SSH and UNIX endpoints added, moved and
removed (an address in use refused, the old listener still serving), a
host key changed, and the sessions of a removed user, of a changed role or
of a removed key closed while the admin's session stays.

ncclient.transport.ssh.TICK = 0.001."""
import os
import shutil
import socket
import subprocess
import tempfile
import unittest
import xml.etree.ElementTree as ET

import ncclient.transport.ssh
from ncclient.operations.rpc import RPCError
from ncclient.xml_ import to_ele

import vmhtest
from vmhtest import Vmhealthd, free_port, wait_for
from test_netconf import (NS, PASSWORD, Keys, config, connect, daemon_config, data_of, vmh)

ncclient.transport.ssh.TICK = 0.001

VHA_NS = vmhtest.VHA_NS
DELETE = ' xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" nc:operation="delete"'


def vha(body):
    return '<agent xmlns="%s">%s</agent>' % (VHA_NS, body)


def netconf(body):
    return config(vha("<netconf>%s</netconf>" % body))


def ssh_endpoint(name, port, host_key, attrs=""):
    return ("<ssh-endpoint%s><name>%s</name><address>127.0.0.1</address><port>%d</port>"
            "<host-key>%s</host-key></ssh-endpoint>" % (attrs, name, port, host_key))


def refuses(port):
    """Whether 127.0.0.1:port refuses a TCP connection."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


def answers(port, keys):
    """A NETCONF session over SSH on port: hello, then a get-config."""
    m = connect(port, "admin", keys.admin_key)
    try:
        return data_of(m.get_config("running")) is not None
    finally:
        m.close_session()


def unix_get_config(path):
    """hello and a get-config over a UNIX endpoint, raw (base:1.0 framing:
    ncclient has no UNIX transport); the reply's text."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    try:
        s.sendall(b'<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>'
                  b"<capability>urn:ietf:params:netconf:base:1.0</capability>"
                  b"</capabilities></hello>]]>]]>"
                  b'<rpc message-id="1" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
                  b"<get-config><source><running/></source></get-config></rpc>]]>]]>")
        buf = b""
        while buf.count(b"]]>]]>") < 2:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf.split(b"]]>]]>")[1].decode()
    finally:
        s.close()


class OneDaemonTest(unittest.TestCase):
    """One daemon for the class (named NAME), an admin session for each
    test; each test leaves running as it found it."""

    NAME = "txn"

    @classmethod
    def setUpClass(cls):
        cls.keys = Keys()
        cls.port = free_port()
        cls.state = tempfile.mkdtemp(prefix="vmh-%s-state-" % cls.NAME)
        cls.daemon = Vmhealthd(daemon_config(cls.keys, cls.port, cls.state), name=cls.NAME)
        cls.daemon.start()

    @classmethod
    def tearDownClass(cls):
        cls.daemon.close()
        cls.keys.close()
        shutil.rmtree(cls.state, ignore_errors=True)

    def setUp(self):
        self.m = connect(self.port, "admin", self.keys.admin_key)
        self.addCleanup(self.m.close_session)


class ConfigTransactionTest(OneDaemonTest):

    def running(self):
        return data_of(self.m.get_config("running"))

    def state_dir(self):
        return self.running().find("vha:agent/vha:state-dir", NS).text

    def copy_inline(self, body, target):
        """copy-config from an inline <config> (ncclient's copy_config takes
        only datastores and URLs)."""
        return self.m.dispatch(to_ele(
            '<copy-config xmlns="%s"><target><%s/></target><source>%s</source></copy-config>'
            % (NS["nc"], target, config(body))))

    def assertRefused(self, fn, tag, path, message):
        with self.assertRaises(RPCError) as cm:
            fn()
        e = cm.exception
        self.assertEqual(e.tag, tag, e.message)
        self.assertEqual(e.type, "application")
        self.assertEqual(e.path, path)
        self.assertRegex(e.message or "", message)
        return e

    def test_state_dir_takes_a_restart_and_says_so(self):
        other = tempfile.mkdtemp(prefix="vmh-txn-other-")
        self.addCleanup(shutil.rmtree, other, True)
        mark = self.daemon.mark()
        self.assertRefused(
            lambda: self.m.edit_config(target="running",
                                       config=config(vha("<state-dir>%s</state-dir>" % other))),
            "operation-not-supported", "/vmhealth-agent:agent/state-dir", "takes a restart")
        self.assertEqual(self.state_dir(), self.state)
        self.daemon.wait_log(r"\[config\] configuration change refused by agent: "
                             r"/vmhealth-agent:agent/state-dir", start=mark)
        # the same value again is no change, and a change elsewhere in the
        # same edit is refused with it: nothing of a refused edit applies
        self.m.edit_config(target="running",
                           config=config(vha("<state-dir>%s</state-dir>" % self.state)))
        self.assertRefused(
            lambda: self.m.edit_config(
                target="running",
                config=config(vmh("<settings><poll-interval>2500</poll-interval></settings>")
                              + vha("<state-dir>%s</state-dir>" % other))),
            "operation-not-supported", "/vmhealth-agent:agent/state-dir", "takes a restart")
        self.assertEqual(self.running().find("vmh:vm-health/vmh:settings/vmh:poll-interval",
                                             NS), None)
        # test-only runs the subscribers' validation too
        self.assertRefused(
            lambda: self.m.edit_config(target="running", test_option="test-only",
                                       config=config(vha("<state-dir>%s</state-dir>" % other))),
            "operation-not-supported", "/vmhealth-agent:agent/state-dir", "takes a restart")

    def test_copy_config_startup_to_running_is_the_same_transaction(self):
        other = tempfile.mkdtemp(prefix="vmh-txn-other-")
        self.addCleanup(shutil.rmtree, other, True)
        # startup may hold what only a restart applies ...
        data = self.running()
        data.find("vha:agent/vha:state-dir", NS).text = other
        body = "".join(ET.tostring(top, encoding="unicode") for top in data)
        self.copy_inline(body, "startup")
        self.addCleanup(lambda: self.m.copy_config(source="running", target="startup"))
        # ... but copying it to running runs the commit, which refuses it
        self.assertRefused(lambda: self.m.copy_config(source="startup", target="running"),
                           "operation-not-supported", "/vmhealth-agent:agent/state-dir",
                           "takes a restart")
        self.assertEqual(self.state_dir(), self.state)
        # an inline copy-config to running goes the same way
        self.assertRefused(lambda: self.copy_inline(body, "running"),
                           "operation-not-supported", "/vmhealth-agent:agent/state-dir",
                           "takes a restart")

    def test_a_vm_health_change_still_applies_live(self):
        mark = self.daemon.mark()
        self.m.edit_config(target="running", config=config(
            vmh("<host><name>live</name><uri>test:///default</uri></host>")))
        self.addCleanup(lambda: self.m.edit_config(target="running", config=config(
            vmh('<host xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" nc:operation="delete">'
                "<name>live</name></host>"))))
        self.daemon.wait_log(r"\[core\] host live: added \(test:///default\)", start=mark)



class LiveNetconfTest(OneDaemonTest):
    """agent/netconf changed on a running daemon."""

    NAME = "live-nc"

    def edit(self, body, **kw):
        return self.m.edit_config(target="running", config=netconf(body), **kw)

    def running_netconf(self):
        return data_of(self.m.get_config("running")).find("vha:agent/vha:netconf", NS)

    def ssh_ports(self):
        return {e.find("vha:name", NS).text: int(e.find("vha:port", NS).text)
                for e in self.running_netconf().findall("vha:ssh-endpoint", NS)}

    def assertInUse(self, fn, path, message):
        with self.assertRaises(RPCError) as cm:
            fn()
        e = cm.exception
        self.assertEqual(e.tag, "in-use", e.message)
        self.assertEqual(e.path, path)
        self.assertRegex(e.message or "", message)

    def test_endpoint_moved_to_another_port(self):
        new = free_port()
        mark = self.daemon.mark()
        # the edit comes in through the endpoint it moves
        self.edit(ssh_endpoint("ssh", new, self.keys.host_key))
        self.addCleanup(lambda: self.edit(ssh_endpoint("ssh", self.port, self.keys.host_key)))
        self.daemon.wait_log(r"ssh-endpoint ssh no longer listening on 127\.0\.0\.1 port %d"
                             % self.port, start=mark)
        self.assertTrue(refuses(self.port))
        self.assertTrue(answers(new, self.keys))
        self.assertEqual(self.ssh_ports(), {"ssh": new})
        # a session that came in through the old port stays
        self.assertIsNotNone(data_of(self.m.get_config("running")))

    def test_port_in_use_is_refused_and_nothing_changes(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        self.addCleanup(busy.close)
        port = busy.getsockname()[1]
        mark = self.daemon.mark()
        self.assertInUse(lambda: self.edit(ssh_endpoint("ssh", port, self.keys.host_key)),
                         "/vmhealth-agent:agent/netconf/ssh-endpoint[name='ssh']/port",
                         r"ssh-endpoint ssh: cannot listen on 127\.0\.0\.1 port %d: "
                         r"the address is in use" % port)
        self.daemon.wait_log(r"\[config\] configuration change refused by netconf: "
                             r"/vmhealth-agent:agent/netconf/ssh-endpoint\[name='ssh'\]/port",
                             start=mark)
        self.assertEqual(self.ssh_ports(), {"ssh": self.port})
        self.assertTrue(answers(self.port, self.keys))
        # a new endpoint on a port in use: nothing of the edit applies
        self.assertInUse(
            lambda: self.edit(ssh_endpoint("extra", port, self.keys.host_key)
                              + "<user><name>gone</name><role>admin</role></user>"),
            "/vmhealth-agent:agent/netconf/ssh-endpoint[name='extra']/port", "in use")
        self.assertEqual(self.ssh_ports(), {"ssh": self.port})
        self.assertIsNone(self.running_netconf().find("vha:user[vha:name='gone']", NS))
        # one of ours holds it: 0.0.0.0 overlaps 127.0.0.1 on the same port
        self.assertInUse(
            lambda: self.edit("<ssh-endpoint><name>ssh</name><address>0.0.0.0</address>"
                              "</ssh-endpoint>"),
            "/vmhealth-agent:agent/netconf/ssh-endpoint[name='ssh']/port",
            "in use by ssh-endpoint ssh, which listens there until this change is applied")
        self.assertEqual(self.ssh_ports(), {"ssh": self.port})
        self.assertTrue(answers(self.port, self.keys))

    def test_endpoints_trade_ports_in_one_edit(self):
        """An endpoint is known by where it listens: a port that changes
        hands keeps its listener."""
        a, b = free_port(), free_port()
        self.edit(ssh_endpoint("extra", a, self.keys.host_key))
        self.addCleanup(lambda: self.edit(ssh_endpoint("ssh", self.port, self.keys.host_key)
                                          + "<ssh-endpoint%s><name>extra</name></ssh-endpoint>"
                                          % DELETE))
        mark = self.daemon.mark()
        self.edit(ssh_endpoint("extra", b, self.keys.host_key)
                  + ssh_endpoint("ssh", a, self.keys.host_key))
        self.daemon.wait_log(r"ssh-endpoint extra is now named ssh", start=mark)
        self.assertEqual(self.ssh_ports(), {"ssh": a, "extra": b})
        self.assertTrue(answers(a, self.keys))
        self.assertTrue(answers(b, self.keys))
        self.assertTrue(refuses(self.port))

    def test_endpoint_added_then_removed(self):
        port = free_port()
        self.assertTrue(refuses(port))
        self.edit(ssh_endpoint("extra", port, self.keys.host_key))
        self.assertTrue(answers(port, self.keys))
        self.edit(ssh_endpoint("extra", port, self.keys.host_key, DELETE))
        self.assertTrue(refuses(port))
        self.assertTrue(answers(self.port, self.keys))

    def test_host_key_changes_for_the_next_login(self):
        path = os.path.join(self.keys.dir, "host2")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)

        def host_key(port):
            m = connect(port, "admin", self.keys.admin_key)
            try:
                return m._session._transport.get_remote_server_key().get_base64()
            finally:
                m.close_session()

        before = host_key(self.port)
        self.edit(ssh_endpoint("ssh", self.port, path))
        self.addCleanup(lambda: self.edit(ssh_endpoint("ssh", self.port, self.keys.host_key)))
        after = host_key(self.port)
        self.assertNotEqual(before, after)
        with open(path + ".pub") as f:
            self.assertEqual(after, f.read().split()[1])
        # a host key that is not one is refused, at test-only too
        with self.assertRaises(RPCError) as cm:
            self.edit(ssh_endpoint("ssh", self.port, "/nonexistent/key"), test_option="test-only")
        self.assertEqual(cm.exception.tag, "invalid-value")
        self.assertEqual(cm.exception.path,
                         "/vmhealth-agent:agent/netconf/ssh-endpoint[name='ssh']/host-key")

    def test_sessions_of_a_removed_user_are_closed(self):
        user = ("<user><name>temp</name><role>admin</role><authorized-key>%s</authorized-key>"
                "<authorized-key>%s</authorized-key><password-hash>%s</password-hash></user>"
                % (self.keys.pub(self.keys.other_key), self.keys.pub(self.keys.vnfm_key),
                   self.keys.password_hash))
        self.edit(user)
        self.addCleanup(lambda: self.edit('<user%s><name>temp</name></user>' % DELETE)
                        if self.running_netconf().find("vha:user[vha:name='temp']", NS)
                        is not None else None)
        by_other = connect(self.port, "temp", self.keys.other_key)
        by_vnfm = connect(self.port, "temp", self.keys.vnfm_key)
        by_password = connect(self.port, "temp", password=PASSWORD)
        for m in (by_other, by_vnfm, by_password):
            self.addCleanup(lambda m=m: m.connected and m.close_session())
            self.assertIsNotNone(data_of(m.get_config("running")))
        # a key removed: only the session that logged in with it ends
        mark = self.daemon.mark()
        self.edit('<user><name>temp</name><authorized-key%s>%s</authorized-key></user>'
                  % (DELETE, self.keys.pub(self.keys.other_key)))
        self.daemon.wait_log(r"session %s of 'temp' ended \(closed by the server: the key or "
                             r"password it logged in with was removed\)" % by_other.session_id,
                             start=mark)
        wait_for(lambda: not by_other.connected, what="the session of the removed key to end")
        with self.assertRaises(Exception):
            by_other.get_config("running")
        self.assertIsNotNone(data_of(by_vnfm.get_config("running")))
        self.assertIsNotNone(data_of(by_password.get_config("running")))
        # the user removed: every session of theirs ends, the admin's stays
        mark = self.daemon.mark()
        self.edit('<user%s><name>temp</name></user>' % DELETE)
        for m in (by_vnfm, by_password):
            self.daemon.wait_log(r"session %s of 'temp' ended \(closed by the server: its user "
                                 r"was removed\)" % m.session_id, start=mark)
            wait_for(lambda m=m: not m.connected, what="the removed user's session to end")
            with self.assertRaises(Exception):
                m.get_config("running")
        self.assertIsNotNone(data_of(self.m.get_config("running")))
        self.assertIsNone(self.running_netconf().find("vha:user[vha:name='temp']", NS))

    def test_a_role_change_closes_the_users_sessions(self):
        self.edit("<user><name>temp</name><role>vnf-manager</role>"
                  "<authorized-key>%s</authorized-key></user>"
                  % self.keys.pub(self.keys.other_key))
        self.addCleanup(lambda: self.edit('<user%s><name>temp</name></user>' % DELETE))
        m = connect(self.port, "temp", self.keys.other_key)
        self.addCleanup(lambda: m.connected and m.close_session())
        # answered: the server has filed the session (with the role of then)
        self.assertIsNotNone(data_of(m.get_config("running")))
        mark = self.daemon.mark()
        self.edit("<user><name>temp</name><role>admin</role></user>")
        self.daemon.wait_log(r"session %s of 'temp' ended \(closed by the server: its user's "
                             r"role changed\)" % m.session_id, start=mark)
        wait_for(lambda: not m.connected, what="the session to end")
        m2 = connect(self.port, "temp", self.keys.other_key)
        self.addCleanup(m2.close_session)
        # now an admin: it sees the agent subtree
        self.assertIsNotNone(data_of(m2.get_config("running")).find("vha:agent", NS))

    def test_unix_endpoint_added_and_removed(self):
        d = tempfile.mkdtemp(prefix="vmh-live-unix-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "nc.sock")
        unix = ("<unix-endpoint%s><name>local</name><path>%s</path><mode>0600</mode>"
                "</unix-endpoint>")
        self.edit(unix % ("", path))
        self.assertIn("<data", unix_get_config(path))
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        # the mode changes in place
        self.edit("<unix-endpoint><name>local</name><mode>0660</mode></unix-endpoint>")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o660)
        self.edit(unix % (DELETE, path))
        self.assertFalse(os.path.exists(path))
        with self.assertRaises(FileNotFoundError):
            unix_get_config(path)
        # a path a live server holds is in use; a file that is not a socket is refused
        busy_path = os.path.join(d, "busy.sock")
        busy = socket.socket(socket.AF_UNIX)
        busy.bind(busy_path)
        busy.listen(1)
        self.addCleanup(busy.close)
        self.assertInUse(lambda: self.edit(unix % ("", busy_path)),
                         "/vmhealth-agent:agent/netconf/unix-endpoint[name='local']/path",
                         "is the socket of a running server")
        self.assertTrue(os.path.exists(busy_path))
        plain = os.path.join(d, "plain")
        open(plain, "w").close()
        with self.assertRaises(RPCError) as cm:
            self.edit(unix % ("", plain))
        self.assertEqual(cm.exception.tag, "invalid-value")
        self.assertTrue(os.path.isfile(plain))
        self.assertIsNone(self.running_netconf().find("vha:unix-endpoint", NS))


if __name__ == "__main__":
    unittest.main(verbosity=2)
