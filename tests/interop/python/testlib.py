"""What every interop test shares: its own vcpud, guests loaded the way the
C integration tests load them (tests/integration/itest.c), and assertions
on exits and statuses."""

import os
import time
import unittest

import grpc

import guests
from api import pb
from server import TIMEOUT_SCALE, Server

BUILD_DIR = os.environ.get("VCPUD_BUILD_DIR", "")
VCPUD = os.path.join(BUILD_DIR, "server", "vcpud")

CALL_TIMEOUT = 60.0 * TIMEOUT_SCALE  # per call; see server.py for why so long
CHUNK = 32768        # the bound on WriteMemoryChunk and MemoryChunk data
RAM_SIZE = 0x200000  # the C tests' layout: RAM at 0, tables at 1 MiB
TABLES = 0x100000
STACK = 0x8000

_guest_code = None


def guest(name):
    global _guest_code
    if _guest_code is None:
        _guest_code = guests.load(BUILD_DIR)
    return _guest_code[name]


def io_value(x, i=0):
    """Element (i) of an io exit's data, little endian as documented."""
    size = x.io.size
    return int.from_bytes(x.io.data[i * size:(i + 1) * size], "little")


class _Timed:
    """A stub method whose calls carry a deadline unless told otherwise, so a
    hung server fails the test instead of hanging the suite."""

    def __init__(self, method):
        self._m = method

    def __call__(self, req, **kw):
        kw.setdefault("timeout", CALL_TIMEOUT)
        return self._m(req, **kw)

    def future(self, req, **kw):
        kw.setdefault("timeout", CALL_TIMEOUT)
        return self._m.future(req, **kw)


class Client:
    """A stub whose every method is _Timed."""

    def __init__(self, stub):
        self._stub = stub

    def __getattr__(self, name):
        return _Timed(getattr(self._stub, name))


