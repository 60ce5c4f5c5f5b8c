/* vcpu_host.c: one thread per vCPU, and the Run protocol around it – one
 * driver at a time, results applied before the guest resumes, exits that
 * could not be delivered kept for the next caller. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pb_convert.h"
#include "status.h"
#include "vcpu_host.h"

#define MAX_TIMEOUT_MS 86400000ull

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void count(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

enum host_state {
    HOST_IDLE,    /* nothing runs; a Run may start */
    HOST_RUNNING, /* the thread is inside vcpud_vcpu_run */
    HOST_SENDING, /* the exit is on its way to the caller */
};

struct vcpu_host {
    uint32_t vm_id, id;
    struct exit_stats *stats;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_rwlock_t cpu_lock; /* writers: host_stop; readers: host_begin */
    struct vcpud_vcpu *cpu;    /* NULL once stopped */
    int refs;
    bool stop;
    bool closing; /* the server is shutting down: no new runs */

    enum host_state state;
    struct rpc_call *call; /* the Run being served, referenced */
    uint64_t timeout_ns;
    uint64_t handed_at;    /* when the Run was handed to the thread */
    bool caller_gone;      /* we cancelled because the caller went away */
    struct vcpud_exit exit; /* the one being sent */

    bool has_stash;         /* an exit nobody received */
    struct vcpud_exit stash;
    /* Its posted writes: the vCPU's own buffer is reused by the next run. */
    struct vcpud_posted_write stash_posted[VCPUD_POSTED_MAX];

    struct rpc_call *parked; /* a Run that came while SENDING */
    vcpud_v1_RunRequest *parked_req;

    /* An Attach stream owning the vCPU (referenced), served on this
     * host's thread by (serve) once (adopt) says it is handed over. */
    struct rpc_call *attached;
    host_stream_fn serve;
    bool adopt;
    bool stream_gone; /* its caller went away: start nothing more */
};

void host_ref(struct vcpu_host *h)
{
    pthread_mutex_lock(&h->lock);
    h->refs++;
    pthread_mutex_unlock(&h->lock);
}

void host_unref(struct vcpu_host *h)
{
    pthread_mutex_lock(&h->lock);
    bool last = --h->refs == 0;
    pthread_mutex_unlock(&h->lock);
    if (!last)
        return;
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->cond);
    pthread_rwlock_destroy(&h->cpu_lock);
    free(h);
}

struct vcpud_vcpu *host_begin(struct vcpu_host *h)
{
    pthread_rwlock_rdlock(&h->cpu_lock);
    if (h->cpu)
        return h->cpu;
    pthread_rwlock_unlock(&h->cpu_lock);
    return NULL;
}

void host_end(struct vcpu_host *h)
{
    pthread_rwlock_unlock(&h->cpu_lock);
}

void host_cancel(struct vcpu_host *h)
{
    struct vcpud_vcpu *cpu = host_begin(h);
    if (cpu) {
        vcpud_vcpu_cancel(cpu);
        host_end(h);
    }
}

/* Send (h->exit) to (h->call); on_sent finishes the hand-over. Called
 * without the lock, in state SENDING. */
static void send_exit(struct vcpu_host *h, struct rpc_call *call)
{
    /* malloc, not calloc: the conversion sets every field it sends, and
     * zeroing 37 KB per exit shows in the exit's round trip. */
    vcpud_v1_RunResponse *resp = malloc(sizeof(*resp));
    if (!resp) {
        rpc_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                        "server out of memory", -ENOMEM);
        /* No send will complete to end the SENDING state: end it here. */
        host_on_run_sent(call, false);
        return;
    }
    resp->has_exit = true;
    vcpud_pb_from_exit(&resp->exit, &h->exit);
    rpc_call_reply(call, vcpud_v1_RunResponse_fields, resp);
    free(resp);
}

/*
 * Short calls (GetRegs, Snapshot, ...) hold the vCPU for microseconds; a
 * run that meets one waits for it rather than fail – failing after the
 * answer was applied would leave the caller unable to tell whether to
 * resend it. Runs never meet runs here: the host admits one at a time.
 * Yield first (the holder is on its way out), sleep only if it lingers:
 * a short sleep costs ~150 us on a paravirtual machine.
 */
