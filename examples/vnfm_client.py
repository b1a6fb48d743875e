#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""A VNF manager's side of vmhealth, with ncclient (Debian's python3-ncclient).

It connects over NETCONF/SSH, subscribes to the NETCONF stream, and for every
vm-abnormal notification about one of its VMs it does its own preprocessing
(here: waits --prep seconds, standing for "move the traffic to the standby"),
then answers migration-ready so that the VM is migrated at once instead of at
the deadline.  It prints a timeline of what it hears.

  examples/vnfm_client.py --port 830 --user ims-vnfm --key ~/.ssh/id_ed25519 \\
                          [--password PW] [--prep 2] [--count N] [--timeout S]

Exits after --count vm-migration-completed/-failed notifications (0: never),
or after --timeout seconds without news.
"""
import argparse
import os
import sys
import threading
import time
import xml.etree.ElementTree as ET

from ncclient import manager
from ncclient.xml_ import to_ele
import ncclient.transport.ssh

NS = "urn:vmhealth:nfv-vm-health"
# ncclient polls its transport every TICK s; 1 ms makes replies prompt.
ncclient.transport.ssh.TICK = 0.001


def text(elem, name):
    child = elem.find("{%s}%s" % (NS, name))
    return child.text if child is not None else None


# The main thread and the migration-ready threads all print; print() writes
# the text and its newline separately, so two of them could share a line.
# say() reads the clock once (its seconds and milliseconds from one reading,
# truncated like vmhealthd's log) and writes the whole line with one write().
_say_lock = threading.Lock()


def say(text):
    with _say_lock:
        now = time.time()
        line = "%s.%03d vnfm: %s\n" % (time.strftime("%H:%M:%S", time.localtime(now)),
                                       int(now % 1 * 1000), text)
        data = line.encode()
        while data:
            data = data[os.write(sys.stdout.fileno(), data):]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=830)
    ap.add_argument("--user", required=True)
    ap.add_argument("--key")
    ap.add_argument("--password")
    ap.add_argument("--prep", type=float, default=2.0,
                    help="seconds of our own preprocessing before migration-ready")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=0)
    args = ap.parse_args()

    m = manager.connect(host=args.host, port=args.port, username=args.user,
                        key_filename=args.key, password=args.password,
                        hostkey_verify=False, look_for_keys=False, allow_agent=False,
                        timeout=30)
    say("connected as %s, session %s" % (args.user, m.session_id))
    m.create_subscription(stream_name="NETCONF")
    say("subscribed to NETCONF")

    lock = threading.Lock()
    outcomes = 0

    def ready_later(uuid, name):
        time.sleep(args.prep)
        rpc = ET.Element("{%s}migration-ready" % NS)
        ET.SubElement(rpc, "{%s}vm-uuid" % NS).text = uuid
        with lock:
            reply = m.dispatch(to_ele(ET.tostring(rpc, encoding="unicode")))
        say("%s preprocessed in %.1f s, sent migration-ready: %s"
            % (name, args.prep, "ok" if reply.ok else reply.error))

    last_news = time.monotonic()
    while True:
        n = m.take_notification(block=True, timeout=0.5)
        if n is None:
            if args.timeout and time.monotonic() - last_news > args.timeout:
                say("no news for %.0f s, leaving" % args.timeout)
                break
            continue
        last_news = time.monotonic()
        root = ET.fromstring(n.notification_xml.encode())
        for ev in root:
            kind = ev.tag.split("}")[-1]
            if kind == "eventTime" or not ev.tag.startswith("{%s}" % NS):
                continue
            uuid = text(ev, "vm-uuid")
            if kind == "vm-abnormal":
                name = text(ev, "vm-name")
                say("vm-abnormal %s (%s) on %s: %s %s, window %s s, deadline %s"
                    % (name, uuid, text(ev, "host"), text(ev, "severity"),
                       (text(ev, "cause") or "").split(":")[-1],
                       text(ev, "preprocessing-time"), text(ev, "migration-deadline")))
                threading.Thread(target=ready_later, args=(uuid, name), daemon=True).start()
            elif kind in ("vm-migration-started", "vm-migration-completed"):
                say("%s %s %s -> %s%s"
                    % (kind, uuid, text(ev, "source-host"), text(ev, "target-host"),
                       " in %s ms" % text(ev, "duration") if text(ev, "duration") else ""))
            elif kind == "vm-migration-failed":
                say("%s %s on %s: %s" % (kind, uuid, text(ev, "host"), text(ev, "reason")))
            elif kind == "fault-cleared":
                say("fault-cleared %s on %s%s"
                    % (text(ev, "fault-id"), text(ev, "host"),
                       ", migration cancelled" if text(ev, "migration-cancelled") == "true"
                       else ""))
            if kind in ("vm-migration-completed", "vm-migration-failed"):
                outcomes += 1
        if args.count and outcomes >= args.count:
            break
    with lock:
        m.close_session()
    return 0


if __name__ == "__main__":
    sys.exit(main())
