/* main.c: vcpud – start the gRPC service on the core, run libevent's loop
 * for signals and HTTP, and stop cleanly on SIGINT/SIGTERM. */
#include <errno.h>
#include <event2/event.h>
#include <grpc/grpc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "app.h"
#include "http.h"
#include "options.h"

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    fprintf(stderr, "vcpud: %s, shutting down\n", strsignal((int)sig));
    event_base_loopbreak(arg);
}

/* A unix socket left by a dead server blocks bind; one that still answers
 * belongs to a live server and is left alone. */
static void clear_stale_socket(const char *addr)
{
    if (strncmp(addr, "unix:", 5) != 0)
        return;
    const char *path = addr + 5;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return;
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
        errno == ECONNREFUSED)
        unlink(path);
    close(fd);
}

static void remove_sockets(const struct options *o)
{
    for (size_t i = 0; i < o->nlisten; i++)
        if (strncmp(o->listen[i], "unix:", 5) == 0)
            unlink(o->listen[i] + 5);
}

/* Every VM, vCPU and connection holds descriptors, and the usual soft
 * limit of 1024 would stop a server far below its --max-vms with EMFILE:
 * take what the hard limit allows, as servers do. */
static void raise_fd_limit(void)
{
    /* An unlimited hard limit still stops at the kernel's nr_open. */
    const rlim_t nr_open = 1 << 20;
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0)
        return;
    rlim_t want = r.rlim_max < nr_open ? r.rlim_max : nr_open;
    if (r.rlim_cur < want) {
        r.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &r) != 0)
            fprintf(stderr, "vcpud: cannot raise the open-file limit: %s\n",
                    strerror(errno));
    }
}

int main(int argc, char **argv)
{
    struct options o;
    int rc = options_parse(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;

    struct vcpud_err err = {0};
    const struct vcpud_backend *be;
    if (vcpud_backend_find(o.backend, &be, &err) < 0) {
        fprintf(stderr, "vcpud: backend '%s' is unavailable: %s\n", o.backend,
                err.msg);
        return 1;
    }

    /* Every thread created from here on – gRPC's, the completion-queue
     * threads, vCPU threads – inherits a full mask: signals are taken in
     * one place, this thread's event loop. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    char errbuf[256];
    struct app app = {.lim = o.lim};
    if (auth_load(o.token_file, &app.auth, errbuf, sizeof(errbuf)) < 0) {
        fprintf(stderr, "vcpud: %s\n", errbuf);
        return 1;
    }
    app.reg = registry_new(be, &o.lim);
    struct event_base *base = event_base_new();
    if (!app.reg || !base) {
        fprintf(stderr, "vcpud: out of memory\n");
        return 1;
    }

    grpc_init();
    for (size_t i = 0; i < o.nlisten; i++)
        clear_stale_socket(o.listen[i]);
    int ports[MAX_LISTEN] = {0};
    struct rpc_server_config cfg = {
        .ports = ports,
        .listen = o.listen,
        .nlisten = o.nlisten,
        .cq_threads = o.cq_threads,
        /* Each open stream drives one vCPU; a few more may be opening. */
        .max_call_threads = (int)(o.lim.max_vms * o.lim.max_vcpus_per_vm) + 16,
        .max_message = o.max_message,
        .keepalive_ms = o.keepalive_ms,
        .keepalive_timeout_ms = o.keepalive_timeout_ms,
    };
    struct rpc_server *srv;
    int status = 0;
    if (rpc_server_start(&cfg, app_methods, app_nmethods, &app, &srv, errbuf,
                         sizeof(errbuf)) < 0) {
        fprintf(stderr, "vcpud: %s\n", errbuf);
        status = 1;
        goto out;
    }
    struct http *http = NULL;
    if (o.http &&
        !(http = http_start(base, o.http, &app, errbuf, sizeof(errbuf)))) {
        fprintf(stderr, "vcpud: %s\n", errbuf);
        status = 1;
    }

    struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &stop, NULL);

    if (status == 0) {
        /* With port 0 the kernel picks one: say which, so scripts and
         * tests can find the server. */
        for (size_t i = 0; i < o.nlisten; i++) {
            const char *a = o.listen[i];
            const char *colon = strrchr(a, ':');
            if (strncmp(a, "unix:", 5) != 0 && colon)
                fprintf(stderr, "vcpud: listening on %.*s:%d (backend %s)\n",
                        (int)(colon - a), a, ports[i], be->name);
            else
                fprintf(stderr, "vcpud: listening on %s (backend %s)\n", a,
                        be->name);
        }
        if (http)
            fprintf(stderr, "vcpud: /healthz and /metrics on http://%.*s:%d\n",
                    (int)(strrchr(o.http, ':') - o.http), o.http,
                    http_port(http));
        fflush(stderr);
        event_base_dispatch(base);
    }

    /* Refuse new calls, stop the guests so their Runs answer CANCELED and
     * end exit streams, let in-flight calls finish, then take everything
     * down. */
    http_set_stopping(http);
    rpc_server_begin_shutdown(srv);
    registry_shut_down(app.reg);
    rpc_server_finish_shutdown(srv, o.grace_ms);
    /* No handler may be using the registry while it goes; vCPU threads
     * still holding a Run are stopped by registry_free itself. */
    rpc_server_stop(srv);
    registry_free(app.reg);
    app.reg = NULL;
    rpc_server_destroy(srv);
    http_free(http);
    event_free(sigint);
    event_free(sigterm);
    remove_sockets(&o);
out:
    registry_free(app.reg);
    /* Blocking: gRPC's own pollers and threads are gone when main returns. */
    grpc_shutdown_blocking();
    event_base_free(base);
    auth_free(app.auth);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return status;
}
