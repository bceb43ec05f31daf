"""The public encode/decode functions: validate, allocate, call the kernels, raise on status.

A volume is handled as T x Z frames of Y x X voxels (T = 1 for 3-D). Frames are grouped into
slabs of ``slab_t`` time points x ``slab`` slices; each slab is coded independently (models start
fresh), frames inside it t-major, and a frame may predict from the previous slice and/or the
previous time point of the same slab. The reference choice is made per frame by the encoder and
recorded in the slab payload.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
import zlib
from typing import NamedTuple

import numpy as np

from . import format as fmt
from ._threads import run_each
from .errors import ChecksumError, CorruptDataError, FormatError, InvalidArgumentError, VerifyError
from .kernels import rangecoder as rcm
from .kernels import fast as fastk
from .kernels import scan
from .params import EFFORTS

DEFAULT_EFFORT = 1  # the fastest level that keeps the default well below JPEG-LS (benchmarks/results)
DEFAULT_SLAB = 16  # the most slices per slab when encode() picks (random access decodes one slab)
SLAB_MIN = 8  # the fewest slices per slab it picks (unless the volume has fewer)
DEFAULT_SLAB_T = 8
_SUPPORTED = ("u1", "i1", "u2", "i2", "u4", "i4")
_FAST_MODE = fmt.SLAB_FAST8P  # the fast-scan mode the encoder writes (tests write older ones)
_BINARY_MODE = fmt.SLAB_CODED2  # the binary-scan mode it writes
# how each fast-scan mode codes (format.md): token tree depth, token models starting from the prior,
# run mode (with clipped bias errors), plain bias means (mode 2; later modes shrink them)
_FAST_CODING = {
    fmt.SLAB_FAST: (fastk.DEPTH_OLD, False, False, True),
    fmt.SLAB_FAST2: (fastk.DEPTH_OLD, False, False, False),
    fmt.SLAB_FAST_RUN: (fastk.DEPTH_OLD, False, True, False),
    fmt.SLAB_FAST8: (fastk.DEPTH, False, True, False),
    fmt.SLAB_FAST8P: (fastk.DEPTH, True, True, False),
}
# the binary scan's limit on the error a bias sum takes (mode 7 clips, mode 0 does not)
_BINARY_CLIP = {fmt.SLAB_CODED: scan.NO_CLIP, fmt.SLAB_CODED2: scan.BIAS_CLIP}
_FAST_NEAR = False  # near-lossless at effort 1 uses the binary scan (smaller); tests turn this on


# ----------------------------------------------------------------------------- helpers
def _value_range(bits: int, signed: bool) -> tuple[int, int]:
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _bits_needed(lo: int, hi: int, signed: bool) -> int:
    b = 1
    while True:
        vmin, vmax = _value_range(b, signed)
        if vmin <= lo and hi <= vmax:
            return b
        b += 1


def _as_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}")
    return int(value)


_TABLES = scan.make_tables()


class _Work:
    """Scratch arrays for one slab task, shared by the slab's frames (sized for Y x X). Frames are
    int32 unless the values need more (32-bit data), which halves the memory the coder touches."""

    def __init__(self, y: int, x: int, bits: int):
        self.y, self.x = y, x
        self.frame_dtype = np.int32 if bits <= 31 else np.int64
        self.shape = (y + scan.PAD_TOP + scan.PAD_BOTTOM, x + 2 * scan.PAD_SIDE)
        self.eb = np.zeros((6, x + 2 * scan.PAD_SIDE), np.int64)
        self.pv = np.zeros(scan.N_PRED, np.float64)
        self.dummy = np.zeros((1, 1), self.frame_dtype)
        self.act = np.zeros(scan.N_PRED, np.int64)
        self._err: dict[int, np.ndarray] = {}
        self.wtab, self.recip, self.squash, self.stretch = _TABLES

    def errors(self, n_act: int) -> np.ndarray:
        """Error rows for ``n_act`` predictors, packed so a row stays in L1 cache."""
        e = self._err.get(n_act)
        if e is None:
            e = self._err[n_act] = np.zeros((2, self.x + 2 * scan.PAD_SIDE, n_act), np.int32)
        return e

    def frame(self) -> np.ndarray:
        return np.zeros(self.shape, self.frame_dtype)

    def interior(self, p: np.ndarray) -> np.ndarray:
        return p[scan.PAD_TOP:scan.PAD_TOP + self.y, scan.PAD_SIDE:scan.PAD_SIDE + self.x]


def _refs_for(code: int, zref, tref):
    """Map a frame's reference code to (A, B, nref)."""
    if code == fmt.REF_Z:
        return zref, None, 1
    if code == fmt.REF_T:
        return tref, None, 1
    if code == fmt.REF_ZT:
        return zref, tref, 2
    if code == fmt.REF_TZ:
        return tref, zref, 2
    return None, None, 0


