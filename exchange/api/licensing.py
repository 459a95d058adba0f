"""Licensing routes: offers, agreements (licences), evaluation, and accounts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from exchange import evaluation, lineage, listings, settlement
from exchange import licences as service
from exchange.api.deps import CurrentMember, ExchangeDep, require_role
from exchange.api.members import recorded
from exchange.api.schemas import EntryRecorded, SeqPath, SignedStatementIn
from exchange.errors import Forbidden, InvalidInput, NotFound
from exchange.evaluation import decide_use
from exchange.statements import parse_signed_statement
from ledger.audit import OPERATOR
from ledger.entry import format_time, parse_time
from ledger.errors import FormatError
from licensing.errors import LicensingError
from licensing.evaluation import Use

router = APIRouter(tags=["licensing"])
JSONLD = "application/ld+json"


class PriceOut(BaseModel):
    amount: int
    currency: str


class OfferOut(BaseModel):
    id: str
    dataset: str
    version: str | None = Field(description="null: any published version of the dataset")
    provider: str
    buyer: str | None = Field(description="null: a public offer")
    terms: dict[str, Any] = Field(description="ODRL-shaped terms (docs/licensing.md)")
    terms_sha256: str
    price: PriceOut
    fee: int = Field(description="the exchange's share of the price at the current fee rate")
    valid_from: str
    valid_until: str | None
    status: str
    open: bool = Field(description="open for acceptance now")
    published_seq: int
    withdrawn_seq: int | None
    withdrawn_reason: str | None


class AgreementOut(BaseModel):
    id: str
    offer: str
    assigner: str
    assignee: str
    target: str
    terms: dict[str, Any]
    terms_sha256: str
    price: PriceOut
    fee: int
    valid_from: str
    valid_until: str | None
    granted_seq: int
    revoked_at: str | None
    revoked_seq: int | None
    revocation_reason: str | None
    state: str = Field(description="active, pending, expired or revoked, now")


class ReasonOut(BaseModel):
    code: str
    message: str
    agreement: str | None = None
    rule: dict[str, Any] | None = None


class UseOut(BaseModel):
    member: str
    version: str
    purpose: str
    commercial: bool
    territory: str | None
    at: str


class DecisionOut(BaseModel):
    permitted: bool
    use: UseOut
    agreement: str | None = Field(description="the agreement that permits the use")
    reasons: list[ReasonOut] = Field(description="the rules satisfied, or why each fails")
    attribution: list[str] = Field(description="notices the licensee must reproduce")


class PostingOut(BaseModel):
    seq: int
    kind: str
    reference: str
    amount: int
    time: str


class AccountOut(BaseModel):
    member: str
    balance: int
    history: list[PostingOut] = []


class BooksOut(BaseModel):
    accounts: dict[str, int]
    total: int = Field(description="the sum of every balance: always 0")
    unbalanced_transactions: int
    drifted_accounts: list[str]


class MoneyRecorded(EntryRecorded):
    balance: int


# -- offers ---------------------------------------------------------------------------------


@router.post("/offers", status_code=status.HTTP_201_CREATED, response_model=OfferOut)
def publish_offer(body: SignedStatementIn, caller: CurrentMember, exchange: ExchangeDep) -> Any:
    """A provider offers a dataset or one version (a signed ``offer.published``)."""
    require_role(caller, "provider")
    signed = parse_signed_statement(body.model_dump())
    with exchange.transaction() as session:
        offer = service.publish_offer(
            session, signed, caller=caller, policy=exchange.statement_policy
        )
        _, dataset = service.visible_offer(session, offer.id, caller)
        return service.offer_public(offer, dataset, fee_bps=exchange.settings.exchange_fee_bps)


@router.get("/offers", response_model=list[OfferOut])
def list_offers(
    caller: CurrentMember,
    exchange: ExchangeDep,
    dataset: Annotated[str | None, Query(max_length=64)] = None,
    version: Annotated[str | None, Query(max_length=71)] = None,
    include_closed: bool = False,
) -> Any:
    """Offers the caller may see: public ones, and private ones made to or by it."""
    with exchange.reading() as session:
        rows = service.visible_offers(
            session, caller, dataset=dataset, version=version, include_closed=include_closed
        )
        fee = exchange.settings.exchange_fee_bps
        return [service.offer_public(offer, data, fee_bps=fee) for offer, data in rows]


@router.get("/offers/{offer_id}", response_model=OfferOut)
def show_offer(offer_id: str, caller: CurrentMember, exchange: ExchangeDep) -> Any:
    with exchange.reading() as session:
        offer, dataset = service.visible_offer(session, offer_id, caller)
        return service.offer_public(offer, dataset, fee_bps=exchange.settings.exchange_fee_bps)


@router.get(
    "/offers/{offer_id}/odrl", response_class=Response, responses={200: {"content": {JSONLD: {}}}}
)
def offer_odrl(offer_id: str, caller: CurrentMember, exchange: ExchangeDep) -> Response:
    """The offer as an ODRL 2.2 ``Offer`` policy (JSON-LD)."""
    with exchange.reading() as session:
        offer, dataset = service.visible_offer(session, offer_id, caller)
    return _jsonld(service.offer_policy(offer, dataset))


@router.post("/offers/{offer_id}/withdraw", response_model=OfferOut)
def withdraw_offer(
    offer_id: str, body: SignedStatementIn, caller: CurrentMember, exchange: ExchangeDep
) -> Any:
    """The provider withdraws an offer (a signed ``offer.withdrawn``); agreements stand."""
    require_role(caller, "provider")
    signed = parse_signed_statement(body.model_dump())
    with exchange.transaction() as session:
        offer = service.withdraw_offer(
            session, signed, offer_id=offer_id, caller=caller, policy=exchange.statement_policy
        )
        _, dataset = service.visible_offer(session, offer.id, caller)
        return service.offer_public(offer, dataset, fee_bps=exchange.settings.exchange_fee_bps)


@router.post(
    "/offers/{offer_id}/accept", status_code=status.HTTP_201_CREATED, response_model=AgreementOut
)
def accept_offer(
    offer_id: str, body: SignedStatementIn, caller: CurrentMember, exchange: ExchangeDep
) -> Any:
    """A buyer accepts an offer for one exact version and pays (a signed ``licence.granted``)."""
    require_role(caller, "buyer")
    signed = parse_signed_statement(body.model_dump())
    with exchange.transaction() as session:
        agreement = service.accept_offer(
            session,
            signed,
            offer_id=offer_id,
            caller=caller,
            policy=exchange.statement_policy,
            fee_bps=exchange.settings.exchange_fee_bps,
        )
        return service.agreement_public(agreement)


# -- agreements -----------------------------------------------------------------------------


@router.get("/licences", response_model=list[AgreementOut])
def list_agreements(
    caller: CurrentMember,
    exchange: ExchangeDep,
    member: Annotated[str | None, Query(max_length=64)] = None,
    version: Annotated[str | None, Query(max_length=71)] = None,
) -> Any:
    """The caller's agreements as buyer or provider (operators and auditors: any member's)."""
    with exchange.reading() as session:
        rows = service.agreements_of(session, caller, member=member, version=version)
        return [service.agreement_public(a) for a in rows]


@router.get("/licences/{agreement_id}", response_model=AgreementOut)
def show_agreement(agreement_id: str, caller: CurrentMember, exchange: ExchangeDep) -> Any:
    with exchange.reading() as session:
        return service.agreement_public(service.visible_agreement(session, agreement_id, caller))


@router.get(
    "/licences/{agreement_id}/odrl",
    response_class=Response,
    responses={200: {"content": {JSONLD: {}}}},
)
def agreement_odrl(agreement_id: str, caller: CurrentMember, exchange: ExchangeDep) -> Response:
    """The agreement as an ODRL 2.2 ``Agreement`` policy (JSON-LD)."""
    with exchange.reading() as session:
        agreement = service.visible_agreement(session, agreement_id, caller)
    return _jsonld(service.agreement_policy(agreement))


@router.post("/licences/{agreement_id}/revoke", response_model=AgreementOut)
def revoke_agreement(
    agreement_id: str, body: SignedStatementIn, caller: CurrentMember, exchange: ExchangeDep
) -> Any:
    """The provider revokes an agreement for cause (a signed ``licence.revoked``)."""
    require_role(caller, "provider")
    signed = parse_signed_statement(body.model_dump())
    with exchange.transaction() as session:
        agreement = service.revoke_agreement(
            session,
            signed,
            agreement_id=agreement_id,
            caller=caller,
            policy=exchange.statement_policy,
        )
        return service.agreement_public(agreement)


# -- evaluation -----------------------------------------------------------------------------


@router.get("/may", response_model=DecisionOut)
def may(
    caller: CurrentMember,
    exchange: ExchangeDep,
    member: Annotated[str, Query(max_length=64)],
    version: Annotated[str, Query(max_length=71)],
    purpose: Annotated[str, Query(max_length=32)],
    commercial: bool = False,
    territory: Annotated[str | None, Query(pattern="^[A-Za-z]{2}$")] = None,
    at: Annotated[str | None, Query(description="RFC 3339 UTC ms; default: now")] = None,
) -> Any:
    """May ``member`` use ``version`` for ``purpose`` (commercially, in ``territory``) at ``at``?

    Any member may ask: the agreements behind the answer are on the public ledger.
    """
    try:
        moment = parse_time(at, what="at") if at is not None else datetime.now(UTC)
        use = Use(
            member=member,
            version=version,
            purpose=purpose,
            commercial=commercial,
            territory=territory.upper() if territory else None,
            at=moment,
        )
    except (FormatError, LicensingError) as exc:
        raise InvalidInput(str(exc)) from None
    with exchange.reading() as session:
        decision = decide_use(session, use)
    return decision_out(decision.to_json())


def decision_out(value: dict[str, Any]) -> DecisionOut:
    return DecisionOut.model_validate(value)


# -- accounts -------------------------------------------------------------------------------


def _account_out(session: Any, member_id: str, *, limit: int) -> AccountOut:
    account = settlement.account_of(session, member_id)
    history = [
        PostingOut(
            seq=p.seq, kind=p.kind, reference=p.reference, amount=p.amount, time=format_time(p.time)
        )
        for p in settlement.history(session, account.id, limit=limit)
    ]
    return AccountOut(member=member_id, balance=account.balance, history=history)


@router.get("/accounts/{member_id}", response_model=AccountOut)
def show_account(
    member_id: str,
    caller: CurrentMember,
    exchange: ExchangeDep,
    limit: Annotated[int, Query(ge=0, le=1000)] = 100,
) -> AccountOut:
    """A member's balance and recent postings (the member itself, operators, auditors)."""
    if member_id != caller.id and not caller.role_set & {OPERATOR, "auditor"}:
        raise Forbidden(f"{caller.id} may see only its own account")
    with exchange.reading() as session:
        return _account_out(session, member_id, limit=limit)


