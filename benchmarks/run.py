"""Run the provenance-ledger benchmarks and write Markdown + JSON results.

    . .venv/bin/activate
    python benchmarks/run.py                       # everything, 1M-entry log, SQLite and PostgreSQL
    python benchmarks/run.py --only append --db postgres
    python benchmarks/run.py --only proofs,audit --entries 200000 --db sqlite

Benchmarks (``--only``, comma-separated): append, build, proofs, audit, scale, merkle. proofs,
audit and scale need the big log, so they imply build. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/run.py` from the repository root
    sys.path.insert(0, str(ROOT))

from benchmarks import ledger_bench as lb  # noqa: E402
from benchmarks.meta import git as _git  # noqa: E402
from benchmarks.meta import version as _version  # noqa: E402
from exchange.db import upgrade  # noqa: E402

ALL = ("append", "build", "proofs", "audit", "scale", "merkle")
NEEDS_LOG = {"build", "proofs", "audit", "scale"}
DEFAULT_ENTRIES = 1_000_000
CODE_UNDER_TEST = [
    "ledger/sql.py",
    "ledger/entry.py",
    "ledger/merkle.py",
    "ledger/audit.py",
    "ledger/canonical.py",
    "exchange/db.py",
    "exchange/audit.py",
    "exchange/setup.py",
    "exchange/signing.py",
    "exchange/members.py",
    "exchange/statements.py",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(ALL)}")
    parser.add_argument(
        "--entries",
        type=int,
        default=DEFAULT_ENTRIES,
        help="size of the big log (default 1,000,000)",
    )
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--tag", default=None, help="suffix of the result file names (default: derived)"
    )
    parser.add_argument(
        "--unbatched", type=int, default=2000, help="single-process unbatched appends"
    )
    parser.add_argument(
        "--batched", type=int, default=20_000, help="single-process batched appends"
    )
    parser.add_argument(
        "--batch", type=int, default=1000, help="statements per transaction when batched"
    )
    parser.add_argument("--procs", type=int, default=4, help="concurrent appending processes")
    parser.add_argument(
        "--proc-unbatched", type=int, default=500, help="unbatched appends per process"
    )
    parser.add_argument("--proc-batches", type=int, default=5, help="batches per process")
    parser.add_argument(
        "--breakdown-batches",
        type=int,
        default=10,
        help="transactions of 1 batch each timed step by step (append breakdown)",
    )
    parser.add_argument(
        "--members", type=int, default=100, help="registered members signing the log"
    )
    parser.add_argument("--queries", type=int, default=2000, help="proof queries per kind")
    parser.add_argument(
        "--proof-budget",
        type=float,
        default=20.0,
        help="max seconds per (database, proof kind, query variant); slow queries stop early",
    )
    parser.add_argument(
        "--profile-entries", type=int, default=50_000, help="entries audited under cProfile"
    )
    parser.add_argument("--merkle-queries", type=int, default=2000)
    parser.add_argument(
        "--sign-procs", type=int, default=2, help="processes pre-signing the log's statements"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="SQLite files and data dirs (default: a temp dir)",
    )
    parser.add_argument(
        "--render",
        type=Path,
        default=None,
        metavar="JSON",
        help="only re-render the Markdown next to an existing results JSON, then exit",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the databases and workdir afterwards"
    )
    parser.add_argument(
        "--db-suffix",
        default="",
        type=str.lower,
        help="appended to the database names corpusx_bench_append / corpusx_bench_log, "
        "so that two runs never share a database",
    )
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()] or list(ALL)
    unknown = set(only) - set(ALL)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {', '.join(ALL)}")
    if set(only) & NEEDS_LOG:
        only = sorted(set(only) | {"build"}, key=ALL.index)
    args.selected = only
    args.dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    if args.entries < args.members + 2:
        parser.error("--entries must exceed --members + 1")
    return args


# -- metadata --------------------------------------------------------------------------------


def _pg_version() -> str:
    try:
        import psycopg

        with psycopg.connect(lb.PG_ADMIN_DSN, autocommit=True, connect_timeout=5) as connection:
            return str(connection.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})"


def collect_meta(args: argparse.Namespace, command: str) -> dict[str, Any]:
    from cryptography.hazmat.backends.openssl.backend import backend

    files = {}
    for name in CODE_UNDER_TEST:
        path = ROOT / name
        files[name] = (
            hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.exists() else "missing"
        )
    return {
        "date": datetime.now().date().isoformat(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "cwd": str(Path.cwd()),
        "machine": lb.machine_info(),
        "versions": {
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "postgresql": _pg_version() if "postgres" in args.dbs else "not used",
            "openssl": backend.openssl_version_text(),
            **{
                p: _version(p)
                for p in (
                    "cryptography",
                    "SQLAlchemy",
                    "sqlmodel",
                    "psycopg",
                    "pymerkle",
                    "rfc8785",
                )
            },
        },
        "code": {
            "git_head": _git("rev-parse", "--short", "HEAD"),
            "uncommitted_changes_in_tree": _git(
                "status", "--porcelain", "--", "ledger", "exchange"
            ).splitlines(),
            "sha256_prefix_of_files_under_test": files,
        },
        "parameters": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in ("out", "workdir")
        },
    }


# -- phases ----------------------------------------------------------------------------------


def run_append(kind: str, args: argparse.Namespace, workdir: Path, keep: bool) -> dict[str, Any]:
    lb._print(f"== append throughput on {kind}")
    target = lb.create_target(kind, "append" + args.db_suffix, workdir)
    out: dict[str, Any] = {"database": target.name}
    when = lb.format_time(datetime.now(UTC))
    try:
        upgrade(target.url)
        out["single_unbatched"] = lb.single_appends(target.url, args.unbatched, 1, when)
        lb._print(
            f"  1 process, unbatched: {out['single_unbatched']['entries_per_s']:,.0f} entries/s"
        )
        out["single_batched"] = lb.single_appends(target.url, args.batched, args.batch, when)
        lb._print(f"  1 process, batched: {out['single_batched']['entries_per_s']:,.0f} entries/s")
        out["concurrent_unbatched"] = lb.concurrent_appends(
            target.url, args.procs, "unbatched", args.proc_unbatched, 1, when
        )
        lb._print(
            f"  {args.procs} processes, unbatched: {out['concurrent_unbatched']['entries_per_s']:,.0f} entries/s"
        )
        out["concurrent_batched"] = lb.concurrent_appends(
            target.url, args.procs, "batched", args.proc_batches * args.batch, args.batch, when
        )
        lb._print(
            f"  {args.procs} processes, batched: {out['concurrent_batched']['entries_per_s']:,.0f} entries/s"
        )
        out["breakdown"] = lb.append_breakdown(target.url, args.batch, args.breakdown_batches, when)
        lb._print(f"  breakdown: {out['breakdown']['total_us_per_entry']:,.0f} µs per entry")
        engine = lb.make_engine(target.url)
        try:
            out["integrity"] = lb.check_log_integrity(engine)
        finally:
            engine.dispose()
        lb._print(
            f"  integrity after concurrent appends: {out['integrity']['entries']:,} entries, all checks pass"
        )
        out["ratios"] = {
            "batched_over_unbatched_1proc": out["single_batched"]["entries_per_s"]
            / out["single_unbatched"]["entries_per_s"],
            "concurrent_over_single_unbatched": out["concurrent_unbatched"]["entries_per_s"]
            / out["single_unbatched"]["entries_per_s"],
            "concurrent_over_single_batched": out["concurrent_batched"]["entries_per_s"]
            / out["single_batched"]["entries_per_s"],
        }
    finally:
        if not keep:
            lb.drop_target(target)
    return out


def run_log(
    kind: str,
    corpus: lb.Corpus,
    args: argparse.Namespace,
    workdir: Path,
    keep: bool,
    first: bool,
    save: Any,
) -> dict[str, Any]:
    lb._print(f"== {args.entries:,}-entry log on {kind}")
    target = lb.create_target(kind, "log" + args.db_suffix, workdir)
    out: dict[str, Any] = {"database": target.name}
    built = None
    try:
        built = lb.build_log(target, corpus, workdir, args.batch)
        gc.collect()
        gc.freeze()  # the log's leaf hashes and entry bytes, likewise
        out["build"] = built.report
        save()
        if "proofs" in args.selected:
            out["proofs"] = lb.proof_latency(built, queries=args.queries, budget=args.proof_budget)
            out["proof_anatomy"] = lb.proof_anatomy(
                built, queries=args.queries, budget=args.proof_budget
            )
            save()
        if "audit" in args.selected:
            out["audit"] = lb.audit_rate(built, corpus)
            lb._print(
                f"  [{kind}] audit {out['audit']['audit_entries_per_s']:,.0f} entries/s, raw "
                f"{out['audit']['raw_entries_per_s']:,.0f}/s, ratio {out['audit']['ratio_audit_to_raw']:.1%}"
            )
            save()
            if first:
                out["audit_breakdown"] = lb.audit_breakdown(
                    built, corpus, min(20_000, len(corpus.bench))
                )
                lb._print(
                    f"  [{kind}] cProfile of the audit over {min(args.profile_entries, built.size):,} entries"
                )
                out["audit_profile"] = lb.audit_profile(
                    built, min(args.profile_entries, built.size)
                )
                save()
        if "scale" in args.selected:
            out["replay_refusal"] = lb.replay_refusal(built, corpus)
            out["appends_at_scale"] = lb.appends_at_scale(built, corpus, 200, 5, args.batch)
            out["breakdown_at_scale"] = lb.append_breakdown(
                built.target.url, args.batch, args.breakdown_batches, corpus.when
            )
            lb._print(
                f"  [{kind}] at {built.size:,}: unbatched "
                f"{out['appends_at_scale']['unbatched']['entries_per_s']:,.0f}/s, batched "
                f"{out['appends_at_scale']['batched']['entries_per_s']:,.0f}/s"
            )
            save()
    finally:
        if not keep:
            lb.drop_target(built.target if built else target)
            lb.drop_target(target)
            if built is not None:
                shutil.rmtree(built.data_dir, ignore_errors=True)
    return out


# -- rendering -------------------------------------------------------------------------------


def _n(x: float | None, digits: int = 0) -> str:
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.0%}"


def _get(d: dict[str, Any] | None, *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _plan(lines: list[str], keep: int = 6) -> list[str]:
    shown = [line if len(line) <= 160 else line[:157] + "..." for line in lines[:keep]]
    if len(lines) > keep:
        shown.append(
            f"... ({len(lines) - keep} more lines of the same kind; full plan in the JSON)"
        )
    return shown


def _breakdown_intro(bd: dict[str, Any]) -> str:
    return (
        f"{bd['batches']} transactions of {bd['batch']:,}: `append_many` run through a subclass that times "
        "its helpers (`_lock_head`, `_refuse_replays`, `_insert_rows`); the rest of `append_many` is "
        "everything between them (entry bytes, leaf hashes, `integrate`, the head UPDATE and flush); then "
        "COMMIT. `Entry.build` + leaf hash alone is also timed on the same statements outside any "
        "transaction."
    )


def _breakdown_table(
    r: dict[str, Any], dbs: list[str], names: dict[str, str], where: str, label: str
) -> list[str]:
    def bd(db: str) -> dict[str, Any] | None:
        return (
            _get(r, "append", db, "breakdown")
            if where == "append"
            else _get(r, "log", db, "breakdown_at_scale")
        )

    present = [db for db in dbs if bd(db) and "us_per_entry" in bd(db)]  # type: ignore[operator]
    if not present:
        return []
    steps: list[str] = []
    for db in present:
        steps += [k for k in bd(db)["us_per_entry"] if k not in steps]  # type: ignore[index]
    out = [
        f"| Step ({label}) |"
        + "".join(f" {names[db]} µs/entry | {names[db]} share |" for db in present),
        "|---|" + "---|---|" * len(present),
    ]
    for step in steps:
        row = f"| {step} |"
        for db in present:
            b = bd(db)
            us = b["us_per_entry"].get(step)  # type: ignore[index]
            row += (
                f" {us:,.1f} | {us / b['total_us_per_entry']:.0%} |"
                if us is not None
                else " – | – |"
            )  # type: ignore[index]
        out.append(row)
    out.append(
        "| **total** |"
        + "".join(
            f" **{bd(db)['total_us_per_entry']:,.1f}** | **{_n(bd(db)['entries_per_s'])} entries/s** |"  # type: ignore[index]
            for db in present
        )
    )
    out.append(
        "| `Entry.build` + leaf hash alone (no database) |"
        + "".join(f" {bd(db)['entry_build_plus_leaf_hash_us']:,.1f} | |" for db in present)
    )  # type: ignore[index]
    return out


def render_markdown(r: dict[str, Any]) -> str:
    meta = r["meta"]
    m = meta["machine"]
    dbs = [db for db in ("sqlite", "postgres") if db in meta["parameters"]["dbs"]]
    names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
    lines: list[str] = []
    add = lines.append
    add(f"# Provenance ledger benchmarks — {meta['date']}")
    add("")
    add("Produced by this exact command, from the repository root with the venv active:")
    add("")
    add("```")
    add(meta["command"])
    add("```")
    add("")
    add("| Machine | |")
    add("|---|---|")
    add(f"| nproc | {m['nproc']} |")
    add(f"| CPU | {m['cpu_model']} ({m['cpu_mhz']} MHz) |")
    add(f"| memory | {m['memory']} |")
    add(
        f"| load average at start / end | {', '.join(f'{x:.2f}' for x in m['loadavg'])} / "
        f"{', '.join(f'{x:.2f}' for x in meta.get('loadavg_end', []))} |"
    )
    add(f"| started (UTC) | {meta['started']} |")
    if meta.get("phase_loadavg"):
        add(
            "| load average (1 min) at each phase | "
            + ", ".join(f"{p['phase']} {p['loadavg'][0]:.2f}" for p in meta["phase_loadavg"])
            + " |"
        )
    add(f"| wall time of the whole run | {_n(meta.get('elapsed_s'), 0)} s |")
    v = meta["versions"]
    add(
        f"| versions | Python {v['python']}, SQLite {v['sqlite']}, PostgreSQL {v['postgresql']}, "
        f"{v['openssl']}, cryptography {v['cryptography']}, SQLAlchemy {v['SQLAlchemy']}, "
        f"sqlmodel {v['sqlmodel']}, psycopg {v['psycopg']}, rfc8785 {v['rfc8785']}, pymerkle {v['pymerkle']} |"
    )
    code = meta["code"]
    dirty = ", ".join(" ".join(x.split()) for x in code["uncommitted_changes_in_tree"]) or "none"
    add(f"| code | git {code['git_head']}; uncommitted changes under ledger/ exchange/: {dirty} |")
    add("")
    add(
        "The machine is shared and noisy: compare the **ratios** (both sides measured in the same run, "
        "close together), not absolute numbers across runs. No figure here is asserted by any test."
    )
    add("")
    if r.get("error"):
        add(f"**The run stopped early with an error:** `{r['error']}`")
        add("")

    # targets
    add("## Targets")
    add("")
    add("| Target | Database | Measured | Met |")
    add("|---|---|---|---|")
    pg = _get(r, "append", "postgres")
    if pg:
        for label, key in (
            ("1 process, fresh log", "single_batched"),
            (f"{pg['concurrent_batched']['processes']} processes", "concurrent_batched"),
        ):
            rate = pg[key]["entries_per_s"]
            add(
                f"| batched appends ≥ 10,000 entries/s ({label}) | PostgreSQL | {_n(rate)} entries/s | {'yes' if rate >= 10_000 else 'no'} |"
            )
    b = _get(r, "log", "postgres", "build")
    if b:
        add(
            f"| batched appends ≥ 10,000 entries/s (building the {b['entries']:,}-entry log) | PostgreSQL | "
            f"{_n(b['entries_per_s'])} entries/s | {'yes' if b['entries_per_s'] >= 10_000 else 'no'} |"
        )
    for db in dbs:
        p = _get(r, "log", db, "proofs")
        if not p:
            continue
        for kind in ("inclusion", "consistency"):
            s, f = p[f"{kind}_shipped"], p[f"{kind}_fixed"]
            add(
                f"| {kind} proof p99 < 1 ms at {p['size']:,} entries (as shipped) | {names[db]} | "
                f"p99 {s['p99']:.3f} ms (n={s['n']}); with the suggested node query p99 {f['p99']:.3f} ms | "
                f"{'yes' if s['p99'] < 1 else 'no'} |"
            )
    for db in dbs:
        a = _get(r, "log", db, "audit")
        if a:
            add(
                f"| full audit ≥ 70% of raw Ed25519-verify + SHA-256 rate | {names[db]} | "
                f"{_pct(a['ratio_audit_to_raw'])} ({_n(a['audit_entries_per_s'])} vs {_n(a['raw_entries_per_s'])} entries/s) | "
                f"{'yes' if a['ratio_audit_to_raw'] >= 0.7 else 'no'} |"
            )
    add("")

    # appends
    if r.get("append"):
        add("## 1. Append throughput")
        add("")
        add(
            "Statements are signed before the clock starts (signing is client-side). Each transaction is "
            "`exchange.db.unit_of_work` around `SqlLedger.append` (unbatched) or `append_many` (batched). "
            "All scenarios of one database run one after the other on the same fresh database. "
            "Throughput of concurrent runs is total entries / (last finish − first start)."
        )
        add("")
        header = "| Scenario |" + "".join(
            f" {names[db]} entries/s | {names[db]} txn p50 / p99 ms |" for db in dbs
        )
        add(header)
        add("|---|" + "---|---|" * len(dbs))
        any_app = next(iter(r["append"].values()))
        scen = [
            (
                "single_unbatched",
                f"1 process, unbatched ({any_app['single_unbatched']['entries']:,} txns)",
            ),
            (
                "single_batched",
                f"1 process, batched ({any_app['single_batched']['entries']:,} entries, {any_app['single_batched']['batch']:,}/txn)",
            ),
            (
                "concurrent_unbatched",
                f"{any_app['concurrent_unbatched']['processes']} processes, unbatched ({any_app['concurrent_unbatched']['entries']:,} txns)",
            ),
            (
                "concurrent_batched",
                f"{any_app['concurrent_batched']['processes']} processes, batched ({any_app['concurrent_batched']['entries']:,} entries)",
            ),
        ]
        for key, label in scen:
            row = f"| {label} |"
            for db in dbs:
                s = _get(r, "append", db, key)
                row += (
                    f" {_n(s['entries_per_s'])} | {s['txn_latency_ms']['p50']:.2f} / {s['txn_latency_ms']['p99']:.2f} |"
                    if s
                    else " – | – |"
                )
            add(row)
        for db_key, label in (
            ("build", "building the big log, batched (rate over the whole build)"),
        ):
            row = f"| {label} |"
            for db in dbs:
                s = _get(r, "log", db, db_key)
                row += f" {_n(s['entries_per_s'])} | – |" if s else " – | – |"
            add(row)
        for key, label in (
            ("unbatched", "unbatched, onto the full big log"),
            ("batched", "batched, onto the full big log"),
        ):
            row = f"| {label} |"
            for db in dbs:
                s = _get(r, "log", db, "appends_at_scale", key)
                row += (
                    f" {_n(s['entries_per_s'])} | {s['txn_latency_ms']['p50']:.2f} / {s['txn_latency_ms']['p99']:.2f} |"
                    if s
                    else " – | – |"
                )
            add(row)
        add("")
        add("Ratios (same database, same run):")
        add("")
        add("| Ratio |" + "".join(f" {names[db]} |" for db in dbs))
        add("|---|" + "---|" * len(dbs))
        for key, label in (
            ("batched_over_unbatched_1proc", "batched ÷ unbatched, 1 process"),
            ("concurrent_over_single_unbatched", "N processes ÷ 1 process, unbatched"),
            ("concurrent_over_single_batched", "N processes ÷ 1 process, batched"),
        ):
            add(
                f"| {label} |"
                + "".join(f" {_n(_get(r, 'append', db, 'ratios', key), 2)}× |" for db in dbs)
            )
        row = "| at full size ÷ fresh, unbatched |"
        for db in dbs:
            big = _get(r, "log", db, "appends_at_scale", "unbatched", "entries_per_s")
            fresh = _get(r, "append", db, "single_unbatched", "entries_per_s")
            row += f" {_n(big / fresh, 3)}× |" if big and fresh else " – |"
        add(row)
        row = "| at full size ÷ fresh, batched |"
        for db in dbs:
            big = _get(r, "log", db, "appends_at_scale", "batched", "entries_per_s")
            fresh = _get(r, "append", db, "single_batched", "entries_per_s")
            row += f" {_n(big / fresh, 3)}× |" if big and fresh else " – |"
        add(row)
        if all(_get(r, "append", db, "single_unbatched") for db in ("sqlite", "postgres")):
            add(
                f"| PostgreSQL ÷ SQLite, batched 1 process | {_n(r['append']['postgres']['single_batched']['entries_per_s'] / r['append']['sqlite']['single_batched']['entries_per_s'], 2)}× | |"
            )
        add("")
        add(
            "Correctness after the concurrent runs (asserted, not timed): "
            + "; ".join(
                f"{names[db]}: {r['append'][db]['integrity']['entries']:,} entries, no gaps, no duplicate seq, prev chain "
                f"intact, stored leaf hashes match, root = `merkle.tree_root` of all leaf hashes"
                for db in dbs
                if _get(r, "append", db, "integrity")
            )
            + "."
        )
        add("")
        vc = r.get("verify_cost")
        if vc:
            add("### Server-side cost of checking one statement")
            add("")
            add(
                f"What the server does with a signed statement before appending it: parse it from the request "
                f"JSON, then `SignedStatement.verify` (what `exchange.statements.check_statement` runs). "
                f"{vc['samples']:,} samples, each part timed on freshly parsed objects, µs:"
            )
            add("")
            add("| Part | µs |")
            add("|---|---|")
            if "parse_signed_statement_us" in vc:
                add(
                    f"| `SignedStatement.from_json` (field validation) | {vc['parse_signed_statement_us']:.1f} |"
                )
            add(f"| `SignedStatement.verify`, all of it | {vc['signed_statement_verify_us']:.1f} |")
            add(
                f"| of which `Statement.signing_bytes()` (canonical JSON, first call) | {vc['signing_bytes_us']:.1f} |"
            )
            add(
                f"| of which `Ed25519PublicKey.from_public_bytes` | {vc['load_public_key_us']:.1f} |"
            )
            add(f"| of which Ed25519 verify | {vc['raw_ed25519_verify_us']:.1f} |")
            add(f"| (client side, for reference: Ed25519 sign) | {vc['client_sign_us']:.1f} |")
            add("")
            add(
                "Whole server-side cost of one accepted statement ≈ parse + signature check + its share of "
                "the append (1 / throughput), HTTP and authentication not included:"
            )
            add("")
            add(
                "| Scenario |"
                + "".join(
                    f" {names[db]} append µs | {names[db]} + parse + verify µs | {names[db]} statements/s on one core |"
                    for db in dbs
                )
            )
            add("|---|" + "---|---|---|" * len(dbs))
            for key, label in (("single_unbatched", "unbatched"), ("single_batched", "batched")):
                row = f"| {label} |"
                for db in dbs:
                    rate = _get(r, "append", db, key, "entries_per_s")
                    if rate:
                        us = 1e6 / rate
                        total = (
                            us
                            + vc["signed_statement_verify_us"]
                            + vc.get("parse_signed_statement_us", 0.0)
                        )
                        row += f" {us:.0f} | {total:.0f} | {_n(1e6 / total)} |"
                    else:
                        row += " – | – | – |"
                add(row)
            add("")
        if any(_get(r, "append", db, "breakdown") for db in dbs):
            add("### Where a batched append's time goes (µs per entry)")
            add("")
            add(_breakdown_intro(any_app["breakdown"]))
            add("")
            lines.extend(_breakdown_table(r, dbs, names, "append", "on the fresh append database"))
            add("")

    # build
    if any(_get(r, "log", db, "build") for db in dbs):
        add("## 2. The big log")
        add("")
        add(
            "Entry 0 is the genesis operator (`exchange.setup.initialise`), then member registrations "
            "signed by the operator, then `attest.bench` statements signed by those members, appended with "
            "`append_many` in batches, then one checkpoint. Statements were pre-signed once "
            f"({_n(_get(r, 'corpus', 'sign_seconds'), 0)} s with {meta['parameters']['sign_procs']} processes) "
            "and reused for every database."
        )
        add("")
        add("| | " + " | ".join(names[db] for db in dbs) + " |")
        add("|---|" + "---|" * len(dbs))
        for key, label, fmt in (
            ("entries", "entries", lambda x: _n(x)),
            ("members", "members", lambda x: _n(x)),
            ("append_seconds", "append time, s", lambda x: _n(x, 1)),
            ("entries_per_s", "entries/s", lambda x: _n(x)),
            (
                "total_seconds_incl_initialise_and_checkpoint",
                "total incl. initialise + checkpoint, s",
                lambda x: _n(x, 1),
            ),
            ("database_bytes", "database size, MiB", lambda x: _n(x / 2**20, 0)),
            ("mean_entry_bytes", "mean entry bytes", lambda x: _n(x, 0)),
        ):
            add(
                f"| {label} |"
                + "".join(
                    f" {fmt(_get(r, 'log', db, 'build', key)) if _get(r, 'log', db, 'build', key) is not None else '–'} |"
                    for db in dbs
                )
            )
        segs = {db: _get(r, "log", db, "build", "segments") or [] for db in dbs}
        longest = max(len(s) for s in segs.values())
        if longest:
            add("")
            add("Rate per segment as the log grows (entries/s):")
            add("")
            add("| up to entry |" + "".join(f" {names[db]} |" for db in dbs))
            add("|---|" + "---|" * len(dbs))
            for i in range(longest):
                up = next(s[i]["up_to"] for s in segs.values() if len(s) > i)
                add(
                    f"| {up:,} |"
                    + "".join(
                        f" {_n(segs[db][i]['entries_per_s']) if len(segs[db]) > i else '–'} |"
                        for db in dbs
                    )
                )
        add("")

    # proofs
    if any(_get(r, "log", db, "proofs") for db in dbs):
        add("## 3. Proof latency on the big log")
        add("")
        add(
            "Random queries (same seed for every database); each query opens a `Session` (pooled connection, "
            "one transaction) as a request would, reads the head and the nodes, and builds the proof; every "
            "proof is then verified against the root outside the clock. *shipped* is `SqlLedger` as is; "
            "*fixed* is the same with the node query suggested below (`FixedReadLedger` in "
            "`benchmarks/ledger_bench.py`). A variant stops early when it exceeds the time budget "
            f"({meta['parameters']['proof_budget']:.0f} s)."
        )
        add("")
        add("| Database | Proof | Node query | n | p50 ms | p90 ms | p99 ms | max ms | mean ms |")
        add("|---|---|---|---|---|---|---|---|---|")
        for db in dbs:
            p = _get(r, "log", db, "proofs")
            if not p:
                continue
            for kind in ("inclusion", "consistency"):
                for variant in ("shipped", "fixed"):
                    s = p[f"{kind}_{variant}"]
                    add(
                        f"| {names[db]} | {kind} | {variant} | {s['n']:,}{' (budget)' if s['stopped_by_budget'] else ''} | "
                        f"{s['p50']:.3f} | {s['p90']:.3f} | {s['p99']:.3f} | {s['max']:.3f} | {s['mean']:.3f} |"
                    )
        add("")
        add("| Ratio shipped ÷ fixed, p50 |" + "".join(f" {names[db]} |" for db in dbs))
        add("|---|" + "---|" * len(dbs))
        for kind in ("inclusion", "consistency"):
            row = f"| {kind} |"
            for db in dbs:
                p = _get(r, "log", db, "proofs")
                row += (
                    f" {p[f'{kind}_shipped']['p50'] / p[f'{kind}_fixed']['p50']:,.1f}× |"
                    if p
                    else " – |"
                )
            add(row)
        add("")
        if any(_get(r, "log", db, "proof_anatomy") for db in dbs):
            add(
                "Anatomy of an inclusion proof (suggested node query; ms): the same random leaves through "
                "less and less machinery around the SQL read; for each query the variants run back to back, "
                "rotating which goes first, so they share the machine's noise."
            )
            add("")
            add("| Variant |" + "".join(f" {names[db]} p50 | {names[db]} p99 |" for db in dbs))
            add("|---|" + "---|---|" * len(dbs))
            variants = list(
                next(
                    _get(r, "log", db, "proof_anatomy")
                    for db in dbs
                    if _get(r, "log", db, "proof_anatomy")
                )
            )
            for variant in variants:
                row = f"| {variant} |"
                for db in dbs:
                    s = _get(r, "log", db, "proof_anatomy", variant)
                    row += f" {s['p50']:.3f} | {s['p99']:.3f} |" if s else " – | – |"
                add(row)
            add("")
        for db in dbs:
            p = _get(r, "log", db, "proofs")
            if p:
                add(f"{names[db]} query plan of the shipped node query (`(level, idx) IN ...`):")
                add("")
                add("```")
                lines.extend(_plan(p["plan_nodes_shipped"]))
                add("```")
                add("")
                add(
                    f"{names[db]} query plan of the suggested node query (`(level = :l0 AND idx = :i0) OR ...`, a cached text statement):"
                )
                add("")
                add("```")
                lines.extend(_plan(p["plan_nodes_fixed"]))
                add("```")
                add("")

    # audit
    if any(_get(r, "log", db, "audit") for db in dbs):
        add("## 4. Full audit")
        add("")
        add(
            "`exchange.audit.audit_local` over the whole log (reads every entry and stored leaf hash, checks "
            "every signature against keys registered in the log, rebuilds the root, compares it with the "
            "signed checkpoint). The raw floor is one Ed25519 verify (key already loaded) plus one SHA-256 of "
            "the entry bytes, over the same messages and signatures, through the same OpenSSL, timed half "
            "just before and half just after the audit."
        )
        add("")
        add("| | " + " | ".join(names[db] for db in dbs if _get(r, "log", db, "audit")) + " |")
        audited = [db for db in dbs if _get(r, "log", db, "audit")]
        add("|---|" + "---|" * len(audited))
        for key, label, fmt in (
            ("entries", "entries", lambda x: _n(x)),
            ("audit_seconds", "audit_local, s", lambda x: _n(x, 1)),
            ("audit_entries_per_s", "audit_local, entries/s", lambda x: _n(x)),
            ("raw_seconds", "raw verify + SHA-256, s", lambda x: _n(x, 1)),
            ("raw_entries_per_s", "raw, entries/s", lambda x: _n(x)),
            ("raw_first_half_per_s", "raw before / after the audit, entries/s", None),
            ("ratio_audit_to_raw", "**audit ÷ raw**", lambda x: f"**{x:.1%}**"),
        ):
            if fmt is None:
                add(
                    f"| {label} |"
                    + "".join(
                        f" {_n(r['log'][db]['audit']['raw_first_half_per_s'])} / {_n(r['log'][db]['audit']['raw_second_half_per_s'])} |"
                        for db in audited
                    )
                )
            else:
                add(
                    f"| {label} |"
                    + "".join(f" {fmt(r['log'][db]['audit'][key])} |" for db in audited)
                )
        add("")
        first = next((db for db in dbs if _get(r, "log", db, "audit_breakdown")), None)
        if first:
            bd = r["log"][first]["audit_breakdown"]
            add(
                f"### Audit cost per entry, step by step ({names[first]} log, {bd['samples']:,} bench entries, µs)"
            )
            add("")
            add(
                f"Median over {bd.get('rounds', 1)} slices of the samples, steps taking turns slice by slice; "
                "no profiler. Indented rows are parts of the row above; the *suggested* row is a proposed "
                "replacement, measured on the same entries. The first row is the whole of `feed` for comparison "
                "with the rows below it and with the end-to-end audit rate above."
            )
            add("")
            add("| Step | µs/entry |")
            add("|---|---|")
            for step, us in bd["us_per_entry"].items():
                add(f"| {step} | {us:.1f} |")
            add("")
            if "sliced_bytes_equal_signed_bytes" in bd:
                add(
                    "The sliced bytes were "
                    f"{'identical' if bd['sliced_bytes_equal_signed_bytes'] else 'NOT identical'} to "
                    "`Statement.signing_bytes()` for every sampled entry."
                )
            add("")
        firstp = next((db for db in dbs if _get(r, "log", db, "audit_profile")), None)
        if firstp:
            pr = r["log"][firstp]["audit_profile"]
            add(
                f"### cProfile of the audit ({names[firstp]}, first {pr['entries']:,} entries, fed as audit_local feeds LogAuditor)"
            )
            add("")
            add(
                f"Profiled time {pr['profiled_seconds']:.1f} s (cProfile inflates Python-heavy code; use the "
                "step table above for proportions without profiler overhead)."
            )
            add("")
            add("| Function (by own time) | calls | own s | own % | own µs/entry | cumulative s |")
            add("|---|---|---|---|---|---|")
            for row in pr["top_tottime"]:
                add(
                    f"| `{row['function']}` | {row['calls']:,} | {row['tottime_s']:.2f} | {row['tottime_pct']:.1f} | "
                    f"{row['tottime_us_per_entry']:.1f} | {row['cumtime_s']:.2f} |"
                )
            add("")
            add("| Key function (cumulative) | calls | cumulative s | cumulative µs/entry |")
            add("|---|---|---|---|")
            for row in pr["key_cumtime"]:
                add(
                    f"| `{row['function']}` | {row['calls']:,} | {row['cumtime_s']:.2f} | {row['cumtime_s'] / pr['entries'] * 1e6:.1f} |"
                )
            add("")

    # probes
    if any(
        _get(r, "log", db, "replay_refusal") or _get(r, "log", db, "breakdown_at_scale")
        for db in dbs
    ):
        add("## 5. At full size")
        add("")
        for db in dbs:
            rr = _get(r, "log", db, "replay_refusal")
            if rr:
                add(
                    f"- {names[db]}: re-appending a statement already in the {rr['size']:,}-entry log was refused "
                    f"with `ReplayError` and left the log unchanged (asserted); the refusal took "
                    f"{rr['refusal_ms']:.1f} ms."
                )
        add("")
    if any(_get(r, "log", db, "breakdown_at_scale") for db in dbs):
        add("### Batched append breakdown on the full log (µs per entry)")
        add("")
        add(
            "The same measurement as in section 1, appended onto the big log after its audit, beside "
            "the fresh-database figures of section 1."
        )
        add("")
        lines.extend(_breakdown_table(r, dbs, names, "log", "on the full log"))
        add("")

    # merkle
    mk = r.get("merkle")
    if mk:
        add("## 6. The tree against pymerkle")
        add("")
        add(
            f"Same leaves for both ({mk['entry_bytes']}-byte entries), pymerkle `InmemoryTree()` with default "
            "settings (SHA-256 with RFC 6962 0x00/0x01 prefixes: the roots are asserted equal). Ours: "
            "`ledger.merkle.integrate` in batches of 1,000 keeping every node in a dict (a tree that can "
            "answer proofs, like pymerkle's), and `RootBuilder` (root only). Build times include hashing the leaves."
        )
        add("")
        add(
            "| Leaves | ours RootBuilder s | ours integrate s | pymerkle s | pymerkle ÷ ours (integrate) | identical inclusion paths |"
        )
        add("|---|---|---|---|---|---|")
        for size, s in mk["sizes"].items():
            add(
                f"| {int(size):,} | {s['ours_rootbuilder_s']:.2f} | {s['ours_integrate_s']:.2f} | "
                f"{s['pymerkle_build_s']:.2f} | {s['build_speedup_integrate_vs_pymerkle']:.1f}× | "
                f"{s['inclusion_paths_identical']:,}/{mk['queries']:,} |"
            )
        add("")
        add(f"Proofs: {mk['queries']:,} random queries per size, µs (in memory, no database):")
        add("")
        add(
            "| Leaves | Operation | ours p50 | ours p99 | pymerkle p50 | pymerkle p99 | pymerkle ÷ ours (mean) |"
        )
        add("|---|---|---|---|---|---|---|")
        for size, s in mk["sizes"].items():
            for op in (
                "inclusion_generate",
                "inclusion_verify",
                "consistency_generate",
                "consistency_verify",
            ):
                o, t = s["proof_us"][f"{op}_ours"], s["proof_us"][f"{op}_pymerkle"]
                add(
                    f"| {int(size):,} | {op.replace('_', ' ')} | {o['p50']:.1f} | {o['p99']:.1f} | "
                    f"{t['p50']:.1f} | {t['p99']:.1f} | {t['mean'] / o['mean']:.1f}× |"
                )
        add("")
    return "\n".join(lines) + "\n"


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render is not None:
        results = json.loads(args.render.read_text())
        args.render.with_suffix(".md").write_text(render_markdown(results))
        lb._print(f"rendered {args.render.with_suffix('.md')}")
        return 0
    raw_argv = sys.argv[1:] if argv is None else argv
    script = Path(__file__).resolve()
    try:
        script_shown = str(script.relative_to(Path.cwd()))
    except ValueError:
        script_shown = str(script)
    command = shlex.join(["python", script_shown, *raw_argv])
    default_run = (
        args.entries == DEFAULT_ENTRIES and args.selected == list(ALL) and args.db == "both"
    )
    tag = (
        args.tag
        if args.tag is not None
        else (
            ""
            if default_run
            else f"{'+'.join(args.selected) if args.selected != list(ALL) else 'all'}-{args.db}-n{args.entries}"
        )
    )
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="corpusx-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"meta": collect_meta(args, command), "append": {}, "log": {}}
    results["meta"]["parameters"]["selected"] = args.selected
    date = results["meta"]["date"]
    stem = f"ledger-{date}" + (f"-{tag}" if tag else "")
    args.out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = args.out / f"{stem}.json", args.out / f"{stem}.md"
    began = time.perf_counter()

    def save() -> None:
        results["meta"]["elapsed_s"] = time.perf_counter() - began
        results["meta"]["loadavg_end"] = list(lb.machine_info()["loadavg"])
        json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
        md_path.write_text(render_markdown(results))

    results["meta"]["phase_loadavg"] = []

    def mark(phase: str) -> None:
        results["meta"]["phase_loadavg"].append(
            {
                "phase": phase,
                "at_s": round(time.perf_counter() - began, 1),
                "loadavg": list(lb.machine_info()["loadavg"]),
            }
        )

    main_pid = os.getpid()

    def terminate(signum: int, _frame: Any) -> None:
        if os.getpid() != main_pid:  # a forked worker (e.g. multiprocessing.Pool.terminate)
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise SystemExit(f"stopped by signal {signum}")  # so that the databases are dropped

    previous_handler = signal.signal(signal.SIGTERM, terminate)
    status = 0
    try:
        if "append" in args.selected:
            results["verify_cost"] = lb.verify_cost(2000, lb.format_time(datetime.now(UTC)))
            for kind in args.dbs:
                mark(f"append {kind}")
                results["append"][kind] = run_append(kind, args, workdir, args.keep)
                save()
        if "build" in args.selected:
            mark("signing")
            lb._print(f"== signing {args.entries - 1:,} statements ({args.sign_procs} processes)")
            corpus = lb.make_corpus(args.entries, args.members, args.sign_procs)
            # The corpus is millions of long-lived objects: keep them out of the collector's way,
            # or every full collection during the measurements would walk them.
            gc.collect()
            gc.freeze()
            results["corpus"] = {
                "statements": len(corpus.registrations) + len(corpus.bench),
                "sign_seconds": corpus.sign_seconds,
            }
            for i, kind in enumerate(args.dbs):
                mark(f"log {kind}")
                results["log"][kind] = run_log(kind, corpus, args, workdir, args.keep, i == 0, save)
                save()
                gc.collect()
            del corpus
            gc.collect()
        if "merkle" in args.selected:
            mark("merkle")
            lb._print("== tree and proofs against pymerkle")
            sizes = sorted({min(100_000, args.entries), args.entries})
            results["merkle"] = lb.merkle_vs_pymerkle(sizes, args.merkle_queries)
    except BaseException as exc:
        results["error"] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
        status = 1
    finally:
        if not args.keep:
            if args.workdir is None:
                shutil.rmtree(workdir, ignore_errors=True)
            if "postgres" in args.dbs:  # only the databases this script creates
                ours = {
                    lb.DB_PREFIX + "append" + args.db_suffix,
                    lb.DB_PREFIX + "log" + args.db_suffix,
                }
                for name in set(lb.leftover_pg_databases()) & ours:
                    lb._pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        save()
        signal.signal(signal.SIGTERM, previous_handler)
        lb._print(
            f"results: {md_path.relative_to(ROOT) if md_path.is_relative_to(ROOT) else md_path} and .json "
            f"({results['meta']['elapsed_s']:.0f} s)"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
