/* vcpu_host.h: a vCPU served over gRPC – its own thread runs the guest so
 * no completion-queue thread ever waits on it. A unary Run is handed to
 * that thread and answered from it when the exit arrives; an Attach
 * stream is handed over whole, and that thread then reads its commands
 * too. */
#ifndef VCPUD_SERVER_VCPU_HOST_H
#define VCPUD_SERVER_VCPU_HOST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "rpc.h"
#include "vcpud/v1/vcpud.pb.h"
#include "vcpud.h"

struct vcpu_host;

/* Where the server's exits spend their time, summed over its vCPUs (a
 * mean is a sum over a count). Shown by /metrics, so an operator – or a
 * benchmark – can split an exit's round trip into the server's parts and
 * the network's. */
struct exit_stats {
    atomic_uint_fast64_t run_exits;    /* exits answered to unary Runs */
    atomic_uint_fast64_t stream_exits; /* ... on Attach streams */
    atomic_uint_fast64_t guest_ns;     /* in the core's run: guest and KVM */
    /* Unary Runs only (a stream has no hand-over, and its answer leaves
     * with the read of the next command): from the call's decode on a
     * completion-queue thread to the guest's entry on the vCPU's thread,
     * and from the exit to its answer handed to gRPC. */
    atomic_uint_fast64_t handover_ns;
    atomic_uint_fast64_t reply_ns;
};

/*
 * Create vCPU (id) in (vm) and the thread that will run it; its exits are
 * counted in (stats), which must outlive it. On success *out holds one
 * reference, owned by the caller (host_unref()).
 */
int host_create(struct vcpud_vm *vm, uint32_t vm_id, uint32_t id,
                struct exit_stats *stats, struct vcpu_host **out,
                struct vcpud_err *err);

/* Mark the vCPU destroyed without waiting: new work is refused, an
 * Attach stream ends with NOT_FOUND and the guest is cancelled. Done
 * before a guest is cancelled for good, so that its driver learns why
 * instead of receiving a CANCELED exit first. */
void host_stop_begin(struct vcpu_host *h);

/* Server shutdown: cancel the guest, refuse new runs with UNAVAILABLE, and
 * end an Attach stream with UNAVAILABLE now – its controller could
 * otherwise answer the CANCELED exit with another run and keep the guest
 * going for the whole grace period. */
void host_shut_down(struct vcpu_host *h);

/* host_stop_begin, then stop the thread and destroy the core vCPU. Calls
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

/* The answer to the exit a run resumes from. */
struct host_result {
    enum { HOST_RESULT_NONE, HOST_RESULT_IO, HOST_RESULT_MMIO } kind;
    const uint64_t *io; /* HOST_RESULT_IO: the values read, nio of them */
    size_t nio;
    uint64_t mmio; /* HOST_RESULT_MMIO: the value read */
};

/* The answer a request carries: (io) or (mmio), or neither (NULL).
 * Points into them. */
struct host_result host_result_of(const vcpud_v1_IoResult *io,
                                  const vcpud_v1_MmioResult *mmio);

/* Serves an Attach stream on the host's thread until the stream ends. */
typedef void (*host_stream_fn)(struct vcpu_host *h, struct rpc_call *call);

/*
 * Make the Attach stream (call) the vCPU's only driver and hand it to the
 * vCPU's thread, which calls serve(h, call) and lets go when it returns:
 * commands are read, guests run and exits written on that one thread, so
 * an exit costs no thread hop. -EBUSY when a Run or another stream has
 * the vCPU, -ENOENT once it is destroyed. Takes a call reference.
 */
int host_attach(struct vcpu_host *h, struct rpc_call *call,
                host_stream_fn serve, struct vcpud_err *err);

/* The stream's caller went away (any thread): cancel its run, start no
 * other. */
void host_stream_gone(struct vcpu_host *h, struct rpc_call *call);

/*
 * Inside serve: apply (r) and run the guest on this thread until its next
 * exit (*x; (regs)/(sregs) filled at the exit when not NULL), or hand over
 * an exit an earlier driver never received. Fails (with err) like the
 * unary Run would; the stream goes on.
 */
int host_stream_run(struct vcpu_host *h, const struct host_result *r,
                    uint64_t timeout_ms, struct vcpud_exit *x,
                    struct vcpud_regs *regs, struct vcpud_sregs *sregs,
                    struct vcpud_err *err);

/* Inside serve, before the stream's final status goes out: let go of the
 * vCPU, so that a controller that has heard the status finds it free.
 * (Done anyway when serve returns.) */
void host_stream_end(struct vcpu_host *h, struct rpc_call *call);

/* Inside serve: the stream broke before its controller acknowledged exit
 * (x) with its next message; keep it for the next driver. */
void host_stream_lost(struct vcpu_host *h, const struct vcpud_exit *x);

/* The Run method's callbacks; the call's data is the host. */
void host_on_run_sent(struct rpc_call *call, bool ok);
void host_on_run_cancel(struct rpc_call *call);

#endif
