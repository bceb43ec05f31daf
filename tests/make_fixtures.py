"""Write the write-once decoding fixtures: tests/fixtures/v{FORMAT_VERSION}/<name>.vlc + <name>.npy.

Run once per format version, when the byte layout of that version is frozen::

    python tests/make_fixtures.py            # writes tests/fixtures/v<FORMAT_VERSION>/
    python tests/make_fixtures.py --out DIR  # elsewhere (the test of this script does that)

Existing files are never overwritten (exclusive create): a fixture records what a released decoder
must still read, so it changes only by adding a new name or a new version directory. The script
exits with status 1 when it refused to write something. tests/test_format.py decodes every
fixture on every run and compares it with its .npy.

The volumes are small, synthetic and seeded, so the script is reproducible; they cover each dtype,
3-D and 4-D, effort 1 (from version 2 the fast scan, from 3 its mode 3, from 4 its mode 4 with
runs, from 5 its mode 5 with 8 tokens) and 9, words with bits above bits_stored (the high-bits
plane, signed and unsigned), a raw-fallback noise slab beside a coded one, and near-lossless
streams (whose .npy is the decoded volume, within near of the input).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

import volcodec

HERE = Path(__file__).resolve().parent


def _ct(shape, seed, lo=-1024, hi=1500):
    """A CT-like volume: air outside an ellipse of soft tissue with a bright rim, plus noise."""
    rng = np.random.default_rng(seed)
    *lead, y, x = shape
    yy, xx = np.mgrid[0:y, 0:x]
    r = ((yy - y / 2) / (0.42 * y)) ** 2 + ((xx - x / 2) / (0.38 * x)) ** 2
    base = np.where(r < 1, 40.0, -1000.0) + np.where((r > 0.8) & (r < 1), 900.0, 0.0)
    vol = np.broadcast_to(base, shape) + rng.normal(0, 12, shape)
    vol = vol + np.arange(int(np.prod(lead))).reshape(tuple(lead) + (1, 1)) * 3.0
    return np.clip(np.rint(vol), lo, hi)


def _volumes():
    rng = np.random.default_rng(20240601)
    ct = _ct((6, 24, 20), 1).astype(np.int16)
    mr = (_ct((3, 4, 16, 16), 2, lo=-1024, hi=3071) + 1024).astype(np.uint16)  # 12-bit, 4-D
    u8 = np.clip(_ct((5, 12, 16), 3) / 8 + 128, 0, 255).astype(np.uint8)
    i8 = np.clip(_ct((4, 10, 9), 4) / 10, -128, 127).astype(np.int8)
    garbage_u = mr[0].copy()
    garbage_u[:, ::5, ::3] |= np.uint16(0xF000)  # bits above bits_stored = 12
    garbage_i = ct[:3].copy()
    garbage_i.flat[::7] = rng.integers(-32768, 32767, garbage_i.flat[::7].shape, endpoint=True)
    garbage_i.flat[0], garbage_i.flat[1] = 32767, -32768
    noise = np.empty((4, 8, 8), np.uint16)
    noise[:2] = (_ct((2, 8, 8), 5) + 1024).astype(np.uint16)
    noise[2:] = rng.integers(0, 1 << 16, (2, 8, 8))  # this slab falls back to raw words
    u32 = (_ct((2, 2, 6, 7), 6).astype(np.int64) * 100_000 + 2_000_000_000).astype(np.uint32)
    i32 = rng.integers(-(1 << 31), (1 << 31) - 1, (2, 5, 6), endpoint=True).astype(np.int32)
    i32[0] = _ct((5, 6), 7).astype(np.int32) * 50_000
    padded = ct.copy()  # a scanner's padding outside the field of view: flat, for run mode
    yy, xx = np.mgrid[0:24, 0:20]
    padded[:, ((yy - 11.5) / 12) ** 2 + ((xx - 9.5) / 10) ** 2 > 0.9] = -2048
    padded[2, 5:9, 4:15] = 300  # flat inside too, with a different value
    return {
        # name: (array, encode keywords)
        "ct_int16_3d": (ct, {"bits_stored": 12, "slab": 4}),
        "ct_int16_effort1": (ct, {"bits_stored": 12, "effort": 1, "slab": 4}),
        "ct_int16_effort9": (ct, {"bits_stored": 12, "effort": 9, "slab": 4}),
        "mr_uint16_12bit_4d": (mr, {"bits_stored": 12, "effort": 9, "slab": 2, "slab_t": 2}),
        "uint8_3d": (u8, {"effort": 1}),
        "int8_3d_odd": (i8, {"effort": 3, "slab": 3}),
        "garbage_high_bits_uint16": (garbage_u, {"bits_stored": 12, "slab": 2}),
        "garbage_high_bits_int16": (garbage_i, {"bits_stored": 11, "slab": 2}),
        "noise_raw_slab_uint16": (noise, {"slab": 2}),
        "uint32_4d": (u32, {"effort": 9, "slab": 1, "slab_t": 2}),
        "int32_3d": (i32, {"slab": 1}),
        # near-lossless (added with near support; same layout, version 1): the .npy holds the
        # decoded volume, which a later decoder must reproduce exactly
        "ct_int16_near2": (ct, {"bits_stored": 12, "slab": 4, "near": 2}),
        "mr_uint16_4d_near3_effort9": (mr, {"bits_stored": 12, "effort": 9, "slab": 2, "slab_t": 2, "near": 3}),
        "garbage_high_bits_int16_near1": (garbage_i, {"bits_stored": 11, "slab": 2, "near": 1}),
        "uint8_near40_extremes": (np.where(u8 > 128, 255, 0).astype(np.uint8), {"near": 40}),
        # version 2 added the fast scan (effort 1, lossless): 4-D and 32-bit cases of it; version 3
        # its mode 3 (shrunk bias means), which every effort-1 lossless fixture from v3 on holds
        "mr_uint16_4d_effort1": (mr, {"bits_stored": 12, "effort": 1, "slab": 2, "slab_t": 2}),
        "uint32_4d_effort1": (u32, {"effort": 1, "slab": 1, "slab_t": 2}),
        # version 4: mode 4 (runs in flat areas, clipped bias errors), which every effort-1
        # lossless fixture of v4 holds (from v5 on, mode 5: 8 tokens); this one has long runs
        "ct_padded_int16_effort1": (padded, {"effort": 1, "slab": 3}),
        # version 6: mode 6 (the token models start from a prior), which every effort-1 lossless
        # fixture from v6 on holds; this one is a single slice (a DICOM instance), where the start
        # matters most. Version 7: mode 7 (the binary scan with clipped bias errors), which every
        # effort >= 2 and near-lossless fixture from v7 on holds
        "mr_slice_uint16_effort1": (np.ascontiguousarray(mr[:1, :1]), {"bits_stored": 12, "effort": 1}),
    }


FIXTURES = tuple(_volumes())


def _exclusive_write(path: Path, data: bytes) -> bool:
    try:
        with open(path, "xb") as f:
            f.write(data)
    except FileExistsError:
        return False
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "fixtures",
                        help="fixture root (default tests/fixtures); files go to <out>/v<FORMAT_VERSION>/")
    args = parser.parse_args(argv)
    folder = args.out / f"v{volcodec.FORMAT_VERSION}"
    folder.mkdir(parents=True, exist_ok=True)
    refused = []
    for name, (array, kw) in _volumes().items():
        vlc, npy = folder / f"{name}.vlc", folder / f"{name}.npy"
        if vlc.exists() or npy.exists():
            refused.append(name)
            continue
        buf = volcodec.encode(array, **kw)
        decoded = volcodec.decode(buf)
        near = kw.get("near", 0)
        if volcodec.max_abs_error(decoded, array) > near:
            print(f"{name}: the encoder does not round-trip within {near}; nothing written", file=sys.stderr)
            return 2
        arr = io.BytesIO()
        np.save(arr, np.ascontiguousarray(decoded), allow_pickle=False)
        if not (_exclusive_write(vlc, buf) and _exclusive_write(npy, arr.getvalue())):
            refused.append(name)
            continue
        print(f"wrote {vlc} ({len(buf)} bytes, {array.dtype} {array.shape}, {kw})")
    if refused:
        print(f"refusing to overwrite existing fixtures in {folder}: {', '.join(refused)} "
              f"(fixtures are write-once; add a new name instead)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
