"""Document proof bundles: one document, provably in one file of one dataset version.

A bundle is JSON (``docs/catalog.md`` §5 is normative)::

    {"format": "corpusx/document-proof@v1",
     "version": "sha256:<hex>",            the version id
     "manifest_root": "<hex>",             root over the version's file entries
     "file_count": n, "file_index": i,     the file's leaf in that tree
     "file": {<FileEntry>},                name, size, media_type, sha256, records,
                                           document_root, document_rule
     "file_proof": ["<hex>", ...],         RFC 9162 inclusion proof of the file entry
     "record": r,                          the document's index in the file
     "document_sha256": "<hex>",
     "document_proof": ["<hex>", ...],     RFC 9162 inclusion proof in document_root
     "ledger": null | {"proof": "<c2sp.org/tlog-proof@v1 text>", "entry": "<base64 bytes>"}}

:func:`verify_document_bundle` checks it offline: document bytes against the hash (if given),
document in file, file in manifest root, manifest against the version id (if the manifest is
given), and, when ``ledger`` is present, that the log (by its key) includes the entry and that the
entry is a ``dataset.version.published`` statement naming this version id and manifest root.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from catalog.documents import DocumentTree, IngestOptions, document_leaf
from catalog.errors import CatalogError, ClaimMismatchError, ManifestError, ProofError
from catalog.ingest import PathInput, ingest_file
from catalog.manifest import (
    FileEntry,
    VersionManifest,
    file_inclusion_proof,
    is_version_id,
    manifest_differences,
)
from catalog.readers import Batch
from ledger.canonical import canonical_bytes, parse_json
from ledger.checkpoint import SignedCheckpoint
from ledger.entry import Entry, b64decode, b64encode
from ledger.errors import FormatError, LedgerError
from ledger.merkle import (
    NodeID,
    inclusion_proof,
    inclusion_proof_ids,
    leaf_hash,
    verify_inclusion,
)
from ledger.note import Ed25519Verifier, Verifier
from ledger.proofbundle import ProofBundle, verify_proof_bundle

__all__ = [
    "PROOF_FORMAT",
    "PUBLISHED_TYPE",
    "DocumentBundle",
    "LedgerLink",
    "VerifiedDocument",
    "prove_document",
    "verify_document_bundle",
]

PROOF_FORMAT = "corpusx/document-proof@v1"
PUBLISHED_TYPE = "dataset.version.published"
MAX_PROOF_HASHES = 64

_KEYS = (
    "format",
    "version",
    "manifest_root",
    "file_count",
    "file_index",
    "file",
    "file_proof",
    "record",
    "document_sha256",
    "document_proof",
    "ledger",
)


@dataclass(frozen=True, slots=True)
class LedgerLink:
    """The ledger entry that published the version, with its offline inclusion proof."""

    proof: str
    """A c2sp.org/tlog-proof@v1 bundle (text) for the entry."""
    entry: bytes
    """The entry's exact bytes (its Merkle leaf data)."""

    def to_json(self) -> dict[str, str]:
        return {"proof": self.proof, "entry": b64encode(self.entry)}

    @classmethod
    def from_json(cls, value: object) -> LedgerLink:
        if not isinstance(value, dict) or set(value) != {"proof", "entry"}:
            raise ManifestError("ledger must be an object with 'proof' and 'entry'")
        if not isinstance(value["proof"], str):
            raise ManifestError("ledger proof must be the text of a tlog-proof bundle")
        try:
            entry = b64decode(value["entry"], what="ledger entry")
        except FormatError as exc:
            raise ManifestError(str(exc)) from None
        return cls(value["proof"], entry)


