"""Read a DICOM series (a folder, a file or a list of files) into a stored-value integer volume.

Layouts, detected from the headers by :func:`read_series`:

``classic``
    single-frame files, one slice each (CT/MR Image Storage).
``enhanced``
    multi-frame files; each frame's position and orientation come from its Per-frame or the Shared
    Functional Groups (PlanePositionSequence, PlaneOrientationSequence).
``mosaic``
    Siemens mosaic: one file per time point, NumberOfImagesInMosaic tiles (CSA image header) laid out
    row by row in one frame.
``interop``
    one image stored several times (e.g. with different transfer syntaxes): every file is decoded and
    must equal the others bit for bit; the volume is (1, y, x). Detected when several single-frame files
    share one position and use more than one transfer syntax, or asked for with ``layout="interop"``.

Ordering (classic and enhanced, per frame): the position projected on the slice normal (row cosine x
column cosine), ascending. Frames whose projections agree within ``SAME_POSITION_MM`` share a position;
distinct positions must be more than ``MIN_SLICE_STEP_MM`` apart. When every position holds the same
number T > 1 of frames the volume is 4D (t, z, y, x) and the frames at one position are ordered by
(TemporalPositionIdentifier, or the frame's TemporalPositionIndex; InstanceNumber; frame number).

Values are stored values: no rescale (Modality LUT). pydicom masks the bits above Bits Stored and sign-
extends signed data, so the arrays hold exactly the values the image defines. The dtype follows Bits
Allocated (8 or 16) and Pixel Representation.

pydicom (and nibabel, for the CSA header) are imported inside the functions.
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputFileError

#: Projections (mm) closer than this are the same slice position (4D series repeat positions exactly;
#: this only absorbs rounding in the decimal strings).
SAME_POSITION_MM = 1e-4
#: Distinct slice positions must be further apart than this (mm); closer is an error, not a slice.
MIN_SLICE_STEP_MM = 1e-3
#: Largest difference between direction cosines that still counts as the same orientation.
ORIENTATION_TOLERANCE = 1e-4
#: Elements larger than this stay on disk until used (pixel data is decoded one file at a time).
DEFER_SIZE = "64 KB"

LAYOUTS = ("classic", "enhanced", "mosaic", "interop")

_UNCOMPRESSED = (
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian
)


@dataclass(frozen=True)
class FrameRef:
    """Where one frame of the volume comes from.

    ``frame`` is the 0-based frame number inside ``path`` (0 for single-frame files; the tile number,
    in mosaic order, for a Siemens mosaic). ``position`` is ImagePositionPatient of the file or the
    frame's PlanePositionSequence (for a mosaic tile: the position of the whole mosaic, as stored), and
    ``location`` its projection on the slice normal (None for mosaic tiles and unpositioned frames).
    """

    path: str
    frame: int
    sop_instance_uid: str
    instance_number: int | None
    position: tuple[float, float, float] | None
    location: float | None


@dataclass(frozen=True)
class SeriesInfo:
    """What :func:`read_series` learnt from the headers.

    ``frames`` holds one :class:`FrameRef` per frame of the volume, frame k = t * Z + z (C order over
    ``shape[:-2]``); for the ``interop`` layout it holds one entry per file, all copies of frame 0.
    ``files`` lists the distinct files in the order their frames first appear. ``slice_spacing`` is
    the median step between positions (mm), or Spacing Between Slices when there is a single position.
    """

    layout: str
    shape: tuple[int, ...]
    dtype: str
    bits_allocated: int
    bits_stored: int
    high_bit: int
    pixel_representation: int
    photometric_interpretation: str
    modality: str
    sop_class_uid: str
    series_instance_uid: str
    transfer_syntaxes: tuple[str, ...]
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    slice_spacing: float | None
    slice_thickness: float | None
    files: tuple[str, ...]
    frames: tuple[FrameRef, ...] = field(repr=False)

    @property
    def signed(self) -> bool:
        return self.pixel_representation == 1


def element_name(keyword: str) -> str:
    """``(0028,0010) 'Rows'``: the way messages name a DICOM element."""
    from pydicom.datadict import dictionary_description, tag_for_keyword

    tag = tag_for_keyword(keyword)
    if tag is None:
        return repr(keyword)
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X}) '{dictionary_description(tag)}'"


def list_dicom_files(folder: str | os.PathLike) -> list[Path]:
    """The files of ``folder`` that may hold images: sorted, without hidden files and DICOMDIR."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(f"{folder} is not a folder")
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.name != "DICOMDIR"
    )
    if not files:
        raise InputFileError(f"{folder} holds no files")
    return files


