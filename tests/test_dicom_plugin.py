"""volcodec's transfer syntax through pydicom: plugins, fragments, random access, traps."""

from __future__ import annotations

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

import volcodec  # noqa: E402
import volcodec.dicom as vd  # noqa: E402
from volcodec.dicom import fragment, plugin, transcode  # noqa: E402
from volcodec.errors import DicomError  # noqa: E402

from dicom_builder import write_enhanced, write_slice  # noqa: E402


def _enhanced(tmp_path, n=20, dtype=np.int16, rows=12, columns=10, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(-300, 300, (rows, columns))
    frames = [(base + 7 * z + rng.integers(-3, 4, (rows, columns))).astype(dtype) for z in range(n)]
    # positions given in scrambled frame order: prediction follows geometry, not frame numbers
    zs = rng.permutation(n)
    path = write_enhanced(tmp_path / "mf.dcm", [frames[z] for z in zs], [(0.0, 0.0, 2.0 * z) for z in zs])
    return path, np.stack([frames[z] for z in zs])


def test_compress_pixel_array_random_access_iter_and_decompress(tmp_path):
    path, frames = _enhanced(tmp_path)
    ds = pydicom.dcmread(path)
    ds.compress(vd.VOLCODEC_LOSSLESS)
    out = tmp_path / "c.dcm"
    ds.save_as(out, enforce_file_format=True)
    assert np.array_equal(pydicom.dcmread(out).pixel_array, frames)
    for k in (0, 7, 19):
        one = pydicom.dcmread(out)
        one.pixel_array_options(index=k)
        assert np.array_equal(one.pixel_array, frames[k])
    from pydicom.pixels import iter_pixels

    assert np.array_equal(np.stack(list(iter_pixels(out))), frames)
    back = pydicom.dcmread(out)
    back.decompress()
    assert back.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert back.PixelData == pydicom.dcmread(path).PixelData


def test_fragments_are_self_describing_and_name_their_references(tmp_path):
    path, frames = _enhanced(tmp_path)
    ds = pydicom.dcmread(path)
    c = vd.compress_dataset(ds)
    from pydicom.encaps import generate_frames, parse_basic_offsets

    raw = list(generate_frames(c.PixelData, number_of_frames=20))
    assert len(raw) == 20 and all(len(f) % 2 == 0 for f in raw)
    from io import BytesIO

    assert len(parse_basic_offsets(BytesIO(c.PixelData))) == 20  # Basic Offset Table filled
    frags = [fragment.parse(f) for f in raw]
    assert [f.frame for f in frags] == list(range(20))
    loc = {k: pos.PlanePositionSequence[0].ImagePositionPatient[2]
           for k, pos in enumerate(ds.PerFrameFunctionalGroupsSequence)}
    heads = [f for f in frags if f.kind == fragment.HEAD]
    assert len(heads) == 2  # 20 slices: slabs of 16 + 4
    for f in frags:
        head = frags[f.head]
        assert head.kind == fragment.HEAD and head.members[f.slot] == f.frame
        # every reference is the neighbouring slice below, in the same slab
        for r in f.refs:
            assert loc[r] == loc[f.frame] - 2.0 and r in head.members


def test_4d_grid_orders_time_and_slices(tmp_path):
    frames, pos, temporal = [], [], []
    for z in (2, 0, 1):
        for t in (1, 0):
            frames.append(np.full((4, 5), 10 * t + z, np.uint16) + np.arange(20, dtype=np.uint16).reshape(4, 5))
            pos.append((0.0, 0.0, float(z)))
            temporal.append(t)
    path = write_enhanced(tmp_path / "t.dcm", frames, pos, temporal=temporal)
    from volcodec.dicom.order import frame_grid

    grid = frame_grid(pydicom.dcmread(path))
    assert grid.shape == (2, 3)
    assert [pos[k][2] for k in grid[0]] == [0.0, 1.0, 2.0]
    assert [temporal[k] for k in grid[:, 0]] == [0, 1]
    c = vd.compress_dataset(pydicom.dcmread(path))
    assert np.array_equal(transcode.decode_words(c)[:, 0], np.stack(frames))


@pytest.mark.parametrize("signed", [0, 1])
def test_junk_bits_above_bits_stored_round_trip(tmp_path, signed):
    rng = np.random.default_rng(1)
    dtype = np.int16 if signed else np.uint16
    words = (rng.integers(0, 4096, (6, 7)) | (rng.integers(0, 16, (6, 7)) << 12)).astype(np.uint16).view(dtype)
    path = write_slice(tmp_path / "j.dcm", words, bits_stored=12)
    ds = pydicom.dcmread(path)
    c = vd.compress_dataset(ds)
    c.save_as(tmp_path / "c.dcm", enforce_file_format=True)
    r = pydicom.dcmread(tmp_path / "c.dcm")
    assert np.array_equal(r.pixel_array, ds.pixel_array)  # pydicom masks the junk the same way
    assert vd.decompress_dataset(r).PixelData == ds.PixelData  # and the words come back exactly


def test_bits_stored_8_in_16_bit_words_through_pydicom_compress(tmp_path):
    # pydicom narrows such words to 8 bits before calling an encoder; ours reads the source words
    words = (np.arange(30, dtype=np.uint16).reshape(5, 6) * 9 % 256) | 0x3100
    path = write_slice(tmp_path / "b.dcm", words.astype(np.uint16), bits_stored=8)
    ds = pydicom.dcmread(path)
    original, expect = ds.PixelData, ds.pixel_array.copy()
    ds.compress(vd.VOLCODEC_LOSSLESS)
    assert vd.decompress_dataset(ds).PixelData == original  # every word, junk bits included
    ds.decompress()  # pydicom's own decompress clears bits above Bits Stored; the values agree
    assert np.array_equal(ds.pixel_array, expect)


def test_odd_length_8bit_single_frame(tmp_path):
    words = (np.arange(15, dtype=np.uint8).reshape(3, 5) * 17)
    path = write_slice(tmp_path / "o.dcm", words)
    ds = pydicom.dcmread(path)
    c = vd.compress_dataset(ds)
    from pydicom.encaps import generate_frames

    assert all(len(f) % 2 == 0 for f in generate_frames(c.PixelData, number_of_frames=1))
    back = vd.decompress_dataset(c)
    assert back.PixelData == ds.PixelData and len(back.PixelData) == 16


@pytest.mark.parametrize("planar", [0, 1])
def test_rgb_planar_configuration(tmp_path, planar):
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (2, 6, 5, 3), dtype=np.uint8)
    ds = pydicom.dcmread(write_slice(tmp_path / "p.dcm", rgb[0, :, :, 0]))
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", planar
    ds.NumberOfFrames = 2
    data = rgb.transpose(0, 3, 1, 2) if planar else rgb
    ds.PixelData = np.ascontiguousarray(data).tobytes()
    expect = ds.pixel_array.copy()
    c = vd.compress_dataset(ds)
    c.save_as(tmp_path / "c.dcm", enforce_file_format=True)
    assert np.array_equal(pydicom.dcmread(tmp_path / "c.dcm").pixel_array, expect)
    assert vd.decompress_dataset(c).PixelData == ds.PixelData


