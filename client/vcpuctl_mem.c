/* vcpuctl_mem.c: subcommands moving files in and out of guest memory –
 * mem-write, mem-read and load (flat images and ELF). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vcpuctl.h"
#include "vcpuctl_elf.h"
#include "vcpuctl_json.h"

/* Files go through in pieces this big, one call each: bounded memory for
 * any file size, and well under ReadMemory's 64 MiB. */
#define PIECE (1u << 20)
/* A guest image is read whole (ELF needs random access). */
#define IMAGE_MAX (1u << 30)
/* mem-read with --json and FILE "-" puts the bytes on one line as hex. */
#define JSON_DATA_MAX (16u << 20)

int vcpuctl_mem_write(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    uint32_t vm;
    uint64_t gpa;
    int fd, rc;
    if ((rc = vcpuctl_arg_u32(ctl, "VM", a->pos[0], UINT32_MAX, &vm)) ||
        (rc = vcpuctl_arg_size(ctl, "GPA", a->pos[1], &gpa)) ||
        (rc = vcpuctl_connect(ctl)) ||
        (rc = vcpuctl_open_in(ctl, a->pos[2], &fd)))
        return rc;
    uint8_t *buf = malloc(PIECE);
    if (!buf) {
        vcpuctl_close_in(fd);
        return vcpuctl_failed(ctl, "out of memory");
    }
    uint64_t total = 0;
    for (;;) {
        size_t n;
        int e = vcpuctl_read_full(fd, buf, PIECE, &n);
        if (e < 0) {
            rc = vcpuctl_failed(ctl, "reading %s: %s",
                                vcpuctl_file_name(a->pos[2]), strerror(-e));
            break;
        }
        if (n == 0)
            break;
        struct vcpud_client_status st;
        if ((e = vcpud_client_write_memory(ctl->client, vm, gpa + total, buf, n,
                                           &st)) < 0) {
            rc = vcpuctl_rpc_failed(ctl, "WriteMemory", e, &st);
            break;
        }
        total += n;
    }
    free(buf);
    vcpuctl_close_in(fd);
    if (rc)
        return rc;
    if (ctl->opt.json) {
        struct json_writer w;
        json_begin(&w, stdout);
        json_hex64(&w, "guest_phys_addr", gpa);
        json_hex64(&w, "length", total);
        json_end(&w);
    }
    return VCPUCTL_OK;
}

/* --json with FILE "-": the bytes as one JSON line rather than raw. */
static int read_to_json(struct vcpuctl *ctl, uint32_t vm, uint64_t gpa,
                        uint64_t len)
{
    if (len > JSON_DATA_MAX)
        return vcpuctl_usage(ctl,
                             "with --json and FILE -, LEN is at most %uM; "
                             "give a file name for more",
                             JSON_DATA_MAX >> 20);
    uint8_t *buf = malloc(len ? (size_t)len : 1);
    if (!buf)
        return vcpuctl_failed(ctl, "out of memory");
    struct vcpud_client_status st;
    int rc =
        vcpud_client_read_memory(ctl->client, vm, gpa, buf, (size_t)len, &st);
    if (rc < 0) {
        free(buf);
        return vcpuctl_rpc_failed(ctl, "ReadMemory", rc, &st);
    }
    struct json_writer w;
    json_begin(&w, stdout);
    json_hex64(&w, "guest_phys_addr", gpa);
    json_hex64(&w, "length", len);
    json_bytes(&w, "data", buf, (size_t)len);
    json_end(&w);
    free(buf);
    return VCPUCTL_OK;
}

/* Guest memory to (fd), a piece at a time. */
static int read_to_fd(struct vcpuctl *ctl, uint32_t vm, uint64_t gpa,
                      uint64_t len, int fd, const char *path)
{
    uint8_t *buf = malloc(PIECE);
    if (!buf)
        return vcpuctl_failed(ctl, "out of memory");
    int rc = VCPUCTL_OK;
    for (uint64_t done = 0; done < len && rc == VCPUCTL_OK;) {
        size_t n = len - done < PIECE ? (size_t)(len - done) : PIECE;
        struct vcpud_client_status st;
        int e =
            vcpud_client_read_memory(ctl->client, vm, gpa + done, buf, n, &st);
        if (e < 0)
            rc = vcpuctl_rpc_failed(ctl, "ReadMemory", e, &st);
        else if ((e = vcpuctl_write_full(fd, buf, n)) < 0)
            rc = vcpuctl_failed(ctl, "writing %s: %s", vcpuctl_file_name(path),
                                strerror(-e));
        done += n;
    }
    free(buf);
    return rc;
}

