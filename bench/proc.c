/* proc.c: starting and stopping the benchmark's helper processes. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "proc.h"

#define MAX_TMP 32

static char tmp_paths[MAX_TMP][128];
static volatile sig_atomic_t ntmp;

void bench_tmp_path(const char *path)
{
    if (ntmp < MAX_TMP && strlen(path) < sizeof(tmp_paths[0])) {
        strcpy(tmp_paths[ntmp], path);
        ntmp = ntmp + 1;
    }
}

void bench_unlink_all(void)
{
    for (sig_atomic_t i = 0; i < ntmp; i++)
        unlink(tmp_paths[i]);
}

void bench_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

int bench_spawn(struct bench_proc *p, const char *const *argv, int keep_fd,
                bool capture, const char *log)
{
    int pipefd[2] = {-1, -1};
    p->pid = 0;
    p->out_fd = -1;
    if (capture && pipe2(pipefd, O_CLOEXEC) < 0)
        return -errno;
    int logfd = -1;
    if (!capture) {
        logfd = open(log ? log : "/dev/null",
                     O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (logfd < 0)
            return -errno;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = -errno;
        if (capture) {
            close(pipefd[0]);
            close(pipefd[1]);
        } else {
            close(logfd);
        }
        return e;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls from here to exec. A helper must
         * not outlive an interrupted benchmark. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        if (capture) {
            dup2(pipefd[1], 1);
        } else {
            dup2(logfd, 1);
            dup2(logfd, 2);
        }
        if (keep_fd >= 0) {
            int flags = fcntl(keep_fd, F_GETFD);
            fcntl(keep_fd, F_SETFD, flags & ~FD_CLOEXEC);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (capture) {
        close(pipefd[1]);
        p->out_fd = pipefd[0];
    } else {
        close(logfd);
    }
    p->pid = pid;
    return 0;
}

int bench_read_line(struct bench_proc *p, char *buf, size_t len, int timeout_ms)
{
    size_t n = 0;
    uint64_t until = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
    while (n + 1 < len) {
        uint64_t now = bench_now_ns();
        if (now >= until)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = p->out_fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)((until - now) / 1000000u) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        char c;
        ssize_t got = read(p->out_fd, &c, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -EPIPE;
        if (c == '\n')
            break;
        buf[n++] = c;
    }
    buf[n] = '\0';
    return 0;
}

bool bench_alive(struct bench_proc *p)
{
    if (!p->pid)
        return false;
    int status;
    if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
        p->pid = 0;
        return false;
    }
    return true;
}

int bench_stop(struct bench_proc *p)
{
    int status = 0;
    if (p->out_fd >= 0) {
        close(p->out_fd);
        p->out_fd = -1;
    }
    if (!p->pid)
        return 0;
    kill(p->pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(p->pid, &status, WNOHANG) == p->pid)
            goto reaped;
        bench_sleep_ms(10);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &status, 0);
reaped:
    p->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
