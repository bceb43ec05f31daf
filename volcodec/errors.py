"""Exceptions raised by volcodec.

Every error is a :class:`VolcodecError` (a ``ValueError``) with a stable integer ``code`` and a
short ``name``; codes never change meaning once released (docs/errors.md lists them).
"""

from __future__ import annotations


class VolcodecError(ValueError):
    """Base class: something about the input or the stream is wrong."""

    code = 1
    name = "error"

    def __init__(self, message: str):
        super().__init__(f"[{self.code} {self.name}] {message}")
        self.message = message


class InvalidArgumentError(VolcodecError):
    """An argument to encode/decode is not acceptable (dtype, shape, bits_stored, effort...)."""

    code = 2
    name = "invalid-argument"


class FormatError(VolcodecError):
    """The bytes are not a volcodec stream, or the header is inconsistent."""

    code = 10
    name = "format"


class UnsupportedVersionError(FormatError):
    """The stream was written by a newer format version than this decoder knows."""

    code = 11
    name = "unsupported-version"


class TruncatedError(FormatError):
    """The stream ends before the data the header declares."""

    code = 12
    name = "truncated"


class LimitError(VolcodecError):
    """The header declares a size beyond the configured limits (max_voxels)."""

    code = 13
    name = "limit"


class ChecksumError(VolcodecError):
    """A checksum does not match: the stream is corrupted. ``slab`` names the slab (None: header)."""

    code = 20
    name = "checksum"

    def __init__(self, message: str, slab: int | None = None):
        super().__init__(message)
        self.slab = slab


class CorruptDataError(VolcodecError):
    """The entropy-coded data of a slab is inconsistent (decoder ran past its end)."""

    code = 21
    name = "corrupt-data"

    def __init__(self, message: str, slab: int | None = None):
        super().__init__(message)
        self.slab = slab


class VerifyError(VolcodecError):
    """The encoder's own check failed: decoding the new stream did not give back the input (or,
    near-lossless, an error above the bound). Never expected; the stream is not returned."""

    code = 22
    name = "verify"


class DicomError(VolcodecError):
    """A DICOM dataset cannot be read or written as asked; the message names the element."""

    code = 30
    name = "dicom"


class InputFileError(VolcodecError):
    """An input file or folder cannot be read as a volume."""

    code = 40
    name = "input-file"
