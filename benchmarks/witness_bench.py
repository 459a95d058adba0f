"""Witness latency: from an entry's append to its checkpoint cosigned by 3 witnesses.

    . .venv/bin/activate
    python benchmarks/witness_bench.py                       # everything, SQLite
    python benchmarks/witness_bench.py --db postgres
    python benchmarks/witness_bench.py --only on-demand --appends 200

Everything is a real process on loopback: three ``corpusx witness serve`` (each with its own
SQLite state, fsync'd before it answers) and ``corpusx serve`` (the exchange, one uvicorn
worker) configured with ``CORPUSX_WITNESSES`` = the three and ``CORPUSX_WITNESS_QUORUM=3``.
This script is the client. Scenarios (``--only``):

* ``on-demand``: per entry, ``POST /ledger/attest`` then ``POST /ledger/checkpoint`` (the
  operator's "checkpoint now", which returns once the witnesses have answered). Latency = from
  just before the append request to the cosigned note in hand.
* ``scheduled``: the exchange's own loop (``CORPUSX_CHECKPOINT_INTERVAL``, ``--interval``)
  issues and witnesses checkpoints; per entry, append, then poll ``GET /ledger/checkpoint``
  every ``--poll`` seconds until it covers the entry. With a quorum of 3 the server serves only
  checkpoints all three cosigned, so the poll ends exactly when the entry's checkpoint is
  cosigned by all of them. Latency is then about half the interval plus the witnessing.
* ``witness``: one witness process alone, ``add-checkpoint`` from a client holding the log
  (consistency proof for one new entry each time); and the same request decided in-process,
  without HTTP, with and without the store (SQLite commit with fsync), to split the cost.

Every cosigned note is checked (outside the clock): log signature, 3 valid cosignatures, the
size covers the entry. Results: benchmarks/results/witness-YYYY-MM-DD.md (+ .json), with the
command, the machine and the code version. Nothing is asserted on a time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/witness_bench.py` from the repository root
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from benchmarks.ledger_bench import machine_info  # noqa: E402
from benchmarks.meta import git as _git  # noqa: E402
from benchmarks.meta import version as _version  # noqa: E402
from exchange.client import ClientError, ExchangeClient  # noqa: E402
from exchange.settings import Settings  # noqa: E402
from exchange.setup import initialise  # noqa: E402
from exchange.witness_store import WitnessStore, create_witness  # noqa: E402
from ledger.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint  # noqa: E402
from ledger.merkle import NodeID, consistency_proof, frontier_root, integrate, leaf_hash  # noqa: E402
from ledger.note import CosignatureVerifier, Ed25519Signer, Ed25519Verifier  # noqa: E402
from ledger.witness import AddCheckpointRequest, Cosigned, LogState, answer_request  # noqa: E402

ALL = ("on-demand", "scheduled", "witness")
CLI = (sys.executable, "-m", "exchange")
ORIGIN = "bench.corpusx.local/witness"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CODE_UNDER_TEST = [
    "ledger/witness.py",
    "ledger/policy.py",
    "ledger/note.py",
    "ledger/merkle.py",
    "exchange/witnessing.py",
    "exchange/witness_store.py",
    "exchange/witness_server.py",
    "exchange/api/ledger.py",
    "exchange/app.py",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(ALL)}")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--appends", type=int, default=300, help="entries, on-demand scenario")
    parser.add_argument(
        "--scheduled-appends", type=int, default=40, help="entries, scheduled scenario"
    )
    parser.add_argument("--interval", type=float, default=1.0, help="checkpoint interval, s")
    parser.add_argument("--poll", type=float, default=0.005, help="poll period, scheduled, s")
    parser.add_argument("--witness-requests", type=int, default=300, help="witness scenario")
    parser.add_argument("--warmup", type=int, default=10, help="untimed rounds first")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--tag", default=None, help="suffix of the result file names")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp dir")
    args = parser.parse_args(argv)
    args.selected = [s for s in args.only.split(",") if s] or list(ALL)
    unknown = set(args.selected) - set(ALL)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return args


def _print(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


# -- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Served:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def _spawn(name: str, args: list[str], port: int, log: Path, env: dict[str, str]) -> Served:
    handle = log.open("ab")
    process = subprocess.Popen(
        [*CLI, *args], cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, env=env
    )
    return Served(name, f"http://127.0.0.1:{port}", process, log)


def _wait(served: Served, path: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if served.process.poll() is not None:
            raise RuntimeError(f"{served.name} exited:\n{served.log.read_text()[-3000:]}")
        try:
            if httpx.get(served.url + path, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{served.name} did not start:\n{served.log.read_text()[-3000:]}")
        time.sleep(0.1)


def _stop(served: Served) -> None:
    if served.process.poll() is None:
        served.process.terminate()
        try:
            served.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            served.process.kill()


@dataclass
class Deployment:
    client: ExchangeClient
    log_vkey: str
    witnesses: list[CosignatureVerifier]


@contextmanager
def deployment(
    args: argparse.Namespace, workdir: Path, *, interval: float, witnesses: int = 3
) -> Iterator[Deployment]:
    """A fresh exchange and ``witnesses`` fresh witnesses (quorum: all), each a process."""
    count = witnesses
    run = workdir / f"run-{time.monotonic_ns()}"
    run.mkdir()
    database_url, drop = _database(args, run)
    settings = Settings(data_dir=run / "exchange", database_url=database_url, log_origin=ORIGIN)
    key = Ed25519PrivateKey.generate()
    done = initialise(settings, operator="operator", operator_name="Operator", operator_key=key)
    served_witnesses: list[Served] = []
    verifiers: list[CosignatureVerifier] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORPUSX_")}
    for i in range(1, count + 1):
        data_dir = run / f"witness{i}"
        verifiers.append(create_witness(data_dir, f"witness.bench/w{i}").verifier)
        store = WitnessStore(data_dir)
        store.add_log(done.vkey)
        store.close()
        port = free_port()
        served_witnesses.append(
            _spawn(
                f"witness{i}",
                ["witness", "serve", "--data-dir", str(data_dir), "--port", str(port)],
                port,
                run / f"witness{i}.log",
                env,
            )
        )
    exchange_port = free_port()
    exchange_env = {
        **env,
        "CORPUSX_DATA_DIR": str(settings.data_dir),
        "CORPUSX_DATABASE_URL": database_url,
        "CORPUSX_CHECKPOINT_INTERVAL": str(interval),
        "CORPUSX_WITNESSES": ",".join(
            f"{v.vkey}={w.url}" for v, w in zip(verifiers, served_witnesses, strict=True)
        ),
        "CORPUSX_WITNESS_QUORUM": str(count),
    }
    served = _spawn(
        "exchange",
        ["serve", "--data-dir", str(settings.data_dir), "--port", str(exchange_port)],
        exchange_port,
        run / "exchange.log",
        exchange_env,
    )
    try:
        for witness in served_witnesses:
            _wait(witness, "/healthz")
        _wait(served, "/healthz")
        client = ExchangeClient(served.url, token=done.token, member="operator", key=key)
        try:
            yield Deployment(client, done.vkey, verifiers)
        finally:
            client.close()
    finally:
        for process in (served, *served_witnesses):
            _stop(process)
        drop()


def _database(args: argparse.Namespace, run: Path) -> tuple[str, Callable[[], None]]:
    if args.db == "sqlite":
        return f"sqlite:///{run / 'exchange' / 'exchange.db'}", lambda: None
    import psycopg

    name = f"corpusx_bench_witness_{os.getpid()}_{time.monotonic_ns() % 10**6}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]

    def drop() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]

    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", drop


# -- checks and statistics ---------------------------------------------------------------------


def check_cosigned(note: str, d: Deployment, seq: int) -> int:
    """The note is signed by the log, covers ``seq`` and has 3 valid cosignatures; its size."""
    signed = open_checkpoint(
        note,
        Ed25519Verifier.from_vkey(d.log_vkey),
        cosigners=d.witnesses,
        cosigner_quorum=len(d.witnesses),
    )
    if signed.checkpoint.size <= seq:
        raise AssertionError(f"checkpoint of size {signed.checkpoint.size} misses entry {seq}")
    return signed.checkpoint.size


def summary(samples: list[float]) -> dict[str, Any]:
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)

    def rank(p: float) -> float:  # nearest rank: the ceil(p/100 * n)-th smallest
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    return {
        "n": len(ordered),
        "mean_ms": statistics.fmean(ordered) * 1000,
        "p50_ms": rank(50) * 1000,
        "p90_ms": rank(90) * 1000,
        "p99_ms": rank(99) * 1000,
        "min_ms": ordered[0] * 1000,
        "max_ms": ordered[-1] * 1000,
    }


# -- scenarios ---------------------------------------------------------------------------------


def run_on_demand(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Entries alternate between an exchange with 3 witnesses and one with none."""
    _print(f"== on-demand: {args.appends} appends, each followed by POST /ledger/checkpoint")
    kinds = ("witnessed", "bare")
    times: dict[str, dict[str, list[float]]] = {
        k: {"total": [], "append": [], "issue": []} for k in kinds
    }
    with (
        deployment(args, workdir, interval=0) as witnessed,
        deployment(args, workdir, interval=0, witnesses=0) as bare,
    ):
        for i in range(args.warmup + args.appends):
            for kind, d in zip(kinds, (witnessed, bare), strict=True):
                started = time.perf_counter()
                seq = d.client.attest("attest.bench", {"i": i})["seq"]
                appended = time.perf_counter()
                note = d.client.issue_checkpoint()
                finished = time.perf_counter()
                check_cosigned(note, d, seq)
                if i >= args.warmup:
                    times[kind]["total"].append(finished - started)
                    times[kind]["append"].append(appended - started)
                    times[kind]["issue"].append(finished - appended)
        load = os.getloadavg()[0]
    return {
        "append_to_cosigned": summary(times["witnessed"]["total"]),
        "append": summary(times["witnessed"]["append"]),
        "checkpoint_and_witnessing": summary(times["witnessed"]["issue"]),
        "bare_append_to_checkpoint": summary(times["bare"]["total"]),
        "bare_checkpoint": summary(times["bare"]["issue"]),
        "load1_at_end": load,
    }


