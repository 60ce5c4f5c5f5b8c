/* vcpuctl.h: what vcpuctl's files share – the parsed options, the
 * subcommand table, argument and number parsing, reporting and printing.
 *
 * Every handler returns the process exit status: 0 done, 1 the server or a
 * local file failed, 2 the command line was wrong. Each error is printed
 * where it is found (vcpuctl_usage, vcpuctl_rpc_failed, vcpuctl_failed), so
 * callers only pass the status up.
 */
#ifndef VCPUCTL_H
#define VCPUCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vcpud_client.h"

#define VCPUCTL_OK 0
#define VCPUCTL_FAILED 1
#define VCPUCTL_USAGE 2

/* The global options, fixed once parsed. */
struct vcpuctl_opts {
    const char *server;   /* --server, $VCPUD_SERVER, unix:/tmp/vcpud.sock */
    const char *token;    /* --token, $VCPUD_TOKEN; NULL for none */
    bool json;            /* --json */
    uint32_t deadline_ms; /* --deadline-ms; 0: the client's default */
};

struct vcpuctl_cmd;

/* One invocation: the options, the subcommand being run and the client,
 * connected on first use so that a usage error never needs a server. */
struct vcpuctl {
    struct vcpuctl_opts opt;
    const struct vcpuctl_cmd *cmd;
    struct vcpud_client *client;
    bool batch; /* commands come from stdin, which no FILE "-" may read */
    unsigned long line; /* in batch, the line being run, for messages */
};

/* A subcommand flag: a switch when (value) is NULL, else it takes one
 * argument, named (value) in the help. */
struct vcpuctl_flag {
    const char *name; /* "--steps" */
    const char *value;
    const char *help;
};

#define VCPUCTL_POS_MAX 64
#define VCPUCTL_FLAGS_MAX 8

/* A subcommand's arguments split into positionals and flags. */
struct vcpuctl_args {
    const struct vcpuctl_cmd *cmd;
    const char *pos[VCPUCTL_POS_MAX];
    int npos;
    /* Per entry of cmd->flags: its value ("" for a switch), NULL if not
     * given. */
    const char *flag[VCPUCTL_FLAGS_MAX];
    bool help; /* --help or -h: print the usage, do nothing else */
};

typedef int vcpuctl_handler(struct vcpuctl *ctl, const struct vcpuctl_args *a);

struct vcpuctl_cmd {
    const char *name;
    /* Positionals, space separated: "VM VCPU FILE"; "[X]" is optional and
     * a trailing "X..." takes one or more. Counted and named from here. */
    const char *args;
    const char *opts;    /* the flags part of the usage line, or "" */
    const char *summary; /* one line */
    const char *details; /* more text for --help, or NULL */
    const struct vcpuctl_flag *flags; /* up to VCPUCTL_FLAGS_MAX, {NULL} */
    vcpuctl_handler *run;
};

/* vcpuctl_cmds.c: the table, in the order --help lists it. */
extern const struct vcpuctl_cmd vcpuctl_cmds[];
extern const size_t vcpuctl_ncmds;
const struct vcpuctl_cmd *vcpuctl_find_cmd(const char *name);

/* vcpuctl.c: run one subcommand, argv[0] its name; returns its status. */
int vcpuctl_dispatch(struct vcpuctl *ctl, int argc, char **argv);

/* vcpuctl_batch.c: run the subcommands of (in), one a line, over the one
 * connection; with --json each ends with {"done":NAME,"line":N,
 * "status":S}. Returns the status of the last command that failed, or 0. */
int vcpuctl_batch(struct vcpuctl *ctl, FILE *in);

/* vcpuctl_args.c */

/* Split argv (after the subcommand's name) into (a); a usage error is
 * printed and returns VCPUCTL_USAGE. */
int vcpuctl_split_args(struct vcpuctl *ctl, const struct vcpuctl_cmd *cmd,
                       int argc, char **argv, struct vcpuctl_args *a);
/* The value of flag (name) ("" for a switch), or NULL when not given. */
const char *vcpuctl_flag(const struct vcpuctl_args *a, const char *name);

/* Numbers: decimal or 0x hex, with no sign or spaces; (suffix) also takes
 * a K, M or G multiplier (KiB, MiB, GiB). 0, -EINVAL or -ERANGE. */
int vcpuctl_parse_u64(const char *s, bool suffix, uint64_t *out);

/* The same, reporting a usage error naming (what): 0 or VCPUCTL_USAGE. */
int vcpuctl_arg_u64(struct vcpuctl *ctl, const char *what, const char *s,
                    uint64_t *out);
int vcpuctl_arg_size(struct vcpuctl *ctl, const char *what, const char *s,
                     uint64_t *out);
int vcpuctl_arg_u32(struct vcpuctl *ctl, const char *what, const char *s,
                    uint32_t max, uint32_t *out);
/* A comma-separated list of up to (max) u64 values into (out). */
int vcpuctl_arg_list(struct vcpuctl *ctl, const char *what, const char *s,
                     uint64_t *out, uint32_t max, uint32_t *n);
