#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Cold migration executor (src/virt/migrate.c) against two private libvirtd
daemons serving the test driver: the real vmh_virt_migrate() runs in
vmh-migrate-tool, failures are provoked for real between its steps (the tool
pauses before a step and waits for a line on stdin), and placement is checked
through this test's own libvirt connections after every case: the domain is
defined on exactly one host, running again on the source when it ran before.

    /usr/bin/python3 tests/integration/test_migrate.py
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmhtest  # noqa: E402
from vmhtest import Libvirtd  # noqa: E402

import libvirt  # noqa: E402

TOOL = os.path.join(os.path.dirname(vmhtest.vmhealthd_binary()), "vmh-migrate-tool")

DOMAIN = """<domain type='test'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type>hvm</type></os>
  <devices>{devices}</devices>
</domain>"""

DISK = """<disk type='file' device='disk'>
  <source file='/var/lib/vmh-test/{name}.img'/><target dev='vda' bus='virtio'/>
</disk>"""


def clear_builtin(lv):
    """test:///default starts with a domain "test" of 8 GiB on a 3 GiB node:
    remove it, or no host has room for anything."""
    try:
        d = lv.keeper.lookupByName("test")
        if d.isActive():
            d.destroy()
        d.undefine()
    except libvirt.libvirtError:
        pass


class Run:
    """One vmh-migrate-tool run; `actions` maps a step name to a function run
    while the tool waits before that step."""

    def __init__(self, args, actions=None, timeout=60):
        actions = actions or {}
        argv = [TOOL]
        for step in actions:
            argv += ["--pause-at", step]
        argv += list(args)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.paused = []
        self.outcome = None
        deadline = time.monotonic() + timeout
        for line in self.proc.stdout:
            if line.startswith("step "):
                step = line.split()[1]
                self.paused.append(step)
                try:
                    actions[step]()
                except BaseException:
                    self.proc.kill()
                    self.proc.wait()
                    raise
                self.proc.stdin.write("\n")
                self.proc.stdin.flush()
            elif line.startswith("{"):
                self.outcome = json.loads(line)
            if time.monotonic() > deadline:
                self.proc.kill()
                break
        self.proc.stdin.close()
        self.rc = self.proc.wait(timeout)
        self.stderr = self.proc.stderr.read()
        self.proc.stderr.close()
        self.proc.stdout.close()
        if self.outcome is None:
            raise AssertionError("vmh-migrate-tool printed no outcome (rc %s):\n%s"
                                 % (self.rc, self.stderr))

    def __getitem__(self, key):
        return self.outcome[key]


