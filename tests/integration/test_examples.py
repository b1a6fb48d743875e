#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every example in examples/ does what it says, against the real daemon,
so that none of them can rot: the configurations validate, the domain
metadata snippet assigns its VM, the VNF manager client hears its VM's
vm-abnormal and gets it migrated with migration-ready, snmptrapd.conf
receives vmhealth's traps and informs, and snmpd-agentx.conf serves the MIB
with vmhealthd as its subagent."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import libvirt

import vmhtest
from vmhtest import Libvirtd, Vmhealthd, VMH_NS, VHA_NS, REPO
import test_netconf
from test_netconf import Keys

EX = os.path.join(REPO, "examples")
UUID = "ee000000-0000-4000-8000-000000000001"


def example(name):
    with open(os.path.join(EX, name)) as f:
        return f.read()


def metadata_snippet():
    """The <metadata> element of examples/domain-metadata.xml, as written."""
    text = example("domain-metadata.xml")
    return text[text.index("<metadata>"):text.index("</metadata>") + len("</metadata>")]


def domain_xml(name, uuid, metadata=""):
    return ("<domain type='test'><name>%s</name><uuid>%s</uuid><memory unit='MiB'>64</memory>"
            "<vcpu>1</vcpu><os><type>hvm</type></os>%s</domain>" % (name, uuid, metadata))


def mib_args():
    deps = os.environ.get("VMH_DEPS_DIR") or os.path.join(REPO, "build", "deps")
    return ["-M", "%s/mibs:/usr/share/snmp/mibs:%s/mibs" % (deps, REPO), "-m", "NFV-VM-HEALTH-MIB"]