def _proxy_cost(s: np.ndarray) -> float:
    """Cheap stand-in for the coded size of rows ``s`` (every 4th row of a frame, or of its
    difference to a reference): their mean |horizontal difference|."""
    return float(np.abs(np.diff(s, axis=1)).mean()) if s.shape[1] > 1 else float(np.abs(s).mean())


def _choose_ref(cur, zref, tref, secondary: bool, slack: float) -> int:
    """Pick the reference(s) for a frame from the original data (encoder only). A reference is
    used when its proxy cost is below ``slack`` times the intra cost (slack > 1 when the blend
    keeps intra predictors that can take over where the reference does not help). Only every 4th
    row is looked at, and only those rows are converted and subtracted (a tenth of an effort-1
    encode went to whole-frame differences of which three quarters were thrown away)."""
    c = cur[::4].astype(np.int64)
    cands = []
    if zref is not None:
        cands.append((_proxy_cost(c - zref[::4]), fmt.REF_Z))
    if tref is not None:
        cands.append((_proxy_cost(c - tref[::4]), fmt.REF_T))
    if not cands:
        return fmt.REF_NONE
    cands.sort()
    intra = _proxy_cost(c)
    if cands[0][0] > slack * intra:
        return fmt.REF_NONE
    if secondary and len(cands) == 2:
        return fmt.REF_ZT if cands[0][1] == fmt.REF_Z else fmt.REF_TZ
    return cands[0][1]


# ----------------------------------------------------------------------------- slab coding
def _code_slab(dec, work, get_frame, put_frame, tr, zr, refcodes, mask, mixing, bits, near, signed, buf, start,
               secondary=False, stop_frame=None, fast=0, end=None, rbuf=None, rstart=0,
               binary=fmt.SLAB_CODED):
    """Run the kernel over one slab's frames (t-major). Returns the coder state: the final byte
    position is ``st[2]`` (and, for the fast scan, the bit stream's ``st[5]``).

    Encoder: ``get_frame(t, z)`` gives the original frame; ``refcodes`` is filled in.
    Decoder: ``put_frame(t, z, interior)`` receives each decoded frame; ``refcodes`` is read.
    ``stop_frame`` (slab-local index) lets the decoder stop after the last frame it needs.
    ``binary`` is the binary scan's slab mode (0, or 7: clipped bias errors), used when ``fast`` is 0.
    ``fast`` (a fast-scan slab mode, 0 for the binary scan) selects the fast scan: the range coder
    uses ``buf[start:end]``, the raw bits ``rbuf[rstart:]``, and the mode picks the bias means.
    """
    minval, maxval = _value_range(bits, signed)
    bias = np.zeros((scan.N_BIAS, 3), np.int64)  # sum, count + 1, mean (see scan._code_frame)
    bias[:, 1] = 1
    end = len(buf) if end is None else end
    if fast:
        depth, prior, runs, plain_means = _FAST_CODING[fast]
        tree = fastk.new_tree(depth, prior=prior)
        recip = work.recip if plain_means else fastk.RECIP_PRIOR
        runs = int(runs)
        rmdl = rcm.new_models(fastk.N_RUN)
        st = fastk.new_state()
        st[:3] = rcm.rc_start(buf, start, end, dec)
        st[5] = rstart
    else:
        mdl = rcm.new_models(scan.N_MODELS)
        mdl2 = rcm.new_models(scan.N_MODELS2 if mixing else 1)
        mixw = np.full((scan.N_POS * scan.N_MIXSEL, 4), scan.MIX_W0, np.int64)
        st = np.array(rcm.rc_start(buf, start, end, dec), np.int64)
    slack = 1.5 if mask & ((1 << scan.N_INTRA) - 1) else 1.0
    prev_t = {}  # z -> padded frame of the previous time point
    i = 0
    for t in tr:
        this_t = {}
        zprev = None
        for z in zr:
            P = work.frame()
            tref = prev_t.get(z)
            if dec:
                code = int(refcodes[i])
            else:
                src = get_frame(t, z)
                work.interior(P)[...] = src
                code = _choose_ref(src, None if zprev is None else work.interior(zprev),
                                   None if tref is None else work.interior(tref), secondary, slack)
                refcodes[i] = code
            A, B, nref = _refs_for(code, zprev, tref)
            if fast:  # one reference at most (a second one, if a stream names it, is ignored)
                fastk.fast_frame(dec, P, work.dummy if A is None else A, nref, work.y, work.x, minval, maxval,
                                 bits, near, work.eb, tree, bias, recip, st, buf, end, rbuf, len(rbuf), runs,
                                 rmdl, depth)
            else:
                n_act = scan.active_predictors(mask, nref, work.act)
                err = work.errors(n_act)
                scan.code_frame(dec, P, work.dummy if A is None else A, work.dummy if B is None else B,
                                nref, work.y, work.x, minval, maxval, bits, near, work.act, n_act, err,
                                work.eb, work.pv, mdl, bias, work.wtab, work.recip, int(mixing), mdl2, mixw,
                                work.squash, work.stretch, st, buf, end, _BINARY_CLIP[binary])
            if dec:
                put_frame(t, z, work.interior(P))
            if stop_frame is not None and i >= stop_frame:
                return st
            scan.pad_edges(P, work.y, work.x)
            if t != tr[-1]:  # only a later time point of this slab predicts from it
                this_t[z] = P
            zprev = P
            i += 1
        prev_t = this_t
    return st