class ColdMigration(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(TOOL, os.X_OK):
            raise AssertionError("%s not built" % TOOL)
        cls.a = Libvirtd("mig-a")
        cls.b = Libvirtd("mig-b")
        cls.a.start()
        try:
            cls.b.start()
        except BaseException:
            cls.a.close()
            raise
        clear_builtin(cls.a)
        clear_builtin(cls.b)

    @classmethod
    def tearDownClass(cls):
        cls.a.close()
        cls.b.close()

    def setUp(self):
        for lv in (self.a, self.b):
            if not lv.running:
                lv.start()
                clear_builtin(lv)

    # -- helpers
    def new_domain(self, running=True, disk=False):
        u = str(uuid.uuid4())
        name = "vm-" + u[:8]
        xml = DOMAIN.format(name=name, uuid=u, devices=DISK.format(name=name) if disk else "")
        c = self.a.conn()
        d = c.defineXML(xml)
        if running:
            d.create()
        c.close()
        return u, name

    def placement(self, u):
        """{host name: active} for every host where u is defined, read
        through new connections of this test."""
        where = {}
        for lv in (self.a, self.b):
            c = libvirt.open(lv.uri)
            try:
                d = c.lookupByUUIDString(u)
                where[lv.name] = bool(d.isActive())
            except libvirt.libvirtError as e:
                if e.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise
            finally:
                c.close()
        return where

    def assert_only_on(self, u, host, running):
        self.assertEqual(self.placement(u), {host.name: running})

    def migrate(self, u, *extra, actions=None, src=None, dst=None):
        return Run([*extra, (src or self.a).uri if src is not False else "-",
                    (dst or self.b).uri, u], actions)

    # -- the move
    def test_running_vm_moves_and_runs_on_target(self):
        u, _ = self.new_domain()
        r = self.migrate(u, "--shared")
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertTrue(r["ok"] and r["was_running"] and r["started"])
        self.assertEqual(r["steps"], ["check", "shutdown", "export", "storage", "define", "start",
                                      "undefine-source", "done"])
        self.assertFalse(r["native"])  # the test driver has no virDomainMigrate3
        self.assert_only_on(u, self.b, True)

    def test_shut_off_vm_stays_off(self):
        u, _ = self.new_domain(running=False)
        r = self.migrate(u, "--shared")
        self.assertTrue(r["ok"], r.stderr)
        self.assertFalse(r["was_running"] or r["started"])
        self.assert_only_on(u, self.b, False)

    def test_crashed_vm_is_started_on_target(self):
        u, _ = self.new_domain()
        c = self.a.conn()
        with tempfile.TemporaryDirectory() as tmp:
            os.chmod(tmp, 0o777)
            c.lookupByUUIDString(u).coreDump(os.path.join(tmp, "core"), libvirt.VIR_DUMP_CRASH)
        state, reason = c.lookupByUUIDString(u).state()
        self.assertEqual((state, reason),
                         (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_CRASHED))
        r = self.migrate(u, "--shared")
        self.assertTrue(r["ok"] and r["was_running"] and r["started"], r.stderr)
        self.assert_only_on(u, self.b, True)

    def test_diskless_vm_moves_without_shared_storage(self):
        u, _ = self.new_domain()
        r = self.migrate(u)
        self.assertTrue(r["ok"], r["error"])
        self.assert_only_on(u, self.b, True)

    # -- refused up front: nothing touched
    def test_unshared_disk_refused_up_front_on_test_driver(self):
        u, _ = self.new_domain(disk=True)
        r = self.migrate(u)
        self.assertEqual((r.rc, r["failed_step"]), (1, "check"))
        self.assertIn("cannot stream storage volumes", r["error"])
        self.assertTrue(r["rolled_back"])
        self.assert_only_on(u, self.a, True)
        # the same domain with its storage declared shared moves
        self.assertTrue(self.migrate(u, "--shared")["ok"])
        self.assert_only_on(u, self.b, True)

    def test_same_name_on_target_refused_up_front(self):
        u, name = self.new_domain()
        other = self.b.conn().defineXML(DOMAIN.format(name=name, uuid=str(uuid.uuid4()),
                                                      devices=""))
        try:
            r = self.migrate(u, "--shared")
            self.assertEqual(r["failed_step"], "check")
            self.assertIn("another domain named " + name, r["error"])
            self.assertEqual(r["steps"], ["check"])
            self.assert_only_on(u, self.a, True)
        finally:
            other.undefine()

    def test_no_room_on_target_refused_up_front(self):
        u, _ = self.new_domain()
        big = self.b.conn().defineXML(DOMAIN.format(name="big", uuid=str(uuid.uuid4()),
                                                    devices="").replace(">256<", ">2900<"))
        try:
            r = self.migrate(u, "--shared")
            self.assertEqual(r["failed_step"], "check")
            self.assertIn("KiB left", r["error"])
            self.assert_only_on(u, self.a, True)
            self.assertTrue(self.migrate(u, "--shared", "--ignore-room")["ok"])
            self.assert_only_on(u, self.b, True)
        finally:
            big.undefine()

    # -- failures between the steps, rolled back
    def test_define_refused_on_target_rolls_back(self):
        u, name = self.new_domain()
        taken = []

        def take_the_name():
            taken.append(self.b.conn().defineXML(
                DOMAIN.format(name=name, uuid=str(uuid.uuid4()), devices="")))

        r = self.migrate(u, "--shared", actions={"define": take_the_name})
        try:
            self.assertEqual((r.rc, r["failed_step"]), (1, "define"))
            self.assertIn("already exists", r["error"])  # libvirt's own message
            self.assertTrue(r["rolled_back"] and r["was_running"])
            self.assert_only_on(u, self.a, True)
        finally:
            taken[0].undefine()

    def test_start_failure_on_target_rolls_back(self):
        u, _ = self.new_domain()

        def start_it_behind_its_back():
            self.b.conn().lookupByUUIDString(u).create()

        r = self.migrate(u, "--shared", actions={"start": start_it_behind_its_back})
        self.assertEqual(r["failed_step"], "start")
        self.assertIn("already running", r["error"])
        self.assertTrue(r["rolled_back"])
        self.assert_only_on(u, self.a, True)

    def test_target_daemon_stopped_before_define(self):
        u, _ = self.new_domain()
        r = self.migrate(u, "--shared", actions={"define": self.b.stop})
        self.assertEqual(r["failed_step"], "define")
        self.assertTrue(r["rolled_back"], r["error"])
        self.assertFalse(r["target_leftover"])
        self.b.start()
        clear_builtin(self.b)
        self.assert_only_on(u, self.a, True)

    def test_target_daemon_stopped_after_define(self):
        u, _ = self.new_domain()
        r = self.migrate(u, "--shared", actions={"start": self.b.stop})
        self.assertEqual(r["failed_step"], "start")
        # the definition on the dead target could not be removed: said so
        self.assertTrue(r["target_leftover"])
        self.assertFalse(r["rolled_back"])
        self.assertIn("rollback: cannot undefine", r["error"])
        # ... but the source runs it again
        self.assertEqual(self.placement_of(self.a, u), True)
        # a test-driver host comes back empty, as after a reboot
        self.b.start()
        clear_builtin(self.b)
        self.assert_only_on(u, self.a, True)

    def placement_of(self, lv, u):
        c = libvirt.open(lv.uri)
        try:
            return bool(c.lookupByUUIDString(u).isActive())
        finally:
            c.close()

    def test_source_hung_before_shutdown(self):
        u, _ = self.new_domain()
        a_pid = self.a.pid
        r = None
        try:
            r = self.migrate(u, "--shared",
                             actions={"shutdown": lambda: os.kill(a_pid, signal.SIGSTOP)})
        finally:
            os.kill(a_pid, signal.SIGCONT)
        self.assertEqual(r["failed_step"], "shutdown")
        self.assertFalse(r["rolled_back"])  # could not be verified
        self.assert_only_on(u, self.a, True)  # never touched

    def test_source_lost_at_undefine_keeps_the_moved_vm(self):
        u, _ = self.new_domain()
        a_pid = self.a.pid
        try:
            r = self.migrate(u, "--shared",
                             actions={"undefine-source": lambda: os.kill(a_pid, signal.SIGSTOP)})
        finally:
            os.kill(a_pid, signal.SIGCONT)
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertTrue(r["ok"] and r["started"] and r["source_leftover"])
        # running on the target; the source keeps only a shut off definition
        # for the caller to remove when the host is back
        self.assertEqual(self.placement(u), {"mig-a": False, "mig-b": True})
        self.a.conn().lookupByUUIDString(u).undefine()
        self.assert_only_on(u, self.b, True)

    def test_started_again_on_source_during_migration_rolls_back(self):
        u, _ = self.new_domain()

        def operator_starts_source():
            self.a.conn().lookupByUUIDString(u).create()

        r = self.migrate(u, "--shared", actions={"undefine-source": operator_starts_source})
        self.assertEqual(r["failed_step"], "undefine-source")
        self.assertIn("started again", r["error"])
        self.assertTrue(r["rolled_back"])
        self.assert_only_on(u, self.a, True)

    def test_cancel_rolls_back(self):
        u, _ = self.new_domain()
        r = Run(["--shared", "--cancel-at", "start", self.a.uri, self.b.uri, u])
        self.assertEqual((r["failed_step"], r["error"]), ("start", "start: cancelled"))
        self.assertTrue(r["rolled_back"])
        self.assert_only_on(u, self.a, True)

    def test_domain_missing_on_source(self):
        r = self.migrate(str(uuid.uuid4()), "--shared")
        self.assertEqual(r["failed_step"], "check")
        self.assertIn("not found", r["error"])

    # -- evacuation of a crashed host
    def test_evacuation_from_crashed_host_defines_last_known_xml(self):
        u, _ = self.new_domain()
        c = self.a.conn()
        xml = c.lookupByUUIDString(u).XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE
                                              | libvirt.VIR_DOMAIN_XML_INACTIVE
                                              | libvirt.VIR_DOMAIN_XML_MIGRATABLE)
        with tempfile.NamedTemporaryFile("w", suffix=".xml") as f:
            f.write(xml)
            f.flush()
            refused = self.migrate(u, "--xml", f.name, src=False)  # not shared
            self.assertEqual(refused["failed_step"], "check")
            self.assertIn("not shared", refused["error"])
            self.a.kill()  # the host crashes
            r = self.migrate(u, "--shared", "--xml", f.name, src=False)
        self.assertTrue(r["ok"] and r["started"] and r["source_leftover"], r["error"])
        self.assertEqual(r["steps"], ["check", "shutdown", "export", "storage", "define", "start",
                                      "undefine-source", "done"])
        self.a.start()  # a test-driver host reboots empty
        clear_builtin(self.a)
        self.assert_only_on(u, self.b, True)


if __name__ == "__main__":
    vmhtest.main()
