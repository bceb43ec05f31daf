"""DICOM side of volcodec: our transfer syntaxes, the pydicom plugin, and transcoding.

``import volcodec.dicom`` registers volcodec's transfer syntaxes with pydicom (at once if pydicom is
already imported, else as soon as it is), so ``dcmread(f).pixel_array``, ``ds.decompress()`` and ``ds.compress(VOLCODEC_LOSSLESS)``
work. ``volcodec.dicom.series`` reads classic single-frame series, Enhanced multi-frame objects and
Siemens mosaics into stored-value volumes. pydicom and highdicom are imported lazily inside the modules
that need them.
"""

import importlib.abc
import importlib.util
import sys

from ..errors import DicomError
from .uid import VOLCODEC_LOSSLESS, VOLCODEC_NEAR_LOSSLESS


def register() -> None:
    """Register the pydicom plugins (done on import when pydicom is present)."""
    from .plugin import register as _register

    _register()


class _RegisterOnImport(importlib.abc.MetaPathFinder):
    """Registers the plugins right after pydicom is first imported, so that importing volcodec.dicom
    (and the series readers) does not import pydicom itself."""

    def find_spec(self, name, path, target=None):
        if name != "pydicom":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_register(module):
            exec_module(module)
            try:
                register()
            except DicomError:  # unsupported pydicom: the DICOM functions raise it when called
                pass

        spec.loader.exec_module = exec_and_register
        return spec


if "pydicom" in sys.modules:
    try:
        register()
    except DicomError:
        pass
elif not any(isinstance(f, _RegisterOnImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterOnImport())


def __getattr__(name):
    # transcoding functions load lazily: they pull in more of pydicom
    if name in ("compress_dataset", "decompress_dataset"):
        from . import transcode

        return getattr(transcode, name)
    raise AttributeError(name)


__all__ = ["VOLCODEC_LOSSLESS", "VOLCODEC_NEAR_LOSSLESS", "compress_dataset", "decompress_dataset", "register"]
