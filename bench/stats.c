/* stats.c: timing round trips and summarizing them. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

uint64_t bench_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

void bench_row_init(struct bench_row *row, const char *name,
                    const char *transport)
{
    memset(row, 0, sizeof(*row));
    snprintf(row->name, sizeof(row->name), "%s", name);
    snprintf(row->transport, sizeof(row->transport), "%s", transport);
}

void bench_row_skip(struct bench_row *row, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(row->reason, sizeof(row->reason), fmt, ap);
    va_end(ap);
    row->skipped = true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The sample at quantile (q) of (n) sorted ones, nearest rank. */
static uint64_t quantile(const uint64_t *s, size_t n, double q)
{
    size_t rank = (size_t)(q * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return s[rank - 1];
}

#define MAX_ITEMS 64
#define MAX_DEFERRED 128

struct item {
    struct bench_row *row;
    bench_step_fn step;
    bench_block_fn block; /* instead of step: a block at a time */
    void *ctx;
    pid_t client, server; /* client 0: this process */
    size_t warmup, iters, done;
    uint64_t *samples;
    uint64_t client_cpu_ns, server_cpu_ns;
    bench_split_fn split; /* the server's counters, when it keeps them */
    void *split_ctx;
    struct bench_split split_sum; /* over the timed blocks */
    bool split_failed;
    bool failed;
};

static struct item items[MAX_ITEMS];
static size_t nitems;

static struct {
    void (*fn)(void *);
    void *arg;
} deferred[MAX_DEFERRED];
static size_t ndeferred;

static int item_add(const struct item *it)
{
    uint64_t *s = malloc((it->iters ? it->iters : 1) * sizeof(*s));
    if (!s || nitems == MAX_ITEMS) {
        free(s);
        bench_row_skip(it->row, "no room for the samples of another item");
        return -ENOMEM;
    }
    items[nitems] = *it;
    items[nitems++].samples = s;
    return 0;
}

int bench_item_add(struct bench_row *row, bench_step_fn step, void *ctx,
                   pid_t server, size_t warmup, size_t iters)
{
    return item_add(&(struct item){.row = row,
                                   .step = step,
                                   .ctx = ctx,
                                   .server = server,
                                   .warmup = warmup,
                                   .iters = iters});
}

int bench_item_add_block(struct bench_row *row, bench_block_fn block, void *ctx,
                         pid_t client, pid_t server, size_t warmup,
                         size_t iters)
{
    return item_add(&(struct item){.row = row,
                                   .block = block,
                                   .ctx = ctx,
                                   .client = client,
                                   .server = server,
                                   .warmup = warmup,
                                   .iters = iters});
}

void bench_item_split(const struct bench_row *row, bench_split_fn fn, void *ctx)
{
    for (size_t i = 0; row && i < nitems; i++) {
        if (items[i].row == row) {
            items[i].split = fn;
            items[i].split_ctx = ctx;
        }
    }
}

void bench_defer(void (*fn)(void *arg), void *arg)
{
    if (ndeferred == MAX_DEFERRED) {
        fn(arg); /* cannot wait: release it now */
        return;
    }
    deferred[ndeferred].fn = fn;
    deferred[ndeferred].arg = arg;
    ndeferred++;
}

/* CPU time of every thread of process (pid) so far, in ns (its process
 * CPU-time clock: exact, the running threads' current slice included).
 * 0 when it cannot be read. */
static uint64_t proc_cpu_ns(pid_t pid)
{
    clockid_t clk;
    struct timespec t;
    if (clock_getcpuclockid(pid, &clk) != 0 || clock_gettime(clk, &t) != 0)
        return 0;
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Run (n) steps of (it), keeping the timings when (timed). */
static void run_block(struct item *it, size_t n, bool timed)
{
    char why[BENCH_REASON_MAX] = "";
    int rc = 0;
    if (it->failed || n == 0)
        return;
    if (it->block) {
        rc = it->block(it->ctx, n, timed ? it->samples + it->done : NULL, why);
        if (rc == 0 && timed)
            it->done += n;
    } else {
        for (size_t i = 0; i < n && rc == 0; i++) {
            uint64_t ns;
            rc = it->step(it->ctx, &ns, why);
            if (rc == 0 && timed)
                it->samples[it->done++] = ns;
        }
    }
    if (rc < 0) {
        if (timed)
            bench_row_skip(it->row, "failed after %zu round trips: %.300s",
                           it->done, why);
        else
            bench_row_skip(it->row, "failed in warm-up: %.300s", why);
        it->failed = true;
    }
}

static void summarize(struct item *it)
{
    struct bench_row *row = it->row;
    size_t n = it->done;
    uint64_t *s = it->samples;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)s[i];
    qsort(s, n, sizeof(*s), cmp_u64);
    row->n = n;
    if (n) {
        row->median_us = (double)quantile(s, n, 0.5) / 1e3;
        row->p99_us = (double)quantile(s, n, 0.99) / 1e3;
        row->mean_us = sum / (double)n / 1e3;
        row->per_s = row->mean_us > 0 ? 1e6 / row->mean_us : 0;
        row->client_cpu_us = (double)it->client_cpu_ns / (double)n / 1e3;
        row->server_cpu_us = (double)it->server_cpu_ns / (double)n / 1e3;
        row->has_server = it->server != 0;
    }
    const struct bench_split *x = &it->split_sum;
    if (it->split && !it->split_failed && x->exits) {
        row->has_split = true;
        row->split_guest_us = (double)x->guest_ns / (double)x->exits / 1e3;
        row->split_handover_us =
            (double)x->handover_ns / (double)x->exits / 1e3;
        row->split_reply_us = (double)x->reply_ns / (double)x->exits / 1e3;
    }
}

/* Add what the server's counters grew by over a block. */
static void split_add(struct item *it, const struct bench_split *a,
                      const struct bench_split *b)
{
    it->split_sum.exits += b->exits - a->exits;
    it->split_sum.guest_ns += b->guest_ns - a->guest_ns;
    it->split_sum.handover_ns += b->handover_ns - a->handover_ns;
    it->split_sum.reply_ns += b->reply_ns - a->reply_ns;
}

/* A timed block, with the CPU time both sides spent in it. */
static void run_timed(struct item *it, size_t n)
{
    if (n == 0)
        return;
    /* Our own reading last before the block and first after it, so the
     * block's count holds as little of it as can be. */
    pid_t client = it->client ? it->client : getpid();
    /* The server's counters outermost: reading them costs it CPU. */
    struct bench_split x0, x1;
    bool split =
        it->split && !it->split_failed && it->split(it->split_ctx, &x0) == 0;
    uint64_t s0 = it->server ? proc_cpu_ns(it->server) : 0;
    uint64_t c0 = proc_cpu_ns(client);
    run_block(it, n, true);
    uint64_t c1 = proc_cpu_ns(client);
    uint64_t s1 = it->server ? proc_cpu_ns(it->server) : 0;
    it->client_cpu_ns += c1 > c0 ? c1 - c0 : 0;
    it->server_cpu_ns += s1 > s0 ? s1 - s0 : 0;
    if (split && it->split(it->split_ctx, &x1) == 0)
        split_add(it, &x0, &x1);
    else if (it->split)
        it->split_failed = true; /* a partial sum would mislead */
}

void bench_items_run(size_t rounds)
{
    if (rounds == 0)
        rounds = 1;
    for (size_t i = 0; i < nitems; i++)
        run_block(&items[i], items[i].warmup, false);
    for (size_t r = 0; r < rounds; r++) {
        for (size_t i = 0; i < nitems; i++) {
            struct item *it = &items[i];
            /* Block r ends at iters * (r + 1) / rounds: all of them in
             * the last round, whatever the rounding. */
            size_t until = it->iters * (r + 1) / rounds;
            if (!it->failed)
                run_timed(it, until - it->done);
        }
    }
    for (size_t i = 0; i < nitems; i++) {
        if (!items[i].failed)
            summarize(&items[i]);
        free(items[i].samples);
    }
    nitems = 0;
}

void bench_cleanup(void)
{
    while (ndeferred > 0) {
        ndeferred--;
        deferred[ndeferred].fn(deferred[ndeferred].arg);
    }
}
