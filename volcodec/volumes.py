"""Load a volume from whatever a path holds: the one reader the benchmark, the CLI and the tests share.

:func:`load_volume` returns a stored-value integer array, (z, y, x) or (t, z, y, x) with dtype uint8,
int8, uint16 or int16 (no rescale), and a :class:`VolumeInfo`. It dispatches on the path:

- ``*.npy``: a NumPy array (2-D arrays become (1, y, x));
- ``*.nii``, ``*.nii.gz``: NIfTI, via :func:`volcodec.nifti.load_nifti`;
- ``*.nhdr``, ``*.nrrd``: NRRD with raw or gzip encoding, detached data files (one name, a
  ``<format> <min> <max> <step>`` pattern or a LIST) or attached data;
- a folder holding exactly one of the above files: that file (sidecars such as JSON are ignored);
- any other file or folder: DICOM, via :func:`volcodec.dicom.series.read_series` (classic, enhanced
  or mosaic series, or an interop folder: one image stored several times).

``kind="interop"`` reads a DICOM folder as copies of one image, (1, y, x), even when detection would
see a mosaic; ``kind="3d"``/``"4d"`` checks the result. :func:`iter_dev_volumes` walks a data root with a
``MANIFEST.tsv`` (see /work/shared/data/README.md) for benchmarks and tests.
"""

from __future__ import annotations

import csv
import gzip
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .dicom.series import SeriesInfo
from .errors import InputFileError

KINDS = ("3d", "4d", "interop")
#: dtypes the codec takes; anything else is refused rather than converted.
VOLUME_DTYPES = ("uint8", "int8", "uint16", "int16")

_NIFTI_SUFFIXES = (".nii", ".nii.gz")
_NRRD_SUFFIXES = (".nhdr", ".nrrd")
_VOLUME_FILE_SUFFIXES = (".npy",) + _NIFTI_SUFFIXES + _NRRD_SUFFIXES


@dataclass(frozen=True)
class VolumeInfo:
    """What a volume is and where it came from.

    ``kind`` is '3d', '4d' or 'interop'; ``modality`` the DICOM Modality ('' when the format does not
    say: NIfTI, NRRD, .npy); ``bits_stored`` the significant bits (DICOM Bits Stored, otherwise the
    dtype's width); ``files`` the source files in reading order; ``spacing`` (z, y, x) in mm when known;
    ``dicom`` the series metadata (per-frame file, frame, SOP Instance UID, position) for DICOM input.
    """

    name: str
    kind: str
    modality: str
    bits_stored: int
    signed: bool
    files: tuple[str, ...]
    format: str
    spacing: tuple[float, float, float] | None = None
    dicom: SeriesInfo | None = field(default=None, repr=False)


def load_volume(path: str | os.PathLike, kind: str | None = None) -> tuple[np.ndarray, VolumeInfo]:
    """Read the volume at ``path`` (file or folder); see the module docstring for what is recognised."""
    if kind is not None and kind not in KINDS:
        raise InputFileError(f"unknown volume kind {kind!r}; expected one of {', '.join(KINDS)}")
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path} does not exist")
    name = _volume_name(path)
    target = path
    if path.is_dir():
        inside = sorted(
            p
            for p in path.iterdir()
            if p.is_file() and not p.name.startswith(".") and _suffix(p) in _VOLUME_FILE_SUFFIXES
        )
        if len(inside) > 1:
            raise InputFileError(
                f"{path} holds {len(inside)} volume files ({inside[0].name}, {inside[1].name}, ...)"
            )
        if inside:
            target = inside[0]
    suffix = _suffix(target) if target.is_file() else ""
    if kind == "interop" and suffix in _VOLUME_FILE_SUFFIXES:
        raise InputFileError(f"{target}: interop volumes are DICOM images, not {suffix} files")
    if suffix == ".npy":
        volume, info = _load_npy(target, name)
    elif suffix in _NIFTI_SUFFIXES:
        volume, info = _load_nifti(target, name)
    elif suffix in _NRRD_SUFFIXES:
        volume, info = _load_nrrd(target, name)
    else:
        volume, info = _load_dicom(path, name, kind)
    _check_volume(volume, target)
    if kind is not None and info.kind != kind:
        raise InputFileError(f"{path} holds a {info.kind} volume of shape {volume.shape}, not {kind}")
    return volume, info


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _volume_name(path: Path) -> str:
    if path.is_dir():
        return path.resolve().name
    suffix = _suffix(path)
    return path.name[: -len(suffix)] if suffix in _VOLUME_FILE_SUFFIXES + (".dcm",) else path.name


