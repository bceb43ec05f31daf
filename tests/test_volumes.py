"""volcodec.volumes: dispatch on what a path holds, NRRD, MANIFEST.tsv, and every dev volume."""

from __future__ import annotations

import gzip
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from dicom_builder import frame_values, write_slice

from volcodec.errors import InputFileError
from volcodec.volumes import KINDS, VolumeInfo, iter_dev_volumes, load_volume

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


# --- .npy ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", ">i2"])
def test_npy_3d_4d_2d(tmp_path, dtype):
    array = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5).astype(dtype)
    np.save(tmp_path / "v4.npy", array)
    volume, info = load_volume(tmp_path / "v4.npy")
    assert volume.dtype.isnative and info == VolumeInfo(
        name="v4",
        kind="4d",
        modality="",
        bits_stored=array.dtype.itemsize * 8,
        signed=array.dtype.kind == "i",
        files=(str(tmp_path / "v4.npy"),),
        format="npy",
    )
    np.testing.assert_array_equal(volume, array)
    np.save(tmp_path / "v2.npy", array[0, 0])
    volume, info = load_volume(tmp_path / "v2.npy")
    assert volume.shape == (1, 4, 5) and info.kind == "3d"


def test_npy_refusals(tmp_path):
    np.save(tmp_path / "f.npy", np.zeros((2, 3, 4), np.float32))
    with pytest.raises(InputFileError, match="float32"):
        load_volume(tmp_path / "f.npy")
    np.save(tmp_path / "i32.npy", np.zeros((2, 3, 4), np.int32))
    with pytest.raises(InputFileError, match="int32 voxels"):
        load_volume(tmp_path / "i32.npy")
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputFileError, match=r"o\.npy is not a readable \.npy file"):
        load_volume(tmp_path / "o.npy")
    np.save(tmp_path / "one.npy", np.zeros(7, np.int16))
    with pytest.raises(InputFileError, match=r"shape \(7,\)"):
        load_volume(tmp_path / "one.npy")


def test_missing_path_and_unknown_kind(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        load_volume(tmp_path / "nothing")
    np.save(tmp_path / "a.npy", np.zeros((2, 3, 4), np.int16))
    with pytest.raises(InputFileError, match="unknown volume kind"):
        load_volume(tmp_path / "a.npy", kind="5d")
    with pytest.raises(InputFileError, match="holds a 3d volume .* not 4d"):
        load_volume(tmp_path / "a.npy", kind="4d")
    with pytest.raises(InputFileError, match="interop volumes are DICOM"):
        load_volume(tmp_path / "a.npy", kind="interop")


def test_folder_with_one_volume_file_and_a_sidecar(tmp_path):
    nibabel = pytest.importorskip("nibabel")
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), tmp_path / "a.nii.gz")
    (tmp_path / "a.json").write_text("{}")
    volume, info = load_volume(tmp_path)
    assert info.name == tmp_path.name and info.format == "nifti" and info.spacing == (1.0, 1.0, 1.0)
    np.testing.assert_array_equal(volume, data.T)
    np.save(tmp_path / "b.npy", data)
    with pytest.raises(InputFileError, match="holds 2 volume files"):
        load_volume(tmp_path)


# --- DICOM through load_volume -------------------------------------------------------------------


def test_dicom_folder_and_file(tmp_path):
    pytest.importorskip("pydicom")
    for z in range(3):
        write_slice(tmp_path / f"{2 - z}.dcm", frame_values(0, z), position=(0, 0, 1.5 * z), instance=z + 1)
    volume, info = load_volume(tmp_path)
    assert volume.shape == (3, 4, 5) and info.kind == "3d" and info.format == "dicom"
    assert info.modality == "MR" and info.bits_stored == 16 and info.signed
    assert info.spacing == (1.5, 0.5, 0.6) and info.dicom is not None and info.dicom.layout == "classic"
    assert info.files == tuple(str(tmp_path / f"{2 - z}.dcm") for z in range(3))
    volume, info = load_volume(tmp_path / "1.dcm")
    assert volume.shape == (1, 4, 5) and info.name == "1"
    np.testing.assert_array_equal(volume[0], frame_values(0, 1))


# --- NRRD ----------------------------------------------------------------------------------------


