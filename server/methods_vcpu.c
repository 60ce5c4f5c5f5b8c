/* methods_vcpu.c: vCPUs – lifecycle, Run, registers, results, snapshots,
 * injection and mode setup. */
#include <errno.h>
#include <stdlib.h>

#include "handler.h"
#include "methods.h"
#include "pb_convert.h"
#include "status.h"

static const vcpud_v1_Empty empty = vcpud_v1_Empty_init_zero;

void m_create_vcpu(struct rpc_call *call, const uint8_t *buf, size_t len)
{
    struct handler h;
    vcpud_v1_VcpuRef req = vcpud_v1_VcpuRef_init_zero;
    if (!handler_start(&h, call, buf, len, vcpud_v1_VcpuRef_fields, &req) ||
        !handler_vm(&h, req.vm_id))
        return;
    int rc = registry_create_vcpu(h.app->reg, h.vm, req.vcpu_id, &h.err);
    handler_finish(&h, rc, vcpud_v1_Empty_fields, &empty);
}

void m_destroy_vcpu(struct rpc_call *call, const uint8_t *buf, size_t len)
{
    struct handler h;
    vcpud_v1_VcpuRef req = vcpud_v1_VcpuRef_init_zero;
    if (!handler_start(&h, call, buf, len, vcpud_v1_VcpuRef_fields, &req) ||
        !handler_vm(&h, req.vm_id))
        return;
    int rc = registry_destroy_vcpu(h.vm, req.vcpu_id, &h.err);
    handler_finish(&h, rc, vcpud_v1_Empty_fields, &empty);
}

void m_run(struct rpc_call *call, const uint8_t *buf, size_t len)
{
    struct handler h;
    vcpud_v1_RunRequest *req = malloc(sizeof(*req));
    if (!req) {
        rpc_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                        "server out of memory", -ENOMEM);
        return;
    }
    /* Not zeroed (32 KB, on every Run): decoding initialises each field. */
    if (!handler_start(&h, call, buf, len, vcpud_v1_RunRequest_fields, req) ||
        !handler_vm(&h, req->vm_id)) {
        free(req);
        return;
    }
    struct vcpu_host *host = registry_host(h.vm, req->vcpu_id, &h.err);
    if (!host) {
        free(req);
        handler_finish(&h, -ENOENT, NULL, NULL);
        return;
    }
    handler_end(&h);
    rpc_call_set_data(call, host); /* released in m_run_done */
    host_run(host, call, req);
    /* The peer may have gone before the data above was set, when
     * host_on_run_cancel could not find the host. */
    if (rpc_call_cancelled(call))
        host_on_run_cancel(call);
}

void m_run_done(struct rpc_call *call)
{
    struct vcpu_host *host = rpc_call_data(call);
    if (host)
        host_unref(host);
}

void m_cancel(struct rpc_call *call, const uint8_t *buf, size_t len)
{
    struct handler h;
    vcpud_v1_VcpuRef req = vcpud_v1_VcpuRef_init_zero;
    if (!handler_start(&h, call, buf, len, vcpud_v1_VcpuRef_fields, &req) ||
        !handler_vcpu(&h, req.vm_id, req.vcpu_id))
        return;
    vcpud_vcpu_cancel(h.cpu);
    handler_finish(&h, 0, vcpud_v1_Empty_fields, &empty);
}

void m_get_regs(struct rpc_call *call, const uint8_t *buf, size_t len)
{
    struct handler h;
    vcpud_v1_VcpuRef req = vcpud_v1_VcpuRef_init_zero;
    if (!handler_start(&h, call, buf, len, vcpud_v1_VcpuRef_fields, &req) ||
        !handler_vcpu(&h, req.vm_id, req.vcpu_id))
        return;
    struct vcpud_regs r;
    vcpud_v1_Regs resp = vcpud_v1_Regs_init_zero;
    int rc = vcpud_vcpu_get_regs(h.cpu, &r, &h.err);
    if (rc == 0)
        vcpud_pb_from_regs(&resp, &r);
    handler_finish(&h, rc, vcpud_v1_Regs_fields, &resp);
}

