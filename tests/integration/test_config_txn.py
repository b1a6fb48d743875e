#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Configuration as transactions, against the real vmhealthd over ncclient:
every configuration node that changes is either applied live or refused
with an rpc-error naming the node and the reason, and a refused change
leaves running (and every subsystem) as it was.  edit-config and
copy-config (inline and startup -> running) end in the same commit.

ncclient.transport.ssh.TICK = 0.001."""
import os
import shutil
import tempfile
import unittest
import xml.etree.ElementTree as ET

import ncclient.transport.ssh
from ncclient.operations.rpc import RPCError
from ncclient.xml_ import to_ele

import vmhtest
from vmhtest import Vmhealthd, free_port
from test_netconf import (NS, Keys, config, connect, daemon_config, data_of, vmh)

ncclient.transport.ssh.TICK = 0.001

VHA_NS = vmhtest.VHA_NS


def vha(body):
    return '<agent xmlns="%s">%s</agent>' % (VHA_NS, body)


class ConfigTransactionTest(unittest.TestCase):
    """One daemon for the class; each test leaves running as it found it."""

    @classmethod
    def setUpClass(cls):
        cls.keys = Keys()
        cls.port = free_port()
        cls.state = tempfile.mkdtemp(prefix="vmh-txn-state-")
        cls.daemon = Vmhealthd(daemon_config(cls.keys, cls.port, cls.state), name="txn")
        cls.daemon.start()

    @classmethod
    def tearDownClass(cls):
        cls.daemon.close()
        cls.keys.close()
        shutil.rmtree(cls.state, ignore_errors=True)

    def setUp(self):
        self.m = connect(self.port, "admin", self.keys.admin_key)
        self.addCleanup(self.m.close_session)

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


if __name__ == "__main__":
    unittest.main(verbosity=2)
