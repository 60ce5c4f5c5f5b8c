/* vcpud_drv.c: vcpud driven through libvcpud-client – the unary Run and
 * the Attach stream – against a vcpud subprocess listening on TCP and on
 * a unix socket. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "guests.h"
#include "proc.h"
#include "vcpud_client.h"

static const char *const transports[] = {"tcp", "unix"};
#define NTRANSPORTS 2

/* One item's state: a VM of its own with the guest loaded, on one client. */
struct drv {
    struct vcpud_client *c;
    uint32_t vm;
    bool have_vm;
    struct vcpud_stream *s;
    bool regs; /* registers travel with exits */
    bool pending_in;
};

static const uint64_t in_value = 0x5a;
static const struct vcpud_client_run answer_in = {
    .result = VCPUD_RESULT_IO, .io_values = &in_value, .io_count = 1};

static int fail(char *why, int rc, const char *what,
                const struct vcpud_client_status *st)
{
    snprintf(why, BENCH_REASON_MAX, "%s: %.300s (%s)", what, st->msg,
             vcpud_client_status_name(st->code));
    return rc;
}

/* The exit the benchmark guests make, and the registers when asked for. */
static int check_exit(struct drv *d, const struct vcpud_exit *x,
                      const struct vcpud_regs *r, char *why)
{
    if (x->kind != VCPUD_EXIT_IO_OUT && x->kind != VCPUD_EXIT_IO_IN) {
        snprintf(why, BENCH_REASON_MAX, "unexpected %s exit",
                 vcpud_exit_kind_name(x->kind));
        return -EPROTO;
    }
    if (r && (r->rip < BENCH_GUEST_LOAD || r->rip >= BENCH_GUEST_LOAD + 16)) {
        snprintf(why, BENCH_REASON_MAX,
                 "the exit's registers are missing (rip %#llx)",
                 (unsigned long long)r->rip);
        return -EPROTO;
    }
    d->pending_in = x->kind == VCPUD_EXIT_IO_IN;
    return 0;
}

/* ---- the steps: one per row kind ---- */

/* run_unary: one Run call per exit, carrying the previous IN's answer. */
static int step_run_unary(void *ctx, uint64_t *ns, char *why)
{
    struct drv *d = ctx;
    struct vcpud_client_status st;
    struct vcpud_exit x;
    uint64_t t0 = bench_now_ns();
    int rc = vcpud_client_run(d->c, d->vm, 0, d->pending_in ? &answer_in : NULL,
                              &x, &st);
    *ns = bench_now_ns() - t0;
    if (rc < 0)
        return fail(why, rc, "Run", &st);
    return check_exit(d, &x, NULL, why);
}

/* stream, stream_regs: one run command and its exit per step. */
static int step_stream_run(void *ctx, uint64_t *ns, char *why)
{
    struct drv *d = ctx;
    struct vcpud_client_status st;
    struct vcpud_exit x;
    struct vcpud_regs r = {.rip = ~0ull};
    uint64_t t0 = bench_now_ns();
    int rc = vcpud_stream_run(d->s, d->pending_in ? &answer_in : NULL, &x,
                              d->regs ? &r : NULL, NULL, &st);
    *ns = bench_now_ns() - t0;
    if (rc < 0)
        return fail(why, rc, "stream run", &st);
    return check_exit(d, &x, d->regs ? &r : NULL, why);
}

/* stream_getregs: a run (not timed), then the timed get_regs command. */
static int step_stream_getregs(void *ctx, uint64_t *ns, char *why)
{
    struct drv *d = ctx;
    struct vcpud_client_status st;
    uint64_t ignored;
    int rc = step_stream_run(ctx, &ignored, why);
    if (rc < 0)
        return rc;
    struct vcpud_regs r = {.rip = ~0ull};
    uint64_t t0 = bench_now_ns();
    rc = vcpud_stream_get_regs(d->s, &r, &st);
    *ns = bench_now_ns() - t0;
    if (rc < 0)
        return fail(why, rc, "stream get_regs", &st);
    if (r.rip < BENCH_GUEST_LOAD || r.rip >= BENCH_GUEST_LOAD + 16) {
        snprintf(why, BENCH_REASON_MAX, "get_regs: rip %#llx",
                 (unsigned long long)r.rip);
        return -EPROTO;
    }
    return 0;
}

