/* kvm_regs.c: general and special registers between KVM's structures and
 * vcpud's. */
#include <errno.h>

#include "kvm_priv.h"

/* Field copies between structures of the same shape; (dst) and (src) are
 * the parameters of the functions below. */
#define COPY(f) dst->f = src->f;
#define COPY_AS(f, type) dst->f = (type)src->f;

void kvm__regs_from(struct vcpud_regs *dst, const struct kvm_regs *src)
{
    VCPUD_REGS_FIELDS(COPY)
}

void kvm__regs_to(struct kvm_regs *dst, const struct vcpud_regs *src)
{
    VCPUD_REGS_FIELDS(COPY)
}

static void seg_from(struct vcpud_segment *dst, const struct kvm_segment *src)
{
    VCPUD_SEGMENT_FIELDS(COPY_AS)
}

static void seg_to(struct kvm_segment *dst, const struct vcpud_segment *src)
{
    *dst = (struct kvm_segment){0}; /* its padding goes to the kernel too */
    VCPUD_SEGMENT_FIELDS(COPY_AS)
}

void kvm__sregs_from(struct vcpud_sregs *dst, const struct kvm_sregs *src)
{
#define SEG_FROM(n) seg_from(&dst->n, &src->n);
    VCPUD_SREGS_SEGMENTS(SEG_FROM)
#undef SEG_FROM
    dst->gdt = (struct vcpud_dtable){src->gdt.base, src->gdt.limit};
    dst->idt = (struct vcpud_dtable){src->idt.base, src->idt.limit};
    VCPUD_SREGS_SCALARS(COPY)
}

void kvm__sregs_to(struct kvm_sregs *dst, const struct vcpud_sregs *src)
{
#define SEG_TO(n) seg_to(&dst->n, &src->n);
    VCPUD_SREGS_SEGMENTS(SEG_TO)
#undef SEG_TO
    dst->gdt = (struct kvm_dtable){.base = src->gdt.base,
                                   .limit = src->gdt.limit};
    dst->idt = (struct kvm_dtable){.base = src->idt.base,
                                   .limit = src->idt.limit};
    VCPUD_SREGS_SCALARS(COPY)
}

#undef COPY
#undef COPY_AS

int kvm__vcpu_get_regs(struct vcpud_be_vcpu *v, struct vcpud_regs *r,
                       struct vcpud_err *err)
{
    struct kvm_regs k;
    int rc = kvm__ioctl(v->fd, KVM_GET_REGS, &k);
    if (rc < 0)
        return vcpud_err_sys(err, rc, "KVM_GET_REGS failed");
    kvm__regs_from(r, &k);
    return 0;
}

int kvm__vcpu_set_regs(struct vcpud_be_vcpu *v, const struct vcpud_regs *r,
                       struct vcpud_err *err)
{
    struct kvm_regs k;
    kvm__regs_to(&k, r);
    int rc = kvm__ioctl(v->fd, KVM_SET_REGS, &k);
    return rc < 0 ? vcpud_err_sys(err, rc == -EINVAL ? -EINVAL : rc,
                                  "KVM refused the registers")
                  : 0;
}

int kvm__vcpu_get_sregs(struct vcpud_be_vcpu *v, struct vcpud_sregs *s,
                        struct vcpud_err *err)
{
    struct kvm_sregs k;
    int rc = kvm__ioctl(v->fd, KVM_GET_SREGS, &k);
    if (rc < 0)
        return vcpud_err_sys(err, rc, "KVM_GET_SREGS failed");
    kvm__sregs_from(s, &k);
    return 0;
}

int kvm__vcpu_set_sregs(struct vcpud_be_vcpu *v, const struct vcpud_sregs *s,
                        struct vcpud_err *err)
{
    /* Read first: KVM_SET_SREGS also takes the pending-interrupt bitmap,
     * which vcpud does not expose and must not clear. */
    struct kvm_sregs k;
    int rc = kvm__ioctl(v->fd, KVM_GET_SREGS, &k);
    if (rc < 0)
        return vcpud_err_sys(err, rc, "KVM_GET_SREGS failed");
    kvm__sregs_to(&k, s);
    rc = kvm__ioctl(v->fd, KVM_SET_SREGS, &k);
    return rc < 0 ? vcpud_err_sys(err, rc == -EINVAL ? -EINVAL : rc,
                                  "KVM refused the special registers (check "
                                  "CR0/CR4/EFER consistency)")
                  : 0;
}

/*
 * With KVM_CAP_SYNC_REGS, KVM copies the registers into the run area on
 * every exit once asked to: the first call reads them with ioctls and asks,
 * later ones only copy. Nothing is written back (kvm_dirty_regs stays 0):
 * writes go through KVM_SET_REGS/SREGS after the instruction is settled.
 */
int kvm__vcpu_exit_state(struct vcpud_be_vcpu *v, struct vcpud_regs *r,
                         struct vcpud_sregs *s, struct vcpud_err *err)
{
    struct kvm_run *run = v->run;
    __u64 want = (r ? KVM_SYNC_X86_REGS : 0) | (s ? KVM_SYNC_X86_SREGS : 0);
    if ((run->kvm_valid_regs & want) == want && want) {
        if (r)
            kvm__regs_from(r, &run->s.regs.regs);
        if (s)
            kvm__sregs_from(s, &run->s.regs.sregs);
        return 0;
    }
    int rc = 0;
    if (r) {
        struct kvm_regs k;
        if ((rc = kvm__ioctl(v->fd, KVM_GET_REGS, &k)) < 0)
            return vcpud_err_sys(err, rc, "KVM_GET_REGS failed");
        kvm__regs_from(r, &k);
    }
    if (s) {
        struct kvm_sregs k;
        if ((rc = kvm__ioctl(v->fd, KVM_GET_SREGS, &k)) < 0)
            return vcpud_err_sys(err, rc, "KVM_GET_SREGS failed");
        kvm__sregs_from(s, &k);
    }
    if ((v->vm->sync_regs & want) == want)
        run->kvm_valid_regs |= want;
    return 0;
}
