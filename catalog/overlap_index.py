"""The overlap index: every indexed version's document hashes and sampled band keys.

Two tables (migrations 0003 and 0008), on SQLite and PostgreSQL alike:

- ``overlap_version``: one row per indexed version, with a small integer key, and what the
  report needs to compare samples (documents, sample level, sampled documents per level).
- ``overlap_segment``: one row per indexed version with its entries as two sorted arrays in two
  BLOBs: the distinct document hashes, and (band key, record) for each band of each sampled
  document (``record`` is the version-wide record number of the document's first occurrence),
  and the SHA-256 of both (``digest``).

Lookups run in memory: each server process loads a segment the first time a lookup needs it
and keeps its entries, by digest, in a few sorted numpy runs (:class:`_Entries`); which versions
count (other providers, the same scheme, not flagged) is asked of the database each time.
Writing a version's entries is one row; looking up a million hashes is a few binary searches
per run. docs/overlap.md section 6 has the costs and the memory this takes.

Nothing here commits: :func:`index_version` belongs in the publishing transaction, next to the
version row.
"""

from __future__ import annotations

import hashlib
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    LargeBinary,
    Table,
    insert,
    select,
)
from sqlalchemy.engine import Connection
from sqlmodel import Field, Session, SQLModel

from catalog.errors import CatalogError, IndexDamaged
from catalog.models import Dataset, DatasetVersion
from catalog.overlap import (
    BANDS,
    I64,
    IndexedVersion,
    OverlapPolicy,
    OverlapReport,
    VersionMatches,
    VersionSketch,
    build_report,
)

__all__ = [
    "LOOKUP_CHUNK",
    "OverlapSegment",
    "OverlapVersion",
    "find_overlaps",
    "index_version",
    "segment_digest",
    "segment_of",
    "versions_with_documents",
]

LOOKUP_CHUNK = 2_000
"""Version keys per statement when describing the versions found."""


class OverlapVersion(SQLModel, table=True):
    __tablename__ = "overlap_version"
    __table_args__ = (CheckConstraint("sample_level >= 0", name="ck_overlap_version_sample_level"),)

    id: int | None = Field(default=None, primary_key=True)
    version_id: str = Field(foreign_key="dataset_version.id", unique=True, max_length=71)
    scheme: str = Field(max_length=64, description="catalog.overlap.SKETCH_SCHEME")
    records: int = Field(sa_type=BigInteger)
    documents: int = Field(sa_type=BigInteger, description="distinct indexed documents")
    sample_level: int
    level_counts: list[int] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False),
        description="distinct sampled documents per level 0..MAX_SAMPLE_LEVEL",
    )
    indexed_at: datetime


class OverlapSegment(SQLModel, table=True):
    """One indexed version's entries, as two sorted arrays (migration 0008)."""

    __tablename__ = "overlap_segment"
    __table_args__ = (
        CheckConstraint("length(documents) % 32 = 0", name="ck_overlap_segment_documents"),
        CheckConstraint("length(bands) % 16 = 0", name="ck_overlap_segment_bands"),
    )

    version_key: int = Field(foreign_key="overlap_version.id", primary_key=True)
    digest: str = Field(max_length=64, description="segment_digest(documents, bands), hex")
    documents: bytes = Field(
        sa_type=LargeBinary, description="the distinct indexed SHA-256s, ascending, 32 bytes each"
    )
    bands: bytes = Field(
        sa_type=LargeBinary,
        description="(band key, record) of each band of each sample, ascending, two int64 LE",
    )


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


_VERSIONS = _table(OverlapVersion)
_SEGMENTS = _table(OverlapSegment)
_DATASET_VERSIONS = _table(DatasetVersion)
_DATASETS = _table(Dataset)


# -- indexing ----------------------------------------------------------------------------------


