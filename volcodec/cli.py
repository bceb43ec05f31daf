"""The ``volcodec`` command: compress, decompress, info, verify.

::

    volcodec compress IN OUT [--effort N] [--bits-stored B] [--slab S] [--near D] [--threads N]
                             [--no-verify] [--force]
    volcodec decompress IN OUT [--threads N] [--force]   # OUT is a .npy file
    volcodec info FILE [--json]
    volcodec verify IN [--effort N] [--bits-stored B] [--slab S] [--near D] [--threads N]
    volcodec verify --example                     # the embedded CT crop
    volcodec dicom compress|decompress|verify SRC DST   # DICOM transcoding (volcodec.dicom.tool)

IN is a ``.npy`` file; other inputs (NIfTI, NRRD, DICOM series folders) go through
:func:`volcodec.volumes.load_volume`, imported only when needed.

``compress`` decodes the new stream and compares it with IN before writing anything (bit-exact, or
every voxel within ``--near D``); ``--no-verify`` skips that. Failures are one line on stderr, ``volcodec: error: <message>``; the exit code is 2 for usage
errors (bad options, an existing OUT without ``--force``) and 1 for everything the data causes
(unreadable input, corrupt stream, a round trip that is not bit-exact). Outputs are written to a
temporary file beside OUT and renamed over it, so OUT is either absent, the old file, or complete.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np

from . import DEFAULT_EFFORT, __version__, decode, encode, max_abs_error, read_header
from .errors import InputFileError, VolcodecError

EXAMPLE_NAME = "example_ct.npz"
EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A failure reported as one line; ``status`` is the exit code."""

    def __init__(self, message: str, status: int = EXIT_DATA):
        super().__init__(message)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """argparse prints usage plus a message and exits; here a usage error is one line, exit 2."""

    def error(self, message):
        raise CliError(f"{message} (see '{self.prog} --help')", EXIT_USAGE)


# ----------------------------------------------------------------------------- inputs
def example_volume() -> tuple[np.ndarray, int]:
    """The embedded example: 24 slices of 64 x 64 int16 head CT and its bits stored.

    Source and licence: volcodec/data/README.md.
    """
    ref = resources.files(__package__).joinpath("data").joinpath(EXAMPLE_NAME)
    with ref.open("rb") as f, np.load(f, allow_pickle=False) as z:
        return z["volume"], int(z["bits_stored"])


def _load_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as exc:
        raise InputFileError(f"{path} is not a readable .npy file ({exc})") from None
    if not isinstance(array, np.ndarray):
        array.close()  # an .npz archive under a .npy name
        raise InputFileError(f"{path} is an .npz archive, not one .npy array")
    return array


