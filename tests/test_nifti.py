"""volcodec.nifti: stored values, axes reversed, on tiny files written with nibabel."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from volcodec.errors import InputFileError
from volcodec.nifti import load_nifti

nibabel = pytest.importorskip("nibabel")


def _write(path, data_xyzt, zooms=None):
    image = nibabel.Nifti1Image(data_xyzt, np.diag([2.0, 3.0, 4.0, 1.0]))
    if zooms is not None:
        image.header.set_zooms(zooms)
    nibabel.save(image, path)
    return path


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_4d_is_transposed_to_tzyx(tmp_path, suffix):
    data = np.arange(3 * 4 * 5 * 2, dtype=np.int16).reshape(3, 4, 5, 2)  # x, y, z, t
    volume, info = load_nifti(_write(tmp_path / f"a{suffix}", data, zooms=(2.0, 3.0, 4.0, 1.5)))
    assert volume.shape == (2, 5, 4, 3) and volume.dtype == np.int16 and volume.flags.c_contiguous
    np.testing.assert_array_equal(volume, data.transpose(3, 2, 1, 0))
    assert info.spacing == (4.0, 3.0, 2.0) and info.time_step == 1.5 and info.shape_xyzt == (3, 4, 5, 2)


def test_3d_and_2d(tmp_path):
    data = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    volume, _ = load_nifti(_write(tmp_path / "b.nii", data))
    np.testing.assert_array_equal(volume, data.T)
    volume, _ = load_nifti(_write(tmp_path / "c.nii", data[:, :, 0]))
    np.testing.assert_array_equal(volume, data[:, :, 0].T[np.newaxis])


def test_scaling_is_not_applied_but_reported(tmp_path):
    data = np.arange(-12, 12, dtype=np.int16).reshape(2, 3, 4)
    path = _write(tmp_path / "d.nii", data)
    raw = bytearray(path.read_bytes())
    raw[112:120] = struct.pack("<2f", 0.5, -100.0)  # scl_slope, scl_inter (nibabel resets them on save)
    path.write_bytes(bytes(raw))
    volume, info = load_nifti(path)
    assert volume.dtype == np.int16
    np.testing.assert_array_equal(volume, data.T)
    assert (info.scl_slope, info.scl_inter) == (0.5, -100.0)


def test_big_endian_file_gives_native_array(tmp_path):
    data = np.arange(24, dtype=">i2").reshape(2, 3, 4)
    path = tmp_path / "e.nii"
    header = nibabel.Nifti1Header(endianness=">")
    header.set_data_dtype(np.int16)
    image = nibabel.Nifti1Image(data, np.eye(4), header)
    nibabel.save(image, path)
    volume, info = load_nifti(path)
    assert volume.dtype == np.dtype("int16") and volume.dtype.isnative and info.dtype == "int16"
    np.testing.assert_array_equal(volume, data.T)


def test_not_nifti_is_an_error(tmp_path):
    path = tmp_path / "f.nii"
    path.write_bytes(b"\0" * 400)
    with pytest.raises(InputFileError, match="f.nii"):
        load_nifti(path)
    with pytest.raises(InputFileError, match="does not exist"):
        load_nifti(tmp_path / "missing.nii")
