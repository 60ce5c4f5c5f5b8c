/* pb_convert.c: field-by-field mapping of registers and exits. */
#include <errno.h>
#include <string.h>

#include "pb_convert.h"

/* The wire enum is the core's enum; keep them in step. */
_Static_assert((int)vcpud_v1_ExitKind_EXIT_KIND_IO_OUT == VCPUD_EXIT_IO_OUT &&
                   (int)vcpud_v1_ExitKind_EXIT_KIND_MMIO_READ ==
                       VCPUD_EXIT_MMIO_READ &&
                   (int)vcpud_v1_ExitKind_EXIT_KIND_CANCELED ==
                       VCPUD_EXIT_CANCELED &&
                   (int)vcpud_v1_ExitKind_EXIT_KIND_UNKNOWN ==
                       VCPUD_EXIT_UNKNOWN &&
                   (int)vcpud_v1_ExitKind_EXIT_KIND_POSTED ==
                       VCPUD_EXIT_POSTED,
               "ExitKind and enum vcpud_exit_kind differ");
_Static_assert((int)vcpud_v1_CancelReason_CANCEL_REASON_TIMEOUT ==
                   VCPUD_CANCEL_TIMEOUT,
               "CancelReason and enum vcpud_cancel_reason differ");

/* Field copies (include/vcpud/regs.h lists the fields); (out) and (in)
 * are the parameters of the functions below. */
#define COPY(f) out->f = in->f;
#define COPY_TO_PB(f, type) out->f = in->f;
#define COPY_FROM_PB(f, type) out->f = (type)in->f;

void vcpud_pb_from_regs(vcpud_v1_Regs *out, const struct vcpud_regs *in)
{
    VCPUD_REGS_FIELDS(COPY)
}

void vcpud_pb_to_regs(struct vcpud_regs *out, const vcpud_v1_Regs *in)
{
    VCPUD_REGS_FIELDS(COPY)
}

static void seg_from(vcpud_v1_Segment *out, const struct vcpud_segment *in)
{
    VCPUD_SEGMENT_FIELDS(COPY_TO_PB)
}

static int seg_to(struct vcpud_segment *out, const vcpud_v1_Segment *in,
                  const char *name, struct vcpud_err *err)
{
    if (in->selector > 0xffff || in->type > 0xf || in->dpl > 3)
        return vcpud_err_set(err, -EINVAL,
                             "segment %s: selector 0x%x, type %u or dpl %u "
                             "out of range (16, 4 and 2 bits)",
                             name, in->selector, in->type, in->dpl);
    VCPUD_SEGMENT_FIELDS(COPY_FROM_PB)
    return 0;
}

void vcpud_pb_from_sregs(vcpud_v1_SpecialRegs *out,
                         const struct vcpud_sregs *in)
{
    memset(out, 0, sizeof(*out));
#define SEG_FROM(n)                                                            \
    out->has_##n = true;                                                       \
    seg_from(&out->n, &in->n);
    VCPUD_SREGS_SEGMENTS(SEG_FROM)
#undef SEG_FROM
    out->has_gdt = out->has_idt = true;
    out->gdt = (vcpud_v1_DescriptorTable){in->gdt.base, in->gdt.limit};
    out->idt = (vcpud_v1_DescriptorTable){in->idt.base, in->idt.limit};
    VCPUD_SREGS_SCALARS(COPY)
}

