/* rpc.c: the call state machine and the completion-queue threads. */
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pb_io.h"
#include "rpc.h"

#define REQUESTS_PER_METHOD 2 /* calls waiting to be accepted, per method */

enum tag_kind {
    TAG_NEW,
    TAG_CLOSE,
    TAG_RECV,
    TAG_SEND,
    TAG_XCHG,
    TAG_SHUTDOWN
};

struct rpc_tag {
    enum tag_kind kind;
    struct rpc_call *call;
};

struct sendq {
    grpc_byte_buffer *bb;
    struct sendq *next;
};

struct registered {
    const struct rpc_method *m;
    void *handle;
};

struct rpc_server {
    grpc_server *server;
    /* Calls to methods nobody registered: without a request for them they
     * would hang until their deadline instead of hearing UNIMPLEMENTED. */
    struct registered unknown;
    grpc_completion_queue *cq;
    void *app;
    struct registered *methods;
    size_t nmethods;
    pthread_t *threads;
    int nthreads;
    struct rpc_tag shutdown_tag;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool shutdown_done;
    bool stopping;
    bool stopped; /* rpc_server_stop has run (main's thread only) */
    /* Every batch starts under the read side; the queue is shut down under
     * the write side, after which no batch may start (a late completion
     * would otherwise post a receive on a queue already shutting down). */
    pthread_rwlock_t batch_lock;
    bool cq_closed;
    int call_threads; /* threads of synchronous streams still running */
    int max_call_threads;
};

static grpc_call_error start_batch(struct rpc_server *srv, grpc_call *call,
                                   const grpc_op *ops, size_t n, void *tag)
{
    pthread_rwlock_rdlock(&srv->batch_lock);
    grpc_call_error e = srv->cq_closed
                            ? GRPC_CALL_ERROR_ALREADY_FINISHED
                            : grpc_call_start_batch(call, ops, n, tag, NULL);
    pthread_rwlock_unlock(&srv->batch_lock);
    return e;
}

struct rpc_call {
    struct rpc_server *srv;
    const struct registered *reg;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_call_details call_details; /* unregistered calls only */
    grpc_byte_buffer *payload; /* request of unary/server-stream calls */
    grpc_byte_buffer *recv;    /* client-stream message being received */
    int close_cancelled;       /* filled by RECV_CLOSE_ON_SERVER */
    bool close_posted;
    /* Synchronous streams: the queue only the driving thread plucks, and
     * the last request received. */
    grpc_completion_queue *own_cq;
    grpc_slice in;

    pthread_mutex_t lock;
    int refs;
    struct rpc_tag t_new, t_close, t_recv, t_send, t_xchg;
    bool cancelled;     /* the peer went away */
    bool md_sent;       /* initial metadata is out */
    bool send_busy;     /* a send batch is in flight */
    bool finishing;     /* a status is queued */
    bool status_started;
    bool broken;        /* a batch failed: nothing more will go out */
    struct sendq *head, *tail;
    int batch_msgs;     /* messages in the batch in flight (0/1) */
    grpc_byte_buffer *in_flight; /* its message, freed when it completes */

    grpc_status_code code;
    grpc_slice details;
    grpc_metadata trailer;
    bool has_trailer;
    char errno_text[16];
    void *data;
};

/* ---- reference counting ---- */

