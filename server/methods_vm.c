/* methods_vm.c: VMs and their memory regions. */
#include <errno.h>
#include <stdlib.h>

#include "handler.h"
#include "methods.h"

static const vcpud_v1_Empty empty = vcpud_v1_Empty_init_zero;

void m_create_vm(struct rpc_call *call, const uint8_t *buf, size_t len)
{
    struct handler h;
    vcpud_v1_CreateVmRequest req = vcpud_v1_CreateVmRequest_init_zero;
    if (!handler_start(&h, call, buf, len, vcpud_v1_CreateVmRequest_fields,
                       &req))
        return;
    struct vcpud_vm_config cfg = {.max_vcpus = req.max_vcpus,
                                  .irqchip = req.irqchip};
    vcpud_v1_CreateVmResponse resp = vcpud_v1_CreateVmResponse_init_zero;
    int rc = registry_create_vm(h.app->reg, h.tenant, &cfg, &resp.vm_id,
                                &h.err);
    handler_finish(&h, rc, vcpud_v1_CreateVmResponse_fields, &resp);
}

void m_destroy_vm(struct rpc_call *call, const uint8_t *buf, size_t len)
{
    struct handler h;
    vcpud_v1_VmRef req = vcpud_v1_VmRef_init_zero;
    if (!handler_start(&h, call, buf, len, vcpud_v1_VmRef_fields, &req))
        return;
    int rc = registry_destroy_vm(h.app->reg, h.tenant, req.vm_id, &h.err);
    handler_finish(&h, rc, vcpud_v1_Empty_fields, &empty);
}

static void fill_info(vcpud_v1_VmInfo *info, struct vm_entry *e,
                      uint32_t *vcpu_ids, pb_size_t *nvcpus,
                      vcpud_v1_MemoryRegion *regions, pb_size_t *nregions)
{
    const struct vcpud_vm_config *cfg = vcpud_vm_config(e->vm);
    info->vm_id = e->id;
    info->max_vcpus = cfg->max_vcpus;
    info->irqchip = cfg->irqchip;
    info->memory_bytes = vcpud_vm_memory_size(e->vm);
    pthread_mutex_lock(&e->lock);
    pb_size_t n = 0;
    for (uint32_t i = 0; i < VCPUD_VM_MAX_VCPUS_LIMIT; i++) {
        if (!e->hosts[i])
            continue;
        if (vcpu_ids)
            vcpu_ids[n] = i;
        n++;
    }
    pthread_mutex_unlock(&e->lock);
    info->vcpu_count = n;
    if (nvcpus)
        *nvcpus = n;
    struct vcpud_region_info r[VCPUD_VM_MAX_REGIONS];
    size_t nr = vcpud_vm_list_regions(e->vm, r, VCPUD_VM_MAX_REGIONS);
    info->region_count = (uint32_t)nr;
    for (size_t i = 0; regions && i < nr; i++)
        regions[i] = (vcpud_v1_MemoryRegion){
            .slot = r[i].slot,
            .guest_phys_addr = r[i].gpa,
            .size = r[i].size,
            .read_only = (r[i].flags & VCPUD_REGION_READONLY) != 0,
        };
    if (nregions)
        *nregions = (pb_size_t)nr;
}

/* A page of ListVms: as large as the response's array. */
#define LIST_PAGE                                                              \
    (sizeof(((vcpud_v1_ListVmsResponse *)0)->vms) /                            \
     sizeof(((vcpud_v1_ListVmsResponse *)0)->vms[0]))

void m_list_vms(struct rpc_call *call, const uint8_t *buf, size_t len)
{
    struct handler h;
    vcpud_v1_ListVmsRequest req = vcpud_v1_ListVmsRequest_init_zero;
    if (!handler_start(&h, call, buf, len, vcpud_v1_ListVmsRequest_fields,
                       &req))
        return;
    if (req.limit > LIST_PAGE) {
        handler_finish(&h,
                       vcpud_err_set(&h.err, -EINVAL,
                                     "limit %u is over %zu VMs per page",
                                     req.limit, LIST_PAGE),
                       NULL, NULL);
        return;
    }
    size_t page = req.limit ? req.limit : LIST_PAGE;
    vcpud_v1_ListVmsResponse *resp = calloc(1, sizeof(*resp));
    /* One id more than the page: whether another page follows. */
    uint32_t *ids = calloc(page + 1, sizeof(uint32_t));
    int rc = 0;
    if (!resp || !ids) {
        rc = vcpud_err_set(&h.err, -ENOMEM, "server out of memory");
    } else {
        size_t n =
            registry_list(h.app->reg, h.tenant, req.after_vm_id, ids, page + 1);
        if (n > page) {
            n = page;
            resp->next_after_vm_id = ids[page - 1];
        }
        for (size_t i = 0; i < n; i++) {
            struct vm_entry *e = registry_get(h.app->reg, h.tenant, ids[i],
                                              NULL);
            if (!e)
                continue; /* destroyed meanwhile */
            fill_info(&resp->vms[resp->vms_count++], e, NULL, NULL, NULL,
                      NULL);
            registry_put(h.app->reg, e);
        }
    }
    handler_finish(&h, rc, vcpud_v1_ListVmsResponse_fields, resp);
    free(resp);
    free(ids);
}

