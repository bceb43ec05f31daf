"""Checksum repair for fuzzing and property tests (no atheris, no numba: tests import it too).

A mutated stream almost always fails its first CRC; repairing every CRC the layout locates lets
the mutation reach the payload parser and the kernels, which is where the interesting bugs are.
"""

from __future__ import annotations

import struct
import zlib

MAGIC = b"\x89VOLC\r\n\x1a"  # docs/format.md; not imported so this file stands alone
HEADER_SIZE = 68
ENTRY = struct.Struct("<QQI")
FLAG_HIGH_PLANE = 1


def fix_checksums(data: bytes, depth: int = 0) -> bytes:
    """``data`` with every CRC-32 the layout locates recomputed (header, slab payloads, table, and
    those of the high-bits plane stream), so mutated bytes reach the payload parser and the
    kernels instead of stopping at the first checksum. Anything that cannot be located is left."""
    b = bytearray(data)
    if len(b) < HEADER_SIZE or bytes(b[:8]) != MAGIC or depth > 2:
        return bytes(b)
    n_slabs = struct.unpack_from("<I", b, 40)[0]
    tend = HEADER_SIZE + ENTRY.size * n_slabs
    if len(b) >= tend + 4:
        for i in range(n_slabs):
            at = HEADER_SIZE + ENTRY.size * i
            off, length, _ = ENTRY.unpack_from(b, at)
            if off + length <= len(b):
                struct.pack_into("<I", b, at + 16, zlib.crc32(b[off:off + length]))
        struct.pack_into("<I", b, tend, zlib.crc32(b[HEADER_SIZE:tend]))
    flags, = struct.unpack_from("<H", b, 10)
    po, pl = struct.unpack_from("<QQ", b, 44)
    if flags & FLAG_HIGH_PLANE and po + pl <= len(b):
        b[po:po + pl] = fix_checksums(bytes(b[po:po + pl]), depth + 1)
    struct.pack_into("<I", b, 64, zlib.crc32(b[:64]))
    return bytes(b)
