/* setup.c: put a vCPU into real, protected or long mode the way firmware
 * or a boot loader would, so a controller can start a guest at its code. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "vcpud/setup.h"
#include "vcpud/vcpu.h"
#include "vcpud/vm.h"

#define CR0_PE (1ull << 0)
#define CR0_MP (1ull << 1)
#define CR0_ET (1ull << 4)
#define CR0_NE (1ull << 5)
#define CR0_WP (1ull << 16)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define CR4_OSFXSR (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

#define PTE_P 0x1ull
#define PTE_RW 0x2ull
#define PTE_PS 0x80ull

static const char *const mode_names[] = {
    [VCPUD_MODE_REAL] = "real",
    [VCPUD_MODE_PROTECTED] = "protected",
    [VCPUD_MODE_LONG] = "long",
};

const char *vcpud_mode_name(enum vcpud_mode mode)
{
    if (mode < VCPUD_MODE_REAL || mode > VCPUD_MODE_LONG)
        return NULL;
    return mode_names[mode];
}

/* An 8-byte GDT descriptor from the fields of a segment. */
static uint64_t descriptor(const struct vcpud_segment *s)
{
    uint32_t limit = s->g ? s->limit >> 12 : s->limit;
    return (uint64_t)(limit & 0xffff) | (s->base & 0xffffffull) << 16 |
           (uint64_t)(s->type & 0xf) << 40 | (uint64_t)(s->s & 1) << 44 |
           (uint64_t)(s->dpl & 3) << 45 | (uint64_t)(s->present & 1) << 47 |
           (uint64_t)((limit >> 16) & 0xf) << 48 |
           (uint64_t)(s->avl & 1) << 52 | (uint64_t)(s->l & 1) << 53 |
           (uint64_t)(s->db & 1) << 54 | (uint64_t)(s->g & 1) << 55 |
           ((s->base >> 24) & 0xffull) << 56;
}

static struct vcpud_segment flat(uint16_t selector, uint8_t type, bool l)
{
    return (struct vcpud_segment){.base = 0,
                                  .limit = 0xffffffffu,
                                  .selector = selector,
                                  .type = type,
                                  .present = 1,
                                  .dpl = 0,
                                  .db = l ? 0 : 1,
                                  .s = 1,
                                  .l = l,
                                  .g = 1};
}

/* GDT with the flat code and data segments the helpers load; a guest that
 * reloads a segment register or takes an interrupt reads it from here. */
static int write_gdt(struct vcpud_vcpu *vcpu, uint64_t gpa,
                     struct vcpud_sregs *s, struct vcpud_err *err)
{
    struct vcpud_segment code32 = flat(VCPUD_SETUP_SEL_CODE32, 0xb, false);
    struct vcpud_segment data = flat(VCPUD_SETUP_SEL_DATA, 0x3, false);
    struct vcpud_segment code64 = flat(VCPUD_SETUP_SEL_CODE64, 0xb, true);
    uint64_t gdt[4] = {0, descriptor(&code32), descriptor(&data),
                       descriptor(&code64)};
    uint8_t bytes[sizeof(gdt)];
    for (size_t i = 0; i < 4; i++)
        for (int b = 0; b < 8; b++)
            bytes[i * 8 + b] = (uint8_t)(gdt[i] >> (8 * b));
    s->gdt = (struct vcpud_dtable){.base = gpa, .limit = sizeof(gdt) - 1};
    return vcpud_vm_write(vcpud_vcpu_vm(vcpu), gpa, bytes, sizeof(bytes), err);
}

/* PML4 -> one PDPT -> four page directories of 2 MiB pages: 4 GiB. */
static int write_page_tables(struct vcpud_vcpu *vcpu, uint64_t base,
                             struct vcpud_err *err)
{
    uint8_t page[4096];
    uint64_t pml4 = base, pdpt = base + 0x1000, pd = base + 0x2000;

    memset(page, 0, sizeof(page));
    uint64_t e = pdpt | PTE_P | PTE_RW;
    memcpy(page, &e, 8);
    int rc = vcpud_vm_write(vcpud_vcpu_vm(vcpu), pml4, page, 4096, err);
    if (rc < 0)
        return rc;
    memset(page, 0, sizeof(page));
    for (uint64_t i = 0; i < 4; i++) {
        e = (pd + i * 0x1000) | PTE_P | PTE_RW;
        memcpy(page + 8 * i, &e, 8);
    }
    rc = vcpud_vm_write(vcpud_vcpu_vm(vcpu), pdpt, page, 4096, err);
    for (uint64_t d = 0; d < 4 && rc == 0; d++) {
        for (uint64_t i = 0; i < 512; i++) {
            e = ((d << 30) + (i << 21)) | PTE_P | PTE_RW | PTE_PS;
            memcpy(page + 8 * i, &e, 8);
        }
        rc = vcpud_vm_write(vcpud_vcpu_vm(vcpu), pd + d * 0x1000, page, 4096,
                            err);
    }
    return rc;
}

