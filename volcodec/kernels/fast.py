"""The fast scan (slab modes 2 to 5): the default effort's coder for lossless data.

Where :mod:`scan` binarises each residual with an adaptive unary walk (a variable number of
decisions, each a data-dependent branch), this scan codes every voxel with the same work: a token
of three (mode 5) or four (modes 2-4) binary decisions down a tree, then verbatim bits in a
second stream.

* Prediction: two predictors (R_WN and MED with a reference frame, MED and AVG without), blended
  in eighths by the ratio of their local errors (no division), then the bias cancellation of
  :mod:`scan`.
* ``s`` (the shift) comes from the local activity, so ``u = |e| >> s`` is small (typically 2..6)
  and its distribution, within an activity class, barely depends on the scale.
* ``u`` becomes a token. Mode 5 (8 tokens): 0..3 stand for themselves, 4 covers 4..5, 5 covers
  6..7, 6 covers 8..15, and 7 escapes (bit length - 5 in 5 raw bits, then the bits below the
  leading one). Modes 2-4 (16 tokens): 0..7 stand for themselves, 8..13 give the bit length (4, 5
  or 6) and the bit below the leading one, 14 covers 64..127, and 15 escapes (bit length - 8).
* The token is coded by three (or four) binary decisions down a tree of 7 (15) adaptive models
  per context (activity class x texture), in the range coder of :mod:`rangecoder`; the updates
  are branch-free, because the bits are data. The depth is a constant in each compiled entry
  point, so the tree walk is unrolled.
* The bits below the token (its own, then ``s`` low bits) and the sign go verbatim to a second
  stream of big-endian 32-bit words, written and read inline (no helper call that passes an
  array: numba would pay two atomic reference-count updates per call).

* Run mode (slab modes 4 and 5, as in JPEG-LS): where the neighbourhood is flat (W = N = NW = NE = WW =
  NN, and the reference voxel too), the coder sends how many voxels along the row repeat W, up
  to where the row above (and the reference row) stops being flat: one adaptive decision per
  block of 2**J voxels, J growing with whole blocks, then the rest in J verbatim bits. A run that
  stops at that limit costs nothing more; one that stops short is followed by a normally coded
  voxel. Flat areas (CT padding, MR background) then cost one decision per block instead of four
  per voxel, and decode faster.

  Modes 4 and 5 also clip the error each bias sum takes to about the local activity.

Why not one multi-symbol decision (AV1 style)? Numba cannot vectorise the 16-wide search and
update (its SLP vectoriser is off: it miscompiled), and scalar they cost more than the tree.
Symbols as in :mod:`scan`.
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel
from .rangecoder import MASK32, TOP, bitlen, new_models, rc_bit, rc_carry
from .scan import (BIAS_CLIP, BIAS_COUNT_MAX, N_BIAS_E, NO_CLIP, NQ, PAD_SIDE, PAD_TOP, _activity_class, _med,
                   fold_residual, unfold_residual)

# slab mode 3: a context's bias mean is its error sum over (count + BIAS_PRIOR), i.e. shrunk toward
# zero as if BIAS_PRIOR zero errors had been seen: a young context's mean is mostly noise, and the
# plain mean (mode 2) over-corrects (1% larger on thick-slice CT)
BIAS_PRIOR = 16
RATE_MIN = 4
# adaptation shift by observation count: fast while a model is new (models restart every slab)
RATE_OF = np.array([RATE_MIN + (n > 15) + (n > 47) + (n > 127) for n in range(256)], np.int64)
S_OFF = 5  # u = |e| >> s with s = bit_length(activity) - S_OFF: u is typically 2..6
S_MAX = 25  # a token's raw bits, s low bits and the sign fit one 32-bit read
ESC_LEN_BITS = 5  # the escape's bit length - its smallest (8 for 16 tokens, 5 for 8)
N_CTX = NQ * 16
# error rows packed three to an int64 (see _frame_coder) for data of at most PACKED_BITS bits
PACKED_BITS = 16
LANE_BITS = 21
LANE = (1 << LANE_BITS) - 1

# Token alphabets: token -> smallest u it stands for, and how many raw bits follow it (the last
# token is the escape, coded apart). Modes 2-4 use 16 tokens (a tree of depth 4), mode 5 uses 8
# (depth 3): one decision less per voxel, and the same size (u's distribution is narrow enough).
TOK_BASE = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32, 48, 64, 0], np.int64)
TOK_BITS = np.array([0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 3, 3, 4, 4, 6, 0], np.int64)
TOK_BASE8 = np.array([0, 1, 2, 3, 4, 6, 8, 0], np.int64)
TOK_BITS8 = np.array([0, 0, 0, 0, 1, 1, 3, 0], np.int64)
DEPTH_OLD, DEPTH = 4, 3  # tree depths: modes 2-4, mode 5
# the 8-token alphabet in one constant, a byte per token (bits << 4 | base), which the decoder shifts
# instead of loading two tables on its path from the token to the value (1.5-2% faster); the encoder
# knows its token early and keeps the loads (the shifts made it 2% slower)
TOK8_PACKED = sum(int(b << 4 | a) << (8 * t) for t, (a, b) in enumerate(zip(TOK_BASE8, TOK_BITS8)))


def _token_table(base: np.ndarray) -> np.ndarray:
    """u -> token for u below the escape's range (base[-2] + 2**bits[-2])."""
    n = len(base)
    top = 128 if n == 16 else 16
    return np.array([int(np.searchsorted(base[:n - 1], u, side="right")) - 1 for u in range(top)], np.int64)


