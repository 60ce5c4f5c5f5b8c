"""Bad requests get the status codes vcpud.proto documents, each with the
core's errno in the `vcpud-errno` trailer."""

import errno

import grpc

from api import pb
from testlib import VcpudTest

S = grpc.StatusCode
PRECONDITION_ERRNOS = (errno.EBUSY, errno.EPROTO, errno.ENOTSUP)  # error.h


class StatusCodes(VcpudTest):
    def test_documented_codes_and_errno_trailer(self):
        c = self.c
        unknown = 4242
        for call, req in ((c.GetVm, pb.VmRef(vm_id=unknown)),
                          (c.DestroyVm, pb.VmRef(vm_id=unknown)),
                          (c.CreateVcpu, pb.VcpuRef(vm_id=unknown)),
                          (c.Run, pb.RunRequest(vm_id=unknown))):
            self.assertStatus(S.NOT_FOUND, call, req, needle=str(unknown),
                              errno_in=(errno.ENOENT,))

        vm = c.CreateVm(pb.CreateVmRequest(max_vcpus=2)).vm_id
        for gpa, size in ((0x1001, 0x1000), (0x1000, 0x1800)):
            self.assertStatus(S.INVALID_ARGUMENT, c.AddMemoryRegion,
                              pb.AddMemoryRegionRequest(
                                  vm_id=vm, region=pb.MemoryRegion(
                                      slot=0, guest_phys_addr=gpa,
                                      size=size)),
                              errno_in=(errno.EINVAL,))

        c.CreateVcpu(pb.VcpuRef(vm_id=vm, vcpu_id=1))
        self.assertStatus(S.ALREADY_EXISTS, c.CreateVcpu,
                          pb.VcpuRef(vm_id=vm, vcpu_id=1),
                          errno_in=(errno.EEXIST,))

        vm = self.guest_vm("in_echo")
        self.run_expect(vm, pb.EXIT_KIND_IO_IN)
        # The message names the access so a controller author can fix it.
        self.assertStatus(S.FAILED_PRECONDITION, c.Run,
                          pb.RunRequest(vm_id=vm, vcpu_id=0),
                          needle="0x20", errno_in=PRECONDITION_ERRNOS)
        # Refused without side effects: the answer still goes through.
        x = self.run_expect(vm, pb.EXIT_KIND_IO_OUT, io=[0x99])
        self.assertEqual(b"\x99", x.io.data)

    def test_wrong_results(self):
        c = self.c
        vm = self.guest_vm("in_echo")
        nothing = pb.RunRequest(vm_id=vm, vcpu_id=0)
        nothing.io.values.append(1)
        self.assertStatus(S.FAILED_PRECONDITION, c.Run, nothing,
                          errno_in=PRECONDITION_ERRNOS)
        self.run_expect(vm, pb.EXIT_KIND_IO_IN)
        self.assertStatus(S.FAILED_PRECONDITION, c.Run,
                          pb.RunRequest(vm_id=vm, vcpu_id=0,
                                        mmio=pb.MmioResult(value=1)),
                          errno_in=PRECONDITION_ERRNOS)
        self.assertStatus(S.INVALID_ARGUMENT, c.SetIoResult,
                          pb.SetIoResultRequest(vm_id=vm, vcpu_id=0,
                                                values=[0x1ff]),
                          needle="does not fit")
        # One value more than the contract's bound of 4096.
        self.assertStatus(S.INVALID_ARGUMENT, c.SetIoResult,
                          pb.SetIoResultRequest(vm_id=vm, vcpu_id=0,
                                                values=[0] * 4097))
        self.run_expect(vm, pb.EXIT_KIND_IO_OUT, io=[7])

    def test_fields_out_of_documented_range(self):
        c = self.c
        vm = self.guest_vm("hlt")
        bad = [
            (c.CreateVm, pb.CreateVmRequest(max_vcpus=65)),
            (c.CreateVcpu, pb.VcpuRef(vm_id=vm, vcpu_id=2)),  # max_vcpus 2
            (c.AddMemoryRegion, pb.AddMemoryRegionRequest(
                vm_id=vm, region=pb.MemoryRegion(
                    slot=32, guest_phys_addr=0x400000, size=0x1000))),
            (c.Run, pb.RunRequest(vm_id=vm, vcpu_id=0,
                                  timeout_ms=86400001)),
            (c.InjectInterrupt, pb.InjectInterruptRequest(
                vm_id=vm, vcpu_id=0, vector=31)),
            (c.InjectInterrupt, pb.InjectInterruptRequest(
                vm_id=vm, vcpu_id=0, vector=256)),
            (c.SetupMode, pb.SetupModeRequest(vm_id=vm, vcpu_id=0,
                                              mode=pb.MODE_UNSPECIFIED)),
            (c.SetupMode, pb.SetupModeRequest(
                vm_id=vm, vcpu_id=0, mode=pb.MODE_LONG, entry=0x1000,
                stack=0x8000, tables_addr=0x100800)),
        ]
        for call, req in bad:
            with self.subTest(req=str(req).replace("\n", " ")):
                self.assertStatus(S.INVALID_ARGUMENT, call, req,
                                  errno_in=(errno.EINVAL, errno.ERANGE))
        # A 2-bit field given 4 must not be silently truncated to 0.
        s = c.GetSpecialRegs(pb.VcpuRef(vm_id=vm, vcpu_id=0))
        s.cs.dpl = 4
        self.assertStatus(S.INVALID_ARGUMENT, c.SetSpecialRegs,
                          pb.SetSpecialRegsRequest(vm_id=vm, vcpu_id=0,
                                                   sregs=s))

    def test_overlap_and_slots(self):
        c = self.c
        vm = self.guest_vm("hlt")  # slot 0: [0, 2 MiB)
        region = lambda slot, gpa, size: pb.AddMemoryRegionRequest(
            vm_id=vm, region=pb.MemoryRegion(slot=slot, guest_phys_addr=gpa,
                                             size=size))
        self.assertStatus(S.ALREADY_EXISTS, c.AddMemoryRegion,
                          region(1, 0x1ff000, 0x2000),
                          errno_in=(errno.EEXIST,))
        self.assertStatus(S.ALREADY_EXISTS, c.AddMemoryRegion,
                          region(0, 0x400000, 0x1000),
                          errno_in=(errno.EEXIST,))
        self.assertStatus(S.NOT_FOUND, c.RemoveMemoryRegion,
                          pb.RemoveMemoryRegionRequest(vm_id=vm, slot=5),
                          errno_in=(errno.ENOENT,))
        self.assertStatus(S.FAILED_PRECONDITION, c.SetIrqLine,
                          pb.SetIrqLineRequest(vm_id=vm, irq=4, level=True),
                          needle="irqchip", errno_in=PRECONDITION_ERRNOS)

    def test_limits_are_resource_exhausted(self):
        # Inside the contract's 1..64 but above --max-vcpus-per-vm (8).
        self.assertStatus(S.RESOURCE_EXHAUSTED, self.c.CreateVm,
                          pb.CreateVmRequest(max_vcpus=9),
                          errno_in=(errno.ENOSPC,))
        # The default per-VM RAM limit (4G) is below 8 GiB.
        vm = self.c.CreateVm(pb.CreateVmRequest()).vm_id
        self.assertStatus(S.RESOURCE_EXHAUSTED, self.c.AddMemoryRegion,
                          pb.AddMemoryRegionRequest(
                              vm_id=vm, region=pb.MemoryRegion(
                                  slot=0, guest_phys_addr=1 << 32,
                                  size=8 << 30)),
                          errno_in=(errno.ENOSPC, errno.ENOMEM))


