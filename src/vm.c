/* vm.c: VMs, their vCPU table and the guest RAM the core owns for them. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core.h"

int vcpud_vm_create(const struct vcpud_backend *backend,
                    const struct vcpud_vm_config *cfg, struct vcpud_vm **out,
                    struct vcpud_err *err)
{
    struct vcpud_vm_config c = cfg ? *cfg : (struct vcpud_vm_config){0};

    if (!backend)
        return vcpud_err_set(err, -EINVAL, "no backend given");
    if (c.max_vcpus == 0)
        c.max_vcpus = 1;
    if (c.max_vcpus > VCPUD_VM_MAX_VCPUS_LIMIT)
        return vcpud_err_set(err, -EINVAL,
                             "max_vcpus %u is above the limit of %u",
                             c.max_vcpus, VCPUD_VM_MAX_VCPUS_LIMIT);

    struct vcpud_vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return vcpud_err_set(err, -ENOMEM, "out of memory for a VM");
    vm->be = backend;
    vm->cfg = c;
    pthread_rwlock_init(&vm->mem_lock, NULL);
    pthread_mutex_init(&vm->vcpu_lock, NULL);
    pthread_mutex_init(&vm->posted_lock, NULL);

    int rc = backend->vm_create(&vm->cfg, &vm->bvm, err);
    if (rc < 0) {
        pthread_rwlock_destroy(&vm->mem_lock);
        pthread_mutex_destroy(&vm->vcpu_lock);
        pthread_mutex_destroy(&vm->posted_lock);
        free(vm);
        return rc;
    }
    *out = vm;
    return 0;
}

void vcpud_vm_destroy(struct vcpud_vm *vm)
{
    if (!vm)
        return;
    for (uint32_t i = 0; i < VCPUD_VM_MAX_VCPUS_LIMIT; i++)
        vcpud_vcpu_destroy(vm->vcpus[i]);
    /* The hypervisor VM goes first so no vCPU or slot still points at the
     * host memory unmapped below. */
    vm->be->vm_destroy(vm->bvm);
    for (uint32_t s = 0; s < VCPUD_VM_MAX_REGIONS; s++) {
        if (vm->regions[s].used)
            munmap(vm->regions[s].host, vm->regions[s].size);
    }
    pthread_rwlock_destroy(&vm->mem_lock);
    pthread_mutex_destroy(&vm->vcpu_lock);
    pthread_mutex_destroy(&vm->posted_lock);
    free(vm);
}

const struct vcpud_vm_config *vcpud_vm_config(const struct vcpud_vm *vm)
{
    return &vm->cfg;
}

const char *vcpud_vm_backend_name(const struct vcpud_vm *vm)
{
    return vm->be->name;
}

static bool overlaps(const struct vcpud_region *r, uint64_t gpa, uint64_t size)
{
    return r->used && gpa < r->gpa + r->size && r->gpa < gpa + size;
}

