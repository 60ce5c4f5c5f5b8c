// errors.test.js: bad requests get the status the contract's table names,
// with the core's errno in the vcpud-errno trailer (checked against the
// errno classes of include/vcpud/error.h by expectStatus), and leave the
// server and the VM usable.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const opts = { timeout: 300000 };
const region = (slot, gpa, size) => ({ slot, guest_phys_addr: String(gpa), size: String(size) });

test('unknown vm_id is NOT_FOUND (ENOENT) for every kind of call', opts, async () => {
  await h.withServer(async (api) => {
    const missing = 424242;
    for (const [name, req] of [
      ['GetVm', { vm_id: missing }],
      ['DestroyVm', { vm_id: missing }],
      ['AddMemoryRegion', { vm_id: missing, region: region(0, 0, 4096) }],
      ['CreateVcpu', { vm_id: missing, vcpu_id: 0 }],
      ['Run', { vm_id: missing, vcpu_id: 0 }],
    ]) {
      const err = await h.expectStatus(api[name](req), 'NOT_FOUND', /424242/);
      assert.equal(err.errno, h.E.ENOENT, name);
    }
    await h.expectStatus(api.readMemory(missing, 0, 16), 'NOT_FOUND');
    await h.expectStatus(api.writeMemory(missing, 0, Buffer.alloc(16)), 'NOT_FOUND');
    // A known VM with an unknown vCPU is NOT_FOUND too.
    const { vm_id } = await api.CreateVm({ max_vcpus: 2 });
    await h.expectStatus(api.GetRegs({ vm_id, vcpu_id: 1 }), 'NOT_FOUND');
  });
});

test('misaligned or malformed memory regions are INVALID_ARGUMENT, overlaps ALREADY_EXISTS', opts, async () => {
  await h.withServer(async (api) => {
    const { vm_id } = await api.CreateVm({});
    const misaligned = [region(0, 0x1001, 0x1000), region(0, 0x10000, 0x1234), region(32, 0, 0x1000)];
    for (const r of misaligned) {
      const err = await h.expectStatus(api.AddMemoryRegion({ vm_id, region: r }), 'INVALID_ARGUMENT');
      assert.equal(err.errno, h.E.EINVAL);
    }
    // Nothing was added by the refused calls.
    const detail = await api.GetVm({ vm_id });
    assert.equal(detail.regions.length, 0);
    await api.AddMemoryRegion({ vm_id, region: region(0, 0, 0x200000) });
    await h.expectStatus(api.AddMemoryRegion({ vm_id, region: region(1, 0x1000, 0x1000) }), 'ALREADY_EXISTS');
    await h.expectStatus(api.AddMemoryRegion({ vm_id, region: region(0, 0x400000, 0x1000) }), 'ALREADY_EXISTS');
    await h.expectStatus(api.readMemory(vm_id, 0, 0), 'INVALID_ARGUMENT', /length 0/);
  });
});

test('a second vCPU with the same id is ALREADY_EXISTS (EEXIST)', opts, async () => {
  await h.withServer(async (api) => {
    const { vm_id } = await api.CreateVm({ max_vcpus: 2 });
    await api.CreateVcpu({ vm_id, vcpu_id: 0 });
    const err = await h.expectStatus(api.CreateVcpu({ vm_id, vcpu_id: 0 }), 'ALREADY_EXISTS', /vCPU 0/);
    assert.equal(err.errno, h.E.EEXIST);
    // Past max_vcpus is a range error, not a clash.
    await h.expectStatus(api.CreateVcpu({ vm_id, vcpu_id: 2 }), 'INVALID_ARGUMENT');
    const detail = await api.GetVm({ vm_id });
    assert.deepEqual(detail.vcpu_ids, [0]);
  });
});

test('Run without the pending io-in result is FAILED_PRECONDITION, then the right answer works', opts, async () => {
  await h.withServer(async (api) => {
    const vm = await h.guestVm(api, 'in_echo');
    await h.runExpect(api, vm, 'IO_IN');
    await h.expectStatus(h.run(api, vm), 'FAILED_PRECONDITION', /io-in on port 0x20/);
    // An answer of the wrong kind, or one that does not fit, changes nothing.
    await h.expectStatus(h.run(api, vm, h.mmioResult(1)), 'FAILED_PRECONDITION');
    await h.expectStatus(h.run(api, vm, h.ioResult(0x1ff)), 'INVALID_ARGUMENT', /does not fit/);
    await h.expectStatus(h.run(api, vm, h.ioResult(1, 2)), 'INVALID_ARGUMENT');
    const x = await h.runExpect(api, vm, 'IO_OUT', h.ioResult(0xc3));
    assert.equal(h.ioValue(x), 0xc3n);
    // Now nothing waits for a result.
    await h.expectStatus(api.SetIoResult({ vm_id: vm, vcpu_id: 0, values: ['1'] }), 'FAILED_PRECONDITION');
  });
});

test('out-of-range fields are INVALID_ARGUMENT', opts, async () => {
  await h.withServer(async (api) => {
    const vm = await h.guestVm(api, 'hlt');
    await h.expectStatus(h.run(api, vm, { timeout_ms: '86400001' }), 'INVALID_ARGUMENT', /timeout_ms/);
    await h.expectStatus(api.InjectInterrupt({ vm_id: vm, vcpu_id: 0, vector: 31 }), 'INVALID_ARGUMENT');
    await h.expectStatus(api.CreateVm({ max_vcpus: 65 }), 'INVALID_ARGUMENT');
    await h.expectStatus(
      api.SetupMode({ vm_id: vm, vcpu_id: 0, mode: 'MODE_LONG', entry: '4096', stack: '32768', tables_addr: String(0x100010) }),
      'INVALID_ARGUMENT',
      /aligned/,
    );
    await h.expectStatus(api.Restore({ vm_id: vm, vcpu_id: 0, state: Buffer.from('not a snapshot') }), 'INVALID_ARGUMENT');
    // SetIrqLine needs an in-kernel irqchip, which this VM lacks.
    await h.expectStatus(api.SetIrqLine({ vm_id: vm, irq: 3, level: true }), 'FAILED_PRECONDITION');
    // The vCPU still runs after all that.
    await h.runExpect(api, vm, 'HLT');
  });
});
