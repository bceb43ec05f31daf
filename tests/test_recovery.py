"""Corruption is detected and contained: a flipped bit in a slab is a ChecksumError naming the
slab, the other slabs still decode, and ``strict=False`` returns what is intact plus a mask of the
damaged frames (docs/errors.md, "Damaged streams").
"""

from __future__ import annotations

import numpy as np
import pytest

import volcodec
from volcodec import format as fmt
from volcodec.errors import ChecksumError, CorruptDataError, InvalidArgumentError, TruncatedError

from test_format import forge, volume, with_payload


@pytest.fixture(scope="module")
def series():
    """4-D int16, 2 x 2 slabs (slab_t=1, slab=2 over Z=3), with a high-bits plane."""
    a = volume((2, 3, 4, 5), "int16", seed=3)
    a.flat[7] = 30000
    buf = volcodec.encode(a, bits_stored=8, slab=2, slab_t=1, effort=9)
    hdr = volcodec.read_header(buf)
    assert hdr.n_slabs == 4 and hdr.plane is not None
    return a, buf, hdr


def _flip(buf: bytes, pos: int, bit: int = 0) -> bytes:
    b = bytearray(buf)
    b[pos] ^= 1 << bit
    return bytes(b)


def _slab_mask(hdr, s) -> np.ndarray:
    m = np.zeros(hdr.tzyx[:2], bool)
    tr, zr = hdr.slab_frames(s)
    m[tr.start:tr.stop, zr.start:zr.stop] = True
    return m.reshape(hdr.shape[:-2])


def test_intact_stream_recovers_everything(series):
    a, buf, _ = series
    got = volcodec.decode(buf, strict=False)
    assert isinstance(got, volcodec.Recovered)
    arr, damaged = got
    np.testing.assert_array_equal(arr, a)
    assert damaged.shape == a.shape[:-2] and damaged.dtype == bool and not damaged.any()
    frames, fdamaged = volcodec.decode_frames(buf, [5, 0, 5], strict=False)
    np.testing.assert_array_equal(frames, a.reshape(-1, 4, 5)[[5, 0, 5]])
    assert fdamaged.tolist() == [False, False, False]