static void call_free(struct rpc_call *c)
{
    if (c->reg && c->reg->m->on_done && c->call)
        c->reg->m->on_done(c);
    for (struct sendq *q = c->head, *n; q; q = n) {
        n = q->next;
        grpc_byte_buffer_destroy(q->bb);
        free(q);
    }
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    if (c->recv)
        grpc_byte_buffer_destroy(c->recv);
    grpc_metadata_array_destroy(&c->md);
    grpc_call_details_destroy(&c->call_details);
    if (c->finishing) {
        grpc_slice_unref(c->details);
        if (c->has_trailer) {
            grpc_slice_unref(c->trailer.key);
            grpc_slice_unref(c->trailer.value);
        }
    }
    grpc_slice_unref(c->in);
    if (c->call)
        grpc_call_unref(c->call);
    if (c->own_cq) {
        /* Every batch's tag was plucked by now: the queue drains at once. */
        grpc_completion_queue_shutdown(c->own_cq);
        while (grpc_completion_queue_pluck(
                   c->own_cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
                   .type != GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(c->own_cq);
    }
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void rpc_call_ref(struct rpc_call *c)
{
    pthread_mutex_lock(&c->lock);
    c->refs++;
    pthread_mutex_unlock(&c->lock);
}

void rpc_call_unref(struct rpc_call *c)
{
    pthread_mutex_lock(&c->lock);
    bool last = --c->refs == 0;
    pthread_mutex_unlock(&c->lock);
    if (last)
        call_free(c);
}

void *rpc_call_app(struct rpc_call *c)
{
    return c->srv->app;
}

void rpc_call_set_data(struct rpc_call *c, void *data)
{
    c->data = data;
}

void *rpc_call_data(struct rpc_call *c)
{
    return c->data;
}

bool rpc_call_cancelled(struct rpc_call *c)
{
    pthread_mutex_lock(&c->lock);
    bool v = c->cancelled;
    pthread_mutex_unlock(&c->lock);
    return v;
}

bool rpc_call_metadata(struct rpc_call *c, const char *key, char *buf,
                       size_t len)
{
    for (size_t i = 0; i < c->md.count; i++) {
        const grpc_metadata *m = &c->md.metadata[i];
        size_t klen = GRPC_SLICE_LENGTH(m->key);
        if (klen != strlen(key) ||
            memcmp(GRPC_SLICE_START_PTR(m->key), key, klen) != 0)
            continue;
        size_t vlen = GRPC_SLICE_LENGTH(m->value);
        if (vlen >= len)
            vlen = len - 1;
        memcpy(buf, GRPC_SLICE_START_PTR(m->value), vlen);
        buf[vlen] = '\0';
        return true;
    }
    return false;
}

/* ---- sending ---- */

/*
 * Start the next send batch if none is in flight: initial metadata once,
 * the next queued message, and the status when nothing is left to send.
 * Called with the lock held; returns how many messages were dropped because
 * the call is broken, for on_sent(false) outside the lock.
 */
static int pump_locked(struct rpc_call *c)
{
    if (c->send_busy)
        return 0;
    if (c->broken) {
        int dropped = 0;
        for (struct sendq *q = c->head, *n; q; q = n) {
            n = q->next;
            grpc_byte_buffer_destroy(q->bb);
            free(q);
            dropped++;
        }
        c->head = c->tail = NULL;
        return dropped;
    }
    grpc_op ops[4];
    memset(ops, 0, sizeof(ops)); /* op.data is a union: no stale fields */
    size_t n = 0;
    if (!c->md_sent && (c->head || c->finishing)) {
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        n++;
        c->md_sent = true;
    }
    c->batch_msgs = 0;
    grpc_byte_buffer *bb = NULL;
    if (c->head) {
        struct sendq *q = c->head;
        c->head = q->next;
        if (!c->head)
            c->tail = NULL;
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = bb = q->bb;
        free(q);
        c->batch_msgs = 1;
        n++;
    }
    if (c->finishing && !c->head && !c->status_started) {
        ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[n].data.send_status_from_server.status = c->code;
        ops[n].data.send_status_from_server.status_details = &c->details;
        ops[n].data.send_status_from_server.trailing_metadata_count =
            c->has_trailer ? 1 : 0;
        ops[n].data.send_status_from_server.trailing_metadata =
            c->has_trailer ? &c->trailer : NULL;
        c->status_started = true;
        n++;
    }
    if (n == 0)
        return 0;
    c->in_flight = NULL;
    c->refs++;
    c->send_busy = true;
    grpc_call_error e = start_batch(c->srv, c->call, ops, n, &c->t_send);
    /* The byte buffer is ours again once the batch is done (or refused). */
    if (e != GRPC_CALL_OK) {
        if (bb)
            grpc_byte_buffer_destroy(bb);
        c->refs--;
        c->send_busy = false;
        c->broken = true;
        return c->batch_msgs + pump_locked(c);
    }
    c->in_flight = bb;
    return 0;
}

static void notify_dropped(struct rpc_call *c, int dropped)
{
    for (int i = 0; i < dropped; i++) {
        if (c->reg->m->on_sent)
            c->reg->m->on_sent(c, false);
    }
}

/* Encode (msg) into a byte buffer the send queue can own. */
static grpc_byte_buffer *encode(const pb_msgdesc_t *desc, const void *msg,
                                int *rc)
{
    uint8_t *buf;
    size_t len;
    *rc = vcpud_pb_encode(desc, msg, &buf, &len, NULL);
    if (*rc < 0)
        return NULL;
    grpc_slice s = grpc_slice_new(buf, len, free);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

static void encode_failed(struct rpc_call *c, int rc)
{
    rpc_call_finish(c, GRPC_STATUS_INTERNAL, "cannot encode the response", rc);
}

static void notify_dropped(struct rpc_call *c, int dropped);

/* (msg) as a send-queue entry; when that fails the call is finished with
 * INTERNAL, the message reported to on_sent as not sent (whoever waits for
 * it would wait forever), and NULL returned (*rc says why). */
static struct sendq *encode_or_finish(struct rpc_call *c,
                                      const pb_msgdesc_t *desc,
                                      const void *msg, int *rc)
{
    struct sendq *q = calloc(1, sizeof(*q));
    if (!q)
        *rc = -ENOMEM;
    else if (!(q->bb = encode(desc, msg, rc))) {
        free(q);
        q = NULL;
    }
    if (!q) {
        encode_failed(c, *rc);
        notify_dropped(c, 1);
    }
    return q;
}

static void enqueue_locked(struct rpc_call *c, struct sendq *q)
{
    if (c->tail)
        c->tail->next = q;
    else
        c->head = q;
    c->tail = q;
}

static void set_status_locked(struct rpc_call *c, grpc_status_code code,
                              const char *msg, int core_errno)
{
    c->finishing = true;
    c->code = code;
    c->details = grpc_slice_from_copied_string(msg ? msg : "");
    if (core_errno) {
        snprintf(c->errno_text, sizeof(c->errno_text), "%d", core_errno);
        c->trailer.key = grpc_slice_from_static_string("vcpud-errno");
        c->trailer.value = grpc_slice_from_copied_string(c->errno_text);
        c->has_trailer = true;
    }
}

static void on_send(struct rpc_call *c, bool ok);

static gpr_timespec forever(void)
{
    return gpr_inf_future(GPR_CLOCK_REALTIME);
}

/* A synchronous call's sends complete on its own queue: wait for them
 * here, on the thread that drives the call, until nothing is in flight. */
static void sync_sends(struct rpc_call *c)
{
    for (;;) {
        pthread_mutex_lock(&c->lock);
        bool busy = c->send_busy;
        pthread_mutex_unlock(&c->lock);
        if (!busy)
            return;
        grpc_event ev =
            grpc_completion_queue_pluck(c->own_cq, &c->t_send, forever(), NULL);
        on_send(c, ev.type == GRPC_OP_COMPLETE && ev.success);
    }
}

/*
 * Queue (q) (may be NULL) and, with (finish), the status; then send. The
 * caller's reference keeps the call alive across callbacks that run on
 * this thread; one more is taken here because on_sent may drop the last
 * reference the caller relied on.
 */
static void submit(struct rpc_call *c, struct sendq *q, bool finish,
                   grpc_status_code code, const char *msg, int core_errno)
{
    pthread_mutex_lock(&c->lock);
    c->refs++;
    if (q)
        enqueue_locked(c, q);
    if (finish && !c->finishing)
        set_status_locked(c, code, msg, core_errno);
    int dropped = pump_locked(c);
    pthread_mutex_unlock(&c->lock);
    notify_dropped(c, dropped);
    if (c->own_cq)
        sync_sends(c);
    rpc_call_unref(c);
}

int rpc_call_send(struct rpc_call *c, const pb_msgdesc_t *desc,
                  const void *msg)
{
    int rc;
    struct sendq *q = encode_or_finish(c, desc, msg, &rc);
    if (!q)
        return rc;
    submit(c, q, false, GRPC_STATUS_OK, NULL, 0);
    return 0;
}

void rpc_call_finish(struct rpc_call *c, grpc_status_code code,
                     const char *msg, int core_errno)
{
    submit(c, NULL, true, code, msg, core_errno);
}

/* Message and status leave in one batch: one write, one completion. */
void rpc_call_reply(struct rpc_call *c, const pb_msgdesc_t *desc,
                    const void *msg)
{
    int rc;
    struct sendq *q = encode_or_finish(c, desc, msg, &rc);
    if (q)
        submit(c, q, true, GRPC_STATUS_OK, "", 0);
}

/* ---- receiving ---- */

/* Start a one-op batch; the batch holds a reference until its tag is
 * back (a refused batch delivers no tag, so it gives the reference back). */
static bool start_one(struct rpc_call *c, const grpc_op *op,
                      struct rpc_tag *tag)
{
    pthread_mutex_lock(&c->lock);
    c->refs++;
    bool started = start_batch(c->srv, c->call, op, 1, tag) == GRPC_CALL_OK;
    if (!started)
        c->refs--;
    pthread_mutex_unlock(&c->lock);
    return started;
}

static void post_recv(struct rpc_call *c)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->recv;
    start_one(c, &op, &c->t_recv);
}

/* A received buffer as one contiguous slice (*out, the caller's); when it
 * cannot be read the call is finished with INTERNAL and false returned. */
static bool flatten(struct rpc_call *c, grpc_byte_buffer *bb, grpc_slice *out)
{
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb)) {
        rpc_call_finish(c, GRPC_STATUS_INTERNAL, "unreadable message", 0);
        return false;
    }
    *out = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    return true;
}

/* Hand a received buffer to the handler as one contiguous block. */
static void deliver(struct rpc_call *c, grpc_byte_buffer *bb)
{
    grpc_slice s;
    if (!flatten(c, bb, &s))
        return;
    c->reg->m->on_message(c, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s));
    grpc_slice_unref(s);
}

