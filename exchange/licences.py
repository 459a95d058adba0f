"""Offers and agreements: a provider offers, a buyer accepts and pays, a provider may revoke.

Each use case checks a signed statement and writes its rows, its ledger entry and (for a
purchase) the money's journal transaction in one database transaction. The statement bodies are
built by ``licensing.statements`` on both sides — the client signs ``agreement_body(...)`` and
the server recomputes it from the offer it holds — so a buyer signs exactly the terms, price and
fee that the exchange records, or the purchase is refused. ``docs/ledger.md`` §5 specifies the
bodies; ``docs/licensing.md`` the terms.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from catalog import services as catalog
from catalog.errors import CatalogError
from catalog.models import Dataset, DatasetVersion
from exchange import lineage
from exchange.errors import Conflict, Forbidden, InvalidInput, NotFound
from exchange.models import Member
from exchange.settlement import (
    FEES,
    MAX_AMOUNT,
    Movement,
    apply,
    check_funds,
    lock_accounts,
    member_account_id,
)
from exchange.statements import StatementPolicy, check_statement, record_statement
from ledger.audit import OPERATOR
from ledger.entry import SignedStatement, format_time, parse_time
from ledger.errors import FormatError
from licensing.errors import LicensingError
from licensing.iris import AGREEMENT_PREFIX, OFFER_PREFIX
from licensing.models import AGREEMENT_ID, OFFER_ID, Agreement, Offer
from licensing.statements import (
    AGREEMENT_FIELDS,
    GRANTED,
    OFFER_FIELDS,
    OFFER_PUBLISHED,
    OFFER_WITHDRAWN,
    REVOKED,
    agreement_body,
)
from licensing.terms import Price, Terms

AUDITOR = "auditor"
MAX_REASON = 500
_OFFER_ID, _AGREEMENT_ID = re.compile(OFFER_ID), re.compile(AGREEMENT_ID)


def fee_for(price: int, fee_bps: int) -> int:
    """The exchange's share of a price, in whole credits (rounded down: never above the rate)."""
    return price * fee_bps // 10_000


def offer_public(
    offer: Offer, dataset: Dataset, *, fee_bps: int, now: datetime | None = None
) -> dict[str, Any]:
    """An offer as members see it (and as ``agreement_body`` reads it)."""
    moment = now or datetime.now(UTC)
    return {
        "id": offer.id,
        "dataset": dataset.slug,
        "version": offer.version_id,
        "provider": offer.provider,
        "buyer": offer.buyer,
        "terms": offer.terms,
        "terms_sha256": offer.terms_sha256,
        "price": Price(offer.price).to_json(),
        "fee": fee_for(offer.price, fee_bps),
        "valid_from": format_time(offer.valid_from),
        "valid_until": format_time(offer.valid_until) if offer.valid_until else None,
        "status": offer.status,
        "open": offer_is_open(offer, moment),
        "published_seq": offer.published_seq,
        "withdrawn_seq": offer.withdrawn_seq,
        "withdrawn_reason": offer.withdrawn_reason,
    }


def offer_is_open(offer: Offer, at: datetime) -> bool:
    return (
        offer.status == "open"
        and offer.valid_from <= at
        and (offer.valid_until is None or at < offer.valid_until)
    )


# -- parsing --------------------------------------------------------------------------------


def _exact_fields(body: dict[str, Any], fields: Sequence[str], what: str) -> None:
    if set(body) != set(fields):
        missing, extra = sorted(set(fields) - set(body)), sorted(set(body) - set(fields))
        raise InvalidInput(f"{what} body: missing {missing}, unexpected {extra}")


def parse_terms(value: object, *, what: str = "terms") -> Terms:
    """Terms exactly as signed: they must parse and be in canonical form (so that what is stored
    and evaluated is byte for byte what the signer saw)."""
    try:
        terms = Terms.from_json(value)
    except LicensingError as exc:
        raise InvalidInput(f"{what}: {exc}") from None
    if terms.to_json() != value:
        raise InvalidInput(f"{what} are not in canonical form; sign {terms.to_json()} instead")
    return terms


def _time(value: object, what: str) -> datetime:
    try:
        return parse_time(value if isinstance(value, str) else repr(value), what=what)
    except FormatError as exc:
        raise InvalidInput(str(exc)) from None


def _reason(body: dict[str, Any], what: str) -> str:
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        raise InvalidInput(f"{what} needs a reason of 1-{MAX_REASON} characters")
    return reason


