"""Training attestations: the ``model.training.attested`` body, and its offline verification.

A model builder checks a training manifest against its licences and, when every item is
covered, signs an attestation naming the SHA-256 of the manifest and of the compliance report.
An auditor holding only the log's verifier key checks it offline from a bundle
(``corpusx/training-attestation-bundle/v1``, docs/evaluation.md):

1. the checkpoint is signed by the log key, and every entry in the bundle is included in the
   tree it commits to (RFC 9162 inclusion proofs);
2. the attestation is signed by a key the log registered for its member (``member.registered``
   or ``member.key.added`` entries in the bundle);
3. the manifest and the report hash to the attested digests, the body is exactly what the
   manifest and report give, the report is the member's and covers every item of the manifest;
4. every agreement the report relies on is a ``licence.granted`` entry signed by the member,
   and each covered item is permitted by its agreement's terms at the training date (revoked
   from the time of any ``licence.revoked`` entry in the bundle), re-evaluated here.

What this cannot show offline: that an item named by file or document hash lies in the version
the report says (``corpusx dataset prove-document`` proves that per document), that no later
``licence.revoked`` or key revocation exists outside the bundle (a full ``corpusx audit verify``
of the log does).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledger.audit import MemberRegistration
from ledger.checkpoint import open_checkpoint
from ledger.entry import Entry, format_time, parse_time
from ledger.errors import FormatError as LedgerFormatError
from ledger.errors import LedgerError, VerificationError
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.note import Ed25519Verifier
from licensing.compliance import ComplianceReport, TrainingManifest
from licensing.errors import FormatError, LicensingError
from licensing.evaluation import Grant, Use, may
from licensing.terms import Terms

ATTESTED = "model.training.attested"
BUNDLE_FORMAT = "corpusx/training-attestation-bundle/v1"
KEY_TYPES = ("member.registered", "member.key.added")


def attestation_body(manifest: TrainingManifest, report: ComplianceReport) -> dict[str, Any]:
    """The body of ``model.training.attested``: digests of the manifest and of the report."""
    return {
        "model": manifest.model,
        "manifest_sha256": manifest.digest(),
        "report_sha256": report.digest(),
        "purpose": manifest.purpose,
        "commercial": manifest.commercial,
        "at": format_time(manifest.at),
        "territory": manifest.territory,
        "items": len(manifest.items),
        "agreements": len(report.agreements),
    }


@dataclass(frozen=True)
class VerifiedAttestation:
    seq: int
    member: str
    model: str
    items: int
    agreements: tuple[str, ...]
    log_origin: str
    log_size: int


def verify_attestation_bundle(bundle: object, *, log_vkey: str) -> VerifiedAttestation:
    """Check a bundle as the module docstring says; raise ``VerificationError`` (what was
    expected, what was found) or ``FormatError`` (a bundle that does not parse)."""
    data = _object(bundle)
    try:
        verifier = Ed25519Verifier.from_vkey(log_vkey)
        signed = open_checkpoint(_text(data, "checkpoint"), verifier)
    except LedgerFormatError as exc:
        raise FormatError(f"bundle checkpoint or log key: {exc}") from None
    checkpoint = signed.checkpoint

    def proved(value: object, what: str) -> Entry:
        item = _object(value, what)
        seq, proof = item.get("seq"), item.get("proof")
        if not isinstance(seq, int) or not isinstance(proof, list):
            raise FormatError(f"{what} needs an integer 'seq' and a 'proof' list")
        data_bytes = _b64(item.get("entry"), f"{what} entry")
        verify_inclusion(
            leaf_hash=leaf_hash(data_bytes),
            index=seq,
            size=checkpoint.size,
            proof=[_b64(h, f"{what} proof") for h in proof],
            root=checkpoint.root,
        )
        try:
            entry = Entry.from_bytes(data_bytes, strict=False)
        except LedgerFormatError as exc:
            raise FormatError(f"{what}: {exc}") from None
        if entry.seq != seq or entry.statement.log != checkpoint.origin:
            raise VerificationError(f"{what} is not entry {seq} of {checkpoint.origin}")
        return entry

    keys = _keys([proved(v, "keys[]") for v in _list(data, "keys")])
    attestation = proved(data.get("attestation"), "attestation")
    if attestation.statement.type != ATTESTED:
        raise VerificationError(f"entry {attestation.seq} is a {attestation.statement.type}")
    member = attestation.statement.member
    _check_signature(attestation, keys)
    manifest, report = _documents(data)
    expected = attestation_body(manifest, report)
    if attestation.statement.body != expected:
        raise VerificationError(
            f"the attestation body does not name this manifest and report: signed "
            f"{attestation.statement.body}, the bundle's documents give {expected}"
        )
    if report.member != member or report.manifest_sha256 != expected["manifest_sha256"]:
        raise VerificationError(f"the report is not {member}'s report of this manifest")
    if [v.item for v in report.verdicts] != list(manifest.items):
        raise VerificationError("the report does not give one verdict per manifest item")
    if not report.compliant:
        raise VerificationError("the attested report is not compliant")
    grants = _grants(
        [proved(v, "agreements[]") for v in _list(data, "agreements")],
        [proved(v, "revocations[]") for v in _list(data, "revocations")],
        keys,
        member=member,
    )
    if set(grants) != set(report.agreements):
        raise VerificationError(
            f"the report relies on agreements {sorted(report.agreements)}, the bundle proves "
            f"{sorted(grants)}"
        )
    _recheck_verdicts(report, manifest, grants)
    return VerifiedAttestation(
        seq=attestation.seq,
        member=member,
        model=manifest.model,
        items=len(manifest.items),
        agreements=tuple(sorted(grants)),
        log_origin=checkpoint.origin,
        log_size=checkpoint.size,
    )


def _keys(entries: list[Entry]) -> dict[str, tuple[str, bytes]]:
    """key id -> (member, public key), from the entries that registered the keys."""
    keys: dict[str, tuple[str, bytes]] = {}
    for entry in entries:
        statement = entry.statement
        if statement.type not in KEY_TYPES:
            raise VerificationError(f"entry {entry.seq} registers no key ({statement.type})")
        try:
            registration = MemberRegistration.from_body(
                statement.body, with_roles=statement.type == "member.registered"
            )
        except LedgerError as exc:
            raise VerificationError(f"entry {entry.seq}: {exc}") from None
        if statement.type == "member.key.added" and registration.member != statement.member:
            raise VerificationError(f"entry {entry.seq} adds a key to another member")
        keys[registration.key_id] = (registration.member, registration.public_key)
    return keys


def _check_signature(entry: Entry, keys: Mapping[str, tuple[str, bytes]]) -> None:
    statement = entry.statement
    owner = keys.get(statement.key_id)
    if owner is None or owner[0] != statement.member:
        raise VerificationError(
            f"entry {entry.seq} is signed with key {statement.key_id}, which the bundle does "
            f"not show the log registering for {statement.member}"
        )
    try:
        entry.signed.verify(owner[1])
    except VerificationError:
        raise VerificationError(
            f"entry {entry.seq}: the member's signature does not verify"
        ) from None


def _documents(data: Mapping[str, Any]) -> tuple[TrainingManifest, ComplianceReport]:
    try:
        return TrainingManifest.from_json(data.get("manifest")), ComplianceReport.from_json(
            data.get("report")
        )
    except LicensingError as exc:
        raise FormatError(f"bundle documents: {exc}") from None


def _grants(
    granted: list[Entry],
    revoked: list[Entry],
    keys: Mapping[str, tuple[str, bytes]],
    *,
    member: str,
) -> dict[str, Grant]:
    revocations: dict[str, str] = {}
    for entry in revoked:
        if entry.statement.type != "licence.revoked":
            raise VerificationError(f"entry {entry.seq} is not a licence.revoked")
        _check_signature(entry, keys)
        revocations[str(entry.statement.body.get("agreement"))] = entry.time
    grants: dict[str, Grant] = {}
    for entry in granted:
        statement, body = entry.statement, entry.statement.body
        if statement.type != "licence.granted":
            raise VerificationError(f"entry {entry.seq} is not a licence.granted")
        _check_signature(entry, keys)
        if statement.member != member or body.get("assignee") != member:
            raise VerificationError(f"agreement entry {entry.seq} is not {member}'s")
        try:
            agreement_id = str(body["agreement"])
            until = body["valid_until"]
            revoked_at = revocations.get(agreement_id)
            grants[agreement_id] = Grant(
                agreement=agreement_id,
                assignee=member,
                target=str(body["target"]),
                terms=Terms.from_json(body["terms"]),
                valid_from=parse_time(body["valid_from"]),
                valid_until=parse_time(until) if until is not None else None,
                revoked_at=parse_time(revoked_at) if revoked_at else None,
            )
        except (KeyError, LedgerError, LicensingError) as exc:
            raise VerificationError(f"agreement entry {entry.seq} is malformed: {exc}") from None
    return grants


def _recheck_verdicts(
    report: ComplianceReport, manifest: TrainingManifest, grants: Mapping[str, Grant]
) -> None:
    for verdict in report.verdicts:
        if verdict.agreement is None or verdict.version is None:
            raise VerificationError(f"covered item {verdict.item.value} names no agreement")
        use = Use(
            member=report.member,
            version=verdict.version,
            purpose=manifest.purpose,
            commercial=manifest.commercial,
            territory=manifest.territory,
            at=manifest.at,
        )
        decision = may(use, [grants[verdict.agreement]])
        if not decision.permitted:
            why = "; ".join(r.message for r in decision.reasons)
            raise VerificationError(
                f"item {verdict.item.kind} {verdict.item.value}: agreement {verdict.agreement} "
                f"does not permit this use: {why}"
            )


def _object(value: object, what: str = "bundle") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FormatError(f"{what} must be a JSON object")
    if what == "bundle" and value.get("format") != BUNDLE_FORMAT:
        raise FormatError(f"bundle format must be {BUNDLE_FORMAT!r}, got {value.get('format')!r}")
    return value


def _list(data: Mapping[str, Any], name: str) -> list[Any]:
    value = data.get(name)
    if not isinstance(value, list):
        raise FormatError(f"bundle {name} must be a list")
    return value


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise FormatError(f"bundle {name} must be a string")
    return value


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise FormatError(f"{what} must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError(f"{what} is not valid base64") from None
