"""First-call latency of volcodec: import + first encode/decode, cold and warm JIT cache.

    python -m benchmarks.latency [--shape 8,64,64] [--dtype uint16] [--bits 12] [--effort 1]
                                 [--cold-runs 1] [--warm-runs 3] [--repeats 5] [--out benchmarks/results]

Each measurement runs in a fresh Python process (``sys.executable``), timed from inside the child:

- cold: ``NUMBA_CACHE_DIR`` points at a new empty folder, so every kernel is compiled;
- warm: the same folder again, now filled by the cold run, so kernels load from the cache;
- steady: in the warm processes, the best of ``--repeats`` further encode+decode calls;
- baseline: a process that imports only numpy and numba, the floor no pure-numba package goes under.

The volume is synthetic (smooth field plus noise, fixed seed) so the numbers do not depend on data.
Results go to ``latency.md`` and ``latency.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _child(spec: dict) -> dict:
    """Runs inside the fresh process: import, first call, steady state."""
    start = time.perf_counter()
    if spec["mode"] == "baseline":
        import numba  # noqa: F401
        import numpy  # noqa: F401

        return {"import_s": time.perf_counter() - start}
    import volcodec

    imported = time.perf_counter()
    import numpy as np

    rng = np.random.default_rng(1234)
    shape = tuple(spec["shape"])
    grid = np.indices(shape[-2:]).sum(axis=0)
    base = (np.sin(grid / 9.0) + 1.0) * (1 << (spec["bits"] - 3))
    volume = base + rng.integers(0, 16, size=shape)
    if spec["dtype"].startswith("int"):
        volume = volume - (1 << (spec["bits"] - 2))
    volume = volume.astype(spec["dtype"])
    made = time.perf_counter()
    buf = volcodec.encode(volume, bits_stored=spec["bits"], effort=spec["effort"])
    out = volcodec.decode(buf)
    first = time.perf_counter() - made
    if out.dtype != volume.dtype or not np.array_equal(out, volume):
        raise SystemExit("volcodec round trip is not bit-exact on the latency volume")
    steady = float("inf")
    for _ in range(spec["repeats"]):
        t = time.perf_counter()
        volcodec.decode(volcodec.encode(volume, bits_stored=spec["bits"], effort=spec["effort"]))
        steady = min(steady, time.perf_counter() - t)
    return {"import_s": imported - start, "first_call_s": first, "steady_call_s": steady,
            "stream_bytes": len(buf), "voxels": int(volume.size)}


def _spawn(spec: dict, cache_dir: str | None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.latency", "--child", json.dumps(spec)],
                          cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"child process failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = wall
    return result


def _markdown(result: dict) -> str:
    from .report import machine_lines

    s = result["settings"]
    lines = ["# volcodec first-call latency", ""]
    lines += machine_lines(result["machine"])
    lines += [
        (f"- Volume: synthetic {'×'.join(map(str, s['shape']))} {s['dtype']}, {s['bits']} bits, "
         f"effort {s['effort']}; each row a fresh process; steady = best of {s['repeats']} calls."),
        "",
        "| case | process wall s | import volcodec s | first encode+decode s | steady encode+decode s |",
        "|---|---:|---:|---:|---:|",
    ]

    def fmt(x):
        return "" if x is None else f"{x:.3f}"

    for row in result["runs"]:
        lines.append(f"| {row['case']} | {fmt(row.get('process_wall_s'))} | {fmt(row.get('import_s'))} | "
                     f"{fmt(row.get('first_call_s'))} | {fmt(row.get('steady_call_s'))} |")
    lines += ["", "The baseline row imports only numpy and numba (its import column is that time)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__.split("\n\n")[0])
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--shape", default="8,64,64", help="volume shape, comma-separated (default 8,64,64)")
    p.add_argument("--dtype", default="uint16", choices=["uint8", "uint16", "int16"])
    p.add_argument("--bits", type=int, default=12, help="Bits Stored of the synthetic volume (default 12)")
    p.add_argument("--effort", type=int, default=1, help="default 1, the codec's default (the fast scan)")
    p.add_argument("--cold-runs", type=int, default=1, help="cold processes, each with a new cache dir")
    p.add_argument("--warm-runs", type=int, default=3, help="warm processes after the first cold one")
    p.add_argument("--repeats", type=int, default=5, help="steady-state calls per warm process")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--stem", default="latency")
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return 0

    from . import machine

    spec = {"shape": [int(x) for x in args.shape.split(",")], "dtype": args.dtype, "bits": args.bits,
            "effort": args.effort, "repeats": args.repeats}
    runs = [dict(case="baseline: import numpy + numba", **_spawn({"mode": "baseline"}, None))]
    caches = []
    try:
        for k in range(max(1, args.cold_runs)):
            caches.append(tempfile.mkdtemp(prefix="volcodec-numba-cold-"))
            runs.append(dict(case=f"cold cache (run {k + 1})", **_spawn(dict(spec, mode="volcodec"), caches[-1])))
            print(f"{runs[-1]['case']}: {runs[-1]['first_call_s']:.2f} s first call", file=sys.stderr)
        for k in range(args.warm_runs):
            runs.append(dict(case=f"warm cache (run {k + 1})", **_spawn(dict(spec, mode="volcodec"), caches[0])))
            print(f"{runs[-1]['case']}: {runs[-1]['first_call_s']:.3f} s first call", file=sys.stderr)
    finally:
        for folder in caches:
            shutil.rmtree(folder, ignore_errors=True)
    result = {"machine": machine.machine_info(None if argv is None else ["benchmarks/latency.py", *argv]),
              "settings": {k: v for k, v in spec.items()}, "runs": runs}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / f"{args.stem}.md").write_text(_markdown(result))
    print(_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
