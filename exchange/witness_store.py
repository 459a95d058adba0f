"""A witness's data dir: its cosigning key, the logs it follows, their state, kept evidence.

    <data dir>/witness.key   the witness's key, a Go-style skey (type 0x04), mode 0600
    <data dir>/witness.db    SQLite: followed logs, per-log state, kept evidence

Every ``add-checkpoint`` runs :func:`ledger.witness.add_checkpoint` inside one SQLite write
transaction (``BEGIN IMMEDIATE``, so the check of the stored size and the write of the new
state are atomic across threads and processes), and the transaction commits, with
``synchronous=FULL``, before the caller answers: a cosignature is never sent for a state that
a crash could lose. Refused requests that the log signed are kept as evidence in the same
transaction. Sizes are stored as decimal text, since SQLite integers stop at 2^63 - 1.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ledger.errors import LedgerError
from ledger.note import CosignatureSigner, Ed25519Verifier, Verifier
from ledger.witness import (
    AddCheckpointRequest,
    Cosigned,
    Evidence,
    LogState,
    Refused,
    add_checkpoint,
)

KEY_FILE = "witness.key"
DB_FILE = "witness.db"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS followed_log (
    origin   TEXT NOT NULL,
    vkey     TEXT NOT NULL,
    added_at TEXT NOT NULL,
    PRIMARY KEY (origin, vkey)
);
CREATE TABLE IF NOT EXISTS log_state (
    origin     TEXT PRIMARY KEY,
    size       TEXT NOT NULL,
    root       BLOB NOT NULL CHECK (length(root) = 32),
    note       TEXT NOT NULL,
    timestamp  INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS evidence (
    id          INTEGER PRIMARY KEY,
    digest      TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL CHECK (kind IN ('fork', 'inconsistent', 'stale')),
    origin      TEXT NOT NULL,
    received_at TEXT NOT NULL,
    request     BLOB NOT NULL,
    cosigned    TEXT,
    detail      TEXT NOT NULL
);
"""


class WitnessError(Exception):
    """The witness data dir is missing, unreadable, already initialised, or misused."""


@dataclass(frozen=True)
class FollowedLog:
    origin: str
    vkeys: tuple[str, ...]
    state: LogState | None


@dataclass(frozen=True)
class KeptEvidence:
    id: int
    received_at: str
    evidence: Evidence


