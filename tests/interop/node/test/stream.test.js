// stream.test.js: the Attach exit stream – guests driven over one bidi call
// with registers on every exit, register access between runs, one driver
// at a time, commands served in order, protocol errors, and a controller
// that resets the stream mid-run.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');
const { AttachStream, expectReplyError } = require('../lib/attach');

const opts = { timeout: 300000 };

// Resolves once a run command sent on `stream` holds the vCPU: a unary
// GetRegs then fails with FAILED_PRECONDITION. Fails if the run replied
// first (the guest was meant to keep running).
async function waitRunning(api, vm_id, stream) {
  const until = Date.now() + 60000;
  while (Date.now() < until) {
    assert.equal(stream.inbox.length, 0, `the run ended early: ${JSON.stringify(stream.inbox[0])}`);
    assert.equal(stream.error, null, `the stream failed: ${stream.error}`);
    try {
      await api.GetRegs({ vm_id, vcpu_id: 0 });
    } catch (err) {
      if (err.code !== h.grpc.status.FAILED_PRECONDITION) throw err;
      return;
    }
    await h.sleep(5);
  }
  assert.fail(`the run command never held vCPU 0 of VM ${vm_id} within 60 s`);
}

// A guest (`spin` unless named) on a fresh stream, with a run command in
// flight once it returns: { vm, s, pending }. A rejection of `pending` is
// handled here too, so a test may await something else first.
async function runningStream(api, run = {}, guest = 'spin') {
  const vm = await h.guestVm(api, guest);
  const s = new AttachStream(api);
  await s.open(vm);
  const pending = s.run(run);
  pending.catch(() => {});
  await waitRunning(api, vm, s);
  return { vm, s, pending };
}

// Calls fn until it does not fail with FAILED_PRECONDITION (the server has
// not yet let go of a reset stream), for up to `ms`.
async function retryWhileHeld(fn, ms = 60000) {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (err.code !== h.grpc.status.FAILED_PRECONDITION || Date.now() > until) throw err;
      await h.sleep(10);
    }
  }
}

test('Attach: io_in driven to hlt with registers on every exit, get_regs, clean close', opts, async () => {
  await h.withServer(async (api) => {
    const vm = await h.guestVm(api, 'io_in');
    const s = new AttachStream(api);
    await s.open(vm, { regs: true });
    const steps = [
      { port: 0x20, size: 1, rip: 0x1000n, answer: 0xabn },
      { port: 0x22, size: 2, rip: 0x1004n, answer: 0xbeefn },
      { port: 0x24, size: 4, rip: 0x1008n, answer: 0xfeedfacen },
    ];
    let extra = {};
    for (const st of steps) {
      const r = await s.runExpect('IO_IN', extra);
      assert.equal(r.exit.detail, 'io');
      assert.deepEqual([r.exit.io.port, r.exit.io.size, r.exit.io.count], [st.port, st.size, 1]);
      assert.ok(r.exit_regs, 'regs_with_exit: an exit without exit_regs');
      // Waiting at the IN: RIP has not moved past it yet.
      assert.equal(h.u64(r.exit_regs.rip), st.rip, `exit_regs.rip at the IN on port ${st.port}`);
      assert.equal(r.exit_special_regs, null, 'special registers sent though not asked for');
      extra = h.ioResult(st.answer);
    }
    const last = await s.runExpect('HLT', extra);
    const end = BigInt(h.GUEST_LOAD + h.guest('io_in').length);
    assert.equal(h.u64(last.exit_regs.rdx) & 0xffffffffn, 0xfeedfacen);
    const r = await s.getRegs();
    assert.equal(h.u64(r.rbx) & 0xffn, 0xabn);
    assert.equal(h.u64(r.rcx) & 0xffffn, 0xbeefn);
    assert.equal(h.u64(r.rdx) & 0xffffffffn, 0xfeedfacen);
    assert.equal(h.u64(r.rip), end);
    const st = await s.close();
    assert.equal(st.code, h.grpc.status.OK, `stream ended with ${JSON.stringify(st)}`);
    // The vCPU is free again: a unary GetRegs agrees with the stream.
    const u = await api.GetRegs({ vm_id: vm, vcpu_id: 0 });
    assert.equal(h.u64(u.rip), end);
  });
});

