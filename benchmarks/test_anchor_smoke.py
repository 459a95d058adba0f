"""Smoke test of the anchoring benchmark at toy sizes: it runs and writes its results.

Part of the default test run; by itself::

    pytest benchmarks/test_anchor_smoke.py

No assertion here looks at a time or a rate.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import anchor_bench


@pytest.mark.slow
def test_toy_run(tmp_path: Path) -> None:
    argv = [
        "--trials",
        "1",
        "--block-times",
        "0",
        "--schedule-seconds",
        "2",
        "--out",
        str(tmp_path),
    ]
    assert anchor_bench.main(argv) == 0
    results = json.loads(next(tmp_path.glob("anchor-*.json")).read_text())
    assert results["latency"][0]["to_final"]["n"] == 1
    assert results["gas"]["deployment"] > 0 and anchor_bench.anchor_gas(results["gas"]) > 21_000
    assert len(results["model"]) == 8
    assert next(tmp_path.glob("anchor-*.md")).read_text().startswith("# Anchoring benchmarks")
