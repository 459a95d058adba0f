"""The market's rules replayed from entries: an honest history passes, each violation is named."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.audit import AuditFailure
from ledger.entry import Entry, SignedStatement, Statement, format_time, key_id_for, sign_statement
from licensing.market_audit import FEES, MarketAuditor
from licensing.terms import Terms

KEY = Ed25519PrivateKey.generate()
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
VERSION = "sha256:" + "a" * 64
OTHER_VERSION = "sha256:" + "b" * 64
TERMS = Terms(purposes=frozenset({"training"}), duration_days=30)


class History:
    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.clock = T0

    def add(self, entry_type: str, body: dict[str, Any], *, member: str) -> Entry:
        self.clock += timedelta(seconds=1)
        statement = Statement(
            type=entry_type,
            body=body,
            member=member,
            key_id=key_id_for(b"k" * 32),
            nonce=f"nonce-{len(self.entries):012d}",
            time=format_time(self.clock),
            log="test/log",
        )
        signed: SignedStatement = sign_statement(statement, KEY)
        entry = Entry.build(seq=len(self.entries), time=statement.time, prev=None, signed=signed)
        self.entries.append(entry)
        return entry

    @property
    def now(self) -> str:
        return format_time(self.clock + timedelta(seconds=1))


def _published(h: History, version: str = VERSION, provider: str = "acme") -> None:
    h.add(
        "dataset.version.published",
        {
            "dataset": "cats",
            "label": "v",
            "version": version,
            "manifest_root": "0" * 64,
            "records": 1,
            "size": 1,
        },
        member=provider,
    )


def _offer(h: History, **changes: Any) -> dict[str, Any]:
    body = {
        "offer": "off_" + "1" * 24,
        "dataset": "cats",
        "version": VERSION,
        "terms": TERMS.to_json(),
        "price": {"amount": 300, "currency": "credits"},
        "valid_from": format_time(h.clock),
        "valid_until": None,
        "buyer": None,
        **changes,
    }
    member = body.pop("_member", "acme")
    h.add("offer.published", body, member=member)
    return body


def _grant(h: History, offer_seq: int, **changes: Any) -> dict[str, Any]:
    at = h.now
    body = {
        "agreement": "agr_" + "2" * 24,
        "offer": "off_" + "1" * 24,
        "offer_seq": offer_seq,
        "assigner": "acme",
        "assignee": "bob",
        "dataset": "cats",
        "target": VERSION,
        "terms": TERMS.to_json(),
        "price": {"amount": 300, "currency": "credits"},
        "fee": 15,
        "valid_from": at,
        "valid_until": format_time(datetime.fromisoformat(at) + timedelta(days=30)),
        **changes,
    }
    member = body.pop("_member", "bob")
    h.add("licence.granted", body, member=member)
    return body


def _deposit(h: History, amount: int, member: str = "bob") -> None:
    h.add("account.deposited", {"member": member, "amount": amount, "reference": "r"}, member="op")


def _honest() -> History:
    h = History()
    _published(h)
    _offer(h)
    _deposit(h, 1000)
    _grant(h, offer_seq=1)
    delivery = {
        "agreement": "agr_" + "2" * 24,
        "buyer": "bob",
        "version": VERSION,
        "purpose": "training",
        "commercial": False,
        "files": [],
        "expires": h.now,
    }
    h.add("data.delivered", delivery, member="exchange")
    h.add("licence.revoked", {"agreement": "agr_" + "2" * 24, "reason": "breach"}, member="acme")
    h.add("account.withdrawn", {"member": "acme", "amount": 285, "reference": "r"}, member="op")
    return h


def _replay(h: History) -> MarketAuditor:
    market = MarketAuditor()
    for entry in h.entries:
        market.feed(entry)
    return market


def test_an_honest_history_passes_and_the_money_adds_up() -> None:
    market = _replay(_honest())
    assert market.balances["bob"] == 700
    assert market.balances["acme"] == 0 and market.balances[FEES] == 15
    assert market.credits_held == market.deposited - market.withdrawn == 715


def _fails_at(h: History, words: str) -> None:
    with pytest.raises(AuditFailure) as failure:
        _replay(h)
    assert failure.value.seq == len(h.entries) - 1, failure.value
    assert words in failure.value.reason


Case = Callable[[History], None]


def _grant_after(setup: Case, **changes: Any) -> Case:
    def build(h: History) -> None:
        setup(h)
        _grant(h, offer_seq=1, **changes)

    return build


def _market(h: History) -> None:
    _published(h)
    _offer(h)
    _deposit(h, 1000)


def _withdrawn_offer(h: History) -> None:
    _market(h)
    h.add("offer.withdrawn", {"offer": "off_" + "1" * 24, "reason": "x"}, member="acme")


def _poor_buyer(h: History) -> None:
    _published(h)
    _offer(h)
    _deposit(h, 299)


def _private(h: History) -> None:
    _published(h)
    _offer(h, buyer="carol")
    _deposit(h, 1000)


CASES: dict[str, tuple[Case, str]] = {
    "overdraft": (_grant_after(_poor_buyer), "overdraft"),
    "another price": (
        _grant_after(_market, price={"amount": 1, "currency": "credits"}),
        "price differs",
    ),
    "fee above the price": (_grant_after(_market, fee=301), "fee 301"),
    "other terms": (
        _grant_after(_market, terms=Terms(purposes=frozenset({"training"})).to_json()),
        "terms differs",
    ),
    "a longer licence": (_grant_after(_market, valid_until=None), "valid_until differs"),
    "a withdrawn offer": (_grant_after(_withdrawn_offer), "withdrawn"),
    "someone else's private offer": (_grant_after(_private), "private to carol"),
    "another version": (_grant_after(_market, target=OTHER_VERSION), "not one the offer covers"),
    "an unknown offer": (
        _grant_after(_market, offer="off_" + "9" * 24),
        "never published",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_broken_rule_is_named_at_its_entry(case: str) -> None:
    build, words = CASES[case]
    h = History()
    build(h)
    _fails_at(h, words)


def test_an_offer_of_another_providers_dataset() -> None:
    h = History()
    _published(h)
    _offer(h, _member="mallory")
    _fails_at(h, "not its own")


def test_accepting_twice_and_granting_an_agreement_id_twice() -> None:
    h = History()
    _market(h)
    _grant(h, offer_seq=1)
    _grant(h, offer_seq=1, agreement="agr_" + "3" * 24)
    _fails_at(h, "twice for one version")


def test_deliveries_need_a_licence_in_force() -> None:
    h = History()
    _market(h)
    _grant(h, offer_seq=1)
    h.add("licence.revoked", {"agreement": "agr_" + "2" * 24, "reason": "x"}, member="acme")
    body = {
        "agreement": "agr_" + "2" * 24,
        "buyer": "bob",
        "version": VERSION,
        "purpose": "training",
        "commercial": False,
        "files": [],
        "expires": h.now,
    }
    h.add("data.delivered", body, member="exchange")
    _fails_at(h, "not in force")


def test_only_the_assigner_revokes_and_only_once() -> None:
    h = History()
    _market(h)
    _grant(h, offer_seq=1)
    h.add("licence.revoked", {"agreement": "agr_" + "2" * 24, "reason": "x"}, member="bob")
    _fails_at(h, "another's licence")


def test_a_withdrawal_beyond_the_balance() -> None:
    h = History()
    _deposit(h, 10)
    h.add("account.withdrawn", {"member": "bob", "amount": 11, "reference": "r"}, member="op")
    _fails_at(h, "overdraft")


def test_a_malformed_body_is_an_audit_failure_not_a_crash() -> None:
    h = History()
    h.add("account.deposited", {"member": "bob"}, member="op")
    _fails_at(h, "malformed")