void m_set_regs(struct rpc_call *call, const uint8_t *buf, size_t len)
{
    struct handler h;
    vcpud_v1_SetRegsRequest req = vcpud_v1_SetRegsRequest_init_zero;
    if (!handler_start(&h, call, buf, len, vcpud_v1_SetRegsRequest_fields,
                       &req) ||
        !handler_vcpu(&h, req.vm_id, req.vcpu_id))
        return;
    int rc;
    if (!req.has_regs) {
        rc = vcpud_err_set(&h.err, -EINVAL, "SetRegs needs regs");
    } else {
        struct vcpud_regs r;
        vcpud_pb_to_regs(&r, &req.regs);
        rc = vcpud_vcpu_set_regs(h.cpu, &r, &h.err);
    }
    handler_finish(&h, rc, vcpud_v1_Empty_fields, &empty);
}

void m_get_sregs(struct rpc_call *call, const uint8_t *buf, size_t len)
{
    struct handler h;
    vcpud_v1_VcpuRef req = vcpud_v1_VcpuRef_init_zero;
    if (!handler_start(&h, call, buf, len, vcpud_v1_VcpuRef_fields, &req) ||
        !handler_vcpu(&h, req.vm_id, req.vcpu_id))
        return;
    struct vcpud_sregs s;
    vcpud_v1_SpecialRegs resp = vcpud_v1_SpecialRegs_init_zero;
    int rc = vcpud_vcpu_get_sregs(h.cpu, &s, &h.err);
    if (rc == 0)
        vcpud_pb_from_sregs(&resp, &s);
    handler_finish(&h, rc, vcpud_v1_SpecialRegs_fields, &resp);
}

void m_set_sregs(struct rpc_call *call, const uint8_t *buf, size_t len)
{
    struct handler h;
    vcpud_v1_SetSpecialRegsRequest req =
        vcpud_v1_SetSpecialRegsRequest_init_zero;
    if (!handler_start(&h, call, buf, len,
                       vcpud_v1_SetSpecialRegsRequest_fields, &req) ||
        !handler_vcpu(&h, req.vm_id, req.vcpu_id))
        return;
    struct vcpud_sregs s;
    int rc = req.has_sregs
                 ? vcpud_pb_to_sregs(&s, &req.sregs, &h.err)
                 : vcpud_err_set(&h.err, -EINVAL,
                                 "SetSpecialRegs needs sregs");
    if (rc == 0)
        rc = vcpud_vcpu_set_sregs(h.cpu, &s, &h.err);
    handler_finish(&h, rc, vcpud_v1_Empty_fields, &empty);
}

void m_set_io_result(struct rpc_call *call, const uint8_t *buf, size_t len)
{
    struct handler h;
    vcpud_v1_SetIoResultRequest *req = malloc(sizeof(*req));
    if (!req) {
        rpc_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                        "server out of memory", -ENOMEM);
        return;
    }
    *req = (vcpud_v1_SetIoResultRequest)vcpud_v1_SetIoResultRequest_init_zero;
    if (handler_start(&h, call, buf, len, vcpud_v1_SetIoResultRequest_fields,
                      req) &&
        handler_vcpu(&h, req->vm_id, req->vcpu_id)) {
        int rc = vcpud_vcpu_set_io_result(h.cpu, req->values,
                                          req->values_count, &h.err);
        handler_finish(&h, rc, vcpud_v1_Empty_fields, &empty);
    }
    free(req);
}

void m_set_mmio_result(struct rpc_call *call, const uint8_t *buf, size_t len)
{
    struct handler h;
    vcpud_v1_SetMmioResultRequest req =
        vcpud_v1_SetMmioResultRequest_init_zero;
    if (!handler_start(&h, call, buf, len,
                       vcpud_v1_SetMmioResultRequest_fields, &req) ||
        !handler_vcpu(&h, req.vm_id, req.vcpu_id))
        return;
    int rc = vcpud_vcpu_set_mmio_result(h.cpu, req.value, &h.err);
    handler_finish(&h, rc, vcpud_v1_Empty_fields, &empty);
}

