/* auth.h: bearer tokens naming tenants; a tenant sees only its own VMs. */
#ifndef VCPUD_SERVER_AUTH_H
#define VCPUD_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct auth;

/*
 * Load (path): one "TOKEN TENANT" pair per line, '#' starts a comment.
 * NULL path: no authentication, every caller is tenant "default" (for a
 * server reachable only through a unix socket or loopback). On success
 * *out is owned by the caller (auth_free). (errbuf) says what is wrong.
 */
int auth_load(const char *path, struct auth **out, char *errbuf, size_t len);
void auth_free(struct auth *a);

/* The tenant for (header), the value of the `authorization` metadata or
 * NULL when absent; NULL when it names no tenant. */
const char *auth_tenant(const struct auth *a, const char *header);

#endif
