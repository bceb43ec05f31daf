"""Near-lossless coding (near > 0) and multi-threaded slabs.

The bound |decoded - original| <= near must hold for every voxel of every dtype and bit depth,
at the ends of the range (reconstruction is clamped, never wrapped), with a high-bits plane, in 4-D
and across slabs; the bytes must not depend on the thread count.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_properties import PROFILE, cases

import volcodec
from volcodec import InvalidArgumentError


def _ct_like(shape, seed=0):
    rng = np.random.default_rng(seed)
    g = np.indices(shape).sum(0)
    return (np.rint(300 * np.sin(g / 5.0) + rng.normal(0, 20, shape))).astype(np.int16)


@PROFILE
@given(cases(), st.sampled_from([1, 2, 3, 7, 100, 65535, 2**32 - 1]), st.data())
def test_error_never_exceeds_near(case, near, data):
    a, kw, _, _ = case
    buf = volcodec.encode(a, near=near, **kw)
    hdr = volcodec.read_header(buf)
    assert hdr.near == near
    out = volcodec.decode(buf)
    assert out.dtype == a.dtype and out.shape == a.shape
    assert volcodec.max_abs_error(out, a) <= near
    frames = out.reshape(-1, *out.shape[-2:])
    idx = data.draw(st.lists(st.integers(0, len(frames) - 1), min_size=1, max_size=4), label="frames")
    np.testing.assert_array_equal(volcodec.decode_frames(buf, idx), frames[idx])


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "uint32", "int32"])
def test_small_extremes_are_clamped_not_wrapped(dtype):
    info = np.iinfo(dtype)
    a = np.empty((3, 6, 7), dtype)
    a[0] = info.min
    a[1] = info.max
    a[2] = np.where(np.indices((6, 7)).sum(0) % 2 == 0, info.min, info.max)
    for near in (1, 2, 5):
        out = volcodec.decode(volcodec.encode(a, near=near, effort=2))
        assert volcodec.max_abs_error(out, a) <= near


def test_small_high_bits_plane_keeps_the_bound_at_the_dtype_ends():
    # 32767 = 16 * 2048 - 1: the low part is -1 in 11 bits; a low part reconstructed as 0 would
    # carry into the high part and wrap to -32768 without the final clamp
    a = np.full((2, 5, 6), 32767, np.int16)
    a[1] = -32768
    a[:, ::2, ::3] = 12345
    for near in (1, 3):
        out = volcodec.decode(volcodec.encode(a, bits_stored=11, near=near))
        assert volcodec.max_abs_error(out, a) <= near


def test_small_near_reduces_size_and_is_lossless_at_zero():
    a = _ct_like((6, 20, 24))
    sizes = [len(volcodec.encode(a, near=n)) for n in (0, 1, 2, 4)]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < sizes[0]
    np.testing.assert_array_equal(volcodec.decode(volcodec.encode(a, near=0)), a)


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, "1", None, True])
def test_small_invalid_near_is_refused(bad):
    with pytest.raises(InvalidArgumentError, match="near"):
        volcodec.encode(np.zeros((1, 2, 2), np.uint8), near=bad)


def test_small_verify_option_checks_the_new_stream(monkeypatch):
    a = _ct_like((4, 9, 10))
    assert volcodec.encode(a, near=2, verify=True) == volcodec.encode(a, near=2)

    # a decoder that returns wrong pixels must make verify fail, not pass silently
    from volcodec import codec

    real = codec.decode
    monkeypatch.setattr(codec, "decode", lambda *args, **kw: real(*args, **kw) + np.int16(3))
    with pytest.raises(volcodec.VerifyError, match="above the bound near = 2"):
        volcodec.encode(a, near=2, verify=True)


# --------------------------------------------------------------------------- threads
@pytest.mark.parametrize("near", [0, 2])
def test_small_bytes_do_not_depend_on_thread_count(near):
    a = np.stack([_ct_like((7, 9, 11), seed) for seed in range(3)])  # 4-D, several slabs
    streams = {t: volcodec.encode(a, slab=2, slab_t=2, near=near, threads=t) for t in (1, 2, 3, None)}
    assert len(set(streams.values())) == 1
    buf = streams[1]
    ref = volcodec.decode(buf, threads=1)
    for t in (2, 5, None):
        np.testing.assert_array_equal(volcodec.decode(buf, threads=t), ref)
    idx = [20, 0, 9, 9, 13]
    np.testing.assert_array_equal(volcodec.decode_frames(buf, idx, threads=2),
                                  ref.reshape(-1, 9, 11)[idx])


@pytest.mark.parametrize("bad", [0, -2, 1.0, "2"])
def test_small_invalid_threads_are_refused(bad):
    a = np.zeros((1, 2, 2), np.uint8)
    with pytest.raises(InvalidArgumentError, match="threads"):
        volcodec.encode(a, threads=bad)
    with pytest.raises(InvalidArgumentError, match="threads"):
        volcodec.decode(volcodec.encode(a), threads=bad)
