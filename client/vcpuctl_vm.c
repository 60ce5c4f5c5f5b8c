/* vcpuctl_vm.c: subcommands for VMs, their memory regions and posted
 * ranges – vm-create, vm-list, vm-show, vm-destroy, mem-add, mem-remove,
 * posted-add, posted-remove. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vcpuctl.h"
#include "vcpuctl_json.h"

/* Sizes as they are typed: "2M" rather than 2097152 when exact. */
static const char *size_text(uint64_t v, char *buf, size_t len)
{
    static const char units[] = "GMK";
    for (int i = 0; i < 3; i++) {
        unsigned shift = 30 - 10 * (unsigned)i;
        if (v && (v & ((1ull << shift) - 1)) == 0) {
            snprintf(buf, len, "%" PRIu64 "%c", v >> shift, units[i]);
            return buf;
        }
    }
    snprintf(buf, len, "%" PRIu64, v);
    return buf;
}

int vcpuctl_vm_create(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    struct vcpud_vm_config cfg = {.irqchip =
                                      vcpuctl_flag(a, "--irqchip") != NULL};
    const char *max = vcpuctl_flag(a, "--max-vcpus");
    int rc;
    if (max && (rc = vcpuctl_arg_u32(ctl, "--max-vcpus", max,
                                     VCPUD_VM_MAX_VCPUS_LIMIT, &cfg.max_vcpus)))
        return rc;
    if ((rc = vcpuctl_connect(ctl)))
        return rc;
    struct vcpud_client_status st;
    uint32_t vm;
    if ((rc = vcpud_client_create_vm(ctl->client, &cfg, &vm, &st)) < 0)
        return vcpuctl_rpc_failed(ctl, "CreateVm", rc, &st);
    if (ctl->opt.json) {
        struct json_writer w;
        json_begin(&w, stdout);
        json_u32(&w, "vm_id", vm);
        json_end(&w);
    } else {
        /* Just the id, for vm=$(vcpuctl vm-create). */
        printf("%" PRIu32 "\n", vm);
    }
    return VCPUCTL_OK;
}

static void json_info(struct json_writer *w,
                      const struct vcpud_client_vm_info *v)
{
    json_u32(w, "vm_id", v->vm_id);
    json_u32(w, "max_vcpus", v->max_vcpus);
    json_bool(w, "irqchip", v->irqchip);
    json_hex64(w, "memory_bytes", v->memory_bytes);
    json_u32(w, "vcpu_count", v->vcpu_count);
    json_u32(w, "region_count", v->region_count);
}

int vcpuctl_vm_list(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    (void)a;
    int rc = vcpuctl_connect(ctl);
    if (rc)
        return rc;
    struct vcpud_client_vm_info *vms = NULL;
    struct vcpud_client_status st;
    size_t cap = 64, n;
    /* VMs come and go between calls: grow until the list fits. */
    for (;;) {
        struct vcpud_client_vm_info *room = realloc(vms, cap * sizeof(*vms));
        if (!room) {
            free(vms);
            return vcpuctl_failed(ctl, "out of memory for %zu VMs", cap);
        }
        vms = room;
        rc = vcpud_client_list_vms(ctl->client, vms, cap, &n, &st);
        if (rc < 0) {
            free(vms);
            return vcpuctl_rpc_failed(ctl, "ListVms", rc, &st);
        }
        if (n <= cap)
            break;
        cap = n + 16;
    }
    if (ctl->opt.json) {
        struct json_writer w;
        json_begin(&w, stdout);
        json_array(&w, "vms");
        for (size_t i = 0; i < n; i++) {
            json_object(&w, NULL);
            json_info(&w, &vms[i]);
            json_close(&w);
        }
        json_end(&w);
    } else {
        printf("%-6s %-6s %-6s %-8s %-8s %s\n", "VM", "VCPUS", "MAX", "IRQCHIP",
               "MEMORY", "REGIONS");
        for (size_t i = 0; i < n; i++) {
            char mem[32];
            printf("%-6" PRIu32 " %-6" PRIu32 " %-6" PRIu32
                   " %-8s %-8s %" PRIu32 "\n",
                   vms[i].vm_id, vms[i].vcpu_count, vms[i].max_vcpus,
                   vms[i].irqchip ? "yes" : "no",
                   size_text(vms[i].memory_bytes, mem, sizeof(mem)),
                   vms[i].region_count);
        }
    }
    free(vms);
    return VCPUCTL_OK;
}

static void print_vm_text(const struct vcpud_client_vm_info *info,
                          const uint32_t *ids, size_t nids,
                          const struct vcpud_region_info *regions,
                          size_t nregions)
{
    char buf[32];
    printf("vm %" PRIu32 ": max_vcpus=%" PRIu32 " irqchip=%s memory=%s\n",
           info->vm_id, info->max_vcpus, info->irqchip ? "yes" : "no",
           size_text(info->memory_bytes, buf, sizeof(buf)));
    fputs("vcpus:", stdout);
    for (size_t i = 0; i < nids; i++)
        printf(" %" PRIu32, ids[i]);
    fputs(nids ? "\n" : " none\n", stdout);
    for (size_t i = 0; i < nregions; i++)
        printf("region slot=%" PRIu32 " gpa=0x%" PRIx64 " size=%s%s\n",
               regions[i].slot, regions[i].gpa,
               size_text(regions[i].size, buf, sizeof(buf)),
               regions[i].flags & VCPUD_REGION_READONLY ? " read-only" : "");
}

