/* kvm_state.c: the complete KVM vCPU state as snapshot sections – taking
 * it, checking it and putting it back in the order KVM requires. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_priv.h"

#define MSR_IA32_TSC 0x10u
#define MAX_MSRS 1024u
#define MAX_CPUID 4096u
#define SEG_SIZE 24u
#define SREGS_SIZE (8 * SEG_SIZE + 2 * 16 + 7 * 8 + 4 * 8)
#define REGS_SIZE (18 * 8)
#define DEBUGREGS_SIZE (7 * 8)

/* ---- encoding of the sections that have no fixed hardware layout ---- */

static void put_seg(uint8_t *p, const struct kvm_segment *s)
{
    vcpud_put_u64(p, s->base);
    vcpud_put_u32(p + 8, s->limit);
    p[12] = (uint8_t)s->selector;
    p[13] = (uint8_t)(s->selector >> 8);
    const uint8_t attrs[] = {s->type, s->present, s->dpl, s->db,      s->s,
                             s->l,    s->g,       s->avl, s->unusable};
    memcpy(p + 14, attrs, sizeof(attrs));
    p[23] = 0;
}

static void get_seg(struct kvm_segment *s, const uint8_t *p)
{
    s->base = vcpud_get_u64(p);
    s->limit = vcpud_get_u32(p + 8);
    s->selector = (uint16_t)(p[12] | p[13] << 8);
    s->type = p[14];
    s->present = p[15];
    s->dpl = p[16];
    s->db = p[17];
    s->s = p[18];
    s->l = p[19];
    s->g = p[20];
    s->avl = p[21];
    s->unusable = p[22];
    s->padding = 0;
}

static struct kvm_segment *seg_of(struct kvm_sregs *k, int i)
{
    struct kvm_segment *segs[] = {&k->cs, &k->ds, &k->es, &k->fs,
                                  &k->gs, &k->ss, &k->tr, &k->ldt};
    return segs[i];
}

static void put_sregs(uint8_t *p, struct kvm_sregs *k)
{
    for (int i = 0; i < 8; i++)
        put_seg(p + i * SEG_SIZE, seg_of(k, i));
    p += 8 * SEG_SIZE;
    memset(p, 0, 32);
    vcpud_put_u64(p, k->gdt.base);
    vcpud_put_u32(p + 8, k->gdt.limit);
    vcpud_put_u64(p + 16, k->idt.base);
    vcpud_put_u32(p + 24, k->idt.limit);
    p += 32;
    const uint64_t crs[] = {k->cr0, k->cr2,  k->cr3,      k->cr4,
                            k->cr8, k->efer, k->apic_base};
    for (int i = 0; i < 7; i++)
        vcpud_put_u64(p + 8 * i, crs[i]);
    p += 56;
    for (int i = 0; i < 4; i++)
        vcpud_put_u64(p + 8 * i, k->interrupt_bitmap[i]);
}

static void get_sregs(struct kvm_sregs *k, const uint8_t *p)
{
    memset(k, 0, sizeof(*k));
    for (int i = 0; i < 8; i++)
        get_seg(seg_of(k, i), p + i * SEG_SIZE);
    p += 8 * SEG_SIZE;
    k->gdt.base = vcpud_get_u64(p);
    k->gdt.limit = (uint16_t)vcpud_get_u32(p + 8);
    k->idt.base = vcpud_get_u64(p + 16);
    k->idt.limit = (uint16_t)vcpud_get_u32(p + 24);
    p += 32;
    __u64 *crs[] = {&k->cr0, &k->cr2,  &k->cr3,      &k->cr4,
                    &k->cr8, &k->efer, &k->apic_base};
    for (int i = 0; i < 7; i++)
        *crs[i] = vcpud_get_u64(p + 8 * i);
    p += 56;
    for (int i = 0; i < 4; i++)
        k->interrupt_bitmap[i] = vcpud_get_u64(p + 8 * i);
}

