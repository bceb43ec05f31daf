"""kernels/: the small helpers against their plain-Python twins (tests/naive.py) on whole domains,
and the range coder driven directly, symbol by symbol.

Every test here is small enough to run with ``NUMBA_DISABLE_JIT=1`` (docs/design.md, "Testing").
"""

from __future__ import annotations

import itertools
import json

import naive
import numpy as np
import pytest

from volcodec._jit import kernel
from volcodec.kernels import rangecoder as rcm
from volcodec.kernels import scan
from volcodec.params import EFFORTS, EffortParams

# --------------------------------------------------------------------------- drivers (test-only kernels)


def twin_model() -> naive.BitModel:
    """The plain-Python bit model with the coder's current tuning constants."""
    return naive.BitModel(rcm.FAST_SHIFT_MAX, rcm.SLOW_SHIFT_MAX)



@kernel
def _map_activity_class(acts, out):
    for i in range(acts.shape[0]):
        out[i] = scan._activity_class(acts[i])


@kernel
def _map_bitlen(vs, out):
    for i in range(vs.shape[0]):
        out[i] = rcm.bitlen(vs[i])


@kernel
def _map_med(abc, out):
    for i in range(abc.shape[0]):
        out[i] = scan._med(abc[i, 0], abc[i, 1], abc[i, 2])


@kernel
def _rc_drive(dec, kinds, args, values, probs, buf, start, end):
    """Code a symbol list: kinds[i] 0 = rc_bit with context args[i], 1 = rc_direct of args[i] bits.

    Encoder (dec=0) returns the flushed length; decoder (dec=1) writes the decoded symbols into
    ``values`` and returns the final read position.
    """
    x, rng, pos = rcm.rc_start(buf, start, end, dec)
    for i in range(kinds.shape[0]):
        if kinds[i] == 0:
            v, x, rng, pos = rcm.rc_bit(x, rng, pos, buf, end, probs, args[i], values[i], dec)
        else:
            v, x, rng, pos = rcm.rc_direct(x, rng, pos, buf, end, values[i], args[i], dec)
        if dec:
            values[i] = v
    if not dec:
        pos = rcm.rc_flush(x, rng, pos, buf, end)
    return pos


def _symbols(seed: int, n: int, n_contexts: int, direct_share: float = 0.1):
    """A random symbol list: each context has its own skew, so the models have something to learn."""
    rng = np.random.default_rng(seed)
    p_one = rng.choice([0.001, 0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.98, 0.999], n_contexts)
    kinds = (rng.random(n) < direct_share).astype(np.int64)
    ctx = rng.integers(0, n_contexts, n)
    nbits = rng.integers(1, rcm.DIRECT_MAX + 1, n)
    args = np.where(kinds == 1, nbits, ctx).astype(np.int64)
    bits = (rng.random(n) < p_one[ctx]).astype(np.int64)
    direct = rng.integers(0, 1 << 62, n) & ((np.int64(1) << nbits) - 1)
    values = np.where(kinds == 1, direct, bits).astype(np.int64)
    tuples = [("direct", int(a), int(v)) if k else ("bit", int(a), int(v)) for k, a, v in zip(kinds, args, values)]
    return kinds, args, values, tuples


# --------------------------------------------------------------------------- small kernels vs twins


def test_med_exhaustive_small_range():
    rng = range(-6, 7)
    abc = np.array(list(itertools.product(rng, rng, rng)), np.int64)
    got = np.empty(len(abc), np.int64)
    _map_med(abc, got)
    want = [naive.med(*map(int, t)) for t in abc]
    np.testing.assert_array_equal(got, want)


def test_med_small_extreme_values():
    edge = [-(1 << 32), -(1 << 31), -1, 0, 1, (1 << 31) - 1, (1 << 32) - 1, 1 << 33]
    abc = np.array(list(itertools.product(edge, edge, edge)), np.int64)
    got = np.empty(len(abc), np.int64)
    _map_med(abc, got)
    np.testing.assert_array_equal(got, [naive.med(*map(int, t)) for t in abc])