@router.get("/accounts", response_model=BooksOut)
def show_books(caller: CurrentMember, exchange: ExchangeDep) -> BooksOut:
    """Every balance and the books' invariants (operators and auditors)."""
    require_role(caller, OPERATOR, "auditor")
    with exchange.reading() as session:
        books = settlement.books(session)
    return BooksOut(
        accounts={a.id: a.balance for a in books.accounts},
        total=books.total,
        unbalanced_transactions=books.unbalanced_transactions,
        drifted_accounts=books.drifted_accounts,
    )


def _cash(
    entry_type: str, member_id: str, body: SignedStatementIn, caller: Any, exchange: Any
) -> MoneyRecorded:
    require_role(caller, OPERATOR)
    signed = parse_signed_statement(body.model_dump())
    with exchange.transaction() as session:
        entry, account = settlement.record_cash(
            session,
            signed,
            entry_type=entry_type,
            member_id=member_id,
            caller=caller,
            policy=exchange.statement_policy,
        )
        return MoneyRecorded(**recorded(entry).model_dump(), balance=account.balance)


@router.post(
    "/accounts/{member_id}/deposits",
    status_code=status.HTTP_201_CREATED,
    response_model=MoneyRecorded,
)
def deposit(
    member_id: str, body: SignedStatementIn, caller: CurrentMember, exchange: ExchangeDep
) -> MoneyRecorded:
    """An operator credits a member (a signed ``account.deposited``)."""
    return _cash(settlement.DEPOSITED, member_id, body, caller, exchange)