/* ---- synchronous streams ---- */

int rpc_call_exchange(struct rpc_call *c, const pb_msgdesc_t *desc,
                      const void *msg, const uint8_t **buf, size_t *len)
{
    grpc_byte_buffer *out = NULL;
    int rc;
    if (desc && !(out = encode(desc, msg, &rc))) {
        encode_failed(c, rc);
        return -EPIPE;
    }
    grpc_op ops[3];
    memset(ops, 0, sizeof(ops)); /* op.data is a union: no stale fields */
    size_t n = 0;
    pthread_mutex_lock(&c->lock);
    /* Only once every earlier send is done: one op of a kind at a time. */
    bool usable = !c->broken && !c->finishing && !c->send_busy && !c->head;
    if (usable && out && !c->md_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->md_sent = true;
    }
    if (out) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = out;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &c->recv;
    grpc_slice_unref(c->in);
    c->in = grpc_empty_slice();
    if (usable &&
        start_batch(c->srv, c->call, ops, n, &c->t_xchg) != GRPC_CALL_OK) {
        c->broken = true;
        usable = false;
    }
    pthread_mutex_unlock(&c->lock);
    if (!usable) {
        if (out)
            grpc_byte_buffer_destroy(out);
        return -EPIPE;
    }
    grpc_event ev =
        grpc_completion_queue_pluck(c->own_cq, &c->t_xchg, forever(), NULL);
    if (out)
        grpc_byte_buffer_destroy(out);
    grpc_byte_buffer *bb = c->recv;
    c->recv = NULL;
    if (ev.type != GRPC_OP_COMPLETE || !ev.success) {
        if (bb)
            grpc_byte_buffer_destroy(bb);
        pthread_mutex_lock(&c->lock);
        c->broken = true;
        pthread_mutex_unlock(&c->lock);
        return -EPIPE;
    }
    if (!bb)
        return 0; /* half-close */
    bool readable = flatten(c, bb, &c->in);
    grpc_byte_buffer_destroy(bb);
    if (!readable)
        return -EPIPE;
    *buf = GRPC_SLICE_START_PTR(c->in);
    *len = GRPC_SLICE_LENGTH(c->in);
    return 1;
}

