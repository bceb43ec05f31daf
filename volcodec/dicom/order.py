"""Prediction order of a multi-frame object's frames: by geometry and dimension indices, not frame number.

Each frame's position is projected on its slice normal (row cosine x column cosine, from the Per-frame
or Shared Functional Groups). When every distinct position holds the same number T of frames, the
frames form a (T, Z) grid: slices ascending along the normal, and at each position the frames ordered
by their dimension key (Temporal Position Index, diffusion b-value and gradient direction, then the
Dimension Index Values, then the frame number). Otherwise they form one row ordered by (position,
key, frame number). The order only decides what predicts from what: any order decodes exactly.
"""

from __future__ import annotations

import numpy as np

#: Positions closer than this along the normal (mm) are the same slice position.
SAME_POSITION_MM = 1e-3


def _item(ds, per_frame, keyword):
    for groups in (per_frame, ds.get("SharedFunctionalGroupsSequence", [None])[0]):
        if groups is not None and keyword in groups and len(groups[keyword].value):
            return groups[keyword][0]
    return None


def _key(item_content, item_diff, index: int) -> tuple:
    key = []
    if item_content is not None and "TemporalPositionIndex" in item_content:
        key.append(float(item_content.TemporalPositionIndex))
    if item_diff is not None:
        key.append(float(item_diff.get("DiffusionBValue", 0) or 0))
        grad = item_diff.get("DiffusionGradientDirectionSequence")
        if grad and "DiffusionGradientOrientation" in grad[0]:
            key.extend(float(v) for v in grad[0].DiffusionGradientOrientation)
    if item_content is not None and "DimensionIndexValues" in item_content:
        key.extend(np.atleast_1d(np.asarray(item_content.DimensionIndexValues, float)).tolist())
    key.append(index)
    return tuple(key)


def frame_grid(ds) -> np.ndarray:
    """DICOM frame numbers (0-based) arranged (T, Z) in prediction order."""
    n = int(ds.get("NumberOfFrames", 1) or 1)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if n == 1 or per_frame is None or len(per_frame) != n:
        return np.arange(n).reshape(1, n)
    locations, keys = [], []
    for k, groups in enumerate(per_frame):
        pos = _item(ds, groups, "PlanePositionSequence")
        ori = _item(ds, groups, "PlaneOrientationSequence")
        loc = None
        try:
            if pos is not None and ori is not None:
                o = np.array([float(v) for v in ori.ImageOrientationPatient])
                loc = float(np.dot(np.cross(o[:3], o[3:]), [float(v) for v in pos.ImagePositionPatient]))
        except (AttributeError, ValueError, TypeError):
            loc = None
        locations.append(loc)
        keys.append(_key(_item(ds, groups, "FrameContentSequence"), _item(ds, groups, "MRDiffusionSequence"), k))
    if any(v is None for v in locations):
        return np.array(sorted(range(n), key=lambda k: keys[k])).reshape(1, n)
    slots: list[list[int]] = []
    for k in sorted(range(n), key=lambda k: (locations[k], keys[k])):
        if slots and abs(locations[k] - locations[slots[-1][0]]) <= SAME_POSITION_MM:
            slots[-1].append(k)
        else:
            slots.append([k])
    t = len(slots[0])
    if all(len(s) == t for s in slots):
        # within a position the frames are already in key order
        return np.array(slots).T.copy()
    return np.array([k for s in slots for k in s]).reshape(1, n)
