"""The benchmark harness: every anchor round-trips bit-exact, streams declare the true bit depth, the
DICOM signed convention is exact, and failures become failed rows. No speed is asserted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

# benchmarks/ is a tool beside the package, not installed with it: import it from the repo root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import anchors, compare, report
from benchmarks.anchors import (
    Anchor,
    from_stored_pattern,
    j2k_siz_components,
    jpegls_frame_header,
    to_stored_pattern,
)
from benchmarks.inputs import Volume


def _volume(shape, dtype, bits, seed=0):
    """Smooth field plus noise spanning the whole ``bits`` range, extremes included."""
    rng = np.random.default_rng(seed)
    signed = np.dtype(dtype).kind == "i"
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    yy, xx = np.indices(shape[-2:])
    field = (np.sin(xx / 3.0) + np.cos(yy / 5.0) + 2) / 4 * (hi - lo) + lo
    vol = field + rng.integers(-3, 4, size=shape)
    vol = np.clip(vol, lo, hi).astype(dtype)
    flat = vol.reshape(-1)
    flat[0], flat[-1] = lo, hi
    return vol


CASES = {
    "u12-3d": ((3, 20, 24), np.uint16, 12),
    "s12-3d": ((3, 20, 24), np.int16, 12),
    "s16-3d": ((2, 17, 19), np.int16, 16),
    "u16-3d": ((2, 16, 16), np.uint16, 16),
    "u8-3d": ((2, 16, 24), np.uint8, 8),
    "u10-4d": ((2, 3, 16, 16), np.uint16, 10),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("anchor", anchors.standard_anchors(), ids=lambda a: a.name)
def test_anchor_round_trips_bit_exact(anchor: Anchor, case: str):
    why = anchor.available()
    if why:
        pytest.skip(why)
    shape, dtype, bits = CASES[case]
    vol = _volume(shape, dtype, bits)
    chunks = anchor.encode(vol, bits)
    if anchor.per_slice:
        assert len(chunks) == int(np.prod(shape[:-2]))
    out = anchor.decode(chunks, vol.shape, vol.dtype, bits)
    assert out.dtype == vol.dtype and out.shape == vol.shape
    np.testing.assert_array_equal(out, vol)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("bits", range(2, 17))
def test_jpegls_stream_declares_bits_stored(bits: int, signed: bool):
    if anchors.JpegLS().available():
        pytest.skip("pyjpegls missing")
    dtype = container = np.int16 if signed else np.uint16
    if bits <= 8:
        container = np.int8 if signed else np.uint8
    # Values far below the top of the range: an encoder that derives P from the data (as
    # jpeg_ls.encode does) would write a smaller P; a DICOM encoder writes Bits Stored.
    vol = (np.arange(2 * 5 * 7).reshape(2, 5, 7) % 2).astype(dtype)
    if signed:
        vol[0, 0, 0] = -1
    vol = vol.astype(container)
    chunks = anchors.JpegLS().encode(vol, bits)
    for chunk in chunks:
        header = jpegls_frame_header(chunk)
        assert header == {"P": bits, "Y": 5, "X": 7, "Nf": 1}
    out = anchors.JpegLS().decode(chunks, vol.shape, vol.dtype, bits)
    np.testing.assert_array_equal(out, vol)


def test_jpegls_parser_finds_sof55_after_other_segments():
    sof = b"\xff\xf7\x00\x0b\x0c\x00\x05\x00\x07\x01\x01\x11\x00"
    app = b"\xff\xe0\x00\x04ab"
    assert jpegls_frame_header(b"\xff\xd8" + app + sof + b"\xff\xda")["P"] == 12
    with pytest.raises(ValueError, match="SOI"):
        jpegls_frame_header(b"\x00\x00" + sof)
    with pytest.raises(ValueError, match="SOF55"):
        jpegls_frame_header(b"\xff\xd8" + app + b"\xff\xda\x00\x02")
    with pytest.raises(ValueError, match="bad length"):
        jpegls_frame_header(b"\xff\xd8\xff\xe0\x00\x40ab")


@pytest.mark.parametrize("bits,dtype", [(12, np.uint16), (12, np.int16), (16, np.int16), (8, np.uint8)])
def test_j2k_stream_declares_bits_and_sign(bits, dtype):
    anchor = anchors.Jpeg2000()
    if anchor.available():
        pytest.skip(anchor.available())
    vol = _volume((1, 16, 16), dtype, bits)
    (chunk,) = anchor.encode(vol, bits)
    assert j2k_siz_components(chunk) == [(bits, np.dtype(dtype).kind == "i")]
    assert anchor.declared_bits([chunk]) == bits


@pytest.mark.parametrize("bits", range(1, 17))
def test_stored_pattern_is_masked_twos_complement_and_inverts(bits: int):
    values = np.arange(-(1 << (bits - 1)), 1 << (bits - 1), dtype=np.int32)
    signed = values.astype(np.int8 if bits <= 8 else np.int16)
    pattern = to_stored_pattern(signed, bits)
    assert pattern.dtype == (np.uint8 if bits <= 8 else np.uint16)
    np.testing.assert_array_equal(pattern, values & ((1 << bits) - 1))
    np.testing.assert_array_equal(from_stored_pattern(pattern, bits, signed.dtype), signed)
    # the same values in a 16-bit container give the same pattern
    np.testing.assert_array_equal(to_stored_pattern(values.astype(np.int16), bits), pattern)
    unsigned = np.arange(1 << bits, dtype=np.uint16)
    np.testing.assert_array_equal(to_stored_pattern(unsigned, bits), unsigned)
    np.testing.assert_array_equal(from_stored_pattern(to_stored_pattern(unsigned, bits), bits, np.uint16),
                                  unsigned)


def test_minus_one_in_twelve_bits_is_0fff():
    assert int(to_stored_pattern(np.array([-1], np.int16), 12)[0]) == 0x0FFF


def test_fits_and_needed_bits():
    a = np.array([-2048, 2047], np.int16)
    assert anchors.fits_bits(a, 12, True) and not anchors.fits_bits(a, 11, True)
    assert anchors.needed_bits(a, True) == 12
    assert anchors.needed_bits(np.array([0, 4095], np.uint16), False) == 12
    assert anchors.needed_bits(np.array([0, 4096], np.uint16), False) == 13
    assert anchors.needed_bits(np.array([-1, 0], np.int16), True) == 2  # JPEG-LS minimum


class _Corrupting(Anchor):
    name, per_slice = "corrupting", False

    def encode(self, volume, bits):
        return [volume.tobytes()]

    def decode(self, chunks, shape, dtype, bits):
        out = np.frombuffer(chunks[0], dtype).reshape(shape).copy()
        out.reshape(-1)[-1] ^= 1
        return out


class _Raising(_Corrupting):
    name = "raising"

    def encode(self, volume, bits):
        raise RuntimeError("boom")


def _npvolume(shape=(3, 8, 8)):
    arr = _volume(shape, np.uint16, 12)
    return Volume(name="v", array=arr, modality="MR", kind="3d", bits_stored=12, signed=False, source="x")


def test_measure_marks_inexact_and_raising_codecs_failed():
    row = compare.measure(_Corrupting(), _npvolume(), repeats=1)
    assert not row["ok"] and "decoded != original at 1 of" in row["error"]
    row = compare.measure(_Raising(), _npvolume(), repeats=1)
    assert not row["ok"] and row["error"] == "warm-up: RuntimeError: boom"


def test_aggregate_compares_the_same_volumes():
    def row(volume, codec, nbytes, ok=True):
        return {"volume": volume, "codec": codec, "voxels": 100, "ok": ok, "bytes": nbytes,
                "bpv": 8 * nbytes / 100, "encode_s": 1.0, "decode_s": 2.0,
                "encode_mvox_s": 1e-4, "decode_mvox_s": 5e-5}

    vols = [{"name": "a", "modality": "CT", "kind": "3d", "voxels": 100},
            {"name": "b", "modality": "MR", "kind": "4d", "voxels": 100}]
    rows = [row("a", "jpeg-ls", 100), row("b", "jpeg-ls", 50), row("a", "x", 50), row("b", "x", 1, ok=False)]
    agg = report.aggregate(rows, vols, ["jpeg-ls", "x"])
    x = agg["all"]["codecs"]["x"]
    assert x["volumes_ok"] == 1 and x["volumes_failed"] == ["b"]
    assert x["bpv_vs_ref"] == pytest.approx(0.5)  # against jpeg-ls on volume a only
    assert agg["all"]["codecs"]["jpeg-ls"]["bpv"] == pytest.approx(6.0)
    assert set(agg) == {"CT", "MR", "4D", "all"} and agg["4D"]["volumes"] == ["b"]


def test_compare_end_to_end_on_npy(tmp_path: Path):
    arr = _volume((3, 12, 16), np.int16, 12, seed=3)
    path = tmp_path / "ct_tiny.npy"
    np.save(path, arr)
    path.with_suffix(".json").write_text(json.dumps({"bits_stored": 12, "modality": "CT", "kind": "3d"}))
    out = tmp_path / "results"
    code = compare.main([str(path), "--no-volcodec", "--repeats", "1", "--out", str(out), "--quiet"])
    assert code == 0
    result = json.loads((out / "results.json").read_text())
    md = (out / "results.md").read_text()
    assert result["volumes"][0]["bits_stored"] == 12 and result["volumes"][0]["signed"]
    ran = [r for r in result["rows"]]
    assert ran and all(r["ok"] for r in ran)
    jls = next(r for r in ran if r["codec"] == "jpeg-ls")
    assert jls["declared_bits"] == 12 and jls["bpv_vs_ref"] == 1.0
    assert set(result["aggregates"]) == {"CT", "all"}
    assert "| jpeg-ls |" in md and "Command: `python -m benchmarks.compare" in md
    assert result["machine"]["versions"]["numpy"] == np.__version__
