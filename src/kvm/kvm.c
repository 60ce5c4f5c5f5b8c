/* kvm.c: the KVM backend's VM level – /dev/kvm, VMs, memory slots,
 * interrupt lines – and the backend's table of operations. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm_priv.h"

#define KVM_DEVICE "/dev/kvm"
/* Below 4 GiB, above anything a small guest maps: Intel's VMX needs three
 * pages for a real-mode TSS and one for an identity page table. */
#define KVM_TSS_ADDR 0xfffbd000ull
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ull

int kvm__ioctl(int fd, unsigned long req, void *arg)
{
    int r;
    do {
        r = ioctl(fd, req, arg);
    } while (r < 0 && errno == EINTR && req != KVM_RUN);
    return r < 0 ? -errno : r;
}

static int open_kvm(struct vcpud_err *err)
{
    int fd = open(KVM_DEVICE, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        return vcpud_err_sys(err, rc == -ENOENT ? -ENODEV : rc,
                             "cannot open " KVM_DEVICE
                             " (is the kvm module loaded and may this user "
                             "open it?)");
    }
    int v = kvm__ioctl(fd, KVM_GET_API_VERSION, NULL);
    if (v != KVM_API_VERSION) {
        close(fd);
        return vcpud_err_set(err, -ENODEV,
                             KVM_DEVICE " speaks API %d, vcpud needs %d", v,
                             KVM_API_VERSION);
    }
    return fd;
}

