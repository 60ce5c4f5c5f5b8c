/* test_stream.c: the exit stream (Attach) – guests driven to the end with
 * registers on every exit, register access between runs, one driver at a
 * time, cancel, time limits, and a controller that dies mid-stream. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

static const char *self_path;

static int setup(void **state)
{
    return itest_setup(state, "tcp");
}

static void io_guest_with_registers_on_every_exit(void **state)
{
    (void)state;
    struct vcpud_client_status st = {0};
    uint32_t vm = guest_vm(cli, GUEST(io_in), VCPUD_MODE_REAL, false);
    struct vcpud_stream *s;
    const struct vcpud_stream_opts o = {.regs_with_exit = true,
                                        .sregs_with_exit = true};
    assert_ok(vcpud_client_attach(cli, vm, 0, &o, &s, &st), &st);
    const uint64_t answers[] = {0xab, 0xbeef, 0xfeedface};
    const uint64_t rips[] = {GUEST_LOAD, GUEST_LOAD + 4, GUEST_LOAD + 8};
    struct vcpud_client_run req = {0};
    struct vcpud_exit x;
    struct vcpud_regs r;
    struct vcpud_sregs sr;
    for (int i = 0; i < 3; i++) {
        assert_ok(vcpud_stream_run(s, &req, &x, &r, &sr, &st), &st);
        assert_int_equal(VCPUD_EXIT_IO_IN, x.kind);
        assert_int_equal(rips[i], r.rip); /* at the IN, waiting */
        assert_int_equal(0, sr.cs.base);
        req = (struct vcpud_client_run){.result = VCPUD_RESULT_IO,
                                        .io_values = &answers[i],
                                        .io_count = 1};
    }
    assert_ok(vcpud_stream_run(s, &req, &x, &r, NULL, &st), &st);
    assert_int_equal(VCPUD_EXIT_HLT, x.kind);
    assert_int_equal(0xab, r.rbx & 0xff);
    assert_int_equal(0xbeef, r.rcx & 0xffff);
    assert_int_equal(0xfeedface, r.rdx & 0xffffffff);
    assert_ok(vcpud_stream_close(s, &st), &st);
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
}

static void mmio_guest_over_the_stream(void **state)
{
    (void)state;
    struct vcpud_client_status st = {0};
    uint32_t vm = guest_vm(cli, GUEST(mmio), VCPUD_MODE_LONG, false);
    struct vcpud_stream *s;
    assert_ok(vcpud_client_attach(cli, vm, 0, NULL, &s, &st), &st);
    struct vcpud_exit x;
    for (int i = 0; i < 4; i++) {
        assert_ok(vcpud_stream_run(s, NULL, &x, NULL, NULL, &st), &st);
        assert_int_equal(VCPUD_EXIT_MMIO_WRITE, x.kind);
    }
    const uint64_t rd[] = {0xa1, 0xb2c3, 0xd4e5f607, 0x0123456789abcdefull};
    struct vcpud_client_run req = {0};
    for (int i = 0; i < 4; i++) {
        assert_ok(vcpud_stream_run(s, &req, &x, NULL, NULL, &st), &st);
        assert_int_equal(VCPUD_EXIT_MMIO_READ, x.kind);
        req = (struct vcpud_client_run){.result = VCPUD_RESULT_MMIO,
                                        .mmio_value = rd[i]};
    }
    assert_ok(vcpud_stream_run(s, &req, &x, NULL, NULL, &st), &st);
    assert_int_equal(VCPUD_EXIT_HLT, x.kind);
    struct vcpud_regs r;
    assert_ok(vcpud_stream_get_regs(s, &r, &st), &st);
    assert_int_equal(rd[3], r.r11);
    assert_ok(vcpud_stream_close(s, &st), &st);
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
}

