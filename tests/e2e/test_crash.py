"""Crash safety: the server SIGKILLed at random moments while members publish and buy.

``corpusx serve --workers 2`` on PostgreSQL with blobs on the S3 server. A provider publishes
versions and offers them, a buyer buys each offer and asks for deliveries, the operator deposits
credits — without pause, from two threads. Meanwhile the test SIGKILLs a worker (the uvicorn
supervisor starts a new one) or, every ``GROUP_EVERY``-th time, the whole server (supervisor
and workers at once, as a power cut would) and starts it again.

After every kill, while the rest of the server keeps serving: ``check_integrity`` finds the
database telling one story (no version without its files, entry and overlap index; no agreement
without its entry and payment; no entry without its state; the books balanced) and the local
audit (signatures, chain, tree, append-only since the last audit) passes; after every restart
``corpusx audit verify --local`` passes and both workers answer. Every operation is sent again,
byte for byte, until the exchange answers it: a retry after a lost answer finds its effect
already recorded (409), anything else succeeds exactly once — the test knows what it did, and
the catalogue and every balance must say exactly that.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from catalog.ingest import ingest, scan
from catalog.models import DatasetVersion
from exchange.audit import audit_local
from exchange.client import ClientError, ExchangeClient
from exchange.db import make_engine
from exchange.integrity import check_integrity
from exchange.logkey import load_log_key
from exchange.publisher import publication_request, publish_corpus
from ledger.entry import format_time
from licensing.models import Agreement, Offer
from licensing.statements import (
    GRANTED,
    OFFER_PUBLISHED,
    agreement_body,
    new_agreement_id,
    new_offer_id,
    offer_body,
)
from licensing.terms import Price, Terms
from tests.deployment import Deployment
from tests.market_load import Trader, operator, register_trader, write_corpus

KILLS = 20
GROUP_EVERY = 6  # every 6th kill takes the whole server down; the others one worker
CREDITS = 1_000_000
DEPOSIT = 10
TERMS = Terms(purposes=frozenset({"training"}))
ANSWER_WITHIN = 240.0  # seconds a request may wait for a restarting server


class Unexpected(Exception):
    """An answer the exchange should never give here."""


@dataclass
class Done:
    """What the load did, as the test knows it (the exchange must say exactly this)."""

    versions: list[str] = field(default_factory=list)
    offers: dict[str, int] = field(default_factory=dict)  # id -> price
    agreements: dict[str, int] = field(default_factory=dict)  # id -> price
    bought: set[str] = field(default_factory=set)  # offers with an agreement
    deposits: int = 0
    deliveries: int = 0
    interrupted: int = 0  # operations cut off by a crash at least once (no answer)
    recorded_before: int = 0  # retries the exchange answered "already recorded" (409)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _send(client: ExchangeClient, done: Done, method: str, path: str, body: Any) -> Any:
    """Send exactly this request until the exchange answers; its answer (None: a 409 retry).

    A 409 is only right for a retry whose earlier attempt got no answer: the effect was
    recorded before the crash. Any other refusal, or any 5xx but a busy 503, is a failure.
    """
    uncertain = False
    deadline = time.monotonic() + ANSWER_WITHIN
    while True:
        try:
            return client.request(method, path, json=body).json()
        except ClientError as exc:
            retry = exc.status is None or exc.status == 503
            if exc.status is None and not uncertain:  # counted once per operation
                uncertain = True
                with done.lock:
                    done.interrupted += 1
            if exc.status == 409 and uncertain:
                with done.lock:
                    done.recorded_before += 1
                return None
            if not retry or time.monotonic() > deadline:
                raise Unexpected(f"{method} {path}: {exc}") from None
            time.sleep(0.2)


def _learn_origin(client: ExchangeClient) -> None:
    """The log's origin, which ``sign`` fetches on first use with no retry: fetched here first,
    retried like any request, so that a kill at that moment is not taken for a failure."""
    deadline = time.monotonic() + ANSWER_WITHIN
    while True:
        try:
            client.origin  # noqa: B018 (fetched and kept by the property)
            return
        except ClientError as exc:
            if exc.status not in (None, 503) or time.monotonic() > deadline:
                raise Unexpected(f"origin: {exc}") from None
            time.sleep(0.2)


def _upload(client: ExchangeClient, corpus: Path, done: Done) -> Any:
    """Ingest locally and upload the blobs (PUT is idempotent: retried as it is)."""
    sources = {source.name: source for source in scan([corpus])}
    manifest = ingest(list(sources.values()), workers=1)
    for file in manifest.files:
        deadline = time.monotonic() + ANSWER_WITHIN
        while True:
            try:
                client.upload_blob(file.sha256, sources[file.name].path)
                break
            except ClientError as exc:
                if exc.status not in (None, 503) or time.monotonic() > deadline:
                    raise Unexpected(f"upload: {exc}") from None
                time.sleep(0.2)
    return manifest


def _provide(trader: Trader, done: Done, stop: threading.Event, scratch: Path) -> None:
    """Publish a new version, offer it; again, until told to stop."""
    with trader.client(timeout=ANSWER_WITHIN) as client:
        _learn_origin(client)
        step = 1
        while not stop.is_set():
            step += 1
            corpus = write_corpus(
                scratch / f"v{step}", f"crash corpus {step} {os.urandom(4).hex()}"
            )
            manifest = _upload(client, corpus, done)
            body = publication_request(client, manifest, slug="crash", label=f"v{step}")
            _send(client, done, "POST", "/datasets/crash/versions", body)
            with done.lock:
                done.versions.append(manifest.version_id)
            price = random.randint(1, 500)
            offer = offer_body(
                offer_id=new_offer_id(),
                dataset="crash",
                version=manifest.version_id,
                terms=TERMS,
                price=Price(price),
                valid_from=format_time(datetime.now(UTC)),
                valid_until=None,
                buyer=None,
            )
            signed = client.sign(OFFER_PUBLISHED, offer)
            _send(client, done, "POST", "/offers", signed.to_json())
            with done.lock:
                done.offers[offer["offer"]] = price


def _buy(buyer: Trader, admin: Trader, done: Done, stop: threading.Event) -> None:
    """Buy every offer once, ask for a delivery now and then; the operator deposits."""
    with buyer.client(timeout=ANSWER_WITHIN) as client, admin.client() as operator_client:
        _learn_origin(client)
        _learn_origin(operator_client)
        round_ = 0
        while not stop.is_set():
            round_ += 1
            with done.lock:
                todo = [o for o in done.offers if o not in done.bought]
            if not todo:
                time.sleep(0.1)
                continue
            offer_id = todo[0]
            offer = _send(client, done, "GET", f"/offers/{offer_id}", None)
            now = datetime.now(UTC)
            body = agreement_body(
                offer,
                agreement_id=new_agreement_id(),
                buyer=buyer.member,
                version=offer["version"],
                at=format_time(now),
            )
            signed = client.sign(GRANTED, body, now=now)
            _send(client, done, "POST", f"/offers/{offer_id}/accept", signed.to_json())
            with done.lock:
                done.agreements[body["agreement"]] = offer["price"]["amount"]
                done.bought.add(offer_id)
            if round_ % 3 == 0:
                _deposit(operator_client, buyer.member, done)
                request = {"version": offer["version"], "purpose": "training"}
                _send(client, done, "POST", "/deliveries", request)
                with done.lock:
                    done.deliveries += 1


def _deposit(client: ExchangeClient, member: str, done: Done) -> None:
    statement = client.sign(
        "account.deposited", {"member": member, "amount": DEPOSIT, "reference": "top-up"}
    )
    _send(client, done, "POST", f"/accounts/{member}/deposits", statement.to_json())
    with done.lock:
        done.deposits += 1


def _guarded(work: Any, done: Done, *args: Any) -> threading.Thread:
    def run() -> None:
        try:
            work(*args)
        except Exception as exc:  # recorded: the test fails with it after the kills
            with done.lock:
                done.failures.append(f"{work.__name__}: {type(exc).__name__}: {exc}")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@dataclass
class Checker:
    """The checks run after every crash, on the operator's machine."""

    deployment: Deployment
    audit_state: Path

    def __post_init__(self) -> None:
        self.engine = make_engine(self.deployment.database_url)
        self.verifier = load_log_key(self.deployment.data_dir / "log.key", None).verifier

    def after_crash(self, kill: int) -> None:
        report = check_integrity(self.engine)  # one snapshot, while the rest serves
        assert report.ok, f"after kill {kill}: {report.problems}"
        audit_local(self.engine, self.verifier, state_dir=self.audit_state)

    def after_restart(self, kill: int) -> None:
        self.deployment.server.check_workers()
        audited = self.deployment.cli.json(
            "audit", "verify", "--local", "--data-dir", "exchange-data"
        )
        assert audited["ok"], f"after restart {kill}"

    def close(self) -> None:
        self.engine.dispose()


