/* raw.c: the floor of a remote exit – a message the size of an exit
 * message sent and echoed back over a plain socket (TCP with TCP_NODELAY,
 * and a unix socket), the echo side in its own process. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench.h"
#include "pb_convert.h"
#include <pb_encode.h>
#include "proc.h"
#include "vcpud/v1/vcpud.pb.h"

#define RAW_MAX 4096

size_t bench_exit_message_size(void)
{
    /* What the stream sends for the benchmark guest's OUT of one byte. */
    struct vcpud_exit x = {.kind = VCPUD_EXIT_IO_OUT};
    x.u.io.port = 0x10;
    x.u.io.size = 1;
    x.u.io.count = 1;
    x.u.io.data[0] = 0x5a;
    vcpud_v1_AttachResponse resp = vcpud_v1_AttachResponse_init_zero;
    resp.which_reply = vcpud_v1_AttachResponse_exit_tag;
    vcpud_pb_from_exit(&resp.reply.exit, &x);
    size_t len = 0;
    if (!pb_get_encoded_size(&len, vcpud_v1_AttachResponse_fields, &resp))
        return 16;
    return len;
}

static int io_full(int fd, void *buf, size_t len, bool wr)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = wr ? write(fd, p, len) : read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EPIPE;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int bench_raw_echo_main(int lfd, size_t bytes)
{
    uint8_t buf[RAW_MAX];
    if (bytes == 0 || bytes > RAW_MAX)
        return 2;
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        return 1;
    close(lfd);
    nodelay(fd); /* fails harmlessly on a unix socket */
    while (io_full(fd, buf, bytes, false) == 0)
        if (io_full(fd, buf, bytes, true) < 0)
            break;
    close(fd);
    return 0;
}

struct raw {
    int fd;
    size_t bytes;
    uint8_t buf[RAW_MAX];
};

static int raw_step(void *ctx, uint64_t *ns, char *why)
{
    struct raw *r = ctx;
    uint64_t t0 = bench_now_ns();
    int rc = io_full(r->fd, r->buf, r->bytes, true);
    if (rc == 0)
        rc = io_full(r->fd, r->buf, r->bytes, false);
    *ns = bench_now_ns() - t0;
    if (rc < 0)
        snprintf(why, BENCH_REASON_MAX, "echo: %s", strerror(-rc));
    return rc;
}

/* A listening socket for (transport) and an address to connect to it. */
static int listen_on(const char *transport, struct sockaddr_storage *sa,
                     socklen_t *salen, char *path, size_t pathlen)
{
    bool tcp = strcmp(transport, "tcp") == 0;
    int fd = socket(tcp ? AF_INET : AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    memset(sa, 0, sizeof(*sa));
    if (tcp) {
        struct sockaddr_in *in = (struct sockaddr_in *)sa;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *salen = sizeof(*in);
    } else {
        struct sockaddr_un *un = (struct sockaddr_un *)sa;
        un->sun_family = AF_UNIX;
        snprintf(path, pathlen, "/tmp/vcpud-bench-%d-raw.sock", (int)getpid());
        unlink(path);
        snprintf(un->sun_path, sizeof(un->sun_path), "%s", path);
        *salen = sizeof(*un);
    }
    if (bind(fd, (struct sockaddr *)sa, *salen) < 0 || listen(fd, 1) < 0 ||
        getsockname(fd, (struct sockaddr *)sa, salen) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

struct raw_item {
    struct raw r;
    struct bench_proc echo;
    char path[108];
};

static void raw_close(void *arg)
{
    struct raw_item *x = arg;
    if (x->r.fd >= 0)
        close(x->r.fd);
    bench_stop(&x->echo);
    if (x->path[0])
        unlink(x->path);
    free(x);
}

static void raw_item(const struct bench_config *cfg, const char *transport,
                     size_t bytes)
{
    struct bench_row *row = bench_rows_add("raw", transport);
    if (!row)
        return;
    struct raw_item *x = calloc(1, sizeof(*x));
    if (!x) {
        bench_row_skip(row, "out of memory");
        return;
    }
    x->r.fd = -1;
    x->r.bytes = bytes;
    x->echo.out_fd = -1;
    bench_defer(raw_close, x);
    struct sockaddr_storage sa;
    socklen_t salen;
    int lfd = listen_on(transport, &sa, &salen, x->path, sizeof(x->path));
    if (x->path[0])
        bench_tmp_path(x->path);
    if (lfd < 0) {
        bench_row_skip(row, "cannot listen: %s", strerror(-lfd));
        return;
    }
    char fdarg[16], bytesarg[16];
    snprintf(fdarg, sizeof(fdarg), "%d", lfd);
    snprintf(bytesarg, sizeof(bytesarg), "%zu", bytes);
    const char *argv[] = {cfg->self, "--child", "raw-echo",
                          fdarg,     bytesarg,  NULL};
    int rc = bench_spawn(&x->echo, argv, lfd, false, NULL);
    close(lfd);
    if (rc < 0) {
        bench_row_skip(row, "cannot start the echo process: %s", strerror(-rc));
        return;
    }
    x->r.fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (x->r.fd < 0 || connect(x->r.fd, (struct sockaddr *)&sa, salen) < 0) {
        bench_row_skip(row, "cannot connect: %s", strerror(errno));
        return;
    }
    if (sa.ss_family == AF_INET)
        nodelay(x->r.fd);
    bench_item_add(row, raw_step, &x->r, x->echo.pid, cfg->warmup, cfg->iters);
}

void bench_raw(const struct bench_config *cfg, size_t bytes)
{
    raw_item(cfg, "tcp", bytes);
    raw_item(cfg, "unix", bytes);
}
