"""Binary adaptive range coder (LZMA-style carry-less low/range coder) and bit models.

One function serves both directions: ``dec == 0`` encodes ``bit`` and returns it, ``dec == 1``
ignores ``bit`` and returns the decoded one, so every modelling decision is written once and the
encoder and decoder cannot drift apart.

Coder state ``rc`` (int64[RC_SIZE]):
    LOW     encoder: low end of the interval (33 bits with the carry)
    RANGE   interval width, kept in [2**24, 2**32)
    CACHE   encoder: byte held back until the carry is known
    CSIZE   encoder: number of held-back bytes (cache plus pending 0xFF bytes)
    POS     next byte position in ``buf`` (both directions)
    CODE    decoder: the code value inside the interval
    END     number of valid bytes in ``buf``
    OVER    encoder: 1 if the output would not fit in ``buf``; decoder: bytes read past END

Bit model (int32[3] per context, in ``probs``): two estimates of P(bit == 0) in 16-bit fixed point,
one fast and one slow, averaged; both adapt quickly at first (the shift grows with the count in
the third slot), which matters because models restart at every slab.
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel

LOW, RANGE, CACHE, CSIZE, POS, CODE, END, OVER = 0, 1, 2, 3, 4, 5, 6, 7
RC_SIZE = 8

PROB_BITS = 16
PROB_INIT = 1 << (PROB_BITS - 1)
TOP = 1 << 24
MASK32 = 0xFFFFFFFF
FAST_SHIFT_MAX = 4
SLOW_SHIFT_MAX = 7
COUNT_MAX = 255


def new_models(n_contexts: int) -> np.ndarray:
    """Fresh bit models for ``n_contexts`` contexts (P(0) = 1/2, count 0)."""
    m = np.empty((n_contexts, 3), np.int32)
    m[:, 0] = PROB_INIT
    m[:, 1] = PROB_INIT
    m[:, 2] = 0
    return m


def new_state(buf_len: int, decoding: bool) -> np.ndarray:
    rc = np.zeros(RC_SIZE, np.int64)
    rc[RANGE] = MASK32
    rc[CSIZE] = 1
    rc[END] = buf_len
    return rc


@kernel
def _put_byte(rc, buf, value):
    pos = rc[POS]
    if pos < rc[END]:
        buf[pos] = value & 0xFF
    else:
        rc[OVER] = 1
    rc[POS] = pos + 1


@kernel
def _get_byte(rc, buf):
    pos = rc[POS]
    rc[POS] = pos + 1
    if pos < rc[END]:
        return np.int64(buf[pos])
    rc[OVER] += 1
    return np.int64(0)


@kernel
def _shift_low(rc, buf):
    low = rc[LOW]
    if low < 0xFF000000 or low > MASK32:
        carry = low >> 32
        temp = rc[CACHE]
        n = rc[CSIZE]
        while n > 0:
            _put_byte(rc, buf, temp + carry)
            temp = 0xFF
            n -= 1
        rc[CSIZE] = 0
        rc[CACHE] = (low >> 24) & 0xFF
    rc[CSIZE] += 1
    rc[LOW] = (low & 0x00FFFFFF) << 8


@kernel
def rc_start_decoder(rc, buf):
    """Prime the decoder with the first five bytes (the first is always 0)."""
    code = np.int64(0)
    for _ in range(5):
        code = (code << 8) | _get_byte(rc, buf)
    rc[CODE] = code & MASK32
    rc[RANGE] = MASK32


@kernel
def rc_finish_encoder(rc, buf):
    """Flush the encoder; afterwards rc[POS] is the stream length."""
    for _ in range(5):
        _shift_low(rc, buf)


@kernel
def rc_bit(rc, buf, probs, ctx, bit, dec):
    """Code one binary decision with adaptive model ``probs[ctx]``; returns the bit."""
    pf = np.int64(probs[ctx, 0])
    ps = np.int64(probs[ctx, 1])
    p0 = (pf + ps) >> 1
    rng = rc[RANGE]
    bound = (rng >> PROB_BITS) * p0
    if dec:
        code = rc[CODE]
        if code < bound:
            rng = bound
            bit = 0
        else:
            rc[CODE] = code - bound
            rng -= bound
            bit = 1
    else:
        if bit == 0:
            rng = bound
        else:
            rc[LOW] += bound
            rng -= bound
    while rng < TOP:
        rng <<= 8
        if dec:
            rc[CODE] = ((rc[CODE] << 8) | _get_byte(rc, buf)) & MASK32
        else:
            _shift_low(rc, buf)
    rc[RANGE] = rng
    # adaptive update: the shift grows with the number of observations
    n = np.int64(probs[ctx, 2])
    sh = SLOW_SHIFT_MAX
    if n < 63:
        sh = 1
        while (np.int64(1) << sh) <= n + 1:
            sh += 1
    shf = sh if sh < FAST_SHIFT_MAX else FAST_SHIFT_MAX
    if bit == 0:
        pf += (65536 - pf) >> shf
        ps += (65536 - ps) >> sh
    else:
        pf -= pf >> shf
        ps -= ps >> sh
    probs[ctx, 0] = pf
    probs[ctx, 1] = ps
    if n < COUNT_MAX:
        probs[ctx, 2] = n + 1
    return bit


@kernel
def rc_direct(rc, buf, value, nbits, dec):
    """Code ``nbits`` equiprobable bits of ``value`` (most significant first); returns the value."""
    out = np.int64(0)
    for i in range(nbits - 1, -1, -1):
        rng = rc[RANGE] >> 1
        if dec:
            code = rc[CODE]
            b = np.int64(0)
            if code >= rng:
                rc[CODE] = code - rng
                b = 1
        else:
            b = (value >> i) & 1
            if b:
                rc[LOW] += rng
        out = (out << 1) | b
        while rng < TOP:
            rng <<= 8
            if dec:
                rc[CODE] = ((rc[CODE] << 8) | _get_byte(rc, buf)) & MASK32
            else:
                _shift_low(rc, buf)
        rc[RANGE] = rng
    return out
