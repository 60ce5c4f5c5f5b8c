/* client_memory.c: memory regions, and guest memory streamed both ways. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "vcpud/v1/vcpud.pb.h"

#define CHUNK_MAX sizeof(((vcpud_v1_WriteMemoryChunk *)0)->data.bytes)
#define READ_MAX (64u << 20) /* ReadMemoryRequest.length */

_Static_assert(CHUNK_MAX == 32768 &&
                   sizeof(((vcpud_v1_MemoryChunk *)0)->data.bytes) == 32768,
               "vcpud.options: memory chunks are 32 KiB");

int vcpud_client_add_region(struct vcpud_client *c, uint32_t vm_id,
                            uint32_t slot, uint64_t gpa, uint64_t size,
                            bool read_only, struct vcpud_client_status *st)
{
    if (!c)
        return vcpud__bad_arg(st, "add-region: no client");
    vcpud_v1_AddMemoryRegionRequest req = {
        .vm_id = vm_id,
        .has_region = true,
        .region = {.slot = slot,
                   .guest_phys_addr = gpa,
                   .size = size,
                   .read_only = read_only},
    };
    return vcpud__unary(c, VCPUD__M_ADD_MEMORY_REGION, 0,
                        vcpud_v1_AddMemoryRegionRequest_fields, &req, NULL,
                        NULL, st);
}

int vcpud_client_remove_region(struct vcpud_client *c, uint32_t vm_id,
                               uint32_t slot, struct vcpud_client_status *st)
{
    if (!c)
        return vcpud__bad_arg(st, "remove-region: no client");
    vcpud_v1_RemoveMemoryRegionRequest req = {.vm_id = vm_id, .slot = slot};
    return vcpud__unary(c, VCPUD__M_REMOVE_MEMORY_REGION, 0,
                        vcpud_v1_RemoveMemoryRegionRequest_fields, &req, NULL,
                        NULL, st);
}

/* [gpa, gpa + len) must not wrap: the chunks' addresses are computed. */
static bool range_wraps(uint64_t gpa, size_t len)
{
    return len && (uint64_t)len - 1 > UINT64_MAX - gpa;
}

int vcpud_client_write_memory(struct vcpud_client *c, uint32_t vm_id,
                              uint64_t gpa, const void *buf, size_t len,
                              struct vcpud_client_status *st)
{
    if (!c || (len && !buf))
        return vcpud__bad_arg(st, "write-memory: no client or no buffer");
    if (range_wraps(gpa, len))
        return vcpud__bad_arg(st,
                              "write-memory: 0x%" PRIx64 " + %zu wraps "
                              "around the address space",
                              gpa, len);
    if (len == 0)
        return vcpud__ok(st);
    vcpud_v1_WriteMemoryChunk *chunk = malloc(sizeof(*chunk));
    if (!chunk)
        return vcpud__fail(st, GRPC_STATUS_RESOURCE_EXHAUSTED, -ENOMEM,
                           "out of memory for a memory chunk");
    struct vcpud__call call;
    int rc = vcpud__call_start(&call, c, VCPUD__M_WRITE_MEMORY, 0, st);
    if (rc < 0) {
        free(chunk);
        return rc;
    }
    const uint8_t *src = buf;
    for (size_t off = 0; off < len && rc == 0 && !call.over;) {
        size_t n = len - off < CHUNK_MAX ? len - off : CHUNK_MAX;
        chunk->vm_id = vm_id;
        chunk->guest_phys_addr = gpa + off;
        chunk->data.size = (pb_size_t)n;
        memcpy(chunk->data.bytes, src + off, n);
        rc = vcpud__call_send(&call, vcpud_v1_WriteMemoryChunk_fields, chunk,
                              false, st);
        off += n;
    }
    free(chunk);
    vcpud_v1_WriteMemoryResponse resp = vcpud_v1_WriteMemoryResponse_init_zero;
    int got = 0;
    if (rc == 0)
        got = vcpud__call_recv(&call, vcpud_v1_WriteMemoryResponse_fields,
                               &resp, st);
    rc = vcpud__call_end(&call, got < 0 ? got : rc, st);
    if (rc < 0)
        return rc;
    if (got != 1)
        return vcpud__bad_reply(st, "WriteMemory: the server sent no "
                                    "response");
    if (resp.bytes_written != len)
        return vcpud__bad_reply(st,
                                "WriteMemory: the server wrote %" PRIu64
                                " of %zu bytes and reported success",
                                resp.bytes_written, len);
    return 0;
}

