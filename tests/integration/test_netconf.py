#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The NETCONF server of the real vmhealthd, driven by ncclient over SSH
(public key and password): hello and capabilities, get / get-config with
subtree and XPath filters and with-defaults, edit-config (every operation,
test-only, rollback-on-error, errors with tag/type/path), copy-config and
the startup file across a restart, locks between two sessions,
kill-session, the domain RPCs, RFC 5277 subscriptions with replay across a
restart, get-schema and ietf-netconf-monitoring, a host added live, access
of a vnf-manager user, logins that a silent client does not block.
The UNIX socket and libnetconf2's C client: tests/unit/test_netconf_unix.c.

Keys are made with ssh-keygen at run time; ports are chosen at run time;
ncclient.transport.ssh.TICK = 0.001."""
import datetime
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

import ncclient.transport.ssh
from ncclient import manager
from ncclient.operations.rpc import RPCError
from ncclient.xml_ import to_ele

import vmhtest
from vmhtest import Vmhealthd, free_port, wait_for

ncclient.transport.ssh.TICK = 0.001

NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
NOTIF_NS = "urn:ietf:params:xml:ns:netconf:notification:1.0"
MON_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
VMH_NS = vmhtest.VMH_NS
VHA_NS = vmhtest.VHA_NS
PASSWORD = "s3cret-Pa55"
NS = {"vmh": VMH_NS, "nc": NC_NS, "mon": MON_NS, "n": NOTIF_NS,
      "ncn": "urn:ietf:params:xml:ns:netmod:notification", "vha": VHA_NS}
TEST_VM = "6695eb01-f6a4-8304-79aa-97f2502e193f"  # the domain "test" of test:///default


# ---------------------------------------------------------------------------
# fixtures shared with bench/netconf_bench.py

class Keys:
    """Host key, user keys and a crypt(3) password hash in a temp dir."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="vmh-nc-keys-")
        self.host_key = self._keygen("host")
        self.admin_key = self._keygen("admin")
        self.vnfm_key = self._keygen("vnfm")
        self.other_key = self._keygen("other")
        self.password_hash = subprocess.run(
            ["openssl", "passwd", "-6", PASSWORD], check=True, capture_output=True,
            text=True).stdout.strip()

    def _keygen(self, name):
        path = os.path.join(self.dir, name)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name + "@test",
                        "-f", path], check=True)
        return path

    def pub(self, path):
        with open(path + ".pub") as f:
            return f.read().strip()

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def netconf_xml(keys, ssh_port, unix_path=None):
    unix = ("<unix-endpoint><name>local</name><path>%s</path><mode>0600</mode>"
            "</unix-endpoint>" % unix_path) if unix_path else ""
    return ("<netconf><ssh-endpoint><name>ssh</name><address>127.0.0.1</address>"
            "<port>%d</port><host-key>%s</host-key></ssh-endpoint>%s"
            "<user><name>admin</name><role>admin</role><authorized-key>%s</authorized-key>"
            "<password-hash>%s</password-hash></user>"
            "<user><name>vnfm</name><role>vnf-manager</role><authorized-key>%s</authorized-key>"
            "</user><user><name>root</name><role>admin</role></user></netconf>"
            % (ssh_port, keys.host_key, unix, keys.pub(keys.admin_key), keys.password_hash,
               keys.pub(keys.vnfm_key)))


def daemon_config(keys, ssh_port, state_dir, unix_path=None, vm_health=None):
    if vm_health is None:
        vm_health = ("<host><name>a</name><uri>test:///default</uri></host>"
                     "<vnf-manager><name>m1</name><user>vnfm</user></vnf-manager>")
    return ('<vm-health xmlns="%s">%s</vm-health>' % (VMH_NS, vm_health)
            + vmhtest.agent_config(state_dir, netconf_xml(keys, ssh_port, unix_path)))


def connect(port, user="admin", key=None, password=None, timeout=30):
    # timeout bounds each RPC's reply: only a hung daemon reaches it.  One
    # ASan run under scripts/flaky's load, beside a valgrind suite, took
    # more than 10 s to answer a report-fault (why was not seen: the
    # daemon's log of that run was not kept).
    kw = dict(host="127.0.0.1", port=port, username=user, hostkey_verify=False,
              look_for_keys=False, allow_agent=False, timeout=timeout * vmhtest.SLOWDOWN)
    if password is not None:
        kw["password"] = password
    else:
        kw["key_filename"] = key
    return manager.connect(**kw)


def data_of(reply):
    return ET.fromstring(reply.xml.encode()).find("nc:data", NS)


def vmh(tag):
    return '<vm-health xmlns="%s">%s</vm-health>' % (VMH_NS, tag)


def config(body):
    return '<config xmlns="%s">%s</config>' % (NC_NS, body)


def rpc(name, body=""):
    return to_ele('<%s xmlns="%s">%s</%s>' % (name, VMH_NS, body, name))


def utc(seconds_ago=0):
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds_ago)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def notif_filter(body):
    """A create-subscription filter in the notification namespace, as the
    notifications YANG module defines it (ncclient's tuple form puts it in
    the base namespace, which the server accepts too)."""
    return to_ele('<filter xmlns="%s" type="subtree">%s</filter>' % (NOTIF_NS, body))


