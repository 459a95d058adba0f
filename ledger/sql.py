"""The SQL driver of the ledger: it persists what the pure core computes.

Tables: ``ledger_entry`` (canonical entry bytes by sequence number), ``ledger_node`` (every
perfect-subtree hash, so a proof is one indexed query of O(log n) rows), ``ledger_head`` (one row:
size, frontier and the last leaf, locked by every append) and ``ledger_checkpoint``.

Appends run in the caller's transaction and lock the head row first (``SELECT ... FOR UPDATE`` on
PostgreSQL; on SQLite the engine opens write transactions with ``BEGIN IMMEDIATE``), so two
writers can never take the same sequence number and a rolled-back use case leaves no entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    LargeBinary,
    SmallInteger,
    Text,
    TextClause,
    UniqueConstraint,
    func,
    text,
)
from sqlmodel import Field, Session, SQLModel, col, select

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.entry import Entry, SignedStatement, format_time
from ledger.errors import StoreError
from ledger.merkle import (
    HASH_SIZE,
    NodeID,
    consistency_proof,
    frontier_root,
    inclusion_proof,
    integrate,
    verify_consistency,
)
from ledger.note import Ed25519Signer
from ledger.tiles import TILE_HEIGHT, TILE_WIDTH, encode_entry_bundle, encode_hash_tile


class LedgerEntryRow(SQLModel, table=True):
    __tablename__ = "ledger_entry"
    __table_args__ = (
        CheckConstraint("seq >= 0", name="ck_ledger_entry_seq"),
        # A member's nonce is used once, ever: the database itself refuses a replay.
        UniqueConstraint("member", "nonce", name="uq_ledger_entry_member_nonce"),
    )

    seq: int = Field(
        sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    type: str = Field(max_length=80, index=True)
    member: str = Field(max_length=64, index=True)
    key_id: str = Field(max_length=16)
    nonce: str = Field(max_length=64)
    time: str = Field(max_length=32)
    data: bytes = Field(sa_type=LargeBinary)


class LedgerNodeRow(SQLModel, table=True):
    __tablename__ = "ledger_node"
    __table_args__ = (CheckConstraint("length(hash) = 32", name="ck_ledger_node_hash"),)

    level: int = Field(
        sa_type=SmallInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    idx: int = Field(
        sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    hash: bytes = Field(sa_type=LargeBinary)


class LedgerHeadRow(SQLModel, table=True):
    __tablename__ = "ledger_head"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    size: int = Field(sa_type=BigInteger, default=0)
    frontier: bytes = Field(sa_type=LargeBinary, default=b"")
    last_leaf: bytes = Field(sa_type=LargeBinary, default=b"")
    last_time: str = Field(max_length=32, default="")


class LedgerCheckpointRow(SQLModel, table=True):
    __tablename__ = "ledger_checkpoint"

    size: int = Field(
        sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    root: bytes = Field(sa_type=LargeBinary)
    note: str = Field(sa_type=Text)
    issued_at: datetime


_COPY_ENTRIES = "COPY ledger_entry (seq, type, member, key_id, nonce, time, data) FROM STDIN"
_COPY_NODES = "COPY ledger_node (level, idx, hash) FROM STDIN"
_INSERT_ENTRIES = (
    "INSERT INTO ledger_entry (seq, type, member, key_id, nonce, time, data) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_NODES = "INSERT INTO ledger_node (level, idx, hash) VALUES (?, ?, ?)"


@lru_cache(maxsize=256)
def _node_query(count: int) -> TextClause:
    terms = " OR ".join(f"(level = :l{i} AND idx = :i{i})" for i in range(count))
    return text(f"SELECT level, idx, hash FROM ledger_node WHERE {terms}")  # noqa: S608


class ReplayError(StoreError):
    """A member's nonce was already used."""


@dataclass(frozen=True)
class Head:
    size: int
    root: bytes


def _split_frontier(data: bytes) -> list[bytes]:
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


