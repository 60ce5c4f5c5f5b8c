/* test_api.c: every RPC over TCP, [::1] and a unix socket, and the status
 * each kind of bad request gets. */
#include <stdlib.h>
#include <string.h>

#include "itest.h"

static int setup_tcp(void **state)
{
    return itest_setup(state, "tcp");
}

static int setup_tcp6(void **state)
{
    return itest_setup(state, "tcp6");
}

static int setup_unix(void **state)
{
    return itest_setup(state, "unix");
}

/* The fixture's server and client (itest_setup), on each transport. */
static void vm_lifecycle(void)
{
    struct vcpud_client *c = cli;
    struct vcpud_client_status st = {0};

    struct vcpud_vm_config cfg = {.max_vcpus = 2};
    uint32_t a, b;
    assert_ok(vcpud_client_create_vm(c, &cfg, &a, &st), &st);
    assert_ok(vcpud_client_create_vm(c, NULL, &b, &st), &st);
    assert_true(a != b);
    struct vcpud_client_vm_info info[4];
    size_t n = 0;
    assert_ok(vcpud_client_list_vms(c, info, 4, &n, &st), &st);
    assert_int_equal(2, n);
    assert_int_equal(a, info[0].vm_id);
    assert_int_equal(2, info[0].max_vcpus);
    assert_ok(vcpud_client_destroy_vm(c, a, &st), &st);
    assert_status(ST_NOT_FOUND, vcpud_client_destroy_vm(c, a, &st), &st,
                  "no VM");
    assert_ok(vcpud_client_list_vms(c, info, 4, &n, &st), &st);
    assert_int_equal(1, n);
    assert_int_equal(b, info[0].vm_id);
}

static void vm_lifecycle_tcp(void **state)
{
    (void)state;
    vm_lifecycle();
}

static void vm_lifecycle_tcp6(void **state)
{
    (void)state;
    vm_lifecycle();
}

static void vm_lifecycle_unix(void **state)
{
    (void)state;
    vm_lifecycle();
}

static void get_vm_details(void **state)
{
    (void)state;
    struct vcpud_client *c = cli;
    struct vcpud_client_status st = {0};
    uint32_t vm = guest_vm(c, GUEST(hlt), VCPUD_MODE_REAL, false);
    assert_ok(vcpud_client_add_region(c, vm, 5, 0x400000, 0x10000, true, &st),
              &st);
    struct vcpud_client_vm_info info;
    uint32_t ids[64];
    struct vcpud_region_info regions[32];
    size_t nv = 0, nr = 0;
    assert_ok(vcpud_client_get_vm(c, vm, &info, ids, &nv, regions, &nr, &st),
              &st);
    assert_int_equal(1, nv);
    assert_int_equal(0, ids[0]);
    assert_int_equal(2, nr);
    assert_int_equal(5, regions[1].slot);
    assert_int_equal(0x400000, regions[1].gpa);
    assert_true(regions[1].flags & VCPUD_REGION_READONLY);
    assert_int_equal(RAM_SIZE + 0x10000, info.memory_bytes);
    assert_ok(vcpud_client_remove_region(c, vm, 5, &st), &st);
    assert_status(ST_NOT_FOUND, vcpud_client_remove_region(c, vm, 5, &st),
                  &st, "slot 5");
    assert_status(
        ST_NOT_FOUND,
        vcpud_client_get_vm(c, 999, &info, ids, &nv, regions, &nr, &st), &st,
        "999");
}

/* More than one chunk each way, and an odd length. */
static void memory_round_trip_in_chunks(void **state)
{
    (void)state;
    struct vcpud_client *c = cli;
    struct vcpud_client_status st = {0};
    uint32_t vm;
    assert_ok(vcpud_client_create_vm(c, NULL, &vm, &st), &st);
    assert_ok(vcpud_client_add_region(c, vm, 0, 0, 0x200000, false, &st), &st);
    size_t len = 200001;
    uint8_t *out = malloc(len), *in = calloc(1, len);
    assert_non_null(out);
    assert_non_null(in);
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)(i * 7 + (i >> 9));
    assert_ok(vcpud_client_write_memory(c, vm, 0x1003, out, len, &st), &st);
    assert_ok(vcpud_client_read_memory(c, vm, 0x1003, in, len, &st), &st);
    assert_memory_equal(out, in, len);
    free(out);
    free(in);
}

static void memory_bad_requests(void **state)
{
    (void)state;
    struct vcpud_client *c = cli;
    struct vcpud_client_status st = {0};
    uint32_t vm;
    assert_ok(vcpud_client_create_vm(c, NULL, &vm, &st), &st);
    assert_ok(vcpud_client_add_region(c, vm, 0, 0, 0x10000, false, &st), &st);
    uint8_t buf[64] = {0};
    assert_status(ST_INVALID_ARGUMENT,
                  vcpud_client_write_memory(c, vm, 0xfff0, buf, 64, &st), &st,
                  "not backed");
    assert_status(ST_INVALID_ARGUMENT,
                  vcpud_client_read_memory(c, vm, 0x20000, buf, 1, &st), &st,
                  "not backed");
    assert_status(ST_NOT_FOUND,
                  vcpud_client_write_memory(c, vm + 1, 0, buf, 1, &st), &st,
                  "no VM");
    assert_status(ST_ALREADY_EXISTS,
                  vcpud_client_add_region(c, vm, 1, 0x8000, 0x1000, false,
                                          &st),
                  &st, "overlaps");
    assert_status(ST_ALREADY_EXISTS,
                  vcpud_client_add_region(c, vm, 0, 0x100000, 0x1000, false,
                                          &st),
                  &st, "slot 0");
    assert_status(ST_INVALID_ARGUMENT,
                  vcpud_client_add_region(c, vm, 1, 0x100800, 0x1000, false,
                                          &st),
                  &st, "multiples");
    assert_status(
        ST_INVALID_ARGUMENT,
        vcpud_client_add_region(c, vm, 40, 0x100000, 0x1000, false, &st), &st,
        "slot 40");
}

