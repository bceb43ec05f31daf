"""Tiny DICOM files for tests: classic slices, Enhanced multi-frame objects, Siemens mosaics.

Pixel values encode where a frame belongs (``frame_values``), so a test can check the order a reader
produced without knowing how it got there.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

ROWS, COLUMNS = 4, 5


def frame_values(t: int, z: int, rows: int = ROWS, columns: int = COLUMNS, dtype=np.int16) -> np.ndarray:
    """A frame whose every voxel says (t, z): 100 * t + z, plus a ramp so frames are not flat."""
    ramp = np.arange(rows * columns).reshape(rows, columns) % 7
    return (100 * t + 10 * z + ramp).astype(dtype)


def _base(sop_class: str, series_uid: str, transfer_syntax: str, pixels: np.ndarray, bits_stored: int):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = series_uid
    ds.Modality = "MR"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(pixels.dtype.kind == "i")
    ds.PixelData = np.ascontiguousarray(pixels, pixels.dtype.newbyteorder("<")).tobytes()
    return ds


def write_slice(
    path: Path,
    pixels: np.ndarray,
    position=(0.0, 0.0, 0.0),
    orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    instance: int = 1,
    temporal: int | None = None,
    series_uid: str = "1.2.826.0.1.3680043.8.498.2",
    bits_stored: int | None = None,
    transfer_syntax: str = "1.2.840.10008.1.2.1",
    private: list[tuple[int, str, object]] = (),
    **elements,
) -> Path:
    """One classic single-frame MR slice; ``elements`` set or override any keyword, ``private`` adds
    (tag, VR, value) elements."""
    from pydicom.uid import MRImageStorage

    ds = _base(MRImageStorage, series_uid, "1.2.840.10008.1.2.1", pixels, bits_stored)
    ds.InstanceNumber = instance
    if position is not None:
        ds.ImagePositionPatient = [float(v) for v in position]
    if orientation is not None:
        ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.PixelSpacing = [0.5, 0.6]
    ds.SliceThickness = 2.0
    if temporal is not None:
        ds.TemporalPositionIdentifier = temporal
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    for tag, vr, value in private:
        ds.add_new(tag, vr, value)
    if transfer_syntax != "1.2.840.10008.1.2.1":
        ds.compress(transfer_syntax)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_enhanced(
    path: Path,
    frames: list[np.ndarray],
    positions: list[tuple[float, float, float]],
    temporal: list[int] | None = None,
    orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    instance: int = 1,
    series_uid: str = "1.2.826.0.1.3680043.8.498.3",
    shared_orientation: bool = True,
) -> Path:
    """An Enhanced MR multi-frame file with per-frame positions (and TemporalPositionIndex)."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import EnhancedMRImageStorage

    pixels = np.stack(frames)
    ds = _base(EnhancedMRImageStorage, series_uid, "1.2.840.10008.1.2.1", pixels, None)
    ds.NumberOfFrames = len(frames)
    ds.InstanceNumber = instance

    def plane_orientation():
        item = Dataset()
        item.ImageOrientationPatient = [float(v) for v in orientation]
        return Sequence([item])

    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [0.5, 0.6]
    measures.SliceThickness = 2.0
    shared.PixelMeasuresSequence = Sequence([measures])
    if shared_orientation:
        shared.PlaneOrientationSequence = plane_orientation()
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    for k, position in enumerate(positions):
        group = Dataset()
        plane = Dataset()
        plane.ImagePositionPatient = [float(v) for v in position]
        group.PlanePositionSequence = Sequence([plane])
        if not shared_orientation:
            group.PlaneOrientationSequence = plane_orientation()
        content = Dataset()
        if temporal is not None:
            content.TemporalPositionIndex = temporal[k]
        group.FrameContentSequence = Sequence([content])
        per_frame.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.save_as(path, enforce_file_format=True)
    return path


def csa2(tags: dict[str, tuple[str, list[str]]]) -> bytes:
    """A Siemens CSA2 ('SV10') header holding ``tags``: name -> (VR, values as text)."""
    out = b"SV10\x04\x03\x02\x01" + struct.pack("<2I", len(tags), 77)
    for name, (vr, values) in tags.items():
        out += struct.pack("<64si4s3i", name.encode(), len(values), vr.encode(), 0, len(values), 77)
        for value in values:
            item = value.encode() + b"\0"
            out += struct.pack("<4i", len(item), len(item), 77, len(item)) + item + b"\0" * (-len(item) % 4)
    return out


def write_mosaic(
    path: Path,
    tiles: list[np.ndarray],
    slice_normal=(0.0, 0.0, 1.0),
    orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    instance: int = 1,
    series_uid: str = "1.2.826.0.1.3680043.8.498.4",
) -> Path:
    """A Siemens mosaic: ``tiles`` laid out row by row on a ceil(sqrt(n)) grid, with a CSA header."""
    n = len(tiles)
    grid = int(np.ceil(np.sqrt(n)))
    rows, columns = tiles[0].shape
    mosaic = np.zeros((grid * rows, grid * columns), tiles[0].dtype)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, grid)
        mosaic[r * rows : (r + 1) * rows, c * columns : (c + 1) * columns] = tile
    csa = csa2(
        {
            "NumberOfImagesInMosaic": ("US", [str(n)]),
            "SliceNormalVector": ("FD", [repr(float(v)) for v in slice_normal]),
            "AcquisitionMatrixText": ("SH", [f"{rows}*{columns}"]),
        }
    )
    return write_slice(
        path,
        mosaic,
        orientation=orientation,
        instance=instance,
        series_uid=series_uid,
        ImageType=["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"],
        private=[(0x00290010, "LO", "SIEMENS CSA HEADER"), (0x00291010, "OB", csa)],
    )
