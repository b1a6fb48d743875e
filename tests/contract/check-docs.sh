#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# docs/yang-tree.md must be what scripts/gen-docs makes of yang/ today.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
"$top/scripts/gen-docs" "$tmp"
if diff -u "$top/docs/yang-tree.md" "$tmp"; then
  echo "PASS docs/yang-tree.md is up to date"
  echo "1 passed, 0 failed"
else
  echo "FAIL docs/yang-tree.md is stale: run scripts/gen-docs"
  echo "0 passed, 1 failed"
  exit 1
fi