static void set_data_segments(struct vcpud_sregs *s, struct vcpud_segment d)
{
    s->ds = s->es = s->fs = s->gs = s->ss = d;
}

/* VMX insists on a usable TSS even when the guest never switches tasks. */
static void set_system_segments(struct vcpud_sregs *s)
{
    s->tr = (struct vcpud_segment){
        .limit = 0x67, .type = 0xb, .present = 1, .s = 0};
    s->ldt = (struct vcpud_segment){
        .limit = 0xffff, .type = 0x2, .present = 1, .unusable = 1};
}

int vcpud_setup_mode(struct vcpud_vcpu *vcpu, enum vcpud_mode mode,
                     uint64_t entry, uint64_t stack, uint64_t tables_gpa,
                     struct vcpud_err *err)
{
    if (!vcpud_mode_name(mode))
        return vcpud_err_set(err, -EINVAL,
                             "mode %d is not real (1), protected (2) or long "
                             "(3)",
                             (int)mode);
    if (mode != VCPUD_MODE_REAL && tables_gpa % 4096)
        return vcpud_err_set(
            err, -EINVAL, "tables address 0x%" PRIx64 " is not 4 KiB aligned",
            tables_gpa);
    if (mode == VCPUD_MODE_REAL && (entry > 0xfffff || stack > 0xffff))
        return vcpud_err_set(err, -EINVAL,
                             "real mode reaches 1 MiB: entry 0x%" PRIx64
                             " / stack 0x%" PRIx64 " is beyond it",
                             entry, stack);
    if (mode == VCPUD_MODE_PROTECTED && (entry >> 32 || stack >> 32))
        return vcpud_err_set(err, -EINVAL,
                             "protected mode entry and stack must be below "
                             "4 GiB");

    struct vcpud_sregs s;
    int rc = vcpud_vcpu_get_sregs(vcpu, &s, err);
    if (rc < 0)
        return rc;
    struct vcpud_regs r = {.rflags = 2, .rip = entry, .rsp = stack};

    switch (mode) {
    case VCPUD_MODE_REAL: {
        /* CS base 0 so that RIP is a physical address below 64 KiB; larger
         * entries use the segment like a far jump would. */
        uint16_t seg = (uint16_t)((entry & ~0xffffull) >> 4);
        s.cs = (struct vcpud_segment){.base = (uint64_t)seg << 4,
                                      .limit = 0xffff,
                                      .selector = seg,
                                      .type = 0xb,
                                      .present = 1,
                                      .s = 1};
        r.rip = entry & 0xffff;
        set_data_segments(
            &s, (struct vcpud_segment){
                    .limit = 0xffff, .type = 0x3, .present = 1, .s = 1});
        s.cr0 &= ~(CR0_PE | CR0_PG);
        s.cr4 = 0;
        s.efer = 0;
        break;
    }
    case VCPUD_MODE_PROTECTED:
        if ((rc = write_gdt(vcpu, tables_gpa, &s, err)) < 0)
            return rc;
        s.cs = flat(VCPUD_SETUP_SEL_CODE32, 0xb, false);
        set_data_segments(&s, flat(VCPUD_SETUP_SEL_DATA, 0x3, false));
        s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE;
        s.cr4 = CR4_OSFXSR | CR4_OSXMMEXCPT;
        s.efer = 0;
        break;
    case VCPUD_MODE_LONG:
        if ((rc = write_gdt(vcpu, tables_gpa, &s, err)) < 0 ||
            (rc = write_page_tables(vcpu, tables_gpa + 0x1000, err)) < 0)
            return rc;
        s.cs = flat(VCPUD_SETUP_SEL_CODE64, 0xb, true);
        set_data_segments(&s, flat(VCPUD_SETUP_SEL_DATA, 0x3, false));
        s.cr3 = tables_gpa + 0x1000;
        s.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
        s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
        s.efer = EFER_LME | EFER_LMA;
        break;
    }
    set_system_segments(&s);
    if ((rc = vcpud_vcpu_set_sregs(vcpu, &s, err)) < 0)
        return rc;
    return vcpud_vcpu_set_regs(vcpu, &r, err);
}
