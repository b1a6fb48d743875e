#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The README's first command must tell its story: runs scripts/demo and
# checks that the VNF manager's VMs moved on its migration-ready, the others
# at their deadlines, that the NOC got the traps, and where everything ended;
# and that its timeline prints cleanly: one event a line, each with a time in
# ms from one clock, in time order, every trap after the event behind it.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
pass=0 fail=0
check() {
  if grep -Eq "$2" "$out"; then echo "PASS $1"; pass=$((pass + 1));
  else echo "FAIL $1 (no line matching /$2/)"; fail=$((fail + 1)); fi
}
"$top/scripts/demo" >"$out" 2>&1 || { cat "$out"; echo "0 passed, 1 failed"; exit 1; }
check "the manager hears vm-abnormal" 'vnfm: +vm-abnormal ims-cscf-1 .* window 30 s'
check "migration-ready answered ok" 'ims-cscf-2 preprocessed in 2.0 s, sent migration-ready: ok'
check "ready path moves at once" 'agent: vm ims-cscf-1 .*: migration-ready from its manager'
check "timer path at the deadline" 'agent: vm epc-mme-1 .*: preprocessing window over'
check "the NOC gets the traps" 'noc: +vmhVmMigrationCompleted epc-mme-1'
for vm in ims-cscf-1 ims-cscf-2 epc-mme-1 spare-1; do
  check "$vm ends on host-b" "^  $vm +host-b .*completed -> host-b"
done
check "the MIB says so" "vmhVmMigrationState.'a0000000-0000-4000-8000-000000000003' = INTEGER: completed"

# The timeline: the lines between "== the timeline" and the next "== ".
while read -r verdict what; do
  echo "$verdict $what"
  if [ "$verdict" = PASS ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
done < <(/usr/bin/python3 - "$out" <<'PY'
import re, sys

out = open(sys.argv[1], errors="replace").read().splitlines()
start = next((i for i, l in enumerate(out) if l.startswith("== the timeline")), None)
if start is None:
    print("FAIL the demo prints a timeline (no '== the timeline' line)")
    sys.exit()
end = next((i for i in range(start + 1, len(out)) if out[i].startswith("== ")), len(out))
lines = out[start + 1:end]


def check(what, bad, detail=""):
    print("PASS %s" % what if not bad else "FAIL %s (%s)" % (what, detail))


LINE = re.compile(r"   (\d\d):(\d\d):(\d\d)\.(\d{3}) (demo|agent|vnfm|noc): +(\S.*)$")
parsed = [(l, LINE.fullmatch(l)) for l in lines]
bad = [l for l, m in parsed if not m]
check("every timeline line is 'HH:MM:SS.mmm source: text'", bad or not lines,
      "%r" % bad[0] if bad else "the timeline is empty")
events = [m for _, m in parsed if m]
sources = {m.group(5) for m in events}
check("the timeline has demo, agent, vnfm and noc lines",
      sources != {"demo", "agent", "vnfm", "noc"}, "only %s" % sorted(sources))

# A time of day in the text is a second line glued on, as in "...ok06:59:51.533
# vnfm: ...".  A date-time with its UTC offset (a deadline) is data.
DATA_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)")
glued = [m.group(0) for m in events
         if re.search(r"\d\d?:\d\d:\d\d", DATA_TIME.sub("", m.group(6)))]
check("no timeline line holds a second timestamp", glued, "%r" % glued[:1])

ms, day, late = [], 0, []
for m in events:
    t = day + ((int(m.group(1)) * 60 + int(m.group(2))) * 60 + int(m.group(3))) * 1000 \
        + int(m.group(4))
    if ms and t < ms[-1] and ms[-1] - t > 23 * 3600 * 1000:  # past midnight
        day += 24 * 3600 * 1000
        t += 24 * 3600 * 1000
    if ms and t < ms[-1]:
        late.append(m.group(0))
    ms.append(t)
check("the timeline is in time order", late, "%r comes after a later line" % late[:1])


def first(pattern, after=-1):
    return next((i for i, m in enumerate(events)
                 if i > after and re.search(pattern, m.group(5) + ": " + m.group(6))), None)


# Each trap after the agent's event behind it; the fault after the sensor.
heat = first(r"^demo: host-a's sensor .* 91 C")
fault = first(r"^agent: fault \d+ detected on host-a")
check("the fault is detected after host-a gets hot",
      heat is None or fault is None or fault < heat, "sensor line %s, fault line %s" % (heat, fault))
causes = {"vmhVmAbnormal": r"^agent: fault \d+ detected on ",
          "vmhVmMigrationStarted": r"^agent: vm %s \(.*\): migrating from ",
          "vmhVmMigrationCompleted": r"^agent: vm %s \(.*\): migrated from "}
early, traps = [], 0
for i, m in enumerate(events):
    t = re.fullmatch(r"(\w+) (\S+)", m.group(6)) if m.group(5) == "noc" else None
    if not t or t.group(1) not in causes:
        continue
    traps += 1
    cause = first(causes[t.group(1)] % re.escape(t.group(2))
                  if "%s" in causes[t.group(1)] else causes[t.group(1)])
    if cause is None or cause > i:
        early.append(m.group(0))
check("every trap comes after the event that caused it", early or not traps,
      "%r" % early[:1] if early else "no traps in the timeline")
PY
)
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