#define BUSY_YIELDS 200
#define BUSY_WAIT_US 50
#define BUSY_WAIT_MAX 20000 /* sleeps: one second and more */

static bool busy_backoff(int *i)
{
    if (*i >= BUSY_YIELDS + BUSY_WAIT_MAX)
        return false;
    if ((*i)++ < BUSY_YIELDS)
        sched_yield();
    else
        usleep(BUSY_WAIT_US);
    return true;
}

static int apply_result(struct vcpud_vcpu *cpu, const struct host_result *r,
                        struct vcpud_err *err)
{
    int rc = 0, tries = 0;
    do {
        switch (r->kind) {
        case HOST_RESULT_IO:
            rc = vcpud_vcpu_set_io_result(cpu, r->io, r->nio, err);
            break;
        case HOST_RESULT_MMIO:
            rc = vcpud_vcpu_set_mmio_result(cpu, r->mmio, err);
            break;
        default:
            return 0;
        }
    } while (rc == -EBUSY && busy_backoff(&tries));
    return rc;
}

static int run_when_free(struct vcpud_vcpu *cpu,
                         const struct vcpud_run_opts *opts,
                         struct vcpud_exit *x, struct vcpud_err *err)
{
    int rc, tries = 0;
    do
        rc = vcpud_vcpu_run(cpu, opts, x, err);
    while (rc == -EBUSY && busy_backoff(&tries));
    return rc;
}

static int destroyed(const struct vcpu_host *h, struct vcpud_err *err)
{
    return vcpud_err_set(err, -ENOENT, "vCPU %u of VM %u was destroyed",
                         h->id, h->vm_id);
}

/* Why a stopped or closing host takes no more runs. */
static int refused(const struct vcpu_host *h, struct vcpud_err *err)
{
    if (h->stop)
        return destroyed(h, err);
    return vcpud_err_set(err, -ESHUTDOWN, "vcpud is shutting down");
}

static int check_timeout(uint64_t timeout_ms, struct vcpud_err *err)
{
    if (timeout_ms <= MAX_TIMEOUT_MS)
        return 0;
    return vcpud_err_set(err, -EINVAL,
                         "timeout_ms %llu is above the limit of %llu (a day)",
                         (unsigned long long)timeout_ms, MAX_TIMEOUT_MS);
}

/* An exit kept for the next driver stops runs that carry a result: it is
 * the exit that result would answer. */
static int stash_refuses(const struct vcpu_host *h, const struct host_result *r,
                         struct vcpud_err *err)
{
    if (!h->has_stash || r->kind == HOST_RESULT_NONE)
        return 0;
    return vcpud_err_set(err, -EPROTO,
                         "vCPU %u holds a %s exit its previous driver never "
                         "received: run without a result to receive it",
                         h->id, vcpud_exit_kind_name(h->stash.kind));
}

static void stash_exit(struct vcpu_host *h, const struct vcpud_exit *x)
{
    h->stash = *x;
    memcpy(h->stash_posted, x->posted, x->nposted * sizeof(h->stash_posted[0]));
    h->stash.posted = h->stash_posted;
    h->has_stash = true;
}

/* An exit its driver never received: kept so the next driver sees it,
 * except a CANCELED exit we caused because the caller left, which tells
 * nobody anything (its posted writes still count). */
static void keep_undelivered_locked(struct vcpu_host *h,
                                    const struct vcpud_exit *x)
{
    bool ours = x->kind == VCPUD_EXIT_CANCELED && h->caller_gone;
    if (!ours || x->nposted)
        stash_exit(h, x);
}

struct host_result host_result_of(const vcpud_v1_IoResult *io,
                                  const vcpud_v1_MmioResult *mmio)
{
    struct host_result r = {.kind = HOST_RESULT_NONE};
    if (io) {
        r.kind = HOST_RESULT_IO;
        r.io = io->values;
        r.nio = io->values_count;
    } else if (mmio) {
        r.kind = HOST_RESULT_MMIO;
        r.mmio = mmio->value;
    }
    return r;
}

/*
 * Start serving a unary Run (call) on an idle host. Called with h->lock
 * held; returns with it released. Takes ownership of (req) and of one
 * call reference.
 */
