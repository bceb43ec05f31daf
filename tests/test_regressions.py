"""Every hostile input that once crashed, hung or over-allocated, kept as a file in
tests/regressions/ with the exact error code it must give now. The fuzz targets also read this
folder as seeds (fuzz/smoke.sh), so a regression is re-run with bounds checks on.

Add a crasher: minimise it (``python fuzz/fuzz_decode.py -minimize_crash=1 -runs=10000 FILE``),
copy it here under a name that says what it is, add a line to REGRESSIONS, fix the bug. Crashers of
fuzz/fuzz_dicom_decode.py are inputs in fuzz/dicom_input.py's layout, named ``*.dcmfuzz``, listed in
DICOM_REGRESSIONS.
"""

from __future__ import annotations

import logging
import sys
import tracemalloc
import warnings
from pathlib import Path

import pytest

import volcodec
from volcodec.errors import VolcodecError

HERE = Path(__file__).resolve().parent / "regressions"
FUZZ = Path(__file__).resolve().parents[1] / "fuzz"

# file: (error code for read_header, error code for decode; None = accepted), what it was
REGRESSIONS = {
    "overlapping_slab_entries.vlc": (
        10, 10, "64 table entries pointing at one 200-byte payload, each declaring the 1.6 M voxels "
                "that payload may hold: before the summed minimum length check, decode allocated "
                "100 MB for a 1.5 kB stream (and would decode the same bytes 64 times)"),
}


# file: (error code of decompress_dataset, error code the plugin raises inside ds.pixel_array; None =
# pydicom refuses the encapsulation itself with a ValueError before calling the plugin), what it was
DICOM_REGRESSIONS = {
    "dicom_fewer_fragments_than_frames.dcmfuzz": (
        30, None, "3 fragments for Number of Frames 5 (a truncated seed): decompress_dataset let pydicom's "
                  "ValueError from generate_frames out instead of a DicomError"),
    "dicom_head_beyond_number_of_frames.dcmfuzz": (
        30, 30, "a member fragment naming frame 268435456 as its slab head: decompress_dataset raised "
                "IndexError, and the plugin let pydicom's ValueError from get_frame out"),
    "dicom_offset_table_shorter_than_frames.dcmfuzz": (
        30, 30, "an Extended Offset Table of 3 frames for Number of Frames 5 (a Basic Offset Table does "
                "the same): ds.pixel_array ended in a bare StopIteration from pydicom's frame loop"),
    "dicom_slab_frames_unlike_members.dcmfuzz": (
        30, 30, "a head fragment whose samples byte says 1 for an RGB slab of 2 frames (6 planes): the "
                "slab cache's reshape raised ValueError"),
}


def _code(call, buf):
    try:
        call(buf)
    except VolcodecError as exc:
        return exc.code
    return None


def test_every_file_is_listed():
    assert sorted(p.name for p in HERE.iterdir() if p.suffix == ".vlc") == sorted(REGRESSIONS)
    assert sorted(p.name for p in HERE.iterdir() if p.suffix == ".dcmfuzz") == sorted(DICOM_REGRESSIONS)
    assert {p.suffix for p in HERE.iterdir()} <= {".vlc", ".dcmfuzz"}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_regression(name):
    header_code, decode_code, _ = REGRESSIONS[name]
    buf = (HERE / name).read_bytes()
    tracemalloc.start()
    try:
        assert _code(volcodec.read_header, buf) == header_code
        assert _code(volcodec.decode, buf) == decode_code
        assert _code(lambda b: volcodec.decode_frames(b, [0]), buf) == decode_code
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * len(buf) + (4 << 20)


@pytest.mark.parametrize("name", sorted(DICOM_REGRESSIONS))
def test_dicom_regression(name):
    pytest.importorskip("pydicom")
    import volcodec.dicom as vd

    sys.path.insert(0, str(FUZZ))
    try:
        from dicom_input import PluginExceptions, build_dataset, parse_input
    finally:
        sys.path.remove(str(FUZZ))
    decompress_code, plugin_code, _ = DICOM_REGRESSIONS[name]
    attrs, frags = parse_input((HERE / name).read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns while it searches malformed fragments for frames
        assert _code(lambda _: vd.decompress_dataset(build_dataset(attrs, frags)), None) == decompress_code
        log = logging.getLogger("pydicom")
        handler = PluginExceptions()
        log.addHandler(handler)
        try:
            with pytest.raises((RuntimeError, ValueError)) as info:
                build_dataset(attrs, frags).pixel_array
        finally:
            log.removeHandler(handler)
    if plugin_code is None:
        assert info.type is ValueError and not handler.seen
    else:
        assert info.type is RuntimeError and handler.seen
        assert all(isinstance(e, VolcodecError) and e.code == plugin_code for e in handler.seen)
