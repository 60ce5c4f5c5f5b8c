/* vcpu_host.c: one thread per vCPU, and the Run protocol around it – one
 * driver at a time, results applied before the guest resumes, exits that
 * could not be delivered kept for the next caller. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pb_convert.h"
#include "status.h"
#include "vcpu_host.h"

#define MAX_TIMEOUT_MS 86400000ull

enum host_state {
    HOST_IDLE,    /* nothing runs; a Run may start */
    HOST_RUNNING, /* the thread is inside vcpud_vcpu_run */
    HOST_SENDING, /* the exit is on its way to the caller */
};

struct vcpu_host {
    uint32_t vm_id, id;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_rwlock_t cpu_lock; /* writers: host_stop; readers: host_begin */
    struct vcpud_vcpu *cpu;    /* NULL once stopped */
    int refs;
    bool stop;

    enum host_state state;
    struct rpc_call *call; /* the Run being served, referenced */
    uint64_t timeout_ns;
    bool caller_gone;      /* we cancelled because the caller went away */
    struct vcpud_exit exit; /* the one being sent */

    bool has_stash;         /* an exit nobody received */
    struct vcpud_exit stash;
    /* Its posted writes: the vCPU's own buffer is reused by the next run. */
    struct vcpud_posted_write stash_posted[VCPUD_POSTED_MAX];

    struct rpc_call *parked; /* a Run that came while SENDING */
    vcpud_v1_RunRequest *parked_req;

    /* An Attach stream owning the vCPU, and what it wants with exits. Its
     * messages are counted so the exit's own send completion is known
     * among those of register replies. */
    struct rpc_call *attached;
    bool regs_with_exit, sregs_with_exit;
    uint64_t stream_sent, stream_acked, exit_seq;
    /* Recursive: a send to a broken stream reports back on this thread,
     * and that report may start the next (parked) run and send again. */
    pthread_mutex_t send_lock;
    struct vcpud_regs exit_regs;
    struct vcpud_sregs exit_sregs;
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
    pthread_mutex_destroy(&h->send_lock);
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

/* Queue one message on the attached stream, counted for host_on_run_sent.
 * Returns its sequence number. */
static void stream_send_counted(struct vcpu_host *h, struct rpc_call *call,
                                const vcpud_v1_AttachResponse *resp,
                                bool is_exit)
{
    /* Numbering and queueing happen under one lock so the numbers follow
     * the queue's order, which is the order completions come back in. */
    pthread_mutex_lock(&h->send_lock);
    pthread_mutex_lock(&h->lock);
    uint64_t seq = ++h->stream_sent;
    if (is_exit)
        h->exit_seq = seq;
    pthread_mutex_unlock(&h->lock);
    rpc_call_send(call, vcpud_v1_AttachResponse_fields, resp);
    pthread_mutex_unlock(&h->send_lock);
}

void host_stream_send(struct vcpu_host *h, struct rpc_call *call,
                      const vcpud_v1_AttachResponse *resp)
{
    stream_send_counted(h, call, resp, false);
}

/* Send (h->exit) to (h->call); on_sent finishes the hand-over. Called
 * without the lock, in state SENDING. */
static void send_exit(struct vcpu_host *h, struct rpc_call *call, bool stream)
{
    if (stream) {
        vcpud_v1_AttachResponse *resp = calloc(1, sizeof(*resp));
        if (!resp) {
            rpc_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                            "server out of memory", -ENOMEM);
            return;
        }
        resp->which_reply = vcpud_v1_AttachResponse_exit_tag;
        vcpud_pb_from_exit(&resp->reply.exit, &h->exit);
        if (h->regs_with_exit) {
            resp->has_exit_regs = true;
            vcpud_pb_from_regs(&resp->exit_regs, &h->exit_regs);
        }
        if (h->sregs_with_exit) {
            resp->has_exit_special_regs = true;
            vcpud_pb_from_sregs(&resp->exit_special_regs, &h->exit_sregs);
        }
        stream_send_counted(h, call, resp, true);
        free(resp);
        return;
    }
    vcpud_v1_RunResponse *resp = calloc(1, sizeof(*resp));
    if (!resp) {
        rpc_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                        "server out of memory", -ENOMEM);
        return;
    }
    resp->has_exit = true;
    vcpud_pb_from_exit(&resp->exit, &h->exit);
    rpc_call_reply(call, vcpud_v1_RunResponse_fields, resp);
    free(resp);
}