static void start_locked(struct vcpu_host *h, struct rpc_call *call,
                         vcpud_v1_RunRequest *req)
{
    struct vcpud_err err = {0};
    struct host_result r = host_result_of(
        req->which_result == vcpud_v1_RunRequest_io_tag ? &req->result.io
                                                        : NULL,
        req->which_result == vcpud_v1_RunRequest_mmio_tag ? &req->result.mmio
                                                          : NULL);
    if (h->stop || h->closing) {
        pthread_mutex_unlock(&h->lock);
        refused(h, &err);
        status_fail(call, &err);
        goto drop;
    }
    if (stash_refuses(h, &r, &err) < 0) {
        pthread_mutex_unlock(&h->lock);
        status_fail(call, &err);
        goto drop;
    }
    if (h->has_stash) {
        h->exit = h->stash;
        h->has_stash = false;
        h->state = HOST_SENDING;
        h->call = call;
        pthread_mutex_unlock(&h->lock);
        free(req);
        send_exit(h, call);
        return;
    }
    /* The thread is idle, so the core vCPU is free to take the answer. */
    int rc = apply_result(h->cpu, &r, &err);
    if (rc < 0) {
        pthread_mutex_unlock(&h->lock);
        status_fail(call, &err);
        goto drop;
    }
    h->timeout_ns = req->timeout_ms * 1000000ull;
    h->handed_at = now_ns();
    h->state = HOST_RUNNING;
    h->call = call;
    h->caller_gone = false;
    pthread_mutex_unlock(&h->lock);
    /* After the unlock: a thread woken under the lock would only block on
     * it again (one more context switch on every run). */
    pthread_cond_broadcast(&h->cond);
    free(req);
    return;
drop:
    free(req);
    rpc_call_unref(call);
}

void host_run(struct vcpu_host *h, struct rpc_call *call,
              vcpud_v1_RunRequest *req)
{
    struct vcpud_err err = {0};
    if (check_timeout(req->timeout_ms, &err) < 0) {
        status_fail(call, &err);
        free(req);
        return;
    }
    rpc_call_ref(call); /* held while the host serves it */
    pthread_mutex_lock(&h->lock);
    const char *busy = NULL;
    if (h->attached)
        busy = "is driven by an Attach stream";
    else if (h->state == HOST_RUNNING ||
             (h->state == HOST_SENDING && h->parked))
        busy = "is being run by another call";
    if (busy) {
        pthread_mutex_unlock(&h->lock);
        status_failf(call, GRPC_STATUS_FAILED_PRECONDITION, -EBUSY,
                     "vCPU %u of VM %u %s; one driver at a time", h->id,
                     h->vm_id, busy);
        free(req);
        rpc_call_unref(call);
        return;
    }
    if (h->state == HOST_SENDING) {
        /* The previous exit is still on the wire; its caller may already
         * have it. Wait for the send to settle rather than refuse. */
        h->parked = call;
        h->parked_req = req;
        pthread_mutex_unlock(&h->lock);
        return;
    }
    start_locked(h, call, req);
}

int host_attach(struct vcpu_host *h, struct rpc_call *call,
                host_stream_fn serve, struct vcpud_err *err)
{
    pthread_mutex_lock(&h->lock);
    int rc = 0;
    if (h->stop || h->closing)
        rc = refused(h, err);
    else if (h->attached || h->state != HOST_IDLE)
        rc = vcpud_err_set(err, -EBUSY,
                           "vCPU %u of VM %u already has a driver (a Run or "
                           "another Attach); one driver at a time",
                           h->id, h->vm_id);
    else {
        rpc_call_ref(call);
        h->attached = call;
        h->serve = serve;
        h->adopt = true;
        h->stream_gone = false;
    }
    pthread_mutex_unlock(&h->lock);
    if (rc == 0)
        pthread_cond_broadcast(&h->cond);
    return rc;
}

void host_stream_gone(struct vcpu_host *h, struct rpc_call *call)
{
    pthread_mutex_lock(&h->lock);
    bool running = false;
    if (h->attached == call) {
        h->stream_gone = true;
        running = h->state == HOST_RUNNING;
        if (running)
            h->caller_gone = true;
    }
    pthread_mutex_unlock(&h->lock);
    if (running)
        host_cancel(h);
}

