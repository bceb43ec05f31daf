"""Round-trip properties with hypothesis: any shape, dtype, bit depth, pattern, slab size and effort
decodes bit-exact, whole and frame by frame.

The profile is fixed (derandomize, no example database) so CI runs the same examples every time;
arrays are drawn as (pattern, seed) and built with numpy, which keeps each example cheap.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import volcodec

PROFILE = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow])

DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32"]
PATTERNS = ["zeros", "max", "min", "alternating", "noise", "ramp", "smooth", "sparse spikes", "garbage high bits"]


def value_range(dtype: np.dtype, bits: int) -> tuple[int, int]:
    if dtype.kind == "i":
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def build(shape, dtype, bits, pattern, seed) -> np.ndarray:
    """A volume of ``pattern`` whose values fit ``bits`` stored bits (except "garbage high bits")."""
    dtype = np.dtype(dtype)
    lo, hi = value_range(dtype, bits)
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    g = np.indices(shape).sum(0)
    if pattern == "zeros":
        v = np.zeros(shape, np.int64)
    elif pattern == "max":
        v = np.full(shape, hi)
    elif pattern == "min":
        v = np.full(shape, lo)
    elif pattern == "alternating":
        v = np.where(g % 2 == 0, lo, hi)
    elif pattern == "noise":
        v = rng.integers(lo, hi, shape, endpoint=True)
    elif pattern == "ramp":
        v = lo + (g * max(1, (hi - lo) // (g.max() + 1))) % (hi - lo + 1)
    elif pattern == "smooth":
        v = np.clip(np.rint((lo + hi) / 2 + (hi - lo) / 4 * np.sin(g / 2.0) + rng.normal(0, 1, shape)), lo, hi)
    elif pattern == "sparse spikes":
        v = np.full(shape, (lo + hi) // 2)
        v[rng.random(shape) < 0.1] = hi
        v[rng.random(shape) < 0.1] = lo
    else:
        v = rng.integers(info.min, info.max, shape, endpoint=True)
    return v.astype(np.int64).astype(dtype)


@st.composite
def cases(draw):
    ndim = draw(st.sampled_from([3, 4]))
    zyx = (draw(st.integers(1, 7)), draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    shape = zyx if ndim == 3 else (draw(st.integers(1, 3)),) + zyx
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    bits = draw(st.integers(1, dtype.itemsize * 8))
    pattern = draw(st.sampled_from(PATTERNS))
    seed = draw(st.integers(0, 2**32 - 1))
    kw = {"effort": draw(st.integers(1, 9)), "slab": draw(st.integers(1, 8)), "slab_t": draw(st.integers(1, 4))}
    if pattern == "garbage high bits" or draw(st.booleans()):
        kw["bits_stored"] = bits
    layout = draw(st.sampled_from(["contiguous", "reversed", "strided", "fortran", "big-endian"]))
    return build(shape, dtype, bits, pattern, seed), kw, layout, pattern


def relayout(a: np.ndarray, layout: str) -> np.ndarray:
    """The same values in another memory layout (the stream must not depend on it)."""
    if layout == "reversed":
        return a[::-1, :, ::-1].copy()[::-1, :, ::-1]  # negative strides, same values
    if layout == "strided":
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "big-endian":
        return a.astype(a.dtype.newbyteorder(">"))
    return a


@PROFILE
@given(cases(), st.data())
def test_round_trip_is_bit_exact(case, data):
    a, kw, layout, _ = case
    src = relayout(a, layout)
    buf = volcodec.encode(src, **kw)
    assert buf == volcodec.encode(a, **kw), "the stream depends on the memory layout"
    out = volcodec.decode(buf)
    assert out.dtype == a.dtype and out.shape == a.shape
    np.testing.assert_array_equal(out, a)

    hdr = volcodec.read_header(buf)
    assert hdr.shape == a.shape and hdr.effort == kw["effort"]
    if "bits_stored" in kw:
        assert hdr.bits_stored == kw["bits_stored"]
    lo, hi = value_range(a.dtype, hdr.bits_stored)
    assert (hdr.plane is None) == bool(lo <= a.min() and a.max() <= hi)

    frames = a.reshape(-1, *a.shape[-2:])
    idx = data.draw(st.lists(st.integers(0, len(frames) - 1), min_size=1, max_size=5), label="frames")
    np.testing.assert_array_equal(volcodec.decode_frames(buf, idx), frames[idx])


@PROFILE
@given(cases())
def test_stream_never_exceeds_raw_size_plus_slab_overhead(case):
    a, kw, _, _ = case
    buf = volcodec.encode(a, **kw)
    hdr = volcodec.read_header(buf)
    slab_frames = [len(t) * len(z) for t, z in (hdr.slab_frames(s) for s in range(hdr.n_slabs))]
    overhead = volcodec.format.table_size(hdr.n_slabs) + sum(1 + n for n in slab_frames)
    if hdr.plane is None:
        assert len(buf) <= a.nbytes + overhead