@router.post(
    "/accounts/{member_id}/withdrawals",
    status_code=status.HTTP_201_CREATED,
    response_model=MoneyRecorded,
)
def withdraw(
    member_id: str, body: SignedStatementIn, caller: CurrentMember, exchange: ExchangeDep
) -> MoneyRecorded:
    """An operator debits a member (a signed ``account.withdrawn``); no overdraft."""
    return _cash(settlement.WITHDRAWN, member_id, body, caller, exchange)


def _jsonld(document: dict[str, Any]) -> Response:
    import json

    return Response(json.dumps(document, ensure_ascii=False, indent=2), media_type=JSONLD)


# -- compliance -----------------------------------------------------------------------------


class ComplianceCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    manifest: dict[str, Any] = Field(description="a training manifest (docs/evaluation.md)")
    member: str | None = Field(
        default=None, description="whose training data (operators, auditors); default: yours"
    )


class AttestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    manifest: dict[str, Any]
    signed: SignedStatementIn = Field(description="a signed model.training.attested statement")


class AttestedOut(EntryRecorded):
    report: dict[str, Any]


class AttestationOut(BaseModel):
    seq: int
    member: str
    model: str
    manifest_sha256: str
    report_sha256: str
    created_at: str


@router.post("/compliance/check", response_model=dict[str, Any])
def compliance_check(
    body: ComplianceCheckIn, caller: CurrentMember, exchange: ExchangeDep
) -> dict[str, Any]:
    """Check a training manifest against the member's licences: a verdict per item."""
    manifest = evaluation.parse_manifest(body.manifest)
    with exchange.reading() as session:
        member = evaluation.subject_of(caller, body.member)
        return evaluation.check_manifest(session, manifest, member=member).to_json()


