"""Every hostile input that once crashed, hung or over-allocated, kept as a file in
tests/regressions/ with the exact error code it must give now. The fuzz targets also read this
folder as seeds (fuzz/smoke.sh), so a regression is re-run with bounds checks on.

Add a crasher: minimise it (``python fuzz/fuzz_decode.py -minimize_crash=1 -runs=10000 FILE``),
copy it here under a name that says what it is, add a line to REGRESSIONS, fix the bug.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

import volcodec
from volcodec.errors import VolcodecError

HERE = Path(__file__).resolve().parent / "regressions"

# file: (error code for read_header, error code for decode; None = accepted), what it was
REGRESSIONS = {
    "overlapping_slab_entries.vlc": (
        10, 10, "64 table entries pointing at one 200-byte payload, each declaring the 1.6 M voxels "
                "that payload may hold: before the summed minimum length check, decode allocated "
                "100 MB for a 1.5 kB stream (and would decode the same bytes 64 times)"),
}


def _code(call, buf):
    try:
        call(buf)
    except VolcodecError as exc:
        return exc.code
    return None


def test_every_file_is_listed():
    assert sorted(p.name for p in HERE.iterdir() if p.suffix == ".vlc") == sorted(REGRESSIONS)


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
