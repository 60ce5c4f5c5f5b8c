/* vcpuctl.c: vcpuctl's main – the global options, help, and dispatch to
 * the subcommand table (vcpuctl_cmds.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vcpuctl.h"

#define DEFAULT_SERVER "unix:/tmp/vcpud.sock"

static const char global_usage[] =
    "usage: vcpuctl [OPTIONS] SUBCOMMAND [ARGS]\n"
    "Drive the vCPUs of a vcpud server: one subcommand per RPC.\n"
    "\n"
    "Options, before the subcommand:\n"
    "  --server ADDR      127.0.0.1:PORT, [::1]:PORT or unix:PATH (default:\n"
    "                     $VCPUD_SERVER, else " DEFAULT_SERVER ")\n"
    "  --token TOKEN      bearer token for a server with --token-file\n"
    "                     (default: $VCPUD_TOKEN)\n"
    "  --json             one JSON object per line on stdout for every\n"
    "                     result and exit; errors as JSON on stderr\n"
    "  --deadline-ms N    deadline of each call (default 30000; a run adds\n"
    "                     its --timeout-ms)\n"
    "  --help             this text; SUBCOMMAND --help describes one\n"
    "\n"
    "Subcommands:\n";

static const char global_tail[] =
    "  batch         Read subcommands from stdin, one a line, over one\n"
    "                connection; with --json each ends with a line\n"
    "                {\"done\":NAME,\"line\":N,\"status\":S}.\n"
    "  help [SUBCOMMAND]\n"
    "\n"
    "Numbers are decimal or 0x hex; addresses and sizes also take K, M, G.\n"
    "Exit status: 0 done, 1 the server or a local file failed, 2 usage.\n";

static const char batch_usage[] =
    "usage: vcpuctl [OPTIONS] batch\n"
    "Run the subcommands read from standard input, one a line, over one\n"
    "connection. Words are split at blanks; '...' and \"...\" quote; # starts\n"
    "a comment. No FILE may be - (stdin holds the commands). With --json\n"
    "each command's output ends with {\"done\":NAME,\"line\":N,\"status\":S}.\n"
    "The exit status is that of the last command that failed, or 0.\n";

static void print_global_help(void)
{
    fputs(global_usage, stdout);
    for (size_t i = 0; i < vcpuctl_ncmds; i++)
        printf("  %-13s %s\n", vcpuctl_cmds[i].name, vcpuctl_cmds[i].summary);
    fputs(global_tail, stdout);
}

/* (text) as words filling lines up to HELP_WIDTH, the first continuing the
 * current line at column (indent) - 1, the others indented that far. */
#define HELP_WIDTH 79
static void print_wrapped(const char *text, int indent)
{
    int col = indent - 1;
    for (const char *p = text; *p;) {
        p += strspn(p, " ");
        int n = (int)strcspn(p, " ");
        if (n == 0)
            break;
        if (col > indent - 1 && col + 1 + n > HELP_WIDTH) {
            printf("\n%*s", indent - 1, "");
            col = indent - 1;
        }
        printf(" %.*s", n, p);
        col += 1 + n;
        p += n;
    }
    putchar('\n');
}

static void print_cmd_help(const struct vcpuctl_cmd *cmd)
{
    printf("usage: vcpuctl [OPTIONS] %s%s%s%s%s\n%s\n", cmd->name,
           *cmd->args ? " " : "", cmd->args, *cmd->opts ? " " : "", cmd->opts,
           cmd->summary);
    if (cmd->flags && cmd->flags[0].name)
        putchar('\n');
    for (const struct vcpuctl_flag *f = cmd->flags; f && f->name; f++) {
        char name[48];
        snprintf(name, sizeof(name), "%s%s%s", f->name, f->value ? " " : "",
                 f->value ? f->value : "");
        printf("  %-22s", name);
        print_wrapped(f->help, 25);
    }
    if (cmd->details)
        printf("\n%s", cmd->details);
}

/* The value of a global option given as "--name VALUE" or "--name=VALUE";
 * NULL (and *i unchanged) when argv[*i] is not (name). */
