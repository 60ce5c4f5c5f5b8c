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

/*
 * The fields of these structures, for the code that copies them to and
 * from other representations (KVM's, the wire's), so that each copy names
 * every field exactly once: X(field) for the 64-bit ones, X(field, type)
 * for a segment's.
 */
#define VCPUD_REGS_FIELDS(X)                                                   \
    X(rax) X(rbx) X(rcx) X(rdx) X(rsi) X(rdi) X(rsp) X(rbp) X(r8) X(r9)        \
        X(r10) X(r11) X(r12) X(r13) X(r14) X(r15) X(rip) X(rflags)
#define VCPUD_SEGMENT_FIELDS(X)                                                \
    X(base, uint64_t) X(limit, uint32_t) X(selector, uint16_t)                 \
        X(type, uint8_t) X(present, uint8_t) X(dpl, uint8_t) X(db, uint8_t)    \
            X(s, uint8_t) X(l, uint8_t) X(g, uint8_t) X(avl, uint8_t)          \
                X(unusable, uint8_t)
#define VCPUD_SREGS_SEGMENTS(X)                                                \
    X(cs) X(ds) X(es) X(fs) X(gs) X(ss) X(tr) X(ldt)
#define VCPUD_SREGS_SCALARS(X)                                                 \
    X(cr0) X(cr2) X(cr3) X(cr4) X(cr8) X(efer) X(apic_base)

#define VCPUD_RFLAGS_IF (1ull << 9)
#define VCPUD_RFLAGS_TF (1ull << 8)

#endif
