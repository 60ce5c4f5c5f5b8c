/* client_status.c: from a gRPC status to the core's errno and to words. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

#define ERRNO_TRAILER "vcpud-errno"

/* Lower-case like the core's error class names (vcpud_err_class_name), which
 * are the same words for the codes the server produces. */
static const char *const status_names[] = {
    [GRPC_STATUS_OK] = "ok",
    [GRPC_STATUS_CANCELLED] = "cancelled",
    [GRPC_STATUS_UNKNOWN] = "unknown",
    [GRPC_STATUS_INVALID_ARGUMENT] = "invalid argument",
    [GRPC_STATUS_DEADLINE_EXCEEDED] = "deadline exceeded",
    [GRPC_STATUS_NOT_FOUND] = "not found",
    [GRPC_STATUS_ALREADY_EXISTS] = "already exists",
    [GRPC_STATUS_PERMISSION_DENIED] = "permission denied",
    [GRPC_STATUS_RESOURCE_EXHAUSTED] = "resource exhausted",
    [GRPC_STATUS_FAILED_PRECONDITION] = "failed precondition",
    [GRPC_STATUS_ABORTED] = "aborted",
    [GRPC_STATUS_OUT_OF_RANGE] = "out of range",
    [GRPC_STATUS_UNIMPLEMENTED] = "unimplemented",
    [GRPC_STATUS_INTERNAL] = "internal",
    [GRPC_STATUS_UNAVAILABLE] = "unavailable",
    [GRPC_STATUS_DATA_LOSS] = "data loss",
    [GRPC_STATUS_UNAUTHENTICATED] = "unauthenticated",
};

const char *vcpud_client_status_name(int code)
{
    if (code < 0 ||
        (size_t)code >= sizeof(status_names) / sizeof(*status_names))
        return "unrecognised status";
    return status_names[code];
}

/* For errors the server's core never saw, so carry no trailer. */
static int status_errno(grpc_status_code code)
{
    switch (code) {
    case GRPC_STATUS_OK:
        return 0;
    case GRPC_STATUS_INVALID_ARGUMENT:
        return -EINVAL;
    case GRPC_STATUS_NOT_FOUND:
        return -ENOENT;
    case GRPC_STATUS_ALREADY_EXISTS:
        return -EEXIST;
    case GRPC_STATUS_FAILED_PRECONDITION:
        return -EBUSY;
    case GRPC_STATUS_RESOURCE_EXHAUSTED:
        return -ENOSPC;
    case GRPC_STATUS_UNAVAILABLE:
        return -ECONNREFUSED;
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        return -ETIMEDOUT;
    case GRPC_STATUS_UNAUTHENTICATED:
        return -EACCES;
    case GRPC_STATUS_CANCELLED:
        return -ECANCELED;
    case GRPC_STATUS_PERMISSION_DENIED:
        return -EPERM;
    case GRPC_STATUS_UNIMPLEMENTED:
        return -ENOSYS;
    default:
        return -EIO;
    }
}

/* The trailer's value if it is a plausible negative errno, else 0: a
 * garbled trailer must not turn into a wrong but believable code. */
static int trailer_errno(const grpc_metadata_array *md)
{
    for (size_t i = 0; md && i < md->count; i++) {
        if (grpc_slice_str_cmp(md->metadata[i].key, ERRNO_TRAILER) != 0)
            continue;
        const grpc_slice v = md->metadata[i].value;
        char text[16];
        size_t len = GRPC_SLICE_LENGTH(v);
        if (len == 0 || len >= sizeof(text))
            return 0;
        memcpy(text, GRPC_SLICE_START_PTR(v), len);
        text[len] = '\0';
        char *end;
        errno = 0;
        long n = strtol(text, &end, 10);
        if (errno || *end || n >= 0 || n < -4095)
            return 0;
        return (int)n;
    }
    return 0;
}

int vcpud__status(struct vcpud_client_status *st, grpc_status_code code,
                  grpc_slice details, const grpc_metadata_array *trailers)
{
    int rc = status_errno(code);
    if (rc < 0) {
        int core = trailer_errno(trailers);
        if (core < 0)
            rc = core;
    }
    if (!st)
        return rc;
    st->code = (int)code;
    size_t len = GRPC_SLICE_LENGTH(details);
    if (len >= sizeof(st->msg))
        len = sizeof(st->msg) - 1;
    memcpy(st->msg, GRPC_SLICE_START_PTR(details), len);
    st->msg[len] = '\0';
    /* gRPC may fail a call with no text at all; say at least what kind. */
    if (rc < 0 && len == 0)
        snprintf(st->msg, sizeof(st->msg), "%s",
                 vcpud_client_status_name(code));
    return rc;
}

int vcpud__fail(struct vcpud_client_status *st, int grpc_code, int rc,
                const char *fmt, ...)
{
    if (!st)
        return rc;
    st->code = grpc_code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->msg, sizeof(st->msg), fmt, ap);
    va_end(ap);
    return rc;
}

int vcpud__ok(struct vcpud_client_status *st)
{
    if (st) {
        st->code = GRPC_STATUS_OK;
        st->msg[0] = '\0';
    }
    return 0;
}
