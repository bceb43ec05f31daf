"""Classic single-frame series <-> one Legacy Converted Enhanced object (highdicom), for inter-slice coding.

:func:`to_multiframe` builds the object with highdicom (per-frame positions, orientation and source
SOP Instance UIDs in the functional groups) and keeps each source instance's header, Pixel Data
excluded, in a private block, so :func:`split` gives back the original instances (UIDs and every
attribute) with their pixels:

``(0009,0010) LO 'VOLCODEC 1'``, ``(0009,1010) SQ``: one item per source instance, each holding its
own ``(0009,0010)`` creator and ``(0009,1011) OB``: the instance written as a DICOM file (Explicit VR
Little Endian file meta and dataset, no Pixel Data).
"""

from __future__ import annotations

import io
import warnings

import numpy as np

from ..errors import DicomError
from .plugin import element, frame_bytes

CREATOR = "VOLCODEC 1"
_GROUP = 0x0009
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
    from pydicom.dataset import Dataset
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
    items = []
    for d in datasets:
        item = Dataset()
        item.add_new((_GROUP, 0x0010), "LO", CREATOR)
        item.add_new((_GROUP, 0x1011), "OB", _header_bytes(d))
        items.append(item)
    mf.add_new((_GROUP, 0x0010), "LO", CREATOR)
    mf.add_new((_GROUP, 0x1010), "SQ", items)
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
    return block is not None and block.value == CREATOR and (_GROUP, 0x1010) in ds


def split(ds, words: np.ndarray) -> list:
    """The source instances of a converted object, given its decoded (frames, samples, Y, X) words."""
    from pydicom import dcmread

    if not is_split_capable(ds):
        raise DicomError("the object does not carry volcodec's private block "
                         f"(0009,0010) '{CREATOR}', so it cannot be split into its source instances")
    sources = {}
    for item in ds[_GROUP, 0x1010].value:
        src = dcmread(io.BytesIO(item[_GROUP, 0x1011].value))
        sources[str(src.SOPInstanceUID)] = src
    out = []
    for k, groups in enumerate(ds.PerFrameFunctionalGroupsSequence):
        uid = str(groups.ConversionSourceAttributesSequence[0].ReferencedSOPInstanceUID)
        src = sources.get(uid)
        if src is None:
            raise DicomError(f"frame {k} names source instance {uid}, which the private block lacks")
        planar = int(src.get("PlanarConfiguration", 0) or 0)
        data = frame_bytes(words[k], planar)
        src.PixelData = data + b"\0" * (len(data) & 1)
        src["PixelData"].VR = "OW" if int(src.BitsAllocated) > 8 else "OB"
        out.append(src)
    return out
