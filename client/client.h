/* client.h: what the client's files share – the connection, the method
 * table and the one call helper every RPC goes through. */
#ifndef VCPUD_CLIENT_PRIV_H
#define VCPUD_CLIENT_PRIV_H

#include <grpc/grpc.h>
#include <pb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vcpud_client.h"

/* The methods of vcpud.v1.Vcpud, by name; nanopb generates no stubs, so the
 * paths are ours to keep in step with vcpud.proto. */
#define VCPUD__METHODS(X)                                                      \
    X(CREATE_VM, "CreateVm")                                                   \
    X(DESTROY_VM, "DestroyVm")                                                 \
    X(LIST_VMS, "ListVms")                                                     \
    X(GET_VM, "GetVm")                                                         \
    X(ADD_MEMORY_REGION, "AddMemoryRegion")                                    \
    X(REMOVE_MEMORY_REGION, "RemoveMemoryRegion")                              \
    X(WRITE_MEMORY, "WriteMemory")                                             \
    X(READ_MEMORY, "ReadMemory")                                               \
    X(CREATE_VCPU, "CreateVcpu")                                               \
    X(DESTROY_VCPU, "DestroyVcpu")                                             \
    X(RUN, "Run")                                                              \
    X(CANCEL, "Cancel")                                                        \
    X(GET_REGS, "GetRegs")                                                     \
    X(SET_REGS, "SetRegs")                                                     \
    X(GET_SPECIAL_REGS, "GetSpecialRegs")                                      \
    X(SET_SPECIAL_REGS, "SetSpecialRegs")                                      \
    X(SET_IO_RESULT, "SetIoResult")                                            \
    X(SET_MMIO_RESULT, "SetMmioResult")                                        \
    X(SNAPSHOT, "Snapshot")                                                    \
    X(RESTORE, "Restore")                                                      \
    X(INJECT_INTERRUPT, "InjectInterrupt")                                     \
    X(INJECT_NMI, "InjectNmi")                                                 \
    X(SET_IRQ_LINE, "SetIrqLine")                                              \
    X(SETUP_MODE, "SetupMode")                                                 \
    X(ATTACH, "Attach")                                                        \
    X(ADD_POSTED_RANGE, "AddPostedRange")                                      \
    X(REMOVE_POSTED_RANGE, "RemovePostedRange")

enum vcpud__method {
#define VCPUD__METHOD_ENUM(name, rpc) VCPUD__M_##name,
    VCPUD__METHODS(VCPUD__METHOD_ENUM)
#undef VCPUD__METHOD_ENUM
        VCPUD__M_COUNT
};

#define VCPUD__SERVICE "/vcpud.v1.Vcpud/"

/* "/vcpud.v1.Vcpud/CreateVm", ...: static, as grpc_channel_register_call
 * wants them to outlive the channel. */
extern const char *const vcpud__method_paths[VCPUD__M_COUNT];

/* Immutable after vcpud_client_connect(), which is what makes sharing one
 * client between threads safe: every call has its own grpc_call and queue.
 * Only the poll thread's fields change, under (lock). */
struct vcpud_client {
    grpc_channel *channel;
    void *methods[VCPUD__M_COUNT]; /* grpc_channel_register_call handles */
    bool has_auth;
    grpc_slice auth; /* "Bearer <token>" */
    uint32_t deadline_ms;

    grpc_completion_queue *idle_cq; /* NULL: no poll thread */
    pthread_t poller;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool closing;
};

/* Start and stop the thread that reads the channel's sockets between calls
 * (client_poll.c). Stop is a no-op when none was started. */
int vcpud__poller_start(struct vcpud_client *c, struct vcpud_client_status *st);
void vcpud__poller_stop(struct vcpud_client *c);

/*
 * Fill (st) (may be NULL) for an error found on this side of the wire:
 * (grpc_code) is the status it stands for, (rc) the negative errno returned.
 */
