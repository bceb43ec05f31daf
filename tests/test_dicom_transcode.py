"""``volcodec dicom`` CLI, multi-frame conversion and split, dciodvfy/dcmtk checks, shared data."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

import volcodec.dicom as vd  # noqa: E402
from volcodec.cli import main  # noqa: E402

from dicom_builder import write_slice  # noqa: E402


def _series(folder: Path, n=6, transfer_syntax="1.2.840.10008.1.2.1") -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(4)
    base = rng.integers(0, 3000, (8, 9))
    for z in range(n):
        # junk above Bits Stored 12 in one word per slice
        words = (base + 11 * z).astype(np.uint16)
        words[0, z % 9] |= 0x5000
        write_slice(folder / f"s{z:02d}.dcm", words, position=(0.0, 0.0, 3.0 * (n - z)), instance=z + 1,
                    bits_stored=12, transfer_syntax=transfer_syntax, PatientName="Doe^J", PatientID="P1", StudyDate="20240101", StudyTime="120000",
                    StudyID="1", SeriesNumber=1,
                    FrameOfReferenceUID="1.2.826.0.1.3680043.8.498.9")
    return folder


def test_cli_compress_verify_decompress_one_per_instance(tmp_path, capsys):
    src = _series(tmp_path / "in" / "series")
    assert main(["dicom", "compress", str(tmp_path / "in"), str(tmp_path / "c")]) == 0
    assert sorted(p.name for p in (tmp_path / "c" / "series").iterdir()) == sorted(p.name for p in src.iterdir())
    assert main(["dicom", "verify", str(tmp_path / "in"), str(tmp_path / "c")]) == 0
    assert "6 bit-exact" in capsys.readouterr().out
    assert main(["dicom", "decompress", str(tmp_path / "c"), str(tmp_path / "d")]) == 0
    for p in src.iterdir():
        a, b = pydicom.dcmread(p), pydicom.dcmread(tmp_path / "d" / "series" / p.name)
        assert b.PixelData == a.PixelData and b.SOPInstanceUID == a.SOPInstanceUID
    # never overwrite without --force; nothing half-written is left behind
    assert main(["dicom", "compress", str(tmp_path / "in"), str(tmp_path / "c")]) == 2
    assert "exists; use --force" in capsys.readouterr().err
    assert not list((tmp_path / "c").rglob(".*.tmp"))
    assert main(["dicom", "compress", "--force", str(tmp_path / "in"), str(tmp_path / "c")]) == 0


def test_cli_verify_detects_a_changed_pixel(tmp_path, capsys):
    _series(tmp_path / "in", n=2)
    main(["dicom", "decompress", str(tmp_path / "in"), str(tmp_path / "x")])  # not volcodec: refused
    assert "is not volcodec's" in capsys.readouterr().err
    shutil.copytree(tmp_path / "in", tmp_path / "other")
    ds = pydicom.dcmread(tmp_path / "other" / "s01.dcm")
    ds.PixelData = bytes([ds.PixelData[0] ^ 1]) + ds.PixelData[1:]
    ds.save_as(tmp_path / "other" / "s01.dcm")
    assert main(["dicom", "verify", str(tmp_path / "in"), str(tmp_path / "other")]) == 1
    assert "not bit-exact" in capsys.readouterr().err


def test_multiframe_and_split_back(tmp_path):
    src = _series(tmp_path / "in", n=5)
    assert main(["dicom", "compress", "--multiframe", str(src), str(tmp_path / "mf")]) == 0
    (obj,) = list((tmp_path / "mf").iterdir())
    mf = pydicom.dcmread(obj)
    assert mf.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4.4"  # Legacy Converted Enhanced MR
    assert int(mf.NumberOfFrames) == 5
    assert main(["dicom", "verify", str(src), str(tmp_path / "mf")]) == 0
    assert main(["dicom", "decompress", "--split", str(tmp_path / "mf"), str(tmp_path / "back")]) == 0
    for p in src.iterdir():
        a = pydicom.dcmread(p)
        b = pydicom.dcmread(tmp_path / "back" / f"{a.SOPInstanceUID}.dcm")
        assert [e for e in a if e.tag not in b or b[e.tag].value != e.value] == []


def test_input_in_another_syntax_comes_out_exact(tmp_path):
    src = _series(tmp_path / "in", n=2, transfer_syntax="1.2.840.10008.1.2.5")  # RLE Lossless
    assert main(["dicom", "compress", str(src), str(tmp_path / "c")]) == 0
    assert main(["dicom", "verify", str(src), str(tmp_path / "c")]) == 0


def test_dicomdir_input(tmp_path):
    from pydicom.fileset import FileSet

    src = _series(tmp_path / "in", n=2)
    fs = FileSet()
    for p in sorted(src.iterdir()):
        fs.add(pydicom.dcmread(p))
    fs.write(tmp_path / "media")
    fs._stage["t"].cleanup()  # pydicom's staging folder would otherwise warn when collected
    assert main(["dicom", "compress", str(tmp_path / "media" / "DICOMDIR"), str(tmp_path / "c")]) == 0
    assert main(["dicom", "verify", str(src), str(tmp_path / "c")]) == 0


# ----------------------------------------------------------------------------- external validators
def _errors(path: Path) -> set[str]:
    out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return {line.strip() for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")}


def _as_known_syntax(path: Path, tmp: Path) -> Path:
    """dciodvfy does not know a private syntax and stops at its Pixel Data; under a standard
    encapsulated syntax UID it checks the rest (attributes, items, Basic Offset Table)."""
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.80"
    out = tmp / f"{path.stem}.as80.dcm"
    ds.save_as(out)
    return out


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed")
def test_dciodvfy_no_new_errors(tmp_path):
    src = _series(tmp_path / "in", n=3)
    main(["dicom", "compress", str(src), str(tmp_path / "c")])
    main(["dicom", "decompress", str(tmp_path / "c"), str(tmp_path / "d")])
    for p in src.iterdir():
        before = _errors(p)
        assert _errors(_as_known_syntax(tmp_path / "c" / p.name, tmp_path)) <= before
        assert _errors(tmp_path / "d" / p.name) <= before


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed")
def test_dciodvfy_private_block_adds_no_errors(tmp_path):
    """The --multiframe object's errors (highdicom's, from sparse sources) are the same without
    volcodec's private block (0009,0010)/(0009,1020)."""
    src = _series(tmp_path / "in", n=3)
    main(["dicom", "compress", "--multiframe", str(src), str(tmp_path / "c")])
    (obj,) = list((tmp_path / "c").iterdir())
    checked = _as_known_syntax(obj, tmp_path)
    ds = pydicom.dcmread(checked)
    assert ds[0x0009, 0x0010].value == "VOLCODEC 2"
    del ds[0x0009, 0x0010], ds[0x0009, 0x1020]
    bare = tmp_path / "bare.dcm"
    ds.save_as(bare)
    assert _errors(checked) == _errors(bare)


