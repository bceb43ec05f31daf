"""format.py and the stream as bytes: the documented layout, every header error path, truncation,
corruption, limits checked before allocation, and the write-once fixtures of tests/fixtures/v*/.

Forged streams are built here with struct + zlib.crc32 from the layout in docs/format.md, not with
volcodec's own packer, so a drift between the code and the documented layout shows up.
"""

from __future__ import annotations

import struct
import sys
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

import volcodec
from volcodec import format as fmt
from volcodec.errors import (
    ChecksumError,
    CorruptDataError,
    FormatError,
    InvalidArgumentError,
    LimitError,
    TruncatedError,
    UnsupportedVersionError,
    VolcodecError,
)

FIXTURES = Path(__file__).parent / "fixtures"

# docs/format.md, "Header": 64 bytes of fields, then their crc32
HEAD = struct.Struct("<8sHHBBBBI4IHHIQQI")
FIELDS = ("magic", "version", "flags", "ndim", "dtype_code", "bits_stored", "effort", "near", "T", "Z", "Y",
          "X", "slab_z", "slab_t", "n_slabs", "plane_offset", "plane_length", "predictor_mask")
ENTRY = struct.Struct("<QQI")


def fields_of(buf) -> dict:
    return dict(zip(FIELDS, HEAD.unpack_from(buf, 0)))


def forge(buf: bytes, fix_header_crc=True, fix_table_crc=True, **changes) -> bytes:
    """``buf`` with header fields replaced (and the checksums recomputed unless told not to)."""
    f = fields_of(buf)
    n_table = f["n_slabs"]
    f.update(changes)
    head = HEAD.pack(*(f[k] for k in FIELDS))
    rest = bytearray(buf[64:])
    if fix_header_crc:
        rest[0:4] = struct.pack("<I", zlib.crc32(head))
    out = bytearray(head + rest)
    if fix_table_crc and len(out) >= 68 + ENTRY.size * n_table + 4:
        end = 68 + ENTRY.size * n_table
        out[end:end + 4] = struct.pack("<I", zlib.crc32(out[68:end]))
    return bytes(out)


def with_table(buf: bytes, entries) -> bytes:
    """``buf`` with its slab table replaced by ``entries`` (same count) and the table crc fixed."""
    table = b"".join(ENTRY.pack(*e) for e in entries)
    out = bytearray(buf)
    out[68:68 + len(table)] = table
    out[68 + len(table):72 + len(table)] = struct.pack("<I", zlib.crc32(table))
    return bytes(out)


def with_payload(buf: bytes, s: int, payload: bytes) -> bytes:
    """``buf`` with slab ``s``'s payload replaced (offsets after it moved, checksums fixed)."""
    hdr = volcodec.read_header(buf)
    off, length, _ = hdr.slabs[s]
    delta = len(payload) - length
    new = buf[:off] + payload + buf[off + length:]
    entries = []
    for i, (o, ln, c) in enumerate(hdr.slabs):
        if i == s:
            c = zlib.crc32(payload)
        entries.append((o + delta if o > off else o, ln + delta if i == s else ln, c))
    new = with_table(new, entries)
    if hdr.plane:
        new = forge(new, plane_offset=hdr.plane[0] + delta)
    return new


def volume(shape=(2, 3, 4, 5), dtype="int16", seed=0):
    rng = np.random.default_rng(seed)
    g = np.indices(shape).sum(0)
    offset = -20 if np.dtype(dtype).kind == "i" else 0
    return (g * 7 + rng.integers(0, 7, shape) + offset).astype(dtype)


@pytest.fixture(scope="module")
def stream4d():
    """A 4-D int16 stream with 2 x 2 slabs and a high-bits plane."""
    a = volume()
    a.flat[3] = 30000  # above bits_stored: forces the plane
    buf = volcodec.encode(a, bits_stored=8, slab=2, slab_t=1, effort=9)
    return a, buf


# --------------------------------------------------------------------------- layout


