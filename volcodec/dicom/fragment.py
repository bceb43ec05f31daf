"""The bytes of one Pixel Data fragment of a volcodec-encoded DICOM object (no pydicom here).

Frames are coded in *slabs*: a group of frames, put in prediction order (geometry and dimension
indices, chosen by the caller), coded as one volcodec stream. That stream goes into the fragment of the
slab's *head* (its lowest frame number); every other frame of the slab gets a small *member* fragment
that names the head and its own place in the stream. Every fragment starts with a self-describing
header and lists the frames its pixels are predicted from. Layout: docs/format.md, "DICOM".

Decoding frame k therefore reads at most two fragments (its own and its head's) and decodes at most
one slab.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from .. import decode, decode_frames, encode, read_header
from .. import format as fmt
from ..errors import DicomError, VolcodecError

MAGIC = b"VCDF"
VERSION = 1
HEAD, MEMBER = 0, 1
_FIXED = struct.Struct("<4sBBBBIIII")  # magic, version, kind, samples, reserved, frame, head, slot, n_refs
#: Largest number of frames in one slab (and of references per frame) a fragment may declare.
MAX_SLAB_FRAMES = 65535


@dataclass(frozen=True)
class Fragment:
    """A parsed fragment. ``stream`` and ``members`` are set on head fragments only."""

    kind: int
    samples: int
    frame: int
    head: int
    slot: int
    refs: tuple[int, ...]
    members: tuple[int, ...] = ()
    stream: bytes | memoryview = b""


def pack(frag: Fragment) -> bytes:
    """The fragment's bytes, padded with one zero byte to an even length (PS3.5 A.4)."""
    parts = [_FIXED.pack(MAGIC, VERSION, frag.kind, frag.samples, 0, frag.frame, frag.head, frag.slot,
                         len(frag.refs)),
             struct.pack(f"<{len(frag.refs)}I", *frag.refs)]
    if frag.kind == HEAD:
        parts += [struct.pack(f"<I{len(frag.members)}I", len(frag.members), *frag.members),
                  struct.pack("<Q", len(frag.stream)), bytes(frag.stream)]
    out = b"".join(parts)
    return out + b"\0" * (len(out) & 1)


def parse(buf) -> Fragment:
    """Parse and check a fragment; raises :class:`DicomError` saying what is wrong."""
    mv = memoryview(buf).cast("B")
    if len(mv) < _FIXED.size:
        raise DicomError(f"Pixel Data fragment of {len(mv)} bytes is shorter than the {_FIXED.size}-byte "
                         "volcodec fragment header")
    magic, version, kind, samples, _, frame, head, slot, n_refs = _FIXED.unpack_from(mv)
    if magic != MAGIC:
        raise DicomError(f"Pixel Data fragment does not start with the volcodec magic {MAGIC!r} "
                         f"(found {bytes(magic)!r})")
    if version != VERSION:
        raise DicomError(f"volcodec fragment version {version} is not supported (this reader knows "
                         f"version {VERSION})")
    if kind not in (HEAD, MEMBER) or samples not in (1, 3) or n_refs > MAX_SLAB_FRAMES:
        raise DicomError(f"volcodec fragment header is malformed (kind {kind}, samples {samples}, "
                         f"{n_refs} references)")
    pos = _FIXED.size
    refs = _ints(mv, pos, n_refs)
    pos += 4 * n_refs
    if kind == MEMBER:
        if head == frame:
            raise DicomError(f"volcodec fragment of frame {frame} names itself as its slab head")
        return Fragment(kind, samples, frame, head, slot, refs)
    (n,) = _ints(mv, pos, 1)
    if not 1 <= n <= MAX_SLAB_FRAMES:
        raise DicomError(f"volcodec head fragment declares {n} frames in its slab (1..{MAX_SLAB_FRAMES})")
    members = _ints(mv, pos + 4, n)
    pos += 4 + 4 * n
    if len(mv) < pos + 8:
        raise DicomError("volcodec head fragment is truncated before its stream length")
    (length,) = struct.unpack_from("<Q", mv, pos)
    pos += 8
    if len(mv) - pos not in (length, length + 1):
        raise DicomError(f"volcodec head fragment of frame {frame} holds {len(mv) - pos} stream bytes, "
                         f"its header says {length} (plus at most one pad byte)")
    if head != frame or slot >= n or members[slot] != frame:
        raise DicomError(f"volcodec head fragment of frame {frame} is inconsistent (head {head}, "
                         f"slot {slot} of {n})")
    return Fragment(kind, samples, frame, head, slot, refs, members, mv[pos:pos + length])


def _ints(mv, pos: int, n: int) -> tuple[int, ...]:
    if len(mv) < pos + 4 * n:
        raise DicomError(f"volcodec fragment is truncated ({len(mv)} bytes, needs more than {pos + 4 * n})")
    return struct.unpack_from(f"<{n}I", mv, pos)