int vcpuctl_vm_show(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    uint32_t vm;
    int rc = vcpuctl_arg_u32(ctl, "VM", a->pos[0], UINT32_MAX, &vm);
    if (rc || (rc = vcpuctl_connect(ctl)))
        return rc;
    struct vcpud_client_vm_info info;
    uint32_t ids[VCPUD_VM_MAX_VCPUS_LIMIT];
    struct vcpud_region_info regions[VCPUD_VM_MAX_REGIONS];
    size_t nids, nregions;
    struct vcpud_client_status st;
    if ((rc = vcpud_client_get_vm(ctl->client, vm, &info, ids, &nids, regions,
                                  &nregions, &st)) < 0)
        return vcpuctl_rpc_failed(ctl, "GetVm", rc, &st);
    if (!ctl->opt.json) {
        print_vm_text(&info, ids, nids, regions, nregions);
        return VCPUCTL_OK;
    }
    struct json_writer w;
    json_begin(&w, stdout);
    json_info(&w, &info);
    json_array(&w, "vcpu_ids");
    for (size_t i = 0; i < nids; i++)
        json_u32(&w, NULL, ids[i]);
    json_close(&w);
    json_array(&w, "regions");
    for (size_t i = 0; i < nregions; i++) {
        json_object(&w, NULL);
        json_u32(&w, "slot", regions[i].slot);
        json_hex64(&w, "guest_phys_addr", regions[i].gpa);
        json_hex64(&w, "size", regions[i].size);
        json_bool(&w, "read_only", regions[i].flags & VCPUD_REGION_READONLY);
        json_close(&w);
    }
    json_close(&w);
    json_end(&w);
    return VCPUCTL_OK;
}

int vcpuctl_vm_destroy(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    uint32_t vm;
    int rc = vcpuctl_arg_u32(ctl, "VM", a->pos[0], UINT32_MAX, &vm);
    if (rc || (rc = vcpuctl_connect(ctl)))
        return rc;
    struct vcpud_client_status st;
    if ((rc = vcpud_client_destroy_vm(ctl->client, vm, &st)) < 0)
        return vcpuctl_rpc_failed(ctl, "DestroyVm", rc, &st);
    return vcpuctl_done(ctl);
}

int vcpuctl_mem_add(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    uint32_t vm, slot;
    uint64_t gpa, size;
    int rc;
    if ((rc = vcpuctl_arg_u32(ctl, "VM", a->pos[0], UINT32_MAX, &vm)) ||
        (rc = vcpuctl_arg_u32(ctl, "SLOT", a->pos[1], UINT32_MAX, &slot)) ||
        (rc = vcpuctl_arg_size(ctl, "GPA", a->pos[2], &gpa)) ||
        (rc = vcpuctl_arg_size(ctl, "SIZE", a->pos[3], &size)) ||
        (rc = vcpuctl_connect(ctl)))
        return rc;
    struct vcpud_client_status st;
    bool ro = vcpuctl_flag(a, "--read-only") != NULL;
    if ((rc = vcpud_client_add_region(ctl->client, vm, slot, gpa, size, ro,
                                      &st)) < 0)
        return vcpuctl_rpc_failed(ctl, "AddMemoryRegion", rc, &st);
    return vcpuctl_done(ctl);
}

int vcpuctl_mem_remove(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    uint32_t vm, slot;
    int rc;
    if ((rc = vcpuctl_arg_u32(ctl, "VM", a->pos[0], UINT32_MAX, &vm)) ||
        (rc = vcpuctl_arg_u32(ctl, "SLOT", a->pos[1], UINT32_MAX, &slot)) ||
        (rc = vcpuctl_connect(ctl)))
        return rc;
    struct vcpud_client_status st;
    if ((rc = vcpud_client_remove_region(ctl->client, vm, slot, &st)) < 0)
        return vcpuctl_rpc_failed(ctl, "RemoveMemoryRegion", rc, &st);
    return vcpuctl_done(ctl);
}

/* posted-add and posted-remove: VM pio|mmio START LEN. */
static int posted_range(struct vcpuctl *ctl, const struct vcpuctl_args *a,
                        bool add)
{
    uint32_t vm;
    uint64_t start, len;
    int rc;
    if ((rc = vcpuctl_arg_u32(ctl, "VM", a->pos[0], UINT32_MAX, &vm)))
        return rc;
    bool pio = strcmp(a->pos[1], "pio") == 0;
    if (!pio && strcmp(a->pos[1], "mmio") != 0)
        return vcpuctl_usage(ctl, "'%s': expected pio or mmio", a->pos[1]);
    if ((rc = vcpuctl_arg_size(ctl, "START", a->pos[2], &start)) ||
        (rc = vcpuctl_arg_size(ctl, "LEN", a->pos[3], &len)) ||
        (rc = vcpuctl_connect(ctl)))
        return rc;
    struct vcpud_client_status st;
    if (add)
        rc = vcpud_client_add_posted(ctl->client, vm, pio, start, len, &st);
    else
        rc = vcpud_client_remove_posted(ctl->client, vm, pio, start, len, &st);
    if (rc < 0)
        return vcpuctl_rpc_failed(
            ctl, add ? "AddPostedRange" : "RemovePostedRange", rc, &st);
    return vcpuctl_done(ctl);
}

int vcpuctl_posted_add(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    return posted_range(ctl, a, true);
}

int vcpuctl_posted_remove(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    return posted_range(ctl, a, false);
}
