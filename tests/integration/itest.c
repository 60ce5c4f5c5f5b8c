/* itest.c: starting and stopping vcpud for a test, and remote guests. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"

void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void dump_log(const struct server *s)
{
    FILE *f = fopen(s->log, "r");
    if (!f)
        return;
    char line[512];
    fprintf(stderr, "---- vcpud log ----\n");
    while (fgets(line, sizeof(line), f))
        fputs(line, stderr);
    fprintf(stderr, "-------------------\n");
    fclose(f);
}

/* The server prints "listening on ADDR (backend ...)" once it serves. */
static bool find_listen_line(const struct server *s, const char *prefix,
                             char *addr, size_t len)
{
    FILE *f = fopen(s->log, "r");
    if (!f)
        return false;
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        const char *p = strstr(line, "listening on ");
        if (!p)
            continue;
        p += strlen("listening on ");
        const char *end = strstr(p, " (backend");
        if (!end || strncmp(p, prefix, strlen(prefix)) != 0)
            continue;
        snprintf(addr, len, "%.*s", (int)(end - p), p);
        found = true;
    }
    fclose(f);
    return found;
}

void server_start(struct server *s, const char *transport,
                  const char *const *extra)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->log, sizeof(s->log), "/tmp/vcpud-itest-%d-XXXXXX", getpid());
    int logfd = mkstemp(s->log);
    assert_true(logfd >= 0);

    char listen[128], prefix[64];
    if (strcmp(transport, "unix") == 0) {
        snprintf(listen, sizeof(listen), "unix:%s.sock", s->log);
        snprintf(prefix, sizeof(prefix), "unix:");
    } else if (strcmp(transport, "tcp6") == 0) {
        snprintf(listen, sizeof(listen), "[::1]:0");
        snprintf(prefix, sizeof(prefix), "[::1]:");
    } else {
        snprintf(listen, sizeof(listen), "127.0.0.1:0");
        snprintf(prefix, sizeof(prefix), "127.0.0.1:");
    }
    const char *argv[32] = {VCPUD_SERVER_PATH,
                            "--listen",
                            listen,
                            "--keepalive-ms",
                            "500",
                            "--keepalive-timeout-ms",
                            "3000", /* the nested guest is slow to answer */
                            "--grace-ms",
                            "1000"};
    size_t n = 9;
    for (size_t i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;

    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        dup2(logfd, 2);
        dup2(logfd, 1);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(logfd);
    for (int i = 0; i < 2000; i++) {
        if (find_listen_line(s, prefix, s->addr, sizeof(s->addr)))
            return;
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            dump_log(s);
            fail_msg("vcpud exited early with status %d", status);
        }
        sleep_ms(5);
    }
    dump_log(s);
    fail_msg("vcpud did not start listening on %s", listen);
}

int server_http_port(const struct server *s)
{
    static const char marker[] = "/metrics on http://";
    for (int i = 0; i < 400; i++) {
        FILE *f = fopen(s->log, "r");
        char line[512];
        while (f && fgets(line, sizeof(line), f)) {
            const char *p = strstr(line, marker);
            const char *colon = p ? strrchr(p, ':') : NULL;
            if (colon) {
                fclose(f);
                return atoi(colon + 1);
            }
        }
        if (f)
            fclose(f);
        sleep_ms(5);
    }
    return -1;
}

int server_stop(struct server *s, int sig)
{
    kill(s->pid, sig);
    int status = 0;
    for (int i = 0; i < 4000; i++) {
        if (waitpid(s->pid, &status, WNOHANG) == s->pid)
            break;
        if (i == 3999) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            dump_log(s);
            fail_msg("vcpud did not stop within 20 s");
        }
        sleep_ms(5);
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status)
                                 : 128 + WTERMSIG(status);
    if (code != 0)
        dump_log(s);
    unlink(s->log);
    return code;
}

struct server srv;
struct vcpud_client *cli;

int itest_setup(void **state, const char *transport)
{
    (void)state;
    server_start(&srv, transport, NULL);
    cli = client_of(&srv, NULL);
    return 0;
}

int itest_teardown(void **state)
{
    (void)state;
    vcpud_client_close(cli);
    assert_int_equal(0, server_stop(&srv, SIGTERM));
    return 0;
}

struct vcpud_client *client_of(const struct server *s, const char *token)
{
    struct vcpud_client *c;
    struct vcpud_client_status st = {0};
    struct vcpud_client_opts o = {.token = token, .deadline_ms = 20000};
    assert_ok(vcpud_client_connect(s->addr, &o, &c, &st), &st);
    return c;
}

uint32_t guest_vm(struct vcpud_client *c, struct guest g, enum vcpud_mode mode,
                  bool irqchip)
{
    struct vcpud_client_status st = {0};
    struct vcpud_vm_config cfg = {.max_vcpus = 2, .irqchip = irqchip};
    uint32_t vm;
    assert_ok(vcpud_client_create_vm(c, &cfg, &vm, &st), &st);
    assert_ok(vcpud_client_add_region(c, vm, 0, 0, RAM_SIZE, false, &st),
              &st);
    assert_ok(vcpud_client_write_memory(c, vm, GUEST_LOAD, g.code, g.len,
                                        &st),
              &st);
    assert_ok(vcpud_client_create_vcpu(c, vm, 0, &st), &st);
    assert_ok(vcpud_client_setup_mode(c, vm, 0, mode, GUEST_LOAD, STACK,
                                      TABLES, &st),
              &st);
    return vm;
}

struct vcpud_exit run_expect(struct vcpud_client *c, uint32_t vm,
                             const struct vcpud_client_run *req,
                             enum vcpud_exit_kind kind)
{
    struct vcpud_client_status st = {0};
    struct vcpud_exit x;
    assert_ok(vcpud_client_run(c, vm, 0, req, &x, &st), &st);
    if (x.kind != kind)
        fail_msg("expected a %s exit, got %s", vcpud_exit_kind_name(kind),
                 vcpud_exit_kind_name(x.kind));
    return x;
}

void wait_running(struct vcpud_client *c, uint32_t vm)
{
    struct vcpud_client_status st = {0};
    for (int i = 0; i < 6000; i++) {
        struct vcpud_regs r;
        if (vcpud_client_get_regs(c, vm, 0, &r, &st) < 0 &&
            st.code == ST_FAILED_PRECONDITION)
            return;
        sleep_ms(5);
    }
    fail_msg("no Run reached vCPU 0 of VM %u within 30 s", vm);
}

static void *bg_run_main(void *arg)
{
    struct bg_run *r = arg;
    r->rc = vcpud_client_run(r->c, r->vm, 0, NULL, &r->exit, &r->st);
    return NULL;
}

void bg_run_start(struct bg_run *r, struct vcpud_client *c, uint32_t vm)
{
    *r = (struct bg_run){.c = c, .vm = vm};
    assert_int_equal(0, pthread_create(&r->thread, NULL, bg_run_main, r));
    wait_running(c, vm);
}

void bg_run_join(struct bg_run *r)
{
    pthread_join(r->thread, NULL);
}

int itest_main(int argc, char **argv, const char *group,
               const struct CMUnitTest *tests, size_t n)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1) {
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