def test_bitlen_small_edges():
    vs = {0, 1, 2, 3}
    for k in range(1, 63):
        vs |= {(1 << k) - 1, 1 << k, (1 << k) + 1}
    vs = np.array(sorted(vs), np.int64)
    got = np.empty(len(vs), np.int64)
    _map_bitlen(vs, got)
    np.testing.assert_array_equal(got, [naive.bitlen(int(v)) for v in vs])


def test_bitlen_small_exhaustive_16_bits():
    vs = np.arange(1 << 16, dtype=np.int64)
    got = np.empty(len(vs), np.int64)
    _map_bitlen(vs, got)
    np.testing.assert_array_equal(got, [int(v).bit_length() for v in range(1 << 16)])


def test_bitlen_search_small_matches_bitlen():
    """The branch-free search (the fallback without numba's clz intrinsic) agrees with bitlen."""
    vs = {0, 1, 2, 3} | set(range(1 << 12))
    for k in range(1, 63):
        vs |= {(1 << k) - 1, 1 << k, (1 << k) + 1}
    vs = np.array(sorted(vs), np.int64)
    got = np.empty(len(vs), np.int64)
    _map_bitlen(vs, got)
    np.testing.assert_array_equal(got, [rcm.bitlen_search(v) for v in vs])


def test_activity_class_small_exhaustive_16_bits_and_powers_of_two():
    acts = set(range((1 << 16) + 1))
    for k in range(16, 41):
        acts |= {(1 << k) - 1, 1 << k, (1 << k) + 1, 3 << (k - 1)}
    acts = np.array(sorted(acts), np.int64)
    got = np.empty(len(acts), np.int64)
    _map_activity_class(acts, got)
    want = np.array([naive.activity_class(int(a), scan.NQ) for a in acts])
    np.testing.assert_array_equal(got, want)
    assert got.min() == 0 and got.max() == scan.NQ - 1


def test_activity_class_small_monotone_and_uses_every_class():
    acts = np.arange(1 << 20, dtype=np.int64)
    got = np.empty(len(acts), np.int64)
    _map_activity_class(acts, got)
    assert (np.diff(got) >= 0).all()
    assert set(got.tolist()) == set(range(scan.NQ))


def test_activity_class_small_twin_matches_docstring():
    # "0, 1, 2, 3, 4-5, 6-7, 8-11, 12-15, ..."
    assert [naive.activity_class(a, scan.NQ) for a in range(16)] == \
        [0, 1, 2, 3, 4, 4, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7]


@pytest.mark.parametrize("nref", [0, 1, 2])
def test_active_predictors_small_all_effort_masks(nref):
    masks = [p.predictor_mask for p in EFFORTS.values()] + [0, 1, (1 << scan.N_PRED) - 1, 1 << 40 | 2]
    out = np.full(scan.N_PRED, -1, np.int64)
    usable = scan.N_INTRA + nref * scan.N_PER_REF
    for mask in masks:
        n = scan.active_predictors(mask, nref, out)
        want = [i for i in range(usable) if mask >> i & 1] or [scan.P_MED]
        assert out[:n].tolist() == want, (mask, nref)


def test_pad_edges_small_replicates_border():
    rng = np.random.default_rng(0)
    for y, x in [(1, 1), (1, 5), (4, 1), (3, 7)]:
        inner = rng.integers(-100, 100, (y, x))
        P = np.full((y + scan.PAD_TOP + scan.PAD_BOTTOM, x + 2 * scan.PAD_SIDE), 12345, np.int64)
        P[scan.PAD_TOP:scan.PAD_TOP + y, scan.PAD_SIDE:scan.PAD_SIDE + x] = inner
        scan.pad_edges(P, y, x)
        want = np.pad(inner, ((scan.PAD_TOP, scan.PAD_BOTTOM), (scan.PAD_SIDE, scan.PAD_SIDE)), mode="edge")
        np.testing.assert_array_equal(P, want)