# ----------------------------------------------------------------------------- encode
def _validate_array(array) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        try:
            array = np.asarray(array)
        except Exception as exc:  # noqa: BLE001 - anything numpy refuses is a bad argument
            raise InvalidArgumentError(f"cannot convert input to an array: {exc}") from None
    if array.dtype.kind not in "iu" or array.dtype.str[1:] not in _SUPPORTED:
        raise InvalidArgumentError(
            f"dtype {array.dtype} is not supported (expected uint8, int8, uint16, int16, uint32, int32)")
    if array.ndim not in (3, 4):
        raise InvalidArgumentError(f"expected a (z, y, x) or (t, z, y, x) array, got shape {array.shape}")
    if array.size == 0:
        raise InvalidArgumentError(f"array of shape {array.shape} is empty")
    if max(array.shape) > fmt.MAX_DIM:
        raise InvalidArgumentError(f"dimension larger than {fmt.MAX_DIM} in shape {array.shape}")
    return array


def thread_count(threads=None) -> int:
    """How many threads a ``threads`` argument means: None = every core this process may use, else
    an integer >= 1 (anything else raises :class:`InvalidArgumentError`)."""
    if threads is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except (AttributeError, OSError):  # not Linux
            return max(1, os.cpu_count() or 1)
    threads = _as_int(threads, "threads")
    if threads < 1:
        raise InvalidArgumentError(f"threads must be >= 1 (or None for all cores), got {threads}")
    return threads


def _two_thread_makespan(sizes: list[int]) -> int:
    """Frames the busier of two threads codes when each takes the next slab as it gets free
    (largest first, as the thread pool's order is slab order and the last slab is the small one)."""
    a = b = 0
    for n in sorted(sizes, reverse=True):
        if a <= b:
            a += n
        else:
            b += n
    return max(a, b)