TOK_OF = _token_table(TOK_BASE)  # u (< 128) -> token
TOK_OF8 = _token_table(TOK_BASE8)  # u (< 16) -> token
# run mode (slab mode 4): a run index ri codes blocks of 2**RUN_J[ri] voxels (JPEG-LS's J table)
RUN_J = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12,
                  13, 14, 15], np.int64)
N_RUN = len(RUN_J)
_NO_RUN_MODELS = new_models(N_RUN)  # an argument of the right type when run mode is off (never used)
# 2**16 / (count + BIAS_PRIOR), in place of scan's 2**16 / count (the kernel takes either)
RECIP_PRIOR = (1 << 16) // (np.arange(BIAS_COUNT_MAX + 1, dtype=np.int64) + BIAS_PRIOR)


# Slab mode 6: where each of the 8-token tree's nodes (1 = root .. 7) starts, P(0) in 16 bits,
# instead of 1/2. ``s`` scales u to the local activity, so the token distribution hardly depends
# on the image: these are the count-weighted means of the adapted models over eight dev volumes
# (CT and MR, 3-D and 4-D), rounded to two digits; per activity class they differ little (a
# per-class start gained < 0.1% more). Models restart every slab, so the start matters most for
# a slab of one small slice (a DICOM instance): 2.7-3.7% smaller on 80x80 and 128x128 MR slices,
# 0.3-0.5% on 512x512 ones, 0.05-0.5% on whole volumes.
TREE_PRIOR8 = np.array([0.5, 0.95, 0.83, 0.81, 0.60, 0.74, 0.77, 0.51])


def new_tree(depth: int = DEPTH, prior: bool = False) -> np.ndarray:
    """Fresh token models for a tree of ``depth``: per context, 2**depth slots (slot 0 unused)
    each holding P(0) in 16 bits above an 8-bit observation count (one load and one store per
    decision), and 2**depth more slots that the last context's leaves read as their (unused)
    children. P(0) starts at 1/2, or (``prior``, slab mode 6, depth 3) at :data:`TREE_PRIOR8`;
    the count starts at 0 either way, so the models adapt as fast."""
    nsym = 1 << depth
    tree = np.full(N_CTX * nsym + nsym, (1 << 15) << 8, np.int32)
    if prior:
        start = np.round(TREE_PRIOR8 * 65536).astype(np.int32) << 8
        tree[:N_CTX * nsym].reshape(N_CTX, nsym)[:, 1:] = start[1:]
    return tree


