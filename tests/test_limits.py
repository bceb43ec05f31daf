"""Hostile sizes and garbage: what a stream declares is checked against the buffer and max_voxels
before anything is allocated in proportion to it, and garbage that passes every checksum still
ends, quickly, in pixels or a VolcodecError.

Streams are forged with struct + zlib.crc32 from docs/format.md (as in test_format.py), so the
kernels see bytes no encoder wrote.
"""

from __future__ import annotations

import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import volcodec
from volcodec import format as fmt
from volcodec.errors import CorruptDataError, FormatError, VolcodecError

from test_format import HEAD, volume, with_payload

PROFILE = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow])


def stream(ndim, dcode, bits, tzyx, slab_z, slab_t, entries, payload_area: bytes, flags=0, mask=1,
           n_slabs=None, plane=(0, 0)) -> bytes:
    """A stream from raw field values: header, table of ``entries`` (offset, length; crcs computed
    over ``payload_area``, which starts right after the table), then ``payload_area``."""
    t, z, y, x = tzyx
    n = len(entries) if n_slabs is None else n_slabs
    head = HEAD.pack(fmt.MAGIC, 1, flags, ndim, dcode, bits, 1, 0, t, z, y, x, slab_z, slab_t, n,
                     *plane, mask)
    base = 68 + 20 * len(entries) + 4
    whole = bytes(base) + payload_area
    table = b"".join(struct.pack("<QQI", o, ln, zlib.crc32(whole[o:o + ln])) for o, ln in entries)
    return head + struct.pack("<I", zlib.crc32(head)) + table + struct.pack("<I", zlib.crc32(table)) + \
        payload_area


@pytest.fixture(scope="module", autouse=True)
def warm_kernels():
    """Load or compile every scan first: numba's own allocations are not the decoder's."""
    for effort in (1, 9):
        volcodec.decode(volcodec.encode(volume((2, 2, 3, 3), "uint8"), effort=effort))


def peak_bytes(call) -> tuple[int, object]:
    """Peak traced allocation while ``call()`` runs, and its result or the VolcodecError raised."""
    tracemalloc.start()
    try:
        try:
            result = call()
        except VolcodecError as exc:
            result = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result


# --------------------------------------------------------------------------- declared sizes


def test_overlapping_slab_entries_cannot_multiply_the_volume():
    # 64 entries all pointing at one 200-byte payload: each alone may declare 1 x 1024 x 1584
    # voxels (its minimum length, 2 + voxels / 8192, is 200), together 100 MB of output
    n, length = 64, 200
    base = 68 + 20 * n + 4
    payload = bytes([fmt.SLAB_CODED, fmt.REF_NONE]) + bytes(length - 2)
    buf = stream(3, 1, 8, (1, n, 1024, 1584), 1, 1, [(base, length)] * n, payload)
    for call in (volcodec.read_header, volcodec.decode, lambda b: volcodec.decode_frames(b, [0]),
                 lambda b: volcodec.decode(b, strict=False)):
        peak, err = peak_bytes(lambda: call(buf))
        assert isinstance(err, FormatError) and err.code == 10 and "together" in err.message
        assert peak < 1 << 20
    # one entry pointing at that payload is legal and decodes (to whatever the zeros say)
    one = stream(3, 1, 8, (1, 1, 1024, 1584), 1, 1, [(68 + 20 + 4, length)], payload)
    assert volcodec.read_header(one).n_slabs == 1


def test_largest_volume_a_100_byte_stream_can_declare_is_small():
    # one slab, 100 - 92 = 8 payload bytes: at most 1 + 1 + (voxels >> 13) = 8, so 57343 voxels
    payload = bytes([fmt.SLAB_CODED, fmt.REF_NONE]) + bytes(6)
    buf = stream(3, 6, 32, (1, 1, 1, 57343), 1, 1, [(92, 8)], payload)
    assert len(buf) == 100
    peak, out = peak_bytes(lambda: volcodec.decode(buf))
    assert isinstance(out, (np.ndarray, CorruptDataError))
    assert peak < 8 << 20, f"{peak} bytes for a 100-byte stream"
    too_big = stream(3, 6, 32, (1, 1, 1, 57344), 1, 1, [(92, 8)], payload)
    with pytest.raises(FormatError, match="cannot fit"):
        volcodec.read_header(too_big)


