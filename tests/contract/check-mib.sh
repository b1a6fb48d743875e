#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Contract check of mibs/NFV-VM-HEALTH-MIB.txt (DESIGN.md, "MIB
# NFV-VM-HEALTH-MIB"):
#   (a) smilint -l 6 prints nothing at all (smilint exits 0 even when it
#       reports problems, so any output is a failure);
#   (b) every node the module defines resolves with net-snmp's snmptranslate,
#       to the same OID libsmi computes;
#   (c) every name the contract lists is defined, with the right kind;
#   (d) the VM table's index is the fixed-size 36-character UUID: an instance
#       OID carries exactly 36 index sub-identifiers, no length prefix;
#   (e) every notification carries the VM's UUID, name and host, and
#       vmhVmAbnormal also the cause, severity and preprocessing time.
#
# The IETF base MIBs (SNMPv2-SMI, -TC, -CONF) are not installed by Debian;
# scripts/fetch-deps DIR puts them in DIR/mibs.  DIR is $VMH_DEPS_DIR, default
# build/deps at the top of the repository.  net-snmp's own MIBs (NET-SNMP-MIB,
# for netSnmpPlaypen) come from /usr/share/snmp/mibs.
#
# Usage: tests/contract/check-mib.sh        (VMH_DEPS_DIR=... to override)
# Prints one line per check, then "N passed, N failed"; exits 1 on failure.
# Writes nothing outside a temporary directory that it removes: libsmi gets
# its own configuration file (-c, so /etc/smi.conf and ~/.smirc are not read)
# and net-snmp its own configuration and persistent directories.
set -u -o pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
deps=${VMH_DEPS_DIR:-$top/build/deps}
[ -d "$deps" ] && deps=$(cd "$deps" && pwd)
base_mibs=$deps/mibs
netsnmp_mibs=/usr/share/snmp/mibs
mib=$top/mibs/NFV-VM-HEALTH-MIB.txt
module=NFV-VM-HEALTH-MIB
uuid=01234567-89ab-cdef-0123-456789abcdef

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); printf 'PASS: %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL: %s\n' "$*"; }
# detail FILE: show a tool's output under a failed check, indented.
detail() { sed 's/^/      | /' "$1"; }
finish() {
    printf '%d passed, %d failed\n' "$passed" "$failed"
    if [ "$failed" -eq 0 ]; then exit 0; else exit 1; fi
}

# ---- preconditions -------------------------------------------------------
for tool in smilint smidump snmptranslate; do
    if command -v "$tool" >/dev/null 2>&1; then
        pass "tool $tool is installed"
    else
        fail "tool $tool is not installed (Debian packages smitools, snmp)"
    fi
done
if [ -f "$mib" ]; then pass "MIB file $mib exists"; else fail "MIB file $mib is missing"; fi
if [ -f "$base_mibs/SNMPv2-SMI.txt" ] && [ -f "$base_mibs/SNMPv2-TC.txt" ] &&
   [ -f "$base_mibs/SNMPv2-CONF.txt" ]; then
    pass "IETF base MIBs found in $base_mibs"
else
    fail "IETF base MIBs not found in $base_mibs (run: scripts/fetch-deps $deps)"
fi
if [ -f "$netsnmp_mibs/NET-SNMP-MIB.txt" ]; then
    pass "NET-SNMP-MIB found in $netsnmp_mibs"
else
    fail "NET-SNMP-MIB not found in $netsnmp_mibs (Debian package snmp)"
fi
[ "$failed" -eq 0 ] || finish

# libsmi: a private configuration whose path replaces the built-in one;
# SMIPATH would be applied on top of it, so it is removed from the environment.
printf 'path %s:%s:%s\n' "$base_mibs" "$netsnmp_mibs" "$top/mibs" >"$tmp/smi.conf"
smi() { env -u SMIPATH "$@"; }

# net-snmp: no /etc/snmp or ~/.snmp configuration, persistent files
# (mib_indexes, cert_indexes) in the temporary directory, and only the MIB
# directories and module given here.
mkdir -p "$tmp/snmp-conf" "$tmp/snmp-persist"
mibdirs="$base_mibs:$netsnmp_mibs:$top/mibs"
translate() {
    env -u MIBS -u MIBDIRS SNMPCONFPATH="$tmp/snmp-conf" SNMP_PERSISTENT_DIR="$tmp/snmp-persist" \
        snmptranslate -M "$mibdirs" -m "$module" "$@"
}
# The first run creates net-snmp's persistent subdirectories and says so on
# stderr; get that out of the way.
translate -On "$module::nfvVmHealthMIB" >/dev/null 2>&1