int host_stream_run(struct vcpu_host *h, const struct host_result *r,
                    uint64_t timeout_ms, struct vcpud_exit *x,
                    struct vcpud_regs *regs, struct vcpud_sregs *sregs,
                    struct vcpud_err *err)
{
    if (check_timeout(timeout_ms, err) < 0)
        return err->code;
    pthread_mutex_lock(&h->lock);
    int rc = 0;
    if (h->stop || h->closing)
        rc = refused(h, err);
    else if (h->stream_gone)
        rc = vcpud_err_set(err, -EPIPE, "the stream's caller went away");
    else
        rc = stash_refuses(h, r, err);
    if (rc == 0 && h->has_stash) {
        /* Registers now are those of the kept exit: nothing ran since. */
        *x = h->stash;
        h->has_stash = false;
        pthread_mutex_unlock(&h->lock);
        if (regs)
            vcpud_vcpu_get_regs(h->cpu, regs, NULL);
        if (sregs)
            vcpud_vcpu_get_sregs(h->cpu, sregs, NULL);
        return 0;
    }
    /* This thread is the only one that runs the vCPU, so it is free to
     * take the answer. */
    if (rc == 0)
        rc = apply_result(h->cpu, r, err);
    if (rc < 0) {
        pthread_mutex_unlock(&h->lock);
        return rc;
    }
    h->state = HOST_RUNNING;
    h->caller_gone = false;
    pthread_mutex_unlock(&h->lock);

    struct vcpud_run_opts opts = {
        .timeout_ns = timeout_ms * 1000000ull, .regs = regs, .sregs = sregs};
    uint64_t t0 = now_ns();
    rc = run_when_free(h->cpu, &opts, x, err);
    if (rc == 0) {
        count(&h->stats->guest_ns, now_ns() - t0);
        count(&h->stats->stream_exits, 1);
    }

    pthread_mutex_lock(&h->lock);
    h->state = HOST_IDLE;
    pthread_mutex_unlock(&h->lock);
    return rc;
}

void host_stream_lost(struct vcpu_host *h, const struct vcpud_exit *x)
{
    pthread_mutex_lock(&h->lock);
    keep_undelivered_locked(h, x);
    pthread_mutex_unlock(&h->lock);
}

void host_on_run_sent(struct rpc_call *call, bool ok)
{
    struct vcpu_host *h = rpc_call_data(call);
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    if (h->call != call || h->state != HOST_SENDING) {
        pthread_mutex_unlock(&h->lock);
        return;
    }
    if (!ok)
        keep_undelivered_locked(h, &h->exit);
    h->state = HOST_IDLE;
    h->call = NULL;
    h->caller_gone = false;
    struct rpc_call *next = h->parked;
    vcpud_v1_RunRequest *next_req = h->parked_req;
    h->parked = NULL;
    h->parked_req = NULL;
    if (next)
        start_locked(h, next, next_req);
    else
        pthread_mutex_unlock(&h->lock);
    rpc_call_unref(call);
}

void host_on_run_cancel(struct rpc_call *call)
{
    struct vcpu_host *h = rpc_call_data(call);
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    if (h->parked == call) {
        vcpud_v1_RunRequest *req = h->parked_req;
        h->parked = NULL;
        h->parked_req = NULL;
        pthread_mutex_unlock(&h->lock);
        free(req);
        rpc_call_finish(call, GRPC_STATUS_CANCELLED, "caller went away", 0);
        rpc_call_unref(call);
        return;
    }
    bool running = h->call == call && h->state == HOST_RUNNING;
    if (running)
        h->caller_gone = true;
    pthread_mutex_unlock(&h->lock);
    if (running)
        host_cancel(h);
}

void host_stream_end(struct vcpu_host *h, struct rpc_call *call)
{
    pthread_mutex_lock(&h->lock);
    /* Once let go, another driver may have taken the vCPU already. */
    if (h->attached == call) {
        h->attached = NULL;
        h->serve = NULL;
        h->stream_gone = false;
    }
    pthread_mutex_unlock(&h->lock);
}

/* Serve the adopted stream on this thread until it ends, then let go. */
static void serve_stream_locked(struct vcpu_host *h)
{
    struct rpc_call *call = h->attached;
    host_stream_fn serve = h->serve;
    h->adopt = false;
    pthread_mutex_unlock(&h->lock);
    serve(h, call);
    host_stream_end(h, call);
    rpc_call_unref(call);
    pthread_mutex_lock(&h->lock);
}

