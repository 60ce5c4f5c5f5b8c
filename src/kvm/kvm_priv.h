/* kvm_priv.h: the KVM backend's private state, shared by its files only. */
#ifndef VCPUD_KVM_PRIV_H
#define VCPUD_KVM_PRIV_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#include "vcpud/backend.h"

struct vcpud_be_vm {
    int sys_fd; /* /dev/kvm */
    int vm_fd;
    bool irqchip;
    size_t run_size; /* KVM_GET_VCPU_MMAP_SIZE */
    size_t xsave_size;
    uint64_t sync_regs; /* KVM_CAP_SYNC_REGS: what KVM can copy on exit */
    /* Coalesced MMIO/PIO: the ring's page in every vCPU's run area (0 when
     * KVM has none), and one consumer at a time – the ring is the VM's. */
    int ring_page;
    bool coalesced_pio;
    pthread_mutex_t ring_lock;
    struct kvm_cpuid2 *cpuid; /* what KVM supports, fetched once */
};

struct vcpud_be_vcpu {
    struct vcpud_be_vm *vm;
    uint32_t id;
    int fd;
    struct kvm_run *run;
    /* The last KVM_RUN returned an IO or MMIO exit whose instruction KVM
     * finishes on the next entry. */
    bool completion_due;
    /* The CPUID last given to KVM_SET_CPUID2. Snapshots save this copy:
     * KVM_GET_CPUID2 on some kernels (6.1) does not report the count it
     * filled in. */
    struct kvm_cpuid2 *cpuid;
};

/* Give (c) (nent entries) to the vCPU and keep a copy as vcpu->cpuid. */
int kvm__vcpu_set_cpuid(struct vcpud_be_vcpu *vcpu, const struct kvm_cpuid2 *c,
                        struct vcpud_err *err);

/* ioctl that retries on EINTR where that is safe; returns -errno. */
int kvm__ioctl(int fd, unsigned long req, void *arg);

/* Fetch KVM's supported CPUID into vm->cpuid if not done yet. */
int kvm__supported_cpuid(struct vcpud_be_vm *vm, struct vcpud_err *err);

int kvm__vcpu_create(struct vcpud_be_vm *vm, uint32_t id,
                     struct vcpud_be_vcpu **out, struct vcpud_err *err);
void kvm__vcpu_destroy(struct vcpud_be_vcpu *vcpu);
int kvm__vcpu_run(struct vcpud_be_vcpu *vcpu, struct vcpud_exit *exit,
                  struct vcpud_err *err);
void kvm__vcpu_kick(struct vcpud_be_vcpu *vcpu);
void kvm__vcpu_unkick(struct vcpud_be_vcpu *vcpu);
int kvm__vcpu_put_io_in(struct vcpud_be_vcpu *vcpu, const uint8_t *data,
                        size_t len, struct vcpud_err *err);
int kvm__vcpu_put_mmio_read(struct vcpud_be_vcpu *vcpu, uint64_t value,
                            struct vcpud_err *err);
int kvm__vcpu_settle(struct vcpud_be_vcpu *vcpu, struct vcpud_err *err);
bool kvm__vcpu_irq_ready(struct vcpud_be_vcpu *vcpu);
int kvm__vcpu_inject_irq(struct vcpud_be_vcpu *vcpu, uint32_t vector,
                         struct vcpud_err *err);
void kvm__vcpu_want_irq_window(struct vcpud_be_vcpu *vcpu, bool want);
int kvm__vcpu_inject_nmi(struct vcpud_be_vcpu *vcpu, struct vcpud_err *err);
int kvm__vcpu_set_single_step(struct vcpud_be_vcpu *vcpu, bool enable,
                              struct vcpud_err *err);
int kvm__vcpu_set_cpuid_supported(struct vcpud_be_vcpu *vcpu,
                                  struct vcpud_err *err);

/* kvm_posted.c */
int kvm__vm_add_posted(struct vcpud_be_vm *vm, bool pio, uint64_t start,
                       uint64_t len, struct vcpud_err *err);
int kvm__vm_remove_posted(struct vcpud_be_vm *vm, bool pio, uint64_t start,
                          uint64_t len, struct vcpud_err *err);
size_t kvm__vcpu_take_posted(struct vcpud_be_vcpu *vcpu,
                             struct vcpud_posted_write *out, size_t max);

/* kvm_regs.c */
int kvm__vcpu_get_regs(struct vcpud_be_vcpu *vcpu, struct vcpud_regs *r,
                       struct vcpud_err *err);
int kvm__vcpu_exit_state(struct vcpud_be_vcpu *vcpu, struct vcpud_regs *r,
                         struct vcpud_sregs *s, struct vcpud_err *err);
int kvm__vcpu_set_regs(struct vcpud_be_vcpu *vcpu, const struct vcpud_regs *r,
                       struct vcpud_err *err);
int kvm__vcpu_get_sregs(struct vcpud_be_vcpu *vcpu, struct vcpud_sregs *s,
                        struct vcpud_err *err);
int kvm__vcpu_set_sregs(struct vcpud_be_vcpu *vcpu, const struct vcpud_sregs *s,
                        struct vcpud_err *err);
void kvm__regs_from(struct vcpud_regs *r, const struct kvm_regs *k);
void kvm__regs_to(struct kvm_regs *k, const struct vcpud_regs *r);
void kvm__sregs_from(struct vcpud_sregs *s, const struct kvm_sregs *k);
/* Overwrites the fields vcpud knows, keeping KVM's interrupt bitmap. */
void kvm__sregs_to(struct kvm_sregs *k, const struct vcpud_sregs *s);

/* kvm_state.c */
int kvm__vcpu_save(struct vcpud_be_vcpu *vcpu, struct vcpud_snap_writer *w,
                   struct vcpud_err *err);
int kvm__vcpu_check(struct vcpud_be_vcpu *vcpu, const struct vcpud_snap *s,
                    struct vcpud_err *err);
int kvm__vcpu_load(struct vcpud_be_vcpu *vcpu, const struct vcpud_snap *s,
                   struct vcpud_err *err);

#endif