class WireLevel(VcpudTest):
    """Requests built by hand, as a client of another proto version or a
    broken one would send them."""

    def setUp(self):
        super().setUp()
        self.ch = self.server.channel()

    def raw(self, method, payload):
        call = self.ch.unary_unary("/vcpud.v1.Vcpud/" + method)
        return call(payload, timeout=60)

    def test_unknown_fields_are_ignored(self):
        vm = self.c.CreateVm(pb.CreateVmRequest(max_vcpus=3)).vm_id
        # Field 99, varint: what a newer client might add.
        extra = pb.VmRef(vm_id=vm).SerializeToString() + b"\x98\x06\x01"
        detail = pb.VmDetail.FromString(self.raw("GetVm", extra))
        self.assertEqual((vm, 3), (detail.info.vm_id, detail.info.max_vcpus))

    def test_garbage_and_missing_messages(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.raw("GetVm", b"\xff\xff\xff")
        self.assertEqual(S.INVALID_ARGUMENT, cm.exception.code())
        # A unary method called with no message at all.
        call = self.ch.stream_unary("/vcpud.v1.Vcpud/GetVm")
        with self.assertRaises(grpc.RpcError) as cm:
            call(iter(()), timeout=60)
        self.assertEqual(S.INVALID_ARGUMENT, cm.exception.code())

    def test_over_max_message_is_resource_exhausted(self):
        # gRPC's own receive limit (--max-message, default 4M) speaks before
        # vcpud decodes anything, so this status has no vcpud-errno.
        vm = self.c.CreateVm(pb.CreateVmRequest()).vm_id
        self.c.CreateVcpu(pb.VcpuRef(vm_id=vm, vcpu_id=0))
        with self.assertRaises(grpc.RpcError) as cm:
            self.c.Restore(pb.RestoreRequest(vm_id=vm, vcpu_id=0,
                                             state=bytes(5 << 20)))
        self.assertEqual(S.RESOURCE_EXHAUSTED, cm.exception.code())
        # The connection survives it.
        self.assertEqual(vm, self.c.GetVm(pb.VmRef(vm_id=vm)).info.vm_id)

    def test_unknown_method_is_unimplemented(self):
        # A deadline far below CALL_TIMEOUT: an unanswered call (what the
        # C core does with unregistered methods unless the server asks for
        # them) fails this test quickly instead of stalling the suite.
        for path in ("/vcpud.v1.Vcpud/NoSuchMethod", "/other.Service/Run"):
            with self.subTest(path=path):
                with self.assertRaises(grpc.RpcError) as cm:
                    self.ch.unary_unary(path)(b"", timeout=5)
                self.assertEqual(S.UNIMPLEMENTED, cm.exception.code())
        # The connection is still good for known methods.
        self.assertEqual(0, len(self.c.ListVms(pb.ListVmsRequest()).vms))