def read_series(
    source: str | os.PathLike | Iterable[str | os.PathLike], layout: str | None = None
) -> tuple[np.ndarray, SeriesInfo]:
    """Read a DICOM folder, file or list of files into a (z,y,x) or (t,z,y,x) stored-value array.

    ``layout`` (one of :data:`LAYOUTS`) overrides the detection; the files must then fit it. Raises
    :class:`~volcodec.errors.InputFileError` naming the file and the element when the files do not
    form one volume.
    """
    if layout is not None and layout not in LAYOUTS:
        raise InputFileError(f"unknown DICOM layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    paths = _paths(source)
    files = [_read_header(p) for p in paths]
    found = _detect_layout(files)
    if layout is None:
        layout = found
    elif layout != found and not (layout == "interop" and found in ("classic", "mosaic")):
        raise InputFileError(f"{_where(paths)} holds a {found} DICOM series, not {layout}")
    if layout == "interop":
        return _read_interop(files)
    common = _common_attributes(files)
    if layout == "mosaic":
        return _read_mosaic(files, common)
    return _read_positioned(files, common, layout)


# --- headers -------------------------------------------------------------------------------------


@dataclass
class _File:
    path: str
    ds: object  # pydicom Dataset with large elements deferred; dropped once its pixels are decoded
    transfer_syntax: str
    sop_instance_uid: str
    instance_number: int | None
    n_frames: int
    multiframe: bool
    mosaic: bool
    mosaic_n: int = 0  # tiles in the mosaic (CSA NumberOfImagesInMosaic), once checked
    mosaic_grid: int = 0  # tiles per mosaic row and column
    csa: dict | None = field(default=None, repr=False)  # parsed CSA image header, once read


def _paths(source) -> list[str]:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            return [str(p) for p in list_dicom_files(path)]
        if not path.is_file():
            raise InputFileError(f"{path} does not exist")
        return [str(path)]
    paths = [str(p) for p in source]
    if not paths:
        raise InputFileError("no DICOM files given")
    return paths


def _where(paths: list[str]) -> str:
    return paths[0] if len(paths) == 1 else str(Path(paths[0]).parent)


def _read_header(path: str) -> _File:
    import pydicom

    try:
        ds = pydicom.dcmread(path, defer_size=DEFER_SIZE)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on malformed bytes
        raise InputFileError(f"{path} is not a readable DICOM file: {exc}") from None
    if "PixelData" not in ds:
        raise InputFileError(f"{element_name('PixelData')} missing in {path}")
    meta = getattr(ds, "file_meta", None)
    transfer_syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    n_frames = _int(ds, "NumberOfFrames", path, default=1)
    if n_frames < 1:
        raise InputFileError(f"{element_name('NumberOfFrames')} is {n_frames} in {path}")
    multiframe = n_frames > 1 or "PerFrameFunctionalGroupsSequence" in ds
    image_type = [str(v).upper() for v in _as_list(ds.get("ImageType"))]
    return _File(
        path=path,
        ds=ds,
        transfer_syntax=transfer_syntax,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        instance_number=_int(ds, "InstanceNumber", path, default=None),
        n_frames=n_frames,
        multiframe=multiframe,
        mosaic=not multiframe and "MOSAIC" in image_type,
    )


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)


