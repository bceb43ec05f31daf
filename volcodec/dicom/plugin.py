"""pydicom pixel-data plugins for volcodec's transfer syntaxes, and their registration.

:func:`register` (called by ``import volcodec.dicom``) makes ``dcmread(f).pixel_array``,
``ds.pixel_array_options(index=k)``, ``pydicom.pixels.iter_pixels``, ``ds.decompress()`` and
``ds.compress(VOLCODEC_LOSSLESS)`` work. pydicom 3 has no public call that adds a decoder for a new
transfer syntax, so this inserts into its private ``_PIXEL_DATA_DECODERS`` / ``_PIXEL_DATA_ENCODERS``
tables, only on the pydicom versions tested (:data:`SUPPORTED_PYDICOM`); on others it raises
:class:`~volcodec.errors.DicomError` saying so.

pydicom hands a decoder one frame's fragment at a time; a member fragment names its slab's head
fragment, which the plugin fetches from ``runner.src`` (the whole encapsulated Pixel Data). A
:class:`~volcodec.dicom.fragment.SlabCache` on the runner keeps the last slab, so decoding every frame
decodes every slab once. The encoder is called frame by frame too, in order: at the first frame of
each run of ``slab`` frames it codes the run as one slab and hands out the fragments one per call.
Near-lossless output changes identifying attributes, which pydicom's ``compress`` does not do, so
only lossless encoding is offered here: use :func:`volcodec.dicom.compress_dataset` for near > 0.
"""

from __future__ import annotations

import threading

import numpy as np

from ..codec import DEFAULT_EFFORT
from ..errors import DicomError
from . import fragment
from .uid import NAMES, VOLCODEC_LOSSLESS, TRANSFER_SYNTAXES, transfer_syntax

#: pydicom major.minor versions whose private tables this module is tested against.
SUPPORTED_PYDICOM = ((3, 0),)
LABEL = "volcodec"
#: DICOM frames per slab when pydicom's ``compress`` drives the encoder (frames in file order).
DEFAULT_FRAMES_PER_SLAB = 16

DECODER_DEPENDENCIES = {uid: ("numpy", "numba") for uid in TRANSFER_SYNTAXES}
ENCODER_DEPENDENCIES = {VOLCODEC_LOSSLESS: ("numpy", "numba")}

_registered = False
_register_lock = threading.Lock()  # the DICOM CLI compresses files on several threads


def is_available(uid: str) -> bool:
    return uid in DECODER_DEPENDENCIES


def element(keyword: str) -> str:
    from .series import element_name

    return element_name(keyword)


def words_dtype(bits_allocated: int, pixel_representation: int) -> np.dtype:
    """The dtype of the stored words: Bits Allocated 8, 16 or 32, signed per Pixel Representation."""
    if bits_allocated not in (8, 16, 32):
        raise DicomError(f"{element('BitsAllocated')} is {bits_allocated}; volcodec codes 8, 16 or 32")
    if pixel_representation not in (0, 1):
        raise DicomError(f"{element('PixelRepresentation')} must be 0 or 1, found {pixel_representation}")
    return np.dtype(f"<{'iu'[pixel_representation == 0]}{bits_allocated // 8}")


def _check_frame(words: np.ndarray, runner) -> None:
    s, y, x = words.shape
    for keyword, expected, found in (("Rows", runner.rows, y), ("Columns", runner.columns, x),
                                     ("SamplesPerPixel", runner.samples_per_pixel, s)):
        if expected != found:
            raise DicomError(f"{element(keyword)} is {expected} but the volcodec frame has {found}")
    want = words_dtype(runner.bits_allocated, runner.pixel_representation)
    if words.dtype.newbyteorder("<") != want:
        raise DicomError(f"{element('BitsAllocated')} {runner.bits_allocated} and "
                         f"{element('PixelRepresentation')} {runner.pixel_representation} expect {want.name} "
                         f"words but the volcodec stream holds {words.dtype.name}")