static void put_regs(uint8_t *p, const struct kvm_regs *k)
{
    struct vcpud_regs r;
    kvm__regs_from(&r, k);
    const uint64_t *f = &r.rax;
    for (int i = 0; i < 18; i++)
        vcpud_put_u64(p + 8 * i, f[i]);
}

static void get_regs(struct kvm_regs *k, const uint8_t *p)
{
    struct vcpud_regs r;
    uint64_t *f = &r.rax;
    for (int i = 0; i < 18; i++)
        f[i] = vcpud_get_u64(p + 8 * i);
    kvm__regs_to(k, &r);
}

/* A body made of a u32 count, a u32 zero and count records. */
static uint8_t *counted(uint32_t n, uint32_t rec, uint32_t *len)
{
    *len = 8 + n * rec;
    uint8_t *p = calloc(1, *len);
    if (p)
        vcpud_put_u32(p, n);
    return p;
}

/* ---- the MSR list ---- */

static int msr_index_list(struct vcpud_be_vm *vm, uint32_t **out, uint32_t *n,
                          struct vcpud_err *err)
{
    struct kvm_msr_list probe = {.nmsrs = 0};
    int rc = kvm__ioctl(vm->sys_fd, KVM_GET_MSR_INDEX_LIST, &probe);
    if (rc < 0 && rc != -E2BIG)
        return vcpud_err_sys(err, rc, "KVM_GET_MSR_INDEX_LIST failed");
    if (probe.nmsrs > MAX_MSRS)
        return vcpud_err_set(err, -E2BIG, "KVM lists %u MSRs, over %u",
                             probe.nmsrs, MAX_MSRS);
    struct kvm_msr_list *l =
        calloc(1, sizeof(*l) + probe.nmsrs * sizeof(uint32_t));
    if (!l)
        return vcpud_err_set(err, -ENOMEM, "out of memory for MSRs");
    l->nmsrs = probe.nmsrs;
    rc = kvm__ioctl(vm->sys_fd, KVM_GET_MSR_INDEX_LIST, l);
    if (rc < 0) {
        free(l);
        return vcpud_err_sys(err, rc, "KVM_GET_MSR_INDEX_LIST failed");
    }
    /* TSC first: KVM computes TSC_DEADLINE relative to the guest TSC, so
     * the TSC has to be in place when the deadline is restored. */
    uint32_t *idx = malloc((l->nmsrs + 1) * sizeof(uint32_t));
    if (!idx) {
        free(l);
        return vcpud_err_set(err, -ENOMEM, "out of memory for MSRs");
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < l->nmsrs; i++)
        if (l->indices[i] == MSR_IA32_TSC)
            idx[k++] = MSR_IA32_TSC;
    for (uint32_t i = 0; i < l->nmsrs; i++)
        if (l->indices[i] != MSR_IA32_TSC)
            idx[k++] = l->indices[i];
    free(l);
    *out = idx;
    *n = k;
    return 0;
}

static struct kvm_msrs *msrs_alloc(uint32_t n)
{
    struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(m->entries[0]));
    if (m)
        m->nmsrs = n;
    return m;
}

/*
 * KVM_GET_MSRS stops at the first MSR it cannot read and returns how many
 * it did: drop that one and go on, so the snapshot holds every MSR that
 * reads back on this vCPU (some listed ones depend on CPUID or an
 * in-kernel APIC).
 */
