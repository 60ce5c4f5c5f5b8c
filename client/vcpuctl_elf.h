/* vcpuctl_elf.h: reading the loadable segments of a little-endian x86 ELF
 * (ELF32 or ELF64) from a buffer, trusting nothing in it. */
#ifndef VCPUCTL_ELF_H
#define VCPUCTL_ELF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VCPUCTL_ELF_SEGS_MAX 64u

/* A PT_LOAD segment: (filesz) bytes of the file from (offset) go to guest
 * physical (paddr); the rest up to (memsz) is zeroed. */
struct vcpuctl_elf_seg {
    uint64_t paddr;
    uint64_t offset;
    uint64_t filesz;
    uint64_t memsz;
};

struct vcpuctl_elf {
    unsigned bits; /* 32 or 64 */
    uint64_t entry;
    size_t nseg; /* PT_LOAD segments with memsz > 0, in file order */
    struct vcpuctl_elf_seg seg[VCPUCTL_ELF_SEGS_MAX];
};

/* Whether (buf) starts with the ELF magic. */
bool vcpuctl_is_elf(const void *buf, size_t len);

/*
 * Parse the ELF image (buf, len) into (out). Everything is checked before
 * it is used: the header and program header table lie in the buffer, every
 * segment's file bytes lie in the buffer, filesz <= memsz, no segment
 * wraps the address space (4 GiB for ELF32) or overlaps another, at least
 * one segment loads. On failure returns -EINVAL with the reason in (why)
 * and leaves (out) unspecified.
 */
int vcpuctl_elf_parse(const void *buf, size_t len, struct vcpuctl_elf *out,
                      char *why, size_t whylen);

#endif
