/* http.c: health and metrics for whoever supervises the server. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http.h"

struct http {
    struct evhttp *ev;
    struct app *app;
    int port; /* the one bound */
    bool stopping;
};

static void reply(struct evhttp_request *req, int code, const char *reason,
                  struct evbuffer *body)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; charset=utf-8");
    evhttp_send_reply(req, code, reason, body);
}

static void on_health(struct evhttp_request *req, void *arg)
{
    struct http *h = arg;
    struct evbuffer *b = evbuffer_new();
    if (!b)
        return;
    evbuffer_add_printf(b, h->stopping ? "stopping\n" : "ok\n");
    reply(req, h->stopping ? 503 : 200, h->stopping ? "Unavailable" : "OK",
          b);
    evbuffer_free(b);
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
    struct http *h = arg;
    struct evbuffer *b = evbuffer_new();
    if (!b)
        return;
    uint32_t vms, vcpus;
    uint64_t mem;
    registry_stats(h->app->reg, &vms, &vcpus, &mem);
    evbuffer_add_printf(
        b,
        "# TYPE vcpud_vms gauge\nvcpud_vms %u\n"
        "# TYPE vcpud_vcpus gauge\nvcpud_vcpus %u\n"
        "# TYPE vcpud_guest_memory_bytes gauge\n"
        "vcpud_guest_memory_bytes %llu\n"
        "# TYPE vcpud_calls_total counter\nvcpud_calls_total %llu\n"
        "# TYPE vcpud_failed_calls_total counter\n"
        "vcpud_failed_calls_total %llu\n",
        vms, vcpus, (unsigned long long)mem,
        (unsigned long long)atomic_load(&h->app->calls),
        (unsigned long long)atomic_load(&h->app->failed_calls));
    /* An exit's time on the server, split: mean = sum / count. */
    const struct exit_stats *x = registry_exit_stats(h->app->reg);
    evbuffer_add_printf(b,
                        "# TYPE vcpud_exits_total counter\n"
                        "vcpud_exits_total{via=\"run\"} %llu\n"
                        "vcpud_exits_total{via=\"attach\"} %llu\n"
                        "# TYPE vcpud_exit_guest_seconds_total counter\n"
                        "vcpud_exit_guest_seconds_total %.9f\n"
                        "# TYPE vcpud_run_handover_seconds_total counter\n"
                        "vcpud_run_handover_seconds_total %.9f\n"
                        "# TYPE vcpud_run_reply_seconds_total counter\n"
                        "vcpud_run_reply_seconds_total %.9f\n",
                        (unsigned long long)atomic_load(&x->run_exits),
                        (unsigned long long)atomic_load(&x->stream_exits),
                        (double)atomic_load(&x->guest_ns) / 1e9,
                        (double)atomic_load(&x->handover_ns) / 1e9,
                        (double)atomic_load(&x->reply_ns) / 1e9);
    reply(req, 200, "OK", b);
    evbuffer_free(b);
}

struct http *http_start(struct event_base *base, const char *hostport,
                        struct app *app, char *errbuf, size_t len)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    long port = colon ? strtol(colon + 1, NULL, 10) : 0;
    size_t hl = colon ? (size_t)(colon - hostport) : 0;
    if (!colon || port < 0 || port > 65535 || hl == 0 || hl >= sizeof(host)) {
        snprintf(errbuf, len, "--http wants HOST:PORT, got '%s'", hostport);
        return NULL;
    }
    memcpy(host, hostport, hl);
    host[hl] = '\0';
    if (host[0] == '[' && host[hl - 1] == ']') { /* [::1] */
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    struct http *h = calloc(1, sizeof(*h));
    if (!h || !(h->ev = evhttp_new(base))) {
        free(h);
        snprintf(errbuf, len, "out of memory");
        return NULL;
    }
    h->app = app;
    evhttp_set_allowed_methods(h->ev, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_cb(h->ev, "/healthz", on_health, h);
    evhttp_set_cb(h->ev, "/metrics", on_metrics, h);
    struct evhttp_bound_socket *bound =
        evhttp_bind_socket_with_handle(h->ev, host, (uint16_t)port);
    if (!bound) {
        snprintf(errbuf, len, "cannot listen for HTTP on %s", hostport);
        evhttp_free(h->ev);
        free(h);
        return NULL;
    }
    /* With port 0 the kernel picks one; the log says which. */
    struct sockaddr_storage sa;
    socklen_t sl = sizeof(sa);
    if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&sa,
                    &sl) == 0)
        h->port = ntohs(sa.ss_family == AF_INET6
                            ? ((struct sockaddr_in6 *)&sa)->sin6_port
                            : ((struct sockaddr_in *)&sa)->sin_port);
    return h;
}

int http_port(const struct http *h)
{
    return h->port;
}

void http_set_stopping(struct http *h)
{
    if (h)
        h->stopping = true;
}

void http_free(struct http *h)
{
    if (!h)
        return;
    evhttp_free(h->ev);
    free(h);
}
