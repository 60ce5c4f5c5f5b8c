"""py_client.py: one Python controller row of vcpud_bench (bench/py_drv.c
starts it under Debian's /usr/bin/python3, the one with grpcio).

Each kind of call uses the grpcio style that measured cheapest for it
(bench/README.md, "Python controllers"):

- unary calls: the sync API, one blocking call per round trip. grpcio runs
  the call on its own completion queue, polled by the calling thread: no
  thread hand-off.
- streams: grpc.aio, the read posted before the write. The sync API passes
  every message through a thread of its own (the request iterator's) and
  every completion through its channel thread, which costs more.

Rows (--row): py_grpc_unary and py_grpc_stream against the bare gRPC server
(bench/grpc_server.c, raw bytes both ways); py_run_unary (Run, each IN
answered on the next Run) and py_stream (Attach, one exit per step) against
vcpud, on the IN/OUT guest the C rows run, loaded the same way.

With vcpud_bench, on the socket --fd:
    this: "ok\\n" once set up, or "skip REASON\\n"
    it:   "N\\n", a block of N round trips
    this: "ok N\\n" and N native uint64 round-trip times in ns, or
          "fail REASON\\n"
End of file ends it. Errors go to stderr (vcpud_bench keeps it in a log).
"""

import argparse
import array
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BARE_UNARY = "/vcpud.bench.Bench/Empty"  # bench/grpc_bare.h
BARE_STREAM = "/vcpud.bench.Bench/Echo"
IN_VALUE = 0x5A  # what every IN is answered with; the next OUT sends it back
now = time.monotonic_ns  # CLOCK_MONOTONIC, as the C rows


class Skip(Exception):
    """This row cannot run here; the message says why."""


def protocol_stubs():
    """vcpud.v1's generated modules, from proto/ as it is now: generated
    and imported the way tests/interop/python/run.sh does it (Debian's
    protoc and grpc_python_plugin), into a directory gone once imported."""
    proto = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                         "proto")
    out = tempfile.mkdtemp(prefix="vcpud-bench-py.")
    try:
        r = subprocess.run(
            ["/usr/bin/protoc", "--python_out=" + out,
             "--grpc_python_out=" + out,
             "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
             "-I", proto, os.path.join(proto, "vcpud/v1/vcpud.proto")],
            capture_output=True, text=True)
        if r.returncode != 0:
            raise Skip("protoc could not generate the Python stubs: %s" %
                       (r.stderr.strip().splitlines() or ["?"])[-1])
        sys.path.insert(0, out)
        sys.dont_write_bytecode = True
        from vcpud.v1 import vcpud_pb2, vcpud_pb2_grpc
        return vcpud_pb2, vcpud_pb2_grpc
    except OSError as e:
        raise Skip("cannot run /usr/bin/protoc: %s" % e) from e
    finally:
        shutil.rmtree(out, ignore_errors=True)
        if out in sys.path:
            sys.path.remove(out)


class Aio:
    """An event loop of our own, run for each block: between blocks nothing
    is in flight on it."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)

    def run(self, coro):
        return self.loop.run_until_complete(coro)


async def end_stream(call, channel):
    """Half-close, wait for the server's status, then drop the channel."""
    await call.done_writing()
    await call.code()
    await channel.close()


# ---- the bare gRPC server ----

class BareUnary:
    def __init__(self, grpc, args):
        # The channel must outlive its calls: keep it.
        self.channel = grpc.insecure_channel(args.addr)
        self.call = self.channel.unary_unary(BARE_UNARY)  # bytes as they are
        self.call(b"", timeout=60)

    def block(self, n):
        call, out = self.call, []
        for _ in range(n):
            t0 = now()
            call(b"")
            out.append(now() - t0)
        return out

    def close(self):
        self.channel.close()


class BareStream:
    def __init__(self, grpc, args):
        self.msg = b"\x5a" * args.bytes
        self.aio = Aio()
        self.aio.run(self._open(grpc, args.addr))

    async def _open(self, grpc, addr):
        # An aio channel collected while its call is open leaves the call
        # hanging: keep it.
        self.channel = grpc.aio.insecure_channel(addr)
        self.call = self.channel.stream_stream(BARE_STREAM)()
        await self.call.write(self.msg)
        await self.call.read()

    async def _block(self, n):
        call, msg, out = self.call, self.msg, []
        task = asyncio.get_running_loop().create_task
        for _ in range(n):
            t0 = now()
            reply = task(call.read())  # posted before the write
            await call.write(msg)
            got = await reply
            out.append(now() - t0)
            if len(got) != len(msg):
                raise RuntimeError("the echo stream answered %r" % (got,))
        return out

    def block(self, n):
        return self.aio.run(self._block(n))

    def close(self):
        self.aio.run(end_stream(self.call, self.channel))


# ---- vcpud ----

