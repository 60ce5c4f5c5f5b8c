#!/usr/bin/env bash
# Run Python interop tests against a vcpud under valgrind's memcheck: an invalid read or write,
# a jump on an uninitialised value, or a definite or indirect leak at SIGTERM makes that server
# exit with 99 instead of 0, which fails the test that started it (its log, valgrind's report
# included, is printed).
#
# Usage: tests/valgrind/run.sh [BUILD_DIR] [-k PATTERN]...
#
# BUILD_DIR (default build-valgrind) is configured without sanitizers, which valgrind cannot run
# with. Not part of deploy/run-tests.sh: valgrind slows the server 20-50 times, in the nested
# QEMU guest (where /dev/kvm is missing) on top of TCG, so the whole suite would take hours; the
# default patterns take one or two tests of each area - every RPC, the stream, string IO,
# snapshots, posted writes, bad input, tenants, shutdown with guests and streams in flight.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$root/build-valgrind
if (($#)) && [[ $1 != -k ]]; then
    build=$1
    shift
fi
patterns=("$@")
if ((${#patterns[@]} == 0)); then
    for t in io_guest_with_registers stream_cancelled_mid_run vcpu_destroyed_mid_run \
        caller_going_away string_io_every_element mmio_in_long_mode interrupt_and_nmi \
        garbage_and_missing over_max_message write_and_read_in_chunks \
        many_writes_over_several snapshot_with_io_in_pending damaged_snapshot \
        shutdown.Shutdown.test_guests_running streams_left_open tenants_see_only; do
        patterns+=(-k "$t")
    done
fi

"$root/deploy/install-deps.sh"
command -v valgrind >/dev/null || { echo "valgrind: not installed" >&2; exit 1; }
echo "== build ($build, no sanitizers)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVCPUD_SANITIZE=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null

export VCPUD_SERVER_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full
    --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect"
export VCPUD_TIMEOUT_SCALE=${VCPUD_TIMEOUT_SCALE:-10}
# The nested guest's own limit (25 minutes) is for the plain suites: ~40 s a
# test here would hit it after some 35 tests.
export VCPUD_NESTED_TIMEOUT=${VCPUD_NESTED_TIMEOUT:-7200}
exec "$root/tests/nested/kvm-exec.sh" --workdir "$root" --share "$build" \
    --env VCPUD_SERVER_WRAPPER --env VCPUD_TIMEOUT_SCALE -- \
    "$root/tests/interop/python/run.sh" "$build" "${patterns[@]}"
