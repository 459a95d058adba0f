"""``check_integrity`` (``corpusx db check``): a consistent market passes, and each way the
database could disagree with its own ledger — a gap, a rewritten entry, a bad node, a forged
checkpoint, a half-published version, an agreement without its payment, a row without its entry,
an entry without its row, money made from nothing — is caught and named.

Each tampering runs in a transaction that is rolled back, so one market serves every case.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlmodel import Session

from exchange.db import make_engine
from exchange.integrity import check_integrity, check_session
from exchange.published import Declared
from exchange.publisher import publish_corpus
from ledger.entry import format_time
from licensing.terms import Terms
from tests.conftest import LiveServer
from tests.integration.market import TRAINING_NC, Market, open_market, write_corpus

# (what is broken, SQL that breaks it, the check that must name it)
TAMPERING = [
    ("a gap in the log", "DELETE FROM ledger_entry WHERE seq = 3", "ledger.sequence"),
    (
        "an entry rewritten",
        "UPDATE ledger_entry SET data = (SELECT data FROM ledger_entry WHERE seq = 1) "
        "WHERE seq = 2",
        "ledger.chain",
    ),
    (
        "a tree node corrupted",
        "UPDATE ledger_node SET hash = :zeros WHERE level = 1 AND idx = 0",
        "ledger.tree",
    ),
    (
        "a checkpoint over another root",
        "UPDATE ledger_checkpoint SET root = :zeros "
        "WHERE size = (SELECT max(size) FROM ledger_checkpoint)",
        "ledger.checkpoint",
    ),
    (
        "the head behind the log",
        "UPDATE ledger_head SET size = size - 1",
        "ledger.head",
    ),
    (
        "a version without its files",
        "DELETE FROM version_file WHERE version_id = :version",
        "dataset.version.published",
    ),
    (
        "a version missing from the overlap index",
        "DELETE FROM overlap_segment WHERE version_key IN "
        "(SELECT id FROM overlap_version WHERE version_id = :version); "
        "DELETE FROM overlap_version WHERE version_id = :version",
        "dataset.version.published",
    ),
    (
        "an overlap segment rewritten",
        "UPDATE overlap_segment SET bands = documents WHERE version_key IN "
        "(SELECT id FROM overlap_version WHERE version_id = :version)",
        "dataset.version.published",
    ),
    (
        "an agreement without its payment",
        "DELETE FROM journal_posting WHERE transaction_id IN "
        "(SELECT id FROM journal_transaction WHERE kind = 'purchase'); "
        "DELETE FROM journal_transaction WHERE kind = 'purchase'",
        "settlement.journal",
    ),
    (
        "an agreement at another price than signed",
        "UPDATE agreement SET price = price + 1",
        "licence.granted",
    ),
    (
        "an offer row with no entry",
        "INSERT INTO offer (id, dataset_id, version_id, provider, buyer, terms, terms_sha256, "
        "price, valid_from, valid_until, status, published_seq, withdrawn_seq, "
        "withdrawn_reason, created_at) SELECT 'off_000000000000000000000000', dataset_id, "
        "version_id, provider, buyer, terms, terms_sha256, price, valid_from, valid_until, "
        "status, published_seq, withdrawn_seq, withdrawn_reason, created_at FROM offer "
        "WHERE status = 'open'",
        "offer.published",
    ),
    (
        "a withdrawal without its row",
        "UPDATE offer SET status = 'open', withdrawn_seq = NULL, withdrawn_reason = NULL",
        "offer.withdrawn",
    ),
    (
        "a derived version without its signed sources",
        "DELETE FROM version_source",
        "dataset.version.published",
    ),
    ("a delivery entry without its row", "DELETE FROM delivery", "data.delivered"),
    (
        "credits made from nothing",
        "UPDATE account SET balance = balance + 5 WHERE id = 'member:bob'; "
        "UPDATE account SET balance = balance - 5 WHERE id = 'external'",
        "settlement.balance",
    ),
    (
        "a deposit with no entry",
        "UPDATE journal_transaction SET seq = seq + 100000 WHERE kind = 'deposit'",
        "settlement.journal",
    ),
]


def _trade(market: Market, tmp_path: Path) -> None:
    """Everything the checks cover: a derived version, offers (one withdrawn), a paid licence,
    a delivery, an attestation."""
    publish_corpus(
        market.acme.client,
        [write_corpus(tmp_path / "derived", documents=20, topic="kittens")],
        slug="kitten-facts",
        workers=1,
        lineage=Declared.from_json("filtered", [{"version": market.version, "agreement": None}]),
    )
    terms = Terms(purposes=frozenset({"training"}))
    withdrawn = market.offer(terms, 50)["id"]
    market.acme.client.withdraw_offer(withdrawn, "priced wrongly")
    market.bob.client.buy(market.offer(TRAINING_NC, 120)["id"])
    market.bob.client.request_delivery(market.version, purpose="training")
    manifest = {
        "model": "bob-1b",
        "purpose": "training",
        "commercial": False,
        "date": format_time(datetime.now(UTC) + timedelta(minutes=1)),
        "data": [{"version": market.version}],
    }
    market.bob.client.attest_training(manifest)
    market.operator.issue_checkpoint()


def test_a_consistent_market_passes_and_every_tampering_is_named(
    live_server: LiveServer, tmp_path: Path
) -> None:
    market = open_market(live_server, tmp_path)
    _trade(market, tmp_path)
    engine = make_engine(live_server.prepared.settings.resolved_database_url)
    try:
        clean = check_integrity(engine)
        assert clean.ok, clean.problems
        assert clean.size == market.size()
        assert clean.entries["licence.granted"] == 1 and clean.entries["data.delivered"] == 1
        for what, sql, check in TAMPERING:
            with Session(engine) as session:
                params = {"zeros": bytes(32), "version": market.version}
                for statement in sql.split("; "):
                    session.execute(text(statement), params)
                report = check_session(session)
                session.rollback()
            named = {p.check for p in report.problems}
            assert check in named, f"{what}: not caught ({report.problems})"
        assert check_integrity(engine).ok  # every tampering was rolled back
    finally:
        engine.dispose()