# ---------------------------------------------------------------------------

class NetconfTest(unittest.TestCase):
    """One daemon for the class; tests that change the configuration put it
    back."""

    @classmethod
    def setUpClass(cls):
        cls.keys = Keys()
        cls.port = free_port()
        cls.state = tempfile.mkdtemp(prefix="vmh-nc-state-")
        cls.daemon = Vmhealthd(daemon_config(cls.keys, cls.port, cls.state), name="netconf")
        cls.daemon.start()

    @classmethod
    def tearDownClass(cls):
        cls.daemon.close()
        cls.keys.close()
        shutil.rmtree(cls.state, ignore_errors=True)

    def setUp(self):
        self.sessions = []

    def tearDown(self):
        for m in self.sessions:
            try:
                if m.connected:
                    m.close_session()
            except Exception:
                pass

    def connect(self, user="admin", key=None, password=None):
        if key is None and password is None:
            key = self.keys.admin_key if user == "admin" else self.keys.vnfm_key
        m = connect(self.port, user, key, password)
        self.sessions.append(m)
        return m

    def assertRpcError(self, fn, tag, etype=None, path=None, message=None):
        with self.assertRaises(RPCError) as cm:
            fn()
        e = cm.exception
        self.assertEqual(e.tag, tag, e.message)
        if etype:
            self.assertEqual(e.type, etype)
        if path:
            self.assertEqual(e.path, path)
        if message:
            self.assertRegex(e.message or "", message)
        return e

    # -- transports and hello

    def test_hello_advertises_what_is_implemented(self):
        m = self.connect()
        caps = set(m.server_capabilities)
        for c in ("urn:ietf:params:netconf:base:1.1",
                  "urn:ietf:params:netconf:capability:notification:1.0",
                  "urn:ietf:params:netconf:capability:interleave:1.0",
                  "urn:ietf:params:netconf:capability:writable-running:1.0",
                  "urn:ietf:params:netconf:capability:startup:1.0",
                  "urn:ietf:params:netconf:capability:rollback-on-error:1.0",
                  "urn:ietf:params:netconf:capability:xpath:1.0"):
            self.assertIn(c, caps)
        self.assertTrue(any(c.startswith("urn:ietf:params:netconf:capability:with-defaults:1.0"
                                         "?basic-mode=explicit") for c in caps))
        # NETCONF 1.1 with yang-library: the modules are in the library, not the hello
        self.assertIn("urn:ietf:params:netconf:capability:validate:1.1", caps)
        self.assertTrue(any(c.startswith("urn:ietf:params:netconf:capability:yang-library:1.1")
                            for c in caps))
        for absent in ("candidate", "confirmed-commit", ":url:"):
            self.assertFalse(any(absent in c for c in caps), absent)

    def test_password_login_and_refusals(self):
        m = self.connect(password=PASSWORD)
        self.assertTrue(m.connected)
        with self.assertRaises(Exception):
            connect(self.port, "admin", password="wrong")
        with self.assertRaises(Exception):  # a key of nobody configured
            connect(self.port, "admin", key=self.keys.other_key)
        with self.assertRaises(Exception):  # a system account, not a NETCONF user
            connect(self.port, "nobody", password="")
        with self.assertRaises(Exception):  # configured user without a password hash
            connect(self.port, "root", password="")

    def test_silent_client_does_not_block_logins(self):
        silent = [socket.create_connection(("127.0.0.1", self.port)) for _ in range(3)]
        try:
            t0 = time.monotonic()
            m = self.connect()
            self.assertLess(time.monotonic() - t0, 3.0)
            self.assertTrue(m.connected)
        finally:
            for s in silent:
                s.close()

    # -- get, get-config

    def test_get_subtree_and_xpath_filters(self):
        m = self.connect()
        d = data_of(m.get(filter=("subtree", vmh("<vm><name/></vm>"))))
        vms = d.findall("vmh:vm-health/vmh:vm", NS)
        self.assertEqual([v.find("vmh:name", NS).text for v in vms], ["test"])
        self.assertEqual(vms[0].find("vmh:uuid", NS).text, TEST_VM)  # key comes along
        self.assertIsNone(vms[0].find("vmh:power-state", NS))
        # content match
        d = data_of(m.get(filter=("subtree", vmh("<host><name>a</name><state/></host>"))))
        self.assertEqual(d.find("vmh:vm-health/vmh:host/vmh:state/vmh:connection", NS).text,
                         "connected")
        d = data_of(m.get(filter=("subtree", vmh("<host><name>zz</name></host>"))))
        self.assertEqual(len(d), 0)
        d = data_of(m.get(filter=("xpath", (NS, "/vmh:vm-health/vmh:vm[vmh:name='test']"
                                                "/vmh:power-state"))))
        self.assertEqual(d.find("vmh:vm-health/vmh:vm/vmh:power-state", NS).text, "running")
        self.assertIsNone(d.find("vmh:vm-health/vmh:vm/vmh:name", NS))

    def test_with_defaults_modes(self):
        m = self.connect()
        f = ("subtree", vmh("<settings/>"))
        explicit = data_of(m.get_config("running", filter=f))
        self.assertIsNone(explicit.find(".//vmh:shutdown-timeout", NS))
        full = data_of(m.get_config("running", filter=f, with_defaults="report-all"))
        self.assertEqual(full.find(".//vmh:shutdown-timeout", NS).text, "60")
        tagged = m.get(filter=f, with_defaults="report-all-tagged").xml
        self.assertRegex(tagged, r'default="true"')
        trim = data_of(m.get(filter=f, with_defaults="trim"))
        self.assertIsNone(trim.find(".//vmh:cancel-on-clear", NS))

    def test_full_get_matches_the_generic_path(self):
        """An unfiltered get, or one whose subtree filter selects vm-health
        whole, prints the VMs, faults and statistics straight from the
        engine's snapshot; an XPath filter selecting vm-health builds them as
        libyang nodes and filters them.  All give the same vm-health in every
        with-defaults mode."""
        m = self.connect()
        r = m.dispatch(rpc("report-fault", "<host>a</host><severity>minor</severity>"
                                           "<description>&lt;x&gt; &amp; \"y\" 'z'</description>"))
        fid = ET.fromstring(r.xml.encode()).find("vmh:fault-id", NS).text
        try:
            for wd in (None, "trim", "report-all", "report-all-tagged"):
                kw = {"with_defaults": wd} if wd else {}
                full = data_of(m.get(**kw)).find("vmh:vm-health", NS)
                generic = data_of(m.get(filter=("xpath", (NS, "/vmh:vm-health")),
                                        **kw)).find("vmh:vm-health", NS)
                self.assertEqual(ET.tostring(full), ET.tostring(generic), wd)
                whole = data_of(m.get(filter=("subtree", vmh("")), **kw))
                self.assertEqual([ET.tostring(e) for e in whole], [ET.tostring(full)], wd)
                self.assertEqual(full.find("vmh:vm/vmh:uuid", NS).text, TEST_VM)
                f = full.find("vmh:fault[vmh:id='%s']" % fid, NS)
                self.assertEqual(f.find("vmh:description", NS).text, "<x> & \"y\" 'z'")
                self.assertIsNotNone(full.find("vmh:statistics/vmh:faults-detected", NS))
        finally:
            m.dispatch(rpc("clear-fault", "<fault-id>%s</fault-id>" % fid))

    def test_get_config_running_and_startup(self):
        m = self.connect()
        for ds in ("running", "startup"):
            d = data_of(m.get_config(ds))
            self.assertEqual(d.find("vmh:vm-health/vmh:host/vmh:uri", NS).text, "test:///default")
            self.assertIsNone(d.find("vmh:vm-health/vmh:vm", NS))  # no state
        # no :candidate: the schema has no such source
        self.assertRpcError(lambda: m.get_config("candidate"), "invalid-value", "application",
                            "/ietf-netconf:get-config/source")

    # -- edit-config

    def edit(self, m, body, **kw):
        return m.edit_config(target="running", config=config(body), **kw)

    def poll_interval(self, m):
        d = data_of(m.get_config("running", filter=("subtree", vmh("<settings/>")),
                                 with_defaults="report-all"))
        return d.find(".//vmh:poll-interval", NS).text

    def test_edit_config_operations(self):
        m = self.connect()
        op = 'xmlns:nc="%s" nc:operation="%%s"' % NC_NS
        host = "<host %s><name>b</name><uri>test:///default</uri>%%s</host>" % op
        self.assertTrue(self.edit(m, vmh(host % ("create", ""))).ok)
        e = self.assertRpcError(lambda: self.edit(m, vmh(host % ("create", ""))), "data-exists",
                                "application")
        self.assertEqual(e.path, "/nfv-vm-health:vm-health/host[name='b']")
        self.edit(m, vmh(host % ("merge", "<priority>7</priority>")))
        # A merge of a new value changes the one leaf; in an entry of few
        # children (no hash table in libyang) it once added a second leaf.
        mgr = "<vnf-manager><name>m9</name><preprocessing-time>%d</preprocessing-time>" \
              "</vnf-manager>"
        self.edit(m, vmh(mgr % 5))
        self.edit(m, vmh(mgr % 6))
        h = data_of(m.get_config("running", filter=("subtree", vmh("<vnf-manager><name>m9"
                                                                     "</name></vnf-manager>"))))
        self.assertEqual([p.text for p in h.findall(".//vmh:preprocessing-time", NS)], ["6"])
        self.edit(m, vmh('<vnf-manager %s><name>m9</name></vnf-manager>' % (op % "delete")))
        self.edit(m, vmh(host % ("replace", "<maintenance>true</maintenance>")))
        h = data_of(m.get_config("running", filter=("subtree", vmh("<host><name>b</name>"
                                                                     "</host>"))))
        self.assertIsNone(h.find(".//vmh:priority", NS))  # replaced away
        self.assertEqual(h.find(".//vmh:maintenance", NS).text, "true")
        self.edit(m, vmh(host % ("delete", "")))
        self.assertRpcError(lambda: self.edit(m, vmh(host % ("delete", ""))), "data-missing",
                            "application", "/nfv-vm-health:vm-health/host[name='b']")
        self.assertTrue(self.edit(m, vmh(host % ("remove", ""))).ok)  # absent: fine
        # default-operation none: only the explicit operation acts
        self.edit(m, vmh("<settings><poll-interval>1500</poll-interval></settings>"),
                  default_operation="none")
        self.assertEqual(self.poll_interval(m), "1000")
        self.edit(m, vmh("<settings><poll-interval %s>1500</poll-interval></settings>"
                         % (op % "merge")), default_operation="none")
        self.assertEqual(self.poll_interval(m), "1500")
        self.edit(m, vmh("<settings><poll-interval %s/></settings>" % (op % "delete")))
        self.assertEqual(self.poll_interval(m), "1000")
        # RFC 6243 (basic-mode explicit): a leaf holding its default only
        # was set by the server; create sets it, delete finds it missing
        pi = "<settings><poll-interval %s>%%s</poll-interval></settings>" % op
        self.assertRpcError(lambda: self.edit(m, vmh(pi % ("delete", ""))), "data-missing",
                            "application", "/nfv-vm-health:vm-health/settings/poll-interval")
        self.assertTrue(self.edit(m, vmh(pi % ("remove", ""))).ok)
        self.assertTrue(self.edit(m, vmh(pi % ("create", "1000"))).ok)
        self.assertRpcError(lambda: self.edit(m, vmh(pi % ("create", "1000"))), "data-exists",
                            "application", "/nfv-vm-health:vm-health/settings/poll-interval")
        explicit = data_of(m.get_config("running", filter=("subtree", vmh("<settings/>")),
                                        with_defaults="explicit"))
        self.assertEqual(explicit.find(".//vmh:poll-interval", NS).text, "1000")  # client's now
        self.assertTrue(self.edit(m, vmh(pi % ("delete", ""))).ok)
        explicit = data_of(m.get_config("running", filter=("subtree", vmh("<settings/>")),
                                        with_defaults="explicit"))
        self.assertIsNone(explicit.find(".//vmh:poll-interval", NS))

    def test_edit_config_test_only_and_rollback(self):
        m = self.connect()
        self.edit(m, vmh("<settings><poll-interval>2500</poll-interval></settings>"),
                  test_option="test-only")
        self.assertEqual(self.poll_interval(m), "1000")
        self.assertRpcError(lambda: self.edit(m, vmh("<host><name>c</name></host>"),
                                              test_option="test-only"), "data-missing")
        self.assertTrue(m.validate(source=to_ele(config(vmh("<settings><poll-interval>2500"
                                                     "</poll-interval></settings>")))).ok)
        self.assertRpcError(lambda: m.validate(source=to_ele(config(vmh("<host><name>c</name></host>")))),
                            "data-missing")
        # one good change and one bad one: nothing is applied
        self.assertRpcError(lambda: self.edit(
            m, vmh("<settings><poll-interval>2500</poll-interval></settings>"
                   "<host><name>c</name></host>"), error_option="rollback-on-error"),
            "data-missing", "application", "/nfv-vm-health:vm-health/host[name='c']/uri")
        self.assertEqual(self.poll_interval(m), "1000")
        d = data_of(m.get_config("running"))
        self.assertIsNone(d.find("vmh:vm-health/vmh:host[vmh:name='c']", NS))

    def test_edit_config_bad_input(self):
        m = self.connect()
        self.assertRpcError(
            lambda: self.edit(m, vmh("<settings><poll-interval>fast</poll-interval></settings>")),
            "invalid-value", "application", "/nfv-vm-health:vm-health/settings/poll-interval")
        e = self.assertRpcError(
            lambda: self.edit(m, vmh("<settings><colour>blue</colour></settings>")),
            "unknown-element", "application", "/nfv-vm-health:vm-health/settings/colour")
        self.assertIn("<bad-element>colour</bad-element>", e.info)
        self.assertRpcError(lambda: self.edit(m, '<foo xmlns="urn:example:nope"/>'),
                            "unknown-namespace", "application")
        self.assertRpcError(
            lambda: self.edit(m, vmh("<vm><uuid>%s</uuid><name>x</name></vm>" % TEST_VM)),
            "invalid-value", "application", message="state data")
        # a value out of the YANG range is caught by validation of the whole
        self.assertRpcError(
            lambda: self.edit(m, vmh("<settings><poll-interval>1</poll-interval></settings>")),
            "invalid-value", "application")
        self.assertRpcError(
            lambda: self.edit(m, vmh("<vm-assignment><uuid>%s</uuid><vnf-manager>nope"
                                     "</vnf-manager></vm-assignment>" % TEST_VM)),
            "data-missing", "application")
        self.assertEqual(self.poll_interval(m), "1000")

    def test_new_host_is_connected_live_and_removed(self):
        m = self.connect()
        self.edit(m, vmh("<host><name>live</name><uri>test:///default</uri></host>"))

        def state():
            d = data_of(m.get(filter=("subtree", vmh("<host><name>live</name><state/></host>"))))
            c = d.find(".//vmh:connection", NS)
            return c is not None and c.text == "connected"
        wait_for(state, timeout=10, what="host 'live' connected")
        dumped = self.daemon.dump_state()
        names = [h["name"] for h in dumped["nfv-vm-health:vm-health"]["host"]]
        self.assertIn("live", names)
        self.edit(m, vmh('<host xmlns:nc="%s" nc:operation="delete"><name>live</name></host>'
                         % NC_NS))
        wait_for(lambda: len(data_of(m.get(filter=("subtree", vmh("<vm><host>live</host></vm>")))))
                 == 0, what="VMs of 'live' gone")

    def test_preprocessing_time_change_applies_live(self):
        m = self.connect()

        def ppt():
            d = data_of(m.get(filter=("subtree", vmh("<vm><uuid>%s</uuid><preprocessing-time/>"
                                                     "<preprocessing-time-source/></vm>"
                                                     % TEST_VM))))
            return (d.find(".//vmh:preprocessing-time", NS).text,
                    d.find(".//vmh:preprocessing-time-source", NS).text)
        self.assertEqual(ppt(), ("60", "default"))
        self.edit(m, vmh("<vm-assignment><uuid>%s</uuid><vnf-manager>m1</vnf-manager>"
                         "<preprocessing-time>42</preprocessing-time></vm-assignment>" % TEST_VM))
        try:
            wait_for(lambda: ppt() == ("42", "vm-assignment"), what="assignment applied")
        finally:
            self.edit(m, vmh('<vm-assignment xmlns:nc="%s" nc:operation="remove"><uuid>%s</uuid>'
                             '</vm-assignment>' % (NC_NS, TEST_VM)))
        wait_for(lambda: ppt() == ("60", "default"), what="assignment removed")

    # -- locks and sessions

    def test_locks_between_two_sessions(self):
        a, b = self.connect(), self.connect()
        self.assertTrue(a.lock("running").ok)
        d = data_of(b.get(filter=("subtree", '<netconf-state xmlns="%s"><datastores/>'
                                             '</netconf-state>' % MON_NS)))
        held = d.find(".//mon:datastore[mon:name='running']/mon:locks/mon:global-lock", NS)
        self.assertEqual(held.find("mon:locked-by-session", NS).text, a.session_id)
        self.assertIsNotNone(held.find("mon:locked-time", NS))
        e = self.assertRpcError(lambda: b.lock("running"), "lock-denied", "protocol")
        self.assertIn("<session-id>%s</session-id>" % a.session_id, e.info)
        e = self.assertRpcError(
            lambda: self.edit(b, vmh("<settings><poll-interval>1200</poll-interval></settings>")),
            "in-use", "protocol")
        self.assertIn(a.session_id, e.message)
        self.assertRpcError(lambda: b.unlock("running"), "lock-denied")
        self.assertTrue(a.unlock("running").ok)
        self.assertRpcError(lambda: a.unlock("running"), "operation-failed")
        self.assertTrue(a.lock("startup").ok)
        self.assertRpcError(lambda: b.copy_config(source="running", target="startup"), "in-use")
        # a killed session's locks are released
        self.assertRpcError(lambda: b.kill_session(b.session_id), "invalid-value")
        self.assertTrue(b.kill_session(a.session_id).ok)
        wait_for(lambda: not a.connected, what="killed session closed")
        self.assertTrue(b.lock("startup").ok)
        self.assertTrue(b.unlock("startup").ok)
        self.assertRpcError(lambda: b.kill_session("99999"), "invalid-value")

    def test_close_session_releases_lock(self):
        a, b = self.connect(), self.connect()
        a.lock("running")
        a.close_session()
        wait_for(lambda: self._try_lock(b), what="lock free after close-session")
        b.unlock("running")

    @staticmethod
    def _try_lock(m):
        try:
            return m.lock("running").ok
        except RPCError:
            return False

    # -- domain RPCs

    def test_domain_rpcs_answer_with_the_engine_result(self):
        m = self.connect()
        r = m.dispatch(rpc("report-fault", "<host>a</host><cause>external</cause>"
                                           "<severity>minor</severity><description>t</description>"))
        fid = ET.fromstring(r.xml.encode()).find("vmh:fault-id", NS).text
        self.assertTrue(int(fid) > 0)
        d = data_of(m.get(filter=("subtree", vmh("<fault><id>%s</id></fault>" % fid))))
        self.assertEqual(d.find(".//vmh:severity", NS).text, "minor")
        self.assertTrue(m.dispatch(rpc("clear-fault", "<fault-id>%s</fault-id>" % fid)).ok)
        self.assertRpcError(lambda: m.dispatch(rpc("clear-fault", "<fault-id>%s</fault-id>" % fid)),
                            "invalid-value", "application",
                            "/nfv-vm-health:clear-fault/fault-id")
        self.assertRpcError(
            lambda: m.dispatch(rpc("migrate-vm", "<vm-uuid>00000000-0000-4000-8000-000000000000"
                                                 "</vm-uuid>")),
            "invalid-value", "application", "/nfv-vm-health:migrate-vm/vm-uuid")
        self.assertRpcError(lambda: m.dispatch(rpc("report-fault", "<cause>external</cause>")),
                            "missing-element", "protocol")
        self.assertRpcError(lambda: m.dispatch(rpc("report-fault", "<host>nope</host>")),
                            "invalid-value", "application", "/nfv-vm-health:report-fault/host")

    def test_refused_input_of_domain_rpcs_is_named(self):
        """libnetconf2 parses an RPC against the schema before any callback
        runs and would answer operation-failed without a path; a value the
        schema refuses is answered invalid-value with the node's path and a
        message naming it, an unknown element unknown-element, the RPC has
        no effect and the session goes on."""
        m = self.connect()

        def faults_detected():
            d = data_of(m.get(filter=("subtree", vmh("<statistics><faults-detected/>"
                                                         "</statistics>"))))
            return int(d.find(".//vmh:faults-detected", NS).text)

        before = faults_detected()
        cases = (("migrate-vm", "<vm-uuid>not-a-uuid</vm-uuid>", "vm-uuid", "not-a-uuid"),
                 ("migration-ready", "<vm-uuid>%s-0</vm-uuid>" % TEST_VM, "vm-uuid",
                  TEST_VM + "-0"),
                 ("report-fault", "<host>a</host><severity>bogus</severity>", "severity", "bogus"),
                 ("report-fault", "<vm-uuid>%s</vm-uuid><cause>no-such-cause</cause>" % TEST_VM,
                  "cause", "no-such-cause"),
                 ("report-fault", "<vm-uuid>6695eb01-zzzz</vm-uuid>", "vm-uuid", "6695eb01-zzzz"),
                 ("clear-fault", "<fault-id>abc</fault-id>", "fault-id", "abc"),
                 ("clear-fault", "<fault-id>-1</fault-id>", "fault-id", "-1"))
        for name, body, leaf, value in cases:
            e = self.assertRpcError(lambda: m.dispatch(rpc(name, body)), "invalid-value",
                                    "application", "/nfv-vm-health:%s/%s" % (name, leaf))
            self.assertIn('%s "%s"' % (leaf, value), e.message)
        e = self.assertRpcError(
            lambda: m.dispatch(rpc("migrate-vm", "<vm-uuid>%s</vm-uuid><bogus>1</bogus>"
                                   % TEST_VM)), "unknown-element", "protocol",
            "/nfv-vm-health:migrate-vm", "bogus")
        self.assertIn("<bad-element>bogus</bad-element>", e.info)
        # the engine's own refusals name the node they are about
        self.assertRpcError(
            lambda: m.dispatch(rpc("migrate-vm", "<vm-uuid>%s</vm-uuid><target-host>nohost"
                                                 "</target-host>" % TEST_VM)),
            "invalid-value", "application", "/nfv-vm-health:migrate-vm/target-host", "nohost")
        self.assertEqual(faults_detected(), before)  # nothing was reported
        r = m.dispatch(rpc("report-fault", "<host>a</host><severity>minor</severity>"))
        fid = ET.fromstring(r.xml.encode()).find("vmh:fault-id", NS).text
        self.assertTrue(m.dispatch(rpc("clear-fault", "<fault-id>%s</fault-id>" % fid)).ok)
        self.assertEqual(faults_detected(), before + 1)

    def test_refused_input_of_netconf_operations_is_named(self):
        """The same for the NETCONF operations the server answers itself:
        invalid-value with the node's path (also of an element from another
        module, with-defaults) instead of libnetconf2's operation-failed.
        close-session, which libnetconf2 carries out, keeps its answer and
        the session stays open."""
        m = self.connect()
        WD = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"
        cases = (
            ('<kill-session xmlns="%s"><session-id>abc</session-id></kill-session>' % NC_NS,
             "/ietf-netconf:kill-session/session-id", 'session-id "abc"'),
            ('<get xmlns="%s"><with-defaults xmlns="%s">everything</with-defaults></get>'
             % (NC_NS, WD), "/ietf-netconf:get/ietf-netconf-with-defaults:with-defaults",
             'with-defaults "everything"'),
            ('<edit-config xmlns="%s"><target><running/></target><default-operation>melt'
             '</default-operation><config/></edit-config>' % NC_NS,
             "/ietf-netconf:edit-config/default-operation", 'default-operation "melt"'),
            ('<lock xmlns="%s"><target><nowhere/></target></lock>' % NC_NS,
             "/ietf-netconf:lock/target", "invalid target"),
            ('<create-subscription xmlns="%s"><startTime>yesterday</startTime>'
             '</create-subscription>' % NOTIF_NS, "/notifications:create-subscription/startTime",
             'startTime "yesterday"'),
            ('<get-schema xmlns="%s"><identifier>nfv-vm-health</identifier><format>pdf'
             '</format></get-schema>' % MON_NS, "/ietf-netconf-monitoring:get-schema/format",
             'format "pdf"'),
        )
        for body, path, message in cases:
            e = self.assertRpcError(lambda: m.dispatch(to_ele(body)), "invalid-value",
                                    "application", path)
            self.assertIn(message, e.message)
        e = self.assertRpcError(lambda: m.dispatch(to_ele(
            '<kill-session xmlns="%s"><session-id>1</session-id><bogus/></kill-session>'
            % NC_NS)), "unknown-element", "protocol", "/ietf-netconf:kill-session")
        self.assertIn("<bad-element>bogus</bad-element>", e.info)
        with self.assertRaises(RPCError):
            m.dispatch(to_ele('<close-session xmlns="%s"><bogus/></close-session>' % NC_NS))
        self.assertTrue(m.connected)
        self.assertIsNotNone(m.get(filter=("subtree", vmh("<statistics/>"))))  # not ended

    # -- notifications

    def test_notifications_while_issuing_rpcs(self):
        m = self.connect()
        m.create_subscription()
        self.assertRpcError(lambda: m.create_subscription(), "in-use")
        r = m.dispatch(rpc("report-fault", "<host>a</host><description>n1</description>"))
        fid = ET.fromstring(r.xml.encode()).find("vmh:fault-id", NS).text
        self.assertTrue(m.get(filter=("subtree", vmh("<statistics/>"))).ok)  # interleave
        n = m.take_notification(timeout=5)
        self.assertIsNotNone(n, "no vm-abnormal")
        ev = ET.fromstring(n.notification_xml.encode())
        ab = ev.find("vmh:vm-abnormal", NS)
        self.assertEqual(ab.find("vmh:vm-uuid", NS).text, TEST_VM)
        self.assertEqual(ab.find("vmh:fault-id", NS).text, fid)
        self.assertEqual(ab.find("vmh:host", NS).text, "a")
        m.dispatch(rpc("clear-fault", "<fault-id>%s</fault-id>" % fid))
        names = []
        while "fault-cleared" not in names:
            n = m.take_notification(timeout=5)
            self.assertIsNotNone(n, "no fault-cleared (got %s)" % names)
            names.append(ET.fromstring(n.notification_xml.encode())[1].tag.split("}")[1])
        stats = data_of(m.get(filter=("subtree", vmh("<statistics/>"))))
        self.assertGreaterEqual(int(stats.find(".//vmh:notifications-sent", NS).text), 2)

    def test_subscription_filters(self):
        sub, xp, other = self.connect(), self.connect(), self.connect()
        sub.create_subscription(filter=notif_filter('<fault-cleared xmlns="%s"/>' % VMH_NS))
        xp.create_subscription(filter=to_ele(
            '<filter xmlns="%s" xmlns:vmh="%s" type="xpath" select="/vmh:vm-abnormal"/>'
            % (NOTIF_NS, VMH_NS)))
        r = other.dispatch(rpc("report-fault", "<host>a</host><description>f</description>"))
        fid = ET.fromstring(r.xml.encode()).find("vmh:fault-id", NS).text
        other.dispatch(rpc("clear-fault", "<fault-id>%s</fault-id>" % fid))
        n = sub.take_notification(timeout=5)
        self.assertIn("fault-cleared", n.notification_xml)
        n = xp.take_notification(timeout=5)
        self.assertIn("vm-abnormal", n.notification_xml)
        self.assertIsNone(xp.take_notification(timeout=0.5))  # fault-cleared filtered out

    def test_ncclient_filter_in_the_base_namespace_is_accepted(self):
        sub, other = self.connect(), self.connect()
        # ncclient's tuple form puts <filter> in the NETCONF base namespace
        sub.create_subscription(filter=("subtree", '<fault-cleared xmlns="%s"/>' % VMH_NS))
        r = other.dispatch(rpc("report-fault", "<host>a</host><description>b</description>"))
        fid = ET.fromstring(r.xml.encode()).find("vmh:fault-id", NS).text
        other.dispatch(rpc("clear-fault", "<fault-id>%s</fault-id>" % fid))
        n = sub.take_notification(timeout=5)
        self.assertIsNotNone(n)
        self.assertIn("fault-cleared", n.notification_xml)
        self.assertIsNone(sub.take_notification(timeout=0.3))

    def test_bad_subscriptions(self):
        m = self.connect()
        self.assertRpcError(lambda: m.create_subscription(stream_name="OTHER"), "invalid-value")
        future = (datetime.datetime.now(datetime.timezone.utc)
                  + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.assertRpcError(lambda: m.create_subscription(start_time=future), "bad-element")
        self.assertRpcError(lambda: m.dispatch(to_ele(
            '<create-subscription xmlns="%s"><stopTime>%s</stopTime></create-subscription>'
            % (NOTIF_NS, utc()))), "missing-element")

    def test_replay_and_stop_time(self):
        m = self.connect()
        # A live subscriber: once it has the fault-cleared, the server has
        # put it in its replay log too (both under one lock); the RPC's
        # reply alone does not mean that.
        live = self.connect()
        live.create_subscription(filter=notif_filter('<fault-cleared xmlns="%s"/>' % VMH_NS))
        start = utc(1)
        r = m.dispatch(rpc("report-fault", "<host>a</host><description>replay</description>"))
        fid = ET.fromstring(r.xml.encode()).find("vmh:fault-id", NS).text
        m.dispatch(rpc("clear-fault", "<fault-id>%s</fault-id>" % fid))
        while True:
            n = live.take_notification(timeout=10 * vmhtest.SLOWDOWN)
            self.assertIsNotNone(n, "no live fault-cleared for fault %s" % fid)
            if ">%s<" % fid in n.notification_xml:
                break
        replayer = self.connect()
        replayer.create_subscription(start_time=start, stop_time=utc())
        got = []
        while True:
            n = replayer.take_notification(timeout=5)
            self.assertIsNotNone(n, "replay ended early: %s" % got)
            got.append(ET.fromstring(n.notification_xml.encode())[1].tag.split("}")[1])
            if got[-1] == "notificationComplete":
                break
        self.assertEqual(got[-2:], ["replayComplete", "notificationComplete"])
        self.assertIn("vm-abnormal", got)
        self.assertIn("fault-cleared", got)

    # -- schemas and monitoring

    def test_get_schema_and_monitoring(self):
        m = self.connect()
        text = m.get_schema("nfv-vm-health").data
        self.assertIn("module nfv-vm-health", text)
        self.assertIn("rpc migration-ready", text)
        self.assertRpcError(lambda: m.get_schema("no-such-module"), "invalid-value")
        other = self.connect(password=PASSWORD)

        def listed():
            # The server files a new session in its list right after the
            # hello, which the client may see answered a moment before.
            d = data_of(m.get(filter=("subtree", '<netconf-state xmlns="%s"/>' % MON_NS)))
            sids = [s.text for s in d.findall(".//mon:sessions/mon:session/mon:session-id", NS)]
            return d if m.session_id in sids and other.session_id in sids else None
        d = vmhtest.wait_for(listed, timeout=5 * vmhtest.SLOWDOWN, what="both sessions listed")
        schemas = [s.text for s in d.findall(".//mon:schemas/mon:schema/mon:identifier", NS)]
        self.assertIn("nfv-vm-health", schemas)
        self.assertIn("running", [x.text for x in d.findall(".//mon:datastore/mon:name", NS)])
        d = data_of(m.get(filter=("subtree", '<netconf xmlns="%s"/>' % NS["ncn"])))
        self.assertEqual(d.find(".//ncn:stream/ncn:name", NS).text, "NETCONF")
        self.assertEqual(d.find(".//ncn:stream/ncn:replaySupport", NS).text, "true")

    # -- access of a vnf-manager user

    def test_vnf_manager_user_is_limited(self):
        m = self.connect("vnfm")
        d = data_of(m.get())
        self.assertIsNone(d.find("vha:agent", NS))  # no password hashes
        self.assertEqual(d.findall("vmh:vm-health/vmh:vm", NS), [])  # test VM has no manager
        self.assertRpcError(lambda: self.edit(m, vmh("<settings><poll-interval>1200"
                                                     "</poll-interval></settings>")),
                            "access-denied", "application")
        self.assertRpcError(lambda: m.dispatch(rpc("migrate-vm", "<vm-uuid>%s</vm-uuid>"
                                                   % TEST_VM)), "access-denied")
        self.assertRpcError(lambda: m.lock("running"), "access-denied")


class NetconfPersistence(unittest.TestCase):
    """copy-config to startup writes the file atomically; the daemon starts
    from it again, and the replay log survives the restart."""

    def test_startup_written_back_and_replay_after_restart(self):
        keys = Keys()
        self.addCleanup(keys.close)
        port = free_port()
        with Vmhealthd(daemon_config(keys, port, "/nonexistent-replaced"), name="nc-persist",
                       debug=False) as d:
            # the harness's state-dir lives in the daemon dir
            m = connect(port, key=keys.admin_key)
            m.edit_config(target="running", config=config(vmh(
                "<settings><poll-interval>4321</poll-interval></settings>")))
            with open(d.config_path) as f:
                self.assertNotIn("4321", f.read())  # running only, so far
            m.copy_config(source="running", target="startup")
            with open(d.config_path) as f:
                text = f.read()
            self.assertIn("<poll-interval>4321</poll-interval>", text)
            self.assertEqual(os.stat(d.config_path).st_mode & 0o777, 0o600)
            r = m.dispatch(rpc("report-fault", "<host>a</host><description>before restart"
                                               "</description>"))
            fid = ET.fromstring(r.xml.encode()).find("vmh:fault-id", NS).text
            before = utc(0)
            m.close_session()
            d.restart()
            m = connect(port, key=keys.admin_key)
            d2 = data_of(m.get_config("running"))
            self.assertEqual(d2.find(".//vmh:poll-interval", NS).text, "4321")
            m.create_subscription(start_time="2000-01-01T00:00:00Z", stop_time=before)
            got = []
            while not got or got[-1][0] != "notificationComplete":
                n = m.take_notification(timeout=5)
                self.assertIsNotNone(n, got)
                ev = ET.fromstring(n.notification_xml.encode())[1]
                fe = ev.find("vmh:fault-id", NS)
                got.append((ev.tag.split("}")[1], fe.text if fe is not None else None))
            self.assertIn(("vm-abnormal", fid), got)
            # startup -> running
            m.edit_config(target="running", config=config(vmh(
                "<settings><poll-interval>1111</poll-interval></settings>")))
            m.copy_config(source="startup", target="running")
            d3 = data_of(m.get_config("running"))
            self.assertEqual(d3.find(".//vmh:poll-interval", NS).text, "4321")
            m.close_session()

    def test_listener_that_cannot_bind_stops_the_daemon(self):
        keys = Keys()
        self.addCleanup(keys.close)
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        self.addCleanup(busy.close)
        port = busy.getsockname()[1]
        d = Vmhealthd(daemon_config(keys, port, "/x"), name="nc-bind", wait_ready=False)
        self.addCleanup(d.close)
        d.start()
        self.assertNotEqual(d.wait_exit(10), 0)
        self.assertRegex(d.log_text(), r"ssh-endpoint ssh: cannot listen on 127\.0\.0\.1 port %d"
                         % port)


if __name__ == "__main__":
    vmhtest.main()
