"""The exchange's own derivation of each stored corpus file, made once and remembered.

Publishing a version needs, for every file, what the *stored bytes* give: the manifest entry,
statistics and schema (to compare with the provider's claim) and the overlap sketch. Deriving
them reads and parses every byte, so the exchange does it once per blob and way of reading it and
keeps the result in ``verified_file``, keyed by everything that decides it:

- the blob's SHA-256 (the bytes);
- the media type (format and compression, which the file name's suffixes decide);
- the document rule (``field:text``, ``line``, ...);
- :data:`DERIVATION`, the version of the deriving code (manifest format, ingestion revision,
  overlap scheme, pyarrow's major version, the document size limit).

A row is only ever written from a derivation this server ran over bytes it had stored, read back
and re-hashed to that digest: never from a client's claim. An upload that says which file it is
(``PUT /blobs/{digest}?name=...&rule=...``) is derived right after it is stored, while the
provider's client is still hashing or uploading its other files; publishing then compares the
claims with the rows and reads no byte again. A blob without a row for the rule a version claims
(an upload that named no file, another rule, a newer code version) is derived when it is
published, as before, and remembered: a later version with the same files costs no read.

Each row also keeps the blob's ``fingerprint`` in the store when it was derived. If the stored
object has been rewritten since, the row is ignored and the bytes are derived again (and refused
if they no longer match their digest). Every read of a blob verifies its digest anyway.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa  # type: ignore[import-untyped]
from sqlalchemy import CheckConstraint, LargeBinary
from sqlalchemy.exc import IntegrityError as DatabaseIntegrityError
from sqlmodel import Field, Session, SQLModel, select

from catalog.derivation import PRELOAD as DERIVATION_PRELOAD
from catalog.derivation import derive_file
from catalog.documents import MAX_DOCUMENT_BYTES, IngestOptions, classify_name
from catalog.errors import CatalogError, IngestError
from catalog.ingest import INGEST_REVISION, pool_context
from catalog.manifest import MANIFEST_FORMAT, FileManifest, validate_name
from catalog.overlap import SKETCH_SCHEME, FileSketch
from ledger.canonical import canonical_bytes, parse_json
from storage import BlobStore, LocalStore
from storage.local import BlockWriter

_log = logging.getLogger(__name__)

DERIVATION = (
    f"{MANIFEST_FORMAT} ingest-{INGEST_REVISION} {SKETCH_SCHEME} "
    f"pyarrow-{pa.__version__.split('.')[0]} max-document-{MAX_DOCUMENT_BYTES}"
)
"""What a remembered derivation was made by; rows of any other value are never used."""

MAX_RULE_LENGTH = 300
"""Document rules longer than this are derived every time (they do not fit the key)."""


class VerifiedFile(SQLModel, table=True):
    """One blob as this exchange read it with one document rule (migration 0007)."""

    __tablename__ = "verified_file"
    __table_args__ = (CheckConstraint("length(sha256) = 64", name="ck_verified_file_sha256"),)

    sha256: str = Field(primary_key=True, max_length=64)
    media_type: str = Field(primary_key=True, max_length=100)
    document_rule: str = Field(primary_key=True, max_length=MAX_RULE_LENGTH)
    derivation: str = Field(primary_key=True, max_length=200)
    fingerprint: str = Field(max_length=500, description="the store's, when it was derived")
    manifest: bytes = Field(sa_type=LargeBinary, description="JCS of the file manifest")
    sketch: bytes = Field(sa_type=LargeBinary, description="FileSketch.to_bytes()")
    created_at: datetime


@dataclass(frozen=True)
class Reading:
    """How a blob is read: as the file ``name`` (whose suffixes give the format) with ``rule``."""

    name: str
    rule: str
    media_type: str

    @classmethod
    def of(cls, name: str, rule: str) -> Reading:
        """CatalogError if the name is not a corpus file's or the rule is not one."""
        validate_name(name)
        kind = classify_name(name)
        options = IngestOptions.for_rule(rule)
        if options.document_rule(kind.format) != rule:
            raise IngestError(f"document rule {rule!r} does not apply to this file", file=name)
        return cls(name, rule, kind.media_type)

    @property
    def cacheable(self) -> bool:
        return len(self.rule) <= MAX_RULE_LENGTH


