/* vcpu.c: vCPU lifecycle, the run loop, cancel, timeouts and injection. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "core.h"

/*
 * A vCPU inside the guest leaves it only on an exit or a signal. The kick
 * signal's handler does nothing for plain kicks: what matters is that
 * KVM_RUN returns -EINTR. Timer signals carry the vCPU and set its
 * timed_out flag. SIGUSR2 is reserved for this in processes using vcpud.
 */
#define KICK_SIGNAL SIGUSR2

static void kick_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    if (si->si_code == SI_TIMER && si->si_value.sival_ptr) {
        struct vcpud_vcpu *vcpu = si->si_value.sival_ptr;
        atomic_store(&vcpu->timed_out, true);
        vcpu->vm->be->vcpu_kick(vcpu->bv);
    }
}

static void install_handler(void)
{
    struct sigaction sa = {0};
    sa.sa_sigaction = kick_handler;
    sa.sa_flags = SA_SIGINFO; /* no SA_RESTART: KVM_RUN must see EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(KICK_SIGNAL, &sa, NULL);
}

/* Servers block every signal in every thread and take them in one place;
 * the kick signal must still reach a running vCPU thread. */
static void prepare_thread(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    static _Thread_local bool unblocked;

    pthread_once(&once, install_handler);
    if (!unblocked) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, KICK_SIGNAL);
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
        unblocked = true;
    }
}

int vcpud_vcpu_create(struct vcpud_vm *vm, uint32_t id, struct vcpud_vcpu **out,
                      struct vcpud_err *err)
{
    if (id >= vm->cfg.max_vcpus)
        return vcpud_err_set(err, -EINVAL,
                             "vCPU id %u is not below the VM's max_vcpus %u",
                             id, vm->cfg.max_vcpus);
    pthread_mutex_lock(&vm->vcpu_lock);
    int rc = 0;
    struct vcpud_vcpu *vcpu = NULL;
    if (vm->vcpus[id]) {
        rc = vcpud_err_set(err, -EEXIST, "vCPU %u already exists", id);
        goto out;
    }
    vcpu = calloc(1, sizeof(*vcpu));
    if (!vcpu) {
        rc = vcpud_err_set(err, -ENOMEM, "out of memory for a vCPU");
        goto out;
    }
    vcpu->vm = vm;
    vcpu->id = id;
    pthread_mutex_init(&vcpu->kick_lock, NULL);
    rc = vm->be->vcpu_create(vm->bvm, id, &vcpu->bv, err);
    if (rc == 0)
        rc = vm->be->vcpu_set_cpuid_supported(vcpu->bv, err);
    if (rc < 0) {
        if (vcpu->bv)
            vm->be->vcpu_destroy(vcpu->bv);
        pthread_mutex_destroy(&vcpu->kick_lock);
        free(vcpu);
        goto out;
    }
    vm->vcpus[id] = vcpu;
    *out = vcpu;
out:
    pthread_mutex_unlock(&vm->vcpu_lock);
    return rc;
}

void vcpud_vcpu_destroy(struct vcpud_vcpu *vcpu)
{
    if (!vcpu)
        return;
    struct vcpud_vm *vm = vcpu->vm;
    pthread_mutex_lock(&vm->vcpu_lock);
    vm->vcpus[vcpu->id] = NULL;
    pthread_mutex_unlock(&vm->vcpu_lock);
    vm->be->vcpu_destroy(vcpu->bv);
    pthread_mutex_destroy(&vcpu->kick_lock);
    free(vcpu);
}

struct vcpud_vcpu *vcpud_vm_vcpu(struct vcpud_vm *vm, uint32_t id)
{
    if (id >= VCPUD_VM_MAX_VCPUS_LIMIT)
        return NULL;
    pthread_mutex_lock(&vm->vcpu_lock);
    struct vcpud_vcpu *vcpu = vm->vcpus[id];
    pthread_mutex_unlock(&vm->vcpu_lock);
    return vcpu;
}

uint32_t vcpud_vcpu_id(const struct vcpud_vcpu *vcpu)
{
    return vcpu->id;
}

struct vcpud_vm *vcpud_vcpu_vm(const struct vcpud_vcpu *vcpu)
{
    return vcpu->vm;
}

int vcpud__vcpu_claim(struct vcpud_vcpu *vcpu, struct vcpud_err *err)
{
    bool expected = false;
    if (!atomic_compare_exchange_strong(&vcpu->busy, &expected, true))
        return vcpud_err_set(err, -EBUSY,
                             "vCPU %u is busy: another caller is running or "
                             "driving it",
                             vcpu->id);
    return 0;
}

