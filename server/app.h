/* app.h: what every handler shares – the registry, who may call, limits
 * and counters. */
#ifndef VCPUD_SERVER_APP_H
#define VCPUD_SERVER_APP_H

#include <stdatomic.h>
#include <stddef.h>

#include "auth.h"
#include "registry.h"
#include "rpc.h"

struct app {
    struct registry *reg;
    struct auth *auth;
    struct limits lim;
    atomic_uint_fast64_t calls;
    atomic_uint_fast64_t failed_calls;
};

/* The table of every method of vcpud.v1.Vcpud. */
extern const struct rpc_method app_methods[];
extern const size_t app_nmethods;

#endif
