"""Write the fuzzers' seed corpus: small valid streams covering what the decoder can meet.

    python fuzz/make_corpus.py            # (re)writes fuzz/corpus/*.vlc

Each seed is a few hundred bytes at most (libFuzzer mutates small inputs fastest) and every
decoding path is represented: each dtype, 3-D and 4-D, several slabs, coded and raw slabs, the
mixing efforts (6..9), the second reference (8, 9) and a high-bits plane. The volumes are seeded,
so the files are reproducible; tests/test_fuzz.py checks that each still decodes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import volcodec  # noqa: E402


def seeds() -> dict[str, tuple[np.ndarray, dict]]:
    rng = np.random.default_rng(6)
    g = np.indices((4, 5, 6)).sum(0)
    smooth = (g * 9 + rng.integers(0, 4, g.shape)).astype(np.int16) - 30
    g4 = np.indices((2, 3, 4, 5)).sum(0)
    series = (g4 * 5 + rng.integers(0, 3, g4.shape)).astype(np.uint16)
    high = series.copy()
    high[0, 1, 2, 3] = 0xF00F  # above bits_stored = 10: a high-bits plane
    noise = rng.integers(0, 256, (2, 4, 4), dtype=np.uint8)
    return {
        "int16_e1": (smooth, {"effort": 1, "slab": 2}),
        "int16_e5": (smooth, {"effort": 5, "slab": 3}),
        "int16_e7_mixing": (smooth, {"effort": 7}),
        "uint16_4d_e2": (series, {"effort": 2, "slab": 2, "slab_t": 1}),
        "uint16_4d_e9_two_refs": (series, {"effort": 9, "slab": 3, "slab_t": 2}),
        "uint16_4d_plane": (high, {"effort": 3, "bits_stored": 10, "slab": 2, "slab_t": 2}),
        "uint8_raw_slab": (noise, {"effort": 2, "slab": 1}),
        "int8_bits3": ((g % 7 - 3).astype(np.int8), {"effort": 4, "bits_stored": 3, "slab": 4}),
        "uint32_e6": ((g * 100_003).astype(np.uint32), {"effort": 6}),
        "int32_1voxel": (np.array([[[-7]]], np.int32), {"effort": 2}),
    }


def main() -> int:
    out = HERE / "corpus"
    out.mkdir(exist_ok=True)
    for name, (array, kw) in seeds().items():
        buf = volcodec.encode(array, **kw)
        assert np.array_equal(volcodec.decode(buf), array)
        (out / f"{name}.vlc").write_bytes(buf)
        print(f"{name}.vlc  {len(buf)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
