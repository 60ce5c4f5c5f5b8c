/* vcpuctl_cmds.c: the subcommand table – name, usage, flags and handler
 * of each, one per RPC of vcpud.v1.Vcpud (load adds ELF on WriteMemory). */
#include <string.h>

#include "vcpuctl.h"

/* vcpuctl_args has room for VCPUCTL_FLAGS_MAX values; the NULL entry
 * ending a list takes none. */
#define FLAGS_FIT(list)                                                        \
    _Static_assert(sizeof(list) / sizeof(list[0]) - 1 <= VCPUCTL_FLAGS_MAX,    \
                   #list " has more flags than struct vcpuctl_args holds")

static const struct vcpuctl_flag vm_create_flags[] = {
    {"--max-vcpus", "N", "vCPUs the VM may have, 1..64 (default 1)"},
    {"--irqchip", NULL,
     "in-kernel PIC/IOAPIC/LAPIC; hlt then sleeps in the kernel, so runs "
     "need --timeout-ms or a cancel"},
    {NULL, NULL, NULL},
};

static const struct vcpuctl_flag mem_add_flags[] = {
    {"--read-only", NULL, "guest writes become mmio-write exits"},
    {NULL, NULL, NULL},
};

static const struct vcpuctl_flag load_flags[] = {
    {"--flat", NULL, "copy the file as it is to --addr"},
    {"--addr", "GPA", "where a flat image goes"},
    {"--elf", NULL,
     "copy each PT_LOAD segment to its p_paddr and zero the rest of its "
     "p_memsz (the default for files starting with the ELF magic)"},
    {NULL, NULL, NULL},
};

static const struct vcpuctl_flag mode_flags[] = {
    {"--entry", "ADDR", "initial RIP (required)"},
    {"--stack", "ADDR", "initial RSP (default 0)"},
    {"--tables", "ADDR",
     "4 KiB aligned guest RAM for the GDT (protected, 4 KiB) or GDT and "
     "page tables (long, 28 KiB); required except in real mode"},
    {NULL, NULL, NULL},
};

static const struct vcpuctl_flag run_flags[] = {
    {"--steps", "N",
     "run up to N exits, printing each (default 1; no limit with --until "
     "hlt)"},
    {"--timeout-ms", "N",
     "wall-clock limit of each Run; on expiry the exit is canceled "
     "reason=timeout"},
    {"--io-result", "V[,V...]",
     "answer the pending io-in (one value per element) with the first Run"},
    {"--mmio-result", "V", "answer the pending mmio-read with the first Run"},
    {"--until", "hlt|any", "stop at the first hlt exit, or at any exit"},
    {NULL, NULL, NULL},
};

/* run's flags and the registers the stream can carry with each exit. */
static const struct vcpuctl_flag attach_flags[] = {
    {"--steps", "N",
     "run up to N exits (default 1; no limit with --until hlt)"},
    {"--timeout-ms", "N", "wall-clock limit of each run"},
    {"--io-result", "V[,V...]", "answer the pending io-in with the first run"},
    {"--mmio-result", "V", "answer the pending mmio-read with the first run"},
    {"--until", "hlt|any", "stop at the first hlt exit, or at any exit"},
    {"--regs", NULL, "print the general registers with each exit"},
    {"--sregs", NULL, "print the special registers with each exit"},
    {NULL, NULL, NULL},
};

FLAGS_FIT(vm_create_flags);
FLAGS_FIT(mem_add_flags);
FLAGS_FIT(load_flags);
FLAGS_FIT(mode_flags);
FLAGS_FIT(run_flags);
FLAGS_FIT(attach_flags);

/* .args and .opts are "" when there are none; .details and .flags may be
 * left out. */
const struct vcpuctl_cmd vcpuctl_cmds[] = {
    {.name = "vm-create",
     .args = "",
     .opts = "[--max-vcpus N] [--irqchip]",
     .summary = "Create a VM and print its id.",
     .flags = vm_create_flags,
     .run = vcpuctl_vm_create},
    {.name = "vm-list",
     .args = "",
     .opts = "",
     .summary = "List the VMs this caller can see.",
     .run = vcpuctl_vm_list},
    {.name = "vm-show",
     .args = "VM",
     .opts = "",
     .summary = "Show a VM: its vCPUs and memory regions.",
     .run = vcpuctl_vm_show},
    {.name = "vm-destroy",
     .args = "VM",
     .opts = "",
     .summary = "Destroy a VM, its vCPUs (cancelling them) and its memory.",
     .run = vcpuctl_vm_destroy},
    {.name = "mem-add",
     .args = "VM SLOT GPA SIZE",
     .opts = "[--read-only]",
     .summary = "Give the guest zeroed RAM in slot 0..31.",
     .details = "GPA and SIZE are multiples of 4K.\n",
     .flags = mem_add_flags,
     .run = vcpuctl_mem_add},
    {.name = "mem-remove",
     .args = "VM SLOT",
     .opts = "",
     .summary = "Take a memory region away.",
     .run = vcpuctl_mem_remove},
    {.name = "mem-write",
     .args = "VM GPA FILE",
     .opts = "",
     .summary = "Copy FILE (- for stdin) into guest memory at GPA.",
     .run = vcpuctl_mem_write},
    {.name = "mem-read",
     .args = "VM GPA LEN FILE",
     .opts = "",
     .summary = "Copy LEN bytes of guest memory at GPA into FILE (- for "
                "stdout).",
     .details = "With --json and FILE -, the bytes come as hex in the JSON "
                "line.\n",
     .run = vcpuctl_mem_read},
    {.name = "load",
     .args = "VM FILE",
     .opts = "[--flat --addr GPA | --elf]",
     .summary = "Load a guest image: flat at GPA, or an ELF by its segments.",
     .details = "ELF32 and ELF64, little-endian x86. Prints the ELF's entry "
                "point;\nnothing is written unless every segment lies in "
                "guest RAM.\n",
     .flags = load_flags,
     .run = vcpuctl_load},
    {.name = "vcpu-create",
     .args = "VM VCPU",
     .opts = "",
     .summary = "Create vCPU VCPU (< the VM's max_vcpus).",
     .run = vcpuctl_vcpu_create},
    {.name = "vcpu-destroy",
     .args = "VM VCPU",
     .opts = "",
     .summary = "Destroy a vCPU; a running one is cancelled first.",
     .run = vcpuctl_vcpu_destroy},
    {.name = "mode",
     .args = "VM VCPU real|protected|long",
     .opts = "--entry ADDR [--stack ADDR] [--tables ADDR]",
     .summary = "Put a vCPU in real, protected or long mode.",
     .details = "Long mode identity-maps the first 4 GiB with 2 MiB pages.\n",
     .flags = mode_flags,
     .run = vcpuctl_mode},
    {.name = "regs",
     .args = "VM VCPU",
     .opts = "",
     .summary = "Print the general registers.",
     .run = vcpuctl_regs},
    {.name = "set-reg",
     .args = "VM VCPU NAME=VALUE...",
     .opts = "",
     .summary = "Change general registers, keeping the others.",
     .details = "NAME: rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip rflags.\n",
     .run = vcpuctl_set_reg},
    {.name = "sregs",
     .args = "VM VCPU",
     .opts = "",
     .summary = "Print the special registers.",
     .run = vcpuctl_sregs},
    {.name = "set-sreg",
     .args = "VM VCPU NAME=VALUE...",
     .opts = "",
     .summary = "Change special registers, keeping the others.",
     .details =
         "NAME: cr0 cr2 cr3 cr4 cr8 efer apic_base, gdt.base gdt.limit\n"
         "idt.base idt.limit, or SEG.FIELD with SEG cs ds es fs gs ss tr ldt "
         "and\nFIELD base limit selector type present dpl db s l g avl "
         "unusable.\n",
     .run = vcpuctl_set_sreg},
    {.name = "run",
     .args = "VM VCPU",
     .opts = "[--steps N] [--timeout-ms N] [--io-result V[,V...]] "
             "[--mmio-result V] [--until hlt|any]",
     .summary = "Run the vCPU and print each exit.",
     .details = "The loop stops early at an io-in or mmio-read (the guest "
                "waits for a\nvalue: the note says which flag to pass to the "
                "next run) and at an\nexit that ends or stops the guest "
                "(shutdown, fail-entry,\ninternal-error, canceled, "
                "unknown).\n",
     .flags = run_flags,
     .run = vcpuctl_run},
    {.name = "attach",
     .args = "VM VCPU",
     .opts = "[--steps N] [--timeout-ms N] [--io-result V[,V...]] "
             "[--mmio-result V] [--until hlt|any] [--regs] [--sregs]",
     .summary = "Like run, over the exit stream: one call for all the exits.",
     .details = "The vCPU has no other driver meanwhile (a Run elsewhere "
                "gets\nFAILED_PRECONDITION). With --regs/--sregs the "
                "registers as the exit\nleft them come with each exit (in "
                "its JSON object as \"regs\" and\n\"sregs\").\n",
     .flags = attach_flags,
     .run = vcpuctl_attach},
    {.name = "io-result",
     .args = "VM VCPU V[,V...]",
     .opts = "",
     .summary = "Answer a pending io-in without running.",
     .details = "One value per element of a string (rep ins) access.\n",
     .run = vcpuctl_io_result},
    {.name = "mmio-result",
     .args = "VM VCPU V",
     .opts = "",
     .summary = "Answer a pending mmio-read without running.",
     .run = vcpuctl_mmio_result},
    {.name = "snapshot",
     .args = "VM VCPU FILE",
     .opts = "",
     .summary = "Save the complete vCPU state, pending exit included, to "
                "FILE.",
     .details = "FILE - is stdout (hex in the JSON line with --json).\n",
     .run = vcpuctl_snapshot},
    {.name = "restore",
     .args = "VM VCPU FILE",
     .opts = "",
     .summary = "Load a snapshot from FILE (- for stdin) into a vCPU.",
     .run = vcpuctl_restore},
    {.name = "inject",
     .args = "VM VCPU VECTOR",
     .opts = "",
     .summary = "Raise interrupt VECTOR (32..255), also while the vCPU runs.",
     .run = vcpuctl_inject},
    {.name = "nmi",
     .args = "VM VCPU",
     .opts = "",
     .summary = "Inject an NMI.",
     .run = vcpuctl_nmi},
    {.name = "irq-line",
     .args = "VM IRQ 0|1",
     .opts = "",
     .summary = "Drive IOAPIC input IRQ (0..23) of a VM created with "
                "--irqchip.",
     .run = vcpuctl_irq_line},
    {.name = "posted-add",
     .args = "VM pio|mmio START LEN",
     .opts = "",
     .summary = "Make guest writes to a port or MMIO range posted.",
     .details = "They no longer stop the guest: the next exit carries them, "
                "oldest\nfirst (\"posted\" in its JSON object, posted-write "
                "lines before it in\ntext). LEN is 1..1M; at most 16 ranges "
                "per VM, MMIO ones not over RAM.\n",
     .run = vcpuctl_posted_add},
    {.name = "posted-remove",
     .args = "VM pio|mmio START LEN",
     .opts = "",
     .summary = "Remove exactly a range posted-add made.",
     .run = vcpuctl_posted_remove},
    {.name = "cancel",
     .args = "VM VCPU",
     .opts = "",
     .summary = "Stop a running vCPU: its run prints canceled "
                "reason=requested.",
     .details = "With nothing running, the next run stops that way at "
                "once.\n",
     .run = vcpuctl_cancel},
};

const size_t vcpuctl_ncmds = sizeof(vcpuctl_cmds) / sizeof(vcpuctl_cmds[0]);

const struct vcpuctl_cmd *vcpuctl_find_cmd(const char *name)
{
    for (size_t i = 0; i < vcpuctl_ncmds; i++)
        if (strcmp(vcpuctl_cmds[i].name, name) == 0)
            return &vcpuctl_cmds[i];
    return NULL;
}
