"""Transcode a pydicom Dataset to volcodec's transfer syntax and back.

:func:`compress_dataset` takes pixel data in any transfer syntax pydicom can decode and returns a copy
whose Pixel Data is encapsulated volcodec fragments (docs/format.md, "DICOM"); :func:`decompress_dataset`
returns a copy in Explicit VR Little Endian. Native input keeps every stored word, junk bits above Bits
Stored included; frames of a multi-frame object are coded in the order :mod:`.order` gives. Lossless
output keeps every attribute; near-lossless output gets Lossy Image Compression (0028,2110) = 01, the
ratio and method, and new SOP Instance UIDs (PS3.3 C.7.6.1.1.5).
"""

from __future__ import annotations

import copy

import numpy as np

from .. import auto_slab, thread_count
from .._threads import run_each
from ..codec import DEFAULT_EFFORT, DEFAULT_SLAB, DEFAULT_SLAB_T
from ..errors import DicomError
from . import fragment, order
from .plugin import element, frame_bytes, frame_words, register, words_dtype
from .uid import LOSSY_METHOD, VOLCODEC_LOSSLESS, VOLCODEC_NEAR_LOSSLESS, is_volcodec, transfer_syntax

_NATIVE = {"1.2.840.10008.1.2": "<", "1.2.840.10008.1.2.1": "<", "1.2.840.10008.1.2.1.99": "<",
           "1.2.840.10008.1.2.2": ">"}
_FLOAT_PIXELS = ("FloatPixelData", "DoubleFloatPixelData")
#: Pixel Data larger than this gets an Extended Offset Table (PS3.5 A.4: the BOT's 32-bit offsets).
BOT_LIMIT = 2**32 - 1


class Geometry:
    """The Image Pixel attributes that shape the words, checked."""

    def __init__(self, ds):
        for keyword in _FLOAT_PIXELS:
            if keyword in ds:
                raise DicomError(f"{element(keyword)} holds floating-point pixels; volcodec codes integer "
                                 f"{element('PixelData')} only")
        if "PixelData" not in ds:
            raise DicomError(f"the dataset has no {element('PixelData')}")
        self.rows, self.columns = _required(ds, "Rows"), _required(ds, "Columns")
        self.bits_allocated = _required(ds, "BitsAllocated")
        self.bits_stored = _required(ds, "BitsStored")
        self.pixel_representation = _required(ds, "PixelRepresentation")
        self.samples = _required(ds, "SamplesPerPixel")
        self.frames = int(ds.get("NumberOfFrames", 1) or 1)
        self.planar = int(ds.get("PlanarConfiguration", 0) or 0) if self.samples > 1 else 0
        self.dtype = words_dtype(self.bits_allocated, self.pixel_representation)
        if not 1 <= self.bits_stored <= self.bits_allocated:
            raise DicomError(f"{element('BitsStored')} must be 1..{self.bits_allocated} "
                             f"({element('BitsAllocated')}), found {self.bits_stored}")
        if self.samples not in (1, 3):
            raise DicomError(f"{element('SamplesPerPixel')} must be 1 or 3, found {self.samples}")
        pi = str(ds.get("PhotometricInterpretation", ""))
        if pi in ("YBR_FULL_422", "YBR_PARTIAL_420", "PALETTE COLOR") and self.samples == 3 or \
                pi.startswith("YBR_ICT") or pi.startswith("YBR_RCT"):
            raise DicomError(f"{element('PhotometricInterpretation')} {pi!r} is not supported (expected "
                             "MONOCHROME1, MONOCHROME2, RGB or YBR_FULL)")
        if self.rows < 1 or self.columns < 1 or self.frames < 1:
            raise DicomError(f"{element('Rows')} {self.rows}, {element('Columns')} {self.columns} and "
                             f"{element('NumberOfFrames')} {self.frames} must all be at least 1")

    @property
    def frame_size(self) -> int:
        return self.rows * self.columns * self.samples * self.dtype.itemsize


def _required(ds, keyword: str) -> int:
    value = ds.get(keyword)
    if value is None or value == "":
        raise DicomError(f"{element(keyword)} is missing")
    return int(value)