@dataclass(frozen=True)
class OfferTerms:
    """A validated ``offer.published`` body."""

    offer_id: str
    dataset: str
    version: str | None
    terms: Terms
    price: Price
    valid_from: datetime
    valid_until: datetime | None
    buyer: str | None

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> OfferTerms:
        _exact_fields(body, OFFER_FIELDS, OFFER_PUBLISHED)
        offer_id = body["offer"]
        if not isinstance(offer_id, str) or not _OFFER_ID.fullmatch(offer_id):
            raise InvalidInput("offer id must be 'off_' and 24 lowercase hex digits")
        version = body["version"]
        if version is not None and not isinstance(version, str):
            raise InvalidInput("version must be a version id or null (any version)")
        try:
            price = Price.from_json(body["price"])
        except LicensingError as exc:
            raise InvalidInput(f"price: {exc}") from None
        if price.amount > MAX_AMOUNT:  # no purchase could move it: the most one movement carries
            raise InvalidInput(f"price: at most {MAX_AMOUNT} credits")
        valid_from = _time(body["valid_from"], "valid_from")
        valid_until = None
        if body["valid_until"] is not None:
            valid_until = _time(body["valid_until"], "valid_until")
            if valid_until <= valid_from:
                raise InvalidInput("the offer's valid_until must be after its valid_from")
        buyer = body["buyer"]
        if buyer is not None and not isinstance(buyer, str):
            raise InvalidInput("buyer must be a member id or null (a public offer)")
        if not isinstance(body["dataset"], str):
            raise InvalidInput("dataset must be a dataset slug")
        return cls(
            offer_id=offer_id,
            dataset=body["dataset"],
            version=version,
            terms=parse_terms(body["terms"]),
            price=price,
            valid_from=valid_from,
            valid_until=valid_until,
            buyer=buyer,
        )


# -- use cases ------------------------------------------------------------------------------


def publish_offer(
    session: Session, signed: SignedStatement, *, caller: Member, policy: StatementPolicy
) -> Offer:
    """``offer.published``: the provider of the dataset offers it (or one version) under terms."""
    check_statement(session, signed, caller=caller, expected_type=OFFER_PUBLISHED, policy=policy)
    spec = OfferTerms.from_body(signed.statement.body)
    dataset = find_dataset(session, spec.dataset)
    if dataset.provider != caller.id:
        raise Forbidden(f"dataset {dataset.slug} belongs to {dataset.provider}")
    offered = _offered_versions(session, dataset, spec.version)
    if spec.buyer is not None:
        buyer = session.get(Member, spec.buyer)
        if buyer is None or "buyer" not in buyer.role_set:
            raise InvalidInput(f"a private offer names a buyer; {spec.buyer!r} is not one")
    now = datetime.now(UTC)
    if spec.valid_until is not None and spec.valid_until <= now:
        raise InvalidInput("the offer would already have expired (valid_until is in the past)")
    if session.get(Offer, spec.offer_id) is not None:
        raise Conflict(f"offer {spec.offer_id} already exists")
    for version in offered:
        lineage.check_offer(session, version, spec.terms)
    entry = record_statement(session, signed)
    offer = Offer(
        id=spec.offer_id,
        dataset_id=_id(dataset),
        version_id=spec.version,
        provider=caller.id,
        buyer=spec.buyer,
        terms=spec.terms.to_json(),
        terms_sha256=spec.terms.digest(),
        price=spec.price.amount,
        valid_from=spec.valid_from,
        valid_until=spec.valid_until,
        published_seq=entry.seq,
        created_at=now,
    )
    session.add(offer)
    try:
        session.flush()
    except IntegrityError:  # a concurrent statement chose the same offer id
        raise Conflict(f"offer {spec.offer_id} already exists") from None
    return offer


def withdraw_offer(
    session: Session,
    signed: SignedStatement,
    *,
    offer_id: str,
    caller: Member,
    policy: StatementPolicy,
) -> Offer:
    """``offer.withdrawn``: no new agreements; those already made stand."""
    check_statement(session, signed, caller=caller, expected_type=OFFER_WITHDRAWN, policy=policy)
    body = signed.statement.body
    _exact_fields(body, ("offer", "reason"), OFFER_WITHDRAWN)
    if body["offer"] != offer_id:
        raise InvalidInput(f"the statement withdraws {body['offer']!r}, the URL names {offer_id}")
    reason = _reason(body, "withdrawing an offer")
    offer = _offer(session, offer_id, caller)
    if offer.provider != caller.id:
        raise Forbidden(f"offer {offer_id} is {offer.provider}'s")
    if offer.status == "withdrawn":
        raise Conflict(f"offer {offer_id} is already withdrawn")
    entry = record_statement(session, signed)
    offer.status, offer.withdrawn_seq, offer.withdrawn_reason = "withdrawn", entry.seq, reason
    session.add(offer)
    session.flush()
    return offer


