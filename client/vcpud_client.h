/* vcpud_client.h: a small synchronous C client for the vcpud gRPC service.
 *
 * One call per RPC, returning the core's error convention: 0 or a negative
 * errno, with (*st) holding the gRPC status code and the server's message
 * (st may be NULL; on success st->code is 0 and st->msg empty).
 * The errno is the one the server's core produced (carried in the
 * `vcpud-errno` trailer), or derived from the status code for errors the
 * core never saw (-ETIMEDOUT for DEADLINE_EXCEEDED, -ECONNREFUSED for
 * UNAVAILABLE, -EACCES for UNAUTHENTICATED, -ECANCELED for CANCELLED;
 * INVALID_ARGUMENT -EINVAL, NOT_FOUND -ENOENT, ALREADY_EXISTS -EEXIST,
 * FAILED_PRECONDITION -EBUSY, RESOURCE_EXHAUSTED -ENOSPC, PERMISSION_DENIED
 * -EPERM, UNIMPLEMENTED -ENOSYS, any other -EIO).
 *
 * Errors found on this side of the wire: a bad argument (NULL pointer,
 * value over a bound of vcpud.proto) is -EINVAL with st->code
 * INVALID_ARGUMENT and no call made; a reply that breaks the contract
 * (undecodable, out of range, a short ReadMemory) is -EBADMSG with st->code
 * INTERNAL.
 *
 * Thread-safe: one client may be used from many threads at once; each call
 * is its own gRPC call on the shared channel.
 */
#ifndef VCPUD_CLIENT_H
#define VCPUD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vcpud/exit.h"
#include "vcpud/regs.h"
#include "vcpud/setup.h"
#include "vcpud/vm.h"

struct vcpud_client;

#define VCPUD_CLIENT_MSG_MAX 512

struct vcpud_client_status {
    int code; /* grpc_status_code; 0 is OK */
    char msg[VCPUD_CLIENT_MSG_MAX];
};

struct vcpud_client_opts {
    /* Bearer token sent with every call, NULL for none. */
    const char *token;
    /* Per-call deadline in milliseconds; 0 means 30000. Run's deadline is
     * this plus its own timeout. */
    uint32_t deadline_ms;
};

/*
 * Connect to (addr): "127.0.0.1:PORT", "[::1]:PORT" or "unix:PATH" – the
 * forms vcpud --listen takes (any gRPC target works). The channel connects
 * lazily; the first call reports an unreachable server, and a refused
 * connection is retried about every second. Keepalive pings every 2 s make
 * calls to a frozen or vanished server fail within ~4 s with UNAVAILABLE,
 * so the server must accept pings that often (vcpud does). (opts) may be
 * NULL; a token must be printable ASCII without spaces. On success *out is
 * owned by the caller: release it with vcpud_client_close(), once no call
 * on it is running.
 */
int vcpud_client_connect(const char *addr, const struct vcpud_client_opts *opts,
                         struct vcpud_client **out,
                         struct vcpud_client_status *st);
void vcpud_client_close(struct vcpud_client *c);

/* A short name for a gRPC status code (st->code), like strerror:
 * "invalid argument", "not found", ...; static storage. */
const char *vcpud_client_status_name(int code);

struct vcpud_client_vm_info {
    uint32_t vm_id;
    uint32_t max_vcpus;
    bool irqchip;
    uint64_t memory_bytes;
    uint32_t vcpu_count;
    uint32_t region_count;
};

int vcpud_client_create_vm(struct vcpud_client *c,
                           const struct vcpud_vm_config *cfg, uint32_t *vm_id,
                           struct vcpud_client_status *st);
int vcpud_client_destroy_vm(struct vcpud_client *c, uint32_t vm_id,
                            struct vcpud_client_status *st);
/* Fill up to (max) entries of (out) (NULL when max is 0), in id order; *n
 * (may be NULL) is the number of VMs the server listed, all pages of them
 * (so max 0 counts them). */
int vcpud_client_list_vms(struct vcpud_client *c,
                          struct vcpud_client_vm_info *out, size_t max,
                          size_t *n, struct vcpud_client_status *st);
/* (vcpu_ids) must hold VCPUD_VM_MAX_VCPUS_LIMIT (64) entries, (regions)
 * VCPUD_VM_MAX_REGIONS (32); *nvcpus and *nregions are how many were
 * filled. Every output may be NULL. */
