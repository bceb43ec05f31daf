"""The frame scan: prediction, context modelling, bias cancellation and residual coding.

One kernel, :func:`code_frame`, both encodes (``dec == 0``) and decodes (``dec == 1``) a frame, so
the two directions share every line of modelling.

Symbols (names as in LOCO-I / JPEG-LS and CALIC, with a plain word for each):

======  ====================================================================
W, N    west and north neighbours in the current frame (JPEG-LS Ra, Rb)
NW, NE  north-west, north-east (JPEG-LS Rc, Rd); WW two to the west
R       co-located voxel of a reference frame (previous slice or time point)
RW..    the same neighbours around R in the reference frame (all known)
p_i     prediction of predictor i; the blend weights each by 1 / (E_i^2 + 1)
E_i     local error of predictor i: 2(W + N) + NW + NE + WW of its past errors
p8      blended prediction in 1/8 units; ``corr`` the per-context bias (CALIC sec. 3.3)
q       activity class (log-quantised local residual energy) = coding context
k       bit length of |e|, coded by an adaptive unary walk starting near the class's typical k
======  ====================================================================

Frames are padded (2 rows above, 1 below, 2 columns either side): ``P[r, c]`` with r = y + 2,
c = x + 2. The kernel fills the causal pads of the current frame as it goes; a reference frame's
pads are filled by :func:`pad_edges` before use.
"""

from __future__ import annotations

import numba
import numpy as np

from .._jit import inline, kernel
from .rangecoder import DIRECT_MAX, MASK32, TOP, adapt, bitlen, rc_binary, rc_carry, rc_normalize, rc_raw

PAD_TOP, PAD_BOTTOM, PAD_SIDE = 2, 1, 2

# predictor indices: intra ones, then one block per reference frame
P_MED, P_PLANE, P_W, P_N, P_NE_GRAD, P_AVG, P_NE, P_NNE, P_2N, P_2W = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9
N_INTRA = 10
R_W, R_N, R_MED, R_SAME, R_WN = 0, 1, 2, 3, 4
N_PER_REF = 5
N_PRED = N_INTRA + 2 * N_PER_REF

KMAX = 33  # bit length of |e| never exceeds bits_stored <= 32
NQ = 40  # activity classes
K_STRIDE = 2 * (KMAX + 1)
N_BIAS_E = 10
N_BIAS = N_BIAS_E * 128
N_FRAC = 9
BIAS_COUNT_MAX = 64
# slab mode 7 (and the fast scan's modes 4-6): a bias sum takes an error (in eighths) clipped to
# +-(activity + BIAS_CLIP); mode 0 passes NO_CLIP, beyond any error (2**33 * 8)
BIAS_CLIP = 32
NO_CLIP = 1 << 40
W_TABLE_SIZE = 4096
ERR_MAX = (1 << 26) - 1