/*
 * posted: the out-only guest's port is posted, so the guest never stops for
 * it; each run comes back as a POSTED exit carrying a full batch. The time
 * per step is divided by the writes delivered: per_s is guest writes per
 * second reaching the controller.
 */
static int step_posted(void *ctx, uint64_t *ns, char *why)
{
    struct drv *d = ctx;
    struct vcpud_client_status st;
    struct vcpud_exit x;
    uint64_t t0 = bench_now_ns();
    int rc = vcpud_stream_run(d->s, NULL, &x, NULL, NULL, &st);
    uint64_t dt = bench_now_ns() - t0;
    if (rc < 0)
        return fail(why, rc, "stream run", &st);
    if (x.kind != VCPUD_EXIT_POSTED || x.nposted == 0) {
        snprintf(why, BENCH_REASON_MAX,
                 "expected a POSTED exit with writes, got %s with %u",
                 vcpud_exit_kind_name(x.kind), x.nposted);
        return -EPROTO;
    }
    for (uint32_t i = 0; i < x.nposted; i++) {
        if (!x.posted[i].pio || x.posted[i].addr != 0x10) {
            snprintf(why, BENCH_REASON_MAX, "a posted write went astray");
            return -EPROTO;
        }
    }
    *ns = dt / x.nposted;
    return 0;
}

/* ---- the items ---- */

enum drive { DRIVE_UNARY, DRIVE_STREAM };

/*
 * Every vcpud row. A row whose step is NULL is printed as skipped with
 * (skip).
 */
static const struct vcpud_item {
    const char *name;
    enum drive drive;
    bool out_only;       /* the out-only guest instead of the IN/OUT one */
    bool regs_with_exit; /* AttachOpen.regs_with_exit */
    bool posted;         /* the guest's port is a posted range */
    bool split; /* every timed exit is one the server counts: show its split */
    bench_step_fn step;
    const char *skip;
} items[] = {
    {"run_unary", DRIVE_UNARY, false, false, false, true, step_run_unary, NULL},
    {"stream", DRIVE_STREAM, false, false, false, true, step_stream_run, NULL},
    {"stream_regs", DRIVE_STREAM, false, true, false, true, step_stream_run,
     NULL},
    /* Its runs are not timed, and a POSTED exit is a batch, not a stop. */
    {"stream_getregs", DRIVE_STREAM, true, false, false, false,
     step_stream_getregs, NULL},
    {"posted", DRIVE_STREAM, true, false, true, false, step_posted, NULL},
};

static int drv_open(struct drv *d, struct vcpud_client *c,
                    const struct vcpud_item *it, char *why)
{
    struct bench_guest g =
        it->out_only ? BENCH_GUEST(out_loop) : BENCH_GUEST(inout_loop);
    struct vcpud_client_status st;
    struct vcpud_vm_config cfg = {.max_vcpus = 1};
    memset(d, 0, sizeof(*d));
    d->c = c;
    d->regs = it->regs_with_exit;
    if (vcpud_client_create_vm(c, &cfg, &d->vm, &st) < 0)
        return fail(why, -EIO, "CreateVm", &st);
    d->have_vm = true;
    if (vcpud_client_add_region(c, d->vm, 0, 0, BENCH_GUEST_RAM, false, &st) <
            0 ||
        vcpud_client_write_memory(c, d->vm, BENCH_GUEST_LOAD, g.code, g.len,
                                  &st) < 0 ||
        vcpud_client_create_vcpu(c, d->vm, 0, &st) < 0 ||
        vcpud_client_setup_mode(c, d->vm, 0, VCPUD_MODE_REAL, BENCH_GUEST_LOAD,
                                BENCH_GUEST_STACK, 0, &st) < 0)
        return fail(why, -EIO, "setting up the guest", &st);
    if (it->posted && vcpud_client_add_posted(c, d->vm, true, 0x10, 1, &st) < 0)
        return fail(why, -EIO, "AddPostedRange", &st);
    if (it->drive == DRIVE_STREAM) {
        struct vcpud_stream_opts o = {.regs_with_exit = it->regs_with_exit};
        if (vcpud_client_attach(c, d->vm, 0, &o, &d->s, &st) < 0)
            return fail(why, -EIO, "Attach", &st);
    }
    return 0;
}

