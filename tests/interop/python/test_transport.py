"""Other ways in: TCP with a port the server picks, and tenants by token."""

import errno
import os

import grpc

from api import pb
from testlib import VcpudTest, io_value

S = grpc.StatusCode


class Tcp(VcpudTest):
    transport = "tcp"

    def test_port_zero_and_a_guest(self):
        host, port = self.server.address.rsplit(":", 1)
        self.assertEqual("127.0.0.1", host)
        self.assertNotEqual(0, int(port), "the log must name the real port")
        self.assertEqual("kvm", self.server.backend)
        vm = self.guest_vm("io_out")
        x = self.run_expect(vm, pb.EXIT_KIND_IO_OUT)
        self.assertEqual((0x10, 0x11), (x.io.port, io_value(x)))
        listed = [v.vm_id for v in self.c.ListVms(pb.ListVmsRequest()).vms]
        self.assertEqual([vm], listed)
        self.c.DestroyVm(pb.VmRef(vm_id=vm))
        self.assertEqual([], list(self.c.ListVms(pb.ListVmsRequest()).vms))


TOKENS = {"alice": "a" * 24, "bob": "b" * 24}


class Tenants(VcpudTest):
    def setUp(self):
        # Written before the server starts; it reads the file once.
        self.token_file = "/tmp/vcpud-py-tokens-%d" % os.getpid()
        with open(self.token_file, "w") as f:
            for tenant, token in TOKENS.items():
                f.write("%s %s\n" % (token, tenant))
        self.addCleanup(os.unlink, self.token_file)
        self.server_args = ("--token-file", self.token_file)
        super().setUp()

    def md(self, tenant):
        return [("authorization", "Bearer " + TOKENS[tenant])]

    def test_tenants_see_only_their_vms(self):
        c = self.c
        a = c.CreateVm(pb.CreateVmRequest(), metadata=self.md("alice")).vm_id
        b = c.CreateVm(pb.CreateVmRequest(), metadata=self.md("bob")).vm_id
        self.assertEqual([a], [v.vm_id for v in c.ListVms(
            pb.ListVmsRequest(), metadata=self.md("alice")).vms])
        self.assertEqual([b], [v.vm_id for v in c.ListVms(
            pb.ListVmsRequest(), metadata=self.md("bob")).vms])
        # Another tenant's VM does not exist, for every kind of call.
        bob = lambda call: lambda req: call(req, metadata=self.md("bob"))
        self.assertStatus(S.NOT_FOUND, bob(c.GetVm), pb.VmRef(vm_id=a),
                          errno_in=(errno.ENOENT,))
        self.assertStatus(S.NOT_FOUND, bob(c.DestroyVm), pb.VmRef(vm_id=a))
        self.assertStatus(S.NOT_FOUND, bob(c.WriteMemory),
                          iter([pb.WriteMemoryChunk(vm_id=a, data=b"x")]))
        self.assertStatus(S.NOT_FOUND, lambda r: list(bob(c.ReadMemory)(r)),
                          pb.ReadMemoryRequest(vm_id=a, length=1))
        c.GetVm(pb.VmRef(vm_id=a), metadata=self.md("alice"))  # still there

    def test_list_in_pages_of_ones_own_vms(self):
        alice = lambda call, req: call(req, metadata=self.md("alice"))
        mine = []
        for i in range(5):  # bob's VMs in between: pages skip them
            mine.append(alice(self.c.CreateVm, pb.CreateVmRequest()).vm_id)
            if i % 2 == 0:
                self.c.CreateVm(pb.CreateVmRequest(), metadata=self.md("bob"))
        pages, after = [], 0
        while True:
            r = alice(self.c.ListVms, pb.ListVmsRequest(after_vm_id=after,
                                                        limit=2))
            pages.append([v.vm_id for v in r.vms])
            if not r.next_after_vm_id:
                break
            self.assertEqual(pages[-1][-1], r.next_after_vm_id)
            after = r.next_after_vm_id
        self.assertEqual([mine[0:2], mine[2:4], mine[4:]], pages)
        # Without a limit, one page; past the last VM, an empty one.
        r = alice(self.c.ListVms, pb.ListVmsRequest())
        self.assertEqual((mine, 0), ([v.vm_id for v in r.vms],
                                     r.next_after_vm_id))
        r = alice(self.c.ListVms, pb.ListVmsRequest(after_vm_id=mine[-1]))
        self.assertEqual(([], 0), (list(r.vms), r.next_after_vm_id))
        self.assertStatus(S.INVALID_ARGUMENT,
                          lambda r: alice(self.c.ListVms, r),
                          pb.ListVmsRequest(limit=1025), "limit",
                          errno_in=(errno.EINVAL,))

    def test_missing_or_unknown_token(self):
        for md in ([], [("authorization", "Bearer " + "c" * 24)],
                   [("authorization", TOKENS["alice"])]):
            with self.subTest(metadata=md):
                self.assertStatus(S.UNAUTHENTICATED,
                                  lambda r: self.c.ListVms(r, metadata=md),
                                  pb.ListVmsRequest())
        # Streams are checked too, not only unary calls.
        self.assertStatus(S.UNAUTHENTICATED, self.c.WriteMemory,
                          iter([pb.WriteMemoryChunk(vm_id=1, data=b"x")]))
