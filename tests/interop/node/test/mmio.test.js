// mmio.test.js: a long-mode guest whose loads and stores at 0xd0000000 hit
// no RAM, so each becomes an MMIO exit; the 8-byte values need all 64 bits.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const opts = { timeout: 300000 };
const BASE = 0xd0000000n;

test('mmio guest: writes reported exactly, reads answered in the next Run', opts, async () => {
  await h.withServer(async (api) => {
    const vm = await h.guestVm(api, 'mmio', 'MODE_LONG');
    const writes = [
      { off: 0n, size: 1, value: 0x11n },
      { off: 2n, size: 2, value: 0x2233n },
      { off: 4n, size: 4, value: 0x44556677n },
      { off: 8n, size: 8, value: 0x8899aabbccddeeffn },
    ];
    for (const w of writes) {
      const x = await h.runExpect(api, vm, 'MMIO_WRITE');
      assert.equal(x.detail, 'mmio');
      assert.equal(h.u64(x.mmio.address), BASE + w.off);
      assert.equal(x.mmio.size, w.size);
      assert.equal(h.u64(x.mmio.data), w.value);
    }
    // Top bits set on purpose: a double or a signed int64 would garble them.
    const reads = [
      { off: 0n, size: 1, answer: 0xa1n },
      { off: 2n, size: 2, answer: 0xb2c3n },
      { off: 4n, size: 4, answer: 0xd4e5f607n },
      { off: 8n, size: 8, answer: 0xfedcba9876543211n },
    ];
    let extra = {};
    for (const r of reads) {
      const x = await h.runExpect(api, vm, 'MMIO_READ', extra);
      assert.equal(h.u64(x.mmio.address), BASE + r.off);
      assert.equal(x.mmio.size, r.size);
      extra = h.mmioResult(r.answer);
    }
    await h.runExpect(api, vm, 'HLT', extra);
    const regs = await api.GetRegs({ vm_id: vm, vcpu_id: 0 });
    assert.equal(h.u64(regs.r8) & 0xffn, 0xa1n);
    assert.equal(h.u64(regs.r9) & 0xffffn, 0xb2c3n);
    assert.equal(h.u64(regs.r10), 0xd4e5f607n); // a 32-bit load zero-extends
    assert.equal(h.u64(regs.r11), 0xfedcba9876543211n);
    assert.equal(regs.r11, '18364758544493064721'); // the wire value, as proto-loader gives it
  });
});

test('SetRegs round-trips full 64-bit values', opts, async () => {
  await h.withServer(async (api) => {
    const vm = await h.guestVm(api, 'hlt', 'MODE_LONG');
    const before = await api.GetRegs({ vm_id: vm, vcpu_id: 0 });
    const want = { ...before, rax: String(0xffffffffffffffffn), r15: String(0x8000000000000001n) };
    await api.SetRegs({ vm_id: vm, vcpu_id: 0, regs: want });
    const got = await api.GetRegs({ vm_id: vm, vcpu_id: 0 });
    assert.deepEqual(got, want);
  });
});
