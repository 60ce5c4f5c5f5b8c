/* test_kvm_exits.c: every exit kind a guest can cause, with its data. */
#include <string.h>

#include "kvm_env.h"

static void io_out_each_size(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(io_out), NULL);
    struct vcpud_exit *x = env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x10);
    assert_int_equal(1, x->u.io.size);
    assert_int_equal(1, x->u.io.count);
    assert_int_equal(0x11, vcpud_exit_io_value(x, 0));
    x = env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x12);
    assert_int_equal(2, x->u.io.size);
    assert_int_equal(0x2233, vcpud_exit_io_value(x, 0));
    x = env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x14);
    assert_int_equal(4, x->u.io.size);
    assert_int_equal(0x44556677, vcpud_exit_io_value(x, 0));
    env_expect(&e, VCPUD_EXIT_HLT);
    env_fini(&e);
}

static void io_in_each_size(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(io_in), NULL);
    static const struct {
        uint16_t port;
        uint8_t size;
        uint64_t value;
    } in[] = {{0x20, 1, 0xab}, {0x22, 2, 0xbeef}, {0x24, 4, 0xfeedface}};
    for (size_t i = 0; i < 3; i++) {
        struct vcpud_exit *x = env_expect_io(&e, VCPUD_EXIT_IO_IN, in[i].port);
        assert_int_equal(in[i].size, x->u.io.size);
        assert_int_equal(1, x->u.io.count);
        assert_ok(vcpud_vcpu_set_io_result(e.cpu, &in[i].value, 1, &e.err), &e);
    }
    env_expect(&e, VCPUD_EXIT_HLT);
    struct vcpud_regs r = env_regs(&e);
    assert_int_equal(0xab, r.rbx & 0xff);
    assert_int_equal(0xbeef, r.rcx & 0xffff);
    assert_int_equal(0xfeedface, r.rdx & 0xffffffff);
    env_fini(&e);
}

/* KVM may split string IO into any number of exits (one per element on
 * some hosts): collect until the string is complete. */
static void string_io_rep_outsb_insb(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(string_io), NULL);
    char out[8] = {0};
    size_t got = 0;
    while (got < 5) {
        struct vcpud_exit *x = env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x30);
        assert_int_equal(1, x->u.io.size);
        assert_true(got + x->u.io.count <= 5);
        memcpy(out + got, x->u.io.data, x->u.io.count);
        got += x->u.io.count;
    }
    assert_string_equal("hello", out);

    const uint8_t in[4] = {0xde, 0xad, 0xbe, 0xef};
    size_t given = 0;
    while (given < 4) {
        struct vcpud_exit *x = env_expect_io(&e, VCPUD_EXIT_IO_IN, 0x31);
        uint32_t n = x->u.io.count;
        assert_true(given + n <= 4);
        uint64_t v[4];
        for (uint32_t i = 0; i < n; i++)
            v[i] = in[given + i];
        assert_ok(vcpud_vcpu_set_io_result(e.cpu, v, n, &e.err), &e);
        given += n;
    }
    env_expect(&e, VCPUD_EXIT_HLT);
    uint8_t mem[4];
    assert_ok(vcpud_vm_read(e.vm, 0x3000, mem, 4, &e.err), &e);
    assert_memory_equal(in, mem, 4);
    env_fini(&e);
}

static void mmio_each_size(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(mmio), &(struct env_opts){.mode = VCPUD_MODE_LONG});
    static const struct {
        uint64_t off;
        uint8_t size;
        uint64_t value;
    } w[] = {{0, 1, 0x11},
             {2, 2, 0x2233},
             {4, 4, 0x44556677},
             {8, 8, 0x8899aabbccddeeffull}};
    for (size_t i = 0; i < 4; i++) {
        struct vcpud_exit *x = env_expect(&e, VCPUD_EXIT_MMIO_WRITE);
        assert_int_equal(0xd0000000ull + w[i].off, x->u.mmio.addr);
        assert_int_equal(w[i].size, x->u.mmio.size);
        assert_int_equal(w[i].value, x->u.mmio.data);
    }
    static const uint64_t rd[] = {0xa1, 0xb2c3, 0xd4e5f607,
                                  0x0123456789abcdefull};
    for (size_t i = 0; i < 4; i++) {
        struct vcpud_exit *x = env_expect(&e, VCPUD_EXIT_MMIO_READ);
        assert_int_equal(0xd0000000ull + w[i].off, x->u.mmio.addr);
        assert_int_equal(w[i].size, x->u.mmio.size);
        assert_ok(vcpud_vcpu_set_mmio_result(e.cpu, rd[i], &e.err), &e);
    }
    env_expect(&e, VCPUD_EXIT_HLT);
    struct vcpud_regs r = env_regs(&e);
    assert_int_equal(rd[0], r.r8 & 0xff);
    assert_int_equal(rd[1], r.r9 & 0xffff);
    assert_int_equal(rd[2], r.r10 & 0xffffffff);
    assert_int_equal(rd[3], r.r11);
    env_fini(&e);
}