def auto_slab(T: int, Z: int) -> int:
    """Slices per slab when the caller does not choose one. A 4-D series (T > 1) has DEFAULT_SLAB
    (it has slabs along t as well). A 3-D volume gets, of the sizes SLAB_MIN..DEFAULT_SLAB, the
    largest (fewest slabs, fewest model restarts) with which two threads finish within 3% of the
    best any of them allows: a 64-slice volume keeps 4 slabs of 16, but a 41-slice one gets
    10, 10, 10, 10, 1 (two threads up to 1.95x) instead of 16, 16, 9 (at most 1.64x), for about
    0.2% more bytes. More cores never get fewer slabs than with DEFAULT_SLAB slices each."""
    if T > 1 or Z <= SLAB_MIN:
        return min(DEFAULT_SLAB, Z)
    spans = {}
    for s in range(SLAB_MIN, min(DEFAULT_SLAB, Z) + 1):
        spans[s] = _two_thread_makespan([min(s, Z - z0) for z0 in range(0, Z, s)])
    best = min(spans.values())
    return max(s for s, m in spans.items() if m <= best * 1.03)


def encode(array, *, bits_stored: int | None = None, effort: int = DEFAULT_EFFORT,
           slab: int | None = None, slab_t: int = DEFAULT_SLAB_T, near: int = 0,
           threads: int | None = None, verify: bool = False) -> bytes:
    """Compress a (z, y, x) or (t, z, y, x) integer volume; returns the stream.

    ``bits_stored`` (1..dtype width) declares the significant bits, as DICOM (0028,0101) does; words
    with bits above it are still reproduced exactly (they go to a separate high-bits plane). When
    None, the smallest width that holds every value is used. ``effort`` 1..9 trades speed for size;
    every level decodes with the same decoder. ``slab``/``slab_t`` set how many slices/time points
    form an independently decodable slab (``slab=None``: :func:`auto_slab`, 16 slices or, in 3-D,
    8 to 16 so that two threads share the work evenly). ``near`` = 0 is lossless; ``near`` > 0 guarantees
    |decoded - original| <= near for every voxel (recorded in the header). ``threads`` codes slabs
    in parallel (None: all cores); the bytes do not depend on it. ``verify`` decodes the new stream
    and checks it against the input (exact, or within ``near``) before returning it.
    """
    array = _validate_array(array)
    effort = _as_int(effort, "effort")
    if effort not in EFFORTS:
        raise InvalidArgumentError(f"effort must be 1..9, got {effort}")
    near = _as_int(near, "near")
    if not 0 <= near <= fmt.MAX_NEAR:
        raise InvalidArgumentError(f"near must be 0..{fmt.MAX_NEAR}, got {near}")
    auto = slab is None
    slab = DEFAULT_SLAB if auto else _as_int(slab, "slab")
    slab_t = _as_int(slab_t, "slab_t")
    if not 1 <= slab <= 65535 or not 1 <= slab_t <= 65535:
        raise InvalidArgumentError(f"slab and slab_t must be 1..65535, got {slab}, {slab_t}")
    threads = thread_count(threads)
    width = array.dtype.itemsize * 8
    signed = array.dtype.kind == "i"
    lo, hi = int(array.min()), int(array.max())
    if bits_stored is None:
        bits_stored = _bits_needed(lo, hi, signed)
    else:
        bits_stored = _as_int(bits_stored, "bits_stored")
        if not 1 <= bits_stored <= width:
            raise InvalidArgumentError(f"bits_stored must be 1..{width} for {array.dtype}, got {bits_stored}")
    vmin, vmax = _value_range(bits_stored, signed)
    params = EFFORTS[effort]
    if near and params.fast and not _FAST_NEAR:
        # the fast scan decodes near-lossless streams, but codes them larger than the binary scan
        # at effort 1 does (JPEG-LS NEAR=1 beats it on thick-slice CT), so near-lossless keeps that
        params = dataclasses.replace(params, fast=False)
    ndim = array.ndim
    tzyx = array.reshape((1,) + array.shape) if ndim == 3 else array
    T, Z, Y, X = tzyx.shape
    slab_tt = min(slab_t, T)
    slab_z = auto_slab(T, Z) if auto else min(slab, Z)

    plane_bytes = b""
    low = tzyx
    if lo < vmin or hi > vmax:
        # words with bits above bits_stored: code the low bits_stored bits (sign-extended for
        # signed data) here and the rest as a separate stream, so nothing is altered. The plane
        # is always lossless; near-lossless applies to the low bits, which keeps the bound.
        w = tzyx.astype(np.int64)
        low = w & ((1 << bits_stored) - 1)
        if signed:
            sign = np.int64(1) << (bits_stored - 1)
            low = (low ^ sign) - sign
        high = (w - low) >> bits_stored
        high_arr = high.astype(array.dtype)
        # bits_stored=None fits the plane's own range (signed data may need width - b + 1 bits),
        # so the plane never needs a plane of its own
        plane_bytes = encode(high_arr if ndim == 4 else high_arr[0], bits_stored=None,
                             effort=min(effort, 3), slab=slab_z, slab_t=slab_t, threads=threads)

    n_slabs = fmt.slab_count(T, Z, slab_tt, slab_z)

    def task(s):
        tr, zr = fmt.slab_ranges(T, Z, slab_tt, slab_z, s)
        return _encode_slab(_Work(Y, X, bits_stored), low, tr, zr, params, bits_stored, near, signed,
                            array.dtype)

    payloads = run_each(task, range(n_slabs), threads)
    base = fmt.table_size(n_slabs)
    entries, off = [], base
    for p in payloads:
        entries.append((off, len(p), zlib.crc32(p)))
        off += len(p)
    plane = (off, len(plane_bytes)) if plane_bytes else None
    head = fmt.pack_header((T, Z, Y, X), ndim, array.dtype, bits_stored, effort, near, slab_z, slab_tt,
                           params.predictor_mask, entries, plane, params.mixing)
    stream = b"".join([head, *payloads, plane_bytes])
    if verify:
        _verify(stream, array, near, threads)
    return stream


