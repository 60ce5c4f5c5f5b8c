// posted.test.js: posted writes – guest writes to a posted port or MMIO
// range do not stop the guest; they come back in guest order with the next
// exit (Exit.posted), over unary Run and over the Attach stream alike,
// with POSTED exits when the server's buffer of 1024 fills.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');
const { AttachStream } = require('../lib/attach');

const opts = { timeout: 300000 };
const MMIO = 0xd0000000;
const POSTED_MAX = 1024;

const range = (vm_id, pio, start, length) => ({ vm_id, pio, start: String(start), length: String(length) });

test('posted MMIO writes over unary Run: each IO_IN carries the 10 writes before it, in order', opts, async () => {
  await h.withServer(async (api) => {
    const vm = await h.guestVm(api, 'posted_mix', 'MODE_LONG');
    await api.AddPostedRange(range(vm, false, MMIO, 0x1000));
    let next = 0;
    let extra = {};
    for (let batch = 0; batch < 5; batch++) {
      const x = await h.runExpect(api, vm, 'IO_IN', extra);
      assert.equal(x.io.port, 0x20);
      assert.equal(x.posted.length, 10, `batch ${batch}: ${x.posted.length} posted writes`);
      for (const w of x.posted) {
        assert.equal(w.pio, false);
        assert.equal(h.u64(w.address), BigInt(MMIO));
        assert.equal(w.size, 4);
        assert.equal(h.u64(w.data), BigInt(next), `posted write ${next} out of order`);
        next++;
      }
      extra = h.ioResult(0);
    }
    const out = await h.runExpect(api, vm, 'IO_OUT', extra);
    assert.equal(out.io.port, 0x10);
    assert.equal(out.posted.length, 0, 'writes delivered twice');
    assert.equal(next, 50);
    await h.runExpect(api, vm, 'HLT');
    await api.RemovePostedRange(range(vm, false, MMIO, 0x1000));
  });
});

