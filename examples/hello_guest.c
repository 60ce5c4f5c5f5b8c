/* hello_guest.c: boot a small 64-bit guest on the vcpud core and emulate
 * the UART it prints through – the smallest complete controller. */
#include <stdio.h>
#include <stdlib.h>

#include "vcpud.h"

extern const unsigned char hello_guest_start[], hello_guest_end[];

#define RAM_SIZE 0x200000u
#define LOAD 0x1000u
#define STACK 0x8000u
#define TABLES 0x100000u
#define MAX_EXITS 100000

static int fail(const char *what, const struct vcpud_err *err)
{
    fprintf(stderr, "hello_guest: %s: %s\n", what, err->msg);
    return 1;
}

/* Answer the UART's line status register: transmitter always empty. */
static int uart_in(struct vcpud_vcpu *cpu, const struct vcpud_exit *x,
                   struct vcpud_err *err)
{
    uint64_t values[VCPUD_IO_DATA_MAX];
    for (uint32_t i = 0; i < x->u.io.count; i++)
        values[i] = x->u.io.port == 0x3fd ? 0x60 : 0;
    return vcpud_vcpu_set_io_result(cpu, values, x->u.io.count, err);
}

int main(void)
{
    struct vcpud_err err = {0};
    const struct vcpud_backend *be;
    struct vcpud_vm *vm = NULL;
    struct vcpud_vcpu *cpu;

    if (vcpud_backend_find("auto", &be, &err) < 0)
        return fail("no backend", &err);
    if (vcpud_vm_create(be, NULL, &vm, &err) < 0 ||
        vcpud_vm_add_region(vm, 0, 0, RAM_SIZE, 0, &err) < 0 ||
        vcpud_vm_write(vm, LOAD, hello_guest_start,
                       (size_t)(hello_guest_end - hello_guest_start),
                       &err) < 0 ||
        vcpud_vcpu_create(vm, 0, &cpu, &err) < 0 ||
        vcpud_setup_mode(cpu, VCPUD_MODE_LONG, LOAD, STACK, TABLES, &err) < 0) {
        vcpud_vm_destroy(vm);
        return fail("setting up the guest", &err);
    }

    int status = 1;
    for (int n = 0; n < MAX_EXITS; n++) {
        struct vcpud_exit x;
        if (vcpud_vcpu_run(cpu, NULL, &x, &err) < 0) {
            fail("run", &err);
            break;
        }
        if (x.kind == VCPUD_EXIT_IO_OUT && x.u.io.port == 0x3f8) {
            fwrite(x.u.io.data, 1, x.u.io.count, stdout);
            fflush(stdout);
        } else if (x.kind == VCPUD_EXIT_IO_IN) {
            if (uart_in(cpu, &x, &err) < 0) {
                fail("answering the UART", &err);
                break;
            }
        } else if (x.kind == VCPUD_EXIT_HLT) {
            fprintf(stderr, "hello_guest: guest halted after %d exits\n", n);
            status = 0;
            break;
        } else {
            fprintf(stderr, "hello_guest: unexpected %s exit\n",
                    vcpud_exit_kind_name(x.kind));
            break;
        }
    }
    vcpud_vm_destroy(vm);
    return status;
}