int vcpud_pb_to_sregs(struct vcpud_sregs *out, const vcpud_v1_SpecialRegs *in,
                      struct vcpud_err *err)
{
    int rc;
    memset(out, 0, sizeof(*out));
#define SEG_TO(n)                                                              \
    if ((rc = seg_to(&out->n, &in->n, #n, err)) < 0)                           \
        return rc;
    VCPUD_SREGS_SEGMENTS(SEG_TO)
#undef SEG_TO
    if (in->gdt.limit > 0xffff || in->idt.limit > 0xffff)
        return vcpud_err_set(err, -EINVAL,
                             "GDT/IDT limit 0x%x/0x%x is wider than 16 bits",
                             in->gdt.limit, in->idt.limit);
    out->gdt = (struct vcpud_dtable){in->gdt.base, (uint16_t)in->gdt.limit};
    out->idt = (struct vcpud_dtable){in->idt.base, (uint16_t)in->idt.limit};
    VCPUD_SREGS_SCALARS(COPY)
    return 0;
}

void vcpud_pb_from_exit(vcpud_v1_Exit *out, const struct vcpud_exit *in)
{
    /* Not the whole message: its 1024 posted slots are 32 KB, and only
     * those below posted_count are ever read. */
    memset(&out->detail, 0, sizeof(out->detail));
    out->which_detail = 0;
    out->kind = (vcpud_v1_ExitKind)in->kind;
    uint32_t n = in->nposted < VCPUD_POSTED_MAX ? in->nposted
                                                : VCPUD_POSTED_MAX;
    for (uint32_t i = 0; i < n; i++)
        out->posted[i] = (vcpud_v1_PostedWrite){
            .pio = in->posted[i].pio,
            .address = in->posted[i].addr,
            .size = in->posted[i].size,
            .data = in->posted[i].data,
        };
    out->posted_count = (pb_size_t)n;
    switch (in->kind) {
    case VCPUD_EXIT_IO_OUT:
    case VCPUD_EXIT_IO_IN: {
        vcpud_v1_IoExit *io = &out->detail.io;
        out->which_detail = vcpud_v1_Exit_io_tag;
        io->port = in->u.io.port;
        io->size = in->u.io.size;
        io->count = in->u.io.count;
        if (in->kind == VCPUD_EXIT_IO_OUT) {
            io->data.size = (pb_size_t)(in->u.io.size * in->u.io.count);
            memcpy(io->data.bytes, in->u.io.data, io->data.size);
        }
        break;
    }
    case VCPUD_EXIT_MMIO_WRITE:
    case VCPUD_EXIT_MMIO_READ:
        out->which_detail = vcpud_v1_Exit_mmio_tag;
        out->detail.mmio = (vcpud_v1_MmioExit){
            .address = in->u.mmio.addr,
            .size = in->u.mmio.size,
            .data = in->u.mmio.data,
        };
        break;
    case VCPUD_EXIT_FAIL_ENTRY:
        out->which_detail = vcpud_v1_Exit_fail_entry_tag;
        out->detail.fail_entry.hardware_reason = in->u.fail_entry.hw_reason;
        out->detail.fail_entry.cpu = in->u.fail_entry.cpu;
        break;
    case VCPUD_EXIT_INTERNAL_ERROR:
        out->which_detail = vcpud_v1_Exit_internal_error_tag;
        out->detail.internal_error.suberror = in->u.internal.suberror;
        out->detail.internal_error.data_count =
            (pb_size_t)in->u.internal.ndata;
        memcpy(out->detail.internal_error.data, in->u.internal.data,
               in->u.internal.ndata * sizeof(uint64_t));
        break;
    case VCPUD_EXIT_DEBUG:
        out->which_detail = vcpud_v1_Exit_debug_tag;
        out->detail.debug = (vcpud_v1_DebugExit){
            .exception = in->u.debug.exception,
            .pc = in->u.debug.pc,
            .dr6 = in->u.debug.dr6,
            .dr7 = in->u.debug.dr7,
        };
        break;
    case VCPUD_EXIT_CANCELED:
        out->which_detail = vcpud_v1_Exit_cancel_reason_tag;
        out->detail.cancel_reason =
            (vcpud_v1_CancelReason)in->u.canceled.reason;
        break;
    case VCPUD_EXIT_UNKNOWN:
        out->which_detail = vcpud_v1_Exit_unknown_reason_tag;
        out->detail.unknown_reason = in->u.unknown.reason;
        break;
    default:
        break;
    }
}

static int bad_exit(struct vcpud_err *err, const char *why)
{
    return vcpud_err_set(err, -EINVAL, "malformed exit from server: %s", why);
}

int vcpud_pb_to_exit(struct vcpud_exit *out, const vcpud_v1_Exit *in,
                     struct vcpud_posted_write *posted, uint32_t posted_cap,
                     struct vcpud_err *err)
{
    memset(out, 0, offsetof(struct vcpud_exit, u));
    if (in->kind < vcpud_v1_ExitKind_EXIT_KIND_IO_OUT ||
        in->kind > vcpud_v1_ExitKind_EXIT_KIND_POSTED)
        return bad_exit(err, "unknown kind");
    if (in->posted_count > posted_cap)
        return vcpud_err_set(err, -E2BIG,
                             "the exit carries %u posted writes, the buffer "
                             "holds %u (give VCPUD_POSTED_MAX)",
                             (unsigned)in->posted_count, posted_cap);
    for (pb_size_t i = 0; i < in->posted_count; i++) {
        const vcpud_v1_PostedWrite *w = &in->posted[i];
        if (w->size < 1 || w->size > 8)
            return bad_exit(err, "posted write of a size not in 1..8");
        posted[i] = (struct vcpud_posted_write){
            .addr = w->address, .data = w->data, .size = (uint8_t)w->size,
            .pio = w->pio};
    }
    out->nposted = in->posted_count;
    out->posted = posted;
    out->kind = (enum vcpud_exit_kind)in->kind;
    switch (out->kind) {
    case VCPUD_EXIT_IO_OUT:
    case VCPUD_EXIT_IO_IN: {
        const vcpud_v1_IoExit *io = &in->detail.io;
        if (in->which_detail != vcpud_v1_Exit_io_tag || io->port > 0xffff ||
            (io->size != 1 && io->size != 2 && io->size != 4) ||
            io->count == 0 ||
            (uint64_t)io->size * io->count > VCPUD_IO_DATA_MAX)
            return bad_exit(err, "io exit out of range");
        if (out->kind == VCPUD_EXIT_IO_OUT &&
            io->data.size != io->size * io->count)
            return bad_exit(err, "io-out data length disagrees with count");
        out->u.io.port = (uint16_t)io->port;
        out->u.io.size = (uint8_t)io->size;
        out->u.io.count = io->count;
        if (out->kind == VCPUD_EXIT_IO_OUT)
            memcpy(out->u.io.data, io->data.bytes, io->data.size);
        break;
    }
    case VCPUD_EXIT_MMIO_WRITE:
    case VCPUD_EXIT_MMIO_READ:
        if (in->which_detail != vcpud_v1_Exit_mmio_tag ||
            in->detail.mmio.size < 1 || in->detail.mmio.size > 8)
            return bad_exit(err, "mmio exit out of range");
        out->u.mmio.addr = in->detail.mmio.address;
        out->u.mmio.size = (uint8_t)in->detail.mmio.size;
        out->u.mmio.data = in->detail.mmio.data;
        break;
    case VCPUD_EXIT_FAIL_ENTRY:
        if (in->which_detail != vcpud_v1_Exit_fail_entry_tag)
            return bad_exit(err, "fail-entry exit without its detail");
        out->u.fail_entry.hw_reason = in->detail.fail_entry.hardware_reason;
        out->u.fail_entry.cpu = in->detail.fail_entry.cpu;
        break;
    case VCPUD_EXIT_INTERNAL_ERROR:
        /* The detail is a union: trust no count read through another
         * member. */
        if (in->which_detail != vcpud_v1_Exit_internal_error_tag ||
            in->detail.internal_error.data_count > VCPUD_INTERNAL_DATA_MAX)
            return bad_exit(err, "internal-error exit out of range");
        out->u.internal.suberror = in->detail.internal_error.suberror;
        out->u.internal.ndata = in->detail.internal_error.data_count;
        memcpy(out->u.internal.data, in->detail.internal_error.data,
               out->u.internal.ndata * sizeof(uint64_t));
        break;
    case VCPUD_EXIT_DEBUG:
        if (in->which_detail != vcpud_v1_Exit_debug_tag)
            return bad_exit(err, "debug exit without its detail");
        out->u.debug.exception = in->detail.debug.exception;
        out->u.debug.pc = in->detail.debug.pc;
        out->u.debug.dr6 = in->detail.debug.dr6;
        out->u.debug.dr7 = in->detail.debug.dr7;
        break;
    case VCPUD_EXIT_CANCELED:
        if (in->which_detail != vcpud_v1_Exit_cancel_reason_tag)
            return bad_exit(err, "canceled exit without its reason");
        out->u.canceled.reason =
            (enum vcpud_cancel_reason)in->detail.cancel_reason;
        break;
    case VCPUD_EXIT_UNKNOWN:
        if (in->which_detail != vcpud_v1_Exit_unknown_reason_tag)
            return bad_exit(err, "unknown exit without its reason");
        out->u.unknown.reason = in->detail.unknown_reason;
        break;
    default:
        break;
    }
    return 0;
}