static void drv_close(void *arg)
{
    struct drv *d = arg;
    struct vcpud_client_status st;
    if (d->s)
        vcpud_stream_close(d->s, &st);
    if (d->have_vm)
        vcpud_client_destroy_vm(d->c, d->vm, &st);
    free(d);
}

#define NITEMS (sizeof(items) / sizeof(items[0]))

/* The server and its clients, released after every item. */
struct vcpud_srv {
    struct bench_proc proc;
    struct vcpud_client *clients[NTRANSPORTS];
    char log[108], sock[108];
    int http_port; /* its /metrics; 0: none */
    bool started;
};

/* A bench_split_fn: the server's exit counters. */
static int read_split(void *ctx, struct bench_split *now)
{
    const struct vcpud_srv *v = ctx;
    return v->http_port > 0 ? bench_metrics_read(v->http_port, now) : -ENOENT;
}

static void item_rows(const struct bench_config *cfg,
                      const struct vcpud_item *it, struct bench_row **rows,
                      struct vcpud_srv *v, const char *down)
{
    struct vcpud_client *const none[NTRANSPORTS] = {NULL, NULL};
    struct vcpud_client *const *clients = v && !down ? v->clients : none;
    pid_t server_pid = v ? v->proc.pid : 0;
    for (int t = 0; t < NTRANSPORTS; t++) {
        struct bench_row *row = rows[t];
        if (!row)
            continue;
        if (!it->step) {
            bench_row_skip(row, "%s", it->skip);
            continue;
        }
        if (down || !clients[t]) {
            bench_row_skip(row, "%s", down ? down : "no client");
            continue;
        }
        struct drv *d = calloc(1, sizeof(*d));
        char why[BENCH_REASON_MAX];
        if (!d) {
            bench_row_skip(row, "out of memory");
            continue;
        }
        int rc = drv_open(d, clients[t], it, why);
        bench_defer(drv_close, d);
        if (rc < 0)
            bench_row_skip(row, "%s", why);
        else if (bench_item_add(row, it->step, d, server_pid, cfg->warmup,
                                cfg->iters) == 0 &&
                 it->split)
            bench_item_split(row, read_split, v);
    }
}

/* The same two ways of driving vcpud from a Python grpcio controller
 * (bench/py_client.py): unary Run, and Attach one exit per step. */
static const char *const py_items[] = {"py_run_unary", "py_stream"};
#define NPY (sizeof(py_items) / sizeof(py_items[0]))

/* Python rows: the controller loads the IN/OUT guest itself, where and as
 * drv_open does. */
static void py_item_rows(const struct bench_config *cfg,
                         struct bench_row *const *rows, char addrs[][160],
                         pid_t server_pid, const char *down)
{
    struct bench_guest g = BENCH_GUEST(inout_loop);
    char hex[2 * 64 + 1] = "", load[16], stack[16], ram[16];
    for (size_t i = 0; i < g.len && i < 64; i++)
        snprintf(hex + 2 * i, 3, "%02x", g.code[i]);
    snprintf(load, sizeof(load), "%#x", BENCH_GUEST_LOAD);
    snprintf(stack, sizeof(stack), "%#x", BENCH_GUEST_STACK);
    snprintf(ram, sizeof(ram), "%#x", BENCH_GUEST_RAM);
    const char *const extra[] = {"--guest", hex,     "--load", load, "--stack",
                                 stack,     "--ram", ram,      NULL};
    for (int t = 0; t < NTRANSPORTS; t++) {
        if (rows[t] && down)
            bench_row_skip(rows[t], "%s", down);
        else
            bench_py_item(cfg, rows[t], addrs[t], server_pid, extra);
    }
}

/* Start vcpud on 127.0.0.1:0 and a unix socket, /metrics on another free
 * port; its log names the ports. */
