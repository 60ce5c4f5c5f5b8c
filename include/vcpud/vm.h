/* vm.h: virtual machines and the guest memory the core owns for them. */
#ifndef VCPUD_VM_H
#define VCPUD_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vcpud/error.h"

struct vcpud_backend;
struct vcpud_vm;

#define VCPUD_VM_MAX_VCPUS_LIMIT 64u /* what a config may ask for */
#define VCPUD_VM_MAX_REGIONS 32u     /* memory slots per VM */
#define VCPUD_REGION_ALIGN 4096u     /* gpa and size granularity */
#define VCPUD_REGION_SIZE_MAX (64ull << 30)

#define VCPUD_REGION_READONLY 0x1u /* guest writes become MMIO exits */

struct vcpud_vm_config {
    uint32_t max_vcpus; /* 1..VCPUD_VM_MAX_VCPUS_LIMIT; 0 means 1 */
    /* Off by default so every exit, HLT included, reaches the controller.
     * On: KVM emulates PIC/IOAPIC/LAPIC; hlt then sleeps in the kernel and a
     * run returns only on an exit, a cancel or its timeout. */
    bool irqchip;
};

struct vcpud_region_info {
    uint32_t slot;
    uint64_t gpa;
    uint64_t size;
    uint32_t flags;
};

/*
 * Create a VM on (backend) as (cfg) says (NULL: defaults).
 * On success *out is a new VM owned by the caller; free it with
 * vcpud_vm_destroy(), which also destroys its vCPUs and memory.
 */
int vcpud_vm_create(const struct vcpud_backend *backend,
                    const struct vcpud_vm_config *cfg, struct vcpud_vm **out,
                    struct vcpud_err *err);

/* Destroy (vm), its vCPUs and its memory. Callers must make sure no other
 * thread still uses the VM or one of its vCPUs. NULL is a no-op. */
void vcpud_vm_destroy(struct vcpud_vm *vm);

/* The configuration the VM was created with (defaults filled in). */
const struct vcpud_vm_config *vcpud_vm_config(const struct vcpud_vm *vm);

/*
 * Give the guest (size) bytes of zeroed RAM at guest physical address (gpa)
 * in memory slot (slot) (< VCPUD_VM_MAX_REGIONS). gpa and size must be
 * multiples of VCPUD_REGION_ALIGN and must not overlap another region. The
 * core allocates and owns the host memory; it is freed by
 * vcpud_vm_remove_region() or vcpud_vm_destroy().
 */
int vcpud_vm_add_region(struct vcpud_vm *vm, uint32_t slot, uint64_t gpa,
                        uint64_t size, uint32_t flags, struct vcpud_err *err);

/* Take the region in (slot) away from the guest and free its memory. */
int vcpud_vm_remove_region(struct vcpud_vm *vm, uint32_t slot,
                           struct vcpud_err *err);

/* Copy up to (max) region descriptions, sorted by gpa, into (out); return
 * how many regions the VM has. */
size_t vcpud_vm_list_regions(struct vcpud_vm *vm, struct vcpud_region_info *out,
                             size_t max);

/* Total bytes of guest RAM the VM holds. */
uint64_t vcpud_vm_memory_size(struct vcpud_vm *vm);

/*
 * Copy between the caller's buffer and guest physical memory. The whole
 * range [gpa, gpa + len) must be backed by regions (adjacent regions may be
 * crossed); otherwise nothing is copied and -ERANGE is
 * returned with the first unbacked address in the message. Safe to call
 * while vCPUs run (like DMA: no ordering against the guest is implied).
 */
int vcpud_vm_write(struct vcpud_vm *vm, uint64_t gpa, const void *buf,
                   size_t len, struct vcpud_err *err);
int vcpud_vm_read(struct vcpud_vm *vm, uint64_t gpa, void *buf, size_t len,
                  struct vcpud_err *err);

#define VCPUD_VM_MAX_POSTED 16u /* posted ranges per VM */
#define VCPUD_POSTED_RANGE_MAX (1u << 20)

/*
 * Make guest writes to [start, start + len) posted: ports when (pio), else
 * guest physical MMIO addresses (not RAM). Such writes do not stop the
 * guest; they are recorded in guest order and handed to the controller with
 * the next exit (see struct vcpud_exit), so a transmit register or a
 * doorbell costs no round trip. Reads there still exit as usual. len is
 * 1..VCPUD_POSTED_RANGE_MAX; ranges may not overlap. -ENOTSUP when the
 * backend cannot post writes of that kind.
 */
int vcpud_vm_add_posted(struct vcpud_vm *vm, bool pio, uint64_t start,
                        uint64_t len, struct vcpud_err *err);
/* Undo vcpud_vm_add_posted() for exactly that range. */
int vcpud_vm_remove_posted(struct vcpud_vm *vm, bool pio, uint64_t start,
                           uint64_t len, struct vcpud_err *err);

/* Drive interrupt line (irq) of the in-kernel irqchip to (level).
 * -ENOTSUP when the VM was created without one. */
int vcpud_vm_irq_line(struct vcpud_vm *vm, uint32_t irq, bool level,
                      struct vcpud_err *err);

/* The backend's name for this VM's backend ("kvm"). */
const char *vcpud_vm_backend_name(const struct vcpud_vm *vm);

#endif
