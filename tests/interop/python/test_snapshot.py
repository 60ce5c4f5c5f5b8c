"""Snapshots taken through Python and restored into other VMs."""

import errno

import grpc

from api import pb
from testlib import RAM_SIZE, VcpudTest, io_value


def compute_result():
    """What the `compute` guest reports on port 0x51, worked out here
    independently of any VM: 20 steps of imul/add/xor on ebx."""
    ebx = 0x1234
    for ecx in range(20):
        ebx = (ebx * 33 + ecx) & 0xffffffff
        ebx ^= ecx & 0xff  # xor bl, cl touches the low byte only
    return ebx


class Snapshots(VcpudTest):
    def finish_compute(self, vm):
        """Run (vm) to its hlt; returns (result, regs, step memory)."""
        while True:
            x = self.run_expect(vm, pb.EXIT_KIND_IO_OUT)
            if x.io.port == 0x51:
                result = io_value(x)
                break
            self.assertEqual(0x50, x.io.port)
        self.run_expect(vm, pb.EXIT_KIND_HLT)
        return result, self.regs(vm), self.read_memory(vm, 0x3000, 80)

    def clone_into_new_vm(self, src_vm, state):
        """A new VM with (src_vm)'s RAM, copied through the two memory
        streams, and (state) restored into its fresh vCPU."""
        vm = self.c.CreateVm(pb.CreateVmRequest(max_vcpus=2)).vm_id
        self.c.AddMemoryRegion(pb.AddMemoryRegionRequest(
            vm_id=vm, region=pb.MemoryRegion(slot=0, size=RAM_SIZE)))
        ram = self.read_memory(src_vm, 0, RAM_SIZE)
        self.assertEqual(RAM_SIZE, self.write_memory(vm, 0, ram))
        self.c.CreateVcpu(pb.VcpuRef(vm_id=vm, vcpu_id=0))
        self.c.Restore(pb.RestoreRequest(vm_id=vm, vcpu_id=0, state=state))
        return vm

    def test_snapshot_mid_computation_moves_to_new_vm(self):
        vm = self.guest_vm("compute")
        while True:  # stop where the progress OUT says step 9
            x = self.run_expect(vm, pb.EXIT_KIND_IO_OUT)
            self.assertEqual(0x50, x.io.port)
            if io_value(x) == 9:
                break
        state = self.c.Snapshot(pb.VcpuRef(vm_id=vm, vcpu_id=0)).state
        self.assertGreater(len(state), 0)
        self.assertLessEqual(len(state), 1 << 20)  # the documented bound
        clone = self.clone_into_new_vm(vm, state)

        # The clone continues with step 10: the OUT of step 9 is finished,
        # never repeated.
        x = self.run_expect(clone, pb.EXIT_KIND_IO_OUT)
        self.assertEqual((0x50, 10), (x.io.port, io_value(x)))
        x = self.run_expect(vm, pb.EXIT_KIND_IO_OUT)
        self.assertEqual((0x50, 10), (x.io.port, io_value(x)))

        want = self.finish_compute(vm)
        got = self.finish_compute(clone)
        self.assertEqual(compute_result(), want[0])
        self.assertEqual(want[0], got[0])
        self.assertEqual(want[1], got[1], "registers differ after the move")
        self.assertEqual(want[2], got[2], "step records differ")

    def test_snapshot_with_io_in_pending(self):
        vm = self.guest_vm("in_echo")
        self.run_expect(vm, pb.EXIT_KIND_IO_IN)
        state = self.c.Snapshot(pb.VcpuRef(vm_id=vm, vcpu_id=0)).state
        clone = self.clone_into_new_vm(vm, state)
        # The restored vCPU still waits for the IN: a Run without the
        # answer is refused, one with it is seen by the guest exactly.
        self.assertStatus(grpc.StatusCode.FAILED_PRECONDITION, self.c.Run,
                          pb.RunRequest(vm_id=clone, vcpu_id=0))
        x = self.run_expect(clone, pb.EXIT_KIND_IO_OUT, io=[0x5a])
        self.assertEqual((0x21, 0x5a), (x.io.port, io_value(x)))
        self.assertEqual(b"\x5a", self.read_memory(clone, 0x3000, 1))

    def test_damaged_snapshot_is_refused_whole(self):
        vm = self.guest_vm("compute")
        for _ in range(3):
            self.run_expect(vm, pb.EXIT_KIND_IO_OUT)
        ref = pb.VcpuRef(vm_id=vm, vcpu_id=0)
        regs_before = self.c.GetRegs(ref)
        state = bytearray(self.c.Snapshot(ref).state)
        state[len(state) // 3] ^= 1
        self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, self.c.Restore,
                          pb.RestoreRequest(vm_id=vm, vcpu_id=0,
                                            state=bytes(state)),
                          needle="snapshot", errno_in=(errno.EBADMSG,
                                                       errno.EINVAL))
        self.assertEqual(regs_before, self.c.GetRegs(ref),
                         "a refused restore changed the vCPU")
        self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, self.c.Restore,
                          pb.RestoreRequest(vm_id=vm, vcpu_id=0,
                                            state=b"\0" * ((1 << 20) + 1)))
