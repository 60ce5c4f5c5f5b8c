/* test_kvm_snapshot.c: snapshots resume exactly where they were taken, in
 * a fresh VM, even in the middle of an IO-in. */
#include <stdlib.h>
#include <string.h>

#include "kvm_env.h"

#define STEPS 20
#define WORK 0x3000u
#define WORK_LEN (STEPS * 4)

struct outcome {
    struct vcpud_regs regs;
    uint8_t mem[WORK_LEN];
    uint64_t result;
};

/* Run compute to the end, answering nothing (it only does OUTs). */
static void finish_compute(struct env *e, struct outcome *o)
{
    for (;;) {
        struct vcpud_exit *x = env_run(e);
        if (x->kind == VCPUD_EXIT_IO_OUT && x->u.io.port == 0x50)
            continue;
        assert_int_equal(VCPUD_EXIT_IO_OUT, x->kind);
        assert_int_equal(0x51, x->u.io.port);
        o->result = vcpud_exit_io_value(x, 0);
        break;
    }
    env_expect(e, VCPUD_EXIT_HLT);
    o->regs = env_regs(e);
    assert_ok(vcpud_vm_read(e->vm, WORK, o->mem, WORK_LEN, &e->err), e);
}

/* Run compute until it reports step (n). */
static void run_to_step(struct env *e, unsigned n)
{
    for (;;) {
        struct vcpud_exit *x = env_expect_io(e, VCPUD_EXIT_IO_OUT, 0x50);
        if (vcpud_exit_io_value(x, 0) == n)
            return;
    }
}

/* A VM holding a copy of (from)'s RAM and a fresh vCPU restored from
 * (snap). */
static void clone_into(struct env *to, struct env *from, const void *snap,
                       size_t len, const struct env_opts *o)
{
    env_init(to, GUEST(hlt), o);
    uint8_t *ram = malloc(ENV_RAM_SIZE);
    assert_non_null(ram);
    assert_ok(vcpud_vm_read(from->vm, 0, ram, ENV_RAM_SIZE, &from->err), from);
    assert_ok(vcpud_vm_write(to->vm, 0, ram, ENV_RAM_SIZE, &to->err), to);
    free(ram);
    assert_ok(vcpud_vcpu_restore(to->cpu, snap, len, &to->err), to);
}

static void assert_same_outcome(const struct outcome *a,
                                const struct outcome *b)
{
    assert_int_equal(a->result, b->result);
    assert_memory_equal(&a->regs, &b->regs, sizeof(a->regs));
    assert_memory_equal(a->mem, b->mem, WORK_LEN);
}

static void mid_run_snapshot_resumes_in_new_vm(void **state)
{
    (void)state;
    struct env ref, e, clone;
    struct outcome want, got, orig;

    env_init(&ref, GUEST(compute), NULL);
    finish_compute(&ref, &want);
    env_fini(&ref);

    env_init(&e, GUEST(compute), NULL);
    run_to_step(&e, 9);
    void *snap;
    size_t len;
    assert_ok(vcpud_vcpu_snapshot(e.cpu, &snap, &len, &e.err), &e);
    clone_into(&clone, &e, snap, len, NULL);
    free(snap);

    finish_compute(&clone, &got);
    assert_same_outcome(&want, &got);
    /* The original was not disturbed by being snapshotted. */
    finish_compute(&e, &orig);
    assert_same_outcome(&want, &orig);
    env_fini(&clone);
    env_fini(&e);
}

static void restore_into_same_vcpu_rewinds(void **state)
{
    (void)state;
    struct env e;
    struct outcome first, second;
    env_init(&e, GUEST(compute), NULL);
    run_to_step(&e, 4);
    void *snap;
    size_t len;
    assert_ok(vcpud_vcpu_snapshot(e.cpu, &snap, &len, &e.err), &e);
    uint8_t *ram = malloc(ENV_RAM_SIZE);
    assert_non_null(ram);
    assert_ok(vcpud_vm_read(e.vm, 0, ram, ENV_RAM_SIZE, &e.err), &e);
    finish_compute(&e, &first);

    assert_ok(vcpud_vm_write(e.vm, 0, ram, ENV_RAM_SIZE, &e.err), &e);
    assert_ok(vcpud_vcpu_restore(e.cpu, snap, len, &e.err), &e);
    finish_compute(&e, &second);
    assert_same_outcome(&first, &second);
    free(ram);
    free(snap);
    env_fini(&e);
}

/* The guest stops inside `in`; the snapshot travels to a new VM, where the
 * controller answers and the guest sees exactly that answer. */
