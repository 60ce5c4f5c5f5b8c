/* vcpuctl_elf.c: the ELF header and program headers, read field by field
 * from offsets (never by casting the buffer to a struct, so neither its
 * alignment nor the host's byte order matters) and checked before use. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vcpuctl_elf.h"

#define EI_NIDENT 16
#define ELFCLASS32 1
#define ELFCLASS64 2
#define ELFDATA2LSB 1
#define EV_CURRENT 1
#define ET_EXEC 2
#define ET_DYN 3
#define EM_386 3
#define EM_X86_64 62
#define PT_LOAD 1
#define PN_XNUM 0xffff

/* Where the fields sit in each class (System V ABI, ELF header and
 * program header). */
struct layout {
    size_t ehsize;                         /* the header's size */
    size_t entry, phoff, phentsize, phnum; /* header field offsets */
    size_t word;                           /* 4 or 8: address-sized fields */
    size_t phsize;                         /* a program header's size */
    size_t p_offset, p_paddr, p_filesz, p_memsz;
};

static const struct layout elf32 = {
    .ehsize = 52,
    .entry = 24,
    .phoff = 28,
    .phentsize = 42,
    .phnum = 44,
    .word = 4,
    .phsize = 32,
    .p_offset = 4,
    .p_paddr = 12,
    .p_filesz = 16,
    .p_memsz = 20,
};

static const struct layout elf64 = {
    .ehsize = 64,
    .entry = 24,
    .phoff = 32,
    .phentsize = 54,
    .phnum = 56,
    .word = 8,
    .phsize = 56,
    .p_offset = 8,
    .p_paddr = 24,
    .p_filesz = 32,
    .p_memsz = 40,
};

/* Little-endian reads; callers have checked that (n) bytes are there. */
static uint64_t le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = (v << 8) | p[i];
    return v;
}

