/* registry.h: the VMs the server hosts, who owns each, and the limits
 * that keep one client from taking the machine. */
#ifndef VCPUD_SERVER_REGISTRY_H
#define VCPUD_SERVER_REGISTRY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vcpu_host.h"
#include "vcpud.h"

#define TENANT_MAX 64

struct limits {
    uint32_t max_vms;           /* across all tenants */
    uint32_t max_vcpus_per_vm;
    uint64_t max_mem_per_vm;    /* bytes */
    uint64_t max_mem_total;     /* bytes, across all VMs */
};

struct vm_entry {
    uint32_t id;
    char tenant[TENANT_MAX];
    struct vcpud_vm *vm;
    pthread_mutex_t lock; /* hosts[] and region changes */
    struct vcpu_host *hosts[VCPUD_VM_MAX_VCPUS_LIMIT];
    int refs;             /* guarded by the registry's lock */
    bool dying;
};

struct registry;

/* A registry for VMs on (backend) under (lim). Owned by the caller. */
struct registry *registry_new(const struct vcpud_backend *backend,
                              const struct limits *lim);
/* Destroy every VM (running vCPUs are cancelled), then the registry. */
void registry_free(struct registry *reg);

int registry_create_vm(struct registry *reg, const char *tenant,
                       const struct vcpud_vm_config *cfg, uint32_t *id,
                       struct vcpud_err *err);

/* The VM (id) of (tenant), referenced (registry_put), or NULL with a
 * NOT_FOUND message in (err). Another tenant's VM is not found. */
struct vm_entry *registry_get(struct registry *reg, const char *tenant,
                              uint32_t id, struct vcpud_err *err);
void registry_put(struct registry *reg, struct vm_entry *e);

/* Remove the VM, cancel its vCPUs, wait for other users, destroy it. */
int registry_destroy_vm(struct registry *reg, const char *tenant, uint32_t id,
                        struct vcpud_err *err);

/* Up to (max) ids of (tenant)'s VMs above (after), ascending; returns how
 * many. */
size_t registry_list(struct registry *reg, const char *tenant, uint32_t after,
                     uint32_t *ids, size_t max);

/* Memory and vCPU changes that count against the limits. */
int registry_add_region(struct registry *reg, struct vm_entry *e,
                        uint32_t slot, uint64_t gpa, uint64_t size,
                        uint32_t flags, struct vcpud_err *err);
int registry_remove_region(struct registry *reg, struct vm_entry *e,
                           uint32_t slot, struct vcpud_err *err);
int registry_create_vcpu(struct registry *reg, struct vm_entry *e,
                         uint32_t id, struct vcpud_err *err);
int registry_destroy_vcpu(struct vm_entry *e, uint32_t id,
                          struct vcpud_err *err);

/* vCPU (id) of (e), referenced (host_unref), or NULL with NOT_FOUND. */
struct vcpu_host *registry_host(struct vm_entry *e, uint32_t id,
                                struct vcpud_err *err);

/* Server shutdown: host_shut_down() for every vCPU of every VM. */
void registry_shut_down(struct registry *reg);

/* Counts for /metrics. */
void registry_stats(struct registry *reg, uint32_t *vms, uint32_t *vcpus,
                    uint64_t *mem);

/* The exits of every vCPU the registry ever held. */
const struct exit_stats *registry_exit_stats(const struct registry *reg);

#endif