void vcpud__vcpu_release(struct vcpud_vcpu *vcpu)
{
    atomic_store(&vcpu->busy, false);
}

void vcpud_vcpu_cancel(struct vcpud_vcpu *vcpu)
{
    /* Flag before kick: the run loop clears the kick before it reads the
     * flag, so whichever order the two threads interleave in, either the
     * loop sees the flag or KVM_RUN sees the kick. Nothing is lost. */
    atomic_store(&vcpu->cancel, true);
    vcpu->vm->be->vcpu_kick(vcpu->bv);
    pthread_mutex_lock(&vcpu->kick_lock);
    if (vcpu->running)
        pthread_kill(vcpu->runner, KICK_SIGNAL);
    pthread_mutex_unlock(&vcpu->kick_lock);
}

/* Make a running vCPU look at its injection queues. */
static void poke(struct vcpud_vcpu *vcpu)
{
    vcpu->vm->be->vcpu_kick(vcpu->bv);
    pthread_mutex_lock(&vcpu->kick_lock);
    if (vcpu->running)
        pthread_kill(vcpu->runner, KICK_SIGNAL);
    pthread_mutex_unlock(&vcpu->kick_lock);
}

int vcpud_vcpu_inject_interrupt(struct vcpud_vcpu *vcpu, uint32_t vector,
                                struct vcpud_err *err)
{
    if (vector < 32 || vector > 255)
        return vcpud_err_set(err, -EINVAL,
                             "vector %u is not in 32..255 (0-31 are CPU "
                             "exceptions)",
                             vector);
    struct vcpud_vm *vm = vcpu->vm;
    if (vm->cfg.irqchip)
        return vm->be->vm_send_vector(vm->bvm, vcpu->id, vector, err);
    atomic_fetch_or(&vcpu->irqs[vector / 64], 1ull << (vector % 64));
    poke(vcpu);
    return 0;
}

int vcpud_vcpu_inject_nmi(struct vcpud_vcpu *vcpu, struct vcpud_err *err)
{
    (void)err;
    atomic_store(&vcpu->nmi, true);
    poke(vcpu);
    return 0;
}

/* Highest pending vector (x86 priority grows with the vector), or -1. */
static int take_irq(struct vcpud_vcpu *vcpu, bool take)
{
    for (int w = 3; w >= 0; w--) {
        uint64_t bits = atomic_load(&vcpu->irqs[w]);
        if (!bits)
            continue;
        int bit = 63 - __builtin_clzll(bits);
        if (take)
            atomic_fetch_and(&vcpu->irqs[w], ~(1ull << bit));
        return w * 64 + bit;
    }
    return -1;
}

static int deliver_injections(struct vcpud_vcpu *vcpu, struct vcpud_err *err)
{
    const struct vcpud_backend *be = vcpu->vm->be;

    if (atomic_exchange(&vcpu->nmi, false)) {
        int rc = be->vcpu_inject_nmi(vcpu->bv, err);
        if (rc < 0)
            return rc;
    }
    int vector = take_irq(vcpu, false);
    if (vector >= 0 && be->vcpu_irq_ready(vcpu->bv)) {
        take_irq(vcpu, true);
        int rc = be->vcpu_inject_irq(vcpu->bv, (uint32_t)vector, err);
        if (rc < 0)
            return rc;
        vector = take_irq(vcpu, false);
    }
    /* Still something queued: have KVM exit as soon as it can be taken. */
    bool want = vector >= 0;
    if (want != vcpu->window_wanted) {
        be->vcpu_want_irq_window(vcpu->bv, want);
        vcpu->window_wanted = want;
    }
    return 0;
}

/* A POSIX timer aimed at this thread; its signal sets timed_out. */
static int arm_timeout(struct vcpud_vcpu *vcpu, uint64_t ns, timer_t *timer,
                       struct vcpud_err *err)
{
    struct sigevent sev = {0};
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = KICK_SIGNAL;
    sev.sigev_value.sival_ptr = vcpu;
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &sev, timer) < 0)
        return vcpud_err_sys(err, -errno, "cannot create the run timer");
    struct itimerspec its = {0};
    its.it_value.tv_sec = (time_t)(ns / 1000000000u);
    its.it_value.tv_nsec = (long)(ns % 1000000000u);
    if (timer_settime(*timer, 0, &its, NULL) < 0) {
        int rc = -errno;
        timer_delete(*timer);
        return vcpud_err_sys(err, rc, "cannot arm the run timer");
    }
    return 0;
}

