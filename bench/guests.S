/* guests.S: the benchmark's guests, 16-bit real mode, position independent.
 * vcpud and the core load them at 0x1000; QEMU runs bench_spin from the
 * reset vector of a tiny flat BIOS image. */
.macro GUEST name
    .globl bench_guest_\name\()_start
    .globl bench_guest_\name\()_end
    .balign 16
bench_guest_\name\()_start:
.endm
.macro END name
bench_guest_\name\()_end:
.endm

    .section .rodata
    .intel_syntax noprefix
    .code16

/* One port-IO exit per loop: OUT of al to port 0x10. */
GUEST out_loop
1:  out 0x10, al
    jmp 1b
END out_loop

/* Two exits per loop: IN from port 0x11 (answered by the controller on the
 * next run), then OUT of the value to port 0x10. */
GUEST inout_loop
1:  in al, 0x11
    out 0x10, al
    jmp 1b
END inout_loop

/* No exits: something for a debugger to single-step. */
GUEST spin
1:  inc ax
    jmp 1b
END spin

    .section .note.GNU-stack, "", @progbits
