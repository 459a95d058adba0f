"""The overlap index: every indexed version's document hashes and sampled band keys, in SQL.

Three tables (migration 0003), on SQLite and PostgreSQL alike:

- ``overlap_version``: one row per indexed version, with a small integer key that the two big
  tables use instead of the 71-character version id, and what the report needs to compare
  samples (documents, sample level, sampled documents per level).
- ``overlap_document``: (sha256, version_key), one row per distinct indexed document of a
  version. The primary key leads with the hash: it is the lookup index.
- ``overlap_band``: (band_key, version_key, record), one row per band of each sampled
  document; ``record`` is the version-wide record number of the document's first occurrence.

Both big tables are clustered on their key on SQLite (``WITHOUT ROWID``). Nothing here
commits: :func:`index_version` belongs in the publishing transaction, next to the version row.
"""

from __future__ import annotations

import functools
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    ARRAY,
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    ColumnElement,
    LargeBinary,
    Select,
    Table,
    any_,
    bindparam,
    insert,
    select,
)
from sqlalchemy.engine import Connection
from sqlmodel import Field, Session, SQLModel

from catalog.errors import CatalogError
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
    "INSERT_CHUNK",
    "LOOKUP_CHUNK",
    "OverlapBand",
    "OverlapDocument",
    "OverlapVersion",
    "find_overlaps",
    "index_version",
]

INSERT_CHUNK = 10_000
"""Rows per executemany when indexing (PostgreSQL streams all rows through one COPY)."""
LOOKUP_CHUNK = 2_000
"""Keys per lookup statement (well under SQLite's limit of 32766 bound parameters)."""


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


class OverlapDocument(SQLModel, table=True):
    __tablename__ = "overlap_document"
    __table_args__ = (
        CheckConstraint("length(sha256) = 32", name="ck_overlap_document_sha256"),
        {"sqlite_with_rowid": False},
    )

    sha256: bytes = Field(sa_type=LargeBinary, primary_key=True)
    version_key: int = Field(foreign_key="overlap_version.id", primary_key=True)


class OverlapBand(SQLModel, table=True):
    __tablename__ = "overlap_band"
    __table_args__ = ({"sqlite_with_rowid": False},)

    band_key: int = Field(sa_type=BigInteger, primary_key=True)
    version_key: int = Field(foreign_key="overlap_version.id", primary_key=True)
    record: int = Field(sa_type=BigInteger, primary_key=True)


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


_VERSIONS = _table(OverlapVersion)
_DOCUMENTS = _table(OverlapDocument)
_BANDS = _table(OverlapBand)
_DATASET_VERSIONS = _table(DatasetVersion)
_DATASETS = _table(Dataset)


# -- indexing ----------------------------------------------------------------------------------


def index_version(
    session: Session, version_id: str, sketch: VersionSketch, *, chunk: int = INSERT_CHUNK
) -> int:
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
    band_keys = sketch.sample_keys.ravel()
    band_records = np.repeat(sketch.sample_records, BANDS)
    # In key order, as the documents already are: inserting into the B-tree in order is 3-4x
    # faster than in sample order (measured on SQLite), and the rows are the same.
    order = np.lexsort((band_records, band_keys))
    band_keys, band_records = band_keys[order], band_records[order]
    if connection.dialect.name == "sqlite":
        _sqlite_insert_documents(connection, sketch.documents, int(key))
        _sqlite_insert_bands(connection, band_keys, band_records, int(key))
        return int(key)
    _insert(connection, _DOCUMENTS, zip(sketch.documents, itertools.repeat(key)), chunk)
    bands = zip(band_keys.tolist(), itertools.repeat(key), band_records.tolist())
    _insert(connection, _BANDS, bands, chunk)
    return int(key)


# SQLite inserts a large version's rows fastest from one statement that cuts them out of one
# bound value itself (a recursive CTE counts the rows), not from an executemany, whose cost is
# mostly binding and stepping each row from Python: for 1M documents and 1.25M band rows,
# 6.8 s -> 4.5 s in the publishing database (foreign keys on), 3.4 -> 1.2 s for the documents
# alone in a bare table. (Looking keys up the same way gained nothing over IN lists: the CTE's
# own rows cost ~0.5 us each.)
_SQLITE_DOCUMENTS = """
WITH RECURSIVE row(i) AS (
    SELECT 0 WHERE :count > 0 UNION ALL SELECT i + 1 FROM row WHERE i + 1 < :count
)
INSERT INTO overlap_document (sha256, version_key)
SELECT substr(:hashes, i * 32 + 1, 32), :version FROM row
"""
_DECIMAL = 20
"""Characters of a signed 64-bit integer written as a sign and 19 digits (in _SQLITE_BANDS)."""
_SQLITE_BANDS = """
WITH RECURSIVE row(i) AS (
    SELECT 0 WHERE :count > 0 UNION ALL SELECT i + 1 FROM row WHERE i + 1 < :count
)
INSERT INTO overlap_band (band_key, version_key, record)
SELECT CAST(substr(:rows, i * 40 + 1, 20) AS INTEGER), :version,
       CAST(substr(:rows, i * 40 + 21, 20) AS INTEGER)
FROM row
"""


