/* snapshot.h: the vCPU snapshot byte format – versioned, self-describing
 * and checked before anything is believed.
 *
 * Layout, all integers little endian:
 *
 *   header, 32 bytes
 *     0  magic      "VCPUDSNP"
 *     8  u32        format version (VCPUD_SNAP_VERSION)
 *    12  u32        number of sections
 *    16  u64        payload length: bytes after the header
 *    24  u32        CRC-32 (IEEE) of the payload
 *    28  u32        reserved, 0
 *   sections, back to back, each
 *     u32 type (enum vcpud_snap_type), u32 length, length bytes of body,
 *     zero padding to a multiple of 8
 *
 * A reader rejects a bad magic, an unknown version, a payload length that
 * disagrees with the buffer, a CRC mismatch, a section running past the
 * payload, a duplicate section, and (via the backend) a section whose body
 * has the wrong size. Unknown section types are an error too: silently
 * dropping state is worse than refusing it.
 */
#ifndef VCPUD_SNAPSHOT_H
#define VCPUD_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "vcpud/error.h"

#define VCPUD_SNAP_MAGIC "VCPUDSNP"
#define VCPUD_SNAP_VERSION 1u
#define VCPUD_SNAP_HEADER_SIZE 32u
#define VCPUD_SNAP_MAX_SECTIONS 32u
#define VCPUD_SNAP_MAX_SIZE (1u << 20) /* far above any real vCPU state */

#define VCPUD_SNAP_TYPES(X)                                                    \
    X(1, BACKEND, "backend") /* NUL-free name, e.g. "kvm/x86_64" */            \
    X(2, REGS, "regs")       /* 18 x u64 in struct vcpud_regs order */         \
    X(3, SREGS, "sregs")                                                       \
    X(4, XSAVE, "xsave")   /* the XSAVE area, as the CPU lays it out */        \
    X(5, XCRS, "xcrs")     /* u32 n, n x (u32 xcr, u32 0, u64 value) */        \
    X(6, MSRS, "msrs")     /* u32 n, n x (u32 index, u32 0, u64 data) */       \
    X(7, CPUID, "cpuid")   /* u32 n, n x 7 x u32 */                            \
    X(8, LAPIC, "lapic")   /* the 1 KiB local APIC register page */            \
    X(9, EVENTS, "events") /* pending exception/interrupt/NMI/SMI */           \
    X(10, DEBUGREGS, "debugregs") /* dr0-3, dr6, dr7 as u64 */                 \
    X(11, MPSTATE, "mpstate")     /* u32 */                                    \
    X(12, PENDING, "pending")     /* the exit still waiting for a result */    \
    X(13, TSC_KHZ, "tsc-khz")     /* u32, informational */

enum vcpud_snap_type {
#define VCPUD__SNAP_ENUM(num, name, text) VCPUD_SNAP_##name = num,
    VCPUD_SNAP_TYPES(VCPUD__SNAP_ENUM)
#undef VCPUD__SNAP_ENUM
        VCPUD_SNAP_TYPE_MAX
};

/* "regs", "xsave", ...; NULL for a type this version does not know. */
const char *vcpud_snap_type_name(uint32_t type);

/* A growing buffer a snapshot is written into. */
struct vcpud_snap_writer {
    uint8_t *buf;
    size_t len, cap;
    uint32_t nsections;
    int error; /* first allocation failure, sticky */
};

/* Start a snapshot; reserves the header. */
void vcpud_snap_writer_init(struct vcpud_snap_writer *w);
/* Append one section; the body is copied. */
void vcpud_snap_add(struct vcpud_snap_writer *w, uint32_t type,
                    const void *body, uint32_t len);
/*
 * Fill in the header and hand the buffer over: on success *buf (malloc'd,
 * owned by the caller) and *len describe the snapshot and the writer is
 * empty. On failure the writer's memory is freed.
 */
int vcpud_snap_finish(struct vcpud_snap_writer *w, void **buf, size_t *len,
                      struct vcpud_err *err);
/* Free whatever the writer holds. */
void vcpud_snap_writer_free(struct vcpud_snap_writer *w);

struct vcpud_snap_section {
    uint32_t type;
    uint32_t len;
    const uint8_t *body; /* points into the parsed buffer */
};

/* A parsed snapshot: sections indexed by type. Borrows the buffer. */
struct vcpud_snap {
    struct vcpud_snap_section sec[VCPUD_SNAP_TYPE_MAX];
    uint32_t nsections;
};

/* Check (buf) completely and index its sections into (snap). -EBADMSG with
 * the reason on any damage. */
int vcpud_snap_parse(const void *buf, size_t len, struct vcpud_snap *snap,
                     struct vcpud_err *err);

/* The section of (type), or NULL when the snapshot has none. */
const struct vcpud_snap_section *vcpud_snap_get(const struct vcpud_snap *snap,
                                                uint32_t type);

/* Fetch section (type) and insist on its exact length. -EBADMSG if absent
 * or of another size. */
int vcpud_snap_need(const struct vcpud_snap *snap, uint32_t type, uint32_t len,
                    const struct vcpud_snap_section **out,
                    struct vcpud_err *err);

/* Little-endian helpers for section bodies. */
static inline void vcpud_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void vcpud_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t vcpud_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static inline uint64_t vcpud_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* CRC-32 (IEEE 802.3, as zlib computes it). */
uint32_t vcpud_crc32(const void *buf, size_t len);

#endif
