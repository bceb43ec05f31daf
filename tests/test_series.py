"""volcodec.dicom.series on small synthetic series written with pydicom (no shared data needed)."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dicom_builder import frame_values, write_enhanced, write_mosaic, write_slice

from volcodec.dicom.series import read_series
from volcodec.errors import InputFileError

pytest.importorskip("pydicom")

OBLIQUE = (0.0, 0.8, 0.6, 0.0, -0.6, 0.8)  # row along (0, .8, .6), normal = row x column = (1, 0, 0)


def _expected(n_t: int, n_z: int, dtype=np.int16) -> np.ndarray:
    return np.stack([np.stack([frame_values(t, z, dtype=dtype) for z in range(n_z)]) for t in range(n_t)])


def _series(tmp_path, n_z=4, n_t=1, step=2.5, orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0), **kw):
    """Files of an (n_t, n_z) series written in shuffled order under shuffled names."""
    normal = np.cross(orientation[:3], orientation[3:])
    jobs = [(t, z) for t in range(n_t) for z in range(n_z)]
    random.Random(1).shuffle(jobs)
    for number, (t, z) in enumerate(jobs):
        position = tuple(np.array([10.0, -20.0, 30.0]) + (z * step) * normal)
        write_slice(
            tmp_path / f"f{number:03d}.dcm",
            frame_values(t, z),
            position=position,
            orientation=orientation,
            instance=1 + z + n_z * t,
            **kw,
        )
    return tmp_path


def test_classic_series_sorted_by_position_whatever_the_file_order(tmp_path):
    volume, info = read_series(_series(tmp_path, n_z=5))
    assert volume.shape == (5, 4, 5) and volume.dtype == np.int16
    np.testing.assert_array_equal(volume, _expected(1, 5)[0])
    assert info.layout == "classic"
    assert info.slice_spacing == pytest.approx(2.5)
    assert info.pixel_spacing == (0.5, 0.6) and info.slice_thickness == 2.0
    assert [f.location for f in info.frames] == sorted(f.location for f in info.frames)
    assert len(info.files) == 5 and info.files == tuple(f.path for f in info.frames)
    assert all(f.sop_instance_uid and f.frame == 0 for f in info.frames)
    assert info.bits_stored == 16 and info.signed and info.modality == "MR"


def test_oblique_series_sorted_along_the_normal(tmp_path):
    volume, info = read_series(_series(tmp_path, n_z=3, orientation=OBLIQUE))
    np.testing.assert_array_equal(volume, _expected(1, 3)[0])
    assert info.orientation == OBLIQUE


def test_descending_positions_come_out_ascending(tmp_path):
    volume, _ = read_series(_series(tmp_path, n_z=3, step=-3.0))
    np.testing.assert_array_equal(volume, _expected(1, 3)[0][::-1])


def test_4d_series_ordered_by_temporal_position_then_instance(tmp_path):
    volume, info = read_series(_series(tmp_path, n_z=3, n_t=2))
    assert volume.shape == (2, 3, 4, 5)
    np.testing.assert_array_equal(volume, _expected(2, 3))
    assert [f.instance_number for f in info.frames] == [1, 2, 3, 4, 5, 6]


def test_4d_temporal_position_identifier_outranks_instance_number(tmp_path):
    for z in range(2):
        for t in range(2):
            # instance numbers run against time: TemporalPositionIdentifier must win
            write_slice(
                tmp_path / f"{z}{t}.dcm",
                frame_values(t, z),
                position=(0, 0, z),
                instance=9 - t,
                temporal=t + 1,
            )
    volume, _ = read_series(tmp_path)
    np.testing.assert_array_equal(volume, _expected(2, 2))


def test_position_step_of_zero_is_an_error(tmp_path):
    for z, position in enumerate([0.0, 1.0, 1.0]):
        write_slice(tmp_path / f"{z}.dcm", frame_values(0, z), position=(0, 0, position), instance=z + 1)
    with pytest.raises(InputFileError, match="holds 2 frame"):
        read_series(tmp_path)


def test_position_step_below_a_micrometre_is_an_error(tmp_path):
    for z, position in enumerate([0.0, 1.0, 1.0005]):
        write_slice(tmp_path / f"{z}.dcm", frame_values(0, z), position=(0, 0, position), instance=z + 1)
    with pytest.raises(InputFileError, match="mm apart"):
        read_series(tmp_path)


def test_4d_positions_must_hold_equal_counts(tmp_path):
    _series(tmp_path, n_z=2, n_t=2)
    write_slice(tmp_path / "extra.dcm", frame_values(2, 0), position=(10, -20, 30), instance=99)
    with pytest.raises(InputFileError, match="same number of time points"):
        read_series(tmp_path)


def test_same_time_key_at_one_position_is_an_error(tmp_path):
    for k in range(2):
        write_slice(tmp_path / f"{k}.dcm", frame_values(k, 0), position=(0, 0, 0), instance=1)
    with pytest.raises(InputFileError, match="time order is unknown"):
        read_series(tmp_path)


def test_mismatching_rows_is_an_error_naming_the_element(tmp_path):
    _series(tmp_path, n_z=2)
    odd = write_slice(tmp_path / "odd.dcm", frame_values(0, 5, rows=3), position=(10, -20, 50), instance=7)
    with pytest.raises(InputFileError) as raised:
        read_series(tmp_path)
    assert str(odd) in str(raised.value)
    assert "(0028,0010) 'Rows' differs: expected 4, found 3" in str(raised.value)


def test_two_series_in_one_folder_is_an_error(tmp_path):
    _series(tmp_path, n_z=2)
    write_slice(
        tmp_path / "z.dcm", frame_values(0, 9), position=(10, -20, 50), instance=3, series_uid="1.2.3.4"
    )
    with pytest.raises(InputFileError, match=r"\(0020,000E\) 'Series Instance UID' differs"):
        read_series(tmp_path)


def test_orientation_mismatch_is_an_error(tmp_path):
    _series(tmp_path, n_z=2)
    write_slice(
        tmp_path / "z.dcm", frame_values(0, 9), position=(10, -20, 50), instance=3, orientation=OBLIQUE
    )
    with pytest.raises(InputFileError, match="Image Orientation"):
        read_series(tmp_path)


def test_missing_position_in_a_series_is_an_error(tmp_path):
    _series(tmp_path, n_z=2)
    write_slice(tmp_path / "z.dcm", frame_values(0, 9), position=None, instance=3)
    with pytest.raises(InputFileError, match=r"\(0020,0032\) 'Image Position \(Patient\)' missing"):
        read_series(tmp_path)


def test_a_single_unpositioned_image_is_one_slice(tmp_path):
    write_slice(tmp_path / "a.dcm", frame_values(0, 0), position=None, orientation=None)
    volume, info = read_series(tmp_path / "a.dcm")
    assert volume.shape == (1, 4, 5) and info.frames[0].location is None


def test_non_dicom_file_is_an_error(tmp_path):
    _series(tmp_path, n_z=2)
    (tmp_path / "notes.txt").write_text("not DICOM")
    with pytest.raises(InputFileError, match="notes.txt is not a readable DICOM file"):
        read_series(tmp_path)


def test_duplicate_sop_instance_is_an_error(tmp_path):
    write_slice(tmp_path / "a.dcm", frame_values(0, 0), position=(0, 0, 0), SOPInstanceUID="1.2.3")
    write_slice(tmp_path / "b.dcm", frame_values(0, 1), position=(0, 0, 1), SOPInstanceUID="1.2.3")
    with pytest.raises(InputFileError, match="same image twice"):
        read_series(tmp_path)


def test_unsupported_bits_allocated_is_an_error(tmp_path):
    write_slice(tmp_path / "a.dcm", frame_values(0, 0, dtype=np.uint32), position=(0, 0, 0))
    with pytest.raises(InputFileError, match=r"\(0028,0100\) 'Bits Allocated' is 32"):
        read_series(tmp_path)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16])
def test_dtype_follows_bits_allocated_and_pixel_representation(tmp_path, dtype):
    for z in range(2):
        write_slice(
            tmp_path / f"{z}.dcm", frame_values(0, z, dtype=dtype), position=(0, 0, z), instance=z + 1
        )
    volume, info = read_series(tmp_path)
    assert volume.dtype == dtype and info.dtype == np.dtype(dtype).name
    np.testing.assert_array_equal(volume, _expected(1, 2, dtype)[0])


@pytest.mark.parametrize(("dtype", "low", "high"), [(np.uint16, 0, 4095), (np.int16, -2048, 2047)])
def test_bits_above_bits_stored_are_masked_or_sign_extended(tmp_path, dtype, low, high):
    values = np.array([[low, -1 if low else 1, 0, high, 5]] * 4).astype(dtype)
    stored = values.view(np.uint16) & 0x0FFF | 0xA000  # garbage in bits 12-15
    write_slice(tmp_path / "a.dcm", stored.view(dtype), position=(0, 0, 0), bits_stored=12)
    volume, info = read_series(tmp_path)
    assert info.bits_stored == 12
    np.testing.assert_array_equal(volume[0], values if low else values & 0x0FFF)


def test_enhanced_frames_grouped_by_position_and_temporal_index(tmp_path):
    jobs = [(t, z) for t in range(2) for z in range(3)]
    random.Random(2).shuffle(jobs)
    path = write_enhanced(
        tmp_path / "enh.dcm",
        [frame_values(t, z) for t, z in jobs],
        [(0.0, 0.0, 4.0 * z) for _, z in jobs],
        temporal=[t + 1 for t, _ in jobs],
    )
    volume, info = read_series(path)
    assert info.layout == "enhanced" and volume.shape == (2, 3, 4, 5)
    np.testing.assert_array_equal(volume, _expected(2, 3))
    assert [(f.path, f.frame) for f in info.frames] == [
        (str(path), jobs.index((t, z))) for t in range(2) for z in range(3)
    ]
    assert info.slice_spacing == pytest.approx(4.0) and info.pixel_spacing == (0.5, 0.6)


def test_enhanced_frames_of_several_files_with_per_frame_orientation(tmp_path):
    for t in range(2):  # one file per time point, as Siemens XA writes fMRI
        write_enhanced(
            tmp_path / f"t{t}.dcm",
            [frame_values(t, z) for z in (2, 0, 1)],
            [tuple(np.array([0.0, 1.0, 2.0]) + 3.0 * z * np.array([1.0, 0, 0])) for z in (2, 0, 1)],
            orientation=OBLIQUE,
            instance=t + 1,
            shared_orientation=False,
        )
    volume, info = read_series(tmp_path)
    np.testing.assert_array_equal(volume, _expected(2, 3))
    assert info.orientation == OBLIQUE


@pytest.mark.parametrize(("slice_normal", "reverse"), [((0.0, 0.0, 1.0), False), ((0.0, 0.0, -1.0), True)])
def test_mosaic_tiles_in_order_reversed_against_the_normal(tmp_path, slice_normal, reverse):
    n_z = 5  # a 3 x 3 grid with 4 empty tiles
    for t in range(2):
        write_mosaic(
            tmp_path / f"m{t}.dcm", [frame_values(t, z) for z in range(n_z)], slice_normal, instance=t + 1
        )
    volume, info = read_series(tmp_path)
    assert info.layout == "mosaic" and volume.shape == (2, n_z, 4, 5)
    expected = _expected(2, n_z)
    np.testing.assert_array_equal(volume, expected[:, ::-1] if reverse else expected)
    tiles = [f.frame for f in info.frames[:n_z]]
    assert tiles == (list(range(n_z))[::-1] if reverse else list(range(n_z)))


def test_single_mosaic_is_3d(tmp_path):
    path = write_mosaic(tmp_path / "m.dcm", [frame_values(0, z) for z in range(4)])
    volume, _ = read_series(path)
    np.testing.assert_array_equal(volume, _expected(1, 4)[0])


def test_interop_copies_must_be_equal(tmp_path):
    pixels = frame_values(0, 0)
    write_slice(tmp_path / "a.dcm", pixels, position=(0, 0, 0))
    write_slice(tmp_path / "b.dcm", pixels, position=(0, 0, 0), transfer_syntax="1.2.840.10008.1.2.5")  # RLE
    volume, info = read_series(tmp_path)
    assert info.layout == "interop" and volume.shape == (1, 4, 5)
    assert set(info.transfer_syntaxes) == {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2.5"}
    np.testing.assert_array_equal(volume[0], pixels)
    pixels = pixels.copy()
    pixels[1, 2] += 1
    write_slice(tmp_path / "c.dcm", pixels, position=(0, 0, 0), transfer_syntax="1.2.840.10008.1.2.5")
    with pytest.raises(InputFileError, match="c.dcm differs from .*a.dcm in 1 voxels"):
        read_series(tmp_path)


def test_forced_layout_must_fit(tmp_path):
    _series(tmp_path, n_z=2)
    with pytest.raises(InputFileError, match="not enhanced"):
        read_series(tmp_path, layout="enhanced")
    with pytest.raises(InputFileError, match="unknown DICOM layout"):
        read_series(tmp_path, layout="cine")


def test_importing_the_readers_does_not_import_pydicom_or_nibabel():
    code = (
        "import sys, volcodec.dicom, volcodec.dicom.series, volcodec.nifti, volcodec.volumes;"
        "print(sorted(m for m in ('pydicom', 'nibabel') if m in sys.modules))"
    )
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo)
    assert out.stdout.strip() == "[]"
