"""Shared by the fuzz targets: instrumented import of volcodec, checksum repair, the run loop.

Only the pure-Python modules (format, codec, errors...) are instrumented for coverage: atheris
rewrites bytecode, and the Numba kernels must keep their own bytecode to compile. Out-of-bounds
accesses inside the kernels are caught by running with NUMBA_BOUNDSCHECK=1 (see README.md), which
turns them into IndexError, a crash here.
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's volcodec first

# every module under volcodec/kernels, listed from the files so a new kernel module cannot be
# instrumented by accident (atheris matches exact module names, not prefixes)
_KERNELS = Path(__file__).resolve().parents[1] / "volcodec" / "kernels"
_NOT_INSTRUMENTED = ["volcodec.kernels"] + [f"volcodec.kernels.{p.stem}" for p in _KERNELS.glob("*.py")
                                            if p.stem != "__init__"]

with atheris.instrument_imports(include=["volcodec"], exclude=_NOT_INSTRUMENTED):
    import volcodec

from repair import fix_checksums  # noqa: E402
from volcodec.errors import VolcodecError  # noqa: E402

# decoding time grows with the voxels a header declares; fuzzing wants many small inputs
MAX_VOXELS = 1 << 20


def frames_to_try(data: bytes, n_frames: int) -> list[int]:
    """A few frame indices picked from the input (deterministic, so crashes reproduce)."""
    h = zlib.crc32(data)
    return sorted({h % n_frames, (h >> 12) % n_frames, n_frames - 1})


def main(test_one_input) -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


__all__ = ["MAX_VOXELS", "VolcodecError", "fix_checksums", "frames_to_try", "main", "volcodec"]
