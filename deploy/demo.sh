#!/usr/bin/env bash
# demo.sh: set up, build, start vcpud on a local socket and run the remote-device demo: a
# 64-bit guest greets through a UART that a controller emulates over gRPC, echoes a line
# (typed, or an embedded default without a terminal), uses an MMIO timer and halts. Where
# /dev/kvm is missing it says so and runs the same demo inside the nested QEMU guest.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${VCPUD_BUILD_DIR:-$root/build}

"$root/deploy/install-deps.sh"
echo "== building vcpud ($build)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target vcpud remote_uart_demo >/dev/null

exec "$root/tests/nested/kvm-exec.sh" --workdir "$root" --share "$build" -- \
    "$root/deploy/demo-run.sh" "$build"
