"""Write the fuzzers' seed corpora: small valid streams covering what the decoder can meet, and small
valid DICOM Pixel Data for fuzz_dicom_decode.py.

    python fuzz/make_corpus.py            # (re)writes fuzz/corpus/*.vlc and fuzz/corpus_dicom/*.bin

Each seed is a few hundred bytes at most (libFuzzer mutates small inputs fastest) and every
decoding path is represented: each dtype, 3-D and 4-D, several slabs, coded and raw slabs, the
mixing efforts (6..9), the second reference (8, 9) and a high-bits plane. The volumes are seeded,
so the files are reproducible; tests/test_fuzz.py checks that each still decodes.

The DICOM seeds are inputs in dicom_input.py's layout: Image Pixel attributes plus the fragments
``volcodec.dicom.compress_dataset`` (or pydicom's ``compress`` through our encoder plugin, for slabs
of a few frames, so member fragments point at several heads) writes for a small dataset: 1-sample and
RGB, 8/16/32 bits, signed and unsigned, lossless and near-lossless, with and without offset tables.
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
    runs = np.zeros((2, 9, 12), np.uint16)  # flat padding around an object: run mode (slab mode 5)
    runs[:, 3:7, 4:9] = series[0, 0, :4, :5]
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
        "uint16_runs_e1": (runs, {"effort": 1}),
    }


def dicom_seeds() -> dict[str, tuple[np.ndarray, dict]]:
    """name: ((frames, rows, columns[, 3]) stored words, options) for each DICOM seed."""
    rng = np.random.default_rng(30)
    g = np.indices((5, 6, 7)).sum(0)
    mono = (g * 11 + rng.integers(0, 5, g.shape)).astype(np.int16) - 40
    rgb = (np.indices((2, 4, 5, 3)).sum(0) * 20 + rng.integers(0, 9, (2, 4, 5, 3))).astype(np.uint8)
    return {
        "int16_bot": (mono, {"bits_stored": 12}),
        "int16_slabs_of_2_no_bot": (mono, {"bits_stored": 12, "slab": 2, "offsets": "empty"}),
        "int16_near_eot": (mono, {"bits_stored": 12, "near": 2, "offsets": "eot"}),
        "uint8_one_frame": (np.abs(mono[:1]).astype(np.uint8), {}),
        "uint32_two_frames": ((g[:2] * 70_001).astype(np.uint32), {"offsets": "empty"}),
        "rgb_planar0": (rgb, {}),
        "rgb_planar1_slabs_of_1": (rgb, {"planar": 1, "slab": 1}),
    }


def dicom_seed(words: np.ndarray, *, bits_stored: int | None = None, near: int = 0, slab: int | None = None,
               offsets: str = "bot", planar: int = 0) -> bytes:
    """Compress a native dataset holding ``words`` and lay its fragments out as dicom_input.py reads."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import generate_frames
    from pydicom.uid import ExplicitVRLittleEndian

    import volcodec.dicom as vd
    from dicom_input import Attributes, pack_input, parse_input

    samples = 3 if words.ndim == 4 else 1
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.NumberOfFrames, ds.Rows, ds.Columns = words.shape[:3]
    ds.BitsAllocated = words.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(words.dtype.kind == "i")
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = "RGB" if samples == 3 else "MONOCHROME2"
    if samples == 3:
        ds.PlanarConfiguration = planar
        words = np.moveaxis(words, -1, 1) if planar else words
    data = np.ascontiguousarray(words, words.dtype.newbyteorder("<")).tobytes()
    ds.PixelData = data + b"\0" * (len(data) & 1)
    ds["PixelData"].VR = "OB" if ds.BitsAllocated == 8 else "OW"
    if slab is not None:
        ds.compress(vd.VOLCODEC_LOSSLESS, slab=slab)
    else:
        ds = vd.compress_dataset(ds, near=near)
    frags = list(generate_frames(ds.PixelData, number_of_frames=ds.NumberOfFrames))
    attrs = Attributes(rows=ds.Rows, columns=ds.Columns, frames=ds.NumberOfFrames,
                       bits_allocated=ds.BitsAllocated, bits_stored=ds.BitsStored,
                       pixel_representation=ds.PixelRepresentation, samples=samples, planar=planar,
                       near=bool(near), offsets=offsets)
    out = pack_input(attrs, frags)
    assert parse_input(out) == (attrs, frags)
    return out


FIXTURES = Path(volcodec.__file__).resolve().parents[1] / "tests" / "fixtures"  # this checkout's
# slab modes 0 (the binary scan before version 7), 2 (the fast scan of version 2), 3 (version 3), 4
# (version 4, with runs) and 5 (version 5, 8 tokens), which the encoder no longer writes
LEGACY = ("v2/uint32_4d_effort1.vlc", "v2/uint8_3d.vlc", "v3/uint8_3d.vlc", "v4/uint8_3d.vlc", "v5/uint8_3d.vlc",
          "v6/int8_3d_odd.vlc")


def main() -> int:
    out = HERE / "corpus"
    out.mkdir(exist_ok=True)
    for name, (array, kw) in seeds().items():
        buf = volcodec.encode(array, **kw)
        assert np.array_equal(volcodec.decode(buf), array)
        (out / f"{name}.vlc").write_bytes(buf)
        print(f"{name}.vlc  {len(buf)} bytes")
    # older slab modes that the encoder no longer writes but the decoder must still read: the
    # small write-once fixtures of the version that introduced them
    for name in LEGACY:
        buf = (FIXTURES / name).read_bytes()
        (out / f"legacy_{name.replace('/', '_')}").write_bytes(buf)
        print(f"legacy_{name.replace('/', '_')}  {len(buf)} bytes")
    out = HERE / "corpus_dicom"
    out.mkdir(exist_ok=True)
    for name, (words, kw) in dicom_seeds().items():
        buf = dicom_seed(words, **kw)
        (out / f"{name}.bin").write_bytes(buf)
        print(f"corpus_dicom/{name}.bin  {len(buf)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
