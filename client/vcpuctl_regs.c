/* vcpuctl_regs.c: register names – one table each for the general and the
 * special registers, which printing walks and NAME=VALUE looks up, so the
 * two can never disagree on a name. */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "vcpuctl.h"
#include "vcpuctl_json.h"

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

struct reg {
    const char *name;
    size_t off;
};

/* The tables stay in columns: clang-format would take the stringizing #
 * of their macros for a directive. */
// clang-format off
#define GREG(r) {#r, offsetof(struct vcpud_regs, r)},
static const struct reg gregs[] = {VCPUD_REGS_FIELDS(GREG)};
#undef GREG

/* A field of a segment, descriptor table or the sregs themselves: where,
 * how wide in memory and the largest value it holds. */
struct field {
    const char *name;
    size_t off;
    size_t width; /* bytes: 1, 2, 4 or 8 */
    uint64_t max;
};

#define SEGF(f, m)                                                             \
    {#f, offsetof(struct vcpud_segment, f),                                    \
     sizeof(((struct vcpud_segment *)0)->f), m}
static const struct field seg_fields[] = {
    SEGF(base, UINT64_MAX), SEGF(limit, UINT32_MAX), SEGF(selector, 0xffff),
    SEGF(type, 15),         SEGF(present, 1),        SEGF(dpl, 3),
    SEGF(db, 1),            SEGF(s, 1),              SEGF(l, 1),
    SEGF(g, 1),             SEGF(avl, 1),            SEGF(unusable, 1),
};
#undef SEGF

static const struct field dt_fields[] = {
    {"base", offsetof(struct vcpud_dtable, base), 8, UINT64_MAX},
    {"limit", offsetof(struct vcpud_dtable, limit), 2, 0xffff},
};

#define SREG(r) {#r, offsetof(struct vcpud_sregs, r)},
static const struct reg segs[] = {VCPUD_SREGS_SEGMENTS(SREG)};
static const struct reg dtables[] = {SREG(gdt) SREG(idt)};
#undef SREG

#define CTLREG(r) {#r, offsetof(struct vcpud_sregs, r), 8, UINT64_MAX},
static const struct field ctlregs[] = {VCPUD_SREGS_SCALARS(CTLREG)};
#undef CTLREG
// clang-format on

static uint64_t get_field(const void *base, const struct field *f)
{
    const uint8_t *p = (const uint8_t *)base + f->off;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    switch (f->width) {
    case 1:
        memcpy(&u8, p, 1);
        return u8;
    case 2:
        memcpy(&u16, p, 2);
        return u16;
    case 4:
        memcpy(&u32, p, 4);
        return u32;
    default:
        memcpy(&u64, p, 8);
        return u64;
    }
}

/* (v) has been checked against f->max, so the narrowing is exact. */
static void set_field(void *base, const struct field *f, uint64_t v)
{
    uint8_t *p = (uint8_t *)base + f->off;
    uint8_t u8 = (uint8_t)v;
    uint16_t u16 = (uint16_t)v;
    uint32_t u32 = (uint32_t)v;
    switch (f->width) {
    case 1:
        memcpy(p, &u8, 1);
        break;
    case 2:
        memcpy(p, &u16, 2);
        break;
    case 4:
        memcpy(p, &u32, 4);
        break;
    default:
        memcpy(p, &v, 8);
        break;
    }
}

static uint64_t *greg(struct vcpud_regs *r, const struct reg *g)
{
    return (uint64_t *)((uint8_t *)r + g->off);
}

static uint64_t greg_value(const struct vcpud_regs *r, const struct reg *g)
{
    uint64_t v;
    memcpy(&v, (const uint8_t *)r + g->off, sizeof(v));
    return v;
}

void vcpuctl_json_regs(struct json_writer *w, const struct vcpud_regs *r)
{
    for (size_t i = 0; i < COUNT_OF(gregs); i++)
        json_hex64(w, gregs[i].name, greg_value(r, &gregs[i]));
}

void vcpuctl_print_regs(const struct vcpuctl *ctl, const struct vcpud_regs *r)
{
    if (ctl->opt.json) {
        struct json_writer w;
        json_begin(&w, stdout);
        vcpuctl_json_regs(&w, r);
        json_end(&w);
        return;
    }
    for (size_t i = 0; i < COUNT_OF(gregs); i++)
        printf("%-6s 0x%016" PRIx64 "%s", gregs[i].name,
               greg_value(r, &gregs[i]), i % 3 == 2 ? "\n" : "   ");
}

/* A field's value as text: 64-bit ones in full hex, small ones as they
 * appear in the SDM's tables. */
static void print_field(const void *base, const struct field *f)
{
    uint64_t v = get_field(base, f);
    if (f->width == 8)
        printf(" %s=0x%016" PRIx64, f->name, v);
    else if (f->max > 15)
        printf(" %s=0x%" PRIx64, f->name, v);
    else
        printf(" %s=%" PRIu64, f->name, v);
}

static void json_field(struct json_writer *w, const void *base,
                       const struct field *f)
{
    uint64_t v = get_field(base, f);
    if (f->width == 8)
        json_hex64(w, f->name, v);
    else if (f->max == 1)
        json_bool(w, f->name, v != 0);
    else
        json_u32(w, f->name, (uint32_t)v);
}

static void print_group(const char *name, const void *base,
                        const struct field *fields, size_t n)
{
    printf("%-4s", name);
    for (size_t i = 0; i < n; i++)
        print_field(base, &fields[i]);
    putchar('\n');
}

