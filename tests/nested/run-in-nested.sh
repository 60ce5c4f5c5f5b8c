#!/usr/bin/env bash
# Run a host command inside a throwaway QEMU (TCG) guest that has a working /dev/kvm.
#
# Usage: tests/nested/run-in-nested.sh [--smp N] [--mem MB] [--workdir DIR] [--share DIR]...
#                                      [--env NAME]... -- CMD [ARGS...]
#
# The guest boots Debian's kernel (see fetch-kernel.sh) with a busybox initramfs, loads kvm and
# kvm-amd (`-cpu max` under TCG emulates AMD SVM), and runs CMD in a chroot of the host's root
# filesystem (9p, read-only), so host-built binaries run unchanged. Writable in there:
#   --workdir DIR  (default: current dir) shared read-write at its own path; CMD starts there.
#   --share DIR    further read-write shares at their own paths (e.g. a build dir elsewhere).
#   /tmp, /run     empty tmpfs.
# CMD's stdout+stderr arrive on this script's stdout; its exit status becomes ours, except:
#   96  host-side setup failed (qemu, busybox-static or the kernel missing)
#   97  /dev/kvm did not appear in the guest (module load failed)
#   98  the guest ended without reporting a status (crash, panic)
#   99  timeout (VCPUD_NESTED_TIMEOUT seconds, default 1500)
# Environment passed to CMD: PATH, HOME, LANG, LC_*, TZ, CI and VCPUD_*, *SAN_OPTIONS, CTEST_*,
# GTEST_*, plus names given with --env. VCPUD_NESTED_GUEST=1 is set in there.
# VCPUD_NESTED_DEBUG=1 boots without `quiet` and prints the guest's kernel log to stderr;
# VCPUD_NESTED_MONITOR=SOCKET puts the QEMU monitor on that unix socket.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prog=run-in-nested

smp=2
mem=2048
workdir=$PWD
shares=()
env_names=()

usage() {
    echo "usage: $0 [--smp N] [--mem MB] [--workdir DIR] [--share DIR]... [--env NAME]... -- CMD [ARGS...]" >&2
    exit 2
}
fail() { # fail CODE MESSAGE
    echo "$prog: $2" >&2
    exit "$1"
}

while (($#)); do
    case $1 in
        --smp) smp=${2:?}; shift 2 ;;
        --mem) mem=${2:?}; shift 2 ;;
        --workdir) workdir=${2:?}; shift 2 ;;
        --share) shares+=("${2:?}"); shift 2 ;;
        --env) env_names+=("${2:?}"); shift 2 ;;
        --) shift; break ;;
        *) usage ;;
    esac
