"""Derived versions: their declared sources, the terms they inherit, and what that forbids.

A provider publishing a filtered, deduplicated or merged version names its sources in the signed
``dataset.version.published`` statement (``derived_from``: source version and the agreement used,
``method``). The exchange checks that the provider may derive from each source — its own
versions freely (with whatever they inherit), another provider's only under an active agreement
whose terms permit derivation — and stores the combined terms the new version inherits
(``licensing.lineage.inherit``). Offers of a derived version must then carry those restrictions
over and may not exist at all if a source forbids redistribution.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from catalog import services as catalog
from catalog.models import Dataset, DatasetVersion
from exchange.errors import Forbidden, InvalidInput, NotFound
from exchange.models import Member
from exchange.published import Declared
from ledger.entry import format_time
from licensing.errors import LineageError
from licensing.lineage import Source, check_carried_over, inherit
from licensing.models import Agreement, VersionLineage, VersionSource
from licensing.terms import Terms

if TYPE_CHECKING:
    from licensing.prov import LineageRecord

OWNER_TERMS = Terms(commercial=True, derivation=True, redistribution=True)
"""What a provider may do with its own, underived versions: anything."""


def resolve_sources(
    session: Session, declared: Declared, *, caller: Member, at: datetime | None = None
) -> list[Source]:
    """The terms under which ``caller`` holds each declared source, or a refusal saying why."""
    moment = at or datetime.now(UTC)
    sources: list[Source] = []
    for version_id, agreement_id in declared.sources:
        version = session.get(DatasetVersion, version_id)
        if version is None:
            raise NotFound(f"source version {version_id} is not on the exchange")
        dataset = catalog.dataset_of(session, version)
        if dataset.provider == caller.id:
            if agreement_id is not None:
                raise InvalidInput(f"{version_id} is your own version: name no agreement for it")
            sources.append(Source(version_id, inherited_terms(session, version_id) or OWNER_TERMS))
            continue
        terms = _licensed_terms(session, version_id, agreement_id, caller, moment)
        sources.append(Source(version_id, terms, agreement_id))
    return sources


def _licensed_terms(
    session: Session, version_id: str, agreement_id: str | None, caller: Member, at: datetime
) -> Terms:
    if agreement_id is None:
        raise Forbidden(
            f"source {version_id} is another provider's: name the agreement that licenses it"
        )
    agreement = session.get(Agreement, agreement_id)
    if agreement is None or agreement.assignee != caller.id:
        raise Forbidden(f"agreement {agreement_id} is not one of {caller.id}'s")
    if agreement.version_id != version_id:
        raise Forbidden(
            f"agreement {agreement_id} licenses {agreement.version_id}, not {version_id}"
        )
    if agreement.revoked_at is not None and agreement.revoked_at <= at:
        raise Forbidden(f"agreement {agreement_id} was revoked: {agreement.revocation_reason}")
    if agreement.valid_until is not None and at >= agreement.valid_until:
        raise Forbidden(f"agreement {agreement_id} expired at {format_time(agreement.valid_until)}")
    if at < agreement.valid_from:
        raise Forbidden(f"agreement {agreement_id} is not valid yet")
    return Terms.from_json(agreement.terms)


def record_lineage(
    session: Session, version: DatasetVersion, declared: Declared, sources: Sequence[Source]
) -> Terms:
    """Store the sources and the inherited terms; refuse a derivation a source forbids."""
    try:
        inherited = inherit(sources, offered=False)
    except LineageError as exc:
        raise Forbidden(f"this derivation is not permitted: {exc}") from None
    session.add(
        VersionLineage(
            version_id=version.id, method=declared.method, inherited_terms=inherited.to_json()
        )
    )
    for position, source in enumerate(sources):
        session.add(
            VersionSource(
                version_id=version.id,
                source_id=source.version,
                agreement_id=source.agreement,
                position=position,
            )
        )
    session.flush()
    return inherited


def inherited_terms(session: Session, version_id: str) -> Terms | None:
    row = session.get(VersionLineage, version_id)
    return Terms.from_json(row.inherited_terms) if row is not None else None


def check_offer(session: Session, version: DatasetVersion, terms: Terms) -> None:
    """Refuse offering a derived version against its sources' terms (redistribution, and every
    restriction that must carry over)."""
    inherited = inherited_terms(session, version.id)
    if inherited is None:
        return
    if not inherited.redistribution:
        raise Forbidden(
            f"version {version.id} is derived from sources whose licences forbid "
            "redistribution: it cannot be offered"
        )
    try:
        check_carried_over(terms, inherited)
    except LineageError as exc:
        raise Forbidden(f"the terms are looser than version {version.id} inherits: {exc}") from None


def ancestors(session: Session, version_ids: Iterable[str]) -> set[str]:
    """Every version the given ones derive from, transitively."""
    seen: set[str] = set()
    frontier = set(version_ids)
    while frontier:
        rows = session.exec(
            select(VersionSource.source_id).where(col(VersionSource.version_id).in_(frontier))
        ).all()
        frontier = set(rows) - seen
        seen |= frontier
    return seen


def lineage_records(session: Session, version_id: str) -> list[LineageRecord]:
    """The derivation of ``version_id`` and of each derived version it descends from."""
    from licensing.prov import LineageRecord  # PROV support loads rdflib: only when asked

    if session.get(DatasetVersion, version_id) is None:
        raise NotFound(f"no version {version_id!r}")
    records: list[LineageRecord] = []
    pending, done = [version_id], set()
    while pending:
        current = pending.pop(0)
        if current in done:
            continue
        done.add(current)
        row = session.get(VersionLineage, current)
        if row is None:
            continue
        sources = session.exec(
            select(VersionSource)
            .where(VersionSource.version_id == current)
            .order_by(col(VersionSource.position))
        ).all()
        version = catalog.get_version(session, current)
        dataset = session.get(Dataset, version.dataset_id)
        assert dataset is not None
        records.append(
            LineageRecord(
                derived=current,
                dataset=dataset.slug,
                method=row.method,
                agent=dataset.provider,
                at=format_time(version.created_at),
                sources=tuple((s.source_id, s.agreement_id) for s in sources),
            )
        )
        pending.extend(s.source_id for s in sources)
    return records


def sources_of(session: Session, version_id: str) -> list[VersionSource]:
    return list(
        session.exec(
            select(VersionSource)
            .where(VersionSource.version_id == version_id)
            .order_by(col(VersionSource.position))
        ).all()
    )


def describe(session: Session, version_id: str) -> dict[str, Any]:
    """A version's lineage as the API shows it."""
    version = session.get(DatasetVersion, version_id)
    if version is None:
        raise NotFound(f"no version {version_id!r}")
    row = session.get(VersionLineage, version_id)
    derived = session.exec(
        select(VersionSource.version_id)
        .where(VersionSource.source_id == version_id)
        .order_by(col(VersionSource.version_id))
    ).all()
    return {
        "version": version_id,
        "method": row.method if row else None,
        "sources": [
            {"version": s.source_id, "agreement": s.agreement_id}
            for s in sources_of(session, version_id)
        ],
        "inherited_terms": row.inherited_terms if row else None,
        "derived": list(derived),
    }
