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


class _Exact(_Corrupting):
    """Exact, with an encode time and (optionally) output size that change from round to round."""

    def __init__(self, name, delays, sizes=None):
        self.name, self.delays, self.sizes, self.calls, self.order = name, list(delays), sizes, 0, []

    def encode(self, volume, bits):
        import time

        self.calls += 1
        if self.calls % 2 == 0:  # every other call is the warm-up's
            self.order.append(self.name)
            time.sleep(self.delays[self.calls // 2 - 1])
        pad = b"" if self.sizes is None else b"\0" * self.sizes[(self.calls - 1) // 2]
        return [volume.tobytes(), pad]

    def decode(self, chunks, shape, dtype, bits):
        return np.frombuffer(chunks[0], dtype).reshape(shape).copy()


def test_rounds_interleave_codecs_and_keep_each_ones_best():
    a, b = _Exact("a", [0.05, 0.0, 0.05]), _Exact("b", [0.0, 0.05, 0.05])
    log = []
    a.order = b.order = log
    ra, rb = compare.measure_in_rounds([a, b], _npvolume(), 3)
    assert log == ["a", "b"] * 3  # round by round, not codec by codec
    assert ra["ok"] and rb["ok"] and ra["encode_s"] < 0.04 and rb["encode_s"] < 0.04
    assert ra["encode_mvox_s"] == pytest.approx(ra["voxels"] / ra["encode_s"] / 1e6)
    # a codec whose output changes between rounds fails its row
    (rc,) = compare.measure_in_rounds([_Exact("c", [0, 0], sizes=[0, 3])], _npvolume(), 2)
    assert not rc["ok"] and "bytes, an earlier one" in rc["error"]


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


def test_core_probe_and_its_report_line():
    """Both loops run and give a two-thread speed-up (about 1 to 2 on any machine); the report says
    what the numbers mean only when a run recorded them."""
    from benchmarks import machine, report

    probe = machine.core_probe(n=200_000, repeats=1)
    assert set(probe) == {"alu_bound", "latency_bound"}
    assert all(0.2 < v < 4 for v in probe.values())
    info = machine.machine_info(["compare.py"])
    assert not any("Two threads" in line for line in report.machine_lines(info))
    info["core_probe_start"] = {"alu_bound": 0.96, "latency_bound": 1.93}
    line = next(line for line in report.machine_lines(info) if "Two threads" in line)
    assert "at the start 0.96x on an instruction-bound loop, 1.93x on a latency-bound one" in line
    assert "at the end" not in line and "SMT siblings" in line


# --------------------------------------------------------------------------------------------------
# benchmarks.near: rate against the error bound


def test_error_stats_and_psnr_in_the_value_domain():
    from benchmarks import near

    a = np.array([[[0, 10, -2048, 2047]]], np.int16)
    b = np.array([[[1, 8, 2047, 2047]]], np.int16)  # -2048 came back at the other end: error 4095
    stats = near.error_stats(a, b, near=2)
    assert stats == {"max_abs_error": 4095, "sse": 1 + 4 + 4095 ** 2, "over_near": 1}
    assert near.error_stats(a, a, near=0) == {"max_abs_error": 0, "sse": 0, "over_near": 0}
    assert near.psnr(0, 4, 12) == float("inf")
    assert near.psnr(4, 4, 8) == pytest.approx(20 * np.log10(255))  # MSE 1
    assert near.pattern_max_error(a, b, 12) == 2  # 10 -> 8; the patterns 0x800 and 0x7FF differ by 1


class _Off:
    """A codec whose decode is off by ``by`` at one voxel (a bound violation when ``by`` > δ)."""

    name = "off"

    def __init__(self, by):
        self.by = by

    def encode(self, volume, bits):
        return [volume.tobytes()]

    def decode(self, chunks, shape, dtype, bits):
        out = np.frombuffer(chunks[0], dtype).reshape(shape).copy()
        out.reshape(-1)[0] += self.by
        return out


def test_near_measure_fails_a_bound_violation_only_where_the_bound_is_promised():
    from benchmarks import near

    vol = _npvolume()
    assert near.measure(_Off(2), "x", vol, 2, 1, must_bound=True)["ok"]
    row = near.measure(_Off(3), "x", vol, 2, 1, must_bound=True)
    assert not row["ok"] and row["error"].startswith("BOUND VIOLATED: 1 of")
    row = near.measure(_Off(3), "jpeg-ls", vol, 2, 1, must_bound=False)
    assert row["ok"] and row["max_abs_error"] == 3 and row["over_near"] == 1


def _near_rows():
    def row(volume, codec, delta, nbytes, ok=True):
        return {"volume": volume, "codec": codec, "near": delta, "voxels": 100, "ok": ok, "bytes": nbytes,
                "bpv": 8 * nbytes / 100, "encode_s": 1.0, "decode_s": 2.0, "encode_mvox_s": 1e-4,
                "decode_mvox_s": 5e-5, "max_abs_error": delta, "sse": 0 if delta == 0 else 50,
                "over_near": 0, "psnr_db": None if delta == 0 else 60.0, "error": None if ok else "boom"}

    vols = [{"name": "a", "modality": "CT", "kind": "3d", "voxels": 100, "bits_stored": 12, "signed": True,
             "shape": [1, 10, 10]},
            {"name": "b", "modality": "MR", "kind": "4d", "voxels": 100, "bits_stored": 12, "signed": False,
             "shape": [1, 1, 10, 10]}]
    rows = [row("a", "jpeg-ls", 1, 100), row("b", "jpeg-ls", 1, 50), row("a", "volcodec-e2", 1, 50),
            row("b", "volcodec-e2", 1, 60)]
    return rows, vols


def test_near_aggregate_and_verdict_name_the_exceptions():
    from benchmarks import near

    rows, vols = _near_rows()
    agg = near.aggregate(rows, vols, ["jpeg-ls", "volcodec-e2"], [1])
    vc = agg["all"]["deltas"]["1"]["volcodec-e2"]
    assert vc["bpv"] == pytest.approx(8 * 110 / 200) and vc["bpv_vs_ref"] == pytest.approx(110 / 150)
    assert vc["min_psnr_db"] == 60.0 and agg["4D"]["volumes"] == ["b"]
    v = near.verdict(rows, vols, ["jpeg-ls", "volcodec-e2"], [1])["volcodec-e2"]
    assert not v["every_volume"] and [(e["volume"], e["near"]) for e in v["exceptions"]] == [("b", 1)]
    rows[-1]["bytes"] = 40
    assert near.verdict(rows, vols, ["jpeg-ls", "volcodec-e2"], [1])["volcodec-e2"]["every_volume"]
    rows[-1]["ok"] = False  # a failed row is an exception, not a win
    assert not near.verdict(rows, vols, ["jpeg-ls", "volcodec-e2"], [1])["volcodec-e2"]["every_volume"]


def test_near_report_shows_violations_wraps_and_the_verdict_last():
    from benchmarks import near
    from benchmarks.machine import machine_info

    rows, vols = _near_rows()
    rows[0].update(over_near=3, max_abs_error=4095, pattern_max_abs_error=1, psnr_db=30.0)  # JPEG-LS wrap
    rows[3].update(ok=False, error="BOUND VIOLATED: 1 of 100 voxels off by more than near=1 (max 2)")
    rows[2]["psnr_db"] = None  # identical
    codecs = ["jpeg-ls", "volcodec-e2"]
    result = {"machine": machine_info(["benchmarks/near.py"]), "run_seconds": 1.0,
              "settings": {"repeats": 1, "kinds": ["3d", "4d"], "deltas": [1]},
              "codecs": [{"label": c, "description": c} for c in codecs], "volumes": vols, "rows": rows,
              "aggregates": near.aggregate(rows, vols, codecs, [1]),
              "verdict": near.verdict(rows, vols, codecs, [1])}
    md = near.markdown(result)
    assert md.index("**BOUND VIOLATED**") < md.index("## Aggregate")
    assert "| a | CT | 3d | 12s | volcodec-e2 | 4.000 | 0.500 | inf | 1 | 0 |" in md
    assert "| a | CT | 3d | 12s | jpeg-ls | 8.000 | 1.000 | 30.00 | 4095 | 3 |" in md
    assert "a δ=1: 3 voxels, max 4095 (pattern max 1)" in md
    assert md.rstrip().splitlines()[-1] == (
        "- **No**: `volcodec-e2` does not use fewer bits than JPEG-LS at the same δ on every 3D/4D volume "
        "(2 volumes, δ = 1); exceptions: b δ=1 (failed or missing row).")


def test_near_end_to_end_on_npy(tmp_path: Path):
    from benchmarks import near

    if anchors.JpegLS().available() or anchors.Volcodec(2).available():
        pytest.skip("needs pyjpegls and volcodec")
    arr = _volume((3, 12, 16), np.int16, 12, seed=4)  # holds -2048 and 2047: JPEG-LS may wrap there
    path = tmp_path / "ct_tiny.npy"
    np.save(path, arr)
    path.with_suffix(".json").write_text(json.dumps({"bits_stored": 12, "modality": "CT", "kind": "3d"}))
    out = tmp_path / "results"
    code = near.main([str(path), "--deltas", "1,3", "--repeats", "1", "--out", str(out), "--quiet"])
    assert code == 0
    result = json.loads((out / "near.json").read_text())
    md = (out / "near.md").read_text()
    assert {(r["codec"], r["near"]) for r in result["rows"]} == {
        (c, d) for c in ("jpeg-ls", "volcodec-e2") for d in (1, 3)}
    for r in result["rows"]:
        assert r["ok"] and r["bits_stored"] == 12
        if r["codec"] == "volcodec-e2":
            assert r["max_abs_error"] <= r["near"] and r["over_near"] == 0
    assert set(result["aggregates"]) == {"CT", "all"}
    assert "volcodec-e2" in result["verdict"] and md.rstrip().splitlines()[-1].startswith("- **")
    assert "Command: `python -m benchmarks.near" in md and "## Per volume, δ = 3" in md
    assert result["machine"]["loadavg_end"]


# --------------------------------------------------------------------------------------------------
# benchmarks.plot


def test_plot_writes_a_png_with_one_point_per_codec(tmp_path: Path):
    pytest.importorskip("matplotlib", reason="matplotlib is an optional benchmark dependency (bench extra)")
    from benchmarks import plot

    def entry(bpv, ratio, dec, ok=2):
        return {"bpv": bpv, "bpv_vs_ref": ratio, "decode_mvox_s": dec, "volumes_ok": ok, "volumes_failed": []}

    names = ["jpeg-ls", "jpeg-xl-e7", "volcodec-e2", "volcodec-e2-t2", "zstd-19"]
    result = {
        "machine": {"cpu": "Test CPU", "cores": 2, "date": "2026-01-01T00:00:00+00:00",
                    "volcodec": {"commit": "abc"}},
        "codecs": [{"name": n} for n in names],
        "aggregates": {"all": {"volumes": ["a", "b"], "voxels": 2_000_000, "codecs": {
            "jpeg-ls": entry(4.0, 1.0, 70.0), "jpeg-xl-e7": entry(3.8, 0.95, 17.0, ok=1),
            "volcodec-e2": entry(3.6, 0.9, 15.0), "volcodec-e2-t2": entry(3.6, 0.9, 28.0),
            "zstd-19": {"volumes_ok": 0, "volumes_failed": ["a", "b"]}}}},
    }
    pts = {p["codec"]: p for p in plot.points(result)}
    assert set(pts) == set(names) - {"zstd-19"}
    assert pts["volcodec-e2-t2"]["threaded"] and not pts["volcodec-e2"]["threaded"]
    assert "Test CPU" in plot.title(result, "all")
    src = tmp_path / "results.json"
    src.write_text(json.dumps(result))
    png = tmp_path / "docs" / "tradeoff.png"
    assert plot.main(["--results", str(src), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
