"""The market's rules, replayed from the log alone.

``ledger.audit.LogAuditor`` proves that every entry is signed by a member allowed to sign its
type and that the log was never rewritten. This auditor goes on to check what those entries
*mean* against each other — what an honest exchange never records, whoever signed it:

- a dataset belongs to the provider who first published it; its versions are named once;
- an offer is made by its dataset's provider, for one of its versions (or any), in canonical
  terms; it is withdrawn only by that provider, once;
- an agreement accepts an earlier, open offer — inside its window, not withdrawn, for its private
  buyer if it has one — for a version of the offered dataset, once per (offer, buyer, version),
  with exactly the offer's terms and price, a fee no larger than the price, ``valid_from`` equal
  to the signing time and ``valid_until`` that plus the terms' duration;
- a licence is revoked only by its assigner, once;
- a delivery is made under an agreement in force at that moment, to its assignee, of its version;
- money: replaying deposits, withdrawals and purchases, no member's balance is ever negative, and
  every purchase moves exactly its price (so the credits in members' and the fee account always
  equal deposits minus withdrawals).

A violation raises ``AuditFailure`` naming the entry. Feed it every entry in log order, after
``LogAuditor.feed`` has accepted it. ``docs/ledger.md`` §11.5 is normative.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ledger.audit import AuditFailure
from ledger.entry import Entry, format_time, parse_time
from ledger.errors import LedgerError
from licensing.errors import LicensingError
from licensing.terms import Price, Terms

FEES = "exchange:fees"


@dataclass
class _Offer:
    provider: str
    dataset: str
    version: str | None
    terms: dict[str, Any]
    duration_days: int | None
    price: int
    valid_from: str
    valid_until: str | None
    buyer: str | None
    seq: int
    withdrawn: bool = False


@dataclass
class _Agreement:
    assigner: str
    assignee: str
    target: str
    valid_from: datetime
    valid_until: datetime | None
    revoked_at: datetime | None = None


@dataclass
class MarketAuditor:
    datasets: dict[str, str] = field(default_factory=dict)  # slug -> provider
    versions: dict[str, str] = field(default_factory=dict)  # version id -> slug
    offers: dict[str, _Offer] = field(default_factory=dict)
    agreements: dict[str, _Agreement] = field(default_factory=dict)
    accepted: set[tuple[str, str, str]] = field(default_factory=set)
    balances: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    deposited: int = 0
    withdrawn: int = 0

    def feed(self, entry: Entry) -> None:
        handler = _HANDLERS.get(entry.statement.type)
        if handler is None:
            return
        try:
            handler(self, entry, entry.statement.body)
        except (KeyError, TypeError, ValueError, LedgerError, LicensingError) as exc:
            if isinstance(exc, AuditFailure):
                raise
            raise AuditFailure(
                entry.seq, f"{entry.statement.type} body is malformed: {exc!r}"
            ) from None

    @property
    def credits_held(self) -> int:
        """Credits in members' and the fee account: always deposits minus withdrawals."""
        return sum(self.balances.values())

    # -- catalogue ---------------------------------------------------------------------------

    def _published(self, entry: Entry, body: dict[str, Any]) -> None:
        slug, version = str(body["dataset"]), str(body["version"])
        owner = self.datasets.setdefault(slug, entry.statement.member)
        if owner != entry.statement.member:
            raise AuditFailure(entry.seq, f"dataset {slug} is {owner}'s, not its signer's")
        if version in self.versions:
            raise AuditFailure(entry.seq, f"version {version} is published a second time")
        self.versions[version] = slug

    # -- offers and agreements -----------------------------------------------------------------

    def _offer(self, entry: Entry, body: dict[str, Any]) -> None:
        offer_id, slug, version = str(body["offer"]), str(body["dataset"]), body["version"]
        seq, signer = entry.seq, entry.statement.member
        if offer_id in self.offers:
            raise AuditFailure(seq, f"offer {offer_id} is published a second time")
        if self.datasets.get(slug) != signer:
            raise AuditFailure(seq, f"{signer} offers dataset {slug}, which is not its own")
        if version is not None and self.versions.get(str(version)) != slug:
            raise AuditFailure(seq, f"offer {offer_id} names version {version}, not of {slug}")
        terms = Terms.from_json(body["terms"])
        if terms.to_json() != body["terms"]:
            raise AuditFailure(seq, f"offer {offer_id} terms are not in canonical form")
        self.offers[offer_id] = _Offer(
            provider=signer,
            dataset=slug,
            version=version,
            terms=body["terms"],
            duration_days=terms.duration_days,
            price=Price.from_json(body["price"]).amount,
            valid_from=str(body["valid_from"]),
            valid_until=body["valid_until"],
            buyer=body["buyer"],
            seq=seq,
        )

    def _withdrawn(self, entry: Entry, body: dict[str, Any]) -> None:
        offer = self._known_offer(entry, str(body["offer"]))
        if offer.provider != entry.statement.member:
            raise AuditFailure(entry.seq, f"{entry.statement.member} withdraws another's offer")
        if offer.withdrawn:
            raise AuditFailure(entry.seq, f"offer {body['offer']} is withdrawn twice")
        offer.withdrawn = True

    def _granted(self, entry: Entry, body: dict[str, Any]) -> None:
        seq, buyer, signed_at = entry.seq, entry.statement.member, entry.statement.time
        offer_id, agreement_id = str(body["offer"]), str(body["agreement"])
        offer = self._known_offer(entry, offer_id)
        problems = self._acceptance_problems(offer, body, buyer=buyer, signed_at=signed_at)
        if problems:
            raise AuditFailure(seq, f"agreement {agreement_id}: " + "; ".join(problems))
        if agreement_id in self.agreements:
            raise AuditFailure(seq, f"agreement {agreement_id} is granted twice")
        once = (offer_id, buyer, str(body["target"]))
        if once in self.accepted:
            raise AuditFailure(seq, f"{buyer} accepts offer {offer_id} twice for one version")
        self.accepted.add(once)
        price, fee = offer.price, int(body["fee"])
        self._move(entry, {buyer: -price, offer.provider: price - fee, FEES: fee})
        until = body["valid_until"]
        self.agreements[agreement_id] = _Agreement(
            assigner=offer.provider,
            assignee=buyer,
            target=str(body["target"]),
            valid_from=parse_time(signed_at),
            valid_until=parse_time(until) if until is not None else None,
        )

    def _acceptance_problems(
        self, offer: _Offer, body: dict[str, Any], *, buyer: str, signed_at: str
    ) -> list[str]:
        problems = []
        if offer.withdrawn:
            problems.append("the offer was withdrawn")
        if signed_at < offer.valid_from or (
            offer.valid_until is not None and signed_at >= offer.valid_until
        ):
            problems.append("signed outside the offer's window")
        if offer.buyer is not None and offer.buyer != buyer:
            problems.append(f"the offer is private to {offer.buyer}")
        if buyer == offer.provider:
            problems.append("a provider buys its own offer")
        target = str(body["target"])
        if self.versions.get(target) != offer.dataset or offer.version not in (None, target):
            problems.append(f"version {target} is not one the offer covers")
        expected_until = None
        if offer.duration_days is not None:
            expected_until = format_time(
                parse_time(signed_at) + timedelta(days=offer.duration_days)
            )
        fee = body["fee"]
        expected = {
            "assigner": offer.provider,
            "assignee": buyer,
            "dataset": offer.dataset,
            "terms": offer.terms,
            "price": Price(offer.price).to_json(),
            "valid_from": signed_at,
            "valid_until": expected_until,
            "offer_seq": offer.seq,
        }
        problems += [f"{k} differs from the offer's" for k, v in expected.items() if body[k] != v]
        if not isinstance(fee, int) or isinstance(fee, bool) or not 0 <= fee <= offer.price:
            problems.append(f"fee {fee!r} is not between 0 and the price")
        return problems

    def _revoked(self, entry: Entry, body: dict[str, Any]) -> None:
        agreement = self._known_agreement(entry, str(body["agreement"]))
        if agreement.assigner != entry.statement.member:
            raise AuditFailure(entry.seq, f"{entry.statement.member} revokes another's licence")
        if agreement.revoked_at is not None:
            raise AuditFailure(entry.seq, f"licence {body['agreement']} is revoked twice")
        agreement.revoked_at = parse_time(entry.time)

    def _delivered(self, entry: Entry, body: dict[str, Any]) -> None:
        agreement = self._known_agreement(entry, str(body["agreement"]))
        at = parse_time(entry.time)
        if body["buyer"] != agreement.assignee or body["version"] != agreement.target:
            raise AuditFailure(entry.seq, "a delivery to another member or of another version")
        ended = agreement.revoked_at is not None and agreement.revoked_at <= at
        expired = agreement.valid_until is not None and at >= agreement.valid_until
        if ended or expired or at < agreement.valid_from:
            raise AuditFailure(
                entry.seq, f"a delivery under licence {body['agreement']} not in force"
            )

    # -- money -------------------------------------------------------------------------------

    def _deposited(self, entry: Entry, body: dict[str, Any]) -> None:
        amount = _amount(entry, body)
        self.deposited += amount
        self._move(entry, {str(body["member"]): amount})

    def _withdrawn_cash(self, entry: Entry, body: dict[str, Any]) -> None:
        amount = _amount(entry, body)
        self.withdrawn += amount
        self._move(entry, {str(body["member"]): -amount})

    def _move(self, entry: Entry, postings: dict[str, int]) -> None:
        for account, amount in postings.items():
            if self.balances[account] + amount < 0:
                raise AuditFailure(
                    entry.seq,
                    f"{account} would hold {self.balances[account] + amount} credits: "
                    "an overdraft, credits spent that were never there",
                )
        for account, amount in postings.items():
            self.balances[account] += amount

    # -- lookups -----------------------------------------------------------------------------

    def _known_offer(self, entry: Entry, offer_id: str) -> _Offer:
        offer = self.offers.get(offer_id)
        if offer is None:
            raise AuditFailure(entry.seq, f"offer {offer_id} was never published")
        return offer

    def _known_agreement(self, entry: Entry, agreement_id: str) -> _Agreement:
        agreement = self.agreements.get(agreement_id)
        if agreement is None:
            raise AuditFailure(entry.seq, f"licence {agreement_id} was never granted")
        return agreement


def _amount(entry: Entry, body: dict[str, Any]) -> int:
    amount = body["amount"]
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise AuditFailure(entry.seq, f"amount {amount!r} is not a positive whole number")
    return amount


_HANDLERS = {
    "dataset.version.published": MarketAuditor._published,
    "offer.published": MarketAuditor._offer,
    "offer.withdrawn": MarketAuditor._withdrawn,
    "licence.granted": MarketAuditor._granted,
    "licence.revoked": MarketAuditor._revoked,
    "data.delivered": MarketAuditor._delivered,
    "account.deposited": MarketAuditor._deposited,
    "account.withdrawn": MarketAuditor._withdrawn_cash,
}
