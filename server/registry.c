/* registry.c: VM ownership, lookup and teardown, and resource limits. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

struct registry {
    const struct vcpud_backend *be;
    struct limits lim;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* an entry's refs dropped */
    struct vm_entry **vms;
    size_t nvms, cap;
    uint32_t next_id;
    uint64_t mem_total;
    uint32_t vcpus_total;
    struct exit_stats stats; /* calloc: zero is a valid atomic counter */
};

struct registry *registry_new(const struct vcpud_backend *backend,
                              const struct limits *lim)
{
    struct registry *reg = calloc(1, sizeof(*reg));
    if (!reg)
        return NULL;
    reg->be = backend;
    reg->lim = *lim;
    reg->next_id = 1;
    pthread_mutex_init(&reg->lock, NULL);
    pthread_cond_init(&reg->cond, NULL);
    return reg;
}

static void teardown(struct registry *reg, struct vm_entry *e)
{
    uint32_t nvcpus = 0;
    for (uint32_t i = 0; i < VCPUD_VM_MAX_VCPUS_LIMIT; i++) {
        if (e->hosts[i]) {
            host_stop(e->hosts[i]);
            host_unref(e->hosts[i]);
            nvcpus++;
        }
    }
    uint64_t mem = vcpud_vm_memory_size(e->vm);
    vcpud_vm_destroy(e->vm);
    pthread_mutex_destroy(&e->lock);
    pthread_mutex_lock(&reg->lock);
    reg->mem_total -= mem;
    reg->vcpus_total -= nvcpus;
    pthread_mutex_unlock(&reg->lock);
    free(e);
}

void registry_free(struct registry *reg)
{
    if (!reg)
        return;
    registry_shut_down(reg);
    for (;;) {
        pthread_mutex_lock(&reg->lock);
        if (reg->nvms == 0) {
            pthread_mutex_unlock(&reg->lock);
            break;
        }
        struct vm_entry *e = reg->vms[reg->nvms - 1];
        char tenant[TENANT_MAX];
        memcpy(tenant, e->tenant, sizeof(tenant));
        uint32_t id = e->id;
        pthread_mutex_unlock(&reg->lock);
        registry_destroy_vm(reg, tenant, id, NULL);
    }
    free(reg->vms);
    pthread_mutex_destroy(&reg->lock);
    pthread_cond_destroy(&reg->cond);
    free(reg);
}

int registry_create_vm(struct registry *reg, const char *tenant,
                       const struct vcpud_vm_config *cfg, uint32_t *id,
                       struct vcpud_err *err)
{
    /* Outside the contract's range is the caller's error; inside it but
     * above this server's setting is a limit reached. */
    if (cfg->max_vcpus > VCPUD_VM_MAX_VCPUS_LIMIT)
        return vcpud_err_set(err, -EINVAL,
                             "max_vcpus %u is above %u", cfg->max_vcpus,
                             VCPUD_VM_MAX_VCPUS_LIMIT);
    if (cfg->max_vcpus > reg->lim.max_vcpus_per_vm)
        return vcpud_err_set(err, -ENOSPC,
                             "max_vcpus %u is above this server's limit of "
                             "%u per VM",
                             cfg->max_vcpus, reg->lim.max_vcpus_per_vm);
    struct vm_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return vcpud_err_set(err, -ENOMEM, "out of memory for a VM");
    snprintf(e->tenant, sizeof(e->tenant), "%s", tenant);
    pthread_mutex_init(&e->lock, NULL);

    pthread_mutex_lock(&reg->lock);
    int rc = 0;
    if (reg->nvms >= reg->lim.max_vms) {
        rc = vcpud_err_set(err, -ENOSPC,
                           "this server hosts its limit of %u VMs; destroy "
                           "one first",
                           reg->lim.max_vms);
    } else if (reg->nvms == reg->cap) {
        size_t cap = reg->cap ? reg->cap * 2 : 16;
        struct vm_entry **v = realloc(reg->vms, cap * sizeof(*v));
        if (!v)
            rc = vcpud_err_set(err, -ENOMEM, "out of memory for a VM");
        else {
            reg->vms = v;
            reg->cap = cap;
        }
    }
    if (rc == 0) {
        /* Reserve the slot and id now; creating the VM takes a while and
         * must not hold the lock. */
        e->id = reg->next_id++;
        e->dying = true; /* invisible until created */
        reg->vms[reg->nvms++] = e;
    }
    pthread_mutex_unlock(&reg->lock);
    if (rc < 0) {
        pthread_mutex_destroy(&e->lock);
        free(e);
        return rc;
    }

