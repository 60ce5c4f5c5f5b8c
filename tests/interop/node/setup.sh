#!/usr/bin/env bash
# Install the suite's pinned npm modules (npm ci from package-lock.json) when they are missing or stale.
#
# Quiet when node_modules is already newer than package-lock.json and package.json. Run it on a
# host with the npm registry before the suite runs where there is none (the nested QEMU guest):
# node_modules lives in this directory, which the guest shares.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

if [[ -d node_modules && ! package-lock.json -nt node_modules && ! package.json -nt node_modules ]]; then
    exit 0
fi
command -v npm >/dev/null || { echo "interop-node setup: npm not found (install Node.js 20 and npm)" >&2; exit 1; }

log=$(mktemp "${TMPDIR:-/tmp}/interop-node-npm.XXXXXX")
# --ignore-scripts: nothing this suite needs runs at install time (protobufjs'
# postinstall only checks its CLI's peer versions), and no lifecycle script of
# a dependency should run on a test machine.
if ! npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >"$log" 2>&1; then
    echo "interop-node setup: npm ci failed in $here (registry unreachable or lock file out of date?); its output: $log" >&2
    exit 1
fi
rm -f "$log"
# npm ci recreates node_modules, but an mtime that moved on is what the check above relies on.
touch node_modules