static int read_msrs(struct vcpud_be_vcpu *v, struct kvm_msrs **out,
                     struct vcpud_err *err)
{
    uint32_t *idx = NULL, n = 0;
    int rc = msr_index_list(v->vm, &idx, &n, err);
    if (rc < 0)
        return rc;
    struct kvm_msrs *m = msrs_alloc(n);
    if (!m) {
        free(idx);
        return vcpud_err_set(err, -ENOMEM, "out of memory for MSRs");
    }
    for (uint32_t i = 0; i < n; i++)
        m->entries[i].index = idx[i];
    free(idx);
    uint32_t done = 0;
    while (done < m->nmsrs) {
        struct kvm_msrs *tail = msrs_alloc(m->nmsrs - done);
        if (!tail) {
            free(m);
            return vcpud_err_set(err, -ENOMEM, "out of memory for MSRs");
        }
        memcpy(tail->entries, &m->entries[done],
               tail->nmsrs * sizeof(m->entries[0]));
        rc = kvm__ioctl(v->fd, KVM_GET_MSRS, tail);
        if (rc < 0) {
            free(tail);
            free(m);
            return vcpud_err_sys(err, rc, "KVM_GET_MSRS failed");
        }
        memcpy(&m->entries[done], tail->entries,
               (uint32_t)rc * sizeof(m->entries[0]));
        free(tail);
        done += (uint32_t)rc;
        if (done < m->nmsrs) {
            memmove(&m->entries[done], &m->entries[done + 1],
                    (m->nmsrs - done - 1) * sizeof(m->entries[0]));
            m->nmsrs--;
        }
    }
    *out = m;
    return 0;
}

/* ---- save ---- */

static int get_xsave(struct vcpud_be_vcpu *v, uint8_t **out,
                     struct vcpud_err *err)
{
    uint8_t *x = calloc(1, v->vm->xsave_size);
    if (!x)
        return vcpud_err_set(err, -ENOMEM, "out of memory for XSAVE");
    /* XSAVE2 for areas over 4 KiB (AMX); plain XSAVE otherwise. */
    unsigned long req = v->vm->xsave_size > sizeof(struct kvm_xsave)
                            ? KVM_GET_XSAVE2
                            : KVM_GET_XSAVE;
    int rc = kvm__ioctl(v->fd, req, x);
    if (rc < 0) {
        free(x);
        return vcpud_err_sys(err, rc, "KVM_GET_XSAVE failed");
    }
    *out = x;
    return 0;
}

int kvm__vcpu_save(struct vcpud_be_vcpu *v, struct vcpud_snap_writer *w,
                   struct vcpud_err *err)
{
    int rc;
    uint8_t buf[SREGS_SIZE];

    struct kvm_regs regs;
    if ((rc = kvm__ioctl(v->fd, KVM_GET_REGS, &regs)) < 0)
        return vcpud_err_sys(err, rc, "KVM_GET_REGS failed");
    put_regs(buf, &regs);
    vcpud_snap_add(w, VCPUD_SNAP_REGS, buf, REGS_SIZE);

    struct kvm_sregs sregs;
    if ((rc = kvm__ioctl(v->fd, KVM_GET_SREGS, &sregs)) < 0)
        return vcpud_err_sys(err, rc, "KVM_GET_SREGS failed");
    put_sregs(buf, &sregs);
    vcpud_snap_add(w, VCPUD_SNAP_SREGS, buf, SREGS_SIZE);

    uint8_t *xsave = NULL;
    if ((rc = get_xsave(v, &xsave, err)) < 0)
        return rc;
    vcpud_snap_add(w, VCPUD_SNAP_XSAVE, xsave, (uint32_t)v->vm->xsave_size);
    free(xsave);

    struct kvm_xcrs xcrs;
    if ((rc = kvm__ioctl(v->fd, KVM_GET_XCRS, &xcrs)) < 0)
        return vcpud_err_sys(err, rc, "KVM_GET_XCRS failed");
    uint32_t n = xcrs.nr_xcrs < KVM_MAX_XCRS ? xcrs.nr_xcrs : KVM_MAX_XCRS;
    uint32_t len;
    uint8_t *body = counted(n, 16, &len);
    if (!body)
        return vcpud_err_set(err, -ENOMEM, "out of memory for XCRs");
    for (uint32_t i = 0; i < n; i++) {
        vcpud_put_u32(body + 8 + 16 * i, xcrs.xcrs[i].xcr);
        vcpud_put_u64(body + 16 + 16 * i, xcrs.xcrs[i].value);
    }
    vcpud_snap_add(w, VCPUD_SNAP_XCRS, body, len);
    free(body);