int vcpud_vm_add_region(struct vcpud_vm *vm, uint32_t slot, uint64_t gpa,
                        uint64_t size, uint32_t flags, struct vcpud_err *err)
{
    if (slot >= VCPUD_VM_MAX_REGIONS)
        return vcpud_err_set(err, -EINVAL, "slot %u is not below %u", slot,
                             VCPUD_VM_MAX_REGIONS);
    if (size == 0 || size > VCPUD_REGION_SIZE_MAX)
        return vcpud_err_set(err, -EINVAL,
                             "region size %" PRIu64 " is not in 1..%llu", size,
                             (unsigned long long)VCPUD_REGION_SIZE_MAX);
    if (gpa % VCPUD_REGION_ALIGN || size % VCPUD_REGION_ALIGN)
        return vcpud_err_set(err, -EINVAL,
                             "gpa 0x%" PRIx64 " and size 0x%" PRIx64
                             " must be multiples of 0x%x",
                             gpa, size, VCPUD_REGION_ALIGN);
    if (gpa + size < gpa || gpa + size > (1ull << 52))
        return vcpud_err_set(err, -EINVAL,
                             "region 0x%" PRIx64 "+0x%" PRIx64
                             " ends beyond the 52-bit physical address space",
                             gpa, size);
    if (flags & ~VCPUD_REGION_READONLY)
        return vcpud_err_set(err, -EINVAL, "unknown region flags 0x%x",
                             flags & ~VCPUD_REGION_READONLY);

    pthread_rwlock_wrlock(&vm->mem_lock);
    int rc = 0;
    if (vm->regions[slot].used) {
        rc = vcpud_err_set(err, -EEXIST, "slot %u is already in use", slot);
        goto out;
    }
    for (uint32_t s = 0; s < VCPUD_VM_MAX_REGIONS; s++) {
        if (overlaps(&vm->regions[s], gpa, size)) {
            rc = vcpud_err_set(err, -EEXIST,
                               "0x%" PRIx64 "+0x%" PRIx64
                               " overlaps slot %u at 0x%" PRIx64 "+0x%" PRIx64,
                               gpa, size, s, vm->regions[s].gpa,
                               vm->regions[s].size);
            goto out;
        }
    }
    /* RAM over a posted range would silently stop its posting. */
    pthread_mutex_lock(&vm->posted_lock);
    for (uint32_t i = 0; i < VCPUD_VM_MAX_POSTED && rc == 0; i++) {
        const struct vcpud_posted_range *p = &vm->posted[i];
        if (p->used && !p->pio && gpa < p->start + p->len &&
            p->start < gpa + size)
            rc = vcpud_err_set(err, -EEXIST,
                               "0x%" PRIx64 "+0x%" PRIx64
                               " overlaps the posted MMIO range 0x%" PRIx64
                               "+0x%" PRIx64,
                               gpa, size, p->start, p->len);
    }
    pthread_mutex_unlock(&vm->posted_lock);
    if (rc < 0)
        goto out;
    /* NORESERVE: a large sparse guest costs only the pages it touches. */
    void *host = mmap(NULL, size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (host == MAP_FAILED) {
        rc = vcpud_err_sys(err, -ENOMEM,
                           "cannot allocate %" PRIu64 " bytes of guest RAM",
                           size);
        goto out;
    }
    rc = vm->be->vm_map(vm->bvm, slot, gpa, size, host, flags, err);
    if (rc < 0) {
        munmap(host, size);
        goto out;
    }
    vm->regions[slot] = (struct vcpud_region){
        .used = true, .gpa = gpa, .size = size, .flags = flags, .host = host};
out:
    pthread_rwlock_unlock(&vm->mem_lock);
    return rc;
}

int vcpud_vm_remove_region(struct vcpud_vm *vm, uint32_t slot,
                           struct vcpud_err *err)
{
    if (slot >= VCPUD_VM_MAX_REGIONS)
        return vcpud_err_set(err, -EINVAL, "slot %u is not below %u", slot,
                             VCPUD_VM_MAX_REGIONS);
    pthread_rwlock_wrlock(&vm->mem_lock);
    struct vcpud_region *r = &vm->regions[slot];
    int rc;
    if (!r->used) {
        rc = vcpud_err_set(err, -ENOENT, "slot %u holds no region", slot);
    } else if ((rc = vm->be->vm_unmap(vm->bvm, slot, err)) == 0) {
        munmap(r->host, r->size);
        memset(r, 0, sizeof(*r));
    }
    pthread_rwlock_unlock(&vm->mem_lock);
    return rc;
}

size_t vcpud_vm_list_regions(struct vcpud_vm *vm, struct vcpud_region_info *out,
                             size_t max)
{
    size_t n = 0;
    pthread_rwlock_rdlock(&vm->mem_lock);
    for (uint32_t s = 0; s < VCPUD_VM_MAX_REGIONS; s++) {
        const struct vcpud_region *r = &vm->regions[s];
        if (!r->used)
            continue;
        if (n < max) {
            /* Insertion sort by gpa: at most 32 entries. */
            size_t i = n;
            while (i > 0 && out[i - 1].gpa > r->gpa) {
                out[i] = out[i - 1];
                i--;
            }
            out[i] = (struct vcpud_region_info){
                .slot = s, .gpa = r->gpa, .size = r->size, .flags = r->flags};
        }
        n++;
    }
    pthread_rwlock_unlock(&vm->mem_lock);
    return n;
}

uint64_t vcpud_vm_memory_size(struct vcpud_vm *vm)
{
    uint64_t total = 0;
    pthread_rwlock_rdlock(&vm->mem_lock);
    for (uint32_t s = 0; s < VCPUD_VM_MAX_REGIONS; s++)
        total += vm->regions[s].used ? vm->regions[s].size : 0;
    pthread_rwlock_unlock(&vm->mem_lock);
    return total;
}

static const struct vcpud_region *region_at(const struct vcpud_vm *vm,
                                            uint64_t gpa)
{
    for (uint32_t s = 0; s < VCPUD_VM_MAX_REGIONS; s++) {
        const struct vcpud_region *r = &vm->regions[s];
        if (r->used && gpa >= r->gpa && gpa - r->gpa < r->size)
            return r;
    }
    return NULL;
}

/* Walk [gpa, gpa+len) region by region; check the whole range first so a
 * failed copy changes nothing. Read-only regions are read-only to the guest
 * only: the host loads ROM images through here. */
static int copy_guest(struct vcpud_vm *vm, uint64_t gpa, void *buf, size_t len,
                      bool to_guest, struct vcpud_err *err)
{
    if (gpa + len < gpa)
        return vcpud_err_set(
            err, -ERANGE, "range 0x%" PRIx64 "+0x%zx wraps around", gpa, len);
    pthread_rwlock_rdlock(&vm->mem_lock);
    int rc = 0;
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        uint64_t at = gpa;
        uint8_t *p = buf;
        while (at < gpa + len) {
            const struct vcpud_region *r = region_at(vm, at);
            if (!r) {
                rc = vcpud_err_set(
                    err, -ERANGE,
                    "guest address 0x%" PRIx64 " is not backed by RAM", at);
                break;
            }
            uint64_t off = at - r->gpa;
            uint64_t n = r->size - off;
            if (n > gpa + len - at)
                n = gpa + len - at;
            if (pass == 1) {
                uint8_t *h = (uint8_t *)r->host + off;
                if (to_guest)
                    memcpy(h, p, n);
                else
                    memcpy(p, h, n);
            }
            at += n;
            p += n;
        }
    }
    pthread_rwlock_unlock(&vm->mem_lock);
    return rc;
}

