#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""agent/snmp changed live over NETCONF (edit-config through ncclient) on a
running vmhealthd, checked with net-snmp's own tools: communities, USM
users, trap targets, listening addresses, an address already taken (the
edit refused with in-use, nothing changed), a switch to a real snmpd's
AgentX socket and back, and the agent started and stopped as agent/snmp
appears and disappears.  No restart anywhere; every wait polls a condition.

Events come from report-fault / clear-fault on the domain "test" of
test:///default.  ncclient.transport.ssh.TICK = 0.001."""
import os
import re
import shutil
import socket
import tempfile
import unittest
import xml.etree.ElementTree as ET

import ncclient.transport.ssh
from ncclient.operations.rpc import RPCError

import test_netconf as nc
import vmhtest
from test_snmp import (AUTH_PASS, NOTIF_OBJ, PRIV_PASS, ROOT, SYS_DESCR, TOOLS, TRAP_OID,
                       TRAPD_ENGINE, VM_ENTRY, Snmpd, SnmpTrapd, parse_numeric, target,
                       target_counters, v2c, v3)
from vmhtest import VHA_NS, Vmhealthd, free_port

ncclient.transport.ssh.TICK = 0.001

NC_NS = nc.NC_NS
ABNORMAL = ROOT + ".0.1"
CLEARED = ROOT + ".0.5"


def address(port):
    return "<agent-address>udp:127.0.0.1:%d</agent-address>" % port


def community(name, source=None):
    return "<community><name>%s</name>%s</community>" % (
        name, "<source>%s</source>" % source if source else "")


def user(name, passphrase):
    return ("<usm-user><name>%s</name><auth-protocol>sha-512</auth-protocol>"
            "<auth-passphrase>%s</auth-passphrase><priv-protocol>aes-256</priv-protocol>"
            "</usm-user>" % (name, passphrase))


def noc_user():
    """The user snmptrapd knows (test_snmp.SnmpTrapd), for v3 targets."""
    return ("<usm-user><name>noc</name><auth-protocol>sha-512</auth-protocol>"
            "<auth-passphrase>%s</auth-passphrase><priv-protocol>aes-256</priv-protocol>"
            "<priv-passphrase>%s</priv-passphrase></usm-user>"
            % (AUTH_PASS, PRIV_PASS.replace('"', "&quot;")))


def with_fault(notifs, fid, trap=ABNORMAL):
    return [vbs for _, vbs in notifs
            if vbs.get(TRAP_OID) == trap and vbs.get(NOTIF_OBJ + ".12.0") == str(fid)]


class LiveSnmp(unittest.TestCase):
    """A daemon per test, started with `snmp` (the children of agent/snmp,
    None: no agent/snmp at all), changed over NETCONF."""

    def start(self, snmp, name):
        self.keys = nc.Keys()
        self.addCleanup(self.keys.close)
        self.ssh = free_port()
        self.state = tempfile.mkdtemp(prefix="vmh-snmp-live-")
        self.addCleanup(shutil.rmtree, self.state, True)
        cfg = nc.daemon_config(self.keys, self.ssh, self.state)
        if snmp is not None:
            cfg = cfg.replace("</netconf>", "</netconf><snmp>%s</snmp>" % snmp)
        self.d = Vmhealthd(cfg, name=name).start()
        self.addCleanup(self.d.close)
        self.d.wait_log(r"host a: connected")
        self.m = nc.connect(self.ssh, "admin", self.keys.admin_key)
        self.addCleanup(self.close_session)

    def close_session(self):
        if self.m.connected:
            self.m.close_session()

    # -- NETCONF

    def edit(self, body):
        """edit-config (merge) of children of /vmhealth-agent:agent."""
        self.m.edit_config(target="running", config=nc.config(
            '<agent xmlns="%s" xmlns:nc="%s">%s</agent>' % (VHA_NS, NC_NS, body)))

    def set_snmp(self, inner):
        """agent/snmp replaced by `inner`."""
        self.edit('<snmp nc:operation="replace">%s</snmp>' % inner)

    def running_snmp(self):
        return nc.data_of(self.m.get_config("running")).find("vha:agent/vha:snmp", nc.NS)

    def report_fault(self):
        r = self.m.dispatch(nc.rpc("report-fault", "<vm-uuid>%s</vm-uuid><cause>external</cause>"
                                                   "<description>live snmp</description>"
                                   % nc.TEST_VM))
        return int(ET.fromstring(r.xml.encode()).find("vmh:fault-id", nc.NS).text)

    def clear_fault(self, fid):
        self.m.dispatch(nc.rpc("clear-fault", "<fault-id>%d</fault-id>" % fid))

    # -- SNMP

    def get(self, port, auth, refused=False):
        # generous for answers (ASan builds on a loaded machine), short for refusals
        timing = ["-t", "1", "-r", "0"] if refused else ["-t", "3", "-r", "2"]
        return TOOLS.run("snmpget", *auth, "-On", *timing, "127.0.0.1:%d" % port, SYS_DESCR)

    def assertAnswers(self, port, auth=None):
        r = self.get(port, auth or v2c())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(SYS_DESCR, r.stdout)

    def assertNoAnswer(self, port, auth=None):
        r = self.get(port, auth or v2c(), refused=True)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertNotIn(SYS_DESCR + " = STRING", r.stdout)

    def counters(self):
        return target_counters(self.d.dump_state())