def _nrrd_fields(sizes, type_="short", endian="little", encoding="raw", extra=()):
    lines = [
        "NRRD0004",
        "# a comment",
        f"type: {type_}",
        f"dimension: {len(sizes)}",
        "sizes: " + " ".join(map(str, sizes)),
        f"endian: {endian}",
        f"encoding: {encoding}",
        "spacings: " + " ".join(["0.5", "0.75", "2"][: len(sizes)] + ["nan"] * (len(sizes) - 3)),
        "key:=value",
        *extra,
    ]
    return "\n".join(lines) + "\n"


def test_nrrd_detached_pattern_like_vtk_headsq(tmp_path):
    data = np.arange(6 * 3 * 4, dtype=np.int16).reshape(6, 3, 4) - 30  # z, y, x
    for z in range(6):
        data[z].astype("<i2").tofile(tmp_path / f"quarter.{2 * z + 1}")
    header = _nrrd_fields((4, 3, 6), extra=["data file: quarter.%d 1 11 2"])
    (tmp_path / "quarter.nhdr").write_text(header)
    volume, info = load_volume(tmp_path)
    np.testing.assert_array_equal(volume, data)
    assert info.format == "nrrd" and info.spacing == (2.0, 0.75, 0.5) and info.name == tmp_path.name
    assert info.files[0].endswith("quarter.nhdr") and info.files[-1].endswith("quarter.11")


def test_nrrd_list_big_endian_4d(tmp_path):
    data = np.arange(2 * 2 * 3 * 4, dtype=np.uint16).reshape(2, 2, 3, 4) * 1000  # t, z, y, x
    data[0].astype(">u2").tofile(tmp_path / "first.raw")
    data[1].astype(">u2").tofile(tmp_path / "second.raw")
    header = _nrrd_fields((4, 3, 2, 2), type_="unsigned short", endian="big", extra=["data file: LIST"])
    (tmp_path / "v.nhdr").write_text(header + "first.raw\nsecond.raw\n")
    volume, info = load_volume(tmp_path / "v.nhdr")
    assert volume.dtype == np.uint16 and volume.dtype.isnative and info.kind == "4d"
    np.testing.assert_array_equal(volume, data)


@pytest.mark.parametrize("encoding", ["raw", "gzip"])
def test_nrrd_attached(tmp_path, encoding):
    data = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    payload = data.tobytes() if encoding == "raw" else gzip.compress(data.tobytes())
    (tmp_path / "v.nrrd").write_bytes(
        _nrrd_fields((5, 4, 3), type_="uchar", encoding=encoding).encode() + b"\n" + payload
    )
    volume, info = load_volume(tmp_path / "v.nrrd")
    np.testing.assert_array_equal(volume, data)
    assert info.files == (str(tmp_path / "v.nrrd"),)


def test_nrrd_errors(tmp_path):
    np.zeros((3, 4), "<i2").tofile(tmp_path / "d.1")
    np.zeros((3, 5), "<i2").tofile(tmp_path / "d.2")  # one column too many
    (tmp_path / "v.nhdr").write_text(_nrrd_fields((4, 3, 2), extra=["data file: d.%d 1 2 1"]))
    with pytest.raises(InputFileError, match=r"d\.2 holds 30 data bytes, expected 24"):
        load_volume(tmp_path / "v.nhdr")
    (tmp_path / "v.nhdr").write_text(_nrrd_fields((4, 3, 3), extra=["data file: d.%d 1 3 1"]))
    with pytest.raises(InputFileError, match=r"d\.3 does not exist"):
        load_volume(tmp_path / "v.nhdr")
    (tmp_path / "v.nhdr").write_text(_nrrd_fields((4, 3, 2), type_="float", extra=["data file: d.%d 1 2 1"]))
    with pytest.raises(InputFileError, match="float32 samples"):
        load_volume(tmp_path / "v.nhdr")
    (tmp_path / "v.nhdr").write_text(
        _nrrd_fields((4, 3, 2), encoding="bzip2", extra=["data file: d.%d 1 2 1"])
    )
    with pytest.raises(InputFileError, match="encoding 'bzip2' is not supported"):
        load_volume(tmp_path / "v.nhdr")
    (tmp_path / "v.nhdr").write_text(_nrrd_fields((4, 3, 2)))
    with pytest.raises(InputFileError, match="without a 'data file' field"):
        load_volume(tmp_path / "v.nhdr")
    (tmp_path / "v.nhdr").write_text("NRRD0004\ndimension: 3\n")
    with pytest.raises(InputFileError, match="field 'type' missing"):
        load_volume(tmp_path / "v.nhdr")
    (tmp_path / "v.nhdr").write_text("P5 not nrrd")
    with pytest.raises(InputFileError, match="not an NRRD file"):
        load_volume(tmp_path / "v.nhdr")