/* A run command that cannot start: a unary Run ends with the status, a
 * stream gets an error reply and goes on. */
static void run_failed(struct vcpu_host *h, struct rpc_call *call,
                       bool stream, const struct vcpud_err *err)
{
    if (!stream) {
        status_fail(call, err);
        return;
    }
    vcpud_v1_AttachResponse resp = vcpud_v1_AttachResponse_init_zero;
    resp.which_reply = vcpud_v1_AttachResponse_error_tag;
    resp.reply.error.code = (int32_t)status_from_errno(err->code);
    resp.reply.error.core_errno = err->code;
    snprintf(resp.reply.error.message, sizeof(resp.reply.error.message), "%s",
             err->msg);
    host_stream_send(h, call, &resp);
}

/*
 * Short calls (GetRegs, Snapshot, ...) hold the vCPU for microseconds; a
 * run that meets one waits for it rather than fail – failing after the
 * answer was applied would leave the caller unable to tell whether to
 * resend it. Runs never meet runs here: the host admits one at a time.
 */
#define BUSY_WAIT_US 50
#define BUSY_WAIT_MAX 20000 /* one second */

static int apply_result(struct vcpud_vcpu *cpu, const vcpud_v1_RunRequest *req,
                        struct vcpud_err *err)
{
    int rc = 0;
    for (int i = 0; i < BUSY_WAIT_MAX; i++) {
        switch (req->which_result) {
        case vcpud_v1_RunRequest_io_tag:
            rc = vcpud_vcpu_set_io_result(cpu, req->result.io.values,
                                          req->result.io.values_count, err);
            break;
        case vcpud_v1_RunRequest_mmio_tag:
            rc = vcpud_vcpu_set_mmio_result(cpu, req->result.mmio.value,
                                            err);
            break;
        default:
            return 0;
        }
        if (rc != -EBUSY)
            break;
        usleep(BUSY_WAIT_US);
    }
    return rc;
}

static int run_when_free(struct vcpud_vcpu *cpu,
                         const struct vcpud_run_opts *opts,
                         struct vcpud_exit *x, struct vcpud_err *err)
{
    int rc = -EBUSY;
    for (int i = 0; i < BUSY_WAIT_MAX && rc == -EBUSY; i++) {
        if (i)
            usleep(BUSY_WAIT_US);
        rc = vcpud_vcpu_run(cpu, opts, x, err);
    }
    return rc;
}

/*
 * Start serving (call) on an idle host. Called with h->lock held; returns
 * with it released. Takes ownership of (req) and of one call reference.
 */