@dataclass(frozen=True, slots=True)
class DocumentBundle:
    """Everything needed to check, offline, that a document belongs to a version."""

    version: str
    manifest_root: str
    file_count: int
    file_index: int
    file: FileEntry
    file_proof: tuple[bytes, ...]
    record: int
    document_sha256: str
    document_proof: tuple[bytes, ...]
    ledger: LedgerLink | None = None

    def with_ledger(self, *, proof: ProofBundle | str, entry: bytes) -> DocumentBundle:
        """This bundle linked to the ledger entry that published the version."""
        text = proof.to_text() if isinstance(proof, ProofBundle) else proof
        return replace(self, ledger=LedgerLink(text, entry))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": PROOF_FORMAT,
            "version": self.version,
            "manifest_root": self.manifest_root,
            "file_count": self.file_count,
            "file_index": self.file_index,
            "file": self.file.to_json(),
            "file_proof": [h.hex() for h in self.file_proof],
            "record": self.record,
            "document_sha256": self.document_sha256,
            "document_proof": [h.hex() for h in self.document_proof],
            "ledger": None if self.ledger is None else self.ledger.to_json(),
        }

    def to_bytes(self) -> bytes:
        """Canonical (RFC 8785) JSON bytes, for files and HTTP bodies."""
        return canonical_bytes(self.to_json())

    @classmethod
    def from_json(cls, value: object) -> DocumentBundle:
        if not isinstance(value, dict) or set(value) != set(_KEYS):
            found = sorted(value) if isinstance(value, dict) else type(value).__name__
            raise ManifestError(f"a document proof has exactly the fields {list(_KEYS)}: {found}")
        if value["format"] != PROOF_FORMAT:
            raise ManifestError(f"proof format must be {PROOF_FORMAT!r}, not {value['format']!r}")
        if not is_version_id(value["version"]):
            raise ManifestError(
                f"version must be 'sha256:' and 64 hex digits: {value['version']!r}"
            )
        ledger = value["ledger"]
        return cls(
            version=value["version"],
            manifest_root=_hex(value["manifest_root"], "manifest_root"),
            file_count=_count(value["file_count"], "file_count"),
            file_index=_count(value["file_index"], "file_index"),
            file=FileEntry.from_json(value["file"]),
            file_proof=_hashes(value["file_proof"], "file_proof"),
            record=_count(value["record"], "record"),
            document_sha256=_hex(value["document_sha256"], "document_sha256"),
            document_proof=_hashes(value["document_proof"], "document_proof"),
            ledger=None if ledger is None else LedgerLink.from_json(ledger),
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> DocumentBundle:
        try:
            return cls.from_json(parse_json(data, what="document proof"))
        except FormatError as exc:
            raise ManifestError(str(exc)) from None


def _hex(value: object, what: str) -> str:
    if not isinstance(value, str) or len(value) != 64 or value != value.lower():
        raise ManifestError(f"{what} must be 64 lowercase hex digits")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise ManifestError(f"{what} must be 64 lowercase hex digits") from None
    return value


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ManifestError(f"{what} must be a non-negative integer")
    return value


def _hashes(value: object, what: str) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) > MAX_PROOF_HASHES:
        raise ManifestError(f"{what} must be a list of at most {MAX_PROOF_HASHES} hashes")
    return tuple(bytes.fromhex(_hex(h, f"{what} hash")) for h in value)


# -- proving -----------------------------------------------------------------------------------


class _Found(Exception):
    def __init__(self, index: int) -> None:
        self.index = index