class Vm:
    """A VM with one vCPU and the guest of --guest loaded, set up like the
    C rows do (bench/vcpud_drv.c), through a sync channel of its own."""

    def __init__(self, grpc, args):
        self.pb, self.rpc = protocol_stubs()
        pb = self.pb
        self.setup_channel = grpc.insecure_channel(args.addr)
        s = self.setup = self.rpc.VcpudStub(self.setup_channel)
        self.vm = s.CreateVm(pb.CreateVmRequest(max_vcpus=1),
                             timeout=60).vm_id
        s.AddMemoryRegion(pb.AddMemoryRegionRequest(
            vm_id=self.vm, region=pb.MemoryRegion(slot=0, size=args.ram)),
            timeout=60)
        s.WriteMemory(iter([pb.WriteMemoryChunk(
            vm_id=self.vm, guest_phys_addr=args.load,
            data=bytes.fromhex(args.guest))]), timeout=60)
        s.CreateVcpu(pb.VcpuRef(vm_id=self.vm, vcpu_id=0), timeout=60)
        s.SetupMode(pb.SetupModeRequest(
            vm_id=self.vm, vcpu_id=0, mode=pb.MODE_REAL, entry=args.load,
            stack=args.stack), timeout=60)
        self.pending_in = False  # the last exit was an IN: answer it

    def check(self, x):
        """The guest's exits: IN, then OUT of the value the IN got."""
        pb = self.pb
        if x.kind == pb.EXIT_KIND_IO_IN:
            self.pending_in = True
        elif x.kind == pb.EXIT_KIND_IO_OUT and (
                not self.pending_in or x.io.data == bytes([IN_VALUE])):
            self.pending_in = False
        else:
            raise RuntimeError("unexpected exit: %s" % str(x).replace(
                "\n", " "))

    def close(self):
        self.setup.DestroyVm(self.pb.VmRef(vm_id=self.vm), timeout=60)
        self.setup_channel.close()


class RunUnary(Vm):
    def __init__(self, grpc, args):
        super().__init__(grpc, args)
        self.channel = grpc.insecure_channel(args.addr)
        self.run = self.rpc.VcpudStub(self.channel).Run

    def block(self, n):
        pb, run, vm, out = self.pb, self.run, self.vm, []
        for _ in range(n):
            t0 = now()
            req = pb.RunRequest(vm_id=vm, vcpu_id=0)
            if self.pending_in:  # the answer rides on the next Run
                req.io.values.append(IN_VALUE)
            x = run(req).exit
            out.append(now() - t0)
            self.check(x)
        return out

    def close(self):
        self.channel.close()
        super().close()


class Stream(Vm):
    def __init__(self, grpc, args):
        super().__init__(grpc, args)
        self.aio = Aio()
        self.aio.run(self._open(grpc, args.addr))

    async def _open(self, grpc, addr):
        pb = self.pb
        self.channel = grpc.aio.insecure_channel(addr)  # kept, see BareStream
        self.call = self.rpc.VcpudStub(self.channel).Attach()
        await self.call.write(pb.AttachRequest(
            open=pb.AttachOpen(vm_id=self.vm, vcpu_id=0)))
        reply = await self.call.read()
        if reply.WhichOneof("reply") != "opened":
            raise Skip("Attach refused: %s" % str(reply).replace("\n", " "))

    async def _block(self, n):
        pb, call, out = self.pb, self.call, []
        task = asyncio.get_running_loop().create_task
        for _ in range(n):
            t0 = now()
            run = pb.RunCommand()
            if self.pending_in:
                run.io.values.append(IN_VALUE)
            reply = task(call.read())  # posted before the write
            await call.write(pb.AttachRequest(run=run))
            r = await reply
            out.append(now() - t0)
            if r.WhichOneof("reply") != "exit":
                raise RuntimeError("stream run: %s" % str(r).replace(
                    "\n", " "))
            self.check(r.exit)
        return out

    def block(self, n):
        return self.aio.run(self._block(n))

    def close(self):
        self.aio.run(end_stream(self.call, self.channel))
        super().close()


ROWS = {
    "py_grpc_unary": BareUnary,
    "py_grpc_stream": BareStream,
    "py_run_unary": RunUnary,
    "py_stream": Stream,
}


def one_line(e):
    if hasattr(e, "code") and hasattr(e, "details"):  # grpc.RpcError
        e = "%s: %s" % (e.code().name, e.details())
    return " ".join(str(e).split())[:300]


def serve(conn, row):
    """Blocks of round trips, until end of file."""
    commands = conn.makefile("rb")
    for line in commands:
        n = int(line)
        try:
            times = row.block(n)
        except Exception as e:  # the C side prints it
            conn.sendall(b"fail %s\n" % one_line(e).encode())
            raise
        conn.sendall(b"ok %d\n" % n + array.array("Q", times).tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fd", type=int, required=True)
    ap.add_argument("--row", choices=sorted(ROWS), required=True)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--bytes", type=int, default=15)
    ap.add_argument("--guest", help="the guest's code, in hex")
    ap.add_argument("--load", type=lambda s: int(s, 0), default=0x1000)
    ap.add_argument("--stack", type=lambda s: int(s, 0), default=0x8000)
    ap.add_argument("--ram", type=lambda s: int(s, 0), default=0x200000)
    args = ap.parse_args()
    conn = socket.socket(fileno=args.fd)
    try:
        try:
            import grpc
            import grpc.aio  # noqa: F401
        except ImportError as e:
            raise Skip("%s lacks grpcio (%s): deploy/install-deps.sh "
                       "installs python3-grpcio" % (sys.executable, e))
        if args.row in ("py_run_unary", "py_stream") and not args.guest:
            raise Skip("--guest is missing")
        row = ROWS[args.row](grpc, args)
    except Skip as e:
        conn.sendall(b"skip %s\n" % one_line(e).encode())
        return 0
    except Exception as e:
        conn.sendall(b"skip setting up: %s\n" % one_line(e).encode())
        raise
    conn.sendall(b"ok\n")
    try:
        serve(conn, row)
    finally:
        row.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
