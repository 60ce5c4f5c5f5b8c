/* vcpuctl_vcpu.c: subcommands on one vCPU other than running it –
 * lifecycle, mode setup, registers, snapshots, interrupts and cancel. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vcpuctl.h"
#include "vcpuctl_json.h"
#include "vcpud/snapshot.h"

/* For the subcommands that send just (VM, VCPU). */
typedef int vcpu_rpc(struct vcpud_client *c, uint32_t vm, uint32_t vcpu,
                     struct vcpud_client_status *st);

static int simple_vcpu_call(struct vcpuctl *ctl, const struct vcpuctl_args *a,
                            vcpu_rpc *fn, const char *rpc)
{
    uint32_t vm, vcpu;
    int rc;
    if ((rc = vcpuctl_arg_vm_vcpu(ctl, a, &vm, &vcpu)) ||
        (rc = vcpuctl_connect(ctl)))
        return rc;
    struct vcpud_client_status st;
    if ((rc = fn(ctl->client, vm, vcpu, &st)) < 0)
        return vcpuctl_rpc_failed(ctl, rpc, rc, &st);
    return vcpuctl_done(ctl);
}

int vcpuctl_vcpu_create(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    return simple_vcpu_call(ctl, a, vcpud_client_create_vcpu, "CreateVcpu");
}

int vcpuctl_vcpu_destroy(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    return simple_vcpu_call(ctl, a, vcpud_client_destroy_vcpu, "DestroyVcpu");
}

int vcpuctl_nmi(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    return simple_vcpu_call(ctl, a, vcpud_client_inject_nmi, "InjectNmi");
}

int vcpuctl_cancel(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    return simple_vcpu_call(ctl, a, vcpud_client_cancel, "Cancel");
}

static const struct {
    const char *name;
    enum vcpud_mode mode;
} modes[] = {
    {"real", VCPUD_MODE_REAL},
    {"protected", VCPUD_MODE_PROTECTED},
    {"long", VCPUD_MODE_LONG},
};

int vcpuctl_mode(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    uint32_t vm, vcpu;
    int rc;
    if ((rc = vcpuctl_arg_vm_vcpu(ctl, a, &vm, &vcpu)))
        return rc;
    size_t m;
    for (m = 0; m < sizeof(modes) / sizeof(*modes); m++)
        if (strcmp(a->pos[2], modes[m].name) == 0)
            break;
    if (m == sizeof(modes) / sizeof(*modes))
        return vcpuctl_usage(ctl, "unknown mode '%s' (real, protected or long)",
                             a->pos[2]);
    const char *entry_s = vcpuctl_flag(a, "--entry");
    const char *stack_s = vcpuctl_flag(a, "--stack");
    const char *tables_s = vcpuctl_flag(a, "--tables");
    uint64_t entry, stack = 0, tables = 0;
    if (!entry_s)
        return vcpuctl_usage(ctl, "--entry ADDR is required");
    /* A default would put the tables over whatever the user loaded. */
    if (!tables_s && modes[m].mode != VCPUD_MODE_REAL)
        return vcpuctl_usage(ctl,
                             "%s mode needs --tables ADDR: 4 KiB aligned RAM "
                             "for its %s",
                             modes[m].name,
                             modes[m].mode == VCPUD_MODE_LONG
                                 ? "GDT and page tables (28 KiB)"
                                 : "GDT (4 KiB)");
    if ((rc = vcpuctl_arg_size(ctl, "--entry", entry_s, &entry)) ||
        (stack_s && (rc = vcpuctl_arg_size(ctl, "--stack", stack_s, &stack))) ||
        (tables_s &&
         (rc = vcpuctl_arg_size(ctl, "--tables", tables_s, &tables))) ||
        (rc = vcpuctl_connect(ctl)))
        return rc;
    struct vcpud_client_status st;
    if ((rc = vcpud_client_setup_mode(ctl->client, vm, vcpu, modes[m].mode,
                                      entry, stack, tables, &st)) < 0)
        return vcpuctl_rpc_failed(ctl, "SetupMode", rc, &st);
    return vcpuctl_done(ctl);
}

int vcpuctl_regs(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    uint32_t vm, vcpu;
    int rc;
    if ((rc = vcpuctl_arg_vm_vcpu(ctl, a, &vm, &vcpu)) ||
        (rc = vcpuctl_connect(ctl)))
        return rc;
    struct vcpud_regs r;
    struct vcpud_client_status st;
    if ((rc = vcpud_client_get_regs(ctl->client, vm, vcpu, &r, &st)) < 0)
        return vcpuctl_rpc_failed(ctl, "GetRegs", rc, &st);
    vcpuctl_print_regs(ctl, &r);
    return VCPUCTL_OK;
}

int vcpuctl_set_reg(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    uint32_t vm, vcpu;
    int rc;
    if ((rc = vcpuctl_arg_vm_vcpu(ctl, a, &vm, &vcpu)))
        return rc;
    /* Every assignment is checked before anything is sent. */
    struct vcpud_regs r = {0};
    for (int i = 2; i < a->npos; i++)
        if ((rc = vcpuctl_assign_reg(ctl, &r, a->pos[i])))
            return rc;
    if ((rc = vcpuctl_connect(ctl)))
        return rc;
    struct vcpud_client_status st;
    if ((rc = vcpud_client_get_regs(ctl->client, vm, vcpu, &r, &st)) < 0)
        return vcpuctl_rpc_failed(ctl, "GetRegs", rc, &st);
    for (int i = 2; i < a->npos; i++)
        vcpuctl_assign_reg(ctl, &r, a->pos[i]);
    if ((rc = vcpud_client_set_regs(ctl->client, vm, vcpu, &r, &st)) < 0)
        return vcpuctl_rpc_failed(ctl, "SetRegs", rc, &st);
    return vcpuctl_done(ctl);
}

