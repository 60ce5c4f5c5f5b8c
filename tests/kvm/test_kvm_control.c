/* test_kvm_control.c: stopping and steering a guest from outside – cancel,
 * time limits, interrupts and NMIs, and one driver at a time. */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "kvm_env.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

struct later {
    struct vcpud_vcpu *cpu;
    long delay_ms;
    enum { DO_CANCEL, DO_IRQ, DO_GET_REGS } what;
    int rc;
    struct vcpud_err err;
};

static void *do_later(void *arg)
{
    struct later *l = arg;
    sleep_ms(l->delay_ms);
    struct vcpud_regs r;
    switch (l->what) {
    case DO_CANCEL:
        vcpud_vcpu_cancel(l->cpu);
        break;
    case DO_IRQ:
        l->rc = vcpud_vcpu_inject_interrupt(l->cpu, 0x40, &l->err);
        break;
    case DO_GET_REGS:
        l->rc = vcpud_vcpu_get_regs(l->cpu, &r, &l->err);
        vcpud_vcpu_cancel(l->cpu);
        break;
    }
    return NULL;
}

static void cancel_spinning_guest_from_thread(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(spin), NULL);
    struct later l = {.cpu = e.cpu, .delay_ms = 50, .what = DO_CANCEL};
    pthread_t t;
    pthread_create(&t, NULL, do_later, &l);
    struct vcpud_exit *x = env_expect(&e, VCPUD_EXIT_CANCELED);
    assert_int_equal(VCPUD_CANCEL_REQUESTED, x->u.canceled.reason);
    pthread_join(t, NULL);
    assert_int_equal(GUEST_LOAD, env_regs(&e).rip); /* still in jmp . */
    env_fini(&e);
}

/* arcbox clears immediate_exit before KVM_RUN and so forgets a cancel that
 * came between runs; here the next run reports it, once. */
static void cancel_between_runs_is_kept(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(io_out), NULL);
    vcpud_vcpu_cancel(e.cpu);
    vcpud_vcpu_cancel(e.cpu); /* two before a run are one stop */
    struct vcpud_exit *x = env_expect(&e, VCPUD_EXIT_CANCELED);
    assert_int_equal(VCPUD_CANCEL_REQUESTED, x->u.canceled.reason);
    assert_int_equal(GUEST_LOAD, env_regs(&e).rip); /* the guest never ran */
    env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x10);
    vcpud_vcpu_cancel(e.cpu);
    env_expect(&e, VCPUD_EXIT_CANCELED);
    env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x12);
    env_fini(&e);
}

static void timeout_stops_spinning_guest(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(spin), NULL);
    const struct vcpud_run_opts lim = {.timeout_ns = 30 * 1000 * 1000};
    assert_ok(vcpud_vcpu_run(e.cpu, &lim, &e.exit, &e.err), &e);
    assert_int_equal(VCPUD_EXIT_CANCELED, e.exit.kind);
    assert_int_equal(VCPUD_CANCEL_TIMEOUT, e.exit.u.canceled.reason);
    /* A limit that does not expire leaves no trace on the next run. */
    env_fini(&e);
    env_init(&e, GUEST(io_out), NULL);
    const struct vcpud_run_opts far = {.timeout_ns = 10ull * 1000000000};
    assert_ok(vcpud_vcpu_run(e.cpu, &far, &e.exit, &e.err), &e);
    assert_int_equal(VCPUD_EXIT_IO_OUT, e.exit.kind);
    env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x12);
    env_fini(&e);
}

/* With an in-kernel irqchip hlt never reaches userspace: a cancel must. */
static void irqchip_hlt_needs_cancel(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(hlt), &(struct env_opts){.irqchip = true});
    struct later l = {.cpu = e.cpu, .delay_ms = 50, .what = DO_CANCEL};
    pthread_t t;
    pthread_create(&t, NULL, do_later, &l);
    struct vcpud_exit *x = env_expect(&e, VCPUD_EXIT_CANCELED);
    assert_int_equal(VCPUD_CANCEL_REQUESTED, x->u.canceled.reason);
    pthread_join(t, NULL);
    env_fini(&e);
}

