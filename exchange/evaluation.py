"""Evaluation and compliance against the exchange's agreements.

``decide_use`` answers "may member M use version V for purpose P at time T?" from the stored
agreements (``licensing.evaluation`` decides; this module only loads). ``check_manifest``
resolves a training manifest's items — versions, file hashes, document hashes — to the versions
that hold them and checks each against the member's agreements. ``attest`` records a compliant
check as the member's signed ``model.training.attested`` entry, and ``attestation_bundle``
gathers what an auditor needs to verify it offline (docs/evaluation.md).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from catalog import services as catalog
from catalog.models import DatasetVersion
from catalog.overlap_index import versions_with_documents
from exchange import ledger_service
from exchange.errors import Conflict, Forbidden, InvalidInput, NotFound
from exchange.models import Member, MemberKey
from exchange.statements import StatementPolicy, check_statement, record_statement
from ledger.audit import OPERATOR
from ledger.entry import Entry, SignedStatement, b64encode
from ledger.note import Ed25519Signer
from ledger.policy import WitnessPolicy
from licensing.attestation import ATTESTED, BUNDLE_FORMAT, attestation_body
from licensing.compliance import ComplianceReport, ManifestItem, TrainingManifest, check
from licensing.errors import LicensingError
from licensing.evaluation import Decision, Grant, GrantIndex, Use, may
from licensing.models import Agreement, TrainingAttestation
from licensing.spdx import DatasetRef, spdx_ai_package
from licensing.terms import Terms

AUDITOR = "auditor"
CHUNK = 2_000


def grant_of(agreement: Agreement, *, terms: Terms | None = None) -> Grant:
    """``terms``: the agreement's terms, already parsed (``grants_of`` parses each text once)."""
    return Grant(
        agreement=agreement.id,
        assignee=agreement.assignee,
        target=agreement.version_id,
        terms=terms or Terms.from_json(agreement.terms),
        valid_from=agreement.valid_from,
        valid_until=agreement.valid_until,
        revoked_at=agreement.revoked_at,
        revocation_reason=agreement.revocation_reason,
    )


def grants_of(session: Session, *, member: str, versions: Collection[str]) -> list[Grant]:
    """Every agreement of ``member`` for any of ``versions`` (in chunks of one query each).

    A buyer's agreements repeat a few offers' terms, so each distinct terms text is parsed once
    (parsing was most of the cost of loading a thousand agreements).
    """
    ordered = sorted(versions)
    grants: list[Grant] = []
    parsed: dict[str, Terms] = {}
    for start in range(0, len(ordered), CHUNK):
        rows = session.exec(
            select(Agreement).where(
                Agreement.assignee == member,
                col(Agreement.version_id).in_(ordered[start : start + CHUNK]),
            )
        ).all()
        for row in rows:
            text = json.dumps(row.terms, sort_keys=True, separators=(",", ":"))
            terms = parsed.get(text)
            if terms is None:
                terms = parsed[text] = Terms.from_json(row.terms)
            grants.append(grant_of(row, terms=terms))
    return grants


def decide_use(session: Session, use: Use) -> Decision:
    if session.get(Member, use.member) is None:
        raise NotFound(f"no member {use.member!r}")
    if session.get(DatasetVersion, use.version) is None:
        raise NotFound(f"no version {use.version!r}")
    return may(use, grants_of(session, member=use.member, versions=[use.version]))


# -- compliance -----------------------------------------------------------------------------


def parse_manifest(value: object) -> TrainingManifest:
    try:
        return TrainingManifest.from_json(value)
    except LicensingError as exc:
        raise InvalidInput(f"training manifest: {exc}") from None


def resolve(session: Session, manifest: TrainingManifest) -> dict[ManifestItem, tuple[str, ...]]:
    """The versions that hold each item: a version itself, the versions with a file of those
    bytes, the versions with a document of that hash (the overlap index has every one)."""
    by_kind: dict[str, list[ManifestItem]] = {"version": [], "file": [], "document": []}
    for item in manifest.items:
        by_kind[item.kind].append(item)
    resolution: dict[ManifestItem, tuple[str, ...]] = {}
    known = catalog.existing_versions(session, [i.value for i in by_kind["version"]])
    for item in by_kind["version"]:
        resolution[item] = (item.value,) if item.value in known else ()
    files = catalog.versions_with_files(session, [i.value for i in by_kind["file"]])
    for item in by_kind["file"]:
        resolution[item] = tuple(files.get(item.value, ()))
    digests = {item: bytes.fromhex(item.value) for item in by_kind["document"]}
    documents = versions_with_documents(session, list(digests.values()))
    for item, digest in digests.items():
        resolution[item] = tuple(documents.get(digest, ()))
    return resolution


def check_manifest(
    session: Session, manifest: TrainingManifest, *, member: str
) -> ComplianceReport:
    if session.get(Member, member) is None:
        raise NotFound(f"no member {member!r}")
    resolution = resolve(session, manifest)
    versions = {v for found in resolution.values() for v in found}
    grants = GrantIndex(grants_of(session, member=member, versions=versions))
    return check(manifest, member=member, resolution=resolution, grants=grants)