class SqlLedger:
    """The ledger over one SQLModel session; never commits — the caller's use case does."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- writing ---------------------------------------------------------------------------

    def append(self, signed: SignedStatement, *, now: datetime | None = None) -> Entry:
        return self.append_many([signed], now=now)[0]

    def append_many(
        self, statements: Sequence[SignedStatement], *, now: datetime | None = None
    ) -> list[Entry]:
        """Place statements at the end of the log, in order, in the caller's transaction."""
        head = self._lock_head()
        self._refuse_replays(statements)
        time = max(format_time(now or datetime.now(UTC)), head.last_time)
        prev: bytes | None = head.last_leaf or None
        entries: list[Entry] = []
        for offset, signed in enumerate(statements):
            entry = Entry.build(seq=head.size + offset, time=time, prev=prev, signed=signed)
            prev = entry.leaf_hash()
            entries.append(entry)
        integration = integrate(
            head.size, _split_frontier(head.frontier), [e.leaf_hash() for e in entries]
        )
        self._insert_rows(entries, integration.nodes)
        head.size = integration.size
        head.frontier = b"".join(integration.frontier)
        head.last_leaf = prev or b""
        head.last_time = time
        self.session.add(head)
        self.session.flush()
        return entries

    def _lock_head(self) -> LedgerHeadRow:
        head = self.session.exec(
            select(LedgerHeadRow).where(LedgerHeadRow.id == 1).with_for_update()
        ).one_or_none()
        if head is None:
            raise StoreError("the ledger has no head row: is the database migrated?")
        return head

    def _refuse_replays(self, statements: Sequence[SignedStatement]) -> None:
        """Duplicates within the batch; duplicates of stored entries the unique index refuses."""
        keys = [(s.statement.member, s.statement.nonce) for s in statements]
        if len(set(keys)) != len(keys):
            raise ReplayError("the same nonce appears twice in one batch")

    def _insert_rows(self, entries: list[Entry], nodes: Sequence[tuple[NodeID, bytes]]) -> None:
        """Write entries and nodes through the session's own connection (same transaction).

        Rows go straight to the driver: COPY on PostgreSQL, ``executemany`` on SQLite. The ORM's
        per-row work would otherwise cost more than everything else an append does.
        """
        entry_rows = [
            (
                e.seq,
                e.statement.type,
                e.statement.member,
                e.statement.key_id,
                e.statement.nonce,
                e.time,
                e.canonical(),
            )
            for e in entries
        ]
        node_rows = [(node.level, node.index, value) for node, value in nodes]
        connection = self.session.connection()
        driver = connection.connection.driver_connection
        try:
            self._write(connection.dialect.name, driver, entry_rows, node_rows)
        except connection.dialect.loaded_dbapi.IntegrityError as exc:
            # The only unique key a correct append can hit is (member, nonce): a replay.
            detail = getattr(getattr(exc, "diag", None), "message_detail", None) or ""
            raise ReplayError(f"a nonce was already used: a replay {detail}".strip()) from None

    @staticmethod
    def _write(
        dialect: str,
        driver: Any,
        entry_rows: list[tuple[Any, ...]],
        node_rows: list[tuple[Any, ...]],
    ) -> None:
        if dialect == "postgresql":
            with driver.cursor() as cursor:
                with cursor.copy(_COPY_ENTRIES) as copy:
                    for entry_row in entry_rows:
                        copy.write_row(entry_row)
                with cursor.copy(_COPY_NODES) as copy:
                    for node_row in node_rows:
                        copy.write_row(node_row)
            return
        cursor = driver.cursor()
        try:
            cursor.executemany(_INSERT_ENTRIES, entry_rows)
            cursor.executemany(_INSERT_NODES, node_rows)
        finally:
            cursor.close()

    # -- reading ---------------------------------------------------------------------------

    def head(self) -> Head:
        row = self.session.get(LedgerHeadRow, 1)
        if row is None:
            raise StoreError("the ledger has no head row: is the database migrated?")
        return Head(row.size, frontier_root(_split_frontier(row.frontier)))

    def read_nodes(self, ids: Sequence[NodeID]) -> list[bytes]:
        """The hashes of ``ids`` in one indexed query (an OR of primary-key lookups).

        SQLite does not use the primary key for a row-value ``(level, idx) IN (...)`` and scans
        the whole table; an OR of equalities is a multi-index lookup on SQLite and a bitmap OR
        on PostgreSQL. The statement text depends only on how many ids are read, so it is built
        once per count and the driver's statement caches keep it.
        """
        if not ids:
            return []
        params: dict[str, int] = {}
        for i, node in enumerate(ids):
            params[f"l{i}"], params[f"i{i}"] = node.level, node.index
        rows = self.session.connection().execute(_node_query(len(ids)), params).all()
        found = {NodeID(level, idx): bytes(value) for level, idx, value in rows}
        try:
            return [found[node] for node in ids]
        except KeyError as missing:
            raise StoreError(f"the tree has no node {missing.args[0]}") from None

    def entry_data(self, seq: int) -> bytes:
        data = self.session.exec(
            select(LedgerEntryRow.data).where(LedgerEntryRow.seq == seq)
        ).first()
        if data is None:
            raise StoreError(f"there is no entry {seq}")
        return data

    def entries_data(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """(seq, bytes) of the stored entries with start <= seq < end, in order."""
        rows = self.session.exec(
            select(LedgerEntryRow.seq, LedgerEntryRow.data)
            .where(LedgerEntryRow.seq >= start, LedgerEntryRow.seq < end)
            .order_by(col(LedgerEntryRow.seq))
        ).all()
        return [(seq, data) for seq, data in rows]

    def entries_after(self, seq: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` stored entries after ``seq``, in order (keyset pagination)."""
        rows = self.session.exec(
            select(LedgerEntryRow.seq, LedgerEntryRow.data)
            .where(LedgerEntryRow.seq > seq)
            .order_by(col(LedgerEntryRow.seq))
            .limit(limit)
        ).all()
        return [(s, data) for s, data in rows]

    def leaf_hashes(self, start: int, end: int) -> list[tuple[int, bytes]]:
        rows = self.session.exec(
            select(LedgerNodeRow.idx, LedgerNodeRow.hash)
            .where(LedgerNodeRow.level == 0, LedgerNodeRow.idx >= start, LedgerNodeRow.idx < end)
            .order_by(col(LedgerNodeRow.idx))
        ).all()
        return [(idx, value) for idx, value in rows]

    def inclusion_proof(self, seq: int, size: int) -> list[bytes]:
        self._check_size(size)
        return inclusion_proof(seq, size, self.read_nodes)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        self._check_size(size2)
        return consistency_proof(size1, size2, self.read_nodes)

    def size(self) -> int:
        """The number of entries (reads one column; ``head`` also computes the root)."""
        size = self.session.exec(select(LedgerHeadRow.size).where(LedgerHeadRow.id == 1)).first()
        if size is None:
            raise StoreError("the ledger has no head row: is the database migrated?")
        return size

    def _check_size(self, size: int) -> None:
        if size > self.size():
            raise StoreError(f"the log has fewer than {size} entries")

    def hash_tile(self, level: int, index: int, width: int) -> bytes:
        """The c2sp tlog-tiles hash tile: nodes of Merkle level 8*level."""
        first = index * TILE_WIDTH
        rows = self.session.exec(
            select(LedgerNodeRow.hash)
            .where(
                LedgerNodeRow.level == level * TILE_HEIGHT,
                LedgerNodeRow.idx >= first,
                LedgerNodeRow.idx < first + width,
            )
            .order_by(col(LedgerNodeRow.idx))
        ).all()
        if len(rows) != width:
            raise StoreError(f"tile {level}/{index} does not have {width} hashes yet")
        return encode_hash_tile(list(rows))

    def entry_bundle(self, index: int, width: int) -> bytes:
        first = index * TILE_WIDTH
        rows = self.entries_data(first, first + width)
        if len(rows) != width:
            raise StoreError(f"entry bundle {index} does not have {width} entries yet")
        return encode_entry_bundle([data for _, data in rows])

    # -- checkpoints -----------------------------------------------------------------------

    def latest_checkpoint(self) -> LedgerCheckpointRow | None:
        return self.session.exec(
            select(LedgerCheckpointRow).order_by(col(LedgerCheckpointRow.size).desc()).limit(1)
        ).first()

    def checkpoint_at(self, size: int) -> LedgerCheckpointRow | None:
        return self.session.get(LedgerCheckpointRow, size)

    def issue_checkpoint(self, signer: Ed25519Signer) -> LedgerCheckpointRow:
        """Sign the current tree if it grew; never two checkpoints that disagree.

        Holds the head lock, so the size signed is the size stored; checks consistency with
        the previous checkpoint before signing, so a corrupted node table cannot be signed over.
        """
        head = self._lock_head()
        latest = self.latest_checkpoint()
        if latest is not None and latest.size == head.size:
            return latest
        root = frontier_root(_split_frontier(head.frontier))
        if latest is not None and latest.size > 0:
            proof = consistency_proof(latest.size, head.size, self.read_nodes)
            verify_consistency(
                size1=latest.size, size2=head.size, proof=proof, root1=latest.root, root2=root
            )
        note = sign_checkpoint(Checkpoint(signer.name, head.size, root), signer)
        row = LedgerCheckpointRow(size=head.size, root=root, note=note, issued_at=datetime.now(UTC))
        self.session.add(row)
        self.session.flush()
        return row

    def count_entries(self) -> int:
        return int(self.session.exec(select(func.count()).select_from(LedgerEntryRow)).one())
