"""Does the database hold one consistent story? The ledger and the state it records, checked.

Every use case writes its rows, its ledger entries and its money in one transaction, so after any
crash the database must still tell one story. ``check_integrity`` reads everything in one
snapshot (PostgreSQL ``REPEATABLE READ``; a SQLite read transaction) — so it may run while the
exchange serves — and reports each disagreement as a :class:`Problem`:

- **the log**: entries 0..n-1, each exactly once, each ``prev`` the leaf hash of the entry
  before, the indexed columns equal to the entry's own bytes; every stored tree node equal to
  the node recomputed from the leaves; the head (size, last leaf, frontier) and every
  checkpoint's root equal to the tree's at that size;
- **state ↔ entries, both ways**: ``member.registered`` ↔ member (and account), keys added and
  revoked ↔ key rows, ``dataset.version.published`` ↔ version (with exactly its manifest's files,
  its overlap-index row and, if derived, the lineage its provider signed), ``offer.published``
  and ``offer.withdrawn`` ↔ offer, ``licence.granted`` and ``licence.revoked`` ↔ agreement,
  ``data.delivered`` ↔ delivery, ``model.training.attested`` ↔ attestation;
- **money**: every journal transaction is exactly the one its entry implies (deposits,
  withdrawals, paid purchases), and every account's balance equals the balance recomputed from
  the entries themselves; the balances sum to zero and match their postings.

The cryptography (signatures, roles, checkpoint signatures) and what the entries mean against
each other (``licensing.market_audit``) are ``corpusx audit verify --local``'s part, over the log
alone; this — the log against the tables — is ``corpusx db check``.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from catalog.errors import CatalogError
from catalog.manifest import VersionManifest
from catalog.models import Dataset, DatasetVersion, VersionFile
from catalog.overlap_index import OverlapSegment, OverlapVersion, segment_digest
from exchange.db import read_only
from exchange.models import (
    Account,
    Delivery,
    JournalPosting,
    JournalTransaction,
    Member,
    MemberKey,
)
from exchange.settlement import EXTERNAL, FEES, books, member_account_id
from ledger.checkpoint import Checkpoint
from ledger.entry import Entry
from ledger.errors import LedgerError
from ledger.merkle import RootBuilder, leaf_hash, node_hash
from ledger.note import Note
from ledger.sql import LedgerCheckpointRow, LedgerEntryRow, LedgerHeadRow, LedgerNodeRow
from licensing.models import (
    Agreement,
    Offer,
    TrainingAttestation,
    VersionLineage,
    VersionSource,
)

BATCH = 2_000
ZERO = bytes(32).hex()


@dataclass(frozen=True)
class Problem:
    check: str  # what was checked, e.g. "licence.granted" or "ledger.chain"
    detail: str  # what was expected and what was found


@dataclass(frozen=True)
class IntegrityReport:
    size: int
    entries: dict[str, int]  # entries per type
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "size": self.size,
            "entries": self.entries,
            "problems": [{"check": p.check, "detail": p.detail} for p in self.problems],
        }


@dataclass(frozen=True)
class Logged:
    """One entry, as the state checks need it."""

    seq: int
    type: str
    member: str
    body: dict[str, Any]


@dataclass
class Findings:
    """What a check run has read and found so far."""

    problems: list[Problem] = field(default_factory=list)
    leaves: list[bytes] = field(default_factory=list)
    by_type: dict[str, list[Logged]] = field(default_factory=lambda: defaultdict(list))
    last_time: str = ""

    def add(self, check: str, detail: str) -> None:
        self.problems.append(Problem(check, detail))

    def logged(self, entry_type: str) -> list[Logged]:
        return self.by_type.get(entry_type, [])


def check_integrity(engine: Engine) -> IntegrityReport:
    """Check the whole database in one snapshot; a report, never an exception, for bad data."""
    with _snapshot(engine) as session:
        return check_session(session)


def check_session(session: Session) -> IntegrityReport:
    """The checks, in the caller's transaction (which should be one snapshot)."""
    found = Findings()
    _scan_log(session, found)
    _check_tree(session, found)
    _check_head_and_checkpoints(session, found)
    for check in STATE_CHECKS:
        check(session, found)
    counts = {kind: len(entries) for kind, entries in sorted(found.by_type.items())}
    return IntegrityReport(len(found.leaves), counts, tuple(found.problems))


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Session]:
    if engine.dialect.name == "postgresql":
        repeatable = engine.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
        with Session(repeatable) as session:
            yield session
        return
    with read_only(engine) as session:  # SQLite: a read transaction is one WAL snapshot
        yield session


