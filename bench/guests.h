/* guests.h: the guests of guests.S as byte ranges. */
#ifndef VCPUD_BENCH_GUESTS_H
#define VCPUD_BENCH_GUESTS_H

#include <stddef.h>
#include <stdint.h>

/* Where vcpud and the core load and start them (real mode). */
#define BENCH_GUEST_LOAD 0x1000u
#define BENCH_GUEST_STACK 0x8000u
#define BENCH_GUEST_RAM 0x200000u

/* The ports they use. */
#define BENCH_PORT_OUT 0x10
#define BENCH_PORT_IN 0x11

#define BENCH_GUEST_DECLARE(name)                                              \
    extern const uint8_t bench_guest_##name##_start[],                         \
        bench_guest_##name##_end[]
#define BENCH_GUEST(name)                                                      \
    (struct bench_guest)                                                       \
    {                                                                          \
#name, bench_guest_##name##_start,                                     \
            (size_t)(bench_guest_##name##_end - bench_guest_##name##_start)    \
    }

struct bench_guest {
    const char *name;
    const uint8_t *code;
    size_t len;
};

BENCH_GUEST_DECLARE(out_loop);
BENCH_GUEST_DECLARE(inout_loop);
BENCH_GUEST_DECLARE(spin);

#endif