static const char *option_value(int argc, char **argv, int *i, const char *name,
                                bool *missing)
{
    size_t len = strlen(name);
    const char *arg = argv[*i];
    if (strncmp(arg, name, len) != 0)
        return NULL;
    if (arg[len] == '=')
        return arg + len + 1;
    if (arg[len] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

/* A token gRPC would refuse on every call; said once, as a usage error. */
static bool token_ok(const char *t)
{
    for (; *t; t++)
        if (*t < 0x21 || *t > 0x7e)
            return false;
    return true;
}

/* The options before the subcommand; *next is the subcommand's index.
 * Returns -1 for --help (printed), else a status. */
static int parse_global(struct vcpuctl *ctl, int argc, char **argv, int *next)
{
    int i;
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *arg = argv[i], *v;
        bool missing = false;
        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_global_help();
            return -1;
        }
        if (strcmp(arg, "--json") == 0) {
            ctl->opt.json = true;
        } else if ((v = option_value(argc, argv, &i, "--server", &missing))) {
            ctl->opt.server = v;
        } else if ((v = option_value(argc, argv, &i, "--token", &missing))) {
            ctl->opt.token = v;
        } else if ((v = option_value(argc, argv, &i, "--deadline-ms",
                                     &missing))) {
            int rc = vcpuctl_arg_u32(ctl, "--deadline-ms", v, UINT32_MAX,
                                     &ctl->opt.deadline_ms);
            if (rc)
                return rc;
            if (ctl->opt.deadline_ms == 0)
                return vcpuctl_usage(ctl, "--deadline-ms must be at least 1");
        } else if (missing) {
            return vcpuctl_usage(ctl, "%s needs a value", arg);
        } else {
            return vcpuctl_usage(ctl, "unknown option %s", arg);
        }
    }
    if (!*ctl->opt.server)
        return vcpuctl_usage(ctl, "--server: empty address");
    if (ctl->opt.token && !token_ok(ctl->opt.token))
        return vcpuctl_usage(ctl, "the token must be printable ASCII without "
                                  "spaces");
    *next = i;
    return VCPUCTL_OK;
}

/* --json changes how errors look, so it counts even after a bad option:
 * a look at the global options before they are parsed. */
static bool wants_json(int argc, char **argv)
{
    static const char *const with_value[] = {"--server", "--token",
                                             "--deadline-ms"};
    for (int i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--json") == 0)
            return true;
        for (size_t k = 0; k < sizeof(with_value) / sizeof(*with_value); k++)
            if (strcmp(argv[i], with_value[k]) == 0)
                i++; /* its value, which may not start with '-' */
    }
    return false;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

int vcpuctl_dispatch(struct vcpuctl *ctl, int argc, char **argv)
{
    const char *name = argv[0];
    if (strcmp(name, "help") == 0) {
        /* "vcpuctl help [SUBCOMMAND]", as many tools take it. */
        const char *about = argc > 1 ? argv[1] : "help";
        const struct vcpuctl_cmd *c = vcpuctl_find_cmd(about);
        if (c)
            print_cmd_help(c);
        else if (strcmp(about, "batch") == 0)
            fputs(batch_usage, stdout);
        else if (strcmp(about, "help") == 0)
            print_global_help();
        else
            return vcpuctl_usage(ctl, "unknown subcommand '%s'", about);
        return VCPUCTL_OK;
    }
    if (strcmp(name, "batch") == 0) {
        if (argc > 1 &&
            (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            fputs(batch_usage, stdout);
            return VCPUCTL_OK;
        }
        if (ctl->batch)
            return vcpuctl_usage(ctl, "batch inside batch");
        if (argc > 1)
            return vcpuctl_usage(ctl, "batch takes no arguments: it reads "
                                      "standard input");
        return vcpuctl_batch(ctl, stdin);
    }
    const struct vcpuctl_cmd *cmd = vcpuctl_find_cmd(name);
    if (!cmd)
        return vcpuctl_usage(ctl, "unknown subcommand '%s'", name);
    ctl->cmd = cmd;
    struct vcpuctl_args args;
    int rc = vcpuctl_split_args(ctl, cmd, argc - 1, argv + 1, &args);
    if (rc == VCPUCTL_OK && args.help)
        print_cmd_help(cmd);
    else if (rc == VCPUCTL_OK)
        rc = cmd->run(ctl, &args);
    ctl->cmd = NULL;
    return rc;
}

int main(int argc, char **argv)
{
    struct vcpuctl ctl = {.opt = {.server = env("VCPUD_SERVER"),
                                  .token = env("VCPUD_TOKEN"),
                                  .json = wants_json(argc, argv)}};
    if (!ctl.opt.server)
        ctl.opt.server = DEFAULT_SERVER;
    int next = argc, rc = parse_global(&ctl, argc, argv, &next);
    if (rc)
        return rc < 0 ? VCPUCTL_OK : rc;
    if (next == argc)
        return vcpuctl_usage(&ctl, "no subcommand given");
    rc = vcpuctl_dispatch(&ctl, argc - next, argv + next);
    vcpud_client_close(ctl.client);
    /* A result that never reached stdout (a full disk, a closed pipe) is
     * no success. */
    if (fflush(stdout) != 0 || ferror(stdout))
        return vcpuctl_failed(&ctl, "writing to standard output failed");
    return rc;
}