@kernel
def bw_write(v, n, bb, bn, pos, buf, end):
    """Append the ``n`` (<= 32) low bits of ``v`` to the bit stream; whole 32-bit words go out
    big-endian (never at or past ``end``; ``pos`` keeps counting). Returns (bb, bn, pos)."""
    bb = (bb << n) | v
    bn += n
    if bn >= 32:
        bn -= 32
        w = bb >> bn
        if pos + 4 <= end:
            buf[pos] = (w >> 24) & 0xFF
            buf[pos + 1] = (w >> 16) & 0xFF
            buf[pos + 2] = (w >> 8) & 0xFF
            buf[pos + 3] = w & 0xFF
        pos += 4
        bb &= (np.int64(1) << bn) - 1
    return bb, bn, pos


@kernel
def bw_flush(bb, bn, pos, buf, end):
    """Write the bits still held, zero-padded to whole bytes; returns the end position."""
    while bn > 0:
        take = min(bn, 8)
        bn -= take
        if pos < end:
            buf[pos] = ((bb >> bn) << (8 - take)) & 0xFF
        pos += 1
    return pos


@kernel
def br_read(n, bb, bn, pos, buf, end):
    """Read ``n`` (0..32) bits; zeros past ``end`` (the caller checks ``pos`` afterwards).
    Returns (value, bb, bn, pos)."""
    if bn < n:
        w = np.int64(0)
        for i in range(4):
            b = np.int64(0)
            if pos + i < end:
                b = np.int64(buf[pos + i])
            w = (w << 8) | b
        bb = ((bb & ((np.int64(1) << bn) - 1)) << 32) | w
        bn += 32
        pos += 4
    bn -= n
    return (bb >> bn) & ((np.int64(1) << n) - 1), bb, bn, pos


