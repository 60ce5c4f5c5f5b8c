/* http.h: /healthz and /metrics on libevent's HTTP server. */
#ifndef VCPUD_SERVER_HTTP_H
#define VCPUD_SERVER_HTTP_H

#include <event2/event.h>
#include <stdbool.h>

#include "app.h"

struct http;

/* Serve on (hostport) ("127.0.0.1:9090"; port 0 picks a free one) from
 * (base). NULL on failure, with the reason in (errbuf). */
struct http *http_start(struct event_base *base, const char *hostport,
                        struct app *app, char *errbuf, size_t len);
/* The port bound. */
int http_port(const struct http *h);
/* From now on /healthz answers 503: the server is stopping. */
void http_set_stopping(struct http *h);
void http_free(struct http *h);

#endif
