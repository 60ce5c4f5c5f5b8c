/* guests.h: the guests of guests.S, as byte ranges to load at 0x1000. */
#ifndef VCPUD_TEST_GUESTS_H
#define VCPUD_TEST_GUESTS_H

#include <stddef.h>
#include <stdint.h>

#define GUEST_LOAD 0x1000u

#define GUEST_DECLARE(name)                                                    \
    extern const uint8_t guest_##name##_start[], guest_##name##_end[]
#define GUEST(name)                                                            \
    (struct guest)                                                             \
    {                                                                          \
#name, guest_##name##_start,                                           \
            (size_t)(guest_##name##_end - guest_##name##_start)                \
    }

struct guest {
    const char *name;
    const uint8_t *code;
    size_t len;
};

GUEST_DECLARE(io_out);
GUEST_DECLARE(io_in);
GUEST_DECLARE(string_io);
GUEST_DECLARE(hlt);
GUEST_DECLARE(triple_fault);
GUEST_DECLARE(spin);
GUEST_DECLARE(in_echo);
GUEST_DECLARE(irq);
GUEST_DECLARE(irq_spin);
GUEST_DECLARE(compute);
GUEST_DECLARE(prot32);
GUEST_DECLARE(long64);
GUEST_DECLARE(mmio);
GUEST_DECLARE(rom_write);
GUEST_DECLARE(apic_irq);
GUEST_DECLARE(flag_wait);
GUEST_DECLARE(posted);
GUEST_DECLARE(posted_mix);

#endif