def stored_words(ds, geo: Geometry | None = None) -> np.ndarray:
    """The stored words as (frames, samples, rows, columns), in the dataset's Bits Allocated dtype.

    Native Pixel Data is read word for word (bits above Bits Stored kept); encapsulated Pixel Data is
    decoded by pydicom's plugins (values as the codec defines them)."""
    geo = geo or Geometry(ds)
    ts = str(ds.file_meta.TransferSyntaxUID)
    if ts in _NATIVE:
        data = ds.PixelData
        need = geo.frame_size * geo.frames
        if len(data) < need:
            raise DicomError(f"{element('PixelData')} holds {len(data)} bytes, expected {need} for "
                             f"{geo.frames} frame(s) of {geo.rows} x {geo.columns} x {geo.samples} "
                             f"{geo.bits_allocated}-bit words")
        dtype = geo.dtype.newbyteorder(_NATIVE[ts])
        words = [frame_words(data, k, geo.rows, geo.columns, geo.samples, geo.planar, dtype)
                 for k in range(geo.frames)]
        return np.stack(words).astype(geo.dtype.newbyteorder("="), copy=False)
    if is_volcodec(ts):
        raise DicomError(f"the dataset is already in volcodec's transfer syntax {ts}")
    from pydicom.pixels import get_decoder

    try:
        arr, _ = get_decoder(ts).as_array(ds, raw=True)
    except (NotImplementedError, ValueError, RuntimeError) as exc:
        raise DicomError(f"pydicom cannot decode transfer syntax {ts}: {exc}") from None
    arr = arr.reshape((geo.frames, geo.rows, geo.columns, geo.samples))
    return np.ascontiguousarray(np.moveaxis(arr, -1, 1)).astype(geo.dtype.newbyteorder("="), copy=False)


def encode_fragments(words: np.ndarray, grid: np.ndarray, *, bits_stored: int, effort: int,
                     near: int = 0, threads: int | None = None) -> list[bytes]:
    """One fragment per frame (index = frame number) for (frames, samples, Y, X) ``words`` coded in
    slabs of the (T, Z) prediction ``grid``: time points of DEFAULT_SLAB_T x slices of
    :func:`volcodec.auto_slab` (colour frames: runs of DEFAULT_SLAB), ``threads`` slabs at a time."""
    n, samples = words.shape[:2]
    if samples > 1:  # colour: runs of frames; a frame's samples predict from one another
        grid = grid.reshape(1, -1)
    T, Z = grid.shape
    st, sz = (DEFAULT_SLAB_T, auto_slab(T, Z)) if samples == 1 else (1, DEFAULT_SLAB)
    jobs = [grid[t0:t0 + st, z0:z0 + sz] for t0 in range(0, T, st) for z0 in range(0, Z, sz)]

    def code(members: np.ndarray) -> list[bytes]:
        block = words[members.ravel()]
        if samples == 1:
            block = block.reshape(members.shape + block.shape[-2:])
        return fragment.encode_slab(block, members.ravel().tolist(), samples, bits_stored=bits_stored,
                                    effort=effort, near=near)

    frags: list[bytes | None] = [None] * n
    for members, out in zip(jobs, run_each(code, jobs, thread_count(threads))):
        for k, frag in zip(members.ravel(), out):
            frags[k] = frag
    return frags


def _copy_without_pixels(ds):
    from pydicom.dataset import Dataset, FileMetaDataset

    out = Dataset()
    skip = {0x7FE00010, 0x7FE00001, 0x7FE00002}  # Pixel Data, Extended Offset Table (+ Lengths)
    for elem in ds:
        if elem.tag not in skip:
            out.add(copy.deepcopy(elem))
    out.file_meta = FileMetaDataset(copy.deepcopy(ds.file_meta)) if "file_meta" in ds.__dict__ else \
        FileMetaDataset()
    out.preamble = getattr(ds, "preamble", None)
    return out


def compress_dataset(ds, *, near: int = 0, effort: int = DEFAULT_EFFORT, threads: int | None = None):
    """A copy of ``ds`` with its pixels in volcodec's lossless (``near=0``) or near-lossless syntax,
    coding ``threads`` slabs at a time (None: every core; the bytes do not depend on it)."""
    register()
    geo = Geometry(ds)
    words = stored_words(ds, geo)
    grid = order.frame_grid(ds)
    frags = encode_fragments(words, grid, bits_stored=geo.bits_stored, effort=effort, near=near,
                             threads=threads)
    out = _copy_without_pixels(ds)
    _set_pixel_data(out, frags)
    uid = VOLCODEC_NEAR_LOSSLESS if near else VOLCODEC_LOSSLESS
    out.file_meta.TransferSyntaxUID = transfer_syntax(uid)
    if near:
        _mark_lossy(out, ratio=words.nbytes / max(1, sum(len(f) for f in frags)))
    return out


def _set_pixel_data(out, frags: list[bytes]) -> None:
    from pydicom.encaps import encapsulate, encapsulate_extended

    total = sum(len(f) + 8 for f in frags)
    if total > BOT_LIMIT:
        out.PixelData, out.ExtendedOffsetTable, out.ExtendedOffsetTableLengths = encapsulate_extended(frags)
    else:
        out.PixelData = encapsulate(frags, has_bot=True)
    elem = out["PixelData"]
    elem.VR = "OB"
    elem.is_undefined_length = True


