/* vcpu_state.c: reading and writing vCPU state – registers, snapshot and
 * restore – and keeping it whole around half-done instructions. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

/*
 * After an IO or MMIO exit the hypervisor holds the instruction half done:
 * RIP still points at it and the next entry finishes it. State read then
 * would show the instruction unexecuted (an OUT would be repeated after a
 * restore); state written then would be partly overwritten when it
 * finishes. So reads and writes first finish it, without running the guest.
 * Only an IO_IN/MMIO_READ whose answer has not come cannot be finished.
 */
int vcpud__vcpu_settle(struct vcpud_vcpu *vcpu, struct vcpud_err *err)
{
    struct vcpud_pending *p = &vcpu->pending;
    if (p->kind != VCPUD_EXIT_NONE) {
        if (p->replay || !p->have_result)
            return vcpud__pending_check_run(p, vcpu->id, err) < 0 ? -EPROTO : 0;
        const struct vcpud_backend *be = vcpu->vm->be;
        int rc = p->kind == VCPUD_EXIT_IO_IN
                     ? be->vcpu_put_io_in(vcpu->bv, p->data,
                                          vcpud__pending_data_len(p), err)
                     : be->vcpu_put_mmio_read(vcpu->bv, p->value, err);
        vcpud__pending_clear(p);
        if (rc < 0)
            return rc;
    }
    return vcpu->vm->be->vcpu_settle(vcpu->bv, err);
}

/* Claim, settle, and fail with a message naming (what) when the guest still
 * waits for an answer. */
static int begin(struct vcpud_vcpu *vcpu, const char *what,
                 struct vcpud_err *err)
{
    int rc = vcpud__vcpu_claim(vcpu, err);
    if (rc < 0)
        return rc;
    rc = vcpud__vcpu_settle(vcpu, err);
    if (rc == -EPROTO) {
        char pend[96];
        vcpud__pending_describe(&vcpu->pending, pend, sizeof(pend));
        vcpud_err_set(err, rc,
                      "cannot %s vCPU %u while its %s waits for a result: "
                      "supply the result first",
                      what, vcpu->id, pend);
    }
    if (rc < 0)
        vcpud__vcpu_release(vcpu);
    return rc;
}

/* Reading is allowed while an answer is missing: the registers then show
 * the guest stopped at the IO or MMIO instruction. */
static int begin_read(struct vcpud_vcpu *vcpu, struct vcpud_err *err)
{
    int rc = vcpud__vcpu_claim(vcpu, err);
    if (rc < 0)
        return rc;
    rc = vcpud__vcpu_settle(vcpu, err);
    if (rc == -EPROTO) {
        vcpud_err_clear(err);
        rc = 0;
    }
    if (rc < 0)
        vcpud__vcpu_release(vcpu);
    return rc;
}

int vcpud_vcpu_get_regs(struct vcpud_vcpu *vcpu, struct vcpud_regs *regs,
                        struct vcpud_err *err)
{
    int rc = begin_read(vcpu, err);
    if (rc < 0)
        return rc;
    rc = vcpu->vm->be->vcpu_get_regs(vcpu->bv, regs, err);
    vcpud__vcpu_release(vcpu);
    return rc;
}

int vcpud_vcpu_set_regs(struct vcpud_vcpu *vcpu, const struct vcpud_regs *regs,
                        struct vcpud_err *err)
{
    int rc = begin(vcpu, "set the registers of", err);
    if (rc < 0)
        return rc;
    rc = vcpu->vm->be->vcpu_set_regs(vcpu->bv, regs, err);
    vcpud__vcpu_release(vcpu);
    return rc;
}

int vcpud_vcpu_get_sregs(struct vcpud_vcpu *vcpu, struct vcpud_sregs *sregs,
                         struct vcpud_err *err)
{
    int rc = begin_read(vcpu, err);
    if (rc < 0)
        return rc;
    rc = vcpu->vm->be->vcpu_get_sregs(vcpu->bv, sregs, err);
    vcpud__vcpu_release(vcpu);
    return rc;
}

int vcpud_vcpu_set_sregs(struct vcpud_vcpu *vcpu,
                         const struct vcpud_sregs *sregs, struct vcpud_err *err)
{
    int rc = begin(vcpu, "set the special registers of", err);
    if (rc < 0)
        return rc;
    rc = vcpu->vm->be->vcpu_set_sregs(vcpu->bv, sregs, err);
    vcpud__vcpu_release(vcpu);
    return rc;
}

