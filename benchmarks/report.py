"""Aggregation and output of a comparison run: Markdown tables and JSON with the same numbers."""

from __future__ import annotations

import json
from pathlib import Path

from .anchors import REFERENCE

# Group name -> predicate on a volume record. A 4D MR volume counts in MR and in 4D.
GROUPS = {
    "CT": lambda v: v["modality"] == "CT",
    "MR": lambda v: v["modality"] == "MR",
    "4D": lambda v: v["kind"] == "4d",
    "all": lambda v: True,
}


def _ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def per_volume_ratios(rows: list[dict]) -> None:
    """Add ``bpv_vs_ref``, ``encode_vs_ref``, ``decode_vs_ref`` to each row, in place (None if the
    reference row of that volume is missing or failed)."""
    ref = {r["volume"]: r for r in rows if r["codec"] == REFERENCE and r["ok"]}
    for r in rows:
        base = ref.get(r["volume"])
        ok = r["ok"] and base is not None
        r["bpv_vs_ref"] = _ratio(r["bpv"], base["bpv"]) if ok else None
        r["encode_vs_ref"] = _ratio(r["encode_mvox_s"], base["encode_mvox_s"]) if ok else None
        r["decode_vs_ref"] = _ratio(r["decode_mvox_s"], base["decode_mvox_s"]) if ok else None


def aggregate(rows: list[dict], volumes: list[dict], codecs: list[str]) -> dict:
    """Per group and codec: total bits / total voxels, total voxels / total best time, and the same
    for the reference on the same volumes (those where both succeeded), so a ratio never compares
    different sets of volumes."""
    by_key = {(r["volume"], r["codec"]): r for r in rows}
    out: dict = {}
    for group, member in GROUPS.items():
        names = [v["name"] for v in volumes if member(v)]
        if not names:
            continue
        entries = {}
        for codec in codecs:
            entry, done, refs = group_entry([by_key.get((n, codec)) for n in names],
                                            lambda r: by_key.get((r["volume"], REFERENCE)))
            if refs is not None:
                base = totals(refs)
                entry["bpv_vs_ref"] = _ratio(entry["bpv"], base["bpv"])
                entry["encode_vs_ref"] = _ratio(entry["encode_mvox_s"], base["encode_mvox_s"])
                entry["decode_vs_ref"] = _ratio(entry["decode_mvox_s"], base["decode_mvox_s"])
            entries[codec] = entry
        out[group] = {"volumes": names, "voxels": sum(v["voxels"] for v in volumes if member(v)),
                      "codecs": entries}
    return out


def group_entry(mine: list, ref_of, sum_rows=None) -> tuple[dict, list, list | None]:
    """Totals over a group's rows of one codec (None = not run): the entry, the rows that succeeded,
    and their reference rows (``ref_of(row)``), or None when a reference row is missing or failed.
    ``sum_rows`` sums the rows (default :func:`totals`: size and times)."""
    done = [r for r in mine if r is not None and r["ok"]]
    failed = [r["volume"] for r in mine if r is not None and not r["ok"]]
    if not done:
        return {"volumes_ok": 0, "volumes_failed": failed}, done, None
    entry = (sum_rows or totals)(done)
    entry.update(volumes_ok=len(done), volumes_failed=failed)
    refs = [ref_of(r) for r in done]
    return entry, done, refs if all(x is not None and x["ok"] for x in refs) else None


def totals(rows: list[dict]) -> dict:
    """Total voxels, bytes, bits per voxel and speeds (total voxels / total best time) of rows."""
    voxels = sum(r["voxels"] for r in rows)
    nbytes = sum(r["bytes"] for r in rows)
    enc = sum(r["encode_s"] for r in rows)
    dec = sum(r["decode_s"] for r in rows)
    return {"voxels": voxels, "bytes": nbytes, "bpv": 8 * nbytes / voxels,
            "encode_mvox_s": voxels / enc / 1e6 if enc else None,
            "decode_mvox_s": voxels / dec / 1e6 if dec else None}