def test_make_tables_small():
    wtab, recip, *mixing_tables = scan.make_tables()
    e = np.arange(scan.W_TABLE_SIZE)
    np.testing.assert_array_equal(wtab, 1.0 / (e.astype(np.float64) ** 2 + 1.0))
    assert recip.dtype == np.int64 and recip[0] == 0
    assert recip[1:].tolist() == [65536 // n for n in range(1, scan.BIAS_COUNT_MAX + 1)]
    if mixing_tables:
        # squash (index d + 2048) is the logistic 4096 / (1 + exp(-d / 256)) in 12 bits, and
        # stretch (index p) its inverse; both monotone, so the mixer's probability stays in 1..4095
        squash, stretch = mixing_tables
        d = np.arange(-2048, 2048)
        assert squash.shape == (4096,) and stretch.shape == (4096,)
        assert (np.diff(squash) >= 0).all() and (np.diff(stretch) >= 0).all()
        assert squash.min() >= 1 and squash.max() <= 4095
        assert np.abs(squash - 4096 / (1 + np.exp(-d / 256))).max() < 16
        inner = slice(2048 - 1000, 2048 + 1000)  # where the curve is steep enough to invert
        assert np.abs(stretch[squash[inner]] - d[inner]).max() <= 8


def test_effort_params_small_json_round_trip():
    assert sorted(EFFORTS) == list(range(1, 10))
    for effort, p in EFFORTS.items():
        assert p.effort == effort
        assert p.predictor_mask >> scan.N_PRED == 0, "mask names a predictor that does not exist"
        assert EffortParams(**json.loads(json.dumps(p.to_json()))) == p


# --------------------------------------------------------------------------- range coder


def test_adapt_exhaustive_small_domain():
    # every observation count, both bits, and probabilities at and near the ends of the range
    probs = [1, 2, 3, 7, 8, 9, 15, 16, 17, 127, 128, 129, 32767, 32768, 65407, 65408, 65519, 65520, 65534, 65535]
    for n in range(twin_model().count_limit + 1):
        for bit in (0, 1):
            for pf in probs:
                for ps in probs:
                    got = tuple(int(v) for v in rcm.adapt(np.int64(pf), np.int64(ps), np.int64(n), bit))
                    twin = twin_model().with_state(pf, ps, n)
                    twin.update(bit)
                    assert got == twin.state(), (pf, ps, n, bit)
                    # both symbols keep a non-empty share of the interval
                    assert 1 <= got[0] <= 65535 and 1 <= got[1] <= 65535


def test_new_models_small():
    m = rcm.new_models(3)
    assert m.dtype == np.int32 and m.shape == (3, 3)
    assert m.tolist() == [list(twin_model().state())] * 3


def test_rc_small_round_trip_matches_twin_and_ideal_length():
    n_ctx = 9
    kinds, args, values, tuples = _symbols(1, 4000, n_ctx)
    cap = 4 * len(kinds) + 64
    start = 5
    buf = np.full(cap, 0xFF, np.uint8)  # 0xFF before start: a carry leaking out would show
    probs = rcm.new_models(n_ctx)
    n = _rc_drive(0, kinds, args, values.copy(), probs, buf, start, cap)
    assert start + 4 <= n <= cap
    assert (buf[:start] == 0xFF).all(), "the carry propagated into bytes before the stream"
    coded = bytes(buf[start:n])
    assert coded == naive.range_encode(tuples, n_ctx, twin_model), "bytes differ from the big-integer twin"

    # adaptive models end in the state the twin predicts
    twins = [twin_model() for _ in range(n_ctx)]
    for kind, a, v in tuples:
        if kind == "bit":
            twins[a].update(v)
    assert probs.tolist() == [list(t.state()) for t in twins]

    # within a small margin of the ideal code length (the coder truncates rng >> 16: < 0.006 bit/symbol)
    ideal = naive.ideal_bits(tuples, n_ctx, twin_model)
    actual = 8 * len(coded)
    assert ideal - 8 <= actual <= ideal + 0.006 * len(tuples) + 40, (actual, ideal)

    # decode: same symbols, and the decoder reads no further than the encoder wrote
    dbuf = np.zeros(len(coded), np.uint8)
    dbuf[:] = np.frombuffer(coded, np.uint8)
    out = np.zeros_like(values)
    pos = _rc_drive(1, kinds, args, out, rcm.new_models(n_ctx), dbuf, 0, len(coded))
    np.testing.assert_array_equal(out, values)
    assert pos <= len(coded)


@pytest.mark.parametrize("seed", range(6))
def test_rc_small_round_trip_carry_stress(seed):
    # extreme skews make long runs of 0xFF bytes, where carries propagate furthest
    n_ctx = 2
    rng = np.random.default_rng(100 + seed)
    n = 3000
    kinds = (rng.random(n) < 0.02).astype(np.int64)
    args = np.where(kinds == 1, rng.integers(1, rcm.DIRECT_MAX + 1, n), rng.integers(0, n_ctx, n))
    bits = (rng.random(n) < np.where(args == 0, 0.9995, 0.0005)).astype(np.int64)
    values = np.where(kinds == 1, (1 << args) - 1 - (rng.random(n) < 0.1), bits).astype(np.int64)
    tuples = [("direct", int(a), int(v)) if k else ("bit", int(a), int(v)) for k, a, v in zip(kinds, args, values)]
    buf = np.zeros(4 * n + 64, np.uint8)
    end = _rc_drive(0, kinds, args.astype(np.int64), values.copy(), rcm.new_models(n_ctx), buf, 0, len(buf))
    coded = bytes(buf[:end])
    assert coded == naive.range_encode(tuples, n_ctx, twin_model)
    out = np.zeros_like(values)
    _rc_drive(1, kinds, args.astype(np.int64), out, rcm.new_models(n_ctx), buf[:end].copy(), 0, end)
    np.testing.assert_array_equal(out, values)


def test_rc_small_overflow_never_writes_past_end():
    n_ctx = 4
    kinds, args, values, _ = _symbols(2, 3000, n_ctx, direct_share=0.5)
    full = np.zeros(4 * len(kinds) + 64, np.uint8)
    n_full = _rc_drive(0, kinds, args, values.copy(), rcm.new_models(n_ctx), full, 0, len(full))
    for end in (0, 1, 5, n_full // 2, n_full - 1):
        buf = np.full(n_full + 16, 0xAB, np.uint8)
        n = _rc_drive(0, kinds, args, values.copy(), rcm.new_models(n_ctx), buf, 0, end)
        assert n == n_full > end, "the length must keep counting past the end of the buffer"
        assert (buf[end:] == 0xAB).all(), f"wrote past end={end}"


def test_rc_small_decoder_on_garbage_stays_in_range():
    # the decoder never raises: on random bytes it returns bits 0/1 and direct values < 2**nbits,
    # and past the end of the data it reads zeros; all-0xFF bytes put the code value at the top of
    # the interval (each raw bit halves the interval, so a direct value cannot overflow)
    n_ctx = 5
    kinds, args, _, _ = _symbols(3, 2000, n_ctx, direct_share=0.3)
    rng = np.random.default_rng(4)
    for size, fill in ((0, None), (3, None), (50, None), (50, 0xFF)):
        buf = rng.integers(0, 256, size + 8).astype(np.uint8) if fill is None else np.full(size, fill, np.uint8)
        out = np.zeros(len(kinds), np.int64)
        pos = _rc_drive(1, kinds, args, out, rcm.new_models(n_ctx), buf, 0, size)
        assert pos >= min(size, 4)
        direct = kinds == 1
        assert ((out[~direct] == 0) | (out[~direct] == 1)).all()
        assert (out[direct] >= 0).all() and (out[direct] < (1 << args[direct])).all()
