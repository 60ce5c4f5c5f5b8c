/* kvm_vcpu.c: KVM vCPUs – entering the guest, decoding exits, handing
 * results back, injection and guest debugging. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm_priv.h"

int kvm__vcpu_create(struct vcpud_be_vm *vm, uint32_t id,
                     struct vcpud_be_vcpu **out, struct vcpud_err *err)
{
    struct vcpud_be_vcpu *v = calloc(1, sizeof(*v));
    if (!v)
        return vcpud_err_set(err, -ENOMEM, "out of memory for a vCPU");
    v->vm = vm;
    v->id = id;
    int rc = v->fd = kvm__ioctl(vm->vm_fd, KVM_CREATE_VCPU, (void *)(long)id);
    if (rc < 0) {
        free(v);
        return vcpud_err_sys(err, rc, "KVM_CREATE_VCPU %u failed", id);
    }
    v->run =
        mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    if (v->run == MAP_FAILED) {
        rc = vcpud_err_sys(err, -errno, "cannot map vCPU %u's run area", id);
        close(v->fd);
        free(v);
        return rc;
    }
    *out = v;
    return 0;
}

void kvm__vcpu_destroy(struct vcpud_be_vcpu *v)
{
    if (!v)
        return;
    munmap(v->run, v->vm->run_size);
    close(v->fd);
    free(v->cpuid);
    free(v);
}

/* The kick is the immediate_exit byte: KVM checks it on every entry, so a
 * kick that lands before KVM_RUN cannot be missed, and the signal covers a
 * guest already running. Plain atomic stores: this runs in signal
 * handlers. */
void kvm__vcpu_kick(struct vcpud_be_vcpu *v)
{
    __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
}

void kvm__vcpu_unkick(struct vcpud_be_vcpu *v)
{
    __atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
}

static uint64_t le_bytes(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;)
        v = (v << 8) | p[i];
    return v;
}

static int decode_io(struct vcpud_be_vcpu *v, struct vcpud_exit *exit,
                     struct vcpud_err *err)
{
    const struct kvm_run *run = v->run;
    size_t len = (size_t)run->io.size * run->io.count;
    if (len == 0 || len > VCPUD_IO_DATA_MAX ||
        run->io.data_offset > v->vm->run_size - len)
        return vcpud_err_set(err, -EIO,
                             "KVM reported IO of %u x %u bytes at offset "
                             "%llu, outside its run area",
                             run->io.count, run->io.size,
                             (unsigned long long)run->io.data_offset);
    exit->u.io.port = run->io.port;
    exit->u.io.size = run->io.size;
    exit->u.io.count = run->io.count;
    if (run->io.direction == KVM_EXIT_IO_OUT) {
        exit->kind = VCPUD_EXIT_IO_OUT;
        memcpy(exit->u.io.data, (const uint8_t *)run + run->io.data_offset,
               len);
    } else {
        exit->kind = VCPUD_EXIT_IO_IN;
    }
    return 0;
}