# --- MANIFEST.tsv --------------------------------------------------------------------------------

_HEADER = (
    "name\tmodality\tkind\tfiles\tshape\tdtype\tbits_stored\tpixel_representation\ttransfer_syntaxes\t"
    "slice_thickness_mm\tsource\tlicence\n"
)


def test_iter_dev_volumes_parses_the_manifest(tmp_path):
    root = tmp_path / "dev"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    (tmp_path / "MANIFEST.tsv").write_text(
        _HEADER
        + "a\tMR\tinterop\t1\t1,8,8\tuint16\t12 (high bits set)\t0\t"
        + "Explicit VR Little Endian; RLE Lossless\t3.2\tx\ty\n"
        + "b\tCT\t3d\t2\t2,8,8\tint16\t16\t1\t\t\tx\ty\n"
    )
    rows = dict(iter_dev_volumes(root))
    assert list(rows) == ["a", "b"]
    a, b = rows["a"], rows["b"]
    assert a.path == root / "a" and a.kind == "interop" and a.shape == (1, 8, 8) and a.bits_stored == 12
    assert a.garbage_high_bits and not b.garbage_high_bits and b.pixel_representation == 1
    assert a.transfer_syntaxes == ("Explicit VR Little Endian", "RLE Lossless") and b.transfer_syntaxes == ()
    assert a.slice_thickness_mm == 3.2 and b.slice_thickness_mm is None
    (root / "MANIFEST.tsv").write_text(_HEADER + "c\tCT\t3d\t2\t2,8,8\tint16\t16\t1\t\t\tx\ty\n")  # root wins
    with pytest.raises(InputFileError, match="lists c, but .* does not exist"):
        list(iter_dev_volumes(root))
    (root / "MANIFEST.tsv").write_text("name\tkind\n")
    with pytest.raises(InputFileError, match="lacks the column"):
        list(iter_dev_volumes(root))
    with pytest.raises(InputFileError, match="no MANIFEST.tsv"):
        list(iter_dev_volumes(tmp_path / "elsewhere" / "dev"))


# --- the dev data set ----------------------------------------------------------------------------


def _dev_names() -> list[str]:
    manifest = SHARED_DATA / "MANIFEST.tsv"
    if not manifest.is_file():
        return []
    return [line.split("\t", 1)[0] for line in manifest.read_text().splitlines()[1:] if line.strip()]


@pytest.fixture(scope="module")
def dev_rows(shared_data):
    return dict(iter_dev_volumes(shared_data / "dev"))


@pytest.fixture(scope="module")
def dev_volumes(dev_rows):
    """name -> (volume, info, seconds): each dev volume read once for the whole module."""
    loaded = {}
    for name, row in dev_rows.items():
        start = time.perf_counter()
        volume, info = row.load()
        loaded[name] = (volume, info, time.perf_counter() - start)
    return loaded


@pytest.mark.data
def test_manifest_lists_every_dev_folder(shared_data, dev_rows):
    folders = sorted(p.name for p in (shared_data / "dev").iterdir() if p.is_dir())
    assert sorted(dev_rows) == folders
    assert {row.kind for row in dev_rows.values()} <= set(KINDS)


@pytest.mark.data
@pytest.mark.parametrize(
    "name", _dev_names() or [pytest.param("none", marks=pytest.mark.skip("no MANIFEST.tsv"))]
)
def test_dev_volume_matches_manifest(dev_rows, dev_volumes, name):
    row = dev_rows[name]
    volume, info, _ = dev_volumes[name]
    assert volume.shape == row.shape
    assert volume.dtype == np.dtype(row.dtype)
    assert volume.flags.c_contiguous and volume.dtype.isnative
    assert info.kind == row.kind
    assert info.bits_stored == row.bits_stored
    assert info.signed == bool(row.pixel_representation)
    assert info.modality in ("", row.modality)
    n_files = len(info.files) - (info.format == "nrrd")  # the .nhdr is a source too, not in the count
    assert n_files == row.files
    if info.bits_stored < volume.dtype.itemsize * 8:
        low, high = (
            (-(1 << (info.bits_stored - 1)), (1 << (info.bits_stored - 1)) - 1)
            if info.signed
            else (0, (1 << info.bits_stored) - 1)
        )
        assert low <= volume.min() and volume.max() <= high