    struct kvm_msrs *msrs = NULL;
    if ((rc = read_msrs(v, &msrs, err)) < 0)
        return rc;
    body = counted(msrs->nmsrs, 16, &len);
    if (!body) {
        free(msrs);
        return vcpud_err_set(err, -ENOMEM, "out of memory for MSRs");
    }
    for (uint32_t i = 0; i < msrs->nmsrs; i++) {
        vcpud_put_u32(body + 8 + 16 * i, msrs->entries[i].index);
        vcpud_put_u64(body + 16 + 16 * i, msrs->entries[i].data);
    }
    vcpud_snap_add(w, VCPUD_SNAP_MSRS, body, len);
    free(body);
    free(msrs);

    const struct kvm_cpuid2 *cpuid = v->cpuid;
    if (!cpuid)
        return vcpud_err_set(err, -EIO, "vCPU %u has no CPUID set", v->id);
    body = counted(cpuid->nent, 28, &len);
    if (!body)
        return vcpud_err_set(err, -ENOMEM, "out of memory for CPUID");
    for (uint32_t i = 0; i < cpuid->nent; i++) {
        const struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
        const uint32_t f[] = {e->function, e->index, e->flags, e->eax,
                              e->ebx,      e->ecx,   e->edx};
        for (int j = 0; j < 7; j++)
            vcpud_put_u32(body + 8 + 28 * i + 4 * j, f[j]);
    }
    vcpud_snap_add(w, VCPUD_SNAP_CPUID, body, len);
    free(body);

    if (v->vm->irqchip) {
        struct kvm_lapic_state lapic;
        if ((rc = kvm__ioctl(v->fd, KVM_GET_LAPIC, &lapic)) < 0)
            return vcpud_err_sys(err, rc, "KVM_GET_LAPIC failed");
        vcpud_snap_add(w, VCPUD_SNAP_LAPIC, lapic.regs, sizeof(lapic.regs));
    }

    /* struct kvm_vcpu_events is fixed-size KVM ABI, little endian on the
     * only architecture this backend serves; kept as it is. */
    struct kvm_vcpu_events events;
    if ((rc = kvm__ioctl(v->fd, KVM_GET_VCPU_EVENTS, &events)) < 0)
        return vcpud_err_sys(err, rc, "KVM_GET_VCPU_EVENTS failed");
    vcpud_snap_add(w, VCPUD_SNAP_EVENTS, &events, sizeof(events));

    struct kvm_debugregs dbg;
    if ((rc = kvm__ioctl(v->fd, KVM_GET_DEBUGREGS, &dbg)) < 0)
        return vcpud_err_sys(err, rc, "KVM_GET_DEBUGREGS failed");
    const uint64_t d[] = {dbg.db[0], dbg.db[1], dbg.db[2], dbg.db[3],
                          dbg.dr6,   dbg.dr7,   dbg.flags};
    for (int i = 0; i < 7; i++)
        vcpud_put_u64(buf + 8 * i, d[i]);
    vcpud_snap_add(w, VCPUD_SNAP_DEBUGREGS, buf, DEBUGREGS_SIZE);

    struct kvm_mp_state mp;
    if ((rc = kvm__ioctl(v->fd, KVM_GET_MP_STATE, &mp)) < 0)
        return vcpud_err_sys(err, rc, "KVM_GET_MP_STATE failed");
    vcpud_put_u32(buf, mp.mp_state);
    vcpud_snap_add(w, VCPUD_SNAP_MPSTATE, buf, 4);
    return 0;
}

/* ---- check ---- */