@router.post(
    "/compliance/spdx", response_class=Response, responses={200: {"content": {JSONLD: {}}}}
)
def compliance_spdx(
    body: ComplianceCheckIn, caller: CurrentMember, exchange: ExchangeDep
) -> Response:
    """The compliance report as an SPDX 3.0 AI package with ``trainedOn`` relationships."""
    manifest = evaluation.parse_manifest(body.manifest)
    with exchange.reading() as session:
        member = evaluation.subject_of(caller, body.member)
        report = evaluation.check_manifest(session, manifest, member=member)
        document = evaluation.spdx_document(session, report, base_url=exchange.origin)
    return _jsonld(document)


@router.post(
    "/compliance/attestations", status_code=status.HTTP_201_CREATED, response_model=AttestedOut
)
def compliance_attest(body: AttestIn, caller: CurrentMember, exchange: ExchangeDep) -> AttestedOut:
    """Record a compliant check as a signed ``model.training.attested`` entry (model builders)."""
    require_role(caller, "buyer")
    manifest = evaluation.parse_manifest(body.manifest)
    signed = parse_signed_statement(body.signed.model_dump())
    with exchange.transaction() as session:
        entry, report = evaluation.attest(
            session, signed, manifest=manifest, caller=caller, policy=exchange.statement_policy
        )
    return AttestedOut(**recorded(entry).model_dump(), report=report.to_json())


