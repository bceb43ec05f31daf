"""codec.py: encode/decode round trips on small volumes, decode_frames, out=, argument checks.

Volumes are tiny on purpose: numba compiles the kernels once per process, and the whole module also
runs as plain Python with ``NUMBA_DISABLE_JIT=1`` (docs/design.md, "Testing").
"""

from __future__ import annotations

import numpy as np
import pytest

import volcodec
from volcodec import format as fmt
from volcodec import codec
from volcodec.errors import InvalidArgumentError
from volcodec.params import EFFORTS

DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32"]


def ct_like(shape, dtype, seed=0, bits=None, noise=0.01):
    """A smooth volume with an edge and a little noise, inside the range of ``bits`` stored bits."""
    dtype = np.dtype(dtype)
    bits = bits or dtype.itemsize * 8
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if dtype.kind == "i" else (0, (1 << bits) - 1)
    rng = np.random.default_rng(seed)
    grids = np.indices(shape, dtype=np.float64)
    span = hi - lo
    v = lo + span * (0.3 + 0.2 * np.sin(grids[-1] / 3.0) * np.cos(grids[-2] / 4.0) + 0.03 * grids[-3])
    v += (grids[-1] > shape[-1] / 2) * span * 0.2 + rng.normal(0, max(span * noise, 0.6), shape)
    return np.clip(np.rint(v), lo, hi).astype(dtype)


def full_range_noise(shape, dtype, seed=0):
    info = np.iinfo(dtype)
    return np.random.default_rng(seed).integers(info.min, info.max, shape, endpoint=True, dtype=dtype)


def assert_round_trip(a, **kw):
    buf = volcodec.encode(a, **kw)
    out = volcodec.decode(buf)
    assert out.dtype == a.dtype.newbyteorder("=") and out.shape == a.shape
    np.testing.assert_array_equal(out, a)
    return buf


def frames_of(a):
    return a.reshape((-1,) + a.shape[-2:])


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("effort", range(1, 10))
@pytest.mark.parametrize("dtype", DTYPES)
def test_small_round_trip_every_dtype_and_effort(dtype, effort):
    a3 = ct_like((3, 5, 6), dtype, seed=effort)
    buf = assert_round_trip(a3, effort=effort)
    hdr = volcodec.read_header(buf)
    assert hdr.effort == effort and hdr.predictor_mask == EFFORTS[effort].predictor_mask
    a4 = ct_like((2, 3, 4, 5), dtype, seed=effort)
    assert_round_trip(a4, effort=effort, slab=2, slab_t=2)


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 1, 7), (1, 7, 1), (2, 1, 1), (3, 1, 5), (3, 5, 1), (1, 2, 3, 3),
                                   (3, 1, 1, 1), (2, 3, 1, 4), (1, 1, 1, 1)])
def test_small_degenerate_shapes(shape):
    for dtype in ("uint8", "int16", "int32"):
        assert_round_trip(ct_like(shape, dtype), effort=9, slab=2, slab_t=2)
        assert_round_trip(full_range_noise(shape, dtype), effort=9, slab=2, slab_t=2)


