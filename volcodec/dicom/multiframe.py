"""Classic single-frame series <-> one Legacy Converted Enhanced object (highdicom), for inter-slice coding.

:func:`to_multiframe` builds the object with highdicom (per-frame positions, orientation and source
SOP Instance UIDs in the functional groups) and keeps each source instance's header, Pixel Data
excluded, in a private block, so :func:`split` gives back the original instances (UIDs and every
attribute) with their pixels.

The private block (layout byte by byte: docs/format.md, "Multi-frame conversion"):
``(0009,0010) LO 'VOLCODEC 2'`` and ``(0009,1020) OB``, one zlib stream holding every source header as
Explicit VR Little Endian elements: the first instance's header whole (the *base*), then for each
instance only the elements that differ from the base and the tags of the base elements it lacks.
Consecutive slices' headers differ in a handful of elements, so the block is a few bytes a slice.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np

from ..errors import DicomError
from .plugin import element, frame_bytes

CREATOR = "VOLCODEC 2"
_GROUP = 0x0009
_HEADERS = (_GROUP, 0x1020)
_HEADERS_NAME = "(0009,1020) 'volcodec source headers'"
#: Largest source header (the sum of its element records) and largest section of the payload (framing
#: included), in bytes; the inflated payload is therefore at most 4 + (frames + 1) * MAX_HEADER bytes.
MAX_HEADER = 1 << 20
#: Explicit VR Little Endian VRs with a 2-byte reserved field and a 32-bit length (PS3.5 7.1.2).
_LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())
_U32 = struct.Struct("<I")
_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.2": "LegacyConvertedEnhancedCTImage",
    "1.2.840.10008.5.1.4.1.1.4": "LegacyConvertedEnhancedMRImage",
    "1.2.840.10008.5.1.4.1.1.128": "LegacyConvertedEnhancedPETImage",
}


def can_convert(ds) -> bool:
    return str(ds.get("SOPClassUID", "")) in _CLASSES and int(ds.get("NumberOfFrames", 1) or 1) == 1


def _header_bytes(ds) -> bytes:
    from pydicom import dcmwrite
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    head = Dataset()
    for elem in ds:
        if elem.tag != 0x7FE00010:
            head.add(elem)
    head.file_meta = FileMetaDataset(ds.file_meta)
    head.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buf = io.BytesIO()
    dcmwrite(buf, head, enforce_file_format=True)
    return buf.getvalue()


def to_multiframe(datasets: list, *, series_number: int | None = None):
    """One Legacy Converted Enhanced CT/MR/PET object from single-frame ``datasets`` of one series."""
    import highdicom
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    sop = str(datasets[0].get("SOPClassUID", ""))
    if sop not in _CLASSES or any(str(d.get("SOPClassUID", "")) != sop for d in datasets):
        raise DicomError(f"a multi-frame object needs one CT, MR or PET Image Storage series; found "
                         f"{element('SOPClassUID')} {sop!r}")
    cls = getattr(highdicom.legacy, _CLASSES[sop])
    native = [_native(d) for d in datasets]
    try:
        with warnings.catch_warnings():
            # highdicom warns about legacy values (single-component person names); they are copied as is
            warnings.simplefilter("ignore", UserWarning)
            mf = cls(native, series_instance_uid=generate_uid(),
                     series_number=series_number or int(datasets[0].get("SeriesNumber", 1) or 1),
                     sop_instance_uid=generate_uid(), instance_number=1,
                     transfer_syntax_uid=ExplicitVRLittleEndian)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise DicomError(f"highdicom cannot build a Legacy Converted Enhanced object: {exc}") from None
    if (_GROUP, 0x0010) in mf:  # highdicom puts private attributes in the functional groups only
        raise DicomError(f"highdicom's object already holds (0009,0010), the creator slot of '{CREATOR}'")
    mf.add_new((_GROUP, 0x0010), "LO", CREATOR)
    mf.add_new(_HEADERS, "OB", zlib.compress(pack_headers([_records(d) for d in datasets]), 9))
    return mf


def _native(ds):
    """highdicom concatenates native Pixel Data as is; decode other syntaxes first."""
    from .transcode import _NATIVE

    if str(ds.file_meta.TransferSyntaxUID) in _NATIVE and str(ds.file_meta.TransferSyntaxUID) != \
            "1.2.840.10008.1.2.2":
        return ds
    from .transcode import Geometry, stored_words

    geo = Geometry(ds)
    words = stored_words(ds, geo)
    out = ds.copy()
    out.PixelData = b"".join(frame_bytes(w, geo.planar) for w in words)
    out["PixelData"].VR = "OW" if geo.bits_allocated > 8 else "OB"
    out.file_meta = ds.file_meta.copy()
    out.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    return out


def is_split_capable(ds) -> bool:
    block = ds.get((_GROUP, 0x0010))
    return block is not None and block.value == CREATOR and _HEADERS in ds


def split(ds, words: np.ndarray) -> list:
    """The source instances of a converted object, given its decoded (frames, samples, Y, X) words."""
    if not is_split_capable(ds):
        raise DicomError("the object does not carry volcodec's private block "
                         f"(0009,0010) '{CREATOR}', so it cannot be split into its source instances")
    groups = ds.get("PerFrameFunctionalGroupsSequence") or []
    if len(groups) != len(words):
        raise DicomError(f"{element('PerFrameFunctionalGroupsSequence')} has {len(groups)} items for "
                         f"{len(words)} frames")
    blob = ds[_HEADERS].value
    if not isinstance(blob, bytes):
        raise DicomError(f"{_HEADERS_NAME} must be OB bytes, found {type(blob).__name__}")
    sources = {}
    for k, head in enumerate(unpack_headers(blob, len(words))):
        uid, src, planar, vr = _read_header(head, k)
        sources[uid] = src, planar, vr
    out = []
    for k, group in enumerate(groups):
        uid = str(group.ConversionSourceAttributesSequence[0].ReferencedSOPInstanceUID)
        if uid not in sources:
            raise DicomError(f"frame {k} names source instance {uid}, which {_HEADERS_NAME} lacks")
        src, planar, vr = sources[uid]
        data = frame_bytes(words[k], planar)
        src.PixelData = data + b"\0" * (len(data) & 1)
        src["PixelData"].VR = vr
        out.append(src)
    return out


def _records(ds) -> dict[int, bytes]:
    """Tag -> each element of ``ds``'s header (file meta, then dataset; no Pixel Data) encoded as a
    DICOM file holds it in Explicit VR Little Endian."""
    from pydicom import dcmread
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element

    head = dcmread(io.BytesIO(_header_bytes(ds)))
    out = {}
    for part in (head.file_meta, head):
        for elem in part:
            fp = DicomBytesIO()
            fp.is_little_endian, fp.is_implicit_VR = True, False
            write_data_element(fp, elem)
            out[int(elem.tag)] = fp.getvalue()
    return out


def _read_header(head: bytes, k: int) -> tuple:
    """(SOP Instance UID, Dataset, Planar Configuration, Pixel Data VR) of a source header from
    :func:`unpack_headers`; every element is parsed here, so malformed values fail now and not when
    the instance is written."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        src = dcmread(io.BytesIO(head))
        for _ in src.iterall():
            pass
        uid = str(src.SOPInstanceUID)
        planar = int(src.get("PlanarConfiguration", 0) or 0)
        vr = "OW" if int(src.BitsAllocated) > 8 else "OB"
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, OverflowError, struct.error, NotImplementedError) as exc:
        # what pydicom raises on malformed bytes varies with where they break (OSError: a read past
        # the end); every one of them is the block's fault here
        raise DicomError(f"{_HEADERS_NAME}: source header {k} is not a readable DICOM header "
                         f"({type(exc).__name__}: {exc})") from None
    return uid, src, planar, vr


