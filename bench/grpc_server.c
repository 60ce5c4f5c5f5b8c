/* grpc_server.c: the bare gRPC server the baselines talk to – a unary
 * method with an empty handler and a bidi stream echoing each message, on
 * the gRPC C core, in a process of its own, two completion-queue threads
 * like vcpud's default. */
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "grpc_bare.h"

#define SERVER_THREADS 2 /* vcpud's default --cq-threads */
#define REQUESTS 2       /* calls of each method waiting to be accepted */

enum tag_kind { T_NEW, T_UNARY_DONE, T_RECV, T_SEND, T_DONE };

struct tag {
    enum tag_kind kind;
    struct scall *c;
};

/* One call of either method. */
struct scall {
    bool stream;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *payload; /* unary: the request */
    struct tag t_new, t_done, t_recv, t_send;
    grpc_slice details;
    int cancelled;
    /* Streams: one receive always posted, one send at a time. */
    pthread_mutex_t lock;
    int refs; /* batches in flight */
    grpc_byte_buffer *recv, *sending, *pending;
    bool md_sent, send_busy;
};

static grpc_server *g_server;
static grpc_completion_queue *g_cq;
static void *g_unary, *g_stream;

static void scall_free(struct scall *c)
{
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    if (c->recv)
        grpc_byte_buffer_destroy(c->recv);
    if (c->sending)
        grpc_byte_buffer_destroy(c->sending);
    if (c->pending)
        grpc_byte_buffer_destroy(c->pending);
    grpc_slice_unref(c->details);
    grpc_metadata_array_destroy(&c->md);
    if (c->call)
        grpc_call_unref(c->call);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static void request_call(bool stream)
{
    struct scall *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->stream = stream;
    c->details = grpc_empty_slice();
    grpc_metadata_array_init(&c->md);
    pthread_mutex_init(&c->lock, NULL);
    c->t_new = (struct tag){T_NEW, c};
    c->t_done = (struct tag){stream ? T_DONE : T_UNARY_DONE, c};
    c->t_recv = (struct tag){T_RECV, c};
    c->t_send = (struct tag){T_SEND, c};
    if (grpc_server_request_registered_call(
            g_server, stream ? g_stream : g_unary, &c->call, &c->deadline,
            &c->md, stream ? NULL : &c->payload, g_cq, g_cq,
            &c->t_new) != GRPC_CALL_OK)
        scall_free(c);
}

/* Start a batch on a stream; its completion gives the reference back. */
static void stream_batch(struct scall *c, grpc_op *ops, size_t n, struct tag *t)
{
    c->refs++;
    if (grpc_call_start_batch(c->call, ops, n, t, NULL) != GRPC_CALL_OK)
        c->refs--;
}

/* The empty handler: empty message and OK, with the wait for the client's
 * close, in one batch. */
static void unary_answer(struct scall *c)
{
    grpc_slice empty = grpc_empty_slice();
    c->sending = grpc_raw_byte_buffer_create(&empty, 1);
    grpc_op ops[4];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = c->sending;
    ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[2].data.send_status_from_server.status = GRPC_STATUS_OK;
    ops[2].data.send_status_from_server.status_details = &c->details;
    ops[3].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[3].data.recv_close_on_server.cancelled = &c->cancelled;
    if (grpc_call_start_batch(c->call, ops, 4, &c->t_done, NULL) !=
        GRPC_CALL_OK)
        scall_free(c);
}

static void post_recv_locked(struct scall *c)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->recv;
    stream_batch(c, &op, 1, &c->t_recv);
}

static void send_locked(struct scall *c, grpc_byte_buffer *bb)
{
    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (!c->md_sent)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = bb;
    c->md_sent = true;
    c->sending = bb;
    c->send_busy = true;
    stream_batch(c, ops, n, &c->t_send);
}

/* The half-close (or a failure): OK, and wait for the close. */
static void finish_locked(struct scall *c)
{
    grpc_op ops[3];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (!c->md_sent)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    c->md_sent = true;
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = GRPC_STATUS_OK;
    ops[n++].data.send_status_from_server.status_details = &c->details;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
    stream_batch(c, ops, n, &c->t_done);
}

/* A stream's batch came back: echo a message (after the send in flight,
 * if any), or end the call. */
static void on_stream_event(struct tag *t, bool ok)
{
    struct scall *c = t->c;
    pthread_mutex_lock(&c->lock);
    if (t->kind == T_RECV) {
        grpc_byte_buffer *bb = c->recv;
        c->recv = NULL;
        if (ok && bb) {
            if (c->send_busy)
                c->pending = bb;
            else
                send_locked(c, bb);
            post_recv_locked(c);
        } else {
            if (bb)
                grpc_byte_buffer_destroy(bb);
            finish_locked(c);
        }
    } else if (t->kind == T_SEND) {
        grpc_byte_buffer_destroy(c->sending);
        c->sending = NULL;
        c->send_busy = false;
        if (c->pending) {
            grpc_byte_buffer *bb = c->pending;
            c->pending = NULL;
            send_locked(c, bb);
        }
    }
    bool last = --c->refs == 0;
    pthread_mutex_unlock(&c->lock);
    if (last)
        scall_free(c);
}

static void *srv_thread(void *arg)
{
    (void)arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(
            g_cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        struct tag *t = ev.tag;
        struct scall *c = t->c;
        switch (t->kind) {
        case T_NEW:
            if (!ev.success) {
                scall_free(c);
                break;
            }
            request_call(c->stream);
            if (!c->stream) {
                unary_answer(c);
                break;
            }
            pthread_mutex_lock(&c->lock);
            post_recv_locked(c);
            pthread_mutex_unlock(&c->lock);
            break;
        case T_UNARY_DONE:
            scall_free(c);
            break;
        default:
            on_stream_event(t, ev.success);
            break;
        }
    }
    return NULL;
}

int bench_grpc_server_main(const char *unix_path)
{
    grpc_init();
    g_cq = grpc_completion_queue_create_for_next(NULL);
    g_server = grpc_server_create(NULL, NULL);
    grpc_server_register_completion_queue(g_server, g_cq, NULL);
    g_unary = grpc_server_register_method(
        g_server, BENCH_GRPC_UNARY, NULL,
        GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    g_stream = grpc_server_register_method(g_server, BENCH_GRPC_STREAM, NULL,
                                           GRPC_SRM_PAYLOAD_NONE, 0);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    char unix_addr[160];
    snprintf(unix_addr, sizeof(unix_addr), "unix:%s", unix_path);
    unlink(unix_path);
    int port = grpc_server_add_http2_port(g_server, "127.0.0.1:0", creds);
    int uport = grpc_server_add_http2_port(g_server, unix_addr, creds);
    grpc_server_credentials_release(creds);
    if (port <= 0 || uport <= 0) {
        printf("error cannot listen\n");
        return 1;
    }
    grpc_server_start(g_server);
    for (int i = 0; i < REQUESTS; i++) {
        request_call(false);
        request_call(true);
    }
    pthread_t t[SERVER_THREADS];
    for (int i = 0; i < SERVER_THREADS; i++)
        pthread_create(&t[i], NULL, srv_thread, NULL);
    printf("tcp 127.0.0.1:%d\nunix %s\n", port, unix_addr);
    fflush(stdout);
    /* Serves until SIGTERM ends the process. */
    for (int i = 0; i < SERVER_THREADS; i++)
        pthread_join(t[i], NULL);
    return 0;
}
