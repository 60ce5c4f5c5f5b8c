#!/usr/bin/env bash
# Run the Python interop suite: a grpcio client generated from vcpud.proto drives BUILD_DIR's vcpud.
#
# Usage: tests/interop/python/run.sh BUILD_DIR [-k PATTERN]...
#
# Stubs are generated into a temporary dir for this run only, by Debian's protoc and
# grpc_python_plugin (python3-grpc-tools bundles an older protoc). Tests run with Debian's
# /usr/bin/python3, the one with grpcio (deploy/install-deps.sh installs all three). Each test starts its own vcpud, so KVM must
# work here: on machines without it, wrap this in tests/nested/kvm-exec.sh. The last line is
# `interop-python: N passed, M failed`; the exit status is non-zero unless N > 0 and M = 0, so a
# suite that could not run at all fails too.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
src=$(cd "$here/../../.." && pwd -P)
# Debian's, by path: a protoc or python3 earlier on PATH may be another (older, or without grpc).
py=/usr/bin/python3
protoc=/usr/bin/protoc
plugin=/usr/bin/grpc_python_plugin
passed=0 failed=0

summary() { # summary EXIT_STATUS [REASON]
    [[ -z ${2:-} ]] || echo "interop-python: $2" >&2
    echo "interop-python: $passed passed, $failed failed"
    exit "$1"
}

(($# >= 1)) || { echo "usage: $0 BUILD_DIR [-k PATTERN]..." >&2; summary 2; }
build=$(cd "$1" 2>/dev/null && pwd -P) || summary 1 "build dir $1 not found"
shift
[[ -x $build/server/vcpud ]] || summary 1 "$build/server/vcpud not built"
for tool in "$protoc" "$plugin" objcopy nm; do
    command -v "$tool" >/dev/null || summary 1 "$tool not found (deploy/install-deps.sh installs it)"
done
"$py" -c 'import grpc, google.protobuf' 2>/dev/null ||
    summary 1 "$py lacks grpcio/protobuf (install python3-grpcio: deploy/install-deps.sh)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vcpud-interop-py.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/stubs"
"$protoc" --python_out="$tmp/stubs" --grpc_python_out="$tmp/stubs" \
    --plugin=protoc-gen-grpc_python="$plugin" \
    -I "$src/proto" "$src/proto/vcpud/v1/vcpud.proto" ||
    summary 1 "protoc could not generate the Python stubs"

# No __pycache__ in the source tree (it may be a read-write share of the nested guest, too).
rc=0
PYTHONPATH="$tmp/stubs:$here" PYTHONDONTWRITEBYTECODE=1 VCPUD_BUILD_DIR="$build" \
    "$py" "$here/runner.py" "$tmp/counts" "$@" || rc=$?

[[ -s $tmp/counts ]] || summary 1 "the suite did not run (runner exit status $rc)"
read -r passed failed <"$tmp/counts"
if ((passed == 0 || failed != 0 || rc != 0)); then
    summary 1
fi
summary 0
