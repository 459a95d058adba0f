"""How the overlap index scales: many large versions indexed, then a new version looked up.

    . .venv/bin/activate
    python benchmarks/overlap_scale.py                        # 10 x 1M documents, both databases
    python benchmarks/overlap_scale.py --versions 4 --docs 250000 --db sqlite

Each indexed version is a synthetic sketch of ``--docs`` distinct random document hashes,
sampled 1 in 16 (sample level 4, as a large corpus is) with 20 random band keys per sample,
of its own provider. ``index_version`` is timed per version, each in its own committed
transaction. Then a new version of ``--docs`` documents (a fifth of them copies of version 0's
documents and samples, the rest new) is looked up with ``find_overlaps``: first with nothing in
memory (the lookup loads every segment from the database), then again (what a running server's
later lookups cost), and the resident memory of the process is read before and after. The
synthetic sketches skip reading and sketching text: only the index is measured.

Results go to ``benchmarks/results/overlap-scale-YYYY-MM-DD.md`` (+ ``.json``). No figure is
asserted; the machine is shared, so the load average is recorded beside them.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.meta import git as _git
from benchmarks.meta import version as _version

PG_ADMIN = os.environ.get("CORPUSX_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def synthetic_sketch(rng: np.random.Generator, documents: int, copied: Any = None) -> Any:
    """A large version's sketch: distinct random hashes, 1 in 16 sampled, 20 band keys each.
    ``copied`` (another sketch) gives a fifth of the documents and of the samples."""
    from catalog.overlap import BANDS, DocumentHashes, VersionSketch

    hashes = rng.integers(0, 256, size=(documents, 32), dtype=np.uint8)
    samples = documents // 16
    keys = rng.integers(-(2**63), 2**63 - 1, size=(samples, BANDS), dtype=np.int64)
    if copied is not None:
        share = documents // 5
        old = np.frombuffer(copied.documents.joined, dtype=np.uint8).reshape(-1, 32)
        hashes[:share] = old[:share]
        keys[: samples // 5] = copied.sample_keys[: samples // 5]
    ordered = sorted({bytes(row) for row in hashes})
    records = np.arange(len(ordered), dtype=np.int64)
    return VersionSketch(
        files=(("part-0.jsonl", len(ordered)),),
        records=len(ordered),
        documents=DocumentHashes(b"".join(ordered)),
        first_records=records,
        occurrences=np.ones(len(ordered), dtype=np.int64),
        sample_level=4,
        sample_hashes=tuple(ordered[:samples]),
        sample_records=np.arange(samples, dtype=np.int64) * 16,
        sample_occurrences=np.ones(samples, dtype=np.int64),
        sample_levels=np.full(samples, 4, dtype=np.int8),
        sample_keys=keys,
    )


def database(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'overlap-scale.db'}"
    admin(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")
    admin(f"CREATE DATABASE {PG_NAME}")
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{PG_NAME}"


PG_NAME = "corpusx_bench_overlap_scale"


def admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        connection.execute(sql)


def run(kind: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from sqlmodel import Session

    from benchmarks.catalog_bench import provider_version
    from catalog import overlap_index
    from catalog.overlap_index import find_overlaps, index_version
    from exchange.db import make_engine, upgrade

    url = database(kind, workdir)
    upgrade(url)
    engine = make_engine(url)
    rng = np.random.default_rng(args.seed)
    indexing: list[float] = []
    first_sketch = None
    try:
        for v in range(args.versions):
            sketch = synthetic_sketch(rng, args.docs)
            first_sketch = first_sketch or sketch
            with Session(engine) as session:
                version = provider_version(session, f"p{v}", sketch.records)
                started = time.perf_counter()
                index_version(session, version, sketch)
                session.commit()
                indexing.append(time.perf_counter() - started)
            print(f"[{kind}] indexed version {v + 1}/{args.versions}: {indexing[-1]:.2f}s")
            del sketch
        new = synthetic_sketch(rng, args.docs, copied=first_sketch)
        del first_sketch
        gc.collect()
        overlap_index._ENTRIES.clear()
        gc.collect()
        before = rss_mib()
        with Session(engine) as session:
            started = time.perf_counter()
            report = find_overlaps(session, new, exclude_provider="new")
            first = time.perf_counter() - started
            loaded = rss_mib()
            started = time.perf_counter()
            again = find_overlaps(session, new, exclude_provider="new")
            second = time.perf_counter() - started
        assert again == report
        (top, *_) = report.overlaps
        assert top.provider == "p0" and abs(top.exact_fraction - 0.2) < 0.01, top
        print(
            f"[{kind}] find: first {first:.2f}s, again {second:.2f}s, rss +{loaded - before:.0f} MiB"
        )
        size = (
            Path(url.removeprefix("sqlite:///")).stat().st_size
            if kind == "sqlite"
            else _pg_size(engine)
        )
    finally:
        engine.dispose()
        overlap_index._ENTRIES.clear()
        if kind == "sqlite":
            Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        else:
            admin(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")
    indexed = args.versions * args.docs
    return {
        "index_s": indexing,
        "index_us_per_document": 1e6 * sum(indexing) / indexed,
        "find_first_s": first,
        "find_again_s": second,
        "find_first_us_per_document": 1e6 * first / args.docs,
        "find_again_us_per_document": 1e6 * second / args.docs,
        "rss_before_mib": before,
        "rss_loaded_mib": loaded,
        "rss_per_indexed_document_b": (loaded - before) * 2**20 / indexed,
        "database_bytes": size,
        "exact_fraction": top.exact_fraction,
        "near_fraction": top.near_fraction,
    }


def _pg_size(engine: Any) -> int:
    from sqlalchemy import text

    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_database_size(current_database())")).scalar())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    load = os.getloadavg()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="corpusx-overlap-scale-") as workdir:
        for kind in args.db.split(","):
            results[kind] = run(kind, args, Path(workdir))
    meta = {
        "command": "python benchmarks/overlap_scale.py "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "started": started.isoformat(timespec="seconds"),
        "load_start": load,
        "load_end": os.getloadavg(),
        "git": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--", "catalog")),
        "numpy": _version("numpy"),
        "cpu": _cpu(),
        "versions": args.versions,
        "docs": args.docs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"overlap-scale-{started.date().isoformat()}"
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    stem.with_suffix(".md").write_text(report(meta, results))
    print(f"wrote {stem}.md and {stem}.json")
    return 0


def _cpu() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    names = [line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line]
    return f"{os.cpu_count()} x {names[0] if names else '?'}"


def report(meta: dict[str, Any], results: dict[str, Any]) -> str:
    n = meta["versions"] * meta["docs"]
    lines = [
        f"# Overlap index at scale — {meta['started'][:10]}",
        "",
        "Produced by this exact command, from the repository root with the venv active:",
        "",
        f"```\n{meta['command']}\n```",
        "",
        f"Machine: {meta['cpu']}; load average at start {meta['load_start'][0]:.2f}, at end "
        f"{meta['load_end'][0]:.2f}. Code: git {meta['git']}"
        f"{' (with uncommitted changes under catalog/)' if meta['dirty'] else ''}, numpy {meta['numpy']}.",
        "",
        f"{meta['versions']} versions of {meta['docs']:,} documents each ({n:,} indexed documents, "
        f"{n // 16 * 20:,} band entries), then a new version of {meta['docs']:,} documents, a "
        "fifth of them version 0's, looked up (see the script's docstring). Not asserted by any test.",
        "",
        "| | " + " | ".join(results) + " |",
        "|---|" + "---|" * len(results),
    ]

    def row(label: str, cell: Any) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(r) for r in results.values()) + " |")

    row(
        "`index_version` per version, s (min – max)",
        lambda r: f"{min(r['index_s']):.2f} – {max(r['index_s']):.2f}",
    )
    row("`index_version`, µs per document", lambda r: f"{r['index_us_per_document']:.2f}")
    row("first lookup (loads every segment), s", lambda r: f"{r['find_first_s']:.2f}")
    row("first lookup, µs per new document", lambda r: f"{r['find_first_us_per_document']:.2f}")
    row("lookup again (in memory), s", lambda r: f"{r['find_again_s']:.2f}")
    row("lookup again, µs per new document", lambda r: f"{r['find_again_us_per_document']:.2f}")
    row(
        "process memory for the loaded entries, MiB",
        lambda r: f"{r['rss_loaded_mib'] - r['rss_before_mib']:.0f}",
    )
    row("... bytes per indexed document", lambda r: f"{r['rss_per_indexed_document_b']:.0f}")
    row("database size, MiB", lambda r: f"{r['database_bytes'] / 2**20:.0f}")
    row(
        "report: exact / near fraction (true 0.2 / 0.2)",
        lambda r: f"{r['exact_fraction']:.3f} / {r['near_fraction']:.3f}",
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
