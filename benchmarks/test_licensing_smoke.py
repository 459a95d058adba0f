"""Smoke test of the licensing benchmark at toy sizes: it runs and writes its report.

Part of the default test run; by itself::

    pytest benchmarks/test_licensing_smoke.py

No assertion here looks at a time: the machine is shared and noisy.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import licensing_bench


def test_toy_run(tmp_path: Path) -> None:
    argv = ["--items", "300", "--agreements", "100", "--versions", "40", "--repeat", "2"]
    assert (
        licensing_bench.main([*argv, "--uses", "200", "--out", str(tmp_path), "--tag", "toy"]) == 0
    )
    (result,) = tmp_path.glob("*.json")
    results = json.loads(result.read_text())
    for shape in ("shared", "distinct"):
        assert results["shapes"][shape]["items"] == 300
        assert sum(results["shapes"][shape]["counts"].values()) == 300
    assert results["shapes"]["distinct"]["versions_resolved"] == 300
    assert results["decisions"]["uses"] == 200
    assert next(tmp_path.glob("*.md")).read_text().startswith("# Licensing engine benchmarks")
