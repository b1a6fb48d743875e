#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The SNMP front end of the real vmhealthd, with net-snmp's own tools:
snmpget / snmpbulkwalk / snmptable / snmpset against the embedded master
(v2c and v3 authPriv), snmptrapd receiving v2c traps, v3 traps and v3
informs, a receiver that is down, access refused in every way, and a real
snmpd master with the daemon as its AgentX subagent, across an snmpd
restart.  Events come from a hypervisor that goes away (host-unreachable:
vmhVmAbnormal per VM) and comes back (vmhFaultCleared).

Every tool runs with SNMPCONFPATH / SNMP_PERSISTENT_DIR in a temp dir, so
nothing reads /etc/snmp or writes /var/lib/snmp."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import test_netconf as nc  # NETCONF fixtures (Keys, netconf_xml, connect)
import vmhtest
from vmhtest import Libvirtd, Vmhealthd, LIBVIRT_FIXTURES, VMH_NS, VHA_NS, REPO

ROOT = ".1.3.6.1.4.1.8072.9999.9999.7801"
VM_ENTRY = ROOT + ".1.2.1"
HOST_ENTRY = ROOT + ".1.1.1"
STATS = ROOT + ".1.3"
NOTIF_OBJ = ROOT + ".1.4"
TRAP_OID = ".1.3.6.1.6.3.1.1.4.1.0"
SYS_DESCR = ".1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = ".1.3.6.1.2.1.1.2.0"
SYS_UPTIME = ".1.3.6.1.2.1.1.3.0"

VM_META = "c0000000-0000-4000-8000-000000000001"  # vm-with-meta, running
VM_OFF = "c0000000-0000-4000-8000-000000000002"  # vm-plain-off

AUTH_PASS = "correct horse battery"
PRIV_PASS = 'staple of "secrecy"'
TRAPD_ENGINE = "8000000001020304aa"
TRAP_ENGINE = "8000000001020304bb"  # the agent's engine ID as set on a v3 trap target


def deps_dir():
    return os.environ.get("VMH_DEPS_DIR") or os.path.join(REPO, "build", "deps")


def mib_args():
    """Load NFV-VM-HEALTH-MIB (base MIBs fetched into the build tree)."""
    dirs = [os.path.join(deps_dir(), "mibs"), os.path.join(REPO, "mibs"), "/usr/share/snmp/mibs"]
    return ["-M", ":".join(dirs), "-m", "NFV-VM-HEALTH-MIB"]


def uuid_index(uuid):
    return "." + ".".join(str(ord(c)) for c in uuid)


