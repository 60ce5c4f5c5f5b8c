/* grpc_server.c: the bare gRPC server the baselines talk to – a unary
 * method with an empty handler and two bidi streams echoing each message,
 * on the gRPC C core, in a process of its own, two completion-queue
 * threads like vcpud's default. Echo answers from the completion-queue
 * thread; EchoThread from a thread of the call's own, the way vcpud serves
 * Attach. Both send each echo and receive the next message in one batch
 * (one write, one completion), the cheapest shape measured. */
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

enum tag_kind { T_NEW, T_UNARY_DONE, T_XCHG, T_DONE };
enum method { M_UNARY, M_ECHO, M_ECHO_THREAD };

struct tag {
    enum tag_kind kind;
    struct scall *c;
};

/* One call of any method. A stream has one batch in flight at a time: the
 * client sends its next message only after the echo. */
struct scall {
    enum method m;
    grpc_call *call;
    grpc_completion_queue *own; /* M_ECHO_THREAD: plucked by its thread */
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *payload; /* unary: the request */
    struct tag t_new, t_done, t_xchg;
    grpc_slice details;
    int cancelled;
    grpc_byte_buffer *recv, *sending;
    bool md_sent;
};

static grpc_server *g_server;
static grpc_completion_queue *g_cq;
static void *g_methods[3];

static gpr_timespec forever(void)
{
    return gpr_inf_future(GPR_CLOCK_REALTIME);
}

static void scall_free(struct scall *c)
{
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    if (c->recv)
        grpc_byte_buffer_destroy(c->recv);
    if (c->sending)
        grpc_byte_buffer_destroy(c->sending);
    grpc_slice_unref(c->details);
    grpc_metadata_array_destroy(&c->md);
    if (c->call)
        grpc_call_unref(c->call);
    if (c->own) {
        grpc_completion_queue_shutdown(c->own);
        while (
            grpc_completion_queue_pluck(c->own, NULL, forever(), NULL).type !=
            GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(c->own);
    }
    free(c);
}

static void request_call(enum method m)
{
    struct scall *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->m = m;
    c->details = grpc_empty_slice();
    grpc_metadata_array_init(&c->md);
    c->t_new = (struct tag){T_NEW, c};
    c->t_done = (struct tag){m == M_UNARY ? T_UNARY_DONE : T_DONE, c};
    c->t_xchg = (struct tag){T_XCHG, c};
    if (m == M_ECHO_THREAD)
        c->own = grpc_completion_queue_create_for_pluck(NULL);
    if (grpc_server_request_registered_call(
            g_server, g_methods[m], &c->call, &c->deadline, &c->md,
            m == M_UNARY ? &c->payload : NULL, c->own ? c->own : g_cq, g_cq,
            &c->t_new) != GRPC_CALL_OK)
        scall_free(c);
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

/* Echo (c->sending) (none at first) and receive the next message, in one
 * batch. False if the batch could not start. */
static bool exchange(struct scall *c)
{
    grpc_op ops[3];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (c->sending && !c->md_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->md_sent = true;
    }
    if (c->sending) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->sending;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &c->recv;
    return grpc_call_start_batch(c->call, ops, n, &c->t_xchg, NULL) ==
           GRPC_CALL_OK;
}

/* The half-close (or a failure): OK, and wait for the close. */
static bool finish(struct scall *c)
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
    return grpc_call_start_batch(c->call, ops, n, &c->t_done, NULL) ==
           GRPC_CALL_OK;
}

/* An exchange came back: what arrived is the next echo. False when the
 * stream is over and the call was finished (or could not be). */
static bool exchanged(struct scall *c, bool ok, bool *finishing)
{
    if (c->sending)
        grpc_byte_buffer_destroy(c->sending);
    c->sending = c->recv;
    c->recv = NULL;
    if (ok && c->sending)
        return exchange(c);
    *finishing = finish(c);
    return false;
}

/* EchoThread: the call's thread reads, echoes and finishes it. */
static void *echo_thread(void *arg)
{
    struct scall *c = arg;
    bool ok = exchange(c), finishing = false;
    while (ok) {
        grpc_event ev =
            grpc_completion_queue_pluck(c->own, &c->t_xchg, forever(), NULL);
        ok = exchanged(c, ev.success, &finishing);
    }
    if (finishing)
        grpc_completion_queue_pluck(c->own, &c->t_done, forever(), NULL);
    scall_free(c);
    return NULL;
}

static void start_echo_thread(struct scall *c)
{
    pthread_t th;
    if (pthread_create(&th, NULL, echo_thread, c) == 0)
        pthread_detach(th);
    else
        scall_free(c);
}

static void *srv_thread(void *arg)
{
    (void)arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(g_cq, forever(), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        struct tag *t = ev.tag;
        struct scall *c = t->c;
        bool finishing = false;
        switch (t->kind) {
        case T_NEW:
            if (!ev.success) {
                scall_free(c);
                break;
            }
            request_call(c->m);
            if (c->m == M_UNARY)
                unary_answer(c);
            else if (c->m == M_ECHO_THREAD)
                start_echo_thread(c);
            else if (!exchange(c))
                scall_free(c);
            break;
        case T_XCHG:
            if (!exchanged(c, ev.success, &finishing) && !finishing)
                scall_free(c);
            break;
        case T_UNARY_DONE:
        case T_DONE:
            scall_free(c);
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
    g_methods[M_UNARY] = grpc_server_register_method(
        g_server, BENCH_GRPC_UNARY, NULL,
        GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    g_methods[M_ECHO] = grpc_server_register_method(
        g_server, BENCH_GRPC_STREAM, NULL, GRPC_SRM_PAYLOAD_NONE, 0);
    g_methods[M_ECHO_THREAD] = grpc_server_register_method(
        g_server, BENCH_GRPC_STREAM_THREAD, NULL, GRPC_SRM_PAYLOAD_NONE, 0);
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
        request_call(M_UNARY);
        request_call(M_ECHO);
        request_call(M_ECHO_THREAD);
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