static int need_counted(const struct vcpud_snap *s, uint32_t type, uint32_t rec,
                        uint32_t max, uint32_t *n, struct vcpud_err *err)
{
    const struct vcpud_snap_section *sec = vcpud_snap_get(s, type);
    if (!sec || sec->len < 8)
        return vcpud_err_set(err, -EBADMSG,
                             "snapshot lacks a valid '%s' section",
                             vcpud_snap_type_name(type));
    *n = vcpud_get_u32(sec->body);
    if (*n > max || sec->len != 8 + (uint64_t)*n * rec ||
        vcpud_get_u32(sec->body + 4) != 0)
        return vcpud_err_set(err, -EBADMSG,
                             "snapshot section '%s' claims %u records in %u "
                             "bytes",
                             vcpud_snap_type_name(type), *n, sec->len);
    return 0;
}

int kvm__vcpu_check(struct vcpud_be_vcpu *v, const struct vcpud_snap *s,
                    struct vcpud_err *err)
{
    const struct vcpud_snap_section *sec;
    uint32_t n;
    int rc;
    if ((rc = vcpud_snap_need(s, VCPUD_SNAP_REGS, REGS_SIZE, &sec, err)) ||
        (rc = vcpud_snap_need(s, VCPUD_SNAP_SREGS, SREGS_SIZE, &sec, err)) ||
        (rc = vcpud_snap_need(s, VCPUD_SNAP_EVENTS,
                              sizeof(struct kvm_vcpu_events), &sec, err)) ||
        (rc = vcpud_snap_need(s, VCPUD_SNAP_DEBUGREGS, DEBUGREGS_SIZE, &sec,
                              err)) ||
        (rc = vcpud_snap_need(s, VCPUD_SNAP_MPSTATE, 4, &sec, err)) ||
        (rc = need_counted(s, VCPUD_SNAP_XCRS, 16, KVM_MAX_XCRS, &n, err)) ||
        (rc = need_counted(s, VCPUD_SNAP_MSRS, 16, MAX_MSRS, &n, err)) ||
        (rc = need_counted(s, VCPUD_SNAP_CPUID, 28, MAX_CPUID, &n, err)))
        return rc;
    sec = vcpud_snap_get(s, VCPUD_SNAP_XSAVE);
    if (!sec || sec->len != v->vm->xsave_size)
        return vcpud_err_set(err, -EBADMSG,
                             "snapshot's XSAVE area is %u bytes, this host's "
                             "is %zu: it was taken on another CPU model",
                             sec ? sec->len : 0, v->vm->xsave_size);
    sec = vcpud_snap_get(s, VCPUD_SNAP_LAPIC);
    if (v->vm->irqchip && !sec)
        return vcpud_err_set(err, -EBADMSG,
                             "snapshot has no local APIC but this VM has an "
                             "in-kernel irqchip");
    if (!v->vm->irqchip && sec)
        return vcpud_err_set(err, -EBADMSG,
                             "snapshot comes from a VM with an in-kernel "
                             "irqchip; this VM has none");
    if (sec && sec->len != sizeof(((struct kvm_lapic_state *)0)->regs))
        return vcpud_err_set(err, -EBADMSG,
                             "snapshot's local APIC is %u "
                             "bytes, not 1024",
                             sec->len);
    return 0;
}

/* ---- load ---- */

