"""Guests run to completion with every exit handled from Python."""

from api import pb
from testlib import VcpudTest, io_value


class GuestExits(VcpudTest):
    def test_io_in_answered_in_run(self):
        vm = self.guest_vm("io_in")
        answers = {0x20: (1, 0xab), 0x22: (2, 0xbeef), 0x24: (4, 0xfeedface)}
        answer = None
        for port in (0x20, 0x22, 0x24):
            x = self.run_expect(vm, pb.EXIT_KIND_IO_IN, io=answer)
            size, value = answers[port]
            self.assertEqual((port, size, 1), (x.io.port, x.io.size,
                                               x.io.count))
            self.assertEqual(b"", x.io.data, "an io-in exit carries no data")
            answer = [value]  # goes with the next Run: one round trip
        self.run_expect(vm, pb.EXIT_KIND_HLT, io=answer)
        r = self.regs(vm)
        self.assertEqual(0xab, r.rbx & 0xff)
        self.assertEqual(0xbeef, r.rcx & 0xffff)
        self.assertEqual(0xfeedface, r.rdx & 0xffffffff)
        self.c.DestroyVm(pb.VmRef(vm_id=vm))

    def test_io_out_each_size_little_endian(self):
        vm = self.guest_vm("io_out")
        for port, size, value in ((0x10, 1, 0x11), (0x12, 2, 0x2233),
                                  (0x14, 4, 0x44556677)):
            x = self.run_expect(vm, pb.EXIT_KIND_IO_OUT)
            self.assertEqual((port, size, 1), (x.io.port, x.io.size,
                                               x.io.count))
            self.assertEqual(value.to_bytes(size, "little"), x.io.data)
        self.run_expect(vm, pb.EXIT_KIND_HLT)

    def test_mmio_in_long_mode(self):
        vm = self.guest_vm("mmio", mode=pb.MODE_LONG)
        base = 0xd0000000
        for off, size, value in ((0, 1, 0x11), (2, 2, 0x2233),
                                 (4, 4, 0x44556677),
                                 (8, 8, 0x8899aabbccddeeff)):
            x = self.run_expect(vm, pb.EXIT_KIND_MMIO_WRITE)
            self.assertEqual((base + off, size, value),
                             (x.mmio.address, x.mmio.size, x.mmio.data))
        reads = ((0, 1, 0xa1), (2, 2, 0xb2c3), (4, 4, 0xd4e5f607),
                 (8, 8, 0x0123456789abcdef))
        answer = None
        for off, size, value in reads:
            x = self.run_expect(vm, pb.EXIT_KIND_MMIO_READ, mmio=answer)
            self.assertEqual((base + off, size),
                             (x.mmio.address, x.mmio.size))
            answer = value
        self.run_expect(vm, pb.EXIT_KIND_HLT, mmio=answer)
        r = self.regs(vm)
        self.assertEqual(0xa1, r.r8 & 0xff)
        self.assertEqual(0xb2c3, r.r9 & 0xffff)
        self.assertEqual(0xd4e5f607, r.r10 & 0xffffffff)
        self.assertEqual(0x0123456789abcdef, r.r11)
        # The guest really ran in long mode: LMA in EFER, paging on.
        s = self.c.GetSpecialRegs(pb.VcpuRef(vm_id=vm, vcpu_id=0))
        self.assertTrue(s.efer & (1 << 10), "EFER.LMA clear: %#x" % s.efer)
        self.assertTrue(s.cr0 & (1 << 31), "CR0.PG clear: %#x" % s.cr0)
        self.assertTrue(s.cs.l, "CS is not a 64-bit segment")

    def test_string_io_every_element(self):
        vm = self.guest_vm("string_io")
        out = b""
        while len(out) < 5:  # KVM may split a string into several exits
            x = self.run_expect(vm, pb.EXIT_KIND_IO_OUT)
            self.assertEqual((0x30, 1), (x.io.port, x.io.size))
            self.assertEqual(x.io.count * x.io.size, len(x.io.data))
            out += x.io.data
        self.assertEqual(b"hello", out)
        feed = [0x61, 0x62, 0x63, 0x64]
        given = 0
        x = self.run_expect(vm, pb.EXIT_KIND_IO_IN)
        while x.kind == pb.EXIT_KIND_IO_IN:
            self.assertEqual((0x31, 1), (x.io.port, x.io.size))
            self.assertLessEqual(given + x.io.count, len(feed))
            # rep insb takes one value per element of this exit
            values = feed[given:given + x.io.count]
            given += x.io.count
            x = self.run_vcpu(vm, io=values)
        self.assertEqual(pb.EXIT_KIND_HLT, x.kind, str(x))
        self.assertEqual(bytes(feed), self.read_memory(vm, 0x3000, 4))

    def test_protected_and_long_mode_guests(self):
        vm = self.guest_vm("prot32", mode=pb.MODE_PROTECTED)
        x = self.run_expect(vm, pb.EXIT_KIND_IO_OUT)
        self.assertEqual(0x12345678, io_value(x))
        self.run_expect(vm, pb.EXIT_KIND_HLT)
        r = self.regs(vm)
        self.assertEqual(0x12345678, r.rbx & 0xffffffff)
        self.assertEqual(0x12345678, r.rcx & 0xffffffff)
        self.assertEqual(0x12345678.to_bytes(4, "little"),
                         self.read_memory(vm, 0x100000, 4))

        vm = self.guest_vm("long64", mode=pb.MODE_LONG)
        x = self.run_expect(vm, pb.EXIT_KIND_IO_OUT)
        self.assertEqual(0x9abcdef0, io_value(x))
        self.run_expect(vm, pb.EXIT_KIND_HLT)
        r = self.regs(vm)
        self.assertEqual(0x123456789abcdef0, r.rax)
        self.assertEqual(0x0fedcba987654321, r.rbx)
        self.assertEqual((0x123456789abcdef0 + 0x0fedcba987654321)
                         & (2**64 - 1), r.rcx)

    def test_triple_fault_is_shutdown(self):
        vm = self.guest_vm("triple_fault", mode=pb.MODE_LONG)
        self.run_expect(vm, pb.EXIT_KIND_SHUTDOWN)

    def test_interrupt_and_nmi(self):
        vm = self.guest_vm("irq")
        ref = pb.VcpuRef(vm_id=vm, vcpu_id=0)
        x = self.run_expect(vm, pb.EXIT_KIND_IO_OUT)
        self.assertEqual(0x40, x.io.port, "the guest's ready signal")
        self.run_expect(vm, pb.EXIT_KIND_HLT)
        self.c.InjectInterrupt(pb.InjectInterruptRequest(vm_id=vm, vcpu_id=0,
                                                         vector=0x40))
        x = self.run_expect(vm, pb.EXIT_KIND_IO_OUT)
        self.assertEqual((0x41, 0x40), (x.io.port, io_value(x)))
        self.run_expect(vm, pb.EXIT_KIND_HLT)
        self.c.InjectNmi(ref)
        x = self.run_expect(vm, pb.EXIT_KIND_IO_OUT)
        self.assertEqual((0x41, 0x02), (x.io.port, io_value(x)))

    def test_results_by_their_own_rpcs(self):
        vm = self.guest_vm("in_echo")
        self.run_expect(vm, pb.EXIT_KIND_IO_IN)
        self.c.SetIoResult(pb.SetIoResultRequest(vm_id=vm, vcpu_id=0,
                                                 values=[0x3c]))
        x = self.run_expect(vm, pb.EXIT_KIND_IO_OUT)
        self.assertEqual((0x21, 0x3c), (x.io.port, io_value(x)))
        self.assertEqual(b"\x3c", self.read_memory(vm, 0x3000, 1))

        vm = self.guest_vm("mmio", mode=pb.MODE_LONG)
        for _ in range(4):
            self.run_expect(vm, pb.EXIT_KIND_MMIO_WRITE)
        self.run_expect(vm, pb.EXIT_KIND_MMIO_READ)
        self.c.SetMmioResult(pb.SetMmioResultRequest(vm_id=vm, vcpu_id=0,
                                                     value=0x42))
        self.run_expect(vm, pb.EXIT_KIND_MMIO_READ)
        self.assertEqual(0x42, self.regs(vm).r8 & 0xff)

    def test_registers_round_trip(self):
        vm = self.guest_vm("hlt")
        ref = pb.VcpuRef(vm_id=vm, vcpu_id=0)
        want = self.regs(vm)
        # Every field, with values that need all 64 bits on the wire.
        for i, f in enumerate(pb.Regs.DESCRIPTOR.fields):
            if f.name not in ("rip", "rflags"):
                setattr(want, f.name, 0xfedcba9876543210 ^ (i * 0x1111))
        want.rflags = 0x2 | 0x40  # bit 1 is fixed; ZF as a marker
        self.c.SetRegs(pb.SetRegsRequest(vm_id=vm, vcpu_id=0, regs=want))
        self.assertEqual(want, self.c.GetRegs(ref))

        s = self.c.GetSpecialRegs(ref)
        s.cr8 = 0  # nothing else changes: a write back must be the identity
        self.c.SetSpecialRegs(pb.SetSpecialRegsRequest(vm_id=vm, vcpu_id=0,
                                                       sregs=s))
        self.assertEqual(s, self.c.GetSpecialRegs(ref))