static void start_locked(struct vcpu_host *h, struct rpc_call *call,
                         vcpud_v1_RunRequest *req)
{
    struct vcpud_err err = {0};
    bool stream = call == h->attached;
    if (h->stop) {
        pthread_mutex_unlock(&h->lock);
        vcpud_err_set(&err, -ENOENT, "vCPU %u of VM %u was destroyed", h->id,
                      h->vm_id);
        run_failed(h, call, stream, &err);
        goto drop;
    }
    if (h->has_stash) {
        if (req->which_result) {
            pthread_mutex_unlock(&h->lock);
            vcpud_err_set(&err, -EPROTO,
                          "vCPU %u holds a %s exit its previous driver never "
                          "received: run without a result to receive it",
                          h->id, vcpud_exit_kind_name(h->stash.kind));
            run_failed(h, call, stream, &err);
            goto drop;
        }
        h->exit = h->stash;
        h->has_stash = false;
        /* Registers now are those of the kept exit: nothing ran since. */
        if (stream && (h->regs_with_exit || h->sregs_with_exit))
            vcpud_vcpu_get_regs(h->cpu, &h->exit_regs, NULL);
        if (stream && h->sregs_with_exit)
            vcpud_vcpu_get_sregs(h->cpu, &h->exit_sregs, NULL);
        h->state = HOST_SENDING;
        h->call = call;
        pthread_mutex_unlock(&h->lock);
        free(req);
        send_exit(h, call, stream);
        return;
    }
    /* The thread is idle, so the core vCPU is free to take the answer. */
    int rc = apply_result(h->cpu, req, &err);
    if (rc < 0) {
        pthread_mutex_unlock(&h->lock);
        run_failed(h, call, stream, &err);
        goto drop;
    }
    h->timeout_ns = req->timeout_ms * 1000000ull;
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

static void submit_run(struct vcpu_host *h, struct rpc_call *call,
                       vcpud_v1_RunRequest *req, bool stream)
{
    struct vcpud_err err = {0};
    if (req->timeout_ms > MAX_TIMEOUT_MS) {
        vcpud_err_set(&err, -EINVAL,
                      "timeout_ms %llu is above the limit of %llu (a day)",
                      (unsigned long long)req->timeout_ms, MAX_TIMEOUT_MS);
        run_failed(h, call, stream, &err);
        free(req);
        return;
    }
    rpc_call_ref(call); /* held while the host serves it */
    pthread_mutex_lock(&h->lock);
    if (stream && h->attached != call) {
        pthread_mutex_unlock(&h->lock);
        rpc_call_finish(call, GRPC_STATUS_FAILED_PRECONDITION,
                        "this stream no longer drives the vCPU", -EBUSY);
        free(req);
        rpc_call_unref(call);
        return;
    }
    if (!stream && h->attached) {
        pthread_mutex_unlock(&h->lock);
        status_failf(call, GRPC_STATUS_FAILED_PRECONDITION, -EBUSY,
                     "vCPU %u of VM %u is driven by an Attach stream; one "
                     "driver at a time",
                     h->id, h->vm_id);
        free(req);
        rpc_call_unref(call);
        return;
    }
    if (h->state == HOST_RUNNING ||
        (h->state == HOST_SENDING && h->parked)) {
        pthread_mutex_unlock(&h->lock);
        if (stream) {
            /* Ending the stream must also let go of its guest. */
            host_detach(h, call);
            rpc_call_finish(call, GRPC_STATUS_FAILED_PRECONDITION,
                            "a run command came before the previous run's "
                            "exit: one run at a time",
                            -EBUSY);
        } else
            status_failf(call, GRPC_STATUS_FAILED_PRECONDITION, -EBUSY,
                         "vCPU %u of VM %u is being run by another call; "
                         "one driver at a time",
                         h->id, h->vm_id);
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

void host_run(struct vcpu_host *h, struct rpc_call *call,
              vcpud_v1_RunRequest *req)
{
    submit_run(h, call, req, false);
}

void host_stream_run(struct vcpu_host *h, struct rpc_call *call,
                     vcpud_v1_RunRequest *req)
{
    submit_run(h, call, req, true);
}

int host_attach(struct vcpu_host *h, struct rpc_call *call, bool regs,
                bool sregs, struct vcpud_err *err)
{
    pthread_mutex_lock(&h->lock);
    int rc = 0;
    if (h->stop)
        rc = vcpud_err_set(err, -ENOENT, "vCPU %u of VM %u was destroyed",
                           h->id, h->vm_id);
    else if (h->attached || h->state != HOST_IDLE)
        rc = vcpud_err_set(err, -EBUSY,
                           "vCPU %u of VM %u already has a driver (a Run or "
                           "another Attach); one driver at a time",
                           h->id, h->vm_id);
    else {
        h->attached = call;
        h->regs_with_exit = regs;
        h->sregs_with_exit = sregs;
        h->stream_sent = h->stream_acked = h->exit_seq = 0;
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

void host_detach(struct vcpu_host *h, struct rpc_call *call)
{
    pthread_mutex_lock(&h->lock);
    if (h->attached != call) {
        pthread_mutex_unlock(&h->lock);
        return;
    }
    h->attached = NULL;
    bool running = h->call == call && h->state == HOST_RUNNING;
    if (running)
        h->caller_gone = true;
    pthread_mutex_unlock(&h->lock);
    if (running)
        host_cancel(h);
}

void host_on_run_sent(struct rpc_call *call, bool ok)
{
    struct vcpu_host *h = rpc_call_data(call);
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    /* On a stream, register replies complete too; only the exit's own
     * completion ends SENDING. */
    bool is_exit = true;
    if (call == h->attached) {
        uint64_t seq = ++h->stream_acked;
        is_exit = seq == h->exit_seq;
    }
    if (!is_exit || h->call != call || h->state != HOST_SENDING) {
        pthread_mutex_unlock(&h->lock);
        return;
    }
    /* A CANCELED exit we caused because the caller left tells nobody
     * anything; any other exit is kept so the next driver sees it. */
    bool ours = h->exit.kind == VCPUD_EXIT_CANCELED && h->caller_gone;
    if (!ok && (!ours || h->exit.nposted)) {
        h->stash = h->exit;
        memcpy(h->stash_posted, h->exit.posted,
               h->exit.nposted * sizeof(h->stash_posted[0]));
        h->stash.posted = h->stash_posted;
        h->has_stash = true;
    }
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

static void *host_thread(void *arg)
{
    struct vcpu_host *h = arg;
    pthread_mutex_lock(&h->lock);
    for (;;) {
        while (h->state != HOST_RUNNING && !h->stop)
            pthread_cond_wait(&h->cond, &h->lock);
        if (h->state != HOST_RUNNING)
            break;
        struct vcpud_run_opts opts = {.timeout_ns = h->timeout_ns};
        bool stream = h->call == h->attached;
        if (stream && (h->regs_with_exit || h->sregs_with_exit)) {
            opts.regs = &h->exit_regs;
            opts.sregs = h->sregs_with_exit ? &h->exit_sregs : NULL;
        }
        pthread_mutex_unlock(&h->lock);

        struct vcpud_exit x;
        struct vcpud_err err = {0};
        /* No cpu_lock here: host_stop joins this thread before it takes
         * the vCPU away. */
        int rc = run_when_free(h->cpu, &opts, &x, &err);

        pthread_mutex_lock(&h->lock);
        struct rpc_call *call = h->call;
        if (rc < 0) {
            h->state = HOST_IDLE;
            h->call = NULL;
            pthread_mutex_unlock(&h->lock);
            run_failed(h, call, stream, &err);
            rpc_call_unref(call);
        } else {
            h->exit = x;
            h->state = HOST_SENDING;
            pthread_mutex_unlock(&h->lock);
            send_exit(h, call, stream);
        }
        pthread_mutex_lock(&h->lock);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

int host_create(struct vcpud_vm *vm, uint32_t vm_id, uint32_t id,
                struct vcpu_host **out, struct vcpud_err *err)
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
    h->refs = 1;
    pthread_mutex_init(&h->lock, NULL);
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&h->send_lock, &attr);
    pthread_mutexattr_destroy(&attr);
    pthread_cond_init(&h->cond, NULL);
    pthread_rwlock_init(&h->cpu_lock, NULL);
    rc = pthread_create(&h->thread, NULL, host_thread, h);
    if (rc != 0) {
        vcpud_vcpu_destroy(h->cpu);
        pthread_mutex_destroy(&h->send_lock);
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

void host_stop(struct vcpu_host *h)
{
    pthread_mutex_lock(&h->lock);
    h->stop = true;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    vcpud_vcpu_cancel(h->cpu);
    pthread_join(h->thread, NULL);

    pthread_rwlock_wrlock(&h->cpu_lock);
    vcpud_vcpu_destroy(h->cpu);
    h->cpu = NULL;
    pthread_rwlock_unlock(&h->cpu_lock);
}
