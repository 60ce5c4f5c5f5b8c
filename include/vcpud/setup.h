/* setup.h: put a fresh vCPU into the execution mode a guest starts in. */
#ifndef VCPUD_SETUP_H
#define VCPUD_SETUP_H

#include <stdint.h>

#include "vcpud/error.h"

struct vcpud_vcpu;

enum vcpud_mode {
    VCPUD_MODE_REAL = 1,      /* 16-bit, segments based at 0 */
    VCPUD_MODE_PROTECTED = 2, /* 32-bit flat, paging off */
    VCPUD_MODE_LONG = 3,      /* 64-bit, first 4 GiB identity mapped */
};

/* Guest memory the tables of each mode take at (tables_gpa). */
#define VCPUD_SETUP_REAL_SIZE 0u
#define VCPUD_SETUP_PROTECTED_SIZE 0x1000u /* GDT */
#define VCPUD_SETUP_LONG_SIZE 0x7000u      /* GDT, PML4, PDPT, 4 PDs */

/* Flat selectors the GDT written by the helpers holds. */
#define VCPUD_SETUP_SEL_CODE32 0x08
#define VCPUD_SETUP_SEL_DATA 0x10
#define VCPUD_SETUP_SEL_CODE64 0x18

/*
 * Put (vcpu) into (mode) with RIP = (entry), RSP = (stack), RFLAGS = 2.
 * Protected and long mode write their descriptor (and page) tables into
 * guest memory at (tables_gpa), which must be 4 KiB aligned and backed by
 * RAM of at least VCPUD_SETUP_*_SIZE bytes; real mode ignores it. Long mode
 * identity-maps the first 4 GiB with 2 MiB pages so that MMIO above RAM is
 * reachable.
 */
int vcpud_setup_mode(struct vcpud_vcpu *vcpu, enum vcpud_mode mode,
                     uint64_t entry, uint64_t stack, uint64_t tables_gpa,
                     struct vcpud_err *err);

/* "real", "protected", "long"; NULL for other values. */
const char *vcpud_mode_name(enum vcpud_mode mode);

#endif
