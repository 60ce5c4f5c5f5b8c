/* test_guest.c: guests run to completion with every exit handled by a
 * remote controller, snapshots that move between VMs, and control of a
 * running guest from outside. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "itest.h"

static int setup(void **state)
{
    return itest_setup(state, "unix");
}

static void io_guest_answered_in_run(void **state)
{
    (void)state;
    uint32_t vm = guest_vm(cli, GUEST(io_in), VCPUD_MODE_REAL, false);
    const uint64_t answers[] = {0xab, 0xbeef, 0xfeedface};
    const uint16_t ports[] = {0x20, 0x22, 0x24};
    struct vcpud_client_run req = {0};
    for (int i = 0; i < 3; i++) {
        struct vcpud_exit x = run_expect(cli, vm, &req, VCPUD_EXIT_IO_IN);
        assert_int_equal(ports[i], x.u.io.port);
        req = (struct vcpud_client_run){.result = VCPUD_RESULT_IO,
                                        .io_values = &answers[i],
                                        .io_count = 1};
    }
    run_expect(cli, vm, &req, VCPUD_EXIT_HLT);
    struct vcpud_client_status st = {0};
    struct vcpud_regs r;
    assert_ok(vcpud_client_get_regs(cli, vm, 0, &r, &st), &st);
    assert_int_equal(0xab, r.rbx & 0xff);
    assert_int_equal(0xbeef, r.rcx & 0xffff);
    assert_int_equal(0xfeedface, r.rdx & 0xffffffff);
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
}

static void string_io_remote(void **state)
{
    (void)state;
    uint32_t vm = guest_vm(cli, GUEST(string_io), VCPUD_MODE_REAL, false);
    char out[8] = {0};
    size_t got = 0;
    while (got < 5) {
        struct vcpud_exit x = run_expect(cli, vm, NULL, VCPUD_EXIT_IO_OUT);
        assert_int_equal(0x30, x.u.io.port);
        memcpy(out + got, x.u.io.data, x.u.io.count);
        got += x.u.io.count;
    }
    assert_string_equal("hello", out);
    uint64_t in[4] = {1, 2, 3, 4};
    size_t given = 0;
    struct vcpud_client_status st = {0};
    struct vcpud_exit x = run_expect(cli, vm, NULL, VCPUD_EXIT_IO_IN);
    while (x.kind == VCPUD_EXIT_IO_IN) {
        struct vcpud_client_run req = {.result = VCPUD_RESULT_IO,
                                       .io_values = &in[given],
                                       .io_count = x.u.io.count};
        given += x.u.io.count;
        assert_ok(vcpud_client_run(cli, vm, 0, &req, &x, &st), &st);
    }
    assert_int_equal(VCPUD_EXIT_HLT, x.kind);
    uint8_t mem[4];
    assert_ok(vcpud_client_read_memory(cli, vm, 0x3000, mem, 4, &st), &st);
    assert_memory_equal(((uint8_t[]){1, 2, 3, 4}), mem, 4);
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
}

static void mmio_guest_answered_in_run(void **state)
{
    (void)state;
    uint32_t vm = guest_vm(cli, GUEST(mmio), VCPUD_MODE_LONG, false);
    const uint64_t written[] = {0x11, 0x2233, 0x44556677,
                                0x8899aabbccddeeffull};
    for (int i = 0; i < 4; i++) {
        struct vcpud_exit x = run_expect(cli, vm, NULL,
                                         VCPUD_EXIT_MMIO_WRITE);
        assert_int_equal(written[i], x.u.mmio.data);
    }
    const uint64_t rd[] = {0xa1, 0xb2c3, 0xd4e5f607, 0x0123456789abcdefull};
    struct vcpud_client_run req = {0};
    for (int i = 0; i < 4; i++) {
        struct vcpud_exit x = run_expect(cli, vm, &req, VCPUD_EXIT_MMIO_READ);
        assert_int_equal(1u << i, x.u.mmio.size);
        req = (struct vcpud_client_run){.result = VCPUD_RESULT_MMIO,
                                        .mmio_value = rd[i]};
    }
    run_expect(cli, vm, &req, VCPUD_EXIT_HLT);
    struct vcpud_client_status st = {0};
    struct vcpud_regs r;
    assert_ok(vcpud_client_get_regs(cli, vm, 0, &r, &st), &st);
    assert_int_equal(rd[3], r.r11);
    assert_int_equal(rd[2], r.r10 & 0xffffffff);
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
}

static void results_by_their_own_rpcs(void **state)
{
    (void)state;
    struct vcpud_client_status st = {0};
    uint32_t vm = guest_vm(cli, GUEST(in_echo), VCPUD_MODE_REAL, false);
    run_expect(cli, vm, NULL, VCPUD_EXIT_IO_IN);
    struct vcpud_exit x;
    assert_status(ST_FAILED_PRECONDITION,
                  vcpud_client_run(cli, vm, 0, NULL, &x, &st), &st,
                  "set_io_result");
    assert_status(ST_FAILED_PRECONDITION,
                  vcpud_client_set_mmio_result(cli, vm, 0, 1, &st), &st,
                  "io-in on port 0x20");
    uint64_t wide = 0x1ff;
    assert_status(ST_INVALID_ARGUMENT,
                  vcpud_client_set_io_result(cli, vm, 0, &wide, 1, &st), &st,
                  "does not fit");
    uint64_t v = 0x3c;
    assert_ok(vcpud_client_set_io_result(cli, vm, 0, &v, 1, &st), &st);
    x = run_expect(cli, vm, NULL, VCPUD_EXIT_IO_OUT);
    assert_int_equal(0x3c, vcpud_exit_io_value(&x, 0));
    assert_status(ST_FAILED_PRECONDITION,
                  vcpud_client_set_io_result(cli, vm, 0, &v, 1, &st), &st,
                  "no io-in");
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);

    vm = guest_vm(cli, GUEST(mmio), VCPUD_MODE_LONG, false);
    for (int i = 0; i < 4; i++)
        run_expect(cli, vm, NULL, VCPUD_EXIT_MMIO_WRITE);
    run_expect(cli, vm, NULL, VCPUD_EXIT_MMIO_READ);
    assert_status(ST_INVALID_ARGUMENT,
                  vcpud_client_set_mmio_result(cli, vm, 0, 0x100, &st), &st,
                  "does not fit");
    assert_ok(vcpud_client_set_mmio_result(cli, vm, 0, 0x42, &st), &st);
    run_expect(cli, vm, NULL, VCPUD_EXIT_MMIO_READ);
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
}

/* compute (guests.S) writes 20 steps to 0x3000 and reports on 0x50/0x51. */
struct outcome {
    struct vcpud_regs regs;
    uint8_t mem[80];
    uint64_t result;
};