# ---- (a) smilint ---------------------------------------------------------
smi smilint -c "$tmp/smi.conf" -l 6 -s -m "$mib" >"$tmp/smilint.out" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && [ ! -s "$tmp/smilint.out" ]; then
    pass "smilint -l 6: no errors or warnings"
else
    fail "smilint -l 6 reported problems (exit $rc):"
    detail "$tmp/smilint.out"
fi

# ---- (b) every defined node resolves with snmptranslate -------------------
# libsmi's list of what the module defines: "MODULE name kind [oid]".
if smi smidump -c "$tmp/smi.conf" -q -f identifiers "$mib" >"$tmp/ids.raw" 2>"$tmp/smidump.err" &&
   [ ! -s "$tmp/smidump.err" ]; then
    pass "smidump lists the module's identifiers"
else
    fail "smidump -f identifiers failed:"
    detail "$tmp/smidump.err"
fi
awk -v m="$module" '$1 == m && NF >= 4 { print $2, $3, $4 }' "$tmp/ids.raw" >"$tmp/nodes"
awk -v m="$module" '$1 == m { print $2, $3 }' "$tmp/ids.raw" >"$tmp/kinds"

# Cross-check libsmi's list against the definitions in the text, so that a
# definition libsmi silently dropped is not silently skipped here.
sed 's/--.*//' "$mib" |
    sed -n -E 's/^[[:space:]]*([a-z][A-Za-z0-9]*)[[:space:]]+(OBJECT-TYPE|NOTIFICATION-TYPE|MODULE-IDENTITY|OBJECT-IDENTITY|OBJECT-GROUP|NOTIFICATION-GROUP|MODULE-COMPLIANCE|AGENT-CAPABILITIES|OBJECT[[:space:]]+IDENTIFIER)([[:space:]]|$).*/\1/p' |
    sort -u >"$tmp/names.text"
cut -d' ' -f1 "$tmp/nodes" | sort -u >"$tmp/names.smi"
if [ -s "$tmp/names.text" ] && cmp -s "$tmp/names.text" "$tmp/names.smi"; then
    pass "smidump and the MIB text agree on the $(wc -l <"$tmp/names.text") defined nodes"
else
    fail "defined nodes differ between the MIB text (<) and smidump (>):"
    diff "$tmp/names.text" "$tmp/names.smi" >"$tmp/names.diff"
    detail "$tmp/names.diff"
fi

if translate -On "$module::nfvVmHealthMIB" >"$tmp/load.out" 2>"$tmp/load.err" && [ ! -s "$tmp/load.err" ]; then
    pass "snmptranslate loads $module without errors"
else
    fail "snmptranslate could not load $module cleanly:"
    detail "$tmp/load.err"
fi

while read -r name kind oid; do
    if out=$(translate -On "$module::$name" 2>"$tmp/tr.err") && [ "$out" = ".$oid" ]; then
        pass "snmptranslate resolves $kind $name to $out"
    else
        fail "snmptranslate $module::$name gave '${out:-}' (libsmi: .$oid):"
        detail "$tmp/tr.err"
    fi
done <"$tmp/nodes"

# ---- (c) names fixed by the contract ---------------------------------------
contract="
vmhHostTable table
vmhHostIndex column
vmhHostName column
vmhHostUri column
vmhHostHealth column
vmhHostTemperature column
vmhHostMemUncorrected column
vmhHostMemCorrected column
vmhHostVmCount column
vmhVmTable table
vmhVmUuid column
vmhVmName column
vmhVmHost column
vmhVmPowerState column
vmhVmHealth column
vmhVmCause column
vmhVmVnfManager column
vmhVmPreprocessingTime column
vmhVmMigrationState column
vmhVmMigrationTarget column
vmhVmAbnormal notification
vmhVmMigrationStarted notification
vmhVmMigrationCompleted notification
vmhVmMigrationFailed notification
vmhFaultCleared notification
"
while read -r name want; do
    [ -n "$name" ] || continue
    got=$(awk -v n="$name" '$1 == n { print $2; exit }' "$tmp/kinds")
    if [ "$got" = "$want" ]; then
        pass "contract name $name is defined ($want)"
    elif [ -z "$got" ]; then
        fail "contract name $name is not defined"
    else
        fail "contract name $name is a $got, expected a $want"
    fi
