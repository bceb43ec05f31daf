"""Plain-Python twins of the small kernels, written differently on purpose.

Each twin states the kernel's contract in the most obvious way (a sort, ``int.bit_length``, a table
of class boundaries, Python's unbounded integers for the coder's low end) so that a test comparing
the two catches a slip in the fast version. Nothing here imports numba or the kernels.
"""

from __future__ import annotations

import bisect
import math


# --------------------------------------------------------------------------- prediction
def med(a: int, b: int, c: int) -> int:
    """LOCO-I median edge detector (W=a, N=b, NW=c): the median of W, N and the plane W + N - NW."""
    return sorted((a, b, a + b - c))[1]


def bitlen(v: int) -> int:
    """Number of bits of ``v >= 0`` (0 for 0)."""
    return int(v).bit_length()


def _class_bounds(n_classes: int) -> list[int]:
    """Lower bounds of the activity classes: 0, 1, 2, 3, then two per octave (4, 6, 8, 12, 16, 24...)."""
    bounds = [0, 1, 2, 3]
    octave = 4
    while len(bounds) < n_classes:
        bounds += [octave, octave + octave // 2]
        octave *= 2
    return bounds[:n_classes]


def activity_class(act: int, n_classes: int) -> int:
    """The activity class of ``act >= 0``: the last class whose lower bound is <= act."""
    return bisect.bisect_right(_class_bounds(n_classes), act) - 1


# --------------------------------------------------------------------------- binary coder model
PROB_ONE = 1 << 16  # probabilities are 16-bit fixed point
TOP = 1 << 24
FULL = (1 << 32) - 1


class BitModel:
    """One adaptive bit model as rc_bit keeps it: P(bit == 0) from a fast and a slow estimate.

    Both start at 1/2. The slow estimate's shift grows with the number of observations n as
    ``1 + floor(log2(n + 1))`` until it reaches ``slow_max``, then stays there (the count stops
    at ``2**(slow_max - 1) - 1``); the fast one's shift is the same, capped at ``fast_max``. The
    probability coded with is the mean of the two, rounded down. The caps are the coder's tuning
    constants, so the tests pass them in; the shape of the rule is what this twin pins down.
    """

    def __init__(self, fast_max: int = 4, slow_max: int = 7):
        self.fast_max, self.slow_max = fast_max, slow_max
        self.count_limit = 2 ** (slow_max - 1) - 1
        self.fast = PROB_ONE // 2
        self.slow = PROB_ONE // 2
        self.count = 0

    def with_state(self, fast: int, slow: int, count: int) -> BitModel:
        """A copy of this model's rule in the given state."""
        m = BitModel(self.fast_max, self.slow_max)
        m.fast, m.slow, m.count = fast, slow, count
        return m

    def p0(self) -> int:
        """P(bit == 0) in 1/65536 units."""
        return (self.fast + self.slow) // 2

    def shifts(self) -> tuple[int, int]:
        if self.count >= self.count_limit:
            slow = self.slow_max
        else:
            slow = 1 + math.floor(math.log2(self.count + 1))
        return min(slow, self.fast_max), slow

    def update(self, bit: int) -> None:
        fast_shift, slow_shift = self.shifts()
        if bit:
            self.fast -= self.fast >> fast_shift
            self.slow -= self.slow >> slow_shift
        else:
            self.fast += (PROB_ONE - self.fast) >> fast_shift
            self.slow += (PROB_ONE - self.slow) >> slow_shift
        if self.count < self.count_limit:
            self.count += 1

    def state(self) -> tuple[int, int, int]:
        """(fast, slow, count), the layout of one row of rangecoder.new_models."""
        return self.fast, self.slow, self.count


def ideal_bits(symbols, n_contexts: int, new_model=BitModel) -> float:
    """Code length in bits that an ideal coder would spend on ``symbols`` with these models.

    ``symbols`` holds ("bit", ctx, bit) or ("direct", nbits, value) tuples; direct bits cost one
    bit each. ``new_model`` makes one context's model.
    """
    models = [new_model() for _ in range(n_contexts)]
    total = 0.0
    for kind, a, v in symbols:
        if kind == "direct":
            total += a
            continue
        m = models[a]
        p0 = m.p0() / PROB_ONE
        total -= math.log2(p0 if v == 0 else 1.0 - p0)
        m.update(v)
    return total


def range_encode(symbols, n_contexts: int, new_model=BitModel) -> bytes:
    """The same range coder as kernels/rangecoder.py, written with an unbounded ``low``.

    Python integers never overflow, so there is no carry to propagate: ``low`` simply keeps every
    byte shifted out so far, and the stream is its big-endian digits (plus the four flushed bytes).
    """
    models = [new_model() for _ in range(n_contexts)]
    low, rng, n_shifted = 0, FULL, 0
    for kind, a, v in symbols:
        if kind == "direct":
            for i in range(a - 1, -1, -1):  # one halving of the interval per bit
                rng >>= 1
                low += ((v >> i) & 1) * rng
        else:
            m = models[a]
            bound = (rng >> 16) * m.p0()
            if v:
                low += bound
                rng -= bound
            else:
                rng = bound
            m.update(v)
        while rng < TOP:
            rng <<= 8
            low <<= 8
            n_shifted += 1
    return low.to_bytes(n_shifted + 4, "big")
