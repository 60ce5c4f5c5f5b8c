/* pending.h: the exit that waits for the controller's answer – what it was,
 * whether the answer has come, and its encoding in a snapshot. Pure logic,
 * no backend, so it is unit tested on its own. */
#ifndef VCPUD_PENDING_H
#define VCPUD_PENDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vcpud/error.h"
#include "vcpud/exit.h"

struct vcpud_pending {
    enum vcpud_exit_kind kind; /* NONE, IO_IN or MMIO_READ */
    uint16_t port;
    uint64_t addr;
    uint8_t size;
    uint32_t count;
    bool have_result;
    /*
     * Set after a restore: the hypervisor knows nothing of this access, the
     * guest will execute it again and exit again; the core then answers that
     * exit itself with the stored result instead of surfacing it.
     */
    bool replay;
    uint64_t value;                  /* MMIO_READ result */
    uint8_t data[VCPUD_IO_DATA_MAX]; /* IO_IN result, count * size bytes */
};

/* Fixed part of the "pending" snapshot section; IO data follows it. */
#define VCPUD_PENDING_SECTION_FIXED 40u

void vcpud__pending_clear(struct vcpud_pending *p);

/* Remember (exit) if it waits for a result; forget any earlier one. */
void vcpud__pending_from_exit(struct vcpud_pending *p,
                              const struct vcpud_exit *exit);

/* Store the controller's answer after checking it fits the access. */
int vcpud__pending_set_io(struct vcpud_pending *p, const uint64_t *values,
                          uint32_t count, struct vcpud_err *err);
int vcpud__pending_set_mmio(struct vcpud_pending *p, uint64_t value,
                            struct vcpud_err *err);

/* 0 when the vCPU may run, -EPROTO while an answer is missing. */
int vcpud__pending_check_run(const struct vcpud_pending *p, uint32_t vcpu_id,
                             struct vcpud_err *err);

/* True when (exit) is the access (p) stands for: the replayed one. */
bool vcpud__pending_matches(const struct vcpud_pending *p,
                            const struct vcpud_exit *exit);

/* Bytes of IO result data (count * size), 0 for MMIO and none. */
size_t vcpud__pending_data_len(const struct vcpud_pending *p);

/* Describe the waiting access ("io-in port 0x3f8 size 1 count 1"). */
void vcpud__pending_describe(const struct vcpud_pending *p, char *buf,
                             size_t len);

/* Encode into (out), which holds VCPUD_PENDING_SECTION_FIXED +
 * VCPUD_IO_DATA_MAX bytes; returns the length used. */
uint32_t vcpud__pending_encode(const struct vcpud_pending *p, uint8_t *out);

/* Decode and validate a section body; (p) is untouched on error. */
int vcpud__pending_decode(struct vcpud_pending *p, const uint8_t *body,
                          uint32_t len, struct vcpud_err *err);

#endif
