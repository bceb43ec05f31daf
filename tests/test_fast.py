"""The fast scan (slab modes 2 to 5, format versions 2 to 5; kernels/fast.py): round trips at the
edges of its token alphabets and of run mode, the compiled kernel against the same code run as
plain Python, and damaged or impossible fast-scan payloads. (Streams of modes 2 to 4 are also
decoded by the v2 to v4 fixtures.)

Small inputs only, so the file also runs under ``NUMBA_DISABLE_JIT=1``.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_format import forge, with_payload

import volcodec
from volcodec import codec
from volcodec import format as fmt
from volcodec.errors import CorruptDataError
from volcodec.kernels import fast
from volcodec.kernels import rangecoder as rcm
from volcodec.kernels import scan


def _smooth(shape, dtype, seed=0, step=40):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    walk = np.cumsum(rng.integers(-step, step + 1, shape), axis=-1) + (int(info.min) + int(info.max)) // 2
    return np.clip(walk, info.min, info.max).astype(dtype)


def _modes(buf):
    return [buf[off] for off, _, _ in volcodec.read_header(buf).slabs]


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "uint32", "int32"])
def test_default_effort_uses_the_fast_scan_and_round_trips(dtype):
    a = _smooth((4, 9, 13), dtype, seed=3, step=40 if np.dtype(dtype).itemsize > 1 else 2)
    buf = volcodec.encode(a)
    assert volcodec.read_header(buf).version == fmt.FORMAT_VERSION == 7
    assert fmt.SLAB_FAST8P in _modes(buf)
    np.testing.assert_array_equal(volcodec.decode(buf), a)


@pytest.mark.parametrize("mode", [2, 3, 4, 5, 6])
def test_escape_tokens_and_extremes_round_trip(monkeypatch, mode):
    # a smooth field (small shift s) with sparse full-range spikes: residuals far beyond what the
    # other tokens cover (u < 16 in mode 5, u < 128 before) take the escape; the extremes check
    # the wrap-around
    a = _smooth((3, 16, 16), "int32", seed=5, step=3)
    rng = np.random.default_rng(6)
    idx = rng.integers(0, a.size, 40)
    a.flat[idx] = rng.integers(-(1 << 31), (1 << 31) - 1, 40, endpoint=True)
    a.flat[:2] = (-(1 << 31), (1 << 31) - 1)
    monkeypatch.setattr(codec, "_FAST_MODE", mode)  # the older modes' encoders, too
    buf = volcodec.encode(a)
    assert mode in _modes(buf)
    np.testing.assert_array_equal(volcodec.decode(buf), a)


def test_fast_scan_4d_and_decode_frames():
    a = _smooth((3, 5, 8, 7), "uint16", seed=8)
    buf = volcodec.encode(a, slab=2, slab_t=2)
    assert set(_modes(buf)) == {fmt.SLAB_FAST8P}
    np.testing.assert_array_equal(volcodec.decode(buf), a)
    flat = a.reshape(-1, 8, 7)
    for k in (0, 6, 14):
        np.testing.assert_array_equal(volcodec.decode_frames(buf, [k])[0], flat[k])


@pytest.mark.parametrize("near", [1, 3, 1000])
def test_fast_scan_near_lossless_when_asked(monkeypatch, near):
    """The encoder sends near-lossless data to the binary scan; the fast scan's own near path
    (a decoder must read it) is checked by switching that off."""
    a = _smooth((3, 10, 12), "int16", seed=9)
    assert not set(fmt.FAST_MODES) & set(_modes(volcodec.encode(a, near=near)))
    monkeypatch.setattr(codec, "_FAST_NEAR", True)
    buf = volcodec.encode(a, near=near)
    assert fmt.SLAB_FAST8P in _modes(buf)
    assert volcodec.max_abs_error(volcodec.decode(buf), a) <= near


def _flat_patches(shape, dtype, seed):
    """Runs of every kind: flat patches (runs stopping short, at the row's end, at the limit the
    row above sets, longer than the biggest block), noise between them, and lone pixels in them."""
    rng = np.random.default_rng(seed)
    a = _smooth(shape, dtype, seed=seed, step=20)
    info = np.iinfo(dtype)
    for _ in range(3 * int(np.prod(shape[:-2]))):
        y0, x0 = rng.integers(0, shape[-2] - 1), rng.integers(0, shape[-1] - 1)
        h, w = rng.integers(2, shape[-2] + 1), rng.integers(2, shape[-1] + 1)
        lead = tuple(rng.integers(0, n) for n in shape[:-2])
        a[lead + (slice(y0, y0 + h), slice(x0, x0 + w))] = rng.choice([info.min, info.max, 0, 7])
    idx = rng.integers(0, a.size, a.size // 50)
    a.flat[idx] = a.flat[idx] + 1 if info.max > 1000 else a.flat[idx] // 2
    a[..., -3:, :] = a[..., -4:-3, :]  # whole rows that repeat the row above
    return a


@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32"])
@pytest.mark.parametrize("mode", [4, 5, 6])
def test_runs_round_trip(monkeypatch, dtype, mode):
    monkeypatch.setattr(codec, "_FAST_MODE", mode)
    a = _flat_patches((2, 3, 40, 37), dtype, seed=21)
    buf = volcodec.encode(a, slab=3, slab_t=2)
    assert set(_modes(buf)) == {mode}
    np.testing.assert_array_equal(volcodec.decode(buf), a)
    np.testing.assert_array_equal(volcodec.decode_frames(buf, [4])[0], a[1, 1])


def _assert_relabelled_does_not_decode(a, buf, written, relabel):
    """Slab 0 of ``buf`` (mode ``written``) relabelled ``relabel`` still parses but does not give
    ``a`` back (other pixels, or a stream that runs out), while ``buf`` itself does: the decoder
    takes its coding from the mode byte."""
    off, length, _ = volcodec.read_header(buf).slabs[0]
    payload = bytearray(buf[off:off + length])
    assert payload[0] == written
    payload[0] = relabel
    got, damaged = volcodec.decode(with_payload(buf, 0, bytes(payload)), strict=False)
    assert damaged.any() or not np.array_equal(got, a)
    np.testing.assert_array_equal(volcodec.decode(buf), a)


@pytest.mark.parametrize("older", [3, 4, 5])
def test_a_mode_6_payload_relabelled_older_does_not_decode(older):
    """Mode 3 has no runs, mode 4 has 16 tokens, mode 5 starts its models at 1/2: a mostly flat
    mode-6 payload relabelled any of them does not give the volume back, so the decoder does take
    its coding from the mode byte."""
    a = np.zeros((2, 64, 64), np.uint16)
    a[:, 20:40, 10:50] = _smooth((2, 20, 40), "uint16", seed=22, step=30)
    _assert_relabelled_does_not_decode(a, volcodec.encode(a, slab=2), fmt.SLAB_FAST8P, older)


def test_a_blank_slab_is_padded_to_the_floor_the_decoder_checks():
    """Runs code a constant frame of 2048 rows in one decision per row, under the floor of one
    byte per 8192 voxels that stops a tiny file from declaring a huge volume: the encoder pads
    the payload up to that floor."""
    a = np.full((2, 2048, 64), 1234, np.uint16)
    buf = volcodec.encode(a, slab=2)
    hdr = volcodec.read_header(buf)
    _, length, _ = hdr.slabs[0]
    assert length == fmt.slab_floor(2, 2048, 64)
    np.testing.assert_array_equal(volcodec.decode(buf), a)


@pytest.mark.parametrize("near", [1, 4])
def test_runs_keep_the_near_bound(monkeypatch, near):
    """Near-lossless runs take voxels within ``near`` of W (the fast scan's near path, which a
    decoder must read, switched on)."""
    rng = np.random.default_rng(23)
    a = _flat_patches((3, 24, 30), "int16", seed=23)
    a += rng.integers(-near, near + 1, a.shape).astype(np.int16) * (a == 7)
    monkeypatch.setattr(codec, "_FAST_NEAR", True)
    buf = volcodec.encode(a, near=near)
    assert fmt.SLAB_FAST8P in _modes(buf)
    assert volcodec.max_abs_error(volcodec.decode(buf), a) <= near


def _run_frame(compiled, dec, frame, bits, signed, recip, buf=None, runs=0, depth=fast.DEPTH):
    """One frame through the compiled scan (or, ``compiled`` False, its plain-Python twin); returns
    the padded frame, the state, and the two output buffers."""
    kernel_fn = fast.KERNELS[dec, depth, int(bits <= fast.PACKED_BITS)]
    kernel_fn = kernel_fn if compiled else getattr(kernel_fn, "py_func", kernel_fn)
    y, x = frame.shape
    work = codec._Work(y, x, bits)
    P = work.frame()
    if not dec:
        work.interior(P)[...] = frame
    minval, maxval = codec._value_range(bits, signed)
    bias = np.zeros((scan.N_BIAS, 3), np.int64)
    bias[:, 1] = 1
    if dec:  # one payload, as the decoder sees it: range-coded bytes, then the raw bits
        rcbuf = rbuf = np.concatenate([buf[0], buf[1]])
        end = rstart = len(buf[0])
    else:
        rcbuf = np.zeros(4 * frame.size + 64, np.uint8)
        rbuf = np.zeros(8 * frame.size + 64, np.uint8)
        end = len(rcbuf)
        rstart = 0
    st = fast.new_state()
    st[:3] = rcm.rc_start(rcbuf, 0, end, dec)
    st[5] = rstart
    kernel_fn(P, work.dummy, 0, y, x, minval, maxval, bits, 0, work.eb, fast.new_tree(depth),
              fast.TABLES, bias.reshape(-1), recip, st, rcbuf, end, rbuf, len(rbuf), runs,
              rcm.new_models(fast.N_RUN))
    return P, st, rcbuf, rbuf


@pytest.mark.parametrize("mode", [2, 3, 4, 5])
def test_compiled_scan_matches_plain_python(mode):
    """The same source run by numba and by the interpreter must write the same bytes and decode
    them the same way (catches integer-width and shift semantics that differ under the JIT)."""
    recip = codec._TABLES[1] if mode == 2 else fast.RECIP_PRIOR
    runs = int(mode >= 4)
    depth = fast.DEPTH if mode == 5 else fast.DEPTH_OLD
    frame = _smooth((9, 11), "int16", seed=11, step=300)
    frame[2, 3], frame[5, 7] = -32768, 32767
    frame[4:8, 2:] = 5  # flat rows for run mode: runs to the row's end, and one cut short
    frame[6, 9] = 6
    outs = []
    for compiled in (True, False):
        _, st, rcbuf, rbuf = _run_frame(compiled, 0, frame, 16, True, recip, runs=runs, depth=depth)
        n = int(rcm.rc_flush(st[0], st[1], st[2], rcbuf, len(rcbuf)))
        rn = int(fast.bw_flush(st[3], st[4], st[5], rbuf, len(rbuf)))
        outs.append((rcbuf[:n].copy(), rbuf[:rn].copy()))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    for compiled in (True, False):
        P, _, _, _ = _run_frame(compiled, 1, np.zeros_like(frame), 16, True, recip, buf=outs[0], runs=runs,
                                depth=depth)
        np.testing.assert_array_equal(P[scan.PAD_TOP:scan.PAD_TOP + 9, scan.PAD_SIDE:scan.PAD_SIDE + 11], frame)


@pytest.mark.parametrize("dtype", ["uint16", "int16", "uint8"])
def test_packed_error_rows_write_the_same_bytes_as_three_rows(monkeypatch, dtype):
    """Data of at most 16 bits gets the kernels whose error rows share one int64 (lanes of 21
    bits); they must write exactly what the three-row kernels write, including at the extremes
    (errors near 2**17 against a reference frame, where a lane that carried would show)."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(31)
    a = _flat_patches((4, 20, 26), dtype, seed=31)
    # alternate extremes between slices and within rows: the reference predictor p can land a
    # whole range outside [min, max], so |x - p| approaches 2 * (2**16 - 1)
    a[1::2] = np.where(rng.random((2, 20, 26)) < 0.5, info.min, info.max)
    a[2, ::3] = info.max
    packed = volcodec.encode(a, slab=4)
    assert _modes(packed) == [fmt.SLAB_FAST8P]
    monkeypatch.setattr(fast, "PACKED_BITS", 0)  # every size now takes the three-row kernels
    wide = volcodec.encode(a, slab=4)
    assert packed == wide
    np.testing.assert_array_equal(volcodec.decode(packed), a)