/* Writes to a read-only region reach the controller; reads see the ROM. */
static void readonly_region_write_is_mmio(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(rom_write), &(struct env_opts){.mode = VCPUD_MODE_LONG});
    assert_ok(vcpud_vm_add_region(e.vm, 1, 0x200000, 0x1000,
                                  VCPUD_REGION_READONLY, &e.err),
              &e);
    const uint8_t rom = 0x77;
    assert_ok(vcpud_vm_write(e.vm, 0x200000, &rom, 1, &e.err), &e);
    struct vcpud_exit *x = env_expect(&e, VCPUD_EXIT_MMIO_WRITE);
    assert_int_equal(0x200000, x->u.mmio.addr);
    assert_int_equal(0x5a, x->u.mmio.data);
    env_expect(&e, VCPUD_EXIT_HLT);
    assert_int_equal(0x77, env_regs(&e).rax & 0xff);
    env_fini(&e);
}

static void hlt_exit(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(hlt), NULL);
    env_expect(&e, VCPUD_EXIT_HLT);
    assert_int_equal(GUEST_LOAD + 1, env_regs(&e).rip);
    env_fini(&e);
}

static void triple_fault_is_shutdown(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(triple_fault),
             &(struct env_opts){.mode = VCPUD_MODE_LONG});
    env_expect(&e, VCPUD_EXIT_SHUTDOWN);
    env_fini(&e);
}

static void protected_mode_guest(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(prot32),
             &(struct env_opts){.mode = VCPUD_MODE_PROTECTED});
    struct vcpud_exit *x = env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x10);
    assert_int_equal(4, x->u.io.size);
    assert_int_equal(0x12345678, vcpud_exit_io_value(x, 0));
    env_expect(&e, VCPUD_EXIT_HLT);
    struct vcpud_regs r = env_regs(&e);
    assert_int_equal(0x12345678, r.rbx);
    assert_int_equal(0x12345678, r.rcx);
    assert_int_equal(0x8000, r.rsp);
    struct vcpud_sregs s;
    assert_ok(vcpud_vcpu_get_sregs(e.cpu, &s, &e.err), &e);
    assert_int_equal(1, s.cr0 & 1);
    assert_int_equal(1, s.cs.db);
    env_fini(&e);
}

static void long_mode_guest(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(long64), &(struct env_opts){.mode = VCPUD_MODE_LONG});
    struct vcpud_exit *x = env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x10);
    assert_int_equal(0x9abcdef0, vcpud_exit_io_value(x, 0));
    env_expect(&e, VCPUD_EXIT_HLT);
    struct vcpud_regs r = env_regs(&e);
    assert_int_equal(0x123456789abcdef0ull, r.rax);
    assert_int_equal(0x0fedcba987654321ull, r.rbx);
    assert_int_equal(0x123456789abcdef0ull + 0x0fedcba987654321ull, r.rcx);
    struct vcpud_sregs s;
    assert_ok(vcpud_vcpu_get_sregs(e.cpu, &s, &e.err), &e);
    assert_int_equal(1, s.cs.l);
    assert_true(s.efer & (1u << 10)); /* LMA */
    env_fini(&e);
}

static void single_step_gives_debug_exits(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(io_out), NULL);
    assert_ok(vcpud_vcpu_set_single_step(e.cpu, true, &e.err), &e);
    struct vcpud_exit *x = env_expect(&e, VCPUD_EXIT_DEBUG);
    assert_int_equal(1, x->u.debug.exception); /* #DB */
    assert_int_equal(GUEST_LOAD + 2, env_regs(&e).rip);
    assert_ok(vcpud_vcpu_set_single_step(e.cpu, false, &e.err), &e);
    env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x10);
    env_fini(&e);
}

