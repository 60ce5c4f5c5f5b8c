/* guests.S: the small guests the KVM tests run. Each is copied to guest
 * physical address 0x1000 and started there; A(name, label) is a label's
 * guest address. Loops stay short: some machines run guest code at about
 * a microsecond per instruction. */
#define LOAD 0x1000
#define A(name, l) ((l) - guest_##name##_start + LOAD)

.macro GUEST name
    .globl guest_\name\()_start
    .globl guest_\name\()_end
    .balign 16
guest_\name\()_start:
.endm
.macro END name
guest_\name\()_end:
.endm

    .section .rodata
    .intel_syntax noprefix

/* ---------------------------------------------------------------- 16-bit */
    .code16

/* OUT of each size, then HLT. */
GUEST io_out
    mov al, 0x11
    out 0x10, al
    mov ax, 0x2233
    out 0x12, ax
    mov eax, 0x44556677
    out 0x14, eax
    hlt
END io_out

/* IN of each size into bl, cx, edx. */
GUEST io_in
    in al, 0x20
    mov bl, al
    in ax, 0x22
    mov cx, ax
    in eax, 0x24
    mov edx, eax
    hlt
END io_in

/* rep outsb of a string, then rep insb of 4 bytes into 0x3000. */
GUEST string_io
    cld
    mov si, A(string_io, 1f)
    mov cx, 5
    mov dx, 0x30
    rep outsb
    mov di, 0x3000
    mov cx, 4
    mov dx, 0x31
    rep insb
    hlt
1:  .ascii "hello"
END string_io

GUEST hlt
    hlt
END hlt

/* Spins until cancelled. */
GUEST spin
1:  jmp 1b
END spin

/* Reads port 0x20 into al, stores it at 0x3000, echoes it to port 0x21. */
GUEST in_echo
    in al, 0x20
    mov [0x3000], al
    out 0x21, al
    hlt
END in_echo

/* Installs a handler for vector 0x40 and for NMI (2) in the real-mode IVT,
 * enables interrupts and halts in a loop. Handlers write the vector to port
 * 0x41 and return. */
GUEST irq
    xor ax, ax
    mov ds, ax
    mov word ptr [0x40 * 4], A(irq, 1f)
    mov word ptr [0x40 * 4 + 2], 0
    mov word ptr [2 * 4], A(irq, 2f)
    mov word ptr [2 * 4 + 2], 0
    mov sp, 0x8000
    out 0x40, al            /* ready */
    sti
3:  hlt
    jmp 3b
1:  mov al, 0x40
    out 0x41, al
    iret
2:  mov al, 0x02
    out 0x41, al
    iret
END irq

/* Like irq, but spins with interrupts on instead of halting. */
GUEST irq_spin
    xor ax, ax
    mov ds, ax
    mov word ptr [0x40 * 4], A(irq_spin, 1f)
    mov word ptr [0x40 * 4 + 2], 0
    mov sp, 0x8000
    sti
    out 0x40, al            /* ready */
3:  jmp 3b
1:  mov al, 0x40
    out 0x41, al
    iret
END irq_spin

/* Waits until the byte at 0x3000 becomes nonzero, reports it on port 0x10
 * and halts: a guest that runs until the controller lets it finish. */
GUEST flag_wait
1:  mov al, [0x3000]
    test al, al
    jz 1b
    out 0x10, al
    hlt
END flag_wait

/* A short computation with a progress OUT per step: ebx accumulates a
 * mix of the step counter, memory at 0x3000 records every step. */
GUEST compute
    xor ecx, ecx
    mov ebx, 0x1234
1:  imul ebx, ebx, 33
    add ebx, ecx
    xor bl, cl
    mov di, cx
    shl di, 2
    mov [0x3000 + di], ebx
    mov ax, cx
    out 0x50, al            /* progress: step number */
    inc ecx
    cmp ecx, 20
    jne 1b
    mov eax, ebx
    out 0x51, eax
    hlt
END compute

/* ---------------------------------------------------------------- 32-bit */
    .code32

/* Runs in flat protected mode: proves 32-bit addressing and the stack. */
GUEST prot32
    mov esp, 0x8000
    mov eax, 0x12345678
    push eax
    pop ebx
    mov [0x100000], ebx     /* above 1 MiB: no real-mode wraparound */
    mov ecx, [0x100000]
    out 0x10, eax
    hlt