static int kvm_probe(struct vcpud_err *err)
{
    int fd = open_kvm(err);
    if (fd < 0)
        return fd;
    static const struct {
        int cap;
        const char *name;
    } needed[] = {
        {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
        {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
        {KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS"},
        {KVM_CAP_DEBUGREGS, "KVM_CAP_DEBUGREGS"},
        {KVM_CAP_XSAVE, "KVM_CAP_XSAVE"},
        {KVM_CAP_XCRS, "KVM_CAP_XCRS"},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
        if (kvm__ioctl(fd, KVM_CHECK_EXTENSION, (void *)(long)needed[i].cap) <=
            0) {
            rc = vcpud_err_set(err, -ENODEV, "KVM lacks %s", needed[i].name);
            break;
        }
    }
    close(fd);
    return rc;
}

int kvm__supported_cpuid(struct vcpud_be_vm *vm, struct vcpud_err *err)
{
    if (vm->cpuid)
        return 0;
    /* KVM answers E2BIG until the array is large enough. */
    for (uint32_t n = 64; n <= 4096; n *= 2) {
        struct kvm_cpuid2 *c =
            calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
        if (!c)
            return vcpud_err_set(err, -ENOMEM, "out of memory for CPUID");
        c->nent = n;
        int rc = kvm__ioctl(vm->sys_fd, KVM_GET_SUPPORTED_CPUID, c);
        if (rc == 0) {
            vm->cpuid = c;
            return 0;
        }
        free(c);
        if (rc != -E2BIG)
            return vcpud_err_sys(err, rc, "KVM_GET_SUPPORTED_CPUID failed");
    }
    return vcpud_err_set(err, -E2BIG, "KVM reports over 4096 CPUID leaves");
}

static void vm_free(struct vcpud_be_vm *vm)
{
    pthread_mutex_destroy(&vm->ring_lock);
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    if (vm->sys_fd >= 0)
        close(vm->sys_fd);
    free(vm->cpuid);
    free(vm);
}

static int kvm_vm_create(const struct vcpud_vm_config *cfg,
                         struct vcpud_be_vm **out, struct vcpud_err *err)
{
    struct vcpud_be_vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return vcpud_err_set(err, -ENOMEM, "out of memory for a VM");
    vm->vm_fd = -1;
    vm->irqchip = cfg->irqchip;
    pthread_mutex_init(&vm->ring_lock, NULL);
    int rc = vm->sys_fd = open_kvm(err);
    if (rc < 0)
        goto fail;
    rc = kvm__ioctl(vm->sys_fd, KVM_GET_VCPU_MMAP_SIZE, NULL);
    if (rc < (int)sizeof(struct kvm_run)) {
        rc = vcpud_err_sys(err, rc < 0 ? rc : -EIO,
                           "KVM_GET_VCPU_MMAP_SIZE failed");
        goto fail;
    }
    vm->run_size = (size_t)rc;
    rc = kvm__ioctl(vm->sys_fd, KVM_CHECK_EXTENSION,
                    (void *)(long)KVM_CAP_XSAVE2);
    vm->xsave_size = rc > (int)sizeof(struct kvm_xsave)
                         ? (size_t)rc
                         : sizeof(struct kvm_xsave);
    rc = kvm__ioctl(vm->sys_fd, KVM_CHECK_EXTENSION,
                    (void *)(long)KVM_CAP_COALESCED_MMIO);
    if (rc > 0 && (size_t)(rc + 1) * 4096 <= vm->run_size)
        vm->ring_page = rc;
    vm->coalesced_pio = kvm__ioctl(vm->sys_fd, KVM_CHECK_EXTENSION,
                                   (void *)(long)KVM_CAP_COALESCED_PIO) > 0;
    rc = kvm__ioctl(vm->sys_fd, KVM_CHECK_EXTENSION,
                    (void *)(long)KVM_CAP_SYNC_REGS);
    vm->sync_regs = rc > 0 ? (uint64_t)rc : 0;
    rc = kvm__ioctl(vm->sys_fd, KVM_CHECK_EXTENSION,
                    (void *)(long)KVM_CAP_MAX_VCPUS);
    if (rc > 0 && cfg->max_vcpus > (uint32_t)rc) {
        rc = vcpud_err_set(err, -EINVAL,
                           "max_vcpus %u is above KVM's limit of %d",
                           cfg->max_vcpus, rc);
        goto fail;
    }
    rc = vm->vm_fd = kvm__ioctl(vm->sys_fd, KVM_CREATE_VM, NULL);
    if (rc < 0) {
        rc = vcpud_err_sys(err, rc == -ENOMEM ? -ENOMEM : rc,
                           "KVM_CREATE_VM failed");
        goto fail;
    }
    /* Only VMX uses these; SVM accepts and ignores them. */
    rc = kvm__ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (void *)KVM_TSS_ADDR);
    if (rc < 0) {
        rc = vcpud_err_sys(err, rc, "KVM_SET_TSS_ADDR failed");
        goto fail;
    }
    uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
    kvm__ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap);
    if (cfg->irqchip) {
        rc = kvm__ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, NULL);
        if (rc < 0) {
            rc = vcpud_err_sys(err, rc, "KVM_CREATE_IRQCHIP failed");
            goto fail;
        }
    }
    *out = vm;
    return 0;
fail:
    vm_free(vm);
    return rc;
}

static void kvm_vm_destroy(struct vcpud_be_vm *vm)
{
    if (vm)
        vm_free(vm);
}

static int set_slot(struct vcpud_be_vm *vm, uint32_t slot, uint64_t gpa,
                    uint64_t size, void *host, uint32_t flags,
                    struct vcpud_err *err)
{
    struct kvm_userspace_memory_region r = {
        .slot = slot,
        .flags = (flags & VCPUD_REGION_READONLY) ? KVM_MEM_READONLY : 0,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uint64_t)(uintptr_t)host,
    };
    int rc = kvm__ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
    if (rc < 0)
        return vcpud_err_sys(err, rc == -EEXIST ? -EEXIST : rc,
                             "KVM refused memory slot %u at 0x%" PRIx64
                             "+0x%" PRIx64,
                             slot, gpa, size);
    return 0;
}

static int kvm_vm_map(struct vcpud_be_vm *vm, uint32_t slot, uint64_t gpa,
                      uint64_t size, void *host, uint32_t flags,
                      struct vcpud_err *err)
{
    if ((flags & VCPUD_REGION_READONLY) &&
        kvm__ioctl(vm->sys_fd, KVM_CHECK_EXTENSION,
                   (void *)(long)KVM_CAP_READONLY_MEM) <= 0)
        return vcpud_err_set(err, -ENOTSUP,
                             "this KVM has no read-only memory slots");
    return set_slot(vm, slot, gpa, size, host, flags, err);
}

