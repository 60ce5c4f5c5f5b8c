/* vcpuctl_batch.c: `vcpuctl batch` – subcommands read from stdin, one a
 * line, in one process over one connection. A script or a co-process pays
 * for the process start and gRPC's set-up once rather than per command:
 * ~20 ms a command here, most of a second in the nested test guest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vcpuctl.h"
#include "vcpuctl_json.h"

/* A subcommand, its positionals and flags with their values. */
#define WORDS_MAX (VCPUCTL_POS_MAX + 2 * VCPUCTL_FLAGS_MAX + 1)

/*
 * Split (line) in place into words: blanks separate them, '...' and "..."
 * quote (no escapes), a word starting with # begins a comment. 0, or a
 * usage error naming what is wrong.
 */
static int split_words(struct vcpuctl *ctl, char *line, char **argv, int *argc)
{
    *argc = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (!*p || *p == '#')
            return VCPUCTL_OK;
        if (*argc == WORDS_MAX)
            return vcpuctl_usage(ctl, "more than %d words on a line",
                                 WORDS_MAX);
        argv[(*argc)++] = p;
        char *out = p; /* words shrink as quotes go */
        while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            if (*p == '\'' || *p == '"') {
                char q = *p++;
                char *end = strchr(p, q);
                if (!end)
                    return vcpuctl_usage(ctl, "unbalanced %c", q);
                memmove(out, p, (size_t)(end - p));
                out += end - p;
                p = end + 1;
            } else {
                *out++ = *p++;
            }
        }
        bool last = !*p;
        *out = '\0';
        if (last)
            return VCPUCTL_OK;
        p++;
    }
}

/* With --json, the line that ends each command's output, so a co-process
 * reading stdout knows when to stop waiting. */
static void print_done(const char *name, unsigned long lineno, int status)
{
    struct json_writer w;
    json_begin(&w, stdout);
    json_str(&w, "done", name);
    json_u32(&w, "line", (uint32_t)lineno);
    json_u32(&w, "status", (uint32_t)status);
    json_end(&w);
}

int vcpuctl_batch(struct vcpuctl *ctl, FILE *in)
{
    char *line = NULL;
    size_t cap = 0;
    unsigned long lineno = 0;
    int status = VCPUCTL_OK;
    ctl->batch = true;
    while (getline(&line, &cap, in) >= 0) {
        ctl->line = ++lineno;
        char *argv[WORDS_MAX];
        int argc, rc = split_words(ctl, line, argv, &argc);
        if (rc == VCPUCTL_OK && argc == 0)
            continue; /* blank or comment */
        /* A line that did not split has no trustworthy first word. */
        const char *name = rc == VCPUCTL_OK ? argv[0] : "";
        if (rc == VCPUCTL_OK)
            rc = vcpuctl_dispatch(ctl, argc, argv);
        if (ctl->opt.json)
            print_done(name, lineno, rc);
        fflush(stdout);
        if (rc)
            status = rc;
    }
    free(line);
    ctl->batch = false;
    ctl->line = 0;
    return status;
}
