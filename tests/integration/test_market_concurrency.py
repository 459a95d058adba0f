"""The market under load: four client processes trading at once against two server workers.

``corpusx serve --workers 2`` on PostgreSQL with blobs on the S3 server, both workers running the
checkpoint schedule every quarter second. Two members, each a provider and a buyer, each driven
by two processes at once (so one balance and one dataset have two concurrent writers), publish
new versions (sometimes of a dataset neither process has created yet), publish offers, buy each
other's offers and fetch what they bought, for ``DURATION`` seconds, while the operator deposits.

Afterwards: the log has every seq 0..n-1 once, each ``prev`` the leaf hash before, and passes
``corpusx audit verify``; the books balance, every balance equals the balance recomputed from the
entries themselves, every agreement has its entry and its payment and vice versa, and
``check_integrity`` finds nothing. A 503 (database busy) is retried, as clients do; a 409 is a
legitimate refusal (a label taken meanwhile, a balance spent by the other process); any other
refusal or error fails the test.
"""

from __future__ import annotations

import random
import secrets
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from multiprocessing import get_context
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from exchange.client import ClientError, ExchangeClient
from exchange.db import make_engine
from exchange.fetcher import fetch_version
from exchange.integrity import check_integrity
from exchange.publisher import publish_corpus
from ledger.entry import Entry
from ledger.merkle import leaf_hash
from ledger.sql import LedgerCheckpointRow
from ledger.tiles import TILE_WIDTH, decode_entry_bundle, entries_path
from licensing.terms import Price, Terms
from tests.deployment import Deployment
from tests.market_load import Trader, operator, register_trader, retrying, write_corpus

DURATION = 25.0
PROCESSES_PER_MEMBER = 2
MEMBERS = ("north", "south")
CREDITS = 600
TERMS = Terms(purposes=frozenset({"training"}))
WEIGHTS = {"publish": 2, "offer": 2, "buy": 5, "fetch": 2}


@dataclass(frozen=True)
class Job:
    trader: Trader
    seed: int
    scratch: str


@dataclass(frozen=True)
class Tally:
    member: str
    outcomes: dict[str, int]  # "action status" -> count
    failures: list[str]
    retries: int


def _words(rng: random.Random, count: int) -> str:
    return " ".join(
        secrets.token_hex(3) if rng.random() < 0.5 else str(rng.random()) for _ in range(count)
    )


def _publish(client: ExchangeClient, job: Job, rng: random.Random, step: int) -> None:
    # Every ~3 s both processes of a member race to create the same new dataset.
    slug = f"{job.trader.member}-{int(time.time() // 3) % 4}" if rng.random() < 0.3 else None
    corpus = Path(job.scratch) / f"corpus-{step}"
    write_corpus(corpus, _words(rng, 8))
    try:
        publish_corpus(client, [corpus], slug=slug or f"{job.trader.member}-main", workers=1)
    finally:
        shutil.rmtree(corpus, ignore_errors=True)


def _offer(client: ExchangeClient, job: Job, rng: random.Random, step: int) -> None:
    client.publish_offer(
        dataset=f"{job.trader.member}-main",
        version=None,
        terms=TERMS,
        price=Price(rng.randint(1, 40)),
    )


def _buy(client: ExchangeClient, job: Job, rng: random.Random, step: int) -> None:
    offers = [o for o in client.offers() if o["provider"] != job.trader.member and o["open"]]
    if offers:
        client.buy(rng.choice(offers)["id"])


def _fetch(client: ExchangeClient, job: Job, rng: random.Random, step: int) -> None:
    mine = [a for a in client.licences() if a["assignee"] == job.trader.member]
    if not mine:
        return
    target = Path(job.scratch) / f"fetch-{step}"
    try:
        fetch_version(client, rng.choice(mine)["target"], target, purpose="training")
    finally:
        shutil.rmtree(target, ignore_errors=True)


ACTIONS: dict[str, Callable[[ExchangeClient, Job, random.Random, int], None]] = {
    "publish": _publish,
    "offer": _offer,
    "buy": _buy,
    "fetch": _fetch,
}


def _trade(job: Job) -> Tally:
    """One client process: random actions until the deadline; every outcome counted."""
    rng = random.Random(job.seed)
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    retries: list[int] = []
    names, weights = list(WEIGHTS), list(WEIGHTS.values())
    until = time.monotonic() + DURATION
    with job.trader.client() as client:
        step = 0
        while time.monotonic() < until:
            step += 1
            name = rng.choices(names, weights)[0]
            try:
                retrying(partial(ACTIONS[name], client, job, rng, step), retries=retries)
                outcomes[f"{name} ok"] += 1
            except ClientError as exc:
                outcomes[f"{name} {exc.status}"] += 1
                if exc.status != 409:
                    failures.append(f"{job.trader.member} {name}: {exc}")
    return Tally(job.trader.member, dict(outcomes), failures, len(retries))


def _setup(deployment: Deployment, tmp_path: Path) -> list[Trader]:
    traders = []
    for member in MEMBERS:
        trader = register_trader(deployment, member, ["buyer", "provider"])
        with trader.client() as client:
            publish_corpus(client, [write_corpus(tmp_path / member, member)], slug=f"{member}-main")
            client.publish_offer(
                dataset=f"{member}-main", version=None, terms=TERMS, price=Price(5)
            )
        traders.append(trader)
    with operator(deployment).client() as client:
        for member in MEMBERS:
            client.deposit(member, CREDITS, "opening balance")
    return traders


