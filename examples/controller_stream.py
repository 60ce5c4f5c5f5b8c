# controller_stream.py: controller.py over the exit stream (Attach) – one message each way per exit,
# no call per exit. grpc.aio with the read posted before the write: the cheapest grpcio stream
# measured (bench/README.md, "Python controllers"). Run as controller.py:
# /usr/bin/python3 examples/controller_stream.py [ADDR] [demo_guest.bin], stubs on PYTHONPATH.
import asyncio, sys, grpc
from vcpud.v1 import vcpud_pb2 as pb, vcpud_pb2_grpc as rpc

async def main(addr, path):
    async with grpc.aio.insecure_channel(addr) as channel:
        s = rpc.VcpudStub(channel)
        vm = (await s.CreateVm(pb.CreateVmRequest())).vm_id
        await s.AddMemoryRegion(pb.AddMemoryRegionRequest(vm_id=vm, region=pb.MemoryRegion(slot=0, size=2 << 20)))
        code = open(path, "rb").read()
        await s.WriteMemory(iter([pb.WriteMemoryChunk(vm_id=vm, guest_phys_addr=0x1000, data=code)]))
        await s.CreateVcpu(pb.VcpuRef(vm_id=vm, vcpu_id=0))
        await s.SetupMode(pb.SetupModeRequest(vm_id=vm, vcpu_id=0, mode=pb.MODE_LONG, entry=0x1000, stack=0x8000,
                                              tables_addr=0x100000))
        call, line, regs = s.Attach(), list(b"hi from Python\n"), {}
        await call.write(pb.AttachRequest(open=pb.AttachOpen(vm_id=vm, vcpu_id=0)))
        await call.read()                                            # "opened"
        run = pb.RunCommand()
        while True:
            reply = asyncio.ensure_future(call.read())               # posted first: one wake-up less
            await call.write(pb.AttachRequest(run=run))              # the answer rides on the command
            r = await reply
            if r.WhichOneof("reply") != "exit": sys.exit("vcpud: " + r.error.message)
            if (x := r.exit).kind == pb.EXIT_KIND_HLT: break
            run = pb.RunCommand()
            if x.kind == pb.EXIT_KIND_IO_OUT: print(x.io.data.decode(), end="", flush=True)
            elif x.kind == pb.EXIT_KIND_IO_IN: run.io.values.append(0x61 if x.io.port == 0x3fd else line.pop(0))
            elif x.kind == pb.EXIT_KIND_MMIO_WRITE: regs[x.mmio.address] = x.mmio.data   # timer scratch
            elif x.kind == pb.EXIT_KIND_MMIO_READ: run.mmio.value = regs.get(x.mmio.address, 42)
        await call.done_writing()
        await call.code()
        await s.DestroyVm(pb.VmRef(vm_id=vm))

asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "unix:/tmp/vcpud.sock",
                 sys.argv[2] if len(sys.argv) > 2 else "build/examples/demo_guest.bin"))
