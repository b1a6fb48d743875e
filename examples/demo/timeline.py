#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The demo's timeline: one clock, milliseconds, one line per event.

Every writer in the demo writes its own file, whole lines only, each line
stamped with the wall clock (CLOCK_REALTIME, local time, milliseconds
truncated) when it happened:

  vmhealthd.log   the daemon's own log (YYYY-MM-DDTHH:MM:SS.mmm level [token] text)
  vnfm.log        examples/vnfm_client.py (HH:MM:SS.mmm vnfm: text)
  traps.log       snmptrapd's log, stamped line by line as it arrives by
                  `timeline.py stamp` (snmptrapd's -F has whole seconds only)
  demo.log        the demo script's own lines (YYYY-MM-DDTHH:MM:SS.mmm text)

`timeline.py merge` reads them all and prints one timeline sorted by time:

  HH:MM:SS.mmm source: text

Lines stamped in the same millisecond keep the order of cause and effect:
demo, then agent, then vnfm, then noc.

  timeline.py stamp <in >out
  timeline.py merge --agent F --vnfm F --noc F --demo F [--state operational.json]
"""
import argparse
import datetime
import json
import os
import re
import sys
import time

SOURCES = ("demo", "agent", "vnfm", "noc")  # also the tie-break order
WIDTH = max(len(s) for s in SOURCES) + 1


def now_stamp():
    """The wall clock as vmhealthd's log writes it: local time, ms truncated."""
    now = time.time()
    return "%s.%03d" % (time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now)),
                        int(now % 1 * 1000))


def stamp(inp, out):
    """Copies inp to out, each line prefixed with the time it arrived; one
    write() per line, so a reader never sees half of one."""
    for raw in iter(inp.readline, b""):
        line = raw.rstrip(b"\r\n")
        data = now_stamp().encode() + b" " + line + b"\n"
        while data:
            data = data[os.write(out.fileno(), data):]


def parse_full(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%f")


BAD = []  # lines a writer should have written whole and stamped, but did not


def read_lines(path):
    if not path:
        return []
    try:
        with open(path, errors="replace") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


AGENT_STORY = re.compile(r"\[core\] (fault|vm .*(window over|migration-ready|migrating from|"
                         r"migrated from|migration to|cancelled|no target))")


def agent_events(path):
    for line in read_lines(path):
        m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}) +\S+ +\[core\] (.*)", line)
        if m and AGENT_STORY.search(line):
            yield parse_full(m.group(1)), "agent", m.group(2)


def state_events(path):
    """The faults as vmhealthd recorded them: detected-at is the daemon's
    clock when it saw the fault, before it told anyone; its log line about
    the fault is written after the notifications and traps have gone."""
    if not path or not os.path.exists(path):
        return
    vh = json.load(open(path)).get("nfv-vm-health:vm-health", {})
    for f in vh.get("fault", []):
        when = datetime.datetime.fromisoformat(f["detected-at"])
        when = when.astimezone().replace(tzinfo=None)  # to local time, as the logs
        yield when, "agent", "fault %s detected on %s: %s" % (f["id"], f["host"],
                                                              f.get("description", ""))


def vnfm_events(path, ref):
    """vnfm_client.py writes the time of day only; its date is the one that
    puts it nearest the demo's (the demo lasts seconds, not hours)."""
    for line in read_lines(path):
        m = re.match(r"(\d\d:\d\d:\d\d\.\d{3}) vnfm: (.*)", line)
        if not m:
            BAD.append("%s: %s" % (path, line))
            continue
        t = datetime.datetime.strptime(m.group(1), "%H:%M:%S.%f").time()
        when = min((datetime.datetime.combine(ref.date() + datetime.timedelta(days=d), t)
                    for d in (-1, 0, 1)), key=lambda c: abs(c - ref))
        yield when, "vnfm", m.group(2)


def noc_events(path):
    for line in read_lines(path):
        m = re.match(r"(\S+) trap (.*)", line)
        if not m:
            continue
        kind = re.search(r"= OID: NFV-VM-HEALTH-MIB::(\w+)", m.group(2))
        vm = re.search(r"vmhNotifVmName\.0 = STRING: \"?([^\"|]+)", m.group(2))
        yield parse_full(m.group(1)), "noc", "%s %s" % (kind.group(1) if kind else "trap",
                                                         vm.group(1) if vm else "")


def demo_events(path):
    for line in read_lines(path):
        m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}) (.*)", line)
        if not m:
            BAD.append("%s: %s" % (path, line))
            continue
        yield parse_full(m.group(1)), "demo", m.group(2)


def merge(args):
    events = []
    events += demo_events(args.demo)
    events += agent_events(args.agent)
    events += state_events(args.state)
    events += noc_events(args.noc)
    ref = min((e[0] for e in events), default=datetime.datetime.now())
    events += vnfm_events(args.vnfm, ref)
    # sorted() is stable: a source's lines in one millisecond keep their order.
    events.sort(key=lambda e: (e[0], SOURCES.index(e[1])))
    for when, source, text in events:
        sys.stdout.write("%s.%03d %-*s %s\n" % (when.strftime("%H:%M:%S"),
                                                when.microsecond // 1000, WIDTH,
                                                source + ":", text.rstrip()))
    sys.stdout.flush()
    for line in BAD:
        print("timeline.py: not a whole stamped line: %s" % line, file=sys.stderr)
    return 1 if BAD else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("stamp", help="stamp each line of stdin with its arrival time")
    m = sub.add_parser("merge", help="print the demo's timeline")
    for name in ("agent", "vnfm", "noc", "demo", "state"):
        m.add_argument("--" + name)
    args = ap.parse_args()
    if args.cmd == "stamp":
        stamp(sys.stdin.buffer, sys.stdout)
        return 0
    return merge(args)


if __name__ == "__main__":
    sys.exit(main())
