/* handler.h: the steps every RPC handler shares – decode, authenticate,
 * find the VM and vCPU – so each method is only its own logic. */
#ifndef VCPUD_SERVER_HANDLER_H
#define VCPUD_SERVER_HANDLER_H

#include <stdbool.h>

#include "app.h"
#include "pb_io.h"

struct handler {
    struct rpc_call *call;
    struct app *app;
    const char *tenant;
    struct vm_entry *vm;
    struct vcpu_host *host;
    struct vcpud_vcpu *cpu; /* held via host_begin until handler_end */
    struct vcpud_err err;
};

/* Decode the request into (msg) (decoding sets every field: it need not
 * be initialised) and authenticate.
 * On failure the call is finished and false returned. */
bool handler_start(struct handler *h, struct rpc_call *call,
                   const uint8_t *buf, size_t len, const pb_msgdesc_t *desc,
                   void *msg);

/* Authenticate a call whose request is handled elsewhere. */
bool handler_auth(struct handler *h, struct rpc_call *call);

/* Look up VM (vm_id) of the caller; NOT_FOUND finishes the call. */
bool handler_vm(struct handler *h, uint32_t vm_id);

/* Look up vCPU (vcpu_id) of VM (vm_id) and hold it for use. */
bool handler_vcpu(struct handler *h, uint32_t vm_id, uint32_t vcpu_id);

/* Release whatever the lookups took. */
void handler_end(struct handler *h);

/* End the call: reply with (msg) when rc is 0, else fail with h->err. Then
 * handler_end(). */
void handler_finish(struct handler *h, int rc, const pb_msgdesc_t *desc,
                    const void *msg);

#endif
