"""The volcodec container: magic, version, header, slab table, checksums and limits.

Byte layout (all integers little-endian; docs/format.md has the full diagram)::

    0   8  magic            89 56 4F 4C 43 0D 0A 1A  ("\\x89VOLC\\r\\n\\x1a")
    8   2  version          u16, FORMAT_VERSION
    10  2  flags            u16, bit 0: a high-bits plane follows (words with bits above bits_stored)
                                 bit 1: decisions use two models and a logistic mixer
    12  1  ndim             3 or 4
    13  1  dtype code       1 uint8, 2 int8, 3 uint16, 4 int16, 5 uint32, 6 int32
    14  1  bits_stored      1..32 (<= the dtype's width)
    15  1  effort           1..9 (informational: the decoder never needs it)
    16  4  near             u32, maximum absolute error (0 = lossless)
    20  16 T, Z, Y, X       u32 each (T = 1 for a 3-D volume)
    36  2  slab_z           u16, slices per slab
    38  2  slab_t           u16, time points per slab
    40  4  n_slabs          u32 = ceil(T / slab_t) * ceil(Z / slab_z)
    44  8  plane_offset     u64, start of the high-bits plane stream (0 if none)
    52  8  plane_length     u64
    60  4  predictor mask   u32, the predictors the blend uses (bit i = predictor i)
    64  4  header crc32     of bytes 0..63
    68  20*n slab table     per slab: u64 offset, u64 length, u32 crc32 of the slab payload
    ..  4  table crc32      of the slab table
    ..     slab payloads, then the high-bits plane (itself a complete volcodec stream)

This module never imports numba: it only parses and validates.
"""

from __future__ import annotations

import numbers
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from .errors import (
    ChecksumError,
    FormatError,
    InvalidArgumentError,
    LimitError,
    TruncatedError,
    UnsupportedVersionError,
)

MAGIC = b"\x89VOLC\r\n\x1a"
FORMAT_VERSION = 7  # 2 added slab mode 2 (the fast scan), 3 mode 3, ... 7 mode 7; older streams decode
HEADER_SIZE = 68
SLAB_ENTRY = struct.Struct("<QQI")
_HEAD = struct.Struct("<8sHHBBBBI4IHHIQQI")
assert _HEAD.size == 64

FLAG_HIGH_PLANE = 1
FLAG_MIXING = 2
KNOWN_FLAGS = FLAG_HIGH_PLANE | FLAG_MIXING

DTYPES = {1: np.dtype("u1"), 2: np.dtype("i1"), 3: np.dtype("<u2"), 4: np.dtype("<i2"),
          5: np.dtype("<u4"), 6: np.dtype("<i4")}
DTYPE_CODES = {dt.newbyteorder("=").str[1:]: code for code, dt in DTYPES.items()}

MAX_DIM = 1 << 20
MAX_NEAR = (1 << 32) - 1  # the header's u32 field; no smaller cap (16-bit users ask for large bounds)
DEFAULT_MAX_VOXELS = 1 << 34
MIN_BYTES_SHIFT = 13  # a coded voxel needs > 1/8192 byte

# slab payload modes (first byte of each payload): 0 binary-decision scan (kernels/scan.py),
# 1 verbatim words, 2 fast scan (kernels/fast.py, version >= 2), 3 fast scan with shrunk bias
# means (version >= 3), 4 mode 3 with run mode in flat regions (version >= 4), 5 mode 4 with 8
# tokens (a tree of depth 3, version >= 5), 6 mode 5 with the token models starting from a prior
# (version >= 6), 7 mode 0 with clipped bias errors (version >= 7)
SLAB_CODED, SLAB_RAW, SLAB_FAST, SLAB_FAST2, SLAB_FAST_RUN, SLAB_FAST8, SLAB_FAST8P, SLAB_CODED2 = range(8)
FAST_MODES = (SLAB_FAST, SLAB_FAST2, SLAB_FAST_RUN, SLAB_FAST8, SLAB_FAST8P)
BINARY_MODES = (SLAB_CODED, SLAB_CODED2)  # the binary-decision scan (kernels/scan.py)
CODED_MODES = BINARY_MODES + FAST_MODES
# the first format version with each mode
MODE_SINCE = {SLAB_CODED: 1, SLAB_RAW: 1, SLAB_FAST: 2, SLAB_FAST2: 3, SLAB_FAST_RUN: 4, SLAB_FAST8: 5,
              SLAB_FAST8P: 6, SLAB_CODED2: 7}
# per-frame reference codes (one byte per frame after the mode byte)
REF_NONE, REF_Z, REF_T, REF_ZT, REF_TZ = 0, 1, 2, 3, 4
N_REF_CODES = 5