def test_pixel_padding_value_and_attributes_are_kept(tmp_path):
    words = np.array([[-2000, -2000, 5], [7, -2000, 40]], np.int16)
    ds = pydicom.dcmread(write_slice(tmp_path / "pp.dcm", words, PixelPaddingValue=-2000))
    ds["PixelPaddingValue"].VR = "SS"
    c = vd.compress_dataset(ds)
    assert c.PixelPaddingValue == -2000 and c.SOPInstanceUID == ds.SOPInstanceUID
    assert "LossyImageCompression" not in c
    assert np.array_equal(transcode.decode_words(c)[0, 0], words)


def test_float_pixel_data_is_a_clear_error(tmp_path):
    ds = pydicom.dcmread(write_slice(tmp_path / "f.dcm", np.zeros((2, 2), np.int16)))
    del ds.PixelData
    ds.FloatPixelData = np.zeros(4, np.float32).tobytes()
    with pytest.raises(DicomError, match=r"\(7FE0,0008\) 'Float Pixel Data'"):
        vd.compress_dataset(ds)


def test_bad_bits_stored_names_the_element(tmp_path):
    ds = pydicom.dcmread(write_slice(tmp_path / "bs.dcm", np.zeros((2, 2), np.int16)))
    ds.BitsStored = 17
    with pytest.raises(DicomError, match=r"\(0028,0101\) 'Bits Stored' must be 1..16 .*found 17"):
        vd.compress_dataset(ds)


