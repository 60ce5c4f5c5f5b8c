// guests.js: the test guests' machine code, cut out of the object file the C
// tests link (tests/kvm/guests.S), so both suites run byte-identical guests.
'use strict';

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

// The object's path under the build dir is CMake's business, not ours: search.
function findObject(buildDir) {
  const stack = [buildDir];
  while (stack.length) {
    const dir = stack.pop();
    for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, ent.name);
      if (ent.isDirectory()) stack.push(p);
      else if (ent.name === 'guests.S.o') return p;
    }
  }
  throw new Error(`no guests.S.o under ${buildDir}: build the project first`);
}

// nm prints section-relative offsets for an unlinked object; every guest
// lives in .rodata, so they index the objcopy'd section directly.
function symbols(obj) {
  const out = execFileSync('nm', [obj], { encoding: 'utf8' });
  const syms = new Map();
  for (const line of out.split('\n')) {
    const m = /^([0-9a-f]+) [rR] (guest_\w+_(?:start|end))$/.exec(line.trim());
    if (m) syms.set(m[2], parseInt(m[1], 16));
  }
  return syms;
}

function rodata(obj) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vcpud-guests-'));
  try {
    const bin = path.join(tmp, 'rodata.bin');
    execFileSync('objcopy', ['-O', 'binary', '--only-section=.rodata', obj, bin]);
    return fs.readFileSync(bin);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

let cache = null;

// Runs nm and objcopy synchronously, which blocks the event loop for
// seconds in the nested QEMU guest: long enough to miss vcpud's keepalive
// pings (2 s) and lose the connection. So call it before connecting.
function loadGuests() {
  if (!cache) {
    const buildDir = process.env.VCPUD_BUILD_DIR;
    if (!buildDir) throw new Error('VCPUD_BUILD_DIR is not set');
    const obj = findObject(buildDir);
    cache = { syms: symbols(obj), data: rodata(obj) };
  }
}

// guest('io_in') -> Buffer with the code to load at 0x1000.
function guest(name) {
  loadGuests();
  const start = cache.syms.get(`guest_${name}_start`);
  const end = cache.syms.get(`guest_${name}_end`);
  if (start === undefined || end === undefined || end <= start || end > cache.data.length) {
    throw new Error(`guest ${name}: no valid guest_${name}_start/end in guests.S.o`);
  }
  return Buffer.from(cache.data.subarray(start, end));
}

module.exports = { guest, loadGuests };
