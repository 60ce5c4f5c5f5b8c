/* local.c: the floor of an exit without a network – the in-process core
 * running a guest that exits on port IO, answered by vcpud_vcpu_run
 * directly on this thread. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "guests.h"
#include "vcpud.h"

struct local {
    struct vcpud_vm *vm;
    struct vcpud_vcpu *cpu;
    bool pending_in; /* the last exit was an IN: answer it on this run */
};

static int local_open(struct local *l, struct bench_guest g,
                      struct vcpud_err *err)
{
    const struct vcpud_backend *be;
    memset(l, 0, sizeof(*l));
    int rc = vcpud_backend_find("kvm", &be, err);
    if (rc == 0)
        rc = vcpud_vm_create(be, NULL, &l->vm, err);
    if (rc == 0)
        rc = vcpud_vm_add_region(l->vm, 0, 0, BENCH_GUEST_RAM, 0, err);
    if (rc == 0)
        rc = vcpud_vm_write(l->vm, BENCH_GUEST_LOAD, g.code, g.len, err);
    if (rc == 0)
        rc = vcpud_vcpu_create(l->vm, 0, &l->cpu, err);
    if (rc == 0)
        rc = vcpud_setup_mode(l->cpu, VCPUD_MODE_REAL, BENCH_GUEST_LOAD,
                              BENCH_GUEST_STACK, 0, err);
    if (rc < 0) {
        vcpud_vm_destroy(l->vm);
        l->vm = NULL;
    }
    return rc;
}

/* One exit: answer the previous IN if there was one, run to the next. */
static int local_step(void *ctx, uint64_t *ns, char *why)
{
    struct local *l = ctx;
    struct vcpud_err err = {0};
    struct vcpud_exit x;
    uint64_t t0 = bench_now_ns();
    int rc = 0;
    if (l->pending_in) {
        const uint64_t v = 0x5a;
        rc = vcpud_vcpu_set_io_result(l->cpu, &v, 1, &err);
    }
    if (rc == 0)
        rc = vcpud_vcpu_run(l->cpu, NULL, &x, &err);
    *ns = bench_now_ns() - t0;
    if (rc < 0) {
        snprintf(why, BENCH_REASON_MAX, "%s", err.msg);
        return rc;
    }
    if (x.kind != VCPUD_EXIT_IO_OUT && x.kind != VCPUD_EXIT_IO_IN) {
        snprintf(why, BENCH_REASON_MAX, "unexpected %s exit",
                 vcpud_exit_kind_name(x.kind));
        return -EPROTO;
    }
    l->pending_in = x.kind == VCPUD_EXIT_IO_IN;
    return 0;
}

/*
 * local_handoff: the same exits, each run handed to a thread of its own and
 * the exit handed back – mutex and condition variable, signalled under the
 * lock, as server/vcpu_host.c starts its vCPU thread – to show what a
 * thread hop costs without a network.
 */
struct handoff {
    struct local l;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool go, done, quit;
    int rc;
    char why[BENCH_REASON_MAX];
};

static void *handoff_thread(void *arg)
{
    struct handoff *h = arg;
    pthread_mutex_lock(&h->lock);
    for (;;) {
        while (!h->go && !h->quit)
            pthread_cond_wait(&h->cond, &h->lock);
        if (h->quit)
            break;
        h->go = false;
        pthread_mutex_unlock(&h->lock);
        uint64_t ns;
        int rc = local_step(&h->l, &ns, h->why);
        pthread_mutex_lock(&h->lock);
        h->rc = rc;
        h->done = true;
        pthread_cond_broadcast(&h->cond);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

static int handoff_step(void *ctx, uint64_t *ns, char *why)
{
    struct handoff *h = ctx;
    uint64_t t0 = bench_now_ns();
    pthread_mutex_lock(&h->lock);
    h->go = true;
    h->done = false;
    pthread_cond_broadcast(&h->cond);
    while (!h->done)
        pthread_cond_wait(&h->cond, &h->lock);
    int rc = h->rc;
    pthread_mutex_unlock(&h->lock);
    *ns = bench_now_ns() - t0;
    if (rc < 0)
        snprintf(why, BENCH_REASON_MAX, "%s", h->why);
    return rc;
}

static void local_close(void *arg)
{
    struct local *l = arg;
    vcpud_vm_destroy(l->vm);
    free(l);
}

static void handoff_close(void *arg)
{
    struct handoff *h = arg;
    pthread_mutex_lock(&h->lock);
    h->quit = true;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    pthread_join(h->thread, NULL);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->cond);
    vcpud_vm_destroy(h->l.vm);
    free(h);
}

static void local_item(const struct bench_config *cfg, const char *name,
                       struct bench_guest g, bool handoff)
{
    struct bench_row *row = bench_rows_add(name, "none");
    if (!row)
        return;
    if (!cfg->have_kvm) {
        bench_row_skip(row, "%s", cfg->no_kvm);
        return;
    }
    /* The local state comes first in struct handoff. */
    struct handoff *h = calloc(1, handoff ? sizeof(*h) : sizeof(h->l));
    struct vcpud_err err = {0};
    if (!h) {
        bench_row_skip(row, "out of memory");
        return;
    }
    if (local_open(&h->l, g, &err) < 0) {
        bench_row_skip(row, "cannot set up the guest: %s", err.msg);
        free(h);
        return;
    }
    if (!handoff) {
        bench_defer(local_close, &h->l);
        bench_item_add(row, local_step, &h->l, 0, cfg->warmup, cfg->iters);
        return;
    }
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    if (pthread_create(&h->thread, NULL, handoff_thread, h) != 0) {
        bench_row_skip(row, "cannot start a thread");
        vcpud_vm_destroy(h->l.vm);
        free(h);
        return;
    }
    bench_defer(handoff_close, h);
    bench_item_add(row, handoff_step, h, 0, cfg->warmup, cfg->iters);
}

void bench_local(const struct bench_config *cfg)
{
    /* The floor the stream is compared with: OUT only. */
    local_item(cfg, "local", BENCH_GUEST(out_loop), false);
    /* The guest the remote items run, to show IN/OUT cost the same. */
    local_item(cfg, "local_inout", BENCH_GUEST(inout_loop), false);
    /* Each run on another thread, like vcpud's vCPU threads. */
    local_item(cfg, "local_handoff", BENCH_GUEST(inout_loop), true);
}
