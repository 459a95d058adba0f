"""``corpusx audit anchors``: every ``checkpoint.anchored`` entry of the log, against the chain.

The auditor trusts only the log's vkey and a chain node of its own choosing. It reads the whole
log through the tiles (so no anchor can be hidden from it), checks that the entries hash to the
signed checkpoint, and for each anchor entry checks, with ``ledger.anchor.verify_anchor``: the
entry is the log key's own statement; the node is on the anchor's chain; the contract there runs
the published CheckpointAnchor code; the receipt succeeded, in the block the entry names; its one
event of our contract anchors exactly the entry's origin, size and root; the block is final
(the confirmations the entry says the exchange waited for, or the auditor's own demand, or the
``finalized`` tag); the root is the log's own root at that size, recomputed from the entries;
and the server's consistency proof from that size to the current checkpoint verifies.

Then it reads every event of those contracts for this log's origin, recorded on the log or not:
each one that a checkpoint already covers must anchor the log's own root at its size. A log that
showed someone else another history and anchored that one is caught here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from exchange.audit import remote_consistency_proof, remote_entries
from exchange.client import ExchangeClient
from ledger.anchor import (
    AnchoredEvent,
    AnchorRecord,
    ChainReader,
    ChainView,
    FinalityRule,
    confirmations,
    contract_artifact,
    verify_anchor,
)
from ledger.checkpoint import open_checkpoint
from ledger.entry import EXCHANGE, Entry, key_id_for
from ledger.errors import FormatError, VerificationError
from ledger.merkle import RootBuilder, leaf_hash, verify_consistency
from ledger.note import Ed25519Verifier

ANCHORED = "checkpoint.anchored"
_ANCHORED_BYTES = b'"type":"checkpoint.anchored"'  # a cheap filter before parsing an entry
Progress = Callable[[int, int], None]
T = TypeVar("T")


@dataclass(frozen=True)
class AnchorCheck:
    """The verdict on one anchor entry: ``error`` is None when every check passed."""

    seq: int
    size: int | None
    tx_hash: str | None
    block_number: int | None
    depth: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None

    def describe(self) -> str:
        where = f"entry {self.seq}"
        if self.size is not None:
            where += f" (size {self.size}, tx {self.tx_hash})"
        return f"{where}: {self.error}" if self.error else f"{where}: ok"


@dataclass(frozen=True)
class EventCheck:
    """The verdict on one anchor event found on the chain (recorded on the log or not)."""

    found: AnchoredEvent
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None

    def describe(self) -> str:
        return (
            f"event in tx {self.found.tx_hash} (block {self.found.block_number}, size "
            f"{self.found.event.size}): {self.error or 'ok'}"
        )


@dataclass(frozen=True)
class AnchorAuditReport:
    origin: str
    size: int
    chain: ChainView
    checks: tuple[AnchorCheck, ...]
    events: tuple[EventCheck, ...]
    events_ahead: int  # events of sizes no checkpoint covers yet: checked next time

    @property
    def failures(self) -> tuple[AnchorCheck | EventCheck, ...]:
        everything: tuple[AnchorCheck | EventCheck, ...] = (*self.checks, *self.events)
        return tuple(check for check in everything if not check.ok)


@dataclass(frozen=True)
class Demand:
    """What the auditor demands beyond what each entry claims (None: the entry's own rule)."""

    confirmations: int | None = None
    finalized: bool = False

    def rule_for(self, record: AnchorRecord) -> FinalityRule:
        if self.finalized:
            return FinalityRule(1, finalized_tag=True)
        if self.confirmations is not None:
            return FinalityRule(self.confirmations)
        return record.rule


def audit_anchors(
    client: ExchangeClient,
    chain: ChainReader,
    verifier: Ed25519Verifier,
    *,
    demand: Demand = Demand(),
    from_block: int = 0,
    progress: Progress | None = None,
) -> AnchorAuditReport:
    """Verify every anchor on the log, and every anchor event of its contracts on the chain.

    A log whose entries do not hash to its own checkpoint fails outright (``VerificationError``).
    """
    signed = open_checkpoint(client.checkpoint(), verifier)
    size, root = signed.checkpoint.size, signed.checkpoint.root
    leaves, found = _read_log(client, size, progress)
    view = chain.view()
    contracts = sorted({c for _, entry in found if (c := _claimed(entry, "contract", str))})
    events = [
        e
        for contract in contracts
        for e in chain.anchor_events(contract, from_block=from_block)
        if e.event.origin == verifier.name
    ]
    sizes = {_claimed(entry, "size", int) or 0 for _, entry in found}
    roots = _roots_at(leaves, sizes | {e.event.size for e in events} | {size})
    if roots[size] != root:
        raise VerificationError(
            f"the log's entries hash to {roots[size].hex()}, its checkpoint of size {size} "
            f"says {root.hex()}"
        )
    auditor = _Auditor(client, chain, verifier, view, size, root, roots, demand)
    checks = tuple(auditor.check(seq, entry) for seq, entry in found)
    covered = [e for e in events if e.event.size <= size]
    return AnchorAuditReport(
        signed.checkpoint.origin,
        size,
        view,
        checks,
        tuple(_check_event(e, roots) for e in covered),
        len(events) - len(covered),
    )


def _check_event(found: AnchoredEvent, roots: dict[int, bytes]) -> EventCheck:
    event = found.event
    ours = roots.get(event.size)
    if ours is None:
        return EventCheck(found, "anchors an empty tree")
    if ours != event.root:
        return EventCheck(
            found,
            f"anchors root {event.root.hex()}, the log's root at size {event.size} is {ours.hex()}",
        )
    return EventCheck(found, None)


def _read_log(
    client: ExchangeClient, size: int, progress: Progress | None
) -> tuple[bytes, list[tuple[int, Entry | FormatError]]]:
    """All leaf hashes (32 bytes each, to recompute any earlier root) and the anchor entries
    (or why one that looks like an anchor does not parse)."""
    leaves = bytearray()
    found: list[tuple[int, Entry | FormatError]] = []
    for seq, data in enumerate(remote_entries(client, size)):
        leaves += leaf_hash(data)
        if _ANCHORED_BYTES not in data:
            continue
        try:
            entry = Entry.from_bytes(data)
        except FormatError as exc:
            found.append((seq, exc))
            continue
        if entry.statement.type == ANCHORED:
            found.append((seq, entry))
        if progress is not None and seq % 2000 == 0:
            progress(seq, size)
    if progress is not None:
        progress(size, size)
    return bytes(leaves), found


def _claimed(entry: Entry | FormatError, name: str, kind: type[T]) -> T | None:
    """A body member as the entry claims it, before the body is checked (None if absent)."""
    if isinstance(entry, FormatError):
        return None
    value = entry.statement.body.get(name)
    return value if isinstance(value, kind) and not isinstance(value, bool) else None


def _roots_at(leaves: bytes, sizes: set[int]) -> dict[int, bytes]:
    """The tree root at each of ``sizes`` (one pass over the leaves)."""
    wanted = sorted(s for s in sizes if 0 < s <= len(leaves) // 32)
    roots: dict[int, bytes] = {}
    builder = RootBuilder()
    for target in wanted:
        while builder.size < target:
            builder.append(leaves[builder.size * 32 : builder.size * 32 + 32])
        roots[target] = builder.root()
    return roots


class _Auditor:
    def __init__(
        self,
        client: ExchangeClient,
        chain: ChainReader,
        verifier: Ed25519Verifier,
        view: ChainView,
        size: int,
        root: bytes,
        roots: dict[int, bytes],
        demand: Demand,
    ) -> None:
        self.client, self.chain, self.verifier, self.view = client, chain, verifier, view
        self.size, self.root, self.roots, self.demand = size, root, roots, demand
        self._code: dict[str, str | None] = {}

    def check(self, seq: int, entry: Entry | FormatError) -> AnchorCheck:
        try:
            if isinstance(entry, FormatError):
                raise entry
            record = self._record(seq, entry)
        except (FormatError, VerificationError) as exc:
            return AnchorCheck(seq, None, None, None, None, str(exc))
        receipt = None
        try:
            self._check_contract(record.contract)
            receipt = self.chain.receipt(record.tx_hash)
            verify_anchor(
                record,
                receipt,
                chain=self.view,
                rule=self.demand.rule_for(record),
                log_root=self.roots[record.size],
            )
            self._check_consistency(record)
            error = None
        except (FormatError, VerificationError) as exc:
            error = str(exc)
        block = receipt.block_number if receipt is not None else None
        depth = confirmations(block, self.view.head) if block is not None else None
        return AnchorCheck(seq, record.size, record.tx_hash, block, depth, error)

    def _record(self, seq: int, entry: Entry) -> AnchorRecord:
        statement = entry.statement
        log_key = self.verifier.public_key
        if statement.member != EXCHANGE or statement.key_id != key_id_for(log_key):
            raise VerificationError(f"signed by {statement.member}, not by the log as exchange")
        entry.signed.verify(log_key)
        record = AnchorRecord.from_body(statement.body)
        if record.origin != self.verifier.name:
            raise VerificationError(f"anchors the log {record.origin!r}, not this log")
        if record.size > seq:
            raise VerificationError(f"anchors size {record.size}, beyond the entry itself")
        return record

    def _check_contract(self, contract: str) -> None:
        if contract not in self._code:
            code = self.chain.code_at(contract)
            expected = contract_artifact().deployed_bytecode
            self._code[contract] = (
                None
                if code == expected
                else f"the code at {contract} is not the CheckpointAnchor contract "
                f"({len(code)} bytes, expected {len(expected)})"
            )
        error = self._code[contract]
        if error is not None:
            raise VerificationError(error)

    def _check_consistency(self, record: AnchorRecord) -> None:
        if record.size < self.size:
            verify_consistency(
                size1=record.size,
                size2=self.size,
                proof=remote_consistency_proof(self.client, record.size, self.size),
                root1=record.root,
                root2=self.root,
            )