def index_version(session: Session, version_id: str, sketch: VersionSketch) -> int:
    """Add a published version to the index (in the caller's transaction); returns its key.

    CatalogError if the version is already indexed: versions are immutable, so is their entry.
    """
    connection = session.connection()
    if connection.execute(
        select(_VERSIONS.c.id).where(_VERSIONS.c.version_id == version_id)
    ).first():
        raise CatalogError(f"version {version_id} is already in the overlap index")
    key = connection.execute(
        insert(_VERSIONS).returning(_VERSIONS.c.id),
        {
            "version_id": version_id,
            "scheme": sketch.scheme,
            "records": sketch.records,
            "documents": len(sketch.documents),
            "sample_level": sketch.sample_level,
            "level_counts": list(sketch.level_counts()),
            "indexed_at": datetime.now(UTC),
        },
    ).scalar_one()
    documents, bands = segment_of(sketch)
    connection.execute(
        insert(_SEGMENTS),
        {
            "version_key": key,
            "digest": segment_digest(documents, bands),
            "documents": documents,
            "bands": bands,
        },
    )
    return int(key)


def segment_of(sketch: VersionSketch) -> tuple[bytes, bytes]:
    """The two values of a version's ``overlap_segment`` row: its distinct document hashes,
    ascending, and each sample's (band key, record) pairs, ascending by key then record."""
    documents = sketch.documents.joined  # sorted
    keys = sketch.sample_keys.ravel()
    records = np.repeat(sketch.sample_records, BANDS)
    order = np.lexsort((records, keys))
    pairs = np.stack((keys[order], records[order]), axis=1).astype("<i8")
    return documents, pairs.tobytes()


def segment_digest(documents: bytes, bands: bytes) -> str:
    """What names a segment's content: SHA-256 over the length of ``documents`` (8 bytes, big
    endian), ``documents`` and ``bands``. Entries in memory are kept by it."""
    hasher = hashlib.sha256(len(documents).to_bytes(8, "big"))
    hasher.update(documents)
    hasher.update(bands)
    return hasher.hexdigest()


# -- the entries in memory ---------------------------------------------------------------------

_NO_POSITIONS = np.empty(0, dtype=np.intp)


@dataclass(frozen=True)
class _Run:
    """Index entries of some versions, each array sorted by its first column.

    ``words`` are the document hashes as four big-endian 64-bit words (sorted by the first);
    ``bands`` the band keys (sorted), with the record each belongs to. ``*_owner`` is the
    position of the version in :attr:`_Entries.versions`.
    """

    words: npt.NDArray[np.uint64]
    word_owner: npt.NDArray[np.int32]
    band_keys: I64
    band_records: I64
    band_owner: npt.NDArray[np.int32]

    @property
    def size(self) -> int:
        return len(self.words) + len(self.band_keys)

    @classmethod
    def of(cls, parts: Sequence[tuple[int, bytes, bytes]]) -> _Run:
        """From (owner, documents, bands) of segment rows."""
        words = [_words(documents) for _, documents, _ in parts]
        pairs = [np.frombuffer(bands, dtype="<i8").reshape(-1, 2) for _, _, bands in parts]
        run = cls(
            words=np.concatenate([np.empty((0, 4), np.uint64), *words]),
            word_owner=_owners(parts, [len(w) for w in words]),
            band_keys=np.concatenate([np.empty(0, np.int64), *(p[:, 0] for p in pairs)]),
            band_records=np.concatenate([np.empty(0, np.int64), *(p[:, 1] for p in pairs)]),
            band_owner=_owners(parts, [len(p) for p in pairs]),
        )
        return run.sorted()

    def sorted(self) -> _Run:
        # Stable sorts of 64-bit integers are timsort, linear on the concatenation of two
        # sorted runs (which is what merging does).
        by_word = np.argsort(self.words[:, 0], kind="stable")
        by_key = np.argsort(self.band_keys, kind="stable")
        return _Run(
            words=self.words[by_word],
            word_owner=self.word_owner[by_word],
            band_keys=self.band_keys[by_key],
            band_records=self.band_records[by_key],
            band_owner=self.band_owner[by_key],
        )

    def merged(self, other: _Run) -> _Run:
        return _Run(
            words=np.concatenate((self.words, other.words)),
            word_owner=np.concatenate((self.word_owner, other.word_owner)),
            band_keys=np.concatenate((self.band_keys, other.band_keys)),
            band_records=np.concatenate((self.band_records, other.band_records)),
            band_owner=np.concatenate((self.band_owner, other.band_owner)),
        ).sorted()

    def documents(
        self, query: npt.NDArray[np.uint64]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int32]]:
        """(position in ``query``, owner) of every entry equal to a queried hash (4 words)."""
        asked, found = _equal(self.words[:, 0], query[:, 0])
        same = np.all(self.words[found] == query[asked], axis=1)
        return asked[same], self.word_owner[found[same]]

    def bands(self, query: I64) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int32], I64]:
        """(position in ``query``, owner, record) of every entry with a queried band key."""
        asked, found = _equal(self.band_keys, query)
        return asked, self.band_owner[found], self.band_records[found]


