"""The provenance-ledger benchmarks: appends, proofs, the full audit, and the tree against pymerkle.

Every function here measures one thing and returns a plain dict (JSON-ready); ``run.py`` decides
what to run and writes the results. Nothing here asserts on time: the only assertions are about
correctness (no gaps, no duplicate seq, roots that match), which must hold however slow the
machine is.

Timing rules, because the benchmark machine is small (2 cores) and shared:

* Statements are signed before any clock starts: signing happens on the member's machine.
* Anything compared with something else is measured in the same run, close together in time,
  and reported as a ratio beside the absolute numbers.
* Latencies are per operation with ``time.perf_counter`` (CLOCK_MONOTONIC, comparable across
  processes), reported as nearest-rank percentiles.
"""

from __future__ import annotations

import contextlib
import cProfile
import hashlib
import io
import json
import math
import multiprocessing as mp
import os
import pstats
import random
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine, and_, or_, text, tuple_
from sqlmodel import Session, col, select

from exchange.audit import audit_local
from exchange.db import make_engine, unit_of_work
from exchange.keys import raw_public_key
from exchange.logkey import load_log_key
from exchange.settings import Settings
from exchange.setup import initialise
from ledger.audit import LogAuditor, registration_body
from ledger.canonical import canonical_bytes, parse_json
from ledger.entry import (
    Entry,
    SignedStatement,
    Statement,
    b64decode,
    format_time,
    key_id_for,
    parse_time,
)
from ledger.merkle import (
    NodeID,
    RootBuilder,
    consistency_proof,
    frontier_root,
    inclusion_proof,
    integrate,
    leaf_hash,
    subtree_ids,
    tree_root,
    verify_consistency,
    verify_inclusion,
)
from ledger.note import Ed25519Signer
from ledger.sql import LedgerNodeRow, SqlLedger

PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
DB_PREFIX = "corpusx_bench_"
BENCH_TYPE = "attest.bench"
OPERATOR_ID = "bench-operator"
ORIGIN = "bench.corpusx.local/ledger"  # the log origin every statement is addressed to
AUDIT_BATCH = 2000  # exchange.audit.BATCH: the page size audit_local reads with

Log = Callable[[str], None]


def _print(message: str) -> None:
    print(message, flush=True)


# -- statistics ------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_stats(seconds: Sequence[float], *, unit: float = 1e3) -> dict[str, float]:
    """p50/p90/p99/max/mean of per-operation latencies, in ms by default (``unit=1e6``: µs)."""
    values = sorted(seconds)
    return {
        "n": len(values),
        "p50": percentile(values, 50) * unit,
        "p90": percentile(values, 90) * unit,
        "p99": percentile(values, 99) * unit,
        "max": (values[-1] if values else float("nan")) * unit,
        "mean": (sum(values) / len(values) if values else float("nan")) * unit,
    }


# -- databases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One database under test: ``kind`` is sqlite or postgres."""

    kind: str
    name: str
    url: str
    path: Path | None = None  # the SQLite file


def create_target(kind: str, name: str, workdir: Path) -> Target:
    """A fresh, empty database (an existing one of the same name is dropped first)."""
    full = DB_PREFIX + name
    if kind == "sqlite":
        path = workdir / f"{full}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return Target(kind, full, f"sqlite:///{path}", path)
    if kind == "postgres":
        _pg_admin(f'DROP DATABASE IF EXISTS "{full}" WITH (FORCE)')
        _pg_admin(f'CREATE DATABASE "{full}"')
        return Target(kind, full, PG_URL.format(name=full))
    raise ValueError(f"unknown database kind {kind!r}")


def drop_target(target: Target) -> None:
    if target.kind == "postgres":
        _pg_admin(f'DROP DATABASE IF EXISTS "{target.name}" WITH (FORCE)')
    elif target.path is not None:
        for suffix in ("", "-wal", "-shm"):
            Path(str(target.path) + suffix).unlink(missing_ok=True)


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as connection:
        connection.execute(sql)  # type: ignore[arg-type]


def leftover_pg_databases() -> list[str]:
    import psycopg

    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (DB_PREFIX + "%",)
        ).fetchall()
    return [row[0] for row in rows]


def database_bytes(target: Target) -> int:
    if target.kind == "sqlite" and target.path is not None:
        return sum(
            Path(str(target.path) + s).stat().st_size
            for s in ("", "-wal")
            if Path(str(target.path) + s).exists()
        )
    engine = make_engine(target.url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
            )
    finally:
        engine.dispose()


# -- statements ------------------------------------------------------------------------------


def derived_key(label: str) -> Ed25519PrivateKey:
    """A deterministic key, so parallel signers agree on members' keys without passing them."""
    return Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(b"corpusx-bench/" + label.encode()).digest()
    )


def member_id(i: int) -> str:
    return f"bench-m{i:03d}"


def bench_statement(member: str, key_id: str, nonce: str, n: int, when: str) -> Statement:
    """A realistic small ``attest.bench`` statement (about 250 signing bytes, 470 entry bytes)."""
    return Statement(
        type=BENCH_TYPE,
        body={
            "subject": hashlib.sha256(n.to_bytes(8, "big")).hexdigest(),
            "n": n,
            "note": "benchmark",
        },
        member=member,
        key_id=key_id,
        nonce=nonce,
        time=when,
        log=ORIGIN,
    )


def sign(statement: Statement, key: Ed25519PrivateKey) -> tuple[SignedStatement, bytes]:
    """Exactly ``ledger.entry.sign_statement``, also returning the signed bytes (for the raw rate)."""
    message = statement.signing_bytes()
    return SignedStatement(statement, key.sign(message)), message


def sign_random_member(
    member: str, count: int, nonce_prefix: str, when: str
) -> list[SignedStatement]:
    """``count`` statements of one fresh random key (append throughput does not check keys)."""
    key = Ed25519PrivateKey.generate()
    kid = key_id_for(raw_public_key(key))
    return [
        sign(bench_statement(member, kid, f"{nonce_prefix}{i:016d}", i, when), key)[0]
        for i in range(count)
    ]


# -- append throughput -----------------------------------------------------------------------


def append_loop(engine: Engine, statements: Sequence[SignedStatement], batch: int) -> list[float]:
    """Append in transactions of ``batch`` statements; returns each transaction's latency."""
    latencies: list[float] = []
    clock = time.perf_counter
    for start in range(0, len(statements), batch):
        chunk = statements[start : start + batch]
        began = clock()
        with unit_of_work(engine) as session:
            if batch == 1:
                SqlLedger(session).append(chunk[0])
            else:
                SqlLedger(session).append_many(chunk)
        latencies.append(clock() - began)
    return latencies


