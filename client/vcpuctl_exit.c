/* vcpuctl_exit.c: an exit as one line, `io-out port=0x3f8 size=1 count=1
 * data=48 ("H")` or {"exit":"io-out","port":1016,...}, with the posted
 * writes it carries and, from an attached stream, the registers. */
#include <inttypes.h>
#include <stdio.h>

#include "vcpuctl.h"
#include "vcpuctl_json.h"

static const char *cancel_reason(enum vcpud_cancel_reason r)
{
    switch (r) {
    case VCPUD_CANCEL_REQUESTED:
        return "requested";
    case VCPUD_CANCEL_TIMEOUT:
        return "timeout";
    }
    return "unspecified";
}

/* Bytes a guest wrote to a port, as C would quote them: UART output is
 * what this is mostly for, and it should read as text. */
static void print_quoted(const uint8_t *p, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c >= 0x20 && c < 0x7f)
            putchar(c);
        else
            printf("\\x%02x", c);
    }
    putchar('"');
}

/* Little endian, as the exit carries it. */
static uint32_t io_value(const struct vcpud_exit_io *io)
{
    uint32_t v = 0;
    for (unsigned i = io->size; i-- > 0;)
        v = (v << 8) | io->data[i];
    return v;
}

/* Posted writes happened before the exit: they come first, one a line. */
static void print_posted_text(const struct vcpud_exit *x)
{
    for (uint32_t i = 0; i < x->nposted; i++) {
        const struct vcpud_posted_write *p = &x->posted[i];
        printf("posted-write %s=0x%" PRIx64 " size=%u data=0x%" PRIx64 "\n",
               p->pio ? "port" : "addr", p->addr, p->size, p->data);
    }
}

static void print_text(const struct vcpud_exit *x)
{
    print_posted_text(x);
    fputs(vcpud_exit_kind_name(x->kind), stdout);
    switch (x->kind) {
    case VCPUD_EXIT_IO_OUT:
    case VCPUD_EXIT_IO_IN: {
        const struct vcpud_exit_io *io = &x->u.io;
        printf(" port=0x%x size=%u count=%" PRIu32, io->port, io->size,
               io->count);
        if (x->kind == VCPUD_EXIT_IO_IN)
            break;
        size_t n = (size_t)io->size * io->count;
        fputs(" data=", stdout);
        for (size_t i = 0; i < n; i++)
            printf("%02x", io->data[i]);
        if (io->size == 1) {
            fputs(" (", stdout);
            print_quoted(io->data, n);
            putchar(')');
        } else if (io->count == 1) {
            printf(" (0x%" PRIx32 ")", io_value(io));
        }
        break;
    }
    case VCPUD_EXIT_MMIO_WRITE:
    case VCPUD_EXIT_MMIO_READ:
        printf(" addr=0x%" PRIx64 " size=%u", x->u.mmio.addr, x->u.mmio.size);
        if (x->kind == VCPUD_EXIT_MMIO_WRITE)
            printf(" data=0x%" PRIx64, x->u.mmio.data);
        break;
    case VCPUD_EXIT_FAIL_ENTRY:
        printf(" hardware_reason=0x%" PRIx64 " cpu=%" PRIu32,
               x->u.fail_entry.hw_reason, x->u.fail_entry.cpu);
        break;
    case VCPUD_EXIT_INTERNAL_ERROR:
        printf(" suberror=%" PRIu32, x->u.internal.suberror);
        for (uint32_t i = 0; i < x->u.internal.ndata; i++)
            printf("%s0x%" PRIx64, i ? "," : " data=", x->u.internal.data[i]);
        break;
    case VCPUD_EXIT_DEBUG:
        printf(" exception=%" PRIu32 " pc=0x%" PRIx64 " dr6=0x%" PRIx64
               " dr7=0x%" PRIx64,
               x->u.debug.exception, x->u.debug.pc, x->u.debug.dr6,
               x->u.debug.dr7);
        break;
    case VCPUD_EXIT_CANCELED:
        printf(" reason=%s", cancel_reason(x->u.canceled.reason));
        break;
    case VCPUD_EXIT_UNKNOWN:
        printf(" reason=%" PRIu32, x->u.unknown.reason);
        break;
    case VCPUD_EXIT_POSTED:
        printf(" writes=%" PRIu32, x->nposted);
        break;
    default:
        break;
    }
    putchar('\n');
}

