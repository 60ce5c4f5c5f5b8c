/* exit.c: names of exit kinds, for messages and the CLI. */
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
