/* pending.c: bookkeeping for exits that wait for the controller's answer. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "pending.h"
#include "vcpud/snapshot.h"

void vcpud__pending_clear(struct vcpud_pending *p)
{
    p->kind = VCPUD_EXIT_NONE;
    p->have_result = false;
    p->replay = false;
}

void vcpud__pending_from_exit(struct vcpud_pending *p,
                              const struct vcpud_exit *exit)
{
    vcpud__pending_clear(p);
    if (exit->kind == VCPUD_EXIT_IO_IN) {
        p->kind = exit->kind;
        p->port = exit->u.io.port;
        p->size = exit->u.io.size;
        p->count = exit->u.io.count;
    } else if (exit->kind == VCPUD_EXIT_MMIO_READ) {
        p->kind = exit->kind;
        p->addr = exit->u.mmio.addr;
        p->size = exit->u.mmio.size;
        p->count = 1;
    }
}

size_t vcpud__pending_data_len(const struct vcpud_pending *p)
{
    return p->kind == VCPUD_EXIT_IO_IN ? (size_t)p->count * p->size : 0;
}

void vcpud__pending_describe(const struct vcpud_pending *p, char *buf,
                             size_t len)
{
    if (p->kind == VCPUD_EXIT_IO_IN)
        snprintf(buf, len, "io-in on port 0x%x (size %u, count %u)", p->port,
                 p->size, p->count);
    else if (p->kind == VCPUD_EXIT_MMIO_READ)
        snprintf(buf, len, "mmio-read at 0x%" PRIx64 " (size %u)", p->addr,
                 p->size);
    else
        snprintf(buf, len, "nothing");
}

static bool fits(uint64_t value, unsigned size)
{
    return size >= 8 || value >> (8 * size) == 0;
}

static int no_such_exit(const struct vcpud_pending *p, const char *wanted,
                        struct vcpud_err *err)
{
    char what[96];
    vcpud__pending_describe(p, what, sizeof(what));
    return vcpud_err_set(err, -EPROTO,
                         "no %s exit waits for a result (pending: %s)", wanted,
                         what);
}

int vcpud__pending_set_io(struct vcpud_pending *p, const uint64_t *values,
                          uint32_t count, struct vcpud_err *err)
{
    if (p->kind != VCPUD_EXIT_IO_IN)
        return no_such_exit(p, "io-in", err);
    if (count != p->count)
        return vcpud_err_set(err, -EINVAL,
                             "io-in on port 0x%x wants %u value(s), got %u",
                             p->port, p->count, count);
    for (uint32_t i = 0; i < count; i++) {
        if (!fits(values[i], p->size))
            return vcpud_err_set(err, -EINVAL,
                                 "value %u (0x%" PRIx64
                                 ") does not fit the %u-byte io-in on "
                                 "port 0x%x",
                                 i, values[i], p->size, p->port);
    }
    for (uint32_t i = 0; i < count; i++) {
        for (unsigned b = 0; b < p->size; b++)
            p->data[i * p->size + b] = (uint8_t)(values[i] >> (8 * b));
    }
    p->have_result = true;
    return 0;
}

int vcpud__pending_set_mmio(struct vcpud_pending *p, uint64_t value,
                            struct vcpud_err *err)
{
    if (p->kind != VCPUD_EXIT_MMIO_READ)
        return no_such_exit(p, "mmio-read", err);
    if (!fits(value, p->size))
        return vcpud_err_set(err, -EINVAL,
                             "value 0x%" PRIx64 " does not fit the %u-byte "
                             "mmio-read at 0x%" PRIx64,
                             value, p->size, p->addr);
    p->value = value;
    p->have_result = true;
    return 0;
}

int vcpud__pending_check_run(const struct vcpud_pending *p, uint32_t vcpu_id,
                             struct vcpud_err *err)
{
    if (p->kind == VCPUD_EXIT_NONE || p->have_result)
        return 0;
    char what[96];
    vcpud__pending_describe(p, what, sizeof(what));
    return vcpud_err_set(err, -EPROTO,
                         "vCPU %u waits for the result of its %s: call %s "
                         "before running it again",
                         vcpu_id, what,
                         p->kind == VCPUD_EXIT_IO_IN ? "set_io_result"
                                                     : "set_mmio_result");
}

bool vcpud__pending_matches(const struct vcpud_pending *p,
                            const struct vcpud_exit *exit)
{
    if (exit->kind != p->kind)
        return false;
    if (p->kind == VCPUD_EXIT_IO_IN)
        return exit->u.io.port == p->port && exit->u.io.size == p->size &&
               exit->u.io.count == p->count;
    if (p->kind == VCPUD_EXIT_MMIO_READ)
        return exit->u.mmio.addr == p->addr && exit->u.mmio.size == p->size;
    return false;
}

/*
 * Section body: u32 kind, u32 size, u32 count, u32 port, u64 addr,
 * u32 have_result, u32 0, u64 mmio value, then count * size bytes of IO
 * result when have_result is set for an io-in.
 */