static void json_posted(struct json_writer *w, const struct vcpud_exit *x)
{
    if (x->nposted == 0)
        return;
    json_array(w, "posted");
    for (uint32_t i = 0; i < x->nposted; i++) {
        const struct vcpud_posted_write *p = &x->posted[i];
        json_object(w, NULL);
        json_bool(w, "pio", p->pio);
        json_hex64(w, "addr", p->addr);
        json_u32(w, "size", p->size);
        json_hex64(w, "data", p->data);
        json_close(w);
    }
    json_close(w);
}

static void print_json(const struct vcpud_exit *x, const struct vcpud_regs *r,
                       const struct vcpud_sregs *s)
{
    struct json_writer w;
    json_begin(&w, stdout);
    json_str(&w, "exit", vcpud_exit_kind_name(x->kind));
    switch (x->kind) {
    case VCPUD_EXIT_IO_OUT:
    case VCPUD_EXIT_IO_IN:
        json_u32(&w, "port", x->u.io.port);
        json_u32(&w, "size", x->u.io.size);
        json_u32(&w, "count", x->u.io.count);
        if (x->kind == VCPUD_EXIT_IO_OUT)
            json_bytes(&w, "data", x->u.io.data,
                       (size_t)x->u.io.size * x->u.io.count);
        break;
    case VCPUD_EXIT_MMIO_WRITE:
    case VCPUD_EXIT_MMIO_READ:
        json_hex64(&w, "addr", x->u.mmio.addr);
        json_u32(&w, "size", x->u.mmio.size);
        if (x->kind == VCPUD_EXIT_MMIO_WRITE)
            json_hex64(&w, "data", x->u.mmio.data);
        break;
    case VCPUD_EXIT_FAIL_ENTRY:
        json_hex64(&w, "hardware_reason", x->u.fail_entry.hw_reason);
        json_u32(&w, "cpu", x->u.fail_entry.cpu);
        break;
    case VCPUD_EXIT_INTERNAL_ERROR:
        json_u32(&w, "suberror", x->u.internal.suberror);
        json_array(&w, "data");
        for (uint32_t i = 0; i < x->u.internal.ndata; i++)
            json_hex64(&w, NULL, x->u.internal.data[i]);
        json_close(&w);
        break;
    case VCPUD_EXIT_DEBUG:
        json_u32(&w, "exception", x->u.debug.exception);
        json_hex64(&w, "pc", x->u.debug.pc);
        json_hex64(&w, "dr6", x->u.debug.dr6);
        json_hex64(&w, "dr7", x->u.debug.dr7);
        break;
    case VCPUD_EXIT_CANCELED:
        json_str(&w, "reason", cancel_reason(x->u.canceled.reason));
        break;
    case VCPUD_EXIT_UNKNOWN:
        json_u32(&w, "reason", x->u.unknown.reason);
        break;
    default:
        break;
    }
    json_posted(&w, x);
    if (r) {
        json_object(&w, "regs");
        vcpuctl_json_regs(&w, r);
        json_close(&w);
    }
    if (s) {
        json_object(&w, "sregs");
        vcpuctl_json_sregs(&w, s);
        json_close(&w);
    }
    json_end(&w);
}

void vcpuctl_print_exit(const struct vcpuctl *ctl, const struct vcpud_exit *x,
                        const struct vcpud_regs *regs,
                        const struct vcpud_sregs *sregs)
{
    if (ctl->opt.json) {
        print_json(x, regs, sregs);
        return;
    }
    print_text(x);
    if (regs)
        vcpuctl_print_regs(ctl, regs);
    if (sregs)
        vcpuctl_print_sregs(ctl, sregs);
    /* Each exit is news for whoever reads a pipe while the guest runs. */
    fflush(stdout);
}
