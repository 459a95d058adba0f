"""A request sent again because its answer was lost (a crash, a dropped connection) is recorded
once: the exact same signed request gets a 409 the second time, and changes nothing.

This is the other half of the crash test (``tests/e2e/test_crash.py``), whose kills rarely fall
between a commit and its answer: here every use case that records a signed statement is sent
twice on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from catalog.ingest import ingest, scan
from exchange.client import ClientError, ExchangeClient
from exchange.db import make_engine
from exchange.integrity import check_integrity
from exchange.publisher import publication_request
from ledger.entry import format_time
from licensing.attestation import ATTESTED, attestation_body
from licensing.compliance import ComplianceReport, TrainingManifest
from licensing.statements import (
    GRANTED,
    OFFER_PUBLISHED,
    agreement_body,
    new_agreement_id,
    new_offer_id,
    offer_body,
)
from licensing.terms import Price
from tests.conftest import LiveServer
from tests.integration.helpers import new_member_body
from tests.integration.market import TRAINING_NC, Market, open_market
from tests.market_load import write_corpus

Request = tuple[ExchangeClient, str, dict[str, Any]]  # who sends it, where, the body


def _twice(market: Market, request: Request) -> Any:
    """Send it; send it again as it was: 409, and the log and the books unchanged."""
    client, path, body = request
    first = client.request("POST", path, json=body).json()
    size, balances = market.size(), market.balances()
    try:
        client.request("POST", path, json=body)
    except ClientError as exc:
        assert exc.status == 409, f"{path}: {exc}"
    else:
        raise AssertionError(f"{path}: the same request was recorded twice")
    assert (market.size(), market.balances()) == (size, balances), path
    return first


def _signed(client: ExchangeClient, path: str, entry_type: str, body: dict[str, Any]) -> Request:
    return client, path, client.sign(entry_type, body).to_json()


def _publish(market: Market, tmp_path: Path) -> Request:
    corpus = write_corpus(tmp_path / "v2", "a second version")
    sources = {source.name: source for source in scan([corpus])}
    manifest = ingest(list(sources.values()), workers=1)
    client = market.acme.client
    for file in manifest.files:
        client.upload_blob(file.sha256, sources[file.name].path)
    body = publication_request(client, manifest, slug="cat-facts", label="v2")
    return client, "/datasets/cat-facts/versions", body


def _offer(market: Market) -> Request:
    body = offer_body(
        offer_id=new_offer_id(),
        dataset="cat-facts",
        version=market.version,
        terms=TRAINING_NC,
        price=Price(30),
        valid_from=format_time(datetime.now(UTC)),
        valid_until=None,
        buyer=None,
    )
    return _signed(market.acme.client, "/offers", OFFER_PUBLISHED, body)


def _accept(market: Market, offer_id: str) -> Request:
    client = market.bob.client
    now = datetime.now(UTC)
    body = agreement_body(
        client.offer(offer_id),
        agreement_id=new_agreement_id(),
        buyer="bob",
        version=market.version,
        at=format_time(now),
    )
    return client, f"/offers/{offer_id}/accept", client.sign(GRANTED, body, now=now).to_json()


def _attest(market: Market) -> Request:
    manifest = {
        "model": "bob-2b",
        "purpose": "training",
        "commercial": False,
        "date": format_time(datetime.now(UTC) + timedelta(minutes=1)),
        "data": [{"version": market.version}],
    }
    client = market.bob.client
    report = ComplianceReport.from_json(client.compliance_check(manifest))
    body = attestation_body(TrainingManifest.from_json(manifest), report)
    return (
        client,
        "/compliance/attestations",
        {
            "manifest": manifest,
            "signed": client.sign(ATTESTED, body).to_json(),
        },
    )


def test_every_signed_request_sent_twice_is_recorded_once(
    live_server: LiveServer, tmp_path: Path
) -> None:
    market = open_market(live_server, tmp_path)
    operator = market.operator
    steps: list[Callable[[], Request]] = [
        lambda: _signed(
            operator,
            "/members",
            "member.registered",
            new_member_body("dora", ["buyer"], Ed25519PrivateKey.generate()),
        ),
        lambda: _signed(
            operator,
            "/accounts/bob/deposits",
            "account.deposited",
            {"member": "bob", "amount": 70, "reference": "wire 9"},
        ),
        lambda: _signed(
            operator,
            "/accounts/bob/withdrawals",
            "account.withdrawn",
            {"member": "bob", "amount": 20, "reference": "payout 1"},
        ),
        lambda: _publish(market, tmp_path),
    ]
    for step in steps:
        _twice(market, step())
    offer = _twice(market, _offer(market))
    agreement = _twice(market, _accept(market, offer["id"]))
    assert market.balances()["member:bob"] == 1_000 + 70 - 20 - 30
    _twice(market, _attest(market))
    _twice(
        market,
        _signed(
            market.acme.client,
            f"/offers/{offer['id']}/withdraw",
            "offer.withdrawn",
            {"offer": offer["id"], "reason": "sold out"},
        ),
    )
    _twice(
        market,
        _signed(
            market.acme.client,
            f"/licences/{agreement['id']}/revoke",
            "licence.revoked",
            {"agreement": agreement["id"], "reason": "breach of terms"},
        ),
    )

    engine = make_engine(live_server.prepared.settings.resolved_database_url)
    try:
        report = check_integrity(engine)
    finally:
        engine.dispose()
    assert report.ok, report.problems
