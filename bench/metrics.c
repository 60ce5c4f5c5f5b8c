/* metrics.c: vcpud's own account of its exits, read from its /metrics
 * over plain HTTP/1.0 – what lets a row split its round trip into the
 * server's parts and the rest (gRPC, the network, the client). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

/* The value after "\n(name) " in (body), or -1. */
static double metric(const char *body, const char *name)
{
    char key[96];
    snprintf(key, sizeof(key), "\n%s ", name);
    const char *p = strstr(body, key);
    return p ? strtod(p + strlen(key), NULL) : -1;
}

static uint64_t seconds_ns(double s)
{
    return s > 0 ? (uint64_t)(s * 1e9 + 0.5) : 0;
}

int bench_metrics_read(int port, struct bench_split *out)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
    char body[8192];
    size_t got = 0;
    int rc = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
        rc = -errno;
    } else {
        ssize_t n;
        while (got + 1 < sizeof(body) &&
               (n = read(fd, body + got, sizeof(body) - 1 - got)) > 0)
            got += (size_t)n;
    }
    close(fd);
    if (rc < 0)
        return rc;
    body[got] = '\0';
    double run = metric(body, "vcpud_exits_total{via=\"run\"}");
    double attach = metric(body, "vcpud_exits_total{via=\"attach\"}");
    double guest = metric(body, "vcpud_exit_guest_seconds_total");
    if (run < 0 || attach < 0 || guest < 0)
        return -EPROTO; /* a vcpud without these counters */
    out->exits = (uint64_t)run + (uint64_t)attach;
    out->guest_ns = seconds_ns(guest);
    out->handover_ns =
        seconds_ns(metric(body, "vcpud_run_handover_seconds_total"));
    out->reply_ns = seconds_ns(metric(body, "vcpud_run_reply_seconds_total"));
    return 0;
}