/* Refusals between runs are replies: the stream carries on after them. */
static void register_access_between_runs(void **state)
{
    (void)state;
    struct vcpud_client_status st = {0};
    uint32_t vm = guest_vm(cli, GUEST(in_echo), VCPUD_MODE_REAL, false);
    struct vcpud_stream *s;
    assert_ok(vcpud_client_attach(cli, vm, 0, NULL, &s, &st), &st);
    struct vcpud_exit x;
    assert_ok(vcpud_stream_run(s, NULL, &x, NULL, NULL, &st), &st);
    assert_int_equal(VCPUD_EXIT_IO_IN, x.kind);
    struct vcpud_regs r;
    assert_ok(vcpud_stream_get_regs(s, &r, &st), &st);
    assert_status(ST_FAILED_PRECONDITION, vcpud_stream_set_regs(s, &r, &st),
                  &st, "supply the result first");
    assert_status(ST_FAILED_PRECONDITION,
                  vcpud_stream_run(s, NULL, &x, NULL, NULL, &st), &st,
                  "set_io_result");
    uint64_t wide = 0x1234;
    struct vcpud_client_run bad = {.result = VCPUD_RESULT_IO,
                                   .io_values = &wide,
                                   .io_count = 1};
    assert_status(ST_INVALID_ARGUMENT,
                  vcpud_stream_run(s, &bad, &x, NULL, NULL, &st), &st,
                  "does not fit");
    uint64_t v = 0x21;
    struct vcpud_client_run good = {.result = VCPUD_RESULT_IO,
                                    .io_values = &v,
                                    .io_count = 1};
    assert_ok(vcpud_stream_run(s, &good, &x, NULL, NULL, &st), &st);
    assert_int_equal(VCPUD_EXIT_IO_OUT, x.kind);
    assert_int_equal(0x21, vcpud_exit_io_value(&x, 0));
    /* Writes land: point RIP back at the IN and it runs again. */
    assert_ok(vcpud_stream_get_regs(s, &r, &st), &st);
    r.rip = GUEST_LOAD;
    assert_ok(vcpud_stream_set_regs(s, &r, &st), &st);
    struct vcpud_sregs sr;
    assert_ok(vcpud_stream_get_sregs(s, &sr, &st), &st);
    assert_ok(vcpud_stream_set_sregs(s, &sr, &st), &st);
    assert_ok(vcpud_stream_run(s, NULL, &x, NULL, NULL, &st), &st);
    assert_int_equal(VCPUD_EXIT_IO_IN, x.kind);
    assert_int_equal(0x20, x.u.io.port);
    assert_ok(vcpud_stream_close(s, &st), &st);
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
}

static void one_driver_at_a_time(void **state)
{
    (void)state;
    struct vcpud_client_status st = {0};
    uint32_t vm = guest_vm(cli, GUEST(io_out), VCPUD_MODE_REAL, false);
    struct vcpud_stream *s, *s2;
    assert_ok(vcpud_client_attach(cli, vm, 0, NULL, &s, &st), &st);
    struct vcpud_exit x;
    assert_status(ST_FAILED_PRECONDITION,
                  vcpud_client_run(cli, vm, 0, NULL, &x, &st), &st,
                  "Attach stream");
    assert_status(ST_FAILED_PRECONDITION,
                  vcpud_client_attach(cli, vm, 0, NULL, &s2, &st), &st,
                  "already has a driver");
    assert_status(ST_NOT_FOUND,
                  vcpud_client_attach(cli, vm, 1, NULL, &s2, &st), &st,
                  "no vCPU 1");
    assert_ok(vcpud_stream_run(s, NULL, &x, NULL, NULL, &st), &st);
    assert_int_equal(0x10, x.u.io.port);
    assert_ok(vcpud_stream_close(s, &st), &st);
    /* Closed: unary Run drives it on from where the stream left it. */
    x = run_expect(cli, vm, NULL, VCPUD_EXIT_IO_OUT);
    assert_int_equal(0x12, x.u.io.port);
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
}

struct stream_runner {
    struct vcpud_stream *s;
    pthread_t thread;
    int rc;
    struct vcpud_exit exit;
    struct vcpud_client_status st;
    struct vcpud_client_run req;
};

static void *stream_run_main(void *arg)
{
    struct stream_runner *r = arg;
    r->rc = vcpud_stream_run(r->s, &r->req, &r->exit, NULL, NULL, &r->st);
    return NULL;
}

/* A VM spinning in a run command of stream r->s, sent from r->thread. */
static uint32_t spin_on_stream(struct stream_runner *r)
{
    struct vcpud_client_status st = {0};
    uint32_t vm = guest_vm(cli, GUEST(spin), VCPUD_MODE_REAL, false);
    assert_ok(vcpud_client_attach(cli, vm, 0, NULL, &r->s, &st), &st);
    pthread_create(&r->thread, NULL, stream_run_main, r);
    wait_running(cli, vm);
    return vm;
}