def _words(documents: bytes) -> npt.NDArray[np.uint64]:
    """32-byte hashes, concatenated, as rows of four 64-bit words in the machine's order."""
    return np.frombuffer(documents, dtype=">u8").reshape(-1, 4).astype(np.uint64)


def _owners(parts: Sequence[tuple[int, bytes, bytes]], sizes: Sequence[int]) -> Any:
    owners = [
        np.full(size, owner, dtype=np.int32)
        for (owner, _, _), size in zip(parts, sizes, strict=True)
    ]
    return np.concatenate([np.empty(0, np.int32), *owners])


def _equal(
    keys: npt.NDArray[Any], query: npt.NDArray[Any]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """(position in ``query``, position in ``keys``) of every pair of equal values; ``keys``
    sorted. The query is searched in ascending order (sorted here if it is not), so that the
    binary searches walk ``keys`` in one direction and stay in cache: 4x faster for 1.25M band
    keys in 12.5M entries than in the samples' order."""
    if len(query) > 1 and not bool(np.all(query[1:] >= query[:-1])):
        order = np.argsort(query, kind="stable")
        asked, found = _equal_ascending(keys, query[order])
        return order[asked], found
    return _equal_ascending(keys, query)


def _equal_ascending(
    keys: npt.NDArray[Any], query: npt.NDArray[Any]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """_equal for an ascending ``query``. Most queries find nothing, so the right edge is only
    searched for those that do."""
    if not len(keys) or not len(query):
        return _NO_POSITIONS, _NO_POSITIONS
    left = np.searchsorted(keys, query, side="left")
    hit = np.flatnonzero(keys[np.minimum(left, len(keys) - 1)] == query)
    if not len(hit):
        return _NO_POSITIONS, _NO_POSITIONS
    counts = np.searchsorted(keys, query[hit], side="right") - left[hit]
    asked = np.repeat(hit, counts)
    # the k-th entry of hit j is at left[j] + k: an offset per hit, plus a running count
    ends = np.cumsum(counts)
    found = np.arange(ends[-1]) + np.repeat(left[hit] - (ends - counts), counts)
    return asked.astype(np.intp), found.astype(np.intp)


@dataclass(frozen=True)
class _Snapshot:
    """The runs at one moment, and the owner of each version asked for (key -> owner)."""

    runs: tuple[_Run, ...]
    owners: dict[int, int]
    loaded: int

    def counting(self) -> npt.NDArray[np.bool_]:
        """True at the owners asked for, for indexing by a run's owner column."""
        counted = np.zeros(self.loaded, dtype=bool)
        counted[list(self.owners.values())] = True
        return counted


class _Entries:
    """The loaded segments' index entries, in memory, in a few sorted runs: a run per load,
    merged with the one before it while that one is less than twice its size, so there are
    O(log n) runs and each entry is copied O(log n) times.

    Entries are kept by their segment's digest, so what was loaded once stays right; which
    versions are in the database and count for a lookup (provider, status) is asked of the
    database on every lookup. A segment that does not hash to its digest is refused.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: tuple[_Run, ...] = ()
        self._owner: dict[str, int] = {}

    def clear(self) -> None:
        """Forget every loaded entry (benchmarks time a first lookup with it)."""
        with self._lock:
            self._runs, self._owner = (), {}

    def snapshot(self, connection: Connection, wanted: dict[int, str | None]) -> _Snapshot:
        """The owners of the wanted versions (key -> segment digest), loading the segments of
        those not in memory yet. CatalogError if a version has no segment (digest None)."""
        lost = sorted(key for key, digest in wanted.items() if digest is None)
        if lost:
            raise IndexDamaged(f"the overlap index is damaged: versions {lost} have no segment")
        with self._lock:
            missing = {k: d for k, d in wanted.items() if d is not None and d not in self._owner}
            if missing:
                self._load(connection, missing)
            owners = {key: self._owner[digest] for key, digest in wanted.items() if digest}
            return _Snapshot(self._runs, owners, len(self._owner))

    def _load(self, connection: Connection, missing: dict[int, str]) -> None:
        parts: list[tuple[int, bytes, bytes]] = []
        owners: dict[str, int] = {}
        for _, keys in _slices(sorted(missing), LOAD_CHUNK):
            for key, stored_documents, stored_bands in _segments(connection, keys):
                documents, bands = bytes(stored_documents), bytes(stored_bands)
                if segment_digest(documents, bands) != missing[key]:
                    raise IndexDamaged(
                        f"the overlap index is damaged: the segment of version key {key} "
                        f"does not hash to {missing[key]}"
                    )
                if missing[key] not in owners:  # two versions may have the same entries
                    owners[missing[key]] = len(self._owner) + len(owners)
                    parts.append((owners[missing[key]], documents, bands))
        runs = list(self._runs)
        run = _Run.of(parts)
        while runs and runs[-1].size < 2 * run.size:
            run = runs.pop().merged(run)
        self._runs = (*runs, run)
        self._owner.update(owners)


def _segments(connection: Connection, keys: Sequence[int]) -> Sequence[Any]:
    """(version_key, documents, bands) of these segments. On PostgreSQL through a binary
    cursor of the session's own connection: psycopg sends bytea as hex text otherwise, twice the
    bytes to move and to decode (the first lookup of 10M documents: 10 s -> ~5 s)."""
    if connection.dialect.name != "postgresql":
        return connection.execute(
            select(_SEGMENTS.c.version_key, _SEGMENTS.c.documents, _SEGMENTS.c.bands).where(
                _SEGMENTS.c.version_key.in_(keys)
            )
        ).all()
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor(binary=True) as cursor:
        cursor.execute(
            "SELECT version_key, documents, bands FROM overlap_segment WHERE version_key = ANY(%s)",
            [list(keys)],
        )
        rows: list[tuple[int, bytes, bytes]] = cursor.fetchall()
        return rows


_ENTRIES = _Entries()
LOAD_CHUNK = 64
"""Segments per statement when loading them (each is up to tens of MB)."""


# -- looking up --------------------------------------------------------------------------------


def find_overlaps(
    session: Session,
    sketch: VersionSketch,
    *,
    exclude_provider: str,
    policy: OverlapPolicy | None = None,
) -> OverlapReport:
    """What ``sketch`` shares with the indexed versions of providers other than
    ``exclude_provider`` (the publisher), judged by ``policy``.

    Looks up every distinct document hash and every band key of every sample in memory, in
    the entries of the versions that count (loaded from their segments on first use).
    """
    connection = session.connection()
    counting = connection.execute(
        select(_VERSIONS.c.id, _SEGMENTS.c.digest)
        .select_from(
            _VERSIONS.join(_DATASET_VERSIONS, _DATASET_VERSIONS.c.id == _VERSIONS.c.version_id)
            .join(_DATASETS, _DATASETS.c.id == _DATASET_VERSIONS.c.dataset_id)
            .outerjoin(_SEGMENTS, _SEGMENTS.c.version_key == _VERSIONS.c.id)
        )
        .where(
            _DATASETS.c.provider != exclude_provider,
            _VERSIONS.c.scheme == sketch.scheme,
            # A version held for overlap is no prior art: until an operator clears it, it must
            # not make the corpus it copied look like the copy.
            _DATASET_VERSIONS.c.status != "flagged",
        )
    ).all()
    snapshot = _ENTRIES.snapshot(connection, dict(counting))
    counted = snapshot.counting()
    # Versions with the same entries share an owner: each of them gets the matches.
    keys_of: defaultdict[int, list[int]] = defaultdict(list)
    for key, owner in snapshot.owners.items():
        keys_of[owner].append(key)
    query = _words(sketch.documents.joined)
    flat = sketch.sample_keys.ravel()
    exact: defaultdict[int, list[int]] = defaultdict(list)
    near: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)
    for run in snapshot.runs:
        positions, found = run.documents(query)
        keep = counted[found]
        for position, owner in zip(positions[keep].tolist(), found[keep].tolist(), strict=True):
            for key in keys_of[owner]:
                exact[key].append(position)
        positions, found, records = run.bands(flat)
        keep = counted[found]
        samples = (positions[keep] // BANDS).tolist()
        for sample, owner, record in zip(
            samples, found[keep].tolist(), records[keep].tolist(), strict=True
        ):
            for key in keys_of[owner]:
                near[key].append((sample, record))
    described = _describe(connection, set(exact) | set(near))
    matches = {
        described[key].version: VersionMatches(exact=exact.get(key, ()), near=near.get(key, ()))
        for key in described
    }
    by_id = {v.version: v for v in described.values()}
    return build_report(sketch, matches, by_id, policy=policy or OverlapPolicy())


def _describe(connection: Connection, keys: set[int]) -> dict[int, IndexedVersion]:
    """Names and sample sizes of the indexed versions with these keys."""
    found: dict[int, IndexedVersion] = {}
    for _, chunk in _slices(sorted(keys), LOOKUP_CHUNK):
        rows = connection.execute(
            select(
                _VERSIONS.c.id,
                _VERSIONS.c.version_id,
                _DATASETS.c.provider,
                _DATASETS.c.slug,
                _DATASET_VERSIONS.c.label,
                _VERSIONS.c.documents,
                _VERSIONS.c.sample_level,
                _VERSIONS.c.level_counts,
            )
            .select_from(
                _VERSIONS.join(
                    _DATASET_VERSIONS, _DATASET_VERSIONS.c.id == _VERSIONS.c.version_id
                ).join(_DATASETS, _DATASETS.c.id == _DATASET_VERSIONS.c.dataset_id)
            )
            .where(_VERSIONS.c.id.in_(chunk))
        )
        for key, version, provider, slug, label, documents, level, counts in rows:
            found[key] = IndexedVersion(
                version=version,
                provider=provider,
                dataset=slug,
                label=label,
                documents=documents,
                sample_level=level,
                level_counts=tuple(int(c) for c in counts),
            )
    return found


T = TypeVar("T")


def _slices(items: Sequence[T], size: int) -> Iterator[tuple[int, Sequence[T]]]:
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


def versions_with_documents(session: Session, digests: Sequence[bytes]) -> dict[bytes, list[str]]:
    """For each document SHA-256 (32 raw bytes), the indexed versions that contain it (of any
    provider, status or scheme), by version id."""
    connection = session.connection()
    indexed = connection.execute(
        select(_VERSIONS.c.id, _VERSIONS.c.version_id, _SEGMENTS.c.digest).select_from(
            _VERSIONS.outerjoin(_SEGMENTS, _SEGMENTS.c.version_key == _VERSIONS.c.id)
        )
    ).all()
    snapshot = _ENTRIES.snapshot(connection, {key: digest for key, _, digest in indexed})
    version_of = {key: version for key, version, _ in indexed}
    named: defaultdict[int, list[str]] = defaultdict(list)
    for key, owner in snapshot.owners.items():
        named[owner].append(version_of[key])
    query = _words(b"".join(digests))
    found: defaultdict[bytes, set[str]] = defaultdict(set)
    for run in snapshot.runs:
        positions, owners = run.documents(query)
        for position, owner in zip(positions.tolist(), owners.tolist(), strict=True):
            found[digests[position]].update(named.get(owner, ()))
    return {digest: sorted(ids) for digest, ids in found.items() if ids}