int vcpud_vm_write(struct vcpud_vm *vm, uint64_t gpa, const void *buf,
                   size_t len, struct vcpud_err *err)
{
    return copy_guest(vm, gpa, (void *)buf, len, true, err);
}

int vcpud_vm_read(struct vcpud_vm *vm, uint64_t gpa, void *buf, size_t len,
                  struct vcpud_err *err)
{
    return copy_guest(vm, gpa, buf, len, false, err);
}

int vcpud_vm_irq_line(struct vcpud_vm *vm, uint32_t irq, bool level,
                      struct vcpud_err *err)
{
    if (!vm->cfg.irqchip || !vm->be->vm_irq_line)
        return vcpud_err_set(err, -ENOTSUP,
                             "the VM has no in-kernel irqchip: create it with "
                             "irqchip on, or inject vectors into a vCPU");
    return vm->be->vm_irq_line(vm->bvm, irq, level, err);
}

static bool posted_overlap(const struct vcpud_posted_range *r, bool pio,
                           uint64_t start, uint64_t len)
{
    return r->used && r->pio == pio && start < r->start + r->len &&
           r->start < start + len;
}

int vcpud_vm_add_posted(struct vcpud_vm *vm, bool pio, uint64_t start,
                        uint64_t len, struct vcpud_err *err)
{
    const char *what = pio ? "port" : "MMIO";
    if (len == 0 || len > VCPUD_POSTED_RANGE_MAX || start + len < start ||
        (pio && start + len > 0x10000))
        return vcpud_err_set(err, -EINVAL,
                             "posted %s range 0x%" PRIx64 "+0x%" PRIx64
                             " is empty, too long (max 0x%x) or out of range",
                             what, start, len, VCPUD_POSTED_RANGE_MAX);
    if (!vm->be->vm_add_posted)
        return vcpud_err_set(err, -ENOTSUP,
                             "the %s backend cannot post writes",
                             vm->be->name);
    if (!pio) {
        pthread_rwlock_rdlock(&vm->mem_lock);
        bool ram = false;
        for (uint32_t s = 0; s < VCPUD_VM_MAX_REGIONS; s++)
            ram |= overlaps(&vm->regions[s], start, len);
        pthread_rwlock_unlock(&vm->mem_lock);
        if (ram)
            return vcpud_err_set(err, -EINVAL,
                                 "posted range 0x%" PRIx64 "+0x%" PRIx64
                                 " overlaps guest RAM: only MMIO can be "
                                 "posted",
                                 start, len);
    }
    pthread_mutex_lock(&vm->posted_lock);
    int rc = 0;
    uint32_t free_slot = VCPUD_VM_MAX_POSTED;
    for (uint32_t i = 0; i < VCPUD_VM_MAX_POSTED; i++) {
        if (posted_overlap(&vm->posted[i], pio, start, len)) {
            rc = vcpud_err_set(err, -EEXIST,
                               "posted %s range 0x%" PRIx64 "+0x%" PRIx64
                               " overlaps one already posted",
                               what, start, len);
            goto out;
        }
        if (!vm->posted[i].used && free_slot == VCPUD_VM_MAX_POSTED)
            free_slot = i;
    }
    if (free_slot == VCPUD_VM_MAX_POSTED) {
        rc = vcpud_err_set(err, -ENOSPC, "a VM has at most %u posted ranges",
                           VCPUD_VM_MAX_POSTED);
        goto out;
    }
    rc = vm->be->vm_add_posted(vm->bvm, pio, start, len, err);
    if (rc == 0) {
        vm->posted[free_slot] = (struct vcpud_posted_range){
            .used = true, .pio = pio, .start = start, .len = len};
        atomic_fetch_add(&vm->nposted_ranges, 1);
    }
out:
    pthread_mutex_unlock(&vm->posted_lock);
    return rc;
}