def test_corrupt_fragment_is_a_clear_error(tmp_path):
    path, _ = _enhanced(tmp_path, n=3)
    c = vd.compress_dataset(pydicom.dcmread(path))
    from pydicom.encaps import encapsulate, generate_frames

    frags = list(generate_frames(c.PixelData, number_of_frames=3))
    frags[1] = b"JUNK" + frags[1][4:]
    c.PixelData = encapsulate(frags)
    with pytest.raises(DicomError, match="magic"):
        transcode.decode_words(c)
    with pytest.raises(DicomError, match="shorter than"):
        fragment.parse(b"VCDF")


def test_member_frame_decodes_from_its_slab_only():
    # the last slab alone: the fetcher refuses any frame outside it
    rng = np.random.default_rng(3)
    words = rng.integers(0, 1000, (40, 1, 6, 6)).astype(np.uint16)
    frags = transcode.encode_fragments(words, np.arange(40).reshape(1, 40), bits_stored=10, effort=1)
    z = volcodec.auto_slab(1, 40)  # 10 slices per slab (four slabs: two threads share them evenly)
    allowed = set(range(40 - z, 40))

    def fetch(i):
        assert i in allowed
        return frags[i]

    for k in sorted(allowed, reverse=True):
        got = fragment.decode_one(fragment.parse(frags[k]), fetch)
        assert np.array_equal(got, words[k])


def test_extended_offset_table_past_the_limit(tmp_path, monkeypatch):
    path, frames = _enhanced(tmp_path, n=3)
    monkeypatch.setattr(transcode, "BOT_LIMIT", 10)
    c = vd.compress_dataset(pydicom.dcmread(path))
    assert "ExtendedOffsetTable" in c and len(c.ExtendedOffsetTable) == 3 * 8
    c.save_as(tmp_path / "e.dcm", enforce_file_format=True)
    assert np.array_equal(pydicom.dcmread(tmp_path / "e.dcm").pixel_array, frames)


def test_unsupported_pydicom_version_fails_clearly(monkeypatch):
    monkeypatch.setattr(plugin, "_registered", False)
    monkeypatch.setattr(pydicom, "__version__", "4.0.0")
    with pytest.raises(DicomError, match=r"pydicom 4.0.0 is not supported"):
        plugin.register()


def test_near_lossless_marks_the_dataset(tmp_path):
    path, frames = _enhanced(tmp_path, n=4)
    ds = pydicom.dcmread(path)
    c = vd.compress_dataset(ds, near=2)
    assert c.file_meta.TransferSyntaxUID == vd.VOLCODEC_NEAR_LOSSLESS
    assert c.LossyImageCompression == "01" and c.LossyImageCompressionMethod == "VOLCODEC_NEAR"
    assert float(c.LossyImageCompressionRatio) > 1
    # a second lossy step appends to both lists instead of splitting the first value into letters
    again = vd.compress_dataset(vd.decompress_dataset(c), near=1)
    assert list(again.LossyImageCompressionMethod) == ["VOLCODEC_NEAR", "VOLCODEC_NEAR"]
    assert len(again.LossyImageCompressionRatio) == 2
    assert c.SOPInstanceUID != ds.SOPInstanceUID
    assert c.file_meta.MediaStorageSOPInstanceUID == c.SOPInstanceUID
    err = np.abs(transcode.decode_words(c)[:, 0].astype(int) - frames.astype(int))
    assert err.max() <= 2


def test_registration_waits_for_pydicom_import():
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, volcodec.dicom as vd; assert 'pydicom' not in sys.modules; import pydicom.uid;"
            "print(pydicom.uid.UID(vd.VOLCODEC_LOSSLESS).is_transfer_syntax)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "True"