def prove_document(
    manifest: VersionManifest,
    *,
    name: str,
    path: PathInput,
    record: int | None = None,
    document_sha256: str | bytes | None = None,
) -> DocumentBundle:
    """Build the bundle for record ``record`` of file ``name`` (read from ``path``), or for the
    first document of that file whose SHA-256 is ``document_sha256``.

    The file is read again and must be exactly the manifest's file (else ClaimMismatchError):
    a proof is only ever built from the bytes the version names.
    """
    if (record is None) == (document_sha256 is None):
        raise CatalogError("give exactly one of record and document_sha256")
    entry = manifest.file(name).entry
    options = IngestOptions.for_rule(entry.document_rule)
    if record is None:
        assert document_sha256 is not None
        record = _find(Path(path), entry, options, document_sha256)
    if not 0 <= record < entry.records:
        raise ProofError(f"{name} has records 0..{entry.records - 1}, not record {record}")
    collector = _ProofCollector(record, entry.records)
    found = ingest_file(path, name=name, options=options, observer=collector.observe)
    if found.entry != entry:
        differences = manifest_differences(manifest.file(name), found)
        raise ClaimMismatchError(
            f"{name}: the file at {path} is not the one in version {manifest.version_id}",
            differences=differences,
        )
    file_proof = file_inclusion_proof(manifest, name)
    assert collector.document_hash is not None
    return DocumentBundle(
        version=manifest.version_id,
        manifest_root=manifest.manifest_root,
        file_count=file_proof.size,
        file_index=file_proof.index,
        file=entry,
        file_proof=file_proof.proof,
        record=record,
        document_sha256=collector.document_hash.hex(),
        document_proof=tuple(inclusion_proof(record, entry.records, collector.read)),
    )


def _find(path: Path, entry: FileEntry, options: IngestOptions, target: str | bytes) -> int:
    try:
        digest = bytes.fromhex(target) if isinstance(target, str) else bytes(target)
    except ValueError:
        raise CatalogError("document_sha256 must be hex") from None
    wanted = document_leaf(digest)

    def look(batch: Batch, leaves: list[bytes]) -> None:
        if wanted in leaves:
            raise _Found(batch.start + leaves.index(wanted))

    try:
        ingest_file(path, name=entry.name, options=options, observer=look)
    except _Found as found:
        return found.index
    raise ProofError(f"{entry.name} holds no document with SHA-256 {digest.hex()}")


class _ProofCollector:
    """Computes, while the file streams by, the subtree roots an inclusion proof needs."""

    def __init__(self, index: int, size: int) -> None:
        self._index = index
        self._nodes = sorted(
            (node for group in inclusion_proof_ids(index, size) for node in group),
            key=lambda node: node.start,
        )
        self._trees = {node: DocumentTree() for node in self._nodes}
        self.document_hash: bytes | None = None

    def observe(self, batch: Batch, leaves: list[bytes]) -> None:
        start, end = batch.start, batch.start + len(leaves)
        if start <= self._index < end:
            self.document_hash = hashlib.sha256(batch.documents[self._index - start]).digest()
        for node in self._nodes:
            low, high = max(node.start, start), min(node.end, end)
            if low < high:
                self._trees[node].extend(leaves[low - start : high - start])

    def read(self, ids: Sequence[NodeID]) -> list[bytes]:
        return [self._trees[node].root() for node in ids]


# -- verifying ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifiedDocument:
    """What a successful verification established."""

    version: str
    manifest_root: str
    file: str
    record: int
    document_sha256: str
    document_checked: bool
    """The document's bytes were given and hash to ``document_sha256``."""
    manifest_checked: bool
    """The full manifest was given and has this version id and manifest root."""
    dataset: str | None
    """The dataset the publishing ledger entry names (``None`` without a ledger link)."""
    checkpoint: SignedCheckpoint | None
    """The log checkpoint that includes the publishing entry (``None`` without a ledger link)."""


