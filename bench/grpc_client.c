/* grpc_client.c: the bare gRPC baselines, client side – a unary call with
 * an empty handler (grpc_unary) and one message each way on a bidi stream
 * (grpc_stream), each step one batch as vcpud's client makes it, against
 * the server of grpc_server.c in its own process. */
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "grpc_bare.h"
#include "proc.h"

#define TAG_STEP ((void *)1)
#define TAG_STATUS ((void *)2)
#define TAG_CLOSE ((void *)3)

struct bare {
    grpc_channel *channel;
    void *method;
    grpc_completion_queue *cq;
    /* grpc_stream only: the call, its status, the message sent. */
    grpc_call *call;
    grpc_status_code code;
    grpc_slice details;
    grpc_metadata_array initial, trailers;
    bool first, status_done;
    size_t bytes;
    uint8_t msg[256];
};

/* Wait for (tag) on the item's queue; false when it failed or the stream's
 * status came first. */
static bool wait_tag(struct bare *b, void *tag)
{
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(
            b->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            return false;
        if (ev.tag == TAG_STATUS)
            b->status_done = true;
        if (ev.tag == tag)
            return ev.success && !(tag != TAG_STATUS && b->status_done);
    }
}

static gpr_timespec in_seconds(int s)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_seconds(s, GPR_TIMESPAN));
}

/* grpc_unary: a call, one batch with everything, as vcpud__unary does. */
static int unary_step(void *ctx, uint64_t *ns, char *why)
{
    struct bare *b = ctx;
    uint64_t t0 = bench_now_ns();
    grpc_call *call = grpc_channel_create_registered_call(
        b->channel, NULL, GRPC_PROPAGATE_DEFAULTS, b->cq, b->method,
        in_seconds(10), NULL);
    grpc_slice empty = grpc_empty_slice();
    grpc_byte_buffer *out = grpc_raw_byte_buffer_create(&empty, 1);
    grpc_byte_buffer *in = NULL;
    grpc_metadata_array initial, trailers;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailers);
    grpc_status_code code = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
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
    int rc = 0;
    if (grpc_call_start_batch(call, ops, 6, TAG_STEP, NULL) != GRPC_CALL_OK) {
        rc = -EIO;
        snprintf(why, BENCH_REASON_MAX, "grpc_call_start_batch failed");
    } else {
        wait_tag(b, TAG_STEP);
    }
    *ns = bench_now_ns() - t0;
    if (rc == 0 && code != GRPC_STATUS_OK) {
        char *d = grpc_slice_to_c_string(details);
        snprintf(why, BENCH_REASON_MAX, "status %d: %.200s", (int)code, d);
        gpr_free(d);
        rc = -EIO;
    }
    grpc_byte_buffer_destroy(out);
    if (in)
        grpc_byte_buffer_destroy(in);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailers);
    grpc_call_unref(call);
    return rc;
}

/* grpc_stream: send a message and receive its echo in one batch, as
 * vcpud__call_exchange does. */
static int stream_step(void *ctx, uint64_t *ns, char *why)
{
    struct bare *b = ctx;
    uint64_t t0 = bench_now_ns();
    grpc_slice s =
        grpc_slice_from_copied_buffer((const char *)b->msg, b->bytes);
    grpc_byte_buffer *out = grpc_raw_byte_buffer_create(&s, 1), *in = NULL;
    grpc_slice_unref(s);
    grpc_op ops[4];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (b->first)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = out;
    if (b->first) {
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n++].data.recv_initial_metadata.recv_initial_metadata = &b->initial;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &in;
    b->first = false;
    bool ok = grpc_call_start_batch(b->call, ops, n, TAG_STEP, NULL) ==
                  GRPC_CALL_OK &&
              wait_tag(b, TAG_STEP);
    size_t got = 0;
    if (ok && in) {
        grpc_byte_buffer_reader r;
        if (grpc_byte_buffer_reader_init(&r, in)) {
            grpc_slice all = grpc_byte_buffer_reader_readall(&r);
            got = GRPC_SLICE_LENGTH(all);
            grpc_slice_unref(all);
            grpc_byte_buffer_reader_destroy(&r);
        }
    }
    *ns = bench_now_ns() - t0;
    grpc_byte_buffer_destroy(out);
    if (in)
        grpc_byte_buffer_destroy(in);
    if (!ok || got != b->bytes) {
        snprintf(why, BENCH_REASON_MAX, "the echo stream %s",
                 ok ? "answered a message of another size" : "ended");
        return -EIO;
    }
    return 0;
}

static struct bare *bare_open(const char *addr, const char *method)
{
    struct bare *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    b->channel = grpc_channel_create(addr, creds, NULL);
    grpc_channel_credentials_release(creds);
    b->method = grpc_channel_register_call(b->channel, method, NULL, NULL);
    b->cq = grpc_completion_queue_create_for_next(NULL);
    b->details = grpc_empty_slice();
    grpc_metadata_array_init(&b->initial);
    grpc_metadata_array_init(&b->trailers);
    return b;
}