def test_read_header_fields_3d():
    a = volume((5, 4, 3), "uint16")
    buf = volcodec.encode(a, bits_stored=10, effort=7, slab=2)
    hdr = volcodec.read_header(buf)
    assert isinstance(hdr, volcodec.Header)
    assert hdr.version == volcodec.FORMAT_VERSION
    assert hdr.shape == (5, 4, 3) and hdr.ndim == 3 and hdr.tzyx == (1, 5, 4, 3)
    assert hdr.dtype == np.uint16 and hdr.bits_stored == 10 and hdr.effort == 7 and hdr.near == 0
    assert (hdr.slab_z, hdr.slab_t, hdr.n_slabs, hdr.n_frames) == (2, 1, 3, 5)
    assert hdr.plane is None
    assert hdr.predictor_mask == volcodec.params.EFFORTS[7].predictor_mask


def test_read_header_fields_4d(stream4d):
    a, buf = stream4d
    hdr = volcodec.read_header(buf)
    assert hdr.shape == a.shape and hdr.ndim == 4 and hdr.tzyx == a.shape
    assert hdr.dtype == np.int16 and hdr.bits_stored == 8 and hdr.effort == 9
    assert (hdr.slab_z, hdr.slab_t, hdr.n_slabs, hdr.n_frames, hdr.slab_grid) == (2, 1, 4, 6, (2, 2))
    assert hdr.plane is not None and hdr.plane[0] + hdr.plane[1] == len(buf)


def test_header_slab_geometry_covers_every_frame_once():
    for T, Z, st, sz in [(1, 7, 1, 3), (3, 4, 2, 3), (5, 1, 2, 1), (2, 2, 2, 2)]:
        a = volume((T, Z, 2, 2), "uint8")
        hdr = volcodec.read_header(volcodec.encode(a, slab=sz, slab_t=st))
        seen = []
        for s in range(hdr.n_slabs):
            tr, zr = hdr.slab_frames(s)
            for t in tr:
                for z in zr:
                    assert hdr.slab_of_frame(t * Z + z) == s
                    seen.append(t * Z + z)
        assert sorted(seen) == list(range(T * Z))


def test_bytes_match_the_documented_layout(stream4d):
    a, buf = stream4d
    f = fields_of(buf)
    hdr = volcodec.read_header(buf)
    assert buf[:8] == b"\x89VOLC\r\n\x1a"
    assert f["version"] == volcodec.FORMAT_VERSION and f["flags"] & 1  # bit 0: a high-bits plane follows
    assert (f["ndim"], f["dtype_code"], f["bits_stored"], f["effort"], f["near"]) == (4, 4, 8, 9, 0)
    assert (f["T"], f["Z"], f["Y"], f["X"]) == a.shape
    assert (f["slab_z"], f["slab_t"], f["n_slabs"]) == (2, 1, 4)
    assert (f["plane_offset"], f["plane_length"]) == hdr.plane
    assert f["predictor_mask"] == hdr.predictor_mask
    assert struct.unpack_from("<I", buf, 64)[0] == zlib.crc32(buf[:64])
    end = 68 + 20 * 4
    assert struct.unpack_from("<I", buf, end)[0] == zlib.crc32(buf[68:end])
    # payloads follow the table back to back, in slab order, then the plane
    off = end + 4
    for i in range(4):
        o, ln, c = ENTRY.unpack_from(buf, 68 + 20 * i)
        assert (o, ln, c) == hdr.slabs[i] and o == off and zlib.crc32(buf[o:o + ln]) == c
        tr, zr = hdr.slab_frames(i)
        mode, refs = buf[o], buf[o + 1:o + 1 + len(tr) * len(zr)]
        assert mode in (fmt.SLAB_CODED2, fmt.SLAB_RAW)
        assert all(r < fmt.N_REF_CODES for r in refs) and refs[0] == fmt.REF_NONE
        off += ln
    assert off == f["plane_offset"]
    # the plane is itself a complete stream: same shape and dtype, the remaining bits
    plane = volcodec.read_header(buf[hdr.plane[0]:])
    assert plane.shape == a.shape and plane.dtype == np.int16 and plane.bits_stored == 16 - 8


def test_dtype_codes():
    for code, dt in [(1, "u1"), (2, "i1"), (3, "u2"), (4, "i2"), (5, "u4"), (6, "i4")]:
        buf = volcodec.encode(np.zeros((1, 1, 2), dt))
        assert buf[13] == code and volcodec.read_header(buf).dtype == np.dtype(dt)


