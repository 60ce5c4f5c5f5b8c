"""A vcpud process for one test: started on a unix socket or 127.0.0.1:0,
stopped with SIGTERM."""

import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

import grpc

from api import pb_grpc

# Generous everywhere: in the nested QEMU guest a Python gRPC call costs
# ~7 ms and an exit milliseconds, and an ASan server starts slowly.
# VCPUD_SERVER_WRAPPER runs each server under a tool (tests/valgrind/run.sh
# sets valgrind); VCPUD_TIMEOUT_SCALE stretches every wait to match it.
TIMEOUT_SCALE = float(os.environ.get("VCPUD_TIMEOUT_SCALE") or 1)
START_TIMEOUT = 60.0 * TIMEOUT_SCALE
STOP_TIMEOUT = 60.0 * TIMEOUT_SCALE
_WRAPPER = shlex.split(os.environ.get("VCPUD_SERVER_WRAPPER", ""))

_LISTENING = re.compile(r"listening on (\S+) \(backend (\w+)\)")


class Server:
    def __init__(self, binary, transport="unix", args=()):
        # /tmp explicitly: a long TMPDIR could push the socket path past
        # the 108 bytes a unix socket address holds.
        self.dir = tempfile.mkdtemp(prefix="vcpud-py-", dir="/tmp")
        self.log_path = os.path.join(self.dir, "vcpud.log")
        if transport == "unix":
            listen = "unix:" + os.path.join(self.dir, "sock")
            prefix = "unix:"
        elif transport == "tcp":
            listen, prefix = "127.0.0.1:0", "127.0.0.1:"
        else:
            raise ValueError("transport " + transport)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            _WRAPPER + [binary, "--listen", listen] + list(args),
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        self.address, self.backend = self._wait_listening(prefix)
        self.channels = []

    def _wait_listening(self, prefix):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            for m in _LISTENING.finditer(self.log()):
                if m.group(1).startswith(prefix):
                    return m.group(1), m.group(2)
            if self.proc.poll() is not None:
                raise RuntimeError("vcpud exited with %d before listening:\n%s"
                                   % (self.proc.returncode, self.log()))
            time.sleep(0.01)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("vcpud did not listen within %.0f s:\n%s"
                           % (START_TIMEOUT, self.log()))

    def log(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()

    def channel(self):
        """A fresh channel, connected; closed by stop()."""
        ch = grpc.insecure_channel(self.address)
        grpc.channel_ready_future(ch).result(timeout=START_TIMEOUT)
        self.channels.append(ch)
        return ch

    def stub(self):
        return pb_grpc.VcpudStub(self.channel())

    def stop(self, sig=signal.SIGTERM, close_channels=True):
        """Signal the server and return its exit status (negative: killed
        by that signal, as subprocess reports it).

        Channels are closed first, as a controller that is done would: an
        idle grpcio channel does not poll its socket, so it never acks the
        server's GOAWAY ping and costs the server its whole --grace-ms.
        close_channels=False keeps them open to test exactly that."""
        if close_channels:
            self._close_channels()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("vcpud did not stop within %.0f s:\n%s"
                                 % (STOP_TIMEOUT, self.log()))
        finally:
            self._close_channels()
        return self.proc.returncode

    def _close_channels(self):
        for ch in self.channels:
            ch.close()
        self.channels = []

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

