/* options.h: vcpud's command line. */
#ifndef VCPUD_SERVER_OPTIONS_H
#define VCPUD_SERVER_OPTIONS_H

#include <stddef.h>

#include "registry.h"

#define MAX_LISTEN 8

struct options {
    const char *listen[MAX_LISTEN];
    size_t nlisten;
    const char *backend;
    const char *token_file;
    const char *http; /* "HOST:PORT" for /healthz and /metrics, or NULL */
    struct limits lim;
    size_t max_message;
    int cq_threads;
    int keepalive_ms;
    int keepalive_timeout_ms;
    int grace_ms;
};

/* Parse argv into (o). 0 to run, 1 when --help was printed, -1 after a
 * usage error was printed. */
int options_parse(int argc, char **argv, struct options *o);

#endif