def _fast_stream():
    buf = volcodec.encode(_smooth((2, 12, 12), "uint16", seed=12), slab=2)
    assert _modes(buf) == [fmt.SLAB_FAST8P]
    return buf


@pytest.mark.parametrize("mode, version", [(2, 1), (3, 1), (3, 2), (4, 2), (4, 3), (5, 4), (6, 5), (7, 6)])
def test_a_mode_newer_than_the_stream_version_is_refused(mode, version):
    buf = _fast_stream()
    off, length, _ = volcodec.read_header(buf).slabs[0]
    payload = bytearray(buf[off:off + length])
    payload[0] = mode
    buf = forge(with_payload(buf, 0, bytes(payload)), version=version)
    with pytest.raises(CorruptDataError, match=f"mode {mode} does not exist in format version {version}"):
        volcodec.decode(buf)


def test_modes_2_and_3_differ_only_in_the_bias_means(monkeypatch):
    """A mode-3 payload relabelled mode 2 still parses (same layout) but does not give the volume
    back (other pixels, or a stream that runs out): the decoder picks the bias table by mode."""
    a = _smooth((2, 24, 24), "int16", seed=13, step=200)
    monkeypatch.setattr(codec, "_FAST_MODE", fmt.SLAB_FAST2)  # the encoder writes mode 3
    _assert_relabelled_does_not_decode(a, volcodec.encode(a, slab=2), fmt.SLAB_FAST2, fmt.SLAB_FAST)


