"""Fuzz target: volcodec.read_header on arbitrary bytes (as given, then with checksums repaired).

Run: NUMBA_BOUNDSCHECK=1 python fuzz/fuzz_read_header.py fuzz/work/read_header fuzz/corpus
"""

from __future__ import annotations

from _harness import MAX_VOXELS, VolcodecError, fix_checksums, main, volcodec


def test_one_input(data: bytes) -> None:
    for buf in (data, fix_checksums(data)):
        try:
            hdr = volcodec.read_header(buf, max_voxels=MAX_VOXELS)
        except VolcodecError:
            continue
        # what a validated header promises
        t, z, y, x = hdr.tzyx
        assert t * z * y * x <= MAX_VOXELS
        assert hdr.n_slabs == len(hdr.slabs) >= 1
        for off, length, _ in hdr.slabs:
            assert 1 <= length and off + length <= len(buf)
        covered = sum(len(tr) * len(zr) for tr, zr in map(hdr.slab_frames, range(hdr.n_slabs)))
        assert covered == hdr.n_frames


if __name__ == "__main__":
    main(test_one_input)
