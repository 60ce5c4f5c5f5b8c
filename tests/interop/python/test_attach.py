"""The exit stream (Attach) driven from grpcio's bidirectional streams."""

import queue
import time

import grpc

from api import pb
from testlib import VcpudTest

S = grpc.StatusCode
_END = object()


class Stream:
    """One Attach call in lock step: each command gets its one reply.

    grpcio reads the request iterator on a thread of its own, so commands
    go through a queue; replies come from the response iterator."""

    def __init__(self, client, **open_fields):
        self._q = queue.Queue()
        self.call = client.Attach(self._requests())
        try:
            self.opened = self.cmd(pb.AttachRequest(
                open=pb.AttachOpen(**open_fields)))
        except grpc.RpcError:
            self.abort()
            raise

    def _requests(self):
        while True:
            req = self._q.get()
            if req is _END:
                return
            yield req

    def send(self, req):
        self._q.put(req)

    def cmd(self, req):
        self.send(req)
        return next(self.call)

    def run(self, io=None, mmio=None, timeout_ms=0):
        run = pb.RunCommand(timeout_ms=timeout_ms)
        if io is not None:
            run.io.values.extend(io)
        if mmio is not None:
            run.mmio.value = mmio
        return self.cmd(pb.AttachRequest(run=run))

    def abort(self):
        """Cancel the call and let grpcio's request thread finish."""
        self.call.cancel()
        self.send(_END)

    def close(self):
        """Half-close; the server then ends the call with OK."""
        self.send(_END)
        for extra in self.call:
            raise AssertionError("reply after close: %s" % extra)
        return self.call.code()


class Attach(VcpudTest):
    def attach(self, vm, **kw):
        """A stream on vCPU 0 of (vm); a refused `open` raises RpcError."""
        s = Stream(self.c, vm_id=vm, vcpu_id=0, **kw)
        self.assertEqual("opened", s.opened.WhichOneof("reply"), s.opened)
        self.addCleanup(s.abort)
        return s

    def exit_of(self, reply, kind):
        self.assertEqual("exit", reply.WhichOneof("reply"), str(reply))
        self.assertEqual(pb.ExitKind.Name(kind),
                         pb.ExitKind.Name(reply.exit.kind), str(reply))
        return reply.exit

    def test_io_guest_with_registers_on_every_exit(self):
        vm = self.guest_vm("io_in")
        s = self.attach(vm, regs_with_exit=True, special_regs_with_exit=True)
        answer = None
        for port, value, rip in ((0x20, 0xab, 0x1000), (0x22, 0xbeef, 0x1004),
                                 (0x24, 0xfeedface, 0x1008)):
            reply = s.run(io=answer)
            x = self.exit_of(reply, pb.EXIT_KIND_IO_IN)
            self.assertEqual(port, x.io.port)
            # Registers as KVM left them: RIP still at the waiting IN.
            self.assertEqual(rip, reply.exit_regs.rip)
            self.assertTrue(reply.HasField("exit_special_regs"))
            self.assertEqual(0, reply.exit_special_regs.cs.base)
            answer = [value]
        reply = s.run(io=answer)
        self.exit_of(reply, pb.EXIT_KIND_HLT)
        self.assertEqual(0xab, reply.exit_regs.rbx & 0xff)
        self.assertEqual(0xbeef, reply.exit_regs.rcx & 0xffff)
        self.assertEqual(0xfeedface, reply.exit_regs.rdx & 0xffffffff)
        self.assertEqual(S.OK, s.close())

    def test_refusals_are_replies_and_the_stream_goes_on(self):
        vm = self.guest_vm("in_echo")
        s = self.attach(vm)
        self.exit_of(s.run(), pb.EXIT_KIND_IO_IN)
        regs = s.cmd(pb.AttachRequest(get_regs=pb.Empty())).regs
        for reply in (s.cmd(pb.AttachRequest(set_regs=regs)),  # io-in waits
                      s.run(),                                 # no answer
                      s.run(io=[0x1234])):                     # too wide
            self.assertEqual("error", reply.WhichOneof("reply"), str(reply))
            self.assertIn(reply.error.code, (S.FAILED_PRECONDITION.value[0],
                                             S.INVALID_ARGUMENT.value[0]))
            self.assertLess(reply.error.core_errno, 0)
            self.assertTrue(reply.error.message)
        x = self.exit_of(s.run(io=[0x21]), pb.EXIT_KIND_IO_OUT)
        self.assertEqual(b"\x21", x.io.data)
        # Register writes land: RIP back at the IN runs it again.
        regs = s.cmd(pb.AttachRequest(get_regs=pb.Empty())).regs
        regs.rip = 0x1000
        self.assertEqual("ok", s.cmd(pb.AttachRequest(
            set_regs=regs)).WhichOneof("reply"))
        sregs = s.cmd(pb.AttachRequest(get_special_regs=pb.Empty()))
        self.assertEqual("ok", s.cmd(pb.AttachRequest(
            set_special_regs=sregs.special_regs)).WhichOneof("reply"))
        x = self.exit_of(s.run(), pb.EXIT_KIND_IO_IN)
        self.assertEqual(0x20, x.io.port)
        self.assertEqual(S.OK, s.close())

    def test_one_driver_at_a_time(self):
        vm = self.guest_vm("io_out")
        s = self.attach(vm)
        self.assertStatus(S.FAILED_PRECONDITION, self.c.Run,
                          pb.RunRequest(vm_id=vm, vcpu_id=0))
        with self.assertRaises(grpc.RpcError) as cm:
            self.attach(vm)  # the refusal ends the second stream
        self.assertEqual(S.FAILED_PRECONDITION, cm.exception.code())
        x = self.exit_of(s.run(), pb.EXIT_KIND_IO_OUT)
        self.assertEqual(0x10, x.io.port)
        self.assertEqual(S.OK, s.close())
        # Detached: unary Run goes on from where the stream left the guest.
        x = self.run_expect(vm, pb.EXIT_KIND_IO_OUT)
        self.assertEqual(0x12, x.io.port)

    def test_protocol_breaks_end_the_stream(self):
        vm = self.guest_vm("io_out")
        q = queue.Queue()
        q.put(pb.AttachRequest(run=pb.RunCommand()))  # no `open` first
        q.put(_END)
        call = self.c.Attach(iter(q.get, _END))
        with self.assertRaises(grpc.RpcError) as cm:
            next(call)
        self.assertIn(cm.exception.code(), (S.FAILED_PRECONDITION,
                                            S.INVALID_ARGUMENT))
        # The vCPU was never taken: unary Run still drives it.
        self.run_expect(vm, pb.EXIT_KIND_IO_OUT)

    def test_stream_cancelled_mid_run_frees_the_vcpu(self):
        vm = self.guest_vm("spin")
        s = self.attach(vm)
        s.send(pb.AttachRequest(run=pb.RunCommand()))
        self.wait_running(vm)
        s.call.cancel()
        # Once the server lets go, a new stream takes the vCPU over; the
        # CANCELED exit made for the departed caller is not handed on.
        s2 = self.retry_busy(self.attach, vm)
        x = self.exit_of(s2.run(timeout_ms=100), pb.EXIT_KIND_CANCELED)
        self.assertEqual(pb.CANCEL_REASON_TIMEOUT, x.cancel_reason)
        self.assertEqual(S.OK, s2.close())

    def test_cancel_and_time_limit(self):
        vm = self.guest_vm("spin")
        s = self.attach(vm)
        s.send(pb.AttachRequest(run=pb.RunCommand()))
        self.wait_running(vm)
        self.c.Cancel(pb.VcpuRef(vm_id=vm, vcpu_id=0))
        x = self.exit_of(next(s.call), pb.EXIT_KIND_CANCELED)
        self.assertEqual(pb.CANCEL_REASON_REQUESTED, x.cancel_reason)
        x = self.exit_of(s.run(timeout_ms=100), pb.EXIT_KIND_CANCELED)
        self.assertEqual(pb.CANCEL_REASON_TIMEOUT, x.cancel_reason)
        self.assertEqual(S.OK, s.close())

    def test_commands_sent_mid_run_are_served_in_order(self):
        # The server reads the next command once it has answered the
        # previous one: a command sent while the guest runs waits for the
        # run's exit, then gets its own reply.
        vm = self.guest_vm("spin")
        s = self.attach(vm)
        s.send(pb.AttachRequest(run=pb.RunCommand(timeout_ms=200)))
        self.wait_running(vm)
        s.send(pb.AttachRequest(get_regs=pb.Empty()))
        x = self.exit_of(next(s.call), pb.EXIT_KIND_CANCELED)
        self.assertEqual(pb.CANCEL_REASON_TIMEOUT, x.cancel_reason)
        self.assertEqual("regs", next(s.call).WhichOneof("reply"))
        self.assertEqual(S.OK, s.close())

    def test_vcpu_destroyed_mid_run_ends_the_stream(self):
        # The server ending the stream mid-run (here: the VM is destroyed
        # under it) stops the guest and tells the controller why.
        vm = self.guest_vm("spin")
        s = self.attach(vm)
        s.send(pb.AttachRequest(run=pb.RunCommand()))
        self.wait_running(vm)
        self.c.DestroyVm(pb.VmRef(vm_id=vm))
        with self.assertRaises(grpc.RpcError) as cm:
            next(s.call)
        self.assertEqual(S.NOT_FOUND, cm.exception.code())
        self.assertIn("destroyed", cm.exception.details())
        s.send(_END)