void rpc_call_abort(struct rpc_call *c, grpc_status_code code, const char *msg)
{
    grpc_call_cancel_with_status(c->call, code, msg, NULL);
}

static void on_close(struct rpc_call *c);

/* A synchronous stream's end, from its own queue. */
static void wait_for_close(struct rpc_call *c)
{
    if (c->close_posted) {
        grpc_completion_queue_pluck(c->own_cq, &c->t_close, forever(), NULL);
        on_close(c);
    }
}

/* The call's own thread: the handler, then the wait for the call's end,
 * which is how a controller that vanishes mid-run is noticed. */
static void *call_thread(void *arg)
{
    struct rpc_call *c = arg;
    struct rpc_server *srv = c->srv;
    c->reg->m->on_stream(c);
    wait_for_close(c);
    rpc_call_unref(c);
    pthread_mutex_lock(&srv->lock);
    srv->call_threads--;
    pthread_cond_broadcast(&srv->cond);
    pthread_mutex_unlock(&srv->lock);
    return NULL;
}

static void start_call_thread(struct rpc_server *srv, struct rpc_call *c)
{
    pthread_mutex_lock(&srv->lock);
    bool full =
        srv->max_call_threads > 0 && srv->call_threads >= srv->max_call_threads;
    if (!full)
        srv->call_threads++;
    pthread_mutex_unlock(&srv->lock);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rpc_call_ref(c); /* the thread's */
    pthread_t t;
    if (full || pthread_create(&t, &attr, call_thread, c) != 0) {
        if (!full) {
            pthread_mutex_lock(&srv->lock);
            srv->call_threads--;
            pthread_mutex_unlock(&srv->lock);
        }
        char msg[128] = "the server cannot start a thread for this stream";
        if (full)
            snprintf(msg, sizeof(msg),
                     "%d streams are open, the server's limit: end one first",
                     srv->max_call_threads);
        /* A status ends the call at once (the peer's half-close is not
         * awaited), so the close can be waited for right here. */
        rpc_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, msg, -EAGAIN);
        wait_for_close(c);
        rpc_call_unref(c);
    }
    pthread_attr_destroy(&attr);
}

