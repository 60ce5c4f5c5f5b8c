/* rpc.h: every call's lifecycle over the gRPC C core, in one place.
 *
 * Handlers never touch grpc_op arrays: they get the request bytes, and
 * answer with rpc_call_send / rpc_call_reply / rpc_call_finish, from any
 * thread. The layer posts RECV_CLOSE_ON_SERVER as soon as a call starts (so
 * a vanished peer is noticed), keeps one send batch in flight with a queue
 * behind it (the core allows one op of a kind at a time), and frees the
 * call when its last batch and the last handler reference are gone.
 *
 * Bidi methods with on_stream are driven instead by blocking calls from a
 * thread (rpc_call_exchange), for a stream whose every step belongs on one
 * thread anyway: its messages then cost no hand-off between threads.
 */
#ifndef VCPUD_SERVER_RPC_H
#define VCPUD_SERVER_RPC_H

#include <grpc/grpc.h>
#include <pb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rpc_server;
struct rpc_call;

enum rpc_kind {
    RPC_UNARY,         /* one request, one response */
    RPC_CLIENT_STREAM, /* many requests, one response */
    RPC_SERVER_STREAM, /* one request, many responses */
    RPC_BIDI_STREAM,   /* many of each, in any order */
};

/* Callbacks run on completion-queue threads unless noted; a handler that
 * blocks there stalls network I/O for other calls, so long work (running a
 * guest) goes to its own thread. */
struct rpc_method {
    const char *path; /* "/vcpud.v1.Vcpud/Run" */
    enum rpc_kind kind;
    /* Required. The request; for client and bidi streams each message,
     * then (NULL, 0) at the client's half-close. Messages of one call are
     * delivered one at a time, in order. (buf) lives until return. */
    void (*on_message)(struct rpc_call *call, const uint8_t *buf, size_t len);
    /* Optional: the peer cancelled or went away. */
    void (*on_cancel)(struct rpc_call *call);
    /* Optional: a message given to rpc_call_send/reply was written (ok) or
     * will never be (!ok). May run on the thread that sent it when the
     * call was already broken. */
    void (*on_sent)(struct rpc_call *call, bool ok);
    /* Optional: the call is over and is about to be freed. */
    void (*on_done)(struct rpc_call *call);
    /* Bidi streams only, instead of on_message: the call is driven by
     * blocking calls (rpc_call_exchange, and rpc_call_send/finish, which
     * then block until written) from one thread at a time – this new
     * thread of the call's own first, which may hand the call on (e.g. to
     * a vCPU thread, so that reading a command and running the guest need
     * no thread hop). The call's completions go to a queue of its own,
     * which only that thread waits on. After on_stream returns, the
     * call's thread waits for the call to end and reports a cancel via
     * on_cancel (on that thread, while another may be driving the call).
     * Whoever drives the call last must finish it. */
    void (*on_stream)(struct rpc_call *call);
};

struct rpc_server_config {
    const char *const *listen; /* "127.0.0.1:N", "[::1]:N", "unix:PATH" */
    size_t nlisten;
    int cq_threads;            /* completion-queue threads, >= 1 */
    size_t max_message;        /* receive bound in bytes */
    int keepalive_ms;          /* ping idle peers this often */
    int keepalive_timeout_ms;  /* and drop those that do not answer */
    int max_call_threads;      /* synchronous streams open at once (each
                                * has a thread); more get
                                * RESOURCE_EXHAUSTED. 0: no bound */
    int *ports;                /* optional: the TCP port each address got
                                * (port 0 asks for a free one) */
};

/*
 * Bind every address, register (methods) and start serving on
 * (config->cq_threads) threads. (app) is handed to handlers via
 * rpc_call_app(). On failure (errbuf) says why. The methods array must
 * outlive the server.
 */
int rpc_server_start(const struct rpc_server_config *config,
                     const struct rpc_method *methods, size_t nmethods,
                     void *app, struct rpc_server **out, char *errbuf,
                     size_t errlen);

/* Stop accepting calls; those in flight go on. */
void rpc_server_begin_shutdown(struct rpc_server *srv);

/* Wait up to (grace_ms) for the calls in flight to end, then cancel the
 * rest, and return once every connection is closed. Handlers may still
 * run, and calls still be held, when it returns. */
void rpc_server_finish_shutdown(struct rpc_server *srv, int grace_ms);

/* After rpc_server_finish_shutdown(): wait for the call threads, refuse
 * every batch from now on (a holder that sends gets on_sent(false)), and
 * join the completion-queue threads – no handler runs once it returns, so
 * what handlers use may be torn down. Calls still held elsewhere stay
 * valid until rpc_server_destroy(). */
void rpc_server_stop(struct rpc_server *srv);

/* rpc_server_stop() if not done, then free everything: after every holder
 * of a call has let go. */
void rpc_server_destroy(struct rpc_server *srv);

void *rpc_call_app(struct rpc_call *call);
void rpc_call_set_data(struct rpc_call *call, void *data);
void *rpc_call_data(struct rpc_call *call);

/* Copy the value of request metadata (key) into (buf); false if absent. */
bool rpc_call_metadata(struct rpc_call *call, const char *key, char *buf,
                       size_t len);

/* Keep the call alive past the handler's return (e.g. handed to a vCPU
 * thread); every ref needs an unref. */
void rpc_call_ref(struct rpc_call *call);
void rpc_call_unref(struct rpc_call *call);

/* True once the peer cancelled or went away. */
bool rpc_call_cancelled(struct rpc_call *call);

/*
 * Synchronous streams (on_stream): send (msg) (none when desc is NULL) and
 * receive the next request in one batch – one write carries the message
 * and the flow-control window for the next one, and one wake-up returns
 * both. Blocks. Returns 1 with the request in (*buf, *len) (valid until
 * the next exchange or the end of the call), 0 at the client's half-close
 * (the message was sent), -EPIPE when the call broke (whether the message
 * reached the peer is unknown).
 */
int rpc_call_exchange(struct rpc_call *call, const pb_msgdesc_t *desc,
                      const void *msg, const uint8_t **buf, size_t *len);

/* End the call at once from any thread: what is queued is dropped and the
 * peer gets (code, msg); a blocked rpc_call_exchange returns -EPIPE. */
void rpc_call_abort(struct rpc_call *call, grpc_status_code code,
                    const char *msg);

/* Queue one response message. -ENOMEM/-EINVAL when it cannot be encoded
 * (the call is then failed with INTERNAL). */
int rpc_call_send(struct rpc_call *call, const pb_msgdesc_t *desc,
                  const void *msg);

/* End the call with (code) and (msg) after the queued messages. A nonzero
 * (core_errno) travels as trailing metadata `vcpud-errno`. Only the first
 * finish counts. */
void rpc_call_finish(struct rpc_call *call, grpc_status_code code,
                     const char *msg, int core_errno);

/* The unary answer: one message, then OK. */
void rpc_call_reply(struct rpc_call *call, const pb_msgdesc_t *desc,
                    const void *msg);

#endif
