"""The command line: in-process through ``main([...])``, plus one real ``python -m volcodec``.

Arrays are tiny (numba compiles once per session; the kernels' signatures do not depend on the
volume's dtype, so one compilation serves every test).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import volcodec
from volcodec import cli
from volcodec.cli import main


def _volume(shape=(3, 8, 9), dtype=np.uint16, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z, y, x = shape[-3:]
    ramp = np.add.outer(np.arange(y), np.arange(x))[None] * 40 + np.arange(z)[:, None, None] * 7
    vol = np.broadcast_to(ramp, shape) + rng.integers(0, 30, shape)
    return vol.astype(dtype)


def _npy(tmp_path, array, name="in.npy"):
    path = tmp_path / name
    np.save(path, array)
    return path


def _run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line_error(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("volcodec: error: "), err
    assert "Traceback" not in err
    return lines[0]


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ----------------------------------------------------------------------------- compress / decompress
@pytest.mark.parametrize("shape, dtype", [((3, 8, 9), np.uint16), ((2, 3, 5, 6), np.int16),
                                          ((2, 4, 4), np.uint8), ((2, 4, 5), np.int32)])
def test_round_trip_is_bit_exact(tmp_path, capsys, shape, dtype):
    vol = _volume(shape, dtype)
    src = _npy(tmp_path, vol)
    rc, out, err = _run(capsys, "compress", src, tmp_path / "v.volc", "--effort", "3", "--slab", "2")
    assert (rc, err) == (0, "")
    assert "ratio" in out
    rc, out, err = _run(capsys, "decompress", tmp_path / "v.volc", tmp_path / "back.npy")
    assert (rc, err) == (0, "")
    back = np.load(tmp_path / "back.npy")
    assert back.dtype == vol.dtype and back.shape == vol.shape
    assert np.array_equal(back, vol)
    assert _leftovers(tmp_path) == []


def test_compress_honours_bits_stored_and_slab(tmp_path, capsys):
    src = _npy(tmp_path, _volume((5, 8, 8)))
    assert _run(capsys, "compress", src, tmp_path / "v.volc", "--bits-stored", "12", "--slab", "2")[0] == 0
    hdr = volcodec.read_header((tmp_path / "v.volc").read_bytes())
    assert (hdr.bits_stored, hdr.slab_z, hdr.n_slabs) == (12, 2, 3)


def test_refuses_to_overwrite_without_force(tmp_path, capsys):
    src = _npy(tmp_path, _volume())
    out = tmp_path / "v.volc"
    out.write_bytes(b"keep me")
    rc, _, err = _run(capsys, "compress", src, out)
    assert rc == 2
    assert "--force" in _one_line_error(err)
    assert out.read_bytes() == b"keep me"
    rc, _, err = _run(capsys, "compress", src, out, "--force")
    assert (rc, err) == (0, "")
    assert np.array_equal(volcodec.decode(out.read_bytes()), _volume())
    rc, _, err = _run(capsys, "decompress", out, src)  # decompress refuses too
    assert rc == 2 and "--force" in _one_line_error(err)
    assert _leftovers(tmp_path) == []


def test_output_folder_is_refused(tmp_path, capsys):
    src = _npy(tmp_path, _volume())
    rc, _, err = _run(capsys, "compress", src, tmp_path, "--force")
    assert rc == 2 and "folder" in _one_line_error(err)


def test_unsupported_dtype_fails_without_output(tmp_path, capsys):
    src = _npy(tmp_path, _volume().astype(np.float32))
    out = tmp_path / "v.volc"
    rc, _, err = _run(capsys, "compress", src, out)
    assert rc == 1
    line = _one_line_error(err)
    assert "float32" in line and str(src) in line
    assert not out.exists()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("force", [False, True])
def test_failed_write_leaves_no_partial_file(tmp_path, capsys, monkeypatch, force):
    src = _npy(tmp_path, _volume())
    out = tmp_path / "v.volc"
    if force:
        out.write_bytes(b"old")

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    rc, _, err = _run(capsys, "compress", src, out, *(["--force"] if force else []))
    assert rc == 1
    assert "No space left on device" in _one_line_error(err)
    assert (out.read_bytes() == b"old") if force else not out.exists()
    assert _leftovers(tmp_path) == []


def test_interrupted_write_is_cleaned_up(tmp_path, capsys, monkeypatch):
    src = _npy(tmp_path, _volume())
    volc = tmp_path / "v.volc"
    assert _run(capsys, "compress", src, volc)[0] == 0

    def interrupted_save(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", interrupted_save)
    rc, _, err = _run(capsys, "decompress", volc, tmp_path / "back.npy")
    assert rc == 130
    _one_line_error(err)
    assert not (tmp_path / "back.npy").exists()
    assert _leftovers(tmp_path) == []


def test_missing_output_folder(tmp_path, capsys):
    src = _npy(tmp_path, _volume())
    rc, _, err = _run(capsys, "compress", src, tmp_path / "no" / "v.volc")
    assert rc == 1 and "not an existing folder" in _one_line_error(err)


# ----------------------------------------------------------------------------- bad inputs
def test_garbage_stream_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.volc"
    bad.write_bytes(bytes(range(256)) * 3)
    for cmd in (["decompress", bad, tmp_path / "out.npy"], ["info", bad]):
        rc, _, err = _run(capsys, *cmd)
        assert rc == 1
        line = _one_line_error(err)
        assert "[10 format]" in line and str(bad) in line
    assert not (tmp_path / "out.npy").exists()


def test_corrupt_slab_is_one_line_error(tmp_path, capsys):
    buf = bytearray(volcodec.encode(_volume()))
    buf[-5] ^= 0xFF
    bad = tmp_path / "bad.volc"
    bad.write_bytes(bytes(buf))
    rc, _, err = _run(capsys, "decompress", bad, tmp_path / "out.npy")
    assert rc == 1 and "checksum" in _one_line_error(err)


@pytest.mark.parametrize("name", ["garbage.npy", "garbage.dat"])
def test_garbage_input_file_is_one_line_error(tmp_path, capsys, name):
    bad = tmp_path / name
    bad.write_bytes(b"\x00garbage, not a volume\xff" * 20)
    for cmd in (["compress", bad, tmp_path / "v.volc"], ["verify", bad]):
        rc, _, err = _run(capsys, *cmd)
        assert rc == 1
        assert str(bad) in _one_line_error(err)
    assert not (tmp_path / "v.volc").exists()


def test_missing_input_file(tmp_path, capsys):
    rc, _, err = _run(capsys, "compress", tmp_path / "nope.npy", tmp_path / "v.volc")
    assert rc == 1 and "nope.npy" in _one_line_error(err)
    rc, _, err = _run(capsys, "info", tmp_path / "nope.volc")
    assert rc == 1 and "No such file" in _one_line_error(err)


@pytest.mark.parametrize("argv", [[], ["compress", "only-in.npy"], ["compress", "a", "b", "--effort", "0"],
                                  ["compress", "a", "b", "--slab", "x"], ["frobnicate"],
                                  ["verify"], ["verify", "x.npy", "--example"]])
def test_usage_errors_exit_2(capsys, argv):
    rc, _, err = _run(capsys, *argv)
    assert rc == 2
    _one_line_error(err)


def test_help_exits_0(capsys):
    rc, out, _ = _run(capsys, "--help")
    assert rc == 0 and "compress" in out and "verify" in out


# ----------------------------------------------------------------------------- info
def test_info(tmp_path, capsys):
    vol = _volume((2, 3, 8, 8), np.int16)
    volc = tmp_path / "v.volc"
    volc.write_bytes(volcodec.encode(vol, bits_stored=10, effort=4, slab=2, slab_t=1))
    rc, out, err = _run(capsys, "info", volc)
    assert (rc, err) == (0, "")
    fields = dict(line.split(None, 1) for line in out.splitlines())
    assert fields["shape"] == "2 x 3 x 8 x 8"
    assert fields["dtype"] == "int16"
    assert (fields["bits_stored"], fields["effort"], fields["n_slabs"]) == ("10", "4", "4")
    rc, out, err = _run(capsys, "info", volc, "--json")
    assert (rc, err) == (0, "")
    info = json.loads(out)
    assert info["shape"] == [2, 3, 8, 8] and info["n_frames"] == 6 and info["slab_z"] == 2
    assert info["stream_bytes"] == volc.stat().st_size
    assert info["raw_bytes"] == vol.nbytes
    assert info["ratio"] == pytest.approx(vol.nbytes / volc.stat().st_size, rel=1e-3)


# ----------------------------------------------------------------------------- verify
def test_verify_npy(tmp_path, capsys):
    src = _npy(tmp_path, _volume().astype(">u2"))  # byte order is not part of the values
    rc, out, err = _run(capsys, "verify", src, "--effort", "2")
    assert (rc, err) == (0, "")
    for word in ("bits/voxel", "ratio", "max abs error    0", "Mvox/s", "bit-exact"):
        assert word in out


def test_verify_reports_a_mismatch(tmp_path, capsys, monkeypatch):
    real_decode = cli.decode

    def off_by_three(buf, **kw):
        out = real_decode(buf, **kw)
        out.flat[5] += 3
        return out

    monkeypatch.setattr(cli, "decode", off_by_three)
    rc, out, err = _run(capsys, "verify", _npy(tmp_path, _volume()))
    assert rc == 1
    assert "max abs error    3" in out and "NOT bit-exact" in out
    assert "not bit-exact" in _one_line_error(err)


def test_near_lossless_compress_is_verified_and_within_the_bound(tmp_path, capsys):
    vol = _volume((4, 10, 11), np.int16)
    src = _npy(tmp_path, vol)
    rc, out, err = _run(capsys, "compress", src, tmp_path / "n.volc", "--near", "3", "--threads", "2")
    assert (rc, err) == (0, "")
    assert "verified: max abs error <= 3" in out
    assert volcodec.read_header((tmp_path / "n.volc").read_bytes()).near == 3
    rc, _, err = _run(capsys, "decompress", tmp_path / "n.volc", tmp_path / "n.npy")
    assert (rc, err) == (0, "")
    assert 0 < volcodec.max_abs_error(np.load(tmp_path / "n.npy"), vol) <= 3
    rc, out, err = _run(capsys, "verify", src, "--near", "3")
    assert (rc, err) == (0, "") and "within the bound near = 3" in out


def test_compress_refuses_to_write_a_stream_that_fails_verification(tmp_path, capsys, monkeypatch):
    from volcodec import codec

    real = codec.decode
    monkeypatch.setattr(codec, "decode", lambda *a, **kw: real(*a, **kw) + np.uint16(1))
    src = _npy(tmp_path, _volume())
    rc, _, err = _run(capsys, "compress", src, tmp_path / "v.volc")
    assert rc == 1 and "[22 verify]" in _one_line_error(err)
    assert not (tmp_path / "v.volc").exists() and _leftovers(tmp_path) == []
    rc, out, err = _run(capsys, "compress", src, tmp_path / "v.volc", "--no-verify")
    assert (rc, err) == (0, "") and "not verified" in out


def test_example_volume():
    vol, bits = cli.example_volume()
    assert vol.shape == (24, 64, 64) and vol.dtype == np.int16 and bits == 16
    assert 0 <= vol.min() and vol.max() < 4096


def test_verify_example_as_a_real_command():
    """``python -m volcodec`` works as a separate process (last here: the JIT cache is warm)."""
    proc = subprocess.run([sys.executable, "-m", "volcodec", "verify", "--example"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "bit-exact" in proc.stdout and proc.stderr == ""


def test_ci_runs_the_readme_test_command():
    """README.md promises that CI runs exactly its test command (the second command block line)."""
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8").splitlines()
    block = readme[readme.index("```") + 1:]
    commands = block[:block.index("```")]
    assert len(commands) == 2 and "volcodec verify --example" in commands[0]
    ci = (root / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert commands[1] in ci


# ----------------------------------------------------------------------------- interrupted writes
class _HalfThenFail:
    """A file whose write stores half the bytes, then raises ``exc`` (a crash mid-write)."""

    def __init__(self, f, exc):
        self._f, self._exc = f, exc

    def write(self, data):
        data = memoryview(data).cast("B")
        self._f.write(data[:len(data) // 2])
        self._f.flush()
        raise self._exc

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)


@pytest.mark.parametrize("command", ["compress", "decompress"])
@pytest.mark.parametrize("exc, status", [(KeyboardInterrupt(), 130), (OSError(5, "I/O error"), 1)])
@pytest.mark.parametrize("force", [False, True])
def test_crash_mid_write_leaves_input_and_output_untouched(tmp_path, capsys, monkeypatch, command, exc,
                                                           status, force):
    src = _npy(tmp_path, _volume())
    if command == "decompress":
        volc = tmp_path / "v.volc"
        assert _run(capsys, "compress", src, volc)[0] == 0
        src = volc
    out = tmp_path / "out.bin"
    if force:
        out.write_bytes(b"previous output")
    before = src.read_bytes(), src.stat().st_mtime_ns
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: _HalfThenFail(real_fdopen(fd, *a, **k), exc))
    rc, _, err = _run(capsys, command, src, out, *(["--force"] if force else []))
    assert rc == status
    _one_line_error(err)
    assert (src.read_bytes(), src.stat().st_mtime_ns) == before
    assert (out.read_bytes() == b"previous output") if force else not out.exists()
    assert _leftovers(tmp_path) == []


def test_output_equal_to_input_is_refused_without_force(tmp_path, capsys):
    src = _npy(tmp_path, _volume())
    before = src.read_bytes()
    rc, _, err = _run(capsys, "compress", src, src)
    assert rc == 2 and "--force" in _one_line_error(err)
    assert src.read_bytes() == before and _leftovers(tmp_path) == []
