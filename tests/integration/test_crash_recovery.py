#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Crash safety of a cold migration, end to end: the real vmhealthd moves a
real QEMU guest (TCG, no KVM needed) between two unprivileged libvirtd
daemons serving qemu:///session, is killed with SIGKILL in the middle of the
move, and is started again on the same state dir.  After the restart the
half-done migration must be finished or rolled back, the guest defined on
exactly one host (running there, since it ran before) and never migrated a
second time.  Placement is always read through the test's own libvirt
connections; the agent's state (dump_state) and log are checked besides.

The migration is started the way an operator does it: NETCONF migrate-vm
over SSH with ncclient.

  * kill -9 during the shutdown wait: the diskless guest ignores ACPI, so the
    migration sits in its `shutdown` step for the whole shutdown-timeout;
    after the restart it is rolled back (the guest never stopped, the target
    never had it) and the case is reported failed with the rollback message;
  * kill -9 after the define on the target: the source libvirtd is frozen
    with SIGSTOP as soon as the target holds a persistent definition, so the
    worker cannot get past the source's half of the move (undefine there);
    vmhealthd is killed, the source thawed, and after the restart the move
    is finished: running on the target, gone from the source;
  * each of the two again with the *target* libvirtd frozen (SIGSTOP) for a
    second while vmhealthd restarts: the source host answers first and brings
    the VM in while the target's connection attempt is still in flight; the
    recovery must wait for that attempt instead of calling the target
    unreachable (it used to: "a host involved is not reachable", the VM left
    defined on both hosts or shut off).  Without the freeze, which host
    answers first is a race; the freeze makes the bad order certain;
  * each of the two with the target not answering at all at the restart
    (its socket renamed away for a while): in the shutdown wait the target
    cannot have started the guest, so the source keeps it at once; after
    the define (the guest already running on the target) the recovery
    waits for the target, touching nothing, and finishes the move when the
    target returns (it used to give up and leave the guest defined twice).

Skipped (exit 77, which ctest reports as skipped, not passed) only when
qemu-system-x86_64 or libvirt's QEMU driver is not installed.

    VMHEALTHD=build/bin/vmhealthd /usr/bin/python3 tests/integration/test_crash_recovery.py