static void set_running(struct vcpud_vcpu *vcpu, bool running)
{
    pthread_mutex_lock(&vcpu->kick_lock);
    vcpu->running = running;
    vcpu->runner = pthread_self();
    pthread_mutex_unlock(&vcpu->kick_lock);
}

static void canceled(struct vcpud_exit *exit, enum vcpud_cancel_reason why)
{
    exit->kind = VCPUD_EXIT_CANCELED;
    exit->u.canceled.reason = why;
}

/* Give the backend the result the controller supplied for the exit the
 * backend itself reported; it reaches the guest on the next entry. */
static int put_result(struct vcpud_vcpu *vcpu, struct vcpud_err *err)
{
    const struct vcpud_backend *be = vcpu->vm->be;
    struct vcpud_pending *p = &vcpu->pending;
    int rc;
    if (p->kind == VCPUD_EXIT_IO_IN)
        rc = be->vcpu_put_io_in(vcpu->bv, p->data, vcpud__pending_data_len(p),
                                err);
    else
        rc = be->vcpu_put_mmio_read(vcpu->bv, p->value, err);
    vcpud__pending_clear(p);
    return rc;
}

/* Room for everything one entry into the guest can post, plus one write
 * the backend could not buffer itself, must be left before entering. */
static bool posted_room(const struct vcpud_vcpu *vcpu)
{
    return VCPUD_POSTED_MAX - vcpu->nposted >= VCPUD_POSTED_PER_RUN + 1;
}

static void take_posted(struct vcpud_vcpu *vcpu)
{
    const struct vcpud_backend *be = vcpu->vm->be;
    if (atomic_load(&vcpu->vm->nposted_ranges) && be->vcpu_take_posted)
        vcpu->nposted += (uint32_t)be->vcpu_take_posted(
            vcpu->bv, vcpu->posted + vcpu->nposted,
            VCPUD_POSTED_MAX - vcpu->nposted);
}

static void post(struct vcpud_vcpu *vcpu, bool pio, uint64_t addr,
                 uint8_t size, uint64_t data)
{
    vcpu->posted[vcpu->nposted++] = (struct vcpud_posted_write){
        .addr = addr, .data = data, .size = size, .pio = pio};
}

/* A write to a posted range that still exited (the backend's own buffer
 * was full): record it in order and go on, as if it had not exited. */
static bool absorb_posted(struct vcpud_vcpu *vcpu,
                          const struct vcpud_exit *exit)
{
    struct vcpud_vm *vm = vcpu->vm;
    if (!atomic_load(&vm->nposted_ranges))
        return false;
    uint32_t room = VCPUD_POSTED_MAX - vcpu->nposted;
    if (exit->kind == VCPUD_EXIT_MMIO_WRITE && room >= 1 &&
        vcpud__vm_is_posted(vm, false, exit->u.mmio.addr, exit->u.mmio.size)) {
        post(vcpu, false, exit->u.mmio.addr, exit->u.mmio.size,
             exit->u.mmio.data);
        return true;
    }
    if (exit->kind == VCPUD_EXIT_IO_OUT && room >= exit->u.io.count &&
        vcpud__vm_is_posted(vm, true, exit->u.io.port, exit->u.io.size)) {
        for (uint32_t i = 0; i < exit->u.io.count; i++)
            post(vcpu, true, exit->u.io.port, exit->u.io.size,
                 vcpud_exit_io_value(exit, i));
        return true;
    }
    return false;
}

static int run_loop(struct vcpud_vcpu *vcpu, struct vcpud_exit *exit,
                    struct vcpud_err *err)
{
    const struct vcpud_backend *be = vcpu->vm->be;
    struct vcpud_pending *p = &vcpu->pending;

