#!/usr/bin/env bash
# install-deps.sh: install every Debian 12 package vcpud needs to build, test and demo.
# Idempotent and quiet when everything is present; apt-get update runs only when
# something is missing, so a warm machine pays nothing.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config linux-libc-dev
  # the stack: gRPC C core, nanopb, libevent; cmocka for unit tests
  libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  nanopb libnanopb-dev libevent-dev libcmocka-dev
  # clients from other gRPC stacks (interop tests)
  python3-grpcio python3-grpc-tools
  # nested KVM under QEMU for machines without /dev/kvm
  qemu-system-x86 busybox-static cpio
  # tools the test scripts use
  valgrind
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  sudo=sudo
else
  sudo=
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { $sudo apt-get update -qq && \
       $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-deps: apt-get failed (see above)" >&2
  exit 1
fi
