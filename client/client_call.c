/* client_call.c: unary and streaming calls over the gRPC C core. */
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <pb_decode.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "pb_io.h"

/* Each call has its own queue, so tags only need to differ within a call. */
#define TAG_UNARY ((void *)1)
#define TAG_STATUS ((void *)2)
#define TAG_SEND ((void *)3)
#define TAG_RECV ((void *)4)

/* Past this a deadline is as good as none, and the sum cannot overflow
 * gpr_time_from_millis(). */
#define DEADLINE_MAX_MS (100ull * 365 * 24 * 3600 * 1000)

static const char *method_name(enum vcpud__method m)
{
    return vcpud__method_paths[m] + strlen(VCPUD__SERVICE);
}

static gpr_timespec deadline_after(const struct vcpud_client *c,
                                   uint64_t extra_ms)
{
    uint64_t ms = c->deadline_ms;
    if (extra_ms > DEADLINE_MAX_MS - ms)
        return gpr_inf_future(GPR_CLOCK_MONOTONIC);
    return gpr_time_add(
        gpr_now(GPR_CLOCK_MONOTONIC),
        gpr_time_from_millis((int64_t)(ms + extra_ms), GPR_TIMESPAN));
}

/* The call's deadline bounds every batch, so waiting without one of our
 * own cannot hang. */
static grpc_event next_event(grpc_completion_queue *cq)
{
    return grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME),
                                      NULL);
}

static void destroy_cq(grpc_completion_queue *cq)
{
    grpc_completion_queue_shutdown(cq);
    while (next_event(cq).type != GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
}

/* A queue per call rather than one per client: a shared queue would need
 * one thread to run it (pluck admits only 6 threads at a time), and a
 * stream must see its status while it waits for a send (see wait_tag). */
static int open_call(struct vcpud_client *c, enum vcpud__method m,
                     uint64_t extra_ms, grpc_call **callp,
                     grpc_completion_queue **cqp,
                     struct vcpud_client_status *st)
{
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    if (!cq)
        return vcpud__fail(st, GRPC_STATUS_RESOURCE_EXHAUSTED, -ENOMEM,
                           "cannot create a completion queue");
    grpc_call *call = grpc_channel_create_registered_call(
        c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, c->methods[m],
        deadline_after(c, extra_ms), NULL);
    if (!call) {
        destroy_cq(cq);
        return vcpud__fail(st, GRPC_STATUS_INTERNAL, -EIO,
                           "cannot create a %s call", method_name(m));
    }
    *callp = call;
    *cqp = cq;
    return 0;
}

/* Only once the call's last tag is back (the core's rule for unref). */
static void close_call(grpc_call *call, grpc_completion_queue *cq)
{
    grpc_call_unref(call);
    destroy_cq(cq);
}

static int batch_failed(grpc_call_error e, struct vcpud_client_status *st)
{
    return vcpud__fail(st, GRPC_STATUS_INTERNAL, -EIO,
                       "grpc_call_start_batch failed (grpc_call_error %d)",
                       (int)e);
}

static void set_auth(grpc_metadata *md, size_t *count,
                     const struct vcpud_client *c)
{
    *count = 0;
    if (!c->has_auth)
        return;
    md->key = grpc_slice_from_static_string("authorization");
    md->value = c->auth;
    *count = 1;
}

static int encode(enum vcpud__method m, const pb_msgdesc_t *desc,
                  const void *msg, grpc_byte_buffer **out,
                  struct vcpud_client_status *st)
{
    uint8_t *buf;
    size_t len;
    struct vcpud_err err;
    int rc = vcpud_pb_encode(desc, msg, &buf, &len, &err);
    if (rc < 0)
        return vcpud__fail(st,
                           rc == -ENOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED
                                         : GRPC_STATUS_INVALID_ARGUMENT,
                           rc, "%s request: %s", method_name(m), err.msg);
    grpc_slice s;
    if (len) {
        /* Hand the buffer over instead of copying it once more. */
        s = grpc_slice_new(buf, len, free);
    } else {
        free(buf);
        s = grpc_empty_slice();
    }
    *out = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return 0;
}

static int decode(enum vcpud__method m, grpc_byte_buffer *bb,
                  const pb_msgdesc_t *desc, void *msg,
                  struct vcpud_client_status *st)
{
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb))
        return vcpud__bad_reply(st, "%s response: cannot read the payload",
                                method_name(m));
    grpc_slice s = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    pb_istream_t is =
        pb_istream_from_buffer(GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s));
    bool ok = pb_decode(&is, desc, msg);
    grpc_slice_unref(s);
    if (!ok)
        return vcpud__bad_reply(st, "malformed %s response: %s", method_name(m),
                                PB_GET_ERROR(&is));
    return 0;
}

