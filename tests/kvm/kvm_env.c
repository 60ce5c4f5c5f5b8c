/* kvm_env.c: setting up and running the KVM tests' guests. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kvm_env.h"

void env_init(struct env *e, struct guest g, const struct env_opts *o)
{
    memset(e, 0, sizeof(*e));
    const struct vcpud_backend *be;
    assert_ok(vcpud_backend_find("kvm", &be, &e->err), e);
    struct vcpud_vm_config cfg = {.max_vcpus = 2, .irqchip = o && o->irqchip};
    assert_ok(vcpud_vm_create(be, &cfg, &e->vm, &e->err), e);
    assert_ok(vcpud_vm_add_region(e->vm, 0, 0, ENV_RAM_SIZE, 0, &e->err), e);
    assert_ok(vcpud_vm_write(e->vm, GUEST_LOAD, g.code, g.len, &e->err), e);
    assert_ok(vcpud_vcpu_create(e->vm, 0, &e->cpu, &e->err), e);
    enum vcpud_mode mode = o && o->mode ? o->mode : VCPUD_MODE_REAL;
    assert_ok(vcpud_setup_mode(e->cpu, mode, GUEST_LOAD, ENV_STACK, ENV_TABLES,
                               &e->err),
              e);
}

void env_fini(struct env *e)
{
    vcpud_vm_destroy(e->vm);
    e->vm = NULL;
}

struct vcpud_exit *env_run(struct env *e)
{
    assert_ok(vcpud_vcpu_run(e->cpu, NULL, &e->exit, &e->err), e);
    return &e->exit;
}

struct vcpud_exit *env_expect(struct env *e, enum vcpud_exit_kind kind)
{
    struct vcpud_exit *x = env_run(e);
    if (x->kind != kind)
        fail_msg("expected a %s exit, got %s", vcpud_exit_kind_name(kind),
                 vcpud_exit_kind_name(x->kind));
    return x;
}

struct vcpud_exit *env_expect_io(struct env *e, enum vcpud_exit_kind kind,
                                 uint16_t port)
{
    struct vcpud_exit *x = env_expect(e, kind);
    assert_int_equal(port, x->u.io.port);
    return x;
}

struct vcpud_regs env_regs(struct env *e)
{
    struct vcpud_regs r;
    assert_ok(vcpud_vcpu_get_regs(e->cpu, &r, &e->err), e);
    return r;
}

int env_main(int argc, char **argv, const char *group,
             const struct CMUnitTest *tests, size_t n)
{
    if (argc > 1) {
        /* ctest names each case: a name that matches none must fail, not
         * pass by running nothing. */
        size_t i = 0;
        while (i < n && strcmp(tests[i].name, argv[1]) != 0)
            i++;
        if (i == n) {
            fprintf(stderr, "%s: no test named '%s'\n", group, argv[1]);
            return 2;
        }
        return _cmocka_run_group_tests(group, &tests[i], 1, NULL, NULL);
    }
    return _cmocka_run_group_tests(group, tests, n, NULL, NULL);
}
