/* proc.h: the helper processes of the benchmark – the echo and gRPC
 * servers, vcpud, QEMU – started and stopped by pid. */
#ifndef VCPUD_BENCH_PROC_H
#define VCPUD_BENCH_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct bench_proc {
    pid_t pid;  /* 0 when not running */
    int out_fd; /* read end of its stdout when captured, else -1 */
};

/*
 * Start (argv) (argv[0] a path). (keep_fd), when >= 0, stays open in the
 * child under the same number. With (capture) its stdout is a pipe read
 * through p->out_fd; otherwise stdout and stderr go to (log) (a path,
 * truncated; NULL: /dev/null). stdin is /dev/null. 0 or negative errno.
 */
int bench_spawn(struct bench_proc *p, const char *const *argv, int keep_fd,
                bool capture, const char *log);

/* Read one line of the child's stdout into (buf), waiting up to
 * (timeout_ms). 0, or -ETIMEDOUT / -EPIPE (the child closed it). */
int bench_read_line(struct bench_proc *p, char *buf, size_t len,
                    int timeout_ms);

/* True while the child has not exited. */
bool bench_alive(struct bench_proc *p);

/* SIGTERM, up to 5 s to exit, then SIGKILL; reaps it. No-op when not
 * running. Returns its exit status as the shell shows it. */
int bench_stop(struct bench_proc *p);

/* Remember (path) (a file in /tmp the benchmark or a helper creates; at
 * most 127 bytes, copied) so that bench_unlink_all() can remove it. */
void bench_tmp_path(const char *path);

/* Remove every remembered path; async-signal-safe, for an interrupted
 * run (the helpers themselves die with us: PR_SET_PDEATHSIG). */
void bench_unlink_all(void);

/* Sleep (ms) milliseconds. */
void bench_sleep_ms(long ms);

#endif
