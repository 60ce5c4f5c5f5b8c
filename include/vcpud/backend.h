/* backend.h: what a hypervisor backend provides to the core. The core owns
 * policy (guest memory, the pending-result protocol, cancel, injection
 * queues, the snapshot container); a backend only talks to its hypervisor. */
#ifndef VCPUD_BACKEND_H
#define VCPUD_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vcpud/error.h"
#include "vcpud/exit.h"
#include "vcpud/regs.h"
#include "vcpud/snapshot.h"
#include "vcpud/vm.h"

struct vcpud_be_vm;   /* a backend's VM, opaque to the core */
/* What a backend may record between two exits (KVM's ring holds 170). */
#define VCPUD_POSTED_PER_RUN 256u
struct vcpud_be_vcpu; /* a backend's vCPU, opaque to the core */

/*
 * All members are required unless marked optional. Every vcpu_* call except
 * vcpu_kick/vcpu_unkick is made by the one thread driving that vCPU.
 */
struct vcpud_backend {
    const char *name;

    /* 0 when the backend can run on this machine, else why not. */
    int (*probe)(struct vcpud_err *err);

    int (*vm_create)(const struct vcpud_vm_config *cfg,
                     struct vcpud_be_vm **out, struct vcpud_err *err);
    void (*vm_destroy)(struct vcpud_be_vm *vm);
    /* Map (size) bytes of host memory at (host) into the guest at (gpa). */
    int (*vm_map)(struct vcpud_be_vm *vm, uint32_t slot, uint64_t gpa,
                  uint64_t size, void *host, uint32_t flags,
                  struct vcpud_err *err);
    int (*vm_unmap)(struct vcpud_be_vm *vm, uint32_t slot,
                    struct vcpud_err *err);
    /* Optional: in-kernel irqchip line. */
    int (*vm_irq_line)(struct vcpud_be_vm *vm, uint32_t irq, bool level,
                       struct vcpud_err *err);
    /* Optional: deliver (vector) to the local APIC of vCPU (apic_id) of an
     * in-kernel irqchip. Any thread. */
    int (*vm_send_vector)(struct vcpud_be_vm *vm, uint32_t apic_id,
                          uint32_t vector, struct vcpud_err *err);

    /* Optional: record writes to a range instead of exiting on them. */
    int (*vm_add_posted)(struct vcpud_be_vm *vm, bool pio, uint64_t start,
                         uint64_t len, struct vcpud_err *err);
    int (*vm_remove_posted)(struct vcpud_be_vm *vm, bool pio, uint64_t start,
                            uint64_t len, struct vcpud_err *err);
    /* Optional (with vm_add_posted): move up to (max) recorded writes,
     * oldest first, into (out); returns how many. At most
     * VCPUD_POSTED_PER_RUN accumulate during one vcpu_run. */
    size_t (*vcpu_take_posted)(struct vcpud_be_vcpu *vcpu,
                               struct vcpud_posted_write *out, size_t max);

    int (*vcpu_create)(struct vcpud_be_vm *vm, uint32_t id,
                       struct vcpud_be_vcpu **out, struct vcpud_err *err);
    void (*vcpu_destroy)(struct vcpud_be_vcpu *vcpu);

    /*
     * Enter the guest once. 0 with (*exit) filled, or -EINTR when a kick or
     * a signal stopped it before or during guest execution (*exit then
     * untouched). A result stored with vcpu_put_io_in/vcpu_put_mmio_read is
     * consumed by this call whatever it returns.
     */
    int (*vcpu_run)(struct vcpud_be_vcpu *vcpu, struct vcpud_exit *exit,
                    struct vcpud_err *err);
    /* Async-signal-safe: make the current or next vcpu_run return -EINTR
     * without entering the guest. */
    void (*vcpu_kick)(struct vcpud_be_vcpu *vcpu);
    /* Undo vcpu_kick. */
    void (*vcpu_unkick)(struct vcpud_be_vcpu *vcpu);

    /* Hand the guest the result of the IO_IN / MMIO_READ exit the last
     * vcpu_run returned; the next vcpu_run delivers it. */
    int (*vcpu_put_io_in)(struct vcpud_be_vcpu *vcpu, const uint8_t *data,
                          size_t len, struct vcpud_err *err);
    int (*vcpu_put_mmio_read)(struct vcpud_be_vcpu *vcpu, uint64_t value,
                              struct vcpud_err *err);
    /* Finish an instruction the last exit left half done (the guest does
     * not run). Needed before state is read for a snapshot or written. */
    int (*vcpu_settle)(struct vcpud_be_vcpu *vcpu, struct vcpud_err *err);

    /* The registers as the last exit left them, without finishing a
     * half-done instruction; either pointer may be NULL. */
    int (*vcpu_exit_state)(struct vcpud_be_vcpu *vcpu, struct vcpud_regs *r,
                           struct vcpud_sregs *s, struct vcpud_err *err);
    int (*vcpu_get_regs)(struct vcpud_be_vcpu *vcpu, struct vcpud_regs *r,
                         struct vcpud_err *err);
    int (*vcpu_set_regs)(struct vcpud_be_vcpu *vcpu, const struct vcpud_regs *r,
                         struct vcpud_err *err);
    int (*vcpu_get_sregs)(struct vcpud_be_vcpu *vcpu, struct vcpud_sregs *s,
                          struct vcpud_err *err);
    int (*vcpu_set_sregs)(struct vcpud_be_vcpu *vcpu,
                          const struct vcpud_sregs *s, struct vcpud_err *err);

    /* Userspace interrupt delivery: can the guest take an interrupt now
     * (as of the last exit)? */
    bool (*vcpu_irq_ready)(struct vcpud_be_vcpu *vcpu);
    int (*vcpu_inject_irq)(struct vcpud_be_vcpu *vcpu, uint32_t vector,
                           struct vcpud_err *err);
    /* Ask for an IRQ_WINDOW_OPEN exit once the guest can take one. */
    void (*vcpu_want_irq_window)(struct vcpud_be_vcpu *vcpu, bool want);
    int (*vcpu_inject_nmi)(struct vcpud_be_vcpu *vcpu, struct vcpud_err *err);

    int (*vcpu_set_single_step)(struct vcpud_be_vcpu *vcpu, bool enable,
                                struct vcpud_err *err);
    int (*vcpu_set_cpuid_supported)(struct vcpud_be_vcpu *vcpu,
                                    struct vcpud_err *err);

    /* Append the vCPU's complete architectural state as sections. */
    int (*vcpu_save)(struct vcpud_be_vcpu *vcpu, struct vcpud_snap_writer *w,
                     struct vcpud_err *err);
    /* Check every section this backend reads; change nothing. */
    int (*vcpu_check)(struct vcpud_be_vcpu *vcpu, const struct vcpud_snap *s,
                      struct vcpud_err *err);
    /* Apply a snapshot that vcpu_check accepted. */
    int (*vcpu_load)(struct vcpud_be_vcpu *vcpu, const struct vcpud_snap *s,
                     struct vcpud_err *err);
};

/* The KVM backend (Linux /dev/kvm, x86-64). */
extern const struct vcpud_backend vcpud_backend_kvm;

/*
 * Find a backend by name: "kvm", or "auto" for the first one whose probe
 * succeeds. -ENOENT for an unknown name, the probe's error when it cannot
 * run here. The result has static storage.
 */
int vcpud_backend_find(const char *name, const struct vcpud_backend **out,
                       struct vcpud_err *err);

#endif