END prot32

/* ---------------------------------------------------------------- 64-bit */
    .code64

/* 64-bit registers and addressing above 4 GiB of virtual space are not
 * needed: a 64-bit immediate and a rip-relative load are. */
GUEST long64
    mov rax, 0x123456789abcdef0
    mov rbx, [rip + 1f]
    mov rcx, rax
    add rcx, rbx
    out 0x10, eax
    hlt
    .balign 8
1:  .quad 0x0fedcba987654321
END long64

/* An empty IDT makes ud2 fault, the fault double-faults and the double
 * fault shuts the CPU down. In long mode so no real-mode emulation path of
 * the host gets in the way. */
GUEST triple_fault
    lidt [rip + 1f]
    ud2
    hlt
    .balign 8
1:  .word 0
    .quad 0
END triple_fault

/* Enables its local APIC (in-kernel irqchip), installs a 64-bit IDT gate
 * for vector 0x40 and waits in sti; hlt. The handler reports on port 0x41
 * and acknowledges with an EOI. */
GUEST apic_irq
    lea rax, [rip + 2f]
    mov rdi, 0x5000 + 0x40 * 16
    mov [rdi], ax
    mov word ptr [rdi + 2], 0x18
    mov word ptr [rdi + 4], 0x8e00
    shr rax, 16
    mov [rdi + 6], ax
    shr rax, 16
    mov [rdi + 8], eax
    mov dword ptr [rdi + 12], 0
    lidt [rip + 3f]
    mov rsp, 0x8000
    mov edi, 0xfee000f0                 /* above 2 GiB: no disp32 */
    mov dword ptr [rdi], 0x1ff          /* SVR: APIC on, spurious 0xff */
    out 0x40, al                        /* ready */
    sti
1:  hlt
    jmp 1b
2:  mov al, 0x40
    out 0x41, al
    mov edi, 0xfee000b0
    mov dword ptr [rdi], 0              /* EOI */
    iretq
    .balign 8
3:  .word 0x1000 - 1
    .quad 0x5000
END apic_irq

/* 600 rounds of a posted 4-byte MMIO write of the round number to
 * 0xd0000000 and a posted OUT of its low byte to port 0x80, then an
 * ordinary OUT to 0x10 and hlt. */
GUEST posted
    mov rdi, 0xd0000000
    xor ecx, ecx
1:  mov [rdi], ecx
    mov al, cl
    out 0x80, al
    inc ecx
    cmp ecx, 600
    jne 1b
    out 0x10, al
    hlt
END posted

/* 50 posted 4-byte MMIO writes of 0..49 to 0xd0000000, with an ordinary
 * IN from port 0x20 after every tenth, then an OUT to 0x10 and hlt: the
 * posted writes must arrive in order, each batch with the exit after it. */
GUEST posted_mix
    mov rdi, 0xd0000000
    xor ecx, ecx
1:  mov [rdi], ecx
    inc ecx
    mov eax, ecx
    xor edx, edx
    mov ebx, 10
    div ebx
    test edx, edx
    jnz 2f
    in al, 0x20
2:  cmp ecx, 50
    jne 1b
    out 0x10, al
    hlt
END posted_mix

/* MMIO writes then reads of every size at 0xd0000000 (no RAM there). */
GUEST mmio
    mov rdi, 0xd0000000
    mov al, 0x11
    mov [rdi], al
    mov ax, 0x2233
    mov [rdi + 2], ax
    mov eax, 0x44556677
    mov [rdi + 4], eax
    mov rax, 0x8899aabbccddeeff
    mov [rdi + 8], rax
    xor eax, eax
    mov r8b, [rdi]
    mov r9w, [rdi + 2]
    mov r10d, [rdi + 4]
    mov r11, [rdi + 8]
    hlt
END mmio

/* Writes a byte into the read-only region at 0x200000: an MMIO exit. */
GUEST rom_write
    mov byte ptr [0x200000], 0x5a
    mov al, [0x200000]
    hlt
END rom_write

    .att_syntax
    .section .note.GNU-stack, "", @progbits
