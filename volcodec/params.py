"""Encoding parameters: what each effort level does.

The decoder never looks at the effort: everything it needs (predictor mask, per-frame reference
choices) is written into the stream, so these tables may change between releases without a format
break.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .kernels.scan import (
    N_INTRA,
    N_PER_REF,
    P_2N,
    P_2W,
    P_AVG,
    P_MED,
    P_N,
    P_NE,
    P_NE_GRAD,
    P_NNE,
    P_PLANE,
    P_W,
    R_MED,
    R_N,
    R_SAME,
    R_W,
    R_WN,
)


def _mask(intra=(), ref_a=(), ref_b=()) -> int:
    m = 0
    for i in intra:
        m |= 1 << i
    for i in ref_a:
        m |= 1 << (N_INTRA + i)
    for i in ref_b:
        m |= 1 << (N_INTRA + N_PER_REF + i)
    return m


@dataclass(frozen=True)
class EffortParams:
    """What an effort level selects (JSON round-trippable via ``asdict``)."""

    effort: int
    predictor_mask: int
    secondary_ref: bool  # in 4-D, also predict from the second reference (slice and time point)
    mixing: bool = False  # two models per decision, logistic mixing (slower, smaller)
    fast: bool = False  # the fast scan (one predictor, one multi-symbol decision per voxel)

    def to_json(self) -> dict:
        return asdict(self)


_ALL_INTRA = (P_MED, P_PLANE, P_W, P_N, P_NE_GRAD, P_AVG, P_NE, P_NNE, P_2N, P_2W)
_ALL_REF = (R_W, R_N, R_MED, R_SAME, R_WN)

EFFORTS = {
    1: EffortParams(1, _mask((), (R_WN,)), False, fast=True),  # MED, or R_WN with a reference
    2: EffortParams(2, _mask((P_MED, P_AVG), (R_WN,)), False),
    3: EffortParams(3, _mask((P_MED, P_AVG, P_2N, P_2W), (R_W, R_WN)), False),
    4: EffortParams(4, _mask((P_MED, P_AVG, P_2N, P_2W, P_NE, P_NNE), (R_W, R_WN, R_MED)), False),
    5: EffortParams(5, _mask(_ALL_INTRA, _ALL_REF), False),
    6: EffortParams(6, _mask((P_MED, P_PLANE, P_W, P_N, P_AVG, P_2N, P_2W), (R_W, R_N, R_MED)), False, True),
    7: EffortParams(7, _mask(_ALL_INTRA, _ALL_REF), False, True),
    8: EffortParams(8, _mask(_ALL_INTRA, _ALL_REF, (R_W, R_N, R_MED)), True, True),
    9: EffortParams(9, _mask(_ALL_INTRA, _ALL_REF, _ALL_REF), True, True),
}
