"""Near-lossless rate against the error bound: volcodec ``near=δ`` and JPEG-LS NEAR=δ on the same volumes.

    python -m benchmarks.near [PATHS...] [--data ../shared/data/dev] [--kinds 3d,4d] [--deltas 1,2,4,8]
                              [--efforts 2] [--repeats 2] [--out benchmarks/results]

For every volume and δ: bits per voxel, PSNR (peak 2^Bits Stored - 1), the largest absolute error
and the number of voxels over δ, both measured on the decoded values in the volume's own signed or
unsigned domain, and single-threaded encode/decode speed. Every volcodec decode must be within δ:
a voxel over it fails the row, is reported at the top of near.md and makes the exit code 1.

JPEG-LS is run as a DICOM encoder runs it (benchmarks.anchors.JpegLS: CharLS, per slice, P = Bits
Stored, signed values as their two's complement pattern masked to Bits Stored). CharLS bounds the
error of the *pattern*; where a signed value lies within δ of the top or bottom of the range, its
pattern can come back on the other side of the 2^(P-1) boundary, i.e. at the opposite end of the
signed range. That error is what a reader would see, so it is reported as measured, not clipped.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import report
from .anchors import Anchor, JpegLS, Volcodec, as_frames, to_stored_pattern
from .compare import _int_list, _resolve_data, add_volume_args, loaded_volumes, timed_round_trip
from .inputs import Volume
from .machine import machine_info

REFERENCE = "jpeg-ls"

# Frames per block when measuring errors: bounds the int64 temporaries to a few MB per block.
_ERROR_BLOCK_FRAMES = 16


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.near", description=__doc__.split("\n\n")[0])
    add_volume_args(p)
    p.add_argument("--deltas", type=_int_list, default=[1, 2, 4, 8],
                   help="error bounds δ, comma-separated (default 1,2,4,8; 0 is lossless)")
    p.add_argument("--efforts", type=_int_list, default=[2], help="volcodec efforts (default 2)")
    p.add_argument("--repeats", type=int, default=2, help="timed runs per codec, volume and δ; best is kept")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"),
                   help="output folder for near.md and near.json (default benchmarks/results)")
    p.add_argument("--stem", default="near", help="file name stem of the outputs (default near)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    if not args.deltas or any(d < 0 for d in args.deltas):
        p.error("--deltas must be one or more integers >= 0")
    if any(not 1 <= e <= 9 for e in args.efforts):
        p.error("--efforts must be in 1..9")
    return args


# --------------------------------------------------------------------------------------------------
# Error measures


def error_stats(original: np.ndarray, decoded: np.ndarray, near: int) -> dict:
    """Largest |decoded - original|, sum of squared errors and voxels over ``near``, in the arrays'
    own value domain (a signed array is compared as signed values)."""
    if original.shape != decoded.shape:
        raise ValueError(f"decoded shape {decoded.shape} != original {original.shape}")
    a, b = as_frames(original), as_frames(decoded)
    worst, sse, over = 0, 0, 0
    for i in range(0, a.shape[0], _ERROR_BLOCK_FRAMES):
        diff = np.abs(b[i:i + _ERROR_BLOCK_FRAMES].astype(np.int64) - a[i:i + _ERROR_BLOCK_FRAMES])
        if diff.size:
            worst = max(worst, int(diff.max()))
            sse += int(np.dot(diff.ravel(), diff.ravel()))  # exact: |diff| < 2^16, n * 2^32 < 2^63
            over += int(np.count_nonzero(diff > near))
    return {"max_abs_error": worst, "sse": sse, "over_near": over}


def psnr(sse: int, voxels: int, bits: int) -> float:
    """PSNR in dB with peak 2^bits - 1; ``inf`` when nothing differs."""
    if sse == 0:
        return math.inf
    peak = (1 << bits) - 1
    return 10.0 * math.log10(peak * peak * voxels / sse)


def pattern_max_error(original: np.ndarray, decoded: np.ndarray, bits: int) -> int:
    """Largest error on the masked two's complement patterns: the quantity CharLS bounds by NEAR."""
    a, b = as_frames(original), as_frames(decoded)
    worst = 0
    for i in range(0, a.shape[0], _ERROR_BLOCK_FRAMES):
        pa = to_stored_pattern(a[i:i + _ERROR_BLOCK_FRAMES], bits).astype(np.int64)
        pb = to_stored_pattern(b[i:i + _ERROR_BLOCK_FRAMES], bits).astype(np.int64)
        if pa.size:
            worst = max(worst, int(np.abs(pb - pa).max()))
    return worst


# --------------------------------------------------------------------------------------------------
# Measuring