@pytest.mark.skipif(shutil.which("dcmdump") is None, reason="dcmdump (dcmtk) not installed")
def test_dcmdump_reads_the_output(tmp_path):
    src = _series(tmp_path / "in", n=2)
    main(["dicom", "compress", "--multiframe", str(src), str(tmp_path / "c")])
    (obj,) = list((tmp_path / "c").iterdir())
    out = subprocess.run(["dcmdump", "+P", "7fe0,0010", str(obj)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    dump = subprocess.run(["dcmdump", str(obj)], capture_output=True, text=True, timeout=60).stdout
    assert vd.VOLCODEC_LOSSLESS in dump
    assert "(0009,0010) LO [VOLCODEC 2]" in dump and "(0009,1020) OB" in dump  # the source headers
    assert "pi" in out.stdout  # encapsulated items


# ----------------------------------------------------------------------------- shared data (sampled)
@pytest.mark.data
@pytest.mark.parametrize("name", ["interop_ts_siemens", "interop_12bit_s0f0f", "mr4d_enh_siemens_xa10"])
def test_shared_data_round_trip(shared_data, tmp_path, name):
    src = shared_data / "dev" / name
    assert main(["dicom", "compress", str(src), str(tmp_path / "c")]) == 0
    assert main(["dicom", "verify", str(src), str(tmp_path / "c")]) == 0
    if name == "interop_12bit_s0f0f":  # junk above Bits Stored: the words come back exactly
        main(["dicom", "decompress", str(tmp_path / "c"), str(tmp_path / "d")])
        (f,) = list(src.iterdir())
        assert pydicom.dcmread(tmp_path / "d" / f.name).PixelData == pydicom.dcmread(f).PixelData


def _enhanced(tmp_path: Path, n: int) -> "pydicom.Dataset":
    from dicom_builder import frame_values, write_enhanced

    frames = [frame_values(0, z) for z in range(n)]
    path = write_enhanced(tmp_path / "mf.dcm", frames, [(0.0, 0.0, 2.0 * z) for z in range(n)])
    return pydicom.dcmread(path), np.stack(frames)


def test_slabs_are_coded_in_parallel_with_bytes_independent_of_threads(tmp_path):
    from volcodec.dicom import fragment

    ds, frames = _enhanced(tmp_path, 41)
    one = vd.compress_dataset(ds, threads=1)
    two = vd.compress_dataset(ds, threads=2)
    assert one.PixelData == two.PixelData
    # 41 slices: slabs of volcodec.auto_slab(1, 41) = 10, so two threads share the work evenly
    from pydicom.encaps import generate_frames

    heads = sorted({fragment.parse(f).head for f in generate_frames(one.PixelData, number_of_frames=41)})
    assert heads == [0, 10, 20, 30, 40]
    for threads in (1, 2):
        words = vd.transcode.decode_words(one, threads=threads)
        assert np.array_equal(words[:, 0], frames)
        assert vd.decompress_dataset(one, threads).PixelData == ds.PixelData


@pytest.mark.parametrize("damage, message", [
    (lambda f: f[:40], r"fragment 10 of .*Pixel Data.*: volcodec fragment is truncated"),
    (lambda f: f[:-16] + bytes(x ^ 0x5A for x in f[-16:]), r"slab of head frame 10"),
])
def test_parallel_decode_names_the_bad_slab(tmp_path, damage, message):
    from pydicom.encaps import encapsulate, generate_frames

    from volcodec import DicomError

    ds, _ = _enhanced(tmp_path, 20)
    out = vd.compress_dataset(ds, threads=2)
    frags = list(generate_frames(out.PixelData, number_of_frames=20))
    frags[10] = damage(frags[10])  # the second slab's head
    out.PixelData = encapsulate(frags, has_bot=True)
    with pytest.raises(DicomError, match=message):
        vd.transcode.decode_words(out, threads=2)


def test_cli_threads_option_gives_the_same_files(tmp_path):
    _series(tmp_path / "in", n=3)
    for threads in ("1", "2"):
        assert main(["dicom", "compress", "--threads", threads, str(tmp_path / "in"),
                     str(tmp_path / f"c{threads}")]) == 0
        assert main(["dicom", "decompress", "--threads", threads, str(tmp_path / f"c{threads}"),
                     str(tmp_path / f"d{threads}")]) == 0
    for p in (tmp_path / "c1").iterdir():
        assert pydicom.dcmread(p).PixelData == pydicom.dcmread(tmp_path / "c2" / p.name).PixelData
        assert (pydicom.dcmread(tmp_path / "d1" / p.name).PixelData
                == pydicom.dcmread(tmp_path / "d2" / p.name).PixelData)