uint32_t vcpud__pending_encode(const struct vcpud_pending *p, uint8_t *out)
{
    memset(out, 0, VCPUD_PENDING_SECTION_FIXED);
    vcpud_put_u32(out + 0, (uint32_t)p->kind);
    vcpud_put_u32(out + 4, p->size);
    vcpud_put_u32(out + 8, p->count);
    vcpud_put_u32(out + 12, p->port);
    vcpud_put_u64(out + 16, p->addr);
    vcpud_put_u32(out + 24, p->have_result);
    vcpud_put_u64(out + 32, p->value);
    uint32_t len = VCPUD_PENDING_SECTION_FIXED;
    if (p->have_result) {
        size_t n = vcpud__pending_data_len(p);
        memcpy(out + len, p->data, n);
        len += (uint32_t)n;
    }
    return len;
}

static int bad(struct vcpud_err *err, const char *what)
{
    return vcpud_err_set(err, -EBADMSG, "snapshot section 'pending': %s", what);
}

int vcpud__pending_decode(struct vcpud_pending *p, const uint8_t *body,
                          uint32_t len, struct vcpud_err *err)
{
    struct vcpud_pending d = {0};

    if (len < VCPUD_PENDING_SECTION_FIXED)
        return bad(err, "shorter than its fixed part");
    d.kind = (enum vcpud_exit_kind)vcpud_get_u32(body);
    uint32_t size = vcpud_get_u32(body + 4);
    uint32_t count = vcpud_get_u32(body + 8);
    uint32_t port = vcpud_get_u32(body + 12);
    d.addr = vcpud_get_u64(body + 16);
    uint32_t have = vcpud_get_u32(body + 24);
    d.value = vcpud_get_u64(body + 32);
    if (vcpud_get_u32(body + 28) != 0 || have > 1)
        return bad(err, "reserved bits set");
    d.have_result = have;

    switch (d.kind) {
    case VCPUD_EXIT_NONE:
        if (have || len != VCPUD_PENDING_SECTION_FIXED)
            return bad(err, "result stored without a pending exit");
        break;
    case VCPUD_EXIT_IO_IN:
        if (size != 1 && size != 2 && size != 4)
            return bad(err, "io-in size is not 1, 2 or 4");
        if (count == 0 || (uint64_t)count * size > VCPUD_IO_DATA_MAX)
            return bad(err, "io-in count out of range");
        if (port > 0xffff)
            return bad(err, "port above 0xffff");
        break;
    case VCPUD_EXIT_MMIO_READ:
        if (size < 1 || size > 8 || count != 1)
            return bad(err, "mmio-read size is not 1..8");
        if (!fits(d.value, size))
            return bad(err, "mmio result wider than the access");
        break;
    default:
        return bad(err, "kind is not io-in or mmio-read");
    }
    d.size = (uint8_t)size;
    d.count = count;
    d.port = (uint16_t)port;

    size_t want = VCPUD_PENDING_SECTION_FIXED;
    if (have)
        want += vcpud__pending_data_len(&d);
    if (len != want)
        return bad(err, "length does not match the access it describes");
    if (have)
        memcpy(d.data, body + VCPUD_PENDING_SECTION_FIXED,
               vcpud__pending_data_len(&d));
    d.replay = d.kind != VCPUD_EXIT_NONE;
    *p = d;
    return 0;
}
