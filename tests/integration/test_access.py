#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tenant isolation and authentication (issue #7), with ncclient sessions of
two VNF managers and an admin against the real vmhealthd and two private
libvirtd hosts:

  - get / get-config: a manager sees its VMs, their faults and the host
    faults under them, its own manager and assignment entries, hosts
    without uri and sysfs-root; never the agent subtree (password hashes,
    key paths) nor the other sessions (ietf-netconf-monitoring);
  - notifications, live and replayed, only for its VMs;
  - migration-ready / migrate-vm only on its VMs (an unknown VM is denied
    the same way, so a denial tells nothing), report-fault, clear-fault,
    copy-config, lock, kill-session admin-only;
  - edit-config: its managers' preprocessing-time and its VMs'
    vm-assignment entries, nothing else, and running unchanged after a
    denial;
  - wrong key and wrong password refused and logged with the peer address;
    repeated failures from one address slowed down."""
import os
import shutil
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

import libvirt
import ncclient.transport.ssh
from ncclient.operations.rpc import RPCError
from ncclient.xml_ import to_ele

import vmhtest
from vmhtest import Libvirtd, Vmhealthd, VMH_NS, VHA_NS
from test_netconf import Keys, PASSWORD, connect, data_of, NC_NS, NS

ncclient.transport.ssh.TICK = 0.001

VM_1 = "acc00000-0000-4000-8000-000000000001"  # m1's, by metadata
VM_2 = "acc00000-0000-4000-8000-000000000002"  # m2's, by metadata
VM_3 = "acc00000-0000-4000-8000-000000000003"  # nobody's
VM_4 = "acc00000-0000-4000-8000-000000000004"  # m1's, by an admin's vm-assignment
UNKNOWN = "acc00000-0000-4000-8000-0000000000ff"


def domain_xml(name, uuid, manager=None):
    meta = ("<metadata><vmh:assignment xmlns:vmh='%s'><vmh:vnf-manager>%s</vmh:vnf-manager>"
            "</vmh:assignment></metadata>" % (VMH_NS, manager)) if manager else ""
    return ("<domain type='test'><name>%s</name><uuid>%s</uuid>"
            "<memory unit='MiB'>128</memory><vcpu>1</vcpu><os><type>hvm</type></os>%s"
            "</domain>" % (name, uuid, meta))


def vmh(body):
    return '<vm-health xmlns="%s">%s</vm-health>' % (VMH_NS, body)


def rpc(name, **leaves):
    body = "".join("<%s>%s</%s>" % (k.replace("_", "-"), v, k.replace("_", "-"))
                   for k, v in leaves.items())
    return to_ele('<%s xmlns="%s">%s</%s>' % (name, VMH_NS, body, name))


def notifications(m, seconds, until=None, timeout=20):
    """The vmh notifications that arrive: [(kind, {leaf: text})].

    Without `until`: every one within `seconds`.  With `until`, a predicate
    on (that list so far, the set of other notifications seen so far, e.g.
    "replayComplete"): first until it holds (at most `timeout` s; the
    caller's assertion then shows what came), then `seconds` more, a
    negative check that nothing else arrives."""
    out, others = [], set()

    def take(end, done=lambda: False):
        while time.monotonic() < end and not done():
            n = m.take_notification(timeout=0.2)
            if n is None:
                continue
            for ev in ET.fromstring(n.notification_xml.encode()):
                if ev.tag.startswith("{%s}" % VMH_NS):
                    out.append((ev.tag.split("}")[1], {c.tag.split("}")[1]: c.text for c in ev}))
                elif not ev.tag.endswith("}eventTime"):
                    others.add(ev.tag.split("}")[1])

    if until is not None:
        take(time.monotonic() + timeout * vmhtest.SLOWDOWN, lambda: until(out, others))
    take(time.monotonic() + seconds)
    return out


def has_all(*expected):
    """An `until` for notifications(): every (kind, vm-uuid) of expected seen."""
    return lambda got, _: set(expected) <= {(k, n.get("vm-uuid")) for k, n in got}


class Access(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vmh-access-")
        cls.keys = Keys()
        cls.other_key = cls.keys._keygen("other2")
        cls.lv = {}
        for h in ("a", "b"):
            lv = Libvirtd("access-" + h)
            lv.start()
            c = lv.conn()
            d = c.lookupByName("test")
            d.destroy()
            d.undefine()
            cls.lv[h] = (lv, c)
        ca = cls.lv["a"][1]
        for name, uuid, mgr in (("ims-1", VM_1, "m1"), ("epc-1", VM_2, "m2"),
                                ("free-1", VM_3, None), ("ims-2", VM_4, None)):
            ca.defineXML(domain_xml(name, uuid, mgr)).create()
        cls.port = vmhtest.free_port()
        cls.daemon = Vmhealthd(cls.config(), name="access")
        cls.daemon.start()
        cls.daemon.wait_log(r"host a: connected, 4 domains")
        cls.daemon.wait_log(r"host b: connected")

    @classmethod
    def config(cls):
        hosts = "".join(
            "<host><name>%s</name><uri>%s</uri><sysfs-root>/nonexistent-%s</sysfs-root>"
            "<shared-storage>true</shared-storage></host>" % (h, cls.lv[h][0].uri, h)
            for h in ("a", "b"))
        vh = ("<settings><default-preprocessing-time>600</default-preprocessing-time>"
              "</settings>" + hosts
              + "<vnf-manager><name>m1</name><preprocessing-time>300</preprocessing-time>"
                "<user>vnfm</user></vnf-manager>"
              + "<vnf-manager><name>m2</name><preprocessing-time>200</preprocessing-time>"
                "<user>other</user></vnf-manager>"
              + "<vm-assignment><uuid>%s</uuid><vnf-manager>m1</vnf-manager></vm-assignment>"
              % VM_4
              + "<vm-assignment><uuid>%s</uuid><preprocessing-time>50</preprocessing-time>"
                "</vm-assignment>" % VM_2)
        k = cls.keys
        netconf = ("<netconf><ssh-endpoint><name>ssh</name><address>127.0.0.1</address>"
                   "<port>%d</port><host-key>%s</host-key></ssh-endpoint>"
                   "<user><name>admin</name><role>admin</role><authorized-key>%s"
                   "</authorized-key><password-hash>%s</password-hash></user>"
                   "<user><name>vnfm</name><role>vnf-manager</role><authorized-key>%s"
                   "</authorized-key><password-hash>%s</password-hash></user>"
                   "<user><name>other</name><role>vnf-manager</role><authorized-key>%s"
                   "</authorized-key></user></netconf>"
                   % (cls.port, k.host_key, k.pub(k.admin_key), k.password_hash,
                      k.pub(k.vnfm_key), k.password_hash, k.pub(cls.other_key)))
        return (vmh(vh) + '<agent xmlns="%s"><state-dir>%s/state</state-dir>%s</agent>'
                % (VHA_NS, cls.tmp, netconf))

    @classmethod
    def tearDownClass(cls):
        cls.daemon.close()
        for lv, c in cls.lv.values():
            c.close()
            lv.close()
        cls.keys.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.sessions = []

    def tearDown(self):
        for m in self.sessions:
            try:
                if m.connected:
                    m.close_session()
            except Exception:
                pass

    def session(self, user):
        key = {"admin": self.keys.admin_key, "vnfm": self.keys.vnfm_key,
               "other": self.other_key}[user]
        m = connect(self.port, user, key=key)
        self.sessions.append(m)
        return m

    def denied(self, fn, path=None, message=None):
        with self.assertRaises(RPCError) as cm:
            fn()
        e = cm.exception
        self.assertEqual((e.tag, e.type), ("access-denied", "application"), e.message)
        if path:
            self.assertEqual(e.path, path)
        if message:
            self.assertRegex(e.message, message)
        return e

    def running(self):
        return ET.tostring(data_of(self.session("admin").get_config("running")))

    def edit(self, m, body):
        return m.edit_config(target="running",
                             config='<config xmlns="%s">%s</config>' % (NC_NS, vmh(body)))

    # -- reading

    def test_get_shows_a_manager_only_its_own(self):
        admin = self.session("admin")
        f1 = admin.dispatch(rpc("report-fault", vm_uuid=VM_1, cause="external",
                                severity="minor", description="probe 1"))
        f2 = admin.dispatch(rpc("report-fault", vm_uuid=VM_2, cause="external",
                                severity="minor", description="probe 2"))
        fh = admin.dispatch(rpc("report-fault", host="a", cause="external", severity="minor",
                                description="host probe"))
        ids = [ET.fromstring(r.xml.encode()).find(".//{%s}fault-id" % VMH_NS).text
               for r in (f1, f2, fh)]
        try:
            full = data_of(admin.get())
            self.assertEqual(len(full.findall("vmh:vm-health/vmh:vm", NS)), 4)
            self.assertIsNotNone(full.find("vha:agent/vha:netconf/vha:user/vha:password-hash",
                                           NS))
            for user, mine, their_fault in (("vnfm", {VM_1, VM_4}, ids[0]),
                                            ("other", {VM_2}, ids[1])):
                d = data_of(self.session(user).get())
                vh = d.find("vmh:vm-health", NS)
                self.assertEqual({v.find("vmh:uuid", NS).text for v in vh.findall("vmh:vm", NS)},
                                 mine, user)
                self.assertIsNone(d.find("vha:agent", NS))
                self.assertIsNone(d.find("{%s}netconf-state" % NS["mon"]))
                self.assertEqual([m.find("vmh:name", NS).text
                                  for m in vh.findall("vmh:vnf-manager", NS)],
                                 ["m1" if user == "vnfm" else "m2"])
                faults = {f.find("vmh:id", NS).text for f in vh.findall("vmh:fault", NS)}
                self.assertEqual(faults, {their_fault, ids[2]}, user)  # host a runs its VMs
                hosts = vh.findall("vmh:host", NS)
                self.assertEqual(sorted(h.find("vmh:name", NS).text for h in hosts), ["a", "b"])
                for h in hosts:
                    self.assertIsNone(h.find("vmh:uri", NS))
                    self.assertIsNone(h.find("vmh:sysfs-root", NS))
                    self.assertIsNotNone(h.find("vmh:state", NS))
            # get-config: own assignment entries only, agent subtree hidden
            c = data_of(self.session("vnfm").get_config("running"))
            self.assertEqual([a.find("vmh:uuid", NS).text
                              for a in c.findall("vmh:vm-health/vmh:vm-assignment", NS)], [VM_4])
            self.assertIsNone(c.find("vha:agent", NS))
            c = data_of(self.session("other").get_config("running"))
            self.assertEqual([a.find("vmh:uuid", NS).text
                              for a in c.findall("vmh:vm-health/vmh:vm-assignment", NS)], [VM_2])
        finally:
            for i in ids:
                admin.dispatch(rpc("clear-fault", fault_id=i))

    # -- notifications

    def test_notifications_and_replay_only_for_own_vms(self):
        t0 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
        vnfm, other, admin = self.session("vnfm"), self.session("other"), self.session("admin")
        vnfm.create_subscription(stream_name="NETCONF")
        other.create_subscription(stream_name="NETCONF")
        ids = []
        for vm in (VM_1, VM_2, VM_3):
            r = admin.dispatch(rpc("report-fault", vm_uuid=vm, cause="external",
                                   severity="minor", description="notif probe"))
            ids.append(ET.fromstring(r.xml.encode()).find(".//{%s}fault-id" % VMH_NS).text)
        for i in ids:
            admin.dispatch(rpc("clear-fault", fault_id=i))
        # each until it has its own VM's two, then 0.5 s more in which
        # nothing else may come (a negative check)
        got = {"vnfm": notifications(vnfm, 0.5, has_all(("vm-abnormal", VM_1),
                                                         ("fault-cleared", VM_1))),
               "other": notifications(other, 0.5, has_all(("vm-abnormal", VM_2),
                                                          ("fault-cleared", VM_2)))}
        for user, vm in (("vnfm", VM_1), ("other", VM_2)):
            self.assertEqual({(k, n["vm-uuid"]) for k, n in got[user]},
                             {("vm-abnormal", vm), ("fault-cleared", vm)}, user)
        # replay of the same minutes: still only its own
        late = self.session("vnfm")
        late.create_subscription(stream_name="NETCONF", start_time=t0)
        replayed = notifications(late, 0, lambda _, others: "replayComplete" in others)
        seen = {n.get("vm-uuid") for _, n in replayed}
        self.assertIn(VM_1, seen)
        self.assertLessEqual(seen, {VM_1, VM_4})  # VM 4 moved in another test

    # -- operations

    def test_rpcs_on_vms_of_others_are_denied(self):
        vnfm = self.session("vnfm")
        for name in ("migration-ready", "migrate-vm"):
            for vm in (VM_2, VM_3, UNKNOWN):
                self.denied(lambda: vnfm.dispatch(rpc(name, vm_uuid=vm)),
                            message="VM %s is not managed by a VNF manager of user 'vnfm'" % vm)
        # its own VM passes access control and gets the engine's answer
        with self.assertRaises(RPCError) as cm:
            vnfm.dispatch(rpc("migrate-vm", vm_uuid=VM_1, target_host="nowhere"))
        self.assertEqual(cm.exception.tag, "invalid-value")
        with self.assertRaises(RPCError) as cm:
            vnfm.dispatch(rpc("migration-ready", vm_uuid=VM_4))
        self.assertNotEqual(cm.exception.tag, "access-denied")  # no window runs for it
        fault = ET.fromstring(self.session("admin").dispatch(rpc(
            "report-fault", vm_uuid=VM_1, cause="external", severity="minor")).xml.encode())
        fid = fault.find(".//{%s}fault-id" % VMH_NS).text
        try:
            self.denied(lambda: vnfm.dispatch(rpc("report-fault", vm_uuid=VM_1,
                                                  cause="external")), message="admin role")
            self.denied(lambda: vnfm.dispatch(rpc("clear-fault", fault_id=fid)))
            self.denied(lambda: vnfm.copy_config(source="running", target="startup"))
            self.denied(lambda: vnfm.lock("running"))
            self.denied(lambda: vnfm.unlock("running"))
            self.denied(lambda: vnfm.dispatch(to_ele(
                '<kill-session xmlns="%s"><session-id>%s</session-id></kill-session>'
                % (NC_NS, self.session("admin").session_id))))
        finally:
            self.session("admin").dispatch(rpc("clear-fault", fault_id=fid))

    def test_migrate_vm_of_its_own_vm_moves_it(self):
        vnfm = self.session("vnfm")
        vnfm.create_subscription(stream_name="NETCONF")
        self.assertTrue(vnfm.dispatch(rpc("migrate-vm", vm_uuid=VM_4, target_host="b")).ok)
        kinds = []
        end = time.monotonic() + 20 * vmhtest.SLOWDOWN
        while "vm-migration-completed" not in kinds and time.monotonic() < end:
            kinds += [k for k, n in notifications(vnfm, 0.5) if n.get("vm-uuid") == VM_4]
        self.assertIn("vm-migration-completed", kinds)
        self.assertTrue(self.lv["b"][1].lookupByUUIDString(VM_4).isActive())
        # and back, so the other tests find it on a
        self.assertTrue(vnfm.dispatch(rpc("migrate-vm", vm_uuid=VM_4, target_host="a")).ok)
        vmhtest.wait_for(lambda: self._active_on("a", VM_4), timeout=20, what="VM 4 back on a")

    def _active_on(self, host, uuid):
        try:
            return self.lv[host][1].lookupByUUIDString(uuid).isActive()
        except libvirt.libvirtError:
            return False

    # -- editing

    def test_manager_edits_only_what_is_its_own(self):
        vnfm = self.session("vnfm")
        before = self.running()
        base = "/nfv-vm-health:vm-health"
        denials = [
            ("<vnf-manager><name>m2</name><preprocessing-time>1</preprocessing-time>"
             "</vnf-manager>", base + "/vnf-manager[name='m2']", "not one of user 'vnfm'"),
            ("<vnf-manager><name>m1</name><user>other</user></vnf-manager>",
             base + "/vnf-manager[name='m1']/user[.='other']", "only the preprocessing-time"),
            ("<vnf-manager><name>m3</name></vnf-manager>", base + "/vnf-manager[name='m3']",
             "admin role"),
            ("<vm-assignment><uuid>%s</uuid><preprocessing-time>5</preprocessing-time>"
             "</vm-assignment>" % VM_2, base + "/vm-assignment[uuid='%s']" % VM_2,
             "VM %s is not managed" % VM_2),
            ("<vm-assignment><uuid>%s</uuid><vnf-manager>m1</vnf-manager></vm-assignment>"
             % VM_3, base + "/vm-assignment[uuid='%s']" % VM_3, "VM %s is not managed" % VM_3),
            ("<vm-assignment><uuid>%s</uuid><vnf-manager>m1</vnf-manager></vm-assignment>"
             % UNKNOWN, None, "VM %s is not managed" % UNKNOWN),
            ("<vm-assignment><uuid>%s</uuid><vnf-manager>m2</vnf-manager></vm-assignment>"
             % VM_1, None, "only to its own VNF managers, not 'm2'"),
            ("<vm-assignment xmlns:nc='%s' nc:operation='delete'><uuid>%s</uuid>"
             "</vm-assignment>" % (NC_NS, VM_2), None, "not managed"),
            ("<settings><poll-interval>1200</poll-interval></settings>",
             base + "/settings/poll-interval", "admin role"),
            ("<host><name>a</name><maintenance>true</maintenance></host>",
             base + "/host[name='a']", "admin role"),
        ]
        for body, path, msg in denials:
            with self.subTest(body=body):
                self.denied(lambda: self.edit(vnfm, body), path=path, message=msg)
        self.denied(lambda: vnfm.edit_config(target="running", config=(
            '<config xmlns="%s"><agent xmlns="%s"><snmp><agent-address>udp:127.0.0.1:1'
            '</agent-address></snmp></agent></config>' % (NC_NS, VHA_NS))), message="admin role")
        self.assertEqual(self.running(), before)

        # What is its own: its manager's time, its VMs' assignments
        self.assertTrue(self.edit(vnfm, "<vnf-manager><name>m1</name><preprocessing-time>120"
                                        "</preprocessing-time></vnf-manager>").ok)
        self.assertTrue(self.edit(vnfm, "<vm-assignment><uuid>%s</uuid><preprocessing-time>30"
                                        "</preprocessing-time></vm-assignment>" % VM_1).ok)
        self.assertTrue(self.edit(vnfm, "<vm-assignment><uuid>%s</uuid><preprocessing-time>40"
                                        "</preprocessing-time></vm-assignment>" % VM_4).ok)
        vms = {v.find("vmh:uuid", NS).text: v.find("vmh:preprocessing-time", NS).text
               for v in data_of(vnfm.get()).findall("vmh:vm-health/vmh:vm", NS)}
        self.assertEqual(vms, {VM_1: "30", VM_4: "40"})
        self.assertTrue(self.edit(vnfm, "<vm-assignment xmlns:nc='%s' nc:operation='delete'>"
                                        "<uuid>%s</uuid></vm-assignment>" % (NC_NS, VM_1)).ok)
        self.assertTrue(self.edit(vnfm, "<vm-assignment><uuid>%s</uuid><preprocessing-time "
                                        "xmlns:nc='%s' nc:operation='remove'/></vm-assignment>"
                                        % (VM_4, NC_NS)).ok)
        self.assertTrue(self.edit(vnfm, "<vnf-manager><name>m1</name><preprocessing-time>300"
                                        "</preprocessing-time></vnf-manager>").ok)
        self.assertEqual(self.running(), before)

    # -- files

    def test_state_files_are_the_daemons_alone(self):
        admin = self.session("admin")
        r = admin.dispatch(rpc("report-fault", vm_uuid=VM_3, cause="external", severity="minor"))
        admin.dispatch(rpc("clear-fault", fault_id=ET.fromstring(r.xml.encode()).find(
            ".//{%s}fault-id" % VMH_NS).text))  # the replay log gets both
        admin.copy_config(source="running", target="startup")
        self.daemon.dump_state()
        state = os.path.join(self.tmp, "state")
        self.assertEqual(os.stat(state).st_mode & 0o777, 0o700)
        files = os.listdir(state)
        self.assertGreaterEqual(len(files), 2, files)  # replay log, operational.json
        for f in files:
            with self.subTest(file=f):
                self.assertEqual(os.stat(os.path.join(state, f)).st_mode & 0o077, 0, f)
        self.assertEqual(os.stat(self.daemon.config_path).st_mode & 0o777, 0o600)

    # -- authentication

    def test_wrong_credentials_are_logged_and_slowed_down(self):
        mark = self.daemon.mark()
        with self.assertRaises(Exception):
            connect(self.port, "vnfm", key=self.other_key)  # other's key is not vnfm's
        self.daemon.wait_log(r"public key of 'vnfm' from 127\.0\.0\.1 refused", start=mark)
        with self.assertRaises(Exception):
            connect(self.port, "ghost", password="x")
        self.daemon.wait_log(r"password of 'ghost' from 127\.0\.0\.1 refused "
                             r"\(no such NETCONF user\)", start=mark)
        # keep failing until the daemon makes the next attempt wait
        for _ in range(6):
            with self.assertRaises(Exception):
                connect(self.port, "vnfm", password="wrong")
        self.daemon.wait_log(r"failed logins from 127\.0\.0\.1: the login of 'vnfm' waits "
                             r"\d+ ms", start=mark)
        t0 = time.monotonic()
        m = connect(self.port, "vnfm", password=PASSWORD, timeout=30)
        waited = time.monotonic() - t0
        m.close_session()
        self.assertGreaterEqual(waited, 1.0)  # the right password waits its turn too
        # the success starts the address afresh: the next login does not wait
        mark = self.daemon.mark()
        self.session("vnfm")
        self.assertNotRegex(self.daemon.log_text(start=mark), r"waits \d+ ms")


if __name__ == "__main__":
    vmhtest.main()
