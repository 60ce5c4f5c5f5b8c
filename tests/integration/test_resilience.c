/* test_resilience.c: many controllers at once, controllers that die or
 * freeze mid-Run, limits, tenants, and SIGTERM with guests running. */
#include <fcntl.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"

static const char *self_path;

/* ---- four controllers ---- */

/* Threads only run and count: cmocka's assertions belong to the main
 * thread, so clients and VMs are made there. */
struct controller {
    struct vcpud_client *c;
    uint32_t vm;
    uint64_t result;
    struct vcpud_regs regs;
    int failures;
};

static void *drive_compute(void *arg)
{
    struct controller *ctl = arg;
    struct vcpud_client_status st = {0};
    for (;;) {
        struct vcpud_exit x;
        if (vcpud_client_run(ctl->c, ctl->vm, 0, NULL, &x, &st) < 0) {
            ctl->failures++;
            break;
        }
        if (x.kind == VCPUD_EXIT_HLT)
            break;
        if (x.kind == VCPUD_EXIT_IO_OUT && x.u.io.port == 0x51)
            ctl->result = vcpud_exit_io_value(&x, 0);
        else if (x.kind != VCPUD_EXIT_IO_OUT)
            ctl->failures++;
    }
    if (vcpud_client_get_regs(ctl->c, ctl->vm, 0, &ctl->regs, &st) < 0 ||
        vcpud_client_destroy_vm(ctl->c, ctl->vm, &st) < 0)
        ctl->failures++;
    return NULL;
}

static void four_controllers_at_once(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, "tcp", NULL);
    struct controller ctl[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        ctl[i] = (struct controller){.c = client_of(&s, NULL)};
        ctl[i].vm = guest_vm(ctl[i].c, GUEST(compute), VCPUD_MODE_REAL, false);
    }
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, drive_compute, &ctl[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) {
        vcpud_client_close(ctl[i].c);
        assert_int_equal(0, ctl[i].failures);
        assert_true(ctl[i].result != 0);
        assert_int_equal(ctl[0].result, ctl[i].result);
        assert_memory_equal(&ctl[0].regs, &ctl[i].regs, sizeof(ctl[0].regs));
    }
    assert_int_equal(0, server_stop(&s, SIGTERM));
}

/* ---- a controller that dies or freezes inside Run ---- */

/* The child: connect, Run the VM's vCPU, and never come back. */
static int child_run(const char *addr, uint32_t vm)
{
    struct vcpud_client *c;
    struct vcpud_client_status st = {0};
    struct vcpud_client_opts o = {.deadline_ms = 60000};
    if (vcpud_client_connect(addr, &o, &c, &st) < 0)
        return 3;
    struct vcpud_exit x;
    vcpud_client_run(c, vm, 0, NULL, &x, &st);
    return 4;
}

static pid_t spawn_runner(const struct server *s, uint32_t vm)
{
    char vmtext[16];
    snprintf(vmtext, sizeof(vmtext), "%u", vm);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Dies with the test, and holds none of its output pipes: ctest
         * waits for every holder of those. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execl(self_path, self_path, "--child-run", s->addr, vmtext,
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

/*
 * A new controller takes over: the guest runs to the end under it. Until
 * the server has noticed the old controller is gone, the vCPU is still
 * being run for it – and an exit sent to a frozen peer looks delivered, so
 * the guest is only let go once the server has cancelled the old Run.
 */
static void take_over(struct vcpud_client *c, uint32_t vm)
{
    struct vcpud_client_status st = {0};
    struct vcpud_regs r;
    int rc = -1;
    for (int i = 0; i < 1500; i++) {
        rc = vcpud_client_get_regs(c, vm, 0, &r, &st);
        if (rc == 0 || st.code != ST_FAILED_PRECONDITION)
            break;
        sleep_ms(10);
    }
    assert_ok(rc, &st);
    const uint8_t go = 0x5a;
    assert_ok(vcpud_client_write_memory(c, vm, 0x3000, &go, 1, &st), &st);
    struct vcpud_exit x;
    rc = vcpud_client_run(c, vm, 0, NULL, &x, &st);
    assert_ok(rc, &st);
    assert_int_equal(VCPUD_EXIT_IO_OUT, x.kind);
    assert_int_equal(0x5a, vcpud_exit_io_value(&x, 0));
    run_expect(c, vm, NULL, VCPUD_EXIT_HLT);
}

static void controller_killed_mid_run(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, "unix", NULL);
    struct vcpud_client *c = client_of(&s, NULL);
    uint32_t vm = guest_vm(c, GUEST(flag_wait), VCPUD_MODE_REAL, false);
    pid_t child = spawn_runner(&s, vm);
    wait_running(c, vm);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    take_over(c, vm);
    vcpud_client_close(c);
    assert_int_equal(0, server_stop(&s, SIGTERM));
}

/* A frozen controller keeps its connection open: only keepalive pings
 * (500 ms in these tests) reveal it. */
static void frozen_controller_is_noticed(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, "tcp", NULL);
    struct vcpud_client *c = client_of(&s, NULL);
    uint32_t vm = guest_vm(c, GUEST(flag_wait), VCPUD_MODE_REAL, false);
    pid_t child = spawn_runner(&s, vm);
    wait_running(c, vm);
    kill(child, SIGSTOP);
    take_over(c, vm);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    vcpud_client_close(c);
    assert_int_equal(0, server_stop(&s, SIGTERM));
}