@pytest.mark.data
def test_dev_dicom_frames_map_back_to_their_files(dev_volumes):
    """Frames k = first, middle, last of each positioned series equal the frame pydicom decodes itself."""
    import pydicom

    for name, (volume, info, _) in dev_volumes.items():
        series = info.dicom
        if series is None or series.layout not in ("classic", "enhanced"):
            continue
        flat = volume.reshape(-1, *volume.shape[-2:])
        n_z = volume.shape[-3]
        locations = np.array([f.location for f in series.frames]).reshape(-1, n_z)
        assert (np.diff(locations, axis=1) > 0.001).all(), name
        assert np.ptp(locations, axis=0).max() < 1e-3, name  # every time point at the same positions
        for k in sorted({0, len(flat) // 2, len(flat) - 1}):
            ref = series.frames[k]
            pixels = pydicom.dcmread(ref.path).pixel_array
            expected = pixels.reshape(-1, *pixels.shape[-2:])[ref.frame]
            np.testing.assert_array_equal(flat[k], expected, err_msg=f"{name} frame {k}")


@pytest.mark.data
def test_dev_4d_series_run_in_time_order(dev_volumes):
    _, info, _ = dev_volumes["mr4d_dce_br06"]
    instances = np.array([f.instance_number for f in info.dicom.frames]).reshape(3, 60)
    assert (np.diff(instances, axis=0) > 0).all()  # DCE: phases by InstanceNumber at each position
    _, info, _ = dev_volumes["mr4d_dti_philips_vu"]
    instances = np.array([f.instance_number for f in info.dicom.frames]).reshape(17, 40)
    assert (np.diff(instances, axis=0) > 0).all()


@pytest.mark.data
def test_dev_mosaic_equals_nibabel_mosaic_wrapper(dev_volumes):
    with warnings.catch_warnings():
        # nibabel.nicom warns on import that its DICOM readers are experimental: a cross-check here
        warnings.filterwarnings(
            "ignore", message="The DICOM readers are highly experimental", category=UserWarning
        )
        from nibabel.nicom import dicomwrappers

    volume, info, _ = dev_volumes["mr4d_fmri_si_mosaic"]
    n_z = volume.shape[1]
    for t in range(volume.shape[0]):
        wrapper = dicomwrappers.wrapper_from_file(info.dicom.frames[t * n_z].path)
        np.testing.assert_array_equal(volume[t], wrapper.get_unscaled_data().transpose(2, 0, 1))


@pytest.mark.data
def test_dev_interop_garbage_bits_are_masked(dev_volumes):
    import pydicom

    for name, signed in (("interop_12bit_u0f0f", False), ("interop_12bit_s0f0f", True)):
        volume, info, _ = dev_volumes[name]
        raw = np.frombuffer(pydicom.dcmread(info.files[0]).PixelData, "<u2")
        assert (raw >> 12).any(), f"{name}: the file should carry garbage above bit 11"
        expected = (raw & 0x0FFF).astype(np.int32)
        if signed:
            expected = np.where(expected >= 2048, expected - 4096, expected)
        np.testing.assert_array_equal(volume.ravel(), expected)


@pytest.mark.data
def test_dev_12bit_mosaic_without_kind_is_cut_into_tiles(shared_data):
    """Detection alone sees the Siemens mosaic; MANIFEST's kind='interop' keeps the whole image."""
    volume, info = load_volume(shared_data / "dev" / "interop_12bit_u0f0f")
    assert volume.shape == (35, 64, 64) and info.kind == "3d" and info.dicom.layout == "mosaic"


@pytest.mark.data
def test_dev_interop_detected_without_kind(shared_data):
    volume, info = load_volume(shared_data / "dev" / "interop_wg04_ct1")
    assert volume.shape == (1, 512, 512) and info.kind == "interop" and len(info.dicom.transfer_syntaxes) == 5


@pytest.mark.data
def test_dev_raw_and_nifti_match_direct_reads(shared_data, dev_volumes):
    nibabel = pytest.importorskip("nibabel")
    volume, _, _ = dev_volumes["ct_headsq_vtk"]
    for z in (0, 46, 92):
        direct = np.fromfile(shared_data / "dev" / "ct_headsq_vtk" / f"quarter.{z + 1}", "<i2").reshape(
            64, 64
        )
        np.testing.assert_array_equal(volume[z], direct)
    volume, _, _ = dev_volumes["mr4d_nifti_example4d"]
    image = nibabel.load(shared_data / "dev" / "mr4d_nifti_example4d" / "example4d.nii.gz")
    np.testing.assert_array_equal(volume, np.asarray(image.dataobj.get_unscaled()).T)
