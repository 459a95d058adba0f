"""Offers, agreements, settlement and evaluation against a live exchange, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from exchange.client import ClientError
from ledger.entry import format_time
from licensing import statements as licences
from licensing.terms import Price, Terms
from tests.conftest import LiveServer
from tests.integration.helpers import statement
from tests.integration.market import TRAINING_NC, Market, open_market


@pytest.fixture
def market(live_server: LiveServer, tmp_path: Path) -> Market:
    return open_market(live_server, tmp_path)


def test_a_purchase_records_a_signed_agreement_and_moves_the_price(market: Market) -> None:
    offer = market.offer(TRAINING_NC, 300)
    assert offer["terms"] == TRAINING_NC.to_json() and offer["open"] is True
    published = market.entry(offer["published_seq"])
    assert published.statement.type == "offer.published"
    assert published.statement.member == "acme"
    assert published.statement.body["terms"] == TRAINING_NC.to_json()

    agreement = market.bob.client.buy(offer["id"])
    assert agreement["assignee"] == "bob" and agreement["assigner"] == "acme"
    assert agreement["target"] == market.version and agreement["state"] == "active"
    valid_from = datetime.fromisoformat(agreement["valid_from"])
    assert datetime.fromisoformat(agreement["valid_until"]) == valid_from + timedelta(days=30)

    granted = market.entry(agreement["granted_seq"])
    assert granted.statement.type == "licence.granted" and granted.statement.member == "bob"
    shown = market.acme.client.offer(offer["id"])
    assert granted.statement.body == licences.agreement_body(
        shown,
        agreement_id=agreement["id"],
        buyer="bob",
        version=market.version,
        at=granted.statement.time,
    )
    balances = market.balances()
    assert balances["member:bob"] == 700 and balances["member:acme"] == 300
    assert sum(balances.values()) == 0
    books = market.operator.books()
    assert books["unbalanced_transactions"] == 0 and books["drifted_accounts"] == []
    assert [p["amount"] for p in market.bob.client.account("bob")["history"]] == [-300, 1000]

    # Both parties, operators and auditors see it; another buyer does not.
    for member in (market.bob, market.acme, market.audrey):
        assert member.client.licence(agreement["id"])["id"] == agreement["id"]
    with pytest.raises(ClientError) as refused:
        market.carol.client.licence(agreement["id"])
    assert refused.value.status == 404
    assert [a["id"] for a in market.bob.client.licences()] == [agreement["id"]]


@pytest.mark.exchange_settings(exchange_fee_bps=250)
def test_the_exchange_fee_is_part_of_what_the_buyer_signs(market: Market) -> None:
    offer = market.offer(TRAINING_NC, 401)
    assert offer["fee"] == 10  # 2.5% of 401, rounded down
    agreement = market.bob.client.buy(offer["id"])
    assert agreement["fee"] == 10
    assert market.entry(agreement["granted_seq"]).statement.body["fee"] == 10
    balances = market.balances()
    assert balances["member:bob"] == 599
    assert balances["member:acme"] == 391 and balances["exchange:fees"] == 10
    assert sum(balances.values()) == 0


def _use(market: Market, **query: Any) -> dict[str, Any]:
    params = {"member": "bob", "version": market.version, "purpose": "training", **query}
    result: dict[str, Any] = market.audrey.client.may(**params)
    return result


def test_may_answers_with_the_agreement_or_the_reasons(market: Market) -> None:
    denied = _use(market)
    assert denied["permitted"] is False
    assert [r["code"] for r in denied["reasons"]] == ["not_covered"]

    offer = market.offer(TRAINING_NC, 100)
    agreement = market.bob.client.buy(offer["id"])
    granted_at = datetime.fromisoformat(agreement["valid_from"])

    permitted = _use(market)
    assert permitted["permitted"] is True and permitted["agreement"] == agreement["id"]
    assert _use(market, purpose="evaluation")["permitted"] is True

    fine_tuning = _use(market, purpose="fine-tuning")
    assert fine_tuning["permitted"] is False and fine_tuning["reasons"][0]["code"] == "purpose"
    commercial = _use(market, commercial=True)
    assert commercial["permitted"] is False and commercial["reasons"][0]["code"] == "commercial"
    assert _use(market, member="carol")["reasons"][0]["code"] == "not_covered"
    before = format_time(granted_at - timedelta(seconds=1))
    assert _use(market, at=before)["reasons"][0]["code"] == "not_yet_valid"
    later = format_time(granted_at + timedelta(days=30))
    assert _use(market, at=later)["reasons"][0]["code"] == "expired"

    revoked = market.acme.client.revoke_licence(agreement["id"], "breach of the attribution duty")
    assert revoked["state"] == "revoked"
    now = _use(market)
    assert now["permitted"] is False and now["reasons"][0]["code"] == "revoked"
    # Evaluation is historical: the use before the revocation stays permitted.
    assert _use(market, at=format_time(granted_at + timedelta(milliseconds=1)))["permitted"]
    entry = market.entry(revoked["revoked_seq"])
    assert entry.statement.type == "licence.revoked" and entry.statement.member == "acme"


def test_territory_limited_terms(market: Market) -> None:
    terms = Terms(purposes=frozenset({"training"}), territories=frozenset({"DE", "FR"}))
    market.bob.client.buy(market.offer(terms, 10)["id"])
    assert _use(market, territory="de")["permitted"] is True
    outside = _use(market, territory="US")
    assert outside["permitted"] is False and outside["reasons"][0]["code"] == "territory"
    assert _use(market)["reasons"][0]["code"] == "territory"  # where is not said: not permitted


def _unchanged(market: Market, before: tuple[int, dict[str, int]]) -> None:
    assert (market.size(), market.balances()) == before


def _state(market: Market) -> tuple[int, dict[str, int]]:
    return market.size(), market.balances()


def _refused(call: Any, status: int, words: str) -> None:
    with pytest.raises(ClientError) as refused:
        call()
    assert refused.value.status == status, str(refused.value)
    assert words in str(refused.value)


def test_refused_purchases_change_nothing(market: Market) -> None:
    offer = market.offer(TRAINING_NC, 300)
    market.bob.client.buy(offer["id"])
    before = _state(market)
    _refused(lambda: market.bob.client.buy(offer["id"]), 409, "already accepted")
    _refused(lambda: market.carol.client.buy(offer["id"]), 409, "insufficient funds")
    _refused(lambda: market.acme.client.buy(offer["id"]), 403, "buyer")  # role: not a buyer
    _unchanged(market, before)

    # A body that does not match the offer: another price, or someone else's terms.
    shown = market.bob.client.offer(offer["id"])
    for field, value in (("price", {"amount": 1, "currency": "credits"}), ("fee", 5)):
        body = licences.agreement_body(
            shown,
            agreement_id=licences.new_agreement_id(),
            buyer="carol",
            version=market.version,
            at=format_time(datetime.now(UTC)),
        )
        body[field] = value
        _refused(
            lambda body=body: market.carol.client.signed_post(
                f"/offers/{offer['id']}/accept", "licence.granted", body
            ),
            422,
            field,
        )
    _unchanged(market, before)

    withdrawn = market.acme.client.withdraw_offer(offer["id"], "superseded")
    assert withdrawn["status"] == "withdrawn"
    market.operator.deposit("carol", 500, "wire 2026-002")
    before = _state(market)
    _refused(lambda: market.carol.client.buy(offer["id"]), 409, "withdrawn")
    _refused(lambda: market.acme.client.withdraw_offer(offer["id"], "again"), 409, "already")
    _unchanged(market, before)


def test_an_expired_offer_cannot_be_accepted(market: Market) -> None:
    offer = market.offer(TRAINING_NC, 10, valid_until=datetime.now(UTC) + timedelta(seconds=1))
    import time

    time.sleep(1.2)
    before = _state(market)
    _refused(lambda: market.bob.client.buy(offer["id"]), 409, "expired")
    _unchanged(market, before)
    assert market.bob.client.offer(offer["id"])["open"] is False


BAD_TERMS = [
    ({"permission": [{"action": "sell"}]}, "unknown action"),
    (
        {
            "permission": [{"action": "use"}, {"action": "derive"}],
            "prohibition": [{"action": "derive"}],
        },
        "both permitted and prohibited",
    ),
    ({"permission": [{"action": "use"}], "prohibition": [{"action": "use"}]}, "prohibiting"),
    (
        {
            "permission": [
                {
                    "action": "use",
                    "constraint": [
                        {"leftOperand": "purpose", "operator": "isAnyOf", "rightOperand": ["war"]}
                    ],
                }
            ]
        },
        "unknown purpose",
    ),
    ({"permission": [{"action": "use"}]}, "canonical"),  # derive etc. not stated explicitly
]


@pytest.mark.parametrize(("terms", "words"), BAD_TERMS)
def test_malformed_or_contradictory_terms_are_refused(
    market: Market, terms: dict[str, Any], words: str
) -> None:
    before = _state(market)
    body = {
        "offer": licences.new_offer_id(),
        "dataset": "cat-facts",
        "version": None,
        "terms": terms,
        "price": {"amount": 10, "currency": "credits"},
        "valid_from": format_time(datetime.now(UTC)),
        "valid_until": None,
        "buyer": None,
    }
    _refused(lambda: market.acme.client.signed_post("/offers", "offer.published", body), 422, words)
    _unchanged(market, before)


def test_offers_are_the_provider_s_and_private_ones_are_private(
    market: Market, live_server: LiveServer
) -> None:
    from tests.integration.helpers import register

    other = register(market.operator, live_server.url, "bravo", ["provider"])
    before = _state(market)
    _refused(
        lambda: other.client.publish_offer(
            dataset="cat-facts", version=None, terms=TRAINING_NC, price=Price(1)
        ),
        403,
        "belongs to acme",
    )
    _unchanged(market, before)
    private = market.offer(TRAINING_NC, 5, buyer="bob")
    assert [o["id"] for o in market.bob.client.offers()] == [private["id"]]
    assert market.carol.client.offers() == []
    _refused(lambda: market.carol.client.offer(private["id"]), 404, "no offer")
    _refused(lambda: market.carol.client.buy(private["id"]), 404, "no offer")
    _refused(lambda: other.client.withdraw_offer(private["id"], "mine now"), 404, "no offer")
    agreement = market.bob.client.buy(private["id"])
    _refused(lambda: other.client.revoke_licence(agreement["id"], "because"), 404, "no agreement")
    _refused(lambda: market.bob.client.revoke_licence(agreement["id"], "x"), 403, "provider")


def test_deposits_and_withdrawals_by_operators_only(market: Market) -> None:
    done = market.operator.withdraw("bob", 400, "payout 7")
    assert done["balance"] == 600
    entry = market.entry(done["seq"])
    assert entry.statement.type == "account.withdrawn"
    assert entry.statement.body == {"member": "bob", "amount": 400, "reference": "payout 7"}
    before = _state(market)
    _refused(lambda: market.operator.withdraw("bob", 601, "too much"), 409, "insufficient")
    _refused(lambda: market.bob.client.deposit("bob", 1_000_000, "free money"), 403, "operator")
    _refused(lambda: market.operator.deposit("nobody", 5, "x"), 404, "nobody")
    _refused(lambda: market.operator.deposit("bob", 0, "x"), 422, "amount")
    # A deposit statement sent to the withdrawals route is not a withdrawal.
    body = {"member": "bob", "amount": 5, "reference": "x"}
    _refused(
        lambda: market.operator.signed_post("/accounts/bob/withdrawals", "account.deposited", body),
        422,
        "account.withdrawn",
    )
    _unchanged(market, before)
    _refused(lambda: market.carol.client.account("bob"), 403, "own account")
    assert market.audrey.client.account("bob")["balance"] == 600


def test_odrl_exports_of_offers_and_agreements(market: Market) -> None:
    offer = market.offer(TRAINING_NC, 300)
    agreement = market.bob.client.buy(offer["id"])
    from licensing.odrl import from_jsonld

    exported = market.bob.client.odrl("offers", offer["id"])
    policy = from_jsonld(exported)
    assert policy.kind == "Offer" and policy.terms == TRAINING_NC and policy.price is not None
    assert policy.price.amount == 300
    shown = from_jsonld(market.bob.client.odrl("licences", agreement["id"]))
    assert shown.kind == "Agreement" and shown.assignee == "bob" and shown.target == market.version


def test_unauthenticated_requests_are_refused(market: Market, live_server: LiveServer) -> None:
    for path in ("/offers", "/licences", "/accounts/bob", "/accounts"):
        assert httpx.get(live_server.url + path).status_code == 401
    signed = statement(
        "offer.withdrawn", {"offer": "x", "reason": "y"}, member="acme", key=market.acme.key
    )
    response = httpx.post(live_server.url + "/offers/x/withdraw", json=signed.to_json())
    assert response.status_code == 401


def test_the_audit_replays_the_market_and_catches_what_signatures_cannot(
    market: Market, live_server: LiveServer, tmp_path: Path
) -> None:
    from exchange.audit import audit_local
    from exchange.db import make_engine, unit_of_work
    from ledger.audit import AuditFailure
    from ledger.note import Ed25519Verifier
    from ledger.sql import SqlLedger
    from tests.integration.helpers import statement

    offer = market.offer(TRAINING_NC, 600)
    agreement = market.bob.client.buy(offer["id"])
    market.bob.client.request_delivery(market.version, purpose="training")
    market.acme.client.revoke_licence(agreement["id"], "breach")
    settings = live_server.prepared.settings
    verifier = Ed25519Verifier.from_vkey(live_server.prepared.vkey)
    engine = make_engine(settings.resolved_database_url)
    try:
        market.operator.issue_checkpoint()
        report = audit_local(engine, verifier, state_dir=tmp_path / "audit")
        assert report.size == market.size()

        # bob (400 credits left) signs a second purchase of 600: a faulty exchange that skipped
        # the balance check would append it; every signature on it is genuine.
        second = market.offer(TRAINING_NC, 600)
        shown = market.bob.client.offer(second["id"])
        now = datetime.now(UTC)
        signed = statement(
            "licence.granted",
            licences.agreement_body(
                shown,
                agreement_id=licences.new_agreement_id(),
                buyer="bob",
                version=market.version,
                at=format_time(now),
            ),
            member="bob",
            key=market.bob.key,
            now=now,
        )
        with unit_of_work(engine) as session:
            SqlLedger(session).append(signed)
        market.operator.issue_checkpoint()
        with pytest.raises(AuditFailure) as failure:
            audit_local(engine, verifier, state_dir=tmp_path / "audit-2")
        assert failure.value.seq == market.size() - 1 and "overdraft" in failure.value.reason
    finally:
        engine.dispose()