# -- the log -------------------------------------------------------------------------------------


def _entry_rows(session: Session) -> Iterator[LedgerEntryRow]:
    last = -1
    while True:
        rows = session.exec(
            select(LedgerEntryRow)
            .where(LedgerEntryRow.seq > last)
            .order_by(col(LedgerEntryRow.seq))
            .limit(BATCH)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def _scan_log(session: Session, found: Findings) -> None:
    """Entries 0..n-1 exactly once, chained, indexed as their bytes say."""
    prev = ZERO
    for row in _entry_rows(session):
        position = len(found.leaves)
        if row.seq != position:
            found.add("ledger.sequence", f"expected entry {position}, found entry {row.seq}")
            return  # everything after a gap would be reported again: stop here
        leaf = leaf_hash(row.data)
        found.leaves.append(leaf)
        try:
            entry = Entry.from_bytes(row.data, strict=False)
        except LedgerError as exc:
            found.add("ledger.entry", f"entry {row.seq} does not parse: {exc}")
            prev = leaf.hex()
            continue
        if entry.seq != row.seq:
            found.add("ledger.entry", f"row {row.seq} holds the bytes of entry {entry.seq}")
        if entry.prev != prev:
            found.add("ledger.chain", f"entry {row.seq}: prev {entry.prev}, expected {prev}")
        statement = entry.statement
        indexed = (row.type, row.member, row.key_id, row.nonce, row.time)
        actual = (statement.type, statement.member, statement.key_id, statement.nonce, entry.time)
        if indexed != actual:
            found.add("ledger.entry", f"entry {row.seq} is indexed as {indexed}, it is {actual}")
        found.by_type[statement.type].append(
            Logged(row.seq, statement.type, statement.member, statement.body)
        )
        found.last_time = entry.time
        prev = leaf.hex()


def _check_tree(session: Session, found: Findings) -> None:
    """Every stored node is the hash the leaves give; no node is missing or extra."""
    level, hashes = 0, found.leaves
    while hashes:
        stored = dict(
            session.exec(
                select(LedgerNodeRow.idx, LedgerNodeRow.hash).where(LedgerNodeRow.level == level)
            ).all()
        )
        wrong = [i for i, value in enumerate(hashes) if stored.get(i) != value]
        if wrong or len(stored) != len(hashes):
            first = wrong[0] if wrong else len(hashes)
            found.add(
                "ledger.tree",
                f"level {level}: {len(stored)} nodes stored, {len(hashes)} expected; "
                f"first wrong or extra at index {first}",
            )
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes) - 1, 2)]
        level += 1
    higher = session.exec(
        select(func.count()).select_from(LedgerNodeRow).where(LedgerNodeRow.level >= level)
    ).one()
    if higher:
        found.add("ledger.tree", f"{higher} node(s) stored above the tree's top level {level - 1}")


def _check_head_and_checkpoints(session: Session, found: Findings) -> None:
    head = session.get(LedgerHeadRow, 1)
    checkpoints = session.exec(
        select(LedgerCheckpointRow).order_by(col(LedgerCheckpointRow.size))
    ).all()
    builder = RootBuilder()
    pending = list(checkpoints)
    for leaf in [None, *found.leaves]:
        if leaf is not None:
            builder.append(leaf)
        while pending and pending[0].size == builder.size:
            _check_checkpoint(pending.pop(0), builder.root(), found)
    for beyond in pending:
        found.add("ledger.checkpoint", f"a checkpoint of size {beyond.size} is beyond the log")
    if head is None:
        found.add("ledger.head", "the ledger has no head row")
        return
    last = found.leaves[-1] if found.leaves else b""
    stored = (head.size, head.last_leaf, head.frontier, head.last_time)
    expected = (builder.size, last, b"".join(builder.frontier), found.last_time)
    if stored != expected:
        found.add(
            "ledger.head",
            f"the head says size {head.size}, the log has {builder.size} entries "
            "(or its last leaf, frontier or time differ)",
        )


