/* vcpuctl_run.c: running a vCPU exit by exit, by Run calls or over an
 * attached exit stream, and answering the exits that wait for a value –
 * run, attach, io-result, mmio-result. */
#include <grpc/status.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "vcpuctl.h"

#define IO_VALUES_MAX 4096u /* IoResult.values */

enum until { UNTIL_STEPS, UNTIL_ANY, UNTIL_HLT };

/* What a run or attach subcommand was asked to do. */
struct run_plan {
    uint32_t vm, vcpu;
    uint64_t steps;
    enum until until;
    struct vcpud_client_run first; /* the result rides on the first Run */
    uint64_t timeout_ms;
    bool regs, sregs; /* attach: registers with every exit */
};

/* Where the exits come from: one Run call each, or an attached stream. */
struct exit_source {
    struct vcpud_stream *stream; /* NULL: Run calls */
    /* Run's buffer for the posted writes an exit carries (the stream has
     * its own); the most one exit can carry, so none is refused. */
    struct vcpud_posted_write posted[VCPUD_POSTED_MAX];
    struct vcpud_regs regs;
    struct vcpud_sregs sregs;
};

/* Exits after which running on makes no sense: the guest is dead or
 * someone asked it to stop. */
static bool ends_run(enum vcpud_exit_kind k)
{
    return k == VCPUD_EXIT_SHUTDOWN || k == VCPUD_EXIT_FAIL_ENTRY ||
           k == VCPUD_EXIT_INTERNAL_ERROR || k == VCPUD_EXIT_CANCELED ||
           k == VCPUD_EXIT_UNKNOWN;
}

/* Say which flag the next run needs: the guest cannot go on without it. */
static void note_answer(struct vcpuctl *ctl, const struct vcpud_exit *x)
{
    if (x->kind == VCPUD_EXIT_IO_IN) {
        uint32_t n = x->u.io.count;
        vcpuctl_note(ctl, "answer_with", "--io-result",
                     "the guest waits for its io-in from port 0x%x: pass "
                     "--io-result %s (%" PRIu32 " value%s of %u byte%s) to "
                     "the next run or attach, or use io-result",
                     x->u.io.port, n == 1 ? "V" : "V,V,...", n,
                     n == 1 ? "" : "s", x->u.io.size,
                     x->u.io.size == 1 ? "" : "s");
    } else {
        vcpuctl_note(ctl, "answer_with", "--mmio-result",
                     "the guest waits for its mmio-read of 0x%" PRIx64
                     " (%u byte%s): pass --mmio-result V to the next run or "
                     "attach, or use mmio-result",
                     x->u.mmio.addr, x->u.mmio.size,
                     x->u.mmio.size == 1 ? "" : "s");
    }
}

static int parse_until(struct vcpuctl *ctl, const char *s, enum until *u)
{
    if (!s)
        *u = UNTIL_STEPS;
    else if (strcmp(s, "any") == 0)
        *u = UNTIL_ANY;
    else if (strcmp(s, "hlt") == 0)
        *u = UNTIL_HLT;
    else
        return vcpuctl_usage(ctl, "--until %s: expected hlt or any", s);
    return VCPUCTL_OK;
}

/* The flags into (p); (values) holds IO_VALUES_MAX for --io-result. */
static int plan_run(struct vcpuctl *ctl, const struct vcpuctl_args *a,
                    bool attach, struct run_plan *p, uint64_t *values)
{
    const char *steps = vcpuctl_flag(a, "--steps");
    const char *timeout = vcpuctl_flag(a, "--timeout-ms");
    const char *io = vcpuctl_flag(a, "--io-result");
    const char *mmio = vcpuctl_flag(a, "--mmio-result");
    int rc;
    memset(p, 0, sizeof(*p));
    if ((rc = vcpuctl_arg_vm_vcpu(ctl, a, &p->vm, &p->vcpu)) ||
        (rc = parse_until(ctl, vcpuctl_flag(a, "--until"), &p->until)))
        return rc;
    /* --until hlt alone runs as long as it takes. */
    p->steps = p->until == UNTIL_HLT ? UINT64_MAX : 1;
    if (steps && (rc = vcpuctl_arg_u64(ctl, "--steps", steps, &p->steps)))
        return rc;
    if (p->steps == 0)
        return vcpuctl_usage(ctl, "--steps must be at least 1");
    if (timeout &&
        (rc = vcpuctl_arg_u64(ctl, "--timeout-ms", timeout, &p->timeout_ms)))
        return rc;
    if (io && mmio)
        return vcpuctl_usage(ctl, "--io-result and --mmio-result answer "
                                  "different exits: give one");
    if (io) {
        uint32_t n;
        if ((rc = vcpuctl_arg_list(ctl, "--io-result", io, values,
                                   IO_VALUES_MAX, &n)))
            return rc;
        p->first.result = VCPUD_RESULT_IO;
        p->first.io_values = values;
        p->first.io_count = n;
    } else if (mmio) {
        if ((rc = vcpuctl_arg_u64(ctl, "--mmio-result", mmio,
                                  &p->first.mmio_value)))
            return rc;
        p->first.result = VCPUD_RESULT_MMIO;
    }
    p->first.timeout_ms = p->timeout_ms;
    if (attach) {
        p->regs = vcpuctl_flag(a, "--regs") != NULL;
        p->sregs = vcpuctl_flag(a, "--sregs") != NULL;
    }
    return VCPUCTL_OK;
}

