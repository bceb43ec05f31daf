"""The one place numba options live.

Every kernel is decorated with :func:`kernel`. ``cache=True`` keeps compiled code between runs
(first-call latency matters to users); ``VOLCODEC_BOUNDSCHECK=1`` or ``NUMBA_BOUNDSCHECK=1`` turns
bounds checks on for fuzzing (an out-of-bounds index then raises ``IndexError``);
``NUMBA_DISABLE_JIT=1`` runs everything as plain Python for coverage.

Bounds checks and the cache: numba's cache index keys on the signature and the bytecode, not on
the compile flags, so with ``cache=True`` a build cached without checks would be loaded silently
under ``NUMBA_BOUNDSCHECK=1`` (and a checked build would be served later to normal runs). When
bounds checks are on, kernels are therefore compiled fresh and never cached.

Cache safety: numba keys a cached function on its own source file only, but our kernels inline
helpers from other files (the scan kernel inlines the range coder). A change to one kernel file
could then leave a stale compiled scan in the cache, and stale coder code means wrong pixels.
So the cache stamp of every function compiled by :func:`kernel` (ours, or a test's driver that
inlines ours) includes a hash of all kernel sources and this file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba

BOUNDSCHECK = "1" in (os.environ.get("VOLCODEC_BOUNDSCHECK", ""), os.environ.get("NUMBA_BOUNDSCHECK", ""))

OPTIONS = {"cache": not BOUNDSCHECK, "nogil": True, "boundscheck": BOUNDSCHECK or None,
           "error_model": "numpy"}

_HERE = Path(__file__).resolve().parent
_SOURCES = sorted((_HERE / "kernels").glob("*.py")) + [Path(__file__).resolve()]
SOURCE_STAMP = hashlib.sha256(b"".join(p.read_bytes() for p in _SOURCES)).hexdigest()


def _install_cache_stamp() -> bool:
    """Make numba's cache locators use SOURCE_STAMP for volcodec's kernel files."""
    try:
        from numba.core import caching

        bases = (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator,
                 caching.UserWideCacheLocator)
        registry = caching.CacheImpl._locator_classes
    except (ImportError, AttributeError):  # numba internals moved: keep numba's own stamps
        return False
    made = []
    for base in bases:
        def from_function(cls, py_func, py_file, _base=base):
            if str(Path(py_file).resolve()) not in _COMPILED_FROM:
                return None
            return _base.from_function.__func__(cls, py_func, py_file)

        def get_source_stamp(self, _base=base):
            # the file's own stamp (numba's) plus every kernel source it may inline
            return (_base.get_source_stamp(self), SOURCE_STAMP)

        made.append(type("Volcodec" + base.__name__, (base,), {
            "get_source_stamp": get_source_stamp,
            "from_function": classmethod(from_function),
        }))
    registry[:0] = [c for c in made if c.__name__ not in {r.__name__ for r in registry}]
    return True


# files holding functions compiled by kernel(): ours, and any caller's (tests, tools) that may
# inline our kernels
_COMPILED_FROM: set[str] = {str(p) for p in _SOURCES}
CACHE_STAMPED = _install_cache_stamp()


def kernel(func):
    """Compile ``func`` with the project's numba options."""
    _COMPILED_FROM.add(str(Path(func.__code__.co_filename).resolve()))
    return numba.njit(**OPTIONS)(func)


def inline(func):
    """Like :func:`kernel`, but numba copies the body into each caller before typing, so a caller
    that passes a constant (say ``dec=1``) gets a copy where that constant is known: the branches
    it decides fold away and do not take registers from the code that runs."""
    _COMPILED_FROM.add(str(Path(func.__code__.co_filename).resolve()))
    return numba.njit(inline="always", **OPTIONS)(func)