# ----------------------------------------------------------------------------- slabs
def encode_slab(block: np.ndarray, members: list[int], samples: int, *, bits_stored: int, effort: int,
                near: int = 0) -> list[bytes]:
    """Code one slab and return its fragments, one per DICOM frame, in the order of ``members``.

    ``block`` is the slab as the codec sees it: (T, Z, Y, X) for single-sample frames placed on a
    time x slice grid (frame ``members[t * Z + z]``), or (n, samples, Y, X) for colour frames (the
    samples of a frame predict from one another). ``members`` are the DICOM frame numbers (0-based) in
    that order; the lowest becomes the head.
    """
    n = len(members)
    if block.shape[0] * block.shape[1] != n * samples:
        raise DicomError(f"slab of shape {block.shape} does not hold {n} frames of {samples} samples")
    t, z = block.shape[:2]
    vol = block[0] if t == 1 and samples == 1 else block
    stream = encode(vol, bits_stored=bits_stored, effort=effort, slab=z, slab_t=t, near=near)
    refs = _prediction_refs(stream, members, samples, z)
    head = min(members)
    out = []
    for slot, frame in enumerate(members):
        if frame == head:
            frag = Fragment(HEAD, samples, frame, head, slot, refs[slot], tuple(members), stream)
        else:
            frag = Fragment(MEMBER, samples, frame, head, slot, refs[slot])
        out.append(pack(frag))
    return out


def _prediction_refs(stream: bytes, members: list[int], samples: int, z_len: int) -> list[tuple[int, ...]]:
    """The DICOM frames each member's pixels are predicted from, read off the reference codes the
    encoder recorded in the stream (and in its high-bits plane). Colour samples that predict from
    another sample of the same frame add nothing."""
    refs: list[set[int]] = [set() for _ in members]
    streams = [memoryview(stream)]
    hdr = read_header(stream)
    if hdr.plane is not None:
        streams.append(streams[0][hdr.plane[0]:hdr.plane[0] + hdr.plane[1]])
    for s in streams:
        off, length, _ = read_header(s).slabs[0]
        if s[off] not in fmt.CODED_MODES:
            continue
        codes = s[off + 1:off + 1 + len(members) * samples]
        for c, code in enumerate(codes):
            for dt, dz in _REF_STEPS.get(code, ()):
                a, b = divmod(c, z_len)
                src = (a - dt) * z_len + (b - dz)
                if src // samples != c // samples:
                    refs[c // samples].add(members[src // samples])
    return [tuple(sorted(r)) for r in refs]


# reference code -> (time step, slice step) of each frame it predicts from (docs/format.md)
_REF_STEPS = {fmt.REF_Z: ((0, 1),), fmt.REF_T: ((1, 0),), fmt.REF_ZT: ((0, 1), (1, 0)),
              fmt.REF_TZ: ((1, 0), (0, 1))}


class SlabCache:
    """Decodes frames from fragments; keeps the last decoded slab so that walking an object's frames
    in order decodes every slab once."""

    def __init__(self):
        self._head: int | None = None
        self._frames: np.ndarray | None = None  # (n, samples, Y, X)

    def frame(self, frag: Fragment, fetch) -> np.ndarray:
        """The (samples, Y, X) words of ``frag``'s frame; ``fetch(i)`` returns fragment i's bytes."""
        if self._head != frag.head:
            head = frag if frag.kind == HEAD else parse(fetch(frag.head))
            if head.kind != HEAD or head.frame != frag.head:
                raise DicomError(f"frame {frag.frame} names frame {frag.head} as its slab head, but that "
                                 "fragment is not a head fragment")
            if head.samples != frag.samples:
                raise DicomError(f"frame {frag.frame} and its head frame {head.frame} disagree on samples")
            try:
                vol = decode(head.stream)
            except VolcodecError as exc:
                raise DicomError(f"slab of head frame {head.frame}: {exc.message}") from None
            n, planes = len(head.members) * head.samples, vol.size // (vol.shape[-2] * vol.shape[-1])
            if planes != n:
                raise DicomError(f"slab of head frame {head.frame} holds {planes} frame planes; its "
                                 f"{len(head.members)} members of {head.samples} sample(s) need {n}")
            self._frames = vol.reshape((len(head.members), head.samples) + vol.shape[-2:])
            self._members = head.members
            self._head = head.frame
        if frag.slot >= len(self._members) or self._members[frag.slot] != frag.frame:
            raise DicomError(f"frame {frag.frame} claims slot {frag.slot} of the slab headed by frame "
                             f"{frag.head}, which lists other frames there")
        return self._frames[frag.slot]


def decode_one(frag: Fragment, fetch) -> np.ndarray:
    """Random access without a cache: decodes the slab only up to the frame asked for."""
    head = frag if frag.kind == HEAD else parse(fetch(frag.head))
    if head.kind != HEAD or frag.slot >= len(head.members) or head.members[frag.slot] != frag.frame:
        raise DicomError(f"frame {frag.frame}: its head fragment (frame {frag.head}) does not list it")
    s = frag.samples
    try:
        out = decode_frames(head.stream, list(range(frag.slot * s, frag.slot * s + s)))
    except VolcodecError as exc:
        raise DicomError(f"slab of head frame {head.frame}: {exc.message}") from None
    return out.reshape((s,) + out.shape[-2:])