class Access(LiveSnmp):
    def test_community_added_changed_and_removed_without_restart(self):
        port = free_port("udp")
        self.start(address(port) + community("public"), "snmp-live-community")
        pid = self.d.pid
        self.assertAnswers(port)
        self.assertNoAnswer(port, v2c("fresh"))
        self.edit("<snmp>%s</snmp>" % community("fresh"))
        self.assertAnswers(port, v2c("fresh"))
        # renamed: the old one refused, the new one answers
        self.edit('<snmp><community nc:operation="delete"><name>fresh</name></community>%s'
                  '</snmp>' % community("fresher"))
        self.assertNoAnswer(port, v2c("fresh"))
        self.assertAnswers(port, v2c("fresher"))
        # its source prefix changed: refused from here, then allowed again
        self.edit("<snmp>%s</snmp>" % community("fresher", "10.0.0.0/8"))
        self.assertNoAnswer(port, v2c("fresher"))
        self.edit("<snmp>%s</snmp>" % community("fresher", "127.0.0.0/8"))
        self.assertAnswers(port, v2c("fresher"))
        self.edit('<snmp><community nc:operation="delete"><name>fresher</name></community>'
                  '</snmp>')
        self.assertNoAnswer(port, v2c("fresher"))
        # the community that stayed answered throughout, from the same process
        self.assertAnswers(port)
        self.assertEqual(self.d.pid, pid)

    def test_usm_user_added_changed_and_removed_without_restart(self):
        port = free_port("udp")
        self.start(address(port) + community("public"), "snmp-live-usm")
        old, new = "first passphrase", "second passphrase"
        as_ops = lambda p: v3(user="ops", apass=p, ppass=p)
        r = self.get(port, as_ops(old), refused=True)
        self.assertNotEqual(r.returncode, 0)
        self.edit("<snmp>%s</snmp>" % user("ops", old))
        self.assertAnswers(port, as_ops(old))
        self.edit("<snmp>%s</snmp>" % user("ops", new))
        r = self.get(port, as_ops(old), refused=True)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertAnswers(port, as_ops(new))
        self.edit('<snmp><usm-user nc:operation="delete"><name>ops</name></usm-user></snmp>')
        r = self.get(port, as_ops(new), refused=True)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertAnswers(port)


