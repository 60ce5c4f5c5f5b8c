/* methods.c: the method table – paths, call shapes and handlers. */
#include "app.h"
#include "methods.h"
#include "vcpu_host.h"

#define PATH(m) "/vcpud.v1.Vcpud/" m
#define UNARY(m, fn) {.path = PATH(m), .kind = RPC_UNARY, .on_message = fn}

const struct rpc_method app_methods[] = {
    UNARY("CreateVm", m_create_vm),
    UNARY("DestroyVm", m_destroy_vm),
    UNARY("ListVms", m_list_vms),
    UNARY("GetVm", m_get_vm),
    UNARY("AddMemoryRegion", m_add_memory_region),
    UNARY("RemoveMemoryRegion", m_remove_memory_region),
    {.path = PATH("WriteMemory"), .kind = RPC_CLIENT_STREAM,
     .on_message = m_write_memory, .on_done = m_memory_done},
    {.path = PATH("ReadMemory"), .kind = RPC_SERVER_STREAM,
     .on_message = m_read_memory, .on_sent = m_read_memory_sent,
     .on_done = m_memory_done},
    UNARY("CreateVcpu", m_create_vcpu),
    UNARY("DestroyVcpu", m_destroy_vcpu),
    {.path = PATH("Run"), .kind = RPC_UNARY, .on_message = m_run,
     .on_cancel = host_on_run_cancel, .on_sent = host_on_run_sent,
     .on_done = m_run_done},
    {.path = PATH("Attach"), .kind = RPC_BIDI_STREAM, .on_stream = m_attach,
     .on_cancel = m_attach_cancel, .on_done = m_attach_done},
    UNARY("Cancel", m_cancel),
    UNARY("GetRegs", m_get_regs),
    UNARY("SetRegs", m_set_regs),
    UNARY("GetSpecialRegs", m_get_sregs),
    UNARY("SetSpecialRegs", m_set_sregs),
    UNARY("SetIoResult", m_set_io_result),
    UNARY("SetMmioResult", m_set_mmio_result),
    UNARY("Snapshot", m_snapshot),
    UNARY("Restore", m_restore),
    UNARY("InjectInterrupt", m_inject_interrupt),
    UNARY("InjectNmi", m_inject_nmi),
    UNARY("SetIrqLine", m_set_irq_line),
    UNARY("AddPostedRange", m_add_posted_range),
    UNARY("RemovePostedRange", m_remove_posted_range),
    UNARY("SetupMode", m_setup_mode),
};

const size_t app_nmethods = sizeof(app_methods) / sizeof(app_methods[0]);
