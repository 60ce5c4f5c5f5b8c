/* client_vcpu.c: vCPU lifecycle, running, exit results and interrupts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "pb_convert.h"
#include "vcpud/v1/vcpud.pb.h"

#define IO_VALUES_MAX 4096u /* IoResult.values, SetIoResultRequest.values */

_Static_assert(sizeof(((vcpud_v1_IoResult *)0)->values) ==
                       IO_VALUES_MAX * sizeof(uint64_t) &&
                   sizeof(((vcpud_v1_SetIoResultRequest *)0)->values) ==
                       IO_VALUES_MAX * sizeof(uint64_t),
               "vcpud.options: io results carry at most 4096 values");
_Static_assert((int)vcpud_v1_Mode_MODE_REAL == VCPUD_MODE_REAL &&
                   (int)vcpud_v1_Mode_MODE_PROTECTED == VCPUD_MODE_PROTECTED &&
                   (int)vcpud_v1_Mode_MODE_LONG == VCPUD_MODE_LONG,
               "Mode and enum vcpud_mode differ");

/* The many methods whose request is just the vCPU and whose answer is
 * Empty. */
static int vcpu_call(struct vcpud_client *c, enum vcpud__method m,
                     uint32_t vm_id, uint32_t vcpu_id,
                     struct vcpud_client_status *st)
{
    if (!c)
        return vcpud__bad_arg(st, "no client");
    vcpud_v1_VcpuRef req = {.vm_id = vm_id, .vcpu_id = vcpu_id};
    return vcpud__unary(c, m, 0, vcpud_v1_VcpuRef_fields, &req, NULL, NULL, st);
}

int vcpud_client_create_vcpu(struct vcpud_client *c, uint32_t vm_id,
                             uint32_t vcpu_id, struct vcpud_client_status *st)
{
    return vcpu_call(c, VCPUD__M_CREATE_VCPU, vm_id, vcpu_id, st);
}

int vcpud_client_destroy_vcpu(struct vcpud_client *c, uint32_t vm_id,
                              uint32_t vcpu_id, struct vcpud_client_status *st)
{
    return vcpu_call(c, VCPUD__M_DESTROY_VCPU, vm_id, vcpu_id, st);
}

int vcpud_client_cancel(struct vcpud_client *c, uint32_t vm_id,
                        uint32_t vcpu_id, struct vcpud_client_status *st)
{
    return vcpu_call(c, VCPUD__M_CANCEL, vm_id, vcpu_id, st);
}

int vcpud_client_inject_nmi(struct vcpud_client *c, uint32_t vm_id,
                            uint32_t vcpu_id, struct vcpud_client_status *st)
{
    return vcpu_call(c, VCPUD__M_INJECT_NMI, vm_id, vcpu_id, st);
}

static int check_io_values(const uint64_t *values, uint32_t count,
                           struct vcpud_client_status *st)
{
    if (count > IO_VALUES_MAX)
        return vcpud__bad_arg(st, "%u io values: at most %u fit a request",
                              count, IO_VALUES_MAX);
    if (count && !values)
        return vcpud__bad_arg(st, "%u io values but no array", count);
    return 0;
}

static int fill_run(vcpud_v1_RunRequest *r, const struct vcpud_client_run *req,
                    struct vcpud_client_status *st)
{
    int rc;
    switch (req->result) {
    case VCPUD_RESULT_NONE:
        break;
    case VCPUD_RESULT_IO:
        if ((rc = check_io_values(req->io_values, req->io_count, st)) < 0)
            return rc;
        r->which_result = vcpud_v1_RunRequest_io_tag;
        r->result.io.values_count = (pb_size_t)req->io_count;
        if (req->io_count)
            memcpy(r->result.io.values, req->io_values,
                   req->io_count * sizeof(uint64_t));
        break;
    case VCPUD_RESULT_MMIO:
        r->which_result = vcpud_v1_RunRequest_mmio_tag;
        r->result.mmio.value = req->mmio_value;
        break;
    default:
        return vcpud__bad_arg(st,
                              "run: result kind %d is none of "
                              "VCPUD_RESULT_*",
                              (int)req->result);
    }
    r->timeout_ms = req->timeout_ms;
    return 0;
}

