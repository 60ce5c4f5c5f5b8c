#!/usr/bin/env bash
# run-tests.sh: set up a machine, build vcpud with ASan/UBSan and run every test suite:
# unit, KVM (the core on real KVM) and integration (the server and C client).
# The KVM tests run on this machine's /dev/kvm when it works, else inside a nested
# QEMU guest (VCPUD_KVM_NESTED=1 forces that); see tests/run-kvm-tests.sh.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${VCPUD_BUILD_DIR:-$root/build-asan}

"$root/deploy/install-deps.sh"

echo "== build ($build, ASan/UBSan)"
cmake -S "$root" -B "$build" -DVCPUD_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null

# The demo builds without sanitizers at -O2, where gcc warns about more: keep that
# configuration compiling too.
echo "== build (release, as deploy/demo.sh does)"
cmake -S "$root" -B "$root/build-release" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$root/build-release" -j"$(nproc)" >/dev/null

# Leaks fail a test as surely as a wrong value does.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
echo "== unit tests"
ctest --test-dir "$build" -L unit --output-on-failure || status=1

echo "== KVM tests"
"$root/tests/run-kvm-tests.sh" "$build" || status=1

echo "== integration tests (vcpud + C client on TCP and unix sockets)"
"$root/tests/run-kvm-tests.sh" --label integration "$build" || status=1

# Independent gRPC stacks against the same contract. npm needs the network,
# which the nested guest does not have: install on the host first.
echo "== interop: Python grpcio (Debian's, /usr/bin/python3)"
"$root/tests/nested/kvm-exec.sh" --workdir "$root" --share "$build" -- \
    "$root/tests/interop/python/run.sh" "$build" || status=1

echo "== interop: Node @grpc/grpc-js"
"$root/tests/interop/node/setup.sh"
"$root/tests/nested/kvm-exec.sh" --workdir "$root" --share "$build" -- \
    "$root/tests/interop/node/run.sh" "$build" || status=1

exit $status