def _sqlite_insert_documents(connection: Connection, digests: Sequence[bytes], key: int) -> None:
    """The version's document rows, from the hashes joined in one BLOB (substr cuts a BLOB by
    bytes, in constant time)."""
    parameters = {"count": len(digests), "hashes": b"".join(digests), "version": key}
    connection.exec_driver_sql(_SQLITE_DOCUMENTS, parameters)


def _sqlite_insert_bands(connection: Connection, keys: I64, records: I64, key: int) -> None:
    """The version's band rows, from each (band key, record) written as two fixed-width decimal
    numbers in one BLOB, which SQLite's CAST reads back as the same integers."""
    rows = np.concatenate((_decimal(keys), _decimal(records)), axis=1)
    parameters = {"count": len(keys), "rows": rows.tobytes(), "version": key}
    connection.exec_driver_sql(_SQLITE_BANDS, parameters)


def _decimal(values: I64) -> npt.NDArray[np.uint8]:
    """Each signed 64-bit integer as _DECIMAL ASCII characters: its sign, then 19 digits."""
    negative = values < 0
    # The magnitude in uint64, where even -2^63 has one: two's complement, then negated.
    magnitude = np.where(negative, ~values.view(np.uint64) + np.uint64(1), values.view(np.uint64))
    out = np.empty((len(values), _DECIMAL), dtype=np.uint8)
    out[:, 0] = np.where(negative, ord("-"), ord("+"))
    ten = np.uint64(10)
    for column in range(_DECIMAL - 1, 0, -1):
        magnitude, digit = np.divmod(magnitude, ten)
        out[:, column] = digit.astype(np.uint8) + ord("0")
    return out


def _insert(
    connection: Connection, table: Table, rows: Iterator[tuple[Any, ...]], chunk: int
) -> None:
    """Bulk insert of rows (in the table's column order): COPY on PostgreSQL, elsewhere
    executemany in chunks (SQLite has its own statements above)."""
    if connection.dialect.name == "postgresql":
        _copy(connection, table, rows)
        return
    statement = str(insert(table).compile(dialect=connection.dialect))
    for batch in _batches(rows, chunk):
        connection.exec_driver_sql(statement, batch)


def _copy(connection: Connection, table: Table, rows: Iterator[tuple[Any, ...]]) -> None:
    """psycopg's COPY on the session's own connection, so in the caller's transaction."""
    columns = [c.name for c in table.columns]
    driver = connection.connection.driver_connection
    assert driver is not None
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


# -- looking up --------------------------------------------------------------------------------


def find_overlaps(
    session: Session,
    sketch: VersionSketch,
    *,
    exclude_provider: str,
    policy: OverlapPolicy | None = None,
    chunk: int = LOOKUP_CHUNK,
) -> OverlapReport:
    """What ``sketch`` shares with the indexed versions of providers other than
    ``exclude_provider`` (the publisher), judged by ``policy``.

    Looks up every distinct document hash and every sampled band key, ``chunk`` at a time.
    """
    connection = session.connection()
    scope = {"exclude": exclude_provider, "scheme": sketch.scheme}
    exact: defaultdict[int, list[int]] = defaultdict(list)
    for start, digests in _slices(sketch.documents, chunk):
        rows = _look_up(connection, _DOCUMENTS, _DOCUMENTS.c.sha256, digests, scope)
        if rows:  # most chunks of a new corpus find nothing: no positions to map back to
            position = {digest: start + i for i, digest in enumerate(digests)}
            for digest, version_key in rows:
                exact[version_key].append(position[bytes(digest)])
    near: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)
    keys, owners = _band_owners(sketch)
    for start, chunk_keys in _slices(keys, chunk):
        hits = _look_up(connection, _BANDS, _BANDS.c.band_key, chunk_keys, scope, _BANDS.c.record)
        if not hits:
            continue
        first = {key: start + i for i, key in enumerate(chunk_keys)}
        for band_key, version_key, record in hits:
            near[version_key].extend((sample, record) for sample in owners(first[band_key]))
    versions = _describe(connection, set(exact) | set(near))
    matches = {
        versions[key].version: VersionMatches(exact=exact.get(key, ()), near=near.get(key, ()))
        for key in versions
    }
    by_id = {v.version: v for v in versions.values()}
    return build_report(sketch, matches, by_id, policy=policy or OverlapPolicy())