static int save(struct vcpud_vcpu *vcpu, void **buf, size_t *len,
                struct vcpud_err *err)
{
    struct vcpud_snap_writer w;
    vcpud_snap_writer_init(&w);
    const char *name = vcpu->vm->be->name;
    vcpud_snap_add(&w, VCPUD_SNAP_BACKEND, name, (uint32_t)strlen(name));
    int rc = vcpu->vm->be->vcpu_save(vcpu->bv, &w, err);
    if (rc < 0) {
        vcpud_snap_writer_free(&w);
        return rc;
    }
    static _Thread_local uint8_t
        body[VCPUD_PENDING_SECTION_FIXED + VCPUD_IO_DATA_MAX];
    uint32_t n = vcpud__pending_encode(&vcpu->pending, body);
    vcpud_snap_add(&w, VCPUD_SNAP_PENDING, body, n);
    return vcpud_snap_finish(&w, buf, len, err);
}

int vcpud_vcpu_snapshot(struct vcpud_vcpu *vcpu, void **buf, size_t *len,
                        struct vcpud_err *err)
{
    int rc = begin_read(vcpu, err);
    if (rc < 0)
        return rc;
    rc = save(vcpu, buf, len, err);
    vcpud__vcpu_release(vcpu);
    return rc;
}

/* Everything that can be checked without touching the vCPU. */
static int check(struct vcpud_vcpu *vcpu, const void *buf, size_t len,
                 struct vcpud_snap *snap, struct vcpud_pending *pending,
                 struct vcpud_err *err)
{
    int rc = vcpud_snap_parse(buf, len, snap, err);
    if (rc < 0)
        return rc;
    const struct vcpud_snap_section *s =
        vcpud_snap_get(snap, VCPUD_SNAP_BACKEND);
    const char *name = vcpu->vm->be->name;
    if (!s || s->len != strlen(name) || memcmp(s->body, name, s->len) != 0)
        return vcpud_err_set(
            err, -EBADMSG, "snapshot was not taken by the '%s' backend", name);
    rc = vcpu->vm->be->vcpu_check(vcpu->bv, snap, err);
    if (rc < 0)
        return rc;
    s = vcpud_snap_get(snap, VCPUD_SNAP_PENDING);
    if (!s)
        return vcpud_err_set(err, -EBADMSG,
                             "snapshot lacks its 'pending' section");
    return vcpud__pending_decode(pending, s->body, s->len, err);
}

int vcpud_vcpu_restore(struct vcpud_vcpu *vcpu, const void *buf, size_t len,
                       struct vcpud_err *err)
{
    struct vcpud_snap snap;
    struct vcpud_pending *pending = malloc(sizeof(*pending));
    if (!pending)
        return vcpud_err_set(err, -ENOMEM, "out of memory for a restore");

    int rc = vcpud__vcpu_claim(vcpu, err);
    if (rc < 0)
        goto out;
    rc = check(vcpu, buf, len, &snap, pending, err);
    if (rc < 0)
        goto release;

    /* Whatever the vCPU was in the middle of is discarded: finish it with
     * a zero answer if it had none, so the hypervisor holds nothing that
     * would land on top of the restored state. */
    const struct vcpud_backend *be = vcpu->vm->be;
    if (vcpu->pending.kind != VCPUD_EXIT_NONE && !vcpu->pending.have_result &&
        !vcpu->pending.replay) {
        memset(vcpu->pending.data, 0, sizeof(vcpu->pending.data));
        vcpu->pending.value = 0;
        vcpu->pending.have_result = true;
    }
    if (vcpu->pending.replay)
        vcpud__pending_clear(&vcpu->pending);
    rc = vcpud__vcpu_settle(vcpu, err);
    if (rc < 0)
        goto release;

    /* Keep the current state so that a hypervisor refusing part of the new
     * one cannot leave the vCPU half restored. */
    void *old = NULL;
    size_t old_len = 0;
    rc = save(vcpu, &old, &old_len, err);
    if (rc < 0)
        goto release;
    rc = be->vcpu_load(vcpu->bv, &snap, err);
    if (rc < 0) {
        struct vcpud_snap back;
        if (vcpud_snap_parse(old, old_len, &back, NULL) == 0)
            be->vcpu_load(vcpu->bv, &back, NULL);
    } else {
        vcpu->pending = *pending;
    }
    free(old);
release:
    vcpud__vcpu_release(vcpu);
out:
    free(pending);
    return rc;
}
