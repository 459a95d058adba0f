"""Smoke test of the benchmark harness at toy sizes: it runs, and every correctness check holds.

Part of the default test run; by itself::

    pytest benchmarks/test_smoke.py

No assertion here looks at a time or a rate: the machine is shared and noisy.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import run

TOY = [
    "--entries",
    "1500",
    "--members",
    "10",
    "--unbatched",
    "20",
    "--batched",
    "1000",
    "--batch",
    "200",
    "--procs",
    "2",
    "--proc-unbatched",
    "10",
    "--proc-batches",
    "2",
    "--breakdown-batches",
    "2",
    "--queries",
    "30",
    "--proof-budget",
    "5",
    "--profile-entries",
    "300",
    "--merkle-queries",
    "20",
    "--db-suffix",
    "_smoke",
]


def _pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres", connect_timeout=3
        ):
            return True
    except Exception:
        return False


def _check(results: dict, db: str) -> None:
    assert "error" not in results, results.get("error")
    append = results["append"][db]
    for check in (
        "no_gaps",
        "no_duplicate_seq",
        "prev_chain_ok",
        "stored_leaves_match",
        "root_matches_tree_root",
    ):
        assert append["integrity"][check], check
    # The breakdown times the shipped append only since the suggested fixes were merged
    # (4c49c6c): every batch it timed was appended.
    assert append["breakdown"]["batches"] == 2 and append["breakdown"]["entries_per_s"] > 0
    log = results["log"][db]
    assert log["build"]["entries"] == 1500
    assert log["audit"]["entries"] == 1500
    for key in ("inclusion_shipped", "inclusion_fixed", "consistency_shipped", "consistency_fixed"):
        proofs = log["proofs"][key]
        assert proofs["verified"] == proofs["n"] > 0, key


@pytest.mark.slow
def test_sqlite_toy_run(tmp_path: Path) -> None:
    assert run.main([*TOY, "--db", "sqlite", "--out", str(tmp_path), "--tag", "smoke"]) == 0
    results = json.loads((tmp_path / next(p.name for p in tmp_path.glob("*.json"))).read_text())
    _check(results, "sqlite")
    merkle = results["merkle"]["sizes"]["1500"]
    assert merkle["roots_equal"]
    assert merkle["inclusion_paths_identical"] == 20
    assert (tmp_path / next(p.name for p in tmp_path.glob("*.md"))).read_text().startswith("# ")


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.skipif(not _pg_available(), reason="PostgreSQL is not running on 127.0.0.1:5432")
def test_postgres_toy_run(tmp_path: Path) -> None:
    assert (
        run.main(
            [
                *TOY,
                "--db",
                "postgres",
                "--only",
                "append,proofs,audit",
                "--out",
                str(tmp_path),
                "--tag",
                "smoke",
            ]
        )
        == 0
    )
    results = json.loads(next(tmp_path.glob("*.json")).read_text())
    _check(results, "postgres")


@pytest.mark.slow
def test_catalog_toy_run(tmp_path: Path) -> None:
    """The catalogue runner end to end at a toy size: a real `corpusx dataset publish` against a
    real server (local store), and the overlap check against an index holding a copy (SQLite
    and PostgreSQL, which fails loudly if it is not there)."""
    from benchmarks import catalog_bench

    argv = [
        "--only",
        "publish-local,overlap",
        "--size-gib",
        "0.002",
        "--files",
        "2",
        "--formats",
        "jsonl",
        "--publish-repeat",
        "1",
        "--repeat",
        "1",
        "--out",
        str(tmp_path / "out"),
        "--workdir",
        str(tmp_path / "work"),
        "--tag",
        "smoke",
    ]
    assert catalog_bench.main(argv) == 0
    results = json.loads(
        (tmp_path / "out" / next((tmp_path / "out").glob("*.json")).name).read_text()
    )
    assert results["errors"] == []
    (run,) = results["publish-local"]["jsonl"]["runs"]
    assert run["records"] == results["corpora"]["jsonl"]["documents"] > 0
    assert run["uploads"] == 2 and run["server_verify_s"] > 0
    overlap = results["overlap"]["jsonl"]
    assert overlap["records"] > 0 and overlap["sqlite"]["find_s"] >= 0
    assert (tmp_path / "out" / f"catalog-{results['meta']['date']}smoke.md").exists()


def test_overlap_scale_toy_run(tmp_path: Path) -> None:
    """The overlap index scaling run at a toy size, on both databases: the copied fifth is found
    and every figure is recorded."""
    from benchmarks import overlap_scale

    assert overlap_scale.main(["--versions", "3", "--docs", "2000", "--out", str(tmp_path)]) == 0
    results = json.loads(next(tmp_path.glob("overlap-scale-*.json")).read_text())["results"]
    assert set(results) == {"sqlite", "postgres"}
    for figures in results.values():
        assert len(figures["index_s"]) == 3
        assert abs(figures["exact_fraction"] - 0.2) < 0.01
        assert figures["database_bytes"] > 0
    assert next(tmp_path.glob("overlap-scale-*.md")).read_text().startswith("# Overlap index")


def test_witness_toy_run(tmp_path: Path) -> None:
    from benchmarks import witness_bench

    args = ["--appends", "3", "--scheduled-appends", "2", "--witness-requests", "5"]
    args += ["--warmup", "1", "--interval", "0.3", "--out", str(tmp_path), "--tag=-smoke"]
    assert witness_bench.main(args) == 0
    results = json.loads(next(tmp_path.glob("witness-*.json")).read_text())
    assert not results["errors"]
    assert results["on-demand"]["append_to_cosigned"]["n"] == 3
    assert results["on-demand"]["bare_append_to_checkpoint"]["n"] == 3
    assert results["scheduled"]["append_to_cosigned"]["n"] == 2
    assert results["witness"]["in_process_store_with_fsync"]["n"] == 5
    assert next(tmp_path.glob("witness-*.md")).read_text().startswith("# Witness benchmark")
