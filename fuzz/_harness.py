"""Shared by the fuzz targets: instrumented import of volcodec, checksum repair, the run loop.

Only the pure-Python modules (format, codec, errors...) are instrumented for coverage: atheris
rewrites bytecode, and the Numba kernels must keep their own bytecode to compile. Out-of-bounds
accesses inside the kernels are caught by running with NUMBA_BOUNDSCHECK=1 (see README.md), which
turns them into IndexError, a crash here.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's volcodec first

with atheris.instrument_imports(include=["volcodec"], exclude=["volcodec.kernels", "volcodec.kernels.scan",
                                                                "volcodec.kernels.rangecoder"]):
    import volcodec
    from volcodec import format as fmt

from volcodec.errors import VolcodecError  # noqa: E402

# decoding time grows with the voxels a header declares; fuzzing wants many small inputs
MAX_VOXELS = 1 << 20


def fix_checksums(data: bytes, depth: int = 0) -> bytes:
    """``data`` with every CRC-32 the layout locates recomputed (header, slab payloads, table, and
    those of the high-bits plane stream), so mutated bytes reach the payload parser and the
    kernels instead of stopping at the first checksum. Anything that cannot be located is left."""
    b = bytearray(data)
    if len(b) < fmt.HEADER_SIZE or bytes(b[:8]) != fmt.MAGIC or depth > 2:
        return bytes(b)
    n_slabs = struct.unpack_from("<I", b, 40)[0]
    tend = fmt.HEADER_SIZE + fmt.SLAB_ENTRY.size * n_slabs
    if len(b) >= tend + 4:
        for i in range(n_slabs):
            at = fmt.HEADER_SIZE + fmt.SLAB_ENTRY.size * i
            off, length, _ = fmt.SLAB_ENTRY.unpack_from(b, at)
            if off + length <= len(b):
                struct.pack_into("<I", b, at + 16, zlib.crc32(b[off:off + length]))
        struct.pack_into("<I", b, tend, zlib.crc32(b[fmt.HEADER_SIZE:tend]))
    flags, = struct.unpack_from("<H", b, 10)
    po, pl = struct.unpack_from("<QQ", b, 44)
    if flags & fmt.FLAG_HIGH_PLANE and po + pl <= len(b):
        b[po:po + pl] = fix_checksums(bytes(b[po:po + pl]), depth + 1)
    struct.pack_into("<I", b, 64, zlib.crc32(b[:64]))
    return bytes(b)


def frames_to_try(data: bytes, n_frames: int) -> list[int]:
    """A few frame indices picked from the input (deterministic, so crashes reproduce)."""
    h = zlib.crc32(data)
    return sorted({h % n_frames, (h >> 12) % n_frames, n_frames - 1})


def main(test_one_input) -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


__all__ = ["MAX_VOXELS", "VolcodecError", "fix_checksums", "fmt", "frames_to_try", "main", "volcodec"]