/* Positionals 0 and 1 as VM and VCPU ids. */
int vcpuctl_arg_vm_vcpu(struct vcpuctl *ctl, const struct vcpuctl_args *a,
                        uint32_t *vm, uint32_t *vcpu);

/* vcpuctl_report.c */

/* The client, connected on first use: 0, or VCPUCTL_FAILED (printed). */
int vcpuctl_connect(struct vcpuctl *ctl);
/* Print a usage error for the current subcommand; returns VCPUCTL_USAGE. */
int vcpuctl_usage(struct vcpuctl *ctl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Print the failure of (rpc) with the status name and the server's
 * message; returns VCPUCTL_FAILED. */
int vcpuctl_rpc_failed(struct vcpuctl *ctl, const char *rpc, int rc,
                       const struct vcpud_client_status *st);
/* A local failure (a file, a malformed input); returns VCPUCTL_FAILED. */
int vcpuctl_failed(struct vcpuctl *ctl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Something the user should know that is no error, on stderr. (key) and
 * (value) go into the JSON form as an extra field when not NULL. */
void vcpuctl_note(struct vcpuctl *ctl, const char *key, const char *value,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A command that has nothing to print: {"ok":true} in JSON, silence
 * otherwise. Returns VCPUCTL_OK. */
int vcpuctl_done(struct vcpuctl *ctl);
/* "NOT_FOUND", ...: the canonical name of a gRPC status code. */
const char *vcpuctl_status_name(int code);

/* vcpuctl_file.c: local files; "-" is stdin or stdout. Failures are
 * reported (vcpuctl_failed) and return VCPUCTL_FAILED. */
const char *vcpuctl_file_name(const char *path);
/* Until (len) bytes or end of file; 0 or -errno, *got the bytes read. */
int vcpuctl_read_full(int fd, void *buf, size_t len, size_t *got);
int vcpuctl_write_full(int fd, const void *buf, size_t len);
int vcpuctl_open_in(struct vcpuctl *ctl, const char *path, int *fd);
void vcpuctl_close_in(int fd);
/* Create or truncate (path) for writing. */
int vcpuctl_open_out(struct vcpuctl *ctl, const char *path, int *fd);
/* Close what vcpuctl_open_out opened; (rc) is the verdict so far, and a
 * failed file is removed rather than left half written. */
int vcpuctl_close_out(struct vcpuctl *ctl, const char *path, int fd, int rc);
/* The whole file, refused when over (max) bytes; *buf is malloc'd and the
 * caller frees it. */
int vcpuctl_read_file(struct vcpuctl *ctl, const char *path, size_t max,
                      uint8_t **buf, size_t *len);
int vcpuctl_write_file(struct vcpuctl *ctl, const char *path, const void *buf,
                       size_t len);

/* vcpuctl_exit.c: an exit, text or one JSON line, with its posted writes
 * and, when not NULL, the registers that came with it. */
void vcpuctl_print_exit(const struct vcpuctl *ctl, const struct vcpud_exit *x,
                        const struct vcpud_regs *regs,
                        const struct vcpud_sregs *sregs);

/* vcpuctl_regs.c */
struct json_writer;
void vcpuctl_print_regs(const struct vcpuctl *ctl, const struct vcpud_regs *r);
void vcpuctl_print_sregs(const struct vcpuctl *ctl,
                         const struct vcpud_sregs *s);
/* The registers as members of the JSON object (w) is writing. */
void vcpuctl_json_regs(struct json_writer *w, const struct vcpud_regs *r);
void vcpuctl_json_sregs(struct json_writer *w, const struct vcpud_sregs *s);
/* Apply "NAME=VALUE" to (r) / (s); a usage error naming what was wrong
 * returns VCPUCTL_USAGE. */
int vcpuctl_assign_reg(struct vcpuctl *ctl, struct vcpud_regs *r,
                       const char *assignment);
int vcpuctl_assign_sreg(struct vcpuctl *ctl, struct vcpud_sregs *s,
                        const char *assignment);

/* Handlers, by file. */
vcpuctl_handler vcpuctl_vm_create, vcpuctl_vm_list, vcpuctl_vm_show,
    vcpuctl_vm_destroy, vcpuctl_mem_add, vcpuctl_mem_remove, vcpuctl_posted_add,
    vcpuctl_posted_remove;                                         /* _vm.c */
vcpuctl_handler vcpuctl_mem_write, vcpuctl_mem_read, vcpuctl_load; /* _mem.c */
vcpuctl_handler vcpuctl_vcpu_create, vcpuctl_vcpu_destroy, vcpuctl_mode,
    vcpuctl_regs, vcpuctl_set_reg, vcpuctl_sregs, vcpuctl_set_sreg,
    vcpuctl_snapshot, vcpuctl_restore, vcpuctl_inject, vcpuctl_nmi,
    vcpuctl_irq_line, vcpuctl_cancel; /* _vcpu.c */
vcpuctl_handler vcpuctl_run, vcpuctl_attach, vcpuctl_io_result,
    vcpuctl_mmio_result; /* _run.c */

#endif
