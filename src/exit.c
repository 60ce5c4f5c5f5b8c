/* exit.c: reading exits – kind names and IO data elements. */
#include <stddef.h>

#include "vcpud/exit.h"

const char *vcpud_exit_kind_name(enum vcpud_exit_kind kind)
{
    static const char *const names[] = {
#define VCPUD__EXIT_NAME(name, text) [VCPUD_EXIT_##name] = text,
        VCPUD_EXIT_KINDS(VCPUD__EXIT_NAME)
#undef VCPUD__EXIT_NAME
    };
    if ((unsigned)kind >= sizeof(names) / sizeof(names[0]))
        return "invalid";
    return names[kind];
}

uint64_t vcpud_exit_io_value(const struct vcpud_exit *exit, uint32_t i)
{
    const uint8_t *p = exit->u.io.data + (size_t)i * exit->u.io.size;
    uint64_t v = 0;
    for (unsigned b = exit->u.io.size; b-- > 0;)
        v = (v << 8) | p[b];
    return v;
}