/* Run the unary Run in h->call and send its exit or failure. */
static void run_unary_locked(struct vcpu_host *h)
{
    struct vcpud_run_opts opts = {.timeout_ns = h->timeout_ns};
    uint64_t t0 = now_ns(), handover = t0 - h->handed_at;
    pthread_mutex_unlock(&h->lock);

    struct vcpud_exit x;
    struct vcpud_err err = {0};
    /* No cpu_lock here: host_stop joins this thread before it takes
     * the vCPU away. */
    int rc = run_when_free(h->cpu, &opts, &x, &err);
    uint64_t t1 = now_ns();

    pthread_mutex_lock(&h->lock);
    struct rpc_call *call = h->call;
    if (rc < 0) {
        h->state = HOST_IDLE;
        h->call = NULL;
        pthread_mutex_unlock(&h->lock);
        status_fail(call, &err);
        rpc_call_unref(call);
    } else {
        h->exit = x;
        h->state = HOST_SENDING;
        pthread_mutex_unlock(&h->lock);
        send_exit(h, call);
        /* After the send: the counts are for /metrics, not the caller. */
        count(&h->stats->handover_ns, handover);
        count(&h->stats->guest_ns, t1 - t0);
        count(&h->stats->reply_ns, now_ns() - t1);
        count(&h->stats->run_exits, 1);
    }
    pthread_mutex_lock(&h->lock);
}

static void *host_thread(void *arg)
{
    struct vcpu_host *h = arg;
    pthread_mutex_lock(&h->lock);
    for (;;) {
        while (h->state != HOST_RUNNING && !h->adopt && !h->stop)
            pthread_cond_wait(&h->cond, &h->lock);
        if (h->adopt)
            serve_stream_locked(h);
        else if (h->state == HOST_RUNNING)
            run_unary_locked(h);
        else
            break;
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

int host_create(struct vcpud_vm *vm, uint32_t vm_id, uint32_t id,
                struct exit_stats *stats, struct vcpu_host **out,
                struct vcpud_err *err)
{
    struct vcpu_host *h = calloc(1, sizeof(*h));
    if (!h)
        return vcpud_err_set(err, -ENOMEM, "out of memory for a vCPU");
    int rc = vcpud_vcpu_create(vm, id, &h->cpu, err);
    if (rc < 0) {
        free(h);
        return rc;
    }
    h->vm_id = vm_id;
    h->id = id;
    h->stats = stats;
    h->refs = 1;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    pthread_rwlock_init(&h->cpu_lock, NULL);
    rc = pthread_create(&h->thread, NULL, host_thread, h);
    if (rc != 0) {
        vcpud_vcpu_destroy(h->cpu);
        pthread_mutex_destroy(&h->lock);
        pthread_cond_destroy(&h->cond);
        pthread_rwlock_destroy(&h->cpu_lock);
        free(h);
        return vcpud_err_set(err, -EAGAIN,
                             "cannot start a thread for vCPU %u", id);
    }
    *out = h;
    return 0;
}

/* Set (flag) – no new work – and end an attached stream with (code):
 * one waiting for its controller's next command would hold this host's
 * thread forever, and the abort wakes that wait. Then stop the guest. */
static void close_host(struct vcpu_host *h, bool *flag, grpc_status_code code,
                       const char *why)
{
    pthread_mutex_lock(&h->lock);
    *flag = true;
    if (h->attached)
        rpc_call_abort(h->attached, code, why);
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    host_cancel(h);
}

void host_shut_down(struct vcpu_host *h)
{
    close_host(h, &h->closing, GRPC_STATUS_UNAVAILABLE,
               "vcpud is shutting down");
}

void host_stop_begin(struct vcpu_host *h)
{
    close_host(h, &h->stop, GRPC_STATUS_NOT_FOUND, "the vCPU was destroyed");
}

void host_stop(struct vcpu_host *h)
{
    host_stop_begin(h);
    pthread_join(h->thread, NULL);

    pthread_rwlock_wrlock(&h->cpu_lock);
    vcpud_vcpu_destroy(h->cpu);
    h->cpu = NULL;
    pthread_rwlock_unlock(&h->cpu_lock);
}
