/* error.h: the one error convention of vcpud: 0 or a negative errno, plus a
 * message that tells the user what to change. */
#ifndef VCPUD_ERROR_H
#define VCPUD_ERROR_H

#include <stddef.h>

/*
 * Every fallible core call returns 0 or a negative errno and, when the caller
 * passes a non-NULL struct vcpud_err, fills it with the same code and a
 * message naming the offending value. The errno chosen decides the class
 * below; the class decides the gRPC status, so pick it with care:
 *
 *   -EINVAL, -EBADMSG, -ERANGE, -E2BIG    bad argument / corrupt input
 *   -ENOENT                               no such VM, vCPU, region
 *   -EEXIST                               id or slot already in use
 *   -EBUSY, -EPROTO, -ENOTSUP             wrong state for the request
 *   -ENOSPC, -ENOMEM, -EMFILE             a limit was reached
 *   -ENODEV, -EACCES                      backend missing or not permitted
 *   anything else                         internal failure
 */
#define VCPUD_ERR_MSG_MAX 256

struct vcpud_err {
    int code;                    /* 0 or negative errno */
    char msg[VCPUD_ERR_MSG_MAX]; /* human-readable, never ends in '\n' */
};

/* Error classes, in the order the server maps them to gRPC status codes. */
#define VCPUD_ERR_CLASSES(X)                                                   \
    X(OK, "ok")                                                                \
    X(INVALID, "invalid argument")                                             \
    X(NOT_FOUND, "not found")                                                  \
    X(EXISTS, "already exists")                                                \
    X(PRECONDITION, "failed precondition")                                     \
    X(EXHAUSTED, "resource exhausted")                                         \
    X(UNAVAILABLE, "unavailable")                                              \
    X(INTERNAL, "internal")

enum vcpud_err_class {
#define VCPUD__CLASS_ENUM(name, text) VCPUD_ERRCLASS_##name,
    VCPUD_ERR_CLASSES(VCPUD__CLASS_ENUM)
#undef VCPUD__CLASS_ENUM
};

/* Fill (err) with (code) and a printf-style message; return (code) so that
 * callers can write `return vcpud_err_set(err, -EINVAL, "...")`. (err) may be
 * NULL. A code of 0 clears the message. */
int vcpud_err_set(struct vcpud_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Same, appending ": strerror(-code)" – for failures of system calls. */
int vcpud_err_sys(struct vcpud_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reset (err) to success. */
void vcpud_err_clear(struct vcpud_err *err);

/* The class of a negative errno (see the table above). */
enum vcpud_err_class vcpud_err_class(int code);

/* Short name of a class ("invalid argument"). Static storage. */
const char *vcpud_err_class_name(enum vcpud_err_class cls);

#endif
