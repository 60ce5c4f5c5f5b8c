/* main.c: vcpud_bench – set every item up, measure them all interleaved,
 * print the rows with their ratios; also the entry of its own helper
 * processes. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "proc.h"

#ifndef VCPUD_SERVER_PATH
#define VCPUD_SERVER_PATH "vcpud"
#endif

static const char usage[] =
    "usage: vcpud_bench [--json] [--iters N] [--warmup N] [--gdb-iters N]\n"
    "                   [--rounds N] [--vcpud PATH] [--vcpud-arg ARG]...\n"
    "                   [--only LIST]\n"
    "  --json          one JSON object per row and line, for tools\n"
    "  --iters N       timed round trips per item and transport "
    "(default 20000)\n"
    "  --warmup N      untimed round trips before them (default 2000)\n"
    "  --gdb-iters N   timed round trips of the QEMU gdbstub rows, 0.2-1 ms "
    "each (default 5000)\n"
    "  --rounds N      interleaved blocks every item's round trips come in\n"
    "                  (default 10)\n"
    "  --vcpud PATH    the server to start (default: this build's)\n"
    "  --vcpud-arg ARG one more argument for it (repeatable, e.g.\n"
    "                  --vcpud-arg --cq-threads=1)\n"
    "  --only LIST     comma-separated groups (local,raw,grpc,vcpud,gdbstub)\n"
    "                  and rows (stream,run_unary,py_stream,...) to run\n";

static bool parse_count(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s || v == 0 || v > 10000000)
        return false;
    *out = (size_t)v;
    return true;
}

/* The helper processes: this binary again, with --child KIND ARGS. */
static int child_main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[2], "raw-echo") == 0)
        return bench_raw_echo_main(atoi(argv[3]), (size_t)atol(argv[4]));
    if (argc == 4 && strcmp(argv[2], "grpc-server") == 0)
        return bench_grpc_server_main(argv[3]);
    fprintf(stderr, "vcpud_bench: bad --child arguments\n");
    return 2;
}

/* Interrupted: the helpers get SIGTERM as we die; their files go now. */
static void on_signal(int sig)
{
    bench_unlink_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* The 1-minute load average: other work on the machine shows in every
 * figure. */
static void loadavg(char *buf, size_t len)
{
    snprintf(buf, len, "?");
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f)
        return;
    double l1;
    if (fscanf(f, "%lf", &l1) == 1)
        snprintf(buf, len, "%.2f", l1);
    fclose(f);
}

static void run_raw(const struct bench_config *cfg)
{
    bench_raw(cfg, bench_exit_message_size());
}

/* The items in the order they run and print. */
static const struct {
    const char *group;
    const char *what;
    void (*run)(const struct bench_config *cfg);
} groups[] = {
    {"local", "local: the in-process core", bench_local},
    {"raw", "raw: socket ping-pong", run_raw},
    {"grpc", "grpc: bare gRPC unary call and stream, from C and Python",
     bench_grpc},
    {"vcpud", "vcpud: unary Run and the Attach stream, from C and Python",
     bench_vcpud},
    {"gdbstub", "gdbstub: QEMU's gdbstub under KVM", bench_gdbstub},
};
#define NGROUPS (sizeof(groups) / sizeof(groups[0]))

static bool is_group(const char *name)
{
    for (size_t i = 0; i < NGROUPS; i++)
        if (strcmp(groups[i].group, name) == 0)
            return true;
    return false;
}

/* KVM must be local and usable: a nested guest's exits cost milliseconds,
 * which would measure the emulation, not vcpud. */
static void probe_kvm(struct bench_config *cfg)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        cfg->have_kvm = true;
        return;
    }
    snprintf(cfg->no_kvm, sizeof(cfg->no_kvm),
             "no usable /dev/kvm (%s): KVM items need a local KVM, not a "
             "nested guest",
             strerror(errno));
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "--child") == 0)
        return child_main(argc, argv);

    static char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    self[n > 0 ? n : 0] = '\0';
    struct bench_config cfg = {
        .iters = 20000,
        .warmup = 2000,
        .gdb_iters = 5000,
        .rounds = 10,
        .vcpud = VCPUD_SERVER_PATH,
        .self = self,
    };
    bool json = false;
    const char *only = NULL;
    size_t nvargs = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(a, "--json") == 0)
            json = true;
        else if (strcmp(a, "--iters") == 0 && v)
            ok = parse_count(argv[++i], &cfg.iters);
        else if (strcmp(a, "--warmup") == 0 && v)
            ok = parse_count(argv[++i], &cfg.warmup);
        else if (strcmp(a, "--rounds") == 0 && v)
            ok = parse_count(argv[++i], &cfg.rounds);
        else if (strcmp(a, "--gdb-iters") == 0 && v)
            ok = parse_count(argv[++i], &cfg.gdb_iters);
        else if (strcmp(a, "--vcpud") == 0 && v)
            cfg.vcpud = argv[++i];
        else if (strcmp(a, "--vcpud-arg") == 0 && v && nvargs < 7)
            cfg.vcpud_args[nvargs++] = argv[++i];
        else if (strcmp(a, "--only") == 0 && v)
            only = argv[++i];
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else
            ok = false;
        if (!ok) {
            fprintf(stderr, "vcpud_bench: bad argument '%s'\n%s", a, usage);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    probe_kvm(&cfg);
    if (!cfg.have_kvm)
        fprintf(stderr, "vcpud_bench: %s; skipping the KVM items\n",
                cfg.no_kvm);

    bench_rows_only(only);
    for (size_t i = 0; i < NGROUPS; i++) {
        if (!bench_rows_group(groups[i].group, is_group))
            continue;
        fprintf(stderr, "vcpud_bench: setting up %s\n", groups[i].what);
        groups[i].run(&cfg);
    }
    char load0[64], load1[64];
    loadavg(load0, sizeof(load0));
    fprintf(stderr, "vcpud_bench: measuring (load average %s)\n", load0);
    bench_items_run(cfg.rounds);
    loadavg(load1, sizeof(load1));
    bench_rows_ratios();
    if (!json)
        printf("vcpud_bench: %zu round trips per row (gdbstub rows %zu) in "
               "%zu interleaved rounds, after %zu warm-up; raw messages of "
               "%zu bytes; ratios of medians; load average %s before, %s "
               "after\n",
               cfg.iters, cfg.gdb_iters, cfg.rounds, cfg.warmup,
               bench_exit_message_size(), load0, load1);
    bench_rows_print(json);
    bench_cleanup();
    return 0;
}