def measure(codec: Anchor, label: str, volume: Volume, near: int, repeats: int, must_bound: bool) -> dict:
    """Encode and decode ``volume`` with ``codec`` at bound ``near``: best-of-``repeats`` times, size
    and errors. ``must_bound``: a voxel over ``near`` fails the row (volcodec guarantees the bound)."""
    array, bits = volume.array, volume.bits_stored
    row = {"volume": volume.name, "codec": label, "near": near, "voxels": volume.voxels, "bits_stored": bits,
           "ok": False, "error": None, "bytes": None, "bpv": None, "encode_s": None, "decode_s": None,
           "encode_mvox_s": None, "decode_mvox_s": None, "max_abs_error": None, "sse": None,
           "over_near": None, "psnr_db": None}

    def within(decoded):
        stats = error_stats(array, decoded, near)
        value = psnr(stats["sse"], volume.voxels, bits)
        # JSON has no inf: null means identical
        row.update(stats, psnr_db=None if math.isinf(value) else value)
        if volume.signed and stats["over_near"]:
            row["pattern_max_abs_error"] = pattern_max_error(array, decoded, bits)
        if must_bound and stats["over_near"]:
            return (f"BOUND VIOLATED: {stats['over_near']} of {volume.voxels} voxels off by more "
                    f"than near={near} (max {stats['max_abs_error']})")
        return None

    return timed_round_trip(codec, volume, repeats, row, within)


def _subjects(efforts: list[int], near: int) -> list[tuple[str, Anchor, bool]]:
    """(label, codec, must_bound): JPEG-LS first, then volcodec at each effort, all at ``near``."""
    out: list[tuple[str, Anchor, bool]] = [(REFERENCE, JpegLS(near), False)]
    out += [(f"volcodec-e{e}", Volcodec(e, threads=1, near=near), True) for e in efforts]
    return out


def run(args: argparse.Namespace, argv_for_record: list[str] | None = None) -> dict:
    started = time.perf_counter()
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    machine = machine_info(argv_for_record)
    labels = [label for label, _, _ in _subjects(args.efforts, 0)]
    unavailable = {}
    for label, codec, _ in _subjects(args.efforts, 0):
        why = codec.available()
        if why:
            unavailable[label] = why
            log(f"skip {label}: {why}")

    rows, volumes, load_failures = [], [], []
    data_root = _resolve_data(args.data)
    for item in loaded_volumes(args, data_root, volumes, load_failures, log):
        for near in args.deltas:
            for label, codec, must_bound in _subjects(args.efforts, near):
                if label in unavailable:
                    continue
                row = measure(codec, label, item, near, args.repeats, must_bound)
                rows.append(row)
                if row["ok"]:
                    log(f"  δ={near} {label:14s} {row['bpv']:7.3f} bpv  PSNR {_psnr_text(row):>6s}  "
                        f"max err {row['max_abs_error']} ({row['over_near']} > δ)  "
                        f"enc {row['encode_mvox_s']:7.2f}  dec {row['decode_mvox_s']:7.2f} Mvox/s")
                else:
                    log(f"  δ={near} {label:14s} FAILED {row['error']}")
        del item

    try:
        machine["loadavg_end"] = list(os.getloadavg())
    except OSError:  # pragma: no cover - not available on this platform
        pass
    ran = [label for label in labels if label not in unavailable]
    return {
        "machine": machine,
        "settings": {"repeats": args.repeats, "kinds": args.kinds, "deltas": args.deltas,
                     "efforts": args.efforts, "threads": 1, "data": str(data_root),
                     "paths": [str(p) for p in args.paths], "reference": REFERENCE},
        "codecs": [{"label": label, **codec.config()} for label, codec, _ in _subjects(args.efforts, 0)
                   if label in ran],
        "unavailable": unavailable,
        "volumes": volumes,
        "load_failures": load_failures,
        "rows": rows,
        "aggregates": aggregate(rows, volumes, ran, args.deltas),
        "verdict": verdict(rows, volumes, ran, args.deltas),
        "run_seconds": time.perf_counter() - started,
    }


# --------------------------------------------------------------------------------------------------
# Aggregation


def _totals(rows: list[dict]) -> dict:
    psnrs = [math.inf if r["psnr_db"] is None else r["psnr_db"] for r in rows]
    return {**report.totals(rows),
            "max_abs_error": max(r["max_abs_error"] for r in rows),
            "over_near": sum(r["over_near"] for r in rows),
            "min_psnr_db": None if math.isinf(min(psnrs)) else min(psnrs)}