def _verify(stream: bytes, array: np.ndarray, near: int, threads: int) -> None:
    """Decode ``stream`` and check it reproduces ``array`` (within ``near``), one index of the first
    axis at a time, so the comparison needs no full-size int64 copy."""
    got = decode(stream, threads=threads, max_voxels=array.size)
    a = array.reshape(got.shape)
    for k in range(a.shape[0]):
        worst = max_abs_error(a[k], got[k])
        if worst > near:
            raise VerifyError(f"decoding the new stream gives an error of {worst} at index {k} of the "
                              f"first axis, above the bound near = {near}; the stream was not returned")


def max_abs_error(a: np.ndarray, b: np.ndarray) -> int:
    """Largest |a - b| over two integer arrays of the same shape, without overflow."""
    if a.size == 0:
        return 0
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


def _encode_slab(work, plane, tr, zr, params, bits, near, signed, dtype) -> bytes:
    n_frames = len(tr) * len(zr)
    raw_size = n_frames * work.y * work.x * dtype.itemsize
    head = 1 + n_frames + (4 if params.fast else 0)  # the fast scan's payload: mode, refs, u32 length
    cap = head + raw_size + raw_size // 8 + 64
    out = np.zeros(cap, np.uint8)
    refcodes = out[1:1 + n_frames]
    rbuf = np.zeros(raw_size + raw_size // 8 + 64 if params.fast else 0, np.uint8)
    st = _code_slab(0, work, lambda t, z: plane[t, z], None, tr, zr, refcodes, params.predictor_mask,
                    params.mixing, bits, near, signed, out, head, secondary=params.secondary_ref,
                    fast=_FAST_MODE if params.fast else 0, rbuf=rbuf, binary=_BINARY_MODE)
    n = int(rcm.rc_flush(st[0], st[1], st[2], out, cap))
    if params.fast:
        rn = int(fastk.bw_flush(st[3], st[4], st[5], rbuf, len(rbuf)))
        if n <= cap and rn <= len(rbuf) and n + rn - head < raw_size:
            out[0] = _FAST_MODE
            out[head - 4:head] = np.frombuffer((n - head).to_bytes(4, "little"), np.uint8)
            # runs can cost less than the floor the decoder checks (a blank slab): zeros after the
            # bit stream are never read
            pad = max(0, fmt.slab_floor(n_frames, work.y, work.x) - n - rn)
            return out[:n].tobytes() + rbuf[:rn].tobytes() + bytes(pad)
        n = cap + 1  # did not fit, or no smaller than the words: store them verbatim
    if n > cap or n - head >= raw_size:
        # incompressible (noise): store the words verbatim so the size never grows by more than
        # the slab header (verbatim is also lossless, so it keeps any near bound)
        raw = np.ascontiguousarray(np.asarray(plane)[tr.start:tr.stop, zr.start:zr.stop])
        return bytes([fmt.SLAB_RAW]) + bytes(n_frames) + raw.astype(dtype.newbyteorder("<")).tobytes()
    out[0] = _BINARY_MODE
    return out[:n].tobytes()


# ----------------------------------------------------------------------------- decode
def _as_buffer(buf) -> memoryview:
    try:
        mv = memoryview(buf)
    except TypeError:
        raise InvalidArgumentError(f"expected a bytes-like object, got {type(buf).__name__}") from None
    if not mv.contiguous:
        mv = memoryview(mv.tobytes())
    return mv.cast("B") if mv.format != "B" or mv.ndim != 1 else mv


def read_header(buf, *, max_voxels: int = fmt.DEFAULT_MAX_VOXELS) -> fmt.Header:
    """Parse and validate the stream's header (no pixel decoding)."""
    return fmt.read_header(_as_buffer(buf), max_voxels=max_voxels)


def _decode_slab(buf, hdr, s, work, put, stop_frame=None):
    payload = fmt.check_slab(buf, hdr, s)
    tr, zr = hdr.slab_frames(s)
    n_frames = len(tr) * len(zr)
    data = np.frombuffer(payload, np.uint8).copy()  # writable: one kernel signature for both directions
    if len(data) < 1 + n_frames:
        raise CorruptDataError(f"slab {s}: payload of {len(data)} bytes is shorter than its "
                               f"{1 + n_frames}-byte frame table", slab=s)
    mode = int(data[0])
    refcodes = data[1:1 + n_frames]
    if fmt.MODE_SINCE.get(mode, 1) > hdr.version:
        raise CorruptDataError(f"slab {s}: payload mode {mode} does not exist in format version {hdr.version}",
                               slab=s)
    _, _, Y, X = hdr.tzyx
    if mode == fmt.SLAB_RAW:
        want = n_frames * Y * X * hdr.dtype.itemsize
        if len(data) - 1 - n_frames != want:
            raise CorruptDataError(f"slab {s}: raw payload holds {len(data) - 1 - n_frames} bytes, "
                                   f"expected {want}", slab=s)
        raw = np.frombuffer(payload[1 + n_frames:], hdr.dtype).reshape(len(tr), len(zr), Y, X)
        for i, t in enumerate(tr):
            for j, z in enumerate(zr):
                put(t, z, raw[i, j])
        return
    if mode not in fmt.CODED_MODES:
        raise CorruptDataError(f"slab {s}: unknown payload mode {mode} (expected 0 to {max(fmt.MODE_SINCE)})",
                               slab=s)
    if int(refcodes.max(initial=0)) >= fmt.N_REF_CODES:
        raise CorruptDataError(f"slab {s}: reference code above {fmt.N_REF_CODES - 1}", slab=s)
    # a reference must exist inside the slab: z-references need z > z0, t-references t > t0
    codes = refcodes.reshape(len(tr), len(zr))
    needs_z = np.isin(codes, (fmt.REF_Z, fmt.REF_ZT, fmt.REF_TZ))
    needs_t = np.isin(codes, (fmt.REF_T, fmt.REF_ZT, fmt.REF_TZ))
    if needs_z[:, 0].any() or needs_t[0, :].any():
        raise CorruptDataError(f"slab {s}: a frame refers to a frame outside its slab", slab=s)
    signed = hdr.dtype.kind == "i"
    start, end, rstart = 1 + n_frames, len(data), len(data)
    fast = mode if mode in fmt.FAST_MODES else 0
    if fast:
        if len(data) < start + 4:
            raise CorruptDataError(f"slab {s}: payload of {len(data)} bytes ends inside its header", slab=s)
        rc_len = int.from_bytes(data[start:start + 4].tobytes(), "little")
        start += 4
        if rc_len > len(data) - start:
            raise CorruptDataError(f"slab {s}: range-coded part of {rc_len} bytes overruns the "
                                   f"{len(data) - start} bytes left in the payload", slab=s)
        end = rstart = start + rc_len
    st = _code_slab(1, work, None, put, tr, zr, refcodes, hdr.predictor_mask, hdr.mixing, hdr.bits_stored,
                    hdr.near, signed, data, start, stop_frame=stop_frame, fast=fast, end=end, rbuf=data,
                    rstart=rstart, binary=mode)
    ran_out = st[2] > end + 4 or (fast and st[5] > len(data) + 4)
    if stop_frame is None and ran_out:
        raise CorruptDataError(f"slab {s}: coded data ends early", slab=s)


def _check_out(out, hdr):
    if out is None:
        return np.empty(hdr.shape, hdr.dtype.newbyteorder("="))
    if not isinstance(out, np.ndarray) or out.shape != tuple(hdr.shape) or \
            out.dtype.newbyteorder("=") != hdr.dtype.newbyteorder("="):
        raise InvalidArgumentError(
            f"out must be an array of shape {hdr.shape} and dtype {hdr.dtype.newbyteorder('=')}, got "
            f"{getattr(out, 'shape', None)} {getattr(out, 'dtype', type(out).__name__)}")
    if not out.flags.writeable:
        raise InvalidArgumentError("out is read-only")
    return out


class Recovered(NamedTuple):
    """What ``decode``/``decode_frames`` return with ``strict=False``: the array (frames of damaged
    slabs are zero) and ``damaged``, a bool array with one entry per frame (``decode``: shape
    ``array.shape[:-2]``; ``decode_frames``: one per requested index), True where the frame's slab,
    or its slab of the high-bits plane, failed its checksum or was inconsistent."""

    array: np.ndarray
    damaged: np.ndarray


def _slab_intact(strict: bool, decode_slab, *args, **kwargs) -> bool:
    """Run ``decode_slab``; in recovery mode a damaged slab (an error naming it) returns False."""
    try:
        decode_slab(*args, **kwargs)
    except (ChecksumError, CorruptDataError) as exc:
        if strict or exc.slab is None:
            raise
        return False
    return True


def _check_strict(strict) -> bool:
    if not isinstance(strict, bool):
        raise InvalidArgumentError(f"strict must be True or False, got {strict!r}")
    return strict


def decode(buf, *, out: np.ndarray | None = None, max_voxels: int = fmt.DEFAULT_MAX_VOXELS,
           threads: int | None = None, strict: bool = True) -> np.ndarray | Recovered:
    """Decode a whole stream: bit-exact for lossless streams, within the header's ``near`` for
    near-lossless ones. ``out`` may be preallocated; ``threads`` decodes slabs in parallel
    (None: all cores).

    ``strict=False`` (recovery) returns :class:`Recovered` ``(array, damaged)`` instead of raising
    for a slab that fails its checksum or is inconsistent: the other slabs are decoded, the damaged
    slab's frames are zero and marked in ``damaged``. A damaged header or slab table still raises.
    """
    strict = _check_strict(strict)
    mv = _as_buffer(buf)
    hdr = fmt.read_header(mv, max_voxels=max_voxels)
    threads = thread_count(threads)
    out = _check_out(out, hdr)
    o4 = out.reshape((1,) + out.shape) if hdr.ndim == 3 else out
    _, _, Y, X = hdr.tzyx
    damaged = np.zeros(hdr.tzyx[:2], bool)

    def put(t, z, frame):
        o4[t, z] = frame

    def task(s):
        # each slab writes its own frames of ``out`` and ``damaged``: threads never share memory
        if not _slab_intact(strict, _decode_slab, mv, hdr, s, _Work(Y, X, hdr.bits_stored), put):
            tr, zr = hdr.slab_frames(s)
            damaged[tr.start:tr.stop, zr.start:zr.stop] = True

    run_each(task, range(hdr.n_slabs), threads)
    if hdr.plane is not None:
        damaged |= _add_high_plane(mv, hdr, o4, None, max_voxels, threads, strict).reshape(damaged.shape)
    if strict:
        return out
    o4[damaged] = 0
    return Recovered(out, damaged.reshape(hdr.shape[:-2]))


def _add_high_plane(mv, hdr, o4, frames, max_voxels, threads, strict=True) -> np.ndarray:
    """Add the high-bits plane to ``o4``; returns the plane's damaged-frame mask (recovery)."""
    po, pl = hdr.plane
    sub = mv[po:po + pl]
    phdr = fmt.read_header(sub, max_voxels=max_voxels)
    if phdr.plane is not None:
        # the encoder's plane holds the top (width - bits_stored) bits, which always fit: a
        # plane inside a plane is malformed (and unbounded nesting would exhaust the stack)
        raise FormatError("high-bits plane has a high-bits plane of its own")
    width = hdr.dtype.itemsize * 8
    if tuple(phdr.shape) != tuple(hdr.shape) or phdr.dtype != hdr.dtype or \
            phdr.bits_stored > width - hdr.bits_stored + 1:
        raise FormatError("high-bits plane does not match the main stream (shape, dtype or bits)")
    if frames is None:
        high = decode(sub, max_voxels=max_voxels, threads=threads, strict=strict)
    else:
        high = decode_frames(sub, frames, max_voxels=max_voxels, threads=threads, strict=strict)
    high, damaged = (high, np.zeros(high.shape[:-2], bool)) if strict else high
    combined = (high.reshape(o4.shape).astype(np.int64) << hdr.bits_stored) + o4.astype(np.int64)
    if hdr.near:
        # a near-lossless low part may step across a multiple of 2**bits_stored at the ends of
        # the dtype's range (32767 = 16 * 2048 - 1): clamp, which only moves towards the original
        info = np.iinfo(o4.dtype)
        np.clip(combined, info.min, info.max, out=combined)
    o4[...] = combined.astype(o4.dtype)
    return damaged


def decode_frames(buf, indices, *, max_voxels: int = fmt.DEFAULT_MAX_VOXELS,
                  threads: int | None = None, strict: bool = True) -> np.ndarray | Recovered:
    """Decode only the frames ``indices`` (over the flattened frame axis, k = t * Z + z).

    Returns an array (len(indices), Y, X). Each frame costs at most the decoding of its slab, and
    decoding stops inside the slab once the last wanted frame is out. ``strict=False`` returns
    :class:`Recovered` ``(array, damaged)`` as :func:`decode` does, ``damaged`` of shape
    (len(indices),).
    """
    strict = _check_strict(strict)
    mv = _as_buffer(buf)
    hdr = fmt.read_header(mv, max_voxels=max_voxels)
    threads = thread_count(threads)
    try:
        idx = [int(i) for i in np.asarray(indices).reshape(-1)]
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"indices must be integers, got {indices!r}") from None
    if np.asarray(indices).dtype.kind not in "iu" and len(idx):
        raise InvalidArgumentError(f"indices must be integers, got {indices!r}")
    nf = hdr.n_frames
    for k in idx:
        if not 0 <= k < nf:
            raise InvalidArgumentError(f"frame index {k} outside 0..{nf - 1}")
    _, Z, Y, X = hdr.tzyx
    out = np.empty((len(idx), Y, X), hdr.dtype.newbyteorder("="))
    want: dict[int, list[int]] = {}
    for pos, k in enumerate(idx):
        want.setdefault(k, []).append(pos)
    by_slab: dict[int, list[int]] = {}
    for k in want:
        by_slab.setdefault(hdr.slab_of_frame(k), []).append(k)
    damaged = np.zeros(len(idx), bool)

    def task(item):
        s, ks = item
        tr, zr = hdr.slab_frames(s)
        local = [(divmod(k, Z)[0] - tr.start) * len(zr) + (k % Z - zr.start) for k in ks]

        def put(t, z, frame):
            for pos in want.get(t * Z + z, ()):
                out[pos] = frame

        if not _slab_intact(strict, _decode_slab, mv, hdr, s, _Work(Y, X, hdr.bits_stored), put,
                            stop_frame=max(local)):
            damaged[[pos for k in ks for pos in want[k]]] = True

    run_each(task, sorted(by_slab.items()), threads)
    if hdr.plane is not None and idx:
        damaged |= _add_high_plane(mv, hdr, out, idx, max_voxels, threads, strict)
    if strict:
        return out
    out[damaged] = 0
    return Recovered(out, damaged)
