"""volcodec's DICOM transfer syntax UIDs and their registration with pydicom.

The UIDs live under ``2.25.268478856339551201659297830832489326033`` (a UUID-derived root, PS3.5
B.2), generated once for this project. They are fixed forever: a file written today must decode in
ten years. docs/format.md ("DICOM") gives the encapsulation rules that go with them.
"""

from __future__ import annotations

from ..errors import DicomError

#: The project's root: 2.25 followed by a random UUID as a decimal integer.
ROOT = "2.25.268478856339551201659297830832489326033"
#: Lossless: every stored word (junk bits above Bits Stored included) comes back exactly.
VOLCODEC_LOSSLESS = ROOT + ".1.1"
#: Near-lossless: |decoded - original| <= NEAR for every sample; the dataset says Lossy Image
#: Compression (0028,2110) = 01.
VOLCODEC_NEAR_LOSSLESS = ROOT + ".1.2"
TRANSFER_SYNTAXES = (VOLCODEC_LOSSLESS, VOLCODEC_NEAR_LOSSLESS)
NAMES = {
    VOLCODEC_LOSSLESS: "volcodec Lossless",
    VOLCODEC_NEAR_LOSSLESS: "volcodec Near-Lossless",
}
#: Written to Lossy Image Compression Method (0028,2114) for near-lossless output.
LOSSY_METHOD = "VOLCODEC_NEAR"


def is_volcodec(uid) -> bool:
    return str(uid) in TRANSFER_SYNTAXES


def transfer_syntax(uid: str):
    """The pydicom ``UID`` object for one of our syntaxes, carrying its private encoding (explicit VR
    little endian) so that pydicom treats it as an encapsulated transfer syntax."""
    from pydicom.uid import UID

    if not is_volcodec(uid):
        raise DicomError(f"{uid!r} is not a volcodec transfer syntax (expected one of "
                         f"{', '.join(TRANSFER_SYNTAXES)})")
    out = UID(str(uid))
    out.set_private_encoding(False, True)
    return out