static void finish_compute(uint32_t vm, struct outcome *o)
{
    struct vcpud_client_status st = {0};
    for (;;) {
        struct vcpud_exit x = run_expect(cli, vm, NULL, VCPUD_EXIT_IO_OUT);
        if (x.u.io.port == 0x51) {
            o->result = vcpud_exit_io_value(&x, 0);
            break;
        }
    }
    run_expect(cli, vm, NULL, VCPUD_EXIT_HLT);
    assert_ok(vcpud_client_get_regs(cli, vm, 0, &o->regs, &st), &st);
    assert_ok(vcpud_client_read_memory(cli, vm, 0x3000, o->mem, 80, &st),
              &st);
}

static uint32_t clone_vm(uint32_t from, const void *snap, size_t len)
{
    struct vcpud_client_status st = {0};
    uint32_t to = guest_vm(cli, GUEST(hlt), VCPUD_MODE_REAL, false);
    uint8_t *ram = malloc(RAM_SIZE);
    assert_non_null(ram);
    assert_ok(vcpud_client_read_memory(cli, from, 0, ram, RAM_SIZE, &st), &st);
    assert_ok(vcpud_client_write_memory(cli, to, 0, ram, RAM_SIZE, &st), &st);
    free(ram);
    assert_ok(vcpud_client_restore(cli, to, 0, snap, len, &st), &st);
    return to;
}

