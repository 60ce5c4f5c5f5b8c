"""SIGTERM while controllers are still connected: exit status 0, and
never a hang, whatever the connections are doing."""

import threading
import time

import grpc

from api import pb
from test_attach import Stream
from testlib import CALL_TIMEOUT, VcpudTest

S = grpc.StatusCode
GRACE_MS = 500


class Shutdown(VcpudTest):
    server_args = ("--grace-ms", str(GRACE_MS))

    def stop_keeping_channels(self):
        t0 = time.monotonic()
        rc = self.server.stop(close_channels=False)
        self.assertEqual(0, rc, self.server.log())
        return time.monotonic() - t0

    def test_guests_running(self):
        # Three controllers on their own connections, each mid-Run.
        runs = []
        for _ in range(3):
            c = self.client()
            runs.append(self.start_spinning(self.guest_vm("spin", c=c), c=c))
        self.stop_keeping_channels()
        for run in runs:
            try:  # the cancelled guest's exit ...
                self.assertEqual(pb.EXIT_KIND_CANCELED,
                                 run.result(timeout=CALL_TIMEOUT).exit.kind)
            except grpc.RpcError as e:  # ... or cut off by the shutdown
                self.assertIn(e.code(), (S.UNAVAILABLE, S.CANCELLED))

    def test_streams_left_open(self):
        # A write stream whose client never half-closes and a read stream
        # whose client stopped reading: the two ways a peer can hold a call
        # open forever. The grace period must end both.
        vm = self.c.CreateVm(pb.CreateVmRequest()).vm_id
        self.c.AddMemoryRegion(pb.AddMemoryRegionRequest(
            vm_id=vm, region=pb.MemoryRegion(slot=0, size=64 << 20)))
        release = threading.Event()

        def stalled_writer():
            yield pb.WriteMemoryChunk(vm_id=vm, data=b"x")
            release.wait(2 * CALL_TIMEOUT)

        write = self.c.WriteMemory.future(stalled_writer())
        reader = self.c.ReadMemory(pb.ReadMemoryRequest(vm_id=vm,
                                                        length=64 << 20))
        next(reader)
        # The one chunk written is in RAM: the write stream is really open.
        deadline = time.monotonic() + CALL_TIMEOUT
        while self.read_memory(vm, 0, 1) != b"x":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        try:
            self.stop_keeping_channels()
        finally:
            release.set()
        with self.assertRaises(grpc.RpcError):
            write.result(timeout=CALL_TIMEOUT)
        with self.assertRaises(grpc.RpcError):
            for _ in reader:
                pass

    def test_idle_connection(self):
        vm = self.guest_vm("spin")
        self.run_expect(vm, pb.EXIT_KIND_CANCELED, timeout_ms=100)
        # The channel stays open and idle (see Server.stop): the server
        # must give up on it after its grace period, not wait forever.
        self.assertLess(self.stop_keeping_channels(), GRACE_MS / 1000 + 20)


class StreamsAtShutdown(VcpudTest):
    """An exit stream is ended at SIGTERM, not left to the grace period: its
    controller could otherwise answer the CANCELED exit with another run
    and keep the guest going until the grace period ends."""

    server_args = ("--grace-ms", "60000")

    def test_streams_end_at_once_with_unavailable(self):
        running = Stream(self.c, vm_id=self.guest_vm("spin"), vcpu_id=0)
        self.addCleanup(running.abort)
        running.send(pb.AttachRequest(run=pb.RunCommand()))
        idle = Stream(self.client(), vm_id=self.guest_vm("io_out"), vcpu_id=0)
        self.addCleanup(idle.abort)
        t0 = time.monotonic()
        rc = self.server.stop(close_channels=False)
        self.assertEqual(0, rc, self.server.log())
        self.assertLess(time.monotonic() - t0, 30,
                        "SIGTERM waited for the grace period")
        # The status names the shutdown, unless the connection's close
        # overtook it on its way out.
        for s in (running, idle):
            with self.assertRaises(grpc.RpcError) as cm:
                next(s.call)
            self.assertEqual(S.UNAVAILABLE, cm.exception.code())
            self.assertRegex(cm.exception.details(),
                             "shutting down|Socket closed")