# ----------------------------------------------------------------------------- the header block
# Pure bytes, no pydicom: the payload the zlib stream of (0009,1020) inflates to (docs/format.md).
def pack_headers(headers: list[dict[int, bytes]]) -> bytes:
    """The payload for the source headers ``headers`` (tag -> Explicit VR Little Endian element): the
    count, the first header whole as the base section, then one difference section per header."""
    for k, head in enumerate(headers):
        if sum(map(len, head.values())) > MAX_HEADER:
            raise DicomError(f"source header {k} is larger than {MAX_HEADER} bytes; {_HEADERS_NAME} "
                             "cannot hold it")
        for rec in head.values():
            _check_record(rec)  # never write what split would refuse
    base = headers[0]
    parts = [_U32.pack(len(headers)), _section(sorted(base.items()), [])]
    for head in headers:
        parts.append(_section(sorted((t, r) for t, r in head.items() if base.get(t) != r),
                              sorted(t for t in base if t not in head)))
    return b"".join(parts)


def _section(records: list[tuple[int, bytes]], dropped: list[int]) -> bytes:
    out = b"".join([_U32.pack(len(records)), *(_U32.pack(len(r)) + r for _, r in records),
                    _U32.pack(len(dropped)), struct.pack(f"<{len(dropped)}I", *dropped)])
    if len(out) > MAX_HEADER:
        raise DicomError(f"a section of {_HEADERS_NAME} would be {len(out)} bytes, more than {MAX_HEADER}")
    return out