_REQUIRED = object()


def _int(ds, keyword: str, path: str, default=_REQUIRED):
    value = ds.get(keyword)
    if value is None or value == "":
        if default is _REQUIRED:
            raise InputFileError(f"{element_name(keyword)} missing in {path}")
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InputFileError(f"{element_name(keyword)} is {value!r}, not an integer, in {path}") from None


def _floats(value, n: int, keyword: str, path: str) -> tuple[float, ...] | None:
    if value is None or value == "":
        return None
    try:
        numbers = tuple(float(v) for v in _as_list(value))
    except (TypeError, ValueError):
        raise InputFileError(f"{element_name(keyword)} is {value!r}, not {n} numbers, in {path}") from None
    if len(numbers) != n or not all(math.isfinite(v) for v in numbers):
        raise InputFileError(f"{element_name(keyword)} is {value!r}, not {n} finite numbers, in {path}")
    return numbers


def _differs(keyword: str, expected, found, path: str) -> InputFileError:
    return InputFileError(f"{element_name(keyword)} differs: expected {expected}, found {found} in {path}")


def _detect_layout(files: list[_File]) -> str:
    n_multi = sum(f.multiframe for f in files)
    if n_multi:
        if n_multi != len(files):
            odd = next(f for f in files if f.multiframe != files[0].multiframe)
            raise InputFileError(
                f"{odd.path} mixes multi-frame and single-frame files with {files[0].path} in one series"
            )
        return "enhanced"
    if len(files) > 1 and len({f.transfer_syntax for f in files}) > 1:
        positions = {
            _floats(f.ds.get("ImagePositionPatient"), 3, "ImagePositionPatient", f.path) for f in files
        }
        if len(positions) == 1:
            return "interop"
    if files[0].mosaic and _mosaic_tiles(files[0]):
        return "mosaic"
    return "classic"


@dataclass(frozen=True)
class _Common:
    rows: int
    columns: int
    bits_allocated: int
    bits_stored: int
    high_bit: int
    pixel_representation: int
    photometric_interpretation: str
    modality: str
    sop_class_uid: str
    series_instance_uid: str
    dtype: np.dtype


_SAME_TEXTS = ("PhotometricInterpretation", "Modality", "SOPClassUID", "SeriesInstanceUID")


