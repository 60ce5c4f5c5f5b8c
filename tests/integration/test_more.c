/* test_more.c: the remaining corners – busy vCPUs, read bounds, mode
 * setup, the local APIC path, snapshots between kinds of VM, and the HTTP
 * health and metrics endpoint. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"

static int setup(void **state)
{
    return itest_setup(state, "unix");
}

static void busy_vcpu_refuses_state_calls(void **state)
{
    (void)state;
    struct vcpud_client_status st = {0};
    uint32_t vm = guest_vm(cli, GUEST(spin), VCPUD_MODE_REAL, false);
    struct bg_run r;
    bg_run_start(&r, cli, vm);
    void *snap;
    size_t len;
    assert_status(ST_FAILED_PRECONDITION,
                  vcpud_client_snapshot(cli, vm, 0, &snap, &len, &st), &st,
                  "busy");
    struct vcpud_regs regs = {0};
    assert_status(ST_FAILED_PRECONDITION,
                  vcpud_client_set_regs(cli, vm, 0, &regs, &st), &st, "busy");
    /* Injection is allowed while it runs. */
    assert_ok(vcpud_client_inject_nmi(cli, vm, 0, &st), &st);
    assert_ok(vcpud_client_cancel(cli, vm, 0, &st), &st);
    bg_run_join(&r);
    assert_ok(r.rc, &r.st);
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
}

static void read_memory_bounds(void **state)
{
    (void)state;
    struct vcpud_client_status st = {0};
    uint32_t vm;
    assert_ok(vcpud_client_create_vm(cli, NULL, &vm, &st), &st);
    assert_ok(vcpud_client_add_region(cli, vm, 0, 0, 0x10000, false, &st),
              &st);
    uint8_t b[16];
    assert_status(ST_INVALID_ARGUMENT,
                  vcpud_client_read_memory(cli, vm, 0xfff8, b, 16, &st), &st,
                  "not backed");
    assert_status(ST_NOT_FOUND,
                  vcpud_client_read_memory(cli, vm + 7, 0, b, 16, &st), &st,
                  "no VM");
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
}

static void setup_each_mode(void **state)
{
    (void)state;
    struct vcpud_client_status st = {0};
    static const struct {
        enum vcpud_mode mode;
        uint64_t cr0_set, efer_set;
        uint8_t l, db;
    } modes[] = {
        {VCPUD_MODE_REAL, 0, 0, 0, 0},
        {VCPUD_MODE_PROTECTED, 1, 0, 0, 1},
        {VCPUD_MODE_LONG, 0x80000001ull, 0x500, 1, 0},
    };
    for (size_t i = 0; i < 3; i++) {
        uint32_t vm = guest_vm(cli, GUEST(hlt), modes[i].mode, false);
        struct vcpud_sregs s;
        assert_ok(vcpud_client_get_sregs(cli, vm, 0, &s, &st), &st);
        assert_int_equal(modes[i].cr0_set, s.cr0 & modes[i].cr0_set);
        if (modes[i].mode == VCPUD_MODE_REAL)
            assert_int_equal(0, s.cr0 & 1);
        assert_int_equal(modes[i].efer_set, s.efer & 0x500);
        assert_int_equal(modes[i].l, s.cs.l);
        assert_int_equal(modes[i].db, s.cs.db);
        run_expect(cli, vm, NULL, VCPUD_EXIT_HLT);
        assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
    }
}

static void apic_interrupt_remote(void **state)
{
    (void)state;
    struct vcpud_client_status st = {0};
    uint32_t vm = guest_vm(cli, GUEST(apic_irq), VCPUD_MODE_LONG, true);
    assert_status(ST_FAILED_PRECONDITION,
                  vcpud_client_inject_interrupt(cli, vm, 0, 0x40, &st), &st,
                  "APIC");
    run_expect(cli, vm, NULL, VCPUD_EXIT_IO_OUT);
    assert_ok(vcpud_client_inject_interrupt(cli, vm, 0, 0x40, &st), &st);
    const struct vcpud_client_run lim = {.timeout_ms = 5000};
    struct vcpud_exit x = run_expect(cli, vm, &lim, VCPUD_EXIT_IO_OUT);
    assert_int_equal(0x41, x.u.io.port);
    assert_ok(vcpud_client_destroy_vm(cli, vm, &st), &st);
}

static void snapshot_needs_same_kind_of_vm(void **state)
{
    (void)state;
    struct vcpud_client_status st = {0};
    uint32_t chip = guest_vm(cli, GUEST(hlt), VCPUD_MODE_LONG, true);
    uint32_t plain = guest_vm(cli, GUEST(hlt), VCPUD_MODE_LONG, false);
    void *snap;
    size_t len;
    assert_ok(vcpud_client_snapshot(cli, chip, 0, &snap, &len, &st), &st);
    assert_status(ST_INVALID_ARGUMENT,
                  vcpud_client_restore(cli, plain, 0, snap, len, &st), &st,
                  "irqchip");
    assert_status(ST_INVALID_ARGUMENT,
                  vcpud_client_restore(cli, plain, 0, "VCPUDSNP", 8, &st),
                  &st, "snapshot");
    free(snap);
    run_expect(cli, plain, NULL, VCPUD_EXIT_HLT); /* untouched */
    assert_ok(vcpud_client_destroy_vm(cli, chip, &st), &st);
    assert_ok(vcpud_client_destroy_vm(cli, plain, &st), &st);
}