class Examples(unittest.TestCase):
    def test_example_configurations_validate(self):
        for name in ("configs/single-host.xml", "configs/multi-host.xml"):
            with self.subTest(name):
                r = subprocess.run([vmhtest.vmhealthd_binary(), "-c", os.path.join(EX, name),
                                    "--check-config"], capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, r.stderr)

    def test_domain_metadata_snippet_assigns_the_vm(self):
        with Libvirtd("ex-meta") as lv:
            lv.conn().defineXML(domain_xml("ims-1", UUID, metadata_snippet()))
            cfg = ('<vm-health xmlns="%s"><host><name>a</name><uri>%s</uri></host>'
                   '<vnf-manager><name>vnfm-ims</name></vnf-manager></vm-health>'
                   % (VMH_NS, lv.uri))
            with Vmhealthd(cfg) as d:
                vm = {v["uuid"]: v for v in d.dump_state()["nfv-vm-health:vm-health"]["vm"]}[UUID]
                self.assertEqual((vm["vnf-manager"], vm["preprocessing-time"],
                                  vm["preprocessing-time-source"]), ("vnfm-ims", 30, "metadata"))

    def test_vnfm_client_gets_its_vm_migrated(self):
        tmp = tempfile.mkdtemp(prefix="vmh-ex-vnfm-")
        self.addCleanup(shutil.rmtree, tmp, True)
        keys = Keys()
        self.addCleanup(keys.close)
        with Libvirtd("ex-a") as a, Libvirtd("ex-b") as b:
            ca, cb = a.conn(), b.conn()
            for c in (ca, cb):  # test:///default's own domain takes more than its memory
                t = c.lookupByName("test")
                t.destroy()
                t.undefine()
            ca.defineXML(domain_xml("ims-1", UUID, metadata_snippet())).create()
            port = vmhtest.free_port()
            vh = ("<host><name>a</name><uri>%s</uri><migration-target>false</migration-target>"
                  "<shared-storage>true</shared-storage></host><host><name>b</name><uri>%s</uri>"
                  "<shared-storage>true</shared-storage></host><vnf-manager><name>vnfm-ims"
                  "</name><user>vnfm</user></vnf-manager>" % (a.uri, b.uri))
            cfg = test_netconf.daemon_config(keys, port, os.path.join(tmp, "state"),
                                             vm_health=vh)
            with Vmhealthd(cfg) as d:
                client = subprocess.Popen(
                    ["/usr/bin/python3", os.path.join(EX, "vnfm_client.py"), "--port", str(port),
                     "--user", "vnfm", "--key", keys.vnfm_key, "--prep", "0.5", "--count", "1",
                     "--timeout", "20"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    text=True)
                try:
                    d.wait_log(r"subscri", timeout=15)
                    # another monitor reports the host failing (admin, report-fault)
                    admin = test_netconf.connect(port, key=keys.admin_key)
                    from ncclient.xml_ import to_ele
                    admin.dispatch(to_ele('<report-fault xmlns="%s"><host>a</host><severity>'
                                          'critical</severity><description>example</description>'
                                          '</report-fault>' % VMH_NS))
                    out, _ = client.communicate(timeout=30)
                finally:
                    if client.poll() is None:
                        client.kill()
                self.assertEqual(client.returncode, 0, out)
                self.assertRegex(out, r"vm-abnormal ims-1 \(%s\) on a: critical external" % UUID)
                self.assertRegex(out, r"sent migration-ready: ok")
                self.assertRegex(out, r"vm-migration-completed %s a -> b" % UUID)
                self.assertEqual(bool(cb.lookupByUUIDString(UUID).isActive()), True)
                with self.assertRaises(libvirt.libvirtError):
                    ca.lookupByUUIDString(UUID)
                admin.close_session()

    def snmptrapd_from_example(self, tmp):
        port = vmhtest.free_port("udp")
        conf = re.sub(r"snmpTrapdAddr \S+", "snmpTrapdAddr udp:127.0.0.1:%d" % port,
                      example("snmptrapd.conf"))
        with open(os.path.join(tmp, "snmptrapd.conf"), "w") as f:
            f.write(conf)
        log = os.path.join(tmp, "traps.log")
        env = dict(os.environ, SNMPCONFPATH=tmp, SNMP_PERSISTENT_DIR=os.path.join(tmp, "p"))
        proc = subprocess.Popen(["setpriv", "--pdeathsig", "SIGKILL", "snmptrapd", "-f", "-C",
                                 "-c", os.path.join(tmp, "snmptrapd.conf"), "-A", "-Lf", log,
                                 *mib_args(), "-F", "TRAP %P %V|%v\n"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.terminate)
        vmhtest.wait_for(lambda: os.path.exists(log) and "NET-SNMP" in open(log).read(),
                         what="snmptrapd up")
        return port, log

    def test_snmptrapd_example_receives_traps_and_informs(self):
        tmp = tempfile.mkdtemp(prefix="vmh-ex-trapd-")
        self.addCleanup(shutil.rmtree, tmp, True)
        port, log = self.snmptrapd_from_example(tmp)
        with Libvirtd("ex-trap") as lv:
            snmp = ("<snmp><usm-user><name>noc</name><auth-protocol>sha-256</auth-protocol>"
                    "<auth-passphrase>noc-auth-passphrase</auth-passphrase><priv-protocol>aes"
                    "</priv-protocol><priv-passphrase>noc-priv-passphrase</priv-passphrase>"
                    "</usm-user>"
                    "<target><name>v2c</name><address>127.0.0.1</address><port>%d</port>"
                    "<version>v2c</version><community>noc</community></target>"
                    "<target><name>inform</name><address>127.0.0.1</address><port>%d</port>"
                    "<version>v3</version><user>noc</user><security-level>auth-priv"
                    "</security-level><engine-id>8000000001020304</engine-id><inform>true"
                    "</inform></target></snmp>" % (port, port))
            cfg = ('<vm-health xmlns="%s"><host><name>a</name><uri>%s</uri></host></vm-health>'
                   '<agent xmlns="%s">%s</agent>' % (VMH_NS, lv.uri, VHA_NS, snmp))
            with Vmhealthd(cfg) as d:
                d.wait_log(r"host a: connected, 1 domains")
                lv.stop()  # the hypervisor goes: host-unreachable for its VM
                vmhtest.wait_for(lambda: len(re.findall(r"vmhVmAbnormal", open(log).read())) >= 2,
                                 what="a trap and an inform")
                text = open(log).read()
                self.assertRegex(text, r"TRAP .*noc.*vmhVmAbnormal")        # v2c community
                self.assertRegex(text, r"vmhNotifVmName\.0 = STRING: \"?test")

    def test_snmpd_agentx_example_serves_the_mib(self):
        tmp = tempfile.mkdtemp(prefix="vmh-ex-snmpd-")
        os.chmod(tmp, 0o755)
        self.addCleanup(shutil.rmtree, tmp, True)
        sock = os.path.join(tmp, "agentx")
        udp = vmhtest.free_port("udp")
        conf = example("snmpd-agentx.conf").replace("/var/agentx/master", sock)
        conf = conf.replace("agentXPerms 0660 0750 root vmhealth", "agentXPerms 0660 0750")
        conf = conf.replace("192.0.2.0/24", "127.0.0.1")
        with open(os.path.join(tmp, "snmpd.conf"), "w") as f:
            f.write(conf)
        env = dict(os.environ, SNMPCONFPATH=tmp, SNMP_PERSISTENT_DIR=os.path.join(tmp, "p"))
        proc = subprocess.Popen(["setpriv", "--pdeathsig", "SIGKILL", "snmpd", "-f", "-C", "-c",
                                 os.path.join(tmp, "snmpd.conf"), "-Lf", os.path.join(tmp, "log"),
                                 "-I", "-smux", "-p", os.path.join(tmp, "pid"),
                                 "udp:127.0.0.1:%d" % udp],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.terminate)
        vmhtest.wait_for(lambda: os.path.exists(sock), what="snmpd's AgentX socket")
        with Libvirtd("ex-agentx") as lv:
            cfg = ('<vm-health xmlns="%s"><host><name>a</name><uri>%s</uri></host></vm-health>'
                   '<agent xmlns="%s"><snmp><agentx-socket>%s</agentx-socket></snmp></agent>'
                   % (VMH_NS, lv.uri, VHA_NS, sock))
            with Vmhealthd(cfg) as d:
                d.wait_log(r"host a: connected, 1 domains")

                def walk():
                    r = subprocess.run(["snmpbulkwalk", "-v2c", "-c", "noc-read", *mib_args(),
                                        "127.0.0.1:%d" % udp, "NFV-VM-HEALTH-MIB::vmhVmName"],
                                       capture_output=True, text=True,
                                       env=dict(env, SNMP_PERSISTENT_DIR=os.path.join(tmp, "c")))
                    return "STRING: test" in r.stdout and r.stdout
                out = vmhtest.wait_for(walk, timeout=15, what="the MIB through snmpd")
                self.assertRegex(out, r"vmhVmName\.'6695eb01-f6a4-8304-79aa-97f2502e193f'")


if __name__ == "__main__":
    vmhtest.main()