/* ---- accepting ---- */

static void request_call(struct rpc_server *srv, const struct registered *reg)
{
    struct rpc_call *c = calloc(1, sizeof(*c));
    if (!c)
        return; /* the other outstanding request keeps the method alive */
    c->srv = srv;
    c->reg = reg;
    c->refs = 1; /* the TAG_NEW batch */
    pthread_mutex_init(&c->lock, NULL);
    grpc_metadata_array_init(&c->md);
    c->t_new = (struct rpc_tag){TAG_NEW, c};
    c->t_close = (struct rpc_tag){TAG_CLOSE, c};
    c->t_recv = (struct rpc_tag){TAG_RECV, c};
    c->t_send = (struct rpc_tag){TAG_SEND, c};
    c->t_xchg = (struct rpc_tag){TAG_XCHG, c};
    c->in = grpc_empty_slice();
    grpc_call_details_init(&c->call_details);
    grpc_completion_queue *bound = srv->cq;
    if (reg->m->on_stream) {
        c->own_cq = grpc_completion_queue_create_for_pluck(NULL);
        bound = c->own_cq;
    }
    grpc_call_error e;
    if (reg == &srv->unknown) {
        e = grpc_server_request_call(srv->server, &c->call, &c->call_details,
                                     &c->md, srv->cq, srv->cq, &c->t_new);
    } else {
        bool payload = reg->m->kind == RPC_UNARY ||
                       reg->m->kind == RPC_SERVER_STREAM;
        e = grpc_server_request_registered_call(
            srv->server, reg->handle, &c->call, &c->deadline, &c->md,
            payload ? &c->payload : NULL, bound, srv->cq, &c->t_new);
    }
    if (e != GRPC_CALL_OK) {
        c->reg = NULL;
        call_free(c);
    }
}