int vcpuctl_mem_read(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    uint32_t vm;
    uint64_t gpa, len;
    int rc;
    if ((rc = vcpuctl_arg_u32(ctl, "VM", a->pos[0], UINT32_MAX, &vm)) ||
        (rc = vcpuctl_arg_size(ctl, "GPA", a->pos[1], &gpa)) ||
        (rc = vcpuctl_arg_size(ctl, "LEN", a->pos[2], &len)))
        return rc;
    if (len && len - 1 > UINT64_MAX - gpa)
        return vcpuctl_usage(ctl, "GPA + LEN wraps around the address space");
    const char *path = a->pos[3];
    bool to_stdout = strcmp(path, "-") == 0;
    if ((rc = vcpuctl_connect(ctl)))
        return rc;
    if (to_stdout && ctl->opt.json)
        return read_to_json(ctl, vm, gpa, len);
    int fd;
    if ((rc = vcpuctl_open_out(ctl, path, &fd)))
        return rc;
    rc = read_to_fd(ctl, vm, gpa, len, fd, path);
    rc = vcpuctl_close_out(ctl, path, fd, rc);
    if (rc || !ctl->opt.json)
        return rc;
    struct json_writer w;
    json_begin(&w, stdout);
    json_hex64(&w, "guest_phys_addr", gpa);
    json_hex64(&w, "length", len);
    json_str(&w, "file", path);
    json_end(&w);
    return VCPUCTL_OK;
}

/* Refuse before writing anything when part of [gpa, +len) has no RAM:
 * WriteMemory would fail only there, leaving a half-loaded image. */
static int check_backed(struct vcpuctl *ctl, uint32_t vm, uint64_t gpa,
                        uint64_t len, const char *what)
{
    struct vcpud_region_info r[VCPUD_VM_MAX_REGIONS];
    size_t n;
    struct vcpud_client_status st;
    int rc = vcpud_client_get_vm(ctl->client, vm, NULL, NULL, NULL, r, &n, &st);
    if (rc < 0)
        return vcpuctl_rpc_failed(ctl, "GetVm", rc, &st);
    uint64_t at = gpa, end = gpa + len; /* callers checked: no wrap */
    while (at < end) {
        size_t i;
        for (i = 0; i < n; i++)
            if (at >= r[i].gpa && at - r[i].gpa < r[i].size)
                break;
        if (i == n)
            return vcpuctl_failed(
                ctl,
                "%s [0x%" PRIx64 ", +0x%" PRIx64
                ") is not all guest RAM: nothing at 0x%" PRIx64
                " (add a region with mem-add first)",
                what, gpa, len, at);
        uint64_t region_end = r[i].gpa + r[i].size;
        at = region_end > at ? region_end : end;
    }
    return VCPUCTL_OK;
}

static int write_mem(struct vcpuctl *ctl, uint32_t vm, uint64_t gpa,
                     const void *buf, size_t len)
{
    struct vcpud_client_status st;
    int rc = vcpud_client_write_memory(ctl->client, vm, gpa, buf, len, &st);
    return rc < 0 ? vcpuctl_rpc_failed(ctl, "WriteMemory", rc, &st)
                  : VCPUCTL_OK;
}

/* A segment's bss: zeros from a buffer of at most PIECE bytes. */
static int write_zeros(struct vcpuctl *ctl, uint32_t vm, uint64_t gpa,
                       uint64_t len)
{
    if (len == 0)
        return VCPUCTL_OK;
    size_t piece = len < PIECE ? (size_t)len : PIECE;
    uint8_t *zeros = calloc(1, piece);
    if (!zeros)
        return vcpuctl_failed(ctl, "out of memory");
    int rc = VCPUCTL_OK;
    for (uint64_t done = 0; done < len && rc == VCPUCTL_OK;) {
        size_t n = len - done < piece ? (size_t)(len - done) : piece;
        rc = write_mem(ctl, vm, gpa + done, zeros, n);
        done += n;
    }
    free(zeros);
    return rc;
}

static void print_elf(const struct vcpuctl *ctl, const struct vcpuctl_elf *e)
{
    if (!ctl->opt.json) {
        printf("elf%u entry=0x%" PRIx64 "\n", e->bits, e->entry);
        for (size_t i = 0; i < e->nseg; i++)
            printf("  segment paddr=0x%" PRIx64 " filesz=0x%" PRIx64
                   " memsz=0x%" PRIx64 "\n",
                   e->seg[i].paddr, e->seg[i].filesz, e->seg[i].memsz);
        return;
    }
    struct json_writer w;
    json_begin(&w, stdout);
    json_str(&w, "format", "elf");
    json_u32(&w, "class", e->bits);
    json_hex64(&w, "entry", e->entry);
    json_array(&w, "segments");
    for (size_t i = 0; i < e->nseg; i++) {
        json_object(&w, NULL);
        json_hex64(&w, "paddr", e->seg[i].paddr);
        json_hex64(&w, "filesz", e->seg[i].filesz);
        json_hex64(&w, "memsz", e->seg[i].memsz);
        json_close(&w);
    }
    json_end(&w);
}