done
(($#)) || usage
[[ $smp =~ ^[1-9][0-9]*$ && $mem =~ ^[1-9][0-9]*$ ]] || usage
timeout_s=${VCPUD_NESTED_TIMEOUT:-1500}
debug=${VCPUD_NESTED_DEBUG:-0}

command -v qemu-system-x86_64 >/dev/null ||
    fail 96 "qemu-system-x86_64 not found (install the qemu-system-x86 package)"
# The initramfs has no libc, so busybox must be the static build.
busybox=
for b in /bin/busybox /usr/bin/busybox; do
    if [[ -x $b ]] && ! ldd "$b" >/dev/null 2>&1; then busybox=$b; break; fi
done
[[ -n $busybox ]] || fail 96 "no static busybox found (install the busybox-static package)"

cache=${VCPUD_CACHE_DIR:-/var/cache/vcpud}/nested
"$here/fetch-kernel.sh" "$cache" || fail 96 "could not obtain the guest kernel (tests/nested/fetch-kernel.sh)"
kdir=$cache/$(<"$cache/current")

workdir=$(cd "$workdir" && pwd -P) || fail 96 "workdir not found"

# Each writable dir is mounted at its own absolute path over the read-only root; one nested
# inside another would be shadowed or duplicate, so keep only the outermost ones.
all=("$workdir")
for s in ${shares[@]+"${shares[@]}"}; do
    p=$(cd "$s" && pwd -P) || fail 96 "share $s not found"
    all+=("$p")
done
mapfile -t all < <(printf '%s\n' "${all[@]}" | sort -u)
rw=()
for s in "${all[@]}"; do
    case $s in
        / | /dev | /dev/* | /proc | /proc/* | /sys | /sys/*) fail 96 "cannot share $s read-write" ;;
    esac
    nested=0
    for o in "${all[@]}"; do
        [[ $s != "$o" && $s == "$o"/* ]] && nested=1
    done
    ((nested)) || rw+=("$s")
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vcpud-nested.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
ctl=$tmp/ctl
mkdir -p "$ctl"

# Single-quote for /bin/sh: the guest runs the host's dash, which has no $'..' quoting.
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

{
    echo "export VCPUD_NESTED_GUEST=1"
    while IFS= read -r name; do
        case $name in
            PATH | HOME | LANG | LC_* | TZ | CI | VCPUD_* | *SAN_OPTIONS | CTEST_* | GTEST_*) ;;
            *) [[ " ${env_names[*]-} " == *" $name "* ]] || continue ;;
        esac
        [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
        echo "export $name=$(shq "${!name}")"
    done < <(compgen -e)
} >"$ctl/env.sh"

{
    echo ". /run/vcpud-nested/env.sh"
    echo "cd $(shq "$workdir") || exit 125"
    printf '%s' "exec"
    for a in "$@"; do printf ' %s' "$(shq "$a")"; done
    echo
} >"$ctl/cmd.sh"

printf '%s\n' "${rw[@]}" >"$ctl/shares"

# --- initramfs: static busybox, the modules, and /init ---
root=$tmp/initramfs
mkdir -p "$root"/{bin,dev,proc,sys,tmp,host,ctl,modules}
cp "$busybox" "$root/bin/busybox"
cp "$kdir"/modules/*.ko "$root/modules/"
cp "$kdir/modules.load" "$root/modules.load"
cat >"$root/init" <<'INIT'
#!/bin/busybox sh
# PID 1 of the nested guest: set up KVM and the host chroot, run the command, report, power off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Early diagnostics go to the kernel console (ttyS0), which the host keeps in a log file.
log() { echo "nested-init: $*" >/dev/console; }
step() { :; }
case $(cat /proc/cmdline) in *vcpud.debug=1*) step() { log "$*"; } ;; esac
finish() { sync; poweroff -f; }

step "loading modules"
while read -r m; do
    insmod "/modules/$m.ko" 2>/tmp/insmod.err || log "insmod $m failed: $(cat /tmp/insmod.err)"
done </modules.load

nine="trans=virtio,version=9p2000.L,msize=512000"
mount -t 9p -o "$nine" ctl /ctl || { log "cannot mount the control share"; finish; }

step "control share mounted"
if [ ! -c /dev/kvm ]; then
    echo nokvm >/ctl/status
    finish
fi

# Guest's own special filesystems under the chroot: device nodes read through 9p would carry
# the host's major/minor numbers, which only match here by coincidence.
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t 9p -o "$nine,ro,cache=loose" hostroot /host || { log "cannot mount the host root"; finish; }
mount -o rbind /dev /host/dev
mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
mount -t tmpfs -o mode=1777 tmpfs /host/tmp
mount -t tmpfs -o mode=755 tmpfs /host/run
i=0
while read -r dir; do
    mkdir -p "/host$dir" && mount -t 9p -o "$nine" "share$i" "/host$dir" ||
        { log "cannot mount share $dir"; finish; }
    i=$((i + 1))
done </ctl/shares
mkdir -p /host/run/vcpud-nested
mount -o bind /ctl /host/run/vcpud-nested
step "mounts done"
ip link set lo up
hostname vcpud-nested

# ttyS1 carries only the command's output; raw so bytes arrive unchanged (no \r\n). The
# command writes into a pipe, not the tty, so it behaves as on the host under CI (no colours,
# no terminal-only output, same buffering).
stty -F /dev/ttyS1 115200 raw -echo
step "running the command"
{
    chroot /host /bin/sh /run/vcpud-nested/cmd.sh </dev/null 2>&1
    echo $? >/ctl/status
} | cat >/dev/ttyS1
step "command exited"
finish
INIT
chmod +x "$root/init"
(cd "$root" && find . | "$busybox" cpio -o -H newc -R 0:0 2>/dev/null) >"$tmp/initramfs.cpio"

# --- boot ---
append="console=ttyS0 panic=-1 rdinit=/init mitigations=off"
if [[ $debug == 1 ]]; then append+=" loglevel=7 vcpud.debug=1 nokaslr"; else append+=" quiet"; fi

# Multi-threaded TCG live-locks now and then when the guest kernel patches its own text (static
# keys flipped by KVM at every vCPU create/destroy): one vCPU keeps hitting a stale int3 in
# __schedule while the other waits, measured ~1 hang per 300 VM lifetimes. One TCG thread
# round-robining the vCPUs sees cross-modified code reliably.
tcg_thread=${VCPUD_NESTED_TCG_THREAD:-single}
qopt() { printf '%s' "${1//,/,,}"; } # QEMU option values escape ',' by doubling it
# VCPUD_NESTED_MONITOR=SOCKET exposes the QEMU monitor there, to inspect a hung guest.
monitor=none
[[ -n ${VCPUD_NESTED_MONITOR:-} ]] && monitor="unix:$VCPUD_NESTED_MONITOR,server=on,wait=off"
qemu=(qemu-system-x86_64 -nodefaults -no-user-config -display none -monitor "$monitor"
    -machine pc -accel "tcg,thread=$tcg_thread" -cpu max -smp "$smp" -m "$mem" -no-reboot
    -kernel "$kdir/vmlinuz" -initrd "$tmp/initramfs.cpio" -append "$append"
    -serial "file:$tmp/console.log" -serial stdio
    -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
    -virtfs "local,path=$(qopt "$ctl"),mount_tag=ctl,security_model=none,multidevs=remap")
i=0
for dir in "${rw[@]}"; do
    qemu+=(-virtfs "local,path=$(qopt "$dir"),mount_tag=share$i,security_model=none,multidevs=remap")
    i=$((i + 1))
done

qrc=0
# --foreground keeps QEMU in our process group, so a Ctrl-C or a CI kill reaches it too.
timeout --foreground -k 10 "$timeout_s" "${qemu[@]}" </dev/null || qrc=$?

show_console() {
    [[ -s $tmp/console.log ]] || return 0
    echo "$prog: guest kernel log:" >&2
    # The log is the raw serial stream: drop \r and escape sequences so it reads cleanly.
    sed -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1b[()c][0-9A-Za-z]\?//g' \
        "$tmp/console.log" | tail -n "${1:-40}" | sed 's/^/  | /' >&2
}
[[ $debug == 1 ]] && show_console 100000

status=$(cat "$ctl/status" 2>/dev/null || true)
case $status in
    nokvm)
        show_console
        fail 97 "/dev/kvm did not appear in the nested guest (kvm/kvm-amd modules failed to load)"
        ;;
    [0-9] | [0-9][0-9] | [0-9][0-9][0-9])
        exit "$status"
        ;;
esac
if ((qrc == 124 || qrc == 137)); then
    fail 99 "timed out after ${timeout_s}s (VCPUD_NESTED_TIMEOUT)"
fi
show_console
fail 98 "the nested guest ended without reporting a status (qemu exit $qrc)"