def accept_offer(
    session: Session,
    signed: SignedStatement,
    *,
    offer_id: str,
    caller: Member,
    policy: StatementPolicy,
    fee_bps: int,
) -> Agreement:
    """``licence.granted``: the buyer accepts for one exact version, and pays, atomically."""
    check_statement(session, signed, caller=caller, expected_type=GRANTED, policy=policy)
    body = signed.statement.body
    _exact_fields(body, AGREEMENT_FIELDS, GRANTED)
    if body["offer"] != offer_id:
        raise InvalidInput(f"the statement accepts {body['offer']!r}, the URL names {offer_id}")
    agreement_id = body["agreement"]
    if not isinstance(agreement_id, str) or not _AGREEMENT_ID.fullmatch(agreement_id):
        raise InvalidInput("agreement id must be 'agr_' and 24 lowercase hex digits")
    offer = _offer(session, offer_id, caller)
    dataset = session.get(Dataset, offer.dataset_id)
    assert dataset is not None  # the foreign key
    if offer.provider == caller.id:
        raise Forbidden("a provider cannot buy its own offer")
    signed_at = parse_time(signed.statement.time)
    _check_open(offer, signed_at)
    version = _target_version(session, offer, body["target"])
    lineage.check_offer(session, version, Terms.from_json(offer.terms))
    public = offer_public(offer, dataset, fee_bps=fee_bps, now=signed_at)
    expected = agreement_body(
        public,
        agreement_id=agreement_id,
        buyer=caller.id,
        version=version.id,
        at=signed.statement.time,
    )
    _require_equal(body, expected)
    movement = Movement(
        "purchase",
        agreement_id,
        {
            member_account_id(caller.id): -offer.price,
            member_account_id(offer.provider): offer.price - public["fee"],
            FEES: public["fee"],
        },
    )
    # Lock the money first: concurrent purchases by this buyer queue here, and each sees the
    # agreements and balance the one before it committed.
    accounts = lock_accounts(session, list(movement.postings))
    _refuse_second_acceptance(session, offer, caller.id, version.id)
    if session.get(Agreement, agreement_id) is not None:
        raise Conflict(f"agreement {agreement_id} already exists")
    check_funds(accounts, movement)
    entry = record_statement(session, signed)
    agreement = Agreement(
        id=agreement_id,
        offer_id=offer.id,
        assigner=offer.provider,
        assignee=caller.id,
        version_id=version.id,
        terms=offer.terms,
        terms_sha256=offer.terms_sha256,
        price=offer.price,
        fee=public["fee"],
        valid_from=signed_at,
        valid_until=_time(expected["valid_until"], "valid_until")
        if expected["valid_until"]
        else None,
        granted_seq=entry.seq,
        created_at=datetime.now(UTC),
    )
    session.add(agreement)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(
            f"{caller.id} has already accepted offer {offer.id} for this version"
        ) from None
    if offer.price:
        apply(session, accounts, movement, seq=entry.seq)
    return agreement


def revoke_agreement(
    session: Session,
    signed: SignedStatement,
    *,
    agreement_id: str,
    caller: Member,
    policy: StatementPolicy,
) -> Agreement:
    """``licence.revoked``: the provider ends an agreement for cause, from the entry's time on.

    Uses before that time stay permitted (evaluation is historical); no money moves back.
    """
    check_statement(session, signed, caller=caller, expected_type=REVOKED, policy=policy)
    body = signed.statement.body
    _exact_fields(body, ("agreement", "reason"), REVOKED)
    if body["agreement"] != agreement_id:
        raise InvalidInput(
            f"the statement revokes {body['agreement']!r}, the URL names {agreement_id}"
        )
    reason = _reason(body, "revoking a licence")
    agreement = visible_agreement(session, agreement_id, caller)
    if agreement.assigner != caller.id:
        raise Forbidden(f"only {agreement.assigner}, who granted {agreement_id}, may revoke it")
    if agreement.revoked_at is not None:
        raise Conflict(f"agreement {agreement_id} is already revoked")
    entry = record_statement(session, signed)
    agreement.revoked_at = parse_time(entry.time)
    agreement.revoked_seq, agreement.revocation_reason = entry.seq, reason
    session.add(agreement)
    session.flush()
    return agreement


