# controller.py: the smallest remote controller – the demo guest on vcpud, from Python.
# Run: /usr/bin/python3 examples/controller.py [ADDR] [demo_guest.bin], with stubs from
# protoc --python_out --grpc_python_out on PYTHONPATH (see README).
import sys, grpc
from vcpud.v1 import vcpud_pb2 as pb, vcpud_pb2_grpc as rpc

s = rpc.VcpudStub(grpc.insecure_channel(sys.argv[1] if len(sys.argv) > 1 else "unix:/tmp/vcpud.sock"))
vm = s.CreateVm(pb.CreateVmRequest()).vm_id
s.AddMemoryRegion(pb.AddMemoryRegionRequest(vm_id=vm, region=pb.MemoryRegion(slot=0, size=2 << 20)))
code = open(sys.argv[2] if len(sys.argv) > 2 else "build/examples/demo_guest.bin", "rb").read()
s.WriteMemory(iter([pb.WriteMemoryChunk(vm_id=vm, guest_phys_addr=0x1000, data=code)]))
s.CreateVcpu(pb.VcpuRef(vm_id=vm, vcpu_id=0))
s.SetupMode(pb.SetupModeRequest(vm_id=vm, vcpu_id=0, mode=pb.MODE_LONG, entry=0x1000, stack=0x8000, tables_addr=0x100000))
req, line, regs = pb.RunRequest(vm_id=vm, vcpu_id=0), list(b"hi from Python\n"), {}
while (x := s.Run(req).exit).kind != pb.EXIT_KIND_HLT:           # one round trip per exit
    req = pb.RunRequest(vm_id=vm, vcpu_id=0)                        # the answer rides on the next Run
    if x.kind == pb.EXIT_KIND_IO_OUT: print(x.io.data.decode(), end="", flush=True)
    elif x.kind == pb.EXIT_KIND_IO_IN: req.io.values.append(0x61 if x.io.port == 0x3fd else line.pop(0))
    elif x.kind == pb.EXIT_KIND_MMIO_WRITE: regs[x.mmio.address] = x.mmio.data   # timer scratch
    elif x.kind == pb.EXIT_KIND_MMIO_READ: req.mmio.value = regs.get(x.mmio.address, 42)
s.DestroyVm(pb.VmRef(vm_id=vm))
