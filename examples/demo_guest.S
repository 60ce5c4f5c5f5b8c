/* demo_guest.S: the remote-device demo's guest, 64-bit, loaded at 0x1000.
 * It talks to two devices the controller emulates over gRPC:
 *   a 16550-style UART at 0x3f8 (THR/RBR) with its line status at 0x3fd
 *     (bit 0: a byte is waiting, bit 5: transmitter empty), and
 *   a timer/counter at 0xd0000000: +0 a free-running 64-bit count of
 *     microseconds, +8 a 64-bit scratch register that reads back what was
 *     written.
 * It greets, reads a line, echoes it, measures the line's typing time with
 * the counter, checks the scratch register and halts. */
#define UART 0x3f8
#define LSR 0x3fd
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define TIMER 0xd0000000
#define LINE 0x4000      /* the line read, at most 127 bytes */

    .section .rodata
    .intel_syntax noprefix
    .code64
    .globl demo_guest_start, demo_guest_end
demo_guest_start:
    mov rsp, 0x8000
    mov r12, TIMER
    lea rsi, [rip + hello]
    call puts
    mov r13, [r12]              /* counter before the line */
    call gets
    mov r14, [r12]              /* and after */
    lea rsi, [rip + echo]
    call puts
    mov rsi, LINE
    call puts
    lea rsi, [rip + newline]
    call puts
    /* scratch: write the elapsed time, read it back */
    mov rax, r14
    sub rax, r13
    mov [r12 + 8], rax
    mov rbx, [r12 + 8]
    cmp rbx, rax
    jne 1f
    mov r15, rbx                /* puts clobbers rbx */
    lea rsi, [rip + took]
    call puts
    mov rax, r15
    call puthex
    lea rsi, [rip + us]
    call puts
    hlt
1:  lea rsi, [rip + bad]
    call puts
    hlt

/* putc: al to the UART once the transmitter is empty. */
putc:
    mov bl, al
    mov dx, LSR
2:  in al, dx
    test al, LSR_THRE
    jz 2b
    mov dx, UART
    mov al, bl
    out dx, al
    ret

/* puts: the NUL-terminated string at rsi. */
puts:
    mov al, [rsi]
    test al, al
    jz 3f
    call putc
    inc rsi
    jmp puts
3:  ret

/* gets: a line into LINE (NUL-terminated, without the newline). */
gets:
    mov rdi, LINE
4:  mov dx, LSR
    in al, dx
    test al, LSR_DR
    jz 4b
    mov dx, UART
    in al, dx
    cmp al, 10
    je 5f
    cmp al, 13
    je 5f
    cmp rdi, LINE + 127
    jae 4b
    mov [rdi], al
    inc rdi
    jmp 4b
5:  mov byte ptr [rdi], 0
    ret

/* puthex: rax as 16 hex digits. */
puthex:
    mov rcx, 16
6:  rol rax, 4
    mov r8, rax
    and al, 0xf
    add al, '0'
    cmp al, '9'
    jbe 7f
    add al, 'a' - '9' - 1
7:  call putc
    mov rax, r8
    dec rcx
    jnz 6b
    ret

hello:   .asciz "Hello from a vcpud guest! Its CPU runs under KVM; this UART is emulated by a remote controller over gRPC.\nType a line: "
echo:    .asciz "You typed: "
newline: .asciz "\n"
took:    .asciz "Timer device: the line took 0x"
us:      .asciz " us of controller time. Halting.\n"
bad:     .asciz "Timer device: scratch register did not read back!\n"
demo_guest_end:
    .att_syntax
    .section .note.GNU-stack, "", @progbits
