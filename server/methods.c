/* methods.c: the method table – paths, call shapes and handlers. */
#include "app.h"
#include "methods.h"
#include "vcpu_host.h"

#define PATH(m) "/vcpud.v1.Vcpud/" m
#define UNARY(m, fn) {PATH(m), RPC_UNARY, fn, NULL, NULL, NULL}

const struct rpc_method app_methods[] = {
    UNARY("CreateVm", m_create_vm),
    UNARY("DestroyVm", m_destroy_vm),
    UNARY("ListVms", m_list_vms),
    UNARY("GetVm", m_get_vm),
    UNARY("AddMemoryRegion", m_add_memory_region),
    UNARY("RemoveMemoryRegion", m_remove_memory_region),
    {PATH("WriteMemory"), RPC_CLIENT_STREAM, m_write_memory, NULL, NULL,
     m_memory_done},
    {PATH("ReadMemory"), RPC_SERVER_STREAM, m_read_memory, NULL,
     m_read_memory_sent, m_memory_done},
    UNARY("CreateVcpu", m_create_vcpu),
    UNARY("DestroyVcpu", m_destroy_vcpu),
    {PATH("Run"), RPC_UNARY, m_run, host_on_run_cancel, host_on_run_sent,
     m_run_done},
    {PATH("Attach"), RPC_BIDI_STREAM, m_attach, m_attach_cancel,
     host_on_run_sent, m_attach_done},
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