static int load_elf(struct vcpuctl *ctl, uint32_t vm, const char *path,
                    const uint8_t *buf, size_t len)
{
    struct vcpuctl_elf *e = malloc(sizeof(*e));
    if (!e)
        return vcpuctl_failed(ctl, "out of memory");
    char why[256];
    int rc = VCPUCTL_OK;
    if (vcpuctl_elf_parse(buf, len, e, why, sizeof(why)) < 0)
        rc = vcpuctl_failed(ctl, "%s: bad ELF: %s", vcpuctl_file_name(path),
                            why);
    for (size_t i = 0; rc == VCPUCTL_OK && i < e->nseg; i++) {
        char what[48];
        snprintf(what, sizeof(what), "ELF segment %zu", i);
        rc = check_backed(ctl, vm, e->seg[i].paddr, e->seg[i].memsz, what);
    }
    for (size_t i = 0; rc == VCPUCTL_OK && i < e->nseg; i++) {
        const struct vcpuctl_elf_seg *s = &e->seg[i];
        rc = write_mem(ctl, vm, s->paddr, buf + s->offset, (size_t)s->filesz);
        if (rc == VCPUCTL_OK)
            rc = write_zeros(ctl, vm, s->paddr + s->filesz,
                             s->memsz - s->filesz);
    }
    if (rc == VCPUCTL_OK) {
        bool inside = false;
        for (size_t i = 0; i < e->nseg; i++)
            inside |= e->entry >= e->seg[i].paddr &&
                      e->entry - e->seg[i].paddr < e->seg[i].memsz;
        if (!inside)
            vcpuctl_note(ctl, NULL, NULL,
                         "the entry point 0x%" PRIx64 " lies in no loaded "
                         "segment (p_paddr differs from p_vaddr?)",
                         e->entry);
        print_elf(ctl, e);
    }
    free(e);
    return rc;
}

static int load_flat(struct vcpuctl *ctl, uint32_t vm, uint64_t addr,
                     const uint8_t *buf, size_t len)
{
    if (len && len - 1 > UINT64_MAX - addr)
        return vcpuctl_usage(ctl, "the image at --addr wraps around the "
                                  "address space");
    int rc = len ? check_backed(ctl, vm, addr, len, "the image") : 0;
    if (rc || (rc = write_mem(ctl, vm, addr, buf, len)))
        return rc;
    if (ctl->opt.json) {
        struct json_writer w;
        json_begin(&w, stdout);
        json_str(&w, "format", "flat");
        json_hex64(&w, "addr", addr);
        json_hex64(&w, "length", len);
        json_end(&w);
    } else {
        printf("flat addr=0x%" PRIx64 " length=0x%zx\n", addr, len);
    }
    return VCPUCTL_OK;
}

int vcpuctl_load(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    uint32_t vm;
    uint64_t addr = 0;
    bool flat = vcpuctl_flag(a, "--flat") != NULL;
    bool elf = vcpuctl_flag(a, "--elf") != NULL;
    const char *addr_s = vcpuctl_flag(a, "--addr");
    int rc;
    if ((rc = vcpuctl_arg_u32(ctl, "VM", a->pos[0], UINT32_MAX, &vm)))
        return rc;
    if (elf && (flat || addr_s))
        return vcpuctl_usage(ctl, "--elf loads at the ELF's own addresses: "
                                  "drop --flat and --addr");
    if (flat && !addr_s)
        return vcpuctl_usage(ctl, "--flat needs --addr GPA");
    if (addr_s && (rc = vcpuctl_arg_size(ctl, "--addr", addr_s, &addr)))
        return rc;
    uint8_t *buf;
    size_t len;
    if ((rc = vcpuctl_read_file(ctl, a->pos[1], IMAGE_MAX, &buf, &len)))
        return rc;
    if (!elf && !addr_s && !vcpuctl_is_elf(buf, len)) {
        free(buf);
        return vcpuctl_usage(ctl,
                             "%s is no ELF file: load it with --flat "
                             "--addr GPA",
                             vcpuctl_file_name(a->pos[1]));
    }
    if ((rc = vcpuctl_connect(ctl)) == VCPUCTL_OK)
        rc = addr_s ? load_flat(ctl, vm, addr, buf, len)
                    : load_elf(ctl, vm, a->pos[1], buf, len);
    free(buf);
    return rc;
}
