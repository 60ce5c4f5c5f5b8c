/* hello_guest.S: a 64-bit guest that greets through a 16550 UART at 0x3f8,
 * waiting for the transmitter to be empty (LSR bit 5) before each byte, as
 * a real driver must. Loaded at 0x1000. */
#define LOAD 0x1000
#define A(l) ((l) - hello_guest_start + LOAD)
#define UART_THR 0x3f8
#define UART_LSR 0x3fd
#define LSR_THRE 0x20

    .section .rodata
    .intel_syntax noprefix
    .code64
    .globl hello_guest_start, hello_guest_end
hello_guest_start:
    lea rsi, [rip + msg]
1:  mov bl, [rsi]
    test bl, bl
    jz 3f
2:  mov dx, UART_LSR
    in al, dx
    test al, LSR_THRE
    jz 2b
    mov dx, UART_THR
    mov al, bl
    out dx, al
    inc rsi
    jmp 1b
3:  hlt
msg:
    .asciz "Hello from a guest running on vcpud!\n"
hello_guest_end:
    .att_syntax
    .section .note.GNU-stack, "", @progbits
