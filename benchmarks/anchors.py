"""The standard codecs volcodec is measured against ("anchors"), each thin glue behind one interface.

Every anchor is configured the way a DICOM encoder would use it, because that is what volcodec must
beat in practice:

- the image codecs code one frame (slice) at a time, as DICOM encapsulates one frame per fragment;
- they are told the true bit depth, (0028,0101) 'Bits Stored', never the 16-bit container (a 12-bit
  volume coded as 16 bits costs JPEG-LS 2-30 % and JPEG XL up to 68 %, see shared/NOTES.md);
- signed data, (0028,0103) 'Pixel Representation' 1, go to codecs without a sign flag (JPEG-LS,
  JPEG XL) as the two's complement bit pattern masked to Bits Stored bits. This is DICOM practice:
  the code stream carries the stored bit pattern, the data set carries the sign, and the reader sign
  extends from Bits Stored (pydicom ``_process_frame`` does this for JPEG-LS; DCMTK bug #1160 fixed
  its encoder to zero the unused high bits, as CharLS requires). JPEG 2000 carries a sign in its SIZ
  marker, so signed frames go to it as signed integers, as DICOM J2K encoders do;
- every codec runs single-threaded (``numthreads=1``, ``nthreads=1``; CharLS and OpenJPH have no
  threads).

The general-purpose compressors (zstd, blosc2) see the whole volume as bytes in its native dtype.

Interface: ``encode(volume, bits) -> list of bytes-like chunks`` (one per frame, or one for the volume)
and ``decode(chunks, shape, dtype, bits) -> ndarray``; the size is the sum of the chunk lengths (no
DICOM item headers). ``available()`` returns None or the reason the anchor cannot run here.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

# --------------------------------------------------------------------------------------------------
# Stored bit patterns (DICOM PS3.5 8.1.1 and 8.2): what a codec without a sign receives.


def container_dtype(bits: int, signed: bool) -> np.dtype:
    """The smallest integer type that holds ``bits`` bits, as DICOM encoders size frames (pydicom
    ``EncodeRunner._get_frame_array``)."""
    if not 1 <= bits <= 16:
        raise ValueError(f"(0028,0101) 'Bits Stored' must be 1..16 for the anchors, found {bits}")
    if bits <= 8:
        return np.dtype(np.int8 if signed else np.uint8)
    return np.dtype(np.int16 if signed else np.uint16)


def fits_bits(volume: np.ndarray, bits: int, signed: bool) -> bool:
    """True when every value of ``volume`` is representable in ``bits`` bits."""
    if volume.size == 0:
        return True
    lo, hi = int(volume.min()), int(volume.max())
    if signed:
        return -(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1
    return lo >= 0 and hi <= (1 << bits) - 1


def needed_bits(volume: np.ndarray, signed: bool) -> int:
    """The fewest bits (at least 2, the JPEG-LS minimum) that hold every value of ``volume``."""
    if volume.size == 0:
        return 2
    lo, hi = int(volume.min()), int(volume.max())
    if signed:
        bits = max(lo.bit_length() if lo >= 0 else (-lo - 1).bit_length(), hi.bit_length()) + 1
    else:
        bits = hi.bit_length()
    return max(2, bits)


def to_stored_pattern(frame: np.ndarray, bits: int) -> np.ndarray:
    """The unsigned bit pattern a DICOM encoder hands to JPEG-LS / JPEG XL.

    Unsigned data pass through (in a container sized to ``bits``); signed data become their two's
    complement pattern masked to ``bits`` bits, so -1 in 12 bits is 0x0FFF, not 0xFFFF.
    """
    signed = frame.dtype.kind == "i"
    out_dtype = container_dtype(bits, signed=False)
    if not signed:
        return frame.astype(out_dtype, copy=False)
    wide = frame.astype(np.int32, copy=False) if frame.dtype.itemsize < 2 else frame
    unsigned = wide.view(np.dtype(f"u{wide.dtype.itemsize}"))
    mask = (1 << bits) - 1
    if bits == 8 * unsigned.dtype.itemsize:
        return unsigned.astype(out_dtype, copy=False)
    return (unsigned & mask).astype(out_dtype)


def from_stored_pattern(pattern: np.ndarray, bits: int, dtype: np.dtype) -> np.ndarray:
    """Inverse of :func:`to_stored_pattern`: sign extend from ``bits`` when ``dtype`` is signed."""
    dtype = np.dtype(dtype)
    if dtype.kind != "i":
        return pattern.astype(dtype, copy=False)
    wide = pattern.astype(np.int32)
    shift = 32 - bits
    return ((wide << shift) >> shift).astype(dtype)


def as_frames(volume: np.ndarray) -> np.ndarray:
    """(z,y,x) or (t,z,y,x) -> (frames, y, x), frame index t*Z + z, without copying."""
    if volume.ndim < 2:
        raise ValueError(f"a volume needs at least 2 dimensions, found shape {volume.shape}")
    return volume.reshape((-1,) + volume.shape[-2:])


def decode_per_frame(chunks, shape, dtype, decode_one) -> np.ndarray:
    """A volume of ``shape``/``dtype`` from one chunk per frame; ``decode_one(chunk, (rows, columns))``
    returns that frame's values."""
    out = np.empty(shape, dtype)
    frames = as_frames(out)
    for k, chunk in enumerate(chunks):
        frames[k] = decode_one(chunk, frames.shape[1:])
    return out


