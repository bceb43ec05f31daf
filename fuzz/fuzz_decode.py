"""Fuzz target: volcodec.decode, strict and in recovery mode (strict=False), on arbitrary bytes
and on the same bytes with every checksum repaired (so mutations reach the kernels).

Run: NUMBA_BOUNDSCHECK=1 python fuzz/fuzz_decode.py fuzz/work/decode fuzz/corpus
"""

from __future__ import annotations

import numpy as np

from _harness import MAX_VOXELS, VolcodecError, fix_checksums, main, volcodec


def test_one_input(data: bytes) -> None:
    try:
        volcodec.decode(data, max_voxels=MAX_VOXELS)
    except VolcodecError:
        pass
    fixed = fix_checksums(data)
    try:
        hdr = volcodec.read_header(fixed, max_voxels=MAX_VOXELS)
        whole = volcodec.decode(fixed, max_voxels=MAX_VOXELS)
    except VolcodecError:
        whole = None
    else:
        assert whole.shape == hdr.shape and whole.dtype == hdr.dtype.newbyteorder("=")
    try:
        got, damaged = volcodec.decode(fixed, max_voxels=MAX_VOXELS, strict=False)
    except VolcodecError:
        # recovery mode raises only when no slab can be located: the header or table
        assert whole is None
        return
    assert damaged.shape == got.shape[:-2] and damaged.dtype == bool
    assert not got[damaged].any(), "damaged frames must be zero"
    if whole is not None:
        assert not damaged.any()
        np.testing.assert_array_equal(got, whole)


if __name__ == "__main__":
    main(test_one_input)