@st.composite
def hundred_byte_streams(draw):
    """100 bytes with valid checksums: a consistent header declaring small or huge sizes, with up
    to two fields then set to any value (so most examples get past the first checks)."""
    ndim = draw(st.sampled_from([3, 4]))
    dcode = draw(st.integers(1, 6))
    bits = draw(st.integers(1, fmt.DTYPES[dcode].itemsize * 8))
    dim = st.one_of(st.integers(1, 64), st.integers(1, 1 << 20), st.integers(1, 2048))
    t = 1 if ndim == 3 else draw(dim)
    z, y, x = draw(dim), draw(dim), draw(dim)
    slab_z, slab_t = min(z, 65535), min(t, 65535)
    f = {"ndim": ndim, "dcode": dcode, "bits": bits, "tzyx": (t, z, y, x), "slab_z": slab_z,
         "slab_t": slab_t, "n_slabs": fmt.slab_count(t, z, slab_t, slab_z) & 0xFFFFFFFF,
         "flags": draw(st.sampled_from([0, fmt.FLAG_MIXING])), "plane": (0, 0),
         "mask": draw(st.integers(0, (1 << 20) - 1)), "entry": (92, 8)}
    u = st.integers
    hostile = {"ndim": u(0, 255), "dcode": u(0, 255), "bits": u(0, 255), "slab_z": u(0, 65535),
               "slab_t": u(0, 65535), "n_slabs": u(0, (1 << 32) - 1), "flags": u(0, 65535),
               "plane": st.tuples(u(0, 120), u(0, 120)), "mask": u(0, (1 << 32) - 1),
               "entry": st.tuples(st.sampled_from([0, 91, 92, 99, 100, 1 << 63]), u(0, (1 << 64) - 1)),
               "tzyx": st.tuples(u(0, (1 << 32) - 1), u(0, (1 << 32) - 1), u(0, (1 << 32) - 1),
                                 u(0, (1 << 32) - 1))}
    for name in draw(st.sets(st.sampled_from(sorted(hostile)), max_size=2)):
        f[name] = draw(hostile[name])
    payload = bytes([draw(st.sampled_from([0, 0, 1, 2])), draw(st.sampled_from([0, 0, 1, 5]))]) + \
        draw(st.binary(min_size=6, max_size=6))
    buf = stream(f["ndim"], f["dcode"], f["bits"], f["tzyx"], f["slab_z"], f["slab_t"], [f["entry"]],
                 payload, flags=f["flags"], mask=f["mask"], n_slabs=f["n_slabs"], plane=f["plane"])
    return buf[:100]


@PROFILE
@given(hundred_byte_streams())
def test_a_100_byte_stream_never_allocates_more_than_megabytes(buf):
    assert len(buf) == 100
    for call in (volcodec.read_header, volcodec.decode, lambda b: volcodec.decode(b, strict=False),
                 lambda b: volcodec.decode_frames(b, [0])):
        peak, result = peak_bytes(lambda: call(buf))
        assert peak < 8 << 20, f"{peak} bytes allocated for a 100-byte stream"


# --------------------------------------------------------------------------- garbage reaches the kernels


GARBAGE_CASES = {
    # name: (array, encode options); the payloads are then replaced by garbage with valid CRCs
    "uint32 32 bits, mixing, two references": (
        (np.indices((2, 3, 5, 6)).sum(0) * 1_000_003).astype(np.uint32), {"effort": 9, "bits_stored": 32}),
    "int16, one predictor": (volume((3, 6, 7), "int16"), {"effort": 1}),
    "uint8 1 bit": ((np.indices((2, 5, 5)).sum(0) % 2).astype(np.uint8), {"effort": 5, "bits_stored": 1}),
    "int8 4-D mixing": (volume((2, 2, 4, 9), "int8"), {"effort": 7, "bits_stored": 8}),
}


@pytest.mark.parametrize("name", sorted(GARBAGE_CASES))
def test_garbage_coded_slabs_with_valid_checksums_end_quickly(name):
    a, kw = GARBAGE_CASES[name]
    buf = volcodec.encode(a, slab=2, slab_t=2, **kw)
    hdr = volcodec.read_header(buf)
    rng = np.random.default_rng(len(name))
    start = time.perf_counter()
    outcomes = set()
    for trial in range(40):
        s = int(rng.integers(hdr.n_slabs))
        off, ln, _ = hdr.slabs[s]
        tr, zr = hdr.slab_frames(s)
        head = bytearray(buf[off:off + 1 + len(tr) * len(zr)])  # mode byte and valid reference codes
        head[0] = fmt.SLAB_CODED
        size = int(rng.integers(0, 3 * ln))
        body = (rng.integers(0, 256, size, dtype=np.uint8).tobytes(), b"\xff" * size, b"\x00" * size)[trial % 3]
        bad = with_payload(buf, s, bytes(head) + body)
        for call in (volcodec.decode, lambda b: volcodec.decode_frames(b, [hdr.n_frames - 1, 0])):
            try:
                out = call(bad)
            except CorruptDataError as exc:
                assert exc.slab == s
                outcomes.add("corrupt")
            except FormatError as exc:  # a garbage payload shorter than the minimum slab length
                assert "cannot fit" in exc.message
                outcomes.add("too short")
            else:
                assert out.dtype == a.dtype
                outcomes.add("pixels")
    # each decode is milliseconds; a hang or a loop driven by garbage would blow far past this
    assert time.perf_counter() - start < 60
    assert "pixels" in outcomes