static int start_vcpud(const struct bench_config *cfg, struct bench_proc *p,
                       const char *log, const char *sock, char addrs[2][160],
                       int *http_port, char *why)
{
    char listen_unix[160];
    snprintf(listen_unix, sizeof(listen_unix), "unix:%s", sock);
    const char *argv[18] = {cfg->vcpud,  "--listen", "127.0.0.1:0", "--listen",
                            listen_unix, "--http",   "127.0.0.1:0"};
    for (size_t i = 0, n = 7; i < 8 && cfg->vcpud_args[i] && n < 17; i++)
        argv[n++] = cfg->vcpud_args[i];
    int rc = bench_spawn(p, argv, -1, false, log);
    if (rc < 0) {
        snprintf(why, BENCH_REASON_MAX, "cannot start %s: %s", cfg->vcpud,
                 strerror(-rc));
        return rc;
    }
    addrs[0][0] = addrs[1][0] = '\0';
    char line[512] = "";
    for (int i = 0; i < 1000; i++) {
        FILE *f = fopen(log, "r");
        while (f && fgets(line, sizeof(line), f)) {
            line[strcspn(line, "\n")] = '\0';
            const char *m = strstr(line, "/metrics on http://");
            if (m)
                *http_port = atoi(strrchr(m, ':') + 1);
            char *a = strstr(line, "listening on ");
            char *end = a ? strstr(a, " (backend") : NULL;
            if (!end)
                continue;
            a += strlen("listening on ");
            *end = '\0';
            snprintf(addrs[strncmp(a, "unix:", 5) == 0], 160, "%s", a);
        }
        if (f)
            fclose(f);
        if (addrs[0][0] && addrs[1][0] && *http_port)
            return 0;
        if (!bench_alive(p)) {
            snprintf(why, BENCH_REASON_MAX, "vcpud exited: %s", line);
            return -ECHILD;
        }
        bench_sleep_ms(10);
    }
    snprintf(why, BENCH_REASON_MAX, "vcpud did not start listening (log %s)",
             log);
    return -ETIMEDOUT;
}

static void vcpud_stop(void *arg)
{
    struct vcpud_srv *v = arg;
    for (int t = 0; t < NTRANSPORTS; t++)
        vcpud_client_close(v->clients[t]);
    int status = bench_stop(&v->proc);
    if (v->started && status != 0)
        fprintf(stderr, "vcpud_bench: vcpud exited with status %d (log %s)\n",
                status, v->log);
    else if (v->log[0])
        unlink(v->log);
    if (v->sock[0])
        unlink(v->sock);
    free(v);
}

void bench_vcpud(const struct bench_config *cfg)
{
    struct bench_row *rows[NITEMS][NTRANSPORTS], *py_rows[NPY][NTRANSPORTS];
    bool any = false;
    for (size_t i = 0; i < NITEMS; i++)
        for (int t = 0; t < NTRANSPORTS; t++) {
            rows[i][t] = bench_rows_add(items[i].name, transports[t]);
            any |= rows[i][t] && items[i].step;
        }
    for (size_t i = 0; i < NPY; i++)
        for (int t = 0; t < NTRANSPORTS; t++) {
            py_rows[i][t] = bench_rows_add(py_items[i], transports[t]);
            any |= py_rows[i][t] != NULL;
        }
    struct vcpud_srv *v = any ? calloc(1, sizeof(*v)) : NULL;
    char addrs[2][160] = {"", ""}, why[BENCH_REASON_MAX] = "";
    const char *down = NULL;
    if (v) {
        v->proc.out_fd = -1;
        bench_defer(vcpud_stop, v);
    }
    if (!any) {
        down = "not run"; /* only rows that are skipped anyway */
    } else if (!v) {
        down = "out of memory";
    } else if (!cfg->have_kvm) {
        down = cfg->no_kvm;
    } else {
        snprintf(v->log, sizeof(v->log), "/tmp/vcpud-bench-%d-vcpud.log",
                 (int)getpid());
        snprintf(v->sock, sizeof(v->sock), "/tmp/vcpud-bench-%d-vcpud.sock",
                 (int)getpid());
        bench_tmp_path(v->log);
        bench_tmp_path(v->sock);
        if (start_vcpud(cfg, &v->proc, v->log, v->sock, addrs, &v->http_port,
                        why) < 0) {
            down = why;
        } else {
            v->started = true;
            for (int t = 0; t < NTRANSPORTS; t++) {
                struct vcpud_client_status st;
                if (vcpud_client_connect(addrs[t], NULL, &v->clients[t], &st) <
                    0)
                    v->clients[t] = NULL;
            }
        }
    }
    for (size_t i = 0; i < NITEMS; i++)
        item_rows(cfg, &items[i], rows[i], v, down);
    for (size_t i = 0; i < NPY; i++) {
        py_item_rows(cfg, py_rows[i], addrs, v ? v->proc.pid : 0, down);
        for (int t = 0; !down && t < NTRANSPORTS; t++)
            bench_item_split(py_rows[i][t], read_split, v);
    }
}
