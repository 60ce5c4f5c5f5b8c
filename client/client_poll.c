/* client_poll.c: reads the channel's sockets between calls. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "client.h"

/*
 * The C core does network I/O only in threads waiting on a completion
 * queue, and a synchronous client has none between calls: all that is left
 * is gRPC's backup poller, every 5 s. Keepalive acks (ours and the
 * server's, both due within 2 s) then come too late, so an idle connection
 * was torn down every few seconds, and after a refused connect the retries
 * advanced only every 5 s (~10 s to reach a restarted server). A thread
 * blocked in grpc_completion_queue_next() would fix both but took over the
 * calls' I/O as well, adding ~25 us to each call (measured); a non-blocking
 * poll this often does not.
 */
#define POLL_MS 250

static void *poll_thread(void *arg)
{
    struct vcpud_client *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->closing) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_nsec += POLL_MS * 1000000L;
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c->wake, &c->lock, &t);
        if (c->closing)
            break;
        pthread_mutex_unlock(&c->lock);
        /* Nothing is ever queued here: the deadline makes it one pass
         * over whatever sockets are ready. */
        grpc_completion_queue_next(c->idle_cq,
                                   gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

int vcpud__poller_start(struct vcpud_client *c, struct vcpud_client_status *st)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&c->lock, NULL);
    c->idle_cq = grpc_completion_queue_create_for_next(NULL);

    /* The thread must never take the application's signals. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&c->poller, NULL, poll_thread, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        grpc_completion_queue_shutdown(c->idle_cq);
        grpc_completion_queue_destroy(c->idle_cq);
        c->idle_cq = NULL;
        pthread_cond_destroy(&c->wake);
        pthread_mutex_destroy(&c->lock);
        return vcpud__fail(st, GRPC_STATUS_RESOURCE_EXHAUSTED, -e,
                           "cannot start the client's poll thread: %s",
                           strerror(e));
    }
    return 0;
}

void vcpud__poller_stop(struct vcpud_client *c)
{
    if (!c->idle_cq)
        return;
    pthread_mutex_lock(&c->lock);
    c->closing = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->poller, NULL);
    grpc_completion_queue_shutdown(c->idle_cq);
    while (grpc_completion_queue_next(c->idle_cq,
                                      gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
               .type != GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(c->idle_cq);
    c->idle_cq = NULL;
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
}
