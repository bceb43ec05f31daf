"""The fuzzing tools stay usable: the committed seeds decode, the checksum repair is right, and the
targets' own checks pass on every seed and regression file (run here without libFuzzer's engine;
fuzz/smoke.sh runs the engine in CI)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import volcodec

ROOT = Path(__file__).resolve().parents[1]
FUZZ = ROOT / "fuzz"
SEEDS = sorted((FUZZ / "corpus").iterdir())
INPUTS = SEEDS + sorted((ROOT / "tests" / "regressions").glob("*.vlc"))
DICOM_SEEDS = sorted((FUZZ / "corpus_dicom").iterdir())
DICOM_INPUTS = DICOM_SEEDS + sorted((ROOT / "tests" / "regressions").glob("*.dcmfuzz"))

sys.path.insert(0, str(FUZZ))
from repair import fix_checksums  # noqa: E402


def test_seeds_are_small_valid_streams_covering_the_decoder():
    assert len(SEEDS) >= 8
    headers = [volcodec.read_header(p.read_bytes()) for p in SEEDS]
    for p in SEEDS:
        buf = p.read_bytes()
        assert len(buf) <= 1024
        volcodec.decode(buf)
    assert {h.dtype.str[1:] for h in headers} == {"u1", "i1", "u2", "i2", "u4", "i4"}
    assert {h.ndim for h in headers} == {3, 4} and any(h.plane for h in headers)
    assert any(h.mixing for h in headers) and any(not h.mixing for h in headers)
    assert any(h.n_slabs > 1 for h in headers)
    assert any(p.read_bytes()[off] == volcodec.format.SLAB_RAW for p in SEEDS
               for off, _, _ in volcodec.read_header(p.read_bytes()).slabs)


def test_seeds_are_what_make_corpus_writes(tmp_path):
    import shutil
    for name in ("make_corpus.py", "dicom_input.py", "repair.py"):
        shutil.copy(FUZZ / name, tmp_path)
    subprocess.run([sys.executable, str(tmp_path / "make_corpus.py")], check=True, capture_output=True,
                   env={"PYTHONPATH": str(ROOT), "PATH": ""}, timeout=600)
    for folder, seeds in (("corpus", SEEDS), ("corpus_dicom", DICOM_SEEDS)):
        assert {p.name: p.read_bytes() for p in (tmp_path / folder).iterdir()} == \
            {p.name: p.read_bytes() for p in seeds}


def test_dicom_seeds_are_small_datasets_that_decode():
    pytest.importorskip("pydicom")
    from dicom_input import build_dataset, parse_input
    from volcodec.dicom import decompress_dataset

    assert len(DICOM_SEEDS) >= 5
    kinds = set()
    for p in DICOM_SEEDS:
        buf = p.read_bytes()
        assert len(buf) <= 1024
        attrs, frags = parse_input(buf)
        assert len(frags) == attrs.frames
        plain = decompress_dataset(build_dataset(attrs, frags))
        assert plain.pixel_array.shape[-2 if attrs.samples == 1 else -3] == attrs.rows
        kinds.add((attrs.samples, attrs.bits_allocated, attrs.offsets, attrs.near))
    assert {k[0] for k in kinds} == {1, 3} and {k[1] for k in kinds} == {8, 16, 32}
    assert {k[2] for k in kinds} == {"empty", "bot", "eot"} and {k[3] for k in kinds} == {False, True}


@pytest.mark.parametrize("seed", SEEDS, ids=lambda p: p.stem)
def test_fix_checksums_repairs_what_a_mutation_broke(seed):
    buf = seed.read_bytes()
    assert fix_checksums(buf) == buf
    hdr = volcodec.read_header(buf)
    off, ln, _ = hdr.slabs[-1]
    bad = bytearray(buf)
    bad[off + ln - 1] ^= 0x40  # a payload byte: its slab crc is recomputed
    fixed = fix_checksums(bytes(bad))
    assert volcodec.read_header(fixed).slabs[-1][:2] == (off, ln)
    try:
        out = volcodec.decode(fixed)
    except volcodec.VolcodecError as exc:
        assert not isinstance(exc, volcodec.ChecksumError)
    else:
        assert out.shape == hdr.shape


@pytest.mark.parametrize("target", ["fuzz_read_header", "fuzz_decode", "fuzz_decode_frames"])
def test_targets_pass_on_seeds_and_regressions(target):
    pytest.importorskip("atheris")
    mod = importlib.import_module(target)
    for p in INPUTS:
        buf = p.read_bytes()
        for data in (buf, buf[:len(buf) // 2], buf[:100] + bytes(50)):
            mod.test_one_input(data)


def test_dicom_target_passes_on_seeds_and_regressions():
    pytest.importorskip("atheris")
    pytest.importorskip("pydicom")
    import warnings

    mod = importlib.import_module("fuzz_dicom_decode")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns while it searches malformed fragments for frames
        for p in DICOM_INPUTS:
            buf = p.read_bytes()
            other_offsets = buf[:3] + bytes([buf[3] ^ 0xC0]) + buf[4:]
            for data in (buf, buf[:len(buf) // 2], buf[:60] + bytes(50), other_offsets):
                mod.test_one_input(data)


def test_smoke_run_is_in_ci():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    smoke = (FUZZ / "smoke.sh").read_text(encoding="utf-8")
    assert "fuzz/smoke.sh" in ci and "[fuzz]" in ci
    for t in ("read_header", "decode", "decode_frames", "dicom_decode"):
        assert (FUZZ / f"fuzz_{t}.py").is_file() and f" {t}:" in smoke


@pytest.mark.parametrize("variable", ["NUMBA_BOUNDSCHECK", "VOLCODEC_BOUNDSCHECK"])
def test_boundscheck_variable_checks_even_with_a_warm_cache(tmp_path, variable):
    """numba's cache ignores compile flags: a build cached without bounds checks must not be
    loaded when fuzzing asks for them (volcodec/_jit.py turns the cache off then)."""
    (tmp_path / "oob.py").write_text(
        "import numpy as np\n"
        "from volcodec._jit import kernel\n"
        "@kernel\n"
        "def peek(a, i):\n"
        "    return a[i]\n"
        "try:\n"
        "    peek(np.zeros(3), 1 << 20)\n"
        "    print('unchecked')\n"
        "except IndexError:\n"
        "    print('checked')\n", encoding="utf-8")
    env = {"PYTHONPATH": f"{ROOT}{':' + str(tmp_path)}", "PATH": "", "NUMBA_CACHE_DIR": str(tmp_path / "cache")}

    def run(**extra):
        proc = subprocess.run([sys.executable, "-c", "import oob"], env={**env, **extra}, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300, check=True)
        return proc.stdout.strip()

    run()  # warms the cache with an unchecked build (its result is whatever memory held)
    assert list((tmp_path / "cache").rglob("*.nbi")), "the unchecked build was not cached"
    assert run(**{variable: "1"}) == "checked"
