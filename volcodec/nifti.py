"""NIfTI in: the stored (unscaled) values of a NIfTI-1/-2 file as a (z,y,x) or (t,z,y,x) array.

NIfTI keeps voxels x-fastest with axes (x, y, z, t); volcodec volumes are C-ordered (z, y, x) or
(t, z, y, x), so the array is transposed and copied once. ``scl_slope``/``scl_inter`` are not applied
(they are reported in :class:`NiftiInfo`): the codec compresses what the file stores. nibabel is
imported inside :func:`load_nifti`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputFileError


@dataclass(frozen=True)
class NiftiInfo:
    """Header facts of a NIfTI file; ``spacing`` is (z, y, x) in the file's spatial unit (mm as a rule)."""

    path: str
    dtype: str
    shape_xyzt: tuple[int, ...]
    spacing: tuple[float, float, float]
    time_step: float | None
    scl_slope: float  # 1.0 when the file declares no scaling
    scl_inter: float  # 0.0 when the file declares no scaling
    affine: tuple[tuple[float, ...], ...] = field(repr=False)


def load_nifti(path: str | os.PathLike) -> tuple[np.ndarray, NiftiInfo]:
    """Read ``path`` (.nii or .nii.gz) as stored values, axes reversed to (z,y,x) or (t,z,y,x)."""
    import nibabel

    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path} does not exist")
    try:
        image = nibabel.load(path)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types on malformed headers
        raise InputFileError(f"{path} is not a readable NIfTI file: {exc}") from None
    if not isinstance(image, (nibabel.Nifti1Image, nibabel.Nifti2Image)):
        raise InputFileError(f"{path} is a {type(image).__name__}, not a NIfTI-1/-2 image")
    shape = tuple(int(n) for n in image.shape)
    while len(shape) > 3 and shape[-1] == 1:  # NIfTI pads unused trailing dimensions with 1
        shape = shape[:-1]
    if not 2 <= len(shape) <= 4:
        raise InputFileError(f"{path} has {len(shape)} dimensions {shape}; volumes have 2 to 4")
    try:
        stored = np.asarray(image.dataobj.get_unscaled())
    except Exception as exc:  # noqa: BLE001 - truncated or corrupt gzip streams
        raise InputFileError(f"cannot read the voxels of {path}: {exc}") from None
    stored = stored.reshape(shape)
    # one copy: reversed axes, C order, native byte order
    volume = np.ascontiguousarray(stored.T, dtype=stored.dtype.newbyteorder("="))
    if volume.ndim == 2:
        volume = volume[np.newaxis]
    header = image.header
    zooms = tuple(float(z) for z in header.get_zooms())
    zooms = zooms + (1.0,) * (3 - min(len(zooms), 3))
    # nibabel moves scl_slope/scl_inter from the header into the array proxy when it loads a file
    slope = float(getattr(image.dataobj, "slope", 1.0))
    inter = float(getattr(image.dataobj, "inter", 0.0))
    info = NiftiInfo(
        path=str(path),
        dtype=stored.dtype.newbyteorder("=").name,
        shape_xyzt=shape,
        spacing=(zooms[2], zooms[1], zooms[0]),
        time_step=zooms[3] if len(shape) == 4 and len(zooms) > 3 else None,
        scl_slope=slope,
        scl_inter=inter,
        affine=tuple(tuple(float(v) for v in row) for row in image.affine),
    )
    return volume, info