def test_raw_slab_holds_little_endian_words():
    a = np.random.default_rng(5).integers(0, 1 << 32, (1, 3, 4), dtype=np.uint32)
    buf = volcodec.encode(a.astype(">u4"))
    off, ln, _ = volcodec.read_header(buf).slabs[0]
    assert buf[off] == fmt.SLAB_RAW and buf[off + 1] == fmt.REF_NONE
    assert buf[off + 2:off + ln] == a.astype("<u4").tobytes()


# --------------------------------------------------------------------------- header errors


def test_bad_magic():
    buf = volcodec.encode(volume((1, 2, 2)))
    for bad in (b"", b"\x89VOL", b"GIF89a" + buf[6:], b"\x89volc" + buf[5:], buf[:7] + b"\x00" + buf[8:]):
        with pytest.raises(FormatError) as e:
            volcodec.read_header(bad)
        assert type(e.value) is FormatError and e.value.code == 10
        with pytest.raises(FormatError):
            volcodec.decode(bad)


@pytest.mark.parametrize("version", [0, volcodec.FORMAT_VERSION + 1, 99, 65535])
def test_unsupported_version(version):
    buf = volcodec.encode(volume((1, 2, 2)))
    for fix_crc in (True, False):
        with pytest.raises(UnsupportedVersionError) as e:
            volcodec.read_header(forge(buf, version=version, fix_header_crc=fix_crc))
        assert "version" in str(e.value) and e.value.code == 11


def test_header_checksum():
    buf = bytearray(volcodec.encode(volume((1, 2, 2))))
    buf[64] ^= 0x01
    with pytest.raises(ChecksumError) as e:
        volcodec.decode(bytes(buf))
    assert e.value.slab is None


@pytest.mark.parametrize("pos", [i for i in range(10, 64)])
def test_any_header_byte_flip_is_caught(pos):
    buf = bytearray(volcodec.encode(volume((1, 2, 2))))
    buf[pos] ^= 0x10
    with pytest.raises(ChecksumError) as e:
        volcodec.read_header(bytes(buf))
    assert e.value.slab is None


def test_table_checksum(stream4d):
    _, buf = stream4d
    for pos in (68, 68 + 20 * 2 + 17, 68 + 20 * 4):  # an entry's offset, a crc byte, the table crc
        b = bytearray(buf)
        b[pos] ^= 0x04
        with pytest.raises(ChecksumError) as e:
            volcodec.read_header(bytes(b))
        assert e.value.slab is None and "table" in str(e.value)


@pytest.mark.parametrize("changes,needle", [
    ({"flags": 0x8000}, "flags"),
    ({"flags": 0x8001}, "flags"),
    ({"ndim": 2}, "ndim"),
    ({"ndim": 5}, "ndim"),
    ({"dtype_code": 0}, "dtype"),
    ({"dtype_code": 7}, "dtype"),
    ({"bits_stored": 0}, "bits_stored"),
    ({"bits_stored": 17}, "bits_stored"),
    ({"X": 0}, "X"),
    ({"Y": (1 << 20) + 1}, "Y"),
    ({"slab_z": 0}, "slab"),
    ({"slab_t": 0}, "slab"),
    ({"slab_z": 4}, "slab"),
    ({"n_slabs": 3}, "slab"),
    ({"n_slabs": 5}, "slab"),
])
def test_inconsistent_header_fields(stream4d, changes, needle):
    _, buf = stream4d
    with pytest.raises(FormatError) as e:
        volcodec.read_header(forge(buf, **changes))
    assert type(e.value) is FormatError and needle in str(e.value)


def test_3d_stream_must_have_t_1():
    buf = volcodec.encode(volume((2, 2, 2)))
    with pytest.raises(FormatError, match="T = 1"):
        volcodec.read_header(forge(buf, T=2))


def test_slab_entries_outside_the_stream(stream4d):
    _, buf = stream4d
    hdr = volcodec.read_header(buf)
    good = list(hdr.slabs)
    table_end = fmt.table_size(hdr.n_slabs)
    for bad in [(good[1][0], 0, good[1][2]), (len(buf), 1, 0), (len(buf) - 2, 3, 0), (table_end - 1, 5, 0),
                (1 << 63, 1, 0), (good[1][0], 1 << 63, 0)]:
        entries = good[:1] + [bad] + good[2:]
        with pytest.raises(TruncatedError, match="slab 1"):
            volcodec.read_header(with_table(buf, entries))


