/* kvm_env.h: a VM with one vCPU and a guest loaded, for the KVM tests. */
#ifndef VCPUD_TEST_KVM_ENV_H
#define VCPUD_TEST_KVM_ENV_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "guests.h"
#include "vcpud.h"

#define ENV_RAM_SIZE 0x200000u /* 2 MiB at guest physical 0 */
#define ENV_TABLES 0x100000u   /* page tables and GDT */
#define ENV_STACK 0x8000u

struct env {
    struct vcpud_vm *vm;
    struct vcpud_vcpu *cpu;
    struct vcpud_exit exit;
    struct vcpud_err err;
};

struct env_opts {
    enum vcpud_mode mode; /* 0: real */
    bool irqchip;
};

/* A fresh VM with RAM, vCPU 0 in the mode asked for, (g) loaded and RIP
 * at its first byte. Fails the test on any error. */
void env_init(struct env *e, struct guest g, const struct env_opts *o);
void env_fini(struct env *e);

/* Run once and return the exit; fails the test if the run errs. */
struct vcpud_exit *env_run(struct env *e);

/* Run and insist on an exit of (kind). */
struct vcpud_exit *env_expect(struct env *e, enum vcpud_exit_kind kind);

/* Run and insist on an IO exit of (kind) at (port). */
struct vcpud_exit *env_expect_io(struct env *e, enum vcpud_exit_kind kind,
                                 uint16_t port);


struct vcpud_regs env_regs(struct env *e);

/* Run every test whose name matches argv[1] (all without one). */
int env_main(int argc, char **argv, const char *group,
             const struct CMUnitTest *tests, size_t n);

#define ENV_MAIN(group, ...)                                                   \
    int main(int argc, char **argv)                                            \
    {                                                                          \
        const struct CMUnitTest tests[] = {__VA_ARGS__};                       \
        return env_main(argc, argv, group, tests,                              \
                        sizeof(tests) / sizeof(tests[0]));                     \
    }

#define assert_ok(call, e)                                                     \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ != 0)                                                          \
            fail_msg("%s = %d: %s", #call, rc_, (e)->err.msg);                 \
    } while (0)

#endif