def load_input(path: str | os.PathLike) -> tuple[np.ndarray, int | None]:
    """Read IN as (array, bits_stored); bits_stored is None when the file does not declare it.

    ``.npy`` is read here, with any integer dtype the codec takes (the codec checks it); anything
    else goes to :func:`volcodec.volumes.load_volume`.
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        return _load_npy(path), None
    try:
        from .volumes import load_volume
    except ImportError as exc:
        raise InputFileError(f"{path}: only .npy input is supported here (cannot import "
                             f"volcodec.volumes: {exc})") from None
    try:
        array, info = load_volume(path)
    except ImportError as exc:
        raise InputFileError(f"{path}: reading this format needs an optional dependency ({exc}); "
                             f"install it with: pip install 'volcodec[dicom,nifti]'") from None
    # only DICOM declares Bits Stored; for other formats VolumeInfo gives the dtype's width, and
    # the codec's own choice (the narrowest width holding every value) is at least as good
    return array, (info.bits_stored if info.dicom is not None else None)


# ----------------------------------------------------------------------------- outputs
def _check_target(out: Path, force: bool) -> None:
    if out.is_dir():
        raise CliError(f"{out} is a folder; give a file name", EXIT_USAGE)
    if (out.exists() or out.is_symlink()) and not force:
        raise CliError(f"{out} exists; use --force to overwrite it", EXIT_USAGE)
    parent = out.parent
    if not parent.is_dir():
        raise CliError(f"{parent} is not an existing folder (the output folder is not created)")


def write_atomic(out: str | os.PathLike, write, force: bool = False) -> None:
    """Write OUT through ``write(file)`` into a temporary file beside it, then move it into place.

    Without ``force`` an existing OUT is never replaced, even if it appears while writing. The
    temporary file is removed on any failure, KeyboardInterrupt included.
    """
    out = Path(out)
    _check_target(out, force)
    tmp = out.parent / f".{out.name}.{secrets.token_hex(4)}.tmp"
    # os.open with 0o666 lets the umask set the mode, as for any new file (mkstemp would give 0600)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if force:
            os.replace(tmp, out)
        else:
            _move_no_clobber(tmp, out)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise


def _move_no_clobber(tmp: Path, out: Path) -> None:
    try:
        os.link(tmp, out)  # fails if OUT exists: no window between the check and the move
    except FileExistsError:
        raise CliError(f"{out} exists; use --force to overwrite it", EXIT_USAGE) from None
    except OSError:  # file systems without hard links: check, then rename
        if out.exists():
            raise CliError(f"{out} exists; use --force to overwrite it", EXIT_USAGE) from None
        os.replace(tmp, out)
        return
    tmp.unlink()


# ----------------------------------------------------------------------------- commands
def _encode_args(args, bits_stored: int | None) -> dict:
    if args.bits_stored is not None:
        bits_stored = args.bits_stored
    return {"bits_stored": bits_stored, "effort": args.effort, "slab": args.slab, "near": args.near,
            "threads": args.threads}


def _in_context(path, exc: VolcodecError) -> CliError:
    return CliError(f"{path}: {exc}")


def cmd_compress(args) -> int:
    _check_target(Path(args.output), args.force)  # fail before the (possibly long) encode
    array, bits_stored = load_input(args.input)
    try:
        # verify (on unless --no-verify): the stream is decoded and compared before it is written
        buf = encode(array, **_encode_args(args, bits_stored), verify=args.verify)
    except VolcodecError as exc:
        raise _in_context(args.input, exc) from None
    write_atomic(args.output, lambda f: f.write(buf), args.force)
    checked = (f", verified: max abs error <= {args.near}" if args.near else ", verified bit-exact") \
        if args.verify else ", not verified"
    print(f"{args.input} -> {args.output}: {array.nbytes} -> {len(buf)} bytes, "
          f"ratio {array.nbytes / len(buf):.3f}, {8 * len(buf) / array.size:.3f} bits/voxel{checked}")
    return EXIT_OK


def cmd_decompress(args) -> int:
    _check_target(Path(args.output), args.force)
    buf = Path(args.input).read_bytes()
    try:
        array = decode(buf, threads=args.threads)
    except VolcodecError as exc:
        raise _in_context(args.input, exc) from None
    write_atomic(args.output, lambda f: np.save(f, array, allow_pickle=False), args.force)
    print(f"{args.input} -> {args.output}: {array.shape} {array.dtype}")
    return EXIT_OK


def header_summary(buf) -> dict:
    """The header of stream ``buf`` as a JSON-serialisable dict, with sizes and ratio."""
    hdr = read_header(buf)
    voxels = int(np.prod(hdr.shape))
    raw = voxels * hdr.dtype.itemsize
    return {
        "version": hdr.version,
        "shape": list(hdr.shape),
        "dtype": hdr.dtype.name,
        "bits_stored": hdr.bits_stored,
        "effort": hdr.effort,
        "near": hdr.near,
        "slab_z": hdr.slab_z,
        "slab_t": hdr.slab_t,
        "n_slabs": hdr.n_slabs,
        "n_frames": hdr.n_frames,
        "predictor_mask": f"0x{hdr.predictor_mask:08x}",
        "high_bits_plane_bytes": hdr.plane[1] if hdr.plane else 0,
        "stream_bytes": len(buf),
        "raw_bytes": raw,
        "ratio": round(raw / len(buf), 4),
        "bits_per_voxel": round(8 * len(buf) / voxels, 4),
    }


def cmd_info(args) -> int:
    buf = Path(args.file).read_bytes()
    try:
        info = header_summary(buf)
    except VolcodecError as exc:
        raise _in_context(args.file, exc) from None
    if args.json:
        print(json.dumps({"file": str(args.file), **info}, indent=2))
    else:
        print(f"{'file':<22} {args.file}")
        for key, value in info.items():
            if key == "shape":
                value = " x ".join(map(str, value))
            print(f"{key:<22} {value}")
    return EXIT_OK


def _warm_up(dtype: np.dtype) -> None:
    """Compile (or load from cache) the kernels so the timings measure coding, not numba."""
    decode(encode(np.zeros((2, 4, 4), dtype)))


def cmd_verify(args) -> int:
    if args.example == (args.input is not None):
        raise CliError("verify takes either IN or --example (see 'volcodec verify --help')", EXIT_USAGE)
    if args.example:
        name = "example (embedded head CT)"
        array, bits_stored = example_volume()
    else:
        name = str(args.input)
        array, bits_stored = load_input(args.input)
    kw = _encode_args(args, bits_stored)
    try:
        _warm_up(array.dtype)
        t0 = time.perf_counter()
        buf = encode(array, **kw)
        t1 = time.perf_counter()
        back = decode(buf, threads=args.threads)
        t2 = time.perf_counter()
    except VolcodecError as exc:
        raise _in_context(name, exc) from None
    mvox = array.size / 1e6
    same_layout = back.shape == array.shape and back.dtype == array.dtype.newbyteorder("=")
    max_err = max_abs_error(back, array) if back.shape == array.shape else None
    exact = same_layout and max_err == 0
    within = same_layout and max_err is not None and max_err <= args.near
    hdr = read_header(buf)
    print(f"input            {name}: {' x '.join(map(str, array.shape))} {array.dtype.name}, "
          f"bits_stored {hdr.bits_stored}")
    print(f"effort           {hdr.effort}, {hdr.n_slabs} slab(s), near {hdr.near}")
    print(f"size             {array.nbytes} -> {len(buf)} bytes")
    print(f"bits/voxel       {8 * len(buf) / array.size:.3f}")
    print(f"ratio            {array.nbytes / len(buf):.3f}")
    print(f"max abs error    {'n/a (shape differs)' if max_err is None else max_err}")
    print(f"encode           {mvox / (t1 - t0):.2f} Mvox/s ({t1 - t0:.3f} s)")
    print(f"decode           {mvox / (t2 - t1):.2f} Mvox/s ({t2 - t1:.3f} s)")
    if args.near:
        print(f"result           {'within' if within else 'NOT within'} the bound near = {args.near}")
    else:
        print(f"result           {'bit-exact' if exact else 'NOT bit-exact'}")
    if not within:
        what = (f"decoded {back.shape} {back.dtype}, expected {array.shape} {array.dtype}"
                if not same_layout else f"max abs error {max_err}")
        raise CliError(f"{name}: round trip is not {'within near' if args.near else 'bit-exact'} ({what})")
    return EXIT_OK


# ----------------------------------------------------------------------------- parser
def _int_in(lo: int, hi: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is outside {lo}..{hi}")
        return value

    return parse


def _add_encode_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--effort", type=_int_in(1, 9), default=DEFAULT_EFFORT, metavar="N",
                   help=f"1 (fastest) .. 9 (smallest); every level decodes alike (default {DEFAULT_EFFORT})")
    p.add_argument("--bits-stored", type=_int_in(1, 32), default=None, metavar="B",
                   help="significant bits, as DICOM (0028,0101) Bits Stored (default: from the file "
                        "for DICOM, else the narrowest width that holds every value)")
    p.add_argument("--slab", type=_int_in(1, 65535), default=None, metavar="S",
                   help="slices per independently decodable slab (default: 16, or 8 to 16 in 3-D so that "
                        "two threads share the work evenly)")
    p.add_argument("--near", type=_int_in(0, (1 << 32) - 1), default=0, metavar="D",
                   help="near-lossless: every voxel within D of the original (default 0 = lossless)")
    add_threads_option(p)


def add_threads_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=_int_in(1, 1024), default=None, metavar="N",
                   help="threads coding slabs in parallel (default: all cores; output is identical)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="volcodec", description="Lossless compression of CT/MR volumes.")
    parser.add_argument("--version", action="version", version=f"volcodec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("compress", help="compress a volume (.npy, NIfTI, NRRD, DICOM folder)",
                       description="Compress a volume to a volcodec stream.")
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT")
    _add_encode_options(p)
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip decoding the new stream and checking it against IN before writing")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    p.set_defaults(run=cmd_compress)

    p = sub.add_parser("decompress", help="decompress a stream to a .npy file",
                       description="Decompress a volcodec stream into a .npy file.")
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    add_threads_option(p)
    p.set_defaults(run=cmd_decompress)

    p = sub.add_parser("info", help="print a stream's header", description="Print a stream's header.")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=cmd_info)

    p = sub.add_parser("verify", help="round-trip a volume in memory and check it is bit-exact",
                       description="Compress IN in memory, decompress it, compare bit for bit and "
                                   "print size and speed. Exit code 1 if the round trip is not exact.")
    p.add_argument("input", metavar="IN", nargs="?")
    p.add_argument("--example", action="store_true", help="use the embedded example CT volume")
    _add_encode_options(p)
    p.set_defaults(run=cmd_verify)
    _add_dicom(sub)
    return parser


def _add_dicom(sub) -> None:
    """``volcodec dicom ...`` (volcodec.dicom.tool), when the dicom extra is installed."""
    try:
        from .dicom import tool
    except ImportError:  # pydicom missing: the group is absent, as the extra says
        return
    tool.add_parser(sub, _int_in)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (``volcodec`` passes it to sys.exit)."""
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except CliError as exc:
        return _fail(str(exc), exc.status)
    except VolcodecError as exc:
        return _fail(str(exc), EXIT_DATA)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        return _fail(f"{exc.strerror or exc}{where}", EXIT_DATA)
    except MemoryError as exc:
        return _fail(f"out of memory ({exc})" if str(exc) else "out of memory", EXIT_DATA)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK


def _fail(message: str, status: int) -> int:
    print(f"volcodec: error: {' '.join(message.split())}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
