/* test_kvm_misuse.c: every way a controller can get the protocol or the
 * arguments wrong gets its own error, and never stale data to the guest. */
#include <string.h>

#include "kvm_env.h"

#define assert_err(want, call, e, needle)                                      \
    do {                                                                       \
        assert_int_equal(want, (call));                                        \
        assert_int_equal(want, (e)->err.code);                                 \
        if (!strstr((e)->err.msg, needle))                                     \
            fail_msg("message \"%s\" lacks \"%s\"", (e)->err.msg, needle);     \
    } while (0)

static void run_without_io_result(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(in_echo), NULL);
    env_expect_io(&e, VCPUD_EXIT_IO_IN, 0x20);
    assert_err(-EPROTO, vcpud_vcpu_run(e.cpu, NULL, &e.exit, &e.err), &e,
               "set_io_result");
    /* Refusing did not consume anything: the answer still lands. */
    const uint64_t v = 0x42;
    assert_ok(vcpud_vcpu_set_io_result(e.cpu, &v, 1, &e.err), &e);
    struct vcpud_exit *x = env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x21);
    assert_int_equal(0x42, vcpud_exit_io_value(x, 0));
    env_fini(&e);
}

static void run_without_mmio_result(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(mmio), &(struct env_opts){.mode = VCPUD_MODE_LONG});
    for (int i = 0; i < 4; i++)
        env_expect(&e, VCPUD_EXIT_MMIO_WRITE);
    env_expect(&e, VCPUD_EXIT_MMIO_READ);
    assert_err(-EPROTO, vcpud_vcpu_run(e.cpu, NULL, &e.exit, &e.err), &e,
               "set_mmio_result");
    env_fini(&e);
}

static void result_with_nothing_pending(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(io_out), NULL);
    const uint64_t v = 1;
    assert_err(-EPROTO, vcpud_vcpu_set_io_result(e.cpu, &v, 1, &e.err), &e,
               "no io-in");
    assert_err(-EPROTO, vcpud_vcpu_set_mmio_result(e.cpu, 1, &e.err), &e,
               "no mmio-read");
    env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x10); /* an OUT wants no answer */
    assert_err(-EPROTO, vcpud_vcpu_set_io_result(e.cpu, &v, 1, &e.err), &e,
               "no io-in");
    env_fini(&e);
}

static void result_of_wrong_kind_or_size(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(io_in), NULL);
    env_expect_io(&e, VCPUD_EXIT_IO_IN, 0x20);
    assert_err(-EPROTO, vcpud_vcpu_set_mmio_result(e.cpu, 1, &e.err), &e,
               "io-in on port 0x20");
    const uint64_t wide = 0x100;
    assert_err(-EINVAL, vcpud_vcpu_set_io_result(e.cpu, &wide, 1, &e.err), &e,
               "does not fit");
    const uint64_t two[2] = {1, 2};
    assert_err(-EINVAL, vcpud_vcpu_set_io_result(e.cpu, two, 2, &e.err), &e,
               "wants 1 value");
    /* After all that, the guest gets exactly the one good answer. */
    const uint64_t v = 0x99;
    assert_ok(vcpud_vcpu_set_io_result(e.cpu, &v, 1, &e.err), &e);
    env_expect_io(&e, VCPUD_EXIT_IO_IN, 0x22);
    assert_int_equal(0x99, env_regs(&e).rbx & 0xff);
    env_fini(&e);
}

static void registers_while_waiting(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(in_echo), NULL);
    env_expect_io(&e, VCPUD_EXIT_IO_IN, 0x20);
    struct vcpud_regs r = env_regs(&e);
    assert_int_equal(GUEST_LOAD, r.rip); /* stopped at the in */
    assert_err(-EPROTO, vcpud_vcpu_set_regs(e.cpu, &r, &e.err), &e,
               "supply the result first");
    struct vcpud_sregs s;
    assert_ok(vcpud_vcpu_get_sregs(e.cpu, &s, &e.err), &e);
    assert_err(-EPROTO, vcpud_vcpu_set_sregs(e.cpu, &s, &e.err), &e,
               "supply the result first");
    const uint64_t v = 7;
    assert_ok(vcpud_vcpu_set_io_result(e.cpu, &v, 1, &e.err), &e);
    /* Answered: reading now shows the finished instruction. */
    r = env_regs(&e);
    assert_int_equal(GUEST_LOAD + 2, r.rip);
    assert_int_equal(7, r.rax & 0xff);
    env_fini(&e);
}

