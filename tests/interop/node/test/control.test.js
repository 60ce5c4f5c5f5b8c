// control.test.js: a running guest controlled from outside (Cancel,
// timeout_ms, the caller going away, memory written under it) and the
// server reached over TCP instead of a unix socket.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');
const { Client } = require('../lib/vcpud');

const opts = { timeout: 300000 };

// Starts a Run of a guest that never exits by itself and resolves once the
// Run holds the vCPU (GetRegs then answers FAILED_PRECONDITION: busy).
// A GetRegs that holds the vCPU for a moment makes a Run arriving then fail
// with FAILED_PRECONDITION "is busy" (vcpud refuses rather than waits): then
// the Run is started again.
async function startRunning(api, vm_id) {
  const until = Date.now() + 60000;
  while (Date.now() < until) {
    const running = api.startRun({ vm_id, vcpu_id: 0 });
    let settled = null;
    running.promise.then(
      (res) => (settled = { res }),
      (err) => (settled = { err }),
    );
    while (Date.now() < until) {
      if (settled) break;
      try {
        await api.GetRegs({ vm_id, vcpu_id: 0 });
      } catch (err) {
        if (err.code !== h.grpc.status.FAILED_PRECONDITION) throw err;
        if (!settled) return running;
      }
      await h.sleep(5);
    }
    if (settled && !(settled.err?.code === h.grpc.status.FAILED_PRECONDITION && /is busy/.test(settled.err.details))) {
      assert.fail(`Run ended before it was cancelled: ${settled.err ?? JSON.stringify(settled.res)}`);
    }
  }
  assert.fail(`no Run held vCPU 0 of VM ${vm_id} within 60 s`);
}

test('Cancel stops a running guest; a second Run meanwhile is FAILED_PRECONDITION', opts, async () => {
  await h.withServer(async (api) => {
    const vm = await h.guestVm(api, 'spin');
    const running = await startRunning(api, vm);
    await h.expectStatus(h.run(api, vm), 'FAILED_PRECONDITION', /another call/);
    await api.Cancel({ vm_id: vm, vcpu_id: 0 });
    const { exit } = await running.promise;
    assert.equal(exit.kind, 'EXIT_KIND_CANCELED');
    assert.equal(exit.detail, 'cancel_reason');
    assert.equal(exit.cancel_reason, 'CANCEL_REASON_REQUESTED');
    // A Cancel while nothing runs makes the next Run return at once.
    await api.Cancel({ vm_id: vm, vcpu_id: 0 });
    const x = await h.runExpect(api, vm, 'CANCELED');
    assert.equal(x.cancel_reason, 'CANCEL_REASON_REQUESTED');
  });
});

test('timeout_ms ends a spinning guest with a TIMEOUT exit', opts, async () => {
  await h.withServer(async (api) => {
    const vm = await h.guestVm(api, 'spin');
    const t0 = Date.now();
    const x = await h.runExpect(api, vm, 'CANCELED', { timeout_ms: '100' });
    assert.equal(x.cancel_reason, 'CANCEL_REASON_TIMEOUT');
    assert.ok(Date.now() - t0 >= 100, `timed out after ${Date.now() - t0} ms, before 100 ms`);
    // The guest is where it was: it keeps spinning on a second limited Run.
    const again = await h.runExpect(api, vm, 'CANCELED', { timeout_ms: '50' });
    assert.equal(again.cancel_reason, 'CANCEL_REASON_TIMEOUT');
  });
});

test('a Run abandoned by its caller cancels the guest and frees the vCPU', opts, async () => {
  await h.withServer(async (api) => {
    const vm = await h.guestVm(api, 'spin');
    const running = await startRunning(api, vm);
    running.cancel();
    await assert.rejects(running.promise, (err) => err.code === h.grpc.status.CANCELLED);
    // The server notices the reset stream on its own time: wait for the
    // vCPU to come free, then it must run normally again.
    const until = Date.now() + 60000;
    for (;;) {
      try {
        await api.GetRegs({ vm_id: vm, vcpu_id: 0 });
        break;
      } catch (err) {
        if (err.code !== h.grpc.status.FAILED_PRECONDITION || Date.now() > until) throw err;
        await h.sleep(5);
      }
    }
    const x = await h.runExpect(api, vm, 'CANCELED', { timeout_ms: '50' });
    assert.equal(x.cancel_reason, 'CANCEL_REASON_TIMEOUT');
  });
});

test('memory written while a Run is in flight on the same channel reaches the guest', opts, async () => {
  await h.withServer(async (api) => {
    const vm = await h.guestVm(api, 'flag_wait');
    const running = await startRunning(api, vm);
    await api.writeMemory(vm, 0x3000, Buffer.from([0x42]));
    const { exit } = await running.promise;
    assert.equal(exit.kind, 'EXIT_KIND_IO_OUT');
    assert.equal(exit.io.port, 0x10);
    assert.equal(h.ioValue(exit), 0x42n);
  });
});

test('TCP on 127.0.0.1:0: the logged port serves the same API', opts, async () => {
  await h.withServer(
    async (api, srv) => {
      const m = /^127\.0\.0\.1:(\d+)$/.exec(srv.address);
      assert.ok(m, `listen address ${srv.address}`);
      const port = Number(m[1]);
      assert.ok(port > 0 && port < 65536, `port ${port}`);
      assert.equal(srv.backend, 'kvm');
      const vm = await h.guestVm(api, 'io_in');
      let x = await h.runExpect(api, vm, 'IO_IN');
      x = await h.runExpect(api, vm, 'IO_IN', h.ioResult(0x7f));
      x = await h.runExpect(api, vm, 'IO_IN', h.ioResult(0x8001));
      await h.runExpect(api, vm, 'HLT', h.ioResult(0xffffffff));
      const r = await api.GetRegs({ vm_id: vm, vcpu_id: 0 });
      assert.equal(h.u64(r.rdx) & 0xffffffffn, 0xffffffffn);
      // A second connection (another client) sees the same VM.
      const other = new Client(srv.address);
      try {
        const { vms } = await other.ListVms({});
        assert.deepEqual(vms.map((v) => v.vm_id), [vm]);
        assert.equal(h.u64(vms[0].memory_bytes), BigInt(h.RAM_SIZE));
      } finally {
        other.close();
      }
      // Pages: one VM each, the first pointing at the second.
      const { vm_id: vm2 } = await api.CreateVm({});
      let page = await api.ListVms({ limit: 1 });
      assert.deepEqual(page.vms.map((v) => v.vm_id), [vm]);
      assert.equal(page.next_after_vm_id, vm);
      page = await api.ListVms({ after_vm_id: vm, limit: 1 });
      assert.deepEqual(page.vms.map((v) => v.vm_id), [vm2]);
      assert.equal(page.next_after_vm_id, 0);
      await api.DestroyVm({ vm_id: vm2 });
      await api.DestroyVm({ vm_id: vm });
      assert.deepEqual((await api.ListVms({})).vms, []);
    },
    { transport: 'tcp' },
  );
});
