/* client_stream.c: the exit stream (Attach) – one request and one reply per
 * step, in a single batch each. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "pb_convert.h"

/* Streams live as long as the controller wants: no deadline to speak of;
 * keepalive notices a server that is gone. */
#define STREAM_EXTRA_MS (100ull * 365 * 24 * 3600 * 1000)

struct vcpud_stream {
    struct vcpud__call call;
    bool ended;  /* the call is over and freed; end_rc its result */
    int end_rc;
    vcpud_v1_AttachRequest req;   /* 32 KiB: kept, not on the stack */
    vcpud_v1_AttachResponse resp;
    struct vcpud_posted_write posted[VCPUD_POSTED_MAX]; /* exit->posted */
};

/* One step: send s->req, receive s->resp. An error reply becomes the
 * core's errno with its status; a closed stream the server's status. */
static int step(struct vcpud_stream *s, pb_size_t want,
                struct vcpud_client_status *st)
{
    if (s->ended)
        return s->end_rc < 0 ? s->end_rc
                             : vcpud__fail(st, GRPC_STATUS_UNAVAILABLE, -EPIPE,
                                           "the stream has ended");
    /* No memset of the 37 KB reply: decoding initialises every field. */
    int rc = vcpud__call_exchange(&s->call, vcpud_v1_AttachRequest_fields,
                                  &s->req, vcpud_v1_AttachResponse_fields,
                                  &s->resp, st);
    if (rc < 0)
        return rc;
    if (rc == 0) { /* the stream is over: its status says why */
        if (!s->ended) {
            s->end_rc = vcpud__call_end(&s->call, 0, st);
            s->ended = true;
        }
        return s->end_rc < 0 ? s->end_rc
                             : vcpud__fail(st, GRPC_STATUS_UNAVAILABLE, -EPIPE,
                                           "the server ended the stream");
    }
    if (s->resp.which_reply == vcpud_v1_AttachResponse_error_tag) {
        const vcpud_v1_CommandError *e = &s->resp.reply.error;
        int code = e->core_errno < 0 ? e->core_errno : -EIO;
        return vcpud__fail(st, e->code, code, "%s", e->message);
    }
    if (s->resp.which_reply != want)
        return vcpud__bad_reply(st, "the stream answered with reply %u, "
                                    "expected %u",
                                (unsigned)s->resp.which_reply,
                                (unsigned)want);
    return vcpud__ok(st);
}