static int fail(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

bool vcpuctl_is_elf(const void *buf, size_t len)
{
    return len >= 4 && memcmp(buf, "\177ELF", 4) == 0;
}

/* The identification bytes and the fields that say what this is. */
static int check_header(const uint8_t *b, size_t len, const struct layout **l,
                        char *why, size_t whylen)
{
    if (len < EI_NIDENT || !vcpuctl_is_elf(b, len))
        return fail(why, whylen, "not an ELF file (no \\177ELF magic)");
    if (b[4] != ELFCLASS32 && b[4] != ELFCLASS64)
        return fail(why, whylen, "unknown ELF class %u", b[4]);
    if (b[5] != ELFDATA2LSB)
        return fail(why, whylen,
                    "not little-endian (EI_DATA %u): only x86 ELF loads", b[5]);
    if (b[6] != EV_CURRENT)
        return fail(why, whylen, "unknown ELF version %u", b[6]);
    *l = b[4] == ELFCLASS64 ? &elf64 : &elf32;
    if (len < (*l)->ehsize)
        return fail(why, whylen,
                    "truncated: %zu bytes, the ELF%u header alone takes %zu",
                    len, b[4] == ELFCLASS64 ? 64u : 32u, (*l)->ehsize);
    uint64_t type = le(b + 16, 2), machine = le(b + 18, 2);
    if (type != ET_EXEC && type != ET_DYN)
        return fail(why, whylen,
                    "ELF type %" PRIu64 " is not an executable (ET_EXEC or "
                    "ET_DYN)",
                    type);
    if (machine != EM_386 && machine != EM_X86_64)
        return fail(why, whylen,
                    "ELF machine %" PRIu64 " is not x86 (3) or x86-64 (62)",
                    machine);
    if (le(b + 20, 4) != EV_CURRENT)
        return fail(why, whylen, "unknown ELF version %" PRIu64, le(b + 20, 4));
    return 0;
}

static int add_segment(struct vcpuctl_elf *out, const uint8_t *ph,
                       const struct layout *l, size_t len, unsigned idx,
                       char *why, size_t whylen)
{
    struct vcpuctl_elf_seg s = {
        .offset = le(ph + l->p_offset, l->word),
        .paddr = le(ph + l->p_paddr, l->word),
        .filesz = le(ph + l->p_filesz, l->word),
        .memsz = le(ph + l->p_memsz, l->word),
    };
    if (s.filesz > s.memsz)
        return fail(why, whylen,
                    "segment %u: file size 0x%" PRIx64 " exceeds its memory "
                    "size 0x%" PRIx64,
                    idx, s.filesz, s.memsz);
    if (s.offset > len || s.filesz > len - s.offset)
        return fail(why, whylen,
                    "truncated: segment %u's bytes [0x%" PRIx64 ", +0x%" PRIx64
                    ") lie past the end of the file (0x%zx bytes)",
                    idx, s.offset, s.filesz, len);
    if (s.memsz == 0)
        return 0;
    uint64_t top = l->word == 4 ? UINT32_MAX : UINT64_MAX;
    if (s.memsz - 1 > top - s.paddr)
        return fail(why, whylen,
                    "segment %u: [0x%" PRIx64 ", +0x%" PRIx64
                    ") wraps around the address space",
                    idx, s.paddr, s.memsz);
    for (size_t i = 0; i < out->nseg; i++) {
        const struct vcpuctl_elf_seg *o = &out->seg[i];
        /* Inclusive ends: neither sum can wrap, checked above. */
        if (s.paddr <= o->paddr + (o->memsz - 1) &&
            o->paddr <= s.paddr + (s.memsz - 1))
            return fail(why, whylen,
                        "segment %u [0x%" PRIx64 ", +0x%" PRIx64
                        ") overlaps an earlier one at [0x%" PRIx64
                        ", +0x%" PRIx64 ")",
                        idx, s.paddr, s.memsz, o->paddr, o->memsz);
    }
    if (out->nseg == VCPUCTL_ELF_SEGS_MAX)
        return fail(why, whylen, "more than %u loadable segments",
                    VCPUCTL_ELF_SEGS_MAX);
    out->seg[out->nseg++] = s;
    return 0;
}

int vcpuctl_elf_parse(const void *buf, size_t len, struct vcpuctl_elf *out,
                      char *why, size_t whylen)
{
    const uint8_t *b = buf;
    const struct layout *l = NULL;
    int rc = check_header(b, len, &l, why, whylen);
    if (rc < 0)
        return rc;
    out->bits = l == &elf64 ? 64 : 32;
    out->entry = le(b + l->entry, l->word);
    out->nseg = 0;
    uint64_t phoff = le(b + l->phoff, l->word);
    uint64_t phentsize = le(b + l->phentsize, 2);
    uint64_t phnum = le(b + l->phnum, 2);
    if (phnum == 0)
        return fail(why, whylen, "no program headers: nothing to load");
    if (phnum == PN_XNUM)
        return fail(why, whylen,
                    "extended program header numbering (PN_XNUM) is not "
                    "supported");
    if (phentsize < l->phsize)
        return fail(why, whylen,
                    "program header entries of %" PRIu64 " bytes, ELF%u's "
                    "take %zu",
                    phentsize, out->bits, l->phsize);
    /* At most 65534 entries of 65535 bytes: the product cannot wrap. */
    uint64_t table = phnum * phentsize;
    if (phoff > len || table > len - phoff)
        return fail(why, whylen,
                    "truncated: the program header table [0x%" PRIx64
                    ", +0x%" PRIx64 ") lies past the end of the file "
                    "(0x%zx bytes)",
                    phoff, table, len);
    for (uint64_t i = 0; i < phnum; i++) {
        const uint8_t *ph = b + phoff + i * phentsize;
        if (le(ph, 4) != PT_LOAD)
            continue;
        rc = add_segment(out, ph, l, len, (unsigned)i, why, whylen);
        if (rc < 0)
            return rc;
    }
    if (out->nseg == 0)
        return fail(why, whylen, "no loadable (PT_LOAD) segment");
    return 0;
}
