"""DICOM side of volcodec: our transfer syntaxes, the pydicom plugin, and transcoding.

``import volcodec.dicom`` registers volcodec's transfer syntaxes with pydicom (when pydicom is
installed), so ``dcmread(f).pixel_array``, ``ds.decompress()`` and ``ds.compress(VOLCODEC_LOSSLESS)``
work. ``volcodec.dicom.series`` reads classic single-frame series, Enhanced multi-frame objects and
Siemens mosaics into stored-value volumes. pydicom and highdicom are imported lazily inside the modules
that need them.
"""

from .uid import VOLCODEC_LOSSLESS, VOLCODEC_NEAR_LOSSLESS


def register() -> None:
    """Register the pydicom plugins (done on import when pydicom is present)."""
    from .plugin import register as _register

    _register()


try:
    import pydicom as _pydicom  # noqa: F401
except ImportError:  # pragma: no cover - the dicom extra is not installed
    pass
else:
    register()


def __getattr__(name):
    # transcoding functions load lazily: they pull in more of pydicom
    if name in ("compress_dataset", "decompress_dataset"):
        from . import transcode

        return getattr(transcode, name)
    raise AttributeError(name)


__all__ = ["VOLCODEC_LOSSLESS", "VOLCODEC_NEAR_LOSSLESS", "compress_dataset", "decompress_dataset", "register"]
