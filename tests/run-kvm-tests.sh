#!/usr/bin/env bash
# Run the KVM-labelled ctest tests of a build, on this host's /dev/kvm or in a nested guest.
#
# Usage: tests/run-kvm-tests.sh [--label LABEL] BUILD_DIR
#
# LABEL (default kvm) picks the ctest label and names the closing line, so the integration suite
# (label "integration", which needs KVM for the guests its server runs) goes the same way.
#
# tests/nested/kvm-exec.sh picks the place: this host when /dev/kvm works, otherwise (or with
# VCPUD_KVM_NESTED=1) a QEMU guest that has KVM. The command is
#   ctest --test-dir BUILD_DIR -L kvm --output-on-failure
# or, if set, the shell command in VCPUD_KVM_TEST_CMD (run from the source tree, with
# VCPUD_BUILD_DIR exported); it must print ctest's summary or a line `[word: ]P passed, F failed`.
# The last line printed is `kvm: P passed, F failed` (`, S skipped` added when tests skipped).
# Exits non-zero unless at least one test passed, none failed and the command itself succeeded:
# a suite that silently runs nothing is a failure.
set -euo pipefail

label=kvm
if [[ ${1:-} == --label ]]; then
    label=${2:?}
    shift 2
fi
(($# == 1)) || { echo "usage: $0 [--label LABEL] BUILD_DIR" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/.." && pwd -P)
build=$(cd "$1" && pwd -P) || { echo "$label: build dir $1 not found" >&2; echo "$label: 0 passed, 0 failed"; exit 1; }

# The guest sees the host read-only except for shared dirs: the source tree (the workdir), the
# build tree, and the CMake source dir the build came from, when they lie outside each other.
shares=(--share "$build")
cmake_src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
[[ -n $cmake_src && -d $cmake_src ]] && shares+=(--share "$cmake_src")

export VCPUD_BUILD_DIR=$build
if [[ -n ${VCPUD_KVM_TEST_CMD:-} ]]; then
    cmd=(sh -c "$VCPUD_KVM_TEST_CMD")
else
    cmd=(ctest --test-dir "$build" -L "^$label\$" --output-on-failure)
fi

raw=$(mktemp "${TMPDIR:-/tmp}/kvm-tests.XXXXXX")
log=$raw.txt
trap 'rm -f "$raw" "$log"' EXIT
rc=0
"$here/nested/kvm-exec.sh" --workdir "$src" "${shares[@]}" -- "${cmd[@]}" 2>&1 | tee "$raw" ||
    rc=${PIPESTATUS[0]}
# Colour codes (CLICOLOR_FORCE, a tty somewhere) would split the summary lines.
sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g' -e 's/\r$//' "$raw" >"$log"

# ctest: "50% tests passed, 1 tests failed out of 2", skipped tests listed as "(Skipped)"
# below it and counted among the passed; "No tests were found!!!" when the label matched none.
passed='' failed='' skipped=0
summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n1 || true)
if [[ -n $summary ]]; then
    failed=$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<<"$summary")
    total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$summary")
    skipped=$(grep -cE '^[[:space:]]*[0-9]+ - .* \(Skipped\)[[:space:]]*$' "$log" || true)
    passed=$((total - failed - skipped))
elif grep -q '^No tests were found' "$log"; then
    passed=0 failed=0
else
    plain=$(grep -E '^([A-Za-z_-]+: )?[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$log" | tail -n1 || true)
    if [[ -n $plain ]]; then
        plain=${plain#*: }
        passed=$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$plain")
        failed=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$plain")
        [[ $plain == *skipped ]] && skipped=$(sed -E 's/.* ([0-9]+) skipped$/\1/' <<<"$plain")
    fi
fi

ok=1
if [[ -z $passed ]]; then
    echo "$label: no test summary in the output (exit status $rc): the tests did not run" >&2
    passed=0 failed=0 ok=0
fi
if ((passed == 0 && failed == 0)) && ((ok)); then
    echo "$label: no test ran" >&2
    ok=0
fi
((failed == 0)) || ok=0
if ((rc != 0)); then
    ((failed > 0)) || echo "$label: the test command exited with status $rc" >&2
    ok=0
fi

line="$label: $passed passed, $failed failed"
((skipped > 0)) && line+=", $skipped skipped"
echo "$line"
((ok))