@pytest.mark.parametrize("slab", [1, 2, 3, 64])
def test_small_slab_sizes_3d(slab):
    a = ct_like((5, 4, 6), "int16")
    buf = assert_round_trip(a, slab=slab)
    hdr = volcodec.read_header(buf)
    assert hdr.slab_z == min(slab, 5) and hdr.slab_t == 1
    assert hdr.n_slabs == -(-5 // min(slab, 5))


@pytest.mark.parametrize("slab,slab_t", [(1, 1), (2, 1), (1, 2), (2, 3), (9, 9), (3, 2)])
def test_small_slab_sizes_4d(slab, slab_t):
    a = ct_like((3, 4, 5, 6), "uint16", bits=12)
    buf = assert_round_trip(a, slab=slab, slab_t=slab_t, effort=9)
    hdr = volcodec.read_header(buf)
    assert (hdr.slab_t, hdr.slab_z) == (min(slab_t, 3), min(slab, 4))
    assert hdr.slab_grid == (-(-3 // hdr.slab_t), -(-4 // hdr.slab_z))


def _bits_cases():
    return [(dt, b) for dt in DTYPES for b in range(1, np.dtype(dt).itemsize * 8 + 1)]


@pytest.mark.parametrize("dtype,bits", _bits_cases())
def test_small_every_bits_stored(dtype, bits):
    dtype = np.dtype(dtype)
    a = ct_like((2, 4, 5), dtype, seed=bits, bits=bits)
    buf = assert_round_trip(a, bits_stored=bits)
    hdr = volcodec.read_header(buf)
    assert hdr.bits_stored == bits and hdr.plane is None
    # the extremes of the declared range, alternating
    if dtype.kind == "i":
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        lo, hi = 0, (1 << bits) - 1
    alt = np.where(np.indices(a.shape).sum(0) % 2 == 0, lo, hi).astype(dtype)
    assert_round_trip(alt, bits_stored=bits)


@pytest.mark.parametrize("dtype,bits", _bits_cases())
def test_small_garbage_high_bits_come_back(dtype, bits):
    # words with bits set above bits_stored (and, for signed data, low bits that read as negative)
    a = full_range_noise((2, 3, 4), dtype, seed=bits)
    a.flat[0], a.flat[1] = np.iinfo(dtype).max, np.iinfo(dtype).min
    buf = assert_round_trip(a, bits_stored=bits, slab=1)
    hdr = volcodec.read_header(buf)
    assert hdr.bits_stored == bits
    width = np.dtype(dtype).itemsize * 8
    assert (hdr.plane is None) == (bits == width)
    idx = [1, 0, 1]
    np.testing.assert_array_equal(volcodec.decode_frames(buf, idx), frames_of(a)[idx])


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_garbage_high_bits_4d_and_a_few_words(dtype):
    width = np.dtype(dtype).itemsize * 8
    bits = max(1, width - 4)
    a = ct_like((2, 3, 4, 5), dtype, bits=bits)
    a.flat[7] = np.iinfo(dtype).max  # one word with high bits set
    a.flat[11] = np.iinfo(dtype).min
    buf = assert_round_trip(a, bits_stored=bits, slab=2, slab_t=1)
    assert volcodec.read_header(buf).plane is not None
    idx = [4, 1, 1, 0]
    np.testing.assert_array_equal(volcodec.decode_frames(buf, idx), frames_of(a)[idx])


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_default_bits_stored_is_smallest_width(dtype):
    a = ct_like((2, 3, 4), dtype, bits=5)
    a.flat[:2] = (-16, 15) if np.dtype(dtype).kind == "i" else (0, 31)
    assert volcodec.read_header(volcodec.encode(a)).bits_stored == 5
    z = np.zeros((1, 2, 2), dtype)
    assert volcodec.read_header(volcodec.encode(z)).bits_stored == 1
    info = np.iinfo(dtype)
    m = np.array([[[info.min, info.max]]], dtype)
    assert volcodec.read_header(assert_round_trip(m)).bits_stored == info.bits


# --------------------------------------------------------------------------- layouts of the input


def test_small_non_contiguous_inputs_give_the_same_stream():
    base = ct_like((6, 8, 10), "int16")
    views = {
        "step slices": base[::2, 1::3, ::-2],
        "transposed": base.transpose(2, 0, 1),
        "fortran": np.asfortranarray(base),
        "big-endian": base.astype(">i2"),
        "big-endian view": base.astype(">i2")[1:4, ::2],
        "4-D from 3-D": base.reshape(2, 3, 8, 10)[:, ::-1],
    }
    for name, v in views.items():
        buf = assert_round_trip(v, slab=2)
        assert buf == volcodec.encode(np.ascontiguousarray(v.astype(v.dtype.newbyteorder("="))), slab=2), name
    for dt in (">u2", ">i4", ">u4", ">i2"):
        a = ct_like((2, 3, 4), dt.replace(">", "<")).astype(dt)
        assert_round_trip(a)
        assert_round_trip(a, bits_stored=3)  # high-bits plane from a big-endian source


def test_small_encode_is_deterministic_and_does_not_modify_input():
    a = ct_like((3, 4, 5), "uint16", bits=10)
    keep = a.copy()
    assert volcodec.encode(a, effort=9) == volcodec.encode(a, effort=9)
    np.testing.assert_array_equal(a, keep)


def test_small_decode_accepts_bytes_like():
    a = ct_like((2, 3, 4), "int8")
    buf = volcodec.encode(a)
    arr = np.frombuffer(buf, np.uint8)
    strided = np.zeros(2 * len(buf), np.uint8)
    strided[::2] = arr
    for b in (buf, bytearray(buf), memoryview(buf), arr, strided[::2]):
        np.testing.assert_array_equal(volcodec.decode(b), a)
        np.testing.assert_array_equal(volcodec.decode_frames(b, [1]), a[1:2])
        assert volcodec.read_header(b).shape == a.shape
    for bad in ("not bytes", 12, None):
        with pytest.raises(InvalidArgumentError):
            volcodec.decode(bad)


# --------------------------------------------------------------------------- out=


@pytest.mark.parametrize("plane", [False, True])
def test_small_decode_into_out(plane):
    a = ct_like((3, 4, 5), "int16", bits=12)
    buf = volcodec.encode(a, bits_stored=6 if plane else 12)
    assert (volcodec.read_header(buf).plane is not None) == plane
    out = np.zeros_like(a)
    assert volcodec.decode(buf, out=out) is out
    np.testing.assert_array_equal(out, a)
    # non-contiguous, transposed and big-endian targets are filled in place
    big = np.zeros((3, 8, 5), np.int16)
    assert volcodec.decode(buf, out=big[:, ::2]) is not None
    np.testing.assert_array_equal(big[:, ::2], a)
    assert not big[:, 1::2].any()
    t = np.zeros((5, 4, 3), np.int16).T
    volcodec.decode(buf, out=t)
    np.testing.assert_array_equal(t, a)
    be = np.zeros(a.shape, ">i2")
    volcodec.decode(buf, out=be)
    np.testing.assert_array_equal(be, a)


def test_small_decode_into_out_4d():
    a = ct_like((2, 3, 4, 5), "uint8")
    out = np.empty_like(a)
    volcodec.decode(volcodec.encode(a, slab=2), out=out)
    np.testing.assert_array_equal(out, a)


def test_small_decode_out_wrong_shape_dtype_or_readonly():
    a = ct_like((3, 4, 5), "int16")
    buf = volcodec.encode(a)
    ro = np.zeros_like(a)
    ro.flags.writeable = False
    for bad in (np.zeros((3, 4, 6), np.int16), np.zeros((1, 3, 4, 5), np.int16), np.zeros((3, 4, 5), np.uint16),
                np.zeros((3, 4, 5), np.int32), np.zeros((3, 4, 5), np.float64), ro, a.tolist()):
        with pytest.raises(InvalidArgumentError):
            volcodec.decode(buf, out=bad)


# --------------------------------------------------------------------------- decode_frames


def test_small_decode_frames_3d():
    a = ct_like((7, 4, 5), "uint16", bits=11)
    buf = volcodec.encode(a, slab=3)
    full = volcodec.decode(buf).reshape(-1, 4, 5)
    for idx in ([0], [6], [3], [2, 3], [6, 0, 3], [4, 4, 4], [5, 1, 5, 0, 6, 2], list(range(7))[::-1]):
        got = volcodec.decode_frames(buf, idx)
        assert got.shape == (len(idx), 4, 5) and got.dtype == a.dtype
        np.testing.assert_array_equal(got, full[idx])
    np.testing.assert_array_equal(volcodec.decode_frames(buf, np.array([2, 0], np.uint8)), full[[2, 0]])
    np.testing.assert_array_equal(volcodec.decode_frames(buf, 4), full[[4]])
    assert volcodec.decode_frames(buf, []).shape == (0, 4, 5)


@pytest.mark.parametrize("slab,slab_t", [(1, 1), (2, 2), (3, 1), (9, 9)])
def test_small_decode_frames_4d(slab, slab_t):
    T, Z = 3, 4
    a = ct_like((T, Z, 3, 5), "int16", bits=12)
    buf = volcodec.encode(a, slab=slab, slab_t=slab_t, effort=9)
    full = volcodec.decode(buf).reshape(-1, 3, 5)
    np.testing.assert_array_equal(full, frames_of(a))
    every = list(range(T * Z))
    for idx in ([0], [T * Z - 1], [1 * Z + 2], [2 * Z + 0, 0 * Z + 3, 2 * Z + 0], every, every[::-1], [5, 5]):
        np.testing.assert_array_equal(volcodec.decode_frames(buf, idx), full[idx])
    for k in every:  # frame k = t * Z + z
        t, z = divmod(k, Z)
        np.testing.assert_array_equal(volcodec.decode_frames(buf, [k])[0], a[t, z])


def test_small_decode_frames_bad_indices():
    buf = volcodec.encode(ct_like((3, 2, 2), "uint8"))
    for bad in ([3], [-1], [0, 99], [1.5], [True], "1", None, [[0, 1], [2, 5]]):
        with pytest.raises(InvalidArgumentError):
            volcodec.decode_frames(buf, bad)


# --------------------------------------------------------------------------- invalid arguments


@pytest.mark.parametrize("kw", [
    {"effort": 0}, {"effort": 10}, {"effort": "5"}, {"effort": 5.0}, {"effort": None}, {"effort": True},
    {"slab": 0}, {"slab": -1}, {"slab": 65536}, {"slab": "2"}, {"slab_t": 0}, {"slab_t": 65536},
    {"near": -1}, {"near": "0"}, {"near": 0.5},
    {"bits_stored": 0}, {"bits_stored": 17}, {"bits_stored": -3}, {"bits_stored": 12.0},
    {"bits_stored": "12"},
])
def test_small_invalid_keyword_arguments(kw):
    with pytest.raises(InvalidArgumentError):
        volcodec.encode(np.zeros((2, 2, 2), np.int16), **kw)


@pytest.mark.parametrize("array", [
    np.zeros((2, 2, 2), np.float32), np.zeros((2, 2, 2), np.float64), np.zeros((2, 2, 2), np.int64),
    np.zeros((2, 2, 2), np.uint64), np.zeros((2, 2, 2), bool), np.zeros((2, 2, 2), np.complex64),
    np.zeros((4, 4), np.uint16), np.zeros(4, np.uint16), np.zeros((1, 1, 1, 1, 1), np.uint16),
    np.zeros((0, 4, 4), np.int16), np.zeros((2, 0, 4), np.int16), np.zeros((1, 2, 3, 0), np.uint8),
    np.array(3, np.int16), [[[1, 2], [3, 4]]], [[[1, 2], [3]]], "volume", None,
    np.zeros((1, 1, fmt.MAX_DIM + 1), np.uint8),
], ids=lambda a: f"{getattr(a, 'dtype', type(a).__name__)}{getattr(a, 'shape', '')}")
def test_small_invalid_arrays(array):
    with pytest.raises(InvalidArgumentError):
        volcodec.encode(array)


def test_small_bits_stored_bound_is_the_dtype_width():
    for dt in DTYPES:
        width = np.dtype(dt).itemsize * 8
        with pytest.raises(InvalidArgumentError):
            volcodec.encode(np.zeros((1, 2, 2), dt), bits_stored=width + 1)


def test_small_numpy_integer_arguments():
    a = np.zeros((2, 2, 2), np.int16)
    volcodec.encode(a, effort=np.int64(3), slab=np.uint8(2), bits_stored=np.int32(4))  # numpy integers


# --------------------------------------------------------------------------- incompressible data


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_noise_falls_back_to_raw_slabs(dtype):
    a = full_range_noise((4, 6, 7), dtype, seed=3)
    buf = assert_round_trip(a, slab=2, effort=9)
    hdr = volcodec.read_header(buf)
    frames_per_slab = 2
    overhead = fmt.table_size(hdr.n_slabs) + hdr.n_slabs * (1 + frames_per_slab)
    assert len(buf) <= a.nbytes + overhead
    assert all(buf[off] == fmt.SLAB_RAW for off, _, _ in hdr.slabs)


def test_small_smooth_data_is_coded_and_smaller():
    a = ct_like((4, 16, 16), "int16", bits=12, noise=0.001)
    buf = assert_round_trip(a, slab=2)
    hdr = volcodec.read_header(buf)
    assert all(buf[off] in fmt.CODED_MODES for off, _, _ in hdr.slabs)
    assert len(buf) < 0.6 * a.nbytes


def test_small_mixed_raw_and_coded_slabs():
    a = ct_like((4, 8, 8), "uint16", bits=12)
    a[2:] = full_range_noise((2, 8, 8), "uint16")
    buf = assert_round_trip(a, slab=2)
    hdr = volcodec.read_header(buf)
    # default effort: the fast scan
    assert [buf[off] for off, _, _ in hdr.slabs] == [fmt.SLAB_FAST8P, fmt.SLAB_RAW]
    for k in range(4):
        np.testing.assert_array_equal(volcodec.decode_frames(buf, [k])[0], a[k])


@pytest.mark.parametrize("max_voxels", [None, "1000"])
def test_small_max_voxels_must_be_an_integer(max_voxels):
    buf = volcodec.encode(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(InvalidArgumentError):
        volcodec.decode(buf, max_voxels=max_voxels)


@pytest.mark.parametrize("z, want",
                         [(1, 1), (8, 8), (12, 8), (16, 8), (33, 16), (41, 10), (64, 16), (500, 16)])
def test_small_auto_slab_lets_two_threads_share_the_work(z, want):
    """The slab size encode() picks in 3-D: 8..16 slices, the largest with which two threads
    finish within 3% of the best split (41 slices: 10+10 | 10+10+1, not 16+9 | 16)."""
    assert codec.auto_slab(1, z) == want
    sizes = [min(want, z - z0) for z0 in range(0, z, want)]
    assert codec._two_thread_makespan(sizes) <= 1.03 * min(
        codec._two_thread_makespan([min(s, z - z0) for z0 in range(0, z, s)])
        for s in range(min(8, z), min(16, z) + 1))


def test_small_default_slab_is_auto_and_an_explicit_slab_is_kept():
    a = np.arange(41 * 3 * 4, dtype=np.uint16).reshape(41, 3, 4)
    assert volcodec.read_header(volcodec.encode(a)).slab_z == 10
    assert volcodec.read_header(volcodec.encode(a, slab=16)).slab_z == 16
    assert volcodec.read_header(volcodec.encode(np.stack([a, a]))).slab_z == 16  # a 4-D series: 16
    assert codec._two_thread_makespan([16, 16, 9]) == 25


def test_every_coded_mode_has_its_coding():
    """A new slab mode needs its row in the codec's tables: what the fast scan does in it, or the
    binary scan's bias clip."""
    assert set(codec._FAST_CODING) == set(fmt.FAST_MODES)
    assert set(codec._BINARY_CLIP) == set(fmt.BINARY_MODES)