def _kill_at_random(deployment: Deployment, checker: Checker, rng: random.Random) -> int:
    """``KILLS`` SIGKILLs at random moments; returns how many took the whole server."""
    server, whole = deployment.server, 0
    for kill in range(1, KILLS + 1):
        time.sleep(rng.uniform(0.2, 1.2))
        if kill % GROUP_EVERY == 0:
            server.kill()
            whole += 1
            checker.after_crash(kill)
            server.start()
            checker.after_restart(kill)
            continue
        workers = sorted(server.worker_pids())
        if workers:  # between a worker's death and its replacement there may be none
            os.kill(rng.choice(workers), signal.SIGKILL)
        checker.after_crash(kill)
    return whole


def _setup(deployment: Deployment, tmp_path: Path) -> tuple[Trader, Trader, Trader]:
    acme = register_trader(deployment, "acme", ["provider"])
    bob = register_trader(deployment, "bob", ["buyer"])
    admin = operator(deployment)
    with admin.client() as client:
        client.deposit("bob", CREDITS, "opening balance")
    with acme.client() as client:  # the first version, so that the dataset exists
        publish_corpus(client, [write_corpus(tmp_path / "v1", "the first")], slug="crash")
    return acme, bob, admin


def _says_exactly_what_was_done(deployment: Deployment, done: Done, first: str) -> None:
    engine = make_engine(deployment.database_url)
    try:
        with Session(engine) as session:
            versions = set(session.exec(select(DatasetVersion.id)).all())
            offers = {o.id: o.price for o in session.exec(select(Offer)).all()}
            agreements = {a.id: a.price for a in session.exec(select(Agreement)).all()}
    finally:
        engine.dispose()
    assert versions == {first, *done.versions}  # each published once, none half-way
    assert offers == done.offers
    assert agreements == done.agreements
    with operator(deployment).client() as client:
        books = client.books()
    spent = sum(done.agreements.values())
    assert books["accounts"]["member:bob"] == CREDITS + DEPOSIT * done.deposits - spent
    assert books["accounts"]["member:acme"] == spent
    assert books["total"] == 0 and books["unbalanced_transactions"] == 0