def _kind(volume: np.ndarray) -> str:
    return "4d" if volume.ndim == 4 else "3d"


def _check_volume(volume: np.ndarray, path: Path) -> None:
    if volume.dtype.name not in VOLUME_DTYPES:
        raise InputFileError(
            f"{path} holds {volume.dtype.name} voxels; volumes are {', '.join(VOLUME_DTYPES)}"
        )
    if volume.ndim not in (3, 4) or 0 in volume.shape:
        raise InputFileError(
            f"{path} holds an array of shape {volume.shape}; volumes are (z,y,x) or (t,z,y,x)"
        )


def _width(dtype: np.dtype) -> int:
    return dtype.itemsize * 8


def _plain_info(volume: np.ndarray, name: str, files: tuple[str, ...], fmt: str,
                spacing=None) -> VolumeInfo:
    """VolumeInfo of a format without DICOM metadata: every bit of the dtype counts as stored."""
    return VolumeInfo(
        name=name,
        kind=_kind(volume),
        modality="",
        bits_stored=_width(volume.dtype),
        signed=volume.dtype.kind == "i",
        files=files,
        format=fmt,
        spacing=spacing,
    )


def _load_npy(path: Path, name: str) -> tuple[np.ndarray, VolumeInfo]:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputFileError(f"{path} is not a readable .npy file: {exc}") from None
    if not isinstance(array, np.ndarray):
        raise InputFileError(f"{path} holds {type(array).__name__}, not one array")
    if array.dtype.kind not in "iu":
        raise InputFileError(f"{path} holds {array.dtype} values; volumes are {', '.join(VOLUME_DTYPES)}")
    array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
    if array.ndim == 2:
        array = array[np.newaxis]
    return array, _plain_info(array, name, (str(path),), "npy")


def _load_nifti(path: Path, name: str) -> tuple[np.ndarray, VolumeInfo]:
    from .nifti import load_nifti

    volume, meta = load_nifti(path)
    return volume, _plain_info(volume, name, (str(path),), "nifti", meta.spacing)


def _load_dicom(path: Path, name: str, kind: str | None) -> tuple[np.ndarray, VolumeInfo]:
    from .dicom.series import read_series

    volume, series = read_series(path, layout="interop" if kind == "interop" else None)
    spacing = None
    z = series.slice_spacing if series.slice_spacing is not None else series.slice_thickness
    if series.pixel_spacing is not None and z is not None:
        spacing = (z, series.pixel_spacing[0], series.pixel_spacing[1])
    info = VolumeInfo(
        name=name,
        kind="interop" if series.layout == "interop" else _kind(volume),
        modality=series.modality,
        bits_stored=series.bits_stored,
        signed=series.signed,
        files=series.files,
        format="dicom",
        spacing=spacing,
        dicom=series,
    )
    return volume, info


# --- NRRD ----------------------------------------------------------------------------------------

#: NRRD type names (spec: teem.sourceforge.net/nrrd/format.html#type) and their NumPy type.
_NRRD_TYPES = {
    **dict.fromkeys(("signed char", "int8", "int8_t"), "i1"),
    **dict.fromkeys(("uchar", "unsigned char", "uint8", "uint8_t"), "u1"),
    **dict.fromkeys(("short", "short int", "signed short", "signed short int", "int16", "int16_t"), "i2"),
    **dict.fromkeys(
        ("ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"),
        "u2",
    ),
    **dict.fromkeys(("int", "signed int", "int32", "int32_t"), "i4"),
    **dict.fromkeys(("uint", "unsigned int", "uint32", "uint32_t"), "u4"),
    **dict.fromkeys(
        (
            "longlong",
            "long long",
            "long long int",
            "signed long long",
            "signed long long int",
            "int64",
            "int64_t",
        ),
        "i8",
    ),
    **dict.fromkeys(
        ("ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t"),
        "u8",
    ),
    "float": "f4",
    "double": "f8",
}
_NRRD_MAX_HEADER = 1 << 20  # bytes; real headers are a few hundred
_NRRD_MAX_FILES = 1 << 16
_NRRD_MAX_VOXELS = 1 << 32  # refuse before allocating; gzip data cannot be sized beforehand


@dataclass(frozen=True)
class _NrrdHeader:
    path: Path
    dtype: np.dtype
    sizes: tuple[int, ...]  # fastest axis first, as in the file
    encoding: str
    data_files: tuple[Path, ...]  # empty: data attached after the header
    data_offset: int  # attached data: where it starts
    line_skip: int
    byte_skip: int
    spacing: tuple[float, ...] | None  # per axis, fastest first