int vcpud__unary(struct vcpud_client *c, enum vcpud__method m,
                 uint64_t extra_ms, const pb_msgdesc_t *req_desc,
                 const void *req, const pb_msgdesc_t *resp_desc, void *resp,
                 struct vcpud_client_status *st)
{
    grpc_byte_buffer *out;
    int rc = encode(m, req_desc, req, &out, st);
    if (rc < 0)
        return rc;
    grpc_call *call;
    grpc_completion_queue *cq;
    if ((rc = open_call(c, m, extra_ms, &call, &cq, st)) < 0) {
        grpc_byte_buffer_destroy(out);
        return rc;
    }

    grpc_metadata auth;
    grpc_metadata_array initial, trailers;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailers);
    grpc_byte_buffer *in = NULL;
    grpc_status_code code = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();

    /* One batch: one wake-up per call, which is what Run's latency is. */
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    set_auth(&auth, &ops[0].data.send_initial_metadata.count, c);
    ops[0].data.send_initial_metadata.metadata = &auth;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = out;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &in;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailers;
    ops[5].data.recv_status_on_client.status = &code;
    ops[5].data.recv_status_on_client.status_details = &details;

    grpc_call_error e = grpc_call_start_batch(call, ops, 6, TAG_UNARY, NULL);
    if (e != GRPC_CALL_OK) {
        rc = batch_failed(e, st);
    } else {
        /* A batch holding RECV_STATUS_ON_CLIENT always succeeds; the
         * status says how the call went. Its tag is the call's only one. */
        next_event(cq);
        rc = vcpud__status(st, code, details, &trailers);
        if (rc == 0 && resp_desc) {
            if (!in)
                rc = vcpud__bad_reply(st, "%s: the server sent no response",
                                      method_name(m));
            else
                rc = decode(m, in, resp_desc, resp, st);
        }
    }

    grpc_byte_buffer_destroy(out);
    if (in)
        grpc_byte_buffer_destroy(in);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailers);
    close_call(call, cq);
    return rc;
}

int vcpud__call_start(struct vcpud__call *call, struct vcpud_client *c,
                      enum vcpud__method m, uint64_t extra_ms,
                      struct vcpud_client_status *st)
{
    memset(call, 0, sizeof(*call));
    call->c = c;
    call->m = m;
    int rc = open_call(c, m, extra_ms, &call->call, &call->cq, st);
    if (rc < 0)
        return rc;
    grpc_metadata_array_init(&call->initial);
    grpc_metadata_array_init(&call->trailers);
    call->code = GRPC_STATUS_UNKNOWN;
    call->details = grpc_empty_slice();

    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.trailing_metadata = &call->trailers;
    op.data.recv_status_on_client.status = &call->code;
    op.data.recv_status_on_client.status_details = &call->details;
    grpc_call_error e =
        grpc_call_start_batch(call->call, &op, 1, TAG_STATUS, NULL);
    if (e != GRPC_CALL_OK) {
        grpc_metadata_array_destroy(&call->initial);
        grpc_metadata_array_destroy(&call->trailers);
        close_call(call->call, call->cq);
        return batch_failed(e, st);
    }
    return 0;
}

/* Wait for (tag), noting the status should it come first. */
static bool wait_tag(struct vcpud__call *call, void *tag)
{
    for (;;) {
        grpc_event ev = next_event(call->cq);
        if (ev.type != GRPC_OP_COMPLETE)
            return false;
        if (ev.tag == TAG_STATUS) {
            call->status_done = call->over = true;
            /* A server that ended the call has stopped reading it, so it
             * never reopens the flow-control window a pending send waits
             * for: without this the send ends only at the deadline. */
            if (tag == TAG_SEND)
                grpc_call_cancel(call->call, NULL);
        }
        if (ev.tag == tag)
            return ev.success;
    }
}

