"""Publishing a dataset version: the provider's claims verified, then one transaction.

1. The provider's client ingests the corpus, uploads the blobs the exchange lacks, and sends
   the manifest with a signed ``dataset.version.published`` statement naming the version id
   (the digest of the canonical manifest) and the manifest root.
2. Outside the publishing transaction, the exchange compares every file's claimed manifest with
   what it derived itself from the stored blob (``verify_claims``; derived once per blob, when it
   was uploaded or here, see ``exchange.verification``): a provider cannot publish document roots
   or counts its bytes do not have, so every later document proof is a proof about real bytes.
3. In one transaction (``record_version``): the dataset (created on first publish), the version,
   its files and the ledger entry. Any failure leaves none of them.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from catalog import services as catalog
from catalog.errors import CatalogError
from catalog.ingest import check_claim
from catalog.manifest import FileManifest, VersionManifest
from catalog.models import Dataset, DatasetVersion, VersionFile
from catalog.overlap import VersionSketch
from catalog.overlap_index import find_overlaps, index_version
from exchange import lineage
from exchange.errors import Conflict, Forbidden, InvalidInput, NotFound
from exchange.models import Member
from exchange.published import PUBLISHED, Declared, statement_body
from exchange.statements import (
    StatementPolicy,
    check_statement,
    exchange_statement,
    record_statement,
)
from exchange.verification import Derived, Reading, Verifier, remember, remembered
from ledger.entry import Entry, SignedStatement
from ledger.note import Ed25519Signer
from storage import BlobStore, LocalStore

CLEARED = "dataset.version.cleared"
FLAGGED = "flagged"


@dataclass(frozen=True)
class Publication:
    slug: str
    label: str
    meta: catalog.DatasetMeta
    manifest: VersionManifest
    signed: SignedStatement
    lineage: Declared | None = None


@dataclass(frozen=True)
class Published:
    dataset: Dataset
    version: DatasetVersion
    entry: Entry


def check_publication(publication: Publication) -> None:
    """Cheap checks before any expensive work: the statement names this manifest."""
    expected = statement_body(
        publication.slug, publication.label, publication.manifest, publication.lineage
    )
    if publication.signed.statement.type != PUBLISHED:
        raise InvalidInput(f"a version is published with a {PUBLISHED} statement")
    if publication.signed.statement.body != expected:
        raise InvalidInput(
            "the signed statement's body does not name this manifest: expected "
            f"{expected}, got {publication.signed.statement.body}"
        )


# -- step 2: the claims, checked against the stored bytes ----------------------------------------


def verify_claims(
    store: BlobStore,
    manifest: VersionManifest,
    *,
    verifier: Verifier,
    transaction: Callable[[], AbstractContextManager[Session]],
) -> VersionSketch:
    """Compare each claimed file with what the exchange itself derived from the stored bytes.

    A blob is read at most once per way of reading it (``exchange.verification``): usually when
    it was uploaded, else here, and the derivation, overlap sketch included, is remembered.
    """
    missing = [f.sha256 for f in manifest.files if not store.exists(f.sha256)]
    if missing:
        raise Conflict(f"{len(missing)} file(s) are not uploaded yet, e.g. blob {missing[0]}")
    try:
        readings = {f.name: Reading.of(f.name, f.document_rule) for f in manifest.files}
        derived = _derivations(store, manifest, readings, verifier, transaction)
        files = [derived[_key(f, readings[f.name])].named(f.name) for f in manifest.files]
        for claimed, found in zip(manifest.files, files, strict=True):
            check_claim(claimed, found=found.manifest)
    except CatalogError as exc:  # ClaimMismatchError, or bytes that do not ingest at all
        raise InvalidInput(f"the uploaded files do not match the manifest: {exc}") from None
    return VersionSketch.from_files(found.sketch for found in files)


Key = tuple[str, str, str]  # sha256, media type, document rule


def _key(file: FileManifest, reading: Reading) -> Key:
    return file.sha256, reading.media_type, reading.rule


def _derivations(
    store: BlobStore,
    manifest: VersionManifest,
    readings: dict[str, Reading],
    verifier: Verifier,
    transaction: Callable[[], AbstractContextManager[Session]],
) -> dict[Key, Derived]:
    """The derivation of each distinct (blob, reading): remembered ones, the rest made now."""
    wanted: dict[Key, Reading] = {}
    for file in manifest.files:
        wanted.setdefault(_key(file, readings[file.name]), readings[file.name])
    fingerprints = {digest: store.fingerprint(digest) for digest, _, _ in wanted}
    found: dict[Key, Derived] = {}
    with transaction() as session:
        for key, reading in wanted.items():
            known = remembered(session, key[0], reading, fingerprint=fingerprints[key[0]])
            if known is not None:
                found[key] = known
    todo = [(key, reading) for key, reading in wanted.items() if key not in found]
    if not todo:
        return found
    with local_copies(store, [key[0] for key, _ in todo]) as paths:
        made = verifier.derive([(paths[key[0]], key[0], reading) for key, reading in todo])
    with transaction() as session:
        for (key, reading), derivation in zip(todo, made, strict=True):
            remember(session, key[0], reading, derivation, fingerprint=fingerprints[key[0]])
            found[key] = derivation
    return found


@contextmanager
def local_copies(store: BlobStore, digests: Sequence[str]) -> Iterator[dict[str, Path]]:
    """Paths to read blobs from: the files themselves locally, verified copies otherwise."""
    if isinstance(store, LocalStore):
        yield {digest: store.path_of(digest) for digest in digests}
        return
    with tempfile.TemporaryDirectory(prefix="corpusx-blobs-") as scratch:
        paths: dict[str, Path] = {}
        for digest in dict.fromkeys(digests):
            target = Path(scratch) / digest
            with store.open(digest) as reader, target.open("wb") as out:
                for chunk in reader:
                    out.write(chunk)
            paths[digest] = target
        yield paths


# -- step 3: one transaction --------------------------------------------------------------------


def record_version(
    session: Session,
    publication: Publication,
    *,
    caller: Member,
    policy: StatementPolicy,
    sketch: VersionSketch,
    log_signer: Ed25519Signer,
) -> Published:
    check_publication(publication)
    check_statement(
        session, publication.signed, caller=caller, expected_type=PUBLISHED, policy=policy
    )
    manifest = publication.manifest
    dataset = _dataset_to_publish_in(session, publication, caller=caller)
    if session.get(DatasetVersion, manifest.version_id) is not None:
        raise Conflict(
            f"version {manifest.version_id} is already published (versions are immutable)"
        )
    if any(v.label == publication.label for v in catalog.versions(session, dataset)):
        raise Conflict(f"{publication.slug} already has a version labelled {publication.label!r}")
    sources = (
        lineage.resolve_sources(session, publication.lineage, caller=caller)
        if publication.lineage is not None
        else []
    )
    entry = record_statement(session, publication.signed)
    assert dataset.id is not None
    version = DatasetVersion(
        id=manifest.version_id,
        dataset_id=dataset.id,
        label=publication.label,
        manifest=manifest.canonical,
        manifest_root=manifest.manifest_root,
        record_count=manifest.records,
        size_bytes=manifest.size,
        published_seq=entry.seq,
        created_at=datetime.now(UTC),
        stats=_summary(manifest),
    )
    session.add(version)
    try:
        session.flush()
    except IntegrityError:  # the same manifest, published meanwhile by a concurrent publish
        raise Conflict(
            f"version {manifest.version_id} is already published (versions are immutable)"
        ) from None
    for file in manifest.files:
        session.add(
            VersionFile(
                version_id=version.id,
                name=file.name,
                sha256=file.sha256,
                size=file.size,
                media_type=file.media_type,
                record_count=file.records,
                document_root=file.document_root,
            )
        )
    dataset.latest_version, dataset.size_bytes, dataset.record_count = (
        version.id,
        version.size_bytes,
        version.record_count,
    )
    dataset.updated_at = datetime.now(UTC)
    session.add(dataset)
    session.flush()
    declared_sources: set[str] = set()
    if publication.lineage is not None:
        lineage.record_lineage(session, version, publication.lineage, sources)
        direct = {source.version for source in sources}
        declared_sources = direct | lineage.ancestors(session, direct)
    _check_overlap(
        session,
        publication,
        version,
        sketch,
        caller=caller,
        log_signer=log_signer,
        declared_sources=declared_sources,
    )
    return Published(dataset, version, entry)


def _dataset_to_publish_in(
    session: Session, publication: Publication, *, caller: Member
) -> Dataset:
    """The caller's dataset, created on its first publish, its listing updated from ``meta``.

    Two first publishes of one slug may race: both see no dataset, and the second's insert waits
    for the first and then violates the unique slug. The insert runs in a savepoint so that the
    second then proceeds as if it had come second — on the dataset the first created (refused
    if that is another provider's, its label checked against the first's version).
    """
    try:
        dataset = catalog.find_dataset(session, publication.slug)
        if dataset is None:
            try:
                with session.begin_nested():
                    return catalog.create_dataset(
                        session, slug=publication.slug, provider=caller.id, meta=publication.meta
                    )
            except IntegrityError:
                dataset = catalog.find_dataset(session, publication.slug)
                if dataset is None:  # not a concurrent creation after all
                    raise
        if dataset.provider != caller.id:
            raise Forbidden(f"dataset {publication.slug} belongs to {dataset.provider}")
        # Updating the row also locks it: concurrent publishes of one dataset queue here, so
        # the label and version checks below see what the one before committed.
        return catalog.update_dataset(session, dataset, publication.meta)
    except CatalogError as exc:
        raise InvalidInput(str(exc)) from None


def _check_overlap(
    session: Session,
    publication: Publication,
    version: DatasetVersion,
    sketch: VersionSketch,
    *,
    caller: Member,
    log_signer: Ed25519Signer,
    declared_sources: set[str],
) -> None:
    """Compare with other providers' corpora, index this one, and hold it if it overlaps.

    Overlap with the version's declared (and licensed) sources and their ancestors is expected
    and reported, but does not hold the version. A substantial overlap with anything else is
    recorded on the ledger by the exchange itself
    (``dataset.version.flagged``, with the digest of the full report) and the version waits,
    ``flagged``, until an operator clears it.
    """
    report = find_overlaps(session, sketch, exclude_provider=caller.id)
    index_version(session, version.id, sketch)
    overlap = report.to_json()
    if declared_sources:
        overlap["declared_sources"] = sorted(declared_sources)
    version.stats = {**version.stats, "overlap": overlap}
    undeclared = [o for o in report.substantial if o.version not in declared_sources]
    if undeclared:
        version.status = FLAGGED
        body = {
            "dataset": publication.slug,
            "version": version.id,
            "report_sha256": hashlib.sha256(report.to_bytes()).hexdigest(),
            "overlaps": [
                {
                    "version": o.version,
                    "provider": o.provider,
                    "exact_fraction": round(o.exact_fraction, 4),
                    "near_fraction": round(o.near_fraction, 4),
                    "reasons": list(o.reasons),
                }
                for o in undeclared
            ],
        }
        record_statement(session, exchange_statement(log_signer, "dataset.version.flagged", body))
    session.add(version)
    session.flush()


def clear_version(
    session: Session, signed: SignedStatement, *, caller: Member, policy: StatementPolicy
) -> Entry:
    """An operator releases a flagged version (``dataset.version.cleared``, with a reason)."""
    check_statement(session, signed, caller=caller, expected_type=CLEARED, policy=policy)
    version_id, reason = signed.statement.body.get("version"), signed.statement.body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("clearing a version needs a reason")
    version = session.get(DatasetVersion, version_id) if isinstance(version_id, str) else None
    if version is None:
        raise NotFound(f"no version {version_id!r}")
    if version.status != FLAGGED:
        raise Conflict(f"version {version.id} is not flagged")
    entry = record_statement(session, signed)
    version.status = "published"
    session.add(version)
    session.flush()
    return entry


def _summary(manifest: VersionManifest) -> dict[str, object]:
    languages: dict[str, int] = {}
    for file in manifest.files:
        for language, count in file.stats.language_counts.items():
            languages[language] = languages.get(language, 0) + count
    return {
        "files": len(manifest.files),
        "records": manifest.records,
        "bytes": manifest.size,
        "document_bytes": manifest.document_bytes,
        "estimated_tokens": manifest.estimated_tokens,
        "languages": dict(sorted(languages.items(), key=lambda item: -item[1])),
    }
