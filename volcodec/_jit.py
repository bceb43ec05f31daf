"""The one place numba options live.

Every kernel is decorated with :func:`kernel`. ``cache=True`` keeps compiled code between runs
(first-call latency matters to users); ``VOLCODEC_BOUNDSCHECK=1`` (or ``NUMBA_BOUNDSCHECK=1``)
turns bounds checks on for fuzzing; ``NUMBA_DISABLE_JIT=1`` runs everything as plain Python for
coverage.
"""

from __future__ import annotations

import os

import numba

_BOUNDSCHECK = os.environ.get("VOLCODEC_BOUNDSCHECK", "") == "1" or None

OPTIONS = dict(cache=True, nogil=True, boundscheck=_BOUNDSCHECK, error_model="numpy")


def kernel(func):
    """Compile ``func`` with the project's numba options."""
    return numba.njit(**OPTIONS)(func)
