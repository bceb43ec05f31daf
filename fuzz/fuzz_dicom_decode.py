"""Fuzz target: the DICOM decode path. The input (layout in dicom_input.py) becomes a small dataset in
volcodec's transfer syntax whose encapsulated Pixel Data holds the input's fragments; then pydicom
decodes it through our plugin (``ds.pixel_array``, ``pixel_array(index=k)``, ``iter_pixels``) and
``volcodec.dicom.decompress_dataset`` decodes it directly. Each input is tried as given and with the
CRCs of every head fragment's stream repaired.

pydicom catches whatever a decoder plugin raises, logs it with ``LOGGER.exception`` and raises its own
``RuntimeError("Unable to decode as exceptions were raised by all available plugins: ...")`` with no
``__cause__`` (pydicom/pixels/decoders/base.py, ``DecodeRunner._decode_frame``). The target therefore
reads the plugin's exceptions off pydicom's log records and accepts that RuntimeError only when every
one of them is a VolcodecError; any other cause is re-raised as the finding. The one other exception
accepted is the ValueError pydicom raises itself, before any plugin is called, when the encapsulation
does not hold the frame asked for (Basic Offset Table too short, fewer fragments than Number of
Frames): pydicom's behaviour for every transfer syntax, which no plugin can change; a ValueError whose
traceback passes through volcodec is a finding.

Run: NUMBA_BOUNDSCHECK=1 python fuzz/fuzz_dicom_decode.py fuzz/work/dicom_decode fuzz/corpus_dicom
"""

from __future__ import annotations

import logging
from pathlib import Path

import atheris
import numpy as np

from _harness import VolcodecError, frames_to_try, main

import pydicom  # noqa: E402  (before volcodec.dicom, which then registers its plugin at import)
from pydicom.pixels import iter_pixels, pixel_array  # noqa: E402

with atheris.instrument_imports(include=["volcodec.dicom"]):
    import volcodec.dicom.transcode  # noqa: E402

from dicom_input import (Attributes, PluginExceptions, build_dataset, fix_fragment_checksums,  # noqa: E402
                         parse_input)
from volcodec.dicom import decompress_dataset  # noqa: E402

VOLCODEC_DIR = str(Path(volcodec.dicom.transcode.__file__).resolve().parents[1])
WRAPPED = "Unable to decode as exceptions were raised by all available plugins"

_plugin_exceptions = PluginExceptions()
logging.getLogger("pydicom").addHandler(_plugin_exceptions)


def guarded(call):
    """``call()``, or None when it fails with a VolcodecError (directly, or inside pydicom's wrapper).
    Raises anything else, and any non-VolcodecError a plugin raised even if pydicom recovered."""
    _plugin_exceptions.seen.clear()
    try:
        out = call()
    except VolcodecError:
        out = None
    except RuntimeError as exc:
        if WRAPPED not in str(exc) or not _plugin_exceptions.seen:
            raise
        out = None
    except ValueError as exc:
        if _passes_through_volcodec(exc):
            raise
        out = None
    for cause in _plugin_exceptions.seen:
        if not isinstance(cause, VolcodecError):
            raise cause
    return out


def _passes_through_volcodec(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith(VOLCODEC_DIR):
            return True
        tb = tb.tb_next
    return False


def shape_of(attrs: Attributes, frames: int) -> tuple[int, ...]:
    """The array shape pydicom returns for ``frames`` frames."""
    shape = (attrs.rows, attrs.columns) + ((3,) if attrs.samples == 3 else ())
    return shape if frames == 1 else (frames,) + shape


def check(attrs: Attributes, frags: list[bytes]) -> None:
    n, frame_shape = attrs.frames, shape_of(attrs, 1)
    full = guarded(lambda: build_dataset(attrs, frags).pixel_array)
    if full is not None:
        # pydicom appends whole frames found beyond Number of Frames (allow_excess_frames, with a warning)
        assert full.shape == shape_of(attrs, n) or full.shape[1:] == frame_shape and len(full) > n, \
            (full.shape, attrs)
        full = full.reshape((-1,) + frame_shape)
    for k in frames_to_try(b"".join(frags), n):
        one = guarded(lambda: pixel_array(build_dataset(attrs, frags), index=k))
        if one is not None:
            assert one.shape == frame_shape, (one.shape, attrs)
            if full is not None:
                np.testing.assert_array_equal(one, full[k])
    walked = []
    guarded(lambda: walked.extend(iter_pixels(build_dataset(attrs, frags))))
    for k, frame in enumerate(walked):
        assert frame.shape == frame_shape, (frame.shape, attrs)
        if full is not None and k < len(full):
            np.testing.assert_array_equal(frame, full[k])
    plain = guarded(lambda: decompress_dataset(build_dataset(attrs, frags)))
    if plain is not None:
        assert plain.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        words = plain.pixel_array
        assert words.shape == shape_of(attrs, n), (words.shape, attrs)
        if full is not None:
            np.testing.assert_array_equal(words.reshape((-1,) + frame_shape), full[:n])


def test_one_input(data: bytes) -> None:
    parsed = parse_input(data)
    if parsed is None:
        return
    attrs, frags = parsed
    check(attrs, frags)
    fixed = [fix_fragment_checksums(f) for f in frags]
    if fixed != frags:
        check(attrs, fixed)


if __name__ == "__main__":
    main(test_one_input)