def _append_worker(
    url: str,
    worker: int,
    phase: str,
    count: int,
    batch: int,
    when: str,
    barrier: Any,
    results: Any,
) -> None:
    """One of the concurrent appenders: sign first, wait for the others, then append."""
    outcome: dict[str, Any] = {"worker": worker}
    engine = None
    try:
        engine = make_engine(url)
        statements = sign_random_member(
            f"bench-w{worker}-{phase[0]}", count, f"{phase[0]}{worker}-", when
        )
        with engine.connect():  # open the pooled connection before the clock starts
            pass
        barrier.wait(timeout=600)
        began = time.perf_counter()
        latencies = append_loop(engine, statements, batch)
        outcome.update(start=began, end=time.perf_counter(), latencies=latencies, count=count)
    except Exception as exc:  # reported, and the run fails its correctness check
        outcome["error"] = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            barrier.abort()
    finally:
        if engine is not None:
            engine.dispose()
        results.put(outcome)


def concurrent_appends(
    url: str, procs: int, phase: str, count: int, batch: int, when: str
) -> dict[str, Any]:
    """``procs`` processes append at once; throughput is entries / (last end - first start)."""
    context = mp.get_context("fork")
    barrier = context.Barrier(procs)
    results = context.Queue()
    workers = [
        context.Process(
            target=_append_worker, args=(url, w, phase, count, batch, when, barrier, results)
        )
        for w in range(procs)
    ]
    for process in workers:
        process.start()
    outcomes = [results.get(timeout=3600) for _ in workers]
    for process in workers:
        process.join()
    errors = [o["error"] for o in outcomes if "error" in o]
    if errors:
        raise RuntimeError(f"concurrent {phase} appends failed: {errors}")
    start = min(o["start"] for o in outcomes)
    end = max(o["end"] for o in outcomes)
    latencies = [lat for o in outcomes for lat in o["latencies"]]
    total = procs * count
    return {
        "processes": procs,
        "entries": total,
        "batch": batch,
        "transactions": len(latencies),
        "seconds": end - start,
        "entries_per_s": total / (end - start),
        "txn_latency_ms": latency_stats(latencies),
        "per_process_entries_per_s": [o["count"] / (o["end"] - o["start"]) for o in outcomes],
    }


def single_appends(url: str, count: int, batch: int, when: str) -> dict[str, Any]:
    statements = sign_random_member(
        f"bench-s-{'b' if batch > 1 else 'u'}", count, f"s{batch}-", when
    )
    engine = make_engine(url)
    try:
        with engine.connect():
            pass
        began = time.perf_counter()
        latencies = append_loop(engine, statements, batch)
        seconds = time.perf_counter() - began
    finally:
        engine.dispose()
    return {
        "processes": 1,
        "entries": count,
        "batch": batch,
        "transactions": len(latencies),
        "seconds": seconds,
        "entries_per_s": count / seconds,
        "txn_latency_ms": latency_stats(latencies),
    }


def check_log_integrity(engine: Engine) -> dict[str, Any]:
    """No gaps, no duplicate seq, prev chain intact, stored leaves and root match the entries.

    Raises AssertionError on any violation: this is a correctness check, never a timing one.
    """
    with Session(engine) as session:
        ledger = SqlLedger(session)
        head = ledger.head()
        connection = session.connection()
        count, low, high = connection.execute(
            text("SELECT count(*), min(seq), max(seq) FROM ledger_entry")
        ).one()
        duplicates = connection.execute(
            text("SELECT seq FROM ledger_entry GROUP BY seq HAVING count(*) > 1 LIMIT 5")
        ).all()
        hashes: list[bytes] = []
        previous = "0" * 64
        chain_ok = True
        expected_seq = 0
        last = -1
        while True:
            rows = ledger.entries_after(last, 5000)
            if not rows:
                break
            for seq, data in rows:
                assert seq == expected_seq, f"gap: expected seq {expected_seq}, found {seq}"
                prev = json.loads(data)["prev"]
                chain_ok &= prev == previous
                h = leaf_hash(data)
                previous = h.hex()
                hashes.append(h)
                expected_seq += 1
                last = seq
        stored = [h for _, h in ledger.leaf_hashes(0, head.size)]
    root = tree_root(hashes)
    result = {
        "entries": int(count),
        "min_seq": low,
        "max_seq": high,
        "head_size": head.size,
        "no_gaps": count == head.size and (count == 0 or (low == 0 and high == count - 1)),
        "no_duplicate_seq": not duplicates,
        "prev_chain_ok": chain_ok,
        "stored_leaves_match": stored == hashes,
        "root_matches_tree_root": root == head.root,
        "root": head.root.hex(),
    }
    for check in (
        "no_gaps",
        "no_duplicate_seq",
        "prev_chain_ok",
        "stored_leaves_match",
        "root_matches_tree_root",
    ):
        assert result[check], f"log integrity check failed: {check}: {result}"
    return result


def verify_cost(samples: int, when: str) -> dict[str, Any]:
    """What the server spends per statement before appending it, in µs: parsing the signed
    statement from the request's JSON, then ``SignedStatement.verify`` (what
    ``exchange.statements.check_statement`` runs), split into its parts. Every part is timed on
    freshly parsed objects, as a request would have them (``Statement.canonical`` is cached per
    object, so a reused object would hide its cost)."""
    key = Ed25519PrivateKey.generate()
    public = raw_public_key(key)
    kid = key_id_for(raw_public_key(key))
    wire = [
        sign(bench_statement("bench-verify", kid, f"v-{i:014d}", i, when), key)[0].to_json()
        for i in range(samples)
    ]

    def fresh() -> list[SignedStatement]:
        return [SignedStatement.from_json(w) for w in wire]

    loaded = Ed25519PublicKey.from_public_bytes(public)
    clock = time.perf_counter

    def per_item(fn: Callable[[int], object]) -> float:
        began = clock()
        for i in range(samples):
            fn(i)
        return (clock() - began) / samples * 1e6

    parse_us = per_item(lambda i: SignedStatement.from_json(wire[i]))
    a = fresh()
    verify_us = per_item(lambda i: a[i].verify(public))
    b = fresh()
    canonical_us = per_item(lambda i: b[i].statement.signing_bytes())
    messages = [s.statement.signing_bytes() for s in b]
    return {
        "samples": samples,
        "parse_signed_statement_us": parse_us,
        "signed_statement_verify_us": verify_us,
        "signing_bytes_us": canonical_us,
        "load_public_key_us": per_item(lambda i: Ed25519PublicKey.from_public_bytes(public)),
        "raw_ed25519_verify_us": per_item(lambda i: loaded.verify(b[i].signature, messages[i])),
        "client_sign_us": per_item(lambda i: key.sign(messages[i])),
    }


