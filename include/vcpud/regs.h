/* regs.h: x86-64 register state as vcpud exposes it, independent of any
 * backend's own structures. */
#ifndef VCPUD_REGS_H
#define VCPUD_REGS_H

#include <stdint.h>

struct vcpud_regs {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rip, rflags;
};

/* A segment register with its hidden part. The attribute fields follow the
 * descriptor bits of the Intel SDM (vol. 3, 3.4.5). */
struct vcpud_segment {
    uint64_t base;
    uint32_t limit; /* in bytes, already scaled by the granularity bit */
    uint16_t selector;
    uint8_t type; /* 4-bit descriptor type */
    uint8_t present, dpl, db, s, l, g, avl;
    uint8_t unusable;
};

struct vcpud_dtable {
    uint64_t base;
    uint16_t limit;
};

struct vcpud_sregs {
    struct vcpud_segment cs, ds, es, fs, gs, ss, tr, ldt;
    struct vcpud_dtable gdt, idt;
    uint64_t cr0, cr2, cr3, cr4, cr8;
    uint64_t efer;
    uint64_t apic_base;
};

#define VCPUD_RFLAGS_IF (1ull << 9)
#define VCPUD_RFLAGS_TF (1ull << 8)

#endif