static void snapshot_moves_between_vms(void **state)
{
    (void)state;
    struct vcpud_client_status st = {0};
    struct outcome want, got;
    uint32_t ref = guest_vm(cli, GUEST(compute), VCPUD_MODE_REAL, false);
    finish_compute(ref, &want);

    uint32_t vm = guest_vm(cli, GUEST(compute), VCPUD_MODE_REAL, false);
    for (;;) {
        struct vcpud_exit x = run_expect(cli, vm, NULL, VCPUD_EXIT_IO_OUT);
        if (vcpud_exit_io_value(&x, 0) == 9)
            break;
    }
    void *snap;
    size_t len;
    assert_ok(vcpud_client_snapshot(cli, vm, 0, &snap, &len, &st), &st);
    uint32_t clone = clone_vm(vm, snap, len);
    finish_compute(clone, &got);
    assert_int_equal(want.result, got.result);
    assert_memory_equal(&want.regs, &got.regs, sizeof(want.regs));
    assert_memory_equal(want.mem, got.mem, sizeof(want.mem));

    /* A damaged snapshot is refused and names the damage. */
    ((uint8_t *)snap)[len / 3] ^= 1;
    assert_status(ST_INVALID_ARGUMENT,
                  vcpud_client_restore(cli, clone, 0, snap, len, &st), &st,
                  "snapshot");
    free(snap);
    assert_ok(vcpud_client_destroy_vm(cli, ref, &st), &st);
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
    assert_ok(vcpud_client_destroy_vm(cli, clone, &st), &st);
}

static void snapshot_with_pending_io_in(void **state)
{
    (void)state;
    struct vcpud_client_status st = {0};
    uint32_t vm = guest_vm(cli, GUEST(in_echo), VCPUD_MODE_REAL, false);
    run_expect(cli, vm, NULL, VCPUD_EXIT_IO_IN);
    void *snap;
    size_t len;
    assert_ok(vcpud_client_snapshot(cli, vm, 0, &snap, &len, &st), &st);
    uint32_t clone = clone_vm(vm, snap, len);
    free(snap);
    uint64_t v = 0x5a;
    struct vcpud_client_run req = {.result = VCPUD_RESULT_IO,
                                   .io_values = &v,
                                   .io_count = 1};
    struct vcpud_exit x = run_expect(cli, clone, &req, VCPUD_EXIT_IO_OUT);
    assert_int_equal(0x21, x.u.io.port);
    assert_int_equal(0x5a, vcpud_exit_io_value(&x, 0));
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
    assert_ok(vcpud_client_destroy_vm(cli, clone, &st), &st);
}

static void interrupt_and_nmi_remote(void **state)
{
    (void)state;
    struct vcpud_client_status st = {0};
    uint32_t vm = guest_vm(cli, GUEST(irq), VCPUD_MODE_REAL, false);
    run_expect(cli, vm, NULL, VCPUD_EXIT_IO_OUT);
    run_expect(cli, vm, NULL, VCPUD_EXIT_HLT);
    assert_ok(vcpud_client_inject_interrupt(cli, vm, 0, 0x40, &st), &st);
    struct vcpud_exit x = run_expect(cli, vm, NULL, VCPUD_EXIT_IO_OUT);
    assert_int_equal(0x40, vcpud_exit_io_value(&x, 0));
    run_expect(cli, vm, NULL, VCPUD_EXIT_HLT);
    assert_ok(vcpud_client_inject_nmi(cli, vm, 0, &st), &st);
    x = run_expect(cli, vm, NULL, VCPUD_EXIT_IO_OUT);
    assert_int_equal(0x02, vcpud_exit_io_value(&x, 0));
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
}