/* ---- SIGTERM while guests run ---- */

struct spinner {
    struct vcpud_client *c;
    uint32_t vm;
    int rc;
    struct vcpud_exit exit;
    struct vcpud_client_status st;
};

static void *spin_until_stopped(void *arg)
{
    struct spinner *sp = arg;
    sp->rc = vcpud_client_run(sp->c, sp->vm, 0, NULL, &sp->exit, &sp->st);
    return NULL;
}

static void sigterm_with_guests_running(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, "unix", NULL);
    struct spinner sp[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        sp[i] = (struct spinner){.c = client_of(&s, NULL), .rc = 1};
        sp[i].vm = guest_vm(sp[i].c, GUEST(spin), VCPUD_MODE_REAL, false);
        pthread_create(&t[i], NULL, spin_until_stopped, &sp[i]);
    }
    struct vcpud_client *probe = client_of(&s, NULL);
    for (int i = 0; i < 3; i++)
        wait_running(probe, sp[i].vm);
    vcpud_client_close(probe);
    /* Exit 0 and, under ASan, no leak report (which would exit 23). */
    assert_int_equal(0, server_stop(&s, SIGTERM));
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        vcpud_client_close(sp[i].c);
        /* Answered with the cancelled guest's exit, or cut off by the
         * shutdown – never left hanging. */
        if (sp[i].rc == 0)
            assert_int_equal(VCPUD_EXIT_CANCELED, sp[i].exit.kind);
        else
            assert_true(sp[i].st.code == ST_UNAVAILABLE ||
                        sp[i].st.code == ST_CANCELLED);
    }
}

/* ---- limits, tenants, no server ---- */

static void limits_are_resource_exhausted(void **state)
{
    (void)state;
    struct server s;
    const char *args[] = {"--max-vms", "2", "--max-mem-per-vm", "1M",
                          "--max-mem-total", "1536K", NULL};
    server_start(&s, "unix", args);
    struct vcpud_client *c = client_of(&s, NULL);
    struct vcpud_client_status st = {0};
    uint32_t a, b, x;
    assert_ok(vcpud_client_create_vm(c, NULL, &a, &st), &st);
    assert_ok(vcpud_client_create_vm(c, NULL, &b, &st), &st);
    assert_status(ST_RESOURCE_EXHAUSTED, vcpud_client_create_vm(c, NULL, &x, &st),
                  &st, "limit of 2 VMs");
    assert_status(ST_RESOURCE_EXHAUSTED,
                  vcpud_client_add_region(c, a, 0, 0, 2u << 20, false, &st),
                  &st, "over the limit");
    assert_ok(vcpud_client_add_region(c, a, 0, 0, 1u << 20, false, &st), &st);
    assert_status(ST_RESOURCE_EXHAUSTED,
                  vcpud_client_add_region(c, b, 0, 0, 1u << 20, false, &st),
                  &st, "server's guest RAM");
    assert_ok(vcpud_client_destroy_vm(c, a, &st), &st);
    assert_ok(vcpud_client_add_region(c, b, 0, 0, 1u << 20, false, &st), &st);
    assert_ok(vcpud_client_create_vm(c, NULL, &x, &st), &st);
    vcpud_client_close(c);
    assert_int_equal(0, server_stop(&s, SIGTERM));
}

