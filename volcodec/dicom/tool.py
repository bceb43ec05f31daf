"""``volcodec dicom compress|decompress|verify SRC DST``: transcode files, series folders and DICOMDIRs.

SRC is a DICOM file, a folder (searched recursively) or a DICOMDIR; DST is a folder, created if needed.
Each output keeps its input's path relative to SRC, so the archive keeps its structure; with
``--multiframe`` each classic CT/MR/PET series becomes one Legacy Converted Enhanced object named
``<SeriesInstanceUID>.dcm`` beside its first file, and ``decompress --split`` turns such an object back
into its source instances (``<SOPInstanceUID>.dcm``). Every file is written atomically (temporary
file, then rename); an existing output is replaced only with ``--force``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from .. import DEFAULT_EFFORT, thread_count
from .._threads import run_each
from ..cli import EXIT_DATA, EXIT_OK, CliError, add_threads_option, write_atomic
from ..errors import DicomError, VolcodecError
from . import multiframe
from .transcode import Geometry, compress_dataset, decode_words, decompress_dataset, stored_words
from .uid import is_volcodec


def inputs(src: str | Path) -> list[tuple[Path, Path]]:
    """(file, path relative to SRC) for every file SRC names: a file, a folder tree or a DICOMDIR."""
    src = Path(src)
    if src.is_file() and src.name.upper() == "DICOMDIR":
        # the records' Referenced File IDs, relative to the DICOMDIR's folder (pydicom's FileSet
        # would stage a temporary folder just to list them)
        ds = _read(src)
        paths = set()
        for record in ds.get("DirectoryRecordSequence", []):
            parts = record.get("ReferencedFileID")
            if parts:
                parts = [parts] if isinstance(parts, str) else list(parts)
                paths.add(src.parent.joinpath(*parts))
        if not paths:
            raise CliError(f"{src} references no files")
        return [(p, p.relative_to(src.parent)) for p in sorted(paths)]
    if src.is_file():
        return [(src, Path(src.name))]
    if not src.is_dir():
        raise CliError(f"{src} does not exist")
    files = sorted(p for p in src.rglob("*") if p.is_file() and not p.name.startswith(".")
                   and p.name.upper() != "DICOMDIR")
    if not files:
        raise CliError(f"{src} holds no files")
    return [(p, p.relative_to(src)) for p in files]


def _read(path: Path):
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        return dcmread(path)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise DicomError(f"{path} is not a readable DICOM file: {exc}") from None


def _write(ds, out: Path, force: bool) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, lambda f: ds.save_as(f, enforce_file_format=True), force)


def _guard(path, fn):
    try:
        return fn()
    except VolcodecError as exc:
        raise CliError(f"{path}: {exc}") from None


def _per_file(args, n_files: int) -> tuple[int, int]:
    """(files at a time, threads per file): with several files, every core takes whole files (a
    single-frame instance is one slab, so only files run side by side); one file gets them all."""
    threads = thread_count(args.threads)
    return (threads, 1) if n_files > 1 else (1, threads)


def cmd_compress(args) -> int:
    dst = Path(args.output)
    items = inputs(args.input)
    at_once, inner = _per_file(args, len(items))
    kw = {"effort": args.effort, "near": args.near}

    def one(item):  # -> (series UID, dataset) to convert later, or (input bytes, output bytes)
        path, rel = item
        ds = _guard(path, lambda: _read(path))
        if args.multiframe and multiframe.can_convert(ds):
            return str(ds.get("SeriesInstanceUID", "")), ds
        out = _guard(path, lambda: compress_dataset(ds, threads=inner, **kw))
        _write(out, dst / rel, args.force)
        return path.stat().st_size, (dst / rel).stat().st_size

    series: dict[str, list] = defaultdict(list)
    total_in = total_out = 0
    for (path, rel), (a, b) in zip(items, run_each(one, items, at_once)):
        if isinstance(a, str):
            series[a].append((path, rel, b))
        else:
            total_in, total_out = total_in + a, total_out + b
    for uid, members in series.items():
        datasets = [m[2] for m in members]
        mf = _guard(members[0][0], lambda: multiframe.to_multiframe(datasets))
        out = _guard(members[0][0], lambda: compress_dataset(mf, threads=args.threads, **kw))
        target = dst / members[0][1].parent / f"{uid}.dcm"
        _write(out, target, args.force)
        total_in += sum(m[0].stat().st_size for m in members)
        total_out += target.stat().st_size
    print(f"{args.input} -> {dst}: {len(items)} file(s), {total_in} -> {total_out} bytes"
          + (f", ratio {total_in / total_out:.3f}" if total_out else ""))
    return EXIT_OK


def cmd_decompress(args) -> int:
    dst = Path(args.output)
    items = inputs(args.input)
    at_once, inner = _per_file(args, len(items))

    def one(item) -> int:  # files written
        path, rel = item
        ds = _guard(path, lambda: _read(path))
        if not is_volcodec(ds.file_meta.get("TransferSyntaxUID", "")):
            raise CliError(f"{path}: transfer syntax {ds.file_meta.get('TransferSyntaxUID')} is not volcodec's")
        if args.split and multiframe.is_split_capable(ds):
            words = _guard(path, lambda: decode_words(ds, threads=inner))
            instances = _guard(path, lambda: multiframe.split(ds, words))
            for inst in instances:
                _write(inst, dst / rel.parent / f"{inst.SOPInstanceUID}.dcm", args.force)
            return len(instances)
        _write(_guard(path, lambda: decompress_dataset(ds, inner)), dst / rel, args.force)
        return 1

    written = sum(run_each(one, items, at_once))
    print(f"{args.input} -> {dst}: {len(items)} file(s) in, {written} written")
    return EXIT_OK


def _instance_words(path: Path) -> dict[str, np.ndarray]:
    """SOP Instance UID -> (samples, Y, X) words of each frame a file holds (a converted object
    answers for its source instances)."""
    ds = _read(path)
    geo = Geometry(ds)
    if is_volcodec(ds.file_meta.TransferSyntaxUID):
        words = decode_words(ds, geo)
        if multiframe.is_split_capable(ds):
            return {str(g.ConversionSourceAttributesSequence[0].ReferencedSOPInstanceUID): words[k]
                    for k, g in enumerate(ds.PerFrameFunctionalGroupsSequence)}
    else:
        words = stored_words(ds, geo)
    return {f"{ds.SOPInstanceUID}#{k}" if geo.frames > 1 else str(ds.SOPInstanceUID): w
            for k, w in enumerate(words)}


def cmd_verify(args) -> int:
    """Every instance of SRC must be found in DST with the same stored words."""
    originals: dict[str, np.ndarray] = {}
    for path, _ in inputs(args.input):
        originals.update(_guard(path, lambda: _instance_words(path)))
    found: dict[str, np.ndarray] = {}
    for path, _ in inputs(args.output):
        found.update(_guard(path, lambda: _instance_words(path)))
    missing = [uid for uid in originals if uid not in found]
    differ = [uid for uid, w in originals.items() if uid in found and not np.array_equal(w, found[uid])]
    print(f"{args.input} vs {args.output}: {len(originals)} frame(s), {len(originals) - len(missing) - len(differ)} "
          f"bit-exact, {len(differ)} differ, {len(missing)} missing")
    if missing or differ:
        first = (differ or missing)[0]
        raise CliError(f"round trip is not bit-exact ({'differs' if differ else 'missing'}: {first})",
                       EXIT_DATA)
    return EXIT_OK


def add_parser(sub, int_in) -> None:
    """The ``dicom`` command group, added to the main parser by volcodec.cli."""
    group = sub.add_parser("dicom", help="transcode DICOM files to and from volcodec's transfer syntax",
                           description="Transcode DICOM files, series folders or DICOMDIRs.")
    cmds = group.add_subparsers(dest="dicom_command", required=True, metavar="COMMAND")
    def command(name, run, help, force=True):
        p = cmds.add_parser(name, help=help)
        p.add_argument("input", metavar="SRC")
        p.add_argument("output", metavar="DST")
        if force:
            p.add_argument("--force", action="store_true", help="overwrite existing outputs")
        p.set_defaults(run=run)
        return p

    p = command("compress", cmd_compress, "compress SRC into the folder DST")
    p.add_argument("--effort", type=int_in(1, 9), default=DEFAULT_EFFORT, metavar="N",
                   help=f"1 (fastest) .. 9 (smallest) (default {DEFAULT_EFFORT})")
    add_threads_option(p)
    p.add_argument("--near", type=int_in(0, 2**31 - 1), default=0, metavar="D",
                   help="near-lossless: max abs error D (new SOP Instance UIDs; default 0 = lossless)")
    p.add_argument("--multiframe", action="store_true",
                   help="turn each classic CT/MR/PET series into one Legacy Converted Enhanced object")
    p = command("decompress", cmd_decompress, "decompress SRC into the folder DST (Explicit VR Little Endian)")
    p.add_argument("--split", action="store_true",
                   help="split objects made by --multiframe back into their source instances")
    add_threads_option(p)
    command("verify", cmd_verify, "check that every frame of SRC is in DST, bit-exact", force=False)
