#!/usr/bin/env bash
# demo.sh: set up, build, and boot a small 64-bit guest on the vcpud core whose greeting
# arrives through an emulated UART. Where /dev/kvm is missing it says so and runs the same
# demo inside the nested QEMU guest the tests use.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${VCPUD_BUILD_DIR:-$root/build}

"$root/deploy/install-deps.sh"
echo "== building vcpud ($build)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target hello_guest >/dev/null

echo "== booting the guest"
exec "$root/tests/nested/kvm-exec.sh" --workdir "$root" --share "$build" -- \
    "$build/examples/hello_guest"