def _check_checkpoint(row: LedgerCheckpointRow, root: bytes, found: Findings) -> None:
    if row.root != root:
        found.add("ledger.checkpoint", f"checkpoint {row.size}: its root is not the tree's")
    try:
        signed = Checkpoint.from_text(Note.from_text(row.note).text)
    except LedgerError as exc:
        found.add("ledger.checkpoint", f"checkpoint {row.size}: its note does not parse: {exc}")
        return
    if (signed.size, signed.root) != (row.size, row.root):
        found.add("ledger.checkpoint", f"checkpoint {row.size}: its note signs something else")


# -- state ↔ entries -----------------------------------------------------------------------------


def _compare(
    found: Findings,
    check: str,
    *,
    logged: Mapping[Any, object],
    stored: Mapping[Any, object],
    row: str,
) -> None:
    """Both ways: what the log records the rows hold, and nothing more."""
    for key in sorted(logged.keys() - stored.keys(), key=str):
        found.add(check, f"the log records {key} ({logged[key]}) but there is no {row} row")
    for key in sorted(stored.keys() - logged.keys(), key=str):
        found.add(check, f"{row} {key} ({stored[key]}) has no {check} entry in the log")
    for key in sorted(logged.keys() & stored.keys(), key=str):
        if logged[key] != stored[key]:
            found.add(check, f"{row} {key}: the log says {logged[key]}, the row {stored[key]}")


def _index(
    found: Findings, entry_type: str, key: Callable[[Logged], Hashable]
) -> dict[Hashable, int]:
    """The entries of a type by what they name (e.g. the offer id), each named once."""
    index: dict[Hashable, int] = {}
    for logged in found.logged(entry_type):
        name = key(logged)
        if name in index:
            found.add(entry_type, f"entries {index[name]} and {logged.seq} both record {name}")
        index[name] = logged.seq
    return index


def _body(name: str) -> Callable[[Logged], Hashable]:
    def field_of(logged: Logged) -> Hashable:
        value = logged.body.get(name)
        return value if isinstance(value, Hashable) else repr(value)

    return field_of


def _check_members(session: Session, found: Findings) -> None:
    members = session.exec(select(Member)).all()
    _compare(
        found,
        "member.registered",
        logged=_index(found, "member.registered", _body("member")),
        stored={m.id: m.registered_seq for m in members},
        row="member",
    )
    accounts = set(session.exec(select(Account.member_id)).all())
    for member in members:
        if member.id not in accounts:
            found.add("member.registered", f"member {member.id} has no account")
    keys = session.exec(select(MemberKey)).all()
    added = _index(found, "member.registered", _body("key_id"))
    added.update(_index(found, "member.key.added", _body("key_id")))
    _compare(
        found,
        "member.key.added",
        logged=added,
        stored={k.key_id: k.added_seq for k in keys},
        row="member key",
    )
    _compare(
        found,
        "member.key.revoked",
        logged=_index(found, "member.key.revoked", _body("key_id")),
        stored={k.key_id: k.revoked_seq for k in keys if k.revoked_seq is not None},
        row="revoked key",
    )


def _check_versions(session: Session, found: Findings) -> None:
    versions = session.exec(select(DatasetVersion)).all()
    slugs = dict(session.exec(select(Dataset.id, Dataset.slug)).all())
    _compare(
        found,
        "dataset.version.published",
        logged={
            (logged.body.get("dataset"), logged.body.get("version")): logged.seq
            for logged in found.logged("dataset.version.published")
        },
        stored={(slugs.get(v.dataset_id), v.id): v.published_seq for v in versions},
        row="dataset version",
    )
    _index(found, "dataset.version.published", _body("version"))  # each version published once
    files: dict[str, dict[str, tuple[object, ...]]] = defaultdict(dict)
    for f in session.exec(select(VersionFile)).all():
        files[f.version_id][f.name] = (f.sha256, f.size, f.media_type, f.record_count)
    _check_lineage(session, found)
    indexed = _indexed_versions(session, found)
    for version in versions:
        _check_version_files(version, files.get(version.id, {}), found)
        if version.id not in indexed:
            found.add("dataset.version.published", f"version {version.id} is not overlap-indexed")
    _check_flags(versions, found)


def _indexed_versions(session: Session, found: Findings) -> set[str]:
    """The versions with an overlap-index entry whose segment is there and hashes to its
    digest (a segment that does not is a finding of its own)."""
    keys: dict[int, str] = {
        key: version
        for key, version in session.exec(select(OverlapVersion.id, OverlapVersion.version_id))
        if key is not None
    }
    indexed: set[str] = set()
    for key in sorted(keys):  # one segment in memory at a time: each can be tens of MB
        segment = session.get(OverlapSegment, key)
        if segment is None:
            continue
        session.expunge(segment)
        if segment_digest(bytes(segment.documents), bytes(segment.bands)) != segment.digest:
            found.add(
                "dataset.version.published",
                f"the overlap segment of version {keys[key]} does not hash to its digest",
            )
            continue
        indexed.add(keys[key])
    return indexed


