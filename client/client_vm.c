/* client_vm.c: creating, destroying and describing VMs. */
#include <errno.h>
#include <stdlib.h>

#include "client.h"
#include "vcpud/v1/vcpud.pb.h"

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))
/* The header promises callers these bounds; vcpud.options sets them. */
_Static_assert(COUNT_OF(((vcpud_v1_VmDetail *)0)->vcpu_ids) ==
                   VCPUD_VM_MAX_VCPUS_LIMIT,
               "VmDetail.vcpu_ids max_count disagrees with vm.h");
_Static_assert(COUNT_OF(((vcpud_v1_VmDetail *)0)->regions) ==
                   VCPUD_VM_MAX_REGIONS,
               "VmDetail.regions max_count disagrees with vm.h");

int vcpud_client_create_vm(struct vcpud_client *c,
                           const struct vcpud_vm_config *cfg, uint32_t *vm_id,
                           struct vcpud_client_status *st)
{
    if (!c)
        return vcpud__bad_arg(st, "create-vm: no client");
    vcpud_v1_CreateVmRequest req = vcpud_v1_CreateVmRequest_init_zero;
    if (cfg) {
        req.max_vcpus = cfg->max_vcpus;
        req.irqchip = cfg->irqchip;
    }
    vcpud_v1_CreateVmResponse resp = vcpud_v1_CreateVmResponse_init_zero;
    int rc =
        vcpud__unary(c, VCPUD__M_CREATE_VM, 0, vcpud_v1_CreateVmRequest_fields,
                     &req, vcpud_v1_CreateVmResponse_fields, &resp, st);
    if (rc == 0 && vm_id)
        *vm_id = resp.vm_id;
    return rc;
}

int vcpud_client_destroy_vm(struct vcpud_client *c, uint32_t vm_id,
                            struct vcpud_client_status *st)
{
    if (!c)
        return vcpud__bad_arg(st, "destroy-vm: no client");
    vcpud_v1_VmRef req = {.vm_id = vm_id};
    return vcpud__unary(c, VCPUD__M_DESTROY_VM, 0, vcpud_v1_VmRef_fields, &req,
                        NULL, NULL, st);
}

static void info_from(struct vcpud_client_vm_info *out,
                      const vcpud_v1_VmInfo *in)
{
    *out = (struct vcpud_client_vm_info){
        .vm_id = in->vm_id,
        .max_vcpus = in->max_vcpus,
        .irqchip = in->irqchip,
        .memory_bytes = in->memory_bytes,
        .vcpu_count = in->vcpu_count,
        .region_count = in->region_count,
    };
}

int vcpud_client_list_vms(struct vcpud_client *c,
                          struct vcpud_client_vm_info *out, size_t max,
                          size_t *n, struct vcpud_client_status *st)
{
    if (!c || (max && !out))
        return vcpud__bad_arg(st,
                              "list-vms: no client, or no room for %zu "
                              "entries",
                              max);
    /* 1024 entries (40 KiB): too big for the stack of a caller's thread. */
    vcpud_v1_ListVmsResponse *resp = calloc(1, sizeof(*resp));
    if (!resp)
        return vcpud__fail(st, GRPC_STATUS_RESOURCE_EXHAUSTED, -ENOMEM,
                           "out of memory for a ListVms response");
    /* Page after page: the server sends at most 1024 VMs at a time. */
    vcpud_v1_ListVmsRequest req = vcpud_v1_ListVmsRequest_init_zero;
    size_t total = 0;
    int rc;
    do {
        rc = vcpud__unary(c, VCPUD__M_LIST_VMS, 0,
                          vcpud_v1_ListVmsRequest_fields, &req,
                          vcpud_v1_ListVmsResponse_fields, resp, st);
        for (size_t i = 0; rc == 0 && i < resp->vms_count; i++, total++)
            if (total < max)
                info_from(&out[total], &resp->vms[i]);
        /* Ids ascend: a page that points back would never end. */
        if (rc == 0 && resp->next_after_vm_id &&
            resp->next_after_vm_id <= req.after_vm_id)
            rc = vcpud__bad_reply(st,
                                  "ListVms: the page after VM %u "
                                  "points back to VM %u",
                                  req.after_vm_id, resp->next_after_vm_id);
        req.after_vm_id = resp->next_after_vm_id;
    } while (rc == 0 && req.after_vm_id != 0);
    if (rc == 0 && n)
        *n = total;
    free(resp);
    return rc;
}

int vcpud_client_get_vm(struct vcpud_client *c, uint32_t vm_id,
                        struct vcpud_client_vm_info *info, uint32_t *vcpu_ids,
                        size_t *nvcpus, struct vcpud_region_info *regions,
                        size_t *nregions, struct vcpud_client_status *st)
{
    if (!c)
        return vcpud__bad_arg(st, "get-vm: no client");
    vcpud_v1_VmRef req = {.vm_id = vm_id};
    vcpud_v1_VmDetail resp = vcpud_v1_VmDetail_init_zero;
    int rc = vcpud__unary(c, VCPUD__M_GET_VM, 0, vcpud_v1_VmRef_fields, &req,
                          vcpud_v1_VmDetail_fields, &resp, st);
    if (rc < 0)
        return rc;
    /* nanopb's max_count (64 and 32) already bounds both lists to what the
     * caller's arrays hold. */
    if (info)
        info_from(info, &resp.info);
    if (vcpu_ids)
        for (size_t i = 0; i < resp.vcpu_ids_count; i++)
            vcpu_ids[i] = resp.vcpu_ids[i];
    if (nvcpus)
        *nvcpus = resp.vcpu_ids_count;
    if (regions)
        for (size_t i = 0; i < resp.regions_count; i++)
            regions[i] = (struct vcpud_region_info){
                .slot = resp.regions[i].slot,
                .gpa = resp.regions[i].guest_phys_addr,
                .size = resp.regions[i].size,
                .flags = resp.regions[i].read_only ? VCPUD_REGION_READONLY : 0,
            };
    if (nregions)
        *nregions = resp.regions_count;
    return 0;
}
