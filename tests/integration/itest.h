/* itest.h: a real vcpud process and C clients talking to it, for the
 * integration tests. */
#ifndef VCPUD_ITEST_H
#define VCPUD_ITEST_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>

#include "guests.h"
#include "vcpud_client.h"

#define RAM_SIZE 0x200000u
#define TABLES 0x100000u
#define STACK 0x8000u

struct server {
    pid_t pid;
    char addr[160]; /* what a client connects to */
    char log[64];   /* the server's stderr */
};

/*
 * Start vcpud listening on (transport): "unix", "tcp" (127.0.0.1) or
 * "tcp6" ([::1]), with (extra) arguments (NULL-terminated, may be NULL),
 * and wait until it listens. Fails the test if it does not.
 */
void server_start(struct server *s, const char *transport,
                  const char *const *extra);

/* The port of the server's --http endpoint, as its log names it; -1 when
 * the log does not within 2 s. */
int server_http_port(const struct server *s);

/* Send (sig) and return the exit status (or 128 + signal), waiting up to
 * 20 s; prints the server's log when it is not 0. */
int server_stop(struct server *s, int sig);

/* The server and client of tests that share one per test case. */
extern struct server srv;
extern struct vcpud_client *cli;

/* cmocka fixtures for them: start a server on (transport) and connect;
 * stop both, insisting on a clean exit. */
int itest_setup(void **state, const char *transport);
int itest_teardown(void **state);

/* A client of (s), with (token) or none. */
struct vcpud_client *client_of(const struct server *s, const char *token);

/* A VM with RAM, (g) at 0x1000 and vCPU 0 in (mode); returns its id. */
uint32_t guest_vm(struct vcpud_client *c, struct guest g, enum vcpud_mode mode,
                  bool irqchip);

/* Run vCPU 0 of (vm) with (req) and insist on an exit of (kind). */
struct vcpud_exit run_expect(struct vcpud_client *c, uint32_t vm,
                             const struct vcpud_client_run *req,
                             enum vcpud_exit_kind kind);

void sleep_ms(long ms);

/* A Run on another thread, for tests that act on a running vCPU. */
struct bg_run {
    struct vcpud_client *c;
    uint32_t vm;
    pthread_t thread;
    int rc;
    struct vcpud_exit exit;
    struct vcpud_client_status st;
};

/* Start Run on vCPU 0 of (vm) and return once it is inside the guest. */
void bg_run_start(struct bg_run *r, struct vcpud_client *c, uint32_t vm);
/* Wait for it to come back; r->rc, r->exit and r->st say how. */
void bg_run_join(struct bg_run *r);

/* Wait until a Run is inside vCPU 0 of (vm) (its state calls say busy). */
void wait_running(struct vcpud_client *c, uint32_t vm);


/* Assert a call returned OK, printing the status otherwise. */
#define assert_ok(call, st)                                                    \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ != 0)                                                          \
            fail_msg("%s = %d: status %d: %s", #call, rc_, (st)->code,         \
                     (st)->msg);                                               \
    } while (0)

/* Assert a call failed with gRPC status (code) and a message naming
 * (needle). */
#define assert_status(want, call, st, needle)                                  \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ == 0 || (st)->code != (want))                                  \
            fail_msg("%s = %d: status %d (%s), want status %d", #call, rc_,    \
                     (st)->code, (st)->msg, (want));                           \
        if (!strstr((st)->msg, needle))                                        \
            fail_msg("message '%s' lacks '%s'", (st)->msg, needle);            \
    } while (0)

/* gRPC status codes, without pulling in gRPC's headers. */
enum {
    ST_OK = 0,
    ST_CANCELLED = 1,
    ST_INVALID_ARGUMENT = 3,
    ST_DEADLINE_EXCEEDED = 4,
    ST_NOT_FOUND = 5,
    ST_ALREADY_EXISTS = 6,
    ST_RESOURCE_EXHAUSTED = 8,
    ST_FAILED_PRECONDITION = 9,
    ST_INTERNAL = 13,
    ST_UNAVAILABLE = 14,
    ST_UNAUTHENTICATED = 16,
};

/* Run every test whose name matches argv[1] (all without one); an unknown
 * name fails. */
int itest_main(int argc, char **argv, const char *group,
               const struct CMUnitTest *tests, size_t n);

#define ITEST_MAIN(group, ...)                                                 \
    int main(int argc, char **argv)                                            \
    {                                                                          \
        const struct CMUnitTest tests[] = {__VA_ARGS__};                       \
        return itest_main(argc, argv, group, tests,                            \
                          sizeof(tests) / sizeof(tests[0]));                   \
    }

#endif