# -- reading --------------------------------------------------------------------------------


def visible_offers(
    session: Session,
    caller: Member,
    *,
    dataset: str | None = None,
    version: str | None = None,
    include_closed: bool = False,
) -> list[tuple[Offer, Dataset]]:
    """Public offers, and private ones to their buyer and provider (operators see all)."""
    query = select(Offer, Dataset).join(Dataset, col(Dataset.id) == col(Offer.dataset_id))
    if OPERATOR not in caller.role_set:
        query = query.where(
            or_(
                col(Offer.buyer).is_(None),
                col(Offer.buyer) == caller.id,
                col(Offer.provider) == caller.id,
            )
        )
    if dataset is not None:
        query = query.where(Dataset.slug == dataset)
    if version is not None:
        version_row = session.get(DatasetVersion, version)
        if version_row is None:
            raise NotFound(f"no version {version!r}")
        query = query.where(
            Offer.dataset_id == version_row.dataset_id,
            or_(col(Offer.version_id).is_(None), col(Offer.version_id) == version),
        )
    if not include_closed:
        query = query.where(Offer.status == "open")
    rows = session.exec(query.order_by(col(Offer.published_seq))).all()
    return [(offer, data) for offer, data in rows]


def visible_offer(session: Session, offer_id: str, caller: Member) -> tuple[Offer, Dataset]:
    offer = _offer(session, offer_id, caller)
    dataset = session.get(Dataset, offer.dataset_id)
    assert dataset is not None
    return offer, dataset


def visible_agreement(session: Session, agreement_id: str, caller: Member) -> Agreement:
    """An agreement, to its two parties, operators and auditors; to others it does not exist."""
    agreement = session.get(Agreement, agreement_id)
    if agreement is None or not _may_see(agreement, caller):
        raise NotFound(f"no agreement {agreement_id!r} of yours")
    return agreement


def agreements_of(
    session: Session, caller: Member, *, member: str | None = None, version: str | None = None
) -> list[Agreement]:
    """The caller's agreements (as buyer or provider); operators and auditors may ask for any
    member's."""
    subject = member or caller.id
    if subject != caller.id and not caller.role_set & {OPERATOR, AUDITOR}:
        raise Forbidden(f"{caller.id} may list only its own agreements")
    query = select(Agreement).where(
        or_(col(Agreement.assignee) == subject, col(Agreement.assigner) == subject)
    )
    if version is not None:
        query = query.where(Agreement.version_id == version)
    return list(session.exec(query.order_by(col(Agreement.granted_seq))).all())


def agreement_public(agreement: Agreement, *, now: datetime | None = None) -> dict[str, Any]:
    moment = now or datetime.now(UTC)
    return {
        "id": agreement.id,
        "offer": agreement.offer_id,
        "assigner": agreement.assigner,
        "assignee": agreement.assignee,
        "target": agreement.version_id,
        "terms": agreement.terms,
        "terms_sha256": agreement.terms_sha256,
        "price": Price(agreement.price).to_json(),
        "fee": agreement.fee,
        "valid_from": format_time(agreement.valid_from),
        "valid_until": format_time(agreement.valid_until) if agreement.valid_until else None,
        "granted_seq": agreement.granted_seq,
        "revoked_at": format_time(agreement.revoked_at) if agreement.revoked_at else None,
        "revoked_seq": agreement.revoked_seq,
        "revocation_reason": agreement.revocation_reason,
        "state": agreement_state(agreement, moment),
    }


def agreement_state(agreement: Agreement, at: datetime) -> str:
    if agreement.revoked_at is not None and agreement.revoked_at <= at:
        return "revoked"
    if at < agreement.valid_from:
        return "pending"
    if agreement.valid_until is not None and at >= agreement.valid_until:
        return "expired"
    return "active"


def offer_policy(offer: Offer, dataset: Dataset) -> dict[str, Any]:
    """The offer as an ODRL 2.2 ``Offer`` policy (JSON-LD)."""
    return _policy(
        "Offer",
        f"{OFFER_PREFIX}{offer.id}",
        target=offer.version_id or dataset.slug,
        terms=offer.terms,
        assigner=offer.provider,
        assignee=offer.buyer,
        price=offer.price,
        window=(offer.valid_from, offer.valid_until),
    )


def agreement_policy(agreement: Agreement) -> dict[str, Any]:
    """The agreement as an ODRL 2.2 ``Agreement`` policy (JSON-LD)."""
    return _policy(
        "Agreement",
        f"{AGREEMENT_PREFIX}{agreement.id}",
        target=agreement.version_id,
        terms=agreement.terms,
        assigner=agreement.assigner,
        assignee=agreement.assignee,
        price=agreement.price,
        window=(agreement.valid_from, agreement.valid_until),
    )


