"""What the numbers were measured on: CPU, cores, load, library versions, volcodec commit, date."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_DISTRIBUTIONS = ("numpy", "numba", "imagecodecs", "pyjpegls", "pydicom", "zstandard", "blosc2")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10,
                             check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def volcodec_state() -> dict:
    """The commit of the working tree and whether volcodec/ differs from it (results of a dirty tree
    are not reproducible from the commit alone)."""
    commit = _git("rev-parse", "--short=12", "HEAD")
    status = _git("status", "--porcelain", "--", "volcodec")
    # numba's cache files under __pycache__ change on every run and say nothing about the code
    changed = None if status is None else [
        line for line in status.splitlines() if "__pycache__" not in line and line.strip()
    ]
    return {"commit": commit, "volcodec_dirty": bool(changed) if changed is not None else None,
            "volcodec_changes": changed[:20] if changed else []}


def machine_info(argv: list[str] | None = None) -> dict:
    """A JSON-serialisable description of the machine and software, plus the command line."""
    versions = {dist: _version(dist) for dist in _DISTRIBUTIONS}
    try:
        import imagecodecs

        versions["imagecodecs libraries"] = {
            "openjpeg": imagecodecs.jpeg2k_version(),
            "openjph": imagecodecs.htj2k_version() if hasattr(imagecodecs, "htj2k_version") else None,
            "libjxl": imagecodecs.jpegxl_version(),
        }
    except ImportError:  # pragma: no cover - imagecodecs missing
        pass
    try:
        import blosc2

        versions["c-blosc2"] = blosc2.blosclib_version
    except ImportError:  # pragma: no cover
        pass
    try:
        import zstandard

        versions["libzstd"] = ".".join(map(str, zstandard.ZSTD_VERSION))
    except ImportError:  # pragma: no cover
        pass
    try:
        load = os.getloadavg()
    except OSError:  # pragma: no cover
        load = None
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        affinity = None
    command = argv if argv is not None else sys.argv
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": affinity,
        "loadavg_1_5_15": list(load) if load else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "volcodec": volcodec_state(),
        "command": " ".join(["python -m benchmarks." + Path(command[0]).stem] + list(command[1:]))
        if command and command[0].endswith(".py") else " ".join(command),
    }


def _probe_kernels():
    """Two loops of the same length: one bound by the number of instructions (six independent chains
    of ALU work: one thread can fill a core's units), one by latency (one chain of multiplies: a
    core's units sit mostly idle)."""
    import numpy as np

    from volcodec._jit import kernel

    @kernel
    def alu_bound(n):
        a, b, c = np.int64(1), np.int64(2), np.int64(3)
        d, e, f = np.int64(4), np.int64(5), np.int64(6)
        for i in range(n):
            a = (a + i) ^ (b >> 3)
            b = (b + 7) ^ (c << 1)
            c = (c ^ i) + (d >> 2)
            d = (d + 3) ^ (e >> 1)
            e = (e ^ 5) + (f >> 4)
            f = (f + i) ^ (a >> 5)
        return a + b + c + d + e + f

    @kernel
    def latency_bound(n):
        x, y = np.int64(1), np.int64(3)
        for _ in range(n):
            x = (x * 6364136223846793005 + y) & 0xFFFFFFFFFFFF
            y ^= x >> 7
        return x + y

    return alu_bound, latency_bound


def core_probe(n: int = 30_000_000, repeats: int = 3) -> dict:
    """How much faster two threads do twice the work of one, for an instruction-bound and a
    latency-bound loop (best of ``repeats``). Two separate cores give about 2.0 for both; two
    hardware threads of one core (SMT siblings, as a VM's two vCPUs may be on the host) give
    about 2.0 for the latency-bound loop but about 1.0 for the instruction-bound one, whatever the
    guest's topology says. The codec's kernels are mostly instruction-bound, so their two-thread
    speed-up depends on which of the two the machine was when it ran."""
    import threading
    import time

    out = {}
    for fn in _probe_kernels():
        fn(10)  # compile (or load from the cache) outside the timing

        def wall(k):
            threads = [threading.Thread(target=fn, args=(n,)) for _ in range(k)]
            t = time.perf_counter()
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            return time.perf_counter() - t

        one = min(wall(1) for _ in range(repeats))
        two = min(wall(2) for _ in range(repeats))
        out[fn.__name__] = round(2 * one / two, 2)
    return out