def test_range_coded_length_beyond_the_payload_is_refused():
    buf = _fast_stream()
    off, length, _ = volcodec.read_header(buf).slabs[0]
    payload = bytearray(buf[off:off + length])
    payload[3:7] = (length * 4).to_bytes(4, "little")  # mode byte, 2 reference codes, then the u32
    with pytest.raises(CorruptDataError, match="overruns"):
        volcodec.decode(with_payload(buf, 0, bytes(payload)))


def test_truncated_raw_bits_are_detected():
    buf = _fast_stream()
    off, length, _ = volcodec.read_header(buf).slabs[0]
    payload = bytes(buf[off:off + length])
    with pytest.raises(CorruptDataError, match="slab 0"):
        volcodec.decode(with_payload(buf, 0, payload[:len(payload) - 12]))


def test_mode_6_token_models_start_at_the_prior():
    from volcodec.kernels import fast

    plain, prior = fast.new_tree(), fast.new_tree(prior=True)
    assert plain.shape == prior.shape and (plain >> 8 == 1 << 15).all() and not (prior & 255).any()
    nodes = prior[:fast.N_CTX * 8].reshape(fast.N_CTX, 8)
    want = np.round(fast.TREE_PRIOR8[1:] * 65536)
    assert ((nodes[:, 1:] >> 8) == want).all()
    assert (prior[fast.N_CTX * 8:] == plain[fast.N_CTX * 8:]).all()  # the leaves' unused children


