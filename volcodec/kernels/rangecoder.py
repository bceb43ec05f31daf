"""Binary adaptive range coder with carry propagation in the output buffer, and bit models.

The coder state is three scalars that the caller keeps in local variables (registers) and
threads through every call: ``x`` (encoder: ``low``, the interval start; decoder: ``code``, the
offset of the value inside the interval), ``rng`` (interval width, kept in [2**24, 2**32)) and
``pos`` (next byte in ``buf``). Every function returns the updated state.

One function serves both directions: ``dec == 0`` encodes ``bit`` and returns it, ``dec == 1``
ignores ``bit`` and returns the decoded one, so every modelling decision is written once and the
encoder and decoder cannot drift apart.

Bounds: the encoder never writes at or past ``end`` (it keeps counting, so ``pos > end`` after
:func:`rc_flush` means the output did not fit); the decoder reads zeros past ``end`` (so
``pos > end + 4`` after decoding means the data ran out). Neither raises.

Bit model (``probs[ctx]``, int32[3]): two estimates of P(bit == 0) in 16-bit fixed point, one fast
and one slow, averaged; both adapt quickly at first (the shift grows with the count in the third
slot), which matters because models restart at every slab.
"""

from __future__ import annotations

import numba
import numpy as np

from .._jit import kernel

PROB_BITS = 16
PROB_INIT = 1 << (PROB_BITS - 1)
TOP = 1 << 24
MASK32 = 0xFFFFFFFF
FAST_SHIFT_MAX = 4
SLOW_SHIFT_MAX = 8
COUNT_MAX = 255
DIRECT_MAX = 8  # bits per rc_raw call: rng >= 2**24 stays >= 2**16


def new_models(n_contexts: int) -> np.ndarray:
    """Fresh bit models for ``n_contexts`` contexts (P(0) = 1/2, count 0)."""
    m = np.empty((n_contexts, 3), np.int32)
    m[:, 0] = PROB_INIT
    m[:, 1] = PROB_INIT
    m[:, 2] = 0
    return m


@kernel
def rc_start(buf, pos, end, dec):
    """Initial (x, rng, pos): the decoder reads the first four bytes."""
    x = np.int64(0)
    if dec:
        for _ in range(4):
            b = np.int64(0)
            if pos < end:
                b = np.int64(buf[pos])
            x = (x << 8) | b
            pos += 1
    return x, np.int64(MASK32), pos


@kernel
def rc_flush(x, rng, pos, buf, end):
    """Encoder: write the four bytes of ``low``; returns the final length (> end: overflow)."""
    for _ in range(4):
        if pos < end:
            buf[pos] = (x >> 24) & 0xFF
        pos += 1
        x = (x << 8) & MASK32
    return pos


@kernel
def rc_carry(pos, buf, end):
    """Propagate a carry into the bytes already written (never past the stream's first byte:
    the coded value is always below 1.0). Rare: called only when ``low`` overflows."""
    i = pos - 1
    while i >= 0:
        if i < end:
            v = np.int64(buf[i]) + 1
            buf[i] = v & 0xFF
            if v < 256:
                return
        i -= 1


@kernel
def rc_normalize(x, rng, pos, buf, end, dec):
    """Shift whole bytes out of (encoder) or into (decoder) the interval until rng >= TOP."""
    while rng < TOP:
        rng <<= 8
        if dec:
            b = np.int64(0)
            if pos < end:
                b = np.int64(buf[pos])
            x = ((x << 8) | b) & MASK32
        else:
            if pos < end:
                buf[pos] = (x >> 24) & 0xFF
            x = (x << 8) & MASK32
        pos += 1
    return x, rng, pos


@kernel
def rc_binary(x, rng, p0, bit, dec):
    """Split the interval by P(0) = p0 / 2**16 and code ``bit``; returns (bit, x, rng).
    The caller then carries (encoder, x > MASK32) and normalises (rng < TOP)."""
    bound = (rng >> PROB_BITS) * p0
    if dec:
        bit = 1 if x >= bound else 0
    if bit:
        x = x - bound if dec else x + bound
        rng -= bound
    else:
        rng = bound
    return bit, x, rng