int vcpud__fail(struct vcpud_client_status *st, int grpc_code, int rc,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Success: st->code OK and an empty message. Returns 0. */
int vcpud__ok(struct vcpud_client_status *st);

/* A caller's mistake: INVALID_ARGUMENT, -EINVAL. */
#define vcpud__bad_arg(st, ...)                                                \
    vcpud__fail((st), GRPC_STATUS_INVALID_ARGUMENT, -EINVAL, __VA_ARGS__)
/* The server answered OK with something we cannot believe: INTERNAL,
 * -EBADMSG, so that it is never mistaken for the caller's fault. */
#define vcpud__bad_reply(st, ...)                                              \
    vcpud__fail((st), GRPC_STATUS_INTERNAL, -EBADMSG, __VA_ARGS__)

/* Fill (st) from a finished call and return its errno: the `vcpud-errno`
 * trailer when the server sent one with a failing status, else one derived
 * from (code). */
int vcpud__status(struct vcpud_client_status *st, grpc_status_code code,
                  grpc_slice details, const grpc_metadata_array *trailers);

/*
 * One unary call: send (req), receive (resp) (initialised by the caller,
 * callbacks set), all in a single batch. The deadline is the client's plus
 * (extra_ms). (resp_desc) may be NULL for methods answering Empty.
 */
int vcpud__unary(struct vcpud_client *c, enum vcpud__method m,
                 uint64_t extra_ms, const pb_msgdesc_t *req_desc,
                 const void *req, const pb_msgdesc_t *resp_desc, void *resp,
                 struct vcpud_client_status *st);

/* A streaming call driven one step at a time from the calling thread. */
struct vcpud__call {
    grpc_call *call;
    grpc_completion_queue *cq;
    const struct vcpud_client *c;
    enum vcpud__method m;
    /* RECV_STATUS_ON_CLIENT is posted at start so that a server ending the
     * call early is seen while we send; these are its outputs. */
    grpc_status_code code;
    grpc_slice details;
    grpc_metadata_array trailers;
    grpc_metadata_array initial;
    bool md_sent, md_recvd, half_closed;
    bool status_done; /* its tag is back */
    bool over;        /* nothing more can be sent: ended or failed */
    bool eos;         /* nothing more to receive */
};

/* Start a call of (m); on error nothing needs ending. */
int vcpud__call_start(struct vcpud__call *call, struct vcpud_client *c,
                      enum vcpud__method m, uint64_t extra_ms,
                      struct vcpud_client_status *st);

/* Send one message, half-closing with it when (last). 0 when sent or when
 * the call turned out to be over (call->over; vcpud__call_end() has the
 * server's status); negative errno with (st) filled on a local error. */
int vcpud__call_send(struct vcpud__call *call, const pb_msgdesc_t *desc,
                     const void *msg, bool last,
                     struct vcpud_client_status *st);

/* Receive the next message into (msg), half-closing first if the sender
 * has not. 1 for a message, 0 at the end of the stream, negative errno with
 * (st) filled when it cannot be decoded. */
int vcpud__call_recv(struct vcpud__call *call, const pb_msgdesc_t *desc,
                     void *msg, struct vcpud_client_status *st);

/* Send (out_msg) and receive the reply into (in_msg) in one batch, for
 * bidi streams. 1 for a reply, 0 when the call is over (vcpud__call_end
 * has the status), negative errno with (st) filled on a local error. */
int vcpud__call_exchange(struct vcpud__call *call, const pb_msgdesc_t *out_desc,
                         const void *out_msg, const pb_msgdesc_t *in_desc,
                         void *in_msg, struct vcpud_client_status *st);

/*
 * Wait for the status and free the call. (rc) is the caller's verdict so
 * far: a local error (negative) cancels a call still running and is
 * returned as is; otherwise the result is the server's status.
 */
int vcpud__call_end(struct vcpud__call *call, int rc,
                    struct vcpud_client_status *st);

#endif
