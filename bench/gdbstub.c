/* gdbstub.c: the nearest existing tool for remote vCPU control – QEMU's
 * gdbstub with KVM – driven over the GDB remote serial protocol: a
 * single-step (`s`, answered by a T05/S05 stop reply) and a register read
 * (`g`) per round trip. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench.h"
#include "guests.h"
#include "proc.h"

#define BIOS_SIZE 0x10000 /* the smallest image QEMU maps as a BIOS */
#define RESET_VECTOR 0xfff0
#define PKT_MAX 8192

/* One connection to the stub. */
struct rsp {
    int fd;
    bool ack_mode; /* until QStartNoAckMode is accepted */
    bool owe_ack;  /* a reply came that we have not acknowledged yet */
    char in[PKT_MAX];
    size_t in_start, in_end;
    char pkt[PKT_MAX]; /* the last reply's data, NUL-terminated */
    size_t pkt_len;
};

static int rsp_getc(struct rsp *r)
{
    if (r->in_start == r->in_end) {
        ssize_t n;
        do
            n = read(r->fd, r->in, sizeof(r->in));
        while (n < 0 && errno == EINTR);
        if (n <= 0)
            return n < 0 ? -errno : -EPIPE;
        r->in_start = 0;
        r->in_end = (size_t)n;
    }
    return (unsigned char)r->in[r->in_start++];
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Send (data) as a packet – with the ack we owe for the previous reply in
 * front, in the same write – and read the reply into r->pkt. Acks from the
 * stub ('+') are skipped. 0 or negative errno.
 */
static int rsp_call(struct rsp *r, const char *data)
{
    char out[256];
    unsigned sum = 0;
    for (const char *p = data; *p; p++)
        sum += (unsigned char)*p;
    int n = snprintf(out, sizeof(out), "%s$%s#%02x", r->owe_ack ? "+" : "",
                     data, sum & 0xff);
    r->owe_ack = false;
    for (int off = 0; off < n;) {
        ssize_t w = write(r->fd, out + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        off += (int)w;
    }
    int c;
    do
        c = rsp_getc(r);
    while (c >= 0 && c != '$');
    if (c < 0)
        return c;
    r->pkt_len = 0;
    sum = 0;
    while ((c = rsp_getc(r)) >= 0 && c != '#') {
        if (r->pkt_len + 1 >= sizeof(r->pkt))
            return -EMSGSIZE;
        r->pkt[r->pkt_len++] = (char)c;
        sum += (unsigned)c;
    }
    r->pkt[r->pkt_len] = '\0';
    int h = c < 0 ? c : rsp_getc(r);
    int l = h < 0 ? h : rsp_getc(r);
    if (l < 0)
        return l;
    if (hexval(h) < 0 || hexval(l) < 0 ||
        (unsigned)(hexval(h) << 4 | hexval(l)) != (sum & 0xff))
        return -EBADMSG;
    r->owe_ack = r->ack_mode;
    return 0;
}

/* ---- the steps ---- */

static int step_s(void *ctx, uint64_t *ns, char *why)
{
    struct rsp *r = ctx;
    uint64_t t0 = bench_now_ns();
    int rc = rsp_call(r, "s");
    *ns = bench_now_ns() - t0;
    if (rc < 0) {
        snprintf(why, BENCH_REASON_MAX, "s: %s", strerror(-rc));
        return rc;
    }
    if (r->pkt[0] != 'T' && r->pkt[0] != 'S') {
        snprintf(why, BENCH_REASON_MAX, "s answered '%.40s'", r->pkt);
        return -EPROTO;
    }
    return 0;
}

/* A step (not timed), then the timed register read: the stub reads the
 * registers once per stop, as vcpud does on get_regs. */
static int step_g(void *ctx, uint64_t *ns, char *why)
{
    struct rsp *r = ctx;
    uint64_t ignored;
    int rc = step_s(ctx, &ignored, why);
    if (rc < 0)
        return rc;
    uint64_t t0 = bench_now_ns();
    rc = rsp_call(r, "g");
    *ns = bench_now_ns() - t0;
    if (rc < 0) {
        snprintf(why, BENCH_REASON_MAX, "g: %s", strerror(-rc));
        return rc;
    }
    if (r->pkt_len < 16 || r->pkt[0] == 'E') {
        snprintf(why, BENCH_REASON_MAX, "g answered '%.40s'", r->pkt);
        return -EPROTO;
    }
    return 0;
}

/* ---- QEMU ---- */

/* The first executable (name) on PATH, into (out). */
static bool find_in_path(const char *name, char *out, size_t len)
{
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        snprintf(out, len, "%.*s/%s", (int)n, path, name);
        if (n && access(out, X_OK) == 0)
            return true;
        path += n + (path[n] == ':');
    }
    return false;
}

/* A flat BIOS image: hlt everywhere, the spin guest at the reset vector. */
static int write_bios(const char *path)
{
    static uint8_t img[BIOS_SIZE];
    struct bench_guest g = BENCH_GUEST(spin);
    memset(img, 0xf4, sizeof(img));
    memcpy(img + RESET_VECTOR, g.code, g.len);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, img, sizeof(img));
    close(fd);
    return n == (ssize_t)sizeof(img) ? 0 : -EIO;
}

