/* status.c: core errors as gRPC statuses. */
#include <stdarg.h>
#include <stdio.h>

#include "status.h"

grpc_status_code status_from_errno(int code)
{
    static const grpc_status_code by_class[] = {
        [VCPUD_ERRCLASS_OK] = GRPC_STATUS_OK,
        [VCPUD_ERRCLASS_INVALID] = GRPC_STATUS_INVALID_ARGUMENT,
        [VCPUD_ERRCLASS_NOT_FOUND] = GRPC_STATUS_NOT_FOUND,
        [VCPUD_ERRCLASS_EXISTS] = GRPC_STATUS_ALREADY_EXISTS,
        [VCPUD_ERRCLASS_PRECONDITION] = GRPC_STATUS_FAILED_PRECONDITION,
        [VCPUD_ERRCLASS_EXHAUSTED] = GRPC_STATUS_RESOURCE_EXHAUSTED,
        [VCPUD_ERRCLASS_UNAVAILABLE] = GRPC_STATUS_UNAVAILABLE,
        [VCPUD_ERRCLASS_INTERNAL] = GRPC_STATUS_INTERNAL,
    };
    return by_class[vcpud_err_class(code)];
}

void status_fail(struct rpc_call *call, const struct vcpud_err *err)
{
    rpc_call_finish(call, status_from_errno(err->code), err->msg, err->code);
}

void status_failf(struct rpc_call *call, grpc_status_code code,
                  int core_errno, const char *fmt, ...)
{
    char msg[VCPUD_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rpc_call_finish(call, code, msg, core_errno);
}