def j2k_declared_bits(chunks) -> int | None:
    """The bit depth of the first component of the first J2K codestream (JPEG 2000 and HTJ2K)."""
    return j2k_siz_components(chunks[0])[0][0] if chunks else None


# --------------------------------------------------------------------------------------------------
# Marker parsers: the proof that a stream declares the bit depth we claim.


def jpegls_frame_header(stream: bytes | bytearray | memoryview) -> dict:
    """Parse the JPEG-LS SOF-55 marker segment (ITU-T T.87 C.2.2): P, Y, X, Nf.

    Walks the marker segments from SOI, so a stream whose P says 16 for 12-bit data is caught.
    """
    data = bytes(stream)
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG-LS stream: no SOI marker (FFD8) at offset 0")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"expected a marker at offset {pos}, found 0x{data[pos]:02X}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if length < 2 or pos + 2 + length > len(data):
            raise ValueError(f"marker 0xFF{marker:02X} at offset {pos} has a bad length {length}")
        if marker == 0xF7:  # SOF55: Lf P Y X Nf (C_i H_i V_i Tq_i)*Nf
            if length < 8:
                raise ValueError(f"SOF55 segment too short ({length} bytes)")
            precision, rows, columns, components = struct.unpack_from(">BHHB", data, pos + 4)
            return {"P": precision, "Y": rows, "X": columns, "Nf": components}
        if marker == 0xDA:  # SOS before SOF: malformed
            break
        pos += 2 + length
    raise ValueError("no SOF55 marker (FFF7) before the scan")


def j2k_siz_components(stream: bytes | bytearray | memoryview) -> list[tuple[int, bool]]:
    """Parse the JPEG 2000 SIZ marker (ISO/IEC 15444-1 A.5.1): (precision, signed) per component."""
    data = bytes(stream)
    pos = data.find(b"\xff\x4f\xff\x51")  # SOC then SIZ: a raw codestream
    if pos < 0:
        raise ValueError("no SOC+SIZ (FF4F FF51) in the stream")
    base = pos + 4
    (length,) = struct.unpack_from(">H", data, base)
    (count,) = struct.unpack_from(">H", data, base + 2 + 2 + 32)  # Lsiz, Rsiz, 8 x 32-bit sizes
    if 38 + 3 * count != length:
        raise ValueError(f"SIZ length {length} does not match {count} components")
    out = []
    for i in range(count):
        ssiz = data[base + 38 + 3 * i]
        out.append(((ssiz & 0x7F) + 1, bool(ssiz & 0x80)))
    return out


# --------------------------------------------------------------------------------------------------
# Anchors