class Tools:
    """net-snmp's command line tools with a private configuration and
    persistent directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="vmh-snmp-tools-")
        self.env = dict(os.environ, SNMPCONFPATH=self.dir,
                        SNMP_PERSISTENT_DIR=os.path.join(self.dir, "persist"), MIBS="")

    def run(self, tool, *args, timeout=60):
        return subprocess.run([tool, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


TOOLS = Tools()


def v2c(community="public"):
    return ["-v2c", "-c", community]


def v3(user="noc", level="authPriv", auth="SHA-512", apass=AUTH_PASS, priv="AES-256",
       ppass=PRIV_PASS):
    a = ["-v3", "-u", user, "-l", level]
    if level != "noAuthNoPriv":
        a += ["-a", auth, "-A", apass]
    if level == "authPriv":
        a += ["-x", priv, "-X", ppass]
    return a


def parse_numeric(out):
    """`OID = TYPE: value` lines (-On) into {oid: value text}."""
    vbs = {}
    for line in out.splitlines():
        m = re.match(r"^(\.[0-9.]+) = (?:[\w-]+: )?(.*)$", line)
        if m:
            vbs[m.group(1)] = m.group(2).strip().strip('"')
    return vbs


class SnmpTrapd:
    """A private snmptrapd: its own config (pinned engineID, the v2c
    community, the USM user for informs and v3 traps), UDP port on
    127.0.0.1, log in a temp file, one line per notification."""

    def __init__(self, port=None):
        self.port = port or vmhtest.free_port("udp")
        self.dir = tempfile.mkdtemp(prefix="vmh-snmptrapd-")
        self.log = os.path.join(self.dir, "traps.log")
        self.proc = None
        conf = os.path.join(self.dir, "snmptrapd.conf")
        with open(conf, "w") as f:
            f.write('snmpTrapdAddr udp:127.0.0.1:%d\n' % self.port)
            f.write('exactEngineID 0x%s\n' % TRAPD_ENGINE)
            f.write('authCommunity log traps\n')
            # informs: the receiver is authoritative (its own engine ID)
            f.write('createUser noc SHA-512 "%s" AES-256 "%s"\n'
                    % (AUTH_PASS, PRIV_PASS.replace('"', '\\"')))
            # v3 traps: the agent is authoritative (the engine ID configured on the target)
            f.write('createUser -e 0x%s noc SHA-512 "%s" AES-256 "%s"\n'
                    % (TRAP_ENGINE, AUTH_PASS, PRIV_PASS.replace('"', '\\"')))
            f.write('authUser log noc priv\n')
        self.conf = conf
        self.env = dict(os.environ, SNMPCONFPATH=self.dir,
                        SNMP_PERSISTENT_DIR=os.path.join(self.dir, "persist"), MIBS="")

    def start(self):
        # -A: append; -Lf alone would truncate the log at every start.
        self.proc = subprocess.Popen(
            ["setpriv", "--pdeathsig", "SIGKILL", "snmptrapd", "-f", "-C", "-c", self.conf,
             "-A", "-Lf", self.log, "-On", "-F", "TRAP %P\t%V|%v\n",
             "--doNotRetainNotificationLogs=yes"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        vmhtest.wait_for(lambda: "NET-SNMP version" in self.text(), what="snmptrapd started")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def notifications(self):
        """[(security text, {oid: value})]"""
        out = []
        for line in self.text().splitlines():
            if not line.startswith("TRAP "):
                continue
            sec, _, vbs = line[5:].partition("\t")
            out.append((sec, parse_numeric("\n".join(vbs.split("|")))))
        return out

    def wait_for(self, pred, timeout=15, what="notifications"):
        return vmhtest.wait_for(lambda: pred(self.notifications()), timeout=timeout, what=what)

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
        return False


class Snmpd:
    """A private snmpd master: no system configuration (-C), AgentX socket
    in its temp dir, v2c community on a free 127.0.0.1 UDP port."""

    def __init__(self):
        self.port = vmhtest.free_port("udp")
        self.dir = tempfile.mkdtemp(prefix="vmh-snmpd-")
        os.chmod(self.dir, 0o755)
        self.socket = os.path.join(self.dir, "agentx")
        self.log = os.path.join(self.dir, "snmpd.log")
        self.conf = os.path.join(self.dir, "snmpd.conf")
        with open(self.conf, "w") as f:
            f.write("master agentx\nagentXSocket %s\nagentXPerms 0600 0700\n" % self.socket)
            f.write("rocommunity public 127.0.0.1\n")
            f.write('createUser noc SHA-512 "%s" AES-256 "%s"\nrouser noc priv\n'
                    % (AUTH_PASS, PRIV_PASS.replace('"', '\\"')))
        self.env = dict(os.environ, SNMPCONFPATH=self.dir,
                        SNMP_PERSISTENT_DIR=os.path.join(self.dir, "persist"), MIBS="")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["setpriv", "--pdeathsig", "SIGKILL", "snmpd", "-f", "-C", "-c", self.conf,
             "-A", "-Lf", self.log, "-I", "-smux", "-p", os.path.join(self.dir, "pid"),
             "udp:127.0.0.1:%d" % self.port],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        vmhtest.wait_for(lambda: os.path.exists(self.socket), what="snmpd's AgentX socket")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
        return False


def config(lv_uri, port=None, agentx=None, targets="", communities=None, netconf=""):
    """YANG instance data: one host `a` on lv_uri, the SNMP section (and
    `netconf`, an agent/netconf block)."""
    snmp = ""
    if port:
        snmp += "<agent-address>udp:127.0.0.1:%d</agent-address>" % port
    if agentx:
        snmp += "<agentx-socket>%s</agentx-socket>" % agentx
    for name, src in (communities or [("public", None), ("lan-only", "10.0.0.0/8")]):
        snmp += "<community><name>%s</name>%s</community>" % (
            name, "<source>%s</source>" % src if src else "")
    snmp += ("<usm-user><name>noc</name><auth-protocol>sha-512</auth-protocol>"
             "<auth-passphrase>%s</auth-passphrase><priv-protocol>aes-256</priv-protocol>"
             "<priv-passphrase>%s</priv-passphrase></usm-user>"
             % (AUTH_PASS, PRIV_PASS.replace('"', "&quot;")))
    snmp += ("<usm-user><name>ops</name><auth-protocol>sha</auth-protocol>"
             "<auth-passphrase>ops-passphrase</auth-passphrase><priv-protocol>aes</priv-protocol>"
             "</usm-user>")
    snmp += targets
    return ('<vm-health xmlns="%s"><host><name>a</name><uri>%s</uri></host></vm-health>'
            '<agent xmlns="%s">%s<snmp>%s</snmp></agent>' % (VMH_NS, lv_uri, VHA_NS, netconf, snmp))


def target(name, port, version="v2c", inform=False, engine_id=None, timeout=None, retries=None):
    t = "<target><name>%s</name><address>127.0.0.1</address><port>%d</port>" % (name, port)
    t += "<version>%s</version>" % version
    if version == "v2c":
        t += "<community>traps</community>"
    else:
        t += "<user>noc</user><security-level>auth-priv</security-level>"
    if engine_id:
        t += "<engine-id>%s</engine-id>" % engine_id
    if inform:
        t += "<inform>true</inform>"
    if timeout:
        t += "<timeout>%d</timeout>" % timeout
    if retries is not None:
        t += "<retries>%d</retries>" % retries
    return t + "</target>"


def two_domains():
    return Libvirtd("lv-snmp", node_xml=os.path.join(LIBVIRT_FIXTURES, "two-domains.xml"))


class EmbeddedMaster(unittest.TestCase):
    """Reads of the embedded master agent (one daemon for the class)."""

    @classmethod
    def setUpClass(cls):
        cls.lv = two_domains().start()
        cls.port = vmhtest.free_port("udp")
        cls.d = Vmhealthd(config(cls.lv.uri, cls.port), name="snmp-master").start()
        cls.d.wait_log(r"host a: connected, 2 domains")
        cls.agent = "127.0.0.1:%d" % cls.port

    @classmethod
    def tearDownClass(cls):
        try:
            rc = cls.d.stop()
            # net-snmp's persistent files went to the state dir, nowhere else
            persist = os.path.join(cls.d.state_dir, "snmp", "vmhealthd.conf")
            ok = os.path.exists(persist)
        finally:
            cls.d.close()
            cls.lv.close()
        assert rc == 0, "vmhealthd exited with %s" % rc
        assert ok, "no %s" % persist

    def get(self, *oids, auth=None, refused=False):
        # generous for answers (ASan builds on a loaded machine), short for refusals
        timing = ["-t", "1", "-r", "0"] if refused else ["-t", "3", "-r", "2"]
        return TOOLS.run("snmpget", *(auth or v2c()), "-On", *timing, self.agent, *oids)

    def test_system_group_answers_what_an_nms_asks_first(self):
        r = self.get(SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME)
        self.assertEqual(r.returncode, 0, r.stderr)
        vbs = parse_numeric(r.stdout)
        self.assertIn("vmhealth", vbs[SYS_DESCR])
        self.assertEqual(vbs[SYS_OBJECT_ID], ROOT)
        self.assertRegex(vbs[SYS_UPTIME], r"^\(\d+\)")

    def test_vm_row_by_uuid_index_with_the_mib(self):
        r = TOOLS.run("snmpget", *v2c(), *mib_args(), "-Oqv", self.agent,
                      "NFV-VM-HEALTH-MIB::vmhVmName.'%s'" % VM_META,
                      "NFV-VM-HEALTH-MIB::vmhVmHost.'%s'" % VM_META,
                      "NFV-VM-HEALTH-MIB::vmhVmPowerState.'%s'" % VM_OFF,
                      "NFV-VM-HEALTH-MIB::vmhVmVnfManager.'%s'" % VM_META,
                      "NFV-VM-HEALTH-MIB::vmhVmPreprocessingTime.'%s'" % VM_META)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split("\n")[:5],
                         ["vm-with-meta", "a", "shutoff", "vnfm-test", "20 seconds"])

    def test_bulkwalk_of_vm_table_matches_the_state(self):
        state = self.d.dump_state()
        vms = {v["uuid"]: v for v in state["nfv-vm-health:vm-health"]["vm"]}
        r = TOOLS.run("snmpbulkwalk", *v2c(), "-On", "-Cr25", self.agent, VM_ENTRY)
        self.assertEqual(r.returncode, 0, r.stderr)
        vbs = parse_numeric(r.stdout)
        self.assertEqual(len(vbs), 9 * len(vms))
        names = {k: v for k, v in vbs.items() if k.startswith(VM_ENTRY + ".2.")}
        self.assertEqual(sorted(names.values()), sorted(v["name"] for v in vms.values()))
        for uuid, vm in vms.items():
            idx = uuid_index(uuid)
            self.assertEqual(vbs[VM_ENTRY + ".2" + idx], vm["name"])
            self.assertEqual(vbs[VM_ENTRY + ".3" + idx], vm["host"])
        # rows come in index (UUID) order, columns one after the other
        keys = list(vbs)
        self.assertLess(keys.index(VM_ENTRY + ".2" + uuid_index(VM_META)),
                        keys.index(VM_ENTRY + ".2" + uuid_index(VM_OFF)))

    def test_snmptable_of_hosts_and_vms(self):
        r = TOOLS.run("snmptable", *v2c(), *mib_args(), "-Cf", ",", "-Cb", "-Oqv", self.agent,
                      "NFV-VM-HEALTH-MIB::vmhHostTable")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = [l.split(",") for l in r.stdout.splitlines() if l.startswith("STRING: a,")]
        self.assertEqual(len(rows), 1, r.stdout)
        self.assertEqual(rows[0][1], "STRING: " + self.lv.uri)
        self.assertEqual(rows[0][2], "INTEGER: normal(1)")
        self.assertEqual(rows[0][6], "Gauge32: 2 VMs")
        self.assertEqual(rows[0][7], "INTEGER: connected(1)")
        r = TOOLS.run("snmptable", *v3(), *mib_args(), "-Cf", ",", "-Cb", "-Ci", self.agent,
                      "NFV-VM-HEALTH-MIB::vmhVmTable")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("vm-with-meta", r.stdout)
        self.assertIn("vm-plain-off", r.stdout)
        self.assertIn(VM_META, r.stdout)

    def test_statistics_scalars(self):
        r = self.get(*["%s.%d.0" % (STATS, i) for i in range(1, 7)])
        self.assertEqual(r.returncode, 0, r.stderr)
        vbs = parse_numeric(r.stdout)
        self.assertEqual(len(vbs), 6)
        for v in vbs.values():
            self.assertRegex(v, r"^\d+$")

    def test_v3_auth_priv_users_read(self):
        r = self.get(SYS_DESCR, auth=v3())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("vmhealth", r.stdout)
        # SHA + AES, privacy passphrase defaulting to the authentication one
        r = self.get(SYS_DESCR, auth=v3("ops", auth="SHA", apass="ops-passphrase", priv="AES",
                                        ppass="ops-passphrase"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("vmhealth", r.stdout)

    def test_wrong_community_gets_no_answer(self):
        r = self.get(SYS_DESCR, auth=v2c("guess"), refused=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Timeout", r.stderr)

    def test_community_from_outside_its_source_prefix_gets_no_answer(self):
        r = self.get(SYS_DESCR, auth=v2c("lan-only"), refused=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Timeout", r.stderr)

    def test_unknown_user_and_wrong_passphrase_get_no_data(self):
        r = self.get(SYS_DESCR, auth=v3("mallory"), refused=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Unknown user name", r.stderr)
        r = self.get(SYS_DESCR, auth=v3(apass="not the passphrase"), refused=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertNotIn("vmhealth", r.stdout)

    def test_too_low_a_security_level_is_refused(self):
        for level in ("authNoPriv", "noAuthNoPriv"):
            r = self.get(SYS_DESCR, auth=v3(level=level), refused=True)
            self.assertNotIn("vmhealth", r.stdout)
            self.assertNotEqual(r.returncode, 0, level)
        # the daemon carries on answering
        self.assertEqual(self.get(SYS_DESCR).returncode, 0)

    def test_set_is_refused_and_changes_nothing(self):
        name = VM_ENTRY + ".2" + uuid_index(VM_META)
        for auth in (v2c(), v3()):
            r = TOOLS.run("snmpset", *auth, "-On", "-t", "3", "-r", "1", self.agent, name, "s",
                          "renamed")
            self.assertNotEqual(r.returncode, 0)
            self.assertRegex(r.stderr, r"notWritable|noAccess|readOnly")
        r = self.get(name)
        self.assertEqual(parse_numeric(r.stdout)[name], "vm-with-meta")
        self.assertTrue(self.d.running)


class EngineState(unittest.TestCase):
    def persisted(self, d):
        with open(os.path.join(d.state_dir, "snmp", "vmhealthd.conf")) as f:
            text = f.read()
        return (re.search(r"^oldEngineID (\S+)", text, re.M).group(1),
                int(re.search(r"^engineBoots (\d+)", text, re.M).group(1)),
                "usmUser" in text)

    def test_engine_id_kept_across_restarts_users_only_from_the_configuration(self):
        port = vmhtest.free_port("udp")
        agent = "127.0.0.1:%d" % port
        d = Vmhealthd(config("test:///default", port), name="snmp-engine")
        with d:
            r = TOOLS.run("snmpget", *v3(), "-On", agent, SYS_DESCR)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(d.stop(), 0)
            engine, boots, users = self.persisted(d)
            self.assertFalse(users)  # keys are never written to disk
            # the operator changes noc's passphrases
            text = config("test:///default", port).replace(AUTH_PASS, "a new passphrase")
            with open(d.config_path, "w") as f:
                f.write(vmhtest.with_state_dir(text, d.state_dir)[0])
            d.start()
            r = TOOLS.run("snmpget", *v3(), "-On", "-t", "1", "-r", "0", agent, SYS_DESCR)
            self.assertNotEqual(r.returncode, 0)
            r = TOOLS.run("snmpget", *v3(apass="a new passphrase"), "-On", agent, SYS_DESCR)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(d.stop(), 0)
            self.assertEqual(self.persisted(d), (engine, boots + 1, False))


class BadListener(unittest.TestCase):
    def test_port_in_use_exits_non_zero_with_a_clear_message(self):
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        try:
            d = Vmhealthd(config("test:///default", port), name="snmp-busy", wait_ready=False)
            with d:
                self.assertNotEqual(d.wait_exit(10), 0)
                self.assertIn("cannot listen on udp:127.0.0.1:%d" % port, d.log_text())
                self.assertNotRegex(d.log_text(), vmhtest.Vmhealthd.READY_RE)
        finally:
            s.close()


def abnormal_for(notifs, uuid, trap=ROOT + ".0.1"):
    return [vbs for _, vbs in notifs
            if vbs.get(TRAP_OID) == trap and vbs.get(NOTIF_OBJ + ".1.0") == uuid]


COUNTERS = ("sent", "acknowledged", "failed")


def target_counters(state):
    """{target: (sent, acknowledged, failed)} of a dump_state() tree; None
    for a target without its state container."""
    targets = state.get("vmhealth-agent:agent", {}).get("snmp", {}).get("target", [])
    return {t["name"]: tuple(int(t["state"][c]) for c in COUNTERS) if "state" in t else None
            for t in targets}


def target_counters_xml(data):
    """The same, from the <data> of a NETCONF get (ElementTree)."""
    out = {}
    for t in data.findall("vha:agent/vha:snmp/vha:target", nc.NS):
        st = t.find("vha:state", nc.NS)
        out[t.find("vha:name", nc.NS).text] = (
            tuple(int(st.find("vha:" + c, nc.NS).text) for c in COUNTERS)
            if st is not None else None)
    return out


def wait_counters(d, expected, timeout=15):
    """Polls the SIGUSR1 dump until the targets' counters are `expected`
    ({target: (sent, acknowledged, failed)}) and returns them; the caller
    asserts, so that a mismatch shows both."""
    last = {}

    def done():
        last["v"] = target_counters(d.dump_state())
        return last["v"] == expected

    try:
        vmhtest.wait_for(done, timeout=timeout, interval=0.2, what="counters %s" % expected)
    except AssertionError:
        pass
    return last.get("v")


class Notifications(unittest.TestCase):
    def test_every_event_reaches_every_target_with_its_varbinds(self):
        with SnmpTrapd() as trapd, two_domains() as lv:
            targets = (target("noc-v2c", trapd.port)
                       + target("noc-v3-trap", trapd.port, "v3", engine_id=TRAP_ENGINE)
                       + target("noc-v3-inform", trapd.port, "v3", inform=True,
                                engine_id=TRAPD_ENGINE, timeout=2000, retries=2))
            with Vmhealthd(config(lv.uri, targets=targets), name="snmp-traps") as d:
                d.wait_log(r"host a: connected, 2 domains")
                lv.stop()
                # one vmhVmAbnormal per VM of the lost host, to each of the 3 targets
                for uuid in (VM_META, VM_OFF):
                    trapd.wait_for(lambda n: len(abnormal_for(n, uuid)) >= 3,
                                   what="3 vmhVmAbnormal for %s" % uuid)
                notifs = trapd.notifications()
                secs = [sec for sec, vbs in notifs if vbs.get(NOTIF_OBJ + ".1.0") == VM_META]
                self.assertTrue(any("v2c" in s or "community traps" in s for s in secs), secs)
                self.assertGreaterEqual(sum("noc" in s for s in secs), 2, secs)  # trap + inform
                state = d.dump_state()["nfv-vm-health:vm-health"]
                fault = [f for f in state["fault"] if not f.get("cleared-at")][0]
                vbs = abnormal_for(notifs, VM_META)[0]
                self.assertEqual(vbs[NOTIF_OBJ + ".2.0"], "vm-with-meta")
                self.assertEqual(vbs[NOTIF_OBJ + ".3.0"], "a")
                self.assertEqual(vbs[NOTIF_OBJ + ".4.0"], "5")  # hostUnreachable
                sev = ["critical", "major", "minor", "warning"].index(fault["severity"]) + 1
                self.assertEqual(vbs[NOTIF_OBJ + ".5.0"], str(sev))
                self.assertEqual(vbs[NOTIF_OBJ + ".6.0"], "20")  # its preprocessing time
                self.assertIn(NOTIF_OBJ + ".7.0", vbs)  # deadline (DateAndTime)
                self.assertEqual(vbs[NOTIF_OBJ + ".12.0"], str(fault["id"]))
                self.assertIn(".1.3.6.1.2.1.1.3.0", vbs)  # sysUpTime first

                # back: vmhFaultCleared with the same fault id, everywhere
                lv.start()
                cleared = ROOT + ".0.5"
                for uuid in (VM_META, VM_OFF):
                    trapd.wait_for(lambda n: len(abnormal_for(n, uuid, cleared)) >= 3,
                                   what="3 vmhFaultCleared for %s" % uuid)
                vbs = abnormal_for(trapd.notifications(), VM_META, cleared)[0]
                self.assertEqual(vbs[NOTIF_OBJ + ".12.0"], str(fault["id"]))
                self.assertIn(vbs[NOTIF_OBJ + ".13.0"], ("1", "2"))

                # informs were acknowledged; traps-sent counts one per target
                def all_counted():
                    st = d.dump_state()["nfv-vm-health:vm-health"]["statistics"]
                    return int(st["traps-sent"]) >= 3 * 4 and st
                stats = vmhtest.wait_for(all_counted, what="traps-sent 12")
                self.assertEqual(int(stats["traps-sent"]), 3 * 4)
                # per-target counters in the state: traps are never acknowledged
                expected = {"noc-v2c": (4, 0, 0), "noc-v3-trap": (4, 0, 0),
                            "noc-v3-inform": (4, 4, 0)}
                self.assertEqual(wait_counters(d, expected), expected)
                self.assertEqual(d.stop(), 0)
                log = d.log_text()
                self.assertRegex(log, r"target noc-v3-inform: 4 sent, 4 acknowledged, 0 failed")
                self.assertRegex(log, r"target noc-v2c: 4 sent, 0 acknowledged, 0 failed")

    def test_receiver_down_informs_retried_counted_failed_others_unaffected(self):
        dead = vmhtest.free_port("udp")
        keys = nc.Keys()
        self.addCleanup(keys.close)
        ssh = vmhtest.free_port()
        with SnmpTrapd() as trapd, two_domains() as lv:
            port = vmhtest.free_port("udp")
            targets = (target("down", dead, "v3", inform=True, engine_id=TRAPD_ENGINE,
                              timeout=1000, retries=2)
                       + target("up", trapd.port))
            cfg = config(lv.uri, port, targets=targets, netconf=nc.netconf_xml(keys, ssh))
            with Vmhealthd(cfg, name="snmp-down") as d:
                d.wait_log(r"host a: connected, 2 domains")
                t0 = time.monotonic()
                lv.stop()
                # the live receiver has both traps while the informs to the dead
                # one are still being retransmitted
                trapd.wait_for(lambda n: abnormal_for(n, VM_META) and abnormal_for(n, VM_OFF),
                               what="both traps at the live receiver")
                self.assertNotIn("not acknowledged", d.log_text())
                r = TOOLS.run("snmpget", *v2c(), "-On", "127.0.0.1:%d" % port, SYS_DESCR)
                self.assertEqual(r.returncode, 0, r.stderr)
                d.wait_log(r"target down: vmhVmAbnormal for %s not acknowledged after 2 "
                           r"retries" % VM_META, timeout=15)
                d.wait_log(r"target down: vmhVmAbnormal for %s not acknowledged" % VM_OFF)
                self.assertGreater(time.monotonic() - t0, 2.9)  # 3 transmissions x 1 s
                # the counters line follows the warning: wait for it, the log
                # may not have it yet
                d.wait_log(r"target down: 2 sent, 0 acknowledged, 2 failed, 4 retransmitted")
                # the same counters in the state: the SIGUSR1 dump and NETCONF get
                expected = {"down": (2, 0, 2), "up": (2, 0, 0)}
                self.assertEqual(target_counters(d.dump_state()), expected)
                self.check_counters_over_netconf(keys, ssh, expected)
                # the engine went on: the host is back, its faults clear
                lv.start()
                for uuid in (VM_META, VM_OFF):
                    trapd.wait_for(lambda n: abnormal_for(n, uuid, ROOT + ".0.5"),
                                   what="vmhFaultCleared for %s" % uuid)
                # sent to both (the dead target first), the new informs in retransmission
                expected = {"down": (4, 0, 2), "up": (4, 0, 0)}
                self.assertEqual(wait_counters(d, expected, timeout=2), expected)
                # the two informs still outstanding are given up at shutdown
                self.assertEqual(d.stop(), 0)
                self.assertRegex(d.log_text(), r"target down: 4 sent, 0 acknowledged, 4 failed")

    def check_counters_over_netconf(self, keys, ssh, expected):
        """get, unfiltered and filtered (subtree, XPath) with with-defaults
        modes: the reply is valid and has `expected` as the targets'
        counters."""
        m = nc.connect(ssh, "admin", keys.admin_key)
        try:
            for wd in (None, "report-all", "report-all-tagged", "trim"):
                data = nc.data_of(m.get(with_defaults=wd) if wd else m.get())
                self.assertEqual(target_counters_xml(data), expected, wd)
                self.assertIsNotNone(data.find("vmh:vm-health/vmh:statistics", nc.NS), wd)
            sub = ('<agent xmlns="%s"><snmp><target><state/></target></snmp></agent>' % VHA_NS)
            data = nc.data_of(m.get(filter=("subtree", sub), with_defaults="trim"))
            self.assertEqual(target_counters_xml(data), expected)
            self.assertIsNone(data.find("vmh:vm-health", nc.NS))
            self.assertIsNone(data.find(".//vha:address", nc.NS))  # only what was selected
            sub = ('<agent xmlns="%s"><snmp><target><name>down</name><state><failed/></state>'
                   '</target></snmp></agent>' % VHA_NS)
            data = nc.data_of(m.get(filter=("subtree", sub)))
            st = data.findall("vha:agent/vha:snmp/vha:target/vha:state/*", nc.NS)
            self.assertEqual([(e.tag.rpartition("}")[2], int(e.text)) for e in st],
                             [("failed", expected["down"][2])])
            xp = "/vha:agent/vha:snmp/vha:target[vha:name='up']/vha:state"
            data = nc.data_of(m.get(filter=("xpath", (nc.NS, xp)), with_defaults="report-all"))
            self.assertEqual(target_counters_xml(data), {"up": expected["up"]})
        finally:
            m.close_session()


    def test_inform_receiver_engine_id_is_discovered_without_blocking(self):
        dead = vmhtest.free_port("udp")
        with SnmpTrapd() as trapd, two_domains() as lv:
            targets = (target("discover", trapd.port, "v3", inform=True)
                       + target("discover-dead", dead, "v3", inform=True, timeout=300,
                                retries=1)
                       + target("plain", trapd.port))
            with Vmhealthd(config(lv.uri, targets=targets), name="snmp-discover") as d:
                d.wait_log(r"host a: connected, 2 domains")
                lv.stop()
                for uuid in (VM_META, VM_OFF):
                    trapd.wait_for(lambda n: len(abnormal_for(n, uuid)) >= 2,
                                   what="trap and discovered inform for %s" % uuid)
                d.wait_log(r"target discover: receiver's engine ID %s discovered" % TRAPD_ENGINE)
                d.wait_log(r"target discover-dead: the receiver's engine ID could not be "
                           r"discovered \(no answer\): 2 informs failed")
                v3 = {vbs[NOTIF_OBJ + ".1.0"] for sec, vbs in trapd.notifications() if "noc" in sec}
                self.assertEqual(v3, {VM_META, VM_OFF}, trapd.text())
                # informs never sent for want of an engine ID are failed, not sent
                expected = {"discover": (2, 2, 0), "discover-dead": (0, 0, 2),
                            "plain": (2, 0, 0)}
                self.assertEqual(wait_counters(d, expected), expected)
                self.assertEqual(d.stop(), 0)
                self.assertRegex(d.log_text(), r"target discover: 2 sent, 2 acknowledged, 0 failed")
                self.assertRegex(d.log_text(), r"target discover-dead: 0 sent, 0 acknowledged, "
                                               r"2 failed")


class AgentX(unittest.TestCase):
    def walk(self, snmpd, oid=VM_ENTRY):
        return TOOLS.run("snmpbulkwalk", *v2c(), "-On", "-t", "2", "-r", "1",
                         "127.0.0.1:%d" % snmpd.port, oid)

    def test_subagent_of_a_real_snmpd_survives_its_restart(self):
        with Snmpd() as snmpd, two_domains() as lv:
            with Vmhealthd(config(lv.uri, agentx=snmpd.socket), name="snmp-agentx") as d:
                d.wait_log(r"host a: connected, 2 domains")

                def rows():
                    r = self.walk(snmpd)
                    vbs = parse_numeric(r.stdout)
                    return len(vbs) == 18 and vbs
                vbs = vmhtest.wait_for(rows, what="vmhVmTable through snmpd")
                self.assertEqual(vbs[VM_ENTRY + ".2" + uuid_index(VM_META)], "vm-with-meta")
                # snmpd keeps its own system group
                r = TOOLS.run("snmpget", *v2c(), "-On", "127.0.0.1:%d" % snmpd.port,
                              SYS_OBJECT_ID)
                self.assertNotIn(ROOT, r.stdout)

                master = "127.0.0.1:%d" % snmpd.port
                r = TOOLS.run("snmpget", *v3(), *mib_args(), "-Oqv", master,
                              "NFV-VM-HEALTH-MIB::vmhVmName.'%s'" % VM_META)
                self.assertEqual(r.stdout.strip(), "vm-with-meta", r.stderr)

                snmpd.stop()
                snmpd.start()
                vbs = vmhtest.wait_for(rows, timeout=20, what="vmhVmTable after snmpd restart")
                self.assertEqual(vbs[VM_ENTRY + ".3" + uuid_index(VM_OFF)], "a")
                r = TOOLS.run("snmptable", *v2c(), *mib_args(), "-Cf", ",", "-Cb", master,
                              "NFV-VM-HEALTH-MIB::vmhVmTable")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("vm-with-meta", r.stdout)
                self.assertIn("vm-plain-off", r.stdout)
                r = TOOLS.run("snmpget", *v3(), *mib_args(), "-Oqv", master,
                              "NFV-VM-HEALTH-MIB::vmhVmHost.'%s'" % VM_OFF)
                self.assertEqual(r.stdout.strip(), "a", r.stderr)
                self.assertEqual(d.stop(), 0)


    def test_subagent_waits_for_a_master_started_after_it(self):
        snmpd = Snmpd()
        try:
            with two_domains() as lv, \
                    Vmhealthd(config(lv.uri, agentx=snmpd.socket), name="snmp-agentx-late") as d:
                d.wait_log(r"host a: connected, 2 domains")  # ready without a master
                # a few reconnection attempts (the first one a warning, the
                # others debug lines)
                vmhtest.wait_for(lambda: len(re.findall(r"\[snmp\] net-snmp: Warning: Failed to "
                                                        r"connect to the agentx master",
                                                        d.log_text())) >= 3,
                                 timeout=20, what="three failed connections to the master")
                snmpd.start()
                vbs = vmhtest.wait_for(lambda: len(parse_numeric(self.walk(snmpd).stdout)) == 18,
                                       timeout=20, what="vmhVmTable once snmpd is up")
                self.assertTrue(vbs)
                # one warning for the outage, not one per reconnection attempt
                self.assertEqual(len(re.findall(r"warning +\[snmp\] net-snmp: Warning: Failed to connect "
                                            r"to the agentx master", d.log_text())), 1,
                                 d.log_text())
                self.assertEqual(d.stop(), 0)
        finally:
            snmpd.close()


if __name__ == "__main__":
    try:
        vmhtest.main()
    finally:
        TOOLS.close()
