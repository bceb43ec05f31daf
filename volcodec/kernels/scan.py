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

import numpy as np

from .._jit import kernel
from .rangecoder import rc_bit, rc_direct

PAD_TOP, PAD_BOTTOM, PAD_SIDE = 2, 1, 2

# predictor indices: intra ones, then one block per reference frame
P_MED, P_PLANE, P_W, P_N, P_NE_GRAD, P_AVG = 0, 1, 2, 3, 4, 5
N_INTRA = 6
R_W, R_N, R_MED, R_SAME, R_WN = 0, 1, 2, 3, 4
N_PER_REF = 5
N_PRED = N_INTRA + 2 * N_PER_REF

KMAX = 33  # bit length of |e| never exceeds bits_stored <= 32
NQ = 40  # activity classes
K_STRIDE = 2 * (KMAX + 1)
N_BIAS_E = 10
N_BIAS = N_BIAS_E * 16
N_FRAC = 9

# offsets of each model family inside the one bit-model array
OFF_K = 0
OFF_M1 = OFF_K + NQ * K_STRIDE
OFF_M2 = OFF_M1 + NQ * (KMAX + 1)
OFF_SIGN = OFF_M2 + (KMAX + 1) * 2 * 4
N_MODELS = OFF_SIGN + (NQ // 4) * N_FRAC

# cfg slots (int64 array built by volcodec.params)
CFG_MASK = 0  # bit i set: predictor i takes part in the blend
CFG_SIZE = 4


@kernel
def _med(a, b, c):
    """LOCO-I median edge detector on W=a, N=b, NW=c."""
    mx = a if a > b else b
    mn = a if a < b else b
    if c >= mx:
        return mn
    if c <= mn:
        return mx
    return a + b - c


@kernel
def _bitlen(v):
    n = np.int64(0)
    while v > 0:
        v >>= 1
        n += 1
    return n


@kernel
def _activity_class(act):
    """Log scale with two classes per octave: 0, 1, 2, 3, 4-5, 6-7, 8-11, 12-15, ..."""
    if act < 4:
        return act
    n = _bitlen(act)
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


@kernel
def code_frame(dec, P, A, B, nref, Y, X, minval, maxval, bits, cfg, err, eb, pv, w, mdl, bias, rc, buf):
    """Encode (dec=0) or decode (dec=1) one padded frame ``P`` against references ``A``, ``B``.

    ``nref`` is 0, 1 (A) or 2 (A and B). ``err`` (N_PRED, 2, X+4) and ``eb`` (2, X+4) hold the
    last two rows of absolute errors; ``pv``/``w`` (N_PRED float64) are scratch; ``mdl`` and
    ``bias`` carry the adaptive state across the frames of a slab. Returns 0.
    """
    mask = cfg[CFG_MASK]
    if nref < 2:
        mask &= (np.int64(1) << (N_INTRA + N_PER_REF)) - 1
    if nref < 1:
        mask &= (np.int64(1) << N_INTRA) - 1
    if mask == 0:
        mask = 1
    span = np.int64(1) << bits
    half = span >> 1
    for i in range(N_PRED):
        for c in range(X + 2 * PAD_SIDE):
            err[i, 0, c] = 0
            err[i, 1, c] = 0
    for c in range(X + 2 * PAD_SIDE):
        eb[0, c] = 0
        eb[1, c] = 0
    v0 = np.int64(0)
    if nref > 0:
        v0 = A[PAD_TOP, PAD_SIDE]
    if v0 < minval:
        v0 = minval
    if v0 > maxval:
        v0 = maxval
    P[PAD_TOP, 0] = v0
    P[PAD_TOP, 1] = v0

    for y in range(Y):
        r = y + PAD_TOP
        cur = y & 1
        prv = cur ^ 1
        if y > 0:
            P[r, 0] = P[r - 1, PAD_SIDE]
            P[r, 1] = P[r - 1, PAD_SIDE]
            for i in range(N_PRED):
                err[i, cur, 0] = err[i, prv, PAD_SIDE]
                err[i, cur, 1] = err[i, prv, PAD_SIDE]
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
            W = P[r, c - 1]
            N = P[r - 1, c]
            NW = P[r - 1, c - 1]
            NE = P[r - 1, c + 1]
            WW = P[r, c - 2]
            med = _med(W, N, NW)
            # ---- predictors
            if mask & 1:
                pv[P_MED] = med
            if (mask >> P_PLANE) & 1:
                pv[P_PLANE] = W + N - NW
            if (mask >> P_W) & 1:
                pv[P_W] = W
            if (mask >> P_N) & 1:
                pv[P_N] = N
            if (mask >> P_NE_GRAD) & 1:
                pv[P_NE_GRAD] = W + NE - N
            if (mask >> P_AVG) & 1:
                pv[P_AVG] = (W + NE + 1) >> 1
            tex_r = NW
            for j in range(nref):
                Q = A if j == 0 else B
                base = N_INTRA + j * N_PER_REF
                R = Q[r, c]
                RW = Q[r, c - 1]
                RN = Q[r - 1, c]
                if j == 0:
                    tex_r = R
                if (mask >> (base + R_W)) & 1:
                    pv[base + R_W] = R + W - RW
                if (mask >> (base + R_N)) & 1:
                    pv[base + R_N] = R + N - RN
                if (mask >> (base + R_MED)) & 1:
                    pv[base + R_MED] = R + med - _med(RW, RN, Q[r - 1, c - 1])
                if (mask >> (base + R_SAME)) & 1:
                    pv[base + R_SAME] = R
                if (mask >> (base + R_WN)) & 1:
                    pv[base + R_WN] = R + ((W - RW + N - RN) >> 1)
            # ---- blend (weights from each predictor's recent local error)
            sw = 0.0
            swp = 0.0
            emin = np.int64(1) << 62
            for i in range(N_PRED):
                if (mask >> i) & 1:
                    e_i = (2 * (err[i, cur, c - 1] + err[i, prv, c]) + err[i, prv, c - 1]
                           + err[i, prv, c + 1] + err[i, cur, c - 2])
                    if e_i < emin:
                        emin = e_i
                    wi = 1.0 / (float(e_i) * float(e_i) + 1.0)
                    sw += wi
                    swp += wi * pv[i]
            p8 = np.int64(np.floor(swp / sw * 8.0 + 0.5))
            # ---- contexts
            act = (2 * (eb[cur, c - 1] + eb[prv, c]) + eb[prv, c - 1] + eb[prv, c + 1]
                   + eb[cur, c - 2] + (emin >> 1))
            q = _activity_class(act)
            qb = q >> 2
            if qb >= N_BIAS_E:
                qb = N_BIAS_E - 1
            tex = ((N * 8 > p8) * 1 + (W * 8 > p8) * 2 + (NE * 8 > p8) * 4 + (tex_r * 8 > p8) * 8)
            bctx = qb * 16 + tex
            corr = bias[bctx, 0] // bias[bctx, 1]
            p8c = p8 + corr
            pred = (p8c + 4) >> 3
            if pred < minval:
                pred = minval
            if pred > maxval:
                pred = maxval
            frac = p8c - pred * 8 + 4
            if frac < 0:
                frac = 0
            if frac >= N_FRAC:
                frac = N_FRAC - 1
            # ---- residual
            e = np.int64(0)
            if not dec:
                e = P[r, c] - pred
                if e < -half:
                    e += span
                elif e >= half:
                    e -= span
            m = e if e >= 0 else -e
            k = _bitlen(m)
            k0 = (q >> 1) - 3
            if k0 < 0:
                k0 = 0
            if k0 > bits:
                k0 = bits
            kb = OFF_K + q * K_STRIDE
            if k0 > 0 and rc_bit(rc, buf, mdl, kb + KMAX + 1 + k0, 1 if k < k0 else 0, dec):
                j = k0 - 1
                while j > 0 and rc_bit(rc, buf, mdl, kb + KMAX + 1 + j, 1 if k < j else 0, dec):
                    j -= 1
            else:
                j = k0
                while j < bits and rc_bit(rc, buf, mdl, kb + j, 1 if k > j else 0, dec):
                    j += 1
            k = j
            if k > 0:
                mm = np.int64(1) << (k - 1)
                if k >= 2:
                    b1 = rc_bit(rc, buf, mdl, OFF_M1 + q * (KMAX + 1) + k, (m >> (k - 2)) & 1, dec)
                    mm |= b1 << (k - 2)
                    if k >= 3:
                        b2 = rc_bit(rc, buf, mdl, OFF_M2 + (k * 2 + b1) * 4 + (q & 3),
                                    (m >> (k - 3)) & 1, dec)
                        mm |= b2 << (k - 3)
                        if k >= 4:
                            mm |= rc_direct(rc, buf, m, k - 3, dec)
                m = mm
                s = rc_bit(rc, buf, mdl, OFF_SIGN + (q >> 2) * N_FRAC + frac, 1 if e < 0 else 0, dec)
                e = -m if s else m
            else:
                e = 0
            if dec:
                xv = pred + e
                if xv < minval:
                    xv += span
                elif xv > maxval:
                    xv -= span
                P[r, c] = xv
            xv = P[r, c]
            # ---- update errors and bias
            d = xv - pred
            eb[cur, c] = d if d >= 0 else -d
            for i in range(N_PRED):
                if (mask >> i) & 1:
                    d = xv - np.int64(pv[i])
                    err[i, cur, c] = d if d >= 0 else -d
            bias[bctx, 0] += xv * 8 - p8
            n = bias[bctx, 1] + 1
            if n >= 64:
                bias[bctx, 0] = bias[bctx, 0] // 2
                n = 32
            bias[bctx, 1] = n
        P[r, X + PAD_SIDE] = P[r, X + PAD_SIDE - 1]
        P[r, X + PAD_SIDE + 1] = P[r, X + PAD_SIDE - 1]
        for i in range(N_PRED):
            err[i, cur, X + PAD_SIDE] = err[i, cur, X + PAD_SIDE - 1]
        eb[cur, X + PAD_SIDE] = eb[cur, X + PAD_SIDE - 1]
    return 0
