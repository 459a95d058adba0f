"""Benchmark the exchange as a service: licensing use cases and the HTTP API under load.

    . .venv/bin/activate
    python benchmarks/service_bench.py                           # everything, PostgreSQL and SQLite
    python benchmarks/service_bench.py --only market --db postgres
    python benchmarks/service_bench.py --only http --db postgres --load-seconds 5

Everything runs against a real server: ``corpusx serve --workers 2`` (``python -m exchange
serve``) in its own process on a loopback port, on a fresh database (PostgreSQL on 127.0.0.1, or
SQLite in the data dir), set up through the API as members would: providers publish small
corpora (``exchange.publisher.publish_corpus``) and offer them, a model builder buys
(``ExchangeClient.buy``). Then:

``market`` (the issue "licences as contracts")
  1. Compliance: ``POST /compliance/check`` of a 10,000-item manifest (versions, file hashes,
     document hashes) against the builder's 1,000 agreements, p50/p99 over repeated runs; the
     same ``exchange.evaluation.check_manifest`` in this process on the same database, step by
     step (resolution queries, grant loading, the pure check, the report's JSON and digest), and
     the JSON steps that HTTP adds; the two lookups changed for it, before and after; a cProfile.
  2. Purchases: 1, 2 and 4 buyer processes, each a buyer of its own buying distinct offers as
     fast as it can (the full client purchase: offer fetch, the check of its ledger entry, the
     signed accept); purchases/s and accept latency; then the books must balance and every
     purchase must have its agreement, its ``licence.granted`` entry and its journal transaction.
  3. ``GET /may`` over HTTP, and ``decide_use`` in this process.

``http`` (the issue "the whole journey ... proven under load")
  A load generator (N processes x M threads, each thread one keep-alive ``http.client``
  connection) on loopback; each endpoint runs for a fixed time right after the bare liveness
  route ``GET /healthz/live`` (no database: the framework's ceiling) with the same generator:
  catalogue search, dataset detail, a signed ledger write (``POST /ledger/attest``, statements
  signed before the clock starts, one nonce each) and a download-token issue (``POST
  /deliveries``). Server CPU per request (from /proc) beside every rate. Then downloads of a
  large blob (``GET /downloads/{token}``, whole and resumed with ``Range``), each beside ``cat
  FILE > /dev/null`` and a Python read of the same stored bytes in 1 MiB chunks.

Writes ``benchmarks/results/service-YYYY-MM-DD[-TAG].md`` (+ ``.json``; a partial run gets a
tag) with the command, the machine, the code version and the load average at every phase. Latencies are nearest-rank percentiles of
per-request ``perf_counter`` times. No figure is asserted anywhere; the checks that are asserted
are correctness checks (books, agreements, entries, report digests, bytes served).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import http.client
import io
import itertools
import json
import multiprocessing
import os
import platform
import pstats
import random
import shlex
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/service_bench.py` from the repository root
    sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from benchmarks import loadgen  # noqa: E402
from benchmarks.ledger_bench import machine_info, percentile  # noqa: E402
from benchmarks.loadgen import Endpoint, Request  # noqa: E402
from benchmarks.meta import git as _git  # noqa: E402
from exchange.client import ExchangeClient  # noqa: E402
from licensing.terms import PURPOSES, Price, Terms  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
DB_NAME = "corpusx_bench_service"
SECTIONS = ("market", "http")
DATABASES = ("postgres", "sqlite")
MIB = 1 << 20
CODE_UNDER_TEST = [
    "exchange/evaluation.py",
    "exchange/licences.py",
    "exchange/settlement.py",
    "exchange/delivery.py",
    "exchange/app.py",
    "exchange/api/licensing.py",
    "exchange/api/delivery.py",
    "catalog/services.py",
    "catalog/overlap_index.py",
    "licensing/compliance.py",
    "licensing/evaluation.py",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--only", default=",".join(SECTIONS), help="market, http (comma-separated)")
    add("--db", choices=[*DATABASES, "both"], default="both")
    add("--workers", type=int, default=2, help="uvicorn worker processes of the server")
    add(
        "--ingest-workers",
        type=int,
        default=1,
        help="the server's CORPUSX_INGEST_WORKERS: 1 spares a process pool per small publish",
    )
    add("--providers", type=int, default=4)
    add("--versions", type=int, default=100, help="published versions (2 per dataset)")
    add("--documents", type=int, default=100, help="documents per version")
    add("--offers-per-version", type=int, default=10)
    add("--items", type=int, default=10_000, help="items in the compliance manifest")
    add("--repeat", type=int, default=20, help="compliance checks timed, per way")
    add("--buyer-procs", default="1,2,4", help="purchase phases: buyer processes in each")
    add("--purchases", type=int, default=60, help="purchases per buyer process per phase")
    add("--may", type=int, default=300, help="GET /may requests (and decide_use calls)")
    add("--load-procs", type=int, default=2, help="load generator processes")
    add("--load-threads", type=int, default=4, help="connections (threads) per process")
    add("--load-seconds", type=float, default=8.0, help="measured seconds per endpoint")
    add("--warmup", type=float, default=1.5, help="seconds before the measured window")
    add("--attest-statements", type=int, default=4_000, help="pre-signed per attest run")
    add("--blob-mib", type=int, default=256, help="size of the downloaded blob")
    add("--downloads", type=int, default=3, help="whole-blob downloads (and baselines)")
    add("--seed", type=int, default=20261202)
    add("--workdir", type=Path, default=None, help="default: a temporary dir under /tmp")
    add("--keep", action="store_true", help="keep the work dir and the PostgreSQL database")
    add("--db-suffix", default="", help="suffix of the PostgreSQL database's name")
    add("--out", type=Path, default=ROOT / "benchmarks" / "results")
    add("--tag", default=None, help="suffix of the result file names")
    args = parser.parse_args(argv)
    args.sections = [s for s in args.only.split(",") if s]
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {unknown}: known are {list(SECTIONS)}")
    args.databases = list(DATABASES) if args.db == "both" else [args.db]
    args.buyer_phases = [int(n) for n in args.buyer_procs.split(",") if n]
    if args.tag is None:  # a partial run never overwrites the day's full results
        parts = [] if args.only == ",".join(SECTIONS) else ["-".join(args.sections)]
        parts += [] if args.db == "both" else [args.db]
        args.tag = "-".join(parts) or None
    return args


# -- statistics -------------------------------------------------------------------------------


def stats(seconds: Sequence[float], *, unit: float = 1e3) -> dict[str, float]:
    """Nearest-rank percentiles of per-operation times, in ms (``unit=1e6``: µs)."""
    values = sorted(seconds)
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "min": values[0] * unit,
        "p50": percentile(values, 50) * unit,
        "p90": percentile(values, 90) * unit,
        "p99": percentile(values, 99) * unit,
        "max": values[-1] * unit,
        "mean": sum(values) / len(values) * unit,
    }


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def say(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S} load {load()[0]:.1f}] {message}", flush=True)


# -- the workload -----------------------------------------------------------------------------


def vocabulary(rng: random.Random, size: int = 5_000) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))))
    return sorted(words)


@dataclass(frozen=True)
class CorpusPlan:
    """One version to publish: its dataset, provider and documents (known here, for the
    manifest's document hashes)."""

    index: int
    slug: str
    provider: int
    jsonl: tuple[str, ...]
    text: tuple[str, ...]

    def write(self, root: Path) -> Path:
        folder = root / f"v{self.index:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "part-0.jsonl").open("w") as handle:
            for text in self.jsonl:
                handle.write(json.dumps({"text": text}) + "\n")
        (folder / "part-1.txt").write_text("".join(line + "\n" for line in self.text))
        return folder

    def document_hashes(self) -> list[str]:
        return [hashlib.sha256(t.encode()).hexdigest() for t in (*self.jsonl, *self.text)]


def plan_corpora(
    rng: random.Random, words: list[str], *, versions: int, documents: int, providers: int
) -> list[CorpusPlan]:
    """Random-word documents (distinct, and far from near-duplicates of one another, so no
    version is held for overlap); two versions per dataset."""
    plans = []
    for i in range(versions):
        docs = [
            f"{i} " + " ".join(rng.choices(words, k=rng.randint(30, 60))) for _ in range(documents)
        ]
        split = max(1, documents * 3 // 5)
        dataset = i // 2
        plans.append(
            CorpusPlan(
                index=i,
                slug=f"corpus-{dataset:03d}",
                provider=dataset % providers,
                jsonl=tuple(docs[:split]),
                text=tuple(docs[split:]),
            )
        )
    return plans


ALL = frozenset(PURPOSES)
NOTICE = ("(c) Bench provider",)


def offer_terms(version: int, k: int) -> Terms:
    """The k-th of a version's offers. Four versions in five get a broad offer (commercial
    training anywhere); the fifth gets none, so its items are denied, with reasons."""
    permissive = version % 5 != 4
    menu = [
        Terms(purposes=ALL, commercial=permissive),
        Terms(purposes={"training", "evaluation"}, duration_days=30, attribution=NOTICE),
        Terms(purposes={"research"}),
        Terms(purposes={"training"}, commercial=True, territories={"FR", "US"}),
        Terms(purposes={"fine-tuning"}, commercial=True),
        Terms(purposes={"evaluation"}, duration_days=365),
        Terms(purposes={"training"}, attribution=NOTICE),
        Terms(purposes={"training"}, commercial=True, territories={"DE" if permissive else "US"}),
        Terms(purposes=ALL, commercial=permissive, duration_days=730),
        Terms(purposes={"training", "fine-tuning"}, commercial=permissive, attribution=NOTICE),
    ]
    return menu[k % len(menu)]


def write_blob_corpus(root: Path, *, mib: int, seed: int) -> Path:
    """One text file of ``mib`` MiB in lines of up to 32 MiB: large documents, so ingesting it
    costs little beyond hashing (a document is sketched on its first MiB only)."""
    folder = root / "blob"
    folder.mkdir(parents=True, exist_ok=True)
    table = bytes(97 + (b % 26) if b % 7 else 32 for b in range(256))  # letters and spaces
    rng = random.Random(seed)
    remaining = mib * MIB
    with (folder / "big.txt").open("wb") as handle:
        while remaining > 0:
            line = min(remaining, 32 * MIB) - 1
            handle.write(b"x" + rng.randbytes(line - 1).translate(table) + b"\n")
            remaining -= line + 1
    return folder


# -- the server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as connection:
        connection.execute(sql)  # type: ignore[arg-type]


@dataclass
class Member:
    id: str
    key: Ed25519PrivateKey
    token: str

    def client(self, url: str, **kwargs: Any) -> ExchangeClient:
        return ExchangeClient(url, token=self.token, member=self.id, key=self.key, **kwargs)

    def key_bytes(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )


class Server:
    """A fresh database and data dir, and ``corpusx serve --workers N`` on a loopback port."""

    def __init__(
        self, kind: str, workdir: Path, *, workers: int, ingest_workers: int, suffix: str
    ) -> None:
        from exchange.settings import Settings
        from exchange.setup import initialise

        self.kind = kind
        self.data_dir = (workdir / f"exchange-{kind}").resolve()  # the server runs elsewhere
        self.db_name = f"{DB_NAME}{suffix}"
        if kind == "postgres":
            _admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            _admin(f'CREATE DATABASE "{self.db_name}"')
            self.url = PG_URL.format(name=self.db_name)
        else:
            self.url = f"sqlite:///{self.data_dir / 'exchange.db'}"
        self.settings = Settings(data_dir=self.data_dir, database_url=self.url)
        self.operator_key = Ed25519PrivateKey.generate()
        done = initialise(
            self.settings,
            operator="operator",
            operator_name="Operator",
            operator_key=self.operator_key,
        )
        self.operator_token = done.token
        self.workers = workers
        self.ingest_workers = ingest_workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.command = [
            sys.executable,
            "-m",
            "exchange",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--workers",
            str(workers),
        ]

    def start(self) -> None:
        env = {
            **os.environ,
            "CORPUSX_DATABASE_URL": self.url,
            "CORPUSX_INGEST_WORKERS": str(self.ingest_workers),
        }
        env.pop("CORPUSX_DATA_DIR", None)
        log = (self.data_dir / "server.log").open("wb")
        self.process = subprocess.Popen(
            self.command, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        log.close()
        deadline = time.monotonic() + 120
        import httpx

        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base + "/healthz", timeout=5).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the server did not answer within 120 s: {self.log_tail()}")

    def log_tail(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # uvicorn's supervisor stops its workers
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def drop(self) -> None:
        if self.kind == "postgres":
            _admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')

    def operator(self) -> ExchangeClient:
        return ExchangeClient(
            self.base, token=self.operator_token, member="operator", key=self.operator_key
        )

    def register(self, member_id: str, roles: list[str]) -> Member:
        from exchange.keys import raw_public_key
        from ledger.audit import registration_body

        key = Ed25519PrivateKey.generate()
        body = registration_body(
            member_id, raw_public_key(key), name=member_id.title(), roles=roles
        )
        with self.operator() as operator:
            token = operator.register_member(body)["token"]
        return Member(member_id, key, token)

    def size(self) -> int:
        import httpx

        return int(httpx.get(self.base + "/healthz", timeout=30).json()["size"])

    def engine(self) -> Any:
        from exchange.db import make_engine

        return make_engine(self.url)

    def cpu(self) -> CpuTime:
        """CPU seconds used so far by the server's processes, and by the PostgreSQL backends
        connected to its database (SQLite runs inside the server's processes)."""
        assert self.process is not None
        app = sum(_cpu_seconds(pid) for pid in _process_tree(self.process.pid))
        database: dict[int, float] = {}
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as connection:
                rows = connection.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.db_name,)
                ).fetchall()
            database = {int(pid): _cpu_seconds(int(pid)) for (pid,) in rows}
        return CpuTime(app, database)


@dataclass(frozen=True)
class CpuTime:
    """CPU seconds of the server's processes, and of each PostgreSQL backend of its database by
    pid. A difference over a phase, divided by its requests, is each request's cost in CPU: it
    moves far less with the machine's load than wall time does. The database's share is a lower
    bound: a backend that exits during the phase (the pool closes overflow connections) takes
    its CPU with it."""

    app: float
    database: dict[int, float]

    def per(self, later: CpuTime, n: int) -> dict[str, float]:
        """Milliseconds of CPU per operation between this reading and ``later``."""
        n = max(n, 1)
        database = sum(
            max(0.0, seconds - self.database.get(pid, 0.0))
            for pid, seconds in later.database.items()
        )
        return {"app_ms": (later.app - self.app) / n * 1e3, "database_ms": database / n * 1e3}


def _process_tree(pid: int) -> list[int]:
    pids, i = [pid], 0
    while i < len(pids):
        try:
            children = Path(f"/proc/{pids[i]}/task/{pids[i]}/children").read_text().split()
        except OSError:
            children = []
        pids.extend(int(child) for child in children)
        i += 1
    return pids


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process (Linux /proc/PID/stat fields 14 and 15)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


# -- the market: members, corpora, offers, the builder's agreements ---------------------------


@dataclass
class Market:
    server: Server
    providers: list[Member]
    builder: Member  # the model builder who holds an agreement for every offer
    plans: list[CorpusPlan]
    versions: list[str]  # version id of each plan
    files: list[str]  # every file SHA-256 of every version
    offers: list[str]  # every offer id, ten per version, in version order
    setup_seconds: dict[str, float] = field(default_factory=dict)

    def client(self, member: Member, **kwargs: Any) -> ExchangeClient:
        return member.client(self.server.base, **kwargs)


def open_market(server: Server, args: argparse.Namespace, workdir: Path) -> Market:
    rng = random.Random(args.seed)
    words = vocabulary(rng)
    plans = plan_corpora(
        rng, words, versions=args.versions, documents=args.documents, providers=args.providers
    )
    timings: dict[str, float] = {}
    started = time.perf_counter()
    providers = [server.register(f"prov-{i}", ["provider"]) for i in range(args.providers)]
    builder = server.register("builder", ["buyer"])
    with server.operator() as operator:
        operator.deposit("builder", 10**9, "bench funding")
    timings["members"] = time.perf_counter() - started

    started = time.perf_counter()
    corpora = workdir / f"corpora-{server.kind}"
    published: dict[int, tuple[str, list[str], list[str]]] = {}

    def publish_all(provider: int) -> None:
        from exchange.publisher import publish_corpus

        member = providers[provider]
        with member.client(server.base, timeout=600) as client:
            for plan in (p for p in plans if p.provider == provider):
                result = publish_corpus(
                    client,
                    [plan.write(corpora)],
                    slug=plan.slug,
                    meta=_dataset_meta(plan, words),
                    workers=1,
                )
                version = result.manifest.version_id
                offers = []
                for k in range(args.offers_per_version):
                    offer = client.publish_offer(
                        dataset=plan.slug,
                        version=version,
                        terms=offer_terms(plan.index, k),
                        price=Price(1 + k),
                    )
                    offers.append(offer["id"])
                published[plan.index] = (version, [f.sha256 for f in result.manifest.files], offers)

    with ThreadPoolExecutor(args.providers) as pool:
        list(pool.map(publish_all, range(args.providers)))
    timings["publish_and_offer"] = time.perf_counter() - started
    versions = [published[p.index][0] for p in plans]
    files = [digest for p in plans for digest in published[p.index][1]]
    offers = [offer for p in plans for offer in published[p.index][2]]
    market = Market(server, providers, builder, plans, versions, files, offers, timings)

    started = time.perf_counter()
    buy_all(market, market.builder, offers, threads=4)
    timings["builder_purchases"] = time.perf_counter() - started
    say(
        f"{server.kind}: market open: {len(versions)} versions, {len(offers)} offers, "
        f"{len(offers)} agreements of the builder ({', '.join(f'{k} {v:.0f} s' for k, v in timings.items())})"
    )
    return market


def _dataset_meta(plan: CorpusPlan, words: list[str]) -> dict[str, Any]:
    rng = random.Random(plan.slug)
    return {
        "title": f"{rng.choice(SEARCH_WORDS).title()} {' '.join(rng.sample(words, 2))} corpus",
        "description": " ".join(rng.sample(SEARCH_WORDS, 3) + rng.sample(words, 30)),
        "tags": rng.sample(SEARCH_WORDS, 2),
        "languages": ["en"],
    }


SEARCH_WORDS = [
    "news",
    "legal",
    "medical",
    "forum",
    "fiction",
    "science",
    "patents",
    "code",
    "poetry",
    "finance",
]


def buy_all(market: Market, member: Member, offers: Sequence[str], *, threads: int) -> list[Any]:
    """The member accepts every offer (the real client purchase), ``threads`` at a time."""
    local = threading.local()

    def buy(offer: str) -> Any:
        if not hasattr(local, "client"):
            local.client = market.client(member, timeout=120)
        return local.client.buy(offer)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(buy, offers))


