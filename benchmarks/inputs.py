"""Where the benchmark's volumes come from.

Real volumes are read by ``volcodec.volumes`` (``load_volume``, ``iter_dev_volumes``): the benchmark has
no DICOM reader of its own. A ``.npy`` path is also accepted, for quick runs on arrays made elsewhere;
its facts come from a ``.json`` sidecar of the same stem (``bits_stored``, ``modality``, ``kind``) or,
without one, from the array (smallest bit depth that holds it, modality from a ``ct_``/``mr`` name
prefix, kind from the number of dimensions).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .anchors import fits_bits, needed_bits


@dataclass
class Volume:
    """One array and the facts the benchmark needs about it."""

    name: str
    array: np.ndarray
    modality: str  # "CT", "MR", ... as in MANIFEST.tsv
    kind: str  # "3d", "4d" or "interop"
    bits_stored: int  # the bit depth a DICOM encoder would declare
    signed: bool
    source: str
    notes: list[str] = field(default_factory=list)

    @property
    def voxels(self) -> int:
        return int(self.array.size)


@dataclass
class LoadFailure:
    name: str
    source: str
    error: str


def _guess_modality(name: str) -> str:
    lowered = name.lower()
    if lowered.startswith("ct"):
        return "CT"
    if lowered.startswith("mr"):
        return "MR"
    return "unknown"


def _finish(volume: Volume) -> Volume:
    """Check that the values fit the declared Bits Stored; widen (and say so) when they do not."""
    if not fits_bits(volume.array, volume.bits_stored, volume.signed):
        wider = needed_bits(volume.array, volume.signed)
        volume.notes.append(
            f"values do not fit (0028,0101) 'Bits Stored' {volume.bits_stored}: coded at {wider} bits"
        )
        volume.bits_stored = wider
    return volume


def load_npy(path: Path) -> Volume:
    array = np.load(path, allow_pickle=False)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{path}: integer array expected, found dtype {array.dtype}")
    sidecar = path.with_suffix(".json")
    facts = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    signed = array.dtype.kind == "i"
    bits = int(facts.get("bits_stored") or needed_bits(array, signed))
    kind = facts.get("kind") or {3: "3d", 4: "4d"}.get(array.ndim, f"{array.ndim}d")
    return _finish(Volume(
        name=path.stem, array=array, modality=facts.get("modality") or _guess_modality(path.stem),
        kind=kind, bits_stored=bits, signed=signed, source=str(path),
    ))


def _volumes_module():
    from volcodec import volumes  # lazy: the module is written alongside the benchmark

    return volumes


def _field(row, key: str):
    if row is None:
        return None
    return row.get(key) if isinstance(row, dict) else getattr(row, key, None)


def load_path(path: Path, row=None) -> Volume:
    """Load one volume: ``.npy`` directly, anything else through ``volcodec.volumes.load_volume``.

    ``row`` is the MANIFEST.tsv row of a dev volume: its kind is passed on (an interop folder is read
    as copies of one image) and its modality fills in where the file format has none (NIfTI, NRRD).
    """
    if path.suffix == ".npy":
        return load_npy(path)
    kind = _field(row, "kind")
    array, info = _volumes_module().load_volume(path, kind=kind) if kind else \
        _volumes_module().load_volume(path)
    signed = bool(getattr(info, "signed", array.dtype.kind == "i"))
    name = str(getattr(info, "name", None) or path.name)
    return _finish(Volume(
        name=name, array=np.asarray(array),
        modality=str(getattr(info, "modality", None) or _field(row, "modality") or _guess_modality(name)),
        kind=str(getattr(info, "kind", None) or kind or {3: "3d", 4: "4d"}.get(array.ndim, "?")),
        bits_stored=int(getattr(info, "bits_stored", None) or needed_bits(array, signed)),
        signed=signed, source=str(path),
    ))


def iter_volumes(paths: list[Path], data_root: Path, kinds: set[str]) -> Iterator[Volume | LoadFailure]:
    """Yield the volumes named on the command line, or else every dev volume whose kind is in ``kinds``.

    A volume that fails to load becomes a :class:`LoadFailure`, reported in the results, so one bad
    folder does not hide the rest.
    """
    if paths:
        targets = [(p.stem if p.suffix == ".npy" else p.name, p, None) for p in paths]
    else:
        targets = []
        for name, row in _volumes_module().iter_dev_volumes(data_root):
            kind = _field(row, "kind")
            if kinds and kind is not None and kind not in kinds:
                continue
            targets.append((name, Path(_field(row, "path") or data_root / name), row))
    for name, path, row in targets:
        try:
            volume = load_path(path, row)
        except Exception as exc:  # noqa: BLE001 - report the volume, do not stop the run
            yield LoadFailure(name=name, source=str(path), error=f"{type(exc).__name__}: {exc}")
            continue
        if paths or not kinds or volume.kind in kinds:
            yield volume