def _frame_coder(dec, depth, packed, name):
    """The kernel that encodes (``dec`` = 0) or decodes (1) one padded frame ``P`` with a token tree
    of ``depth``, compiled as ``name``. ``dec``, ``depth`` and ``packed`` reach the kernel as
    constants of its closure, which numba freezes: each kernel holds only its own direction's code,
    an unrolled tree walk, and one layout of the error rows.

    (Inlining one frame function into four entry points did the same at numba's IR level, but
    copying the IR cost about 9 of the 15 seconds a cold first call took.)

    ``packed`` (data of at most :data:`PACKED_BITS` bits): the three absolute errors of a voxel (of
    the coded value, of ``p``, of ``p2``) share one int64 in lanes of :data:`LANE_BITS` bits, so one
    row, one load and one store per voxel carry all three, and each 5-neighbour sum is one sum of
    lanes. Exact: with values of at most 16 bits, an error is below 2**17 and a sum of seven
    weights below 2**20, so no lane carries into the next. Wider data keeps three rows (the
    ``packed`` = 0 kernels, compiled only when such data comes); both write the same bytes.

    The kernel codes frame ``P`` against reference ``A`` when ``nref`` > 0. ``eb`` (6, X+4) holds
    the last two rows of absolute errors of the coded value and of each predictor (packed: rows 0
    and 1 hold all three); ``tree``
    (:func:`new_tree`) and ``bias`` (scan's bias table, flattened) carry the adaptive state across
    a slab's frames; ``tab`` is :data:`TABLES`; ``st`` = [x, rng, pos, bb, bn, rpos, ri] is the
    range coder's, the bit stream's and the run mode's state, in ``buf[:end]`` and ``rbuf[:rend]``.
    ``near`` as in :func:`scan._code_frame`.

    The tables, and the frame's and error rows' columns in the voxel loop, are indexed with
    ``np.uint64(...)``: numba adds negative-index wrap-around code to every signed index it cannot
    prove non-negative (three or four instructions each, a dozen indices per voxel; LLVM does not
    know the column is, since runs advance it); these never are negative."""

    def frame(P, A, nref, Y, X, minval, maxval, bits, near, eb, tree, tab, bias, recip, st, buf, end, rbuf,
              rend, runs, rmdl):
        x_, rng, pos = st[0], st[1], st[2]
        bb, bn, rpos = st[3], st[4], st[5]
        ri = st[6]
        # the token alphabet (constants: each entry point inlines this with its own depth)
        nsym = 1 << depth
        tok_esc = nsym - 1
        t_tok, t_base, t_bits = (T_TOK, T_BASE, T_BITS) if depth == 4 else (T_TOK8, T_BASE8, T_BITS8)
        u_esc = 128 if depth == 4 else 16  # u from here on is the escape
        esc_min = 8 if depth == 4 else 5  # the escape's smallest bit length, bitlen(u_esc)
        # mode 4 (runs) also clips the bias sums' errors; NO_CLIP is beyond any error (2**33 * 8)
        clip = np.int64(BIAS_CLIP) if runs else np.int64(NO_CLIP)
        span = np.int64(1) << bits
        half = span >> 1
        step = 2 * near + 1
        kshift = bitlen(step) - 1
        eb[:, :] = 0
        n_rows = 2 if packed else 6  # error rows in use (two per layer: this row and the one above)
        v0 = np.int64(0)
        if nref > 0:
            v0 = np.int64(A[PAD_TOP, PAD_SIDE])
        v0 = min(max(v0, minval), maxval)
        P[PAD_TOP, 0] = v0
        P[PAD_TOP, 1] = v0
        for y in range(Y):
            r = y + PAD_TOP
            cur = y & 1
            prv = cur ^ 1
            if y > 0:
                P[r, 0] = P[r - 1, PAD_SIDE]
                P[r, 1] = P[r - 1, PAD_SIDE]
                for j in range(0, n_rows, 2):
                    eb[j + cur, 0] = eb[j + prv, PAD_SIDE]
                    eb[j + cur, 1] = eb[j + prv, PAD_SIDE]
            # the error rows' values around the voxel, slid along the row in registers: the current
            # row's last two (a, b, g: coded value, p, p2; packed: all three in a) and the row
            # above's c-1, c (u, v, w; packed: u)
            a1, a2 = np.int64(eb[cur, PAD_SIDE - 1]), np.int64(eb[cur, PAD_SIDE - 2])
            um, u0 = np.int64(eb[prv, PAD_SIDE - 1]), np.int64(eb[prv, PAD_SIDE])
            if not packed:
                b1, b2 = np.int64(eb[2 + cur, PAD_SIDE - 1]), np.int64(eb[2 + cur, PAD_SIDE - 2])
                g1, g2 = np.int64(eb[4 + cur, PAD_SIDE - 1]), np.int64(eb[4 + cur, PAD_SIDE - 2])
                vm, v0 = np.int64(eb[2 + prv, PAD_SIDE - 1]), np.int64(eb[2 + prv, PAD_SIDE])
                wm, w0 = np.int64(eb[4 + prv, PAD_SIDE - 1]), np.int64(eb[4 + prv, PAD_SIDE])
            # the neighbours slide along the row in registers too: W is the voxel just decoded, so
            # reloading it from P would put a store-to-load round trip on the decoder's critical path
            W = np.int64(P[r, PAD_SIDE - 1])
            WW = np.int64(P[r, PAD_SIDE - 2])
            NW = np.int64(P[r - 1, PAD_SIDE - 1])
            N = np.int64(P[r - 1, PAD_SIDE])
            NE = np.int64(P[r - 1, PAD_SIDE + 1])
            x = np.int64(0)
            while x < X:
                c = x + PAD_SIDE
                if y == 0:
                    P[r - 1, c - 1] = W
                    P[r - 1, c] = W
                    P[r - 1, c + 1] = W
                    P[r - 2, c] = W
                    N = NW = NE = W
                NN = np.int64(P[r - 2, np.uint64(c)])
                NEE = np.int64(P[r - 1, np.uint64(c + 2)])
                # (W == N first: in texture it fails, and the branches after it are not taken)
                if (W == N and runs and y > 0 and N == NW and N == NE and W == WW
                        and N == NN and (nref == 0 or np.int64(A[r, np.uint64(c)]) == W)):
                    # ---- run mode (slab mode 4): a flat neighbourhood codes how many voxels along the
                    # row repeat W (within near), JPEG-LS style: one adaptive decision per block of
                    # 2**J voxels, J growing with each full block (index ri), then the rest of the
                    # run in J verbatim bits. The voxel that ends a run is coded as usual below.
                    rem = np.int64(1)  # a run ends where the row above stops repeating W
                    while rem < X - x and np.int64(P[r - 1, c + rem + 1]) == W and (
                            nref == 0 or np.int64(A[r, c + rem]) == W):
                        rem += 1
                    ln = np.int64(0)
                    rl = np.int64(0)
                    if not dec:
                        while rl < rem and abs(np.int64(P[r, c + rl]) - W) <= near:
                            rl += 1
                    while ln < rem:
                        jb = tab[np.uint64(T_J + ri)]
                        blk = np.int64(1) << jb
                        bit = np.int64(rl - ln >= blk or rl == rem)
                        bit, x_, rng, pos = rc_bit(x_, rng, pos, buf, end, rmdl, ri, bit, dec)
                        if bit:
                            # a whole block raises J; the stub at the run's limit does not
                            ri = min(ri + np.int64(ln + blk <= rem), N_RUN - 1)
                            ln = min(ln + blk, rem)
                        else:
                            if dec:
                                rl, bb, bn, rpos = br_read(jb, bb, bn, rpos, rbuf, rend)
                                ln = min(ln + rl, rem)  # a damaged stream must not run past the row
                            else:
                                bb, bn, rpos = bw_write(rl - ln, jb, bb, bn, rpos, rbuf, rend)
                                ln = rl
                            ri = max(ri - 1, 0)
                            break
                    for k in range(c, c + ln):
                        P[r, k] = W
                        for j in range(0, n_rows, 2):
                            eb[j + cur, k] = 0
                    x += ln
                    if x == X:
                        break
                    if ln > 0:
                        c = x + PAD_SIDE
                        a2 = 0 if ln > 1 else a1
                        a1 = 0
                        um, u0 = np.int64(eb[prv, c - 1]), np.int64(eb[prv, c])
                        if not packed:
                            b2 = 0 if ln > 1 else b1
                            g2 = 0 if ln > 1 else g1
                            b1 = g1 = 0
                            vm, v0 = np.int64(eb[2 + prv, c - 1]), np.int64(eb[2 + prv, c])
                            wm, w0 = np.int64(eb[4 + prv, c - 1]), np.int64(eb[4 + prv, c])
                        WW = W
                        N = np.int64(P[r - 1, c])
                        NW = np.int64(P[r - 1, c - 1])
                        NE = np.int64(P[r - 1, c + 1])
                        NN = np.int64(P[r - 2, c])
                        NEE = np.int64(P[r - 1, c + 2])
                if nref > 0:
                    R = np.int64(A[r, np.uint64(c)])
                    AW, AN = np.int64(A[r, np.uint64(c - 1)]), np.int64(A[r - 1, np.uint64(c)])
                    p = R + ((W - AW + N - AN) >> 1)
                    p2 = _med(W, N, NW)
                    tex_r = R
                    t2 = NW
                else:
                    p = _med(W, N, NW)
                    p2 = (2 * (W + N) + NE - NW + 2) >> 2
                    tex_r = NW
                    t2 = WW
                up = np.int64(eb[prv, np.uint64(c + 1)])
                # the 5-neighbour error sums of the coded value (act0), of p (e1) and of p2 (e2)
                act0 = 2 * (a1 + u0) + um + up + a2
                if packed:
                    e1 = (act0 >> LANE_BITS) & LANE
                    e2 = act0 >> (2 * LANE_BITS)
                    act0 &= LANE
                else:
                    vp = np.int64(eb[2 + prv, np.uint64(c + 1)])
                    wp = np.int64(eb[4 + prv, np.uint64(c + 1)])
                    e1 = 2 * (b1 + v0) + vm + vp + b2
                    e2 = 2 * (g1 + w0) + wm + wp + g2
                # a cheap blend: the weight of each predictor in eighths, from the ratio of local errors:
                # p2 weighs as many eighths as the thresholds 16 * e1 / (e1 + e2) passes (by
                # multiplication: a division would sit on the decoder's critical path), p the rest;
                # 8 p + (p2 - p) w2 leaves one multiply after the weight
                a = (e1 + 1) * 16
                t = e1 + e2 + 2
                # (np.int64 first: interpreted, numpy would add the comparisons as booleans, i.e. OR them)
                w2 = (np.int64(a >= 3 * t) + (a >= 5 * t) + (a >= 7 * t) + (a >= 8 * t) + (a >= 9 * t)
                      + (a >= 10 * t) + (a >= 12 * t) + (a >= 14 * t))
                p8 = p * 8 + (p2 - p) * w2
                act = act0 + 2 * min(e1, e2)
                q = _activity_class(act)
                qb = min(q >> 2, N_BIAS_E - 1)
                tex = ((N * 8 > p8) * 1 + (W * 8 > p8) * 2 + (NE * 8 > p8) * 4 + (tex_r * 8 > p8) * 8)
                bctx = qb * 128 + tex + (t2 * 8 > p8) * 16 + (NN * 8 > p8) * 32 + (NEE * 8 > p8) * 64
                bi = 3 * bctx  # bias is flat: [sum, count + 1, mean] per context
                p8c = p8 + bias[np.uint64(bi + 2)]
                pred = min(max((p8c + 4) >> 3, minval), maxval)
                s = min(max(bitlen(act) - S_OFF - kshift, 0), S_MAX)
                ctx = q * 16 + tex
                if not dec:
                    e = fold_residual(np.int64(P[r, np.uint64(c)]) - pred, near, half, span, step)
                    m = e if e >= 0 else -e
                    u = m >> s
                    tok = tab[np.uint64(t_tok + u)] if u < u_esc else np.int64(tok_esc)
                # ---- the token: `depth` binary decisions down a tree of 2**depth - 1 adaptive models
                node = np.int64(1)
                w = c0 = c1 = np.int64(0)
                if dec:
                    w = np.int64(tree[np.uint64(ctx * nsym + 1)])
                for lvl in range(depth):
                    i = ctx * nsym + node
                    if dec:
                        # both children's models, loaded before the bit is known: the next decision
                        # then waits for a select, not for a load whose address needs the bit (the
                        # encoder knows its bits: loading both would only cost it)
                        c0 = np.int64(tree[np.uint64(i + node)])
                        c1 = np.int64(tree[np.uint64(i + node + 1)])
                    else:
                        w = np.int64(tree[np.uint64(i)])
                    p0 = w >> 8
                    seen = w & 255
                    bound = (rng >> 16) * p0
                    if dec:
                        bit = np.int64(x_ >= bound)
                    else:
                        bit = (tok >> (depth - 1 - lvl)) & 1
                    rate = tab[np.uint64(T_RATE + seen)]
                    # selects (cmov), not branches: the bit is data, a branch on it would mispredict;
                    # and rng - bound is ready with bound, so the next decision waits one cmov
                    if dec:
                        x_ = x_ - bound if bit else x_
                    else:
                        x_ = x_ + bound if bit else x_
                    rng = rng - bound if bit else bound
                    p0 += ((65535 - 65534 * bit) - p0) >> rate
                    tree[np.uint64(i)] = (p0 << 8) | (seen + (seen < 255))
                    if not dec and x_ > MASK32:
                        x_ &= MASK32
                        rc_carry(pos, buf, end)
                    while rng < TOP:  # rc_normalize, inline (see the raw bits below)
                        rng <<= 8
                        if dec:
                            x_ = ((x_ << 8) | (np.int64(buf[pos]) if pos < end else 0)) & MASK32
                        else:
                            if pos < end:
                                buf[pos] = (x_ >> 24) & 0xFF
                            x_ = (x_ << 8) & MASK32
                        pos += 1
                    node = 2 * node + bit
                    if dec:
                        w = c1 if bit else c0
                tok = node - nsym
                # ---- raw bits: below the token, then the sign. The common case reads and writes the
                # bit stream inline: a call that passes an array costs two atomic reference-count
                # updates, more than the rest of the voxel's bit handling.
                if tok < tok_esc:
                    if dec and depth == DEPTH:  # 8 tokens: base and bits from a constant, not loads
                        tb = (np.int64(TOK8_PACKED) >> (tok << 3)) & 255
                        nr = (tb >> 4) + s
                        tbase = tb & 15
                    else:
                        nr = tab[np.uint64(t_bits + tok)] + s
                        tbase = tab[np.uint64(t_base + tok)]
                    if dec:
                        # take the sign bit too, and give it back below if the magnitude is zero
                        if bn <= nr:
                            w = np.int64(0)
                            for k in range(4):
                                w = (w << 8) | (np.int64(rbuf[rpos + k]) if rpos + k < rend else 0)
                            bb = ((bb & ((np.int64(1) << bn) - 1)) << 32) | w
                            bn += 32
                            rpos += 4
                        bn -= nr + 1
                        val = (bb >> bn) & ((np.int64(2) << nr) - 1)
                        m = (tbase << s) + (val >> 1)
                        nz = np.int64(m != 0)
                        bn += 1 - nz
                        # negate by the sign bit (all ones: (m ^ -1) + 1 = -m); no need to wait for
                        # m != 0, since a zero magnitude gives (0 ^ -1) + 1 = 0 either way
                        neg = -(val & 1)
                        e = (m ^ neg) - neg
                    else:
                        nz = np.int64(m != 0)
                        nw = nr + nz
                        low = m - (tbase << s)
                        bb = (bb << nw) | ((low << nz) | (np.int64(e < 0) & nz))
                        bn += nw
                        if bn >= 32:
                            bn -= 32
                            w = bb >> bn
                            if rpos + 4 <= rend:
                                rbuf[rpos] = (w >> 24) & 0xFF
                                rbuf[rpos + 1] = (w >> 16) & 0xFF
                                rbuf[rpos + 2] = (w >> 8) & 0xFF
                                rbuf[rpos + 3] = w & 0xFF
                            rpos += 4
                            bb &= (np.int64(1) << bn) - 1
                else:  # the escape: rare, so the helpers' call cost does not matter
                    if dec:
                        kl, bb, bn, rpos = br_read(ESC_LEN_BITS, bb, bn, rpos, rbuf, rend)
                        kl = min(kl + esc_min, 33)  # a damaged stream must not ask for more than 32 bits
                        val, bb, bn, rpos = br_read(kl - 1, bb, bn, rpos, rbuf, rend)
                        low, bb, bn, rpos = br_read(s, bb, bn, rpos, rbuf, rend)
                        m = (((np.int64(1) << (kl - 1)) | val) << s) | low
                        sg, bb, bn, rpos = br_read(np.int64(m != 0), bb, bn, rpos, rbuf, rend)
                        e = -m if sg else m
                    else:
                        kl = bitlen(u)
                        bb, bn, rpos = bw_write(kl - esc_min, ESC_LEN_BITS, bb, bn, rpos, rbuf, rend)
                        bb, bn, rpos = bw_write(u & ((np.int64(1) << (kl - 1)) - 1), kl - 1, bb, bn, rpos,
                                                rbuf, rend)
                        bb, bn, rpos = bw_write(m & ((np.int64(1) << s) - 1), s, bb, bn, rpos, rbuf, rend)
                        bb, bn, rpos = bw_write(np.int64(e < 0), np.int64(m != 0), bb, bn, rpos, rbuf, rend)
                if near == 0:
                    if dec:
                        xv = unfold_residual(pred, e, minval, span)
                        P[r, np.uint64(c)] = xv
                    else:
                        xv = np.int64(P[r, np.uint64(c)])
                else:
                    xv = min(max(pred + e * step, minval), maxval)
                    P[r, np.uint64(c)] = xv
                da, db, dg = abs(xv - pred), abs(xv - p), abs(xv - p2)
                a2 = a1
                um, u0 = u0, up
                if packed:
                    a1 = da | (db << LANE_BITS) | (dg << (2 * LANE_BITS))
                else:
                    a1 = da
                    b2, b1 = b1, db
                    g2, g1 = g1, dg
                    eb[2 + cur, np.uint64(c)] = b1
                    eb[4 + cur, np.uint64(c)] = g1
                    vm, v0, wm, w0 = v0, vp, w0, wp
                eb[cur, np.uint64(c)] = a1
                WW, W, NW, N, NE = W, xv, N, NE, NEE
                # the error the bias sum takes is clipped to about the local activity: one outlier
                # (an intra frame's first voxel, an edge) otherwise shifts a flat context's
                # predictions for hundreds of voxels (2-4% of a CT's bits). Always on: the modes that
                # do not clip (2, 3) pass a limit no error reaches.
                lim = act + clip
                bsum = bias[np.uint64(bi)] + min(max(xv * 8 - p8, -lim), lim)
                n = bias[np.uint64(bi + 1)] + 1
                full = np.int64(n >= BIAS_COUNT_MAX)  # halve the sum and count (without a branch)
                bsum >>= full
                n -= full * (BIAS_COUNT_MAX - BIAS_COUNT_MAX // 2)
                bias[np.uint64(bi)] = bsum
                bias[np.uint64(bi + 1)] = n
                bias[np.uint64(bi + 2)] = (bsum * recip[np.uint64(n)]) >> 16
                x += 1
            P[r, X + PAD_SIDE] = P[r, X + PAD_SIDE - 1]
            P[r, X + PAD_SIDE + 1] = P[r, X + PAD_SIDE - 1]
            for j in range(0, n_rows, 2):
                eb[j + cur, X + PAD_SIDE] = eb[j + cur, X + PAD_SIDE - 1]
        st[0], st[1], st[2] = x_, rng, pos
        st[3], st[4], st[5] = bb, bn, rpos
        st[6] = ri
        return 0

    frame.__name__ = frame.__qualname__ = name  # numba names its cache files after it
    return kernel(frame)


# (dec, depth, packed) -> kernel; numba compiles each on its first call, so the modes 2-4 (16
# tokens) and wide-data kernels cost nothing until a stream (or a test) needs them
KERNELS = {(dec, depth, packed): _frame_coder(dec, depth, packed, "_fast_{}{}{}".format(
    "decode" if dec else "encode", "" if depth == DEPTH else "_old", "" if packed else "_wide"))
    for dec in (0, 1) for depth in (DEPTH, DEPTH_OLD) for packed in (1, 0)}


# the small tables in one array (fewer array arguments: less register pressure in the voxel loop)
_PARTS = (RATE_OF, TOK_OF, TOK_BASE, TOK_BITS, RUN_J, TOK_OF8, TOK_BASE8, TOK_BITS8)
_OFFSETS = np.cumsum([0] + [len(a) for a in _PARTS[:-1]]).tolist()
T_RATE, T_TOK, T_BASE, T_BITS, T_J, T_TOK8, T_BASE8, T_BITS8 = _OFFSETS
TABLES = np.concatenate(_PARTS).astype(np.int64)


def new_state() -> np.ndarray:
    """The coder state a slab's frames pass on: x, rng, pos (range coder), bb, bn, rpos (bit
    stream), run index (mode 4)."""
    return np.zeros(7, np.int64)


def fast_frame(dec, P, A, nref, Y, X, minval, maxval, bits, near, eb, tree, bias, recip, st, buf, end, rbuf,
               rend, runs=0, rmdl=None, depth=DEPTH):
    """Encode (dec=1: decode) one frame with the fast scan compiled for this direction and tree
    ``depth`` (:func:`new_tree` of the same depth); ``runs`` turns run mode on (slab modes 4, 5),
    with its decision models ``rmdl`` (``new_models(N_RUN)``)."""
    f = KERNELS[int(bool(dec)), depth, int(bits <= PACKED_BITS)]
    flat = bias.reshape(-1)
    if rmdl is None:
        rmdl = _NO_RUN_MODELS
    return f(P, A, nref, Y, X, minval, maxval, bits, near, eb, tree, TABLES, flat, recip, st, buf, end, rbuf,
             rend, runs, rmdl)