def unpack_headers(blob: bytes, frames: int) -> list[bytes]:
    """The ``frames`` source headers in the zlib stream ``blob``, each as a DICOM file's bytes
    (preamble, ``DICM``, elements; no Pixel Data). Inflates at most ``4 + (frames + 1) * MAX_HEADER``
    bytes and checks every count, length and tag order; raises :class:`DicomError` naming (0009,1020)."""
    limit = 4 + (frames + 1) * MAX_HEADER
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(blob, limit + 1)
    except zlib.error as exc:
        raise _bad(f"is not a valid zlib stream ({exc})") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise _bad(f"inflates to more than {limit} bytes, the most {frames} frame(s) may hold")
    if not inflater.eof:
        raise _bad("ends inside its zlib stream")
    if inflater.unused_data not in (b"", b"\0"):  # OB values of odd length carry one pad byte
        raise _bad(f"has {len(inflater.unused_data)} bytes after its zlib stream")
    n, pos = _u32(data, 0)
    if n != frames:
        raise _bad(f"holds {n} source headers for {frames} frames")
    sections = []
    for k in range(n + 1):
        start = pos
        records, dropped, pos = _read_section(data, pos)
        if pos - start > MAX_HEADER:
            raise _bad(f"section {k} is {pos - start} bytes, more than {MAX_HEADER}")
        sections.append((records, dropped))
    if pos != len(data):
        raise _bad(f"has {len(data) - pos} bytes after its last section")
    base, no_drops = sections[0]
    if no_drops:
        raise _bad("drops tags in its base section")
    out = []
    for k, (records, dropped) in enumerate(sections[1:]):
        head = dict(base)
        for tag in dropped:
            if tag not in head or tag in records:
                raise _bad(f"header {k} drops ({tag >> 16:04X},{tag & 0xFFFF:04X}), which the base lacks "
                           "or the header sets")
            del head[tag]
        head.update(records)
        if sum(map(len, head.values())) > MAX_HEADER:
            raise _bad(f"header {k} is larger than {MAX_HEADER} bytes")
        out.append(b"\0" * 128 + b"DICM" + b"".join(head[t] for t in sorted(head)))
    return out


def _read_section(data: bytes, pos: int) -> tuple[dict[int, bytes], list[int], int]:
    count, pos = _u32(data, pos)
    records, last = {}, -1
    for _ in range(count):
        size, pos = _u32(data, pos)
        if size > len(data) - pos:
            raise _bad(f"has a {size}-byte element record that runs past the end of its data")
        rec = data[pos:pos + size]
        pos += size
        tag = _check_record(rec)
        if tag <= last:
            raise _bad(f"lists ({tag >> 16:04X},{tag & 0xFFFF:04X}) out of ascending tag order")
        records[tag], last = rec, tag
    count, pos = _u32(data, pos)
    if count > (len(data) - pos) // 4:
        raise _bad(f"declares {count} dropped tags, more than its data holds")
    dropped = list(struct.unpack_from(f"<{count}I", data, pos))
    if any(a >= b for a, b in zip(dropped, dropped[1:])):
        raise _bad("lists dropped tags out of ascending order")
    return records, dropped, pos + 4 * count


def _check_record(rec: bytes) -> int:
    """The tag of one Explicit VR Little Endian element record, after checking that its own length
    field accounts for the record exactly (undefined length only for SQ)."""
    if len(rec) < 8:
        raise _bad(f"has an element record of {len(rec)} bytes, shorter than an element header")
    group, elem = struct.unpack_from("<HH", rec)
    vr = rec[4:6]
    long = vr in _LONG_VRS
    size = 12 if long else 8
    if len(rec) < size:
        raise _bad(f"has a {len(rec)}-byte record of element ({group:04X},{elem:04X}), shorter than its "
                   "header")
    (length,) = struct.unpack_from("<I", rec, 8) if long else struct.unpack_from("<H", rec, 6)
    if length != len(rec) - size and not (vr == b"SQ" and length == 0xFFFFFFFF):
        raise _bad(f"has a record of element ({group:04X},{elem:04X}) VR {vr!r} whose length field "
                   f"({length}) does not match its {len(rec)} bytes")
    return group << 16 | elem


def _u32(data: bytes, pos: int) -> tuple[int, int]:
    if len(data) - pos < 4:
        raise _bad("is truncated")
    return _U32.unpack_from(data, pos)[0], pos + 4


def _bad(what: str) -> DicomError:
    return DicomError(f"{_HEADERS_NAME} {what}")
