/* error.c: the error convention – messages, classes and names. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vcpud/error.h"

static int vset(struct vcpud_err *err, int code, const char *suffix,
                const char *fmt, va_list ap)
{
    if (!err)
        return code;
    err->code = code;
    int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    if (suffix && n >= 0 && (size_t)n < sizeof(err->msg))
        snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %s", suffix);
    return code;
}

int vcpud_err_set(struct vcpud_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, NULL, fmt, ap);
    va_end(ap);
    return code;
}

int vcpud_err_sys(struct vcpud_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, strerror(-code), fmt, ap);
    va_end(ap);
    return code;
}

void vcpud_err_clear(struct vcpud_err *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

enum vcpud_err_class vcpud_err_class(int code)
{
    switch (-code) {
    case 0:
        return VCPUD_ERRCLASS_OK;
    case EINVAL:
    case EBADMSG:
    case ERANGE:
    case E2BIG:
        return VCPUD_ERRCLASS_INVALID;
    case ENOENT:
        return VCPUD_ERRCLASS_NOT_FOUND;
    case EEXIST:
        return VCPUD_ERRCLASS_EXISTS;
    case EBUSY:
    case EPROTO:
    case ENOTSUP:
        return VCPUD_ERRCLASS_PRECONDITION;
    case ENOSPC:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
        return VCPUD_ERRCLASS_EXHAUSTED;
    case ENODEV:
    case EACCES:
    case ESHUTDOWN:
        return VCPUD_ERRCLASS_UNAVAILABLE;
    default:
        return VCPUD_ERRCLASS_INTERNAL;
    }
}

const char *vcpud_err_class_name(enum vcpud_err_class cls)
{
    static const char *const names[] = {
#define VCPUD__CLASS_NAME(name, text) [VCPUD_ERRCLASS_##name] = text,
        VCPUD_ERR_CLASSES(VCPUD__CLASS_NAME)
#undef VCPUD__CLASS_NAME
    };
    if ((unsigned)cls >= sizeof(names) / sizeof(names[0]))
        return "invalid";
    return names[cls];
}