# --------------------------------------------------------------------------------------------------
# Markdown


def _f(x, digits=3):
    return "" if x is None else f"{x:.{digits}f}"


def _speed(x):
    if x is None:
        return ""
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def _table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> list[str]:
    align = align or ["l"] + ["r"] * (len(header) - 1)
    marks = {"l": "---", "r": "---:"}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _probe_lines(machine: dict) -> list[str]:
    """What two threads could get on the machine during the run (machine.core_probe)."""
    probes = [(when, machine.get(f"core_probe_{when}")) for when in ("start", "end")]
    said = "; ".join(f"at the {when} {p['alu_bound']:.2f}x on an instruction-bound loop, "
                     f"{p['latency_bound']:.2f}x on a latency-bound one" for when, p in probes if p)
    if not said:
        return []
    return [f"- Two threads against one, same work each: {said}. About 2x for both means two cores; "
            "about 1x for the instruction-bound loop means the two vCPUs shared one physical core "
            "(SMT siblings on the host), and the codec's kernels, mostly instruction-bound, then gain "
            "little from a second thread."]


def machine_lines(machine: dict) -> list[str]:
    v = machine["versions"]
    libs = ", ".join(str(x) for x in (v.get("imagecodecs libraries") or {}).values())

    def loads(values):
        return ", ".join(f"{x:.2f}" for x in values) if values else "n/a"

    load = f"load average at start {loads(machine.get('loadavg_1_5_15'))}"
    if machine.get("loadavg_end"):
        load += f", at end {loads(machine['loadavg_end'])}"
    dirty = " (volcodec/ had uncommitted changes)" if machine["volcodec"].get("volcodec_dirty") else ""
    return [
        f"- Command: `{machine['command']}`",
        f"- Date (UTC): {machine['date']}; volcodec commit {machine['volcodec']['commit']}{dirty}",
        (f"- CPU: {machine['cpu']}, {machine['cores']} cores ({machine.get('cores_usable')} usable); "
        f"{load}; {machine['platform']}"),
        *_probe_lines(machine),
        (f"- Python {machine['python']}, numpy {v.get('numpy')}, numba {v.get('numba')}, imagecodecs "
        f"{v.get('imagecodecs')} ({libs}), pyjpegls {v.get('pyjpegls')}, pydicom {v.get('pydicom')}, "
        f"zstandard {v.get('zstandard')} (libzstd {v.get('libzstd')}), blosc2 {v.get('blosc2')}"),
    ]


