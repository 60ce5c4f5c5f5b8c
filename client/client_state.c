/* client_state.c: vCPU registers and whole-vCPU snapshots. */
#include <errno.h>
#include <stdlib.h>

#include "client.h"
#include "pb_convert.h"
#include "pb_io.h"
#include "vcpud/snapshot.h"
#include "vcpud/v1/vcpud.pb.h"

int vcpud_client_get_regs(struct vcpud_client *c, uint32_t vm_id,
                          uint32_t vcpu_id, struct vcpud_regs *regs,
                          struct vcpud_client_status *st)
{
    if (!c || !regs)
        return vcpud__bad_arg(st, "get-regs: no client or no registers");
    vcpud_v1_VcpuRef req = {.vm_id = vm_id, .vcpu_id = vcpu_id};
    vcpud_v1_Regs resp = vcpud_v1_Regs_init_zero;
    int rc = vcpud__unary(c, VCPUD__M_GET_REGS, 0, vcpud_v1_VcpuRef_fields,
                          &req, vcpud_v1_Regs_fields, &resp, st);
    if (rc == 0)
        vcpud_pb_to_regs(regs, &resp);
    return rc;
}

int vcpud_client_set_regs(struct vcpud_client *c, uint32_t vm_id,
                          uint32_t vcpu_id, const struct vcpud_regs *regs,
                          struct vcpud_client_status *st)
{
    if (!c || !regs)
        return vcpud__bad_arg(st, "set-regs: no client or no registers");
    vcpud_v1_SetRegsRequest req = {
        .vm_id = vm_id, .vcpu_id = vcpu_id, .has_regs = true};
    vcpud_pb_from_regs(&req.regs, regs);
    return vcpud__unary(c, VCPUD__M_SET_REGS, 0, vcpud_v1_SetRegsRequest_fields,
                        &req, NULL, NULL, st);
}

int vcpud_client_get_sregs(struct vcpud_client *c, uint32_t vm_id,
                           uint32_t vcpu_id, struct vcpud_sregs *sregs,
                           struct vcpud_client_status *st)
{
    if (!c || !sregs)
        return vcpud__bad_arg(st, "get-sregs: no client or no registers");
    vcpud_v1_VcpuRef req = {.vm_id = vm_id, .vcpu_id = vcpu_id};
    vcpud_v1_SpecialRegs resp = vcpud_v1_SpecialRegs_init_zero;
    int rc =
        vcpud__unary(c, VCPUD__M_GET_SPECIAL_REGS, 0, vcpud_v1_VcpuRef_fields,
                     &req, vcpud_v1_SpecialRegs_fields, &resp, st);
    if (rc < 0)
        return rc;
    struct vcpud_err err;
    if (vcpud_pb_to_sregs(sregs, &resp, &err) < 0)
        return vcpud__bad_reply(st, "GetSpecialRegs: %s", err.msg);
    return 0;
}

int vcpud_client_set_sregs(struct vcpud_client *c, uint32_t vm_id,
                           uint32_t vcpu_id, const struct vcpud_sregs *sregs,
                           struct vcpud_client_status *st)
{
    if (!c || !sregs)
        return vcpud__bad_arg(st, "set-sregs: no client or no registers");
    vcpud_v1_SetSpecialRegsRequest req = {
        .vm_id = vm_id, .vcpu_id = vcpu_id, .has_sregs = true};
    vcpud_pb_from_sregs(&req.sregs, sregs);
    return vcpud__unary(c, VCPUD__M_SET_SPECIAL_REGS, 0,
                        vcpud_v1_SetSpecialRegsRequest_fields, &req, NULL, NULL,
                        st);
}

int vcpud_client_snapshot(struct vcpud_client *c, uint32_t vm_id,
                          uint32_t vcpu_id, void **buf, size_t *len,
                          struct vcpud_client_status *st)
{
    if (!c || !buf || !len)
        return vcpud__bad_arg(st, "snapshot: no client or nowhere to put it");
    vcpud_v1_VcpuRef req = {.vm_id = vm_id, .vcpu_id = vcpu_id};
    /* The bound the server's own reader applies on Restore: a bigger
     * snapshot could never be loaded again anyway. */
    struct vcpud_pb_blob blob = {.max = VCPUD_SNAP_MAX_SIZE};
    vcpud_v1_SnapshotResponse resp = vcpud_v1_SnapshotResponse_init_zero;
    vcpud_pb_blob_decoder(&resp.state, &blob);
    int rc = vcpud__unary(c, VCPUD__M_SNAPSHOT, 0, vcpud_v1_VcpuRef_fields,
                          &req, vcpud_v1_SnapshotResponse_fields, &resp, st);
    if (rc == 0 && blob.len == 0)
        rc = vcpud__bad_reply(st, "Snapshot: the response holds no state");
    if (rc < 0) {
        /* Also after a failed decode, which may have kept a partial blob. */
        vcpud_pb_blob_free(&blob);
        return rc;
    }
    *buf = blob.data;
    *len = blob.len;
    return 0;
}

int vcpud_client_restore(struct vcpud_client *c, uint32_t vm_id,
                         uint32_t vcpu_id, const void *buf, size_t len,
                         struct vcpud_client_status *st)
{
    if (!c || !buf || !len)
        return vcpud__bad_arg(st, "restore: no client or an empty snapshot");
    if (len > VCPUD_SNAP_MAX_SIZE)
        return vcpud__bad_arg(st,
                              "restore: a %zu-byte snapshot is over the "
                              "%u-byte limit",
                              len, VCPUD_SNAP_MAX_SIZE);
    /* The encoder only reads the blob; the cast is the blob's one type for
     * both directions. */
    struct vcpud_pb_blob blob = {.data = (uint8_t *)(uintptr_t)buf, .len = len};
    vcpud_v1_RestoreRequest req = {.vm_id = vm_id, .vcpu_id = vcpu_id};
    vcpud_pb_blob_encoder(&req.state, &blob);
    return vcpud__unary(c, VCPUD__M_RESTORE, 0, vcpud_v1_RestoreRequest_fields,
                        &req, NULL, NULL, st);
}