static void cancel_and_time_limit(void **state)
{
    (void)state;
    struct vcpud_client_status st = {0};
    struct stream_runner r = {0};
    uint32_t vm = spin_on_stream(&r);
    assert_ok(vcpud_client_cancel(cli, vm, 0, &st), &st);
    pthread_join(r.thread, NULL);
    assert_ok(r.rc, &r.st);
    assert_int_equal(VCPUD_EXIT_CANCELED, r.exit.kind);
    assert_int_equal(VCPUD_CANCEL_REQUESTED, r.exit.u.canceled.reason);
    const struct vcpud_client_run lim = {.timeout_ms = 100};
    struct vcpud_exit x;
    assert_ok(vcpud_stream_run(r.s, &lim, &x, NULL, NULL, &st), &st);
    assert_int_equal(VCPUD_EXIT_CANCELED, x.kind);
    assert_int_equal(VCPUD_CANCEL_TIMEOUT, x.u.canceled.reason);
    assert_ok(vcpud_stream_close(r.s, &st), &st);
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
}

/* The server ending a stream mid-run: the VM is destroyed under it. The
 * run answers NOT_FOUND with the core's errno; the stream is over. */
static void vm_destroyed_mid_run(void **state)
{
    (void)state;
    struct vcpud_client_status st = {0};
    struct stream_runner r = {0};
    uint32_t vm = spin_on_stream(&r);
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
    pthread_join(r.thread, NULL);
    assert_true(r.rc < 0);
    assert_int_equal(ST_NOT_FOUND, r.st.code);
    assert_non_null(strstr(r.st.msg, "destroyed"));
    struct vcpud_exit x;
    assert_true(vcpud_stream_run(r.s, NULL, &x, NULL, NULL, &st) < 0);
    vcpud_stream_close(r.s, &st);
}

/* The child attaches and runs a guest that waits for a flag; it is killed
 * mid-run, and a new controller takes the vCPU over. */
static int child_attach_run(const char *addr, uint32_t vm)
{
    struct vcpud_client *c;
    struct vcpud_client_status st = {0};
    if (vcpud_client_connect(addr, NULL, &c, &st) < 0)
        return 3;
    struct vcpud_stream *s;
    if (vcpud_client_attach(c, vm, 0, NULL, &s, &st) < 0)
        return 4;
    struct vcpud_exit x;
    vcpud_stream_run(s, NULL, &x, NULL, NULL, &st);
    return 5;
}

static void controller_killed_mid_stream(void **state)
{
    (void)state;
    struct vcpud_client_status st = {0};
    uint32_t vm = guest_vm(cli, GUEST(flag_wait), VCPUD_MODE_REAL, false);
    char vmtext[16];
    snprintf(vmtext, sizeof(vmtext), "%u", vm);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execl(self_path, self_path, "--child-attach", srv.addr, vmtext,
              (char *)NULL);
        _exit(127);
    }
    wait_running(cli, vm);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    /* Wait until the server has let go of the dead stream. */
    struct vcpud_stream *s = NULL;
    int rc = -1;
    for (int i = 0; i < 1500; i++) {
        rc = vcpud_client_attach(cli, vm, 0, NULL, &s, &st);
        if (rc == 0 || st.code != ST_FAILED_PRECONDITION)
            break;
        sleep_ms(10);
    }
    assert_ok(rc, &st);
    const uint8_t go = 0x5a;
    assert_ok(vcpud_client_write_memory(cli, vm, 0x3000, &go, 1, &st), &st);
    struct vcpud_exit x;
    assert_ok(vcpud_stream_run(s, NULL, &x, NULL, NULL, &st), &st);
    assert_int_equal(VCPUD_EXIT_IO_OUT, x.kind);
    assert_int_equal(0x5a, vcpud_exit_io_value(&x, 0));
    assert_ok(vcpud_stream_close(s, &st), &st);
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
}

/* Posted writes over unary Run: each batch arrives with the answered exit
 * that follows it, in guest order. */