def _load_nrrd(path: Path, name: str) -> tuple[np.ndarray, VolumeInfo]:
    header = _read_nrrd_header(path)
    if header.dtype.newbyteorder("=").name not in VOLUME_DTYPES:
        raise InputFileError(
            f"{path} holds {header.dtype.name} samples; volumes are {', '.join(VOLUME_DTYPES)}"
        )
    if np.prod(header.sizes, dtype=object) > _NRRD_MAX_VOXELS:
        raise InputFileError(f"{path}: NRRD sizes {header.sizes} exceed {_NRRD_MAX_VOXELS} voxels")
    volume = _read_nrrd_data(header)
    spacing = None
    if header.spacing is not None and len(header.spacing) >= 3:
        x, y, z = header.spacing[:3]
        spacing = (z, y, x)
    files = (str(path),) + tuple(str(p) for p in header.data_files)
    return volume, _plain_info(volume, name, files, "nrrd", spacing)


def _read_nrrd_header(path: Path) -> _NrrdHeader:
    """Parse and check a whole NRRD header (fields, sizes, data files) before any data is read."""
    with open(path, "rb") as fh:
        head = fh.read(_NRRD_MAX_HEADER + 1)
    if not head.startswith(b"NRRD000"):
        raise InputFileError(f"{path} is not an NRRD file (no 'NRRD000x' magic)")
    fields: dict[str, str] = {}
    list_files: list[str] | None = None  # the names after 'data file: LIST'
    lines = head.splitlines(keepends=True)
    offset = len(lines[0])
    for raw in lines[1:]:
        offset += len(raw)
        line = raw.decode("latin-1").rstrip("\r\n")
        if not line:
            break  # a blank line ends the header; attached data follow it
        if list_files is not None:
            list_files.append(line.strip())
            continue
        if line.startswith("#"):
            continue
        colon = line.find(":")
        if colon < 0:
            raise InputFileError(f"{path}: NRRD header line {line!r} is not 'field: value'")
        if line[colon : colon + 2] == ":=":
            continue  # key/value pair: free-form, not needed here
        key, value = " ".join(line[:colon].lower().split()), line[colon + 1 :].strip()
        fields[key] = value
        if key in ("data file", "datafile") and value.split()[:1] == ["LIST"]:
            list_files = []
    else:
        if len(head) > _NRRD_MAX_HEADER:
            raise InputFileError(f"{path}: NRRD header longer than {_NRRD_MAX_HEADER} bytes")
    detached_file = path.suffix.lower() == ".nhdr"

    def need(key: str) -> str:
        if key not in fields:
            raise InputFileError(f"{path}: NRRD field '{key}' missing")
        return fields[key]

    type_name = " ".join(need("type").lower().split())
    if type_name not in _NRRD_TYPES:
        raise InputFileError(f"{path}: NRRD type '{type_name}' is not a known type")
    dtype = np.dtype(_NRRD_TYPES[type_name])
    if dtype.itemsize > 1:
        endian = need("endian").lower()
        if endian not in ("little", "big"):
            raise InputFileError(f"{path}: NRRD endian '{endian}' is neither little nor big")
        dtype = dtype.newbyteorder("<" if endian == "little" else ">")
    try:
        dimension = int(need("dimension"))
        sizes = tuple(int(v) for v in need("sizes").split())
    except ValueError:
        raise InputFileError(f"{path}: NRRD 'dimension' or 'sizes' is not made of integers") from None
    if not 2 <= dimension <= 4 or len(sizes) != dimension or min(sizes) < 1:
        raise InputFileError(
            f"{path}: NRRD dimension {dimension} with sizes {sizes}; volumes have 2 to 4 axes"
        )
    encoding = need("encoding").lower()
    encoding = {"gz": "gzip"}.get(encoding, encoding)
    if encoding not in ("raw", "gzip"):
        raise InputFileError(f"{path}: NRRD encoding '{encoding}' is not supported (raw and gzip are)")
    line_skip, byte_skip = _nrrd_int(fields, "line skip", path), _nrrd_int(fields, "byte skip", path)
    if encoding != "raw" and (line_skip or byte_skip):
        raise InputFileError(f"{path}: NRRD 'line skip'/'byte skip' are only supported with raw encoding")
    if line_skip < 0 or byte_skip < -1:
        raise InputFileError(f"{path}: NRRD line skip {line_skip} / byte skip {byte_skip} out of range")
    data_files: tuple[Path, ...] = ()
    spec = fields.get("data file", fields.get("datafile"))
    if spec is not None:
        data_files = _nrrd_data_files(path, spec, list_files, sizes)
    elif detached_file:
        raise InputFileError(f"{path}: detached NRRD header without a 'data file' field")
    return _NrrdHeader(
        path=path,
        dtype=dtype,
        sizes=sizes,
        encoding=encoding,
        data_files=data_files,
        data_offset=offset,
        line_skip=line_skip,
        byte_skip=byte_skip,
        spacing=_nrrd_spacing(fields, dimension, path),
    )


