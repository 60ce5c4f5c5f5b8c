/* exit.h: why vcpud_vcpu_run() returned, with everything a controller needs
 * to emulate the access or decide what to do next. */
#ifndef VCPUD_EXIT_H
#define VCPUD_EXIT_H

#include <stdbool.h>
#include <stdint.h>

/* KVM hands string IO over in one page; no exit carries more. */
#define VCPUD_IO_DATA_MAX 4096u
/* Posted writes one exit carries at most. A run stops with a POSTED exit
 * before its buffer could overflow, so none is ever dropped. */
#define VCPUD_POSTED_MAX 1024u
#define VCPUD_INTERNAL_DATA_MAX 16u

#define VCPUD_EXIT_KINDS(X)                                                    \
    X(NONE, "none")                                                            \
    X(IO_OUT, "io-out")                                                        \
    X(IO_IN, "io-in")                                                          \
    X(MMIO_WRITE, "mmio-write")                                                \
    X(MMIO_READ, "mmio-read")                                                  \
    X(HLT, "hlt")                                                              \
    X(SHUTDOWN, "shutdown")                                                    \
    X(FAIL_ENTRY, "fail-entry")                                                \
    X(INTERNAL_ERROR, "internal-error")                                        \
    X(IRQ_WINDOW_OPEN, "irq-window-open")                                      \
    X(DEBUG, "debug")                                                          \
    X(CANCELED, "canceled")                                                    \
    X(UNKNOWN, "unknown")                                                      \
    X(POSTED, "posted")

enum vcpud_exit_kind {
#define VCPUD__EXIT_ENUM(name, text) VCPUD_EXIT_##name,
    VCPUD_EXIT_KINDS(VCPUD__EXIT_ENUM)
#undef VCPUD__EXIT_ENUM
};

enum vcpud_cancel_reason {
    VCPUD_CANCEL_REQUESTED = 1, /* vcpud_vcpu_cancel() */
    VCPUD_CANCEL_TIMEOUT = 2,   /* the run's wall-clock limit expired */
};

struct vcpud_exit_io {
    uint16_t port;
    uint8_t size;   /* bytes per element: 1, 2 or 4 */
    uint32_t count; /* elements; > 1 only for string IO (rep ins/outs) */
    /* IO_OUT: count * size bytes, element i at data + i * size, little
     * endian. IO_IN: unused – the guest waits for vcpud_vcpu_set_io_result. */
    uint8_t data[VCPUD_IO_DATA_MAX];
};

struct vcpud_exit_mmio {
    uint64_t addr;
    uint8_t size;  /* 1..8 */
    uint64_t data; /* MMIO_WRITE: the value written; MMIO_READ: 0 */
};

/* A guest write to a posted range: it did not stop the guest. */
struct vcpud_posted_write {
    uint64_t addr; /* guest physical address, or port */
    uint64_t data; /* little endian, (size) bytes */
    uint8_t size;  /* 1..8 */
    bool pio;
};

struct vcpud_exit {
    enum vcpud_exit_kind kind;
    /* Posted writes the guest made since the previous exit, oldest first;
     * all of them happened before this exit. The storage belongs to whoever
     * produced the exit (the vCPU, until its next run; the client's buffer)
     * and is never larger than VCPUD_POSTED_MAX. A POSTED exit carries
     * only these: the buffer filled up, nothing waits for an answer. */
    uint32_t nposted;
    const struct vcpud_posted_write *posted;
    union {
        struct vcpud_exit_io io;     /* IO_OUT, IO_IN */
        struct vcpud_exit_mmio mmio; /* MMIO_WRITE, MMIO_READ */
        struct {
            uint64_t hw_reason;
            uint32_t cpu;
        } fail_entry;
        struct {
            uint32_t suberror;
            uint32_t ndata;
            uint64_t data[VCPUD_INTERNAL_DATA_MAX];
        } internal;
        struct {
            uint32_t exception;
            uint64_t pc, dr6, dr7;
        } debug;
        struct {
            enum vcpud_cancel_reason reason;
        } canceled;
        struct {
            uint32_t reason; /* the backend's raw exit code */
        } unknown;
    } u;
};

/* "io-out", "mmio-read", ...; "invalid" for an unknown value. */
const char *vcpud_exit_kind_name(enum vcpud_exit_kind kind);

/* Element (i) (< count) of an IO_OUT exit's data, little endian. */
uint64_t vcpud_exit_io_value(const struct vcpud_exit *exit, uint32_t i);

/* True for the exits that leave the guest waiting for a value. */
static inline bool vcpud_exit_needs_result(enum vcpud_exit_kind kind)
{
    return kind == VCPUD_EXIT_IO_IN || kind == VCPUD_EXIT_MMIO_READ;
}

#endif
