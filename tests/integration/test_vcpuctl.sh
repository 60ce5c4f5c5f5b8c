#!/usr/bin/env bash
# test_vcpuctl.sh: vcpuctl against a real vcpud on a unix socket – the demo
# guest driven one exit per invocation with --json, usage and server errors,
# memory round trips, snapshots between VMs, ELF loading, register and
# vCPU control, posted writes and the exit stream, batch mode. Each case
# starts its own server and ends it with SIGTERM, which must exit 0; every
# line vcpuctl --json printed (stdout and stderr) must parse as JSON.
#
# Usage: test_vcpuctl.sh [--vcpud PATH] [--vcpuctl PATH] [--demo-bin PATH]
#                        BUILD_DIR CASE
# The paths default to BUILD_DIR/server/vcpud, BUILD_DIR/client/vcpuctl and
# BUILD_DIR/examples/demo_guest.bin. CASE is one of the functions named
# case_* below, or "all". Needs /dev/kvm (tests/run-kvm-tests.sh finds one),
# gcc/as/ld for the ELF case and Debian's /usr/bin/python3 for JSON.
set -euo pipefail

usage() {
    echo "usage: $0 [--vcpud PATH] [--vcpuctl PATH] [--demo-bin PATH] BUILD_DIR CASE" >&2
    exit 2
}

vcpud='' vcpuctl='' demo_bin=''
while (($#)) && [[ $1 == --* ]]; do
    case $1 in
        --vcpud) vcpud=${2:?}; shift 2 ;;
        --vcpuctl) vcpuctl=${2:?}; shift 2 ;;
        --demo-bin) demo_bin=${2:?}; shift 2 ;;
        *) usage ;;
    esac