def _check_lineage(session: Session, found: Findings) -> None:
    """A derived version's method and sources are the ones its provider signed."""
    declared = {
        logged.body["version"]: (
            logged.body.get("method"),
            tuple(
                (str(s.get("version")), s.get("agreement"))
                for s in logged.body.get("derived_from") or ()
                if isinstance(s, dict)
            ),
        )
        for logged in found.logged("dataset.version.published")
        if "method" in logged.body and isinstance(logged.body.get("version"), str)
    }
    sources: dict[str, list[tuple[int, str, str | None]]] = defaultdict(list)
    for row in session.exec(select(VersionSource)).all():
        sources[row.version_id].append((row.position, row.source_id, row.agreement_id))
    stored = {
        row.version_id: (row.method, tuple((s, a) for _, s, a in sorted(sources[row.version_id])))
        for row in session.exec(select(VersionLineage)).all()
    }
    for orphan in sorted(sources.keys() - stored.keys()):
        found.add("dataset.version.published", f"version {orphan} has sources but no lineage")
    _compare(found, "dataset.version.published", logged=declared, stored=stored, row="lineage")


def _check_version_files(
    version: DatasetVersion, stored: dict[str, tuple[object, ...]], found: Findings
) -> None:
    """A version row holds exactly the files of the manifest that names it."""
    if "sha256:" + hashlib.sha256(version.manifest).hexdigest() != version.id:
        found.add("dataset.version.published", f"version {version.id}: its manifest is not it")
        return
    try:
        manifest = VersionManifest.from_bytes(version.manifest)
    except (CatalogError, LedgerError) as exc:
        found.add("dataset.version.published", f"version {version.id}: bad manifest: {exc}")
        return
    expected = {f.name: (f.sha256, f.size, f.media_type, f.records) for f in manifest.files}
    if stored != expected:
        found.add(
            "dataset.version.published",
            f"version {version.id}: {len(stored)} file row(s) for the manifest's "
            f"{len(expected)} file(s), or they differ",
        )


def _check_flags(versions: Any, found: Findings) -> None:
    flagged = {logged.body.get("version") for logged in found.logged("dataset.version.flagged")}
    cleared = {logged.body.get("version") for logged in found.logged("dataset.version.cleared")}
    for version in versions:
        held = version.id in flagged and version.id not in cleared
        if (version.status == "flagged") != held:
            found.add(
                "dataset.version.flagged",
                f"version {version.id} is {version.status}, but the log has it "
                + ("held" if held else "not held"),
            )


def _check_offers(session: Session, found: Findings) -> None:
    offers = session.exec(select(Offer)).all()
    _compare(
        found,
        "offer.published",
        logged=_index(found, "offer.published", _body("offer")),
        stored={o.id: o.published_seq for o in offers},
        row="offer",
    )
    _compare(
        found,
        "offer.withdrawn",
        logged=_index(found, "offer.withdrawn", _body("offer")),
        stored={o.id: o.withdrawn_seq for o in offers if o.withdrawn_seq is not None},
        row="withdrawn offer",
    )
    for offer in offers:
        if (offer.status == "withdrawn") != (offer.withdrawn_seq is not None):
            found.add("offer.withdrawn", f"offer {offer.id} is {offer.status}")


def _check_agreements(session: Session, found: Findings) -> None:
    agreements = session.exec(select(Agreement)).all()
    _compare(
        found,
        "licence.granted",
        logged={
            logged.body.get("agreement"): _agreement_terms(logged)
            for logged in found.logged("licence.granted")
        },
        stored={
            a.id: (a.granted_seq, a.offer_id, a.assignee, a.assigner, a.version_id, a.price, a.fee)
            for a in agreements
        },
        row="agreement",
    )
    _index(found, "licence.granted", _body("agreement"))
    _compare(
        found,
        "licence.revoked",
        logged=_index(found, "licence.revoked", _body("agreement")),
        stored={a.id: a.revoked_seq for a in agreements if a.revoked_seq is not None},
        row="revoked agreement",
    )


