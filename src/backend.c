/* backend.c: choosing a backend by name at run time. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "vcpud/backend.h"

static const struct vcpud_backend *const backends[] = {
    &vcpud_backend_kvm,
};

int vcpud_backend_find(const char *name, const struct vcpud_backend **out,
                       struct vcpud_err *err)
{
    size_t n = sizeof(backends) / sizeof(backends[0]);
    bool any = !name || strcmp(name, "auto") == 0;
    int rc = -ENOENT;
    for (size_t i = 0; i < n; i++) {
        if (!any && strcmp(name, backends[i]->name) != 0)
            continue;
        rc = backends[i]->probe(err);
        if (rc == 0) {
            *out = backends[i];
            return 0;
        }
        if (!any)
            return rc;
    }
    if (any)
        return rc; /* the last probe's reason */
    return vcpud_err_set(err, -ENOENT,
                         "no backend named '%s' (available: kvm, auto)", name);
}
