/* py_drv.c: rows driven by a Python grpcio controller – bench/py_client.py
 * under Debian's /usr/bin/python3, one process per row and transport.
 *
 * The controller times each round trip itself (CLOCK_MONOTONIC, like ours)
 * and sends the times back a block at a time, so its rows take part in the
 * interleaved rounds like every other row; its CPU time is the row's
 * cli_cpu. The conversation, on a socketpair whose end it gets by number:
 *
 *   controller: "ok\n" once set up, or "skip REASON\n"
 *   bench:      "N\n"  a block of N round trips
 *   controller: "ok N\n" and N native uint64 times in ns, or "fail REASON\n"
 *
 * End of file ends it: the controller closes its stream, destroys its VM
 * and exits. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "proc.h"

#ifndef VCPUD_BENCH_PY
#define VCPUD_BENCH_PY "py_client.py"
#endif

/* Debian's, by path: the python3 first on PATH may be one without grpcio. */
#define PYTHON "/usr/bin/python3"
/* Importing grpc, generating stubs and loading a guest take seconds in the
 * nested QEMU guest (TCG); a block gets room for millisecond exits there. */
#define SETUP_MS 120000
#define BLOCK_MS(n) (30000 + 50 * (int)(n))
#define MAX_ARGS 24

struct py {
    struct bench_proc proc; /* proc.out_fd: our end of the socketpair */
    char log[128];          /* its stdout and stderr; kept when it failed */
    char row[2 * BENCH_NAME_MAX];
    bool keep_log;
};

#define LAST_LINE_MAX 160

/* The last line of the controller's log (a traceback's last line names the
 * error), or "" when there is none. */
static void last_log_line(const struct py *p, char buf[LAST_LINE_MAX])
{
    char line[LAST_LINE_MAX];
    buf[0] = '\0';
    FILE *f = fopen(p->log, "r");
    while (f && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0])
            memcpy(buf, line, sizeof(line));
    }
    if (f)
        fclose(f);
}

/* Why the conversation broke (rc from bench_read_line or a read). */
static int gone(struct py *p, int rc, const char *when, char *why)
{
    char last[LAST_LINE_MAX];
    last_log_line(p, last);
    p->keep_log = true;
    snprintf(why, BENCH_REASON_MAX,
             "the Python controller %s %s: %.150s (log %s)",
             rc == -ETIMEDOUT ? "timed out" : "exited", when,
             last[0] ? last : "no message", p->log);
    return rc < 0 ? rc : -EPIPE;
}

/* Read (len) bytes by (until) (bench_now_ns time). 0 or negative errno. */
static int read_full(int fd, void *buf, size_t len, uint64_t until)
{
    uint8_t *b = buf;
    while (len > 0) {
        uint64_t now = bench_now_ns();
        if (now >= until)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)((until - now) / 1000000u) + 1);
        if (r < 0 && errno != EINTR)
            return -errno;
        if (r <= 0)
            continue;
        ssize_t got = read(fd, b, len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got < 0 ? -errno : -EPIPE;
        b += got;
        len -= (size_t)got;
    }
    return 0;
}

/* Warm-up: the times are read and dropped. */
static int discard_times(int fd, size_t n, uint64_t until)
{
    uint64_t buf[256];
    int rc = 0;
    while (rc == 0 && n > 0) {
        size_t k = n < 256 ? n : 256;
        rc = read_full(fd, buf, k * sizeof(*buf), until);
        n -= k;
    }
    return rc;
}

static int py_block(void *ctx, size_t n, uint64_t *ns, char *why)
{
    struct py *p = ctx;
    int fd = p->proc.out_fd;
    char cmd[32], line[BENCH_REASON_MAX];
    int len = snprintf(cmd, sizeof(cmd), "%zu\n", n);
    if (write(fd, cmd, (size_t)len) != len)
        return gone(p, -errno, "before a block", why);
    int rc = bench_read_line(&p->proc, line, sizeof(line), BLOCK_MS(n));
    if (rc < 0)
        return gone(p, rc, "in a block", why);
    if (strncmp(line, "fail ", 5) == 0) {
        snprintf(why, BENCH_REASON_MAX, "%s", line + 5);
        return -EIO;
    }
    size_t got;
    if (sscanf(line, "ok %zu", &got) != 1 || got != n) {
        snprintf(why, BENCH_REASON_MAX,
                 "the Python controller answered '%.200s' to a block of %zu",
                 line, n);
        return -EPROTO;
    }
    uint64_t until = bench_now_ns() + (uint64_t)BLOCK_MS(n) * 1000000u;
    rc = ns ? read_full(fd, ns, n * sizeof(*ns), until)
            : discard_times(fd, n, until);
    return rc < 0 ? gone(p, rc, "sending times", why) : 0;
}

