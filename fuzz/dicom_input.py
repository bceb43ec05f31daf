"""The byte layout of fuzz_dicom_decode.py's inputs: a few Image Pixel attributes, then the frames'
Pixel Data fragments, and the dataset they make (no atheris: make_corpus.py and the tests import it
too; pydicom and volcodec.dicom are imported only when a dataset is built).

    byte 0   Rows - 1              (mod 64)
    byte 1   Columns - 1           (mod 64)
    byte 2   Number of Frames - 1  (mod 8)
    byte 3   bits 0-1 Bits Allocated (8, 16, 32, 16)   bit 2 Pixel Representation
             bit 3 Samples per Pixel 3 (else 1)        bit 4 Planar Configuration
             bit 5 near-lossless transfer syntax (else lossless)
             bits 6-7 offsets: 0 empty Basic Offset Table, 1 Basic Offset Table,
                      2 Extended Offset Table, 3 Basic Offset Table
    byte 4   Bits Stored - 1       (mod Bits Allocated)
    then     fragments, each a little-endian uint16 length and that many bytes (the last one takes
             what is left when the input ends first)

Every input maps to attributes pydicom accepts, so the bytes reach our plugin; the caps keep a
dataset at most 64 x 64 x 3 samples x 8 frames. The fragment count need not match Number of Frames.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

from repair import fix_checksums

FIXED = 5
FRAGMENT_MAGIC = b"VCDF"  # volcodec/dicom/fragment.py; not imported so this file stands alone
_FRAGMENT = struct.Struct("<4sBBBBIIII")  # magic, version, kind, samples, reserved, frame, head, slot, n_refs
_HEAD = 0


@dataclass(frozen=True)
class Attributes:
    rows: int
    columns: int
    frames: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    samples: int
    planar: int
    near: bool
    offsets: str  # "empty", "bot" or "eot"


def parse_input(data: bytes) -> tuple[Attributes, list[bytes]] | None:
    """The attributes and fragments ``data`` describes; None when it is shorter than the fixed part."""
    if len(data) < FIXED:
        return None
    b = data
    ba = (8, 16, 32, 16)[b[3] & 3]
    attrs = Attributes(rows=1 + b[0] % 64, columns=1 + b[1] % 64, frames=1 + b[2] % 8, bits_allocated=ba,
                       bits_stored=1 + b[4] % ba, pixel_representation=(b[3] >> 2) & 1,
                       samples=3 if b[3] & 8 else 1, planar=(b[3] >> 4) & 1, near=bool(b[3] & 32),
                       offsets=("empty", "bot", "eot", "bot")[b[3] >> 6])
    frags, pos = [], FIXED
    while pos < len(data):
        if pos + 2 > len(data):
            frags.append(data[pos:])
            break
        (n,) = struct.unpack_from("<H", data, pos)
        frags.append(data[pos + 2:pos + 2 + n])
        pos += 2 + n
    return attrs, frags


def pack_input(attrs: Attributes, frags: list[bytes]) -> bytes:
    """The inverse of :func:`parse_input` (for seeds)."""
    ba_code = {8: 0, 16: 1, 32: 2}[attrs.bits_allocated]
    off_code = {"empty": 0, "bot": 1, "eot": 2}[attrs.offsets]
    flags = (ba_code | attrs.pixel_representation << 2 | (attrs.samples == 3) << 3 | attrs.planar << 4
             | attrs.near << 5 | off_code << 6)
    out = [bytes([attrs.rows - 1, attrs.columns - 1, attrs.frames - 1, flags, attrs.bits_stored - 1])]
    for f in frags:
        if len(f) > 0xFFFF:
            raise ValueError(f"fragment of {len(f)} bytes is too long for a seed")
        out.append(struct.pack("<H", len(f)) + f)
    return b"".join(out)


def build_dataset(attrs: Attributes, frags: list[bytes]):
    """A dataset in volcodec's transfer syntax with these attributes and these Pixel Data fragments."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate, encapsulate_extended

    from volcodec.dicom import VOLCODEC_LOSSLESS, VOLCODEC_NEAR_LOSSLESS

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = VOLCODEC_NEAR_LOSSLESS if attrs.near else VOLCODEC_LOSSLESS
    ds.Rows, ds.Columns, ds.NumberOfFrames = attrs.rows, attrs.columns, attrs.frames
    ds.BitsAllocated, ds.BitsStored = attrs.bits_allocated, attrs.bits_stored
    ds.HighBit = attrs.bits_stored - 1
    ds.PixelRepresentation, ds.SamplesPerPixel = attrs.pixel_representation, attrs.samples
    if attrs.samples == 3:
        ds.PhotometricInterpretation, ds.PlanarConfiguration = "RGB", attrs.planar
    else:
        ds.PhotometricInterpretation = "MONOCHROME2"
    if attrs.offsets == "eot" and frags:  # pydicom cannot write an Extended Offset Table of no frames
        ds.PixelData, ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = encapsulate_extended(frags)
    else:
        ds.PixelData = encapsulate(frags, has_bot=attrs.offsets == "bot")
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return ds


class PluginExceptions(logging.Handler):
    """Collects what decoder plugins raise: pydicom logs it (``LOGGER.exception``), then raises its own
    RuntimeError without a cause. Add to the "pydicom" logger."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.seen: list[BaseException] = []

    def emit(self, record):
        if record.exc_info and record.exc_info[1] is not None:
            self.seen.append(record.exc_info[1])


def fix_fragment_checksums(frag: bytes) -> bytes:
    """``frag`` with the CRCs of the volcodec stream a head fragment carries recomputed
    (repair.fix_checksums), so mutations inside the stream reach the decoder; other bytes unchanged."""
    if len(frag) < _FRAGMENT.size or frag[:4] != FRAGMENT_MAGIC or frag[5] != _HEAD:
        return frag
    n_refs = _FRAGMENT.unpack_from(frag)[-1]
    pos = _FRAGMENT.size + 4 * n_refs
    if len(frag) < pos + 4:
        return frag
    (n,) = struct.unpack_from("<I", frag, pos)
    pos += 4 + 4 * n
    if len(frag) < pos + 8:
        return frag
    (length,) = struct.unpack_from("<Q", frag, pos)
    pos += 8
    stream = frag[pos:pos + length]
    return frag[:pos] + fix_checksums(stream) + frag[pos + len(stream):]