/* Registers delivered with the exit are those at the exit: RIP still at
 * the IN waiting for its value (the second exit's copy comes from KVM's
 * sync area and shows the first IN completed). */
static void exit_carries_registers(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(io_in), NULL);
    struct vcpud_regs r;
    struct vcpud_sregs s;
    struct vcpud_run_opts o = {.regs = &r, .sregs = &s};
    assert_ok(vcpud_vcpu_run(e.cpu, &o, &e.exit, &e.err), &e);
    assert_int_equal(VCPUD_EXIT_IO_IN, e.exit.kind);
    assert_int_equal(GUEST_LOAD, r.rip);
    assert_int_equal(0, s.cs.base);
    const uint64_t v = 0x5c;
    assert_ok(vcpud_vcpu_set_io_result(e.cpu, &v, 1, &e.err), &e);
    assert_ok(vcpud_vcpu_run(e.cpu, &o, &e.exit, &e.err), &e);
    assert_int_equal(0x22, e.exit.u.io.port);
    assert_int_equal(GUEST_LOAD + 4, r.rip);
    assert_int_equal(0x5c, r.rbx & 0xff);
    env_fini(&e);
}

/* Posted writes cost no exit; they arrive with later exits, every one, in
 * guest order, and a full buffer ends the run with a POSTED exit. */
static void posted_writes_arrive_in_order(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(posted), &(struct env_opts){.mode = VCPUD_MODE_LONG});
    assert_ok(vcpud_vm_add_posted(e.vm, false, 0xd0000000, 0x1000, &e.err),
              &e);
    assert_ok(vcpud_vm_add_posted(e.vm, true, 0x80, 1, &e.err), &e);
    assert_int_equal(-EEXIST,
                     vcpud_vm_add_posted(e.vm, true, 0x80, 4, &e.err));
    assert_int_equal(-EINVAL,
                     vcpud_vm_add_posted(e.vm, false, 0x1000, 16, &e.err));
    uint32_t seen = 0, exits = 0, posted_exits = 0;
    for (;;) {
        struct vcpud_exit *x = env_run(&e);
        exits++;
        for (uint32_t i = 0; i < x->nposted; i++, seen++) {
            const struct vcpud_posted_write *w = &x->posted[i];
            uint32_t round = seen / 2;
            if (seen % 2 == 0) {
                assert_false(w->pio);
                assert_int_equal(0xd0000000, w->addr);
                assert_int_equal(4, w->size);
                assert_int_equal(round, w->data);
            } else {
                assert_true(w->pio);
                assert_int_equal(0x80, w->addr);
                assert_int_equal(1, w->size);
                assert_int_equal(round & 0xff, w->data);
            }
        }
        if (x->kind == VCPUD_EXIT_POSTED) {
            posted_exits++;
            continue;
        }
        assert_int_equal(VCPUD_EXIT_IO_OUT, x->kind);
        assert_int_equal(0x10, x->u.io.port);
        break;
    }
    assert_int_equal(1200, seen);
    assert_true(posted_exits >= 1);
    /* Far fewer stops than writes: that is the point. */
    assert_true(exits < 100);
    env_expect(&e, VCPUD_EXIT_HLT);
    assert_int_equal(0, e.exit.nposted);
    assert_ok(vcpud_vm_remove_posted(e.vm, true, 0x80, 1, &e.err), &e);
    assert_int_equal(-ENOENT,
                     vcpud_vm_remove_posted(e.vm, true, 0x80, 1, &e.err));
    env_fini(&e);
}

ENV_MAIN("kvm-exits", cmocka_unit_test(io_out_each_size),
         cmocka_unit_test(io_in_each_size),
         cmocka_unit_test(string_io_rep_outsb_insb),
         cmocka_unit_test(mmio_each_size),
         cmocka_unit_test(readonly_region_write_is_mmio),
         cmocka_unit_test(hlt_exit), cmocka_unit_test(triple_fault_is_shutdown),
         cmocka_unit_test(protected_mode_guest),
         cmocka_unit_test(long_mode_guest),
         cmocka_unit_test(single_step_gives_debug_exits),
         cmocka_unit_test(exit_carries_registers),
         cmocka_unit_test(posted_writes_arrive_in_order))
