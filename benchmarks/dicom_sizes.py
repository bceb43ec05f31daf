"""Sizes of the dev set's DICOM files: original, volcodec lossless, and JPEG-LS lossless (.80) DICOM.

    python -m benchmarks.dicom_sizes [DATA_ROOT] [--out benchmarks/results/dicom_sizes.md]

Series by series (folders of ../shared/data/dev that hold DICOM files): the original files; volcodec
one output per input instance (``volcodec dicom compress``); volcodec with ``--multiframe`` (classic
CT/MR series only, one Legacy Converted Enhanced object); and each instance compressed with pydicom's
JPEG-LS Lossless encoder (pyjpegls/CharLS, the true Bits Stored). Sizes are whole DICOM files. Every
volcodec output is decoded and compared word for word with the input before it is counted.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import sys
from pathlib import Path

import numpy as np

from volcodec import DEFAULT_EFFORT
from volcodec.errors import DicomError

from .machine import machine_info
from .report import machine_lines

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"


def _size(ds) -> int:
    from pydicom.dataset import Dataset

    fresh = Dataset(ds)  # a plain Dataset: no memory of a big endian source's encoding
    fresh.file_meta = ds.file_meta
    buf = io.BytesIO()
    fresh.save_as(buf, enforce_file_format=True)
    return len(buf.getvalue())


def _parts(mf) -> dict:
    """Where the bytes of a --multiframe object go: encapsulated Pixel Data (fragments, item headers and
    offset table), volcodec's private block (group 0009) and the rest of the header."""
    from pydicom.dataset import Dataset

    bare = Dataset({tag: mf[tag] for tag in mf.keys() if tag.group != 0x0009})
    bare.file_meta = mf.file_meta
    total, rest, pixels = _size(mf), _size(bare), len(mf.PixelData)
    return {"pixel_data": pixels, "private_block": total - rest,
            "rest": rest - pixels}


def _jpegls(ds) -> int | None:
    from pydicom.uid import JPEGLSLossless

    # ds.copy() is shallow: compress() would put JPEG-LS Pixel Data and a new SOP Instance UID into the
    # caller's dataset, and the multiframe column would be built from those
    ds = copy.deepcopy(ds)
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.decompress()
    try:
        ds.compress(JPEGLSLossless)
    except (RuntimeError, ValueError):
        return None  # e.g. words with bits above Bits Stored: JPEG-LS cannot hold them
    return _size(ds)


def measure(folder: Path) -> dict | None:
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    import volcodec.dicom as vd
    from volcodec.dicom import multiframe, transcode

    datasets = []
    for p in sorted(folder.iterdir()):
        try:
            datasets.append((p, dcmread(p)))
        except (InvalidDicomError, OSError):
            continue
    datasets = [(p, d) for p, d in datasets if "PixelData" in d]
    if not datasets:
        return None
    row = {"series": folder.name, "files": len(datasets),
           "original": sum(p.stat().st_size for p, _ in datasets), "volcodec": 0, "jpegls": 0}
    for _, ds in datasets:
        c = vd.compress_dataset(ds)
        if not np.array_equal(transcode.decode_words(c), transcode.stored_words(ds)):
            raise SystemExit(f"{folder.name}: volcodec round trip is not exact")
        row["volcodec"] += _size(c)
        j = _jpegls(ds)
        row["jpegls"] = None if j is None or row["jpegls"] is None else row["jpegls"] + j
    if len(datasets) > 1 and all(multiframe.can_convert(d) for _, d in datasets):
        try:
            mf = vd.compress_dataset(multiframe.to_multiframe([d for _, d in datasets]))
            row["volcodec_multiframe"] = _size(mf)
            row["multiframe_parts"] = _parts(mf)
        except DicomError as exc:  # e.g. a series highdicom cannot convert
            row["volcodec_multiframe"] = f"n/a ({exc.message[:40]})"
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "dicom_sizes.md")
    args = ap.parse_args(argv)
    rows = []
    for folder in sorted((args.root / "dev").iterdir()):
        if folder.is_dir():
            row = measure(folder)
            if row:
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    lines = ["# DICOM file sizes: original, volcodec lossless, JPEG-LS lossless", "",
             *machine_lines(machine_info(argv)), "",
             f"Whole DICOM files in bytes; ratios are original / compressed. volcodec at the default effort "
             f"({DEFAULT_EFFORT}).",
             "`multiframe`: the classic series as one Legacy Converted Enhanced object (`--multiframe`).",
             "JPEG-LS: pydicom's encoder with pyjpegls (CharLS), one file per instance.", "",
             "| series | files | original | volcodec | ratio | volcodec multiframe | ratio | JPEG-LS (.80) | ratio | volcodec / JPEG-LS |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def cell(v, orig):
        return ("n/a", "") if not isinstance(v, int) else (f"{v:,}", f"{orig / v:.3f}")

    tot = {"original": 0, "volcodec": 0, "jpegls": 0}
    for r in rows:
        v, vr = cell(r["volcodec"], r["original"])
        m, mr = cell(r.get("volcodec_multiframe"), r["original"])
        j, jr = cell(r["jpegls"], r["original"])
        rel = f"{r['volcodec'] / r['jpegls']:.3f}" if r["jpegls"] else ""
        lines.append(f"| {r['series']} | {r['files']} | {r['original']:,} | {v} | {vr} | {m} | {mr} | {j} | {jr} | {rel} |")
        if r["jpegls"]:
            for k in tot:
                tot[k] += r[k]
    lines += ["", f"Over the series JPEG-LS could encode: original {tot['original']:,}, volcodec "
              f"{tot['volcodec']:,}, JPEG-LS {tot['jpegls']:,} bytes; volcodec / JPEG-LS = "
              f"{tot['volcodec'] / tot['jpegls']:.3f}."]
    lines += ["", "Where the `multiframe` bytes go: encapsulated Pixel Data (fragments, item headers, offset "
              "table), volcodec's private block of source headers (group 0009, docs/format.md) and the rest "
              "of the header (highdicom's functional groups and shared attributes).", "",
              "| series | frames | multiframe | Pixel Data | private block | per frame | rest of header |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "multiframe_parts" in r:
            p = r["multiframe_parts"]
            lines.append(f"| {r['series']} | {r['files']} | {r['volcodec_multiframe']:,} | "
                         f"{p['pixel_data']:,} | {p['private_block']:,} | {p['private_block'] / r['files']:,.0f} | "
                         f"{p['rest']:,} |")
    lines.append("")
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