class StreamLimit(VcpudTest):
    """Every open Attach stream has a thread of its own until it ends: the
    server bounds them (VMs x vCPUs per VM, plus 16 being opened)."""

    server_args = ("--max-vms", "1", "--max-vcpus-per-vm", "2")

    exit_of = Attach.exit_of

    def test_streams_beyond_the_bound_are_resource_exhausted(self):
        held = []
        try:
            for _ in range(20):  # none of them opened: no vCPU needed
                q = queue.Queue()
                held.append((q, self.c.Attach(iter(q.get, _END))))
            # The server takes calls as they come: 18 keep a thread (1 x 2
            # + 16), the other 2 end at once.
            deadline = time.monotonic() + 60
            while (sum(call.done() for _, call in held) < 2
                   and time.monotonic() < deadline):
                time.sleep(0.05)
            time.sleep(0.5)  # none more
            ended = [call for _, call in held if call.done()]
            self.assertEqual(2, len(ended))
            for call in ended:
                self.assertEqual(S.RESOURCE_EXHAUSTED, call.code())
                self.assertIn("streams are open", call.details())
        finally:
            for q, call in held:
                call.cancel()
                q.put(_END)
        # Once they are gone the server takes streams again.
        vm = self.guest_vm("io_out")
        deadline = time.monotonic() + 60
        while True:
            try:
                s = Stream(self.c, vm_id=vm, vcpu_id=0)
                break
            except grpc.RpcError as e:
                if (e.code() != S.RESOURCE_EXHAUSTED
                        or time.monotonic() > deadline):
                    raise
                time.sleep(0.05)
        x = self.exit_of(s.run(), pb.EXIT_KIND_IO_OUT)
        self.assertEqual(0x10, x.io.port)
        self.assertEqual(S.OK, s.close())