def _policy(
    kind: str,
    uid: str,
    *,
    target: str,
    terms: dict[str, Any],
    assigner: str,
    assignee: str | None,
    price: int,
    window: tuple[datetime, datetime | None],
) -> dict[str, Any]:
    from licensing.odrl import Policy, to_jsonld  # pyld: loaded only when asked

    start, end = window
    policy = Policy(
        kind=kind,
        uid=uid,
        target=target,
        terms=Terms.from_json(terms),
        assigner=assigner,
        assignee=assignee,
        price=Price(price),
        valid_from=format_time(start),
        valid_until=format_time(end) if end else None,
    )
    return to_jsonld(policy)


# -- helpers --------------------------------------------------------------------------------


def _may_see(agreement: Agreement, caller: Member) -> bool:
    return caller.id in (agreement.assignee, agreement.assigner) or bool(
        caller.role_set & {OPERATOR, AUDITOR}
    )


def _id(dataset: Dataset) -> int:
    assert dataset.id is not None
    return dataset.id


def find_dataset(session: Session, slug: str) -> Dataset:
    try:
        return catalog.get_dataset(session, slug)
    except CatalogError as exc:
        raise NotFound(str(exc)) from None


def _offer(session: Session, offer_id: str, caller: Member) -> Offer:
    """An offer the caller may see (a private offer is invisible to other buyers)."""
    offer = session.get(Offer, offer_id)
    visible = offer is not None and (
        offer.buyer is None
        or caller.id in (offer.buyer, offer.provider)
        or OPERATOR in caller.role_set
    )
    if offer is None or not visible:
        raise NotFound(f"no offer {offer_id!r}")
    return offer


def _offered_versions(
    session: Session, dataset: Dataset, version_id: str | None
) -> list[DatasetVersion]:
    if version_id is None:
        return list(catalog.versions(session, dataset))
    version = session.get(DatasetVersion, version_id)
    if version is None or version.dataset_id != dataset.id:
        raise InvalidInput(f"{dataset.slug} has no version {version_id!r}")
    if version.status != "published":
        raise Conflict(f"version {version_id} is {version.status}: it cannot be offered yet")
    return [version]


def _check_open(offer: Offer, at: datetime) -> None:
    if offer.status != "open":
        raise Conflict(f"offer {offer.id} was withdrawn: {offer.withdrawn_reason}")
    if at < offer.valid_from:
        raise Conflict(f"offer {offer.id} opens at {format_time(offer.valid_from)}")
    if offer.valid_until is not None and at >= offer.valid_until:
        raise Conflict(f"offer {offer.id} expired at {format_time(offer.valid_until)}")


def _target_version(session: Session, offer: Offer, target: object) -> DatasetVersion:
    if not isinstance(target, str):
        raise InvalidInput("target must be the exact version id (sha256:...) being licensed")
    version = session.get(DatasetVersion, target)
    if version is None or version.dataset_id != offer.dataset_id:
        raise InvalidInput(f"offer {offer.id} is not for version {target!r}")
    if offer.version_id is not None and offer.version_id != target:
        raise InvalidInput(f"offer {offer.id} is for version {offer.version_id} only")
    if version.status != "published":
        raise Conflict(f"version {target} is {version.status}: it cannot be licensed yet")
    return version


def _require_equal(body: dict[str, Any], expected: dict[str, Any]) -> None:
    for name in AGREEMENT_FIELDS:
        if body[name] != expected[name]:
            raise InvalidInput(
                f"the agreement's {name} must be {expected[name]!r} for this offer, "
                f"not {body[name]!r}"
            )


def _refuse_second_acceptance(session: Session, offer: Offer, buyer: str, version: str) -> None:
    existing = session.exec(
        select(Agreement.id).where(
            Agreement.offer_id == offer.id,
            Agreement.assignee == buyer,
            Agreement.version_id == version,
        )
    ).first()
    if existing is not None:
        raise Conflict(f"{buyer} already accepted offer {offer.id} for this version: {existing}")


__all__ = [
    "OfferTerms",
    "accept_offer",
    "agreement_public",
    "agreements_of",
    "fee_for",
    "offer_public",
    "publish_offer",
    "revoke_agreement",
    "visible_agreement",
    "visible_offer",
    "visible_offers",
    "withdraw_offer",
]
