"""Random access, memory and threads on a long volume.

    python -m benchmarks.access [--volume ct_thin_rider] [--slices 500] [--repeats 3] [--out benchmarks/results]

Builds a long CT volume from a dev volume (its slices, then the same slices in reverse order, and
so on, which keeps neighbouring slices neighbours), encodes it at the default effort, then measures:

- ``decode_frames(buf, [k])`` for single slices at the start, middle and end, against decoding the
  whole volume (issue 4: one slice touches only its slab);
- the memory peak of ``decode`` in a fresh process, with tracemalloc (numpy reports its buffers to
  it), divided by the decoded volume's size;
- encode and decode with 1 and 2 threads.

Writes ``access.md`` and ``access.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .machine import machine_info
from .report import machine_lines
from .timing import best_of

_MEMORY_CHILD = r"""
import json, sys, tracemalloc
import numpy as np, volcodec
buf = open(sys.argv[1], "rb").read()
threads = int(sys.argv[2])
volcodec.decode(volcodec.encode(np.zeros((2, 8, 8), np.int16)), threads=threads)  # compile / load
tracemalloc.start()
out = volcodec.decode(buf, threads=threads)
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
print(json.dumps({"decoded_bytes": out.nbytes, "tracemalloc_peak": peak}))
"""


def long_volume(base: np.ndarray, slices: int) -> np.ndarray:
    """``slices`` slices from ``base`` (Z, Y, X): forward, backward, forward... (no jumps)."""
    reps = []
    z = 0
    forward = True
    while z < slices:
        part = base if forward else base[::-1]
        reps.append(part[:slices - z])
        z += len(reps[-1])
        forward = not forward
    return np.ascontiguousarray(np.concatenate(reps))


def memory_peak(buf: bytes, threads: int, tmp: Path) -> dict:
    path = tmp / "access_stream.vlc"
    path.write_bytes(buf)
    try:
        out = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(path), str(threads)],
                             capture_output=True, text=True, check=True)
    finally:
        path.unlink()
    rec = json.loads(out.stdout)
    rec["tracemalloc_ratio"] = rec["tracemalloc_peak"] / rec["decoded_bytes"]
    return rec


def run(volume: np.ndarray, bits: int, repeats: int, tmp: Path, log=print) -> dict:
    import volcodec

    Z = volume.shape[0]
    mvox = volume.size / 1e6
    volcodec.decode(volcodec.encode(volume[:2], bits_stored=bits))  # compile / load outside the timings
    res: dict = {"shape": list(volume.shape), "dtype": str(volume.dtype), "bits_stored": bits,
                 "effort": volcodec.DEFAULT_EFFORT, "slab": volcodec.DEFAULT_SLAB, "threads": {}}
    buf = None
    for threads in (1, 2):
        te, buf = best_of(lambda: volcodec.encode(volume, bits_stored=bits, threads=threads), repeats)
        td, out = best_of(lambda: volcodec.decode(buf, threads=threads), repeats)
        if not np.array_equal(out, volume):
            raise SystemExit("decode is not bit-exact")
        res["threads"][threads] = {"encode_s": te, "decode_s": td, "encode_mvox_s": mvox / te,
                                   "decode_mvox_s": mvox / td}
        log(f"threads {threads}: encode {mvox / te:.1f} Mvox/s, decode {mvox / td:.1f} Mvox/s")
        del out
    res["bytes"] = len(buf)
    res["bpv"] = 8 * len(buf) / volume.size
    whole = res["threads"][1]["decode_s"]
    res["frames"] = []
    for k in (0, Z // 2, Z - 1):
        t, one = best_of(lambda: volcodec.decode_frames(buf, [k], threads=1), repeats)
        if not np.array_equal(one[0], volume[k]):
            raise SystemExit(f"decode_frames([{k}]) is not bit-exact")
        res["frames"].append({"k": k, "seconds": t, "fraction_of_whole": t / whole})
        log(f"decode_frames([{k}]): {t * 1e3:.1f} ms = {t / whole:.4f} of the whole decode")
    res["memory"] = {str(t): memory_peak(buf, t, tmp) for t in (1, 2)}
    for t, m in res["memory"].items():
        log(f"decode memory, {t} thread(s): tracemalloc peak {m['tracemalloc_ratio']:.2f}x the decoded volume")
    return res


def markdown(result: dict) -> str:
    r = result["result"]
    t1, t2 = r["threads"]["1"], r["threads"]["2"]  # JSON keys
    lines = ["# Random access, memory and threads", ""]
    lines += machine_lines(result["machine"])
    lines += [f"- Volume: {result['source']}, {' x '.join(map(str, r['shape']))} {r['dtype']}, "
              f"bits_stored {r['bits_stored']}; effort {r['effort']}, slab {r['slab']}; "
              f"{r['bpv']:.3f} bits/voxel", "", "## Threads", "",
              "| threads | encode Mvox/s | decode Mvox/s |", "|---:|---:|---:|"]
    for n, t in ((1, t1), (2, t2)):
        lines.append(f"| {n} | {t['encode_mvox_s']:.1f} | {t['decode_mvox_s']:.1f} |")
    lines += ["", f"Speed-up with 2 threads: encode {t2['encode_mvox_s'] / t1['encode_mvox_s']:.2f}x, "
              f"decode {t2['decode_mvox_s'] / t1['decode_mvox_s']:.2f}x.", "",
              "## One slice against the whole volume (1 thread)", "",
              "| frame k | decode_frames([k]) ms | ÷ whole decode |", "|---:|---:|---:|"]
    for f in r["frames"]:
        lines.append(f"| {f['k']} | {f['seconds'] * 1e3:.1f} | {f['fraction_of_whole']:.4f} |")
    lines += ["", f"Whole decode: {t1['decode_s']:.2f} s.", "",
              "## Decoder memory peak (fresh process, after compilation)", "",
              "| threads | peak ÷ decoded volume |", "|---:|---:|"]
    for n, m in r["memory"].items():
        lines.append(f"| {n} | {m['tracemalloc_ratio']:.2f} |")
    lines += ["", "tracemalloc counts every buffer numpy allocates during `decode` (the output, the "
              "decoder's frames and scratch), not the stream, which the caller holds.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.access", description=__doc__.split("\n\n")[0])
    p.add_argument("--volume", default="ct_thin_rider", help="dev volume to lengthen (default ct_thin_rider)")
    p.add_argument("--data", type=Path, default=Path("../shared/data/dev"))
    p.add_argument("--slices", type=int, default=500)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = p.parse_args(argv)
    from volcodec.volumes import load_volume

    base, info = load_volume(args.data / args.volume)
    if base.ndim != 3:
        raise SystemExit(f"{args.volume} is not a 3-D volume")
    volume = long_volume(base, args.slices)
    bits = int(getattr(info, "bits_stored", None) or volume.dtype.itemsize * 8)
    machine = machine_info(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    res = run(volume, bits, args.repeats, args.out)
    machine["loadavg_end"] = list(os.getloadavg())
    result = {"machine": machine, "source": f"{args.volume} lengthened to {args.slices} slices "
                                            "(forward, backward, ...)", "result": res}
    (args.out / "access.json").write_text(json.dumps(result, indent=1, default=str))
    (args.out / "access.md").write_text(markdown(json.loads(json.dumps(result, default=str))))
    print(args.out / "access.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
