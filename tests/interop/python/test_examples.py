"""The Python controllers of examples/ drive the demo guest to its hlt."""

import os
import subprocess
import sys

from api import pb
from testlib import BUILD_DIR, VcpudTest

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                        "..", "..", "examples")
DEMO_BIN = os.path.join(BUILD_DIR, "examples", "demo_guest.bin")


class Examples(VcpudTest):
    def controller(self, name):
        """Run examples/(name) against this test's server; its output."""
        if not os.path.exists(DEMO_BIN):
            self.fail("%s is not built" % DEMO_BIN)
        r = subprocess.run(
            [sys.executable, os.path.join(EXAMPLES, name),
             self.server.address, DEMO_BIN],
            capture_output=True, text=True, timeout=600)
        self.assertEqual(0, r.returncode, "%s failed:\n%s" % (name, r.stderr))
        self.assertEqual(0, len(self.c.ListVms(pb.ListVmsRequest()).vms),
                         "%s left its VM behind" % name)
        return r.stdout

    def test_unary_and_stream_controllers_print_the_same(self):
        unary = self.controller("controller.py")
        # The demo guest echoes the line it is typed, so it shows up.
        self.assertIn("hi from Python", unary)
        self.assertEqual(unary, self.controller("controller_stream.py"))