static void vcpu_bad_requests(void **state)
{
    (void)state;
    struct vcpud_client *c = cli;
    struct vcpud_client_status st = {0};
    uint32_t vm = guest_vm(c, GUEST(hlt), VCPUD_MODE_REAL, false);
    assert_status(ST_ALREADY_EXISTS, vcpud_client_create_vcpu(c, vm, 0, &st),
                  &st, "already exists");
    assert_status(ST_INVALID_ARGUMENT,
                  vcpud_client_create_vcpu(c, vm, 7, &st), &st, "max_vcpus");
    assert_status(ST_NOT_FOUND, vcpud_client_destroy_vcpu(c, vm, 1, &st),
                  &st, "no vCPU 1");
    struct vcpud_regs r;
    assert_status(ST_NOT_FOUND, vcpud_client_get_regs(c, vm, 1, &r, &st), &st,
                  "no vCPU 1");
    assert_status(ST_INVALID_ARGUMENT,
                  vcpud_client_inject_interrupt(c, vm, 0, 3, &st), &st,
                  "32..255");
    assert_status(ST_FAILED_PRECONDITION,
                  vcpud_client_set_irq_line(c, vm, 4, true, &st), &st,
                  "irqchip");
    assert_status(ST_INVALID_ARGUMENT,
                  vcpud_client_setup_mode(c, vm, 0, (enum vcpud_mode)0, 0, 0,
                                          0, &st),
                  &st, "mode 0");
    struct vcpud_vm_config big = {.max_vcpus = 60};
    uint32_t id;
    assert_status(ST_RESOURCE_EXHAUSTED,
                  vcpud_client_create_vm(c, &big, &id, &st), &st, "limit");
    const struct vcpud_client_run lim = {.timeout_ms = 100000000000ull};
    struct vcpud_exit x;
    assert_status(ST_INVALID_ARGUMENT,
                  vcpud_client_run(c, vm, 0, &lim, &x, &st), &st,
                  "timeout_ms");
    assert_ok(vcpud_client_destroy_vcpu(c, vm, 0, &st), &st);
    assert_status(ST_NOT_FOUND, vcpud_client_run(c, vm, 0, NULL, &x, &st), &st,
                  "no vCPU 0");
}

static void registers_round_trip(void **state)
{
    (void)state;
    struct vcpud_client *c = cli;
    struct vcpud_client_status st = {0};
    uint32_t vm = guest_vm(c, GUEST(hlt), VCPUD_MODE_LONG, false);
    struct vcpud_regs r, back;
    assert_ok(vcpud_client_get_regs(c, vm, 0, &r, &st), &st);
    assert_int_equal(GUEST_LOAD, r.rip);
    assert_int_equal(STACK, r.rsp);
    r.rax = 0x1111222233334444ull;
    r.r15 = 0xfedcba9876543210ull;
    assert_ok(vcpud_client_set_regs(c, vm, 0, &r, &st), &st);
    assert_ok(vcpud_client_get_regs(c, vm, 0, &back, &st), &st);
    assert_memory_equal(&r, &back, sizeof(r));

    struct vcpud_sregs sr, sback;
    assert_ok(vcpud_client_get_sregs(c, vm, 0, &sr, &st), &st);
    assert_int_equal(1, sr.cs.l);
    assert_int_equal(TABLES + 0x1000, sr.cr3);
    sr.cr8 = 0x3; /* task priority: a harmless, visible change */
    assert_ok(vcpud_client_set_sregs(c, vm, 0, &sr, &st), &st);
    assert_ok(vcpud_client_get_sregs(c, vm, 0, &sback, &st), &st);
    assert_int_equal(3, sback.cr8);
    assert_int_equal(sr.efer, sback.efer);
    assert_int_equal(sr.gdt.base, sback.gdt.base);
}

ITEST_MAIN("integration-api",
           cmocka_unit_test_setup_teardown(vm_lifecycle_tcp, setup_tcp,
                                           itest_teardown),
           cmocka_unit_test_setup_teardown(vm_lifecycle_tcp6, setup_tcp6,
                                           itest_teardown),
           cmocka_unit_test_setup_teardown(vm_lifecycle_unix, setup_unix,
                                           itest_teardown),
           cmocka_unit_test_setup_teardown(get_vm_details, setup_unix,
                                           itest_teardown),
           cmocka_unit_test_setup_teardown(memory_round_trip_in_chunks,
                                           setup_tcp, itest_teardown),
           cmocka_unit_test_setup_teardown(memory_bad_requests, setup_unix,
                                           itest_teardown),
           cmocka_unit_test_setup_teardown(vcpu_bad_requests, setup_unix,
                                           itest_teardown),
           cmocka_unit_test_setup_teardown(registers_round_trip, setup_tcp,
                                           itest_teardown))
