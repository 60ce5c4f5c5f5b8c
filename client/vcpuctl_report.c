/* vcpuctl_report.c: the connection on first use, and errors and notes in
 * text or JSON. stdout carries only results; everything here but
 * vcpuctl_done() goes to stderr. */
#include <errno.h>
#include <grpc/status.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vcpuctl.h"
#include "vcpuctl_json.h"

/* gRPC's own spelling, which is what users search for; the client's
 * vcpud_client_status_name() has lower-case words. */
static const char *const status_names[] = {
    [GRPC_STATUS_OK] = "OK",
    [GRPC_STATUS_CANCELLED] = "CANCELLED",
    [GRPC_STATUS_UNKNOWN] = "UNKNOWN",
    [GRPC_STATUS_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
    [GRPC_STATUS_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
    [GRPC_STATUS_NOT_FOUND] = "NOT_FOUND",
    [GRPC_STATUS_ALREADY_EXISTS] = "ALREADY_EXISTS",
    [GRPC_STATUS_PERMISSION_DENIED] = "PERMISSION_DENIED",
    [GRPC_STATUS_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
    [GRPC_STATUS_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
    [GRPC_STATUS_ABORTED] = "ABORTED",
    [GRPC_STATUS_OUT_OF_RANGE] = "OUT_OF_RANGE",
    [GRPC_STATUS_UNIMPLEMENTED] = "UNIMPLEMENTED",
    [GRPC_STATUS_INTERNAL] = "INTERNAL",
    [GRPC_STATUS_UNAVAILABLE] = "UNAVAILABLE",
    [GRPC_STATUS_DATA_LOSS] = "DATA_LOSS",
    [GRPC_STATUS_UNAUTHENTICATED] = "UNAUTHENTICATED",
};

const char *vcpuctl_status_name(int code)
{
    if (code < 0 ||
        (size_t)code >= sizeof(status_names) / sizeof(*status_names))
        return "UNRECOGNISED_STATUS";
    return status_names[code];
}

int vcpuctl_connect(struct vcpuctl *ctl)
{
    if (ctl->client)
        return VCPUCTL_OK;
    struct vcpud_client_opts o = {.token = ctl->opt.token,
                                  .deadline_ms = ctl->opt.deadline_ms};
    struct vcpud_client_status st = {0};
    int rc = vcpud_client_connect(ctl->opt.server, &o, &ctl->client, &st);
    if (rc < 0) {
        ctl->client = NULL;
        return vcpuctl_failed(ctl, "cannot connect to %s: %s", ctl->opt.server,
                              st.msg);
    }
    return VCPUCTL_OK;
}

/* The common start of a JSON error line. */
static void json_error(struct json_writer *w, const struct vcpuctl *ctl,
                       const char *kind)
{
    json_begin(w, stderr);
    json_str(w, "error", kind);
    if (ctl->line)
        json_u32(w, "line", (uint32_t)ctl->line);
    if (ctl->cmd)
        json_str(w, "command", ctl->cmd->name);
}

static void text_prefix(const struct vcpuctl *ctl)
{
    fputs("vcpuctl: ", stderr);
    if (ctl->line)
        fprintf(stderr, "line %lu: ", ctl->line);
    if (ctl->cmd)
        fprintf(stderr, "%s: ", ctl->cmd->name);
}

/* One message of (kind): a JSON error object, or a line on stderr. */
static void vreport(struct vcpuctl *ctl, const char *kind, const char *fmt,
                    va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (ctl->opt.json) {
        struct json_writer w;
        json_error(&w, ctl, kind);
        json_str(&w, "message", msg);
        json_end(&w);
        return;
    }
    text_prefix(ctl);
    fprintf(stderr, "%s\n", msg);
}

int vcpuctl_usage(struct vcpuctl *ctl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(ctl, "usage", fmt, ap);
    va_end(ap);
    if (ctl->opt.json)
        return VCPUCTL_USAGE;
    if (ctl->cmd)
        fprintf(stderr, "usage: vcpuctl %s %s%s%s (see vcpuctl %s --help)\n",
                ctl->cmd->name, ctl->cmd->args, *ctl->cmd->opts ? " " : "",
                ctl->cmd->opts, ctl->cmd->name);
    else
        fputs("usage: vcpuctl [OPTIONS] SUBCOMMAND [ARGS] "
              "(see vcpuctl --help)\n",
              stderr);
    return VCPUCTL_USAGE;
}

int vcpuctl_rpc_failed(struct vcpuctl *ctl, const char *rpc, int rc,
                       const struct vcpud_client_status *st)
{
    const char *status = vcpuctl_status_name(st->code);
    const char *errname = rc < 0 ? strerrorname_np(-rc) : NULL;
    /* The usual first mistake; the status alone does not say where. */
    bool unavailable = st->code == GRPC_STATUS_UNAVAILABLE;
    if (ctl->opt.json) {
        struct json_writer w;
        json_error(&w, ctl, "rpc");
        json_str(&w, "rpc", rpc);
        json_str(&w, "status", status);
        json_u32(&w, "code", (uint32_t)st->code);
        if (errname)
            json_str(&w, "errno", errname);
        json_str(&w, "message", st->msg);
        if (unavailable)
            json_str(&w, "server", ctl->opt.server);
        json_end(&w);
        return VCPUCTL_FAILED;
    }
    text_prefix(ctl);
    fprintf(stderr, "%s: %s: %s", rpc, status, st->msg);
    if (errname)
        fprintf(stderr, " (%s)", errname);
    if (unavailable)
        fprintf(stderr, " (is vcpud listening on %s?)", ctl->opt.server);
    fputc('\n', stderr);
    return VCPUCTL_FAILED;
}

int vcpuctl_failed(struct vcpuctl *ctl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(ctl, "local", fmt, ap);
    va_end(ap);
    return VCPUCTL_FAILED;
}

void vcpuctl_note(struct vcpuctl *ctl, const char *key, const char *value,
                  const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (ctl->opt.json) {
        struct json_writer w;
        json_begin(&w, stderr);
        json_str(&w, "note", msg);
        if (key && value)
            json_str(&w, key, value);
        json_end(&w);
    } else {
        text_prefix(ctl);
        fprintf(stderr, "%s\n", msg);
    }
}

int vcpuctl_done(struct vcpuctl *ctl)
{
    if (ctl->opt.json) {
        struct json_writer w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", true);
        json_end(&w);
    }
    return VCPUCTL_OK;
}