void m_get_vm(struct rpc_call *call, const uint8_t *buf, size_t len)
{
    struct handler h;
    vcpud_v1_VmRef req = vcpud_v1_VmRef_init_zero;
    if (!handler_start(&h, call, buf, len, vcpud_v1_VmRef_fields, &req) ||
        !handler_vm(&h, req.vm_id))
        return;
    vcpud_v1_VmDetail resp = vcpud_v1_VmDetail_init_zero;
    resp.has_info = true;
    fill_info(&resp.info, h.vm, resp.vcpu_ids, &resp.vcpu_ids_count,
              resp.regions, &resp.regions_count);
    handler_finish(&h, 0, vcpud_v1_VmDetail_fields, &resp);
}

void m_add_memory_region(struct rpc_call *call, const uint8_t *buf,
                         size_t len)
{
    struct handler h;
    vcpud_v1_AddMemoryRegionRequest req =
        vcpud_v1_AddMemoryRegionRequest_init_zero;
    if (!handler_start(&h, call, buf, len,
                       vcpud_v1_AddMemoryRegionRequest_fields, &req) ||
        !handler_vm(&h, req.vm_id))
        return;
    const vcpud_v1_MemoryRegion *r = &req.region;
    int rc = registry_add_region(
        h.app->reg, h.vm, r->slot, r->guest_phys_addr, r->size,
        r->read_only ? VCPUD_REGION_READONLY : 0, &h.err);
    handler_finish(&h, rc, vcpud_v1_Empty_fields, &empty);
}

void m_remove_memory_region(struct rpc_call *call, const uint8_t *buf,
                            size_t len)
{
    struct handler h;
    vcpud_v1_RemoveMemoryRegionRequest req =
        vcpud_v1_RemoveMemoryRegionRequest_init_zero;
    if (!handler_start(&h, call, buf, len,
                       vcpud_v1_RemoveMemoryRegionRequest_fields, &req) ||
        !handler_vm(&h, req.vm_id))
        return;
    int rc = registry_remove_region(h.app->reg, h.vm, req.slot, &h.err);
    handler_finish(&h, rc, vcpud_v1_Empty_fields, &empty);
}

void m_set_irq_line(struct rpc_call *call, const uint8_t *buf, size_t len)
{
    struct handler h;
    vcpud_v1_SetIrqLineRequest req = vcpud_v1_SetIrqLineRequest_init_zero;
    if (!handler_start(&h, call, buf, len, vcpud_v1_SetIrqLineRequest_fields,
                       &req) ||
        !handler_vm(&h, req.vm_id))
        return;
    int rc = vcpud_vm_irq_line(h.vm->vm, req.irq, req.level, &h.err);
    handler_finish(&h, rc, vcpud_v1_Empty_fields, &empty);
}

static void posted_range(struct rpc_call *call, const uint8_t *buf,
                         size_t len, bool add)
{
    struct handler h;
    vcpud_v1_PostedRange req = vcpud_v1_PostedRange_init_zero;
    if (!handler_start(&h, call, buf, len, vcpud_v1_PostedRange_fields,
                       &req) ||
        !handler_vm(&h, req.vm_id))
        return;
    int rc = add ? vcpud_vm_add_posted(h.vm->vm, req.pio, req.start,
                                       req.length, &h.err)
                 : vcpud_vm_remove_posted(h.vm->vm, req.pio, req.start,
                                          req.length, &h.err);
    handler_finish(&h, rc, vcpud_v1_Empty_fields, &empty);
}

void m_add_posted_range(struct rpc_call *call, const uint8_t *buf,
                        size_t len)
{
    posted_range(call, buf, len, true);
}

void m_remove_posted_range(struct rpc_call *call, const uint8_t *buf,
                           size_t len)
{
    posted_range(call, buf, len, false);
}
