"""volcodec.dicom.multiframe: the private block of source headers (layout 'VOLCODEC 2'), exact split,
and hostile blocks (every malformed input is a DicomError naming (0009,1020))."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from volcodec.cli import main  # noqa: E402
from volcodec.dicom import multiframe  # noqa: E402
from volcodec.errors import DicomError  # noqa: E402

from dicom_builder import write_slice  # noqa: E402

PRIVATE = (0x0011, 0x0010, 0x0011, 0x1001)


def _series(folder: Path, n: int = 5) -> Path:
    """Slices whose headers differ the ways real ones do: per-slice values, a private element that
    changes, an element only the first slice has (dropped from the base) and one only the last has."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    for z in range(n):
        words = rng.integers(0, 4096, (6, 7)).astype(np.uint16)
        extra = {"ImageComments": "first"} if z == 0 else {"AcquisitionNumber": 9} if z == n - 1 else {}
        write_slice(folder / f"s{z:02d}.dcm", words, position=(0.0, 0.0, 2.0 * z), instance=z + 1,
                    bits_stored=12, PatientName="Doe^J", PatientID="P1", StudyDate="20240101",
                    StudyTime="120000", StudyID="1", SeriesNumber=1,
                    FrameOfReferenceUID="1.2.826.0.1.3680043.8.498.9",
                    private=[((0x0011, 0x0010), "LO", "ACME 1"), ((0x0011, 0x1001), "OB", bytes([z]) * 3)],
                    **extra)
    return folder


def _convert(src: Path, tmp: Path):
    assert main(["dicom", "compress", "--multiframe", str(src), str(tmp / "mf")]) == 0
    (obj,) = list((tmp / "mf").iterdir())
    return obj


def test_split_gives_back_every_header_byte_for_byte(tmp_path):
    src = _series(tmp_path / "in")
    obj = _convert(src, tmp_path)
    ds = pydicom.dcmread(obj)
    assert ds[0x0009, 0x0010].value == "VOLCODEC 2" and ds[0x0009, 0x1020].VR == "OB"
    assert main(["dicom", "decompress", "--split", str(tmp_path / "mf"), str(tmp_path / "back")]) == 0
    for p in src.iterdir():
        a = pydicom.dcmread(p)
        b = pydicom.dcmread(tmp_path / "back" / f"{a.SOPInstanceUID}.dcm")
        assert multiframe._header_bytes(b) == multiframe._header_bytes(a)
        assert b.PixelData == a.PixelData


# Hand-built to docs/format.md, not by pack_headers: the reader follows the documented layout.
def _record(group, elem, vr, value):
    if vr in (b"OB", b"SQ", b"UN"):
        return struct.pack("<HH2sHI", group, elem, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr, len(value)) + value


def _section(records, dropped=()):
    out = struct.pack("<I", len(records)) + b"".join(struct.pack("<I", len(r)) + r for r in records)
    return out + struct.pack(f"<I{len(dropped)}I", len(dropped), *dropped)


META = [_record(2, 0x0000, b"UL", struct.pack("<I", 24)),
        _record(2, 0x0010, b"UI", b"1.2.840.10008.1.2.1\0")]
SOP = [_record(8, 0x0018, b"UI", b"1.2.3.4\0"), _record(8, 0x0018, b"UI", b"1.2.3.5\0")]
NAME = _record(0x10, 0x0010, b"PN", b"Doe^J ")
BITS = _record(0x28, 0x0100, b"US", struct.pack("<H", 16))


def _documented_payload(n=2):
    sections = [_section([*META, SOP[0], NAME, BITS]), _section([])]
    sections += [_section([SOP[1]], dropped=[0x00100010])] * (n - 1)
    return struct.pack("<I", n) + b"".join(sections)


def test_documented_layout_reads_back():
    first, second = multiframe.unpack_headers(zlib.compress(_documented_payload()), 2)
    assert first == b"\0" * 128 + b"DICM" + b"".join([*META, SOP[0], NAME, BITS])
    assert second == b"\0" * 128 + b"DICM" + b"".join([*META, SOP[1], BITS])
    uid, ds, planar, vr = multiframe._read_header(second, 1)
    assert uid == "1.2.3.5" and "PatientName" not in ds and (planar, vr) == (0, "OW")


def test_base_and_differences():
    """Only what differs from the first header is stored; the dropped and added elements come back."""
    first = {0x00080018: SOP[0], 0x00100010: NAME, 0x00204000: _record(0x20, 0x4000, b"LT", b"only 1st")}
    second = {0x00080018: SOP[1], 0x00100010: NAME, 0x00200012: _record(0x20, 0x12, b"IS", b"2 ")}
    payload = multiframe.pack_headers([first, second])
    assert payload.count(NAME) == 1 and payload.count(b"only 1st") == 1
    a, b = multiframe.unpack_headers(zlib.compress(payload), 2)
    assert a == b"\0" * 128 + b"DICM" + SOP[0] + NAME + first[0x00204000]
    assert b == b"\0" * 128 + b"DICM" + SOP[1] + NAME + second[0x00200012]


def _patched(offset, value):
    p = bytearray(_documented_payload())
    p[offset:offset + len(value)] = value
    return bytes(p)


