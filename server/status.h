/* status.h: the one mapping from core errors to gRPC status codes. */
#ifndef VCPUD_SERVER_STATUS_H
#define VCPUD_SERVER_STATUS_H

#include <grpc/grpc.h>

#include "rpc.h"
#include "vcpud/error.h"

/* The status for a core error code (negative errno), via its class:
 *   INVALID      -> INVALID_ARGUMENT
 *   NOT_FOUND    -> NOT_FOUND
 *   EXISTS       -> ALREADY_EXISTS
 *   PRECONDITION -> FAILED_PRECONDITION
 *   EXHAUSTED    -> RESOURCE_EXHAUSTED
 *   UNAVAILABLE  -> UNAVAILABLE
 *   INTERNAL     -> INTERNAL */
grpc_status_code status_from_errno(int code);

/* Finish (call) with the status for (err), its message and its errno. */
void status_fail(struct rpc_call *call, const struct vcpud_err *err);

/* Finish (call) with (code) and a printf-style message. (core_errno) goes
 * into the vcpud-errno trailer when nonzero. */
void status_failf(struct rpc_call *call, grpc_status_code code,
                  int core_errno, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
