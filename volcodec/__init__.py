"""volcodec: lossless and near-lossless compression of CT/MR volumes and 4D series.

The public API is small::

    buf = volcodec.encode(volume, bits_stored=12)      # (z,y,x) or (t,z,y,x) integer array
    vol = volcodec.decode(buf)                          # bit-exact
    one = volcodec.decode_frames(buf, [k])              # frame k = t*Z + z, decodes one slab at most
    hdr = volcodec.read_header(buf)                     # validated Header, no pixel decoding
"""

from .codec import (DEFAULT_EFFORT, DEFAULT_SLAB, Recovered, auto_slab, decode, decode_frames, encode,
                    max_abs_error, read_header, thread_count)
from .errors import (
    ChecksumError,
    CorruptDataError,
    DicomError,
    FormatError,
    InputFileError,
    InvalidArgumentError,
    LimitError,
    TruncatedError,
    UnsupportedVersionError,
    VerifyError,
    VolcodecError,
)
from .format import FORMAT_VERSION, Header

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_EFFORT",
    "DEFAULT_SLAB",
    "FORMAT_VERSION",
    "ChecksumError",
    "CorruptDataError",
    "DicomError",
    "FormatError",
    "Header",
    "InputFileError",
    "InvalidArgumentError",
    "LimitError",
    "Recovered",
    "TruncatedError",
    "UnsupportedVersionError",
    "VerifyError",
    "VolcodecError",
    "auto_slab",
    "decode",
    "decode_frames",
    "encode",
    "max_abs_error",
    "read_header",
    "thread_count",
]