static void snapshot_with_io_in_pending(void **state)
{
    (void)state;
    struct env e, clone;
    env_init(&e, GUEST(in_echo), NULL);
    struct vcpud_exit *x = env_expect_io(&e, VCPUD_EXIT_IO_IN, 0x20);
    assert_int_equal(1, x->u.io.size);
    void *snap;
    size_t len;
    assert_ok(vcpud_vcpu_snapshot(e.cpu, &snap, &len, &e.err), &e);
    clone_into(&clone, &e, snap, len, NULL);
    free(snap);

    /* Still waiting after the restore: running without an answer fails. */
    assert_int_equal(-EPROTO,
                     vcpud_vcpu_run(clone.cpu, NULL, &clone.exit, &clone.err));
    const uint64_t v = 0x5a;
    assert_ok(vcpud_vcpu_set_io_result(clone.cpu, &v, 1, &clone.err), &clone);
    x = env_expect_io(&clone, VCPUD_EXIT_IO_OUT, 0x21);
    assert_int_equal(0x5a, vcpud_exit_io_value(x, 0));
    env_expect(&clone, VCPUD_EXIT_HLT);
    uint8_t mem;
    assert_ok(vcpud_vm_read(clone.vm, 0x3000, &mem, 1, &clone.err), &clone);
    assert_int_equal(0x5a, mem);

    /* The original answers differently and sees its own answer. */
    const uint64_t w = 0x77;
    assert_ok(vcpud_vcpu_set_io_result(e.cpu, &w, 1, &e.err), &e);
    x = env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x21);
    assert_int_equal(0x77, vcpud_exit_io_value(x, 0));
    env_fini(&clone);
    env_fini(&e);
}

/* Answer given, not yet run: the snapshot carries the finished `in`. */
static void snapshot_after_answer_before_run(void **state)
{
    (void)state;
    struct env e, clone;
    env_init(&e, GUEST(in_echo), NULL);
    env_expect_io(&e, VCPUD_EXIT_IO_IN, 0x20);
    const uint64_t v = 0x33;
    assert_ok(vcpud_vcpu_set_io_result(e.cpu, &v, 1, &e.err), &e);
    void *snap;
    size_t len;
    assert_ok(vcpud_vcpu_snapshot(e.cpu, &snap, &len, &e.err), &e);
    clone_into(&clone, &e, snap, len, NULL);
    free(snap);
    struct vcpud_exit *x = env_expect_io(&clone, VCPUD_EXIT_IO_OUT, 0x21);
    assert_int_equal(0x33, vcpud_exit_io_value(x, 0));
    x = env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x21);
    assert_int_equal(0x33, vcpud_exit_io_value(x, 0));
    env_fini(&clone);
    env_fini(&e);
}

static void corrupt_snapshot_is_refused_whole(void **state)
{
    (void)state;
    struct env e;
    struct outcome want, got;
    env_init(&e, GUEST(compute), NULL);
    finish_compute(&e, &want);
    env_fini(&e);

    env_init(&e, GUEST(compute), NULL);
    run_to_step(&e, 2);
    void *snap;
    size_t len;
    assert_ok(vcpud_vcpu_snapshot(e.cpu, &snap, &len, &e.err), &e);
    uint8_t *bad = malloc(len);
    assert_non_null(bad);
    memcpy(bad, snap, len);
    bad[len / 2] ^= 0x40;
    assert_int_equal(-EBADMSG, vcpud_vcpu_restore(e.cpu, bad, len, &e.err));
    assert_true(strlen(e.err.msg) > 0);
    assert_int_equal(-EBADMSG,
                     vcpud_vcpu_restore(e.cpu, snap, len - 9, &e.err));
    assert_int_equal(-EBADMSG, vcpud_vcpu_restore(e.cpu, "junk", 4, &e.err));
    free(bad);
    free(snap);
    /* Nothing was applied: the run goes on as if untouched. */
    finish_compute(&e, &got);
    assert_same_outcome(&want, &got);
    env_fini(&e);
}

/* With an in-kernel irqchip the local APIC is part of the state, and a
 * snapshot only fits a VM of the same kind. */
static void irqchip_snapshot_carries_lapic(void **state)
{
    (void)state;
    struct env e, clone, plain;
    const struct env_opts chip = {.mode = VCPUD_MODE_LONG, .irqchip = true};
    env_init(&e, GUEST(long64), &chip);
    env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x10);
    void *snap;
    size_t len;
    assert_ok(vcpud_vcpu_snapshot(e.cpu, &snap, &len, &e.err), &e);
    clone_into(&clone, &e, snap, len, &chip);

    /* hlt sleeps inside KVM with an irqchip: only the time limit ends it. */
    const struct vcpud_run_opts lim = {.timeout_ns = 50 * 1000 * 1000};
    assert_ok(vcpud_vcpu_run(clone.cpu, &lim, &clone.exit, &clone.err), &clone);
    assert_int_equal(VCPUD_EXIT_CANCELED, clone.exit.kind);
    assert_int_equal(VCPUD_CANCEL_TIMEOUT, clone.exit.u.canceled.reason);
    struct vcpud_regs r = env_regs(&clone);
    assert_int_equal(0x123456789abcdef0ull + 0x0fedcba987654321ull, r.rcx);

    env_init(&plain, GUEST(hlt), &(struct env_opts){.mode = VCPUD_MODE_LONG});
    assert_int_equal(-EBADMSG,
                     vcpud_vcpu_restore(plain.cpu, snap, len, &plain.err));
    assert_non_null(strstr(plain.err.msg, "irqchip"));
    free(snap);
    env_fini(&plain);
    env_fini(&clone);
    env_fini(&e);
}

ENV_MAIN("kvm-snapshot", cmocka_unit_test(mid_run_snapshot_resumes_in_new_vm),
         cmocka_unit_test(restore_into_same_vcpu_rewinds),
         cmocka_unit_test(snapshot_with_io_in_pending),
         cmocka_unit_test(snapshot_after_answer_before_run),
         cmocka_unit_test(corrupt_snapshot_is_refused_whole),
         cmocka_unit_test(irqchip_snapshot_carries_lapic))