def slab_floor(frames: int, y: int, x: int) -> int:
    """The fewest bytes a slab's payload may have. In modes 0, 2 and 3 every voxel costs at least
    one coded decision of >= 0.0014 bit (the most skewed probability the models reach), so a
    payload is never shorter; a run (modes 4, 5) can cost less, and the encoder pads such a payload up
    to this floor. So a tiny file can never declare a volume that would make the decoder allocate
    gigabytes."""
    return 1 + frames + ((frames * y * x) >> MIN_BYTES_SHIFT)


def dtype_code(dt: np.dtype) -> int:
    return DTYPE_CODES[np.dtype(dt).str[1:]]


@dataclass(frozen=True)
class Header:
    """Everything the stream declares about the volume, validated."""

    version: int
    shape: tuple[int, ...]
    dtype: np.dtype
    bits_stored: int
    effort: int
    near: int
    slab_z: int
    slab_t: int
    predictor_mask: int
    slabs: tuple[tuple[int, int, int], ...] = field(repr=False)
    plane: tuple[int, int] | None = field(default=None, repr=False)
    mixing: bool = False

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def tzyx(self) -> tuple[int, int, int, int]:
        return (1,) * (4 - len(self.shape)) + tuple(self.shape)  # type: ignore[return-value]

    @property
    def n_frames(self) -> int:
        t, z, _, _ = self.tzyx
        return t * z

    @property
    def n_slabs(self) -> int:
        return len(self.slabs)

    @property
    def slab_grid(self) -> tuple[int, int]:
        """(number of slab rows along t, number along z)."""
        t, z, _, _ = self.tzyx
        return -(-t // self.slab_t), -(-z // self.slab_z)

    def slab_of_frame(self, k: int) -> int:
        _, z, _, _ = self.tzyx
        ti, zi = divmod(k, z)
        return (ti // self.slab_t) * self.slab_grid[1] + zi // self.slab_z

    def slab_frames(self, s: int) -> tuple[range, range]:
        """The t and z ranges of slab ``s`` (its frames are coded t-major)."""
        t, z, _, _ = self.tzyx
        return slab_ranges(t, z, self.slab_t, self.slab_z, s)


def slab_ranges(t: int, z: int, slab_t: int, slab_z: int, s: int) -> tuple[range, range]:
    """The t and z ranges of slab ``s``; slabs are numbered z-fastest."""
    ts, zs = divmod(s, -(-z // slab_z))
    return (range(ts * slab_t, min(t, (ts + 1) * slab_t)), range(zs * slab_z, min(z, (zs + 1) * slab_z)))


def slab_count(t: int, z: int, slab_t: int, slab_z: int) -> int:
    return (-(-t // slab_t)) * (-(-z // slab_z))


def pack_header(shape_tzyx, ndim, dtype, bits_stored, effort, near, slab_z, slab_t, mask,
                slabs, plane, mixing=False) -> bytes:
    """Header + slab table; ``slabs`` holds (offset, length, crc) with absolute offsets."""
    t, z, y, x = shape_tzyx
    flags = (FLAG_HIGH_PLANE if plane else 0) | (FLAG_MIXING if mixing else 0)
    po, pl = plane if plane else (0, 0)
    head = _HEAD.pack(MAGIC, FORMAT_VERSION, flags, ndim, dtype_code(dtype), bits_stored, effort,
                      near, t, z, y, x, slab_z, slab_t, len(slabs), po, pl, mask)
    head += struct.pack("<I", zlib.crc32(head))
    table = b"".join(SLAB_ENTRY.pack(*s) for s in slabs)
    return head + table + struct.pack("<I", zlib.crc32(table))


def table_size(n_slabs: int) -> int:
    return HEADER_SIZE + SLAB_ENTRY.size * n_slabs + 4


def read_header(buf, *, max_voxels: int = DEFAULT_MAX_VOXELS) -> Header:
    """Parse and fully validate the header and slab table of ``buf`` (bytes-like).

    Nothing is allocated in proportion to what the header declares until every size has been
    checked against the buffer and against ``max_voxels``.
    """
    if isinstance(max_voxels, bool) or not isinstance(max_voxels, numbers.Integral) or max_voxels < 1:
        raise InvalidArgumentError(f"max_voxels must be a positive integer, got {max_voxels!r}")
    mv = memoryview(buf).cast("B") if not isinstance(buf, (bytes, bytearray)) else buf
    n = len(mv)
    if n < 8 or bytes(mv[:8]) != MAGIC:
        raise FormatError("not a volcodec stream: magic bytes 89 56 4F 4C 43 0D 0A 1A not found")
    if n < HEADER_SIZE:
        raise TruncatedError(f"stream of {n} bytes ends inside the {HEADER_SIZE}-byte header")
    (_, version, flags, ndim, dcode, bits, effort, near, t, z, y, x, slab_z, slab_t, n_slabs, po, pl,
     mask) = _HEAD.unpack_from(mv, 0)
    if version > FORMAT_VERSION or version == 0:
        raise UnsupportedVersionError(
            f"format version {version} is not supported (this decoder reads 1..{FORMAT_VERSION})")
    (crc,) = struct.unpack_from("<I", mv, 64)
    if zlib.crc32(mv[:64]) != crc:
        raise ChecksumError("header checksum mismatch: the header is corrupted", slab=None)
    if flags & ~KNOWN_FLAGS:
        raise FormatError(f"unknown header flags 0x{flags:04x}")
    if ndim not in (3, 4):
        raise FormatError(f"ndim must be 3 or 4, found {ndim}")
    if dcode not in DTYPES:
        raise FormatError(f"unknown dtype code {dcode} (expected 1..6)")
    dtype = DTYPES[dcode]
    if not 1 <= bits <= dtype.itemsize * 8:
        raise FormatError(f"bits_stored {bits} outside 1..{dtype.itemsize * 8} for {dtype}")
    if ndim == 3 and t != 1:
        raise FormatError(f"a 3-D stream must have T = 1, found {t}")
    for name, v in (("T", t), ("Z", z), ("Y", y), ("X", x)):
        if not 1 <= v <= MAX_DIM:
            raise FormatError(f"dimension {name} = {v} outside 1..{MAX_DIM}")
    # division-form overflow-safe voxel cap
    if t > max_voxels // z or t * z > max_voxels // y or t * z * y > max_voxels // x:
        raise LimitError(f"volume of {t}x{z}x{y}x{x} voxels exceeds max_voxels = {max_voxels}")
    if not (1 <= slab_z and 1 <= slab_t):
        raise FormatError(f"slab sizes must be >= 1, found slab_z={slab_z}, slab_t={slab_t}")
    expect = slab_count(t, z, min(slab_t, t), min(slab_z, z))
    if slab_z > z or slab_t > t or n_slabs != expect:
        raise FormatError(f"slab table of {n_slabs} slabs does not match shape and slab sizes "
                          f"(expected {expect}, slab_z={slab_z} <= Z={z}, slab_t={slab_t} <= T={t})")
    tsize = table_size(n_slabs)
    if n < tsize:
        raise TruncatedError(f"stream of {n} bytes ends inside the slab table ({tsize} bytes)")
    table = mv[HEADER_SIZE:tsize - 4]
    (tcrc,) = struct.unpack_from("<I", mv, tsize - 4)
    if zlib.crc32(table) != tcrc:
        raise ChecksumError("slab table checksum mismatch: the table is corrupted", slab=None)
    slabs = []
    need = 0  # the slabs' minimum lengths, summed
    for i in range(n_slabs):
        off, length, scrc = SLAB_ENTRY.unpack_from(table, i * SLAB_ENTRY.size)
        if length < 1 or off < tsize or off > n or length > n - off:
            raise TruncatedError(f"slab {i} at offset {off}, length {length} lies outside the "
                                 f"{n}-byte stream")
        tr, zr = slab_ranges(t, z, slab_t, slab_z, i)
        frames = len(tr) * len(zr)
        floor = slab_floor(frames, y, x)
        if length < floor:
            raise FormatError(f"slab {i} of {frames} frames of {y}x{x} voxels cannot fit in "
                              f"{length} bytes (at least {floor} needed)")
        slabs.append((off, length, scrc))
        need += floor
    # payloads never overlap in a stream the encoder writes; without this, n entries pointing at
    # the same bytes would declare n times the voxels those bytes can hold
    if need > n - tsize:
        raise FormatError(f"the {n_slabs} slabs need at least {need} bytes together, the stream has "
                          f"{n - tsize} after its slab table")
    plane = None
    if flags & FLAG_HIGH_PLANE:
        if po < tsize or po > n or pl > n - po or pl < HEADER_SIZE:
            raise TruncatedError(f"high-bits plane at offset {po}, length {pl} lies outside the "
                                 f"{n}-byte stream")
        plane = (po, pl)
    shape = (z, y, x) if ndim == 3 else (t, z, y, x)
    return Header(version, shape, dtype, bits, effort, near, slab_z, slab_t, mask, tuple(slabs), plane,
                  bool(flags & FLAG_MIXING))


def check_slab(buf, header: Header, s: int):
    """Return slab ``s``'s payload after verifying its checksum."""
    off, length, crc = header.slabs[s]
    payload = memoryview(buf)[off:off + length]
    if zlib.crc32(payload) != crc:
        raise ChecksumError(f"slab {s} checksum mismatch: the slab's bytes are corrupted", slab=s)
    return payload
