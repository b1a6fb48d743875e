#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Keeps bench/run from rotting: a quick run of the two benchmarks that also
# measure a peer (snmp_walk: net-snmp's snmpd; migrate_overhead: the bare
# libvirt calls) and of fanout (whose C subscriber, bench/nc_subscriber.c,
# scripts/soak uses too) into a scratch document, checked for its machine
# table, summary rows and side-by-side tables. No figure is judged: a quick run
# judges no goal, and timings are not tests.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/vmh-bench-check-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
doc=$tmp/PERFORMANCE.md
if ! "$top/bench/run" --quick --only snmp_walk migrate_overhead fanout --out "$doc" \
     --log-dir "$tmp/logs"; then
  tail -n 40 "$tmp"/logs/*.log
  echo "0 passed, 1 failed"
  exit 1
fi
pass=0 fail=0
check() {
  if grep -Eq -- "$2" "$doc"; then echo "PASS $1"; pass=$((pass + 1));
  else echo "FAIL $1 (no line matching /$2/)"; fail=$((fail + 1)); fi
}
num='[0-9]+(\.[0-9]+)?'
check "the machine is described" '^\| CPU \| .+, [0-9]+ cores'
check "the packages are named" '^\| libvirt \| libvirt0 [0-9]'
check "the command is quoted" '^- Command: `bench/run --quick --only snmp_walk migrate_overhead fanout'
for setup in "in-process test driver" "two libvirtd, test driver"; do
  check "summary: executor overhead, $setup" \
    "^\| the executor's own overhead per migration \($setup\) \| p99 ≤ 5 ms \| $num ms \| $num ms \| 20 \| not judged \(quick run\) \|$"
  check "summary: bare libvirt calls, $setup" \
    "^\| the bare libvirt calls of a cold migration, Python binding: total \($setup\) \| +\| $num ms \| $num ms \| 20 \| +\|$"
done
check "summary: embedded walk" \
  "^\| snmpbulkwalk -Cr50 of vmhVmTable, 300 rows, embedded \| +\| $num s \| $num s \| 2 \| +\|$"
check "summary: AgentX walk" \
  "^\| snmpbulkwalk -Cr50 of vmhVmTable, 300 rows, AgentX \(snmpd\) \| +\| $num s \| $num s \| 2 \| +\|$"
check "summary: snmpd's native walk" "^\| snmpbulkwalk -Cr50 of snmpd's "
check "peer: snmpd's row" "^\| snmpd [0-9.]+, native \| (inetCidrRouteTable|everything snmpd serves)"
check "peer: vmhealthd's row" "^\| vmhealthd, embedded \| vmhVmTable \| 300 \| 9 \| 2700 \| "
check "peer: the bare libvirt calls" "^\| two private \`libvirtd\` serving the test driver .*\| 24 / 27 \| $num× \|"
# 20 VMs x 8 subscribers, every notification received by both kinds
for kind in "libnetconf2's C client" ncclient; do
  check "fanout: $kind" "^\| $kind \| 160 \| $num \| $num \| $num \| $num \| $num µs \| $num µs \|$"
done
check "the hand-written analysis is included" 'Making this much faster needs a'
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