class AnchorError(RuntimeError):
    """An anchor produced a stream that breaks the benchmark's rules (e.g. a wrong bit depth)."""


class Anchor:
    """Base class: subclasses set name/description/per_slice/params and implement the codec calls."""

    name: str = ""
    description: str = ""
    per_slice: bool = True
    params: ClassVar[dict] = {}

    def available(self) -> str | None:
        return None

    def encode(self, volume: np.ndarray, bits: int) -> list:
        raise NotImplementedError

    def decode(self, chunks: Sequence, shape: tuple, dtype: np.dtype, bits: int) -> np.ndarray:
        raise NotImplementedError

    def declared_bits(self, chunks: Sequence) -> int | None:
        """The bit depth the first stream declares, where the format has one we parse."""
        return None

    def config(self) -> dict:
        return {"name": self.name, "description": self.description, "per_slice": self.per_slice,
                "params": dict(self.params)}


def _missing(module: str) -> str | None:
    try:
        __import__(module)
    except ImportError as exc:  # pragma: no cover - depends on the machine
        return f"{module} not importable: {exc}"
    return None


def _imagecodecs_without(codec: str, label: str) -> str | None:
    """Why imagecodecs' ``codec`` (e.g. "JPEG2K") cannot run here, or None when it can."""
    reason = _missing("imagecodecs")
    if reason:
        return reason
    import imagecodecs

    return None if getattr(imagecodecs, codec).available else f"imagecodecs built without {label}"


class JpegLS(Anchor):
    """CharLS through pyjpegls ``encode_buffer``, which writes P = the given Bits Stored.

    ``jpeg_ls.encode`` / ``encode_array`` are not used: they derive P from each slice's maximum
    (``ceil(log2(max+1))``) and turn slices with max <= 255 into 8-bit images, which no DICOM encoder
    does; ``imagecodecs.jpegls_encode`` writes P=16 for any uint16 input.
    """

    def __init__(self, near: int = 0):
        # NEAR > 0 is near-lossless (T.87 A.2): |decoded - coded pattern| <= NEAR. For signed data the
        # bound holds on the masked pattern, not on the signed values (benchmarks.near measures both).
        self.near = near
        self.name = "jpeg-ls" if near == 0 else f"jpeg-ls-near{near}"
        self.description = ("JPEG-LS lossless" if near == 0 else f"JPEG-LS near-lossless NEAR={near}") + \
            ", CharLS via pyjpegls, per slice, P = Bits Stored"
        self.params = {"near": near, "interleave": "none", "signed": "two's complement masked to Bits Stored"}

    def available(self):
        return _missing("jpeg_ls")

    def encode(self, volume, bits):
        import jpeg_ls

        frames = as_frames(volume)
        rows, columns = frames.shape[1:]
        out = []
        for frame in frames:
            pattern = to_stored_pattern(frame, bits)
            out.append(jpeg_ls.encode_buffer(pattern.tobytes(), rows, columns, 1, bits,
                                             lossy_error=self.near))
        if out:
            precision = jpegls_frame_header(out[0])["P"]
            if precision != max(bits, 2):
                raise AnchorError(f"JPEG-LS stream declares P={precision}, expected Bits Stored={bits}")
        return out

    def declared_bits(self, chunks):
        return jpegls_frame_header(chunks[0])["P"] if chunks else None

    def decode(self, chunks, shape, dtype, bits):
        import jpeg_ls

        pattern_dtype = np.dtype("<u2") if bits > 8 else np.dtype(np.uint8)

        def one(chunk, rows_columns):
            raw = np.frombuffer(jpeg_ls.decode_from_buffer(chunk), pattern_dtype).reshape(rows_columns)
            return from_stored_pattern(raw, bits, dtype)

        return decode_per_frame(chunks, shape, dtype, one)