class Listeners(LiveSnmp):
    def test_agent_address_moved_to_another_port(self):
        old, new = free_port("udp"), free_port("udp")
        self.start(address(old) + community("public"), "snmp-live-move")
        self.assertAnswers(old)
        mark = self.d.mark()
        self.set_snmp(address(new) + community("public"))
        self.assertAnswers(new)
        self.assertNoAnswer(old)
        self.d.wait_log(r"no longer listening on udp:127.0.0.1:%d" % old, start=mark)
        # the old port is free again: another process can take it
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", old))
        s.close()

    def test_address_in_use_refused_and_nothing_changes(self):
        port = free_port("udp")
        self.start(address(port) + community("public"), "snmp-live-busy")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        self.addCleanup(s.close)
        busy = s.getsockname()[1]
        spec = "udp:127.0.0.1:%d" % busy
        before = ET.tostring(self.running_snmp())
        # moved to the taken port, a community added in the same edit
        with self.assertRaises(RPCError) as cm:
            self.set_snmp(address(busy) + community("public") + community("extra"))
        e = cm.exception
        self.assertEqual(e.tag, "in-use", e.message)
        self.assertEqual(e.type, "application")
        self.assertEqual(e.path, "/vmhealth-agent:agent/snmp/agent-address[.='%s']" % spec)
        self.assertRegex(e.message, r"cannot listen on %s" % re.escape(spec))
        # running unchanged, the old listener still serving, nothing of the
        # edit applied
        self.assertEqual(ET.tostring(self.running_snmp()), before)
        self.assertAnswers(port)
        self.assertNoAnswer(port, v2c("extra"))
        # added next to the old one: refused the same way
        with self.assertRaises(RPCError) as cm:
            self.edit("<snmp>%s</snmp>" % address(busy))
        self.assertEqual(cm.exception.tag, "in-use")
        self.assertEqual(ET.tostring(self.running_snmp()), before)
        # once free, the same edit applies
        s.close()
        self.edit("<snmp>%s%s</snmp>" % (address(busy), community("extra")))
        self.assertAnswers(busy, v2c("extra"))
        self.assertAnswers(port, v2c("extra"))

    def test_agent_started_and_stopped_as_agent_snmp_appears_and_goes(self):
        port = free_port("udp")
        self.start(None, "snmp-live-appear")
        self.assertNoAnswer(port)
        for _ in range(2):  # and again: net-snmp set up anew in the same process
            mark = self.d.mark()
            self.edit("<snmp>%s%s</snmp>" % (address(port), community("public")))
            self.assertAnswers(port)
            self.d.wait_log(r"SNMP agent listening on udp:127.0.0.1:%d" % port, start=mark)
            self.edit('<snmp nc:operation="delete"/>')
            self.assertNoAnswer(port)
            self.d.wait_log(r"SNMP agent stopping", start=mark)
        self.assertIsNone(self.running_snmp())
        self.assertEqual(self.d.stop(), 0)


class Targets(LiveSnmp):
    def test_target_added_gets_traps_and_removed_gets_none(self):
        with SnmpTrapd() as a, SnmpTrapd() as b:
            self.start(target("b", b.port), "snmp-live-targets")
            f1 = self.report_fault()
            b.wait_for(lambda n: with_fault(n, f1), what="fault %d at b" % f1)
            self.assertEqual(with_fault(a.notifications(), f1), [])
            # added: the next event reaches it
            self.edit("<snmp>%s</snmp>" % target("a", a.port))
            self.clear_fault(f1)
            a.wait_for(lambda n: with_fault(n, f1, CLEARED), what="fault %d cleared at a" % f1)
            b.wait_for(lambda n: with_fault(n, f1, CLEARED), what="fault %d cleared at b" % f1)
            # removed: b gets the next two events, a none of them
            self.edit('<snmp><target nc:operation="delete"><name>a</name></target></snmp>')
            f2 = self.report_fault()
            b.wait_for(lambda n: with_fault(n, f2), what="fault %d at b" % f2)
            self.clear_fault(f2)
            b.wait_for(lambda n: with_fault(n, f2, CLEARED), what="fault %d cleared at b" % f2)
            self.assertEqual([vbs for _, vbs in a.notifications()
                              if vbs.get(NOTIF_OBJ + ".12.0") == str(f2)], [])
            counters = self.counters()
            self.assertNotIn("a", counters)
            self.assertGreaterEqual(counters["b"][0], 4)

    def test_target_that_stays_keeps_its_session_queue_and_counters(self):
        dead = free_port("udp")
        with SnmpTrapd() as b:
            port = free_port("udp")
            slow = target("slow", dead, "v3", inform=True, engine_id=TRAPD_ENGINE,
                          timeout=1500, retries=1)
            self.start(address(port) + community("public") + noc_user() + slow
                       + target("b", b.port, "v3", inform=True, engine_id=TRAPD_ENGINE),
                       "snmp-live-keep")
            f1 = self.report_fault()
            b.wait_for(lambda n: with_fault(n, f1), what="fault %d at b" % f1)
            vmhtest.wait_for(lambda: self.counters()["b"][1] >= 1, interval=0.1,
                             what="b's inform acknowledged")
            before = self.counters()
            self.assertGreaterEqual(before["slow"][0], 1)  # sent, unanswered
            mark = self.d.mark()
            # unrelated edits while the inform to `slow` waits for its answer
            self.edit("<snmp>%s</snmp>" % community("other"))
            self.edit("<snmp>%s</snmp>" % target("c", free_port("udp")))
            after = self.counters()
            for name in ("slow", "b"):
                self.assertGreaterEqual(after[name], before[name], name)
            # the inform sent before the edits is retransmitted and given up
            # by the same session, not dropped with it
            self.d.wait_log(r"target slow: vmhVmAbnormal for %s not acknowledged after 1 "
                            r"retries" % nc.TEST_VM, timeout=15, start=mark)
            log = self.d.log_text(mark)
            self.assertNotIn("target slow: changed", log)
            self.assertNotIn("target b: changed", log)
            self.assertNotRegex(log, r"informs unacknowledged when")
            # b's counters go on from where they were
            self.clear_fault(f1)
            b.wait_for(lambda n: with_fault(n, f1, CLEARED), what="fault %d cleared at b" % f1)
            vmhtest.wait_for(lambda: self.counters()["b"][1] > before["b"][1], interval=0.1,
                             what="b acknowledged one more")
            self.assertGreater(self.counters()["b"][0], before["b"][0])

    def test_changed_target_gets_a_new_session_and_keeps_its_counters(self):
        with SnmpTrapd() as a, SnmpTrapd() as b:
            self.start(target("t", a.port), "snmp-live-change")
            f1 = self.report_fault()
            a.wait_for(lambda n: with_fault(n, f1), what="fault %d at a" % f1)
            vmhtest.wait_for(lambda: self.counters()["t"][0] >= 1, interval=0.1,
                             what="t counted")
            sent = self.counters()["t"][0]
            mark = self.d.mark()
            self.edit("<snmp><target><name>t</name><port>%d</port></target></snmp>" % b.port)
            self.d.wait_log(r"target t: changed", start=mark)
            self.clear_fault(f1)
            b.wait_for(lambda n: with_fault(n, f1, CLEARED), what="fault %d cleared at b" % f1)
            self.assertEqual(with_fault(a.notifications(), f1, CLEARED), [])
            vmhtest.wait_for(lambda: self.counters()["t"][0] > sent, interval=0.1,
                             what="t counted on from %d" % sent)