/* Start the echo stream; its status is waited for from the start. */
static bool bare_stream_start(struct bare *b, size_t bytes)
{
    b->bytes = bytes < sizeof(b->msg) ? bytes : sizeof(b->msg);
    memset(b->msg, 0x5a, b->bytes);
    b->first = true;
    b->code = GRPC_STATUS_UNKNOWN;
    b->call = grpc_channel_create_registered_call(
        b->channel, NULL, GRPC_PROPAGATE_DEFAULTS, b->cq, b->method,
        gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.trailing_metadata = &b->trailers;
    op.data.recv_status_on_client.status = &b->code;
    op.data.recv_status_on_client.status_details = &b->details;
    return grpc_call_start_batch(b->call, &op, 1, TAG_STATUS, NULL) ==
           GRPC_CALL_OK;
}

static void bare_close(void *arg)
{
    struct bare *b = arg;
    if (b->call) {
        grpc_op op;
        memset(&op, 0, sizeof(op));
        op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        if (!b->status_done && grpc_call_start_batch(b->call, &op, 1, TAG_CLOSE,
                                                     NULL) == GRPC_CALL_OK)
            wait_tag(b, TAG_CLOSE);
        if (!b->status_done)
            wait_tag(b, TAG_STATUS);
        grpc_call_unref(b->call);
    }
    grpc_slice_unref(b->details);
    grpc_metadata_array_destroy(&b->initial);
    grpc_metadata_array_destroy(&b->trailers);
    grpc_channel_destroy(b->channel);
    grpc_completion_queue_shutdown(b->cq);
    while (grpc_completion_queue_next(b->cq, gpr_inf_future(GPR_CLOCK_REALTIME),
                                      NULL)
               .type != GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(b->cq);
    free(b);
}

/* A row of bare calls: unary when (stream) is NULL, else that stream. */
static void bare_item(const struct bench_config *cfg, struct bench_row *row,
                      const char *addr, pid_t server, const char *stream)
{
    if (!row)
        return;
    if (!addr) {
        bench_row_skip(row, "the bare gRPC server did not start");
        return;
    }
    struct bare *b = bare_open(addr, stream ? stream : BENCH_GRPC_UNARY);
    if (!b) {
        bench_row_skip(row, "out of memory");
        return;
    }
    bench_defer(bare_close, b);
    if (stream && !bare_stream_start(b, bench_exit_message_size())) {
        bench_row_skip(row, "cannot start the echo stream");
        return;
    }
    bench_item_add(row, stream ? stream_step : unary_step, b, server,
                   cfg->warmup, cfg->iters);
}

struct server {
    struct bench_proc proc;
    char path[108];
};

static void server_stop(void *arg)
{
    struct server *s = arg;
    bench_stop(&s->proc);
    unlink(s->path);
    free(s);
}

static void shutdown_grpc(void *arg)
{
    (void)arg;
    grpc_shutdown();
}

void bench_grpc(const struct bench_config *cfg)
{
    static const char *const transports[] = {"tcp", "unix"};
    static const char *const names[2][2] = {
        {"grpc_unary", "grpc_stream"},      /* this process, C core */
        {"py_grpc_unary", "py_grpc_stream"} /* a Python grpcio process */
    };
    struct bench_row *rows[2][2][2]; /* [python][stream][transport] */
    struct bench_row *threaded[2];   /* grpc_stream_thread [transport] */
    bool any = false;
    for (int py = 0; py < 2; py++) {
        for (int s = 0; s < 2; s++)
            for (int t = 0; t < 2; t++) {
                rows[py][s][t] = bench_rows_add(names[py][s], transports[t]);
                any |= rows[py][s][t] != NULL;
            }
        for (int t = 0; !py && t < 2; t++) { /* next to grpc_stream */
            threaded[t] = bench_rows_add("grpc_stream_thread", transports[t]);
            any |= threaded[t] != NULL;
        }
    }
    struct server *srv = any ? calloc(1, sizeof(*srv)) : NULL;
    if (!srv)
        return;
    srv->proc.out_fd = -1;
    snprintf(srv->path, sizeof(srv->path), "/tmp/vcpud-bench-%d-grpc.sock",
             (int)getpid());
    bench_tmp_path(srv->path);
    bench_defer(server_stop, srv);
    const char *argv[] = {cfg->self, "--child", "grpc-server", srv->path, NULL};
    char addr[2][160] = {"", ""}, line[200];
    if (bench_spawn(&srv->proc, argv, -1, true, NULL) == 0) {
        for (int i = 0; i < 2 && bench_read_line(&srv->proc, line, sizeof(line),
                                                 10000) == 0;
             i++) {
            if (strncmp(line, "tcp ", 4) == 0)
                snprintf(addr[0], sizeof(addr[0]), "%.150s", line + 4);
            else if (strncmp(line, "unix ", 5) == 0)
                snprintf(addr[1], sizeof(addr[1]), "%.150s", line + 5);
        }
    }
    grpc_init();
    bench_defer(shutdown_grpc, NULL);
    for (int t = 0; t < 2; t++) {
        const char *a = addr[t][0] ? addr[t] : NULL;
        bare_item(cfg, rows[0][0][t], a, srv->proc.pid, NULL);
        bare_item(cfg, rows[0][1][t], a, srv->proc.pid, BENCH_GRPC_STREAM);
        bare_item(cfg, threaded[t], a, srv->proc.pid, BENCH_GRPC_STREAM_THREAD);
    }
    /* The same calls from Python: the stream's message as ours. */
    char bytes[24];
    snprintf(bytes, sizeof(bytes), "%zu", bench_exit_message_size());
    const char *const extra[] = {"--bytes", bytes, NULL};
    for (int s = 0; s < 2; s++)
        for (int t = 0; t < 2; t++) {
            if (rows[1][s][t] && !addr[t][0])
                bench_row_skip(rows[1][s][t],
                               "the bare gRPC server did not start");
            else
                bench_py_item(cfg, rows[1][s][t], addr[t], srv->proc.pid,
                              extra);
        }
}
