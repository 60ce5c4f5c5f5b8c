/* bench.h: what the benchmark's files share – a measured row, the step
 * runner, the stats, and each item's entry point. */
#ifndef VCPUD_BENCH_H
#define VCPUD_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_NAME_MAX 32
#define BENCH_REASON_MAX 400

/* One line of the output: an item on one transport. */
struct bench_row {
    char name[BENCH_NAME_MAX];      /* "stream", "raw", ... */
    char transport[BENCH_NAME_MAX]; /* "tcp", "unix", "none" (in-process) */
    bool skipped;
    char reason[BENCH_REASON_MAX]; /* why it was skipped */
    size_t n;                      /* timed round trips */
    double median_us, p99_us, mean_us, per_s;
    /* CPU time per round trip: this process (all its threads) and the
     * server process, both whole (gRPC's own threads included). */
    double client_cpu_us, server_cpu_us;
    bool has_server;
    /* The server's own split of a round trip, mean per exit (vcpud rows,
     * from its /metrics): in the run, handing a unary Run to the vCPU's
     * thread, replying. */
    bool has_split;
    double split_guest_us, split_handover_us, split_reply_us;
    /* Filled by output.c from other rows of the same run. */
    bool has_ratio;
    double ratio, target;
    char ratio_of[64]; /* "stream / (raw + local)" */
};

/* How many round trips each item makes. */
struct bench_config {
    size_t iters;              /* timed, per item and transport */
    size_t warmup;             /* untimed, before them */
    size_t rounds;             /* interleaved blocks the iterations come in */
    size_t gdb_iters;          /* gdbstub rows: QEMU steps cost ~1 ms each */
    const char *vcpud;         /* the server binary */
    const char *vcpud_args[8]; /* extra arguments for it, NULL-terminated */
    const char *self;          /* this binary, for the helper processes */
    bool have_kvm;
    char no_kvm[BENCH_REASON_MAX]; /* why not, when !have_kvm */
};

/* ---- stats.c ---- */

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* Counters a server keeps of its exits (vcpud's /metrics). */
struct bench_split {
    uint64_t exits, guest_ns, handover_ns, reply_ns;
};
typedef int (*bench_split_fn)(void *ctx, struct bench_split *now);

/*
 * One round trip of an item. Returns 0 or a negative errno (with a
 * message in (why), BENCH_REASON_MAX bytes), and the time the measured
 * part took in *ns: a step may do untimed work around it (a run before a
 * register read).
 */
typedef int (*bench_step_fn)(void *ctx, uint64_t *ns, char *why);

/*
 * Measure (row) with (step) on (ctx): (warmup) untimed round trips, then
 * (iters) timed ones. (server) is the process answering them (0: none, the
 * work is in this process), whose CPU time is counted with the row's.
 * Nothing runs yet: bench_items_run() interleaves all items. 0, or -ENOMEM
 * (the row is then skipped).
 */
int bench_item_add(struct bench_row *row, bench_step_fn step, void *ctx,
                   pid_t server, size_t warmup, size_t iters);

/*
 * A block of (n) round trips of an item measured by another process (a
 * Python controller): their times go to (ns) (n of them), or nowhere when
 * (ns) is NULL (warm-up). 0 or a negative errno with a message in (why).
 */
typedef int (*bench_block_fn)(void *ctx, size_t n, uint64_t *ns, char *why);

/* bench_item_add for such an item: (client) is the process making the
 * round trips, whose CPU time is the row's cli_cpu. */
int bench_item_add_block(struct bench_row *row, bench_block_fn block, void *ctx,
                         pid_t client, pid_t server, size_t warmup,
                         size_t iters);

/* Read (fn) around each timed block of (row)'s item, if it has one: the
 * row shows the server's split of the block's exits. */
void bench_item_split(const struct bench_row *row, bench_split_fn fn,
                      void *ctx);

/* Run (fn)(arg) once every item is measured; in reverse order of the
 * calls, so a resource is released before what it depends on. */
void bench_defer(void (*fn)(void *arg), void *arg);

/*
 * Warm every item up, then measure them in (rounds) interleaved blocks –
 * a change of load on the machine then weighs on all rows alike – and
 * fill each row: median and p99 of the sorted samples, per_s = 1e6 / mean.
 * A failing step skips its row with the step's reason.
 */
void bench_items_run(size_t rounds);

/* Run the deferred cleanups (bench_defer). */
void bench_cleanup(void);

/* Start (row) as (name) on (transport); skipped with (fmt...) if given. */
void bench_row_init(struct bench_row *row, const char *name,
                    const char *transport);
void bench_row_skip(struct bench_row *row, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- the rows of one run (output.c) ---- */

/* Keep only the groups and rows named in (list) (comma-separated; NULL:
 * all). */
void bench_rows_only(const char *list);

/* Group (name) starts; false when it has nothing to run. (is_group) tells
 * group names from row names. */
bool bench_rows_group(const char *name, bool is_group(const char *));

/* A new row at the end of the run's list, or NULL when the row is not
 * wanted (--only) or the table is full: the caller then skips its work. */
struct bench_row *bench_rows_add(const char *name, const char *transport);

/* Compute the ratios the issue names from the rows measured. */
void bench_rows_ratios(void);

/* Print every row: a table for people, or one JSON object per line. */
void bench_rows_print(bool json);

/* ---- the items; each adds its rows with bench_rows_add ---- */

/* The in-process core: vcpud_vcpu_run on a guest doing OUT (and IN). */
void bench_local(const struct bench_config *cfg);

/* Raw socket ping-pong of (bytes) each way, TCP_NODELAY and unix. */
void bench_raw(const struct bench_config *cfg, size_t bytes);
/* The echo side, in its own process: serve the listening socket (fd). */
int bench_raw_echo_main(int fd, size_t bytes);

/* The bare gRPC C core: a unary call with an empty handler, and a message
 * each way on a bidi stream; tcp and unix. */
void bench_grpc(const struct bench_config *cfg);
/* The server side, in its own process: listen on 127.0.0.1:0 and
 * (unix_path), print both addresses on stdout, serve until SIGTERM. */
int bench_grpc_server_main(const char *unix_path);

/* vcpud's unary Run and Attach stream, against a vcpud subprocess. */
void bench_vcpud(const struct bench_config *cfg);

/* ---- metrics.c ---- */

/* vcpud's exit counters from its /metrics on 127.0.0.1:(port). 0 or a
 * negative errno (-EPROTO: the counters are missing). */
int bench_metrics_read(int port, struct bench_split *out);

/* A row driven by a Python grpcio controller (bench/py_client.py under
 * /usr/bin/python3, one process per row) against (addr), served by
 * (server); (extra) are more arguments for it, NULL-terminated. The row's
 * name says what the controller does; a controller that cannot start
 * skips the row with its reason. */
void bench_py_item(const struct bench_config *cfg, struct bench_row *row,
                   const char *addr, pid_t server, const char *const *extra);

/* QEMU's gdbstub under KVM: single-step and register read. */
void bench_gdbstub(const struct bench_config *cfg);

/* Size of an Attach exit message (an io-out of one byte), encoded. */
size_t bench_exit_message_size(void);

#endif
