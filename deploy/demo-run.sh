#!/usr/bin/env bash
# demo-run.sh: start vcpud on a unix socket, run the remote UART demo controller against
# it, then stop the server. Runs where /dev/kvm works (demo.sh decides where that is).
set -euo pipefail

build=${1:?usage: demo-run.sh BUILD_DIR}
sock=${VCPUD_DEMO_SOCKET:-/tmp/vcpud-demo-$$.sock}
log=$(mktemp "${TMPDIR:-/tmp}/vcpud-demo.XXXXXX")

"$build/server/vcpud" --listen "unix:$sock" 2>"$log" &
server=$!
stop() {
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -f "$log"
}
trap stop EXIT

for _ in $(seq 200); do
    grep -q "listening on" "$log" && break
    kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.05
done
echo "== vcpud is serving on unix:$sock; the controller connects to it over gRPC"
"$build/examples/remote_uart_demo" --server "unix:$sock"