static void vm_and_vcpu_arguments(void **state)
{
    (void)state;
    struct env e;
    struct vcpud_vcpu *c;
    env_init(&e, GUEST(hlt), NULL);
    assert_err(-EINVAL, vcpud_vcpu_create(e.vm, 2, &c, &e.err), &e,
               "max_vcpus 2");
    assert_err(-EEXIST, vcpud_vcpu_create(e.vm, 0, &c, &e.err), &e,
               "already exists");
    assert_ok(vcpud_vcpu_create(e.vm, 1, &c, &e.err), &e);
    assert_ptr_equal(c, vcpud_vm_vcpu(e.vm, 1));
    vcpud_vcpu_destroy(c);
    assert_null(vcpud_vm_vcpu(e.vm, 1));

    const struct vcpud_backend *be;
    assert_ok(vcpud_backend_find("auto", &be, &e.err), &e);
    assert_err(-ENOENT, vcpud_backend_find("hyperv", &be, &e.err), &e,
               "hyperv");
    struct vcpud_vm *vm;
    struct vcpud_vm_config cfg = {.max_vcpus = 1000};
    assert_err(-EINVAL, vcpud_vm_create(be, &cfg, &vm, &e.err), &e,
               "max_vcpus 1000");

    assert_err(-EINVAL, vcpud_vcpu_inject_interrupt(e.cpu, 14, &e.err), &e,
               "32..255");
    assert_err(-ENOTSUP, vcpud_vm_irq_line(e.vm, 4, true, &e.err), &e,
               "irqchip");
    assert_err(-EINVAL,
               vcpud_setup_mode(e.cpu, (enum vcpud_mode)9, 0, 0, 0, &e.err), &e,
               "mode 9");
    assert_err(-EINVAL,
               vcpud_setup_mode(e.cpu, VCPUD_MODE_LONG, 0, 0, 0x123, &e.err),
               &e, "aligned");
    env_fini(&e);
}

static void memory_arguments(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(hlt), NULL);
    assert_err(-EEXIST,
               vcpud_vm_add_region(e.vm, 0, 0x400000, 0x1000, 0, &e.err), &e,
               "slot 0");
    assert_err(-EEXIST, vcpud_vm_add_region(e.vm, 1, 0x1000, 0x1000, 0, &e.err),
               &e, "overlaps");
    assert_err(-EINVAL,
               vcpud_vm_add_region(e.vm, 1, 0x400100, 0x1000, 0, &e.err), &e,
               "multiples");
    assert_err(-EINVAL,
               vcpud_vm_add_region(e.vm, 99, 0x400000, 0x1000, 0, &e.err), &e,
               "slot 99");
    assert_err(-EINVAL, vcpud_vm_add_region(e.vm, 1, 0x400000, 0, 0, &e.err),
               &e, "size 0");
    assert_err(-EINVAL,
               vcpud_vm_add_region(e.vm, 1, 0x400000, 0x1000, 0x80, &e.err), &e,
               "flags");
    assert_err(-ENOENT, vcpud_vm_remove_region(e.vm, 5, &e.err), &e, "slot 5");

    uint8_t buf[16] = {0};
    assert_err(-ERANGE, vcpud_vm_read(e.vm, ENV_RAM_SIZE - 8, buf, 16, &e.err),
               &e, "0x200000");
    assert_err(-ERANGE, vcpud_vm_write(e.vm, UINT64_MAX - 4, buf, 16, &e.err),
               &e, "wraps");

    /* Adjacent regions read as one range, and a removed one is gone. */
    assert_ok(vcpud_vm_add_region(e.vm, 3, ENV_RAM_SIZE, 0x1000, 0, &e.err),
              &e);
    const uint8_t pat[16] = "0123456789abcde";
    assert_ok(vcpud_vm_write(e.vm, ENV_RAM_SIZE - 8, pat, 16, &e.err), &e);
    assert_ok(vcpud_vm_read(e.vm, ENV_RAM_SIZE - 8, buf, 16, &e.err), &e);
    assert_memory_equal(pat, buf, 16);
    struct vcpud_region_info info[4];
    assert_int_equal(2, vcpud_vm_list_regions(e.vm, info, 4));
    assert_int_equal(0, info[0].slot);
    assert_int_equal(3, info[1].slot);
    assert_int_equal(ENV_RAM_SIZE + 0x1000, vcpud_vm_memory_size(e.vm));
    assert_ok(vcpud_vm_remove_region(e.vm, 3, &e.err), &e);
    assert_err(-ERANGE, vcpud_vm_read(e.vm, ENV_RAM_SIZE, buf, 1, &e.err), &e,
               "not backed");
    env_fini(&e);
}

ENV_MAIN("kvm-misuse", cmocka_unit_test(run_without_io_result),
         cmocka_unit_test(run_without_mmio_result),
         cmocka_unit_test(result_with_nothing_pending),
         cmocka_unit_test(result_of_wrong_kind_or_size),
         cmocka_unit_test(registers_while_waiting),
         cmocka_unit_test(vm_and_vcpu_arguments),
         cmocka_unit_test(memory_arguments))