class Jpeg2000(Anchor):
    """OpenJPEG through ``imagecodecs.jpeg2k_encode``: reversible 5/3, raw J2K codestream."""

    name = "j2k-openjpeg"
    description = "JPEG 2000 lossless (reversible 5/3), OpenJPEG via imagecodecs, per slice, true bit depth"
    params: ClassVar[dict] = {"codecformat": "J2K", "reversible": True, "mct": False, "numthreads": 1,
              "signed": "J2K signed component (Ssiz sign bit)"}

    def available(self):
        return _imagecodecs_without("JPEG2K", "JPEG2K")

    def encode(self, volume, bits):
        import imagecodecs

        signed = volume.dtype.kind == "i"
        cdtype = container_dtype(bits, signed)
        return [
            imagecodecs.jpeg2k_encode(frame.astype(cdtype, copy=False), codecformat="J2K", reversible=True,
                                      mct=False, bitspersample=bits, numthreads=1)
            for frame in as_frames(volume)
        ]

    def declared_bits(self, chunks):
        return j2k_declared_bits(chunks)

    def decode(self, chunks, shape, dtype, bits):
        import imagecodecs

        return decode_per_frame(chunks, shape, dtype, lambda c, _: imagecodecs.jpeg2k_decode(c, numthreads=1))


class HTJ2K(Anchor):
    """OpenJPH through ``imagecodecs.htj2k_encode``, reversible.

    imagecodecs 2026.3.6 has no bit-depth argument here: ``_htj2k.pyx`` sets the SIZ precision to the
    item size (8 or 16 bits). JPEG 2000 signals empty most significant bit planes per code block, so
    the cost is a few bytes per slice (measured with OpenJPEG: see benchmarks/README.md); the row's
    ``declared_bits`` shows what the stream says.
    """

    name = "htj2k-openjph"
    description = "HTJ2K lossless (reversible 5/3), OpenJPH via imagecodecs, per slice, precision = container"
    params: ClassVar[dict] = {"reversible": True, "signed": "J2K signed component (Ssiz sign bit)",
              "precision": "8 or 16 (imagecodecs passes no bit depth to OpenJPH)"}

    def available(self):
        reason = _missing("imagecodecs")
        if reason:
            return reason
        import imagecodecs

        if not hasattr(imagecodecs, "htj2k_encode") or not imagecodecs.HTJ2K.available:
            return "imagecodecs has no HTJ2K (OpenJPH) codec"
        return None

    def encode(self, volume, bits):
        import imagecodecs

        cdtype = container_dtype(bits, volume.dtype.kind == "i")
        return [imagecodecs.htj2k_encode(frame.astype(cdtype, copy=False), reversible=True)
                for frame in as_frames(volume)]

    def declared_bits(self, chunks):
        return j2k_declared_bits(chunks)

    def decode(self, chunks, shape, dtype, bits):
        import imagecodecs

        return decode_per_frame(chunks, shape, dtype, lambda c, _: imagecodecs.htj2k_decode(c))


class JpegXL(Anchor):
    """libjxl through ``imagecodecs.jpegxl_encode``: lossless (modular), ``bitspersample`` = Bits Stored."""

    description = "JPEG XL lossless, libjxl via imagecodecs, per slice, bits_per_sample = Bits Stored"

    def __init__(self, effort: int):
        self.effort = effort
        self.name = f"jpeg-xl-e{effort}"
        self.params = {"lossless": True, "effort": effort, "numthreads": 1,
                       "signed": "two's complement masked to Bits Stored"}

    def available(self):
        return _imagecodecs_without("JPEGXL", "JPEG XL")

    def encode(self, volume, bits):
        import imagecodecs

        return [
            imagecodecs.jpegxl_encode(to_stored_pattern(frame, bits), lossless=True, effort=self.effort,
                                      bitspersample=bits, numthreads=1)
            for frame in as_frames(volume)
        ]

    def decode(self, chunks, shape, dtype, bits):
        import imagecodecs

        return decode_per_frame(chunks, shape, dtype, lambda c, _: from_stored_pattern(
            imagecodecs.jpegxl_decode(c, numthreads=1), bits, dtype))