done <<<"$contract"

# ---- (d) fixed-size UUID index: 36 sub-identifiers, no length prefix -------
# The ASCII codes of the UUID's characters, as OID sub-identifiers.
want_index=$(printf '%s' "$uuid" | od -An -v -tu1 | tr -s ' \n' '..' | sed 's/^\.//; s/\.$//')
column=$(translate -On "$module::vmhVmName" 2>/dev/null)
# net-snmp quotes a fixed-size string index with '...'; "..." is its notation
# for a variable-length string (length sub-identifier first).
instance=$(translate -On "$module::vmhVmName.'$uuid'" 2>"$tmp/idx.err")
suffix=${instance#"$column".}
count=$(printf '%s' "$suffix" | tr '.' '\n' | grep -c .)
if [ -n "$column" ] && [ "$instance" != "$suffix" ] && [ "$count" -eq 36 ] && [ "$suffix" = "$want_index" ]; then
    pass "vmhVmName.'$uuid' has exactly 36 index sub-ids (the UUID's characters, no length prefix)"
else
    fail "vmhVmName.'$uuid' translated to '$instance' ($count index sub-ids, wanted 36: $want_index):"
    detail "$tmp/idx.err"
fi
back=$(translate -OS "$column.$want_index" 2>"$tmp/idx.err")
if [ "$back" = "$module::vmhVmName.'$uuid'" ]; then
    pass "the 36-sub-id instance OID translates back to $back"
else
    fail "$column.$want_index translated back to '$back', not $module::vmhVmName.'$uuid':"
    detail "$tmp/idx.err"
fi
# The "..." form: net-snmp 5.9 refuses it for a fixed-size index ("-quote is
# for variable length strings), which is itself proof that it sees the index
# as fixed-size.  Should a net-snmp accept it, it must still give no prefix.
dq=$(translate -On "$module::vmhVmName.\"$uuid\"" 2>"$tmp/dq.err")
if [ -z "$dq" ] && grep -q 'variable length' "$tmp/dq.err"; then
    pass "vmhVmName.\"$uuid\" is refused by net-snmp as a variable-length form (index is fixed-size)"
elif [ -n "$dq" ] && [ "$dq" = "$instance" ]; then
    pass "vmhVmName.\"$uuid\" gives the same 36-sub-id OID (no length prefix)"
else
    fail "vmhVmName.\"$uuid\" gave '$dq':"
    detail "$tmp/dq.err"
fi

# ---- (e) notification varbinds ---------------------------------------------
check_varbinds() {
    local notif=$1 objs
    shift
    objs=$(translate -Td "$module::$notif" 2>/dev/null |
        sed -n 's/^[[:space:]]*OBJECTS[[:space:]]*{\(.*\)}.*/\1/p' | tr -d ' \t' | tr ',' '\n')
    local missing=() o
    for o in "$@"; do
        grep -qx "$o" <<<"$objs" || missing+=("$o")
    done
    if [ -n "$objs" ] && [ "${#missing[@]}" -eq 0 ]; then
        pass "$notif carries $(IFS=,; echo "$*")"
    else
        fail "$notif lacks ${missing[*]:-its OBJECTS clause}"
    fi
}
common=(vmhNotifVmUuid vmhNotifVmName vmhNotifHostName)
check_varbinds vmhVmAbnormal "${common[@]}" vmhNotifCause vmhNotifSeverity vmhNotifPreprocessingTime vmhNotifDeadline vmhNotifFaultId
check_varbinds vmhVmMigrationStarted "${common[@]}" vmhNotifSourceHost vmhNotifTargetHost
check_varbinds vmhVmMigrationCompleted "${common[@]}" vmhNotifSourceHost vmhNotifTargetHost vmhNotifDuration
check_varbinds vmhVmMigrationFailed "${common[@]}" vmhNotifReason
check_varbinds vmhFaultCleared "${common[@]}" vmhNotifFaultId vmhNotifMigrationCancelled

finish