test('Attach: special registers with exits, read and written between runs', opts, async () => {
  await h.withServer(async (api) => {
    const vm = await h.guestVm(api, 'mmio', 'MODE_LONG');
    const s = new AttachStream(api);
    await s.open(vm, { sregs: true });
    for (let i = 0; i < 4; i++) await s.runExpect('MMIO_WRITE');
    const x = await s.runExpect('MMIO_READ');
    assert.equal(x.exit_regs, null, 'general registers sent though not asked for');
    const sr = x.exit_special_regs;
    assert.ok(sr, 'special_regs_with_exit: an exit without exit_special_regs');
    // Long mode, as SetupMode left it: EFER.LME|LMA, CR0.PG|PE, CS.L, and
    // the page tables in the 28 KiB at tables_addr.
    assert.equal(h.u64(sr.efer) & 0x500n, 0x500n, `efer ${sr.efer}`);
    assert.equal(h.u64(sr.cr0) & 0x80000001n, 0x80000001n, `cr0 ${sr.cr0}`);
    assert.equal(sr.cs.l, true);
    const cr3 = h.u64(sr.cr3) & ~0xfffn;
    assert.ok(cr3 >= 0x100000n && cr3 < 0x107000n, `cr3 ${sr.cr3} outside the tables`);
    const got = await s.getSpecialRegs();
    assert.equal(got.efer, sr.efer);
    assert.equal(got.cr3, sr.cr3);
    // A special-register write while the mmio-read waits is refused too.
    expectReplyError(await s.setSpecialRegs(got), 'FAILED_PRECONDITION', /result first/);
    let extra = h.mmioResult(0xa1);
    for (let i = 0; i < 3; i++) {
      await s.runExpect('MMIO_READ', extra);
      extra = h.mmioResult(0);
    }
    await s.runExpect('HLT', extra);
    const ok = await s.setSpecialRegs(got);
    assert.equal(ok.reply, 'ok', JSON.stringify(ok));
    assert.equal((await s.getSpecialRegs()).cr3, sr.cr3);
    assert.equal((await s.close()).code, h.grpc.status.OK);
  });
});

test('Attach: one driver at a time; refused commands are replies and the stream goes on', opts, async () => {
  await h.withServer(async (api) => {
    const vm = await h.guestVm(api, 'in_echo');
    const s = new AttachStream(api);
    await s.open(vm);
    await h.expectStatus(h.run(api, vm), 'FAILED_PRECONDITION', /Attach stream/);
    const second = new AttachStream(api);
    await h.expectStatus(second.open(vm), 'FAILED_PRECONDITION', /already has a driver/);
    const third = new AttachStream(api);
    await h.expectStatus(third.open(vm, { vcpu_id: 1 }), 'NOT_FOUND');
    const x = await s.runExpect('IO_IN');
    assert.equal(x.exit.io.port, 0x20);
    // Refused while the IN waits for its answer: each an `error` reply.
    const regs = await s.getRegs();
    const e = expectReplyError(await s.setRegs(regs), 'FAILED_PRECONDITION', /result first/);
    assert.equal(e.code, 9);
    expectReplyError(await s.run(), 'FAILED_PRECONDITION', /io-in on port 0x20/);
    expectReplyError(await s.run(h.ioResult(0x1ff)), 'INVALID_ARGUMENT', /does not fit/);
    expectReplyError(await s.run(h.mmioResult(1)), 'FAILED_PRECONDITION');
    // Still attached after all that: unary Run still refused.
    await h.expectStatus(h.run(api, vm), 'FAILED_PRECONDITION', /Attach stream/);
    const out = await s.runExpect('IO_OUT', h.ioResult(0x5c));
    assert.equal(out.exit.io.port, 0x21);
    assert.equal(h.ioValue(out.exit), 0x5cn);
    // Register writes land between runs: back to the IN, and it runs again.
    const r = await s.getRegs();
    r.rip = String(h.GUEST_LOAD);
    const ok = await s.setRegs(r);
    assert.equal(ok.reply, 'ok', JSON.stringify(ok));
    const again = await s.runExpect('IO_IN');
    assert.equal(again.exit.io.port, 0x20);
    assert.equal((await s.close()).code, h.grpc.status.OK);
    // Closed: unary Run takes over from where the stream left the guest.
    const y = await h.runExpect(api, vm, 'IO_OUT', h.ioResult(0x3e));
    assert.equal(h.ioValue(y), 0x3en);
    assert.deepEqual([...(await api.readMemory(vm, 0x3000, 1))], [0x3e]);
  });
});

test('Attach: breaking the protocol ends the stream with its status', opts, async () => {
  await h.withServer(async (api) => {
    const vm = await h.guestVm(api, 'spin');
    // No `open` first.
    const a = new AttachStream(api);
    await h.expectStatus(a.run(), 'FAILED_PRECONDITION', /must be 'open'/);
    // An unknown VM, an unknown vCPU.
    await h.expectStatus(new AttachStream(api).open(424242), 'NOT_FOUND', /424242/);
    await h.expectStatus(new AttachStream(api).open(vm, { vcpu_id: 1 }), 'NOT_FOUND');
    // A second `open` on an open stream.
    const b = new AttachStream(api);
    await b.open(vm);
    await h.expectStatus(b.request({ open: { vm_id: vm, vcpu_id: 0 } }), 'FAILED_PRECONDITION', /already open/);
    // The ended stream no longer holds the vCPU.
    const x = await retryWhileHeld(() => h.run(api, vm, { timeout_ms: '50' }));
    assert.equal(x.cancel_reason, 'CANCEL_REASON_TIMEOUT');
    // A command sent while a run is in flight waits its turn: the server
    // reads it after the run's exit and answers it next.
    const c = new AttachStream(api);
    await c.open(vm);
    const first = c.run({ timeout_ms: '200' });
    await waitRunning(api, vm, c);
    const second = c.getRegs();
    const fx = await first;
    assert.equal(fx.reply, 'exit', JSON.stringify(fx));
    assert.equal(fx.exit.cancel_reason, 'CANCEL_REASON_TIMEOUT');
    assert.ok((await second).rip !== undefined);
    assert.equal((await c.close()).code, h.grpc.status.OK);
  });
});