int vcpud_client_get_vm(struct vcpud_client *c, uint32_t vm_id,
                        struct vcpud_client_vm_info *info, uint32_t *vcpu_ids,
                        size_t *nvcpus, struct vcpud_region_info *regions,
                        size_t *nregions, struct vcpud_client_status *st);

int vcpud_client_add_region(struct vcpud_client *c, uint32_t vm_id,
                            uint32_t slot, uint64_t gpa, uint64_t size,
                            bool read_only, struct vcpud_client_status *st);
int vcpud_client_remove_region(struct vcpud_client *c, uint32_t vm_id,
                               uint32_t slot, struct vcpud_client_status *st);
/* Any length: sent as a stream of chunks of at most 32 KiB. On failure the
 * chunks before the failing one may have been written. A len of 0 returns 0
 * without a call. */
int vcpud_client_write_memory(struct vcpud_client *c, uint32_t vm_id,
                              uint64_t gpa, const void *buf, size_t len,
                              struct vcpud_client_status *st);
/* len at most 64 MiB; 0 returns 0 without a call. (buf) is fully written
 * only on success. */
int vcpud_client_read_memory(struct vcpud_client *c, uint32_t vm_id,
                             uint64_t gpa, void *buf, size_t len,
                             struct vcpud_client_status *st);

int vcpud_client_create_vcpu(struct vcpud_client *c, uint32_t vm_id,
                             uint32_t vcpu_id, struct vcpud_client_status *st);
int vcpud_client_destroy_vcpu(struct vcpud_client *c, uint32_t vm_id,
                              uint32_t vcpu_id, struct vcpud_client_status *st);

/* What a Run carries besides the vCPU: the pending exit's answer, if any,
 * and a wall-clock limit. */
struct vcpud_client_run {
    enum { VCPUD_RESULT_NONE, VCPUD_RESULT_IO, VCPUD_RESULT_MMIO } result;
    const uint64_t *io_values; /* VCPUD_RESULT_IO: io_count values */
    uint32_t io_count;
    uint64_t mmio_value; /* VCPUD_RESULT_MMIO */
    uint64_t timeout_ms;
    /* Where the exit's posted writes go (exit->posted points here): room
     * for posted_cap; a VM with posted ranges wants VCPUD_POSTED_MAX. An
     * exit carrying more than fits fails the call with -E2BIG. */
    struct vcpud_posted_write *posted;
    uint32_t posted_cap;
};

/* (req) may be NULL: no result, no limit. The call's deadline is the
 * client's deadline_ms plus req->timeout_ms: with no limit, a guest that
 * does not exit within deadline_ms makes this -ETIMEDOUT, and the server
 * keeps the exit for the next Run. */
int vcpud_client_run(struct vcpud_client *c, uint32_t vm_id, uint32_t vcpu_id,
                     const struct vcpud_client_run *req,
                     struct vcpud_exit *exit, struct vcpud_client_status *st);
int vcpud_client_cancel(struct vcpud_client *c, uint32_t vm_id,
                        uint32_t vcpu_id, struct vcpud_client_status *st);

int vcpud_client_get_regs(struct vcpud_client *c, uint32_t vm_id,
                          uint32_t vcpu_id, struct vcpud_regs *regs,
                          struct vcpud_client_status *st);
int vcpud_client_set_regs(struct vcpud_client *c, uint32_t vm_id,
                          uint32_t vcpu_id, const struct vcpud_regs *regs,
                          struct vcpud_client_status *st);
int vcpud_client_get_sregs(struct vcpud_client *c, uint32_t vm_id,
                           uint32_t vcpu_id, struct vcpud_sregs *sregs,
                           struct vcpud_client_status *st);
int vcpud_client_set_sregs(struct vcpud_client *c, uint32_t vm_id,
                           uint32_t vcpu_id, const struct vcpud_sregs *sregs,
                           struct vcpud_client_status *st);
int vcpud_client_set_io_result(struct vcpud_client *c, uint32_t vm_id,
                               uint32_t vcpu_id, const uint64_t *values,
                               uint32_t count, struct vcpud_client_status *st);
int vcpud_client_set_mmio_result(struct vcpud_client *c, uint32_t vm_id,
                                 uint32_t vcpu_id, uint64_t value,
                                 struct vcpud_client_status *st);