static void posted_writes_with_answered_exits(void **state)
{
    (void)state;
    struct vcpud_client_status st = {0};
    uint32_t vm = guest_vm(cli, GUEST(posted_mix), VCPUD_MODE_LONG, false);
    assert_ok(vcpud_client_add_posted(cli, vm, false, 0xd0000000, 0x1000,
                                      &st),
              &st);
    assert_status(ST_ALREADY_EXISTS,
                  vcpud_client_add_posted(cli, vm, false, 0xd0000800, 16,
                                          &st),
                  &st, "overlaps");
    assert_status(ST_INVALID_ARGUMENT,
                  vcpud_client_add_posted(cli, vm, false, 0x1000, 16, &st),
                  &st, "RAM");
    static struct vcpud_posted_write buf[VCPUD_POSTED_MAX];
    const uint64_t zero = 0;
    struct vcpud_client_run req = {.posted = buf,
                                   .posted_cap = VCPUD_POSTED_MAX};
    uint32_t next = 0;
    for (int batch = 0; batch < 5; batch++) {
        struct vcpud_exit x = run_expect(cli, vm, &req, VCPUD_EXIT_IO_IN);
        assert_int_equal(10, x.nposted);
        for (uint32_t i = 0; i < x.nposted; i++, next++) {
            assert_false(x.posted[i].pio);
            assert_int_equal(0xd0000000, x.posted[i].addr);
            assert_int_equal(next, x.posted[i].data);
        }
        req.result = VCPUD_RESULT_IO;
        req.io_values = &zero;
        req.io_count = 1;
    }
    struct vcpud_exit x = run_expect(cli, vm, &req, VCPUD_EXIT_IO_OUT);
    assert_int_equal(0, x.nposted);
    assert_int_equal(50, next);
    assert_ok(vcpud_client_remove_posted(cli, vm, false, 0xd0000000, 0x1000,
                                         &st),
              &st);
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
}

/* Over the stream: 1200 posted writes, MMIO and port interleaved, none
 * lost or reordered across POSTED exits. */
static void posted_writes_over_the_stream(void **state)
{
    (void)state;
    struct vcpud_client_status st = {0};
    uint32_t vm = guest_vm(cli, GUEST(posted), VCPUD_MODE_LONG, false);
    assert_ok(vcpud_client_add_posted(cli, vm, false, 0xd0000000, 0x1000,
                                      &st),
              &st);
    assert_ok(vcpud_client_add_posted(cli, vm, true, 0x80, 1, &st), &st);
    struct vcpud_stream *s;
    assert_ok(vcpud_client_attach(cli, vm, 0, NULL, &s, &st), &st);
    uint32_t seen = 0;
    struct vcpud_exit x;
    do {
        assert_ok(vcpud_stream_run(s, NULL, &x, NULL, NULL, &st), &st);
        for (uint32_t i = 0; i < x.nposted; i++, seen++) {
            assert_int_equal(seen % 2 == 1, x.posted[i].pio);
            assert_int_equal(seen % 2 ? (seen / 2) & 0xff : seen / 2,
                             x.posted[i].data);
        }
    } while (x.kind == VCPUD_EXIT_POSTED);
    assert_int_equal(VCPUD_EXIT_IO_OUT, x.kind);
    assert_int_equal(1200, seen);
    assert_ok(vcpud_stream_close(s, &st), &st);
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
}

int main(int argc, char **argv)
{
    self_path = argv[0];
    if (argc == 4 && strcmp(argv[1], "--child-attach") == 0)
        return child_attach_run(argv[2], (uint32_t)strtoul(argv[3], NULL, 10));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(io_guest_with_registers_on_every_exit,
                                        setup, itest_teardown),
        cmocka_unit_test_setup_teardown(mmio_guest_over_the_stream, setup,
                                        itest_teardown),
        cmocka_unit_test_setup_teardown(register_access_between_runs, setup,
                                        itest_teardown),
        cmocka_unit_test_setup_teardown(one_driver_at_a_time, setup,
                                        itest_teardown),
        cmocka_unit_test_setup_teardown(cancel_and_time_limit, setup,
                                        itest_teardown),
        cmocka_unit_test_setup_teardown(vm_destroyed_mid_run, setup,
                                        itest_teardown),
        cmocka_unit_test_setup_teardown(controller_killed_mid_stream, setup,
                                        itest_teardown),
        cmocka_unit_test_setup_teardown(posted_writes_with_answered_exits,
                                        setup, itest_teardown),
        cmocka_unit_test_setup_teardown(posted_writes_over_the_stream, setup,
                                        itest_teardown),
    };
    return itest_main(argc, argv, "integration-stream", tests,
                      sizeof(tests) / sizeof(tests[0]));
}