class Zstd(Anchor):
    """zstandard level 19 on the whole volume's bytes (single-threaded: ``threads=0``)."""

    name = "zstd-19"
    description = "zstd level 19 on the whole volume (native dtype bytes), python-zstandard"
    per_slice = False
    params: ClassVar[dict] = {"level": 19, "threads": 0}

    def available(self):
        return _missing("zstandard")

    def encode(self, volume, bits):
        import zstandard

        compressor = zstandard.ZstdCompressor(level=19, threads=0)
        return [compressor.compress(np.ascontiguousarray(volume).data)]

    def decode(self, chunks, shape, dtype, bits):
        import zstandard

        raw = zstandard.ZstdDecompressor().decompress(chunks[0])
        return np.frombuffer(raw, dtype).reshape(shape)


# c-blosc2 refuses a single buffer over ~2 GiB; bigger volumes go in pieces along the first axis.
_BLOSC2_PIECE_BYTES = 1 << 30


class Blosc2(Anchor):
    """c-blosc2 with the bitshuffle filter and zstd, on the whole volume."""

    name = "blosc2-bitshuffle-zstd"
    description = "blosc2 bitshuffle + zstd (clevel 5) on the whole volume, single thread"
    per_slice = False
    params: ClassVar[dict] = {"filters": ["BITSHUFFLE"], "codec": "ZSTD", "clevel": 5, "nthreads": 1,
              "typesize": "itemsize"}

    def available(self):
        return _missing("blosc2")

    def encode(self, volume, bits):
        import blosc2

        volume = np.ascontiguousarray(volume)
        per_row = max(1, volume[:1].nbytes)
        step = max(1, _BLOSC2_PIECE_BYTES // per_row)
        return [
            blosc2.compress2(volume[i:i + step], typesize=volume.dtype.itemsize, clevel=5,
                             filters=[blosc2.Filter.BITSHUFFLE], codec=blosc2.Codec.ZSTD, nthreads=1)
            for i in range(0, max(1, volume.shape[0]), step)
        ]

    def decode(self, chunks, shape, dtype, bits):
        import blosc2

        raw = b"".join(blosc2.decompress2(chunk, nthreads=1) for chunk in chunks)
        return np.frombuffer(raw, dtype).reshape(shape)


class Volcodec(Anchor):
    """The subject: ``volcodec.encode(arr, bits_stored=b, effort=e, near=d, threads=n)``, ``volcodec.decode``.

    Imported only when used, so the harness runs while the codec is being written. ``threads`` is
    the number of slabs coded at once (1 = the single-threaded figures every ratio compares).
    """

    per_slice = False
    description = "volcodec (this project), whole volume"

    def __init__(self, effort: int, threads: int = 1, near: int = 0):
        self.effort = effort
        self.threads = threads
        self.near = near
        self.name = (f"volcodec-e{effort}" + (f"-t{threads}" if threads != 1 else "")
                     + (f"-near{near}" if near else ""))
        self.params = {"effort": effort, "threads": threads, "near": near}

    def available(self):
        try:
            import volcodec

            volcodec.encode, volcodec.decode  # noqa: B018 - the attributes are what we need
        except Exception as exc:  # noqa: BLE001 - any failure of an incomplete package means "not usable"
            return f"volcodec not usable: {type(exc).__name__}: {exc}"
        return None

    def encode(self, volume, bits):
        import volcodec

        return [volcodec.encode(volume, bits_stored=bits, effort=self.effort, near=self.near,
                                threads=self.threads)]

    def decode(self, chunks, shape, dtype, bits):
        import volcodec

        return volcodec.decode(chunks[0], threads=self.threads)


def standard_anchors() -> list[Anchor]:
    """The anchors of a default run, JPEG-LS first (it is the reference of every ratio)."""
    return [JpegLS(), Jpeg2000(), HTJ2K(), JpegXL(1), JpegXL(3), JpegXL(7), Zstd(), Blosc2()]


REFERENCE = "jpeg-ls"


def select_anchors(names: Sequence[str] | None) -> list[Anchor]:
    """The standard anchors, or those named (in the standard order); unknown names raise."""
    anchors = standard_anchors()
    if names is None:
        return anchors
    known = {a.name for a in anchors}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown anchor(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return [a for a in anchors if a.name in names]