def create_witness(data_dir: Path, name: str) -> CosignatureSigner:
    """Create the witness's key and database; refuses a data dir that already has a key."""
    key_file = data_dir / KEY_FILE
    if key_file.exists():
        raise WitnessError(f"{data_dir} already has a witness key ({key_file})")
    try:
        signer = CosignatureSigner.generate(name)
    except LedgerError as exc:
        raise WitnessError(f"bad witness name {name!r}: {exc}") from None
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(signer.skey + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    WitnessStore(data_dir).close()  # creates the database
    return signer


def _load_key(data_dir: Path) -> CosignatureSigner:
    key_file = data_dir / KEY_FILE
    try:
        text = key_file.read_text().strip()
    except OSError as exc:
        raise WitnessError(
            f"cannot read the witness key {key_file}: {exc.strerror} "
            "(run `corpusx witness init` first)"
        ) from None
    try:
        return CosignatureSigner.from_skey(text)
    except LedgerError as exc:
        raise WitnessError(f"{key_file} is not a witness key: {exc}") from None


class WitnessStore:
    """One witness data dir; safe to share between threads (and with other processes)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.signer = _load_key(data_dir)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            data_dir / DB_FILE, isolation_level=None, timeout=30, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: the commit is on disk (WAL fsync) before the cosignature leaves the process.
        self._db.execute("PRAGMA synchronous=FULL")
        self._migrate()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise WitnessError(f"{self.data_dir / DB_FILE} is from a newer version (v{version})")
        if version < SCHEMA_VERSION:
            with self._lock:
                self._db.executescript(
                    f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version = {SCHEMA_VERSION};COMMIT;"
                )

    def close(self) -> None:
        self._db.close()

    @property
    def vkey(self) -> str:
        return self.signer.verifier.vkey

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, serialised in this process by a lock, across by SQLite."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- logs ------------------------------------------------------------------------------

    def add_log(self, vkey: str, origin: str | None = None) -> bool:
        """Follow the log with this key (origin: the key's name); False if it already was."""
        try:
            verifier = Ed25519Verifier.from_vkey(vkey)
        except LedgerError as exc:
            raise WitnessError(f"not a log vkey: {exc}") from None
        origin = origin or verifier.name
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO followed_log (origin, vkey, added_at) VALUES (?, ?, ?)",
                (origin, verifier.vkey, _now_text()),
            )
            return cursor.rowcount == 1

    def logs(self) -> list[FollowedLog]:
        with self._transaction() as db:
            rows = db.execute("SELECT origin, vkey FROM followed_log ORDER BY origin").fetchall()
            keys: dict[str, list[str]] = {}
            for origin, vkey in rows:
                keys.setdefault(origin, []).append(vkey)
            return [
                FollowedLog(origin, tuple(vkeys), _state(db, origin))
                for origin, vkeys in keys.items()
            ]

    # -- the protocol ----------------------------------------------------------------------

    def add_checkpoint(self, body: bytes, *, now: int | None = None) -> Cosigned | Refused:
        """Decide one ``add-checkpoint`` request and persist the outcome before returning it."""
        try:
            request = AddCheckpointRequest.from_bytes(body)
        except LedgerError as exc:
            return Refused(400, f"malformed request: {exc}")
        origin = request.checkpoint.origin
        with self._transaction() as db:
            outcome = add_checkpoint(
                request,
                logs={origin: _trusted(db, origin)},
                state=_state(db, origin),
                signer=self.signer,
                now=int(time.time()) if now is None else now,
            )
            if isinstance(outcome, Cosigned):
                _save_state(db, outcome.state)
            elif outcome.evidence is not None:
                _keep(db, outcome.evidence)
        return outcome

    # -- evidence --------------------------------------------------------------------------

    def evidence(self, *, kind: str | None = None) -> list[KeptEvidence]:
        query = "SELECT id, received_at, kind, origin, request, cosigned, detail FROM evidence"
        params: tuple[str, ...] = ()
        if kind is not None:
            query, params = query + " WHERE kind = ?", (kind,)
        with self._transaction() as db:
            rows = db.execute(query + " ORDER BY id", params).fetchall()
        return [
            KeptEvidence(
                row_id,
                received,
                Evidence(kind_, origin, AddCheckpointRequest.from_bytes(request), cosigned, detail),
            )
            for row_id, received, kind_, origin, request, cosigned, detail in rows
        ]


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _trusted(db: sqlite3.Connection, origin: str) -> list[Verifier]:
    rows = db.execute("SELECT vkey FROM followed_log WHERE origin = ?", (origin,)).fetchall()
    return [Ed25519Verifier.from_vkey(vkey) for (vkey,) in rows]


def _state(db: sqlite3.Connection, origin: str) -> LogState | None:
    row = db.execute(
        "SELECT size, root, note, timestamp FROM log_state WHERE origin = ?", (origin,)
    ).fetchone()
    if row is None:
        return None
    size, root, note, timestamp = row
    return LogState(origin, int(size), bytes(root), note, timestamp)


def _save_state(db: sqlite3.Connection, state: LogState) -> None:
    db.execute(
        "INSERT INTO log_state (origin, size, root, note, timestamp, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (origin) DO UPDATE SET size = excluded.size, "
        "root = excluded.root, note = excluded.note, timestamp = excluded.timestamp, "
        "updated_at = excluded.updated_at",
        (state.origin, str(state.size), state.root, state.note, state.timestamp, _now_text()),
    )


def _keep(db: sqlite3.Connection, evidence: Evidence) -> None:
    """Keep a refused request once (a retried request has the same digest)."""
    db.execute(
        "INSERT OR IGNORE INTO evidence "
        "(digest, kind, origin, received_at, request, cosigned, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            evidence.request.digest,
            evidence.kind,
            evidence.origin,
            _now_text(),
            evidence.request.to_bytes(),
            evidence.cosigned,
            evidence.detail,
        ),
    )