@kernel
def rc_raw(x, rng, value, nbits, dec):
    """Code ``nbits`` (<= DIRECT_MAX) equiprobable bits, most significant first, by halving the
    interval once per bit (no division); returns (value, x, rng). rng stays >= 2**16."""
    out = np.int64(0)
    for i in range(nbits - 1, -1, -1):
        rng >>= 1
        if dec:
            b = np.int64(x >= rng)
        else:
            b = (value >> i) & 1
        x = x - rng * b if dec else x + rng * b
        out = (out << 1) | b
    return out, x, rng


@kernel
def bitlen_search(v):
    """Number of bits of 0 <= v < 2**63 (0 for 0): a branch-free binary search, because the
    data-dependent branches of a loop or an if-ladder mispredict on residuals. :func:`bitlen`
    when numba's count-leading-zeros intrinsic is missing, and under ``NUMBA_DISABLE_JIT``."""
    t = np.int64(v >= np.int64(1) << 32)
    n = t << 5
    v >>= n
    t = np.int64(v >= 1 << 16)
    n += t << 4
    v >>= t << 4
    t = np.int64(v >= 1 << 8)
    n += t << 3
    v >>= t << 3
    t = np.int64(v >= 1 << 4)
    n += t << 2
    v >>= t << 2
    t = np.int64(v >= 1 << 2)
    n += t << 1
    v >>= t << 1
    t = np.int64(v >= 2)
    n += t
    v >>= t
    return n + v


try:  # LLVM's ctlz: one instruction (lzcnt) where the search takes about twenty
    from numba.cpython.unsafe.numbers import leading_zeros as _leading_zeros
except ImportError:  # pragma: no cover - an internal of numba that may move
    _leading_zeros = None

if _leading_zeros is None or numba.config.DISABLE_JIT:
    bitlen = bitlen_search
else:
    @kernel
    def bitlen(v):
        """Number of bits of 0 <= v < 2**63 (0 for 0)."""
        return 64 - np.int64(_leading_zeros(np.uint64(v)))


@kernel
def adapt(pf, ps, n, bit):
    """Update a bit model (fast and slow P(0) estimates, observation count) after ``bit``.
    The slow shift is bit_length(n + 1): 1, 2, 2, 3, ... up to SLOW_SHIFT_MAX at n = 63."""
    sh = SLOW_SHIFT_MAX
    if n < 127:  # predictable: almost every context in use is past its first 63 observations
        sh = bitlen(n + 1)
        n += 1
    shf = min(FAST_SHIFT_MAX, sh)
    if bit:
        pf -= pf >> shf
        ps -= ps >> sh
    else:
        pf += (65536 - pf) >> shf
        ps += (65536 - ps) >> sh
    return pf, ps, n


@kernel
def rc_bit(x, rng, pos, buf, end, probs, ctx, bit, dec):
    """Code one decision with model ``probs[ctx]``; returns (bit, x, rng, pos). The scan kernel
    composes the same steps at its single coding site; this is the same operation for callers
    that code a few bits (tests, headers)."""
    bit, x, rng = rc_binary(x, rng, (np.int64(probs[ctx, 0]) + probs[ctx, 1]) >> 1, bit, dec)
    if not dec and x > MASK32:
        x &= MASK32
        rc_carry(pos, buf, end)
    if rng < TOP:
        x, rng, pos = rc_normalize(x, rng, pos, buf, end, dec)
    pf, ps, n = adapt(np.int64(probs[ctx, 0]), np.int64(probs[ctx, 1]), np.int64(probs[ctx, 2]), bit)
    probs[ctx, 0] = pf
    probs[ctx, 1] = ps
    probs[ctx, 2] = n
    return bit, x, rng, pos


@kernel
def rc_direct(x, rng, pos, buf, end, value, nbits, dec):
    """Code ``nbits`` (<= DIRECT_MAX) equiprobable bits; returns (value, x, rng, pos)."""
    value, x, rng = rc_raw(x, rng, value, nbits, dec)
    if not dec and x > MASK32:
        x &= MASK32
        rc_carry(pos, buf, end)
    if rng < TOP:
        x, rng, pos = rc_normalize(x, rng, pos, buf, end, dec)
    return value, x, rng, pos
