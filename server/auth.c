/* auth.c: the token file and the bearer check. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "registry.h"

#define TOKEN_MAX 256
#define MAX_TOKENS 1024

struct token {
    char token[TOKEN_MAX];
    char tenant[TENANT_MAX];
};

struct auth {
    bool open; /* no token file: everyone is "default" */
    struct token *tokens;
    size_t n;
};

int auth_load(const char *path, struct auth **out, char *errbuf, size_t len)
{
    struct auth *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(errbuf, len, "out of memory");
        return -ENOMEM;
    }
    if (!path) {
        a->open = true;
        *out = a;
        return 0;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(errbuf, len, "cannot read token file %s: %s", path,
                 strerror(errno));
        free(a);
        return -errno;
    }
    a->tokens = calloc(MAX_TOKENS, sizeof(*a->tokens));
    char line[512];
    int lineno = 0, rc = 0;
    while (a->tokens && fgets(line, sizeof(line), f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char tok[TOKEN_MAX + 1], ten[TENANT_MAX + 1], extra[2];
        int k = sscanf(line, "%256s %64s %1s", tok, ten, extra);
        if (k <= 0)
            continue;
        if (k != 2 || strlen(tok) >= TOKEN_MAX || strlen(ten) >= TENANT_MAX ||
            strlen(tok) < 16) {
            snprintf(errbuf, len,
                     "%s:%d: want \"TOKEN TENANT\" with a token of 16..%d "
                     "characters and a tenant of at most %d",
                     path, lineno, TOKEN_MAX - 1, TENANT_MAX - 1);
            rc = -EINVAL;
            break;
        }
        if (a->n == MAX_TOKENS) {
            snprintf(errbuf, len, "%s: more than %d tokens", path, MAX_TOKENS);
            rc = -E2BIG;
            break;
        }
        strcpy(a->tokens[a->n].token, tok);
        strcpy(a->tokens[a->n].tenant, ten);
        a->n++;
    }
    fclose(f);
    if (!a->tokens) {
        snprintf(errbuf, len, "out of memory");
        rc = -ENOMEM;
    } else if (rc == 0 && a->n == 0) {
        snprintf(errbuf, len, "%s holds no tokens", path);
        rc = -EINVAL;
    }
    if (rc < 0) {
        auth_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    free(a->tokens);
    free(a);
}

/* Compare without an early exit, so timing does not leak a prefix. */
static bool same(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = (unsigned char)(la != lb);
    for (size_t i = 0; i < la && i < lb; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

const char *auth_tenant(const struct auth *a, const char *header)
{
    if (a->open)
        return "default";
    static const char bearer[] = "Bearer ";
    if (!header || strncmp(header, bearer, sizeof(bearer) - 1) != 0)
        return NULL;
    const char *tok = header + sizeof(bearer) - 1;
    const char *found = NULL;
    for (size_t i = 0; i < a->n; i++)
        if (same(tok, a->tokens[i].token) && !found)
            found = a->tokens[i].tenant;
    return found;
}