int vcpud_vm_remove_posted(struct vcpud_vm *vm, bool pio, uint64_t start,
                           uint64_t len, struct vcpud_err *err)
{
    pthread_mutex_lock(&vm->posted_lock);
    int rc = vcpud_err_set(err, -ENOENT,
                           "no posted %s range 0x%" PRIx64 "+0x%" PRIx64,
                           pio ? "port" : "MMIO", start, len);
    for (uint32_t i = 0; i < VCPUD_VM_MAX_POSTED; i++) {
        struct vcpud_posted_range *r = &vm->posted[i];
        if (!r->used || r->pio != pio || r->start != start || r->len != len)
            continue;
        vcpud_err_clear(err);
        rc = vm->be->vm_remove_posted(vm->bvm, pio, start, len, err);
        if (rc == 0) {
            r->used = false;
            atomic_fetch_sub(&vm->nposted_ranges, 1);
        }
        break;
    }
    pthread_mutex_unlock(&vm->posted_lock);
    return rc;
}

bool vcpud__vm_is_posted(struct vcpud_vm *vm, bool pio, uint64_t addr,
                         uint32_t size)
{
    bool hit = false;
    pthread_mutex_lock(&vm->posted_lock);
    for (uint32_t i = 0; i < VCPUD_VM_MAX_POSTED && !hit; i++) {
        const struct vcpud_posted_range *r = &vm->posted[i];
        hit = r->used && r->pio == pio && addr >= r->start &&
              addr + size <= r->start + r->len;
    }
    pthread_mutex_unlock(&vm->posted_lock);
    return hit;
}
