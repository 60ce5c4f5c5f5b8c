/* kvm_posted.c: posted writes on KVM's coalesced MMIO/PIO ring – writes
 * to a registered zone are appended to a ring page instead of exiting. */
#include <errno.h>
#include <inttypes.h>

#include "kvm_priv.h"

/* KVM_COALESCED_MMIO_MAX, which needs the kernel's PAGE_SIZE. */
#define RING_ENTRIES                                                           \
    ((4096 - sizeof(struct kvm_coalesced_mmio_ring)) /                         \
     sizeof(struct kvm_coalesced_mmio))

_Static_assert(RING_ENTRIES <= VCPUD_POSTED_PER_RUN,
               "KVM's ring holds more than one run may post");

static int zone(struct vcpud_be_vm *vm, unsigned long req, bool pio,
                uint64_t start, uint64_t len, struct vcpud_err *err)
{
    if (!vm->ring_page)
        return vcpud_err_set(err, -ENOTSUP,
                             "this KVM has no coalesced MMIO ring");
    if (pio && !vm->coalesced_pio)
        return vcpud_err_set(err, -ENOTSUP,
                             "this KVM cannot post port writes "
                             "(no KVM_CAP_COALESCED_PIO)");
    struct kvm_coalesced_mmio_zone z = {
        .addr = start, .size = (uint32_t)len, .pio = pio};
    int rc = kvm__ioctl(vm->vm_fd, req, &z);
    if (rc < 0)
        return vcpud_err_sys(err, rc == -ENOSPC ? -ENOSPC : rc,
                             "KVM refused the posted %s zone 0x%" PRIx64
                             "+0x%" PRIx64,
                             pio ? "port" : "MMIO", start, len);
    return 0;
}

int kvm__vm_add_posted(struct vcpud_be_vm *vm, bool pio, uint64_t start,
                       uint64_t len, struct vcpud_err *err)
{
    return zone(vm, KVM_REGISTER_COALESCED_MMIO, pio, start, len, err);
}

int kvm__vm_remove_posted(struct vcpud_be_vm *vm, bool pio, uint64_t start,
                          uint64_t len, struct vcpud_err *err)
{
    return zone(vm, KVM_UNREGISTER_COALESCED_MMIO, pio, start, len, err);
}

size_t kvm__vcpu_take_posted(struct vcpud_be_vcpu *v,
                             struct vcpud_posted_write *out, size_t max)
{
    struct vcpud_be_vm *vm = v->vm;
    if (!vm->ring_page)
        return 0;
    struct kvm_coalesced_mmio_ring *ring =
        (void *)((uint8_t *)v->run + (size_t)vm->ring_page * 4096);
    size_t n = 0;
    pthread_mutex_lock(&vm->ring_lock);
    /* KVM produces at `last`, we consume at `first`; acquire pairs with
     * KVM's write barrier before it advances `last`. */
    uint32_t first = ring->first;
    uint32_t last = __atomic_load_n(&ring->last, __ATOMIC_ACQUIRE);
    while (first != last && n < max && first < RING_ENTRIES) {
        const struct kvm_coalesced_mmio *e = &ring->coalesced_mmio[first];
        uint32_t len = e->len <= 8 ? e->len : 8;
        uint64_t data = 0;
        for (uint32_t i = len; i-- > 0;)
            data = (data << 8) | e->data[i];
        out[n++] = (struct vcpud_posted_write){
            .addr = e->phys_addr, .data = data, .size = (uint8_t)len,
            .pio = e->pio != 0};
        first = (uint32_t)((first + 1) % RING_ENTRIES);
    }
    __atomic_store_n(&ring->first, first, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&vm->ring_lock);
    return n;
}