    rc = vcpud_vm_create(reg->be, cfg, &e->vm, err);
    pthread_mutex_lock(&reg->lock);
    if (rc == 0) {
        e->dying = false;
        *id = e->id;
    } else {
        for (size_t i = 0; i < reg->nvms; i++) {
            if (reg->vms[i] == e) {
                memmove(&reg->vms[i], &reg->vms[i + 1],
                        (reg->nvms - i - 1) * sizeof(e));
                reg->nvms--;
                break;
            }
        }
    }
    pthread_mutex_unlock(&reg->lock);
    if (rc < 0) {
        pthread_mutex_destroy(&e->lock);
        free(e);
    }
    return rc;
}

static struct vm_entry *find_locked(struct registry *reg, const char *tenant,
                                    uint32_t id, size_t *index)
{
    for (size_t i = 0; i < reg->nvms; i++) {
        struct vm_entry *e = reg->vms[i];
        if (e->id == id && !e->dying && strcmp(e->tenant, tenant) == 0) {
            if (index)
                *index = i;
            return e;
        }
    }
    return NULL;
}

struct vm_entry *registry_get(struct registry *reg, const char *tenant,
                              uint32_t id, struct vcpud_err *err)
{
    pthread_mutex_lock(&reg->lock);
    struct vm_entry *e = find_locked(reg, tenant, id, NULL);
    if (e)
        e->refs++;
    pthread_mutex_unlock(&reg->lock);
    if (!e)
        vcpud_err_set(err, -ENOENT, "no VM with id %u", id);
    return e;
}

void registry_put(struct registry *reg, struct vm_entry *e)
{
    pthread_mutex_lock(&reg->lock);
    if (--e->refs == 0)
        pthread_cond_broadcast(&reg->cond);
    pthread_mutex_unlock(&reg->lock);
}

int registry_destroy_vm(struct registry *reg, const char *tenant, uint32_t id,
                        struct vcpud_err *err)
{
    size_t i;
    pthread_mutex_lock(&reg->lock);
    struct vm_entry *e = find_locked(reg, tenant, id, &i);
    if (!e) {
        pthread_mutex_unlock(&reg->lock);
        return vcpud_err_set(err, -ENOENT, "no VM with id %u", id);
    }
    e->dying = true; /* no new users from here on */
    memmove(&reg->vms[i], &reg->vms[i + 1], (reg->nvms - i - 1) * sizeof(e));
    reg->nvms--;
    pthread_mutex_unlock(&reg->lock);

    /* Stop guests first so users waiting on them let go; their drivers
     * are told the vCPU is gone rather than handed a CANCELED exit. */
    pthread_mutex_lock(&e->lock);
    for (uint32_t k = 0; k < VCPUD_VM_MAX_VCPUS_LIMIT; k++)
        if (e->hosts[k])
            host_stop_begin(e->hosts[k]);
    pthread_mutex_unlock(&e->lock);

    /* Users are synchronous handlers: they finish quickly. */
    pthread_mutex_lock(&reg->lock);
    while (e->refs > 0)
        pthread_cond_wait(&reg->cond, &reg->lock);
    pthread_mutex_unlock(&reg->lock);
    teardown(reg, e);
    return 0;
}

size_t registry_list(struct registry *reg, const char *tenant, uint32_t after,
                     uint32_t *ids, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&reg->lock);
    for (size_t i = 0; i < reg->nvms && n < max; i++) {
        const struct vm_entry *e = reg->vms[i];
        if (e->id > after && !e->dying && strcmp(e->tenant, tenant) == 0)
            ids[n++] = e->id;
    }
    pthread_mutex_unlock(&reg->lock);
    return n; /* ids ascend: entries are appended in id order */
}

static uint64_t region_size(struct vcpud_vm *vm, uint32_t slot)
{
    struct vcpud_region_info r[VCPUD_VM_MAX_REGIONS];
    size_t n = vcpud_vm_list_regions(vm, r, VCPUD_VM_MAX_REGIONS);
    for (size_t i = 0; i < n; i++)
        if (r[i].slot == slot)
            return r[i].size;
    return 0;
}