def _nrrd_int(fields: dict, key: str, path: Path) -> int:
    try:
        return int(fields.get(key, "0"))
    except ValueError:
        raise InputFileError(f"{path}: NRRD field '{key}' is {fields[key]!r}, not an integer") from None


def _nrrd_data_files(
    path: Path, spec: str, list_files: list[str] | None, sizes: tuple[int, ...]
) -> tuple[Path, ...]:
    """The data files a 'data file:' field names, in order (relative names are beside the header)."""
    words = spec.split()
    if list_files is not None:
        names = list_files
    elif len(words) >= 4:  # <format> <min> <max> <step> [<subdim>]
        pattern = words[0]
        try:
            first, last, step = (int(w) for w in words[1:4])
        except ValueError:
            raise InputFileError(f"{path}: NRRD 'data file: {spec}' has non-integer min/max/step") from None
        if step == 0 or (last - first) * step < 0:
            raise InputFileError(f"{path}: NRRD 'data file: {spec}' does not step from {first} to {last}")
        count = (last - first) // step + 1
        if count > _NRRD_MAX_FILES:
            raise InputFileError(
                f"{path}: NRRD 'data file: {spec}' names {count} files (limit {_NRRD_MAX_FILES})"
            )
        try:
            names = [pattern % n for n in range(first, last + (1 if step > 0 else -1), step)]
        except (TypeError, ValueError):
            raise InputFileError(
                f"{path}: NRRD data file pattern {pattern!r} is not a printf integer format"
            ) from None
    elif len(words) == 1:
        names = words
    else:
        raise InputFileError(f"{path}: NRRD 'data file: {spec}' is neither a name, a pattern nor LIST")
    if not names:
        raise InputFileError(f"{path}: NRRD 'data file' names no files")
    total = int(np.prod(sizes, dtype=object))
    if total % len(names):
        raise InputFileError(f"{path}: {total} samples do not split evenly over {len(names)} data files")
    files = tuple(p if p.is_absolute() else path.parent / p for p in map(Path, names))
    for p in files:
        if not p.is_file():
            raise InputFileError(f"{path}: NRRD data file {p} does not exist")
    return files


def _nrrd_spacing(fields: dict, dimension: int, path: Path) -> tuple[float, ...] | None:
    if "spacings" in fields:
        try:
            values = tuple(float(v) for v in fields["spacings"].split())
        except ValueError:
            raise InputFileError(f"{path}: NRRD 'spacings' {fields['spacings']!r} are not numbers") from None
        return values if len(values) == dimension else None
    if "space directions" in fields:  # one vector per axis, or 'none' for non-spatial axes
        norms = []
        for word in fields["space directions"].split(")"):
            word = word.strip().lstrip("(").strip()
            if not word:
                continue
            if word.lower() == "none":
                norms.append(float("nan"))
                continue
            try:
                norms.append(float(np.linalg.norm([float(v) for v in word.lstrip("(").split(",")])))
            except ValueError:
                return None
        return tuple(norms) if len(norms) == dimension else None
    return None


def _read_nrrd_data(header: _NrrdHeader) -> np.ndarray:
    """Read the samples (checking every file's size first) and return them as (z,y,x) or (t,z,y,x)."""
    total = int(np.prod(header.sizes, dtype=object))
    sources = header.data_files or (header.path,)
    per_file = total // len(sources) * header.dtype.itemsize
    if header.encoding == "raw":
        # Without skips the data must fill each file exactly: a wrong type or size in the header shows.
        exact = header.line_skip == 0 and header.byte_skip != -1
        for p in sources:
            start = header.data_offset if not header.data_files else 0
            available = os.path.getsize(p) - start - max(header.byte_skip, 0)
            if available < per_file or (exact and available != per_file):
                raise InputFileError(
                    f"{p} holds {available} data bytes, expected {per_file} ({header.path} says sizes "
                    f"{' '.join(map(str, header.sizes))} of {header.dtype.name})"
                )
    out = np.empty(total * header.dtype.itemsize, np.uint8)
    for i, p in enumerate(sources):
        out[i * per_file : (i + 1) * per_file] = np.frombuffer(
            _nrrd_file_bytes(header, p, per_file), np.uint8
        )
    shape = header.sizes[::-1]
    volume = out.view(header.dtype).reshape(shape).astype(header.dtype.newbyteorder("="), copy=False)
    return volume[np.newaxis] if volume.ndim == 2 else volume