# offsets of each model family inside the one bit-model array
OFF_K = 0
OFF_M1 = OFF_K + NQ * K_STRIDE
OFF_M2 = OFF_M1 + NQ * (KMAX + 1)
OFF_SIGN = OFF_M2 + (KMAX + 1) * 2 * 4
OFF_PIVOT = OFF_SIGN + (NQ // 4) * N_FRAC * 16
N_MODELS = OFF_PIVOT + NQ * 16

# secondary models for logistic mixing: (decision position, bit lengths of |e| at W and at N)
POS_PIVOT, POS_DOWN, POS_UP, POS_M1, POS_SIGN = 0, KMAX + 1, 2 * (KMAX + 1), 3 * (KMAX + 1), 4 * (KMAX + 1)
N_POS = POS_SIGN + N_FRAC
N_MODELS2 = N_POS * 256 * 3  # secondary families: (|e| at W, N), (best-predictor error, texture),
#                               (|reference - prediction|, |e| at NE)
MIX_W0 = 16384  # 1/4 in 16.16 fixed point for each of the four inputs
N_MIXSEL = NQ // 4 + 1
MIX_LR = 6

# phases of the residual's decision machine
PH_PIVOT, PH_DOWN, PH_UP, PH_M1, PH_DIRECT, PH_SIGN, PH_DONE = 0, 1, 2, 3, 4, 5, 6



@kernel
def _med(a, b, c):
    """LOCO-I median edge detector on W=a, N=b, NW=c (selects, no data-dependent branches)."""
    mx = max(b, a)
    mn = min(b, a)
    p = a + b - c
    p = mn if c >= mx else p
    return mx if c <= mn else p


@inline
def fold_residual(e, near, half, span, step):
    """The residual an encoder codes for the prediction error ``e``: lossless (``near`` = 0), ``e``
    reduced modulo ``span`` = 2**bits into [-half, half); near-lossless, ``e`` quantised to steps of
    ``step`` = 2 near + 1 (the decoder's ``pred + e * step`` is then within ``near``). Shared by
    this scan and the fast scan (:mod:`fast`)."""
    if near == 0:
        e = ((e + half) & (span - 1)) - half  # the one value of e mod span in [-half, half)
    elif e >= 0:
        e = (e + near) // step
    else:
        e = -((near - e) // step)
    return e


@inline
def unfold_residual(pred, e, minval, span):
    """The lossless value a decoder rebuilds from ``pred`` and the residual ``e`` that
    :func:`fold_residual` reduced modulo ``span``: ``pred + e`` taken modulo ``span`` into
    [minval, minval + span). One mask, not compares on the decoder's chain from one voxel to the
    next; a damaged stream still lands in range (it cannot wrap the frame's dtype)."""
    return ((pred - minval + e) & (span - 1)) + minval


@kernel
def _activity_class(act):
    """Log scale with two classes per octave: 0, 1, 2, 3, 4-5, 6-7, 8-11, 12-15, ..."""
    if act < 4:
        return act
    n = bitlen(act)
    q = 2 * n - 2 + ((act >> (n - 2)) & 1)
    return q if q < NQ else NQ - 1


@kernel
def pad_edges(P, Y, X):
    """Replicate the frame's border into its pads so it can serve as a reference."""
    for r in range(PAD_TOP):
        for c in range(X + 2 * PAD_SIDE):
            P[r, c] = P[PAD_TOP, c]
    for c in range(X + 2 * PAD_SIDE):
        P[PAD_TOP + Y, c] = P[PAD_TOP + Y - 1, c]
    for r in range(Y + PAD_TOP + PAD_BOTTOM):
        for c in range(PAD_SIDE):
            P[r, c] = P[r, PAD_SIDE]
            P[r, X + PAD_SIDE + c] = P[r, X + PAD_SIDE - 1]
    # corners of the top rows were filled before the side pads: redo them
    for r in range(PAD_TOP):
        for c in range(PAD_SIDE):
            P[r, c] = P[PAD_TOP, PAD_SIDE]
            P[r, X + PAD_SIDE + c] = P[PAD_TOP, X + PAD_SIDE - 1]


_SQUASH_KNOTS = (1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047, 2549, 2994,
                 3348, 3607, 3785, 3901, 3975, 4022, 4050, 4068, 4079, 4085, 4089, 4092, 4093, 4094)


def _squash_int(d: int) -> int:
    """1 / (1 + exp(-d / 256)) in 12 bits by integer interpolation (lpaq1's squash), so the
    tables are bit-identical on every platform."""
    if d > 2047:
        return 4095
    if d < -2047:
        return 1
    w = d & 127
    i = (d >> 7) + 16
    return max(1, (_SQUASH_KNOTS[i] * (128 - w) + _SQUASH_KNOTS[i + 1] * w + 64) >> 7)


def make_tables():
    """Lookup tables the scan takes as arguments (all integer-built except the blend weights,
    which are exact IEEE divisions): blend weights 1 / (E^2 + 1) for small E; 2**16 / n for the
    bias mean (division-free in the voxel loop); squash (index d + 2048) and its inverse stretch
    (index p, 12 bits) for logistic mixing."""
    e = np.arange(W_TABLE_SIZE, dtype=np.float64)
    wtab = 1.0 / (e * e + 1.0)
    recip = np.zeros(BIAS_COUNT_MAX + 1, np.int64)
    recip[1:] = (1 << 16) // np.arange(1, BIAS_COUNT_MAX + 1)
    squash = np.array([_squash_int(d) for d in range(-2048, 2048)], np.int64)
    stretch = np.empty(4096, np.int64)
    pi = 0
    for d in range(-2047, 2048):
        v = _squash_int(d)
        stretch[pi:v + 1] = d
        pi = max(pi, v + 1)
    stretch[pi:] = 2047
    return wtab, recip, squash, stretch


@kernel
def active_predictors(mask, nref, out):
    """Write the indices of the predictors in ``mask`` usable with ``nref`` references into
    ``out``; returns their count (at least 1: MED is used when nothing else is)."""
    if nref < 2:
        mask &= (np.int64(1) << (N_INTRA + N_PER_REF)) - 1
    if nref < 1:
        mask &= (np.int64(1) << N_INTRA) - 1
    n = 0
    for i in range(N_PRED):
        if (mask >> i) & 1:
            out[n] = i
            n += 1
    if n == 0:
        out[0] = P_MED
        n = 1
    return n


@kernel
def _code_frame(dec, P, A, B, nref, Y, X, minval, maxval, bits, near, act_idx, n_act, err, eb, pv, mdl, bias,
                wtab, recip, mixing, mdl2, mixw, squash, stretch, st, buf, end, clip):
    """Encode (dec=0) or decode (dec=1) one padded frame ``P`` against references ``A``, ``B``.

    ``nref`` is 0, 1 (A) or 2 (A and B); ``act_idx[:n_act]`` lists the predictors in the blend.
    ``near`` > 0 codes near-losslessly (JPEG-LS style): the residual is quantised to steps of
    2 * near + 1, both sides predict from the reconstruction, which is clamped to
    [minval, maxval], so |decoded - original| <= near for every voxel (clamping only moves a value
    towards the range that holds the original).
    ``err`` (2, X+4, n_act) int32 and ``eb`` (2, X+4) hold the last two rows of absolute errors
    (per active predictor, capped at ERR_MAX so sums stay far from overflow);
    ``pv`` (N_PRED float64) is scratch; ``mdl`` and ``bias`` carry the adaptive state across the
    frames of a slab; ``wtab``/``recip``/``squash``/``stretch`` come from :func:`make_tables`.
    With ``mixing`` set, every modelled decision also consults a secondary model ``mdl2`` and the
    two are combined by a logistic mixer (weights ``mixw``, one pair per decision position;
    PAQ-style, integer arithmetic). ``st`` = [x, rng, pos] is the range coder's state in and out.
    """
    numba.literally(dec)
    numba.literally(mixing)
    x_, rng, pos = st[0], st[1], st[2]
    span = np.int64(1) << bits
    half = span >> 1
    step = 2 * near + 1
    # quantised residuals are ~log2(step) bits shorter than the activity (in voxel units) suggests
    kshift = bitlen(step) - 1
    err[:, :, :] = 0
    eb[:, :] = 0
    v0 = np.int64(0)
    if nref > 0:
        v0 = np.int64(A[PAD_TOP, PAD_SIDE])
    v0 = max(v0, minval)
    v0 = min(v0, maxval)
    P[PAD_TOP, 0] = v0
    P[PAD_TOP, 1] = v0

    for y in range(Y):
        r = y + PAD_TOP
        cur = y & 1
        prv = cur ^ 1
        if y > 0:
            P[r, 0] = P[r - 1, PAD_SIDE]
            P[r, 1] = P[r - 1, PAD_SIDE]
            for j in range(n_act):
                err[cur, 0, j] = err[prv, PAD_SIDE, j]
                err[cur, 1, j] = err[prv, PAD_SIDE, j]
            eb[cur, 0] = eb[prv, PAD_SIDE]
            eb[cur, 1] = eb[prv, PAD_SIDE]
        for x in range(X):
            c = x + PAD_SIDE
            if y == 0:
                # first row: no row above yet, so every northern neighbour is W
                wv = P[r, c - 1]
                P[r - 1, c - 1] = wv
                P[r - 1, c] = wv
                P[r - 1, c + 1] = wv
                P[r - 2, c] = wv
            W = np.int64(P[r, c - 1])
            N = np.int64(P[r - 1, c])
            NW = np.int64(P[r - 1, c - 1])
            NE = np.int64(P[r - 1, c + 1])
            med = _med(W, N, NW)
            tex_r = NW
            if nref > 0:
                tex_r = np.int64(A[r, c])
            # ---- predictors, blended with weights from each one's recent local error
            sw = 0.0
            swp = 0.0
            p8 = np.int64(0)
            emin = np.int64(1) << 62
            for j in range(n_act):
                i = act_idx[j]
                if i < N_INTRA:
                    if i == P_MED:
                        p = med
                    elif i == P_PLANE:
                        p = W + N - NW
                    elif i == P_W:
                        p = W
                    elif i == P_N:
                        p = N
                    elif i == P_NE_GRAD:
                        p = W + NE - N
                    elif i == P_AVG:
                        p = ((2 * (W + N) + NE - NW + 2) >> 2)
                    elif i == P_NE:
                        p = NE
                    elif i == P_NNE:
                        p = (N + NE + 1) >> 1
                    elif i == P_2N:
                        p = 2 * N - np.int64(P[r - 2, c])
                    else:
                        p = 2 * W - np.int64(P[r, c - 2])
                else:
                    kind = i - N_INTRA
                    # scalars, not an array alias: picking A or B as an array object would cost
                    # two atomic reference-count updates per voxel
                    if kind < N_PER_REF:
                        R = np.int64(A[r, c])
                        RW = np.int64(A[r, c - 1])
                        RN = np.int64(A[r - 1, c])
                        RNW = np.int64(A[r - 1, c - 1])
                    else:
                        kind -= N_PER_REF
                        R = np.int64(B[r, c])
                        RW = np.int64(B[r, c - 1])
                        RN = np.int64(B[r - 1, c])
                        RNW = np.int64(B[r - 1, c - 1])
                    if kind == R_W:
                        p = R + W - RW
                    elif kind == R_N:
                        p = R + N - RN
                    elif kind == R_MED:
                        p = R + med - _med(RW, RN, RNW)
                    elif kind == R_SAME:
                        p = R
                    else:
                        p = R + ((W - RW + N - RN) >> 1)
                pv[j] = p
                e_i = np.int64(2 * (err[cur, c - 1, j] + err[prv, c, j]) + err[prv, c - 1, j]
                               + err[prv, c + 1, j] + err[cur, c - 2, j])
                emin = min(emin, e_i)
                if n_act > 1:
                    if e_i < W_TABLE_SIZE:
                        wi = wtab[e_i]
                    else:
                        wi = 1.0 / (float(e_i) * float(e_i) + 1.0)
                    sw += wi
                    swp += wi * float(p)
                else:
                    p8 = p * 8  # a single predictor: no blend, no division
            if n_act > 1:
                p8 = np.int64(np.floor(swp / sw * 8.0 + 0.5))
            # ---- contexts
            act = (2 * (eb[cur, c - 1] + eb[prv, c]) + eb[prv, c - 1] + eb[prv, c + 1]
                   + eb[cur, c - 2] + 2 * emin)
            q = _activity_class(act)
            qb = q >> 2
            if qb >= N_BIAS_E:
                qb = N_BIAS_E - 1
            tex = ((N * 8 > p8) * 1 + (W * 8 > p8) * 2 + (NE * 8 > p8) * 4 + (tex_r * 8 > p8) * 8)
            t2 = NW if nref > 0 else np.int64(P[r, c - 2])
            bctx = (qb * 128 + tex + (t2 * 8 > p8) * 16 + (np.int64(P[r - 2, c]) * 8 > p8) * 32
                    + (np.int64(P[r - 1, c + 2]) * 8 > p8) * 64)
            corr = bias[bctx, 2]  # the context's mean error, kept up to date by the update below
            p8c = p8 + corr
            pred = (p8c + 4) >> 3
            pred = max(pred, minval)
            pred = min(pred, maxval)
            frac = p8c - pred * 8 + 4
            frac = max(frac, 0)
            if frac >= N_FRAC:
                frac = N_FRAC - 1
            # ---- residual: e reduced modulo 2**bits into [-half, half)
            e = np.int64(0)
            if not dec:
                e = fold_residual(np.int64(P[r, c]) - pred, near, half, span, step)
            m = e if e >= 0 else -e
            k = bitlen(m)
            # Binarisation: k = bit length of |e| by an adaptive unary walk that starts at the
            # class's typical length k0 (a pivot decision picks the direction), then the bit
            # below the leading one (modelled), the rest (equiprobable), then the sign. Written
            # as a small decision machine so that the coder runs at ONE site in the loop.
            k0 = (q >> 1) - 3 - kshift
            k0 = max(k0, 0)
            k0 = min(k0, bits)
            kb = OFF_K + q * K_STRIDE
            ctx2 = 0
            ctx3 = 0
            ctx4 = 0
            if mixing:
                kw = bitlen(eb[cur, c - 1])
                kn = bitlen(eb[prv, c])
                ctx2 = (min(15, kw)) * 16 + (min(15, kn))
                ke = bitlen(emin >> 2)
                ctx3 = N_POS * 256 + (min(15, ke)) * 16 + tex
                dr = tex_r - pred
                kr = bitlen(dr if dr >= 0 else -dr)
                kne = bitlen(eb[prv, c + 1])
                ctx4 = N_POS * 512 + (min(15, kr)) * 16 + (min(15, kne))
            j = k0
            kk = np.int64(0)
            mm = np.int64(0)
            nb = np.int64(0)
            sign = 0
            if k0 > 0:
                phase = PH_PIVOT
            elif bits > 0:
                phase = PH_UP
            else:
                phase = PH_DONE
            while phase != PH_DONE:
                ctx = 0
                bit = 0
                dpos = 0
                if phase == PH_PIVOT:
                    ctx = OFF_PIVOT + q * 16 + tex
                    bit = 1 if k < k0 else 0
                    dpos = POS_PIVOT + k0
                elif phase == PH_DOWN:
                    ctx = kb + KMAX + 1 + j
                    bit = 1 if k < j else 0
                    dpos = POS_DOWN + j
                elif phase == PH_UP:
                    ctx = kb + j
                    bit = 1 if k > j else 0
                    dpos = POS_UP + j
                elif phase == PH_M1:
                    ctx = OFF_M1 + q * (KMAX + 1) + kk
                    bit = (m >> (kk - 2)) & 1
                    dpos = POS_M1 + kk
                elif phase == PH_SIGN:
                    ctx = OFF_SIGN + ((q >> 2) * N_FRAC + frac) * 16 + tex
                    bit = 1 if e < 0 else 0
                    dpos = POS_SIGN + frac
                if phase == PH_DIRECT:
                    take = min(DIRECT_MAX, nb)
                    nb -= take
                    val, x_, rng = rc_raw(x_, rng, (m >> nb) & ((np.int64(1) << take) - 1), take, dec)
                else:
                    pf = np.int64(mdl[ctx, 0])
                    ps = np.int64(mdl[ctx, 1])
                    p0 = (pf + ps) >> 1
                    pm = np.int64(0)
                    s1 = np.int64(0)
                    s2 = np.int64(0)
                    c2 = 0
                    c3 = 0
                    s3 = np.int64(0)
                    s4 = np.int64(0)
                    c4 = 0
                    ws = 0
                    if mixing:
                        c2 = dpos * 256 + ctx2
                        qf = np.int64(mdl2[c2, 0])
                        qs = np.int64(mdl2[c2, 1])
                        s1 = stretch[p0 >> 4]
                        s2 = stretch[(qf + qs) >> 5]
                        c3 = dpos * 256 + ctx3
                        s3 = stretch[(np.int64(mdl2[c3, 0]) + mdl2[c3, 1]) >> 5]
                        c4 = dpos * 256 + ctx4
                        s4 = stretch[(np.int64(mdl2[c4, 0]) + mdl2[c4, 1]) >> 5]
                        ws = dpos * N_MIXSEL + (q >> 2)
                        dot = (mixw[ws, 0] * s1 + mixw[ws, 1] * s2 + mixw[ws, 2] * s3 + mixw[ws, 3] * s4) >> 16
                        dot = -2047 if dot < -2047 else (min(dot, 2047))
                        pm = squash[dot + 2048]
                        p0 = pm << 4
                        p0 = 64 if p0 < 64 else (min(p0, 65472))
                    bit, x_, rng = rc_binary(x_, rng, p0, bit, dec)
                    pf, ps, cnt = adapt(pf, ps, np.int64(mdl[ctx, 2]), bit)
                    mdl[ctx, 0] = pf
                    mdl[ctx, 1] = ps
                    mdl[ctx, 2] = cnt
                    if mixing:
                        errm = ((4095 if bit == 0 else 0) - pm) * MIX_LR
                        mixw[ws, 0] += (s1 * errm + 0x8000) >> 16
                        mixw[ws, 1] += (s2 * errm + 0x8000) >> 16
                        mixw[ws, 2] += (s3 * errm + 0x8000) >> 16
                        mixw[ws, 3] += (s4 * errm + 0x8000) >> 16
                        qf, qs, cnt = adapt(qf, qs, np.int64(mdl2[c2, 2]), bit)
                        mdl2[c2, 0] = qf
                        mdl2[c2, 1] = qs
                        mdl2[c2, 2] = cnt
                        qf, qs, cnt = adapt(np.int64(mdl2[c3, 0]), np.int64(mdl2[c3, 1]), np.int64(mdl2[c3, 2]), bit)
                        mdl2[c3, 0] = qf
                        mdl2[c3, 1] = qs
                        mdl2[c3, 2] = cnt
                        qf, qs, cnt = adapt(np.int64(mdl2[c4, 0]), np.int64(mdl2[c4, 1]), np.int64(mdl2[c4, 2]), bit)
                        mdl2[c4, 0] = qf
                        mdl2[c4, 1] = qs
                        mdl2[c4, 2] = cnt
                if not dec and x_ > MASK32:
                    x_ &= MASK32
                    rc_carry(pos, buf, end)
                if rng < TOP:
                    x_, rng, pos = rc_normalize(x_, rng, pos, buf, end, dec)
                # transitions
                got_k = False
                if phase == PH_PIVOT:
                    if bit:
                        j = k0 - 1
                        if j == 0:
                            got_k = True
                        else:
                            phase = PH_DOWN
                    else:
                        if j >= bits:
                            got_k = True
                        else:
                            phase = PH_UP
                elif phase == PH_DOWN:
                    if bit:
                        j -= 1
                        if j == 0:
                            got_k = True
                    else:
                        got_k = True
                elif phase == PH_UP:
                    if bit:
                        j += 1
                        if j >= bits:
                            got_k = True
                    else:
                        got_k = True
                elif phase == PH_M1:
                    mm |= bit << (kk - 2)
                    phase = PH_DIRECT if nb > 0 else PH_SIGN
                elif phase == PH_DIRECT:
                    mm |= val << nb
                    if nb == 0:
                        phase = PH_SIGN
                else:
                    sign = bit
                    phase = PH_DONE
                if got_k:
                    kk = j
                    if kk == 0:
                        phase = PH_DONE
                    else:
                        mm = np.int64(1) << (kk - 1)
                        nb = kk - 2 if kk >= 2 else 0
                        phase = PH_M1 if kk >= 2 else PH_SIGN
            e = -mm if sign else mm
            if near == 0:
                if dec:
                    xv = unfold_residual(pred, e, minval, span)
                    P[r, c] = xv
            else:
                # both sides store the reconstruction (the encoder overwrites the original)
                xv = pred + e * step
                xv = max(xv, minval)
                xv = min(xv, maxval)
                P[r, c] = xv
            xv = np.int64(P[r, c])
            # ---- update errors and bias
            d = xv - pred
            eb[cur, c] = d if d >= 0 else -d
            for j in range(n_act):
                d = xv - np.int64(pv[j])
                if d < 0:
                    d = -d
                err[cur, c, j] = min(ERR_MAX, d)
            # slab mode 7: the error the bias sum takes is clipped to about the local activity (as
            # in the fast scan's modes 4-6: one outlier shifts a flat context's predictions for
            # hundreds of voxels); mode 0 passes a limit no error reaches
            lim = act + clip
            bsum = bias[bctx, 0] + min(max(xv * 8 - p8, -lim), lim)
            n = bias[bctx, 1] + 1
            if n >= BIAS_COUNT_MAX:
                bsum >>= 1
                n = BIAS_COUNT_MAX // 2
            bias[bctx, 0] = bsum
            bias[bctx, 1] = n
            # the mean (sum / (n - 1), by reciprocal) is computed here, off the decoder's path
            # from a prediction to the next voxel's, where the lookup would be two dependent loads
            bias[bctx, 2] = (bsum * recip[n]) >> 16
        P[r, X + PAD_SIDE] = P[r, X + PAD_SIDE - 1]
        P[r, X + PAD_SIDE + 1] = P[r, X + PAD_SIDE - 1]
        for j in range(n_act):
            err[cur, X + PAD_SIDE, j] = err[cur, X + PAD_SIDE - 1, j]
        eb[cur, X + PAD_SIDE] = eb[cur, X + PAD_SIDE - 1]
    st[0] = x_
    st[1] = rng
    st[2] = pos
    return 0


# One compiled scan per direction and mixing mode: ``dec`` and ``mixing`` are compile-time
# constants inside each, so the voxel loop carries no branch on them.
@kernel
def _encode_plain(P, A, B, nref, Y, X, minval, maxval, bits, near, act_idx, n_act, err, eb, pv, mdl, bias,
                  wtab, recip, mdl2, mixw, squash, stretch, st, buf, end, clip):
    return _code_frame(0, P, A, B, nref, Y, X, minval, maxval, bits, near, act_idx, n_act, err, eb, pv, mdl,
                       bias, wtab, recip, 0, mdl2, mixw, squash, stretch, st, buf, end, clip)


@kernel
def _encode_mixed(P, A, B, nref, Y, X, minval, maxval, bits, near, act_idx, n_act, err, eb, pv, mdl, bias,
                  wtab, recip, mdl2, mixw, squash, stretch, st, buf, end, clip):
    return _code_frame(0, P, A, B, nref, Y, X, minval, maxval, bits, near, act_idx, n_act, err, eb, pv, mdl,
                       bias, wtab, recip, 1, mdl2, mixw, squash, stretch, st, buf, end, clip)


@kernel
def _decode_plain(P, A, B, nref, Y, X, minval, maxval, bits, near, act_idx, n_act, err, eb, pv, mdl, bias,
                  wtab, recip, mdl2, mixw, squash, stretch, st, buf, end, clip):
    return _code_frame(1, P, A, B, nref, Y, X, minval, maxval, bits, near, act_idx, n_act, err, eb, pv, mdl,
                       bias, wtab, recip, 0, mdl2, mixw, squash, stretch, st, buf, end, clip)


@kernel
def _decode_mixed(P, A, B, nref, Y, X, minval, maxval, bits, near, act_idx, n_act, err, eb, pv, mdl, bias,
                  wtab, recip, mdl2, mixw, squash, stretch, st, buf, end, clip):
    return _code_frame(1, P, A, B, nref, Y, X, minval, maxval, bits, near, act_idx, n_act, err, eb, pv, mdl,
                       bias, wtab, recip, 1, mdl2, mixw, squash, stretch, st, buf, end, clip)


_SCANS = ((_encode_plain, _encode_mixed), (_decode_plain, _decode_mixed))


def code_frame(dec, P, A, B, nref, Y, X, minval, maxval, bits, near, act_idx, n_act, err, eb, pv, mdl, bias,
               wtab, recip, mixing, mdl2, mixw, squash, stretch, st, buf, end, clip=NO_CLIP):
    """Encode (dec=1: decode) one frame with the scan compiled for this direction and mode;
    ``clip`` is :data:`BIAS_CLIP` in slab mode 7, :data:`NO_CLIP` in mode 0."""
    return _SCANS[1 if dec else 0][1 if mixing else 0](
        P, A, B, nref, Y, X, minval, maxval, bits, near, act_idx, n_act, err, eb, pv, mdl, bias, wtab, recip,
        mdl2, mixw, squash, stretch, st, buf, end, clip)
