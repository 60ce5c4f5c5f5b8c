// harness.js: what every test needs around the client: a private server,
// a guest VM set up the way the C integration tests set theirs up, exits
// checked by kind, and errors checked against the contract's status table.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const { Client, grpc, u64 } = require('./vcpud');
const { guest, loadGuests } = require('./guests');
const { startServer } = require('./server');

const GUEST_LOAD = 0x1000;
const RAM_SIZE = 0x200000;
const STACK = 0x8000;
const TABLES = 0x100000;

// Runs fn(api, srv) against a fresh vcpud, then stops it with SIGTERM: a
// clean shutdown (exit 0, unix socket removed, as the README promises) is
// part of every test. A failure inside fn wins over a failed shutdown.
async function withServer(fn, { transport = 'unix', args = [] } = {}) {
  loadGuests();
  const srv = await startServer(transport, args);
  const api = new Client(srv.address);
  let failure = null;
  try {
    await fn(api, srv);
  } catch (err) {
    failure = err;
  }
  api.close();
  let code;
  try {
    code = await srv.stop();
  } catch (err) {
    failure ??= err;
  }
  if (failure) {
    // The server's side of the story (its log is one line when all is well).
    console.error(`vcpud log (${srv.address}):\n${srv.log()}`);
    throw failure;
  }
  assert.equal(code, 0, `vcpud exited with status ${code} after SIGTERM; its log:\n${srv.log()}`);
  if (srv.socketPath) {
    assert.ok(!fs.existsSync(srv.socketPath), `vcpud left ${srv.socketPath} behind`);
  }
}

// A VM with 2 MiB of RAM at 0, guest NAME at 0x1000 and vCPU 0 in MODE.
async function guestVm(api, name, mode = 'MODE_REAL', { irqchip = false } = {}) {
  const { vm_id } = await api.CreateVm({ max_vcpus: 2, irqchip });
  await api.AddMemoryRegion({
    vm_id,
    region: { slot: 0, guest_phys_addr: '0', size: String(RAM_SIZE), read_only: false },
  });
  const code = guest(name);
  const w = await api.writeMemory(vm_id, GUEST_LOAD, code);
  assert.equal(u64(w.bytes_written), BigInt(code.length));
  await api.CreateVcpu({ vm_id, vcpu_id: 0 });
  await api.SetupMode({
    vm_id,
    vcpu_id: 0,
    mode,
    entry: String(GUEST_LOAD),
    stack: String(STACK),
    tables_addr: String(TABLES),
  });
  return vm_id;
}

// One Run of vCPU 0; `extra` carries io/mmio results or timeout_ms.
async function run(api, vm_id, extra = {}) {
  const res = await api.Run({ vm_id, vcpu_id: 0, ...extra });
  assert.ok(res.exit, 'RunResponse without an exit');
  return res.exit;
}

async function runExpect(api, vm_id, kind, extra = {}) {
  const exit = await run(api, vm_id, extra);
  assert.equal(exit.kind, `EXIT_KIND_${kind}`, `exit ${JSON.stringify(exit)}`);
  return exit;
}

// Element i of an io exit's little-endian data, as a BigInt.
function ioValue(exit, i = 0) {
  const { size, data } = exit.io;
  let v = 0n;
  for (let b = size - 1; b >= 0; b--) v = (v << 8n) | BigInt(data[i * size + b]);
  return v;
}

const ioResult = (...values) => ({ io: { values: values.map(String) } });
const mmioResult = (value) => ({ mmio: { value: String(value) } });

// The errnos behind each status, from include/vcpud/error.h: the trailer
// must name one of the class the status claims.
const E = os.constants.errno;
const ERRNO_CLASS = {
  INVALID_ARGUMENT: [E.EINVAL, E.EBADMSG, E.ERANGE, E.E2BIG],
  NOT_FOUND: [E.ENOENT],
  ALREADY_EXISTS: [E.EEXIST],
  FAILED_PRECONDITION: [E.EBUSY, E.EPROTO, E.ENOTSUP],
  RESOURCE_EXHAUSTED: [E.ENOSPC, E.ENOMEM, E.EMFILE],
};

// Awaits a call that must fail with status NAME (grpc.status key), a
// vcpud-errno trailer of that status' class and a message matching `re`.
// Returns the error for further checks.
async function expectStatus(promise, name, re) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `call succeeded, expected ${name}`);
  assert.equal(err.code, grpc.status[name], `status ${grpc.status[err.code]} (${err.details}), expected ${name}`);
  if (re) assert.match(err.details, re);
  const trailer = err.metadata?.get('vcpud-errno') ?? [];
  assert.equal(trailer.length, 1, `${name}: expected one vcpud-errno trailer, got ${JSON.stringify(trailer)}`);
  assert.match(String(trailer[0]), /^-[0-9]+$/, 'vcpud-errno is a negative errno');
  const errno = -Number(trailer[0]);
  assert.ok(ERRNO_CLASS[name].includes(errno), `vcpud-errno ${trailer[0]} does not belong to ${name}`);
  err.errno = errno;
  return err;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

module.exports = {
  grpc,
  GUEST_LOAD,
  RAM_SIZE,
  E,
  ERRNO_CLASS,
  withServer,
  guestVm,
  guest,
  run,
  runExpect,
  ioValue,
  ioResult,
  mmioResult,
  expectStatus,
  sleep,
  u64,
};