def _spiky_ct(seed):
    """CT-like slices: a smooth body, air at -1000, and a few metal spikes (the outliers that move
    an unclipped bias sum)."""
    a = _smooth((3, 32, 32), "int16", seed=seed, step=40) - 1000
    a[:, :, :6] = -1000
    a[:, 10:12, 20] = 3000
    return a


def test_the_binary_scan_writes_mode_7_and_still_reads_mode_0(monkeypatch):
    a = _spiky_ct(31)
    for effort, near in ((2, 0), (7, 0), (1, 2)):  # near-lossless takes the binary scan too
        buf = volcodec.encode(a, effort=effort, near=near)
        assert set(_modes(buf)) == {fmt.SLAB_CODED2}
        assert volcodec.max_abs_error(volcodec.decode(buf), a) <= near
    monkeypatch.setattr(codec, "_BINARY_MODE", fmt.SLAB_CODED)  # the encoder of versions 1-6
    buf0 = volcodec.encode(a, effort=2)
    assert set(_modes(buf0)) == {fmt.SLAB_CODED}
    np.testing.assert_array_equal(volcodec.decode(buf0), a)


def test_a_mode_7_payload_relabelled_mode_0_does_not_decode():
    """Mode 7 differs from mode 0 only in its clipped bias errors: relabelled, the payload parses
    but the volume does not come back, so the decoder takes the clipping from the mode byte."""
    a = _spiky_ct(32)
    buf = volcodec.encode(a, effort=2, slab=3)
    _assert_relabelled_does_not_decode(a, buf, fmt.SLAB_CODED2, fmt.SLAB_CODED)