def frame_bytes(words: np.ndarray, planar_configuration: int) -> bytes:
    """(samples, Y, X) words as the frame's bytes: little-endian, samples interleaved unless
    Planar Configuration is 1."""
    if words.shape[0] > 1 and not planar_configuration:
        words = words.transpose(1, 2, 0)
    return np.ascontiguousarray(words, words.dtype.newbyteorder("<")).tobytes()


# ----------------------------------------------------------------------------- decoder
def _encapsulated_frame(runner, i: int, why: str) -> bytes:
    from pydicom.encaps import get_frame

    try:
        return get_frame(runner.src, i, number_of_frames=runner.number_of_frames,
                         extended_offsets=runner.extended_offsets)
    except ValueError as exc:  # pydicom: the offset table or fragments do not hold frame i
        raise DicomError(f"{element('PixelData')} does not hold frame {i} ({why}): {exc}") from None


def _decode_frame(src: bytes, runner) -> bytes:
    if "_volcodec_cache" not in runner.__dict__ and not runner.is_binary:
        # pydicom walks the frames the offset table lists; one shorter than Number of Frames would end
        # ds.pixel_array with a bare StopIteration (which silently stops a caller's map or generator).
        # A file source (iter_pixels(path)) is skipped: pydicom has read past its start by now.
        _encapsulated_frame(runner, runner.number_of_frames - 1,
                            f"the last of {element('NumberOfFrames')} {runner.number_of_frames}")
    frag = fragment.parse(src)
    cache = runner.__dict__.setdefault("_volcodec_cache", fragment.SlabCache())

    def fetch(i: int) -> bytes:
        if i >= runner.number_of_frames:
            raise DicomError(f"frame {frag.frame} names frame {i} as its slab head, beyond "
                             f"{element('NumberOfFrames')} {runner.number_of_frames}")
        return _encapsulated_frame(runner, i, f"the slab head of frame {frag.frame}")

    words = cache.frame(frag, fetch)
    _check_frame(words, runner)
    pc = runner.planar_configuration if words.shape[0] > 1 else 0
    return frame_bytes(words, pc)


# ----------------------------------------------------------------------------- encoder
def frame_words(data, index: int, rows: int, columns: int, samples: int, planar: int, dtype) -> np.ndarray:
    """Frame ``index`` of native Pixel Data (bytes or an array), as (samples, Y, X) words."""
    if isinstance(data, np.ndarray):
        arr = data if data.ndim == (3 if samples == 1 else 4) else data[None]
        f = np.asarray(arr[index])
        if f.dtype != dtype:
            f = f.astype(dtype)
        return f.reshape(1, rows, columns) if samples == 1 else np.moveaxis(f, -1, 0)
    n = rows * columns * samples
    f = np.frombuffer(data, dtype, count=n, offset=index * n * dtype.itemsize)
    if samples == 1:
        return f.reshape(1, rows, columns)
    return f.reshape(samples, rows, columns) if planar else f.reshape(rows, columns, samples).transpose(2, 0, 1)


def _encode_frame(src: bytes, runner) -> bytes:
    state = runner.__dict__
    index = state.get("_volcodec_next", 0)
    state["_volcodec_next"] = index + 1
    pending = state.setdefault("_volcodec_pending", {})
    if index not in pending:
        n = runner.number_of_frames
        per = int(runner.get_option("slab", DEFAULT_FRAMES_PER_SLAB))
        effort = int(runner.get_option("effort", DEFAULT_EFFORT))
        dtype = words_dtype(runner.bits_allocated, runner.pixel_representation)
        samples = runner.samples_per_pixel
        members = list(range(index, min(n, index + per)))
        # read the words from the source, not ``src``: pydicom narrows 16-bit words to 8 bits when
        # Bits Stored <= 8, which would drop bits above Bits Stored
        frames = [frame_words(runner.src, j, runner.rows, runner.columns, samples,
                              runner.planar_configuration if samples > 1 else 0, dtype) for j in members]
        block = np.stack(frames)  # (n, samples, Y, X)
        if samples == 1:
            block = block.reshape((1, len(members)) + block.shape[-2:])
        frags = fragment.encode_slab(block, members, samples, bits_stored=runner.bits_stored, effort=effort)
        pending.update(zip(members, frags))
    return pending.pop(index)


