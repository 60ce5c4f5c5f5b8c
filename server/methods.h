/* methods.h: the handlers of vcpud.v1.Vcpud, one per RPC. */
#ifndef VCPUD_SERVER_METHODS_H
#define VCPUD_SERVER_METHODS_H

#include <stddef.h>
#include <stdint.h>

#include "rpc.h"

#define HANDLER(name)                                                          \
    void name(struct rpc_call *call, const uint8_t *buf, size_t len);

HANDLER(m_create_vm)
HANDLER(m_destroy_vm)
HANDLER(m_list_vms)
HANDLER(m_get_vm)
HANDLER(m_add_memory_region)
HANDLER(m_remove_memory_region)
HANDLER(m_set_irq_line)
HANDLER(m_write_memory)
HANDLER(m_read_memory)
HANDLER(m_create_vcpu)
HANDLER(m_destroy_vcpu)
HANDLER(m_run)
HANDLER(m_cancel)
HANDLER(m_get_regs)
HANDLER(m_set_regs)
HANDLER(m_get_sregs)
HANDLER(m_set_sregs)
HANDLER(m_set_io_result)
HANDLER(m_set_mmio_result)
HANDLER(m_snapshot)
HANDLER(m_restore)
HANDLER(m_inject_interrupt)
HANDLER(m_inject_nmi)
HANDLER(m_setup_mode)
HANDLER(m_add_posted_range)
HANDLER(m_remove_posted_range)
#undef HANDLER

void m_run_done(struct rpc_call *call);
void m_attach(struct rpc_call *call); /* on_stream */
void m_attach_cancel(struct rpc_call *call);
void m_attach_done(struct rpc_call *call);
void m_memory_done(struct rpc_call *call);
void m_read_memory_sent(struct rpc_call *call, bool ok);

#endif
