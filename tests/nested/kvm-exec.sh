#!/usr/bin/env bash
# Run a command somewhere /dev/kvm works: directly on this host, or else in the nested QEMU guest.
#
# Usage: tests/nested/kvm-exec.sh [--workdir DIR] [--share DIR]... [--env NAME]...
#                                 [--smp N] [--mem MB] -- CMD [ARGS...]
#
# Direct when this host's /dev/kvm opens and creates a VM (KVM API 12); nested (run-in-nested.sh,
# which gets all the options) when it does not, or when VCPUD_KVM_NESTED=1 asks for it so that
# machines with KVM keep the nested path tested. Prints one line on stderr saying which and why,
# then CMD's output; exits with CMD's status (or run-in-nested.sh's 96-99 for its own failures).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

workdir=$PWD
nested_args=()
while (($#)); do
    case $1 in
        --workdir) workdir=${2:?}; nested_args+=("$1" "$2"); shift 2 ;;
        --share | --env | --smp | --mem) nested_args+=("$1" "${2:?}"); shift 2 ;;
        --) shift; break ;;
        *) echo "usage: $0 [--workdir DIR] [--share DIR]... [--env NAME]... [--smp N] [--mem MB] -- CMD [ARGS...]" >&2; exit 2 ;;
    esac
done
(($#)) || { echo "kvm-exec: no command given" >&2; exit 2; }

# Sets $why. Opening the node is not enough (a node can exist with no module behind it, or be
# unreadable), so ask for the API version and create (and drop) a VM as a real user would.
kvm_usable() {
    if [[ ! -e /dev/kvm ]]; then
        why="/dev/kvm does not exist"
        return 1
    fi
    # Debian's python3, not whatever python3 is first on PATH (pyenv, venvs): it has fcntl.
    if [[ -x /usr/bin/python3 ]]; then
        if why=$(/usr/bin/python3 - 2>&1 <<'PY'
import fcntl, os, sys
try:
    fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
except OSError as e:
    sys.exit("/dev/kvm cannot be opened: " + e.strerror)
try:
    api = fcntl.ioctl(fd, 0xAE00)  # KVM_GET_API_VERSION
except OSError as e:
    sys.exit("KVM_GET_API_VERSION failed: " + e.strerror)
if api != 12:
    sys.exit("/dev/kvm speaks KVM API %d, not 12" % api)
try:
    os.close(fcntl.ioctl(fd, 0xAE01, 0))  # KVM_CREATE_VM
except OSError as e:
    sys.exit("KVM_CREATE_VM failed: " + e.strerror)
print("/dev/kvm works (KVM API 12)")
PY
        ); then
            return 0
        fi
        return 1
    fi
    # No python: at least it must be a character device that opens read-write.
    if [[ -c /dev/kvm ]] && (exec 3<>/dev/kvm) 2>/dev/null; then
        why="/dev/kvm opens read-write (API not checked: no /usr/bin/python3)"
        return 0
    fi
    why="/dev/kvm is not a character device that opens read-write"
    return 1
}

why=
if [[ ${VCPUD_NESTED_GUEST:-0} == 1 ]]; then
    # Already inside the nested guest (VCPUD_KVM_NESTED=1 came along in the environment):
    # its /dev/kvm is the one to use; nesting once more would never finish under TCG.
    mode=direct why="inside the nested guest"
elif [[ ${VCPUD_KVM_NESTED:-0} == 1 ]]; then
    mode=nested why="VCPUD_KVM_NESTED=1"
elif kvm_usable; then
    mode=direct
else
    mode=nested
fi

if [[ $mode == direct ]]; then
    echo "kvm-exec: running directly on this host: $why" >&2
    cd "$workdir"
    exec "$@"
fi
echo "kvm-exec: running in a nested QEMU guest (TCG, slow exits): $why" >&2
exec "$here/run-in-nested.sh" ${nested_args[@]+"${nested_args[@]}"} -- "$@"