/* End of file asks the controller to clean up (its stream, its VM); it
 * gets ten seconds (TCG in the nested guest is slow) before bench_stop's
 * SIGTERM. An exit status other than 0 is reported and its log kept. */
static void py_stop(void *arg)
{
    struct py *p = arg;
    int status, code = 0; /* as the shell shows it */
    if (p->proc.out_fd >= 0) {
        close(p->proc.out_fd);
        p->proc.out_fd = -1;
    }
    for (int i = 0; i < 1000 && p->proc.pid; i++) {
        if (waitpid(p->proc.pid, &status, WNOHANG) != p->proc.pid) {
            bench_sleep_ms(10);
            continue;
        }
        p->proc.pid = 0;
        code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (p->proc.pid)
        code = bench_stop(&p->proc);
    if (code != 0) {
        fprintf(stderr,
                "vcpud_bench: the Python controller of %s exited with "
                "status %d (log %s)\n",
                p->row, code, p->log);
        p->keep_log = true;
    }
    if (!p->keep_log)
        unlink(p->log);
    free(p);
}

void bench_py_item(const struct bench_config *cfg, struct bench_row *row,
                   const char *addr, pid_t server, const char *const *extra)
{
    if (!row)
        return;
    if (access(PYTHON, X_OK) != 0) {
        bench_row_skip(row, "no %s (Debian's python3 with python3-grpcio)",
                       PYTHON);
        return;
    }
    struct py *p = calloc(1, sizeof(*p));
    int sv[2];
    if (!p || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        bench_row_skip(row, "cannot set up a Python controller: %s",
                       p ? strerror(errno) : "out of memory");
        free(p);
        return;
    }
    p->proc.out_fd = -1;
    snprintf(p->log, sizeof(p->log), "/tmp/vcpud-bench-%d-%s-%s.log",
             (int)getpid(), row->name, row->transport);
    snprintf(p->row, sizeof(p->row), "%s %s", row->name, row->transport);
    bench_tmp_path(p->log);
    bench_defer(py_stop, p);

    char fd_arg[16];
    snprintf(fd_arg, sizeof(fd_arg), "%d", sv[1]);
    const char *argv[MAX_ARGS] = {PYTHON,  VCPUD_BENCH_PY, "--fd",   fd_arg,
                                  "--row", row->name,      "--addr", addr};
    size_t n = 8;
    for (size_t i = 0; extra && extra[i] && n < MAX_ARGS - 1; i++)
        argv[n++] = extra[i];
    int rc = bench_spawn(&p->proc, argv, sv[1], false, p->log);
    close(sv[1]);
    if (rc < 0) {
        close(sv[0]);
        bench_row_skip(row, "cannot start %s: %s", PYTHON, strerror(-rc));
        return;
    }
    p->proc.out_fd = sv[0];

    char line[BENCH_REASON_MAX], why[BENCH_REASON_MAX];
    rc = bench_read_line(&p->proc, line, sizeof(line), SETUP_MS);
    if (rc < 0) {
        gone(p, rc, "while setting up", why);
        bench_row_skip(row, "%s", why);
    } else if (strncmp(line, "skip ", 5) == 0) {
        bench_row_skip(row, "%s", line + 5);
    } else if (strcmp(line, "ok") != 0) {
        p->keep_log = true;
        bench_row_skip(row, "the Python controller said '%.200s' (log %s)",
                       line, p->log);
    } else {
        bench_item_add_block(row, py_block, p, p->proc.pid, server, cfg->warmup,
                             cfg->iters);
    }
}