test('a removed posted range exits again: the first write is an MMIO_WRITE exit', opts, async () => {
  await h.withServer(async (api) => {
    const vm = await h.guestVm(api, 'posted_mix', 'MODE_LONG');
    await api.AddPostedRange(range(vm, false, MMIO, 0x1000));
    await api.RemovePostedRange(range(vm, false, MMIO, 0x1000));
    const x = await h.runExpect(api, vm, 'MMIO_WRITE');
    assert.equal(x.posted.length, 0);
    assert.equal(h.u64(x.mmio.address), BigInt(MMIO));
    assert.equal(h.u64(x.mmio.data), 0n);
    // Posted again, the remaining nine writes of the batch arrive with the IN.
    await api.AddPostedRange(range(vm, false, MMIO, 0x1000));
    const y = await h.runExpect(api, vm, 'IO_IN');
    assert.deepEqual(
      y.posted.map((w) => Number(w.data)),
      [1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
  });
});

test('posted writes over the stream: 1200 MMIO/port writes in order across POSTED exits', opts, async () => {
  await h.withServer(async (api) => {
    const vm = await h.guestVm(api, 'posted', 'MODE_LONG');
    await api.AddPostedRange(range(vm, false, MMIO, 0x1000));
    await api.AddPostedRange(range(vm, true, 0x80, 1));
    const s = new AttachStream(api, 240000);
    await s.open(vm);
    let seen = 0;
    let postedExits = 0;
    let r;
    for (;;) {
      r = await s.run();
      assert.equal(r.reply, 'exit', JSON.stringify(r));
      const { exit } = r;
      assert.ok(exit.posted.length <= POSTED_MAX, `${exit.posted.length} posted writes in one exit`);
      for (const w of exit.posted) {
        const round = Math.floor(seen / 2);
        if (seen % 2 === 0) {
          assert.equal(w.pio, false, `write ${seen}`);
          assert.equal(h.u64(w.address), BigInt(MMIO), `write ${seen}`);
          assert.equal(w.size, 4, `write ${seen}`);
          assert.equal(h.u64(w.data), BigInt(round), `write ${seen}: MMIO of round ${round}`);
        } else {
          assert.equal(w.pio, true, `write ${seen}`);
          assert.equal(h.u64(w.address), 0x80n, `write ${seen}`);
          assert.equal(w.size, 1, `write ${seen}`);
          assert.equal(h.u64(w.data), BigInt(round & 0xff), `write ${seen}: OUT of round ${round}`);
        }
        seen++;
      }
      if (exit.kind !== 'EXIT_KIND_POSTED') break;
      // Only a full buffer makes a POSTED exit.
      assert.ok(exit.posted.length > 0, 'a POSTED exit without posted writes');
      postedExits++;
      assert.ok(postedExits <= 10, 'too many POSTED exits');
    }
    assert.equal(r.exit.kind, 'EXIT_KIND_IO_OUT', JSON.stringify(r.exit.kind));
    assert.equal(r.exit.io.port, 0x10);
    assert.equal(h.ioValue(r.exit), BigInt(599 & 0xff));
    assert.equal(seen, 1200);
    assert.ok(postedExits >= 1, '1200 writes fit no buffer of 1024: expected a POSTED exit');
    await s.runExpect('HLT');
    assert.equal((await s.close()).code, h.grpc.status.OK);
  });
});

test('posted range errors: overlap, MMIO over RAM, bad ranges, unknown removal, 16 per VM', opts, async () => {
  await h.withServer(async (api) => {
    const vm = await h.guestVm(api, 'hlt');
    await api.AddPostedRange(range(vm, false, MMIO, 0x1000));
    let err = await h.expectStatus(api.AddPostedRange(range(vm, false, MMIO + 0x800, 16)), 'ALREADY_EXISTS', /overlaps/);
    assert.equal(err.errno, h.E.EEXIST);
    await h.expectStatus(api.AddPostedRange(range(vm, false, MMIO - 8, 16)), 'ALREADY_EXISTS');
    // MMIO over guest RAM (0 .. 2 MiB), also partly.
    err = await h.expectStatus(api.AddPostedRange(range(vm, false, 0x1000, 16)), 'INVALID_ARGUMENT', /RAM/);
    assert.equal(err.errno, h.E.EINVAL);
    await h.expectStatus(api.AddPostedRange(range(vm, false, h.RAM_SIZE - 8, 16)), 'INVALID_ARGUMENT', /RAM/);
    // Empty, over 1 MiB, ports past 0xffff.
    await h.expectStatus(api.AddPostedRange(range(vm, false, 0xe0000000, 0)), 'INVALID_ARGUMENT');
    await h.expectStatus(api.AddPostedRange(range(vm, false, 0xe0000000, 0x100001)), 'INVALID_ARGUMENT');
    await h.expectStatus(api.AddPostedRange(range(vm, true, 0xfff0, 0x20)), 'INVALID_ARGUMENT');
    // Removal must name a range exactly as added, port or MMIO included.
    err = await h.expectStatus(api.RemovePostedRange(range(vm, false, 0xe0000000, 16)), 'NOT_FOUND');
    assert.equal(err.errno, h.E.ENOENT);
    await h.expectStatus(api.RemovePostedRange(range(vm, false, MMIO, 0x800)), 'NOT_FOUND');
    await h.expectStatus(api.RemovePostedRange(range(vm, true, MMIO, 0x1000)), 'NOT_FOUND');
    // Unknown VM.
    await h.expectStatus(api.AddPostedRange(range(424242, true, 0x80, 1)), 'NOT_FOUND', /424242/);
    await h.expectStatus(api.RemovePostedRange(range(424242, true, 0x80, 1)), 'NOT_FOUND', /424242/);
    // Up to 16 ranges per VM: 15 more, then the 17th is refused.
    for (let i = 0; i < 15; i++) await api.AddPostedRange(range(vm, true, 0x100 + i * 4, 4));
    await h.expectStatus(api.AddPostedRange(range(vm, true, 0x200, 1)), 'RESOURCE_EXHAUSTED');
    // Removing one makes room again; the removed one is gone for good.
    await api.RemovePostedRange(range(vm, true, 0x100, 4));
    await h.expectStatus(api.RemovePostedRange(range(vm, true, 0x100, 4)), 'NOT_FOUND');
    await api.AddPostedRange(range(vm, true, 0x200, 1));
    // None of it disturbed the vCPU.
    await h.runExpect(api, vm, 'HLT');
  });
});

// The contract: posted writes are the VM's (KVM keeps one ring per VM), so in
// a VM with several running vCPUs any of their exits may carry them – but
// each write arrives exactly once. vCPU 1 posts one OUT and spins while
// vCPU 0 halts: the write must be in exactly one of the two exits.
test(
  'a posted write of one vCPU arrives exactly once, with some exit of the VM',
  opts,
  async () => {
    await h.withServer(async (api) => {
      const vm = await h.guestVm(api, 'hlt');
      // mov al, 0x42; out 0x80, al; mov [0x3000], al; jmp $  (16-bit)
      await api.writeMemory(vm, 0x2000, Buffer.from([0xb0, 0x42, 0xe6, 0x80, 0xa2, 0x00, 0x30, 0xeb, 0xfe]));
      await api.CreateVcpu({ vm_id: vm, vcpu_id: 1 });
      await api.SetupMode({ vm_id: vm, vcpu_id: 1, mode: 'MODE_REAL', entry: String(0x2000), stack: String(0x7000) });
      await api.AddPostedRange(range(vm, true, 0x80, 1));
      const other = api.startRun({ vm_id: vm, vcpu_id: 1 });
      let own;
      let theirs;
      try {
        // vCPU 1 has posted its OUT once the flag after it is set.
        const until = Date.now() + 60000;
        while ((await api.readMemory(vm, 0x3000, 1))[0] !== 0x42) {
          assert.ok(Date.now() < until, 'vCPU 1 never reached its spin loop');
          await h.sleep(5);
        }
        own = (await api.Run({ vm_id: vm, vcpu_id: 0 })).exit;
      } finally {
        await api.Cancel({ vm_id: vm, vcpu_id: 1 });
        theirs = (await other.promise).exit;
      }
      assert.equal(own.kind, 'EXIT_KIND_HLT');
      assert.equal(theirs.kind, 'EXIT_KIND_CANCELED');
      assert.deepEqual(
        [...own.posted, ...theirs.posted].map((w) => [w.pio, Number(w.address), Number(w.data)]),
        [[true, 0x80, 0x42]],
        'the posted write was lost or delivered twice',
      );
    });
  },
);

// Posted MMIO ranges stay off guest RAM both ways: AddPostedRange over RAM
// is INVALID_ARGUMENT, AddMemoryRegion over a posted range ALREADY_EXISTS.
test(
  'guest RAM cannot be added over a posted MMIO range',
  opts,
  async () => {
    await h.withServer(async (api) => {
      const { vm_id } = await api.CreateVm({});
      await api.AddPostedRange(range(vm_id, false, 0x400000, 0x1000));
      await assert.rejects(
        api.AddMemoryRegion({
          vm_id,
          region: { slot: 0, guest_phys_addr: String(0x400000), size: String(0x1000) },
        }),
        (err) => [h.grpc.status.ALREADY_EXISTS, h.grpc.status.INVALID_ARGUMENT].includes(err.code),
      );
    });
  },
);