static void on_new(struct rpc_call *c, bool ok)
{
    if (!ok) { /* shutting down: this request will never be a call */
        c->reg = NULL;
        rpc_call_unref(c);
        return;
    }
    pthread_mutex_lock(&c->srv->lock);
    bool stopping = c->srv->stopping;
    pthread_mutex_unlock(&c->srv->lock);
    if (!stopping)
        request_call(c->srv, c->reg);

    /* Posted first so a client that dies is noticed whatever the handler
     * is waiting for. */
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->close_cancelled;
    c->close_posted = start_one(c, &op, &c->t_close);

    if (c->reg->m->on_stream) {
        start_call_thread(c->srv, c);
    } else if (c->reg == &c->srv->unknown) {
        char msg[160];
        snprintf(msg, sizeof(msg), "vcpud has no method %.*s",
                 (int)GRPC_SLICE_LENGTH(c->call_details.method),
                 (const char *)GRPC_SLICE_START_PTR(c->call_details.method));
        rpc_call_finish(c, GRPC_STATUS_UNIMPLEMENTED, msg, 0);
    } else if (c->reg->m->kind == RPC_CLIENT_STREAM ||
               c->reg->m->kind == RPC_BIDI_STREAM) {
        post_recv(c);
    } else if (!c->payload) {
        rpc_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT,
                        "the request message is missing", -EINVAL);
    } else {
        grpc_byte_buffer *bb = c->payload;
        c->payload = NULL;
        deliver(c, bb);
        grpc_byte_buffer_destroy(bb);
    }
    rpc_call_unref(c);
}

static void on_close(struct rpc_call *c)
{
    pthread_mutex_lock(&c->lock);
    bool cancelled = c->close_cancelled != 0;
    c->cancelled = cancelled;
    pthread_mutex_unlock(&c->lock);
    if (cancelled && c->reg->m->on_cancel)
        c->reg->m->on_cancel(c);
    rpc_call_unref(c);
}

static void on_recv(struct rpc_call *c, bool ok)
{
    grpc_byte_buffer *bb = c->recv;
    c->recv = NULL;
    if (ok && bb) {
        deliver(c, bb);
        grpc_byte_buffer_destroy(bb);
        pthread_mutex_lock(&c->lock);
        bool more = !c->finishing && !c->cancelled;
        pthread_mutex_unlock(&c->lock);
        if (more)
            post_recv(c);
    } else if (ok) {
        c->reg->m->on_message(c, NULL, 0); /* half-close */
    } else if (bb) {
        grpc_byte_buffer_destroy(bb);
    }
    rpc_call_unref(c);
}

