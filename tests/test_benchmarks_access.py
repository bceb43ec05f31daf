"""benchmarks/access.py on a tiny synthetic volume (the real run is in benchmarks/results/access.md)."""

from __future__ import annotations

import json

import numpy as np

from benchmarks import access


def test_long_volume_runs_forward_then_backward():
    base = np.arange(3)[:, None, None] * np.ones((1, 2, 2), np.int16)
    got = access.long_volume(base, 8)[:, 0, 0].tolist()
    assert got == [0, 1, 2, 2, 1, 0, 0, 1]


def test_run_and_report(tmp_path):
    rng = np.random.default_rng(0)
    vol = access.long_volume((rng.integers(0, 50, (5, 12, 10)) + 1000).astype(np.int16), 20)
    res = access.run(vol, 12, repeats=1, tmp=tmp_path, log=lambda *a: None)
    assert [f["k"] for f in res["frames"]] == [0, 10, 19]
    assert all(m["tracemalloc_ratio"] >= 1 for m in res["memory"].values())  # the output at least
    result = json.loads(json.dumps({"machine": {"command": "x", "date": "d", "volcodec": {"commit": "c"},
                                                "cpu": "cpu", "cores": 2, "platform": "p", "python": "3",
                                                "versions": {}},
                                    "source": "synthetic", "result": res}, default=str))
    md = access.markdown(result)
    assert "## Threads" in md and "| 19 |" in md and "peak ÷ decoded volume" in md
    assert list(tmp_path.iterdir()) == []  # the stream file is removed
