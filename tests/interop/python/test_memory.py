"""Guest memory through the two streaming RPCs, and their bounds."""

import errno
import os

import grpc

from api import pb
from testlib import CHUNK, VcpudTest

MIB = 1 << 20


class Memory(VcpudTest):
    def vm_with_ram(self, size=2 * MIB, addr=0):
        vm = self.c.CreateVm(pb.CreateVmRequest()).vm_id
        self.c.AddMemoryRegion(pb.AddMemoryRegionRequest(
            vm_id=vm, region=pb.MemoryRegion(slot=0, guest_phys_addr=addr,
                                             size=size)))
        return vm

    def test_write_and_read_in_chunks(self):
        vm = self.vm_with_ram()
        data = os.urandom(5 * CHUNK + 1234)  # several chunks, a partial last
        addr = 0x10000 + 7                   # an unaligned start, on purpose
        self.assertEqual(len(data), self.write_memory(vm, addr, data))
        # read_memory checks chunk size and order; the read is wider than
        # one chunk and starts mid-page.
        self.assertEqual(data, self.read_memory(vm, addr, len(data)))
        # The neighbours were not touched: new RAM reads as zeros.
        self.assertEqual(bytes(16), self.read_memory(vm, addr - 16, 16))
        self.assertEqual(bytes(16), self.read_memory(vm, addr + len(data), 16))

    def test_chunks_name_their_own_addresses(self):
        vm = self.vm_with_ram()
        # Out of order and with gaps: each chunk lands where it says.
        chunks = [(0x30000, b"C" * CHUNK), (0x1000, b"A" * 100),
                  (0x20000, b"B" * 3000)]
        resp = self.c.WriteMemory(iter(
            pb.WriteMemoryChunk(vm_id=vm, guest_phys_addr=a, data=d)
            for a, d in chunks))
        self.assertEqual(sum(len(d) for _, d in chunks), resp.bytes_written)
        for a, d in chunks:
            self.assertEqual(d, self.read_memory(vm, a, len(d)))

    def test_whole_ram_round_trip(self):
        vm = self.vm_with_ram()
        data = os.urandom(2 * MIB)
        self.write_memory(vm, 0, data)
        self.assertEqual(data, self.read_memory(vm, 0, 2 * MIB))

    def test_oversized_chunk_fails_after_earlier_chunks(self):
        vm = self.vm_with_ram()
        chunks = [pb.WriteMemoryChunk(vm_id=vm, guest_phys_addr=0x1000,
                                      data=b"\x5a" * 64),
                  pb.WriteMemoryChunk(vm_id=vm, guest_phys_addr=0x2000,
                                      data=b"\x77" * (CHUNK + 1))]
        self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT,
                          self.c.WriteMemory, iter(chunks))
        # "earlier chunks stay written"; the failing one wrote nothing.
        self.assertEqual(b"\x5a" * 64, self.read_memory(vm, 0x1000, 64))
        self.assertEqual(bytes(CHUNK + 1),
                         self.read_memory(vm, 0x2000, CHUNK + 1))

    def test_write_outside_ram_and_unknown_vm(self):
        vm = self.vm_with_ram(size=0x10000)
        # Wholly outside RAM, and straddling its end.
        for addr, size in ((0x20000, 1), (0xfff0, 32)):
            chunk = pb.WriteMemoryChunk(vm_id=vm, guest_phys_addr=addr,
                                        data=b"x" * size)
            self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT,
                              self.c.WriteMemory, iter([chunk]))
        chunk = pb.WriteMemoryChunk(vm_id=vm + 100, guest_phys_addr=0,
                                    data=b"x")
        self.assertStatus(grpc.StatusCode.NOT_FOUND, self.c.WriteMemory,
                          iter([chunk]), errno_in=(errno.ENOENT,))

    def test_read_bounds(self):
        vm = self.vm_with_ram(size=0x10000)
        read = lambda req: list(self.c.ReadMemory(req))
        for length in (0, 64 * MIB + 1):
            self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, read,
                              pb.ReadMemoryRequest(vm_id=vm, length=length),
                              errno_in=(errno.EINVAL,))
        self.assertStatus(grpc.StatusCode.NOT_FOUND, read,
                          pb.ReadMemoryRequest(vm_id=vm + 100, length=1),
                          errno_in=(errno.ENOENT,))
        # Past the end of RAM: an error status, never a silent short read.
        past_end = pb.ReadMemoryRequest(vm_id=vm, guest_phys_addr=0x8000,
                                        length=0x10000)
        self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, read, past_end)

    def test_empty_write_stream(self):
        self.vm_with_ram()
        self.assertEqual(0, self.c.WriteMemory(iter(())).bytes_written)