static void interrupt_reaches_idt_handler(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(irq), NULL);
    env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x40);
    env_expect(&e, VCPUD_EXIT_HLT);
    assert_ok(vcpud_vcpu_inject_interrupt(e.cpu, 0x40, &e.err), &e);
    struct vcpud_exit *x = env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x41);
    assert_int_equal(0x40, vcpud_exit_io_value(x, 0));
    env_expect(&e, VCPUD_EXIT_HLT); /* iret back into the hlt loop */
    env_fini(&e);
}

/* Injected while the guest runs: the vCPU is kicked, not left to wait for
 * an exit that may never come. */
static void interrupt_while_running(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(irq_spin), NULL);
    env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x40);
    struct later l = {.cpu = e.cpu, .delay_ms = 50, .what = DO_IRQ};
    pthread_t t;
    pthread_create(&t, NULL, do_later, &l);
    struct vcpud_exit *x = env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x41);
    assert_int_equal(0x40, vcpud_exit_io_value(x, 0));
    pthread_join(t, NULL);
    assert_int_equal(0, l.rc);
    env_fini(&e);
}

/* An interrupt raised while the guest has interrupts off waits for sti. */
static void interrupt_waits_for_if(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(irq), NULL);
    assert_ok(vcpud_vcpu_inject_interrupt(e.cpu, 0x40, &e.err), &e);
    /* The IVT is not set up and IF is clear until after port 0x40. */
    env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x40);
    struct vcpud_exit *x = env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x41);
    assert_int_equal(0x40, vcpud_exit_io_value(x, 0));
    env_fini(&e);
}

/* With an in-kernel irqchip the vector goes to the local APIC, which
 * refuses it while the guest has not enabled it. */
static void irqchip_interrupt_reaches_handler(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(apic_irq),
             &(struct env_opts){.mode = VCPUD_MODE_LONG, .irqchip = true});
    assert_int_equal(-EPROTO, vcpud_vcpu_inject_interrupt(e.cpu, 0x40, &e.err));
    assert_non_null(strstr(e.err.msg, "APIC"));
    env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x40);
    assert_ok(vcpud_vcpu_inject_interrupt(e.cpu, 0x40, &e.err), &e);
    const struct vcpud_run_opts lim = {.timeout_ns = 5ull * 1000000000};
    assert_ok(vcpud_vcpu_run(e.cpu, &lim, &e.exit, &e.err), &e);
    assert_int_equal(VCPUD_EXIT_IO_OUT, e.exit.kind);
    assert_int_equal(0x41, e.exit.u.io.port);
    assert_int_equal(0x40, vcpud_exit_io_value(&e.exit, 0));
    env_fini(&e);
}

static void nmi_reaches_handler(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(irq), NULL);
    env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x40);
    env_expect(&e, VCPUD_EXIT_HLT);
    assert_ok(vcpud_vcpu_inject_nmi(e.cpu, &e.err), &e);
    struct vcpud_exit *x = env_expect_io(&e, VCPUD_EXIT_IO_OUT, 0x41);
    assert_int_equal(0x02, vcpud_exit_io_value(x, 0));
    env_fini(&e);
}

static void second_driver_is_refused(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, GUEST(spin), NULL);
    struct later l = {.cpu = e.cpu, .delay_ms = 50, .what = DO_GET_REGS};
    pthread_t t;
    pthread_create(&t, NULL, do_later, &l);
    env_expect(&e, VCPUD_EXIT_CANCELED);
    pthread_join(t, NULL);
    assert_int_equal(-EBUSY, l.rc);
    assert_non_null(strstr(l.err.msg, "busy"));
    assert_int_equal(GUEST_LOAD, env_regs(&e).rip); /* free again */
    env_fini(&e);
}

ENV_MAIN("kvm-control", cmocka_unit_test(cancel_spinning_guest_from_thread),
         cmocka_unit_test(cancel_between_runs_is_kept),
         cmocka_unit_test(timeout_stops_spinning_guest),
         cmocka_unit_test(irqchip_hlt_needs_cancel),
         cmocka_unit_test(interrupt_reaches_idt_handler),
         cmocka_unit_test(interrupt_while_running),
         cmocka_unit_test(interrupt_waits_for_if),
         cmocka_unit_test(irqchip_interrupt_reaches_handler),
         cmocka_unit_test(nmi_reaches_handler),
         cmocka_unit_test(second_driver_is_refused))