/* A plain HTTP/1.0 GET over a socket: status line and body. */
static int http_get(int port, const char *path, char *out, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    char req[128];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    ssize_t r;
    while (got + 1 < len && (r = read(fd, out + got, len - got - 1)) > 0)
        got += (size_t)r;
    out[got] = '\0';
    close(fd);
    return 0;
}

/* The value of the unlabelled metric (name) in a /metrics body, or -1. */
static double metric(const char *body, const char *name)
{
    char line[128];
    snprintf(line, sizeof(line), "\n%s ", name);
    const char *p = strstr(body, line);
    return p ? strtod(p + strlen(line), NULL) : -1;
}

static void http_health_and_metrics(void **state)
{
    (void)state;
    const char *args[] = {"--http", "127.0.0.1:0", NULL};
    struct server s;
    server_start(&s, "tcp", args);
    int port = server_http_port(&s);
    assert_true(port > 0);
    struct vcpud_client *c = client_of(&s, NULL);
    struct vcpud_client_status st = {0};
    /* One exit over Run, one over a stream. */
    uint32_t vm = guest_vm(c, GUEST(hlt), VCPUD_MODE_REAL, false);
    run_expect(c, vm, NULL, VCPUD_EXIT_HLT);
    vm = guest_vm(c, GUEST(hlt), VCPUD_MODE_REAL, false);
    struct vcpud_stream *stream;
    assert_ok(vcpud_client_attach(c, vm, 0, NULL, &stream, &st), &st);
    struct vcpud_exit x;
    assert_ok(vcpud_stream_run(stream, NULL, &x, NULL, NULL, &st), &st);
    assert_int_equal(VCPUD_EXIT_HLT, x.kind);
    assert_ok(vcpud_stream_close(stream, &st), &st);
    char body[4096];
    assert_int_equal(0, http_get(port, "/healthz", body, sizeof(body)));
    assert_non_null(strstr(body, " 200 "));
    assert_non_null(strstr(body, "ok"));
    assert_int_equal(0, http_get(port, "/metrics", body, sizeof(body)));
    assert_non_null(strstr(body, "vcpud_vms 2"));
    assert_non_null(strstr(body, "vcpud_vcpus 2"));
    assert_non_null(strstr(body, "vcpud_guest_memory_bytes 4194304"));
    assert_non_null(strstr(body, "vcpud_exits_total{via=\"run\"} 1\n"));
    assert_non_null(strstr(body, "vcpud_exits_total{via=\"attach\"} 1\n"));
    /* Two runs and one hand-over took some time, and not minutes. */
    double guest = metric(body, "vcpud_exit_guest_seconds_total");
    double handover = metric(body, "vcpud_run_handover_seconds_total");
    double reply = metric(body, "vcpud_run_reply_seconds_total");
    assert_true(guest > 0 && guest < 60);
    assert_true(handover > 0 && handover < 60);
    assert_true(reply > 0 && reply < 60);
    assert_int_equal(0, http_get(port, "/nothing", body, sizeof(body)));
    assert_non_null(strstr(body, " 404 "));
    vcpud_client_close(c);
    assert_int_equal(0, server_stop(&s, SIGTERM));
}

/* The soft open-file limit of process (pid), from /proc; 0 if unread. */
static unsigned long soft_fd_limit(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
    FILE *f = fopen(path, "r");
    unsigned long soft = 0;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "Max open files", 14) == 0)
            soft = strtoul(line + 14, NULL, 10);
    if (f)
        fclose(f);
    return soft;
}

/* Started with a soft limit of 256, the server takes the hard one: a
 * thousand descriptors are a few hundred VMs. */
static void open_file_limit_raised(void **state)
{
    (void)state;
    struct rlimit mine;
    assert_int_equal(0, getrlimit(RLIMIT_NOFILE, &mine));
    if (mine.rlim_max <= 256)
        skip(); /* nothing to raise to */
    struct rlimit low = {.rlim_cur = 256, .rlim_max = mine.rlim_max};
    assert_int_equal(0, setrlimit(RLIMIT_NOFILE, &low));
    struct server s;
    server_start(&s, "unix", NULL);
    assert_int_equal(0, setrlimit(RLIMIT_NOFILE, &mine));
    rlim_t want = mine.rlim_max < (1 << 20) ? mine.rlim_max : (1 << 20);
    assert_int_equal(want, soft_fd_limit(s.pid));
    assert_int_equal(0, server_stop(&s, SIGTERM));
}

ITEST_MAIN("integration-more",
           cmocka_unit_test_setup_teardown(busy_vcpu_refuses_state_calls, setup,
                                           itest_teardown),
           cmocka_unit_test_setup_teardown(read_memory_bounds, setup,
                                           itest_teardown),
           cmocka_unit_test_setup_teardown(setup_each_mode, setup,
                                           itest_teardown),
           cmocka_unit_test_setup_teardown(apic_interrupt_remote, setup,
                                           itest_teardown),
           cmocka_unit_test_setup_teardown(snapshot_needs_same_kind_of_vm,
                                           setup, itest_teardown),
           cmocka_unit_test(http_health_and_metrics),
           cmocka_unit_test(open_file_limit_raised))