def run_scheduled(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    n = args.scheduled_appends
    _print(f"== scheduled: {n} appends, checkpoint interval {args.interval} s, poll {args.poll} s")
    total, polls = [], []
    with deployment(args, workdir, interval=args.interval) as d:
        for i in range(max(1, args.warmup // 5) + n):
            started = time.perf_counter()
            seq = d.client.attest("attest.bench", {"i": i})["seq"]
            count = 0
            while True:
                count += 1
                try:
                    note = d.client.checkpoint()
                except ClientError:  # 404 before the first checkpoint with a quorum
                    note = None
                if note is not None and _size(note) > seq:
                    break
                time.sleep(args.poll)
            finished = time.perf_counter()
            check_cosigned(note, d, seq)
            if i >= max(1, args.warmup // 5):
                total.append(finished - started)
                polls.append(count)
            # Start the next entry at a random phase of the schedule, not in step with it.
            time.sleep((i * 0.37) % args.interval)
        load = os.getloadavg()[0]
    return {
        "interval_s": args.interval,
        "append_to_cosigned": summary(total),
        "polls_per_entry_mean": statistics.fmean(polls) if polls else None,
        "load1_at_end": load,
    }


def _size(note: str) -> int:
    return int(note.split("\n", 2)[1])


class _Log:
    """The client's copy of a log it extends by one leaf per request."""

    def __init__(self, signer: Ed25519Signer) -> None:
        self.signer = signer
        self.size = 0
        self.frontier: tuple[bytes, ...] = ()
        self.nodes: dict[NodeID, bytes] = {}

    def grow(self) -> AddCheckpointRequest:
        old = self.size
        done = integrate(self.size, self.frontier, [leaf_hash(b"entry %d" % self.size)])
        self.nodes.update(done.nodes)
        self.size, self.frontier = done.size, done.frontier
        proof = (
            consistency_proof(old, self.size, lambda ids: [self.nodes[i] for i in ids])
            if old
            else []
        )
        note = sign_checkpoint(
            Checkpoint(self.signer.name, self.size, frontier_root(self.frontier)), self.signer
        )
        return AddCheckpointRequest.build(old, proof, note)


def run_witness(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    n = args.witness_requests
    _print(f"== witness alone: {n} add-checkpoint requests over HTTP, then in-process")
    run = workdir / "witness-alone"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORPUSX_")}
    signer = Ed25519Signer.generate(ORIGIN)
    create_witness(run, "witness.bench/alone")
    store = WitnessStore(run)
    store.add_log(signer.verifier.vkey)
    store.close()
    port = free_port()
    served = _spawn(
        "witness", ["witness", "serve", "--data-dir", str(run), "--port", str(port)], port,
        workdir / "witness-alone.log", env,
    )  # fmt: skip
    http: list[float] = []
    log = _Log(signer)
    try:
        _wait(served, "/healthz")
        with httpx.Client(base_url=served.url, timeout=30) as client:  # keep-alive, as the exchange
            for i in range(args.warmup + n):
                body = log.grow().to_bytes()
                started = time.perf_counter()
                answer = client.post("/add-checkpoint", content=body)
                elapsed = time.perf_counter() - started
                if answer.status_code != 200:
                    raise AssertionError(f"witness answered {answer.status_code}: {answer.text}")
                if i >= args.warmup:
                    http.append(elapsed)
    finally:
        _stop(served)
    # The same work in this process: the pure decision, then the store with its fsync'd commit.
    store = WitnessStore(run)
    try:
        pure, stored = [], []
        state = _state_after(store, signer.name)  # where the HTTP phase left the witness
        for i in range(args.warmup + n):
            body = log.grow().to_bytes()
            origin = log.signer.name
            started = time.perf_counter()
            outcome = answer_request(
                body, logs={origin: [signer.verifier]}, state=state, signer=store.signer,
                now=int(time.time()),
            )  # fmt: skip
            middle = time.perf_counter()
            persisted = store.add_checkpoint(body)
            finished = time.perf_counter()
            if not isinstance(outcome, Cosigned) or persisted.status != 200:
                raise AssertionError(f"in-process witness refused: {outcome}, {persisted}")
            state = outcome.state
            if i >= args.warmup:
                pure.append(middle - started)
                stored.append(finished - middle)
    finally:
        store.close()
    return {
        "http_add_checkpoint": summary(http),
        "in_process_decision": summary(pure),
        "in_process_store_with_fsync": summary(stored),
        "tree_size_at_end": log.size,
        "load1_at_end": os.getloadavg()[0],
    }


def _state_after(store: WitnessStore, origin: str) -> LogState | None:
    (followed,) = [f for f in store.logs() if f.origin == origin]
    return followed.state


# -- results -----------------------------------------------------------------------------------


def collect_meta(args: argparse.Namespace, command: str) -> dict[str, Any]:
    import hashlib

    return {
        "date": datetime.now().date().isoformat(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine_info(),
        "kernel": platform.release(),
        "versions": {
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            **{
                p: _version(p) for p in ("cryptography", "httpx", "uvicorn", "starlette", "fastapi")
            },
        },
        "code": {
            "git_head": _git("rev-parse", "--short", "HEAD"),
            "uncommitted_changes": _git(
                "status", "--porcelain", "--", "ledger", "exchange"
            ).splitlines(),
            "sha256_prefix_of_files_under_test": {
                name: hashlib.sha256((ROOT / name).read_bytes()).hexdigest()[:16]
                for name in CODE_UNDER_TEST
            },
        },
        "parameters": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in ("out", "workdir")
        },
    }


def _row(label: str, s: dict[str, Any]) -> str:
    if not s.get("n"):
        return f"| {label} | 0 | – | – | – | – | – | – |"
    return (
        f"| {label} | {s['n']} | {s['mean_ms']:.1f} | {s['p50_ms']:.1f} | {s['p90_ms']:.1f} "
        f"| {s['p99_ms']:.1f} | {s['min_ms']:.1f} | {s['max_ms']:.1f} |"
    )


HEADER = "| | n | mean ms | p50 ms | p90 ms | p99 ms | min ms | max ms |\n|---|---|---|---|---|---|---|---|"


def render_markdown(r: dict[str, Any]) -> str:
    meta = r["meta"]
    m = meta["machine"]
    lines = [
        f"# Witness benchmark, {meta['date']}",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory']}, kernel "
        f"{meta['kernel']}, load average at start {', '.join(f'{x:.2f}' for x in m['loadavg'])} "
        "(a shared machine: read the ratios measured side by side, not the absolutes). "
        f"Python {meta['versions']['python']}, SQLite {meta['versions']['sqlite']}, "
        f"code {meta['code']['git_head']}"
        + (" with uncommitted changes" if meta["code"]["uncommitted_changes"] else "")
        + f". Exchange database: {meta['parameters']['db']}. Wall time {r.get('wall_s', 0):.0f} s.",
        "",
        "Three `corpusx witness serve` processes and one `corpusx serve` (one worker) on "
        "loopback; the exchange asks the three in parallel (keep-alive HTTP) and the quorum is "
        "3, so a checkpoint counts only once all three cosigned it. Every note was verified "
        "(log signature, 3 cosignatures, covers the entry) outside the clock.",
        "",
    ]
    if "on-demand" in r:
        o = r["on-demand"]
        lines += [
            "## Append → cosigned by 3 witnesses, checkpoint on demand",
            "",
            "Per entry: `POST /ledger/attest`, then `POST /ledger/checkpoint` (issues the "
            "checkpoint, asks the witnesses, returns the cosigned note). "
            f"Load average at the end: {o['load1_at_end']:.2f}.",
            "",
            HEADER,
            _row("**append → cosigned checkpoint**", o["append_to_cosigned"]),
            _row("of which: the append", o["append"]),
            _row("of which: checkpoint + 3 witnesses", o["checkpoint_and_witnessing"]),
            _row("no witnesses: append → checkpoint", o["bare_append_to_checkpoint"]),
            _row("no witnesses: checkpoint alone", o["bare_checkpoint"]),
            "",
            "The two exchanges ran at the same time and their entries alternated, so the "
            "difference of the medians, "
            f"{o['append_to_cosigned']['p50_ms'] - o['bare_append_to_checkpoint']['p50_ms']:.1f}"
            " ms, is what witnessing by 3 adds to one checkpoint on this machine.",
            "",
        ]
    if "scheduled" in r:
        s = r["scheduled"]
        lines += [
            f"## Append → cosigned by 3 witnesses, scheduled checkpoints every {s['interval_s']} s",
            "",
            "Per entry: `POST /ledger/attest`, then poll `GET /ledger/checkpoint` until the "
            "served checkpoint (the newest all three cosigned) covers it. Entries start at "
            "spread-out phases of the schedule, so the expected latency is about half the "
            f"interval plus the witnessing. Polls per entry: {s['polls_per_entry_mean']:.0f} on "
            f"average. Load average at the end: {s['load1_at_end']:.2f}.",
            "",
            HEADER,
            _row("**append → served cosigned checkpoint**", s["append_to_cosigned"]),
            "",
        ]
    if "witness" in r:
        w = r["witness"]
        lines += [
            "## One witness alone",
            "",
            "`add-checkpoint` for a log that grows by one entry per request (consistency proof "
            f"from the previous size; tree size {w['tree_size_at_end']} at the end). Over HTTP "
            "to a witness process (keep-alive), then the same kind of request in this process: "
            "the pure decision (`ledger.witness.answer_request`: parse, log signature, proof, "
            "cosign) and the store (`WitnessStore.add_checkpoint`: the same decision inside a "
            "SQLite `BEGIN IMMEDIATE` transaction committed with `synchronous=FULL`). "
            f"Load average at the end: {w['load1_at_end']:.2f}.",
            "",
            HEADER,
            _row("HTTP round trip to a witness process", w["http_add_checkpoint"]),
            _row("in process: decision only", w["in_process_decision"]),
            _row("in process: store (decision + fsync'd commit)", w["in_process_store_with_fsync"]),
            "",
        ]
    if r.get("errors"):
        lines += ["## Errors", "", *[f"- {e}" for e in r["errors"]], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python benchmarks/witness_bench.py" + (
        " " + shlex.join(argv if argv is not None else sys.argv[1:])
        if (argv if argv is not None else sys.argv[1:])
        else ""
    )
    started = time.perf_counter()
    results: dict[str, Any] = {"meta": collect_meta(args, command), "errors": []}
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="witness-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    runners = {"on-demand": run_on_demand, "scheduled": run_scheduled, "witness": run_witness}
    try:
        for name in args.selected:
            try:
                results[name] = runners[name](args, workdir)
                _print(json.dumps(results[name], indent=None)[:400])
            except Exception as exc:
                results["errors"].append(f"{name}: {type(exc).__name__}: {exc}")
                _print(f"{name} failed: {exc}")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    results["wall_s"] = time.perf_counter() - started
    tag = args.tag
    if tag is None:
        full = args.selected == list(ALL) and args.db == "sqlite"
        tag = "" if full else "-" + "-".join([*args.selected, args.db])
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"witness-{results['meta']['date']}{tag}"
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(render_markdown(results))
    _print(f"wrote {args.out / stem}.md and .json")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