    if (p->kind != VCPUD_EXIT_NONE && !p->replay) {
        int rc = put_result(vcpu, err);
        if (rc < 0)
            return rc;
    }
    for (;;) {
        be->vcpu_unkick(vcpu->bv);
        if (atomic_exchange(&vcpu->cancel, false)) {
            canceled(exit, VCPUD_CANCEL_REQUESTED);
            return 0;
        }
        if (atomic_exchange(&vcpu->timed_out, false)) {
            canceled(exit, VCPUD_CANCEL_TIMEOUT);
            return 0;
        }
        if (!posted_room(vcpu)) {
            exit->kind = VCPUD_EXIT_POSTED;
            return 0;
        }
        int rc = deliver_injections(vcpu, err);
        if (rc < 0)
            return rc;
        rc = be->vcpu_run(vcpu->bv, exit, err);
        take_posted(vcpu); /* they happened before whatever ended the run */
        if (rc == -EINTR)
            continue;
        if (rc < 0)
            return rc;
        if (absorb_posted(vcpu, exit))
            continue;
        if (exit->kind == VCPUD_EXIT_IRQ_WINDOW_OPEN && vcpu->window_wanted)
            continue; /* ours: the top of the loop injects */
        /* As on hardware, hlt with an interrupt it can take does not halt
         * (sti; hlt is how guests wait for one). */
        if (exit->kind == VCPUD_EXIT_HLT && take_irq(vcpu, false) >= 0 &&
            be->vcpu_irq_ready(vcpu->bv))
            continue;
        if (p->replay) {
            if (!vcpud__pending_matches(p, exit)) {
                char what[96];
                vcpud__pending_describe(p, what, sizeof(what));
                vcpud__pending_clear(p);
                return vcpud_err_set(
                    err, -EPROTO,
                    "the restored vCPU %u did not repeat its pending %s but "
                    "exited with %s; its registers no longer match the "
                    "snapshot",
                    vcpu->id, what, vcpud_exit_kind_name(exit->kind));
            }
            p->replay = false;
            rc = put_result(vcpu, err);
            if (rc < 0)
                return rc;
            continue;
        }
        vcpud__pending_from_exit(p, exit);
        return 0;
    }
}

int vcpud_vcpu_run(struct vcpud_vcpu *vcpu, const struct vcpud_run_opts *opts,
                   struct vcpud_exit *exit, struct vcpud_err *err)
{
    int rc = vcpud__vcpu_claim(vcpu, err);
    if (rc < 0)
        return rc;
    rc = vcpud__pending_check_run(&vcpu->pending, vcpu->id, err);
    if (rc < 0)
        goto release;

    prepare_thread();
    exit->kind = VCPUD_EXIT_NONE;
    timer_t timer;
    bool timed = opts && opts->timeout_ns;
    atomic_store(&vcpu->timed_out, false);
    if (timed && (rc = arm_timeout(vcpu, opts->timeout_ns, &timer, err)) < 0)
        goto release;
    vcpu->nposted = 0; /* the last exit carried the previous ones */
    set_running(vcpu, true);
    rc = run_loop(vcpu, exit, err);
    set_running(vcpu, false);
    exit->nposted = vcpu->nposted;
    exit->posted = vcpu->posted;
    if (rc == 0 && opts && (opts->regs || opts->sregs))
        rc = vcpu->vm->be->vcpu_exit_state(vcpu->bv, opts->regs, opts->sregs,
                                           err);
    if (timed)
        timer_delete(timer);
release:
    vcpud__vcpu_release(vcpu);
    return rc;
}

int vcpud_vcpu_set_io_result(struct vcpud_vcpu *vcpu, const uint64_t *values,
                             uint32_t count, struct vcpud_err *err)
{
    int rc = vcpud__vcpu_claim(vcpu, err);
    if (rc < 0)
        return rc;
    rc = vcpud__pending_set_io(&vcpu->pending, values, count, err);
    vcpud__vcpu_release(vcpu);
    return rc;
}

int vcpud_vcpu_set_mmio_result(struct vcpud_vcpu *vcpu, uint64_t value,
                               struct vcpud_err *err)
{
    int rc = vcpud__vcpu_claim(vcpu, err);
    if (rc < 0)
        return rc;
    rc = vcpud__pending_set_mmio(&vcpu->pending, value, err);
    vcpud__vcpu_release(vcpu);
    return rc;
}

int vcpud_vcpu_set_single_step(struct vcpud_vcpu *vcpu, bool enable,
                               struct vcpud_err *err)
{
    int rc = vcpud__vcpu_claim(vcpu, err);
    if (rc < 0)
        return rc;
    rc = vcpu->vm->be->vcpu_set_single_step(vcpu->bv, enable, err);
    vcpud__vcpu_release(vcpu);
    return rc;
}

int vcpud_vcpu_set_cpuid_supported(struct vcpud_vcpu *vcpu,
                                   struct vcpud_err *err)
{
    int rc = vcpud__vcpu_claim(vcpu, err);
    if (rc < 0)
        return rc;
    rc = vcpu->vm->be->vcpu_set_cpuid_supported(vcpu->bv, err);
    vcpud__vcpu_release(vcpu);
    return rc;
}
