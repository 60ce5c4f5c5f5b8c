/* vcpu_host.c: one thread per vCPU, and the Run protocol around it – one
 * driver at a time, results applied before the guest resumes, exits that
 * could not be delivered kept for the next caller. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

    struct rpc_call *parked; /* a Run that came while SENDING */
    vcpud_v1_RunRequest *parked_req;
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

static int apply_result(struct vcpud_vcpu *cpu, const vcpud_v1_RunRequest *req,
                        struct vcpud_err *err)
{
    switch (req->which_result) {
    case vcpud_v1_RunRequest_io_tag:
        return vcpud_vcpu_set_io_result(cpu, req->result.io.values,
                                        req->result.io.values_count, err);
    case vcpud_v1_RunRequest_mmio_tag:
        return vcpud_vcpu_set_mmio_result(cpu, req->result.mmio.value, err);
    default:
        return 0;
    }
}

/*
 * Start serving (call) on an idle host. Called with h->lock held; returns
 * with it released. Takes ownership of (req) and of one call reference.
 */
static void start_locked(struct vcpu_host *h, struct rpc_call *call,
                         vcpud_v1_RunRequest *req)
{
    struct vcpud_err err = {0};
    if (h->stop) {
        pthread_mutex_unlock(&h->lock);
        status_failf(call, GRPC_STATUS_NOT_FOUND, -ENOENT,
                     "vCPU %u of VM %u was destroyed", h->id, h->vm_id);
        goto drop;
    }
    if (h->has_stash) {
        if (req->which_result) {
            pthread_mutex_unlock(&h->lock);
            status_failf(call, GRPC_STATUS_FAILED_PRECONDITION, -EPROTO,
                         "vCPU %u holds a %s exit its previous caller never "
                         "received: Run without a result to receive it",
                         h->id, vcpud_exit_kind_name(h->stash.kind));
            goto drop;
        }
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
    int rc = apply_result(h->cpu, req, &err);
    if (rc < 0) {
        pthread_mutex_unlock(&h->lock);
        status_fail(call, &err);
        goto drop;
    }
    h->timeout_ns = req->timeout_ms * 1000000ull;
    h->state = HOST_RUNNING;
    h->call = call;
    h->caller_gone = false;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    free(req);
    return;
drop:
    free(req);
    rpc_call_unref(call);
}

void host_run(struct vcpu_host *h, struct rpc_call *call,
              vcpud_v1_RunRequest *req)
{
    if (req->timeout_ms > MAX_TIMEOUT_MS) {
        status_failf(call, GRPC_STATUS_INVALID_ARGUMENT, -EINVAL,
                     "timeout_ms %llu is above the limit of %llu (a day)",
                     (unsigned long long)req->timeout_ms, MAX_TIMEOUT_MS);
        free(req);
        return;
    }
    rpc_call_ref(call); /* held while the host serves it */
    pthread_mutex_lock(&h->lock);
    if (h->state == HOST_RUNNING ||
        (h->state == HOST_SENDING && h->parked)) {
        pthread_mutex_unlock(&h->lock);
        status_failf(call, GRPC_STATUS_FAILED_PRECONDITION, -EBUSY,
                     "vCPU %u of VM %u is being run by another call; one "
                     "driver at a time",
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

void host_on_run_sent(struct rpc_call *call, bool ok)
{
    struct vcpu_host *h = rpc_call_data(call);
    pthread_mutex_lock(&h->lock);
    if (h->call != call || h->state != HOST_SENDING) {
        pthread_mutex_unlock(&h->lock);
        return;
    }
    /* A CANCELED exit we caused because the caller left tells nobody
     * anything; any other exit is kept so the next driver sees it. */
    bool ours = h->exit.kind == VCPUD_EXIT_CANCELED && h->caller_gone;
    if (!ok && !ours) {
        h->stash = h->exit;
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
        pthread_mutex_unlock(&h->lock);

        struct vcpud_exit x;
        struct vcpud_err err = {0};
        /* No cpu_lock here: host_stop joins this thread before it takes
         * the vCPU away. */
        int rc = vcpud_vcpu_run(h->cpu, &opts, &x, &err);

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
