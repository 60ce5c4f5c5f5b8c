/* methods_attach.c: the exit stream – one vCPU, one message each way per
 * exit, register reads and writes in between. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handler.h"
#include "methods.h"
#include "pb_convert.h"
#include "status.h"

static void reply(struct vcpu_host *h, struct rpc_call *call,
                  vcpud_v1_AttachResponse *resp)
{
    host_stream_send(h, call, resp);
}

static void reply_result(struct vcpu_host *h, struct rpc_call *call, int rc,
                         const struct vcpud_err *err,
                         vcpud_v1_AttachResponse *resp)
{
    if (rc < 0) {
        memset(resp, 0, sizeof(*resp));
        resp->which_reply = vcpud_v1_AttachResponse_error_tag;
        resp->reply.error.code = (int32_t)status_from_errno(err->code);
        resp->reply.error.core_errno = err->code;
        snprintf(resp->reply.error.message,
                 sizeof(resp->reply.error.message), "%s", err->msg);
    }
    reply(h, call, resp);
}

/* The first message: who and what travels with exits. */
static void open_stream(struct rpc_call *call, const vcpud_v1_AttachOpen *o)
{
    struct handler h;
    if (!handler_auth(&h, call) || !handler_vm(&h, o->vm_id))
        return;
    struct vcpu_host *host = registry_host(h.vm, o->vcpu_id, &h.err);
    int rc = host ? host_attach(host, call, o->regs_with_exit,
                                o->special_regs_with_exit, &h.err)
                  : -ENOENT;
    handler_end(&h);
    if (rc < 0) {
        if (host)
            host_unref(host);
        atomic_fetch_add(&h.app->failed_calls, 1);
        status_fail(call, &h.err);
        return;
    }
    rpc_call_set_data(call, host); /* the reference is the stream's */
    vcpud_v1_AttachResponse resp = vcpud_v1_AttachResponse_init_zero;
    resp.which_reply = vcpud_v1_AttachResponse_opened_tag;
    reply(host, call, &resp);
}

static void run_command(struct vcpu_host *host, struct rpc_call *call,
                        const vcpud_v1_RunCommand *cmd)
{
    vcpud_v1_RunRequest *req = calloc(1, sizeof(*req));
    if (!req) {
        rpc_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                        "server out of memory", -ENOMEM);
        return;
    }
    req->timeout_ms = cmd->timeout_ms;
    if (cmd->which_result == vcpud_v1_RunCommand_io_tag) {
        req->which_result = vcpud_v1_RunRequest_io_tag;
        req->result.io.values_count = cmd->result.io.values_count;
        memcpy(req->result.io.values, cmd->result.io.values,
               cmd->result.io.values_count * sizeof(uint64_t));
    } else if (cmd->which_result == vcpud_v1_RunCommand_mmio_tag) {
        req->which_result = vcpud_v1_RunRequest_mmio_tag;
        req->result.mmio = cmd->result.mmio;
    }
    host_stream_run(host, call, req);
}

/* Register reads and writes between runs, as the unary RPCs do them. */
static void state_command(struct vcpu_host *host, struct rpc_call *call,
                          const vcpud_v1_AttachRequest *req)
{
    struct vcpud_err err = {0};
    vcpud_v1_AttachResponse *resp = calloc(1, sizeof(*resp));
    if (!resp) {
        rpc_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                        "server out of memory", -ENOMEM);
        return;
    }
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
    reply_result(host, call, rc, &err, resp);
    free(resp);
}

void m_attach(struct rpc_call *call, const uint8_t *buf, size_t len)
{
    struct vcpu_host *host = rpc_call_data(call);
    if (!buf) { /* the controller is done with the vCPU */
        if (host)
            host_detach(host, call);
        rpc_call_finish(call, GRPC_STATUS_OK, "", 0);
        return;
    }
    struct vcpud_err err = {0};
    vcpud_v1_AttachRequest *req = calloc(1, sizeof(*req));
    if (!req) {
        rpc_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                        "server out of memory", -ENOMEM);
        return;
    }
    if (vcpud_pb_decode(vcpud_v1_AttachRequest_fields, buf, len, req, &err) <
        0) {
        if (host)
            host_detach(host, call);
        status_fail(call, &err);
    } else if (!host) {
        if (req->which_command == vcpud_v1_AttachRequest_open_tag)
            open_stream(call, &req->command.open);
        else
            status_failf(call, GRPC_STATUS_FAILED_PRECONDITION, -EPROTO,
                         "the first message of Attach must be 'open'");
    } else {
        switch (req->which_command) {
        case vcpud_v1_AttachRequest_run_tag:
            run_command(host, call, &req->command.run);
            break;
        case vcpud_v1_AttachRequest_get_regs_tag:
        case vcpud_v1_AttachRequest_set_regs_tag:
        case vcpud_v1_AttachRequest_get_special_regs_tag:
        case vcpud_v1_AttachRequest_set_special_regs_tag:
            state_command(host, call, req);
            break;
        case vcpud_v1_AttachRequest_open_tag:
            host_detach(host, call);
            status_failf(call, GRPC_STATUS_FAILED_PRECONDITION, -EPROTO,
                         "the stream is already open");
            break;
        default:
            host_detach(host, call);
            status_failf(call, GRPC_STATUS_INVALID_ARGUMENT, -EINVAL,
                         "an Attach request needs a command");
            break;
        }
    }
    free(req);
}

void m_attach_cancel(struct rpc_call *call)
{
    struct vcpu_host *host = rpc_call_data(call);
    if (host) {
        host_on_run_cancel(call);
        host_detach(host, call);
    }
}

void m_attach_done(struct rpc_call *call)
{
    struct vcpu_host *host = rpc_call_data(call);
    if (host) {
        host_detach(host, call);
        host_unref(host);
    }
}