void m_snapshot(struct rpc_call *call, const uint8_t *buf, size_t len)
{
    struct handler h;
    vcpud_v1_VcpuRef req = vcpud_v1_VcpuRef_init_zero;
    if (!handler_start(&h, call, buf, len, vcpud_v1_VcpuRef_fields, &req) ||
        !handler_vcpu(&h, req.vm_id, req.vcpu_id))
        return;
    void *state = NULL;
    size_t n = 0;
    int rc = vcpud_vcpu_snapshot(h.cpu, &state, &n, &h.err);
    struct vcpud_pb_blob blob = {.data = state, .len = n};
    vcpud_v1_SnapshotResponse resp = vcpud_v1_SnapshotResponse_init_zero;
    vcpud_pb_blob_encoder(&resp.state, &blob);
    handler_finish(&h, rc, vcpud_v1_SnapshotResponse_fields, &resp);
    free(state);
}

void m_restore(struct rpc_call *call, const uint8_t *buf, size_t len)
{
    struct handler h;
    struct vcpud_pb_blob blob = {.max = VCPUD_SNAP_MAX_SIZE};
    vcpud_v1_RestoreRequest req = vcpud_v1_RestoreRequest_init_zero;
    vcpud_pb_blob_decoder(&req.state, &blob);
    if (handler_start(&h, call, buf, len, vcpud_v1_RestoreRequest_fields,
                      &req) &&
        handler_vcpu(&h, req.vm_id, req.vcpu_id)) {
        int rc = vcpud_vcpu_restore(h.cpu, blob.data, blob.len, &h.err);
        handler_finish(&h, rc, vcpud_v1_Empty_fields, &empty);
    }
    vcpud_pb_blob_free(&blob);
}

void m_inject_interrupt(struct rpc_call *call, const uint8_t *buf,
                        size_t len)
{
    struct handler h;
    vcpud_v1_InjectInterruptRequest req =
        vcpud_v1_InjectInterruptRequest_init_zero;
    if (!handler_start(&h, call, buf, len,
                       vcpud_v1_InjectInterruptRequest_fields, &req) ||
        !handler_vcpu(&h, req.vm_id, req.vcpu_id))
        return;
    int rc = vcpud_vcpu_inject_interrupt(h.cpu, req.vector, &h.err);
    handler_finish(&h, rc, vcpud_v1_Empty_fields, &empty);
}

void m_inject_nmi(struct rpc_call *call, const uint8_t *buf, size_t len)
{
    struct handler h;
    vcpud_v1_VcpuRef req = vcpud_v1_VcpuRef_init_zero;
    if (!handler_start(&h, call, buf, len, vcpud_v1_VcpuRef_fields, &req) ||
        !handler_vcpu(&h, req.vm_id, req.vcpu_id))
        return;
    int rc = vcpud_vcpu_inject_nmi(h.cpu, &h.err);
    handler_finish(&h, rc, vcpud_v1_Empty_fields, &empty);
}

void m_setup_mode(struct rpc_call *call, const uint8_t *buf, size_t len)
{
    struct handler h;
    vcpud_v1_SetupModeRequest req = vcpud_v1_SetupModeRequest_init_zero;
    if (!handler_start(&h, call, buf, len, vcpud_v1_SetupModeRequest_fields,
                       &req) ||
        !handler_vcpu(&h, req.vm_id, req.vcpu_id))
        return;
    int rc = vcpud_setup_mode(h.cpu, (enum vcpud_mode)req.mode, req.entry,
                              req.stack, req.tables_addr, &h.err);
    handler_finish(&h, rc, vcpud_v1_Empty_fields, &empty);
}