int vcpud_client_attach(struct vcpud_client *c, uint32_t vm_id,
                        uint32_t vcpu_id, const struct vcpud_stream_opts *opts,
                        struct vcpud_stream **out,
                        struct vcpud_client_status *st)
{
    if (!c || !out)
        return vcpud__bad_arg(st, "attach needs a client and an output");
    struct vcpud_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return vcpud__fail(st, GRPC_STATUS_RESOURCE_EXHAUSTED, -ENOMEM,
                           "out of memory for a stream");
    int rc = vcpud__call_start(&s->call, c, VCPUD__M_ATTACH, STREAM_EXTRA_MS,
                               st);
    if (rc < 0) {
        free(s);
        return rc;
    }
    s->req.which_command = vcpud_v1_AttachRequest_open_tag;
    s->req.command.open = (vcpud_v1_AttachOpen){
        .vm_id = vm_id,
        .vcpu_id = vcpu_id,
        .regs_with_exit = opts && opts->regs_with_exit,
        .special_regs_with_exit = opts && opts->sregs_with_exit,
    };
    rc = step(s, vcpud_v1_AttachResponse_opened_tag, st);
    if (rc < 0) {
        if (!s->ended) {
            struct vcpud_client_status ignored;
            vcpud__call_end(&s->call, rc, &ignored);
        }
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int vcpud_stream_run(struct vcpud_stream *s, const struct vcpud_client_run *req,
                     struct vcpud_exit *exit, struct vcpud_regs *regs,
                     struct vcpud_sregs *sregs, struct vcpud_client_status *st)
{
    if (!s || !exit)
        return vcpud__bad_arg(st, "run needs a stream and an exit");
    /* Field by field: the request is 32 KB (4096 io values), and encoding
     * reads only what which_result selects. */
    s->req.which_command = vcpud_v1_AttachRequest_run_tag;
    vcpud_v1_RunCommand *cmd = &s->req.command.run;
    cmd->timeout_ms = 0;
    cmd->which_result = 0;
    if (req) {
        cmd->timeout_ms = req->timeout_ms;
        if (req->result == VCPUD_RESULT_IO) {
            if (req->io_count > 4096 || (req->io_count && !req->io_values))
                return vcpud__bad_arg(st, "%u io values: want 1..4096",
                                      req->io_count);
            cmd->which_result = vcpud_v1_RunCommand_io_tag;
            cmd->result.io.values_count = (pb_size_t)req->io_count;
            memcpy(cmd->result.io.values, req->io_values,
                   req->io_count * sizeof(uint64_t));
        } else if (req->result == VCPUD_RESULT_MMIO) {
            cmd->which_result = vcpud_v1_RunCommand_mmio_tag;
            cmd->result.mmio.value = req->mmio_value;
        }
    }
    int rc = step(s, vcpud_v1_AttachResponse_exit_tag, st);
    if (rc < 0)
        return rc;
    struct vcpud_err err = {0};
    if (vcpud_pb_to_exit(exit, &s->resp.reply.exit, s->posted,
                         VCPUD_POSTED_MAX, &err) < 0)
        return vcpud__bad_reply(st, "%s", err.msg);
    if (regs && s->resp.has_exit_regs)
        vcpud_pb_to_regs(regs, &s->resp.exit_regs);
    if (sregs && s->resp.has_exit_special_regs &&
        vcpud_pb_to_sregs(sregs, &s->resp.exit_special_regs, &err) < 0)
        return vcpud__bad_reply(st, "%s", err.msg);
    return 0;
}

int vcpud_stream_get_regs(struct vcpud_stream *s, struct vcpud_regs *regs,
                          struct vcpud_client_status *st)
{
    if (!s || !regs)
        return vcpud__bad_arg(st, "get_regs needs a stream and registers");
    s->req.which_command = vcpud_v1_AttachRequest_get_regs_tag;
    int rc = step(s, vcpud_v1_AttachResponse_regs_tag, st);
    if (rc == 0)
        vcpud_pb_to_regs(regs, &s->resp.reply.regs);
    return rc;
}

int vcpud_stream_set_regs(struct vcpud_stream *s, const struct vcpud_regs *regs,
                          struct vcpud_client_status *st)
{
    if (!s || !regs)
        return vcpud__bad_arg(st, "set_regs needs a stream and registers");
    memset(&s->req, 0, sizeof(s->req));
    s->req.which_command = vcpud_v1_AttachRequest_set_regs_tag;
    vcpud_pb_from_regs(&s->req.command.set_regs, regs);
    return step(s, vcpud_v1_AttachResponse_ok_tag, st);
}

int vcpud_stream_get_sregs(struct vcpud_stream *s, struct vcpud_sregs *sregs,
                           struct vcpud_client_status *st)
{
    if (!s || !sregs)
        return vcpud__bad_arg(st, "get_sregs needs a stream and registers");
    s->req.which_command = vcpud_v1_AttachRequest_get_special_regs_tag;
    int rc = step(s, vcpud_v1_AttachResponse_special_regs_tag, st);
    struct vcpud_err err = {0};
    if (rc == 0 &&
        vcpud_pb_to_sregs(sregs, &s->resp.reply.special_regs, &err) < 0)
        return vcpud__bad_reply(st, "%s", err.msg);
    return rc;
}

int vcpud_stream_set_sregs(struct vcpud_stream *s,
                           const struct vcpud_sregs *sregs,
                           struct vcpud_client_status *st)
{
    if (!s || !sregs)
        return vcpud__bad_arg(st, "set_sregs needs a stream and registers");
    memset(&s->req, 0, sizeof(s->req));
    s->req.which_command = vcpud_v1_AttachRequest_set_special_regs_tag;
    vcpud_pb_from_sregs(&s->req.command.set_special_regs, sregs);
    return step(s, vcpud_v1_AttachResponse_ok_tag, st);
}

int vcpud_stream_close(struct vcpud_stream *s, struct vcpud_client_status *st)
{
    if (!s)
        return 0;
    if (s->ended) {
        int rc = s->end_rc;
        free(s);
        if (rc == 0)
            vcpud__ok(st);
        return rc;
    }
    /* Receiving half-closes first; the server then ends the stream. */
    vcpud_v1_AttachResponse *extra = &s->resp;
    struct vcpud_client_status ignored;
    while (vcpud__call_recv(&s->call, vcpud_v1_AttachResponse_fields, extra,
                            &ignored) == 1)
        ; /* a late reply (an exit racing the close) has no reader now */
    int rc = vcpud__call_end(&s->call, 0, st);
    free(s);
    return rc;
}