static int free_tcp_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, len) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

struct qemu {
    struct bench_proc proc;
    char log[108], sock[108];
    struct rsp rsp;
};

/* Start QEMU stopped (-S) with its gdbstub on (transport), connect, and
 * agree on the protocol. */
static int qemu_start(struct qemu *q, const char *qemu, const char *bios,
                      const char *transport, char *why)
{
    char gdb[160];
    struct sockaddr_storage sa;
    socklen_t salen;
    memset(&sa, 0, sizeof(sa));
    memset(q, 0, sizeof(*q));
    q->rsp.fd = -1;
    q->proc.out_fd = -1;
    static int seq; /* several QEMUs run side by side */
    int pid = (int)getpid(), k = seq++;
    snprintf(q->log, sizeof(q->log), "/tmp/vcpud-bench-%d-qemu%d.log", pid, k);
    bench_tmp_path(q->log);
    if (strcmp(transport, "tcp") == 0) {
        int port = free_tcp_port();
        struct sockaddr_in *in = (struct sockaddr_in *)&sa;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        in->sin_port = htons((uint16_t)port);
        salen = sizeof(*in);
        snprintf(gdb, sizeof(gdb), "tcp:127.0.0.1:%d", port);
    } else {
        struct sockaddr_un *un = (struct sockaddr_un *)&sa;
        snprintf(q->sock, sizeof(q->sock), "/tmp/vcpud-bench-%d-gdb%d.sock",
                 pid, k);
        unlink(q->sock);
        bench_tmp_path(q->sock);
        un->sun_family = AF_UNIX;
        snprintf(un->sun_path, sizeof(un->sun_path), "%s", q->sock);
        salen = sizeof(*un);
        snprintf(gdb, sizeof(gdb), "unix:%s,server=on,wait=off", q->sock);
    }
    const char *argv[] = {qemu,
                          "-enable-kvm",
                          "-cpu",
                          "host,-arch-capabilities",
                          "-S",
                          "-gdb",
                          gdb,
                          "-display",
                          "none",
                          "-nodefaults",
                          "-no-user-config",
                          "-m",
                          "16",
                          "-bios",
                          bios,
                          NULL};
    int rc = bench_spawn(&q->proc, argv, -1, false, q->log);
    if (rc < 0) {
        snprintf(why, BENCH_REASON_MAX, "cannot start %s: %s", qemu,
                 strerror(-rc));
        return rc;
    }
    for (int i = 0; i < 500 && q->rsp.fd < 0; i++) {
        if (!bench_alive(&q->proc)) {
            char line[160] = "";
            FILE *f = fopen(q->log, "r");
            if (f && fgets(line, sizeof(line), f))
                line[strcspn(line, "\n")] = '\0';
            if (f)
                fclose(f);
            snprintf(why, BENCH_REASON_MAX, "qemu exited: %s", line);
            return -ECHILD;
        }
        int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, salen) == 0) {
            q->rsp.fd = fd;
            break;
        }
        if (fd >= 0)
            close(fd);
        bench_sleep_ms(20);
    }
    if (q->rsp.fd < 0) {
        snprintf(why, BENCH_REASON_MAX, "qemu's gdbstub did not answer");
        return -ETIMEDOUT;
    }
    if (sa.ss_family == AF_INET) {
        int one = 1;
        setsockopt(q->rsp.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    struct rsp *r = &q->rsp;
    r->ack_mode = true;
    if ((rc = rsp_call(r, "qSupported:swbreak+;hwbreak+")) < 0) {
        snprintf(why, BENCH_REASON_MAX, "qSupported: %s", strerror(-rc));
        return rc;
    }
    /* Without acks when the stub agrees (QEMU 7.2 does not: it answers
     * the empty packet, and acks then ride in front of our next packet). */
    if (strstr(r->pkt, "QStartNoAckMode+") &&
        rsp_call(r, "QStartNoAckMode") == 0 && strcmp(r->pkt, "OK") == 0)
        r->ack_mode = r->owe_ack = false;
    if ((rc = rsp_call(r, "?")) < 0) {
        snprintf(why, BENCH_REASON_MAX, "'?': %s", strerror(-rc));
        return rc;
    }
    return 0;
}

static void qemu_stop(void *arg)
{
    struct qemu *q = arg;
    if (q->rsp.fd >= 0)
        close(q->rsp.fd);
    q->rsp.fd = -1;
    bench_stop(&q->proc);
    unlink(q->log);
    if (q->sock[0])
        unlink(q->sock);
    free(q);
}

static void gdb_row(const struct bench_config *cfg, const char *name,
                    const char *transport, bench_step_fn step, const char *qemu,
                    const char *bios, const char *skip)
{
    struct bench_row *row = bench_rows_add(name, transport);
    if (!row)
        return;
    if (skip) {
        bench_row_skip(row, "%s", skip);
        return;
    }
    struct qemu *q = malloc(sizeof(*q));
    char why[BENCH_REASON_MAX];
    if (!q) {
        bench_row_skip(row, "out of memory");
        return;
    }
    int rc = qemu_start(q, qemu, bios, transport, why);
    bench_defer(qemu_stop, q);
    if (rc < 0)
        bench_row_skip(row, "%s", why);
    else
        bench_item_add(row, step, &q->rsp, q->proc.pid,
                       cfg->warmup < 200 ? cfg->warmup : 200, cfg->gdb_iters);
}

static void unlink_path(void *arg)
{
    unlink(arg);
    free(arg);
}

void bench_gdbstub(const struct bench_config *cfg)
{
    char qemu[512], skip[BENCH_REASON_MAX];
    char *bios = malloc(108);
    const char *why = NULL;
    if (!bios)
        return;
    snprintf(bios, 108, "/tmp/vcpud-bench-%d-bios.bin", (int)getpid());
    bench_tmp_path(bios);
    bench_defer(unlink_path, bios);
    if (!cfg->have_kvm) {
        why = cfg->no_kvm;
    } else if (!find_in_path("qemu-system-x86_64", qemu, sizeof(qemu))) {
        why = "qemu-system-x86_64 is not installed (deploy/install-deps.sh "
              "installs qemu-system-x86)";
    } else if (write_bios(bios) < 0) {
        snprintf(skip, sizeof(skip), "cannot write %s", bios);
        why = skip;
    }
    static const char *const transports[] = {"tcp", "unix"};
    for (int t = 0; t < 2; t++)
        gdb_row(cfg, "gdbstub_step", transports[t], step_s, qemu, bios, why);
    for (int t = 0; t < 2; t++)
        gdb_row(cfg, "gdbstub_regs", transports[t], step_g, qemu, bios, why);
}