def _common_attributes(files: list[_File], same: tuple[str, ...] = _SAME_TEXTS) -> _Common:
    """Check that the attributes every frame must share agree, and return them.

    The image-pixel attributes (Rows, Columns, Bits Allocated/Stored, High Bit, Pixel Representation,
    Samples per Pixel) must always agree; ``same`` names the text attributes that must agree too.
    """
    first = files[0]
    ds, path = first.ds, first.path
    samples = _int(ds, "SamplesPerPixel", path, default=1)
    if samples != 1:
        raise InputFileError(
            f"{element_name('SamplesPerPixel')} is {samples}: only grey images are read ({path})"
        )
    ints = {
        k: _int(ds, k, path)
        for k in ("Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation")
    }
    ints["HighBit"] = _int(ds, "HighBit", path, default=ints["BitsStored"] - 1)
    texts = {k: str(ds.get(k, "")) for k in _SAME_TEXTS}
    for f in files[1:]:
        for keyword, expected in ints.items():
            found = _int(f.ds, keyword, f.path, default=expected if keyword == "HighBit" else _REQUIRED)
            if found != expected:
                raise _differs(keyword, expected, found, f.path)
        for keyword in same:
            expected, found = texts[keyword], str(f.ds.get(keyword, ""))
            if found != expected:
                raise _differs(keyword, repr(expected), repr(found), f.path)
        samples = _int(f.ds, "SamplesPerPixel", f.path, default=1)
        if samples != 1:
            raise _differs("SamplesPerPixel", 1, samples, f.path)
    rows, columns = ints["Rows"], ints["Columns"]
    if rows < 1 or columns < 1:
        raise InputFileError(f"image size {rows} x {columns} in {path}")
    allocated, stored, high = ints["BitsAllocated"], ints["BitsStored"], ints["HighBit"]
    representation = ints["PixelRepresentation"]
    if allocated not in (8, 16):
        raise InputFileError(
            f"{element_name('BitsAllocated')} is {allocated}: only 8 and 16 are read ({path})"
        )
    if not 1 <= stored <= allocated:
        raise InputFileError(
            f"{element_name('BitsStored')} is {stored} with Bits Allocated {allocated} in {path}"
        )
    if high != stored - 1:
        raise InputFileError(
            f"{element_name('HighBit')} is {high}, expected Bits Stored - 1 = {stored - 1} in {path}"
        )
    if representation not in (0, 1):
        raise InputFileError(
            f"{element_name('PixelRepresentation')} is {representation}, not 0 or 1, in {path}"
        )
    dtype = np.dtype(("u", "i")[representation] + str(allocated // 8))
    return _Common(
        rows,
        columns,
        allocated,
        stored,
        high,
        representation,
        texts["PhotometricInterpretation"],
        texts["Modality"],
        texts["SOPClassUID"],
        texts["SeriesInstanceUID"],
        dtype,
    )


# --- classic and enhanced ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    file: int
    frame: int
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    key: tuple[int, int, int]  # (temporal position, InstanceNumber, frame number)


def _functional_item(ds, per_frame, sequence: str):
    """The first item of ``sequence`` in the frame's Per-frame group, else in the Shared group."""
    for group in (per_frame, _first_item(ds.get("SharedFunctionalGroupsSequence"))):
        if group is not None and sequence in group:
            item = _first_item(group.get(sequence))
            if item is not None:
                return item
    return None


def _first_item(sequence):
    return sequence[0] if sequence is not None and len(sequence) > 0 else None


def _frames_of(index: int, f: _File) -> list[_Frame]:
    ds, path = f.ds, f.path
    instance = f.instance_number if f.instance_number is not None else 0
    if not f.multiframe:
        position = _floats(ds.get("ImagePositionPatient"), 3, "ImagePositionPatient", path)
        orientation = _floats(ds.get("ImageOrientationPatient"), 6, "ImageOrientationPatient", path)
        temporal = _int(ds, "TemporalPositionIdentifier", path, default=0)
        return [_Frame(index, 0, position, orientation, (temporal, instance, 0))]
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and len(per_frame) != f.n_frames:
        raise InputFileError(
            f"{element_name('PerFrameFunctionalGroupsSequence')} has {len(per_frame)} items but "
            f"{element_name('NumberOfFrames')} is {f.n_frames} in {path}"
        )
    frames = []
    for k in range(f.n_frames):
        group = per_frame[k] if per_frame is not None else None
        plane = _functional_item(ds, group, "PlanePositionSequence")
        plane_orientation = _functional_item(ds, group, "PlaneOrientationSequence")
        content = _functional_item(ds, group, "FrameContentSequence")
        position = orientation = None
        if plane is not None:
            position = _floats(
                plane.get("ImagePositionPatient"), 3, "ImagePositionPatient", f"{path} frame {k + 1}"
            )
        if plane_orientation is not None:
            orientation = _floats(
                plane_orientation.get("ImageOrientationPatient"),
                6,
                "ImageOrientationPatient",
                f"{path} frame {k + 1}",
            )
        temporal = 0
        if content is not None:
            temporal = _int(content, "TemporalPositionIndex", f"{path} frame {k + 1}", default=0)
        frames.append(_Frame(index, k, position, orientation, (temporal, instance, k)))
    return frames


def _normal(orientation: tuple[float, ...], path: str) -> np.ndarray:
    row, column = np.array(orientation[:3]), np.array(orientation[3:])
    normal = np.cross(row, column)
    length = float(np.linalg.norm(normal))
    if not 0.9 < length < 1.1:  # cosines must be unit length and orthogonal
        raise InputFileError(
            f"{element_name('ImageOrientationPatient')} {list(orientation)} is not two unit, "
            f"orthogonal direction cosines in {path}"
        )
    return normal / length


def _read_positioned(files: list[_File], common: _Common, layout: str) -> tuple[np.ndarray, SeriesInfo]:
    frames = [fr for i, f in enumerate(files) for fr in _frames_of(i, f)]
    _check_unique_instances(files)
    where = [_frame_name(files, fr) for fr in frames]
    positioned = [fr.position is not None for fr in frames]
    if not all(positioned):
        if any(positioned) or len(files) > 1:
            odd = positioned.index(False)
            raise InputFileError(
                f"{element_name('ImagePositionPatient')} missing in {where[odd]}: cannot order the frames"
            )
        # One file without positions (e.g. Secondary Capture): its frames in stored order.
        groups, locations, orientation = [[i] for i in range(len(frames))], None, None
    else:
        orientation = frames[0].orientation
        for fr, name in zip(frames, where):
            if fr.orientation is None:
                raise InputFileError(f"{element_name('ImageOrientationPatient')} missing in {name}")
            if not np.allclose(fr.orientation, orientation, rtol=0, atol=ORIENTATION_TOLERANCE):
                raise _differs("ImageOrientationPatient", list(orientation), list(fr.orientation), name)
        normal = _normal(orientation, where[0])
        locations = np.array([float(np.dot(fr.position, normal)) for fr in frames])
        groups = _group_by_position(locations, [fr.key for fr in frames], where)
    n_t, n_z = len(groups[0]), len(groups)
    order = [groups[z][t] for t in range(n_t) for z in range(n_z)]
    shape = (n_z, common.rows, common.columns) if n_t == 1 else (n_t, n_z, common.rows, common.columns)
    slots = [(frames[i].file, frames[i].frame) for i in order]
    measures = _measures(files[0])
    between = _floats(files[0].ds.get("SpacingBetweenSlices"), 1, "SpacingBetweenSlices", files[0].path)
    volume = _assemble(files, slots, common, shape)
    refs = tuple(
        FrameRef(
            path=files[frames[i].file].path,
            frame=frames[i].frame,
            sop_instance_uid=files[frames[i].file].sop_instance_uid,
            instance_number=files[frames[i].file].instance_number,
            position=frames[i].position,
            location=None if locations is None else float(locations[i]),
        )
        for i in order
    )
    slice_spacing = between and between[0]
    if locations is not None and n_z > 1:
        slice_spacing = float(np.median(np.diff([locations[g[0]] for g in groups])))
    info = _series_info(layout, shape, common, files, refs, orientation, slice_spacing, measures)
    return volume, info


def _frame_name(files: list[_File], fr: _Frame) -> str:
    f = files[fr.file]
    return f"{f.path} frame {fr.frame + 1}" if f.multiframe else f.path


def _check_unique_instances(files: list[_File]) -> None:
    seen: dict[str, str] = {}
    for f in files:
        if f.sop_instance_uid and f.sop_instance_uid in seen:
            raise InputFileError(
                f"{element_name('SOPInstanceUID')} {f.sop_instance_uid} occurs in "
                f"{seen[f.sop_instance_uid]} and {f.path}: the same image twice"
            )
        seen[f.sop_instance_uid] = f.path


def _group_by_position(locations: np.ndarray, keys: list[tuple], where: list[str]) -> list[list[int]]:
    """Frame indices grouped by slice position (ascending), each group in (temporal, instance) order."""
    groups: list[list[int]] = []
    for i in np.argsort(locations, kind="stable").tolist():
        if groups and locations[i] - locations[groups[-1][0]] <= SAME_POSITION_MM:
            groups[-1].append(i)
        else:
            groups.append([i])
    for below, above in itertools.pairwise(groups):
        step = locations[above[0]] - locations[below[0]]
        if step <= MIN_SLICE_STEP_MM:
            raise InputFileError(
                f"slice positions {locations[below[0]]:.6g} mm ({where[below[0]]}) and "
                f"{locations[above[0]]:.6g} mm ({where[above[0]]}) are {step:.3g} mm apart: positions "
                f"must increase by more than {MIN_SLICE_STEP_MM} mm"
            )
    n_t = len(groups[0])
    for group in groups:
        if len(group) != n_t:
            raise InputFileError(
                f"position {locations[group[0]]:.6g} mm ({where[group[0]]}) holds {len(group)} frame(s) "
                f"but position {locations[groups[0][0]]:.6g} mm ({where[groups[0][0]]}) holds {n_t}: every "
                f"position must hold the same number of time points"
            )
        group.sort(key=keys.__getitem__)
        for a, b in itertools.pairwise(group):
            if keys[a] == keys[b]:
                raise InputFileError(
                    f"{where[a]} and {where[b]} share position {locations[a]:.6g} mm, "
                    f"{element_name('TemporalPositionIdentifier')} and {element_name('InstanceNumber')}: "
                    f"their time order is unknown"
                )
    return groups


def _measures(f: _File) -> tuple[tuple[float, float] | None, float | None]:
    """(PixelSpacing, SliceThickness) from the dataset or its first frame's Pixel Measures."""
    ds = f.ds
    source = ds
    if f.multiframe:
        per_frame = _first_item(ds.get("PerFrameFunctionalGroupsSequence"))
        source = _functional_item(ds, per_frame, "PixelMeasuresSequence") or ds
    spacing = _floats(source.get("PixelSpacing"), 2, "PixelSpacing", f.path)
    thickness = _floats(source.get("SliceThickness"), 1, "SliceThickness", f.path)
    return spacing, None if thickness is None else thickness[0]


def _series_info(
    layout, shape, common: _Common, files, refs, orientation, slice_spacing, measures
) -> SeriesInfo:
    ordered_files = tuple(dict.fromkeys(r.path for r in refs))
    by_path = {f.path: f for f in files}
    syntaxes = tuple(dict.fromkeys(by_path[p].transfer_syntax for p in ordered_files))
    pixel_spacing, thickness = measures
    return SeriesInfo(
        layout=layout,
        shape=tuple(shape),
        dtype=common.dtype.name,
        bits_allocated=common.bits_allocated,
        bits_stored=common.bits_stored,
        high_bit=common.high_bit,
        pixel_representation=common.pixel_representation,
        photometric_interpretation=common.photometric_interpretation,
        modality=common.modality,
        sop_class_uid=common.sop_class_uid,
        series_instance_uid=common.series_instance_uid,
        transfer_syntaxes=syntaxes,
        orientation=orientation,
        pixel_spacing=pixel_spacing,
        slice_spacing=slice_spacing,
        slice_thickness=thickness,
        files=ordered_files,
        frames=refs,
    )


# --- pixel data ----------------------------------------------------------------------------------


def _decode(f: _File, common: _Common) -> np.ndarray:
    """All frames of ``f`` as (frames, rows, columns) in the series dtype; releases the dataset."""
    try:
        pixels = f.ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - decoder plugins raise many types on bad streams
        raise InputFileError(f"cannot decode the pixel data of {f.path}: {exc}") from None
    f.ds = None  # the pixel bytes were read into the dataset; let them go
    expected = (f.n_frames, common.rows, common.columns)
    if pixels.size != math.prod(expected):
        raise InputFileError(f"pixel data of {f.path} has shape {pixels.shape}, expected {expected}")
    # astype also turns big-endian words into native ones
    return pixels.reshape(expected).astype(common.dtype, copy=False)


def _assemble(files: list[_File], slots: list[tuple[int, int]], common: _Common, shape) -> np.ndarray:
    """Decode each file once and put its frames where ``slots`` (file, frame per volume frame) say."""
    out = np.empty((len(slots), shape[-2], shape[-1]), common.dtype)
    wanted: dict[int, list[tuple[int, int]]] = {}
    for k, (file, frame) in enumerate(slots):
        wanted.setdefault(file, []).append((k, frame))
    for file, pairs in wanted.items():
        f = files[file]
        pixels = _tiles(f, _decode(f, common)) if f.mosaic else _decode(f, common)
        for k, frame in pairs:
            out[k] = pixels[frame]
    return out.reshape(shape)


# --- Siemens mosaic ------------------------------------------------------------------------------


def _csa_image_header(f: _File) -> dict:
    """The parsed Siemens CSA image header of ``f`` ({} when there is none), read once."""
    if f.csa is not None:
        return f.csa
    with warnings.catch_warnings():
        # nibabel.nicom warns on import that its DICOM *readers* are experimental; the CSA parser we
        # use is a plain byte parser and the warning does not concern it.
        warnings.filterwarnings(
            "ignore", message="The DICOM readers are highly experimental", category=UserWarning
        )
        from nibabel.nicom import csareader
    try:
        f.csa = csareader.get_csa_header(f.ds, "image") or {}
    except Exception as exc:  # noqa: BLE001 - csareader raises CSAReadError, struct.error, ...
        raise InputFileError(
            f"cannot read the Siemens CSA image header (0029,xx10) of {f.path}: {exc}"
        ) from None
    return f.csa


def _mosaic_tiles(f: _File) -> int:
    csa = _csa_image_header(f)
    value = csa.get("tags", {}).get("NumberOfImagesInMosaic", {}).get("items")
    return int(value[0]) if value else 0


def _csa_slice_normal(f: _File) -> np.ndarray | None:
    csa = _csa_image_header(f)
    items = csa.get("tags", {}).get("SliceNormalVector", {}).get("items")
    if not items:
        return None
    if len(items) != 3:
        raise InputFileError(f"CSA SliceNormalVector has {len(items)} values, expected 3, in {f.path}")
    return np.array(items, dtype=float)


def _tiles(f: _File, pixels: np.ndarray) -> np.ndarray:
    """Cut the mosaic frame of ``f`` into its tiles, in mosaic order (row by row)."""
    n, grid = f.mosaic_n, f.mosaic_grid
    _, rows, columns = pixels.shape
    tiles = pixels.reshape(grid, rows // grid, grid, columns // grid).transpose(0, 2, 1, 3)
    return tiles.reshape(grid * grid, rows // grid, columns // grid)[:n]


def _read_mosaic(files: list[_File], common: _Common) -> tuple[np.ndarray, SeriesInfo]:
    first = files[0]
    n = _mosaic_tiles(first)
    grid = math.ceil(math.sqrt(n))
    if n < 1 or common.rows % grid or common.columns % grid:
        raise InputFileError(
            f"CSA NumberOfImagesInMosaic {n} does not tile a {common.rows} x {common.columns} mosaic "
            f"in {first.path}"
        )
    orientation = _floats(first.ds.get("ImageOrientationPatient"), 6, "ImageOrientationPatient", first.path)
    position = _floats(first.ds.get("ImagePositionPatient"), 3, "ImagePositionPatient", first.path)
    if orientation is None:
        raise InputFileError(f"{element_name('ImageOrientationPatient')} missing in {first.path}")
    slice_normal = _csa_slice_normal(first)
    reverse = slice_normal is not None and float(np.dot(slice_normal, _normal(orientation, first.path))) < 0
    keys = []
    for f in files:
        if not f.mosaic:
            raise InputFileError(f"{f.path} is not a mosaic but {first.path} is")
        found = _mosaic_tiles(f)
        if found != n:
            raise InputFileError(
                f"CSA NumberOfImagesInMosaic differs: expected {n}, found {found} in {f.path}"
            )
        o = _floats(f.ds.get("ImageOrientationPatient"), 6, "ImageOrientationPatient", f.path)
        if o is None or not np.allclose(o, orientation, rtol=0, atol=ORIENTATION_TOLERANCE):
            raise _differs("ImageOrientationPatient", list(orientation), o and list(o), f.path)
        p = _floats(f.ds.get("ImagePositionPatient"), 3, "ImagePositionPatient", f.path)
        if (p is None) != (position is None) or (
            p is not None and not np.allclose(p, position, rtol=0, atol=1e-3)
        ):
            raise InputFileError(
                f"{element_name('ImagePositionPatient')} differs: expected {position}, found {p} in "
                f"{f.path}: the mosaics of one series are time points at one position"
            )
        f.mosaic_n, f.mosaic_grid = n, grid
        temporal = _int(f.ds, "TemporalPositionIdentifier", f.path, default=0)
        keys.append((temporal, f.instance_number if f.instance_number is not None else 0))
    _check_unique_instances(files)
    order = sorted(range(len(files)), key=keys.__getitem__)
    for a, b in itertools.pairwise(order):
        if keys[a] == keys[b]:
            raise InputFileError(
                f"{files[a].path} and {files[b].path} share {element_name('InstanceNumber')}: "
                f"their time order is unknown"
            )
    tiles = list(range(n))[::-1] if reverse else list(range(n))
    slots = [(i, tile) for i in order for tile in tiles]
    shape = (n, common.rows // grid, common.columns // grid)
    if len(files) > 1:
        shape = (len(files),) + shape
    measures = _measures(first)
    spacing = _floats(first.ds.get("SpacingBetweenSlices"), 1, "SpacingBetweenSlices", first.path)
    volume = _assemble(files, slots, common, shape)
    refs = tuple(
        FrameRef(files[i].path, tile, files[i].sop_instance_uid, files[i].instance_number, position, None)
        for i, tile in slots
    )
    info = _series_info("mosaic", shape, common, files, refs, orientation, spacing and spacing[0], measures)
    return volume, info


# --- interop -------------------------------------------------------------------------------------


def _read_interop(files: list[_File]) -> tuple[np.ndarray, SeriesInfo]:
    """One image stored in several files: decode all, require equal values, return (1, y, x)."""
    for f in files:
        if f.multiframe:
            raise InputFileError(f"{f.path} holds {f.n_frames} frames; interop files hold one image each")
        f.mosaic = False  # the mosaic is the image here, not cut into tiles
    ordered = sorted(files, key=lambda f: f.transfer_syntax not in _UNCOMPRESSED)  # stable: reference first
    # Re-encoders may assign new Series/SOP Instance UIDs (WG04 CT1_RLE does); the values must agree.
    common = _common_attributes(ordered, same=("PhotometricInterpretation",))
    first = ordered[0]
    measures = _measures(first)
    orientation = _floats(first.ds.get("ImageOrientationPatient"), 6, "ImageOrientationPatient", first.path)
    refs = []
    for f in ordered:
        position = _floats(f.ds.get("ImagePositionPatient"), 3, "ImagePositionPatient", f.path)
        location = None
        if position is not None and orientation is not None:
            location = float(np.dot(position, _normal(orientation, f.path)))
        refs.append(FrameRef(f.path, 0, f.sop_instance_uid, f.instance_number, position, location))
    reference = _decode(first, common)
    for f in ordered[1:]:
        pixels = _decode(f, common)
        if not np.array_equal(pixels, reference):
            n = int(np.count_nonzero(pixels != reference))
            raise InputFileError(f"pixel data of {f.path} differs from {first.path} in {n} voxels")
    info = _series_info("interop", reference.shape, common, files, tuple(refs), orientation, None, measures)
    return reference, info
