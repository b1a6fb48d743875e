#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Contract check of the YANG modules in yang/ with yanglint (libyang-tools):
#   - each module compiles with no output at all (yanglint exits 0 on
#     warnings, so any output counts as a failure) and prints as a tree;
#   - tests/contract/yang-valid.xml, a full configuration of both modules,
#     is valid configuration data;
#   - every tests/contract/yang-invalid/*.xml is rejected, with the error
#     named by its "<!-- expect: TEXT -->" line;
#   - a few RPC, notification and operational-state instances are valid.
# Prints one line per check, then "N passed, N failed"; exits 1 if any failed.
#
# Usage: tests/contract/check-yang.sh        (from any directory)
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
yang_dir="$root/yang"
modules=("$yang_dir/nfv-vm-health.yang" "$yang_dir/vmhealth-agent.yang")

if ! command -v yanglint >/dev/null 2>&1; then
    echo "FAIL yanglint not found (Debian package libyang2-tools)"
    echo "0 passed, 1 failed"
    exit 1
fi

# -D: do not pick up stray modules from the current directory.
lint=(yanglint -D -p "$yang_dir")

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() {
    echo "FAIL $1"
    if [ -n "${2:-}" ]; then printf '%s\n' "$2" | sed 's/^/     | /'; fi
    failed=$((failed + 1))
}

# expect_silent NAME CMD...: the command exits 0 and prints nothing.
expect_silent() {
    local name="$1"; shift
    local out rc
    out="$("$@" 2>&1)"; rc=$?
    if [ "$rc" -eq 0 ] && [ -z "$out" ]; then
        pass "$name"
    else
        fail "$name (exit $rc)" "$out"
    fi
}

# --- the modules themselves ---
for m in "${modules[@]}"; do
    base="$(basename "$m")"
    expect_silent "lint $base" "${lint[@]}" "$m"

    out="$("${lint[@]}" -f tree "$m" 2>"$tmp/err")"; rc=$?
    mod="${base%.yang}"
    if [ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ] && grep -q "^module: $mod\$" <<<"$out"; then
        pass "tree $base"
    else
        fail "tree $base (exit $rc)" "$(cat "$tmp/err")"
    fi
done

# --- a complete valid configuration ---
expect_silent "valid config yang-valid.xml" \
    "${lint[@]}" -t config "${modules[@]}" "$here/yang-valid.xml"

# --- configurations with exactly one error each ---
shopt -s nullglob
invalid=("$here"/yang-invalid/*.xml)
if [ "${#invalid[@]}" -eq 0 ]; then
    fail "invalid configs: none found under $here/yang-invalid"
fi
for f in "${invalid[@]}"; do
    name="invalid config yang-invalid/$(basename "$f")"
    expect="$(sed -n 's/^<!-- expect: \(.*\) -->$/\1/p' "$f" | head -n 1)"
    out="$("${lint[@]}" -t config "${modules[@]}" "$f" 2>&1)"; rc=$?
    if [ "$rc" -eq 0 ]; then
        fail "$name (accepted)"
    elif [ -n "$expect" ] && ! grep -qF -- "$expect" <<<"$out"; then
        fail "$name (rejected, but not for: $expect)" "$out"
    else
        pass "$name"
    fi
done

# --- RPCs, notifications and state ---
cat >"$tmp/report-fault.xml" <<'EOF'
<report-fault xmlns="urn:vmhealth:nfv-vm-health">
  <host>host-a</host>
  <severity>critical</severity>
  <description>BMC reports a power supply failure</description>
</report-fault>
EOF
expect_silent "rpc report-fault (host, against yang-valid.xml)" \
    "${lint[@]}" -t rpc -O "$here/yang-valid.xml" "${modules[@]}" "$tmp/report-fault.xml"

cat >"$tmp/migration-ready.xml" <<'EOF'
<migration-ready xmlns="urn:vmhealth:nfv-vm-health">
  <vm-uuid>a0000000-0000-4000-8000-000000000001</vm-uuid>
  <target-host>host-unknown</target-host>
</migration-ready>
EOF
out="$("${lint[@]}" -t rpc -O "$here/yang-valid.xml" "${modules[@]}" "$tmp/migration-ready.xml" 2>&1)"; rc=$?
if [ "$rc" -ne 0 ] && grep -qF 'Invalid leafref value "host-unknown"' <<<"$out"; then
    pass "rpc migration-ready to an unknown host is rejected"
else
    fail "rpc migration-ready to an unknown host is rejected" "$out"
fi

cat >"$tmp/vm-abnormal.xml" <<'EOF'
<vm-abnormal xmlns="urn:vmhealth:nfv-vm-health">
  <vm-uuid>a0000000-0000-4000-8000-000000000001</vm-uuid>
  <vm-name>ims-cscf-1</vm-name>
  <host>host-a</host>
  <cause xmlns:vmh="urn:vmhealth:nfv-vm-health">vmh:high-temperature</cause>
  <severity>major</severity>
  <preprocessing-time>30</preprocessing-time>
  <migration-deadline>2026-11-27T10:00:30Z</migration-deadline>
  <fault-id>1</fault-id>
</vm-abnormal>
EOF
expect_silent "notification vm-abnormal" \
    "${lint[@]}" -t notif "${modules[@]}" "$tmp/vm-abnormal.xml"

cat >"$tmp/state.xml" <<'EOF'
<vm-health xmlns="urn:vmhealth:nfv-vm-health">
  <host>
    <name>host-a</name>
    <uri>test:///srv/vmhealth/host-a.xml</uri>
    <state>
      <connection>connected</connection>
      <health>faulty</health>
      <sysfs-monitoring>active</sysfs-monitoring>
      <temperature>
        <name>hwmon0/temp1</name>
        <value>92.5</value>
        <high>85.0</high>
        <critical>95.0</critical>
      </temperature>
      <memory-errors>
        <corrected>12</corrected>
        <uncorrected>0</uncorrected>
      </memory-errors>
      <vm-count>1</vm-count>
    </state>
  </host>
  <vm>
    <uuid>a0000000-0000-4000-8000-000000000001</uuid>
    <name>ims-cscf-1</name>
    <host>host-a</host>
    <power-state>running</power-state>
    <health>faulty</health>
    <vnf-manager>vnfm-ims</vnf-manager>
    <preprocessing-time>30</preprocessing-time>
    <preprocessing-time-source>metadata</preprocessing-time-source>
    <memory>4194304</memory>
    <vcpus>4</vcpus>
    <migration>
      <state>pending</state>
      <deadline>2026-11-27T10:00:30Z</deadline>
    </migration>
  </vm>
  <fault>
    <id>1</id>
    <host>host-a</host>
    <cause xmlns:vmh="urn:vmhealth:nfv-vm-health">vmh:high-temperature</cause>
    <severity>major</severity>
    <detected-at>2026-11-27T10:00:00Z</detected-at>
    <value>92.5</value>
    <description>hwmon0/temp1 above 85.0</description>
  </fault>
  <statistics>
    <faults-detected>1</faults-detected>
    <notifications-sent>1</notifications-sent>
    <traps-sent>1</traps-sent>
    <migrations-started>0</migrations-started>
    <migrations-completed>0</migrations-completed>
    <migrations-failed>0</migrations-failed>
  </statistics>
</vm-health>
EOF
expect_silent "operational state (host, vm, fault, statistics)" \
    "${lint[@]}" -t data "${modules[@]}" "$tmp/state.xml"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