class VcpudTest(unittest.TestCase):
    transport = "unix"
    server_args = ()

    def setUp(self):
        # Where a slow test spent its time, for the runner to show.
        self.phases = [("start", time.monotonic())]
        self.server = Server(VCPUD, self.transport, self.server_args)
        self.addCleanup(self.server.cleanup)
        self.phases.append(("connect", time.monotonic()))
        self.c = self.client()
        self.phases.append(("test", time.monotonic()))

    def tearDown(self):
        self.phases.append(("stop", time.monotonic()))
        # Here rather than in a cleanup so a bad exit fails the test.
        rc = self.server.stop()
        self.phases.append(("end", time.monotonic()))
        self.assertEqual(0, rc, "vcpud exited with %s on SIGTERM; its log:\n%s"
                         % (rc, self.server.log()))

    def client(self):
        """A client on its own channel (its own HTTP/2 connection)."""
        return Client(self.server.stub())

    # ---- guests ----

    def guest_vm(self, name, mode=pb.MODE_REAL, irqchip=False, c=None):
        """A VM with 2 MiB of RAM, guest (name) at 0x1000 and vCPU 0 set up
        in (mode) to start there."""
        c = c or self.c
        vm = c.CreateVm(pb.CreateVmRequest(max_vcpus=2, irqchip=irqchip)).vm_id
        c.AddMemoryRegion(pb.AddMemoryRegionRequest(
            vm_id=vm, region=pb.MemoryRegion(slot=0, guest_phys_addr=0,
                                             size=RAM_SIZE)))
        self.write_memory(vm, guests.LOAD, guest(name), c=c)
        c.CreateVcpu(pb.VcpuRef(vm_id=vm, vcpu_id=0))
        c.SetupMode(pb.SetupModeRequest(vm_id=vm, vcpu_id=0, mode=mode,
                                        entry=guests.LOAD, stack=STACK,
                                        tables_addr=TABLES))
        return vm

    def run_vcpu(self, vm, io=None, mmio=None, timeout_ms=0, vcpu=0, c=None):
        req = pb.RunRequest(vm_id=vm, vcpu_id=vcpu, timeout_ms=timeout_ms)
        if io is not None:
            req.io.values.extend(io)
        if mmio is not None:
            req.mmio.value = mmio
        return (c or self.c).Run(req).exit

    def run_expect(self, vm, kind, **kw):
        x = self.run_vcpu(vm, **kw)
        self.assertEqual(pb.ExitKind.Name(kind), pb.ExitKind.Name(x.kind),
                         "unexpected exit: %s" % x)
        return x

    def start_spinning(self, vm, c=None):
        """A Run of the `spin` guest, in flight once this returns."""
        run = (c or self.c).Run.future(pb.RunRequest(vm_id=vm, vcpu_id=0))
        self.wait_running(vm, lambda: run.done() and
                          str(run.exception() or run.result()))
        return run

    def wait_running(self, vm, ended=lambda: None):
        """Until vCPU 0 of (vm) runs: GetRegs is refused as busy then (and a
        Run that meets a GetRegs waits for it, so polling is harmless).
        (ended)() says how the Run ended, if it did, to fail early."""
        probe = pb.VcpuRef(vm_id=vm, vcpu_id=0)
        deadline = time.monotonic() + CALL_TIMEOUT
        while time.monotonic() < deadline:
            how = ended()
            if how:
                self.fail("the Run ended before it was seen running: " + how)
            try:
                self.c.GetRegs(probe)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    return
                raise
            time.sleep(0.02)
        self.fail("the Run never started")

    def retry_busy(self, fn, *args, **kw):
        """(fn)(*args, **kw), again every 20 ms while it fails with
        FAILED_PRECONDITION, for up to CALL_TIMEOUT: the server lets go of
        a departed caller's vCPU on its own schedule."""
        deadline = time.monotonic() + CALL_TIMEOUT
        while True:
            try:
                return fn(*args, **kw)
            except grpc.RpcError as e:
                if (e.code() != grpc.StatusCode.FAILED_PRECONDITION
                        or time.monotonic() > deadline):
                    raise
            time.sleep(0.02)

    def regs(self, vm, vcpu=0, c=None):
        return (c or self.c).GetRegs(pb.VcpuRef(vm_id=vm, vcpu_id=vcpu))

    # ---- memory ----

    def write_memory(self, vm, addr, data, c=None, chunk=CHUNK):
        """Stream (data) to (addr) in chunks of at most (chunk) bytes, each
        naming its own address; returns the server's bytes_written."""
        def chunks():
            for off in range(0, len(data), chunk):
                yield pb.WriteMemoryChunk(vm_id=vm, guest_phys_addr=addr + off,
                                          data=data[off:off + chunk])
        return (c or self.c).WriteMemory(chunks()).bytes_written

    def read_memory(self, vm, addr, length, c=None):
        """Read through the server stream, holding it to its contract:
        chunks of at most CHUNK bytes, in address order, nothing missing."""
        out = bytearray()
        for m in (c or self.c).ReadMemory(pb.ReadMemoryRequest(
                vm_id=vm, guest_phys_addr=addr, length=length)):
            self.assertEqual(addr + len(out), m.guest_phys_addr,
                             "chunk out of address order")
            self.assertLessEqual(len(m.data), CHUNK)
            self.assertGreater(len(m.data), 0, "empty chunk")
            out += m.data
        self.assertEqual(length, len(out))
        return bytes(out)

    # ---- statuses ----

    def assertStatus(self, code, fn, req, needle=None, errno_in=None):
        """(fn)(req) must fail with (code) (or one of a tuple of codes), a
        message containing (needle), and the `vcpud-errno` trailer: a
        negative errno, one of (errno_in) when given. Returns the error."""
        with self.assertRaises(grpc.RpcError) as cm:
            fn(req)
        e = cm.exception
        codes = code if isinstance(code, tuple) else (code,)
        self.assertIn(e.code(), codes, "details: %s" % e.details())
        if needle is not None:
            self.assertIn(needle, e.details())
        trailer = dict(e.trailing_metadata() or ())
        self.assertIn("vcpud-errno", trailer,
                      "no vcpud-errno trailer on %s (%s)"
                      % (code, e.details()))
        err = int(trailer["vcpud-errno"])
        self.assertLess(err, 0, "vcpud-errno is not a negative errno")
        if errno_in is not None:
            self.assertIn(-err, errno_in, "vcpud-errno %d for %s (%s)"
                          % (err, code, e.details()))
        return e