"""

import os
import re
import signal
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmhtest  # noqa: E402
from vmhtest import Vmhealthd, VMH_NS, VHA_NS, wait_for  # noqa: E402
from test_migrate_qemu import QemuLibvirtd, DOMAIN, QEMU, QEMU_DRIVER  # noqa: E402
# (importing test_netconf also sets ncclient's TICK to 1 ms)
from test_netconf import Keys, connect, netconf_xml  # noqa: E402

import libvirt  # noqa: E402
from ncclient.xml_ import to_ele  # noqa: E402

ROLLBACK_MSG = "interrupted by a restart of vmhealthd; rolled back to the source"


def migrate_vm(vm_uuid, target):
    return to_ele('<migrate-vm xmlns="%s"><vm-uuid>%s</vm-uuid><target-host>%s</target-host>'
                  '</migrate-vm>' % (VMH_NS, vm_uuid, target))


@unittest.skipUnless(QEMU and os.path.exists(QEMU_DRIVER),
                     "qemu-system-x86_64 or libvirt's QEMU driver not installed (scripts/deps)")
class CrashDuringMigration(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = Keys()
        cls.a = QemuLibvirtd("ca")
        cls.b = QemuLibvirtd("cb")
        try:
            cls.a.start()
            cls.b.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for lv in (cls.a, cls.b):
            lv.close()
        cls.keys.close()

    def setUp(self):
        self.uuid = str(uuid.uuid4())
        self.name = "crash-" + self.uuid[:8]
        self.addCleanup(self.remove_guest)
        d = self.a.keeper.defineXML(DOMAIN.format(name=self.name, uuid=self.uuid, qemu=QEMU,
                                                  disk=""))
        d.create()
        self.ssh_port = vmhtest.free_port()

    def remove_guest(self):
        for lv in (self.a, self.b):
            self.thaw(lv)
            try:
                d = lv.keeper.lookupByUUIDString(self.uuid)
            except libvirt.libvirtError:
                continue
            try:
                if d.isActive():
                    d.destroy()
                d.undefine()
            except libvirt.libvirtError:
                pass

    # -- helpers

    @staticmethod
    def freeze(lv):
        os.kill(lv.proc.pid, signal.SIGSTOP)

    @staticmethod
    def thaw(lv):
        """SIGCONT, then wait until the daemon answers again (right after
        the SIGCONT a new connection can still end in "End of file")."""
        if lv.proc is not None and lv.proc.poll() is None:
            os.kill(lv.proc.pid, signal.SIGCONT)
            lv.wait_answering(timeout=20)

    def where(self):
        """{host: running} for every host that has the guest defined, read
        through connections of the test's own, opened for the question
        (a connection that fails, e.g. "End of file" from a daemon just
        thawed, is opened again; any other error raises)."""
        out = {}
        for name, lv in (("a", self.a), ("b", self.b)):
            running = lv.domain_state(self.uuid, timeout=20)
            if running is not None:
                out[name] = running
        return out

    def daemon(self, shutdown_timeout):
        vh = ("<settings><poll-interval>100</poll-interval>"
              "<shutdown-timeout>%d</shutdown-timeout></settings>" % shutdown_timeout)
        for h, lv in (("a", self.a), ("b", self.b)):
            vh += ("<host><name>%s</name><uri>%s</uri><shared-storage>true</shared-storage>"
                   "<sysfs-root>/nonexistent-%s</sysfs-root></host>" % (h, lv.uri, h))
        d = Vmhealthd('<vm-health xmlns="%s">%s</vm-health>' % (VMH_NS, vh)
                      + '<agent xmlns="%s">%s</agent>'
                      % (VHA_NS, netconf_xml(self.keys, self.ssh_port)),
                      name="crash")
        self.addCleanup(d.close)
        d.start()
        d.wait_log(r"host a: connected, 1 domains")
        d.wait_log(r"host b: connected, 0 domains")
        return d

    def start_migration(self, d):
        m = connect(self.ssh_port, "admin", key=self.keys.admin_key)
        try:
            self.assertTrue(m.dispatch(migrate_vm(self.uuid, "b")).ok)
        finally:
            m.close_session()
        d.wait_log(r"vm %s .*: migrating from a to b" % self.name)

    def vm_state(self, d):
        vms = {v["uuid"]: v for v in d.dump_state()["nfv-vm-health:vm-health"]["vm"]}
        return vms[self.uuid]

    def journal(self, d):
        with open(os.path.join(d.state_dir, "migrations.journal")) as f:
            return f.read()

    def wait_journal_step(self, d, step):
        """Wait until the journal records the case at `step` (the worker
        logs a step before the engine journals it)."""
        rx = re.compile(r"(?m)^%s migrating %s " % (self.uuid, step))
        wait_for(lambda: rx.search(self.journal(d)), timeout=20,
                 what="the journal at step %s" % step)

    def wait_vm_state(self, d, host, migration):
        """Wait until the engine's state has the VM on `host` with its
        migration `migration`; returns the VM's state.  The daemon
        publishes its state after it writes the journal, so the journal is
        up to date once this returns."""
        return wait_for(lambda: (lambda vm: vm["host"] == host and
                                 vm["migration"]["state"] == migration and vm)(
                                     self.vm_state(d)),
                        timeout=20, what="vm on %s, migration %s" % (host, migration))

    def count(self, d, regex, start=0):
        rx = re.compile(regex)
        return len([ln for ln in d.log_text(start=start).splitlines() if rx.search(ln)])

    def restart(self, d, freeze_target):
        """Start vmhealthd again on its state dir; with freeze_target, the
        target libvirtd is stopped (SIGSTOP) for a second meanwhile, so that
        the source host answers first and the target's connection attempt is
        still in flight when the VM turns up.  Returns the log mark."""
        mark = d.mark()
        if not freeze_target:
            d.start()
            return mark
        self.freeze(self.b)
        try:
            d.start(wait_ready=False)
            d.wait_log(r"host a: connected, 1 domains", start=mark)
            # The VM is back from a while the attempt to reach b hangs: the
            # recovery has to wait for it.
            d.wait_log(r"%s: recovery waits for the connection attempt to b" % self.uuid,
                       start=mark)
        finally:
            self.thaw(self.b)
        d.wait_ready()
        return mark

    def assert_migrated_at_most_once(self, d):
        # One migration was ever started (the one killed); the restart only
        # recovered it, it never started a new one.
        self.assertEqual(self.count(d, r"\[core\] vm %s .*: migrating from" % self.name), 1,
                         vmhtest.tail(d.log_text(start=0), 60))
        self.assertLessEqual(self.count(d, r"\[core\] vm %s .*migrated from a to b"
                                        % self.name), 1)

    # -- cases

    def kill9_in_the_shutdown_wait(self, freeze_target_on_restart):
        d = self.daemon(shutdown_timeout=30)
        guest_id = self.a.keeper.lookupByUUIDString(self.uuid).ID()
        self.start_migration(d)
        d.wait_log(r"migration of %s: shutdown" % self.name)
        # journalled at the shutdown step, well inside the 30 s wait: the
        # guest ignores ACPI
        self.wait_journal_step(d, "shutdown")
        d.kill9()
        # The guest never stopped; the target never had it.
        self.assertEqual(self.where(), {"a": True})

        mark = self.restart(d, freeze_target_on_restart)
        d.wait_log(r"\[core\] vm %s \(%s\): migration a -> b was interrupted at step [a-z-]+; "
                   r"recovering" % (self.name, self.uuid), start=mark)
        d.wait_log(r"\[core\] vm %s \(%s\): migration to b failed: %s"
                   % (self.name, self.uuid, re.escape(ROLLBACK_MSG)), start=mark)
        self.assertEqual(self.where(), {"a": True})
        # The very same QEMU process: the guest was never stopped and started.
        self.assertEqual(self.a.keeper.lookupByUUIDString(self.uuid).ID(), guest_id)
        vm = self.vm_state(d)
        self.assertEqual(vm["host"], "a")
        self.assertEqual(vm["migration"]["state"], "failed")
        self.assertEqual(vm["migration"]["last-error"], ROLLBACK_MSG)
        self.assertNotIn(self.uuid, self.journal(d))  # the case is closed
        # Still on a a while later: the rolled back case is not retried.
        time.sleep(1.5)  # a negative check: lets time pass for a retry that must not come
        self.assertEqual(self.where(), {"a": True})
        self.assert_migrated_at_most_once(d)
        self.assertEqual(self.count(d, r"migrated from a to b"), 0)

    def test_kill9_in_the_shutdown_wait_rolls_back(self):
        self.kill9_in_the_shutdown_wait(freeze_target_on_restart=False)

    def test_kill9_in_the_shutdown_wait_target_slow_to_answer_at_restart(self):
        # The source answers first: the recovery waits for the target's
        # connection attempt instead of calling the target unreachable.
        self.kill9_in_the_shutdown_wait(freeze_target_on_restart=True)

    def kill9_once_defined_on_target(self, d):
        """Kills vmhealthd while its migration to b is in the define step:
        the target holds the definition, the source has stopped the guest."""
        self.start_migration(d)
        d.wait_log(r"migration of %s: define" % self.name, timeout=20)
        keeper_b = self.b.keeper

        def defined_on_target():
            try:
                return keeper_b.lookupByUUIDString(self.uuid).isPersistent() == 1
            except libvirt.libvirtError:
                return False

        wait_for(defined_on_target, timeout=20, interval=0.002, what="the definition on b")
        # The source libvirtd stops answering: the worker cannot undefine it
        # there (nor finish libvirt's own offline migration on it).
        self.freeze(self.a)
        try:
            # Not a condition: lets the worker run into the frozen source (in
            # libvirt's confirm phase of the define, or in undefine-source);
            # nothing outside the worker shows where it blocks, and the
            # callers accept either step.
            time.sleep(0.3)
            d.kill9()
        finally:
            self.thaw(self.a)
        placement = self.where()
        self.assertEqual(placement.get("a"), False, placement)  # destroyed on the source
        self.assertIn("b", placement)  # and defined on the target: defined twice now

    def kill9_after_define(self, freeze_target_on_restart):
        d = self.daemon(shutdown_timeout=1)
        self.kill9_once_defined_on_target(d)
        mark = self.restart(d, freeze_target_on_restart)
        d.wait_log(r"\[core\] vm %s \(%s\): migration a -> b was interrupted at step [a-z-]+; "
                   r"recovering" % (self.name, self.uuid), start=mark)
        line = d.wait_log(r"\[core\] vm %s \(%s\): (migrated from a to b|migration to b failed)"
                          % (self.name, self.uuid), start=mark, timeout=20)
        # Finished or rolled back, but on exactly one host, running.
        if "migrated from a to b" in line:
            expect, host = {"b": True}, "b"
        else:
            self.assertIn(ROLLBACK_MSG, line)
            expect, host = {"a": True}, "a"
        wait_for(lambda: self.where() == expect, timeout=10,
                 what="the guest running on %s only" % host)
        vm = self.vm_state(d)
        self.assertEqual(vm["host"], host)
        self.assertEqual(vm["migration"]["state"], "completed" if host == "b" else "failed")
        self.assertNotIn(self.uuid, self.journal(d))
        time.sleep(1.5)  # a negative check: the case, closed, must not move the guest again
        self.assertEqual(self.where(), expect)
        self.assert_migrated_at_most_once(d)
        return host

    def test_kill9_after_the_define_on_the_target_finishes(self):
        # The target holds the definition and the source no longer runs the
        # guest: the recovery finishes the move.
        self.assertEqual(self.kill9_after_define(freeze_target_on_restart=False), "b")

    def test_kill9_after_define_target_slow_to_answer_at_restart(self):
        # The source answers first after the restart; the recovery must not
        # conclude anything before it has heard from the target.
        self.assertEqual(self.kill9_after_define(freeze_target_on_restart=True), "b")

    def hide_socket(self, lv):
        """Makes lv unreachable (connections fail at once) while it keeps
        its state; the returned function brings it back."""
        away = lv.sock + ".away"
        os.rename(lv.sock, away)
        return lambda: os.path.exists(away) and os.rename(away, lv.sock)

    def test_kill9_after_define_target_unreachable_at_restart(self):
        # The target does not answer at all after the restart (its socket is
        # gone for a while).  Where the kill fell decides, and either way the
        # guest ends up running on exactly one host:
        #  - the journal says undefine-source: the guest already runs on the
        #    target; the recovery must not restart it on the source, nor give
        #    up: it waits for the target and finishes when it returns;
        #  - the journal says define (libvirt's offline migration still in
        #    its confirm phase, seen under ASan): the target cannot have
        #    started it; the source takes it back at once, and the target's
        #    copy is removed as stale when that host returns.
        d = self.daemon(shutdown_timeout=1)
        self.kill9_once_defined_on_target(d)
        back = self.hide_socket(self.b)
        self.addCleanup(back)
        mark = d.mark()
        d.start()
        line = d.wait_log(r"%s: (the recovery of its interrupted migration a -> b waits for host "
                          r"b|target b unreachable before the VM could start there: rolling "
                          r"back to a)" % self.uuid, start=mark)
        if "waits for host b" in line:
            # a couple of failed reconnections to b meanwhile
            wait_for(lambda: self.count(d, r"host b: next connection attempt in", start=mark) >= 2,
                     timeout=30, what="two failed reconnections to b")
            self.assertEqual(self.a.keeper.lookupByUUIDString(self.uuid).isActive(), 0)
            self.assertEqual(self.vm_state(d)["migration"]["state"], "migrating")
            self.assertIn(self.uuid, self.journal(d))  # still open
            back()
            d.wait_log(r"\[core\] vm %s \(%s\): migrated from a to b" % (self.name, self.uuid),
                       start=mark, timeout=90)  # the reconnection backoff
            expect = {"b": True}
        else:
            d.wait_log(r"\[core\] vm %s \(%s\): migration to b failed: %s"
                       % (self.name, self.uuid, re.escape(ROLLBACK_MSG)), start=mark)
            wait_for(lambda: self.a.keeper.lookupByUUIDString(self.uuid).isActive() == 1,
                     timeout=20, what="the guest running on a again")
            # The log line comes before the engine closes the case in its
            # journal: wait for the engine's state, published after that.
            self.wait_vm_state(d, "a", "failed")
            self.assertNotIn(self.uuid, self.journal(d))
            back()
            d.wait_log(r"removing the stale shut-off copy on b; it lives on a", start=mark,
                       timeout=90)
            expect = {"a": True}
        wait_for(lambda: self.where() == expect, timeout=20, what="the guest on one host")
        self.assertEqual(self.vm_state(d)["host"], list(expect)[0])
        self.assertNotIn(self.uuid, self.journal(d))
        self.assert_migrated_at_most_once(d)

    def test_kill9_in_the_shutdown_wait_target_unreachable_at_restart(self):
        # The journal says shutdown: the target cannot have started the
        # guest, so the source keeps it at once instead of waiting for (or
        # giving up on) a target that does not answer.
        d = self.daemon(shutdown_timeout=30)
        guest_id = self.a.keeper.lookupByUUIDString(self.uuid).ID()
        self.start_migration(d)
        d.wait_log(r"migration of %s: shutdown" % self.name)
        self.wait_journal_step(d, "shutdown")  # killed in the shutdown wait, journalled as such
        d.kill9()
        back = self.hide_socket(self.b)
        self.addCleanup(back)
        mark = d.mark()
        d.start()
        d.wait_log(r"recovery: %s: target b unreachable before the VM could start there: "
                   r"rolling back to a" % self.uuid, start=mark)
        d.wait_log(r"\[core\] vm %s \(%s\): migration to b failed: %s"
                   % (self.name, self.uuid, re.escape(ROLLBACK_MSG)), start=mark)
        self.assertEqual(self.a.keeper.lookupByUUIDString(self.uuid).ID(), guest_id)
        vm = self.vm_state(d)
        self.assertEqual((vm["host"], vm["migration"]["state"]), ("a", "failed"))
        self.assertNotIn(self.uuid, self.journal(d))
        back()
        self.assertEqual(self.where(), {"a": True})
        self.assert_migrated_at_most_once(d)

if __name__ == "__main__":
    if not (QEMU and os.path.exists(QEMU_DRIVER)):
        # 77: ctest reports the test as skipped (tests/CMakeLists.txt), not passed
        sys.stderr.write("SKIPPED: qemu-system-x86_64 or libvirt's QEMU driver not installed"
                         " (scripts/deps installs them)\n")
        sys.exit(77)
    vmhtest.main()