/* On success *buf is malloc'd (caller frees) holding *len bytes, at most
 * VCPUD_SNAP_MAX_SIZE. */
int vcpud_client_snapshot(struct vcpud_client *c, uint32_t vm_id,
                          uint32_t vcpu_id, void **buf, size_t *len,
                          struct vcpud_client_status *st);
/* (len) 1..VCPUD_SNAP_MAX_SIZE. */
int vcpud_client_restore(struct vcpud_client *c, uint32_t vm_id,
                         uint32_t vcpu_id, const void *buf, size_t len,
                         struct vcpud_client_status *st);

int vcpud_client_inject_interrupt(struct vcpud_client *c, uint32_t vm_id,
                                  uint32_t vcpu_id, uint32_t vector,
                                  struct vcpud_client_status *st);
int vcpud_client_inject_nmi(struct vcpud_client *c, uint32_t vm_id,
                            uint32_t vcpu_id, struct vcpud_client_status *st);
int vcpud_client_set_irq_line(struct vcpud_client *c, uint32_t vm_id,
                              uint32_t irq, bool level,
                              struct vcpud_client_status *st);
/* Post guest writes to a port (pio) or MMIO range: see vcpud_vm_add_posted
 * in vcpud/vm.h. */
int vcpud_client_add_posted(struct vcpud_client *c, uint32_t vm_id, bool pio,
                            uint64_t start, uint64_t len,
                            struct vcpud_client_status *st);
int vcpud_client_remove_posted(struct vcpud_client *c, uint32_t vm_id,
                               bool pio, uint64_t start, uint64_t len,
                               struct vcpud_client_status *st);

int vcpud_client_setup_mode(struct vcpud_client *c, uint32_t vm_id,
                            uint32_t vcpu_id, enum vcpud_mode mode,
                            uint64_t entry, uint64_t stack,
                            uint64_t tables_addr,
                            struct vcpud_client_status *st);

/* ---- the exit stream (Attach) ---- */

struct vcpud_stream;

struct vcpud_stream_opts {
    bool regs_with_exit;  /* general registers travel with every exit */
    bool sregs_with_exit; /* and the special ones */
};

/*
 * Attach to vCPU (vcpu_id) of (vm_id): the stream becomes its only driver
 * until vcpud_stream_close(). One message each way per exit. On success
 * *out is owned by the caller. A stream is used by one thread at a time.
 * (opts) may be NULL.
 */
int vcpud_client_attach(struct vcpud_client *c, uint32_t vm_id,
                        uint32_t vcpu_id, const struct vcpud_stream_opts *opts,
                        struct vcpud_stream **out,
                        struct vcpud_client_status *st);

/*
 * Run until the next exit, answering the previous one as (req) says (NULL:
 * no answer, no limit; its posted buffer is not used: the stream keeps
 * its own, valid until the next step). (regs)/(sregs), when non-NULL and asked for at
 * attach, receive the registers as the exit left them. A command the vCPU
 * cannot take returns its error and the stream stays usable; a broken
 * stream returns the server's status and can only be closed.
 */
int vcpud_stream_run(struct vcpud_stream *s, const struct vcpud_client_run *req,
                     struct vcpud_exit *exit, struct vcpud_regs *regs,
                     struct vcpud_sregs *sregs, struct vcpud_client_status *st);

int vcpud_stream_get_regs(struct vcpud_stream *s, struct vcpud_regs *regs,
                          struct vcpud_client_status *st);
int vcpud_stream_set_regs(struct vcpud_stream *s, const struct vcpud_regs *regs,
                          struct vcpud_client_status *st);
int vcpud_stream_get_sregs(struct vcpud_stream *s, struct vcpud_sregs *sregs,
                           struct vcpud_client_status *st);
int vcpud_stream_set_sregs(struct vcpud_stream *s,
                           const struct vcpud_sregs *sregs,
                           struct vcpud_client_status *st);

/* End the stream (half-close: the server answers any command still in
 * flight first), free it, and return the server's final status. To stop a
 * guest that is running, use vcpud_client_cancel() or a run's timeout.
 * NULL is a no-op. */
int vcpud_stream_close(struct vcpud_stream *s, struct vcpud_client_status *st);

#endif
