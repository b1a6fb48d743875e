#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Builds the Debian package the way a release is built (prefix /usr, no
# paths into this tree), installs it on this machine, checks what it put
# where, runs the installed daemon's --check-config on the installed
# examples, and removes it again.  Needs root (dpkg).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build=$top/build-pkg
pass=0 fail=0
check() { # description, command...
  local what=$1; shift
  if "$@" >/tmp/vmh-pkg-check.log 2>&1; then
    echo "PASS $what"; pass=$((pass + 1))
  else
    echo "FAIL $what"; sed 's/^/    /' /tmp/vmh-pkg-check.log; fail=$((fail + 1))
  fi
}

cmake -S "$top" -B "$build" -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_SYSCONFDIR=/etc \
      -DVMH_SEARCH_BUILD_TREE=OFF -DVMH_DEPS_DIR="$top/build/deps" >/dev/null
cmake --build "$build" -j "$(nproc)" --target vmhealthd >/dev/null
(cd "$build" && cpack -G DEB >/dev/null)
deb=$(ls "$build"/vmhealth_*.deb | head -n 1)

cleanup() { dpkg --purge vmhealth >/dev/null 2>&1 || true; }
trap cleanup EXIT
check "the package installs" dpkg -i "$deb"
check "daemon in /usr/sbin" test -x /usr/sbin/vmhealthd
check "YANG modules installed" test -f /usr/share/yang/modules/vmhealth/nfv-vm-health.yang
check "standard NETCONF modules installed" test -f /usr/share/yang/modules/vmhealth/ietf-netconf@2013-09-29.yang
check "MIB installed" test -f /usr/share/snmp/mibs/NFV-VM-HEALTH-MIB.txt
check "systemd unit installed, Type=notify" grep -q '^Type=notify' /usr/lib/systemd/system/vmhealthd.service
check "man page installed" test -f /usr/share/man/man8/vmhealthd.8
check "configuration is a conffile" grep -qx /etc/vmhealth/vmhealth.xml /var/lib/dpkg/info/vmhealth.conffiles
check "its own user exists" getent passwd vmhealth
check "state directory 0700" test "$(stat -c %a /var/lib/vmhealth)" = 700
check "configuration 0600" test "$(stat -c %a /etc/vmhealth/vmhealth.xml)" = 600
check "the installed daemon finds only installed modules" \
  sh -c '! strings /usr/sbin/vmhealthd | grep -q "'"$top"'/yang"'
check "installed configuration is valid" /usr/sbin/vmhealthd -c /etc/vmhealth/vmhealth.xml --check-config
for ex in /usr/share/doc/vmhealth/examples/*-host.xml; do
  check "installed example $(basename "$ex") is valid" /usr/sbin/vmhealthd -c "$ex" --check-config
done
check "its copyright file says GPL-3.0-or-later" \
  grep -qx 'License: GPL-3.0-or-later' /usr/share/doc/vmhealth/copyright
check "the package removes cleanly" dpkg --purge vmhealth
check "nothing left in /usr/sbin" test ! -e /usr/sbin/vmhealthd

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