def verify_document_bundle(
    bundle: DocumentBundle,
    *,
    document: bytes | None = None,
    manifest: VersionManifest | None = None,
    log_key: str | Verifier | None = None,
    log_origin: str | None = None,
    cosigners: Iterable[Verifier] = (),
    cosigner_quorum: int = 0,
    require_ledger: bool = False,
) -> VerifiedDocument:
    """Check a document bundle offline; raise ProofError saying what failed.

    ``document``: the document's bytes, to check against its hash. ``manifest``: the version's
    full manifest, to tie the manifest root to the version id (without it, or a ledger link,
    that tie rests on the bundle's word). ``log_key``: the log's verifier key (vkey text or a
    :class:`ledger.note.Verifier`), required when the bundle carries a ledger link.
    """
    entry = bundle.file
    if document is not None and hashlib.sha256(document).hexdigest() != bundle.document_sha256:
        raise ProofError(
            f"document hashes to {hashlib.sha256(document).hexdigest()}, "
            f"the bundle names {bundle.document_sha256}"
        )
    try:
        verify_inclusion(
            leaf_hash=document_leaf(bytes.fromhex(bundle.document_sha256)),
            index=bundle.record,
            size=entry.records,
            proof=bundle.document_proof,
            root=bytes.fromhex(entry.document_root),
        )
    except LedgerError as exc:
        raise ProofError(f"document is not record {bundle.record} of {entry.name}: {exc}") from None
    try:
        verify_inclusion(
            leaf_hash=_leaf(entry),
            index=bundle.file_index,
            size=bundle.file_count,
            proof=bundle.file_proof,
            root=bytes.fromhex(bundle.manifest_root),
        )
    except LedgerError as exc:
        raise ProofError(f"file {entry.name!r} is not in the manifest root: {exc}") from None
    if manifest is not None:
        _check_manifest(bundle, manifest)
    dataset: str | None = None
    checkpoint: SignedCheckpoint | None = None
    if bundle.ledger is not None:
        dataset, checkpoint = _check_ledger(
            bundle,
            bundle.ledger,
            log_key=log_key,
            log_origin=log_origin,
            cosigners=cosigners,
            cosigner_quorum=cosigner_quorum,
        )
    elif require_ledger:
        raise ProofError("the bundle has no ledger link, and one is required")
    return VerifiedDocument(
        version=bundle.version,
        manifest_root=bundle.manifest_root,
        file=entry.name,
        record=bundle.record,
        document_sha256=bundle.document_sha256,
        document_checked=document is not None,
        manifest_checked=manifest is not None,
        dataset=dataset,
        checkpoint=checkpoint,
    )


def _leaf(entry: FileEntry) -> bytes:
    return leaf_hash(entry.leaf_data())


def _check_manifest(bundle: DocumentBundle, manifest: VersionManifest) -> None:
    if manifest.version_id != bundle.version:
        raise ProofError(
            f"the manifest given is version {manifest.version_id}, "
            f"the bundle names {bundle.version}"
        )
    if manifest.manifest_root != bundle.manifest_root:
        raise ProofError(
            f"manifest root: expected {manifest.manifest_root}, the bundle has "
            f"{bundle.manifest_root}"
        )


def _check_ledger(
    bundle: DocumentBundle,
    link: LedgerLink,
    *,
    log_key: str | Verifier | None,
    log_origin: str | None,
    cosigners: Iterable[Verifier],
    cosigner_quorum: int,
) -> tuple[str | None, SignedCheckpoint]:
    if log_key is None:
        raise ProofError("the bundle carries a ledger proof: give the log's key to check it")
    try:
        verifier = Ed25519Verifier.from_vkey(log_key) if isinstance(log_key, str) else log_key
        proof = ProofBundle.from_text(link.proof)
        entry = Entry.from_bytes(link.entry)
    except FormatError as exc:
        raise ManifestError(f"ledger link: {exc}") from None
    try:
        checkpoint = verify_proof_bundle(
            proof,
            entry=link.entry,
            log_verifier=verifier,
            cosigners=cosigners,
            origin=log_origin,
            cosigner_quorum=cosigner_quorum,
        )
    except LedgerError as exc:
        raise ProofError(f"ledger entry is not proven in the log: {exc}") from None
    statement = entry.statement
    if statement.type != PUBLISHED_TYPE:
        raise ProofError(
            f"ledger entry {entry.seq} is a {statement.type!r}, not {PUBLISHED_TYPE!r}"
        )
    body = statement.body
    for key, expected in (("version", bundle.version), ("manifest_root", bundle.manifest_root)):
        if body.get(key) != expected:
            raise ProofError(
                f"ledger entry {entry.seq} publishes {key} {body.get(key)!r}, expected {expected!r}"
            )
    dataset = body.get("dataset")
    return (dataset if isinstance(dataset, str) else None), checkpoint