@dataclass(frozen=True)
class Derived:
    """What the stored bytes of one file give: its manifest and its overlap sketch."""

    manifest: FileManifest
    sketch: FileSketch

    def named(self, name: str) -> Derived:
        """The same derivation for a file of another name (same media type and rule)."""
        if name == self.manifest.name:
            return self
        entry = replace(self.manifest.entry, name=name)
        sketch = FileSketch.from_bytes(self.sketch.to_bytes(), name=name)
        return Derived(replace(self.manifest, entry=entry), sketch)


def _loaded(manifest: bytes, sketch: bytes, name: str) -> Derived:
    found = FileManifest.from_json(parse_json(manifest))
    return Derived(found, FileSketch.from_bytes(sketch, name=found.name)).named(name)


class Verifier:
    """Runs derivations in worker processes, so that the server's own threads, and its event
    loop, stay free while files are parsed. The server starts them with the app (:meth:`start`),
    so that the first upload does not wait for them (~0.9 s on 2 cores: the fork server imports
    the ingestion stack, then forks the workers); otherwise they start on first use."""

    def __init__(self, *, workers: int) -> None:
        self._workers = max(1, workers)
        self._pool: Executor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> Executor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self._workers, mp_context=pool_context(preload=[DERIVATION_PRELOAD])
                )
            return self._pool

    def start(self) -> None:
        """Start the worker processes now (one no-op task each: a pool forks on demand)."""
        pool = self._executor()
        try:
            for future in [pool.submit(os.getpid) for _ in range(self._workers)]:
                future.result()
        except (BrokenProcessPool, OSError) as exc:
            _log.warning("derivation workers did not start (%s); they start on first use", exc)
            self._discard(pool)
        except RuntimeError:
            pass  # closed meanwhile (the app stopped while it started)

    def derive(self, jobs: Sequence[tuple[Path, str, Reading]]) -> list[Derived]:
        """Each (path, digest, reading) derived, in parallel; the first CatalogError raised."""
        pool = self._executor()
        futures: list[Future[tuple[bytes, bytes]]] = []
        try:
            for path, digest, reading in jobs:
                futures.append(
                    pool.submit(derive_file, str(path), digest, reading.name, reading.rule)
                )
            results = [future.result() for future in futures]
        except BrokenProcessPool:
            self._discard(pool)  # a worker died (killed, out of memory): start afresh next time
            raise
        finally:
            for future in futures:
                future.cancel()
        return [
            _loaded(manifest, sketch, reading.name)
            for (manifest, sketch), (_, _, reading) in zip(results, jobs, strict=True)
        ]

    def _discard(self, pool: Executor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


# -- the cache ----------------------------------------------------------------------------------


def remembered(
    session: Session, digest: str, reading: Reading, *, fingerprint: str
) -> Derived | None:
    """The derivation kept for this blob and reading, if it was made by this code version from
    the object the store holds now (same fingerprint)."""
    if not reading.cacheable:
        return None
    row = session.exec(
        select(VerifiedFile).where(
            VerifiedFile.sha256 == digest,
            VerifiedFile.media_type == reading.media_type,
            VerifiedFile.document_rule == reading.rule,
            VerifiedFile.derivation == DERIVATION,
        )
    ).first()
    if row is None or row.fingerprint != fingerprint:
        return None
    return _loaded(row.manifest, row.sketch, reading.name)


def remember(
    session: Session, digest: str, reading: Reading, derived: Derived, *, fingerprint: str
) -> None:
    """Keep a derivation this server made (replacing one made from an older object)."""
    if not reading.cacheable:
        return
    row = VerifiedFile(
        sha256=digest,
        media_type=reading.media_type,
        document_rule=reading.rule,
        derivation=DERIVATION,
        fingerprint=fingerprint,
        manifest=canonical_bytes(derived.manifest.to_json()),
        sketch=derived.sketch.to_bytes(),
        created_at=datetime.now(UTC),
    )
    try:
        with session.begin_nested():
            session.merge(row)
    except DatabaseIntegrityError:
        pass  # the same derivation, remembered by a concurrent request meanwhile


# -- at upload ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadCopy:
    """A scratch copy of an upload's bytes, written as they stream into the store (straight to
    the disk, as the local store writes its blobs: it is read once, by the derivation)."""

    file: BlockWriter
    path: Path


@dataclass(frozen=True)
class UploadOutcome:
    derived: bool
    problem: str | None = None


@contextlib.contextmanager
def upload_copy(store: BlobStore, *, wanted: bool) -> Iterator[UploadCopy | None]:
    """A scratch file for an upload that is to be derived into a store whose objects cannot be
    read as files (S3), removed afterwards; None otherwise (the local store's file is read)."""
    if not wanted or isinstance(store, LocalStore):
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="corpusx-upload-") as scratch:
        path = Path(scratch) / "blob"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            writer = BlockWriter(fd, 1 << 20)
            try:
                yield UploadCopy(writer, path)
            finally:
                writer.close()
        finally:
            os.close(fd)


