"""The guests of tests/kvm/guests.S, taken from the object the build made.

Reading the assembled object (rather than keeping byte copies here) means
Python runs exactly the machine code the C tests run, and a change to
guests.S reaches both suites at once.
"""

import os
import subprocess
import tempfile

LOAD = 0x1000  # every guest is linked to start at this guest address


def find_object(build_dir):
    """The guests.S.o the C tests link (the test_guests library under
    tests/kvm). CMake's object path is its own business, so search; other
    targets may assemble guests.S too (the benchmark does), hence the
    narrowing to tests/kvm."""
    top = os.path.join(build_dir, "tests", "kvm")
    hits = []
    for root, _dirs, files in os.walk(top):
        if "guests.S.o" in files:
            hits.append(os.path.join(root, "guests.S.o"))
    if len(hits) != 1:
        raise RuntimeError("want exactly one guests.S.o under %s, found %r"
                           % (top, hits))
    return hits[0]


def _symbols(obj):
    """guest_*_start/_end offsets, all of which must lie in .rodata."""
    out = subprocess.run(["nm", "--defined-only", obj], check=True,
                         capture_output=True, text=True).stdout
    syms = {}
    for line in out.splitlines():
        value, kind, name = line.split()
        if name.startswith("guest_"):
            # 'R'/'r': read-only data; anything else means guests.S moved
            # its code and the .rodata slice below would be wrong.
            if kind not in ("R", "r"):
                raise RuntimeError("%s is in section type %s, not .rodata"
                                   % (name, kind))
            syms[name] = int(value, 16)
    return syms


def load(build_dir):
    """{name: bytes} for every guest in the build's guests.S.o."""
    obj = find_object(build_dir)
    with tempfile.NamedTemporaryFile(suffix=".bin") as raw:
        subprocess.run(["objcopy", "-O", "binary", "--only-section=.rodata",
                        obj, raw.name], check=True)
        rodata = raw.read()
    syms = _symbols(obj)
    code = {}
    for sym, start in syms.items():
        if not sym.endswith("_start"):
            continue
        name = sym[len("guest_"):-len("_start")]
        end = syms["guest_%s_end" % name]
        if not start < end <= len(rodata):
            raise RuntimeError("guest %s spans %#x..%#x outside .rodata (%d "
                               "bytes)" % (name, start, end, len(rodata)))
        code[name] = rodata[start:end]
    if not code:
        raise RuntimeError("no guest_*_start symbols in %s" % obj)
    return code