static int load_cpuid(struct vcpud_be_vcpu *v, const struct vcpud_snap *s,
                      struct vcpud_err *err)
{
    const struct vcpud_snap_section *sec = vcpud_snap_get(s, VCPUD_SNAP_CPUID);
    uint32_t n = vcpud_get_u32(sec->body);
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
    if (!c)
        return vcpud_err_set(err, -ENOMEM, "out of memory for CPUID");
    c->nent = n;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *p = sec->body + 8 + 28 * i;
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        e->function = vcpud_get_u32(p);
        e->index = vcpud_get_u32(p + 4);
        e->flags = vcpud_get_u32(p + 8);
        e->eax = vcpud_get_u32(p + 12);
        e->ebx = vcpud_get_u32(p + 16);
        e->ecx = vcpud_get_u32(p + 20);
        e->edx = vcpud_get_u32(p + 24);
    }
    /* KVM refuses any KVM_SET_CPUID2 once the vCPU has run, and compares
     * against entries it has since patched at run time; restoring the
     * CPUID this vCPU already has must not trip over that. */
    int rc = 0;
    if (!v->cpuid || v->cpuid->nent != n ||
        memcmp(v->cpuid->entries, c->entries, n * sizeof(c->entries[0])))
        rc = kvm__vcpu_set_cpuid(v, c, err);
    free(c);
    return rc;
}

/* Does the vCPU already hold (e)'s value? */
static bool msr_already(struct vcpud_be_vcpu *v, const struct kvm_msr_entry *e)
{
    struct kvm_msrs *m = msrs_alloc(1);
    if (!m)
        return false;
    m->entries[0].index = e->index;
    bool same = kvm__ioctl(v->fd, KVM_GET_MSRS, m) == 1 &&
                m->entries[0].data == e->data;
    free(m);
    return same;
}

/*
 * Like GET, SET stops quietly at the first MSR it refuses and returns how
 * many it took. Some MSRs read back but refuse a host write of their reset
 * value when a feature is off (KVM's async-PF interrupt MSR without an
 * in-kernel APIC): such an MSR that already holds the snapshot's value is
 * restored by definition and skipped; any other refusal fails the restore.
 */
static int load_msrs(struct vcpud_be_vcpu *v, const struct vcpud_snap *s,
                     struct vcpud_err *err)
{
    const struct vcpud_snap_section *sec = vcpud_snap_get(s, VCPUD_SNAP_MSRS);
    uint32_t n = vcpud_get_u32(sec->body);
    struct kvm_msrs *m = msrs_alloc(n);
    if (!m)
        return vcpud_err_set(err, -ENOMEM, "out of memory for MSRs");
    for (uint32_t i = 0; i < n; i++) {
        m->entries[i].index = vcpud_get_u32(sec->body + 8 + 16 * i);
        m->entries[i].data = vcpud_get_u64(sec->body + 16 + 16 * i);
    }
    int rc = 0;
    uint32_t done = 0;
    while (done < n) {
        struct kvm_msrs *tail = msrs_alloc(n - done);
        if (!tail) {
            rc = vcpud_err_set(err, -ENOMEM, "out of memory for MSRs");
            break;
        }
        memcpy(tail->entries, &m->entries[done],
               tail->nmsrs * sizeof(m->entries[0]));
        rc = kvm__ioctl(v->fd, KVM_SET_MSRS, tail);
        free(tail);
        if (rc < 0) {
            rc = vcpud_err_sys(err, rc, "KVM_SET_MSRS failed");
            break;
        }
        done += (uint32_t)rc;
        rc = 0;
        if (done == n)
            break;
        if (!msr_already(v, &m->entries[done])) {
            rc = vcpud_err_set(err, -EINVAL,
                               "KVM refused MSR 0x%x = 0x%" PRIx64
                               " (%u of %u restored)",
                               m->entries[done].index,
                               (uint64_t)m->entries[done].data, done, n);
            break;
        }
        done++;
    }
    free(m);
    return rc;
}

static int set(struct vcpud_be_vcpu *v, unsigned long req, void *arg,
               const char *what, struct vcpud_err *err)
{
    int rc = kvm__ioctl(v->fd, req, arg);
    return rc < 0
               ? vcpud_err_sys(err, rc, "KVM refused the snapshot's %s", what)
               : 0;
}

