"""The size/speed trade-off of a comparison run as one picture: one point per codec.

    python -m benchmarks.plot [--results benchmarks/results/results.json] [--out docs/tradeoff.png]
                              [--group all]

y: bits per voxel ÷ JPEG-LS's on the same volumes (below 1 is smaller than JPEG-LS); x: decode Mvox/s
on a log axis. Both are the aggregates of ``benchmarks.compare`` (total bits / total voxels, total
voxels / total best time), so the plot shows nothing that results.md does not. volcodec thread
variants (``volcodec-e2-t2``) are plotted as hollow points: their decode is not single-threaded.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .anchors import REFERENCE


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.plot", description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, default=Path("benchmarks/results/results.json"),
                   help="results.json of benchmarks.compare (default benchmarks/results/results.json)")
    p.add_argument("--out", type=Path, default=Path("docs/tradeoff.png"),
                   help="PNG to write (default docs/tradeoff.png)")
    p.add_argument("--group", default="all", help="aggregate group to plot: all, CT, MR or 4D (default all)")
    return p.parse_args(argv)


def points(result: dict, group: str = "all") -> list[dict]:
    """One point per codec of ``group`` with at least one successful volume and a ratio to JPEG-LS."""
    aggregates = result["aggregates"]
    if group not in aggregates:
        raise SystemExit(f"group {group!r} is not in the results; found {', '.join(aggregates)}")
    agg = aggregates[group]
    out = []
    for codec in [c["name"] for c in result["codecs"]]:
        e = agg["codecs"].get(codec)
        if not e or not e.get("volumes_ok") or e.get("bpv_vs_ref") is None or not e.get("decode_mvox_s"):
            continue
        out.append({"codec": codec, "bpv_vs_ref": e["bpv_vs_ref"], "decode_mvox_s": e["decode_mvox_s"],
                    "bpv": e["bpv"], "volumes_ok": e["volumes_ok"], "volumes": len(agg["volumes"]),
                    "volcodec": codec.startswith("volcodec"),
                    "threaded": codec.startswith("volcodec") and "-t" in codec.removeprefix("volcodec")})
    return out


def title(result: dict, group: str) -> str:
    m = result["machine"]
    agg = result["aggregates"][group]
    return (f"Lossless size vs decode speed, {group}: {len(agg['volumes'])} volumes, "
            f"{agg['voxels'] / 1e6:.1f} Mvox\n{m['cpu']}, {m['cores']} cores, {m['date'][:10]}, "
            f"volcodec {m['volcodec']['commit']}")


def _label(p: dict) -> str:
    return p["codec"] + ("" if p["volumes_ok"] == p["volumes"] else f" ({p['volumes_ok']}/{p['volumes']})")


def _label_places(xy: list[tuple[float, float]], labels: list[str], ax) -> list[tuple[float, float]]:
    """Label positions in axes fractions, right of each point, pushed down or up (greedily, from the
    top point down) until no label box covers another label or a point. Codecs of similar size and
    speed (volcodec efforts, JPEG XL e7) otherwise print over each other."""
    to_axes = ax.transData + ax.transAxes.inverted()
    anchors = [tuple(to_axes.transform(p)) for p in xy]
    height, char = 0.034, 0.0105  # one 8-point line and character at this figure size, in axes fractions
    boxes: list[tuple[float, float, float, float]] = [(x - 0.01, y - 0.015, x + 0.01, y + 0.015)
                                                      for x, y in anchors]
    places: list[tuple[float, float]] = [(0.0, 0.0)] * len(xy)

    def free(box):
        return all(box[2] <= b[0] or b[2] <= box[0] or box[3] <= b[1] or b[3] <= box[1] for b in boxes)

    # Right of the point on its own line first, then a line below or above, then the left side too.
    moves = [(side, lines * sign) for lines in range(12) for side in (1, -1) for sign in (-1, 1)
             if not (side == -1 and lines == 0)]
    for i in sorted(range(len(xy)), key=lambda k: -anchors[k][1]):
        x, y = anchors[i]
        width = char * len(labels[i])
        box = None
        for side, lines in moves:
            left = x + 0.015 if side == 1 else x - 0.015 - width
            mid = y + lines * height
            candidate = (left, mid - height / 2, left + width, mid + height / 2)
            if candidate[0] >= 0 and candidate[2] <= 1 and candidate[1] >= 0 and candidate[3] <= 1 \
                    and free(candidate):
                box = candidate
                break
        if box is None:  # crowded beyond help: print it on the point's line, overlapping
            box = (x + 0.015, y - height / 2, x + 0.015 + width, y + height / 2)
        boxes.append(box)
        places[i] = (box[0], (box[1] + box[3]) / 2)
    return places


def plot(result: dict, out: Path, group: str = "all") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = points(result, group)
    if not pts:
        raise SystemExit(f"nothing to plot: no codec of group {group!r} has a ratio to {REFERENCE}")
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    xs = [p["decode_mvox_s"] for p in pts]
    ys = [p["bpv_vs_ref"] for p in pts] + [1.0]
    ax.set_xscale("log")
    # Room for the labels: a factor of 4 right of the fastest point, 15 % of the range below.
    ax.set_xlim(min(xs) / 1.5, max(xs) * 4)
    span = max(ys) - min(ys) or 0.1
    ax.set_ylim(min(ys) - 0.15 * span, max(ys) + 0.1 * span)
    places = _label_places([(p["decode_mvox_s"], p["bpv_vs_ref"]) for p in pts],
                           [_label(p) for p in pts], ax)
    for p, place in zip(pts, places):
        color = "tab:red" if p["volcodec"] else ("black" if p["codec"] == REFERENCE else "tab:blue")
        ax.scatter([p["decode_mvox_s"]], [p["bpv_vs_ref"]], s=40, zorder=3, edgecolors=color,
                   facecolors="none" if p["threaded"] else color)
        line = {"arrowstyle": "-", "color": color, "linewidth": 0.5, "shrinkA": 0, "shrinkB": 4}
        ax.annotate(_label(p), (p["decode_mvox_s"], p["bpv_vs_ref"]), xytext=place,
                    textcoords="axes fraction", fontsize=8, color=color, va="center", arrowprops=line)
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--", zorder=1)
    ax.set_xlabel("decode Mvox/s (log; single thread unless the name ends in -tN)")
    ax.set_ylabel(f"bits per voxel ÷ {REFERENCE} (lower is smaller)")
    ax.set_title(title(result, group), fontsize=9)
    ax.grid(True, which="both", linewidth=0.3, alpha=0.6)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = json.loads(args.results.read_text())
    print(plot(result, args.out, args.group))
    return 0


if __name__ == "__main__":
    sys.exit(main())