def test_plane_outside_the_stream(stream4d):
    _, buf = stream4d
    pl = volcodec.read_header(buf).plane[1]
    for changes in [{"plane_offset": len(buf)}, {"plane_length": pl + 1}, {"plane_offset": 10},
                    {"plane_length": fmt.HEADER_SIZE - 1}, {"plane_offset": 1 << 63}]:
        with pytest.raises(TruncatedError, match="plane"):
            volcodec.read_header(forge(buf, **changes))


def test_plane_that_does_not_match_the_main_stream(stream4d):
    _, buf = stream4d
    po = volcodec.read_header(buf).plane[0]
    plane = buf[po:]
    # bits_stored 10 > 16 - 8 + 1: wider than any plane the encoder writes for this stream
    for changes in [{"bits_stored": 10}, {"dtype_code": 3}, {"X": 4, "n_slabs": 4}]:
        bad = buf[:po] + forge(plane, **changes)
        with pytest.raises(FormatError, match="plane"):
            volcodec.decode(bad)


# --------------------------------------------------------------------------- truncation and corruption


def test_truncation_at_every_byte(stream4d):
    _, buf = stream4d
    for n in range(len(buf)):
        cut = buf[:n]
        for call in (volcodec.decode, lambda b: volcodec.decode_frames(b, [0, 5])):
            with pytest.raises(VolcodecError) as e:
                call(cut)
            if n >= 8:
                assert isinstance(e.value, TruncatedError), (n, e.value)
            else:
                assert type(e.value) is FormatError


def test_trailing_bytes_are_ignored(stream4d):
    a, buf = stream4d
    np.testing.assert_array_equal(volcodec.decode(buf + b"\x00" * 7), a)


