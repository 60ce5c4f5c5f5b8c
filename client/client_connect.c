/* client_connect.c: the channel to vcpud, its arguments and its token. */
#include <errno.h>
#include <grpc/grpc_security.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "vcpud/snapshot.h"

#define DEFAULT_DEADLINE_MS 30000u

/* Pings every 2 s, given up after 2 s more: a vanished or frozen server
 * fails the calls waiting on it within ~4 s instead of at their deadline
 * (which for a Run may be a day away). Idle too, so that the connection is
 * known good before a call needs it; the poll thread (client_poll.c) is
 * what gets the acks read in time between calls. */
#define KEEPALIVE_MS 2000
/* vcpud is usually local: retry a refused connection about every second
 * rather than backing off to gRPC's two minutes, during which every call
 * fails at once with UNAVAILABLE. */
#define RECONNECT_BACKOFF_MAX_MS 1000
/* The largest reply is a snapshot: 1 MiB of state plus a few bytes. */
#define RECV_MESSAGE_MAX (4 << 20)
_Static_assert(RECV_MESSAGE_MAX >= VCPUD_SNAP_MAX_SIZE + 4096,
               "a Snapshot response must fit the receive limit");

const char *const vcpud__method_paths[VCPUD__M_COUNT] = {
#define VCPUD__METHOD_PATH(name, rpc) [VCPUD__M_##name] = VCPUD__SERVICE rpc,
    VCPUD__METHODS(VCPUD__METHOD_PATH)
#undef VCPUD__METHOD_PATH
};

/* gRPC refuses a whole call over one bad metadata byte; say so here, once,
 * rather than as GRPC_CALL_ERROR_INVALID_METADATA on every call. */
static bool token_ok(const char *t)
{
    if (!*t)
        return false;
    for (; *t; t++)
        if (*t < 0x21 || *t > 0x7e)
            return false;
    return true;
}

static int set_token(struct vcpud_client *c, const char *token,
                     struct vcpud_client_status *st)
{
    if (!token_ok(token))
        return vcpud__bad_arg(st, "the token must be printable ASCII without "
                                  "spaces, and not empty (NULL for none)");
    size_t len = strlen("Bearer ") + strlen(token) + 1;
    char *v = malloc(len);
    if (!v)
        return vcpud__fail(st, GRPC_STATUS_RESOURCE_EXHAUSTED, -ENOMEM,
                           "out of memory for the token");
    snprintf(v, len, "Bearer %s", token);
    c->auth = grpc_slice_from_copied_string(v);
    c->has_auth = true;
    free(v);
    return 0;
}

int vcpud_client_connect(const char *addr, const struct vcpud_client_opts *opts,
                         struct vcpud_client **out,
                         struct vcpud_client_status *st)
{
    if (!addr || !*addr || !out)
        return vcpud__bad_arg(st, "connect: an address and an output "
                                  "pointer are required");
    struct vcpud_client *c = calloc(1, sizeof(*c));
    if (!c)
        return vcpud__fail(st, GRPC_STATUS_RESOURCE_EXHAUSTED, -ENOMEM,
                           "out of memory for a client");
    /* From here on vcpud_client_close() undoes whatever was done. */
    grpc_init();
    c->deadline_ms =
        opts && opts->deadline_ms ? opts->deadline_ms : DEFAULT_DEADLINE_MS;
    int rc;
    if (opts && opts->token && (rc = set_token(c, opts->token, st)) < 0) {
        vcpud_client_close(c);
        return rc;
    }

    grpc_arg args[] = {
        {GRPC_ARG_INTEGER,
         GRPC_ARG_KEEPALIVE_TIME_MS,
         {.integer = KEEPALIVE_MS}},
        {GRPC_ARG_INTEGER,
         GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
         {.integer = KEEPALIVE_MS}},
        {GRPC_ARG_INTEGER,
         GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
         {.integer = 1}},
        {GRPC_ARG_INTEGER,
         GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA,
         {.integer = 0}},
        {GRPC_ARG_INTEGER,
         GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
         {.integer = RECONNECT_BACKOFF_MAX_MS}},
        {GRPC_ARG_INTEGER,
         GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         {.integer = RECV_MESSAGE_MAX}},
    };
    grpc_channel_args cargs = {sizeof(args) / sizeof(args[0]), args};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    c->channel = grpc_channel_create(addr, creds, &cargs);
    grpc_channel_credentials_release(creds);
    if (!c->channel) {
        vcpud_client_close(c);
        return vcpud__fail(st, GRPC_STATUS_INTERNAL, -EIO,
                           "cannot create a channel to %s", addr);
    }
    /* Registered once, a method costs no path interning per call. */
    for (size_t i = 0; i < VCPUD__M_COUNT; i++)
        c->methods[i] = grpc_channel_register_call(
            c->channel, vcpud__method_paths[i], NULL, NULL);
    if ((rc = vcpud__poller_start(c, st)) < 0) {
        vcpud_client_close(c);
        return rc;
    }
    *out = c;
    return vcpud__ok(st);
}

void vcpud_client_close(struct vcpud_client *c)
{
    if (!c)
        return;
    vcpud__poller_stop(c);
    if (c->channel)
        grpc_channel_destroy(c->channel);
    if (c->has_auth)
        grpc_slice_unref(c->auth);
    free(c);
    grpc_shutdown();
}
