// memory.test.js: guest memory through the two streaming RPCs, the part of
// the contract where a second gRPC stack most easily disagrees (message
// framing, flow control, chunk bounds).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');
const { CHUNK } = require('../lib/vcpud');

const opts = { timeout: 300000 };

// Deterministic bytes (xorshift) so a failure reproduces byte for byte.
function pattern(len, seed) {
  const buf = Buffer.alloc(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    buf[i] = x & 0xff;
  }
  return buf;
}

async function ramVm(api) {
  const { vm_id } = await api.CreateVm({});
  await api.AddMemoryRegion({ vm_id, region: { slot: 0, guest_phys_addr: '0', size: String(h.RAM_SIZE) } });
  return vm_id;
}

test('memory written in uneven out-of-order chunks reads back via the server stream', opts, async () => {
  const data = pattern(100000, 0x5eed);
  await h.withServer(async (api) => {
    const vm = await ramVm(api);
    const base = 0x10000;
    // Uneven sizes, sent last-first: each chunk must land at its own address.
    const sizes = [CHUNK, 5000, CHUNK, 100000 - 2 * CHUNK - 5000];
    const chunks = [];
    let off = 0;
    for (const size of sizes) {
      assert.ok(size > 0 && size <= CHUNK);
      chunks.push({ guest_phys_addr: base + off, data: data.subarray(off, off + size) });
      off += size;
    }
    const w = await api.writeChunks(vm, chunks.reverse());
    assert.equal(h.u64(w.bytes_written), BigInt(data.length));

    // An odd start and length: chunking must not assume page alignment.
    const start = base + 3;
    const got = await api.readChunks(vm, start, data.length - 3);
    assert.ok(got.length >= 4, `${got.length} chunks for ${data.length - 3} bytes`);
    let next = BigInt(start);
    for (const c of got) {
      assert.ok(c.data.length >= 1 && c.data.length <= CHUNK, `chunk of ${c.data.length} bytes`);
      assert.equal(h.u64(c.guest_phys_addr), next, 'chunks in address order, without gaps');
      next += BigInt(c.data.length);
    }
    const joined = Buffer.concat(got.map((c) => c.data));
    assert.ok(joined.equals(data.subarray(3)), 'read-back differs from what was written');
    // The bytes around the write stay zero.
    const edges = await api.readMemory(vm, base - 16, data.length + 32);
    assert.ok(edges.subarray(0, 16).equals(Buffer.alloc(16)));
    assert.ok(edges.subarray(16 + data.length).equals(Buffer.alloc(16)));
  });
});

test('a failing WriteMemory chunk ends the call; earlier chunks stay written', opts, async () => {
  await h.withServer(async (api) => {
    const vm = await ramVm(api);
    const good = pattern(4096, 7);
    const after = pattern(4096, 8);
    await h.expectStatus(
      api.writeChunks(vm, [
        { guest_phys_addr: 0x20000, data: good },
        { guest_phys_addr: h.RAM_SIZE - 8, data: Buffer.alloc(16, 0xee) }, // runs past RAM
        { guest_phys_addr: 0x30000, data: after },
      ]),
      'INVALID_ARGUMENT',
      /not backed by RAM/,
    );
    assert.ok((await api.readMemory(vm, 0x20000, 4096)).equals(good), 'chunk before the failure lost');
    assert.ok((await api.readMemory(vm, 0x30000, 4096)).equals(Buffer.alloc(4096)), 'chunk after the failure written');
    // The failing chunk is checked whole before any of it is written.
    assert.ok((await api.readMemory(vm, h.RAM_SIZE - 8, 8)).equals(Buffer.alloc(8)), 'failing chunk half written');

    // One byte over the chunk bound is refused as a whole message.
    await h.expectStatus(
      api.writeChunks(vm, [{ guest_phys_addr: 0x40000, data: Buffer.alloc(CHUNK + 1, 1) }]),
      'INVALID_ARGUMENT',
    );
    assert.ok((await api.readMemory(vm, 0x40000, 16)).equals(Buffer.alloc(16)));
  });
});

test('2 MiB of RAM copies between VMs exactly', opts, async () => {
  // Made before connecting: a long synchronous loop would stall keepalive
  // ping answers in the slow nested guest.
  const data = pattern(h.RAM_SIZE, 0xc0ffee);
  await h.withServer(async (api) => {
    const a = await ramVm(api);
    const b = await ramVm(api);
    await api.writeMemory(a, 0, data);
    const ram = await api.readMemory(a, 0, h.RAM_SIZE);
    await api.writeMemory(b, 0, ram);
    assert.ok((await api.readMemory(b, 0, h.RAM_SIZE)).equals(data));
  });
});