class _TimedLedger(SqlLedger):
    """SqlLedger that times its own helper steps (whatever ``append_many`` does in between is
    reported as the rest), so the breakdown follows the shipped code instead of copying it."""

    def __init__(self, session: Session, timings: dict[str, float]) -> None:
        super().__init__(session)
        self._timings = timings

    def _timed(self, name: str, method: str, *args: Any) -> Any:
        began = time.perf_counter()
        try:
            return getattr(super(), method)(*args)
        finally:
            self._timings[name] += time.perf_counter() - began

    def _lock_head(self) -> Any:
        return self._timed("BEGIN + lock the head row", "_lock_head")

    def _refuse_replays(self, statements: Any) -> Any:
        return self._timed("_refuse_replays", "_refuse_replays", statements)

    def _insert_rows(self, entries: Any, nodes: Any) -> Any:
        return self._timed("_insert_rows (entries + nodes)", "_insert_rows", entries, nodes)


def append_breakdown(url: str, batch: int, batches: int, when: str) -> dict[str, Any]:
    """Where a batched append's time goes: ``append_many``'s own helpers timed from a subclass,
    the rest of ``append_many`` (entry bytes, leaf hashes, integrate, head update + flush), and
    COMMIT; plus ``Entry.build`` alone, timed on the same statements outside any transaction."""
    statements = sign_random_member("bench-breakdown", batch * batches, "bd-", when)
    engine = make_engine(url)
    timings: dict[str, float] = defaultdict(float)
    clock = time.perf_counter
    total = 0.0
    try:
        for b in range(batches):
            chunk = statements[b * batch : (b + 1) * batch]
            before = sum(timings.values())
            began = clock()
            with Session(engine, expire_on_commit=False) as session:
                _TimedLedger(session, timings).append_many(chunk)
                flushed = clock()
                session.commit()
                committed = clock()
            timings["rest of append_many (entry bytes, integrate, head UPDATE + flush)"] += (
                flushed - began - (sum(timings.values()) - before)
            )
            timings["COMMIT"] += committed - flushed
            total += committed - began
    finally:
        engine.dispose()
    n = batch * batches
    build_began = clock()
    prev: bytes | None = None
    for i, signed in enumerate(statements):
        prev = Entry.build(seq=i, time=when, prev=prev, signed=signed).leaf_hash()
    build_us = (clock() - build_began) / n * 1e6
    order = [
        "BEGIN + lock the head row",
        "_refuse_replays",
        "rest of append_many (entry bytes, integrate, head UPDATE + flush)",
        "_insert_rows (entries + nodes)",
        "COMMIT",
    ]
    return {
        "batch": batch,
        "batches": batches,
        "us_per_entry": {k: timings[k] / n * 1e6 for k in order if k in timings},
        "total_us_per_entry": total / n * 1e6,
        "entries_per_s": n / total,
        "entry_build_plus_leaf_hash_us": build_us,
    }


# -- the 1M-entry log ------------------------------------------------------------------------


@dataclass
class Corpus:
    """Everything signed before the log is built: reused for every database in the run."""

    when: str
    operator_key: Ed25519PrivateKey
    members: int
    registrations: list[tuple[SignedStatement, bytes]]
    bench: list[tuple[SignedStatement, bytes]]
    sign_seconds: float = 0.0

    def member_public(self, i: int) -> bytes:
        return raw_public_key(derived_key(member_id(i)))


_KEY_CACHE: dict[int, tuple[Ed25519PrivateKey, str]] = {}


def _member_key(i: int) -> tuple[Ed25519PrivateKey, str]:
    if i not in _KEY_CACHE:
        key = derived_key(member_id(i))
        _KEY_CACHE[i] = (key, key_id_for(raw_public_key(key)))
    return _KEY_CACHE[i]


def _sign_bench_range(job: tuple[int, int, int, str]) -> list[tuple[SignedStatement, bytes]]:
    start, end, members, when = job
    out = []
    for n in range(start, end):
        m = n % members
        key, kid = _member_key(m)
        out.append(sign(bench_statement(member_id(m), kid, f"bench-{n:012d}", n, when), key))
    return out


def make_corpus(entries: int, members: int, processes: int, log: Log = _print) -> Corpus:
    """Sign the registrations and ``entries - 1 - members`` bench statements (in parallel)."""
    when = format_time(datetime.now(UTC))
    operator_key = derived_key("operator")
    op_kid = key_id_for(raw_public_key(operator_key))
    began = time.perf_counter()
    registrations = []
    for i in range(members):
        public = raw_public_key(derived_key(member_id(i)))
        body = registration_body(
            member_id(i), public, name=f"Benchmark member {i}", roles=["provider"]
        )
        statement = Statement(
            type="member.registered",
            body=body,
            member=OPERATOR_ID,
            key_id=op_kid,
            nonce=f"reg-{i:013d}",
            time=when,
            log=ORIGIN,
        )
        registrations.append(sign(statement, operator_key))
    count = max(0, entries - 1 - members)
    step = 20_000
    jobs = [(s, min(s + step, count), members, when) for s in range(0, count, step)]
    bench: list[tuple[SignedStatement, bytes]] = []
    pool = mp.get_context("fork").Pool(processes)
    try:
        for part in pool.imap(_sign_bench_range, jobs):
            bench.extend(part)
            if len(bench) % 200_000 < step:
                log(
                    f"  signed {len(bench):,}/{count:,} statements ({time.perf_counter() - began:.0f} s)"
                )
        pool.close()  # let the workers finish on their own rather than terminate() them
        pool.join()
    except BaseException:
        pool.terminate()
        raise
    return Corpus(when, operator_key, members, registrations, bench, time.perf_counter() - began)


@dataclass
class BuiltLog:
    target: Target
    data_dir: Path
    signer: Ed25519Signer
    size: int = 0
    leaf_hashes: list[bytes] = field(default_factory=list)
    entry_data: list[bytes] = field(default_factory=list)
    genesis_message: bytes = b""
    genesis_signature: bytes = b""
    genesis_public: bytes = b""
    report: dict[str, Any] = field(default_factory=dict)