static void cancel_and_second_driver(void **state)
{
    (void)state;
    struct vcpud_client_status st = {0};
    uint32_t vm = guest_vm(cli, GUEST(spin), VCPUD_MODE_REAL, false);
    struct bg_run r;
    bg_run_start(&r, cli, vm);
    struct vcpud_exit x;
    assert_status(ST_FAILED_PRECONDITION,
                  vcpud_client_run(cli, vm, 0, NULL, &x, &st), &st,
                  "another call");
    struct vcpud_regs regs;
    assert_status(ST_FAILED_PRECONDITION,
                  vcpud_client_get_regs(cli, vm, 0, &regs, &st), &st, "busy");
    assert_ok(vcpud_client_cancel(cli, vm, 0, &st), &st);
    bg_run_join(&r);
    assert_ok(r.rc, &r.st);
    assert_int_equal(VCPUD_EXIT_CANCELED, r.exit.kind);
    assert_int_equal(VCPUD_CANCEL_REQUESTED, r.exit.u.canceled.reason);
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
}

static void run_time_limit(void **state)
{
    (void)state;
    struct vcpud_client_status st = {0};
    uint32_t vm = guest_vm(cli, GUEST(spin), VCPUD_MODE_REAL, false);
    const struct vcpud_client_run lim = {.timeout_ms = 100};
    struct vcpud_exit x = run_expect(cli, vm, &lim, VCPUD_EXIT_CANCELED);
    assert_int_equal(VCPUD_CANCEL_TIMEOUT, x.u.canceled.reason);
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);

    /* With an in-kernel irqchip hlt sleeps in KVM; the limit ends it, and
     * IRQ lines exist. */
    vm = guest_vm(cli, GUEST(hlt), VCPUD_MODE_REAL, true);
    assert_ok(vcpud_client_set_irq_line(cli, vm, 4, true, &st), &st);
    assert_ok(vcpud_client_set_irq_line(cli, vm, 4, false, &st), &st);
    assert_status(ST_INVALID_ARGUMENT,
                  vcpud_client_set_irq_line(cli, vm, 24, true, &st), &st,
                  "0..23");
    x = run_expect(cli, vm, &lim, VCPUD_EXIT_CANCELED);
    assert_int_equal(VCPUD_CANCEL_TIMEOUT, x.u.canceled.reason);
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
}

static void destroy_vm_while_running(void **state)
{
    (void)state;
    struct vcpud_client_status st = {0};
    uint32_t vm = guest_vm(cli, GUEST(spin), VCPUD_MODE_REAL, false);
    struct bg_run r;
    bg_run_start(&r, cli, vm);
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
    bg_run_join(&r);
    /* The Run ends promptly either way: with the CANCELED exit, or NOT_FOUND
     * if the VM went first. */
    if (r.rc == 0)
        assert_int_equal(VCPUD_EXIT_CANCELED, r.exit.kind);
    else
        assert_int_equal(ST_NOT_FOUND, r.st.code);
    struct vcpud_exit x;
    assert_status(ST_NOT_FOUND, vcpud_client_run(cli, vm, 0, NULL, &x, &st),
                  &st, "no VM");
}

ITEST_MAIN("integration-guest",
           cmocka_unit_test_setup_teardown(io_guest_answered_in_run, setup,
                                           itest_teardown),
           cmocka_unit_test_setup_teardown(string_io_remote, setup, itest_teardown),
           cmocka_unit_test_setup_teardown(mmio_guest_answered_in_run, setup,
                                           itest_teardown),
           cmocka_unit_test_setup_teardown(results_by_their_own_rpcs, setup,
                                           itest_teardown),
           cmocka_unit_test_setup_teardown(snapshot_moves_between_vms, setup,
                                           itest_teardown),
           cmocka_unit_test_setup_teardown(snapshot_with_pending_io_in, setup,
                                           itest_teardown),
           cmocka_unit_test_setup_teardown(interrupt_and_nmi_remote, setup,
                                           itest_teardown),
           cmocka_unit_test_setup_teardown(cancel_and_second_driver, setup,
                                           itest_teardown),
           cmocka_unit_test_setup_teardown(run_time_limit, setup, itest_teardown),
           cmocka_unit_test_setup_teardown(destroy_vm_while_running, setup,
                                           itest_teardown))