def _mark_lossy(out, ratio: float) -> None:
    """PS3.3 C.7.6.1.1.5: once lossy, always lossy; ratio and method accumulate; a new instance."""
    from pydicom.uid import generate_uid

    ratios = _values(out.get("LossyImageCompressionRatio"))
    methods = _values(out.get("LossyImageCompressionMethod"))
    if len(methods) != len(ratios):  # keep the two lists parallel as the standard asks
        methods, ratios = [], []
    out.LossyImageCompression = "01"
    out.LossyImageCompressionRatio = ratios + [f"{ratio:.4g}"[:16]]
    out.LossyImageCompressionMethod = methods + [LOSSY_METHOD]
    uid = generate_uid()
    out.SOPInstanceUID = uid
    out.file_meta.MediaStorageSOPInstanceUID = uid


def _values(value) -> list:
    """An element value as a list: pydicom keeps a single value as a scalar (a str would otherwise
    be split into characters), several as a MultiValue."""
    if value is None or value == "":
        return []
    if isinstance(value, (str, bytes, float, int)):
        return [value]
    return list(value)


def decode_words(ds, geo: Geometry | None = None, threads: int | None = None) -> np.ndarray:
    """Every frame of a volcodec dataset as (frames, samples, Y, X) words, decoding ``threads``
    slabs at a time (None: every core)."""
    from pydicom.encaps import generate_frames

    register()
    geo = geo or Geometry(ds)
    data = ds.PixelData
    eot = None
    if "ExtendedOffsetTable" in ds:
        eot = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    try:
        frags = list(generate_frames(data, number_of_frames=geo.frames, extended_offsets=eot))
    except ValueError as exc:  # pydicom: offset table or fragments do not add up to the frames
        raise DicomError(f"{element('PixelData')} cannot be split into {geo.frames} frame(s): "
                         f"{exc}") from None
    if len(frags) != geo.frames:
        raise DicomError(f"{element('PixelData')} holds {len(frags)} fragments, "
                         f"{element('NumberOfFrames')} says {geo.frames}")
    slabs: dict[int, list] = {}  # head frame -> its frames' fragments, in frame order
    for k, raw in enumerate(frags):
        try:
            frag = fragment.parse(raw)
        except DicomError as exc:
            raise DicomError(f"fragment {k} of {element('PixelData')}: {exc.message}") from None
        if frag.frame != k:
            raise DicomError(f"fragment {k} of {element('PixelData')} says it holds frame {frag.frame}")
        slabs.setdefault(frag.head, []).append(frag)
    out = np.empty((geo.frames, geo.samples, geo.rows, geo.columns), geo.dtype.newbyteorder("="))

    def decode_slab(members: list) -> None:  # each slab's frames, written straight into ``out``
        cache = fragment.SlabCache()
        for frag in members:
            k = frag.frame
            words = cache.frame(frag, lambda i: _head_fragment(frags, i, k))
            if words.shape != out.shape[1:] or words.dtype.newbyteorder("=") != out.dtype:
                raise DicomError(f"frame {k} decodes to {words.shape} {words.dtype.name}; {element('Rows')}, "
                                 f"{element('Columns')}, {element('SamplesPerPixel')} and "
                                 f"{element('BitsAllocated')} expect {out.shape[1:]} {out.dtype.name}")
            out[k] = words

    run_each(decode_slab, slabs.values(), thread_count(threads))
    return out


def _head_fragment(frags: list, i: int, k: int):
    if i >= len(frags):
        raise DicomError(f"frame {k} names frame {i} as its slab head, beyond {element('NumberOfFrames')} "
                         f"{len(frags)}")
    return frags[i]


def decompress_dataset(ds, threads: int | None = None):
    """A copy of the volcodec-compressed ``ds`` in Explicit VR Little Endian (words as stored),
    decoding ``threads`` slabs at a time (None: every core)."""
    from pydicom.uid import ExplicitVRLittleEndian

    ts = str(ds.file_meta.TransferSyntaxUID)
    if not is_volcodec(ts):
        raise DicomError(f"the dataset's transfer syntax {ts} is not volcodec's")
    geo = Geometry(ds)
    words = decode_words(ds, geo, threads)
    out = _copy_without_pixels(ds)
    data = b"".join(frame_bytes(w, geo.planar) for w in words)
    out.PixelData = data + b"\0" * (len(data) & 1)
    out["PixelData"].VR = "OW" if geo.bits_allocated > 8 else "OB"
    out.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return out