static void on_send(struct rpc_call *c, bool ok)
{
    pthread_mutex_lock(&c->lock);
    int msgs = c->batch_msgs;
    if (c->in_flight)
        grpc_byte_buffer_destroy(c->in_flight);
    c->in_flight = NULL;
    c->send_busy = false;
    if (!ok)
        c->broken = true;
    int dropped = pump_locked(c);
    pthread_mutex_unlock(&c->lock);
    for (int i = 0; i < msgs; i++) {
        if (c->reg->m->on_sent)
            c->reg->m->on_sent(c, ok);
    }
    notify_dropped(c, dropped);
    rpc_call_unref(c);
}

static void *cq_thread(void *arg)
{
    struct rpc_server *srv = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(
            srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        struct rpc_tag *t = ev.tag;
        switch (t->kind) {
        case TAG_NEW:
            on_new(t->call, ev.success);
            break;
        case TAG_CLOSE:
            on_close(t->call);
            break;
        case TAG_RECV:
            on_recv(t->call, ev.success);
            break;
        case TAG_SEND:
            on_send(t->call, ev.success);
            break;
        case TAG_XCHG: /* plucked from the call's own queue, never here */
            break;
        case TAG_SHUTDOWN:
            pthread_mutex_lock(&srv->lock);
            srv->shutdown_done = true;
            pthread_cond_broadcast(&srv->cond);
            pthread_mutex_unlock(&srv->lock);
            break;
        }
    }
    return NULL;
}

/* ---- server lifecycle ---- */

int rpc_server_start(const struct rpc_server_config *cfg,
                     const struct rpc_method *methods, size_t nmethods,
                     void *app, struct rpc_server **out, char *errbuf,
                     size_t errlen)
{
    struct rpc_server *srv = calloc(1, sizeof(*srv));
    struct registered *regs = calloc(nmethods, sizeof(*regs));
    pthread_t *threads = calloc((size_t)cfg->cq_threads, sizeof(pthread_t));
    if (!srv || !regs || !threads) {
        free(srv);
        free(regs);
        free(threads);
        snprintf(errbuf, errlen, "out of memory");
        return -ENOMEM;
    }
    srv->app = app;
    srv->methods = regs;
    srv->nmethods = nmethods;
    srv->threads = threads;
    srv->shutdown_tag.kind = TAG_SHUTDOWN;
    srv->max_call_threads = cfg->max_call_threads;
    pthread_mutex_init(&srv->lock, NULL);
    /* Timed waits on it count a grace period: a clock step must not
     * stretch or cut one. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&srv->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_rwlock_init(&srv->batch_lock, NULL);

    /* Keepalive pings are how a frozen or unplugged controller is noticed;
     * without them a dead peer holds its vCPU forever. */
    grpc_arg args[] = {
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         {.integer = (int)cfg->max_message}},
        {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIME_MS,
         {.integer = cfg->keepalive_ms}},
        {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
         {.integer = cfg->keepalive_timeout_ms}},
        {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
         {.integer = 1}},
        {GRPC_ARG_INTEGER, GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA,
         {.integer = 0}},
        {GRPC_ARG_INTEGER,
         GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
         {.integer = 500}},
    };
    grpc_channel_args cargs = {sizeof(args) / sizeof(args[0]), args};
    srv->cq = grpc_completion_queue_create_for_next(NULL);
    srv->server = grpc_server_create(&cargs, NULL);
    grpc_server_register_completion_queue(srv->server, srv->cq, NULL);

    for (size_t i = 0; i < nmethods; i++) {
        regs[i].m = &methods[i];
        regs[i].handle = grpc_server_register_method(
            srv->server, methods[i].path, NULL,
            methods[i].kind == RPC_CLIENT_STREAM ||
                    methods[i].kind == RPC_BIDI_STREAM
                ? GRPC_SRM_PAYLOAD_NONE
                : GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER,
            0);
    }
    grpc_server_credentials *creds =
        grpc_insecure_server_credentials_create();
    int rc = 0;
    for (size_t i = 0; i < cfg->nlisten; i++) {
        int port = grpc_server_add_http2_port(srv->server, cfg->listen[i],
                                              creds);
        if (port == 0) {
            snprintf(errbuf, errlen,
                     "cannot listen on %s (in use, or not an address of "
                     "this machine)",
                     cfg->listen[i]);
            rc = -EADDRINUSE;
            break;
        }
        if (cfg->ports)
            cfg->ports[i] = port;
    }
    grpc_server_credentials_release(creds);
    if (rc < 0) {
        grpc_server_destroy(srv->server);
        grpc_completion_queue_shutdown(srv->cq);
        while (grpc_completion_queue_next(srv->cq,
                                          gpr_inf_future(GPR_CLOCK_REALTIME),
                                          NULL)
                   .type != GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(srv->cq);
        pthread_mutex_destroy(&srv->lock);
        pthread_cond_destroy(&srv->cond);
        pthread_rwlock_destroy(&srv->batch_lock);
        free(regs);
        free(threads);
        free(srv);
        return rc;
    }
    grpc_server_start(srv->server);
    for (size_t i = 0; i < nmethods; i++)
        for (int k = 0; k < REQUESTS_PER_METHOD; k++)
            request_call(srv, &regs[i]);
    static const struct rpc_method unknown = {.path = "(unregistered)",
                                              .kind = RPC_BIDI_STREAM};
    srv->unknown.m = &unknown;
    request_call(srv, &srv->unknown);
    for (int i = 0; i < cfg->cq_threads; i++) {
        if (pthread_create(&threads[srv->nthreads], NULL, cq_thread, srv) ==
            0)
            srv->nthreads++;
    }
    *out = srv;
    return 0;
}

