/* vcpuctl_args.c: a subcommand's arguments – positionals and flags split
 * by the table's description, and the numbers in them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vcpuctl.h"

/* Options main() takes before the subcommand, to point out a misplaced
 * one rather than only calling it unknown. */
static const char *const global_flags[] = {"--server", "--token", "--json",
                                           "--deadline-ms"};

/* The (i)th word of cmd->args, brackets and dots kept, into (buf). */
static const char *pos_name(const struct vcpuctl_cmd *cmd, int i, char *buf,
                            size_t len)
{
    const char *p = cmd->args;
    for (;;) {
        p += strspn(p, " ");
        size_t n = strcspn(p, " ");
        if (n == 0)
            break;
        if (i-- == 0) {
            snprintf(buf, len, "%.*s", (int)n, p);
            return buf;
        }
        p += n;
    }
    snprintf(buf, len, "argument");
    return buf;
}

/* How many positionals cmd->args asks for: (*min) required, (*max) at most
 * (-1: no limit). */
static void pos_counts(const struct vcpuctl_cmd *cmd, int *min, int *max)
{
    *min = *max = 0;
    const char *p = cmd->args;
    for (;;) {
        p += strspn(p, " ");
        size_t n = strcspn(p, " ");
        if (n == 0)
            return;
        bool optional = p[0] == '[';
        bool many = n > 3 && strncmp(p + n - 3, "...", 3) == 0;
        if (!optional)
            (*min)++;
        if (*max >= 0)
            *max = many ? -1 : *max + 1;
        p += n;
    }
}

static int find_flag(const struct vcpuctl_cmd *cmd, const char *name,
                     size_t len)
{
    for (int i = 0; cmd->flags && cmd->flags[i].name; i++)
        if (strlen(cmd->flags[i].name) == len &&
            strncmp(cmd->flags[i].name, name, len) == 0)
            return i;
    return -1;
}

static int unknown_flag(struct vcpuctl *ctl, const char *arg, size_t len)
{
    for (size_t i = 0; i < sizeof(global_flags) / sizeof(*global_flags); i++)
        if (strlen(global_flags[i]) == len &&
            strncmp(global_flags[i], arg, len) == 0)
            return vcpuctl_usage(ctl,
                                 "%.*s is a global option: put it before "
                                 "the subcommand",
                                 (int)len, arg);
    return vcpuctl_usage(ctl, "unknown option %.*s", (int)len, arg);
}

int vcpuctl_split_args(struct vcpuctl *ctl, const struct vcpuctl_cmd *cmd,
                       int argc, char **argv, struct vcpuctl_args *a)
{
    memset(a, 0, sizeof(*a));
    a->cmd = cmd;
    bool options_done = false;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (options_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
            /* "-" is a file name: stdin or stdout. */
            if (a->npos == VCPUCTL_POS_MAX)
                return vcpuctl_usage(ctl, "more than %d arguments",
                                     VCPUCTL_POS_MAX);
            a->pos[a->npos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            /* Whatever else is wrong, the user asked how it goes. */
            a->help = true;
            return VCPUCTL_OK;
        }
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        int f = arg[1] == '-' ? find_flag(cmd, arg, len) : -1;
        if (f < 0)
            return unknown_flag(ctl, arg, len);
        const struct vcpuctl_flag *fl = &cmd->flags[f];
        if (a->flag[f])
            return vcpuctl_usage(ctl, "%s given twice", fl->name);
        if (!fl->value) {
            if (eq)
                return vcpuctl_usage(ctl, "%s takes no value", fl->name);
            a->flag[f] = "";
        } else if (eq) {
            a->flag[f] = eq + 1;
        } else if (i + 1 < argc) {
            a->flag[f] = argv[++i];
        } else {
            return vcpuctl_usage(ctl, "%s needs a value %s", fl->name,
                                 fl->value);
        }
    }
    int min, max;
    char name[64];
    pos_counts(cmd, &min, &max);
    if (a->npos < min)
        return vcpuctl_usage(ctl, "missing %s",
                             pos_name(cmd, a->npos, name, sizeof(name)));
    if (max >= 0 && a->npos > max)
        return vcpuctl_usage(ctl, "unexpected argument '%s'", a->pos[max]);
    return VCPUCTL_OK;
}