@pytest.mark.parametrize("blob, frames, expected", [
    (b"not zlib at all", 2, "is not a valid zlib stream"),
    (zlib.compress(_documented_payload())[:-6], 2, "ends inside its zlib stream"),
    (zlib.compress(_documented_payload()) + b"xy", 2, "bytes after its zlib stream"),
    (zlib.compress(_documented_payload()), 3, "holds 2 source headers for 3 frames"),
    (zlib.compress(_documented_payload() + b"\0"), 2, "1 bytes after its last section"),
    (zlib.compress(_documented_payload()[:-7]), 2, "is truncated"),
    (zlib.compress(_patched(0, struct.pack("<I", 0xFFFFFFFF))), 2, "for 2 frames"),
    # offset 8: the base section's first record size; 18: that element's own length field
    (zlib.compress(_patched(8, struct.pack("<I", 0x7FFFFFFF))), 2, "runs past"),
    (zlib.compress(_patched(18, struct.pack("<H", 5))), 2, "length field (5)"),
    (zlib.compress(struct.pack("<I", 1) + _section([NAME, SOP[0]]) + _section([])), 1, "ascending tag order"),
    (zlib.compress(struct.pack("<I", 1) + _section([NAME]) + _section([], [0x00100010, 0x00100010])), 1,
     "dropped tags out of ascending order"),
    (zlib.compress(struct.pack("<I", 1) + _section([NAME]) + _section([], [0x00080018])), 1,
     "which the base lacks"),
    (zlib.compress(struct.pack("<I", 1) + _section([NAME], [0x00100010]) + _section([])), 1,
     "drops tags in its base section"),
    (zlib.compress(struct.pack("<I", 1) + _section([NAME]) + struct.pack("<II", 0, 0x40000000)), 1,
     "more than its data holds"),
    (zlib.compress(struct.pack("<I", 1) + struct.pack("<II", 1, 4) + b"\x10\0\x10\0"), 1, "shorter than an"),
])
def test_malformed_block_is_a_dicom_error(blob, frames, expected):
    with pytest.raises(DicomError, match=r"\(0009,1020\)") as err:
        multiframe.unpack_headers(blob, frames)
    assert expected in err.value.message


def test_inflating_is_bounded_by_the_frame_count():
    """A small deflate bomb: the reader stops after 4 + (frames + 1) * MAX_HEADER bytes."""
    bomb = zlib.compress(b"\0" * (4 + 3 * multiframe.MAX_HEADER), 9)
    assert len(bomb) < 4 * 1024
    with pytest.raises(DicomError, match=r"\(0009,1020\) 'volcodec source headers' inflates to more than"):
        multiframe.unpack_headers(bomb, 1)


def test_headers_above_the_cap_are_refused_both_ways():
    big = {0x00080018: b"x" * (multiframe.MAX_HEADER + 1)}
    with pytest.raises(DicomError, match="larger than"):
        multiframe.pack_headers([big])
    half = multiframe.MAX_HEADER // 2
    payload = struct.pack("<I", 1) + _section([_record(0x10, 0x10, b"OB", b"x" * half)]) + \
        _section([_record(0x10, 0x20, b"OB", b"y" * half)])
    with pytest.raises(DicomError, match=f"header 0 is larger than {multiframe.MAX_HEADER}"):
        multiframe.unpack_headers(zlib.compress(payload), 1)


def test_unreadable_header_names_the_element():
    # a sequence of undefined length whose item runs past the end of the header
    sq = struct.pack("<HH2sHI", 8, 0x1115, b"SQ", 0, 0xFFFFFFFF) + struct.pack("<HHI", 0xFFFE, 0xE000, 100)
    garbage = struct.pack("<I", 1) + _section([sq]) + _section([])
    (head,) = multiframe.unpack_headers(zlib.compress(garbage), 1)
    with pytest.raises(DicomError, match=r"\(0009,1020\).*source header 0"):
        multiframe._read_header(head, 0)


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about the invalid values it reads
def test_mutated_blocks_raise_only_dicom_errors(tmp_path):
    """Byte flips anywhere in a real block's payload: a split either works or raises DicomError."""
    src = _series(tmp_path / "in", n=3)
    ds = pydicom.dcmread(_convert(src, tmp_path))
    words = np.zeros((3, 1, 6, 7), np.uint16)
    payload = zlib.decompress(ds[0x0009, 0x1020].value)
    rng = np.random.default_rng(11)
    for _ in range(300):
        p = bytearray(payload)
        for at in rng.integers(0, len(p), rng.integers(1, 4)):
            p[at] = int(rng.integers(0, 256))
        ds[0x0009, 0x1020].value = zlib.compress(bytes(p))
        try:
            multiframe.split(ds, words)
        except DicomError:
            pass


def test_split_of_a_corrupted_object_fails_cleanly(tmp_path, capsys):
    obj = _convert(_series(tmp_path / "in", n=2), tmp_path)
    ds = pydicom.dcmread(obj)
    ds[0x0009, 0x1020].value = zlib.compress(b"\xff" * 64)
    ds.save_as(obj)
    assert main(["dicom", "decompress", "--split", str(obj), str(tmp_path / "back")]) != 0
    assert "(0009,1020) 'volcodec source headers' holds 4294967295 source headers for 2 frames" in \
        capsys.readouterr().err