/* Take the chunks in the order the contract promises: each must begin
 * where the last ended, so that none can land outside (buf) or leave a
 * hole the caller would read as guest memory. */
static int read_chunks(struct vcpud__call *call, uint64_t gpa, uint8_t *buf,
                       size_t len, size_t *done, struct vcpud_client_status *st)
{
    vcpud_v1_MemoryChunk *chunk = malloc(sizeof(*chunk));
    if (!chunk)
        return vcpud__fail(st, GRPC_STATUS_RESOURCE_EXHAUSTED, -ENOMEM,
                           "out of memory for a memory chunk");
    int rc;
    while ((rc = vcpud__call_recv(call, vcpud_v1_MemoryChunk_fields, chunk,
                                  st)) > 0) {
        uint64_t at = chunk->guest_phys_addr;
        size_t n = chunk->data.size;
        if (at != gpa + *done || n > len - *done) {
            rc = vcpud__bad_reply(st,
                                  "ReadMemory: chunk [0x%" PRIx64
                                  ", +%zu) is not the next %zu bytes "
                                  "from 0x%" PRIx64,
                                  at, n, len - *done, gpa + *done);
            break;
        }
        memcpy(buf + *done, chunk->data.bytes, n);
        *done += n;
    }
    free(chunk);
    return rc;
}

int vcpud_client_read_memory(struct vcpud_client *c, uint32_t vm_id,
                             uint64_t gpa, void *buf, size_t len,
                             struct vcpud_client_status *st)
{
    if (!c || (len && !buf))
        return vcpud__bad_arg(st, "read-memory: no client or no buffer");
    if (len > READ_MAX)
        return vcpud__bad_arg(st,
                              "read-memory: %zu bytes is over the %u "
                              "a call may read",
                              len, READ_MAX);
    if (range_wraps(gpa, len))
        return vcpud__bad_arg(st,
                              "read-memory: 0x%" PRIx64 " + %zu wraps "
                              "around the address space",
                              gpa, len);
    if (len == 0)
        return vcpud__ok(st);
    struct vcpud__call call;
    int rc = vcpud__call_start(&call, c, VCPUD__M_READ_MEMORY, 0, st);
    if (rc < 0)
        return rc;
    vcpud_v1_ReadMemoryRequest req = {
        .vm_id = vm_id, .guest_phys_addr = gpa, .length = len};
    size_t done = 0;
    rc = vcpud__call_send(&call, vcpud_v1_ReadMemoryRequest_fields, &req, true,
                          st);
    if (rc == 0)
        rc = read_chunks(&call, gpa, buf, len, &done, st);
    rc = vcpud__call_end(&call, rc, st);
    if (rc == 0 && done != len)
        return vcpud__bad_reply(st,
                                "ReadMemory: the server sent %zu of %zu "
                                "bytes and reported success",
                                done, len);
    return rc;
}

static int posted(struct vcpud_client *c, enum vcpud__method m,
                  uint32_t vm_id, bool pio, uint64_t start, uint64_t len,
                  struct vcpud_client_status *st)
{
    if (!c)
        return vcpud__bad_arg(st, "posted range: no client");
    vcpud_v1_PostedRange req = {
        .vm_id = vm_id, .pio = pio, .start = start, .length = len};
    return vcpud__unary(c, m, 0, vcpud_v1_PostedRange_fields, &req, NULL,
                        NULL, st);
}

int vcpud_client_add_posted(struct vcpud_client *c, uint32_t vm_id, bool pio,
                            uint64_t start, uint64_t len,
                            struct vcpud_client_status *st)
{
    return posted(c, VCPUD__M_ADD_POSTED_RANGE, vm_id, pio, start, len, st);
}

int vcpud_client_remove_posted(struct vcpud_client *c, uint32_t vm_id,
                               bool pio, uint64_t start, uint64_t len,
                               struct vcpud_client_status *st)
{
    return posted(c, VCPUD__M_REMOVE_POSTED_RANGE, vm_id, pio, start, len,
                  st);
}