def aggregate(rows: list[dict], volumes: list[dict], codecs: list[str], deltas: list[int]) -> dict:
    """Per group, δ and codec: total bits / total voxels and total voxels / total best time; the
    ratio to JPEG-LS is taken over the volumes where both succeeded (the same volumes)."""
    by_key = {(r["volume"], r["codec"], r["near"]): r for r in rows}
    out: dict = {}
    for group, member in report.GROUPS.items():
        names = [v["name"] for v in volumes if member(v)]
        if not names:
            continue
        per_delta = {}
        for near in deltas:
            entries = {}
            for codec in codecs:
                entry, _, refs = report.group_entry([by_key.get((n, codec, near)) for n in names],
                                                    lambda r, d=near: by_key.get((r["volume"], REFERENCE, d)), _totals)
                if refs is not None:
                    entry["bpv_vs_ref"] = entry["bpv"] / _totals(refs)["bpv"]
                entries[codec] = entry
            per_delta[str(near)] = entries
        out[group] = {"volumes": names, "voxels": sum(v["voxels"] for v in volumes if member(v)),
                      "deltas": per_delta}
    return out


def verdict(rows: list[dict], volumes: list[dict], codecs: list[str], deltas: list[int]) -> dict:
    """For each volcodec effort: does it take fewer bits than JPEG-LS at the same δ on every volume?
    A missing or failed row on either side is an exception too (nothing to compare is not a win)."""
    by_key = {(r["volume"], r["codec"], r["near"]): r for r in rows}
    out = {}
    for codec in codecs:
        if codec == REFERENCE:
            continue
        exceptions = []
        for v in volumes:
            for near in deltas:
                mine, ref = by_key.get((v["name"], codec, near)), by_key.get((v["name"], REFERENCE, near))
                if mine is None or ref is None or not mine["ok"] or not ref["ok"]:
                    exceptions.append({"volume": v["name"], "near": near, "ratio": None,
                                       "why": "failed or missing row"})
                elif mine["bytes"] >= ref["bytes"]:
                    exceptions.append({"volume": v["name"], "near": near, "ratio": mine["bpv"] / ref["bpv"],
                                       "why": "not smaller"})
        out[codec] = {"every_volume": bool(volumes) and not exceptions, "exceptions": exceptions,
                      "volumes": len(volumes), "deltas": list(deltas)}
    return out


# --------------------------------------------------------------------------------------------------
# Markdown


def _psnr_text(row: dict, key: str = "psnr_db") -> str:
    if row.get(key) is None:
        return "inf"
    return f"{row[key]:.2f}"


def verdict_lines(result: dict) -> list[str]:
    kinds = "/".join(k.upper() for k in result["settings"]["kinds"])
    deltas = ", ".join(map(str, result["settings"]["deltas"]))
    out = []
    for codec, v in result["verdict"].items():
        if v["every_volume"]:
            out.append(f"- **Yes**: `{codec}` uses fewer bits than JPEG-LS at the same δ on every {kinds} "
                       f"volume ({v['volumes']} volumes, δ = {deltas}).")
            continue
        listed = "; ".join(
            f"{e['volume']} δ={e['near']} "
            f"({'÷ JLS ' + format(e['ratio'], '.3f') if e['ratio'] is not None else e['why']})"
            for e in v["exceptions"])
        out.append(f"- **No**: `{codec}` does not use fewer bits than JPEG-LS at the same δ on every "
                   f"{kinds} volume ({v['volumes']} volumes, δ = {deltas}); exceptions: {listed}.")
    return out