const char *vcpuctl_flag(const struct vcpuctl_args *a, const char *name)
{
    int f = find_flag(a->cmd, name, strlen(name));
    /* A handler asking for a flag its table entry lacks is a bug that
     * would otherwise read as "not given". */
    if (f < 0)
        abort();
    return a->flag[f];
}

static int digit(char c, unsigned base)
{
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    return d >= 0 && (unsigned)d < base ? d : -1;
}

/* By hand rather than strtoull, which takes "-1" as 2^64-1, leading
 * spaces and "+", and reads "010" as octal. */
int vcpuctl_parse_u64(const char *s, bool suffix, uint64_t *out)
{
    unsigned base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    if (digit(*s, base) < 0)
        return -EINVAL;
    uint64_t v = 0;
    int d;
    for (; (d = digit(*s, base)) >= 0; s++) {
        if (v > (UINT64_MAX - (uint64_t)d) / base)
            return -ERANGE;
        v = v * base + (uint64_t)d;
    }
    if (suffix && *s) {
        unsigned shift = *s == 'K' || *s == 'k'   ? 10
                         : *s == 'M' || *s == 'm' ? 20
                         : *s == 'G' || *s == 'g' ? 30
                                                  : 0;
        if (!shift || s[1])
            return -EINVAL;
        if (v > UINT64_MAX >> shift)
            return -ERANGE;
        v <<= shift;
        s++;
    }
    if (*s)
        return -EINVAL;
    *out = v;
    return 0;
}

static int bad_number(struct vcpuctl *ctl, const char *what, const char *s,
                      int rc, bool suffix)
{
    if (rc == -ERANGE)
        return vcpuctl_usage(ctl, "%s '%s' is too large", what, s);
    return vcpuctl_usage(ctl,
                         "bad number '%s' for %s: expected decimal or 0x "
                         "hex%s",
                         s, what, suffix ? ", optionally with K, M or G" : "");
}

int vcpuctl_arg_u64(struct vcpuctl *ctl, const char *what, const char *s,
                    uint64_t *out)
{
    int rc = vcpuctl_parse_u64(s, false, out);
    return rc < 0 ? bad_number(ctl, what, s, rc, false) : VCPUCTL_OK;
}

int vcpuctl_arg_size(struct vcpuctl *ctl, const char *what, const char *s,
                     uint64_t *out)
{
    int rc = vcpuctl_parse_u64(s, true, out);
    return rc < 0 ? bad_number(ctl, what, s, rc, true) : VCPUCTL_OK;
}

int vcpuctl_arg_u32(struct vcpuctl *ctl, const char *what, const char *s,
                    uint32_t max, uint32_t *out)
{
    uint64_t v;
    int rc = vcpuctl_parse_u64(s, false, &v);
    if (rc < 0)
        return bad_number(ctl, what, s, rc, false);
    if (v > max)
        return vcpuctl_usage(ctl, "%s %s is out of range (at most %u)", what, s,
                             max);
    *out = (uint32_t)v;
    return VCPUCTL_OK;
}

int vcpuctl_arg_list(struct vcpuctl *ctl, const char *what, const char *s,
                     uint64_t *out, uint32_t max, uint32_t *n)
{
    *n = 0;
    char word[64];
    for (const char *p = s;; p++) {
        size_t len = strcspn(p, ",");
        if (*n == max)
            return vcpuctl_usage(ctl, "%s: more than %u values", what, max);
        if (len == 0 || len >= sizeof(word))
            return vcpuctl_usage(ctl,
                                 "%s '%s': expected numbers separated by "
                                 "commas",
                                 what, s);
        memcpy(word, p, len);
        word[len] = '\0';
        int rc = vcpuctl_arg_u64(ctl, what, word, &out[*n]);
        if (rc)
            return rc;
        (*n)++;
        p += len;
        if (!*p)
            return VCPUCTL_OK;
    }
}

int vcpuctl_arg_vm_vcpu(struct vcpuctl *ctl, const struct vcpuctl_args *a,
                        uint32_t *vm, uint32_t *vcpu)
{
    int rc = vcpuctl_arg_u32(ctl, "VM", a->pos[0], UINT32_MAX, vm);
    if (rc == 0)
        rc = vcpuctl_arg_u32(ctl, "VCPU", a->pos[1], UINT32_MAX, vcpu);
    return rc;
}