static void json_group(struct json_writer *w, const char *name,
                       const void *base, const struct field *fields, size_t n)
{
    json_object(w, name);
    for (size_t i = 0; i < n; i++)
        json_field(w, base, &fields[i]);
    json_close(w);
}

void vcpuctl_json_sregs(struct json_writer *w, const struct vcpud_sregs *s)
{
    for (size_t i = 0; i < COUNT_OF(segs); i++)
        json_group(w, segs[i].name, (const uint8_t *)s + segs[i].off,
                   seg_fields, COUNT_OF(seg_fields));
    for (size_t i = 0; i < COUNT_OF(dtables); i++)
        json_group(w, dtables[i].name, (const uint8_t *)s + dtables[i].off,
                   dt_fields, COUNT_OF(dt_fields));
    for (size_t i = 0; i < COUNT_OF(ctlregs); i++)
        json_field(w, s, &ctlregs[i]);
}

void vcpuctl_print_sregs(const struct vcpuctl *ctl, const struct vcpud_sregs *s)
{
    if (ctl->opt.json) {
        struct json_writer w;
        json_begin(&w, stdout);
        vcpuctl_json_sregs(&w, s);
        json_end(&w);
        return;
    }
    for (size_t i = 0; i < COUNT_OF(segs); i++)
        print_group(segs[i].name, (const uint8_t *)s + segs[i].off, seg_fields,
                    COUNT_OF(seg_fields));
    for (size_t i = 0; i < COUNT_OF(dtables); i++)
        print_group(dtables[i].name, (const uint8_t *)s + dtables[i].off,
                    dt_fields, COUNT_OF(dt_fields));
    for (size_t i = 0; i < COUNT_OF(ctlregs); i++)
        printf("%-9s 0x%016" PRIx64 "\n", ctlregs[i].name,
               get_field(s, &ctlregs[i]));
}

/* Split "NAME=VALUE"; NAME into (name). */
static int split_assignment(struct vcpuctl *ctl, const char *a, char *name,
                            size_t len, const char **value)
{
    const char *eq = strchr(a, '=');
    if (!eq || eq == a || (size_t)(eq - a) >= len)
        return vcpuctl_usage(ctl, "'%s' is not NAME=VALUE", a);
    snprintf(name, len, "%.*s", (int)(eq - a), a);
    *value = eq + 1;
    return VCPUCTL_OK;
}

int vcpuctl_assign_reg(struct vcpuctl *ctl, struct vcpud_regs *r,
                       const char *assignment)
{
    char name[32];
    const char *value;
    int rc = split_assignment(ctl, assignment, name, sizeof(name), &value);
    if (rc)
        return rc;
    for (size_t i = 0; i < COUNT_OF(gregs); i++) {
        if (strcmp(name, gregs[i].name) != 0)
            continue;
        return vcpuctl_arg_u64(ctl, name, value, greg(r, &gregs[i]));
    }
    return vcpuctl_usage(ctl,
                         "no register '%s' (rax..rdx, rsi, rdi, rsp, rbp, "
                         "r8..r15, rip, rflags)",
                         name);
}

static int assign_field(struct vcpuctl *ctl, void *base, const char *name,
                        const struct field *f, const char *value)
{
    uint64_t v;
    int rc = vcpuctl_arg_u64(ctl, name, value, &v);
    if (rc)
        return rc;
    if (v > f->max)
        return vcpuctl_usage(ctl, "%s=%s does not fit (at most 0x%" PRIx64 ")",
                             name, value, f->max);
    set_field(base, f, v);
    return VCPUCTL_OK;
}

/* "GROUP.FIELD" against one group of the tables above. */
static const struct field *find_in(const char *name, const struct reg *groups,
                                   size_t ngroups, const struct field *fields,
                                   size_t nfields, size_t *group_off)
{
    const char *dot = strchr(name, '.');
    if (!dot)
        return NULL;
    for (size_t g = 0; g < ngroups; g++) {
        if (strlen(groups[g].name) != (size_t)(dot - name) ||
            strncmp(groups[g].name, name, (size_t)(dot - name)) != 0)
            continue;
        for (size_t i = 0; i < nfields; i++) {
            if (strcmp(dot + 1, fields[i].name) == 0) {
                *group_off = groups[g].off;
                return &fields[i];
            }
        }
    }
    return NULL;
}

int vcpuctl_assign_sreg(struct vcpuctl *ctl, struct vcpud_sregs *s,
                        const char *assignment)
{
    char name[32];
    const char *value;
    int rc = split_assignment(ctl, assignment, name, sizeof(name), &value);
    if (rc)
        return rc;
    for (size_t i = 0; i < COUNT_OF(ctlregs); i++)
        if (strcmp(name, ctlregs[i].name) == 0)
            return assign_field(ctl, s, name, &ctlregs[i], value);
    size_t off;
    const struct field *f = find_in(name, segs, COUNT_OF(segs), seg_fields,
                                    COUNT_OF(seg_fields), &off);
    if (!f)
        f = find_in(name, dtables, COUNT_OF(dtables), dt_fields,
                    COUNT_OF(dt_fields), &off);
    if (!f)
        return vcpuctl_usage(ctl,
                             "no special register '%s' (cr0, cr2, cr3, cr4, "
                             "cr8, efer, apic_base, SEG.FIELD with SEG cs, "
                             "ds, es, fs, gs, ss, tr, ldt, or gdt.base, "
                             "gdt.limit, idt.base, idt.limit)",
                             name);
    return assign_field(ctl, (uint8_t *)s + off, name, f, value);
}
