/* methods_attach.c: the exit stream – one vCPU, one message each way per
 * exit, register reads and writes in between.
 *
 * The call's own thread reads `open` and hands the call to the vCPU's
 * thread, which from then on reads each command, runs the guest and
 * writes the answer together with the read of the next command: no thread
 * hop and one write per exit. Commands are served one at a time, in
 * order. The call's thread meanwhile waits for the call to end, and
 * cancels the guest if the controller vanishes mid-run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handler.h"
#include "methods.h"
#include "pb_convert.h"
#include "status.h"

/* A stream's messages, reused for every command: both are over 32 KB,
 * and decoding sets every field it reads, so nothing is zeroed per exit. */
struct attach {
    vcpud_v1_AttachRequest req;
    vcpud_v1_AttachResponse resp;
    struct vcpu_host *host; /* referenced once attached */
    bool regs, sregs;       /* what travels with exits */
    struct vcpud_exit exit; /* the last exit answered, until acknowledged */
    bool exit_unacked;
};

static void reply_error(vcpud_v1_AttachResponse *resp,
                        const struct vcpud_err *err)
{
    resp->which_reply = vcpud_v1_AttachResponse_error_tag;
    resp->reply.error.code = (int32_t)status_from_errno(err->code);
    resp->reply.error.core_errno = err->code;
    snprintf(resp->reply.error.message, sizeof(resp->reply.error.message), "%s",
             err->msg);
}

static void run_command(struct vcpu_host *host, struct attach *a)
{
    const vcpud_v1_RunCommand *cmd = &a->req.command.run;
    struct host_result r = host_result_of(
        cmd->which_result == vcpud_v1_RunCommand_io_tag ? &cmd->result.io
                                                        : NULL,
        cmd->which_result == vcpud_v1_RunCommand_mmio_tag ? &cmd->result.mmio
                                                          : NULL);
    struct vcpud_regs regs;
    struct vcpud_sregs sregs;
    struct vcpud_err err = {0};
    int rc = host_stream_run(host, &r, cmd->timeout_ms, &a->exit,
                             a->regs || a->sregs ? &regs : NULL,
                             a->sregs ? &sregs : NULL, &err);
    vcpud_v1_AttachResponse *resp = &a->resp;
    if (rc < 0) {
        reply_error(resp, &err);
        return;
    }
    a->exit_unacked = true;
    resp->which_reply = vcpud_v1_AttachResponse_exit_tag;
    vcpud_pb_from_exit(&resp->reply.exit, &a->exit);
    if (a->regs) {
        resp->has_exit_regs = true;
        vcpud_pb_from_regs(&resp->exit_regs, &regs);
    }
    if (a->sregs) {
        resp->has_exit_special_regs = true;
        vcpud_pb_from_sregs(&resp->exit_special_regs, &sregs);
    }
}

/* Register reads and writes between runs, as the unary RPCs do them. */
static void state_command(struct vcpu_host *host, struct attach *a)
{
    struct vcpud_err err = {0};
    const vcpud_v1_AttachRequest *req = &a->req;
    vcpud_v1_AttachResponse *resp = &a->resp;
    struct vcpud_vcpu *cpu = host_begin(host);
    int rc;
    if (!cpu) {
        rc = vcpud_err_set(&err, -ENOENT, "the vCPU was destroyed");
    } else {
        struct vcpud_regs r;
        struct vcpud_sregs s;
        switch (req->which_command) {
        case vcpud_v1_AttachRequest_get_regs_tag:
            rc = vcpud_vcpu_get_regs(cpu, &r, &err);
            resp->which_reply = vcpud_v1_AttachResponse_regs_tag;
            vcpud_pb_from_regs(&resp->reply.regs, &r);
            break;
        case vcpud_v1_AttachRequest_set_regs_tag:
            vcpud_pb_to_regs(&r, &req->command.set_regs);
            rc = vcpud_vcpu_set_regs(cpu, &r, &err);
            resp->which_reply = vcpud_v1_AttachResponse_ok_tag;
            break;
        case vcpud_v1_AttachRequest_get_special_regs_tag:
            rc = vcpud_vcpu_get_sregs(cpu, &s, &err);
            resp->which_reply = vcpud_v1_AttachResponse_special_regs_tag;
            vcpud_pb_from_sregs(&resp->reply.special_regs, &s);
            break;
        default: /* set_special_regs */
            rc = vcpud_pb_to_sregs(&s, &req->command.set_special_regs, &err);
            if (rc == 0)
                rc = vcpud_vcpu_set_sregs(cpu, &s, &err);
            resp->which_reply = vcpud_v1_AttachResponse_ok_tag;
            break;
        }
        host_end(host);
    }
    if (rc < 0)
        reply_error(resp, &err);
}

/*
 * Answer one command in a->resp. Returns false when the stream must end
 * (the call is finished then).
 */