static int kvm_vm_unmap(struct vcpud_be_vm *vm, uint32_t slot,
                        struct vcpud_err *err)
{
    /* Size 0 deletes the slot; KVM ignores the other fields then. */
    return set_slot(vm, slot, 0, 0, NULL, 0, err);
}

static int kvm_vm_irq_line(struct vcpud_be_vm *vm, uint32_t irq, bool level,
                           struct vcpud_err *err)
{
    if (irq >= 24)
        return vcpud_err_set(err, -EINVAL,
                             "irq %u is not an IOAPIC input (0..23)", irq);
    struct kvm_irq_level l = {.irq = irq, .level = level};
    int rc = kvm__ioctl(vm->vm_fd, KVM_IRQ_LINE, &l);
    return rc < 0 ? vcpud_err_sys(err, rc, "KVM_IRQ_LINE %u failed", irq) : 0;
}

/* A fixed-delivery MSI to one local APIC is how a vector reaches a vCPU
 * directly when KVM emulates the APICs. */
static int kvm_vm_send_vector(struct vcpud_be_vm *vm, uint32_t apic_id,
                              uint32_t vector, struct vcpud_err *err)
{
    if (apic_id > 255)
        return vcpud_err_set(err, -EINVAL,
                             "APIC id %u is beyond xAPIC's 8 bits", apic_id);
    struct kvm_msi msi = {
        .address_lo = 0xfee00000u | (apic_id << 12),
        .data = vector,
    };
    int rc = kvm__ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi);
    if (rc < 0)
        return vcpud_err_sys(err, rc, "KVM_SIGNAL_MSI (vector %u) failed",
                             vector);
    if (rc == 0)
        return vcpud_err_set(err, -EPROTO,
                             "vector %u was not taken: the guest's local APIC "
                             "is disabled or masks it",
                             vector);
    return 0;
}

const struct vcpud_backend vcpud_backend_kvm = {
    .name = "kvm",
    .probe = kvm_probe,
    .vm_create = kvm_vm_create,
    .vm_destroy = kvm_vm_destroy,
    .vm_map = kvm_vm_map,
    .vm_unmap = kvm_vm_unmap,
    .vm_irq_line = kvm_vm_irq_line,
    .vm_send_vector = kvm_vm_send_vector,
    .vm_add_posted = kvm__vm_add_posted,
    .vm_remove_posted = kvm__vm_remove_posted,
    .vcpu_take_posted = kvm__vcpu_take_posted,
    .vcpu_create = kvm__vcpu_create,
    .vcpu_destroy = kvm__vcpu_destroy,
    .vcpu_run = kvm__vcpu_run,
    .vcpu_kick = kvm__vcpu_kick,
    .vcpu_unkick = kvm__vcpu_unkick,
    .vcpu_put_io_in = kvm__vcpu_put_io_in,
    .vcpu_put_mmio_read = kvm__vcpu_put_mmio_read,
    .vcpu_settle = kvm__vcpu_settle,
    .vcpu_exit_state = kvm__vcpu_exit_state,
    .vcpu_get_regs = kvm__vcpu_get_regs,
    .vcpu_set_regs = kvm__vcpu_set_regs,
    .vcpu_get_sregs = kvm__vcpu_get_sregs,
    .vcpu_set_sregs = kvm__vcpu_set_sregs,
    .vcpu_irq_ready = kvm__vcpu_irq_ready,
    .vcpu_inject_irq = kvm__vcpu_inject_irq,
    .vcpu_want_irq_window = kvm__vcpu_want_irq_window,
    .vcpu_inject_nmi = kvm__vcpu_inject_nmi,
    .vcpu_set_single_step = kvm__vcpu_set_single_step,
    .vcpu_set_cpuid_supported = kvm__vcpu_set_cpuid_supported,
    .vcpu_save = kvm__vcpu_save,
    .vcpu_check = kvm__vcpu_check,
    .vcpu_load = kvm__vcpu_load,
};
