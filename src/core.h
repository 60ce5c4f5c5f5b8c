/* core.h: the core's private view of VMs and vCPUs, shared by vm.c,
 * vcpu.c, vcpu_state.c and setup.c. */
#ifndef VCPUD_CORE_H
#define VCPUD_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "pending.h"
#include "vcpud/backend.h"
#include "vcpud/vcpu.h"
#include "vcpud/vm.h"

struct vcpud_region {
    bool used;
    uint64_t gpa, size;
    uint32_t flags;
    void *host;
};

struct vcpud_vm {
    const struct vcpud_backend *be;
    struct vcpud_be_vm *bvm;
    struct vcpud_vm_config cfg;

    /* Readers copy guest memory; writers change the region table. Held
     * across the copy so a region cannot be unmapped under a reader. */
    pthread_rwlock_t mem_lock;
    struct vcpud_region regions[VCPUD_VM_MAX_REGIONS]; /* by slot */

    pthread_mutex_t vcpu_lock; /* the table below */
    struct vcpud_vcpu *vcpus[VCPUD_VM_MAX_VCPUS_LIMIT];

    /* Posted ranges; the count is read without the lock on the exit path
     * to skip all posting work for VMs that have none. */
    pthread_mutex_t posted_lock;
    struct vcpud_posted_range {
        bool used, pio;
        uint64_t start, len;
    } posted[VCPUD_VM_MAX_POSTED];
    atomic_uint nposted_ranges;
};

/* Is a write of (size) bytes at (addr) inside a posted range? */
bool vcpud__vm_is_posted(struct vcpud_vm *vm, bool pio, uint64_t addr,
                         uint32_t size);

struct vcpud_vcpu {
    struct vcpud_vm *vm;
    uint32_t id;
    struct vcpud_be_vcpu *bv;

    /* One driver at a time: set by whichever call drives the vCPU. */
    atomic_bool busy;

    /* Who to signal so that a running guest stops; guarded by kick_lock
     * so a signal never goes to a thread that has left run(). */
    pthread_mutex_t kick_lock;
    bool running;
    pthread_t runner;

    atomic_bool cancel;    /* a cancel waits to be reported */
    atomic_bool timed_out; /* the run's limit expired */
    atomic_bool nmi;       /* an NMI waits to be delivered */
    /* Interrupt vectors waiting for delivery (userspace irqchip). */
    atomic_uint_least64_t irqs[4];
    bool window_wanted;

    struct vcpud_pending pending;

    /* Posted writes gathered for the exit being produced. */
    uint32_t nposted;
    struct vcpud_posted_write posted[VCPUD_POSTED_MAX];
};

/* Claim the right to drive (vcpu); -EBUSY when another caller has it. */
int vcpud__vcpu_claim(struct vcpud_vcpu *vcpu, struct vcpud_err *err);
void vcpud__vcpu_release(struct vcpud_vcpu *vcpu);

/* Hand a stored result to the backend and finish the half-done
 * instruction, so the architectural state is whole. Fails with -EPROTO
 * when the guest still waits for an answer. Caller holds the claim. */
int vcpud__vcpu_settle(struct vcpud_vcpu *vcpu, struct vcpud_err *err);

#endif
