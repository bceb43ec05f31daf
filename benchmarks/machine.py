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