def _band_owners(sketch: VersionSketch) -> tuple[list[int], Callable[[int], list[int]]]:
    """The distinct band keys of the samples, ascending (lookups walk the index in order), and
    a function giving the samples that have the i-th key (asked only for keys that were found).
    """
    flat = sketch.sample_keys.ravel()
    order = np.argsort(flat, kind="stable")
    keys, starts = np.unique(flat[order], return_index=True)
    samples = (order // BANDS).tolist()
    bounds = [*starts.tolist(), len(samples)]

    def owners(i: int) -> list[int]:
        result: list[int] = samples[bounds[i] : bounds[i + 1]]
        return result

    return keys.tolist(), owners


def _look_up(
    connection: Connection,
    table: Table,
    key: Column[Any],
    keys: Sequence[Any],
    scope: dict[str, str],
    *extra: Column[Any],
) -> Sequence[Any]:
    """The rows of :func:`_lookup` for these keys.

    Elsewhere than on PostgreSQL the statement has one placeholder per key; it is compiled once
    per number of keys and run by the driver with the values as they are (SQLAlchemy's handling
    of thousands of parameters per statement cost more than the lookup itself).
    """
    if connection.dialect.name == "postgresql":
        statement = _lookup(table, key, "postgresql", *extra)
        return connection.execute(statement, {"keys": list(keys), **scope}).all()
    sql, before, after, constants = _positional_lookup(
        table, key, extra, len(keys), connection.dialect
    )
    values = {**constants, **scope}
    parameters = (*(values[n] for n in before), *keys, *(values[n] for n in after))
    return connection.exec_driver_sql(sql, parameters).all()


@functools.cache
def _positional_lookup(
    table: Table, key: Column[Any], extra: tuple[Column[Any], ...], count: int, dialect: Any
) -> tuple[str, tuple[str, ...], tuple[str, ...], dict[str, Any]]:
    """SQL text; the names of the parameters before and after the keys (which are contiguous);
    and the statement's own constants (``'flagged'``)."""
    compiled = _lookup(table, key, dialect.name, *extra, count=count).compile(dialect=dialect)
    order = list(compiled.positiontup or ())
    first = order.index("key_0")
    assert order[first : first + count] == [f"key_{i}" for i in range(count)]
    constants = {name: value for name, value in compiled.params.items() if value is not None}
    return compiled.string, tuple(order[:first]), tuple(order[first + count :]), constants


def _lookup(
    table: Table, key: Column[Any], dialect: str, *extra: Column[Any], count: int | None = None
) -> Select[Any]:
    """Rows of ``table`` whose ``key`` is one of the bound keys, in versions of the bound
    ``scheme`` whose provider is not the bound ``exclude`` and which are not flagged.

    The keys are one array parameter ``keys`` on PostgreSQL (a constant statement, prepared once
    by the driver) and ``count`` parameters ``key_0`` ... elsewhere.
    """
    if dialect == "postgresql":
        wanted = key == any_(bindparam("keys", type_=ARRAY(key.type)))
    else:
        wanted = key.in_([bindparam(f"key_{i}") for i in range(count or 0)])
    versions = _VERSIONS.join(
        _DATASET_VERSIONS, _DATASET_VERSIONS.c.id == _VERSIONS.c.version_id
    ).join(_DATASETS, _DATASETS.c.id == _DATASET_VERSIONS.c.dataset_id)
    return (
        select(key, table.c.version_key, *extra)
        .select_from(table.join(versions, _VERSIONS.c.id == table.c.version_key))
        .where(
            wanted,
            _DATASETS.c.provider != bindparam("exclude"),
            _VERSIONS.c.scheme == bindparam("scheme"),
            # A version held for overlap is no prior art: until an operator clears it, it must
            # not make the corpus it copied look like the copy.
            _DATASET_VERSIONS.c.status != "flagged",
        )
    )


def _one_of(key: Column[Any], dialect: str) -> ColumnElement[bool]:
    """``key`` is one of the bound ``keys``: one array parameter on PostgreSQL (a constant
    statement, prepared once by the driver; an expanding ``IN`` of thousands of placeholders is
    a new statement text that psycopg re-parses on every execution) and an expanding
    ``IN (...)`` elsewhere."""
    if dialect == "postgresql":
        return key == any_(bindparam("keys", type_=ARRAY(key.type)))
    return key.in_(bindparam("keys", expanding=True))


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


def _batches(rows: Iterator[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def versions_with_documents(
    session: Session, digests: Sequence[bytes], *, chunk: int = LOOKUP_CHUNK
) -> dict[bytes, list[str]]:
    """For each document SHA-256 (32 raw bytes), the indexed versions that contain it."""
    found: dict[bytes, list[str]] = {}
    connection = session.connection()
    query = (
        select(_DOCUMENTS.c.sha256, _VERSIONS.c.version_id)
        .join(_VERSIONS, _VERSIONS.c.id == _DOCUMENTS.c.version_key)
        .where(_one_of(_DOCUMENTS.c.sha256, connection.dialect.name))
        .order_by(_VERSIONS.c.version_id)
    )
    for start in range(0, len(digests), chunk):
        keys = list(digests[start : start + chunk])
        for digest, version_id in connection.execute(query, {"keys": keys}):
            found.setdefault(bytes(digest), []).append(version_id)
    return found