def test_flipped_bit_in_a_slab_names_it_and_other_slabs_still_decode(stream4d):
    a, buf = stream4d
    hdr = volcodec.read_header(buf)
    frames = a.reshape(-1, *a.shape[-2:])
    for s in range(hdr.n_slabs):
        off, ln, _ = hdr.slabs[s]
        for pos in (off, off + ln // 2, off + ln - 1):
            bad = bytearray(buf)
            bad[pos] ^= 0x20
            bad = bytes(bad)
            with pytest.raises(ChecksumError) as e:
                volcodec.decode(bad)
            assert e.value.slab == s and f"slab {s}" in str(e.value)
            mine = [k for k in range(hdr.n_frames) if hdr.slab_of_frame(k) == s]
            others = [k for k in range(hdr.n_frames) if hdr.slab_of_frame(k) != s]
            np.testing.assert_array_equal(volcodec.decode_frames(bad, others), frames[others])
            with pytest.raises(ChecksumError) as e:
                volcodec.decode_frames(bad, [others[0], mine[-1]])
            assert e.value.slab == s


def test_flipped_bit_in_the_plane(stream4d):
    a, buf = stream4d
    hdr = volcodec.read_header(buf)
    po, _ = hdr.plane
    plane = volcodec.read_header(buf[po:])
    off, ln, _ = plane.slabs[1]
    bad = bytearray(buf)
    bad[po + off + ln // 2] ^= 0x01
    with pytest.raises(ChecksumError):
        volcodec.decode(bytes(bad))
    frames = a.reshape(-1, *a.shape[-2:])
    others = [k for k in range(hdr.n_frames) if plane.slab_of_frame(k) != 1]
    np.testing.assert_array_equal(volcodec.decode_frames(bytes(bad), others), frames[others])


@pytest.mark.parametrize("case", ["mode", "refcode", "z-ref in first slice", "t-ref in first time point",
                                  "short frame table", "raw size"])
def test_corrupt_payload_with_valid_checksum(stream4d, case):
    _, buf = stream4d
    hdr = volcodec.read_header(buf)
    s = 3  # t = 1, z = 2..2: one frame
    off, ln, _ = hdr.slabs[0]  # t = 0, z = 0..1: two frames
    p0 = bytearray(buf[off:off + ln])
    assert p0[0] == fmt.SLAB_CODED2
    slab = 0
    if case == "mode":
        p0[0] = 2
    elif case == "refcode":
        p0[2] = fmt.N_REF_CODES
    elif case == "z-ref in first slice":
        p0[1] = fmt.REF_Z
    elif case == "t-ref in first time point":
        p0[2] = fmt.REF_T
    elif case == "short frame table":
        p0 = p0[:2]
    else:
        # a raw slab one word short
        slab = s
        tr, zr = hdr.slab_frames(s)
        n = len(tr) * len(zr)
        p0 = bytearray([fmt.SLAB_RAW]) + bytes(n) + bytes(n * 4 * 5 * 2 - 2)
    bad = with_payload(buf, slab, bytes(p0))
    if case == "short frame table":
        # caught earlier: read_header's minimum slab length (frame table + voxels / 8192)
        with pytest.raises(FormatError, match="slab 0 of 2 frames"):
            volcodec.read_header(bad)
        return
    with pytest.raises(CorruptDataError) as e:
        volcodec.decode(bad)
    assert e.value.slab == slab and e.value.code == 21


def test_random_corruption_with_valid_checksums_small():
    # what a fuzzer does once it learns to fix the CRCs: always a VolcodecError or an array
    a = volume((3, 4, 6), "int16")
    buf = volcodec.encode(a, slab=2, effort=9)
    hdr = volcodec.read_header(buf)
    rng = np.random.default_rng(7)
    outcomes = set()
    for _ in range(150):
        s = int(rng.integers(hdr.n_slabs))
        off, ln, _ = hdr.slabs[s]
        p = bytearray(buf[off:off + ln])
        for _ in range(int(rng.integers(1, 4))):
            p[int(rng.integers(1 + 2, ln))] ^= 1 << int(rng.integers(8))  # keep mode and refcodes
        if rng.random() < 0.3:
            p = p[:int(rng.integers(3, ln + 1))]
        try:
            out = volcodec.decode(with_payload(buf, s, bytes(p)))
        except VolcodecError as e:
            outcomes.add(type(e).__name__)
        else:
            assert out.shape == a.shape and out.dtype == a.dtype
            outcomes.add("decoded")
    assert outcomes <= {"decoded", "CorruptDataError"}


# --------------------------------------------------------------------------- limits


def _huge_header(T=1, Z=1 << 20, Y=1 << 20, X=1 << 20, ndim=3):
    buf = volcodec.encode(np.zeros((1, 1, 1), np.uint8))
    forged = forge(buf, ndim=ndim, T=T, Z=Z, Y=Y, X=X, slab_z=65535)
    return (forged + bytes(100))[:100]


@pytest.mark.parametrize("dims", [{}, {"T": 1 << 20, "ndim": 4}, {"Z": 1 << 12, "Y": 1 << 12, "X": 1 << 11}])
def test_limit_checked_before_allocation(dims):
    forged = _huge_header(**dims)
    tracemalloc.start()
    try:
        for call in (volcodec.read_header, volcodec.decode, lambda b: volcodec.decode_frames(b, [0])):
            with pytest.raises(LimitError) as e:
                call(forged)
            assert "max_voxels" in str(e.value) and e.value.code == 13
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{peak} bytes allocated while rejecting a 100-byte stream"


def test_max_voxels_is_the_callers_limit():
    a = volume((3, 4, 5), "uint8")
    buf = volcodec.encode(a)
    np.testing.assert_array_equal(volcodec.decode(buf, max_voxels=60), a)
    for call in (volcodec.read_header, volcodec.decode, lambda b, **kw: volcodec.decode_frames(b, [0], **kw)):
        with pytest.raises(LimitError):
            call(buf, max_voxels=59)


def test_limit_applies_to_the_plane(stream4d):
    a, buf = stream4d
    np.testing.assert_array_equal(volcodec.decode(buf, max_voxels=a.size), a)
    with pytest.raises(LimitError):
        volcodec.decode(buf, max_voxels=a.size - 1)


def test_huge_slab_count_is_truncation_not_allocation():
    # within max_voxels, but a table of 2**20 entries cannot fit in 100 bytes
    buf = volcodec.encode(np.zeros((1, 1, 1), np.uint8))
    forged = (forge(buf, Z=1 << 20, slab_z=1, n_slabs=1 << 20) + bytes(100))[:100]
    with pytest.raises(TruncatedError, match="slab table"):
        volcodec.read_header(forged)


# --------------------------------------------------------------------------- known bugs


def _nested_plane_stream(depth: int) -> bytes:
    """A 1-voxel uint8 stream whose high-bits plane has a plane, ``depth`` levels deep."""
    def level(inner: bytes) -> bytes:
        payload = bytes([fmt.SLAB_RAW, fmt.REF_NONE, 1])
        start = fmt.table_size(1)
        plane = (start + len(payload), len(inner)) if inner else None
        head = fmt.pack_header((1, 1, 1, 1), 3, np.dtype("u1"), 4, 1, 0, 1, 1, 1,
                               [(start, len(payload), zlib.crc32(payload))], plane)
        return head + payload + inner
    buf = b""
    for _ in range(depth + 1):
        buf = level(buf)
    return buf


def test_one_plane_level_decodes():
    assert volcodec.decode(_nested_plane_stream(1)).ravel().tolist() == [(1 << 4) + 1]


def test_a_plane_inside_a_plane_is_refused():
    with pytest.raises(FormatError, match="plane of its own"):
        volcodec.decode(_nested_plane_stream(2))


def test_deeply_nested_planes_raise_a_volcodec_error():
    buf = _nested_plane_stream(max(2000, sys.getrecursionlimit()))
    with pytest.raises(VolcodecError):
        volcodec.decode(buf)


# --------------------------------------------------------------------------- write-once fixtures


def _fixture_files():
    return sorted(FIXTURES.glob("v*/*.vlc"))


@pytest.mark.parametrize("vlc", _fixture_files() or [None],
                         ids=lambda p: f"{p.parent.name}/{p.stem}" if p else "none")
def test_fixture_decodes(vlc):
    if vlc is None:
        pytest.skip(f"no fixtures under {FIXTURES}/v*/ yet: run `python tests/make_fixtures.py` once the "
                    f"format version is frozen")
    check_fixture(vlc)


def check_fixture(vlc: Path):
    expected = np.load(vlc.with_suffix(".npy"))
    buf = vlc.read_bytes()
    hdr = volcodec.read_header(buf)
    assert f"v{hdr.version}" == vlc.parent.name
    got = volcodec.decode(buf)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    frames = expected.reshape(-1, *expected.shape[-2:])
    idx = list(range(len(frames)))[::-1] + [0]
    np.testing.assert_array_equal(volcodec.decode_frames(buf, idx), frames[idx])


def test_make_fixtures_writes_once(tmp_path, capsys):
    import make_fixtures

    assert make_fixtures.main(["--out", str(tmp_path)]) == 0
    written = sorted(tmp_path.glob(f"v{volcodec.FORMAT_VERSION}/*"))
    assert {p.suffix for p in written} == {".vlc", ".npy"} and len(written) == 2 * len(make_fixtures.FIXTURES)
    for vlc in sorted(tmp_path.glob("v*/*.vlc")):
        check_fixture(vlc)
    # the generator covers what the fixtures promise
    headers = [volcodec.read_header(p.read_bytes()) for p in sorted(tmp_path.glob("v*/*.vlc"))]
    assert {h.dtype for h in headers} >= {np.dtype(d) for d in ("u1", "i1", "u2", "i2")}
    assert {h.effort for h in headers} >= {1, 9} and any(h.plane for h in headers) and any(h.ndim == 4 for h in headers)
    assert any(p.read_bytes()[off] == fmt.SLAB_RAW for p in sorted(tmp_path.glob("v*/*.vlc"))
               for off, _, _ in volcodec.read_header(p.read_bytes()).slabs)
    # a second run refuses to overwrite anything
    before = {p: p.read_bytes() for p in written}
    target = written[0]
    target.write_bytes(b"changed by hand")
    before[target] = b"changed by hand"
    capsys.readouterr()
    assert make_fixtures.main(["--out", str(tmp_path)]) == 1
    assert "refus" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in written} == before


def test_decode_argument_errors_are_invalid_argument():
    with pytest.raises(InvalidArgumentError):
        volcodec.read_header(3.5)
