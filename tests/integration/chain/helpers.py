"""Shared by the chain tests: an exchange that anchors to the ``chain`` fixture's contract."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlmodel import col, select

from exchange.anchor_models import ChainAnchor
from exchange.anchoring import ANCHORED, Anchorer, build_anchorer
from exchange.context import Exchange
from exchange.statements import exchange_statement, record_statement
from ledger.anchor import AnchorRecord
from ledger.entry import Entry
from ledger.sql import LedgerEntryRow, SqlLedger
from tests.conftest import ChainSetup, Prepared


@contextmanager
def anchoring_exchange(
    prepared: Prepared, chain: ChainSetup, **overrides: Any
) -> Iterator[tuple[Exchange, Anchorer]]:
    settings = prepared.settings.model_copy(update=chain.settings(**overrides))
    exchange = Exchange.open(settings)
    anchorer = build_anchorer(exchange)
    assert anchorer is not None
    try:
        yield exchange, anchorer
    finally:
        exchange.engine.dispose()


def append(exchange: Exchange, count: int) -> int:
    """Append ``count`` statements (as the exchange: any signer will do here); the new size."""
    with exchange.transaction() as session:
        for n in range(count):
            body = {"n": n}
            record_statement(session, exchange_statement(exchange.log_signer, "attest.test", body))
        return SqlLedger(session).size()


def anchors(exchange: Exchange) -> list[ChainAnchor]:
    with exchange.reading() as session:
        return list(session.exec(select(ChainAnchor).order_by(col(ChainAnchor.size))).all())


def anchor_entries(exchange: Exchange) -> list[tuple[Entry, AnchorRecord]]:
    with exchange.reading() as session:
        rows = session.exec(
            select(LedgerEntryRow.data).where(LedgerEntryRow.type == ANCHORED)
        ).all()
    found = []
    for data in rows:
        entry = Entry.from_bytes(data)
        found.append((entry, AnchorRecord.from_body(entry.statement.body)))
    return found
