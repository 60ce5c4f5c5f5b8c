// server.js: one vcpud subprocess per test, so a crash or leak in one test
// cannot hide behind or poison another.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

// Nested QEMU guests boot vcpud (an ASan build) slowly: be generous.
const START_MS = 60000;
const STOP_MS = 60000;

const running = new Set();
// A test process that dies mid-test must not leave servers behind.
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

let serial = 0;

function serverPath() {
  const buildDir = process.env.VCPUD_BUILD_DIR;
  if (!buildDir) throw new Error('VCPUD_BUILD_DIR is not set');
  return path.join(buildDir, 'server', 'vcpud');
}

// transport 'unix' or 'tcp'. Resolves once vcpud's log line says it serves;
// the address is taken from that line (the real port for 127.0.0.1:0).
function startServer(transport = 'unix', extraArgs = []) {
  let listen;
  let socketPath = null;
  if (transport === 'unix') {
    socketPath = path.join(os.tmpdir(), `vcpud-interop-node-${process.pid}-${++serial}.sock`);
    listen = `unix:${socketPath}`;
  } else {
    listen = '127.0.0.1:0';
  }
  const child = spawn(serverPath(), ['--listen', listen, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let log = '';
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
  const srv = {
    transport,
    socketPath,
    address: null,
    log: () => log,
    // Resolves to the exit code (128+N for a signal N).
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      let timer;
      const timeout = new Promise((resolve) => {
        timer = setTimeout(() => resolve(null), STOP_MS);
      });
      let res = await Promise.race([exited, timeout]);
      clearTimeout(timer);
      if (res === null) {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`vcpud did not stop within ${STOP_MS} ms of SIGTERM\n${log}`);
      }
      if (res.signal) return 128 + os.constants.signals[res.signal];
      return res.code;
    },
  };

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`vcpud did not report listening on ${listen} within ${START_MS} ms\n${log}`));
    }, START_MS);
    const onData = (buf) => {
      log += buf.toString();
      const m = /vcpud: listening on (\S+) \(backend (\w+)\)/.exec(log);
      if (m && srv.address === null) {
        srv.address = m[1];
        srv.backend = m[2];
        clearTimeout(timer);
        resolve(srv);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      if (srv.address === null) reject(new Error(`vcpud exited early (${code ?? signal})\n${log}`));
    });
  });
}

module.exports = { startServer };
