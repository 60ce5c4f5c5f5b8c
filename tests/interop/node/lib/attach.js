// attach.js: the Attach exit stream as a request/reply object. Each command
// written gets exactly one reply (the contract's rule), so replies are read
// in order from a queue; a stream the server ends early rejects every
// pending and later read with the call's error, status and trailers
// included, so expectStatus() can check it like a unary failure.
'use strict';

const assert = require('node:assert/strict');
const { grpc, DEADLINE_MS } = require('./vcpud');
const { ERRNO_CLASS } = require('./harness');

class AttachStream {
  // api: a lib/vcpud.js Client. ms: deadline of the whole stream.
  constructor(api, ms = DEADLINE_MS) {
    this.call = api.grpc.Attach({ deadline: Date.now() + ms });
    this.inbox = [];
    this.waiters = [];
    this.error = null; // the call's error, once it failed
    this.status = null; // the call's final status
    this.ended = false; // the server's half of the stream ended
    this.finished = new Promise((resolve, reject) => {
      this._finish = { resolve, reject };
    });
    // Nobody may be waiting on `finished` when the stream fails: no
    // unhandled rejection for that.
    this.finished.catch(() => {});
    this.call.on('data', (m) => {
      const w = this.waiters.shift();
      if (w) w.resolve(m);
      else this.inbox.push(m);
    });
    this.call.on('error', (err) => {
      this.error = err;
      this._settle();
    });
    this.call.on('status', (st) => {
      this.status = st;
      this._settle();
    });
    // grpc-js orders 'end' and 'status' as it likes: done on both.
    this.call.on('end', () => {
      this.ended = true;
      this._settle();
    });
  }

  get done() {
    return this.error !== null || (this.status !== null && this.ended);
  }

  _settle() {
    if (!this.done) return;
    const err = this.error ?? new Error(`the Attach stream ended (status ${this.status.code}) with a command unanswered`);
    for (const w of this.waiters.splice(0)) w.reject(err);
    if (this.error) this._finish.reject(this.error);
    else this._finish.resolve(this.status);
  }

  // The next reply, in order.
  next() {
    if (this.inbox.length) return Promise.resolve(this.inbox.shift());
    if (this.done) {
      return Promise.reject(this.error ?? new Error('the Attach stream has ended: no further reply'));
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  send(req) {
    this.call.write(req);
  }

  request(req) {
    this.send(req);
    return this.next();
  }

  // Opens the stream on vCPU vcpu_id; rejects as the call does when the
  // server refuses (the stream then ends with that status).
  async open(vm_id, { vcpu_id = 0, regs = false, sregs = false } = {}) {
    const r = await this.request({
      open: { vm_id, vcpu_id, regs_with_exit: regs, special_regs_with_exit: sregs },
    });
    assert.equal(r.reply, 'opened', `open answered with ${JSON.stringify(r)}`);
    return r;
  }

  // One run command; `extra` as for a unary Run ({io}, {mmio}, timeout_ms).
  // Resolves to the whole AttachResponse: an `exit` or an `error` reply.
  run(extra = {}) {
    return this.request({ run: extra });
  }

  // A run that must end with an exit of KIND; resolves to the response
  // (response.exit, response.exit_regs, response.exit_special_regs).
  async runExpect(kind, extra = {}) {
    const r = await this.run(extra);
    assert.equal(r.reply, 'exit', `run answered with ${JSON.stringify(r)}`);
    assert.equal(r.exit.kind, `EXIT_KIND_${kind}`, `exit ${JSON.stringify(r.exit)}`);
    return r;
  }

  async getRegs() {
    const r = await this.request({ get_regs: {} });
    assert.equal(r.reply, 'regs', `get_regs answered with ${JSON.stringify(r)}`);
    return r.regs;
  }

  async getSpecialRegs() {
    const r = await this.request({ get_special_regs: {} });
    assert.equal(r.reply, 'special_regs', `get_special_regs answered with ${JSON.stringify(r)}`);
    return r.special_regs;
  }

  // Register writes resolve to the reply: `ok` or `error`.
  setRegs(regs) {
    return this.request({ set_regs: regs });
  }

  setSpecialRegs(sregs) {
    return this.request({ set_special_regs: sregs });
  }

  // Half-closes our side: the controller is done. Resolves to the final
  // status once the server has ended the stream (rejects if it failed).
  close() {
    this.call.end();
    return this.finished;
  }

  // Resets the stream, as a controller that goes away does.
  cancel() {
    this.call.cancel();
  }
}

// A reply that must be a CommandError of status NAME (grpc.status key) with
// a negative errno of that status' class (as expectStatus checks the
// vcpud-errno trailer) and a message matching `re`; returns the error.
function expectReplyError(resp, name, re) {
  assert.equal(resp.reply, 'error', `expected an error reply, got ${JSON.stringify(resp)}`);
  const e = resp.error;
  assert.equal(e.code, grpc.status[name], `error reply ${JSON.stringify(e)}, expected ${name}`);
  assert.ok(
    ERRNO_CLASS[name].includes(-e.core_errno),
    `core_errno ${e.core_errno} is not a negative errno of ${name}'s class`,
  );
  if (re) assert.match(e.message, re);
  return e;
}

module.exports = { AttachStream, expectReplyError };