def _log(client: ExchangeClient, size: int) -> list[Entry]:
    """Every entry up to ``size``, fetched as an auditor does (c2sp entry bundles)."""
    entries: list[Entry] = []
    for index in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, size - index * TILE_WIDTH)
        path = entries_path(index, None if width == TILE_WIDTH else width)
        entries.extend(Entry.from_bytes(d) for d in decode_entry_bundle(client.tile(path), width))
    return entries


def _balances_from(entries: list[Entry]) -> dict[str, int]:
    """Deposits - withdrawals - purchases + sales (and fees), from the entries alone."""
    balances: Counter[str] = Counter()
    for entry in entries:
        kind, body = entry.statement.type, entry.statement.body
        if kind in ("account.deposited", "account.withdrawn"):
            sign = 1 if kind == "account.deposited" else -1
            balances[f"member:{body['member']}"] += sign * body["amount"]
            balances["external"] -= sign * body["amount"]
        elif kind == "licence.granted":
            price = body["price"]["amount"]
            balances[f"member:{body['assignee']}"] -= price
            balances[f"member:{body['assigner']}"] += price - body["fee"]
            balances["exchange:fees"] += body["fee"]
    return {account: amount for account, amount in balances.items() if amount}


def _check_market(deployment: Deployment, tallies: list[Tally]) -> int:
    """The log and the books, as an auditor sees them through the API; the log's size."""
    with operator(deployment).client() as client:
        client.issue_checkpoint()
        size = int(client.get_json("/healthz")["size"])
        entries = _log(client, size)
        books = client.books()
        agreements = {
            (a["id"], a["granted_seq"]) for m in MEMBERS for a in client.licences(member=m)
        }
    # No gaps, no forks: 0..n-1 once each, each prev the leaf hash of the entry before.
    assert [e.seq for e in entries] == list(range(size))
    for before, entry in pairwise(entries):
        assert entry.prev == leaf_hash(before.canonical()).hex(), f"fork at {entry.seq}"
    # Money: conserved, and every balance is what the entries say it is.
    assert books["total"] == 0 and books["unbalanced_transactions"] == 0
    assert books["drifted_accounts"] == []
    held = {account: amount for account, amount in books["accounts"].items() if amount}
    assert held == _balances_from(entries)
    # Every agreement has its entry, and every licence.granted entry its agreement.
    granted = {
        (e.statement.body["agreement"], e.seq)
        for e in entries
        if e.statement.type == "licence.granted"
    }
    assert agreements == granted
    bought = sum(t.outcomes.get("buy ok", 0) for t in tallies)
    assert len(granted) >= bought  # a "buy ok" with no offer to buy adds none
    return size


def _run(job: Job, ready: Barrier, results: Queue[Tally]) -> None:
    ready.wait()  # every process starts trading at the same moment, imports done
    results.put(_trade(job))


@pytest.mark.slow
@pytest.mark.checkpoint_interval(0.25)
def test_four_processes_trade_against_two_workers(deployment: Deployment, tmp_path: Path) -> None:
    traders = _setup(deployment, tmp_path)
    jobs = [
        Job(trader, seed, str(tmp_path / f"worker-{seed}"))
        for seed, trader in enumerate(t for t in traders for _ in range(PROCESSES_PER_MEMBER))
    ]
    context = get_context("spawn")
    ready, results = context.Barrier(len(jobs) + 1), context.Queue()
    processes = [context.Process(target=_run, args=(job, ready, results)) for job in jobs]
    for process in processes:
        process.start()
    ready.wait(timeout=300)
    deposits, until = 0, time.monotonic() + DURATION
    with operator(deployment).client() as client:  # the operator deposits meanwhile
        while time.monotonic() < until:
            retrying(lambda: client.deposit(random.choice(MEMBERS), 25, "top-up"))
            deposits += 1
            time.sleep(1)
    tallies = [results.get(timeout=300) for _ in jobs]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0

    failures = [f for t in tallies for f in t.failures]
    assert failures == [], failures
    outcomes: Counter[str] = Counter()
    for tally in tallies:
        outcomes.update(tally.outcomes)
    for action in WEIGHTS:  # each kind of work really ran, concurrently, and succeeded
        assert outcomes[f"{action} ok"] >= 2, outcomes
    size = _check_market(deployment, tallies)

    engine = make_engine(deployment.database_url)
    try:
        report = check_integrity(engine)
        with Session(engine) as session:
            checkpoints = session.exec(select(func.count()).select_from(LedgerCheckpointRow)).one()
    finally:
        engine.dispose()
    assert report.ok, report.problems
    assert report.size == size
    assert checkpoints > 10  # both workers' schedules ran all along, never in each other's way
    audited = deployment.cli.json("audit", "verify", "--server", deployment.url)
    assert audited["ok"] and audited["size"] == size
    assert deployment.server.failures_logged() == []
    print(  # the figures for the report (pytest -s)
        f"\n{DURATION:.0f}s, {len(jobs)} processes: {dict(sorted(outcomes.items()))}, "
        f"{sum(t.retries for t in tallies)} retried 503s, {deposits} deposits, "
        f"{report.size} entries, {checkpoints} checkpoints"
    )