static void decode(struct vcpud_be_vcpu *v, struct vcpud_exit *exit)
{
    const struct kvm_run *run = v->run;
    switch (run->exit_reason) {
    case KVM_EXIT_MMIO:
        exit->kind =
            run->mmio.is_write ? VCPUD_EXIT_MMIO_WRITE : VCPUD_EXIT_MMIO_READ;
        exit->u.mmio.addr = run->mmio.phys_addr;
        exit->u.mmio.size = (uint8_t)run->mmio.len;
        exit->u.mmio.data =
            run->mmio.is_write ? le_bytes(run->mmio.data, run->mmio.len) : 0;
        break;
    case KVM_EXIT_HLT:
        exit->kind = VCPUD_EXIT_HLT;
        break;
    case KVM_EXIT_SHUTDOWN:
        exit->kind = VCPUD_EXIT_SHUTDOWN;
        break;
    case KVM_EXIT_FAIL_ENTRY:
        exit->kind = VCPUD_EXIT_FAIL_ENTRY;
        exit->u.fail_entry.hw_reason =
            run->fail_entry.hardware_entry_failure_reason;
        exit->u.fail_entry.cpu = run->fail_entry.cpu;
        break;
    case KVM_EXIT_INTERNAL_ERROR: {
        uint32_t n = run->internal.ndata;
        if (n > VCPUD_INTERNAL_DATA_MAX)
            n = VCPUD_INTERNAL_DATA_MAX;
        exit->kind = VCPUD_EXIT_INTERNAL_ERROR;
        exit->u.internal.suberror = run->internal.suberror;
        exit->u.internal.ndata = n;
        memcpy(exit->u.internal.data, run->internal.data, n * sizeof(uint64_t));
        break;
    }
    case KVM_EXIT_IRQ_WINDOW_OPEN:
        exit->kind = VCPUD_EXIT_IRQ_WINDOW_OPEN;
        break;
    case KVM_EXIT_DEBUG:
        exit->kind = VCPUD_EXIT_DEBUG;
        exit->u.debug.exception = run->debug.arch.exception;
        exit->u.debug.pc = run->debug.arch.pc;
        exit->u.debug.dr6 = run->debug.arch.dr6;
        exit->u.debug.dr7 = run->debug.arch.dr7;
        break;
    default:
        exit->kind = VCPUD_EXIT_UNKNOWN;
        exit->u.unknown.reason = run->exit_reason;
        break;
    }
}

int kvm__vcpu_run(struct vcpud_be_vcpu *v, struct vcpud_exit *exit,
                  struct vcpud_err *err)
{
    int rc = kvm__ioctl(v->fd, KVM_RUN, NULL);
    /* Whatever KVM_RUN returned, it finished the previous exit's
     * instruction before looking at immediate_exit or entering the guest. */
    v->completion_due = false;
    if (rc == -EINTR || rc == -EAGAIN)
        return -EINTR;
    if (rc < 0)
        return vcpud_err_sys(err, rc, "KVM_RUN on vCPU %u failed", v->id);
    if (v->run->exit_reason == KVM_EXIT_INTR)
        return -EINTR;
    if (v->run->exit_reason == KVM_EXIT_IO) {
        rc = decode_io(v, exit, err);
        if (rc < 0)
            return rc;
        v->completion_due = true;
        return 0;
    }
    decode(v, exit);
    v->completion_due = exit->kind == VCPUD_EXIT_MMIO_READ ||
                        exit->kind == VCPUD_EXIT_MMIO_WRITE;
    return 0;
}

int kvm__vcpu_put_io_in(struct vcpud_be_vcpu *v, const uint8_t *data,
                        size_t len, struct vcpud_err *err)
{
    struct kvm_run *run = v->run;
    if (!v->completion_due || run->exit_reason != KVM_EXIT_IO ||
        run->io.direction != KVM_EXIT_IO_IN ||
        len != (size_t)run->io.size * run->io.count)
        return vcpud_err_set(err, -EPROTO,
                             "vCPU %u has no io-in of %zu bytes to complete",
                             v->id, len);
    memcpy((uint8_t *)run + run->io.data_offset, data, len);
    return 0;
}

int kvm__vcpu_put_mmio_read(struct vcpud_be_vcpu *v, uint64_t value,
                            struct vcpud_err *err)
{
    struct kvm_run *run = v->run;
    if (!v->completion_due || run->exit_reason != KVM_EXIT_MMIO ||
        run->mmio.is_write)
        return vcpud_err_set(err, -EPROTO,
                             "vCPU %u has no mmio-read to complete", v->id);
    for (unsigned i = 0; i < sizeof(run->mmio.data); i++)
        run->mmio.data[i] = i < run->mmio.len ? (uint8_t)(value >> (8 * i)) : 0;
    return 0;
}

/* KVM documents this: an entry with immediate_exit set completes a pending
 * IO or MMIO instruction and returns EINTR without running guest code. */