@pytest.mark.parametrize("s", range(4))
def test_every_bit_of_a_slab_is_covered(series, s):
    """Every bit position of the slab, flipped alone: ChecksumError naming it; the rest recovers."""
    a, buf, hdr = series
    off, ln, _ = hdr.slabs[s]
    want = a.copy()
    mask = _slab_mask(hdr, s)
    want[mask] = 0
    for pos in range(off, off + ln):
        for bit in range(8):
            bad = _flip(buf, pos, bit)
            with pytest.raises(ChecksumError) as e:
                volcodec.decode(bad)
            assert e.value.slab == s and e.value.code == 20
    # recovery checked on a few of them (the decode is the slow part)
    for pos in (off, off + ln // 2, off + ln - 1):
        arr, damaged = volcodec.decode(_flip(buf, pos, 5), strict=False)
        np.testing.assert_array_equal(damaged, mask)
        np.testing.assert_array_equal(arr, want)


def test_decode_frames_recovery_marks_requested_frames(series):
    a, buf, hdr = series
    frames = a.reshape(-1, 4, 5)
    off, ln, _ = hdr.slabs[1]  # t = 0, z = 2
    bad = _flip(buf, off + ln // 2)
    idx = [2, 0, 2, 4]
    with pytest.raises(ChecksumError) as e:
        volcodec.decode_frames(bad, idx)
    assert e.value.slab == 1
    got, damaged = volcodec.decode_frames(bad, idx, strict=False)
    assert damaged.tolist() == [True, False, True, False]
    np.testing.assert_array_equal(got[~damaged], frames[[0, 4]])
    assert not got[damaged].any()
    np.testing.assert_array_equal(volcodec.decode_frames(bad, [0, 1, 3, 4, 5]), frames[[0, 1, 3, 4, 5]])


def test_damaged_plane_slab_marks_its_frames(series):
    a, buf, hdr = series
    po, _ = hdr.plane
    plane = volcodec.read_header(buf[po:])
    off, ln, _ = plane.slabs[2]
    bad = _flip(buf, po + off + ln - 1)
    with pytest.raises(ChecksumError):
        volcodec.decode(bad)
    arr, damaged = volcodec.decode(bad, strict=False)
    np.testing.assert_array_equal(damaged, _slab_mask(plane, 2))
    np.testing.assert_array_equal(arr[~damaged], a[~damaged])
    assert not arr[damaged].any()


def test_corrupt_data_with_valid_checksum_is_recovered(series):
    a, buf, hdr = series
    off, ln, _ = hdr.slabs[3]
    payload = bytearray(buf[off:off + ln])
    payload[0] = 200  # unknown payload mode
    bad = with_payload(buf, 3, bytes(payload))
    with pytest.raises(CorruptDataError) as e:
        volcodec.decode(bad)
    assert e.value.slab == 3
    arr, damaged = volcodec.decode(bad, strict=False)
    np.testing.assert_array_equal(damaged, _slab_mask(hdr, 3))
    np.testing.assert_array_equal(arr[~damaged], a[~damaged])


def test_recovery_into_out(series):
    a, buf, hdr = series
    out = np.full(a.shape, -1, a.dtype)
    off, ln, _ = hdr.slabs[0]
    arr, damaged = volcodec.decode(_flip(buf, off + 1), out=out, strict=False)
    assert arr is out and not out[damaged].any()
    np.testing.assert_array_equal(out[~damaged], a[~damaged])


def test_header_and_table_damage_still_raise(series):
    _, buf, _ = series
    for pos in (20, 64, 68 + 3, 68 + 20 * 4):  # a header field, the header crc, an entry, the table crc
        bad = _flip(buf, pos)
        for call in (lambda b: volcodec.decode(b, strict=False),
                     lambda b: volcodec.decode_frames(b, [0], strict=False)):
            with pytest.raises(ChecksumError) as e:
                call(bad)
            assert e.value.slab is None
    with pytest.raises(TruncatedError):
        volcodec.decode(buf[:-1], strict=False)  # the plane's end is gone: nothing locates it


def test_a_3d_stream_mask_is_per_slice():
    a = volume((5, 3, 4), "uint16", seed=1)
    buf = volcodec.encode(a, slab=2)
    hdr = volcodec.read_header(buf)
    off, _, _ = hdr.slabs[1]
    arr, damaged = volcodec.decode(_flip(buf, off + 2), strict=False)
    assert damaged.tolist() == [False, False, True, True, False]
    np.testing.assert_array_equal(arr[~damaged], a[~damaged])


@pytest.mark.parametrize("strict", [0, 1, None, "no"])
def test_strict_must_be_a_bool(series, strict):
    _, buf, _ = series
    with pytest.raises(InvalidArgumentError, match="strict"):
        volcodec.decode(buf, strict=strict)
    with pytest.raises(InvalidArgumentError, match="strict"):
        volcodec.decode_frames(buf, [0], strict=strict)


def test_raw_slab_damage_is_contained():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 1 << 16, (4, 3, 3), dtype=np.uint16)
    buf = volcodec.encode(a, slab=2)
    hdr = volcodec.read_header(buf)
    assert all(buf[off] == fmt.SLAB_RAW for off, _, _ in hdr.slabs)
    off, ln, _ = hdr.slabs[0]
    bad = _flip(buf, off + ln - 1, 7)
    with pytest.raises(ChecksumError, match="slab 0"):
        volcodec.decode(bad)
    arr, damaged = volcodec.decode(bad, strict=False)
    assert damaged.tolist() == [True, True, False, False]
    np.testing.assert_array_equal(arr[2:], a[2:])


def test_forged_header_fields_are_not_recoverable(series):
    _, buf, _ = series
    with pytest.raises(volcodec.FormatError):
        volcodec.decode(forge(buf, ndim=5), strict=False)