static bool serve_command(struct vcpu_host *host, struct rpc_call *call,
                          struct attach *a, const uint8_t *buf, size_t len)
{
    struct vcpud_err err = {0};
    if (vcpud_pb_decode(vcpud_v1_AttachRequest_fields, buf, len, &a->req,
                        &err) < 0) {
        host_stream_end(host, call);
        status_fail(call, &err);
        return false;
    }
    a->resp.which_reply = 0;
    a->resp.has_exit_regs = false;
    a->resp.has_exit_special_regs = false;
    switch (a->req.which_command) {
    case vcpud_v1_AttachRequest_run_tag:
        run_command(host, a);
        return true;
    case vcpud_v1_AttachRequest_get_regs_tag:
    case vcpud_v1_AttachRequest_set_regs_tag:
    case vcpud_v1_AttachRequest_get_special_regs_tag:
    case vcpud_v1_AttachRequest_set_special_regs_tag:
        state_command(host, a);
        return true;
    case vcpud_v1_AttachRequest_open_tag:
        host_stream_end(host, call);
        status_failf(call, GRPC_STATUS_FAILED_PRECONDITION, -EPROTO,
                     "the stream is already open");
        return false;
    default:
        host_stream_end(host, call);
        status_failf(call, GRPC_STATUS_INVALID_ARGUMENT, -EINVAL,
                     "an Attach request needs a command");
        return false;
    }
}

/* The stream's life on the vCPU's thread (a host_stream_fn). */
static void serve(struct vcpu_host *host, struct rpc_call *call)
{
    struct attach *a = rpc_call_data(call);
    a->resp.which_reply = vcpud_v1_AttachResponse_opened_tag;
    a->resp.has_exit_regs = false;
    a->resp.has_exit_special_regs = false;
    for (;;) {
        const uint8_t *buf;
        size_t len;
        int n = rpc_call_exchange(call, vcpud_v1_AttachResponse_fields,
                                  &a->resp, &buf, &len);
        /* The controller's next message acknowledges the exit; without
         * one it may never have seen it. */
        if (n < 0 && a->exit_unacked)
            host_stream_lost(host, &a->exit);
        a->exit_unacked = false;
        if (n <= 0) {
            if (n == 0) { /* half-close: the controller is done */
                host_stream_end(host, call);
                rpc_call_finish(call, GRPC_STATUS_OK, "", 0);
            }
            return;
        }
        if (!serve_command(host, call, a, buf, len))
            return;
    }
}

/* The first message, on the call's own thread: who and what travels with
 * exits. */
static void open_stream(struct rpc_call *call, struct attach *a,
                        const uint8_t *buf, size_t len)
{
    struct handler h;
    if (!handler_start(&h, call, buf, len, vcpud_v1_AttachRequest_fields,
                       &a->req))
        return;
    if (a->req.which_command != vcpud_v1_AttachRequest_open_tag) {
        status_failf(call, GRPC_STATUS_FAILED_PRECONDITION, -EPROTO,
                     "the first message of Attach must be 'open'");
        return;
    }
    const vcpud_v1_AttachOpen *o = &a->req.command.open;
    if (!handler_vm(&h, o->vm_id))
        return;
    a->regs = o->regs_with_exit;
    a->sregs = o->special_regs_with_exit;
    struct vcpu_host *host = registry_host(h.vm, o->vcpu_id, &h.err);
    int rc = host ? host_attach(host, call, serve, &h.err) : -ENOENT;
    handler_end(&h);
    if (rc == 0) {
        a->host = host; /* the reference is the stream's */
        return;
    }
    if (host)
        host_unref(host);
    atomic_fetch_add(&h.app->failed_calls, 1);
    status_fail(call, &h.err);
}

void m_attach(struct rpc_call *call)
{
    struct attach *a = malloc(sizeof(*a));
    if (!a) {
        rpc_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                        "server out of memory", -ENOMEM);
        return;
    }
    a->host = NULL;
    a->exit_unacked = false;
    rpc_call_set_data(call, a); /* freed with the call (m_attach_done) */
    const uint8_t *buf;
    size_t len;
    int n = rpc_call_exchange(call, NULL, NULL, &buf, &len);
    if (n == 0)
        status_failf(call, GRPC_STATUS_FAILED_PRECONDITION, -EPROTO,
                     "the stream ended before its 'open'");
    else if (n > 0)
        open_stream(call, a, buf, len);
}

void m_attach_cancel(struct rpc_call *call)
{
    struct attach *a = rpc_call_data(call);
    if (a && a->host)
        host_stream_gone(a->host, call);
}

void m_attach_done(struct rpc_call *call)
{
    struct attach *a = rpc_call_data(call);
    if (a && a->host)
        host_unref(a->host);
    free(a);
}