done
(($# == 2)) || usage
build=$1 case_name=$2
vcpud=${vcpud:-$build/server/vcpud}
vcpuctl=${vcpuctl:-$build/client/vcpuctl}
demo_bin=${demo_bin:-$build/examples/demo_guest.bin}
python=/usr/bin/python3 # Debian's: pyenv shims and venvs come and go

work=$(mktemp -d "${TMPDIR:-/tmp}/vcpuctl-test.XXXXXX")
sock=$work/vcpud.sock
server_pid=''

cleanup() {
    # A server left running would also keep the nested guest's output
    # pipe open, so that guest would never power off.
    if [[ -n $server_pid ]]; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE # through the EXIT trap, not around it

fail() {
    echo "FAIL [$case_name]: $*" >&2
    if [[ -s $work/vcpud.log ]]; then
        echo "---- vcpud log ----" >&2
        tail -n 30 "$work/vcpud.log" >&2
    fi
    exit 1
}

start_server() {
    : >"$work/vcpud.log" # there before the first look, whoever runs first
    "$vcpud" --listen "unix:$sock" >/dev/null 2>"$work/vcpud.log" </dev/null &
    server_pid=$!
    # Generous: in the nested guest a start takes seconds.
    for ((i = 0; i < 1200; i++)); do
        grep -q "listening on unix:$sock" "$work/vcpud.log" && return 0
        kill -0 "$server_pid" 2>/dev/null || fail "vcpud exited before listening"
        sleep 0.05
    done
    fail "vcpud did not say 'listening on unix:$sock' within 60 s"
}

stop_server() {
    kill -TERM "$server_pid"
    local rc=0
    wait "$server_pid" || rc=$?
    server_pid=''
    ((rc == 0)) || fail "vcpud exited with status $rc after SIGTERM"
    [[ ! -e $sock ]] || fail "vcpud left its socket $sock behind"
}

# ctl ARGS...: run vcpuctl on the test server; sets $rc, $out, $err (the
# whole stdout and stderr) and never stops the script by itself. Builtins
# only around the one process: in the nested guest every fork counts.
ctl() {
    rc=0
    "$vcpuctl" --server "unix:$sock" "$@" >"$work/out" 2>"$work/err" || rc=$?
    out='' err=''
    IFS= read -r -d '' out <"$work/out" || true
    IFS= read -r -d '' err <"$work/err" || true
}

# jctl ARGS...: ctl --json, keeping every line of stdout and stderr in
# json.log so that check_json_log can parse them all in one go.
jctl() {
    ctl --json "$@"
    printf '%s' "$out" >>"$work/json.log"
    printf '%s' "$err" >>"$work/json.log"
}

# ok / jok ARGS...: the same, and the command must succeed.
ok() {
    ctl "$@"
    ((rc == 0)) || fail "vcpuctl $* exited $rc: $err"
}
jok() {
    jctl "$@"
    ((rc == 0)) || fail "vcpuctl --json $* exited $rc: $err"
}

# expect STATUS PATTERN ARGS...: vcpuctl ARGS exits STATUS and its stderr
# matches the glob PATTERN.
expect() {
    local want=$1 pattern=$2
    shift 2
    ctl "$@"
    ((rc == want)) || fail "vcpuctl $*: exit status $rc, expected $want (stderr: $err)"
    # shellcheck disable=SC2053 # a glob on purpose
    [[ $err == $pattern ]] || fail "vcpuctl $*: stderr '$err' does not match '$pattern'"
}

# json FIELD: a top-level field of the JSON object in $out (strings bare).
json() {
    local re="\"$1\":(\"([^\"]*)\"|([0-9a-z]+))"
    [[ $out =~ $re ]] || fail "no field $1 in '$out'"
    REPLY=${BASH_REMATCH[2]}${BASH_REMATCH[3]}
}

check_json_log() {
    [[ -s $work/json.log ]] || return 0
    "$python" - "$work/json.log" <<'PY' || fail "vcpuctl --json printed a line that is not one JSON object"
import json, sys
for n, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    obj = json.loads(line)
    if not isinstance(obj, dict):
        sys.exit("line %d is not an object: %r" % (n, line))
PY
}

# A VM with 2 MiB of RAM at 0, the demo guest at 0x1000 and vCPU 0 in long
# mode; sets $vm.
demo_vm() {
    jok vm-create
    json vm_id
    vm=$REPLY
    jok mem-add "$vm" 0 0 2M
    jok load "$vm" "$demo_bin" --flat --addr 0x1000
    jok vcpu-create "$vm" 0
    jok mode "$vm" 0 long --entry 0x1000 --stack 0x8000 --tables 0x100000
}

# step ARGS...: one `--json run ARGS` – its own vcpuctl process, or a line
# to the `vcpuctl --json batch` co-process once start_batch made one.
step() {
    if [[ -z ${batch_pid:-} ]]; then
        jctl run "$@"
        return
    fi
    printf 'run %s\n' "$*" >&"${batch[1]}"
    out='' rc='' err=''
    local l
    while IFS= read -r -t 120 l <&"${batch[0]}"; do
        printf '%s\n' "$l" >>"$work/json.log"
        if [[ $l == '{"done":"run",'* ]]; then
            [[ $l =~ \"status\":([0-9]+) ]] && rc=${BASH_REMATCH[1]}
            break
        fi
        out+=$l$'\n'
    done
    [[ -n $rc ]] || fail "the batch co-process did not finish 'run $*'"
}

start_batch() {
    coproc batch { "$vcpuctl" --server "unix:$sock" --json batch 2>>"$work/batch.err"; }
    # shellcheck disable=SC2154 # coproc sets it
    batch_pid=$batch_PID
}

stop_batch() {
    local fd=${batch[1]}
    exec {fd}>&- # end of input: the co-process exits
    wait "$batch_pid" || fail "vcpuctl batch exited $?"
    batch_pid=''
    cat "$work/batch.err" >>"$work/json.log"
}

# ---- the cases ----

# The demo guest, one `run --steps 1` per exit, its UART and timer emulated
# here: it must greet byte by byte, echo our line and halt. In the nested
# guest a vcpuctl process costs about a second (loading gRPC's ~50 shared
# libraries under TCG), too much for ~490 exits: there the first 40 exits
# go that way and the rest as the same commands through `vcpuctl batch`.
case_demo_guest() {
    start_server
    demo_vm
    local per_process=1000000
    [[ ${VCPUD_NESTED_GUEST:-0} == 1 ]] && per_process=40
    local line='vcpuctl says hi' input pos=0 scratch=0 counter=1000 steps=0
    input=$line$'\n'
    local answer=() kind port addr v exit_re='^\{"exit":"([a-z-]+)"'
    : >"$work/exits.log"
    while :; do
        ((steps == per_process)) && start_batch
        step "$vm" 0 --steps 1 ${answer[@]+"${answer[@]}"}
        ((rc == 0)) || fail "run exited $rc: $err"
        printf '%s' "$out" >>"$work/exits.log"
        ((++steps < 3000)) || fail "no hlt after $steps exits"
        [[ $out =~ $exit_re ]] || fail "not an exit: $out"
        kind=${BASH_REMATCH[1]}
        answer=()
        case $kind in
            io-in)
                json port
                port=$REPLY
                if ((port == 0x3fd)); then
                    # THRE|TEMT, and DR while the line lasts.
                    ((pos < ${#input})) && v=0x61 || v=0x60
                elif ((port == 0x3f8)); then
                    ((pos < ${#input})) || fail "the guest reads past the line"
                    printf -v v '%d' "'${input:pos:1}"
                    pos=$((pos + 1))
                else
                    fail "io-in from unexpected port $port"
                fi
                answer=(--io-result "$v")
                ;;
            io-out) ;;
            mmio-read)
                json addr
                addr=$REPLY
                case $addr in
                    0xd0000000) counter=$((counter + 1234)) v=$counter ;;
                    0xd0000008) v=$scratch ;;
                    *) fail "mmio-read of $addr" ;;
                esac
                answer=(--mmio-result "$v")
                ;;
            mmio-write)
                json addr
                [[ $REPLY == 0xd0000008 ]] || fail "mmio-write to $REPLY"
                json data
                scratch=$REPLY
                ;;
            hlt) break ;;
            *) fail "unexpected exit: $out" ;;
        esac
    done
    [[ -z ${batch_pid:-} ]] || stop_batch
    # Every io-in waited for an answer: the note says which flag.
    [[ $(<"$work/json.log") == *'"answer_with":"--io-result"'* ]] ||
        fail "no note naming --io-result"
    "$python" - "$work/exits.log" "$line" <<'PY' || fail "the demo guest's output is wrong"
import json, re, sys
exits = [json.loads(l) for l in open(sys.argv[1])]
outs = [e for e in exits if e["exit"] == "io-out"]
assert all(e["port"] == 0x3f8 and e["size"] == 1 and e["count"] == 1
           and len(e["data"]) == 2 for e in outs), "io-out not byte by byte"
text = bytes.fromhex("".join(e["data"] for e in outs)).decode()
assert text.startswith("Hello from a vcpud guest!"), text[:80]
assert "Type a line: You typed: %s\n" % sys.argv[2] in text, text
# r14 - r13: the two counter reads were 1234 apart, and the guest
# checks its scratch register with that difference.
assert {"exit": "mmio-write", "addr": "0xd0000008", "size": 8,
        "data": "0x4d2"} in exits, "scratch write"
assert re.search(r"the line took 0x[0-9a-f]{16} us of controller time",
                 text), text
assert text.endswith("Halting.\n"), text[-40:]
assert exits[-1] == {"exit": "hlt"}, exits[-1]
assert any(e == {"exit": "mmio-read", "addr": "0xd0000000", "size": 8}
           for e in exits), "no mmio-read of the counter"
print("demo guest: %d exits, %d bytes of UART output" % (len(exits), len(text)))
PY
    check_json_log
    stop_server
}

# Usage errors are status 2 and name what was wrong; nothing reaches the
# server. --help works for the tool and each subcommand.
case_usage_and_help() {
    start_server
    ok --help
    [[ $out == usage:\ vcpuctl* ]] || fail "--help: $out"
    local c help=$out
    for c in vm-create vm-list vm-show vm-destroy mem-add mem-remove \
        mem-write mem-read load vcpu-create vcpu-destroy mode regs set-reg \
        sregs set-sreg run attach io-result mmio-result snapshot restore \
        inject nmi irq-line posted-add posted-remove cancel; do
        [[ $help == *"  $c "* ]] || fail "--help does not list $c"
        ok "$c" --help
        [[ $out == "usage: vcpuctl [OPTIONS] $c"* ]] || fail "$c --help: $out"
    done
    ok run --help
    [[ $out == *--steps\ N* && $out == *--io-result* ]] || fail "run --help: $out"
    ok help load
    [[ $out == *--elf* ]] || fail "help load: $out"

    expect 2 "*no subcommand given*"
    expect 2 "*unknown subcommand 'frobnicate'*" frobnicate
    expect 2 "*bad number '12abc' for VM*" vm-show 12abc
    expect 2 "*bad number '-1' for VCPU*" regs 1 -- -1
    expect 2 "*missing SIZE*" mem-add 1 0 0
    expect 2 "*unexpected argument 'extra'*" vm-show 1 extra
    expect 2 "*unknown option --stepz*" run 1 0 --stepz 3
    expect 2 "*--json is a global option*" run 1 0 --json
    expect 2 "*--steps needs a value*" run 1 0 --steps
    expect 2 "*'99999999999G' is too large*" mem-add 1 0 0 99999999999G
    expect 2 "*bad number '1T' for SIZE*" mem-add 1 0 0 1T
    expect 2 "*--max-vcpus 65 is out of range*" vm-create --max-vcpus 65
    expect 2 "*--until soon: expected hlt or any*" run 1 0 --until soon
    expect 2 "*give one*" run 1 0 --io-result 1 --mmio-result 2
    expect 2 "*unknown mode 'unreal'*" mode 1 0 unreal --entry 0
    expect 2 "*long mode needs --tables*" mode 1 0 long --entry 0x1000
    expect 2 "*no register 'rxx'*" set-reg 1 0 rxx=1
    expect 2 "*'rax' is not NAME=VALUE*" set-reg 1 0 rax
    expect 2 "*cs.dpl=4 does not fit*" set-sreg 1 0 cs.dpl=4
    expect 2 "*VECTOR 256 is out of range*" inject 1 0 256
    expect 2 "*LEVEL 2 is out of range*" irq-line 1 4 2
    expect 2 "*--flat needs --addr*" load 1 "$demo_bin" --flat
    expect 2 "*is no ELF file*" load 1 "$demo_bin"
    expect 2 "*--deadline-ms must be at least 1*" --deadline-ms 0 vm-list
    expect 2 "*the token must be printable*" --token "a b" vm-list

    # With --json the error is one JSON object on stderr, stdout empty.
    jctl vm-show nine
    ((rc == 2)) || fail "--json usage error: status $rc"
    [[ -z $out && $err == '{"error":"usage","command":"vm-show",'* ]] ||
        fail "--json usage error: '$out' '$err'"

    # None of that created anything.
    jok vm-list
    [[ $out == '{"vms":[]}'$'\n' ]] || fail "vm-list after usage errors: $out"
    check_json_log
    stop_server
}

# Server errors are status 1 with the status name and the server's message.
case_server_errors() {
    start_server
    expect 1 "*GetVm: NOT_FOUND: *" vm-show 4242
    jctl vm-show 4242
    ((rc == 1)) || fail "--json vm-show 4242: status $rc"
    [[ $err == *'"error":"rpc"'* && $err == *'"status":"NOT_FOUND"'* &&
        $err == *'"errno":"ENOENT"'* ]] || fail "--json NOT_FOUND: $err"
    expect 1 "*CreateVcpu: NOT_FOUND*" vcpu-create 4242 0
    expect 1 "*DestroyVm: NOT_FOUND*" vm-destroy 4242

    jok vm-create
    json vm_id
    local vm=$REPLY
    jok mem-add "$vm" 0 0 1M
    expect 1 "*AddMemoryRegion: ALREADY_EXISTS*" mem-add "$vm" 1 0x80000 1M
    expect 1 "*AddMemoryRegion: INVALID_ARGUMENT*" mem-add "$vm" 1 0x100001 4K
    expect 1 "*RemoveMemoryRegion: NOT_FOUND*" mem-remove "$vm" 7
    jok vcpu-create "$vm" 0
    expect 1 "*CreateVcpu: *" vcpu-create "$vm" 0
    expect 1 "*SetIrqLine: FAILED_PRECONDITION*" irq-line "$vm" 4 1
    expect 1 "*SetIoResult: FAILED_PRECONDITION*" io-result "$vm" 0 1
    expect 1 "*SetMmioResult: FAILED_PRECONDITION*" mmio-result "$vm" 0 1
    expect 1 "*InjectInterrupt: INVALID_ARGUMENT*" inject "$vm" 0 8
    expect 1 "*ReadMemory: *" mem-read "$vm" 0xff000 8K "$work/x"
    [[ ! -e $work/x ]] || fail "a failed mem-read left its file"
    expect 1 "*cannot open $work/none*" mem-write "$vm" 0 "$work/none"

    # No server there: UNAVAILABLE, and where it looked.
    "$vcpuctl" --server "unix:$work/nothing.sock" vm-list 2>"$work/err" && fail "vm-list without a server succeeded"
    [[ $(<"$work/err") == *"UNAVAILABLE"*"is vcpud listening on unix:$work/nothing.sock"* ]] ||
        fail "no server: $(<"$work/err")"
    # The server named in the environment is the default.
    VCPUD_SERVER=unix:$sock "$vcpuctl" vm-list >"$work/out" || fail "VCPUD_SERVER was not used"
    jok vm-destroy "$vm"
    check_json_log
    stop_server
}

# mem-write/mem-read of a file larger than one 32 KiB chunk and than
# vcpuctl's 1 MiB pieces, across two adjacent regions; stdin and stdout.
case_memory_round_trip() {
    start_server
    jok vm-create
    json vm_id
    local vm=$REPLY
    jok mem-add "$vm" 0 0 1M
    jok mem-add "$vm" 1 1M 1M --read-only
    jok vm-show "$vm"
    [[ $out == *'"memory_bytes":"0x200000"'* && $out == *'"read_only":true'* ]] ||
        fail "vm-show: $out"
    head -c 1200007 /dev/urandom >"$work/in.bin"
    jok mem-write "$vm" 0x40000 "$work/in.bin"
    [[ $out == '{"guest_phys_addr":"0x40000","length":"0x124f87"}'$'\n' ]] ||
        fail "mem-write: $out"
    jok mem-read "$vm" 0x40000 1200007 "$work/back.bin"
    cmp "$work/in.bin" "$work/back.bin" || fail "mem-read gave other bytes than mem-write wrote"
    ok mem-read "$vm" 0x40000 1200007 -
    cmp "$work/in.bin" "$work/out" || fail "mem-read to stdout differs"
    # Just over one chunk, from stdin, and back as JSON hex.
    head -c 40000 /dev/urandom >"$work/small.bin"
    "$vcpuctl" --server "unix:$sock" mem-write "$vm" 0x1234 - <"$work/small.bin" ||
        fail "mem-write from stdin"
    jok mem-read "$vm" 0x1234 40000 -
    "$python" - "$work/out" "$work/small.bin" <<'PY' || fail "mem-read --json data differs"
import json, sys
obj = json.loads(open(sys.argv[1]).read())
assert obj["length"] == "0x9c40", obj["length"]
assert bytes.fromhex(obj["data"]) == open(sys.argv[2], "rb").read()
PY
    expect 1 "*WriteMemory: INVALID_ARGUMENT*" mem-write "$vm" 0x1ff000 "$work/small.bin"
    jok mem-remove "$vm" 1
    expect 1 "*ReadMemory: *" mem-read "$vm" 0x100000 16 -
    jok vm-destroy "$vm"
    jok vm-list
    [[ $out == '{"vms":[]}'$'\n' ]] || fail "vm-list after destroy: $out"
    check_json_log
    stop_server
}

# A snapshot taken while an io-in waits, restored into another VM's vCPU
# with a copy of the memory: both guests go on identically.
case_snapshot_restore() {
    start_server
    demo_vm
    local a=$vm
    jok run "$a" 0 --steps 5                  # LSR
    [[ $out == '{"exit":"io-in","port":1021,"size":1,"count":1}'$'\n' ]] || fail "first exit: $out"
    jok run "$a" 0 --io-result 0x60 --steps 1 # 'H'
    [[ $out == *'"data":"48"'* ]] || fail "second exit: $out"
    jok run "$a" 0                            # LSR again, left waiting
    jok snapshot "$a" 0 "$work/cpu.snap"
    [[ -s $work/cpu.snap ]] || fail "no snapshot file"
    ok mem-read "$a" 0 2M "$work/ram.bin"

    demo_vm
    local b=$vm
    jok mem-write "$b" 0 "$work/ram.bin"
    jok restore "$b" 0 "$work/cpu.snap"
    jok run "$a" 0 --io-result 0x60
    local from_a=$out
    jok run "$b" 0 --io-result 0x60
    [[ $out == "$from_a" && $out == *'"data":"65"'* ]] ||
        fail "after restore: '$out', the original gave '$from_a'"
    jok regs "$a" 0
    local regs_a=$out
    jok regs "$b" 0
    [[ $out == "$regs_a" ]] || fail "registers differ after restore: $out vs $regs_a"

    # The snapshot as JSON hex is the file's bytes.
    jok snapshot "$b" 0 -
    "$python" -c 'import json,sys; o=json.loads(sys.argv[1]); d=bytes.fromhex(o["data"]); assert d[:8]==b"VCPUDSNP" and int(o["length"],16)==len(d)' "$out" ||
        fail "snapshot --json to stdout"
    # A damaged snapshot is refused whole.
    head -c 100 "$work/cpu.snap" >"$work/bad.snap"
    expect 1 "*Restore: INVALID_ARGUMENT*" restore "$b" 0 "$work/bad.snap"
    : >"$work/empty.snap"
    expect 1 "*is empty*" restore "$b" 0 "$work/empty.snap"
    check_json_log
    stop_server
}

# load --elf of small ELF64 and ELF32 guests built here; malformed ELFs
# are refused with status 1 and nothing is written.
case_elf_load() {
    command -v gcc >/dev/null || fail "gcc is needed to build the test ELF"
    cat >"$work/g64.S" <<'EOF'
    .globl _start
    .text
    .code64
_start:
    mov $0x3f8, %dx
    lea msg(%rip), %rsi
1:  movb (%rsi), %al
    test %al, %al
    jz 2f
    out %al, %dx
    inc %rsi
    jmp 1b
2:  mov counter(%rip), %rax
    hlt
    .data
msg: .asciz "ELF!"
    .bss
counter: .quad 0
    .space 64
    .section .note.GNU-stack, "", @progbits
EOF
    gcc -nostdlib -static -Wl,-Ttext=0x1000 -Wl,--build-id=none \
        -o "$work/g64.elf" "$work/g64.S" || fail "cannot build the ELF64 guest"
    cat >"$work/g32.S" <<'EOF'
    .globl _start
    .text
    .code32
_start:
    mov $0x3f8, %dx
    mov $0x32, %al
    out %al, %dx
    hlt
    .section .note.GNU-stack, "", @progbits
EOF
    as --32 -o "$work/g32.o" "$work/g32.S" || fail "cannot assemble the ELF32 guest"
    ld -m elf_i386 -Ttext=0x3000 --build-id=none -o "$work/g32.elf" "$work/g32.o" ||
        fail "cannot link the ELF32 guest"

    start_server
    jok vm-create
    json vm_id
    local vm=$REPLY
    jok mem-add "$vm" 0 0 2M
    # Garbage where .bss goes: the loader must zero it.
    head -c 4096 /dev/zero | tr '\0' '\377' >"$work/ff.bin"
    jok mem-write "$vm" 0x2000 "$work/ff.bin"
    jok load "$vm" "$work/g64.elf" --elf
    json entry
    local entry=$REPLY
    local want
    want=$(nm "$work/g64.elf" | sed -n 's/^0*\([0-9a-f]*\) T _start$/0x\1/p')
    [[ $entry == "$want" && $entry == 0x1000 ]] || fail "entry $entry, nm says $want"
    [[ $out == *'"class":64'* ]] || fail "load --elf: $out"
    # .data then zeros to the end of .bss, 0xff after.
    jok mem-read "$vm" 0x2000 0x60 -
    json data
    [[ $REPLY == 454c462100* ]] || fail ".data: $REPLY"
    "$python" -c '
import sys
d = bytes.fromhex(sys.argv[1])
end = d.rfind(b"\0") + 1
assert d[:5] == b"ELF!\0" and set(d[5:end]) == {0} and end >= 0x10, d
assert set(d[end:]) <= {0xff}, d' "$REPLY" || fail "the ELF's bss was not zeroed"
    jok vcpu-create "$vm" 0
    jok mode "$vm" 0 long --entry "$entry" --stack 0x8000 --tables 0x100000
    ok run "$vm" 0 --until hlt
    [[ $out == 'io-out port=0x3f8 size=1 count=1 data=45 ("E")'$'\n'*'io-out port=0x3f8 size=1 count=1 data=21 ("!")'$'\n''hlt'$'\n' ]] ||
        fail "run of the ELF guest: $out"

    # ELF32 into protected mode; auto-detected without --elf.
    jok load "$vm" "$work/g32.elf"
    [[ $out == *'"class":32'* && $out == *'"entry":"0x3000"'* ]] || fail "ELF32: $out"
    jok mode "$vm" 0 protected --entry 0x3000 --stack 0x8000 --tables 0x100000
    jok run "$vm" 0 --until hlt
    [[ $out == '{"exit":"io-out","port":1016,"size":1,"count":1,"data":"32"}'$'\n''{"exit":"hlt"}'$'\n' ]] ||
        fail "ELF32 guest: $out"

    # Malformed: cut inside the program headers, inside a segment, not an
    # ELF, a segment beyond RAM. Each is status 1 and writes nothing.
    jok mem-write "$vm" 0x1000 "$work/ff.bin"
    head -c 100 "$work/g64.elf" >"$work/cut1.elf"
    expect 1 "*bad ELF: truncated*program header table*" load "$vm" "$work/cut1.elf" --elf
    head -c 4200 "$work/g64.elf" >"$work/cut2.elf"
    expect 1 "*bad ELF: truncated*segment*" load "$vm" "$work/cut2.elf"
    head -c 40 "$work/g64.elf" >"$work/cut3.elf"
    expect 1 "*bad ELF: truncated*header*" load "$vm" "$work/cut3.elf"
    expect 1 "*bad ELF: not an ELF file*" load "$vm" "$work/ff.bin" --elf
    gcc -nostdlib -static -Wl,-Ttext=0x400000 -Wl,--build-id=none \
        -o "$work/high.elf" "$work/g64.S" || fail "cannot build the high ELF"
    expect 1 "*is not all guest RAM*" load "$vm" "$work/high.elf"
    ok mem-read "$vm" 0x1000 4096 "$work/after.bin"
    cmp "$work/ff.bin" "$work/after.bin" || fail "a refused ELF wrote guest memory"
    check_json_log
    stop_server
}

# Registers, modes, time limits, cancel, interrupts, results by their own
# subcommands, and taking things down.
case_vcpu_control() {
    start_server
    demo_vm
    local d=$vm
    jok set-reg "$d" 0 rax=0x1234 rbx=42 r15=0xffffffffffffffff
    jok regs "$d" 0
    [[ $out == *'"rax":"0x1234","rbx":"0x2a"'* && $out == *'"r15":"0xffffffffffffffff"'* &&
        $out == *'"rip":"0x1000"'* && $out == *'"rsp":"0x8000"'* ]] || fail "regs: $out"
    ok regs "$d" 0
    [[ $out == *'rip    0x0000000000001000'* ]] || fail "regs (text): $out"
    jok set-sreg "$d" 0 cr2=0xdead
    jok sregs "$d" 0
    [[ $out == *'"cr2":"0xdead"'* && $out == *'"cs":{"base":"0x0"'* && $out == *'"l":true'* ]] ||
        fail "sregs: $out"
    # Results by their own RPCs instead of riding on the next run.
    jok run "$d" 0
    jok io-result "$d" 0 0x60
    [[ $out == '{"ok":true}'$'\n' ]] || fail "io-result: $out"
    ok run "$d" 0
    [[ $out == 'io-out port=0x3f8 size=1 count=1 data=48 ("H")'$'\n' ]] || fail "run after io-result: $out"
    jok vcpu-destroy "$d" 0
    expect 1 "*GetRegs: NOT_FOUND*" regs "$d" 0

    # A guest that spins: time limits and cancel.
    printf '\353\376' >"$work/spin.bin" # jmp .
    jok vm-create --max-vcpus 2
    json vm_id
    local s=$REPLY
    jok mem-add "$s" 0 0 64K
    jok load "$s" "$work/spin.bin" --addr 0x1000
    jok vcpu-create "$s" 0
    jok mode "$s" 0 real --entry 0x1000
    ok run "$s" 0 --timeout-ms 300
    [[ $out == 'canceled reason=timeout'$'\n' ]] || fail "run --timeout-ms: $out"
    # A cancel with nothing running stops the next run at once.
    jok cancel "$s" 0
    jok run "$s" 0 --until hlt
    [[ $out == '{"exit":"canceled","reason":"requested"}'$'\n' ]] || fail "run after cancel: $out"
    # And one from another process while it runs.
    "$vcpuctl" --server "unix:$sock" --json run "$s" 0 --until hlt >"$work/bg.out" 2>&1 &
    local bg=$!
    sleep 1
    jok cancel "$s" 0
    wait "$bg" || fail "the cancelled run exited $?"
    [[ $(<"$work/bg.out") == '{"exit":"canceled","reason":"requested"}' ]] ||
        fail "cancelled run: $(<"$work/bg.out")"
    # Without an in-kernel irqchip the vector waits for an interrupt window.
    jok inject "$s" 0 32
    jok nmi "$s" 0
    jok vm-create --irqchip
    json vm_id
    local i=$REPLY
    jok irq-line "$i" 4 1
    jok irq-line "$i" 4 0
    jok vm-show "$i"
    [[ $out == *'"irqchip":true'* ]] || fail "vm-show of the irqchip VM: $out"
    jok vm-destroy "$i"
    jok mode "$s" 0 protected --entry 0x1000 --tables 0x8000
    jok vm-list
    [[ $out == *"{\"vm_id\":$s,\"max_vcpus\":2,\"irqchip\":false,\"memory_bytes\":\"0x10000\",\"vcpu_count\":1,\"region_count\":1}"* ]] ||
        fail "vm-list: $out"
    ok vm-list
    [[ $out == *VM*VCPUS*MAX*IRQCHIP*MEMORY*REGIONS* && $out == *64K* ]] || fail "vm-list (text): $out"
    jok vm-destroy "$s"
    jok vm-destroy "$d"
    check_json_log
    stop_server
}

# Posted writes ride on the next exit; the exit stream runs many exits in
# one call and can bring the registers along.
case_posted_and_attach() {
    start_server
    demo_vm
    jok posted-add "$vm" pio 0x3f8 1
    expect 1 "*AddPostedRange: ALREADY_EXISTS*" posted-add "$vm" pio 0x3f8 1
    expect 1 "*AddPostedRange: INVALID_ARGUMENT*" posted-add "$vm" mmio 0x1000 4K
    expect 2 "*'port': expected pio or mmio*" posted-add "$vm" port 0x3f8 1
    jok run "$vm" 0
    [[ $out == '{"exit":"io-in","port":1021,"size":1,"count":1}'$'\n' ]] || fail "first exit: $out"
    # The 'H' no longer stops the guest: the next LSR read carries it.
    jok run "$vm" 0 --io-result 0x60
    [[ $out == '{"exit":"io-in","port":1021,"size":1,"count":1,"posted":[{"pio":true,"addr":"0x3f8","size":1,"data":"0x48"}]}'$'\n' ]] ||
        fail "posted write: $out"
    ok run "$vm" 0 --io-result 0x60
    [[ $out == 'posted-write port=0x3f8 size=1 data=0x65'$'\n''io-in port=0x3fd size=1 count=1'$'\n' ]] ||
        fail "posted write (text): $out"
    jok posted-remove "$vm" pio 0x3f8 1
    expect 1 "*RemovePostedRange: NOT_FOUND*" posted-remove "$vm" pio 0x3f8 1

    # Over the stream: the answer, then exits with registers up to an io-in.
    jok attach "$vm" 0 --io-result 0x60 --steps 10 --regs
    "$python" - "$out" <<'PY' || fail "attach --regs: $out"
import json, sys
lines = [json.loads(l) for l in sys.argv[1].splitlines()]
assert [l["exit"] for l in lines] == ["io-out", "io-in"], lines
assert lines[0]["data"] == "6c" and lines[0]["regs"]["rax"].endswith("6c"), lines[0]
assert all(int(l["regs"]["rip"], 16) > 0x1000 for l in lines), lines
PY
    ok attach "$vm" 0 --io-result 0x60 --sregs
    [[ $out == 'io-out port=0x3f8 size=1 count=1 data=6c ("l")'$'\n''cs   base=0x0000000000000000 '* &&
        $out == *'efer      0x0000000000000500'* ]] || fail "attach --sregs: $out"
    expect 1 "*Attach: NOT_FOUND*" attach "$vm" 7

    # A spinning guest over the stream: its time limit.
    printf '\353\376' >"$work/spin.bin"
    jok vm-create
    json vm_id
    local s=$REPLY
    jok mem-add "$s" 0 0 64K
    jok load "$s" "$work/spin.bin" --addr 0x1000
    jok vcpu-create "$s" 0
    jok mode "$s" 0 real --entry 0x1000
    jok attach "$s" 0 --timeout-ms 200 --until hlt
    [[ $out == '{"exit":"canceled","reason":"timeout"}'$'\n' ]] || fail "attach --timeout-ms: $out"
    check_json_log
    stop_server
}

# `vcpuctl batch`: many subcommands over one connection, each closed by a
# {"done":...} line; a failing line does not stop the rest.
case_batch() {
    start_server
    cat >"$work/script" <<EOF
vm-create
mem-add 1 0 0 2M
load 1 '$demo_bin' --flat --addr 0x1000
vcpu-create 1 0
mode 1 0 long --entry 0x1000 --stack 0x8000 --tables 0x100000

# the demo guest's first two exits
run 1 0
run 1 0 --io-result 0x60
vm-show nine
mem-write 1 0 -
vm-destroy 1
EOF
    ctl --json batch <"$work/script"
    ((rc == 2)) || fail "batch exited $rc, expected the last failure's 2 (stderr: $err)"
    printf '%s%s' "$out" "$err" >>"$work/json.log"
    "$python" - "$out" "$err" <<'PY' || fail "batch output: $out / $err"
import json, sys
out = [json.loads(l) for l in sys.argv[1].splitlines()]
err = [json.loads(l) for l in sys.argv[2].splitlines()]
done = [(o["done"], o["line"], o["status"]) for o in out if "done" in o]
assert done == [("vm-create", 1, 0), ("mem-add", 2, 0), ("load", 3, 0),
                ("vcpu-create", 4, 0), ("mode", 5, 0), ("run", 8, 0),
                ("run", 9, 0), ("vm-show", 10, 2), ("mem-write", 11, 2),
                ("vm-destroy", 12, 0)], done
assert out[0] == {"vm_id": 1}, out[0]
exits = [o for o in out if "exit" in o]
assert exits == [{"exit": "io-in", "port": 1021, "size": 1, "count": 1},
                 {"exit": "io-out", "port": 1016, "size": 1, "count": 1,
                  "data": "48"}], exits
assert [e["error"] for e in err if "error" in e] == ["usage", "usage"], err
PY
    expect 2 "*batch inside batch*" batch <<<"batch"
    check_json_log
    stop_server
}

cases=(demo_guest usage_and_help server_errors memory_round_trip
    snapshot_restore elf_load vcpu_control posted_and_attach batch)
if [[ $case_name == all ]]; then
    for c in "${cases[@]}"; do
        case_name=$c
        "case_$c"
        rm -f "$work/json.log"
        echo "ok $c"
    done
elif [[ " ${cases[*]} " == *" $case_name "* ]]; then
    "case_$case_name"
    echo "ok $case_name"
else
    echo "unknown case '$case_name' (${cases[*]} or all)" >&2
    exit 2
fi