class AgentX(LiveSnmp):
    def walk(self, snmpd):
        """The vmhVmTable as snmpd serves it ({} when it has none)."""
        vbs = parse_numeric(TOOLS.run("snmpbulkwalk", *v2c(), "-On", "-t", "2", "-r", "1",
                                      "127.0.0.1:%d" % snmpd.port, VM_ENTRY).stdout)
        return {oid: v for oid, v in vbs.items() if oid.startswith(VM_ENTRY + ".")}

    def test_switch_to_a_real_snmpd_as_subagent_and_back(self):
        port, back = free_port("udp"), free_port("udp")
        with Snmpd() as snmpd, SnmpTrapd() as b:
            common = community("public") + target("b", b.port)
            self.start(address(port) + common, "snmp-live-agentx")
            self.assertAnswers(port)
            f1 = self.report_fault()
            b.wait_for(lambda n: with_fault(n, f1), what="fault %d at b" % f1)
            vmhtest.wait_for(lambda: (self.counters()["b"] or (0,))[0] >= 1, interval=0.1,
                             what="b counted")
            sent = self.counters()["b"][0]
            self.assertEqual(self.walk(snmpd), {})
            # master -> subagent of snmpd
            self.set_snmp("<agentx-socket>%s</agentx-socket>" % snmpd.socket + common)
            rows = vmhtest.wait_for(lambda: self.walk(snmpd), timeout=20,
                                    what="vmhVmTable through snmpd")
            self.assertEqual(rows[VM_ENTRY + ".3" + "".join("." + str(ord(c))
                                                              for c in nc.TEST_VM)], "a")
            self.assertNoAnswer(port)
            # the target went on across the restart of net-snmp
            self.clear_fault(f1)
            b.wait_for(lambda n: with_fault(n, f1, CLEARED), what="fault %d cleared at b" % f1)
            vmhtest.wait_for(lambda: self.counters()["b"][0] > sent, interval=0.1,
                             what="b counted on from %d" % sent)
            # subagent -> master on another port
            self.set_snmp(address(back) + common)
            self.assertAnswers(back)
            vmhtest.wait_for(lambda: not self.walk(snmpd), timeout=20,
                             what="vmhVmTable gone from snmpd")
            self.assertEqual(self.d.stop(), 0)


if __name__ == "__main__":
    try:
        vmhtest.main()
    finally:
        TOOLS.close()
