"""Anchoring in the running exchange (the real app under uvicorn, its background loop) and
``corpusx audit anchors`` against it: the routes, the CLI, and a rewritten history caught."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, update
from sqlmodel import col, select

from exchange.anchor_audit import Demand, EventCheck, audit_anchors
from exchange.audit import audit_remote
from exchange.db import make_engine, unit_of_work
from exchange.logkey import load_log_key
from exchange.statements import exchange_statement
from ledger.anchor_evm import EvmChain
from ledger.checkpoint import Checkpoint
from ledger.entry import Entry
from ledger.note import Ed25519Verifier
from ledger.sql import LedgerCheckpointRow, LedgerEntryRow, LedgerHeadRow, LedgerNodeRow, SqlLedger
from tests.conftest import TEST_ORIGIN, ChainSetup, LiveServer

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def wait_for(condition: Callable[[], Any], *, timeout: float = 30, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found


def final_anchor(live: LiveServer, size: int) -> Callable[[], dict[str, Any] | None]:
    """The newest anchor once it covers ``size`` and is final (asserts if anchoring failed)."""

    def probe() -> dict[str, Any] | None:
        with live.client() as client:
            status = client.anchors()
        assert status["failures"] == 0 or "unreachable" in str(status["last_error"]), status
        anchors = status["anchors"]
        newest = anchors[0] if anchors else None
        if newest and newest["size"] >= size and newest["state"] == "final":
            return dict(newest)
        return None

    return probe


def corpusx(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CORPUSX_CONFIG_DIR": str(home / "config")}
    for name in ("CORPUSX_SERVER", "CORPUSX_TOKEN", "CORPUSX_CHAIN_RPC_URL"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "exchange", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.anchoring(anchor_every_entries=4, chain_confirmations=2)
def test_the_server_anchors_on_schedule_and_on_demand_and_the_auditor_agrees(
    live_server: LiveServer, chain: ChainSetup, tmp_path: Path
) -> None:
    with live_server.operator() as operator:
        for n in range(3):
            operator.attest("attest.note", {"n": n})
        wait_for(lambda: operator.anchors()["anchors"], what="the scheduled anchor")
        chain.node.mine(1)
        first = wait_for(final_anchor(live_server, 4), what="the scheduled anchor to be final")
        assert first["entry_seq"] == 4 and first["resubmissions"] == 0
        operator.attest("attest.note", {"n": 3})  # below the schedule: anchored only on demand

    done = corpusx(
        "ledger", "anchor", "--json", "--server", live_server.url,
        "--token", live_server.prepared.operator_token, home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    requested = json.loads(done.stdout)["anchor"]
    assert requested["size"] == 6 and requested["state"] in ("submitted", "included")
    chain.node.mine(1)
    wait_for(final_anchor(live_server, 6), what="the anchor asked for")
    with live_server.operator() as operator:
        operator.issue_checkpoint()  # the audit reads what a checkpoint covers

    done = corpusx(
        "audit", "anchors", "--server", live_server.url, "--rpc", chain.node.url, home=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert (
        "2 anchor(s) verified on chain 31337, 2 event(s) of the contract match the log"
        in done.stdout
    )
    with live_server.client() as client:
        demanding = audit_anchors(
            client,
            EvmChain(chain.node.url),
            Ed25519Verifier.from_vkey(client.vkey()),
            demand=Demand(confirmations=50),
        )
    assert [f.size for f in demanding.checks if not f.ok] == [4, 6]
    assert all("confirmations, need 50" in str(f.error) for f in demanding.failures)

    # The owner anchors a root the log never had (another history, shown to someone else):
    # no entry records it, but it is on the chain, and it does not match.
    owner = EvmChain(chain.node.url, contract=chain.contract, private_key=chain.key)
    owner.broadcast(owner.prepare(Checkpoint(TEST_ORIGIN, 2, bytes(32))).raw)
    with live_server.client() as client:
        report = audit_anchors(
            client, EvmChain(chain.node.url), Ed25519Verifier.from_vkey(client.vkey())
        )
    (stray,) = report.failures
    assert isinstance(stray, EventCheck) and stray.found.event.size == 2
    assert "the log's root at size 2 is" in stray.describe()


# Every 3 entries: the genesis entry and the two notes make the first anchor, at size 3, whenever
# the schedule looks (every 2 would anchor size 2 if it looked between the notes, and then wait
# for size 4).
@pytest.mark.anchoring(anchor_every_entries=3, chain_confirmations=1)
def test_a_rewritten_history_passes_its_own_audit_but_not_the_chain(
    live_server: LiveServer, chain: ChainSetup, tmp_path: Path
) -> None:
    with live_server.operator() as operator:
        operator.attest("attest.note", {"amount": 100})
        operator.attest("attest.note", {"n": 1})
        anchored = wait_for(final_anchor(live_server, 3), what="the anchor")
    rewrite_history(live_server, seq=1, body={"amount": 1})

    with live_server.client() as client:  # a fresh auditor: nothing remembered, all is well
        vkey = client.vkey()
        audit_remote(client, Ed25519Verifier.from_vkey(vkey), state_dir=tmp_path / "state")
    done = corpusx(
        "audit", "anchors", "--server", live_server.url, "--rpc", chain.node.url,
        "--vkey", vkey, home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    entry_line, event_line = done.stderr.strip().splitlines()  # the record, and the event
    assert entry_line.startswith(f"error: entry {anchored['entry_seq']} (size 3, tx ")
    assert f"the chain anchors {anchored['root']}" in entry_line
    assert event_line.startswith(f"error: event in tx {anchored['tx_hash']}")


def rewrite_history(live: LiveServer, *, seq: int, body: dict[str, Any]) -> None:
    """What a rogue log operator holding the log key can do: replace entry ``seq`` with another
    statement, re-chain and re-hash every entry after it, and sign a fresh checkpoint. Every
    signature still verifies; only a record kept outside the log can tell."""
    settings = live.prepared.settings
    signer = load_log_key(settings.resolved_log_key_file)
    engine = make_engine(settings.resolved_database_url)
    try:
        with unit_of_work(engine) as session:
            rows = session.exec(select(LedgerEntryRow.data).order_by(col(LedgerEntryRow.seq)))
            entries = [Entry.from_bytes(data) for data in rows.all()]
            for table in (LedgerEntryRow, LedgerNodeRow, LedgerCheckpointRow):
                session.connection().execute(delete(table))
            session.connection().execute(
                update(LedgerHeadRow).values(size=0, frontier=b"", last_leaf=b"", last_time="")
            )
            statements = [entry.signed for entry in entries]
            forged = entries[seq].statement
            statements[seq] = exchange_statement(signer, forged.type, body)
            ledger = SqlLedger(session)
            ledger.append_many(statements)
            ledger.issue_checkpoint(signer)
    finally:
        engine.dispose()


@pytest.mark.anchoring()
def test_a_deeply_nested_body_is_refused_not_fatal_with_anchoring_on(
    live_server: LiveServer,
) -> None:
    """web3's dependencies raise the recursion limit when imported (ledger/anchor_evm.py undoes
    it): with it raised, this body overflows the C stack of the JSON parser and kills the server."""
    deep = b'{"statement": ' + b"[" * 100_000 + b"]" * 100_000 + b', "signature": ""}'
    answer = httpx.post(
        f"{live_server.url}/ledger/attest",
        content=deep,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert 400 <= answer.status_code < 500
    assert sys.getrecursionlimit() < 10_000
    assert httpx.get(f"{live_server.url}/healthz").status_code == 200
