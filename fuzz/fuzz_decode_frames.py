"""Fuzz target: volcodec.decode_frames on arbitrary bytes and with checksums repaired; when the
whole stream decodes, the frames must equal the same frames of ``decode``.

Run: NUMBA_BOUNDSCHECK=1 python fuzz/fuzz_decode_frames.py fuzz/work/decode_frames fuzz/corpus
"""

from __future__ import annotations

import numpy as np

from _harness import MAX_VOXELS, VolcodecError, fix_checksums, frames_to_try, main, volcodec


def test_one_input(data: bytes) -> None:
    for buf in (data, fix_checksums(data)):
        try:
            hdr = volcodec.read_header(buf, max_voxels=MAX_VOXELS)
        except VolcodecError:
            try:
                volcodec.decode_frames(buf, [0], max_voxels=MAX_VOXELS)
            except VolcodecError:
                continue
            raise AssertionError("decode_frames accepted a stream read_header refuses")
        idx = frames_to_try(buf, hdr.n_frames)
        try:
            frames = volcodec.decode_frames(buf, idx, max_voxels=MAX_VOXELS)
        except VolcodecError:
            frames = None
        else:
            assert frames.shape == (len(idx),) + hdr.shape[-2:]
        try:
            got, damaged = volcodec.decode_frames(buf, idx, max_voxels=MAX_VOXELS, strict=False)
        except VolcodecError:
            got = None
        if got is not None:
            assert damaged.shape == (len(idx),) and not got[damaged].any()
            if frames is not None:
                assert not damaged.any()
                np.testing.assert_array_equal(got, frames)
        try:
            whole = volcodec.decode(buf, max_voxels=MAX_VOXELS)
        except VolcodecError:
            continue
        assert frames is not None, "decode succeeded where decode_frames failed"
        np.testing.assert_array_equal(frames, whole.reshape(-1, *whole.shape[-2:])[idx])


if __name__ == "__main__":
    main(test_one_input)