@pytest.mark.slow
def test_sigkill_during_publish_and_purchase_leaves_one_story(
    deployment: Deployment, tmp_path: Path
) -> None:
    acme, bob, admin = _setup(deployment, tmp_path)
    with acme.client() as client:
        first = client.dataset("crash")["latest_version"]
    done, stop = Done(), threading.Event()
    load = [
        _guarded(_provide, done, acme, done, stop, tmp_path / "corpora"),
        _guarded(_buy, done, bob, admin, done, stop),
    ]
    checker = Checker(deployment, tmp_path / "audit")
    started = time.monotonic()
    try:
        whole = _kill_at_random(deployment, checker, random.Random(7))
        stop.set()
        for thread in load:
            thread.join(timeout=ANSWER_WITHIN)
            assert not thread.is_alive(), "an operation never got an answer"
        assert done.failures == [], done.failures
        checker.after_crash(KILLS + 1)
    finally:
        stop.set()
        checker.close()
    seconds = time.monotonic() - started

    _says_exactly_what_was_done(deployment, done, first)
    assert deployment.cli.json("db", "check", "--data-dir", "exchange-data")["ok"]
    assert done.interrupted >= 3, "the kills never cut an operation off: the test proves nothing"
    assert len(done.agreements) >= 5 and len(done.versions) >= 5
    assert deployment.server.failures_logged() == []
    print(  # the figures for the report (pytest -s)
        f"\n{KILLS} kills ({whole} of the whole server, {deployment.server.starts - 1} restarts) "
        f"in {seconds:.0f}s: {len(done.versions)} versions, {len(done.offers)} offers, "
        f"{len(done.agreements)} purchases, {done.deposits} deposits, {done.deliveries} "
        f"deliveries; {done.interrupted} operations cut off and retried, {done.recorded_before} "
        "of them found their effect already recorded"
    )