def markdown(result: dict) -> str:
    codecs = [c["name"] for c in result["codecs"]]
    volumes = result["volumes"]
    rows = {(r["volume"], r["codec"]): r for r in result["rows"]}
    s = result["settings"]
    out = ["# volcodec against standard lossless codecs", ""]
    out += machine_lines(result["machine"])
    out += [
        (f"- Single thread, best of {s['repeats']} rounds (each round times every codec once, in turn, so "
         "a slow spell of the machine hits them alike), whole volume per timing (per-slice codecs "
         "loop over slices inside the timing), every result decoded and compared bit for bit; "
         f"ratios are to `{REFERENCE}` in this run (bpv: lower is better; speed: higher is better)."),
        f"- Run time: {result['run_seconds']:.0f} s.",
        "",
        "## Aggregate: total bits / total voxels, total voxels / total time",
    ]
    for group, agg in result["aggregates"].items():
        out += ["", f"### {group}: {len(agg['volumes'])} volumes, {agg['voxels'] / 1e6:.1f} Mvox", ""]
        table = []
        for codec in codecs:
            e = agg["codecs"].get(codec)
            if e is None:
                continue
            if not e.get("volumes_ok"):
                table.append([codec, "failed", "", "", "", "", "", f"0/{len(agg['volumes'])}"])
                continue
            table.append([
                codec, _f(e["bpv"]), _f(e.get("bpv_vs_ref")), _speed(e["encode_mvox_s"]),
                _f(e.get("encode_vs_ref"), 2), _speed(e["decode_mvox_s"]), _f(e.get("decode_vs_ref"), 2),
                f"{e['volumes_ok']}/{len(agg['volumes'])}",
            ])
        out += _table(["codec", "bits/voxel", "bpv ÷ JLS", "encode Mvox/s", "enc × JLS",
                       "decode Mvox/s", "dec × JLS", "volumes ok"], table)

    def matrix(title: str, key: str, fmt) -> list[str]:
        body = []
        for v in volumes:
            cells = []
            for codec in codecs:
                r = rows.get((v["name"], codec))
                cells.append("" if r is None else (fmt(r[key]) if r["ok"] else "FAIL"))
            body.append([v["name"], v["modality"], v["kind"], "×".join(map(str, v["shape"])),
                         str(v["bits_stored"]) + ("s" if v["signed"] else "u")] + cells)
        return ["", f"## {title}", ""] + _table(["volume", "mod.", "kind", "shape", "bits"] + codecs, body,
                                                  ["l", "l", "l", "r", "r"] + ["r"] * len(codecs))

    out += matrix("Per volume: bits per voxel", "bpv", _f)
    out += matrix(f"Per volume: bits per voxel ÷ {REFERENCE}", "bpv_vs_ref", _f)
    out += matrix("Per volume: encode Mvox/s", "encode_mvox_s", _speed)
    out += matrix("Per volume: decode Mvox/s", "decode_mvox_s", _speed)

    spent: dict = {}
    for r in result["rows"]:
        spent[r["codec"]] = spent.get(r["codec"], 0.0) + (r.get("wall_s") or 0.0)
    out += ["", "## Run time per codec (warm-up, all repeats, checks)", ""]
    out += _table(["codec", "seconds", "share"],
                  [[c, f"{spent.get(c, 0):.0f}", f"{spent.get(c, 0) / max(result['run_seconds'], 1e-9):.0%}"]
                   for c in codecs])

    declared = [(r["volume"], r["codec"], r["declared_bits"]) for r in result["rows"]
                if r.get("declared_bits") is not None]
    mismatched = [d for d in declared
                  if d[2] != next(v["bits_stored"] for v in volumes if v["name"] == d[0])]
    out += ["", "## Notes", ""]
    out += [f"- `{c['name']}`: {c['description']}; {json.dumps(c['params'])}" for c in result["codecs"]]
    if mismatched:
        codecs_off = sorted({d[1] for d in mismatched})
        out.append(f"- Streams that declare a bit depth other than Bits Stored: {', '.join(codecs_off)} "
                   "(see `declared_bits` in results.json)")
    out += notes_and_failures(result, volumes)
    return "\n".join(out) + "\n"


def notes_and_failures(result: dict, volumes: list[dict], row_label=lambda r: r["codec"]) -> list[str]:
    """The end of a report: notes on volumes, codecs not run, then failed rows and unloaded volumes."""
    out = []
    for v in volumes:
        for note in v.get("notes", []):
            out.append(f"- {v['name']}: {note}")
    for name, why in result.get("unavailable", {}).items():
        out.append(f"- `{name}` not run: {why}")
    fails = [r for r in result["rows"] if not r["ok"]]
    if fails or result.get("load_failures"):
        out += ["", "## Failures", ""]
        out += [f"- {r['volume']} / {row_label(r)}: {r['error']}" for r in fails]
        out += [f"- {f['name']}: not loaded: {f['error']}" for f in result.get("load_failures", [])]
    return out


def write(result: dict, out_dir: Path, stem: str = "results") -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, json_path = out_dir / f"{stem}.md", out_dir / f"{stem}.json"
    md_path.write_text(markdown(result))
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    return md_path, json_path