def markdown(result: dict) -> str:
    s = result["settings"]
    codecs = [c["label"] for c in result["codecs"]]
    volumes = result["volumes"]
    rows = {(r["volume"], r["codec"], r["near"]): r for r in result["rows"]}
    violations = [r for r in result["rows"] if r["error"] and r["error"].startswith("BOUND VIOLATED")]
    out = ["# Near-lossless: volcodec against JPEG-LS NEAR at the same error bound δ", ""]
    if violations:
        out += ["**BOUND VIOLATED** (volcodec decoded a voxel further than δ from the original):", ""]
        out += [f"- {r['volume']} / {r['codec']} δ={r['near']}: {r['error']}" for r in violations]
        out.append("")
    out += report.machine_lines(result["machine"])
    out += [
        (f"- Single thread (volcodec `threads=1`; CharLS has none), best of {s['repeats']} runs, whole "
         "volume per timing (JPEG-LS loops over slices inside the timing). JPEG-LS: CharLS via pyjpegls "
         "`encode_buffer(..., lossy_error=δ)`, one frame per slice, P = Bits Stored, signed data as the "
         "two's complement pattern masked to Bits Stored."),
        ("- Errors are measured on the decoded volume in its own value domain (signed stays signed): "
         "**max err** the largest |decoded − original|, **> δ** the voxels off by more than δ, "
         "**PSNR** 10·log10((2^bits − 1)² / MSE) with bits = Bits Stored (inf: identical). Aggregates: "
         "total bits / total voxels, ratio to JPEG-LS on the same volumes, min PSNR and max err over the "
         "group, total voxels / total best time."),
        f"- Run time: {result['run_seconds']:.0f} s.",
        "",
        "## Aggregate",
    ]
    for group, agg in result["aggregates"].items():
        out += ["", f"### {group}: {len(agg['volumes'])} volumes, {agg['voxels'] / 1e6:.1f} Mvox", ""]
        table = []
        for near, entries in agg["deltas"].items():
            for codec in codecs:
                e = entries.get(codec)
                if e is None:
                    continue
                if not e.get("volumes_ok"):
                    table.append([near, codec, "failed", "", "", "", "", "", "", f"0/{len(agg['volumes'])}"])
                    continue
                table.append([near, codec, report._f(e["bpv"]), report._f(e.get("bpv_vs_ref")),
                              _psnr_text(e, "min_psnr_db"), str(e["max_abs_error"]), str(e["over_near"]),
                              report._speed(e["encode_mvox_s"]), report._speed(e["decode_mvox_s"]),
                              f"{e['volumes_ok']}/{len(agg['volumes'])}"])
        out += report._table(["δ", "codec", "bits/voxel", "bpv ÷ JLS", "min PSNR dB", "max err", "> δ",
                              "encode Mvox/s", "decode Mvox/s", "volumes ok"], table,
                             ["r", "l"] + ["r"] * 8)

    for near in s["deltas"]:
        body = []
        for v in volumes:
            ref = rows.get((v["name"], REFERENCE, near))
            for codec in codecs:
                r = rows.get((v["name"], codec, near))
                if r is None:
                    continue
                bits = str(v["bits_stored"]) + ("s" if v["signed"] else "u")
                head = [v["name"], v["modality"], v["kind"], bits, codec]
                if r["bpv"] is None or r["max_abs_error"] is None:
                    body.append(head + ["FAIL"] + [""] * 7)
                    continue
                ratio = r["bpv"] / ref["bpv"] if ref and ref["ok"] and r["ok"] else None
                body.append(head + [report._f(r["bpv"]), report._f(ratio), _psnr_text(r),
                                    str(r["max_abs_error"]) + ("" if r["ok"] else " FAIL"),
                                    str(r["over_near"]), report._speed(r["encode_mvox_s"]),
                                    report._speed(r["decode_mvox_s"])])
        out += ["", f"## Per volume, δ = {near}", ""]
        out += report._table(["volume", "mod.", "kind", "bits", "codec", "bits/voxel", "bpv ÷ JLS",
                              "PSNR dB", "max err", "> δ", "encode Mvox/s", "decode Mvox/s"], body,
                             ["l", "l", "l", "r", "l"] + ["r"] * 7)

    out += ["", "## Notes", ""]
    out += [f"- `{c['label']}`: {c['description']}; parameters as listed, with `near` = δ of the row"
            for c in result["codecs"]]
    wrapped = [r for r in result["rows"] if r["codec"] == REFERENCE and r["ok"] and r["over_near"]]
    if wrapped:
        out.append(
            "- JPEG-LS rows with voxels over δ: CharLS keeps the two's complement *pattern* within δ (the "
            "largest pattern error is in `pattern_max_abs_error` in near.json), but a signed value within δ "
            "of either end of its range can come back at the other end. A DICOM reader sign-extends the "
            "pattern and sees that error: " + "; ".join(
                f"{r['volume']} δ={r['near']}: {r['over_near']} voxels, max {r['max_abs_error']} "
                f"(pattern max {r.get('pattern_max_abs_error', 'n/a')})" for r in wrapped) + ".")
    out += report.notes_and_failures(result, volumes, lambda r: f"{r['codec']} δ={r['near']}")
    out += ["", "## Verdict", ""] + verdict_lines(result)
    return "\n".join(out) + "\n"


def write(result: dict, out_dir: Path, stem: str = "near") -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, json_path = out_dir / f"{stem}.md", out_dir / f"{stem}.json"
    md_path.write_text(markdown(result))
    json_path.write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
    return md_path, json_path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    record = None if argv is None else ["benchmarks/near.py", *argv]
    result = run(args, record)
    md_path, json_path = write(result, args.out, args.stem)
    if not args.quiet:
        for line in verdict_lines(result):
            print(line, file=sys.stderr)
        print(f"wrote {md_path} and {json_path} ({result['run_seconds']:.0f} s)", file=sys.stderr)
    violated = [r for r in result["rows"] if r["error"] and r["error"].startswith("BOUND VIOLATED")]
    if violated:
        print(f"ERROR: volcodec exceeded δ on {len(violated)} row(s); see {md_path}", file=sys.stderr)
    failed = [r for r in result["rows"] if not r["ok"]]
    return 1 if failed or result["load_failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