@router.get("/compliance/attestations", response_model=list[AttestationOut])
def list_attestations(
    caller: CurrentMember,
    exchange: ExchangeDep,
    member: Annotated[str | None, Query(max_length=64)] = None,
) -> list[AttestationOut]:
    """A member's training attestations (they are public entries of the ledger)."""
    with exchange.reading() as session:
        rows = evaluation.attestations_of(session, member or caller.id)
        return [
            AttestationOut(
                seq=r.seq,
                member=r.member,
                model=r.model,
                manifest_sha256=r.manifest_sha256,
                report_sha256=r.report_sha256,
                created_at=format_time(r.created_at),
            )
            for r in rows
        ]


@router.get("/compliance/attestations/{seq}/bundle", response_model=dict[str, Any])
def attestation_bundle(
    seq: SeqPath, caller: CurrentMember, exchange: ExchangeDep
) -> dict[str, Any]:
    """What an auditor needs to verify the attestation offline with the log's key alone."""
    with exchange.transaction() as session:
        return evaluation.attestation_bundle(
            session, seq, log_signer=exchange.log_signer, policy=exchange.witnesses.policy
        )


# -- lineage --------------------------------------------------------------------------------


class SourceOut(BaseModel):
    version: str
    agreement: str | None


class LineageOut(BaseModel):
    version: str
    method: str | None
    sources: list[SourceOut]
    inherited_terms: dict[str, Any] | None
    derived: list[str] = Field(description="versions derived from this one")


@router.get("/versions/{version_id}/lineage", response_model=LineageOut)
def version_lineage(version_id: str, caller: CurrentMember, exchange: ExchangeDep) -> LineageOut:
    """A version's declared sources, the terms it inherits, and what derives from it."""
    with exchange.reading() as session:
        shown = lineage.describe(session, version_id)
    return LineageOut(**shown)


@router.get(
    "/versions/{version_id}/lineage/prov",
    response_class=Response,
    responses={200: {"content": {"text/turtle": {}, "application/json": {}}}},
)
def version_lineage_prov(
    version_id: str,
    caller: CurrentMember,
    exchange: ExchangeDep,
    format: Annotated[str, Query(pattern="^(turtle|json)$")] = "turtle",
) -> Response:
    """The version's lineage as W3C PROV-O (Turtle) or PROV-JSON."""
    from licensing.prov import to_provjson, to_turtle  # loads rdflib: only when asked

    with exchange.reading() as session:
        records = lineage.lineage_records(session, version_id)
    if format == "json":
        return Response(to_provjson(records), media_type="application/json")
    return Response(to_turtle(records), media_type="text/turtle")


# -- imported listings ------------------------------------------------------------------------


class DpiImportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    summaries: dict[str, Any] = Field(
        description="DPI summary files by name: each an object of datasets keyed by uid"
    )


class ImportedListing(BaseModel):
    uid: str = Field(description="the DPI's Unique Dataset Identifier")
    slug: str
    name: str
    own: str = Field(description="use class from its own licences")
    inherited: str = Field(description="use class including its lineage")
    unknown_licences: list[str]
    unresolved_sources: list[str]


@router.post("/listings/dpi", response_model=list[ImportedListing])
def import_dpi(body: DpiImportIn, caller: CurrentMember, exchange: ExchangeDep) -> Any:
    """Create or update metadata-only listings from Data Provenance Initiative dataset cards."""
    require_role(caller, "provider", OPERATOR)
    with exchange.transaction() as session:
        return listings.import_dpi(session, body.summaries, caller=caller)


@router.get("/datasets/{slug}/listing", response_model=dict[str, Any])
def dataset_listing(slug: str, caller: CurrentMember, exchange: ExchangeDep) -> Any:
    """An imported listing's licences, creators, lineage links and use classes."""
    with exchange.reading() as session:
        dataset = service.find_dataset(session, slug)
        shown = listings.listing_of(session, dataset)
    if shown is None:
        raise NotFound(f"{slug} is not an imported listing")
    return shown
