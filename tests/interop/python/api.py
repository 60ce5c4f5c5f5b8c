"""The generated vcpud.v1 modules, imported from where run.sh put them.

Stubs are generated per run from proto/vcpud/v1/vcpud.proto (never kept in
the tree), so the suite always speaks the contract as it is now.
"""

try:
    from vcpud.v1 import vcpud_pb2 as pb
    from vcpud.v1 import vcpud_pb2_grpc as pb_grpc
except ImportError as e:  # say how to fix it, not just what is missing
    raise ImportError("generated vcpud.v1 stubs not importable (%s): run "
                      "tests/interop/python/run.sh, which generates them "
                      "and puts them on PYTHONPATH" % e) from e

__all__ = ["pb", "pb_grpc"]