# =============================================================================================
# A.1 Compliance
# =============================================================================================


def training_manifest(market: Market, *, items: int, seed: int) -> dict[str, Any]:
    """Every version, every file, then document hashes (1% of the items unknown)."""
    rng = random.Random(seed)
    unknown = max(1, items // 100)
    chosen: list[dict[str, str]] = [{"version": v} for v in market.versions][: items // 10]
    chosen += [{"file": f} for f in market.files][: max(0, (items - len(chosen)) // 10)]
    documents = [h for plan in market.plans for h in plan.document_hashes()]
    rng.shuffle(documents)
    wanted = max(0, items - len(chosen) - unknown)
    chosen += [{"document": h} for h in documents[:wanted]]
    while len(chosen) < items:
        chosen.append({"document": hashlib.sha256(f"unknown {len(chosen)}".encode()).hexdigest()})
    rng.shuffle(chosen)
    from ledger.entry import format_time

    return {
        "model": "bench-7b",
        "purpose": "training",
        "commercial": True,
        "date": format_time(datetime.now(UTC)),
        "territory": "DE",
        "data": chosen,
    }


class StepTimer:
    """Wraps module attributes that ``check_manifest`` calls, noting each call's wall and CPU
    time (``process_time``: this process's own, which moves less with the machine's load)."""

    def __init__(self) -> None:
        self.times: dict[str, tuple[float, float]] = {}
        self._undo: list[Callable[[], None]] = []

    def wrap(self, module: Any, name: str, label: str) -> None:
        original = getattr(module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started, started_cpu = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                wall, cpu = self.times.get(label, (0.0, 0.0))
                self.times[label] = (
                    wall + time.perf_counter() - started,
                    cpu + time.process_time() - started_cpu,
                )

        setattr(module, name, timed)
        self._undo.append(lambda: setattr(module, name, original))

    def restore(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


def _wrap_check_manifest_steps() -> StepTimer:
    import catalog.services
    import exchange.evaluation

    timer = StepTimer()
    timer.wrap(catalog.services, "existing_versions", "resolve: version items")
    timer.wrap(catalog.services, "versions_with_files", "resolve: file hashes")
    timer.wrap(exchange.evaluation, "versions_with_documents", "resolve: document hashes")
    timer.wrap(exchange.evaluation, "grants_of", "grant loading (agreements query)")
    timer.wrap(exchange.evaluation, "GrantIndex", "GrantIndex")
    timer.wrap(exchange.evaluation, "check", "pure check()")
    return timer


def run_compliance(market: Market, args: argparse.Namespace) -> dict[str, Any]:
    from pydantic import TypeAdapter

    from exchange.api.licensing import ComplianceCheckIn
    from exchange.db import read_only
    from exchange.evaluation import check_manifest, parse_manifest
    from licensing.compliance import ComplianceReport

    manifest = training_manifest(market, items=args.items, seed=args.seed)
    request_bytes = json.dumps({"manifest": manifest, "member": None}).encode()
    engine = market.server.engine()
    kinds = Counter(next(iter(item)) for item in manifest["data"])
    result: dict[str, Any] = {
        "items": len(manifest["data"]),
        "item_kinds": dict(kinds),
        "agreements": len(market.offers),
        "request_bytes": len(request_bytes),
        "load_before": load(),
    }
    say(f"{market.server.kind}: compliance, {len(manifest['data']):,} items")

    # in this process, step by step, on the server's database
    timer = _wrap_check_manifest_steps()
    steps: dict[str, list[tuple[float, float]]] = {}
    whole: list[float] = []
    whole_cpu: list[float] = []
    report: ComplianceReport | None = None
    try:
        for _ in range(args.repeat):
            timer.times.clear()
            with read_only(engine) as session:
                marks = [(time.perf_counter(), time.process_time())]
                parsed = parse_manifest(manifest)
                marks.append((time.perf_counter(), time.process_time()))
                report = check_manifest(session, parsed, member=market.builder.id)
                marks.append((time.perf_counter(), time.process_time()))
            body = report.to_json()
            marks.append((time.perf_counter(), time.process_time()))
            digest = report.digest()
            marks.append((time.perf_counter(), time.process_time()))
            wall = [b[0] - a[0] for a, b in itertools.pairwise(marks)]
            cpu = [b[1] - a[1] for a, b in itertools.pairwise(marks)]
            whole.append(wall[1])
            whole_cpu.append(cpu[1])
            for label, seconds in (
                ("parse the manifest (TrainingManifest.from_json)", (wall[0], cpu[0])),
                *timer.times.items(),
                ("report.to_json() (the route returns it)", (wall[2], cpu[2])),
                ("report.digest() (not on the route; attestations use it)", (wall[3], cpu[3])),
            ):
                steps.setdefault(label, []).append(seconds)
    finally:
        timer.restore()
    assert report is not None
    counts = report.counts()
    # what the HTTP layer adds around it, measured on the same values in this process
    adapter = TypeAdapter(dict[str, Any])
    http_steps: dict[str, list[float]] = {}
    response_bytes = b""
    for _ in range(max(3, args.repeat // 4)):
        marks = [time.process_time()]
        sent = json.dumps({"manifest": manifest, "member": None}).encode()
        marks.append(time.process_time())
        incoming = json.loads(sent)
        marks.append(time.process_time())
        ComplianceCheckIn.model_validate(incoming)
        marks.append(time.process_time())
        response_bytes = adapter.dump_json(adapter.validate_python(body))
        marks.append(time.process_time())
        json.loads(response_bytes)
        marks.append(time.process_time())
        for label, i in (
            ("client: request dict → JSON", 0),
            ("server: request JSON → dict", 1),
            ("server: pydantic ComplianceCheckIn", 2),
            ("server: response_model validate + dump_json (FastAPI's path)", 3),
            ("client: response JSON → dict", 4),
        ):
            http_steps.setdefault(label, []).append(marks[i + 1] - marks[i])

    # end to end over HTTP, the same manifest
    say(f"{market.server.kind}: compliance over HTTP ×{args.repeat}")
    end_to_end: list[float] = []
    with market.client(market.builder, timeout=600) as client:
        client.compliance_check(manifest)  # warm: the workers' first call imports and plans
        client.compliance_check(manifest)
        server_cpu: list[dict[str, float]] = []
        client_cpu: list[float] = []
        for _ in range(args.repeat):
            cpu_before = market.server.cpu()
            started, started_cpu = time.perf_counter(), time.process_time()
            answer = client.compliance_check(manifest)
            end_to_end.append(time.perf_counter() - started)
            client_cpu.append(time.process_time() - started_cpu)
            server_cpu.append(cpu_before.per(market.server.cpu(), 1))
            served = ComplianceReport.from_json(answer)
            assert served.digest() == digest, "the server's report differs from check_manifest's"

    # where the in-process time goes
    profile = cProfile.Profile()
    with read_only(engine) as session:
        profile.enable()
        parsed = parse_manifest(manifest)
        check_manifest(session, parsed, member=market.builder.id).to_json()
        profile.disable()
    fixes = compare_fixes(engine, manifest, member=market.builder.id, repeat=args.repeat)
    engine.dispose()
    result.update(
        fixes=fixes,
        counts={k: v for k, v in counts.items() if v},
        agreements_used=len(report.agreements),
        response_bytes=len(response_bytes),
        http_ms=stats(end_to_end),
        http_server_cpu_ms={
            "app": stats([c["app_ms"] / 1e3 for c in server_cpu]),
            "database": stats([c["database_ms"] / 1e3 for c in server_cpu]),
        },
        http_client_cpu_ms=stats(client_cpu),
        in_process_ms=stats(whole),
        in_process_cpu_ms=stats(whole_cpu),
        steps_ms={label: stats([wall for wall, _ in values]) for label, values in steps.items()},
        steps_cpu_ms={label: stats([cpu for _, cpu in values]) for label, values in steps.items()},
        http_steps_ms={label: stats(values) for label, values in http_steps.items()},
        profile=_top(profile, 18),
        load_after=load(),
    )
    say(
        f"{market.server.kind}: compliance HTTP p50 {result['http_ms']['p50']:.0f} ms "
        f"p99 {result['http_ms']['p99']:.0f} ms; check_manifest p50 "
        f"{result['in_process_ms']['p50']:.0f} ms"
    )
    return result


def _grants_before_fix(session: Any, *, member: str, versions: Any) -> list[Any]:
    """``exchange.evaluation.grants_of`` as it was: every agreement's terms parsed anew."""
    from sqlmodel import col, select

    from exchange.evaluation import CHUNK, grant_of
    from licensing.models import Agreement

    ordered, grants = sorted(versions), []
    for start in range(0, len(ordered), CHUNK):
        rows = session.exec(
            select(Agreement).where(
                Agreement.assignee == member,
                col(Agreement.version_id).in_(ordered[start : start + CHUNK]),
            )
        ).all()
        grants.extend(grant_of(row) for row in rows)
    return grants


def compare_fixes(
    engine: Any, manifest: dict[str, Any], *, member: str, repeat: int
) -> dict[str, Any]:
    """The two lookups changed for this benchmark, before and after, on alternating runs in one
    session (CPU time of this process; the answers are compared)."""
    from catalog.overlap_index import versions_with_documents
    from exchange.db import read_only
    from exchange.evaluation import grants_of, parse_manifest, resolve

    parsed = parse_manifest(manifest)
    digests = [bytes.fromhex(i.value) for i in parsed.items if i.kind == "document"]
    times: dict[str, list[float]] = {}

    def timed(label: str, call: Callable[[], Any]) -> Any:
        started = time.process_time()
        value = call()
        times.setdefault(label, []).append(time.process_time() - started)
        return value

    with read_only(engine) as session:
        versions = {v for found in resolve(session, parsed).values() for v in found}
        for _ in range(repeat):
            old = timed(
                "grants_before",
                lambda: _grants_before_fix(session, member=member, versions=versions),
            )
            new = timed(
                "grants_after", lambda: grants_of(session, member=member, versions=versions)
            )
            assert old == new, "the grants differ"
            # The SQL lookup this was once compared with is gone (migration 0008): timed alone.
            timed("documents_after", lambda: versions_with_documents(session, digests))
    out = {label: stats(values) for label, values in times.items()}
    out["grants_after_over_before"] = out["grants_after"]["p50"] / out["grants_before"]["p50"]
    return out


def _top(profile: cProfile.Profile, n: int) -> list[dict[str, Any]]:
    """The ``n`` functions with the most own time (tottime), with their cumulative time."""
    out = io.StringIO()
    stats_ = pstats.Stats(profile, stream=out)
    rows = []
    for (file, line, name), (_cc, calls, tottime, cumtime, _callers) in stats_.stats.items():  # type: ignore[attr-defined]
        where = file.replace(str(ROOT) + "/", "")
        if "site-packages/" in where:
            where = where.split("site-packages/", 1)[1]
        rows.append(
            {
                "function": f"{where}:{line}({name})",
                "calls": calls,
                "tottime_ms": tottime * 1e3,
                "cumtime_ms": cumtime * 1e3,
            }
        )
    rows.sort(key=lambda r: r["tottime_ms"], reverse=True)
    return rows[:n]


# =============================================================================================
# A.2 Purchases
# =============================================================================================


class _TimedBuyer(ExchangeClient):
    """The product client; the accept request (the signed ``licence.granted`` POST) is timed."""

    accept_seconds = 0.0

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if not (method == "POST" and path.endswith("/accept")):
            return super().request(method, path, **kwargs)
        started = time.perf_counter()
        try:
            return super().request(method, path, **kwargs)
        finally:
            self.accept_seconds = time.perf_counter() - started


def _buyer_process(
    base: str,
    member: str,
    key: bytes,
    token: str,
    offers: list[str],
    barrier: Any,
    results: Any,
) -> None:
    client = _TimedBuyer(
        base, token=token, member=member, key=Ed25519PrivateKey.from_private_bytes(key), timeout=120
    )
    client.origin  # noqa: B018 - fetched once, before the clock starts
    done = []
    barrier.wait()
    for offer in offers:
        started = time.monotonic()
        agreement = client.buy(offer)
        done.append(
            {
                "start": started,
                "end": time.monotonic(),
                "accept": client.accept_seconds,
                "agreement": agreement["id"],
                "seq": agreement["granted_seq"],
                "price": agreement["price"]["amount"],
                "buyer": member,
                "offer": offer,
            }
        )
    results.put(done)
    client.close()


def run_purchases(market: Market, args: argparse.Namespace) -> dict[str, Any]:
    # fork: a buyer process starts at once (no re-import); each opens its own connections
    context = multiprocessing.get_context("fork")
    phases: dict[str, Any] = {}
    every: list[dict[str, Any]] = []
    for n, procs in enumerate(args.buyer_phases):
        buyers = [market.server.register(f"buyer-{procs}p-{i}", ["buyer"]) for i in range(procs)]
        with market.server.operator() as operator:
            for buyer in buyers:
                operator.deposit(buyer.id, 10**6, f"bench funding {buyer.id}")
        # distinct offers within a phase; each phase starts at a different place
        start = (n * 997) % len(market.offers)
        ring = market.offers[start:] + market.offers[:start]
        lists = [ring[i * args.purchases : (i + 1) * args.purchases] for i in range(procs)]
        barrier = context.Barrier(procs + 1)
        queue = context.Queue()
        processes = [
            context.Process(
                target=_buyer_process,
                args=(
                    market.server.base,
                    b.id,
                    b.key_bytes(),
                    b.token,
                    lists[i],
                    barrier,
                    queue,
                ),
            )
            for i, b in enumerate(buyers)
        ]
        for process in processes:
            process.start()
        before = load()
        cpu_before = market.server.cpu()
        barrier.wait(timeout=300)
        done = [row for _ in processes for row in queue.get(timeout=1800)]
        server_cpu = cpu_before.per(market.server.cpu(), len(done))
        for process in processes:
            process.join(timeout=60)
            if process.exitcode != 0:
                raise RuntimeError(f"a buyer process failed (exit {process.exitcode})")
        window = max(r["end"] for r in done) - min(r["start"] for r in done)
        phases[str(procs)] = {
            "processes": procs,
            "purchases": len(done),
            "seconds": window,
            "purchases_per_s": len(done) / window,
            "purchase_ms": stats([r["end"] - r["start"] for r in done]),
            "accept_ms": stats([r["accept"] for r in done]),
            "server_cpu_per_purchase": server_cpu,
            "load_before": before,
            "load_after": load(),
        }
        every.extend(done)
        say(
            f"{market.server.kind}: {procs} buyer process(es): {len(done) / window:.1f} purchases/s, "
            f"accept p50 {phases[str(procs)]['accept_ms']['p50']:.0f} ms"
        )
    for phase in phases.values():
        phase["vs_one_process"] = (
            phase["purchases_per_s"] / phases[str(args.buyer_phases[0])]["purchases_per_s"]
        )
    return {"phases": phases, "checks": check_purchases(market, every)}


def check_purchases(market: Market, purchases: list[dict[str, Any]]) -> dict[str, Any]:
    """The books balance, and every purchase has its agreement, entry and journal transaction."""
    from sqlmodel import col, select

    from exchange.db import read_only
    from exchange.models import JournalPosting, JournalTransaction
    from exchange.settlement import books, member_account_id
    from ledger.entry import Entry
    from ledger.sql import SqlLedger
    from licensing.models import Agreement

    engine = market.server.engine()
    with market.server.operator() as operator:
        served = operator.books()
    assert served["total"] == 0, f"the books do not sum to zero: {served['total']}"
    assert served["unbalanced_transactions"] == 0, served
    assert served["drifted_accounts"] == [], served
    with read_only(engine) as session:
        local = books(session)
        assert (
            local.total == 0 and local.unbalanced_transactions == 0 and not local.drifted_accounts
        )
        ledger = SqlLedger(session)
        for purchase in purchases:
            agreement = session.get(Agreement, purchase["agreement"])
            assert agreement is not None, purchase
            assert agreement.granted_seq == purchase["seq"], purchase
            assert (
                agreement.assignee == purchase["buyer"] and agreement.offer_id == purchase["offer"]
            )
            entry = Entry.from_bytes(ledger.entry_data(purchase["seq"]))
            assert entry.statement.type == "licence.granted", entry.statement.type
            assert entry.statement.body["agreement"] == purchase["agreement"]
            assert entry.statement.member == purchase["buyer"]
            (transaction,) = session.exec(
                select(JournalTransaction).where(
                    JournalTransaction.reference == purchase["agreement"]
                )
            ).all()
            assert transaction.kind == "purchase" and transaction.seq == purchase["seq"]
            postings = session.exec(
                select(JournalPosting).where(col(JournalPosting.transaction_id) == transaction.id)
            ).all()
            assert sum(p.amount for p in postings) == 0
            paid = [
                p.amount for p in postings if p.account_id == member_account_id(purchase["buyer"])
            ]
            assert paid == [-purchase["price"]], (paid, purchase)
    engine.dispose()
    return {
        "purchases_checked": len(purchases),
        "books_total": served["total"],
        "unbalanced_transactions": served["unbalanced_transactions"],
        "drifted_accounts": served["drifted_accounts"],
        "every_purchase_has_agreement_entry_and_journal": True,
    }


# =============================================================================================
# A.3 may
# =============================================================================================


def run_may(market: Market, args: argparse.Namespace) -> dict[str, Any]:
    from exchange.db import read_only
    from exchange.evaluation import decide_use
    from ledger.entry import format_time
    from licensing.evaluation import Use

    rng = random.Random(args.seed + 3)
    now = datetime.now(UTC)
    questions = [
        Use(
            member=market.builder.id,
            version=rng.choice(market.versions),
            purpose=rng.choice(PURPOSES),
            commercial=rng.random() < 0.5,
            territory=rng.choice([None, "DE", "US"]),
            at=now,
        )
        for _ in range(args.may)
    ]
    before = load()
    http_times, answers = [], []
    with market.client(market.builder, timeout=60) as client:
        client.may(member=market.builder.id, version=market.versions[0], purpose="training")
        cpu_before = market.server.cpu()
        for use in questions:
            params = {
                "member": use.member,
                "version": use.version,
                "purpose": use.purpose,
                "commercial": str(use.commercial).lower(),
                "territory": use.territory,
                "at": format_time(use.at),
            }
            started = time.perf_counter()
            answers.append(client.may(**params)["permitted"])
            http_times.append(time.perf_counter() - started)
        server_cpu = cpu_before.per(market.server.cpu(), len(questions))
    engine = market.server.engine()
    fresh, shared, local = [], [], []
    for use in questions:  # a fresh read-only session per question, as the route opens one
        started = time.perf_counter()
        with read_only(engine) as session:
            decision = decide_use(session, use)
        fresh.append(time.perf_counter() - started)
        local.append(decision.permitted)
    with read_only(engine) as session:
        for use in questions:
            started = time.perf_counter()
            decide_use(session, use)
            shared.append(time.perf_counter() - started)
    engine.dispose()
    assert local == answers, "GET /may and decide_use disagree"
    result = {
        "questions": len(questions),
        "permitted": sum(answers),
        "http_ms": stats(http_times),
        "http_server_cpu_per_request": server_cpu,
        "decide_use_fresh_session_ms": stats(fresh),
        "decide_use_one_session_ms": stats(shared),
        "load_before": before,
        "load_after": load(),
    }
    say(
        f"{market.server.kind}: GET /may p50 {result['http_ms']['p50']:.1f} ms, decide_use p50 "
        f"{result['decide_use_fresh_session_ms']['p50']:.1f} ms"
    )
    return result


# =============================================================================================
# B. The service under load
# =============================================================================================


def run_load(server: Server, endpoint: Endpoint, args: argparse.Namespace) -> dict[str, Any]:
    """``args.load_procs`` processes x ``args.load_threads`` connections on one endpoint."""
    pushed = loadgen.Load(
        host="127.0.0.1",
        port=server.port,
        processes=args.load_procs,
        threads=args.load_threads,
        seconds=args.load_seconds,
        warmup=args.warmup,
    )
    cpu_before = server.cpu()
    raw = loadgen.run(pushed, endpoint)
    server_cpu = cpu_before.per(server.cpu(), raw["sent"])
    return {
        "endpoint": endpoint.label,
        "connections": pushed.connections,
        "seconds": args.load_seconds,
        "requests_per_s": len(raw["latencies"]) / args.load_seconds,
        "latency_ms": stats(raw["latencies"]),
        "sent": raw["sent"],
        "statuses": raw["statuses"],
        "errors": raw["failures"],
        "exhausted": raw["exhausted"],
        "server_cpu_per_request": server_cpu,
        "generator_cpu_per_request_ms": raw["generator_cpu_seconds"] / max(raw["sent"], 1) * 1e3,
        "load_before": raw["load_at_start"],
        "load_after": load(),
    }


def _presigned_attests(market: Market, count: int) -> tuple[Request, ...]:
    """``count`` ``attest.bench`` statements, each with its own nonce, signed now."""
    from exchange.signing import new_statement

    with market.client(market.builder) as client:
        origin = client.origin
    requests = []
    for i in range(count):
        signed = new_statement(
            "attest.bench",
            {"run": i, "score": round(random.random(), 6)},
            member=market.builder.id,
            key=market.builder.key,
            log=origin,
        )
        requests.append(Request("POST", "/ledger/attest", json.dumps(signed.to_json()).encode()))
    return tuple(requests)


def service_endpoints(market: Market, args: argparse.Namespace) -> list[Callable[[], Endpoint]]:
    """Each endpoint as a function that builds its requests just before its run (statements
    are signed then, inside the server's clock window)."""
    token = market.builder.token
    slugs = sorted({p.slug for p in market.plans})
    permitted = [
        v for plan, v in zip(market.plans, market.versions, strict=True) if plan.index % 5 != 4
    ]
    delivery = [
        Request(
            "POST",
            "/deliveries",
            json.dumps({"version": v, "purpose": "training", "commercial": True}).encode(),
        )
        for v in permitted
    ]
    return [
        lambda: Endpoint(
            "search",
            "GET /datasets?q=…",
            200,
            token,
            tuple(Request("GET", f"/datasets?q={w}") for w in SEARCH_WORDS),
        ),
        lambda: Endpoint(
            "detail",
            "GET /datasets/{slug}",
            200,
            token,
            tuple(Request("GET", f"/datasets/{slug}") for slug in slugs),
        ),
        lambda: Endpoint(
            "attest",
            "POST /ledger/attest (pre-signed)",
            201,
            token,
            _presigned_attests(market, args.attest_statements),
            once=True,
        ),
        lambda: Endpoint("deliveries", "POST /deliveries", 201, token, tuple(delivery)),
    ]


BARE = Endpoint("live", "GET /healthz/live (bare)", 200, None, (Request("GET", "/healthz/live"),))


def run_service(market: Market, args: argparse.Namespace) -> dict[str, Any]:
    server = market.server
    pairs = []
    for build in service_endpoints(market, args):
        endpoint = build()
        say(f"{server.kind}: load on {endpoint.label} beside the bare route")
        bare = run_load(server, BARE, args)
        size_before = server.size()
        measured = run_load(server, endpoint, args)
        written = server.size() - size_before
        created = measured["statuses"].get("201", 0)
        if endpoint.expect == 201:  # every accepted write is one entry, and nothing else is
            assert written == created, f"{endpoint.name}: {created} accepted, {written} entries"
        measured["ledger_entries_written"] = written
        pairs.append(
            {
                "name": endpoint.name,
                "bare": bare,
                "endpoint": measured,
                "ratio_to_bare": measured["requests_per_s"] / bare["requests_per_s"],
            }
        )
        say(
            f"{server.kind}: {endpoint.label}: {measured['requests_per_s']:.0f} req/s "
            f"(bare {bare['requests_per_s']:.0f}), p50 {measured['latency_ms'].get('p50', 0):.1f} ms"
        )
    return {
        "generator": f"benchmarks/loadgen.py: {args.load_procs} processes × "
        f"{args.load_threads} threads, one keep-alive http.client connection per thread",
        "pairs": pairs,
    }


# -- downloads --------------------------------------------------------------------------------


def _read_stream(
    base: str, path: str, headers: dict[str, str]
) -> tuple[int, float, int, dict[str, str], bytes]:
    """GET ``path`` reading 1 MiB at a time: bytes, seconds, status, headers, first KiB."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=300)
    started = time.perf_counter()
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    got, head = 0, b""
    while chunk := response.read(MIB):
        if not head:
            head = chunk[:1024]
        got += len(chunk)
    elapsed = time.perf_counter() - started
    connection.close()
    return got, elapsed, response.status, dict(response.getheaders()), head


def _python_read(path: Path) -> tuple[int, float]:
    started = time.perf_counter()
    got = 0
    with path.open("rb", buffering=0) as handle:
        while chunk := handle.read(MIB):
            got += len(chunk)
    return got, time.perf_counter() - started


def _cat(path: Path) -> float:
    started = time.perf_counter()
    subprocess.run(f"cat {shlex.quote(str(path))} > /dev/null", shell=True, check=True)
    return time.perf_counter() - started


def run_downloads(market: Market, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from exchange.publisher import publish_corpus
    from storage import open_store

    server = market.server
    say(f"{server.kind}: publishing a {args.blob_mib} MiB blob")
    folder = write_blob_corpus(workdir / f"blob-{server.kind}", mib=args.blob_mib, seed=args.seed)
    source = folder / "big.txt"
    provider = market.providers[0]
    started = time.perf_counter()
    with market.client(provider, timeout=1800) as client:
        result = publish_corpus(client, [folder], slug="big-blob", workers=2)
        version = result.manifest.version_id
        offer = client.publish_offer(
            dataset="big-blob",
            version=version,
            terms=Terms(purposes=ALL, commercial=True),
            price=Price(1),
        )
    publish_seconds = time.perf_counter() - started
    with market.client(market.builder, timeout=600) as client:
        client.buy(offer["id"])
        delivery = client.request_delivery(version, purpose="training", commercial=True)
    (link,) = delivery["files"]
    size, digest = int(link["size"]), str(link["sha256"])
    path = "/downloads/" + link["url"].rsplit("/downloads/", 1)[1]
    stored = Path(open_store(server.settings.resolved_blob_store).path_of(digest))  # type: ignore[attr-defined]
    assert stored.stat().st_size == size
    expected_head = _head(source)
    # Each worker hashes the whole blob once, before the first byte it serves of it (and
    # remembers it): one-byte ranges on fresh connections until every worker has, very likely.
    warmups = []
    for _ in range(4 * server.workers):
        _got, seconds, status, _headers, _first = _read_stream(
            server.base, path, {"Range": "bytes=0-0"}
        )
        assert status == 206
        warmups.append(seconds)

    rounds = []
    for n in range(args.downloads):
        before, cpu_before, client_cpu = load(), server.cpu(), time.process_time()
        got, seconds, status, _headers, head = _read_stream(server.base, path, {})
        client_cpu = time.process_time() - client_cpu
        server_cpu = cpu_before.per(server.cpu(), 1)["app_ms"]
        assert status == 200 and got == size and head == expected_head, (status, got)
        py_got, py_seconds = _python_read(stored)
        assert py_got == size
        cat_seconds = _cat(stored)
        rounds.append(
            {
                "round": n,
                "download_mib_s": size / MIB / seconds,
                "python_read_mib_s": size / MIB / py_seconds,
                "cat_mib_s": size / MIB / cat_seconds,
                "download_vs_python_read": py_seconds / seconds,
                "server_cpu_ms": server_cpu,
                "client_cpu_ms": client_cpu * 1e3,
                "load_before": before,
            }
        )
        say(
            f"{server.kind}: download {size / MIB / seconds:.0f} MiB/s, python read "
            f"{size / MIB / py_seconds:.0f} MiB/s, cat {size / MIB / cat_seconds:.0f} MiB/s"
        )
    # a whole download, checked byte for byte (outside the timed rounds)
    whole = _sha256_download(server.base, path)
    assert whole == digest, "the downloaded bytes do not hash to the file's digest"
    resumed = _resumed_ranges(server.base, path, size=size, stored=stored)
    return {
        "blob_bytes": size,
        "publish_seconds": publish_seconds,
        "first_byte_warmups_ms": [x * 1e3 for x in warmups],
        "rounds": rounds,
        "whole_download_sha256_ok": True,
        "ranges": resumed,
    }


def _head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(1024)


def _sha256_download(base: str, path: str) -> str:
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=300)
    connection.request("GET", path)
    response = connection.getresponse()
    digest = hashlib.sha256()
    while chunk := response.read(MIB):
        digest.update(chunk)
    connection.close()
    return digest.hexdigest()


def _resumed_ranges(base: str, path: str, *, size: int, stored: Path) -> list[dict[str, Any]]:
    """Resumes as ``fetch_version`` makes them (``bytes=N-``) and fixed windows, each beside a
    Python read of the same byte range from the stored file; a range's first KiB is compared."""
    half, quarter = size // 2, size // 4
    ranges = [
        ("resume from the middle", f"bytes={half}-", half, size),
        ("resume the last quarter", f"bytes={size - quarter}-", size - quarter, size),
        ("window of a quarter", f"bytes={quarter}-{2 * quarter - 1}", quarter, 2 * quarter),
    ]
    rows = []
    for label, header, start, end in ranges:
        got, seconds, status, headers, head = _read_stream(base, path, {"Range": header})
        assert status == 206 and got == end - start, (label, status, got)
        assert headers.get("content-range") == f"bytes {start}-{end - 1}/{size}", headers
        with stored.open("rb") as handle:
            handle.seek(start)
            assert handle.read(len(head)) == head, label
            read_started = time.perf_counter()
            handle.seek(start)
            left = end - start
            while left > 0 and (chunk := handle.read(min(MIB, left))):
                left -= len(chunk)
            read_seconds = time.perf_counter() - read_started
        rows.append(
            {
                "range": label,
                "header": header,
                "bytes": got,
                "download_mib_s": got / MIB / seconds,
                "python_read_mib_s": got / MIB / read_seconds,
                "load": load(),
            }
        )
    return rows


# =============================================================================================
# The report
# =============================================================================================


def _pg_version() -> str:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as connection:
            row = connection.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else "unknown"
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})"


def collect_meta(args: argparse.Namespace, command: str) -> dict[str, Any]:
    import sqlite3

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "date": datetime.now().date().isoformat(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine_info(),
        "versions": {
            "python": platform.python_version(),
            "postgresql": _pg_version() if "postgres" in args.databases else "not used",
            "sqlite": sqlite3.sqlite_version,
            **{
                p: version(p)
                for p in ("fastapi", "uvicorn", "starlette", "sqlalchemy", "psycopg", "httpx")
            },
        },
        "code": {
            "git_head": _git("rev-parse", "--short", "HEAD"),
            "uncommitted_changes": _git(
                "status",
                "--porcelain",
                "--",
                "exchange",
                "catalog",
                "licensing",
                "ledger",
                "storage",
            ).splitlines(),
            "sha256_prefix_of_files_under_test": {
                name: hashlib.sha256((ROOT / name).read_bytes()).hexdigest()[:16]
                for name in CODE_UNDER_TEST
            },
        },
        "parameters": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in vars(args).items()
            if k not in ("out", "sections", "databases", "buyer_phases")
        },
    }


def _ms(s: dict[str, Any], key: str = "p50") -> str:
    return f"{s[key]:,.1f}" if key in s else "–"


def _cpu(cpu: dict[str, float]) -> str:
    return f"{cpu['app_ms']:,.1f} + {cpu['database_ms']:,.1f}"


def _load_text(values: Sequence[float]) -> str:
    return ", ".join(f"{x:.1f}" for x in values)


def render(results: dict[str, Any]) -> str:
    m = results["meta"]
    machine = m["machine"]
    v = m["versions"]
    lines = [
        f"# Service benchmarks — {m['date']}",
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
        f"| load average at start | {_load_text(machine['loadavg'])} |",
        f"| versions | Python {v['python']}, PostgreSQL {v['postgresql']}, SQLite {v['sqlite']}, "
        f"FastAPI {v['fastapi']}, uvicorn {v['uvicorn']}, Starlette {v['starlette']}, "
        f"SQLAlchemy {v['sqlalchemy']}, psycopg {v['psycopg']}, httpx {v['httpx']} |",
        f"| code | git {m['code']['git_head']}; uncommitted changes under exchange/ catalog/ licensing/ "
        f"ledger/ storage/: {', '.join(m['code']['uncommitted_changes']) or 'none'} |",
        f"| server | `corpusx serve --workers {m['parameters']['workers']}` (its own process; "
        "access log on, as shipped; checkpoints every 5 s) |",
        f"| wall time | {results['wall_seconds']:.0f} s |",
        "",
        "The machine is shared and was loaded (load averages beside every figure; 2 cores): the "
        "server, the load generator and other people's work compete for the same two cores. Read "
        "the ratios measured side by side in the same run; absolute figures move by tens of "
        "percent between runs. No figure here is asserted by any test.",
        "",
    ]
    for kind, db in results["databases"].items():
        lines += [f"## {kind}", ""]
        if "error" in db:
            lines += [f"**The run failed:** `{db['error']}`", ""]
        if "setup_seconds" in db:
            lines += [
                "Set up through the API: "
                + ", ".join(
                    f"{k.replace('_', ' ')} {s:.0f} s" for k, s in db["setup_seconds"].items()
                )
                + ".",
                "",
            ]
        if "compliance" in db:
            lines += _render_compliance(db["compliance"])
        if "purchases" in db:
            lines += _render_purchases(db["purchases"])
        if "may" in db:
            lines += _render_may(db["may"])
        if "service" in db:
            lines += _render_service(db["service"])
        if "downloads" in db:
            lines += _render_downloads(db["downloads"])
    return "\n".join(lines) + "\n"


def _render_compliance(c: dict[str, Any]) -> list[str]:
    met = "yes" if c["http_ms"]["p50"] < 1000 else "no"
    met99 = "yes" if c["http_ms"]["p99"] < 1000 else "no"
    app, database = c["http_server_cpu_ms"]["app"], c["http_server_cpu_ms"]["database"]
    lines = [
        "### Compliance check",
        "",
        f"{c['items']:,} items ({', '.join(f'{k} {n:,}' for k, n in c['item_kinds'].items())}) against "
        f"{c['agreements']:,} agreements of the builder, {c['agreements_used']} of them covering items. "
        f"Verdicts: {', '.join(f'{k} {n:,}' for k, n in c['counts'].items())}. Request "
        f"{c['request_bytes'] / 1e6:.2f} MB, response {c['response_bytes'] / 1e6:.2f} MB. "
        f"Load {_load_text(c['load_before'])} before, {_load_text(c['load_after'])} after.",
        "",
        "| | wall p50 ms | wall p99 ms | wall min ms | CPU p50 ms | runs | target < 1 s met (wall p50 / p99) |",
        "|---|---|---|---|---|---|---|",
        f"| **`POST /compliance/check`** end to end | {_ms(c['http_ms'])} | "
        f"{_ms(c['http_ms'], 'p99')} | {_ms(c['http_ms'], 'min')} | server {_ms(app)} + its database "
        f"{_ms(database)}; client {_ms(c['http_client_cpu_ms'])} | {c['http_ms']['n']} | **{met} / {met99}** |",
        f"| `check_manifest` in this process, same database | {_ms(c['in_process_ms'])} | "
        f"{_ms(c['in_process_ms'], 'p99')} | {_ms(c['in_process_ms'], 'min')} | {_ms(c['in_process_cpu_ms'])} | "
        f"{c['in_process_ms']['n']} | |",
        "",
        "CPU of the server is the CPU time its processes (and the PostgreSQL backends of its "
        "database) used during each request, from /proc: unlike wall time it hardly depends on how "
        "many other processes want the two cores. Wall time ≈ CPU time ÷ the share of a core the "
        "server gets.",
        "",
        "Steps of the in-process path (wrappers around the functions `check_manifest` calls; "
        "CPU = this process's own):",
        "",
        "| Step | wall p50 ms | wall p99 ms | CPU p50 ms |",
        "|---|---|---|---|",
    ]
    for label, s in c["steps_ms"].items():
        lines.append(f"| {label} | {_ms(s)} | {_ms(s, 'p99')} | {_ms(c['steps_cpu_ms'][label])} |")
    f = c["fixes"]
    lines += [
        "",
        "The two lookups this benchmark changed, before and after the change, alternating in one "
        "session on the same data (CPU of this process; same answers checked):",
        "",
        "| Lookup | before CPU p50 ms | after CPU p50 ms | after ÷ before |",
        "|---|---|---|---|",
        f"| the builder's agreements (`grants_of`: terms parsed once per distinct text) | "
        f"{_ms(f['grants_before'])} | {_ms(f['grants_after'])} | {f['grants_after_over_before']:.2f} |",
        f"| document hashes (`versions_with_documents`, in memory since migration 0008; "
        f"the SQL lookup it replaced is gone) | – | {_ms(f['documents_after'])} | – |",
    ]
    lines += [
        "",
        "What HTTP adds, each part measured (CPU) in this process on the same request and report:",
        "",
        "| Part | CPU p50 ms | CPU p99 ms |",
        "|---|---|---|",
    ]
    for label, s in c["http_steps_ms"].items():
        lines.append(f"| {label} | {_ms(s)} | {_ms(s, 'p99')} |")
    lines += [
        "",
        "cProfile of one in-process check (parse + `check_manifest` + `to_json`), by own time. "
        "The profiler inflates fine-grained pure-Python code (RFC 8785 canonical JSON, per-item "
        "loops) several-fold; the CPU table above is the measure, this says where to look:",
        "",
        "| Function | calls | own ms | cumulative ms |",
        "|---|---|---|---|",
    ]
    for row in c["profile"][:12]:
        lines.append(
            f"| `{row['function']}` | {row['calls']:,} | {row['tottime_ms']:,.1f} | {row['cumtime_ms']:,.1f} |"
        )
    return [*lines, ""]


def _render_purchases(p: dict[str, Any]) -> list[str]:
    lines = [
        "### Purchases",
        "",
        "Each buyer process is a buyer of its own, buying distinct offers back to back with "
        "`ExchangeClient.buy` (offer fetch, its `offer.published` entry check, the signed accept). "
        "Throughput = purchases ÷ (last finish − first start).",
        "",
        "| Buyer processes | purchases | purchases/s | × 1 process | accept p50 ms | accept p99 ms | whole purchase p50 ms | server CPU per purchase ms (app + database) | load before → after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for phase in p["phases"].values():
        lines.append(
            f"| {phase['processes']} | {phase['purchases']} | {phase['purchases_per_s']:.1f} | "
            f"{phase['vs_one_process']:.2f} | {_ms(phase['accept_ms'])} | {_ms(phase['accept_ms'], 'p99')} | "
            f"{_ms(phase['purchase_ms'])} | {_cpu(phase['server_cpu_per_purchase'])} | "
            f"{_load_text(phase['load_before'])} → {_load_text(phase['load_after'])} |"
        )
    checks = p["checks"]
    lines += [
        "",
        f"Checked afterwards: the books sum to {checks['books_total']} with "
        f"{checks['unbalanced_transactions']} unbalanced transactions and no drifted account; each of "
        f"the {checks['purchases_checked']} purchases has its agreement, its `licence.granted` entry "
        "signed by its buyer, and one balanced `purchase` journal transaction at that entry's seq.",
        "",
    ]
    return lines


def _render_may(m: dict[str, Any]) -> list[str]:
    return [
        "### Single decisions (`may`)",
        "",
        f"{m['questions']} random questions about the builder ({m['permitted']} permitted); "
        f"load {_load_text(m['load_before'])} → {_load_text(m['load_after'])}.",
        "",
        "| | p50 ms | p99 ms | min ms |",
        "|---|---|---|---|",
        f"| `GET /may` (one keep-alive client; server CPU per request {_cpu(m['http_server_cpu_per_request'])} ms, app + database) | "
        f"{_ms(m['http_ms'])} | {_ms(m['http_ms'], 'p99')} | {_ms(m['http_ms'], 'min')} |",
        f"| `decide_use`, a fresh read-only session each (as the route) | {_ms(m['decide_use_fresh_session_ms'])} | "
        f"{_ms(m['decide_use_fresh_session_ms'], 'p99')} | {_ms(m['decide_use_fresh_session_ms'], 'min')} |",
        f"| `decide_use`, one session for all | {_ms(m['decide_use_one_session_ms'])} | "
        f"{_ms(m['decide_use_one_session_ms'], 'p99')} | {_ms(m['decide_use_one_session_ms'], 'min')} |",
        "",
    ]


def _render_service(s: dict[str, Any]) -> list[str]:
    lines = [
        "### The API under load",
        "",
        f"Generator: {s['generator']}, on loopback, the same for every endpoint; each endpoint "
        "right after the bare route. Requests/s counts answers with the expected status in the "
        "measured window. The generator shares the two cores with the server: it used "
        + ", ".join(
            f"{p['endpoint']['generator_cpu_per_request_ms']:.2f} ms ({p['name']}) / "
            f"{p['bare']['generator_cpu_per_request_ms']:.2f} ms (bare)"
            for p in s["pairs"]
        )
        + " of CPU per request.",
        "",
        "| Endpoint | req/s | ÷ bare | p50 ms | p99 ms | server CPU per request ms (app + database ≥) | errors | bare req/s | bare p50 ms | bare p99 ms | bare CPU per request ms | load before |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for pair in s["pairs"]:
        e, b = pair["endpoint"], pair["bare"]
        note = " (statements ran out)" if e["exhausted"] else ""
        lines.append(
            f"| {e['endpoint']}{note} | {e['requests_per_s']:,.0f} | {pair['ratio_to_bare']:.2f} | "
            f"{_ms(e['latency_ms'])} | {_ms(e['latency_ms'], 'p99')} | {_cpu(e['server_cpu_per_request'])} | "
            f"{e['errors']} | {b['requests_per_s']:,.0f} | {_ms(b['latency_ms'])} | {_ms(b['latency_ms'], 'p99')} | "
            f"{b['server_cpu_per_request']['app_ms']:,.2f} | "
            f"{_load_text(b['load_before'])} |"
        )
    writes = [p for p in s["pairs"] if p["endpoint"]["ledger_entries_written"]]
    if writes:
        lines += [
            "",
            "Checked: "
            + "; ".join(
                f"{p['name']}: {p['endpoint']['statuses'].get('201', 0)} accepted, "
                f"{p['endpoint']['ledger_entries_written']} ledger entries written"
                for p in writes
            )
            + ".",
        ]
    return [*lines, ""]


def _render_downloads(d: dict[str, Any]) -> list[str]:
    lines = [
        "### Downloads",
        "",
        f"A {d['blob_bytes'] / MIB:.0f} MiB blob (published in {d['publish_seconds']:.0f} s). Each "
        "worker hashes the whole blob once, before the first byte it serves (and remembers it): "
        f"{len(d['first_byte_warmups_ms'])} one-byte ranges on fresh connections took "
        + ", ".join(f"{x:,.0f}" for x in d["first_byte_warmups_ms"])
        + " ms, so the rounds below stream only. Each round: a whole download by a client reading "
        "1 MiB at a time, then the same stored file read by Python in 1 MiB chunks and by "
        "`cat FILE > /dev/null` (the file is in the page cache).",
        "",
        "| Round | download MiB/s | Python read MiB/s | cat MiB/s | download ÷ Python read | server CPU ms | client CPU ms | load before |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in d["rounds"]:
        lines.append(
            f"| {r['round'] + 1} | {r['download_mib_s']:,.0f} | {r['python_read_mib_s']:,.0f} | "
            f"{r['cat_mib_s']:,.0f} | {r['download_vs_python_read']:.2f} | {r['server_cpu_ms']:,.0f} | "
            f"{r['client_cpu_ms']:,.0f} | {_load_text(r['load_before'])} |"
        )
    lines += [
        "",
        "Resumed (`Range`) downloads, each beside a Python read of the same range:",
        "",
        "| Range | header | MiB | download MiB/s | Python read MiB/s | load |",
        "|---|---|---|---|---|---|",
    ]
    for r in d["ranges"]:
        lines.append(
            f"| {r['range']} | `{r['header']}` | {r['bytes'] / MIB:.0f} | {r['download_mib_s']:,.0f} | "
            f"{r['python_read_mib_s']:,.0f} | {_load_text(r['load'])} |"
        )
    lines += [
        "",
        "Checked: a whole download hashes to the file's SHA-256; every range has its exact length, `Content-Range` and first bytes.",
        "",
    ]
    return lines


# =============================================================================================
# main
# =============================================================================================


def run_database(kind: str, args: argparse.Namespace, workdir: Path, out: dict[str, Any]) -> None:
    """Every selected section on one database; ``out`` keeps what finished if one fails."""
    say(f"{kind}: preparing the exchange")
    server = Server(
        kind,
        workdir,
        workers=args.workers,
        ingest_workers=args.ingest_workers,
        suffix=args.db_suffix,
    )
    try:
        server.start()
        market = open_market(server, args, workdir)
        out["setup_seconds"] = market.setup_seconds
        if "market" in args.sections:
            out["compliance"] = run_compliance(market, args)
            out["may"] = run_may(market, args)
            out["purchases"] = run_purchases(market, args)
        if "http" in args.sections:
            out["service"] = run_service(market, args)
            out["downloads"] = run_downloads(market, args, workdir)
    finally:
        server.stop()
        if not args.keep:
            server.drop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    given = argv if argv is not None else sys.argv[1:]
    command = "python benchmarks/service_bench.py" + (f" {shlex.join(given)}" if given else "")
    started = time.perf_counter()
    results: dict[str, Any] = {"meta": collect_meta(args, command), "databases": {}}
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="corpusx-service-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    failed = False
    try:
        for kind in args.databases:
            out = results["databases"][kind] = {}
            try:
                run_database(kind, args, workdir, out)
            except Exception as exc:
                failed = True
                out["error"] = f"{type(exc).__name__}: {exc}"
                say(f"{kind}: FAILED: {type(exc).__name__}: {exc}")
                import traceback

                traceback.print_exc()
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    results["wall_seconds"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"service-{results['meta']['date']}" + (f"-{args.tag}" if args.tag else "")
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (args.out / f"{stem}.md").write_text(render(results))
    say(f"wrote {args.out / stem}.md and .json")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
