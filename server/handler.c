/* handler.c: decode, authenticate, look up – shared by every method. */
#include <errno.h>
#include <string.h>

#include "handler.h"
#include "status.h"

bool handler_auth(struct handler *h, struct rpc_call *call)
{
    memset(h, 0, sizeof(*h));
    h->call = call;
    h->app = rpc_call_app(call);
    atomic_fetch_add(&h->app->calls, 1);
    char header[320];
    bool has = rpc_call_metadata(call, "authorization", header,
                                 sizeof(header));
    h->tenant = auth_tenant(h->app->auth, has ? header : NULL);
    if (!h->tenant) {
        atomic_fetch_add(&h->app->failed_calls, 1);
        rpc_call_finish(call, GRPC_STATUS_UNAUTHENTICATED,
                        has ? "unknown token"
                            : "missing 'authorization: Bearer <token>'",
                        -EACCES);
        return false;
    }
    return true;
}

bool handler_start(struct handler *h, struct rpc_call *call,
                   const uint8_t *buf, size_t len, const pb_msgdesc_t *desc,
                   void *msg)
{
    if (!handler_auth(h, call))
        return false;
    if (vcpud_pb_decode(desc, buf, len, msg, &h->err) < 0) {
        atomic_fetch_add(&h->app->failed_calls, 1);
        status_fail(call, &h->err);
        return false;
    }
    return true;
}

static bool lookup_failed(struct handler *h)
{
    atomic_fetch_add(&h->app->failed_calls, 1);
    status_fail(h->call, &h->err);
    handler_end(h);
    return false;
}

bool handler_vm(struct handler *h, uint32_t vm_id)
{
    h->vm = registry_get(h->app->reg, h->tenant, vm_id, &h->err);
    return h->vm ? true : lookup_failed(h);
}

bool handler_vcpu(struct handler *h, uint32_t vm_id, uint32_t vcpu_id)
{
    if (!handler_vm(h, vm_id))
        return false;
    h->host = registry_host(h->vm, vcpu_id, &h->err);
    if (!h->host)
        return lookup_failed(h);
    h->cpu = host_begin(h->host);
    if (!h->cpu) {
        vcpud_err_set(&h->err, -ENOENT, "vCPU %u of VM %u was destroyed",
                      vcpu_id, vm_id);
        return lookup_failed(h);
    }
    return true;
}

void handler_end(struct handler *h)
{
    if (h->cpu)
        host_end(h->host);
    if (h->host)
        host_unref(h->host);
    if (h->vm)
        registry_put(h->app->reg, h->vm);
    h->cpu = NULL;
    h->host = NULL;
    h->vm = NULL;
}

void handler_finish(struct handler *h, int rc, const pb_msgdesc_t *desc,
                    const void *msg)
{
    handler_end(h);
    if (rc < 0) {
        atomic_fetch_add(&h->app->failed_calls, 1);
        status_fail(h->call, &h->err);
    } else {
        rpc_call_reply(h->call, desc, msg);
    }
}
