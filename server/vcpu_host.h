/* vcpu_host.h: a vCPU served over gRPC – its own thread runs the guest so
 * no completion-queue thread ever waits on it, and a Run call is answered
 * from that thread when the exit arrives. */
#ifndef VCPUD_SERVER_VCPU_HOST_H
#define VCPUD_SERVER_VCPU_HOST_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "rpc.h"
#include "vcpud/v1/vcpud.pb.h"
#include "vcpud.h"

struct vcpu_host;

/*
 * Create vCPU (id) in (vm) and the thread that will run it. On success
 * *out holds one reference, owned by the caller (host_unref()).
 */
int host_create(struct vcpud_vm *vm, uint32_t vm_id, uint32_t id,
                struct vcpu_host **out, struct vcpud_err *err);

/* Cancel whatever runs, stop the thread and destroy the core vCPU. Calls
 * still holding the host see it as gone. */
void host_stop(struct vcpu_host *h);

void host_ref(struct vcpu_host *h);
void host_unref(struct vcpu_host *h);

/*
 * Use the core vCPU for a short synchronous operation: returns it with the
 * host's state lock shared, or NULL (lock not held) once stopped. Pair with
 * host_end().
 */
struct vcpud_vcpu *host_begin(struct vcpu_host *h);
void host_end(struct vcpu_host *h);

/* Ask the vCPU to stop its current or next run. */
void host_cancel(struct vcpu_host *h);

/*
 * Serve a Run: (req) (owned by the host from here on, free()d by it) is
 * applied and the guest started on the host's thread; (call) is answered
 * with the exit, or with the status of whatever went wrong.
 */
void host_run(struct vcpu_host *h, struct rpc_call *call,
              vcpud_v1_RunRequest *req);

/* A run command from the Attach stream (call) bound to this host; like
 * host_run, but the exit (with registers when asked for) goes out as a
 * stream message and a failure as an error reply. */
void host_stream_run(struct vcpu_host *h, struct rpc_call *call,
                     vcpud_v1_RunRequest *req);

/* Make the Attach stream (call) the vCPU's only driver; -EBUSY when a Run
 * or another stream has it. */
int host_attach(struct vcpu_host *h, struct rpc_call *call, bool regs,
                bool sregs, struct vcpud_err *err);

/* The stream ended or broke: cancel its run, if any, and let go. */
void host_detach(struct vcpu_host *h, struct rpc_call *call);

/* Send a reply on the attached stream (counted against exit delivery). */
void host_stream_send(struct vcpu_host *h, struct rpc_call *call,
                      const vcpud_v1_AttachResponse *resp);

/* The Run and Attach methods' callbacks; the call's data is the host. */
void host_on_run_sent(struct rpc_call *call, bool ok);
void host_on_run_cancel(struct rpc_call *call);

#endif
