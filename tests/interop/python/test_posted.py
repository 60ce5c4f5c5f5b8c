"""Posted writes: guest writes that do not stop the guest, delivered in
guest order with the next exit."""

import errno

import grpc

from api import pb
from testlib import VcpudTest

S = grpc.StatusCode
MMIO = 0xd0000000  # where the posted guests write; no RAM there
POSTED_MAX = 1024  # Exit.posted's bound (vcpud.options)


class Posted(VcpudTest):
    def post(self, vm, start, length, pio=False):
        self.c.AddPostedRange(pb.PostedRange(vm_id=vm, pio=pio, start=start,
                                             length=length))

    def test_batches_arrive_with_the_exit_after_them(self):
        vm = self.guest_vm("posted_mix", mode=pb.MODE_LONG)
        self.post(vm, MMIO, 0x1000)
        expected, answer = 0, None
        for _ in range(5):  # an IN after every tenth write
            x = self.run_expect(vm, pb.EXIT_KIND_IO_IN, io=answer)
            self.assertEqual(10, len(x.posted))
            for w in x.posted:
                self.assertEqual((False, MMIO, 4, expected),
                                 (w.pio, w.address, w.size, w.data))
                expected += 1
            answer = [0]
        x = self.run_expect(vm, pb.EXIT_KIND_IO_OUT, io=answer)
        self.assertEqual(0, len(x.posted))
        self.assertEqual(50, expected)

    def test_many_writes_over_several_exits_in_order(self):
        # 600 rounds of an MMIO write of the round number and an OUT of its
        # low byte: more than one exit can carry, none lost or reordered.
        vm = self.guest_vm("posted", mode=pb.MODE_LONG)
        self.post(vm, MMIO, 0x1000)
        self.post(vm, 0x80, 1, pio=True)
        seen, posted_exits = 0, 0
        while True:
            x = self.run_vcpu(vm)
            self.assertLessEqual(len(x.posted), POSTED_MAX)
            for w in x.posted:
                rnd, pio = divmod(seen, 2)
                want = ((True, 0x80, 1, rnd & 0xff) if pio
                        else (False, MMIO, 4, rnd))
                self.assertEqual(want, (w.pio, w.address, w.size, w.data),
                                 "posted write %d" % seen)
                seen += 1
            if x.kind != pb.EXIT_KIND_POSTED:
                break
            self.assertGreater(len(x.posted), 0, "a POSTED exit with none")
            posted_exits += 1
        self.assertEqual(pb.EXIT_KIND_IO_OUT, x.kind)
        self.assertEqual(0x10, x.io.port)
        self.assertEqual(1200, seen)
        self.assertGreater(posted_exits, 0)
        self.run_expect(vm, pb.EXIT_KIND_HLT)

    def test_range_rules(self):
        vm = self.guest_vm("hlt")  # RAM at [0, 2 MiB)
        self.post(vm, MMIO, 0x1000)
        rng = lambda start, length, pio=False: pb.PostedRange(
            vm_id=vm, pio=pio, start=start, length=length)
        add, remove = self.c.AddPostedRange, self.c.RemovePostedRange
        self.assertStatus(S.ALREADY_EXISTS, add, rng(MMIO + 0x800, 16),
                          errno_in=(errno.EEXIST,))
        for bad in (rng(0x1000, 16),               # over RAM
                    rng(0xe0000000, 0),            # empty
                    rng(0xe0000000, (1 << 20) + 1),  # over 1 MiB
                    rng(0xffff, 2, pio=True)):     # past the last port
            with self.subTest(bad=str(bad).replace("\n", " ")):
                self.assertStatus(S.INVALID_ARGUMENT, add, bad,
                                  errno_in=(errno.EINVAL,))
        self.assertStatus(S.NOT_FOUND, remove, rng(MMIO, 0x800),
                          errno_in=(errno.ENOENT,))
        # Ports and MMIO are separate spaces: the same number is fine.
        self.post(vm, MMIO & 0xffff, 1, pio=True)
        for i in range(14):  # 16 in all
            self.post(vm, 0x100 + i, 1, pio=True)
        self.assertStatus(S.RESOURCE_EXHAUSTED, add, rng(0x200, 1, pio=True))
        # Nor can RAM come over a posted range later.
        self.assertStatus(S.ALREADY_EXISTS, self.c.AddMemoryRegion,
                          pb.AddMemoryRegionRequest(
                              vm_id=vm, region=pb.MemoryRegion(
                                  slot=1, guest_phys_addr=MMIO,
                                  size=0x1000)),
                          errno_in=(errno.EEXIST,))
        remove(rng(MMIO, 0x1000))
        self.post(vm, MMIO + 0x800, 16)  # the space it held is free again
