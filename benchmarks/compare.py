"""Compare volcodec with the standard lossless codecs on the same volumes, in the same run.

    python -m benchmarks.compare [PATHS...] [--data ../shared/data/dev] [--kinds 3d,4d]
                                 [--efforts 1,5,9] [--threads 1,2] [--repeats 3] [--anchors NAMES] [--no-volcodec]
                                 [--out benchmarks/results]

Without PATHS every dev volume of the given kinds is measured. See benchmarks/README.md for what
each column means and the rules that keep the comparison fair.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import report
from .anchors import REFERENCE, Anchor, AnchorError, Volcodec, select_anchors
from .inputs import LoadFailure, Volume, iter_volumes
from .machine import REPO, core_probe, machine_info
from .timing import best_of


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, found {text!r}") from None


def _name_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def add_volume_args(p: argparse.ArgumentParser) -> None:
    """PATH..., --data and --kinds: which volumes a benchmark runs on."""
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                   help="volume folders (read by volcodec.volumes) or .npy files; default: the dev set")
    p.add_argument("--data", type=Path, default=Path("../shared/data/dev"),
                   help="dev data folder (default ../shared/data/dev, from here or from the repo root)")
    p.add_argument("--kinds", type=_name_list, default=["3d", "4d"],
                   help="dev volume kinds to run, comma-separated (default 3d,4d; also: interop)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__.split("\n\n")[0])
    add_volume_args(p)
    p.add_argument("--efforts", type=_int_list, default=[1, 5, 9], help="volcodec efforts (default 1,5,9)")
    p.add_argument("--threads", type=_int_list, default=[1],
                   help="volcodec thread counts, comma-separated (default 1; e.g. 1,2)")
    p.add_argument("--repeats", type=int, default=3,
                   help="rounds per volume, each timing every codec once in turn; each codec's best is kept")
    p.add_argument("--anchors", type=_name_list, default=None,
                   help="anchors to run, comma-separated (default: all; 'none' for volcodec only)")
    p.add_argument("--no-volcodec", action="store_true", help="run the anchors only")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"),
                   help="output folder for results.md and results.json (default benchmarks/results)")
    p.add_argument("--stem", default="results", help="file name stem of the outputs (default results)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    if any(not 1 <= e <= 9 for e in args.efforts):
        p.error("--efforts must be in 1..9")
    return args


def _resolve_data(path: Path) -> Path:
    if path.is_absolute() or path.exists():
        return path
    from_repo = REPO / path
    return from_repo if from_repo.exists() else path


def warmup_part(array: np.ndarray) -> np.ndarray:
    """A small piece of the volume with the same dtype and number of dimensions: run once before
    timing so that JIT compilation and library initialisation are not billed to the first timing."""
    index = tuple(slice(0, min(2, n)) for n in array.shape[:-2])
    return np.ascontiguousarray(array[index])


def timed_round_trip(codec: Anchor, volume: Volume, repeats: int, row: dict, check) -> dict:
    """Warm up, then best-of-``repeats`` encode and decode of ``volume`` with ``codec``, filling
    ``row`` (size, times, speeds); ``check(decoded)`` returns an error string or None and may add
    fields to ``row``. A codec that raises fails its row, not the run."""
    started = time.perf_counter()
    array, bits = volume.array, volume.bits_stored
    stage = "warm-up"
    try:
        part = warmup_part(array)
        codec.decode(codec.encode(part, bits), part.shape, part.dtype, bits)
        stage = "encode"
        enc_s, chunks = best_of(lambda: codec.encode(array, bits), repeats)
        stage = "decode"
        dec_s, decoded = best_of(lambda: codec.decode(chunks, array.shape, array.dtype, bits), repeats)
        stage = "check"
        nbytes = sum(memoryview(c).nbytes for c in chunks)
        row.update(bytes=nbytes, bpv=8 * nbytes / volume.voxels, encode_s=enc_s, decode_s=dec_s,
                   encode_mvox_s=volume.voxels / enc_s / 1e6, decode_mvox_s=volume.voxels / dec_s / 1e6,
                   chunks=len(chunks))
        if "declared_bits" in row:
            row["declared_bits"] = codec.declared_bits(chunks)
        decoded = np.asarray(decoded)
        if decoded.shape != array.shape or decoded.dtype != array.dtype:
            row["error"] = (f"decoded shape/dtype {decoded.shape} {decoded.dtype} != original "
                            f"{array.shape} {array.dtype}")
        else:
            row["error"] = check(decoded)
            row["ok"] = row["error"] is None
    except AnchorError as exc:
        row["error"] = f"{stage}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a codec that raises is a failed row, not a failed run
        row["error"] = f"{stage}: {type(exc).__name__}: {exc}"
    row["wall_s"] = time.perf_counter() - started  # warm-up and every repeat: what the row cost the run
    return row


def measure(codec: Anchor, volume: Volume, repeats: int) -> dict:
    """Encode and decode ``volume`` with ``codec``: best-of-``repeats`` times, size, exactness."""
    array = volume.array
    row = {"volume": volume.name, "codec": codec.name, "voxels": volume.voxels, "bits_stored": volume.bits_stored,
           "ok": False, "error": None, "bytes": None, "bpv": None, "declared_bits": None,
           "encode_s": None, "decode_s": None, "encode_mvox_s": None, "decode_mvox_s": None}

    def exact(decoded):
        if not np.array_equal(decoded, array):
            wrong = int(np.count_nonzero(decoded != array))
            return f"decoded != original at {wrong} of {volume.voxels} voxels"
        return None

    timed_round_trip(codec, volume, repeats, row, exact)
    return row


def measure_in_rounds(codecs: list[Anchor], volume: Volume, rounds: int) -> list[dict]:
    """:func:`measure` every codec once per round, in turn, and keep each codec's best round: a
    slow spell of the machine (this VM's load comes and goes over seconds) then hits every codec
    in the same round alike instead of the one that happened to be running, so the ratios in one
    run stay fair. Sizes and exactness must agree between rounds; a round that fails fails the row."""
    best: dict[str, dict] = {}
    for _ in range(rounds):
        for codec in codecs:
            row = measure(codec, volume, 1)
            old = best.get(codec.name)
            if old is None:
                best[codec.name] = row
                continue
            old["wall_s"] += row["wall_s"]
            if not old["ok"]:
                continue
            if not row["ok"] or row["bytes"] != old["bytes"]:
                old["ok"] = False
                old["error"] = row["error"] or f"round gave {row['bytes']} bytes, an earlier one {old['bytes']}"
                continue
            for stage in ("encode", "decode"):
                if row[f"{stage}_s"] < old[f"{stage}_s"]:
                    old[f"{stage}_s"], old[f"{stage}_mvox_s"] = row[f"{stage}_s"], row[f"{stage}_mvox_s"]
    return [best[c.name] for c in codecs]


def _volume_record(v: Volume) -> dict:
    return {"name": v.name, "modality": v.modality, "kind": v.kind, "shape": list(v.array.shape),
            "dtype": str(v.array.dtype), "bits_stored": v.bits_stored, "signed": v.signed,
            "voxels": v.voxels, "source": v.source, "notes": list(v.notes)}


def loaded_volumes(args, data_root: Path, volumes: list, load_failures: list, log):
    """The volumes to measure, one at a time (a volume is freed before the next loads); records
    each in ``volumes`` and each that fails to load in ``load_failures``."""
    for item in iter_volumes(args.paths, data_root, set(args.kinds)):
        if isinstance(item, LoadFailure):
            load_failures.append(vars(item))
            log(f"{item.name}: not loaded: {item.error}")
            continue
        volumes.append(_volume_record(item))
        log(f"{item.name}: {item.array.shape} {item.array.dtype} bits={item.bits_stored} "
            f"{item.modality} {item.kind}")
        yield item


def run(args: argparse.Namespace, argv_for_record: list[str] | None = None) -> dict:
    started = time.perf_counter()
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    machine = machine_info(argv_for_record)
    multi = max(args.threads) > 1
    if multi:  # what two threads can get on this machine now (see core_probe); again at the end
        machine["core_probe_start"] = core_probe()

    anchors = [] if args.anchors == ["none"] else select_anchors(args.anchors)
    subjects: list[Anchor] = [] if args.no_volcodec else [Volcodec(e, t) for e in args.efforts
                                                           for t in args.threads]
    unavailable = {}
    codecs: list[Anchor] = []
    for codec in anchors + subjects:
        why = codec.available()
        if why:
            unavailable[codec.name] = why
            log(f"skip {codec.name}: {why}")
        else:
            codecs.append(codec)
    if subjects and all(s.name in unavailable for s in subjects):
        raise SystemExit(f"volcodec is not usable ({unavailable[subjects[0].name]}); "
                         "run with --no-volcodec to measure the anchors only")
    if REFERENCE not in [c.name for c in codecs]:
        log(f"note: {REFERENCE} is not run, so no ratios")

    rows, volumes, load_failures = [], [], []
    data_root = _resolve_data(args.data)
    for item in loaded_volumes(args, data_root, volumes, load_failures, log):
        for row in measure_in_rounds(codecs, item, args.repeats):
            rows.append(row)
            if row["ok"]:
                log(f"  {row['codec']:24s} {row['bpv']:7.3f} bpv  enc {row['encode_mvox_s']:8.2f}  "
                    f"dec {row['decode_mvox_s']:8.2f} Mvox/s")
            else:
                log(f"  {row['codec']:24s} FAILED {row['error']}")
        del item

    report.per_volume_ratios(rows)
    names = [c.name for c in codecs]
    try:
        machine["loadavg_end"] = list(os.getloadavg())
    except OSError:  # pragma: no cover - not available on this platform
        pass
    if multi:
        machine["core_probe_end"] = core_probe()
    return {
        "machine": machine,
        "settings": {"repeats": args.repeats, "kinds": args.kinds, "efforts": args.efforts,
                     "data": str(data_root), "paths": [str(p) for p in args.paths],
                     "reference": REFERENCE, "volcodec": not args.no_volcodec},
        "codecs": [c.config() for c in codecs],
        "unavailable": unavailable,
        "volumes": volumes,
        "load_failures": load_failures,
        "rows": rows,
        "aggregates": report.aggregate(rows, volumes, names),
        "run_seconds": time.perf_counter() - started,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    record = None if argv is None else ["benchmarks/compare.py", *argv]
    result = run(args, record)
    md_path, json_path = report.write(result, args.out, args.stem)
    if not args.quiet:
        print(f"wrote {md_path} and {json_path} ({result['run_seconds']:.0f} s)", file=sys.stderr)
    failed = [r for r in result["rows"] if not r["ok"]]
    return 1 if failed or result["load_failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
