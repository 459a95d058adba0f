"""Benchmark the pure licensing engine: compliance checks and single decisions.

    . .venv/bin/activate
    python benchmarks/licensing_bench.py                      # 10,000 items, 1,000 agreements
    python benchmarks/licensing_bench.py --items 2000 --repeat 5 --tag quick

Measured, in-process, nothing but ``licensing`` (no database, no HTTP; the exchange's
database-backed end-to-end figures are measured separately):

1. ``check()`` of a 10,000-item manifest against 1,000 agreements, in two shapes:
   *shared* — items (versions, files, documents) resolve to a few hundred versions, so many
   items share a decision, as in a real manifest of whole corpora; *distinct* — every item is
   its own version, so every item costs one decision (the worst case for the engine).
   Around it: building the ``GrantIndex``, parsing the manifest JSON, the manifest digest, the
   report's JSON and digest, and reading the report back.
2. ``may()``: one decision through ``GrantIndex.decide`` and through ``may(use, all grants)``
   (a linear scan), over random questions.

Writes ``benchmarks/results/licensing-YYYY-MM-DD.md`` (+ ``.json``) with the command, the
machine and the code version. Latencies are nearest-rank percentiles of ``perf_counter``
times; no figure is asserted anywhere.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import platform
import random
import shlex
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/licensing_bench.py` from the repository root
    sys.path.insert(0, str(ROOT))

from benchmarks.ledger_bench import machine_info, percentile  # noqa: E402
from benchmarks.meta import git as _git  # noqa: E402
from licensing.compliance import (  # noqa: E402
    ComplianceReport,
    ManifestItem,
    TrainingManifest,
    check,
)
from licensing.evaluation import Grant, GrantIndex, Use, may  # noqa: E402
from licensing.terms import PURPOSES, Terms  # noqa: E402

MEMBER = "acme"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
CODE_UNDER_TEST = [
    "licensing/evaluation.py",
    "licensing/compliance.py",
    "licensing/terms.py",
    "ledger/canonical.py",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=10_000, help="manifest items")
    parser.add_argument("--agreements", type=int, default=1_000, help="grants in the index")
    parser.add_argument("--versions", type=int, default=400, help="versions in the shared shape")
    parser.add_argument("--repeat", type=int, default=30, help="check() runs per shape")
    parser.add_argument("--uses", type=int, default=20_000, help="single decisions timed")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--tag", default=None, help="suffix of the result file names")
    return parser.parse_args(argv)


# -- the workload ---------------------------------------------------------------------------


def version_id(n: int) -> str:
    return "sha256:" + hashlib.sha256(f"version {n}".encode()).hexdigest()


def hex_digest(kind: str, n: int) -> str:
    return hashlib.sha256(f"{kind} {n}".encode()).hexdigest()


def _terms(rng: random.Random) -> Terms:
    # Mostly what a buyer would hold, with enough variety that every rule is exercised.
    purposes = frozenset([*rng.sample(PURPOSES, rng.randint(1, len(PURPOSES))), "training"])
    if rng.random() < 0.1:
        purposes = frozenset({"research"})
    return Terms(
        purposes=purposes,
        commercial=rng.random() < 0.8,
        territories=None if rng.random() < 0.7 else frozenset(rng.sample(["DE", "FR", "US"], 2)),
        duration_days=None if rng.random() < 0.5 else rng.choice([90, 365, 730]),
        attribution=("(c) Provider",) if rng.random() < 0.3 else (),
    )


def make_grants(rng: random.Random, *, agreements: int, versions: list[str]) -> list[Grant]:
    """A fifth to the member checked, a twentieth public, the rest to 99 other members; a few
    expired, revoked or not yet valid."""
    grants = []
    for i in range(agreements):
        roll = rng.random()
        assignee = MEMBER if roll < 0.2 else None if roll < 0.25 else f"member-{rng.randrange(99)}"
        start = T0 + rng.randrange(0, 200) * DAY
        until = None if rng.random() < 0.4 else start + rng.randrange(30, 900) * DAY
        revoked = start + rng.randrange(1, 300) * DAY if rng.random() < 0.05 else None
        grants.append(
            Grant(
                f"agr-{i:05d}",
                assignee,
                versions[i % len(versions)] if i < len(versions) else rng.choice(versions),
                _terms(rng),
                start,
                until,
                revoked,
                "payment reversed" if revoked else None,
            )
        )
    return grants


def shared_shape(
    rng: random.Random, *, items: int, versions: int
) -> tuple[TrainingManifest, dict[ManifestItem, list[str]], list[str]]:
    """Versions, files and documents of a few hundred versions; 1% unknown."""
    ids = [version_id(n) for n in range(versions)]
    chosen: list[ManifestItem] = [
        ManifestItem("version", v) for v in ids[: min(versions, items // 20)]
    ]
    resolution: dict[ManifestItem, list[str]] = {item: [item.value] for item in chosen}
    n = 0
    while len(chosen) < items:
        n += 1
        kind = "file" if n % 3 else "document"
        item = ManifestItem(kind, hex_digest(kind, n))
        chosen.append(item)
        if rng.random() >= 0.01:
            resolution[item] = rng.sample(ids, rng.randint(1, 3))
    return _manifest(chosen), resolution, ids


def distinct_shape(
    rng: random.Random, *, items: int
) -> tuple[TrainingManifest, dict[ManifestItem, list[str]], list[str]]:
    """Every item is a version of its own."""
    ids = [version_id(1_000_000 + n) for n in range(items)]
    chosen = [ManifestItem("version", v) for v in ids]
    return _manifest(chosen), {item: [item.value] for item in chosen}, ids


def _manifest(items: list[ManifestItem]) -> TrainingManifest:
    return TrainingManifest("acme-7b", "training", True, T0 + 250 * DAY, "DE", tuple(items))


def _fresh(manifest: TrainingManifest) -> TrainingManifest:
    """An equal manifest whose digest is not yet computed (a manifest caches its digest)."""
    return TrainingManifest(
        manifest.model,
        manifest.purpose,
        manifest.commercial,
        manifest.at,
        manifest.territory,
        manifest.items,
    )


# -- measuring ------------------------------------------------------------------------------


def timed(function: Callable[[], Any], repeat: int) -> tuple[dict[str, Any], Any]:
    """Run ``function`` ``repeat`` times: wall and CPU-time statistics (ms), the last result.

    CPU time (``process_time``) is this process's own: on a shared machine it moves far less
    than wall time when other work competes for the cores."""
    wall, cpu, result = [], [], None
    for _ in range(repeat):
        gc.collect()
        start, start_cpu = time.perf_counter(), time.process_time()
        result = function()
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return {**_stats(wall, unit=1e3), "cpu": _stats(cpu, unit=1e3)}, result


def _stats(seconds: list[float], *, unit: float) -> dict[str, float]:
    values = sorted(seconds)
    return {
        "n": len(values),
        "min": values[0] * unit,
        "p50": percentile(values, 50) * unit,
        "p99": percentile(values, 99) * unit,
        "max": values[-1] * unit,
    }


def run_shape(
    name: str,
    manifest: TrainingManifest,
    resolution: dict[ManifestItem, list[str]],
    grants: list[Grant],
    repeat: int,
) -> dict[str, Any]:
    manifest_json = manifest.to_json()
    index_ms, index = timed(lambda: GrantIndex(grants), repeat)
    parse_ms, _ = timed(lambda: TrainingManifest.from_json(manifest_json), max(3, repeat // 3))
    digest_ms, _ = timed(lambda: _fresh(manifest).digest(), max(3, repeat // 3))
    check_ms, report = timed(
        lambda: check(_fresh(manifest), member=MEMBER, resolution=resolution, grants=index),
        repeat,
    )
    report_json = report.to_json()
    to_json_ms, _ = timed(report.to_json, max(3, repeat // 3))
    report_digest_ms, _ = timed(report.digest, max(3, repeat // 3))
    read_back_ms, back = timed(lambda: ComplianceReport.from_json(report_json), max(3, repeat // 3))
    assert back == report
    distinct_versions = len({v for versions in resolution.values() for v in versions})
    print(f"{name}: check p50 {check_ms['p50']:.1f} ms, p99 {check_ms['p99']:.1f} ms", flush=True)
    return {
        "items": len(manifest.items),
        "agreements": len(grants),
        "versions_resolved": distinct_versions,
        "counts": report.counts(),
        "agreements_used": len(report.agreements),
        "report_json_bytes": len(json.dumps(report_json)),
        "ms": {
            "grant_index": index_ms,
            "manifest_from_json": parse_ms,
            "manifest_digest": digest_ms,
            "check": check_ms,
            "report_to_json": to_json_ms,
            "report_digest": report_digest_ms,
            "report_from_json": read_back_ms,
        },
    }


def run_decisions(
    rng: random.Random, grants: list[Grant], versions: list[str], uses: int
) -> dict[str, Any]:
    index = GrantIndex(grants)
    questions = [
        Use(
            MEMBER if rng.random() < 0.7 else f"member-{rng.randrange(99)}",
            rng.choice(versions),
            rng.choice(PURPOSES),
            rng.random() < 0.5,
            rng.choice([None, "DE", "US"]),
            T0 + rng.randrange(0, 400) * DAY,
        )
        for _ in range(uses)
    ]
    indexed, scanned, permitted = [], [], 0
    for question in questions:
        start = time.perf_counter()
        decision = index.decide(question)
        indexed.append(time.perf_counter() - start)
        permitted += decision.permitted
    for question in questions[: max(1, uses // 10)]:
        start = time.perf_counter()
        may(question, grants)
        scanned.append(time.perf_counter() - start)
    print(
        f"decide: p50 {percentile(sorted(indexed), 50) * 1e6:.1f} µs; "
        f"may over all grants: p50 {percentile(sorted(scanned), 50) * 1e6:.1f} µs",
        flush=True,
    )
    return {
        "uses": uses,
        "permitted": permitted,
        "grant_index_decide_us": _stats(indexed, unit=1e6),
        "may_all_grants_us": _stats(scanned, unit=1e6),
    }


# -- the report -----------------------------------------------------------------------------


def meta(args: argparse.Namespace, command: str) -> dict[str, Any]:
    return {
        "date": datetime.now().date().isoformat(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine_info(),
        "versions": {"python": platform.python_version(), "rfc8785": metadata.version("rfc8785")},
        "code": {
            "git_head": _git("rev-parse", "--short", "HEAD"),
            "uncommitted_changes": _git(
                "status", "--porcelain", "--", "licensing", "ledger"
            ).splitlines(),
            "sha256_prefix_of_files_under_test": {
                name: hashlib.sha256((ROOT / name).read_bytes()).hexdigest()[:16]
                for name in CODE_UNDER_TEST
            },
        },
        "parameters": {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "out"
        },
    }


def _row(label: str, s: dict[str, Any], unit: str) -> str:
    cells = (
        f"| {label} | {s['p50']:,.2f} {unit} | {s['p99']:,.2f} {unit} | {s['min']:,.2f} {unit} |"
    )
    if "cpu" in s:
        cells += f" {s['cpu']['p50']:,.2f} {unit} | {s['cpu']['p99']:,.2f} {unit} |"
    return cells + f" {s['n']} |"


def render(results: dict[str, Any]) -> str:
    m = results["meta"]
    machine = m["machine"]
    lines = [
        f"# Licensing engine benchmarks — {m['date']}",
        "",
        "Produced by this exact command, from the repository root with the venv active:",
        "",
        "```",
        m["command"],
        "```",
        "",
        "| Machine | |",
        "|---|---|",
        f"| nproc | {machine['nproc']} |",
        f"| CPU | {machine['cpu_model']} ({machine['cpu_mhz']} MHz) |",
        f"| memory | {machine['memory']} |",
        f"| load average at start | {', '.join(f'{x:.2f}' for x in machine['loadavg'])} |",
        f"| versions | Python {m['versions']['python']}, rfc8785 {m['versions']['rfc8785']} |",
        f"| code | git {m['code']['git_head']}; uncommitted changes under licensing/ ledger/: "
        f"{', '.join(m['code']['uncommitted_changes']) or 'none'} |",
        f"| wall time | {results['wall_seconds']:.1f} s |",
        "",
        "Pure part only (no database, no HTTP). The machine is shared and noisy: wall times include "
        "waiting for a core while other work runs, so CPU time (this process's own) is given beside "
        "them. No figure here is asserted by any test.",
        "",
        "## Targets",
        "",
        "| Target | Measured | Met |",
        "|---|---|---|",
    ]
    for name, shape in results["shapes"].items():
        wall, cpu = shape["ms"]["check"], shape["ms"]["check"]["cpu"]
        lines.append(
            f"| pure `check()` of {shape['items']:,} items against {shape['agreements']:,} agreements "
            f"in a few tens of ms (CPU p50 < 50 ms; {name} shape) | CPU p50 {cpu['p50']:,.1f} ms, p99 {cpu['p99']:,.1f} ms; "
            f"wall p50 {wall['p50']:,.1f} ms, p99 {wall['p99']:,.1f} ms | {'yes' if cpu['p50'] < 50 else 'no'} |"
        )
    for name, shape in results["shapes"].items():
        lines += [
            "",
            f"## check(), {name} shape",
            "",
            f"{shape['items']:,} items resolving to {shape['versions_resolved']:,} versions; "
            f"{shape['agreements']:,} agreements, of which {shape['agreements_used']} cover items. "
            f"Statuses: {', '.join(f'{k} {v:,}' for k, v in shape['counts'].items() if v)}. "
            f"Report JSON: {shape['report_json_bytes'] / 1e6:.1f} MB.",
            "",
            "| Step | wall p50 | wall p99 | wall min | CPU p50 | CPU p99 | runs |",
            "|---|---|---|---|---|---|---|",
        ]
        for step, label in (
            ("grant_index", "`GrantIndex(grants)`"),
            ("manifest_from_json", "`TrainingManifest.from_json`"),
            ("manifest_digest", "`TrainingManifest.digest()`"),
            ("check", "**`check()`**"),
            ("report_to_json", "`ComplianceReport.to_json()`"),
            ("report_digest", "`ComplianceReport.digest()`"),
            ("report_from_json", "`ComplianceReport.from_json`"),
        ):
            lines.append(_row(label, shape["ms"][step], "ms"))
    d = results["decisions"]
    lines += [
        "",
        "## Single decisions",
        "",
        f"{d['uses']:,} random questions ({d['permitted']:,} permitted) against "
        f"{results['shapes']['shared']['agreements']:,} agreements.",
        "",
        "| Call | p50 | p99 | min | calls |",
        "|---|---|---|---|---|",
        _row("`GrantIndex.decide(use)`", d["grant_index_decide_us"], "µs"),
        _row("`may(use, all grants)` (linear scan)", d["may_all_grants_us"], "µs"),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python benchmarks/licensing_bench.py" + (
        " " + shlex.join(argv if argv is not None else sys.argv[1:])
        if (argv if argv is not None else sys.argv[1:])
        else ""
    )
    # What exists already (in a pytest process: thousands of tests' objects) is frozen, so the
    # collection before each repetition scans only what the benchmark made.
    gc.collect()
    gc.freeze()
    try:
        return _run(args, command)
    finally:
        gc.unfreeze()


def _run(args: argparse.Namespace, command: str) -> int:
    started = time.perf_counter()
    results: dict[str, Any] = {"meta": meta(args, command), "shapes": {}}
    rng = random.Random(args.seed)
    manifest, resolution, versions = shared_shape(rng, items=args.items, versions=args.versions)
    grants = make_grants(rng, agreements=args.agreements, versions=versions)
    results["shapes"]["shared"] = run_shape("shared", manifest, resolution, grants, args.repeat)
    results["decisions"] = run_decisions(rng, grants, versions, args.uses)
    manifest, resolution, versions = distinct_shape(rng, items=args.items)
    grants = make_grants(rng, agreements=args.agreements, versions=versions[: args.agreements])
    results["shapes"]["distinct"] = run_shape("distinct", manifest, resolution, grants, args.repeat)
    results["wall_seconds"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"licensing-{results['meta']['date']}" + (f"-{args.tag}" if args.tag else "")
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / f"{stem}.md").write_text(render(results))
    print(f"wrote {args.out / stem}.md and .json", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
