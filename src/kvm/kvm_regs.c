/* kvm_regs.c: general and special registers between KVM's structures and
 * vcpud's. */
#include <errno.h>

#include "kvm_priv.h"

void kvm__regs_from(struct vcpud_regs *r, const struct kvm_regs *k)
{
    *r = (struct vcpud_regs){
        .rax = k->rax,
        .rbx = k->rbx,
        .rcx = k->rcx,
        .rdx = k->rdx,
        .rsi = k->rsi,
        .rdi = k->rdi,
        .rsp = k->rsp,
        .rbp = k->rbp,
        .r8 = k->r8,
        .r9 = k->r9,
        .r10 = k->r10,
        .r11 = k->r11,
        .r12 = k->r12,
        .r13 = k->r13,
        .r14 = k->r14,
        .r15 = k->r15,
        .rip = k->rip,
        .rflags = k->rflags,
    };
}

void kvm__regs_to(struct kvm_regs *k, const struct vcpud_regs *r)
{
    *k = (struct kvm_regs){
        .rax = r->rax,
        .rbx = r->rbx,
        .rcx = r->rcx,
        .rdx = r->rdx,
        .rsi = r->rsi,
        .rdi = r->rdi,
        .rsp = r->rsp,
        .rbp = r->rbp,
        .r8 = r->r8,
        .r9 = r->r9,
        .r10 = r->r10,
        .r11 = r->r11,
        .r12 = r->r12,
        .r13 = r->r13,
        .r14 = r->r14,
        .r15 = r->r15,
        .rip = r->rip,
        .rflags = r->rflags,
    };
}

static void seg_from(struct vcpud_segment *s, const struct kvm_segment *k)
{
    *s = (struct vcpud_segment){
        .base = k->base,
        .limit = k->limit,
        .selector = k->selector,
        .type = k->type,
        .present = k->present,
        .dpl = k->dpl,
        .db = k->db,
        .s = k->s,
        .l = k->l,
        .g = k->g,
        .avl = k->avl,
        .unusable = k->unusable,
    };
}

static void seg_to(struct kvm_segment *k, const struct vcpud_segment *s)
{
    *k = (struct kvm_segment){
        .base = s->base,
        .limit = s->limit,
        .selector = s->selector,
        .type = s->type,
        .present = s->present,
        .dpl = s->dpl,
        .db = s->db,
        .s = s->s,
        .l = s->l,
        .g = s->g,
        .avl = s->avl,
        .unusable = s->unusable,
    };
}

void kvm__sregs_from(struct vcpud_sregs *s, const struct kvm_sregs *k)
{
    seg_from(&s->cs, &k->cs);
    seg_from(&s->ds, &k->ds);
    seg_from(&s->es, &k->es);
    seg_from(&s->fs, &k->fs);
    seg_from(&s->gs, &k->gs);
    seg_from(&s->ss, &k->ss);
    seg_from(&s->tr, &k->tr);
    seg_from(&s->ldt, &k->ldt);
    s->gdt = (struct vcpud_dtable){.base = k->gdt.base, .limit = k->gdt.limit};
    s->idt = (struct vcpud_dtable){.base = k->idt.base, .limit = k->idt.limit};
    s->cr0 = k->cr0;
    s->cr2 = k->cr2;
    s->cr3 = k->cr3;
    s->cr4 = k->cr4;
    s->cr8 = k->cr8;
    s->efer = k->efer;
    s->apic_base = k->apic_base;
}

void kvm__sregs_to(struct kvm_sregs *k, const struct vcpud_sregs *s)
{
    seg_to(&k->cs, &s->cs);
    seg_to(&k->ds, &s->ds);
    seg_to(&k->es, &s->es);
    seg_to(&k->fs, &s->fs);
    seg_to(&k->gs, &s->gs);
    seg_to(&k->ss, &s->ss);
    seg_to(&k->tr, &s->tr);
    seg_to(&k->ldt, &s->ldt);
    k->gdt = (struct kvm_dtable){.base = s->gdt.base, .limit = s->gdt.limit};
    k->idt = (struct kvm_dtable){.base = s->idt.base, .limit = s->idt.limit};
    k->cr0 = s->cr0;
    k->cr2 = s->cr2;
    k->cr3 = s->cr3;
    k->cr4 = s->cr4;
    k->cr8 = s->cr8;
    k->efer = s->efer;
    k->apic_base = s->apic_base;
}

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
