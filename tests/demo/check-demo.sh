#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The README's first command must tell its story: runs scripts/demo and
# checks that the VNF manager's VMs moved on its migration-ready, the others
# at their deadlines, that the NOC got the traps, and where everything ended.
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
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
