// io.test.js: real-mode guests driven through port-IO exits, each io-in
// answered inside the next Run (one round trip per exit).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const opts = { timeout: 300000 };

test('io_in guest runs to hlt with each IN answered in the next Run', opts, async () => {
  await h.withServer(async (api) => {
    const vm = await h.guestVm(api, 'io_in');
    const expected = [
      { port: 0x20, size: 1, answer: 0xabn },
      { port: 0x22, size: 2, answer: 0xbeefn },
      { port: 0x24, size: 4, answer: 0xfeedfacen },
    ];
    let extra = {};
    for (const e of expected) {
      const x = await h.runExpect(api, vm, 'IO_IN', extra);
      assert.equal(x.detail, 'io');
      assert.deepEqual([x.io.port, x.io.size, x.io.count], [e.port, e.size, 1]);
      extra = h.ioResult(e.answer);
    }
    await h.runExpect(api, vm, 'HLT', extra);
    const r = await api.GetRegs({ vm_id: vm, vcpu_id: 0 });
    assert.equal(h.u64(r.rbx) & 0xffn, 0xabn);
    assert.equal(h.u64(r.rcx) & 0xffffn, 0xbeefn);
    assert.equal(h.u64(r.rdx) & 0xffffffffn, 0xfeedfacen);
    // hlt is the guest's last byte and KVM leaves rip past it.
    assert.equal(h.u64(r.rip), BigInt(h.GUEST_LOAD + h.guest('io_in').length));
  });
});

test('io_out guest reports each OUT with little-endian data', opts, async () => {
  await h.withServer(async (api) => {
    const vm = await h.guestVm(api, 'io_out');
    const expected = [
      { port: 0x10, size: 1, data: [0x11] },
      { port: 0x12, size: 2, data: [0x33, 0x22] },
      { port: 0x14, size: 4, data: [0x77, 0x66, 0x55, 0x44] },
    ];
    for (const e of expected) {
      const x = await h.runExpect(api, vm, 'IO_OUT');
      assert.deepEqual([x.io.port, x.io.size, x.io.count], [e.port, e.size, 1]);
      assert.deepEqual([...x.io.data], e.data);
    }
    await h.runExpect(api, vm, 'HLT');
  });
});

test('string IO: rep outsb data arrives whole, rep insb takes one value per element', opts, async () => {
  await h.withServer(async (api) => {
    const vm = await h.guestVm(api, 'string_io');
    // KVM may split a string into any number of exits.
    let out = Buffer.alloc(0);
    while (out.length < 5) {
      const x = await h.runExpect(api, vm, 'IO_OUT');
      assert.equal(x.io.port, 0x30);
      assert.equal(x.io.data.length, x.io.count * x.io.size);
      out = Buffer.concat([out, x.io.data]);
    }
    assert.equal(out.toString('latin1'), 'hello');
    const values = [0xc1n, 0xc2n, 0xc3n, 0xc4n];
    let given = 0;
    let x = await h.runExpect(api, vm, 'IO_IN');
    while (x.kind === 'EXIT_KIND_IO_IN') {
      assert.equal(x.io.port, 0x31);
      assert.ok(given + x.io.count <= values.length, `guest asked for ${given + x.io.count} bytes`);
      const answer = values.slice(given, given + x.io.count);
      given += x.io.count;
      x = await h.run(api, vm, h.ioResult(...answer));
    }
    assert.equal(x.kind, 'EXIT_KIND_HLT');
    assert.equal(given, values.length);
    const mem = await api.readMemory(vm, 0x3000, 4);
    assert.deepEqual([...mem], values.map(Number));
  });
});
