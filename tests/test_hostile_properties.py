"""Properties over damaged streams, with hypothesis: truncation at every byte position, random byte
corruption (checksums kept and checksums repaired, so the damage reaches the kernels), random
headers. Every outcome is the right pixels or a VolcodecError, never another exception.

Kept fast for CI: tiny arrays, a fixed number of derandomized examples.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import volcodec
from volcodec.errors import (
    ChecksumError,
    CorruptDataError,
    FormatError,
    TruncatedError,
    VolcodecError,
)

from test_properties import cases

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))
from repair import fix_checksums  # noqa: E402  (fuzz/repair.py, shared with the fuzz targets)

PROFILE = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def small_streams(draw):
    """(array, stream): the round-trip tests' volumes (any dtype, 3-D or 4-D, several slabs, any
    effort, high-bits planes), encoded."""
    a, kw, _, _ = draw(cases())
    return a, volcodec.encode(a, **kw)


@PROFILE
@given(small_streams())
def test_truncation_at_every_byte_is_an_error(case):
    a, buf = case
    frames = a.reshape(-1, *a.shape[-2:])
    for n in range(len(buf)):
        for call in (volcodec.read_header, volcodec.decode, lambda b: volcodec.decode_frames(b, [0]),
                     lambda b: volcodec.decode(b, strict=False)):
            try:
                call(buf[:n])
            except VolcodecError as exc:
                # before the magic: not a stream; after it, every declared byte is missing
                assert type(exc) is FormatError if n < 8 else isinstance(exc, TruncatedError), (n, exc)
            else:
                raise AssertionError(f"stream cut to {n} of {len(buf)} bytes was accepted")
    np.testing.assert_array_equal(volcodec.decode_frames(buf, [len(frames) - 1]), frames[-1:])


@PROFILE
@given(small_streams(), st.data())
def test_any_changed_byte_is_detected(case, data):
    """Every byte of a stream is covered by a checksum (or is one): any change is an error."""
    a, buf = case
    pos = data.draw(st.integers(0, len(buf) - 1), label="pos")
    value = data.draw(st.integers(0, 255).filter(lambda v: v != buf[pos]), label="value")
    bad = bytearray(buf)
    bad[pos] = value
    try:
        volcodec.decode(bytes(bad))
    except VolcodecError as exc:
        assert isinstance(exc, (ChecksumError, FormatError)), exc
    else:
        raise AssertionError(f"byte {pos} changed to {value} went unnoticed")


@PROFILE
@given(small_streams(), st.data())
def test_corruption_behind_repaired_checksums(case, data):
    """Random bytes changed and every CRC recomputed (the fuzzers' trick): pixels or an error,
    and recovery mode agrees with strict mode on every intact frame."""
    a, buf = case
    bad = bytearray(buf)
    for _ in range(data.draw(st.integers(1, 4), label="n")):
        pos = data.draw(st.integers(0, len(buf) - 1), label="pos")
        bad[pos] = data.draw(st.integers(0, 255), label="value")
    bad = fix_checksums(bytes(bad))
    try:
        hdr = volcodec.read_header(bad)
    except VolcodecError:
        return
    strict = None
    try:
        strict = volcodec.decode(bad)
    except VolcodecError:
        pass
    else:
        assert strict.shape == hdr.shape and strict.dtype == hdr.dtype
    try:
        got, damaged = volcodec.decode(bad, strict=False)
    except VolcodecError as exc:
        # recovery raises only for what locates the slabs (header, table, the plane's header)
        assert strict is None
        assert not (isinstance(exc, (ChecksumError, CorruptDataError)) and exc.slab is not None), exc
        return
    assert damaged.shape == hdr.shape[:-2] and not got[damaged].any()
    if strict is not None:
        assert not damaged.any()
        np.testing.assert_array_equal(got, strict)
    else:
        assert damaged.any() or hdr.plane is not None


HEAD = struct.Struct("<8sHHBBBBI4IHHIQQI")


# docs/format.md, "Header": the 18 fields before the header crc, and their sizes in bytes
HEAD = struct.Struct("<8sHHBBBBI4IHHIQQI")
SIZES = (8, 2, 2, 1, 1, 1, 1, 4, 4, 4, 4, 4, 2, 2, 4, 8, 8, 4)
VERSION, EFFORT, NEAR, PLANE_OFFSET, PLANE_LENGTH = 1, 6, 7, 15, 16


@PROFILE
@given(small_streams(), st.data())
def test_random_header_fields(case, data):
    """Any value in any header field (checksums fixed): pixels or a VolcodecError. The header can
    be forged at will, so other pixels are no error in general; but fields the decoder must not
    depend on (effort) or must refuse (version, near) never change the pixels."""
    a, buf = case
    fields = list(HEAD.unpack_from(buf, 0))
    changed = data.draw(st.sets(st.integers(1, len(fields) - 1), min_size=1, max_size=3), label="fields")
    for i in changed:
        fields[i] = data.draw(st.integers(0, (1 << (8 * SIZES[i])) - 1), label=f"field {i}")
    head = HEAD.pack(*fields)
    bad = fix_checksums(head + struct.pack("<I", zlib.crc32(head)) + buf[68:])
    for call in (volcodec.read_header, volcodec.decode, lambda b: volcodec.decode_frames(b, [0]),
                 lambda b: volcodec.decode(b, strict=False)):
        try:
            out = call(bad)
        except VolcodecError:
            continue
        if call is volcodec.decode and changed <= {VERSION, EFFORT, NEAR, PLANE_OFFSET, PLANE_LENGTH}:
            np.testing.assert_array_equal(out, a)