int vcpuctl_sregs(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    uint32_t vm, vcpu;
    int rc;
    if ((rc = vcpuctl_arg_vm_vcpu(ctl, a, &vm, &vcpu)) ||
        (rc = vcpuctl_connect(ctl)))
        return rc;
    struct vcpud_sregs s;
    struct vcpud_client_status st;
    if ((rc = vcpud_client_get_sregs(ctl->client, vm, vcpu, &s, &st)) < 0)
        return vcpuctl_rpc_failed(ctl, "GetSpecialRegs", rc, &st);
    vcpuctl_print_sregs(ctl, &s);
    return VCPUCTL_OK;
}

int vcpuctl_set_sreg(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    uint32_t vm, vcpu;
    int rc;
    if ((rc = vcpuctl_arg_vm_vcpu(ctl, a, &vm, &vcpu)))
        return rc;
    struct vcpud_sregs s = {0};
    for (int i = 2; i < a->npos; i++)
        if ((rc = vcpuctl_assign_sreg(ctl, &s, a->pos[i])))
            return rc;
    if ((rc = vcpuctl_connect(ctl)))
        return rc;
    struct vcpud_client_status st;
    if ((rc = vcpud_client_get_sregs(ctl->client, vm, vcpu, &s, &st)) < 0)
        return vcpuctl_rpc_failed(ctl, "GetSpecialRegs", rc, &st);
    for (int i = 2; i < a->npos; i++)
        vcpuctl_assign_sreg(ctl, &s, a->pos[i]);
    if ((rc = vcpud_client_set_sregs(ctl->client, vm, vcpu, &s, &st)) < 0)
        return vcpuctl_rpc_failed(ctl, "SetSpecialRegs", rc, &st);
    return vcpuctl_done(ctl);
}

int vcpuctl_snapshot(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    uint32_t vm, vcpu;
    int rc;
    if ((rc = vcpuctl_arg_vm_vcpu(ctl, a, &vm, &vcpu)) ||
        (rc = vcpuctl_connect(ctl)))
        return rc;
    void *buf;
    size_t len;
    struct vcpud_client_status st;
    if ((rc = vcpud_client_snapshot(ctl->client, vm, vcpu, &buf, &len, &st)) <
        0)
        return vcpuctl_rpc_failed(ctl, "Snapshot", rc, &st);
    const char *path = a->pos[2];
    bool to_stdout = strcmp(path, "-") == 0;
    /* With --json, stdout holds JSON lines only: a snapshot sent there
     * goes into the line as hex. */
    if (!(to_stdout && ctl->opt.json))
        rc = vcpuctl_write_file(ctl, path, buf, len);
    if (rc == VCPUCTL_OK && ctl->opt.json) {
        struct json_writer w;
        json_begin(&w, stdout);
        json_hex64(&w, "length", len);
        if (to_stdout)
            json_bytes(&w, "data", buf, len);
        else
            json_str(&w, "file", path);
        json_end(&w);
    }
    free(buf);
    return rc;
}

int vcpuctl_restore(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    uint32_t vm, vcpu;
    int rc;
    uint8_t *buf;
    size_t len;
    if ((rc = vcpuctl_arg_vm_vcpu(ctl, a, &vm, &vcpu)) ||
        (rc = vcpuctl_read_file(ctl, a->pos[2], VCPUD_SNAP_MAX_SIZE, &buf,
                                &len)))
        return rc;
    if (len == 0) {
        free(buf);
        return vcpuctl_failed(ctl, "%s is empty: no snapshot in it",
                              vcpuctl_file_name(a->pos[2]));
    }
    struct vcpud_client_status st;
    if ((rc = vcpuctl_connect(ctl)) == VCPUCTL_OK &&
        (rc = vcpud_client_restore(ctl->client, vm, vcpu, buf, len, &st)) < 0)
        rc = vcpuctl_rpc_failed(ctl, "Restore", rc, &st);
    free(buf);
    return rc ? rc : vcpuctl_done(ctl);
}

int vcpuctl_inject(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    uint32_t vm, vcpu, vector;
    int rc;
    if ((rc = vcpuctl_arg_vm_vcpu(ctl, a, &vm, &vcpu)) ||
        (rc = vcpuctl_arg_u32(ctl, "VECTOR", a->pos[2], 255, &vector)) ||
        (rc = vcpuctl_connect(ctl)))
        return rc;
    struct vcpud_client_status st;
    if ((rc = vcpud_client_inject_interrupt(ctl->client, vm, vcpu, vector,
                                            &st)) < 0)
        return vcpuctl_rpc_failed(ctl, "InjectInterrupt", rc, &st);
    return vcpuctl_done(ctl);
}

int vcpuctl_irq_line(struct vcpuctl *ctl, const struct vcpuctl_args *a)
{
    uint32_t vm, irq, level;
    int rc;
    if ((rc = vcpuctl_arg_u32(ctl, "VM", a->pos[0], UINT32_MAX, &vm)) ||
        (rc = vcpuctl_arg_u32(ctl, "IRQ", a->pos[1], UINT32_MAX, &irq)) ||
        (rc = vcpuctl_arg_u32(ctl, "LEVEL", a->pos[2], 1, &level)) ||
        (rc = vcpuctl_connect(ctl)))
        return rc;
    struct vcpud_client_status st;
    if ((rc = vcpud_client_set_irq_line(ctl->client, vm, irq, level != 0,
                                        &st)) < 0)
        return vcpuctl_rpc_failed(ctl, "SetIrqLine", rc, &st);
    return vcpuctl_done(ctl);
}
