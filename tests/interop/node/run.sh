#!/usr/bin/env bash
# Run the Node.js interop suite (grpc-js client, node:test) against the vcpud of BUILD_DIR.
#
# Usage: tests/interop/node/run.sh BUILD_DIR
#
# Installs the pinned modules first (setup.sh), then runs every test/*.test.js with node's test
# runner: a human-readable report on stdout, and counts from lib/count-reporter.mjs. The last
# line is `interop-node: N passed, M failed`; the exit status is non-zero when nothing passed,
# anything failed, or the suite could not run. Needs a working /dev/kvm (wrap it in
# tests/nested/kvm-exec.sh on machines without one), objcopy and nm.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
name=interop-node

give_up() {
    echo "$name: $1" >&2
    echo "$name: 0 passed, 0 failed"
    exit 1
}

(($# == 1)) || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
build=$(cd "$1" 2>/dev/null && pwd -P) || give_up "build dir $1 not found"
[[ -x $build/server/vcpud ]] || give_up "$build/server/vcpud is missing: build the project first"
command -v node >/dev/null || give_up "node not found (Node.js 20 or newer is needed)"
major=$(node -p 'process.versions.node.split(".")[0]')
((major >= 20)) || give_up "node $(node --version) is too old: Node.js 20 or newer is needed"

"$here/setup.sh" || give_up "could not install the npm modules"

counts=$(mktemp "${TMPDIR:-/tmp}/interop-node-counts.XXXXXX")
trap 'rm -f "$counts"' EXIT

# One file at a time: each test starts its own vcpud, and in the nested guest
# (2 emulated CPUs, one TCG thread) parallel files only add timeouts.
rc=0
VCPUD_BUILD_DIR=$build node --test --test-concurrency=1 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter="$here/lib/count-reporter.mjs" --test-reporter-destination="$counts" \
    "$here"/test/*.test.js || rc=$?

# The reporter writes one JSON line at the end; without it the run never finished.
summary=$(node -e '
    const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    for (const f of c.failures) console.log("failed: " + f);
    console.log(c.passed, c.failed, c.skipped);
' "$counts" 2>/dev/null) || give_up "the test runner produced no results (exit status $rc)"
read -r passed failed skipped <<<"$(tail -n1 <<<"$summary")"
sed '$d' <<<"$summary" | sed "s/^/$name: /"

ok=1
((passed > 0)) || { echo "$name: no test passed" >&2; ok=0; }
((failed == 0)) || ok=0
if ((rc != 0 && failed == 0)); then
    echo "$name: the test runner exited with status $rc" >&2
    ok=0
fi
line="$name: $passed passed, $failed failed"
((skipped > 0)) && line+=", $skipped skipped"
echo "$line"
((ok))