int vcpud__call_send(struct vcpud__call *call, const pb_msgdesc_t *desc,
                     const void *msg, bool last, struct vcpud_client_status *st)
{
    if (call->over)
        return 0;
    grpc_byte_buffer *out;
    int rc = encode(call->m, desc, msg, &out, st);
    if (rc < 0)
        return rc;

    grpc_metadata auth;
    grpc_op ops[3];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (!call->md_sent) {
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        set_auth(&auth, &ops[n].data.send_initial_metadata.count, call->c);
        ops[n++].data.send_initial_metadata.metadata = &auth;
    }
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = out;
    if (last)
        ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;

    grpc_call_error e =
        grpc_call_start_batch(call->call, ops, n, TAG_SEND, NULL);
    if (e != GRPC_CALL_OK) {
        grpc_byte_buffer_destroy(out);
        return batch_failed(e, st);
    }
    call->md_sent = true;
    call->half_closed = last;
    bool ok = wait_tag(call, TAG_SEND);
    grpc_byte_buffer_destroy(out);
    if (!ok)
        call->over = true;
    return 0;
}

/*
 * One receiving batch: initial metadata on first use, then (out) if any,
 * a half-close if asked, and the next message – so that a bidi exchange
 * and a plain receive share the bookkeeping. Takes (out). 1 for a message
 * decoded into (msg), 0 when the call is over, negative errno on error.
 */
static int send_recv(struct vcpud__call *call, grpc_byte_buffer *out,
                     bool half_close, const pb_msgdesc_t *desc, void *msg,
                     struct vcpud_client_status *st)
{
    if (call->eos || (out && call->over)) {
        if (out)
            grpc_byte_buffer_destroy(out);
        return 0;
    }
    grpc_metadata auth;
    grpc_byte_buffer *in = NULL;
    grpc_op ops[5];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (!call->md_sent) {
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        set_auth(&auth, &ops[n].data.send_initial_metadata.count, call->c);
        ops[n++].data.send_initial_metadata.metadata = &auth;
    }
    if (out) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = out;
    }
    if (half_close && !call->half_closed)
        ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    if (!call->md_recvd) {
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n++].data.recv_initial_metadata.recv_initial_metadata =
            &call->initial;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &in;

    grpc_call_error e =
        grpc_call_start_batch(call->call, ops, n, TAG_RECV, NULL);
    if (e != GRPC_CALL_OK) {
        if (out)
            grpc_byte_buffer_destroy(out);
        return batch_failed(e, st);
    }
    call->md_sent = call->md_recvd = true;
    call->half_closed |= half_close;
    bool ok = wait_tag(call, TAG_RECV);
    if (out)
        grpc_byte_buffer_destroy(out);
    if (!ok || !in) {
        /* Failed or the end of the stream: the status tells which. */
        if (in)
            grpc_byte_buffer_destroy(in);
        call->eos = call->over = true;
        return 0;
    }
    int rc = decode(call->m, in, desc, msg, st);
    grpc_byte_buffer_destroy(in);
    return rc < 0 ? rc : 1;
}

int vcpud__call_recv(struct vcpud__call *call, const pb_msgdesc_t *desc,
                     void *msg, struct vcpud_client_status *st)
{
    return send_recv(call, NULL, true, desc, msg, st);
}

/* Bidi streams: send one message and receive the answer in one batch, so
 * an exit costs one wait on the queue and no half-close happens. */
int vcpud__call_exchange(struct vcpud__call *call, const pb_msgdesc_t *out_desc,
                         const void *out_msg, const pb_msgdesc_t *in_desc,
                         void *in_msg, struct vcpud_client_status *st)
{
    if (call->over || call->eos)
        return 0;
    grpc_byte_buffer *out;
    int rc = encode(call->m, out_desc, out_msg, &out, st);
    if (rc < 0)
        return rc;
    return send_recv(call, out, false, in_desc, in_msg, st);
}

int vcpud__call_end(struct vcpud__call *call, int rc,
                    struct vcpud_client_status *st)
{
    if (!call->status_done) {
        /* Our own error ends a call the server would otherwise go on
         * with (a stream we no longer read). */
        if (rc < 0)
            grpc_call_cancel(call->call, NULL);
        wait_tag(call, TAG_STATUS);
    }
    if (rc >= 0)
        rc = vcpud__status(st, call->code, call->details, &call->trailers);
    grpc_slice_unref(call->details);
    grpc_metadata_array_destroy(&call->initial);
    grpc_metadata_array_destroy(&call->trailers);
    close_call(call->call, call->cq);
    return rc;
}
