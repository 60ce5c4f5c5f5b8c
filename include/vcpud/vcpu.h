/* vcpu.h: the vCPU interface – the C shape of arcbox's Vcpu trait (run,
 * get/set registers, id, set_io_result, set_mmio_result, snapshot, restore)
 * plus what a remote controller needs: special registers, cancel, interrupt
 * and NMI injection, single-step. */
#ifndef VCPUD_VCPU_H
#define VCPUD_VCPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vcpud/error.h"
#include "vcpud/exit.h"
#include "vcpud/regs.h"

struct vcpud_vm;
struct vcpud_vcpu;

/*
 * Threading: one thread drives a vCPU at a time (run, registers, results,
 * snapshot, restore); those calls fail with -EBUSY while another thread is
 * inside vcpud_vcpu_run() on it. vcpud_vcpu_cancel(),
 * vcpud_vcpu_inject_interrupt() and vcpud_vcpu_inject_nmi() may be called
 * from any thread at any time.
 */

/*
 * Create vCPU (id) (< the VM's max_vcpus) in (vm), with the CPUID the
 * backend supports and the reset state of an x86 CPU (real mode at
 * f000:fff0). The vCPU belongs to the VM: free it with vcpud_vcpu_destroy()
 * or let vcpud_vm_destroy() do it.
 */
int vcpud_vcpu_create(struct vcpud_vm *vm, uint32_t id, struct vcpud_vcpu **out,
                      struct vcpud_err *err);

/* Destroy (vcpu); it must not be running. NULL is a no-op. */
void vcpud_vcpu_destroy(struct vcpud_vcpu *vcpu);

/* The vCPU with (id) in (vm), or NULL. */
struct vcpud_vcpu *vcpud_vm_vcpu(struct vcpud_vm *vm, uint32_t id);

uint32_t vcpud_vcpu_id(const struct vcpud_vcpu *vcpu);
struct vcpud_vm *vcpud_vcpu_vm(const struct vcpud_vcpu *vcpu);

struct vcpud_run_opts {
    /* Wall-clock limit in nanoseconds; 0 for none. When it expires the run
     * returns a CANCELED exit with reason VCPUD_CANCEL_TIMEOUT. */
    uint64_t timeout_ns;
    /* When non-NULL, filled with the registers as the exit left them –
     * for IO and MMIO exits RIP still points at the instruction, which the
     * next run completes. Backends that can (KVM_CAP_SYNC_REGS) hand these
     * over with the exit, without extra calls into the kernel. */
    struct vcpud_regs *regs;
    struct vcpud_sregs *sregs;
};

/*
 * Run the guest until an exit the controller must see, and describe it in
 * (*exit). Exits the core handles itself (interrupt windows it asked for,
 * kicks for injection) never surface. Fails with -EPROTO when an IO_IN or
 * MMIO_READ exit still waits for its result. (opts) may be NULL.
 */
int vcpud_vcpu_run(struct vcpud_vcpu *vcpu, const struct vcpud_run_opts *opts,
                   struct vcpud_exit *exit, struct vcpud_err *err);

/*
 * Ask a running vCPU to return a CANCELED exit promptly. Any thread. A
 * cancel that arrives while the vCPU is not running is kept, and the next
 * vcpud_vcpu_run() returns CANCELED at once without entering the guest.
 */
void vcpud_vcpu_cancel(struct vcpud_vcpu *vcpu);

int vcpud_vcpu_get_regs(struct vcpud_vcpu *vcpu, struct vcpud_regs *regs,
                        struct vcpud_err *err);
int vcpud_vcpu_set_regs(struct vcpud_vcpu *vcpu, const struct vcpud_regs *regs,
                        struct vcpud_err *err);
int vcpud_vcpu_get_sregs(struct vcpud_vcpu *vcpu, struct vcpud_sregs *sregs,
                         struct vcpud_err *err);
int vcpud_vcpu_set_sregs(struct vcpud_vcpu *vcpu,
                         const struct vcpud_sregs *sregs,
                         struct vcpud_err *err);

/*
 * Complete a pending IO_IN exit: (count) values, one per element of a string
 * IO, each fitting the access size. -EPROTO when no IO_IN is pending,
 * -EINVAL when count or a value does not fit the pending access.
 */
int vcpud_vcpu_set_io_result(struct vcpud_vcpu *vcpu, const uint64_t *values,
                             uint32_t count, struct vcpud_err *err);

/* Complete a pending MMIO_READ exit with (value), which must fit its size. */
int vcpud_vcpu_set_mmio_result(struct vcpud_vcpu *vcpu, uint64_t value,
                               struct vcpud_err *err);

/*
 * Raise interrupt (vector) (32..255) on the vCPU. Without an in-kernel
 * irqchip the core delivers it as soon as the guest can take it (IF set,
 * no interrupt shadow), asking KVM for an interrupt window meanwhile; with
 * one it goes to the vCPU's local APIC. Any thread; a running vCPU is kicked
 * so it sees the interrupt without waiting for its next exit.
 */
int vcpud_vcpu_inject_interrupt(struct vcpud_vcpu *vcpu, uint32_t vector,
                                struct vcpud_err *err);

/* Raise an NMI on the vCPU. Any thread. */
int vcpud_vcpu_inject_nmi(struct vcpud_vcpu *vcpu, struct vcpud_err *err);

/* Make every run stop after one guest instruction with a DEBUG exit. */
int vcpud_vcpu_set_single_step(struct vcpud_vcpu *vcpu, bool enable,
                               struct vcpud_err *err);

/* Replace the vCPU's CPUID with everything the backend supports. */
int vcpud_vcpu_set_cpuid_supported(struct vcpud_vcpu *vcpu,
                                   struct vcpud_err *err);

/*
 * Serialize the complete vCPU state (see snapshot.h for the format), the
 * pending exit included. On success *buf is a malloc'd buffer of *len
 * bytes owned by the caller (free()).
 */
int vcpud_vcpu_snapshot(struct vcpud_vcpu *vcpu, void **buf, size_t *len,
                        struct vcpud_err *err);

/*
 * Load a state produced by vcpud_vcpu_snapshot(), possibly in another
 * process. The snapshot is checked completely before anything is applied;
 * a truncated, corrupted or foreign one fails with -EBADMSG and leaves the
 * vCPU as it was. Guest memory is not part of it.
 */
int vcpud_vcpu_restore(struct vcpud_vcpu *vcpu, const void *buf, size_t len,
                       struct vcpud_err *err);

#endif
