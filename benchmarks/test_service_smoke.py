"""Smoke test of the service benchmark at toy sizes: it runs against a real server on PostgreSQL,
and every correctness check it makes holds.

It is in the default test paths (pyproject.toml), so it is kept small: a few versions, a few
purchases, sub-second load windows, a 1 MiB blob. No assertion here looks at a time or a rate:
the machine is shared and noisy, and figures belong in the recorded results only.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from benchmarks import service_bench

TOY = [
    "--db",
    "postgres",
    "--workers",
    "1",  # the harness's correctness does not depend on it; a second worker costs ~10 s here
    "--providers",
    "2",
    "--versions",
    "4",
    "--documents",
    "8",
    "--offers-per-version",
    "3",
    "--items",
    "40",
    "--repeat",
    "2",
    "--buyer-procs",
    "2",
    "--purchases",
    "3",
    "--may",
    "10",
    "--load-procs",
    "1",
    "--load-threads",
    "2",
    "--load-seconds",
    "0.3",
    "--warmup",
    "0.1",
    "--attest-statements",
    "100",
    "--blob-mib",
    "1",
    "--downloads",
    "1",
]


def test_toy_run_on_postgres(tmp_path: Path) -> None:
    suffix = f"_smoke_{os.getpid()}_{secrets.token_hex(3)}"  # concurrent runs never share it
    argv = [*TOY, "--db-suffix", suffix, "--out", str(tmp_path), "--tag", "smoke"]
    assert service_bench.main(argv) == 0
    results = json.loads((tmp_path / next(p.name for p in tmp_path.glob("*.json"))).read_text())
    db = results["databases"]["postgres"]
    assert "error" not in db, db.get("error")

    compliance = db["compliance"]
    assert compliance["items"] == 40
    assert sum(compliance["counts"].values()) == 40
    assert compliance["agreements"] == 4 * 3  # the builder bought every offer
    assert compliance["http_ms"]["n"] == 2 and compliance["in_process_ms"]["n"] == 2

    purchases = db["purchases"]
    assert purchases["phases"]["2"]["purchases"] == 2 * 3
    checks = purchases["checks"]
    assert checks["purchases_checked"] == 6 and checks["books_total"] == 0
    assert checks["every_purchase_has_agreement_entry_and_journal"]
    assert db["may"]["questions"] == 10

    pairs = {pair["name"]: pair for pair in db["service"]["pairs"]}
    assert set(pairs) == {"search", "detail", "attest", "deliveries"}
    expected = {"search": "200", "detail": "200", "attest": "201", "deliveries": "201"}
    for name, pair in pairs.items():
        # every answer had the expected status (a slow one may land after the short window)
        for run, status in ((pair["bare"], "200"), (pair["endpoint"], expected[name])):
            assert run["errors"] == 0 and run["sent"] > 0, (name, run)
            assert run["statuses"] == {status: run["sent"]}, (name, run["statuses"])
    for name in ("attest", "deliveries"):  # one ledger entry per accepted write
        endpoint = pairs[name]["endpoint"]
        assert endpoint["ledger_entries_written"] == endpoint["statuses"]["201"] > 0

    downloads = db["downloads"]
    assert downloads["blob_bytes"] == 1 << 20 and downloads["whole_download_sha256_ok"]
    assert [r["bytes"] for r in downloads["ranges"]] == [1 << 19, 1 << 18, 1 << 18]
    report = next(tmp_path.glob("*.md")).read_text()
    assert report.startswith("# Service benchmarks") and "POST /compliance/check" in report