// The contract: "a stream that breaks mid-run cancels the guest" – also
// when the server itself ends the stream while a run is in flight, here
// because the VM is destroyed under it: the controller hears NOT_FOUND.
test('Attach: a VM destroyed mid-run ends the stream with NOT_FOUND', opts, async () => {
  await h.withServer(async (api) => {
    const { vm, pending: first } = await runningStream(api);
    await api.DestroyVm({ vm_id: vm });
    await assert.rejects(first, (err) => err.code === h.grpc.status.NOT_FOUND && /destroyed/.test(err.details));
  });
});

test('Attach: half-closing mid-run: the run is answered first, then the stream ends OK', opts, async () => {
  await h.withServer(async (api) => {
    const { vm, s, pending } = await runningStream(api, { timeout_ms: '200' });
    const closed = s.close();
    const x = await pending;
    assert.equal(x.reply, 'exit', JSON.stringify(x));
    assert.equal(x.exit.cancel_reason, 'CANCEL_REASON_TIMEOUT');
    const st = await closed;
    assert.equal(st.code, h.grpc.status.OK, JSON.stringify(st));
    // The ended stream no longer holds the vCPU.
    const y = await retryWhileHeld(() => h.run(api, vm, { timeout_ms: '50' }));
    assert.equal(y.cancel_reason, 'CANCEL_REASON_TIMEOUT');
  });
});

test('Attach: Cancel and timeout_ms end a run command with CANCELED', opts, async () => {
  await h.withServer(async (api) => {
    const { vm, s, pending } = await runningStream(api);
    await api.Cancel({ vm_id: vm, vcpu_id: 0 });
    const r = await pending;
    assert.equal(r.reply, 'exit');
    assert.equal(r.exit.kind, 'EXIT_KIND_CANCELED');
    assert.equal(r.exit.cancel_reason, 'CANCEL_REASON_REQUESTED');
    const t0 = Date.now();
    const t = await s.runExpect('CANCELED', { timeout_ms: '100' });
    assert.equal(t.exit.cancel_reason, 'CANCEL_REASON_TIMEOUT');
    assert.ok(Date.now() - t0 >= 100, `timed out after ${Date.now() - t0} ms`);
    assert.equal((await s.close()).code, h.grpc.status.OK);
  });
});

test('Attach: a stream reset mid-run cancels the guest and frees the vCPU', opts, async () => {
  await h.withServer(async (api) => {
    const { vm, s, pending } = await runningStream(api);
    s.cancel();
    await assert.rejects(pending, (err) => err.code === h.grpc.status.CANCELLED);
    await assert.rejects(s.finished, (err) => err.code === h.grpc.status.CANCELLED);
    // The CANCELED exit made for the departed stream is nobody's: the next
    // driver gets a fresh run, here one that times out.
    const x = await retryWhileHeld(() => h.run(api, vm, { timeout_ms: '50' }));
    assert.equal(x.kind, 'EXIT_KIND_CANCELED');
    assert.equal(x.cancel_reason, 'CANCEL_REASON_TIMEOUT');
    // And a new stream can attach and drive it.
    const s2 = new AttachStream(api);
    await s2.open(vm);
    const y = await s2.runExpect('CANCELED', { timeout_ms: '50' });
    assert.equal(y.exit.cancel_reason, 'CANCEL_REASON_TIMEOUT');
    assert.equal((await s2.close()).code, h.grpc.status.OK);
  });
});

test('Attach: a stream reset mid-run leaves the guest where it was for a new stream', opts, async () => {
  await h.withServer(async (api) => {
    const { vm, s, pending } = await runningStream(api, {}, 'flag_wait');
    s.cancel();
    await assert.rejects(pending, (err) => err.code === h.grpc.status.CANCELLED);
    const s2 = await retryWhileHeld(async () => {
      const st = new AttachStream(api);
      await st.open(vm);
      return st;
    });
    await api.writeMemory(vm, 0x3000, Buffer.from([0x5a]));
    const x = await s2.runExpect('IO_OUT');
    assert.equal(x.exit.io.port, 0x10);
    assert.equal(h.ioValue(x.exit), 0x5an);
    await s2.runExpect('HLT');
    assert.equal((await s2.close()).code, h.grpc.status.OK);
  });
});