int registry_add_region(struct registry *reg, struct vm_entry *e,
                        uint32_t slot, uint64_t gpa, uint64_t size,
                        uint32_t flags, struct vcpud_err *err)
{
    /* The contract's range first: out of it is the caller's error
     * whatever this server's limits are. */
    if (size == 0 || size > VCPUD_REGION_SIZE_MAX)
        return vcpud_err_set(err, -EINVAL,
                             "region size %" PRIu64 " is not in 1..%llu",
                             size, (unsigned long long)VCPUD_REGION_SIZE_MAX);
    pthread_mutex_lock(&e->lock);
    uint64_t vm_mem = vcpud_vm_memory_size(e->vm);
    int rc = 0;
    pthread_mutex_lock(&reg->lock);
    if (size > reg->lim.max_mem_per_vm ||
        vm_mem + size > reg->lim.max_mem_per_vm)
        rc = vcpud_err_set(err, -ENOSPC,
                           "VM %u would hold %" PRIu64
                           " bytes of RAM, over the limit of %" PRIu64,
                           e->id, vm_mem + size, reg->lim.max_mem_per_vm);
    else if (reg->mem_total + size > reg->lim.max_mem_total)
        rc = vcpud_err_set(err, -ENOSPC,
                           "the server's guest RAM would reach %" PRIu64
                           " bytes, over its limit of %" PRIu64,
                           reg->mem_total + size, reg->lim.max_mem_total);
    else
        reg->mem_total += size;
    pthread_mutex_unlock(&reg->lock);
    if (rc == 0) {
        rc = vcpud_vm_add_region(e->vm, slot, gpa, size, flags, err);
        if (rc < 0) {
            pthread_mutex_lock(&reg->lock);
            reg->mem_total -= size;
            pthread_mutex_unlock(&reg->lock);
        }
    }
    pthread_mutex_unlock(&e->lock);
    return rc;
}

int registry_remove_region(struct registry *reg, struct vm_entry *e,
                           uint32_t slot, struct vcpud_err *err)
{
    pthread_mutex_lock(&e->lock);
    uint64_t size = region_size(e->vm, slot);
    int rc = vcpud_vm_remove_region(e->vm, slot, err);
    if (rc == 0) {
        pthread_mutex_lock(&reg->lock);
        reg->mem_total -= size;
        pthread_mutex_unlock(&reg->lock);
    }
    pthread_mutex_unlock(&e->lock);
    return rc;
}

int registry_create_vcpu(struct registry *reg, struct vm_entry *e,
                         uint32_t id, struct vcpud_err *err)
{
    pthread_mutex_lock(&e->lock);
    int rc;
    if (id < VCPUD_VM_MAX_VCPUS_LIMIT && e->hosts[id]) {
        rc = vcpud_err_set(err, -EEXIST, "vCPU %u already exists in VM %u",
                           id, e->id);
    } else {
        struct vcpu_host *h;
        rc = host_create(e->vm, e->id, id, &reg->stats, &h, err);
        if (rc == 0) {
            e->hosts[id] = h;
            pthread_mutex_lock(&reg->lock);
            reg->vcpus_total++;
            pthread_mutex_unlock(&reg->lock);
        }
    }
    pthread_mutex_unlock(&e->lock);
    return rc;
}

int registry_destroy_vcpu(struct vm_entry *e, uint32_t id,
                          struct vcpud_err *err)
{
    pthread_mutex_lock(&e->lock);
    struct vcpu_host *h = id < VCPUD_VM_MAX_VCPUS_LIMIT ? e->hosts[id] : NULL;
    if (h)
        e->hosts[id] = NULL;
    pthread_mutex_unlock(&e->lock);
    if (!h)
        return vcpud_err_set(err, -ENOENT, "no vCPU %u in VM %u", id, e->id);
    host_stop(h);
    host_unref(h);
    return 0;
}

struct vcpu_host *registry_host(struct vm_entry *e, uint32_t id,
                                struct vcpud_err *err)
{
    pthread_mutex_lock(&e->lock);
    struct vcpu_host *h = id < VCPUD_VM_MAX_VCPUS_LIMIT ? e->hosts[id] : NULL;
    if (h)
        host_ref(h);
    pthread_mutex_unlock(&e->lock);
    if (!h)
        vcpud_err_set(err, -ENOENT, "no vCPU %u in VM %u", id, e->id);
    return h;
}

/* Entries are referenced under the registry's lock and shut down after
 * it is dropped: the lock order is entry, then registry. */
void registry_shut_down(struct registry *reg)
{
    pthread_mutex_lock(&reg->lock);
    size_t n = reg->nvms;
    struct vm_entry **v = calloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; v && i < n; i++) {
        v[i] = reg->vms[i];
        v[i]->refs++;
    }
    pthread_mutex_unlock(&reg->lock);
    if (!v)
        return;
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&v[i]->lock);
        for (uint32_t k = 0; k < VCPUD_VM_MAX_VCPUS_LIMIT; k++)
            if (v[i]->hosts[k])
                host_shut_down(v[i]->hosts[k]);
        pthread_mutex_unlock(&v[i]->lock);
        registry_put(reg, v[i]);
    }
    free(v);
}

const struct exit_stats *registry_exit_stats(const struct registry *reg)
{
    return &reg->stats;
}

void registry_stats(struct registry *reg, uint32_t *vms, uint32_t *vcpus,
                    uint64_t *mem)
{
    pthread_mutex_lock(&reg->lock);
    *vms = (uint32_t)reg->nvms;
    *vcpus = reg->vcpus_total;
    *mem = reg->mem_total;
    pthread_mutex_unlock(&reg->lock);
}