/*
 * The order is KVM's, as Firecracker found it: CPUID first (it decides
 * which registers and MSRs are valid), MP state, then general registers
 * before special ones, XSAVE and XCRs, debug registers; the local APIC
 * after SREGS because SREGS carries the APIC base that places it; MSRs
 * after the APIC (TSC_DEADLINE lives in it) with TSC first; and vCPU events
 * last, because SET_REGS/SET_SREGS clear pending exceptions.
 */
int kvm__vcpu_load(struct vcpud_be_vcpu *v, const struct vcpud_snap *s,
                   struct vcpud_err *err)
{
    const struct vcpud_snap_section *sec;
    int rc;

    if ((rc = load_cpuid(v, s, err)) < 0)
        return rc;

    struct kvm_mp_state mp = {
        .mp_state = vcpud_get_u32(vcpud_snap_get(s, VCPUD_SNAP_MPSTATE)->body)};
    if ((rc = set(v, KVM_SET_MP_STATE, &mp, "MP state", err)) < 0)
        return rc;

    struct kvm_regs regs;
    get_regs(&regs, vcpud_snap_get(s, VCPUD_SNAP_REGS)->body);
    if ((rc = set(v, KVM_SET_REGS, &regs, "registers", err)) < 0)
        return rc;

    struct kvm_sregs sregs;
    get_sregs(&sregs, vcpud_snap_get(s, VCPUD_SNAP_SREGS)->body);
    if ((rc = set(v, KVM_SET_SREGS, &sregs, "special registers", err)) < 0)
        return rc;

    sec = vcpud_snap_get(s, VCPUD_SNAP_XSAVE);
    uint8_t *x = malloc(sec->len);
    if (!x)
        return vcpud_err_set(err, -ENOMEM, "out of memory for XSAVE");
    memcpy(x, sec->body, sec->len);
    rc = set(v, KVM_SET_XSAVE, x, "XSAVE area", err);
    free(x);
    if (rc < 0)
        return rc;

    sec = vcpud_snap_get(s, VCPUD_SNAP_XCRS);
    struct kvm_xcrs xcrs = {.nr_xcrs = vcpud_get_u32(sec->body)};
    for (uint32_t i = 0; i < xcrs.nr_xcrs; i++) {
        xcrs.xcrs[i].xcr = vcpud_get_u32(sec->body + 8 + 16 * i);
        xcrs.xcrs[i].value = vcpud_get_u64(sec->body + 16 + 16 * i);
    }
    if ((rc = set(v, KVM_SET_XCRS, &xcrs, "XCRs", err)) < 0)
        return rc;

    sec = vcpud_snap_get(s, VCPUD_SNAP_DEBUGREGS);
    struct kvm_debugregs dbg = {0};
    for (int i = 0; i < 4; i++)
        dbg.db[i] = vcpud_get_u64(sec->body + 8 * i);
    dbg.dr6 = vcpud_get_u64(sec->body + 32);
    dbg.dr7 = vcpud_get_u64(sec->body + 40);
    dbg.flags = (uint32_t)vcpud_get_u64(sec->body + 48);
    if ((rc = set(v, KVM_SET_DEBUGREGS, &dbg, "debug registers", err)) < 0)
        return rc;

    if ((sec = vcpud_snap_get(s, VCPUD_SNAP_LAPIC))) {
        struct kvm_lapic_state lapic;
        memcpy(lapic.regs, sec->body, sizeof(lapic.regs));
        if ((rc = set(v, KVM_SET_LAPIC, &lapic, "local APIC", err)) < 0)
            return rc;
    }

    if ((rc = load_msrs(v, s, err)) < 0)
        return rc;

    struct kvm_vcpu_events ev;
    memcpy(&ev, vcpud_snap_get(s, VCPUD_SNAP_EVENTS)->body, sizeof(ev));
    /* GET leaves these out of flags; SET needs them to restore the NMI
     * pending bit and the SIPI vector too. */
    ev.flags |=
        KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
    return set(v, KVM_SET_VCPU_EVENTS, &ev, "vCPU events", err);
}
