// snapshot.test.js: vCPU state moved between VMs mid-computation must give
// the same outcome as never stopping.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const opts = { timeout: 300000 };

// The compute guest reports step N on port 0x50 and its result on 0x51.
async function runUntilStep(api, vm, step) {
  for (;;) {
    const x = await h.runExpect(api, vm, 'IO_OUT');
    assert.equal(x.io.port, 0x50, `unexpected OUT on port ${x.io.port} before step ${step}`);
    if (h.ioValue(x) === BigInt(step)) return;
  }
}

async function finishCompute(api, vm) {
  let result = null;
  for (;;) {
    const x = await h.runExpect(api, vm, 'IO_OUT');
    if (x.io.port === 0x51) {
      assert.equal(x.io.size, 4);
      result = h.ioValue(x);
      break;
    }
    assert.equal(x.io.port, 0x50);
  }
  await h.runExpect(api, vm, 'HLT');
  return {
    result,
    regs: await api.GetRegs({ vm_id: vm, vcpu_id: 0 }),
    steps: await api.readMemory(vm, 0x3000, 80), // one dword per step
  };
}

// A bare VM: RAM and one vCPU, nothing loaded; Restore and the copied RAM
// must be all it needs.
async function bareVm(api) {
  const { vm_id } = await api.CreateVm({});
  await api.AddMemoryRegion({ vm_id, region: { slot: 0, guest_phys_addr: '0', size: String(h.RAM_SIZE) } });
  await api.CreateVcpu({ vm_id, vcpu_id: 0 });
  return vm_id;
}

test('snapshot at step 9 restored into a new VM finishes like the original', opts, async () => {
  await h.withServer(async (api) => {
    const ref = await h.guestVm(api, 'compute');
    const want = await finishCompute(api, ref);

    const vm = await h.guestVm(api, 'compute');
    await runUntilStep(api, vm, 9);
    const { state } = await api.Snapshot({ vm_id: vm, vcpu_id: 0 });
    assert.ok(Buffer.isBuffer(state) && state.length > 0, 'empty snapshot');
    assert.ok(state.length <= 1 << 20, `snapshot of ${state.length} bytes is over the 1 MiB bound`);

    const clone = await bareVm(api);
    const ram = await api.readMemory(vm, 0, h.RAM_SIZE);
    assert.equal(ram.length, h.RAM_SIZE);
    await api.writeMemory(clone, 0, ram);
    await api.Restore({ vm_id: clone, vcpu_id: 0, state });

    // The clone's registers are the original's at the moment of the snapshot.
    assert.deepEqual(
      await api.GetRegs({ vm_id: clone, vcpu_id: 0 }),
      await api.GetRegs({ vm_id: vm, vcpu_id: 0 }),
    );

    const orig = await finishCompute(api, vm);
    const copy = await finishCompute(api, clone);
    assert.equal(copy.result, orig.result);
    assert.equal(orig.result, want.result);
    assert.deepEqual(copy.regs, orig.regs);
    assert.deepEqual(orig.regs, want.regs);
    assert.ok(copy.steps.equals(orig.steps) && orig.steps.equals(want.steps), 'step records differ');

    // A damaged snapshot is refused whole.
    const bad = Buffer.from(state);
    bad[Math.floor(bad.length / 3)] ^= 1;
    await h.expectStatus(api.Restore({ vm_id: clone, vcpu_id: 0, state: bad }), 'INVALID_ARGUMENT', /snapshot/);
    assert.deepEqual(await api.GetRegs({ vm_id: clone, vcpu_id: 0 }), copy.regs);
  });
});

test('snapshot with an io-in pending: the restored guest sees the answer given to the clone', opts, async () => {
  await h.withServer(async (api) => {
    const vm = await h.guestVm(api, 'in_echo');
    const x = await h.runExpect(api, vm, 'IO_IN');
    assert.equal(x.io.port, 0x20);
    const { state } = await api.Snapshot({ vm_id: vm, vcpu_id: 0 });
    const clone = await bareVm(api);
    await api.writeMemory(clone, 0, await api.readMemory(vm, 0, h.RAM_SIZE));
    await api.Restore({ vm_id: clone, vcpu_id: 0, state });
    // The pending exit travels with the snapshot: a plain Run must refuse.
    await h.expectStatus(h.run(api, clone), 'FAILED_PRECONDITION', /port 0x20/);
    const out = await h.runExpect(api, clone, 'IO_OUT', h.ioResult(0x5a));
    assert.equal(out.io.port, 0x21);
    assert.equal(h.ioValue(out), 0x5an);
    assert.equal((await api.readMemory(clone, 0x3000, 1))[0], 0x5a);
    // The original is untouched by what the clone was told.
    const o = await h.runExpect(api, vm, 'IO_OUT', h.ioResult(0x33));
    assert.equal(h.ioValue(o), 0x33n);
  });
});
