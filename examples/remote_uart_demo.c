/* remote_uart_demo.c: a controller that runs the demo guest on a vcpud
 * server and emulates its devices over gRPC – a 16550-style UART wired to
 * this process's stdin/stdout and a timer/counter in MMIO space. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vcpud_client.h"

extern const unsigned char demo_guest_start[], demo_guest_end[];

#define RAM_SIZE 0x200000u
#define LOAD 0x1000u
#define STACK 0x8000u
#define TABLES 0x100000u
#define UART 0x3f8
#define LSR 0x3fd
#define LSR_DR 0x01
#define LSR_THRE_TEMT 0x60
#define TIMER 0xd0000000ull
#define DEFAULT_LINE "hello from the controller (no input on stdin)\n"

struct devices {
    /* UART receive side: what stdin gave, or the default line. */
    char rx[512];
    size_t rx_len, rx_pos;
    bool rx_eof;
    bool got_input;
    /* Timer: microseconds since the controller started; scratch. */
    struct timespec t0;
    uint64_t scratch;
};

static uint64_t now_us(const struct devices *d)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)(t.tv_sec - d->t0.tv_sec) * 1000000u +
           (uint64_t)((t.tv_nsec - d->t0.tv_nsec) / 1000);
}

/* Fill the receive buffer from stdin without blocking the guest when
 * nothing is there; at EOF the embedded default line stands in. */
static void uart_poll_input(struct devices *d)
{
    if (d->rx_pos < d->rx_len || d->rx_eof)
        return;
    struct pollfd p = {.fd = 0, .events = POLLIN};
    if (poll(&p, 1, 10) <= 0)
        return;
    ssize_t n = read(0, d->rx, sizeof(d->rx));
    if (n > 0) {
        d->rx_len = (size_t)n;
        d->got_input = true;
    } else {
        /* Nothing ever typed (a script, CI): the guest still gets a line. */
        d->rx_eof = true;
        d->rx_len = 0;
        if (!d->got_input) {
            memcpy(d->rx, DEFAULT_LINE, strlen(DEFAULT_LINE));
            d->rx_len = strlen(DEFAULT_LINE);
        }
    }
    d->rx_pos = 0;
}

static uint64_t uart_in(struct devices *d, uint16_t port)
{
    if (port == LSR) {
        uart_poll_input(d);
        return LSR_THRE_TEMT | (d->rx_pos < d->rx_len ? LSR_DR : 0);
    }
    if (port == UART && d->rx_pos < d->rx_len)
        return (uint8_t)d->rx[d->rx_pos++];
    return 0;
}

static uint64_t timer_read(struct devices *d, uint64_t addr)
{
    return addr == TIMER ? now_us(d) : addr == TIMER + 8 ? d->scratch : 0;
}

static int fail(const char *what, const struct vcpud_client_status *st)
{
    fprintf(stderr, "remote_uart_demo: %s: %s\n", what, st->msg);
    return 1;
}

static const char usage[] =
    "usage: remote_uart_demo [--server ADDR] [--token TOKEN]\n"
    "Run the demo guest on a vcpud server (default unix:/tmp/vcpud.sock) and\n"
    "emulate its UART (stdin/stdout) and timer remotely.\n";

int main(int argc, char **argv)
{
    const char *server = "unix:/tmp/vcpud.sock";
    struct vcpud_client_opts opts = {.deadline_ms = 60000};
    static const struct option longopts[] = {
        {"server", required_argument, NULL, 's'},
        {"token", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 's')
            server = optarg;
        else if (c == 't')
            opts.token = optarg;
        else {
            fputs(usage, c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }

    struct vcpud_client *cli;
    struct vcpud_client_status st = {0};
    if (vcpud_client_connect(server, &opts, &cli, &st) < 0)
        return fail("connect", &st);
    uint32_t vm;
    struct vcpud_vm_config cfg = {.max_vcpus = 1};
    if (vcpud_client_create_vm(cli, &cfg, &vm, &st) < 0) {
        vcpud_client_close(cli);
        return fail("CreateVm (is vcpud running there?)", &st);
    }
    int status = 1;
    size_t len = (size_t)(demo_guest_end - demo_guest_start);
    if (vcpud_client_add_region(cli, vm, 0, 0, RAM_SIZE, false, &st) < 0 ||
        vcpud_client_write_memory(cli, vm, LOAD, demo_guest_start, len,
                                  &st) < 0 ||
        vcpud_client_create_vcpu(cli, vm, 0, &st) < 0 ||
        vcpud_client_setup_mode(cli, vm, 0, VCPUD_MODE_LONG, LOAD, STACK,
                                TABLES, &st) < 0) {
        fail("setting up the guest", &st);
        goto out;
    }

    struct devices d = {0};
    clock_gettime(CLOCK_MONOTONIC, &d.t0);
    struct vcpud_client_run req = {0};
    uint64_t answer;
    unsigned long exits = 0;
    for (;;) {
        struct vcpud_exit x;
        if (vcpud_client_run(cli, vm, 0, &req, &x, &st) < 0) {
            fail("Run", &st);
            break;
        }
        exits++;
        req = (struct vcpud_client_run){0};
        if (x.kind == VCPUD_EXIT_IO_OUT && x.u.io.port == UART) {
            fwrite(x.u.io.data, 1, x.u.io.count, stdout);
            fflush(stdout);
        } else if (x.kind == VCPUD_EXIT_IO_IN && x.u.io.count == 1) {
            /* The answer rides on the next Run: one round trip per exit. */
            answer = uart_in(&d, x.u.io.port);
            req = (struct vcpud_client_run){.result = VCPUD_RESULT_IO,
                                            .io_values = &answer,
                                            .io_count = 1};
        } else if (x.kind == VCPUD_EXIT_MMIO_READ) {
            req = (struct vcpud_client_run){
                .result = VCPUD_RESULT_MMIO,
                .mmio_value = timer_read(&d, x.u.mmio.addr)};
        } else if (x.kind == VCPUD_EXIT_MMIO_WRITE &&
                   x.u.mmio.addr == TIMER + 8) {
            d.scratch = x.u.mmio.data;
        } else if (x.kind == VCPUD_EXIT_HLT) {
            fprintf(stderr, "remote_uart_demo: guest halted after %lu exits\n",
                    exits);
            status = 0;
            break;
        } else {
            fprintf(stderr, "remote_uart_demo: unexpected %s exit\n",
                    vcpud_exit_kind_name(x.kind));
            break;
        }
    }
out:
    vcpud_client_destroy_vm(cli, vm, &st);
    vcpud_client_close(cli);
    return status;
}