def subject_of(caller: Member, member: str | None) -> str:
    """Whose training data a check is about: the caller's own, or (operators, auditors) any."""
    subject = member or caller.id
    if subject != caller.id and not caller.role_set & {OPERATOR, AUDITOR}:
        raise Forbidden(f"{caller.id} may check only its own training data")
    return subject


def attest(
    session: Session,
    signed: SignedStatement,
    *,
    manifest: TrainingManifest,
    caller: Member,
    policy: StatementPolicy,
) -> tuple[Entry, ComplianceReport]:
    """Record a compliant check as the member's signed attestation; refuse a non-compliant one."""
    check_statement(session, signed, caller=caller, expected_type=ATTESTED, policy=policy)
    report = check_manifest(session, manifest, member=caller.id)
    if not report.compliant:
        first = next(v for v in report.verdicts if v.status != "covered")
        counts = ", ".join(f"{n} {status}" for status, n in sorted(report.counts().items()))
        raise Conflict(
            f"the training data is not covered by {caller.id}'s licences ({counts}); "
            f"first: {first.item.kind} {first.item.value}: {first.reason}"
        )
    expected = attestation_body(manifest, report)
    if signed.statement.body != expected:
        differing = sorted(
            k for k in expected if signed.statement.body.get(k, object()) != expected[k]
        )
        raise InvalidInput(
            f"the attestation must name this manifest and report; differing: {differing} "
            "(re-run the check: agreements may have changed since)"
        )
    entry = record_statement(session, signed)
    session.add(
        TrainingAttestation(
            seq=entry.seq,
            member=caller.id,
            model=manifest.model,
            manifest_sha256=expected["manifest_sha256"],
            report_sha256=expected["report_sha256"],
            manifest=manifest.to_json(),
            report=report.to_json(),
            created_at=datetime.now(UTC),
        )
    )
    session.flush()
    return entry, report


def attestation_bundle(
    session: Session, seq: int, *, log_signer: Ed25519Signer, policy: WitnessPolicy
) -> dict[str, Any]:
    """Everything needed to verify attestation ``seq`` offline with the log's key alone.

    The attestation entry, the entries that registered every key it and the agreements behind
    it were signed with, and those agreements' ``licence.granted`` (and any ``licence.revoked``)
    entries — each with a tlog-proof against one checkpoint — plus the manifest and report.
    """
    row = session.get(TrainingAttestation, seq)
    if row is None:
        raise NotFound(f"entry {seq} is not a training attestation")
    ids = row.report.get("agreements", [])
    agreements = (
        list(session.exec(select(Agreement).where(col(Agreement.id).in_(ids))).all()) if ids else []
    )
    entry_seqs = {seq} | {a.granted_seq for a in agreements}
    entry_seqs |= {a.revoked_seq for a in agreements if a.revoked_seq is not None}
    key_ids = {
        Entry.from_bytes(ledger_service.entry_bytes(session, s), strict=False).statement.key_id
        for s in entry_seqs
    }
    keys = session.exec(select(MemberKey).where(col(MemberKey.key_id).in_(key_ids))).all()
    checkpoint, note = ledger_service.proving_checkpoint(
        session, log_signer, max(entry_seqs) + 1, policy=policy
    )
    return {
        "format": BUNDLE_FORMAT,
        "manifest": row.manifest,
        "report": row.report,
        "checkpoint": note,
        "attestation": _proved(session, seq, checkpoint.size),
        "keys": [_proved(session, k.added_seq, checkpoint.size) for k in keys],
        "agreements": [_proved(session, a.granted_seq, checkpoint.size) for a in agreements],
        "revocations": [
            _proved(session, a.revoked_seq, checkpoint.size)
            for a in agreements
            if a.revoked_seq is not None
        ],
    }


def _proved(session: Session, seq: int, size: int) -> dict[str, Any]:
    from ledger.sql import SqlLedger

    proof = SqlLedger(session).inclusion_proof(seq, size)
    return {
        "seq": seq,
        "entry": b64encode(ledger_service.entry_bytes(session, seq)),
        "proof": [b64encode(h) for h in proof],
    }


def attestations_of(session: Session, member: str) -> Iterable[TrainingAttestation]:
    return session.exec(
        select(TrainingAttestation)
        .where(TrainingAttestation.member == member)
        .order_by(col(TrainingAttestation.seq))
    ).all()


def spdx_document(session: Session, report: ComplianceReport, *, base_url: str) -> dict[str, Any]:
    """The report as an SPDX 3.0 AI package: the model ``trainedOn`` each covering version."""
    refs: dict[str, DatasetRef] = {}
    for verdict in report.verdicts:
        if verdict.version is None or verdict.version in refs:
            continue
        version = session.get(DatasetVersion, verdict.version)
        if version is None:
            continue
        dataset = catalog.dataset_of(session, version)
        refs[version.id] = DatasetRef(
            version=version.id,
            dataset=dataset.slug,
            label=version.label,
            provider=dataset.provider,
            licence=dataset.licence_summary or None,
            location=None,
        )
    return spdx_ai_package(
        report,
        datasets=refs,
        creator=report.member,
        created=datetime.now(UTC),
        namespace=f"https://{base_url}/spdx/{report.manifest_sha256}",
    )