def _agreement_terms(logged: Logged) -> tuple[object, ...]:
    body = logged.body
    price = body.get("price")
    amount = price.get("amount") if isinstance(price, dict) else None
    return (
        logged.seq,
        body.get("offer"),
        body.get("assignee"),
        body.get("assigner"),
        body.get("target"),
        amount,
        body.get("fee"),
    )


def _check_records(session: Session, found: Findings) -> None:
    """Entries whose row is keyed by the entry's own sequence number."""
    deliveries = session.exec(select(Delivery)).all()
    _compare(
        found,
        "data.delivered",
        logged={
            logged.seq: (logged.body.get("agreement"), logged.body.get("buyer"))
            for logged in found.logged("data.delivered")
        },
        stored={d.seq: (d.agreement_id, d.member_id) for d in deliveries},
        row="delivery",
    )
    attestations = session.exec(select(TrainingAttestation)).all()
    _compare(
        found,
        "model.training.attested",
        logged={
            logged.seq: (logged.member, logged.body.get("manifest_sha256"))
            for logged in found.logged("model.training.attested")
        },
        stored={a.seq: (a.member, a.manifest_sha256) for a in attestations},
        row="training attestation",
    )


# -- money ---------------------------------------------------------------------------------------

Postings = tuple[tuple[str, int], ...]


def _movements_from_the_log(found: Findings) -> dict[int, tuple[str, str, Postings]]:
    """Each journal transaction the entries imply: (kind, reference, postings) by entry seq."""
    moves: dict[int, tuple[str, str, Postings]] = {}
    for kind, entry_type, sign in (
        ("deposit", "account.deposited", 1),
        ("withdrawal", "account.withdrawn", -1),
    ):
        for logged in found.logged(entry_type):
            amount = logged.body.get("amount")
            if not isinstance(amount, int):
                found.add(entry_type, f"entry {logged.seq} moves {amount!r}, not credits")
                continue
            member = member_account_id(str(logged.body.get("member")))
            postings = {member: sign * amount, EXTERNAL: -sign * amount}
            moves[logged.seq] = (kind, str(logged.body.get("reference")), _sorted(postings))
    for logged in found.logged("licence.granted"):
        _, _, buyer, seller, _, price, fee = _agreement_terms(logged)
        if not isinstance(price, int) or not isinstance(fee, int) or price == 0:
            continue  # free licences move no money
        postings = {
            member_account_id(str(buyer)): -price,
            member_account_id(str(seller)): price - fee,
            FEES: fee,
        }
        moves[logged.seq] = ("purchase", str(logged.body.get("agreement")), _sorted(postings))
    return moves


def _sorted(postings: Mapping[str, int]) -> Postings:
    return tuple(sorted((account, amount) for account, amount in postings.items() if amount))


def _check_money(session: Session, found: Findings) -> None:
    expected = _movements_from_the_log(found)
    postings: dict[int, dict[str, int]] = defaultdict(dict)
    for posting in session.exec(select(JournalPosting)).all():
        postings[posting.transaction_id][posting.account_id] = posting.amount
    stored = {
        t.seq: (t.kind, t.reference, _sorted(postings.get(t.id or 0, {})))
        for t in session.exec(select(JournalTransaction)).all()
    }
    _compare(found, "settlement.journal", logged=expected, stored=stored, row="journal transaction")
    recomputed: dict[str, int] = defaultdict(int)
    for _, _, moves in expected.values():
        for account_id, amount in moves:
            recomputed[account_id] += amount
    accounts = session.exec(select(Account)).all()
    for account in accounts:
        if account.balance != recomputed.get(account.id, 0):
            found.add(
                "settlement.balance",
                f"{account.id} holds {account.balance}, the log gives "
                f"{recomputed.get(account.id, 0)}",
            )
    for unknown in sorted(recomputed.keys() - {a.id for a in accounts}):
        found.add("settlement.balance", f"the log moves money of {unknown}, which has no account")
    kept = books(session)
    if kept.total != 0 or kept.unbalanced_transactions or kept.drifted_accounts:
        found.add(
            "settlement.books",
            f"balances sum to {kept.total}, {kept.unbalanced_transactions} unbalanced "
            f"transaction(s), drifted accounts {kept.drifted_accounts}",
        )


STATE_CHECKS: tuple[Callable[[Session, Findings], None], ...] = (
    _check_members,
    _check_versions,
    _check_offers,
    _check_agreements,
    _check_records,
    _check_money,
)