def build_log(
    target: Target, corpus: Corpus, workdir: Path, batch: int, log: Log = _print
) -> BuiltLog:
    """A valid log: genesis by exchange.setup.initialise, member registrations, then bench entries."""
    data_dir = workdir / f"{target.name}-data"
    settings = Settings(
        data_dir=data_dir,
        database_url="" if target.kind == "sqlite" else target.url,
        log_origin=ORIGIN,
    )
    if target.kind == "sqlite":
        # initialise puts the SQLite database in the data dir: point the target there.
        target = Target(
            "sqlite", target.name, settings.resolved_database_url, data_dir / "exchange.db"
        )
    began = time.perf_counter()
    initialise(
        settings,
        operator=OPERATOR_ID,
        operator_name="Benchmark operator",
        operator_key=corpus.operator_key,
    )
    signer = load_log_key(settings.resolved_log_key_file, settings.log_origin)
    built = BuiltLog(target, data_dir, signer)
    engine = make_engine(target.url)
    segments: list[dict[str, Any]] = []
    try:
        with Session(engine) as session:
            genesis = Entry.from_bytes(SqlLedger(session).entry_data(0))
        built.genesis_message = genesis.statement.signing_bytes()
        built.genesis_signature = genesis.signed.signature
        built.genesis_public = raw_public_key(corpus.operator_key)
        built.leaf_hashes.append(leaf_hash(genesis.canonical()))
        built.entry_data.append(genesis.canonical())
        statements = [s for s, _ in corpus.registrations] + [s for s, _ in corpus.bench]
        append_began = time.perf_counter()
        segment_began, segment_start = append_began, 1
        report_every = max(batch, min(100_000, (len(statements) // 10) // batch * batch or batch))
        next_report = report_every
        for start in range(0, len(statements), batch):
            with unit_of_work(engine) as session:
                entries = SqlLedger(session).append_many(statements[start : start + batch])
            for entry in entries:
                built.leaf_hashes.append(entry.leaf_hash())
                built.entry_data.append(entry.data)
            size = 1 + start + len(entries)
            if size >= next_report or size == len(statements) + 1:
                next_report += report_every
                now = time.perf_counter()
                rate = (size - segment_start) / (now - segment_began)
                segments.append({"up_to": size, "entries_per_s": rate})
                log(
                    f"  [{target.kind}] built {size:,}/{len(statements) + 1:,} entries, "
                    f"{now - append_began:.0f} s, last segment {rate:,.0f} entries/s"
                )
                segment_began, segment_start = now, size
        append_seconds = time.perf_counter() - append_began
        with unit_of_work(engine) as session:
            checkpoint = SqlLedger(session).issue_checkpoint(signer)
        built.size = checkpoint.size
    finally:
        engine.dispose()
    built.report = {
        "entries": built.size,
        "members": corpus.members,
        "batch": batch,
        "append_seconds": append_seconds,
        "entries_per_s": (built.size - 1) / append_seconds,
        "total_seconds_incl_initialise_and_checkpoint": time.perf_counter() - began,
        "segments": segments,
        "database_bytes": database_bytes(target),
        "mean_entry_bytes": sum(map(len, built.entry_data)) / len(built.entry_data),
    }
    return built


# -- proofs ----------------------------------------------------------------------------------


_NODE_SQL: dict[int, Any] = {}


def lean_node_statement(ids: Sequence[NodeID]) -> tuple[Any, dict[str, int]]:
    """The suggested node query: ``(level = :l0 AND idx = :i0) OR ...``, one text statement per
    node count, built once and cached (proofs need at most ~2·log2(n) nodes, so a few dozen).

    Both engines answer it from the primary key (SQLite: MULTI-INDEX OR; PostgreSQL: BitmapOr),
    and SQLAlchemy does not rebuild an expression tree per request.
    """
    statement = _NODE_SQL.get(len(ids))
    if statement is None:
        where = " OR ".join(f"(level = :l{i} AND idx = :i{i})" for i in range(len(ids)))
        statement = _NODE_SQL[len(ids)] = text(
            f"SELECT level, idx, hash FROM ledger_node WHERE {where}"
        )
    params: dict[str, int] = {}
    for i, node in enumerate(ids):
        params[f"l{i}"] = node.level
        params[f"i{i}"] = node.index
    return statement, params


class FixedReadLedger(SqlLedger):
    """SqlLedger with the node query this benchmark suggests (``lean_node_statement``).

    Not the shipped code: it exists so the run can show, side by side, what the suggested fix to
    ``SqlLedger.read_nodes`` buys (see the README's findings).
    """

    def read_nodes(self, ids: Sequence[NodeID]) -> list[bytes]:
        if not ids:
            return []
        statement, params = lean_node_statement(ids)
        rows = self.session.connection().execute(statement, params).all()
        found = {NodeID(level, idx): bytes(value) for level, idx, value in rows}
        return [found[node] for node in ids]


def shipped_node_query(ids: Sequence[NodeID]) -> Any:
    return select(LedgerNodeRow.level, LedgerNodeRow.idx, LedgerNodeRow.hash).where(
        tuple_(col(LedgerNodeRow.level), col(LedgerNodeRow.idx)).in_(
            [(n.level, n.index) for n in ids]
        )
    )


def query_plan(engine: Engine, statement: Any) -> list[str]:
    """EXPLAIN (QUERY PLAN) of a statement with its parameters inlined."""
    sql = str(statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as connection:
        rows = connection.execute(text(prefix + sql)).all()
    if engine.dialect.name == "sqlite":
        return [str(row[-1]) for row in rows]
    return [str(row[0]) for row in rows]


def root_at(ledger: SqlLedger, size: int) -> bytes:
    return frontier_root(ledger.read_nodes(subtree_ids(0, size)))


def proof_latency(
    built: BuiltLog, *, queries: int, budget: float, seed: int = 1, log: Log = _print
) -> dict[str, Any]:
    """Inclusion and consistency proofs, one Session (one pooled connection, one transaction) per
    query as a request would use, including the head read and the node query; every proof is then
    verified (outside the clock) against the root. As shipped and with the suggested node query.
    """
    engine = make_engine(built.target.url)
    size = built.size
    results: dict[str, Any] = {"size": size, "queries_requested": queries, "budget_s": budget}
    try:
        # (never two connections at once here: on SQLite every transaction, reads included, is
        # BEGIN IMMEDIATE, so a second one would wait for the first to finish)
        with Session(engine) as session:
            root = SqlLedger(session).head().root
        sample_ids = [n for g in _inclusion_ids(size // 3, size) for n in g]
        results["plan_nodes_shipped"] = query_plan(engine, shipped_node_query(sample_ids))
        statement, params = lean_node_statement(sample_ids)
        results["plan_nodes_fixed"] = query_plan(engine, statement.bindparams(**params))
        rng = random.Random(seed)
        inclusion_args = [rng.randrange(size) for _ in range(queries)]
        consistency_args = []
        for _ in range(queries):
            a, b = sorted(rng.sample(range(1, size + 1), 2))
            consistency_args.append((a, b))
        variants = (("shipped", SqlLedger), ("fixed", FixedReadLedger))
        clock = time.perf_counter

        def one(cls: type[SqlLedger], kind: str, i: int) -> list[bytes]:
            with Session(engine) as session:
                if kind == "inclusion":
                    return cls(session).inclusion_proof(inclusion_args[i], size)
                return cls(session).consistency_proof(*consistency_args[i])

        for kind in ("inclusion", "consistency"):
            # The variants alternate query by query (same query, back to back), so both see the
            # same moment of a noisy machine; a variant stops when its own time exceeds the budget.
            latencies: dict[str, list[float]] = {name: [] for name, _ in variants}
            spent = dict.fromkeys(latencies, 0.0)
            for _name, cls in variants:  # warm-up, not counted: pool, statement caches
                for i in range(min(3, queries)):
                    one(cls, kind, i)
            for i in range(queries):
                active = [(name, cls) for name, cls in variants if spent[name] < budget]
                if not active:
                    break
                if i % 2:
                    active.reverse()
                for name, cls in active:
                    began = clock()
                    proof = one(cls, kind, i)
                    elapsed = clock() - began
                    latencies[name].append(elapsed)
                    spent[name] += elapsed
                    if kind == "inclusion":
                        index = inclusion_args[i]
                        verify_inclusion(
                            leaf_hash=built.leaf_hashes[index],
                            index=index,
                            size=size,
                            proof=proof,
                            root=root,
                        )
                    else:
                        a, b = consistency_args[i]
                        with Session(engine) as session:
                            reader = FixedReadLedger(session)
                            root1, root2 = root_at(reader, a), root_at(reader, b)
                        verify_consistency(size1=a, size2=b, proof=proof, root1=root1, root2=root2)
            for name, _ in variants:
                stats: dict[str, Any] = dict(latency_stats(latencies[name]))
                stats["verified"] = len(latencies[name])
                stats["stopped_by_budget"] = len(latencies[name]) < queries
                results[f"{kind}_{name}"] = stats
                log(
                    f"  [{built.target.kind}] {kind} proofs ({name} query): n={stats['n']}, "
                    f"p50 {stats['p50']:.3f} ms, p99 {stats['p99']:.3f} ms"
                )
    finally:
        engine.dispose()
    return results


def proof_anatomy(built: BuiltLog, *, queries: int, budget: float, seed: int = 2) -> dict[str, Any]:
    """Where an inclusion proof's latency goes: the same random leaf through progressively less
    machinery around the SQL read, down to the pure computation. The variants run one after the
    other for each query (rotating which goes first), so they share the machine's noise."""
    from ledger.merkle import inclusion_proof_ids

    engine = make_engine(built.target.url)
    size = built.size
    rng = random.Random(seed)
    indexes = [rng.randrange(size) for _ in range(queries)]
    clock = time.perf_counter

    def flat_ids(index: int) -> list[NodeID]:
        return [n for group in inclusion_proof_ids(index, size) for n in group]

    with Session(engine) as session:
        root = SqlLedger(session).head().root
    reused = Session(engine)
    connection = engine.connect()
    raw = engine.raw_connection()
    if engine.dialect.name == "postgresql":
        raw.driver_connection.autocommit = True  # type: ignore[union-attr]
    cursor = raw.cursor()
    mark = "?" if engine.dialect.name == "sqlite" else "%s"
    proofs: dict[int, list[bytes]] = {}

    def request(index: int) -> None:
        with Session(engine) as s:
            FixedReadLedger(s).inclusion_proof(index, size)

    def head_only(index: int) -> None:
        with Session(engine) as s:
            SqlLedger(s).head()

    def session_reused(index: int) -> None:
        FixedReadLedger(reused).inclusion_proof(index, size)
        reused.rollback()

    def core_text(index: int) -> None:
        with connection.begin():
            connection.execute(*lean_node_statement(flat_ids(index))).all()

    def core_expression(index: int) -> None:
        with connection.begin():
            connection.execute(
                select(LedgerNodeRow.level, LedgerNodeRow.idx, LedgerNodeRow.hash).where(
                    _fixed_condition(flat_ids(index))
                )
            ).all()

    def dbapi(index: int) -> None:
        ids = flat_ids(index)
        sql = "SELECT level, idx, hash FROM ledger_node WHERE " + " OR ".join(
            [f"(level = {mark} AND idx = {mark})"] * len(ids)
        )
        cursor.execute(sql, [x for n in ids for x in (n.level, n.index)])
        found = {(level, idx): value for level, idx, value in cursor.fetchall()}
        proofs[index] = [bytes(found[(n.level, n.index)]) for n in ids]

    def compute(index: int) -> None:
        if index not in proofs:
            dbapi(index)  # (only during warm-up ordering; the timed runs always follow dbapi)
        groups = inclusion_proof_ids(index, size)
        hashes = iter(proofs[index])
        proof = [
            next(hashes) if len(g) == 1 else frontier_root([next(hashes) for _ in g])
            for g in groups
        ]
        verify_inclusion(
            leaf_hash=built.leaf_hashes[index], index=index, size=size, proof=proof, root=root
        )

    variants: list[tuple[str, Callable[[int], None]]] = [
        ("request: Session per query, head + nodes (= *fixed* above)", request),
        ("Session per query, head() only (what _check_size reads)", head_only),
        ("one Session kept, head + nodes, rollback per query", session_reused),
        (
            "one Core connection kept, BEGIN + node query + ROLLBACK (cached text statement)",
            core_text,
        ),
        (
            "one Core connection kept, BEGIN + node query + ROLLBACK (or_/and_ expression per query)",
            core_expression,
        ),
        ("DBAPI cursor, node query only, autocommit (one round trip)", dbapi),
        ("no I/O: proof ids + fold + verify", compute),
    ]
    latencies: dict[str, list[float]] = {name: [] for name, _ in variants}
    try:
        for index in indexes[:3]:
            for _, fn in variants:
                fn(index)
        deadline = clock() + budget * 2
        for i, index in enumerate(indexes):
            if clock() > deadline:
                break
            shift = i % (len(variants) - 1)
            order = variants[:-1][shift:] + variants[:-1][:shift] + variants[-1:]  # compute last
            for name, fn in order:
                began = clock()
                fn(index)
                latencies[name].append(clock() - began)
    finally:
        cursor.close()
        raw.close()
        connection.close()
        reused.close()
        engine.dispose()
    return {name: latency_stats(values) for name, values in latencies.items()}


def _inclusion_ids(index: int, size: int) -> list[list[NodeID]]:
    from ledger.merkle import inclusion_proof_ids

    return inclusion_proof_ids(index, size)


def _fixed_condition(ids: Sequence[NodeID]) -> Any:
    by_level: dict[int, list[int]] = defaultdict(list)
    for node in ids:
        by_level[node.level].append(node.index)
    return or_(
        *(
            and_(LedgerNodeRow.level == lv, col(LedgerNodeRow.idx).in_(ix))
            for lv, ix in by_level.items()
        )
    )


# -- the full audit --------------------------------------------------------------------------


def _raw_items(
    built: BuiltLog, corpus: Corpus
) -> list[tuple[Ed25519PublicKey, bytes, bytes, bytes]]:
    """(public key, signed bytes, signature, entry bytes) for every entry of the log, in order."""
    operator = Ed25519PublicKey.from_public_bytes(raw_public_key(corpus.operator_key))
    members = [
        Ed25519PublicKey.from_public_bytes(corpus.member_public(i)) for i in range(corpus.members)
    ]
    items = [(operator, built.genesis_message, built.genesis_signature, built.entry_data[0])]
    for i, (signed, message) in enumerate(corpus.registrations):
        items.append((operator, message, signed.signature, built.entry_data[1 + i]))
    base = 1 + len(corpus.registrations)
    for n, (signed, message) in enumerate(corpus.bench[: built.size - base]):
        items.append(
            (members[n % corpus.members], message, signed.signature, built.entry_data[base + n])
        )
    return items


def raw_rate_seconds(items: Sequence[tuple[Ed25519PublicKey, bytes, bytes, bytes]]) -> float:
    """The machine's floor for an audit: one Ed25519 verify and one SHA-256 per entry, nothing else.

    Same library (OpenSSL through ``cryptography``), same messages, same signatures, same entry
    sizes as the audit; keys already loaded.
    """
    sha256 = hashlib.sha256
    began = time.perf_counter()
    for public, message, signature, data in items:
        public.verify(signature, message)
        sha256(data).digest()
    return time.perf_counter() - began


def audit_rate(built: BuiltLog, corpus: Corpus, log: Log = _print) -> dict[str, Any]:
    """``exchange.audit.audit_local`` over the whole log, bracketed by the raw rate.

    The raw floor is measured over the same N messages, half just before and half just after the
    audit, so that drift on a shared machine affects both sides alike.
    """
    items = _raw_items(built, corpus)
    assert len(items) == built.size, (len(items), built.size)
    half = len(items) // 2
    log(f"  [{built.target.kind}] raw Ed25519 verify + SHA-256, first half ({half:,})")
    raw_before = raw_rate_seconds(items[:half])
    engine = make_engine(built.target.url)
    state_dir = built.data_dir / f"audit-state-{time.time_ns()}"

    shown: set[int] = set()

    def progress(done: int, total: int) -> None:
        if (done % 100_000 == 0 or done == total) and done not in shown:
            shown.add(done)
            log(f"  [{built.target.kind}] audit_local {done:,}/{total:,}")

    try:
        began = time.perf_counter()
        report = audit_local(engine, built.signer.verifier, state_dir=state_dir, progress=progress)
        audit_seconds = time.perf_counter() - began
    finally:
        engine.dispose()
    log(
        f"  [{built.target.kind}] raw Ed25519 verify + SHA-256, second half ({len(items) - half:,})"
    )
    raw_after = raw_rate_seconds(items[half:])
    raw_seconds = raw_before + raw_after
    assert report.size == built.size
    return {
        "entries": report.size,
        "audit_seconds": audit_seconds,
        "audit_entries_per_s": report.size / audit_seconds,
        "raw_seconds": raw_seconds,
        "raw_entries_per_s": len(items) / raw_seconds,
        "raw_first_half_per_s": half / raw_before,
        "raw_second_half_per_s": (len(items) - half) / raw_after,
        "ratio_audit_to_raw": (report.size / audit_seconds) / (len(items) / raw_seconds),
        "root": report.root,
    }


def _audit_entries(engine: Engine, limit: int) -> Iterator[tuple[bytes, bytes | None]]:
    """audit_local's reading loop (entries_after + leaf_hashes in pages of 2000), for ``limit``."""
    with Session(engine) as session:
        ledger = SqlLedger(session)
        position, last_seq = 0, -1
        while position < limit:
            rows = ledger.entries_after(last_seq, min(AUDIT_BATCH, limit - position))
            if not rows:
                return
            stored = dict(ledger.leaf_hashes(position, position + len(rows)))
            for seq, data in rows:
                yield data, stored.get(position)
                position, last_seq = position + 1, seq


def audit_profile(built: BuiltLog, entries: int, top: int = 18) -> dict[str, Any]:
    """cProfile of LogAuditor fed exactly as audit_local feeds it, over the first ``entries``."""
    engine = make_engine(built.target.url)
    profiler = cProfile.Profile()
    try:
        auditor = LogAuditor(
            log_public_key=built.signer.verifier.public_key, origin=built.signer.name
        )
        profiler.enable()
        for data, stored in _audit_entries(engine, entries):
            auditor.feed(data, stored_leaf_hash=stored)
        profiler.disable()
    finally:
        engine.dispose()
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (filename, line, name), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{_short(filename)}:{line}({name})",
                "calls": nc,
                "tottime_s": tt,
                "cumtime_s": ct,
                "tottime_pct": 100 * tt / total,
                "tottime_us_per_entry": tt / entries * 1e6,
            }
        )
    by_tottime = sorted(rows, key=lambda r: r["tottime_s"], reverse=True)[:top]
    interesting = (
        "signing_bytes",
        "canonical_bytes",
        "from_bytes",
        "parse_json",
        "verify_signature",
        "parse_time",
        "leaf_hash",
        "append",
        "entries_after",
        "leaf_hashes",
        "_check_actor",
    )
    by_cumtime = sorted(
        (r for r in rows if any(f"({name})" in r["function"] for name in interesting)),
        key=lambda r: r["cumtime_s"],
        reverse=True,
    )[:top]
    text_out = io.StringIO()
    pstats.Stats(profiler, stream=text_out).sort_stats("tottime").print_stats(top)
    return {
        "entries": entries,
        "profiled_seconds": total,
        "top_tottime": by_tottime,
        "key_cumtime": by_cumtime,
        "pstats_text": text_out.getvalue(),
    }


def _short(filename: str) -> str:
    for marker in ("/site-packages/", "/work/main/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


_ENVELOPE_HEAD = re.compile(
    rb'\{"prev":"[0-9a-f]{64}","seq":(?:0|[1-9][0-9]*),"signature":"[A-Za-z0-9+/]{86}==","statement":'
)
_ENVELOPE_TAIL = re.compile(rb',"time":"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"\}\Z')
_TAIL_LENGTH = 35


def slice_statement(data: bytes) -> bytes | None:
    """The suggested shortcut: the statement's signed bytes cut out of the entry's bytes.

    ``Entry.build`` splices ``Statement.canonical`` between a fixed head and tail; when the
    entry matches that layout, the bytes between are exactly what the member signed, so the
    auditor can verify the signature over them instead of re-serialising the parsed statement.
    """
    head = _ENVELOPE_HEAD.match(data)
    if head is None or _ENVELOPE_TAIL.match(data, len(data) - _TAIL_LENGTH) is None:
        return None
    return data[head.end() : len(data) - _TAIL_LENGTH]


def audit_breakdown(
    built: BuiltLog, corpus: Corpus, samples: int, rounds: int = 5
) -> dict[str, Any]:
    """µs per entry of each step ``LogAuditor.feed`` takes, on ``samples`` bench entries, beside
    the suggested shortcuts (checked to give the same bytes as what they replace).

    The samples are split into ``rounds`` consecutive slices; every step runs over every slice,
    steps taking turns slice by slice, and the figure is the median over slices, so a burst of
    load on the shared machine lands in one slice of every step rather than in all of one step.
    Parts that the code caches per object are timed on objects that have not cached them yet.
    """
    start = 1 + corpus.members
    datas = built.entry_data[start : start + samples]
    n = len(datas)
    keys = {
        corpus.member_public(i): Ed25519PublicKey.from_public_bytes(corpus.member_public(i))
        for i in range(corpus.members)
    }
    publics = [corpus.member_public(k % corpus.members) for k in range(n)]
    values = [json.loads(d) for d in datas]
    entries = [Entry.from_bytes(d, strict=False) for d in datas]
    messages = [e.statement.signing_bytes() for e in entries]
    hashes = [leaf_hash(d) for d in datas]
    builder = RootBuilder()
    auditor = LogAuditor(log_public_key=built.signer.verifier.public_key, origin=built.signer.name)
    for data in built.entry_data[:start]:
        auditor.feed(data)
    steps: list[tuple[str, Callable[[int], object]]] = [
        ("LogAuditor.feed, end to end (no database)", lambda i: auditor.feed(datas[i])),
        ("Entry.from_bytes(strict=False)", lambda i: Entry.from_bytes(datas[i], strict=False)),
        (
            "  of which parse_json (json.loads with its Python hooks)",
            lambda i: parse_json(datas[i]),
        ),
        ("    for comparison: json.loads without hooks", lambda i: json.loads(datas[i])),
        (
            "  of which Statement.from_json (field validation)",
            lambda i: Statement.from_json(values[i]["statement"]),
        ),
        (
            "  of which b64decode(signature) with its canonical re-encoding check",
            lambda i: b64decode(values[i]["signature"], what="signature", length=64),
        ),
        ("  of which parse_time(entry time)", lambda i: parse_time(values[i]["time"])),
        (
            "Statement.canonical: canonical_bytes of the statement, for the signature",
            lambda i: canonical_bytes(entries[i].statement.to_json()),
        ),
        (
            "Ed25519PublicKey.from_public_bytes (verify_signature loads the key every time)",
            lambda i: Ed25519PublicKey.from_public_bytes(publics[i]),
        ),
        (
            "Ed25519 verify (key loaded)",
            lambda i: keys[publics[i]].verify(entries[i].signed.signature, messages[i]),
        ),
        ("leaf_hash (SHA-256 of the entry)", lambda i: leaf_hash(datas[i])),
        ("RootBuilder.append", lambda i: builder.append(hashes[i])),
        (
            "suggested: slice the signed bytes out of the entry (layout check) instead of re-serialising",
            lambda i: slice_statement(datas[i]),
        ),
    ]
    clock = time.perf_counter
    per_round: dict[str, list[float]] = {name: [] for name, _ in steps}
    bounds = [(r * n // rounds, (r + 1) * n // rounds) for r in range(rounds)]
    for lo, hi in bounds:
        for name, fn in steps:
            began = clock()
            for i in range(lo, hi):
                fn(i)
            per_round[name].append((clock() - began) / (hi - lo) * 1e6)
    context = b"corpusx/statement/v1\n"
    slices_ok = all(
        context + (slice_statement(d) or b"") == m for d, m in zip(datas, messages, strict=True)
    )
    return {
        "samples": n,
        "rounds": rounds,
        "us_per_entry": {name: sorted(v)[len(v) // 2] for name, v in per_round.items()},
        "us_per_entry_min_max": {name: (min(v), max(v)) for name, v in per_round.items()},
        "sliced_bytes_equal_signed_bytes": slices_ok,
    }


# -- bottleneck probes at scale --------------------------------------------------------------


def replay_refusal(built: BuiltLog, corpus: Corpus) -> dict[str, Any]:
    """At full size: re-appending an already logged statement must fail with ReplayError and
    leave the log unchanged (correctness, asserted); the time the refusal takes is reported."""
    from ledger.sql import ReplayError

    engine = make_engine(built.target.url)
    replayed = corpus.bench[len(corpus.bench) // 2][0]
    try:
        with Session(engine) as session:
            before = SqlLedger(session).head()
        began = time.perf_counter()
        refused = False
        try:
            with unit_of_work(engine) as session:
                SqlLedger(session).append(replayed)
        except ReplayError:
            refused = True
        seconds = time.perf_counter() - began
        with Session(engine) as session:
            after = SqlLedger(session).head()
    finally:
        engine.dispose()
    assert refused, "a replayed statement was accepted"
    assert after == before, "a refused replay changed the log"
    return {"size": before.size, "refused": refused, "refusal_ms": seconds * 1e3}


def appends_at_scale(
    built: BuiltLog, corpus: Corpus, unbatched: int, batches: int, batch: int
) -> dict[str, Any]:
    """Appends onto the full log (after its audit), to compare with the fresh-database rates."""
    statements = []
    for i in range(unbatched + batches * batch):
        m = i % corpus.members
        key, kid = _member_key(m)
        statements.append(
            sign(bench_statement(member_id(m), kid, f"scale-{i:012d}", i, corpus.when), key)[0]
        )
    engine = make_engine(built.target.url)
    try:
        with engine.connect():
            pass
        began = time.perf_counter()
        single = append_loop(engine, statements[:unbatched], 1)
        single_s = time.perf_counter() - began
        began = time.perf_counter()
        batched = append_loop(engine, statements[unbatched:], batch)
        batched_s = time.perf_counter() - began
    finally:
        engine.dispose()
    return {
        "size_before": built.size,
        "unbatched": {
            "entries": unbatched,
            "seconds": single_s,
            "entries_per_s": unbatched / single_s,
            "txn_latency_ms": latency_stats(single),
        },
        "batched": {
            "entries": batches * batch,
            "batch": batch,
            "seconds": batched_s,
            "entries_per_s": batches * batch / batched_s,
            "txn_latency_ms": latency_stats(batched),
        },
    }


# -- the tree against pymerkle ---------------------------------------------------------------


def merkle_vs_pymerkle(
    sizes: Sequence[int], queries: int, entry_bytes: int = 470, seed: int = 7, log: Log = _print
) -> dict[str, Any]:
    """Build time and proof generation/verification, ours and pymerkle's, on the same leaves."""
    from pymerkle import InmemoryTree

    largest = max(sizes)
    pad = bytes(entry_bytes - 8)
    data = [i.to_bytes(8, "big") + pad for i in range(largest)]
    out: dict[str, Any] = {"entry_bytes": entry_bytes, "queries": queries, "sizes": {}}
    clock = time.perf_counter
    for size in sizes:
        leaves = data[:size]
        result: dict[str, Any] = {}
        # ours, root only (streaming)
        began = clock()
        builder = RootBuilder()
        for d in leaves:
            builder.append(leaf_hash(d))
        result["ours_rootbuilder_s"] = clock() - began
        # ours, a tree that can answer proofs: integrate in batches of 1000, keep every node
        began = clock()
        nodes: dict[NodeID, bytes] = {}
        frontier: list[bytes] = []
        count = 0
        for start in range(0, size, 1000):
            integration = integrate(
                count, frontier, [leaf_hash(d) for d in leaves[start : start + 1000]]
            )
            nodes.update(integration.nodes)
            frontier, count = list(integration.frontier), integration.size
        result["ours_integrate_s"] = clock() - began
        ours_root = frontier_root(frontier)
        # pymerkle, default settings (sha256, RFC 6962 prefixes)
        began = clock()
        tree = InmemoryTree()
        tree.append_entries(leaves)
        result["pymerkle_build_s"] = clock() - began
        their_root = tree.get_root()
        result["roots_equal"] = ours_root == their_root == builder.root()
        assert result["roots_equal"], "our root and pymerkle's differ"
        result["build_speedup_integrate_vs_pymerkle"] = (
            result["pymerkle_build_s"] / result["ours_integrate_s"]
        )

        def reader(ids: Sequence[NodeID], nodes: dict[NodeID, bytes] = nodes) -> list[bytes]:
            return [nodes[n] for n in ids]

        rng = random.Random(seed)
        indexes = [rng.randrange(size) for _ in range(queries)]
        pairs = [tuple(sorted(rng.sample(range(1, size + 1), 2))) for _ in range(queries)]
        timings: dict[str, list[float]] = defaultdict(list)
        same_paths = 0
        for index in indexes:
            base = tree.get_leaf(index + 1)
            t0 = clock()
            proof = inclusion_proof(index, size, reader)
            t1 = clock()
            verify_inclusion(
                leaf_hash=nodes[NodeID(0, index)],
                index=index,
                size=size,
                proof=proof,
                root=ours_root,
            )
            t2 = clock()
            theirs = tree.prove_inclusion(index + 1, size)
            t3 = clock()
            theirs.verify(base, their_root, index=index + 1, size=size)
            t4 = clock()
            timings["inclusion_generate_ours"].append(t1 - t0)
            timings["inclusion_verify_ours"].append(t2 - t1)
            timings["inclusion_generate_pymerkle"].append(t3 - t2)
            timings["inclusion_verify_pymerkle"].append(t4 - t3)
            same_paths += theirs.path[1:] == proof
        for a, b in pairs:
            root_a = frontier_root(reader(subtree_ids(0, a)))
            root_b = frontier_root(reader(subtree_ids(0, b)))
            t0 = clock()
            proof = consistency_proof(a, b, reader)
            t1 = clock()
            verify_consistency(size1=a, size2=b, proof=proof, root1=root_a, root2=root_b)
            t2 = clock()
            theirs = tree.prove_consistency(a, b)
            t3 = clock()
            theirs.verify(root_a, root_b, prior_size=a, later_size=b)
            t4 = clock()
            timings["consistency_generate_ours"].append(t1 - t0)
            timings["consistency_verify_ours"].append(t2 - t1)
            timings["consistency_generate_pymerkle"].append(t3 - t2)
            timings["consistency_verify_pymerkle"].append(t4 - t3)
        result["inclusion_paths_identical"] = same_paths
        result["proof_us"] = {k: latency_stats(v, unit=1e6) for k, v in timings.items()}
        out["sizes"][str(size)] = result
        log(
            f"  merkle n={size:,}: ours {result['ours_integrate_s']:.2f} s, pymerkle "
            f"{result['pymerkle_build_s']:.2f} s, roots equal, {same_paths}/{queries} identical inclusion paths"
        )
        del tree, nodes, builder
    return out


def machine_info() -> dict[str, Any]:
    model, mhz = "unknown", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            if line.startswith("cpu MHz") and not mhz:
                mhz = line.split(":", 1)[1].strip()
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "cpu_mhz": mhz,
        "memory": memory,
        "loadavg": os.getloadavg(),
    }