static void tenants_see_only_their_vms(void **state)
{
    (void)state;
    char path[] = "/tmp/vcpud-itest-tokens-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "alice-token-0123456789 alice\n"
                        "bob-token-9876543210abc bob\n";
    assert_int_equal(sizeof(text) - 1, write(fd, text, sizeof(text) - 1));
    close(fd);
    struct server s;
    const char *args[] = {"--token-file", path, NULL};
    server_start(&s, "tcp", args);
    struct vcpud_client *alice = client_of(&s, "alice-token-0123456789");
    struct vcpud_client *bob = client_of(&s, "bob-token-9876543210abc");
    struct vcpud_client *nobody = client_of(&s, NULL);
    struct vcpud_client *forger = client_of(&s, "alice-token-012345678X");
    struct vcpud_client_status st = {0};

    uint32_t vm = guest_vm(alice, GUEST(hlt), VCPUD_MODE_REAL, false);
    struct vcpud_client_vm_info info[2];
    size_t n = 9;
    assert_ok(vcpud_client_list_vms(bob, info, 2, &n, &st), &st);
    assert_int_equal(0, n);
    struct vcpud_exit x;
    assert_status(ST_NOT_FOUND, vcpud_client_run(bob, vm, 0, NULL, &x, &st),
                  &st, "no VM");
    assert_status(ST_NOT_FOUND, vcpud_client_destroy_vm(bob, vm, &st), &st,
                  "no VM");
    uint8_t byte = 1;
    assert_status(ST_NOT_FOUND,
                  vcpud_client_write_memory(bob, vm, 0x1000, &byte, 1, &st),
                  &st, "no VM");
    assert_status(ST_UNAUTHENTICATED,
                  vcpud_client_list_vms(nobody, info, 2, &n, &st), &st,
                  "authorization");
    assert_status(ST_UNAUTHENTICATED,
                  vcpud_client_run(forger, vm, 0, NULL, &x, &st), &st,
                  "unknown token");
    /* Alice's guest was not disturbed by any of that. */
    run_expect(alice, vm, NULL, VCPUD_EXIT_HLT);
    vcpud_client_close(alice);
    vcpud_client_close(bob);
    vcpud_client_close(nobody);
    vcpud_client_close(forger);
    assert_int_equal(0, server_stop(&s, SIGTERM));
    unlink(path);
}

static void no_server_is_unavailable(void **state)
{
    (void)state;
    struct vcpud_client *c;
    struct vcpud_client_status st = {0};
    struct vcpud_client_opts o = {.deadline_ms = 3000};
    assert_ok(vcpud_client_connect("unix:/tmp/vcpud-itest-nobody-here.sock",
                                   &o, &c, &st),
              &st);
    uint32_t vm;
    assert_int_equal(-ECONNREFUSED, vcpud_client_create_vm(c, NULL, &vm, &st));
    assert_int_equal(ST_UNAVAILABLE, st.code);
    vcpud_client_close(c);
}

int main(int argc, char **argv)
{
    self_path = argv[0];
    if (argc == 4 && strcmp(argv[1], "--child-run") == 0)
        return child_run(argv[2], (uint32_t)strtoul(argv[3], NULL, 10));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(four_controllers_at_once),
        cmocka_unit_test(controller_killed_mid_run),
        cmocka_unit_test(frozen_controller_is_noticed),
        cmocka_unit_test(sigterm_with_guests_running),
        cmocka_unit_test(limits_are_resource_exhausted),
        cmocka_unit_test(tenants_see_only_their_vms),
        cmocka_unit_test(no_server_is_unavailable),
    };
    return itest_main(argc, argv, "integration-resilience", tests,
                      sizeof(tests) / sizeof(tests[0]));
}