static int next_exit(struct vcpuctl *ctl, const struct run_plan *p,
                     struct exit_source *src, struct vcpud_client_run *req,
                     struct vcpud_exit *x)
{
    struct vcpud_client_status st;
    int rc;
    if (src->stream) {
        rc = vcpud_stream_run(src->stream, req, x, p->regs ? &src->regs : NULL,
                              p->sregs ? &src->sregs : NULL, &st);
    } else {
        req->posted = src->posted;
        req->posted_cap = VCPUD_POSTED_MAX;
        rc = vcpud_client_run(ctl->client, p->vm, p->vcpu, req, x, &st);
    }
    if (rc == 0)
        return VCPUCTL_OK;
    if (st.code == GRPC_STATUS_DEADLINE_EXCEEDED)
        vcpuctl_note(ctl, NULL, NULL,
                     "no exit within the call's deadline (--deadline-ms); "
                     "the server keeps the exit for the next run");
    return vcpuctl_rpc_failed(ctl, src->stream ? "Attach" : "Run", rc, &st);
}

static int run_loop(struct vcpuctl *ctl, const struct run_plan *p,
                    struct exit_source *src, struct vcpud_exit *x)
{
    struct vcpud_client_run req = p->first;
    for (uint64_t i = 0; i < p->steps; i++) {
        int rc = next_exit(ctl, p, src, &req, x);
        if (rc)
            return rc;
        /* Only the exit before this command started had its answer. */
        req = (struct vcpud_client_run){.timeout_ms = p->timeout_ms};
        vcpuctl_print_exit(ctl, x, p->regs ? &src->regs : NULL,
                           p->sregs ? &src->sregs : NULL);
        if (vcpud_exit_needs_result(x->kind)) {
            note_answer(ctl, x);
            break;
        }
        if (p->until == UNTIL_ANY || ends_run(x->kind) ||
            (p->until == UNTIL_HLT && x->kind == VCPUD_EXIT_HLT))
            break;
    }
    return VCPUCTL_OK;
}

static int attach_and_run(struct vcpuctl *ctl, const struct run_plan *p,
                          struct exit_source *src, struct vcpud_exit *x)
{
    struct vcpud_stream_opts o = {.regs_with_exit = p->regs,
                                  .sregs_with_exit = p->sregs};
    struct vcpud_client_status st;
    int rc =
        vcpud_client_attach(ctl->client, p->vm, p->vcpu, &o, &src->stream, &st);
    if (rc < 0)
        return vcpuctl_rpc_failed(ctl, "Attach", rc, &st);
    int status = run_loop(ctl, p, src, x);
    /* The server's last word on the stream; a failure already reported
     * by the loop is not reported twice. */
    rc = vcpud_stream_close(src->stream, &st);
    src->stream = NULL;
    if (rc < 0 && status == VCPUCTL_OK)
        status = vcpuctl_rpc_failed(ctl, "Attach", rc, &st);
    return status;
}

/* run and attach: the same loop over either source of exits. */
static int run_command(struct vcpuctl *ctl, const struct vcpuctl_args *a,
                       bool attach)
{
    /* 32 KiB of values, a 4 KiB exit, 24 KiB of posted writes: the heap,
     * not the stack. */
    uint64_t *values = malloc(IO_VALUES_MAX * sizeof(*values));
    struct vcpud_exit *x = malloc(sizeof(*x));
    struct exit_source *src = calloc(1, sizeof(*src));
    struct run_plan p;
    int rc;
    if (!values || !x || !src) {
        rc = vcpuctl_failed(ctl, "out of memory");
    } else if ((rc = plan_run(ctl, a, attach, &p, values)) == VCPUCTL_OK &&
               (rc = vcpuctl_connect(ctl)) == VCPUCTL_OK) {
        if (attach)
            rc = attach_and_run(ctl, &p, src, x);
        else
            rc = run_loop(ctl, &p, src, x);
    }
    free(values);
    free(x);
    free(src);
    return rc;
}

int vcpuctl_run(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    return run_command(ctl, a, false);
}

int vcpuctl_attach(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    return run_command(ctl, a, true);
}

int vcpuctl_io_result(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    uint64_t *values = malloc(IO_VALUES_MAX * sizeof(*values));
    if (!values)
        return vcpuctl_failed(ctl, "out of memory");
    uint32_t vm, vcpu, n;
    int rc;
    if ((rc = vcpuctl_arg_vm_vcpu(ctl, a, &vm, &vcpu)) == VCPUCTL_OK &&
        (rc = vcpuctl_arg_list(ctl, "V", a->pos[2], values, IO_VALUES_MAX,
                               &n)) == VCPUCTL_OK &&
        (rc = vcpuctl_connect(ctl)) == VCPUCTL_OK) {
        struct vcpud_client_status st;
        int e =
            vcpud_client_set_io_result(ctl->client, vm, vcpu, values, n, &st);
        rc = e < 0 ? vcpuctl_rpc_failed(ctl, "SetIoResult", e, &st)
                   : vcpuctl_done(ctl);
    }
    free(values);
    return rc;
}

int vcpuctl_mmio_result(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    uint32_t vm, vcpu;
    uint64_t v;
    int rc;
    if ((rc = vcpuctl_arg_vm_vcpu(ctl, a, &vm, &vcpu)) ||
        (rc = vcpuctl_arg_u64(ctl, "V", a->pos[2], &v)) ||
        (rc = vcpuctl_connect(ctl)))
        return rc;
    struct vcpud_client_status st;
    if ((rc = vcpud_client_set_mmio_result(ctl->client, vm, vcpu, v, &st)) < 0)
        return vcpuctl_rpc_failed(ctl, "SetMmioResult", rc, &st);
    return vcpuctl_done(ctl);
}