int kvm__vcpu_settle(struct vcpud_be_vcpu *v, struct vcpud_err *err)
{
    if (!v->completion_due)
        return 0;
    uint8_t was =
        __atomic_exchange_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    int rc = kvm__ioctl(v->fd, KVM_RUN, NULL);
    /* A cancel that set the byte meanwhile is still flagged in the core,
     * which re-arms it before the next entry. */
    if (!was)
        kvm__vcpu_unkick(v);
    v->completion_due = false;
    if (rc < 0 && rc != -EINTR)
        return vcpud_err_sys(
            err, rc, "KVM could not finish vCPU %u's IO instruction", v->id);
    return 0;
}

bool kvm__vcpu_irq_ready(struct vcpud_be_vcpu *v)
{
    return v->run->ready_for_interrupt_injection && v->run->if_flag;
}

int kvm__vcpu_inject_irq(struct vcpud_be_vcpu *v, uint32_t vector,
                         struct vcpud_err *err)
{
    struct kvm_interrupt irq = {.irq = vector};
    int rc = kvm__ioctl(v->fd, KVM_INTERRUPT, &irq);
    return rc < 0 ? vcpud_err_sys(err, rc, "KVM_INTERRUPT %u failed", vector)
                  : 0;
}

void kvm__vcpu_want_irq_window(struct vcpud_be_vcpu *v, bool want)
{
    v->run->request_interrupt_window = want;
}

int kvm__vcpu_inject_nmi(struct vcpud_be_vcpu *v, struct vcpud_err *err)
{
    int rc = kvm__ioctl(v->fd, KVM_NMI, NULL);
    return rc < 0 ? vcpud_err_sys(err, rc, "KVM_NMI failed") : 0;
}

int kvm__vcpu_set_single_step(struct vcpud_be_vcpu *v, bool enable,
                              struct vcpud_err *err)
{
    struct kvm_guest_debug dbg = {0};
    if (enable)
        dbg.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP;
    int rc = kvm__ioctl(v->fd, KVM_SET_GUEST_DEBUG, &dbg);
    return rc < 0 ? vcpud_err_sys(err, rc, "KVM_SET_GUEST_DEBUG failed") : 0;
}

int kvm__vcpu_set_cpuid(struct vcpud_be_vcpu *v, const struct kvm_cpuid2 *c,
                        struct vcpud_err *err)
{
    size_t size = sizeof(*c) + c->nent * sizeof(c->entries[0]);
    struct kvm_cpuid2 *copy = malloc(size);
    if (!copy)
        return vcpud_err_set(err, -ENOMEM, "out of memory for CPUID");
    memcpy(copy, c, size);
    /* KVM may write to the array it is given; keep our own copy clean. */
    int rc = kvm__ioctl(v->fd, KVM_SET_CPUID2, copy);
    if (rc < 0) {
        free(copy);
        return vcpud_err_sys(err, rc,
                             "KVM refused the CPUID (a vCPU that has run "
                             "cannot change it: use a fresh vCPU)");
    }
    memcpy(copy, c, size);
    free(v->cpuid);
    v->cpuid = copy;
    return 0;
}

int kvm__vcpu_set_cpuid_supported(struct vcpud_be_vcpu *v,
                                  struct vcpud_err *err)
{
    int rc = kvm__supported_cpuid(v->vm, err);
    if (rc < 0)
        return rc;
    const struct kvm_cpuid2 *sup = v->vm->cpuid;
    size_t size = sizeof(*sup) + sup->nent * sizeof(sup->entries[0]);
    struct kvm_cpuid2 *c = malloc(size);
    if (!c)
        return vcpud_err_set(err, -ENOMEM, "out of memory for CPUID");
    memcpy(c, sup, size);
    /* Each vCPU reports its own APIC id, as firmware would set it up. */
    for (uint32_t i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == 1)
            e->ebx = (e->ebx & 0x00ffffffu) | (v->id << 24);
        else if (e->function == 0xb || e->function == 0x1f)
            e->edx = v->id;
    }
    rc = kvm__vcpu_set_cpuid(v, c, err);
    free(c);
    return rc;
}