def _nrrd_file_bytes(header: _NrrdHeader, p: Path, n: int) -> bytes:
    with open(p, "rb") as fh:
        if not header.data_files:
            fh.seek(header.data_offset)
        for _ in range(header.line_skip):
            fh.readline()
        if header.encoding == "raw":
            if header.byte_skip == -1:  # the data are the last n bytes
                fh.seek(-n, os.SEEK_END)
            else:
                fh.seek(header.byte_skip, os.SEEK_CUR)
            data = fh.read(n)
        else:
            try:
                with gzip.GzipFile(fileobj=fh) as stream:
                    data = stream.read(n + 1)  # bounded: never inflate more than the header promises
            except (OSError, EOFError, zlib.error) as exc:
                raise InputFileError(f"{p}: gzip data cannot be read: {exc}") from None
    if len(data) != n:
        raise InputFileError(f"{p} holds {len(data)} data bytes, expected {n} ({header.path})")
    return data


# --- the dev data set ----------------------------------------------------------------------------

_MANIFEST_COLUMNS = (
    "name",
    "modality",
    "kind",
    "files",
    "shape",
    "dtype",
    "bits_stored",
    "pixel_representation",
    "transfer_syntaxes",
    "slice_thickness_mm",
    "source",
    "licence",
)


@dataclass(frozen=True)
class ManifestRow:
    """One line of MANIFEST.tsv, parsed; ``garbage_high_bits`` is the '(high bits set)' remark."""

    name: str
    path: Path
    modality: str
    kind: str
    files: int
    shape: tuple[int, ...]
    dtype: str
    bits_stored: int
    garbage_high_bits: bool
    pixel_representation: int
    transfer_syntaxes: tuple[str, ...]
    slice_thickness_mm: float | None
    source: str
    licence: str
    columns: dict = field(repr=False, compare=False)  # every column as written, for new ones

    def load(self) -> tuple[np.ndarray, VolumeInfo]:
        """``load_volume(self.path, kind=self.kind)``."""
        return load_volume(self.path, kind=self.kind)


def find_manifest(root: str | os.PathLike) -> Path:
    """MANIFEST.tsv in ``root`` or in its parent (as in /work/shared/data: dev/ beside MANIFEST.tsv)."""
    root = Path(root)
    for candidate in (root / "MANIFEST.tsv", root.parent / "MANIFEST.tsv"):
        if candidate.is_file():
            return candidate
    raise InputFileError(f"no MANIFEST.tsv in {root} or {root.parent}")


def iter_dev_volumes(root: str | os.PathLike) -> Iterator[tuple[str, ManifestRow]]:
    """Yield (name, row) for every volume MANIFEST.tsv lists, in its order; each folder must exist."""
    root = Path(root)
    manifest = find_manifest(root)
    with open(manifest, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        missing = [c for c in _MANIFEST_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise InputFileError(f"{manifest} lacks the column(s) {', '.join(missing)}")
        rows = list(reader)
    for number, columns in enumerate(rows, start=2):
        row = _manifest_row(columns, root, f"{manifest} line {number}")
        if not row.path.exists():
            raise InputFileError(f"{manifest} lists {row.name}, but {row.path} does not exist")
        yield row.name, row


def _manifest_row(columns: dict, root: Path, where: str) -> ManifestRow:
    try:
        bits = columns["bits_stored"].split()
        thickness = columns["slice_thickness_mm"].strip()
        return ManifestRow(
            name=columns["name"],
            path=root / columns["name"],
            modality=columns["modality"],
            kind=columns["kind"],
            files=int(columns["files"]),
            shape=tuple(int(n) for n in columns["shape"].split(",")),
            dtype=columns["dtype"],
            bits_stored=int(bits[0]),
            garbage_high_bits="high bits" in columns["bits_stored"],
            pixel_representation=int(columns["pixel_representation"]),
            transfer_syntaxes=tuple(s.strip() for s in columns["transfer_syntaxes"].split(";") if s.strip()),
            slice_thickness_mm=float(thickness) if thickness else None,
            source=columns["source"],
            licence=columns["licence"],
            columns=dict(columns),
        )
    except (ValueError, IndexError, AttributeError) as exc:
        raise InputFileError(f"{where}: cannot parse {columns}: {exc}") from None
