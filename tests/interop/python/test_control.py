"""Control of running guests from other threads, clients and deadlines."""

import errno
import threading
import time

import grpc

from api import pb
from testlib import CALL_TIMEOUT, VcpudTest

S = grpc.StatusCode


class Control(VcpudTest):
    def test_cancel_spinning_guest_from_another_thread(self):
        vm = self.guest_vm("spin")
        run = self.start_spinning(vm)
        # One driver at a time.
        self.assertStatus(S.FAILED_PRECONDITION, self.c.Run,
                          pb.RunRequest(vm_id=vm, vcpu_id=0),
                          needle="another call", errno_in=(errno.EBUSY,))
        # Cancel from a thread of its own, on a connection of its own.
        other = self.client()
        t = threading.Thread(target=other.Cancel,
                             args=(pb.VcpuRef(vm_id=vm, vcpu_id=0),))
        t.start()
        t.join(CALL_TIMEOUT)
        x = run.result(timeout=CALL_TIMEOUT).exit
        self.assertEqual(pb.EXIT_KIND_CANCELED, x.kind)
        self.assertEqual(pb.CANCEL_REASON_REQUESTED, x.cancel_reason)
        # The guest can go on after a cancel: rip still in the spin loop.
        self.assertEqual(0x1000, self.regs(vm).rip)

    def test_run_timeout_is_canceled_timeout(self):
        vm = self.guest_vm("spin")
        t0 = time.monotonic()
        x = self.run_expect(vm, pb.EXIT_KIND_CANCELED, timeout_ms=200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.2)
        self.assertEqual("cancel_reason", x.WhichOneof("detail"))
        self.assertEqual(pb.CANCEL_REASON_TIMEOUT, x.cancel_reason)

        # With an in-kernel irqchip hlt sleeps in KVM; the limit ends it.
        vm = self.guest_vm("hlt", irqchip=True)
        x = self.run_expect(vm, pb.EXIT_KIND_CANCELED, timeout_ms=100)
        self.assertEqual(pb.CANCEL_REASON_TIMEOUT, x.cancel_reason)

    def test_cancel_while_idle_is_kept_for_next_run(self):
        vm = self.guest_vm("spin")
        self.c.Cancel(pb.VcpuRef(vm_id=vm, vcpu_id=0))
        # Without the kept cancel this Run would spin to its timeout.
        x = self.run_expect(vm, pb.EXIT_KIND_CANCELED, timeout_ms=30000)
        self.assertEqual(pb.CANCEL_REASON_REQUESTED, x.cancel_reason)
        # Used up: the next Run spins until its own limit.
        x = self.run_expect(vm, pb.EXIT_KIND_CANCELED, timeout_ms=100)
        self.assertEqual(pb.CANCEL_REASON_TIMEOUT, x.cancel_reason)

    def test_caller_going_away_cancels_guest(self):
        vm = self.guest_vm("spin")
        # A client-side cancel, then a client-side deadline: both reach the
        # server as a cancelled call and must stop the guest.
        run = self.start_spinning(vm)
        self.assertTrue(run.cancel())
        x = self.retry_busy(self.run_vcpu, vm, timeout_ms=100)
        # The CANCELED exit nobody received is not kept for this Run.
        self.assertEqual(pb.CANCEL_REASON_TIMEOUT, x.cancel_reason)

        with self.assertRaises(grpc.RpcError) as cm:
            self.c.Run(pb.RunRequest(vm_id=vm, vcpu_id=0), timeout=0.5)
        self.assertEqual(S.DEADLINE_EXCEEDED, cm.exception.code())
        x = self.retry_busy(self.run_vcpu, vm, timeout_ms=100)
        self.assertEqual(pb.CANCEL_REASON_TIMEOUT, x.cancel_reason)

    def test_destroy_vm_while_running(self):
        vm = self.guest_vm("spin")
        run = self.start_spinning(vm)
        self.c.DestroyVm(pb.VmRef(vm_id=vm))
        # Answered promptly either way: the CANCELED exit, or NOT_FOUND if
        # the VM went first.
        try:
            self.assertEqual(pb.EXIT_KIND_CANCELED, run.result().exit.kind)
        except grpc.RpcError as e:
            self.assertEqual(S.NOT_FOUND, e.code())
        self.assertStatus(S.NOT_FOUND, self.c.Run,
                          pb.RunRequest(vm_id=vm, vcpu_id=0))

    def test_run_waits_for_short_calls(self):
        # A monitor polling registers on its own connection while the
        # controller runs: a Run that meets a GetRegs waits for it instead
        # of failing as if another Run held the vCPU.
        vm = self.guest_vm("spin")
        monitor, stop, errors = self.client(), threading.Event(), []

        def poll():
            while not stop.is_set():
                try:
                    monitor.GetRegs(pb.VcpuRef(vm_id=vm, vcpu_id=0))
                except grpc.RpcError as e:  # busy while the guest runs
                    if e.code() != S.FAILED_PRECONDITION:
                        errors.append(e)

        t = threading.Thread(target=poll)
        t.start()
        try:
            for _ in range(100):
                x = self.run_expect(vm, pb.EXIT_KIND_CANCELED, timeout_ms=1)
                self.assertEqual(pb.CANCEL_REASON_TIMEOUT, x.cancel_reason)
        finally:
            stop.set()
            t.join(CALL_TIMEOUT)
        self.assertEqual([], errors)

    def test_controllers_in_parallel(self):
        # Four guests driven at once from four threads over one channel:
        # HTTP/2 streams multiplexed onto one connection, one vCPU thread
        # each in the server.
        vms = [self.guest_vm("compute") for _ in range(4)]
        results, errors = {}, []

        def drive(vm):
            try:
                while True:
                    x = self.run_vcpu(vm)
                    if x.kind != pb.EXIT_KIND_IO_OUT:
                        errors.append("vm %d: %s" % (vm, x))
                        return
                    if x.io.port == 0x51:
                        results[vm] = x.io.data
                        return
            except grpc.RpcError as e:
                errors.append("vm %d: %s" % (vm, e))

        threads = [threading.Thread(target=drive, args=(vm,)) for vm in vms]
        for t in threads:
            t.start()
        for t in threads:
            t.join(4 * CALL_TIMEOUT)
        self.assertEqual([], errors)
        self.assertEqual(4, len(results))
        self.assertEqual(1, len(set(results.values())), results)