# ----------------------------------------------------------------------------- registration
def pydicom_version() -> tuple[int, int]:
    import pydicom

    major, minor = (int(p) for p in pydicom.__version__.split(".")[:2])
    return major, minor


def register() -> None:
    """Register our transfer syntaxes, decoders and encoder with pydicom (idempotent, thread-safe)."""
    if _registered:
        return
    with _register_lock:
        if not _registered:
            _register()


def _register() -> None:
    global _registered
    try:
        import pydicom  # noqa: F401
    except ImportError:
        raise DicomError("pydicom is not installed: pip install 'volcodec[dicom]'") from None
    if pydicom_version() not in SUPPORTED_PYDICOM:
        raise DicomError(f"pydicom {pydicom.__version__} is not supported by volcodec's DICOM plugin "
                         f"(tested: {', '.join('%d.%d' % v for v in SUPPORTED_PYDICOM)}); it relies on "
                         "pydicom's private decoder tables")
    from pydicom.pixels.decoders import base as dbase
    from pydicom.pixels.encoders import base as ebase
    from pydicom.uid import register_transfer_syntax

    tables = (getattr(dbase, "_PIXEL_DATA_DECODERS", None), getattr(ebase, "_PIXEL_DATA_ENCODERS", None))
    if not all(isinstance(t, dict) for t in tables):
        raise DicomError(f"pydicom {pydicom.__version__} lacks the decoder/encoder tables volcodec needs")
    for uid in TRANSFER_SYNTAXES:
        ts = transfer_syntax(uid)
        register_transfer_syntax(ts)
        dec = dbase.Decoder(ts)
        dec.UID.set_private_encoding(False, True)  # Decoder keeps its own copy of the UID
        dec.add_plugin(LABEL, (__name__, "_decode_frame"))
        tables[0][ts] = (dec, "volcodec")
        if uid == VOLCODEC_LOSSLESS:
            enc = ebase.Encoder(ts)
            enc.UID.set_private_encoding(False, True)
            enc.add_plugin(LABEL, (__name__, "_encode_frame"))
            tables[1][ts] = (enc, "volcodec")
    _set_names()
    _tag_uid_objects()
    _registered = True


def _tag_uid_objects() -> None:
    """Make every ``UID`` object pydicom creates for our syntaxes carry their encoding.

    pydicom 3.0 marks a private transfer syntax on the UID *object*; ``dcmread`` leaves
    ``file_meta.TransferSyntaxUID`` a plain UID, and ``iter_pixels(path)`` rebuilds one from the file
    meta, so ``ds.decompress()`` and ``iter_pixels`` would say "UID is not a transfer syntax". Wrapping
    ``UID.__new__`` (for our two strings only) is the one place all those paths meet.
    """
    from pydicom.uid import UID

    if getattr(UID.__new__, "_volcodec", False):
        return
    original = UID.__new__
    ours = frozenset(TRANSFER_SYNTAXES)

    def __new__(cls, val, *args, **kwargs):
        uid = original(cls, val, *args, **kwargs)
        if uid in ours and not hasattr(uid, "_PRIVATE_TS_ENCODING"):
            uid._PRIVATE_TS_ENCODING = (False, True)
        return uid

    __new__._volcodec = True
    UID.__new__ = staticmethod(__new__)


def _set_names() -> None:
    from pydicom._uid_dict import UID_dictionary

    for uid, name in NAMES.items():
        UID_dictionary.setdefault(uid, (name, "Transfer Syntax", "", "", ""))
