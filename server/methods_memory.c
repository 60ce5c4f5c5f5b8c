/* methods_memory.c: guest memory in chunks – a client stream for writes,
 * a server stream for reads paced by what the peer has taken. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handler.h"
#include "methods.h"
#include "status.h"

#define CHUNK 32768u
#define READ_MAX (64ull << 20)
#define READ_AHEAD 2 /* chunks queued ahead of the network */

struct mem_ctx {
    char tenant[TENANT_MAX];
    bool authed;
    bool done;
    uint32_t vm_id;
    uint64_t next, end; /* reads: what is left */
    uint64_t written;   /* writes: bytes so far */
    int in_flight;
    /* Reads are advanced from the request handler and from send
     * completions on other threads; recursive because a send to a broken
     * call reports back on the sending thread. */
    pthread_mutex_t lock;
};

static struct mem_ctx *ctx_of(struct rpc_call *call)
{
    struct mem_ctx *c = rpc_call_data(call);
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c)
            return NULL;
        pthread_mutexattr_t attr;
        pthread_mutexattr_init(&attr);
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&c->lock, &attr);
        pthread_mutexattr_destroy(&attr);
        rpc_call_set_data(call, c);
    }
    return c;
}

void m_memory_done(struct rpc_call *call)
{
    struct mem_ctx *c = rpc_call_data(call);
    if (c) {
        pthread_mutex_destroy(&c->lock);
        free(c);
    }
}

static void fail(struct rpc_call *call, struct mem_ctx *c,
                 const struct vcpud_err *err)
{
    struct app *app = rpc_call_app(call);
    atomic_fetch_add(&app->failed_calls, 1);
    c->done = true;
    status_fail(call, err);
}

void m_write_memory(struct rpc_call *call, const uint8_t *buf, size_t len)
{
    struct mem_ctx *c = ctx_of(call);
    if (!c) {
        rpc_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                        "server out of memory", -ENOMEM);
        return;
    }
    if (c->done)
        return;
    struct handler h;
    if (!c->authed) {
        if (!handler_auth(&h, call)) {
            c->done = true;
            return;
        }
        snprintf(c->tenant, sizeof(c->tenant), "%s", h.tenant);
        c->authed = true;
    }
    struct app *app = rpc_call_app(call);
    if (!buf) { /* half-close: everything arrived */
        c->done = true;
        vcpud_v1_WriteMemoryResponse resp = {.bytes_written = c->written};
        rpc_call_reply(call, vcpud_v1_WriteMemoryResponse_fields, &resp);
        return;
    }
    struct vcpud_err err = {0};
    vcpud_v1_WriteMemoryChunk *chunk = malloc(sizeof(*chunk));
    if (!chunk) {
        vcpud_err_set(&err, -ENOMEM, "server out of memory");
        fail(call, c, &err);
        return;
    }
    *chunk = (vcpud_v1_WriteMemoryChunk)vcpud_v1_WriteMemoryChunk_init_zero;
    int rc = vcpud_pb_decode(vcpud_v1_WriteMemoryChunk_fields, buf, len,
                             chunk, &err);
    if (rc == 0) {
        struct vm_entry *e = registry_get(app->reg, c->tenant, chunk->vm_id,
                                          &err);
        rc = e ? vcpud_vm_write(e->vm, chunk->guest_phys_addr,
                                chunk->data.bytes, chunk->data.size, &err)
               : -ENOENT;
        if (e)
            registry_put(app->reg, e);
    }
    if (rc == 0)
        c->written += chunk->data.size;
    free(chunk);
    if (rc < 0)
        fail(call, c, &err);
}

/* Queue chunks until READ_AHEAD are in flight or the range is done. */
static void read_more(struct rpc_call *call, struct mem_ctx *c)
{
    struct app *app = rpc_call_app(call);
    while (!c->done && c->in_flight < READ_AHEAD && c->next < c->end) {
        struct vcpud_err err = {0};
        vcpud_v1_MemoryChunk *m = malloc(sizeof(*m));
        if (!m) {
            vcpud_err_set(&err, -ENOMEM, "server out of memory");
            fail(call, c, &err);
            return;
        }
        uint64_t n = c->end - c->next < CHUNK ? c->end - c->next : CHUNK;
        m->guest_phys_addr = c->next;
        m->data.size = (pb_size_t)n;
        struct vm_entry *e = registry_get(app->reg, c->tenant, c->vm_id, &err);
        int rc = e ? vcpud_vm_read(e->vm, c->next, m->data.bytes, n, &err)
                   : -ENOENT;
        if (e)
            registry_put(app->reg, e);
        if (rc == 0) {
            c->next += n;
            c->in_flight++;
            rc = rpc_call_send(call, vcpud_v1_MemoryChunk_fields, m);
        }
        free(m);
        if (rc < 0) {
            if (!c->done)
                fail(call, c, &err);
            return;
        }
    }
    if (!c->done && c->next == c->end) {
        c->done = true;
        rpc_call_finish(call, GRPC_STATUS_OK, "", 0);
    }
}

void m_read_memory(struct rpc_call *call, const uint8_t *buf, size_t len)
{
    struct handler h;
    vcpud_v1_ReadMemoryRequest req = vcpud_v1_ReadMemoryRequest_init_zero;
    if (!handler_start(&h, call, buf, len, vcpud_v1_ReadMemoryRequest_fields,
                       &req) ||
        !handler_vm(&h, req.vm_id))
        return;
    handler_end(&h);
    struct mem_ctx *c = ctx_of(call);
    if (!c) {
        rpc_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                        "server out of memory", -ENOMEM);
        return;
    }
    if (req.length == 0 || req.length > READ_MAX ||
        req.guest_phys_addr + req.length < req.guest_phys_addr) {
        c->done = true;
        status_failf(call, GRPC_STATUS_INVALID_ARGUMENT, -EINVAL,
                     "length %llu is not in 1..%llu (64 MiB per call)",
                     (unsigned long long)req.length, READ_MAX);
        return;
    }
    snprintf(c->tenant, sizeof(c->tenant), "%s", h.tenant);
    c->vm_id = req.vm_id;
    c->next = req.guest_phys_addr;
    c->end = req.guest_phys_addr + req.length;
    pthread_mutex_lock(&c->lock);
    read_more(call, c);
    pthread_mutex_unlock(&c->lock);
}

void m_read_memory_sent(struct rpc_call *call, bool ok)
{
    struct mem_ctx *c = rpc_call_data(call);
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->in_flight--;
    if (!ok)
        c->done = true;
    read_more(call, c);
    pthread_mutex_unlock(&c->lock);
}