void rpc_server_begin_shutdown(struct rpc_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    srv->stopping = true;
    pthread_mutex_unlock(&srv->lock);
    grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->shutdown_tag);
}

static bool wait_shutdown(struct rpc_server *srv, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&srv->lock);
    int rc = 0;
    while (!srv->shutdown_done && rc == 0)
        rc = pthread_cond_timedwait(&srv->cond, &srv->lock, &until);
    bool done = srv->shutdown_done;
    pthread_mutex_unlock(&srv->lock);
    return done;
}

void rpc_server_finish_shutdown(struct rpc_server *srv, int grace_ms)
{
    if (wait_shutdown(srv, grace_ms))
        return;
    /* Calls still open after the grace period (an idle stream, a client
     * that stopped reading) would hold shutdown forever. */
    grpc_server_cancel_all_calls(srv->server);
    while (!wait_shutdown(srv, 1000))
        ;
}

void rpc_server_stop(struct rpc_server *srv)
{
    if (srv->stopped)
        return;
    srv->stopped = true;
    /* The calls are over (finish_shutdown): their threads are on their
     * way out. */
    pthread_mutex_lock(&srv->lock);
    while (srv->call_threads > 0)
        pthread_cond_wait(&srv->cond, &srv->lock);
    pthread_mutex_unlock(&srv->lock);
    grpc_server_destroy(srv->server);
    pthread_rwlock_wrlock(&srv->batch_lock);
    srv->cq_closed = true;
    grpc_completion_queue_shutdown(srv->cq);
    pthread_rwlock_unlock(&srv->batch_lock);
    /* Each thread leaves once the queue is drained: every handler that
     * was still running has returned. */
    for (int i = 0; i < srv->nthreads; i++)
        pthread_join(srv->threads[i], NULL);
}

void rpc_server_destroy(struct rpc_server *srv)
{
    rpc_server_stop(srv);
    grpc_completion_queue_destroy(srv->cq);
    pthread_mutex_destroy(&srv->lock);
    pthread_cond_destroy(&srv->cond);
    pthread_rwlock_destroy(&srv->batch_lock);
    free(srv->methods);
    free(srv->threads);
    free(srv);
}
