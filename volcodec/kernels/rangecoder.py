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

import numpy as np

from .._jit import inline, kernel

PROB_BITS = 16
PROB_INIT = 1 << (PROB_BITS - 1)
TOP = 1 << 24
MASK32 = 0xFFFFFFFF
FAST_SHIFT_MAX = 4
SLOW_SHIFT_MAX = 7
COUNT_MAX = 255
DIRECT_MAX = 16  # bits per rc_direct call


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


@inline
def _carry(pos, buf, end):
    """Propagate a carry into the bytes already written (never past the stream's first byte:
    the coded value is always below 1.0)."""
    i = pos - 1
    while i >= 0:
        if i < end:
            v = np.int64(buf[i]) + 1
            buf[i] = v & 0xFF
            if v < 256:
                return
        i -= 1


@inline
def _normalize(x, rng, pos, buf, end, dec):
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


@inline
def rc_bit(x, rng, pos, buf, end, probs, ctx, bit, dec):
    """Code one binary decision with adaptive model ``probs[ctx]``; returns (bit, x, rng, pos)."""
    pf = np.int64(probs[ctx, 0])
    ps = np.int64(probs[ctx, 1])
    bound = (rng >> PROB_BITS) * ((pf + ps) >> 1)
    if dec:
        bit = 1 if x >= bound else 0
    if bit:
        x = x - bound if dec else x + bound
        rng -= bound
    else:
        rng = bound
    if not dec and x > MASK32:
        x &= MASK32
        _carry(pos, buf, end)
    x, rng, pos = _normalize(x, rng, pos, buf, end, dec)
    # adaptive update: the shift grows with the number of observations
    n = np.int64(probs[ctx, 2])
    sh = SLOW_SHIFT_MAX
    if n < 63:
        sh = 1
        while (np.int64(1) << sh) <= n + 1:
            sh += 1
        probs[ctx, 2] = n + 1
    shf = sh if sh < FAST_SHIFT_MAX else FAST_SHIFT_MAX
    if bit:
        pf -= pf >> shf
        ps -= ps >> sh
    else:
        pf += (65536 - pf) >> shf
        ps += (65536 - ps) >> sh
    probs[ctx, 0] = pf
    probs[ctx, 1] = ps
    return bit, x, rng, pos


@inline
def rc_direct(x, rng, pos, buf, end, value, nbits, dec):
    """Code ``nbits`` (<= DIRECT_MAX) equiprobable bits at once; returns (value, x, rng, pos)."""
    rng >>= nbits
    if dec:
        value = x // rng
        top = (np.int64(1) << nbits) - 1
        if value > top:  # only on corrupt data: stay inside the interval
            value = top
        x -= value * rng
    else:
        x += value * rng
        if x > MASK32:
            x &= MASK32
            _carry(pos, buf, end)
    x, rng, pos = _normalize(x, rng, pos, buf, end, dec)
    return value, x, rng, pos