int vcpud_client_run(struct vcpud_client *c, uint32_t vm_id, uint32_t vcpu_id,
                     const struct vcpud_client_run *req,
                     struct vcpud_exit *exit, struct vcpud_client_status *st)
{
    if (!c || !exit)
        return vcpud__bad_arg(st, "run: no client or no exit to fill");
    /* 32 KiB of io values: too big for the stack of a caller's thread. */
    vcpud_v1_RunRequest *r = calloc(1, sizeof(*r));
    if (!r)
        return vcpud__fail(st, GRPC_STATUS_RESOURCE_EXHAUSTED, -ENOMEM,
                           "out of memory for a Run request");
    r->vm_id = vm_id;
    r->vcpu_id = vcpu_id;
    int rc = req ? fill_run(r, req, st) : 0;
    /* With 1024 posted writes the response is 36 KiB: not for the stack
     * either. */
    vcpud_v1_RunResponse *resp = calloc(1, sizeof(*resp));
    if (!resp)
        rc = vcpud__fail(st, GRPC_STATUS_RESOURCE_EXHAUSTED, -ENOMEM,
                         "out of memory for a Run response");
    /* The guest may run for all of timeout_ms before the answer leaves. */
    if (rc == 0)
        rc = vcpud__unary(c, VCPUD__M_RUN, req ? req->timeout_ms : 0,
                          vcpud_v1_RunRequest_fields, r,
                          vcpud_v1_RunResponse_fields, resp, st);
    free(r);
    struct vcpud_err err;
    if (rc == 0 && !resp->has_exit)
        rc = vcpud__bad_reply(st, "Run: the response holds no exit");
    else if (rc == 0 &&
             vcpud_pb_to_exit(exit, &resp->exit, req ? req->posted : NULL,
                              req ? req->posted_cap : 0, &err) < 0)
        rc = err.code == -E2BIG
                 ? vcpud__fail(st, GRPC_STATUS_RESOURCE_EXHAUSTED, -E2BIG,
                               "Run: %s", err.msg)
                 : vcpud__bad_reply(st, "Run: %s", err.msg);
    free(resp);
    return rc;
}

int vcpud_client_set_io_result(struct vcpud_client *c, uint32_t vm_id,
                               uint32_t vcpu_id, const uint64_t *values,
                               uint32_t count, struct vcpud_client_status *st)
{
    if (!c)
        return vcpud__bad_arg(st, "set-io-result: no client");
    int rc = check_io_values(values, count, st);
    if (rc < 0)
        return rc;
    vcpud_v1_SetIoResultRequest *r = malloc(sizeof(*r));
    if (!r)
        return vcpud__fail(st, GRPC_STATUS_RESOURCE_EXHAUSTED, -ENOMEM,
                           "out of memory for a SetIoResult request");
    r->vm_id = vm_id;
    r->vcpu_id = vcpu_id;
    r->values_count = (pb_size_t)count;
    if (count)
        memcpy(r->values, values, count * sizeof(uint64_t));
    rc = vcpud__unary(c, VCPUD__M_SET_IO_RESULT, 0,
                      vcpud_v1_SetIoResultRequest_fields, r, NULL, NULL, st);
    free(r);
    return rc;
}

int vcpud_client_set_mmio_result(struct vcpud_client *c, uint32_t vm_id,
                                 uint32_t vcpu_id, uint64_t value,
                                 struct vcpud_client_status *st)
{
    if (!c)
        return vcpud__bad_arg(st, "set-mmio-result: no client");
    vcpud_v1_SetMmioResultRequest req = {
        .vm_id = vm_id, .vcpu_id = vcpu_id, .value = value};
    return vcpud__unary(c, VCPUD__M_SET_MMIO_RESULT, 0,
                        vcpud_v1_SetMmioResultRequest_fields, &req, NULL, NULL,
                        st);
}

int vcpud_client_inject_interrupt(struct vcpud_client *c, uint32_t vm_id,
                                  uint32_t vcpu_id, uint32_t vector,
                                  struct vcpud_client_status *st)
{
    if (!c)
        return vcpud__bad_arg(st, "inject-interrupt: no client");
    vcpud_v1_InjectInterruptRequest req = {
        .vm_id = vm_id, .vcpu_id = vcpu_id, .vector = vector};
    return vcpud__unary(c, VCPUD__M_INJECT_INTERRUPT, 0,
                        vcpud_v1_InjectInterruptRequest_fields, &req, NULL,
                        NULL, st);
}

int vcpud_client_set_irq_line(struct vcpud_client *c, uint32_t vm_id,
                              uint32_t irq, bool level,
                              struct vcpud_client_status *st)
{
    if (!c)
        return vcpud__bad_arg(st, "set-irq-line: no client");
    vcpud_v1_SetIrqLineRequest req = {
        .vm_id = vm_id, .irq = irq, .level = level};
    return vcpud__unary(c, VCPUD__M_SET_IRQ_LINE, 0,
                        vcpud_v1_SetIrqLineRequest_fields, &req, NULL, NULL,
                        st);
}

int vcpud_client_setup_mode(struct vcpud_client *c, uint32_t vm_id,
                            uint32_t vcpu_id, enum vcpud_mode mode,
                            uint64_t entry, uint64_t stack,
                            uint64_t tables_addr,
                            struct vcpud_client_status *st)
{
    if (!c)
        return vcpud__bad_arg(st, "setup-mode: no client");
    /* Any other value is the server's to refuse, naming the field. */
    vcpud_v1_SetupModeRequest req = {
        .vm_id = vm_id,
        .vcpu_id = vcpu_id,
        .mode = (vcpud_v1_Mode)mode,
        .entry = entry,
        .stack = stack,
        .tables_addr = tables_addr,
    };
    return vcpud__unary(c, VCPUD__M_SETUP_MODE, 0,
                        vcpud_v1_SetupModeRequest_fields, &req, NULL, NULL, st);
}
