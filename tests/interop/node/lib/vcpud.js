// vcpud.js: a thin promise-based client over the contract, loaded at run
// time from the .proto so the suite tests the contract as written, not a
// generated copy of it.
'use strict';

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO = path.resolve(__dirname, '../../../../proto/vcpud/v1/vcpud.proto');

// keepCase: field names as in the .proto (and the C client). longs: String
// because uint64 values such as 0x8899aabbccddeeff do not fit a JS number;
// u64() turns them into BigInt for exact comparison. oneofs: the set field
// of a oneof is named in its own property (exit.detail === 'io').
const packageDefinition = protoLoader.loadSync(PROTO, {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const { Vcpud } = grpc.loadPackageDefinition(packageDefinition).vcpud.v1;

// Exits cost milliseconds in the nested QEMU guest and calls several: a
// deadline that only catches a hang.
const DEADLINE_MS = 60000;
// The contract's bound for a memory chunk, each way.
const CHUNK = 32768;

const deadline = (ms = DEADLINE_MS) => ({ deadline: Date.now() + ms });

// A uint64 field (decimal string with longs: String) as a BigInt.
const u64 = (s) => BigInt(s);

class Client {
  constructor(address) {
    this.grpc = new Vcpud(address, grpc.credentials.createInsecure());
    // Every unary method as api.Name(request) -> Promise<response>.
    for (const [name, def] of Object.entries(Vcpud.service)) {
      if (def.requestStream || def.responseStream) continue;
      this[name] = (req = {}, ms) =>
        new Promise((resolve, reject) => {
          this.grpc[name](req, deadline(ms), (err, res) => (err ? reject(err) : resolve(res)));
        });
    }
  }

  // A Run the caller can abandon: cancel() resets the HTTP/2 stream, which
  // the contract says cancels the guest.
  startRun(req) {
    let call;
    const promise = new Promise((resolve, reject) => {
      call = this.grpc.Run(req, deadline(), (err, res) => (err ? reject(err) : resolve(res)));
    });
    return { promise, cancel: () => call.cancel() };
  }

  close() {
    this.grpc.close();
  }

  // Client stream; `chunks` is a list of {guest_phys_addr, data} so a test
  // chooses the split. Resolves to WriteMemoryResponse.
  writeChunks(vm_id, chunks) {
    return new Promise((resolve, reject) => {
      const call = this.grpc.WriteMemory(deadline(), (err, res) => (err ? reject(err) : resolve(res)));
      for (const c of chunks) {
        call.write({ vm_id, guest_phys_addr: String(c.guest_phys_addr), data: c.data });
      }
      call.end();
    });
  }

  writeMemory(vm_id, addr, data, chunkSize = CHUNK) {
    const chunks = [];
    for (let off = 0; off < data.length; off += chunkSize) {
      chunks.push({ guest_phys_addr: BigInt(addr) + BigInt(off), data: data.subarray(off, off + chunkSize) });
    }
    return this.writeChunks(vm_id, chunks);
  }

  // Server stream; resolves to the chunks as received.
  readChunks(vm_id, addr, length) {
    return new Promise((resolve, reject) => {
      const chunks = [];
      const call = this.grpc.ReadMemory(
        { vm_id, guest_phys_addr: String(addr), length: String(length) },
        deadline(),
      );
      // grpc-js orders 'end' and 'status' as it likes: finish on both.
      let ended = false;
      let ok = false;
      const done = () => ended && ok && resolve(chunks);
      call.on('data', (c) => chunks.push(c));
      call.on('error', reject);
      call.on('end', () => {
        ended = true;
        done();
      });
      call.on('status', (st) => {
        ok = st.code === grpc.status.OK;
        done();
      });
    });
  }

  async readMemory(vm_id, addr, length) {
    const chunks = await this.readChunks(vm_id, addr, length);
    return Buffer.concat(chunks.map((c) => c.data));
  }
}

module.exports = { Client, grpc, u64, CHUNK, DEADLINE_MS };