@dataclass
class UploadDerivation:
    """Derives an upload from the local store's complete temporary file, before the blob takes
    its name (``LocalStore.put_read``): the one read of the bytes also hashes them for the
    store. ``problem`` says why they did not ingest (the store then hashes them itself)."""

    verifier: Verifier
    digest: str
    reading: Reading
    derived: Derived | None = None
    problem: str | None = None

    def __call__(self, temp: Path) -> str | None:
        try:
            (self.derived,) = self.verifier.derive([(temp, self.digest, self.reading)])
        except CatalogError as exc:
            self.problem = str(exc)
            return None
        return self.derived.manifest.sha256

    def remember(
        self,
        store: BlobStore,
        transaction: Callable[[], contextlib.AbstractContextManager[Session]],
    ) -> UploadOutcome | None:
        """Keep the derivation of the blob just stored; None if the store never read it (the
        blob was already stored), for :func:`derive_upload` to read the stored file."""
        if self.derived is None:
            return None if self.problem is None else UploadOutcome(False, self.problem)
        fingerprint = store.fingerprint(self.digest)
        with transaction() as session:
            remember(session, self.digest, self.reading, self.derived, fingerprint=fingerprint)
        return UploadOutcome(derived=True)


def derive_upload(
    store: BlobStore,
    transaction: Callable[[], contextlib.AbstractContextManager[Session]],
    verifier: Verifier,
    *,
    digest: str,
    size: int,
    reading: Reading,
    copy: Path | None,
) -> UploadOutcome:
    """Derive a blob just stored and remember it (or say why its bytes do not ingest).

    ``copy`` holds the bytes that streamed into the store (S3); without it the stored file is
    read. A copy that is not the whole blob (the store already held it and read nothing) is not
    derived: publishing derives the stored blob when it needs to.
    """
    if copy is not None:
        if copy.stat().st_size != size:
            return UploadOutcome(derived=False)
        path = copy
    elif isinstance(store, LocalStore):
        path = store.path_of(digest)
    else:
        return UploadOutcome(derived=False)
    fingerprint = store.fingerprint(digest)
    try:
        (derived,) = verifier.derive([(path, digest, reading)])
    except CatalogError as exc:
        return UploadOutcome(derived=False, problem=str(exc))
    with transaction() as session:
        remember(session, digest, reading, derived, fingerprint=fingerprint)
    return UploadOutcome(derived=True)
